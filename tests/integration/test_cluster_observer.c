/*
 * test_cluster_observer.c - a broker outside controller.quorum.voters (an observer) in a
 * cluster of three voters: it registers, takes the metadata from the voters, holds replicas
 * and leads partitions like any broker, fails over when SIGKILLed, and rejoins.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_check.h"
#include "cluster_fixture.h"
#include "rawclient.h"

#define OBS 4 /* the observer's node id */

/* The partition of t the observer leads (placement spreads leaders over the 4 brokers). */
static uint32_t led_by_observer(rn_hcluster_t *c, const char *t, uint32_t nparts)
{
    for (int64_t deadline = rn_hc_now_ms() + 10000; rn_hc_now_ms() < deadline;) {
        for (uint32_t p = 0; p < nparts; p++) {
            rn_cc_part_t x = rn_cc_part(c->b[0].addr, t, p);
            if (x.error == 0 && x.leader == OBS)
                return p;
        }
        rn_hc_sleep_ms(100);
    }
    fail_msg("no partition of %s is led by the observer %d", t, OBS);
    return 0;
}

static void observer_serves_and_fails_over(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-observer", NULL);
    rn_cc_wait_members(c, 0, 0, 20000);
    char boot[256], boot_set[300], obs_dir[700];
    rn_cc_bootstrap(c, boot, sizeof boot);
    snprintf(boot_set, sizeof boot_set, "observer.bootstrap.servers=%s", boot);
    snprintf(obs_dir, sizeof obs_dir, "%s/observer", c->dir);
    rn_hbroker_t ob = {.node_id = OBS};
    const char *settings[] = {c->quorum_flag, boot_set, NULL};
    assert_int_equal(rn_rc_broker_start(&ob, obs_dir, settings), 0);

    /* It registers and is unfenced like a voter. */
    int64_t t0 = rn_hc_now_ms();
    for (;;) {
        rn_rc_t rc;
        bool seen = false;
        if (rn_rc_connect(&rc, c->b[0].addr) == 0) {
            Runnel__DescribeClusterRequest body = RUNNEL__DESCRIBE_CLUSTER_REQUEST__INIT;
            Runnel__Request req = RUNNEL__REQUEST__INIT;
            req.body_case = RUNNEL__REQUEST__BODY_DESCRIBE_CLUSTER;
            req.describe_cluster = &body;
            Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_DESCRIBE_CLUSTER,
                                             5000);
            for (size_t i = 0; r && r->describe_cluster && i < r->describe_cluster->n_brokers;
                 i++) {
                const Runnel__BrokerStatus *b = r->describe_cluster->brokers[i];
                seen |= b->broker_id == OBS && !b->fenced;
            }
            if (r)
                rn_rc_free(r);
            rn_rc_close(&rc);
        }
        if (seen)
            break;
        if (rn_hc_now_ms() - t0 > 15000) {
            rn_h_broker_dump_log(&ob);
            fail_msg("the observer did not register and get unfenced within 15 s");
        }
        rn_hc_sleep_ms(100);
    }
    fprintf(stderr, "# observer %d registered and unfenced %lld ms after it listened\n", OBS,
            (long long)(rn_hc_now_ms() - t0));

    /* Replicas on all four brokers; the observer leads one partition and serves it. */
    rn_cc_create_topic(c, 0, "ob", 4, 4, NULL, false, 20000);
    uint32_t p = led_by_observer(c, "ob", 4);
    int64_t off = -1;
    int err = -1;
    for (int64_t deadline = rn_hc_now_ms() + 10000; rn_hc_now_ms() < deadline;) {
        err = rn_cc_produce(ob.addr, "ob", p, -1, 20, "obs", 0, 5000, &off);
        if (err == 0)
            break;
        rn_hc_sleep_ms(100);
    }
    if (err)
        fail_msg("acks=all to the observer, leader of ob-%u: error %d", p, err);
    assert_int_equal(off, 0);
    /* Its own Metadata names it leader, with the voters' view of the ISR. */
    rn_cc_part_t mine = rn_cc_part(ob.addr, "ob", p);
    assert_int_equal(mine.leader, OBS);
    assert_int_equal((int)mine.n_isr, 4);

    /* SIGKILL: its partition moves to a voter in the ISR, with nothing acknowledged lost. */
    rn_h_broker_kill(&ob);
    rn_cc_part_t nl = rn_cc_wait_leader(c, 0, "ob", p, OBS, 15000);
    fprintf(stderr, "# observer killed; ob-%u now led by %d (epoch %u)\n", p, nl.leader,
            nl.leader_epoch);
    err = rn_cc_produce(c->b[nl.leader - 1].addr, "ob", p, -1, 5, "after", 0, 10000, &off);
    if (err)
        fail_msg("acks=all to the new leader %d: error %d", nl.leader, err);
    assert_int_equal(off, 20);

    /* Restarted, it catches up and is back in the ISR. */
    assert_int_equal(rn_rc_broker_restart(&ob), 0);
    rn_cc_wait_isr(c, 0, "ob", p, 4, -1, 30000);
    for (int64_t deadline = rn_hc_now_ms() + 15000;;) {
        rn_cc_part_t o = rn_cc_part(ob.addr, "ob", p);
        if (o.log_end_offset == 25)
            break;
        if (rn_hc_now_ms() > deadline)
            fail_msg("the observer's log of ob-%u ends at %lld, want 25", p,
                     (long long)o.log_end_offset);
        rn_hc_sleep_ms(100);
    }
    assert_int_equal(rn_h_broker_stop(&ob), 0);
    rn_h_broker_release(&ob);
    rn_hc_free(c);
}

