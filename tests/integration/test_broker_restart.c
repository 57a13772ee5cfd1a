/*
 * test_broker_restart.c - restarts keep every acknowledged record:
 *   - a clean stop (SIGTERM, then SIGINT: exit status 0, clean-shutdown markers) and restart;
 *   - SIGKILL at a random moment while a producer keeps 16 requests in flight (acks=1,
 *     flush.messages=1): after the restart every acknowledged batch is there exactly once,
 *     in order, and nothing but a prefix of what was sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

#define BATCH_RECORDS 4
#define WINDOW 16

typedef struct fixture {
    char *dir;
    char data[600];
    rn_hbroker_t b;
} fixture_t;

static fixture_t *start(const char *const *settings)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = rn_h_tmpdir("broker-restart");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    assert_int_equal(rn_rc_broker_start(&f->b, f->data, settings), 0);
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

static int64_t send_produce(rn_rc_t *c, const char *topic, uint32_t partition, int batch_no)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, BATCH_RECORDS, "k", batch_no * BATCH_RECORDS);
    Runnel__ProducePartition pp = RUNNEL__PRODUCE_PARTITION__INIT, *ppp = &pp;
    pp.partition = partition;
    pp.records.data = b.data;
    pp.records.len = b.len;
    Runnel__ProduceTopic pt = RUNNEL__PRODUCE_TOPIC__INIT, *ptp = &pt;
    pt.name = (char *)topic;
    pt.n_partitions = 1;
    pt.partitions = &ppp;
    Runnel__ProduceRequest body = RUNNEL__PRODUCE_REQUEST__INIT;
    body.acks = 1;
    body.n_topics = 1;
    body.topics = &ptp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
    req.produce = &body;
    int64_t cid = rn_rc_send(c, &req, RUNNEL__API_KEY__API_PRODUCE);
    rn_buf_free(&b);
    return cid;
}

/* Reads the partition back and checks it holds batches 0 .. n-1 exactly once, in order,
 * with acked <= n <= sent. Returns n. */
static int check_prefix(rn_rc_t *c, const char *topic, uint32_t partition, int acked, int sent)
{
    int cap = (sent + 1) * BATCH_RECORDS;
    rn_rc_rec_t *recs = calloc((size_t)cap, sizeof *recs);
    int n = rn_rc_fetch_all(c, topic, partition, 0, recs, cap);
    assert_true(n >= 0);
    assert_int_equal(n % BATCH_RECORDS, 0);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "k-%d", i);
        if (strcmp(recs[i].value, want) != 0)
            fprintf(stderr, "record %d: '%s', expected '%s'\n", i, recs[i].value, want);
        assert_string_equal(recs[i].value, want);
        assert_int_equal(recs[i].offset, (uint64_t)i);
    }
    free(recs);
    int batches = n / BATCH_RECORDS;
    if (batches < acked || batches > sent)
        fprintf(stderr, "%d batches in the log; %d acknowledged, %d sent\n", batches, acked, sent);
    assert_true(batches >= acked);
    assert_true(batches <= sent);
    return batches;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ------------------------------------------------------------------------ */

static void test_clean_restart(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    const char *cfg[] = {"segment.bytes=4096", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "clean", 3, 1, cfg, NULL, 0), 0);
    for (int round = 0; round < 2; round++) {
        for (int p = 0; p < 3; p++) {
            for (int i = 0; i < 40; i++) {
                int64_t cid = send_produce(&c, "clean", (uint32_t)p, round * 40 + i);
                Runnel__Response *r = rn_rc_recv(&c, 10000);
                assert_non_null(r);
                assert_int_equal(r->correlation_id, cid);
                assert_int_equal(r->produce->topics[0]->partitions[0]->error, 0);
                rn_rc_free(r);
            }
        }
        rn_rc_close(&c);
        if (round == 0) {
            assert_int_equal(rn_h_broker_stop(&f->b), 0); /* SIGTERM */
        } else {
            /* Ctrl-C stops it just as cleanly. */
            rn_h_broker_signal(&f->b, SIGINT);
            int status = -1;
            for (int i = 0; i < 2000 && waitpid(f->b.pid, &status, WNOHANG) == 0; i++)
                usleep(10000);
            f->b.pid = 0;
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        char marker[700];
        snprintf(marker, sizeof marker, "%s/clean-1/.clean-shutdown", f->data);
        assert_true(exists(marker));
        assert_int_equal(rn_rc_broker_restart(&f->b), 0);
        assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
        for (int p = 0; p < 3; p++)
            assert_int_equal(check_prefix(&c, "clean", (uint32_t)p, (round + 1) * 40,
                                          (round + 1) * 40), (round + 1) * 40);
    }
    rn_rc_close(&c);
    finish(f);
}

