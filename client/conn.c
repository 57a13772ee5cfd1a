#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "frame.h"
#include "logging.h"

#define RBUF_SIZE (256 * 1024)
/* A write buffer that grew past this is given back once it drains. */
#define WBUF_KEEP (4u << 20)

typedef struct req {
    struct req *next;
    uint32_t correlation_id;
    int64_t deadline_ns;
    rn_conn_resp_cb cb;
    void *ctx;
} req_t;

typedef struct req_list {
    req_t *head, *tail;
    size_t count;
} req_list_t;

/*
 * One socket: a connection attempt and, when it succeeds, the connection. It outlives its
 * rn_conn_t's interest in it (conn == NULL) until libuv's close callback, because libuv may
 * still hold its write buffer and requests.
 */
typedef struct sock {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    rn_conn_t *conn;
    rn_buf_t writing;       /* bytes handed to uv_write */
    bool write_active;
    rn_frame_dec_t *dec;
    uint8_t *rbuf;
} sock_t;

typedef struct gai {
    uv_getaddrinfo_t req;
    rn_conn_t *conn;        /* NULL when the conn gave up on this lookup */
} gai_t;

struct rn_conn {
    uv_loop_t *loop;
    char host[256];
    int port;
    rn_conn_opts_t opts;
    rn_conn_state_t state;
    sock_t *s;
    gai_t *gai;
    int64_t connect_start_ns;
    int64_t last_failure_ns;
    int64_t last_io_ns;         /* the last request handed to the kernel or response bytes read */
    uint32_t next_cid;
    req_list_t awaiting;        /* expecting a response, in send order */
    req_list_t unwritten_noresp; /* no response expected; bytes still in wbuf */
    req_list_t writing_noresp;  /* no response expected; bytes in the active uv_write */
    rn_buf_t wbuf;              /* packed frames not yet handed to uv_write */
    uv_timer_t defer_timer;     /* reports a failure that happened inside a call */
    rn_err_t deferred_err;
};

static void list_push(req_list_t *l, req_t *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->count++;
}

static req_t *list_pop(req_list_t *l)
{
    req_t *r = l->head;
    if (r) {
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->count--;
    }
    return r;
}

static void list_append(req_list_t *dst, req_list_t *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    dst->count += src->count;
    *src = (req_list_t){0};
}

/* Runs every callback of l with err (and a NULL response), freeing the requests. */
static void list_fail(req_list_t *l, rn_err_t err)
{
    req_t *r;
    while ((r = list_pop(l))) {
        r->cb(r->ctx, err, NULL);
        free(r);
    }
}

rn_conn_t *rn_conn_new(uv_loop_t *loop, const char *host, int port, const rn_conn_opts_t *opts)
{
    rn_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->opts = *opts;
    c->next_cid = 1;
    uv_timer_init(loop, &c->defer_timer);
    c->defer_timer.data = c;
    return c;
}

const char *rn_conn_host(const rn_conn_t *c) { return c->host; }
int rn_conn_port(const rn_conn_t *c) { return c->port; }
rn_conn_state_t rn_conn_state(const rn_conn_t *c) { return c->state; }
size_t rn_conn_inflight(const rn_conn_t *c) { return c->awaiting.count; }
int64_t rn_conn_last_failure_ns(const rn_conn_t *c) { return c->last_failure_ns; }
int64_t rn_conn_last_io_ns(const rn_conn_t *c) { return c->last_io_ns; }

size_t rn_conn_unwritten(const rn_conn_t *c)
{
    return c->wbuf.len + (c->s && c->s->write_active ? c->s->writing.len : 0);
}

static void sock_closed(uv_handle_t *h)
{
    sock_t *s = h->data;
    rn_buf_free(&s->writing);
    rn_frame_dec_free(s->dec);
    free(s->rbuf);
    free(s);
}

/* Lets go of the current socket; libuv finishes with it in the background. */
static void drop_sock(rn_conn_t *c)
{
    if (c->gai) {
        c->gai->conn = NULL;
        uv_cancel((uv_req_t *)&c->gai->req);
        c->gai = NULL;
    }
    sock_t *s = c->s;
    if (!s)
        return;
    c->s = NULL;
    s->conn = NULL;
    uv_close((uv_handle_t *)&s->tcp, sock_closed);
}

