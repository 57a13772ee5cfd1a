/*
 * diag.h - error messages for job files, the way compilers print them:
 *
 *   fraud.sql:7:12: unknown column 'valu' (did you mean 'value'?)
 *     SELECT window_start, SUM(valu) AS total
 *                              ^
 *
 * and the "did you mean" search (Levenshtein distance) shared by the parser (keywords) and
 * the planner (columns, sources).
 */
#ifndef RN_SQL_DIAG_H
#define RN_SQL_DIAG_H

#include <stddef.h>

/* A job file in memory. name is what errors print (the path as given). */
typedef struct rn_sql_src {
    const char *name;
    const char *text;
    size_t len;
} rn_sql_src_t;

/*
 * Writes "NAME:LINE:COL: message\n<source line>\n<caret>" into errbuf (truncated to errlen).
 * line and col are 1-based; col counts bytes. line 0 omits the position and the excerpt.
 */
void rn_sql_error(const rn_sql_src_t *src, int line, int col, char *errbuf, size_t errlen,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Edit distance between a and b (insert, delete, substitute, swap two neighbours),
 * case-insensitive. */
size_t rn_sql_levenshtein(const char *a, const char *b);
/*
 * The candidate closest to word, or NULL when none is close enough to be a plausible typo
 * (distance <= 1 for words up to 4 letters, <= 2 up to 8, <= 3 beyond). A word longer than
 * RN_SQL_SUGGEST_MAX_LEN bytes gets NULL: the distance is quadratic in the lengths.
 */
#define RN_SQL_SUGGEST_MAX_LEN 64
const char *rn_sql_suggest(const char *word, const char *const *cands, size_t n);

#endif
