/*
 * bench_produce.c - `runnel-bench produce`: throughput and per-record ack latency.
 *
 * Each record's send time rides in its opaque pointer; the delivery report (on the library's
 * one I/O thread, then the only writer of the histogram) records now - send time; with --sync
 * the sender records send to the return of rn_producer_flush instead. With
 * --inflight N the sender waits while N records are unacknowledged: N = 1 is the one-at-a-time
 * latency the targets speak of (send, wait for the ack, send the next).
 *
 * Waiting is a futex on the outstanding count, woken by the delivery report only when the
 * sender sleeps, so the unbounded mode pays nothing for it. With --spin-us the sender polls
 * the count first (sched_yield between looks), the way a latency-minded application would.
 */
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

typedef struct produce_ctx {
    rn_hist_t *hist;               /* written by the delivery report, or by the sender (--sync) */
    bool sender_records;
    _Atomic uint32_t outstanding;  /* records sent and not yet reported */
    _Atomic uint32_t sleeping;     /* the sender waits on the futex */
    _Atomic uint64_t delivered;
    _Atomic uint64_t failed;
    _Atomic int first_error;
} produce_ctx_t;

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void on_delivery(const rn_delivery_t *report, void *arg)
{
    produce_ctx_t *ctx = arg;
    int64_t sent_ns = (int64_t)(intptr_t)report->opaque;
    int64_t now = bench_now_ns();
    if (report->err == RN_OK) {
        if (!ctx->sender_records)
            rn_hist_record(ctx->hist, (uint64_t)(now > sent_ns ? now - sent_ns : 0));
        atomic_fetch_add_explicit(&ctx->delivered, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&ctx->failed, 1, memory_order_relaxed);
        int none = 0;
        atomic_compare_exchange_strong(&ctx->first_error, &none, (int)report->err);
    }
    atomic_fetch_sub_explicit(&ctx->outstanding, 1, memory_order_seq_cst); /* pairs with wait_below */
    if (atomic_load_explicit(&ctx->sleeping, memory_order_seq_cst))
        futex_wake(&ctx->outstanding);
}

/*
 * Blocks until fewer than limit records are outstanding: first polls for up to spin_ns,
 * yielding the CPU between looks, then sleeps on the futex.
 */
static void wait_below(produce_ctx_t *ctx, uint32_t limit, int64_t spin_ns)
{
    uint32_t n = atomic_load_explicit(&ctx->outstanding, memory_order_acquire);
    if (n < limit)
        return;
    if (spin_ns > 0) {
        int64_t until = bench_now_ns() + spin_ns;
        do {
            n = atomic_load_explicit(&ctx->outstanding, memory_order_acquire);
            if (n < limit)
                return;
            sched_yield(); /* the I/O thread or a local broker may need this CPU */
        } while (bench_now_ns() < until);
    }
    for (;;) {
        atomic_store_explicit(&ctx->sleeping, 1, memory_order_seq_cst);
        n = atomic_load_explicit(&ctx->outstanding, memory_order_seq_cst);
        if (n < limit)
            break;
        futex_wait(&ctx->outstanding, n);
    }
    atomic_store_explicit(&ctx->sleeping, 0, memory_order_relaxed);
}

/* One record at a time gains nothing from lingering: it would only add the linger. */
static int64_t effective_linger(const bench_opts_t *o)
{
    return o->linger_ms >= 0 ? o->linger_ms : (o->inflight == 1 ? 0 : 5);
}

static bool configure(const bench_opts_t *o, rn_conf_t *conf)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)effective_linger(o));
    if (!bench_conf_set(conf, "acks", o->acks) || !bench_conf_set(conf, "linger.ms", num) ||
        !bench_conf_set(conf, "compression.type", o->compression))
        return false;
    if (o->batch_size > 0) {
        snprintf(num, sizeof num, "%lld", (long long)o->batch_size);
        if (!bench_conf_set(conf, "batch.size", num))
            return false;
    }
    return true;
}

