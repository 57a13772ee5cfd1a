/* processor/sql/lexer.c and diag.c: tokens, positions, strings, comments, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sql/diag.h"
#include "sql/lexer.h"

static rn_token_t *lex(rn_arena_t *a, const char *text, size_t *n, rn_err_t want, char *err,
                       size_t errlen)
{
    rn_sql_src_t src = {"t.sql", text, strlen(text)};
    rn_token_t *toks = NULL;
    assert_int_equal(rn_lex_all(&src, a, &toks, n, err, errlen), want);
    return toks;
}

static void test_keywords_case_insensitive(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[256];
    size_t n;
    rn_token_t *t = lex(&a, "select Select SELECT value Foo_1", &n, RN_OK, err, sizeof err);
    assert_int_equal(n, 6);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i].kind, RN_TOK_IDENT);
        assert_int_equal(t[i].kw, RN_KW_SELECT);
        assert_true(rn_kw_reserved(t[i].kw));
    }
    assert_int_equal(t[3].kw, RN_KW_NONE_);
    assert_string_equal(t[4].str, "foo_1");
    assert_int_equal(t[5].kind, RN_TOK_EOF);
    rn_arena_free(&a);
}

static void test_strings_numbers_operators(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[256];
    size_t n;
    rn_token_t *t = lex(&a, "'it''s' \"Mixed Case\" 42 3.5 1e3 <> != <= >= < > = + - * / % ( ) , ; .",
                        &n, RN_OK, err, sizeof err);
    assert_int_equal(t[0].kind, RN_TOK_STRING);
    assert_string_equal(t[0].str, "it's");
    assert_int_equal(t[1].kind, RN_TOK_QIDENT);
    assert_string_equal(t[1].str, "Mixed Case");
    assert_int_equal(t[2].kind, RN_TOK_INT);
    assert_int_equal(t[2].ival, 42);
    assert_int_equal(t[3].kind, RN_TOK_FLOAT);
    assert_true(t[3].dval == 3.5);
    assert_int_equal(t[4].kind, RN_TOK_FLOAT);
    assert_true(t[4].dval == 1000.0);
    rn_tok_kind_t ops[] = {RN_TOK_NE, RN_TOK_NE, RN_TOK_LE, RN_TOK_GE, RN_TOK_LT, RN_TOK_GT,
                           RN_TOK_EQ, RN_TOK_PLUS, RN_TOK_MINUS, RN_TOK_STAR, RN_TOK_SLASH,
                           RN_TOK_PERCENT, RN_TOK_LPAREN, RN_TOK_RPAREN, RN_TOK_COMMA,
                           RN_TOK_SEMI, RN_TOK_DOT, RN_TOK_EOF};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        assert_int_equal(t[5 + i].kind, ops[i]);
    rn_arena_free(&a);
}

static void test_positions_and_comments(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[256];
    size_t n;
    rn_token_t *t = lex(&a, "-- a comment\nCREATE  SOURCE -- trailing\n\n  x'multi\nline' y", &n,
                        RN_OK, err, sizeof err);
    assert_int_equal(n, 6);
    assert_int_equal(t[0].line, 2);
    assert_int_equal(t[0].col, 1);
    assert_int_equal(t[1].line, 2);
    assert_int_equal(t[1].col, 9);
    assert_int_equal(t[2].line, 4);
    assert_int_equal(t[2].col, 3);
    assert_int_equal(t[3].line, 4);
    assert_int_equal(t[3].col, 4);
    assert_string_equal(t[3].str, "multi\nline");
    assert_int_equal(t[4].line, 5); /* lines keep counting inside a string */
    assert_int_equal(t[4].col, 7);
    rn_arena_free(&a);
}

static void test_errors_have_caret(void **state)
{
    (void)state;
    rn_arena_t a = RN_ARENA_INIT;
    char err[256];
    size_t n;
    lex(&a, "SELECT 'open\n", &n, RN_ERR_MALFORMED, err, sizeof err);
    assert_non_null(strstr(err, "t.sql:1:8: unterminated string literal"));
    lex(&a, "SELECT a\n  WHERE x # 3", &n, RN_ERR_MALFORMED, err, sizeof err);
    assert_string_equal(err, "t.sql:2:11: unexpected character '#'\n    WHERE x # 3\n            ^");
    lex(&a, "x ! y", &n, RN_ERR_MALFORMED, err, sizeof err);
    assert_non_null(strstr(err, "did you mean '!='"));
    lex(&a, "12abc", &n, RN_ERR_MALFORMED, err, sizeof err);
    assert_non_null(strstr(err, "malformed number"));
    lex(&a, "99999999999999999999", &n, RN_ERR_MALFORMED, err, sizeof err);
    assert_non_null(strstr(err, "out of range"));
    rn_arena_free(&a);
}

static void test_levenshtein_suggest(void **state)
{
    (void)state;
    assert_int_equal(rn_sql_levenshtein("valu", "value"), 1);
    assert_int_equal(rn_sql_levenshtein("SELCT", "select"), 1);
    assert_int_equal(rn_sql_levenshtein("", "abc"), 3);
    assert_int_equal(rn_sql_levenshtein("kitten", "sitting"), 3);
    assert_int_equal(rn_sql_levenshtein("form", "FROM"), 1); /* a swap is one edit */
    const char *cands[] = {"user_id", "action", "value", "ts"};
    assert_string_equal(rn_sql_suggest("valu", cands, 4), "value");
    assert_string_equal(rn_sql_suggest("userid", cands, 4), "user_id");
    assert_null(rn_sql_suggest("zzzzzz", cands, 4));
    assert_null(rn_sql_suggest("x", cands, 4)); /* 'ts' would need 2 edits of 1 letter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords_case_insensitive),
        cmocka_unit_test(test_strings_numbers_operators),
        cmocka_unit_test(test_positions_and_comments),
        cmocka_unit_test(test_errors_have_caret),
        cmocka_unit_test(test_levenshtein_suggest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
