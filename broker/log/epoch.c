/* epoch.c - the leader-epoch cache and its checkpoint file (format in epoch.h). */
#include "epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "varint.h"

#define LEP_MAGIC 0x454c4e52u /* "RNLE" */
#define LEP_VERSION 1
#define LEP_HEADER 16
#define LEP_ENTRY 16
#define LEP_TRAILER 8
/* More epochs than any partition lives through; bounds what a damaged count can make us read. */
#define LEP_MAX_ENTRIES (1u << 20)

struct rn_lep {
    char *path;      /* DIR/leader-epoch-checkpoint */
    char *tmp_path;  /* DIR/leader-epoch-checkpoint.tmp */
    char *dir;
    const rn_io_t *io;
    rn_lep_entry_t *entries;
    size_t count;
    size_t cap;
    bool dirty;
};

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

rn_err_t rn_lep_new(const char *dir, const rn_io_t *io, rn_lep_t **out)
{
    rn_lep_t *c = calloc(1, sizeof *c);
    if (!c)
        return RN_ERR_NOMEM;
    c->io = io;
    if (!(c->dir = strdup(dir)) || !(c->path = join(dir, RN_LEP_FILE)) ||
        !(c->tmp_path = join(dir, RN_LEP_FILE ".tmp"))) {
        rn_lep_free(c);
        return RN_ERR_NOMEM;
    }
    *out = c;
    return RN_OK;
}

void rn_lep_free(rn_lep_t *c)
{
    if (!c)
        return;
    free(c->entries);
    free(c->path);
    free(c->tmp_path);
    free(c->dir);
    free(c);
}

static rn_err_t reserve(rn_lep_t *c, size_t n)
{
    if (n <= c->cap)
        return RN_OK;
    size_t cap = c->cap ? c->cap : 8;
    while (cap < n)
        cap *= 2;
    rn_lep_entry_t *p = realloc(c->entries, cap * sizeof *p);
    if (!p)
        return RN_ERR_NOMEM;
    c->entries = p;
    c->cap = cap;
    return RN_OK;
}

/* ---------------------------------------------------------------- the file ---- */

static rn_err_t io_err(void)
{
    return errno == ENOSPC || errno == EDQUOT || errno == EFBIG ? RN_ERR_NO_SPACE : RN_ERR_IO;
}

/* Checks the image of a whole file and fills the cache from it. */
static rn_err_t decode(rn_lep_t *c, const uint8_t *b, size_t len)
{
    if (len < LEP_HEADER + LEP_TRAILER || rn_le_get32(b) != LEP_MAGIC ||
        rn_le_get32(b + 4) != LEP_VERSION)
        return RN_ERR_CORRUPT;
    uint32_t n = rn_le_get32(b + 8);
    if (n > LEP_MAX_ENTRIES || len != LEP_HEADER + (size_t)n * LEP_ENTRY + LEP_TRAILER ||
        rn_le_get64(b + len - LEP_TRAILER) != XXH3_64bits(b, len - LEP_TRAILER))
        return RN_ERR_CORRUPT;
    if (reserve(c, n) != RN_OK)
        return RN_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + LEP_HEADER + (size_t)i * LEP_ENTRY;
        rn_lep_entry_t entry = {rn_le_get32(e), rn_le_get64(e + 8)};
        if (i > 0 && (entry.epoch <= c->entries[i - 1].epoch ||
                      entry.start_offset <= c->entries[i - 1].start_offset))
            return RN_ERR_CORRUPT;
        c->entries[i] = entry;
    }
    c->count = n;
    return RN_OK;
}

