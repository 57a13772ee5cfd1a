/* server.c - listener, connections, reading and decoding frames, backpressure, lifecycle. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "logging.h"

#define READ_BUF (256u << 10)
#define ACCEPT_BATCH 64
#define READS_PER_EVENT 4

static void on_conn_poll(uv_poll_t *h, int status, int events);
static void on_tasks(uv_timer_t *t);

/* ------------------------------------------------------------------ helpers ---- */

static void format_addr(const struct sockaddr *sa, char *buf, size_t len, uint16_t *port)
{
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t p = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        p = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", host, p);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        p = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, p);
    } else {
        snprintf(buf, len, "?");
    }
    if (port)
        *port = p;
}

/* Writes one error Response straight to a fresh socket (best effort), for rejects. */
static void send_error_now(int fd, uint32_t cid, rn_err_t err, const char *msg)
{
    Runnel__Response resp = RUNNEL__RESPONSE__INIT;
    resp.correlation_id = cid;
    resp.error = (Runnel__ErrorCode)err;
    resp.error_message = (char *)msg;
    rn_buf_t b = RN_BUF_INIT;
    if (rn_frame_pack(&resp.base, &b) == RN_OK)
        (void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    rn_buf_free(&b);
}

/* Queues an error Response on c in request order. */
static void queue_error(rn_conn_t *c, uint32_t cid, rn_err_t err, const char *msg)
{
    rn_resp_t *r = rn_resp_new(c, NULL, cid);
    if (!r)
        return;
    rn_resp_note_error(r, err);
    Runnel__Response resp = RUNNEL__RESPONSE__INIT;
    resp.error = (Runnel__ErrorCode)err;
    resp.error_message = (char *)msg;
    rn_resp_pack(r, &resp);
    rn_resp_send(r);
}

/* ---------------------------------------------------------- task scheduling ---- */

void rn_conn_update_poll(rn_conn_t *c)
{
    if (c->dead)
        return;
    int ev = (c->reading && !c->paused ? UV_READABLE : 0) | (c->want_write ? UV_WRITABLE : 0);
    if (ev == c->events)
        return;
    if (ev)
        uv_poll_start(&c->poll, ev, on_conn_poll);
    else
        uv_poll_stop(&c->poll);
    c->events = ev;
}

void rn_conn_schedule(rn_conn_t *c, bool close, bool resume)
{
    if (close) {
        c->task_close = true;
        if (!c->dead) {
            c->dead = true;
            uv_poll_stop(&c->poll);
            c->events = 0;
        }
    }
    if (resume)
        c->task_resume = true;
    if (!c->in_tasks) {
        c->in_tasks = true;
        c->next_task = c->srv->tasks;
        c->srv->tasks = c;
    }
    if (!uv_is_active((uv_handle_t *)&c->srv->tasks_timer))
        uv_timer_start(&c->srv->tasks_timer, on_tasks, 0, 0);
}

static void on_conn_closed(uv_handle_t *h)
{
    rn_conn_t *c = h->data;
    close(c->fd);
    free(c);
}

/* Closes c now: cancels what is pending, frees its responses, closes the socket. */
static void close_now(rn_conn_t *c)
{
    rn_srv_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->in_dirty) {
        for (rn_conn_t **pp = &s->dirty; *pp; pp = &(*pp)->next_dirty) {
            if (*pp == c) {
                *pp = c->next_dirty;
                break;
            }
        }
    }
    c->dead = true;
    while (c->head) {
        rn_resp_t *r = c->head;
        c->head = r->next;
        if (!r->done && r->cancel)
            r->cancel(r->cancel_arg);
        rn_resp_free(r);
    }
    c->tail = NULL;
    c->nresp = 0;
    rn_frame_dec_free(c->dec);
    rn_buf_free(&c->stash);
    RN_DEBUG("net", "conn %llu %s closed", (unsigned long long)c->id, c->peer);
    if (s->opts.hooks && s->opts.hooks->conn_closed)
        s->opts.hooks->conn_closed(s->opts.hooks->ctx);
    uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

static size_t feed(rn_conn_t *c, const uint8_t *data, size_t len);

/* Continues after the in-flight cap: decodes the stash, then reads the socket again. */
static void resume(rn_conn_t *c)
{
    if (c->dead || !c->paused || c->nresp >= c->srv->opts.max_inflight)
        return;
    c->paused = false;
    c->in_read = true;
    if (c->stash_pos < c->stash.len) {
        c->stash_pos += feed(c, c->stash.data + c->stash_pos, c->stash.len - c->stash_pos);
        if (c->stash_pos == c->stash.len) {
            rn_buf_reset(&c->stash);
            c->stash_pos = 0;
        }
    }
    c->in_read = false;
    rn_conn_flush(c);
    rn_conn_update_poll(c);
}

static void on_tasks(uv_timer_t *t)
{
    rn_srv_t *s = t->data;
    while (s->tasks) {
        rn_conn_t *list = s->tasks;
        s->tasks = NULL;
        for (rn_conn_t *c = list, *next; c; c = next) {
            next = c->next_task;
            c->in_tasks = false;
            bool do_close = c->task_close, do_resume = c->task_resume;
            c->task_close = c->task_resume = false;
            if (do_close)
                close_now(c);
            else if (do_resume)
                resume(c);
        }
    }
}

/* ------------------------------------------------------------------ reading ---- */

static void stop_reading(rn_conn_t *c)
{
    c->reading = false;
    c->close_when_drained = true;
    if (!c->head)
        rn_conn_schedule(c, true, false);
    else
        rn_conn_update_poll(c);
}

static void handle_frame(rn_conn_t *c, const uint8_t *payload, uint32_t len)
{
    Runnel__Request *req;
    if (rn_frame_unpack_request(payload, len, &req) != RN_OK) {
        uint32_t cid = 0;
        bool have = rn_frame_peek_correlation_id(payload, len, &cid) == RN_OK;
        char req_id[16];
        snprintf(req_id, sizeof req_id, "%u", cid);
        rn_logf_req(RN_LVL_WARN, "net", have ? req_id : NULL,
                    "conn %llu %s: malformed request (%u bytes, correlation id %s); closing after "
                    "the earlier responses", (unsigned long long)c->id, c->peer, len,
                    have ? "readable" : "unreadable");
        if (have)
            queue_error(c, cid, RN_ERR_INVALID_REQUEST,
                        "malformed request: the frame is not a valid Request message");
        stop_reading(c);
        return;
    }
    uint32_t cid = req->header ? req->header->correlation_id : 0;
    rn_resp_t *r = rn_resp_new(c, req, cid);
    if (!r) {
        runnel__request__free_unpacked(req, NULL);
        RN_WARN("net", "conn %llu: out of memory; closing", (unsigned long long)c->id);
        rn_conn_schedule(c, true, false);
        return;
    }
    c->srv->cb(c->srv->cb_ctx, r, req);
}

static void frame_too_large(rn_conn_t *c, const uint8_t *rest, size_t restlen)
{
    uint32_t cid = 0;
    if (rn_frame_peek_correlation_id(rest, restlen, &cid) != RN_OK)
        cid = 0;
    char msg[160];
    snprintf(msg, sizeof msg, "frame larger than max.frame.bytes (%u)",
             c->srv->opts.max_frame_bytes);
    RN_WARN("net", "conn %llu %s: %s; closing", (unsigned long long)c->id, c->peer, msg);
    queue_error(c, cid, RN_ERR_FRAME_TOO_LARGE, msg);
    stop_reading(c);
}

/* Decodes and dispatches frames from data; returns the bytes used (fewer when paused). */
static size_t feed(rn_conn_t *c, const uint8_t *data, size_t len)
{
    size_t pos = 0;
    while (pos < len && c->reading && !c->dead) {
        if (c->nresp >= c->srv->opts.max_inflight) {
            c->paused = true;
            break;
        }
        size_t used = 0;
        const uint8_t *payload = NULL;
        uint32_t plen = 0;
        rn_err_t err = rn_frame_dec_feed(c->dec, data + pos, len - pos, &used, &payload, &plen);
        pos += used;
        if (err == RN_ERR_AGAIN)
            break;
        if (err == RN_ERR_FRAME_TOO_LARGE) {
            frame_too_large(c, data + pos, len - pos);
            break;
        }
        if (err != RN_OK) {
            RN_WARN("net", "conn %llu: %s; closing", (unsigned long long)c->id, rn_err_str(err));
            rn_conn_schedule(c, true, false);
            break;
        }
        handle_frame(c, payload, plen);
    }
    return pos;
}

static void read_some(rn_conn_t *c)
{
    rn_srv_t *s = c->srv;
    c->in_read = true;
    for (int i = 0; i < READS_PER_EVENT && c->reading && !c->paused && !c->dead; i++) {
        ssize_t n = recv(c->fd, s->rbuf, s->rbuf_cap, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                RN_DEBUG("net", "conn %llu %s: recv: %s; closing", (unsigned long long)c->id,
                         c->peer, strerror(errno));
                rn_conn_schedule(c, true, false);
            }
            break;
        }
        if (n == 0) {
            RN_DEBUG("net", "conn %llu %s: end of stream", (unsigned long long)c->id, c->peer);
            stop_reading(c);
            break;
        }
        s->last_io_ns = rn_now_ns();
        size_t used = feed(c, s->rbuf, (size_t)n);
        if (used < (size_t)n && c->paused && !c->dead &&
            rn_buf_append(&c->stash, s->rbuf + used, (size_t)n - used) != RN_OK)
            rn_conn_schedule(c, true, false);
        if ((size_t)n < s->rbuf_cap)
            break;
    }
    c->in_read = false;
    rn_conn_flush(c);
    rn_conn_update_poll(c);
}

