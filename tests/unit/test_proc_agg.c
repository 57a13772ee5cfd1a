/* processor/ops/agg.c: accumulators, NULL handling, merging, snapshot encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ops/agg.h"

static rn_value_t I(int64_t i) { return rn_val_int(RN_T_BIGINT, i); }
static rn_value_t D(double d) { return rn_val_double(d); }
static rn_value_t T(const char *s) { return rn_val_text(s, strlen(s)); }

static void feed(const rn_agg_desc_t *d, rn_agg_acc_t *acc, const rn_value_t *vals, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rn_agg_update(d, acc, &vals[i]), RN_OK);
}

static void test_basic_aggregates(void **state)
{
    (void)state;
    rn_value_t vals[] = {I(3), rn_val_null(RN_T_BIGINT), I(-5), I(10)};
    struct { rn_agg_kind_t k; rn_type_t type; int64_t want_i; double want_d; } cases[] = {
        {RN_AGG_COUNT_STAR, RN_T_BIGINT, 4, 0},
        {RN_AGG_COUNT, RN_T_BIGINT, 3, 0},
        {RN_AGG_SUM, RN_T_BIGINT, 8, 0},
        {RN_AGG_MIN, RN_T_BIGINT, -5, 0},
        {RN_AGG_MAX, RN_T_BIGINT, 10, 0},
        {RN_AGG_AVG, RN_T_DOUBLE, 0, 8.0 / 3},
        {RN_AGG_COUNT_DISTINCT, RN_T_BIGINT, 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rn_agg_desc_t d = {cases[i].k, RN_T_BIGINT, cases[i].type};
        assert_int_equal(rn_agg_result_type(d.kind, RN_T_BIGINT), cases[i].type);
        rn_agg_acc_t acc = {0};
        feed(&d, &acc, vals, 4);
        rn_value_t r = rn_agg_result(&d, &acc);
        assert_false(r.is_null);
        if (cases[i].type == RN_T_DOUBLE)
            assert_true(r.u.d == cases[i].want_d);
        else if (r.u.i != cases[i].want_i)
            fail_msg("case %zu: %lld", i, (long long)r.u.i);
        rn_agg_free(&d, &acc);
    }
}

static void test_empty_and_null_only(void **state)
{
    (void)state;
    rn_value_t nul = rn_val_null(RN_T_DOUBLE);
    rn_agg_kind_t kinds[] = {RN_AGG_SUM, RN_AGG_MIN, RN_AGG_MAX, RN_AGG_AVG};
    for (size_t i = 0; i < 4; i++) {
        rn_agg_desc_t d = {kinds[i], RN_T_DOUBLE, (rn_type_t)rn_agg_result_type(kinds[i], RN_T_DOUBLE)};
        rn_agg_acc_t acc = {0};
        feed(&d, &acc, &nul, 1);
        assert_true(rn_agg_result(&d, &acc).is_null); /* SQL: no value, no sum */
    }
    rn_agg_desc_t c = {RN_AGG_COUNT, RN_T_DOUBLE, RN_T_BIGINT};
    rn_agg_acc_t acc = {0};
    feed(&c, &acc, &nul, 1);
    rn_value_t r = rn_agg_result(&c, &acc);
    assert_false(r.is_null);
    assert_true(r.u.i == 0);
    assert_int_equal(rn_agg_result_type(RN_AGG_SUM, RN_T_TEXT), -1);
    assert_int_equal(rn_agg_result_type(RN_AGG_AVG, RN_T_TIMESTAMP), -1);
}

static void test_text_extremes_and_distinct(void **state)
{
    (void)state;
    rn_value_t vals[] = {T("m"), T("zz"), T("a"), T("m"), T("zz")};
    rn_agg_desc_t mn = {RN_AGG_MIN, RN_T_TEXT, RN_T_TEXT}, mx = {RN_AGG_MAX, RN_T_TEXT, RN_T_TEXT};
    rn_agg_desc_t cd = {RN_AGG_COUNT_DISTINCT, RN_T_TEXT, RN_T_BIGINT};
    rn_agg_acc_t a = {0}, b = {0}, c = {0};
    feed(&mn, &a, vals, 5);
    feed(&mx, &b, vals, 5);
    feed(&cd, &c, vals, 5);
    rn_value_t r = rn_agg_result(&mn, &a);
    assert_int_equal(r.len, 1);
    assert_memory_equal(r.u.s, "a", 1);
    r = rn_agg_result(&mx, &b);
    assert_memory_equal(r.u.s, "zz", 2);
    assert_true(rn_agg_result(&cd, &c).u.i == 3);
    rn_agg_free(&mn, &a);
    rn_agg_free(&mx, &b);
    rn_agg_free(&cd, &c);

    /* many distinct values grow the set; equal doubles -0.0 and 0.0 count once */
    rn_agg_desc_t dd = {RN_AGG_COUNT_DISTINCT, RN_T_DOUBLE, RN_T_BIGINT};
    rn_agg_acc_t e = {0};
    for (int i = 0; i < 10000; i++) {
        rn_value_t v = D(i % 2500);
        rn_agg_update(&dd, &e, &v);
    }
    rn_value_t z1 = D(0.0), z2 = D(-0.0);
    rn_agg_update(&dd, &e, &z1);
    rn_agg_update(&dd, &e, &z2);
    assert_true(rn_agg_result(&dd, &e).u.i == 2500);
    rn_agg_free(&dd, &e);
}

