/*
 * resp.c - responses: building them (protobuf frames, raw bytes, file ranges) and writing a
 * connection's queue in order, memory with sendmsg and file ranges with sendfile(2).
 *
 *   conn queue:  head [done] -> [done] -> [waiting: long-poll fetch] -> [done] -> tail
 *                 \___ written ___/         everything behind it waits, in order
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "logging.h"
#include "varint.h"

#define MAX_IOV 64

rn_resp_t *rn_resp_new(rn_conn_t *c, Runnel__Request *req, uint32_t cid)
{
    rn_resp_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->req = req;
    r->cid = cid;
    r->api = req && req->header ? (int32_t)req->header->api : -1;
    r->start_ns = rn_now_ns();
    r->chunks = r->inline_chunks;
    r->cap = sizeof r->inline_chunks / sizeof r->inline_chunks[0];
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nresp++;
    return r;
}

void rn_resp_free(rn_resp_t *r)
{
    for (uint32_t i = 0; i < r->nchunks; i++) {
        if (r->chunks[i].kind == CHUNK_FILE)
            close(r->chunks[i].fd);
    }
    if (r->chunks != r->inline_chunks)
        free(r->chunks);
    if (r->req)
        runnel__request__free_unpacked(r->req, NULL);
    rn_buf_free(&r->buf);
    free(r);
}

uint32_t rn_resp_correlation_id(const rn_resp_t *r)
{
    return r->cid;
}

const char *rn_resp_peer(const rn_resp_t *r)
{
    return r->conn->peer;
}

void rn_resp_note_error(rn_resp_t *r, rn_err_t err)
{
    if (!r || err == RN_OK)
        return;
    const rn_srv_hooks_t *h = r->conn->srv->opts.hooks;
    if (h && h->error)
        h->error(h->ctx, r->api, err);
}

static struct chunk *add_chunk(rn_resp_t *r)
{
    if (r->nchunks == r->cap) {
        uint32_t cap = r->cap * 2;
        struct chunk *c = malloc(cap * sizeof *c);
        if (!c)
            return NULL;
        memcpy(c, r->chunks, r->nchunks * sizeof *c);
        if (r->chunks != r->inline_chunks)
            free(r->chunks);
        r->chunks = c;
        r->cap = cap;
    }
    return &r->chunks[r->nchunks++];
}

uint8_t *rn_resp_reserve(rn_resp_t *r, size_t len)
{
    struct chunk *last = r->nchunks ? &r->chunks[r->nchunks - 1] : NULL;
    if (!last || last->kind != CHUNK_MEM) {
        if (!(last = add_chunk(r)))
            return NULL;
        last->kind = CHUNK_MEM;
        last->fd = -1;
        last->pos = r->buf.len;
        last->len = 0;
    }
    uint8_t *p = rn_buf_extend(&r->buf, len);
    if (p)
        last->len += len;
    return p;
}

rn_err_t rn_resp_pack(rn_resp_t *r, Runnel__Response *msg)
{
    msg->correlation_id = r->cid;
    size_t n = protobuf_c_message_get_packed_size(&msg->base);
    uint8_t *p = rn_resp_reserve(r, RN_FRAME_LEN_SIZE + n);
    if (!p)
        return RN_ERR_NOMEM;
    rn_le_put32(p, (uint32_t)n);
    protobuf_c_message_pack(&msg->base, p + RN_FRAME_LEN_SIZE);
    return RN_OK;
}

rn_err_t rn_resp_file(rn_resp_t *r, int fd, uint64_t pos, size_t len)
{
    if (len == 0) {
        close(fd);
        return RN_OK;
    }
    struct chunk *c = add_chunk(r);
    if (!c) {
        close(fd);
        return RN_ERR_NOMEM;
    }
    c->kind = CHUNK_FILE;
    c->fd = fd;
    c->pos = pos;
    c->len = len;
    return RN_OK;
}

void rn_resp_on_cancel(rn_resp_t *r, void (*fn)(void *arg), void *arg)
{
    r->cancel = fn;
    r->cancel_arg = arg;
}

void rn_resp_send(rn_resp_t *r)
{
    /* The request is no longer needed; a big produce should not sit in memory until written. */
    if (r->req) {
        runnel__request__free_unpacked(r->req, NULL);
        r->req = NULL;
    }
    const rn_srv_hooks_t *h = r->conn->srv->opts.hooks;
    if (!r->done && h && h->answered)
        h->answered(h->ctx, r->api, r->start_ns);
    r->done = true;
    r->cancel = NULL;
    if (r == r->conn->head)
        rn_conn_kick(r->conn);
}

void rn_resp_clear(rn_resp_t *r)
{
    for (uint32_t i = 0; i < r->nchunks; i++) {
        if (r->chunks[i].kind == CHUNK_FILE)
            close(r->chunks[i].fd);
    }
    r->nchunks = 0;
    rn_buf_reset(&r->buf);
}

void rn_resp_drop(rn_resp_t *r)
{
    rn_resp_clear(r);
    rn_resp_send(r);
}

