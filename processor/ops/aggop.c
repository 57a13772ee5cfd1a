#include "ops/aggop.h"

#include <stdlib.h>
#include <string.h>

#include "ops/watermark.h"

struct rn_agop {
    const rn_plan_t *plan;
    rn_agop_out_fn out;
    void *ctx;
    rn_ws_t *ws;
    rn_buf_t key;
    rn_value_t *argvals;  /* per aggregate, the row's argument */
    rn_value_t *group;    /* the group row */
    rn_value_t *outrow;
    int64_t *starts;      /* window starts of one row */
    rn_agop_stats_t stats;
};

static int64_t close_limit(const rn_agop_t *op, int64_t watermark)
{
    if (watermark == RN_WM_NONE)
        return INT64_MIN;
    int64_t lateness = op->plan->allowed_lateness_ms;
    return watermark < INT64_MIN + lateness ? INT64_MIN : watermark - lateness;
}

rn_err_t rn_agop_new(const rn_plan_t *plan, rn_agop_out_fn out, void *ctx, rn_agop_t **opp)
{
    rn_agop_t *op = calloc(1, sizeof *op);
    if (!op)
        return RN_ERR_NOMEM;
    op->plan = plan;
    op->out = out;
    op->ctx = ctx;
    size_t naggs = plan->naggs, nkeys = plan->nkeys;
    rn_agg_desc_t *descs = calloc(naggs + 1, sizeof *descs);
    rn_type_t *key_types = calloc(nkeys + 1, sizeof *key_types);
    op->argvals = calloc(naggs + 1, sizeof *op->argvals);
    op->group = calloc(rn_plan_group_width(plan), sizeof *op->group);
    op->outrow = calloc(plan->nout + 1, sizeof *op->outrow);
    op->starts = calloc(rn_win_max_per_event(&plan->window), sizeof *op->starts);
    rn_err_t err = RN_ERR_NOMEM;
    if (descs && key_types && op->argvals && op->group && op->outrow && op->starts) {
        for (size_t i = 0; i < naggs; i++)
            descs[i] = plan->aggs[i].desc;
        for (size_t k = 0; k < nkeys; k++)
            key_types[k] = plan->cols[plan->key_cols[k]].type;
        rn_ws_config_t cfg = {plan->window.kind, descs, naggs, key_types, nkeys,
                              plan->emit == RN_EMIT_EVERY};
        err = rn_ws_new(&cfg, &op->ws);
    }
    free(descs);
    free(key_types);
    if (err != RN_OK) {
        rn_agop_free(op);
        return err;
    }
    *opp = op;
    return RN_OK;
}

void rn_agop_free(rn_agop_t *op)
{
    if (!op)
        return;
    rn_ws_free(op->ws);
    rn_buf_free(&op->key);
    free(op->argvals);
    free(op->group);
    free(op->outrow);
    free(op->starts);
    free(op);
}

/* Fills the group row from g; returns whether HAVING holds. */
static bool group_row(rn_agop_t *op, rn_ws_group_t *g)
{
    const rn_plan_t *p = op->plan;
    rn_value_t *row = op->group;
    if (p->window.kind == RN_WIN_NONE) {
        row[RN_GROUP_WSTART] = rn_val_null(RN_T_TIMESTAMP);
        row[RN_GROUP_WEND] = rn_val_null(RN_T_TIMESTAMP);
    } else {
        row[RN_GROUP_WSTART] = rn_val_int(RN_T_TIMESTAMP, rn_ws_start(g));
        row[RN_GROUP_WEND] = rn_val_int(RN_T_TIMESTAMP, rn_ws_end(g));
    }
    rn_ws_key_values(op->ws, g, row + RN_GROUP_KEY0);
    rn_agg_acc_t *acc = rn_ws_accs(g);
    for (size_t a = 0; a < p->naggs; a++)
        row[RN_GROUP_KEY0 + p->nkeys + a] = rn_agg_result(&p->aggs[a].desc, &acc[a]);
    return !p->having || rn_expr_true(p->having, row);
}

static rn_err_t write_row(rn_agop_t *op, rn_row_op_t kind)
{
    const rn_plan_t *p = op->plan;
    for (size_t i = 0; i < p->nout; i++)
        op->outrow[i] = rn_expr_eval(p->out_exprs[i], op->group);
    rn_err_t err = op->out(op->ctx, kind, op->outrow);
    if (err == RN_OK && kind == RN_ROW_UPSERT)
        op->stats.upserts++;
    else if (err == RN_OK)
        op->stats.deletes++;
    return err;
}

