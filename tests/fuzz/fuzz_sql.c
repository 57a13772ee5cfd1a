/*
 * fuzz_sql: the job language front end (lexer, parser, planner, --check printout) on
 * arbitrary bytes taken as a job file.
 *
 * Property: every stage either succeeds or returns RN_ERR_MALFORMED with a non-empty,
 * NUL-terminated message in errbuf; stages agree (a file the lexer refuses never parses, one
 * the parser refuses never plans); whatever they allocate is freed. The input is handed over
 * as libFuzzer's exact buffer without a terminating NUL, as rn_plan_load does, so reading past
 * src->len is an ASan report.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sql/ast.h"
#include "sql/lexer.h"
#include "sql/plan.h"

static FILE *devnull;

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* errbuf is filled with a sentinel first, so an error that leaves it unset or unterminated
 * shows; every message about a job names the file first (diag.h). */
static void check_error(rn_err_t err, const char *errbuf, size_t errlen)
{
    check(err == RN_ERR_MALFORMED);
    check(memchr(errbuf, '\0', errlen) != NULL);
    check(strncmp(errbuf, "fuzz.sql:", 9) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    check(devnull != NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rn_sql_src_t src = {"fuzz.sql", size ? (const char *)data : "", size};
    char errbuf[512];

    rn_arena_t lex_arena = RN_ARENA_INIT;
    rn_token_t *toks = NULL;
    size_t ntoks = 0;
    memset(errbuf, 'X', sizeof errbuf);
    rn_err_t lex_err = rn_lex_all(&src, &lex_arena, &toks, &ntoks, errbuf, sizeof errbuf);
    if (lex_err == RN_OK) {
        check(ntoks >= 1 && toks[ntoks - 1].kind == RN_TOK_EOF);
        for (size_t i = 0; i < ntoks; i++) {
            check(toks[i].line >= 1 && toks[i].col >= 1);
            check(toks[i].raw >= src.text && toks[i].raw_len <= size &&
                  (size_t)(toks[i].raw - src.text) <= size - toks[i].raw_len);
        }
    } else {
        check_error(lex_err, errbuf, sizeof errbuf);
    }
    rn_arena_free(&lex_arena);

    rn_arena_t ast_arena = RN_ARENA_INIT;
    rn_ast_job_t *job = NULL;
    memset(errbuf, 'X', sizeof errbuf);
    rn_err_t parse_err = rn_sql_parse(&src, &ast_arena, &job, errbuf, sizeof errbuf);
    if (parse_err == RN_OK)
        check(lex_err == RN_OK && job != NULL);
    else
        check_error(parse_err, errbuf, sizeof errbuf);
    rn_arena_free(&ast_arena);

    rn_plan_t *plan = NULL;
    memset(errbuf, 'X', sizeof errbuf);
    rn_err_t plan_err = rn_plan_build(&src, &plan, errbuf, sizeof errbuf);
    if (plan_err == RN_OK) {
        check(parse_err == RN_OK && plan != NULL);
        rn_plan_print(plan, devnull);
        rn_plan_free(plan);
    } else {
        check_error(plan_err, errbuf, sizeof errbuf);
    }
    return 0;
}
