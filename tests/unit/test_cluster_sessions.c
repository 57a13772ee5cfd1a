/*
 * cluster/sessions.c: broker sessions under a fake clock (docs/cluster.md §3.4). A session
 * expires exactly at track/heartbeat + timeout, is reported once, comes back with a heartbeat;
 * a stale epoch neither renews nor is accepted; a re-registration replaces the epoch; a
 * takeover (clear + track) gives every broker a fresh deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sessions.h"

#define TIMEOUT 1500

static void expiry_at_deadline_reported_once(void **state)
{
    (void)state;
    rn_sess_t *s = rn_sess_new(TIMEOUT);
    assert_non_null(s);
    int32_t ids[8];
    assert_int_equal(rn_sess_track(s, 1, 10, 1000), RN_OK);
    assert_int_equal(rn_sess_track(s, 2, 20, 1100), RN_OK);
    assert_true(rn_sess_alive(s, 1, 2499));
    assert_int_equal(rn_sess_expired(s, 2499, ids, 8), 0);
    assert_int_equal(rn_sess_expired(s, 2500, ids, 8), 1);
    assert_int_equal(ids[0], 1);
    assert_false(rn_sess_alive(s, 1, 2500));
    /* reported once, not again while it stays silent */
    assert_int_equal(rn_sess_expired(s, 9000, ids, 8), 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(rn_sess_expired(s, 99000, ids, 8), 0);
    rn_sess_free(s);
}

static void heartbeat_renews_and_rearms(void **state)
{
    (void)state;
    rn_sess_t *s = rn_sess_new(TIMEOUT);
    int32_t ids[8];
    rn_sess_track(s, 3, 7, 0);
    for (int64_t t = 250; t <= 10000; t += 250) {
        assert_int_equal(rn_sess_heartbeat(s, 3, 7, t), RN_OK);
        assert_int_equal(rn_sess_expired(s, t + 1, ids, 8), 0);
    }
    assert_int_equal(rn_sess_expired(s, 11500, ids, 8), 1);
    /* back: alive again, and reported again after the next silence */
    assert_int_equal(rn_sess_heartbeat(s, 3, 7, 12000), RN_OK);
    assert_true(rn_sess_alive(s, 3, 13499));
    assert_int_equal(rn_sess_expired(s, 13499, ids, 8), 0);
    assert_int_equal(rn_sess_expired(s, 13500, ids, 8), 1);
    rn_sess_free(s);
}

static void stale_epoch_and_unknown(void **state)
{
    (void)state;
    rn_sess_t *s = rn_sess_new(TIMEOUT);
    int32_t ids[8];
    rn_sess_track(s, 1, 5, 0);
    assert_int_equal(rn_sess_heartbeat(s, 1, 4, 1000), RN_ERR_STALE_BROKER_EPOCH);
    assert_int_equal(rn_sess_heartbeat(s, 9, 5, 1000), RN_ERR_NOT_FOUND);
    /* the stale heartbeat did not renew */
    assert_int_equal(rn_sess_expired(s, 1500, ids, 8), 1);
    /* a re-registration (new epoch) replaces the session; the old epoch is now stale */
    assert_int_equal(rn_sess_track(s, 1, 12, 2000), RN_OK);
    assert_int_equal(rn_sess_count(s), 1);
    assert_int_equal(rn_sess_epoch(s, 1), 12);
    assert_int_equal(rn_sess_heartbeat(s, 1, 5, 2100), RN_ERR_STALE_BROKER_EPOCH);
    assert_int_equal(rn_sess_heartbeat(s, 1, 12, 2100), RN_OK);
    assert_int_equal(rn_sess_epoch(s, 77), 0);
    rn_sess_free(s);
}

/* The new controller knows nothing of the old one's deadlines: everyone starts fresh. */
static void takeover_fresh_deadlines(void **state)
{
    (void)state;
    rn_sess_t *s = rn_sess_new(TIMEOUT);
    int32_t ids[8];
    rn_sess_track(s, 1, 1, 0);
    rn_sess_track(s, 2, 2, 0);
    rn_sess_clear(s);
    assert_int_equal(rn_sess_count(s), 0);
    assert_false(rn_sess_alive(s, 1, 0));
    rn_sess_track(s, 1, 1, 5000);
    rn_sess_track(s, 2, 2, 5000);
    assert_int_equal(rn_sess_expired(s, 6499, ids, 8), 0);
    assert_int_equal(rn_sess_expired(s, 6500, ids, 8), 2);
    rn_sess_free(s);
}

static void forget_cap_and_limits(void **state)
{
    (void)state;
    rn_sess_t *s = rn_sess_new(TIMEOUT);
    int32_t ids[RN_SESS_MAX];
    for (int32_t i = 0; i < RN_SESS_MAX; i++)
        assert_int_equal(rn_sess_track(s, i + 1, 1, 0), RN_OK);
    assert_int_equal(rn_sess_track(s, 1000, 1, 0), RN_ERR_NO_SPACE);
    /* re-tracking a known id still works when full */
    assert_int_equal(rn_sess_track(s, 5, 2, 0), RN_OK);
    rn_sess_forget(s, 5);
    rn_sess_forget(s, 5);
    assert_int_equal(rn_sess_count(s), RN_SESS_MAX - 1);
    assert_int_equal(rn_sess_heartbeat(s, 5, 2, 0), RN_ERR_NOT_FOUND);
    assert_int_equal(rn_sess_track(s, 1000, 1, 0), RN_OK);
    /* cap bounds one call; the rest come in the next */
    assert_int_equal(rn_sess_expired(s, TIMEOUT, ids, 10), 10);
    assert_int_equal(rn_sess_expired(s, TIMEOUT, ids, RN_SESS_MAX), RN_SESS_MAX - 10);
    assert_int_equal(rn_sess_expired(s, TIMEOUT, ids, RN_SESS_MAX), 0);
    rn_sess_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expiry_at_deadline_reported_once),
        cmocka_unit_test(heartbeat_renews_and_rearms),
        cmocka_unit_test(stale_epoch_and_unknown),
        cmocka_unit_test(takeover_fresh_deadlines),
        cmocka_unit_test(forget_cap_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
