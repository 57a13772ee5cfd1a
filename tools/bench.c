/*
 * runnel-bench - measures Runnel: produce throughput and ack latency, end-to-end latency at a
 * fixed rate (open loop), and consume throughput. See docs/cli.md and bench/RESULTS.md.
 *
 *   runnel-bench produce -t TOPIC --messages N --size B [--acks] [--linger-ms] [--batch-size]
 *                        [--compression] [--inflight N] [--json]
 *   runnel-bench latency -t TOPIC --rate R --duration S --size B [--json]
 *   runnel-bench consume -t TOPIC [--json]
 */
#include "bench.h"

#include "probe.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: runnel-bench WORKLOAD -t TOPIC [OPTIONS]\n"
    "\n"
    "Workloads:\n"
    "  produce   send --messages records as fast as the producer takes them; report records/s,\n"
    "            MB/s and the ack latency of each record (send -> delivery report)\n"
    "  latency   send at a fixed --rate for --duration seconds and consume them in the same\n"
    "            process; report end-to-end latency from each record's scheduled send time\n"
    "            to its receipt (open loop: a slow response never delays the schedule)\n"
    "  consume   read the topic from the beginning to its end at start; report records/s, MB/s\n"
    "\n"
    "Options:\n"
    "  -b, --brokers HOST:PORT[,…]  bootstrap brokers (default $RUNNEL_BROKERS, then "
    "127.0.0.1:9092)\n"
    "  -t, --topic TOPIC            topic (produce and latency create it when missing)\n"
    "      --partitions N           partitions of a topic created here (default 1)\n"
    "      --messages N             produce: records to send (default 1000000)\n"
    "      --size BYTES             value size (default 100; latency needs >= 16)\n"
    "      --acks 0|1|all           produce, latency (default 1)\n"
    "      --linger-ms MS           producer linger (default: produce 5, latency 0,\n"
    "                               produce --inflight 1: 0)\n"
    "      --batch-size BYTES       producer batch.size (default: the library's)\n"
    "      --compression none|zstd  producer compression.type (default none)\n"
    "      --inflight N             produce: at most N records awaiting acknowledgement;\n"
    "                               1 = one at a time (send, wait for the ack, next)\n"
    "      --spin-us US             produce --inflight: poll this long for the ack, yielding\n"
    "                               the CPU between looks, before sleeping (default 0)\n"
    "      --sync                   produce: send a record, rn_producer_flush, send the next\n"
    "                               (a synchronous send; implies --inflight 1); latency is\n"
    "                               send to flush's return\n"
    "  -p, --partition N            produce to partition N only (default: the partitioner)\n"
    "      --rate R                 latency: records per second (default 10000)\n"
    "      --duration S             latency: seconds of sending (default 10)\n"
    "      --warmup S               latency: leave the first S seconds out of the histogram\n"
    "      --tick-us US             latency: the sender sleeps at least US at a time and then\n"
    "                               sends every record due (default 50; the wait counts in\n"
    "                               each record's latency, measured from its own schedule)\n"
    "  -X, --property KEY=VALUE     any client setting; repeat for more\n"
    "      --json                   print one JSON object as the last line\n"
    "  -h, --help                   this help\n"
    "  -V, --version                print the version\n"
    "\n"
    "Examples:\n"
    "  runnel-bench produce -t bench --messages 2000000 --size 100 --acks 1\n"
    "  runnel-bench produce -t bench --messages 20000 --size 100 --inflight 1\n"
    "  runnel-bench latency -t e2e --rate 100000 --duration 10 --size 100 --warmup 2\n"
    "  runnel-bench consume -t bench --json\n";

enum {
    OPT_PARTITIONS = 1000, OPT_MESSAGES, OPT_SIZE, OPT_ACKS, OPT_LINGER, OPT_BATCH,
    OPT_COMPRESSION, OPT_INFLIGHT, OPT_SPIN, OPT_RATE, OPT_DURATION, OPT_WARMUP, OPT_TICK,
    OPT_JSON, OPT_SYNC,
};

