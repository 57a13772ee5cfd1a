#include "hist.h"

#include <stdlib.h>
#include <string.h>

#define SUB_BITS 7
#define SUB_COUNT (1u << SUB_BITS)       /* linear sub-buckets per power of two */
#define MAX_BITS 47
#define BUCKETS ((MAX_BITS - SUB_BITS + 1) * SUB_COUNT)

struct rn_hist {
    uint64_t total;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t counts[BUCKETS];
};

rn_hist_t *rn_hist_new(void)
{
    rn_hist_t *h = malloc(sizeof *h);
    if (h)
        rn_hist_reset(h);
    return h;
}

void rn_hist_free(rn_hist_t *h)
{
    free(h);
}

void rn_hist_reset(rn_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/*
 * Values below SUB_COUNT map one to one. Above, a value with its top bit at position b
 * (b >= SUB_BITS) keeps its SUB_BITS bits below the top one: bucket (b - SUB_BITS + 1) * 128 + those.
 */
static unsigned index_of(uint64_t v)
{
    if (v >= (1ULL << MAX_BITS))
        v = (1ULL << MAX_BITS) - 1;
    if (v < SUB_COUNT)
        return (unsigned)v;
    unsigned b = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = b - SUB_BITS;
    return (b - SUB_BITS + 1) * SUB_COUNT + (unsigned)((v >> shift) & (SUB_COUNT - 1));
}

/* The midpoint of the bucket: the value reported for everything in it. */
static uint64_t value_of(unsigned i)
{
    if (i < SUB_COUNT)
        return i;
    unsigned group = i / SUB_COUNT;          /* >= 1 */
    unsigned shift = group - 1;
    uint64_t low = ((uint64_t)SUB_COUNT + (i % SUB_COUNT)) << shift;
    return low + ((1ULL << shift) >> 1);
}

void rn_hist_record_n(rn_hist_t *h, uint64_t value, uint64_t count)
{
    if (!count)
        return;
    h->counts[index_of(value)] += count;
    h->total += count;
    h->sum += (double)value * (double)count;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void rn_hist_record(rn_hist_t *h, uint64_t value)
{
    rn_hist_record_n(h, value, 1);
}

void rn_hist_merge(rn_hist_t *dst, const rn_hist_t *src)
{
    for (unsigned i = 0; i < BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t rn_hist_count(const rn_hist_t *h)
{
    return h->total;
}

uint64_t rn_hist_max(const rn_hist_t *h)
{
    return h->max;
}

uint64_t rn_hist_min(const rn_hist_t *h)
{
    return h->total ? h->min : 0;
}

double rn_hist_mean(const rn_hist_t *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

uint64_t rn_hist_quantile(const rn_hist_t *h, double q)
{
    if (!h->total)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 1)
        return h->max;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.5);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            /* Never report beyond what was actually seen. */
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}
