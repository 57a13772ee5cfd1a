/*
 * value.h - the typed values that flow through a job: decoded columns, expression results,
 * aggregate results and sink rows.
 *
 * A TEXT value points at bytes it does not own (the record being decoded, a scratch buffer,
 * or group state); whoever hands one out says how long it stays valid. SQL NULL is a flag,
 * not a type, so a NULL still knows the type of its column.
 */
#ifndef RN_VALUE_H
#define RN_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rn_type {
    RN_T_NULL = 0, /* only the type of a bare NULL literal */
    RN_T_TEXT,
    RN_T_BIGINT,
    RN_T_DOUBLE,
    RN_T_BOOLEAN,
    RN_T_TIMESTAMP, /* milliseconds since the Unix epoch, UTC */
} rn_type_t;

typedef struct rn_value {
    uint8_t type;  /* rn_type_t */
    bool is_null;
    uint32_t len;  /* TEXT: bytes at s */
    union {
        int64_t i; /* BIGINT, TIMESTAMP */
        double d;
        bool b;
        const char *s;
    } u;
} rn_value_t;

static inline rn_value_t rn_val_null(rn_type_t t)
{
    rn_value_t v = {0};
    v.type = (uint8_t)t;
    v.is_null = true;
    return v;
}

static inline rn_value_t rn_val_int(rn_type_t t, int64_t i)
{
    rn_value_t v = {0};
    v.type = (uint8_t)t;
    v.u.i = i;
    return v;
}

static inline rn_value_t rn_val_double(double d)
{
    rn_value_t v = {0};
    v.type = RN_T_DOUBLE;
    v.u.d = d;
    return v;
}

static inline rn_value_t rn_val_bool(bool b)
{
    rn_value_t v = {0};
    v.type = RN_T_BOOLEAN;
    v.u.b = b;
    return v;
}

static inline rn_value_t rn_val_text(const char *s, size_t len)
{
    rn_value_t v = {0};
    v.type = RN_T_TEXT;
    v.u.s = s;
    v.len = (uint32_t)len;
    return v;
}

/* "TEXT", "BIGINT", … ("NULL" for RN_T_NULL). */
const char *rn_type_name(rn_type_t t);
/* Parses a type name, case-insensitive; -1 when unknown. */
int rn_type_parse(const char *s, size_t len);

/*
 * Formats a TIMESTAMP as ISO-8601 UTC with milliseconds ("2023-10-27T10:00:00.000Z") into
 * out (>= 32 bytes); returns the length.
 */
int rn_ts_format(int64_t ms, char *out, size_t outlen);
/*
 * Parses ISO-8601 "YYYY-MM-DD[T ]hh:mm:ss[.fff…][Z|±hh:mm|±hhmm]" (no zone: UTC) or a bare
 * date "YYYY-MM-DD" into epoch ms. Returns false when s is not such a timestamp.
 */
bool rn_ts_parse(const char *s, size_t len, int64_t *ms);

/* Three-way comparison of two non-NULL values of comparable types (numbers with numbers). */
int rn_val_cmp(const rn_value_t *a, const rn_value_t *b);
/* True when both are NULL or both equal (used for keys). */
bool rn_val_equal(const rn_value_t *a, const rn_value_t *b);

#endif
