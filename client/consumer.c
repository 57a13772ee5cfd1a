/*
 * consumer.c - the consumer: assigned partitions, fetched ahead from their leaders into a
 * bounded buffer, decoded and verified by poll.
 *
 * Happy path:
 *
 *   I/O thread                                      poll (app thread, under c->lock)
 *   ----------                                      --------------------------------
 *   partitions without a position (beginning,       release what the previous poll's
 *     end, reset) ask ListOffsets                     records pointed into
 *   one Fetch per leader in flight, for every       walk each partition's chunks batch
 *     partition it leads that is not fetching         by batch: skip batches below the
 *   a response's partition data becomes a chunk       position, verify + decompress the
 *     (it keeps the whole response alive);            next one, hand out its records as
 *     fetch_pos moves past its last whole batch       views into it
 *   nothing is fetched while the chunks held        round-robin over partitions
 *     exceed queued.max.messages.kbytes
 *
 * Failure modes: a retriable fetch error backs the partition off for retry.backoff.ms and
 * refreshes metadata when the leader may have moved (rn_cl_retry_kind). Each fetch carries
 * the cached leader_epoch as current_leader_epoch; FENCED_LEADER_EPOCH (the cache is behind
 * the broker) and UNKNOWN_LEADER_EPOCH (the broker is behind the cache) back off, refresh and
 * fetch again from the same position, which stays valid across a leader change because a
 * consumer only reads below the high watermark. OFFSET_OUT_OF_RANGE applies
 * auto.offset.reset (earliest/latest: a new ListOffsets; error: poll reports it and the
 * partition waits for a seek). A batch that fails its checksum or framing makes poll return
 * the error (after the good records before it); the partition stops at that batch until the
 * application seeks.
 *
 * A seek or unassign bumps the partition's version: answers to requests sent before it are
 * dropped when they arrive.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "conf.h"
#include "core.h"
#include "offsets.h"

#define OFFSET_UNSET INT64_MIN

typedef struct resp_ref {
    Runnel__Response *resp;
    int refs;
} resp_ref_t;

typedef struct chunk {
    struct chunk *next;
    resp_ref_t *ref;
    const uint8_t *data;
    size_t len;                   /* whole batches only */
    size_t pos;                   /* next batch to decode */
} chunk_t;

typedef struct cpart {
    char *topic;
    int32_t partition;
    /* every field @locks c->lock */
    int refs;                     /* the assignment, in-flight requests, the last poll */
    bool assigned;
    int64_t position;             /* next offset for poll; logical (-1/-2) until resolved */
    bool resolved;
    uint64_t version;
    chunk_t *head, *tail;
    rn_batch_iter_t it;
    bool it_active;
    int64_t high_watermark;
    bool hw_known;
    rn_err_t error;               /* for the next poll */
    bool paused;                  /* stopped until a seek */
    int64_t fetch_pos;
    bool fetching, listing;
    int64_t backoff_until_ns;
} cpart_t;

typedef struct rel_owned {
    void **p;
    size_t n, cap;
} ptr_list_t;

struct rn_consumer {
    rn_cl_t *cl;
    int max_wait_ms;
    uint32_t min_bytes, max_bytes, part_max_bytes;
    size_t prefetch_max;
    int reset;                    /* RN_OFFSET_BEGINNING, RN_OFFSET_END, or 0: error */
    int request_timeout_ms;
    int64_t backoff_ns;

    uv_mutex_t lock;
    uv_cond_t cond;
    /* @locks lock */
    cpart_t **parts;
    size_t n_parts, cap_parts;
    size_t buffered;
    bool fetch_blocked;
    bool closing;
    size_t rr;
    rn_record_view_t *views;
    size_t views_cap;
    size_t *view_hdr;             /* index into hdrs of each view's first header */
    rn_header_t *hdrs;
    size_t hdrs_n, hdrs_cap;
    chunk_t *rel_chunks;          /* what the last poll's views may point into */
    ptr_list_t rel_owned;
    ptr_list_t rel_parts;

    /* @locality loop thread */
    rn_conn_t **fetch_conns;      /* connections with a Fetch in flight */
    size_t n_fetch_conns, cap_fetch_conns;
    bool in_run, rerun;
};

static bool ptr_push(ptr_list_t *l, void *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void **n = realloc(l->p, cap * sizeof *n);
        if (!n)
            return false;
        l->p = n;
        l->cap = cap;
    }
    l->p[l->n++] = p;
    return true;
}

/* ------------------------------------------------- shared state (@locks) ---- */

static void ref_drop(resp_ref_t *r)
{
    if (r && --r->refs == 0) {
        runnel__response__free_unpacked(r->resp, NULL);
        free(r);
    }
}

