/*
 * cluster_check.h - what the replication tests (test_cluster_repl, _failover, _truncation)
 * ask of a running three-broker cluster (cluster_fixture.h) and of its stopped data dirs:
 *
 *   - one partition as one broker's Metadata shows it (leader, epoch, replicas, ISR, and that
 *     broker's own log end and high watermark);
 *   - waits: a leader (other than a given id), an ISR of a given size, every replica caught up;
 *   - CreateTopics sent to the active controller (DescribeCluster), retried across
 *     NOT_CONTROLLER and transport failures;
 *   - the replicas' segment files compared byte for byte after a clean stop.
 *
 * `skip` arguments are bitmasks of broker indexes (bit i: c->b[i]) the test has SIGSTOPped:
 * a stopped broker still accepts TCP connections (the kernel does the handshake) but never
 * answers, so asking it would only cost a timeout. Killed brokers are skipped by themselves.
 * The waits fail the test through cmocka, after printing every broker's log.
 */
#ifndef RN_CLUSTER_CHECK_H
#define RN_CLUSTER_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster_fixture.h"

#define RN_CC_MAX_REPLICAS 8

typedef struct rn_cc_part {
    bool answered;          /* the broker answered the Metadata request */
    int error;              /* topic or partition error code (0: the partition is there) */
    int32_t leader;         /* -1: none */
    uint32_t leader_epoch;
    size_t n_replicas, n_isr;
    int32_t replicas[RN_CC_MAX_REPLICAS];
    int32_t isr[RN_CC_MAX_REPLICAS];
    int64_t log_end_offset; /* of the answering broker's own log */
    int64_t high_watermark;
} rn_cc_part_t;

/* Metadata for topic from the broker at addr, reduced to one partition. */
rn_cc_part_t rn_cc_part(const char *addr, const char *topic, uint32_t partition);
bool rn_cc_isr_has(const rn_cc_part_t *p, int32_t id);
/* "1,2,3 (epoch E, leader L)" for failure messages; returns buf. */
const char *rn_cc_part_str(const rn_cc_part_t *p, char *buf, size_t len);

/* True when broker index i may be asked: running and not in skip. */
bool rn_cc_usable(rn_hcluster_t *c, unsigned skip, int i);
/* "ADDR1,ADDR2,ADDR3" of the brokers that run (for bootstrap.servers). */
void rn_cc_bootstrap(rn_hcluster_t *c, char *buf, size_t len);

/* The active controller's node id as DescribeCluster says (alive_known), -1 when none. */
int32_t rn_cc_controller(rn_hcluster_t *c, unsigned skip);
/* Waits until the active controller lists every broker not in fenced_mask alive and unfenced
 * and every broker in fenced_mask (bit i: node id i + 1) fenced. */
void rn_cc_wait_members(rn_hcluster_t *c, unsigned skip, unsigned fenced_mask, int timeout_ms);

/*
 * Waits until the partition has a leader other than not_id (-1: any), that leader is usable
 * and says so itself (its own Metadata names itself leader). Returns the leader's view.
 */
rn_cc_part_t rn_cc_wait_leader(rn_hcluster_t *c, unsigned skip, const char *topic,
                               uint32_t partition, int32_t not_id, int timeout_ms);
/* Waits until the leader reports an ISR of exactly want members, absent_id (-1: none) not among
 * them. Returns the leader's view. */
rn_cc_part_t rn_cc_wait_isr(rn_hcluster_t *c, unsigned skip, const char *topic,
                            uint32_t partition, size_t want, int32_t absent_id, int timeout_ms);
/*
 * Waits until every partition of topic is fully replicated on all RN_HC_N brokers (none may be
 * skipped or down): the leader's ISR has all of them, its high watermark equals its log end,
 * and every broker's own log end equals the leader's. *end (may be NULL, nparts entries) gets
 * each partition's log end.
 */
void rn_cc_wait_in_sync(rn_hcluster_t *c, const char *topic, uint32_t nparts, int64_t *end,
                        int timeout_ms);

/* One CreateTopics to addr; the error code, -1 on transport failure. */
int rn_cc_try_create(const char *addr, const char *name, uint32_t partitions, uint32_t rf,
                     const char *const *configs, char *msg, size_t msglen);
/*
 * Creates the topic through the active controller, retrying NOT_CONTROLLER and transport
 * failures until timeout_ms; fails the test on any other error (TOPIC_ALREADY_EXISTS counts as
 * success when accept_exists). Then waits until every usable broker's Metadata shows all
 * partitions with a leader.
 */
void rn_cc_create_topic(rn_hcluster_t *c, unsigned skip, const char *name, uint32_t partitions,
                        uint32_t rf, const char *const *configs, bool accept_exists,
                        int timeout_ms);
/* True when the broker at addr shows the topic with `partitions` partitions, each with a
 * leader; *absent (may be NULL) is set when it shows no such topic at all. */
bool rn_cc_topic_complete(const char *addr, const char *name, uint32_t partitions,
                          bool *absent);

/* SIGTERMs every broker that runs (SIGCONT first for the stopped ones) and asserts clean exits. */
void rn_cc_stop_all(rn_hcluster_t *c);
/*
 * With every broker stopped: for each partition of topic, the concatenation of the *.log
 * files of DATA_DIR/TOPIC-P (in file-name order, which is offset order) is non-empty and the
 * same bytes on every broker. Fails naming the partition, the brokers, the sizes and the first
 * differing byte.
 */
void rn_cc_assert_logs_equal(rn_hcluster_t *c, const char *topic, uint32_t nparts);

/* Produce of one batch of n plain (non-idempotent) records "prefix-first…" to addr with acks;
 * returns the partition's error code, -1 on transport failure (the request waits at most
 * timeout_ms in the broker and timeout_ms + 3 s on the wire). */
int rn_cc_produce(const char *addr, const char *topic, uint32_t partition, int32_t acks, int n,
                  const char *prefix, int first, int timeout_ms, int64_t *base_offset);

#endif
