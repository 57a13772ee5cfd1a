/*
 * test_broker_pstate.c - broker/pstate.c driven directly (no process): sequence rules,
 * duplicates, several batches in one append, expiry against a reference model (the hash
 * table's deletions), and snapshots (round trip, stale and damaged files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pstate.h"

static rn_batch_header_t batch(int64_t pid, int16_t epoch, int32_t seq, uint32_t count,
                               uint64_t base_offset)
{
    rn_batch_header_t h = {0};
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.record_count = count;
    h.last_offset_delta = count - 1;
    h.base_offset = base_offset;
    return h;
}

static rn_err_t check1(rn_pstate_t *ps, rn_batch_header_t h, rn_pstate_verdict_t *v)
{
    size_t bad;
    char msg[200];
    return rn_pstate_check(ps, &h, 1, v, &bad, msg, sizeof msg);
}

static void test_sequences(void **state)
{
    (void)state;
    rn_pstate_t *ps = rn_pstate_new();
    rn_pstate_verdict_t v;
    uint64_t off = 0;
    for (int i = 0; i < 7; i++, off += 2) {
        rn_batch_header_t h = batch(7, 0, i * 2, 2, off);
        assert_int_equal(check1(ps, h, &v), RN_OK);
        assert_false(v.duplicate);
        assert_int_equal(rn_pstate_update(ps, &h, 1000), RN_OK);
    }
    /* The last five are duplicates with their offsets; older ones are not known. */
    for (int i = 2; i < 7; i++) {
        assert_int_equal(check1(ps, batch(7, 0, i * 2, 2, 99), &v), RN_OK);
        assert_true(v.duplicate);
        assert_int_equal(v.first_offset, (uint64_t)i * 2);
        assert_int_equal(v.last_offset, (uint64_t)i * 2 + 1);
    }
    assert_int_equal(check1(ps, batch(7, 0, 2, 2, 99), &v), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* Same first sequence, different length: not a duplicate, and not the next either. */
    assert_int_equal(check1(ps, batch(7, 0, 12, 1, 99), &v), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(check1(ps, batch(7, -1 + 0, 14, 1, 99), &v), RN_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(check1(ps, batch(7, 1, 14, 1, 99), &v), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(check1(ps, batch(7, 1, 0, 1, 99), &v), RN_OK);

    /* Several batches of one append: each checked as if the earlier ones were appended. */
    rn_batch_header_t hs[3] = {batch(7, 0, 14, 3, 0), batch(8, 0, 5, 1, 0),
                               batch(7, 0, 17, 2, 0)};
    rn_pstate_verdict_t vs[3];
    size_t bad = 99;
    char msg[200];
    assert_int_equal(rn_pstate_check(ps, hs, 3, vs, &bad, msg, sizeof msg), RN_OK);
    hs[2].base_sequence = 18;
    assert_int_equal(rn_pstate_check(ps, hs, 3, vs, &bad, msg, sizeof msg),
                     RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(bad, 2);
    assert_non_null(strstr(msg, "expected sequence 17"));

    /* Wrap-around. */
    assert_int_equal(rn_pstate_last_seq(INT32_MAX - 1, 3), 0);
    assert_int_equal(rn_pstate_next_seq(INT32_MAX), 0);
    rn_batch_header_t w = batch(9, 0, INT32_MAX, 1, 50);
    assert_int_equal(rn_pstate_update(ps, &w, 1000), RN_OK);
    assert_int_equal(check1(ps, batch(9, 0, 0, 1, 51), &v), RN_OK);
    assert_int_equal(check1(ps, batch(9, 0, 1, 1, 51), &v), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    rn_pstate_free(ps);
}

/* Known producers refuse a far-off sequence; unknown ones accept it. */
static bool known(rn_pstate_t *ps, int64_t pid)
{
    rn_pstate_verdict_t v;
    return check1(ps, batch(pid, 0, 1000000, 1, 0), &v) == RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

static void test_expiry_against_model(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 20; round++) {
        rn_pstate_t *ps = rn_pstate_new();
        enum { N = 3000 };
        static int64_t pids[N];
        static int64_t last[N];
        static bool alive[N];
        for (int i = 0; i < N; i++) {
            /* Clustered ids make long probe chains, where deletion is subtle. */
            pids[i] = (int64_t)(rand() % 4 == 0 ? rand() : i * 1024);
            bool dup = false;
            for (int j = 0; j < i && !dup; j++)
                dup = pids[j] == pids[i];
            if (dup) {
                pids[i] = -1;
                continue;
            }
            last[i] = rand() % 1000;
            alive[i] = true;
            rn_batch_header_t h = batch(pids[i], 0, 0, 1, (uint64_t)i);
            assert_int_equal(rn_pstate_update(ps, &h, last[i]), RN_OK);
        }
        for (int step = 0; step < 3; step++) {
            int64_t now = 1000 + step * 300, idle = 700;
            size_t expect = 0;
            for (int i = 0; i < N; i++) {
                if (pids[i] >= 0 && alive[i] && now - last[i] > idle) {
                    alive[i] = false;
                    expect++;
                }
            }
            assert_int_equal(rn_pstate_expire(ps, now, idle), expect);
            for (int i = 0; i < N; i++) {
                if (pids[i] >= 0)
                    assert_int_equal(known(ps, pids[i]), alive[i]);
            }
        }
        rn_pstate_free(ps);
    }
}

static void test_snapshots(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("broker-pstate");
    rn_pstate_t *ps = rn_pstate_new();
    for (int64_t pid = 1; pid <= 50; pid++) {
        for (int i = 0; i < 7; i++) {
            rn_batch_header_t h = batch(pid, 3, i * 4, 4, (uint64_t)(pid * 100 + i * 4));
            rn_pstate_update(ps, &h, 5000);
        }
    }
    assert_int_equal(rn_pstate_save(ps, dir, 1000), RN_OK);
    rn_batch_header_t more = batch(1, 3, 28, 4, 2000);
    rn_pstate_update(ps, &more, 6000);
    assert_int_equal(rn_pstate_save(ps, dir, 2000), RN_OK);
    assert_int_equal(rn_pstate_save(ps, dir, 3000), RN_OK);

    /* Only the two newest remain. */
    char path[700];
    snprintf(path, sizeof path, "%s/%020d.snapshot", dir, 1000);
    assert_int_not_equal(access(path, F_OK), 0);

    /* The log ends at 2500: the snapshot at 3000 is past it, so it is deleted and 2000 used. */
    rn_pstate_t *re = rn_pstate_new();
    uint64_t at = 0;
    assert_int_equal(rn_pstate_load(re, dir, 2500, &at), RN_OK);
    assert_int_equal(at, 2000);
    snprintf(path, sizeof path, "%s/%020d.snapshot", dir, 3000);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(rn_pstate_count(re), 50);
    rn_pstate_verdict_t v;
    assert_int_equal(check1(re, batch(1, 3, 28, 4, 0), &v), RN_OK);
    assert_true(v.duplicate);
    assert_int_equal(v.first_offset, 2000);
    assert_int_equal(check1(re, batch(2, 3, 28, 4, 0), &v), RN_OK);
    assert_false(v.duplicate);
    assert_int_equal(check1(re, batch(2, 2, 28, 4, 0), &v), RN_ERR_INVALID_PRODUCER_EPOCH);
    rn_pstate_free(re);

    /* A damaged snapshot is dropped; with nothing else, NOT_FOUND (the caller replays). */
    snprintf(path, sizeof path, "%s/%020d.snapshot", dir, 2000);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 40, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    re = rn_pstate_new();
    assert_int_equal(rn_pstate_load(re, dir, 2500, &at), RN_ERR_NOT_FOUND);
    assert_int_equal(rn_pstate_count(re), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    rn_pstate_free(re);
    rn_pstate_free(ps);
    rn_h_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_expiry_against_model),
        cmocka_unit_test(test_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
