/*
 * The processor's metrics (processor/jobmetrics.c through processor/runtime.c): a job over the
 * in-memory source with a manual clock that moves only when the source is polled, so the test
 * knows the commit time of every checkpoint (one per poll) and can compute what the freshness
 * histogram must hold -- every record that reached a committed checkpoint, observed at commit
 * time minus its broker timestamp, and nothing else -- then checks the rendered scrape for
 * it, bucket by bucket. Also: records in, lag from the full partition down to 0, rows upserted
 * equal to the sink's rows, the other series against the job's own stats, readiness, bounded
 * freshness memory under out-of-order timestamps, and `promtool check metrics` on a scrape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobmetrics.h"
#include "metrics.h"
#include "runtime.h"
#include "testutil.h"

#define PARTS 3
#define T0 1700000000000LL /* the manual clock's start */
#define STEP_MS 40         /* the clock moves this much on every poll */

#define JOB \
    "CREATE SOURCE clicks (user_id TEXT, action TEXT, value DOUBLE, timestamp TIMESTAMP)\n" \
    "  FROM TOPIC 'clickstream' FORMAT JSON WATERMARK FOR timestamp AS timestamp - INTERVAL '5' SECOND\n" \
    "  WITH ('dead.letter.topic' = 'dlq');\n" \
    "CREATE SINK suspicious_users INTO SQLITE '%s' PRIMARY KEY (window_start, user_id) AS\n" \
    "SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) AS clicks\n" \
    "FROM TUMBLE(clicks, timestamp, INTERVAL '10' SECOND) WHERE action = 'click'\n" \
    "GROUP BY window_start, window_end, user_id HAVING SUM(value) > 100;\n"

static const double BOUNDS[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120};
#define NBOUNDS (sizeof BOUNDS / sizeof BOUNDS[0])

static char *g_dir;
static char g_db[4200], g_state[4200];

/* --------------------------------------------------------------- the scrape -- */

static char *scrape(rn_metrics_t *m)
{
    rn_buf_t b = RN_BUF_INIT;
    assert_int_equal(rn_metrics_render(m, &b), RN_OK);
    assert_int_equal(rn_buf_append(&b, "", 1), RN_OK);
    return (char *)b.data;
}

/* The value of the sample "series " (name{labels}, exactly as rendered); fails when missing. */
static double sample(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return strtod(line + len + 1, NULL);
    }
    fail_msg("no sample %s in the scrape:\n%s", series, text);
    return 0;
}

static double job_sample(const char *text, const char *name)
{
    char series[256];
    snprintf(series, sizeof series, "%s{job=\"fraud\"}", name);
    return sample(text, series);
}

static double part_sample(const char *text, const char *name, int part)
{
    char series[256];
    snprintf(series, sizeof series, "%s{job=\"fraud\",topic=\"clickstream\",partition=\"%d\"}",
             name, part);
    return sample(text, series);
}

static double bucket(const char *text, double le)
{
    char series[256];
    if (isinf(le))
        snprintf(series, sizeof series,
                 "runnel_processor_freshness_seconds_bucket{job=\"fraud\",le=\"+Inf\"}");
    else
        snprintf(series, sizeof series,
                 "runnel_processor_freshness_seconds_bucket{job=\"fraud\",le=\"%g\"}", le);
    return sample(text, series);
}

/* ------------------------------------------------------- a clocked source -- */

/*
 * The in-memory source, with the clock advanced by STEP_MS on every poll. It notes, per poll,
 * the freshness each record will have if the checkpoint after that poll commits (the clock
 * does not move between a poll and its checkpoint), and samples lag and readiness.
 */
typedef struct clocked {
    rn_source_t inner;
    rn_clock_manual_t clock;
    rn_metrics_t *metrics;
    volatile int ready;
    int not_ready_polls;
    double *values;         /* per record delivered, in order */
    size_t nvalues, cap;
    size_t before_last_poll; /* nvalues before the latest poll with records */
    int64_t first_lag[PARTS];
    bool lag_seen;
} clocked_t;

static rn_err_t cl_partitions(void *ctx, const char *topic, int32_t *count, char *errbuf,
                              size_t errlen)
{
    clocked_t *c = ctx;
    return c->inner.partitions(c->inner.ctx, topic, count, errbuf, errlen);
}

static rn_err_t cl_assign(void *ctx, const char *topic, int32_t partition, int64_t offset)
{
    clocked_t *c = ctx;
    return c->inner.assign(c->inner.ctx, topic, partition, offset);
}

