/*
 * source.h - where a job's records come from, behind a small vtable so the runtime runs the
 * same against the broker (rn_consumer_* of librunnel) and against memory (unit tests).
 *
 * Records of one partition arrive in offset order; offsets are those of the topic, so the
 * runtime can record "next offset" per partition in its checkpoints and resume there.
 */
#ifndef RN_SOURCE_H
#define RN_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RN_SRC_BEGINNING (-2)

typedef struct rn_src_record {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;       /* the record's broker timestamp, ms */
    const void *value;
    size_t value_len;
} rn_src_record_t;

typedef struct rn_source {
    /* How many partitions topic has. */
    rn_err_t (*partitions)(void *ctx, const char *topic, int32_t *count, char *errbuf,
                           size_t errlen);
    /* Start reading topic/partition at offset (>= 0 or RN_SRC_BEGINNING). */
    rn_err_t (*assign)(void *ctx, const char *topic, int32_t partition, int64_t offset);
    /* The offset one past the last record now in the partition (for --bounded). */
    rn_err_t (*end_offset)(void *ctx, const char *topic, int32_t partition, int64_t *end);
    /*
     * Up to max records, waiting at most timeout_ms for the first; *recs valid until the
     * next poll. RN_OK with *n 0 on timeout.
     */
    rn_err_t (*poll)(void *ctx, int timeout_ms, size_t max, const rn_src_record_t **recs,
                     size_t *n);
    /*
     * Optional (NULL: the job reports no consumer lag). The partition's end offset as the
     * source last learned it, without a round trip (the broker source: the high watermark of
     * the latest fetch response); lag = it minus the job's position. RN_ERR_AGAIN when not
     * known yet. Called from the job's thread, a few times a second.
     */
    rn_err_t (*high_watermark)(void *ctx, const char *topic, int32_t partition, int64_t *hw);
    void *ctx;
} rn_source_t;

/* ---- an in-memory source: tests, and runnel-processor --input FILE ---- */
typedef struct rn_memsrc rn_memsrc_t;

rn_err_t rn_memsrc_new(const char *topic, int32_t partitions, rn_memsrc_t **out);
void rn_memsrc_free(rn_memsrc_t *m);
/* Appends a record (copied) to a partition; its offset is the partition's next. */
rn_err_t rn_memsrc_append(rn_memsrc_t *m, int32_t partition, const void *value, size_t len);
/* The same with a broker timestamp (ms since the epoch; rn_memsrc_append gives 0: none). */
rn_err_t rn_memsrc_append_ts(rn_memsrc_t *m, int32_t partition, const void *value, size_t len,
                             int64_t timestamp_ms);
/* Appends every line of a file (JSON lines) to partition 0. */
rn_err_t rn_memsrc_load_lines(rn_memsrc_t *m, const char *path, char *errbuf, size_t errlen);
/* Limits each poll to this many records (tests interleave partitions with it). */
void rn_memsrc_set_batch(rn_memsrc_t *m, size_t max);
rn_source_t rn_memsrc_source(rn_memsrc_t *m);

#endif
