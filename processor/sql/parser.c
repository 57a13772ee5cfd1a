/*
 * parser.c - recursive descent over the token array; grammar in ast.h.
 *
 * Expression precedence, loosest first: OR, AND, NOT, comparison / IN / IS NULL, + -, * / %,
 * unary -. Errors stop at the first problem and say what was expected where, with a
 * keyword suggestion when the word found is a likely typo of one.
 */
#include "sql/ast.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql/lexer.h"

typedef struct parser {
    const rn_sql_src_t *src;
    rn_arena_t *arena;
    rn_token_t *toks;
    size_t n, pos;
    char *errbuf;
    size_t errlen;
    rn_err_t err;
    int depth;  /* expression recursion: expr, unary minus and NOT calls open now */
} parser_t;

#define TRY(x)                      \
    do {                            \
        if ((x) != RN_OK)           \
            return p->err;          \
    } while (0)

static const rn_token_t *cur(const parser_t *p)
{
    return &p->toks[p->pos];
}

static const rn_token_t *advance(parser_t *p)
{
    const rn_token_t *t = &p->toks[p->pos];
    if (t->kind != RN_TOK_EOF)
        p->pos++;
    return t;
}

static rn_err_t fail_at(parser_t *p, const rn_token_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rn_err_t fail_at(parser_t *p, const rn_token_t *t, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rn_sql_error(p->src, t->line, t->col, p->errbuf, p->errlen, "%s", msg);
    p->err = RN_ERR_MALFORMED;
    return p->err;
}

static rn_err_t nomem(parser_t *p)
{
    rn_sql_error(p->src, 0, 0, p->errbuf, p->errlen, "out of memory");
    p->err = RN_ERR_NOMEM;
    return p->err;
}

static bool is_kw(const rn_token_t *t, rn_kw_t kw)
{
    return t->kind == RN_TOK_IDENT && t->kw == kw;
}

static bool accept_kw(parser_t *p, rn_kw_t kw)
{
    if (is_kw(cur(p), kw)) {
        advance(p);
        return true;
    }
    return false;
}

static bool accept(parser_t *p, rn_tok_kind_t k)
{
    if (cur(p)->kind == k) {
        advance(p);
        return true;
    }
    return false;
}

/* "expected X, found Y" with a did-you-mean among the keywords kws[0..n). */
static rn_err_t expected_kw(parser_t *p, const char *what, const rn_kw_t *kws, size_t n)
{
    const rn_token_t *t = cur(p);
    char found[64];
    rn_tok_describe(t, found, sizeof found);
    if (t->kind == RN_TOK_IDENT && !t->kw) {
        const char *names[16];
        for (size_t i = 0; i < n && i < 16; i++)
            names[i] = rn_kw_name(kws[i]);
        const char *best = rn_sql_suggest(t->str, names, n < 16 ? n : 16);
        if (best)
            return fail_at(p, t, "expected %s, found %s (did you mean '%s'?)", what, found, best);
    }
    return fail_at(p, t, "expected %s, found %s", what, found);
}

static rn_err_t expect_kw(parser_t *p, rn_kw_t kw)
{
    if (accept_kw(p, kw))
        return RN_OK;
    char what[40];
    snprintf(what, sizeof what, "%s", rn_kw_name(kw));
    return expected_kw(p, what, &kw, 1);
}

static rn_err_t expect(parser_t *p, rn_tok_kind_t k, const char *what)
{
    if (accept(p, k))
        return RN_OK;
    char found[64];
    return fail_at(p, cur(p), "expected %s, found %s", what, rn_tok_describe(cur(p), found, sizeof found));
}

/* A name: an identifier that is not a reserved keyword, or a "quoted" one. */
static rn_err_t ident(parser_t *p, const char *what, rn_ast_ident_t *out)
{
    const rn_token_t *t = cur(p);
    if ((t->kind == RN_TOK_IDENT && !rn_kw_reserved(t->kw)) || t->kind == RN_TOK_QIDENT) {
        out->name = t->str;
        out->line = t->line;
        out->col = t->col;
        advance(p);
        return RN_OK;
    }
    char found[64];
    rn_tok_describe(t, found, sizeof found);
    if (t->kind == RN_TOK_IDENT)
        return fail_at(p, t, "expected %s, found the reserved word %s (quote it: \"%s\")", what,
                       found, t->str);
    return fail_at(p, t, "expected %s, found %s", what, found);
}

static rn_err_t string_lit(parser_t *p, const char *what, const char **out)
{
    const rn_token_t *t = cur(p);
    if (t->kind != RN_TOK_STRING) {
        char found[64];
        return fail_at(p, t, "expected %s (a 'quoted' string), found %s", what,
                       rn_tok_describe(t, found, sizeof found));
    }
    *out = t->str;
    advance(p);
    return RN_OK;
}

/* Appends item to an arena array whose capacity doubles at powers of two. */
static void *push_elem(parser_t *p, void **arr, size_t *n, size_t size)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, 8 …: grow */
        size_t cap = *n ? *n * 2 : 4;
        void *bigger = rn_arena_alloc(p->arena, cap * size);
        if (!bigger)
            return NULL;
        if (*n)
            memcpy(bigger, *arr, *n * size);
        *arr = bigger;
    }
    return (char *)*arr + (*n)++ * size;
}