void rn_conn_fail(rn_conn_t *c, rn_err_t err)
{
    if (c->state == RN_CONN_DOWN && !c->s && !c->gai && !c->awaiting.count &&
        !c->unwritten_noresp.count && !c->writing_noresp.count)
        return;
    uv_timer_stop(&c->defer_timer);
    RN_DEBUG("client", "connection to %s:%d failed: %s", c->host, c->port, rn_err_str(err));
    drop_sock(c);
    c->state = RN_CONN_DOWN;
    c->last_failure_ns = rn_now_ns();
    rn_buf_reset(&c->wbuf);
    /* Detach everything first: a callback may send on this connection again. */
    req_list_t awaiting = c->awaiting, unwritten = c->unwritten_noresp,
               writing = c->writing_noresp;
    c->awaiting = c->unwritten_noresp = c->writing_noresp = (req_list_t){0};
    list_fail(&writing, err);
    list_fail(&awaiting, err);
    list_fail(&unwritten, err);
    if (c->opts.on_down)
        c->opts.on_down(c, err, c->opts.ctx);
}

static void defer_fired(uv_timer_t *t)
{
    rn_conn_t *c = t->data;
    rn_conn_fail(c, c->deferred_err);
}

/* A failure found inside a call: reported from the loop, so callbacks never nest in calls. */
static void fail_later(rn_conn_t *c, rn_err_t err)
{
    c->deferred_err = err;
    uv_timer_start(&c->defer_timer, defer_fired, 0, 0);
}

static void flush_writes(rn_conn_t *c);

static void write_done(uv_write_t *w, int status)
{
    sock_t *s = w->data;
    s->write_active = false;
    rn_conn_t *c = s->conn;
    if (!c)
        return;
    if (status < 0) {
        rn_conn_fail(c, RN_ERR_TRANSPORT);
        return;
    }
    if (s->writing.cap > WBUF_KEEP)
        rn_buf_free(&s->writing);
    else
        rn_buf_reset(&s->writing);
    req_list_t done = c->writing_noresp;
    c->writing_noresp = (req_list_t){0};
    req_t *r;
    while ((r = list_pop(&done))) {
        r->cb(r->ctx, RN_OK, NULL);
        free(r);
    }
    if (c->s == s)
        flush_writes(c);
}

static void flush_writes(rn_conn_t *c)
{
    sock_t *s = c->s;
    if (c->state != RN_CONN_UP || !s || s->write_active || c->wbuf.len == 0)
        return;
    rn_buf_t t = s->writing;
    s->writing = c->wbuf;
    c->wbuf = t;
    rn_buf_reset(&c->wbuf);
    list_append(&c->writing_noresp, &c->unwritten_noresp);
    uv_buf_t b = uv_buf_init((char *)s->writing.data, (unsigned)s->writing.len);
    s->write_req.data = s;
    int rc = uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &b, 1, write_done);
    if (rc < 0) {
        fail_later(c, RN_ERR_TRANSPORT);
        return;
    }
    s->write_active = true;
    c->last_io_ns = rn_now_ns();
}

static void alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sock_t *s = h->data;
    buf->base = (char *)s->rbuf;
    buf->len = RBUF_SIZE;
}

/* One response frame: match it with the oldest request and hand it over. */
static bool handle_frame(rn_conn_t *c, const uint8_t *payload, uint32_t len)
{
    Runnel__Response *resp;
    if (rn_frame_unpack_response(payload, len, &resp) != RN_OK) {
        rn_conn_fail(c, RN_ERR_TRANSPORT);
        return false;
    }
    req_t *r = c->awaiting.head;
    if (!r || r->correlation_id != resp->correlation_id) {
        RN_DEBUG("client", "%s:%d answered correlation id %u, expected %u", c->host, c->port,
                 resp->correlation_id, r ? r->correlation_id : 0);
        runnel__response__free_unpacked(resp, NULL);
        rn_conn_fail(c, RN_ERR_TRANSPORT);
        return false;
    }
    list_pop(&c->awaiting);
    r->cb(r->ctx, RN_OK, resp);
    free(r);
    return true;
}

static void read_done(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    sock_t *s = stream->data;
    rn_conn_t *c = s->conn;
    if (!c || nread == 0)
        return;
    if (nread < 0) {
        rn_conn_fail(c, RN_ERR_TRANSPORT);
        return;
    }
    c->last_io_ns = rn_now_ns();
    const uint8_t *data = s->rbuf;
    size_t left = (size_t)nread;
    while (left) {
        size_t used;
        const uint8_t *payload;
        uint32_t plen;
        rn_err_t err = rn_frame_dec_feed(s->dec, data, left, &used, &payload, &plen);
        data += used;
        left -= used;
        if (err == RN_ERR_AGAIN)
            break;
        if (err != RN_OK) {
            rn_conn_fail(c, RN_ERR_TRANSPORT);
            return;
        }
        if (!handle_frame(c, payload, plen) || s->conn != c || c->s != s)
            return; /* the connection failed or was replaced inside a callback */
    }
}

