/*
 * clock.h - time comes in, not from globals (STYLE habit 3).
 *
 * Code that needs the time takes an rn_clock_t from its caller; production passes
 * rn_clock_system(), tests pass a manual clock they advance themselves.
 */
#ifndef RN_CLOCK_H
#define RN_CLOCK_H

#include <stdint.h>

typedef struct rn_clock {
    int64_t (*wall_ms)(void *ctx); /* milliseconds since the Unix epoch */
    int64_t (*mono_ns)(void *ctx); /* monotonic nanoseconds, for durations */
    void *ctx;
} rn_clock_t;

/* The real clock (CLOCK_REALTIME / CLOCK_MONOTONIC). Static storage; never free it. */
const rn_clock_t *rn_clock_system(void);

/* A manual clock for tests: both readings come from *now_ms (mono_ns = now_ms * 1e6). */
typedef struct rn_clock_manual {
    rn_clock_t clock;
    int64_t now_ms;
} rn_clock_manual_t;
void rn_clock_manual_init(rn_clock_manual_t *m, int64_t start_ms);

static inline int64_t rn_clock_wall_ms(const rn_clock_t *c) { return c->wall_ms(c->ctx); }
static inline int64_t rn_clock_mono_ns(const rn_clock_t *c) { return c->mono_ns(c->ctx); }

/* Monotonic nanoseconds from the system clock, for benchmarks and logs. */
int64_t rn_now_ns(void);

#endif
