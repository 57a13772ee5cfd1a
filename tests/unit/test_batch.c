/*
 * batch.c: the record batch builder and reader.
 *
 * Part one is the contract users rely on: what the builder writes, the reader returns, with
 * both codecs; the checksum catches damage; the leader may stamp base_offset and leader_epoch
 * without re-hashing. Part two is one property, checked against mutated input: any byte string
 * given to the reader yields either an error or exactly record_count records whose pointers lie
 * inside the batch (or its decompressed copy). Every input sits in a heap block of exactly its
 * size, so an out-of-bounds read shows under ASan (-DRUNNEL_SANITIZE=ON).
 *
 * Random tests print their seed on failure; replay with RUNNEL_TEST_SEED=<seed>.
 * RUNNEL_TEST_ITERATIONS overrides the number of mutations per property (default 50000).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "testutil.h"
#include <xxhash.h>
#include <zstd.h>

#include "batch.h"
#include "buf.h"
#include "varint.h"

/* ------------------------------------------------------------------ helpers ---- */

static uint64_t seed;
static unsigned long iterations = 50000;

static int setup_seed(void **state)
{
    (void)state;
    seed = rn_t_seed(__FILE__);
    const char *env;
    if ((env = getenv("RUNNEL_TEST_ITERATIONS")))
        iterations = strtoul(env, NULL, 0);
    return 0;
}

/* What the random tests were doing when they failed, printed with the seed. */
static char context[160];

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            print_message("seed=%llu (replay: RUNNEL_TEST_SEED=%llu) while %s\n",          \
                          (unsigned long long)seed, (unsigned long long)seed, context);    \
            fail_msg(__VA_ARGS__);                                                         \
        }                                                                                  \
    } while (0)

static const char *codec_name(rn_codec_t c)
{
    return c == RN_CODEC_ZSTD ? "zstd" : "none";
}

/* A heap copy of exactly len bytes, so ASan flags any read past the end. */
static uint8_t *exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, data, len);
    return p;
}

static void rehash(uint8_t *batch, size_t total)
{
    rn_le_put64(batch + RN_BATCH_OFF_CHECKSUM,
                XXH3_64bits(batch + RN_BATCH_CHECKSUM_FROM, total - RN_BATCH_CHECKSUM_FROM));
}

static size_t batch_total(const uint8_t *batch)
{
    return (size_t)rn_le_get32(batch + RN_BATCH_OFF_LENGTH) + RN_BATCH_LOG_OVERHEAD;
}

/* ------------------------------------------------------------ record specs ---- */

#define MAX_HEADERS 4

struct rec_spec {
    int64_t timestamp;
    const char *key; /* NULL: null key */
    size_t key_len;
    const char *value; /* NULL: null value */
    size_t value_len;
    rn_rec_header_t headers[MAX_HEADERS];
    size_t header_count;
};

#define HDR(k, v) {(const uint8_t *)(k), sizeof(k) - 1, (const uint8_t *)(v), sizeof(v) - 1}
#define HDR_NULL(k) {(const uint8_t *)(k), sizeof(k) - 1, NULL, -1}
#define STR(s) s, sizeof(s) - 1

static char big_key[300];
static char big_value[5000];

/* Records covering every encoding case: null and empty keys and values, headers with null and
 * empty values, a timestamp below the first (negative delta), multi-byte length varints. */
static struct rec_spec rich[] = {
    {1700000000000, STR("alpha"), STR("one"), {{0}}, 0},
    {1699999999000, NULL, 0, STR("no key"), {HDR("trace-id", "abc123")}, 1},
    {1700000005000, STR("tomb"), NULL, 0, {HDR_NULL("deleted-by")}, 1},
    {1700000001000, STR(""), STR(""), {HDR("", ""), HDR("k2", "v2"), HDR_NULL("k3")}, 3},
    {1700000000000, big_key, sizeof big_key, big_value, sizeof big_value, {{0}}, 0},
    {1700000002000, NULL, 0, NULL, 0, {HDR("only", "headers")}, 1},
};
#define N_RICH (sizeof rich / sizeof rich[0])

/* A small batch for the property tests: mutations then land in interesting places often. */
static struct rec_spec small[] = {
    {5000, STR("k0"), STR("value zero"), {HDR("h", "x")}, 1},
    {4990, NULL, 0, STR("v1"), {{0}}, 0},
    {5010, STR("k2"), NULL, 0, {HDR_NULL("n"), HDR("a", "bb")}, 2},
    {5020, STR(""), STR("value three is a little longer"), {{0}}, 0},
};
#define N_SMALL (sizeof small / sizeof small[0])

static int setup_all(void **state)
{
    for (size_t i = 0; i < sizeof big_key; i++)
        big_key[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof big_value; i++)
        big_value[i] = (char)(i % 97 < 50 ? 'x' : '0' + i % 10);
    return setup_seed(state);
}

static void build(const struct rec_spec *specs, size_t n, const rn_batch_opts_t *opts,
                  rn_buf_t *out)
{
    rn_batch_builder_t *b = rn_batch_builder_new();
    assert_non_null(b);
    rn_batch_builder_reset(b, opts);
    for (size_t i = 0; i < n; i++) {
        const struct rec_spec *s = &specs[i];
        rn_err_t err = rn_batch_builder_add(b, s->timestamp, s->key, s->key_len, s->value,
                                            s->value_len, s->headers, s->header_count);
        if (err != RN_OK)
            fail_msg("builder refused record %zu: %s", i, rn_err_name(err));
    }
    assert_int_equal(rn_batch_builder_count(b), n);
    size_t uncompressed = rn_batch_builder_size(b);
    size_t before = out->len;
    assert_int_equal(rn_batch_builder_finish(b, out), RN_OK);
    if (!opts || opts->codec == RN_CODEC_NONE)
        assert_int_equal(out->len - before, uncompressed);
    assert_int_equal(rn_batch_builder_count(b), 0);
    rn_batch_builder_free(b);
}