static rn_err_t cl_end(void *ctx, const char *topic, int32_t partition, int64_t *end)
{
    clocked_t *c = ctx;
    return c->inner.end_offset(c->inner.ctx, topic, partition, end);
}

static rn_err_t cl_hw(void *ctx, const char *topic, int32_t partition, int64_t *hw)
{
    clocked_t *c = ctx;
    return c->inner.high_watermark(c->inner.ctx, topic, partition, hw);
}

static rn_err_t cl_poll(void *ctx, int timeout_ms, size_t max, const rn_src_record_t **recs,
                        size_t *n)
{
    clocked_t *c = ctx;
    if (!c->ready)
        c->not_ready_polls++;
    if (c->metrics && !c->lag_seen) {
        char *text = scrape(c->metrics);
        for (int p = 0; p < PARTS; p++)
            c->first_lag[p] = (int64_t)part_sample(text, "runnel_processor_consumer_lag", p);
        free(text);
        c->lag_seen = true;
    }
    c->clock.now_ms += STEP_MS;
    rn_err_t err = c->inner.poll(c->inner.ctx, timeout_ms, max, recs, n);
    if (err != RN_OK || *n == 0)
        return err;
    c->before_last_poll = c->nvalues;
    if (c->nvalues + *n > c->cap) {
        c->cap = (c->nvalues + *n) * 2;
        c->values = realloc(c->values, c->cap * sizeof *c->values);
        assert_non_null(c->values);
    }
    for (size_t i = 0; i < *n; i++) {
        int64_t age = c->clock.now_ms - (*recs)[i].timestamp;
        c->values[c->nvalues++] = (double)(age > 0 ? age : 0) / 1000.0;
    }
    return RN_OK;
}

static void clocked_init(clocked_t *c, rn_memsrc_t *m, rn_metrics_t *metrics)
{
    memset(c, 0, sizeof *c);
    c->inner = rn_memsrc_source(m);
    c->metrics = metrics;
    rn_clock_manual_init(&c->clock, T0);
}

static rn_source_t clocked_source(clocked_t *c)
{
    return (rn_source_t){.partitions = cl_partitions, .assign = cl_assign, .end_offset = cl_end,
                         .poll = cl_poll, .high_watermark = cl_hw, .ctx = c};
}

/* --------------------------------------------------------------- the job -- */

typedef struct dlq {
    int sent;
} dlq_t;

static rn_err_t dead_letter(void *ctx, const char *topic, int32_t partition, int64_t offset,
                            const void *value, size_t len, const char *reason)
{
    (void)topic, (void)partition, (void)offset, (void)value, (void)len, (void)reason;
    ((dlq_t *)ctx)->sent++;
    return RN_OK;
}

static rn_plan_t *plan(void)
{
    char text[8192], err[1024];
    snprintf(text, sizeof text, JOB, g_db);
    rn_sql_src_t src = {"fraud.sql", text, strlen(text)};
    rn_plan_t *p;
    if (rn_plan_build(&src, &p, err, sizeof err) != RN_OK)
        fail_msg("%s", err);
    return p;
}

/*
 * n records over PARTS partitions: clicks and views (views are filtered out), one in 50
 * malformed, a few with a broker timestamp ahead of the clock (freshness 0), the rest 0-9 s
 * old. Returns how many each partition got.
 */
static void fill(rn_memsrc_t *m, size_t n, uint64_t *rng, int64_t per_part[PARTS])
{
    int64_t event_time = T0 - 60000;
    for (size_t i = 0; i < n; i++) {
        int part = (int)rn_t_rng_below(rng, PARTS);
        char json[256];
        event_time += (int64_t)rn_t_rng_below(rng, 30);
        if (i % 50 == 7)
            snprintf(json, sizeof json, "{\"user_id\": \"u1\", \"action\": ");
        else
            snprintf(json, sizeof json,
                     "{\"user_id\": \"u%zu\", \"action\": \"%s\", \"value\": %zu, "
                     "\"timestamp\": %lld}",
                     rn_t_rng_below(rng, 8), i % 3 ? "click" : "view", rn_t_rng_below(rng, 90),
                     (long long)event_time);
        int64_t broker_ts = i % 97 == 5 ? T0 + 600000 : T0 - (int64_t)rn_t_rng_below(rng, 9000);
        assert_int_equal(rn_memsrc_append_ts(m, part, json, strlen(json), broker_ts), RN_OK);
        per_part[part]++;
    }
}