/* ------------------------------------------------------------------ writing ---- */

static void pop_head(rn_conn_t *c)
{
    rn_resp_t *r = c->head;
    c->head = r->next;
    if (!c->head)
        c->tail = NULL;
    rn_resp_free(r);
    c->nresp--;
    c->chunk_idx = 0;
    c->chunk_off = 0;
    if (c->paused && c->nresp < c->srv->opts.max_inflight)
        rn_conn_schedule(c, false, true);
}

/* Moves the write position n bytes forward, freeing responses fully written. */
static void advance(rn_conn_t *c, size_t n)
{
    while (n > 0 && c->head) {
        rn_resp_t *r = c->head;
        if (c->chunk_idx >= r->nchunks) {
            pop_head(c); /* nothing (left) to write: a dropped response (acks=0) */
            continue;
        }
        struct chunk *ch = &r->chunks[c->chunk_idx];
        size_t left = ch->len - c->chunk_off;
        if (n < left) {
            c->chunk_off += n;
            return;
        }
        n -= left;
        c->chunk_off = 0;
        if (++c->chunk_idx == r->nchunks)
            pop_head(c);
    }
}

/* Gathers memory chunks from the write position until a file chunk or a pending response. */
static int gather(rn_conn_t *c, struct iovec *iov, size_t *total)
{
    int n = 0;
    uint32_t idx = c->chunk_idx;
    size_t off = c->chunk_off;
    *total = 0;
    for (rn_resp_t *r = c->head; r && r->done && n < MAX_IOV; r = r->next, idx = 0, off = 0) {
        for (; idx < r->nchunks && n < MAX_IOV; idx++, off = 0) {
            const struct chunk *ch = &r->chunks[idx];
            if (ch->kind != CHUNK_MEM)
                return n;
            iov[n].iov_base = r->buf.data + ch->pos + off;
            iov[n].iov_len = ch->len - off;
            *total += iov[n].iov_len;
            n++;
        }
    }
    return n;
}

/*
 * Fallback when the file system cannot sendfile: one bounded pread and send. Returns like
 * send(2); 0 when the file ends early.
 */
static ssize_t pread_send(rn_conn_t *c, int fd, uint64_t pos, size_t len)
{
    uint8_t buf[64 * 1024];
    if (len > sizeof buf)
        len = sizeof buf;
    ssize_t n = pread(fd, buf, len, (off_t)pos);
    if (n <= 0)
        return n;
    return send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void write_failed(rn_conn_t *c, const char *what)
{
    RN_DEBUG("net", "conn %llu %s: %s: %s; closing", (unsigned long long)c->id, c->peer, what,
             strerror(errno));
    rn_conn_schedule(c, true, false);
}

void rn_conn_flush(rn_conn_t *c)
{
    while (!c->dead && c->head && c->head->done) {
        rn_resp_t *r = c->head;
        if (c->chunk_idx >= r->nchunks) {
            pop_head(c);
            continue;
        }
        const struct chunk *ch = &r->chunks[c->chunk_idx];
        if (c->chunk_off >= ch->len) {
            /* An empty chunk: a write of 0 bytes would make no progress. */
            c->chunk_idx++;
            c->chunk_off = 0;
            continue;
        }
        ssize_t n;
        size_t want;
        if (ch->kind == CHUNK_FILE) {
            off_t off = (off_t)(ch->pos + c->chunk_off);
            want = ch->len - c->chunk_off;
            n = sendfile(c->fd, ch->fd, &off, want);
            if (n < 0 && (errno == EINVAL || errno == ENOSYS))
                n = pread_send(c, ch->fd, (uint64_t)off, want);
            if (n == 0) {
                /* The segment is shorter than the range the response announced. */
                errno = EIO;
                write_failed(c, "sendfile hit the end of a segment");
                return;
            }
        } else {
            struct iovec iov[MAX_IOV];
            struct msghdr msg = {0};
            msg.msg_iov = iov;
            msg.msg_iovlen = (size_t)gather(c, iov, &want);
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->want_write = true;
                rn_conn_update_poll(c);
                return;
            }
            write_failed(c, ch->kind == CHUNK_FILE ? "sendfile" : "send");
            return;
        }
        advance(c, (size_t)n);
        if ((size_t)n < want) {
            /* The socket buffer is full: continue when it drains. */
            c->want_write = true;
            rn_conn_update_poll(c);
            return;
        }
    }
    if (c->dead)
        return;
    if (c->want_write) {
        c->want_write = false;
        rn_conn_update_poll(c);
    }
    if (!c->head && c->close_when_drained)
        rn_conn_schedule(c, true, false);
}

void rn_conn_kick(rn_conn_t *c)
{
    if (c->dead || c->in_read)
        return; /* the read callback flushes when it ends */
    if (c->srv->burst > 0) {
        if (!c->in_dirty) {
            c->in_dirty = true;
            c->next_dirty = c->srv->dirty;
            c->srv->dirty = c;
        }
        return;
    }
    rn_conn_flush(c);
}
