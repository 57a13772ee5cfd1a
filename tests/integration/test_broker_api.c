/*
 * test_broker_api.c - every API of runnel-broker over raw frames: ApiVersions, Metadata,
 * CreateTopics validation, Produce/Fetch round trips, Fetch byte limits per partition and per
 * response, ListOffsets, InitProducerId, DeleteTopics, pipelining order, acks=0, the command
 * line's exit codes, the config file and the log format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

typedef struct fixture {
    char *dir;
    char data[600];
    rn_hbroker_t b;
    rn_rc_t c;
} fixture_t;

static fixture_t *start(const char *const *settings)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = rn_h_tmpdir("broker-api");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    assert_int_equal(rn_rc_broker_start(&f->b, f->data, settings), 0);
    assert_int_equal(rn_rc_connect(&f->c, f->b.addr), 0);
    return f;
}

static void stop(fixture_t *f)
{
    rn_rc_close(&f->c);
    int status = rn_h_broker_stop(&f->b);
    if (status != 0)
        rn_h_broker_dump_log(&f->b);
    assert_int_equal(status, 0);
    rn_h_broker_release(&f->b);
    rn_h_rmtree(f->dir);
    free(f->dir);
    free(f);
}

static void produce_values(rn_rc_t *c, const char *topic, uint32_t part, int batches, int per,
                           const char *prefix)
{
    for (int i = 0; i < batches; i++) {
        rn_buf_t b = RN_BUF_INIT;
        rn_rc_make_batch(&b, -1, -1, -1, per, prefix, i * per);
        int64_t base = -1;
        assert_int_equal(rn_rc_produce(c, topic, part, 1, b.data, b.len, &base), 0);
        rn_buf_free(&b);
    }
}

/* Reads partition part of topic from offset 0: exactly n records, "<prefix>-<offset>" each. */
static void expect_values(rn_rc_t *c, const char *topic, uint32_t part, int n, const char *prefix)
{
    rn_rc_rec_t recs[100];
    assert_true(n <= 100);
    assert_int_equal(rn_rc_fetch_all(c, topic, part, 0, recs, 100), n);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "%s-%d", prefix, i);
        assert_int_equal(recs[i].offset, (uint64_t)i);
        assert_string_equal(recs[i].value, want);
    }
}

/* ------------------------------------------------------------------------ */

/*
 * io.busy.poll.us on the broker: requests are served as usual; right after one the loop keeps
 * running (polling) instead of sleeping, it sleeps again once no request came for that long,
 * and SIGTERM still stops it cleanly (stop() checks the exit status 0).
 */
static void test_busy_poll(void **state)
{
    (void)state;
    const char *settings[] = {"io.busy.poll.us=400000", NULL};
    fixture_t *f = start(settings);
    assert_int_equal(rn_rc_create_topic(&f->c, "bp", 1, 1, NULL, NULL, 0), 0);
    produce_values(&f->c, "bp", 0, 20, 5, "p");
    expect_values(&f->c, "bp", 0, 100, "p");
    assert_int_equal(rn_rc_list_offset(&f->c, "bp", 0, -1), 100);
    double polling = rn_h_running_share(f->b.pid, 0, 200);
    usleep(400 * 1000);
    double idle = rn_h_running_share(f->b.pid, 0, 200);
    if (polling < 0.5 || idle > 0.1)
        fail_msg("share of samples with the broker running or runnable: %.2f right after a "
                 "request (want >= 0.5), %.2f once idle (want <= 0.1)", polling, idle);
    stop(f);
}

static void test_api_versions(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    Runnel__ApiVersionsRequest body = RUNNEL__API_VERSIONS_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_API_VERSIONS;
    req.api_versions = &body;
    Runnel__Response *r = rn_rc_call(&f->c, &req, RUNNEL__API_KEY__API_VERSIONS, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, 0);
    assert_int_equal(r->body_case, RUNNEL__RESPONSE__BODY_API_VERSIONS);
    /* 1..8, then DescribeCluster and ElectLeaders; the broker-to-broker cluster APIs
     * (registration, heartbeat, OffsetForLeaderEpoch, AlterPartition, producer-id blocks)
     * need a quorum */
    assert_int_equal(r->api_versions->n_apis, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(r->api_versions->apis[i]->api,
                         i < 8 ? (int)i + 1 : i == 8 ? RUNNEL__API_KEY__API_DESCRIBE_CLUSTER
                                                     : RUNNEL__API_KEY__API_ELECT_LEADERS);
        assert_int_equal(r->api_versions->apis[i]->max_version, 0);
    }
    rn_rc_free(r);
    stop(f);
}