static rn_err_t run(rn_plan_t *p, clocked_t *c, rn_metrics_t *metrics, uint64_t crash_after,
                    dlq_t *d, rn_job_stats_t *st, char *err)
{
    const char *why = NULL;
    rn_job_config_t cfg = {
        .plan = p, .state_dir = g_state, .checkpoint_interval_ms = 0, .bounded = true,
        .clock = &c->clock.clock, .source = clocked_source(c), .dead_letter = dead_letter,
        .dead_letter_ctx = d, .crash_after_records = crash_after, .metrics = metrics,
        .ready = &c->ready, .not_ready_why = &why,
    };
    rn_err_t e = rn_job_run(&cfg, st, err, 1024);
    assert_int_equal(c->ready, 0);
    assert_non_null(why);
    return e;
}

/* SUM(next_offset) and the row count of the sink. */
static void sink_counts(int64_t *committed, int64_t *rows)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT SUM(next_offset) FROM runnel_offsets),"
                                        " (SELECT COUNT(*) FROM suspicious_users)",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *committed = sqlite3_column_int64(st, 0);
    *rows = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The freshness histogram in text equals the observations values[0..n), bucket by bucket. */
static void check_freshness(const char *text, const double *values, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += values[i];
    for (size_t b = 0; b < NBOUNDS; b++) {
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += values[i] <= BOUNDS[b];
        if (bucket(text, BOUNDS[b]) != (double)want)
            fail_msg("freshness bucket le=%g holds %.0f, want %zu", BOUNDS[b],
                     bucket(text, BOUNDS[b]), want);
    }
    assert_true(bucket(text, INFINITY) == (double)n);
    assert_true(job_sample(text, "runnel_processor_freshness_seconds_count") == (double)n);
    double got = job_sample(text, "runnel_processor_freshness_seconds_sum");
    if (fabs(got - sum) > 1e-6 * (sum + 1))
        fail_msg("freshness sum %.9f, want %.9f", got, sum);
}

static void paths(void)
{
    g_dir = rn_t_tmpdir("proc-metrics");
    snprintf(g_db, sizeof g_db, "%s/out.db", g_dir);
    snprintf(g_state, sizeof g_state, "%s/state", g_dir);
}

static void cleanup(void)
{
    assert_int_equal(rn_t_rmtree(g_dir), 0);
    free(g_dir);
}

/* --------------------------------------------------------------- tests -- */

/*
 * A clean bounded run: every record reaches a committed checkpoint; the histogram holds them
 * all at commit time minus timestamp, malformed and filtered ones included. The other series
 * agree with the job's stats and the sink.
 */
static void test_clean_run(void **state)
{
    (void)state;
    paths();
    uint64_t rng = rn_t_seed("test_proc_metrics clean run");
    rn_plan_t *p = plan();
    rn_memsrc_t *m;
    assert_int_equal(rn_memsrc_new("clickstream", PARTS, &m), RN_OK);
    int64_t per_part[PARTS] = {0};
    size_t n = 3000;
    fill(m, n, &rng, per_part);
    rn_memsrc_set_batch(m, 50 + rn_t_rng_below(&rng, 100));
    rn_metrics_t *metrics = rn_metrics_new();
    clocked_t c;
    clocked_init(&c, m, metrics);
    dlq_t d = {0};
    rn_job_stats_t st;
    char err[1024];
    if (run(p, &c, metrics, 0, &d, &st, err) != RN_OK)
        fail_msg("%s", err);
    assert_int_equal(c.not_ready_polls, 0); /* ready before the first poll */
    assert_int_equal(c.nvalues, n);
    char *text = scrape(metrics);

    check_freshness(text, c.values, c.nvalues);
    int64_t committed, rows;
    sink_counts(&committed, &rows);
    assert_int_equal(committed, (int64_t)n);
    for (int part = 0; part < PARTS; part++) {
        assert_true(part_sample(text, "runnel_processor_records_in_total", part) ==
                    (double)per_part[part]);
        assert_int_equal(c.first_lag[part], per_part[part]);
        assert_true(part_sample(text, "runnel_processor_consumer_lag", part) == 0);
    }
    assert_true(rows > 5);
    assert_true(job_sample(text, "runnel_processor_rows_upserted_total") == (double)rows);
    assert_true(job_sample(text, "runnel_processor_rows_upserted_total") == (double)st.upserts);
    assert_true(job_sample(text, "runnel_processor_rows_deleted_total") == 0);
    assert_true(st.malformed > 0);
    assert_true(job_sample(text, "runnel_processor_malformed_records_total") ==
                (double)st.malformed);
    assert_true(job_sample(text, "runnel_processor_late_records_total") == (double)st.late);
    assert_true(job_sample(text, "runnel_processor_dead_letters_total") == (double)d.sent);
    assert_int_equal(d.sent, (int)(st.malformed + st.late));
    assert_true(job_sample(text, "runnel_processor_checkpoints_total") == (double)st.checkpoints);
    assert_true(job_sample(text, "runnel_processor_checkpoint_duration_seconds_count") ==
                (double)st.checkpoints);
    assert_true(job_sample(text, "runnel_processor_sink_commit_duration_seconds_count") ==
                (double)st.checkpoints);
    assert_true(job_sample(text, "runnel_processor_last_checkpoint_timestamp_seconds") ==
                (double)c.clock.now_ms / 1000.0);
    assert_true(job_sample(text, "runnel_processor_watermark_seconds") ==
                (double)st.watermark / 1000.0);
    assert_true(job_sample(text, "runnel_processor_watermark_delay_seconds") ==
                (double)(c.clock.now_ms - st.watermark) / 1000.0);
    assert_true(job_sample(text, "runnel_processor_open_windows") == 0); /* bounded: all closed */
    assert_true(job_sample(text, "runnel_processor_state_bytes") > 0);
    free(text);
    free(c.values);
    rn_metrics_free(metrics);
    rn_memsrc_free(m);
    rn_plan_free(p);
    cleanup();
}

