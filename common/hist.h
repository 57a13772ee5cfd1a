/*
 * hist.h - a latency histogram with bounded relative error (HdrHistogram's idea): values are
 * bucketed by power of two, each power split into 128 linear sub-buckets, so any recorded
 * value is reported within 1/128 (< 0.8%) of itself. Values 0 .. 2^47 (ns: ~39 hours).
 * Fixed memory (~6,000 counters), O(1) record, no allocation after creation.
 */
#ifndef RN_HIST_H
#define RN_HIST_H

#include <stdint.h>

typedef struct rn_hist rn_hist_t;

rn_hist_t *rn_hist_new(void);
void rn_hist_free(rn_hist_t *h);
void rn_hist_reset(rn_hist_t *h);
void rn_hist_record(rn_hist_t *h, uint64_t value);
void rn_hist_record_n(rn_hist_t *h, uint64_t value, uint64_t count);
/* Adds every count of src into dst. */
void rn_hist_merge(rn_hist_t *dst, const rn_hist_t *src);
uint64_t rn_hist_count(const rn_hist_t *h);
uint64_t rn_hist_max(const rn_hist_t *h);
uint64_t rn_hist_min(const rn_hist_t *h);
double rn_hist_mean(const rn_hist_t *h);
/* The value at quantile q in [0, 1] (0.99 for p99), within the relative error; 0 when empty. */
uint64_t rn_hist_quantile(const rn_hist_t *h, double q);

#endif
