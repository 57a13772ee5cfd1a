/* partition.c - a served partition: validated appends, idempotence, group-commit fsync. */
#include "partition.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "logging.h"
#include "metrics.h"
#include "pstate.h"
#include "varint.h"

#define REPLAY_CHUNK (1u << 20)

struct waiter {
    struct waiter *next;
    uint64_t target;
    rn_part_durable_cb cb;
    void *arg;
};

struct rn_part {
    const rn_part_env_t *env;
    char *dir;
    rn_log_t *log;
    rn_pstate_t *pstate;
    /* group commit */
    uv_work_t work;
    rn_log_sync_t *sync;      /* non-NULL while a sync runs in the thread pool */
    rn_err_t sync_result;
    int64_t unflushed;        /* records appended since the last sync began (flush.messages) */
    int64_t sync_records;     /* records the running sync covers */
    struct waiter *waiters;
    struct waiter **waiters_tail;
    bool doomed;              /* deleted while a sync ran: remove when it ends */
    uint32_t leader_epoch;    /* stamped into appended batches (0 on a single node) */
    void *repl;               /* cluster mode: the replication state (cluster/repl.h) */
};

void rn_part_set_leader_epoch(rn_part_t *p, uint32_t epoch)
{
    p->leader_epoch = epoch;
}

uint32_t rn_part_leader_epoch(const rn_part_t *p)
{
    return p->leader_epoch;
}

void rn_part_set_repl(rn_part_t *p, void *repl)
{
    p->repl = repl;
}

void *rn_part_repl(const rn_part_t *p)
{
    return p->repl;
}

rn_err_t rn_part_wire_err(rn_err_t err)
{
    switch (err) {
    case RN_OK:
    case RN_ERR_CORRUPT_MESSAGE:
    case RN_ERR_MESSAGE_TOO_LARGE:
    case RN_ERR_OFFSET_OUT_OF_RANGE:
        return err;
    default:
        return err > 0 ? err : RN_ERR_STORAGE_ERROR;
    }
}

rn_log_t *rn_part_log(rn_part_t *p)
{
    return p->log;
}

bool rn_part_sync_running(const rn_part_t *p)
{
    return p->sync != NULL;
}

/* -------------------------------------------------------------------- replay ---- */

/* The base offset of the second-newest segment (or the log start): where a replay without
 * a snapshot begins, so start-up time stays bounded by two segments. */
static uint64_t fallback_start(rn_part_t *p)
{
    uint64_t newest = 0, second = 0;
    int found = 0;
    DIR *d = opendir(p->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 24 || strcmp(e->d_name + 20, ".log") != 0)
            continue;
        uint64_t base = strtoull(e->d_name, NULL, 10);
        if (found == 0 || base > newest) {
            second = newest;
            newest = base;
        } else if (base > second) {
            second = base;
        }
        found++;
    }
    if (d)
        closedir(d);
    return found >= 2 ? second : rn_log_start_offset(p->log);
}

/*
 * Feeds the producer state with the headers of every batch in [from, end). Reads each
 * segment in large chunks and parses only the headers; never the records.
 */
