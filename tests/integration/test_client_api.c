/*
 * The rest of librunnel's surface against a real broker: admin (create, duplicate create,
 * describe, delete), send errors, headers and null keys/values round-trip, acks=0, many
 * threads sending through one producer, buffer.memory (QUEUE_FULL and blocking), close
 * with records still queued while the broker is stopped (SIGSTOP), and the consumer's own
 * checksum verification.
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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "rawclient.h"
#include "test_client_util.h"

static rn_hbroker_t broker;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rn_admin_t *admin(void)
{
    rn_conf_t *conf = tc_conf(&broker, NULL);
    rn_admin_t *a;
    assert_int_equal(rn_admin_new(conf, &a, NULL, 0), RN_OK);
    rn_conf_free(conf);
    return a;
}

static void test_admin(void **state)
{
    (void)state;
    rn_admin_t *a = admin();
    char err[256] = "";
    const char *cfg[] = {"retention.ms=3600000", "segment.bytes=1048576", NULL};
    assert_int_equal(rn_admin_create_topic(a, "adm", 3, 1, cfg, 5000, err, sizeof err), RN_OK);
    err[0] = '\0';
    assert_int_equal(rn_admin_create_topic(a, "adm", 3, 1, NULL, 5000, err, sizeof err),
                     RN_ERR_TOPIC_ALREADY_EXISTS);
    assert_true(strlen(err) > 0);
    const char *bad_cfg[] = {"no.such.setting=1", NULL};
    assert_int_not_equal(rn_admin_create_topic(a, "adm2", 1, 1, bad_cfg, 5000, err, sizeof err),
                         RN_OK);
    assert_true(strlen(err) > 0);

    rn_metadata_t *md;
    assert_int_equal(rn_admin_describe(a, "adm", 5000, &md), RN_OK);
    assert_int_equal(md->broker_count, 1);
    assert_int_equal(md->brokers[0].id, broker.node_id);
    char addr[80];
    snprintf(addr, sizeof addr, "%s:%d", md->brokers[0].host, md->brokers[0].port);
    assert_string_equal(addr, broker.addr);
    assert_int_equal(md->topic_count, 1);
    const rn_topic_info_t *t = &md->topics[0];
    assert_string_equal(t->name, "adm");
    assert_int_equal(t->err, RN_OK);
    assert_int_equal(t->partition_count, 3);
    for (size_t i = 0; i < t->partition_count; i++) {
        assert_int_equal(t->partitions[i].leader, broker.node_id);
        assert_int_equal(t->partitions[i].err, RN_OK);
        assert_int_equal(t->partitions[i].high_watermark, 0);
    }
    bool found = false;
    for (size_t i = 0; i < t->config_count; i++)
        found |= strcmp(t->config_keys[i], "retention.ms") == 0 &&
                 strcmp(t->config_values[i], "3600000") == 0;
    assert_true(found);
    rn_metadata_free(md);

    assert_int_equal(rn_admin_describe(a, NULL, 5000, &md), RN_OK);
    found = false;
    for (size_t i = 0; i < md->topic_count; i++)
        found |= strcmp(md->topics[i].name, "adm") == 0;
    assert_true(found);
    rn_metadata_free(md);

    assert_int_equal(rn_admin_delete_topic(a, "adm", 5000, err, sizeof err), RN_OK);
    md = NULL;
    assert_int_equal(rn_admin_describe(a, "adm", 5000, &md), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_null(md);
    assert_int_equal(rn_admin_delete_topic(a, "adm", 5000, err, sizeof err),
                     RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_admin_close(a);
}

typedef struct reports {
    _Atomic int ok, failed, closed;
    _Atomic int64_t last_offset;
} reports_t;

static void count(const rn_delivery_t *r, void *arg)
{
    reports_t *x = arg;
    if (r->err == RN_OK)
        x->ok++;
    else
        x->failed++;
    if (r->err == RN_ERR_CLOSED)
        x->closed++;
    x->last_offset = r->offset;
}

static rn_producer_t *producer(reports_t *x, const char *const *pairs)
{
    rn_conf_t *conf = tc_conf(&broker, pairs);
    rn_producer_t *p;
    char err[256];
    assert_int_equal(rn_producer_new(conf, count, x, &p, err, sizeof err), RN_OK);
    rn_conf_free(conf);
    return p;
}

/* A consumer with the extra settings pairs (NULL-terminated, may be NULL), assigned to
 * partitions 0 .. partitions-1 of topic from the beginning. */
