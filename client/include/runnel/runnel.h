/*
 * runnel.h - librunnel, the C client of Runnel: producer, consumer and admin.
 *
 * Every handle runs its own I/O thread (a libuv loop), so applications call the library from
 * their own threads. Errors are values: every call that can fail returns an rn_err_t
 * (see err.h; rn_err_str() says it for humans); the library never exits the process.
 *
 * Configuration uses the names Kafka users know ("bootstrap.servers", "acks", "linger.ms",
 * …); an unknown key or a bad value is an error that names it.
 *
 * Build with:  cc app.c $(pkg-config --cflags --libs runnel)
 */
#ifndef RUNNEL_H
#define RUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0" */
const char *rn_version(void);

/* ------------------------------------------------------------------ config ---- */

/*
 * A configuration: string keys and values. Keys (defaults in brackets):
 *   bootstrap.servers  host:port[,host:port…]                    [127.0.0.1:9092]
 *   client.id          shown in broker logs                       [runnel]
 *   acks               0 | 1 | all | -1                           [all]
 *   linger.ms          wait this long to fill a batch             [5]
 *   batch.size         bytes per partition batch                  [65536]
 *   compression.type   none | zstd                                [none]
 *   enable.idempotence true | false                               [true]
 *   max.in.flight      produce requests in flight per broker      [5]
 *   retries            retries of a retriable error               [2147483647]
 *   retry.backoff.ms   wait between retries                       [100]
 *   request.timeout.ms a request without answer fails after this  [30000]
 *   delivery.timeout.ms a record not acknowledged by then fails   [120000]
 *   buffer.memory      bytes of records the producer may hold     [33554432]
 *   fetch.min.bytes    broker waits for this much data            [1]
 *   fetch.max.bytes    most bytes per fetch response              [52428800]
 *   max.partition.fetch.bytes  most bytes per partition per fetch [1048576]
 *   fetch.max.wait.ms  longest a fetch waits for fetch.min.bytes  [500]
 *   auto.offset.reset  earliest | latest | error                  [latest]
 *   queued.max.messages.kbytes  consumer prefetch bound, KiB      [65536]
 *   io.busy.poll.us    after its last socket activity the I/O    [0]
 *                      thread polls this long (sched_yield between
 *                      polls) before it sleeps: less latency, more CPU
 */
typedef struct rn_conf rn_conf_t;

rn_conf_t *rn_conf_new(void);
rn_conf_t *rn_conf_dup(const rn_conf_t *conf);
void rn_conf_free(rn_conf_t *conf);
/*
 * Sets key to value. RN_ERR_UNKNOWN_CONFIG or RN_ERR_BAD_CONFIG with a message naming the key
 * and what it accepts in errbuf (may be NULL).
 */
rn_err_t rn_conf_set(rn_conf_t *conf, const char *key, const char *value, char *errbuf,
                     size_t errlen);
/* Parses "key=value" (as given to -X); same errors as rn_conf_set. */
rn_err_t rn_conf_set_pair(rn_conf_t *conf, const char *pair, char *errbuf, size_t errlen);
/* The value of key (the default when unset); NULL for an unknown key. Valid until the next set. */
const char *rn_conf_get(const rn_conf_t *conf, const char *key);

/* --------------------------------------------------------------- producer ---- */

#define RN_PARTITION_ANY (-1)

typedef struct rn_header {
    const char *key;
    size_t key_len;
    const void *value;   /* NULL with value_len -1: a null value */
    int32_t value_len;
} rn_header_t;

typedef struct rn_message {
    const char *topic;
    int32_t partition;            /* RN_PARTITION_ANY: by XXH3 of the key, sticky for null keys */
    const void *key;              /* NULL: null key */
    size_t key_len;
    const void *value;            /* NULL: null value (a tombstone) */
    size_t value_len;
    const rn_header_t *headers;
    size_t header_count;
    int64_t timestamp;            /* ms since the epoch; 0: now */
    void *opaque;                 /* handed back in the delivery report */
} rn_message_t;

typedef struct rn_delivery {
    rn_err_t err;                 /* RN_OK when acknowledged at the configured acks */
    const char *topic;
    int32_t partition;
    int64_t offset;               /* -1 when unknown (acks=0 or error) */
    int64_t timestamp;
    void *opaque;
} rn_delivery_t;

