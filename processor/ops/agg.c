#include "ops/agg.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef struct distinct_set {
    uint32_t cap;  /* power of two */
    uint32_t n;
    uint64_t slots[]; /* 0 = empty; a hash of 0 is stored as 1 */
} distinct_set_t;

typedef struct text_copy {
    uint32_t len;
    char data[];
} text_copy_t;

int rn_agg_result_type(rn_agg_kind_t kind, rn_type_t arg_type)
{
    switch (kind) {
    case RN_AGG_COUNT_STAR:
    case RN_AGG_COUNT:
    case RN_AGG_COUNT_DISTINCT:
        return RN_T_BIGINT;
    case RN_AGG_SUM:
        return (arg_type == RN_T_BIGINT || arg_type == RN_T_DOUBLE) ? (int)arg_type : -1;
    case RN_AGG_AVG:
        return (arg_type == RN_T_BIGINT || arg_type == RN_T_DOUBLE) ? RN_T_DOUBLE : -1;
    case RN_AGG_MIN:
    case RN_AGG_MAX:
        return arg_type == RN_T_NULL ? -1 : (int)arg_type;
    }
    return -1;
}

const char *rn_agg_name(rn_agg_kind_t kind)
{
    static const char *const names[] = {"COUNT", "COUNT", "COUNT", "SUM", "MIN", "MAX", "AVG"};
    return names[kind];
}

uint64_t rn_agg_value_hash(const rn_value_t *v)
{
    if (v->is_null)
        return 0x9e3779b97f4a7c15ULL;
    switch (v->type) {
    case RN_T_TEXT:
        return XXH3_64bits(v->u.s, v->len);
    case RN_T_DOUBLE: {
        double d = v->u.d == 0 ? 0.0 : v->u.d; /* -0.0 and 0.0 are one value */
        return XXH3_64bits_withSeed(&d, sizeof d, 2);
    }
    case RN_T_BOOLEAN: {
        uint8_t b = v->u.b;
        return XXH3_64bits_withSeed(&b, 1, 3);
    }
    default:
        return XXH3_64bits_withSeed(&v->u.i, sizeof v->u.i, 1);
    }
}

static distinct_set_t *set_new(uint32_t cap)
{
    distinct_set_t *s = calloc(1, sizeof *s + cap * sizeof(uint64_t));
    if (s)
        s->cap = cap;
    return s;
}

