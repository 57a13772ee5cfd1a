/* fetch.c - the Fetch API: reading slices, long polls, and the hand-written response. */
#include "fetch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bmetrics.h"
#include "buf.h"
#include "frame.h"
#include "logging.h"
#include "repl.h"
#include "varint.h"

#define DEFAULT_MAX_BYTES (50u << 20)
#define DEFAULT_PARTITION_MAX_BYTES (1u << 20)
#define MAX_RESPONSE_BYTES (1u << 30)
#define MAX_SLICES 16  /* segments one partition's records may span in one response */

struct fwait {
    struct fwait *prev, *next;
    rn_fetch_t *f;
    rn_resp_t *resp;
    const Runnel__FetchRequest *req; /* owned by resp */
    uv_timer_t timer;
};

struct rn_fetch {
    uv_loop_t *loop;
    rn_topics_t *topics;
    rn_srv_t *srv;
    uv_check_t check;
    bool poked;
    bool closing;
    struct fwait *waiters;
    size_t nwaiting;
};

/* One partition of a response being assembled. */
struct fpart {
    uint32_t partition;
    rn_err_t err;
    int64_t high_watermark, log_start_offset, log_end_offset;
    rn_log_slice_t slices[MAX_SLICES];
    uint32_t nslices;
    size_t bytes;
    uint64_t records;        /* in the slices' batches */
    void *stats;             /* the topic's metrics (rn_topic_stats) */
    size_t size;             /* encoded FetchPartitionData, records included */
};

struct ftopic {
    const char *name;
    struct fpart *parts;
    size_t n;
    size_t size;             /* encoded FetchTopicData */
};

struct fresult {
    struct ftopic *topics;
    size_t n;
    size_t bytes;            /* record bytes over all partitions */
    bool has_error;
};

/* ------------------------------------------------------------------ reading ---- */

static void release(struct fresult *res)
{
    for (size_t i = 0; i < res->n; i++) {
        for (size_t j = 0; j < res->topics[i].n; j++) {
            struct fpart *fp = &res->topics[i].parts[j];
            for (uint32_t k = 0; k < fp->nslices; k++)
                rn_log_slice_release(&fp->slices[k]);
        }
        free(res->topics[i].parts);
    }
    free(res->topics);
    memset(res, 0, sizeof *res);
}

static void read_partition(rn_fetch_t *f, int32_t replica_id, const char *topic_name,
                           const Runnel__FetchPartition *rp, struct fpart *fp, size_t *budget,
                           struct fresult *res)
{
    fp->partition = rp->partition;
    fp->high_watermark = fp->log_start_offset = fp->log_end_offset = -1;
    rn_topic_t *topic = rn_topics_find(f->topics, topic_name);
    rn_part_t *part = topic ? rn_topic_partition(topic, rp->partition) : NULL;
    if (!part) {
        fp->err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        res->has_error = true;
        return;
    }
    /* Who may read what: consumers below the high watermark, followers to the log end. */
    uint64_t limit, hwm;
    rn_err_t rerr = rn_repl_read_limit(part, replica_id, rp->current_leader_epoch,
                                       rp->fetch_offset, &limit, &hwm);
    if (rerr != RN_OK) {
        fp->err = rerr;
        res->has_error = true;
        return;
    }
    fp->stats = rn_topic_stats(topic);
    rn_log_t *log = rn_part_log(part);
    uint64_t hw = limit;
    fp->high_watermark = (int64_t)hwm;
    fp->log_end_offset = (int64_t)rn_log_end_offset(log);
    fp->log_start_offset = (int64_t)rn_log_start_offset(log);
    if (rp->fetch_offset < fp->log_start_offset || rp->fetch_offset > fp->log_end_offset) {
        fp->err = RN_ERR_OFFSET_OUT_OF_RANGE;
        res->has_error = true;
        return;
    }
    size_t pmax = rp->partition_max_bytes ? rp->partition_max_bytes : DEFAULT_PARTITION_MAX_BYTES;
    uint64_t off = (uint64_t)rp->fetch_offset;
    while (fp->nslices < MAX_SLICES && off < hw && fp->bytes < pmax) {
        size_t want = pmax - fp->bytes < *budget ? pmax - fp->bytes : *budget;
        if (want == 0)
            break;
        rn_log_slice_t *s = &fp->slices[fp->nslices];
        rn_err_t err = rn_log_read(log, off, hw, want, s);
        if (err != RN_OK) {
            fp->err = rn_part_wire_err(err);
            res->has_error = true;
            break;
        }
        if (s->len == 0)
            break;
        if (s->len > want && res->bytes > 0) {
            /* Only the response's very first batch may exceed the limits. */
            rn_log_slice_release(s);
            break;
        }
        fp->nslices++;
        fp->bytes += s->len;
        fp->records += s->next_offset - s->first_offset;
        res->bytes += s->len;
        *budget = s->len < *budget ? *budget - s->len : 0;
        off = s->next_offset;
    }
}

