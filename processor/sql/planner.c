/*
 * planner.c - from the AST to a checked plan: the source and its options, the window, WHERE,
 * GROUP BY keys, SELECT outputs and aggregates, HAVING, the emit policy, the sink and its
 * primary key. Every error points at the token that caused it.
 */
#include "sql/planner_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                      \
    do {                            \
        if ((x) != RN_OK)           \
            return pl->err;         \
    } while (0)

static bool parse_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

rn_err_t rn_plan_set_option(rn_plan_t *p, const char *key, const char *value, char *errbuf,
                            size_t errlen)
{
    int64_t ms;
    if (strcmp(key, "idle.timeout.ms") == 0 || strcmp(key, "allowed.lateness.ms") == 0) {
        bool idle = key[0] == 'i';
        if (!parse_ms(value, &ms) || ms < (idle ? -1 : 0)) {
            snprintf(errbuf, errlen, "%s must be %s milliseconds, not '%s'", key,
                     idle ? "-1 (never) or a number of" : "a number of", value);
            return RN_ERR_BAD_CONFIG;
        }
        *(idle ? &p->idle_timeout_ms : &p->allowed_lateness_ms) = ms;
        return RN_OK;
    }
    if (strcmp(key, "dead.letter.topic") == 0) {
        p->dead_letter_topic = value[0] ? rn_arena_strdup(&p->arena, value) : NULL;
        return (value[0] && !p->dead_letter_topic) ? RN_ERR_NOMEM : RN_OK;
    }
    snprintf(errbuf, errlen, "unknown option '%s'", key);
    return RN_ERR_UNKNOWN_CONFIG;
}

static rn_err_t plan_source(rn__planner_t *pl, const rn_ast_source_t *s)
{
    rn_plan_t *p = pl->plan;
    p->source_name = s->id.name;
    p->topic = s->topic;
    p->ncols = 0;
    p->has_watermark = false;
    p->wm_delay_ms = 0;
    p->allowed_lateness_ms = 0;
    p->dead_letter_topic = NULL;
    p->cols = rn_arena_alloc(pl->a, s->ncols * sizeof *p->cols);
    if (!p->cols)
        return rn__plan_nomem(pl);
    for (size_t i = 0; i < s->ncols; i++) {
        const rn_ast_coldef_t *c = &s->cols[i];
        if (rn__plan_source_col(pl, c->id.name) >= 0)
            return rn__plan_fail(pl, c->id.line, c->id.col, "column '%s' is declared twice",
                                 c->id.name);
        if (strcmp(c->id.name, "window_start") == 0 || strcmp(c->id.name, "window_end") == 0)
            return rn__plan_fail(pl, c->id.line, c->id.col,
                                 "'%s' is a window column; name the source column otherwise",
                                 c->id.name);
        p->cols[i].name = c->id.name;
        p->cols[i].type = c->type;
        p->ncols = i + 1;
    }
    p->time_col = -1;
    if (s->has_watermark) {
        int c = rn__plan_source_col(pl, s->wm_col.name);
        if (c < 0) {
            rn_ast_expr_t e = {.kind = RN_AST_COLUMN, .name = s->wm_col.name,
                               .line = s->wm_col.line, .col = s->wm_col.col};
            rn_expr_t *x;
            return rn__plan_compile(pl, &e, RN__SCOPE_SOURCE, &x) != RN_OK ? pl->err : RN_OK;
        }
        if (p->cols[c].type != RN_T_TIMESTAMP)
            return rn__plan_fail(pl, s->wm_col.line, s->wm_col.col,
                                 "the watermark column '%s' is %s; it must be TIMESTAMP",
                                 s->wm_col.name, rn_type_name(p->cols[c].type));
        p->time_col = c;
        p->has_watermark = true;
        p->wm_delay_ms = s->wm_delay_ms;
    }
    p->idle_timeout_ms = -1;
    for (size_t i = 0; i < s->nopts; i++) {
        const rn_ast_opt_t *o = &s->opts[i];
        char msg[256];
        rn_err_t err = rn_plan_set_option(p, o->key.name, o->value, msg, sizeof msg);
        if (err == RN_ERR_UNKNOWN_CONFIG) {
            static const char *const known[] = {"idle.timeout.ms", "allowed.lateness.ms",
                                                "dead.letter.topic"};
            const char *best = rn_sql_suggest(o->key.name, known, 3);
            if (best)
                return rn__plan_fail(pl, o->key.line, o->key.col,
                                     "unknown source option '%s' (did you mean '%s'?)",
                                     o->key.name, best);
            return rn__plan_fail(pl, o->key.line, o->key.col,
                                 "unknown source option '%s' (there are idle.timeout.ms, allowed.lateness.ms and dead.letter.topic)",
                                 o->key.name);
        }
        if (err != RN_OK)
            return rn__plan_fail(pl, o->vline, o->vcol, "%s", msg);
    }
    return RN_OK;
}

