/* cluster_stream.c - see cluster_stream.h. */
#include "cluster_stream.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cluster_check.h"

static void on_delivery(const rn_delivery_t *r, void *arg)
{
    rn_cs_t *x = arg;
    uint64_t i = (uint64_t)(uintptr_t)r->opaque;
    x->sent[i] = (tc_sent_t){r->partition, r->offset, r->err, true};
    if (r->err == RN_OK) {
        x->ok++;
        if (x->on_ok)
            x->on_ok(x->ctx, i);
    } else if (x->failed++ < 5) {
        fprintf(stderr, "# record %llu not acknowledged: %s\n", (unsigned long long)i,
                rn_err_name(r->err));
    }
    x->reported++;
}

static void *produce(void *arg)
{
    rn_cs_t *x = arg;
    for (uint64_t i = 0; i < x->max && !x->stop; i++) {
        rn_err_t e = tc_send(x->p, x->topic, x->partition, i);
        if (e != RN_OK) {
            x->send_err = e;
            return NULL;
        }
        x->sent_count++;
        if (i % 10 == 9)
            rn_hc_sleep_ms(5);
    }
    return NULL;
}

rn_cs_t *rn_cs_start(rn_hcluster_t *c, const char *topic, int32_t partition, uint64_t max,
                     const char *const *extra, void (*on_ok)(void *, uint64_t), void *ctx)
{
    rn_cs_t *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->sent = calloc(max, sizeof *x->sent);
    assert_non_null(x->sent);
    x->max = max;
    x->topic = topic;
    x->partition = partition;
    x->on_ok = on_ok;
    x->ctx = ctx;
    char bootstrap[256], err[256];
    rn_cc_bootstrap(c, bootstrap, sizeof bootstrap);
    rn_conf_t *conf = rn_conf_new();
    const char *pairs[] = {"acks=all", "enable.idempotence=true", "linger.ms=2",
                           "retry.backoff.ms=50", "request.timeout.ms=3000", NULL};
    assert_int_equal(rn_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err), RN_OK);
    for (size_t k = 0; pairs[k]; k++)
        assert_int_equal(rn_conf_set_pair(conf, pairs[k], err, sizeof err), RN_OK);
    for (size_t k = 0; extra && extra[k]; k++)
        assert_int_equal(rn_conf_set_pair(conf, extra[k], err, sizeof err), RN_OK);
    if (rn_producer_new(conf, on_delivery, x, &x->p, err, sizeof err) != RN_OK)
        fail_msg("producer: %s", err);
    rn_conf_free(conf);
    pthread_create(&x->thread, NULL, produce, x);
    return x;
}

void rn_cs_finish(rn_cs_t *x, int flush_ms)
{
    x->stop = true;
    pthread_join(x->thread, NULL);
    if (x->send_err != RN_OK)
        fail_msg("send failed: %s", rn_err_name(x->send_err));
    assert_int_equal(rn_producer_flush(x->p, flush_ms), RN_OK);
    assert_int_equal(rn_producer_close(x->p, 10000), RN_OK);
    x->p = NULL;
}

void rn_cs_free(rn_cs_t *x)
{
    if (!x)
        return;
    free(x->sent);
    free(x);
}
