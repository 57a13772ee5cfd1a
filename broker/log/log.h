/*
 * log.h - the partition log: an ordered list of segments in one directory (DESIGN §5).
 *
 *   TOPIC-PARTITION/
 *     00000000000000000000.log .index .timeindex    closed segments
 *     00000000000000052310.log .index .timeindex    the active segment (appends go here)
 *     recovery-point                                 offset below which all data was fsynced
 *     leader-epoch-checkpoint                        leader epoch -> start offset (epoch.h)
 *     .clean-shutdown                                present only between a clean close and open
 *
 * Happy path: open -> append* (with a flush now and then, possibly on another thread) ->
 * close, which flushes, seals the indexes and writes .clean-shutdown; the next open trusts
 * everything and reads only the active segment's last index interval.
 *
 * Failure modes:
 * - Unclean stop (SIGKILL, power loss): open finds no marker, reads recovery-point, and scans
 *   only from the last index entry at or below it; every batch is verified, a torn or corrupt
 *   tail is cut and later segments dropped. Recovery time is bounded by the unflushed data
 *   plus one index interval, never by the size of the log.
 * - Write error (ENOSPC, EIO) during append: the append fails, the partial batch is cut off,
 *   the log stays usable for reads and for later appends.
 * - fsync error: the log turns read-only (RN_ERR_IO on append) because the page cache can no
 *   longer be trusted to match the disk (PostgreSQL's fsyncgate); a restart recovers it.
 *
 * Threading: one owner thread calls everything, except rn_log_sync_run, which may run on any
 * thread while the owner keeps appending (group commit off the event loop).
 *
 * No sockets, libuv, protobuf or Raft here; time and file I/O come from rn_log_env_t.
 */
#ifndef RN_LOG_H
#define RN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "buf.h"
#include "clock.h"
#include "epoch.h"
#include "err.h"
#include "io.h"

typedef struct rn_log rn_log_t;

/* Per-topic settings, named as Kafka names them. */
typedef struct rn_log_config {
    uint64_t segment_bytes;        /* segment.bytes: roll the active segment past this size */
    int64_t segment_ms;            /* segment.ms: roll when the active segment is this old */
    uint32_t segment_index_bytes;  /* segment.index.bytes: room in each index file */
    uint32_t index_interval_bytes; /* index.interval.bytes: bytes between index entries */
    int64_t flush_messages;        /* flush.messages: records between fsyncs (1 = every append) */
    int64_t flush_ms;              /* flush.ms: longest time data stays unflushed */
    int64_t retention_ms;          /* retention.ms: -1 keeps forever */
    int64_t retention_bytes;       /* retention.bytes: -1 for no size limit */
    uint32_t max_message_bytes;    /* max.message.bytes: largest batch accepted */
    /* Replication settings (cluster mode; the log itself does not use them). */
    uint32_t min_insync_replicas;  /* min.insync.replicas: acks=all needs this many in the ISR */
    uint32_t unclean_leader_election; /* unclean.leader.election.enable: 1 true, 0 false */
} rn_log_config_t;

void rn_log_config_default(rn_log_config_t *cfg);
/*
 * Sets one key ("segment.bytes", …) from its string value. RN_ERR_UNKNOWN_CONFIG or
 * RN_ERR_BAD_CONFIG with a message naming the key and the accepted range in errbuf.
 */
rn_err_t rn_log_config_set(rn_log_config_t *cfg, const char *key, const char *value,
                           char *errbuf, size_t errlen);
/* Calls fn for every key with its current value as a string (for Metadata and describe). */
void rn_log_config_each(const rn_log_config_t *cfg,
                        void (*fn)(void *ctx, const char *key, const char *value), void *ctx);

typedef struct rn_log_env {
    const rn_clock_t *clock; /* NULL: rn_clock_system() */
    const rn_io_t *io;       /* NULL: rn_io_posix() */
} rn_log_env_t;

typedef struct rn_log_recovery {
    bool clean;              /* the clean-shutdown marker was there */
    uint64_t bytes_scanned;  /* bytes read and verified by recovery */
    uint64_t bytes_truncated;
    uint32_t segments_dropped;
} rn_log_recovery_t;

/*
 * Opens the log in dir (created when missing), recovering when the last stop was unclean.
 * errbuf (may be NULL) receives a message naming the file and the problem on failure.
 */
rn_err_t rn_log_open(const char *dir, const rn_log_config_t *cfg, const rn_log_env_t *env,
                     rn_log_t **out, char *errbuf, size_t errlen);
