/*
 * plan.h - a checked, resolved job: what the runtime executes and `--check` prints.
 *
 * Rows at each stage:
 *   source row   one rn_value_t per declared source column, in declaration order
 *                (WHERE and aggregate arguments are compiled against it)
 *   group row    [window_start, window_end, key 0 … key K-1, agg 0 … agg A-1]
 *                (window columns are NULL in jobs without a window)
 *                (SELECT items and HAVING are compiled against it)
 *   output row   one value per SELECT item, in order; the sink's columns
 */
#ifndef RN_SQL_PLAN_H
#define RN_SQL_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "ops/agg.h"
#include "ops/expr.h"
#include "ops/window.h"
#include "sql/ast.h"
#include "sql/diag.h"
#include "util/arena.h"

typedef struct rn_plan_col {
    const char *name;
    rn_type_t type;
} rn_plan_col_t;

typedef struct rn_plan_agg {
    rn_agg_desc_t desc;
    rn_expr_t *arg;     /* over the source row; NULL for COUNT(*) */
    const char *text;   /* "SUM(value)", for the plan printout */
} rn_plan_agg_t;

typedef struct rn_plan {
    rn_arena_t arena;        /* everything below lives here */
    const char *file;        /* job file as given */
    const char *job;         /* job name: the file's base name without extension */

    /* source */
    const char *source_name;
    const char *topic;
    rn_plan_col_t *cols;
    size_t ncols;
    int time_col;            /* event-time column, -1 when the job has none */
    bool has_watermark;
    int64_t wm_delay_ms;
    int64_t idle_timeout_ms;      /* -1: partitions never count as idle */
    int64_t allowed_lateness_ms;
    const char *dead_letter_topic;  /* NULL when none */

    /* operators */
    rn_expr_t *where;        /* NULL when no WHERE */
    const char *where_text;
    rn_win_spec_t window;
    int *key_cols;           /* source column of each GROUP BY key (window columns excluded) */
    size_t nkeys;
    bool group_window_start, group_window_end;  /* listed in GROUP BY (informational) */
    rn_plan_agg_t *aggs;
    size_t naggs;
    rn_expr_t *having;       /* over the group row; NULL when none */
    const char *having_text;
    rn_emit_kind_t emit;     /* ON_CLOSE or EVERY (never DEFAULT after planning) */
    int64_t every_ms;        /* EVERY; 0 = at each checkpoint (jobs without a window) */

    /* output and sink */
    rn_plan_col_t *out;
    rn_expr_t **out_exprs;   /* over the group row */
    size_t nout;
    int *pk;                 /* output column indexes of the PRIMARY KEY */
    size_t npk;
    rn_sink_kind_t sink_kind;
    const char *sink_name;
    const char *sink_target;  /* path / conninfo / topic; NULL for STDOUT */
    const char *table;
} rn_plan_t;

/* Group-row positions. */
#define RN_GROUP_WSTART 0
#define RN_GROUP_WEND 1
#define RN_GROUP_KEY0 2
static inline size_t rn_plan_group_width(const rn_plan_t *p)
{
    return RN_GROUP_KEY0 + p->nkeys + p->naggs;
}

/*
 * Parses and plans a job file held in memory. On success *out is a plan to free with
 * rn_plan_free. On failure errbuf holds a positioned message (file:line:col, the line and a
 * caret); RN_ERR_MALFORMED for errors in the job, RN_ERR_NOMEM.
 */
rn_err_t rn_plan_build(const rn_sql_src_t *src, rn_plan_t **out, char *errbuf, size_t errlen);
/* Reads path and plans it; RN_ERR_IO when unreadable. */
rn_err_t rn_plan_load(const char *path, rn_plan_t **out, char *errbuf, size_t errlen);
void rn_plan_free(rn_plan_t *plan);

/*
 * Overrides a source option (--set idle.timeout.ms=0): idle.timeout.ms,
 * allowed.lateness.ms, dead.letter.topic. RN_ERR_UNKNOWN_CONFIG for any other key (the
 * runtime's own keys are then tried by the caller), RN_ERR_BAD_CONFIG for a bad value.
 */
rn_err_t rn_plan_set_option(rn_plan_t *plan, const char *key, const char *value, char *errbuf,
                            size_t errlen);

/* The human-readable plan that `runnel-processor --check` prints. */
void rn_plan_print(const rn_plan_t *plan, FILE *out);

/* "5 MINUTE", "1500 MILLISECOND" … into buf. */
const char *rn_plan_interval(int64_t ms, char *buf, size_t len);

#endif
