/*
 * json_decode_bench - decode-only throughput on the article's clickstream events:
 * Runnel's schema-driven scanner (processor/ops/json.c) against the Debian-packaged JSON
 * libraries found at build time (jansson, json-c). Each decoder extracts the same four
 * columns (user_id, action, value, timestamp: half epoch ms, half ISO-8601) from the same
 * events, which also carry fields the job does not declare; CPU time is measured per decoder,
 * best of three passes.
 *
 *   runnel-json-bench [--events N]        prints a table, then one JSON line
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_bench.h"
#include "ops/json.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_corpus(corpus_t *c, size_t n)
{
    static const char *actions[] = {"click", "view", "purchase", "scroll"};
    static const char *pages[] = {"/", "/product", "/cart", "/checkout/step-2", "/search?q=shoes"};
    c->data = malloc(n * 256);
    c->off = malloc(n * sizeof *c->off);
    c->len = malloc(n * sizeof *c->len);
    c->n = n;
    size_t pos = 0;
    long long ts = 1698400800000LL;
    srand(3);
    for (size_t i = 0; i < n; i++) {
        ts += rand() % 50;
        char *o = c->data + pos;
        int w;
        if (i % 2) {
            time_t sec = (time_t)(ts / 1000);
            struct tm tm;
            gmtime_r(&sec, &tm);
            w = sprintf(o, "{\"user_id\": \"user%d\", \"action\": \"%s\", \"timestamp\": "
                           "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\", \"value\": %d, \"page\": \"%s\", "
                           "\"device\": \"mobile\"}",
                        rand() % 100000, actions[rand() % 4], tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts % 1000),
                        rand() % 500, pages[rand() % 5]);
        } else {
            w = sprintf(o, "{\"user_id\": \"user%d\", \"event_type\": \"page_view\", \"timestamp\": %lld, "
                           "\"page\": \"%s\", \"device\": \"desktop\", \"action\": \"%s\", \"value\": %d.%02d}",
                        rand() % 100000, ts, pages[rand() % 5], actions[rand() % 4], rand() % 500,
                        rand() % 100);
        }
        c->off[i] = pos;
        c->len[i] = (size_t)w;
        pos += (size_t)w;
    }
    c->bytes = pos;
}

typedef size_t (*decode_fn)(const corpus_t *c, double *checksum);

static size_t run_runnel(const corpus_t *c, double *sum)
{
    rn_json_col_t cols[] = {{"user_id", RN_T_TEXT}, {"action", RN_T_TEXT},
                            {"value", RN_T_DOUBLE}, {"timestamp", RN_T_TIMESTAMP}};
    rn_json_dec_t *d;
    rn_json_dec_new(cols, 4, &d);
    rn_value_t row[4];
    char err[256];
    size_t ok = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (rn_json_decode(d, c->data + c->off[i], c->len[i], row, err, sizeof err) == RN_OK) {
            *sum += row[2].u.d + (double)(row[3].u.i % 1000) + row[0].len + row[1].len;
            ok++;
        }
    }
    rn_json_dec_free(d);
    return ok;
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
    }
    corpus_t c;
    make_corpus(&c, n);
    struct { const char *name; decode_fn fn; double eps, mbs; } decs[] = {
        {"runnel (schema-driven scanner)", run_runnel, 0, 0},
#ifdef HAVE_JANSSON
        {"jansson", run_jansson, 0, 0},
#endif
#ifdef HAVE_JSONC
        {"json-c", run_jsonc, 0, 0},
#endif
    };
    size_t nd = sizeof decs / sizeof decs[0];
    printf("# %zu events, %.1f MB, avg %zu bytes; 4 columns decoded; best of 3 (CPU time)\n", n,
           (double)c.bytes / 1e6, c.bytes / n);
    printf("%-34s %14s %10s %10s\n", "decoder", "events/s", "MB/s", "ns/event");
    for (size_t d = 0; d < nd; d++) {
        double best = 1e30, sum = 0;
        for (int r = 0; r < 3; r++) {
            double t0 = cpu_now();
            size_t ok = decs[d].fn(&c, &sum);
            double t = cpu_now() - t0;
            if (ok != n) {
                fprintf(stderr, "%s decoded %zu of %zu events\n", decs[d].name, ok, n);
                return 1;
            }
            if (t < best)
                best = t;
        }
        decs[d].eps = (double)n / best;
        decs[d].mbs = (double)c.bytes / best / 1e6;
        printf("%-34s %14.0f %10.1f %10.1f\n", decs[d].name, decs[d].eps, decs[d].mbs, 1e9 / decs[d].eps);
    }
    printf("{\"bench\":\"json_decode\",\"events\":%zu,\"bytes\":%zu", n, c.bytes);
    for (size_t d = 0; d < nd; d++)
        printf(",\"%.*s_events_per_s\":%.0f", (int)strcspn(decs[d].name, " "), decs[d].name, decs[d].eps);
    printf("}\n");
    free(c.data);
    free(c.off);
    free(c.len);
    return 0;
}
