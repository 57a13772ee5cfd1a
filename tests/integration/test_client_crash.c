/*
 * The broker is SIGKILLed twice while a producer streams into a topic with flush.messages=1
 * (an acknowledgement means the batch was fsynced), and restarted on the same data dir and
 * port. The producer (acks=all, idempotence) retries through each outage. Afterwards every
 * record whose delivery report said OK is read back exactly once, at the offset the report
 * gave, in send order per partition; no record at all may appear twice.
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
#include <time.h>
#include <cmocka.h>

#include "test_client_util.h"

#define RECORDS 300000
#define PARTS 6
#define KILLS 2

static rn_hbroker_t broker;

typedef struct ctx {
    tc_sent_t *sent;
    _Atomic uint64_t reported, ok, failed;
    _Atomic uint64_t sent_count;
    rn_producer_t *p;
    const char *topic;
    rn_err_t send_err;
} ctx_t;

static void on_delivery(const rn_delivery_t *r, void *arg)
{
    ctx_t *x = arg;
    uint64_t i = (uint64_t)(uintptr_t)r->opaque;
    x->sent[i] = (tc_sent_t){r->partition, r->offset, r->err, true};
    if (r->err == RN_OK)
        x->ok++;
    else if (x->failed++ < 5)
        fprintf(stderr, "record %llu failed: %s\n", (unsigned long long)i, rn_err_str(r->err));
    x->reported++;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends at a steady pace so that the kills land mid-stream rather than after the end. */
static void *produce(void *arg)
{
    ctx_t *x = arg;
    for (uint64_t i = 0; i < RECORDS; i++) {
        rn_err_t e = tc_send(x->p, x->topic, RN_PARTITION_ANY, i);
        if (e != RN_OK) {
            x->send_err = e;
            return NULL;
        }
        x->sent_count++;
        if (i % 500 == 499)
            sleep_ms(1);
    }
    return NULL;
}

static void wait_reported(ctx_t *x, uint64_t n)
{
    for (int waited = 0; x->reported < n && waited < 60000; waited += 5)
        sleep_ms(5);
}

static void test_kill_mid_stream(void **state)
{
    (void)state;
    const char *topic = "crash";
    const char *topic_cfg[] = {"flush.messages=1", NULL};
    tc_create_topic(&broker, topic, PARTS, topic_cfg);
    ctx_t *x = calloc(1, sizeof *x);
    x->sent = calloc(RECORDS, sizeof *x->sent);
    x->topic = topic;
    const char *pairs[] = {"acks=all", "enable.idempotence=true", "retry.backoff.ms=50",
                           "request.timeout.ms=5000", "linger.ms=2", NULL};
    rn_conf_t *conf = tc_conf(&broker, pairs);
    char err[256];
    assert_int_equal(rn_producer_new(conf, on_delivery, x, &x->p, err, sizeof err), RN_OK);
    rn_conf_free(conf);

    pthread_t t;
    pthread_create(&t, NULL, produce, x);
    for (int k = 1; k <= KILLS; k++) {
        wait_reported(x, (uint64_t)RECORDS * k / (KILLS + 2));
        uint64_t sent = x->sent_count, reported = x->reported;
        rn_h_broker_kill(&broker);
        fprintf(stderr, "kill %d: %llu sent, %llu reported, %llu in flight or queued\n", k,
                (unsigned long long)sent, (unsigned long long)reported,
                (unsigned long long)(sent - reported));
        if (sent == RECORDS && reported == RECORDS)
            fail_msg("the stream ended before kill %d; the test proves nothing", k);
        sleep_ms(300);
        if (rn_h_broker_restart(&broker) != 0)
            fail_msg("broker did not restart");
    }
    pthread_join(t, NULL);
    if (x->send_err != RN_OK)
        fail_msg("send failed: %s", rn_err_str(x->send_err));
    assert_int_equal(rn_producer_flush(x->p, 120000), RN_OK);
    assert_int_equal(rn_producer_close(x->p, 10000), RN_OK);
    fprintf(stderr, "%llu acknowledged, %llu failed\n", (unsigned long long)x->ok,
            (unsigned long long)x->failed);
    if (x->failed)
        rn_h_broker_dump_log(&broker);
    assert_int_equal(x->reported, RECORDS);
    /* The outages are far shorter than delivery.timeout.ms: every record gets through. */
    assert_int_equal(x->failed, 0);

    tc_check_t check;
    tc_read_back(&broker, topic, PARTS, x->sent, RECORDS, &check);
    fprintf(stderr, "read back %llu records, %llu duplicates, %llu acknowledged but missing\n",
            (unsigned long long)check.records, (unsigned long long)check.duplicates,
            (unsigned long long)check.acked_missing);
    if (check.duplicates || check.acked_missing || check.bad)
        rn_h_broker_dump_log(&broker);
    assert_int_equal(check.duplicates, 0);
    assert_int_equal(check.acked_missing, 0);
    assert_int_equal(check.bad, 0);
    assert_int_equal(check.records, x->ok);
    free(x->sent);
    free(x);
}

/* Sends acks=0 records as fast as the producer takes them until told to stop. */
typedef struct firehose {
    rn_producer_t *p;
    _Atomic bool stop;
    _Atomic uint64_t sent;
} firehose_t;

static void *firehose(void *arg)
{
    firehose_t *f = arg;
    static const char value[100];
    while (!f->stop) {
        rn_message_t m = {.topic = "pipe", .partition = RN_PARTITION_ANY, .value = value,
                          .value_len = sizeof value};
        if (rn_producer_send(f->p, &m, 10) == RN_OK)
            f->sent++;
    }
    return NULL;
}

/*
 * The library writes to sockets from its own I/O thread. When the broker dies, a write to
 * its reset connection fails with EPIPE and - unless the library keeps the signal away from
 * the application - raises SIGPIPE, whose default action kills this test process. The
 * producer writes without pause (acks=0) while the broker is killed several times, so some
 * write lands after the reset; the process must survive and the producer must carry on.
 */
static void test_kill_while_writing(void **state)
{
    (void)state;
    tc_create_topic(&broker, "pipe", 2, NULL);
    const char *pairs[] = {"acks=0", "linger.ms=0", "batch.size=4096", "retry.backoff.ms=20",
                           "request.timeout.ms=2000", "delivery.timeout.ms=3000", NULL};
    rn_conf_t *conf = tc_conf(&broker, pairs);
    firehose_t f = {0};
    assert_int_equal(rn_producer_new(conf, NULL, NULL, &f.p, NULL, 0), RN_OK);
    rn_conf_free(conf);
    pthread_t t;
    pthread_create(&t, NULL, firehose, &f);
    for (int k = 0; k < 6; k++) {
        uint64_t before = f.sent;
        for (int waited = 0; f.sent < before + 20000 && waited < 10000; waited += 5)
            sleep_ms(5);
        rn_h_broker_kill(&broker);
        sleep_ms(200);
        if (rn_h_broker_restart(&broker) != 0)
            fail_msg("broker did not restart");
    }
    uint64_t before = f.sent;
    for (int waited = 0; f.sent < before + 20000 && waited < 10000; waited += 5)
        sleep_ms(5);
    f.stop = true;
    pthread_join(t, NULL);
    assert_true(f.sent >= before + 20000); /* still sending after the last restart */
    rn_producer_close(f.p, 5000);
}

static int setup(void **state)
{
    (void)state;
    tc_broker_start(&broker, "client-crash", NULL);
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
        cmocka_unit_test(test_kill_mid_stream),
        cmocka_unit_test(test_kill_while_writing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
