/* processor/ops/expr.c and value.c: evaluation, SQL NULL logic, types, timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ops/expr.h"
#include "sql/plan.h"

/* Compiles "SELECT k FROM s WHERE <cond> GROUP BY k" and evaluates <cond> over row. */
static rn_plan_t *where_plan(const char *cond)
{
    char text[1024], err[1024];
    snprintf(text, sizeof text,
             "CREATE SOURCE s (k TEXT, i BIGINT, d DOUBLE, b BOOLEAN, t TIMESTAMP, n BIGINT) "
             "FROM TOPIC 't' FORMAT JSON;\n"
             "CREATE SINK o INTO STDOUT PRIMARY KEY (k) AS SELECT k, COUNT(*) FROM s WHERE %s GROUP BY k;",
             cond);
    rn_sql_src_t src = {"e.sql", text, strlen(text)};
    rn_plan_t *p = NULL;
    if (rn_plan_build(&src, &p, err, sizeof err) != RN_OK)
        fail_msg("%s", err);
    return p;
}

/* 1 true, 0 false, -1 NULL */
static int eval3(const char *cond)
{
    rn_value_t row[6] = {rn_val_text("abc", 3), rn_val_int(RN_T_BIGINT, 7), rn_val_double(2.5),
                         rn_val_bool(true), rn_val_int(RN_T_TIMESTAMP, 1698400800000),
                         rn_val_null(RN_T_BIGINT)};
    rn_plan_t *p = where_plan(cond);
    rn_value_t v = rn_expr_eval(p->where, row);
    rn_plan_free(p);
    assert_int_equal(v.type, RN_T_BOOLEAN);
    return v.is_null ? -1 : v.u.b;
}

static void test_arithmetic_and_comparison(void **state)
{
    (void)state;
    assert_int_equal(eval3("i + 3 = 10"), 1);
    assert_int_equal(eval3("i * 2 - 4 = 10"), 1);
    assert_int_equal(eval3("i / 2 = 3"), 1);          /* integer division truncates */
    assert_int_equal(eval3("i % 4 = 3"), 1);
    assert_int_equal(eval3("-i = -7"), 1);
    assert_int_equal(eval3("d * 2 = 5"), 1);          /* DOUBLE and BIGINT mix */
    assert_int_equal(eval3("i / 2.0 = 3.5"), 1);
    assert_int_equal(eval3("(i + 1) * 2 = 16"), 1);
    assert_int_equal(eval3("i + 1 * 2 = 9"), 1);
    assert_int_equal(eval3("k = 'abc'"), 1);
    assert_int_equal(eval3("k < 'abd' AND k > 'ab'"), 1);
    assert_int_equal(eval3("k <> 'abc'"), 0);
    assert_int_equal(eval3("b = TRUE"), 1);
    assert_int_equal(eval3("t = '2023-10-27T10:00:00Z'"), 1);
    assert_int_equal(eval3("t > '2023-10-27T09:59:59.999+00:00'"), 1);
    assert_int_equal(eval3("t - INTERVAL '1' HOUR < '2023-10-27T10:00:00+01:00'"), 0);
    assert_int_equal(eval3("t + 1 > t"), 1);
    assert_int_equal(eval3("t - t = 0"), 1);
}

static void test_null_semantics(void **state)
{
    (void)state;
    assert_int_equal(eval3("n = 1"), -1);
    assert_int_equal(eval3("n + 1 > 0"), -1);
    assert_int_equal(eval3("n IS NULL"), 1);
    assert_int_equal(eval3("n IS NOT NULL"), 0);
    assert_int_equal(eval3("i IS NULL"), 0);
    assert_int_equal(eval3("NOT (n = 1)"), -1);
    assert_int_equal(eval3("n = 1 AND FALSE"), 0);    /* NULL AND FALSE = FALSE */
    assert_int_equal(eval3("n = 1 AND TRUE"), -1);
    assert_int_equal(eval3("n = 1 OR TRUE"), 1);      /* NULL OR TRUE = TRUE */
    assert_int_equal(eval3("n = 1 OR FALSE"), -1);
    assert_int_equal(eval3("FALSE AND n = 1"), 0);
    assert_int_equal(eval3("i / 0 IS NULL"), 1);      /* division by zero gives NULL */
    assert_int_equal(eval3("i % 0 IS NULL"), 1);
    assert_int_equal(eval3("d / 0 IS NULL"), 1);
    assert_int_equal(eval3("NULL IS NULL"), 1);
    assert_int_equal(eval3("NULL = NULL"), -1);
}

