/*
 * 1,000,000 records over a 6-partition topic through librunnel (acks=all, idempotence on),
 * once uncompressed and once with zstd, read back: counts per partition, content hashes per
 * partition, per-partition order, and the offsets the delivery reports gave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include <cmocka.h>

#include "test_client_util.h"

#define RECORDS 1000000
#define PARTS 6

static rn_hbroker_t broker;

typedef struct ctx {
    tc_sent_t *sent;
    uint64_t ok, failed, out_of_order;
    int64_t last_offset[PARTS];
    int64_t last_index[PARTS];
} ctx_t;

/* Runs on the I/O thread; flush() returning orders it before the main thread's reads. */
static void on_delivery(const rn_delivery_t *r, void *arg)
{
    ctx_t *x = arg;
    uint64_t i = (uint64_t)(uintptr_t)r->opaque;
    x->sent[i] = (tc_sent_t){r->partition, r->offset, r->err, true};
    if (r->err != RN_OK) {
        if (x->failed++ < 5)
            fprintf(stderr, "record %llu failed: %s\n", (unsigned long long)i, rn_err_str(r->err));
        return;
    }
    x->ok++;
    int32_t p = r->partition;
    if (r->offset <= x->last_offset[p] || (int64_t)i <= x->last_index[p])
        x->out_of_order++;
    x->last_offset[p] = r->offset;
    x->last_index[p] = (int64_t)i;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void produce_and_verify(const char *topic, const char *compression)
{
    tc_create_topic(&broker, topic, PARTS, NULL);
    ctx_t *x = calloc(1, sizeof *x);
    x->sent = calloc(RECORDS, sizeof *x->sent);
    for (int p = 0; p < PARTS; p++)
        x->last_offset[p] = x->last_index[p] = -1;
    char comp[64];
    snprintf(comp, sizeof comp, "compression.type=%s", compression);
    const char *pairs[] = {"acks=all", "enable.idempotence=true", comp, NULL};
    rn_conf_t *conf = tc_conf(&broker, pairs);
    rn_producer_t *p;
    char err[256];
    assert_int_equal(rn_producer_new(conf, on_delivery, x, &p, err, sizeof err), RN_OK);
    rn_conf_free(conf);

    XXH3_state_t *hs[PARTS];
    uint64_t expect[PARTS] = {0};
    for (int k = 0; k < PARTS; k++) {
        hs[k] = XXH3_createState();
        XXH3_64bits_reset(hs[k]);
    }
    double t0 = now_s();
    for (uint64_t i = 0; i < RECORDS; i++) {
        rn_err_t e = tc_send(p, topic, RN_PARTITION_ANY, i);
        if (e != RN_OK)
            fail_msg("send %llu: %s", (unsigned long long)i, rn_err_str(e));
        int32_t part = tc_partition_of(i, PARTS);
        expect[part]++;
        uint8_t value[TC_VALUE_SIZE];
        tc_value(i, value);
        XXH3_64bits_update(hs[part], value, sizeof value);
    }
    assert_int_equal(rn_producer_flush(p, 120000), RN_OK);
    double t1 = now_s();
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    fprintf(stderr, "%s (%s): %d records acknowledged in %.2f s (%.0f records/s)\n", topic,
            compression, RECORDS, t1 - t0, RECORDS / (t1 - t0));
    assert_int_equal(x->failed, 0);
    assert_int_equal(x->ok, RECORDS);
    assert_int_equal(x->out_of_order, 0);

    tc_check_t check;
    tc_read_back(&broker, topic, PARTS, x->sent, RECORDS, &check);
    fprintf(stderr, "%s: read back %llu records in %.2f s\n", topic,
            (unsigned long long)check.records, now_s() - t1);
    assert_int_equal(check.bad, 0);
    assert_int_equal(check.duplicates, 0);
    assert_int_equal(check.acked_missing, 0);
    assert_int_equal(check.records, RECORDS);
    for (int k = 0; k < PARTS; k++) {
        assert_int_equal(check.per_part[k], expect[k]);
        uint64_t want = XXH3_64bits_digest(hs[k]);
        if (check.hash[k] != want)
            fail_msg("partition %d content hash %016llx, sent %016llx", k,
                     (unsigned long long)check.hash[k], (unsigned long long)want);
        XXH3_freeState(hs[k]);
    }
    free(x->sent);
    free(x);
}

static void test_million_uncompressed(void **state)
{
    (void)state;
    produce_and_verify("bulk-none", "none");
}

static void test_million_zstd(void **state)
{
    (void)state;
    produce_and_verify("bulk-zstd", "zstd");
}

static int setup(void **state)
{
    (void)state;
    tc_broker_start(&broker, "client-bulk", NULL);
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
        cmocka_unit_test(test_million_uncompressed),
        cmocka_unit_test(test_million_zstd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