/* Inserts h (non-zero); grows at 50% load. Returns false only when out of memory. */
static bool set_add(distinct_set_t **sp, uint64_t h)
{
    distinct_set_t *s = *sp;
    if ((s->n + 1) * 2 > s->cap) {
        distinct_set_t *big = set_new(s->cap * 2);
        if (!big)
            return false;
        for (uint32_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            uint32_t j = (uint32_t)s->slots[i] & (big->cap - 1);
            while (big->slots[j])
                j = (j + 1) & (big->cap - 1);
            big->slots[j] = s->slots[i];
        }
        big->n = s->n;
        free(s);
        *sp = s = big;
    }
    uint32_t j = (uint32_t)h & (s->cap - 1);
    while (s->slots[j]) {
        if (s->slots[j] == h)
            return true;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = h;
    s->n++;
    return true;
}

static bool text_set(rn_agg_acc_t *acc, const char *s, uint32_t len)
{
    text_copy_t *t = acc->ext;
    if (!t || t->len < len) {
        t = realloc(t, sizeof *t + len + 1);
        if (!t)
            return false;
        acc->ext = t;
    }
    t->len = len;
    if (len)
        memcpy(t->data, s, len);
    return true;
}

static rn_value_t current(const rn_agg_desc_t *d, const rn_agg_acc_t *acc)
{
    if (d->arg_type == RN_T_TEXT) {
        const text_copy_t *t = acc->ext;
        return rn_val_text(t->data, t->len);
    }
    rn_value_t v = rn_val_int(d->arg_type, acc->v.i);
    if (d->arg_type == RN_T_DOUBLE)
        v.u.d = acc->v.d;
    else if (d->arg_type == RN_T_BOOLEAN)
        v.u.b = acc->v.i != 0;
    return v;
}

static rn_err_t update_extreme(const rn_agg_desc_t *d, rn_agg_acc_t *acc, const rn_value_t *v)
{
    if (acc->n > 0) {
        rn_value_t cur = current(d, acc);
        int c = rn_val_cmp(v, &cur);
        if (d->kind == RN_AGG_MIN ? c >= 0 : c <= 0) {
            acc->n++;
            return RN_OK;
        }
    }
    if (d->arg_type == RN_T_TEXT) {
        if (!text_set(acc, v->u.s, v->len))
            return RN_ERR_NOMEM;
    } else if (d->arg_type == RN_T_DOUBLE) {
        acc->v.d = v->u.d;
    } else if (d->arg_type == RN_T_BOOLEAN) {
        acc->v.i = v->u.b;
    } else {
        acc->v.i = v->u.i;
    }
    acc->n++;
    return RN_OK;
}

rn_err_t rn_agg_update(const rn_agg_desc_t *d, rn_agg_acc_t *acc, const rn_value_t *v)
{
    if (d->kind == RN_AGG_COUNT_STAR) {
        acc->n++;
        return RN_OK;
    }
    if (v->is_null)
        return RN_OK;
    switch (d->kind) {
    case RN_AGG_COUNT:
        acc->n++;
        return RN_OK;
    case RN_AGG_COUNT_DISTINCT: {
        if (!acc->ext && !(acc->ext = set_new(8)))
            return RN_ERR_NOMEM;
        uint64_t h = rn_agg_value_hash(v);
        if (!set_add((distinct_set_t **)&acc->ext, h ? h : 1))
            return RN_ERR_NOMEM;
        acc->n = ((distinct_set_t *)acc->ext)->n;
        return RN_OK;
    }
    case RN_AGG_SUM:
    case RN_AGG_AVG: {
        double x = v->type == RN_T_DOUBLE ? v->u.d : (double)v->u.i;
        if (d->kind == RN_AGG_SUM && d->type == RN_T_BIGINT)
            acc->v.i = (int64_t)((uint64_t)acc->v.i + (uint64_t)v->u.i);
        else
            acc->v.d += x;
        acc->n++;
        return RN_OK;
    }
    default:
        return update_extreme(d, acc, v);
    }
}

rn_err_t rn_agg_merge(const rn_agg_desc_t *d, rn_agg_acc_t *dst, rn_agg_acc_t *src)
{
    rn_err_t err = RN_OK;
    switch (d->kind) {
    case RN_AGG_COUNT_STAR:
    case RN_AGG_COUNT:
        dst->n += src->n;
        break;
    case RN_AGG_COUNT_DISTINCT: {
        distinct_set_t *s = src->ext;
        if (!s)
            break;
        if (!dst->ext) {
            dst->ext = s;
            dst->n = s->n;
            src->ext = NULL;
            break;
        }
        for (uint32_t i = 0; i < s->cap && err == RN_OK; i++) {
            if (s->slots[i] && !set_add((distinct_set_t **)&dst->ext, s->slots[i]))
                err = RN_ERR_NOMEM;
        }
        dst->n = ((distinct_set_t *)dst->ext)->n;
        break;
    }
    case RN_AGG_SUM:
    case RN_AGG_AVG:
        if (d->kind == RN_AGG_SUM && d->type == RN_T_BIGINT)
            dst->v.i = (int64_t)((uint64_t)dst->v.i + (uint64_t)src->v.i);
        else
            dst->v.d += src->v.d;
        dst->n += src->n;
        break;
    default:
        if (src->n > 0) {
            rn_value_t v = current(d, src);
            int64_t n = dst->n;
            err = update_extreme(d, dst, &v);
            dst->n = n + src->n;
        }
        break;
    }
    rn_agg_free(d, src);
    return err;
}

rn_value_t rn_agg_result(const rn_agg_desc_t *d, const rn_agg_acc_t *acc)
{
    switch (d->kind) {
    case RN_AGG_COUNT_STAR:
    case RN_AGG_COUNT:
    case RN_AGG_COUNT_DISTINCT:
        return rn_val_int(RN_T_BIGINT, acc->n);
    case RN_AGG_SUM:
        if (acc->n == 0)
            return rn_val_null(d->type);
        return d->type == RN_T_BIGINT ? rn_val_int(RN_T_BIGINT, acc->v.i) : rn_val_double(acc->v.d);
    case RN_AGG_AVG:
        return acc->n ? rn_val_double(acc->v.d / (double)acc->n) : rn_val_null(RN_T_DOUBLE);
    default:
        return acc->n ? current(d, acc) : rn_val_null(d->type);
    }
}

void rn_agg_free(const rn_agg_desc_t *d, rn_agg_acc_t *acc)
{
    (void)d;
    free(acc->ext);
    memset(acc, 0, sizeof *acc);
}

/*
 * Encoding, little-endian:
 *   n i64 | v 8 bytes | ext: COUNT DISTINCT  u32 count, count × u64 hash
 *                            MIN/MAX TEXT    u32 len, len bytes (only when n > 0)
 */
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool has_text(const rn_agg_desc_t *d)
{
    return (d->kind == RN_AGG_MIN || d->kind == RN_AGG_MAX) && d->arg_type == RN_T_TEXT;
}

rn_err_t rn_agg_write(const rn_agg_desc_t *d, const rn_agg_acc_t *acc, rn_buf_t *out)
{
    uint8_t *p = rn_buf_extend(out, 16);
    if (!p)
        return RN_ERR_NOMEM;
    uint64_t bits;
    memcpy(&bits, &acc->v, 8);
    put64(p, (uint64_t)acc->n);
    put64(p + 8, bits);
    if (d->kind == RN_AGG_COUNT_DISTINCT) {
        const distinct_set_t *s = acc->ext;
        uint32_t n = s ? s->n : 0;
        if (!(p = rn_buf_extend(out, 4 + (size_t)n * 8)))
            return RN_ERR_NOMEM;
        memcpy(p, &n, 4);
        p += 4;
        for (uint32_t i = 0; s && i < s->cap; i++) {
            if (s->slots[i]) {
                put64(p, s->slots[i]);
                p += 8;
            }
        }
    } else if (has_text(d) && acc->n > 0) {
        const text_copy_t *t = acc->ext;
        if (!(p = rn_buf_extend(out, 4 + (size_t)t->len)))
            return RN_ERR_NOMEM;
        memcpy(p, &t->len, 4);
        memcpy(p + 4, t->data, t->len);
    }
    return RN_OK;
}

rn_err_t rn_agg_read(const rn_agg_desc_t *d, rn_agg_acc_t *acc, const uint8_t **pp,
                     const uint8_t *end)
{
    const uint8_t *p = *pp;
    memset(acc, 0, sizeof *acc);
    if (end - p < 16)
        return RN_ERR_CORRUPT;
    acc->n = (int64_t)get64(p);
    uint64_t bits = get64(p + 8);
    memcpy(&acc->v, &bits, 8);
    p += 16;
    if (acc->n < 0)
        return RN_ERR_CORRUPT;
    if (d->kind == RN_AGG_COUNT_DISTINCT || (has_text(d) && acc->n > 0)) {
        uint32_t n;
        if (end - p < 4)
            return RN_ERR_CORRUPT;
        memcpy(&n, p, 4);
        p += 4;
        size_t need = d->kind == RN_AGG_COUNT_DISTINCT ? (size_t)n * 8 : n;
        if ((size_t)(end - p) < need)
            return RN_ERR_CORRUPT;
        if (d->kind == RN_AGG_COUNT_DISTINCT) {
            if (n > 0) {
                uint32_t cap = 8;
                while (cap < n * 2 + 2)
                    cap *= 2;
                if (!(acc->ext = set_new(cap)))
                    return RN_ERR_NOMEM;
                for (uint32_t i = 0; i < n; i++) {
                    uint64_t h = get64(p + (size_t)i * 8);
                    if (h == 0 || !set_add((distinct_set_t **)&acc->ext, h))
                        return h ? RN_ERR_NOMEM : RN_ERR_CORRUPT;
                }
            }
            if ((int64_t)n != acc->n)
                return RN_ERR_CORRUPT;
        } else if (!text_set(acc, (const char *)p, n)) {
            return RN_ERR_NOMEM;
        }
        p += need;
    }
    *pp = p;
    return RN_OK;
}
