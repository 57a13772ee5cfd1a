/*
 * winstate.h - keyed window state: one group (aggregate accumulators) per (window, key).
 *
 * Groups live in one hash table keyed by (window start, encoded GROUP BY key). What closes
 * them depends on the window kind:
 *   TUMBLE / HOP  windows of one size: a sorted array of open windows, each listing its
 *                 groups; closing pops windows from the front (earliest end first).
 *   SESSION       each group is one session of a key; a min-heap on session end closes them.
 *                 Adding an event merges the key's sessions its window touches.
 *   NONE          groups never close (a running aggregate per key).
 * Groups changed since they were last emitted can be tracked (EMIT EVERY) on a dirty list.
 *
 * Keys arrive encoded (rn_ws_key_*: a byte string per key, so hashing and comparing are
 * memcmp) and are decoded back into values for output rows.
 *
 * Single-threaded: the runtime's thread owns a state.
 */
#ifndef RN_WINSTATE_H
#define RN_WINSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "ops/agg.h"
#include "ops/value.h"
#include "ops/window.h"

typedef struct rn_ws rn_ws_t;
typedef struct rn_ws_group rn_ws_group_t;

typedef struct rn_ws_config {
    rn_win_kind_t kind;
    const rn_agg_desc_t *aggs;
    size_t naggs;
    const rn_type_t *key_types; /* types of the GROUP BY key columns, to decode keys */
    size_t nkeys;
    bool track_dirty;           /* keep the dirty list (EMIT EVERY) */
} rn_ws_config_t;

/* Called with each group leaving the state (closing, or folded into another session). */
typedef rn_err_t (*rn_ws_group_fn)(void *ctx, rn_ws_group_t *g);

rn_err_t rn_ws_new(const rn_ws_config_t *cfg, rn_ws_t **out);
void rn_ws_free(rn_ws_t *ws);

/* ---- keys ---- */
/* Appends the encoding of v (of the key column's type) to key. */
rn_err_t rn_ws_key_append(rn_buf_t *key, const rn_value_t *v);
/* Decodes the group's key into vals[0..nkeys); TEXT values point into the group. */
void rn_ws_key_values(const rn_ws_t *ws, const rn_ws_group_t *g, rn_value_t *vals);
uint64_t rn_ws_key_hash(const uint8_t *key, size_t len);

/* ---- groups ---- */
/*
 * The group of window [start, end) and key (TUMBLE/HOP; NONE passes 0, 0), created with
 * empty accumulators when missing.
 */
rn_err_t rn_ws_get(rn_ws_t *ws, int64_t start, int64_t end, const uint8_t *key, size_t len,
                   uint64_t hash, rn_ws_group_t **out);
/*
 * SESSION: adds an event at ts to the key's sessions (gap given) and returns the session
 * that now holds it in *out. Sessions the event bridges are merged into the earliest one;
 * before a session is merged away or its start moves, `retract` is called with it (so an
 * emitted row keyed by the old window_start can be deleted). When the resulting session
 * would end at or before close_limit (it is already closed), nothing changes and *out is
 * NULL: the event is late.
 */
rn_err_t rn_ws_session(rn_ws_t *ws, const uint8_t *key, size_t len, uint64_t hash, int64_t ts,
                       int64_t gap, int64_t close_limit, rn_ws_group_fn retract, void *ctx,
                       rn_ws_group_t **out);

rn_agg_acc_t *rn_ws_accs(rn_ws_group_t *g);
int64_t rn_ws_start(const rn_ws_group_t *g);
int64_t rn_ws_end(const rn_ws_group_t *g);
/* Puts g on the dirty list (no-op without track_dirty or when already there). */
void rn_ws_touch(rn_ws_t *ws, rn_ws_group_t *g);
bool rn_ws_emitted(const rn_ws_group_t *g);
/* True while g is on the dirty list (changed since its last row). */
bool rn_ws_dirty(const rn_ws_group_t *g);
void rn_ws_set_emitted(rn_ws_group_t *g, bool emitted);

/*
 * Closes every window that ends at or before limit, earliest first: fn sees each of its
 * groups, which are then freed. Stops at fn's first error (that group is kept).
 */
rn_err_t rn_ws_close_until(rn_ws_t *ws, int64_t limit, rn_ws_group_fn fn, void *ctx);
/* Calls fn for every dirty group, oldest change first, and clears the list. */
rn_err_t rn_ws_each_dirty(rn_ws_t *ws, rn_ws_group_fn fn, void *ctx);
/* Open groups, and the earliest end of an open window (INT64_MAX when none). */
size_t rn_ws_count(const rn_ws_t *ws);
int64_t rn_ws_next_end(const rn_ws_t *ws);
/* Open windows: TUMBLE/HOP the distinct open windows, SESSION the open sessions (each key's
 * session is a window of its own), NONE 0. */
size_t rn_ws_windows(const rn_ws_t *ws);

/* ---- snapshot ---- */
rn_err_t rn_ws_write(const rn_ws_t *ws, rn_buf_t *out);
/* Loads groups written by rn_ws_write into an empty state; RN_ERR_CORRUPT on bad input. */
rn_err_t rn_ws_read(rn_ws_t *ws, const uint8_t **p, const uint8_t *end);

#endif