/* Flushes, seals, writes the clean-shutdown marker and frees the log. */
rn_err_t rn_log_close(rn_log_t *log);
/* Frees the log without flushing or writing the marker: what a crash leaves (for tests). */
void rn_log_abandon(rn_log_t *log);
/* Closes the log and removes its directory with everything in it (DeleteTopics). */
rn_err_t rn_log_delete(rn_log_t *log);
/* Replaces the topic settings (AlterConfigs); takes effect from the next append. */
void rn_log_set_config(rn_log_t *log, const rn_log_config_t *cfg);
const rn_log_config_t *rn_log_config(const rn_log_t *log);
const rn_log_recovery_t *rn_log_recovery(const rn_log_t *log);

typedef struct rn_log_append_info {
    uint64_t first_offset;  /* base offset of the first batch */
    uint64_t last_offset;
    uint32_t record_count;
    uint32_t batch_count;
    int64_t max_timestamp;
} rn_log_append_info_t;

/*
 * Appends one or more whole batches laid back to back in [batches, batches + len), each
 * already validated by the caller (rn_batch_validate). Assigns offsets from the log end,
 * stamps base_offset and leader_epoch into the caller's bytes, and writes them to the active
 * segment in one write (rolling first when segment.bytes or segment.ms says so).
 * When leader_epoch is newer than the epoch cache's newest, (leader_epoch, log end) is added
 * and leader-epoch-checkpoint written before the batches (an fsync, once per epoch).
 * Errors: RN_ERR_MESSAGE_TOO_LARGE (a batch over max.message.bytes), RN_ERR_CORRUPT_MESSAGE
 * (the bytes do not parse as whole batches), RN_ERR_NO_SPACE / RN_ERR_IO (nothing appended;
 * also when the checkpoint cannot be written), RN_ERR_STATE (the log is read-only after an
 * fsync failure, or leader_epoch is older than the newest epoch in the log: a deposed leader).
 */
rn_err_t rn_log_append(rn_log_t *log, uint8_t *batches, size_t len, uint32_t leader_epoch,
                       rn_log_append_info_t *info);

/*
 * A follower's append (docs/cluster.md §5.1): whole batches from the leader, kept as they are
 * (the leader's base offsets and leader epochs; nothing is stamped, the bytes stay the
 * caller's). Each batch is fully checked (rn_batch_validate: framing and checksum); the first
 * must start at the log end and each next one where the previous ended, and epochs never go
 * back. max.message.bytes is not applied: the leader already did, and a follower must not stall
 * on a batch its leader accepted. Every epoch that starts in the span is added to the epoch
 * cache and leader-epoch-checkpoint written before the batches.
 * Errors: RN_ERR_STATE (the first base offset is not the log end, so a gap or an overlap can
 * never be written; an epoch older than one the log already has batches of; the log is
 * read-only), RN_ERR_CORRUPT_MESSAGE (a batch fails validation, later batches not contiguous or
 * an epoch going back inside the span), RN_ERR_NO_SPACE / RN_ERR_IO (nothing appended).
 * Producer state is the caller's (partition.c), as for rn_log_append.
 */
rn_err_t rn_log_append_replica(rn_log_t *log, const uint8_t *batches, size_t len,
                               rn_log_append_info_t *info);

/*
 * becomeLeader(epoch): records (epoch, log end) in the epoch cache and writes the checkpoint,
 * before the first append of the epoch, so OffsetForLeaderEpoch answers it at once. No-op for
 * the newest epoch; RN_ERR_STATE for an older one; RN_ERR_NO_SPACE / RN_ERR_IO (cache unchanged).
 */
rn_err_t rn_log_assign_epoch(rn_log_t *log, uint32_t epoch);

/*
 * A follower's KIP-279 round whose truncation point is the log end: epochs that start at or
 * after offset (>= the log end: they hold no batch) leave the cache, so the next
 * OffsetForLeaderEpoch asks about an older epoch. RN_ERR_INVALID_ARG below the log end;
 * RN_ERR_NO_SPACE / RN_ERR_IO when the checkpoint cannot be written.
 */
rn_err_t rn_log_drop_epochs_from(rn_log_t *log, uint64_t offset);

/* The epoch cache, for lookups (owned by the log; valid until it closes). */
const rn_lep_t *rn_log_epochs(const rn_log_t *log);
/* OffsetForLeaderEpoch served from this log: rn_lep_end_offset_for with the log end. */
rn_err_t rn_log_end_offset_for_epoch(const rn_log_t *log, uint32_t epoch, rn_lep_answer_t *out);

/* A range of whole batches in one segment file; fd is a dup the caller must release. */
typedef struct rn_log_slice {
    int fd;                 /* -1 when len == 0 */
    uint64_t pos;
    size_t len;
    uint64_t first_offset;  /* base offset of the first batch in the range */
    uint64_t next_offset;   /* offset after the last batch in the range */
} rn_log_slice_t;