static void on_conn_poll(uv_poll_t *h, int status, int events)
{
    rn_conn_t *c = h->data;
    if (c->dead)
        return;
    if (status < 0) {
        RN_DEBUG("net", "conn %llu %s: %s; closing", (unsigned long long)c->id, c->peer,
                 uv_strerror(status));
        rn_conn_schedule(c, true, false);
        return;
    }
    if (events & UV_WRITABLE)
        rn_conn_flush(c);
    if ((events & UV_READABLE) && c->reading && !c->paused && !c->dead)
        read_some(c);
}

/* ---------------------------------------------------------------- accepting ---- */

static void new_conn(rn_srv_t *s, int fd, const struct sockaddr *peer)
{
    rn_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->dec = rn_frame_dec_new(s->opts.max_frame_bytes)) ||
        uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
        if (c)
            rn_frame_dec_free(c->dec);
        free(c);
        close(fd);
        RN_WARN("net", "cannot set up a connection (out of memory); closed it");
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_id;
    c->poll.data = c;
    c->reading = true;
    format_addr(peer, c->peer, sizeof c->peer, NULL);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    RN_DEBUG("net", "conn %llu %s accepted", (unsigned long long)c->id, c->peer);
    if (s->opts.hooks && s->opts.hooks->conn_opened)
        s->opts.hooks->conn_opened(s->opts.hooks->ctx);
    rn_conn_update_poll(c);
}

