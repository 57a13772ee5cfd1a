/*
 * epoch.h - the leader-epoch cache of a partition (KIP-101, KIP-279; docs/cluster.md §5.4):
 * for every leader epoch that wrote into the log, the offset where it started.
 *
 *   epoch  start_offset          the log, by the leader_epoch of its batches:
 *       0             0          [0 .. 100)   epoch 0
 *       2           100          [100 .. 250) epoch 2   (epoch 1 wrote nothing)
 *       3           250          [250 .. end) epoch 3
 *
 * Epochs and start offsets both strictly increase along the list. The last entry may start at
 * the log end (a leader that has not appended yet). The partition log owns one cache and keeps
 * it equal to its batches: appends add epochs, truncation cuts the end, retention the start.
 *
 * Persisted as DIR/leader-epoch-checkpoint, replaced whole (temp file, fsync, rename, directory
 * fsync) through the caller's io vtable, so a failed write leaves the previous file valid:
 *
 *   +-----------+-------------+-----------+--------------+
 *   | magic u32 | version u32 | count u32 | reserved u32 |        "RNLE", 1, n, 0
 *   +-----------+-------------+-----------+--------------+
 *   | epoch u32 | reserved u32 | start_offset u64        |  x n   ascending
 *   +-----------+-------------+-------------------------+
 *   | xxh3-64 u64 of everything before                   |
 *   +----------------------------------------------------+       all little-endian
 *
 * Binary with a checksum like recovery-point, not Kafka's text file: a torn or flipped file must
 * be detected and rebuilt from the batches, because a wrong epoch start truncates good data.
 *
 * One owner thread; no sockets, libuv, protobuf or Raft.
 */
#ifndef RN_EPOCH_H
#define RN_EPOCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "io.h"

#define RN_LEP_FILE "leader-epoch-checkpoint"

typedef struct rn_lep rn_lep_t;

typedef struct rn_lep_entry {
    uint32_t epoch;
    uint64_t start_offset;
} rn_lep_entry_t;

/* An empty cache for the partition directory dir (copied); nothing is read yet. */
rn_err_t rn_lep_new(const char *dir, const rn_io_t *io, rn_lep_t **out);
void rn_lep_free(rn_lep_t *c);

/*
 * Replaces the entries with those of DIR/leader-epoch-checkpoint. RN_ERR_NOT_FOUND when there
 * is no file, RN_ERR_CORRUPT when it is torn or fails its checksum or ordering (the cache is
 * then empty and the caller rebuilds it from the batches), RN_ERR_IO when it cannot be read.
 * A loaded cache is clean (equal to the file).
 */
rn_err_t rn_lep_load(rn_lep_t *c);

/*
 * Writes the entries to the file when they differ from it (rn_lep_dirty). On failure the
 * previous file is still there and valid, the temp file is removed, the cache stays dirty and
 * the error is RN_ERR_NO_SPACE or RN_ERR_IO.
 */
rn_err_t rn_lep_persist(rn_lep_t *c);
/* True when the entries changed since the last load or successful persist. */
bool rn_lep_dirty(const rn_lep_t *c);

size_t rn_lep_count(const rn_lep_t *c);
/* Entry i (0 = oldest), i < rn_lep_count. */
rn_lep_entry_t rn_lep_get(const rn_lep_t *c, size_t i);
/* The newest entry; false when the cache is empty. */
bool rn_lep_latest(const rn_lep_t *c, rn_lep_entry_t *out);

/*
 * Records that epoch starts at start_offset, in memory (rn_lep_persist writes it):
 * - entries starting at or after start_offset go first: they are epochs that wrote nothing
 *   below it (Kafka drops such non-monotonic entries the same way);
 * - then, when the newest remaining entry has this epoch, nothing is added (the epoch goes on);
 *   when it has a newer epoch, RN_ERR_STATE and the cache is unchanged: batches of a newer
 *   epoch lie below start_offset, and an older epoch cannot follow them.
 * Returns RN_OK otherwise, with (epoch, start_offset) as the newest entry.
 */
rn_err_t rn_lep_assign(rn_lep_t *c, uint32_t epoch, uint64_t start_offset);
/*
 * rn_lep_assign for each of the n entries in order, then rn_lep_persist: all or nothing. On any
 * error (RN_ERR_STATE from an assign, or the persist's) the cache is exactly as before.
 */
rn_err_t rn_lep_assign_durably(rn_lep_t *c, const rn_lep_entry_t *entries, size_t n);
/*
 * The rebuild-from-batches form of rn_lep_assign: a batch whose epoch is older than the newest
 * entry (a log damaged or written by a bug) drops the newer entries instead of being refused,
 * so that rebuilding always ends with a cache that matches the batches that follow.
 */
void rn_lep_assign_lenient(rn_lep_t *c, uint32_t epoch, uint64_t start_offset);

/* Log truncation: drops the entries that start at or after end_offset. True if any went. */
bool rn_lep_truncate_from_end(rn_lep_t *c, uint64_t end_offset);
/*
 * Retention moved the log start: entries that start before start_offset go, except that the
 * last of them, whose epoch still covers start_offset, stays with its start moved up to
 * start_offset (Kafka's truncateFromStart). True if anything changed.
 */
bool rn_lep_truncate_from_start(rn_lep_t *c, uint64_t start_offset);
void rn_lep_clear(rn_lep_t *c);

/* ---- OffsetForLeaderEpoch (KIP-101, KIP-279) ---- */

typedef struct rn_lep_answer {
    uint32_t epoch;       /* the largest epoch <= the requested one */
    uint64_t end_offset;  /* where that epoch ended: the next epoch's start, or the log end */
} rn_lep_answer_t;

/*
 * The leader's answer to OffsetForLeaderEpoch(requested) for a log ending at log_end.
 * RN_ERR_NOT_FOUND when no epoch <= requested is known (empty cache, or retention went past
 * it): the follower then falls back to its high watermark (KIP-101).
 */
rn_err_t rn_lep_end_offset_for(const rn_lep_t *c, uint32_t requested, uint64_t log_end,
                               rn_lep_answer_t *out);

/*
 * The follower's side of one round. The follower (cache c, log end log_end) asked with its
 * latest epoch and the leader answered *leader. Returns where the follower must truncate:
 * min(leader end offset, the follower's own end offset for the answered epoch, log_end).
 * *done is true when that is final: the follower knows the answered epoch, so both logs agree
 * below that point. When the answered epoch is one the follower never had (KIP-279's case of
 * two quick leader changes), *done is false: truncate, then ask again with the new latest
 * epoch; the next answer's epoch is then one the follower has. A follower with no epoch at or
 * below the answer truncates to min(leader end offset, log_end) and is done.
 */
uint64_t rn_lep_truncation_point(const rn_lep_t *c, uint64_t log_end,
                                 const rn_lep_answer_t *leader, bool *done);

#endif
