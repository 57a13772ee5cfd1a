/* httpd.c - the metrics and health HTTP server (see httpd.h). */
#include "httpd.h"

#include <http_parser.h>
#include <pthread.h>
#include <signal.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

typedef struct conn conn_t;

struct rn_httpd {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    bool threaded, stopping;
    uv_thread_t thread;
    uv_async_t stop_async;
    uv_tcp_t listener;
    rn_http_handler handler;
    void *ctx;
    char address[80];
    uv_tcp_t reject;   /* accepts and closes a connection when one cannot be set up */
    bool reject_busy;
    int nconns;
    int timeout_ms;
    int open_handles;  /* listener + async + 2 per connection; freed at 0 once stopping */
    conn_t *conns;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    rn_httpd_t *h;
    http_parser parser;
    size_t head_bytes;
    bool in_head;      /* between the first byte of a request and its headers' end */
    bool closing;
    bool finished;     /* the last response is queued; nothing more is read */
    int writing;       /* responses queued and not yet written (at most one: see respond) */
    char rest[4096];   /* bytes read but not parsed yet: the next pipelined request */
    size_t rest_len;
    char url[2048];
    size_t url_len;
    bool url_too_long;
    int open;          /* handles of this connection not yet closed */
    conn_t *next, *prev;
    char rbuf[4096];
};

typedef struct wreq {
    uv_write_t req;
    conn_t *conn;
    bool close_after;
    size_t len;
    char data[];
} wreq_t;

static http_parser_settings g_settings;

static void handle_closed(uv_handle_t *handle);

static void maybe_free(rn_httpd_t *h)
{
    if (!h->stopping || h->open_handles > 0)
        return;
    if (!h->threaded)
        free(h);
    /* A threaded server is freed by rn_httpd_stop after its loop has returned. */
}

static void conn_closed(uv_handle_t *handle)
{
    conn_t *c = handle->data;
    rn_httpd_t *h = c->h;
    h->open_handles--;
    if (--c->open == 0) {
        free(c);
        maybe_free(h);
    }
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    rn_httpd_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void feed(conn_t *c, const char *data, size_t len);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_timeout(uv_timer_t *t);

/* A response gets this many request timeouts to be written (a scrape of a few MB over a slow
 * link), then a peer that does not read it is cut off. */
#define WRITE_TIMEOUT_FACTOR 6

static void written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->conn;
    bool close_after = w->close_after;
    free(w);
    c->writing--;
    if (c->closing)
        return;
    if (status < 0 || close_after || (c->finished && c->writing == 0)) {
        conn_close(c);
        return;
    }
    if (c->writing > 0)
        return;
    /* The response is out: read (and parse) the next request. */
    uv_timer_start(&c->timer, on_timeout, (uint64_t)c->h->timeout_ms, 0);
    http_parser_pause(&c->parser, 0);
    size_t n = c->rest_len;
    c->rest_len = 0;
    if (n) {
        char pending[sizeof c->rest];
        memcpy(pending, c->rest, n);
        feed(c, pending, n);
    }
    if (!c->closing && !c->finished && c->writing == 0)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

/*
 * Queues one response; with close_after the connection closes once it is written. Reading
 * stops until it is written: one response in flight per connection, so a client that
 * pipelines requests without reading the answers holds one response, not an unbounded queue.
 */
static void respond(conn_t *c, int status, const char *ctype, const void *body, size_t len,
                    bool head_only, bool close_after)
{
    if (c->closing)
        return;
    char head[512];
    const char *type = ctype && strlen(ctype) < 200 ? ctype : "text/plain; charset=utf-8";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, status_text(status), type, len, close_after ? "close" : "keep-alive");
    size_t blen = head_only ? 0 : len;
    wreq_t *w = n > 0 && (size_t)n < sizeof head ? malloc(sizeof *w + (size_t)n + blen) : NULL;
    if (!w) {
        conn_close(c);
        return;
    }
    w->conn = c;
    w->close_after = close_after;
    memcpy(w->data, head, (size_t)n);
    if (blen)
        memcpy(w->data + n, body, blen);
    w->len = (size_t)n + blen;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, written) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->writing++;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, on_timeout, (uint64_t)c->h->timeout_ms * WRITE_TIMEOUT_FACTOR, 0);
}

