/*
 * frame.c: the incremental frame decoder, Request/Response (un)packing and the correlation-id
 * peek the broker uses to answer a frame it cannot parse.
 *
 * Every input handed to the code under test sits in a heap block of exactly its size, so an
 * out-of-bounds read shows under ASan (build with -DRUNNEL_SANITIZE=ON).
 * Random tests print their seed on failure; replay with RUNNEL_TEST_SEED=<seed>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "testutil.h"

#include "buf.h"
#include "frame.h"
#include "varint.h"

/* ------------------------------------------------------------------ helpers ---- */

static uint64_t seed;

static int setup_seed(void **state)
{
    (void)state;
    seed = rn_t_seed(__FILE__);
    return 0;
}

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            print_message("seed=%llu (replay: RUNNEL_TEST_SEED=%llu)\n",                   \
                          (unsigned long long)seed, (unsigned long long)seed);             \
            fail_msg(__VA_ARGS__);                                                         \
        }                                                                                  \
    } while (0)

/* A heap copy of exactly len bytes, so ASan flags any read past the end. */
static uint8_t *exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, data, len);
    return p;
}

/*
 * A Request with a header and, by `kind`, no body, a Metadata body, or a Produce body carrying
 * `records_len` bytes of a pattern (large ones make frames span many feeds).
 */
struct req_fixture {
    Runnel__Request req;
    Runnel__RequestHeader hdr;
    Runnel__MetadataRequest meta;
    char *topics[2];
    Runnel__ApiVersionsRequest apiv;
    Runnel__ProduceRequest produce;
    Runnel__ProduceTopic ptopic;
    Runnel__ProduceTopic *ptopics[1];
    Runnel__ProducePartition ppart;
    Runnel__ProducePartition *pparts[1];
    uint8_t *records;
};

enum req_kind { REQ_HEADER_ONLY, REQ_METADATA, REQ_API_VERSIONS, REQ_PRODUCE };

static void req_init(struct req_fixture *f, enum req_kind kind, uint32_t cid, size_t records_len)
{
    memset(f, 0, sizeof *f);
    runnel__request__init(&f->req);
    runnel__request_header__init(&f->hdr);
    f->hdr.api = RUNNEL__API_KEY__API_METADATA;
    f->hdr.api_version = 3;
    f->hdr.correlation_id = cid;
    f->hdr.client_id = "test-client";
    f->req.header = &f->hdr;
    switch (kind) {
    case REQ_HEADER_ONLY:
        break;
    case REQ_METADATA:
        runnel__metadata_request__init(&f->meta);
        f->topics[0] = "orders";
        f->topics[1] = "payments";
        f->meta.n_topics = 2;
        f->meta.topics = f->topics;
        f->req.body_case = RUNNEL__REQUEST__BODY_METADATA;
        f->req.metadata = &f->meta;
        break;
    case REQ_API_VERSIONS:
        runnel__api_versions_request__init(&f->apiv);
        f->hdr.api = RUNNEL__API_KEY__API_VERSIONS;
        f->req.body_case = RUNNEL__REQUEST__BODY_API_VERSIONS;
        f->req.api_versions = &f->apiv;
        break;
    case REQ_PRODUCE:
        f->hdr.api = RUNNEL__API_KEY__API_PRODUCE;
        runnel__produce_request__init(&f->produce);
        runnel__produce_topic__init(&f->ptopic);
        runnel__produce_partition__init(&f->ppart);
        f->records = malloc(records_len ? records_len : 1);
        assert_non_null(f->records);
        for (size_t i = 0; i < records_len; i++)
            f->records[i] = (uint8_t)(i * 31 + cid);
        f->ppart.partition = 7;
        f->ppart.records.data = f->records;
        f->ppart.records.len = records_len;
        f->pparts[0] = &f->ppart;
        f->ptopic.name = "orders";
        f->ptopic.n_partitions = 1;
        f->ptopic.partitions = f->pparts;
        f->ptopics[0] = &f->ptopic;
        f->produce.acks = -1;
        f->produce.timeout_ms = 30000;
        f->produce.n_topics = 1;
        f->produce.topics = f->ptopics;
        f->req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
        f->req.produce = &f->produce;
        break;
    }
}

static void req_fini(struct req_fixture *f)
{
    free(f->records);
}

