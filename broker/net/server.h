/*
 * server.h - the broker's TCP front end on a libuv loop: listening, connections, framing,
 * ordered responses, limits.
 *
 *   socket bytes -> frame decoder (max.frame.bytes) -> Request (protobuf-c) -> on_request
 *   on_request fills an rn_resp_t and sends it, now or later -> responses leave in request
 *   order per connection, memory chunks with writev, file ranges with sendfile(2)
 *
 * Sockets are driven with uv_poll and non-blocking syscalls rather than uv_tcp, so a response
 * can interleave protobuf bytes from memory with record batches sent straight from segment
 * files (sendfile) on the same socket, and so reading can pause per connection.
 *
 * Limits, each an error rather than a crash:
 *   - max.frame.bytes: a longer length prefix gets a Response with FRAME_TOO_LARGE (carrying
 *     the correlation id when the bytes already received show it, else 0), then a close;
 *     nothing is allocated for the frame;
 *   - max.connections: one more connection is accepted, sent TOO_MANY_CONNECTIONS
 *     (correlation id 0) and closed;
 *   - max.inflight.requests.per.connection: with that many responses pending, the broker
 *     stops reading the socket until some are written (TCP backpressure);
 *   - a frame protobuf-c cannot decode: INVALID_REQUEST with the correlation id when it is
 *     readable, then (in every case) a close after the earlier responses are written.
 * Every other connection carries on.
 *
 * Loop thread only.
 */
#ifndef RN_BROKER_SERVER_H
#define RN_BROKER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "runnel.pb-c.h"

typedef struct rn_srv rn_srv_t;
/* One request's slot in its connection's response queue. */
typedef struct rn_resp rn_resp_t;

/*
 * What the server reports as it goes, for metrics (broker/bmetrics.c). Every callback may be
 * NULL; all run on the loop thread, on the request path, so they must be cheap.
 */
typedef struct rn_srv_hooks {
    void *ctx;
    /* A connection was accepted and is served (refused ones are not reported); it closed. */
    void (*conn_opened)(void *ctx);
    void (*conn_closed)(void *ctx);
    /*
     * A response was completed (rn_resp_send or rn_resp_drop): api is the request's ApiKey
     * (-1 when the frame could not be decoded), start_ns the rn_now_ns() of its decoding.
     */
    void (*answered)(void *ctx, int api, int64_t start_ns);
    /* A response to api carries err (rn_resp_note_error, and the server's own errors). */
    void (*error)(void *ctx, int api, rn_err_t err);
} rn_srv_hooks_t;

typedef struct rn_srv_opts {
    const char *host;        /* numeric address or name to bind */
    uint16_t port;           /* 0: any free port */
    uint32_t max_frame_bytes;
    uint32_t max_connections;
    uint32_t max_inflight;
    const rn_srv_hooks_t *hooks; /* NULL: none; must outlive the server */
} rn_srv_opts_t;

/*
 * Called for every decoded request. The handler owns resp until it calls rn_resp_send or
 * rn_resp_drop, now or later on the loop; req belongs to resp and lives as long as it.
 */
typedef void (*rn_srv_request_cb)(void *ctx, rn_resp_t *resp, Runnel__Request *req);

/* Binds (SO_REUSEADDR), listens and starts accepting. errbuf says what failed. */
rn_err_t rn_srv_start(uv_loop_t *loop, const rn_srv_opts_t *opts, rn_srv_request_cb cb,
                      void *ctx, rn_srv_t **out, char *errbuf, size_t errlen);
/* The bound address as "HOST:PORT" (numeric) and its port. */
const char *rn_srv_address(const rn_srv_t *s);
uint16_t rn_srv_port(const rn_srv_t *s);

/*
 * Shutdown, step 1: closes the listener and stops reading every connection; connections close
 * once their pending responses are written.
 */
void rn_srv_drain(rn_srv_t *s);
/* Connections still open. */
uint32_t rn_srv_connections(const rn_srv_t *s);
/* rn_now_ns() when request bytes last arrived on any connection (0: never); io.busy.poll.us. */
int64_t rn_srv_last_io_ns(const rn_srv_t *s);
/* Shutdown, step 2: closes every connection now (cancelling what is pending) and frees the
 * server once its handles are closed (after uv_run gets to them). */
void rn_srv_free(rn_srv_t *s);

/*
 * Responses sent between begin and end are written together at end (one writev per
 * connection). Nests.
 */
void rn_srv_burst_begin(rn_srv_t *s);
void rn_srv_burst_end(rn_srv_t *s);

/* ----------------------------------------------------------- responses ---- */

uint32_t rn_resp_correlation_id(const rn_resp_t *r);
/* The peer's address for logs ("1.2.3.4:5678"). */
const char *rn_resp_peer(const rn_resp_t *r);
/*
 * Reports one error code the response carries (top-level, or one per topic or partition) to
 * the error hook. RN_OK and a NULL r are ignored.
 */
void rn_resp_note_error(rn_resp_t *r, rn_err_t err);

/* Appends a frame (length prefix + msg, correlation_id set from the request). */
rn_err_t rn_resp_pack(rn_resp_t *r, Runnel__Response *msg);
/* Appends len bytes to be filled by the caller; NULL when out of memory. */
uint8_t *rn_resp_reserve(rn_resp_t *r, size_t len);
/*
 * Appends a file range, sent with sendfile(2) after the bytes before it. Takes ownership of
 * fd (closed once sent or when the response is discarded), even on failure.
 */
rn_err_t rn_resp_file(rn_resp_t *r, int fd, uint64_t pos, size_t len);
/* Discards what was appended so far (closing file ranges), to start over with an error. */
void rn_resp_clear(rn_resp_t *r);
/* Completes the response: its bytes leave after every earlier response's. */
void rn_resp_send(rn_resp_t *r);
/* Completes it with no bytes (acks=0). */
void rn_resp_drop(rn_resp_t *r);
/*
 * Registers fn(arg), called once if the connection closes before the response is completed;
 * resp is gone after fn returns and must not be touched again.
 */
void rn_resp_on_cancel(rn_resp_t *r, void (*fn)(void *arg), void *arg);

#endif