static void build_codec(const struct rec_spec *specs, size_t n, rn_codec_t codec, rn_buf_t *out)
{
    rn_batch_opts_t opts = RN_BATCH_OPTS_DEFAULT;
    opts.codec = codec;
    build(specs, n, &opts, out);
}

/* Checks that the batch at data reads back exactly as specs, at offsets base_offset + index. */
static void expect_records(const uint8_t *data, size_t len, const struct rec_spec *specs,
                           size_t n, uint64_t base_offset, rn_codec_t codec)
{
    const char *c = codec_name(codec);
    rn_batch_header_t h;
    rn_err_t err = rn_batch_validate(data, len, &h);
    if (err != RN_OK)
        fail_msg("%s: rn_batch_validate refused a built batch: %s", c, rn_err_name(err));
    rn_batch_iter_t it;
    err = rn_batch_iter_init(&it, data, len, 8u << 20);
    if (err != RN_OK)
        fail_msg("%s: rn_batch_iter_init refused a built batch: %s", c, rn_err_name(err));
    assert_int_equal(it.hdr.record_count, n);
    for (size_t i = 0; i < n; i++) {
        const struct rec_spec *s = &specs[i];
        rn_record_t r;
        if ((err = rn_batch_iter_next(&it, &r)) != RN_OK)
            fail_msg("%s: record %zu: %s", c, i, rn_err_name(err));
        if (r.offset != base_offset + i)
            fail_msg("%s: record %zu has offset %llu, want base_offset + %zu = %llu", c, i,
                     (unsigned long long)r.offset, i, (unsigned long long)(base_offset + i));
        if (r.timestamp != s->timestamp)
            fail_msg("%s: record %zu has timestamp %lld, want %lld", c, i, (long long)r.timestamp,
                     (long long)s->timestamp);
        if (!s->key) {
            if (r.key != NULL || r.key_len != -1)
                fail_msg("%s: record %zu: null key came back as %d bytes", c, i, r.key_len);
        } else if (!r.key || r.key_len != (int32_t)s->key_len ||
                   memcmp(r.key, s->key, s->key_len) != 0) {
            fail_msg("%s: record %zu: key differs (len %d, want %zu)", c, i, r.key_len,
                     s->key_len);
        }
        if (!s->value) {
            if (r.value != NULL || r.value_len != -1)
                fail_msg("%s: record %zu: null value came back as %d bytes", c, i, r.value_len);
        } else if (!r.value || r.value_len != (int32_t)s->value_len ||
                   memcmp(r.value, s->value, s->value_len) != 0) {
            fail_msg("%s: record %zu: value differs (len %d, want %zu)", c, i, r.value_len,
                     s->value_len);
        }
        if (r.header_count != s->header_count)
            fail_msg("%s: record %zu has %u headers, want %zu", c, i, r.header_count,
                     s->header_count);
        const uint8_t *pos = r.headers;
        for (size_t k = 0; k < s->header_count; k++) {
            const rn_rec_header_t *want = &s->headers[k];
            rn_rec_header_t got;
            if ((err = rn_record_header_next(&r, &pos, &got)) != RN_OK)
                fail_msg("%s: record %zu header %zu: %s", c, i, k, rn_err_name(err));
            if (got.key_len != want->key_len || memcmp(got.key, want->key, want->key_len) != 0)
                fail_msg("%s: record %zu header %zu: key differs", c, i, k);
            if (!want->value) {
                if (got.value != NULL || got.value_len != -1)
                    fail_msg("%s: record %zu header %zu: null value came back as %d bytes", c, i,
                             k, got.value_len);
            } else if (!got.value || got.value_len != want->value_len ||
                       memcmp(got.value, want->value, (size_t)want->value_len) != 0) {
                fail_msg("%s: record %zu header %zu: value differs", c, i, k);
            }
        }
        rn_rec_header_t extra;
        if (rn_record_header_next(&r, &pos, &extra) != RN_ERR_NOT_FOUND)
            fail_msg("%s: record %zu: more headers than the %zu written", c, i, s->header_count);
    }
    rn_record_t r;
    if ((err = rn_batch_iter_next(&it, &r)) != RN_ERR_NOT_FOUND)
        fail_msg("%s: after the last record, next returned %s, want NOT_FOUND", c,
                 rn_err_name(err));
    rn_batch_iter_free(&it);
}

/* -------------------------------------------------------------- round trip ---- */

