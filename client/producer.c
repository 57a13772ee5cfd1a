/*
 * producer.c - the producer: batches per partition, sends them to partition leaders, retries,
 * keeps order with idempotence, and reports each record's fate in order.
 *
 * Happy path:
 *
 *   app thread (send, under p->lock)           I/O thread (run)
 *   --------------------------------           ------------------------------------------
 *   pick topic + partition                      close batches whose linger is over
 *   append the record straight into the         take closed batches into the partition's
 *     partition's open batch builder              list (creation order)
 *   full? close it (moves to part->closed)      finish each batch (compress, checksum),
 *   wake the loop when a batch opens/closes       stamp producer id / epoch / sequence
 *                                               one Produce request per leader with one
 *                                                 batch per partition, up to max.in.flight
 *                                               on each answer: report the head batches
 *                                                 that are done, in order, then release
 *                                                 their memory
 *
 * Failure modes:
 * - Retriable error (a transport failure, NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS,
 *   REQUEST_TIMED_OUT, a leader epoch mismatch, …; rn_cl_retry_kind refreshes metadata for
 *   those that say the leader or ISR may have changed): the batch goes back to
 *   QUEUED, the partition is marked `retrying` and waits until none of its batches is in
 *   flight and retry.backoff.ms has passed, then resends from its first queued batch, in
 *   order. A batch keeps its bytes and sequence across retries, so the broker recognises a
 *   retry of a batch it already has and answers with the original offset.
 * - OUT_OF_ORDER_SEQUENCE_NUMBER behind an earlier batch being retried is the expected echo
 *   of that retry: retried like the rest. Otherwise (a real gap), UNKNOWN_PRODUCER_ID, or a
 *   sequenced batch failing for good: the producer drains everything in flight, asks for a
 *   new producer id and gives unacknowledged batches new sequences from 0 (Kafka's epoch bump).
 * - MESSAGE_TOO_LARGE for a batch of several records: split in halves that take its place and
 *   its sequences, queued again (split_batch); a single record over the limit fails for good.
 * - delivery.timeout.ms since a batch's first record, or more than `retries` retries: the
 *   batch fails with its records reported in order.
 * - close: whatever is still queued or in flight fails with RN_ERR_CLOSED.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "batch.h"
#include "clock.h"
#include "conf.h"
#include "core.h"
#include "partitioner.h"
#include "varint.h"

/* Where batch.h puts the producer fields (its diagram); the producer stamps them late. */
#define OFF_PRODUCER_ID 47
#define OFF_PRODUCER_EPOCH 55
#define OFF_BASE_SEQUENCE 57

#define RECORD_OVERHEAD 24          /* varints and attributes of one record, generously */
#define MIN_MAX_RECORD (1u << 20)   /* a lone record may exceed batch.size up to this */
#define ACKS0_UNWRITTEN_MAX (4u << 20)
/* A request stops taking batches past this (the broker's max.frame.bytes defaults to 100 MiB). */
#define MAX_REQUEST_BYTES (8u << 20)
#define MAX_STACK_HEADERS 16
/*
 * The broker remembers the last 5 batches of each producer per partition; a retry of a batch
 * older than that could not be recognised as a duplicate, so no more are in flight at once.
 */
#define IDEMPOTENT_PART_INFLIGHT 5

typedef struct rec_meta {
    void *opaque;
    int64_t timestamp;
} rec_meta_t;

typedef enum bstate { B_QUEUED, B_INFLIGHT, B_DONE } bstate_t;

typedef struct pbatch {
    struct pbatch *next;
    struct ppart *part;
    rn_batch_builder_t *builder;  /* until finished; then bytes holds the batch */
    rn_buf_t bytes;
    rec_meta_t *meta;
    uint32_t count;
    size_t mem;                   /* charged against buffer.memory */
    int64_t created_ns;
    int64_t baked_pid;            /* producer fields the builder wrote */
    int16_t baked_epoch;
    int32_t baked_seq;
    bool sequenced;               /* base sequence fixed for pid generation seq_gen */
    uint32_t seq_gen;
    int attempts;
    bstate_t state;
    rn_err_t err;
    int64_t base_offset;
} pbatch_t;

typedef struct ptopic ptopic_t;

typedef struct ppart {
    ptopic_t *topic;
    int32_t id;
    /* @locks p->lock */
    rn_batch_builder_t *open;
    rec_meta_t *open_meta;
    uint32_t open_cap;
    size_t open_mem;
    int64_t open_first_ns;
    int64_t open_pid;
    int16_t open_epoch;
    int32_t open_seq;
    int32_t build_seq;            /* base sequence the next opened batch bakes in (a guess) */
    pbatch_t *closed_head, *closed_tail;
    /* @locality loop thread */
    pbatch_t *head, *tail;        /* unreported batches, creation order */
    uint32_t inflight;
    int32_t next_seq;
    bool retrying;
    int64_t backoff_until_ns;
} ppart_t;

typedef enum tstate { T_PENDING, T_READY, T_ERROR } tstate_t;

struct ptopic {
    char *name;
    /* @locks p->lock; parts and nparts change on the loop thread only (under the lock) */
    tstate_t state;
    rn_err_t err;
    int32_t nparts;
    ppart_t **parts;
    int32_t sticky;               /* -1: pick a new one */
    int32_t last_sticky;
};

struct rn_producer {
    rn_cl_t *cl;
    rn_delivery_cb cb;
    void *cb_ctx;

    int acks;
    int64_t linger_ns;
    size_t batch_size;
    rn_codec_t codec;
    bool idempotent;
    size_t max_inflight;
    int retries;
    int64_t backoff_ns;
    int request_timeout_ms;
    int64_t delivery_timeout_ns;
    size_t buffer_memory;
    size_t max_record;

    uv_mutex_t lock;
    uv_cond_t cond;               /* room in the buffer, metadata, flush progress */
    /* @locks lock */
    ptopic_t **topics;
    size_t n_topics, cap_topics;
    uint64_t topics_version;
    ptopic_t *last_topic;
    size_t buffered;
    uint64_t outstanding;
    int flushers;
    bool closing;
    rn_batch_builder_t **pool;
    size_t n_pool, cap_pool;
    int64_t pid;
    int16_t epoch;
    rn_part_rng_t rng;