static void part_unref(cpart_t *part)
{
    if (--part->refs > 0)
        return;
    rn_batch_iter_free(&part->it);
    free(part->topic);
    free(part);
}

/* The iterator's decompressed records may back views: they outlive it until the next poll. */
static void end_iter(rn_consumer_t *c, cpart_t *part)
{
    if (!part->it_active)
        return;
    if (part->it.owned && ptr_push(&c->rel_owned, part->it.owned))
        part->it.owned = NULL;
    else if (part->it.owned)
        free(part->it.owned); /* no room to defer: the records it backed are gone already */
    part->it.owned = NULL;
    rn_batch_iter_free(&part->it);
    part->it_active = false;
}

static void drop_chunks(rn_consumer_t *c, cpart_t *part)
{
    end_iter(c, part);
    chunk_t *ch = part->head;
    while (ch) {
        chunk_t *next = ch->next;
        c->buffered -= ch->len;
        ch->next = c->rel_chunks;
        c->rel_chunks = ch;
        ch = next;
    }
    part->head = part->tail = NULL;
}

static void release_holdings(rn_consumer_t *c)
{
    chunk_t *ch = c->rel_chunks;
    c->rel_chunks = NULL;
    while (ch) {
        chunk_t *next = ch->next;
        ref_drop(ch->ref);
        free(ch);
        ch = next;
    }
    for (size_t i = 0; i < c->rel_owned.n; i++)
        free(c->rel_owned.p[i]);
    c->rel_owned.n = 0;
    for (size_t i = 0; i < c->rel_parts.n; i++)
        part_unref(c->rel_parts.p[i]);
    c->rel_parts.n = 0;
}

static cpart_t *part_find(rn_consumer_t *c, const char *topic, int32_t partition, size_t *idx)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        cpart_t *p = c->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            if (idx)
                *idx = i;
            return p;
        }
    }
    return NULL;
}

static void seek_locked(rn_consumer_t *c, cpart_t *part, int64_t offset)
{
    drop_chunks(c, part);
    part->error = RN_OK;
    part->paused = false;
    part->position = offset;
    part->resolved = offset >= 0;
    part->fetch_pos = offset >= 0 ? offset : OFFSET_UNSET;
    part->backoff_until_ns = 0;
    part->version++;
}

/* ------------------------------------------------------------ loop thread ---- */

static void run(rn_consumer_t *c);

typedef struct lo_item {
    rn_consumer_t *c;
    cpart_t *part;
    uint64_t version;
    int64_t ts;
} lo_item_t;

static void reset_done(void *ctx, rn_err_t err, int64_t offset)
{
    lo_item_t *li = ctx;
    rn_consumer_t *c = li->c;
    cpart_t *part = li->part;
    uv_mutex_lock(&c->lock);
    part->listing = false;
    if (part->assigned && part->version == li->version && !part->resolved) {
        if (err == RN_OK) {
            part->position = offset;
            part->fetch_pos = offset;
            part->resolved = true;
            if (li->ts == RN_OFFSET_END) {
                part->high_watermark = offset;
                part->hw_known = true;
            }
        } else if (err != RN_ERR_CLOSED) {
            part->backoff_until_ns = rn_now_ns() + c->backoff_ns;
            if (!rn_err_retriable(err) || err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION)
                part->error = err;
        }
    }
    part_unref(part);
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->lock);
    free(li);
    if (!rn_cl_stopping(c->cl))
        run(c);
}

typedef struct fitem {
    cpart_t *part;
    uint64_t version;
    int64_t offset;
    rn_conn_t *conn;
    int32_t leader_epoch;         /* the cached leader's epoch: the broker checks it */
} fitem_t;

typedef struct freq {
    rn_consumer_t *c;
    rn_conn_t *conn;
    size_t n;
    fitem_t items[];
} freq_t;

static void fetch_conn_remove(rn_consumer_t *c, rn_conn_t *conn)
{
    for (size_t i = 0; i < c->n_fetch_conns; i++) {
        if (c->fetch_conns[i] == conn) {
            c->fetch_conns[i] = c->fetch_conns[--c->n_fetch_conns];
            return;
        }
    }
}

static bool fetch_conn_busy(const rn_consumer_t *c, const rn_conn_t *conn)
{
    for (size_t i = 0; i < c->n_fetch_conns; i++) {
        if (c->fetch_conns[i] == conn)
            return true;
    }
    return false;
}