static void round_trip(rn_codec_t codec)
{
    rn_batch_opts_t opts = RN_BATCH_OPTS_DEFAULT;
    opts.codec = codec;
    opts.producer_id = 4242;
    opts.producer_epoch = 3;
    opts.base_sequence = 17;
    rn_buf_t out = RN_BUF_INIT;
    build(rich, N_RICH, &opts, &out);
    uint8_t *data = exact_copy(out.data, out.len);
    size_t len = out.len;

    rn_batch_header_t h;
    assert_int_equal(rn_batch_parse_header(data, len, &h), RN_OK);
    assert_int_equal(rn_batch_total_size(&h), len);
    assert_true(h.base_offset == 0);
    assert_int_equal(h.leader_epoch, 0);
    assert_int_equal(h.magic, RN_BATCH_MAGIC);
    assert_int_equal(rn_batch_codec(&h), codec);
    assert_int_equal(h.record_count, N_RICH);
    assert_int_equal(h.last_offset_delta, N_RICH - 1);
    assert_true(h.first_timestamp == rich[0].timestamp);
    assert_true(h.max_timestamp == 1700000005000);
    assert_true(h.producer_id == 4242);
    assert_int_equal(h.producer_epoch, 3);
    assert_int_equal(h.base_sequence, 17);
    assert_true(h.checksum == XXH3_64bits(data + RN_BATCH_CHECKSUM_FROM,
                                          len - RN_BATCH_CHECKSUM_FROM));
    if (codec == RN_CODEC_ZSTD) /* the big value is repetitive: zstd must have shrunk it */
        assert_true(len < sizeof big_value);
    expect_records(data, len, rich, N_RICH, 0, codec);

    /* The leader stamps offsets and epoch in place; the checksum does not cover them. */
    const uint64_t bases[] = {1, 1000000, (1ull << 40) + 5, UINT64_MAX - 100};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        uint64_t sum_before = rn_le_get64(data + RN_BATCH_OFF_CHECKSUM);
        rn_batch_stamp(data, bases[i], 7 + (uint32_t)i);
        assert_true(rn_le_get64(data + RN_BATCH_OFF_CHECKSUM) == sum_before);
        assert_int_equal(rn_batch_parse_header(data, len, &h), RN_OK);
        assert_true(h.base_offset == bases[i]);
        assert_int_equal(h.leader_epoch, 7 + i);
        assert_true(rn_batch_last_offset(&h) == bases[i] + N_RICH - 1);
        expect_records(data, len, rich, N_RICH, bases[i], codec);
    }
    free(data);
    rn_buf_free(&out);
}

static void test_round_trip_none(void **state)
{
    (void)state;
    round_trip(RN_CODEC_NONE);
}

static void test_round_trip_zstd(void **state)
{
    (void)state;
    round_trip(RN_CODEC_ZSTD);
}

/* Timestamps at the ends of int64 make deltas that overflow int64; they must still round-trip. */
static void test_extreme_timestamps(void **state)
{
    (void)state;
    struct rec_spec specs[] = {
        {INT64_MAX, STR("max"), STR("v"), {{0}}, 0},
        {INT64_MIN, STR("min"), STR("v"), {{0}}, 0},
        {-1, STR("neg"), STR("v"), {{0}}, 0},
        {0, STR("zero"), STR("v"), {{0}}, 0},
    };
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        rn_buf_t out = RN_BUF_INIT;
        build_codec(specs, 4, c, &out);
        rn_batch_header_t h;
        assert_int_equal(rn_batch_parse_header(out.data, out.len, &h), RN_OK);
        assert_true(h.first_timestamp == INT64_MAX);
        assert_true(h.max_timestamp == INT64_MAX);
        expect_records(out.data, out.len, specs, 4, 0, c);
        rn_buf_free(&out);
    }
}

/* One builder, several batches appended to one buffer: each is whole and independent. */
static void test_builder_reuse_and_consecutive_batches(void **state)
{
    (void)state;
    rn_batch_builder_t *b = rn_batch_builder_new();
    assert_non_null(b);
    rn_buf_t out = RN_BUF_INIT;
    assert_int_equal(rn_batch_builder_finish(b, &out), RN_ERR_STATE); /* empty */
    assert_int_equal(out.len, 0);
    rn_batch_opts_t opts = RN_BATCH_OPTS_DEFAULT;
    opts.codec = RN_CODEC_ZSTD;
    rn_batch_builder_reset(b, &opts);
    for (int batch = 0; batch < 3; batch++) {
        for (size_t i = 0; i < N_SMALL; i++) {
            const struct rec_spec *s = &small[i];
            assert_int_equal(rn_batch_builder_add(b, s->timestamp, s->key, s->key_len, s->value,
                                                  s->value_len, s->headers, s->header_count),
                             RN_OK);
        }
        assert_int_equal(rn_batch_builder_finish(b, &out), RN_OK);
    }
    assert_int_equal(rn_batch_builder_finish(b, &out), RN_ERR_STATE);
    rn_batch_builder_free(b);
    size_t pos = 0;
    for (int batch = 0; batch < 3; batch++) {
        rn_batch_header_t h;
        assert_int_equal(rn_batch_parse_header(out.data + pos, out.len - pos, &h), RN_OK);
        assert_int_equal(rn_batch_codec(&h), RN_CODEC_ZSTD); /* options survive finish */
        expect_records(out.data + pos, rn_batch_total_size(&h), small, N_SMALL, 0,
                       RN_CODEC_ZSTD);
        pos += rn_batch_total_size(&h);
    }
    assert_int_equal(pos, out.len);
    rn_buf_free(&out);
}

