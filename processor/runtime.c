#include "runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "jobmetrics.h"
#include "logging.h"
#include "ops/aggop.h"
#include "ops/json.h"
#include "ops/watermark.h"
#include "state/snapshot.h"

typedef struct job {
    const rn_job_config_t *cfg;
    const rn_plan_t *plan;
    rn_sink_t *sink;
    rn_agop_t *op;
    rn_wm_t *wm;
    rn_json_dec_t *dec;
    int32_t nparts;
    int64_t *next_offset;  /* per partition; RN_SRC_BEGINNING until something is read */
    int64_t *end_offset;   /* --bounded */
    bool *finished;
    rn_value_t *row;
    uint64_t epoch;
    int64_t last_wm;
    rn_job_stats_t stats;
    uint64_t base_records, base_malformed, base_late; /* carried in snapshots */
    int64_t last_log_ms;
    uint64_t suppressed;
    rn_buf_t snap;
    rn_jm_t *jm;             /* NULL without metrics */
    uint64_t dead_letters;   /* sent this run */
    int64_t next_publish_ms;
    char *errbuf;
    size_t errlen;
} job_t;

#define PUBLISH_INTERVAL_MS 100

static rn_err_t fail(job_t *j, rn_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rn_err_t fail(job_t *j, rn_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errbuf, j->errlen, fmt, ap);
    va_end(ap);
    return err;
}

/* The shape of the state: a snapshot taken by a different job must not be loaded. */
static uint64_t fingerprint(const rn_plan_t *p)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (size_t i = 0; i < p->ncols; i++) {
        XXH3_64bits_update(st, p->cols[i].name, strlen(p->cols[i].name) + 1);
        XXH3_64bits_update(st, &p->cols[i].type, sizeof p->cols[i].type);
    }
    XXH3_64bits_update(st, &p->window, sizeof p->window);
    XXH3_64bits_update(st, p->key_cols, p->nkeys * sizeof *p->key_cols);
    for (size_t a = 0; a < p->naggs; a++) {
        XXH3_64bits_update(st, &p->aggs[a].desc, sizeof p->aggs[a].desc);
        XXH3_64bits_update(st, p->aggs[a].text, strlen(p->aggs[a].text));
    }
    XXH3_64bits_update(st, p->topic, strlen(p->topic));
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static rn_err_t emit_row(void *ctx, rn_row_op_t op, const rn_value_t *row)
{
    job_t *j = ctx;
    rn_err_t err = op == RN_ROW_UPSERT ? rn_sink_upsert(j->sink, row) : rn_sink_delete(j->sink, row);
    if (err != RN_OK)
        fail(j, err, "%s", rn_sink_errmsg(j->sink));
    return err;
}

/* ------------------------------------------------------------------ snapshots -- */
/*
 * Payload (little-endian, inside the snapshot file of state/snapshot.h):
 *   u64 fingerprint | u32 partitions | per partition: i64 next_offset, i64 max event time
 *   | i64 job watermark | u64 records, malformed, late (totals since the job began)
 *   | window state (state/winstate.c)
 */
static rn_err_t encode_state(job_t *j)
{
    rn_buf_t *b = &j->snap;
    rn_buf_reset(b);
    uint64_t fp = fingerprint(j->plan);
    uint32_t n = (uint32_t)j->nparts;
    int64_t wm = rn_wm_current(j->wm);
    const rn_agop_stats_t *os = rn_agop_stats(j->op);
    uint64_t totals[3] = {j->base_records + os->records + j->stats.malformed,
                          j->base_malformed + j->stats.malformed, j->base_late + os->late};
    rn_err_t err = rn_buf_append(b, &fp, 8);
    if (err == RN_OK)
        err = rn_buf_append(b, &n, 4);
    for (int32_t p = 0; p < j->nparts && err == RN_OK; p++) {
        int64_t max_ts = rn_wm_max_ts(j->wm, (size_t)p);
        if ((err = rn_buf_append(b, &j->next_offset[p], 8)) == RN_OK)
            err = rn_buf_append(b, &max_ts, 8);
    }
    if (err == RN_OK && (err = rn_buf_append(b, &wm, 8)) == RN_OK)
        err = rn_buf_append(b, totals, sizeof totals);
    if (err == RN_OK)
        err = rn_ws_write(rn_agop_state(j->op), b);
    return err;
}

