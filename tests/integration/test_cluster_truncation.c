/*
 * test_cluster_truncation.c - what a failover may drop and what it must keep
 * (docs/cluster.md §5.4, §10.3), on three real brokers:
 *   - truncation: both followers SIGSTOPped, the leader appends acks=1 records nobody
 *     replicates and is SIGKILLed; the followers resume (within the session timeout, and with
 *     two of three voters stopped nothing can be fenced meanwhile) and one of them leads at a
 *     higher epoch without those records. acks=all records follow. The old leader restarts as a
 *     follower, truncates its unreplicated suffix (OffsetForLeaderEpoch) and catches up: the
 *     partition read from the new leader is contiguous, holds every acks=all record and none of
 *     the acks=1 ones, and after a clean stop all three logs are byte-identical.
 *   - controller failover during CreateTopics: eight topics are created concurrently (40 ms
 *     apart, through every broker in turn) while the active controller is SIGKILLed, then
 *     restarted. Afterwards
 *     every topic is, on every broker's Metadata, either complete (all partitions with a
 *     leader) or absent - never half there - and the brokers agree; a topic whose create was
 *     acknowledged is complete; creating every topic again (TOPIC_ALREADY_EXISTS is fine)
 *     leaves all of them complete everywhere.
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
#include "rawclient.h"

#define BEFORE 20
#define LOST 15
#define AFTER 20

/* acks=all to whoever leads, retrying retriable answers for up to 15 s; returns base offset. */
static int64_t produce_acks_all(rn_hcluster_t *c, const char *topic, int n, const char *prefix,
                                int first)
{
    int64_t deadline = rn_hc_now_ms() + 15000;
    int err = -1;
    for (;;) {
        rn_cc_part_t l = rn_cc_wait_leader(c, 0, topic, 0, -1, 10000);
        int64_t off = -1;
        err = rn_cc_produce(c->b[l.leader - 1].addr, topic, 0, -1, n, prefix, first, 5000, &off);
        if (err == 0)
            return off;
        bool retriable = err == -1 || err == RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER ||
                         err == RUNNEL__ERROR_CODE__ERR_REQUEST_TIMED_OUT ||
                         err == RUNNEL__ERROR_CODE__ERR_NOT_ENOUGH_REPLICAS ||
                         err == RUNNEL__ERROR_CODE__ERR_LEADER_NOT_AVAILABLE;
        if (!retriable || rn_hc_now_ms() > deadline) {
            rn_hc_dump_logs(c);
            fail_msg("acks=all produce of %s-%d.. to leader %d: error %d", prefix, first,
                     l.leader, err);
        }
        rn_hc_sleep_ms(100);
    }
}

