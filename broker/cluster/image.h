/*
 * image.h - the metadata image: the state machine behind the controller's Raft log
 * (docs/cluster.md §4).
 *
 * Every raft entry is one MetadataRecord (proto/metadata.proto). Every broker applies the same
 * entries in the same order with rn_img_apply and so reaches the same image: the registered
 * brokers (with their broker epoch and fenced flag), the topics by id and by name with the
 * PartitionState of each partition, the cluster-wide config defaults, the start of the next
 * producer-id block and the cluster id.
 *
 * Happy path: rn_img_new -> (rn_img_restore from a snapshot)? -> rn_img_apply per committed
 * entry -> rn_img_take_delta after each loop turn (for the publisher) -> rn_img_snapshot when
 * libraft asks -> rn_img_free.
 *
 * Failure modes:
 * - A record that does not fit the current state (unknown topic id, partition_epoch not
 *   current + 1, stale broker epoch, a topic name already taken, ...) is a logged no-op. Apply
 *   is not where validation happens: the proposer (the active controller) validates, and every
 *   replica must reach the same image whatever it is fed, so apply never "fails" on a
 *   well-formed record. The result says what happened, for the leader's raft_apply callback.
 * - A record whose version is newer than RN_IMG_RECORD_VERSION stops the image (§4.3): it and
 *   every later record are no-ops, rn_img_stopped turns true, and rn_img_snapshot refuses, so
 *   this broker never persists or serves an image that silently diverged. It logs at ERROR.
 * - Undecodable bytes: RN_ERR_MALFORMED, the image is unchanged.
 * - Out of memory: RN_ERR_NOMEM, the image is unchanged; the caller cannot skip the entry (the
 *   FSM would diverge) and must stop.
 *
 * Purity: no files, no clock, no randomness, no Raft. The image is the same function of the
 * records whichever broker applies them, and snapshots of equal images are equal byte for byte.
 *
 * Threading: one owner thread (the broker loop) calls everything. Pointers returned by the
 * accessors are read-only views into the image, valid until the next rn_img_apply,
 * rn_img_restore or rn_img_free.
 */
#ifndef RN_CLUSTER_IMAGE_H
#define RN_CLUSTER_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The MetadataRecord.version (and MetadataImage.version) this code knows. */
#define RN_IMG_RECORD_VERSION 1
/* Topic ids and broker incarnation ids are 16 random bytes. */
#define RN_IMG_ID_LEN 16
/* The first producer id of a fresh cluster (ids start at 1, as in broker/pids.c). */
#define RN_IMG_FIRST_PRODUCER_ID 1

typedef struct rn_img rn_img_t;
typedef struct rn_img_topic rn_img_topic_t;

/* A registered broker (RegisterBrokerRecord plus what the log made of it). */
typedef struct rn_img_broker {
    int32_t id;
    uint8_t incarnation_id[RN_IMG_ID_LEN];
    const char *host; /* advertised client listener */
    uint32_t port;
    const char *controller_address; /* "" for none */
    uint64_t epoch;                 /* broker epoch: raft index of its RegisterBrokerRecord */
    bool fenced;                    /* registered fenced; UnfenceBrokerRecord clears it */
} rn_img_broker_t;

/* One partition's PartitionState. */
typedef struct rn_img_partition {
    const int32_t *replicas; /* preferred leader first */
    uint32_t n_replicas;
    const int32_t *isr;
    uint32_t n_isr;
    int32_t leader;           /* -1: offline */
    uint32_t leader_epoch;    /* +1 on every leader change */
    uint32_t partition_epoch; /* +1 on every change; the next PartitionChangeRecord carries +1 */
} rn_img_partition_t;

/* What rn_img_apply did with one record. */
typedef enum rn_img_outcome {
    RN_IMG_APPLIED = 0, /* the image changed */
    RN_IMG_UNCHANGED,   /* fits, and the image already holds that state (a duplicate commit) */
    RN_IMG_REJECTED,    /* does not fit the current state: logged no-op */
    RN_IMG_STOPPED,     /* version newer than known, now or earlier: logged no-op */
} rn_img_outcome_t;

