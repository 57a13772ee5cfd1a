/* jobmetrics.c - a job's Prometheus series and freshness runs (see jobmetrics.h). */
#include "jobmetrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/watermark.h"

static const double FRESHNESS_BUCKETS[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120};

typedef struct fresh_run {
    int64_t ts;   /* the oldest broker timestamp of the run, ms */
    uint64_t n;
} fresh_run_t;

struct rn_jm {
    int32_t nparts;
    rn_metric_t **records_in, **lag;   /* per partition */
    uint64_t *in_count, *in_published; /* per partition: handled, and already in records_in */
    rn_metric_t *watermark, *watermark_delay, *open_windows, *state_bytes;
    rn_metric_t *late, *malformed, *dead_letters, *upserted, *deleted;
    rn_metric_t *sink_commit, *checkpoint, *last_checkpoint, *checkpoints, *freshness;
    uint64_t pub_late, pub_malformed, pub_dead_letters, pub_upserts, pub_deletes;
    /*
     * runs[0..nsorted) are sorted, one per slot (what the last compaction left); after them
     * come runs in arrival order. A slot is 2^shift ms: a run holds timestamps of one slot.
     */
    fresh_run_t runs[RN_JM_FRESH_RUNS];
    size_t nruns, nsorted;
    unsigned shift;
};

/* Timestamps are > 0 here (others are not observed), so a shift is a floor division. */
static int64_t slot(const rn_jm_t *jm, int64_t ts)
{
    return ts >> jm->shift;
}

/* One series of a family of job only. */
static rn_metric_t *job_series(rn_mfamily_t *f, const char *job)
{
    return rn_metric_get(f, (const char *[]){job});
}

rn_err_t rn_jm_new(rn_metrics_t *m, const char *job, const char *topic, int32_t npartitions,
                   rn_jm_t **out)
{
    *out = NULL;
    if (!m)
        return RN_OK;
    rn_jm_t *jm = calloc(1, sizeof *jm);
    if (!jm)
        return RN_ERR_NOMEM;
    size_t n = (size_t)npartitions;
    jm->nparts = npartitions;
    jm->records_in = calloc(n + 1, sizeof *jm->records_in);
    jm->lag = calloc(n + 1, sizeof *jm->lag);
    jm->in_count = calloc(n + 1, sizeof *jm->in_count);
    jm->in_published = calloc(n + 1, sizeof *jm->in_published);
    if (!jm->records_in || !jm->lag || !jm->in_count || !jm->in_published) {
        rn_jm_free(jm);
        return RN_ERR_NOMEM;
    }
    rn_mfamily_t *in = rn_metrics_counter(m, "runnel_processor_records_in_total",
                                          "Records read from the source, per partition.",
                                          "job,topic,partition");
    rn_mfamily_t *lag = rn_metrics_gauge(
        m, "runnel_processor_consumer_lag",
        "Records between the job's position and the partition's high watermark (latest fetch).",
        "job,topic,partition");
    for (int32_t p = 0; p < npartitions; p++) {
        char part[16];
        snprintf(part, sizeof part, "%d", p);
        const char *labels[] = {job, topic, part};
        jm->records_in[p] = rn_metric_get(in, labels);
        jm->lag[p] = rn_metric_get(lag, labels);
    }
#define GAUGE(name, help) job_series(rn_metrics_gauge(m, name, help, "job"), job)
#define COUNTER(name, help) job_series(rn_metrics_counter(m, name, help, "job"), job)
#define HISTO(name, help, b, nb) job_series(rn_metrics_histogram(m, name, help, "job", b, nb), job)
    jm->watermark = GAUGE("runnel_processor_watermark_seconds",
                          "The job's event-time watermark, seconds since the epoch.");
    jm->watermark_delay = GAUGE("runnel_processor_watermark_delay_seconds",
                                "Wall-clock time minus the job's watermark.");
    jm->open_windows = GAUGE("runnel_processor_open_windows",
                             "Open windows (TUMBLE/HOP: windows, SESSION: sessions).");
    jm->state_bytes = GAUGE("runnel_processor_state_bytes",
                            "Size of the job's state as of the last checkpoint (snapshot bytes).");
    jm->late = COUNTER("runnel_processor_late_records_total",
                       "Records dropped because every window they belong to had closed.");
    jm->malformed = COUNTER("runnel_processor_malformed_records_total",
                            "Records that did not decode (bad JSON, missing or mistyped field).");
    jm->dead_letters = COUNTER("runnel_processor_dead_letters_total",
                               "Malformed and late records sent to the dead-letter topic.");
    jm->upserted = COUNTER("runnel_processor_rows_upserted_total",
                           "Rows upserted into the sink, counted when committed.");
    jm->deleted = COUNTER("runnel_processor_rows_deleted_total",
                          "Rows deleted from the sink, counted when committed.");
    jm->sink_commit = HISTO("runnel_processor_sink_commit_duration_seconds",
                            "Time of the sink's commit (transaction, or flush) per checkpoint.",
                            rn_metrics_latency_buckets, rn_metrics_latency_nbuckets);
    jm->checkpoint = HISTO("runnel_processor_checkpoint_duration_seconds",
                           "Time of a whole checkpoint (snapshot, sink commit, cleanup).",
                           rn_metrics_latency_buckets, rn_metrics_latency_nbuckets);
    jm->last_checkpoint = GAUGE("runnel_processor_last_checkpoint_timestamp_seconds",
                                "When the last checkpoint committed, seconds since the epoch.");
    jm->checkpoints = COUNTER("runnel_processor_checkpoints_total", "Checkpoints committed.");
    jm->freshness = HISTO("runnel_processor_freshness_seconds",
                          "Time from a record's broker timestamp to the commit of the sink "
                          "transaction that includes its effect.",
                          FRESHNESS_BUCKETS, sizeof FRESHNESS_BUCKETS / sizeof *FRESHNESS_BUCKETS);
#undef GAUGE
#undef COUNTER
#undef HISTO
    rn_gauge_set(jm->watermark, NAN);
    rn_gauge_set(jm->watermark_delay, NAN);
    *out = jm;
    return RN_OK;
}