static rn_consumer_t *consumer_from_start(const char *topic, int partitions,
                                          const char *const *pairs)
{
    rn_conf_t *conf = tc_conf(&broker, pairs);
    rn_consumer_t *c;
    assert_int_equal(rn_consumer_new(conf, &c, NULL, 0), RN_OK);
    rn_conf_free(conf);
    for (int part = 0; part < partitions; part++)
        assert_int_equal(rn_consumer_assign(c, topic, part, RN_OFFSET_BEGINNING), RN_OK);
    return c;
}

/* Polls c until n records arrived or ms passed, handing each to check with its index (counting
 * from 0 across polls); returns how many arrived. */
static int read_each(rn_consumer_t *c, int n, int64_t ms,
                     void (*check)(const rn_record_view_t *r, int i))
{
    int got = 0;
    for (int64_t deadline = mono_ms() + ms; got < n && mono_ms() < deadline;) {
        const rn_record_view_t *r;
        size_t k;
        assert_int_equal(rn_consumer_poll(c, 100, 1000, &r, &k), RN_OK);
        for (size_t j = 0; j < k; j++, got++)
            check(&r[j], got);
    }
    return got;
}

static void test_send_errors(void **state)
{
    (void)state;
    tc_create_topic(&broker, "errs", 2, NULL);
    reports_t x = {0};
    rn_producer_t *p = producer(&x, NULL);
    rn_message_t m = {.topic = "no-such-topic", .partition = RN_PARTITION_ANY, .value = "v",
                      .value_len = 1};
    assert_int_equal(rn_producer_send(p, &m, 0), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    m.topic = "errs";
    m.partition = 2;
    assert_int_equal(rn_producer_send(p, &m, 0), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    m.partition = 1;
    assert_int_equal(rn_producer_send(p, &m, 0), RN_OK);
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.last_offset, 0);
}

static void check_shape(size_t i, const rn_record_view_t *r)
{
    assert_int_equal(r->offset, (int64_t)i);
    if (i == 0) {
        assert_int_equal(r->timestamp, 1234);
        assert_int_equal(r->key_len, 1);
        assert_memory_equal(r->key, "k", 1);
        assert_int_equal(r->header_count, 4);
        const rn_header_t *h = r->headers;
        assert_int_equal(h[0].key_len, 1);
        assert_memory_equal(h[0].key, "a", 1);
        assert_int_equal(h[0].value_len, 1);
        assert_memory_equal(h[0].value, "1", 1);
        assert_null(h[1].value);
        assert_int_equal(h[1].value_len, -1);
        assert_non_null(h[2].value);
        assert_int_equal(h[2].value_len, 0);
        assert_int_equal(h[3].key_len, 0);
        assert_int_equal(h[3].value_len, 6);
        assert_memory_equal(h[3].value, "no key", 6);
    } else if (i == 1) {
        assert_null(r->key);
        assert_int_equal(r->key_len, -1);
        assert_null(r->value);
        assert_int_equal(r->value_len, -1);
        assert_int_equal(r->header_count, 0);
    } else {
        assert_non_null(r->key);
        assert_int_equal(r->key_len, 0);
        assert_non_null(r->value);
        assert_int_equal(r->value_len, 0);
    }
}

static void test_headers_and_nulls(void **state)
{
    (void)state;
    tc_create_topic(&broker, "shapes", 1, NULL);
    rn_producer_t *p = producer(&(reports_t){0}, NULL);
    rn_header_t hs[] = {
        {"a", 1, "1", 1},
        {"null", 4, NULL, -1},
        {"empty", 5, "", 0},
        {"", 0, "no key", 6},
    };
    rn_message_t ms[] = {
        {.topic = "shapes", .partition = 0, .key = "k", .key_len = 1, .value = "v", .value_len = 1,
         .headers = hs, .header_count = 4, .timestamp = 1234},
        {.topic = "shapes", .partition = 0, .key = NULL, .value = NULL}, /* tombstone, no key */
        {.topic = "shapes", .partition = 0, .key = "", .key_len = 0, .value = "", .value_len = 0},
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(rn_producer_send(p, &ms[i], -1), RN_OK);
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);

    const char *pairs[] = {"auto.offset.reset=earliest", NULL};
    rn_consumer_t *c = consumer_from_start("shapes", 1, pairs);
    size_t got = 0;
    int64_t deadline = mono_ms() + 10000;
    while (got < 3 && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 100, 10, &r, &n), RN_OK);
        for (size_t i = 0; i < n; i++)
            check_shape(got++, &r[i]); /* views are valid until the next poll only */
    }
    assert_int_equal(got, 3);
    rn_consumer_close(c);
}

