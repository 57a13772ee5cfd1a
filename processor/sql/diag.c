#include "sql/diag.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rn_sql_error(const rn_sql_src_t *src, int line, int col, char *errbuf, size_t errlen,
                  const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    size_t n = 0;
    int w;
    if (line > 0)
        w = snprintf(errbuf, errlen, "%s:%d:%d: ", src->name, line, col);
    else
        w = snprintf(errbuf, errlen, "%s: ", src->name);
    n = w > 0 ? (size_t)w : 0;
    if (n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(errbuf + n, errlen - n, fmt, ap);
    va_end(ap);
    n += w > 0 ? (size_t)w : 0;
    if (n >= errlen || line <= 0 || !src->text)
        return;

    /* Find the line and print it, then a caret that keeps the line's tabs for alignment. */
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t linelen = (size_t)((eol ? eol : end) - p);
    if (linelen > 0 && p[linelen - 1] == '\r')
        linelen--;
    w = snprintf(errbuf + n, errlen - n, "\n  %.*s\n  ", (int)linelen, p);
    n += w > 0 ? (size_t)w : 0;
    for (int c = 1; c < col && n + 1 < errlen; c++)
        errbuf[n++] = ((size_t)(c - 1) < linelen && p[c - 1] == '\t') ? '\t' : ' ';
    if (n + 1 < errlen)
        errbuf[n++] = '^';
    errbuf[n < errlen ? n : errlen - 1] = '\0';
}

size_t rn_sql_levenshtein(const char *a, const char *b)
{
    /* Optimal string alignment: Levenshtein plus adjacent transpositions ("FORM" -> "FROM"
     * is one edit), the typo people make most. */
    size_t la = strlen(a), lb = strlen(b), w = lb + 1;
    size_t *d = malloc((la + 1) * w * sizeof *d);
    if (!d)
        return (size_t)-1;
    for (size_t i = 0; i <= la; i++)
        d[i * w] = i;
    for (size_t j = 0; j <= lb; j++)
        d[j] = j;
    for (size_t i = 1; i <= la; i++) {
        int ca = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= lb; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[(i - 1) * w + j - 1] + (ca != cb);
            if (d[(i - 1) * w + j] + 1 < best)
                best = d[(i - 1) * w + j] + 1;
            if (d[i * w + j - 1] + 1 < best)
                best = d[i * w + j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[(i - 2) * w + j - 2] + 1 < best)
                best = d[(i - 2) * w + j - 2] + 1;
            d[i * w + j] = best;
        }
    }
    size_t r = d[la * w + lb];
    free(d);
    return r;
}

const char *rn_sql_suggest(const char *word, const char *const *cands, size_t n)
{
    /* The distance costs len * candidate length in time and memory: two 20 KB names in a job
     * file asked for 3 GB. Names that long are not typed by hand, so they get no suggestion,
     * and a candidate whose length alone puts it out of reach is not measured. */
    size_t len = strlen(word);
    if (len > RN_SQL_SUGGEST_MAX_LEN)
        return NULL;
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        size_t cand_len = strnlen(cands[i], len + limit + 1);
        if (cand_len > len + limit || cand_len + limit < len)
            continue;
        size_t d = rn_sql_levenshtein(word, cands[i]);
        if (d < best_d && d < strlen(cands[i])) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}