/* A refused add changes nothing: not the count, not the batch's timestamps. */
static void test_builder_refused_add_leaves_batch_alone(void **state)
{
    (void)state;
    rn_batch_builder_t *b = rn_batch_builder_new();
    assert_non_null(b);
    assert_int_equal(rn_batch_builder_add(b, 100, STR("k"), STR("v"), NULL, 0), RN_OK);
    const rn_rec_header_t bad[] = {
        {(const uint8_t *)"h", (size_t)INT32_MAX + 1, (const uint8_t *)"x", 1}, /* key too long */
        {(const uint8_t *)"h", 1, (const uint8_t *)"x", -5}, /* negative length, value not NULL */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rn_err_t err = rn_batch_builder_add(b, 999999, STR("k"), STR("v"), &bad[i], 1);
        if (err != RN_ERR_INVALID_ARG)
            fail_msg("header %zu that does not fit the format: add returned %s, want "
                     "INVALID_ARG", i, rn_err_name(err));
        assert_int_equal(rn_batch_builder_count(b), 1);
    }
    /* A header with an empty key may pass key NULL. */
    rn_rec_header_t empty_key = {NULL, 0, (const uint8_t *)"x", 1};
    assert_int_equal(rn_batch_builder_add(b, 50, STR("k"), STR("v"), &empty_key, 1), RN_OK);
    rn_buf_t out = RN_BUF_INIT;
    assert_int_equal(rn_batch_builder_finish(b, &out), RN_OK);
    rn_batch_header_t h;
    assert_int_equal(rn_batch_validate(out.data, out.len, &h), RN_OK);
    if (h.max_timestamp != 100)
        fail_msg("max_timestamp is %lld: the refused record's timestamp leaked into the batch",
                 (long long)h.max_timestamp);
    assert_true(h.first_timestamp == 100);
    assert_int_equal(h.record_count, 2);
    rn_batch_builder_free(b);
    rn_buf_free(&out);
}

/* ---------------------------------------------------------------- checksum ---- */

/* Every single-bit flip from the magic byte on is refused; in the records it is a checksum
 * error. Flips in base_offset and leader_epoch are not: the leader writes those. */
static void test_checksum_detects_every_bit_flip(void **state)
{
    (void)state;
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        rn_buf_t out = RN_BUF_INIT;
        build_codec(small, N_SMALL, c, &out);
        uint8_t *data = exact_copy(out.data, out.len);
        rn_batch_header_t h;
        for (size_t byte = RN_BATCH_OFF_LEADER_EPOCH + 4; byte < out.len; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                data[byte] ^= (uint8_t)(1u << bit);
                rn_err_t err = rn_batch_validate(data, out.len, &h);
                if (err == RN_OK)
                    fail_msg("%s: flipping bit %d of byte %zu went undetected", codec_name(c),
                             bit, byte);
                if (byte >= RN_BATCH_HEADER_SIZE && err != RN_ERR_CHECKSUM)
                    fail_msg("%s: flipping bit %d of record byte %zu gave %s, want CHECKSUM",
                             codec_name(c), bit, byte, rn_err_name(err));
                data[byte] ^= (uint8_t)(1u << bit);
            }
        }
        for (size_t byte = 0; byte < RN_BATCH_OFF_LEADER_EPOCH + 4; byte++) {
            if (byte >= RN_BATCH_OFF_LENGTH && byte < RN_BATCH_OFF_LEADER_EPOCH)
                continue; /* batch_length: covered by the property tests below */
            for (int bit = 0; bit < 8; bit++) {
                data[byte] ^= (uint8_t)(1u << bit);
                rn_err_t err = rn_batch_validate(data, out.len, &h);
                if (err != RN_OK)
                    fail_msg("%s: flipping bit %d of byte %zu (base_offset/leader_epoch) gave %s",
                             codec_name(c), bit, byte, rn_err_name(err));
                data[byte] ^= (uint8_t)(1u << bit);
            }
        }
        assert_int_equal(rn_batch_validate(data, out.len, &h), RN_OK);
        free(data);
        rn_buf_free(&out);
    }
}

/* ------------------------------------------------------ the reader property ---- */