static rn_err_t replay(rn_part_t *p, uint64_t from, uint64_t end, uint64_t *batches)
{
    uint8_t *buf = malloc(REPLAY_CHUNK);
    if (!buf)
        return RN_ERR_NOMEM;
    int64_t now = rn_clock_wall_ms(rn_clock_system());
    uint64_t off = from;
    rn_err_t err = RN_OK;
    while (off < end && err == RN_OK) {
        rn_log_slice_t s;
        if ((err = rn_log_read(p->log, off, UINT64_MAX, 1, &s)) != RN_OK || s.len == 0)
            break;
        struct stat st;
        uint64_t pos = s.pos, file_end = fstat(s.fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        uint64_t buf_pos = 0, buf_len = 0, before = off;
        while (pos + RN_BATCH_HEADER_SIZE <= file_end) {
            if (pos < buf_pos || pos + RN_BATCH_HEADER_SIZE > buf_pos + buf_len) {
                ssize_t n = pread(s.fd, buf, REPLAY_CHUNK, (off_t)pos);
                if (n < RN_BATCH_HEADER_SIZE)
                    break;
                buf_pos = pos;
                buf_len = (uint64_t)n;
            }
            rn_batch_header_t h;
            if (rn_batch_parse_header(buf + (pos - buf_pos), SIZE_MAX, &h) != RN_OK ||
                h.base_offset >= end || pos + rn_batch_total_size(&h) > file_end)
                break;
            if (h.base_offset >= off) {
                if ((err = rn_pstate_update(p->pstate, &h, now)) != RN_OK)
                    break;
                (*batches)++;
            }
            off = rn_batch_last_offset(&h) + 1;
            pos += rn_batch_total_size(&h);
        }
        rn_log_slice_release(&s);
        if (off == before)
            break; /* no progress: the log ends or is damaged here; keep what we have */
    }
    free(buf);
    return err;
}

static rn_err_t rebuild_pstate(rn_part_t *p)
{
    uint64_t start = rn_log_start_offset(p->log), end = rn_log_end_offset(p->log);
    uint64_t from, batches = 0;
    rn_err_t err = rn_pstate_load(p->pstate, p->dir, end, &from);
    if (err == RN_ERR_NOT_FOUND)
        from = fallback_start(p);
    else if (err != RN_OK)
        return err;
    if (from < start)
        from = start;
    if (from < end && (err = replay(p, from, end, &batches)) != RN_OK)
        return err;
    if (batches) {
        RN_INFO("partition", "%s: producer state rebuilt from offset %" PRIu64 " (%" PRIu64
                " batches replayed, %zu producers)", p->dir, from, batches,
                rn_pstate_count(p->pstate));
        /* Save the replay's result so the next start does not repeat it. */
        if (rn_pstate_save(p->pstate, p->dir, end) != RN_OK)
            RN_WARN("partition", "%s: cannot write producer-state snapshot: %s", p->dir,
                    strerror(errno));
    }
    return RN_OK;
}

/* ---------------------------------------------------------------- open/close ---- */

rn_err_t rn_part_open(const rn_part_env_t *env, const char *dir, const rn_log_config_t *cfg,
                      rn_part_t **out, char *errbuf, size_t errlen)
{
    rn_part_t *p = calloc(1, sizeof *p);
    if (!p)
        return RN_ERR_NOMEM;
    p->env = env;
    p->waiters_tail = &p->waiters;
    rn_err_t err = RN_ERR_NOMEM;
    if (!(p->dir = strdup(dir)) || !(p->pstate = rn_pstate_new()))
        goto fail;
    struct stat st;
    bool fresh = stat(dir, &st) != 0;
    if ((err = rn_log_open(dir, cfg, NULL, &p->log, errbuf, errlen)) != RN_OK)
        goto fail;
    const rn_log_recovery_t *rec = rn_log_recovery(p->log);
    if (!rec->clean && !fresh)
        RN_INFO("partition", "%s: recovered after an unclean stop: %" PRIu64 " bytes scanned, %"
                PRIu64 " truncated, %" PRIu32 " segments dropped", dir, rec->bytes_scanned,
                rec->bytes_truncated, rec->segments_dropped);
    if ((err = rebuild_pstate(p)) != RN_OK) {
        snprintf(errbuf, errlen, "%s: cannot rebuild producer state: %s", dir, rn_err_str(err));
        goto fail;
    }
    *out = p;
    return RN_OK;
fail:
    if (p->log)
        rn_log_abandon(p->log);
    rn_pstate_free(p->pstate);
    free(p->dir);
    free(p);
    return err;
}

static void free_part(rn_part_t *p)
{
    rn_pstate_free(p->pstate);
    free(p->dir);
    free(p);
}

rn_err_t rn_part_close(rn_part_t *p)
{
    rn_err_t err = rn_log_flush(p->log);
    if (err == RN_OK && rn_pstate_save(p->pstate, p->dir, rn_log_end_offset(p->log)) != RN_OK)
        RN_WARN("partition", "%s: cannot write producer-state snapshot: %s (the next start "
                "replays the log instead)", p->dir, strerror(errno));
    rn_err_t cerr = rn_log_close(p->log);
    if (err == RN_OK)
        err = cerr;
    if (err != RN_OK)
        RN_ERROR("partition", "%s: close failed: %s", p->dir, rn_err_str(err));
    free_part(p);
    return err;
}

static void delete_now(rn_part_t *p)
{
    char *dir = p->dir;
    if (rn_log_delete(p->log) != RN_OK)
        RN_WARN("partition", "%s: could not remove every file: %s", dir, strerror(errno));
    else
        RN_INFO("partition", "%s: deleted", dir);
    free_part(p);
}

/* ------------------------------------------------------------- group commit ---- */

static void complete_waiters(rn_part_t *p, rn_err_t err)
{
    uint64_t flushed = rn_log_flushed_offset(p->log);
    struct waiter *keep = NULL, **keep_tail = &keep, *done = NULL, **done_tail = &done;
    for (struct waiter *w = p->waiters, *next; w; w = next) {
        next = w->next;
        w->next = NULL;
        if (err != RN_OK || w->target <= flushed) {
            *done_tail = w;
            done_tail = &w->next;
        } else {
            *keep_tail = w;
            keep_tail = &w->next;
        }
    }
    p->waiters = keep;
    p->waiters_tail = keep ? keep_tail : &p->waiters; /* keep_tail may point at the local */
    if (!done)
        return;
    if (p->env->burst_begin)
        p->env->burst_begin(p->env->ctx);
    for (struct waiter *w = done, *next; w; w = next) {
        next = w->next;
        w->cb(w->arg, err);
        free(w);
    }
    if (p->env->burst_end)
        p->env->burst_end(p->env->ctx);
}

static void sync_work(uv_work_t *req)
{
    rn_part_t *p = req->data;
    int64_t t0 = rn_now_ns();
    p->sync_result = rn_log_sync_run(p->sync);
    rn_histo_observe(p->env->fsync_seconds, (double)(rn_now_ns() - t0) / 1e9);
}

static void sync_start(rn_part_t *p);

static void sync_after(uv_work_t *req, int status)
{
    rn_part_t *p = req->data;
    (*p->env->syncs_running)--;
    rn_err_t run = status < 0 ? RN_ERR_IO : p->sync_result;
    rn_err_t err = rn_log_sync_end(p->log, p->sync, run);
    p->sync = NULL;
    p->unflushed -= p->sync_records;
    if (p->unflushed < 0)
        p->unflushed = 0;
    if (err != RN_OK)
        RN_ERROR("partition", "%s: fsync failed: %s; the partition is read-only until a "
                 "restart", p->dir, rn_err_str(err));
    complete_waiters(p, err == RN_OK ? RN_OK : RN_ERR_STORAGE_ERROR);
    if (p->doomed) {
        complete_waiters(p, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        delete_now(p);
        return;
    }
    if (p->waiters || rn_log_flush_due(p->log))
        sync_start(p);
}

/* Starts a sync unless one runs; completes the waiters at once when nothing needs one. */
static void sync_start(rn_part_t *p)
{
    if (p->sync)
        return;
    rn_log_sync_t *s = NULL;
    rn_err_t err = rn_log_sync_begin(p->log, &s);
    if (err != RN_OK || !s) {
        complete_waiters(p, err == RN_OK ? RN_OK : RN_ERR_STORAGE_ERROR);
        return;
    }
    p->sync = s;
    p->sync_records = p->unflushed;
    p->work.data = p;
    (*p->env->syncs_running)++;
    if (uv_queue_work(p->env->loop, &p->work, sync_work, sync_after) != 0) {
        /* The thread pool refused: sync on the loop rather than never. */
        sync_work(&p->work);
        sync_after(&p->work, 0);
    }
}

rn_err_t rn_part_wait_durable(rn_part_t *p, uint64_t target, rn_part_durable_cb cb, void *arg,
                              bool *waiting)
{
    *waiting = false;
    if (target <= rn_log_flushed_offset(p->log))
        return RN_OK;
    if (!p->sync) {
        sync_start(p); /* no waiter can exist without a running sync: nothing completes here */
        if (!p->sync)
            return target <= rn_log_flushed_offset(p->log) ? RN_OK : RN_ERR_STORAGE_ERROR;
    }
    struct waiter *w = malloc(sizeof *w);
    if (!w)
        return RN_ERR_STORAGE_ERROR;
    w->next = NULL;
    w->target = target;
    w->cb = cb;
    w->arg = arg;
    *p->waiters_tail = w;
    p->waiters_tail = &w->next;
    *waiting = true;
    return RN_OK;
}

void rn_part_flush_tick(rn_part_t *p)
{
    if (!p->sync && rn_log_flush_due(p->log))
        sync_start(p);
}

void rn_part_destroy(rn_part_t *p)
{
    if (p->sync) {
        p->doomed = true;
        return;
    }
    complete_waiters(p, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    delete_now(p);
}

/* -------------------------------------------------------------------- append ---- */

static void refuse(rn_part_result_t *res, rn_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(rn_part_result_t *res, rn_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof res->msg, fmt, ap);
    va_end(ap);
    res->err = err;
}

/* Validates every batch; fills hs (n of them). False with res filled on the first bad one. */
static bool validate_all(rn_part_t *p, const uint8_t *data, size_t len, rn_batch_header_t *hs,
                         size_t cap, size_t *n, rn_part_result_t *res)
{
    uint32_t max = rn_log_config(p->log)->max_message_bytes;
    size_t pos = 0, i = 0;
    if (len == 0) {
        refuse(res, RN_ERR_CORRUPT_MESSAGE, "no record batch in the partition's records");
        return false;
    }
    while (pos < len) {
        if (len - pos < RN_BATCH_LOG_OVERHEAD) {
            refuse(res, RN_ERR_CORRUPT_MESSAGE, "batch %zu at byte %zu: truncated header", i, pos);
            return false;
        }
        uint64_t total = (uint64_t)rn_le_get32(data + pos + RN_BATCH_OFF_LENGTH) +
                         RN_BATCH_LOG_OVERHEAD;
        if (total > max) {
            refuse(res, RN_ERR_MESSAGE_TOO_LARGE,
                   "batch %zu is %" PRIu64 " bytes; max.message.bytes is %" PRIu32, i, total, max);
            return false;
        }
        if (i == cap) {
            refuse(res, RN_ERR_CORRUPT_MESSAGE, "more than %zu batches in one partition", cap);
            return false;
        }
        rn_err_t err = rn_batch_validate(data + pos, len - pos, &hs[i]);
        if (err != RN_OK) {
            refuse(res, RN_ERR_CORRUPT_MESSAGE, "batch %zu at byte %zu: %s", i, pos,
                   rn_err_str(err));
            return false;
        }
        pos += rn_batch_total_size(&hs[i]);
        i++;
    }
    *n = i;
    return true;
}

/* Appends one run of batches and records it in the producer state. */
static rn_err_t append_run(rn_part_t *p, uint8_t *data, size_t len, const rn_batch_header_t *hs,
                           size_t n, rn_log_append_info_t *info)
{
    rn_err_t err = rn_log_append(p->log, data, len, p->leader_epoch, info);
    if (err != RN_OK)
        return err;
    int64_t now = rn_clock_wall_ms(rn_clock_system());
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        rn_batch_header_t h = hs[i];
        h.base_offset = rn_le_get64(data + pos); /* stamped by the append */
        if (rn_pstate_update(p->pstate, &h, now) != RN_OK)
            RN_WARN("partition", "%s: out of memory recording producer %" PRId64, p->dir,
                    h.producer_id);
        pos += rn_batch_total_size(&hs[i]);
    }
    p->unflushed += info->record_count;
    return RN_OK;
}

static void append_batches(rn_part_t *p, uint8_t *data, size_t len, const rn_batch_header_t *hs,
                           const rn_pstate_verdict_t *v, size_t n, rn_part_result_t *res)
{
    size_t dups = 0;
    for (size_t i = 0; i < n; i++)
        dups += v[i].duplicate;
    uint32_t segs = rn_log_segment_count(p->log);
    rn_log_append_info_t info = {0};
    rn_err_t err = RN_OK;
    if (dups == 0) {
        err = append_run(p, data, len, hs, n, &info);
        res->base_offset = info.first_offset;
        res->records = info.record_count;
        res->bytes = err == RN_OK ? len : 0;
    } else {
        /* Retries mixed with new batches (a client that re-batched): append the new ones. */
        size_t pos = 0;
        for (size_t i = 0; i < n && err == RN_OK; i++) {
            size_t total = rn_batch_total_size(&hs[i]);
            if (!v[i].duplicate &&
                (err = append_run(p, data + pos, total, &hs[i], 1, &info)) == RN_OK) {
                res->records += info.record_count;
                res->bytes += total;
            }
            if (i == 0)
                res->base_offset = v[0].duplicate ? v[0].first_offset : info.first_offset;
            pos += total;
        }
        res->duplicate = dups == n;
        res->duplicate_batches = (uint32_t)dups;
    }
    if (err != RN_OK) {
        refuse(res, rn_part_wire_err(err), "append failed: %s", rn_err_str(err));
        return;
    }
    uint64_t end = rn_log_end_offset(p->log);
    if (res->duplicate) {
        /* The original may still wait for its fsync: the retry's ack must not overtake it. */
        uint64_t target = v[n - 1].last_offset + 1;
        if (target > rn_log_flushed_offset(p->log) &&
            (p->sync || p->unflushed >= rn_log_config(p->log)->flush_messages))
            res->durable_target = target;
    } else if (p->unflushed >= rn_log_config(p->log)->flush_messages) {
        res->durable_target = end;
        sync_start(p);
    }
    if (rn_log_segment_count(p->log) > segs &&
        rn_pstate_save(p->pstate, p->dir, end) != RN_OK)
        RN_WARN("partition", "%s: cannot write producer-state snapshot at %" PRIu64 ": %s",
                p->dir, end, strerror(errno));
}

void rn_part_append(rn_part_t *p, uint8_t *data, size_t len, rn_part_result_t *res)
{
    memset(res, 0, sizeof *res);
    rn_batch_header_t small_h[4];
    rn_pstate_verdict_t small_v[4];
    /* Count the batches by their length fields (validation comes next) to size the arrays. */
    size_t cap = 1, n = 0, bad = 0;
    for (size_t pos = 0; len - pos >= RN_BATCH_LOG_OVERHEAD;) {
        uint64_t total = (uint64_t)rn_le_get32(data + pos + RN_BATCH_OFF_LENGTH) +
                         RN_BATCH_LOG_OVERHEAD;
        if (total < RN_BATCH_HEADER_SIZE || total > len - pos)
            break;
        pos += total;
        cap++;
    }
    rn_batch_header_t *hs = cap <= 4 ? small_h : malloc(cap * sizeof *hs);
    rn_pstate_verdict_t *v = cap <= 4 ? small_v : malloc(cap * sizeof *v);
    if (!hs || !v) {
        refuse(res, RN_ERR_STORAGE_ERROR, "out of memory");
        goto out;
    }
    if (!validate_all(p, data, len, hs, cap, &n, res))
        goto out;
    rn_err_t err = rn_pstate_check(p->pstate, hs, n, v, &bad, res->msg, sizeof res->msg);
    if (err != RN_OK) {
        res->err = err == RN_ERR_NOMEM ? RN_ERR_STORAGE_ERROR : err;
        goto out;
    }
    append_batches(p, data, len, hs, v, n, res);
out:
    if (hs != small_h)
        free(hs);
    if (v != small_v)
        free(v);
}

/* ------------------------------------------------------------------ replicas ---- */

/* Records every batch in [data, data + len) (already in the log) in the producer state. */
static void record_batches(rn_part_t *p, const uint8_t *data, size_t len)
{
    int64_t now = rn_clock_wall_ms(rn_clock_system());
    for (size_t pos = 0; len - pos >= RN_BATCH_HEADER_SIZE;) {
        rn_batch_header_t h;
        if (rn_batch_parse_header(data + pos, len - pos, &h) != RN_OK)
            break;
        if (rn_pstate_update(p->pstate, &h, now) != RN_OK)
            RN_WARN("partition", "%s: out of memory recording producer %" PRId64, p->dir,
                    h.producer_id);
        pos += rn_batch_total_size(&h);
    }
}

rn_err_t rn_part_append_replica(rn_part_t *p, const uint8_t *data, size_t len,
                                uint64_t *durable_target)
{
    *durable_target = 0;
    uint32_t segs = rn_log_segment_count(p->log);
    rn_log_append_info_t info = {0};
    rn_err_t err = rn_log_append_replica(p->log, data, len, &info);
    if (err != RN_OK)
        return err;
    record_batches(p, data, len);
    p->unflushed += info.record_count;
    uint64_t end = rn_log_end_offset(p->log);
    if (p->unflushed >= rn_log_config(p->log)->flush_messages) {
        *durable_target = end;
        sync_start(p);
    }
    if (rn_log_segment_count(p->log) > segs && rn_pstate_save(p->pstate, p->dir, end) != RN_OK)
        RN_WARN("partition", "%s: cannot write producer-state snapshot at %" PRIu64 ": %s",
                p->dir, end, strerror(errno));
    return RN_OK;
}

rn_err_t rn_part_truncate(rn_part_t *p, uint64_t offset)
{
    if (offset >= rn_log_end_offset(p->log))
        return RN_OK;
    if (p->sync)
        return RN_ERR_AGAIN;
    uint64_t before = rn_log_end_offset(p->log);
    rn_err_t err = rn_log_truncate(p->log, offset);
    if (err != RN_OK && rn_log_end_offset(p->log) == before)
        return err;
    rn_pstate_t *fresh = rn_pstate_new();
    if (!fresh)
        return RN_ERR_NOMEM;
    rn_pstate_free(p->pstate);
    p->pstate = fresh;
    rn_err_t perr = rebuild_pstate(p);
    RN_INFO("partition", "%s: truncated from %" PRIu64 " to %" PRIu64 " (records the leader "
            "does not have)", p->dir, before, rn_log_end_offset(p->log));
    return perr != RN_OK ? perr : err;
}

rn_err_t rn_part_reset(rn_part_t *p, uint64_t start)
{
    if (p->sync)
        return RN_ERR_AGAIN;
    uint64_t before = rn_log_end_offset(p->log);
    rn_pstate_t *fresh = rn_pstate_new();
    if (!fresh)
        return RN_ERR_NOMEM;
    rn_err_t err = rn_log_reset(p->log, start);
    if (err != RN_OK) {
        rn_pstate_free(fresh);
        return err;
    }
    rn_pstate_free(p->pstate);
    p->pstate = fresh;
    p->unflushed = 0;
    /* An empty snapshot at the new start: older ones describe records that are gone. */
    if (rn_pstate_save(p->pstate, p->dir, start) != RN_OK)
        RN_WARN("partition", "%s: cannot write producer-state snapshot: %s", p->dir,
                strerror(errno));
    RN_INFO("partition", "%s: reset: the log ended at %" PRIu64 ", below the leader's start; "
            "it starts empty at %" PRIu64, p->dir, before, start);
    return RN_OK;
}

/* --------------------------------------------------------------- maintenance ---- */

void rn_part_maintain(rn_part_t *p, int64_t producer_idle_ms, rn_part_retention_t *removed)
{
    uint32_t segs = rn_log_segment_count(p->log);
    uint64_t start = rn_log_start_offset(p->log);
    rn_err_t err = rn_log_roll_if_due(p->log);
    if (err != RN_OK)
        RN_WARN("partition", "%s: roll by segment.ms failed: %s", p->dir, rn_err_str(err));
    else if (rn_log_segment_count(p->log) > segs &&
             rn_pstate_save(p->pstate, p->dir, rn_log_end_offset(p->log)) != RN_OK)
        RN_WARN("partition", "%s: cannot write producer-state snapshot: %s", p->dir,
                strerror(errno));
    uint32_t deleted = 0;
    uint64_t size_before = rn_log_size_bytes(p->log);
    if ((err = rn_log_apply_retention(p->log, &deleted)) != RN_OK)
        RN_WARN("partition", "%s: retention failed: %s", p->dir, rn_err_str(err));
    if (deleted)
        RN_INFO("partition", "%s: retention deleted %" PRIu32 " segment(s); log start %" PRIu64
                " -> %" PRIu64, p->dir, deleted, start, rn_log_start_offset(p->log));
    if (removed) {
        removed->segments = deleted;
        removed->bytes = size_before - rn_log_size_bytes(p->log);
    }
    size_t expired = rn_pstate_expire(p->pstate, rn_clock_wall_ms(rn_clock_system()),
                                      producer_idle_ms);
    if (expired)
        RN_DEBUG("partition", "%s: %zu idle producer(s) expired", p->dir, expired);
}