static void test_create_topic_validation(void **state)
{
    (void)state;
    const char *settings[] = {"num.partitions=3", NULL};
    fixture_t *f = start(settings);
    char msg[512], longname[251];
    memset(longname, 'a', 250);
    longname[250] = '\0';
    const char *bad[] = {"", ".", "..", "a/b", "sp ace", "ü", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rn_rc_create_topic(&f->c, bad[i], 1, 1, NULL, msg, sizeof msg),
                         RUNNEL__ERROR_CODE__ERR_INVALID_TOPIC);
    longname[249] = '\0';
    assert_int_equal(rn_rc_create_topic(&f->c, longname, 1, 1, NULL, msg, sizeof msg), 0);
    assert_int_equal(rn_rc_create_topic(&f->c, "t", 1, 2, NULL, msg, sizeof msg),
                     RUNNEL__ERROR_CODE__ERR_INVALID_REPLICATION_FACTOR);
    const char *badcfg[] = {"retention.ms=soon", NULL};
    assert_int_equal(rn_rc_create_topic(&f->c, "t", 1, 1, badcfg, msg, sizeof msg),
                     RUNNEL__ERROR_CODE__ERR_INVALID_CONFIG);
    assert_non_null(strstr(msg, "retention.ms"));
    const char *unknown[] = {"cleanup.policy.x=1", NULL};
    assert_int_equal(rn_rc_create_topic(&f->c, "t", 1, 1, unknown, msg, sizeof msg),
                     RUNNEL__ERROR_CODE__ERR_INVALID_CONFIG);
    const char *good[] = {"retention.ms=12345", "flush.messages=1", NULL};
    assert_int_equal(rn_rc_create_topic(&f->c, "t.A_b-9", 0, 0, good, msg, sizeof msg), 0);
    assert_int_equal(rn_rc_create_topic(&f->c, "t.A_b-9", 1, 1, NULL, msg, sizeof msg),
                     RUNNEL__ERROR_CODE__ERR_TOPIC_ALREADY_EXISTS);

    /* Metadata: num.partitions applied, leader/replicas/isr = node 1, overrides visible. */
    char *names[] = {"t.A_b-9", "missing"};
    Runnel__MetadataRequest body = RUNNEL__METADATA_REQUEST__INIT;
    body.n_topics = 2;
    body.topics = names;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &body;
    Runnel__Response *r = rn_rc_call(&f->c, &req, RUNNEL__API_KEY__API_METADATA, 5000);
    assert_non_null(r);
    Runnel__MetadataResponse *m = r->metadata;
    assert_int_equal(m->n_brokers, 1);
    assert_int_equal(m->brokers[0]->node_id, 1);
    assert_string_equal(m->brokers[0]->host, "127.0.0.1");
    char port[16];
    snprintf(port, sizeof port, "%u", m->brokers[0]->port);
    assert_string_equal(port, strrchr(f->b.addr, ':') + 1);
    assert_int_equal(m->n_topics, 2);
    Runnel__TopicMetadata *t = m->topics[0];
    assert_int_equal(t->error, 0);
    assert_int_equal(t->n_partitions, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(t->partitions[i]->partition, i);
        assert_int_equal(t->partitions[i]->leader, 1);
        assert_int_equal(t->partitions[i]->n_replicas, 1);
        assert_int_equal(t->partitions[i]->replicas[0], 1);
        assert_int_equal(t->partitions[i]->n_isr, 1);
    }
    bool seen = false;
    for (size_t i = 0; i < t->n_configs; i++)
        seen |= strcmp(t->configs[i]->key, "retention.ms") == 0 &&
                strcmp(t->configs[i]->value, "12345") == 0;
    assert_true(seen);
    assert_int_equal(m->topics[1]->error, RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_rc_free(r);
    stop(f);
}

static void test_produce_fetch_list_offsets(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    assert_int_equal(rn_rc_create_topic(&f->c, "rt", 2, 1, NULL, NULL, 0), 0);
    int64_t before = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - 1;
    }
    produce_values(&f->c, "rt", 1, 10, 5, "v");
    expect_values(&f->c, "rt", 1, 50, "v");
    rn_rc_rec_t recs[100];
    /* Partition 0 stays empty; a fetch at its end is empty and not an error. */
    assert_int_equal(rn_rc_fetch_all(&f->c, "rt", 0, 0, recs, 100), 0);

    assert_int_equal(rn_rc_list_offset(&f->c, "rt", 1, -2), 0);
    assert_int_equal(rn_rc_list_offset(&f->c, "rt", 1, -1), 50);
    assert_int_equal(rn_rc_list_offset(&f->c, "rt", 1, before), 0);
    assert_int_equal(rn_rc_list_offset(&f->c, "rt", 1, before + 3600 * 1000), 50);
    assert_int_equal(rn_rc_list_offset(&f->c, "rt", 7, -1),
                     -1 - RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);

    /* Out of range: the error carries the bounds. */
    Runnel__Response *r = rn_rc_fetch(&f->c, "rt", 1, 51, 0, 0, 0, 0, 5000);
    Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
    assert_non_null(p);
    assert_int_equal(p->error, RUNNEL__ERROR_CODE__ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(p->log_start_offset, 0);
    assert_int_equal(p->high_watermark, 50);
    rn_rc_free(r);

    /* partition_max_bytes 1: exactly the first whole batch (KIP-74); a fetch from inside a
     * batch returns that batch. */
    r = rn_rc_fetch(&f->c, "rt", 1, 7, 1, 0, 0, 0, 5000);
    p = rn_rc_fetch_part(r);
    assert_non_null(p);
    assert_int_equal(p->error, 0);
    assert_int_equal(rn_rc_decode(p->records.data, p->records.len, recs, 100), 5);
    assert_int_equal(recs[0].offset, 5);
    rn_rc_free(r);
    stop(f);
}

/* Bytes of the one batch that holds offset (partition_max_bytes 1 returns exactly it). */
static size_t batch_len(rn_rc_t *c, const char *topic, uint32_t part, int64_t offset)
{
    Runnel__Response *r = rn_rc_fetch(c, topic, part, offset, 1, 0, 0, 0, 5000);
    Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
    assert_non_null(p);
    assert_int_equal(p->error, 0);
    size_t len = p->records.len;
    assert_true(len > 0);
    rn_rc_free(r);
    return len;
}

/* One Fetch of two partitions, each from offset 0 with its own partition_max_bytes. */
static Runnel__Response *fetch_two(rn_rc_t *c, const char *topic, const uint32_t part[2],
                                   const uint32_t part_max[2], uint32_t max_bytes)
{
    Runnel__FetchPartition fp[2], *fpp[2];
    for (int i = 0; i < 2; i++) {
        fp[i] = (Runnel__FetchPartition)RUNNEL__FETCH_PARTITION__INIT;
        fp[i].partition = part[i];
        fp[i].partition_max_bytes = part_max[i];
        fp[i].current_leader_epoch = -1;
        fpp[i] = &fp[i];
    }
    Runnel__FetchTopic ft = RUNNEL__FETCH_TOPIC__INIT, *ftp = &ft;
    ft.name = (char *)topic;
    ft.n_partitions = 2;
    ft.partitions = fpp;
    Runnel__FetchRequest body = RUNNEL__FETCH_REQUEST__INIT;
    body.replica_id = -1;
    body.max_bytes = max_bytes;
    body.n_topics = 1;
    body.topics = &ftp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH;
    req.fetch = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_FETCH, 5000);
    assert_non_null(r);
    assert_int_equal(r->body_case, RUNNEL__RESPONSE__BODY_FETCH);
    assert_int_equal(r->fetch->n_topics, 1);
    assert_int_equal(r->fetch->topics[0]->n_partitions, 2);
    return r;
}