rn_err_t rn_lep_load(rn_lep_t *c)
{
    c->count = 0;
    c->dirty = false;
    int fd = c->io->open(c->io->ctx, c->path, O_RDONLY, 0);
    if (fd < 0)
        return errno == ENOENT ? RN_ERR_NOT_FOUND : RN_ERR_IO;
    /* Read one byte more than the largest valid file, so an oversized one is seen as such. */
    size_t max = LEP_HEADER + (size_t)LEP_MAX_ENTRIES * LEP_ENTRY + LEP_TRAILER + 1;
    rn_err_t err = RN_OK;
    size_t cap = 4096, len = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        ssize_t n = rn_io_pread_all(c->io, fd, b + len, cap - len, (off_t)len);
        if (n < 0) {
            err = RN_ERR_IO;
            break;
        }
        len += (size_t)n;
        if (len < cap || cap >= max)
            break;
        uint8_t *p = realloc(b, cap * 2);
        if (!p) {
            free(b);
            b = NULL;
            break;
        }
        b = p;
        cap *= 2;
    }
    c->io->close(c->io->ctx, fd);
    if (!b)
        return RN_ERR_NOMEM;
    if (err == RN_OK)
        err = decode(c, b, len);
    free(b);
    if (err != RN_OK)
        c->count = 0;
    return err;
}

/*
 * The write order makes the rename the commit point: before it the old file is the one that
 * counts, after it the new one is complete and synced. The directory fsync makes the rename
 * itself survive a power loss; if it fails the file may still be the old one after a crash, so
 * the cache stays dirty and the caller hears about it.
 */
rn_err_t rn_lep_persist(rn_lep_t *c)
{
    if (!c->dirty)
        return RN_OK;
    size_t len = LEP_HEADER + c->count * LEP_ENTRY + LEP_TRAILER;
    uint8_t *b = calloc(1, len);
    if (!b)
        return RN_ERR_NOMEM;
    rn_le_put32(b, LEP_MAGIC);
    rn_le_put32(b + 4, LEP_VERSION);
    rn_le_put32(b + 8, (uint32_t)c->count);
    for (size_t i = 0; i < c->count; i++) {
        uint8_t *e = b + LEP_HEADER + i * LEP_ENTRY;
        rn_le_put32(e, c->entries[i].epoch);
        rn_le_put64(e + 8, c->entries[i].start_offset);
    }
    rn_le_put64(b + len - LEP_TRAILER, XXH3_64bits(b, len - LEP_TRAILER));

    const rn_io_t *io = c->io;
    rn_err_t err = RN_OK;
    int fd = io->open(io->ctx, c->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        err = io_err();
        free(b);
        return err;
    }
    if (rn_io_pwrite_all(io, fd, b, len, 0) < 0 || io->fdatasync(io->ctx, fd) < 0)
        err = io_err();
    if (io->close(io->ctx, fd) < 0 && err == RN_OK)
        err = io_err();
    free(b);
    if (err == RN_OK && io->rename(io->ctx, c->tmp_path, c->path) < 0)
        err = io_err();
    if (err != RN_OK) {
        io->unlink(io->ctx, c->tmp_path);
        return err;
    }
    if (rn_io_sync_dir(io, c->dir) < 0)
        return io_err();
    c->dirty = false;
    return RN_OK;
}

bool rn_lep_dirty(const rn_lep_t *c)
{
    return c->dirty;
}

/* ------------------------------------------------------------------ entries ---- */

size_t rn_lep_count(const rn_lep_t *c)
{
    return c->count;
}

rn_lep_entry_t rn_lep_get(const rn_lep_t *c, size_t i)
{
    return c->entries[i];
}

bool rn_lep_latest(const rn_lep_t *c, rn_lep_entry_t *out)
{
    if (c->count == 0)
        return false;
    *out = c->entries[c->count - 1];
    return true;
}

/* Number of entries that start before offset (the rest start at or after it). */
static size_t count_before(const rn_lep_t *c, uint64_t offset)
{
    size_t n = c->count;
    while (n > 0 && c->entries[n - 1].start_offset >= offset)
        n--;
    return n;
}