/* The group's current row goes out (or, when it no longer passes HAVING, its old row goes). */
static rn_err_t emit_group(void *ctx, rn_ws_group_t *g)
{
    rn_agop_t *op = ctx;
    bool pass = group_row(op, g);
    rn_err_t err = RN_OK;
    if (pass)
        err = write_row(op, RN_ROW_UPSERT);
    else if (rn_ws_emitted(g))
        err = write_row(op, RN_ROW_DELETE);
    if (err == RN_OK)
        rn_ws_set_emitted(g, pass);
    return err;
}

/* A window closes: ON WINDOW CLOSE writes it now; EVERY only if changed since its last row. */
static rn_err_t close_group(void *ctx, rn_ws_group_t *g)
{
    rn_agop_t *op = ctx;
    if (op->plan->emit == RN_EMIT_EVERY && rn_ws_emitted(g) && !rn_ws_dirty(g))
        return RN_OK;
    return emit_group(op, g);
}

/* A session is merged away or moves its start: its row, keyed by window_start, goes. */
static rn_err_t retract_group(void *ctx, rn_ws_group_t *g)
{
    rn_agop_t *op = ctx;
    group_row(op, g);
    return write_row(op, RN_ROW_DELETE);
}

static rn_err_t fold(rn_agop_t *op, rn_ws_group_t *g)
{
    const rn_plan_t *p = op->plan;
    rn_agg_acc_t *acc = rn_ws_accs(g);
    for (size_t a = 0; a < p->naggs; a++) {
        rn_err_t err = rn_agg_update(&p->aggs[a].desc, &acc[a], &op->argvals[a]);
        if (err != RN_OK)
            return err;
    }
    rn_ws_touch(op->ws, g);
    return RN_OK;
}

rn_err_t rn_agop_process(rn_agop_t *op, const rn_value_t *row, int64_t watermark, bool *late)
{
    const rn_plan_t *p = op->plan;
    if (late)
        *late = false;
    op->stats.records++;
    if (p->where && !rn_expr_true(p->where, row)) {
        op->stats.filtered++;
        return RN_OK;
    }
    int64_t ts = 0;
    if (p->window.kind != RN_WIN_NONE) {
        const rn_value_t *t = &row[p->time_col];
        if (t->is_null) {
            op->stats.no_time++;
            return RN_OK;
        }
        ts = t->u.i;
    }
    rn_buf_reset(&op->key);
    for (size_t k = 0; k < p->nkeys; k++) {
        if (rn_ws_key_append(&op->key, &row[p->key_cols[k]]) != RN_OK)
            return RN_ERR_NOMEM;
    }
    for (size_t a = 0; a < p->naggs; a++)
        op->argvals[a] = p->aggs[a].arg ? rn_expr_eval(p->aggs[a].arg, row) : rn_val_null(RN_T_NULL);
    uint64_t hash = rn_ws_key_hash(op->key.data, op->key.len);
    int64_t limit = close_limit(op, watermark);
    rn_ws_group_t *g;
    rn_err_t err;
    switch (p->window.kind) {
    case RN_WIN_NONE:
        if ((err = rn_ws_get(op->ws, 0, 0, op->key.data, op->key.len, hash, &g)) != RN_OK)
            return err;
        return fold(op, g);
    case RN_WIN_SESSION:
        err = rn_ws_session(op->ws, op->key.data, op->key.len, hash, ts, p->window.gap_ms, limit,
                            retract_group, op, &g);
        if (err != RN_OK)
            return err;
        if (g)
            return fold(op, g);
        break;
    default: {
        size_t n = rn_win_assign(&p->window, ts, op->starts);
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            int64_t start = op->starts[i], end = start + p->window.size_ms;
            if (end <= limit)
                continue;
            if ((err = rn_ws_get(op->ws, start, end, op->key.data, op->key.len, hash, &g)) != RN_OK ||
                (err = fold(op, g)) != RN_OK)
                return err;
            any = true;
        }
        if (any)
            return RN_OK;
        break;
    }
    }
    op->stats.late++;
    if (late)
        *late = true;
    return RN_OK;
}

rn_err_t rn_agop_advance(rn_agop_t *op, int64_t watermark)
{
    int64_t limit = close_limit(op, watermark);
    if (rn_ws_next_end(op->ws) > limit)
        return RN_OK;
    return rn_ws_close_until(op->ws, limit, close_group, op);
}

rn_err_t rn_agop_emit_changes(rn_agop_t *op)
{
    if (op->plan->emit != RN_EMIT_EVERY)
        return RN_OK;
    return rn_ws_each_dirty(op->ws, emit_group, op);
}

rn_err_t rn_agop_finish(rn_agop_t *op)
{
    if (op->plan->window.kind == RN_WIN_NONE)
        return rn_agop_emit_changes(op);
    return rn_ws_close_until(op->ws, INT64_MAX, close_group, op);
}

const rn_agop_stats_t *rn_agop_stats(const rn_agop_t *op)
{
    return &op->stats;
}

rn_ws_t *rn_agop_state(rn_agop_t *op)
{
    return op->ws;
}