/* INTERVAL 'n' unit, after the INTERVAL keyword; ms > 0. */
static rn_err_t interval_body(parser_t *p, int64_t *ms)
{
    const rn_token_t *t = cur(p);
    int64_t n;
    if (t->kind == RN_TOK_STRING) {
        char *end;
        errno = 0;
        n = strtoll(t->str, &end, 10);
        while (*end == ' ')
            end++;
        if (errno || end == t->str || *end != '\0' || n < 0)
            return fail_at(p, t, "interval must be a whole number of units, like INTERVAL '5' MINUTE");
    } else if (t->kind == RN_TOK_INT) {
        n = t->ival;
    } else {
        char found[64];
        return fail_at(p, t, "expected the interval's length ('5'), found %s",
                       rn_tok_describe(t, found, sizeof found));
    }
    advance(p);
    static const rn_kw_t units[] = {RN_KW_MILLISECOND, RN_KW_SECOND, RN_KW_MINUTE, RN_KW_HOUR,
                                    RN_KW_DAY};
    static const int64_t unit_ms[] = {1, 1000, 60000, 3600000, 86400000};
    for (size_t i = 0; i < 5; i++) {
        if (accept_kw(p, units[i])) {
            if (n > INT64_MAX / unit_ms[i])
                return fail_at(p, t, "interval too long");
            *ms = n * unit_ms[i];
            return RN_OK;
        }
    }
    return expected_kw(p, "a unit (MILLISECOND, SECOND, MINUTE, HOUR or DAY)", units, 5);
}

static rn_err_t positive_interval(parser_t *p, int64_t *ms)
{
    const rn_token_t *t = cur(p);
    TRY(expect_kw(p, RN_KW_INTERVAL));
    TRY(interval_body(p, ms));
    if (*ms <= 0)
        return fail_at(p, t, "interval must be longer than zero");
    return RN_OK;
}

/* ------------------------------------------------------------------ expressions -- */

static rn_err_t expr(parser_t *p, rn_ast_expr_t **out);

static rn_err_t too_deep(parser_t *p, int line, int col)
{
    rn_sql_error(p->src, line, col, p->errbuf, p->errlen,
                 "expression nested deeper than %d levels", RN_SQL_MAX_EXPR_DEPTH);
    p->err = RN_ERR_MALFORMED;
    return p->err;
}

/* Brackets one level of expression recursion; a caller that got RN_OK calls leave(). */
static rn_err_t enter(parser_t *p)
{
    if (p->depth >= RN_SQL_MAX_EXPR_DEPTH)
        return too_deep(p, cur(p)->line, cur(p)->col);
    p->depth++;
    return RN_OK;
}

static void leave(parser_t *p)
{
    p->depth--;
}

static rn_ast_expr_t *new_expr(parser_t *p, rn_ast_kind_t kind, const rn_token_t *at)
{
    rn_ast_expr_t *e = rn_arena_alloc(p->arena, sizeof *e);
    if (e) {
        e->kind = kind;
        e->line = at->line;
        e->col = at->col;
        e->depth = 1;
    }
    return e;
}

/* Every child joins its parent here, so this is where the tree's depth is bounded. */
static rn_err_t add_arg(parser_t *p, rn_ast_expr_t *e, rn_ast_expr_t *arg)
{
    if (arg->depth >= e->depth) {
        if (arg->depth >= RN_SQL_MAX_EXPR_DEPTH)
            return too_deep(p, e->line, e->col);
        e->depth = arg->depth + 1;
    }
    rn_ast_expr_t **slot = push_elem(p, (void **)&e->args, &e->nargs, sizeof *slot);
    if (!slot)
        return nomem(p);
    *slot = arg;
    return RN_OK;
}

