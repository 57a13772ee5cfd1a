#include "ops/expr.h"

#include <math.h>
#include <stdint.h>

static rn_expr_t *node(rn_arena_t *a, rn_expr_kind_t kind, rn_type_t type)
{
    rn_expr_t *e = rn_arena_alloc(a, sizeof *e);
    if (e) {
        e->kind = kind;
        e->type = type;
    }
    return e;
}

rn_expr_t *rn_expr_const(rn_arena_t *a, rn_value_t v)
{
    rn_expr_t *e = node(a, RN_EX_CONST, (rn_type_t)v.type);
    if (e)
        e->cval = v;
    return e;
}

rn_expr_t *rn_expr_col(rn_arena_t *a, int col, rn_type_t type)
{
    rn_expr_t *e = node(a, RN_EX_COL, type);
    if (e)
        e->col = col;
    return e;
}

rn_expr_t *rn_expr_unary(rn_arena_t *a, rn_op_t op, rn_expr_t *x, rn_type_t type)
{
    rn_expr_t *e = node(a, RN_EX_UNARY, type);
    if (e) {
        e->op = op;
        e->a = x;
    }
    return e;
}

rn_expr_t *rn_expr_binary(rn_arena_t *a, rn_op_t op, rn_expr_t *x, rn_expr_t *y, rn_type_t type)
{
    rn_expr_t *e = node(a, RN_EX_BINARY, type);
    if (e) {
        e->op = op;
        e->a = x;
        e->b = y;
    }
    return e;
}

static bool numeric(rn_type_t t)
{
    return t == RN_T_BIGINT || t == RN_T_DOUBLE;
}

bool rn_expr_comparable(rn_type_t a, rn_type_t b)
{
    if (a == RN_T_NULL || b == RN_T_NULL || a == b)
        return true;
    bool na = numeric(a) || a == RN_T_TIMESTAMP, nb = numeric(b) || b == RN_T_TIMESTAMP;
    return na && nb;
}

int rn_expr_binary_type(rn_op_t op, rn_type_t tx, rn_type_t ty)
{
    switch (op) {
    case RN_OP_AND:
    case RN_OP_OR:
        if ((tx == RN_T_BOOLEAN || tx == RN_T_NULL) && (ty == RN_T_BOOLEAN || ty == RN_T_NULL))
            return RN_T_BOOLEAN;
        return -1;
    case RN_OP_EQ: case RN_OP_NE: case RN_OP_LT: case RN_OP_LE: case RN_OP_GT: case RN_OP_GE:
        return rn_expr_comparable(tx, ty) ? RN_T_BOOLEAN : -1;
    case RN_OP_ADD: case RN_OP_SUB: case RN_OP_MUL: case RN_OP_DIV: case RN_OP_MOD:
        if (tx == RN_T_NULL && ty == RN_T_NULL)
            return RN_T_NULL;
        if (tx == RN_T_NULL)
            tx = ty;
        if (ty == RN_T_NULL)
            ty = tx;
        if (numeric(tx) && numeric(ty))
            return (tx == RN_T_DOUBLE || ty == RN_T_DOUBLE) ? RN_T_DOUBLE : RN_T_BIGINT;
        if (tx == RN_T_TIMESTAMP && ty == RN_T_BIGINT && (op == RN_OP_ADD || op == RN_OP_SUB))
            return RN_T_TIMESTAMP;
        if (tx == RN_T_BIGINT && ty == RN_T_TIMESTAMP && op == RN_OP_ADD)
            return RN_T_TIMESTAMP;
        if (tx == RN_T_TIMESTAMP && ty == RN_T_TIMESTAMP && op == RN_OP_SUB)
            return RN_T_BIGINT;
        return -1;
    default:
        return -1;
    }
}

