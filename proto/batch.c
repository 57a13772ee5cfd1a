#include "batch.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "varint.h"

#define MIN_RECORD_SIZE 7 /* length, attributes, ts delta, offset delta, key len, value len, hdr count */

struct rn_batch_builder {
    rn_batch_opts_t opts;
    rn_buf_t records;
    uint32_t count;
    int64_t first_ts;
    int64_t max_ts;
    ZSTD_CCtx *zctx;
};

rn_batch_builder_t *rn_batch_builder_new(void)
{
    rn_batch_builder_t *b = calloc(1, sizeof *b);
    if (b)
        rn_batch_builder_reset(b, NULL);
    return b;
}

void rn_batch_builder_free(rn_batch_builder_t *b)
{
    if (!b)
        return;
    rn_buf_free(&b->records);
    ZSTD_freeCCtx(b->zctx);
    free(b);
}

void rn_batch_builder_reset(rn_batch_builder_t *b, const rn_batch_opts_t *opts)
{
    static const rn_batch_opts_t defaults = RN_BATCH_OPTS_DEFAULT;
    b->opts = opts ? *opts : defaults;
    rn_buf_reset(&b->records);
    b->count = 0;
    b->first_ts = 0;
    b->max_ts = 0;
}

uint32_t rn_batch_builder_count(const rn_batch_builder_t *b)
{
    return b->count;
}

size_t rn_batch_builder_size(const rn_batch_builder_t *b)
{
    return RN_BATCH_HEADER_SIZE + b->records.len;
}

static size_t put_bytes(uint8_t *p, const void *data, int64_t len)
{
    size_t n = rn_varint_put_i64(p, len);
    if (len > 0) {
        memcpy(p + n, data, (size_t)len);
        n += (size_t)len;
    }
    return n;
}

static size_t bytes_size(int64_t len)
{
    return rn_varint_size_i64(len) + (len > 0 ? (size_t)len : 0);
}

rn_err_t rn_batch_builder_add(rn_batch_builder_t *b, int64_t timestamp, const void *key,
                              size_t key_len, const void *value, size_t value_len,
                              const rn_rec_header_t *headers, size_t header_count)
{
    if ((key && key_len > INT32_MAX) || (value && value_len > INT32_MAX) ||
        header_count > INT32_MAX || b->count == UINT32_MAX)
        return RN_ERR_INVALID_ARG;
    int64_t first_ts = b->count == 0 ? timestamp : b->first_ts;
    int64_t klen = key ? (int64_t)key_len : -1;
    int64_t vlen = value ? (int64_t)value_len : -1;
    /* Two's-complement wrap, undone by the reader's unsigned add: any pair of timestamps fits. */
    int64_t ts_delta = (int64_t)((uint64_t)timestamp - (uint64_t)first_ts);

    size_t body = 1 + rn_varint_size_i64(ts_delta) + rn_varint_size_u64(b->count) +
                  bytes_size(klen) + bytes_size(vlen) + rn_varint_size_u64(header_count);
    for (size_t i = 0; i < header_count; i++) {
        if (headers[i].key_len > INT32_MAX || (headers[i].value && headers[i].value_len < 0))
            return RN_ERR_INVALID_ARG;
        body += rn_varint_size_u64(headers[i].key_len) + headers[i].key_len +
                bytes_size(headers[i].value ? headers[i].value_len : -1);
    }
    uint8_t *p = rn_buf_extend(&b->records, rn_varint_size_u64(body) + body);
    if (!p)
        return RN_ERR_NOMEM;
    /* Only now, with nothing left to fail, does the record count toward the timestamps. */
    b->first_ts = first_ts;
    if (b->count == 0 || timestamp > b->max_ts)
        b->max_ts = timestamp;
    p += rn_varint_put_u64(p, body);
    *p++ = 0; /* record attributes: none defined yet */
    p += rn_varint_put_i64(p, ts_delta);
    p += rn_varint_put_u64(p, b->count);
    p += put_bytes(p, key, klen);
    p += put_bytes(p, value, vlen);
    p += rn_varint_put_u64(p, header_count);
    for (size_t i = 0; i < header_count; i++) {
        p += rn_varint_put_u64(p, headers[i].key_len);
        if (headers[i].key_len) /* an empty key may be NULL; memcpy(NULL) is undefined */
            memcpy(p, headers[i].key, headers[i].key_len);
        p += headers[i].key_len;
        p += put_bytes(p, headers[i].value, headers[i].value ? headers[i].value_len : -1);
    }
    b->count++;
    return RN_OK;
}