/* Reads what the request asks for now. False when out of memory. */
static bool evaluate(rn_fetch_t *f, const Runnel__FetchRequest *req, struct fresult *res)
{
    memset(res, 0, sizeof *res);
    size_t budget = req->max_bytes ? req->max_bytes : DEFAULT_MAX_BYTES;
    if (budget > MAX_RESPONSE_BYTES)
        budget = MAX_RESPONSE_BYTES;
    if (!(res->topics = calloc(req->n_topics ? req->n_topics : 1, sizeof *res->topics)))
        return false;
    for (size_t i = 0; i < req->n_topics; i++) {
        const Runnel__FetchTopic *rt = req->topics[i];
        struct ftopic *ft = &res->topics[res->n++];
        ft->name = rt->name;
        if (!(ft->parts = calloc(rt->n_partitions ? rt->n_partitions : 1, sizeof *ft->parts))) {
            release(res);
            return false;
        }
        for (size_t j = 0; j < rt->n_partitions; j++)
            read_partition(f, req->replica_id, rt->name, rt->partitions[j], &ft->parts[ft->n++],
                           &budget, res);
    }
    return true;
}

/* ----------------------------------------------------------------- encoding ---- */

/*
 * Response := 1:correlation_id  15:FetchResponse
 * FetchResponse := (1:FetchTopicData)*
 * FetchTopicData := 1:name (2:FetchPartitionData)*
 * FetchPartitionData := 1:partition 2:error 3:high_watermark 4:log_start_offset
 *                       5:log_end_offset 15:records
 * proto3: a zero scalar is not written. Every field number is <= 15: one-byte tags.
 */
#define TAG(field, wire) ((uint8_t)(((field) << 3) | (wire)))

static size_t varint_field_size(uint64_t v)
{
    return v ? 1 + rn_varint_size_u64(v) : 0;
}

static size_t len_field_size(size_t len)
{
    return 1 + rn_varint_size_u64(len) + len;
}

static size_t part_head_size(const struct fpart *fp)
{
    return varint_field_size(fp->partition) + varint_field_size((uint64_t)fp->err) +
           varint_field_size((uint64_t)fp->high_watermark) +
           varint_field_size((uint64_t)fp->log_start_offset) +
           varint_field_size((uint64_t)fp->log_end_offset) +
           (fp->bytes ? 1 + rn_varint_size_u64(fp->bytes) : 0);
}

static size_t compute_sizes(struct fresult *res)
{
    size_t fetch_size = 0;
    for (size_t i = 0; i < res->n; i++) {
        struct ftopic *ft = &res->topics[i];
        size_t nl = strlen(ft->name);
        ft->size = nl ? len_field_size(nl) : 0;
        for (size_t j = 0; j < ft->n; j++) {
            struct fpart *fp = &ft->parts[j];
            fp->size = part_head_size(fp) + fp->bytes;
            ft->size += len_field_size(fp->size);
        }
        fetch_size += len_field_size(ft->size);
    }
    return fetch_size;
}

static void put_varint(rn_buf_t *b, uint64_t v)
{
    uint8_t tmp[RN_VARINT_MAX];
    rn_buf_append(b, tmp, rn_varint_put_u64(tmp, v));
}

static void put_varint_field(rn_buf_t *b, unsigned field, uint64_t v)
{
    if (!v)
        return;
    uint8_t tag = TAG(field, 0);
    rn_buf_append(b, &tag, 1);
    put_varint(b, v);
}

