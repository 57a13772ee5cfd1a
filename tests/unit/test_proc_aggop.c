/* processor/ops/aggop.c: windows, lateness, HAVING, emit policies, session merges, driven
 * by a hand-set watermark; and a randomized tumbling job checked against a naive count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/aggop.h"
#include "ops/watermark.h"
#include "sql/plan.h"

typedef struct sink {
    char rows[256][160];
    int n;
} sink_t;

static rn_err_t collect(void *ctx, rn_row_op_t op, const rn_value_t *row, size_t n)
{
    sink_t *s = ctx;
    char *o = s->rows[s->n++];
    size_t len = (size_t)sprintf(o, "%c", op == RN_ROW_UPSERT ? 'U' : 'D');
    for (size_t i = 0; i < n; i++) {
        const rn_value_t *v = &row[i];
        if (v->is_null)
            len += (size_t)sprintf(o + len, "|null");
        else if (v->type == RN_T_TEXT)
            len += (size_t)sprintf(o + len, "|%.*s", (int)v->len, v->u.s);
        else if (v->type == RN_T_DOUBLE)
            len += (size_t)sprintf(o + len, "|%g", v->u.d);
        else if (v->type == RN_T_BOOLEAN)
            len += (size_t)sprintf(o + len, "|%s", v->u.b ? "true" : "false");
        else
            len += (size_t)sprintf(o + len, "|%lld", (long long)v->u.i);
    }
    return RN_OK;
}

static const rn_plan_t *g_plan;
static rn_err_t out_fn(void *ctx, rn_row_op_t op, const rn_value_t *row)
{
    return collect(ctx, op, row, g_plan->nout);
}

#define SRC "CREATE SOURCE c (u TEXT, a TEXT, v DOUBLE, ts TIMESTAMP) FROM TOPIC 't' FORMAT JSON "

static rn_plan_t *mkplan(const char *text)
{
    char err[1024];
    rn_sql_src_t src = {"t.sql", text, strlen(text)};
    rn_plan_t *p = NULL;
    if (rn_plan_build(&src, &p, err, sizeof err) != RN_OK)
        fail_msg("%s", err);
    g_plan = p;
    return p;
}

static void ev(rn_agop_t *op, const char *u, const char *a, double v, int64_t ts, int64_t wm,
               bool want_late)
{
    rn_value_t row[4] = {rn_val_text(u, strlen(u)), rn_val_text(a, strlen(a)), rn_val_double(v),
                         rn_val_int(RN_T_TIMESTAMP, ts)};
    bool late;
    assert_int_equal(rn_agop_process(op, row, wm, &late), RN_OK);
    assert_int_equal(late, want_late);
}

static void expect_rows(sink_t *s, const char *const *want, int n)
{
    if (s->n != n) {
        for (int i = 0; i < s->n; i++)
            print_error("  got %s\n", s->rows[i]);
        fail_msg("got %d rows, want %d", s->n, n);
    }
    for (int i = 0; i < n; i++)
        assert_string_equal(s->rows[i], want[i]);
    s->n = 0;
}

static void test_fraud_on_close(void **state)
{
    (void)state;
    rn_plan_t *p = mkplan(SRC "WITH ('allowed.lateness.ms' = '1000');"
        "CREATE SINK s INTO STDOUT PRIMARY KEY (window_start, u) AS "
        "SELECT window_start, window_end, u, SUM(v) AS total, COUNT(*) AS n FROM TUMBLE(c, ts, INTERVAL '10' SECOND) "
        "WHERE a = 'click' GROUP BY window_start, window_end, u HAVING SUM(v) > 100;");
    sink_t s = {0};
    rn_agop_t *op;
    assert_int_equal(rn_agop_new(p, out_fn, &s, &op), RN_OK);
    int64_t wm = RN_WM_NONE;
    ev(op, "u1", "click", 60, 1000, wm, false);
    ev(op, "u1", "view", 500, 2000, wm, false);   /* filtered */
    ev(op, "u2", "click", 10, 3000, wm, false);
    ev(op, "u1", "click", 50, 9999, wm, false);
    ev(op, "u1", "click", 70, 10000, wm, false);  /* next window */
    assert_int_equal(rn_agop_advance(op, 10500), RN_OK); /* lateness keeps [0,10000) open */
    assert_int_equal(s.n, 0);
    ev(op, "u2", "click", 95, 5000, 10500, false); /* late but within lateness: counted */
    assert_int_equal(rn_agop_advance(op, 11000), RN_OK);
    const char *w1[] = {"U|0|10000|u1|110|2", "U|0|10000|u2|105|2"};
    /* order of groups inside a window is not part of the contract: sort */
    if (strcmp(s.rows[0], s.rows[1]) > 0) {
        char t[160];
        strcpy(t, s.rows[0]);
        strcpy(s.rows[0], s.rows[1]);
        strcpy(s.rows[1], t);
    }
    expect_rows(&s, w1, 2);
    ev(op, "u2", "click", 1000, 9000, 11000, true); /* its window closed: late, dropped */
    assert_int_equal(rn_agop_stats(op)->late, 1);
    assert_int_equal(rn_agop_stats(op)->filtered, 1);
    assert_int_equal(rn_agop_finish(op), RN_OK);
    expect_rows(&s, NULL, 0); /* u1's second window: 70, HAVING fails */
    rn_agop_free(op);
    rn_plan_free(p);
}

