/*
 * log.c - the partition log: segments, append, read, flush, recovery, truncation, retention.
 * The epoch cache's upkeep and follower appends are in log_replica.c.
 */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "dirnames.h"
#include "epoch.h"
#include "log_int.h"
#include "segment.h"
#include "varint.h"

#define MARKER_NAME ".clean-shutdown"
#define RP_NAME "recovery-point"
#define RP_MAGIC 0x50524e52u /* "RNRP" */
#define RP_SIZE 32

struct rn_log_sync {
    const rn_io_t *io;
    uint64_t target;
    int64_t records;
    int nfds;
    int fds[]; /* dups of segment files, then the directory when names changed */
};

void rn_log__seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

rn_seg_t *rn_log__active(const rn_log_t *log)
{
    return log->segs[log->nsegs - 1];
}

static rn_err_t push_seg(rn_log_t *log, rn_seg_t *seg)
{
    if (log->nsegs == log->cap) {
        uint32_t cap = log->cap ? log->cap * 2 : 8;
        rn_seg_t **p = realloc(log->segs, cap * sizeof *p);
        if (!p)
            return RN_ERR_NOMEM;
        log->segs = p;
        log->cap = cap;
    }
    log->segs[log->nsegs++] = seg;
    return RN_OK;
}

/* ------------------------------------------------------------ recovery point ---- */

/*
 *   recovery-point (32 bytes):  magic u32 | version u32 | offset u64 | reserved u64 | xxh3 u64
 *
 * Rewritten in place after every flush, without an fsync of its own: it only ever moves to an
 * offset whose data was already synced, so after a power loss it is at worst stale (recovery
 * scans more) or unreadable (recovery scans everything), never ahead of the disk.
 */
static void rp_write(rn_log_t *log, uint64_t offset)
{
    uint8_t b[RP_SIZE] = {0};
    rn_le_put32(b, RP_MAGIC);
    rn_le_put32(b + 4, 1);
    rn_le_put64(b + 8, offset);
    rn_le_put64(b + 24, XXH3_64bits(b, 24));
    if (log->rp_fd >= 0)
        rn_io_pwrite_all(log->io, log->rp_fd, b, sizeof b, 0);
}

/* True with *offset when the file holds a valid recovery point. */
static bool rp_read(rn_log_t *log, uint64_t *offset)
{
    uint8_t b[RP_SIZE];
    if (log->rp_fd < 0 || rn_io_pread_all(log->io, log->rp_fd, b, sizeof b, 0) != RP_SIZE)
        return false;
    if (rn_le_get32(b) != RP_MAGIC || rn_le_get64(b + 24) != XXH3_64bits(b, 24))
        return false;
    *offset = rn_le_get64(b + 8);
    return true;
}

/* ---------------------------------------------------------------------- open ---- */

/* A closed segment trusted as it is: its end is where the next one starts. */
static rn_err_t trust_closed(rn_log_t *log, uint32_t i)
{
    rn_seg_t *seg = log->segs[i];
    seg->next_offset = log->segs[i + 1]->base_offset;
    size_t t = rn_idx_count(seg->time_index);
    if (t) {
        seg->max_timestamp = rn_idx_get(seg->time_index, t - 1).key;
        return RN_OK;
    }
    /* No time entry survived (a segment written before a crash): read its headers. */
    return rn_seg_load_tail(seg);
}

static rn_err_t drop_segments_from(rn_log_t *log, uint32_t from)
{
    rn_err_t err = RN_OK;
    while (log->nsegs > from) {
        rn_seg_t *seg = log->segs[--log->nsegs];
        if (rn_seg_delete(seg) != RN_OK)
            err = RN_ERR_IO;
        log->recovery.segments_dropped++;
        log->dir_dirty = true;
    }
    return err;
}

