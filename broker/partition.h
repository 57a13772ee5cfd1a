/*
 * partition.h - one partition as the broker serves it: the storage log (broker/log), the
 * idempotent-producer state (pstate.h), and group commit of fsyncs off the loop thread.
 *
 * Happy path of a produce:
 *   rn_part_append   validate every batch (checksum + framing, rn_batch_validate; never
 *                    decompress), check sequences, append all batches in one write, record
 *                    them in the producer state. When flush.messages says a flush is due, the
 *                    result carries a durable_target and a sync is started.
 *   rn_part_wait_durable   the produce waits until the flushed offset reaches its target.
 *
 * Group commit: at most one sync per partition runs at a time:
 *   rn_log_sync_begin (loop) -> rn_log_sync_run (libuv thread pool) -> rn_log_sync_end (loop)
 * Appends continue while it runs; when it ends, every waiter whose target it covers is
 * called, and the next sync starts at once if waiters (or due data) remain, so one fdatasync
 * covers every batch that arrived while the previous one ran.
 *
 * Failure modes:
 *   - a bad batch: CORRUPT_MESSAGE / MESSAGE_TOO_LARGE, nothing of the request appended;
 *   - a write error (ENOSPC, EIO): STORAGE_ERROR, the log stays usable;
 *   - an fsync error: the waiters get STORAGE_ERROR and the log turns read-only (log.h).
 *
 * Producer-state persistence: a snapshot at every segment roll and at clean close; open
 * loads the newest usable snapshot and replays the batch headers after it (docs/broker.md).
 *
 * Loop thread only, except the sync step the thread pool runs.
 */
#ifndef RN_BROKER_PARTITION_H
#define RN_BROKER_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "log.h"

typedef struct rn_part rn_part_t;
struct rn_metric;

typedef struct rn_part_env {
    uv_loop_t *loop;
    /* Called around a burst of durable callbacks, so their responses go out in one write. */
    void (*burst_begin)(void *ctx);
    void (*burst_end)(void *ctx);
    void *ctx;
    uint32_t *syncs_running;  /* counts syncs in the thread pool, across partitions */
    struct rn_metric *fsync_seconds; /* histogram of rn_log_sync_run's duration; may be NULL */
} rn_part_env_t;

/*
 * Opens (creating when missing) the partition log in dir, recovering it after an unclean
 * stop, and rebuilds the producer state. env must outlive the partition. errbuf says what
 * failed and where.
 */
rn_err_t rn_part_open(const rn_part_env_t *env, const char *dir, const rn_log_config_t *cfg,
                      rn_part_t **out, char *errbuf, size_t errlen);

/*
 * Clean close: flush, producer-state snapshot, rn_log_close (clean-shutdown marker).
 * Only when no sync runs (rn_part_sync_running false).
 */
rn_err_t rn_part_close(rn_part_t *p);
/* Deletes the partition's directory; when a sync still runs, as soon as it ends. */
void rn_part_destroy(rn_part_t *p);

rn_log_t *rn_part_log(rn_part_t *p);
bool rn_part_sync_running(const rn_part_t *p);

typedef struct rn_part_result {
    rn_err_t err;             /* a wire error, RN_OK on success */
    uint64_t base_offset;     /* first offset; for a duplicate, the original one */
    uint64_t durable_target;  /* > 0: acknowledge only once rn_part_wait_durable reports */
    bool duplicate;           /* every batch was a retry; nothing appended */
    uint32_t records;         /* records appended */
    size_t bytes;             /* bytes of the batches appended (retries not counted) */
    uint32_t duplicate_batches; /* retried batches acknowledged without appending */
    char msg[200];            /* why, when err != RN_OK */
} rn_part_result_t;

/*
 * Appends the whole batches in [data, data+len) (stamped in place with their offsets).
 * All or nothing: any refused batch refuses the request. Never fails silently: res->err.
 */
void rn_part_append(rn_part_t *p, uint8_t *data, size_t len, rn_part_result_t *res);

typedef void (*rn_part_durable_cb)(void *arg, rn_err_t err);
/*
 * Waits until every offset below target is on disk: *waiting true and, later on the loop,
 * cb(arg, RN_OK), or cb(arg, RN_ERR_STORAGE_ERROR) when the sync fails (or
 * UNKNOWN_TOPIC_OR_PARTITION when the partition is deleted first). *waiting false, without a
 * call to cb, when target is durable already (RN_OK) or no sync can start
 * (RN_ERR_STORAGE_ERROR). cb never runs from inside this call.
 */
rn_err_t rn_part_wait_durable(rn_part_t *p, uint64_t target, rn_part_durable_cb cb, void *arg,
                              bool *waiting);

/* flush.ms: starts a sync when rn_log_flush_due says so. */
void rn_part_flush_tick(rn_part_t *p);
typedef struct rn_part_retention {
    uint32_t segments;        /* segments retention deleted */
    uint64_t bytes;           /* their bytes */
} rn_part_retention_t;

/* Timer work: roll by segment.ms, retention, expiry of idle producers. *deleted (may be
 * NULL) says what retention removed. */
void rn_part_maintain(rn_part_t *p, int64_t producer_idle_ms, rn_part_retention_t *deleted);

/* ---- cluster mode (docs/cluster.md §5) ---- */

/* The leader epoch rn_part_append stamps into batches (becomeLeader sets it; 0 by default). */
void rn_part_set_leader_epoch(rn_part_t *p, uint32_t epoch);
uint32_t rn_part_leader_epoch(const rn_part_t *p);
/* One opaque pointer for the replication layer (cluster/repl.h); NULL on a single node. */
void rn_part_set_repl(rn_part_t *p, void *repl);
void *rn_part_repl(const rn_part_t *p);

/*
 * A follower's append of whole batches fetched from the leader (rn_log_append_replica: the
 * leader's offsets and epochs kept), recorded in the producer state so a producer's retry is
 * recognised after a failover. *durable_target > 0 when flush.messages started a sync.
 * RN_ERR_STATE when the first batch does not start at the log end; the log's other errors.
 */
rn_err_t rn_part_append_replica(rn_part_t *p, const uint8_t *data, size_t len,
                                uint64_t *durable_target);
/*
 * Drops every batch at or above offset (whole batches; the epoch cache with them) and rebuilds
 * the producer state for the new end. RN_ERR_AGAIN while a sync runs (try again after it);
 * the log's errors otherwise. An offset at or past the end changes nothing.
 */
rn_err_t rn_part_truncate(rn_part_t *p, uint64_t offset);

/*
 * A follower below the leader's log start: the log restarts empty at start (rn_log_reset) with
 * an empty producer state. RN_ERR_AGAIN while a sync runs; the log's errors otherwise.
 */
rn_err_t rn_part_reset(rn_part_t *p, uint64_t start);

/* Maps a storage error to what the wire carries (STORAGE_ERROR for I/O, space, state). */
rn_err_t rn_part_wire_err(rn_err_t err);

#endif