static void unreplicated_suffix_is_truncated(void **state)
{
    (void)state;
    /* Short follower long polls, and a session long enough to stop the followers past one:
     * then no fetch of theirs waits at the leader, and the acks=1 records reach no one. */
    const char *const extra[] = {"replica.fetch.wait.max.ms=50", "broker.session.timeout.ms=3000",
                                 NULL};
    rn_hcluster_t *c = rn_hc_start("cluster-trunc", extra);
    rn_cc_wait_members(c, 0, 0, 20000);
    rn_cc_create_topic(c, 0, "tr", 1, RN_HC_N, NULL, false, 20000);
    rn_cc_part_t l = rn_cc_wait_isr(c, 0, "tr", 0, RN_HC_N, -1, 15000);
    assert_int_equal(produce_acks_all(c, "tr", BEFORE, "before", 0), 0);
    rn_cc_wait_in_sync(c, "tr", 1, NULL, 15000);
    l = rn_cc_wait_leader(c, 0, "tr", 0, -1, 5000);
    int32_t old = l.leader;
    uint32_t old_epoch = l.leader_epoch;

    int32_t f[2], nf = 0;
    for (int32_t id = 1; id <= RN_HC_N; id++)
        if (id != old)
            f[nf++] = id;
    for (int k = 0; k < 2; k++)
        rn_h_broker_signal(&c->b[f[k] - 1], SIGSTOP);
    int64_t stopped_at = rn_hc_now_ms();
    rn_hc_sleep_ms(300); /* the leader answers their waiting fetches (50 ms) into the void */
    for (int k = 0; k < 3; k++) {
        int64_t off = -1;
        int err = rn_cc_produce(c->b[old - 1].addr, "tr", 0, 1, LOST / 3, "lost", k * (LOST / 3),
                                2000, &off);
        if (err)
            fail_msg("acks=1 to leader %d with both followers stopped: error %d", old, err);
        assert_int_equal(off, BEFORE + k * (LOST / 3));
    }
    rn_h_broker_kill(&c->b[old - 1]);
    for (int k = 0; k < 2; k++)
        rn_h_broker_signal(&c->b[f[k] - 1], SIGCONT);
    fprintf(stderr, "# followers %d and %d stopped for %lld ms; leader %d (epoch %u) killed with "
            "%d unreplicated acks=1 records\n",
            f[0], f[1], (long long)(rn_hc_now_ms() - stopped_at), old, old_epoch, LOST);

    int64_t t0 = rn_hc_now_ms();
    rn_cc_part_t nl = rn_cc_wait_leader(c, 0, "tr", 0, old, 15000);
    fprintf(stderr, "# broker %d leads at epoch %u, %lld ms after the kill\n", nl.leader,
            nl.leader_epoch, (long long)(rn_hc_now_ms() - t0));
    if (nl.leader_epoch <= old_epoch)
        fail_msg("new leader %d has epoch %u, not above the old leader's %u", nl.leader,
                 nl.leader_epoch, old_epoch);
    if (nl.log_end_offset != BEFORE)
        fail_msg("new leader %d has log end %lld; want %d (only the acks=all records)",
                 nl.leader, (long long)nl.log_end_offset, BEFORE);
    assert_int_equal(produce_acks_all(c, "tr", AFTER, "after", 0), BEFORE);

    if (rn_rc_broker_restart(&c->b[old - 1]) != 0)
        fail_msg("old leader %d did not restart", old);
    t0 = rn_hc_now_ms();
    rn_cc_wait_isr(c, 0, "tr", 0, RN_HC_N, -1, 30000);
    int64_t end;
    rn_cc_wait_in_sync(c, "tr", 1, &end, 15000);
    fprintf(stderr, "# old leader %d back in the ISR and caught up %lld ms after its restart\n",
            old, (long long)(rn_hc_now_ms() - t0));
    assert_int_equal(end, BEFORE + AFTER);

    /* Read the partition back from the leader: contiguous, acks=all only. */
    rn_cc_part_t cur = rn_cc_wait_leader(c, 0, "tr", 0, -1, 5000);
    rn_rc_t rc;
    static rn_rc_rec_t recs[256];
    assert_int_equal(rn_rc_connect(&rc, c->b[cur.leader - 1].addr), 0);
    int n = rn_rc_fetch_all(&rc, "tr", 0, 0, recs, 256);
    rn_rc_close(&rc);
    if (n != BEFORE + AFTER)
        fail_msg("read %d records from leader %d, want %d", n, cur.leader, BEFORE + AFTER);
    for (int i = 0; i < n; i++) {
        char want[64];
        if (i < BEFORE)
            snprintf(want, sizeof want, "before-%d", i);
        else
            snprintf(want, sizeof want, "after-%d", i - BEFORE);
        if (recs[i].offset != (uint64_t)i || strcmp(recs[i].value, want) != 0)
            fail_msg("record %d: offset %llu value '%s'; want offset %d value '%s' (an acks=1 "
                     "record that was never replicated must be gone)",
                     i, (unsigned long long)recs[i].offset, recs[i].value, i, want);
    }
    rn_cc_stop_all(c);
    rn_cc_assert_logs_equal(c, "tr", 1);
    rn_hc_free(c);
}

#define TOPICS 8
#define TOPIC_PARTS 3

typedef struct creator {
    rn_hcluster_t *c;
    int index;
    int err;
    char msg[128];
    _Atomic int *done;
} creator_t;

static void topic_name(int i, char *buf, size_t len)
{
    snprintf(buf, len, "ct-%d", i);
}

/* One CreateTopics (no retry) through broker index % 3, which forwards it to the controller;
 * the creators start 40 ms apart so the controller's death lands among them. */
static void *create_topic(void *arg)
{
    creator_t *x = arg;
    char name[32];
    topic_name(x->index, name, sizeof name);
    rn_hc_sleep_ms(40 * x->index);
    x->err = rn_cc_try_create(x->c->b[x->index % RN_HC_N].addr, name, TOPIC_PARTS, RN_HC_N, NULL,
                              x->msg, sizeof x->msg);
    (*x->done)++;
    return NULL;
}