/* Packs a request and returns its payload (without the length prefix) as a fresh buffer. */
static uint8_t *pack_payload(const Runnel__Request *req, size_t *len)
{
    rn_buf_t out = RN_BUF_INIT;
    assert_int_equal(rn_frame_pack(&req->base, &out), RN_OK);
    assert_true(out.len >= RN_FRAME_LEN_SIZE);
    *len = out.len - RN_FRAME_LEN_SIZE;
    assert_int_equal(rn_le_get32(out.data), *len);
    uint8_t *p = exact_copy(out.data + RN_FRAME_LEN_SIZE, *len);
    rn_buf_free(&out);
    return p;
}

/* ----------------------------------------------------------- decoder stream ---- */

#define STREAM_FRAMES 12

struct stream {
    rn_buf_t bytes;
    size_t off[STREAM_FRAMES]; /* payload offset of frame i in bytes */
    uint32_t len[STREAM_FRAMES];
    uint32_t cid[STREAM_FRAMES];
    size_t n;
};

/*
 * Several packed Requests back to back: small and large, a zero-length frame (an empty
 * Request: all fields default), and two adjacent tiny ones so a single feed holds more than one.
 */
static void stream_build(struct stream *s)
{
    static const struct {
        enum req_kind kind;
        size_t records_len;
    } plan[STREAM_FRAMES] = {
        {REQ_METADATA, 0},      {REQ_PRODUCE, 3000},   {REQ_HEADER_ONLY, 0},
        {REQ_API_VERSIONS, 0},  {REQ_PRODUCE, 1},      {REQ_PRODUCE, 70000},
        {REQ_HEADER_ONLY, 0},   {REQ_METADATA, 0},     {REQ_PRODUCE, 127},
        {REQ_PRODUCE, 128},     {REQ_API_VERSIONS, 0}, {REQ_METADATA, 0},
    };
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < STREAM_FRAMES; i++) {
        if (i == 6) { /* a zero-length frame */
            uint8_t *p = rn_buf_extend(&s->bytes, RN_FRAME_LEN_SIZE);
            assert_non_null(p);
            rn_le_put32(p, 0);
            s->off[i] = s->bytes.len;
            s->len[i] = 0;
            s->cid[i] = 0;
            s->n++;
            continue;
        }
        struct req_fixture f;
        uint32_t cid = 1000 + (uint32_t)i * 7919;
        req_init(&f, plan[i].kind, cid, plan[i].records_len);
        size_t before = s->bytes.len;
        assert_int_equal(rn_frame_pack(&f.req.base, &s->bytes), RN_OK);
        s->off[i] = before + RN_FRAME_LEN_SIZE;
        s->len[i] = (uint32_t)(s->bytes.len - s->off[i]);
        assert_int_equal(rn_le_get32(s->bytes.data + before), s->len[i]);
        s->cid[i] = cid;
        s->n++;
        req_fini(&f);
    }
}

enum chunking { CHUNK_ALL, CHUNK_ONE_BYTE, CHUNK_RANDOM, CHUNK_FIXED };

static const char *chunking_name(enum chunking c)
{
    switch (c) {
    case CHUNK_ALL: return "all at once";
    case CHUNK_ONE_BYTE: return "one byte at a time";
    case CHUNK_RANDOM: return "random chunks";
    default: return "fixed chunks";
    }
}

/*
 * Feeds the stream to a fresh decoder in chunks and checks that exactly the stream's frames come
 * out, in order, byte for byte, and that the decoder holds nothing at each frame boundary.
 */