static void respond_error(conn_t *c, int status, const char *msg)
{
    c->finished = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    respond(c, status, NULL, msg, strlen(msg), false, true);
}

static void on_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->writing > 0 || c->finished)
        conn_close(c); /* a peer that does not read its response */
    else if (c->in_head || c->head_bytes > 0)
        respond_error(c, 408, "request not complete in time\n");
    else
        conn_close(c); /* an idle keep-alive connection */
}

static int on_message_begin(http_parser *p)
{
    conn_t *c = p->data;
    c->in_head = true;
    c->url_len = 0;
    c->url_too_long = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->url_len + len >= sizeof c->url) {
        c->url_too_long = true;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->in_head = false;
    return 1; /* no body is read: GET and HEAD have none, others are refused */
}

/* Queues the response; after the last one nothing more is read or parsed. */
static void reply(conn_t *c, int status, const char *ctype, const void *body, size_t len,
                  bool head_only, bool last)
{
    respond(c, status, ctype, body, len, head_only, last);
    if (last)
        c->finished = true;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->url[c->url_len] = '\0';
    c->head_bytes = 0;
    bool head = p->method == HTTP_HEAD;
    bool keep = http_should_keep_alive(p) != 0 && !c->h->stopping;
    http_parser_pause(p, 1); /* the next request waits until this response is written */
    if (c->url_too_long) {
        reply(c, 431, NULL, "request URL too long\n", 21, head, true);
        return 0;
    }
    if (p->method != HTTP_GET && !head) {
        const char *msg = "only GET and HEAD are served\n";
        reply(c, 405, NULL, msg, strlen(msg), false, true);
        return 0;
    }
    char *q = strchr(c->url, '?');
    if (q)
        *q = '\0';
    rn_http_response_t resp = {0};
    c->h->handler(c->h->ctx, head ? "HEAD" : "GET", c->url, &resp);
    reply(c, resp.status ? resp.status : 200, resp.content_type, resp.body.data, resp.body.len,
          head, !keep);
    rn_buf_free(&resp.body);
    return 0;
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = handle->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

/* Parses data; what follows a complete request waits in c->rest until its response is out. */
static void feed(conn_t *c, const char *data, size_t len)
{
    if (c->head_bytes == 0 && c->writing == 0)
        uv_timer_start(&c->timer, on_timeout, (uint64_t)c->h->timeout_ms, 0);
    c->head_bytes += len;
    size_t used = http_parser_execute(&c->parser, &g_settings, data, len);
    if (c->closing || c->finished)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        size_t left = used < len ? len - used : 0;
        if (left > sizeof c->rest)
            left = sizeof c->rest; /* the rest of a read buffer never exceeds it */
        memcpy(c->rest, data + used, left);
        c->rest_len = left;
        c->head_bytes = left;
        return;
    }
    if (e != HPE_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "malformed HTTP request: %s\n", http_errno_description(e));
        respond_error(c, 400, msg);
        return;
    }
    if (c->in_head && c->head_bytes > RN_HTTPD_MAX_HEAD)
        respond_error(c, 431, "request headers too large\n");
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = stream->data;
    if (nread < 0) {
        /* A half-close (EOF) while a response is going out: finish writing it first. */
        if (nread == UV_EOF && c->writing > 0) {
            c->finished = true;
            uv_read_stop(stream);
        } else {
            conn_close(c);
        }
        return;
    }
    if (nread == 0 || c->closing || c->finished)
        return;
    feed(c, buf->base, (size_t)nread);
}

static void reject_closed(uv_handle_t *handle)
{
    rn_httpd_t *h = handle->data;
    h->reject_busy = false;
    h->open_handles--;
    maybe_free(h);
}

