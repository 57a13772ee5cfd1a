#include "ops/json.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

typedef struct field {
    char *name;
    size_t len;
    rn_type_t type;
} field_t;

struct rn_json_dec {
    field_t *fields;
    size_t n;
    uint32_t *seen;    /* generation at which each field was last set */
    uint32_t gen;
    rn_buf_t scratch;  /* unescaped strings of the current record */
};

typedef struct cursor {
    const char *p, *start, *end;
    rn_json_dec_t *d;
    char *errbuf;
    size_t errlen;
} cursor_t;

rn_err_t rn_json_dec_new(const rn_json_col_t *cols, size_t ncols, rn_json_dec_t **out)
{
    rn_json_dec_t *d = calloc(1, sizeof *d);
    if (!d)
        return RN_ERR_NOMEM;
    d->fields = calloc(ncols ? ncols : 1, sizeof *d->fields);
    d->seen = calloc(ncols ? ncols : 1, sizeof *d->seen);
    if (!d->fields || !d->seen)
        goto fail;
    for (size_t i = 0; i < ncols; i++) {
        if (!(d->fields[i].name = strdup(cols[i].name)))
            goto fail;
        d->fields[i].len = strlen(cols[i].name);
        d->fields[i].type = cols[i].type;
        d->n = i + 1;
    }
    d->n = ncols;
    *out = d;
    return RN_OK;
fail:
    rn_json_dec_free(d);
    return RN_ERR_NOMEM;
}

void rn_json_dec_free(rn_json_dec_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->fields[i].name);
    free(d->fields);
    free(d->seen);
    rn_buf_free(&d->scratch);
    free(d);
}

static rn_err_t syntax(cursor_t *c, const char *what)
{
    if (c->p >= c->end)
        snprintf(c->errbuf, c->errlen, "malformed JSON at byte %zu: %s, found the end of the record",
                 (size_t)(c->p - c->start), what);
    else
        snprintf(c->errbuf, c->errlen, "malformed JSON at byte %zu: %s, found '%c'",
                 (size_t)(c->p - c->start), what,
                 (*c->p >= 0x20 && *c->p < 0x7f) ? *c->p : '?');
    return RN_ERR_MALFORMED;
}

static rn_err_t mistyped(cursor_t *c, const field_t *f, const char *found)
{
    static const char *const want[] = {"", "a string", "an integer", "a number", "true or false",
                                       "epoch milliseconds or an ISO-8601 string"};
    snprintf(c->errbuf, c->errlen, "field '%s': expected %s, found %s", f->name, want[f->type],
             found);
    return RN_ERR_MALFORMED;
}

static inline void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= h - '0';
        else if (h >= 'a' && h <= 'f')
            v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            v |= h - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/*
 * A string at c->p (after the opening quote). Sets *s and *len to its decoded bytes: in the
 * input when it has no escape, else in scratch (room for the whole record was reserved, so
 * scratch never moves during a record). want_value false only validates and skips.
 */
static rn_err_t string(cursor_t *c, bool want_value, const char **s, size_t *len)
{
    const char *begin = c->p;
    while (c->p < c->end && *c->p != '"' && *c->p != '\\') {
        if ((unsigned char)*c->p < 0x20)
            return syntax(c, "control character in a string");
        c->p++;
    }
    if (c->p >= c->end)
        return syntax(c, "unterminated string");
    if (*c->p == '"') {
        *s = begin;
        *len = (size_t)(c->p - begin);
        c->p++;
        return RN_OK;
    }
    rn_buf_t *sb = &c->d->scratch;
    char *out = (char *)sb->data + sb->len, *o = out;
    memcpy(o, begin, (size_t)(c->p - begin));
    o += c->p - begin;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p;
        if ((unsigned char)ch < 0x20)
            return syntax(c, "control character in a string");
        if (ch != '\\') {
            *o++ = ch;
            c->p++;
            continue;
        }
        if (c->end - c->p < 2)
            return syntax(c, "unterminated escape");
        char e = c->p[1];
        c->p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int hi = c->end - c->p >= 4 ? hex4(c->p) : -1;
            if (hi < 0)
                return syntax(c, "bad \\u escape");
            c->p += 4;
            uint32_t cp = (uint32_t)hi;
            if (hi >= 0xd800 && hi < 0xdc00 && c->end - c->p >= 6 && c->p[0] == '\\' &&
                c->p[1] == 'u') {
                int lo = hex4(c->p + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                    c->p += 6;
                }
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            c->p -= 1;
            return syntax(c, "unknown escape");
        }
    }
    if (c->p >= c->end)
        return syntax(c, "unterminated string");
    c->p++;
    if (want_value) {
        sb->len += (size_t)(o - out);
        *s = out;
        *len = (size_t)(o - out);
    }
    return RN_OK;
}

