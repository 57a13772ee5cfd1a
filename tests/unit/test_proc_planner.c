/* processor/sql/planner.c: resolution, types, keys, emit policy, errors, the --check print. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/plan.h"

#define SRC "CREATE SOURCE clicks (user_id TEXT, action TEXT, value DOUBLE, n BIGINT, ok BOOLEAN, ts TIMESTAMP)\n" \
            "  FROM TOPIC 'clickstream' FORMAT JSON WATERMARK FOR ts AS ts - INTERVAL '5' SECOND;\n"

static rn_plan_t *plan(const char *name, const char *text, rn_err_t want, char *err, size_t len)
{
    rn_sql_src_t src = {name, text, strlen(text)};
    rn_plan_t *p = NULL;
    err[0] = '\0';
    rn_err_t got = rn_plan_build(&src, &p, err, len);
    if (got != want)
        fail_msg("plan returned %d, wanted %d: %s", got, want, err);
    return p;
}

static void test_fraud_plan(void **state)
{
    (void)state;
    char err[1024];
    rn_plan_t *p = plan("jobs/fraud.sql", SRC
        "CREATE SINK suspicious_users INTO SQLITE 'analytics.db'\n"
        "  PRIMARY KEY (window_start, user_id) AS\n"
        "SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) AS clicks\n"
        "FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE)\n"
        "WHERE action = 'click'\n"
        "GROUP BY window_start, window_end, user_id\n"
        "HAVING SUM(value) > 1000 AND total < 1e9\n"
        "EMIT ON WINDOW CLOSE;\n", RN_OK, err, sizeof err);
    assert_string_equal(p->job, "fraud");
    assert_string_equal(p->topic, "clickstream");
    assert_int_equal(p->ncols, 6);
    assert_int_equal(p->time_col, 5);
    assert_int_equal(p->wm_delay_ms, 5000);
    assert_int_equal(p->idle_timeout_ms, -1);
    assert_int_equal(p->window.kind, RN_WIN_TUMBLE);
    assert_int_equal(p->window.size_ms, 300000);
    assert_int_equal(p->nkeys, 1);
    assert_int_equal(p->key_cols[0], 0);
    assert_int_equal(p->naggs, 2); /* SUM(value) shared by SELECT and HAVING */
    assert_int_equal(p->aggs[0].desc.kind, RN_AGG_SUM);
    assert_int_equal(p->aggs[0].desc.type, RN_T_DOUBLE);
    assert_int_equal(p->aggs[1].desc.kind, RN_AGG_COUNT_STAR);
    assert_int_equal(p->nout, 5);
    assert_string_equal(p->out[3].name, "total");
    assert_int_equal(p->out[0].type, RN_T_TIMESTAMP);
    assert_int_equal(p->out[4].type, RN_T_BIGINT);
    assert_int_equal(p->npk, 2);
    assert_int_equal(p->pk[0], 0);
    assert_int_equal(p->pk[1], 2);
    assert_int_equal(p->emit, RN_EMIT_ON_CLOSE);
    assert_string_equal(p->table, "suspicious_users");
    assert_string_equal(p->sink_target, "analytics.db");

    /* The compiled WHERE and HAVING work on rows shaped as the plan says. */
    rn_value_t src_row[6] = {rn_val_text("u1", 2), rn_val_text("click", 5), rn_val_double(3),
                             rn_val_int(RN_T_BIGINT, 1), rn_val_bool(true),
                             rn_val_int(RN_T_TIMESTAMP, 0)};
    assert_true(rn_expr_true(p->where, src_row));
    src_row[1] = rn_val_text("view", 4);
    assert_false(rn_expr_true(p->where, src_row));
    rn_value_t group[5] = {rn_val_int(RN_T_TIMESTAMP, 0), rn_val_int(RN_T_TIMESTAMP, 300000),
                           rn_val_text("u1", 2), rn_val_double(1500), rn_val_int(RN_T_BIGINT, 3)};
    assert_true(rn_expr_true(p->having, group));
    group[3] = rn_val_double(999);
    assert_false(rn_expr_true(p->having, group));
    rn_value_t v = rn_expr_eval(p->out_exprs[3], group);
    assert_true(v.u.d == 999);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rn_plan_print(p, f);
    fclose(f);
    const char *want[] = {
        "job fraud (jobs/fraud.sql)",
        "source clicks: topic 'clickstream', format JSON",
        "event time: ts; watermark ts - 5 SECOND",
        "filter: (action = 'click')",
        "window: TUMBLE(ts, 5 MINUTE)",
        "group by: window, user_id",
        "aggregate: SUM(value), COUNT(*)",
        "having: ((SUM(value) > 1000) AND (total < 1e+09))",
        "emit: on window close",
        "sink suspicious_users: SQLITE 'analytics.db', table suspicious_users",
        "primary key: (window_start, user_id)",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(text, want[i]))
            fail_msg("plan print lacks \"%s\":\n%s", want[i], text);
    }
    free(text);
    rn_plan_free(p);
}

