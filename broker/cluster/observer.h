/*
 * observer.h - a broker outside controller.quorum.voters: the metadata image pulled from
 * other brokers (FetchMetadataImage) instead of a raft member (see observer.c). controller.c
 * runs it behind the rn_ctl_* interface, so the rest of the broker does not tell the two apart:
 * an observer is never the active controller and never proposes.
 *
 * @locality the loop thread.
 */
#ifndef RN_BROKER_CLUSTER_OBSERVER_H
#define RN_BROKER_CLUSTER_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "controller.h"

typedef struct rn_obs rn_obs_t;

typedef struct rn_obs_opts {
    int32_t node_id;
    const char *bootstrap;         /* observer.bootstrap.servers: "HOST:PORT,..." */
    uint32_t poll_ms;              /* how often to ask (0: 250) */
    uint32_t max_frame;
    rn_ctl_fsm_t fsm;              /* restore takes each newer image */
    /* The registered brokers' client listeners (from the image), asked after every bootstrap
     * server failed in a row; may be NULL. False or *n 0: none known. */
    bool (*brokers)(void *ctx, char hosts[][256], int *ports, size_t cap, size_t *n);
    void *brokers_ctx;
    /* DATA_DIR: the index of the last image taken is kept in DATA_DIR/observer-index, so a
     * restarted observer never takes an older image than it had (from a lagging broker). */
    const char *data_dir;
} rn_obs_opts_t;

/* Parses "HOST:PORT,..." (at most cap entries); RN_ERR_BAD_CONFIG naming the bad entry. */
rn_err_t rn_obs_parse_servers(const char *list, char hosts[][256], int *ports, size_t cap,
                              size_t *n, char *errbuf, size_t errlen);
/* Starts polling at once; NULL with errbuf on a bad server list or no memory. */
rn_obs_t *rn_obs_start(uv_loop_t *loop, const rn_obs_opts_t *opts, char *errbuf, size_t errlen);
/* The active controller as the last answer named it; -1 before one. */
int32_t rn_obs_controller_id(const rn_obs_t *o);
/* The metadata log index of the image taken last; 0 before the first. */
uint64_t rn_obs_index(const rn_obs_t *o);
/* Stops; done(arg) runs on the loop once the timer is closed. */
void rn_obs_stop(rn_obs_t *o, void (*done)(void *arg), void *arg);
void rn_obs_free(rn_obs_t *o);

#endif