static void decode_and_compare(const struct stream *s, enum chunking how, size_t fixed,
                               uint64_t *rng)
{
    rn_frame_dec_t *d = rn_frame_dec_new(1u << 20);
    assert_non_null(d);
    size_t got = 0, pos = 0;
    const char *how_name = chunking_name(how);
    while (pos < s->bytes.len) {
        size_t chunk = s->bytes.len - pos;
        if (how == CHUNK_ONE_BYTE)
            chunk = 1;
        else if (how == CHUNK_FIXED && chunk > fixed)
            chunk = fixed;
        else if (how == CHUNK_RANDOM) {
            /* Mostly small chunks (splitting length prefixes), sometimes large ones. */
            size_t max = rn_t_rng_below(rng, 8) == 0 ? 5000 : 9;
            size_t c = 1 + rn_t_rng_below(rng, max);
            if (c < chunk)
                chunk = c;
        }
        uint8_t *buf = exact_copy(s->bytes.data + pos, chunk);
        size_t at = 0;
        for (;;) {
            size_t consumed = 0;
            const uint8_t *payload = NULL;
            uint32_t payload_len = 0;
            rn_err_t err = rn_frame_dec_feed(d, buf + at, chunk - at, &consumed, &payload,
                                             &payload_len);
            CHECK(consumed <= chunk - at, "%s: consumed %zu of %zu bytes", how_name, consumed,
                  chunk - at);
            at += consumed;
            if (err == RN_ERR_AGAIN) {
                CHECK(at == chunk, "%s: AGAIN left %zu bytes unconsumed", how_name, chunk - at);
                break;
            }
            CHECK(err == RN_OK, "%s: feed at stream byte %zu returned %s", how_name, pos + at,
                  rn_err_name(err));
            CHECK(got < s->n, "%s: decoder produced more than %zu frames", how_name, s->n);
            CHECK(payload_len == s->len[got], "%s: frame %zu has length %u, want %u", how_name,
                  got, payload_len, s->len[got]);
            CHECK(payload_len == 0 ||
                      memcmp(payload, s->bytes.data + s->off[got], payload_len) == 0,
                  "%s: frame %zu payload differs from what was packed", how_name, got);
            CHECK(rn_frame_dec_pending(d) == 0, "%s: %zu bytes pending after frame %zu",
                  how_name, rn_frame_dec_pending(d), got);
            Runnel__Request *req = NULL;
            CHECK(rn_frame_unpack_request(payload, payload_len, &req) == RN_OK,
                  "%s: frame %zu does not unpack", how_name, got);
            uint32_t want_cid = s->cid[got];
            CHECK(want_cid == 0 ? req->header == NULL : req->header != NULL &&
                                                            req->header->correlation_id == want_cid,
                  "%s: frame %zu lost its correlation id %u", how_name, got, want_cid);
            runnel__request__free_unpacked(req, NULL);
            got++;
            if (at == chunk)
                break;
        }
        free(buf);
        pos += chunk;
    }
    CHECK(got == s->n, "%s: decoded %zu frames, want %zu", how_name, got, s->n);
    CHECK(rn_frame_dec_pending(d) == 0, "%s: bytes pending at end of stream", how_name);
    rn_frame_dec_free(d);
}

static void test_decoder_chunking_yields_same_frames(void **state)
{
    (void)state;
    struct stream s;
    stream_build(&s);
    uint64_t rng = seed;
    decode_and_compare(&s, CHUNK_ALL, 0, &rng);
    decode_and_compare(&s, CHUNK_ONE_BYTE, 0, &rng);
    static const size_t fixed[] = {2, 3, 4, 5, 7, 64, 4096};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        decode_and_compare(&s, CHUNK_FIXED, fixed[i], &rng);
    for (int round = 0; round < 50; round++)
        decode_and_compare(&s, CHUNK_RANDOM, 0, &rng);
    rn_buf_free(&s.bytes);
}

/* ------------------------------------------------------------- limits ---- */

/* Feeds one byte; returns the result and checks that the byte was consumed unless refused. */
static rn_err_t feed_byte(rn_frame_dec_t *d, uint8_t byte)
{
    uint8_t *b = exact_copy(&byte, 1);
    size_t consumed;
    const uint8_t *payload;
    uint32_t payload_len;
    rn_err_t err = rn_frame_dec_feed(d, b, 1, &consumed, &payload, &payload_len);
    free(b);
    return err;
}