static void on_accept(uv_poll_t *h, int status, int events);

static void on_accept_resume(uv_timer_t *t)
{
    rn_srv_t *s = t->data;
    if (s->listening)
        uv_poll_start(&s->listen_poll, UV_READABLE, on_accept);
}

static void on_accept(uv_poll_t *h, int status, int events)
{
    rn_srv_t *s = h->data;
    (void)events;
    if (status < 0 || !s->listening)
        return;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* The listener stays readable: pause it, or the loop would spin. */
                RN_WARN("net", "accept: %s; pausing accepts for 100 ms (raise the open-file "
                        "limit or lower max.connections)", strerror(errno));
                uv_poll_stop(&s->listen_poll);
                uv_timer_start(&s->accept_timer, on_accept_resume, 100, 0);
            }
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (s->nconns >= s->opts.max_connections || s->draining) {
            char who[64];
            format_addr((struct sockaddr *)&peer, who, sizeof who, NULL);
            RN_WARN("net", "refusing %s: %s", who,
                    s->draining ? "shutting down" : "max.connections reached");
            send_error_now(fd, 0,
                           s->draining ? RN_ERR_BROKER_NOT_AVAILABLE : RN_ERR_TOO_MANY_CONNECTIONS,
                           s->draining ? "broker is shutting down"
                                       : "broker is at max.connections; retry later");
            close(fd);
            continue;
        }
        new_conn(s, fd, (struct sockaddr *)&peer);
    }
}