/* The oldest connection that is only waiting for a request, or NULL. */
static conn_t *oldest_idle(rn_httpd_t *h)
{
    conn_t *found = NULL;
    for (conn_t *c = h->conns; c; c = c->next) /* newest first */
        if (!c->closing && c->writing == 0 && !c->in_head && c->head_bytes == 0)
            found = c;
    return found;
}

static void on_connection(uv_stream_t *server, int status)
{
    rn_httpd_t *h = server->data;
    if (status < 0 || h->stopping)
        return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        /* Accept and close it all the same: a connection left pending would stop libuv
         * from watching the listener at all. */
        if (!h->reject_busy && uv_tcp_init(h->loop, &h->reject) == 0) {
            h->reject.data = h;
            h->reject_busy = true;
            h->open_handles++;
            uv_accept(server, (uv_stream_t *)&h->reject);
            uv_close((uv_handle_t *)&h->reject, reject_closed);
        }
        return;
    }
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open = 2;
    h->open_handles += 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (h->nconns > RN_HTTPD_MAX_CONNS) {
        /* Full: the oldest idle keep-alive connection makes room, so idle sockets cannot
         * lock the scraper out; when every connection is busy, this one is refused. */
        conn_t *idle = oldest_idle(h);
        if (!idle || idle == c) {
            conn_close(c);
            return;
        }
        conn_close(idle);
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_timeout, (uint64_t)h->timeout_ms, 0);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

static void handle_closed(uv_handle_t *handle)
{
    rn_httpd_t *h = handle->data;
    h->open_handles--;
    maybe_free(h);
}

static rn_err_t bind_listen(rn_httpd_t *h, const char *listen, char *errbuf, size_t errlen)
{
    char host[256];
    uv_tcp_init(h->loop, &h->listener);
    h->listener.data = h;
    h->open_handles++;
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) {
        snprintf(errbuf, errlen, "metrics.listen '%s' is not HOST:PORT (e.g. 127.0.0.1:9100)",
                 listen);
        return RN_ERR_BAD_CONFIG;
    }
    size_t hl = (size_t)(colon - listen);
    if (listen[0] == '[' && hl >= 2 && listen[hl - 1] == ']') {
        memcpy(host, listen + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        snprintf(host, sizeof host, "%.*s", (int)hl, listen);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "metrics.listen '%s': %s", listen, gai_strerror(rc));
        return RN_ERR_BAD_CONFIG;
    }
    rc = uv_tcp_bind(&h->listener, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot listen for metrics on %s: %s%s", listen,
                 uv_strerror(rc),
                 rc == UV_EADDRINUSE ? " (pick another port, or port 0 for a free one)" : "");
        return RN_ERR_IO;
    }
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&sa, &salen);
    char ip[64] = "?";
    int port = 0;
    if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        snprintf(h->address, sizeof h->address, "[%s]:%d", ip, port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        snprintf(h->address, sizeof h->address, "%s:%d", ip, port);
    }
    return RN_OK;
}

static void init_settings(void)
{
    g_settings.on_message_begin = on_message_begin;
    g_settings.on_url = on_url;
    g_settings.on_headers_complete = on_headers_complete;
    g_settings.on_message_complete = on_message_complete;
}

static rn_err_t start_on(rn_httpd_t *h, const char *listen, char *errbuf, size_t errlen)
{
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, init_settings);
    rn_err_t err = bind_listen(h, listen, errbuf, errlen);
    if (err != RN_OK) {
        h->stopping = true;
        uv_close((uv_handle_t *)&h->listener, handle_closed);
    }
    return err;
}