static void put_len_field(rn_buf_t *b, unsigned field, size_t len)
{
    uint8_t tag = TAG(field, 2);
    rn_buf_append(b, &tag, 1);
    put_varint(b, len);
}

/* Moves the bytes gathered in b into the response, counting them in *written. */
static bool flush_mem(rn_resp_t *resp, rn_buf_t *b, size_t *written)
{
    if (!b->len)
        return true;
    uint8_t *p = rn_resp_reserve(resp, b->len);
    if (!p)
        return false;
    memcpy(p, b->data, b->len);
    *written += b->len;
    rn_buf_reset(b);
    return true;
}

/* Writes the whole response into resp: memory for the protobuf, file ranges for records. */
static bool encode(rn_resp_t *resp, struct fresult *res)
{
    size_t fetch_size = compute_sizes(res);
    uint32_t cid = rn_resp_correlation_id(resp);
    size_t total = varint_field_size(cid) + len_field_size(fetch_size);
    if (total > UINT32_MAX)
        return false;
    rn_buf_t b = RN_BUF_INIT;
    size_t written = 0;
    uint8_t len[4];
    rn_le_put32(len, (uint32_t)total);
    rn_buf_append(&b, len, 4);
    put_varint_field(&b, 1, cid);
    put_len_field(&b, 15, fetch_size);
    bool ok = true;
    for (size_t i = 0; i < res->n && ok; i++) {
        struct ftopic *ft = &res->topics[i];
        put_len_field(&b, 1, ft->size);
        size_t nl = strlen(ft->name);
        if (nl) {
            put_len_field(&b, 1, nl);
            rn_buf_append(&b, ft->name, nl);
        }
        for (size_t j = 0; j < ft->n && ok; j++) {
            struct fpart *fp = &ft->parts[j];
            put_len_field(&b, 2, fp->size);
            put_varint_field(&b, 1, fp->partition);
            put_varint_field(&b, 2, (uint64_t)fp->err);
            put_varint_field(&b, 3, (uint64_t)fp->high_watermark);
            put_varint_field(&b, 4, (uint64_t)fp->log_start_offset);
            put_varint_field(&b, 5, (uint64_t)fp->log_end_offset);
            if (!fp->bytes)
                continue;
            put_len_field(&b, 15, fp->bytes);
            ok = flush_mem(resp, &b, &written);
            for (uint32_t k = 0; k < fp->nslices && ok; k++) {
                rn_log_slice_t *s = &fp->slices[k];
                ok = rn_resp_file(resp, s->fd, s->pos, s->len) == RN_OK;
                s->fd = -1; /* the response owns it now */
                written += s->len;
            }
        }
    }
    /* An append above that failed for memory leaves fewer bytes than announced: check. */
    ok = ok && flush_mem(resp, &b, &written) && written == RN_FRAME_LEN_SIZE + total;
    rn_buf_free(&b);
    return ok;
}

/* Counts what the response carries: bytes and records per topic, error codes. */
static void count(rn_resp_t *resp, const struct fresult *res)
{
    for (size_t i = 0; i < res->n; i++) {
        for (size_t j = 0; j < res->topics[i].n; j++) {
            const struct fpart *fp = &res->topics[i].parts[j];
            rn_resp_note_error(resp, fp->err);
            if (fp->bytes)
                rn_bm_fetched(fp->stats, fp->bytes, fp->records);
        }
    }
}

static void respond(rn_resp_t *resp, const Runnel__FetchRequest *req, struct fresult *res)
{
    (void)req;
    if (!encode(resp, res)) {
        rn_resp_clear(resp);
        release(res);
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    count(resp, res);
    release(res);
    rn_resp_send(resp);
}

/* ---------------------------------------------------------------- long poll ---- */

static bool ready(const Runnel__FetchRequest *req, const struct fresult *res)
{
    return res->has_error || res->bytes >= req->min_bytes || req->max_wait_ms == 0;
}

static void on_waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

static void unlink_waiter(struct fwait *w)
{
    rn_fetch_t *f = w->f;
    if (w->prev)
        w->prev->next = w->next;
    else
        f->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    f->nwaiting--;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_waiter_closed);
}