/*
 * Delivery reports run on the library's I/O thread, one per record, in send order per
 * partition. They must not block, and must not call flush or close.
 */
typedef void (*rn_delivery_cb)(const rn_delivery_t *report, void *ctx);

typedef struct rn_producer rn_producer_t;

/* The producer copies conf; cb may be NULL. */
rn_err_t rn_producer_new(const rn_conf_t *conf, rn_delivery_cb cb, void *cb_ctx,
                         rn_producer_t **out, char *errbuf, size_t errlen);
/*
 * Queues one record (copied; the caller's buffers may be reused at once). Thread-safe.
 * When buffer.memory is full: block_ms 0 returns RN_ERR_QUEUE_FULL at once, > 0 waits that
 * long, -1 waits for room. RN_ERR_UNKNOWN_TOPIC_OR_PARTITION when the topic does not exist
 * (after a metadata refresh), RN_ERR_MESSAGE_TOO_LARGE over batch.size limits.
 */
rn_err_t rn_producer_send(rn_producer_t *p, const rn_message_t *msg, int block_ms);
/*
 * Waits until every queued record has its delivery report; RN_ERR_TIMED_OUT. timeout -1:
 * forever. With io.busy.poll.us it looks for that long (sched_yield between looks) before it
 * sleeps: send + flush is then a synchronous send without a wake-up on the way back.
 */
rn_err_t rn_producer_flush(rn_producer_t *p, int timeout_ms);
/* Flushes (up to timeout_ms), then stops the I/O thread and frees. Records still queued fail. */
rn_err_t rn_producer_close(rn_producer_t *p, int timeout_ms);

/* --------------------------------------------------------------- consumer ---- */

#define RN_OFFSET_BEGINNING (-2)
#define RN_OFFSET_END (-1)

typedef struct rn_record_view {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    const void *key;              /* NULL with key_len -1: null key */
    int32_t key_len;
    const void *value;            /* NULL with value_len -1: null value */
    int32_t value_len;
    const rn_header_t *headers;
    size_t header_count;
} rn_record_view_t;

typedef struct rn_consumer rn_consumer_t;

rn_err_t rn_consumer_new(const rn_conf_t *conf, rn_consumer_t **out, char *errbuf, size_t errlen);
/* Starts consuming topic/partition from offset (>= 0, RN_OFFSET_BEGINNING or RN_OFFSET_END). */
rn_err_t rn_consumer_assign(rn_consumer_t *c, const char *topic, int32_t partition, int64_t offset);
rn_err_t rn_consumer_unassign(rn_consumer_t *c, const char *topic, int32_t partition);
/* Moves an assigned partition; prefetched records of it are dropped. */
rn_err_t rn_consumer_seek(rn_consumer_t *c, const char *topic, int32_t partition, int64_t offset);
/* Seeks to the first record with timestamp >= ts_ms (the end when none). */
rn_err_t rn_consumer_seek_timestamp(rn_consumer_t *c, const char *topic, int32_t partition,
                                    int64_t ts_ms, int timeout_ms);
/*
 * Waits up to timeout_ms (-1 forever, 0 not at all) for records of assigned partitions and
 * returns up to max_records of them (*recs points into the consumer; valid until the next
 * poll or close). RN_OK with *count 0 on timeout. Records are in offset order per partition,
 * checksums verified; a corrupt batch is an error (RN_ERR_CHECKSUM) naming nothing else lost.
 * Call from one thread at a time. With io.busy.poll.us it looks again for that long
 * (sched_yield between looks) before it sleeps.
 */
rn_err_t rn_consumer_poll(rn_consumer_t *c, int timeout_ms, size_t max_records,
                          const rn_record_view_t **recs, size_t *count);
/* The next offset poll will return for the partition. */
rn_err_t rn_consumer_position(rn_consumer_t *c, const char *topic, int32_t partition,
                              int64_t *offset);
/*
 * True when every record below the partition's high watermark, as of the latest fetch
 * response, has been returned by poll (kcat's -e).
 */
bool rn_consumer_at_end(rn_consumer_t *c, const char *topic, int32_t partition);
/*
 * The partition's high watermark as of the latest fetch response (the end offset a consumer
 * lag is measured against: lag = high watermark - position). Never waits: RN_ERR_NOT_FOUND
 * when the partition is not assigned, RN_ERR_AGAIN before any fetch has answered for it.
 */
