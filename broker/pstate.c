/* pstate.c - idempotent-producer state: hash of producer id -> epoch and recent batches. */
#include "pstate.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "dirnames.h"
#include "buf.h"
#include "fsutil.h"
#include "varint.h"

#define SNAP_MAGIC 0x53504e52u /* "RNPS" */
#define SNAP_VERSION 1
#define SNAP_HEAD 20
#define SNAP_ENTRY_HEAD 20
#define SNAP_BATCH 24
#define SNAP_SUFFIX ".snapshot"
#define SNAP_DIGITS RN_OFFSET_NAME_DIGITS
#define SNAP_KEEP 2

struct pbatch {
    int32_t first_seq;
    int32_t last_seq;
    uint64_t first_offset;
    uint64_t last_offset;
};

struct entry {
    int64_t pid;           /* -1: empty slot */
    int16_t epoch;
    uint8_t n;             /* cached batches, oldest first */
    int64_t last_ms;
    struct pbatch b[RN_PSTATE_CACHED];
};

struct rn_pstate {
    struct entry *slots;   /* open addressing, linear probing; cap is a power of two */
    size_t cap;
    size_t count;
};

static size_t hash_pid(int64_t pid)
{
    uint64_t x = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
    return (size_t)(x ^ (x >> 29));
}

rn_pstate_t *rn_pstate_new(void)
{
    rn_pstate_t *ps = calloc(1, sizeof *ps);
    return ps;
}

void rn_pstate_free(rn_pstate_t *ps)
{
    if (!ps)
        return;
    free(ps->slots);
    free(ps);
}

size_t rn_pstate_count(const rn_pstate_t *ps)
{
    return ps->count;
}

static struct entry *find(const rn_pstate_t *ps, int64_t pid)
{
    if (!ps->cap)
        return NULL;
    for (size_t i = hash_pid(pid) & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
        if (ps->slots[i].pid == pid)
            return &ps->slots[i];
        if (ps->slots[i].pid < 0)
            return NULL;
    }
}

/* The slot for pid in a table known to have room and not to hold pid. */
static struct entry *slot_for(struct entry *slots, size_t cap, int64_t pid)
{
    size_t i = hash_pid(pid) & (cap - 1);
    while (slots[i].pid >= 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static rn_err_t rehash(rn_pstate_t *ps, size_t cap)
{
    struct entry *slots = malloc(cap * sizeof *slots);
    if (!slots)
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++)
        slots[i].pid = -1;
    for (size_t i = 0; i < ps->cap; i++) {
        if (ps->slots[i].pid >= 0)
            *slot_for(slots, cap, ps->slots[i].pid) = ps->slots[i];
    }
    free(ps->slots);
    ps->slots = slots;
    ps->cap = cap;
    return RN_OK;
}

static struct entry *insert(rn_pstate_t *ps, int64_t pid)
{
    if ((ps->count + 1) * 4 > ps->cap * 3 && rehash(ps, ps->cap ? ps->cap * 2 : 16) != RN_OK)
        return NULL;
    struct entry *e = slot_for(ps->slots, ps->cap, pid);
    memset(e, 0, sizeof *e);
    e->pid = pid;
    ps->count++;
    return e;
}

/* ------------------------------------------------------------------- check ---- */

/* What an earlier batch of the same append would leave for its producer. */
struct pending {
    int64_t pid;
    int16_t epoch;
    int32_t next_seq;
};

static struct pending *pending_find(struct pending *p, size_t n, int64_t pid)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].pid == pid)
            return &p[i];
    }
    return NULL;
}

static bool find_dup(const struct entry *e, int32_t first, int32_t last, rn_pstate_verdict_t *v)
{
    for (uint8_t i = 0; i < e->n; i++) {
        if (e->b[i].first_seq == first && e->b[i].last_seq == last) {
            v->duplicate = true;
            v->first_offset = e->b[i].first_offset;
            v->last_offset = e->b[i].last_offset;
            return true;
        }
    }
    return false;
}

