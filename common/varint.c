#include "varint.h"

size_t rn_varint_put_u64(uint8_t *dst, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        dst[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (uint8_t)v;
    return n;
}

size_t rn_varint_put_i64(uint8_t *dst, int64_t v)
{
    return rn_varint_put_u64(dst, rn_zigzag_enc(v));
}

size_t rn_varint_size_u64(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t rn_varint_size_i64(int64_t v)
{
    return rn_varint_size_u64(rn_zigzag_enc(v));
}

size_t rn_varint_get_u64(const uint8_t *src, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < RN_VARINT_MAX; i++) {
        if (src + i >= end)
            return 0;
        uint8_t b = src[i];
        /* The tenth byte may only carry the top bit of a 64-bit value. */
        if (i == RN_VARINT_MAX - 1 && b > 1)
            return 0;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

size_t rn_varint_get_i64(const uint8_t *src, const uint8_t *end, int64_t *out)
{
    uint64_t u;
    size_t n = rn_varint_get_u64(src, end, &u);
    if (n)
        *out = rn_zigzag_dec(u);
    return n;
}