static rn_err_t recover(rn_log_t *log, char *errbuf, size_t errlen)
{
    uint64_t rp = 0;
    if (!rp_read(log, &rp))
        rp = 0; /* no usable recovery point: verify everything */
    log->recovery_from = rp;
    uint32_t first = 0;
    while (first + 1 < log->nsegs && log->segs[first + 1]->base_offset <= rp)
        first++;
    for (uint32_t i = 0; i < first; i++) {
        rn_err_t err = trust_closed(log, i);
        if (err != RN_OK) {
            rn_log__seterr(errbuf, errlen,
                           "%s: cannot read segment %020" PRIu64 " during recovery: %s",
                           log->dir, log->segs[i]->base_offset, rn_err_str(err));
            return err;
        }
    }
    for (uint32_t i = first; i < log->nsegs; i++) {
        rn_seg_t *seg = log->segs[i];
        uint64_t scanned = 0, cut = 0;
        rn_err_t err = rn_seg_recover(seg, i == first ? rp : seg->base_offset, &scanned, &cut);
        if (err != RN_OK) {
            rn_log__seterr(errbuf, errlen, "%s: recovery of segment %020" PRIu64 " failed: %s",
                           log->dir, seg->base_offset, rn_err_str(err));
            return err;
        }
        log->recovery.bytes_scanned += scanned;
        log->recovery.bytes_truncated += cut;
        bool gap = i + 1 < log->nsegs && log->segs[i + 1]->base_offset != seg->next_offset;
        if (cut || gap) {
            /* Everything after a torn or corrupt point is unacknowledged or unreachable. */
            for (uint32_t j = i + 1; j < log->nsegs; j++)
                log->recovery.bytes_truncated += log->segs[j]->size;
            return drop_segments_from(log, i + 1);
        }
    }
    return RN_OK;
}

static rn_err_t load_clean(rn_log_t *log)
{
    for (uint32_t i = 0; i + 1 < log->nsegs; i++) {
        rn_err_t err = trust_closed(log, i);
        if (err != RN_OK)
            return err;
    }
    return rn_seg_load_tail(rn_log__active(log));
}

static rn_err_t open_segments(rn_log_t *log, bool *created, char *errbuf, size_t errlen)
{
    uint64_t *bases;
    size_t n;
    rn_err_t err = rn_dir_offsets(log->dir, ".log", &bases, &n);
    if (err != RN_OK) {
        rn_log__seterr(errbuf, errlen, "%s: cannot list directory: %s", log->dir, strerror(errno));
        return err;
    }
    for (size_t i = 0; i < n && err == RN_OK; i++) {
        rn_seg_t *seg;
        err = rn_seg_open(log->dir, bases[i], log->cfg.index_interval_bytes,
                          log->cfg.segment_index_bytes, log->io, &seg);
        if (err == RN_OK && (err = push_seg(log, seg)) != RN_OK)
            rn_seg_close(seg, false);
        if (err != RN_OK)
            rn_log__seterr(errbuf, errlen, "%s: cannot open segment %020" PRIu64 ": %s", log->dir,
                           bases[i], rn_err_str(err));
    }
    free(bases);
    if (err == RN_OK && log->nsegs == 0) {
        rn_seg_t *seg;
        err = rn_seg_create(log->dir, 0, log->cfg.index_interval_bytes,
                            log->cfg.segment_index_bytes, log->io, &seg);
        if (err == RN_OK && (err = push_seg(log, seg)) != RN_OK)
            rn_seg_close(seg, false);
        if (err != RN_OK)
            rn_log__seterr(errbuf, errlen, "%s: cannot create the first segment: %s", log->dir,
                           rn_err_str(err));
        log->dir_dirty = true;
        *created = true;
    }
    return err;
}