/* Records in the i-th partition of a fetch_two response; asserts it has no error. */
static int records_in(Runnel__Response *r, int i)
{
    Runnel__FetchPartitionData *p = r->fetch->topics[0]->partitions[i];
    assert_int_equal(p->error, 0);
    rn_rc_rec_t recs[100];
    return rn_rc_decode(p->records.data, p->records.len, recs, 100);
}

/*
 * partition_max_bytes bounds each partition and max_bytes the whole response, across
 * partitions: whole batches only, and a batch that does not fit the rest of the response's
 * budget waits for the next fetch (only a response's very first batch may exceed it).
 */
static void test_fetch_response_limits(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    assert_int_equal(rn_rc_create_topic(&f->c, "lim", 2, 1, NULL, NULL, 0), 0);
    produce_values(&f->c, "lim", 0, 4, 5, "a");
    produce_values(&f->c, "lim", 1, 4, 5, "b");
    size_t a0 = batch_len(&f->c, "lim", 0, 0), a1 = batch_len(&f->c, "lim", 0, 5);
    size_t b0 = batch_len(&f->c, "lim", 1, 0);
    const uint32_t parts[2] = {0, 1};

    /* Partition 0 capped at two batches; the response has room for one more: partition 1's. */
    uint32_t pmax[2] = {(uint32_t)(a0 + a1), 0};
    Runnel__Response *r = fetch_two(&f->c, "lim", parts, pmax, (uint32_t)(a0 + a1 + b0));
    assert_int_equal(records_in(r, 0), 10);
    assert_int_equal(records_in(r, 1), 5);
    rn_rc_free(r);

    /* One byte less: partition 1's first batch no longer fits and is left for later. */
    r = fetch_two(&f->c, "lim", parts, pmax, (uint32_t)(a0 + a1 + b0 - 1));
    assert_int_equal(records_in(r, 0), 10);
    assert_int_equal(records_in(r, 1), 0);
    rn_rc_free(r);

    /* max_bytes 1: still the first whole batch, so a consumer always makes progress. */
    pmax[0] = 0;
    r = fetch_two(&f->c, "lim", parts, pmax, 1);
    assert_int_equal(records_in(r, 0), 5);
    assert_int_equal(records_in(r, 1), 0);
    rn_rc_free(r);
    stop(f);
}

