#include "json.h"

#include <string.h>

/*
 * Length of the valid UTF-8 sequence starting at p (at most n bytes), or 0 when the bytes
 * there are not one (overlong forms, surrogates and values past U+10FFFF are refused, as
 * RFC 3629 says).
 */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned min;
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
        need = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

/*
 * The one escaping routine: calls emit(ctx, bytes, n) with runs of output. Both the FILE and
 * the buffer writers go through it so they can never disagree.
 */
typedef int (*emit_fn)(void *ctx, const char *s, size_t n);

static int escape_string(emit_fn emit, void *ctx, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t run = 0; /* bytes before i that need no escape and are not yet emitted */
    size_t i = 0;
    if (emit(ctx, "\"", 1))
        return -1;
    while (i < len) {
        unsigned char c = p[i];
        char esc[8];
        size_t esc_len = 0;
        size_t seq = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, esc_len = 2;
        } else if (c < 0x20) {
            esc[0] = '\\';
            esc_len = 2;
            switch (c) {
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15], esc_len = 6;
            }
        } else if (c >= 0x80) {
            seq = utf8_seq_len(p + i, len - i);
            if (seq == 0) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15], esc_len = 6;
                seq = 1;
            }
        }
        if (esc_len == 0) {
            run += seq;
            i += seq;
            continue;
        }
        if (run && emit(ctx, (const char *)p + i - run, run))
            return -1;
        run = 0;
        if (emit(ctx, esc, esc_len))
            return -1;
        i += seq;
    }
    if (run && emit(ctx, (const char *)p + len - run, run))
        return -1;
    return emit(ctx, "\"", 1);
}

static int emit_file(void *ctx, const char *s, size_t n)
{
    return fwrite(s, 1, n, (FILE *)ctx) == n ? 0 : -1;
}

static int emit_buf(void *ctx, const char *s, size_t n)
{
    return rn_buf_append((rn_buf_t *)ctx, s, n) == RN_OK ? 0 : -1;
}

void rn_json_write_string(FILE *out, const void *data, size_t len)
{
    escape_string(emit_file, out, data, len);
}

rn_err_t rn_json_append_string(rn_buf_t *out, const void *data, size_t len)
{
    return escape_string(emit_buf, out, data, len) == 0 ? RN_OK : RN_ERR_NOMEM;
}

/* ------------------------------------------------------------------ reading ---- */

typedef struct scan {
    const char *p;
    const char *end;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Skips a string whose opening quote is at s->p; leaves s->p after the closing quote. */
static rn_err_t skip_string(scan_t *s)
{
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '"')
            return RN_OK;
        if (c == '\\') {
            if (s->p >= s->end)
                return RN_ERR_MALFORMED;
            s->p++;
        }
    }
    return RN_ERR_MALFORMED;
}

/*
 * Skips one value of any kind and reports its kind. Nesting is followed with a depth
 * counter rather than recursion, so a hostile input cannot exhaust the stack.
 */
static rn_err_t skip_value(scan_t *s, rn_json_kind_t *kind)
{
    skip_ws(s);
    if (s->p >= s->end)
        return RN_ERR_MALFORMED;
    char c = *s->p;
    if (c == '"') {
        *kind = RN_JSON_STRING;
        return skip_string(s);
    }
    if (c == '{' || c == '[') {
        *kind = c == '{' ? RN_JSON_OBJECT : RN_JSON_ARRAY;
        size_t depth = 0;
        while (s->p < s->end) {
            c = *s->p;
            if (c == '"') {
                if (skip_string(s) != RN_OK)
                    return RN_ERR_MALFORMED;
                continue;
            }
            s->p++;
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return RN_OK;
            }
        }
        return RN_ERR_MALFORMED;
    }
    const char *start = s->p;
    while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
        s->p++;
    if (s->p == start)
        return RN_ERR_MALFORMED;
    if (c == 't' || c == 'f')
        *kind = RN_JSON_BOOL;
    else if (c == 'n')
        *kind = RN_JSON_NULL;
    else if (c == '-' || (c >= '0' && c <= '9'))
        *kind = RN_JSON_NUMBER;
    else
        return RN_ERR_MALFORMED;
    return RN_OK;
}

rn_err_t rn_json_find_field(const char *json, size_t len, const char *name, const char **value,
                            size_t *value_len, rn_json_kind_t *kind)
{
    scan_t s = {json, json + len};
    size_t name_len = strlen(name);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return RN_ERR_MALFORMED;
    s.p++;
    for (;;) {
        skip_ws(&s);
        if (s.p < s.end && *s.p == '}')
            return RN_ERR_NOT_FOUND;
        if (s.p >= s.end || *s.p != '"')
            return RN_ERR_MALFORMED;
        const char *key = s.p + 1;
        if (skip_string(&s) != RN_OK)
            return RN_ERR_MALFORMED;
        size_t key_len = (size_t)(s.p - 1 - key);
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return RN_ERR_MALFORMED;
        s.p++;
        skip_ws(&s);
        const char *v = s.p;
        rn_json_kind_t k;
        rn_err_t err = skip_value(&s, &k);
        if (err != RN_OK)
            return err;
        /* Keys with escapes are compared raw: field names that need them are rare. */
        if (key_len == name_len && memcmp(key, name, name_len) == 0) {
            *kind = k;
            if (k == RN_JSON_STRING) {
                *value = v + 1;
                *value_len = (size_t)(s.p - v) - 2;
            } else {
                *value = v;
                *value_len = (size_t)(s.p - v);
            }
            return RN_OK;
        }
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == '}')
            return RN_ERR_NOT_FOUND;
        return RN_ERR_MALFORMED;
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(const char *s, const char *end, unsigned *out)
{
    if (end - s < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(s[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | (unsigned)h;
    }
    *out = v;
    return 0;
}

static rn_err_t append_utf8(rn_buf_t *out, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    return rn_buf_append(out, b, n);
}

rn_err_t rn_json_unescape(const char *s, size_t len, rn_buf_t *out)
{
    const char *end = s + len;
    rn_buf_reset(out);
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        size_t plain = bs ? (size_t)(bs - s) : (size_t)(end - s);
        if (plain && rn_buf_append(out, s, plain) != RN_OK)
            return RN_ERR_NOMEM;
        if (!bs)
            break;
        s = bs + 1;
        if (s >= end)
            return RN_ERR_MALFORMED;
        char c = *s++;
        char lit;
        switch (c) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_hex4(s, end, &cp))
                return RN_ERR_MALFORMED;
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || read_hex4(s + 2, end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return RN_ERR_MALFORMED;
                s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return RN_ERR_MALFORMED;
            }
            if (append_utf8(out, cp) != RN_OK)
                return RN_ERR_NOMEM;
            continue;
        }
        default:
            return RN_ERR_MALFORMED;
        }
        if (rn_buf_append(out, &lit, 1) != RN_OK)
            return RN_ERR_NOMEM;
    }
    return RN_OK;
}
