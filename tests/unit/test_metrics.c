/*
 * common/metrics.c: the registry renders the Prometheus text format (0.0.4) exactly: HELP and
 * TYPE lines, label values escaped, counters and gauges, histograms with cumulative buckets,
 * +Inf, _sum and _count, the shortest float spelling; series are created once and removed;
 * collect callbacks run at render; bad names are refused; and promtool accepts the output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"

/* The whole render as a NUL-terminated string (free it). */
static char *render(rn_metrics_t *m)
{
    rn_buf_t b = RN_BUF_INIT;
    assert_int_equal(rn_metrics_render(m, &b), RN_OK);
    rn_buf_append(&b, "", 1);
    return (char *)b.data;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("expected\n%s\nin the render:\n%s", line, text);
}

static void test_counter_and_gauge(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    rn_mfamily_t *req = rn_metrics_counter(m, "app_requests_total", "Requests, by API.", "api");
    rn_metric_t *produce = rn_metric_get(req, (const char *[]){"produce"});
    rn_metric_t *fetch = rn_metric_get(req, (const char *[]){"fetch"});
    /* The same labels give the same series. */
    assert_ptr_equal(rn_metric_get(req, (const char *[]){"produce"}), produce);
    rn_counter_add(produce, 3);
    rn_counter_add(produce, 4);
    rn_counter_add(fetch, 1);
    rn_counter_add(NULL, 5); /* ignored */
    rn_metric_t *temp = rn_metric_get(rn_metrics_gauge(m, "app_temperature", "Degrees.", NULL),
                                      NULL);
    rn_gauge_set(temp, 21.5);
    rn_gauge_add(temp, -1.25);
    rn_metric_t *big = rn_metric_get(rn_metrics_gauge(m, "app_bytes", "Bytes.", NULL), NULL);
    rn_gauge_set(big, 1099511627776.0);
    assert_true(rn_metric_value(produce) == 7);
    assert_true(rn_metric_value(temp) == 20.25);

    char *text = render(m);
    assert_string_equal(text,
                        "# HELP app_requests_total Requests, by API.\n"
                        "# TYPE app_requests_total counter\n"
                        "app_requests_total{api=\"produce\"} 7\n"
                        "app_requests_total{api=\"fetch\"} 1\n"
                        "# HELP app_temperature Degrees.\n"
                        "# TYPE app_temperature gauge\n"
                        "app_temperature 20.25\n"
                        "# HELP app_bytes Bytes.\n"
                        "# TYPE app_bytes gauge\n"
                        "app_bytes 1099511627776\n");
    free(text);

    /* A removed series is no longer rendered; its family still is. */
    rn_metric_remove(req, fetch);
    text = render(m);
    assert_null(strstr(text, "api=\"fetch\""));
    assert_has(text, "# TYPE app_requests_total counter\napp_requests_total{api=\"produce\"} 7\n");
    free(text);
    rn_metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    rn_mfamily_t *f = rn_metrics_counter(m, "app_events_total", "Events.", "topic,partition");
    rn_counter_add(rn_metric_get(f, (const char *[]){"a\"b\\c\nd", "0"}), 1);
    rn_counter_add(rn_metric_get(f, (const char *[]){"", "1"}), 2);
    rn_counter_add(rn_metric_get(f, (const char *[]){"ünïcode", "2"}), 3);
    char *text = render(m);
    assert_has(text, "app_events_total{topic=\"a\\\"b\\\\c\\nd\",partition=\"0\"} 1\n");
    assert_has(text, "app_events_total{topic=\"\",partition=\"1\"} 2\n");
    assert_has(text, "app_events_total{topic=\"ünïcode\",partition=\"2\"} 3\n");
    free(text);
    rn_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    const double bounds[] = {0.001, 0.0025, 0.1, 1};
    rn_mfamily_t *f = rn_metrics_histogram(m, "app_latency_seconds", "Latency.", "api", bounds, 4);
    rn_metric_t *h = rn_metric_get(f, (const char *[]){"produce"});
    rn_histo_observe(h, 0.0005);  /* le 0.001 */
    rn_histo_observe(h, 0.001);   /* le 0.001: the bound is inclusive */
    rn_histo_observe(h, 0.002);   /* le 0.0025 */
    rn_histo_observe(h, 0.5);     /* le 1 */
    rn_histo_observe_n(h, 7, 2);  /* +Inf only */
    rn_metric_t *plain = rn_metric_get(
        rn_metrics_histogram(m, "app_sync_seconds", "Syncs.", NULL, bounds, 4), NULL);
    rn_histo_observe(plain, 0.05);
    assert_int_equal(rn_histo_count(h), 6);
    assert_true(fabs(rn_histo_sum(h) - 14.5035) < 1e-9);

    char *text = render(m);
    assert_has(text, "# HELP app_latency_seconds Latency.\n# TYPE app_latency_seconds histogram\n"
                     "app_latency_seconds_bucket{api=\"produce\",le=\"0.001\"} 2\n"
                     "app_latency_seconds_bucket{api=\"produce\",le=\"0.0025\"} 3\n"
                     "app_latency_seconds_bucket{api=\"produce\",le=\"0.1\"} 3\n"
                     "app_latency_seconds_bucket{api=\"produce\",le=\"1\"} 4\n"
                     "app_latency_seconds_bucket{api=\"produce\",le=\"+Inf\"} 6\n"
                     "app_latency_seconds_sum{api=\"produce\"} 14.5035\n"
                     "app_latency_seconds_count{api=\"produce\"} 6\n");
    assert_has(text, "app_sync_seconds_bucket{le=\"0.0025\"} 0\n"
                     "app_sync_seconds_bucket{le=\"0.1\"} 1\n"
                     "app_sync_seconds_bucket{le=\"1\"} 1\n"
                     "app_sync_seconds_bucket{le=\"+Inf\"} 1\n"
                     "app_sync_seconds_sum 0.05\n"
                     "app_sync_seconds_count 1\n");
    free(text);

    /* The standard latency buckets print as written (a query may select le="0.0025"). */
    rn_metric_t *lat = rn_metric_get(
        rn_metrics_histogram(m, "app_request_seconds", "Requests.", NULL,
                             rn_metrics_latency_buckets, rn_metrics_latency_nbuckets), NULL);
    rn_histo_observe(lat, 0.003);
    text = render(m);
    assert_has(text, "app_request_seconds_bucket{le=\"2.5e-05\"} 0\n");
    assert_has(text, "app_request_seconds_bucket{le=\"0.0025\"} 0\n"
                     "app_request_seconds_bucket{le=\"0.005\"} 1\n");
    free(text);
    rn_metrics_free(m);
}

