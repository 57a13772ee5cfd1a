#include "cli_format.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/*
 * A format is a list of tokens, each a literal run or one field. The plain and JSON outputs
 * are formats too, so there is one writer loop and the fast path (value + '\n') costs two
 * fwrite calls.
 */
typedef enum tok_kind {
    TOK_LITERAL,
    TOK_TOPIC,
    TOK_PARTITION,
    TOK_OFFSET,
    TOK_KEY,
    TOK_VALUE,
    TOK_TIMESTAMP,
    TOK_HEADERS,
    TOK_KEY_LEN,
    TOK_VALUE_LEN,
    TOK_JSON, /* the whole -J envelope */
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    size_t start; /* TOK_LITERAL: span in lit */
    size_t len;
} tok_t;

struct cli_format {
    tok_t *toks;
    size_t count;
    char *lit;    /* literal bytes, escapes already decoded */
    size_t lit_len;
};

static cli_format_t *alloc_format(size_t max_toks, size_t max_lit)
{
    cli_format_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->toks = calloc(max_toks ? max_toks : 1, sizeof *f->toks);
    f->lit = malloc(max_lit ? max_lit : 1);
    if (!f->toks || !f->lit) {
        cli_format_free(f);
        return NULL;
    }
    return f;
}

static void add_literal(cli_format_t *f, const char *s, size_t n)
{
    if (f->count && f->toks[f->count - 1].kind == TOK_LITERAL) {
        f->toks[f->count - 1].len += n;
    } else {
        f->toks[f->count++] = (tok_t){TOK_LITERAL, f->lit_len, n};
    }
    memcpy(f->lit + f->lit_len, s, n);
    f->lit_len += n;
}

static void add_field(cli_format_t *f, tok_kind_t kind)
{
    f->toks[f->count++] = (tok_t){kind, 0, 0};
}

cli_format_t *cli_format_compile(const char *spec, char *errbuf, size_t errlen)
{
    size_t n = strlen(spec);
    cli_format_t *f = alloc_format(n + 1, n + 1);
    if (!f) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = spec[i];
        if (c == '\\' && i + 1 < n) {
            char e = spec[++i];
            char lit = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == '0' ? '\0' : e;
            add_literal(f, &lit, 1);
            continue;
        }
        if (c != '%') {
            add_literal(f, &c, 1);
            continue;
        }
        if (i + 1 >= n) {
            snprintf(errbuf, errlen, "'%%' at the end of the format; write %%%% for a '%%'");
            cli_format_free(f);
            return NULL;
        }
        char conv = spec[++i];
        switch (conv) {
        case 't': add_field(f, TOK_TOPIC); break;
        case 'p': add_field(f, TOK_PARTITION); break;
        case 'o': add_field(f, TOK_OFFSET); break;
        case 'k': add_field(f, TOK_KEY); break;
        case 's': add_field(f, TOK_VALUE); break;
        case 'T': add_field(f, TOK_TIMESTAMP); break;
        case 'h': add_field(f, TOK_HEADERS); break;
        case 'K': add_field(f, TOK_KEY_LEN); break;
        case 'S': add_field(f, TOK_VALUE_LEN); break;
        case '%': add_literal(f, "%", 1); break;
        default:
            snprintf(errbuf, errlen,
                     "unknown conversion '%%%c' (known: %%t %%p %%o %%k %%s %%T %%h %%K %%S %%%%)",
                     conv);
            cli_format_free(f);
            return NULL;
        }
    }
    return f;
}

cli_format_t *cli_format_plain(const char *key_delim)
{
    size_t dl = key_delim ? strlen(key_delim) : 0;
    cli_format_t *f = alloc_format(4, dl + 1);
    if (!f)
        return NULL;
    if (key_delim) {
        add_field(f, TOK_KEY);
        add_literal(f, key_delim, dl);
    }
    add_field(f, TOK_VALUE);
    add_literal(f, "\n", 1);
    return f;
}

cli_format_t *cli_format_json(void)
{
    cli_format_t *f = alloc_format(1, 1);
    if (f)
        add_field(f, TOK_JSON);
    return f;
}

void cli_format_free(cli_format_t *f)
{
    if (!f)
        return;
    free(f->toks);
    free(f->lit);
    free(f);
}

static bool put(FILE *out, const void *p, size_t n)
{
    return n == 0 || fwrite_unlocked(p, 1, n, out) == n;
}

static bool put_str(FILE *out, const char *s)
{
    return put(out, s, strlen(s));
}

static bool put_i64(FILE *out, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    return put(out, b, (size_t)n);
}

static bool put_json_bytes(FILE *out, const void *p, int32_t len)
{
    if (!p || len < 0)
        return put_str(out, "null");
    rn_json_write_string(out, p, (size_t)len);
    return !ferror(out);
}

static bool write_json(FILE *out, const rn_record_view_t *r)
{
    bool ok = put_str(out, "{\"topic\":");
    rn_json_write_string(out, r->topic, strlen(r->topic));
    ok = ok && put_str(out, ",\"partition\":") && put_i64(out, r->partition);
    ok = ok && put_str(out, ",\"offset\":") && put_i64(out, r->offset);
    ok = ok && put_str(out, ",\"timestamp\":") && put_i64(out, r->timestamp);
    ok = ok && put_str(out, ",\"key\":") && put_json_bytes(out, r->key, r->key_len);
    ok = ok && put_str(out, ",\"value\":") && put_json_bytes(out, r->value, r->value_len);
    ok = ok && put_str(out, ",\"headers\":[");
    for (size_t i = 0; ok && i < r->header_count; i++) {
        const rn_header_t *h = &r->headers[i];
        ok = (i == 0 || put_str(out, ",")) &&
             put_json_bytes(out, h->key, (int32_t)h->key_len) && put_str(out, ",") &&
             put_json_bytes(out, h->value, h->value_len);
    }
    return ok && put_str(out, "]}\n") && !ferror(out);
}

static bool write_headers(FILE *out, const rn_record_view_t *r)
{
    bool ok = true;
    for (size_t i = 0; ok && i < r->header_count; i++) {
        const rn_header_t *h = &r->headers[i];
        ok = (i == 0 || put_str(out, ",")) && put(out, h->key, h->key_len) && put_str(out, "=") &&
             (h->value_len <= 0 || put(out, h->value, (size_t)h->value_len));
    }
    return ok;
}

bool cli_format_write(const cli_format_t *f, FILE *out, const rn_record_view_t *r)
{
    for (size_t i = 0; i < f->count; i++) {
        const tok_t *t = &f->toks[i];
        bool ok = true;
        switch (t->kind) {
        case TOK_LITERAL: ok = put(out, f->lit + t->start, t->len); break;
        case TOK_TOPIC: ok = put_str(out, r->topic); break;
        case TOK_PARTITION: ok = put_i64(out, r->partition); break;
        case TOK_OFFSET: ok = put_i64(out, r->offset); break;
        case TOK_KEY: ok = r->key_len <= 0 || put(out, r->key, (size_t)r->key_len); break;
        case TOK_VALUE: ok = r->value_len <= 0 || put(out, r->value, (size_t)r->value_len); break;
        case TOK_TIMESTAMP: ok = put_i64(out, r->timestamp); break;
        case TOK_HEADERS: ok = write_headers(out, r); break;
        case TOK_KEY_LEN: ok = put_i64(out, r->key_len); break;
        case TOK_VALUE_LEN: ok = put_i64(out, r->value_len); break;
        case TOK_JSON: ok = write_json(out, r); break;
        }
        if (!ok)
            return false;
    }
    return true;
}
