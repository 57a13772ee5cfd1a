/*
 * index.h - a sparse, mmapped, binary-searched index of fixed 12-byte entries.
 *
 *   entry:  +-------------+-----------+      offset index (.index):    key = offset,
 *           | key  i64 LE | value u32 |                                value = file position
 *           +-------------+-----------+      time index (.timeindex):  key = max timestamp so far,
 *                                                                      value = offset - segment base
 * Keys and values both strictly increase. The file is preallocated (sparse) to max_bytes while
 * the segment is active and trimmed to its entries when closed. Nothing relies on index pages
 * reaching the disk: on open the entries are accepted only while both fields keep increasing,
 * and recovery rebuilds the entries of every batch it scans. A lost entry only makes a lookup
 * start a little earlier, never wrong.
 */
#ifndef RN_INDEX_H
#define RN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RN_IDX_ENTRY_SIZE 12

typedef struct rn_idx rn_idx_t;

typedef struct rn_idx_entry {
    int64_t key;
    uint32_t value;
} rn_idx_entry_t;

/* Opens (creating when missing) and maps path with room for max_bytes of entries. */
rn_err_t rn_idx_open(const char *path, size_t max_bytes, rn_idx_t **out);
/* Unmaps and closes; with trim, first shrinks the file to its entries. */
rn_err_t rn_idx_close(rn_idx_t *idx, bool trim);
/* msync of the mapped entries (at roll, so closed segments keep their index). */
rn_err_t rn_idx_sync(rn_idx_t *idx);

size_t rn_idx_count(const rn_idx_t *idx);
bool rn_idx_full(const rn_idx_t *idx);
rn_idx_entry_t rn_idx_get(const rn_idx_t *idx, size_t i);
/* Appends; RN_ERR_STATE when full or when key/value would not increase. */
rn_err_t rn_idx_append(rn_idx_t *idx, int64_t key, uint32_t value);
/* Keeps only the first n entries. */
void rn_idx_truncate(rn_idx_t *idx, size_t n);
/* Position of the last entry with key <= key, or -1 when every key is larger. */
ptrdiff_t rn_idx_floor(const rn_idx_t *idx, int64_t key);

#endif