/* 1: complete on every broker, 0: absent on every broker, -1: neither (yet). */
static int topic_state(rn_hcluster_t *c, const char *name, char *why, size_t whylen)
{
    int complete = 0, absent = 0;
    why[0] = '\0';
    for (int i = 0; i < RN_HC_N; i++) {
        bool gone;
        if (rn_cc_topic_complete(c->b[i].addr, name, TOPIC_PARTS, &gone)) {
            complete++;
        } else if (gone) {
            absent++;
        } else {
            rn_cc_part_t v = rn_cc_part(c->b[i].addr, name, 0);
            char s[256];
            snprintf(why, whylen, "broker %d shows it partly: partition 0 %s", i + 1,
                     rn_cc_part_str(&v, s, sizeof s));
        }
    }
    if (complete == RN_HC_N)
        return 1;
    if (absent == RN_HC_N)
        return 0;
    if (!why[0])
        snprintf(why, whylen, "complete on %d brokers, absent on %d", complete, absent);
    return -1;
}

static void controller_killed_during_create_topics(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-ctl-create", NULL);
    rn_cc_wait_members(c, 0, 0, 20000);
    int32_t ctl = rn_cc_controller(c, 0);
    assert_true(ctl >= 1 && ctl <= RN_HC_N);

    creator_t x[TOPICS];
    pthread_t t[TOPICS];
    _Atomic int done = 0;
    for (int i = 0; i < TOPICS; i++) {
        x[i] = (creator_t){.c = c, .index = i, .err = -1, .done = &done};
        pthread_create(&t[i], NULL, create_topic, &x[i]);
    }
    while (done < 2)
        rn_hc_sleep_ms(1);
    rn_h_broker_kill(&c->b[ctl - 1]);
    int64_t killed_at = rn_hc_now_ms();
    for (int i = 0; i < TOPICS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < TOPICS; i++)
        fprintf(stderr, "# create ct-%d via broker %d: %d %s\n", i, i % RN_HC_N + 1, x[i].err,
                x[i].msg);
    int32_t ctl2 = -1;
    while ((ctl2 = rn_cc_controller(c, 0)) < 1 || ctl2 == ctl) {
        if (rn_hc_now_ms() - killed_at > 10000) {
            rn_hc_dump_logs(c);
            fail_msg("no new controller within 10 s of SIGKILLing controller %d", ctl);
        }
        rn_hc_sleep_ms(20);
    }
    fprintf(stderr, "# controller %d killed; %d took over after %lld ms\n", ctl, ctl2,
            (long long)(rn_hc_now_ms() - killed_at));
    if (rn_rc_broker_restart(&c->b[ctl - 1]) != 0)
        fail_msg("broker %d did not restart", ctl);
    rn_cc_wait_members(c, 0, 0, 20000);

    /* All or nothing, the same on every broker, once the metadata settled. */
    for (int i = 0; i < TOPICS; i++) {
        char name[32], why[512];
        topic_name(i, name, sizeof name);
        int64_t deadline = rn_hc_now_ms() + 15000;
        int st;
        while ((st = topic_state(c, name, why, sizeof why)) < 0) {
            if (rn_hc_now_ms() > deadline) {
                rn_hc_dump_logs(c);
                fail_msg("topic %s is half there 15 s after the controller failover: %s", name,
                         why);
            }
            rn_hc_sleep_ms(50);
        }
        if (x[i].err == 0 && st != 1)
            fail_msg("create of %s was acknowledged, but no broker shows it", name);
        fprintf(stderr, "# %s: %s\n", name, st ? "complete on every broker" : "absent everywhere");
    }

    /* Creating again converges: every topic complete on every broker. */
    for (int i = 0; i < TOPICS; i++) {
        char name[32], why[512];
        topic_name(i, name, sizeof name);
        rn_cc_create_topic(c, 0, name, TOPIC_PARTS, RN_HC_N, NULL, true, 20000);
        int64_t deadline = rn_hc_now_ms() + 10000;
        while (topic_state(c, name, why, sizeof why) != 1) {
            if (rn_hc_now_ms() > deadline) {
                rn_hc_dump_logs(c);
                fail_msg("topic %s not complete on every broker after creating it again: %s",
                         name, why);
            }
            rn_hc_sleep_ms(50);
        }
    }
    rn_cc_stop_all(c);
    rn_hc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unreplicated_suffix_is_truncated),
        cmocka_unit_test(controller_killed_during_create_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