static void test_emit_every_and_having_retraction(void **state)
{
    (void)state;
    rn_plan_t *p = mkplan(SRC ";CREATE SINK s INTO STDOUT PRIMARY KEY (window_start, u) AS "
        "SELECT window_start, u, SUM(v) AS total FROM TUMBLE(c, ts, INTERVAL '10' SECOND) "
        "GROUP BY window_start, u HAVING SUM(v) > 100 EMIT EVERY INTERVAL '1' SECOND;");
    sink_t s = {0};
    rn_agop_t *op;
    assert_int_equal(rn_agop_new(p, out_fn, &s, &op), RN_OK);
    ev(op, "u1", "x", 150, 1000, RN_WM_NONE, false);
    ev(op, "u2", "x", 50, 1000, RN_WM_NONE, false);
    assert_int_equal(rn_agop_emit_changes(op), RN_OK);
    const char *r1[] = {"U|0|u1|150"};
    expect_rows(&s, r1, 1);
    assert_int_equal(rn_agop_emit_changes(op), RN_OK); /* nothing changed */
    expect_rows(&s, NULL, 0);
    ev(op, "u1", "x", -100, 2000, RN_WM_NONE, false); /* u1 falls under HAVING: its row goes */
    ev(op, "u2", "x", 60, 2000, RN_WM_NONE, false);
    assert_int_equal(rn_agop_emit_changes(op), RN_OK);
    const char *r2[] = {"D|0|u1|50", "U|0|u2|110"};
    expect_rows(&s, r2, 2);
    ev(op, "u2", "x", 1, 3000, RN_WM_NONE, false);
    assert_int_equal(rn_agop_advance(op, 10000), RN_OK); /* close: only the changed group */
    const char *r3[] = {"U|0|u2|111"};
    expect_rows(&s, r3, 1);
    assert_int_equal(rn_ws_count(rn_agop_state(op)), 0);
    rn_agop_free(op);
    rn_plan_free(p);
}