static void test_unwindowed_and_defaults(void **state)
{
    (void)state;
    char err[1024];
    rn_plan_t *p = plan("j.sql", SRC
        "CREATE SINK totals INTO STDOUT PRIMARY KEY (user_id) AS\n"
        "SELECT user_id, COUNT(*), SUM(n) AS s, AVG(n) AS a, MIN(action) lo, MAX(ts) hi, "
        "COUNT(DISTINCT action), SUM(n) * 2 + 1 AS expr\n"
        "FROM clicks WHERE ts >= '2023-10-27T10:00:00Z' AND action IN ('a', 'b') AND NOT ok "
        "GROUP BY user_id;", RN_OK, err, sizeof err);
    assert_int_equal(p->window.kind, RN_WIN_NONE);
    assert_int_equal(p->emit, RN_EMIT_EVERY);
    assert_int_equal(p->every_ms, 0);
    assert_string_equal(p->out[1].name, "count");
    assert_string_equal(p->out[6].name, "count_distinct_action");
    assert_int_equal(p->out[2].type, RN_T_BIGINT);
    assert_int_equal(p->out[3].type, RN_T_DOUBLE);
    assert_int_equal(p->out[4].type, RN_T_TEXT);
    assert_int_equal(p->out[5].type, RN_T_TIMESTAMP);
    assert_int_equal(p->out[7].type, RN_T_BIGINT);
    assert_int_equal(p->naggs, 6);
    rn_plan_free(p);

    p = plan("j.sql", SRC
        "CREATE SINK s INTO SQLITE 'x.db' TABLE t PRIMARY KEY (window_end) AS\n"
        "SELECT window_end, COUNT(DISTINCT user_id) AS users FROM HOP(clicks, ts, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE)\n"
        "GROUP BY window_start, window_end EMIT EVERY INTERVAL '5' SECOND;", RN_OK, err, sizeof err);
    assert_int_equal(p->nkeys, 0);
    assert_int_equal(p->window.slide_ms, 60000);
    assert_int_equal(p->emit, RN_EMIT_EVERY);
    assert_int_equal(p->every_ms, 5000);
    assert_string_equal(p->table, "t");
    rn_plan_free(p);
}

