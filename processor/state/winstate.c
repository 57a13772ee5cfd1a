#include "state/winstate.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { F_DIRTY = 1, F_EMITTED = 2, F_DEAD = 4 };

struct rn_ws_group {
    rn_ws_group_t *hnext;         /* hash chain */
    rn_ws_group_t *wnext;         /* TUMBLE/HOP: next group of the same window */
    rn_ws_group_t *dprev, *dnext; /* dirty list */
    uint64_t hash;
    int64_t start, end;
    uint32_t key_len;
    uint8_t flags;
    uint8_t *key;                 /* after the accumulators, in the same allocation */
    rn_agg_acc_t acc[];
};

typedef struct win {
    int64_t start, end;
    rn_ws_group_t *head;
} win_t;

typedef struct heap_ent {
    int64_t end;
    rn_ws_group_t *g;
} heap_ent_t;

struct rn_ws {
    rn_ws_config_t cfg;
    rn_ws_group_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    win_t *wins;     /* TUMBLE/HOP, sorted by start (= by end) */
    size_t nwins, capwins;
    heap_ent_t *heap; /* SESSION */
    size_t nheap, capheap;
    rn_ws_group_t *dirty_head, *dirty_tail;
    rn_ws_group_t **sess; /* scratch: a key's sessions */
    size_t capsess;
};

static bool fixed(const rn_ws_t *ws)
{
    return ws->cfg.kind == RN_WIN_TUMBLE || ws->cfg.kind == RN_WIN_HOP;
}

rn_err_t rn_ws_new(const rn_ws_config_t *cfg, rn_ws_t **out)
{
    rn_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        return RN_ERR_NOMEM;
    ws->cfg = *cfg;
    ws->cfg.aggs = malloc((cfg->naggs ? cfg->naggs : 1) * sizeof *cfg->aggs);
    ws->cfg.key_types = malloc((cfg->nkeys ? cfg->nkeys : 1) * sizeof *cfg->key_types);
    ws->nbuckets = 1024;
    ws->buckets = calloc(ws->nbuckets, sizeof *ws->buckets);
    if (!ws->cfg.aggs || !ws->cfg.key_types || !ws->buckets) {
        rn_ws_free(ws);
        return RN_ERR_NOMEM;
    }
    memcpy((void *)ws->cfg.aggs, cfg->aggs, cfg->naggs * sizeof *cfg->aggs);
    memcpy((void *)ws->cfg.key_types, cfg->key_types, cfg->nkeys * sizeof *cfg->key_types);
    *out = ws;
    return RN_OK;
}

static void group_free(const rn_ws_t *ws, rn_ws_group_t *g)
{
    for (size_t i = 0; i < ws->cfg.naggs; i++)
        rn_agg_free(&ws->cfg.aggs[i], &g->acc[i]);
    free(g);
}

void rn_ws_free(rn_ws_t *ws)
{
    if (!ws)
        return;
    /* Merged-away sessions wait only in the heap; live groups are all in the table. */
    for (size_t i = 0; i < ws->nheap; i++) {
        if (ws->heap[i].g->flags & F_DEAD)
            group_free(ws, ws->heap[i].g);
    }
    for (size_t b = 0; ws->buckets && b < ws->nbuckets; b++) {
        for (rn_ws_group_t *g = ws->buckets[b], *next; g; g = next) {
            next = g->hnext;
            group_free(ws, g);
        }
    }
    free(ws->buckets);
    free(ws->wins);
    free(ws->heap);
    free(ws->sess);
    free((void *)ws->cfg.aggs);
    free((void *)ws->cfg.key_types);
    free(ws);
}

/* ------------------------------------------------------------------------ keys -- */