static rn_err_t call_args(parser_t *p, rn_ast_expr_t *e)
{
    if (accept(p, RN_TOK_STAR)) {
        e->star = true;
        return expect(p, RN_TOK_RPAREN, "')'");
    }
    if (accept_kw(p, RN_KW_DISTINCT))
        e->distinct = true;
    if (accept(p, RN_TOK_RPAREN))
        return RN_OK;
    for (;;) {
        rn_ast_expr_t *arg;
        TRY(expr(p, &arg));
        TRY(add_arg(p, e, arg));
        if (!accept(p, RN_TOK_COMMA))
            break;
    }
    return expect(p, RN_TOK_RPAREN, "',' or ')'");
}

static rn_err_t primary(parser_t *p, rn_ast_expr_t **out)
{
    const rn_token_t *t = cur(p);
    rn_ast_expr_t *e = NULL;
    switch (t->kind) {
    case RN_TOK_INT:
    case RN_TOK_FLOAT:
        e = new_expr(p, t->kind == RN_TOK_INT ? RN_AST_INT : RN_AST_FLOAT, t);
        if (!e)
            return nomem(p);
        e->ival = t->ival;
        e->dval = t->dval;
        advance(p);
        break;
    case RN_TOK_STRING:
        if (!(e = new_expr(p, RN_AST_STRING, t)))
            return nomem(p);
        e->str = t->str;
        e->str_len = t->str_len;
        advance(p);
        break;
    case RN_TOK_LPAREN:
        advance(p);
        TRY(expr(p, &e));
        TRY(expect(p, RN_TOK_RPAREN, "')'"));
        break;
    case RN_TOK_IDENT:
    case RN_TOK_QIDENT:
        if (t->kind == RN_TOK_IDENT && (t->kw == RN_KW_TRUE || t->kw == RN_KW_FALSE)) {
            if (!(e = new_expr(p, RN_AST_BOOL, t)))
                return nomem(p);
            e->bval = t->kw == RN_KW_TRUE;
            advance(p);
            break;
        }
        if (is_kw(t, RN_KW_NULL)) {
            if (!(e = new_expr(p, RN_AST_NULL, t)))
                return nomem(p);
            advance(p);
            break;
        }
        if (is_kw(t, RN_KW_INTERVAL)) {
            if (!(e = new_expr(p, RN_AST_INTERVAL, t)))
                return nomem(p);
            advance(p);
            TRY(interval_body(p, &e->ival));
            break;
        }
        if (t->kind == RN_TOK_IDENT && rn_kw_reserved(t->kw)) {
            char found[64];
            return fail_at(p, t, "expected an expression, found %s",
                           rn_tok_describe(t, found, sizeof found));
        }
        advance(p);
        if (t->kind == RN_TOK_IDENT && accept(p, RN_TOK_LPAREN)) {
            if (!(e = new_expr(p, RN_AST_CALL, t)))
                return nomem(p);
            e->name = t->str;
            TRY(call_args(p, e));
            break;
        }
        if (!(e = new_expr(p, RN_AST_COLUMN, t)))
            return nomem(p);
        e->name = t->str;
        if (accept(p, RN_TOK_DOT)) {
            rn_ast_ident_t id;
            TRY(ident(p, "a column name after '.'", &id));
            e->qual = e->name;
            e->name = id.name;
            e->line = id.line;
            e->col = id.col;
        }
        break;
    default: {
        char found[64];
        return fail_at(p, t, "expected an expression, found %s",
                       rn_tok_describe(t, found, sizeof found));
    }
    }
    *out = e;
    return RN_OK;
}

static rn_err_t unary(parser_t *p, rn_ast_expr_t **out)
{
    const rn_token_t *t = cur(p);
    if (accept(p, RN_TOK_MINUS)) {
        rn_ast_expr_t *x;
        TRY(enter(p));
        TRY(unary(p, &x));
        leave(p);
        if (x->kind == RN_AST_INT || x->kind == RN_AST_FLOAT) { /* fold -5 into a literal */
            x->ival = (int64_t)(0 - (uint64_t)x->ival);
            x->dval = -x->dval;
            x->line = t->line;
            x->col = t->col;
            *out = x;
            return RN_OK;
        }
        rn_ast_expr_t *e = new_expr(p, RN_AST_UNARY, t);
        if (!e)
            return nomem(p);
        e->op = RN_OP_NEG;
        TRY(add_arg(p, e, x));
        *out = e;
        return RN_OK;
    }
    if (accept(p, RN_TOK_PLUS)) {
        TRY(enter(p));
        TRY(unary(p, out));
        leave(p);
        return RN_OK;
    }
    return primary(p, out);
}

