/* bmetrics.c - the broker's metrics: families, hooks and the scrape-time collector. */
#include "bmetrics.h"

#include "repl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "clock.h"
#include "partition.h"

/* ApiKey values 1..13 (runnel.proto) have their own series; slot 0 is "unknown". */
#define API_SLOTS 14
/* Wire error codes 1..MAX_ERR_CODE are counted by name; anything else as UNKNOWN. */
#define MAX_ERR_CODE 63

static const char *const api_names[API_SLOTS] = {
    "unknown",      "api_versions", "metadata",     "create_topics",   "delete_topics",
    "produce",      "fetch",        "list_offsets", "init_producer_id",
    "offset_for_leader_epoch",      "broker_registration",          "broker_heartbeat",
    "alter_partition",              "describe_cluster",
};

typedef struct bm_part {
    rn_metric_t *log_start, *log_end, *high_watermark, *size, *segments;
} bm_part_t;

/* What rn_topic_stats points at. */
typedef struct bm_topic {
    rn_bm_t *bm;
    rn_topic_t *topic;
    rn_metric_t *bytes_in, *bytes_out, *records_in, *records_out, *duplicates;
    rn_metric_t *retention_segments, *retention_bytes;
    uint32_t nparts;
    bm_part_t *parts;
} bm_topic_t;

struct rn_bm {
    rn_metrics_t *reg;
    char *data_dir;
    rn_srv_hooks_t hooks;
    rn_topics_t *topics;
    rn_metric_t *requests[API_SLOTS], *duration[API_SLOTS];
    rn_metric_t *errors[API_SLOTS][MAX_ERR_CODE + 1]; /* created on first use */
    rn_metric_t *connections, *accepted, *fsync;
    rn_metric_t *ntopics, *npartitions, *dir_free, *dir_size;
    rn_mfamily_t *f_errors;
    /* per topic */
    rn_mfamily_t *f_bytes_in, *f_bytes_out, *f_records_in, *f_records_out, *f_duplicates;
    rn_mfamily_t *f_ret_segments, *f_ret_bytes;
    /* per partition */
    rn_mfamily_t *f_log_start, *f_log_end, *f_hw, *f_size, *f_segments;
    rn_metric_t *under, *offline, *isr_shrinks, *isr_expands;
    const rn_repl_t *repl;
    uint64_t seen_shrinks, seen_expands;
};

const char *rn_bm_api_name(int api)
{
    return api > 0 && api < API_SLOTS ? api_names[api] : api_names[0];
}

static int api_slot(int api)
{
    return api > 0 && api < API_SLOTS ? api : 0;
}

/* ------------------------------------------------------------- server hooks ---- */

static void conn_opened(void *ctx)
{
    rn_bm_t *bm = ctx;
    rn_gauge_add(bm->connections, 1);
    rn_counter_add(bm->accepted, 1);
}

static void conn_closed(void *ctx)
{
    rn_bm_t *bm = ctx;
    rn_gauge_add(bm->connections, -1);
}

static void answered(void *ctx, int api, int64_t start_ns)
{
    rn_bm_t *bm = ctx;
    int slot = api_slot(api);
    rn_counter_add(bm->requests[slot], 1);
    rn_histo_observe(bm->duration[slot], (double)(rn_now_ns() - start_ns) / 1e9);
}

static void errored(void *ctx, int api, rn_err_t err)
{
    rn_bm_t *bm = ctx;
    int slot = api_slot(api);
    int code = err > 0 && err <= MAX_ERR_CODE ? (int)err : 0;
    rn_metric_t **s = &bm->errors[slot][code];
    if (!*s) {
        const char *labels[] = {api_names[slot], code ? rn_err_name(err) : "UNKNOWN"};
        *s = rn_metric_get(bm->f_errors, labels);
    }
    rn_counter_add(*s, 1);
}

/* ------------------------------------------------------------------- topics ---- */

