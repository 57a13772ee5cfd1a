/*
 * test_cluster_repl.c - partition replication on three real brokers (docs/cluster.md §5):
 *   - a topic created with replication factor 3 has every broker as a replica, the preferred
 *     (first) replica leads and the ISR is all three;
 *   - an acks=all idempotent librunnel producer's records are all acknowledged and a consumer
 *     reads every one exactly once, in order, at the acknowledged offset;
 *   - only the leader serves Produce and consumer Fetch (NOT_LEADER_OR_FOLLOWER elsewhere), and
 *     a consumer fetch never returns a record at or above the high watermark it reports;
 *   - once every broker has the same log end, stopped cleanly, every partition's segment files
 *     are byte-identical across the brokers;
 *   - stall: with replica.lag.time.max.ms=2000 a SIGSTOPped follower leaves the ISR within
 *     10 s, acks=all with min.insync.replicas=2 still succeeds, and after SIGCONT the ISR is
 *     whole again within 15 s.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_check.h"
#include "cluster_fixture.h"
#include "rawclient.h"
#include "test_client_util.h"

#define RECORDS 20000
#define PARTS 2

typedef struct acks {
    tc_sent_t *sent;
    _Atomic uint64_t reported, ok, failed;
} acks_t;

static void on_delivery(const rn_delivery_t *r, void *arg)
{
    acks_t *x = arg;
    uint64_t i = (uint64_t)(uintptr_t)r->opaque;
    x->sent[i] = (tc_sent_t){r->partition, r->offset, r->err, true};
    if (r->err == RN_OK)
        x->ok++;
    else if (x->failed++ < 5)
        fprintf(stderr, "record %llu failed: %s\n", (unsigned long long)i, rn_err_name(r->err));
    x->reported++;
}

/* Sends records 0..n) of the tc_ shape with an acks=all idempotent producer and flushes. */
static void produce_all(rn_hcluster_t *c, const char *topic, acks_t *x, uint64_t n)
{
    char bootstrap[256], err[256];
    rn_cc_bootstrap(c, bootstrap, sizeof bootstrap);
    rn_conf_t *conf = rn_conf_new();
    const char *pairs[] = {"acks=all", "enable.idempotence=true", "linger.ms=5",
                           "retry.backoff.ms=50", "request.timeout.ms=10000", NULL};
    assert_int_equal(rn_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err), RN_OK);
    for (size_t k = 0; pairs[k]; k++)
        assert_int_equal(rn_conf_set_pair(conf, pairs[k], err, sizeof err), RN_OK);
    rn_producer_t *p;
    if (rn_producer_new(conf, on_delivery, x, &p, err, sizeof err) != RN_OK)
        fail_msg("producer: %s", err);
    rn_conf_free(conf);
    for (uint64_t i = 0; i < n; i++) {
        rn_err_t e = tc_send(p, topic, RN_PARTITION_ANY, i);
        if (e != RN_OK)
            fail_msg("send of record %llu: %s", (unsigned long long)i, rn_err_name(e));
    }
    rn_err_t e = rn_producer_flush(p, 60000);
    if (e != RN_OK)
        fail_msg("flush: %s (%llu of %llu reported)", rn_err_name(e),
                 (unsigned long long)x->reported, (unsigned long long)n);
    rn_producer_close(p, 10000);
}

/* The replica set is {1..RN_HC_N}, the leader is the preferred (first) replica. */
static void assert_placement(const rn_cc_part_t *l, const char *topic, uint32_t p)
{
    char s[256];
    bool seen[RN_HC_N + 1] = {false};
    for (size_t k = 0; k < l->n_replicas; k++)
        if (l->replicas[k] >= 1 && l->replicas[k] <= RN_HC_N)
            seen[l->replicas[k]] = true;
    bool all = l->n_replicas == RN_HC_N;
    for (int id = 1; id <= RN_HC_N; id++)
        all = all && seen[id];
    if (!all || l->leader != l->replicas[0])
        fail_msg("%s/%u: want replicas = all %d brokers with the first one leading; got %s",
                 topic, p, RN_HC_N, rn_cc_part_str(l, s, sizeof s));
}