rn_err_t rn_ws_key_append(rn_buf_t *key, const rn_value_t *v)
{
    uint8_t *p;
    if (v->is_null)
        return rn_buf_append(key, "\0", 1);
    switch (v->type) {
    case RN_T_TEXT:
        if (!(p = rn_buf_extend(key, 5 + (size_t)v->len)))
            return RN_ERR_NOMEM;
        p[0] = 1;
        memcpy(p + 1, &v->len, 4);
        memcpy(p + 5, v->u.s, v->len);
        return RN_OK;
    case RN_T_BOOLEAN:
        if (!(p = rn_buf_extend(key, 2)))
            return RN_ERR_NOMEM;
        p[0] = 1;
        p[1] = v->u.b;
        return RN_OK;
    case RN_T_DOUBLE: {
        double d = v->u.d == 0 ? 0.0 : v->u.d;
        if (!(p = rn_buf_extend(key, 9)))
            return RN_ERR_NOMEM;
        p[0] = 1;
        memcpy(p + 1, &d, 8);
        return RN_OK;
    }
    default:
        if (!(p = rn_buf_extend(key, 9)))
            return RN_ERR_NOMEM;
        p[0] = 1;
        memcpy(p + 1, &v->u.i, 8);
        return RN_OK;
    }
}

void rn_ws_key_values(const rn_ws_t *ws, const rn_ws_group_t *g, rn_value_t *vals)
{
    const uint8_t *p = g->key;
    for (size_t k = 0; k < ws->cfg.nkeys; k++) {
        rn_type_t t = ws->cfg.key_types[k];
        if (*p++ == 0) {
            vals[k] = rn_val_null(t);
            continue;
        }
        if (t == RN_T_TEXT) {
            uint32_t len;
            memcpy(&len, p, 4);
            vals[k] = rn_val_text((const char *)p + 4, len);
            p += 4 + len;
        } else if (t == RN_T_BOOLEAN) {
            vals[k] = rn_val_bool(*p++ != 0);
        } else if (t == RN_T_DOUBLE) {
            double d;
            memcpy(&d, p, 8);
            vals[k] = rn_val_double(d);
            p += 8;
        } else {
            int64_t i;
            memcpy(&i, p, 8);
            vals[k] = rn_val_int(t, i);
            p += 8;
        }
    }
}

uint64_t rn_ws_key_hash(const uint8_t *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/* ---------------------------------------------------------------- hash table -- */

static uint64_t group_hash(const rn_ws_t *ws, int64_t start, uint64_t key_hash)
{
    return fixed(ws) ? key_hash ^ ((uint64_t)start * 0x9E3779B97F4A7C15ULL) : key_hash;
}

static rn_err_t grow(rn_ws_t *ws)
{
    size_t n = ws->nbuckets * 2;
    rn_ws_group_t **b = calloc(n, sizeof *b);
    if (!b)
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < ws->nbuckets; i++) {
        for (rn_ws_group_t *g = ws->buckets[i], *next; g; g = next) {
            next = g->hnext;
            size_t j = g->hash & (n - 1);
            g->hnext = b[j];
            b[j] = g;
        }
    }
    free(ws->buckets);
    ws->buckets = b;
    ws->nbuckets = n;
    return RN_OK;
}

static void hash_insert(rn_ws_t *ws, rn_ws_group_t *g)
{
    size_t j = g->hash & (ws->nbuckets - 1);
    g->hnext = ws->buckets[j];
    ws->buckets[j] = g;
    ws->count++;
}

static void hash_remove(rn_ws_t *ws, rn_ws_group_t *g)
{
    rn_ws_group_t **pp = &ws->buckets[g->hash & (ws->nbuckets - 1)];
    while (*pp && *pp != g)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = g->hnext;
        ws->count--;
    }
}

static void dirty_remove(rn_ws_t *ws, rn_ws_group_t *g)
{
    if (!(g->flags & F_DIRTY))
        return;
    if (g->dprev)
        g->dprev->dnext = g->dnext;
    else
        ws->dirty_head = g->dnext;
    if (g->dnext)
        g->dnext->dprev = g->dprev;
    else
        ws->dirty_tail = g->dprev;
    g->dprev = g->dnext = NULL;
    g->flags &= (uint8_t)~F_DIRTY;
}

