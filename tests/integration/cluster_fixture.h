/*
 * cluster_fixture.h - three real brokers forming a controller quorum on loopback, for the
 * cluster tests. Controller ports are picked free at run time (libraft cannot bind port 0:
 * the peers dial the addresses of controller.quorum.voters); the client ports are port 0 as
 * everywhere else (harness.h). Failures abort the test through cmocka.
 */
#ifndef RN_CLUSTER_FIXTURE_H
#define RN_CLUSTER_FIXTURE_H

#include <stdint.h>

#include "harness.h"

#define RN_HC_N 3

typedef struct rn_hcluster {
    char *dir;
    char data[RN_HC_N][600];
    char listen_flag[RN_HC_N][64];
    char quorum_flag[256];
    rn_hbroker_t b[RN_HC_N];
} rn_hcluster_t;

/* Starts the three brokers (node ids 1..3) under a fresh temp dir named after prefix, each
 * with the quorum flags plus the NULL-terminated extra settings (may be NULL). */
rn_hcluster_t *rn_hc_start(const char *prefix, const char *const *extra);
/* Node 1 the only controller voter, nodes 2 and 3 observers (observer.bootstrap.servers =
 * node 1): stopping two brokers keeps the quorum. Same extra settings as rn_hc_start. */
rn_hcluster_t *rn_hc_start_observers(const char *prefix, const char *const *extra);
/* Kills what still runs and removes everything. */
void rn_hc_free(rn_hcluster_t *c);
void rn_hc_dump_logs(rn_hcluster_t *c);

int64_t rn_hc_now_ms(void);
void rn_hc_sleep_ms(int ms);

#endif
