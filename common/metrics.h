/*
 * metrics.h - a Prometheus metrics registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4) for GET /metrics.
 *
 * Cost model. Updating a series is one relaxed atomic add (a histogram: a short linear scan of
 * its bucket bounds and two atomic adds); nothing is allocated or locked on that path. Series
 * are created with rn_metric_get (a lock and a lookup: do it once, at setup or when a topic
 * appears, and keep the pointer). A scrape locks the registry, runs the collect callbacks
 * (which set gauges from state the owner already keeps, e.g. one gauge per partition: the cost
 * grows with partitions, never with records), and prints every series.
 *
 * Threads: every function may be called from any thread. A series pointer stays valid until
 * rn_metric_remove or rn_metrics_free.
 *
 *   rn_metrics_t *m = rn_metrics_new();
 *   rn_mfamily_t *req = rn_metrics_counter(m, "runnel_broker_requests_total",
 *                                          "Requests handled, by API.", "api");
 *   rn_metric_t *produce = rn_metric_get(req, (const char *[]){"produce"});
 *   rn_counter_add(produce, 1);
 */
#ifndef RN_METRICS_H
#define RN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

typedef struct rn_metrics rn_metrics_t;
typedef struct rn_mfamily rn_mfamily_t;
typedef struct rn_metric rn_metric_t;

rn_metrics_t *rn_metrics_new(void);
void rn_metrics_free(rn_metrics_t *m);

/*
 * Families. name must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), help one line;
 * labels is a comma-separated list of label names ("topic,partition") or NULL. Registering a
 * name twice returns the first family when the type and labels agree, NULL otherwise (and on
 * a bad name or out of memory). Histogram bounds are the buckets' upper bounds, increasing;
 * +Inf is added.
 */
rn_mfamily_t *rn_metrics_counter(rn_metrics_t *m, const char *name, const char *help,
                                 const char *labels);
rn_mfamily_t *rn_metrics_gauge(rn_metrics_t *m, const char *name, const char *help,
                               const char *labels);
rn_mfamily_t *rn_metrics_histogram(rn_metrics_t *m, const char *name, const char *help,
                                   const char *labels, const double *bounds, size_t nbounds);

/* Latency buckets in seconds, 25 µs to 10 s (for request, fsync and commit latencies). */
extern const double rn_metrics_latency_buckets[];
extern const size_t rn_metrics_latency_nbuckets;

/*
 * The series of family with these label values (as many as the family has labels; NULL for
 * a family without labels), created at zero when new. NULL only when out of memory.
 */
rn_metric_t *rn_metric_get(rn_mfamily_t *f, const char *const *label_values);
/* Forgets a series (a deleted topic); the pointer is invalid afterwards. */
void rn_metric_remove(rn_mfamily_t *f, rn_metric_t *s);

/* Updates. A NULL series is ignored, so a failed rn_metric_get never crashes a caller. */
void rn_counter_add(rn_metric_t *s, uint64_t n);
void rn_gauge_set(rn_metric_t *s, double v);
void rn_gauge_add(rn_metric_t *s, double v);
void rn_histo_observe(rn_metric_t *s, double v);
/* n observations of the same value at once. */
void rn_histo_observe_n(rn_metric_t *s, double v, uint64_t n);

/* Reads (tests, `runnel top` over the same process). */
double rn_metric_value(const rn_metric_t *s);      /* counter or gauge */
uint64_t rn_histo_count(const rn_metric_t *s);
double rn_histo_sum(const rn_metric_t *s);

/*
 * fn(ctx) runs at the start of every render, under the registry's lock: it may call
 * rn_gauge_set/rn_counter_add and rn_metric_get, nothing else of this registry.
 */
rn_err_t rn_metrics_on_collect(rn_metrics_t *m, void (*fn)(void *ctx), void *ctx);

/* Appends the text exposition of every family to out. */
rn_err_t rn_metrics_render(rn_metrics_t *m, rn_buf_t *out);

#endif