static bool inside(const uint8_t *p, size_t n, const uint8_t *lo, const uint8_t *hi)
{
    return p && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/*
 * The property: rn_batch_iter_init either refuses the bytes with a decoding error, or the
 * iterator returns exactly record_count records, with increasing offsets inside the batch's
 * range, key/value/header pointers inside the records area, and headers that walk cleanly.
 * Returns what rn_batch_iter_init returned.
 */
static rn_err_t check_reader(const uint8_t *src, size_t len)
{
    uint8_t *data = exact_copy(src, len);
    rn_batch_iter_t it;
    rn_err_t err = rn_batch_iter_init(&it, data, len, 64u << 10);
    if (err != RN_OK) {
        CHECK(err == RN_ERR_TRUNCATED || err == RN_ERR_BAD_MAGIC || err == RN_ERR_MALFORMED ||
                  err == RN_ERR_CHECKSUM || err == RN_ERR_DECOMPRESS,
              "reader returned %s, not a decoding error", rn_err_name(err));
        rn_batch_iter_free(&it);
        free(data);
        return err;
    }
    rn_batch_header_t h;
    CHECK(rn_batch_validate(data, len, &h) == RN_OK, "iter_init accepted what validate refuses");
    const uint8_t *lo = it.pos, *hi = it.end;
    if (it.owned) {
        size_t records_len = rn_batch_total_size(&h) - RN_BATCH_HEADER_SIZE;
        unsigned long long size = ZSTD_getFrameContentSize(data + RN_BATCH_HEADER_SIZE,
                                                           records_len);
        CHECK(lo == it.owned && (unsigned long long)(hi - lo) == size,
              "records of a compressed batch are not the decompressed copy");
    } else
        CHECK(lo == data + RN_BATCH_HEADER_SIZE && hi == data + rn_batch_total_size(&h),
              "records area [%td, %td) is not the batch's", lo - data, hi - data);
    uint32_t n = 0;
    uint64_t prev_delta = 0;
    rn_record_t r;
    while ((err = rn_batch_iter_next(&it, &r)) == RN_OK) {
        n++;
        CHECK(n <= it.hdr.record_count, "more records than record_count %u",
              it.hdr.record_count);
        uint64_t delta = r.offset - it.hdr.base_offset;
        CHECK(delta <= it.hdr.last_offset_delta && (n == 1 || delta > prev_delta),
              "record %u: offset delta %llu out of order or past last_offset_delta %u", n,
              (unsigned long long)delta, it.hdr.last_offset_delta);
        prev_delta = delta;
        CHECK(r.key_len == -1 ? r.key == NULL
                              : r.key_len >= 0 && inside(r.key, (size_t)r.key_len, lo, hi),
              "record %u: key (len %d) outside the records area", n, r.key_len);
        CHECK(r.value_len == -1 ? r.value == NULL
                                : r.value_len >= 0 && inside(r.value, (size_t)r.value_len, lo, hi),
              "record %u: value (len %d) outside the records area", n, r.value_len);
        CHECK(inside(r.headers, r.headers_len, lo, hi), "record %u: headers outside", n);
        const uint8_t *pos = r.headers, *hend = r.headers + r.headers_len;
        rn_rec_header_t hd;
        uint32_t walked = 0;
        rn_err_t herr;
        while ((herr = rn_record_header_next(&r, &pos, &hd)) == RN_OK) {
            walked++;
            CHECK(walked <= r.header_count, "record %u: more headers than header_count %u", n,
                  r.header_count);
            CHECK(inside(hd.key, hd.key_len, r.headers, hend),
                  "record %u header %u: key outside the record's headers", n, walked);
            CHECK(hd.value_len == -1 ? hd.value == NULL
                                     : hd.value_len >= 0 && inside(hd.value, (size_t)hd.value_len,
                                                                   r.headers, hend),
                  "record %u header %u: value outside the record's headers", n, walked);
        }
        CHECK(herr == RN_ERR_NOT_FOUND && walked == r.header_count,
              "record %u: header walk ended with %s after %u of %u headers", n,
              rn_err_name(herr), walked, r.header_count);
    }
    CHECK(err == RN_ERR_NOT_FOUND, "iter_init accepted the batch but record %u failed: %s",
          n + 1, rn_err_name(err));
    CHECK(n == it.hdr.record_count, "iterator returned %u records, record_count says %u", n,
          it.hdr.record_count);
    rn_batch_iter_free(&it);
    free(data);
    return RN_OK;
}

/* Wraps arbitrary record bytes into a batch like `tmpl` (header fields, codec), re-hashed. */
static size_t wrap_records(const uint8_t *tmpl, const uint8_t *records, size_t records_len,
                           rn_codec_t codec, ZSTD_CCtx *zctx, rn_buf_t *out)
{
    rn_buf_reset(out);
    size_t bound = ZSTD_compressBound(records_len);
    assert_int_equal(rn_buf_reserve(out, RN_BATCH_HEADER_SIZE + bound), RN_OK);
    memcpy(out->data, tmpl, RN_BATCH_HEADER_SIZE);
    size_t n = records_len;
    if (codec == RN_CODEC_ZSTD) {
        n = ZSTD_compressCCtx(zctx, out->data + RN_BATCH_HEADER_SIZE, bound, records,
                              records_len, 1);
        assert_false(ZSTD_isError(n));
    } else if (records_len) {
        memcpy(out->data + RN_BATCH_HEADER_SIZE, records, records_len);
    }
    out->len = RN_BATCH_HEADER_SIZE + n;
    rn_le_put32(out->data + RN_BATCH_OFF_LENGTH, (uint32_t)(out->len - RN_BATCH_LOG_OVERHEAD));
    rn_le_put16(out->data + 25, (uint16_t)codec);
    rehash(out->data, out->len);
    return out->len;
}

/* Flips `flips` random bits of data[from, to). */
static void flip_bits(uint8_t *data, size_t from, size_t to, int flips, uint64_t *rng)
{
    for (int f = 0; f < flips; f++)
        data[from + rn_t_rng_below(rng, to - from)] ^= (uint8_t)(1u << rn_t_rng_below(rng, 8));
}

static int random_flip_count(uint64_t *rng)
{
    /* Half single flips, the rest 2 to 8 at independent positions. */
    return rn_t_rng_below(rng, 2) ? 1 : 2 + (int)rn_t_rng_below(rng, 7);
}

/* (a) Random flips anywhere, checksum left as is: every flip past leader_epoch is refused. */
static void test_property_bit_flips(void **state)
{
    (void)state;
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        rn_buf_t out = RN_BUF_INIT;
        build_codec(small, N_SMALL, c, &out);
        uint8_t *m = malloc(out.len);
        assert_non_null(m);
        uint64_t rng = seed ^ (0xa0 + c);
        for (unsigned long i = 0; i < iterations; i++) {
            memcpy(m, out.data, out.len);
            int flips = random_flip_count(&rng);
            flip_bits(m, 0, out.len, flips, &rng);
            snprintf(context, sizeof context, "%s bit flips (checksum kept), iteration %lu",
                     codec_name(c), i);
            rn_err_t err = check_reader(m, out.len);
            bool covered_changed =
                memcmp(m + RN_BATCH_OFF_LEADER_EPOCH + 4, out.data + RN_BATCH_OFF_LEADER_EPOCH + 4,
                       out.len - RN_BATCH_OFF_LEADER_EPOCH - 4) != 0;
            CHECK(!covered_changed || err != RN_OK,
                  "flipped bits past leader_epoch but the reader accepted the batch");
        }
        free(m);
        rn_buf_free(&out);
    }
}

