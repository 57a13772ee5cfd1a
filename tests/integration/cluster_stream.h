/*
 * cluster_stream.h - a producer thread streaming numbered test records (test_client_util.h's
 * keys, values and headers) with acks=all and idempotence at about 2000 records a second, while
 * a cluster test kills and restarts brokers; every delivery report is kept for the read-back.
 */
#ifndef RN_CLUSTER_STREAM_H
#define RN_CLUSTER_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster_fixture.h"
#include "runnel/runnel.h"
#include "test_client_util.h"

typedef struct rn_cs {
    tc_sent_t *sent;               /* by record number, filled by the delivery reports */
    uint64_t max;
    rn_producer_t *p;
    const char *topic;
    int32_t partition;             /* -1: by key */
    _Atomic bool stop;
    _Atomic uint64_t sent_count, reported, ok, failed;
    rn_err_t send_err;
    /* called (on the producer's I/O thread) for each acknowledged record; may be NULL */
    void (*on_ok)(void *ctx, uint64_t i);
    void *ctx;
    pthread_t thread;
} rn_cs_t;

/* Starts streaming to topic (partition, or -1 by key) through every broker of c, with the
 * extra "key=value" client settings (NULL-terminated, may be NULL). */
rn_cs_t *rn_cs_start(rn_hcluster_t *c, const char *topic, int32_t partition, uint64_t max,
                     const char *const *extra, void (*on_ok)(void *, uint64_t), void *ctx);
/* Stops sending, waits for every report (flush, up to flush_ms) and closes the producer;
 * fails the test on a send or flush error. */
void rn_cs_finish(rn_cs_t *x, int flush_ms);
void rn_cs_free(rn_cs_t *x);

#endif
