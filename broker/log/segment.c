#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCAN_CHUNK (1u << 20)

char *rn_seg_path(const char *dir, uint64_t base_offset, const char *ext)
{
    size_t n = strlen(dir) + 1 + RN_SEG_NAME_DIGITS + strlen(ext) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%020" PRIu64 "%s", dir, base_offset, ext);
    return p;
}

static char *with_ext(const rn_seg_t *seg, const char *ext)
{
    size_t n = strlen(seg->path_base) + strlen(ext) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s", seg->path_base, ext);
    return p;
}

static rn_err_t errno_err(void)
{
    return errno == ENOSPC || errno == EDQUOT || errno == EFBIG ? RN_ERR_NO_SPACE : RN_ERR_IO;
}

static rn_err_t seg_init(const char *dir, uint64_t base_offset, uint32_t index_interval,
                         size_t index_max_bytes, const rn_io_t *io, bool create, rn_seg_t **out)
{
    rn_seg_t *seg = calloc(1, sizeof *seg);
    if (!seg)
        return RN_ERR_NOMEM;
    seg->base_offset = seg->next_offset = base_offset;
    seg->max_timestamp = -1;
    seg->first_append_ms = -1;
    seg->index_interval = index_interval;
    seg->io = io;
    seg->fd = -1;
    rn_err_t err = RN_ERR_NOMEM;
    char *log_path = NULL, *idx_path = NULL, *tidx_path = NULL;
    seg->path_base = rn_seg_path(dir, base_offset, "");
    if (!seg->path_base || !(log_path = with_ext(seg, ".log")) ||
        !(idx_path = with_ext(seg, ".index")) || !(tidx_path = with_ext(seg, ".timeindex")))
        goto fail;
    int flags = O_RDWR | (create ? O_CREAT | O_EXCL : 0);
    seg->fd = io->open(io->ctx, log_path, flags, 0644);
    if (seg->fd < 0) {
        err = errno == EEXIST ? RN_ERR_EXISTS : errno == ENOENT ? RN_ERR_NOT_FOUND : errno_err();
        goto fail;
    }
    if (create) {
        /* Stale index files of a segment that was truncated away must not be reused. */
        io->unlink(io->ctx, idx_path);
        io->unlink(io->ctx, tidx_path);
    }
    struct stat st;
    if (fstat(seg->fd, &st) < 0) {
        err = RN_ERR_IO;
        goto fail;
    }
    seg->size = (uint64_t)st.st_size;
    if ((err = rn_idx_open(idx_path, index_max_bytes, &seg->offset_index)) != RN_OK ||
        (err = rn_idx_open(tidx_path, index_max_bytes, &seg->time_index)) != RN_OK)
        goto fail;
    free(log_path);
    free(idx_path);
    free(tidx_path);
    *out = seg;
    return RN_OK;
fail:
    free(log_path);
    free(idx_path);
    free(tidx_path);
    rn_seg_close(seg, false);
    return err;
}

rn_err_t rn_seg_create(const char *dir, uint64_t base_offset, uint32_t index_interval,
                       size_t index_max_bytes, const rn_io_t *io, rn_seg_t **out)
{
    return seg_init(dir, base_offset, index_interval, index_max_bytes, io, true, out);
}

rn_err_t rn_seg_open(const char *dir, uint64_t base_offset, uint32_t index_interval,
                     size_t index_max_bytes, const rn_io_t *io, rn_seg_t **out)
{
    return seg_init(dir, base_offset, index_interval, index_max_bytes, io, false, out);
}

rn_err_t rn_seg_close(rn_seg_t *seg, bool trim)
{
    if (!seg)
        return RN_OK;
    rn_err_t err = RN_OK;
    if (rn_idx_close(seg->offset_index, trim) != RN_OK)
        err = RN_ERR_IO;
    if (rn_idx_close(seg->time_index, trim) != RN_OK)
        err = RN_ERR_IO;
    if (seg->fd >= 0 && seg->io->close(seg->io->ctx, seg->fd) < 0)
        err = RN_ERR_IO;
    free(seg->path_base);
    free(seg);
    return err;
}

rn_err_t rn_seg_delete(rn_seg_t *seg)
{
    static const char *exts[] = {".log", ".index", ".timeindex"};
    char *paths[3] = {0};
    for (int i = 0; i < 3; i++)
        paths[i] = with_ext(seg, exts[i]);
    const rn_io_t *io = seg->io;
    rn_err_t err = rn_seg_close(seg, false);
    for (int i = 0; i < 3; i++) {
        if (paths[i] && io->unlink(io->ctx, paths[i]) < 0 && errno != ENOENT)
            err = RN_ERR_IO;
        free(paths[i]);
    }
    return err;
}