/* (a') Random flips past the checksum, then re-hashed: now the record decoder must cope. */
static void test_property_bit_flips_rehashed(void **state)
{
    (void)state;
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        rn_buf_t out = RN_BUF_INIT;
        build_codec(small, N_SMALL, c, &out);
        uint8_t *m = malloc(out.len);
        assert_non_null(m);
        uint64_t rng = seed ^ (0xb0 + c);
        unsigned long accepted = 0;
        for (unsigned long i = 0; i < iterations; i++) {
            memcpy(m, out.data, out.len);
            /* Mostly the records; a quarter of the time the covered header fields too. */
            size_t from = rn_t_rng_below(&rng, 4) ? RN_BATCH_HEADER_SIZE : RN_BATCH_CHECKSUM_FROM;
            flip_bits(m, from, out.len, random_flip_count(&rng), &rng);
            rehash(m, out.len);
            snprintf(context, sizeof context,
                     "%s bit flips from byte %zu (re-hashed), iteration %lu", codec_name(c), from,
                     i);
            accepted += check_reader(m, out.len) == RN_OK;
        }
        print_message("%s: %lu of %lu re-hashed mutations still decoded\n", codec_name(c),
                      accepted, iterations);
        free(m);
        rn_buf_free(&out);
    }
}

/*
 * (a'') Flips in the uncompressed records, re-wrapped (and for zstd re-compressed) with a
 * correct checksum: the record decoder sees damaged records behind a valid zstd frame too.
 */
static void test_property_record_flips_rewrapped(void **state)
{
    (void)state;
    rn_buf_t plain = RN_BUF_INIT;
    build_codec(small, N_SMALL, RN_CODEC_NONE, &plain);
    const uint8_t *records = plain.data + RN_BATCH_HEADER_SIZE;
    size_t records_len = plain.len - RN_BATCH_HEADER_SIZE;
    ZSTD_CCtx *zctx = ZSTD_createCCtx();
    assert_non_null(zctx);
    uint8_t *m = malloc(records_len);
    assert_non_null(m);
    rn_buf_t wrapped = RN_BUF_INIT;
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        uint64_t rng = seed ^ (0xc0 + c);
        unsigned long n = c == RN_CODEC_ZSTD ? iterations / 2 : iterations;
        for (unsigned long i = 0; i < n; i++) {
            memcpy(m, records, records_len);
            flip_bits(m, 0, records_len, random_flip_count(&rng), &rng);
            size_t len = wrap_records(plain.data, m, records_len, c, zctx, &wrapped);
            snprintf(context, sizeof context, "%s record flips (re-wrapped), iteration %lu",
                     codec_name(c), i);
            check_reader(wrapped.data, len);
        }
        /* Records cut short at every length, count unchanged: always refused. */
        for (size_t cut = 0; cut < records_len; cut++) {
            size_t len = wrap_records(plain.data, records, cut, c, zctx, &wrapped);
            snprintf(context, sizeof context, "%s records cut to %zu of %zu bytes",
                     codec_name(c), cut, records_len);
            rn_err_t err = check_reader(wrapped.data, len);
            CHECK(err != RN_OK, "records cut short were accepted");
        }
        /* And a record too many behind the count: refused as trailing bytes. */
        rn_buf_t more = RN_BUF_INIT;
        assert_int_equal(rn_buf_append(&more, records, records_len), RN_OK);
        assert_int_equal(rn_buf_append(&more, records, records_len), RN_OK);
        size_t len = wrap_records(plain.data, more.data, more.len, c, zctx, &wrapped);
        snprintf(context, sizeof context, "%s records after the last counted one",
                 codec_name(c));
        CHECK(check_reader(wrapped.data, len) == RN_ERR_MALFORMED,
              "bytes after record_count records were accepted");
        rn_buf_free(&more);
    }
    rn_buf_free(&wrapped);
    free(m);
    ZSTD_freeCCtx(zctx);
    rn_buf_free(&plain);
}

/* (b) Every truncation of a batch is TRUNCATED: the caller may wait for more bytes. */
static void test_property_truncation(void **state)
{
    (void)state;
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        rn_buf_t out = RN_BUF_INIT;
        build_codec(rich, N_RICH, c, &out);
        for (size_t cut = 0; cut < out.len; cut++) {
            snprintf(context, sizeof context, "%s batch cut to %zu of %zu bytes", codec_name(c),
                     cut, out.len);
            rn_err_t err = check_reader(out.data, cut);
            CHECK(err == RN_ERR_TRUNCATED, "iter_init on a truncated batch returned %s",
                  rn_err_name(err));
            uint8_t *p = exact_copy(out.data, cut);
            rn_batch_header_t h;
            CHECK(rn_batch_parse_header(p, cut, &h) == RN_ERR_TRUNCATED,
                  "parse_header on a truncated batch did not say TRUNCATED");
            free(p);
        }
        /* Trailing bytes after a whole batch are the next batch's business. */
        assert_int_equal(rn_buf_append(&out, "trailing", 8), RN_OK);
        snprintf(context, sizeof context, "%s batch followed by other bytes", codec_name(c));
        CHECK(check_reader(out.data, out.len) == RN_OK, "bytes after the batch made it fail");
        rn_buf_free(&out);
    }
}

/*
 * Writes `value` into a header field (width 4) of a copy of the batch, optionally re-hashing,
 * runs the property and returns the reader's verdict.
 */
