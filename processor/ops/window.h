/*
 * window.h - window assignment: which windows an event time belongs to.
 *
 * Windows are half-open [start, end) in event-time milliseconds.
 *   TUMBLE(size):        one window, start = floor(ts / size) * size.
 *   HOP(slide, size):    every window [k*slide, k*slide + size) that contains ts
 *                        (size / slide of them when slide divides size).
 *   SESSION(gap):        an event opens [ts, ts + gap); windows of one key that overlap or
 *                        touch merge into one (Flink's rule), so a late event that bridges
 *                        two sessions joins them. rn_win_session_* keep a key's sessions.
 */
#ifndef RN_WINDOW_H
#define RN_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rn_win_kind {
    RN_WIN_NONE = 0, /* plain GROUP BY: one running aggregate per key */
    RN_WIN_TUMBLE,
    RN_WIN_HOP,
    RN_WIN_SESSION,
} rn_win_kind_t;

typedef struct rn_win_spec {
    rn_win_kind_t kind;
    int64_t size_ms;   /* TUMBLE, HOP */
    int64_t slide_ms;  /* HOP (TUMBLE: = size) */
    int64_t gap_ms;    /* SESSION */
} rn_win_spec_t;

/* The most windows one event can fall into for spec (HOP: ceil(size / slide)). */
size_t rn_win_max_per_event(const rn_win_spec_t *spec);

/*
 * Writes the starts of the TUMBLE/HOP windows containing ts into starts (room for
 * rn_win_max_per_event), earliest first; returns how many. Each window ends at start + size.
 */
size_t rn_win_assign(const rn_win_spec_t *spec, int64_t ts, int64_t *starts);

/* floor(a / b) for b > 0, also for negative a. */
static inline int64_t rn_win_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* One session of a key: [start, end), end = last event + gap. */
typedef struct rn_win_session {
    int64_t start, end;
} rn_win_session_t;

/*
 * Where an event at ts lands among a key's sessions s[0..n) (sorted by start, disjoint).
 * Its window [ts, ts + gap) merges with every session it overlaps or touches; those form a
 * contiguous range [first, last]. When none does, created is true and first is the index
 * where the new session goes. start/end are the resulting session's bounds either way.
 * The caller folds the state of sessions first+1..last into first (rn_win_session_apply
 * does the same for bare intervals).
 */
typedef struct rn_win_merge {
    bool created;
    size_t first, last;
    int64_t start, end;
} rn_win_merge_t;

void rn_win_session_plan(const rn_win_session_t *s, size_t n, int64_t ts, int64_t gap,
                         rn_win_merge_t *m);
/* Applies m to the intervals (s needs room for n + 1); returns the new count. */
size_t rn_win_session_apply(rn_win_session_t *s, size_t n, const rn_win_merge_t *m);

#endif