static rn_value_t arith(const rn_expr_t *e, rn_value_t x, rn_value_t y)
{
    if (x.is_null || y.is_null)
        return rn_val_null(e->type);
    if (e->type == RN_T_DOUBLE) {
        double a = x.type == RN_T_DOUBLE ? x.u.d : (double)x.u.i;
        double b = y.type == RN_T_DOUBLE ? y.u.d : (double)y.u.i;
        switch (e->op) {
        case RN_OP_ADD: return rn_val_double(a + b);
        case RN_OP_SUB: return rn_val_double(a - b);
        case RN_OP_MUL: return rn_val_double(a * b);
        case RN_OP_DIV: return b == 0 ? rn_val_null(RN_T_DOUBLE) : rn_val_double(a / b);
        default: return b == 0 ? rn_val_null(RN_T_DOUBLE) : rn_val_double(fmod(a, b));
        }
    }
    /* Integer arithmetic wraps like two's complement instead of invoking UB. */
    uint64_t a = (uint64_t)x.u.i, b = (uint64_t)y.u.i;
    int64_t r;
    switch (e->op) {
    case RN_OP_ADD: r = (int64_t)(a + b); break;
    case RN_OP_SUB: r = (int64_t)(a - b); break;
    case RN_OP_MUL: r = (int64_t)(a * b); break;
    case RN_OP_DIV:
        if (y.u.i == 0)
            return rn_val_null(e->type);
        r = (x.u.i == INT64_MIN && y.u.i == -1) ? INT64_MIN : x.u.i / y.u.i;
        break;
    default:
        if (y.u.i == 0)
            return rn_val_null(e->type);
        r = y.u.i == -1 ? 0 : x.u.i % y.u.i;
        break;
    }
    return rn_val_int(e->type, r);
}

static rn_value_t compare(rn_op_t op, rn_value_t x, rn_value_t y)
{
    if (x.is_null || y.is_null)
        return rn_val_null(RN_T_BOOLEAN);
    int c = rn_val_cmp(&x, &y);
    bool r;
    switch (op) {
    case RN_OP_EQ: r = c == 0; break;
    case RN_OP_NE: r = c != 0; break;
    case RN_OP_LT: r = c < 0; break;
    case RN_OP_LE: r = c <= 0; break;
    case RN_OP_GT: r = c > 0; break;
    default: r = c >= 0; break;
    }
    return rn_val_bool(r);
}

static rn_value_t eval_in(const rn_expr_t *e, const rn_value_t *row)
{
    rn_value_t x = rn_expr_eval(e->a, row);
    if (x.is_null)
        return rn_val_null(RN_T_BOOLEAN);
    bool saw_null = false;
    for (size_t i = 0; i < e->nlist; i++) {
        rn_value_t y = rn_expr_eval(e->list[i], row);
        if (y.is_null) {
            saw_null = true;
            continue;
        }
        if (rn_val_cmp(&x, &y) == 0)
            return rn_val_bool(!e->negated);
    }
    return saw_null ? rn_val_null(RN_T_BOOLEAN) : rn_val_bool(e->negated);
}

rn_value_t rn_expr_eval(const rn_expr_t *e, const rn_value_t *row)
{
    switch (e->kind) {
    case RN_EX_CONST:
        return e->cval;
    case RN_EX_COL:
        return row[e->col];
    case RN_EX_ISNULL: {
        rn_value_t x = rn_expr_eval(e->a, row);
        return rn_val_bool(x.is_null != e->negated);
    }
    case RN_EX_IN:
        return eval_in(e, row);
    case RN_EX_UNARY: {
        rn_value_t x = rn_expr_eval(e->a, row);
        if (x.is_null)
            return rn_val_null(e->type);
        if (e->op == RN_OP_NOT)
            return rn_val_bool(!x.u.b);
        if (x.type == RN_T_DOUBLE)
            return rn_val_double(-x.u.d);
        return rn_val_int((rn_type_t)x.type, (int64_t)(0 - (uint64_t)x.u.i));
    }
    case RN_EX_BINARY:
        break;
    }
    if (e->op == RN_OP_AND || e->op == RN_OP_OR) {
        bool is_and = e->op == RN_OP_AND;
        rn_value_t x = rn_expr_eval(e->a, row);
        if (!x.is_null && x.u.b != is_and) /* FALSE AND …, TRUE OR … */
            return rn_val_bool(!is_and);
        rn_value_t y = rn_expr_eval(e->b, row);
        if (!y.is_null && y.u.b != is_and)
            return rn_val_bool(!is_and);
        if (x.is_null || y.is_null)
            return rn_val_null(RN_T_BOOLEAN);
        return rn_val_bool(is_and);
    }
    rn_value_t x = rn_expr_eval(e->a, row);
    rn_value_t y = rn_expr_eval(e->b, row);
    if (e->op >= RN_OP_EQ && e->op <= RN_OP_GE)
        return compare(e->op, x, y);
    return arith(e, x, y);
}

const char *rn_op_name(rn_op_t op)
{
    static const char *const names[] = {"+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">",
                                        ">=", "AND", "OR", "NOT", "-"};
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "?";
}