static rn_err_t binary_node(parser_t *p, const rn_token_t *at, rn_op_t op, rn_ast_expr_t *l,
                            rn_ast_expr_t *r, rn_ast_expr_t **out)
{
    rn_ast_expr_t *e = new_expr(p, RN_AST_BINARY, at);
    if (!e)
        return nomem(p);
    e->op = op;
    TRY(add_arg(p, e, l));
    TRY(add_arg(p, e, r));
    *out = e;
    return RN_OK;
}

static rn_err_t multiplicative(parser_t *p, rn_ast_expr_t **out)
{
    TRY(unary(p, out));
    for (;;) {
        const rn_token_t *t = cur(p);
        rn_op_t op;
        if (t->kind == RN_TOK_STAR)
            op = RN_OP_MUL;
        else if (t->kind == RN_TOK_SLASH)
            op = RN_OP_DIV;
        else if (t->kind == RN_TOK_PERCENT)
            op = RN_OP_MOD;
        else
            return RN_OK;
        advance(p);
        rn_ast_expr_t *r;
        TRY(unary(p, &r));
        TRY(binary_node(p, t, op, *out, r, out));
    }
}

static rn_err_t additive(parser_t *p, rn_ast_expr_t **out)
{
    TRY(multiplicative(p, out));
    for (;;) {
        const rn_token_t *t = cur(p);
        if (t->kind != RN_TOK_PLUS && t->kind != RN_TOK_MINUS)
            return RN_OK;
        advance(p);
        rn_ast_expr_t *r;
        TRY(multiplicative(p, &r));
        TRY(binary_node(p, t, t->kind == RN_TOK_PLUS ? RN_OP_ADD : RN_OP_SUB, *out, r, out));
    }
}

static rn_err_t predicate(parser_t *p, rn_ast_expr_t **out)
{
    TRY(additive(p, out));
    const rn_token_t *t = cur(p);
    static const struct { rn_tok_kind_t tok; rn_op_t op; } cmp[] = {
        {RN_TOK_EQ, RN_OP_EQ}, {RN_TOK_NE, RN_OP_NE}, {RN_TOK_LT, RN_OP_LT},
        {RN_TOK_LE, RN_OP_LE}, {RN_TOK_GT, RN_OP_GT}, {RN_TOK_GE, RN_OP_GE},
    };
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        if (t->kind == cmp[i].tok) {
            advance(p);
            rn_ast_expr_t *r;
            TRY(additive(p, &r));
            return binary_node(p, t, cmp[i].op, *out, r, out);
        }
    }
    if (is_kw(t, RN_KW_IS)) {
        advance(p);
        rn_ast_expr_t *e = new_expr(p, RN_AST_ISNULL, t);
        if (!e)
            return nomem(p);
        e->negated = accept_kw(p, RN_KW_NOT);
        TRY(expect_kw(p, RN_KW_NULL));
        TRY(add_arg(p, e, *out));
        *out = e;
        return RN_OK;
    }
    bool negated = false;
    if (is_kw(t, RN_KW_NOT) && is_kw(&p->toks[p->pos + 1], RN_KW_IN)) {
        advance(p);
        negated = true;
    }
    if (accept_kw(p, RN_KW_IN)) {
        rn_ast_expr_t *e = new_expr(p, RN_AST_IN, t);
        if (!e)
            return nomem(p);
        e->negated = negated;
        TRY(add_arg(p, e, *out));
        TRY(expect(p, RN_TOK_LPAREN, "'(' after IN"));
        for (;;) {
            rn_ast_expr_t *item;
            TRY(expr(p, &item));
            TRY(add_arg(p, e, item));
            if (!accept(p, RN_TOK_COMMA))
                break;
        }
        TRY(expect(p, RN_TOK_RPAREN, "',' or ')'"));
        *out = e;
    }
    return RN_OK;
}