void rn_jm_free(rn_jm_t *jm)
{
    if (!jm)
        return;
    free(jm->records_in);
    free(jm->lag);
    free(jm->in_count);
    free(jm->in_published);
    free(jm);
}

static int by_ts(const void *a, const void *b)
{
    int64_t x = ((const fresh_run_t *)a)->ts, y = ((const fresh_run_t *)b)->ts;
    return (x > y) - (x < y);
}

/*
 * Sorts the runs and merges those of one slot, widening the slot until half the room is free;
 * the result is the sorted prefix that later records are looked up in.
 */
static void compact(rn_jm_t *jm)
{
    qsort(jm->runs, jm->nruns, sizeof *jm->runs, by_ts);
    for (;;) {
        size_t w = 0;
        for (size_t r = 1; r < jm->nruns; r++) {
            if (slot(jm, jm->runs[r].ts) == slot(jm, jm->runs[w].ts))
                jm->runs[w].n += jm->runs[r].n; /* sorted: runs[w] keeps the oldest */
            else
                jm->runs[++w] = jm->runs[r];
        }
        jm->nruns = w + 1;
        if (jm->nruns <= RN_JM_FRESH_RUNS / 2)
            break;
        jm->shift++;
    }
    jm->nsorted = jm->nruns;
}

/* The run of the sorted prefix holding slot s, or NULL. */
static fresh_run_t *find_sorted(rn_jm_t *jm, int64_t s)
{
    size_t lo = 0, hi = jm->nsorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t ms = slot(jm, jm->runs[mid].ts);
        if (ms == s)
            return &jm->runs[mid];
        if (ms < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void add_timestamp(rn_jm_t *jm, int64_t ts)
{
    int64_t s = slot(jm, ts);
    fresh_run_t *run = jm->nruns ? &jm->runs[jm->nruns - 1] : NULL;
    if (!run || slot(jm, run->ts) != s)
        run = jm->nsorted ? find_sorted(jm, s) : NULL;
    if (run) {
        run->n++;
        if (ts < run->ts)
            run->ts = ts;
        return;
    }
    if (jm->nruns == RN_JM_FRESH_RUNS) {
        compact(jm);
        add_timestamp(jm, ts); /* the slots are wider now: it may join a run */
        return;
    }
    jm->runs[jm->nruns++] = (fresh_run_t){ts, 1};
}

void rn_jm_records(rn_jm_t *jm, const rn_src_record_t *recs, size_t n)
{
    if (!jm)
        return;
    for (size_t i = 0; i < n; i++) {
        jm->in_count[recs[i].partition]++;
        if (recs[i].timestamp > 0)
            add_timestamp(jm, recs[i].timestamp);
    }
}

/* Adds what total gained since *published to counter. */
static void advance(rn_metric_t *counter, uint64_t total, uint64_t *published)
{
    if (total > *published)
        rn_counter_add(counter, total - *published);
    *published = total;
}

void rn_jm_publish(rn_jm_t *jm, const rn_jm_status_t *st)
{
    if (!jm)
        return;
    for (int32_t p = 0; p < jm->nparts; p++)
        advance(jm->records_in[p], jm->in_count[p], &jm->in_published[p]);
    if (st->watermark_ms == RN_WM_NONE) {
        rn_gauge_set(jm->watermark, NAN);
        rn_gauge_set(jm->watermark_delay, NAN);
    } else {
        rn_gauge_set(jm->watermark, (double)st->watermark_ms / 1000.0);
        rn_gauge_set(jm->watermark_delay, (double)(st->now_ms - st->watermark_ms) / 1000.0);
    }
    rn_gauge_set(jm->open_windows, (double)st->open_windows);
    advance(jm->late, st->late, &jm->pub_late);
    advance(jm->malformed, st->malformed, &jm->pub_malformed);
    advance(jm->dead_letters, st->dead_letters, &jm->pub_dead_letters);
}

void rn_jm_set_lag(rn_jm_t *jm, int32_t partition, int64_t lag)
{
    if (jm && partition >= 0 && partition < jm->nparts)
        rn_gauge_set(jm->lag[partition], (double)(lag > 0 ? lag : 0));
}

void rn_jm_checkpoint(rn_jm_t *jm, const rn_jm_checkpoint_t *c)
{
    if (!jm)
        return;
    /* A timestamp after the commit (a producer's clock ahead of ours) counts as fresh, 0 s. */
    for (size_t i = 0; i < jm->nruns; i++) {
        int64_t age = c->commit_ms - jm->runs[i].ts;
        rn_histo_observe_n(jm->freshness, (double)(age > 0 ? age : 0) / 1000.0, jm->runs[i].n);
    }
    jm->nruns = jm->nsorted = 0;
    jm->shift = 0;
    rn_histo_observe(jm->checkpoint, c->duration_s);
    rn_histo_observe(jm->sink_commit, c->sink_commit_s);
    rn_gauge_set(jm->last_checkpoint, (double)c->commit_ms / 1000.0);
    rn_gauge_set(jm->state_bytes, (double)c->state_bytes);
    rn_counter_add(jm->checkpoints, 1);
    advance(jm->upserted, c->upserts, &jm->pub_upserts);
    advance(jm->deleted, c->deletes, &jm->pub_deletes);
}