static rn_err_t decode_state(job_t *j, const rn_buf_t *b, const char *path)
{
    const uint8_t *p = b->data, *end = b->data + b->len;
    uint64_t fp;
    uint32_t n;
    if (end - p < 12)
        return fail(j, RN_ERR_CORRUPT, "snapshot %s: truncated", path);
    memcpy(&fp, p, 8);
    memcpy(&n, p + 8, 4);
    p += 12;
    if (fp != fingerprint(j->plan))
        return fail(j, RN_ERR_STATE,
                    "snapshot %s was taken by a different job (columns, window, keys, aggregates "
                    "or topic changed); use a new --state-dir and sink table for the changed job",
                    path);
    if ((int64_t)n > j->nparts)
        return fail(j, RN_ERR_STATE, "snapshot %s has %u partitions, topic '%s' now has %d", path,
                    n, j->plan->topic, j->nparts);
    if ((size_t)(end - p) < (size_t)n * 16 + 32)
        return fail(j, RN_ERR_CORRUPT, "snapshot %s: truncated", path);
    for (uint32_t i = 0; i < n; i++) {
        int64_t max_ts;
        memcpy(&j->next_offset[i], p, 8);
        memcpy(&max_ts, p + 8, 8);
        rn_wm_restore(j->wm, i, max_ts);
        p += 16;
    }
    int64_t wm;
    uint64_t totals[3];
    memcpy(&wm, p, 8);
    memcpy(totals, p + 8, sizeof totals);
    p += 32;
    rn_wm_restore_job(j->wm, wm);
    j->last_wm = rn_wm_current(j->wm);
    j->base_records = totals[0];
    j->base_malformed = totals[1];
    j->base_late = totals[2];
    rn_err_t err = rn_ws_read(rn_agop_state(j->op), &p, end);
    if (err != RN_OK || p != end)
        return fail(j, err == RN_ERR_NOMEM ? err : RN_ERR_CORRUPT,
                    "snapshot %s: window state does not decode", path);
    return RN_OK;
}

/* Loads the snapshot matching the sink's last commit, or the newest one for sinks without
 * transactions; deletes the others. */
static rn_err_t restore(job_t *j)
{
    const char *dir = j->cfg->state_dir;
    uint64_t epoch;
    rn_sink_offset_t *offs = NULL;
    size_t noffs = 0;
    rn_err_t err;
    if (rn_sink_transactional(j->sink)) {
        if ((err = rn_sink_read_offsets(j->sink, &epoch, &offs, &noffs)) != RN_OK)
            return fail(j, err, "%s", rn_sink_errmsg(j->sink));
    } else {
        epoch = rn_snap_latest(dir);
    }
    if (epoch > 0) {
        rn_buf_t payload = RN_BUF_INIT;
        char path[4096];
        rn_snap_path(dir, epoch, path, sizeof path);
        err = rn_snap_read(dir, epoch, &payload, j->errbuf, j->errlen);
        if (err == RN_ERR_NOT_FOUND)
            fail(j, RN_ERR_STATE,
                 "the sink's last checkpoint of job '%s' is %llu but %s is missing: run with the "
                 "state dir of that run, or start over by deleting the job's rows from "
                 "runnel_offsets and runnel_checkpoints (and its results)",
                 j->plan->job, (unsigned long long)epoch, path);
        if (err == RN_OK)
            err = decode_state(j, &payload, path);
        for (size_t i = 0; err == RN_OK && i < noffs; i++) {
            int32_t p = offs[i].partition;
            if (strcmp(offs[i].topic, j->plan->topic) == 0 && p >= 0 && p < j->nparts &&
                j->next_offset[p] != offs[i].next_offset)
                err = fail(j, RN_ERR_STATE,
                           "snapshot %s and the sink disagree on %s/%d (%lld vs %lld)", path,
                           offs[i].topic, p, (long long)j->next_offset[p],
                           (long long)offs[i].next_offset);
        }
        rn_buf_free(&payload);
        if (err != RN_OK) {
            rn_sink_offsets_free(offs, noffs);
            return err == RN_ERR_NOT_FOUND ? RN_ERR_STATE : err;
        }
        RN_INFO("processor", "job %s: resuming from checkpoint %llu", j->plan->job,
                (unsigned long long)epoch);
    }
    rn_sink_offsets_free(offs, noffs);
    rn_snap_prune(dir, epoch);
    j->epoch = epoch;
    j->stats.resumed_epoch = epoch;
    return RN_OK;
}