static rn_err_t negation(parser_t *p, rn_ast_expr_t **out)
{
    const rn_token_t *t = cur(p);
    if (accept_kw(p, RN_KW_NOT)) {
        rn_ast_expr_t *x;
        TRY(enter(p));
        TRY(negation(p, &x));
        leave(p);
        rn_ast_expr_t *e = new_expr(p, RN_AST_UNARY, t);
        if (!e)
            return nomem(p);
        e->op = RN_OP_NOT;
        TRY(add_arg(p, e, x));
        *out = e;
        return RN_OK;
    }
    return predicate(p, out);
}

static rn_err_t conjunction(parser_t *p, rn_ast_expr_t **out)
{
    TRY(negation(p, out));
    for (;;) {
        const rn_token_t *t = cur(p);
        if (!accept_kw(p, RN_KW_AND))
            return RN_OK;
        rn_ast_expr_t *r;
        TRY(negation(p, &r));
        TRY(binary_node(p, t, RN_OP_AND, *out, r, out));
    }
}

static rn_err_t disjunction(parser_t *p, rn_ast_expr_t **out)
{
    TRY(conjunction(p, out));
    for (;;) {
        const rn_token_t *t = cur(p);
        if (!accept_kw(p, RN_KW_OR))
            return RN_OK;
        rn_ast_expr_t *r;
        TRY(conjunction(p, &r));
        TRY(binary_node(p, t, RN_OP_OR, *out, r, out));
    }
}

/* Every parenthesis, call argument and IN item comes back here, so one level is counted. */
static rn_err_t expr(parser_t *p, rn_ast_expr_t **out)
{
    TRY(enter(p));
    TRY(disjunction(p, out));
    leave(p);
    return RN_OK;
}

/* ------------------------------------------------------------------- statements -- */

static rn_err_t type_name(parser_t *p, rn_type_t *out)
{
    const rn_token_t *t = cur(p);
    /* Flink and Postgres spellings are accepted for what they mean here. */
    static const struct { const char *name; rn_type_t type; } types[] = {
        {"text", RN_T_TEXT}, {"bigint", RN_T_BIGINT}, {"double", RN_T_DOUBLE},
        {"boolean", RN_T_BOOLEAN}, {"timestamp", RN_T_TIMESTAMP},
        {"string", RN_T_TEXT}, {"varchar", RN_T_TEXT}, {"int", RN_T_BIGINT},
        {"integer", RN_T_BIGINT}, {"float", RN_T_DOUBLE}, {"real", RN_T_DOUBLE},
        {"bool", RN_T_BOOLEAN}, {"timestamptz", RN_T_TIMESTAMP},
    };
    if (t->kind == RN_TOK_IDENT) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            if (strcmp(t->str, types[i].name) == 0) {
                *out = types[i].type;
                advance(p);
                if (accept(p, RN_TOK_LPAREN)) { /* TIMESTAMP(3), VARCHAR(64): ignored */
                    TRY(expect(p, RN_TOK_INT, "a precision"));
                    TRY(expect(p, RN_TOK_RPAREN, "')'"));
                }
                if (accept_kw(p, RN_KW_DOUBLE) && *out != RN_T_DOUBLE)
                    return fail_at(p, t, "unexpected DOUBLE after a type");
                return RN_OK;
            }
        }
    }
    static const rn_kw_t kws[] = {RN_KW_TEXT, RN_KW_BIGINT, RN_KW_DOUBLE, RN_KW_BOOLEAN,
                                  RN_KW_TIMESTAMP};
    return expected_kw(p, "a type (TEXT, BIGINT, DOUBLE, BOOLEAN or TIMESTAMP)", kws, 5);
}

/* An option key: 'idle.timeout.ms' or idle.timeout.ms. */
static rn_err_t option_key(parser_t *p, rn_ast_ident_t *out)
{
    const rn_token_t *t = cur(p);
    out->line = t->line;
    out->col = t->col;
    if (t->kind == RN_TOK_STRING) {
        out->name = t->str;
        advance(p);
        return RN_OK;
    }
    if (t->kind != RN_TOK_IDENT) {
        char found[64];
        return fail_at(p, t, "expected an option name ('idle.timeout.ms'), found %s",
                       rn_tok_describe(t, found, sizeof found));
    }
    const rn_token_t *last = t;
    advance(p);
    while (cur(p)->kind == RN_TOK_DOT && p->toks[p->pos + 1].kind == RN_TOK_IDENT) {
        advance(p);
        last = advance(p);
    }
    size_t len = (size_t)(last->raw + last->raw_len - t->raw);
    char *s = rn_arena_strndup(p->arena, t->raw, len);
    if (!s)
        return nomem(p);
    out->name = s;
    return RN_OK;
}