void bench_err(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "runnel-bench: %s\n", msg);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "runnel-bench: %s\nTry 'runnel-bench --help'.\n", msg);
    return BENCH_EXIT_USAGE;
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool bench_conf_set(rn_conf_t *conf, const char *key, const char *value)
{
    char errbuf[256] = "";
    rn_err_t err = rn_conf_set(conf, key, value, errbuf, sizeof errbuf);
    if (err == RN_OK)
        return true;
    bench_err("%s=%s: %s", key, value, errbuf[0] ? errbuf : rn_err_str(err));
    return false;
}

rn_conf_t *bench_conf(const bench_opts_t *o)
{
    rn_conf_t *conf = rn_conf_new();
    if (!conf)
        return NULL;
    if (!bench_conf_set(conf, "bootstrap.servers", o->brokers) ||
        !bench_conf_set(conf, "client.id", "runnel-bench"))
        goto fail;
    for (size_t i = 0; i < o->x_count; i++) {
        char errbuf[256] = "";
        rn_err_t err = rn_conf_set_pair(conf, o->x_pairs[i], errbuf, sizeof errbuf);
        if (err != RN_OK) {
            bench_err("-X %s: %s", o->x_pairs[i], errbuf[0] ? errbuf : rn_err_str(err));
            goto fail;
        }
    }
    return conf;
fail:
    rn_conf_free(conf);
    return NULL;
}

int bench_ensure_topic(const bench_opts_t *o, bool create)
{
    rn_conf_t *conf = bench_conf(o);
    if (!conf)
        return -1;
    rn_admin_t *admin = NULL;
    char errbuf[256] = "";
    rn_err_t err = rn_admin_new(conf, &admin, errbuf, sizeof errbuf);
    rn_conf_free(conf);
    if (err != RN_OK) {
        bench_err("cannot create an admin client: %s", errbuf[0] ? errbuf : rn_err_str(err));
        return -1;
    }
    int partitions = -1;
    for (int attempt = 0; attempt < 2 && partitions < 0; attempt++) {
        rn_metadata_t *md = NULL;
        err = rn_admin_describe(admin, o->topic, 15000, &md);
        if (err == RN_OK) {
            for (size_t i = 0; i < md->topic_count; i++) {
                if (strcmp(md->topics[i].name, o->topic) == 0 && md->topics[i].err == RN_OK &&
                    md->topics[i].partition_count > 0)
                    partitions = (int)md->topics[i].partition_count;
            }
            rn_metadata_free(md);
            if (partitions < 0)
                err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        if (partitions >= 0 || err != RN_ERR_UNKNOWN_TOPIC_OR_PARTITION || !create || attempt)
            break;
        err = rn_admin_create_topic(admin, o->topic, (int)o->partitions, 1, NULL, 15000, errbuf,
                                    sizeof errbuf);
        if (err != RN_OK && err != RN_ERR_TOPIC_ALREADY_EXISTS) {
            bench_err("cannot create topic '%s': %s", o->topic, errbuf[0] ? errbuf : rn_err_str(err));
            break;
        }
        fprintf(stderr, "runnel-bench: created topic '%s' with %lld partition(s)\n", o->topic,
                (long long)o->partitions);
    }
    rn_admin_close(admin);
    if (partitions < 0 && err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        bench_err("topic '%s' does not exist", o->topic);
    else if (partitions < 0 && err != RN_OK)
        bench_err("cannot describe topic '%s' at %s: %s — is runnel-broker running?", o->topic,
                  o->brokers, rn_err_str(err));
    return partitions;
}

uint8_t *bench_payload_pool(size_t len)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.:{}\"_-";
    uint8_t *p = malloc(len);
    if (!p)
        return NULL;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)alphabet[(x >> 32) % (sizeof alphabet - 1)];
    }
    return p;
}

static double q_us(const rn_hist_t *h, double q)
{
    return (double)rn_hist_quantile(h, q) / 1000.0;
}

