/* metrics.c - the Prometheus registry (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 8

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype_t;

struct rn_metric {
    rn_mfamily_t *family;
    char *labels;                /* rendered: topic="a",partition="0" (may be "") */
    _Atomic uint64_t value;      /* counter: the count; gauge: the bits of a double */
    _Atomic uint64_t *buckets;   /* histogram: per bucket (not cumulative), nbounds + 1 */
    _Atomic uint64_t sum_bits;   /* histogram: the bits of a double */
    _Atomic uint64_t count;
    uint64_t hash;               /* of labels */
    rn_metric_t *next, *prev;    /* the family's series, in creation order (render order) */
    rn_metric_t *hnext;          /* the family's hash chain */
};

struct rn_mfamily {
    rn_metrics_t *registry;
    char *name, *help;
    mtype_t type;
    char *label_names[MAX_LABELS];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    rn_metric_t *series, *series_tail;
    rn_metric_t **index;         /* hash of labels -> series: lookups stay O(1) with many */
    size_t index_cap, nseries;
    rn_mfamily_t *next;
};

typedef struct collector {
    void (*fn)(void *ctx);
    void *ctx;
    struct collector *next;
} collector_t;

struct rn_metrics {
    pthread_mutex_t lock; /* recursive: collectors create series while render holds it */
    rn_mfamily_t *families, *families_tail;
    collector_t *collectors;
};

const double rn_metrics_latency_buckets[] = {
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1,     2.5,   5, 10,
};
const size_t rn_metrics_latency_nbuckets =
    sizeof rn_metrics_latency_buckets / sizeof rn_metrics_latency_buckets[0];

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

rn_metrics_t *rn_metrics_new(void)
{
    rn_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    return m;
}

static void series_free(rn_metric_t *s)
{
    free(s->labels);
    free((void *)s->buckets);
    free(s);
}

void rn_metrics_free(rn_metrics_t *m)
{
    if (!m)
        return;
    for (rn_mfamily_t *f = m->families, *fn; f; f = fn) {
        fn = f->next;
        for (rn_metric_t *s = f->series, *sn; s; s = sn) {
            sn = s->next;
            series_free(s);
        }
        for (size_t i = 0; i < f->nlabels; i++)
            free(f->label_names[i]);
        free(f->index);
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    for (collector_t *c = m->collectors, *cn; c; c = cn) {
        cn = c->next;
        free(c);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *s, bool label)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                     (!label && *p == ':');
        bool digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != s))
            return false;
    }
    return true;
}

static bool same_labels(const rn_mfamily_t *f, const char *labels)
{
    size_t n = 0;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", labels ? labels : "");
    for (char *save, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), n++)
        if (n >= f->nlabels || strcmp(t, f->label_names[n]) != 0)
            return false;
    return n == f->nlabels;
}

static rn_mfamily_t *family(rn_metrics_t *m, mtype_t type, const char *name, const char *help,
                            const char *labels, const double *bounds, size_t nbounds)
{
    if (!m || !valid_name(name, false) || (labels && strlen(labels) >= 256))
        return NULL;
    pthread_mutex_lock(&m->lock);
    rn_mfamily_t *f;
    for (f = m->families; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            if (f->type != type || !same_labels(f, labels))
                f = NULL;
            pthread_mutex_unlock(&m->lock);
            return f;
        }
    }
    f = calloc(1, sizeof *f);
    bool ok = f && (f->name = strdup(name)) && (f->help = strdup(help ? help : ""));
    if (ok && labels) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", labels);
        for (char *save, *t = strtok_r(copy, ",", &save); ok && t; t = strtok_r(NULL, ",", &save)) {
            ok = f->nlabels < MAX_LABELS && valid_name(t, true) &&
                 (f->label_names[f->nlabels] = strdup(t));
            if (ok)
                f->nlabels++;
        }
    }
    if (ok && type == M_HISTOGRAM) {
        ok = nbounds > 0 && (f->bounds = malloc(nbounds * sizeof *bounds));
        for (size_t i = 0; ok && i < nbounds; i++) {
            ok = i == 0 || bounds[i] > bounds[i - 1];
            f->bounds[i] = bounds[i];
        }
        f->nbounds = nbounds;
    }
    if (!ok) {
        if (f) {
            for (size_t i = 0; i < f->nlabels; i++)
                free(f->label_names[i]);
            free(f->name);
            free(f->help);
            free(f->bounds);
            free(f);
        }
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    f->registry = m;
    f->type = type;
    if (m->families_tail)
        m->families_tail->next = f;
    else
        m->families = f;
    m->families_tail = f;
    pthread_mutex_unlock(&m->lock);
    return f;
}

