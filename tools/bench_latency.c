/*
 * bench_latency.c - `runnel-bench latency`: end-to-end latency at a fixed rate, open loop.
 *
 * Record i is scheduled at t0 + i / rate. The sender sleeps until a record is due and then
 * sends every record that is due, each carrying its *scheduled* time in its value:
 *
 *   value: | scheduled_ns u64 | sequence u64 | filler … |
 *
 * A consumer thread in the same process (so both read one CLOCK_MONOTONIC) records
 * receipt time - scheduled time. Measuring from the schedule, not from the moment send()
 * returned, keeps a stall visible: records that should have gone out during it are charged
 * the wait (no coordinated omission).
 *
 * The consumer is assigned at each partition's log end offset, read before the first send,
 * so it sees exactly the records of this run.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench.h"

/* Coarse distribution printed under the percentiles: upper bounds in µs. */
static const double bucket_us[] = {50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1e300};
#define BUCKETS (sizeof bucket_us / sizeof bucket_us[0])

typedef struct latency_ctx {
    const bench_opts_t *o;
    rn_consumer_t *consumer;
    rn_hist_t *hist;
    int64_t warmup_until_ns;       /* records scheduled before this are not recorded */
    _Atomic uint64_t sent;         /* final once sending_done */
    _Atomic bool sending_done;
    _Atomic bool stop;
    uint64_t received;
    uint64_t duplicates;
    uint64_t foreign;              /* records not from this run */
    uint8_t *seen;                 /* one bit per sequence */
    uint64_t total;
    rn_err_t consumer_err;
    uint64_t buckets[BUCKETS];     /* counts per bucket_us range */
} latency_ctx_t;


static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void record(latency_ctx_t *ctx, uint64_t latency_ns)
{
    rn_hist_record(ctx->hist, latency_ns);
    size_t b = 0;
    while (b + 1 < BUCKETS && (double)latency_ns > bucket_us[b] * 1000)
        b++;
    ctx->buckets[b]++;
}

static void *consumer_main(void *arg)
{
    latency_ctx_t *ctx = arg;
    int64_t drain_deadline = 0;
    while (!atomic_load(&ctx->stop)) {
        const rn_record_view_t *recs;
        size_t n = 0;
        rn_err_t err = rn_consumer_poll(ctx->consumer, 50, 4096, &recs, &n);
        int64_t now = bench_now_ns();
        if (err != RN_OK) {
            ctx->consumer_err = err;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (recs[i].value_len < 16) {
                ctx->foreign++;
                continue;
            }
            const uint8_t *v = recs[i].value;
            int64_t scheduled = (int64_t)get_u64(v);
            uint64_t seq = get_u64(v + 8);
            if (seq >= ctx->total) {
                ctx->foreign++;
                continue;
            }
            if (ctx->seen[seq / 8] & (1u << (seq % 8))) {
                ctx->duplicates++;
                continue;
            }
            ctx->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
            ctx->received++;
            if (scheduled >= ctx->warmup_until_ns)
                record(ctx, (uint64_t)(now > scheduled ? now - scheduled : 0));
        }
        if (atomic_load(&ctx->sending_done)) {
            if (ctx->received >= atomic_load(&ctx->sent))
                break;
            if (!drain_deadline)
                drain_deadline = now + 10 * 1000000000LL;
            else if (now > drain_deadline)
                break;
        }
    }
    return NULL;
}

static void sleep_until(int64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000), (long)(t_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* Assigns every partition at its current end. false after a message. */
static bool assign_at_end(const bench_opts_t *o, rn_consumer_t *c, int partitions)
{
    rn_conf_t *conf = bench_conf(o);
    rn_admin_t *admin = NULL;
    char errbuf[256] = "";
    rn_err_t err = conf ? rn_admin_new(conf, &admin, errbuf, sizeof errbuf) : RN_ERR_NOMEM;
    rn_conf_free(conf);
    for (int p = 0; err == RN_OK && p < partitions; p++) {
        int64_t end = 0;
        err = rn_admin_list_offsets(admin, o->topic, p, RN_OFFSET_END, &end, 15000);
        if (err == RN_OK)
            err = rn_consumer_assign(c, o->topic, p, end);
    }
    if (admin)
        rn_admin_close(admin);
    if (err != RN_OK)
        bench_err("cannot assign the consumer: %s", errbuf[0] ? errbuf : rn_err_str(err));
    return err == RN_OK;
}

static void print_distribution(const uint64_t *counts, uint64_t total)
{
    if (!total)
        return;
    printf("distribution:\n");
    double lo = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        if (counts[i]) {
            char range[48];
            if (bucket_us[i] > 1e299)
                snprintf(range, sizeof range, "> %.0f µs", lo);
            else
                snprintf(range, sizeof range, "%.0f - %.0f µs", lo, bucket_us[i]);
            double pct = 100.0 * (double)counts[i] / (double)total;
            int bar = (int)(pct / 2 + 0.5);
            printf("  %18s %6.2f%% %.*s\n", range, pct, bar,
                   "##################################################");
        }
        lo = bucket_us[i];
    }
}

