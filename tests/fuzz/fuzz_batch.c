/*
 * fuzz_batch: the record batch reader on arbitrary bytes.
 *
 * Property (as in tests/unit/test_batch.c): rn_batch_iter_init refuses the input with a
 * decoding error, or the iterator returns exactly record_count records whose key, value and
 * headers lie inside the batch (or its decompressed copy) and whose headers walk cleanly.
 *
 * A fuzzer rarely forges an XXH3 checksum, so each input is read twice: as given, and with the
 * checksum recomputed whenever the header parses. The second read reaches the record decoder
 * and the zstd path on almost every input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "batch.h"
#include "varint.h"

#define MAX_DECOMPRESSED (1u << 20)

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static int inside(const uint8_t *p, size_t n, const uint8_t *lo, const uint8_t *hi)
{
    return p && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void walk_headers(const rn_record_t *r)
{
    const uint8_t *pos = r->headers, *end = r->headers + r->headers_len;
    rn_rec_header_t h;
    uint32_t n = 0;
    rn_err_t err;
    while ((err = rn_record_header_next(r, &pos, &h)) == RN_OK) {
        n++;
        check(n <= r->header_count);
        check(inside(h.key, h.key_len, r->headers, end));
        check(h.value_len == -1 ? h.value == NULL
                                : h.value_len >= 0 && inside(h.value, (size_t)h.value_len,
                                                             r->headers, end));
    }
    check(err == RN_ERR_NOT_FOUND && n == r->header_count);
}

static void read_batch(const uint8_t *data, size_t size)
{
    rn_batch_header_t h;
    rn_err_t perr = rn_batch_parse_header(data, size, &h);
    rn_err_t verr = rn_batch_validate(data, size, &h);
    rn_batch_iter_t it;
    rn_err_t err = rn_batch_iter_init(&it, data, size, MAX_DECOMPRESSED);
    if (err != RN_OK) {
        check(err == RN_ERR_TRUNCATED || err == RN_ERR_BAD_MAGIC || err == RN_ERR_MALFORMED ||
              err == RN_ERR_CHECKSUM || err == RN_ERR_DECOMPRESS);
        rn_batch_iter_free(&it);
        return;
    }
    check(perr == RN_OK && verr == RN_OK);
    const uint8_t *lo = it.pos, *hi = it.end;
    if (!it.owned)
        check(lo == data + RN_BATCH_HEADER_SIZE && hi == data + rn_batch_total_size(&it.hdr));
    check((size_t)(hi - lo) <= MAX_DECOMPRESSED || !it.owned);
    rn_record_t r;
    uint32_t n = 0;
    uint64_t prev = 0;
    while ((err = rn_batch_iter_next(&it, &r)) == RN_OK) {
        n++;
        check(n <= it.hdr.record_count);
        uint64_t delta = r.offset - it.hdr.base_offset;
        check(delta <= it.hdr.last_offset_delta && (n == 1 || delta > prev));
        prev = delta;
        check(r.key_len == -1 ? r.key == NULL
                              : r.key_len >= 0 && inside(r.key, (size_t)r.key_len, lo, hi));
        check(r.value_len == -1 ? r.value == NULL
                                : r.value_len >= 0 && inside(r.value, (size_t)r.value_len, lo, hi));
        check(inside(r.headers, r.headers_len, lo, hi));
        walk_headers(&r);
    }
    check(err == RN_ERR_NOT_FOUND && n == it.hdr.record_count);
    rn_batch_iter_free(&it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_batch(data, size); /* libFuzzer's buffer is exactly `size` bytes */

    rn_batch_header_t h;
    if (rn_batch_parse_header(data, size, &h) != RN_OK)
        return 0;
    size_t total = rn_batch_total_size(&h);
    uint8_t *copy = malloc(total);
    check(copy != NULL);
    memcpy(copy, data, total);
    rn_le_put64(copy + RN_BATCH_OFF_CHECKSUM,
                XXH3_64bits(copy + RN_BATCH_CHECKSUM_FROM, total - RN_BATCH_CHECKSUM_FROM));
    read_batch(copy, total);
    free(copy);
    return 0;
}
