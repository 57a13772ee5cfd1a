/*
 * bench_consume.c - `runnel-bench consume`: reads every partition from its first offset to
 * the log end offset it had at start, and reports records/s and MB/s (key + value bytes).
 * The clock starts just before the first poll, so connection set-up is not counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct range {
    int64_t end;
    bool done;
} range_t;

int bench_consume(const bench_opts_t *o)
{
    int partitions = bench_ensure_topic(o, false);
    if (partitions < 0)
        return BENCH_EXIT_FAIL;
    range_t *ranges = calloc((size_t)partitions, sizeof *ranges);
    rn_conf_t *conf = bench_conf(o);
    rn_admin_t *admin = NULL;
    rn_consumer_t *c = NULL;
    char errbuf[256] = "";
    int status = BENCH_EXIT_FAIL;
    rn_err_t err = ranges && conf ? rn_admin_new(conf, &admin, errbuf, sizeof errbuf) : RN_ERR_NOMEM;
    if (err == RN_OK)
        err = rn_consumer_new(conf, &c, errbuf, sizeof errbuf);
    int64_t expected = 0;
    for (int p = 0; err == RN_OK && p < partitions; p++) {
        int64_t start = 0;
        err = rn_admin_list_offsets(admin, o->topic, p, RN_OFFSET_BEGINNING, &start, 15000);
        if (err == RN_OK)
            err = rn_admin_list_offsets(admin, o->topic, p, RN_OFFSET_END, &ranges[p].end, 15000);
        if (err == RN_OK)
            err = rn_consumer_assign(c, o->topic, p, start);
        ranges[p].done = ranges[p].end <= start;
        expected += ranges[p].end - start;
    }
    if (err != RN_OK) {
        bench_err("cannot set up the consumer: %s", errbuf[0] ? errbuf : rn_err_str(err));
        goto out;
    }
    fprintf(stderr, "runnel-bench consume: %lld records in %d partition(s) of '%s'\n",
            (long long)expected, partitions, o->topic);

    uint64_t records = 0, bytes = 0;
    int remaining = 0;
    for (int p = 0; p < partitions; p++)
        remaining += !ranges[p].done;
    int64_t start_ns = bench_now_ns();
    int64_t idle_since = start_ns;
    while (remaining > 0) {
        const rn_record_view_t *recs;
        size_t n = 0;
        err = rn_consumer_poll(c, 100, 65536, &recs, &n);
        if (err != RN_OK) {
            bench_err("poll: %s", rn_err_str(err));
            break;
        }
        int64_t now = bench_now_ns();
        if (n)
            idle_since = now;
        else if (now - idle_since > 30 * 1000000000LL) {
            bench_err("no records for 30 s with %d partition(s) unfinished", remaining);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const rn_record_view_t *r = &recs[i];
            if (r->partition < 0 || r->partition >= partitions)
                continue;
            bytes += (uint64_t)(r->value_len > 0 ? r->value_len : 0) +
                     (uint64_t)(r->key_len > 0 ? r->key_len : 0);
            if (r->offset < ranges[r->partition].end)
                records++;
            if (!ranges[r->partition].done && r->offset + 1 >= ranges[r->partition].end) {
                ranges[r->partition].done = true;
                remaining--;
            }
        }
    }
    int64_t end_ns = bench_now_ns();
    bench_result_t r = {
        .records = records,
        .bytes = bytes,
        .seconds = (double)(end_ns - start_ns) / 1e9,
    };
    bench_report(o, &r);
    status = remaining == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
out:
    if (c)
        rn_consumer_close(c);
    if (admin)
        rn_admin_close(admin);
    rn_conf_free(conf);
    free(ranges);
    return status;
}
