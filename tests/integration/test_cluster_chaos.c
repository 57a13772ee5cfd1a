/*
 * test_cluster_chaos.c - the cluster soak (`make soak`, not part of `make test`): three brokers,
 * a keyed acks=all idempotent producer on a 3-partition topic (replication factor 3,
 * min.insync.replicas 2) for SOAK_SECONDS (default 120), while one broker at a time is, at
 * random, SIGKILLed and restarted, SIGSTOPped and SIGCONTed (a stall), or stopped cleanly
 * (SIGTERM) and restarted; the controller is as likely a victim as any other broker.
 * Afterwards every acknowledged record is read back exactly once and in order per partition,
 * and the three replicas' logs are compared byte for byte. SOAK_SEED picks the schedule (it is
 * printed, so a failing run can be repeated).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cluster_check.h"
#include "cluster_fixture.h"
#include "cluster_stream.h"
#include "rawclient.h"
#include "test_client_util.h"

#define PARTS 3
#define MAX_RECORDS 2000000

static void soak(void **state)
{
    (void)state;
    const char *env = getenv("SOAK_SECONDS");
    int seconds = env ? atoi(env) : 120;
    env = getenv("SOAK_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "# soak: %d s, SOAK_SEED=%u\n", seconds, seed);
    rn_hcluster_t *c = rn_hc_start("cluster-chaos", NULL);
    rn_cc_wait_members(c, 0, 0, 20000);
    const char *cfg[] = {"min.insync.replicas=2", "segment.bytes=262144", NULL};
    rn_cc_create_topic(c, 0, "chaos", PARTS, RN_HC_N, cfg, false, 20000);
    for (uint32_t p = 0; p < PARTS; p++)
        rn_cc_wait_isr(c, 0, "chaos", p, RN_HC_N, -1, 15000);

    const char *extra[] = {"delivery.timeout.ms=600000", NULL};
    rn_cs_t *x = rn_cs_start(c, "chaos", -1, MAX_RECORDS, extra, NULL, NULL);
    int64_t end_at = rn_hc_now_ms() + (int64_t)seconds * 1000;
    int actions = 0;
    while (rn_hc_now_ms() < end_at) {
        rn_hc_sleep_ms(500 + (int)(rand_r(&seed) % 2500));
        int victim = (int)(rand_r(&seed) % RN_HC_N);
        int what = (int)(rand_r(&seed) % 3);
        int pause = 300 + (int)(rand_r(&seed) % 2700);
        static const char *names[] = {"SIGKILL + restart", "SIGSTOP/SIGCONT", "SIGTERM + restart"};
        fprintf(stderr, "# %3d: broker %d: %s (%d ms); %llu acknowledged so far\n", ++actions,
                victim + 1, names[what], pause, (unsigned long long)x->ok);
        if (what == 0)
            rn_h_broker_kill(&c->b[victim]);
        else if (what == 1)
            rn_h_broker_signal(&c->b[victim], SIGSTOP);
        else if (rn_h_broker_stop(&c->b[victim]) != 0)
            fail_msg("broker %d did not stop cleanly on SIGTERM", victim + 1);
        rn_hc_sleep_ms(pause);
        if (what == 1)
            rn_h_broker_signal(&c->b[victim], SIGCONT);
        else if (rn_rc_broker_restart(&c->b[victim]) != 0)
            fail_msg("broker %d did not restart", victim + 1);
        /* one broker down at a time: wait until every partition is whole again */
        for (uint32_t p = 0; p < PARTS; p++)
            rn_cc_wait_isr(c, 0, "chaos", p, RN_HC_N, -1, 60000);
    }
    rn_cs_finish(x, 120000);
    uint64_t n = x->sent_count;
    fprintf(stderr, "# %d actions; %llu records sent, %llu acknowledged, %llu not\n", actions,
            (unsigned long long)n, (unsigned long long)x->ok, (unsigned long long)x->failed);
    assert_int_equal(x->reported, n);

    tc_check_t check;
    tc_read_back(&c->b[0], "chaos", PARTS, x->sent, n, &check);
    fprintf(stderr, "# read back %llu records, %llu duplicates, %llu acknowledged but missing, "
            "%llu bad\n", (unsigned long long)check.records,
            (unsigned long long)check.duplicates, (unsigned long long)check.acked_missing,
            (unsigned long long)check.bad);
    if (check.duplicates || check.acked_missing || check.bad)
        rn_hc_dump_logs(c);
    assert_int_equal(check.duplicates, 0);
    assert_int_equal(check.acked_missing, 0);
    assert_int_equal(check.bad, 0);
    rn_cc_wait_in_sync(c, "chaos", PARTS, NULL, 60000);
    rn_cc_stop_all(c);
    rn_cc_assert_logs_equal(c, "chaos", PARTS);
    rn_cs_free(x);
    rn_hc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(soak)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
