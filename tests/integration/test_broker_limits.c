/*
 * test_broker_limits.c - limits answer with errors, not crashes:
 *   - max.connections: one more connection gets TOO_MANY_CONNECTIONS and a close;
 *   - max.inflight.requests.per.connection: a client pipelining far more requests than the cap
 *     is slowed down (the broker stops reading), never refused, and every answer comes back in
 *     order;
 *   - big fetches leave through sendfile in many partial writes to a slow reader, intact;
 *   - a full disk (RLIMIT_FSIZE on the broker) fails produces with STORAGE_ERROR while reads,
 *     metadata and a clean stop keep working.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

typedef struct fixture {
    char *dir;
    rn_hbroker_t b;
} fixture_t;

static fixture_t *start(const char *const *settings)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = rn_h_tmpdir("broker-limits");
    char data[600];
    snprintf(data, sizeof data, "%s/data", f->dir);
    assert_int_equal(rn_rc_broker_start(&f->b, data, settings), 0);
    return f;
}

static void finish(fixture_t *f)
{
    int status = rn_h_broker_stop(&f->b);
    if (status != 0)
        rn_h_broker_dump_log(&f->b);
    assert_int_equal(status, 0);
    rn_h_broker_release(&f->b);
    rn_h_rmtree(f->dir);
    free(f->dir);
    free(f);
}

static Runnel__Response *api_versions(rn_rc_t *c)
{
    Runnel__ApiVersionsRequest av = RUNNEL__API_VERSIONS_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_API_VERSIONS;
    req.api_versions = &av;
    return rn_rc_call(c, &req, RUNNEL__API_KEY__API_VERSIONS, 5000);
}

/* ------------------------------------------------------------------------ */

static void test_max_connections(void **state)
{
    (void)state;
    const char *settings[] = {"max.connections=3", NULL};
    fixture_t *f = start(settings);
    rn_rc_t c[3], extra;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rn_rc_connect(&c[i], f->b.addr), 0);
        Runnel__Response *r = api_versions(&c[i]);
        assert_non_null(r);
        rn_rc_free(r);
    }
    assert_int_equal(rn_rc_connect(&extra, f->b.addr), 0);
    Runnel__Response *r = rn_rc_recv(&extra, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_TOO_MANY_CONNECTIONS);
    rn_rc_free(r);
    assert_true(rn_rc_closed_by_peer(&extra, 5000));
    rn_rc_close(&extra);
    /* A slot frees up: the next connection is served. */
    rn_rc_close(&c[0]);
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; attempt++) {
        assert_int_equal(rn_rc_connect(&extra, f->b.addr), 0);
        r = api_versions(&extra);
        served = r && r->error == 0;
        rn_rc_free(r);
        rn_rc_close(&extra);
        if (!served)
            usleep(20000);
    }
    assert_true(served);
    rn_rc_close(&c[1]);
    rn_rc_close(&c[2]);
    finish(f);
}

static void test_inflight_backpressure(void **state)
{
    (void)state;
    const char *settings[] = {"max.inflight.requests.per.connection=4", NULL};
    fixture_t *f = start(settings);
    rn_rc_t c, other;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    assert_int_equal(rn_rc_create_topic(&c, "bp", 1, 1, NULL, NULL, 0), 0);
    /* 500 pipelined produces, 125 times the cap, before reading a single response. The
     * frames are small enough to sit in the socket buffers while the broker holds off. */
    rn_buf_t batch = RN_BUF_INIT;
    rn_rc_make_batch(&batch, -1, -1, -1, 1, "bp", 0);
    int64_t first = -1;
    for (int i = 0; i < 500; i++) {
        Runnel__ProducePartition pp = RUNNEL__PRODUCE_PARTITION__INIT, *ppp = &pp;
        pp.records.data = batch.data;
        pp.records.len = batch.len;
        Runnel__ProduceTopic pt = RUNNEL__PRODUCE_TOPIC__INIT, *ptp = &pt;
        pt.name = "bp";
        pt.n_partitions = 1;
        pt.partitions = &ppp;
        Runnel__ProduceRequest body = RUNNEL__PRODUCE_REQUEST__INIT;
        body.acks = 1;
        body.n_topics = 1;
        body.topics = &ptp;
        Runnel__Request req = RUNNEL__REQUEST__INIT;
        req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
        req.produce = &body;
        int64_t cid = rn_rc_send(&c, &req, RUNNEL__API_KEY__API_PRODUCE);
        assert_true(cid > 0);
        if (first < 0)
            first = cid;
    }
    /* Meanwhile another connection is served as usual. */
    assert_int_equal(rn_rc_connect(&other, f->b.addr), 0);
    Runnel__Response *r = api_versions(&other);
    assert_non_null(r);
    rn_rc_free(r);
    rn_rc_close(&other);
    for (int i = 0; i < 500; i++) {
        r = rn_rc_recv(&c, 10000);
        assert_non_null(r);
        assert_int_equal(r->correlation_id, first + i);
        assert_int_equal(r->produce->topics[0]->partitions[0]->error, 0);
        assert_int_equal(r->produce->topics[0]->partitions[0]->base_offset, i);
        rn_rc_free(r);
    }
    rn_buf_free(&batch);
    rn_rc_close(&c);
    finish(f);
}