static const Runnel__FetchPartitionData *find_pd(const Runnel__FetchResponse *fr,
                                                 const cpart_t *part)
{
    for (size_t i = 0; i < fr->n_topics; i++) {
        if (strcmp(fr->topics[i]->name, part->topic) != 0)
            continue;
        for (size_t j = 0; j < fr->topics[i]->n_partitions; j++) {
            if ((int32_t)fr->topics[i]->partitions[j]->partition == part->partition)
                return fr->topics[i]->partitions[j];
        }
    }
    return NULL;
}

/* One partition's data from a Fetch answer. @locks c->lock */
static bool take_partition_data(rn_consumer_t *c, cpart_t *part,
                                const Runnel__FetchPartitionData *pd, resp_ref_t *ref)
{
    rn_err_t err = (rn_err_t)pd->error;
    if (err == RN_OK) {
        part->high_watermark = pd->high_watermark;
        part->hw_known = true;
        const uint8_t *data = pd->records.data;
        size_t len = pd->records.len, pos = 0;
        int64_t last = -1;
        rn_err_t perr = RN_OK;
        while (pos < len) {
            rn_batch_header_t h;
            if ((perr = rn_batch_parse_header(data + pos, len - pos, &h)) != RN_OK)
                break;
            last = (int64_t)rn_batch_last_offset(&h);
            pos += rn_batch_total_size(&h);
        }
        if (pos == 0 && len > 0) {
            /* Not even one whole batch: corrupt (or a batch cut short, which is as bad). */
            part->error = perr == RN_ERR_TRUNCATED ? RN_ERR_CORRUPT_MESSAGE : perr;
            part->paused = true;
            return false;
        }
        if (pos == 0)
            return false;
        chunk_t *ch = malloc(sizeof *ch);
        if (!ch) {
            part->backoff_until_ns = rn_now_ns() + c->backoff_ns;
            return false;
        }
        *ch = (chunk_t){.ref = ref, .data = data, .len = pos};
        ref->refs++;
        if (part->tail)
            part->tail->next = ch;
        else
            part->head = ch;
        part->tail = ch;
        c->buffered += pos;
        if (last + 1 > part->fetch_pos)
            part->fetch_pos = last + 1;
        return false;
    }
    if (err == RN_ERR_OFFSET_OUT_OF_RANGE) {
        if (c->reset == 0) {
            part->error = err;
            part->paused = true;
        } else {
            seek_locked(c, part, c->reset);
        }
        return false;
    }
    part->backoff_until_ns = rn_now_ns() + c->backoff_ns;
    if (!rn_err_retriable(err))
        part->error = err;
    return rn_cl_retry_kind(err) == RN_CL_RETRY_REFRESH;
}

static void fetch_answered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    freq_t *fq = ctx;
    rn_consumer_t *c = fq->c;
    fetch_conn_remove(c, fq->conn);
    resp_ref_t *ref = NULL;
    if (err == RN_OK) {
        if (resp->error != RUNNEL__ERROR_CODE__ERR_OK)
            err = (rn_err_t)resp->error;
        else if (resp->body_case != RUNNEL__RESPONSE__BODY_FETCH)
            err = RN_ERR_UNKNOWN_SERVER_ERROR;
        if (err == RN_OK && !(ref = malloc(sizeof *ref)))
            err = RN_ERR_NOMEM;
        if (ref)
            *ref = (resp_ref_t){resp, 1};
        else
            runnel__response__free_unpacked(resp, NULL);
    }
    bool want_md = rn_cl_retry_kind(err) == RN_CL_RETRY_REFRESH;
    int64_t now = rn_now_ns();
    uv_mutex_lock(&c->lock);
    for (size_t i = 0; i < fq->n; i++) {
        cpart_t *part = fq->items[i].part;
        part->fetching = false;
        if (part->assigned && part->version == fq->items[i].version) {
            const Runnel__FetchPartitionData *pd = ref ? find_pd(resp->fetch, part) : NULL;
            if (pd)
                want_md |= take_partition_data(c, part, pd, ref);
            else if (err != RN_ERR_CLOSED)
                part->backoff_until_ns = now + c->backoff_ns;
        }
        part_unref(part);
    }
    ref_drop(ref);
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->lock);
    free(fq);
    if (rn_cl_stopping(c->cl))
        return;
    if (want_md)
        rn_cl_md_refresh(c->cl);
    run(c);
}

static int fitem_cmp(const void *a, const void *b)
{
    const fitem_t *x = a, *y = b;
    int c = strcmp(x->part->topic, y->part->topic);
    return c ? c : (x->part->partition > y->part->partition) - (x->part->partition < y->part->partition);
}