static rn_err_t with_options(parser_t *p, rn_ast_source_t *s)
{
    TRY(expect(p, RN_TOK_LPAREN, "'(' after WITH"));
    for (;;) {
        rn_ast_opt_t *o = push_elem(p, (void **)&s->opts, &s->nopts, sizeof *o);
        if (!o)
            return nomem(p);
        TRY(option_key(p, &o->key));
        TRY(expect(p, RN_TOK_EQ, "'='"));
        const rn_token_t *v = cur(p);
        o->vline = v->line;
        o->vcol = v->col;
        if (v->kind == RN_TOK_STRING) {
            o->value = v->str;
        } else if (v->kind == RN_TOK_INT || v->kind == RN_TOK_FLOAT ||
                   (v->kind == RN_TOK_IDENT && (v->kw == RN_KW_TRUE || v->kw == RN_KW_FALSE))) {
            o->value = rn_arena_strndup(p->arena, v->raw, v->raw_len);
            if (!o->value)
                return nomem(p);
        } else {
            char found[64];
            return fail_at(p, v, "expected the option's value ('…' or a number), found %s",
                           rn_tok_describe(v, found, sizeof found));
        }
        advance(p);
        if (!accept(p, RN_TOK_COMMA))
            break;
    }
    return expect(p, RN_TOK_RPAREN, "',' or ')'");
}

static rn_err_t source_stmt(parser_t *p, rn_ast_source_t *s)
{
    TRY(ident(p, "the source's name", &s->id));
    TRY(expect(p, RN_TOK_LPAREN, "'(' and the source's columns"));
    for (;;) {
        rn_ast_coldef_t *c = push_elem(p, (void **)&s->cols, &s->ncols, sizeof *c);
        if (!c)
            return nomem(p);
        TRY(ident(p, "a column name", &c->id));
        TRY(type_name(p, &c->type));
        if (!accept(p, RN_TOK_COMMA))
            break;
    }
    TRY(expect(p, RN_TOK_RPAREN, "',' or ')'"));
    TRY(expect_kw(p, RN_KW_FROM));
    TRY(expect_kw(p, RN_KW_TOPIC));
    TRY(string_lit(p, "the topic's name", &s->topic));
    TRY(expect_kw(p, RN_KW_FORMAT));
    TRY(expect_kw(p, RN_KW_JSON));
    for (;;) {
        if (accept_kw(p, RN_KW_WATERMARK)) {
            if (s->has_watermark)
                return fail_at(p, &p->toks[p->pos - 1], "a source has one WATERMARK clause");
            s->has_watermark = true;
            TRY(expect_kw(p, RN_KW_FOR));
            TRY(ident(p, "the event-time column", &s->wm_col));
            TRY(expect_kw(p, RN_KW_AS));
            rn_ast_ident_t again;
            TRY(ident(p, "the event-time column", &again));
            if (strcmp(again.name, s->wm_col.name) != 0) {
                const rn_token_t *t = &p->toks[p->pos - 1];
                return fail_at(p, t, "the watermark must be '%s - INTERVAL …' (found '%s')",
                               s->wm_col.name, again.name);
            }
            if (accept(p, RN_TOK_MINUS)) {
                const rn_token_t *t = cur(p);
                TRY(expect_kw(p, RN_KW_INTERVAL));
                TRY(interval_body(p, &s->wm_delay_ms));
                (void)t;
            }
        } else if (accept_kw(p, RN_KW_WITH)) {
            if (s->opts)
                return fail_at(p, &p->toks[p->pos - 1], "a source has one WITH clause");
            TRY(with_options(p, s));
        } else {
            return RN_OK;
        }
    }
}