static rn_err_t plan_window(rn__planner_t *pl, const rn_ast_from_t *f)
{
    rn_plan_t *p = pl->plan;
    p->window.kind = f->kind;
    p->window.size_ms = f->size_ms;
    p->window.slide_ms = f->slide_ms;
    p->window.gap_ms = f->gap_ms;
    if (f->kind == RN_WIN_NONE)
        return RN_OK;
    int c = rn__plan_source_col(pl, f->time_col.name);
    if (c < 0) {
        rn_ast_expr_t e = {.kind = RN_AST_COLUMN, .name = f->time_col.name,
                           .line = f->time_col.line, .col = f->time_col.col};
        rn_expr_t *x;
        return rn__plan_compile(pl, &e, RN__SCOPE_SOURCE, &x) != RN_OK ? pl->err : RN_OK;
    }
    if (p->cols[c].type != RN_T_TIMESTAMP)
        return rn__plan_fail(pl, f->time_col.line, f->time_col.col,
                             "windows need a TIMESTAMP column; '%s' is %s", f->time_col.name,
                             rn_type_name(p->cols[c].type));
    if (p->has_watermark && c != p->time_col)
        return rn__plan_fail(pl, f->time_col.line, f->time_col.col,
                             "the window must use the watermark column '%s', not '%s'",
                             p->cols[p->time_col].name, f->time_col.name);
    p->time_col = c;
    if (f->kind == RN_WIN_HOP) {
        if (f->slide_ms > f->size_ms)
            return rn__plan_fail(pl, f->line, f->col,
                                 "HOP(…, slide, size): the slide is longer than the window size");
        if (f->size_ms % f->slide_ms != 0)
            return rn__plan_fail(pl, f->line, f->col,
                                 "HOP(…, slide, size): the size must be a whole multiple of the slide");
    }
    return RN_OK;
}

static rn_err_t plan_group_by(rn__planner_t *pl, const rn_ast_select_t *sel)
{
    rn_plan_t *p = pl->plan;
    for (size_t i = 0; i < sel->ngroup; i++) {
        const rn_ast_expr_t *g = sel->group_by[i];
        if (g->kind != RN_AST_COLUMN)
            return rn__plan_fail(pl, rn__ast_line(g), rn__ast_col(g),
                                 "GROUP BY takes column names (compute expressions in SELECT)");
        if (strcmp(g->name, "window_start") == 0 || strcmp(g->name, "window_end") == 0) {
            if (p->window.kind == RN_WIN_NONE)
                return rn__plan_fail(pl, g->line, g->col,
                                     "'%s' exists only in windowed queries: FROM TUMBLE(…), HOP(…) or SESSION(…)",
                                     g->name);
            *(g->name[7] == 's' ? &p->group_window_start : &p->group_window_end) = true;
            continue;
        }
        rn_expr_t *x;
        TRY(rn__plan_compile(pl, g, RN__SCOPE_SOURCE, &x));
        int c = x->col;
        bool dup = false;
        for (size_t k = 0; k < p->nkeys; k++)
            dup |= p->key_cols[k] == c;
        if (dup)
            continue;
        int *slot = rn__plan_push(pl, (void **)&p->key_cols, &p->nkeys, sizeof *slot);
        if (!slot)
            return rn__plan_nomem(pl);
        *slot = c;
    }
    return RN_OK;
}