/* One batch against the known (epoch, next sequence) of its producer. */
static rn_err_t check_one(const rn_batch_header_t *h, int16_t epoch, int32_t next_seq,
                          char *errbuf, size_t errlen)
{
    if (h->producer_epoch < epoch) {
        snprintf(errbuf, errlen, "producer %" PRId64 " epoch %d is fenced by epoch %d",
                 h->producer_id, h->producer_epoch, epoch);
        return RN_ERR_INVALID_PRODUCER_EPOCH;
    }
    if (h->producer_epoch > epoch && h->base_sequence != 0) {
        snprintf(errbuf, errlen,
                 "producer %" PRId64 " new epoch %d must start at sequence 0, not %" PRId32,
                 h->producer_id, h->producer_epoch, h->base_sequence);
        return RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    if (h->producer_epoch == epoch && h->base_sequence != next_seq) {
        snprintf(errbuf, errlen,
                 "producer %" PRId64 " epoch %d: expected sequence %" PRId32 ", got %" PRId32,
                 h->producer_id, epoch, next_seq, h->base_sequence);
        return RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    return RN_OK;
}

rn_err_t rn_pstate_check(const rn_pstate_t *ps, const rn_batch_header_t *h, size_t n,
                         rn_pstate_verdict_t *v, size_t *bad, char *errbuf, size_t errlen)
{
    struct pending small[8];
    struct pending *pend = n <= 8 ? small : malloc(n * sizeof *pend);
    if (!pend)
        return RN_ERR_NOMEM;
    size_t npend = 0;
    rn_err_t err = RN_OK;
    for (size_t i = 0; i < n && err == RN_OK; i++) {
        memset(&v[i], 0, sizeof v[i]);
        if (h[i].producer_id < 0)
            continue;
        int32_t last = rn_pstate_last_seq(h[i].base_sequence, h[i].record_count);
        struct pending *p = pending_find(pend, npend, h[i].producer_id);
        if (p) {
            err = check_one(&h[i], p->epoch, p->next_seq, errbuf, errlen);
        } else {
            const struct entry *e = find(ps, h[i].producer_id);
            if (e && h[i].producer_epoch == e->epoch &&
                find_dup(e, h[i].base_sequence, last, &v[i]))
                continue;
            if (e) {
                int32_t next = e->n ? rn_pstate_next_seq(e->b[e->n - 1].last_seq) : 0;
                err = check_one(&h[i], e->epoch, next, errbuf, errlen);
            }
            p = &pend[npend++];
            p->pid = h[i].producer_id;
        }
        if (err != RN_OK) {
            *bad = i;
            break;
        }
        p->epoch = h[i].producer_epoch;
        p->next_seq = rn_pstate_next_seq(last);
    }
    if (pend != small)
        free(pend);
    return err;
}

rn_err_t rn_pstate_update(rn_pstate_t *ps, const rn_batch_header_t *h, int64_t now_ms)
{
    if (h->producer_id < 0)
        return RN_OK;
    struct entry *e = find(ps, h->producer_id);
    if (!e && !(e = insert(ps, h->producer_id)))
        return RN_ERR_NOMEM;
    if (e->n == 0 || h->producer_epoch != e->epoch) {
        e->epoch = h->producer_epoch;
        e->n = 0;
    }
    if (e->n == RN_PSTATE_CACHED) {
        memmove(&e->b[0], &e->b[1], (RN_PSTATE_CACHED - 1) * sizeof e->b[0]);
        e->n--;
    }
    struct pbatch *b = &e->b[e->n++];
    b->first_seq = h->base_sequence;
    b->last_seq = rn_pstate_last_seq(h->base_sequence, h->record_count);
    b->first_offset = h->base_offset;
    b->last_offset = rn_batch_last_offset(h);
    e->last_ms = now_ms;
    return RN_OK;
}

/* Deletes slot i by shifting later members of its probe chain back (no tombstones). */
static void remove_at(rn_pstate_t *ps, size_t i)
{
    size_t mask = ps->cap - 1, j = i;
    ps->slots[i].pid = -1;
    ps->count--;
    for (;;) {
        j = (j + 1) & mask;
        if (ps->slots[j].pid < 0)
            return;
        size_t k = hash_pid(ps->slots[j].pid) & mask;
        /* Leave j where it is when its home k lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        ps->slots[i] = ps->slots[j];
        ps->slots[j].pid = -1;
        i = j;
    }
}

size_t rn_pstate_expire(rn_pstate_t *ps, int64_t now_ms, int64_t max_idle_ms)
{
    size_t dropped = 0;
    for (size_t i = 0; i < ps->cap;) {
        if (ps->slots[i].pid >= 0 && now_ms - ps->slots[i].last_ms > max_idle_ms) {
            remove_at(ps, i); /* another entry may now sit at i: look again */
            dropped++;
            continue;
        }
        i++;
    }
    return dropped;
}

/* ---------------------------------------------------------------- snapshots ---- */

static rn_err_t encode(const rn_pstate_t *ps, uint64_t offset, rn_buf_t *out)
{
    uint8_t *p = rn_buf_extend(out, SNAP_HEAD);
    if (!p)
        return RN_ERR_NOMEM;
    rn_le_put32(p, SNAP_MAGIC);
    rn_le_put32(p + 4, SNAP_VERSION);
    rn_le_put64(p + 8, offset);
    rn_le_put32(p + 16, (uint32_t)ps->count);
    for (size_t i = 0; i < ps->cap; i++) {
        const struct entry *e = &ps->slots[i];
        if (e->pid < 0)
            continue;
        if (!(p = rn_buf_extend(out, SNAP_ENTRY_HEAD + (size_t)e->n * SNAP_BATCH)))
            return RN_ERR_NOMEM;
        rn_le_put64(p, (uint64_t)e->pid);
        rn_le_put16(p + 8, (uint16_t)e->epoch);
        p[10] = e->n;
        p[11] = 0;
        rn_le_put64(p + 12, (uint64_t)e->last_ms);
        p += SNAP_ENTRY_HEAD;
        for (uint8_t j = 0; j < e->n; j++, p += SNAP_BATCH) {
            rn_le_put32(p, (uint32_t)e->b[j].first_seq);
            rn_le_put32(p + 4, (uint32_t)e->b[j].last_seq);
            rn_le_put64(p + 8, e->b[j].first_offset);
            rn_le_put64(p + 16, e->b[j].last_offset);
        }
    }
    if (!(p = rn_buf_extend(out, 8)))
        return RN_ERR_NOMEM;
    rn_le_put64(p, XXH3_64bits(out->data, out->len - 8));
    return RN_OK;
}

static rn_err_t decode(rn_pstate_t *ps, const uint8_t *d, size_t len, uint64_t *offset)
{
    if (len < SNAP_HEAD + 8 || rn_le_get32(d) != SNAP_MAGIC ||
        rn_le_get32(d + 4) != SNAP_VERSION || rn_le_get64(d + len - 8) != XXH3_64bits(d, len - 8))
        return RN_ERR_CORRUPT;
    *offset = rn_le_get64(d + 8);
    uint32_t count = rn_le_get32(d + 16);
    const uint8_t *p = d + SNAP_HEAD, *end = d + len - 8;
    for (uint32_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < SNAP_ENTRY_HEAD)
            return RN_ERR_CORRUPT;
        int64_t pid = (int64_t)rn_le_get64(p);
        uint8_t n = p[10];
        if (pid < 0 || n > RN_PSTATE_CACHED ||
            (size_t)(end - p) < SNAP_ENTRY_HEAD + (size_t)n * SNAP_BATCH || find(ps, pid))
            return RN_ERR_CORRUPT;
        struct entry *e = insert(ps, pid);
        if (!e)
            return RN_ERR_NOMEM;
        e->epoch = (int16_t)rn_le_get16(p + 8);
        e->n = n;
        e->last_ms = (int64_t)rn_le_get64(p + 12);
        p += SNAP_ENTRY_HEAD;
        for (uint8_t j = 0; j < n; j++, p += SNAP_BATCH) {
            e->b[j].first_seq = (int32_t)rn_le_get32(p);
            e->b[j].last_seq = (int32_t)rn_le_get32(p + 4);
            e->b[j].first_offset = rn_le_get64(p + 8);
            e->b[j].last_offset = rn_le_get64(p + 16);
        }
    }
    return p == end ? RN_OK : RN_ERR_CORRUPT;
}