static void test_big_fetch_slow_reader(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    const char *cfg[] = {"segment.bytes=1048576", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "big", 1, 1, cfg, NULL, 0), 0);
    /* ~6 MB over several segments. */
    int total = 0;
    for (int i = 0; i < 300; i++) {
        rn_buf_t b = RN_BUF_INIT;
        rn_rc_make_batch(&b, -1, -1, -1, 400, "bigvalue-bigvalue-bigvalue", total);
        assert_int_equal(rn_rc_produce(&c, "big", 0, 1, b.data, b.len, NULL), 0);
        total += 400;
        rn_buf_free(&b);
    }
    /* Three 6 MB responses and a delay before reading: sendfile meets a full socket buffer
     * and continues on writability. (A receive buffer below the loopback MSS would stall TCP
     * itself, so the buffers stay as they are.) */
    Runnel__FetchPartition fp = RUNNEL__FETCH_PARTITION__INIT, *fpp = &fp;
    fp.partition_max_bytes = 8u << 20;
    fp.current_leader_epoch = -1;
    Runnel__FetchTopic ft = RUNNEL__FETCH_TOPIC__INIT, *ftp = &ft;
    ft.name = "big";
    ft.n_partitions = 1;
    ft.partitions = &fpp;
    Runnel__FetchRequest body = RUNNEL__FETCH_REQUEST__INIT;
    body.replica_id = -1;
    body.max_bytes = 8u << 20;
    body.n_topics = 1;
    body.topics = &ftp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH;
    req.fetch = &body;
    int64_t cids[3];
    for (int i = 0; i < 3; i++)
        cids[i] = rn_rc_send(&c, &req, RUNNEL__API_KEY__API_FETCH);
    usleep(300000);
    rn_rc_rec_t *recs = calloc((size_t)total, sizeof *recs);
    for (int i = 0; i < 3; i++) {
        Runnel__Response *r = rn_rc_recv(&c, 20000);
        assert_non_null(r);
        assert_int_equal(r->correlation_id, cids[i]);
        Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
        assert_non_null(p);
        assert_int_equal(p->high_watermark, total);
        int n = rn_rc_decode(p->records.data, p->records.len, recs, total);
        /* Records span several segments; a response may stop at a segment boundary only if
         * max_bytes says so, and 8 MiB covers everything. */
        assert_int_equal(n, total);
        for (int j = 0; j < n; j += 997) {
            char want[64];
            snprintf(want, sizeof want, "bigvalue-bigvalue-bigvalue-%d", j);
            assert_string_equal(recs[j].value, want);
        }
        rn_rc_free(r);
    }
    free(recs);
    rn_rc_close(&c);
    finish(f);
}

static void test_disk_full(void **state)
{
    (void)state;
    /* The broker inherits a 2 MiB file-size limit: writes beyond fail with EFBIG. */
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 2u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const char *settings[] = {"log.index.size.max.bytes=65536", NULL};
    fixture_t *f = start(settings);
    setrlimit(RLIMIT_FSIZE, &saved);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    const char *cfg[] = {"segment.bytes=1073741824", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "full", 1, 1, cfg, NULL, 0), 0);
    int ok = 0, err = 0;
    int64_t last_ok = -1;
    for (int i = 0; i < 400 && err < 3; i++) {
        rn_buf_t b = RN_BUF_INIT;
        rn_rc_make_batch(&b, -1, -1, -1, 200, "filling-the-disk-filling-the-disk", i * 200);
        int64_t off;
        int e = rn_rc_produce(&c, "full", 0, 1, b.data, b.len, &off);
        rn_buf_free(&b);
        assert_true(e == 0 || e == RUNNEL__ERROR_CODE__ERR_STORAGE_ERROR);
        if (e == 0) {
            ok++;
            last_ok = off;
        } else {
            err++;
        }
    }
    assert_true(ok > 0);
    assert_true(err > 0);
    /* Everything acknowledged reads back; the broker still answers. */
    rn_rc_rec_t *recs = calloc((size_t)ok * 200 + 16, sizeof *recs);
    assert_int_equal(rn_rc_fetch_all(&c, "full", 0, 0, recs, ok * 200 + 16), ok * 200);
    assert_int_equal(recs[ok * 200 - 1].offset, (uint64_t)last_ok + 199);
    free(recs);
    Runnel__Response *r = api_versions(&c);
    assert_non_null(r);
    rn_rc_free(r);
    rn_rc_close(&c);
    finish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_inflight_backpressure),
        cmocka_unit_test(test_big_fetch_slow_reader),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