static const char *auto_name(rn__planner_t *pl, const rn_ast_expr_t *e)
{
    if (e->kind == RN_AST_COLUMN)
        return e->name;
    if (e->kind == RN_AST_CALL && e->star)
        return e->name;
    if (e->kind == RN_AST_CALL && e->nargs == 1 && e->args[0]->kind == RN_AST_COLUMN) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s_%s%s", e->name, e->distinct ? "distinct_" : "",
                 e->args[0]->name);
        return rn_arena_strdup(pl->a, buf);
    }
    return NULL;
}

static rn_err_t plan_select(rn__planner_t *pl, const rn_ast_select_t *sel)
{
    rn_plan_t *p = pl->plan;
    p->out = rn_arena_alloc(pl->a, sel->nitems * sizeof *p->out);
    p->out_exprs = rn_arena_alloc(pl->a, sel->nitems * sizeof *p->out_exprs);
    if (!p->out || !p->out_exprs)
        return rn__plan_nomem(pl);
    for (size_t i = 0; i < sel->nitems; i++) {
        const rn_ast_item_t *it = &sel->items[i];
        rn_expr_t *x;
        TRY(rn__plan_compile(pl, it->expr, RN__SCOPE_GROUP, &x));
        const char *name = it->alias.name ? it->alias.name : auto_name(pl, it->expr);
        int line = it->alias.name ? it->alias.line : it->expr->line;
        int col = it->alias.name ? it->alias.col : it->expr->col;
        if (!name)
            return rn__plan_fail(pl, rn__ast_line(it->expr), rn__ast_col(it->expr),
                                 "name this output column: %s AS name", rn__plan_text(pl, it->expr));
        if (x->type == RN_T_NULL)
            return rn__plan_fail(pl, it->expr->line, it->expr->col,
                                 "output column '%s' is always NULL: its type is unknown", name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->out[j].name, name) == 0)
                return rn__plan_fail(pl, line, col,
                                     "output column '%s' appears twice (rename one with AS)", name);
        }
        p->out[i].name = name;
        p->out[i].type = x->type;
        p->out_exprs[i] = x;
        p->nout = i + 1;
    }
    if (p->naggs == 0 && sel->ngroup == 0)
        return rn__plan_fail(pl, sel->line, sel->col,
                             "a job aggregates: add GROUP BY and aggregates such as COUNT(*)");
    return RN_OK;
}

static rn_err_t plan_filters(rn__planner_t *pl, const rn_ast_select_t *sel)
{
    rn_plan_t *p = pl->plan;
    if (sel->where) {
        TRY(rn__plan_compile(pl, sel->where, RN__SCOPE_SOURCE, &p->where));
        if (p->where->type != RN_T_BOOLEAN)
            return rn__plan_fail(pl, rn__ast_line(sel->where), rn__ast_col(sel->where),
                                 "WHERE needs a BOOLEAN condition, not %s", rn_type_name(p->where->type));
        p->where_text = rn__plan_text(pl, sel->where);
    }
    if (sel->having) {
        pl->in_having = true;
        TRY(rn__plan_compile(pl, sel->having, RN__SCOPE_GROUP, &p->having));
        pl->in_having = false;
        if (p->having->type != RN_T_BOOLEAN)
            return rn__plan_fail(pl, rn__ast_line(sel->having), rn__ast_col(sel->having),
                                 "HAVING needs a BOOLEAN condition, not %s", rn_type_name(p->having->type));
        p->having_text = rn__plan_text(pl, sel->having);
    }
    return RN_OK;
}