typedef struct number {
    bool is_int;
    int64_t i;
    double d;
    const char *text;
    size_t len;
} number_t;

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* JSON number grammar; exact fast path (Clinger) when it applies, strtod otherwise. */
static rn_err_t number(cursor_t *c, number_t *n)
{
    const char *p = c->p, *begin = p;
    bool neg = false;
    if (p < c->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= c->end || *p < '0' || *p > '9') {
        c->p = p;
        return syntax(c, "expected a digit");
    }
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < c->end && *p >= '0' && *p <= '9') {
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0');
            else
                exp10++;
            digits++;
            p++;
        }
    }
    n->is_int = true;
    if (p < c->end && *p == '.') {
        p++;
        if (p >= c->end || *p < '0' || *p > '9') {
            c->p = p;
            return syntax(c, "expected a digit after '.'");
        }
        while (p < c->end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                exp10--;
            }
            digits += m != 0;
            p++;
        }
        n->is_int = false;
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < c->end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= c->end || *p < '0' || *p > '9') {
            c->p = p;
            return syntax(c, "expected a digit in the exponent");
        }
        int e = 0;
        while (p < c->end && *p >= '0' && *p <= '9') {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
        n->is_int = false;
    }
    c->p = p;
    n->text = begin;
    n->len = (size_t)(p - begin);
    if (n->is_int && digits <= 18) {
        n->i = neg ? -(int64_t)m : (int64_t)m;
        n->d = (double)n->i;
        return RN_OK;
    }
    if (n->is_int && digits == 19 && m <= (uint64_t)INT64_MAX + neg) {
        n->i = neg ? (int64_t)(0 - m) : (int64_t)m;
        n->d = (double)n->i;
        return RN_OK;
    }
    n->is_int = false;
    if (m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
        n->d = neg ? -d : d;
        return RN_OK;
    }
    char tmp[400];
    if (n->len >= sizeof tmp)
        return syntax(c, "number too long");
    memcpy(tmp, begin, n->len);
    tmp[n->len] = '\0';
    n->d = strtod(tmp, NULL);
    return RN_OK;
}

static rn_err_t literal(cursor_t *c, const char *word, size_t len)
{
    if ((size_t)(c->end - c->p) < len || memcmp(c->p, word, len) != 0)
        return syntax(c, "expected a JSON value");
    c->p += len;
    return RN_OK;
}

