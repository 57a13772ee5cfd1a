/*
 * members.h - broker registration, heartbeats and fencing (docs/cluster.md §3.2, §3.4, §6.4;
 * KIP-631), both halves, on the broker's loop.
 *
 * Broker side (every broker in cluster mode): every broker.heartbeat.interval.ms, find the
 * active controller (its id from raft, its client address from its RegisterBrokerRecord in
 * the image, or this broker's own listener when it is the controller), send a
 * BrokerRegistration until one is answered with a broker epoch, then BrokerHeartbeats with
 * the last metadata index applied here. NOT_CONTROLLER or a connection error: look the
 * controller up again at the next tick. STALE_BROKER_EPOCH: register again. One request is in
 * flight at a time. The active controller's own broker goes through its own listener too,
 * like any other broker (one code path; the loopback round trip costs well under a ms).
 *
 * Controller side (only while rn_ctl_is_active): sessions in memory (sessions.h).
 *   takeover        every broker of the image gets a fresh deadline (now + session timeout)
 *   registration    id held by another incarnation with a live session: refused (retriable,
 *                   the broker retries each tick); the same incarnation again: its epoch at
 *                   once; else RegisterBrokerRecord, answered after it commits with the epoch
 *                   the image gives it (rn_img_broker, not the raft index: see image.h)
 *   heartbeat       an epoch other than the image's: STALE_BROKER_EPOCH; else a new deadline,
 *                   and once the broker is fenced and metadata_offset >= its epoch, an
 *                   UnfenceBrokerRecord. want_shut_down is not acted on yet (step 13):
 *                   should_shut_down stays false
 *   expiry          (checked every heartbeat interval) FenceBrokerRecord for an unfenced broker
 * One fence/unfence proposal per broker is in flight at a time; apply of an equal state is a
 * no-op, so a retry after a controller change is harmless.
 * Leadership lost: sessions are dropped; waiting registrations get NOT_CONTROLLER.
 *
 * @locality every function runs on the broker's loop thread.
 */
#ifndef RN_BROKER_CLUSTER_MEMBERS_H
#define RN_BROKER_CLUSTER_MEMBERS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../../client/conn.h"
#include "controller.h"
#include "image.h"
#include "net/server.h"
#include "runnel.pb-c.h"

typedef struct rn_mem rn_mem_t;

typedef struct rn_mem_opts {
    uv_loop_t *loop;
    rn_ctl_t *ctl;
    rn_img_t *img;
    int32_t node_id;
    const char *host;               /* this broker's advertised client listener */
    uint16_t port;
    const char *controller_address; /* controller.listen */
    uint32_t heartbeat_ms;          /* broker.heartbeat.interval.ms */
    uint32_t session_timeout_ms;    /* broker.session.timeout.ms */
    uint32_t max_frame;
} rn_mem_opts_t;

/* Starts the heartbeat timer. NULL when out of memory. The strings are copied. */
rn_mem_t *rn_mem_start(const rn_mem_opts_t *o);
/* Stops the timer and closes the connection; free after the loop ran once more. */
void rn_mem_stop(rn_mem_t *m);
void rn_mem_free(rn_mem_t *m);

/* The controller's events.active: takeover (fresh sessions) or loss (drop them). */
void rn_mem_set_active(rn_mem_t *m, bool active);

/* The API handlers (api.c); each completes resp now or after a commit. */
void rn_mem_handle_registration(rn_mem_t *m, rn_resp_t *resp,
                                const Runnel__BrokerRegistrationRequest *req);
void rn_mem_handle_heartbeat(rn_mem_t *m, rn_resp_t *resp,
                             const Runnel__BrokerHeartbeatRequest *req);

/*
 * Sends req (header set by the caller) to the active controller's client listener, on the
 * connection the heartbeats use (responses come back in order). RN_ERR_NOT_CONTROLLER when no
 * controller is known; otherwise as rn_conn_send: cb runs once later.
 */
rn_err_t rn_mem_send_controller(rn_mem_t *m, Runnel__Request *req, int timeout_ms,
                                rn_conn_resp_cb cb, void *ctx);

/*
 * Controlled shutdown: heartbeats from now on carry want_shut_down; the active controller fences
 * this broker (its partitions get other leaders) and answers should_shut_down. done(arg, true)
 * then, once; done(arg, false) never comes from here (the caller bounds the wait).
 * RN_ERR_STATE when not registered.
 */
rn_err_t rn_mem_request_shutdown(rn_mem_t *m, void (*done)(void *arg, bool fenced), void *arg);

/* True when this broker is the active controller and broker id's session is live. */
bool rn_mem_alive(const rn_mem_t *m, int32_t id);
/* This broker's own registration epoch (0 until registered). */
uint64_t rn_mem_own_epoch(const rn_mem_t *m);

#endif
