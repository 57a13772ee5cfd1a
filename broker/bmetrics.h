/*
 * bmetrics.h - the broker's Prometheus metrics (runnel_broker_*), on the registry of
 * common/metrics.h, served by the broker's HTTP server (--metrics-listen, broker.c).
 *
 * Where each number comes from:
 *   requests, latency, errors   the server's hooks (rn_bm_srv_hooks): a request is counted
 *                               when its response completes; errors are every error code a
 *                               response carries (top-level, per topic, per partition)
 *   connections                 the server's hooks
 *   bytes/records in, dups      produce.c, from rn_part_append's result (rn_bm_produced)
 *   bytes/records out           fetch.c, per response partition (rn_bm_fetched)
 *   retention deletions         the topics observer, after each retention pass
 *   fsync latency               the partitions' thread-pool step (rn_part_env_t.fsync_seconds)
 *   per-partition offsets, size, segments, topic and partition counts, data-dir space
 *                               set at scrape time by a collect callback, from what the logs
 *                               keep in memory: O(partitions + segments), no file is read
 *
 * Series are created once: the fixed ones here, a topic's (and its partitions') when the
 * topic appears, an (api, error) pair on its first occurrence. The request path touches only
 * kept pointers. A deleted topic's series are removed.
 *
 * Loop thread, except the fsync histogram (thread pool) and rendering (the registry's lock).
 */
#ifndef RN_BROKER_BMETRICS_H
#define RN_BROKER_BMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "net/server.h"
#include "topics.h"

typedef struct rn_bm rn_bm_t;

/* The registry with every fixed series (info, start time, per-API request series). NULL
 * when out of memory. */
rn_bm_t *rn_bm_new(const rn_bcfg_t *cfg);
typedef struct rn_repl rn_repl_t;
/* Cluster mode: replication health (under-replicated, offline, ISR changes) and high
 * watermarks come from repl; NULL (single node) reports zeros and the log ends. */
void rn_bm_set_repl(rn_bm_t *bm, const rn_repl_t *repl);
/* Frees it; the topics it follows must be closed first (rn_bm_follow(bm, NULL) or not). */
void rn_bm_free(rn_bm_t *bm);

rn_metrics_t *rn_bm_registry(rn_bm_t *bm);
/* Hooks for rn_srv_opts_t.hooks; live as long as bm. */
const rn_srv_hooks_t *rn_bm_srv_hooks(rn_bm_t *bm);
/* The fsync latency histogram for rn_part_env_t.fsync_seconds. */
rn_metric_t *rn_bm_fsync_seconds(rn_bm_t *bm);

/* Follows topics: series for each topic there is and will be, and per-partition gauges at
 * every scrape. NULL stops reading them (before they close). */
void rn_bm_follow(rn_bm_t *bm, rn_topics_t *topics);

/* A produce appended pr to a partition of the topic whose rn_topic_stats is stats. */
void rn_bm_produced(void *stats, const rn_part_result_t *pr);
/* A fetch response carries bytes of record batches holding records records of the topic. */
void rn_bm_fetched(void *stats, uint64_t bytes, uint64_t records);

/* The label of an ApiKey ("produce", "fetch", …; "unknown" for anything else). */
const char *rn_bm_api_name(int api);

#endif