static rn_err_t bind_listen(rn_srv_t *s, char *errbuf, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof port, "%u", s->opts.port);
    int rc = getaddrinfo(s->opts.host, port, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot resolve listen host '%s': %s", s->opts.host,
                 gai_strerror(rc));
        return RN_ERR_IO;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        /* A restart right after a crash must get the port back despite TIME_WAIT sockets. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        /* Say what to do about the two failures users meet: a busy port, a foreign address. */
        const char *hint = saved == EADDRINUSE
                               ? " (another process listens there: stop it, or pick another "
                                 "--listen port; port 0 picks a free one)"
                           : saved == EADDRNOTAVAIL
                               ? " (no interface of this machine has that address)"
                               : "";
        snprintf(errbuf, errlen, "cannot listen on %s:%u: %s%s", s->opts.host, s->opts.port,
                 strerror(saved), hint);
        return RN_ERR_IO;
    }
    struct sockaddr_storage sa;
    socklen_t slen = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &slen);
    format_addr((struct sockaddr *)&sa, s->address, sizeof s->address, &s->port);
    s->listen_fd = fd;
    return RN_OK;
}

/* ---------------------------------------------------------------- lifecycle ---- */

rn_err_t rn_srv_start(uv_loop_t *loop, const rn_srv_opts_t *opts, rn_srv_request_cb cb,
                      void *ctx, rn_srv_t **out, char *errbuf, size_t errlen)
{
    rn_srv_t *s = calloc(1, sizeof *s);
    if (!s || !(s->rbuf = malloc(READ_BUF))) {
        free(s);
        return RN_ERR_NOMEM;
    }
    s->loop = loop;
    s->opts = *opts;
    s->cb = cb;
    s->cb_ctx = ctx;
    s->rbuf_cap = READ_BUF;
    s->listen_fd = -1;
    rn_err_t err = bind_listen(s, errbuf, errlen);
    if (err != RN_OK) {
        free(s->rbuf);
        free(s);
        return err;
    }
    uv_poll_init_socket(loop, &s->listen_poll, s->listen_fd);
    s->listen_poll.data = s;
    uv_poll_start(&s->listen_poll, UV_READABLE, on_accept);
    uv_timer_init(loop, &s->tasks_timer);
    s->tasks_timer.data = s;
    uv_timer_init(loop, &s->accept_timer);
    s->accept_timer.data = s;
    s->listening = true;
    s->open_handles = 3;
    *out = s;
    return RN_OK;
}

const char *rn_srv_address(const rn_srv_t *s)
{
    return s->address;
}

uint16_t rn_srv_port(const rn_srv_t *s)
{
    return s->port;
}

uint32_t rn_srv_connections(const rn_srv_t *s)
{
    return s->nconns;
}

int64_t rn_srv_last_io_ns(const rn_srv_t *s)
{
    return s->last_io_ns;
}

static void on_srv_handle_closed(uv_handle_t *h)
{
    rn_srv_t *s = h->data;
    if (h == (uv_handle_t *)&s->listen_poll)
        close(s->listen_fd);
    if (--s->open_handles == 0 && s->freeing) {
        free(s->rbuf);
        free(s);
    }
}

static void close_listener(rn_srv_t *s)
{
    if (!s->listening)
        return;
    s->listening = false;
    uv_close((uv_handle_t *)&s->listen_poll, on_srv_handle_closed);
}

void rn_srv_drain(rn_srv_t *s)
{
    s->draining = true;
    close_listener(s);
    for (rn_conn_t *c = s->conns; c; c = c->next) {
        if (!c->dead)
            stop_reading(c);
    }
}

void rn_srv_free(rn_srv_t *s)
{
    if (!s)
        return;
    s->draining = true;
    s->freeing = true;
    close_listener(s);
    while (s->conns)
        close_now(s->conns);
    s->tasks = NULL;
    uv_close((uv_handle_t *)&s->tasks_timer, on_srv_handle_closed);
    uv_close((uv_handle_t *)&s->accept_timer, on_srv_handle_closed);
}

void rn_srv_burst_begin(rn_srv_t *s)
{
    s->burst++;
}

void rn_srv_burst_end(rn_srv_t *s)
{
    if (--s->burst > 0)
        return;
    while (s->dirty) {
        rn_conn_t *c = s->dirty;
        s->dirty = c->next_dirty;
        c->in_dirty = false;
        rn_conn_flush(c);
    }
}