rn_err_t rn_log_open(const char *dir, const rn_log_config_t *cfg, const rn_log_env_t *env,
                     rn_log_t **out, char *errbuf, size_t errlen)
{
    rn_log_t *log = calloc(1, sizeof *log);
    if (!log)
        return RN_ERR_NOMEM;
    log->cfg = *cfg;
    log->clock = env && env->clock ? env->clock : rn_clock_system();
    log->io = env && env->io ? env->io : rn_io_posix();
    log->rp_fd = -1;
    rn_err_t err = RN_ERR_NOMEM;
    char *marker = NULL, *rp_path = NULL;
    if (!(log->dir = strdup(dir)) || !(marker = join(dir, MARKER_NAME)) ||
        !(rp_path = join(dir, RP_NAME)))
        goto fail;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rn_log__seterr(errbuf, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
        err = RN_ERR_IO;
        goto fail;
    }
    log->rp_fd = log->io->open(log->io->ctx, rp_path, O_RDWR | O_CREAT, 0644);
    if (log->rp_fd < 0) {
        rn_log__seterr(errbuf, errlen, "%s: cannot open %s: %s", dir, RP_NAME, strerror(errno));
        err = RN_ERR_IO;
        goto fail;
    }
    if ((err = rn_lep_new(dir, log->io, &log->epochs)) != RN_OK)
        goto fail;
    rn_err_t loaded = rn_lep_load(log->epochs);
    if (loaded == RN_ERR_IO || loaded == RN_ERR_NOMEM) {
        rn_log__seterr(errbuf, errlen, "%s: cannot read %s: %s", dir, RN_LEP_FILE, strerror(errno));
        err = loaded;
        goto fail;
    }
    bool created = false;
    if ((err = open_segments(log, &created, errbuf, errlen)) != RN_OK)
        goto fail;
    /* A log that had no segment at all is new: nothing to recover. */
    log->recovery.clean = access(marker, F_OK) == 0 || created;
    if (log->recovery.clean && load_clean(log) != RN_OK) {
        /* The marker lied (files changed after a clean stop): fall back to full recovery. */
        log->recovery.clean = false;
        rp_write(log, 0);
    }
    if (!log->recovery.clean && (err = recover(log, errbuf, errlen)) != RN_OK)
        goto fail;
    if ((err = rn_log__epochs_open(log, loaded, errbuf, errlen)) != RN_OK)
        goto fail;
    for (uint32_t i = 0; i < log->nsegs; i++)
        log->segs[i]->first_append_ms = rn_clock_wall_ms(log->clock);
    /* What recovery kept may sit only in the page cache: make it durable before trusting it. */
    log->flushed_offset = log->recovery.clean ? rn_log_end_offset(log) : rn_log_start_offset(log);
    log->unflushed_records = log->recovery.clean ? 0 : 1;
    log->dir_dirty = log->dir_dirty || !log->recovery.clean;
    if ((err = rn_log_flush(log)) != RN_OK) {
        rn_log__seterr(errbuf, errlen, "%s: flush after recovery failed: %s", dir, rn_err_str(err));
        goto fail;
    }
    /* The marker must be gone for good before anything new is appended. */
    if (log->recovery.clean) {
        if ((log->io->unlink(log->io->ctx, marker) < 0 && errno != ENOENT) ||
            rn_io_sync_dir(log->io, dir) < 0) {
            rn_log__seterr(errbuf, errlen, "%s: cannot remove %s: %s", dir, MARKER_NAME,
                           strerror(errno));
            err = RN_ERR_IO;
            goto fail;
        }
    }
    log->last_flush_ms = rn_clock_wall_ms(log->clock);
    free(marker);
    free(rp_path);
    *out = log;
    return RN_OK;
fail:
    free(marker);
    free(rp_path);
    rn_log_abandon(log);
    return err;
}

void rn_log_abandon(rn_log_t *log)
{
    if (!log)
        return;
    for (uint32_t i = 0; i < log->nsegs; i++)
        rn_seg_close(log->segs[i], false);
    if (log->rp_fd >= 0)
        log->io->close(log->io->ctx, log->rp_fd);
    rn_lep_free(log->epochs);
    free(log->segs);
    free(log->dir);
    free(log);
}