/* Sends one Fetch on conn for items[0..n). */
static void send_fetch(rn_consumer_t *c, rn_conn_t *conn, fitem_t *items, size_t n)
{
    freq_t *fq = malloc(sizeof *fq + n * sizeof fq->items[0]);
    Runnel__FetchPartition *fps = calloc(n, sizeof *fps);
    Runnel__FetchPartition **fpp = calloc(n, sizeof *fpp);
    Runnel__FetchTopic *fts = calloc(n, sizeof *fts);
    Runnel__FetchTopic **ftp = calloc(n, sizeof *ftp);
    rn_err_t err = RN_ERR_NOMEM;
    if (!fq || !fps || !fpp || !fts || !ftp)
        goto done;
    fq->c = c;
    fq->conn = conn;
    fq->n = n;
    memcpy(fq->items, items, n * sizeof *items);
    /* Items of one topic adjacent, so each topic's partitions are one slice. */
    qsort(fq->items, n, sizeof fq->items[0], fitem_cmp);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        fitem_t *it = &fq->items[i];
        runnel__fetch_partition__init(&fps[i]);
        fps[i].partition = (uint32_t)it->part->partition;
        fps[i].fetch_offset = it->offset;
        fps[i].partition_max_bytes = c->part_max_bytes;
        fps[i].current_leader_epoch = it->leader_epoch;
        fpp[i] = &fps[i];
        if (nt == 0 || strcmp(fts[nt - 1].name, it->part->topic) != 0) {
            runnel__fetch_topic__init(&fts[nt]);
            fts[nt].name = it->part->topic;
            fts[nt].partitions = &fpp[i];
            ftp[nt] = &fts[nt];
            nt++;
        }
        fts[nt - 1].n_partitions++;
    }
    Runnel__FetchRequest fr = RUNNEL__FETCH_REQUEST__INIT;
    fr.replica_id = -1;
    fr.max_wait_ms = (uint32_t)c->max_wait_ms;
    fr.min_bytes = c->min_bytes;
    fr.max_bytes = c->max_bytes;
    fr.n_topics = nt;
    fr.topics = ftp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH;
    req.fetch = &fr;
    err = rn_cl_send(c->cl, conn, &req, RUNNEL__API_KEY__API_FETCH,
                     c->request_timeout_ms + c->max_wait_ms, true, fetch_answered, fq);
done:
    free(fps);
    free(fpp);
    free(fts);
    free(ftp);
    uv_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        if (err == RN_OK) {
            items[i].part->fetching = true;
            items[i].part->refs++;
        } else {
            items[i].part->backoff_until_ns = rn_now_ns() + c->backoff_ns;
        }
    }
    uv_mutex_unlock(&c->lock);
    if (err != RN_OK) {
        free(fq);
        return;
    }
    if (c->n_fetch_conns == c->cap_fetch_conns) {
        size_t cap = c->cap_fetch_conns ? c->cap_fetch_conns * 2 : 8;
        rn_conn_t **fc = realloc(c->fetch_conns, cap * sizeof *fc);
        if (!fc)
            return; /* only costs a second fetch on this connection */
        c->fetch_conns = fc;
        c->cap_fetch_conns = cap;
    }
    c->fetch_conns[c->n_fetch_conns++] = conn;
}