static void test_acks0(void **state)
{
    (void)state;
    tc_create_topic(&broker, "acks0", 1, NULL);
    reports_t x = {.last_offset = 99};
    const char *pairs[] = {"acks=0", NULL};
    rn_producer_t *p = producer(&x, pairs);
    for (int i = 0; i < 5000; i++) {
        rn_message_t m = {.topic = "acks0", .partition = 0, .value = "v", .value_len = 1};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    assert_int_equal(x.ok, 5000);
    assert_int_equal(x.last_offset, -1);
    /* Written means sent, not stored: wait for the broker to have them all. */
    rn_admin_t *a = admin();
    int64_t end = 0, deadline = mono_ms() + 5000;
    while (end < 5000 && mono_ms() < deadline)
        assert_int_equal(rn_admin_list_offsets(a, "acks0", 0, RN_OFFSET_END, &end, 5000), RN_OK);
    assert_int_equal(end, 5000);
    rn_admin_close(a);
}

#define THREADS 4
#define PER_THREAD 50000

typedef struct worker {
    rn_producer_t *p;
    int id;
} worker_t;

static void *send_many(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char key[16], value[16];
        int kl = snprintf(key, sizeof key, "t%d-%d", w->id, i % 64);
        int vl = snprintf(value, sizeof value, "%d:%d", w->id, i);
        rn_message_t m = {.topic = "threads", .partition = RN_PARTITION_ANY, .key = key,
                          .key_len = (size_t)kl, .value = value, .value_len = (size_t)vl};
        if (rn_producer_send(w->p, &m, -1) != RN_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    tc_create_topic(&broker, "threads", 3, NULL);
    reports_t x = {0};
    rn_producer_t *p = producer(&x, NULL);
    pthread_t t[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){p, i};
        pthread_create(&t[i], NULL, send_many, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    assert_int_equal(rn_producer_close(p, 30000), RN_OK);
    assert_int_equal(x.ok, THREADS * PER_THREAD);

    /* Per partition, each thread's records appear in its send order. */
    const char *pairs[] = {"auto.offset.reset=earliest", NULL};
    rn_consumer_t *c = consumer_from_start("threads", 3, pairs);
    int last[3][THREADS];
    memset(last, -1, sizeof last);
    int total = 0;
    int64_t deadline = mono_ms() + 30000;
    while (total < THREADS * PER_THREAD && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 200, 5000, &r, &n), RN_OK);
        for (size_t k = 0; k < n; k++) {
            int id, i;
            char v[16];
            memcpy(v, r[k].value, (size_t)r[k].value_len);
            v[r[k].value_len] = '\0';
            assert_int_equal(sscanf(v, "%d:%d", &id, &i), 2);
            assert_true(i > last[r[k].partition][id]);
            last[r[k].partition][id] = i;
            total++;
        }
    }
    assert_int_equal(total, THREADS * PER_THREAD);
    rn_consumer_close(c);
}

static void test_buffer_full_and_close(void **state)
{
    (void)state;
    tc_create_topic(&broker, "full", 1, NULL);
    reports_t x = {0};
    const char *pairs[] = {"buffer.memory=65536", "request.timeout.ms=2000", NULL};
    rn_producer_t *p = producer(&x, pairs);
    static char value[1000];
    rn_message_t m = {.topic = "full", .partition = 0, .value = value, .value_len = sizeof value};
    assert_int_equal(rn_producer_send(p, &m, -1), RN_OK); /* topic known before the stall */
    assert_int_equal(rn_producer_flush(p, 5000), RN_OK);

    rn_h_broker_signal(&broker, SIGSTOP);
    int sent = 0;
    rn_err_t e;
    while ((e = rn_producer_send(p, &m, 0)) == RN_OK)
        sent++;
    assert_int_equal(e, RN_ERR_QUEUE_FULL);
    assert_true(sent > 10 && sent < 100);
    int64_t t0 = mono_ms();
    assert_int_equal(rn_producer_send(p, &m, 150), RN_ERR_QUEUE_FULL);
    assert_true(mono_ms() - t0 >= 140);
    /* close gives up on what the stalled broker holds: every record is reported, failed. */
    assert_int_equal(rn_producer_flush(p, 100), RN_ERR_TIMED_OUT);
    assert_int_equal(rn_producer_close(p, 100), RN_ERR_TIMED_OUT);
    rn_h_broker_signal(&broker, SIGCONT);
    assert_int_equal(x.ok + x.failed, sent + 1);
    assert_int_equal(x.failed, sent);
    assert_int_equal(x.closed, sent);

    /* Blocking: room appears as soon as the broker answers again. */
    p = producer(&x, pairs);
    assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    assert_int_equal(rn_producer_flush(p, 5000), RN_OK);
    rn_h_broker_signal(&broker, SIGSTOP);
    while (rn_producer_send(p, &m, 0) == RN_OK)
        ;
    rn_h_broker_signal(&broker, SIGCONT);
    t0 = mono_ms();
    assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    assert_true(mono_ms() - t0 < 5000);
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
}

/* Reads partition 0 of topic from the beginning: the values, in order, as one string. */
static void read_values(const char *topic, char *out, size_t cap, size_t want)
{
    const char *pairs[] = {"auto.offset.reset=earliest", NULL};
    rn_consumer_t *c = consumer_from_start(topic, 1, pairs);
    size_t len = 0, got = 0;
    out[0] = '\0';
    int64_t deadline = mono_ms() + 10000;
    while ((got < want || !rn_consumer_at_end(c, topic, 0)) && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 100, 100, &r, &n), RN_OK);
        for (size_t i = 0; i < n; i++, got++) {
            int vl = r[i].value_len > 40 ? 40 : r[i].value_len;
            len += (size_t)snprintf(out + len, cap - len, "%.*s,", vl, (const char *)r[i].value);
        }
    }
    rn_consumer_close(c);
}