rn_err_t rn_log_close(rn_log_t *log)
{
    if (!log)
        return RN_OK;
    rn_err_t err = log->failed;
    if (err == RN_OK)
        err = rn_log_flush(log);
    if (err == RN_OK)
        err = rn_lep_persist(log->epochs);
    if (err == RN_OK && rn_seg_seal(rn_log__active(log)) != RN_OK)
        err = RN_ERR_IO;
    for (uint32_t i = 0; i < log->nsegs; i++) {
        if (rn_seg_close(log->segs[i], true) != RN_OK)
            err = RN_ERR_IO;
    }
    log->nsegs = 0;
    if (err == RN_OK) {
        char *marker = join(log->dir, MARKER_NAME);
        int fd = marker ? log->io->open(log->io->ctx, marker, O_WRONLY | O_CREAT, 0644) : -1;
        if (fd < 0 || log->io->close(log->io->ctx, fd) < 0 || rn_io_sync_dir(log->io, log->dir) < 0)
            err = RN_ERR_IO;
        free(marker);
    }
    rn_log_abandon(log);
    return err;
}

static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = join(dir, e->d_name);
        if (!p || unlink(p) < 0)
            rc = -1;
        free(p);
    }
    closedir(d);
    return rmdir(dir) < 0 ? -1 : rc;
}

rn_err_t rn_log_delete(rn_log_t *log)
{
    char *dir = strdup(log->dir);
    rn_log_abandon(log);
    if (!dir)
        return RN_ERR_NOMEM;
    int rc = remove_tree(dir);
    free(dir);
    return rc < 0 ? RN_ERR_IO : RN_OK;
}

void rn_log_set_config(rn_log_t *log, const rn_log_config_t *cfg)
{
    log->cfg = *cfg;
    for (uint32_t i = 0; i < log->nsegs; i++)
        log->segs[i]->index_interval = cfg->index_interval_bytes;
}

const rn_log_config_t *rn_log_config(const rn_log_t *log)
{
    return &log->cfg;
}

const rn_log_recovery_t *rn_log_recovery(const rn_log_t *log)
{
    return &log->recovery;
}

/* -------------------------------------------------------------------- append ---- */

rn_err_t rn_log__roll(rn_log_t *log)
{
    rn_seg_t *old = rn_log__active(log);
    if (rn_seg_seal(old) != RN_OK)
        return RN_ERR_IO;
    rn_seg_t *seg;
    rn_err_t err = rn_seg_create(log->dir, old->next_offset, log->cfg.index_interval_bytes,
                                 log->cfg.segment_index_bytes, log->io, &seg);
    if (err != RN_OK)
        return err;
    if ((err = push_seg(log, seg)) != RN_OK) {
        rn_seg_delete(seg);
        return err;
    }
    seg->first_append_ms = rn_clock_wall_ms(log->clock);
    log->dir_dirty = true;
    return RN_OK;
}

bool rn_log__roll_due(const rn_log_t *log, size_t incoming)
{
    const rn_seg_t *seg = rn_log__active(log);
    if (seg->size == 0)
        return false;
    return seg->size + incoming > log->cfg.segment_bytes || rn_idx_full(seg->offset_index) ||
           rn_idx_full(seg->time_index) ||
           rn_clock_wall_ms(log->clock) - seg->first_append_ms >= log->cfg.segment_ms;
}

rn_err_t rn_log_roll_if_due(rn_log_t *log)
{
    return rn_log__roll_due(log, 0) ? rn_log__roll(log) : RN_OK;
}