rn_mfamily_t *rn_metrics_counter(rn_metrics_t *m, const char *name, const char *help,
                                 const char *labels)
{
    return family(m, M_COUNTER, name, help, labels, NULL, 0);
}

rn_mfamily_t *rn_metrics_gauge(rn_metrics_t *m, const char *name, const char *help,
                               const char *labels)
{
    return family(m, M_GAUGE, name, help, labels, NULL, 0);
}

rn_mfamily_t *rn_metrics_histogram(rn_metrics_t *m, const char *name, const char *help,
                                   const char *labels, const double *bounds, size_t nbounds)
{
    return family(m, M_HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* Appends printf output to b; false when out of memory. */
static bool appendf(rn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool appendf(rn_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || rn_buf_reserve(b, (size_t)n + 1) != RN_OK)
        return false;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

/* name="value" pairs with the value escaped as the text format wants (\\, \", \n). */
static char *render_labels(const rn_mfamily_t *f, const char *const *values)
{
    rn_buf_t b = RN_BUF_INIT;
    bool ok = appendf(&b, "%s", "");
    for (size_t i = 0; ok && i < f->nlabels; i++) {
        ok = appendf(&b, "%s%s=\"", i ? "," : "", f->label_names[i]);
        for (const char *p = values[i] ? values[i] : ""; ok && *p; p++) {
            if (*p == '\\' || *p == '"')
                ok = appendf(&b, "\\%c", *p);
            else if (*p == '\n')
                ok = appendf(&b, "\\n");
            else
                ok = appendf(&b, "%c", *p);
        }
        ok = ok && appendf(&b, "\"");
    }
    if (!ok) {
        rn_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Doubles the index (or creates it); false when out of memory (lookups still work). */
static bool index_grow(rn_mfamily_t *f)
{
    size_t cap = f->index_cap ? f->index_cap * 2 : 64;
    rn_metric_t **idx = calloc(cap, sizeof *idx);
    if (!idx)
        return false;
    for (rn_metric_t *s = f->series; s; s = s->next) {
        size_t b = (size_t)(s->hash & (cap - 1));
        s->hnext = idx[b];
        idx[b] = s;
    }
    free(f->index);
    f->index = idx;
    f->index_cap = cap;
    return true;
}

rn_metric_t *rn_metric_get(rn_mfamily_t *f, const char *const *label_values)
{
    if (!f)
        return NULL;
    char *labels = render_labels(f, label_values);
    if (!labels)
        return NULL;
    uint64_t hash = fnv1a(labels);
    rn_metrics_t *m = f->registry;
    pthread_mutex_lock(&m->lock);
    rn_metric_t *s = NULL;
    if (f->index_cap)
        for (s = f->index[hash & (f->index_cap - 1)]; s; s = s->hnext)
            if (s->hash == hash && strcmp(s->labels, labels) == 0)
                break;
    if (!s && (s = calloc(1, sizeof *s))) {
        s->family = f;
        s->labels = labels;
        s->hash = hash;
        labels = NULL;
        bool no_buckets = f->type == M_HISTOGRAM &&
                          !(s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets));
        /* A failed grow keeps the old index (longer chains); only a missing one fails. */
        if (!no_buckets && f->nseries + 1 > f->index_cap)
            index_grow(f);
        if (no_buckets || !f->index_cap) {
            series_free(s);
            s = NULL;
        } else {
            atomic_init(&s->value, f->type == M_GAUGE ? dbits(0) : 0);
            atomic_init(&s->sum_bits, dbits(0));
            s->prev = f->series_tail;
            if (f->series_tail)
                f->series_tail->next = s;
            else
                f->series = s;
            f->series_tail = s;
            size_t b = (size_t)(hash & (f->index_cap - 1));
            s->hnext = f->index[b];
            f->index[b] = s;
            f->nseries++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    free(labels);
    return s;
}

void rn_metric_remove(rn_mfamily_t *f, rn_metric_t *s)
{
    if (!f || !s || s->family != f)
        return;
    rn_metrics_t *m = f->registry;
    pthread_mutex_lock(&m->lock);
    rn_metric_t **link = &f->index[s->hash & (f->index_cap - 1)];
    while (*link && *link != s)
        link = &(*link)->hnext;
    if (*link) {
        *link = s->hnext;
        if (s->prev)
            s->prev->next = s->next;
        else
            f->series = s->next;
        if (s->next)
            s->next->prev = s->prev;
        else
            f->series_tail = s->prev;
        f->nseries--;
        series_free(s);
    }
    pthread_mutex_unlock(&m->lock);
}

void rn_counter_add(rn_metric_t *s, uint64_t n)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void rn_gauge_set(rn_metric_t *s, double v)
{
    if (s)
        atomic_store_explicit(&s->value, dbits(v), memory_order_relaxed);
}

static void add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void rn_gauge_add(rn_metric_t *s, double v)
{
    if (s)
        add_double(&s->value, v);
}

void rn_histo_observe_n(rn_metric_t *s, double v, uint64_t n)
{
    if (!s || !s->buckets || n == 0)
        return;
    const rn_mfamily_t *f = s->family;
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], n, memory_order_relaxed);
    add_double(&s->sum_bits, v * (double)n);
    atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void rn_histo_observe(rn_metric_t *s, double v)
{
    rn_histo_observe_n(s, v, 1);
}

double rn_metric_value(const rn_metric_t *s)
{
    if (!s)
        return 0;
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    return s->family->type == M_GAUGE ? bitsd(v) : (double)v;
}

uint64_t rn_histo_count(const rn_metric_t *s)
{
    return s ? atomic_load_explicit(&s->count, memory_order_relaxed) : 0;
}

double rn_histo_sum(const rn_metric_t *s)
{
    return s ? bitsd(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)) : 0;
}

rn_err_t rn_metrics_on_collect(rn_metrics_t *m, void (*fn)(void *ctx), void *ctx)
{
    collector_t *c = calloc(1, sizeof *c);
    if (!c)
        return RN_ERR_NOMEM;
    c->fn = fn;
    c->ctx = ctx;
    pthread_mutex_lock(&m->lock);
    c->next = m->collectors;
    m->collectors = c;
    pthread_mutex_unlock(&m->lock);
    return RN_OK;
}

/* A sample value as the text format spells it. */
static void fmt_value(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else {
        /* The shortest form that reads back as v: le="0.0025", not "0.0025000000000000001"
         * (a query selecting a bucket by its le label compares strings). */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static bool render_histogram(rn_buf_t *out, const rn_mfamily_t *f, const rn_metric_t *s)
{
    uint64_t cum = 0;
    const char *sep = s->labels[0] ? "," : "";
    bool ok = true;
    for (size_t i = 0; ok && i <= f->nbounds; i++) {
        char le[40];
        if (i < f->nbounds)
            fmt_value(f->bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        ok = appendf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep, le,
                     (unsigned long long)cum);
    }
    char sum[40];
    fmt_value(rn_histo_sum(s), sum, sizeof sum);
    const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
    /* _count is the +Inf bucket, so the two always agree in one scrape. */
    return ok && appendf(out, "%s_sum%s%s%s %s\n%s_count%s%s%s %llu\n", f->name, open,
                         s->labels, close, sum, f->name, open, s->labels, close,
                         (unsigned long long)cum);
}

rn_err_t rn_metrics_render(rn_metrics_t *m, rn_buf_t *out)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->lock);
    for (collector_t *c = m->collectors; c; c = c->next)
        c->fn(c->ctx);
    bool ok = true;
    for (rn_mfamily_t *f = m->families; ok && f; f = f->next) {
        ok = appendf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                     types[f->type]);
        for (rn_metric_t *s = f->series; ok && s; s = s->next) {
            if (f->type == M_HISTOGRAM) {
                ok = render_histogram(out, f, s);
                continue;
            }
            char v[40];
            fmt_value(rn_metric_value(s), v, sizeof v);
            ok = s->labels[0] ? appendf(out, "%s{%s} %s\n", f->name, s->labels, v)
                              : appendf(out, "%s %s\n", f->name, v);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return ok ? RN_OK : RN_ERR_NOMEM;
}