static void *topic_added(void *ctx, rn_topic_t *topic)
{
    rn_bm_t *bm = ctx;
    bm_topic_t *t = calloc(1, sizeof *t);
    uint32_t n = rn_topic_partition_count(topic);
    if (!t || !(t->parts = calloc(n ? n : 1, sizeof *t->parts))) {
        free(t);
        return NULL; /* the topic goes uncounted; every update takes NULL */
    }
    t->bm = bm;
    t->topic = topic;
    t->nparts = n;
    const char *name = rn_topic_name(topic);
    const char *tl[] = {name};
    t->bytes_in = rn_metric_get(bm->f_bytes_in, tl);
    t->bytes_out = rn_metric_get(bm->f_bytes_out, tl);
    t->records_in = rn_metric_get(bm->f_records_in, tl);
    t->records_out = rn_metric_get(bm->f_records_out, tl);
    t->duplicates = rn_metric_get(bm->f_duplicates, tl);
    t->retention_segments = rn_metric_get(bm->f_ret_segments, tl);
    t->retention_bytes = rn_metric_get(bm->f_ret_bytes, tl);
    for (uint32_t i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%" PRIu32, i);
        const char *pl[] = {name, num};
        bm_part_t *p = &t->parts[i];
        p->log_start = rn_metric_get(bm->f_log_start, pl);
        p->log_end = rn_metric_get(bm->f_log_end, pl);
        p->high_watermark = rn_metric_get(bm->f_hw, pl);
        p->size = rn_metric_get(bm->f_size, pl);
        p->segments = rn_metric_get(bm->f_segments, pl);
    }
    return t;
}

static void topic_removed(void *ctx, void *stats)
{
    rn_bm_t *bm = ctx;
    bm_topic_t *t = stats;
    rn_metric_remove(bm->f_bytes_in, t->bytes_in);
    rn_metric_remove(bm->f_bytes_out, t->bytes_out);
    rn_metric_remove(bm->f_records_in, t->records_in);
    rn_metric_remove(bm->f_records_out, t->records_out);
    rn_metric_remove(bm->f_duplicates, t->duplicates);
    rn_metric_remove(bm->f_ret_segments, t->retention_segments);
    rn_metric_remove(bm->f_ret_bytes, t->retention_bytes);
    for (uint32_t i = 0; i < t->nparts; i++) {
        bm_part_t *p = &t->parts[i];
        rn_metric_remove(bm->f_log_start, p->log_start);
        rn_metric_remove(bm->f_log_end, p->log_end);
        rn_metric_remove(bm->f_hw, p->high_watermark);
        rn_metric_remove(bm->f_size, p->size);
        rn_metric_remove(bm->f_segments, p->segments);
    }
    free(t->parts);
    free(t);
}

static void topic_retention(void *ctx, void *stats, uint32_t segments, uint64_t bytes)
{
    (void)ctx;
    bm_topic_t *t = stats;
    rn_counter_add(t->retention_segments, segments);
    rn_counter_add(t->retention_bytes, bytes);
}

void rn_bm_follow(rn_bm_t *bm, rn_topics_t *topics)
{
    bm->topics = topics;
    if (!topics)
        return;
    rn_topics_observer_t obs = {bm, topic_added, topic_removed, topic_retention};
    rn_topics_observe(topics, &obs);
}

void rn_bm_produced(void *stats, const rn_part_result_t *pr)
{
    bm_topic_t *t = stats;
    if (!t)
        return;
    rn_counter_add(t->bytes_in, pr->bytes);
    rn_counter_add(t->records_in, pr->records);
    rn_counter_add(t->duplicates, pr->duplicate_batches);
}

void rn_bm_fetched(void *stats, uint64_t bytes, uint64_t records)
{
    bm_topic_t *t = stats;
    if (!t)
        return;
    rn_counter_add(t->bytes_out, bytes);
    rn_counter_add(t->records_out, records);
}

/* ---------------------------------------------------------------- collector ---- */

/* At every scrape, on the loop thread (the HTTP server runs there), under the registry lock. */
static void collect(void *ctx)
{
    rn_bm_t *bm = ctx;
    struct statvfs vfs;
    if (statvfs(bm->data_dir, &vfs) == 0) {
        rn_gauge_set(bm->dir_free, (double)vfs.f_bavail * (double)vfs.f_frsize);
        rn_gauge_set(bm->dir_size, (double)vfs.f_blocks * (double)vfs.f_frsize);
    }
    if (!bm->topics)
        return;
    size_t ntopics = rn_topics_count(bm->topics);
    uint64_t nparts = 0;
    for (size_t i = 0; i < ntopics; i++) {
        rn_topic_t *topic = rn_topics_at(bm->topics, i);
        bm_topic_t *t = rn_topic_stats(topic);
        nparts += rn_topic_partition_count(topic);
        for (uint32_t j = 0; t && j < t->nparts; j++) {
            rn_log_t *log = rn_part_log(rn_topic_partition(topic, j));
            bm_part_t *p = &t->parts[j];
            uint64_t end = rn_log_end_offset(log);
            rn_gauge_set(p->log_start, (double)rn_log_start_offset(log));
            rn_gauge_set(p->log_end, (double)end);
            /* one node: every append is committed; a cluster: what the ISR has */
            rn_gauge_set(p->high_watermark,
                         (double)rn_repl_hw(rn_topic_partition(topic, j)));
            rn_gauge_set(p->size, (double)rn_log_size_bytes(log));
            rn_gauge_set(p->segments, rn_log_segment_count(log));
        }
    }
    rn_gauge_set(bm->ntopics, (double)ntopics);
    rn_gauge_set(bm->npartitions, (double)nparts);
    rn_repl_stats_t rs;
    rn_repl_stats(bm->repl, &rs);
    rn_gauge_set(bm->under, rs.under_replicated);
    rn_gauge_set(bm->offline, rs.offline);
    /* the repl counts only grow; add what is new since the last scrape */
    rn_counter_add(bm->isr_shrinks, rs.isr_shrinks - bm->seen_shrinks);
    rn_counter_add(bm->isr_expands, rs.isr_expands - bm->seen_expands);
    bm->seen_shrinks = rs.isr_shrinks;
    bm->seen_expands = rs.isr_expands;
}

