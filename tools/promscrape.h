/*
 * promscrape.h - reads a Prometheus text exposition: GET http://HOST:PORT/metrics (a plain
 * blocking socket with a timeout) and a parser of its sample lines. `runnel top` uses it for
 * processors; tests use it to check what brokers and processors serve.
 */
#ifndef RN_TOOLS_PROMSCRAPE_H
#define RN_TOOLS_PROMSCRAPE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct prom_sample {
    char *name;      /* metric name, with _bucket/_sum/_count for histograms */
    char *labels;    /* the text between the braces, "" when none */
    double value;
} prom_sample_t;

typedef struct prom_scrape {
    prom_sample_t *samples;
    size_t n;
} prom_scrape_t;

/*
 * GETs path from "HOST:PORT" (timeout_ms for connect and the whole answer) and returns the
 * status (200…), the body in *body (NUL-terminated, free() it; may be NULL), or -1 with the
 * reason in errbuf.
 */
int prom_http_get(const char *addr, const char *path, int timeout_ms, char **body, char *errbuf,
                  size_t errlen);

/* Parses the sample lines of text (comments skipped). false only when out of memory. */
bool prom_parse(const char *text, prom_scrape_t *out);
void prom_free(prom_scrape_t *s);

/* The value of label `key` in a labels string, copied into buf; false when absent. */
bool prom_label(const char *labels, const char *key, char *buf, size_t len);

/* Sum of every sample named name whose labels contain `match` (NULL: all). */
double prom_sum(const prom_scrape_t *s, const char *name, const char *match, size_t *count);

/*
 * The q-quantile (0..1) of histogram `name` (the family name, without _bucket) summed over
 * series whose labels contain match, from cumulative bucket counts (the upper bound of the
 * bucket holding the rank, as Prometheus' histogram_quantile does without interpolation
 * beyond it); minus a previous scrape's buckets when prev is not NULL (the window between
 * two scrapes). NaN when there is no observation.
 */
double prom_quantile(const prom_scrape_t *s, const prom_scrape_t *prev, const char *name,
                     const char *match, double q);

#endif
