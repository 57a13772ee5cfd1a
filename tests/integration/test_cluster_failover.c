/*
 * test_cluster_failover.c - leader failover under an acks=all producer, and min.insync.replicas
 * (docs/cluster.md §5.3, §8, §10.3), on three real brokers:
 *   - an idempotent acks=all librunnel producer streams into an RF 3 topic with
 *     min.insync.replicas=2 while the partition leader is SIGKILLed and restarted, five times
 *     (the leader found through Metadata each cycle; the next kill only once the ISR is whole
 *     again). Every record is acknowledged; read back, each is there exactly once, in send
 *     order, at the acknowledged offset; after a clean stop the three replicas' segment files are
 *     byte-identical. Printed: the time from each SIGKILL to the first acknowledgement of a
 *     record sent after it (necessarily by the new leader) and their median (target <= 3 s).
 *   - min.insync.replicas: with the ISR below it (a follower SIGSTOPped and fenced, topic
 *     min.insync.replicas=3) acks=all is refused with NOT_ENOUGH_REPLICAS and acks=1 appends;
 *     after SIGCONT the ISR is whole and acks=all works. With both followers of a
 *     min.insync.replicas=2 topic SIGSTOPped, acks=all is never acknowledged and acks=1 is.
 *     (The second follower cannot be fenced: all three brokers are the controller's voters, so
 *     with two stopped there is no quorum to commit the fence, and the leader keeps waiting for
 *     the committed ISR - Kafka's rule; the test asserts only that nothing is acknowledged.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_check.h"
#include "cluster_fixture.h"
#include "cluster_stream.h"
#include "rawclient.h"
#include "test_client_util.h"

#define MAX_RECORDS 400000
#define CYCLES 5

/* The failover clock: acknowledgements of records >= watch_from count for cycle `cycle`. */
typedef struct clock {
    _Atomic int cycle;
    _Atomic uint64_t watch_from;
    _Atomic int64_t first_ok_ms[CYCLES];
} fclock_t;

static void on_ok(void *ctx, uint64_t i)
{
    fclock_t *k = ctx;
    int cyc = k->cycle;
    if (cyc >= 0 && i >= k->watch_from) {
        int64_t zero = 0;
        atomic_compare_exchange_strong(&k->first_ok_ms[cyc], &zero, rn_hc_now_ms());
    }
}