static void clear(rn_pstate_t *ps)
{
    for (size_t i = 0; i < ps->cap; i++)
        ps->slots[i].pid = -1;
    ps->count = 0;
}

/* The offsets of the snapshots in dir, newest first; *n of them. */
static rn_err_t list_snapshots(const char *dir, uint64_t **out, size_t *n)
{
    rn_err_t err = rn_dir_offsets(dir, SNAP_SUFFIX, out, n);
    for (size_t i = 0; err == RN_OK && i < *n / 2; i++) {
        uint64_t t = (*out)[i];
        (*out)[i] = (*out)[*n - 1 - i];
        (*out)[*n - 1 - i] = t;
    }
    return err;
}

static void snap_path(char *buf, size_t len, const char *dir, uint64_t offset)
{
    snprintf(buf, len, "%s/%0*" PRIu64 SNAP_SUFFIX, dir, SNAP_DIGITS, offset);
}

rn_err_t rn_pstate_save(const rn_pstate_t *ps, const char *dir, uint64_t offset)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_err_t err = encode(ps, offset, &b);
    char path[PATH_MAX];
    snap_path(path, sizeof path, dir, offset);
    if (err == RN_OK)
        err = rn_fs_write_atomic(path, b.data, b.len, true);
    rn_buf_free(&b);
    if (err != RN_OK)
        return err;
    uint64_t *offs;
    size_t n, kept = 0;
    if (list_snapshots(dir, &offs, &n) != RN_OK)
        return RN_OK; /* old snapshots stay; harmless */
    for (size_t i = 0; i < n; i++) {
        /* Newer than this one means written before a truncation: never valid again. */
        if (offs[i] <= offset && kept < SNAP_KEEP) {
            kept++;
            continue;
        }
        snap_path(path, sizeof path, dir, offs[i]);
        unlink(path);
    }
    free(offs);
    return RN_OK;
}

rn_err_t rn_pstate_load(rn_pstate_t *ps, const char *dir, uint64_t log_end, uint64_t *offset)
{
    uint64_t *offs;
    size_t n;
    rn_err_t err = list_snapshots(dir, &offs, &n);
    if (err != RN_OK)
        return err;
    err = RN_ERR_NOT_FOUND;
    char path[PATH_MAX];
    for (size_t i = 0; i < n && err == RN_ERR_NOT_FOUND; i++) {
        snap_path(path, sizeof path, dir, offs[i]);
        if (offs[i] > log_end) {
            unlink(path);
            continue;
        }
        rn_buf_t b = RN_BUF_INIT;
        rn_err_t rerr = rn_fs_read_all(path, &b);
        if (rerr == RN_OK)
            rerr = decode(ps, b.data, b.len, offset);
        rn_buf_free(&b);
        if (rerr == RN_OK) {
            err = RN_OK;
        } else if (rerr == RN_ERR_NOMEM) {
            err = rerr;
        } else {
            clear(ps);
            unlink(path); /* torn or damaged: an older snapshot or a replay stands in */
        }
    }
    free(offs);
    return err;
}
