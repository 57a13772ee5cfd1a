/*
 * broker_io.h - the processor's way to the brokers, all through librunnel's public API
 * (DESIGN §1: the processor never includes a broker header).
 *
 *   rn_brksrc_*  a source (source.h) over rn_consumer_t (assign, poll, the high watermark
 *                of the latest fetch for the lag metric) and rn_admin_t (partition count,
 *                end offsets for --bounded).
 *   rn_pub_*     a publisher over one idempotent rn_producer_t (acks=all): the TOPIC sink's
 *                rn_sink_io_t and the dead-letter function of the runtime. flush() waits for
 *                every record sent so far and reports the first delivery that failed, so a
 *                checkpoint never claims rows or dead letters the broker did not take.
 *
 * Both copy the client config they are given; "-X key=value" settings of runnel-processor
 * land there (bootstrap.servers, fetch.max.bytes, linger.ms, …).
 * @locality: one thread (the job's); the producer's delivery reports run on its I/O thread
 * and only touch an atomic error slot.
 */
#ifndef RN_BROKER_IO_H
#define RN_BROKER_IO_H

#include "runnel/runnel.h"
#include "runtime.h"
#include "sink/sink.h"
#include "source.h"

typedef struct rn_brksrc rn_brksrc_t;

/* Connects nothing yet: the first call that needs a broker does. errbuf names what failed. */
rn_err_t rn_brksrc_new(const rn_conf_t *conf, rn_brksrc_t **out, char *errbuf, size_t errlen);
void rn_brksrc_free(rn_brksrc_t *s);
rn_source_t rn_brksrc_source(rn_brksrc_t *s);

typedef struct rn_pub rn_pub_t;

rn_err_t rn_pub_new(const rn_conf_t *conf, rn_pub_t **out, char *errbuf, size_t errlen);
/* Flushes (up to 30 s) and frees. */
void rn_pub_free(rn_pub_t *p);
/* publish/flush for the TOPIC sink. */
rn_sink_io_t rn_pub_sink_io(rn_pub_t *p);
/* The source topic that dead letters name. */
void rn_pub_set_source_topic(rn_pub_t *p, const char *topic);
/*
 * The runtime's dead-letter function: the record's value unchanged, its key "topic/partition/
 * offset" of the source record, and headers runnel.error (why), runnel.source.topic,
 * runnel.source.partition, runnel.source.offset. ctx is the rn_pub_t.
 */
rn_err_t rn_pub_dead_letter(void *ctx, const char *topic, int32_t partition, int64_t offset,
                            const void *value, size_t len, const char *reason);
rn_err_t rn_pub_flush(void *ctx);

#endif
