/*
 * fuzz_frame: the frame decoder, Request/Response unpacking and the correlation-id peek.
 *
 * The first input byte picks how the rest is cut into feeds (0: all at once, else random
 * chunks of at most that many bytes), so the fuzzer explores frame boundaries that straddle
 * feeds. Each chunk is copied to a block of exactly its size, so ASan sees any read past it.
 * Every complete frame is unpacked as a Request (and a Response) and peeked at; a Request
 * protobuf-c accepts is re-packed and peek must then agree with protobuf-c exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

#define MAX_FRAME (64u << 10)

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* Peek on the canonical encoding protobuf-c writes must read what protobuf-c decodes. */
static void check_peek_on_repacked(const Runnel__Request *req)
{
    rn_buf_t out = RN_BUF_INIT;
    check(rn_frame_pack(&req->base, &out) == RN_OK);
    const uint8_t *payload = out.data + RN_FRAME_LEN_SIZE;
    size_t len = out.len - RN_FRAME_LEN_SIZE;
    uint8_t *copy = malloc(len ? len : 1);
    check(copy != NULL);
    if (len)
        memcpy(copy, payload, len);
    uint32_t cid = 0;
    rn_err_t err = rn_frame_peek_correlation_id(copy, len, &cid);
    if (req->header)
        check(err == RN_OK && cid == req->header->correlation_id);
    else
        check(err == RN_ERR_NOT_FOUND);
    free(copy);
    rn_buf_free(&out);
}

static void check_frame(const uint8_t *frame, uint32_t len)
{
    /* The decoder's own buffer has spare capacity; an exact copy lets ASan see overreads. */
    uint8_t *payload = malloc(len ? len : 1);
    check(payload != NULL);
    if (len)
        memcpy(payload, frame, len);
    uint32_t cid;
    rn_err_t err = rn_frame_peek_correlation_id(payload, len, &cid);
    check(err == RN_OK || err == RN_ERR_NOT_FOUND);

    Runnel__Request *req = NULL;
    err = rn_frame_unpack_request(payload, len, &req);
    check(err == RN_OK || err == RN_ERR_MALFORMED);
    if (err == RN_OK) {
        check_peek_on_repacked(req);
        runnel__request__free_unpacked(req, NULL);
    }
    Runnel__Response *resp = NULL;
    err = rn_frame_unpack_response(payload, len, &resp);
    check(err == RN_OK || err == RN_ERR_MALFORMED);
    if (err == RN_OK)
        runnel__response__free_unpacked(resp, NULL);
    free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t max_chunk = data[0];
    uint64_t rng = max_chunk * 0x9e3779b97f4a7c15ull + size;
    data++;
    size--;

    rn_frame_dec_t *d = rn_frame_dec_new(MAX_FRAME);
    check(d != NULL);
    size_t pos = 0;
    int dead = 0; /* after FRAME_TOO_LARGE the stream cannot be resynced */
    while (pos < size && !dead) {
        size_t chunk = size - pos;
        if (max_chunk) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t c = 1 + (size_t)((rng >> 33) % max_chunk);
            if (c < chunk)
                chunk = c;
        }
        uint8_t *buf = malloc(chunk);
        check(buf != NULL);
        memcpy(buf, data + pos, chunk);
        size_t at = 0;
        for (;;) {
            size_t consumed = 0;
            const uint8_t *payload = NULL;
            uint32_t payload_len = 0;
            rn_err_t err = rn_frame_dec_feed(d, buf + at, chunk - at, &consumed, &payload,
                                             &payload_len);
            check(consumed <= chunk - at);
            at += consumed;
            if (err == RN_ERR_AGAIN) {
                check(at == chunk);
                break;
            }
            if (err == RN_ERR_FRAME_TOO_LARGE) {
                check(rn_frame_dec_pending(d) <= RN_FRAME_LEN_SIZE);
                dead = 1;
                break;
            }
            check(err == RN_OK);
            check(payload_len <= MAX_FRAME);
            check(rn_frame_dec_pending(d) == 0);
            check_frame(payload, payload_len);
            if (at == chunk)
                break;
        }
        free(buf);
        pos += chunk;
    }
    check(dead || rn_frame_dec_pending(d) <= RN_FRAME_LEN_SIZE + MAX_FRAME);
    rn_frame_dec_free(d);
    return 0;
}
