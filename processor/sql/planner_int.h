/*
 * planner_int.h - shared between planner.c (statements, plan, printout) and planner_expr.c
 * (expressions). Not for use outside sql/.
 */
#ifndef RN_SQL_PLANNER_INT_H
#define RN_SQL_PLANNER_INT_H

#include "sql/plan.h"

typedef enum rn__scope {
    RN__SCOPE_SOURCE, /* WHERE, aggregate arguments: source columns */
    RN__SCOPE_GROUP,  /* SELECT, HAVING: keys, aggregates, window columns */
} rn__scope_t;

typedef struct rn__planner {
    const rn_sql_src_t *src;
    rn_plan_t *plan;
    rn_arena_t *a;
    char *errbuf;
    size_t errlen;
    const rn_ast_source_t *source;
    const rn_ast_select_t *sel;
    const rn_ast_expr_t **agg_asts; /* parallel to plan->aggs, for de-duplication */
    bool in_having;                 /* HAVING may name SELECT aliases */
    rn_err_t err;
} rn__planner_t;

rn_err_t rn__plan_fail(rn__planner_t *pl, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
rn_err_t rn__plan_nomem(rn__planner_t *pl);
/* Appends to an arena array that doubles at powers of two; NULL when out of memory. */
void *rn__plan_push(rn__planner_t *pl, void **arr, size_t *n, size_t size);
/* "SUM(value)", "(action = 'click')": the expression as the plan printout shows it. */
const char *rn__plan_text(rn__planner_t *pl, const rn_ast_expr_t *e);
/* Compiles e in scope; RN_OK with *out typed, or a positioned error. */
rn_err_t rn__plan_compile(rn__planner_t *pl, const rn_ast_expr_t *e, rn__scope_t scope,
                          rn_expr_t **out);
/* Where an expression starts (its leftmost operand), for messages about all of it. */
int rn__ast_line(const rn_ast_expr_t *e);
int rn__ast_col(const rn_ast_expr_t *e);
/* Index of a declared source column, or -1. */
int rn__plan_source_col(const rn__planner_t *pl, const char *name);

#endif