rn_err_t rn_httpd_start(uv_loop_t *loop, const char *listen, rn_http_handler handler, void *ctx,
                        rn_httpd_t **out, char *errbuf, size_t errlen)
{
    rn_httpd_t *h = calloc(1, sizeof *h);
    if (!h)
        return RN_ERR_NOMEM;
    h->loop = loop;
    h->timeout_ms = RN_HTTPD_REQUEST_TIMEOUT_MS;
    h->handler = handler;
    h->ctx = ctx;
    rn_err_t err = start_on(h, listen, errbuf, errlen);
    if (err != RN_OK) {
        /* The listener's close completes on the caller's loop, which frees h. */
        return err;
    }
    *out = h;
    return RN_OK;
}

static void stop_now(rn_httpd_t *h)
{
    h->stopping = true;
    while (h->conns)
        conn_close(h->conns);
    uv_close((uv_handle_t *)&h->listener, handle_closed);
    if (h->threaded)
        uv_close((uv_handle_t *)&h->stop_async, handle_closed);
}

static void on_stop_async(uv_async_t *a)
{
    stop_now(a->data);
}

static void thread_main(void *arg)
{
    rn_httpd_t *h = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uv_run(h->loop, UV_RUN_DEFAULT);
}

rn_err_t rn_httpd_start_thread(const char *listen, rn_http_handler handler, void *ctx,
                               rn_httpd_t **out, char *errbuf, size_t errlen)
{
    rn_httpd_t *h = calloc(1, sizeof *h);
    if (!h)
        return RN_ERR_NOMEM;
    h->threaded = true;
    h->loop = &h->own_loop;
    h->timeout_ms = RN_HTTPD_REQUEST_TIMEOUT_MS;
    h->handler = handler;
    h->ctx = ctx;
    if (uv_loop_init(h->loop) != 0) {
        free(h);
        return RN_ERR_NOMEM;
    }
    rn_err_t err = start_on(h, listen, errbuf, errlen);
    if (err == RN_OK) {
        uv_async_init(h->loop, &h->stop_async, on_stop_async);
        h->stop_async.data = h;
        h->open_handles++;
        if (uv_thread_create(&h->thread, thread_main, h) != 0) {
            snprintf(errbuf, errlen, "cannot start the metrics thread");
            stop_now(h);
            err = RN_ERR_NOMEM;
        } else {
            *out = h;
            return RN_OK;
        }
    }
    uv_run(h->loop, UV_RUN_DEFAULT); /* finish the closes */
    uv_loop_close(h->loop);
    free(h);
    return err;
}

void rn_httpd_set_timeout(rn_httpd_t *h, int ms)
{
    h->timeout_ms = ms;
}

const char *rn_httpd_address(const rn_httpd_t *h)
{
    return h->address;
}

void rn_httpd_stop(rn_httpd_t *h)
{
    if (!h)
        return;
    if (!h->threaded) {
        stop_now(h);
        return;
    }
    uv_async_send(&h->stop_async);
    uv_thread_join(&h->thread);
    uv_loop_close(h->loop);
    free(h);
}

void rn_http_std_handler(void *ctx, const char *method, const char *path,
                         rn_http_response_t *resp)
{
    (void)method;
    rn_http_std_t *std = ctx;
    if (strcmp(path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        if (!std->metrics || rn_metrics_render(std->metrics, &resp->body) != RN_OK)
            resp->status = 500;
    } else if (strcmp(path, "/healthz") == 0) {
        rn_buf_append(&resp->body, "ok\n", 3);
    } else if (strcmp(path, "/readyz") == 0) {
        bool ready = std->ready && *std->ready;
        const char *why = std->not_ready_why ? *std->not_ready_why : NULL;
        char msg[300];
        int n = ready ? snprintf(msg, sizeof msg, "ready\n")
                      : snprintf(msg, sizeof msg, "not ready: %s\n", why ? why : "starting");
        resp->status = ready ? 200 : 503;
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof msg)
            n = (int)sizeof msg - 1;
        rn_buf_append(&resp->body, msg, (size_t)n);
    } else {
        const char *msg = "not found: try /metrics, /healthz or /readyz\n";
        resp->status = 404;
        rn_buf_append(&resp->body, msg, strlen(msg));
    }
}