typedef struct rn_img_result {
    rn_img_outcome_t outcome;
    /*
     * RN_IMG_REJECTED: the wire error a controller answers with (TOPIC_ALREADY_EXISTS,
     * UNKNOWN_TOPIC_OR_PARTITION, STALE_BROKER_EPOCH, INVALID_UPDATE_VERSION, INVALID_REQUEST,
     * INCONSISTENT_CLUSTER_ID), or the local error rn_img_apply returned;
     * RN_IMG_STOPPED: RN_ERR_UNSUPPORTED_VERSION; else RN_OK.
     */
    rn_err_t reason;
    char message[200]; /* human text for REJECTED / STOPPED / decode errors; "" otherwise */
} rn_img_result_t;

/* ---- lifecycle ---- */

/* An empty image: no cluster id, no brokers, no topics, next producer-id block at 1. */
rn_err_t rn_img_new(rn_img_t **out);
void rn_img_free(rn_img_t *img);

/*
 * Decodes one MetadataRecord (a raft entry's bytes) and applies it. raft_index is the entry's
 * log index: it becomes the broker epoch of a RegisterBrokerRecord. result may be NULL.
 *
 * Returns RN_OK for every decodable record, whatever result->outcome says; RN_ERR_MALFORMED
 * for bytes that are not a MetadataRecord (also when protobuf-c runs out of memory decoding:
 * it does not tell the two apart); RN_ERR_NOMEM; RN_ERR_INVALID_ARG for record NULL with
 * len > 0. On an error the image is unchanged
 * and result says RN_IMG_REJECTED with the error as reason (not logged: the caller cannot
 * skip a committed entry, so it decides what to do and says so).
 *
 * Per record (the full rules are above each apply_* in image.c):
 *   ClusterRecord          sets the cluster id once; a different id later is rejected
 *   RegisterBrokerRecord   a new incarnation replaces the broker: epoch = raft_index, fenced;
 *                          the same incarnation again is UNCHANGED (its epoch stays, so a
 *                          controller reads the epoch from rn_img_broker, not from the index)
 *   Fence/Unfence/Unregister  need broker_epoch == the current one (else STALE_BROKER_EPOCH)
 *   TopicRecord            a new id and a free name; at least one partition
 *   RemoveTopicRecord      a known id
 *   PartitionChangeRecord  a known (topic id, partition) and partition_epoch == current + 1;
 *                          equal to the current state is UNCHANGED
 *   ConfigRecord           topic "" = cluster default, else an override of a live topic
 *   ProducerIdsRecord      a current broker epoch and next_block_start above the current one
 */
rn_err_t rn_img_apply(rn_img_t *img, const uint8_t *record, size_t len, uint64_t raft_index,
                      rn_img_result_t *result);

/* True once a record newer than RN_IMG_RECORD_VERSION was met (see the top of this file). */
bool rn_img_stopped(const rn_img_t *img);

/* ---- snapshots (the FSM's snapshot / restore) ---- */

/*
 * Encodes the image as a MetadataImage into a buffer from alloc_fn (NULL: malloc), so the
 * caller can pass raft_malloc and hand the buffer to libraft. Equal images give equal bytes.
 * The caller owns *out. RN_ERR_NOMEM; RN_ERR_STATE when the image is stopped.
 */
rn_err_t rn_img_snapshot(const rn_img_t *img, void *(*alloc_fn)(size_t), uint8_t **out,
                         size_t *out_len);

/*
 * Replaces the whole image with a decoded MetadataImage. The bytes stay the caller's. The
 * difference between the old and the new state is added to the pending delta (topics that
 * appeared or went, partitions whose state differs, brokers that differ), so the publisher
 * catches up after a follower installs a snapshot. The stopped flag is cleared.
 * RN_ERR_MALFORMED (undecodable, or out of memory while decoding; or inconsistent: duplicate
 * names or ids, arrays of different lengths, ids not 16 bytes), RN_ERR_BAD_MAGIC (version
 * newer than known), RN_ERR_NOMEM; on any error the image is unchanged. errbuf (may be NULL)
 * says why. libraft's restore callback owns its buffer: free it after this returns.
 */