static rn_err_t with_field(const rn_buf_t *batch, size_t off, uint32_t value, bool rehashed)
{
    uint8_t *m = exact_copy(batch->data, batch->len);
    rn_le_put32(m + off, value);
    size_t total = batch_total(m);
    if (rehashed && total >= RN_BATCH_HEADER_SIZE && total <= batch->len)
        rehash(m, total);
    rn_err_t err = check_reader(m, batch->len);
    free(m);
    return err;
}

/* (c) Extreme values in the length and count fields. */
static void test_property_extreme_fields(void **state)
{
    (void)state;
    for (rn_codec_t c = RN_CODEC_NONE; c <= RN_CODEC_ZSTD; c++) {
        const char *cn = codec_name(c);
        rn_buf_t out = RN_BUF_INIT;
        build_codec(small, N_SMALL, c, &out);
        const uint32_t blen = (uint32_t)(out.len - RN_BATCH_LOG_OVERHEAD);
        const uint32_t min_blen = RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD;
        for (int rehashed = 0; rehashed <= 1; rehashed++) {
            const struct {
                size_t off;
                const char *name;
                uint32_t value;
                rn_err_t want; /* RN_OK: any verdict; else exactly this error */
                bool must_fail;
            } cases[] = {
                {RN_BATCH_OFF_LENGTH, "batch_length", 0, RN_ERR_MALFORMED, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", 1, RN_ERR_MALFORMED, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", min_blen - 1, RN_ERR_MALFORMED, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", min_blen, RN_OK, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", blen - 1, RN_OK, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", blen + 1, RN_ERR_TRUNCATED, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", RN_BATCH_MAX_SIZE, RN_ERR_TRUNCATED, true},
                {RN_BATCH_OFF_LENGTH, "batch_length", RN_BATCH_MAX_SIZE + 1, RN_ERR_MALFORMED,
                 true},
                {RN_BATCH_OFF_LENGTH, "batch_length", UINT32_MAX, RN_ERR_MALFORMED, true},
                {61, "record_count", 0, RN_ERR_MALFORMED, true},
                {61, "record_count", 1, RN_OK, true},
                {61, "record_count", N_SMALL - 1, RN_OK, true},
                {61, "record_count", N_SMALL + 1, RN_OK, true},
                {61, "record_count", UINT32_MAX, RN_OK, true},
                {27, "last_offset_delta", 0, RN_ERR_MALFORMED, true},
                {27, "last_offset_delta", N_SMALL - 2, RN_ERR_MALFORMED, true},
                {27, "last_offset_delta", N_SMALL, RN_OK, false},
                {27, "last_offset_delta", UINT32_MAX, RN_OK, false},
            };
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                snprintf(context, sizeof context, "%s: %s = %u (%s)", cn, cases[i].name,
                         cases[i].value, rehashed ? "re-hashed" : "checksum kept");
                rn_err_t err = with_field(&out, cases[i].off, cases[i].value, rehashed);
                /* Without re-hashing, a change to a covered field is a checksum error. */
                bool covered = cases[i].off >= RN_BATCH_CHECKSUM_FROM;
                if (cases[i].must_fail || (covered && !rehashed))
                    CHECK(err != RN_OK, "the reader accepted it");
                if (cases[i].want != RN_OK && !(covered && !rehashed))
                    CHECK(err == cases[i].want, "got %s, want %s", rn_err_name(err),
                          rn_err_name(cases[i].want));
                if (!cases[i].must_fail && rehashed)
                    CHECK(err == RN_OK, "a larger last_offset_delta (gaps, as after compaction) "
                          "was refused: %s", rn_err_name(err));
            }
            /* Codec bits: unknown codecs are refused, a wrong known one fails to decode. */
            for (uint16_t codec = 0; codec <= RN_BATCH_ATTR_CODEC_MASK; codec++) {
                if (codec == (uint16_t)c)
                    continue;
                uint8_t *m = exact_copy(out.data, out.len);
                rn_le_put16(m + 25, codec);
                if (rehashed)
                    rehash(m, out.len);
                snprintf(context, sizeof context, "%s: codec bits set to %u (%s)", cn, codec,
                         rehashed ? "re-hashed" : "checksum kept");
                CHECK(check_reader(m, out.len) != RN_OK, "a batch read with the wrong codec");
                free(m);
            }
        }
        rn_buf_free(&out);
    }
}

/* ------------------------------------------------------------ zstd limits ---- */

/*
 * A zstd frame holding `payload` in one raw block, whose header claims `claimed` bytes of
 * content (RFC 8878 §3.1.1). claimed != payload_len makes a lying frame.
 */
static size_t raw_zstd_frame(uint8_t *dst, const uint8_t *payload, size_t payload_len,
                             uint64_t claimed)
{
    size_t n = 0;
    rn_le_put32(dst, ZSTD_MAGICNUMBER);
    n += 4;
    dst[n++] = 0xc0;                             /* 8-byte Frame_Content_Size, windowed */
    dst[n++] = 0x00;                             /* Window_Descriptor: 1 KiB */
    rn_le_put64(dst + n, claimed);
    n += 8;
    uint32_t block = 1u | (uint32_t)payload_len << 3; /* last block, raw */
    dst[n++] = (uint8_t)block;
    dst[n++] = (uint8_t)(block >> 8);
    dst[n++] = (uint8_t)(block >> 16);
    memcpy(dst + n, payload, payload_len);
    return n + payload_len;
}