/*
 * A run that dies mid-poll (as a SIGKILL would): the records of the last poll never reach a
 * commit and are not observed; the count equals what the sink's offsets say was committed.
 * The restart observes exactly the rest.
 */
static void test_crash_counts_only_committed(void **state)
{
    (void)state;
    paths();
    uint64_t seed = rn_t_seed("test_proc_metrics crash"), rng = seed;
    rn_plan_t *p = plan();
    rn_memsrc_t *m;
    assert_int_equal(rn_memsrc_new("clickstream", PARTS, &m), RN_OK);
    int64_t per_part[PARTS] = {0};
    size_t n = 2000;
    fill(m, n, &rng, per_part);
    rn_memsrc_set_batch(m, 64);
    rn_metrics_t *metrics = rn_metrics_new();
    clocked_t c;
    clocked_init(&c, m, metrics);
    dlq_t d = {0};
    rn_job_stats_t st;
    char err[1024];
    uint64_t crash_at = 700 + rn_t_rng_below(&rng, 600);
    assert_int_equal(run(p, &c, metrics, crash_at, &d, &st, err), RN_ERR_STATE);
    char *text = scrape(metrics);
    int64_t committed, rows;
    sink_counts(&committed, &rows);
    assert_true(committed > 0 && committed < (int64_t)crash_at);
    assert_int_equal((int64_t)c.before_last_poll, committed);
    check_freshness(text, c.values, c.before_last_poll);
    free(text);
    rn_metrics_free(metrics);

    /* The restart: its own process, so a new registry; the clock goes on. */
    metrics = rn_metrics_new();
    rn_memsrc_t *m2;
    assert_int_equal(rn_memsrc_new("clickstream", PARTS, &m2), RN_OK);
    uint64_t rng2 = seed;
    int64_t again[PARTS] = {0};
    fill(m2, n, &rng2, again); /* the same records */
    rn_memsrc_set_batch(m2, 64);
    int64_t now = c.clock.now_ms;
    free(c.values);
    clocked_init(&c, m2, metrics);
    c.clock.now_ms = now;
    if (run(p, &c, metrics, 0, &d, &st, err) != RN_OK)
        fail_msg("%s", err);
    assert_true(st.resumed_epoch > 0);
    text = scrape(metrics);
    assert_int_equal(c.nvalues, n - (size_t)committed);
    check_freshness(text, c.values, c.nvalues);
    for (int part = 0; part < PARTS; part++)
        assert_true(part_sample(text, "runnel_processor_consumer_lag", part) == 0);
    free(text);
    free(c.values);
    rn_metrics_free(metrics);
    rn_memsrc_free(m2);
    rn_memsrc_free(m);
    rn_plan_free(p);
    cleanup();
}

/*
 * Far more distinct, shuffled timestamps than the run list holds: memory stays fixed, every
 * record is observed once, and merging only ever over-reports freshness (each cumulative
 * bucket holds at most what exact observations would put there), by little on average.
 */
