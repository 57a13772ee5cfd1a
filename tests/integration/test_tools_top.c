/*
 * test_tools_top.c - `runnel top` against a real broker and a stand-in processor (an HTTP
 * server exposing runnel_processor_* series from a registry this test controls), and the
 * Prometheus text reader it is built on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "metrics.h"
#include "promscrape.h"
#include "test_tools_util.h"

#define CLI "RUNNEL_CLI_BIN"

static rn_hbroker_t broker;

static int group_setup(void **state)
{
    (void)state;
    return tt_broker_start(&broker);
}

static int group_teardown(void **state)
{
    (void)state;
    int status = tt_broker_stop(&broker);
    tt_cleanup();
    return status == 0 ? 0 : -1;
}

static void test_parse_and_quantile(void **state)
{
    (void)state;
    const char *text =
        "# HELP x_seconds A histogram.\n# TYPE x_seconds histogram\n"
        "x_seconds_bucket{job=\"a\",le=\"0.1\"} 50\n"
        "x_seconds_bucket{job=\"a\",le=\"1\"} 90\n"
        "x_seconds_bucket{job=\"a\",le=\"+Inf\"} 100\n"
        "x_seconds_sum{job=\"a\"} 42.5\nx_seconds_count{job=\"a\"} 100\n"
        "lag{job=\"a\",partition=\"0\"} 3\nlag{job=\"a\",partition=\"1\"} 4\nup 1\n";
    prom_scrape_t s;
    assert_true(prom_parse(text, &s));
    assert_int_equal(s.n, 8);
    size_t n;
    assert_true(prom_sum(&s, "lag", NULL, &n) == 7 && n == 2);
    assert_true(prom_sum(&s, "up", NULL, NULL) == 1);
    char v[32];
    assert_true(prom_label(s.samples[5].labels, "partition", v, sizeof v));
    assert_string_equal(v, "0");
    assert_false(prom_label(s.samples[5].labels, "topic", v, sizeof v));
    assert_true(prom_quantile(&s, NULL, "x_seconds", NULL, 0.5) == 0.1);
    assert_true(prom_quantile(&s, NULL, "x_seconds", NULL, 0.9) == 1);
    /* Beyond the last finite bound: that bound, as histogram_quantile does. */
    assert_true(prom_quantile(&s, NULL, "x_seconds", NULL, 0.99) == 1);
    /* Between two scrapes: only what happened in between. */
    prom_scrape_t prev;
    assert_true(prom_parse("x_seconds_bucket{le=\"0.1\"} 50\nx_seconds_bucket{le=\"1\"} 50\n"
                           "x_seconds_bucket{le=\"+Inf\"} 50\n", &prev));
    assert_true(prom_quantile(&s, &prev, "x_seconds", NULL, 0.5) == 1);
    assert_true(isnan(prom_quantile(&prev, &prev, "x_seconds", NULL, 0.5)));
    prom_free(&s);
    prom_free(&prev);
}

static void test_top_plain_output(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "topic", "create", "toptest", "--partitions", "2", NULL);
    assert_int_equal(r.status, 0);
    tt_run_free(&r);
    FILE *f = fopen(tt_path("lines.txt"), "w");
    for (int i = 0; i < 500; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    r = tt_run(CLI, tt_path("lines.txt"), "produce", "-t", "toptest", "-p", "1", NULL);
    assert_int_equal(r.status, 0);
    tt_run_free(&r);

    /* A stand-in processor: the series runnel top reads. */
    rn_metrics_t *m = rn_metrics_new();
    const char *jl[] = {"fraud"};
    const char *lp[] = {"fraud", "toptest", "0"};
    rn_counter_add(rn_metric_get(rn_metrics_counter(m, "runnel_processor_checkpoints_total", "",
                                                    "job"), jl), 3);
    rn_counter_add(rn_metric_get(rn_metrics_counter(m, "runnel_processor_records_in_total", "",
                                                    "job,topic,partition"), lp), 1234);
    rn_gauge_set(rn_metric_get(rn_metrics_gauge(m, "runnel_processor_consumer_lag", "",
                                                "job,topic,partition"), lp), 17);
    rn_gauge_set(rn_metric_get(rn_metrics_gauge(m, "runnel_processor_watermark_delay_seconds",
                                                "", "job"), jl), 2.5);
    const double b[] = {0.1, 0.5, 1, 2};
    rn_metric_t *fresh = rn_metric_get(rn_metrics_histogram(m, "runnel_processor_freshness_seconds",
                                                            "", "job", b, 4), jl);
    rn_histo_observe_n(fresh, 0.3, 990);
    rn_histo_observe_n(fresh, 1.5, 10);
    rn_http_std_t std = {m, NULL, NULL};
    rn_httpd_t *h;
    char err[256];
    assert_int_equal(rn_httpd_start_thread("127.0.0.1:0", rn_http_std_handler, &std, &h, err,
                                           sizeof err), RN_OK);
    r = tt_run(CLI, NULL, "top", "-t", "toptest", "-n", "1", "--partitions", "--processor",
               rn_httpd_address(h), "--processor", "127.0.0.1:1", NULL);
    rn_httpd_stop(h);
    rn_metrics_free(m);
    if (r.status != 0)
        tt_dump("runnel top", &r);
    assert_int_equal(r.status, 0);
    /* Plain text (stdout is a file): no escape sequences; offsets, and the processor's row. */
    assert_null(strchr(r.out, '\033'));
    assert_non_null(strstr(r.out, "toptest"));
    assert_non_null(strstr(r.out, "            500"));
    assert_non_null(strstr(r.out, "fraud"));
    assert_non_null(strstr(r.out, "           17 "));   /* lag */
    assert_non_null(strstr(r.out, "2.50 s"));            /* watermark delay */
    assert_non_null(strstr(r.out, "500 ms"));            /* freshness p99: the 0.5 s bucket */
    assert_non_null(strstr(r.out, "127.0.0.1:1            unreachable"));
    tt_run_free(&r);
}

static void test_top_errors(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "top", "-t", "no-such-topic", "-n", "1", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no-such-topic"));
    tt_run_free(&r);
    r = tt_run(CLI, NULL, "top", "-i", "0", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "-i wants seconds"));
    tt_run_free(&r);
    r = tt_run(CLI, NULL, "top", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: runnel top"));
    tt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_quantile),
        cmocka_unit_test(test_top_plain_output),
        cmocka_unit_test(test_top_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