static void test_pipelining_and_acks0(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    assert_int_equal(rn_rc_create_topic(&f->c, "pipe", 1, 1, NULL, NULL, 0), 0);
    rn_buf_t batch = RN_BUF_INIT;
    rn_rc_make_batch(&batch, -1, -1, -1, 3, "p", 0);
    /* 300 requests without reading: every answered one comes back, in order. */
    int64_t expect[300];
    int nexp = 0;
    for (int i = 0; i < 300; i++) {
        Runnel__ProducePartition pp = RUNNEL__PRODUCE_PARTITION__INIT, *ppp = &pp;
        pp.records.data = batch.data;
        pp.records.len = batch.len;
        Runnel__ProduceTopic pt = RUNNEL__PRODUCE_TOPIC__INIT, *ptp = &pt;
        pt.name = "pipe";
        pt.n_partitions = 1;
        pt.partitions = &ppp;
        Runnel__ProduceRequest body = RUNNEL__PRODUCE_REQUEST__INIT;
        body.acks = i % 3 == 0 ? 0 : 1;
        body.n_topics = 1;
        body.topics = &ptp;
        Runnel__MetadataRequest md = RUNNEL__METADATA_REQUEST__INIT;
        Runnel__Request req = RUNNEL__REQUEST__INIT;
        Runnel__ApiKey api;
        if (i % 5 == 4) {
            req.body_case = RUNNEL__REQUEST__BODY_METADATA;
            req.metadata = &md;
            api = RUNNEL__API_KEY__API_METADATA;
        } else {
            req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
            req.produce = &body;
            api = RUNNEL__API_KEY__API_PRODUCE;
        }
        int64_t cid = rn_rc_send(&f->c, &req, api);
        assert_true(cid > 0);
        if (api != RUNNEL__API_KEY__API_PRODUCE || body.acks != 0)
            expect[nexp++] = cid;
    }
    int64_t last_offset = -1;
    for (int i = 0; i < nexp; i++) {
        Runnel__Response *r = rn_rc_recv(&f->c, 10000);
        assert_non_null(r);
        if (r->correlation_id != expect[i])
            fprintf(stderr, "response %d: cid %u, expected %lld\n", i, r->correlation_id,
                    (long long)expect[i]);
        assert_int_equal(r->correlation_id, expect[i]);
        if (r->body_case == RUNNEL__RESPONSE__BODY_PRODUCE) {
            int64_t off = r->produce->topics[0]->partitions[0]->base_offset;
            assert_true(off > last_offset);
            last_offset = off;
        }
        rn_rc_free(r);
    }
    int produced = 0;
    for (int i = 0; i < 300; i++)
        produced += i % 5 != 4;
    assert_int_equal(rn_rc_list_offset(&f->c, "pipe", 0, -1), produced * 3);
    rn_buf_free(&batch);
    stop(f);
}