static void test_options(void **state)
{
    (void)state;
    char err[1024];
    rn_plan_t *p = plan("j.sql",
        "CREATE SOURCE c (k TEXT, ts TIMESTAMP) FROM TOPIC 't' FORMAT JSON "
        "WITH ('idle.timeout.ms' = '30000', allowed.lateness.ms = 1000, 'dead.letter.topic' = 'dlq');\n"
        "CREATE SINK s INTO STDOUT PRIMARY KEY (k, window_start) AS SELECT k, window_start, COUNT(*) "
        "FROM SESSION(c, ts, INTERVAL '15' MINUTE) GROUP BY k;", RN_OK, err, sizeof err);
    assert_int_equal(p->idle_timeout_ms, 30000);
    assert_int_equal(p->allowed_lateness_ms, 1000);
    assert_string_equal(p->dead_letter_topic, "dlq");
    assert_false(p->has_watermark);
    assert_int_equal(p->time_col, 1); /* the window's column, watermark from the data */
    assert_int_equal(rn_plan_set_option(p, "idle.timeout.ms", "5", err, sizeof err), RN_OK);
    assert_int_equal(p->idle_timeout_ms, 5);
    assert_int_equal(rn_plan_set_option(p, "allowed.lateness.ms", "-3", err, sizeof err), RN_ERR_BAD_CONFIG);
    assert_int_equal(rn_plan_set_option(p, "checkpoint.interval.ms", "5", err, sizeof err), RN_ERR_UNKNOWN_CONFIG);
    rn_plan_free(p);
}

static void test_semantic_errors(void **state)
{
    (void)state;
    const char *sink = "CREATE SINK s INTO STDOUT PRIMARY KEY (window_start, user_id) AS\n";
    struct { const char *body, *want; } cases[] = {
        /* the example, to the column */
        {"SELECT window_start, user_id,\n  SUM(valu) AS total FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY window_start, user_id;",
         "fraud.sql:5:7: unknown column 'valu' (did you mean 'value'?)\n    SUM(valu) AS total"},
        {"SELECT window_start, user_id, action FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY window_start, user_id;",
         "fraud.sql:4:31: column 'action' must appear in GROUP BY or inside an aggregate"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) WHERE COUNT(*) > 1 GROUP BY user_id;",
         "fraud.sql:4:91: aggregate COUNT() is not allowed in WHERE"},
        {"SELECT window_start, user_id, SUM(action) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:35: SUM needs a number, not TEXT"},
        {"SELECT window_start, user_id, SUM(SUM(value)) AS x FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:35: aggregate SUM() is not allowed in WHERE or inside another aggregate"},
        {"SELECT window_start, user_id, SUMM(value) AS x FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:31: unknown function 'summ' (did you mean 'sum'?)"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) WHERE action = 1 GROUP BY user_id;",
         "fraud.sql:4:98: cannot apply '=' to TEXT and BIGINT"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) WHERE value GROUP BY user_id;",
         "fraud.sql:4:91: WHERE needs a BOOLEAN condition, not DOUBLE"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) WHERE ts > 'yesterday' GROUP BY user_id;",
         "fraud.sql:4:96: 'yesterday' is not a timestamp"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, value, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:60: windows need a TIMESTAMP column; 'value' is DOUBLE"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clics, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:52: unknown source 'clics' (did you mean 'clicks'?)"},
        {"SELECT window_start, user_id, COUNT(*) FROM clicks GROUP BY user_id;",
         "fraud.sql:4:8: 'window_start' exists only in windowed queries"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) WHERE window_start > 0 GROUP BY user_id;",
         "fraud.sql:4:91: 'window_start' is not known before windowing"},
        {"SELECT window_start, user_id, COUNT(*) AS user_id FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:43: output column 'user_id' appears twice"},
        {"SELECT window_start, user_id, value + 1 FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id, value;",
         "fraud.sql:4:31: name this output column: (value + 1) AS name"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id, value + 1;",
         "fraud.sql:4:103: GROUP BY takes column names"},
        {"SELECT window_start, user_id, COUNT(*) FROM HOP(clicks, ts, INTERVAL '3' MINUTE, INTERVAL '10' MINUTE) GROUP BY user_id;",
         "fraud.sql:4:45: HOP(…, slide, size): the size must be a whole multiple of the slide"},
        {"SELECT window_start, user_id, COUNT(*) FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id HAVING COUNT(*);",
         "fraud.sql:4:109: HAVING needs a BOOLEAN condition, not BIGINT"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048], err[1024];
        snprintf(text, sizeof text, "%s%s%s", SRC, sink, cases[i].body);
        rn_plan_t *p = NULL;
        rn_sql_src_t src = {"fraud.sql", text, strlen(text)};
        rn_err_t got = rn_plan_build(&src, &p, err, sizeof err);
        if (got != RN_ERR_MALFORMED || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            print_error("case %zu (%d):\n got: %s\nwant: %s\n", i, got, err, cases[i].want);
            bad++;
        }
        rn_plan_free(p);
    }
    assert_int_equal(bad, 0);
}

