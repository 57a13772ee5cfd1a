/*
 * aggop.h - the windowed aggregation of a plan: filter, window, key, aggregate, emit.
 *
 *   process(row)      WHERE; the row's windows (TUMBLE/HOP: assigned; SESSION: merged per
 *                     key); windows already closed make the row late (counted, dropped);
 *                     otherwise each window's group for the row's key folds the row in
 *   advance(wm)       closes windows with window_end + allowed lateness <= wm
 *   emit_changes()    EMIT EVERY (and unwindowed jobs): rows of groups changed since the last
 *                     call; the sink overwrites them by primary key later
 *   finish()          bounded input ended: every open window closes
 *
 * Output goes to a callback as whole rows in SELECT order: an upsert, or a delete (of a row
 * written earlier that no longer holds: an EVERY row whose group stopped passing HAVING, or a
 * session merged into another). ON WINDOW CLOSE writes a window's row once, at close, when
 * HAVING holds.
 *
 * Time comes in: the caller computes watermarks (ops/watermark.h) and passes them here.
 */
#ifndef RN_AGOP_H
#define RN_AGOP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "sql/plan.h"
#include "state/winstate.h"

typedef enum rn_row_op { RN_ROW_UPSERT, RN_ROW_DELETE } rn_row_op_t;

/* row has plan->nout values, valid during the call only. */
typedef rn_err_t (*rn_agop_out_fn)(void *ctx, rn_row_op_t op, const rn_value_t *row);

typedef struct rn_agop_stats {
    uint64_t records;     /* rows given to process */
    uint64_t filtered;    /* WHERE was not TRUE */
    uint64_t late;        /* every window of the row had closed */
    uint64_t no_time;     /* NULL event time in a windowed job: dropped */
    uint64_t upserts;
    uint64_t deletes;
} rn_agop_stats_t;

typedef struct rn_agop rn_agop_t;

/* plan must outlive the operator. */
rn_err_t rn_agop_new(const rn_plan_t *plan, rn_agop_out_fn out, void *ctx, rn_agop_t **op);
void rn_agop_free(rn_agop_t *op);

/*
 * Folds a decoded source row in. watermark is the job's current watermark (RN_WM_NONE when
 * none). *late (may be NULL) tells whether the row was dropped as late. Errors: NOMEM, or
 * what the output callback returned.
 */
rn_err_t rn_agop_process(rn_agop_t *op, const rn_value_t *row, int64_t watermark, bool *late);
rn_err_t rn_agop_advance(rn_agop_t *op, int64_t watermark);
rn_err_t rn_agop_emit_changes(rn_agop_t *op);
rn_err_t rn_agop_finish(rn_agop_t *op);

const rn_agop_stats_t *rn_agop_stats(const rn_agop_t *op);
rn_ws_t *rn_agop_state(rn_agop_t *op);

#endif
