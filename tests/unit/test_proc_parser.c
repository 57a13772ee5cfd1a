/* processor/sql/parser.c: the job grammar, AST shapes, syntax errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "sql/ast.h"
#include "sql/plan.h"

static rn_ast_job_t *parse(rn_arena_t *a, const char *text, rn_err_t want, char *err, size_t len)
{
    rn_sql_src_t src = {"job.sql", text, strlen(text)};
    rn_ast_job_t *job = NULL;
    err[0] = '\0';
    rn_err_t got = rn_sql_parse(&src, a, &job, err, len);
    if (got != want)
        fail_msg("parse returned %d, wanted %d: %s", got, want, err);
    return job;
}

static const char *FRAUD =
    "CREATE SOURCE clicks (user_id TEXT, action TEXT, value DOUBLE, ts TIMESTAMP)\n"
    "  FROM TOPIC 'clickstream' FORMAT JSON\n"
    "  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND\n"
    "  WITH (idle.timeout.ms = '1000', 'allowed.lateness.ms' = 250);\n"
    "CREATE SINK suspicious_users INTO SQLITE 'analytics.db' TABLE alerts\n"
    "  PRIMARY KEY (window_start, user_id) AS\n"
    "SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) clicks\n"
    "FROM TUMBLE(clicks, ts, INTERVAL '5' MINUTE)\n"
    "WHERE action = 'click' AND NOT value IS NULL\n"
    "GROUP BY window_start, window_end, user_id\n"
    "HAVING SUM(value) > 1000\n"
    "EMIT ON WINDOW CLOSE;\n";

static void test_fraud_job(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[512];
    rn_ast_job_t *job = parse(&a, FRAUD, RN_OK, err, sizeof err);
    assert_int_equal(job->nsources, 1);
    assert_int_equal(job->nsinks, 1);
    const rn_ast_source_t *s = job->sources[0];
    assert_string_equal(s->id.name, "clicks");
    assert_int_equal(s->ncols, 4);
    assert_int_equal(s->cols[2].type, RN_T_DOUBLE);
    assert_string_equal(s->cols[2].id.name, "value");
    assert_string_equal(s->topic, "clickstream");
    assert_true(s->has_watermark);
    assert_int_equal(s->wm_delay_ms, 5000);
    assert_int_equal(s->nopts, 2);
    assert_string_equal(s->opts[0].key.name, "idle.timeout.ms");
    assert_string_equal(s->opts[0].value, "1000");
    assert_string_equal(s->opts[1].key.name, "allowed.lateness.ms");
    assert_string_equal(s->opts[1].value, "250");

    const rn_ast_sink_t *k = job->sinks[0];
    assert_int_equal(k->kind, RN_SINK_SQLITE);
    assert_string_equal(k->target, "analytics.db");
    assert_string_equal(k->table.name, "alerts");
    assert_int_equal(k->npk, 2);
    assert_string_equal(k->pk[1].name, "user_id");
    const rn_ast_select_t *sel = &k->select;
    assert_int_equal(sel->nitems, 5);
    assert_string_equal(sel->items[3].alias.name, "total");
    assert_string_equal(sel->items[4].alias.name, "clicks"); /* alias without AS */
    assert_int_equal(sel->items[4].expr->kind, RN_AST_CALL);
    assert_true(sel->items[4].expr->star);
    assert_int_equal(sel->from.kind, RN_WIN_TUMBLE);
    assert_int_equal(sel->from.size_ms, 300000);
    assert_string_equal(sel->from.time_col.name, "ts");
    assert_int_equal(sel->where->kind, RN_AST_BINARY);
    assert_int_equal(sel->where->op, RN_OP_AND);
    assert_int_equal(sel->where->args[1]->kind, RN_AST_UNARY); /* NOT (value IS NULL) */
    assert_int_equal(sel->where->args[1]->args[0]->kind, RN_AST_ISNULL);
    assert_int_equal(sel->ngroup, 3);
    assert_int_equal(sel->having->op, RN_OP_GT);
    assert_int_equal(sel->emit, RN_EMIT_ON_CLOSE);
    assert_int_equal(sel->having->line, 11);
    assert_int_equal(sel->having->col, 19); /* at the operator */
    rn_arena_free(&a);
}