static void test_key_and_emit_errors(void **state)
{
    (void)state;
    struct { const char *text, *want; } cases[] = {
        {SRC "CREATE SINK s INTO STDOUT PRIMARY KEY (window_start) AS SELECT window_start, user_id, COUNT(*) "
             "FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "j.sql:3:27: PRIMARY KEY must include the GROUP BY column 'user_id'"},
        {SRC "CREATE SINK s INTO STDOUT PRIMARY KEY (user_id) AS SELECT window_start, user_id, COUNT(*) "
             "FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "j.sql:3:27: PRIMARY KEY must include window_start or window_end"},
        {SRC "CREATE SINK s INTO STDOUT PRIMARY KEY (usr_id, window_start) AS SELECT window_start, user_id, COUNT(*) "
             "FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE) GROUP BY user_id;",
         "j.sql:3:40: PRIMARY KEY column 'usr_id' is not an output column (did you mean 'user_id'?)"},
        {SRC "CREATE SINK s INTO STDOUT PRIMARY KEY (user_id, c) AS SELECT user_id, COUNT(*) AS c "
             "FROM clicks GROUP BY user_id;",
         "j.sql:3:49: PRIMARY KEY column 'c' is computed"},
        {SRC "CREATE SINK s INTO STDOUT PRIMARY KEY (user_id) AS SELECT user_id, COUNT(*) AS c "
             "FROM clicks GROUP BY user_id EMIT ON WINDOW CLOSE;",
         "j.sql:3:111: EMIT ON WINDOW CLOSE needs a window"},
        {SRC "CREATE SINK s INTO STDOUT PRIMARY KEY (user_id) AS SELECT user_id FROM clicks GROUP BY user_id;\n"
             "CREATE SINK t INTO STDOUT PRIMARY KEY (user_id) AS SELECT user_id FROM clicks GROUP BY user_id;",
         "j.sql:4:13: a job has one CREATE SINK"},
        {SRC, "j.sql: no CREATE SINK"},
        {"CREATE SOURCE c (a TEXT, a BIGINT) FROM TOPIC 't' FORMAT JSON;",
         "j.sql:1:26: column 'a' is declared twice"},
        {"CREATE SOURCE c (a TEXT, t BIGINT) FROM TOPIC 't' FORMAT JSON WATERMARK FOR t AS t;",
         "j.sql:1:77: the watermark column 't' is BIGINT; it must be TIMESTAMP"},
        {"CREATE SOURCE c (a TEXT) FROM TOPIC 't' FORMAT JSON WITH ('idle.timeout' = '5');",
         "j.sql:1:59: unknown source option 'idle.timeout' (did you mean 'idle.timeout.ms'?)"},
        {"CREATE SOURCE c (a TEXT) FROM TOPIC 't' FORMAT JSON WITH ('allowed.lateness.ms' = 'soon');",
         "j.sql:1:83: allowed.lateness.ms must be a number of milliseconds"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[1024];
        rn_plan_t *p = NULL;
        rn_sql_src_t src = {"j.sql", cases[i].text, strlen(cases[i].text)};
        rn_err_t got = rn_plan_build(&src, &p, err, sizeof err);
        if (got != RN_ERR_MALFORMED || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            print_error("case %zu (%d):\n got: %s\nwant: %s\n", i, got, err, cases[i].want);
            bad++;
        }
        rn_plan_free(p);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fraud_plan),
        cmocka_unit_test(test_unwindowed_and_defaults),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_semantic_errors),
        cmocka_unit_test(test_key_and_emit_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