    /* @locality loop thread */
    ptopic_t **lt;                /* the loop's copy of topics */
    size_t n_lt;
    uint64_t lt_version;
    uv_timer_t timer;
    uint32_t pid_gen;
    bool pid_ready, pid_in_flight, pid_reset;
    int64_t pid_retry_ns;
    uint64_t inflight_total;
    bool in_run, rerun;
    pbatch_t **scratch;           /* batches picked for one pass */
    rn_conn_t **scratch_conn;
    size_t scratch_cap;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int32_t seq_add(int32_t seq, uint32_t n)
{
    int64_t next = (int64_t)seq + n;
    return (int32_t)(next > INT32_MAX ? next - ((int64_t)INT32_MAX + 1) : next);
}

/* ------------------------------------------------------- builder pool (@locks) ---- */

static rn_batch_builder_t *pool_get(rn_producer_t *p)
{
    return p->n_pool ? p->pool[--p->n_pool] : rn_batch_builder_new();
}

static void pool_put(rn_producer_t *p, rn_batch_builder_t *b)
{
    if (p->n_pool == p->cap_pool) {
        size_t cap = p->cap_pool ? p->cap_pool * 2 : 16;
        rn_batch_builder_t **n = cap <= 4096 ? realloc(p->pool, cap * sizeof *n) : NULL;
        if (!n) {
            rn_batch_builder_free(b);
            return;
        }
        p->pool = n;
        p->cap_pool = cap;
    }
    p->pool[p->n_pool++] = b;
}

/* ------------------------------------------------- app-thread side (@locks) ---- */

/* Moves the open batch of pp to its closed list. @locks p->lock */
static void close_open(rn_producer_t *p, ppart_t *pp)
{
    pbatch_t *b = calloc(1, sizeof *b);
    if (!b)
        return; /* stays open; the next attempt closes it */
    b->part = pp;
    b->builder = pp->open;
    b->meta = pp->open_meta;
    b->count = rn_batch_builder_count(pp->open);
    b->mem = pp->open_mem;
    b->created_ns = pp->open_first_ns;
    b->baked_pid = pp->open_pid;
    b->baked_epoch = pp->open_epoch;
    b->baked_seq = pp->open_seq;
    b->base_offset = -1;
    pp->build_seq = seq_add(pp->build_seq, b->count);
    pp->open = NULL;
    pp->open_meta = NULL;
    pp->open_cap = 0;
    pp->open_mem = 0;
    if (pp->closed_tail)
        pp->closed_tail->next = b;
    else
        pp->closed_head = b;
    pp->closed_tail = b;
    if (pp->topic->sticky == pp->id)
        pp->topic->sticky = -1; /* sticky partitioning moves on once the batch is sent */
    (void)p;
}

static rn_err_t open_batch(rn_producer_t *p, ppart_t *pp)
{
    rn_batch_builder_t *b = pool_get(p);
    if (!b)
        return RN_ERR_NOMEM;
    rn_batch_opts_t o = RN_BATCH_OPTS_DEFAULT;
    o.codec = p->codec;
    if (p->idempotent) {
        o.producer_id = p->pid;
        o.producer_epoch = p->epoch;
        o.base_sequence = pp->build_seq;
    }
    rn_batch_builder_reset(b, &o);
    pp->open = b;
    pp->open_pid = o.producer_id;
    pp->open_epoch = o.producer_epoch;
    pp->open_seq = o.base_sequence;
    pp->open_first_ns = rn_now_ns();
    pp->open_mem = 0;
    return RN_OK;
}

static ptopic_t *topic_find(rn_producer_t *p, const char *name)
{
    if (p->last_topic && strcmp(p->last_topic->name, name) == 0)
        return p->last_topic;
    for (size_t i = 0; i < p->n_topics; i++) {
        if (strcmp(p->topics[i]->name, name) == 0)
            return p->topics[i];
    }
    return NULL;
}

static void md_want_posted(rn_cl_t *cl, void *arg)
{
    ptopic_t *t = arg; /* topics live until the producer is freed, after the loop stops */
    rn_cl_md_want(cl, t->name);
    rn_cl_md_refresh(cl);
}

/*
 * The topic, once metadata says it exists; waits up to request.timeout.ms for a first
 * answer. @locks p->lock (released while waiting)
 */
static ptopic_t *topic_resolve(rn_producer_t *p, const char *name, bool may_wait, rn_err_t *err)
{
    ptopic_t *t = topic_find(p, name);
    if (!t) {
        if (p->n_topics == p->cap_topics) {
            size_t cap = p->cap_topics ? p->cap_topics * 2 : 8;
            ptopic_t **n = realloc(p->topics, cap * sizeof *n);
            if (!n) {
                *err = RN_ERR_NOMEM;
                return NULL;
            }
            p->topics = n;
            p->cap_topics = cap;
        }
        t = calloc(1, sizeof *t);
        if (!t || !(t->name = strdup(name))) {
            free(t);
            *err = RN_ERR_NOMEM;
            return NULL;
        }
        t->state = T_PENDING;
        t->sticky = t->last_sticky = -1;
        p->topics[p->n_topics++] = t;
        p->topics_version++;
        rn_cl_post(p->cl, md_want_posted, t);
    } else if (t->state == T_ERROR) {
        t->state = T_PENDING; /* it may exist by now: ask again */
        rn_cl_post(p->cl, md_want_posted, t);
    }
    if (t->state == T_PENDING) {
        if (!may_wait) {
            *err = RN_ERR_TIMED_OUT;
            return NULL;
        }
        int64_t deadline = rn_deadline_ns(p->request_timeout_ms);
        while (t->state == T_PENDING && !p->closing) {
            int64_t left = deadline - rn_now_ns();
            if (left <= 0)
                break;
            uv_cond_timedwait(&p->cond, &p->lock, (uint64_t)left);
        }
        if (p->closing) {
            *err = RN_ERR_CLOSED;
            return NULL;
        }
        if (t->state == T_PENDING) {
            *err = RN_ERR_TIMED_OUT;
            return NULL;
        }
    }
    if (t->state == T_ERROR) {
        *err = t->err;
        return NULL;
    }
    p->last_topic = t;
    return t;
}

rn_err_t rn_producer_send(rn_producer_t *p, const rn_message_t *m, int block_ms)
{
    if (!p || !m || !m->topic || m->partition < RN_PARTITION_ANY ||
        (m->header_count && !m->headers))
        return RN_ERR_INVALID_ARG;
    size_t key_len = m->key ? m->key_len : 0;
    size_t value_len = m->value ? m->value_len : 0;
    size_t size = key_len + value_len + RECORD_OVERHEAD;
    rn_rec_header_t stack_hdrs[MAX_STACK_HEADERS], *hdrs = stack_hdrs;
    if (m->header_count > MAX_STACK_HEADERS &&
        !(hdrs = malloc(m->header_count * sizeof *hdrs)))
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < m->header_count; i++) {
        const rn_header_t *h = &m->headers[i];
        if ((h->key_len && !h->key) || h->value_len < -1 || (h->value_len > 0 && !h->value)) {
            if (hdrs != stack_hdrs)
                free(hdrs);
            return RN_ERR_INVALID_ARG;
        }
        bool null_value = !h->value && h->value_len <= 0 ? h->value_len == -1 || !h->value : false;
        hdrs[i] = (rn_rec_header_t){
            .key = (const uint8_t *)h->key,
            .key_len = h->key_len,
            .value = null_value ? NULL : (h->value ? h->value : (const void *)""),
            .value_len = null_value ? -1 : h->value_len,
        };
        size += h->key_len + (h->value_len > 0 ? (size_t)h->value_len : 0) + 12;
    }
    rn_err_t err = RN_OK;
    if (size + RN_BATCH_HEADER_SIZE > p->max_record) {
        err = RN_ERR_MESSAGE_TOO_LARGE;
        goto out;
    }
    int64_t ts = m->timestamp ? m->timestamp : wall_ms();
    bool on_loop = rn_cl_on_loop(p->cl);
    if (on_loop)
        block_ms = 0; /* the loop frees the memory we would wait for */
    int64_t deadline = block_ms < 0 ? INT64_MAX : block_ms == 0 ? 0 : rn_deadline_ns(block_ms);
    bool wake = false;

