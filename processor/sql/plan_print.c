/* plan_print.c - the plan as `runnel-processor --check` prints it. */
#include "sql/plan.h"

static const char *sink_kind_name(rn_sink_kind_t k)
{
    static const char *const names[] = {"SQLITE", "POSTGRES", "TOPIC", "STDOUT"};
    return names[k];
}

static void print_cols(FILE *out, const rn_plan_col_t *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s %s", i ? ", " : "", cols[i].name, rn_type_name(cols[i].type));
    fputc('\n', out);
}

void rn_plan_print(const rn_plan_t *p, FILE *out)
{
    char a[48], b[48];
    int step = 1;
    fprintf(out, "job %s (%s)\n", p->job, p->file);
    fprintf(out, "source %s: topic '%s', format JSON\n  columns: ", p->source_name, p->topic);
    print_cols(out, p->cols, p->ncols);
    if (p->time_col >= 0) {
        fprintf(out, "  event time: %s; watermark %s - %s per partition, job watermark = min over active partitions\n",
                p->cols[p->time_col].name, p->cols[p->time_col].name,
                rn_plan_interval(p->wm_delay_ms, a, sizeof a));
        fprintf(out, "  allowed lateness: %s; idle partitions: %s\n",
                rn_plan_interval(p->allowed_lateness_ms, b, sizeof b),
                p->idle_timeout_ms < 0 ? "never idle (idle.timeout.ms unset)"
                                       : rn_plan_interval(p->idle_timeout_ms, a, sizeof a));
    }
    fprintf(out, "  dead letters: %s\n", p->dead_letter_topic ? p->dead_letter_topic : "none (counted and logged)");
    fprintf(out, "operators:\n");
    fprintf(out, "  %d. decode JSON: %zu declared column%s, other fields skipped\n", step++,
            p->ncols, p->ncols == 1 ? "" : "s");
    if (p->where)
        fprintf(out, "  %d. filter: %s\n", step++, p->where_text);
    switch (p->window.kind) {
    case RN_WIN_TUMBLE:
        fprintf(out, "  %d. window: TUMBLE(%s, %s)\n", step++, p->cols[p->time_col].name,
                rn_plan_interval(p->window.size_ms, a, sizeof a));
        break;
    case RN_WIN_HOP:
        fprintf(out, "  %d. window: HOP(%s, slide %s, size %s)\n", step++, p->cols[p->time_col].name,
                rn_plan_interval(p->window.slide_ms, a, sizeof a),
                rn_plan_interval(p->window.size_ms, b, sizeof b));
        break;
    case RN_WIN_SESSION:
        fprintf(out, "  %d. window: SESSION(%s, gap %s), merging sessions an event bridges\n", step++,
                p->cols[p->time_col].name, rn_plan_interval(p->window.gap_ms, a, sizeof a));
        break;
    case RN_WIN_NONE:
        break;
    }
    fprintf(out, "  %d. group by: ", step++);
    bool first = true;
    if (p->window.kind != RN_WIN_NONE) {
        fprintf(out, "window");
        first = false;
    }
    for (size_t k = 0; k < p->nkeys; k++) {
        fprintf(out, "%s%s", first ? "" : ", ", p->cols[p->key_cols[k]].name);
        first = false;
    }
    fprintf(out, "%s\n", first ? "(one global group)" : "");
    fprintf(out, "  %d. aggregate: ", step++);
    for (size_t i = 0; i < p->naggs; i++)
        fprintf(out, "%s%s", i ? ", " : "", p->aggs[i].text);
    fprintf(out, "%s\n", p->naggs ? "" : "(none)");
    if (p->having)
        fprintf(out, "  %d. having: %s\n", step++, p->having_text);
    if (p->emit == RN_EMIT_ON_CLOSE)
        fprintf(out, "  %d. emit: on window close (watermark >= window_end + allowed lateness), each row once\n",
                step++);
    else if (p->every_ms > 0)
        fprintf(out, "  %d. emit: every %s, early rows overwritten by later upserts; final rows at window close\n",
                step++, rn_plan_interval(p->every_ms, a, sizeof a));
    else
        fprintf(out, "  %d. emit: changed groups at each checkpoint (running aggregate)\n", step++);
    fprintf(out, "sink %s: %s", p->sink_name, sink_kind_name(p->sink_kind));
    if (p->sink_target)
        fprintf(out, " '%s'", p->sink_target);
    if (p->sink_kind == RN_SINK_SQLITE || p->sink_kind == RN_SINK_POSTGRES)
        fprintf(out, ", table %s", p->table);
    fprintf(out, ", upsert by primary key\n  columns: ");
    print_cols(out, p->out, p->nout);
    fprintf(out, "  primary key: (");
    for (size_t i = 0; i < p->npk; i++)
        fprintf(out, "%s%s", i ? ", " : "", p->out[p->pk[i]].name);
    fprintf(out, ")\n");
}