int bench_produce(const bench_opts_t *o)
{
    if (bench_ensure_topic(o, true) < 0)
        return BENCH_EXIT_FAIL;
    rn_conf_t *conf = bench_conf(o);
    if (!conf)
        return BENCH_EXIT_USAGE;
    if (!configure(o, conf)) {
        rn_conf_free(conf);
        return BENCH_EXIT_USAGE;
    }
    produce_ctx_t ctx = {.hist = rn_hist_new(), .sender_records = o->sync};
    uint8_t *pool = bench_payload_pool(BENCH_POOL_BYTES + (size_t)o->size);
    rn_producer_t *p = NULL;
    char errbuf[256] = "";
    rn_err_t err = ctx.hist && pool ? rn_producer_new(conf, on_delivery, &ctx, &p, errbuf,
                                                      sizeof errbuf)
                                    : RN_ERR_NOMEM;
    char batch[32];
    snprintf(batch, sizeof batch, "%s", rn_conf_get(conf, "batch.size"));
    rn_conf_free(conf);
    if (err != RN_OK) {
        bench_err("cannot create a producer: %s", errbuf[0] ? errbuf : rn_err_str(err));
        rn_hist_free(ctx.hist);
        free(pool);
        return BENCH_EXIT_FAIL;
    }
    char inflight[32] = "unbounded";
    if (o->inflight > 0)
        snprintf(inflight, sizeof inflight, "%lld", (long long)o->inflight);
    fprintf(stderr,
            "runnel-bench produce: %lld records of %lld bytes to '%s' (acks=%s, linger.ms=%lld, "
            "batch.size=%s, compression=%s, inflight=%s)\n",
            (long long)o->messages, (long long)o->size, o->topic, o->acks,
            (long long)effective_linger(o), batch, o->compression, inflight);

    rn_message_t msg = {.topic = o->topic, .partition = (int32_t)o->partition,
                        .value_len = (size_t)o->size};
    uint32_t limit = o->inflight > 0 ? (uint32_t)o->inflight : UINT32_MAX;
    int64_t spin_ns = o->spin_us * 1000;
    size_t pos = 0;
    uint64_t refused = 0;
    int64_t start = bench_now_ns();
    for (int64_t i = 0; i < o->messages; i++) {
        if (o->inflight > 0)
            wait_below(&ctx, limit, spin_ns);
        msg.value = pool + pos;
        pos = (pos + (size_t)o->size * 7 + 13) % BENCH_POOL_BYTES;
        atomic_fetch_add_explicit(&ctx.outstanding, 1, memory_order_relaxed);
        int64_t now = bench_now_ns();
        msg.opaque = (void *)(intptr_t)now;
        uint64_t failed_before = atomic_load(&ctx.failed);
        err = rn_producer_send(p, &msg, -1);
        if (err == RN_OK && o->sync) {
            rn_err_t ferr = rn_producer_flush(p, -1); /* then the delivery report has run */
            int64_t back = bench_now_ns();
            if (ferr != RN_OK) {
                bench_err("flush: %s", rn_err_str(ferr));
                break;
            }
            if (atomic_load(&ctx.failed) == failed_before)
                rn_hist_record(ctx.hist, (uint64_t)(back - now));
        }
        if (err != RN_OK) {
            atomic_fetch_sub_explicit(&ctx.outstanding, 1, memory_order_relaxed);
            if (refused++ == 0)
                bench_err("send failed: %s", rn_err_str(err));
            if (!rn_err_retriable(err) || err == RN_ERR_TRANSPORT)
                break;
        }
    }
    err = rn_producer_flush(p, -1);
    int64_t end = bench_now_ns();
    rn_producer_close(p, 5000);
    if (err != RN_OK)
        bench_err("flush: %s", rn_err_str(err));

    bench_result_t r = {
        .records = atomic_load(&ctx.delivered),
        .failed = atomic_load(&ctx.failed) + refused,
        .seconds = (double)(end - start) / 1e9,
        .latency = ctx.hist,
        .latency_name = "ack latency",
    };
    r.bytes = r.records * (uint64_t)o->size;
    if (atomic_load(&ctx.failed))
        bench_err("%llu records failed; the first: %s", (unsigned long long)atomic_load(&ctx.failed),
                  rn_err_str((rn_err_t)atomic_load(&ctx.first_error)));
    bench_report(o, &r);
    rn_hist_free(ctx.hist);
    free(pool);
    return r.failed || err != RN_OK ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}