    uv_mutex_lock(&p->lock);
    if (p->closing) {
        err = RN_ERR_CLOSED;
        goto unlock;
    }
    ptopic_t *t = topic_resolve(p, m->topic, !on_loop, &err);
    if (!t)
        goto unlock;
    int32_t part;
    if (m->partition >= 0) {
        if (m->partition >= t->nparts) {
            err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            goto unlock;
        }
        part = m->partition;
    } else if (m->key) {
        part = rn_part_for_key(m->key, m->key_len, t->nparts);
    } else {
        if (t->sticky < 0 || t->sticky >= t->nparts) {
            t->sticky = rn_part_sticky_next(&p->rng, t->last_sticky, t->nparts);
            t->last_sticky = t->sticky;
        }
        part = t->sticky;
    }
    while (p->buffered + size > p->buffer_memory && p->buffered > 0) {
        int64_t left = deadline == INT64_MAX ? INT64_MAX : deadline - rn_now_ns();
        if (left <= 0) {
            err = RN_ERR_QUEUE_FULL;
            goto unlock;
        }
        if (left == INT64_MAX)
            uv_cond_wait(&p->cond, &p->lock);
        else
            uv_cond_timedwait(&p->cond, &p->lock, (uint64_t)left);
        if (p->closing) {
            err = RN_ERR_CLOSED;
            goto unlock;
        }
    }
    ppart_t *pp = t->parts[part];
    if (pp->open && rn_batch_builder_size(pp->open) + size > p->batch_size) {
        close_open(p, pp);
        wake = true;
    }
    if (!pp->open) {
        if ((err = open_batch(p, pp)) != RN_OK)
            goto unlock;
        wake = true;
    }
    uint32_t n = rn_batch_builder_count(pp->open);
    if (n == pp->open_cap) {
        uint32_t cap = pp->open_cap ? pp->open_cap * 2 : 64;
        rec_meta_t *meta = realloc(pp->open_meta, cap * sizeof *meta);
        if (!meta) {
            err = RN_ERR_NOMEM;
            goto unlock;
        }
        pp->open_meta = meta;
        pp->open_cap = cap;
    }
    err = rn_batch_builder_add(pp->open, ts, m->key, key_len, m->value, value_len, hdrs,
                               m->header_count);
    if (err != RN_OK) {
        if (n == 0) {
            pool_put(p, pp->open);
            pp->open = NULL;
        }
        goto unlock;
    }
    pp->open_meta[n] = (rec_meta_t){m->opaque, ts};
    pp->open_mem += size;
    p->buffered += size;
    p->outstanding++;
    if (rn_batch_builder_size(pp->open) >= p->batch_size) {
        close_open(p, pp);
        wake = true;
    }
    if (p->flushers)
        wake = true;
unlock:
    uv_mutex_unlock(&p->lock);
    if (wake)
        rn_cl_wake(p->cl);
out:
    if (hdrs != stack_hdrs)
        free(hdrs);
    return err;
}

/* ------------------------------------------------------- loop-thread side ---- */

static void run(rn_producer_t *p);

static void deliver(rn_producer_t *p, pbatch_t *b)
{
    if (!p->cb)
        return;
    rn_delivery_t d = {
        .err = b->err,
        .topic = b->part->topic->name,
        .partition = b->part->id,
    };
    for (uint32_t i = 0; i < b->count; i++) {
        d.offset = b->err == RN_OK && b->base_offset >= 0 ? b->base_offset + i : -1;
        d.timestamp = b->meta[i].timestamp;
        d.opaque = b->meta[i].opaque;
        p->cb(&d, p->cb_ctx);
    }
}

static void batch_free(rn_producer_t *p, pbatch_t *b)
{
    if (b->builder) {
        uv_mutex_lock(&p->lock);
        pool_put(p, b->builder);
        uv_mutex_unlock(&p->lock);
    }
    rn_buf_free(&b->bytes);
    free(b->meta);
    free(b);
}

/* Reports the batches at the head of pp that are done, in order, and frees them. */
static void report(rn_producer_t *p, ppart_t *pp)
{
    pbatch_t *b;
    while ((b = pp->head) && b->state == B_DONE) {
        pp->head = b->next;
        if (!pp->head)
            pp->tail = NULL;
        deliver(p, b);
        uv_mutex_lock(&p->lock);
        p->buffered -= b->mem;
        p->outstanding -= b->count;
        uv_cond_broadcast(&p->cond);
        uv_mutex_unlock(&p->lock);
        batch_free(p, b);
    }
}

static void batch_done(rn_producer_t *p, pbatch_t *b, rn_err_t err, int64_t base_offset)
{
    b->state = B_DONE;
    b->err = err;
    b->base_offset = base_offset;
    /* A sequence the broker may or may not have seen leaves a gap: start over with a new id. */
    if (err != RN_OK && p->idempotent && b->sequenced)
        p->pid_reset = true;
}

