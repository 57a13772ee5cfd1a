/*
 * expr.h - compiled expressions of WHERE, HAVING, SELECT and aggregate arguments.
 *
 * The planner builds these trees from the AST with every column resolved to an index into
 * the row the expression will see (a decoded source row for WHERE and aggregate arguments;
 * the group row [keys…, aggregates…, window_start, window_end] for SELECT and HAVING) and
 * every node typed. Evaluation never allocates: TEXT results point at a constant or at the
 * row's own bytes.
 *
 * NULL semantics are SQL's: arithmetic and comparisons with NULL give NULL; AND/OR use
 * three-valued logic (FALSE AND NULL = FALSE, TRUE OR NULL = TRUE); x IN (…) is NULL when x
 * is NULL or when nothing matched and the list holds a NULL; division or modulo by zero
 * gives NULL (not an error: a job never stops on data).
 */
#ifndef RN_EXPR_H
#define RN_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "ops/value.h"
#include "util/arena.h"

typedef enum rn_op {
    RN_OP_ADD, RN_OP_SUB, RN_OP_MUL, RN_OP_DIV, RN_OP_MOD,
    RN_OP_EQ, RN_OP_NE, RN_OP_LT, RN_OP_LE, RN_OP_GT, RN_OP_GE,
    RN_OP_AND, RN_OP_OR, RN_OP_NOT, RN_OP_NEG,
} rn_op_t;

typedef enum rn_expr_kind {
    RN_EX_CONST,
    RN_EX_COL,
    RN_EX_UNARY,   /* op NOT or NEG on a */
    RN_EX_BINARY,  /* a op b */
    RN_EX_IN,      /* a [NOT] IN (list) */
    RN_EX_ISNULL,  /* a IS [NOT] NULL */
} rn_expr_kind_t;

typedef struct rn_expr {
    rn_expr_kind_t kind;
    rn_type_t type;            /* result type; RN_T_NULL only for a bare NULL */
    rn_op_t op;
    bool negated;              /* NOT IN, IS NOT NULL */
    int col;                   /* RN_EX_COL: index into the row */
    rn_value_t cval;           /* RN_EX_CONST */
    struct rn_expr *a, *b;
    struct rn_expr **list;     /* RN_EX_IN */
    size_t nlist;
} rn_expr_t;

/* Node constructors (arena-owned; NULL when out of memory). No type checking here. */
rn_expr_t *rn_expr_const(rn_arena_t *a, rn_value_t v);
rn_expr_t *rn_expr_col(rn_arena_t *a, int col, rn_type_t type);
rn_expr_t *rn_expr_unary(rn_arena_t *a, rn_op_t op, rn_expr_t *x, rn_type_t type);
rn_expr_t *rn_expr_binary(rn_arena_t *a, rn_op_t op, rn_expr_t *x, rn_expr_t *y, rn_type_t type);

/*
 * The result type of `x op y` for operand types tx, ty (RN_T_NULL for a NULL literal), or
 * -1 when the operation does not apply to them. Numbers mix (BIGINT with DOUBLE gives
 * DOUBLE); TIMESTAMP ± BIGINT is a TIMESTAMP; TIMESTAMP - TIMESTAMP is BIGINT milliseconds;
 * comparisons need comparable types (numbers and TIMESTAMP together, TEXT with TEXT,
 * BOOLEAN with BOOLEAN); AND/OR take BOOLEAN.
 */
int rn_expr_binary_type(rn_op_t op, rn_type_t tx, rn_type_t ty);
/* True when values of a and b may be compared (or one of them is a NULL literal). */
bool rn_expr_comparable(rn_type_t a, rn_type_t b);

/* Evaluates e over row. Never fails; see the NULL rules above. */
rn_value_t rn_expr_eval(const rn_expr_t *e, const rn_value_t *row);
/* WHERE/HAVING: true only when e evaluates to a non-NULL TRUE. */
static inline bool rn_expr_true(const rn_expr_t *e, const rn_value_t *row)
{
    rn_value_t v = rn_expr_eval(e, row);
    return !v.is_null && v.u.b;
}

/* "+", "<=", "AND" … */
const char *rn_op_name(rn_op_t op);

#endif