rn_err_t rn_consumer_high_watermark(rn_consumer_t *c, const char *topic, int32_t partition,
                                    int64_t *hw);
void rn_consumer_close(rn_consumer_t *c);

/* ------------------------------------------------------------------ admin ---- */

typedef struct rn_partition_info {
    int32_t partition;
    rn_err_t err;
    int32_t leader;               /* broker id, -1 when none */
    uint32_t leader_epoch;
    const int32_t *replicas;
    size_t replica_count;
    const int32_t *isr;
    size_t isr_count;
    int64_t log_start_offset;
    int64_t log_end_offset;
    int64_t high_watermark;
    const int32_t *offline_replicas;  /* replicas on fenced or unregistered brokers */
    size_t offline_count;
} rn_partition_info_t;

typedef struct rn_topic_info {
    const char *name;
    rn_err_t err;
    const rn_partition_info_t *partitions;
    size_t partition_count;
    const char *const *config_keys;
    const char *const *config_values;
    size_t config_count;
} rn_topic_info_t;

typedef struct rn_broker_info {
    int32_t id;
    const char *host;
    int port;
} rn_broker_info_t;

typedef struct rn_metadata {
    const rn_broker_info_t *brokers;
    size_t broker_count;
    int32_t controller_id;
    const rn_topic_info_t *topics;
    size_t topic_count;
} rn_metadata_t;

typedef struct rn_admin rn_admin_t;

rn_err_t rn_admin_new(const rn_conf_t *conf, rn_admin_t **out, char *errbuf, size_t errlen);
/*
 * Creating and deleting topics and electing leaders go to the active controller (metadata's
 * controller_id; on a single broker that broker). On NOT_CONTROLLER or a failed connection the
 * call refreshes metadata, waits retry.backoff.ms and asks again, until timeout_ms.
 *

 * Creates a topic; configs is NULL or a NULL-terminated array of "key=value" topic settings
 * (retention.ms, segment.bytes, flush.messages, …). The broker's message lands in errbuf.
 */
rn_err_t rn_admin_create_topic(rn_admin_t *a, const char *name, int partitions,
                               int replication_factor, const char *const *configs,
                               int timeout_ms, char *errbuf, size_t errlen);
rn_err_t rn_admin_delete_topic(rn_admin_t *a, const char *name, int timeout_ms, char *errbuf,
                               size_t errlen);
/* Brokers and topics (all when topic is NULL); free with rn_metadata_free. */
rn_err_t rn_admin_describe(rn_admin_t *a, const char *topic, int timeout_ms, rn_metadata_t **out);
void rn_metadata_free(rn_metadata_t *md);

typedef struct rn_election_result {
    const char *topic;
    int32_t partition;
    /* RN_OK: leadership moved; RN_ERR_ELECTION_NOT_NEEDED: it already was where asked;
     * RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is not in the ISR or is
     * fenced; or another error for this partition. */
    rn_err_t err;
    int32_t leader;               /* the leader afterwards, -1 when none */
} rn_election_result_t;

typedef struct rn_election_results {
    const rn_election_result_t *results;  /* sorted by topic, then partition */
    size_t count;
} rn_election_results_t;

/*
 * ElectLeaders on the active controller. preferred: move each partition's leadership to its
 * preferred replica (the first of its replica list) where that one is in the ISR. topics is
 * NULL or a NULL-terminated list of topic names (NULL or empty: every topic). RN_OK when the
 * controller answered, with one result per partition in *out (free with
 * rn_election_results_free); otherwise the request's error, the controller's message in errbuf
 * and *out NULL.
 */
rn_err_t rn_admin_elect_leaders(rn_admin_t *a, bool preferred, const char *const *topics,
                                int timeout_ms, rn_election_results_t **out, char *errbuf,
                                size_t errlen);
void rn_election_results_free(rn_election_results_t *r);
/*
 * ListOffsets: ts RN_OFFSET_BEGINNING / RN_OFFSET_END for the earliest / latest offset, or a
 * timestamp in ms for the first offset at or after it (the latest offset when none).
 */
rn_err_t rn_admin_list_offsets(rn_admin_t *a, const char *topic, int32_t partition, int64_t ts,
                               int64_t *offset, int timeout_ms);
void rn_admin_close(rn_admin_t *a);

#ifdef __cplusplus
}
#endif

#endif