static void test_sessions_merge(void **state)
{
    (void)state;
    rn_plan_t *p = mkplan(SRC ";CREATE SINK s INTO STDOUT PRIMARY KEY (u, window_start) AS "
        "SELECT u, window_start, window_end, COUNT(*) AS pages FROM SESSION(c, ts, INTERVAL '10' SECOND) "
        "GROUP BY u EMIT EVERY INTERVAL '1' SECOND;");
    sink_t s = {0};
    rn_agop_t *op;
    assert_int_equal(rn_agop_new(p, out_fn, &s, &op), RN_OK);
    ev(op, "u1", "x", 0, 0, RN_WM_NONE, false);
    ev(op, "u1", "x", 0, 5000, RN_WM_NONE, false);     /* [0, 15000) */
    ev(op, "u1", "x", 0, 22000, RN_WM_NONE, false);    /* [22000, 32000) */
    assert_int_equal(rn_agop_emit_changes(op), RN_OK);
    const char *r1[] = {"U|u1|0|15000|2", "U|u1|22000|32000|1"};
    expect_rows(&s, r1, 2);
    ev(op, "u1", "x", 0, 14000, RN_WM_NONE, false);    /* [14000, 24000) bridges both */
    const char *r2[] = {"D|u1|22000|32000|1"};        /* the absorbed session's row goes */
    expect_rows(&s, r2, 1);
    assert_int_equal(rn_agop_emit_changes(op), RN_OK);
    const char *r3[] = {"U|u1|0|32000|4"};
    expect_rows(&s, r3, 1);
    ev(op, "u1", "x", 0, -9000, RN_WM_NONE, false);    /* extends the start backwards */
    const char *r4[] = {"D|u1|0|32000|4"};
    expect_rows(&s, r4, 1);
    assert_int_equal(rn_agop_advance(op, 32000), RN_OK);
    const char *r5[] = {"U|u1|-9000|32000|5"};
    expect_rows(&s, r5, 1);
    ev(op, "u1", "x", 0, 15000, 32000, true);          /* [15000, 25000) ends before the watermark */
    ev(op, "u1", "x", 0, 25000, 32000, false);         /* Flink's rule: a new session, not late */
    rn_agop_free(op);
    rn_plan_free(p);
}

static void test_sessions_on_close_with_late_merge(void **state)
{
    (void)state;
    rn_plan_t *p = mkplan(SRC ";CREATE SINK s INTO STDOUT PRIMARY KEY (u, window_start) AS "
        "SELECT u, window_start, window_end, COUNT(*) AS pages FROM SESSION(c, ts, INTERVAL '10' SECOND) "
        "GROUP BY u;");
    sink_t s = {0};
    rn_agop_t *op;
    assert_int_equal(rn_agop_new(p, out_fn, &s, &op), RN_OK);
    ev(op, "a", "x", 0, 0, RN_WM_NONE, false);
    ev(op, "b", "x", 0, 1000, RN_WM_NONE, false);
    ev(op, "a", "x", 0, 12000, RN_WM_NONE, false);  /* [0,10000) and [12000,22000) */
    ev(op, "a", "x", 0, 8000, 5000, false);          /* bridges them: [0, 22000) */
    assert_int_equal(rn_agop_advance(op, 11000), RN_OK);
    const char *r1[] = {"U|b|1000|11000|1"};
    expect_rows(&s, r1, 1);
    assert_int_equal(rn_agop_finish(op), RN_OK);
    const char *r2[] = {"U|a|0|22000|3"};
    expect_rows(&s, r2, 1);
    rn_agop_free(op);
    rn_plan_free(p);
}

static void test_hop_and_unwindowed(void **state)
{
    (void)state;
    rn_plan_t *p = mkplan(SRC ";CREATE SINK s INTO STDOUT PRIMARY KEY (window_end) AS "
        "SELECT window_end, COUNT(DISTINCT u) AS users, MAX(v) AS top FROM HOP(c, ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) "
        "GROUP BY window_end;");
    sink_t s = {0};
    rn_agop_t *op;
    assert_int_equal(rn_agop_new(p, out_fn, &s, &op), RN_OK);
    ev(op, "a", "x", 1, 1000, RN_WM_NONE, false);   /* [-5000,5000) [0,10000) */
    ev(op, "b", "x", 2, 6000, RN_WM_NONE, false);   /* [0,10000) [5000,15000) */
    ev(op, "a", "x", 3, 7000, RN_WM_NONE, false);
    assert_int_equal(rn_agop_finish(op), RN_OK);
    const char *r[] = {"U|5000|1|1", "U|10000|2|3", "U|15000|2|3"};
    expect_rows(&s, r, 3);
    rn_agop_free(op);
    rn_plan_free(p);

    p = mkplan(SRC ";CREATE SINK s INTO STDOUT PRIMARY KEY (u) AS SELECT u, COUNT(*) AS n, AVG(v) AS avg FROM c GROUP BY u;");
    assert_int_equal(rn_agop_new(p, out_fn, &s, &op), RN_OK);
    ev(op, "a", "x", 1, 0, RN_WM_NONE, false);
    ev(op, "a", "x", 2, 0, RN_WM_NONE, false);
    assert_int_equal(rn_agop_emit_changes(op), RN_OK);
    const char *r2[] = {"U|a|2|1.5"};
    expect_rows(&s, r2, 1);
    ev(op, "b", "x", 4, 0, RN_WM_NONE, false);
    assert_int_equal(rn_agop_finish(op), RN_OK);
    const char *r3[] = {"U|b|1|4"};
    expect_rows(&s, r3, 1);
    rn_agop_free(op);
    rn_plan_free(p);
}