rn_err_t rn_log_append(rn_log_t *log, uint8_t *batches, size_t len, uint32_t leader_epoch,
                       rn_log_append_info_t *info)
{
    if (log->failed != RN_OK)
        return RN_ERR_STATE;
    if (len == 0)
        return RN_ERR_CORRUPT_MESSAGE;
    /* First pass: check framing and sizes; nothing is written unless all of it is good. */
    size_t pos = 0;
    while (pos < len) {
        rn_batch_header_t h;
        if (rn_batch_parse_header(batches + pos, len - pos, &h) != RN_OK)
            return RN_ERR_CORRUPT_MESSAGE;
        if (rn_batch_total_size(&h) > log->cfg.max_message_bytes)
            return RN_ERR_MESSAGE_TOO_LARGE;
        pos += rn_batch_total_size(&h);
    }
    rn_err_t err = rn_log__leader_epoch_start(log, leader_epoch);
    if (err != RN_OK)
        return err;
    if (rn_log__roll_due(log, len) && (err = rn_log__roll(log)) != RN_OK)
        return err;
    rn_seg_t *seg = rn_log__active(log);
    uint64_t next = seg->next_offset;
    memset(info, 0, sizeof *info);
    info->first_offset = next;
    info->max_timestamp = -1;
    for (pos = 0; pos < len;) {
        rn_batch_header_t h;
        rn_batch_parse_header(batches + pos, len - pos, &h);
        rn_batch_stamp(batches + pos, next, leader_epoch);
        next += (uint64_t)h.last_offset_delta + 1;
        info->record_count += h.record_count;
        info->batch_count++;
        if (h.max_timestamp > info->max_timestamp)
            info->max_timestamp = h.max_timestamp;
        pos += rn_batch_total_size(&h);
    }
    /* On a failed write the new epoch's entry stays: it starts at the log end, which is true. */
    if ((err = rn_seg_append_span(seg, batches, len)) != RN_OK)
        return err;
    info->last_offset = next - 1;
    log->unflushed_records += info->record_count;
    return RN_OK;
}

/* ---------------------------------------------------------------------- read ---- */