static void publish(job_t *j, int64_t now);

static double seconds_since(const job_t *j, int64_t start_ns)
{
    return (double)(rn_clock_mono_ns(j->cfg->clock) - start_ns) / 1e9;
}

/* rn_sink_commit, timed into *took_s. */
static rn_err_t sink_commit(job_t *j, uint64_t epoch, const rn_sink_offset_t *offs,
                            double *took_s)
{
    int64_t start = rn_clock_mono_ns(j->cfg->clock);
    rn_err_t err = rn_sink_commit(j->sink, epoch, offs, (size_t)j->nparts);
    *took_s = seconds_since(j, start);
    return err;
}

static rn_err_t checkpoint(job_t *j)
{
    const rn_plan_t *p = j->plan;
    rn_err_t err = RN_OK;
    int64_t start_ns = rn_clock_mono_ns(j->cfg->clock);
    double commit_s = 0;
    if (p->emit == RN_EMIT_EVERY && p->every_ms == 0 && (err = rn_agop_emit_changes(j->op)) != RN_OK)
        return err;
    if (j->cfg->dead_letter_flush && (err = j->cfg->dead_letter_flush(j->cfg->dead_letter_ctx)) != RN_OK)
        return fail(j, err, "writing to the dead-letter topic '%s': %s",
                    p->dead_letter_topic ? p->dead_letter_topic : "?", rn_err_str(err));
    if ((err = encode_state(j)) != RN_OK)
        return fail(j, err, "encoding the state snapshot: %s", rn_err_str(err));
    uint64_t next = j->epoch + 1;
    bool transactional = rn_sink_transactional(j->sink);
    rn_sink_offset_t *offs = calloc((size_t)j->nparts + 1, sizeof *offs);
    if (!offs)
        return fail(j, RN_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < j->nparts; i++)
        offs[i] = (rn_sink_offset_t){p->topic, i, j->next_offset[i]};
    /* Without a transaction the rows must be out (acknowledged) before a snapshot says they
     * were emitted; with one, the snapshot comes first (see runtime.h). */
    if (!transactional && (err = sink_commit(j, next, offs, &commit_s)) != RN_OK) {
        free(offs);
        return fail(j, err, "%s", rn_sink_errmsg(j->sink));
    }
    if ((err = rn_snap_write(j->cfg->state_dir, next, j->snap.data, j->snap.len, j->errbuf,
                             j->errlen)) != RN_OK) {
        free(offs);
        return err;
    }
    if (transactional)
        err = sink_commit(j, next, offs, &commit_s);
    free(offs);
    if (err != RN_OK)
        return fail(j, err, "%s", rn_sink_errmsg(j->sink));
    /* Every record handled so far is in what just committed: for a transactional sink the
     * commit is the moment; without one, the rows were out (flushed) before the snapshot. */
    int64_t committed_ms = rn_clock_wall_ms(j->cfg->clock);
    j->epoch = next;
    j->stats.checkpoints++;
    rn_snap_prune(j->cfg->state_dir, next);
    if (j->jm) {
        const rn_agop_stats_t *os = rn_agop_stats(j->op);
        rn_jm_checkpoint(j->jm, &(rn_jm_checkpoint_t){
                                    .commit_ms = committed_ms,
                                    .duration_s = seconds_since(j, start_ns),
                                    .sink_commit_s = commit_s, .state_bytes = j->snap.len,
                                    .upserts = os->upserts, .deletes = os->deletes});
        publish(j, committed_ms);
    }
    return RN_OK;
}