static rn_err_t from_clause(parser_t *p, rn_ast_from_t *f)
{
    const rn_token_t *t = cur(p);
    f->line = t->line;
    f->col = t->col;
    rn_win_kind_t kind = RN_WIN_NONE;
    if (is_kw(t, RN_KW_TUMBLE))
        kind = RN_WIN_TUMBLE;
    else if (is_kw(t, RN_KW_HOP))
        kind = RN_WIN_HOP;
    else if (is_kw(t, RN_KW_SESSION))
        kind = RN_WIN_SESSION;
    if (kind == RN_WIN_NONE || p->toks[p->pos + 1].kind != RN_TOK_LPAREN)
        return ident(p, "a source name or TUMBLE/HOP/SESSION(…)", &f->source);
    f->kind = kind;
    advance(p);
    advance(p);
    accept_kw(p, RN_KW_TABLE);
    TRY(ident(p, "the source's name", &f->source));
    TRY(expect(p, RN_TOK_COMMA, "','"));
    bool descriptor = cur(p)->kind == RN_TOK_IDENT && strcmp(cur(p)->str, "descriptor") == 0 &&
                      p->toks[p->pos + 1].kind == RN_TOK_LPAREN;
    if (descriptor) {
        advance(p);
        advance(p);
    }
    TRY(ident(p, "the event-time column", &f->time_col));
    if (descriptor)
        TRY(expect(p, RN_TOK_RPAREN, "')'"));
    TRY(expect(p, RN_TOK_COMMA, "','"));
    if (kind == RN_WIN_TUMBLE) {
        TRY(positive_interval(p, &f->size_ms));
        f->slide_ms = f->size_ms;
    } else if (kind == RN_WIN_HOP) {
        TRY(positive_interval(p, &f->slide_ms));
        TRY(expect(p, RN_TOK_COMMA, "',' and the window size"));
        TRY(positive_interval(p, &f->size_ms));
    } else {
        TRY(positive_interval(p, &f->gap_ms));
    }
    return expect(p, RN_TOK_RPAREN, "')'");
}

static rn_err_t select_stmt(parser_t *p, rn_ast_select_t *s)
{
    const rn_token_t *t = cur(p);
    s->line = t->line;
    s->col = t->col;
    TRY(expect_kw(p, RN_KW_SELECT));
    for (;;) {
        rn_ast_item_t *it = push_elem(p, (void **)&s->items, &s->nitems, sizeof *it);
        if (!it)
            return nomem(p);
        if (cur(p)->kind == RN_TOK_STAR)
            return fail_at(p, cur(p), "SELECT * is not supported: name the output columns");
        TRY(expr(p, &it->expr));
        if (accept_kw(p, RN_KW_AS))
            TRY(ident(p, "a column alias", &it->alias));
        else if (cur(p)->kind == RN_TOK_QIDENT ||
                 (cur(p)->kind == RN_TOK_IDENT && !rn_kw_reserved(cur(p)->kw)))
            TRY(ident(p, "a column alias", &it->alias));
        if (!accept(p, RN_TOK_COMMA))
            break;
    }
    TRY(expect_kw(p, RN_KW_FROM));
    TRY(from_clause(p, &s->from));
    if (accept_kw(p, RN_KW_WHERE))
        TRY(expr(p, &s->where));
    if (is_kw(cur(p), RN_KW_GROUP)) {
        s->group_line = cur(p)->line;
        s->group_col = cur(p)->col;
        advance(p);
        TRY(expect_kw(p, RN_KW_BY));
        for (;;) {
            rn_ast_expr_t **g = push_elem(p, (void **)&s->group_by, &s->ngroup, sizeof *g);
            if (!g)
                return nomem(p);
            TRY(expr(p, g));
            if (!accept(p, RN_TOK_COMMA))
                break;
        }
    }
    if (accept_kw(p, RN_KW_HAVING))
        TRY(expr(p, &s->having));
    if (is_kw(cur(p), RN_KW_EMIT)) {
        s->emit_line = cur(p)->line;
        s->emit_col = cur(p)->col;
        advance(p);
        if (accept_kw(p, RN_KW_ON)) {
            TRY(expect_kw(p, RN_KW_WINDOW));
            TRY(expect_kw(p, RN_KW_CLOSE));
            s->emit = RN_EMIT_ON_CLOSE;
        } else if (accept_kw(p, RN_KW_EVERY)) {
            TRY(positive_interval(p, &s->every_ms));
            s->emit = RN_EMIT_EVERY;
        } else {
            static const rn_kw_t kws[] = {RN_KW_ON, RN_KW_EVERY};
            return expected_kw(p, "ON WINDOW CLOSE or EVERY INTERVAL … after EMIT", kws, 2);
        }
    }
    return RN_OK;
}