static void test_freshness_bounded(void **state)
{
    (void)state;
    uint64_t rng = rn_t_seed("test_proc_metrics bounded");
    rn_metrics_t *metrics = rn_metrics_new();
    rn_jm_t *jm;
    assert_int_equal(rn_jm_new(metrics, "fraud", "clickstream", 2, &jm), RN_OK);
    size_t n = 200000, batch = 1000;
    int64_t commit = T0 + 20000;
    double *exact = malloc(n * sizeof *exact);
    rn_src_record_t *recs = calloc(batch, sizeof *recs);
    size_t none = 0;
    for (size_t done = 0; done < n; done += batch) {
        for (size_t i = 0; i < batch; i++) {
            int64_t ts = T0 + (int64_t)rn_t_rng_below(&rng, 20000);
            if ((done + i) % 1000 == 3) {
                ts = 0; /* no timestamp: not observed */
                none++;
            }
            recs[i] = (rn_src_record_t){.partition = (int32_t)(i % 2), .timestamp = ts};
            exact[done + i] = ts > 0 ? (double)(commit - ts) / 1000.0 : -1;
        }
        rn_jm_records(jm, recs, batch);
    }
    rn_jm_checkpoint(jm, &(rn_jm_checkpoint_t){.commit_ms = commit});
    char *text = scrape(metrics);
    double count = job_sample(text, "runnel_processor_freshness_seconds_count");
    assert_true(count == (double)(n - none));
    double want_sum = 0;
    for (size_t i = 0; i < n; i++)
        want_sum += exact[i] >= 0 ? exact[i] : 0;
    double sum = job_sample(text, "runnel_processor_freshness_seconds_sum");
    assert_true(sum >= want_sum - 1e-6 * want_sum);
    print_message("merged runs over-report freshness by %.4f s on average\n",
                  (sum - want_sum) / count);
    if ((sum - want_sum) / count > 0.1)
        fail_msg("merged runs over-report by %.3f s on average", (sum - want_sum) / count);
    for (size_t b = 0; b < NBOUNDS; b++) {
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += exact[i] >= 0 && exact[i] <= BOUNDS[b];
        assert_true(bucket(text, BOUNDS[b]) <= (double)want);
    }
    assert_true(part_sample(text, "runnel_processor_records_in_total", 0) == 0); /* unpublished */
    rn_jm_publish(jm, &(rn_jm_status_t){.now_ms = commit, .watermark_ms = INT64_MIN});
    free(text);
    text = scrape(metrics);
    assert_true(part_sample(text, "runnel_processor_records_in_total", 0) == (double)n / 2);
    assert_non_null(strstr(text, "runnel_processor_watermark_seconds{job=\"fraud\"} NaN"));
    /* the next checkpoint starts from nothing */
    rn_jm_checkpoint(jm, &(rn_jm_checkpoint_t){.commit_ms = commit + 1000});
    free(text);
    text = scrape(metrics);
    assert_true(job_sample(text, "runnel_processor_freshness_seconds_count") == count);
    free(text);
    free(exact);
    free(recs);
    rn_jm_free(jm);
    rn_metrics_free(metrics);
}

/* A whole scrape of a job that ran passes promtool's checks (format and naming lint). */
static void test_promtool(void **state)
{
    (void)state;
    const char *promtool = "/usr/bin/promtool";
    if (access(promtool, X_OK) != 0) {
        print_message("%s not installed (Debian package prometheus); skipped\n", promtool);
        skip();
    }
    paths();
    uint64_t rng = rn_t_seed("test_proc_metrics promtool");
    rn_plan_t *p = plan();
    rn_memsrc_t *m;
    assert_int_equal(rn_memsrc_new("clickstream", PARTS, &m), RN_OK);
    int64_t per_part[PARTS] = {0};
    fill(m, 500, &rng, per_part);
    rn_metrics_t *metrics = rn_metrics_new();
    clocked_t c;
    clocked_init(&c, m, metrics);
    dlq_t d = {0};
    rn_job_stats_t st;
    char err[1024];
    if (run(p, &c, metrics, 0, &d, &st, err) != RN_OK)
        fail_msg("%s", err);
    char *text = scrape(metrics);
    char path[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/scrape.txt", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s check metrics < '%s' > '%s.out' 2>&1", promtool, path, path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s.out' >&2", path);
        if (system(cmd) != 0)
            print_message("(no promtool output)\n");
        fail_msg("promtool check metrics exited %d on:\n%s", rc, text);
    }
    free(text);
    free(c.values);
    rn_metrics_free(metrics);
    rn_memsrc_free(m);
    rn_plan_free(p);
    cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run),
        cmocka_unit_test(test_crash_counts_only_committed),
        cmocka_unit_test(test_freshness_bounded),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
