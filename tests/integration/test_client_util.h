/*
 * test_client_util.h - what the librunnel integration tests share: a broker per test, a
 * deterministic record shape, and a checker that reads a topic back and proves every
 * acknowledged record is there exactly once, in order, with its content.
 */
#ifndef RN_TEST_CLIENT_UTIL_H
#define RN_TEST_CLIENT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "runnel/runnel.h"

#define TC_VALUE_SIZE 100
#define TC_MAX_PARTS 16

/* Starts a broker in a fresh data dir (abort()s on failure). */
void tc_broker_start(rn_hbroker_t *b, const char *name, const char *const *settings);
void tc_broker_finish(rn_hbroker_t *b);
/* A configuration for the broker plus "key=value" pairs (NULL-terminated, may be NULL). */
rn_conf_t *tc_conf(const rn_hbroker_t *b, const char *const *pairs);
void tc_create_topic(const rn_hbroker_t *b, const char *topic, int partitions,
                     const char *const *configs);

/* Record i: key "key-%08d", value TC_VALUE_SIZE bytes derived from i; every 997th has a header. */
size_t tc_key(uint64_t i, char *buf);
void tc_value(uint64_t i, uint8_t *buf);
bool tc_has_header(uint64_t i);
/* Sends record i of that shape to topic/partition (or RN_PARTITION_ANY), blocking while the
 * producer's buffer is full; the delivery report's opaque is i. */
rn_err_t tc_send(rn_producer_t *p, const char *topic, int32_t partition, uint64_t i);
/* XXH3(key) % partitions: the partitioner's contract. */
int32_t tc_partition_of(uint64_t i, int32_t partitions);

/* What the producer side knows about record i. */
typedef struct tc_sent {
    int32_t partition;      /* -1 until reported */
    int64_t offset;
    rn_err_t err;
    bool reported;
} tc_sent_t;

typedef struct tc_check {
    uint64_t records;       /* distinct records read */
    uint64_t duplicates;
    uint64_t acked_missing; /* acknowledged but not read back */
    uint64_t bad;           /* wrong content, partition, offset or order */
    uint64_t per_part[TC_MAX_PARTS];
    uint64_t hash[TC_MAX_PARTS]; /* XXH3 over the values read, in order */
} tc_check_t;

/*
 * Reads every partition of topic from the beginning to its end and checks each record
 * against sent[0..n): content, key, partition, the offset the delivery report gave (when it
 * was OK), strictly increasing record numbers per partition, no record twice.
 */
void tc_read_back(const rn_hbroker_t *b, const char *topic, int32_t partitions,
                  const tc_sent_t *sent, uint64_t n, tc_check_t *out);

#endif
