/*
 * batch.h - the record batch: the unit of append, replication, fetch and retention
 * (DESIGN §4). Same bytes on disk and on the wire. All fixed-width fields little-endian.
 *
 *   off  size  field
 *   ---  ----  -----------------------------------------------------------------
 *     0     8  base_offset        set by the leader  -+ not covered by the checksum,
 *     8     4  batch_length       bytes after this    | so the leader assigns offsets
 *    12     4  leader_epoch       set by the leader  -+ and epochs without re-hashing
 *    16     1  magic (= 1)
 *    17     8  checksum           XXH3-64 of bytes [25, 12 + batch_length)
 *    25     2  attributes         bits 0-2 codec (0 none, 1 zstd), bit 3 log-append time,
 *                                 bit 4 transactional, bit 5 control
 *    27     4  last_offset_delta
 *    31     8  first_timestamp    ms since epoch
 *    39     8  max_timestamp
 *    47     8  producer_id        -1 when not idempotent
 *    55     2  producer_epoch
 *    57     4  base_sequence
 *    61     4  record_count
 *    65     …  records, or one zstd frame holding them when the codec is zstd
 *
 *   record: varint length (of what follows), u8 attributes, zigzag-varint timestamp delta,
 *           varint offset delta, zigzag-varint key length (-1 = null) + key,
 *           zigzag-varint value length (-1 = null) + value, varint header count,
 *           each header: varint key length + key, zigzag-varint value length (-1 = null) + value
 *
 * leader_epoch sits before the checksum (DESIGN lists it later; see docs/decisions.md) for the
 * same reason base_offset does: the leader writes it into a batch it has already validated.
 */
#ifndef RN_BATCH_H
#define RN_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define RN_BATCH_HEADER_SIZE 65
#define RN_BATCH_LOG_OVERHEAD 12 /* base_offset + batch_length: bytes not counted in batch_length */
#define RN_BATCH_MAGIC 1
#define RN_BATCH_OFF_BASE_OFFSET 0
#define RN_BATCH_OFF_LENGTH 8
#define RN_BATCH_OFF_LEADER_EPOCH 12
#define RN_BATCH_OFF_CHECKSUM 17
#define RN_BATCH_CHECKSUM_FROM 25

#define RN_BATCH_ATTR_CODEC_MASK 0x07
#define RN_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define RN_BATCH_ATTR_TRANSACTIONAL 0x10
#define RN_BATCH_ATTR_CONTROL 0x20

/* Largest batch the reader accepts at all; callers pass smaller limits of their own. */
#define RN_BATCH_MAX_SIZE (256u << 20)

typedef enum rn_codec { RN_CODEC_NONE = 0, RN_CODEC_ZSTD = 1 } rn_codec_t;

typedef struct rn_batch_header {
    uint64_t base_offset;
    uint32_t batch_length;
    uint32_t leader_epoch;
    uint8_t magic;
    uint64_t checksum;
    uint16_t attributes;
    uint32_t last_offset_delta;
    int64_t first_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    uint32_t record_count;
} rn_batch_header_t;

static inline size_t rn_batch_total_size(const rn_batch_header_t *h)
{
    return (size_t)h->batch_length + RN_BATCH_LOG_OVERHEAD;
}
static inline uint64_t rn_batch_last_offset(const rn_batch_header_t *h)
{
    return h->base_offset + h->last_offset_delta;
}
static inline rn_codec_t rn_batch_codec(const rn_batch_header_t *h)
{
    return (rn_codec_t)(h->attributes & RN_BATCH_ATTR_CODEC_MASK);
}

/* A record header (key/value pair); value NULL with value_len -1 is a null value. */
typedef struct rn_rec_header {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    int32_t value_len;
} rn_rec_header_t;

/* ---------------------------------------------------------------- builder ---- */

typedef struct rn_batch_opts {
    rn_codec_t codec;
    int zstd_level;          /* 0: zstd's default */
    int64_t producer_id;     /* -1: not idempotent */
    int16_t producer_epoch;
    int32_t base_sequence;
} rn_batch_opts_t;

#define RN_BATCH_OPTS_DEFAULT {RN_CODEC_NONE, 0, -1, -1, -1}

typedef struct rn_batch_builder rn_batch_builder_t;