/* Follower refuses Produce and consumer Fetch with NOT_LEADER_OR_FOLLOWER. */
static void assert_follower_refuses(rn_hcluster_t *c, const char *topic, int32_t leader)
{
    int f = leader % RN_HC_N; /* index of a broker that does not lead */
    int err = rn_cc_produce(c->b[f].addr, topic, 0, 1, 1, "follower", 0, 5000, NULL);
    if (err != RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER)
        fail_msg("Produce to follower %d of %s/0: want NOT_LEADER_OR_FOLLOWER (%d), got %d", f + 1,
                 topic, RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER, err);
    rn_rc_t rc;
    assert_int_equal(rn_rc_connect(&rc, c->b[f].addr), 0);
    Runnel__Response *r = rn_rc_fetch(&rc, topic, 0, 0, 1 << 20, 1 << 20, 0, 0, 5000);
    Runnel__FetchPartitionData *pd = rn_rc_fetch_part(r);
    if (!pd || pd->error != RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER || pd->records.len)
        fail_msg("consumer Fetch from follower %d of %s/0: want NOT_LEADER_OR_FOLLOWER and no "
                 "records, got %s error %d, %zu bytes",
                 f + 1, topic, pd ? "partition" : "no partition (response error)",
                 pd ? (int)pd->error : (r ? (int)r->error : -1), pd ? pd->records.len : 0);
    rn_rc_free(r);
    rn_rc_close(&rc);
}

/*
 * acks=1 batches race their replication: after each one a consumer fetch from the leader may
 * find the HW behind the log end. Every record it returns must be below the HW that the same
 * response reports, and the HW never above the log end.
 */
static void assert_fetch_below_hw(rn_hcluster_t *c, const char *topic)
{
    rn_cc_part_t l = rn_cc_wait_leader(c, 0, topic, 0, -1, 10000);
    const char *addr = c->b[l.leader - 1].addr;
    rn_rc_t rc;
    assert_int_equal(rn_rc_connect(&rc, addr), 0);
    int64_t next = 0;
    int lagging = 0, records = 0;
    static rn_rc_rec_t recs[4096];
    for (int round = 0; round < 60; round++) {
        assert_int_equal(rn_cc_produce(addr, topic, 0, 1, 20, "hw", round * 20, 5000, NULL), 0);
        Runnel__Response *r = rn_rc_fetch(&rc, topic, 0, next, 1 << 20, 1 << 20, 0, 0, 5000);
        Runnel__FetchPartitionData *pd = rn_rc_fetch_part(r);
        if (!pd || pd->error)
            fail_msg("fetch %s/0 at %lld from leader %d: error %d", topic, (long long)next,
                     l.leader, pd ? (int)pd->error : -1);
        if (pd->high_watermark > pd->log_end_offset)
            fail_msg("fetch response: high watermark %lld above log end %lld",
                     (long long)pd->high_watermark, (long long)pd->log_end_offset);
        lagging += pd->high_watermark < pd->log_end_offset;
        int n = rn_rc_decode(pd->records.data, pd->records.len, recs, 4096);
        assert_true(n >= 0);
        for (int k = 0; k < n; k++) {
            if ((int64_t)recs[k].offset >= pd->high_watermark)
                fail_msg("a consumer fetch returned offset %llu (%s) at or above the high "
                         "watermark %lld it reported",
                         (unsigned long long)recs[k].offset, recs[k].value,
                         (long long)pd->high_watermark);
            if ((int64_t)recs[k].offset >= next)
                next = (int64_t)recs[k].offset + 1, records++;
        }
        rn_rc_free(r);
    }
    rn_rc_close(&rc);
    fprintf(stderr, "# %s: %d records fetched below the HW; HW behind the log end in %d of 60 "
            "responses\n", topic, records, lagging);
}