static rn_err_t sink_stmt(parser_t *p, rn_ast_sink_t *s)
{
    TRY(ident(p, "the sink's name", &s->id));
    TRY(expect_kw(p, RN_KW_INTO));
    const rn_token_t *t = cur(p);
    if (accept_kw(p, RN_KW_SQLITE)) {
        s->kind = RN_SINK_SQLITE;
        TRY(string_lit(p, "the SQLite database path", &s->target));
    } else if (accept_kw(p, RN_KW_POSTGRES)) {
        s->kind = RN_SINK_POSTGRES;
        TRY(string_lit(p, "the PostgreSQL connection string", &s->target));
    } else if (accept_kw(p, RN_KW_TOPIC)) {
        s->kind = RN_SINK_TOPIC;
        TRY(string_lit(p, "the topic's name", &s->target));
    } else if (accept_kw(p, RN_KW_STDOUT)) {
        s->kind = RN_SINK_STDOUT;
    } else {
        static const rn_kw_t kws[] = {RN_KW_SQLITE, RN_KW_POSTGRES, RN_KW_TOPIC, RN_KW_STDOUT};
        return expected_kw(p, "SQLITE, POSTGRES, TOPIC or STDOUT", kws, 4);
    }
    (void)t;
    if (accept_kw(p, RN_KW_TABLE))
        TRY(ident(p, "the table's name", &s->table));
    s->pk_line = cur(p)->line;
    s->pk_col = cur(p)->col;
    TRY(expect_kw(p, RN_KW_PRIMARY));
    TRY(expect_kw(p, RN_KW_KEY));
    TRY(expect(p, RN_TOK_LPAREN, "'(' and the key's columns"));
    for (;;) {
        rn_ast_ident_t *k = push_elem(p, (void **)&s->pk, &s->npk, sizeof *k);
        if (!k)
            return nomem(p);
        TRY(ident(p, "a key column", k));
        if (!accept(p, RN_TOK_COMMA))
            break;
    }
    TRY(expect(p, RN_TOK_RPAREN, "',' or ')'"));
    TRY(expect_kw(p, RN_KW_AS));
    return select_stmt(p, &s->select);
}

static rn_err_t statement(parser_t *p, rn_ast_job_t *job)
{
    const rn_token_t *t = cur(p);
    if (!accept_kw(p, RN_KW_CREATE)) {
        static const rn_kw_t kws[] = {RN_KW_CREATE};
        return expected_kw(p, "CREATE SOURCE or CREATE SINK", kws, 1);
    }
    if (accept_kw(p, RN_KW_SOURCE)) {
        rn_ast_source_t *s = rn_arena_alloc(p->arena, sizeof *s);
        rn_ast_source_t **slot = push_elem(p, (void **)&job->sources, &job->nsources, sizeof *slot);
        if (!s || !slot)
            return nomem(p);
        *slot = s;
        TRY(source_stmt(p, s));
    } else if (accept_kw(p, RN_KW_SINK)) {
        rn_ast_sink_t *s = rn_arena_alloc(p->arena, sizeof *s);
        rn_ast_sink_t **slot = push_elem(p, (void **)&job->sinks, &job->nsinks, sizeof *slot);
        if (!s || !slot)
            return nomem(p);
        *slot = s;
        TRY(sink_stmt(p, s));
    } else {
        static const rn_kw_t kws[] = {RN_KW_SOURCE, RN_KW_SINK};
        return expected_kw(p, "SOURCE or SINK after CREATE", kws, 2);
    }
    (void)t;
    if (accept(p, RN_TOK_SEMI) || cur(p)->kind == RN_TOK_EOF)
        return RN_OK;
    char found[64];
    return fail_at(p, cur(p), "expected ';' at the end of the statement, found %s",
                   rn_tok_describe(cur(p), found, sizeof found));
}

rn_err_t rn_sql_parse(const rn_sql_src_t *src, rn_arena_t *arena, rn_ast_job_t **out,
                      char *errbuf, size_t errlen)
{
    parser_t p = {.src = src, .arena = arena, .errbuf = errbuf, .errlen = errlen};
    rn_err_t err = rn_lex_all(src, arena, &p.toks, &p.n, errbuf, errlen);
    if (err != RN_OK)
        return err;
    rn_ast_job_t *job = rn_arena_alloc(arena, sizeof *job);
    if (!job)
        return nomem(&p);
    while (cur(&p)->kind != RN_TOK_EOF) {
        if (accept(&p, RN_TOK_SEMI))
            continue;
        if (statement(&p, job) != RN_OK)
            return p.err;
    }
    if (job->nsources == 0 && job->nsinks == 0) {
        rn_sql_error(src, 0, 0, errbuf, errlen, "the job file declares nothing (expected CREATE SOURCE and CREATE SINK)");
        return RN_ERR_MALFORMED;
    }
    *out = job;
    return RN_OK;
}