rn_batch_builder_t *rn_batch_builder_new(void);
void rn_batch_builder_free(rn_batch_builder_t *b);
/* Starts a new, empty batch with these options (NULL: defaults). */
void rn_batch_builder_reset(rn_batch_builder_t *b, const rn_batch_opts_t *opts);
/*
 * Adds one record. key/value may be NULL (null key/value; the length is then ignored).
 * Headers are copied. Returns RN_ERR_INVALID_ARG when a length does not fit the format.
 */
rn_err_t rn_batch_builder_add(rn_batch_builder_t *b, int64_t timestamp, const void *key,
                              size_t key_len, const void *value, size_t value_len,
                              const rn_rec_header_t *headers, size_t header_count);
uint32_t rn_batch_builder_count(const rn_batch_builder_t *b);
/* Uncompressed size the batch would have now (header + records). */
size_t rn_batch_builder_size(const rn_batch_builder_t *b);
/*
 * Appends the finished batch (base_offset 0, leader_epoch 0, checksum set) to out and
 * leaves the builder empty with the same options. RN_ERR_STATE when no record was added.
 */
rn_err_t rn_batch_builder_finish(rn_batch_builder_t *b, rn_buf_t *out);

/* ------------------------------------------------------------------ reader ---- */

/*
 * Parses the fixed header of the batch at the start of [data, data+len) without checking the
 * checksum. RN_ERR_TRUNCATED when fewer than RN_BATCH_HEADER_SIZE bytes are there or
 * batch_length points past len (the caller may wait for more); RN_ERR_BAD_MAGIC;
 * RN_ERR_MALFORMED when batch_length is too small, over RN_BATCH_MAX_SIZE, or the record count
 * is impossible for the size.
 */
rn_err_t rn_batch_parse_header(const uint8_t *data, size_t len, rn_batch_header_t *h);

/*
 * Full check of one batch, as the broker does before appending: the header, the checksum and,
 * when uncompressed, the framing of every record (the count and offset deltas). It never
 * decompresses. Errors as rn_batch_parse_header, plus RN_ERR_CHECKSUM.
 */
rn_err_t rn_batch_validate(const uint8_t *data, size_t len, rn_batch_header_t *h);

/* Writes base_offset / leader_epoch into a batch in place (not covered by the checksum). */
void rn_batch_stamp(uint8_t *batch, uint64_t base_offset, uint32_t leader_epoch);

/* One decoded record; pointers point into the batch (or its decompressed copy). */
typedef struct rn_record {
    uint64_t offset;
    int64_t timestamp;
    const uint8_t *key;      /* NULL when null */
    int32_t key_len;         /* -1 when null */
    const uint8_t *value;
    int32_t value_len;
    uint32_t header_count;
    const uint8_t *headers;  /* encoded headers; walk with rn_record_header_next */
    size_t headers_len;
} rn_record_t;

typedef struct rn_batch_iter {
    rn_batch_header_t hdr;
    const uint8_t *pos;
    const uint8_t *end;
    uint32_t returned;
    int64_t last_delta;
    uint8_t *owned;          /* decompressed records, freed by rn_batch_iter_free */
} rn_batch_iter_t;

/*
 * Validates the batch (as rn_batch_validate) and prepares to iterate its records,
 * decompressing into a buffer of at most max_decompressed bytes (RN_ERR_DECOMPRESS beyond).
 * The batch bytes must outlive the iterator. Call rn_batch_iter_free even after an error.
 */
rn_err_t rn_batch_iter_init(rn_batch_iter_t *it, const uint8_t *data, size_t len,
                            size_t max_decompressed);
/* RN_OK with *rec filled; RN_ERR_NOT_FOUND after the last record; RN_ERR_MALFORMED. */
rn_err_t rn_batch_iter_next(rn_batch_iter_t *it, rn_record_t *rec);
void rn_batch_iter_free(rn_batch_iter_t *it);

/*
 * Walks the encoded headers of a record. *pos starts at rec->headers; returns RN_OK and
 * advances, RN_ERR_NOT_FOUND at the end, RN_ERR_MALFORMED.
 */
rn_err_t rn_record_header_next(const rn_record_t *rec, const uint8_t **pos, rn_rec_header_t *out);

#endif