static void test_windows_and_emit(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[512];
    rn_ast_job_t *job = parse(&a,
        "create sink s into stdout primary key (k) as select k from "
        "HOP(TABLE src, DESCRIPTOR(t), INTERVAL '1' MINUTE, INTERVAL '10' MINUTE) group by k "
        "emit every interval '2' second",
        RN_OK, err, sizeof err);
    const rn_ast_select_t *sel = &job->sinks[0]->select;
    assert_int_equal(job->sinks[0]->kind, RN_SINK_STDOUT);
    assert_null(job->sinks[0]->target);
    assert_int_equal(sel->from.kind, RN_WIN_HOP);
    assert_int_equal(sel->from.slide_ms, 60000);
    assert_int_equal(sel->from.size_ms, 600000);
    assert_int_equal(sel->emit, RN_EMIT_EVERY);
    assert_int_equal(sel->every_ms, 2000);

    job = parse(&a, "CREATE SINK s INTO POSTGRES 'dbname=x' PRIMARY KEY (k) AS SELECT k "
                    "FROM SESSION(src, t, INTERVAL '15' MINUTE) GROUP BY k;",
                RN_OK, err, sizeof err);
    assert_int_equal(job->sinks[0]->select.from.kind, RN_WIN_SESSION);
    assert_int_equal(job->sinks[0]->select.from.gap_ms, 900000);
    assert_int_equal(job->sinks[0]->kind, RN_SINK_POSTGRES);

    job = parse(&a, "CREATE SINK s INTO TOPIC 'out' PRIMARY KEY (k) AS SELECT k FROM src GROUP BY k",
                RN_OK, err, sizeof err);
    assert_int_equal(job->sinks[0]->select.from.kind, RN_WIN_NONE);
    assert_int_equal(job->sinks[0]->kind, RN_SINK_TOPIC);
    rn_arena_free(&a);
}

static void test_expression_precedence(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[512];
    rn_ast_job_t *job = parse(&a,
        "CREATE SINK s INTO STDOUT PRIMARY KEY (k) AS SELECT k FROM src "
        "WHERE a OR b AND c = 1 + 2 * -3 AND x NOT IN (1, 2) AND y IS NOT NULL GROUP BY k",
        RN_OK, err, sizeof err);
    const rn_ast_expr_t *w = job->sinks[0]->select.where;
    assert_int_equal(w->op, RN_OP_OR); /* a OR (b AND …) */
    assert_int_equal(w->args[0]->kind, RN_AST_COLUMN);
    const rn_ast_expr_t *and = w->args[1];
    assert_int_equal(and->op, RN_OP_AND);
    /* ((b AND c = …) AND x NOT IN …) AND y IS NOT NULL */
    assert_int_equal(and->args[1]->kind, RN_AST_ISNULL);
    assert_true(and->args[1]->negated);
    const rn_ast_expr_t *in = and->args[0]->args[1];
    assert_int_equal(in->kind, RN_AST_IN);
    assert_true(in->negated);
    assert_int_equal(in->nargs, 3);
    const rn_ast_expr_t *eq = and->args[0]->args[0]->args[1];
    assert_int_equal(eq->op, RN_OP_EQ);
    const rn_ast_expr_t *sum = eq->args[1];
    assert_int_equal(sum->op, RN_OP_ADD);
    assert_int_equal(sum->args[1]->op, RN_OP_MUL);
    assert_int_equal(sum->args[1]->args[1]->kind, RN_AST_INT);
    assert_int_equal(sum->args[1]->args[1]->ival, -3);
    rn_arena_free(&a);
}