rn_err_t rn_lep_assign(rn_lep_t *c, uint32_t epoch, uint64_t start_offset)
{
    size_t keep = count_before(c, start_offset);
    if (keep > 0 && c->entries[keep - 1].epoch > epoch)
        return RN_ERR_STATE;
    bool continues = keep > 0 && c->entries[keep - 1].epoch == epoch;
    if (keep == c->count && continues)
        return RN_OK;
    if (!continues && reserve(c, keep + 1) != RN_OK)
        return RN_ERR_NOMEM;
    c->count = keep;
    if (!continues)
        c->entries[c->count++] = (rn_lep_entry_t){epoch, start_offset};
    c->dirty = true;
    return RN_OK;
}

void rn_lep_assign_lenient(rn_lep_t *c, uint32_t epoch, uint64_t start_offset)
{
    while (c->count > 0 && c->entries[c->count - 1].epoch > epoch) {
        c->count--;
        c->dirty = true;
    }
    /* Out of memory leaves the epoch unrecorded; lookups then err on the side of truncating. */
    (void)rn_lep_assign(c, epoch, start_offset);
}

rn_err_t rn_lep_assign_durably(rn_lep_t *c, const rn_lep_entry_t *entries, size_t n)
{
    size_t saved_count = c->count;
    bool saved_dirty = c->dirty;
    rn_lep_entry_t *saved = malloc((c->count + 1) * sizeof *saved);
    if (!saved)
        return RN_ERR_NOMEM;
    if (c->count)
        memcpy(saved, c->entries, c->count * sizeof *saved);
    rn_err_t err = RN_OK;
    for (size_t i = 0; i < n && err == RN_OK; i++)
        err = rn_lep_assign(c, entries[i].epoch, entries[i].start_offset);
    bool wrote = false;
    if (err == RN_OK) {
        wrote = c->dirty;
        err = rn_lep_persist(c);
    }
    if (err != RN_OK) {
        /* Restoring never grows the array past a size it had. */
        if (saved_count)
            memcpy(c->entries, saved, saved_count * sizeof *saved);
        c->count = saved_count;
        /* A failure after the rename (the directory fsync) left the new file in place. */
        c->dirty = saved_dirty || wrote;
    }
    free(saved);
    return err;
}

bool rn_lep_truncate_from_end(rn_lep_t *c, uint64_t end_offset)
{
    size_t keep = count_before(c, end_offset);
    if (keep == c->count)
        return false;
    c->count = keep;
    c->dirty = true;
    return true;
}

bool rn_lep_truncate_from_start(rn_lep_t *c, uint64_t start_offset)
{
    /* The last entry that starts at or before start_offset still covers it: keep that one. */
    size_t first = 0;
    while (first + 1 < c->count && c->entries[first + 1].start_offset <= start_offset)
        first++;
    if (c->count == 0 || (first == 0 && c->entries[0].start_offset >= start_offset))
        return false;
    memmove(c->entries, c->entries + first, (c->count - first) * sizeof *c->entries);
    c->count -= first;
    if (c->entries[0].start_offset < start_offset)
        c->entries[0].start_offset = start_offset;
    c->dirty = true;
    return true;
}

void rn_lep_clear(rn_lep_t *c)
{
    if (c->count)
        c->dirty = true;
    c->count = 0;
}

/* --------------------------------------------------- OffsetForLeaderEpoch ---- */

rn_err_t rn_lep_end_offset_for(const rn_lep_t *c, uint32_t requested, uint64_t log_end,
                               rn_lep_answer_t *out)
{
    /* Binary search for the last entry with epoch <= requested. */
    size_t lo = 0, hi = c->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->entries[mid].epoch <= requested)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return RN_ERR_NOT_FOUND;
    out->epoch = c->entries[lo - 1].epoch;
    out->end_offset = lo < c->count ? c->entries[lo].start_offset : log_end;
    return RN_OK;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t rn_lep_truncation_point(const rn_lep_t *c, uint64_t log_end,
                                 const rn_lep_answer_t *leader, bool *done)
{
    rn_lep_answer_t own;
    uint64_t to = min64(leader->end_offset, log_end);
    if (rn_lep_end_offset_for(c, leader->epoch, log_end, &own) != RN_OK) {
        *done = true;
        return to;
    }
    *done = own.epoch == leader->epoch;
    return min64(to, own.end_offset);
}
