/*
 * bench.h - what the runnel-bench workloads share: options, topic set-up, payloads and the
 * report (human lines, then with --json one JSON object as the last line).
 *
 * Latencies are recorded in nanoseconds into rn_hist (< 1% relative error) and reported in
 * microseconds. MB means 10^6 bytes of record values.
 */
#ifndef RN_TOOLS_BENCH_H
#define RN_TOOLS_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "runnel/runnel.h"

enum { BENCH_EXIT_OK = 0, BENCH_EXIT_FAIL = 1, BENCH_EXIT_USAGE = 2 };

typedef struct bench_opts {
    const char *workload;      /* "produce", "latency", "consume" */
    const char *brokers;
    const char *topic;
    int64_t partitions;        /* created with this many when missing */
    int64_t messages;          /* produce */
    int64_t size;              /* value bytes */
    const char *acks;
    int64_t linger_ms;         /* -1: the workload's default */
    int64_t batch_size;        /* -1: library default */
    const char *compression;
    int64_t inflight;          /* produce: records in flight; 0 unbounded */
    int64_t spin_us;           /* produce --inflight: spin this long before sleeping */
    bool sync;                 /* produce --sync: send, rn_producer_flush, next */
    int64_t partition;         /* RN_PARTITION_ANY or a fixed partition */
    double rate;               /* latency: records per second */
    double duration_s;         /* latency */
    double warmup_s;           /* latency: not recorded */
    int64_t tick_us;           /* latency: the sender sleeps at least this long at a time */
    bool json;
    const char *x_pairs[64];   /* -X key=value */
    size_t x_count;
} bench_opts_t;

typedef struct bench_result {
    uint64_t records;
    uint64_t failed;
    uint64_t bytes;
    double seconds;
    const rn_hist_t *latency;  /* NULL when the workload measures none */
    const char *latency_name;  /* "ack latency", "end-to-end latency" */
} bench_result_t;

int bench_produce(const bench_opts_t *o);
int bench_latency(const bench_opts_t *o);
int bench_consume(const bench_opts_t *o);

/* A config with bootstrap.servers, client.id and every -X applied; NULL after a message. */
rn_conf_t *bench_conf(const bench_opts_t *o);
/* Sets key=value on conf; false after a message naming the key. */
bool bench_conf_set(rn_conf_t *conf, const char *key, const char *value);
/*
 * Makes sure the topic exists (creating it with o->partitions when missing) and returns its
 * partition count, or -1 after a message.
 */
int bench_ensure_topic(const bench_opts_t *o, bool create);
/* len bytes of incompressible-looking printable text (a fixed seed: runs compare). */
uint8_t *bench_payload_pool(size_t len);
#define BENCH_POOL_BYTES (1u << 20)

/* Prints the human report and, with --json, the JSON line. */
void bench_report(const bench_opts_t *o, const bench_result_t *r);

/* Monotonic nanoseconds. */
int64_t bench_now_ns(void);

/* "runnel-bench: <message>" on stderr. */
void bench_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