rn_err_t rn_batch_builder_finish(rn_batch_builder_t *b, rn_buf_t *out)
{
    if (b->count == 0)
        return RN_ERR_STATE;
    size_t start = out->len;
    size_t bound = b->opts.codec == RN_CODEC_ZSTD ? ZSTD_compressBound(b->records.len)
                                                  : b->records.len;
    if (rn_buf_reserve(out, RN_BATCH_HEADER_SIZE + bound) != RN_OK)
        return RN_ERR_NOMEM;
    uint8_t *h = out->data + start;
    size_t rec_len = b->records.len;
    if (b->opts.codec == RN_CODEC_ZSTD) {
        if (!b->zctx && !(b->zctx = ZSTD_createCCtx()))
            return RN_ERR_NOMEM;
        rec_len = ZSTD_compressCCtx(b->zctx, h + RN_BATCH_HEADER_SIZE, bound, b->records.data,
                                    b->records.len, b->opts.zstd_level);
        if (ZSTD_isError(rec_len))
            return RN_ERR_NOMEM;
    } else {
        memcpy(h + RN_BATCH_HEADER_SIZE, b->records.data, rec_len);
    }
    size_t total = RN_BATCH_HEADER_SIZE + rec_len;
    if (total > RN_BATCH_MAX_SIZE)
        return RN_ERR_INVALID_ARG;
    rn_le_put64(h + 0, 0);
    rn_le_put32(h + 8, (uint32_t)(total - RN_BATCH_LOG_OVERHEAD));
    rn_le_put32(h + 12, 0);
    h[16] = RN_BATCH_MAGIC;
    rn_le_put16(h + 25, (uint16_t)(b->opts.codec & RN_BATCH_ATTR_CODEC_MASK));
    rn_le_put32(h + 27, b->count - 1);
    rn_le_put64(h + 31, (uint64_t)b->first_ts);
    rn_le_put64(h + 39, (uint64_t)b->max_ts);
    rn_le_put64(h + 47, (uint64_t)b->opts.producer_id);
    rn_le_put16(h + 55, (uint16_t)b->opts.producer_epoch);
    rn_le_put32(h + 57, (uint32_t)b->opts.base_sequence);
    rn_le_put32(h + 61, b->count);
    rn_le_put64(h + RN_BATCH_OFF_CHECKSUM,
                XXH3_64bits(h + RN_BATCH_CHECKSUM_FROM, total - RN_BATCH_CHECKSUM_FROM));
    out->len = start + total;
    rn_batch_builder_reset(b, &b->opts);
    return RN_OK;
}

/* ---------------------------------------------------------------------- reader ---- */

rn_err_t rn_batch_parse_header(const uint8_t *p, size_t len, rn_batch_header_t *h)
{
    if (len < RN_BATCH_HEADER_SIZE)
        return RN_ERR_TRUNCATED;
    h->base_offset = rn_le_get64(p + 0);
    h->batch_length = rn_le_get32(p + 8);
    h->leader_epoch = rn_le_get32(p + 12);
    h->magic = p[16];
    h->checksum = rn_le_get64(p + 17);
    h->attributes = rn_le_get16(p + 25);
    h->last_offset_delta = rn_le_get32(p + 27);
    h->first_timestamp = (int64_t)rn_le_get64(p + 31);
    h->max_timestamp = (int64_t)rn_le_get64(p + 39);
    h->producer_id = (int64_t)rn_le_get64(p + 47);
    h->producer_epoch = (int16_t)rn_le_get16(p + 55);
    h->base_sequence = (int32_t)rn_le_get32(p + 57);
    h->record_count = rn_le_get32(p + 61);
    if (h->magic != RN_BATCH_MAGIC)
        return RN_ERR_BAD_MAGIC;
    if (h->batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD ||
        h->batch_length > RN_BATCH_MAX_SIZE)
        return RN_ERR_MALFORMED;
    size_t records_len = h->batch_length - (RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD);
    if (h->record_count == 0 || h->last_offset_delta < h->record_count - 1 ||
        rn_batch_codec(h) > RN_CODEC_ZSTD)
        return RN_ERR_MALFORMED;
    if (rn_batch_codec(h) == RN_CODEC_NONE &&
        (uint64_t)h->record_count * MIN_RECORD_SIZE > records_len)
        return RN_ERR_MALFORMED;
    if (rn_batch_total_size(h) > len)
        return RN_ERR_TRUNCATED;
    return RN_OK;
}

