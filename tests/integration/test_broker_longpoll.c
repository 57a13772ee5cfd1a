/*
 * test_broker_longpoll.c - Fetch with min_bytes and max_wait_ms: it answers as soon as a
 * produce on another connection brings enough data (well before max_wait), at max_wait with
 * nothing when nothing comes, keeps later responses on its connection behind it, and answers
 * at once when the broker shuts down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

static char *g_dir;
static rn_hbroker_t g_broker;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    (void)state;
    g_dir = rn_h_tmpdir("broker-lp");
    char data[600];
    snprintf(data, sizeof data, "%s/data", g_dir);
    if (rn_rc_broker_start(&g_broker, data, NULL) != 0)
        return -1;
    rn_rc_t c;
    if (rn_rc_connect(&c, g_broker.addr) != 0)
        return -1;
    int rc = 0;
    const char *names[] = {"lp1", "lp2", "lp3", "lp4", "lp5"};
    for (int i = 0; i < 5; i++)
        rc |= rn_rc_create_topic(&c, names[i], 2, 1, NULL, NULL, 0);
    rn_rc_close(&c);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    rn_h_broker_kill(&g_broker);
    rn_h_broker_release(&g_broker);
    rn_h_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* Sends a fetch without waiting for its answer; returns its correlation id. */
static int64_t send_fetch(rn_rc_t *c, const char *topic, uint32_t partition, int64_t offset,
                          uint32_t min_bytes, uint32_t max_wait_ms)
{
    Runnel__FetchPartition fp = RUNNEL__FETCH_PARTITION__INIT, *fpp = &fp;
    fp.partition = partition;
    fp.fetch_offset = offset;
    fp.current_leader_epoch = -1;
    Runnel__FetchTopic ft = RUNNEL__FETCH_TOPIC__INIT, *ftp = &ft;
    ft.name = (char *)topic;
    ft.n_partitions = 1;
    ft.partitions = &fpp;
    Runnel__FetchRequest body = RUNNEL__FETCH_REQUEST__INIT;
    body.replica_id = -1;
    body.max_wait_ms = max_wait_ms;
    body.min_bytes = min_bytes;
    body.n_topics = 1;
    body.topics = &ftp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH;
    req.fetch = &body;
    return rn_rc_send(c, &req, RUNNEL__API_KEY__API_FETCH);
}

static size_t produce_one(const char *topic, uint32_t partition, const char *prefix)
{
    rn_rc_t p;
    assert_int_equal(rn_rc_connect(&p, g_broker.addr), 0);
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, 2, prefix, 0);
    assert_int_equal(rn_rc_produce(&p, topic, partition, 1, b.data, b.len, NULL), 0);
    size_t len = b.len;
    rn_buf_free(&b);
    rn_rc_close(&p);
    return len;
}

/* ------------------------------------------------------------------------ */

static void test_returns_as_soon_as_data_arrives(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    int64_t t0 = now_ms();
    int64_t cid = send_fetch(&c, "lp1", 1, 0, 1, 10000);
    /* Nothing for a while: the fetch must still be waiting. */
    assert_null(rn_rc_recv(&c, 300));
    int64_t t_produce = now_ms();
    produce_one("lp1", 1, "wake");
    Runnel__Response *r = rn_rc_recv(&c, 10000);
    int64_t t_answer = now_ms();
    assert_non_null(r);
    assert_int_equal(r->correlation_id, cid);
    Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
    assert_non_null(p);
    assert_int_equal(p->error, 0);
    rn_rc_rec_t recs[4];
    assert_int_equal(rn_rc_decode(p->records.data, p->records.len, recs, 4), 2);
    assert_string_equal(recs[0].value, "wake-0");
    assert_true(t_answer - t0 >= 300);
    assert_true(t_answer - t_produce < 2000);
    fprintf(stderr, "long poll answered %lld ms after the produce\n",
            (long long)(t_answer - t_produce));
    rn_rc_free(r);
    rn_rc_close(&c);
}

