/*
 * test_broker_badinput.c - misbehaving clients: random bytes, oversized length prefixes,
 * truncated frames, malformed protobuf, unknown APIs and versions, corrupt and oversized
 * batches, missing topics and partitions. After each, a well-behaved client on another
 * connection must still be served correctly (produce, then read its record back).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"
#include "varint.h"

static char *g_dir;
static rn_hbroker_t g_broker;
static int g_good_rounds;

static int setup(void **state)
{
    (void)state;
    g_dir = rn_h_tmpdir("broker-bad");
    char data[600];
    snprintf(data, sizeof data, "%s/data", g_dir);
    const char *settings[] = {"max.frame.bytes=2000000", NULL};
    if (rn_rc_broker_start(&g_broker, data, settings) != 0)
        return -1;
    rn_rc_t c;
    if (rn_rc_connect(&c, g_broker.addr) != 0)
        return -1;
    const char *small[] = {"max.message.bytes=1000", NULL};
    int rc = rn_rc_create_topic(&c, "ok", 1, 1, NULL, NULL, 0) |
             rn_rc_create_topic(&c, "small", 1, 1, small, NULL, 0);
    rn_rc_close(&c);
    return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int status = rn_h_broker_stop(&g_broker);
    if (status != 0)
        rn_h_broker_dump_log(&g_broker);
    rn_h_broker_release(&g_broker);
    rn_h_rmtree(g_dir);
    free(g_dir);
    return status == 0 ? 0 : -1;
}

/* A fresh, well-behaved client: produce one record and read exactly it back. */
static void assert_good_client_served(void)
{
    assert_true(rn_h_broker_alive(&g_broker));
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "good%d", g_good_rounds++);
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, 1, prefix, 0);
    int64_t base = -1;
    assert_int_equal(rn_rc_produce(&c, "ok", 0, 1, b.data, b.len, &base), 0);
    rn_rc_rec_t recs[4];
    assert_int_equal(rn_rc_fetch_all(&c, "ok", 0, base, recs, 4), 1);
    char want[48];
    snprintf(want, sizeof want, "%s-0", prefix);
    assert_string_equal(recs[0].value, want);
    rn_buf_free(&b);
    rn_rc_close(&c);
}

/* A request frame whose header is intact and whose body is whatever bytes follow. */
static size_t header_bytes(uint8_t *out, uint32_t api, uint32_t cid)
{
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = (Runnel__ApiKey)api;
    h.correlation_id = cid;
    size_t n = runnel__request_header__get_packed_size(&h);
    out[0] = (1 << 3) | 2; /* Request.header, length-delimited */
    out[1] = (uint8_t)n;
    runnel__request_header__pack(&h, out + 2);
    return n + 2;
}

/* ------------------------------------------------------------------------ */

static void test_random_bytes(void **state)
{
    (void)state;
    srand(12345);
    for (int round = 0; round < 20; round++) {
        rn_rc_t c;
        assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
        uint8_t junk[4096];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)rand();
        if (round % 2) {
            /* A plausible length prefix, so the garbage reaches the protobuf decoder. */
            rn_le_put32(junk, (uint32_t)(50 + rand() % 1000));
        }
        rn_rc_send_raw(&c, junk, sizeof junk);
        /* Either answered with an error or not, the connection must be closed. */
        assert_true(rn_rc_closed_by_peer(&c, 5000));
        rn_rc_close(&c);
    }
    assert_good_client_served();
}

static void test_oversized_length_prefix(void **state)
{
    (void)state;
    uint32_t lengths[] = {0xFFFFFFFFu, 2000001u};
    for (size_t i = 0; i < 2; i++) {
        rn_rc_t c;
        assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
        uint8_t frame[64];
        rn_le_put32(frame, lengths[i]);
        size_t n = header_bytes(frame + 4, RUNNEL__API_KEY__API_PRODUCE, 77);
        rn_rc_send_raw(&c, frame, 4 + n);
        Runnel__Response *r = rn_rc_recv(&c, 5000);
        assert_non_null(r);
        assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_FRAME_TOO_LARGE);
        assert_int_equal(r->correlation_id, 77);
        assert_non_null(strstr(r->error_message, "max.frame.bytes"));
        rn_rc_free(r);
        assert_true(rn_rc_closed_by_peer(&c, 5000));
        rn_rc_close(&c);
    }
    /* Exactly at the limit is a frame like any other (here: garbage, so INVALID_REQUEST). */
    assert_good_client_served();
}

static void test_truncated_frame_then_close(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    uint8_t frame[64];
    rn_le_put32(frame, 1000);
    size_t n = header_bytes(frame + 4, RUNNEL__API_KEY__API_METADATA, 5);
    rn_rc_send_raw(&c, frame, 4 + n);
    rn_rc_close(&c);
    /* Half a length prefix, then close. */
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    rn_rc_send_raw(&c, "\x10\x00", 2);
    rn_rc_close(&c);
    assert_good_client_served();
}

static void test_malformed_protobuf(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    /* A good request first: its response must still arrive before the error and the close. */
    Runnel__MetadataRequest md = RUNNEL__METADATA_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &md;
    int64_t cid = rn_rc_send(&c, &req, RUNNEL__API_KEY__API_METADATA);
    /* Header intact, then a produce body whose length runs past the frame. */
    uint8_t frame[64];
    size_t n = header_bytes(frame + 4, RUNNEL__API_KEY__API_PRODUCE, 4242);
    frame[4 + n] = (14 << 3) | 2;
    frame[5 + n] = 100;
    frame[6 + n] = 0x08;
    rn_le_put32(frame, (uint32_t)(n + 3));
    rn_rc_send_raw(&c, frame, 4 + n + 3);
    Runnel__Response *r = rn_rc_recv(&c, 5000);
    assert_non_null(r);
    assert_int_equal(r->correlation_id, cid);
    assert_int_equal(r->body_case, RUNNEL__RESPONSE__BODY_METADATA);
    rn_rc_free(r);
    r = rn_rc_recv(&c, 5000);
    assert_non_null(r);
    assert_int_equal(r->correlation_id, 4242);
    assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_INVALID_REQUEST);
    rn_rc_free(r);
    assert_true(rn_rc_closed_by_peer(&c, 5000));
    rn_rc_close(&c);
    assert_good_client_served();
}

