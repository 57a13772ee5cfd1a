/*
 * hiccup.c - runnel-hiccup-bench: how long this machine takes the CPUs away from a thread that
 * never sleeps, and what that alone does to a stream's latency (the idea of jHiccup).
 *
 *   runnel-hiccup-bench [--seconds S] [--json]
 *
 * One thread per CPU, each pinned to its CPU, reads CLOCK_MONOTONIC in a tight loop for S
 * seconds (default 10) and keeps every gap between two reads longer than 20 µs: time the
 * thread did not run (the host ran something else on the vCPU, an interrupt, the kernel).
 * It prints the gaps per CPU, then the latency a steady stream of records (any rate) would
 * get from those gaps alone, through a pipeline that does no work at all: a record that
 * arrives during a gap waits for the rest of it, so the share of records delayed by more
 * than x is sum(max(0, gap - x)) / S. Two models bound a real pipeline that uses both CPUs:
 * "either" (the union of the CPUs' gaps: the pipeline stalls when any CPU stalls) and "both"
 * (their intersection: it stalls only when every CPU does).
 *
 * bench/targets.sh runs it before the end-to-end rounds, so their p99.9 can be read against
 * what the machine took away at about that time. It is a reference point, not a strict bound:
 * the gaps are measured before the runs, not during them, and a pipeline whose threads can
 * move between CPUs pays less than the "either" model says. --json adds one JSON object as
 * the last line: cpus, seconds, gaps_over_1ms, max_gap_us, either_p99_us, either_p999_us,
 * both_p99_us, both_p999_us.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GAP_MIN_NS 20000
#define MAX_CPUS 64

typedef struct gap {
    int64_t start, end; /* ns */
} gap_t;

typedef struct meter {
    int cpu;
    int64_t until;
    gap_t *gaps;
    size_t n, cap;
    int64_t max_gap;
    bool pinned, oom;
} meter_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Thread body: pins itself to m->cpu and records every gap over GAP_MIN_NS until m->until;
 * m->oom when the gap list could not grow (the run is then void). */
static void *meter_main(void *arg)
{
    meter_t *m = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(m->cpu, &set);
    m->pinned = sched_setaffinity(0, sizeof set, &set) == 0;
    int64_t last = now_ns();
    while (last < m->until) {
        int64_t t = now_ns();
        int64_t d = t - last;
        if (d > GAP_MIN_NS) {
            if (d > m->max_gap)
                m->max_gap = d;
            if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 4096;
                gap_t *g = realloc(m->gaps, cap * sizeof *g);
                if (!g) {
                    m->oom = true;
                    return NULL;
                }
                m->gaps = g;
                m->cap = cap;
            }
            m->gaps[m->n++] = (gap_t){last, t};
        }
        last = t;
    }
    return NULL;
}

/* Merges the sorted lists a and b into out (capacity na + nb) as their union or intersection;
 * returns the count. */
static size_t combine(const gap_t *a, size_t na, const gap_t *b, size_t nb, bool unite, gap_t *out)
{
    size_t n = 0, i = 0, j = 0;
    if (!unite) {
        while (i < na && j < nb) {
            int64_t s = a[i].start > b[j].start ? a[i].start : b[j].start;
            int64_t e = a[i].end < b[j].end ? a[i].end : b[j].end;
            if (s < e)
                out[n++] = (gap_t){s, e};
            if (a[i].end < b[j].end)
                i++;
            else
                j++;
        }
        return n;
    }
    while (i < na || j < nb) {
        gap_t g = (j >= nb || (i < na && a[i].start <= b[j].start)) ? a[i++] : b[j++];
        if (n && g.start <= out[n - 1].end) {
            if (g.end > out[n - 1].end)
                out[n - 1].end = g.end;
        } else {
            out[n++] = g;
        }
    }
    return n;
}

/* Share of a uniform stream's records delayed by more than x_ns by the gaps. */
static double share_over(const gap_t *g, size_t n, double seconds, int64_t x_ns)
{
    double late = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d = g[i].end - g[i].start;
        if (d > x_ns)
            late += (double)(d - x_ns);
    }
    return late / (seconds * 1e9);
}