static rn_err_t plan_emit(rn__planner_t *pl, const rn_ast_select_t *sel)
{
    rn_plan_t *p = pl->plan;
    p->emit = sel->emit;
    p->every_ms = sel->every_ms;
    if (p->window.kind == RN_WIN_NONE) {
        if (sel->emit == RN_EMIT_ON_CLOSE)
            return rn__plan_fail(pl, sel->emit_line, sel->emit_col,
                                 "EMIT ON WINDOW CLOSE needs a window: FROM TUMBLE(…), HOP(…) or SESSION(…)");
        if (sel->emit == RN_EMIT_DEFAULT) {
            p->emit = RN_EMIT_EVERY; /* changed groups at each checkpoint */
            p->every_ms = 0;
        }
    } else if (sel->emit == RN_EMIT_DEFAULT) {
        p->emit = RN_EMIT_ON_CLOSE;
    }
    return RN_OK;
}

static rn_err_t plan_primary_key(rn__planner_t *pl, const rn_ast_sink_t *sink)
{
    rn_plan_t *p = pl->plan;
    if (!(p->pk = rn_arena_alloc(pl->a, sink->npk * sizeof *p->pk)))
        return rn__plan_nomem(pl);
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < p->nout && n < 256; i++)
        names[n++] = p->out[i].name;
    bool has_window = false;
    for (size_t i = 0; i < sink->npk; i++) {
        const rn_ast_ident_t *k = &sink->pk[i];
        int o = -1;
        for (size_t j = 0; j < p->nout; j++) {
            if (strcmp(p->out[j].name, k->name) == 0)
                o = (int)j;
        }
        if (o < 0) {
            const char *best = rn_sql_suggest(k->name, names, n);
            if (best)
                return rn__plan_fail(pl, k->line, k->col,
                                     "PRIMARY KEY column '%s' is not an output column (did you mean '%s'?)",
                                     k->name, best);
            return rn__plan_fail(pl, k->line, k->col,
                                 "PRIMARY KEY column '%s' is not an output column of the SELECT", k->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (p->pk[j] == o)
                return rn__plan_fail(pl, k->line, k->col, "'%s' is in the PRIMARY KEY twice", k->name);
        }
        const rn_expr_t *x = p->out_exprs[o];
        if (x->kind != RN_EX_COL || x->col >= RN_GROUP_KEY0 + (int)p->nkeys)
            return rn__plan_fail(pl, k->line, k->col,
                                 "PRIMARY KEY column '%s' is computed; key columns are GROUP BY columns or window_start/window_end",
                                 k->name);
        has_window |= x->col < RN_GROUP_KEY0;
        p->pk[i] = o;
        p->npk = i + 1;
    }
    for (size_t k = 0; k < p->nkeys; k++) {
        bool covered = false;
        for (size_t i = 0; i < p->npk; i++) {
            const rn_expr_t *x = p->out_exprs[p->pk[i]];
            covered |= x->col == RN_GROUP_KEY0 + (int)k;
        }
        if (!covered)
            return rn__plan_fail(pl, sink->pk_line, sink->pk_col,
                                 "PRIMARY KEY must include the GROUP BY column '%s' (select it and add it), or rows of different groups overwrite each other",
                                 p->cols[p->key_cols[k]].name);
    }
    if (p->window.kind != RN_WIN_NONE && !has_window)
        return rn__plan_fail(pl, sink->pk_line, sink->pk_col,
                             "PRIMARY KEY must include window_start or window_end, or each window overwrites the one before");
    return RN_OK;
}