/*
 * A sequenced batch that fails for good (MESSAGE_TOO_LARGE) leaves a gap in the producer's
 * sequences: the producer bumps its epoch and carries on; later records all arrive, once.
 */
static void test_gap_then_recover(void **state)
{
    (void)state;
    const char *cfg[] = {"max.message.bytes=2000", NULL};
    tc_create_topic(&broker, "gap", 1, cfg);
    reports_t x = {0};
    const char *pairs[] = {"linger.ms=0", NULL};
    rn_producer_t *p = producer(&x, pairs);
    static char big[3000];
    memset(big, 'b', sizeof big);
    rn_message_t a = {.topic = "gap", .partition = 0, .value = "a0", .value_len = 2};
    assert_int_equal(rn_producer_send(p, &a, -1), RN_OK);
    assert_int_equal(rn_producer_flush(p, 5000), RN_OK);
    rn_message_t b = {.topic = "gap", .partition = 0, .value = big, .value_len = sizeof big};
    assert_int_equal(rn_producer_send(p, &b, -1), RN_OK);
    assert_int_equal(rn_producer_flush(p, 5000), RN_OK);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.failed, 1);
    char v[8];
    for (int i = 1; i <= 20; i++) {
        rn_message_t c = {.topic = "gap", .partition = 0, .value = v,
                          .value_len = (size_t)snprintf(v, sizeof v, "c%d", i)};
        assert_int_equal(rn_producer_send(p, &c, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    assert_int_equal(x.ok, 21);
    char all[512];
    read_values("gap", all, sizeof all, 21);
    assert_string_equal(all, "a0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12,c13,c14,c15,c16,c17,c18,"
                             "c19,c20,");
}

/*
 * Records that outlive delivery.timeout.ms while the broker is stalled fail with TIMED_OUT;
 * once it is back, the producer (new epoch) delivers new records, each exactly once.
 */
static void test_delivery_timeout(void **state)
{
    (void)state;
    tc_create_topic(&broker, "expire", 1, NULL);
    reports_t x = {0};
    const char *pairs[] = {"delivery.timeout.ms=600", "request.timeout.ms=200",
                           "retry.backoff.ms=20", "linger.ms=0", NULL};
    rn_producer_t *p = producer(&x, pairs);
    rn_message_t m = {.topic = "expire", .partition = 0, .value = "first", .value_len = 5};
    assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    assert_int_equal(rn_producer_flush(p, 5000), RN_OK);
    rn_h_broker_signal(&broker, SIGSTOP);
    for (int i = 0; i < 5; i++) {
        m.value = "lost?";
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    }
    int64_t t0 = mono_ms();
    assert_int_equal(rn_producer_flush(p, 10000), RN_OK);
    int64_t took = mono_ms() - t0;
    rn_h_broker_signal(&broker, SIGCONT);
    assert_true(took >= 500 && took < 5000);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.failed, 5);
    char v[8];
    for (int i = 1; i <= 10; i++) {
        rn_message_t c = {.topic = "expire", .partition = 0, .value = v,
                          .value_len = (size_t)snprintf(v, sizeof v, "n%d", i)};
        assert_int_equal(rn_producer_send(p, &c, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    assert_int_equal(x.ok, 11);
    /* The timed-out records may or may not have landed; the new ones land once, in order. */
    char all[512];
    read_values("expire", all, sizeof all, 11);
    const char *tail = "n1,n2,n3,n4,n5,n6,n7,n8,n9,n10,";
    size_t len = strlen(all), tl = strlen(tail);
    assert_true(len >= tl);
    assert_string_equal(all + len - tl, tail);
    assert_int_equal(strncmp(all, "first,", 6), 0);
}

/*
 * The consumer verifies every batch's checksum itself: the broker serves fetches straight from
 * the segment file and never re-hashes. A value byte flipped on disk (behind the broker's
 * back) makes poll return the good records before the batch, then RN_ERR_CHECKSUM; the
 * partition stays at that batch until a seek moves past it.
 */
static void test_consumer_verifies_checksums(void **state)
{
    (void)state;
    tc_create_topic(&broker, "rot", 1, NULL);
    rn_producer_t *p = producer(&(reports_t){0}, NULL);
    const char *values[] = {"before-0", "victim-1", "after-2"};
    for (int i = 0; i < 3; i++) { /* one batch each */
        rn_message_t m = {.topic = "rot", .partition = 0, .value = values[i],
                          .value_len = strlen(values[i])};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
        assert_int_equal(rn_producer_flush(p, 5000), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 5000), RN_OK);

    char path[700];
    snprintf(path, sizeof path, "%s/rot-0/00000000000000000000.log", broker.data_dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    char *at = memmem(buf, n, "victim-1", 8);
    assert_non_null(at);
    fseek(f, (long)(at - buf), SEEK_SET);
    fputc('V', f);
    fclose(f);

    const char *pairs[] = {"fetch.max.wait.ms=50", NULL};
    rn_consumer_t *c = consumer_from_start("rot", 1, pairs);
    size_t got = 0;
    rn_err_t err = RN_OK;
    int64_t deadline = mono_ms() + 10000;
    while (err == RN_OK && mono_ms() < deadline) {
        const rn_record_view_t *r;
        size_t cnt;
        err = rn_consumer_poll(c, 100, 10, &r, &cnt);
        for (size_t i = 0; i < cnt; i++, got++) {
            assert_int_equal(r[i].offset, 0);
            assert_memory_equal(r[i].value, "before-0", 8);
        }
    }
    assert_int_equal(got, 1);
    assert_int_equal(err, RN_ERR_CHECKSUM);
    int64_t pos = -1;
    assert_int_equal(rn_consumer_position(c, "rot", 0, &pos), RN_OK);
    assert_int_equal(pos, 1);

    assert_int_equal(rn_consumer_seek(c, "rot", 0, 2), RN_OK);
    const rn_record_view_t *r = NULL;
    size_t cnt = 0;
    deadline = mono_ms() + 10000;
    while (cnt == 0 && mono_ms() < deadline)
        assert_int_equal(rn_consumer_poll(c, 100, 10, &r, &cnt), RN_OK);
    assert_int_equal(cnt, 1);
    assert_int_equal(r[0].offset, 2);
    assert_memory_equal(r[0].value, "after-2", 7);
    rn_consumer_close(c);
}

/* Record i of test_busy_poll: offset i, value "<i>". */
static void check_busy(const rn_record_view_t *r, int i)
{
    char want[16];
    int wl = snprintf(want, sizeof want, "%d", i);
    assert_int_equal(r->offset, i);
    assert_int_equal(r->value_len, wl);
    assert_memory_equal(r->value, want, (size_t)wl);
}

/*
 * io.busy.poll.us: with the I/O threads polling instead of sleeping while answers are due,
 * one-at-a-time sends (send, flush, next) are acknowledged in order, a consumer doing the same
 * reads every record back once and in order, and both close promptly (the polling loop still
 * ends when the handle stops). The I/O thread keeps running right after an answer and goes to
 * sleep io.busy.poll.us after the last socket activity.
 */
static void test_busy_poll(void **state)
{
    (void)state;
    enum { N = 2000 };
    tc_create_topic(&broker, "busy", 1, NULL);
    reports_t x = {.last_offset = -2};
    const char *ppairs[] = {"io.busy.poll.us=200", "acks=1", "linger.ms=0", NULL};
    rn_producer_t *p = producer(&x, ppairs);
    for (int i = 0; i < N; i++) {
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", i);
        rn_message_t m = {.topic = "busy", .partition = 0, .value = v, .value_len = (size_t)vl};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
        assert_int_equal(rn_producer_flush(p, 10000), RN_OK);
        assert_int_equal(x.ok, i + 1);
        assert_int_equal(x.last_offset, i);
    }
    int64_t t0 = mono_ms();
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    assert_true(mono_ms() - t0 < 5000);

    /* The polling costs CPU right after socket activity, and none once the handle is idle. */
    const char *long_poll[] = {"io.busy.poll.us=400000", "acks=1", "linger.ms=0", NULL};
    p = producer(&x, long_poll);
    rn_message_t m = {.topic = "busy", .partition = 0, .value = "x", .value_len = 1};
    assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    assert_int_equal(rn_producer_flush(p, 10000), RN_OK);
    pid_t self = (pid_t)syscall(SYS_gettid);
    double polling = rn_h_running_share(getpid(), self, 200);
    usleep(400 * 1000);
    double idle = rn_h_running_share(getpid(), self, 200);
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    if (polling < 0.5 || idle > 0.1)
        fail_msg("share of samples with the I/O thread running or runnable: %.2f right after "
                 "the ack (want >= 0.5), %.2f once idle (want <= 0.1)", polling, idle);

    const char *cpairs[] = {"io.busy.poll.us=200", "auto.offset.reset=earliest", NULL};
    rn_consumer_t *c = consumer_from_start("busy", 1, cpairs);
    assert_int_equal(read_each(c, N, 10000, check_busy), N);
    t0 = mono_ms();
    rn_consumer_close(c);
    assert_true(mono_ms() - t0 < 5000);
}

/* Delivery reports of one partition: each must be the next offset, with the next opaque. */
typedef struct ordered {
    _Atomic int ok, failed, out_of_order;
    int64_t next_offset;
    intptr_t next_opaque;
} ordered_t;

static void in_order(const rn_delivery_t *r, void *arg)
{
    ordered_t *o = arg;
    if (r->err != RN_OK) {
        o->failed++;
        return;
    }
    if (r->offset != o->next_offset || (intptr_t)r->opaque != o->next_opaque)
        o->out_of_order++;
    o->next_offset = r->offset + 1;
    o->next_opaque = (intptr_t)r->opaque + 1;
    o->ok++;
}

/* Record i of the split tests: key "k<i>", a 100-byte value that starts with i and does not
 * compress, header "i" = i, timestamp 1000 + i. */
static size_t split_value(int i, uint8_t *v)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
    for (size_t j = 0; j < 100; j++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[j] = (uint8_t)x;
    }
    memcpy(v, &i, sizeof i);
    return 100;
}

/* Record i of the split tests read back: offset, timestamp, key, value and header. */
static void check_split(const rn_record_view_t *r, int i)
{
    uint8_t want[100];
    char key[16], hv[16];
    int kl = snprintf(key, sizeof key, "k%d", i);
    int hl = snprintf(hv, sizeof hv, "%d", i);
    assert_int_equal(r->offset, i);
    assert_int_equal(r->timestamp, 1000 + i);
    assert_int_equal(r->key_len, kl);
    assert_memory_equal(r->key, key, (size_t)kl);
    assert_int_equal(r->value_len, split_value(i, want));
    assert_memory_equal(r->value, want, 100);
    assert_int_equal(r->header_count, 1);
    assert_int_equal(r->headers[0].value_len, hl);
    assert_memory_equal(r->headers[0].value, hv, (size_t)hl);
}

/*
 * The raw batches of partition 0 of topic, n records in all: many (the producer split them),
 * none over 4 KiB, all from one producer id and epoch (a wrong sequence in a split would have
 * made the broker answer OUT_OF_ORDER_SEQUENCE_NUMBER and the producer start over with a new
 * id), and each batch's base sequence equal to its base offset (the producer's first record
 * got sequence 0 at offset 0, and no sequence was skipped or reused).
 */
static void check_split_batches(const char *topic, int n)
{
    rn_rc_t rc;
    assert_int_equal(rn_rc_connect(&rc, broker.addr), 0);
    int64_t offset = 0, pid = -1, batches = 0;
    int epoch = -1;
    while (offset < n) {
        Runnel__Response *r = rn_rc_fetch(&rc, topic, 0, offset, 1 << 20, 1 << 20, 1, 100, 5000);
        assert_non_null(r);
        Runnel__FetchPartitionData *d = rn_rc_fetch_part(r);
        assert_non_null(d);
        assert_int_equal(d->error, 0);
        const uint8_t *pos = d->records.data, *end = d->records.data + d->records.len;
        while (pos < end) {
            rn_batch_header_t h;
            assert_int_equal(rn_batch_parse_header(pos, (size_t)(end - pos), &h), RN_OK);
            assert_true(rn_batch_total_size(&h) <= 4096);
            if (pid < 0) {
                pid = h.producer_id;
                epoch = h.producer_epoch;
            }
            assert_true(pid >= 0);
            assert_int_equal(h.producer_id, pid);
            assert_int_equal(h.producer_epoch, epoch);
            assert_int_equal(h.base_offset, offset);
            assert_int_equal(h.base_sequence, h.base_offset);
            offset += h.record_count;
            batches++;
            pos += rn_batch_total_size(&h);
        }
        rn_rc_free(r);
    }
    assert_int_equal(offset, n);
    assert_true(batches >= n / 40); /* at most about 35 records of 100 bytes fit in 4 KiB */
    rn_rc_close(&rc);
}

/*
 * A topic whose max.message.bytes (4 KiB) is far below batch.size: the broker refuses the
 * producer's batches as MESSAGE_TOO_LARGE and the producer splits them (again and again)
 * until they fit, with several batches in flight behind the one refused. Every record is
 * acknowledged once, in send order, at consecutive offsets, and reads back with its key,
 * value, header and timestamp; with zstd as without compression, and with retries=0 (neither a
 * split nor the echoes it causes count as retries).
 */
static void split_case(const char *topic, const char *codec)
{
    enum { N = 3000 };
    const char *cfg[] = {"max.message.bytes=4096", NULL};
    tc_create_topic(&broker, topic, 1, cfg);
    char compression[64];
    snprintf(compression, sizeof compression, "compression.type=%s", codec);
    /* retries=0: a split and the out-of-order echoes behind it must not use up retries. */
    const char *pairs[] = {"linger.ms=20", "retries=0", compression, NULL};
    rn_conf_t *conf = tc_conf(&broker, pairs);
    ordered_t o = {0};
    rn_producer_t *p;
    assert_int_equal(rn_producer_new(conf, in_order, &o, &p, NULL, 0), RN_OK);
    rn_conf_free(conf);
    for (int i = 0; i < N; i++) {
        uint8_t v[100];
        char key[16], hv[16];
        int kl = snprintf(key, sizeof key, "k%d", i);
        int hl = snprintf(hv, sizeof hv, "%d", i);
        rn_header_t h = {"i", 1, hv, hl};
        rn_message_t m = {.topic = topic, .partition = 0, .key = key, .key_len = (size_t)kl,
                          .value = v, .value_len = split_value(i, v), .headers = &h,
                          .header_count = 1, .timestamp = 1000 + i,
                          .opaque = (void *)(intptr_t)i};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 30000), RN_OK);
    assert_int_equal(o.failed, 0);
    assert_int_equal(o.out_of_order, 0);
    assert_int_equal(o.ok, N);
    assert_int_equal(o.next_offset, N);

    rn_consumer_t *c = consumer_from_start(topic, 1, NULL);
    assert_int_equal(read_each(c, N, 20000, check_split), N);
    assert_true(rn_consumer_at_end(c, topic, 0));
    rn_consumer_close(c);
    check_split_batches(topic, N);
}

static void test_split_too_large(void **state)
{
    (void)state;
    split_case("split", "none");
    split_case("splitz", "zstd");
}

static int setup(void **state)
{
    (void)state;
    tc_broker_start(&broker, "client-api", NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rn_h_broker_signal(&broker, SIGCONT);
    tc_broker_finish(&broker);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_send_errors),
        cmocka_unit_test(test_headers_and_nulls),
        cmocka_unit_test(test_acks0),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_buffer_full_and_close),
        cmocka_unit_test(test_gap_then_recover),
        cmocka_unit_test(test_delivery_timeout),
        cmocka_unit_test(test_consumer_verifies_checksums),
        cmocka_unit_test(test_busy_poll),
        cmocka_unit_test(test_split_too_large),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
