/*
 * test_tools_bench.c - runnel-bench against a real broker: every workload finishes, and with
 * --json its last line is one JSON object with the fields scripts read. Not a performance
 * test: the figures only have to be there and be sane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test_tools_util.h"

#define BENCH "RUNNEL_BENCH_BIN"
#define PEER "RUNNEL_PEER_BENCH_BIN"
#define HICCUP "RUNNEL_HICCUP_BIN"

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

/* The number in field of the JSON object line; fails the test when it is missing. */
static double field(const char *line, const char *name)
{
    const char *v;
    size_t vl;
    rn_json_kind_t kind;
    rn_err_t err = rn_json_find_field(line, strlen(line), name, &v, &vl, &kind);
    if (err != RN_OK)
        fprintf(stderr, "no field '%s' in: %s\n", name, line);
    assert_int_equal(err, RN_OK);
    assert_int_equal(kind, RN_JSON_NUMBER);
    return strtod(v, NULL);
}

/* Checks the last line of r's stdout and returns it in buf. */
static void check_json(const tt_run_t *r, char *buf, size_t len, bool latency)
{
    if (r->status != 0)
        tt_dump("runnel-bench", r);
    assert_int_equal(r->status, 0);
    tt_last_line(r->out, buf, len);
    assert_true(buf[0] == '{' && buf[strlen(buf) - 1] == '}');
    assert_true(field(buf, "records_per_sec") > 0);
    assert_true(field(buf, "mb_per_sec") > 0);
    if (latency) {
        double p50 = field(buf, "p50_us"), p99 = field(buf, "p99_us");
        double p999 = field(buf, "p999_us"), max = field(buf, "max_us");
        assert_true(p50 > 0 && p50 <= p99 && p99 <= p999 && p999 <= max * 1.01);
    }
}

static void test_produce_json(void **state)
{
    (void)state;
    char line[1024];
    tt_run_t r = tt_run(BENCH, NULL, "produce", "-t", "bench", "--messages", "20000", "--size",
                        "100", "--acks", "1", "--json", NULL);
    check_json(&r, line, sizeof line, true);
    assert_int_equal((int)field(line, "records"), 20000);
    assert_int_equal((int)field(line, "failed"), 0);
    assert_non_null(strstr(r.out, "records/s"));
    tt_run_free(&r);

    r = tt_run(BENCH, NULL, "produce", "-t", "bench", "--messages", "300", "--size", "100",
               "--inflight", "1", "--json", NULL);
    check_json(&r, line, sizeof line, true);
    assert_int_equal((int)field(line, "records"), 300);
    tt_run_free(&r);

    /* --sync: send, flush, next (its own topic: test_consume_json counts 'bench'). */
    const char *modes[] = {"io.busy.poll.us=0", "io.busy.poll.us=100"};
    for (size_t m = 0; m < 2; m++) {
        r = tt_run(BENCH, NULL, "produce", "-t", "sync", "--messages", "300", "--sync", "-X",
                   modes[m], "--json", NULL);
        check_json(&r, line, sizeof line, true);
        assert_int_equal((int)field(line, "records"), 300);
        assert_int_equal((int)field(line, "failed"), 0);
        tt_run_free(&r);
    }

    r = tt_run(BENCH, NULL, "produce", "-t", "bench", "--messages", "5000", "--size", "1000",
               "--compression", "zstd", "--linger-ms", "1", "--batch-size", "32768", "--acks",
               "all", "--inflight", "64", "--json", NULL);
    check_json(&r, line, sizeof line, true);
    tt_run_free(&r);
}

static void test_consume_json(void **state)
{
    (void)state;
    char line[1024];
    /* After test_produce_json: 25,300 records in 'bench'. */
    tt_run_t r = tt_run(BENCH, NULL, "consume", "-t", "bench", "--json", NULL);
    check_json(&r, line, sizeof line, false);
    assert_int_equal((int)field(line, "records"), 25300);
    tt_run_free(&r);
}

static void test_latency_json(void **state)
{
    (void)state;
    char line[1024];
    tt_run_t r = tt_run(BENCH, NULL, "latency", "-t", "e2e", "--partitions", "2", "--rate", "2000",
                        "--duration", "1", "--size", "64", "--json", NULL);
    check_json(&r, line, sizeof line, true);
    assert_int_equal((int)field(line, "records"), 2000);
    assert_int_equal((int)field(line, "failed"), 0);
    assert_non_null(strstr(r.out, "end-to-end latency"));
    tt_run_free(&r);
}