/* Random out-of-order events over 3 partitions through real watermarks; every window's
 * count must equal a naive count of the events that were not dropped as late. */
typedef struct tally {
    int64_t counts[64][4]; /* window index, user */
    int emitted;
} tally_t;

static rn_err_t tally_fn(void *ctx, rn_row_op_t op, const rn_value_t *row)
{
    tally_t *t = ctx;
    assert_int_equal(op, RN_ROW_UPSERT);
    int w = (int)(row[0].u.i / 1000), u = row[1].u.s[1] - '0';
    assert_true(t->counts[w][u] == 0); /* each (window, key) written once */
    t->counts[w][u] = row[2].u.i;
    t->emitted++;
    return RN_OK;
}

static void test_random_against_naive(void **state)
{
    (void)state;
    rn_plan_t *p = mkplan(SRC "WATERMARK FOR ts AS ts - INTERVAL '300' MILLISECOND;"
        "CREATE SINK s INTO STDOUT PRIMARY KEY (window_start, u) AS SELECT window_start, u, COUNT(*) AS n "
        "FROM TUMBLE(c, ts, INTERVAL '1' SECOND) GROUP BY window_start, u;");
    tally_t t = {0};
    int64_t want[64][4] = {{0}};
    rn_agop_t *op;
    rn_wm_t *wm;
    rn_clock_manual_t clk;
    rn_clock_manual_init(&clk, 0);
    assert_int_equal(rn_agop_new(p, tally_fn, &t, &op), RN_OK);
    assert_int_equal(rn_wm_new(3, p->wm_delay_ms, -1, &clk.clock, &wm), RN_OK);
    srand(7);
    int64_t next[3] = {0, 0, 0};
    int late = 0;
    for (int i = 0; i < 20000; i++) {
        int part = rand() % 3;
        next[part] += rand() % 5;
        int64_t ts = next[part] - rand() % 600; /* up to 600 ms out of order */
        if (ts < 0 || ts >= 60000)
            continue;
        char u[3] = {'u', (char)('0' + rand() % 4), 0};
        int64_t w = rn_wm_observe(wm, (size_t)part, ts);
        rn_value_t row[4] = {rn_val_text(u, 2), rn_val_text("a", 1), rn_val_double(1),
                             rn_val_int(RN_T_TIMESTAMP, ts)};
        bool is_late;
        assert_int_equal(rn_agop_process(op, row, w, &is_late), RN_OK);
        if (is_late)
            late++;
        else
            want[ts / 1000][u[1] - '0']++;
        assert_int_equal(rn_agop_advance(op, w), RN_OK);
    }
    assert_int_equal(rn_agop_finish(op), RN_OK);
    assert_true(late > 0); /* the data really was out of order past the watermark */
    assert_int_equal((int)rn_agop_stats(op)->late, late);
    for (int w = 0; w < 64; w++)
        for (int u = 0; u < 4; u++)
            if (t.counts[w][u] != want[w][u])
                fail_msg("window %d user %d: %lld, want %lld", w, u, (long long)t.counts[w][u],
                         (long long)want[w][u]);
    rn_wm_free(wm);
    rn_agop_free(op);
    rn_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fraud_on_close),
        cmocka_unit_test(test_emit_every_and_having_retraction),
        cmocka_unit_test(test_sessions_merge),
        cmocka_unit_test(test_sessions_on_close_with_late_merge),
        cmocka_unit_test(test_hop_and_unwindowed),
        cmocka_unit_test(test_random_against_naive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
