#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "varint.h"

struct rn_idx {
    int fd;
    uint8_t *map;
    size_t max_entries;
    size_t count;
};

static rn_idx_entry_t entry_at(const uint8_t *map, size_t i)
{
    const uint8_t *p = map + i * RN_IDX_ENTRY_SIZE;
    rn_idx_entry_t e = {(int64_t)rn_le_get64(p), rn_le_get32(p + 8)};
    return e;
}

/* Counts the leading entries whose key and value both strictly increase. */
static size_t valid_prefix(const uint8_t *map, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        rn_idx_entry_t prev = entry_at(map, i - 1), cur = entry_at(map, i);
        if (cur.key <= prev.key || cur.value <= prev.value)
            return i;
    }
    return n;
}

rn_err_t rn_idx_open(const char *path, size_t max_bytes, rn_idx_t **out)
{
    size_t max_entries = max_bytes / RN_IDX_ENTRY_SIZE;
    if (max_entries < 2)
        return RN_ERR_INVALID_ARG;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return RN_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail;
    size_t existing = (size_t)st.st_size / RN_IDX_ENTRY_SIZE;
    if (existing > max_entries)
        existing = max_entries;
    if (ftruncate(fd, (off_t)(max_entries * RN_IDX_ENTRY_SIZE)) < 0)
        goto fail;
    uint8_t *map = mmap(NULL, max_entries * RN_IDX_ENTRY_SIZE, PROT_READ | PROT_WRITE,
                        MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    rn_idx_t *idx = calloc(1, sizeof *idx);
    if (!idx) {
        munmap(map, max_entries * RN_IDX_ENTRY_SIZE);
        close(fd);
        return RN_ERR_NOMEM;
    }
    idx->fd = fd;
    idx->map = map;
    idx->max_entries = max_entries;
    idx->count = valid_prefix(map, existing);
    /* An all-zero first slot is what a preallocated file holds before any append. */
    if (idx->count == 1 && entry_at(map, 0).key == 0 && entry_at(map, 0).value == 0)
        idx->count = 0;
    /*
     * Whatever lies past the accepted prefix is stale (a later page of a crashed run that
     * reached the disk when an earlier one did not). Left there, new appends could join up
     * with it and a later open would accept entries that no longer point at batches. Cutting
     * the file back and growing it again zeroes that tail without touching its pages.
     */
    if (idx->count < existing &&
        (ftruncate(fd, (off_t)(idx->count * RN_IDX_ENTRY_SIZE)) < 0 ||
         ftruncate(fd, (off_t)(max_entries * RN_IDX_ENTRY_SIZE)) < 0)) {
        rn_err_t err = errno == ENOSPC ? RN_ERR_NO_SPACE : RN_ERR_IO;
        munmap(map, max_entries * RN_IDX_ENTRY_SIZE);
        close(fd);
        free(idx);
        return err;
    }
    *out = idx;
    return RN_OK;
fail:
    close(fd);
    return errno == ENOSPC ? RN_ERR_NO_SPACE : RN_ERR_IO;
}

rn_err_t rn_idx_close(rn_idx_t *idx, bool trim)
{
    if (!idx)
        return RN_OK;
    rn_err_t err = RN_OK;
    munmap(idx->map, idx->max_entries * RN_IDX_ENTRY_SIZE);
    if (trim && ftruncate(idx->fd, (off_t)(idx->count * RN_IDX_ENTRY_SIZE)) < 0)
        err = RN_ERR_IO;
    close(idx->fd);
    free(idx);
    return err;
}

rn_err_t rn_idx_sync(rn_idx_t *idx)
{
    size_t len = idx->count * RN_IDX_ENTRY_SIZE;
    if (len && msync(idx->map, len, MS_SYNC) < 0)
        return RN_ERR_IO;
    return RN_OK;
}

size_t rn_idx_count(const rn_idx_t *idx)
{
    return idx->count;
}

bool rn_idx_full(const rn_idx_t *idx)
{
    return idx->count >= idx->max_entries;
}

rn_idx_entry_t rn_idx_get(const rn_idx_t *idx, size_t i)
{
    return entry_at(idx->map, i);
}

rn_err_t rn_idx_append(rn_idx_t *idx, int64_t key, uint32_t value)
{
    if (rn_idx_full(idx))
        return RN_ERR_STATE;
    if (idx->count) {
        rn_idx_entry_t last = entry_at(idx->map, idx->count - 1);
        if (key <= last.key || value <= last.value)
            return RN_ERR_STATE;
    }
    uint8_t *p = idx->map + idx->count * RN_IDX_ENTRY_SIZE;
    rn_le_put64(p, (uint64_t)key);
    rn_le_put32(p + 8, value);
    idx->count++;
    return RN_OK;
}

void rn_idx_truncate(rn_idx_t *idx, size_t n)
{
    if (n >= idx->count)
        return;
    memset(idx->map + n * RN_IDX_ENTRY_SIZE, 0, (idx->count - n) * RN_IDX_ENTRY_SIZE);
    idx->count = n;
}

ptrdiff_t rn_idx_floor(const rn_idx_t *idx, int64_t key)
{
    size_t lo = 0, hi = idx->count; /* answer in [lo - 1, hi - 1] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_at(idx->map, mid).key <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}