static void test_unknown_api_and_version(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    Runnel__MetadataRequest md = RUNNEL__METADATA_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &md;
    /* Unknown API 99: an error response; the connection stays usable. */
    Runnel__Response *r = rn_rc_call(&c, &req, (Runnel__ApiKey)99, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_UNSUPPORTED_VERSION);
    rn_rc_free(r);
    /* Unknown version of a known API: the same. */
    uint8_t frame[64];
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_METADATA;
    h.api_version = 7;
    h.correlation_id = 900;
    req.header = &h;
    size_t n = runnel__request__pack(&req, frame + 4);
    rn_le_put32(frame, (uint32_t)n);
    rn_rc_send_raw(&c, frame, n + 4);
    req.header = NULL;
    r = rn_rc_recv(&c, 5000);
    assert_non_null(r);
    assert_int_equal(r->correlation_id, 900);
    assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_UNSUPPORTED_VERSION);
    rn_rc_free(r);
    /* A body that does not match its API. */
    r = rn_rc_call(&c, &req, RUNNEL__API_KEY__API_PRODUCE, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_INVALID_REQUEST);
    rn_rc_free(r);
    /* Still usable. */
    r = rn_rc_call(&c, &req, RUNNEL__API_KEY__API_METADATA, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, 0);
    assert_int_equal(r->body_case, RUNNEL__RESPONSE__BODY_METADATA);
    rn_rc_free(r);
    rn_rc_close(&c);
    assert_good_client_served();
}

static void test_corrupt_and_oversized_batches(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    int64_t end = rn_rc_list_offset(&c, "ok", 0, -1);
    rn_buf_t good = RN_BUF_INIT, bad = RN_BUF_INIT;
    rn_rc_make_batch(&good, -1, -1, -1, 3, "c", 0);
    rn_buf_append(&bad, good.data, good.len);
    bad.data[bad.len - 2] ^= 0x40; /* a record byte: the checksum no longer matches */
    assert_int_equal(rn_rc_produce(&c, "ok", 0, 1, bad.data, bad.len, NULL),
                     RUNNEL__ERROR_CODE__ERR_CORRUPT_MESSAGE);
    /* A good batch followed by a bad one: all or nothing. */
    rn_buf_t two = RN_BUF_INIT;
    rn_buf_append(&two, good.data, good.len);
    rn_buf_append(&two, bad.data, bad.len);
    assert_int_equal(rn_rc_produce(&c, "ok", 0, 1, two.data, two.len, NULL),
                     RUNNEL__ERROR_CODE__ERR_CORRUPT_MESSAGE);
    /* Truncated, and empty. */
    assert_int_equal(rn_rc_produce(&c, "ok", 0, 1, good.data, good.len - 1, NULL),
                     RUNNEL__ERROR_CODE__ERR_CORRUPT_MESSAGE);
    assert_int_equal(rn_rc_produce(&c, "ok", 0, 1, good.data, 0, NULL),
                     RUNNEL__ERROR_CODE__ERR_CORRUPT_MESSAGE);
    assert_int_equal(rn_rc_list_offset(&c, "ok", 0, -1), end);
    /* Over the topic's max.message.bytes (1000). */
    rn_buf_t big = RN_BUF_INIT;
    rn_rc_make_batch(&big, -1, -1, -1, 100, "a-rather-long-value-to-pass-one-kilobyte", 0);
    assert_int_equal(rn_rc_produce(&c, "small", 0, 1, big.data, big.len, NULL),
                     RUNNEL__ERROR_CODE__ERR_MESSAGE_TOO_LARGE);
    assert_int_equal(rn_rc_list_offset(&c, "small", 0, -1), 0);
    assert_int_equal(rn_rc_produce(&c, "small", 0, 1, good.data, good.len, NULL), 0);
    rn_buf_free(&good);
    rn_buf_free(&bad);
    rn_buf_free(&two);
    rn_buf_free(&big);
    rn_rc_close(&c);
    assert_good_client_served();
}

static void test_missing_topic_and_partition(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, 1, "m", 0);
    assert_int_equal(rn_rc_produce(&c, "nope", 0, 1, b.data, b.len, NULL),
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(rn_rc_produce(&c, "ok", 5, 1, b.data, b.len, NULL),
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    Runnel__Response *r = rn_rc_fetch(&c, "ok", 9, 0, 0, 0, 0, 0, 5000);
    assert_non_null(rn_rc_fetch_part(r));
    assert_int_equal(rn_rc_fetch_part(r)->error,
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_rc_free(r);
    /* A long poll on a missing topic answers at once with the error, not after max_wait. */
    r = rn_rc_fetch(&c, "nope", 0, 0, 0, 0, 1, 10000, 2000);
    assert_non_null(rn_rc_fetch_part(r));
    rn_rc_free(r);
    rn_buf_free(&b);
    rn_rc_close(&c);
    assert_good_client_served();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_oversized_length_prefix),
        cmocka_unit_test(test_truncated_frame_then_close),
        cmocka_unit_test(test_malformed_protobuf),
        cmocka_unit_test(test_unknown_api_and_version),
        cmocka_unit_test(test_corrupt_and_oversized_batches),
        cmocka_unit_test(test_missing_topic_and_partition),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