static void test_type_aliases(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[512];
    rn_ast_job_t *job = parse(&a,
        "CREATE SOURCE s (a STRING, b INT, c FLOAT, d BOOL, e TIMESTAMP(3), f VARCHAR(10)) "
        "FROM TOPIC 't' FORMAT JSON;", RN_OK, err, sizeof err);
    const rn_ast_source_t *s = job->sources[0];
    rn_type_t want[] = {RN_T_TEXT, RN_T_BIGINT, RN_T_DOUBLE, RN_T_BOOLEAN, RN_T_TIMESTAMP, RN_T_TEXT};
    for (int i = 0; i < 6; i++)
        assert_int_equal(s->cols[i].type, want[i]);
    rn_arena_free(&a);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    struct { const char *text, *want; } cases[] = {
        {"CREATE SOURCE s (a TEXT) FROM TOPIC 't' FORMAT JSON;\nSELCT a FROM s;",
         "job.sql:2:1: expected CREATE SOURCE or CREATE SINK, found 'SELCT'"},
        {"CREAT SOURCE s (a TEXT) FROM TOPIC 't' FORMAT JSON;",
         "job.sql:1:1: expected CREATE SOURCE or CREATE SINK, found 'CREAT' (did you mean 'CREATE'?)"},
        {"CREATE SOURCE s (a TEXT) FORM TOPIC 't' FORMAT JSON;",
         "job.sql:1:26: expected FROM, found 'FORM' (did you mean 'FROM'?)"},
        {"CREATE SOURCE s (a TXT) FROM TOPIC 't' FORMAT JSON;",
         "job.sql:1:20: expected a type (TEXT, BIGINT, DOUBLE, BOOLEAN or TIMESTAMP), found 'TXT' (did you mean 'TEXT'?)"},
        {"CREATE SOURCE s (a TEXT) FROM TOPIC t FORMAT JSON;",
         "job.sql:1:37: expected the topic's name (a 'quoted' string), found 't'"},
        {"CREATE SOURCE s (a TEXT, t TIMESTAMP) FROM TOPIC 't' FORMAT JSON\n"
         "  WATERMARK FOR t AS t - INTERVAL '5' SECONDZ;",
         "job.sql:2:39: expected a unit (MILLISECOND, SECOND, MINUTE, HOUR or DAY), found 'SECONDZ' (did you mean 'SECOND'?)"},
        {"CREATE SOURCE s (a TEXT, t TIMESTAMP) FROM TOPIC 't' FORMAT JSON WATERMARK FOR t AS u;",
         "job.sql:1:85: the watermark must be 't - INTERVAL …' (found 'u')"},
        {"CREATE SINK k INTO SQLITE 'x' PRIMARY KEY (a) AS SELECT a FROM TUMBLE(s, t, INTERVAL '0' SECOND) GROUP BY a;",
         "job.sql:1:77: interval must be longer than zero"},
        {"CREATE SINK k INTO MYSQL 'x' PRIMARY KEY (a) AS SELECT a FROM s GROUP BY a;",
         "job.sql:1:20: expected SQLITE, POSTGRES, TOPIC or STDOUT, found 'MYSQL'"},
        {"CREATE SINK k INTO STDOUT PRIMARY KEY (a) AS SELECT a FROM s GROUP BY a EMIT WHEN;",
         "job.sql:1:78: expected ON WINDOW CLOSE or EVERY INTERVAL … after EMIT, found 'WHEN'"},
        {"CREATE SINK k INTO STDOUT PRIMARY KEY (a) AS SELECT a, FROM s GROUP BY a;",
         "job.sql:1:56: expected an expression, found 'FROM'"},
        {"CREATE SINK k INTO STDOUT PRIMARY KEY (a) AS SELECT (a FROM s GROUP BY a;",
         "job.sql:1:56: expected ')', found 'FROM'"},
        {"CREATE SINK k INTO STDOUT PRIMARY KEY (a) AS SELECT a FROM s GROUP BY a\nCREATE",
         "job.sql:2:1: expected ';' at the end of the statement, found 'CREATE'"},
        {"CREATE SINK k INTO STDOUT PRIMARY KEY (select) AS SELECT a FROM s GROUP BY a;",
         "job.sql:1:40: expected a key column, found the reserved word 'select' (quote it: \"select\")"},
        {"CREATE SINK k INTO STDOUT PRIMARY KEY (a) AS SELECT * FROM s GROUP BY a;",
         "job.sql:1:53: SELECT * is not supported: name the output columns"},
        {"-- only a comment\n", "job.sql: the job file declares nothing"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rn_arena_t a = RN_ARENA_INIT;
        char err[512];
        parse(&a, cases[i].text, RN_ERR_MALFORMED, err, sizeof err);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            print_error("case %zu:\n got: %s\nwant: %s\n", i, err, cases[i].want);
            bad++;
        }
        rn_arena_free(&a);
    }
    assert_int_equal(bad, 0);
}

