/*
 * topics.h - the broker's topics: names, partition counts, per-topic config overrides, the
 * partitions themselves, and their persistence in the data directory:
 *
 *   DATA_DIR/topics.meta        "runnel-topics 1" then one line per topic:
 *                               NAME PARTITIONS [key=value]…   (only the overrides)
 *                               replaced atomically (tmp + fsync + rename + dir fsync)
 *   DATA_DIR/NAME-P/            partition P's log (broker/log/log.h) and producer snapshots
 *
 * A topic's effective config is the broker defaults (log.* keys) with its overrides on top,
 * resolved at load, so changing a broker default reaches every topic that did not override it.
 *
 * Create: validate, open the partition logs (removing a leftover directory of the same name
 * from an earlier, interrupted delete), then rewrite topics.meta; a crash before the rewrite
 * leaves directories no topic owns, which the next create of that name removes.
 * Delete: rewrite topics.meta without the topic (so a crash cannot resurrect it), stop serving
 * it, and remove its directories once no fsync of theirs runs (at once, normally).
 *
 * Loop thread only.
 */
#ifndef RN_BROKER_TOPICS_H
#define RN_BROKER_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "partition.h"

typedef struct rn_topics rn_topics_t;
typedef struct rn_topic rn_topic_t;

/* Loads topics.meta and opens every partition (recovering them). */
rn_err_t rn_topics_open(const rn_part_env_t *env, const char *data_dir,
                        const rn_log_config_t *defaults, rn_topics_t **out, char *errbuf,
                        size_t errlen);
/* Clean close of every partition (flush, snapshot, marker); requires no running sync. */
rn_err_t rn_topics_close(rn_topics_t *t);

/* NULL when there is no such topic (or it is being deleted). */
rn_topic_t *rn_topics_find(rn_topics_t *t, const char *name);
size_t rn_topics_count(const rn_topics_t *t);
/* The i-th topic in name order. */
rn_topic_t *rn_topics_at(rn_topics_t *t, size_t i);

const char *rn_topic_name(const rn_topic_t *topic);
uint32_t rn_topic_partition_count(const rn_topic_t *topic);
/* NULL when i is out of range. */
rn_part_t *rn_topic_partition(rn_topic_t *topic, uint32_t i);
const rn_log_config_t *rn_topic_config(const rn_topic_t *topic);

typedef struct rn_topic_spec {
    const char *name;
    uint32_t partitions;        /* 0: num.partitions */
    uint32_t replication_factor; /* 0 or 1 */
    size_t nconfigs;
    const char *const *keys;
    const char *const *values;
} rn_topic_spec_t;

/*
 * Checks a spec as CreateTopics would (name, partitions, replication factor, configs, not
 * already there) without creating anything. Wire errors: INVALID_TOPIC, INVALID_PARTITIONS,
 * INVALID_REPLICATION_FACTOR, INVALID_CONFIG, TOPIC_ALREADY_EXISTS; errbuf says why.
 */
rn_err_t rn_topics_validate(rn_topics_t *t, const rn_topic_spec_t *spec, uint32_t num_partitions,
                            char *errbuf, size_t errlen);
/* Validates and creates; STORAGE_ERROR when a log or topics.meta cannot be written. */
rn_err_t rn_topics_create(rn_topics_t *t, const rn_topic_spec_t *spec, uint32_t num_partitions,
                          char *errbuf, size_t errlen);
/* UNKNOWN_TOPIC_OR_PARTITION or STORAGE_ERROR (topics.meta not rewritten: nothing changed). */
rn_err_t rn_topics_delete(rn_topics_t *t, const char *name, char *errbuf, size_t errlen);

/* Removes the directories of deleted topics whose syncs have ended. */
void rn_topics_reap(rn_topics_t *t);
/* True while deleted topics wait for their syncs. */
bool rn_topics_reaping(const rn_topics_t *t);

/* Starts the syncs flush.ms asks for. */
void rn_topics_flush_tick(rn_topics_t *t);
/* Smallest flush.ms of any topic (INT64_MAX when none sets one). */
int64_t rn_topics_min_flush_ms(const rn_topics_t *t);
/* Rolls by segment.ms, applies retention, expires idle producers, on every partition. */
void rn_topics_maintain(rn_topics_t *t, int64_t producer_idle_ms);

/*
 * Someone following topics as they come and go (the metrics, broker/bmetrics.c). Each topic
 * carries one opaque pointer for it (rn_topic_stats). All callbacks may be NULL.
 */
typedef struct rn_topics_observer {
    void *ctx;
    /* A topic is served: returns the pointer rn_topic_stats gives back (may be NULL). */
    void *(*added)(void *ctx, rn_topic_t *topic);
    /* It stops being served (deleted, or the table closes): the last use of stats. */
    void (*removed)(void *ctx, void *stats);
    /* Retention deleted segments of one of its partitions. */
    void (*retention)(void *ctx, void *stats, uint32_t segments, uint64_t bytes);
} rn_topics_observer_t;

/* Calls added for every topic there is now, then for each topic created. obs is copied. */
void rn_topics_observe(rn_topics_t *t, const rn_topics_observer_t *obs);
void *rn_topic_stats(const rn_topic_t *topic);

/* Kafka's rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool rn_topic_name_valid(const char *name, char *errbuf, size_t errlen);

#endif