static void test_merge(void **state)
{
    (void)state;
    rn_value_t x[] = {I(1), I(2), I(3)}, y[] = {I(3), I(4)};
    rn_agg_kind_t kinds[] = {RN_AGG_COUNT_STAR, RN_AGG_SUM, RN_AGG_MIN, RN_AGG_MAX, RN_AGG_AVG,
                             RN_AGG_COUNT_DISTINCT};
    double want[] = {5, 13, 1, 4, 13.0 / 5, 4};
    for (size_t i = 0; i < 6; i++) {
        rn_agg_desc_t d = {kinds[i], RN_T_BIGINT, (rn_type_t)rn_agg_result_type(kinds[i], RN_T_BIGINT)};
        rn_agg_acc_t a = {0}, b = {0};
        feed(&d, &a, x, 3);
        feed(&d, &b, y, 2);
        assert_int_equal(rn_agg_merge(&d, &a, &b), RN_OK);
        rn_value_t r = rn_agg_result(&d, &a);
        double got = r.type == RN_T_DOUBLE ? r.u.d : (double)r.u.i;
        if (got != want[i])
            fail_msg("merge %zu: %g", i, got);
        assert_null(b.ext);
        rn_agg_free(&d, &a);
    }
}

static void test_snapshot_roundtrip(void **state)
{
    (void)state;
    rn_agg_desc_t descs[] = {
        {RN_AGG_SUM, RN_T_DOUBLE, RN_T_DOUBLE}, {RN_AGG_MAX, RN_T_TEXT, RN_T_TEXT},
        {RN_AGG_COUNT_DISTINCT, RN_T_TEXT, RN_T_BIGINT}, {RN_AGG_MIN, RN_T_TEXT, RN_T_TEXT},
    };
    rn_value_t vals[] = {T("alpha"), T("beta"), T("beta")};
    rn_value_t nums[] = {D(1.25), D(2.5)};
    rn_buf_t buf = RN_BUF_INIT;
    rn_agg_acc_t accs[4] = {{0}};
    feed(&descs[0], &accs[0], nums, 2);
    feed(&descs[1], &accs[1], vals, 3);
    feed(&descs[2], &accs[2], vals, 3);
    /* accs[3] stays empty: MIN of nothing */
    for (int i = 0; i < 4; i++)
        assert_int_equal(rn_agg_write(&descs[i], &accs[i], &buf), RN_OK);
    const uint8_t *p = buf.data, *end = buf.data + buf.len;
    for (int i = 0; i < 4; i++) {
        rn_agg_acc_t back;
        assert_int_equal(rn_agg_read(&descs[i], &back, &p, end), RN_OK);
        rn_value_t a = rn_agg_result(&descs[i], &accs[i]), b = rn_agg_result(&descs[i], &back);
        assert_int_equal(a.is_null, b.is_null);
        if (!a.is_null)
            assert_int_equal(rn_val_cmp(&a, &b), 0);
        rn_agg_free(&descs[i], &back);
        rn_agg_free(&descs[i], &accs[i]);
    }
    assert_ptr_equal(p, end);
    /* truncated input is corrupt, never a crash */
    for (size_t cut = 0; cut < buf.len; cut++) {
        const uint8_t *q = buf.data, *qend = buf.data + cut;
        rn_err_t err = RN_OK;
        for (int i = 0; i < 4 && err == RN_OK; i++) {
            rn_agg_acc_t back;
            err = rn_agg_read(&descs[i], &back, &q, qend);
            rn_agg_free(&descs[i], &back);
        }
        assert_int_equal(err, RN_ERR_CORRUPT);
    }
    rn_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_aggregates),
        cmocka_unit_test(test_empty_and_null_only),
        cmocka_unit_test(test_text_extremes_and_distinct),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_snapshot_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
