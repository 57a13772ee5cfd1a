/*
 * runtime.h - runs a planned job: source -> decode -> aggregate -> sink, with checkpoints.
 *
 * Checkpoint protocol (effectively once), every checkpoint.interval.ms:
 *   1. the state snapshot of epoch N+1 (window state, per-partition next offsets and
 *      watermarks) is written to DIR/snapshot-N+1, fsynced and renamed into place;
 *   2. the sink commits, in one transaction, the rows emitted since checkpoint N, the
 *      offsets (runnel_offsets) and the epoch N+1 (runnel_checkpoints);
 *   3. snapshots other than N+1 are deleted.
 * On start the sink's epoch E names the snapshot to load (snapshot-E; a snapshot newer than
 * E is the leftover of a checkpoint whose commit never happened, and is deleted), and
 * reading resumes at the offsets it records. State and sink therefore always describe the
 * same prefix of the input: a crash at any point replays from the last commit, and replayed
 * rows upsert the same values. Sinks without transactions (STDOUT, TOPIC) flush their rows
 * (every one acknowledged) before the snapshot is written, and take the newest snapshot on
 * start: at least once, a replay re-publishing the same upserts. Dead letters are flushed
 * before either, so they are at least once too.
 *
 * Metrics (cfg->metrics): published from the job's thread at most every 100 ms of cfg->clock
 * and at every checkpoint; the freshness of a record is observed at the commit of the
 * checkpoint that covers it (jobmetrics.h), on cfg->clock, so tests drive it by hand.
 *
 * Malformed records (bad JSON, missing or mistyped fields) are counted, logged with
 * topic/partition/offset (at most one line a second), and sent to the dead-letter topic when
 * one is configured; late records likewise. Neither stops the job.
 */
#ifndef RN_RUNTIME_H
#define RN_RUNTIME_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "err.h"
#include "sink/sink.h"
#include "source.h"
#include "sql/plan.h"

typedef rn_err_t (*rn_dead_letter_fn)(void *ctx, const char *topic, int32_t partition,
                                      int64_t offset, const void *value, size_t len,
                                      const char *reason);

typedef struct rn_job_config {
    const rn_plan_t *plan;
    const char *state_dir;
    int64_t checkpoint_interval_ms;  /* 0: after every poll (tests) */
    bool bounded;                    /* read to the end offsets of the start, then finish */
    const rn_clock_t *clock;
    rn_source_t source;
    rn_sink_io_t sink_io;
    rn_dead_letter_fn dead_letter;   /* NULL: none available */
    rn_sink_flush_fn dead_letter_flush; /* waits until every dead letter is acknowledged;
                                         * called before each checkpoint's commit */
    void *dead_letter_ctx;
    volatile sig_atomic_t *stop;     /* set (by a signal handler) to checkpoint and return */
    uint64_t crash_after_records;    /* tests: return RN_ERR_STATE after this many records
                                      * without checkpointing, as a SIGKILL would; 0: never */
    struct rn_metrics *metrics;      /* NULL: no metrics; else the job's series go here
                                      * (jobmetrics.h), read by another thread's scrapes */
    volatile int *ready;             /* NULL, or set to 1 once the checkpoint is restored and
                                      * every partition assigned, to 0 when the job stops */
    const char *volatile *not_ready_why; /* NULL, or why *ready is 0 (static strings) */
} rn_job_config_t;

typedef struct rn_job_stats {
    uint64_t records;       /* this run */
    uint64_t malformed;
    uint64_t late;
    uint64_t filtered;
    uint64_t upserts, deletes;
    uint64_t checkpoints;
    uint64_t epoch;         /* last committed checkpoint */
    uint64_t resumed_epoch; /* the checkpoint this run started from (0: fresh) */
    int64_t watermark;
} rn_job_stats_t;

rn_err_t rn_job_run(const rn_job_config_t *cfg, rn_job_stats_t *stats, char *errbuf,
                    size_t errlen);

#endif
