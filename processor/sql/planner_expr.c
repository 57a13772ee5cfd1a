/*
 * planner_expr.c - expressions of the plan: name resolution, type checking, aggregate
 * collection, and the text form the plan printout shows.
 */
#include "sql/planner_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                      \
    do {                            \
        if ((x) != RN_OK)           \
            return pl->err;         \
    } while (0)

rn_err_t rn__plan_fail(rn__planner_t *pl, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rn_sql_error(pl->src, line, col, pl->errbuf, pl->errlen, "%s", msg);
    pl->err = RN_ERR_MALFORMED;
    return pl->err;
}

rn_err_t rn__plan_nomem(rn__planner_t *pl)
{
    rn_sql_error(pl->src, 0, 0, pl->errbuf, pl->errlen, "out of memory");
    pl->err = RN_ERR_NOMEM;
    return pl->err;
}

void *rn__plan_push(rn__planner_t *pl, void **arr, size_t *n, size_t size)
{
    if ((*n & (*n - 1)) == 0) {
        size_t cap = *n ? *n * 2 : 4;
        void *bigger = rn_arena_alloc(pl->a, cap * size);
        if (!bigger)
            return NULL;
        if (*n)
            memcpy(bigger, *arr, *n * size);
        *arr = bigger;
    }
    return (char *)*arr + (*n)++ * size;
}

const char *rn_plan_interval(int64_t ms, char *buf, size_t len)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        {86400000, "DAY"}, {3600000, "HOUR"}, {60000, "MINUTE"}, {1000, "SECOND"}};
    for (size_t i = 0; i < 4; i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld %s", (long long)(ms / units[i].ms), units[i].unit);
            return buf;
        }
    }
    snprintf(buf, len, ms == 0 ? "0" : "%lld MILLISECOND", (long long)ms);
    return buf;
}

/* ------------------------------------------------------------ expression text -- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sput(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sput(sbuf_t *b, const char *fmt, ...)
{
    if (b->len >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        b->len += (size_t)w;
    if (b->len >= b->cap)
        b->len = b->cap - 1;
}

static void fmt_expr(sbuf_t *b, const rn_ast_expr_t *e)
{
    char tmp[64];
    switch (e->kind) {
    case RN_AST_INT: sput(b, "%lld", (long long)e->ival); break;
    case RN_AST_FLOAT: sput(b, "%g", e->dval); break;
    case RN_AST_STRING: sput(b, "'%s'", e->str); break;
    case RN_AST_BOOL: sput(b, "%s", e->bval ? "TRUE" : "FALSE"); break;
    case RN_AST_NULL: sput(b, "NULL"); break;
    case RN_AST_INTERVAL: sput(b, "INTERVAL %s", rn_plan_interval(e->ival, tmp, sizeof tmp)); break;
    case RN_AST_COLUMN: sput(b, "%s%s%s", e->qual ? e->qual : "", e->qual ? "." : "", e->name); break;
    case RN_AST_UNARY:
        sput(b, e->op == RN_OP_NOT ? "NOT " : "-");
        fmt_expr(b, e->args[0]);
        break;
    case RN_AST_BINARY:
        sput(b, "(");
        fmt_expr(b, e->args[0]);
        sput(b, " %s ", rn_op_name(e->op));
        fmt_expr(b, e->args[1]);
        sput(b, ")");
        break;
    case RN_AST_IN:
        fmt_expr(b, e->args[0]);
        sput(b, e->negated ? " NOT IN (" : " IN (");
        for (size_t i = 1; i < e->nargs; i++) {
            if (i > 1)
                sput(b, ", ");
            fmt_expr(b, e->args[i]);
        }
        sput(b, ")");
        break;
    case RN_AST_ISNULL:
        fmt_expr(b, e->args[0]);
        sput(b, e->negated ? " IS NOT NULL" : " IS NULL");
        break;
    case RN_AST_CALL:
        for (const char *c = e->name; *c; c++)
            sput(b, "%c", (*c >= 'a' && *c <= 'z') ? *c - 32 : *c);
        sput(b, "(%s", e->distinct ? "DISTINCT " : "");
        if (e->star)
            sput(b, "*");
        for (size_t i = 0; i < e->nargs; i++) {
            if (i)
                sput(b, ", ");
            fmt_expr(b, e->args[i]);
        }
        sput(b, ")");
        break;
    }
}

const char *rn__plan_text(rn__planner_t *pl, const rn_ast_expr_t *e)
{
    char buf[1024];
    sbuf_t b = {buf, 0, sizeof buf};
    buf[0] = '\0';
    fmt_expr(&b, e);
    return rn_arena_strdup(pl->a, buf);
}

static bool ast_equal(const rn_ast_expr_t *x, const rn_ast_expr_t *y)
{
    if (!x || !y)
        return x == y;
    if (x->kind != y->kind || x->op != y->op || x->negated != y->negated ||
        x->distinct != y->distinct || x->star != y->star || x->nargs != y->nargs)
        return false;
    switch (x->kind) {
    case RN_AST_INT: case RN_AST_INTERVAL: if (x->ival != y->ival) return false; break;
    case RN_AST_FLOAT: if (x->dval != y->dval) return false; break;
    case RN_AST_STRING: if (strcmp(x->str, y->str) != 0) return false; break;
    case RN_AST_BOOL: if (x->bval != y->bval) return false; break;
    case RN_AST_COLUMN: case RN_AST_CALL: if (strcmp(x->name, y->name) != 0) return false; break;
    default: break;
    }
    for (size_t i = 0; i < x->nargs; i++) {
        if (!ast_equal(x->args[i], y->args[i]))
            return false;
    }
    return true;
}


/* ----------------------------------------------------------------- compilation -- */