static void test_too_large_rejected_at_length_prefix(void **state)
{
    (void)state;
    const uint32_t max_len = 1000;
    const uint32_t lens[] = {max_len + 1, 1u << 20, UINT32_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t prefix[RN_FRAME_LEN_SIZE];
        rn_le_put32(prefix, lens[i]);

        /* Byte by byte: AGAIN for the first three, refusal on the fourth. */
        rn_frame_dec_t *d = rn_frame_dec_new(max_len);
        assert_non_null(d);
        for (int b = 0; b < 3; b++) {
            rn_err_t err = feed_byte(d, prefix[b]);
            if (err != RN_ERR_AGAIN)
                fail_msg("length %u: byte %d of the prefix returned %s, want AGAIN", lens[i], b,
                         rn_err_name(err));
        }
        rn_err_t err = feed_byte(d, prefix[3]);
        if (err != RN_ERR_FRAME_TOO_LARGE)
            fail_msg("length %u > max %u: last prefix byte returned %s, want FRAME_TOO_LARGE",
                     lens[i], max_len, rn_err_name(err));
        assert_true(rn_frame_dec_pending(d) <= RN_FRAME_LEN_SIZE);
        /* The stream cannot be resynced: more payload bytes are refused, never buffered. */
        for (int b = 0; b < 100; b++) {
            if ((err = feed_byte(d, 0x55)) != RN_ERR_FRAME_TOO_LARGE)
                fail_msg("after FRAME_TOO_LARGE, a further byte returned %s", rn_err_name(err));
            if (rn_frame_dec_pending(d) > RN_FRAME_LEN_SIZE)
                fail_msg("decoder buffered %zu bytes of a frame it refused",
                         rn_frame_dec_pending(d));
        }
        rn_frame_dec_free(d);

        /* All at once, with a megabyte of "payload" behind the prefix: nothing is taken past
         * the prefix, so nothing of that size is copied or allocated. */
        size_t big = (1u << 20) + RN_FRAME_LEN_SIZE;
        uint8_t *stream = calloc(1, big);
        assert_non_null(stream);
        memcpy(stream, prefix, RN_FRAME_LEN_SIZE);
        d = rn_frame_dec_new(max_len);
        assert_non_null(d);
        size_t consumed = 0;
        const uint8_t *payload;
        uint32_t payload_len;
        err = rn_frame_dec_feed(d, stream, big, &consumed, &payload, &payload_len);
        assert_int_equal(err, RN_ERR_FRAME_TOO_LARGE);
        assert_true(consumed <= RN_FRAME_LEN_SIZE);
        assert_true(rn_frame_dec_pending(d) <= RN_FRAME_LEN_SIZE);
        rn_frame_dec_free(d);
        free(stream);
    }
}

/* A frame of exactly max_len bytes is accepted; the limit is inclusive. */
static void test_max_len_inclusive(void **state)
{
    (void)state;
    const uint32_t max_len = 300;
    uint8_t *stream = calloc(1, RN_FRAME_LEN_SIZE + max_len);
    assert_non_null(stream);
    rn_le_put32(stream, max_len);
    rn_frame_dec_t *d = rn_frame_dec_new(max_len);
    assert_non_null(d);
    size_t consumed;
    const uint8_t *payload;
    uint32_t payload_len;
    assert_int_equal(rn_frame_dec_feed(d, stream, RN_FRAME_LEN_SIZE + max_len, &consumed,
                                       &payload, &payload_len),
                     RN_OK);
    assert_int_equal(payload_len, max_len);
    assert_int_equal(consumed, RN_FRAME_LEN_SIZE + max_len);
    rn_frame_dec_free(d);
    free(stream);
}

static void test_zero_length_frame(void **state)
{
    (void)state;
    static const uint8_t zero[RN_FRAME_LEN_SIZE] = {0, 0, 0, 0};
    /* Whole. */
    rn_frame_dec_t *d = rn_frame_dec_new(0); /* even a decoder that allows only empty frames */
    assert_non_null(d);
    uint8_t *buf = exact_copy(zero, sizeof zero);
    size_t consumed;
    const uint8_t *payload = NULL;
    uint32_t payload_len = 99;
    assert_int_equal(rn_frame_dec_feed(d, buf, sizeof zero, &consumed, &payload, &payload_len),
                     RN_OK);
    assert_int_equal(consumed, sizeof zero);
    assert_int_equal(payload_len, 0);
    assert_int_equal(rn_frame_dec_pending(d), 0);
    free(buf);
    /* Byte by byte, twice in a row on the same decoder. */
    for (int frame = 0; frame < 2; frame++) {
        for (int b = 0; b < 3; b++)
            assert_int_equal(feed_byte(d, 0), RN_ERR_AGAIN);
        assert_int_equal(feed_byte(d, 0), RN_OK);
        assert_int_equal(rn_frame_dec_pending(d), 0);
    }
    /* An empty payload is a valid, all-default Request with no header to peek at. */
    Runnel__Request *req = NULL;
    uint8_t empty = 0;
    assert_int_equal(rn_frame_unpack_request(&empty, 0, &req), RN_OK);
    assert_null(req->header);
    assert_int_equal(req->body_case, RUNNEL__REQUEST__BODY__NOT_SET);
    runnel__request__free_unpacked(req, NULL);
    uint32_t cid;
    assert_int_equal(rn_frame_peek_correlation_id(&empty, 0, &cid), RN_ERR_NOT_FOUND);
    rn_frame_dec_free(d);
}