/*
 * The file range of whole batches starting with the batch that holds offset, ending before
 * max_offset (exclusive; pass the high watermark, or UINT64_MAX), at most max_bytes long -
 * except that the first batch is always included whole so a consumer always makes progress.
 * The range stays within one segment; call again from next_offset for more. An empty slice
 * (len 0) at the log end. RN_ERR_OFFSET_OUT_OF_RANGE below the start or above the end.
 */
rn_err_t rn_log_read(rn_log_t *log, uint64_t offset, uint64_t max_offset, size_t max_bytes,
                     rn_log_slice_t *out);
void rn_log_slice_release(rn_log_slice_t *slice);
/* rn_log_read, then the bytes copied into out (appended). */
rn_err_t rn_log_read_copy(rn_log_t *log, uint64_t offset, uint64_t max_offset, size_t max_bytes,
                          rn_buf_t *out, rn_log_slice_t *info);

/*
 * The offset of the first record whose timestamp is >= ts (ListOffsets by time).
 * RN_ERR_NOT_FOUND when no record is that late (Kafka then answers the log end offset).
 */
rn_err_t rn_log_offset_for_time(rn_log_t *log, int64_t ts, uint64_t *offset);

/* ---- durability ---- */

/* True when flush.messages or flush.ms says unflushed data must be synced now. */
bool rn_log_flush_due(const rn_log_t *log);
/* Synchronous flush of everything appended so far. */
rn_err_t rn_log_flush(rn_log_t *log);

/*
 * Group commit in three steps, so the fsync can run on another thread:
 *   rn_log_sync_begin (owner)  - captures the end offset and dups the files to sync;
 *                                *out NULL when nothing is unflushed; RN_ERR_STATE while a
 *                                previous sync has not ended (one at a time per log)
 *   rn_log_sync_run (any)      - fdatasync of those files through the io vtable (which must
 *                                then be thread-safe); touches no log state
 *   rn_log_sync_end (owner)    - with run's result: advances the flushed offset and the
 *                                recovery point, frees the sync; a failed sync makes the log
 *                                read-only and returns the error
 * Every batch appended before begin is durable once end returns RN_OK.
 */
typedef struct rn_log_sync rn_log_sync_t;
rn_err_t rn_log_sync_begin(rn_log_t *log, rn_log_sync_t **out);
rn_err_t rn_log_sync_run(rn_log_sync_t *sync);
rn_err_t rn_log_sync_end(rn_log_t *log, rn_log_sync_t *sync, rn_err_t run_result);
/* The end offset a sync covers (valid between begin and end). */
uint64_t rn_log_sync_target(const rn_log_sync_t *sync);

/* ---- replication and retention ---- */

/*
 * Removes every batch holding an offset >= offset. Batches are whole, so when offset falls
 * inside a batch the whole batch goes and the end offset becomes that batch's base offset.
 * Epoch-cache entries starting at or after the new end go too, and the checkpoint is written
 * after the data is cut. RN_ERR_NO_SPACE / RN_ERR_IO from that write means the log and the
 * cache are truncated but the file is not yet: it is written again before the next append
 * (or by calling this again), and until then recovery would drop the stale entries itself.
 * An offset at or past the log end changes nothing.
 */
rn_err_t rn_log_truncate(rn_log_t *log, uint64_t offset);

/*
 * A follower whose whole log is below the leader's log start (it was away longer than
 * retention): every segment goes and the log starts empty at start (> the log end), with an
 * empty epoch cache. RN_ERR_INVALID_ARG when start is not past the end; RN_ERR_IO / NO_SPACE
 * (the log turns read-only). Only when no sync runs.
 */
rn_err_t rn_log_reset(rn_log_t *log, uint64_t start);

/*
 * Deletes closed segments by retention.ms (a segment's max timestamp older than now minus
 * retention.ms) and retention.bytes (oldest first while the rest still exceeds it). Never
 * the active segment. Advances the log start offset, and the epoch cache's start with it.
 * *deleted counts segments removed.
 */
rn_err_t rn_log_apply_retention(rn_log_t *log, uint32_t *deleted);
/* Rolls the active segment when segment.ms has passed (appends check this too). */
rn_err_t rn_log_roll_if_due(rn_log_t *log);

uint64_t rn_log_start_offset(const rn_log_t *log);
uint64_t rn_log_end_offset(const rn_log_t *log);
/* Everything below this offset is on disk. */
uint64_t rn_log_flushed_offset(const rn_log_t *log);
uint64_t rn_log_size_bytes(const rn_log_t *log);
uint32_t rn_log_segment_count(const rn_log_t *log);
const char *rn_log_dir(const rn_log_t *log);

#endif