/* Index maintenance shared by append and recovery; runs before the batch is accounted. */
static rn_err_t index_before(rn_seg_t *seg, const rn_batch_header_t *h, uint64_t pos)
{
    if (seg->bytes_since_index < seg->index_interval || pos == 0)
        return RN_OK;
    rn_err_t err = rn_idx_append(seg->offset_index, (int64_t)h->base_offset, (uint32_t)pos);
    if (err != RN_OK)
        return err;
    seg->bytes_since_index = 0;
    size_t n = rn_idx_count(seg->time_index);
    int64_t last_ts = n ? rn_idx_get(seg->time_index, n - 1).key : INT64_MIN;
    if (seg->max_timestamp > last_ts && !rn_idx_full(seg->time_index))
        rn_idx_append(seg->time_index, seg->max_timestamp,
                      (uint32_t)(h->base_offset - seg->base_offset));
    return RN_OK;
}

static void account(rn_seg_t *seg, const rn_batch_header_t *h)
{
    size_t total = rn_batch_total_size(h);
    seg->size += total;
    seg->bytes_since_index += (uint32_t)total;
    seg->next_offset = rn_batch_last_offset(h) + 1;
    if (h->max_timestamp > seg->max_timestamp)
        seg->max_timestamp = h->max_timestamp;
}

rn_err_t rn_seg_append_span(rn_seg_t *seg, const uint8_t *batches, size_t len)
{
    if (rn_idx_full(seg->offset_index) || seg->size + len > UINT32_MAX)
        return RN_ERR_STATE;
    if (rn_io_pwrite_all(seg->io, seg->fd, batches, len, (off_t)seg->size) < 0) {
        rn_err_t err = errno_err();
        /* Leave no partial batch behind; if even that fails, recovery will cut it. */
        seg->io->ftruncate(seg->io->ctx, seg->fd, (off_t)seg->size);
        return err;
    }
    for (size_t pos = 0; pos < len;) {
        rn_batch_header_t h;
        rn_batch_parse_header(batches + pos, len - pos, &h);
        rn_err_t err = index_before(seg, &h, seg->size);
        if (err != RN_OK && err != RN_ERR_STATE)
            return err;
        account(seg, &h);
        pos += rn_batch_total_size(&h);
    }
    return RN_OK;
}

rn_err_t rn_seg_append(rn_seg_t *seg, const uint8_t *batch, const rn_batch_header_t *h)
{
    return rn_seg_append_span(seg, batch, rn_batch_total_size(h));
}

rn_err_t rn_seg_scan(rn_seg_t *seg, uint64_t pos, bool verify, rn_seg_scan_cb cb, void *ctx,
                     rn_seg_scan_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->end_pos = pos;
    struct stat st;
    if (fstat(seg->fd, &st) < 0)
        return RN_ERR_IO;
    uint64_t file_end = (uint64_t)st.st_size;
    rn_buf_t buf = RN_BUF_INIT;
    uint64_t buf_pos = pos; /* file position of buf.data[0] */
    size_t used = 0;        /* bytes of buf consumed */
    uint64_t prev_next = 0;
    rn_err_t err = RN_OK;

    while (pos < file_end) {
        size_t avail = buf.len - used;
        rn_batch_header_t h;
        rn_err_t perr = rn_batch_parse_header(buf.data + used, avail, &h);
        if (perr == RN_ERR_TRUNCATED && buf_pos + buf.len < file_end) {
            /* Refill: keep the unconsumed tail, read at least a chunk or the whole batch. */
            size_t want = SCAN_CHUNK;
            if (avail >= RN_BATCH_HEADER_SIZE && rn_batch_total_size(&h) > want)
                want = rn_batch_total_size(&h);
            if (used > 0) /* nothing to move otherwise, and data is still NULL on the first read */
                memmove(buf.data, buf.data + used, avail);
            buf.len = avail;
            buf_pos += used;
            used = 0;
            if (rn_buf_reserve(&buf, want) != RN_OK) {
                err = RN_ERR_NOMEM;
                break;
            }
            ssize_t n = rn_io_pread_all(seg->io, seg->fd, buf.data + buf.len, want,
                                        (off_t)(buf_pos + buf.len));
            if (n < 0) {
                err = RN_ERR_IO;
                break;
            }
            buf.len += (size_t)n;
            res->bytes_read += (uint64_t)n;
            if (n == 0)
                file_end = buf_pos + buf.len;
            continue;
        }
        if (perr == RN_OK && verify) {
            perr = rn_batch_validate(buf.data + used, avail, &h);
            if (perr == RN_OK && (h.base_offset < prev_next || h.base_offset < seg->base_offset))
                perr = RN_ERR_CORRUPT;
        }
        if (perr != RN_OK) {
            res->stop = perr;
            break;
        }
        if (cb && !cb(ctx, &h, pos, buf.data + used)) {
            res->stopped_by_cb = true;
            break;
        }
        prev_next = rn_batch_last_offset(&h) + 1;
        used += rn_batch_total_size(&h);
        pos += rn_batch_total_size(&h);
        res->end_pos = pos;
    }
    rn_buf_free(&buf);
    return err;
}