/* --------------------------------------------------------------- unpacking ---- */

/* Bytes the header field (tag, length, message) takes at the start of a packed Request. */
static size_t header_field_end(const uint8_t *payload, size_t len)
{
    assert_true(len >= 2);
    assert_int_equal(payload[0], 0x0a); /* field 1, wire type 2: protobuf-c writes it first */
    uint64_t hlen;
    size_t n = rn_varint_get_u64(payload + 1, payload + len, &hlen);
    assert_true(n > 0);
    return 1 + n + (size_t)hlen;
}

/*
 * Every prefix of a valid payload: unpack rejects it or returns a message (protobuf cannot tell
 * some prefixes from a shorter message), never crashes or reads past the prefix; peek finds the
 * correlation id in every prefix that holds the whole header. The full payload round-trips.
 */
static void test_truncated_payloads(void **state)
{
    (void)state;
    struct req_fixture f;
    req_init(&f, REQ_PRODUCE, 424242, 200);
    size_t len;
    uint8_t *full = pack_payload(&f.req, &len);
    size_t hdr_end = header_field_end(full, len);
    size_t rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = exact_copy(full, cut);
        Runnel__Request *req = NULL;
        rn_err_t err = rn_frame_unpack_request(p, cut, &req);
        if (err == RN_OK) {
            assert_non_null(req);
            runnel__request__free_unpacked(req, NULL);
        } else {
            if (err != RN_ERR_MALFORMED)
                fail_msg("prefix of %zu bytes: unpack returned %s, want OK or MALFORMED", cut,
                         rn_err_name(err));
            rejected++;
        }
        uint32_t cid = 0;
        err = rn_frame_peek_correlation_id(p, cut, &cid);
        if (cut >= hdr_end && (err != RN_OK || cid != 424242))
            fail_msg("prefix of %zu bytes holds the whole header, but peek returned %s cid %u",
                     cut, rn_err_name(err), cid);
        if (err != RN_OK && err != RN_ERR_NOT_FOUND)
            fail_msg("prefix of %zu bytes: peek returned %s", cut, rn_err_name(err));
        free(p);
    }
    /* A cut inside a length-delimited field must be refused; most cuts are such. */
    if (rejected < len / 2)
        fail_msg("only %zu of %zu truncated payloads were rejected", rejected, len);

    Runnel__Request *req = NULL;
    assert_int_equal(rn_frame_unpack_request(full, len, &req), RN_OK);
    assert_non_null(req->header);
    assert_int_equal(req->header->correlation_id, 424242);
    assert_int_equal(req->header->api, RUNNEL__API_KEY__API_PRODUCE);
    assert_int_equal(req->header->api_version, 3);
    assert_string_equal(req->header->client_id, "test-client");
    assert_int_equal(req->body_case, RUNNEL__REQUEST__BODY_PRODUCE);
    assert_int_equal(req->produce->acks, -1);
    assert_int_equal(req->produce->timeout_ms, 30000);
    assert_int_equal(req->produce->n_topics, 1);
    assert_string_equal(req->produce->topics[0]->name, "orders");
    assert_int_equal(req->produce->topics[0]->n_partitions, 1);
    assert_int_equal(req->produce->topics[0]->partitions[0]->partition, 7);
    assert_int_equal(req->produce->topics[0]->partitions[0]->records.len, 200);
    assert_memory_equal(req->produce->topics[0]->partitions[0]->records.data, f.records, 200);
    runnel__request__free_unpacked(req, NULL);
    free(full);
    req_fini(&f);
}

