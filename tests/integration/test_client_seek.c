/*
 * Consumer positioning against a real broker: ListOffsets by timestamp, seek by timestamp,
 * by offset, to the beginning and end; rn_consumer_at_end (kcat's -e) before, at and after
 * the end as new data arrives; auto.offset.reset for an offset past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "test_client_util.h"

#define TOPIC "ts"
#define N 1000

static rn_hbroker_t broker;
static int64_t base_ts;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void produce_range(int from, int to)
{
    rn_conf_t *conf = tc_conf(&broker, NULL);
    rn_producer_t *p;
    assert_int_equal(rn_producer_new(conf, NULL, NULL, &p, NULL, 0), RN_OK);
    rn_conf_free(conf);
    for (int i = from; i < to; i++) {
        char v[32];
        int n = snprintf(v, sizeof v, "v%d", i);
        rn_message_t m = {.topic = TOPIC, .partition = 0, .value = v, .value_len = (size_t)n,
                          .timestamp = base_ts + (int64_t)i * 10};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 30000), RN_OK);
}

static rn_consumer_t *consumer(const char *reset)
{
    char r[64];
    snprintf(r, sizeof r, "auto.offset.reset=%s", reset);
    const char *pairs[] = {r, "fetch.max.wait.ms=100", NULL};
    rn_conf_t *conf = tc_conf(&broker, pairs);
    rn_consumer_t *c;
    assert_int_equal(rn_consumer_new(conf, &c, NULL, 0), RN_OK);
    rn_conf_free(conf);
    return c;
}

/* The next record of partition 0, waiting up to 10 s. */
static const rn_record_view_t *next_record(rn_consumer_t *c)
{
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        rn_err_t e = rn_consumer_poll(c, 100, 1, &r, &n);
        if (e != RN_OK)
            fail_msg("poll: %s", rn_err_name(e));
        if (n == 1)
            return r;
    }
    fail_msg("no record within 10 s");
    return NULL;
}

static void expect_record(const rn_record_view_t *r, int64_t i)
{
    char v[32];
    int n = snprintf(v, sizeof v, "v%lld", (long long)i);
    assert_int_equal(r->offset, i);
    assert_int_equal(r->timestamp, base_ts + i * 10);
    assert_int_equal(r->value_len, n);
    assert_memory_equal(r->value, v, (size_t)n);
    assert_null(r->key);
    assert_int_equal(r->key_len, -1);
}

static void test_list_offsets_by_time(void **state)
{
    (void)state;
    rn_conf_t *conf = tc_conf(&broker, NULL);
    rn_admin_t *a;
    assert_int_equal(rn_admin_new(conf, &a, NULL, 0), RN_OK);
    rn_conf_free(conf);
    struct {
        int64_t ts, want;
    } cases[] = {
        {RN_OFFSET_BEGINNING, 0}, {RN_OFFSET_END, N}, {0, 0}, {base_ts, 0},
        {base_ts + 5000, 500}, {base_ts + 5001, 501}, {base_ts + 9990, 999}, {base_ts + 9991, N},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t off = -99;
        assert_int_equal(rn_admin_list_offsets(a, TOPIC, 0, cases[k].ts, &off, 5000), RN_OK);
        if (off != cases[k].want)
            fail_msg("ListOffsets(%lld) = %lld, expected %lld", (long long)cases[k].ts,
                     (long long)off, (long long)cases[k].want);
    }
    int64_t off;
    assert_int_equal(rn_admin_list_offsets(a, TOPIC, 1, RN_OFFSET_END, &off, 5000), RN_OK);
    assert_int_equal(off, 0);
    assert_int_equal(rn_admin_list_offsets(a, TOPIC, 9, RN_OFFSET_END, &off, 5000),
                     RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(rn_admin_list_offsets(a, "no-such-topic", 0, RN_OFFSET_END, &off, 5000),
                     RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_admin_close(a);
}

static void test_read_to_end(void **state)
{
    (void)state;
    rn_consumer_t *c = consumer("error");
    assert_false(rn_consumer_at_end(c, TOPIC, 0)); /* not assigned */
    assert_int_equal(rn_consumer_assign(c, TOPIC, 0, RN_OFFSET_BEGINNING), RN_OK);
    int64_t pos;
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, 0);
    int64_t got = 0;
    while (got < N) {
        const rn_record_view_t *r;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 1000, 64, &r, &n), RN_OK);
        for (size_t k = 0; k < n; k++)
            expect_record(&r[k], got++);
        /* Below the high watermark of every fetch so far: not at the end. */
        if (got < N)
            assert_false(rn_consumer_at_end(c, TOPIC, 0));
    }
    assert_true(rn_consumer_at_end(c, TOPIC, 0));
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, N);

    /* New data: at the end again only once it is read. */
    produce_range(N, N + 10);
    const rn_record_view_t *r = next_record(c);
    expect_record(r, N);
    assert_false(rn_consumer_at_end(c, TOPIC, 0));
    for (int i = N + 1; i < N + 10; i++)
        expect_record(next_record(c), i);
    assert_true(rn_consumer_at_end(c, TOPIC, 0));
    rn_consumer_close(c);
}