/* Answers w if it is ready (or force); then w is gone. */
static void try_answer(struct fwait *w, bool force)
{
    struct fresult res;
    if (!evaluate(w->f, w->req, &res)) {
        rn_resp_t *resp = w->resp;
        unlink_waiter(w);
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    if (!force && !ready(w->req, &res)) {
        release(&res);
        return;
    }
    rn_resp_t *resp = w->resp;
    const Runnel__FetchRequest *req = w->req;
    unlink_waiter(w);
    respond(resp, req, &res);
}

static void on_timeout(uv_timer_t *t)
{
    try_answer(t->data, true);
}

static void on_cancel(void *arg)
{
    unlink_waiter(arg);
}

/* True when something changed that w might care about: new data, or a partition gone. */
static bool worth_a_look(rn_fetch_t *f, const Runnel__FetchRequest *req)
{
    for (size_t i = 0; i < req->n_topics; i++) {
        rn_topic_t *topic = rn_topics_find(f->topics, req->topics[i]->name);
        for (size_t j = 0; j < req->topics[i]->n_partitions; j++) {
            const Runnel__FetchPartition *rp = req->topics[i]->partitions[j];
            rn_part_t *part = topic ? rn_topic_partition(topic, rp->partition) : NULL;
            /* Cluster mode: a high watermark or a role may have moved; look again. */
            if (!part || rn_part_repl(part) ||
                (uint64_t)rp->fetch_offset < rn_log_end_offset(rn_part_log(part)))
                return true;
        }
    }
    return false;
}

static void on_check(uv_check_t *h)
{
    rn_fetch_t *f = h->data;
    if (!f->poked)
        return;
    f->poked = false;
    rn_srv_burst_begin(f->srv);
    for (struct fwait *w = f->waiters, *next; w; w = next) {
        next = w->next; /* try_answer may remove w, never another waiter */
        if (worth_a_look(f, w->req))
            try_answer(w, false);
    }
    rn_srv_burst_end(f->srv);
}

void rn_fetch_handle(rn_fetch_t *f, rn_resp_t *resp, Runnel__FetchRequest *req)
{
    struct fresult res;
    if (!evaluate(f, req, &res)) {
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    if (f->closing || ready(req, &res)) {
        respond(resp, req, &res);
        return;
    }
    release(&res);
    struct fwait *w = calloc(1, sizeof *w);
    if (!w) {
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    w->f = f;
    w->resp = resp;
    w->req = req;
    uv_timer_init(f->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_timeout, req->max_wait_ms, 0);
    w->next = f->waiters;
    if (f->waiters)
        f->waiters->prev = w;
    f->waiters = w;
    f->nwaiting++;
    rn_resp_on_cancel(resp, on_cancel, w);
}

/* ---------------------------------------------------------------- lifecycle ---- */

rn_fetch_t *rn_fetch_new(uv_loop_t *loop, rn_topics_t *topics, rn_srv_t *srv)
{
    rn_fetch_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->loop = loop;
    f->topics = topics;
    f->srv = srv;
    uv_check_init(loop, &f->check);
    f->check.data = f;
    uv_check_start(&f->check, on_check);
    return f;
}

void rn_fetch_poke(rn_fetch_t *f)
{
    if (f->waiters)
        f->poked = true;
}

void rn_fetch_answer_all(rn_fetch_t *f)
{
    f->closing = true;
    rn_srv_burst_begin(f->srv);
    while (f->waiters)
        try_answer(f->waiters, true);
    rn_srv_burst_end(f->srv);
}

size_t rn_fetch_waiting(const rn_fetch_t *f)
{
    return f->nwaiting;
}

static void on_check_closed(uv_handle_t *h)
{
    free(h->data);
}

void rn_fetch_free(rn_fetch_t *f)
{
    if (!f)
        return;
    f->closing = true;
    while (f->waiters) {
        rn_resp_on_cancel(f->waiters->resp, NULL, NULL);
        unlink_waiter(f->waiters);
    }
    uv_close((uv_handle_t *)&f->check, on_check_closed);
}