/* The delay (µs) that a share q of the records exceeds, from the gaps alone. */
static double quantile_us(const gap_t *g, size_t n, double seconds, double q)
{
    int64_t lo = 0, hi = 1000000000;
    if (share_over(g, n, seconds, 0) <= 1 - q)
        return 0;
    while (hi - lo > 100) {
        int64_t mid = lo + (hi - lo) / 2;
        if (share_over(g, n, seconds, mid) > 1 - q)
            lo = mid;
        else
            hi = mid;
    }
    return (double)hi / 1000.0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: runnel-hiccup-bench [--seconds S] [--json]\n"
               "  One thread per CPU spins on the clock for S seconds (default 10) and records\n"
               "  the gaps it did not run; prints them and the latency they alone would give a\n"
               "  steady stream of records through a pipeline doing no work.\n");
}

int main(int argc, char **argv)
{
    double seconds = 10;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--seconds") && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end || !(seconds > 0) || seconds > 3600) {
                fprintf(stderr, "runnel-hiccup-bench: --seconds '%s' is not a number of "
                                "seconds between 0 and 3600\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "runnel-hiccup-bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    /* The CPUs this process may run on (a cpuset may leave out some of the machine's). */
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        CPU_ZERO(&allowed);
        CPU_SET(0, &allowed);
    }
    meter_t m[MAX_CPUS] = {0};
    pthread_t t[MAX_CPUS];
    long ncpu = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && ncpu < MAX_CPUS; cpu++) {
        if (CPU_ISSET(cpu, &allowed))
            m[ncpu++].cpu = cpu;
    }
    int64_t until = now_ns() + (int64_t)(seconds * 1e9);
    for (long c = 0; c < ncpu; c++) {
        m[c].until = until;
        if (pthread_create(&t[c], NULL, meter_main, &m[c]) != 0) {
            fprintf(stderr, "runnel-hiccup-bench: cannot start a thread\n");
            return 1;
        }
    }
    size_t total = 0, over_1ms = 0;
    int64_t max_gap = 0;
    for (long c = 0; c < ncpu; c++) {
        pthread_join(t[c], NULL);
        if (m[c].oom) {
            fprintf(stderr, "runnel-hiccup-bench: out of memory\n");
            return 1;
        }
        size_t big = 0;
        for (size_t i = 0; i < m[c].n; i++)
            big += m[c].gaps[i].end - m[c].gaps[i].start > 1000000;
        printf("cpu %d%s: %zu gaps over 20 µs, %zu over 1 ms, longest %.2f ms\n", m[c].cpu,
               m[c].pinned ? "" : " (not pinned)", m[c].n, big, (double)m[c].max_gap / 1e6);
        total += m[c].n;
        over_1ms += big;
        if (m[c].max_gap > max_gap)
            max_gap = m[c].max_gap;
    }
    gap_t *either = malloc((total + 1) * sizeof *either);
    gap_t *both = malloc((total + 1) * sizeof *both);
    gap_t *tmp = malloc((total + 1) * sizeof *tmp);
    if (!either || !both || !tmp) {
        fprintf(stderr, "runnel-hiccup-bench: out of memory\n");
        return 1;
    }
    size_t ne = m[0].n, nb = m[0].n;
    memcpy(either, m[0].gaps, m[0].n * sizeof *either);
    memcpy(both, m[0].gaps, m[0].n * sizeof *both);
    for (long c = 1; c < ncpu; c++) {
        ne = combine(either, ne, m[c].gaps, m[c].n, true, tmp);
        memcpy(either, tmp, ne * sizeof *tmp);
        nb = combine(both, nb, m[c].gaps, m[c].n, false, tmp);
        memcpy(both, tmp, nb * sizeof *tmp);
    }
    double e99 = quantile_us(either, ne, seconds, 0.99);
    double e999 = quantile_us(either, ne, seconds, 0.999);
    double b99 = quantile_us(both, nb, seconds, 0.99);
    double b999 = quantile_us(both, nb, seconds, 0.999);
    printf("a steady stream through a pipeline doing no work, from these gaps alone:\n"
           "  any CPU stalled stalls it:   p99 %.1f µs  p99.9 %.1f µs\n"
           "  only all CPUs stalled do:    p99 %.1f µs  p99.9 %.1f µs\n",
           e99, e999, b99, b999);
    if (json)
        printf("{\"workload\":\"hiccup\",\"cpus\":%ld,\"seconds\":%.3f,\"gaps_over_1ms\":%zu,"
               "\"max_gap_us\":%.1f,\"either_p99_us\":%.1f,\"either_p999_us\":%.1f,"
               "\"both_p99_us\":%.1f,\"both_p999_us\":%.1f}\n",
               ncpu, seconds, over_1ms, (double)max_gap / 1000.0, e99, e999, b99, b999);
    for (long c = 0; c < ncpu; c++)
        free(m[c].gaps);
    free(either);
    free(both);
    free(tmp);
    return 0;
}
