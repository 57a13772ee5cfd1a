/*
 * lexer.h - tokens of the job language.
 *
 * Words are identifiers unless they spell a keyword (case-insensitive); the token keeps both
 * (kind IDENT, kw set), so the parser decides from context: reserved keywords (SELECT, FROM,
 * AND, …) can never name a column, the others (SOURCE, TOPIC, KEY, SESSION, the types and
 * units, …) can, because users' columns are called `value`, `key` and `timestamp`.
 * Unquoted identifiers are folded to lower case; "double-quoted" ones keep their case.
 * Strings are 'single-quoted' with '' for a quote. `--` starts a comment to end of line.
 * Every token carries its 1-based line and byte column.
 */
#ifndef RN_SQL_LEXER_H
#define RN_SQL_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sql/diag.h"
#include "util/arena.h"

/* X(name, reserved) */
#define RN_KW_LIST(X)                                                                       \
    X(AND, 1) X(AS, 1) X(BY, 1) X(CREATE, 1) X(DISTINCT, 1) X(EMIT, 1) X(FALSE, 1)         \
    X(FROM, 1) X(GROUP, 1) X(HAVING, 1) X(IN, 1) X(INTERVAL, 1) X(IS, 1) X(NOT, 1)         \
    X(NULL, 1) X(OR, 1) X(SELECT, 1) X(TRUE, 1) X(WHERE, 1)                                 \
    X(SOURCE, 0) X(SINK, 0) X(TOPIC, 0) X(FORMAT, 0) X(JSON, 0) X(WATERMARK, 0) X(FOR, 0)  \
    X(WITH, 0) X(INTO, 0) X(SQLITE, 0) X(POSTGRES, 0) X(STDOUT, 0) X(TABLE, 0)             \
    X(PRIMARY, 0) X(KEY, 0) X(TUMBLE, 0) X(HOP, 0) X(SESSION, 0) X(ON, 0) X(WINDOW, 0)     \
    X(CLOSE, 0) X(EVERY, 0) X(MILLISECOND, 0) X(SECOND, 0) X(MINUTE, 0) X(HOUR, 0)          \
    X(DAY, 0) X(TEXT, 0) X(BIGINT, 0) X(DOUBLE, 0) X(BOOLEAN, 0) X(TIMESTAMP, 0)

typedef enum rn_kw {
    RN_KW_NONE_ = 0,
#define RN_KW_ENUM_(name, reserved) RN_KW_##name,
    RN_KW_LIST(RN_KW_ENUM_)
#undef RN_KW_ENUM_
    RN_KW_COUNT_
} rn_kw_t;

typedef enum rn_tok_kind {
    RN_TOK_EOF = 0,
    RN_TOK_IDENT,   /* a word; kw says whether it spells a keyword */
    RN_TOK_QIDENT,  /* "quoted identifier" */
    RN_TOK_STRING,  /* 'string' */
    RN_TOK_INT,
    RN_TOK_FLOAT,
    RN_TOK_LPAREN, RN_TOK_RPAREN, RN_TOK_COMMA, RN_TOK_SEMI, RN_TOK_DOT,
    RN_TOK_STAR, RN_TOK_PLUS, RN_TOK_MINUS, RN_TOK_SLASH, RN_TOK_PERCENT,
    RN_TOK_EQ, RN_TOK_NE, RN_TOK_LT, RN_TOK_LE, RN_TOK_GT, RN_TOK_GE,
} rn_tok_kind_t;

typedef struct rn_token {
    rn_tok_kind_t kind;
    rn_kw_t kw;         /* RN_KW_NONE_ unless an IDENT spells a keyword */
    int line, col;
    const char *raw;    /* the token's bytes in the source */
    size_t raw_len;
    const char *str;    /* IDENT: lower-cased; QIDENT and STRING: unquoted; NUL-terminated */
    size_t str_len;
    int64_t ival;       /* INT */
    double dval;        /* INT and FLOAT */
} rn_token_t;

/*
 * Splits src into tokens, the last one RN_TOK_EOF. Tokens and their strings live in arena.
 * RN_ERR_MALFORMED with a positioned message in errbuf on an unterminated string, a stray
 * character or a bad number.
 */
rn_err_t rn_lex_all(const rn_sql_src_t *src, rn_arena_t *arena, rn_token_t **toks,
                    size_t *ntoks, char *errbuf, size_t errlen);

/* Upper-case spelling of a keyword ("SELECT"). */
const char *rn_kw_name(rn_kw_t kw);
bool rn_kw_reserved(rn_kw_t kw);
/* A short description of a token for messages: "'foo'", "end of file", "','" … */
const char *rn_tok_describe(const rn_token_t *t, char *buf, size_t len);

#endif
