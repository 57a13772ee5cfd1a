/*
 * api.h - request dispatch and the small APIs (ApiVersions, Metadata, CreateTopics,
 * DeleteTopics, ListOffsets, InitProducerId, DescribeCluster). Produce and Fetch have their own
 * modules; BrokerRegistration and BrokerHeartbeat (cluster mode only) are cluster/members.c's.
 * ApiVersions lists exactly the APIs this broker serves.
 *
 * Every API is at version 0. A request whose api is unknown, or whose version is not 0, gets
 * a Response with UNSUPPORTED_VERSION (ApiVersions also carries the supported ranges, so a
 * client can pick) and the connection stays usable. A request whose body does not match its
 * api, or that has no header, gets INVALID_REQUEST.
 */
#ifndef RN_BROKER_API_H
#define RN_BROKER_API_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "net/server.h"
#include "pids.h"
#include "topics.h"

typedef struct rn_fetch rn_fetch_t;
typedef struct rn_ctl rn_ctl_t;
typedef struct rn_img rn_img_t;
typedef struct rn_mem rn_mem_t;
typedef struct rn_repl rn_repl_t;
typedef struct rn_cops rn_cops_t;

/* What request handlers work with; owned by the broker (broker.c). */
typedef struct rn_api_ctx {
    const rn_bcfg_t *cfg;
    rn_topics_t *topics;
    rn_pids_t *pids;
    rn_fetch_t *fetch;
    rn_srv_t *srv;
    rn_ctl_t *ctl;             /* cluster mode: the controller quorum member; NULL otherwise */
    rn_img_t *img;             /* cluster mode: the metadata image */
    rn_mem_t *mem;             /* cluster mode: registration, heartbeats, sessions */
    rn_repl_t *repl;           /* cluster mode: partition replication */
    rn_cops_t *cops;           /* cluster mode: the controller's admin decisions */
    char advertised_host[256];
    uint16_t advertised_port;
} rn_api_ctx_t;

/* The rn_srv_request_cb: validates the header and calls the API's handler. ctx: rn_api_ctx_t. */
void rn_api_dispatch(void *ctx, rn_resp_t *resp, Runnel__Request *req);

/* Answers resp with a request-level error and message, and sends it. */
void rn_api_send_error(rn_resp_t *resp, rn_err_t err, const char *msg);

#endif
