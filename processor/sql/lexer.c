#include "sql/lexer.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kw_names[] = {
    "",
#define RN_KW_NAME_(name, reserved) #name,
    RN_KW_LIST(RN_KW_NAME_)
#undef RN_KW_NAME_
};
static const bool kw_reserved[] = {
    false,
#define RN_KW_RES_(name, reserved) reserved,
    RN_KW_LIST(RN_KW_RES_)
#undef RN_KW_RES_
};

const char *rn_kw_name(rn_kw_t kw)
{
    return (kw > 0 && kw < RN_KW_COUNT_) ? kw_names[kw] : "";
}

bool rn_kw_reserved(rn_kw_t kw)
{
    return kw > 0 && kw < RN_KW_COUNT_ && kw_reserved[kw];
}

static rn_kw_t kw_lookup(const char *s, size_t len)
{
    for (int k = 1; k < RN_KW_COUNT_; k++) {
        if (strlen(kw_names[k]) == len && strncasecmp(kw_names[k], s, len) == 0)
            return (rn_kw_t)k;
    }
    return RN_KW_NONE_;
}

const char *rn_tok_describe(const rn_token_t *t, char *buf, size_t len)
{
    if (t->kind == RN_TOK_EOF)
        snprintf(buf, len, "end of file");
    else
        snprintf(buf, len, "'%.*s'", (int)(t->raw_len > 40 ? 40 : t->raw_len), t->raw);
    return buf;
}

typedef struct lexer {
    const rn_sql_src_t *src;
    rn_arena_t *arena;
    size_t pos;
    int line;
    size_t line_start;
    rn_token_t *toks;
    size_t n, cap;
    char *errbuf;
    size_t errlen;
} lexer_t;

static int peek(const lexer_t *lx, size_t ahead)
{
    size_t p = lx->pos + ahead;
    return p < lx->src->len ? (unsigned char)lx->src->text[p] : -1;
}

static rn_token_t *push(lexer_t *lx, rn_tok_kind_t kind, size_t start, int line, int col)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 64;
        rn_token_t *t = realloc(lx->toks, cap * sizeof *t);
        if (!t)
            return NULL;
        lx->toks = t;
        lx->cap = cap;
    }
    rn_token_t *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->line = line;
    t->col = col;
    t->raw = lx->src->text + start;
    t->raw_len = lx->pos - start;
    return t;
}

static rn_err_t lex_error(lexer_t *lx, int line, int col, const char *msg, char c)
{
    if (c)
        rn_sql_error(lx->src, line, col, lx->errbuf, lx->errlen, msg, c);
    else
        rn_sql_error(lx->src, line, col, lx->errbuf, lx->errlen, "%s", msg);
    return RN_ERR_MALFORMED;
}

/* The length of the quoted text at from (after the opening quote) as written, up to its
 * closing quote; the whole rest of the source when unterminated. */
static size_t quoted_len(const lexer_t *lx, char q, size_t from)
{
    const char *s = lx->src->text;
    size_t i = from, len = lx->src->len;
    while (i < len) {
        if (s[i] == q && (i + 1 >= len || s[i + 1] != q))
            break;
        i += s[i] == q ? 2 : 1;
    }
    return i - from;
}

/* 'text' or "ident": the quote doubles to escape itself. */
static rn_err_t lex_quoted(lexer_t *lx, char q, rn_tok_kind_t kind, int line, int col)
{
    size_t start = lx->pos;
    lx->pos++;
    /* Sized by this token, not by the rest of the file: that made a 70 KB file of 20000
     * quoted tokens take 705 MB. Unquoting only shrinks the text. */
    char *out = rn_arena_alloc(lx->arena, quoted_len(lx, q, lx->pos) + 1);
    if (!out)
        return RN_ERR_NOMEM;
    size_t n = 0;
    for (;;) {
        int c = peek(lx, 0);
        if (c < 0)
            return lex_error(lx, line, col,
                             kind == RN_TOK_STRING ? "unterminated string literal"
                                                   : "unterminated quoted identifier",
                             0);
        if (c == q) {
            if (peek(lx, 1) == q) {
                out[n++] = q;
                lx->pos += 2;
                continue;
            }
            lx->pos++;
            break;
        }
        if (c == '\n') {
            lx->line++;
            lx->line_start = lx->pos + 1;
        }
        out[n++] = (char)c;
        lx->pos++;
    }
    out[n] = '\0';
    if (kind == RN_TOK_QIDENT && n == 0)
        return lex_error(lx, line, col, "empty quoted identifier", 0);
    rn_token_t *t = push(lx, kind, start, line, col);
    if (!t)
        return RN_ERR_NOMEM;
    t->str = out;
    t->str_len = n;
    return RN_OK;
}