void rn_ws_touch(rn_ws_t *ws, rn_ws_group_t *g)
{
    if (!ws->cfg.track_dirty || (g->flags & F_DIRTY))
        return;
    g->flags |= F_DIRTY;
    g->dnext = NULL;
    g->dprev = ws->dirty_tail;
    if (ws->dirty_tail)
        ws->dirty_tail->dnext = g;
    else
        ws->dirty_head = g;
    ws->dirty_tail = g;
}

static rn_ws_group_t *group_new(rn_ws_t *ws, uint64_t hash, int64_t start, int64_t end,
                                const uint8_t *key, size_t len)
{
    if (ws->count >= ws->nbuckets && grow(ws) != RN_OK)
        return NULL;
    size_t accs = ws->cfg.naggs * sizeof(rn_agg_acc_t);
    rn_ws_group_t *g = malloc(sizeof *g + accs + len);
    if (!g)
        return NULL;
    memset(g, 0, sizeof *g + accs);
    g->hash = hash;
    g->start = start;
    g->end = end;
    g->key_len = (uint32_t)len;
    g->key = (uint8_t *)g->acc + accs;
    if (len)
        memcpy(g->key, key, len);
    hash_insert(ws, g);
    return g;
}

rn_agg_acc_t *rn_ws_accs(rn_ws_group_t *g) { return g->acc; }
int64_t rn_ws_start(const rn_ws_group_t *g) { return g->start; }
int64_t rn_ws_end(const rn_ws_group_t *g) { return g->end; }
bool rn_ws_emitted(const rn_ws_group_t *g) { return g->flags & F_EMITTED; }
bool rn_ws_dirty(const rn_ws_group_t *g) { return g->flags & F_DIRTY; }
size_t rn_ws_count(const rn_ws_t *ws) { return ws->count; }

size_t rn_ws_windows(const rn_ws_t *ws)
{
    if (fixed(ws))
        return ws->nwins;
    return ws->cfg.kind == RN_WIN_SESSION ? ws->count : 0;
}

void rn_ws_set_emitted(rn_ws_group_t *g, bool emitted)
{
    if (emitted)
        g->flags |= F_EMITTED;
    else
        g->flags &= (uint8_t)~F_EMITTED;
}

/* ------------------------------------------------------------- fixed windows -- */

/* The open window starting at start, inserted (sorted) when missing; NULL on NOMEM. */
static win_t *window_at(rn_ws_t *ws, int64_t start, int64_t end)
{
    size_t i = ws->nwins;
    while (i > 0 && ws->wins[i - 1].start > start) /* new events land near the back */
        i--;
    if (i > 0 && ws->wins[i - 1].start == start)
        return &ws->wins[i - 1];
    if (ws->nwins == ws->capwins) {
        size_t cap = ws->capwins ? ws->capwins * 2 : 16;
        win_t *w = realloc(ws->wins, cap * sizeof *w);
        if (!w)
            return NULL;
        ws->wins = w;
        ws->capwins = cap;
    }
    memmove(&ws->wins[i + 1], &ws->wins[i], (ws->nwins - i) * sizeof *ws->wins);
    ws->nwins++;
    ws->wins[i] = (win_t){start, end, NULL};
    return &ws->wins[i];
}