void rn_batch_stamp(uint8_t *batch, uint64_t base_offset, uint32_t leader_epoch)
{
    rn_le_put64(batch + RN_BATCH_OFF_BASE_OFFSET, base_offset);
    rn_le_put32(batch + RN_BATCH_OFF_LEADER_EPOCH, leader_epoch);
}

static rn_err_t check_sum(const uint8_t *data, const rn_batch_header_t *h)
{
    uint64_t sum = XXH3_64bits(data + RN_BATCH_CHECKSUM_FROM,
                               rn_batch_total_size(h) - RN_BATCH_CHECKSUM_FROM);
    return sum == h->checksum ? RN_OK : RN_ERR_CHECKSUM;
}

/* Reads a zigzag length-prefixed byte string (-1 = null); returns bytes consumed or 0. */
static size_t get_bytes(const uint8_t *p, const uint8_t *end, const uint8_t **data, int32_t *len)
{
    int64_t l;
    size_t n = rn_varint_get_i64(p, end, &l);
    if (!n || l < -1 || l > INT32_MAX || l > end - p - (ptrdiff_t)n)
        return 0;
    *len = (int32_t)l;
    *data = l >= 0 ? p + n : NULL;
    return n + (l > 0 ? (size_t)l : 0);
}

/* Walks header_count headers from p; returns bytes they take, or 0 when malformed. */
static size_t walk_headers(const uint8_t *p, const uint8_t *end, uint64_t header_count)
{
    const uint8_t *start = p;
    for (uint64_t i = 0; i < header_count; i++) {
        uint64_t klen;
        size_t n = rn_varint_get_u64(p, end, &klen);
        if (!n || klen > (uint64_t)(end - p - n))
            return 0;
        p += n + klen;
        const uint8_t *v;
        int32_t vlen;
        if (!(n = get_bytes(p, end, &v, &vlen)))
            return 0;
        p += n;
    }
    return (size_t)(p - start);
}

/* Decodes the record at it->pos; shared by validation and iteration. */
static rn_err_t decode_record(rn_batch_iter_t *it, rn_record_t *rec)
{
    const uint8_t *p = it->pos, *end = it->end;
    uint64_t body;
    size_t n = rn_varint_get_u64(p, end, &body);
    if (!n || body > (uint64_t)(end - p - n) || body < MIN_RECORD_SIZE - 1)
        return RN_ERR_MALFORMED;
    p += n;
    const uint8_t *rec_end = p + body;
    p++; /* attributes */
    int64_t ts_delta;
    uint64_t off_delta;
    if (!(n = rn_varint_get_i64(p, rec_end, &ts_delta)))
        return RN_ERR_MALFORMED;
    p += n;
    if (!(n = rn_varint_get_u64(p, rec_end, &off_delta)))
        return RN_ERR_MALFORMED;
    p += n;
    if ((int64_t)off_delta <= it->last_delta || off_delta > it->hdr.last_offset_delta)
        return RN_ERR_MALFORMED;
    if (!(n = get_bytes(p, rec_end, &rec->key, &rec->key_len)))
        return RN_ERR_MALFORMED;
    p += n;
    if (!(n = get_bytes(p, rec_end, &rec->value, &rec->value_len)))
        return RN_ERR_MALFORMED;
    p += n;
    uint64_t hcount;
    if (!(n = rn_varint_get_u64(p, rec_end, &hcount)) || hcount > UINT32_MAX)
        return RN_ERR_MALFORMED;
    p += n;
    size_t hlen = walk_headers(p, rec_end, hcount);
    if (hcount && !hlen)
        return RN_ERR_MALFORMED;
    if (p + hlen != rec_end)
        return RN_ERR_MALFORMED;
    rec->offset = it->hdr.base_offset + off_delta;
    rec->timestamp = (int64_t)((uint64_t)it->hdr.first_timestamp + (uint64_t)ts_delta);
    rec->header_count = (uint32_t)hcount;
    rec->headers = p;
    rec->headers_len = hlen;
    it->last_delta = (int64_t)off_delta;
    it->pos = rec_end;
    it->returned++;
    return RN_OK;
}

