/*
 * segment.h - one segment of a partition log: a .log file of whole record batches plus its
 * offset index and time index, all named by the segment's base offset:
 *
 *   00000000000000012345.log        batches, back to back, in offset order
 *   00000000000000012345.index      offset -> file position, one entry per index.interval.bytes
 *   00000000000000012345.timeindex  (ts, rel): every record before base + rel has a timestamp
 *                                   <= ts; rel is an offset that also has an offset-index entry,
 *                                   or next_offset - base for the entry written at seal
 *
 * Index entries are added before the batch that crosses index.interval.bytes is accounted,
 * so each (offset, position) pair starts a batch and the time entry written with it covers
 * exactly the batches before it. Recovery can then restart at any kept entry.
 *
 * A segment is owned by one partition log and used from one thread. The struct is visible
 * because the partition log reads its fields; only segment.c writes them.
 */
#ifndef RN_SEGMENT_H
#define RN_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "buf.h"
#include "dirnames.h"
#include "err.h"
#include "index.h"
#include "io.h"

#define RN_SEG_NAME_DIGITS RN_OFFSET_NAME_DIGITS

typedef struct rn_seg {
    uint64_t base_offset;
    uint64_t next_offset;       /* one past the last record's offset */
    uint64_t size;              /* bytes of whole batches in the .log file */
    int64_t max_timestamp;      /* largest batch max_timestamp; -1 while empty */
    int64_t first_append_ms;    /* wall time of the first append in this process; for segment.ms */
    uint32_t bytes_since_index;
    uint32_t index_interval;
    int fd;
    rn_idx_t *offset_index;
    rn_idx_t *time_index;
    const rn_io_t *io;
    char *path_base;            /* "DIR/00000000000000012345", without extension */
} rn_seg_t;

/* Creates an empty segment; fails with RN_ERR_EXISTS if its .log exists. */
rn_err_t rn_seg_create(const char *dir, uint64_t base_offset, uint32_t index_interval,
                       size_t index_max_bytes, const rn_io_t *io, rn_seg_t **out);
/*
 * Opens an existing segment. size is the file's size and next_offset is unknown (set to
 * base_offset) until rn_seg_recover or rn_seg_load_tail runs.
 */
rn_err_t rn_seg_open(const char *dir, uint64_t base_offset, uint32_t index_interval,
                     size_t index_max_bytes, const rn_io_t *io, rn_seg_t **out);
/* Closes files; trim shrinks the indexes to their entries (a closed, final segment). */
rn_err_t rn_seg_close(rn_seg_t *seg, bool trim);
/* Closes and unlinks all three files. */
rn_err_t rn_seg_delete(rn_seg_t *seg);

/*
 * Appends one batch whose base_offset/leader_epoch are already stamped (h describes it).
 * On a write error the file is cut back so no partial batch stays: RN_ERR_NO_SPACE or
 * RN_ERR_IO, and the segment is unchanged. RN_ERR_STATE when the offset index is full.
 */
rn_err_t rn_seg_append(rn_seg_t *seg, const uint8_t *batch, const rn_batch_header_t *h);
/* The same for whole, stamped batches laid back to back (checked by the caller): one write. */
rn_err_t rn_seg_append_span(rn_seg_t *seg, const uint8_t *batches, size_t len);

/* Called for each batch by rn_seg_scan; return false to stop. data is the whole batch. */
typedef bool (*rn_seg_scan_cb)(void *ctx, const rn_batch_header_t *h, uint64_t pos,
                               const uint8_t *data);

typedef struct rn_seg_scan_result {
    uint64_t end_pos;           /* position after the last good batch visited */
    uint64_t bytes_read;
    rn_err_t stop;              /* RN_OK: clean end of file or cb stopped; else why it stopped */
    bool stopped_by_cb;
} rn_seg_scan_result_t;

/*
 * Visits the batches from file position pos to the end of the file (not just seg->size), in
 * large buffered reads. With verify, each batch is fully validated (rn_batch_validate) and
 * its base offset must not go backwards. Stops at the first batch that is truncated or fails
 * to parse, reporting why in stop.
 */
rn_err_t rn_seg_scan(rn_seg_t *seg, uint64_t pos, bool verify, rn_seg_scan_cb cb, void *ctx,
                     rn_seg_scan_result_t *res);

/*
 * Recovery of this segment, trusting what lies before from_offset: restarts at the last
 * offset-index entry at or below from_offset (or at position 0), keeps the index entries
 * before it, scans and verifies every batch from there, rebuilds the index entries, and cuts
 * the file at the first batch that is torn or corrupt. Sets size, next_offset and
 * max_timestamp. *bytes_scanned and *truncated_bytes say what it read and what it cut.
 */
rn_err_t rn_seg_recover(rn_seg_t *seg, uint64_t from_offset, uint64_t *bytes_scanned,
                        uint64_t *truncated_bytes);

/* Reads and parses the batch header at pos, which must lie below seg->size. */
rn_err_t rn_seg_header_at(rn_seg_t *seg, uint64_t pos, rn_batch_header_t *h);
/*
 * For a segment closed cleanly: trusts the indexes, scans only from the last offset-index
 * entry to the end to find next_offset and the max timestamp of the tail.
 */
rn_err_t rn_seg_load_tail(rn_seg_t *seg);

/*
 * Finds the batch that holds offset (or the first batch after it): *pos and *h describe it.
 * RN_ERR_NOT_FOUND when offset >= next_offset.
 */
rn_err_t rn_seg_find(rn_seg_t *seg, uint64_t offset, uint64_t *pos, rn_batch_header_t *h);

/* Cuts the segment at file position pos, which must be a batch boundary holding offset. */
rn_err_t rn_seg_truncate(rn_seg_t *seg, uint64_t pos, uint64_t offset);

/* Adds the final time-index entry and msyncs the indexes (at roll and close). */
rn_err_t rn_seg_seal(rn_seg_t *seg);

/* Formats "DIR/%020llu.ext". */
char *rn_seg_path(const char *dir, uint64_t base_offset, const char *ext);

#endif