/*
 * runnel-peer-bench loopback (the round-trip floor peers.sh prints): every message comes back,
 * one at a time and pipelined, blocking and polling; a bad flag is an error that says why.
 */
static void test_peer_loopback(void **state)
{
    (void)state;
    char line[1024];
    const char *modes[][4] = {{"1", "0"}, {"1", "100"}, {"64", "0"}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        tt_run_t r = tt_run(PEER, NULL, "loopback", "--messages", "3000", "--size", "100",
                            "--pipeline", modes[i][0], "--spin-us", modes[i][1], "--json", NULL);
        check_json(&r, line, sizeof line, true);
        assert_int_equal((int)field(line, "records"), 3000);
        assert_int_equal((int)field(line, "failed"), 0);
        assert_non_null(strstr(line, "\"workload\":\"loopback-echo\""));
        tt_run_free(&r);
    }
    tt_run_t r = tt_run(PEER, NULL, "loopback", "--spin-us", "-1", NULL);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, "--spin-us"));
    tt_run_free(&r);
    r = tt_run(PEER, NULL, "memcached", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "Usage"));
    tt_run_free(&r);
}

/* runnel-hiccup-bench: one line per CPU, the stream figures, and its JSON; bad flags exit 2. */
static void test_hiccup(void **state)
{
    (void)state;
    char line[1024];
    tt_run_t r = tt_run(HICCUP, NULL, "--seconds", "0.3", "--json", NULL);
    if (r.status != 0)
        tt_dump("runnel-hiccup-bench", &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "cpu 0: "));
    assert_non_null(strstr(r.out, "any CPU stalled stalls it"));
    tt_last_line(r.out, line, sizeof line);
    assert_true(field(line, "cpus") >= 1);
    double e99 = field(line, "either_p99_us"), e999 = field(line, "either_p999_us");
    double b999 = field(line, "both_p999_us");
    assert_true(e99 >= 0 && e99 <= e999 && b999 <= e999);
    /* The CPUs' gaps overlap into longer stalls in the union, never in the intersection. */
    assert_true(b999 <= field(line, "max_gap_us") + 1);
    tt_run_free(&r);
    const char *bad[][2] = {{"--seconds", "0"}, {"--seconds", "x"}, {"--rate", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = tt_run(HICCUP, NULL, bad[i][0], bad[i][1], NULL);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "runnel-hiccup-bench"));
        tt_run_free(&r);
    }
}

static void test_bad_flags(void **state)
{
    (void)state;
    static const struct {
        const char *args[6];
        const char *must_name;
    } cases[] = {
        {{"produce", "-t", "x", "--size", "abc", NULL}, "--size"},
        {{"produce", "-t", "x", "--bogus", NULL}, "--bogus"},
        {{"produce", "-t", "x", "--messages", NULL}, "--messages"},
        {{"latency", "-t", "x", "--size", "8", NULL}, "--size"},
        {{"latency", "-t", "x", "--rate", "-1", NULL}, "--rate"},
        {{"produce", "--acks", "7", "-t", "x", NULL}, "--acks"},
        {{"produce", NULL}, "-t"},
        {{"sprint", NULL}, "sprint"},
        {{"produce", "-t", "x", "--sync", "--inflight", "4"}, "--sync"},
        {{"latency", "-t", "x", "--sync", NULL}, "--sync"},
        {{"produce", "-t", "x", "--sync", "--spin-us", "5"}, "--spin-us"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *const *a = cases[c].args;
        tt_run_t r = tt_run(BENCH, NULL, a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        bool ok = r.status == 2 && strstr(r.err, cases[c].must_name);
        if (!ok) {
            fprintf(stderr, "case %zu: want exit 2 naming '%s'\n", c, cases[c].must_name);
            tt_dump(a[0], &r);
        }
        assert_true(ok);
        tt_run_free(&r);
    }
    tt_run_t r = tt_run(BENCH, NULL, "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: runnel-bench"));
    tt_run_free(&r);
    r = tt_run(BENCH, NULL, "produce", "--help", NULL);
    assert_int_equal(r.status, 0);
    tt_run_free(&r);
    r = tt_run(BENCH, NULL, "--version", NULL);
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.out, "runnel-bench ", 13);
    tt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_produce_json),
        cmocka_unit_test(test_consume_json),
        cmocka_unit_test(test_latency_json),
        cmocka_unit_test(test_peer_loopback),
        cmocka_unit_test(test_hiccup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