static rn_err_t plan_job(rn__planner_t *pl, const rn_ast_job_t *job)
{
    rn_plan_t *p = pl->plan;
    for (size_t i = 0; i < job->nsources; i++) { /* every source is checked, used or not */
        pl->source = job->sources[i];
        TRY(plan_source(pl, job->sources[i]));
    }
    pl->source = NULL;
    if (job->nsinks == 0)
        return rn__plan_fail(pl, 0, 0, "no CREATE SINK: a job writes its results into one sink");
    if (job->nsinks > 1)
        return rn__plan_fail(pl, job->sinks[1]->id.line, job->sinks[1]->id.col,
                             "a job has one CREATE SINK (run one processor per sink)");
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < job->nsources; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(job->sources[j]->id.name, job->sources[i]->id.name) == 0)
                return rn__plan_fail(pl, job->sources[i]->id.line, job->sources[i]->id.col,
                                     "source '%s' is declared twice", job->sources[i]->id.name);
        }
        if (n < 64)
            names[n++] = job->sources[i]->id.name;
    }
    const rn_ast_sink_t *sink = job->sinks[0];
    const rn_ast_select_t *sel = &sink->select;
    const rn_ast_ident_t *from = &sel->from.source;
    for (size_t i = 0; i < job->nsources; i++) {
        if (strcmp(job->sources[i]->id.name, from->name) == 0)
            pl->source = job->sources[i];
    }
    if (!pl->source) {
        const char *best = rn_sql_suggest(from->name, names, n);
        if (best)
            return rn__plan_fail(pl, from->line, from->col, "unknown source '%s' (did you mean '%s'?)",
                                 from->name, best);
        return rn__plan_fail(pl, from->line, from->col,
                             "unknown source '%s' (declare it with CREATE SOURCE)", from->name);
    }
    pl->sel = sel;
    TRY(plan_source(pl, pl->source));
    TRY(plan_window(pl, &sel->from));
    TRY(plan_group_by(pl, sel));
    TRY(plan_select(pl, sel));
    TRY(plan_filters(pl, sel));
    TRY(plan_emit(pl, sel));
    p->sink_kind = sink->kind;
    p->sink_name = sink->id.name;
    p->sink_target = sink->target;
    p->table = sink->table.name ? sink->table.name : sink->id.name;
    return plan_primary_key(pl, sink);
}

static const char *job_name(rn_arena_t *a, const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return rn_arena_strndup(a, base, len);
}

rn_err_t rn_plan_build(const rn_sql_src_t *src, rn_plan_t **out, char *errbuf, size_t errlen)
{
    rn_plan_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errbuf, errlen, "out of memory");
        return RN_ERR_NOMEM;
    }
    rn__planner_t pl = {.src = src, .plan = p, .a = &p->arena, .errbuf = errbuf, .errlen = errlen};
    rn_ast_job_t *job;
    rn_err_t err = rn_sql_parse(src, &p->arena, &job, errbuf, errlen);
    if (err == RN_OK) {
        p->file = rn_arena_strdup(&p->arena, src->name);
        p->job = job_name(&p->arena, src->name);
        err = p->file && p->job ? plan_job(&pl, job) : rn__plan_nomem(&pl);
    }
    if (err != RN_OK) {
        rn_plan_free(p);
        return err;
    }
    *out = p;
    return RN_OK;
}

rn_err_t rn_plan_load(const char *path, rn_plan_t **out, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errbuf, errlen, "%s: cannot open the job file: %s", path, strerror(errno));
        return RN_ERR_IO;
    }
    rn_buf_t b = RN_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (rn_buf_append(&b, chunk, n) != RN_OK) {
            fclose(f);
            rn_buf_free(&b);
            snprintf(errbuf, errlen, "out of memory");
            return RN_ERR_NOMEM;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        rn_buf_free(&b);
        snprintf(errbuf, errlen, "%s: read error", path);
        return RN_ERR_IO;
    }
    rn_sql_src_t src = {path, (const char *)b.data, b.len};
    rn_err_t err = rn_plan_build(&src, out, errbuf, errlen); /* copies what it keeps */
    rn_buf_free(&b);
    return err;
}

void rn_plan_free(rn_plan_t *plan)
{
    if (!plan)
        return;
    rn_arena_free(&plan->arena);
    free(plan);
}
