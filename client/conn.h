/*
 * conn.h - one TCP connection to one broker address, driven by a handle's loop thread.
 *
 * Happy path: rn_conn_send packs a request frame into the connection's write buffer and
 * connects first when needed. Frames that pile up while a write is in progress leave together
 * in the next uv_write, so a busy producer writes many requests per system call while an idle
 * one writes each request at once. Responses come back in request order (DESIGN §3); each is
 * matched with the oldest outstanding request and its callback runs.
 *
 * Failure modes: a refused or timed-out connect, a read or write error, EOF, a response
 * whose correlation id does not match, a frame that does not parse, or the oldest request
 * outliving its timeout: the socket is closed and every outstanding request fails through its
 * callback (RN_ERR_TRANSPORT, or RN_ERR_TIMED_OUT). The rn_conn_t itself survives; the next
 * send connects again.
 *
 * @locality: every function runs on the loop thread that owns the connection.
 */
#ifndef RN_CLIENT_CONN_H
#define RN_CLIENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "runnel.pb-c.h"

typedef struct rn_conn rn_conn_t;

typedef enum rn_conn_state {
    RN_CONN_DOWN,
    RN_CONN_CONNECTING,
    RN_CONN_UP,
} rn_conn_state_t;

/*
 * A request's outcome. err RN_OK: resp is the broker's answer and the callback owns it
 * (free with runnel__response__free_unpacked(resp, NULL)); for a request sent without
 * expecting a response, resp is NULL and RN_OK means "written to the socket". Otherwise
 * resp is NULL and err says why the request failed.
 */
typedef void (*rn_conn_resp_cb)(void *ctx, rn_err_t err, Runnel__Response *resp);

typedef struct rn_conn_opts {
    uint32_t max_frame;      /* largest response frame accepted */
    int connect_timeout_ms;
    /* Runs after the connection came up / after it failed (its requests already failed). */
    void (*on_up)(rn_conn_t *c, void *ctx);
    void (*on_down)(rn_conn_t *c, rn_err_t err, void *ctx);
    void *ctx;
} rn_conn_opts_t;

/* NULL when out of memory. Does not connect yet. */
rn_conn_t *rn_conn_new(uv_loop_t *loop, const char *host, int port, const rn_conn_opts_t *opts);
/*
 * Fails what is outstanding with RN_ERR_CLOSED, closes the socket and frees; the memory the
 * socket needs lives on until libuv's close callback, so run the loop once more.
 */
void rn_conn_free(rn_conn_t *c);

const char *rn_conn_host(const rn_conn_t *c);
int rn_conn_port(const rn_conn_t *c);
rn_conn_state_t rn_conn_state(const rn_conn_t *c);
/* Requests sent (or queued to send) that still await a response. */
size_t rn_conn_inflight(const rn_conn_t *c);
/* Bytes packed but not yet handed to the kernel. */
size_t rn_conn_unwritten(const rn_conn_t *c);
/* Monotonic ns of the last failure (0: never failed). */
int64_t rn_conn_last_failure_ns(const rn_conn_t *c);
/* Monotonic ns when a write was last handed to the kernel or response bytes last arrived
 * (0: never). */
int64_t rn_conn_last_io_ns(const rn_conn_t *c);

/* Starts connecting when down; no-op otherwise. */
void rn_conn_connect(rn_conn_t *c);

/*
 * Sends req; sets req->header->correlation_id (the header must be set). The response must
 * arrive within timeout_ms of this call or the connection fails. RN_OK: cb runs exactly once,
 * later (never from inside this call). RN_ERR_NOMEM: nothing was sent and cb never runs.
 */
rn_err_t rn_conn_send(rn_conn_t *c, Runnel__Request *req, int timeout_ms, bool expect_response,
                      rn_conn_resp_cb cb, void *ctx);

/* Fails the connection when its connect or oldest request is past its deadline. */
void rn_conn_check_timeouts(rn_conn_t *c, int64_t now_ns);
/* Closes the socket now and fails every outstanding request with err. */
void rn_conn_fail(rn_conn_t *c, rn_err_t err);

#endif