static void test_sigkill_keeps_acknowledged(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    const char *cfg[] = {"flush.messages=1", "segment.bytes=65536", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "durable", 1, 1, cfg, NULL, 0), 0);
    srand((unsigned)time(NULL));
    int sent = 0, acked = 0;
    for (int round = 0; round < 4; round++) {
        /* Kill after a random number of acknowledgements, with WINDOW requests in flight. */
        int kill_after = acked + 100 + rand() % 400;
        int inflight = 0;
        bool dead = false;
        while (!dead) {
            while (inflight < WINDOW) {
                if (send_produce(&c, "durable", 0, sent) < 0) {
                    dead = true;
                    break;
                }
                sent++;
                inflight++;
            }
            if (acked >= kill_after && rn_h_broker_alive(&f->b)) {
                fprintf(stderr, "round %d: SIGKILL with %d acknowledged, %d sent\n", round,
                        acked, sent);
                rn_h_broker_kill(&f->b);
            }
            Runnel__Response *r = rn_rc_recv(&c, 10000);
            if (!r) {
                dead = true;
                break;
            }
            assert_int_equal(r->produce->topics[0]->partitions[0]->error, 0);
            assert_int_equal(r->produce->topics[0]->partitions[0]->base_offset,
                             (int64_t)acked * BATCH_RECORDS);
            rn_rc_free(r);
            acked++;
            inflight--;
        }
        rn_rc_close(&c);
        rn_h_broker_kill(&f->b);
        assert_int_equal(rn_rc_broker_restart(&f->b), 0);
        assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
        int kept = check_prefix(&c, "durable", 0, acked, sent);
        /* Carry on from what the log holds: the unacknowledged tail was sent again. */
        acked = sent = kept;
    }
    rn_rc_close(&c);
    finish(f);
}

/*
 * SIGTERM while a producer keeps requests in flight on a flush.messages=1 topic: the requests
 * the broker has read are answered (after their fsync), then it closes the connection and
 * exits 0; what it acknowledged is there after the restart.
 */
static void test_sigterm_while_producing(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    const char *cfg[] = {"flush.messages=1", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "term", 1, 1, cfg, NULL, 0), 0);
    int sent = 0, acked = 0, inflight = 0;
    bool signalled = false;
    for (;;) {
        while (!signalled && inflight < WINDOW) {
            assert_true(send_produce(&c, "term", 0, sent) > 0);
            sent++;
            inflight++;
        }
        if (!signalled && acked >= 200) {
            rn_h_broker_signal(&f->b, SIGTERM);
            signalled = true;
        }
        Runnel__Response *r = rn_rc_recv(&c, 10000);
        if (!r)
            break;
        assert_int_equal(r->produce->topics[0]->partitions[0]->error, 0);
        rn_rc_free(r);
        acked++;
        inflight--;
    }
    rn_rc_close(&c);
    /* Reap without a second signal, which would mean "exit now". */
    int status = -1;
    for (int i = 0; i < 2000 && waitpid(f->b.pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    f->b.pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rn_rc_broker_restart(&f->b), 0);
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    assert_int_equal(check_prefix(&c, "term", 0, acked, sent), acked);
    rn_rc_close(&c);
    finish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_restart),
        cmocka_unit_test(test_sigterm_while_producing),
        cmocka_unit_test(test_sigkill_keeps_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