/* -------------------------------------------------------------------- records -- */

static void report_bad(job_t *j, const rn_src_record_t *r, const char *what)
{
    int64_t now = rn_clock_wall_ms(j->cfg->clock);
    if (now - j->last_log_ms < 1000) {
        j->suppressed++;
    } else {
        RN_WARN("processor", "%s/%d@%lld: %s%s", j->plan->topic, r->partition,
                (long long)r->offset, what, j->suppressed ? " (and earlier ones not logged)" : "");
        j->last_log_ms = now;
        j->suppressed = 0;
    }
    if (j->plan->dead_letter_topic && j->cfg->dead_letter &&
        j->cfg->dead_letter(j->cfg->dead_letter_ctx, j->plan->dead_letter_topic, r->partition,
                            r->offset, r->value, r->value_len, what) == RN_OK)
        j->dead_letters++;
}

static rn_err_t advance(job_t *j, int64_t wm)
{
    if (wm == j->last_wm)
        return RN_OK;
    j->last_wm = wm;
    return rn_agop_advance(j->op, wm);
}

static rn_err_t handle(job_t *j, const rn_src_record_t *r)
{
    const rn_plan_t *p = j->plan;
    size_t part = (size_t)r->partition;
    j->next_offset[part] = r->offset + 1;
    char why[256];
    if (rn_json_decode(j->dec, r->value, r->value_len, j->row, why, sizeof why) != RN_OK) {
        j->stats.malformed++;
        rn_wm_touch(j->wm, part);
        report_bad(j, r, why);
        return RN_OK;
    }
    int64_t wm;
    if (p->time_col >= 0 && !j->row[p->time_col].is_null)
        wm = rn_wm_observe(j->wm, part, j->row[p->time_col].u.i);
    else {
        rn_wm_touch(j->wm, part);
        wm = rn_wm_current(j->wm);
    }
    rn_err_t err = advance(j, wm);
    bool late = false;
    if (err == RN_OK)
        err = rn_agop_process(j->op, j->row, wm, &late);
    if (err == RN_OK && late)
        report_bad(j, r, "late record: its windows had closed (past allowed.lateness.ms)");
    return err;
}

/*
 * Publishes the job's numbers to its series (no-op without metrics). Lag is the source's
 * latest end offset minus the next offset to read; before a partition has delivered
 * anything its position is taken as 0 (the job reads from the beginning or from a
 * checkpoint, which sets the offset), so a partition whose log start moved on by retention
 * shows the deleted records as lag until its first record arrives.
 */
static void publish(job_t *j, int64_t now)
{
    if (!j->jm)
        return;
    const rn_source_t *src = &j->cfg->source;
    for (int32_t p = 0; src->high_watermark && p < j->nparts; p++) {
        int64_t hw;
        if (src->high_watermark(src->ctx, j->plan->topic, p, &hw) == RN_OK)
            rn_jm_set_lag(j->jm, p, hw - (j->next_offset[p] < 0 ? 0 : j->next_offset[p]));
    }
    const rn_agop_stats_t *os = rn_agop_stats(j->op);
    rn_jm_publish(j->jm, &(rn_jm_status_t){
                             .now_ms = now, .watermark_ms = rn_wm_current(j->wm),
                             .open_windows = rn_ws_windows(rn_agop_state(j->op)),
                             .malformed = j->stats.malformed, .late = os->late,
                             .dead_letters = j->dead_letters});
    j->next_publish_ms = now + PUBLISH_INTERVAL_MS;
}