struct collect_ctx {
    rn_metric_t *gauge;
    rn_mfamily_t *family;
    int calls;
};

static void collect(void *arg)
{
    struct collect_ctx *c = arg;
    c->calls++;
    rn_gauge_set(c->gauge, c->calls * 10);
    /* A collector may create series (a partition seen for the first time). */
    rn_gauge_set(rn_metric_get(c->family, (const char *[]){"p0"}), c->calls);
}

static void test_collect_runs_at_render(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    struct collect_ctx c = {0};
    c.gauge = rn_metric_get(rn_metrics_gauge(m, "app_partitions", "Partitions.", NULL), NULL);
    c.family = rn_metrics_gauge(m, "app_end_offset", "End offset.", "partition");
    assert_int_equal(rn_metrics_on_collect(m, collect, &c), RN_OK);
    char *text = render(m);
    assert_has(text, "app_partitions 10\n");
    assert_has(text, "app_end_offset{partition=\"p0\"} 1\n");
    free(text);
    text = render(m);
    assert_has(text, "app_partitions 20\n");
    assert_has(text, "app_end_offset{partition=\"p0\"} 2\n");
    free(text);
    assert_int_equal(c.calls, 2);
    rn_metrics_free(m);
}

static void test_registration_rules(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    rn_mfamily_t *a = rn_metrics_counter(m, "app_x_total", "X.", "topic");
    assert_non_null(a);
    /* The same name, type and labels: the same family; anything else: refused. */
    assert_ptr_equal(rn_metrics_counter(m, "app_x_total", "X.", "topic"), a);
    assert_null(rn_metrics_gauge(m, "app_x_total", "X.", "topic"));
    assert_null(rn_metrics_counter(m, "app_x_total", "X.", "topic,partition"));
    assert_null(rn_metrics_counter(m, "9starts_with_digit", "Bad.", NULL));
    assert_null(rn_metrics_counter(m, "has-dash", "Bad.", NULL));
    assert_null(rn_metrics_counter(m, "app_y_total", "Bad label.", "le-bad"));
    assert_null(rn_metrics_counter(m, "app_z_total", "Colon in a label.", "a:b"));
    assert_non_null(rn_metrics_counter(m, "app:colon_total", "Colons are fine in names.", NULL));
    const double down[] = {1, 0.5};
    assert_null(rn_metrics_histogram(m, "app_h", "Bounds must increase.", NULL, down, 2));
    rn_metrics_free(m);
}