static bool earlier_queued(const ppart_t *pp, const pbatch_t *b)
{
    for (const pbatch_t *x = pp->head; x && x != b; x = x->next) {
        if (x->state == B_QUEUED)
            return true;
    }
    return false;
}

/* Decides what a failed attempt of b leads to; returns the final error, or RN_OK to retry. */
static rn_err_t retry_verdict(rn_producer_t *p, pbatch_t *b, rn_err_t err, int64_t now)
{
    if (rn_cl_stopping(p->cl))
        return RN_ERR_CLOSED;
    if (now - b->created_ns >= p->delivery_timeout_ns)
        return RN_ERR_TIMED_OUT;
    if (err == RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER && earlier_queued(b->part, b)) {
        b->attempts--; /* the echo of an earlier batch's retry: not an attempt of b's own */
        return RN_OK;
    }
    if (b->attempts > p->retries)
        return err;
    if (err == RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER) {
        if (!p->idempotent)
            return err;
        p->pid_reset = true;
        return RN_OK;
    }
    if (p->idempotent &&
        (err == RN_ERR_UNKNOWN_PRODUCER_ID || err == RN_ERR_INVALID_PRODUCER_EPOCH)) {
        p->pid_reset = true;
        return RN_OK;
    }
    return rn_err_retriable(err) ? RN_OK : err;
}

/* Adds the record r (as an iterator returned it) to the builder. */
static rn_err_t copy_record(const rn_record_t *r, rn_batch_builder_t *out)
{
    rn_rec_header_t stack_hdrs[MAX_STACK_HEADERS];
    rn_rec_header_t *hdrs = r->header_count <= MAX_STACK_HEADERS
                                ? stack_hdrs
                                : malloc(r->header_count * sizeof *hdrs);
    if (!hdrs)
        return RN_ERR_NOMEM;
    rn_err_t err = RN_OK;
    const uint8_t *pos = r->headers;
    for (uint32_t h = 0; h < r->header_count && err == RN_OK; h++)
        err = rn_record_header_next(r, &pos, &hdrs[h]);
    if (err == RN_OK)
        err = rn_batch_builder_add(out, r->timestamp, r->key, r->key ? (size_t)r->key_len : 0,
                                   r->value, r->value ? (size_t)r->value_len : 0, hdrs,
                                   r->header_count);
    if (hdrs != stack_hdrs)
        free(hdrs);
    return err;
}

/*
 * Rebuilds b's records in one pass as two batches, the first k into out[0] with b's base
 * sequence, the rest into out[1] with the sequence k later (-1 stays -1: not idempotent).
 */
static rn_err_t rebuild_halves(rn_producer_t *p, const pbatch_t *b, uint32_t k, rn_buf_t out[2])
{
    rn_batch_iter_t it;
    rn_batch_builder_t *half[2] = {NULL, NULL};
    rn_err_t err = rn_batch_iter_init(&it, b->bytes.data, b->bytes.len, RN_BATCH_MAX_SIZE);
    for (int i = 0; i < 2 && err == RN_OK; i++) {
        half[i] = rn_batch_builder_new();
        if (!half[i]) {
            err = RN_ERR_NOMEM;
            break;
        }
        rn_batch_opts_t o = RN_BATCH_OPTS_DEFAULT;
        o.codec = p->codec;
        o.producer_id = it.hdr.producer_id;
        o.producer_epoch = it.hdr.producer_epoch;
        o.base_sequence = it.hdr.base_sequence < 0 || i == 0
                              ? it.hdr.base_sequence
                              : seq_add(it.hdr.base_sequence, k);
        rn_batch_builder_reset(half[i], &o);
    }
    for (uint32_t i = 0; i < b->count && err == RN_OK; i++) {
        rn_record_t r;
        err = rn_batch_iter_next(&it, &r);
        if (err == RN_OK)
            err = copy_record(&r, half[i < k ? 0 : 1]);
        else if (err == RN_ERR_NOT_FOUND)
            err = RN_ERR_MALFORMED; /* fewer records than the batch said */
    }
    for (int i = 0; i < 2 && err == RN_OK; i++)
        err = rn_batch_builder_finish(half[i], &out[i]);
    rn_batch_builder_free(half[0]);
    rn_batch_builder_free(half[1]);
    rn_batch_iter_free(&it);
    return err;
}

/*
 * MESSAGE_TOO_LARGE for a batch of more than one record (the topic's max.message.bytes is
 * below what the producer batched): b becomes its first half and a new batch with the second
 * half follows it, both queued again, as Kafka's producer splits such a batch (KIP-126). The
 * halves take over b's sequences (the second starts count/2 after b's base sequence), so the
 * batches behind b keep theirs, and those the broker refused as out of order behind b are the
 * echo of its retry. A half that is still too large splits again; a single record that is
 * fails. false when b cannot be split (one record, out of memory): it then fails as before.
 */
static bool split_batch(rn_producer_t *p, pbatch_t *b)
{
    if (b->count < 2 || b->builder)
        return false;
    uint32_t k = b->count / 2;
    pbatch_t *b2 = calloc(1, sizeof *b2);
    rec_meta_t *meta2 = b2 ? malloc((b->count - k) * sizeof *meta2) : NULL;
    rn_buf_t halves[2] = {{0}, {0}};
    if (!meta2 || rebuild_halves(p, b, k, halves) != RN_OK) {
        free(b2);
        free(meta2);
        rn_buf_free(&halves[0]);
        rn_buf_free(&halves[1]);
        return false;
    }
    memcpy(meta2, b->meta + k, (b->count - k) * sizeof *meta2);
    *b2 = *b;
    b2->bytes = halves[1];
    b2->meta = meta2;
    b2->count = b->count - k;
    b2->mem = b->mem / b->count * b2->count;
    b2->baked_seq = b->baked_seq < 0 ? b->baked_seq : seq_add(b->baked_seq, k);
    rn_buf_free(&b->bytes);
    b->bytes = halves[0];
    b->count = k;
    b->mem -= b2->mem;
    b->next = b2;
    if (b->part->tail == b)
        b->part->tail = b2;
    b->state = b2->state = B_QUEUED;
    b->attempts = b2->attempts = 0; /* new batches: the retries budget starts again */
    return true;
}