static void test_error_excerpt(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[512];
    parse(&a, "CREATE SINK k INTO STDOUT PRIMARY KEY (a) AS\nSELECT a\nFROM s GROUP a;",
          RN_ERR_MALFORMED, err, sizeof err);
    assert_string_equal(err, "job.sql:3:14: expected BY, found 'a'\n"
                             "  FROM s GROUP a;\n"
                             "               ^");
    rn_arena_free(&a);
}

/* A name of n bytes: 'a' repeated, its last byte `last`. */
static char *long_name(size_t n, char last)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'a', n);
    s[n - 1] = last;
    s[n] = '\0';
    return s;
}

/*
 * Found with tests/fuzz/fuzz_sql (a crafted input, which it reports as out-of-memory): the
 * "did you mean" search measured every pair of names in full,
 * so a job file with a 20 KB column and a 20 KB typo of it asked for 3.2 GB and ~10^8 steps
 * (libFuzzer: out-of-memory in rn_sql_levenshtein). Names longer than RN_SQL_SUGGEST_MAX_LEN
 * now get no suggestion.
 */
static void test_long_names_no_suggestion(void **state)
{
    (void)state;
    static const size_t lens[] = {RN_SQL_SUGGEST_MAX_LEN + 1, 20000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *declared = long_name(lens[i], 'a'), *typo = long_name(lens[i], 'b');
        size_t len = 4 * lens[i] + 512; /* four names and the keywords */
        char *text = malloc(len), *err = malloc(len);
        assert_non_null(text);
        assert_non_null(err);
        snprintf(text, len,
                 "CREATE SOURCE s (%s TEXT, ts TIMESTAMP) FROM TOPIC 't' FORMAT JSON;\n"
                 "CREATE SINK k INTO STDOUT PRIMARY KEY (%s) AS SELECT %s FROM s GROUP BY %s;\n",
                 declared, typo, typo, typo);
        rn_sql_src_t src = {"job.sql", text, strlen(text)};
        rn_plan_t *p = NULL;
        assert_int_equal(rn_plan_build(&src, &p, err, len), RN_ERR_MALFORMED);
        assert_null(p);
        assert_non_null(strstr(err, "unknown column 'aaaa"));
        /* (the planner cuts its message at 512 bytes, so this only bites for the short one) */
        assert_null(strstr(err, "did you mean"));
        free(declared);
        free(typo);
        free(text);
        free(err);
    }

    /* The rule at the bound: a typo in a 64-byte name is still suggested, not past it. */
    for (size_t len = RN_SQL_SUGGEST_MAX_LEN; len <= 3000; len = len * 2 + 1000) {
        char *cand = long_name(len, 'a'), *word = long_name(len, 'b');
        const char *cands[] = {"ts", cand};
        if (len == RN_SQL_SUGGEST_MAX_LEN)
            assert_ptr_equal(rn_sql_suggest(word, cands, 2), cand);
        else
            assert_null(rn_sql_suggest(word, cands, 2));
        free(word);
        free(cand);
    }
}

