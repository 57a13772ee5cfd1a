/* json_bench.h - what the decoders of runnel-json-bench share. */
#ifndef RN_JSON_BENCH_H
#define RN_JSON_BENCH_H

#include <stddef.h>

typedef struct corpus {
    char *data;
    size_t *off, *len;
    size_t n, bytes;
} corpus_t;

/* Each decodes every event's four columns; returns how many decoded, adds to *sum. */
size_t run_jansson(const corpus_t *c, double *sum);
size_t run_jsonc(const corpus_t *c, double *sum);

#endif
