/* ctlops_int.h - what ctlops.c (topics, partitions, elections) and ctlops_pids.c
 * (producer-id blocks, forwarding) share. Not for other modules: they use ctlops.h. */
#ifndef RN_BROKER_CLUSTER_CTLOPS_INT_H
#define RN_BROKER_CLUSTER_CTLOPS_INT_H

#include "arena.h"
#include "ctlops.h"
#include "metadata.pb-c.h"

struct pid_wait {
    struct pid_wait *next;
    rn_resp_t *resp;
};

struct rn_cops {
    uv_loop_t *loop;
    rn_ctl_t *ctl;
    rn_img_t *img;
    rn_mem_t *mem;
    rn_topics_t *topics;
    int32_t node_id;
    uint32_t num_partitions, default_rf;
    bool auto_rebalance, unclean_default;
    uv_timer_t rebalance_timer;
    bool stopped;
    /* controller side: the next block start after the proposals in flight */
    int64_t pid_reserved;
    /* broker side: this broker's current block and the InitProducerIds waiting for one */
    int64_t pid_next, pid_end;
    bool pid_asking;
    struct pid_wait *pid_waiters;
};

/* One request answered after several proposals: each fills its slot, the last sends. */
struct op {
    rn_cops_t *c;
    rn_resp_t *resp;           /* NULL once the connection is gone */
    rn_arena_t a;
    Runnel__Response r;
    uint32_t pending;
    bool armed;                /* every proposal was made: the last callback answers */
    void (*finish)(struct op *op);
};

struct prop {
    struct op *op;
    size_t slot;
};

/* A request answered once its proposals commit: allocate (it takes resp's cancel hook), make
 * the proposals counting op->pending, then rn_cops__op_arm; rn_cops__op_send packs and sends. */
struct op *rn_cops__op_new(rn_cops_t *c, rn_resp_t *resp);
void rn_cops__op_send(struct op *op);
void rn_cops__op_arm(struct op *op);
/* A request-level error answer. */
void rn_cops__error(rn_resp_t *resp, rn_err_t err, const char *msg);
/* Answers NOT_CONTROLLER (true) unless this broker is the active controller. */
bool rn_cops__refuse(rn_cops_t *c, rn_resp_t *resp);
/* One MetadataRecord to the controller log; cb as rn_ctl_propose's. */
rn_err_t rn_cops__propose(rn_cops_t *c, Runnel__Meta__MetadataRecord *rec, rn_ctl_propose_cb cb,
                          void *arg);
/* The wire error for a proposal's outcome, its message in *msg. */
rn_err_t rn_cops__outcome(rn_err_t status, const rn_img_result_t *res, const char **msg);
/* ctlops_pids.c: InitProducerId waiters still queued at stop get an answer. */
void rn_cops__pids_stop(rn_cops_t *c);

#endif