static rn_err_t iter_init_verdict(const uint8_t *batch, size_t len, size_t max_decompressed)
{
    uint8_t *p = exact_copy(batch, len);
    rn_batch_iter_t it;
    rn_err_t err = rn_batch_iter_init(&it, p, len, max_decompressed);
    rn_batch_iter_free(&it);
    free(p);
    return err;
}

static void test_zstd_decompression_limits(void **state)
{
    (void)state;
    /* A real bomb: 1 MiB of zeros squeezed into a few hundred bytes. */
    static char zeros[1u << 20];
    struct rec_spec bomb[] = {{1, STR("k"), zeros, sizeof zeros, {{0}}, 0}};
    rn_buf_t out = RN_BUF_INIT;
    build_codec(bomb, 1, RN_CODEC_ZSTD, &out);
    assert_true(out.len < 4096);
    rn_err_t err = iter_init_verdict(out.data, out.len, 64u << 10);
    if (err != RN_ERR_DECOMPRESS)
        fail_msg("1 MiB zstd content under a 64 KiB limit: iter_init returned %s, want "
                 "DECOMPRESS", rn_err_name(err));
    expect_records(out.data, out.len, bomb, 1, 0, RN_CODEC_ZSTD); /* 8 MiB limit: fits */
    rn_buf_free(&out);

    /* A lying frame that claims 1 TiB: refused before anything of that size is allocated. */
    rn_buf_t plain = RN_BUF_INIT;
    build_codec(small, N_SMALL, RN_CODEC_NONE, &plain);
    const uint8_t *records = plain.data + RN_BATCH_HEADER_SIZE;
    size_t records_len = plain.len - RN_BATCH_HEADER_SIZE;
    uint8_t *batch = malloc(RN_BATCH_HEADER_SIZE + records_len + 32);
    assert_non_null(batch);
    const uint64_t claims[] = {records_len, 1ull << 40, (64u << 10) + 1, UINT64_MAX - 2};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        memcpy(batch, plain.data, RN_BATCH_HEADER_SIZE);
        size_t n = raw_zstd_frame(batch + RN_BATCH_HEADER_SIZE, records, records_len, claims[i]);
        size_t total = RN_BATCH_HEADER_SIZE + n;
        rn_le_put32(batch + RN_BATCH_OFF_LENGTH, (uint32_t)(total - RN_BATCH_LOG_OVERHEAD));
        rn_le_put16(batch + 25, RN_CODEC_ZSTD);
        rehash(batch, total);
        rn_batch_header_t h;
        /* validate never decompresses, so it cannot see the lie. */
        assert_int_equal(rn_batch_validate(batch, total, &h), RN_OK);
        err = iter_init_verdict(batch, total, 64u << 10);
        if (claims[i] == records_len) {
            if (err != RN_OK) /* the hand-made frame is sound when it tells the truth */
                fail_msg("honest raw zstd frame refused: %s", rn_err_name(err));
            expect_records(batch, total, small, N_SMALL, 0, RN_CODEC_ZSTD);
        } else if (err != RN_ERR_DECOMPRESS) {
            fail_msg("zstd frame claiming %llu bytes (limit 64 KiB): iter_init returned %s, "
                     "want DECOMPRESS", (unsigned long long)claims[i], rn_err_name(err));
        }
    }
    free(batch);

    /* A frame that does not state its size cannot be bounded up front: refused. */
    ZSTD_CCtx *z = ZSTD_createCCtx();
    assert_non_null(z);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0)));
    rn_buf_t wrapped = RN_BUF_INIT;
    size_t bound = ZSTD_compressBound(records_len);
    assert_int_equal(rn_buf_reserve(&wrapped, RN_BATCH_HEADER_SIZE + bound), RN_OK);
    memcpy(wrapped.data, plain.data, RN_BATCH_HEADER_SIZE);
    size_t n = ZSTD_compress2(z, wrapped.data + RN_BATCH_HEADER_SIZE, bound, records,
                              records_len);
    assert_false(ZSTD_isError(n));
    assert_true(ZSTD_getFrameContentSize(wrapped.data + RN_BATCH_HEADER_SIZE, n) ==
                ZSTD_CONTENTSIZE_UNKNOWN);
    wrapped.len = RN_BATCH_HEADER_SIZE + n;
    rn_le_put32(wrapped.data + RN_BATCH_OFF_LENGTH,
                (uint32_t)(wrapped.len - RN_BATCH_LOG_OVERHEAD));
    rn_le_put16(wrapped.data + 25, RN_CODEC_ZSTD);
    rehash(wrapped.data, wrapped.len);
    err = iter_init_verdict(wrapped.data, wrapped.len, 1u << 20);
    if (err != RN_ERR_DECOMPRESS)
        fail_msg("zstd frame of unknown size: iter_init returned %s, want DECOMPRESS",
                 rn_err_name(err));
    rn_buf_free(&wrapped);
    ZSTD_freeCCtx(z);
    rn_buf_free(&plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_none),
        cmocka_unit_test(test_round_trip_zstd),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_builder_reuse_and_consecutive_batches),
        cmocka_unit_test(test_builder_refused_add_leaves_batch_alone),
        cmocka_unit_test(test_checksum_detects_every_bit_flip),
        cmocka_unit_test(test_property_bit_flips),
        cmocka_unit_test(test_property_bit_flips_rehashed),
        cmocka_unit_test(test_property_record_flips_rewrapped),
        cmocka_unit_test(test_property_truncation),
        cmocka_unit_test(test_property_extreme_fields),
        cmocka_unit_test(test_zstd_decompression_limits),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