static void run_once(rn_consumer_t *c)
{
    int64_t now = rn_now_ns();
    lo_item_t **lis = NULL;
    fitem_t *fis = NULL;
    size_t n_li = 0, n_fi = 0;

    uv_mutex_lock(&c->lock);
    if (c->closing || !c->n_parts) {
        uv_mutex_unlock(&c->lock);
        return;
    }
    lis = calloc(c->n_parts, sizeof *lis);
    fis = calloc(c->n_parts, sizeof *fis);
    if (!lis || !fis) {
        uv_mutex_unlock(&c->lock);
        free(lis);
        free(fis);
        return;
    }
    bool room = c->buffered < c->prefetch_max;
    c->fetch_blocked = !room;
    for (size_t i = 0; i < c->n_parts; i++) {
        cpart_t *part = c->parts[i];
        if (part->paused || part->error != RN_OK || now < part->backoff_until_ns)
            continue;
        if (!part->resolved) {
            if (part->listing || !(lis[n_li] = malloc(sizeof *lis[n_li])))
                continue;
            *lis[n_li++] = (lo_item_t){c, part, part->version, part->position};
            part->listing = true;
            part->refs++;
        } else if (room && !part->fetching) {
            fis[n_fi++] = (fitem_t){part, part->version, part->fetch_pos, NULL};
        }
    }
    uv_mutex_unlock(&c->lock);

    int64_t deadline = now + (int64_t)c->request_timeout_ms * 1000000;
    for (size_t i = 0; i < n_li; i++) {
        lo_item_t *li = lis[i];
        rn_cl_md_want(c->cl, li->part->topic);
        if (rn_lo_start(c->cl, li->part->topic, li->part->partition, li->ts, deadline, reset_done,
                        li) != RN_OK)
            reset_done(li, RN_ERR_NOMEM, -1);
    }
    /* Route each candidate to its leader; one Fetch per connection at a time. */
    bool want_md = false;
    size_t n_route = 0;
    for (size_t i = 0; i < n_fi; i++) {
        cpart_t *part = fis[i].part;
        const rn_cl_topic_t *md = rn_cl_md_topic(c->cl, part->topic);
        rn_conn_t *conn = NULL;
        if (md && part->partition < md->partition_count &&
            md->parts[part->partition].err == RN_OK)
            conn = rn_cl_conn_for_node(c->cl, md->parts[part->partition].leader);
        if (!conn) {
            if (md && rn_cl_md_last_err(c->cl) == RN_OK &&
                (md->err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION ||
                 (md->err == RN_OK && part->partition >= md->partition_count))) {
                /* Tell the application once per backoff; it may appear later. */
                uv_mutex_lock(&c->lock);
                if (part->version == fis[i].version) {
                    part->error = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                    part->backoff_until_ns = now + c->backoff_ns;
                }
                uv_cond_broadcast(&c->cond);
                uv_mutex_unlock(&c->lock);
            }
            rn_cl_md_want(c->cl, part->topic);
            want_md = true;
            continue;
        }
        if (fetch_conn_busy(c, conn) ||
            (rn_conn_state(conn) == RN_CONN_DOWN &&
             now - rn_conn_last_failure_ns(conn) < c->backoff_ns))
            continue;
        fis[i].conn = conn;
        fis[i].leader_epoch = (int32_t)md->parts[part->partition].leader_epoch;
        fis[n_route++] = fis[i];
    }
    for (size_t i = 0; i < n_route; i++) {
        rn_conn_t *conn = fis[i].conn;
        if (!conn)
            continue;
        size_t m = 0;
        for (size_t k = i; k < n_route; k++) {
            if (fis[k].conn == conn) {
                fitem_t t = fis[k];
                fis[k] = fis[i + m];
                fis[i + m] = t;
                m++;
            }
        }
        send_fetch(c, conn, &fis[i], m);
        for (size_t k = i; k < i + m; k++)
            fis[k].conn = NULL;
        i += m - 1;
    }
    free(lis);
    free(fis);
    if (want_md)
        rn_cl_md_refresh(c->cl);
}

static void run(rn_consumer_t *c)
{
    if (c->in_run) {
        c->rerun = true;
        return;
    }
    c->in_run = true;
    do {
        c->rerun = false;
        run_once(c);
    } while (c->rerun);
    c->in_run = false;
}

static void on_wake(void *ctx) { run(ctx); }
static void on_metadata(void *ctx) { run(ctx); }

static void on_tick(void *ctx, int64_t now)
{
    (void)now;
    run(ctx);
}

/* ------------------------------------------------------------------- poll ---- */

static void corrupt(rn_consumer_t *c, cpart_t *part, rn_err_t err)
{
    drop_chunks(c, part);
    part->error = err;
    part->paused = true;
}

static bool views_room(rn_consumer_t *c, size_t n)
{
    if (n < c->views_cap)
        return true;
    size_t cap = c->views_cap ? c->views_cap * 2 : 256;
    rn_record_view_t *v = realloc(c->views, cap * sizeof *v);
    if (v)
        c->views = v;
    size_t *h = realloc(c->view_hdr, cap * sizeof *h);
    if (h)
        c->view_hdr = h;
    if (!v || !h)
        return false;
    c->views_cap = cap;
    return true;
}

static bool add_headers(rn_consumer_t *c, const rn_record_t *r, rn_record_view_t *v, size_t *idx)
{
    *idx = c->hdrs_n;
    v->header_count = 0;
    const uint8_t *pos = r->headers;
    rn_rec_header_t h;
    while (rn_record_header_next(r, &pos, &h) == RN_OK) {
        if (c->hdrs_n == c->hdrs_cap) {
            size_t cap = c->hdrs_cap ? c->hdrs_cap * 2 : 64;
            rn_header_t *n = realloc(c->hdrs, cap * sizeof *n);
            if (!n)
                return false;
            c->hdrs = n;
            c->hdrs_cap = cap;
        }
        c->hdrs[c->hdrs_n++] = (rn_header_t){
            .key = (const char *)h.key,
            .key_len = h.key_len,
            .value = h.value,
            .value_len = h.value_len,
        };
        v->header_count++;
    }
    return true;
}