static void test_init_producer_id_unique_across_restart(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    int64_t seen[2000];
    int n = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < (round == 1 ? 1200 : 5); i++) {
            Runnel__InitProducerIdRequest body = RUNNEL__INIT_PRODUCER_ID_REQUEST__INIT;
            body.producer_id = -1;
            body.producer_epoch = -1;
            Runnel__Request req = RUNNEL__REQUEST__INIT;
            req.body_case = RUNNEL__REQUEST__BODY_INIT_PRODUCER_ID;
            req.init_producer_id = &body;
            Runnel__Response *r = rn_rc_call(&f->c, &req, RUNNEL__API_KEY__API_INIT_PRODUCER_ID,
                                              5000);
            assert_non_null(r);
            assert_int_equal(r->error, 0);
            assert_int_equal(r->init_producer_id->producer_epoch, 0);
            int64_t id = r->init_producer_id->producer_id;
            assert_true(id >= 0);
            for (int j = 0; j < n; j++)
                assert_true(seen[j] != id);
            seen[n++] = id;
            rn_rc_free(r);
        }
        /* Restart: clean the second time, a crash the third; ids stay unique. */
        rn_rc_close(&f->c);
        if (round == 0)
            assert_int_equal(rn_h_broker_stop(&f->b), 0);
        else
            rn_h_broker_kill(&f->b);
        assert_int_equal(rn_rc_broker_restart(&f->b), 0);
        assert_int_equal(rn_rc_connect(&f->c, f->b.addr), 0);
    }
    /* An issued id with its epoch gets the next epoch. */
    Runnel__InitProducerIdRequest body = RUNNEL__INIT_PRODUCER_ID_REQUEST__INIT;
    body.producer_id = seen[0];
    body.producer_epoch = 0;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_INIT_PRODUCER_ID;
    req.init_producer_id = &body;
    Runnel__Response *r = rn_rc_call(&f->c, &req, RUNNEL__API_KEY__API_INIT_PRODUCER_ID, 5000);
    assert_non_null(r);
    assert_int_equal(r->init_producer_id->producer_id, seen[0]);
    assert_int_equal(r->init_producer_id->producer_epoch, 1);
    rn_rc_free(r);
    stop(f);
}