static bool all_finished(job_t *j)
{
    bool all = true;
    for (int32_t p = 0; p < j->nparts; p++) {
        int64_t pos = j->next_offset[p] < 0 ? 0 : j->next_offset[p];
        if (!j->finished[p] && pos >= j->end_offset[p]) {
            j->finished[p] = true;
            rn_wm_finish(j->wm, (size_t)p);
        }
        all &= j->finished[p];
    }
    return all;
}

/* ---------------------------------------------------------------------- setup -- */

static rn_err_t setup(job_t *j)
{
    const rn_job_config_t *c = j->cfg;
    const rn_plan_t *p = j->plan;
    if (mkdir(c->state_dir, 0755) != 0 && errno != EEXIST)
        return fail(j, RN_ERR_IO, "cannot create the state dir %s: %s", c->state_dir, strerror(errno));
    rn_err_t err = c->source.partitions(c->source.ctx, p->topic, &j->nparts, j->errbuf, j->errlen);
    if (err != RN_OK)
        return err;
    if (j->nparts <= 0)
        return fail(j, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "topic '%s' has no partitions", p->topic);
    size_t n = (size_t)j->nparts;
    j->next_offset = malloc(n * sizeof *j->next_offset);
    j->end_offset = calloc(n, sizeof *j->end_offset);
    j->finished = calloc(n, sizeof *j->finished);
    j->row = calloc(p->ncols + 1, sizeof *j->row);
    rn_json_col_t *cols = calloc(p->ncols + 1, sizeof *cols);
    if (!j->next_offset || !j->end_offset || !j->finished || !j->row || !cols) {
        free(cols);
        return fail(j, RN_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        j->next_offset[i] = RN_SRC_BEGINNING;
    for (size_t i = 0; i < p->ncols; i++)
        cols[i] = (rn_json_col_t){p->cols[i].name, p->cols[i].type};
    err = rn_json_dec_new(cols, p->ncols, &j->dec);
    free(cols);
    if (err == RN_OK)
        err = rn_wm_new(n, p->wm_delay_ms, p->idle_timeout_ms, c->clock, &j->wm);
    if (err == RN_OK)
        err = rn_agop_new(p, emit_row, j, &j->op);
    if (err == RN_OK)
        err = rn_jm_new(c->metrics, p->job, p->topic, j->nparts, &j->jm);
    if (err != RN_OK)
        return fail(j, err, "out of memory");
    j->last_wm = rn_wm_current(j->wm);
    rn_sink_schema_t schema = rn_sink_schema_of(p);
    if ((err = rn_sink_open(p->sink_kind, p->sink_target, &schema, &c->sink_io, &j->sink,
                            j->errbuf, j->errlen)) != RN_OK)
        return err;
    if ((err = restore(j)) != RN_OK)
        return err;
    for (int32_t i = 0; i < j->nparts; i++) {
        if ((err = c->source.assign(c->source.ctx, p->topic, i, j->next_offset[i])) != RN_OK)
            return fail(j, err, "cannot read %s/%d: %s", p->topic, i, rn_err_str(err));
        if (c->bounded &&
            (err = c->source.end_offset(c->source.ctx, p->topic, i, &j->end_offset[i])) != RN_OK)
            return fail(j, err, "cannot find the end of %s/%d: %s", p->topic, i, rn_err_str(err));
    }
    return RN_OK;
}

static void teardown(job_t *j)
{
    rn_jm_free(j->jm);
    rn_sink_close(j->sink);
    rn_agop_free(j->op);
    rn_wm_free(j->wm);
    rn_json_dec_free(j->dec);
    free(j->next_offset);
    free(j->end_offset);
    free(j->finished);
    free(j->row);
    rn_buf_free(&j->snap);
}

static void fill_stats(job_t *j, rn_job_stats_t *out)
{
    if (j->op) {
        const rn_agop_stats_t *os = rn_agop_stats(j->op);
        j->stats.records = os->records + j->stats.malformed;
        j->stats.late = os->late;
        j->stats.filtered = os->filtered;
        j->stats.upserts = os->upserts;
        j->stats.deletes = os->deletes;
    }
    j->stats.epoch = j->epoch;
    j->stats.watermark = j->wm ? rn_wm_current(j->wm) : RN_WM_NONE;
    if (out)
        *out = j->stats;
}

static void set_ready(const rn_job_config_t *cfg, bool ready, const char *why)
{
    if (cfg->not_ready_why && why)
        *cfg->not_ready_why = why;
    if (cfg->ready)
        *cfg->ready = ready;
}

rn_err_t rn_job_run(const rn_job_config_t *cfg, rn_job_stats_t *stats, char *errbuf,
                    size_t errlen)
{
    job_t j = {.cfg = cfg, .plan = cfg->plan, .errbuf = errbuf, .errlen = errlen};
    errbuf[0] = '\0';
    set_ready(cfg, false, "restoring the checkpoint");
    rn_err_t err = setup(&j);
    const rn_plan_t *p = j.plan;
    int64_t now = rn_clock_wall_ms(cfg->clock);
    int64_t next_ckpt = now + cfg->checkpoint_interval_ms;
    int64_t next_emit = now + p->every_ms;
    bool crashed = false;
    if (err == RN_OK) {
        publish(&j, now);
        set_ready(cfg, true, NULL);
    }
    while (err == RN_OK && !(cfg->stop && *cfg->stop)) {
        if (cfg->bounded && all_finished(&j))
            break;
        const rn_src_record_t *recs;
        size_t n = 0;
        if ((err = cfg->source.poll(cfg->source.ctx, 100, 4096, &recs, &n)) != RN_OK) {
            fail(&j, err, "reading %s: %s", p->topic, rn_err_str(err));
            break;
        }
        size_t handled = 0;
        while (handled < n && err == RN_OK) {
            err = handle(&j, &recs[handled++]);
            if (cfg->crash_after_records && ++j.stats.records >= cfg->crash_after_records)
                crashed = true;
            if (crashed)
                break;
        }
        rn_jm_records(j.jm, recs, handled);
        if (crashed || err != RN_OK)
            break;
        if ((err = advance(&j, rn_wm_tick(j.wm))) != RN_OK)
            break;
        now = rn_clock_wall_ms(cfg->clock);
        if (p->every_ms > 0 && now >= next_emit) {
            if ((err = rn_agop_emit_changes(j.op)) != RN_OK)
                break;
            next_emit = now + p->every_ms;
        }
        if (now >= next_ckpt) {
            if ((err = checkpoint(&j)) != RN_OK)
                break;
            next_ckpt = now + cfg->checkpoint_interval_ms;
        }
        if (now >= j.next_publish_ms)
            publish(&j, now);
    }
    set_ready(cfg, false, err == RN_OK && !crashed ? "stopping" : "the job failed");
    if (crashed) {
        fill_stats(&j, stats);
        teardown(&j); /* the open transaction rolls back, as a SIGKILL would leave it */
        snprintf(errbuf, errlen, "stopped without a checkpoint after %llu records (test crash)",
                 (unsigned long long)cfg->crash_after_records);
        return RN_ERR_STATE;
    }
    if (err == RN_OK && cfg->bounded)
        err = rn_agop_finish(j.op); /* the input is complete: every window closes */
    if (err == RN_OK)
        err = checkpoint(&j);
    if (err == RN_OK && j.stats.malformed + (j.op ? rn_agop_stats(j.op)->late : 0) > 0)
        RN_INFO("processor", "job %s: %llu malformed and %llu late records skipped", p->job,
                (unsigned long long)j.stats.malformed,
                (unsigned long long)(j.op ? rn_agop_stats(j.op)->late : 0));
    set_ready(cfg, false, err == RN_OK ? "stopped" : "the job failed");
    fill_stats(&j, stats);
    teardown(&j);
    return err;
}