static void wait_acks(rn_hcluster_t *c, rn_cs_t *x, uint64_t want, const char *when)
{
    int64_t deadline = rn_hc_now_ms() + 30000;
    while (x->ok < want) {
        if (rn_hc_now_ms() > deadline) {
            rn_hc_dump_logs(c);
            fail_msg("%s: only %llu records acknowledged within 30 s, want %llu (%llu sent, "
                     "%llu failed)",
                     when, (unsigned long long)x->ok, (unsigned long long)want,
                     (unsigned long long)x->sent_count, (unsigned long long)x->failed);
        }
        rn_hc_sleep_ms(10);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void leader_killed_five_times(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-failover", NULL);
    rn_cc_wait_members(c, 0, 0, 20000);
    const char *cfg[] = {"min.insync.replicas=2", NULL};
    rn_cc_create_topic(c, 0, "fo", 1, RN_HC_N, cfg, false, 20000);
    rn_cc_wait_isr(c, 0, "fo", 0, RN_HC_N, -1, 15000);

    fclock_t *fc = calloc(1, sizeof *fc);
    assert_non_null(fc);
    fc->cycle = -1;
    rn_cs_t *x = rn_cs_start(c, "fo", 0, MAX_RECORDS, NULL, on_ok, fc);

    int64_t failover_ms[CYCLES];
    for (int k = 0; k < CYCLES; k++) {
        char what[64];
        snprintf(what, sizeof what, "before kill %d", k + 1);
        wait_acks(c, x, x->ok + 500, what);
        rn_cc_part_t l = rn_cc_wait_isr(c, 0, "fo", 0, RN_HC_N, -1, 30000);
        int32_t dead = l.leader;
        fc->watch_from = x->sent_count;
        fc->cycle = k;
        rn_h_broker_kill(&c->b[dead - 1]);
        int64_t killed_at = rn_hc_now_ms();

        rn_cc_part_t nl = rn_cc_wait_leader(c, 0, "fo", 0, dead, 15000);
        if (nl.leader_epoch <= l.leader_epoch)
            fail_msg("kill %d: new leader %d has epoch %u, not above the dead leader %d's %u",
                     k + 1, nl.leader, nl.leader_epoch, dead, l.leader_epoch);
        if (rn_cc_isr_has(&nl, dead))
            fail_msg("kill %d: the dead leader %d is still in the ISR of the new leader %d",
                     k + 1, dead, nl.leader);
        while (fc->first_ok_ms[k] == 0) {
            if (rn_hc_now_ms() - killed_at > 20000) {
                rn_hc_dump_logs(c);
                fail_msg("kill %d of leader %d: no acks=all acknowledgement within 20 s (new "
                         "leader %d; %llu sent, %llu acknowledged, %llu failed)",
                         k + 1, dead, nl.leader, (unsigned long long)x->sent_count,
                         (unsigned long long)x->ok, (unsigned long long)x->failed);
            }
            rn_hc_sleep_ms(5);
        }
        failover_ms[k] = fc->first_ok_ms[k] - killed_at;
        fprintf(stderr, "# kill %d: leader %d SIGKILLed; new leader %d (epoch %u); first acks=all "
                "success %lld ms after the kill\n",
                k + 1, dead, nl.leader, nl.leader_epoch, (long long)failover_ms[k]);
        fc->cycle = -1;

        if (rn_rc_broker_restart(&c->b[dead - 1]) != 0)
            fail_msg("kill %d: broker %d did not restart", k + 1, dead);
        int64_t restarted_at = rn_hc_now_ms();
        rn_cc_wait_isr(c, 0, "fo", 0, RN_HC_N, -1, 30000);
        fprintf(stderr, "# kill %d: broker %d back in the ISR %lld ms after its restart\n", k + 1,
                dead, (long long)(rn_hc_now_ms() - restarted_at));
    }
    wait_acks(c, x, x->ok + 500, "after the last restart");
    rn_cs_finish(x, 60000);

    int64_t sorted[CYCLES];
    memcpy(sorted, failover_ms, sizeof sorted);
    qsort(sorted, CYCLES, sizeof *sorted, cmp_i64);
    fprintf(stderr, "# failover (SIGKILL to first acks=all success):");
    for (int k = 0; k < CYCLES; k++)
        fprintf(stderr, " %lld", (long long)failover_ms[k]);
    fprintf(stderr, " ms; median %lld ms\n", (long long)sorted[CYCLES / 2]);
    uint64_t n = x->sent_count;
    fprintf(stderr, "# %llu records sent, %llu acknowledged, %llu failed\n",
            (unsigned long long)n, (unsigned long long)x->ok, (unsigned long long)x->failed);
    assert_int_equal(x->reported, n);
    /* every outage is far shorter than delivery.timeout.ms: nothing may fail */
    if (x->failed)
        rn_hc_dump_logs(c);
    assert_int_equal(x->failed, 0);

    tc_check_t check;
    tc_read_back(&c->b[0], "fo", 1, x->sent, n, &check);
    fprintf(stderr, "# read back %llu records, %llu duplicates, %llu acknowledged but missing, "
            "%llu bad\n",
            (unsigned long long)check.records, (unsigned long long)check.duplicates,
            (unsigned long long)check.acked_missing, (unsigned long long)check.bad);
    assert_int_equal(check.duplicates, 0);
    assert_int_equal(check.acked_missing, 0);
    assert_int_equal(check.bad, 0);
    assert_int_equal(check.records, x->ok);

    int64_t end;
    rn_cc_wait_in_sync(c, "fo", 1, &end, 30000);
    assert_int_equal(end, (int64_t)x->ok);
    rn_cc_stop_all(c);
    rn_cc_assert_logs_equal(c, "fo", 1);
    rn_cs_free(x);
    free(fc);
    rn_hc_free(c);
}

/* A broker id that is neither `a` nor `b` nor (when possible) `avoid`. */
static int32_t other_than(int32_t a, int32_t b, int32_t avoid)
{
    int32_t pick = -1;
    for (int32_t id = 1; id <= RN_HC_N; id++) {
        if (id == a || id == b)
            continue;
        if (pick < 0 || pick == avoid)
            pick = id;
    }
    return pick;
}

/*
 * Controlled shutdown: SIGTERM to a partition leader moves leadership to another ISR member
 * before the broker exits (not after broker.session.timeout.ms), and it exits 0. The session
 * timeout is long here, so only the controlled path can move the leader in time.
 */
static void leader_sigterm_hands_over(void **state)
{
    (void)state;
    const char *const extra[] = {"broker.session.timeout.ms=20000", NULL};
    rn_hcluster_t *c = rn_hc_start("cluster-sigterm", extra);
    rn_cc_wait_members(c, 0, 0, 20000);
    rn_cc_create_topic(c, 0, "ho", 1, RN_HC_N, NULL, false, 20000);
    rn_cc_part_t l = rn_cc_wait_isr(c, 0, "ho", 0, RN_HC_N, -1, 15000);
    int err = rn_cc_produce(c->b[l.leader - 1].addr, "ho", 0, -1, 10, "pre", 0, 10000, NULL);
    if (err)
        fail_msg("acks=all before the stop: error %d", err);
    int64_t t0 = rn_hc_now_ms();
    if (rn_h_broker_stop(&c->b[l.leader - 1]) != 0) {
        rn_hc_dump_logs(c);
        fail_msg("leader %d did not exit 0 on SIGTERM", l.leader);
    }
    unsigned skip = 1u << (l.leader - 1);
    rn_cc_part_t n = rn_cc_wait_leader(c, skip, "ho", 0, l.leader, 5000);
    int64_t ms = rn_hc_now_ms() - t0;
    fprintf(stderr, "# SIGTERM to leader %d: exited and broker %d leads (epoch %u) after %lld ms\n",
            l.leader, n.leader, n.leader_epoch, (long long)ms);
    if (ms > 10000)
        fail_msg("leadership moved only after %lld ms: the session timeout, not a controlled "
                 "shutdown", (long long)ms);
    int64_t off = -1;
    err = rn_cc_produce(c->b[n.leader - 1].addr, "ho", 0, 1, 5, "post", 0, 10000, &off);
    if (err)
        fail_msg("acks=1 to the new leader %d: error %d", n.leader, err);
    assert_int_equal(off, 10); /* nothing acknowledged before the stop was lost */

    /* Restarted, it rejoins; ElectLeaders (to any broker: forwarded to the controller) gives
     * it back the leadership it has as the preferred replica. */
    assert_int_equal(rn_rc_broker_restart(&c->b[l.leader - 1]), 0);
    rn_cc_wait_isr(c, 0, "ho", 0, RN_HC_N, -1, 20000);
    int32_t ask = n.leader == 1 ? 2 : 1; /* not necessarily the controller */
    rn_rc_t rc;
    assert_int_equal(rn_rc_connect(&rc, c->b[ask - 1].addr), 0);
    Runnel__ElectLeadersRequest body = RUNNEL__ELECT_LEADERS_REQUEST__INIT;
    body.preferred = true;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_ELECT_LEADERS;
    req.elect_leaders = &body;
    Runnel__Response *r = NULL;
    for (int64_t deadline = rn_hc_now_ms() + 10000;;) {
        r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_ELECT_LEADERS, 10000);
        if (r && r->error == 0 && r->body_case == RUNNEL__RESPONSE__BODY_ELECT_LEADERS)
            break;
        if (r)
            rn_rc_free(r);
        r = NULL;
        if (rn_hc_now_ms() > deadline)
            fail_msg("ElectLeaders through broker %d was not answered", ask);
        rn_hc_sleep_ms(100);
    }
    bool moved = false;
    for (size_t i = 0; i < r->elect_leaders->n_results; i++) {
        const Runnel__ElectLeadersPartitionResult *e = r->elect_leaders->results[i];
        if (strcmp(e->topic, "ho") == 0 && e->partition == 0) {
            if (e->error != 0)
                fail_msg("ElectLeaders ho-0: error %d", e->error);
            moved = e->leader == l.leader;
        }
    }
    rn_rc_free(r);
    rn_rc_close(&rc);
    assert_true(moved);
    rn_cc_part_t back = rn_cc_wait_leader(c, 0, "ho", 0, n.leader, 10000);
    assert_int_equal(back.leader, l.leader);
    assert_true(back.leader_epoch > n.leader_epoch);
    fprintf(stderr, "# rebalance: ho-0 back on its preferred replica %d (epoch %u)\n",
            back.leader, back.leader_epoch);
    rn_hc_free(c);
}

static void min_insync_replicas(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-min-isr", NULL);
    rn_cc_wait_members(c, 0, 0, 20000);
    const char *cfg3[] = {"min.insync.replicas=3", NULL};
    const char *cfg2[] = {"min.insync.replicas=2", NULL};
    rn_cc_create_topic(c, 0, "mi3", 1, RN_HC_N, cfg3, false, 20000);
    rn_cc_create_topic(c, 0, "mi2", 1, RN_HC_N, cfg2, false, 20000);
    rn_cc_part_t l = rn_cc_wait_isr(c, 0, "mi3", 0, RN_HC_N, -1, 15000);
    const char *laddr = c->b[l.leader - 1].addr;
    int err = rn_cc_produce(laddr, "mi3", 0, -1, 5, "whole", 0, 10000, NULL);
    if (err)
        fail_msg("mi3: acks=all with the whole ISR: error %d", err);

    /* ISR 2 < min.insync.replicas 3: refused before anything is appended; acks=1 appends. */
    int32_t ctl = rn_cc_controller(c, 0);
    int32_t f = other_than(l.leader, -1, ctl);
    unsigned skip = 1u << (f - 1);
    rn_h_broker_signal(&c->b[f - 1], SIGSTOP);
    rn_cc_part_t s = rn_cc_wait_isr(c, skip, "mi3", 0, RN_HC_N - 1, f, 10000);
    assert_int_equal(s.leader, l.leader);
    err = rn_cc_produce(laddr, "mi3", 0, -1, 5, "refused", 0, 5000, NULL);
    if (err != RUNNEL__ERROR_CODE__ERR_NOT_ENOUGH_REPLICAS) {
        rn_hc_dump_logs(c);
        fail_msg("mi3: acks=all with ISR 2 < min.insync.replicas 3: want NOT_ENOUGH_REPLICAS "
                 "(%d), got %d", RUNNEL__ERROR_CODE__ERR_NOT_ENOUGH_REPLICAS, err);
    }
    int64_t off = -1;
    err = rn_cc_produce(laddr, "mi3", 0, 1, 5, "one", 0, 5000, &off);
    if (err)
        fail_msg("mi3: acks=1 with ISR 2 < min.insync.replicas 3: error %d", err);
    assert_int_equal(off, 5); /* the refused batch was not appended */

    rn_h_broker_signal(&c->b[f - 1], SIGCONT);
    int64_t t0 = rn_hc_now_ms();
    rn_cc_wait_isr(c, 0, "mi3", 0, RN_HC_N, -1, 15000);
    fprintf(stderr, "# mi3: broker %d back in the ISR %lld ms after SIGCONT\n", f,
            (long long)(rn_hc_now_ms() - t0));
    err = rn_cc_produce(laddr, "mi3", 0, -1, 5, "again", 0, 10000, &off);
    if (err)
        fail_msg("mi3: acks=all after the ISR is whole again: error %d", err);
    assert_int_equal(off, 10);

    /* Both followers of mi2 stopped, the first fenced: acks=all is never acknowledged. */
    rn_cc_part_t l2 = rn_cc_wait_isr(c, 0, "mi2", 0, RN_HC_N, -1, 15000);
    const char *l2addr = c->b[l2.leader - 1].addr;
    ctl = rn_cc_controller(c, 0);
    int32_t f1 = other_than(l2.leader, -1, ctl);
    int32_t f2 = other_than(l2.leader, f1, -1);
    rn_h_broker_signal(&c->b[f1 - 1], SIGSTOP);
    rn_cc_wait_isr(c, 1u << (f1 - 1), "mi2", 0, RN_HC_N - 1, f1, 10000);
    err = rn_cc_produce(l2addr, "mi2", 0, -1, 5, "two", 0, 10000, &off);
    if (err)
        fail_msg("mi2: acks=all with ISR 2 = min.insync.replicas: error %d", err);
    rn_h_broker_signal(&c->b[f2 - 1], SIGSTOP);
    rn_hc_sleep_ms(2500); /* past broker.session.timeout.ms */
    err = rn_cc_produce(l2addr, "mi2", 0, -1, 5, "never", 0, 2000, &off);
    fprintf(stderr, "# mi2 with both followers stopped: acks=all answered %d\n", err);
    if (err == 0)
        fail_msg("mi2: acks=all acknowledged at offset %lld with both followers SIGSTOPped",
                 (long long)off);
    err = rn_cc_produce(l2addr, "mi2", 0, 1, 5, "alone", 0, 5000, &off);
    if (err)
        fail_msg("mi2: acks=1 on the leader with both followers stopped: error %d", err);

    rn_h_broker_signal(&c->b[f1 - 1], SIGCONT);
    rn_h_broker_signal(&c->b[f2 - 1], SIGCONT);
    t0 = rn_hc_now_ms();
    rn_cc_wait_members(c, 0, 0, 20000);
    rn_cc_wait_isr(c, 0, "mi2", 0, RN_HC_N, -1, 20000);
    fprintf(stderr, "# mi2: ISR whole %lld ms after SIGCONT\n", (long long)(rn_hc_now_ms() - t0));
    rn_cc_part_t l3 = rn_cc_wait_leader(c, 0, "mi2", 0, -1, 10000);
    err = rn_cc_produce(c->b[l3.leader - 1].addr, "mi2", 0, -1, 5, "back", 0, 10000, &off);
    if (err)
        fail_msg("mi2: acks=all after the ISR is whole again: error %d", err);

    rn_cc_wait_in_sync(c, "mi3", 1, NULL, 15000);
    rn_cc_wait_in_sync(c, "mi2", 1, NULL, 15000);
    rn_cc_stop_all(c);
    rn_cc_assert_logs_equal(c, "mi3", 1);
    rn_cc_assert_logs_equal(c, "mi2", 1);
    rn_hc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leader_killed_five_times),
        cmocka_unit_test(min_insync_replicas),
        cmocka_unit_test(leader_sigterm_hands_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