/*
 * min.insync.replicas as the issue states it: two of three brokers stopped. With one voter and
 * two observers the quorum survives that, so both stopped brokers get fenced and leave the ISR:
 * acks=all is refused with NOT_ENOUGH_REPLICAS before anything is appended, acks=1 is served,
 * and after the restarts acks=all works again.
 */
static void two_of_three_stopped(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start_observers("cluster-minisr-obs", NULL);
    rn_cc_wait_members(c, 0, 0, 20000);
    const char *cfg[] = {"min.insync.replicas=2", NULL};
    /* Three partitions: placement gives each broker the lead of one; use the voter's, so the
     * partition stays up with the two observers stopped. */
    rn_cc_create_topic(c, 0, "mi", RN_HC_N, RN_HC_N, cfg, false, 20000);
    uint32_t p = RN_HC_N;
    for (int64_t deadline = rn_hc_now_ms() + 10000; p == RN_HC_N;) {
        for (uint32_t q = 0; q < RN_HC_N; q++)
            if (rn_cc_part(c->b[0].addr, "mi", q).leader == 1)
                p = q;
        if (p == RN_HC_N && rn_hc_now_ms() > deadline)
            fail_msg("no partition of mi is led by the voter (placement spreads leaders)");
        if (p == RN_HC_N)
            rn_hc_sleep_ms(100);
    }
    rn_cc_wait_isr(c, 0, "mi", p, RN_HC_N, -1, 15000);
    int err = rn_cc_produce(c->b[0].addr, "mi", p, -1, 5, "whole", 0, 10000, NULL);
    if (err)
        fail_msg("acks=all with the whole ISR: error %d", err);

    rn_h_broker_signal(&c->b[1], SIGSTOP);
    rn_h_broker_signal(&c->b[2], SIGSTOP);
    unsigned skip = 2u | 4u;
    rn_cc_part_t s1 = rn_cc_wait_isr(c, skip, "mi", p, 1, -1, 15000);
    assert_int_equal(s1.leader, 1);
    int64_t off = -1;
    err = rn_cc_produce(c->b[0].addr, "mi", p, -1, 5, "refused", 0, 5000, &off);
    if (err != RUNNEL__ERROR_CODE__ERR_NOT_ENOUGH_REPLICAS) {
        rn_hc_dump_logs(c);
        fail_msg("acks=all with ISR 1 < min.insync.replicas 2: want NOT_ENOUGH_REPLICAS (%d), "
                 "got %d", RUNNEL__ERROR_CODE__ERR_NOT_ENOUGH_REPLICAS, err);
    }
    err = rn_cc_produce(c->b[0].addr, "mi", p, 1, 5, "one", 0, 5000, &off);
    if (err)
        fail_msg("acks=1 with two brokers stopped: error %d", err);
    assert_int_equal(off, 5); /* the refused batch was not appended */

    rn_h_broker_signal(&c->b[1], SIGCONT);
    rn_h_broker_signal(&c->b[2], SIGCONT);
    rn_cc_wait_isr(c, 0, "mi", p, RN_HC_N, -1, 20000);
    err = rn_cc_produce(c->b[0].addr, "mi", p, -1, 5, "again", 0, 10000, &off);
    if (err)
        fail_msg("acks=all once the ISR is whole again: error %d", err);
    assert_int_equal(off, 10);
    fprintf(stderr, "# two of three stopped: acks=all refused, acks=1 served, acks=all again "
            "after SIGCONT\n");
    rn_hc_free(c);
}

/* A node outside the voters without observer.bootstrap.servers is refused with a hint. */
static void observer_needs_bootstrap(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("observer-flags");
    char data[600], err[700];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    char *argv[] = {(char *)rn_h_bin("RUNNEL_BROKER_BIN"), "--node-id", "9", "--data-dir", data,
                    "--listen", "127.0.0.1:0", "--controller-quorum", "1@127.0.0.1:1", NULL};
    assert_int_equal(rn_h_run(argv, NULL, NULL, err, 20), 2);
    FILE *f = fopen(err, "r");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "observer.bootstrap.servers"));
    rn_h_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(observer_serves_and_fails_over),
        cmocka_unit_test(two_of_three_stopped),
        cmocka_unit_test(observer_needs_bootstrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