/* Start of the batch that follows the last index entry at or below the limit. */
static void index_start(rn_seg_t *seg, uint64_t max_offset, uint64_t *pos, uint64_t *offset)
{
    ptrdiff_t i = rn_idx_floor(seg->offset_index, (int64_t)max_offset);
    *pos = 0;
    *offset = seg->base_offset;
    if (i >= 0) {
        rn_idx_entry_t e = rn_idx_get(seg->offset_index, (size_t)i);
        *pos = e.value;
        *offset = (uint64_t)e.key;
    }
}

struct recover_ctx {
    rn_seg_t *seg;
    rn_err_t err;
};

static bool recover_cb(void *ctx, const rn_batch_header_t *h, uint64_t pos, const uint8_t *data)
{
    (void)data;
    struct recover_ctx *rc = ctx;
    rn_err_t err = index_before(rc->seg, h, pos);
    if (err != RN_OK && err != RN_ERR_STATE) {
        rc->err = err;
        return false;
    }
    account(rc->seg, h);
    return true;
}

/* Drops the time entries that speak of records at or after offset. */
static void cut_time_index(rn_seg_t *seg, uint64_t offset)
{
    size_t t = rn_idx_count(seg->time_index);
    while (t > 0 && seg->base_offset + rn_idx_get(seg->time_index, t - 1).value > offset)
        t--;
    rn_idx_truncate(seg->time_index, t);
}

/* Drops index entries at or after the batch at (pos, offset), keeping earlier ones valid. */
static void cut_indexes(rn_seg_t *seg, uint64_t pos, uint64_t offset)
{
    size_t n = rn_idx_count(seg->offset_index);
    while (n > 0) {
        rn_idx_entry_t e = rn_idx_get(seg->offset_index, n - 1);
        if (e.value < pos && (uint64_t)e.key < offset)
            break;
        n--;
    }
    rn_idx_truncate(seg->offset_index, n);
    cut_time_index(seg, offset);
}

rn_err_t rn_seg_recover(rn_seg_t *seg, uint64_t from_offset, uint64_t *bytes_scanned,
                        uint64_t *truncated_bytes)
{
    struct stat st;
    if (fstat(seg->fd, &st) < 0)
        return RN_ERR_IO;
    uint64_t file_size = (uint64_t)st.st_size;
    /* The restart point is an index entry (or 0) at or below from_offset inside the file. */
    uint64_t start_pos = 0, start_offset = seg->base_offset;
    size_t n = rn_idx_count(seg->offset_index);
    while (n > 0) {
        rn_idx_entry_t e = rn_idx_get(seg->offset_index, n - 1);
        if ((uint64_t)e.key <= from_offset && e.value < file_size &&
            (uint64_t)e.key >= seg->base_offset) {
            start_pos = e.value;
            start_offset = (uint64_t)e.key;
            break;
        }
        n--;
    }
    rn_idx_truncate(seg->offset_index, n);
    cut_time_index(seg, start_offset);
    size_t t = rn_idx_count(seg->time_index);
    seg->max_timestamp = t ? rn_idx_get(seg->time_index, t - 1).key : -1;
    seg->size = start_pos;
    seg->next_offset = start_offset;
    seg->bytes_since_index = 0;

    struct recover_ctx rc = {seg, RN_OK};
    rn_seg_scan_result_t res;
    rn_err_t err = rn_seg_scan(seg, start_pos, true, recover_cb, &rc, &res);
    if (err == RN_OK)
        err = rc.err;
    if (err != RN_OK)
        return err;
    *bytes_scanned = res.bytes_read;
    *truncated_bytes = file_size - seg->size;
    if (seg->size < file_size &&
        seg->io->ftruncate(seg->io->ctx, seg->fd, (off_t)seg->size) < 0)
        return errno_err();
    return RN_OK;
}