static rn_err_t lex_number(lexer_t *lx, int line, int col)
{
    size_t start = lx->pos;
    bool is_float = false;
    while (isdigit(peek(lx, 0)))
        lx->pos++;
    if (peek(lx, 0) == '.' && isdigit(peek(lx, 1))) {
        is_float = true;
        lx->pos++;
        while (isdigit(peek(lx, 0)))
            lx->pos++;
    }
    if (peek(lx, 0) == 'e' || peek(lx, 0) == 'E') {
        size_t save = lx->pos;
        lx->pos++;
        if (peek(lx, 0) == '+' || peek(lx, 0) == '-')
            lx->pos++;
        if (!isdigit(peek(lx, 0))) {
            lx->pos = save;
        } else {
            is_float = true;
            while (isdigit(peek(lx, 0)))
                lx->pos++;
        }
    }
    if (isalpha(peek(lx, 0)) || peek(lx, 0) == '_')
        return lex_error(lx, line, col, "malformed number", 0);
    char tmp[64];
    size_t len = lx->pos - start;
    if (len >= sizeof tmp)
        return lex_error(lx, line, col, "number too long", 0);
    memcpy(tmp, lx->src->text + start, len);
    tmp[len] = '\0';
    rn_token_t *t = push(lx, is_float ? RN_TOK_FLOAT : RN_TOK_INT, start, line, col);
    if (!t)
        return RN_ERR_NOMEM;
    errno = 0;
    if (is_float) {
        t->dval = strtod(tmp, NULL);
    } else {
        t->ival = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return lex_error(lx, line, col, "integer out of range", 0);
        t->dval = (double)t->ival;
    }
    return RN_OK;
}

static rn_err_t lex_word(lexer_t *lx, int line, int col)
{
    size_t start = lx->pos;
    while (isalnum(peek(lx, 0)) || peek(lx, 0) == '_')
        lx->pos++;
    rn_token_t *t = push(lx, RN_TOK_IDENT, start, line, col);
    if (!t)
        return RN_ERR_NOMEM;
    size_t len = lx->pos - start;
    char *s = rn_arena_strndup(lx->arena, lx->src->text + start, len);
    if (!s)
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < len; i++)
        s[i] = (char)tolower((unsigned char)s[i]);
    t->str = s;
    t->str_len = len;
    t->kw = kw_lookup(s, len);
    return RN_OK;
}

static rn_err_t lex_punct(lexer_t *lx, int c, int line, int col)
{
    size_t start = lx->pos;
    rn_tok_kind_t k;
    size_t w = 1;
    int n = peek(lx, 1);
    switch (c) {
    case '(': k = RN_TOK_LPAREN; break;
    case ')': k = RN_TOK_RPAREN; break;
    case ',': k = RN_TOK_COMMA; break;
    case ';': k = RN_TOK_SEMI; break;
    case '.': k = RN_TOK_DOT; break;
    case '*': k = RN_TOK_STAR; break;
    case '+': k = RN_TOK_PLUS; break;
    case '-': k = RN_TOK_MINUS; break;
    case '/': k = RN_TOK_SLASH; break;
    case '%': k = RN_TOK_PERCENT; break;
    case '=': k = RN_TOK_EQ; w = n == '=' ? 2 : 1; break;
    case '<':
        k = n == '=' ? RN_TOK_LE : n == '>' ? RN_TOK_NE : RN_TOK_LT;
        w = (n == '=' || n == '>') ? 2 : 1;
        break;
    case '>': k = n == '=' ? RN_TOK_GE : RN_TOK_GT; w = n == '=' ? 2 : 1; break;
    case '!':
        if (n != '=')
            return lex_error(lx, line, col, "unexpected character '!' (did you mean '!='?)", 0);
        k = RN_TOK_NE;
        w = 2;
        break;
    default:
        if (c >= 0x20 && c < 0x7f)
            return lex_error(lx, line, col, "unexpected character '%c'", (char)c);
        return lex_error(lx, line, col, "unexpected byte in job file", 0);
    }
    lx->pos += w;
    return push(lx, k, start, line, col) ? RN_OK : RN_ERR_NOMEM;
}

rn_err_t rn_lex_all(const rn_sql_src_t *src, rn_arena_t *arena, rn_token_t **toks,
                    size_t *ntoks, char *errbuf, size_t errlen)
{
    lexer_t lx = {.src = src, .arena = arena, .line = 1, .errbuf = errbuf, .errlen = errlen};
    rn_err_t err = RN_OK;
    for (;;) {
        int c = peek(&lx, 0);
        if (c < 0)
            break;
        if (c == '\n') {
            lx.pos++;
            lx.line++;
            lx.line_start = lx.pos;
            continue;
        }
        if (isspace(c)) {
            lx.pos++;
            continue;
        }
        if (c == '-' && peek(&lx, 1) == '-') {
            while (peek(&lx, 0) >= 0 && peek(&lx, 0) != '\n')
                lx.pos++;
            continue;
        }
        int line = lx.line, col = (int)(lx.pos - lx.line_start) + 1;
        if (c == '\'')
            err = lex_quoted(&lx, '\'', RN_TOK_STRING, line, col);
        else if (c == '"')
            err = lex_quoted(&lx, '"', RN_TOK_QIDENT, line, col);
        else if (isdigit(c) || (c == '.' && isdigit(peek(&lx, 1))))
            err = lex_number(&lx, line, col);
        else if (isalpha(c) || c == '_')
            err = lex_word(&lx, line, col);
        else
            err = lex_punct(&lx, c, line, col);
        if (err != RN_OK)
            goto fail;
    }
    if (!push(&lx, RN_TOK_EOF, lx.pos, lx.line, (int)(lx.pos - lx.line_start) + 1)) {
        err = RN_ERR_NOMEM;
        goto fail;
    }
    *toks = rn_arena_alloc(arena, lx.n * sizeof **toks);
    if (!*toks) {
        err = RN_ERR_NOMEM;
        goto fail;
    }
    memcpy(*toks, lx.toks, lx.n * sizeof **toks);
    *ntoks = lx.n;
    free(lx.toks);
    return RN_OK;
fail:
    if (err == RN_ERR_NOMEM)
        rn_sql_error(src, 0, 0, errbuf, errlen, "out of memory");
    free(lx.toks);
    return err;
}