static void test_in_lists(void **state)
{
    (void)state;
    assert_int_equal(eval3("k IN ('x', 'abc')"), 1);
    assert_int_equal(eval3("k IN ('x', 'y')"), 0);
    assert_int_equal(eval3("k NOT IN ('x', 'y')"), 1);
    assert_int_equal(eval3("i IN (1, 7.0)"), 1);
    assert_int_equal(eval3("i IN (1, NULL)"), -1);    /* no match and a NULL: unknown */
    assert_int_equal(eval3("i IN (7, NULL)"), 1);
    assert_int_equal(eval3("n IN (1, 2)"), -1);
    assert_int_equal(eval3("i NOT IN (1, NULL)"), -1);
}

static void test_overflow_is_defined(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    rn_expr_t *x = rn_expr_const(&a, rn_val_int(RN_T_BIGINT, INT64_MAX));
    rn_expr_t *y = rn_expr_const(&a, rn_val_int(RN_T_BIGINT, 1));
    rn_expr_t *sum = rn_expr_binary(&a, RN_OP_ADD, x, y, RN_T_BIGINT);
    assert_true(rn_expr_eval(sum, NULL).u.i == INT64_MIN); /* wraps, no UB */
    rn_expr_t *mn = rn_expr_const(&a, rn_val_int(RN_T_BIGINT, INT64_MIN));
    rn_expr_t *m1 = rn_expr_const(&a, rn_val_int(RN_T_BIGINT, -1));
    assert_true(rn_expr_eval(rn_expr_binary(&a, RN_OP_DIV, mn, m1, RN_T_BIGINT), NULL).u.i == INT64_MIN);
    assert_true(rn_expr_eval(rn_expr_binary(&a, RN_OP_MOD, mn, m1, RN_T_BIGINT), NULL).u.i == 0);
    assert_int_equal(rn_expr_binary_type(RN_OP_ADD, RN_T_TEXT, RN_T_BIGINT), -1);
    assert_int_equal(rn_expr_binary_type(RN_OP_SUB, RN_T_TIMESTAMP, RN_T_TIMESTAMP), RN_T_BIGINT);
    assert_int_equal(rn_expr_binary_type(RN_OP_ADD, RN_T_TIMESTAMP, RN_T_BIGINT), RN_T_TIMESTAMP);
    assert_int_equal(rn_expr_binary_type(RN_OP_LT, RN_T_BOOLEAN, RN_T_BIGINT), -1);
    rn_arena_free(&a);
}

static void test_timestamps(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(rn_ts_parse("2023-10-27T10:00:00Z", 20, &ms));
    assert_true(ms == 1698400800000);
    assert_true(rn_ts_parse("2023-10-27 10:00:00.5", 21, &ms));
    assert_true(ms == 1698400800500);
    assert_true(rn_ts_parse("2023-10-27T12:00:00.123456+02:00", 32, &ms));
    assert_true(ms == 1698400800123);
    assert_true(rn_ts_parse("2023-10-27T05:30-0430", 21, &ms));
    assert_true(ms == 1698400800000);
    assert_true(rn_ts_parse("1969-12-31T23:59:59.999Z", 24, &ms));
    assert_true(ms == -1);
    assert_true(rn_ts_parse("2024-02-29", 10, &ms));
    assert_true(ms == 1709164800000);
    assert_false(rn_ts_parse("2023-13-01T00:00:00Z", 20, &ms));
    assert_false(rn_ts_parse("2023-10-27T10:00:00Zjunk", 24, &ms));
    assert_false(rn_ts_parse("yesterday", 9, &ms));
    assert_false(rn_ts_parse("2023-10-27T25:00:00Z", 20, &ms));
    char buf[40];
    rn_ts_format(1698400800123, buf, sizeof buf);
    assert_string_equal(buf, "2023-10-27T10:00:00.123Z");
    rn_ts_format(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    for (int64_t t = -86400000LL * 800; t < 86400000LL * 20000; t += 86400000LL * 37 + 12345) {
        rn_ts_format(t, buf, sizeof buf);
        assert_true(rn_ts_parse(buf, strlen(buf), &ms));
        assert_true(ms == t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arithmetic_and_comparison),
        cmocka_unit_test(test_null_semantics),
        cmocka_unit_test(test_in_lists),
        cmocka_unit_test(test_overflow_is_defined),
        cmocka_unit_test(test_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
