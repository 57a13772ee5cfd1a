/* broker_io.c - the broker source and the publisher (see broker_io.h). */
#include "broker_io.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logging.h"

#define ADMIN_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- the source -- */

struct rn_brksrc {
    rn_conf_t *conf;
    rn_consumer_t *consumer;
    rn_admin_t *admin;
    rn_src_record_t *out;
    size_t outcap;
    int64_t last_warn_ms;
    char errbuf[512];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

rn_err_t rn_brksrc_new(const rn_conf_t *conf, rn_brksrc_t **out, char *errbuf, size_t errlen)
{
    rn_brksrc_t *s = calloc(1, sizeof *s);
    if (!s)
        return RN_ERR_NOMEM;
    s->conf = rn_conf_dup(conf);
    rn_err_t err = s->conf ? RN_OK : RN_ERR_NOMEM;
    if (err == RN_OK)
        err = rn_consumer_new(s->conf, &s->consumer, errbuf, errlen);
    if (err == RN_OK)
        err = rn_admin_new(s->conf, &s->admin, errbuf, errlen);
    if (err != RN_OK) {
        rn_brksrc_free(s);
        return err;
    }
    *out = s;
    return RN_OK;
}

void rn_brksrc_free(rn_brksrc_t *s)
{
    if (!s)
        return;
    if (s->consumer)
        rn_consumer_close(s->consumer);
    if (s->admin)
        rn_admin_close(s->admin);
    rn_conf_free(s->conf);
    free(s->out);
    free(s);
}

static rn_err_t src_partitions(void *ctx, const char *topic, int32_t *count, char *errbuf,
                               size_t errlen)
{
    rn_brksrc_t *s = ctx;
    rn_metadata_t *md = NULL;
    const char *servers = rn_conf_get(s->conf, "bootstrap.servers");
    rn_err_t err = rn_admin_describe(s->admin, topic, ADMIN_TIMEOUT_MS, &md);
    if (err == RN_OK && md->topic_count == 1)
        err = md->topics[0].err;
    if (err == RN_OK && md->topic_count != 1)
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        snprintf(errbuf, errlen,
                 "topic '%s' does not exist on %s; create it first (runnel topic create %s "
                 "--partitions N)", topic, servers, topic);
    else if (err != RN_OK)
        snprintf(errbuf, errlen, "cannot read the metadata of topic '%s' from %s: %s; is a "
                                 "broker running there? (-b HOST:PORT or $RUNNEL_BROKERS)",
                 topic, servers, rn_err_str(err));
    else
        *count = (int32_t)md->topics[0].partition_count;
    if (md)
        rn_metadata_free(md);
    return err;
}

static rn_err_t src_assign(void *ctx, const char *topic, int32_t partition, int64_t offset)
{
    rn_brksrc_t *s = ctx;
    return rn_consumer_assign(s->consumer, topic, partition,
                              offset == RN_SRC_BEGINNING ? RN_OFFSET_BEGINNING : offset);
}

static rn_err_t src_end_offset(void *ctx, const char *topic, int32_t partition, int64_t *end)
{
    rn_brksrc_t *s = ctx;
    return rn_admin_list_offsets(s->admin, topic, partition, RN_OFFSET_END, end,
                                 ADMIN_TIMEOUT_MS);
}

static rn_err_t src_poll(void *ctx, int timeout_ms, size_t max, const rn_src_record_t **recs,
                         size_t *n)
{
    rn_brksrc_t *s = ctx;
    const rn_record_view_t *views;
    size_t count = 0;
    *n = 0;
    *recs = s->out;
    rn_err_t err = rn_consumer_poll(s->consumer, timeout_ms, max, &views, &count);
    if (err != RN_OK) {
        if (!rn_err_retriable(err))
            return err;
        /* A broker restart or leader move: the consumer reconnects; keep the job running. */
        int64_t now = mono_ms();
        if (now - s->last_warn_ms >= 5000) {
            RN_WARN("processor", "reading from the brokers: %s (retrying)", rn_err_str(err));
            s->last_warn_ms = now;
        }
        return RN_OK;
    }
    if (count > s->outcap) {
        rn_src_record_t *grown = realloc(s->out, count * sizeof *grown);
        if (!grown)
            return RN_ERR_NOMEM;
        s->out = grown;
        s->outcap = count;
    }
    for (size_t i = 0; i < count; i++) {
        const rn_record_view_t *v = &views[i];
        s->out[i] = (rn_src_record_t){
            .partition = v->partition, .offset = v->offset, .timestamp = v->timestamp,
            .value = v->value, .value_len = v->value_len < 0 ? 0 : (size_t)v->value_len,
        };
    }
    *recs = s->out;
    *n = count;
    return RN_OK;
}

static rn_err_t src_high_watermark(void *ctx, const char *topic, int32_t partition, int64_t *hw)
{
    rn_brksrc_t *s = ctx;
    return rn_consumer_high_watermark(s->consumer, topic, partition, hw);
}

rn_source_t rn_brksrc_source(rn_brksrc_t *s)
{
    return (rn_source_t){.partitions = src_partitions, .assign = src_assign,
                         .end_offset = src_end_offset, .poll = src_poll,
                         .high_watermark = src_high_watermark, .ctx = s};
}

/* ------------------------------------------------------------- the publisher -- */

struct rn_pub {
    rn_producer_t *producer;
    char source_topic[256];
    _Atomic int first_error; /* rn_err_t of the first failed delivery since the last flush */
};

static void on_delivery(const rn_delivery_t *report, void *ctx)
{
    rn_pub_t *p = ctx;
    if (report->err != RN_OK) {
        int expected = RN_OK;
        atomic_compare_exchange_strong(&p->first_error, &expected, (int)report->err);
    }
}

rn_err_t rn_pub_new(const rn_conf_t *conf, rn_pub_t **out, char *errbuf, size_t errlen)
{
    rn_pub_t *p = calloc(1, sizeof *p);
    rn_conf_t *c = rn_conf_dup(conf);
    rn_err_t err = p && c ? RN_OK : RN_ERR_NOMEM;
    /* Rows and dead letters are the job's output: every copy must reach every replica, and a
     * retry must not write one twice. */
    if (err == RN_OK)
        err = rn_conf_set(c, "acks", "all", errbuf, errlen);
    if (err == RN_OK)
        err = rn_conf_set(c, "enable.idempotence", "true", errbuf, errlen);
    if (err == RN_OK)
        err = rn_producer_new(c, on_delivery, p, &p->producer, errbuf, errlen);
    rn_conf_free(c);
    if (err != RN_OK) {
        free(p);
        return err;
    }
    atomic_init(&p->first_error, RN_OK);
    *out = p;
    return RN_OK;
}

void rn_pub_free(rn_pub_t *p)
{
    if (!p)
        return;
    rn_producer_close(p->producer, 30000);
    free(p);
}

static rn_err_t send(rn_pub_t *p, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const rn_header_t *headers,
                     size_t nheaders)
{
    rn_message_t m = {
        .topic = topic, .partition = RN_PARTITION_ANY, .key = key, .key_len = key_len,
        .value = value, .value_len = value_len, .headers = headers, .header_count = nheaders,
    };
    return rn_producer_send(p->producer, &m, -1);
}

static rn_err_t pub_publish(void *ctx, const char *topic, const void *key, size_t key_len,
                            const void *value, size_t value_len)
{
    return send(ctx, topic, key, key_len, value, value_len, NULL, 0);
}

rn_err_t rn_pub_flush(void *ctx)
{
    rn_pub_t *p = ctx;
    rn_err_t err = rn_producer_flush(p->producer, -1);
    int failed = atomic_exchange(&p->first_error, RN_OK);
    return err != RN_OK ? err : (rn_err_t)failed;
}

void rn_pub_set_source_topic(rn_pub_t *p, const char *topic)
{
    snprintf(p->source_topic, sizeof p->source_topic, "%s", topic);
}

rn_sink_io_t rn_pub_sink_io(rn_pub_t *p)
{
    return (rn_sink_io_t){.out = stdout, .publish = pub_publish, .flush = rn_pub_flush, .ctx = p};
}

rn_err_t rn_pub_dead_letter(void *ctx, const char *topic, int32_t partition, int64_t offset,
                            const void *value, size_t len, const char *reason)
{
    rn_pub_t *p = ctx;
    char key[300], part[16], off[24];
    snprintf(part, sizeof part, "%" PRId32, partition);
    snprintf(off, sizeof off, "%" PRId64, offset);
    int key_len = snprintf(key, sizeof key, "%s/%s/%s", p->source_topic, part, off);
    if (key_len < 0 || (size_t)key_len >= sizeof key)
        key_len = (int)sizeof key - 1;
#define RN_HDR(k, v) {k, sizeof k - 1, v, (int32_t)strlen(v)}
    rn_header_t h[4] = {
        RN_HDR("runnel.error", reason),
        RN_HDR("runnel.source.topic", p->source_topic),
        RN_HDR("runnel.source.partition", part),
        RN_HDR("runnel.source.offset", off),
    };
#undef RN_HDR
    rn_err_t err = send(p, topic, key, (size_t)key_len, value, len, h, 4);
    if (err != RN_OK) {
        /* Not queued (no such topic, too large, no metadata in time): the next flush reports
         * it, so the checkpoint fails and the record is replayed instead of lost. */
        int expected = RN_OK;
        atomic_compare_exchange_strong(&p->first_error, &expected, (int)err);
    }
    return err;
}