static void iter_start(rn_batch_iter_t *it, const uint8_t *records, size_t len)
{
    it->pos = records;
    it->end = records + len;
    it->returned = 0;
    it->last_delta = -1;
}

/* Decodes every record once, checking the count and that nothing trails the last one. */
static rn_err_t check_records(rn_batch_iter_t *it)
{
    const uint8_t *start = it->pos;
    rn_record_t rec;
    rn_err_t err;
    while ((err = rn_batch_iter_next(it, &rec)) == RN_OK)
        ;
    if (err != RN_ERR_NOT_FOUND)
        return err;
    iter_start(it, start, (size_t)(it->end - start));
    return RN_OK;
}

rn_err_t rn_batch_validate(const uint8_t *data, size_t len, rn_batch_header_t *h)
{
    rn_err_t err = rn_batch_parse_header(data, len, h);
    if (err != RN_OK)
        return err;
    if ((err = check_sum(data, h)) != RN_OK)
        return err;
    if (rn_batch_codec(h) != RN_CODEC_NONE)
        return RN_OK;
    rn_batch_iter_t it = {.hdr = *h};
    iter_start(&it, data + RN_BATCH_HEADER_SIZE, rn_batch_total_size(h) - RN_BATCH_HEADER_SIZE);
    return check_records(&it);
}

rn_err_t rn_batch_iter_init(rn_batch_iter_t *it, const uint8_t *data, size_t len,
                            size_t max_decompressed)
{
    memset(it, 0, sizeof *it);
    rn_err_t err = rn_batch_validate(data, len, &it->hdr);
    if (err != RN_OK)
        return err;
    const uint8_t *records = data + RN_BATCH_HEADER_SIZE;
    size_t records_len = rn_batch_total_size(&it->hdr) - RN_BATCH_HEADER_SIZE;
    if (rn_batch_codec(&it->hdr) == RN_CODEC_NONE) {
        iter_start(it, records, records_len);
        return RN_OK;
    }
    unsigned long long size = ZSTD_getFrameContentSize(records, records_len);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR ||
        size > max_decompressed || size < (unsigned long long)it->hdr.record_count * MIN_RECORD_SIZE)
        return RN_ERR_DECOMPRESS;
    it->owned = malloc(size ? size : 1);
    if (!it->owned)
        return RN_ERR_NOMEM;
    size_t got = ZSTD_decompress(it->owned, size, records, records_len);
    if (ZSTD_isError(got) || got != size)
        return RN_ERR_DECOMPRESS;
    iter_start(it, it->owned, got);
    return check_records(it);
}

rn_err_t rn_batch_iter_next(rn_batch_iter_t *it, rn_record_t *rec)
{
    if (it->returned == it->hdr.record_count)
        return it->pos == it->end ? RN_ERR_NOT_FOUND : RN_ERR_MALFORMED;
    return decode_record(it, rec);
}

void rn_batch_iter_free(rn_batch_iter_t *it)
{
    free(it->owned);
    it->owned = NULL;
}

rn_err_t rn_record_header_next(const rn_record_t *rec, const uint8_t **pos, rn_rec_header_t *out)
{
    const uint8_t *end = rec->headers + rec->headers_len;
    if (*pos >= end)
        return RN_ERR_NOT_FOUND;
    const uint8_t *p = *pos;
    uint64_t klen;
    size_t n = rn_varint_get_u64(p, end, &klen);
    if (!n || klen > (uint64_t)(end - p - n))
        return RN_ERR_MALFORMED;
    out->key = p + n;
    out->key_len = (size_t)klen;
    p += n + klen;
    if (!(n = get_bytes(p, end, &out->value, &out->value_len)))
        return RN_ERR_MALFORMED;
    *pos = p + n;
    return RN_OK;
}