rn_err_t rn_ws_get(rn_ws_t *ws, int64_t start, int64_t end, const uint8_t *key, size_t len,
                   uint64_t key_hash, rn_ws_group_t **out)
{
    uint64_t h = group_hash(ws, start, key_hash);
    for (rn_ws_group_t *g = ws->buckets[h & (ws->nbuckets - 1)]; g; g = g->hnext) {
        if (g->hash == h && g->start == start && g->key_len == len &&
            (len == 0 || memcmp(g->key, key, len) == 0)) {
            *out = g;
            return RN_OK;
        }
    }
    win_t *w = NULL;
    if (fixed(ws) && !(w = window_at(ws, start, end)))
        return RN_ERR_NOMEM;
    rn_ws_group_t *g = group_new(ws, h, start, end, key, len);
    if (!g)
        return RN_ERR_NOMEM;
    if (w) {
        g->wnext = w->head;
        w->head = g;
    }
    *out = g;
    return RN_OK;
}

/* ------------------------------------------------------------------ sessions -- */

static void heap_swap(heap_ent_t *h, size_t a, size_t b)
{
    heap_ent_t t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static rn_err_t heap_push(rn_ws_t *ws, int64_t end, rn_ws_group_t *g)
{
    if (ws->nheap == ws->capheap) {
        size_t cap = ws->capheap ? ws->capheap * 2 : 64;
        heap_ent_t *h = realloc(ws->heap, cap * sizeof *h);
        if (!h)
            return RN_ERR_NOMEM;
        ws->heap = h;
        ws->capheap = cap;
    }
    size_t i = ws->nheap++;
    ws->heap[i] = (heap_ent_t){end, g};
    while (i > 0 && ws->heap[(i - 1) / 2].end > ws->heap[i].end) {
        heap_swap(ws->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return RN_OK;
}

static heap_ent_t heap_pop(rn_ws_t *ws)
{
    heap_ent_t top = ws->heap[0];
    ws->heap[0] = ws->heap[--ws->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ws->nheap && ws->heap[l].end < ws->heap[m].end)
            m = l;
        if (r < ws->nheap && ws->heap[r].end < ws->heap[m].end)
            m = r;
        if (m == i)
            break;
        heap_swap(ws->heap, i, m);
        i = m;
    }
    return top;
}

/* The key's live sessions, sorted by start, into ws->sess; returns how many. */
static rn_err_t gather_sessions(rn_ws_t *ws, const uint8_t *key, size_t len, uint64_t h,
                                size_t *n)
{
    *n = 0;
    for (rn_ws_group_t *g = ws->buckets[h & (ws->nbuckets - 1)]; g; g = g->hnext) {
        if (g->hash != h || g->key_len != len || (len && memcmp(g->key, key, len) != 0))
            continue;
        if (*n + 1 >= ws->capsess) {
            size_t cap = ws->capsess ? ws->capsess * 2 : 8;
            rn_ws_group_t **s = realloc(ws->sess, cap * sizeof *s);
            if (!s)
                return RN_ERR_NOMEM;
            ws->sess = s;
            ws->capsess = cap;
        }
        size_t i = (*n)++;
        while (i > 0 && ws->sess[i - 1]->start > g->start) {
            ws->sess[i] = ws->sess[i - 1];
            i--;
        }
        ws->sess[i] = g;
    }
    return RN_OK;
}

rn_err_t rn_ws_session(rn_ws_t *ws, const uint8_t *key, size_t len, uint64_t hash, int64_t ts,
                       int64_t gap, int64_t close_limit, rn_ws_group_fn retract, void *ctx,
                       rn_ws_group_t **out)
{
    size_t n;
    rn_err_t err = gather_sessions(ws, key, len, hash, &n);
    if (err != RN_OK)
        return err;
    rn_win_session_t iv[64];
    rn_win_session_t *ivs = n <= 64 ? iv : malloc(n * sizeof *ivs);
    if (!ivs)
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        ivs[i] = (rn_win_session_t){ws->sess[i]->start, ws->sess[i]->end};
    rn_win_merge_t m;
    rn_win_session_plan(ivs, n, ts, gap, &m);
    if (ivs != iv)
        free(ivs);
    *out = NULL;
    if (m.end <= close_limit)
        return RN_OK; /* late: it would only touch closed sessions */
    if (m.created) {
        rn_ws_group_t *g = group_new(ws, hash, m.start, m.end, key, len);
        if (!g)
            return RN_ERR_NOMEM;
        if ((err = heap_push(ws, g->end, g)) != RN_OK) {
            hash_remove(ws, g);
            group_free(ws, g);
            return err;
        }
        *out = g;
        return RN_OK;
    }
    rn_ws_group_t *keep = ws->sess[m.first];
    for (size_t i = m.first + 1; i <= m.last; i++) {
        rn_ws_group_t *g = ws->sess[i];
        if ((g->flags & F_EMITTED) && retract && (err = retract(ctx, g)) != RN_OK)
            return err;
        for (size_t a = 0; a < ws->cfg.naggs; a++) {
            if ((err = rn_agg_merge(&ws->cfg.aggs[a], &keep->acc[a], &g->acc[a])) != RN_OK)
                return err;
        }
        hash_remove(ws, g);
        dirty_remove(ws, g);
        g->flags = F_DEAD; /* freed when its heap entry comes up */
    }
    if (m.start != keep->start && (keep->flags & F_EMITTED)) {
        if (retract && (err = retract(ctx, keep)) != RN_OK)
            return err;
        keep->flags &= (uint8_t)~F_EMITTED;
    }
    keep->start = m.start;
    keep->end = m.end; /* its heap entry is refreshed lazily when it comes up */
    *out = keep;
    return RN_OK;
}

/* ------------------------------------------------------------------- closing -- */

static rn_err_t close_group(rn_ws_t *ws, rn_ws_group_t *g, rn_ws_group_fn fn, void *ctx)
{
    rn_err_t err = fn ? fn(ctx, g) : RN_OK;
    if (err != RN_OK)
        return err;
    hash_remove(ws, g);
    dirty_remove(ws, g);
    group_free(ws, g);
    return RN_OK;
}

static rn_err_t close_sessions(rn_ws_t *ws, int64_t limit, rn_ws_group_fn fn, void *ctx)
{
    while (ws->nheap > 0 && ws->heap[0].end <= limit) {
        heap_ent_t e = heap_pop(ws);
        rn_ws_group_t *g = e.g;
        rn_err_t err = RN_OK;
        if (g->flags & F_DEAD)
            group_free(ws, g);
        else if (g->end > limit)
            err = heap_push(ws, g->end, g); /* extended since it was queued */
        else if ((err = close_group(ws, g, fn, ctx)) != RN_OK && heap_push(ws, e.end, g) != RN_OK)
            return RN_ERR_NOMEM;
        if (err != RN_OK)
            return err;
    }
    return RN_OK;
}

rn_err_t rn_ws_close_until(rn_ws_t *ws, int64_t limit, rn_ws_group_fn fn, void *ctx)
{
    if (ws->cfg.kind == RN_WIN_SESSION)
        return close_sessions(ws, limit, fn, ctx);
    if (!fixed(ws))
        return RN_OK;
    while (ws->nwins > 0 && ws->wins[0].end <= limit) {
        win_t *w = &ws->wins[0];
        while (w->head) {
            rn_ws_group_t *g = w->head, *next = g->wnext;
            rn_err_t err = close_group(ws, g, fn, ctx);
            if (err != RN_OK)
                return err;
            w->head = next;
        }
        memmove(&ws->wins[0], &ws->wins[1], (ws->nwins - 1) * sizeof *ws->wins);
        ws->nwins--;
    }
    return RN_OK;
}

rn_err_t rn_ws_each_dirty(rn_ws_t *ws, rn_ws_group_fn fn, void *ctx)
{
    while (ws->dirty_head) {
        rn_ws_group_t *g = ws->dirty_head;
        rn_err_t err = fn(ctx, g);
        if (err != RN_OK)
            return err;
        dirty_remove(ws, g);
    }
    return RN_OK;
}

int64_t rn_ws_next_end(const rn_ws_t *ws)
{
    if (fixed(ws))
        return ws->nwins ? ws->wins[0].end : INT64_MAX;
    if (ws->cfg.kind == RN_WIN_SESSION)
        return ws->nheap ? ws->heap[0].end : INT64_MAX;
    return INT64_MAX;
}

/* ------------------------------------------------------------------ snapshot -- */
/*
 * State encoding (inside the snapshot file, which carries version and checksum):
 *
 *   u64 group count
 *   per group:  i64 start | i64 end | u8 flags (DIRTY, EMITTED) | u32 key_len | key bytes
 *               | one rn_agg_write encoding per aggregate, in plan order
 */
static rn_err_t put(rn_buf_t *out, const void *p, size_t n)
{
    return rn_buf_append(out, p, n);
}

rn_err_t rn_ws_write(const rn_ws_t *ws, rn_buf_t *out)
{
    uint64_t n = ws->count;
    rn_err_t err = put(out, &n, 8);
    for (size_t b = 0; b < ws->nbuckets && err == RN_OK; b++) {
        for (const rn_ws_group_t *g = ws->buckets[b]; g && err == RN_OK; g = g->hnext) {
            uint8_t flags = g->flags & (F_DIRTY | F_EMITTED);
            if ((err = put(out, &g->start, 8)) != RN_OK || (err = put(out, &g->end, 8)) != RN_OK ||
                (err = put(out, &flags, 1)) != RN_OK || (err = put(out, &g->key_len, 4)) != RN_OK ||
                (err = put(out, g->key, g->key_len)) != RN_OK)
                break;
            for (size_t a = 0; a < ws->cfg.naggs && err == RN_OK; a++)
                err = rn_agg_write(&ws->cfg.aggs[a], &g->acc[a], out);
        }
    }
    return err;
}

static rn_err_t restore_group(rn_ws_t *ws, int64_t start, int64_t end, uint8_t flags,
                              const uint8_t *key, uint32_t len, const uint8_t **p,
                              const uint8_t *stop)
{
    rn_ws_group_t *g;
    rn_err_t err;
    uint64_t kh = rn_ws_key_hash(key, len);
    if (ws->cfg.kind == RN_WIN_SESSION) {
        if (!(g = group_new(ws, kh, start, end, key, len)))
            return RN_ERR_NOMEM;
        if ((err = heap_push(ws, end, g)) != RN_OK)
            return err;
    } else if ((err = rn_ws_get(ws, start, end, key, len, kh, &g)) != RN_OK) {
        return err;
    }
    for (size_t a = 0; a < ws->cfg.naggs; a++) {
        rn_agg_free(&ws->cfg.aggs[a], &g->acc[a]);
        if ((err = rn_agg_read(&ws->cfg.aggs[a], &g->acc[a], p, stop)) != RN_OK)
            return err;
    }
    g->flags = flags & F_EMITTED;
    if (flags & F_DIRTY)
        rn_ws_touch(ws, g);
    return RN_OK;
}

rn_err_t rn_ws_read(rn_ws_t *ws, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint64_t n;
    if (end - p < 8)
        return RN_ERR_CORRUPT;
    memcpy(&n, p, 8);
    p += 8;
    for (uint64_t i = 0; i < n; i++) {
        int64_t start, stop;
        uint8_t flags;
        uint32_t len;
        if (end - p < 21)
            return RN_ERR_CORRUPT;
        memcpy(&start, p, 8);
        memcpy(&stop, p + 8, 8);
        flags = p[16];
        memcpy(&len, p + 17, 4);
        p += 21;
        if ((size_t)(end - p) < len || stop < start)
            return RN_ERR_CORRUPT;
        const uint8_t *key = p;
        p += len;
        rn_err_t err = restore_group(ws, start, stop, flags, key, len, &p, end);
        if (err != RN_OK)
            return err;
    }
    *pp = p;
    return RN_OK;
}