/* Hands out records of part until *n reaches max. @locks c->lock */
static void drain_part(rn_consumer_t *c, cpart_t *part, size_t max, size_t *n)
{
    while (*n < max) {
        if (!part->it_active) {
            chunk_t *ch = part->head;
            if (!ch)
                return;
            if (ch->pos >= ch->len) {
                part->head = ch->next;
                if (!part->head)
                    part->tail = NULL;
                c->buffered -= ch->len;
                ch->next = c->rel_chunks;
                c->rel_chunks = ch;
                continue;
            }
            const uint8_t *bp = ch->data + ch->pos;
            rn_batch_header_t h;
            rn_err_t err = rn_batch_parse_header(bp, ch->len - ch->pos, &h);
            if (err != RN_OK) {
                corrupt(c, part, err);
                return;
            }
            size_t total = rn_batch_total_size(&h);
            if ((int64_t)rn_batch_last_offset(&h) < part->position ||
                (h.attributes & RN_BATCH_ATTR_CONTROL)) {
                ch->pos += total; /* already returned (or not for applications): skip it whole */
                continue;
            }
            err = rn_batch_iter_init(&part->it, bp, total, RN_BATCH_MAX_SIZE);
            if (err != RN_OK) {
                rn_batch_iter_free(&part->it);
                corrupt(c, part, err);
                return;
            }
            ch->pos += total;
            part->it_active = true;
        }
        rn_record_t r;
        rn_err_t err = rn_batch_iter_next(&part->it, &r);
        if (err == RN_ERR_NOT_FOUND) {
            end_iter(c, part);
            continue;
        }
        if (err != RN_OK) {
            corrupt(c, part, RN_ERR_CORRUPT_MESSAGE);
            return;
        }
        if ((int64_t)r.offset < part->position)
            continue;
        if (!views_room(c, *n))
            return;
        rn_record_view_t *v = &c->views[*n];
        *v = (rn_record_view_t){
            .topic = part->topic,
            .partition = part->partition,
            .offset = (int64_t)r.offset,
            .timestamp = r.timestamp,
            .key = r.key,
            .key_len = r.key_len,
            .value = r.value,
            .value_len = r.value_len,
        };
        if (r.header_count && !add_headers(c, &r, v, &c->view_hdr[*n]))
            return;
        part->position = (int64_t)r.offset + 1;
        (*n)++;
    }
}

/* Fills c->views; returns a partition's pending error when there is nothing else. */
static rn_err_t collect(rn_consumer_t *c, size_t max, size_t *out)
{
    size_t n = 0;
    c->hdrs_n = 0;
    rn_err_t err = RN_OK;
    size_t np = c->n_parts;
    for (size_t k = 0; k < np && n < max; k++) {
        cpart_t *part = c->parts[(c->rr + k) % np];
        if (part->error == RN_OK)
            drain_part(c, part, max, &n);
        if (part->error != RN_OK && n == 0) {
            err = part->error;
            part->error = RN_OK;
            break;
        }
    }
    if (np)
        c->rr = (c->rr + 1) % np;
    for (size_t i = 0; i < n; i++)
        c->views[i].headers = c->views[i].header_count ? &c->hdrs[c->view_hdr[i]] : NULL;
    *out = n;
    return err;
}

rn_err_t rn_consumer_poll(rn_consumer_t *c, int timeout_ms, size_t max_records,
                          const rn_record_view_t **recs, size_t *count)
{
    if (!c || !recs || !count)
        return RN_ERR_INVALID_ARG;
    *recs = NULL;
    *count = 0;
    int64_t deadline = rn_deadline_ns(timeout_ms);
    rn_err_t err = RN_OK;
    size_t n = 0;
    int64_t poll_until = 0;
    uv_mutex_lock(&c->lock);
    release_holdings(c);
    for (;;) {
        if (c->closing) {
            err = RN_ERR_CLOSED;
            break;
        }
        if (max_records == 0)
            break;
        err = collect(c, max_records, &n);
        if (n > 0 || err != RN_OK)
            break;
        if (c->fetch_blocked && c->buffered < c->prefetch_max) {
            c->fetch_blocked = false;
            rn_cl_wake(c->cl);
        }
        if (rn_cl_poll_before_wait(c->cl, &c->lock, &poll_until, deadline))
            continue; /* io.busy.poll.us: look again before sleeping */
        if (deadline == INT64_MAX) {
            uv_cond_wait(&c->cond, &c->lock);
            continue;
        }
        int64_t left = deadline - rn_now_ns();
        if (left <= 0)
            break;
        uv_cond_timedwait(&c->cond, &c->lock, (uint64_t)left);
    }
    bool wake = c->fetch_blocked && c->buffered < c->prefetch_max;
    if (wake)
        c->fetch_blocked = false;
    uv_mutex_unlock(&c->lock);
    if (wake)
        rn_cl_wake(c->cl);
    *recs = n ? c->views : NULL;
    *count = n;
    return err;
}