/* Skips any value, nested ones included, checking only what it must to find the end. */
static rn_err_t skip_value(cursor_t *c, int depth)
{
    if (depth > 64)
        return syntax(c, "nesting deeper than 64");
    skip_ws(c);
    if (c->p >= c->end)
        return syntax(c, "expected a JSON value");
    const char *s;
    size_t len;
    number_t n;
    switch (*c->p) {
    case '"':
        c->p++;
        return string(c, false, &s, &len);
    case 't': return literal(c, "true", 4);
    case 'f': return literal(c, "false", 5);
    case 'n': return literal(c, "null", 4);
    case '{':
    case '[': {
        char close = *c->p == '{' ? '}' : ']';
        bool obj = close == '}';
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return RN_OK;
        }
        for (;;) {
            rn_err_t err;
            if (obj) {
                skip_ws(c);
                if (c->p >= c->end || *c->p != '"')
                    return syntax(c, "expected a field name");
                c->p++;
                if ((err = string(c, false, &s, &len)) != RN_OK)
                    return err;
                skip_ws(c);
                if (c->p >= c->end || *c->p != ':')
                    return syntax(c, "expected ':'");
                c->p++;
            }
            if ((err = skip_value(c, depth + 1)) != RN_OK)
                return err;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == close) {
                c->p++;
                return RN_OK;
            }
            return syntax(c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    default:
        return number(c, &n);
    }
}

static const char *json_kind(char ch)
{
    switch (ch) {
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case '{': return "an object";
    case '[': return "an array";
    default: return "a number";
    }
}

static rn_err_t field_value(cursor_t *c, const field_t *f, rn_value_t *v)
{
    skip_ws(c);
    if (c->p >= c->end)
        return syntax(c, "expected a JSON value");
    char ch = *c->p;
    if (ch == 'n') {
        *v = rn_val_null(f->type);
        return literal(c, "null", 4);
    }
    const char *s;
    size_t len;
    number_t n;
    rn_err_t err;
    bool is_num = ch == '-' || (ch >= '0' && ch <= '9');
    switch (f->type) {
    case RN_T_TEXT:
        if (ch == '"') {
            c->p++;
            if ((err = string(c, true, &s, &len)) != RN_OK)
                return err;
            *v = rn_val_text(s, len);
            return RN_OK;
        }
        if (!is_num)
            return mistyped(c, f, json_kind(ch));
        if ((err = number(c, &n)) != RN_OK)
            return err;
        *v = rn_val_text(n.text, n.len);
        return RN_OK;
    case RN_T_BIGINT:
    case RN_T_DOUBLE:
        if (!is_num)
            return mistyped(c, f, json_kind(ch));
        if ((err = number(c, &n)) != RN_OK)
            return err;
        if (f->type == RN_T_DOUBLE) {
            *v = rn_val_double(n.d);
            return RN_OK;
        }
        if (!n.is_int)
            return mistyped(c, f, "a fraction or an out-of-range number");
        *v = rn_val_int(RN_T_BIGINT, n.i);
        return RN_OK;
    case RN_T_BOOLEAN:
        if (ch != 't' && ch != 'f')
            return mistyped(c, f, json_kind(ch));
        *v = rn_val_bool(ch == 't');
        return ch == 't' ? literal(c, "true", 4) : literal(c, "false", 5);
    case RN_T_TIMESTAMP:
        if (is_num) {
            if ((err = number(c, &n)) != RN_OK)
                return err;
            if (!n.is_int) {
                if (!isfinite(n.d) || fabs(n.d) > 9.2e18)
                    return mistyped(c, f, "an out-of-range number");
                n.i = (int64_t)floor(n.d);
            }
            *v = rn_val_int(RN_T_TIMESTAMP, n.i);
            return RN_OK;
        }
        if (ch != '"')
            return mistyped(c, f, json_kind(ch));
        c->p++;
        if ((err = string(c, true, &s, &len)) != RN_OK)
            return err;
        int64_t ms;
        if (!rn_ts_parse(s, len, &ms)) {
            snprintf(c->errbuf, c->errlen, "field '%s': '%.*s' is not an ISO-8601 timestamp",
                     f->name, (int)(len > 40 ? 40 : len), s);
            return RN_ERR_MALFORMED;
        }
        *v = rn_val_int(RN_T_TIMESTAMP, ms);
        return RN_OK;
    default:
        return mistyped(c, f, json_kind(ch));
    }
}

static const field_t *lookup(const rn_json_dec_t *d, const char *name, size_t len, size_t *idx)
{
    for (size_t i = 0; i < d->n; i++) {
        const field_t *f = &d->fields[i];
        if (f->len == len && memcmp(f->name, name, len) == 0) {
            *idx = i;
            return f;
        }
    }
    return NULL;
}

rn_err_t rn_json_decode(rn_json_dec_t *d, const char *json, size_t len, rn_value_t *row,
                        char *errbuf, size_t errlen)
{
    cursor_t c = {json, json, json + len, d, errbuf, errlen};
    rn_buf_reset(&d->scratch);
    if (rn_buf_reserve(&d->scratch, len + 1) != RN_OK) {
        snprintf(errbuf, errlen, "out of memory");
        return RN_ERR_NOMEM;
    }
    if (++d->gen == 0) { /* wrapped: forget every generation */
        memset(d->seen, 0, d->n * sizeof *d->seen);
        d->gen = 1;
    }
    rn_err_t err;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return syntax(&c, "expected a JSON object '{'");
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            skip_ws(&c);
            if (c.p >= c.end || *c.p != '"')
                return syntax(&c, "expected a field name");
            c.p++;
            const char *name;
            size_t nlen;
            if ((err = string(&c, true, &name, &nlen)) != RN_OK)
                return err;
            skip_ws(&c);
            if (c.p >= c.end || *c.p != ':')
                return syntax(&c, "expected ':'");
            c.p++;
            size_t idx;
            const field_t *f = lookup(d, name, nlen, &idx);
            if (f) {
                if ((err = field_value(&c, f, &row[idx])) != RN_OK)
                    return err;
                d->seen[idx] = d->gen;
            } else if ((err = skip_value(&c, 1)) != RN_OK) {
                return err;
            }
            skip_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == '}') {
                c.p++;
                break;
            }
            return syntax(&c, "expected ',' or '}'");
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return syntax(&c, "expected the end of the record after '}'");
    for (size_t i = 0; i < d->n; i++) {
        if (d->seen[i] != d->gen) {
            snprintf(errbuf, errlen, "missing field '%s'", d->fields[i].name);
            return RN_ERR_MALFORMED;
        }
    }
    return RN_OK;
}