/* One attempt of b ended with err (RN_OK: acknowledged at base_offset). */
static void batch_result(rn_producer_t *p, pbatch_t *b, rn_err_t err, int64_t base_offset)
{
    ppart_t *pp = b->part;
    pp->inflight--;
    p->inflight_total--;
    if (err == RN_OK || err == RN_ERR_DUPLICATE_SEQUENCE_NUMBER) {
        batch_done(p, b, RN_OK, base_offset);
    } else if (err == RN_ERR_MESSAGE_TOO_LARGE && !rn_cl_stopping(p->cl) &&
               rn_now_ns() - b->created_ns < p->delivery_timeout_ns && split_batch(p, b)) {
        pp->retrying = true; /* resend from the first queued batch once none is in flight */
    } else {
        int64_t now = rn_now_ns();
        rn_err_t final = retry_verdict(p, b, err, now);
        if (final == RN_OK) {
            b->state = B_QUEUED;
            pp->retrying = true;
            pp->backoff_until_ns = now + p->backoff_ns;
            if (rn_cl_retry_kind(err) == RN_CL_RETRY_REFRESH)
                rn_cl_md_refresh(p->cl);
        } else {
            batch_done(p, b, final, -1);
        }
    }
    report(p, pp);
}

typedef struct preq {
    rn_producer_t *p;
    size_t n;
    pbatch_t *items[];
} preq_t;

static rn_err_t find_result(const Runnel__Response *resp, const pbatch_t *b, int64_t *offset)
{
    if (resp->error != RUNNEL__ERROR_CODE__ERR_OK)
        return (rn_err_t)resp->error;
    if (resp->body_case != RUNNEL__RESPONSE__BODY_PRODUCE)
        return RN_ERR_UNKNOWN_SERVER_ERROR;
    const Runnel__ProduceResponse *pr = resp->produce;
    for (size_t i = 0; i < pr->n_topics; i++) {
        const Runnel__ProduceTopicResult *t = pr->topics[i];
        if (strcmp(t->name, b->part->topic->name) != 0)
            continue;
        for (size_t j = 0; j < t->n_partitions; j++) {
            if ((int32_t)t->partitions[j]->partition == b->part->id) {
                *offset = t->partitions[j]->base_offset;
                return (rn_err_t)t->partitions[j]->error;
            }
        }
    }
    return RN_ERR_UNKNOWN_SERVER_ERROR;
}

static void produce_answered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    preq_t *r = ctx;
    rn_producer_t *p = r->p;
    for (size_t i = 0; i < r->n; i++) {
        int64_t offset = -1;
        rn_err_t e = err == RN_OK && resp ? find_result(resp, r->items[i], &offset) : err;
        batch_result(p, r->items[i], e, offset);
    }
    if (resp)
        runnel__response__free_unpacked(resp, NULL);
    free(r);
    if (!rn_cl_stopping(p->cl))
        run(p);
}

/* Writes the producer fields into a finished batch and recomputes its checksum. */
static void stamp_producer(rn_buf_t *batch, int64_t pid, int16_t epoch, int32_t seq)
{
    rn_le_put64(batch->data + OFF_PRODUCER_ID, (uint64_t)pid);
    rn_le_put16(batch->data + OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    rn_le_put32(batch->data + OFF_BASE_SEQUENCE, (uint32_t)seq);
    rn_le_put64(batch->data + RN_BATCH_OFF_CHECKSUM,
                XXH3_64bits(batch->data + RN_BATCH_CHECKSUM_FROM,
                            batch->len - RN_BATCH_CHECKSUM_FROM));
}

/* Builds the batch bytes on first send and fixes its sequence. */
static rn_err_t prepare(rn_producer_t *p, pbatch_t *b)
{
    if (b->builder) {
        rn_err_t err = rn_batch_builder_finish(b->builder, &b->bytes);
        uv_mutex_lock(&p->lock);
        pool_put(p, b->builder);
        uv_mutex_unlock(&p->lock);
        b->builder = NULL;
        if (err != RN_OK)
            return err;
    }
    if (p->idempotent && (!b->sequenced || b->seq_gen != p->pid_gen)) {
        ppart_t *pp = b->part;
        int32_t seq = pp->next_seq;
        pp->next_seq = seq_add(seq, b->count);
        b->sequenced = true;
        b->seq_gen = p->pid_gen;
        if (b->baked_pid != p->pid || b->baked_epoch != p->epoch || b->baked_seq != seq) {
            stamp_producer(&b->bytes, p->pid, p->epoch, seq);
            b->baked_pid = p->pid;
            b->baked_epoch = p->epoch;
            b->baked_seq = seq;
        }
    }
    return RN_OK;
}

/* Sends one Produce request with items[0..n) (distinct partitions, one leader) on conn. */
static void send_request(rn_producer_t *p, rn_conn_t *conn, pbatch_t **items, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        rn_err_t err = prepare(p, items[i]);
        if (err != RN_OK) {
            ppart_t *pp = items[i]->part;
            batch_done(p, items[i], err, -1);
            report(p, pp);
            continue;
        }
        items[ok++] = items[i];
    }
    if (!ok)
        return;
    preq_t *r = malloc(sizeof *r + ok * sizeof r->items[0]);
    Runnel__ProducePartition *pps = calloc(ok, sizeof *pps);
    Runnel__ProducePartition **ppp = calloc(ok, sizeof *ppp);
    Runnel__ProduceTopic *pts = calloc(ok, sizeof *pts);
    Runnel__ProduceTopic **ptp = calloc(ok, sizeof *ptp);
    rn_err_t err = RN_ERR_NOMEM;
    if (!r || !pps || !ppp || !pts || !ptp)
        goto done;
    r->p = p;
    r->n = ok;
    /* Group the partitions by topic; items of one topic are adjacent (picked topic by topic). */
    size_t nt = 0;
    for (size_t i = 0; i < ok; i++) {
        pbatch_t *b = items[i];
        r->items[i] = b;
        runnel__produce_partition__init(&pps[i]);
        pps[i].partition = (uint32_t)b->part->id;
        pps[i].records.data = b->bytes.data;
        pps[i].records.len = b->bytes.len;
        ppp[i] = &pps[i];
        if (nt == 0 || strcmp(pts[nt - 1].name, b->part->topic->name) != 0) {
            runnel__produce_topic__init(&pts[nt]);
            pts[nt].name = b->part->topic->name;
            pts[nt].partitions = &ppp[i];
            ptp[nt] = &pts[nt];
            nt++;
        }
        pts[nt - 1].n_partitions++;
    }
    Runnel__ProduceRequest pr = RUNNEL__PRODUCE_REQUEST__INIT;
    pr.acks = p->acks;
    pr.timeout_ms = (uint32_t)p->request_timeout_ms;
    pr.n_topics = nt;
    pr.topics = ptp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
    req.produce = &pr;
    err = rn_cl_send(p->cl, conn, &req, RUNNEL__API_KEY__API_PRODUCE,
                     p->request_timeout_ms + 1000, p->acks != 0, produce_answered, r);
done:
    free(pps);
    free(ppp);
    free(pts);
    free(ptp);
    for (size_t i = 0; i < ok; i++) {
        pbatch_t *b = items[i];
        b->state = B_INFLIGHT;
        b->attempts++;
        b->part->inflight++;
        p->inflight_total++;
        if (b->part->retrying)
            b->part->retrying = false; /* the resend starts, in order, from here */
    }
    if (err != RN_OK) {
        free(r);
        for (size_t i = 0; i < ok; i++)
            batch_result(p, items[i], err, -1);
    }
}

