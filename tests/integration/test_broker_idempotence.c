/*
 * test_broker_idempotence.c - the idempotent producer: a retried batch (same producer id,
 * epoch and sequence) is acknowledged with its original offset and not appended again -
 * also after a clean restart, a SIGKILL, and segment rolls; a sequence gap is rejected;
 * epochs fence; sequences wrap at INT32_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

typedef struct fixture {
    char *dir;
    rn_hbroker_t b;
    rn_rc_t c;
} fixture_t;

static fixture_t *start(void)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = rn_h_tmpdir("broker-idem");
    char data[600];
    snprintf(data, sizeof data, "%s/data", f->dir);
    assert_int_equal(rn_rc_broker_start(&f->b, data, NULL), 0);
    assert_int_equal(rn_rc_connect(&f->c, f->b.addr), 0);
    return f;
}

static void restart(fixture_t *f, bool kill)
{
    rn_rc_close(&f->c);
    if (kill)
        rn_h_broker_kill(&f->b);
    else
        assert_int_equal(rn_h_broker_stop(&f->b), 0);
    assert_int_equal(rn_rc_broker_restart(&f->b), 0);
    assert_int_equal(rn_rc_connect(&f->c, f->b.addr), 0);
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

static int64_t new_producer(rn_rc_t *c)
{
    Runnel__InitProducerIdRequest body = RUNNEL__INIT_PRODUCER_ID_REQUEST__INIT;
    body.producer_id = -1;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_INIT_PRODUCER_ID;
    req.init_producer_id = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_INIT_PRODUCER_ID, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, 0);
    int64_t id = r->init_producer_id->producer_id;
    rn_rc_free(r);
    return id;
}

/* Produces a batch of n records "tag-seq..." with the given identity; returns the error. */
static int send_batch(rn_rc_t *c, const char *topic, int64_t pid, int16_t epoch, int32_t seq,
                      int n, int64_t *offset)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, pid, epoch, seq, n, "r", seq);
    int err = rn_rc_produce(c, topic, 0, 1, b.data, b.len, offset);
    rn_buf_free(&b);
    return err;
}

/* Asserts the partition holds exactly records r-0 .. r-(n-1), once each, in order. */
static void assert_exactly(rn_rc_t *c, const char *topic, int n)
{
    rn_rc_rec_t *recs = calloc((size_t)n + 16, sizeof *recs);
    assert_int_equal(rn_rc_fetch_all(c, topic, 0, 0, recs, n + 16), n);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "r-%d", i);
        assert_string_equal(recs[i].value, want);
        assert_int_equal(recs[i].offset, (uint64_t)i);
    }
    free(recs);
}

/* ------------------------------------------------------------------------ */

static void test_duplicate_not_appended(void **state)
{
    (void)state;
    fixture_t *f = start();
    assert_int_equal(rn_rc_create_topic(&f->c, "idem", 1, 1, NULL, NULL, 0), 0);
    int64_t pid = new_producer(&f->c), off = -1;
    /* Six batches of 3 records: sequences 0, 3, ..., 15. */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(send_batch(&f->c, "idem", pid, 0, i * 3, 3, &off), 0);
        assert_int_equal(off, i * 3);
    }
    /* Retries of the last five batches: acknowledged with the original offsets. */
    for (int i = 1; i < 6; i++) {
        assert_int_equal(send_batch(&f->c, "idem", pid, 0, i * 3, 3, &off), 0);
        assert_int_equal(off, i * 3);
    }
    /* The first batch has left the cache: no longer recognised, so out of order. */
    assert_int_equal(send_batch(&f->c, "idem", pid, 0, 0, 3, &off),
                     RUNNEL__ERROR_CODE__ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* A gap is rejected; the expected sequence still works afterwards. */
    assert_int_equal(send_batch(&f->c, "idem", pid, 0, 19, 1, &off),
                     RUNNEL__ERROR_CODE__ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(send_batch(&f->c, "idem", pid, 0, 18, 2, &off), 0);
    assert_int_equal(off, 18);
    assert_exactly(&f->c, "idem", 20);
    stop(f);
}

static void test_epochs_and_wrap(void **state)
{
    (void)state;
    fixture_t *f = start();
    assert_int_equal(rn_rc_create_topic(&f->c, "ep", 1, 1, NULL, NULL, 0), 0);
    int64_t pid = new_producer(&f->c), off;
    assert_int_equal(send_batch(&f->c, "ep", pid, 0, 0, 2, &off), 0);
    /* A newer epoch must start at 0 ... */
    assert_int_equal(send_batch(&f->c, "ep", pid, 1, 2, 1, &off),
                     RUNNEL__ERROR_CODE__ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(send_batch(&f->c, "ep", pid, 1, 0, 1, &off), 0);
    /* ... and then fences the older one. */
    assert_int_equal(send_batch(&f->c, "ep", pid, 0, 2, 1, &off),
                     RUNNEL__ERROR_CODE__ERR_INVALID_PRODUCER_EPOCH);
    /* Sequences wrap from INT32_MAX to 0 (an unseen producer may start anywhere). */
    int64_t pid2 = new_producer(&f->c);
    assert_int_equal(send_batch(&f->c, "ep", pid2, 0, INT32_MAX - 1, 3, &off), 0);
    assert_int_equal(send_batch(&f->c, "ep", pid2, 0, INT32_MAX - 1, 3, &off), 0);
    assert_int_equal(off, 3); /* the retry: the original offset */
    assert_int_equal(send_batch(&f->c, "ep", pid2, 0, 1, 1, &off), 0);
    assert_int_equal(off, 6);
    /* Non-idempotent batches are never checked. */
    assert_int_equal(send_batch(&f->c, "ep", -1, -1, -1, 1, &off), 0);
    assert_int_equal(send_batch(&f->c, "ep", -1, -1, -1, 1, &off), 0);
    assert_int_equal(rn_rc_list_offset(&f->c, "ep", 0, -1), 9);
    stop(f);
}

/*
 * Producer state survives restarts: after a clean stop (snapshot), a SIGKILL (replay of the
 * log tail), and across segment rolls (snapshots at each roll, older segments not replayed).
 */
static void test_duplicate_after_restarts(void **state)
{
    (void)state;
    fixture_t *f = start();
    const char *cfg[] = {"segment.bytes=1024", "flush.messages=1", NULL};
    assert_int_equal(rn_rc_create_topic(&f->c, "dur", 1, 1, cfg, NULL, 0), 0);
    int64_t pid = new_producer(&f->c), off;
    int seq = 0;
    for (int round = 0; round < 4; round++) {
        /* Enough batches to roll a few 1 KiB segments. */
        for (int i = 0; i < 12; i++, seq += 2) {
            assert_int_equal(send_batch(&f->c, "dur", pid, 0, seq, 2, &off), 0);
            assert_int_equal(off, seq);
        }
        restart(f, round % 2 == 0);
        /* The last batch before the restart, retried: original offset, not appended. */
        assert_int_equal(send_batch(&f->c, "dur", pid, 0, seq - 2, 2, &off), 0);
        assert_int_equal(off, seq - 2);
        /* And one four batches back (still among the last five). */
        assert_int_equal(send_batch(&f->c, "dur", pid, 0, seq - 10, 2, &off), 0);
        assert_int_equal(off, seq - 10);
        assert_int_equal(send_batch(&f->c, "dur", pid, 0, seq + 4, 2, &off),
                         RUNNEL__ERROR_CODE__ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    }
    assert_exactly(&f->c, "dur", seq);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_not_appended),
        cmocka_unit_test(test_epochs_and_wrap),
        cmocka_unit_test(test_duplicate_after_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
