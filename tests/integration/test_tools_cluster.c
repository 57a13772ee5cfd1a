/*
 * test_tools_cluster.c - the `runnel` commands about replication against one real broker:
 * `topic describe` prints Leader/Replicas/Isr per partition (and no Offline: while every
 * replica is registered), `cluster status` prints the under-replicated and offline counts,
 * and `cluster rebalance-leaders` has --help, refuses bad flags, and on a single node answers
 * "election not needed" for every partition with exit status 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_tools_util.h"

#define CLI "RUNNEL_CLI_BIN"

static rn_hbroker_t broker;

static int group_setup(void **state)
{
    (void)state;
    if (tt_broker_start(&broker) != 0)
        return -1;
    tt_run_t r = tt_run(CLI, NULL, "topic", "create", "repl", "--partitions", "3", NULL);
    int status = r.status;
    if (status != 0)
        tt_dump("topic create", &r);
    tt_run_free(&r);
    return status == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int status = tt_broker_stop(&broker);
    tt_cleanup();
    return status == 0 ? 0 : -1;
}

static void test_describe_format(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "topic", "describe", "repl", NULL);
    EXPECT_STATUS(r, 0, "topic describe");
    assert_int_equal(tt_count_lines(r.out), 4);
    assert_non_null(strstr(r.out, "Topic: repl\tPartitionCount: 3\tReplicationFactor: 1\t"));
    for (int p = 0; p < 3; p++) {
        char want[128];
        snprintf(want, sizeof want,
                 "\tTopic: repl\tPartition: %d\tLeader: 1\tReplicas: 1\tIsr: 1\tLogStartOffset: ",
                 p);
        if (!strstr(r.out, want))
            fail_msg("no line \"%s\" in:\n%s", want, r.out);
    }
    assert_null(strstr(r.out, "Offline:"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "topic", "describe", "--help", NULL);
    EXPECT_STATUS(r, 0, "topic describe --help");
    assert_non_null(strstr(r.out, "Offline: 2"));
    tt_run_free(&r);
}

static void test_status_counts(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "cluster", "status", NULL);
    EXPECT_STATUS(r, 0, "cluster status");
    if (!strstr(r.out, "partitions:  0 under-replicated, 0 offline\n"))
        fail_msg("cluster status output:\n%s", r.out);
    tt_run_free(&r);
}

/* One command line, its exit status, and a text its stdout (or stderr) must hold. */
typedef struct cli_case {
    const char *args[4];          /* NULL-terminated when shorter */
    int status;
    bool in_err;
    const char *needle;
} cli_case_t;

static void test_rebalance_help_and_flags(void **state)
{
    (void)state;
    static const cli_case_t cases[] = {
        {{"cluster", "rebalance-leaders", "--help"}, 0, false,
         "Usage: runnel cluster rebalance-leaders [--topic T]"},
        {{"cluster", "rebalance-leaders", "-h"}, 0, false, "election not needed"},
        {{"cluster", "--help"}, 0, false, "rebalance-leaders"},
        {{"cluster", "rebalance-leaders", "--bogus"}, 2, true, "--bogus"},
        {{"cluster", "rebalance-leaders", "extra"}, 2, true, "unexpected argument 'extra'"},
        {{"cluster", "rebalance-leaders", "--topic"}, 2, true, "--topic"},
        {{"cluster", "status", "--topic", "repl"}, 2, true, "rebalance-leaders"},
        {{"cluster", "elect"}, 2, true, "rebalance-leaders"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cli_case_t *k = &cases[i];
        tt_run_t r = tt_run(CLI, NULL, k->args[0], k->args[1], k->args[2], k->args[3], NULL);
        const char *text = k->in_err ? r.err : r.out;
        if (r.status != k->status || !strstr(text, k->needle)) {
            tt_dump(k->args[2] ? k->args[2] : k->args[1], &r);
            fail_msg("case %zu: status %d (want %d), wanted \"%s\" in %s", i, r.status,
                     k->status, k->needle, k->in_err ? "stderr" : "stdout");
        }
        tt_run_free(&r);
    }
}

/* A broker that does not serve ElectLeaders yet answers UNSUPPORTED_VERSION: skip then. */
static bool elect_served(const tt_run_t *r)
{
    if (r->status == 1 && strstr(r->err, "older than this runnel")) {
        fprintf(stderr, "the broker does not serve ElectLeaders; rebalance-leaders not checked\n");
        return false;
    }
    return true;
}

static void test_rebalance_single_node(void **state)
{
    (void)state;
    tt_run_t r = tt_run(CLI, NULL, "cluster", "rebalance-leaders", "--topic", "repl", NULL);
    if (!elect_served(&r)) {
        tt_run_free(&r);
        skip();
    }
    EXPECT_STATUS(r, 0, "rebalance-leaders --topic repl");
    assert_string_equal(r.out, "Topic: repl\tPartition: 0\telection not needed (leader 1)\n"
                               "Topic: repl\tPartition: 1\telection not needed (leader 1)\n"
                               "Topic: repl\tPartition: 2\telection not needed (leader 1)\n");
    tt_run_free(&r);

    /* Every topic: each line says the same. */
    r = tt_run(CLI, NULL, "cluster", "rebalance-leaders", NULL);
    EXPECT_STATUS(r, 0, "rebalance-leaders");
    size_t lines = tt_count_lines(r.out), hits = 0;
    for (const char *p = r.out; (p = strstr(p, "\telection not needed (leader 1)\n")); p++)
        hits++;
    if (lines < 3 || hits != lines)
        fail_msg("a line without \"election not needed\" in:\n%s", r.out);
    tt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_format),
        cmocka_unit_test(test_status_counts),
        cmocka_unit_test(test_rebalance_help_and_flags),
        cmocka_unit_test(test_rebalance_single_node),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
