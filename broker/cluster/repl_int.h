/* repl_int.h - what repl.c (roles, leader side) and fetcher.c (follower side) share. */
#ifndef RN_BROKER_CLUSTER_REPL_INT_H
#define RN_BROKER_CLUSTER_REPL_INT_H

#include "repl.h"

#define RN_REPL_MAX_REPLICAS 16
#define RN_REPL_TOPIC_MAX 256

enum { ROLE_NONE, ROLE_LEADER, ROLE_FOLLOWER };
enum { F_TRUNCATE, F_TRUNCATING, F_FETCH };

/* A follower's progress as the leader sees it. */
struct rfol {
    int32_t id;
    int64_t leo;              /* its last fetch offset in this epoch; -1: none yet */
    int64_t caught_up_ms;     /* last time it had everything the leader had (Kafka's rule) */
    uint64_t last_fetch_end;  /* the leader's log end when its previous fetch was answered */
    int64_t last_fetch_ms;    /* when that was */
};

/* An acks=all produce waiting for the HW. */
struct hwait {
    struct hwait *next;
    uint64_t end;
    int64_t deadline_ms;
    rn_repl_wait_cb cb;
    void *arg;
};

struct fetcher;

/* One local partition's replication state (rn_part_repl). */
typedef struct rpart {
    struct rpart *next;            /* in rn_repl's list */
    rn_repl_t *r;
    rn_part_t *part;
    char topic[RN_REPL_TOPIC_MAX];
    uint8_t topic_id[RN_IMG_ID_LEN]; /* all zero until the image names it */
    uint32_t partition;
    int role;
    int32_t leader;
    uint32_t leader_epoch, partition_epoch;
    int32_t replicas[RN_REPL_MAX_REPLICAS];
    uint32_t n_replicas;
    int32_t isr[RN_REPL_MAX_REPLICAS];  /* committed */
    uint32_t n_isr;
    uint64_t hw;
    /* leader */
    uint64_t epoch_start;
    struct rfol fol[RN_REPL_MAX_REPLICAS];
    bool alter_in_flight;
    int64_t alter_retry_ms;        /* after a refused AlterPartition: not before this */
    int32_t pending_isr[RN_REPL_MAX_REPLICAS];
    uint32_t n_pending_isr;
    struct hwait *waiters, **waiters_tail;
    /* follower */
    int fstate;
    int64_t retry_at_ms;           /* backoff after an error */
    struct fetcher *fetcher;
    struct rpart *fnext;           /* in the fetcher's list */
} rpart_t;

struct rn_repl {
    uv_loop_t *loop;
    rn_topics_t *topics;
    rn_img_t *img;
    rn_mem_t *mem;
    rn_fetch_t *fetch;
    int32_t node_id;
    uint32_t max_frame;
    int64_t lag_time_max_ms;
    uint32_t fetch_wait_max_ms, fetch_max_bytes, fetch_backoff_ms, num_partitions;
    char *data_dir;
    uv_timer_t timer;
    int64_t hw_interval_ms, hw_written_ms;
    rpart_t *parts;
    struct fetcher *fetchers;
    bool reconciled;
    bool stopped;
    uint64_t isr_shrinks, isr_expands; /* committed AlterPartitions of this leader */
};

int64_t rn_repl__now_ms(void);
rpart_t *rn_repl__find(rn_repl_t *r, const char *topic, uint32_t partition);

/* hwcheck.c: DATA_DIR/replication-offset-checkpoint */
void rn_repl__hw_write(rn_repl_t *r);
/* At start, after every local partition is attached: their HWs from the checkpoint. */
void rn_repl__hw_read(rn_repl_t *r);

/* fetcher.c */
/* rp becomes a follower of rp->leader: truncate first, then fetch. */
void rn_repl__follow(rpart_t *rp);
/* rp stops following (role change or removal). */
void rn_repl__unfollow(rpart_t *rp);
/* Periodic: retries after backoff, reconnects to moved leaders. */
void rn_repl__fetchers_tick(rn_repl_t *r);
void rn_repl__fetchers_free(rn_repl_t *r);

#endif
