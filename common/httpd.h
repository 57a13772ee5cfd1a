/*
 * httpd.h - the small HTTP/1.1 server behind --metrics-listen: GET /metrics, /healthz,
 * /readyz. Requests are parsed by Debian's http-parser (libhttp-parser-dev), not by hand.
 *
 * It runs on a libuv loop the caller owns (the broker's own loop), or on a loop of its own in
 * a thread (rn_httpd_start_thread, for the processor, whose job loop is not libuv). Either way
 * a slow or hostile client cannot hurt the process:
 *   - a request line and headers over RN_HTTPD_MAX_HEAD bytes get 431 and the connection
 *     closes; a body is never read (GET and HEAD only; anything else is 405);
 *   - bytes that do not parse as HTTP get 400 and the connection closes;
 *   - a request not complete within RN_HTTPD_REQUEST_TIMEOUT_MS (slowloris) gets 408 and
 *     the connection closes; an idle keep-alive connection closes after the same time;
 *   - at most RN_HTTPD_MAX_CONNS connections: the oldest idle one is closed to make room for
 *     a new one (when none is idle, the new one is closed at once);
 *   - one response in flight per connection: reading stops until it is written, so a client
 *     that pipelines without reading holds one response; a write gets 6 timeouts to finish.
 *
 * The handler runs on the server's loop thread with the request's method and path (query
 * string cut off) and fills the response; the server adds Content-Length, Connection and
 * Date-less minimal headers, and answers HEAD without the body.
 */
#ifndef RN_HTTPD_H
#define RN_HTTPD_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "err.h"

#define RN_HTTPD_MAX_HEAD 8192
#define RN_HTTPD_REQUEST_TIMEOUT_MS 10000
#define RN_HTTPD_MAX_CONNS 64

typedef struct rn_http_response {
    int status;                /* 200 when the handler leaves it 0 */
    const char *content_type;  /* "text/plain; charset=utf-8" when NULL */
    rn_buf_t body;             /* the handler appends; the server frees */
} rn_http_response_t;

typedef void (*rn_http_handler)(void *ctx, const char *method, const char *path,
                                rn_http_response_t *resp);

typedef struct rn_httpd rn_httpd_t;

/*
 * Listens on "HOST:PORT" (PORT 0 picks a free one) on loop. RN_ERR_IO with the reason in
 * errbuf when the address cannot be bound.
 */
rn_err_t rn_httpd_start(uv_loop_t *loop, const char *listen, rn_http_handler handler, void *ctx,
                        rn_httpd_t **out, char *errbuf, size_t errlen);
/* The same on a loop of its own, run by a new thread. */
rn_err_t rn_httpd_start_thread(const char *listen, rn_http_handler handler, void *ctx,
                               rn_httpd_t **out, char *errbuf, size_t errlen);
/* Changes the request and keep-alive timeout (tests); call before the first connection. */
void rn_httpd_set_timeout(rn_httpd_t *h, int ms);
/* The bound "HOST:PORT". */
const char *rn_httpd_address(const rn_httpd_t *h);
/*
 * Closes the listener and every connection and frees the server. For rn_httpd_start: call on
 * the loop's thread; the handles finish closing as the loop runs. For a threaded server: from
 * any thread; returns after the thread has ended.
 */
void rn_httpd_stop(rn_httpd_t *h);

/* The standard routes: /metrics renders m; /healthz is 200 "ok"; /readyz 200 "ready" while
 * *ready is non-zero, else 503 with why (may be NULL). ctx for rn_httpd_* is an rn_http_std_t. */
struct rn_metrics;
typedef struct rn_http_std {
    struct rn_metrics *metrics;
    volatile int *ready;
    const char *volatile *not_ready_why;
} rn_http_std_t;
void rn_http_std_handler(void *ctx, const char *method, const char *path,
                         rn_http_response_t *resp);

#endif