void rn_bm_set_repl(rn_bm_t *bm, const rn_repl_t *repl)
{
    bm->repl = repl;
}

/* ---------------------------------------------------------------- lifecycle ---- */

static rn_metric_t *single(rn_mfamily_t *f)
{
    return rn_metric_get(f, NULL);
}

/* The families and fixed series; false when out of memory. */
static bool create(rn_bm_t *bm, const rn_bcfg_t *cfg)
{
    rn_metrics_t *m = bm->reg;
    const double *lat = rn_metrics_latency_buckets;
    size_t nlat = rn_metrics_latency_nbuckets;
    char node[16];
    snprintf(node, sizeof node, "%" PRId32, cfg->node_id);
    rn_metric_t *info = rn_metric_get(
        rn_metrics_gauge(m, "runnel_broker_info", "The broker's version and node id (always 1).",
                         "version,node_id"),
        (const char *[]){RUNNEL_VERSION, node});
    rn_gauge_set(info, 1);
    rn_metric_t *start = single(rn_metrics_gauge(m, "runnel_broker_start_time_seconds",
                                                 "When the broker started, in Unix seconds.",
                                                 NULL));
    rn_gauge_set(start, (double)rn_clock_wall_ms(rn_clock_system()) / 1000.0);

    rn_mfamily_t *req = rn_metrics_counter(m, "runnel_broker_requests_total",
                                           "Requests answered, by API.", "api");
    bm->f_errors = rn_metrics_counter(m, "runnel_broker_request_errors_total",
                                      "Error codes in responses (top-level, per topic and per "
                                      "partition), by API and error.", "api,error");
    rn_mfamily_t *dur = rn_metrics_histogram(
        m, "runnel_broker_request_duration_seconds",
        "Time from decoding a request to completing its response (long polls and fsync waits "
        "included), by API.", "api", lat, nlat);
    for (int i = 0; i < API_SLOTS; i++) {
        const char *l[] = {api_names[i]};
        bm->requests[i] = rn_metric_get(req, l);
        bm->duration[i] = rn_metric_get(dur, l);
    }

    bm->f_bytes_in = rn_metrics_counter(m, "runnel_broker_bytes_in_total",
                                        "Record-batch bytes appended by produces, by topic.",
                                        "topic");
    bm->f_bytes_out = rn_metrics_counter(m, "runnel_broker_bytes_out_total",
                                         "Record-batch bytes sent in fetch responses, by topic.",
                                         "topic");
    bm->f_records_in = rn_metrics_counter(m, "runnel_broker_records_in_total",
                                          "Records appended by produces, by topic.", "topic");
    bm->f_records_out = rn_metrics_counter(
        m, "runnel_broker_records_out_total",
        "Records in the batches sent in fetch responses (whole batches), by topic.", "topic");
    bm->f_log_start = rn_metrics_gauge(m, "runnel_broker_log_start_offset",
                                       "First offset of the partition's log.", "topic,partition");
    bm->f_log_end = rn_metrics_gauge(m, "runnel_broker_log_end_offset",
                                     "Offset the next record appended will get.",
                                     "topic,partition");
    bm->f_hw = rn_metrics_gauge(m, "runnel_broker_high_watermark",
                                "Offset below which records are committed and readable.",
                                "topic,partition");
    bm->f_size = rn_metrics_gauge(m, "runnel_broker_log_size_bytes",
                                  "Bytes of the partition's segment files.", "topic,partition");
    bm->f_segments = rn_metrics_gauge(m, "runnel_broker_log_segments",
                                      "Segments of the partition's log.", "topic,partition");
    bm->fsync = single(rn_metrics_histogram(m, "runnel_broker_fsync_duration_seconds",
                                            "Duration of one group-commit fsync of a partition.",
                                            NULL, lat, nlat));
    bm->connections = single(rn_metrics_gauge(m, "runnel_broker_connections",
                                              "Client connections open now.", NULL));
    bm->accepted = single(rn_metrics_counter(m, "runnel_broker_connections_accepted_total",
                                             "Client connections accepted and served.", NULL));
    bm->f_duplicates = rn_metrics_counter(
        m, "runnel_broker_idempotent_duplicates_total",
        "Retried batches of idempotent producers acknowledged without appending, by topic.",
        "topic");
    bm->f_ret_segments = rn_metrics_counter(m, "runnel_broker_retention_deleted_segments_total",
                                            "Segments deleted by retention, by topic.", "topic");
    bm->f_ret_bytes = rn_metrics_counter(m, "runnel_broker_retention_deleted_bytes_total",
                                         "Bytes of the segments deleted by retention, by topic.",
                                         "topic");
    bm->dir_free = single(rn_metrics_gauge(
        m, "runnel_broker_data_dir_free_bytes",
        "Bytes available to the broker on the data directory's filesystem.", NULL));
    bm->dir_size = single(rn_metrics_gauge(m, "runnel_broker_data_dir_size_bytes",
                                           "Size of the data directory's filesystem in bytes.",
                                           NULL));
    bm->npartitions = single(rn_metrics_gauge(m, "runnel_broker_partitions",
                                              "Partitions this broker serves.", NULL));
    bm->ntopics = single(rn_metrics_gauge(m, "runnel_broker_topics", "Topics this broker serves.",
                                          NULL));
    /* Replication health. A single broker holds every replica of its partitions (replication
     * factor 1, ISR = replicas), so these stay 0 there. */
    rn_metric_t *under = bm->under = single(rn_metrics_gauge(
        m, "runnel_broker_under_replicated_partitions",
        "Partitions this broker leads whose ISR is smaller than their replica set.", NULL));
    rn_metric_t *offline = bm->offline = single(rn_metrics_gauge(
        m, "runnel_broker_offline_partitions", "Partitions of this broker without a leader.",
        NULL));
    bm->isr_shrinks = single(rn_metrics_counter(
        m, "runnel_broker_isr_shrinks_total",
        "Followers taken out of the ISR of partitions this broker leads (committed).", NULL));
    bm->isr_expands = single(rn_metrics_counter(
        m, "runnel_broker_isr_expands_total",
        "Followers taken back into the ISR of partitions this broker leads (committed).", NULL));
    /* A NULL family or series means out of memory. */
    rn_mfamily_t *fams[] = {req, dur, bm->f_errors, bm->f_bytes_in, bm->f_bytes_out,
                            bm->f_records_in, bm->f_records_out, bm->f_log_start, bm->f_log_end,
                            bm->f_hw, bm->f_size, bm->f_segments, bm->f_duplicates,
                            bm->f_ret_segments, bm->f_ret_bytes};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        if (!fams[i])
            return false;
    }
    return info && start && bm->fsync && bm->connections && bm->accepted && bm->dir_free &&
           bm->dir_size && bm->npartitions && bm->ntopics && under && offline && bm->isr_shrinks &&
           bm->isr_expands &&
           rn_metrics_on_collect(m, collect, bm) == RN_OK;
}

rn_bm_t *rn_bm_new(const rn_bcfg_t *cfg)
{
    rn_bm_t *bm = calloc(1, sizeof *bm);
    if (!bm)
        return NULL;
    if (!(bm->reg = rn_metrics_new()) || !(bm->data_dir = strdup(cfg->data_dir)) ||
        !create(bm, cfg)) {
        rn_bm_free(bm);
        return NULL;
    }
    bm->hooks = (rn_srv_hooks_t){bm, conn_opened, conn_closed, answered, errored};
    return bm;
}

void rn_bm_free(rn_bm_t *bm)
{
    if (!bm)
        return;
    rn_metrics_free(bm->reg);
    free(bm->data_dir);
    free(bm);
}

rn_metrics_t *rn_bm_registry(rn_bm_t *bm)
{
    return bm->reg;
}

const rn_srv_hooks_t *rn_bm_srv_hooks(rn_bm_t *bm)
{
    return &bm->hooks;
}

rn_metric_t *rn_bm_fsync_seconds(rn_bm_t *bm)
{
    return bm->fsync;
}