/* Index of the segment that holds offset: the last with base_offset <= offset. */
uint32_t rn_log__seg_for(const rn_log_t *log, uint64_t offset)
{
    uint32_t lo = 0, hi = log->nsegs;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

rn_err_t rn_log_read(rn_log_t *log, uint64_t offset, uint64_t max_offset, size_t max_bytes,
                     rn_log_slice_t *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->first_offset = out->next_offset = offset;
    if (offset < rn_log_start_offset(log) || offset > rn_log_end_offset(log))
        return RN_ERR_OFFSET_OUT_OF_RANGE;
    uint32_t i = rn_log__seg_for(log, offset);
    uint64_t pos;
    rn_batch_header_t h;
    rn_err_t err;
    /* An offset past a segment's last batch (a gap) continues in the next segment. */
    while ((err = rn_seg_find(log->segs[i], offset, &pos, &h)) == RN_ERR_NOT_FOUND &&
           i + 1 < log->nsegs)
        i++;
    if (err == RN_ERR_NOT_FOUND)
        return RN_OK;
    if (err != RN_OK)
        return err;
    rn_seg_t *seg = log->segs[i];
    if (rn_batch_last_offset(&h) >= max_offset)
        return RN_OK;
    out->pos = pos;
    out->first_offset = h.base_offset;
    uint64_t end = pos + rn_batch_total_size(&h);
    out->next_offset = rn_batch_last_offset(&h) + 1;
    while (end < seg->size && end - pos < max_bytes) {
        /* A damaged header ends the range; the read that starts there reports it. */
        if (rn_seg_header_at(seg, end, &h) != RN_OK)
            break;
        if (end + rn_batch_total_size(&h) - pos > max_bytes || rn_batch_last_offset(&h) >= max_offset)
            break;
        end += rn_batch_total_size(&h);
        out->next_offset = rn_batch_last_offset(&h) + 1;
    }
    out->len = (size_t)(end - pos);
    out->fd = fcntl(seg->fd, F_DUPFD_CLOEXEC, 0);
    if (out->fd < 0) {
        out->len = 0;
        return RN_ERR_IO;
    }
    return RN_OK;
}

void rn_log_slice_release(rn_log_slice_t *slice)
{
    if (slice->fd >= 0)
        close(slice->fd);
    slice->fd = -1;
}

rn_err_t rn_log_read_copy(rn_log_t *log, uint64_t offset, uint64_t max_offset, size_t max_bytes,
                          rn_buf_t *out, rn_log_slice_t *info)
{
    rn_log_slice_t s;
    rn_err_t err = rn_log_read(log, offset, max_offset, max_bytes, &s);
    if (err != RN_OK)
        return err;
    if (s.len) {
        uint8_t *dst = rn_buf_extend(out, s.len);
        if (!dst)
            err = RN_ERR_NOMEM;
        else if (rn_io_pread_all(log->io, s.fd, dst, s.len, (off_t)s.pos) != (ssize_t)s.len)
            err = RN_ERR_IO;
        if (err != RN_OK && dst)
            out->len -= s.len;
    }
    rn_log_slice_release(&s);
    if (info)
        *info = s;
    return err;
}

/* First record with timestamp >= ts inside the batch at pos, if any. */
static rn_err_t first_in_batch(rn_seg_t *seg, uint64_t pos, const rn_batch_header_t *h,
                               int64_t ts, uint64_t *offset, bool *found)
{
    size_t total = rn_batch_total_size(h);
    uint8_t *data = malloc(total);
    if (!data)
        return RN_ERR_NOMEM;
    rn_err_t err = RN_OK;
    if (rn_io_pread_all(seg->io, seg->fd, data, total, (off_t)pos) != (ssize_t)total) {
        free(data);
        return RN_ERR_IO;
    }
    rn_batch_iter_t it;
    err = rn_batch_iter_init(&it, data, total, RN_BATCH_MAX_SIZE);
    rn_record_t rec;
    *found = false;
    while (err == RN_OK && (err = rn_batch_iter_next(&it, &rec)) == RN_OK) {
        if (rec.timestamp >= ts) {
            *offset = rec.offset;
            *found = true;
            break;
        }
    }
    if (err == RN_ERR_NOT_FOUND)
        err = RN_OK;
    rn_batch_iter_free(&it);
    free(data);
    return err == RN_OK ? RN_OK : RN_ERR_CORRUPT;
}

rn_err_t rn_log_offset_for_time(rn_log_t *log, int64_t ts, uint64_t *offset)
{
    for (uint32_t i = 0; i < log->nsegs; i++) {
        rn_seg_t *seg = log->segs[i];
        if (seg->max_timestamp < ts || seg->size == 0)
            continue;
        /* Every record before the start of the last entry with key < ts is earlier than ts. */
        uint64_t start = seg->base_offset;
        ptrdiff_t t = rn_idx_floor(seg->time_index, ts - 1);
        if (t >= 0)
            start = seg->base_offset + rn_idx_get(seg->time_index, (size_t)t).value;
        uint64_t pos;
        rn_batch_header_t h;
        rn_err_t err = rn_seg_find(seg, start, &pos, &h);
        while (err == RN_OK) {
            if (h.max_timestamp >= ts) {
                bool found;
                if ((err = first_in_batch(seg, pos, &h, ts, offset, &found)) != RN_OK)
                    return err;
                if (found)
                    return RN_OK;
            }
            pos += rn_batch_total_size(&h);
            if (pos >= seg->size)
                break;
            err = rn_seg_header_at(seg, pos, &h);
        }
        if (err != RN_OK && err != RN_ERR_NOT_FOUND)
            return err;
    }
    return RN_ERR_NOT_FOUND;
}

/* --------------------------------------------------------------------- flush ---- */

bool rn_log_flush_due(const rn_log_t *log)
{
    if (log->unflushed_records <= 0)
        return false;
    return log->unflushed_records >= log->cfg.flush_messages ||
           rn_clock_wall_ms(log->clock) - log->last_flush_ms >= log->cfg.flush_ms;
}

rn_err_t rn_log_sync_begin(rn_log_t *log, rn_log_sync_t **out)
{
    *out = NULL;
    if (log->sync_in_flight)
        return RN_ERR_STATE;
    if (log->failed != RN_OK)
        return log->failed;
    uint64_t end = rn_log_end_offset(log);
    if (end <= log->flushed_offset && !log->dir_dirty && log->unflushed_records == 0)
        return RN_OK;
    uint32_t from = rn_log__seg_for(log, log->flushed_offset);
    int max = (int)(log->nsegs - from) + 1;
    rn_log_sync_t *s = malloc(sizeof *s + (size_t)max * sizeof(int));
    if (!s)
        return RN_ERR_NOMEM;
    s->io = log->io;
    s->target = end;
    s->records = log->unflushed_records;
    s->nfds = 0;
    for (uint32_t i = from; i < log->nsegs; i++) {
        if ((s->fds[s->nfds] = fcntl(log->segs[i]->fd, F_DUPFD_CLOEXEC, 0)) < 0)
            goto fail;
        s->nfds++;
    }
    if (log->dir_dirty) {
        s->fds[s->nfds] = log->io->open(log->io->ctx, log->dir, O_RDONLY | O_DIRECTORY, 0);
        if (s->fds[s->nfds] < 0)
            goto fail;
        s->nfds++;
        log->dir_dirty = false;
    }
    log->sync_in_flight = true;
    *out = s;
    return RN_OK;
fail:
    for (int i = 0; i < s->nfds; i++)
        close(s->fds[i]);
    free(s);
    return RN_ERR_IO;
}

rn_err_t rn_log_sync_run(rn_log_sync_t *s)
{
    rn_err_t err = RN_OK;
    for (int i = 0; i < s->nfds; i++) {
        if (s->io->fdatasync(s->io->ctx, s->fds[i]) < 0)
            err = errno == ENOSPC ? RN_ERR_NO_SPACE : RN_ERR_IO;
    }
    return err;
}

uint64_t rn_log_sync_target(const rn_log_sync_t *s)
{
    return s->target;
}

rn_err_t rn_log_sync_end(rn_log_t *log, rn_log_sync_t *s, rn_err_t run_result)
{
    for (int i = 0; i < s->nfds; i++)
        close(s->fds[i]);
    log->sync_in_flight = false;
    if (run_result != RN_OK) {
        log->failed = run_result;
        free(s);
        return run_result;
    }
    /* A truncation while the sync ran may have lowered the end below the target. */
    uint64_t target = s->target < rn_log_end_offset(log) ? s->target : rn_log_end_offset(log);
    if (target > log->flushed_offset)
        log->flushed_offset = target;
    log->unflushed_records -= s->records;
    if (log->unflushed_records < 0)
        log->unflushed_records = 0;
    log->last_flush_ms = rn_clock_wall_ms(log->clock);
    rp_write(log, log->flushed_offset);
    free(s);
    return RN_OK;
}

rn_err_t rn_log_flush(rn_log_t *log)
{
    rn_log_sync_t *s;
    rn_err_t err = rn_log_sync_begin(log, &s);
    if (err != RN_OK || !s)
        return err;
    err = rn_log_sync_run(s);
    return rn_log_sync_end(log, s, err);
}

/* ------------------------------------------------------ truncate and retention ---- */

rn_err_t rn_log_truncate(rn_log_t *log, uint64_t offset)
{
    if (offset >= rn_log_end_offset(log))
        return rn_lep_persist(log->epochs); /* a retry after a failed checkpoint write */
    if (offset < rn_log_start_offset(log))
        offset = rn_log_start_offset(log);
    uint32_t i = rn_log__seg_for(log, offset);
    rn_err_t err = drop_segments_from(log, i + 1);
    if (err != RN_OK)
        return err;
    rn_seg_t *seg = log->segs[i];
    uint64_t pos;
    rn_batch_header_t h;
    err = rn_seg_find(seg, offset, &pos, &h);
    if (err == RN_OK)
        err = rn_seg_truncate(seg, pos, h.base_offset);
    else if (err == RN_ERR_NOT_FOUND)
        err = RN_OK;
    if (err != RN_OK) {
        log->failed = err;
        return err;
    }
    if (log->flushed_offset > seg->next_offset) {
        log->flushed_offset = seg->next_offset;
        rp_write(log, log->flushed_offset);
    }
    /* After the data: a crash in between leaves a file that still describes the old suffix. */
    rn_lep_truncate_from_end(log->epochs, seg->next_offset);
    return rn_lep_persist(log->epochs);
}

static void delete_oldest(rn_log_t *log)
{
    rn_seg_t *seg = log->segs[0];
    memmove(log->segs, log->segs + 1, (log->nsegs - 1) * sizeof *log->segs);
    log->nsegs--;
    rn_seg_delete(seg);
    log->dir_dirty = true;
}

rn_err_t rn_log_apply_retention(rn_log_t *log, uint32_t *deleted)
{
    *deleted = 0;
    int64_t now = rn_clock_wall_ms(log->clock);
    while (log->nsegs > 1 && log->cfg.retention_ms >= 0) {
        int64_t max_ts = log->segs[0]->max_timestamp;
        if (max_ts < 0 || now - max_ts <= log->cfg.retention_ms)
            break;
        delete_oldest(log);
        (*deleted)++;
    }
    while (log->nsegs > 1 && log->cfg.retention_bytes >= 0 &&
           rn_log_size_bytes(log) - log->segs[0]->size >= (uint64_t)log->cfg.retention_bytes) {
        delete_oldest(log);
        (*deleted)++;
    }
    /*
     * Entries below the new start are harmless on disk (open drops them again), so a failed
     * write here is not retention's failure: the dirty cache is written before the next append.
     */
    if (rn_lep_truncate_from_start(log->epochs, rn_log_start_offset(log)))
        (void)rn_lep_persist(log->epochs);
    return RN_OK;
}

/* ----------------------------------------------------------------- accessors ---- */

rn_err_t rn_log_reset(rn_log_t *log, uint64_t start)
{
    if (start <= rn_log_end_offset(log))
        return RN_ERR_INVALID_ARG;
    /* The new segment first, so the log is never without one. A crash before the old ones
     * are deleted leaves a gap, and recovery drops what follows a gap (the new, empty
     * segment): the log is back as it was, and the follower resets again. */
    rn_seg_t *seg = NULL;
    rn_err_t err = rn_seg_create(log->dir, start, log->cfg.index_interval_bytes,
                                 log->cfg.segment_index_bytes, log->io, &seg);
    if (err == RN_OK && (err = push_seg(log, seg)) != RN_OK)
        rn_seg_delete(seg);
    if (err != RN_OK)
        return err; /* nothing changed */
    for (uint32_t i = 0; i + 1 < log->nsegs; i++)
        if (rn_seg_delete(log->segs[i]) != RN_OK)
            err = RN_ERR_IO;
    log->segs[0] = log->segs[log->nsegs - 1];
    log->nsegs = 1;
    seg->first_append_ms = rn_clock_wall_ms(log->clock);
    log->dir_dirty = true;
    log->flushed_offset = start;
    rp_write(log, start);
    rn_lep_clear(log->epochs);
    rn_err_t perr = rn_lep_persist(log->epochs);
    if (err != RN_OK) {
        log->failed = err; /* an old segment file could not be removed */
        return err;
    }
    return perr;
}

uint64_t rn_log_start_offset(const rn_log_t *log)
{
    return log->segs[0]->base_offset;
}

uint64_t rn_log_end_offset(const rn_log_t *log)
{
    return rn_log__active(log)->next_offset;
}

uint64_t rn_log_flushed_offset(const rn_log_t *log)
{
    return log->flushed_offset;
}

uint64_t rn_log_size_bytes(const rn_log_t *log)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < log->nsegs; i++)
        total += log->segs[i]->size;
    return total;
}

uint32_t rn_log_segment_count(const rn_log_t *log)
{
    return log->nsegs;
}

const char *rn_log_dir(const rn_log_t *log)
{
    return log->dir;
}