static bool tail_cb(void *ctx, const rn_batch_header_t *h, uint64_t pos, const uint8_t *data)
{
    (void)pos;
    (void)data;
    rn_seg_t *seg = ctx;
    seg->next_offset = rn_batch_last_offset(h) + 1;
    if (h->max_timestamp > seg->max_timestamp)
        seg->max_timestamp = h->max_timestamp;
    seg->bytes_since_index += (uint32_t)rn_batch_total_size(h);
    return true;
}

rn_err_t rn_seg_load_tail(rn_seg_t *seg)
{
    uint64_t pos, offset;
    index_start(seg, INT64_MAX, &pos, &offset);
    size_t t = rn_idx_count(seg->time_index);
    seg->max_timestamp = t ? rn_idx_get(seg->time_index, t - 1).key : -1;
    seg->next_offset = offset;
    seg->bytes_since_index = 0;
    rn_seg_scan_result_t res;
    rn_err_t err = rn_seg_scan(seg, pos, false, tail_cb, seg, &res);
    if (err != RN_OK)
        return err;
    if (res.stop != RN_OK || res.end_pos != seg->size)
        return RN_ERR_CORRUPT;
    return RN_OK;
}

rn_err_t rn_seg_header_at(rn_seg_t *seg, uint64_t pos, rn_batch_header_t *h)
{
    uint8_t hdr[RN_BATCH_HEADER_SIZE];
    if (pos + RN_BATCH_HEADER_SIZE > seg->size)
        return RN_ERR_CORRUPT;
    ssize_t n = rn_io_pread_all(seg->io, seg->fd, hdr, sizeof hdr, (off_t)pos);
    if (n < 0)
        return RN_ERR_IO;
    if ((size_t)n < sizeof hdr)
        return RN_ERR_CORRUPT;
    /* Only the header is in hand: parse it as if the whole batch were. */
    rn_err_t err = rn_batch_parse_header(hdr, SIZE_MAX, h);
    if (err != RN_OK || pos + rn_batch_total_size(h) > seg->size)
        return RN_ERR_CORRUPT;
    return RN_OK;
}

rn_err_t rn_seg_find(rn_seg_t *seg, uint64_t offset, uint64_t *pos, rn_batch_header_t *h)
{
    if (offset >= seg->next_offset)
        return RN_ERR_NOT_FOUND;
    uint64_t p, start_offset;
    index_start(seg, offset, &p, &start_offset);
    /* At most index.interval.bytes of batches lie between an index entry and the target. */
    while (p < seg->size) {
        rn_err_t err = rn_seg_header_at(seg, p, h);
        if (err != RN_OK)
            return err;
        if (rn_batch_last_offset(h) >= offset) {
            *pos = p;
            return RN_OK;
        }
        p += rn_batch_total_size(h);
    }
    return RN_ERR_NOT_FOUND;
}

rn_err_t rn_seg_truncate(rn_seg_t *seg, uint64_t pos, uint64_t offset)
{
    if (pos > seg->size)
        return RN_ERR_INVALID_ARG;
    if (seg->io->ftruncate(seg->io->ctx, seg->fd, (off_t)pos) < 0)
        return errno_err();
    cut_indexes(seg, pos, offset);
    /* Recompute what the cut removed: the tail after the last kept entry is rescanned. */
    seg->size = pos;
    uint64_t scanned, cut;
    return rn_seg_recover(seg, offset, &scanned, &cut);
}

rn_err_t rn_seg_seal(rn_seg_t *seg)
{
    size_t t = rn_idx_count(seg->time_index);
    int64_t last_ts = t ? rn_idx_get(seg->time_index, t - 1).key : INT64_MIN;
    if (seg->max_timestamp > last_ts && seg->next_offset > seg->base_offset &&
        !rn_idx_full(seg->time_index))
        rn_idx_append(seg->time_index, seg->max_timestamp,
                      (uint32_t)(seg->next_offset - seg->base_offset));
    if (rn_idx_sync(seg->offset_index) != RN_OK || rn_idx_sync(seg->time_index) != RN_OK)
        return RN_ERR_IO;
    return RN_OK;
}