static void test_delete_and_recreate(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    assert_int_equal(rn_rc_create_topic(&f->c, "gone", 1, 1, NULL, NULL, 0), 0);
    produce_values(&f->c, "gone", 0, 3, 2, "g");
    assert_int_equal(rn_rc_delete_topic(&f->c, "gone"), 0);
    assert_int_equal(rn_rc_delete_topic(&f->c, "gone"),
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, 1, "x", 0);
    assert_int_equal(rn_rc_produce(&f->c, "gone", 0, 1, b.data, b.len, NULL),
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    char path[700];
    snprintf(path, sizeof path, "%s/gone-0", f->data);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(rn_rc_create_topic(&f->c, "gone", 1, 1, NULL, NULL, 0), 0);
    assert_int_equal(rn_rc_list_offset(&f->c, "gone", 0, -1), 0);
    /* Topics survive a restart; deleted ones stay deleted. */
    assert_int_equal(rn_rc_create_topic(&f->c, "kept", 4, 1, NULL, NULL, 0), 0);
    assert_int_equal(rn_rc_delete_topic(&f->c, "gone"), 0);
    rn_rc_close(&f->c);
    assert_int_equal(rn_h_broker_stop(&f->b), 0);
    assert_int_equal(rn_rc_broker_restart(&f->b), 0);
    assert_int_equal(rn_rc_connect(&f->c, f->b.addr), 0);
    assert_int_equal(rn_rc_list_offset(&f->c, "kept", 3, -1), 0);
    assert_int_equal(rn_rc_list_offset(&f->c, "gone", 0, -1),
                     -1 - RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_buf_free(&b);
    stop(f);
}

/*
 * --config FILE is applied (comments and blank lines skipped), --set wins over it, and the
 * broker-wide log.* keys become the configs of a topic created without overrides. The log
 * goes to stderr with a level and a component on every line.
 */
static void test_config_file_and_log(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("broker-conf");
    char data[600], cfg[700], flag[720];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cfg, sizeof cfg, "%s/broker.conf", dir);
    FILE *file = fopen(cfg, "w");
    assert_non_null(file);
    fprintf(file, "# broker defaults\nnum.partitions=2\n\nlog.retention.ms=4321\n"
                  "log.segment.bytes=65536\n");
    fclose(file);
    snprintf(flag, sizeof flag, "--config=%s", cfg);
    const char *settings[] = {flag, "num.partitions=3", NULL};
    rn_hbroker_t b = {0};
    assert_int_equal(rn_rc_broker_start(&b, data, settings), 0);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, b.addr), 0);
    assert_int_equal(rn_rc_create_topic(&c, "dflt", 0, 0, NULL, NULL, 0), 0);

    char *names[] = {"dflt"};
    Runnel__MetadataRequest body = RUNNEL__METADATA_REQUEST__INIT;
    body.n_topics = 1;
    body.topics = names;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &body;
    Runnel__Response *r = rn_rc_call(&c, &req, RUNNEL__API_KEY__API_METADATA, 5000);
    assert_non_null(r);
    Runnel__TopicMetadata *t = r->metadata->topics[0];
    assert_int_equal(t->error, 0);
    assert_int_equal(t->n_partitions, 3); /* --set over the file */
    int seen = 0;
    for (size_t i = 0; i < t->n_configs; i++) {
        seen += strcmp(t->configs[i]->key, "retention.ms") == 0 &&
                strcmp(t->configs[i]->value, "4321") == 0;
        seen += strcmp(t->configs[i]->key, "segment.bytes") == 0 &&
                strcmp(t->configs[i]->value, "65536") == 0;
    }
    assert_int_equal(seen, 2);
    rn_rc_free(r);
    rn_rc_close(&c);
    assert_int_equal(rn_h_broker_stop(&b), 0);

    /* "2026-11-25T10:00:00.123Z INFO  [broker] ..." */
    FILE *log = fopen(b.log_path, "r");
    assert_non_null(log);
    char line[1024];
    int lines = 0, listening = 0;
    while (fgets(line, sizeof line, log)) {
        lines++;
        assert_true(strlen(line) > 30 && line[4] == '-' && line[10] == 'T' && line[23] == 'Z');
        assert_true(strncmp(line + 25, "DEBUG", 5) == 0 || strncmp(line + 25, "INFO ", 5) == 0 ||
                    strncmp(line + 25, "WARN ", 5) == 0 || strncmp(line + 25, "ERROR", 5) == 0);
        assert_true(line[31] == '[' && strchr(line + 31, ']'));
        listening += strstr(line, "INFO  [broker]") && strstr(line, b.addr);
    }
    fclose(log);
    assert_true(lines >= 3);
    assert_true(listening >= 1);
    rn_h_broker_release(&b);
    rn_h_rmtree(dir);
    free(dir);
}