/* head, then unit n times, then tail, in one malloc'd string. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1), *o = s;
    assert_non_null(s);
    memcpy(o, head, hl);
    o += hl;
    for (size_t i = 0; i < n; i++, o += ul)
        memcpy(o, unit, ul);
    memcpy(o, tail, tl + 1);
    return s;
}

/*
 * Found with tests/fuzz/fuzz_sql (crafted inputs; ASan: stack-overflow): nothing bounded how
 * deep an expression nests, so a few KB of '(' or '- ' overflowed the parser's stack, and a
 * chain like a + a + … (a loop in the parser, but one node per term) or NOT NOT … overflowed
 * the planner's. Each shape now plans at 500 levels
 * and is refused well before the stack runs out.
 */
static void test_deep_expressions(void **state)
{
    (void)state;
    const char *job = "CREATE SOURCE s (n BIGINT, ts TIMESTAMP) FROM TOPIC 't' FORMAT JSON;\n"
                      "CREATE SINK k INTO STDOUT PRIMARY KEY (n) AS SELECT n FROM s WHERE ";
    char head[512];
    struct { const char *prefix, *unit, *suffix; } shapes[] = {
        {"", "(", "n > 0"},        /* closing parens appended below */
        {"", "NOT ", "n > 0"},
        {"", "- ", "n > 0"},
        {"n", " + n", " > 0"},
        {"n > 0", " AND n > 0", ""},
        {"n > 0", " OR n IN (1, (2))", ""},
    };
    static const size_t depths[] = {500, 30000};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (size_t d = 0; d < 2; d++) {
            size_t n = depths[d];
            snprintf(head, sizeof head, "%s%s", job, shapes[i].prefix);
            char *open = repeat(head, shapes[i].unit, n, shapes[i].suffix);
            char *text = i == 0 ? repeat(open, ")", n, " GROUP BY n;") :
                                  repeat(open, "", 0, " GROUP BY n;");
            free(open);
            rn_sql_src_t src = {"job.sql", text, strlen(text)};
            rn_plan_t *p = NULL;
            char err[1024] = "";
            rn_err_t got = rn_plan_build(&src, &p, err, sizeof err);
            if (d == 0 && got != RN_OK)
                fail_msg("shape %zu at depth %zu: %s", i, n, err);
            if (d == 1 && (got != RN_ERR_MALFORMED || !strstr(err, "nested deeper than 1000")))
                fail_msg("shape %zu at depth %zu: returned %d: %s", i, n, got, err);
            rn_plan_free(p);
            free(text);
        }
    }
}

/*
 * Found with tests/fuzz/fuzz_sql (a crafted input; 4 s and 1.2 GB per run under ASan): each
 * quoted token reserved room for the rest of the file, so a 70 KB file of 20000 quoted
 * tokens took 705 MB of the parse arena. (Checked where glibc reports
 * its heap; ASan builds report nothing and pass.)
 */
static void test_quoted_tokens_sized_by_themselves(void **state)
{
    (void)state;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    char *text = repeat("", "'' \"a\" ", 10000, "");
    struct mallinfo2 before = mallinfo2();
    rn_arena_t a = RN_ARENA_INIT;
    char err[512];
    parse(&a, text, RN_ERR_MALFORMED, err, sizeof err); /* lexes it all, then refuses '' */
    struct mallinfo2 after = mallinfo2();
    size_t was = before.uordblks + before.hblkhd, now = after.uordblks + after.hblkhd;
    if (now > was && now - was > (16u << 20))
        fail_msg("lexing %zu bytes took %zu bytes", strlen(text), now - was);
    rn_arena_free(&a);
    free(text);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fraud_job),
        cmocka_unit_test(test_windows_and_emit),
        cmocka_unit_test(test_expression_precedence),
        cmocka_unit_test(test_type_aliases),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_error_excerpt),
        cmocka_unit_test(test_long_names_no_suggestion),
        cmocka_unit_test(test_deep_expressions),
        cmocka_unit_test(test_quoted_tokens_sized_by_themselves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