#define TRY(x)                      \
    do {                            \
        if ((x) != RN_OK)           \
            return pl->err;         \
    } while (0)

static const rn_ast_expr_t *leftmost(const rn_ast_expr_t *e)
{
    while ((e->kind == RN_AST_BINARY || e->kind == RN_AST_IN || e->kind == RN_AST_ISNULL) &&
           e->nargs > 0)
        e = e->args[0];
    return e;
}

int rn__ast_line(const rn_ast_expr_t *e)
{
    return leftmost(e)->line;
}

int rn__ast_col(const rn_ast_expr_t *e)
{
    return leftmost(e)->col;
}

int rn__plan_source_col(const rn__planner_t *pl, const char *name)
{
    for (size_t i = 0; i < pl->plan->ncols; i++) {
        if (strcmp(pl->plan->cols[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static rn_err_t unknown_column(rn__planner_t *pl, const rn_ast_expr_t *e)
{
    const rn_plan_t *p = pl->plan;
    const char *cands[256];
    size_t n = 0;
    for (size_t i = 0; i < p->ncols && n < 250; i++)
        cands[n++] = p->cols[i].name;
    if (p->window.kind != RN_WIN_NONE) {
        cands[n++] = "window_start";
        cands[n++] = "window_end";
    }
    for (size_t i = 0; pl->in_having && i < p->nout && n < 256; i++)
        cands[n++] = p->out[i].name;
    const char *best = rn_sql_suggest(e->name, cands, n);
    if (best)
        return rn__plan_fail(pl, e->line, e->col, "unknown column '%s' (did you mean '%s'?)",
                             e->name, best);
    return rn__plan_fail(pl, e->line, e->col, "unknown column '%s' (source '%s' has: %s%s)",
                         e->name, pl->source->id.name, p->ncols ? p->cols[0].name : "",
                         p->ncols > 1 ? ", …" : "");
}

static rn_expr_t *col_node(rn__planner_t *pl, int col, rn_type_t type)
{
    rn_expr_t *x = rn_expr_col(pl->a, col, type);
    if (!x)
        rn__plan_nomem(pl);
    return x;
}

static rn_err_t compile_column(rn__planner_t *pl, const rn_ast_expr_t *e, rn__scope_t scope,
                               rn_expr_t **out)
{
    rn_plan_t *p = pl->plan;
    if (e->qual && strcmp(e->qual, pl->source->id.name) != 0)
        return rn__plan_fail(pl, e->line, e->col - (int)strlen(e->qual) - 1,
                             "unknown source '%s' (the query reads '%s')", e->qual,
                             pl->source->id.name);
    int c = rn__plan_source_col(pl, e->name);
    bool wstart = strcmp(e->name, "window_start") == 0;
    if (c < 0 && (wstart || strcmp(e->name, "window_end") == 0)) {
        if (p->window.kind == RN_WIN_NONE)
            return rn__plan_fail(pl, e->line, e->col,
                                 "'%s' exists only in windowed queries: FROM TUMBLE(…), HOP(…) or SESSION(…)",
                                 e->name);
        if (scope == RN__SCOPE_SOURCE)
            return rn__plan_fail(pl, e->line, e->col,
                                 "'%s' is not known before windowing; use it in SELECT, GROUP BY or HAVING",
                                 e->name);
        return (*out = col_node(pl, wstart ? RN_GROUP_WSTART : RN_GROUP_WEND, RN_T_TIMESTAMP))
                   ? RN_OK : pl->err;
    }
    if (c < 0) {
        for (size_t i = 0; pl->in_having && i < p->nout; i++) {
            if (strcmp(p->out[i].name, e->name) == 0) {
                *out = p->out_exprs[i];
                return RN_OK;
            }
        }
        return unknown_column(pl, e);
    }
    if (scope == RN__SCOPE_SOURCE)
        return (*out = col_node(pl, c, p->cols[c].type)) ? RN_OK : pl->err;
    for (size_t k = 0; k < p->nkeys; k++) {
        if (p->key_cols[k] == c)
            return (*out = col_node(pl, RN_GROUP_KEY0 + (int)k, p->cols[c].type)) ? RN_OK : pl->err;
    }
    return rn__plan_fail(pl, e->line, e->col,
                         "column '%s' must appear in GROUP BY or inside an aggregate", e->name);
}

static rn_err_t compile_call(rn__planner_t *pl, const rn_ast_expr_t *e, rn__scope_t scope,
                             rn_expr_t **out)
{
    static const char *const names[] = {"count", "sum", "min", "max", "avg"};
    static const rn_agg_kind_t kinds[] = {RN_AGG_COUNT, RN_AGG_SUM, RN_AGG_MIN, RN_AGG_MAX,
                                          RN_AGG_AVG};
    int f = -1;
    for (int i = 0; i < 5; i++) {
        if (strcmp(e->name, names[i]) == 0)
            f = i;
    }
    if (f < 0) {
        const char *best = rn_sql_suggest(e->name, names, 5);
        if (best)
            return rn__plan_fail(pl, e->line, e->col, "unknown function '%s' (did you mean '%s'?)",
                                 e->name, best);
        return rn__plan_fail(pl, e->line, e->col,
                             "unknown function '%s' (there are COUNT, SUM, MIN, MAX and AVG)", e->name);
    }
    if (scope == RN__SCOPE_SOURCE)
        return rn__plan_fail(pl, e->line, e->col,
                             "aggregate %s() is not allowed in WHERE or inside another aggregate (filter groups with HAVING)",
                             rn_agg_name(kinds[f]));
    rn_agg_kind_t kind = kinds[f];
    if (e->star) {
        if (kind != RN_AGG_COUNT)
            return rn__plan_fail(pl, e->line, e->col, "only COUNT takes *");
        kind = RN_AGG_COUNT_STAR;
    } else if (e->nargs != 1) {
        return rn__plan_fail(pl, e->line, e->col, "%s takes exactly one argument",
                             rn_agg_name(kind));
    }
    if (e->distinct && kind != RN_AGG_COUNT && kind != RN_AGG_MIN && kind != RN_AGG_MAX)
        return rn__plan_fail(pl, e->line, e->col, "DISTINCT is supported in COUNT only");
    if (e->distinct && kind == RN_AGG_COUNT)
        kind = RN_AGG_COUNT_DISTINCT;

    rn_expr_t *arg = NULL;
    rn_type_t arg_type = RN_T_NULL;
    if (kind != RN_AGG_COUNT_STAR) {
        TRY(rn__plan_compile(pl, e->args[0], RN__SCOPE_SOURCE, &arg));
        arg_type = arg->type;
        if (arg_type == RN_T_NULL)
            return rn__plan_fail(pl, e->args[0]->line, e->args[0]->col,
                                 "the argument of %s is always NULL", rn_agg_name(kind));
    }
    int type = rn_agg_result_type(kind, arg_type);
    if (type < 0)
        return rn__plan_fail(pl, e->args[0]->line, e->args[0]->col, "%s needs a number, not %s",
                             rn_agg_name(kind), rn_type_name(arg_type));
    rn_plan_t *p = pl->plan;
    size_t slot;
    for (slot = 0; slot < p->naggs; slot++) {
        if (p->aggs[slot].desc.kind == kind &&
            (kind == RN_AGG_COUNT_STAR || ast_equal(pl->agg_asts[slot], e->args[0])))
            break;
    }
    if (slot == p->naggs) {
        size_t n = p->naggs;
        const rn_ast_expr_t **a = rn__plan_push(pl, (void **)&pl->agg_asts, &n, sizeof *a);
        rn_plan_agg_t *agg = rn__plan_push(pl, (void **)&p->aggs, &p->naggs, sizeof *agg);
        if (!a || !agg)
            return rn__plan_nomem(pl);
        *a = kind == RN_AGG_COUNT_STAR ? NULL : e->args[0];
        agg->desc.kind = kind;
        agg->desc.arg_type = arg_type;
        agg->desc.type = (rn_type_t)type;
        agg->arg = arg;
        agg->text = rn__plan_text(pl, e);
    }
    return (*out = col_node(pl, RN_GROUP_KEY0 + (int)(p->nkeys + slot), (rn_type_t)type))
               ? RN_OK : pl->err;
}

/* A 'string' compared with a TIMESTAMP is read as an ISO-8601 timestamp. */
static rn_err_t coerce_timestamp(rn__planner_t *pl, const rn_ast_expr_t *ast, rn_expr_t **x,
                                 rn_type_t other)
{
    if ((*x)->kind != RN_EX_CONST || (*x)->type != RN_T_TEXT || other != RN_T_TIMESTAMP)
        return RN_OK;
    int64_t ms;
    if (!rn_ts_parse(ast->str, ast->str_len, &ms))
        return rn__plan_fail(pl, ast->line, ast->col,
                             "'%s' is not a timestamp (write it as '2023-10-27T10:00:00Z')", ast->str);
    *x = rn_expr_const(pl->a, rn_val_int(RN_T_TIMESTAMP, ms));
    return *x ? RN_OK : rn__plan_nomem(pl);
}

static rn_err_t compile_in(rn__planner_t *pl, const rn_ast_expr_t *e, rn__scope_t scope,
                           rn_expr_t **out)
{
    rn_expr_t *x = rn_arena_alloc(pl->a, sizeof *x);
    rn_expr_t **list = rn_arena_alloc(pl->a, (e->nargs - 1) * sizeof *list);
    if (!x || !list)
        return rn__plan_nomem(pl);
    x->kind = RN_EX_IN;
    x->type = RN_T_BOOLEAN;
    x->negated = e->negated;
    TRY(rn__plan_compile(pl, e->args[0], scope, &x->a));
    for (size_t i = 1; i < e->nargs; i++) {
        TRY(rn__plan_compile(pl, e->args[i], scope, &list[i - 1]));
        TRY(coerce_timestamp(pl, e->args[i], &list[i - 1], x->a->type));
        if (!rn_expr_comparable(x->a->type, list[i - 1]->type))
            return rn__plan_fail(pl, e->args[i]->line, e->args[i]->col,
                                 "IN list item is %s but the value tested is %s",
                                 rn_type_name(list[i - 1]->type), rn_type_name(x->a->type));
    }
    x->list = list;
    x->nlist = e->nargs - 1;
    *out = x;
    return RN_OK;
}

static rn_err_t compile_operator(rn__planner_t *pl, const rn_ast_expr_t *e, rn__scope_t scope,
                                 rn_expr_t **out)
{
    rn_expr_t *x, *y = NULL;
    TRY(rn__plan_compile(pl, e->args[0], scope, &x));
    if (e->kind == RN_AST_ISNULL) {
        rn_expr_t *n = rn_expr_unary(pl->a, RN_OP_NOT, x, RN_T_BOOLEAN);
        if (!n)
            return rn__plan_nomem(pl);
        n->kind = RN_EX_ISNULL;
        n->negated = e->negated;
        *out = n;
        return RN_OK;
    }
    if (e->kind == RN_AST_UNARY) {
        bool ok = e->op == RN_OP_NOT ? (x->type == RN_T_BOOLEAN || x->type == RN_T_NULL)
                                     : (x->type == RN_T_BIGINT || x->type == RN_T_DOUBLE ||
                                        x->type == RN_T_NULL);
        if (!ok)
            return rn__plan_fail(pl, e->line, e->col, "%s needs a %s, not %s",
                                 e->op == RN_OP_NOT ? "NOT" : "unary '-'",
                                 e->op == RN_OP_NOT ? "BOOLEAN" : "number", rn_type_name(x->type));
        *out = rn_expr_unary(pl->a, e->op, x, e->op == RN_OP_NOT ? RN_T_BOOLEAN : x->type);
        return *out ? RN_OK : rn__plan_nomem(pl);
    }
    TRY(rn__plan_compile(pl, e->args[1], scope, &y));
    if (e->op >= RN_OP_EQ && e->op <= RN_OP_GE) {
        TRY(coerce_timestamp(pl, e->args[0], &x, y->type));
        TRY(coerce_timestamp(pl, e->args[1], &y, x->type));
    }
    int type = rn_expr_binary_type(e->op, x->type, y->type);
    if (type < 0)
        return rn__plan_fail(pl, e->line, e->col, "cannot apply '%s' to %s and %s",
                             rn_op_name(e->op), rn_type_name(x->type), rn_type_name(y->type));
    *out = rn_expr_binary(pl->a, e->op, x, y, (rn_type_t)type);
    return *out ? RN_OK : rn__plan_nomem(pl);
}

rn_err_t rn__plan_compile(rn__planner_t *pl, const rn_ast_expr_t *e, rn__scope_t scope,
                          rn_expr_t **out)
{
    rn_value_t v;
    switch (e->kind) {
    case RN_AST_INT: v = rn_val_int(RN_T_BIGINT, e->ival); break;
    case RN_AST_INTERVAL: v = rn_val_int(RN_T_BIGINT, e->ival); break;
    case RN_AST_FLOAT: v = rn_val_double(e->dval); break;
    case RN_AST_STRING: v = rn_val_text(e->str, e->str_len); break;
    case RN_AST_BOOL: v = rn_val_bool(e->bval); break;
    case RN_AST_NULL: v = rn_val_null(RN_T_NULL); break;
    case RN_AST_COLUMN: return compile_column(pl, e, scope, out);
    case RN_AST_CALL: return compile_call(pl, e, scope, out);
    case RN_AST_IN: return compile_in(pl, e, scope, out);
    default: return compile_operator(pl, e, scope, out);
    }
    *out = rn_expr_const(pl->a, v);
    return *out ? RN_OK : rn__plan_nomem(pl);
}
