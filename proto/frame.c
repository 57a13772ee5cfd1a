#include "frame.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "varint.h"

struct rn_frame_dec {
    uint32_t max_len;
    uint8_t len_bytes[RN_FRAME_LEN_SIZE];
    size_t len_have;   /* length-prefix bytes collected so far */
    uint32_t want;     /* payload length, valid once len_have == 4 */
    rn_buf_t payload;  /* partial payload when a frame spans feeds */
};

rn_frame_dec_t *rn_frame_dec_new(uint32_t max_len)
{
    rn_frame_dec_t *d = calloc(1, sizeof *d);
    if (d)
        d->max_len = max_len;
    return d;
}

void rn_frame_dec_free(rn_frame_dec_t *d)
{
    if (!d)
        return;
    rn_buf_free(&d->payload);
    free(d);
}

/* True when the last call returned a frame out of d->payload, which the next call drops. */
static bool frame_done(const rn_frame_dec_t *d)
{
    return d->len_have == RN_FRAME_LEN_SIZE && d->payload.len == d->want;
}

size_t rn_frame_dec_pending(const rn_frame_dec_t *d)
{
    return frame_done(d) ? 0 : d->len_have + d->payload.len;
}

rn_err_t rn_frame_dec_feed(rn_frame_dec_t *d, const uint8_t *data, size_t len, size_t *consumed,
                           const uint8_t **payload, uint32_t *payload_len)
{
    size_t pos = 0;
    *consumed = 0;

    if (frame_done(d)) {
        /* The previous call returned a frame from our buffer: start a new one. */
        d->len_have = 0;
        rn_buf_reset(&d->payload);
    }
    while (d->len_have < RN_FRAME_LEN_SIZE && pos < len)
        d->len_bytes[d->len_have++] = data[pos++];
    if (d->len_have < RN_FRAME_LEN_SIZE) {
        *consumed = pos;
        return RN_ERR_AGAIN;
    }
    d->want = rn_le_get32(d->len_bytes);
    if (d->want > d->max_len) {
        *consumed = pos;
        return RN_ERR_FRAME_TOO_LARGE;
    }
    /* Fast path: the whole payload is in this input and nothing is buffered. */
    if (d->payload.len == 0 && len - pos >= d->want) {
        *payload = data + pos;
        *payload_len = d->want;
        *consumed = pos + d->want;
        d->len_have = 0;
        return RN_OK;
    }
    size_t take = d->want - d->payload.len;
    if (take > len - pos)
        take = len - pos;
    if (take && rn_buf_append(&d->payload, data + pos, take) != RN_OK) {
        *consumed = pos; /* the length bytes are in d->len_bytes; do not take them twice */
        return RN_ERR_NOMEM;
    }
    pos += take;
    *consumed = pos;
    if (d->payload.len < d->want)
        return RN_ERR_AGAIN;
    *payload = d->payload.data;
    *payload_len = d->want;
    return RN_OK;
}

rn_err_t rn_frame_pack(const ProtobufCMessage *msg, rn_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > UINT32_MAX)
        return RN_ERR_INVALID_ARG;
    uint8_t *p = rn_buf_extend(out, RN_FRAME_LEN_SIZE + n);
    if (!p)
        return RN_ERR_NOMEM;
    rn_le_put32(p, (uint32_t)n);
    protobuf_c_message_pack(msg, p + RN_FRAME_LEN_SIZE);
    return RN_OK;
}

rn_err_t rn_frame_unpack_request(const uint8_t *payload, size_t len, Runnel__Request **out)
{
    *out = runnel__request__unpack(NULL, len, payload);
    return *out ? RN_OK : RN_ERR_MALFORMED;
}

rn_err_t rn_frame_unpack_response(const uint8_t *payload, size_t len, Runnel__Response **out)
{
    *out = runnel__response__unpack(NULL, len, payload);
    return *out ? RN_OK : RN_ERR_MALFORMED;
}

/* One protobuf field: its number, wire type and value (varint, or bytes for wire type 2). */
struct pb_field {
    uint64_t number;
    unsigned wire_type;
    uint64_t varint;
    const uint8_t *bytes;
    size_t bytes_len;
};

/*
 * Reads the field at *p and advances past it. False at end of input or when the field does
 * not parse (truncated, bad wire type, length past end); *p is then unchanged.
 */
static bool pb_next_field(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
    const uint8_t *q = *p;
    uint64_t key, v;
    size_t n = rn_varint_get_u64(q, end, &key);
    if (!n)
        return false;
    q += n;
    f->number = key >> 3;
    f->wire_type = (unsigned)(key & 7);
    switch (f->wire_type) {
    case 0:
        if (!(n = rn_varint_get_u64(q, end, &f->varint)))
            return false;
        q += n;
        break;
    case 1:
    case 5:
        n = f->wire_type == 1 ? 8 : 4;
        if ((size_t)(end - q) < n)
            return false;
        q += n;
        break;
    case 2:
        if (!(n = rn_varint_get_u64(q, end, &v)) || v > (uint64_t)(end - q - n))
            return false;
        f->bytes = q + n;
        f->bytes_len = (size_t)v;
        q += n + (size_t)v;
        break;
    default:
        return false; /* groups (3, 4) are not proto3; 6 and 7 do not exist */
    }
    *p = q;
    return true;
}

/*
 * Decides like protobuf-c on a well-formed payload: the last Request.header wins, the last
 * correlation_id inside it wins, an absent correlation_id is 0 (proto3 does not send zero
 * values), and only the low 32 bits of an over-wide varint count. On a malformed payload the
 * scan stops at the first field that does not parse and uses what it read before that.
 */
rn_err_t rn_frame_peek_correlation_id(const uint8_t *payload, size_t len, uint32_t *cid)
{
    if (len == 0)
        return RN_ERR_NOT_FOUND;
    const uint8_t *p = payload, *end = payload + len;
    const uint8_t *hdr = NULL, *hdr_end = NULL;
    struct pb_field f;
    while (pb_next_field(&p, end, &f)) {
        if (f.number == 1 && f.wire_type == 2) { /* Request.header */
            hdr = f.bytes;
            hdr_end = f.bytes + f.bytes_len;
        }
    }
    if (!hdr)
        return RN_ERR_NOT_FOUND;
    uint64_t value = 0;
    bool seen = false;
    for (p = hdr; p < hdr_end;) {
        if (!pb_next_field(&p, hdr_end, &f)) {
            if (!seen)
                return RN_ERR_NOT_FOUND; /* the id may sit past the damage */
            break;
        }
        if (f.number == 3 && f.wire_type == 0) { /* RequestHeader.correlation_id */
            value = f.varint;
            seen = true;
        }
    }
    *cid = (uint32_t)value;
    return RN_OK;
}