static pbatch_t *first_queued(ppart_t *pp)
{
    for (pbatch_t *b = pp->head; b; b = b->next) {
        if (b->state == B_QUEUED)
            return b;
    }
    return NULL;
}

static size_t batch_bytes(const pbatch_t *b)
{
    return b->builder ? rn_batch_builder_size(b->builder) : b->bytes.len;
}

static bool conn_has_room(rn_producer_t *p, rn_conn_t *conn, size_t picked_for_conn)
{
    if (picked_for_conn)
        return true; /* joins the request already being built */
    if (p->acks == 0)
        return rn_conn_unwritten(conn) < ACKS0_UNWRITTEN_MAX;
    return rn_conn_inflight(conn) < p->max_inflight;
}

static bool scratch_grow(rn_producer_t *p, size_t need)
{
    if (need <= p->scratch_cap)
        return true;
    size_t cap = need * 2;
    pbatch_t **s = realloc(p->scratch, cap * sizeof *s);
    if (s)
        p->scratch = s;
    rn_conn_t **c = realloc(p->scratch_conn, cap * sizeof *c);
    if (c)
        p->scratch_conn = c;
    if (!s || !c)
        return false;
    p->scratch_cap = cap;
    return true;
}

/* Sends what can go: one request per leader per pass, until nothing more fits. */
static void send_ready(rn_producer_t *p, int64_t now, int64_t *due)
{
    bool want_md = false;
    for (;;) {
        size_t n = 0;
        for (size_t ti = 0; ti < p->n_lt; ti++) {
            ptopic_t *t = p->lt[ti];
            const rn_cl_topic_t *md = rn_cl_md_topic(p->cl, t->name);
            for (int32_t i = 0; i < t->nparts; i++) {
                ppart_t *pp = t->parts[i];
                pbatch_t *b = pp->head ? first_queued(pp) : NULL;
                if (!b || (pp->retrying && pp->inflight > 0) ||
                    (p->idempotent && pp->inflight >= IDEMPOTENT_PART_INFLIGHT))
                    continue;
                if (now < pp->backoff_until_ns) {
                    if (pp->backoff_until_ns < *due)
                        *due = pp->backoff_until_ns;
                    continue;
                }
                rn_conn_t *conn = NULL;
                if (md && i < md->partition_count && md->parts[i].err == RN_OK)
                    conn = rn_cl_conn_for_node(p->cl, md->parts[i].leader);
                if (!conn) {
                    want_md = true;
                    continue;
                }
                if (rn_conn_state(conn) == RN_CONN_DOWN &&
                    now - rn_conn_last_failure_ns(conn) < p->backoff_ns) {
                    int64_t at = rn_conn_last_failure_ns(conn) + p->backoff_ns;
                    if (at < *due)
                        *due = at;
                    continue;
                }
                size_t same = 0, bytes = 0;
                for (size_t k = 0; k < n; k++) {
                    if (p->scratch_conn[k] == conn) {
                        same++;
                        bytes += batch_bytes(p->scratch[k]);
                    }
                }
                if (!conn_has_room(p, conn, same) || bytes > MAX_REQUEST_BYTES ||
                    !scratch_grow(p, n + 1))
                    continue;
                p->scratch[n] = b;
                p->scratch_conn[n] = conn;
                n++;
            }
        }
        if (n == 0)
            break;
        /* Per connection, in pick order (which keeps a topic's partitions together). */
        for (size_t i = 0; i < n; i++) {
            rn_conn_t *conn = p->scratch_conn[i];
            if (!conn)
                continue;
            size_t m = 0;
            for (size_t k = i; k < n; k++) {
                if (p->scratch_conn[k] == conn) {
                    p->scratch[i + m] = p->scratch[k];
                    p->scratch_conn[k] = NULL;
                    m++;
                }
            }
            /* The compaction above only moved entries of this conn to [i, i+m). */
            send_request(p, conn, &p->scratch[i], m);
            i += m - 1;
        }
    }
    if (want_md)
        rn_cl_md_refresh(p->cl);
}

static void pid_answered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    rn_producer_t *p = ctx;
    p->pid_in_flight = false;
    if (err == RN_OK && resp->error != RUNNEL__ERROR_CODE__ERR_OK)
        err = (rn_err_t)resp->error;
    if (err == RN_OK && resp->body_case != RUNNEL__RESPONSE__BODY_INIT_PRODUCER_ID)
        err = RN_ERR_UNKNOWN_SERVER_ERROR;
    if (err == RN_OK) {
        uv_mutex_lock(&p->lock);
        p->pid = resp->init_producer_id->producer_id;
        p->epoch = (int16_t)resp->init_producer_id->producer_epoch;
        uv_mutex_unlock(&p->lock);
        p->pid_gen++;
        p->pid_ready = true;
        for (size_t ti = 0; ti < p->n_lt; ti++) {
            for (int32_t i = 0; i < p->lt[ti]->nparts; i++)
                p->lt[ti]->parts[i]->next_seq = 0;
        }
    } else if (err == RN_ERR_UNKNOWN_PRODUCER_ID) {
        /* The broker does not know the old id (another broker, or its state is gone). */
        uv_mutex_lock(&p->lock);
        p->pid = -1;
        p->epoch = -1;
        uv_mutex_unlock(&p->lock);
    } else {
        p->pid_retry_ns = rn_now_ns() + p->backoff_ns;
    }
    if (resp)
        runnel__response__free_unpacked(resp, NULL);
    if (!rn_cl_stopping(p->cl))
        run(p);
}