/* Updates from several threads while another renders: nothing is lost. */
struct hammer {
    rn_metric_t *counter, *histo;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 100000; i++) {
        rn_counter_add(h->counter, 1);
        rn_histo_observe(h->histo, 0.001);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    struct hammer h = {
        rn_metric_get(rn_metrics_counter(m, "app_ops_total", "Ops.", NULL), NULL),
        rn_metric_get(rn_metrics_histogram(m, "app_op_seconds", "Op time.", NULL,
                                           rn_metrics_latency_buckets,
                                           rn_metrics_latency_nbuckets),
                      NULL),
    };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &h), 0);
    for (int i = 0; i < 20; i++)
        free(render(m));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(rn_metric_value(h.counter) == 400000);
    assert_int_equal(rn_histo_count(h.histo), 400000);
    char *text = render(m);
    assert_has(text, "app_ops_total 400000\n");
    assert_has(text, "app_op_seconds_count 400000\n");
    free(text);
    rn_metrics_free(m);
}

/* promtool check metrics on a render with every kind of series: exit 0 (no lint finding). */
static void test_promtool_accepts(void **state)
{
    (void)state;
    const char *bin = getenv("RUNNEL_PROMTOOL");
    if (!bin)
        bin = "/usr/bin/promtool";
    if (access(bin, X_OK) != 0)
        fail_msg("promtool not found at %s: install the Debian package 'prometheus' "
                 "(scripts/install-deps.sh) or set RUNNEL_PROMTOOL", bin);
    rn_metrics_t *m = rn_metrics_new();
    rn_counter_add(rn_metric_get(rn_metrics_counter(m, "app_requests_total", "Requests.",
                                                    "api,error"),
                                 (const char *[]){"produce", "quote\" backslash\\ nl\n"}),
                   3);
    rn_gauge_set(rn_metric_get(rn_metrics_gauge(m, "app_lag", "Lag.", "topic,partition"),
                               (const char *[]){"t", "0"}),
                 -2.5);
    rn_gauge_set(rn_metric_get(rn_metrics_gauge(m, "app_nan", "Not a number.", NULL), NULL), NAN);
    rn_metric_t *h = rn_metric_get(
        rn_metrics_histogram(m, "app_duration_seconds", "Durations.", "api",
                             rn_metrics_latency_buckets, rn_metrics_latency_nbuckets),
        (const char *[]){"fetch"});
    for (int i = 0; i < 100; i++)
        rn_histo_observe(h, i * 0.001);
    rn_metrics_gauge(m, "app_empty", "A family without series.", "x");
    char *text = render(m);
    rn_metrics_free(m);

    const char *tmpdir = getenv("TMPDIR");
    char tpl[512];
    snprintf(tpl, sizeof tpl, "%s/rn-metrics-XXXXXX", tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(tpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    lseek(fd, 0, SEEK_SET);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 0);
        execl(bin, bin, "check", "metrics", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    close(fd);
    unlink(tpl);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("promtool check metrics exited %d on:\n%s", WEXITSTATUS(status), text);
    free(text);
}

/* Many series: lookups find the same series, removal unlinks exactly one, render order is
 * creation order (regression: a linear lookup made 60k series take minutes). */
static void test_many_series(void **state)
{
    (void)state;
    rn_metrics_t *m = rn_metrics_new();
    rn_mfamily_t *f = rn_metrics_gauge(m, "many", "Many.", "topic,partition");
    enum { N = 100000 };
    rn_metric_t **s = calloc(N, sizeof *s);
    for (int i = 0; i < N; i++) {
        char t[16], p[16];
        snprintf(t, sizeof t, "t%d", i / 100);
        snprintf(p, sizeof p, "%d", i % 100);
        const char *lv[] = {t, p};
        s[i] = rn_metric_get(f, lv);
        assert_non_null(s[i]);
        rn_gauge_set(s[i], i);
    }
    for (int i = 0; i < N; i += 7) {
        char t[16], p[16];
        snprintf(t, sizeof t, "t%d", i / 100);
        snprintf(p, sizeof p, "%d", i % 100);
        const char *lv[] = {t, p};
        assert_ptr_equal(rn_metric_get(f, lv), s[i]);
    }
    for (int i = 0; i < N; i += 2)
        rn_metric_remove(f, s[i]);
    rn_buf_t out = RN_BUF_INIT;
    assert_int_equal(rn_metrics_render(m, &out), RN_OK);
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    assert_int_equal(lines, 2 + N / 2);
    assert_non_null(strstr((char *)out.data, "many{topic=\"t0\",partition=\"1\"} 1\nmany{topic=\"t0\",partition=\"3\"} 3\n"));
    assert_null(strstr((char *)out.data, "partition=\"2\"} 2\n"));
    /* A removed series can be created again, from zero. */
    const char *lv[] = {"t0", "0"};
    rn_metric_t *again = rn_metric_get(f, lv);
    assert_non_null(again);
    assert_true(rn_metric_value(again) == 0);
    rn_buf_free(&out);
    free(s);
    rn_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_collect_runs_at_render),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_promtool_accepts),
        cmocka_unit_test(test_many_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