static void test_response_round_trip(void **state)
{
    (void)state;
    Runnel__Response resp = RUNNEL__RESPONSE__INIT;
    resp.correlation_id = 77;
    resp.error = RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER;
    resp.error_message = "partition 3 moved";
    rn_buf_t out = RN_BUF_INIT;
    assert_int_equal(rn_frame_pack(&resp.base, &out), RN_OK);
    rn_frame_dec_t *d = rn_frame_dec_new(1024);
    assert_non_null(d);
    size_t consumed;
    const uint8_t *payload;
    uint32_t payload_len;
    assert_int_equal(rn_frame_dec_feed(d, out.data, out.len, &consumed, &payload, &payload_len),
                     RN_OK);
    assert_int_equal(consumed, out.len);
    Runnel__Response *got = NULL;
    assert_int_equal(rn_frame_unpack_response(payload, payload_len, &got), RN_OK);
    assert_int_equal(got->correlation_id, 77);
    assert_int_equal((int)got->error, (int)RN_ERR_NOT_LEADER_OR_FOLLOWER);
    assert_string_equal(got->error_message, "partition 3 moved");
    runnel__response__free_unpacked(got, NULL);
    /* A truncated response is refused. */
    assert_int_equal(rn_frame_unpack_response(payload, payload_len - 1, &got), RN_ERR_MALFORMED);
    rn_frame_dec_free(d);
    rn_buf_free(&out);
}

/* -------------------------------------------------------------------- peek ---- */

static rn_err_t peek(const uint8_t *data, size_t len, uint32_t *cid)
{
    uint8_t *p = exact_copy(data, len);
    rn_err_t err = rn_frame_peek_correlation_id(p, len, cid);
    free(p);
    return err;
}

static void test_peek_valid_request(void **state)
{
    (void)state;
    const uint32_t cids[] = {1, 127, 128, 424242, UINT32_MAX, 0};
    const enum req_kind kinds[] = {REQ_HEADER_ONLY, REQ_METADATA, REQ_API_VERSIONS, REQ_PRODUCE};
    for (size_t i = 0; i < sizeof cids / sizeof cids[0]; i++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            struct req_fixture f;
            req_init(&f, kinds[k], cids[i], 50);
            size_t len;
            uint8_t *payload = pack_payload(&f.req, &len);
            uint32_t cid = 0xdeadbeef;
            rn_err_t err = peek(payload, len, &cid);
            /* cid 0 is not on the wire at all (proto3 omits zero values) and still reads 0. */
            if (err != RN_OK || cid != cids[i])
                fail_msg("peek of a valid request (kind %d) with correlation id %u: %s, %u",
                         (int)kinds[k], cids[i], rn_err_name(err), cid);
            free(payload);
            req_fini(&f);
        }
    }
}