/* --log-format json: every line one JSON object; a malformed frame's line names its request. */
static void test_json_log(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("broker-jsonlog");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *settings[] = {"--log-format=json", NULL};
    rn_hbroker_t b = {0};
    assert_int_equal(rn_rc_broker_start(&b, data, settings), 0);
    /* A Request whose header (field 1) holds correlation id 77 (its field 3), then garbage. */
    int fd = rn_h_connect(b.addr);
    assert_true(fd >= 0);
    uint8_t frame[] = {10, 0, 0, 0, 0x0a, 2, 0x18, 77, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(write(fd, frame, sizeof frame), (ssize_t)sizeof frame);
    uint8_t buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
    assert_int_equal(rn_h_broker_stop(&b), 0);
    FILE *log = fopen(b.log_path, "r");
    assert_non_null(log);
    char line[2048];
    int lines = 0, with_id = 0;
    while (fgets(line, sizeof line, log)) {
        lines++;
        size_t n = strlen(line);
        assert_true(strncmp(line, "{\"ts\":\"", 7) == 0 && n > 2 && line[n - 2] == '}');
        assert_non_null(strstr(line, "\"level\":\""));
        assert_non_null(strstr(line, "\"component\":\""));
        with_id += strstr(line, "\"request_id\":\"77\"") != NULL;
    }
    fclose(log);
    assert_true(lines >= 3);
    if (with_id != 1)
        fail_msg("expected one line with request_id 77, got %d (log: %s)", with_id, b.log_path);
    rn_h_broker_release(&b);
    rn_h_rmtree(dir);
    free(dir);
}

static int run_broker(const char *const *extra, const char *err_path)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)rn_h_bin("RUNNEL_BROKER_BIN");
    for (int i = 0; extra[i]; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return rn_h_run(argv, NULL, NULL, err_path, 20);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static void test_command_line(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("broker-cli");
    char data[600], err[700], cfg[700];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    snprintf(cfg, sizeof cfg, "%s/broker.conf", dir);
    const char *help[] = {"--help", NULL};
    assert_int_equal(run_broker(help, err), 0);
    const char *version[] = {"--version", NULL};
    assert_int_equal(run_broker(version, err), 0);
    const char *bogus[] = {"--data-dir", data, "--listen", "127.0.0.1:0", "--bogus", NULL};
    assert_int_equal(run_broker(bogus, err), 2);
    assert_true(file_contains(err, "--bogus"));
    const char *nolisten[] = {"--data-dir", data, NULL};
    assert_int_equal(run_broker(nolisten, err), 2);
    assert_true(file_contains(err, "--listen"));
    const char *badset[] = {"--data-dir", data, "--listen", "127.0.0.1:0", "--set",
                            "no.such.key=1", NULL};
    assert_int_equal(run_broker(badset, err), 2);
    assert_true(file_contains(err, "no.such.key"));
    const char *badval[] = {"--data-dir", data, "--listen", "127.0.0.1:0", "--set",
                            "max.connections=-5", NULL};
    assert_int_equal(run_broker(badval, err), 2);
    assert_true(file_contains(err, "max.connections"));
    FILE *f = fopen(cfg, "w");
    fprintf(f, "# a comment\nnum.partitions=2\n\nlog.retention.ms=twelve\n");
    fclose(f);
    const char *badfile[] = {"--data-dir", data, "--listen", "127.0.0.1:0", "--config", cfg,
                             NULL};
    assert_int_equal(run_broker(badfile, err), 2);
    char where[720];
    snprintf(where, sizeof where, "%s:4", cfg);
    assert_true(file_contains(err, where));
    const char *badport[] = {"--data-dir", data, "--listen", "127.0.0.1:99999", NULL};
    assert_int_equal(run_broker(badport, err), 2);
    rn_h_rmtree(dir);
    free(dir);
}

/* Start-up failures a user meets exit 1 and say what to do: a busy port, a locked data dir. */
static void test_startup_failures(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    char other[700], err[700];
    snprintf(other, sizeof other, "%s/other", f->dir);
    snprintf(err, sizeof err, "%s/stderr", f->dir);
    const char *busy[] = {"--data-dir", other, "--listen", f->b.addr, NULL};
    assert_int_equal(run_broker(busy, err), 1);
    assert_true(file_contains(err, "cannot listen on"));
    assert_true(file_contains(err, "pick another --listen port"));
    const char *locked[] = {"--data-dir", f->data, "--listen", "127.0.0.1:0", NULL};
    assert_int_equal(run_broker(locked, err), 1);
    assert_true(file_contains(err, "another broker uses it"));
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_versions),
        cmocka_unit_test(test_create_topic_validation),
        cmocka_unit_test(test_produce_fetch_list_offsets),
        cmocka_unit_test(test_fetch_response_limits),
        cmocka_unit_test(test_pipelining_and_acks0),
        cmocka_unit_test(test_init_producer_id_unique_across_restart),
        cmocka_unit_test(test_delete_and_recreate),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_config_file_and_log),
        cmocka_unit_test(test_json_log),
        cmocka_unit_test(test_startup_failures),
        cmocka_unit_test(test_busy_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