static void pid_request(rn_producer_t *p)
{
    rn_conn_t *conn = rn_cl_conn_any(p->cl);
    if (!conn)
        return;
    /* With an id already, ask for its next epoch: that fences whatever the old epoch still
     * has in flight anywhere, and every partition restarts at sequence 0. */
    Runnel__InitProducerIdRequest ip = RUNNEL__INIT_PRODUCER_ID_REQUEST__INIT;
    ip.producer_id = p->pid;
    ip.producer_epoch = p->pid >= 0 ? p->epoch : -1;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_INIT_PRODUCER_ID;
    req.init_producer_id = &ip;
    if (rn_cl_send(p->cl, conn, &req, RUNNEL__API_KEY__API_INIT_PRODUCER_ID,
                   p->request_timeout_ms, true, pid_answered, p) == RN_OK)
        p->pid_in_flight = true;
    else
        p->pid_retry_ns = rn_now_ns() + p->backoff_ns;
}

static void splice_closed(ppart_t *pp)
{
    if (!pp->closed_head)
        return;
    if (pp->tail)
        pp->tail->next = pp->closed_head;
    else
        pp->head = pp->closed_head;
    pp->tail = pp->closed_tail;
    pp->closed_head = pp->closed_tail = NULL;
}

/* Batches queued past delivery.timeout.ms fail; those in flight wait for their answer. */
static void expire(rn_producer_t *p, int64_t now)
{
    for (size_t ti = 0; ti < p->n_lt; ti++) {
        ptopic_t *t = p->lt[ti];
        for (int32_t i = 0; i < t->nparts; i++) {
            ppart_t *pp = t->parts[i];
            bool any = false;
            for (pbatch_t *b = pp->head; b; b = b->next) {
                if (b->state == B_QUEUED && now - b->created_ns >= p->delivery_timeout_ns) {
                    batch_done(p, b, RN_ERR_TIMED_OUT, -1);
                    any = true;
                }
            }
            if (any)
                report(p, pp);
        }
    }
}

static void timer_fired(uv_timer_t *t)
{
    run(t->data);
}

static void run_once(rn_producer_t *p)
{
    int64_t now = rn_now_ns();
    int64_t due = INT64_MAX;

    uv_mutex_lock(&p->lock);
    if (p->lt_version != p->topics_version) {
        ptopic_t **lt = realloc(p->lt, p->n_topics * sizeof *lt);
        if (lt) {
            memcpy(lt, p->topics, p->n_topics * sizeof *lt);
            p->lt = lt;
            p->n_lt = p->n_topics;
            p->lt_version = p->topics_version;
        }
    }
    bool force = p->flushers > 0 || p->closing;
    for (size_t ti = 0; ti < p->n_lt; ti++) {
        ptopic_t *t = p->lt[ti];
        for (int32_t i = 0; i < t->nparts; i++) {
            ppart_t *pp = t->parts[i];
            if (pp->open) {
                int64_t at = pp->open_first_ns + p->linger_ns;
                if (force || at <= now)
                    close_open(p, pp);
                else if (at < due)
                    due = at;
            }
            splice_closed(pp);
        }
    }
    uv_mutex_unlock(&p->lock);

    expire(p, now);
    bool can_send = true;
    if (p->idempotent) {
        if (p->pid_reset && p->inflight_total == 0 && !p->pid_in_flight) {
            p->pid_reset = false;
            p->pid_ready = false;
        }
        if (!p->pid_ready) {
            can_send = false;
            if (!p->pid_in_flight) {
                if (now >= p->pid_retry_ns)
                    pid_request(p);
                else if (p->pid_retry_ns < due)
                    due = p->pid_retry_ns;
            }
        } else if (p->pid_reset) {
            can_send = false; /* draining before a new producer id */
        }
    }
    if (can_send)
        send_ready(p, now, &due);
    if (due != INT64_MAX) {
        int64_t ms = (due - now + 999999) / 1000000;
        uv_timer_start(&p->timer, timer_fired, (uint64_t)(ms > 0 ? ms : 0), 0);
    }
}

static void run(rn_producer_t *p)
{
    if (p->in_run) {
        p->rerun = true;
        return;
    }
    p->in_run = true;
    do {
        p->rerun = false;
        run_once(p);
    } while (p->rerun);
    p->in_run = false;
}

static void on_wake(void *ctx)
{
    run(ctx);
}

static void on_tick(void *ctx, int64_t now)
{
    (void)now;
    run(ctx);
}

