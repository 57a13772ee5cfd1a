/*
 * ctlops.h - the admin and replication requests the active controller decides, in cluster mode
 * (docs/cluster.md §3, §4, §6): each is validated against the metadata image, turned into one
 * raft entry per logical change, and answered once that entry committed and applied here.
 *
 *   CreateTopics      placement over the unfenced brokers (broker ids in order, a random
 *                     start, partition p's replicas start at start + p, so leaders spread);
 *                     ISR = replicas, leader = the first; one TopicRecord per topic, so a
 *                     controller failover never leaves half a topic
 *   DeleteTopics      one RemoveTopicRecord per topic
 *   AlterPartition    from a partition leader (KIP-497): its broker epoch, leader epoch and
 *                     partition epoch must be current, the new ISR a subset of the replicas
 *                     holding the leader, added members unfenced; a PartitionChangeRecord
 *   ElectLeaders      preferred: leadership back to the first replica where it is in the ISR
 *                     and unfenced (also on a timer when auto.leader.rebalance.enable)
 *   AllocateProducerIds  a block of RN_COPS_PID_BLOCK ids through a ProducerIdsRecord (KIP-730)
 * CreateTopics, DeleteTopics and ElectLeaders reaching another broker are forwarded to the
 * active controller (rn_cops_forward); the others answer NOT_CONTROLLER there.
 *
 * The broker side of producer ids is here too: InitProducerId in cluster mode hands out ids
 * from a block this broker got from the controller, asking for the next block when one runs
 * out (requests wait for it).
 *
 * Loop thread only.
 */
#ifndef RN_BROKER_CLUSTER_CTLOPS_H
#define RN_BROKER_CLUSTER_CTLOPS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "controller.h"
#include "image.h"
#include "members.h"
#include "net/server.h"
#include "runnel.pb-c.h"
#include "topics.h"

#define RN_COPS_PID_BLOCK 1000

typedef struct rn_cops rn_cops_t;

typedef struct rn_cops_opts {
    uv_loop_t *loop;
    rn_ctl_t *ctl;
    rn_img_t *img;
    rn_mem_t *mem;
    rn_topics_t *topics;            /* for validating names and configs */
    int32_t node_id;
    uint32_t num_partitions;        /* num.partitions */
    uint32_t default_rf;            /* default.replication.factor */
    bool auto_rebalance;            /* auto.leader.rebalance.enable */
    bool unclean_default;           /* the broker's unclean.leader.election.enable */
    int64_t rebalance_interval_ms;  /* leader.imbalance.check.interval.seconds * 1000 */
} rn_cops_opts_t;

rn_cops_t *rn_cops_new(const rn_cops_opts_t *o);
void rn_cops_stop(rn_cops_t *c);
void rn_cops_free(rn_cops_t *c);
/* The controller's events.active: resets the producer-id reservation. */
void rn_cops_set_active(rn_cops_t *c, bool active);

void rn_cops_create_topics(rn_cops_t *c, rn_resp_t *resp, const Runnel__CreateTopicsRequest *req);
void rn_cops_delete_topics(rn_cops_t *c, rn_resp_t *resp, const Runnel__DeleteTopicsRequest *req);
void rn_cops_alter_partition(rn_cops_t *c, rn_resp_t *resp,
                             const Runnel__AlterPartitionRequest *req);
void rn_cops_elect_leaders(rn_cops_t *c, rn_resp_t *resp, const Runnel__ElectLeadersRequest *req);
void rn_cops_allocate_pids(rn_cops_t *c, rn_resp_t *resp,
                           const Runnel__AllocateProducerIdsRequest *req);
/*
 * KIP-590: on a broker that is not the active controller, sends req (CreateTopics, DeleteTopics,
 * ElectLeaders) on to the active controller and answers resp with its answer; true when it
 * took resp (answered or forwarding), false when this broker is the active controller.
 */
bool rn_cops_forward(rn_cops_t *c, rn_resp_t *resp, Runnel__Request *req);

/* InitProducerId in cluster mode (a new id; ids stay unique across brokers and restarts). */
void rn_cops_init_producer_id(rn_cops_t *c, rn_resp_t *resp,
                              const Runnel__InitProducerIdRequest *req);

#endif
