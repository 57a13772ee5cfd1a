/* processor/ops/window.c and watermark.c: window assignment, session merging, watermarks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ops/watermark.h"
#include "ops/window.h"

static void test_tumble(void **state)
{
    (void)state;
    rn_win_spec_t w = {RN_WIN_TUMBLE, 300000, 300000, 0};
    int64_t s[4];
    assert_int_equal(rn_win_max_per_event(&w), 1);
    assert_int_equal(rn_win_assign(&w, 0, s), 1);
    assert_true(s[0] == 0);
    assert_int_equal(rn_win_assign(&w, 299999, s), 1);
    assert_true(s[0] == 0);
    assert_int_equal(rn_win_assign(&w, 300000, s), 1);
    assert_true(s[0] == 300000);
    assert_int_equal(rn_win_assign(&w, -1, s), 1); /* before the epoch: floor, not truncate */
    assert_true(s[0] == -300000);
    assert_int_equal(rn_win_assign(&w, 1698400999999, s), 1);
    assert_true(s[0] == 1698400800000);
}

static void test_hop(void **state)
{
    (void)state;
    rn_win_spec_t w = {RN_WIN_HOP, 600000, 60000, 0}; /* 10-minute windows every minute */
    int64_t s[16];
    assert_int_equal(rn_win_max_per_event(&w), 10);
    size_t n = rn_win_assign(&w, 630000, s);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        assert_true(s[i] <= 630000 && 630000 < s[i] + 600000);
        if (i)
            assert_true(s[i] == s[i - 1] + 60000);
    }
    assert_true(s[0] == 60000);
    assert_true(s[9] == 600000);
    n = rn_win_assign(&w, 600000, s); /* on a boundary: [0,600000) excluded */
    assert_int_equal(n, 10);
    assert_true(s[0] == 60000);
    n = rn_win_assign(&w, -30000, s);
    assert_int_equal(n, 10);
    assert_true(s[9] == -60000);
    rn_win_spec_t w2 = {RN_WIN_HOP, 10, 10, 0};
    assert_int_equal(rn_win_assign(&w2, 15, s), 1);
    assert_true(s[0] == 10);
}

static void test_session_merging(void **state)
{
    (void)state;
    const int64_t gap = 900000; /* 15 minutes */
    rn_win_session_t s[8] = {{0, 0}};
    size_t n = 0;
    rn_win_merge_t m;
    rn_win_session_plan(s, n, 0, gap, &m); /* first event */
    assert_true(m.created);
    n = rn_win_session_apply(s, n, &m);
    assert_int_equal(n, 1);
    assert_true(s[0].start == 0 && s[0].end == gap);

    rn_win_session_plan(s, n, 600000, gap, &m); /* within the gap: extends */
    assert_false(m.created);
    assert_int_equal(m.first, 0);
    assert_int_equal(m.last, 0);
    n = rn_win_session_apply(s, n, &m);
    assert_true(s[0].start == 0 && s[0].end == 600000 + gap);

    rn_win_session_plan(s, n, 3600000, gap, &m); /* an hour later: a new session */
    assert_true(m.created);
    assert_int_equal(m.first, 1);
    n = rn_win_session_apply(s, n, &m);
    assert_int_equal(n, 2);

    rn_win_session_plan(s, n, -2000000, gap, &m); /* earlier than all: inserted in front */
    assert_true(m.created);
    assert_int_equal(m.first, 0);
    n = rn_win_session_apply(s, n, &m);
    assert_int_equal(n, 3);
    assert_true(s[0].start == -2000000 && s[1].start == 0 && s[2].start == 3600000);

    /* A late event at 2,400,000 bridges [0, 1,500,000) and [3,600,000, 4,500,000):
     * its window [2,400,000, 3,300,000) touches neither... */
    rn_win_session_plan(s, n, 2400000, gap, &m);
    assert_true(m.created);
    /* ...but one at 2,700,000 reaches 3,600,000 (touching counts) and one at 1,500,000 is
     * touched by the first session's end: the three become one. */
    n = rn_win_session_apply(s, n, &m);
    assert_int_equal(n, 4);
    rn_win_session_plan(s, n, 2700000, gap, &m);
    assert_false(m.created);
    assert_int_equal(m.first, 2);
    assert_int_equal(m.last, 3);
    n = rn_win_session_apply(s, n, &m);
    assert_int_equal(n, 3);
    assert_true(s[2].start == 2400000 && s[2].end == 3600000 + gap);
    rn_win_session_plan(s, n, 1500000, gap, &m);
    assert_false(m.created);
    assert_int_equal(m.first, 1);
    assert_int_equal(m.last, 2);
    n = rn_win_session_apply(s, n, &m);
    assert_int_equal(n, 2);
    assert_true(s[1].start == 0 && s[1].end == 4500000);
    assert_true(s[0].start == -2000000 && s[0].end == -2000000 + gap);
}