/* ------------------------------------------------------------ assignment ---- */

static void md_want_posted(rn_cl_t *cl, void *arg)
{
    rn_cl_md_want(cl, arg);
    free(arg);
}

/* @locks c->lock */
static rn_err_t add_part(rn_consumer_t *c, const char *topic, int32_t partition, cpart_t **out)
{
    if (c->n_parts == c->cap_parts) {
        size_t cap = c->cap_parts ? c->cap_parts * 2 : 8;
        cpart_t **parts = realloc(c->parts, cap * sizeof *parts);
        if (!parts)
            return RN_ERR_NOMEM;
        c->parts = parts;
        c->cap_parts = cap;
    }
    cpart_t *part = calloc(1, sizeof *part);
    if (!part || !(part->topic = strdup(topic))) {
        free(part);
        return RN_ERR_NOMEM;
    }
    part->partition = partition;
    part->refs = 1;
    part->assigned = true;
    c->parts[c->n_parts++] = part;
    *out = part;
    return RN_OK;
}

static bool offset_ok(int64_t offset)
{
    return offset >= 0 || offset == RN_OFFSET_BEGINNING || offset == RN_OFFSET_END;
}

rn_err_t rn_consumer_assign(rn_consumer_t *c, const char *topic, int32_t partition, int64_t offset)
{
    if (!c || !topic || !*topic || partition < 0 || !offset_ok(offset))
        return RN_ERR_INVALID_ARG;
    uv_mutex_lock(&c->lock);
    cpart_t *part = part_find(c, topic, partition, NULL);
    rn_err_t err = part ? RN_OK : add_part(c, topic, partition, &part);
    if (part)
        seek_locked(c, part, offset);
    uv_mutex_unlock(&c->lock);
    if (err != RN_OK)
        return err;
    char *name = strdup(topic);
    if (name && rn_cl_post(c->cl, md_want_posted, name) != RN_OK)
        free(name);
    rn_cl_wake(c->cl);
    return RN_OK;
}

rn_err_t rn_consumer_unassign(rn_consumer_t *c, const char *topic, int32_t partition)
{
    if (!c || !topic)
        return RN_ERR_INVALID_ARG;
    uv_mutex_lock(&c->lock);
    size_t idx;
    cpart_t *part = part_find(c, topic, partition, &idx);
    if (!part) {
        uv_mutex_unlock(&c->lock);
        return RN_ERR_NOT_FOUND;
    }
    c->parts[idx] = c->parts[--c->n_parts];
    drop_chunks(c, part);
    part->assigned = false;
    part->version++;
    /* Its topic name may be in the last poll's views: let go of it at the next poll. */
    if (!ptr_push(&c->rel_parts, part))
        part_unref(part);
    uv_mutex_unlock(&c->lock);
    return RN_OK;
}

rn_err_t rn_consumer_seek(rn_consumer_t *c, const char *topic, int32_t partition, int64_t offset)
{
    if (!c || !topic || !offset_ok(offset))
        return RN_ERR_INVALID_ARG;
    uv_mutex_lock(&c->lock);
    cpart_t *part = part_find(c, topic, partition, NULL);
    if (part)
        seek_locked(c, part, offset);
    uv_mutex_unlock(&c->lock);
    if (!part)
        return RN_ERR_NOT_FOUND;
    rn_cl_wake(c->cl);
    return RN_OK;
}

rn_err_t rn_consumer_seek_timestamp(rn_consumer_t *c, const char *topic, int32_t partition,
                                    int64_t ts_ms, int timeout_ms)
{
    if (!c || !topic || ts_ms < 0)
        return RN_ERR_INVALID_ARG;
    uv_mutex_lock(&c->lock);
    bool assigned = part_find(c, topic, partition, NULL) != NULL;
    uv_mutex_unlock(&c->lock);
    if (!assigned)
        return RN_ERR_NOT_FOUND;
    int64_t offset;
    rn_err_t err = rn_lo_call(c->cl, topic, partition, ts_ms, timeout_ms, &offset);
    if (err != RN_OK)
        return err;
    return rn_consumer_seek(c, topic, partition, offset);
}