static void connected(uv_connect_t *req, int status)
{
    sock_t *s = req->data;
    rn_conn_t *c = s->conn;
    if (!c)
        return;
    if (status < 0) {
        rn_conn_fail(c, RN_ERR_TRANSPORT);
        return;
    }
    if (uv_read_start((uv_stream_t *)&s->tcp, alloc_read, read_done) < 0) {
        rn_conn_fail(c, RN_ERR_TRANSPORT);
        return;
    }
    c->state = RN_CONN_UP;
    RN_DEBUG("client", "connected to %s:%d", c->host, c->port);
    flush_writes(c);
    if (c->state == RN_CONN_UP && c->opts.on_up)
        c->opts.on_up(c, c->opts.ctx);
}

static void connect_addr(rn_conn_t *c, const struct sockaddr *addr)
{
    sock_t *s = calloc(1, sizeof *s);
    if (!s || !(s->rbuf = malloc(RBUF_SIZE)) || !(s->dec = rn_frame_dec_new(c->opts.max_frame))) {
        if (s) {
            free(s->rbuf);
            free(s);
        }
        fail_later(c, RN_ERR_NOMEM);
        return;
    }
    uv_tcp_init(c->loop, &s->tcp);
    s->tcp.data = s;
    s->conn = c;
    c->s = s;
    uv_tcp_nodelay(&s->tcp, 1);
    s->connect_req.data = s;
    if (uv_tcp_connect(&s->connect_req, &s->tcp, addr, connected) < 0)
        fail_later(c, RN_ERR_TRANSPORT);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gai_t *g = req->data;
    rn_conn_t *c = g->conn;
    if (c) {
        c->gai = NULL;
        if (status < 0 || !res)
            rn_conn_fail(c, RN_ERR_TRANSPORT);
        else
            connect_addr(c, res->ai_addr);
    }
    uv_freeaddrinfo(res);
    free(g);
}

void rn_conn_connect(rn_conn_t *c)
{
    if (c->state != RN_CONN_DOWN)
        return;
    c->state = RN_CONN_CONNECTING;
    c->connect_start_ns = rn_now_ns();
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(c->host, c->port, &a4) == 0) {
        connect_addr(c, (const struct sockaddr *)&a4);
        return;
    }
    if (uv_ip6_addr(c->host, c->port, &a6) == 0) {
        connect_addr(c, (const struct sockaddr *)&a6);
        return;
    }
    gai_t *g = calloc(1, sizeof *g);
    if (!g) {
        fail_later(c, RN_ERR_NOMEM);
        return;
    }
    g->conn = c;
    g->req.data = g;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(c->loop, &g->req, resolved, c->host, port, &hints) < 0) {
        free(g);
        fail_later(c, RN_ERR_TRANSPORT);
        return;
    }
    c->gai = g;
}

rn_err_t rn_conn_send(rn_conn_t *c, Runnel__Request *req, int timeout_ms, bool expect_response,
                      rn_conn_resp_cb cb, void *ctx)
{
    req_t *r = malloc(sizeof *r);
    if (!r)
        return RN_ERR_NOMEM;
    r->correlation_id = c->next_cid++;
    if (c->next_cid == 0)
        c->next_cid = 1;
    r->deadline_ns = rn_now_ns() + (int64_t)timeout_ms * 1000000;
    r->cb = cb;
    r->ctx = ctx;
    req->header->correlation_id = r->correlation_id;
    size_t before = c->wbuf.len;
    if (rn_frame_pack(&req->base, &c->wbuf) != RN_OK) {
        c->wbuf.len = before;
        free(r);
        return RN_ERR_NOMEM;
    }
    list_push(expect_response ? &c->awaiting : &c->unwritten_noresp, r);
    if (c->state == RN_CONN_DOWN)
        rn_conn_connect(c);
    else
        flush_writes(c);
    return RN_OK;
}

void rn_conn_check_timeouts(rn_conn_t *c, int64_t now_ns)
{
    if (c->state == RN_CONN_CONNECTING &&
        now_ns - c->connect_start_ns > (int64_t)c->opts.connect_timeout_ms * 1000000) {
        rn_conn_fail(c, RN_ERR_TIMED_OUT);
        return;
    }
    if (c->awaiting.head && c->awaiting.head->deadline_ns < now_ns)
        rn_conn_fail(c, RN_ERR_TIMED_OUT);
}

static void defer_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void rn_conn_free(rn_conn_t *c)
{
    if (!c)
        return;
    c->opts.on_down = NULL;
    c->opts.on_up = NULL;
    rn_conn_fail(c, RN_ERR_CLOSED);
    rn_buf_free(&c->wbuf);
    uv_close((uv_handle_t *)&c->defer_timer, defer_timer_closed);
}