static void test_seek(void **state)
{
    (void)state;
    rn_consumer_t *c = consumer("error");
    assert_int_equal(rn_consumer_assign(c, TOPIC, 0, 10), RN_OK);
    expect_record(next_record(c), 10);
    expect_record(next_record(c), 11);

    assert_int_equal(rn_consumer_seek_timestamp(c, TOPIC, 0, base_ts + 5005, 5000), RN_OK);
    int64_t pos;
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, 501);
    expect_record(next_record(c), 501);

    assert_int_equal(rn_consumer_seek(c, TOPIC, 0, 3), RN_OK);
    expect_record(next_record(c), 3);

    assert_int_equal(rn_consumer_seek(c, TOPIC, 0, RN_OFFSET_BEGINNING), RN_OK);
    expect_record(next_record(c), 0);

    /* Past every timestamp: the end. */
    assert_int_equal(rn_consumer_seek_timestamp(c, TOPIC, 0, base_ts + 10000000, 5000), RN_OK);
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, N + 10);

    assert_int_equal(rn_consumer_seek(c, TOPIC, 0, RN_OFFSET_END), RN_OK);
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, N + 10);
    assert_true(rn_consumer_at_end(c, TOPIC, 0));

    assert_int_equal(rn_consumer_seek_timestamp(c, TOPIC, 5, 0, 5000), RN_ERR_NOT_FOUND);
    rn_consumer_close(c);
}

static void test_assign_end_and_empty(void **state)
{
    (void)state;
    rn_consumer_t *c = consumer("latest");
    assert_int_equal(rn_consumer_assign(c, TOPIC, 0, RN_OFFSET_END), RN_OK);
    assert_int_equal(rn_consumer_assign(c, TOPIC, 1, RN_OFFSET_BEGINNING), RN_OK);
    int64_t pos;
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, N + 10);
    /* An empty partition is at its end once a fetch said so. */
    int64_t deadline = mono_ms() + 5000;
    while (!(rn_consumer_at_end(c, TOPIC, 0) && rn_consumer_at_end(c, TOPIC, 1)) &&
           mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 50, 10, &r, &n), RN_OK);
        assert_int_equal(n, 0);
    }
    assert_true(rn_consumer_at_end(c, TOPIC, 0));
    assert_true(rn_consumer_at_end(c, TOPIC, 1));
    rn_consumer_close(c);
}

static void test_out_of_range(void **state)
{
    (void)state;
    rn_consumer_t *c = consumer("error");
    assert_int_equal(rn_consumer_assign(c, TOPIC, 0, 50000), RN_OK);
    int64_t deadline = mono_ms() + 10000;
    rn_err_t e = RN_OK;
    while (e == RN_OK && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        e = rn_consumer_poll(c, 100, 10, &r, &n);
        assert_int_equal(n, 0);
    }
    assert_int_equal(e, RN_ERR_OFFSET_OUT_OF_RANGE);
    /* A seek clears it. */
    assert_int_equal(rn_consumer_seek(c, TOPIC, 0, 7), RN_OK);
    expect_record(next_record(c), 7);
    rn_consumer_close(c);

    c = consumer("earliest");
    assert_int_equal(rn_consumer_assign(c, TOPIC, 0, 50000), RN_OK);
    expect_record(next_record(c), 0);
    rn_consumer_close(c);

    c = consumer("latest");
    assert_int_equal(rn_consumer_assign(c, TOPIC, 0, 50000), RN_OK);
    deadline = mono_ms() + 10000;
    while (!rn_consumer_at_end(c, TOPIC, 0) && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 50, 10, &r, &n), RN_OK);
        assert_int_equal(n, 0);
    }
    int64_t pos;
    assert_int_equal(rn_consumer_position(c, TOPIC, 0, &pos), RN_OK);
    assert_int_equal(pos, N + 10);
    rn_consumer_close(c);
}

static void test_unknown_topic(void **state)
{
    (void)state;
    rn_consumer_t *c = consumer("earliest");
    assert_int_equal(rn_consumer_assign(c, "no-such-topic", 0, 0), RN_OK);
    assert_int_equal(rn_consumer_assign(c, TOPIC, 7, 0), RN_OK);
    int errors = 0;
    int64_t deadline = mono_ms() + 5000;
    while (errors < 2 && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        rn_err_t e = rn_consumer_poll(c, 100, 10, &r, &n);
        assert_int_equal(n, 0);
        if (e != RN_OK) {
            assert_int_equal(e, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
            errors++;
        }
    }
    assert_int_equal(errors, 2);
    rn_consumer_close(c);
}

static int setup(void **state)
{
    (void)state;
    tc_broker_start(&broker, "client-seek", NULL);
    tc_create_topic(&broker, TOPIC, 2, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    base_ts = ((int64_t)ts.tv_sec - 3600) * 1000; /* an hour ago, whole seconds */
    produce_range(0, N);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tc_broker_finish(&broker);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_offsets_by_time),
        cmocka_unit_test(test_read_to_end),
        cmocka_unit_test(test_seek),
        cmocka_unit_test(test_assign_end_and_empty),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_unknown_topic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