rn_err_t rn_consumer_position(rn_consumer_t *c, const char *topic, int32_t partition,
                              int64_t *offset)
{
    if (!c || !topic || !offset)
        return RN_ERR_INVALID_ARG;
    int64_t deadline = rn_deadline_ns(c->request_timeout_ms);
    rn_err_t err = RN_OK;
    uv_mutex_lock(&c->lock);
    for (;;) {
        cpart_t *part = part_find(c, topic, partition, NULL);
        if (!part) {
            err = RN_ERR_NOT_FOUND;
            break;
        }
        if (part->resolved) {
            *offset = part->position;
            break;
        }
        /* Beginning or end is not an offset yet: wait for the ListOffsets answer. */
        int64_t left = deadline - rn_now_ns();
        if (left <= 0 || c->closing) {
            err = c->closing ? RN_ERR_CLOSED : RN_ERR_TIMED_OUT;
            break;
        }
        uv_cond_timedwait(&c->cond, &c->lock, (uint64_t)left);
    }
    uv_mutex_unlock(&c->lock);
    return err;
}

bool rn_consumer_at_end(rn_consumer_t *c, const char *topic, int32_t partition)
{
    if (!c || !topic)
        return false;
    uv_mutex_lock(&c->lock);
    cpart_t *part = part_find(c, topic, partition, NULL);
    bool at_end = part && part->resolved && part->hw_known && part->error == RN_OK &&
                  part->position >= part->high_watermark;
    uv_mutex_unlock(&c->lock);
    return at_end;
}

rn_err_t rn_consumer_high_watermark(rn_consumer_t *c, const char *topic, int32_t partition,
                                    int64_t *hw)
{
    if (!c || !topic || !hw)
        return RN_ERR_INVALID_ARG;
    uv_mutex_lock(&c->lock);
    cpart_t *part = part_find(c, topic, partition, NULL);
    rn_err_t err = !part ? RN_ERR_NOT_FOUND : !part->hw_known ? RN_ERR_AGAIN : RN_OK;
    if (err == RN_OK)
        *hw = part->high_watermark;
    uv_mutex_unlock(&c->lock);
    return err;
}

/* ------------------------------------------------------------- lifecycle ---- */

static void consumer_free(rn_consumer_t *c)
{
    release_holdings(c);
    for (size_t i = 0; i < c->n_parts; i++) {
        drop_chunks(c, c->parts[i]);
        part_unref(c->parts[i]);
    }
    release_holdings(c);
    free(c->parts);
    free(c->views);
    free(c->view_hdr);
    free(c->hdrs);
    free(c->rel_owned.p);
    free(c->rel_parts.p);
    free(c->fetch_conns);
    uv_mutex_destroy(&c->lock);
    uv_cond_destroy(&c->cond);
    free(c);
}

rn_err_t rn_consumer_new(const rn_conf_t *conf, rn_consumer_t **out, char *errbuf, size_t errlen)
{
    if (!out)
        return RN_ERR_INVALID_ARG;
    *out = NULL;
    rn_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return RN_ERR_NOMEM;
    c->max_wait_ms = (int)rn_conf_int(conf, "fetch.max.wait.ms");
    c->min_bytes = (uint32_t)rn_conf_int(conf, "fetch.min.bytes");
    c->max_bytes = (uint32_t)rn_conf_int(conf, "fetch.max.bytes");
    c->part_max_bytes = (uint32_t)rn_conf_int(conf, "max.partition.fetch.bytes");
    c->prefetch_max = (size_t)rn_conf_int(conf, "queued.max.messages.kbytes") * 1024;
    const char *reset = rn_conf_str(conf, "auto.offset.reset");
    c->reset = strcmp(reset, "earliest") == 0 ? RN_OFFSET_BEGINNING
               : strcmp(reset, "latest") == 0 ? RN_OFFSET_END
                                               : 0;
    c->request_timeout_ms = (int)rn_conf_int(conf, "request.timeout.ms");
    c->backoff_ns = rn_conf_int(conf, "retry.backoff.ms") * 1000000;
    uv_mutex_init(&c->lock);
    uv_cond_init(&c->cond);
    rn_cl_hooks_t hooks = {.on_wake = on_wake, .on_metadata = on_metadata, .on_tick = on_tick};
    rn_err_t err = rn_cl_new(conf, &hooks, c, &c->cl, errbuf, errlen);
    if (err != RN_OK) {
        consumer_free(c);
        return err;
    }
    if ((err = rn_cl_start(c->cl)) != RN_OK) {
        rn_cl_stop(c->cl);
        rn_cl_free(c->cl);
        consumer_free(c);
        return err;
    }
    *out = c;
    return RN_OK;
}

void rn_consumer_close(rn_consumer_t *c)
{
    if (!c)
        return;
    uv_mutex_lock(&c->lock);
    c->closing = true;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->lock);
    rn_cl_stop(c->cl);
    rn_cl_free(c->cl);
    consumer_free(c);
}
