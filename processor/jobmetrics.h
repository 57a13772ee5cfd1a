/*
 * jobmetrics.h - a job's Prometheus series (runnel_processor_*, docs/processor.md "Metrics")
 * and the freshness bookkeeping behind runnel_processor_freshness_seconds.
 *
 * Cost model. Every series is created once, in rn_jm_new; nothing is looked up later. The
 * per-record work is rn_jm_records, called once per poll with the batch just handled: a plain
 * increment per record (records in, per partition) and one comparison to extend the freshness
 * run-length list. Counters and gauges are published from the job's own counts a few times a
 * second (rn_jm_publish) and at each checkpoint (rn_jm_checkpoint), so a scrape reads atomics
 * and never walks job state.
 *
 * Freshness. A record's freshness is the time from its broker timestamp to the commit of the
 * sink transaction that includes its effect. Records handled since the last commit are kept as
 * runs of (timestamp, count) in arrival order (records of one partition mostly share or
 * increase their timestamps, so runs are long); at the commit each run is observed once with
 * rn_histo_observe_n(commit - timestamp, count). Memory is bounded: when RN_JM_FRESH_RUNS runs
 * are held, they are sorted and runs within a resolution (1 ms, doubling until half the room
 * is free) are merged into their oldest timestamp, so freshness can only be over-reported, by
 * less than that resolution, never under-reported. Records without a timestamp (<= 0: the
 * in-memory source of --input) are not observed.
 *
 * @locality: the job's thread calls everything here; the scrape thread only reads the series.
 */
#ifndef RN_JOBMETRICS_H
#define RN_JOBMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"
#include "source.h"

#define RN_JM_FRESH_RUNS 4096

typedef struct rn_jm rn_jm_t;

/*
 * Registers the processor's families in m and creates the series of job (label job), topic
 * and its npartitions partitions. m NULL: *out is NULL and every rn_jm_* call is a no-op.
 */
rn_err_t rn_jm_new(rn_metrics_t *m, const char *job, const char *topic, int32_t npartitions,
                   rn_jm_t **out);
void rn_jm_free(rn_jm_t *jm);

/* The n records of a poll that the job has handled (decoded, aggregated or dropped). */
void rn_jm_records(rn_jm_t *jm, const rn_src_record_t *recs, size_t n);

/* What the job knows now; totals count since the process started. */
typedef struct rn_jm_status {
    int64_t now_ms;           /* wall clock */
    int64_t watermark_ms;     /* RN_WM_NONE: none yet (the gauges read NaN) */
    size_t open_windows;
    uint64_t malformed, late, dead_letters;
} rn_jm_status_t;

/* Sets the gauges and advances the counters to st. */
void rn_jm_publish(rn_jm_t *jm, const rn_jm_status_t *st);
/* Records between the job's position in partition and its end offset. */
void rn_jm_set_lag(rn_jm_t *jm, int32_t partition, int64_t lag);

typedef struct rn_jm_checkpoint {
    int64_t commit_ms;        /* wall clock when the sink's commit returned */
    double duration_s;        /* the whole checkpoint */
    double sink_commit_s;     /* the sink's commit (transaction, or flush) */
    size_t state_bytes;       /* the snapshot's payload */
    uint64_t upserts, deletes; /* rows written to the sink so far (all committed now) */
} rn_jm_checkpoint_t;

/*
 * A checkpoint committed: observes the freshness of every record handled since the previous
 * one at c->commit_ms and forgets them, and records the checkpoint's numbers.
 */
void rn_jm_checkpoint(rn_jm_t *jm, const rn_jm_checkpoint_t *c);

#endif