static void test_watermark_min_over_partitions(void **state)
{
    (void)state;
    rn_clock_manual_t clk;
    rn_clock_manual_init(&clk, 1000);
    rn_wm_t *wm;
    assert_int_equal(rn_wm_new(3, 5000, -1, &clk.clock, &wm), RN_OK);
    assert_true(rn_wm_current(wm) == RN_WM_NONE);
    rn_wm_observe(wm, 0, 100000);
    rn_wm_observe(wm, 1, 50000);
    assert_true(rn_wm_current(wm) == RN_WM_NONE); /* partition 2 has said nothing yet */
    assert_true(rn_wm_observe(wm, 2, 70000) == 45000);
    assert_true(rn_wm_observe(wm, 1, 200000) == 65000); /* now partition 2 holds it */
    assert_true(rn_wm_observe(wm, 1, 10) == 65000);     /* out-of-order events never lower it */
    assert_true(rn_wm_observe(wm, 0, 90000) == 65000);
    assert_true(rn_wm_observe(wm, 2, 300000) == 95000);
    /* never moves back, even when a partition restarts lower */
    rn_wm_restore(wm, 0, 0);
    assert_true(rn_wm_current(wm) == 95000);
    rn_wm_free(wm);
}

static void test_watermark_idle_partitions(void **state)
{
    (void)state;
    rn_clock_manual_t clk;
    rn_clock_manual_init(&clk, 0);
    rn_wm_t *wm;
    assert_int_equal(rn_wm_new(2, 0, 10000, &clk.clock, &wm), RN_OK);
    rn_wm_observe(wm, 0, 500000);
    assert_true(rn_wm_tick(wm) == RN_WM_NONE); /* partition 1 silent, not yet idle */
    clk.now_ms = 9999;
    rn_wm_observe(wm, 0, 600000);
    assert_true(rn_wm_tick(wm) == RN_WM_NONE);
    assert_false(rn_wm_idle(wm, 1));
    clk.now_ms = 10000;
    assert_true(rn_wm_tick(wm) == 600000); /* partition 1 idle: it stops holding */
    assert_true(rn_wm_idle(wm, 1));
    assert_false(rn_wm_idle(wm, 0));
    /* partition 1 comes back with old data: active again, the watermark does not go back */
    assert_true(rn_wm_observe(wm, 1, 1000) == 600000);
    assert_false(rn_wm_idle(wm, 1));
    rn_wm_observe(wm, 0, 700000);
    assert_true(rn_wm_current(wm) == 600000); /* held by partition 1 at 1000 */
    rn_wm_observe(wm, 1, 800000);
    assert_true(rn_wm_current(wm) == 700000);
    /* both go quiet: both idle, watermark stays */
    clk.now_ms = 100000;
    rn_wm_tick(wm);
    clk.now_ms = 200000;
    assert_true(rn_wm_tick(wm) == 700000);
    assert_true(rn_wm_idle(wm, 0) && rn_wm_idle(wm, 1));
    rn_wm_free(wm);
}

static void test_watermark_finished(void **state)
{
    (void)state;
    rn_clock_manual_t clk;
    rn_clock_manual_init(&clk, 0);
    rn_wm_t *wm;
    assert_int_equal(rn_wm_new(2, 1000, -1, &clk.clock, &wm), RN_OK);
    rn_wm_observe(wm, 0, 5000);
    rn_wm_finish(wm, 1); /* a bounded run read partition 1 (empty) to its end */
    assert_true(rn_wm_current(wm) == 4000);
    clk.now_ms = 1000000000;
    assert_true(rn_wm_tick(wm) == 4000); /* never idle with idle.timeout.ms unset */
    assert_false(rn_wm_idle(wm, 0));
    assert_true(rn_wm_max_ts(wm, 0) == 5000);
    rn_wm_free(wm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumble),
        cmocka_unit_test(test_hop),
        cmocka_unit_test(test_session_merging),
        cmocka_unit_test(test_watermark_min_over_partitions),
        cmocka_unit_test(test_watermark_idle_partitions),
        cmocka_unit_test(test_watermark_finished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
