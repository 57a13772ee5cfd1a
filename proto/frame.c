#include "frame.h"

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

size_t rn_frame_dec_pending(const rn_frame_dec_t *d)
{
    return d->len_have + d->payload.len;
}

rn_err_t rn_frame_dec_feed(rn_frame_dec_t *d, const uint8_t *data, size_t len, size_t *consumed,
                           const uint8_t **payload, uint32_t *payload_len)
{
    size_t pos = 0;
    *consumed = 0;

    if (d->len_have == RN_FRAME_LEN_SIZE && d->payload.len == d->want) {
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
    if (take && rn_buf_append(&d->payload, data + pos, take) != RN_OK)
        return RN_ERR_NOMEM;
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

/* Skips one field's value of the given wire type; returns bytes skipped or 0 if malformed. */
static size_t skip_field(const uint8_t *p, const uint8_t *end, unsigned wire_type)
{
    uint64_t v;
    size_t n;
    switch (wire_type) {
    case 0:
        return rn_varint_get_u64(p, end, &v);
    case 1:
        return end - p >= 8 ? 8 : 0;
    case 2:
        n = rn_varint_get_u64(p, end, &v);
        if (!n || v > (uint64_t)(end - p - n))
            return 0;
        return n + (size_t)v;
    case 5:
        return end - p >= 4 ? 4 : 0;
    default:
        return 0;
    }
}

/* Finds the first occurrence of field `number` with wire type `want_type`; returns the position
 * of its value, or NULL. */
static const uint8_t *find_field(const uint8_t *p, const uint8_t *end, uint64_t number,
                                 unsigned want_type)
{
    while (p < end) {
        uint64_t key;
        size_t n = rn_varint_get_u64(p, end, &key);
        if (!n)
            return NULL;
        p += n;
        if ((key >> 3) == number && (key & 7) == want_type)
            return p;
        size_t skip = skip_field(p, end, (unsigned)(key & 7));
        if (!skip)
            return NULL;
        p += skip;
    }
    return NULL;
}

rn_err_t rn_frame_peek_correlation_id(const uint8_t *payload, size_t len, uint32_t *cid)
{
    const uint8_t *end = payload + len;
    const uint8_t *hdr = find_field(payload, end, 1, 2); /* Request.header */
    if (!hdr)
        return RN_ERR_NOT_FOUND;
    uint64_t hlen;
    size_t n = rn_varint_get_u64(hdr, end, &hlen);
    if (!n || hlen > (uint64_t)(end - hdr - n))
        return RN_ERR_NOT_FOUND;
    hdr += n;
    const uint8_t *v = find_field(hdr, hdr + hlen, 3, 0); /* RequestHeader.correlation_id */
    uint64_t value;
    if (!v || !rn_varint_get_u64(v, hdr + hlen, &value) || value > UINT32_MAX)
        return RN_ERR_NOT_FOUND;
    *cid = (uint32_t)value;
    return RN_OK;
}
