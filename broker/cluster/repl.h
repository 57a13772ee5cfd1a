/*
 * repl.h - partition replication on one broker in cluster mode (docs/cluster.md §5): the
 * publisher that turns metadata-image deltas into local logs and roles, the leader side (the
 * followers' log ends, the high watermark, ISR shrink and expand through AlterPartition,
 * acks=all waiters) and the follower side (one fetcher per leader: OffsetForLeaderEpoch
 * truncation, then Fetch with replica_id).
 *
 * Roles, from the image (rn_repl_publish after every loop turn that applied entries):
 *   leader == this broker       becomeLeader(leader_epoch): the epoch is recorded in the log's
 *                               epoch cache before its first append and stamped into batches;
 *                               follower log ends are unknown until they fetch in this epoch,
 *                               so the HW does not move until every ISR member has fetched
 *   leader elsewhere, replica   becomeFollower: waiting acks=all produces fail with
 *                               NOT_LEADER_OR_FOLLOWER; the fetcher for that leader first asks
 *                               OffsetForLeaderEpoch(latest local epoch) and truncates a
 *                               diverged suffix (KIP-101/279), then fetches from the log end
 *   no leader / not a replica   nothing is served or fetched
 *
 * High watermark (leader): min over the ISR (plus members being added) of the log ends, the
 * leader's own included; it only moves forward. Each advance wakes consumer long polls and the
 * acks=all waiters. Consumers (replica_id -1) read below it; followers up to the log end.
 *
 * ISR: a follower whose fetches have not reached the leader's log end for
 * replica.lag.time.max.ms is proposed out; a follower not in the ISR whose log end reached the
 * HW (and the start of the leader's epoch) is proposed back; one AlterPartition per partition
 * in flight, sent to the active controller, which commits a PartitionChangeRecord. The
 * committed ISR is used until then. Fencing moves leaders in the image itself (image_elect.c).
 *
 * acks=all: refused with NOT_ENOUGH_REPLICAS before the append when the ISR is below
 * min.insync.replicas; otherwise it waits for the HW to pass the batch (NOT_ENOUGH_REPLICAS_AFTER
 * _APPEND when the ISR shrank below the minimum meanwhile; REQUEST_TIMED_OUT after timeout_ms).
 *
 * Loop thread only.
 */
#ifndef RN_BROKER_CLUSTER_REPL_H
#define RN_BROKER_CLUSTER_REPL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "image.h"
#include "net/server.h"
#include "partition.h"
#include "runnel.pb-c.h"
#include "topics.h"

typedef struct rn_repl rn_repl_t;
typedef struct rn_mem rn_mem_t;
typedef struct rn_fetch rn_fetch_t;

typedef struct rn_repl_opts {
    uv_loop_t *loop;
    rn_topics_t *topics;
    rn_img_t *img;
    rn_mem_t *mem;                 /* the path to the active controller (AlterPartition) */
    int32_t node_id;
    uint32_t max_frame;
    int64_t lag_time_max_ms;       /* replica.lag.time.max.ms */
    uint32_t fetch_wait_max_ms;    /* replica.fetch.wait.max.ms */
    uint32_t fetch_max_bytes;      /* replica.fetch.max.bytes */
    uint32_t fetch_backoff_ms;     /* replica.fetch.backoff.ms */
    uint32_t num_partitions;       /* for rn_topics_create's defaults */
    const char *data_dir;          /* topic ids of local copies, the HW checkpoint */
    int64_t hw_checkpoint_ms;      /* replica.high.watermark.checkpoint.interval.ms */
} rn_repl_opts_t;

/*
 * Every partition already open in topics is taken over at once with no role: until the image
 * says otherwise it is neither served nor fetched (a restarted broker never serves its old
 * logs from before the metadata it has).
 */
rn_repl_t *rn_repl_new(const rn_repl_opts_t *o);
/* Consumer long polls to wake when a high watermark advances or a role changes. */
void rn_repl_set_fetch(rn_repl_t *r, rn_fetch_t *f);
/* Stops the fetchers and the timer, fails every waiter with NOT_LEADER_OR_FOLLOWER; free
 * after the loop ran once more. */
void rn_repl_stop(rn_repl_t *r);
void rn_repl_free(rn_repl_t *r);

/* The publisher: applies the image's pending delta to the local logs and roles. */
void rn_repl_publish(rn_repl_t *r);

/* ---- the data path (fetch.c, produce.c, api.c); part must be served here ---- */

/*
 * May this fetch read part, and up to where? replica_id < 0: a consumer, limit = the HW;
 * else a follower at fetch_offset (its log end, recorded), limit = the log end.
 * RN_OK with *limit and *hw, or NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH (current_epoch
 * older than the partition's), UNKNOWN_LEADER_EPOCH (newer). current_epoch < 0: no check.
 * Single node (no replication state): limit = hw = the log end.
 */
rn_err_t rn_repl_read_limit(rn_part_t *part, int32_t replica_id, int32_t current_epoch,
                            int64_t fetch_offset, uint64_t *limit, uint64_t *hw);
/* The HW consumers see (the log end on a single node). */
uint64_t rn_repl_hw(rn_part_t *part);

/* After an append here (any acks): an ISR of the leader alone moves the HW at once. */
void rn_repl_appended(rn_part_t *part);
/*
 * ListOffsets(latest) may answer: a new leader whose HW has not reached the start of its
 * epoch yet does not know the end of the committed log (KIP-207): LEADER_NOT_AVAILABLE
 * (retriable) then; NOT_LEADER_OR_FOLLOWER on a non-leader; RN_OK on a single node.
 */
rn_err_t rn_repl_offsets_check(rn_part_t *part);

/* Before an append: NOT_LEADER_OR_FOLLOWER, or NOT_ENOUGH_REPLICAS for acks=all; RN_OK. */
rn_err_t rn_repl_produce_check(rn_part_t *part, int32_t acks, char *msg, size_t msglen);

typedef void (*rn_repl_wait_cb)(void *arg, rn_err_t err);
/*
 * acks=all after an append ending at end_offset: *waiting false when the HW is there already
 * (or on a single node); else cb runs once later with RN_OK, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
 * REQUEST_TIMED_OUT (timeout_ms, 0: 30 s) or NOT_LEADER_OR_FOLLOWER.
 */
rn_err_t rn_repl_wait_hw(rn_part_t *part, uint64_t end_offset, uint32_t timeout_ms,
                         rn_repl_wait_cb cb, void *arg, bool *waiting);

/* The OffsetForLeaderEpoch API (answered by partition leaders). */
void rn_repl_handle_offset_for_epoch(rn_repl_t *r, rn_resp_t *resp,
                                     const Runnel__OffsetForLeaderEpochRequest *req);

typedef struct rn_repl_stats {
    uint32_t under_replicated;     /* partitions this broker leads with ISR < replicas */
    uint32_t offline;              /* partitions replicated here that have no leader */
    uint64_t isr_shrinks, isr_expands; /* ISR changes this broker's partitions committed */
} rn_repl_stats_t;
/* This broker's view, for its metrics; all zero for NULL. */
void rn_repl_stats(const rn_repl_t *r, rn_repl_stats_t *st);

/* Cluster-wide counts for DescribeCluster, from the image. */
void rn_repl_counts(const rn_img_t *img, uint32_t *under_replicated, uint32_t *offline);

#endif