static void replicate_consume_and_compare(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-repl", NULL);
    int64_t t0 = rn_hc_now_ms();
    rn_cc_wait_members(c, 0, 0, 20000);
    rn_cc_create_topic(c, 0, "repl", PARTS, RN_HC_N, NULL, false, 20000);
    rn_cc_create_topic(c, 0, "hw", 1, RN_HC_N, NULL, false, 20000);
    for (uint32_t p = 0; p < PARTS; p++) {
        rn_cc_part_t l = rn_cc_wait_isr(c, 0, "repl", p, RN_HC_N, -1, 15000);
        assert_placement(&l, "repl", p);
    }
    fprintf(stderr, "# topics created and fully in sync %lld ms after start\n",
            (long long)(rn_hc_now_ms() - t0));

    acks_t x = {.sent = calloc(RECORDS, sizeof(tc_sent_t))};
    assert_non_null(x.sent);
    t0 = rn_hc_now_ms();
    produce_all(c, "repl", &x, RECORDS);
    fprintf(stderr, "# %d records acks=all in %lld ms: %llu ok, %llu failed\n", RECORDS,
            (long long)(rn_hc_now_ms() - t0), (unsigned long long)x.ok,
            (unsigned long long)x.failed);
    if (x.ok != RECORDS)
        rn_hc_dump_logs(c);
    assert_int_equal(x.reported, RECORDS);
    assert_int_equal(x.ok, RECORDS);

    tc_check_t check;
    tc_read_back(&c->b[0], "repl", PARTS, x.sent, RECORDS, &check);
    fprintf(stderr, "# read back %llu records, %llu duplicates, %llu missing, %llu bad\n",
            (unsigned long long)check.records, (unsigned long long)check.duplicates,
            (unsigned long long)check.acked_missing, (unsigned long long)check.bad);
    assert_int_equal(check.duplicates, 0);
    assert_int_equal(check.acked_missing, 0);
    assert_int_equal(check.bad, 0);
    assert_int_equal(check.records, RECORDS);

    rn_cc_part_t l0 = rn_cc_wait_leader(c, 0, "repl", 0, -1, 5000);
    assert_follower_refuses(c, "repl", l0.leader);
    assert_fetch_below_hw(c, "hw");

    int64_t end[PARTS];
    t0 = rn_hc_now_ms();
    rn_cc_wait_in_sync(c, "repl", PARTS, end, 30000);
    rn_cc_wait_in_sync(c, "hw", 1, NULL, 30000);
    assert_int_equal(end[0] + end[1], RECORDS);
    fprintf(stderr, "# all replicas at log ends %lld/%lld (%lld ms)\n", (long long)end[0],
            (long long)end[1], (long long)(rn_hc_now_ms() - t0));

    rn_cc_stop_all(c);
    rn_cc_assert_logs_equal(c, "repl", PARTS);
    rn_cc_assert_logs_equal(c, "hw", 1);
    /* A clean stop writes every high watermark down, so a restart does not start them at 0.
     * The leader's is its log end; a follower's may lag by its last fetch. */
    for (int i = 0; i < RN_HC_N; i++) {
        char path[700], line[512];
        snprintf(path, sizeof path, "%s/replication-offset-checkpoint", c->data[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            fail_msg("broker %d wrote no %s", i + 1, path);
        uint64_t sum = 0;
        int found = 0;
        while (fgets(line, sizeof line, f)) {
            char topic[256];
            unsigned part;
            unsigned long long hw;
            if (sscanf(line, "%255s %u %llu", topic, &part, &hw) == 3 && strcmp(topic, "repl") == 0) {
                assert_true(hw <= (unsigned long long)end[part]);
                sum += hw;
                found++;
            }
        }
        fclose(f);
        assert_int_equal(found, PARTS);
        fprintf(stderr, "# broker %d checkpointed HWs summing to %llu of %d\n", i + 1,
                (unsigned long long)sum, RECORDS);
        assert_true(sum > 0);
    }
    free(x.sent);
    rn_hc_free(c);
}

static void stalled_follower_leaves_and_rejoins_isr(void **state)
{
    (void)state;
    const char *extra[] = {"replica.lag.time.max.ms=2000", NULL};
    rn_hcluster_t *c = rn_hc_start("cluster-stall", extra);
    rn_cc_wait_members(c, 0, 0, 20000);
    const char *cfg[] = {"min.insync.replicas=2", NULL};
    rn_cc_create_topic(c, 0, "stall", 1, RN_HC_N, cfg, false, 20000);
    rn_cc_part_t l = rn_cc_wait_isr(c, 0, "stall", 0, RN_HC_N, -1, 15000);
    int64_t off;
    int err = rn_cc_produce(c->b[l.leader - 1].addr, "stall", 0, -1, 10, "before", 0, 10000, &off);
    if (err)
        fail_msg("acks=all produce with the whole ISR: error %d", err);

    /* A follower that is not the active controller, so the quorum keeps its leader. */
    int32_t ctl = rn_cc_controller(c, 0);
    int32_t f = -1;
    for (int32_t id = 1; id <= RN_HC_N && f < 0; id++)
        if (id != l.leader && id != ctl)
            f = id;
    assert_true(f > 0);
    unsigned skip = 1u << (f - 1);
    rn_h_broker_signal(&c->b[f - 1], SIGSTOP);
    int64_t t0 = rn_hc_now_ms();
    rn_cc_part_t shrunk = rn_cc_wait_isr(c, skip, "stall", 0, RN_HC_N - 1, f, 10000);
    fprintf(stderr, "# follower %d left the ISR %lld ms after SIGSTOP\n", f,
            (long long)(rn_hc_now_ms() - t0));
    assert_int_equal(shrunk.leader, l.leader);

    /* The ISR (2) still meets min.insync.replicas=2: acks=all goes through. */
    err = rn_cc_produce(c->b[l.leader - 1].addr, "stall", 0, -1, 10, "during", 0, 10000, &off);
    if (err) {
        rn_hc_dump_logs(c);
        fail_msg("acks=all with ISR of 2 and min.insync.replicas=2: error %d", err);
    }
    assert_int_equal(off, 10);
    rn_rc_t rc;
    static rn_rc_rec_t recs[64];
    assert_int_equal(rn_rc_connect(&rc, c->b[l.leader - 1].addr), 0);
    int n = rn_rc_fetch_all(&rc, "stall", 0, 0, recs, 64);
    rn_rc_close(&rc);
    if (n != 20)
        fail_msg("a consumer reads %d records from the leader, want 20 (the HW must not wait for "
                 "the stalled follower)", n);

    rn_h_broker_signal(&c->b[f - 1], SIGCONT);
    t0 = rn_hc_now_ms();
    rn_cc_wait_isr(c, 0, "stall", 0, RN_HC_N, -1, 15000);
    fprintf(stderr, "# follower %d back in the ISR %lld ms after SIGCONT\n", f,
            (long long)(rn_hc_now_ms() - t0));
    rn_cc_wait_in_sync(c, "stall", 1, NULL, 15000);
    rn_cc_stop_all(c);
    rn_cc_assert_logs_equal(c, "stall", 1);
    rn_hc_free(c);
}

/*
 * A follower away longer than the leader's retention: its whole log is below the leader's log
 * start, so it starts over there (OFFSET_OUT_OF_RANGE -> reset) and comes back into the ISR,
 * with the leader's log end.
 */
static void follower_behind_retention_starts_over(void **state)
{
    (void)state;
    const char *extra[] = {"log.retention.check.interval.ms=100", NULL};
    rn_hcluster_t *c = rn_hc_start("cluster-retention", extra);
    rn_cc_wait_members(c, 0, 0, 20000);
    const char *cfg[] = {"segment.bytes=1024", "retention.bytes=2048", NULL};
    rn_cc_create_topic(c, 0, "rt", 1, RN_HC_N, cfg, false, 20000);
    rn_cc_part_t l = rn_cc_wait_isr(c, 0, "rt", 0, RN_HC_N, -1, 15000);
    int32_t ctl = rn_cc_controller(c, 0);
    int32_t f = -1;
    for (int32_t id = 1; id <= RN_HC_N && f < 0; id++)
        if (id != l.leader && id != ctl)
            f = id;
    if (f < 0) /* the leader is the controller: any other */
        f = l.leader == 1 ? 2 : 1;
    unsigned skip = 1u << (f - 1);
    rn_h_broker_signal(&c->b[f - 1], SIGSTOP);
    rn_cc_wait_isr(c, skip, "rt", 0, RN_HC_N - 1, f, 15000);
    /* ~40 KiB in 1 KiB segments; retention keeps about 2 KiB of them */
    for (int k = 0; k < 40; k++) {
        int err = rn_cc_produce(c->b[l.leader - 1].addr, "rt", 0, 1, 8, "far", k * 8, 5000, NULL);
        if (err)
            fail_msg("acks=1 to the leader %d: error %d", l.leader, err);
    }
    rn_hc_sleep_ms(500); /* a retention pass or more */
    rn_h_broker_signal(&c->b[f - 1], SIGCONT);
    int64_t t0 = rn_hc_now_ms();
    rn_cc_part_t w = rn_cc_wait_isr(c, 0, "rt", 0, RN_HC_N, -1, 30000);
    for (int64_t deadline = rn_hc_now_ms() + 15000;;) {
        rn_cc_part_t mine = rn_cc_part(c->b[f - 1].addr, "rt", 0);
        rn_cc_part_t lead = rn_cc_part(c->b[w.leader - 1].addr, "rt", 0);
        if (mine.log_end_offset == lead.log_end_offset && mine.log_end_offset == 320)
            break;
        if (rn_hc_now_ms() > deadline) {
            rn_hc_dump_logs(c);
            fail_msg("follower %d's log ends at %lld, the leader's at %lld (want 320)", f,
                     (long long)mine.log_end_offset, (long long)lead.log_end_offset);
        }
        rn_hc_sleep_ms(100);
    }
    fprintf(stderr, "# follower %d: back in the ISR with the leader's log end 320, %lld ms after "
            "SIGCONT\n", f, (long long)(rn_hc_now_ms() - t0));
    /* it got there by starting over, not by fetching what retention had deleted */
    FILE *lf = fopen(c->b[f - 1].log_path, "r");
    assert_non_null(lf);
    char line[1024];
    bool reset = false;
    while (fgets(line, sizeof line, lf))
        reset |= strstr(line, "rt-0: reset:") != NULL;
    fclose(lf);
    if (!reset)
        fail_msg("follower %d's log does not say it reset rt-0 to the leader's log start", f);
    rn_hc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replicate_consume_and_compare),
        cmocka_unit_test(stalled_follower_leaves_and_rejoins_isr),
        cmocka_unit_test(follower_behind_retention_starts_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
