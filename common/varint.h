/*
 * varint.h - LEB128 varints (unsigned) and zigzag varints (signed), as protobuf writes them,
 * plus little-endian fixed-width loads and stores.
 *
 * Decoders never read past `end`; they return the number of bytes consumed, or 0 when the
 * input is truncated or the varint is longer than 10 bytes (malformed).
 */
#ifndef RN_VARINT_H
#define RN_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RN_VARINT_MAX 10

/* Writes v at dst (room for RN_VARINT_MAX bytes); returns the bytes written. */
size_t rn_varint_put_u64(uint8_t *dst, uint64_t v);
size_t rn_varint_put_i64(uint8_t *dst, int64_t v);
/* Bytes rn_varint_put_* would write. */
size_t rn_varint_size_u64(uint64_t v);
size_t rn_varint_size_i64(int64_t v);
/* Reads a varint from [src, end); returns bytes consumed, 0 on truncated or malformed input. */
size_t rn_varint_get_u64(const uint8_t *src, const uint8_t *end, uint64_t *out);
size_t rn_varint_get_i64(const uint8_t *src, const uint8_t *end, int64_t *out);

static inline uint64_t rn_zigzag_enc(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t rn_zigzag_dec(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Little-endian fixed-width access; memcpy keeps unaligned access defined. */
static inline void rn_le_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void rn_le_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rn_le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t rn_le_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rn_le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t rn_le_get64(const uint8_t *p)
{
    return (uint64_t)rn_le_get32(p) | ((uint64_t)rn_le_get32(p + 4) << 32);
}

#endif