int bench_latency(const bench_opts_t *o)
{
    int partitions = bench_ensure_topic(o, true);
    if (partitions < 0)
        return BENCH_EXIT_FAIL;
    rn_conf_t *pconf = bench_conf(o);
    rn_conf_t *cconf = bench_conf(o);
    char linger[32];
    snprintf(linger, sizeof linger, "%lld", (long long)(o->linger_ms >= 0 ? o->linger_ms : 0));
    bool ok = pconf && cconf && bench_conf_set(pconf, "acks", o->acks) &&
              bench_conf_set(pconf, "linger.ms", linger) &&
              bench_conf_set(pconf, "compression.type", o->compression) &&
              bench_conf_set(cconf, "fetch.max.wait.ms", "100");
    if (ok && o->batch_size > 0) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)o->batch_size);
        ok = bench_conf_set(pconf, "batch.size", num);
    }
    latency_ctx_t ctx = {.o = o, .hist = rn_hist_new()};
    ctx.total = (uint64_t)(o->rate * o->duration_s);
    if (ctx.total == 0)
        ctx.total = 1;
    ctx.seen = calloc(ctx.total / 8 + 1, 1);
    uint8_t *value = malloc((size_t)o->size);
    rn_producer_t *p = NULL;
    char errbuf[256] = "";
    rn_err_t err = RN_ERR_INVALID_ARG;
    if (ok && ctx.hist && ctx.seen && value) {
        err = rn_consumer_new(cconf, &ctx.consumer, errbuf, sizeof errbuf);
        if (err == RN_OK)
            err = rn_producer_new(pconf, NULL, NULL, &p, errbuf, sizeof errbuf);
        if (err != RN_OK)
            bench_err("cannot create the clients: %s", errbuf[0] ? errbuf : rn_err_str(err));
        else if (!assign_at_end(o, ctx.consumer, partitions))
            err = RN_ERR_STATE;
    }
    rn_conf_free(pconf);
    rn_conf_free(cconf);
    int status = BENCH_EXIT_FAIL;
    if (err != RN_OK)
        goto out;
    fprintf(stderr,
            "runnel-bench latency: %llu records of %lld bytes to '%s' at %.0f/s for %.1f s "
            "(acks=%s, linger.ms=%s, warm-up %.1f s)\n",
            (unsigned long long)ctx.total, (long long)o->size, o->topic, o->rate, o->duration_s,
            o->acks, linger, o->warmup_s);

    /* Sleep precision: the default 50 µs timer slack would blur a 10 µs schedule. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    uint8_t *pool = bench_payload_pool((size_t)o->size);
    if (pool) {
        memcpy(value, pool, (size_t)o->size);
        free(pool);
    }
    pthread_t consumer;
    int64_t t0 = bench_now_ns() + 50 * 1000000LL; /* give the consumer's first fetch a start */
    ctx.warmup_until_ns = t0 + (int64_t)(o->warmup_s * 1e9);
    if (pthread_create(&consumer, NULL, consumer_main, &ctx) != 0) {
        bench_err("cannot start the consumer thread");
        goto out;
    }
    double interval_ns = 1e9 / o->rate;
    rn_message_t msg = {.topic = o->topic, .partition = (int32_t)o->partition, .value = value,
                        .value_len = (size_t)o->size};
    uint64_t refused = 0, behind_max = 0;
    int64_t tick_ns = o->tick_us * 1000;
    int64_t awake_until = 0; /* records due before this go without sleeping */
    for (uint64_t i = 0; i < ctx.total; i++) {
        int64_t scheduled = t0 + (int64_t)((double)i * interval_ns);
        int64_t now = bench_now_ns();
        if (now < scheduled && scheduled > awake_until) {
            /* Sleep for a whole tick at least, then send everything due by then. */
            int64_t wake = scheduled;
            if (wake - now < tick_ns)
                wake = now + tick_ns;
            sleep_until(wake);
            awake_until = wake;
        } else if (now > scheduled && (uint64_t)(now - scheduled) > behind_max) {
            behind_max = (uint64_t)(now - scheduled);
        }
        put_u64(value, (uint64_t)scheduled);
        put_u64(value + 8, i);
        err = rn_producer_send(p, &msg, -1);
        if (err != RN_OK && refused++ == 0)
            bench_err("send failed: %s", rn_err_str(err));
        if (err == RN_OK)
            atomic_fetch_add(&ctx.sent, 1);
    }
    int64_t send_end = bench_now_ns();
    rn_producer_flush(p, 30000);
    atomic_store(&ctx.sending_done, true);
    pthread_join(consumer, NULL);

    double seconds = (double)(send_end - t0) / 1e9;
    uint64_t sent = atomic_load(&ctx.sent);
    fprintf(stderr, "runnel-bench latency: sent %llu at %.0f/s (the sender was at most %.1f ms "
                    "behind schedule); received %llu, %llu duplicates, %llu missing\n",
            (unsigned long long)sent, seconds > 0 ? (double)sent / seconds : 0.0,
            (double)behind_max / 1e6, (unsigned long long)ctx.received,
            (unsigned long long)ctx.duplicates,
            (unsigned long long)(ctx.total - ctx.received));
    if (ctx.consumer_err != RN_OK)
        bench_err("consumer: %s", rn_err_str(ctx.consumer_err));
    bench_result_t r = {
        .records = ctx.received,
        .failed = ctx.total - ctx.received,
        .bytes = ctx.received * (uint64_t)o->size,
        .seconds = seconds,
        .latency = ctx.hist,
        .latency_name = "end-to-end latency",
    };
    print_distribution(ctx.buckets, rn_hist_count(ctx.hist));
    bench_report(o, &r);
    status = ctx.received == ctx.total && ctx.consumer_err == RN_OK ? BENCH_EXIT_OK
                                                                    : BENCH_EXIT_FAIL;
out:
    if (p)
        rn_producer_close(p, 5000);
    if (ctx.consumer)
        rn_consumer_close(ctx.consumer);
    rn_hist_free(ctx.hist);
    free(ctx.seen);
    free(value);
    return status;
}