/* The case peek exists for: a readable header followed by a body protobuf-c refuses. */
static void test_peek_garbage_body(void **state)
{
    (void)state;
    static const uint8_t garbage[][8] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* unterminated varint key */
        {0x72, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}, /* produce body, length past end */
        {0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* field 1 as a group */
        {0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* wire type 7 */
        {0x0a, 0x09, 0x18, 0x05, 0x00, 0x00, 0x00, 0x00}, /* second header, length past end */
    };
    for (size_t g = 0; g < sizeof garbage / sizeof garbage[0]; g++) {
        struct req_fixture f;
        req_init(&f, REQ_HEADER_ONLY, 31337, 0);
        rn_buf_t b = RN_BUF_INIT;
        assert_int_equal(rn_frame_pack(&f.req.base, &b), RN_OK);
        assert_int_equal(rn_buf_append(&b, garbage[g], sizeof garbage[g]), RN_OK);
        const uint8_t *payload = b.data + RN_FRAME_LEN_SIZE;
        size_t len = b.len - RN_FRAME_LEN_SIZE;
        uint8_t *p = exact_copy(payload, len);
        Runnel__Request *req = NULL;
        if (rn_frame_unpack_request(p, len, &req) != RN_ERR_MALFORMED)
            fail_msg("garbage body %zu: protobuf-c accepted it; the test needs a bad body", g);
        uint32_t cid = 0;
        rn_err_t err = rn_frame_peek_correlation_id(p, len, &cid);
        if (err != RN_OK || cid != 31337)
            fail_msg("garbage body %zu after a good header: peek returned %s cid %u, want 31337",
                     g, rn_err_name(err), cid);
        free(p);
        rn_buf_free(&b);
        req_fini(&f);
    }
}

/*
 * Hand-written payloads on which peek must agree with what protobuf-c decodes: a header after
 * the body, a repeated header (the last wins), a repeated correlation_id, a header without one
 * (proto3 default 0), and a 64-bit varint in the 32-bit field (the low 32 bits count).
 */
static void test_peek_agrees_with_protobuf_c(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
    } cases[] = {
        {"header after body", {0x5a, 0x00, 0x0a, 0x02, 0x18, 0x2a}, 6},
        {"repeated header", {0x0a, 0x02, 0x18, 0x05, 0x0a, 0x02, 0x18, 0x07}, 8},
        {"repeated correlation_id", {0x0a, 0x04, 0x18, 0x05, 0x18, 0x09}, 6},
        {"header without correlation_id", {0x0a, 0x02, 0x08, 0x02}, 4},
        {"empty header", {0x0a, 0x00}, 2},
        {"64-bit correlation_id", {0x0a, 0x06, 0x18, 0x85, 0x80, 0x80, 0x80, 0x10}, 8},
        {"unknown fields around", {0x40, 0x01, 0x0a, 0x02, 0x18, 0x03, 0xfa, 0x01, 0x00}, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *p = exact_copy(cases[i].bytes, cases[i].len);
        Runnel__Request *req = NULL;
        if (rn_frame_unpack_request(p, cases[i].len, &req) != RN_OK || !req->header)
            fail_msg("%s: protobuf-c should accept this payload with a header", cases[i].what);
        uint32_t cid = 0xdeadbeef;
        rn_err_t err = rn_frame_peek_correlation_id(p, cases[i].len, &cid);
        if (err != RN_OK || cid != req->header->correlation_id)
            fail_msg("%s: peek returned %s cid %u, protobuf-c decodes %u", cases[i].what,
                     rn_err_name(err), cid, req->header->correlation_id);
        runnel__request__free_unpacked(req, NULL);
        free(p);
    }
}

/* Random bytes: OK or NOT_FOUND, never a crash or a read past the end (see ASan). */
static void test_peek_random_bytes(void **state)
{
    (void)state;
    uint64_t rng = seed;
    static const uint8_t fixed[][6] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* unterminated varint */
        {0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* field 0 varints: no header anywhere */
        {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, /* header whose length runs past the end */
        {0x0a, 0x04, 0x18, 0xff, 0xff, 0xff}, /* correlation_id varint cut off */
        {0x0a, 0x03, 0x07, 0x18, 0x05, 0x00}, /* damage before the correlation_id */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        for (size_t len = 0; len <= sizeof fixed[i]; len++) {
            uint32_t cid;
            rn_err_t err = peek(fixed[i], len, &cid);
            if (err != RN_ERR_NOT_FOUND)
                fail_msg("fixed garbage %zu, %zu bytes: peek returned %s (cid %u), want "
                         "NOT_FOUND", i, len, rn_err_name(err), cid);
        }
    }
    size_t found = 0;
    const int rounds = 20000;
    for (int i = 0; i < rounds; i++) {
        uint8_t buf[64];
        size_t len = rn_t_rng_below(&rng, sizeof buf + 1);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rn_t_rng(&rng);
        bool no_tag = rn_t_rng_below(&rng, 2) == 0 && len > 0;
        if (no_tag)
            buf[0] = (uint8_t)(0x06 | (rn_t_rng(&rng) & 0x78)); /* wire type 6: not a field */
        uint32_t cid;
        rn_err_t err = peek(buf, len, &cid);
        CHECK(err == RN_OK || err == RN_ERR_NOT_FOUND, "random bytes round %d: peek returned %s",
              i, rn_err_name(err));
        CHECK(!no_tag || err == RN_ERR_NOT_FOUND,
              "random bytes round %d starting with no valid field: peek returned %s", i,
              rn_err_name(err));
        found += err == RN_OK;
    }
    /* A header tag (0x0a) must be where a field starts; random bytes rarely manage that. */
    CHECK(found < (size_t)rounds / 20, "peek found a correlation id in %zu of %d random inputs",
          found, rounds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_chunking_yields_same_frames),
        cmocka_unit_test(test_too_large_rejected_at_length_prefix),
        cmocka_unit_test(test_max_len_inclusive),
        cmocka_unit_test(test_zero_length_frame),
        cmocka_unit_test(test_truncated_payloads),
        cmocka_unit_test(test_response_round_trip),
        cmocka_unit_test(test_peek_valid_request),
        cmocka_unit_test(test_peek_garbage_body),
        cmocka_unit_test(test_peek_agrees_with_protobuf_c),
        cmocka_unit_test(test_peek_random_bytes),
    };
    return cmocka_run_group_tests(tests, setup_seed, NULL);
}
