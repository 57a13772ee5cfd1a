/*
 * watermark.h - event-time watermarks per source partition, and the job's.
 *
 * A partition's watermark is the largest event time it has delivered minus the declared
 * delay (WATERMARK FOR ts AS ts - INTERVAL …): "no event older than this is still
 * expected". The job's watermark is the minimum over the active partitions, and never moves
 * back. A partition is inactive when it is finished (a bounded run read it to its end) or
 * idle: idle.timeout.ms passed on the processing-time clock without a record from it. An
 * idle partition becomes active again with its next record. A partition that has delivered
 * nothing yet holds the watermark at RN_WM_NONE until it goes idle, as in Flink: otherwise a
 * slow partition's first events would all be late. When every partition is inactive, the
 * watermark stays where it is.
 *
 * The clock comes in from the caller (common/clock.h); tests drive it by hand.
 */
#ifndef RN_WATERMARK_H
#define RN_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "err.h"

#define RN_WM_NONE INT64_MIN

typedef struct rn_wm rn_wm_t;

/* idle_timeout_ms < 0: partitions never go idle. */
rn_err_t rn_wm_new(size_t npartitions, int64_t delay_ms, int64_t idle_timeout_ms,
                   const rn_clock_t *clock, rn_wm_t **out);
void rn_wm_free(rn_wm_t *wm);

/*
 * Partition p delivered a record with event time ts (also marks it active). Returns the
 * job watermark after it. Cheap: the minimum is recomputed only when p held it.
 */
int64_t rn_wm_observe(rn_wm_t *wm, size_t p, int64_t ts);
/* Partition p delivered something without an event time (a record that failed to decode). */
void rn_wm_touch(rn_wm_t *wm, size_t p);
/* Partition p has no more input (bounded runs): it stops holding the watermark back. */
void rn_wm_finish(rn_wm_t *wm, size_t p);
/* Re-reads the clock for idleness; returns the job watermark. Call every poll. */
int64_t rn_wm_tick(rn_wm_t *wm);
/* The job watermark as of the last observe/tick; RN_WM_NONE before there is one. */
int64_t rn_wm_current(const rn_wm_t *wm);
bool rn_wm_idle(const rn_wm_t *wm, size_t p);
size_t rn_wm_partitions(const rn_wm_t *wm);

/* For snapshots: the largest event time seen per partition, and the job watermark. */
int64_t rn_wm_max_ts(const rn_wm_t *wm, size_t p);
void rn_wm_restore(rn_wm_t *wm, size_t p, int64_t max_ts);
void rn_wm_restore_job(rn_wm_t *wm, int64_t watermark);

#endif