void bench_report(const bench_opts_t *o, const bench_result_t *r)
{
    double secs = r->seconds > 0 ? r->seconds : 1e-9;
    double rps = (double)r->records / secs;
    double mbps = (double)r->bytes / 1e6 / secs;
    printf("%llu records, %.1f MB in %.3f s: %.0f records/s, %.1f MB/s%s",
           (unsigned long long)r->records, (double)r->bytes / 1e6, r->seconds, rps, mbps,
           r->failed ? "" : "\n");
    if (r->failed)
        printf("; %llu FAILED\n", (unsigned long long)r->failed);
    const rn_hist_t *h = r->latency;
    bool has_latency = h && rn_hist_count(h) > 0;
    if (has_latency) {
        printf("%s (µs) over %llu records: min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  "
               "p99.9 %.1f  p99.99 %.1f  max %.1f  mean %.1f\n",
               r->latency_name, (unsigned long long)rn_hist_count(h),
               (double)rn_hist_min(h) / 1000.0, q_us(h, 0.50), q_us(h, 0.90), q_us(h, 0.99),
               q_us(h, 0.999), q_us(h, 0.9999), (double)rn_hist_max(h) / 1000.0,
               rn_hist_mean(h) / 1000.0);
    }
    if (o->json) {
        printf("{\"workload\":\"%s\",\"records\":%llu,\"failed\":%llu,\"seconds\":%.6f,"
               "\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f",
               o->workload, (unsigned long long)r->records, (unsigned long long)r->failed,
               r->seconds, rps, mbps);
        if (has_latency)
            printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
                   q_us(h, 0.50), q_us(h, 0.99), q_us(h, 0.999), (double)rn_hist_max(h) / 1000.0);
        printf("}\n");
    }
    fflush(stdout);
}

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    long long v = strtoll(s, &end, 10);
    if (*end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double min, double *out)
{
    char *end;
    if (!s || !*s)
        return false;
    double v = strtod(s, &end);
    if (*end || !(v >= min) || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, bench_opts_t *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"property", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"messages", required_argument, NULL, OPT_MESSAGES},
        {"size", required_argument, NULL, OPT_SIZE},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"batch-size", required_argument, NULL, OPT_BATCH},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"spin-us", required_argument, NULL, OPT_SPIN},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"tick-us", required_argument, NULL, OPT_TICK},
        {"json", no_argument, NULL, OPT_JSON},
        {"sync", no_argument, NULL, OPT_SYNC},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:t:p:X:h", longopts, NULL)) != -1) {
        const char *name = optind > 0 ? argv[optind - 1] : "";
        bool ok = true;
        switch (c) {
        case 'b':
            o->brokers = optarg;
            for (char *a = strtok(strdupa(optarg), ","); a; a = strtok(NULL, ",")) {
                char host[256], port[16];
                if (!rn_probe_split_addr(a, host, sizeof host, port, sizeof port))
                    return usage_error("option '-b': '%s' is not HOST:PORT", a);
            }
            break;
        case 't': o->topic = optarg; break;
        case 'p': ok = parse_i64(optarg, 0, INT32_MAX, &o->partition); break;
        case 'X':
            if (o->x_count == sizeof o->x_pairs / sizeof o->x_pairs[0])
                return usage_error("option '-X': at most 64 settings");
            o->x_pairs[o->x_count++] = optarg;
            break;
        case 'h': fputs(usage, stdout); return BENCH_EXIT_OK;
        case OPT_PARTITIONS: ok = parse_i64(optarg, 1, 100000, &o->partitions); break;
        case OPT_MESSAGES: ok = parse_i64(optarg, 1, INT64_MAX / 2, &o->messages); break;
        case OPT_SIZE: ok = parse_i64(optarg, 0, 64 << 20, &o->size); break;
        case OPT_ACKS:
            ok = !strcmp(optarg, "0") || !strcmp(optarg, "1") || !strcmp(optarg, "all") ||
                 !strcmp(optarg, "-1");
            o->acks = optarg;
            break;
        case OPT_LINGER: ok = parse_i64(optarg, 0, 600000, &o->linger_ms); break;
        case OPT_BATCH: ok = parse_i64(optarg, 1, 1 << 30, &o->batch_size); break;
        case OPT_COMPRESSION:
            ok = !strcmp(optarg, "none") || !strcmp(optarg, "zstd");
            o->compression = optarg;
            break;
        case OPT_INFLIGHT: ok = parse_i64(optarg, 0, 1 << 30, &o->inflight); break;
        case OPT_SPIN: ok = parse_i64(optarg, 0, 1000000, &o->spin_us); break;
        case OPT_RATE: ok = parse_double(optarg, 1e-3, &o->rate); break;
        case OPT_DURATION: ok = parse_double(optarg, 1e-3, &o->duration_s); break;
        case OPT_WARMUP: ok = parse_double(optarg, 0, &o->warmup_s); break;
        case OPT_TICK: ok = parse_i64(optarg, 0, 1000000, &o->tick_us); break;
        case OPT_JSON: o->json = true; break;
        case OPT_SYNC: o->sync = true; break;
        case ':':
        default: {
            char flag[64];
            if (strncmp(name, "--", 2) != 0 && optopt > ' ' && optopt < 127)
                snprintf(flag, sizeof flag, "-%c", optopt);
            else
                snprintf(flag, sizeof flag, "%s", name);
            flag[strcspn(flag, "=")] = '\0';
            if (c == ':')
                return usage_error("option '%s' needs a value", flag);
            return usage_error("unknown option '%s'", flag);
        }
        }
        if (!ok) {
            char flag[64];
            snprintf(flag, sizeof flag, "%s", name);
            if (strcmp(flag, optarg) == 0 && optind >= 2)
                snprintf(flag, sizeof flag, "%s", argv[optind - 2]);
            flag[strcspn(flag, "=")] = '\0';
            return usage_error("option '%s': bad value '%s'", flag, optarg);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->topic)
        return usage_error("option '-t TOPIC' is required");
    if (o->sync && (strcmp(o->workload, "produce") != 0 || o->inflight > 1))
        return usage_error("option '--sync': only for produce, one record at a time");
    if (o->sync && o->spin_us > 0)
        return usage_error("option '--spin-us' does nothing with '--sync' (the flush waits; "
                           "-X io.busy.poll.us=US makes it poll)");
    if (o->sync)
        o->inflight = 1;
    if (strcmp(o->workload, "latency") == 0 && o->size < 16)
        return usage_error("option '--size': latency needs at least 16 bytes (a timestamp and a "
                           "sequence number ride in the value)");
    return -1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(usage, stderr);
        return BENCH_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
        return BENCH_EXIT_OK;
    }
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
        printf("runnel-bench %s (librunnel %s)\n", RUNNEL_VERSION, rn_version());
        return BENCH_EXIT_OK;
    }
    bench_opts_t o = {
        .workload = argv[1],
        .brokers = getenv("RUNNEL_BROKERS") && *getenv("RUNNEL_BROKERS") ? getenv("RUNNEL_BROKERS")
                                                                          : "127.0.0.1:9092",
        .partitions = 1,
        .messages = 1000000,
        .size = 100,
        .acks = "1",
        .linger_ms = -1,
        .batch_size = -1,
        .compression = "none",
        .partition = RN_PARTITION_ANY,
        .rate = 10000,
        .duration_s = 10,
        .tick_us = 50,
    };
    int (*run)(const bench_opts_t *) = NULL;
    if (!strcmp(o.workload, "produce"))
        run = bench_produce;
    else if (!strcmp(o.workload, "latency"))
        run = bench_latency;
    else if (!strcmp(o.workload, "consume"))
        run = bench_consume;
    else
        return usage_error("unknown workload '%s' (produce, latency, consume)", o.workload);
    int rc = parse_args(argc - 1, argv + 1, &o);
    if (rc >= 0)
        return rc;
    char why[1024];
    if (!rn_probe_brokers(o.brokers, 3000, why, sizeof why)) {
        bench_err("cannot reach broker %s — is runnel-broker running? Set -b HOST:PORT or "
                  "RUNNEL_BROKERS",
                  why);
        return BENCH_EXIT_FAIL;
    }
    return run(&o);
}