static void test_times_out_empty(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    int64_t t0 = now_ms();
    Runnel__Response *r = rn_rc_fetch(&c, "lp2", 0, 0, 0, 0, 1, 500, 10000);
    int64_t took = now_ms() - t0;
    Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
    assert_non_null(p);
    assert_int_equal(p->error, 0);
    assert_int_equal(p->records.len, 0);
    assert_true(took >= 450 && took < 5000);
    rn_rc_free(r);
    /* Data on another partition of the topic does not wake it early (but is harmless). */
    t0 = now_ms();
    int64_t cid = send_fetch(&c, "lp2", 0, 0, 1, 700);
    sleep_ms(100);
    produce_one("lp2", 1, "other");
    r = rn_rc_recv(&c, 10000);
    took = now_ms() - t0;
    assert_non_null(r);
    assert_int_equal(r->correlation_id, cid);
    assert_int_equal(rn_rc_fetch_part(r)->records.len, 0);
    assert_true(took >= 650);
    rn_rc_free(r);
    rn_rc_close(&c);
}

static void test_min_bytes_and_order(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    size_t one = produce_one("lp3", 0, "first");
    /* Needs more than one batch: the first produce (already there) is not enough. */
    int64_t cid = send_fetch(&c, "lp3", 0, 0, (uint32_t)(one + 1), 10000);
    /* A later request on the same connection must not overtake the waiting fetch. */
    Runnel__ApiVersionsRequest av = RUNNEL__API_VERSIONS_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_API_VERSIONS;
    req.api_versions = &av;
    int64_t cid2 = rn_rc_send(&c, &req, RUNNEL__API_KEY__API_VERSIONS);
    assert_null(rn_rc_recv(&c, 300));
    int64_t t_produce = now_ms();
    produce_one("lp3", 0, "second");
    Runnel__Response *r = rn_rc_recv(&c, 10000);
    assert_non_null(r);
    assert_true(now_ms() - t_produce < 2000);
    assert_int_equal(r->correlation_id, cid);
    rn_rc_rec_t recs[8];
    Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
    assert_int_equal(rn_rc_decode(p->records.data, p->records.len, recs, 8), 4);
    assert_string_equal(recs[2].value, "second-0");
    rn_rc_free(r);
    r = rn_rc_recv(&c, 5000);
    assert_non_null(r);
    assert_int_equal(r->correlation_id, cid2);
    rn_rc_free(r);
    rn_rc_close(&c);
}

static void test_many_waiters_one_produce(void **state)
{
    (void)state;
    enum { N = 20 };
    rn_rc_t c[N];
    int64_t cid[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(rn_rc_connect(&c[i], g_broker.addr), 0);
        cid[i] = send_fetch(&c[i], "lp4", (uint32_t)(i % 2), 0, 1, 10000);
    }
    sleep_ms(200);
    int64_t t0 = now_ms();
    produce_one("lp4", 0, "a");
    produce_one("lp4", 1, "b");
    for (int i = 0; i < N; i++) {
        Runnel__Response *r = rn_rc_recv(&c[i], 10000);
        assert_non_null(r);
        assert_int_equal(r->correlation_id, cid[i]);
        assert_true(rn_rc_fetch_part(r)->records.len > 0);
        rn_rc_free(r);
        rn_rc_close(&c[i]);
    }
    assert_true(now_ms() - t0 < 2000);
}

/* Runs last: a waiting fetch is answered promptly when the broker stops, which exits 0. */
static void test_answered_at_shutdown(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    int64_t cid = send_fetch(&c, "lp5", 0, 0, 1, 30000);
    assert_null(rn_rc_recv(&c, 200));
    int64_t t0 = now_ms();
    rn_h_broker_signal(&g_broker, SIGTERM);
    Runnel__Response *r = rn_rc_recv(&c, 10000);
    assert_non_null(r);
    assert_int_equal(r->correlation_id, cid);
    assert_true(now_ms() - t0 < 5000);
    rn_rc_free(r);
    assert_true(rn_rc_closed_by_peer(&c, 10000));
    rn_rc_close(&c);
    /* Reap it without a second SIGTERM (which would mean: exit now, uncleanly). */
    int status = -1;
    for (int i = 0; i < 1000 && waitpid(g_broker.pid, &status, WNOHANG) == 0; i++)
        sleep_ms(10);
    g_broker.pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_returns_as_soon_as_data_arrives),
        cmocka_unit_test(test_times_out_empty),
        cmocka_unit_test(test_min_bytes_and_order),
        cmocka_unit_test(test_many_waiters_one_produce),
        cmocka_unit_test(test_answered_at_shutdown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