static void on_metadata(void *ctx)
{
    rn_producer_t *p = ctx;
    bool pending = false;
    uv_mutex_lock(&p->lock);
    for (size_t ti = 0; ti < p->n_topics; ti++) {
        ptopic_t *t = p->topics[ti];
        const rn_cl_topic_t *md = rn_cl_md_topic(p->cl, t->name);
        if (md && md->err == RN_OK && md->partition_count > t->nparts) {
            ppart_t **parts = realloc(t->parts, (size_t)md->partition_count * sizeof *parts);
            if (!parts)
                continue;
            t->parts = parts;
            for (int32_t i = t->nparts; i < md->partition_count; i++) {
                ppart_t *pp = calloc(1, sizeof *pp);
                if (!pp)
                    break;
                pp->topic = t;
                pp->id = i;
                parts[i] = pp;
                t->nparts = i + 1;
            }
        }
        if (t->nparts > 0 && md && md->err == RN_OK) {
            t->state = T_READY;
        } else if (t->state == T_PENDING) {
            if (md && md->err != RN_OK && !rn_err_retriable(md->err)) {
                t->state = T_ERROR;
                t->err = md->err;
            } else if (md && md->err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
                t->state = T_ERROR; /* retriable while it is being created, but send fails now */
                t->err = md->err;
            } else {
                pending = true;
            }
        }
    }
    uv_cond_broadcast(&p->cond);
    uv_mutex_unlock(&p->lock);
    if (pending)
        rn_cl_md_refresh(p->cl);
    run(p);
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_stop(void *ctx)
{
    rn_producer_t *p = ctx;
    uv_mutex_lock(&p->lock);
    for (size_t ti = 0; ti < p->n_topics; ti++) {
        ptopic_t *t = p->topics[ti];
        for (int32_t i = 0; i < t->nparts; i++) {
            if (t->parts[i]->open)
                close_open(p, t->parts[i]);
            splice_closed(t->parts[i]);
        }
    }
    uv_mutex_unlock(&p->lock);
    for (size_t ti = 0; ti < p->n_topics; ti++) {
        ptopic_t *t = p->topics[ti];
        for (int32_t i = 0; i < t->nparts; i++) {
            ppart_t *pp = t->parts[i];
            for (pbatch_t *b = pp->head; b; b = b->next) {
                if (b->state != B_DONE)
                    batch_done(p, b, RN_ERR_CLOSED, -1);
            }
            report(p, pp);
        }
    }
    uv_close((uv_handle_t *)&p->timer, timer_closed);
}

/* ------------------------------------------------------------------ public ---- */

static void first_run(rn_cl_t *cl, void *arg)
{
    (void)cl;
    run(arg);
}

static void producer_free(rn_producer_t *p)
{
    for (size_t ti = 0; ti < p->n_topics; ti++) {
        ptopic_t *t = p->topics[ti];
        for (int32_t i = 0; i < t->nparts; i++) {
            ppart_t *pp = t->parts[i];
            if (pp->open)
                rn_batch_builder_free(pp->open);
            free(pp->open_meta);
            free(pp);
        }
        free(t->parts);
        free(t->name);
        free(t);
    }
    free(p->topics);
    for (size_t i = 0; i < p->n_pool; i++)
        rn_batch_builder_free(p->pool[i]);
    free(p->pool);
    free(p->lt);
    free(p->scratch);
    free(p->scratch_conn);
    uv_mutex_destroy(&p->lock);
    uv_cond_destroy(&p->cond);
    free(p);
}

rn_err_t rn_producer_new(const rn_conf_t *conf, rn_delivery_cb cb, void *cb_ctx,
                         rn_producer_t **out, char *errbuf, size_t errlen)
{
    if (!out)
        return RN_ERR_INVALID_ARG;
    *out = NULL;
    rn_producer_t *p = calloc(1, sizeof *p);
    if (!p)
        return RN_ERR_NOMEM;
    p->cb = cb;
    p->cb_ctx = cb_ctx;
    p->acks = (int)rn_conf_int(conf, "acks");
    p->linger_ns = rn_conf_int(conf, "linger.ms") * 1000000;
    p->batch_size = (size_t)rn_conf_int(conf, "batch.size");
    p->codec = strcmp(rn_conf_str(conf, "compression.type"), "zstd") == 0 ? RN_CODEC_ZSTD
                                                                          : RN_CODEC_NONE;
    /* Without answers (acks=0) there is nothing to retry, so nothing to deduplicate. */
    p->idempotent = rn_conf_bool(conf, "enable.idempotence") && p->acks != 0;
    p->max_inflight = (size_t)rn_conf_int(conf, "max.in.flight");
    p->retries = (int)rn_conf_int(conf, "retries");
    p->backoff_ns = rn_conf_int(conf, "retry.backoff.ms") * 1000000;
    p->request_timeout_ms = (int)rn_conf_int(conf, "request.timeout.ms");
    p->delivery_timeout_ns = rn_conf_int(conf, "delivery.timeout.ms") * 1000000;
    p->buffer_memory = (size_t)rn_conf_int(conf, "buffer.memory");
    p->max_record = p->batch_size > MIN_MAX_RECORD ? p->batch_size : MIN_MAX_RECORD;
    if (p->max_record > p->buffer_memory)
        p->max_record = p->buffer_memory;
    p->pid = -1;
    p->epoch = -1;
    rn_part_rng_seed(&p->rng, (uint64_t)rn_now_ns() ^ (uint64_t)(uintptr_t)p);
    uv_mutex_init(&p->lock);
    uv_cond_init(&p->cond);
    rn_cl_hooks_t hooks = {
        .on_wake = on_wake,
        .on_metadata = on_metadata,
        .on_tick = on_tick,
        .on_stop = on_stop,
    };
    rn_err_t err = rn_cl_new(conf, &hooks, p, &p->cl, errbuf, errlen);
    if (err != RN_OK) {
        producer_free(p);
        return err;
    }
    uv_timer_init(rn_cl_loop(p->cl), &p->timer);
    p->timer.data = p;
    if ((err = rn_cl_start(p->cl)) != RN_OK) {
        rn_cl_stop(p->cl);
        rn_cl_free(p->cl);
        producer_free(p);
        return err;
    }
    rn_cl_post(p->cl, first_run, p);
    *out = p;
    return RN_OK;
}

rn_err_t rn_producer_flush(rn_producer_t *p, int timeout_ms)
{
    if (!p)
        return RN_ERR_INVALID_ARG;
    if (rn_cl_on_loop(p->cl))
        return RN_ERR_STATE;
    int64_t deadline = rn_deadline_ns(timeout_ms);
    uv_mutex_lock(&p->lock);
    p->flushers++;
    uv_mutex_unlock(&p->lock);
    rn_cl_wake(p->cl);
    uv_mutex_lock(&p->lock);
    int64_t poll_until = 0;
    while (p->outstanding > 0) {
        if (rn_cl_poll_before_wait(p->cl, &p->lock, &poll_until, deadline))
            continue; /* io.busy.poll.us: an answer that comes soon finds this thread running */
        if (deadline == INT64_MAX) {
            uv_cond_wait(&p->cond, &p->lock);
            continue;
        }
        int64_t left = deadline - rn_now_ns();
        if (left <= 0)
            break;
        uv_cond_timedwait(&p->cond, &p->lock, (uint64_t)left);
    }
    rn_err_t err = p->outstanding ? RN_ERR_TIMED_OUT : RN_OK;
    p->flushers--;
    uv_mutex_unlock(&p->lock);
    return err;
}

rn_err_t rn_producer_close(rn_producer_t *p, int timeout_ms)
{
    if (!p)
        return RN_OK;
    if (rn_cl_on_loop(p->cl))
        return RN_ERR_STATE;
    rn_err_t err = rn_producer_flush(p, timeout_ms);
    uv_mutex_lock(&p->lock);
    p->closing = true;
    uv_cond_broadcast(&p->cond);
    uv_mutex_unlock(&p->lock);
    rn_cl_stop(p->cl);
    rn_cl_free(p->cl);
    producer_free(p);
    return err;
}