rn_err_t rn_img_restore(rn_img_t *img, const uint8_t *data, size_t len, char *errbuf,
                        size_t errlen);

/* ---- deltas (for the publisher) ---- */

typedef struct rn_img_topic_ref {
    uint8_t id[RN_IMG_ID_LEN];
    char *name;
    uint32_t n_partitions;
} rn_img_topic_ref_t;

typedef struct rn_img_partition_ref {
    uint8_t topic_id[RN_IMG_ID_LEN];
    uint32_t partition;
} rn_img_partition_ref_t;

/*
 * The net change since the previous rn_img_take_delta, each list in the order the changes
 * happened, without duplicates:
 *   topics_created      live now, absent at the previous take (all their partitions are new)
 *   topics_removed      live at the previous take, gone now (name and count as they were);
 *                       a topic created and removed in between appears in neither list
 *   partitions_changed  state changed, in topics live at both takes (not in topics_created)
 *   brokers_changed     registered, re-registered, fenced, unfenced or unregistered
 * A topic id may be in both topics_removed and topics_created (removed then re-created with
 * the same id): apply the removals first.
 */
typedef struct rn_img_delta {
    rn_img_topic_ref_t *topics_created;
    size_t n_topics_created;
    rn_img_topic_ref_t *topics_removed;
    size_t n_topics_removed;
    rn_img_partition_ref_t *partitions_changed;
    size_t n_partitions_changed;
    int32_t *brokers_changed;
    size_t n_brokers_changed;
} rn_img_delta_t;

/* Moves the pending delta into *out (the caller frees it) and starts an empty one. */
void rn_img_take_delta(rn_img_t *img, rn_img_delta_t *out);
bool rn_img_delta_empty(const rn_img_delta_t *d);
void rn_img_delta_free(rn_img_delta_t *d);

/* ---- read-only accessors (Metadata, DescribeCluster, the controller's validation) ---- */

/* "" until a ClusterRecord is applied. */
const char *rn_img_cluster_id(const rn_img_t *img);
/* First id of the next producer-id block to hand out. */
int64_t rn_img_next_producer_id_block(const rn_img_t *img);

/* Brokers in id order; i < rn_img_broker_count. */
size_t rn_img_broker_count(const rn_img_t *img);
const rn_img_broker_t *rn_img_broker_at(const rn_img_t *img, size_t i);
/* NULL when no broker with that id is registered. */
const rn_img_broker_t *rn_img_broker(const rn_img_t *img, int32_t id);

/* Topics in name order; i < rn_img_topic_count. */
size_t rn_img_topic_count(const rn_img_t *img);
const rn_img_topic_t *rn_img_topic_at(const rn_img_t *img, size_t i);
/* NULL when there is no live topic of that name / id. */
const rn_img_topic_t *rn_img_topic_by_name(const rn_img_t *img, const char *name);
const rn_img_topic_t *rn_img_topic_by_id(const rn_img_t *img, const uint8_t id[RN_IMG_ID_LEN]);

const char *rn_img_topic_name(const rn_img_topic_t *t);
const uint8_t *rn_img_topic_id(const rn_img_topic_t *t); /* RN_IMG_ID_LEN bytes */
uint32_t rn_img_topic_partitions(const rn_img_topic_t *t);
/* NULL when p >= rn_img_topic_partitions(t). */
const rn_img_partition_t *rn_img_partition(const rn_img_topic_t *t, uint32_t p);

/* The topic's config overrides (TopicRecord.configs, then ConfigRecords), in key order. */
void rn_img_topic_config_each(const rn_img_topic_t *t,
                              void (*fn)(void *ctx, const char *key, const char *value),
                              void *ctx);
/* Cluster-wide defaults (ConfigRecords with topic ""), in key order. */
void rn_img_config_each(const rn_img_t *img,
                        void (*fn)(void *ctx, const char *key, const char *value), void *ctx);
/* One stored value: topic NULL or "" for a cluster default. NULL when not set. */
const char *rn_img_config(const rn_img_t *img, const char *topic, const char *key);

#endif
