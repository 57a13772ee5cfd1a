/*
 * config.h - the broker's settings: every key, its default, its meaning (one table in
 * config.c that --help and docs/broker.md follow), and the parsing of key=value pairs from a
 * config file, --set and the dedicated flags.
 *
 * Precedence, lowest first: built-in defaults, --config FILE, --set key=value (in order),
 * then --data-dir / --listen / --node-id / --metrics-listen / --controller-listen /
 * --controller-quorum, which always win.
 *
 * Keys use Kafka's names where Kafka has the same setting (log.segment.bytes,
 * log.retention.ms, message.max.bytes …); the log.* keys are the defaults of the per-topic
 * settings (segment.bytes, retention.ms …) that CreateTopics may override.
 */
#ifndef RN_BROKER_CONFIG_H
#define RN_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "log.h"

typedef struct rn_bcfg {
    char *data_dir;                  /* log.dirs (--data-dir) */
    char *listen;                    /* listeners (--listen), "HOST:PORT" */
    char *advertised;                /* advertised.listeners; NULL: derived from the bound address */
    int32_t node_id;                 /* node.id (--node-id) */
    uint32_t num_partitions;         /* num.partitions: CreateTopics with partitions = 0 */
    rn_log_config_t topic_defaults;  /* log.segment.bytes, log.retention.ms, … */
    int64_t retention_check_interval_ms;
    uint32_t max_frame_bytes;
    uint32_t max_connections;
    uint32_t max_inflight;           /* max.inflight.requests.per.connection */
    uint32_t busy_poll_us;           /* io.busy.poll.us */
    int64_t producer_id_expiration_ms;
    int64_t shutdown_timeout_ms;
    char *metrics_listen;            /* metrics.listen (--metrics-listen); NULL: no HTTP server */
    int64_t metrics_request_timeout_ms;
    /* Cluster mode (docs/cluster.md §2.1): both set, or neither (single node, as before). */
    char *controller_listen;         /* controller.listen (--controller-listen), "a.b.c.d:PORT" */
    char *controller_voters;         /* controller.quorum.voters (--controller-quorum) */
    char *observer_bootstrap;        /* observer.bootstrap.servers: a non-voter's image source */
    uint32_t controller_election_timeout_ms;
    uint32_t controller_heartbeat_ms;
    uint32_t metadata_snapshot_threshold;
    uint32_t broker_heartbeat_ms;    /* broker.heartbeat.interval.ms */
    uint32_t broker_session_timeout_ms; /* broker.session.timeout.ms */
    int64_t replica_lag_time_max_ms; /* replica.lag.time.max.ms */
    uint32_t replica_fetch_wait_max_ms; /* replica.fetch.wait.max.ms */
    uint32_t replica_fetch_max_bytes; /* replica.fetch.max.bytes */
    uint32_t replica_fetch_backoff_ms; /* replica.fetch.backoff.ms */
    int64_t replica_hw_checkpoint_ms; /* replica.high.watermark.checkpoint.interval.ms */
    uint32_t default_replication_factor; /* default.replication.factor */
    uint32_t auto_leader_rebalance;  /* auto.leader.rebalance.enable (0/1) */
    int64_t leader_imbalance_check_interval_s; /* leader.imbalance.check.interval.seconds */
} rn_bcfg_t;

/* Fills every key with its default; data_dir, listen and metrics_listen stay NULL. */
void rn_bcfg_init(rn_bcfg_t *cfg);
void rn_bcfg_free(rn_bcfg_t *cfg);
/* True when controller.quorum.voters is set: the broker runs a controller quorum member. */
bool rn_bcfg_cluster_mode(const rn_bcfg_t *cfg);

/*
 * Sets one key from its string value. RN_ERR_UNKNOWN_CONFIG or RN_ERR_BAD_CONFIG with a
 * message in errbuf that names the key, the value and what is accepted.
 */
rn_err_t rn_bcfg_set(rn_bcfg_t *cfg, const char *key, const char *value, char *errbuf,
                     size_t errlen);
/* Reads a file of key=value lines; errors say "FILE:LINE: problem". */
rn_err_t rn_bcfg_load_file(rn_bcfg_t *cfg, const char *path, char *errbuf, size_t errlen);
/* Checks the settings together (required keys, limits that depend on each other, the
 * controller quorum: both controller keys or neither, this node among the voters). */
rn_err_t rn_bcfg_check(const rn_bcfg_t *cfg, char *errbuf, size_t errlen);

/* Prints "  key (default D)\n      meaning" for every key, for --help. */
void rn_bcfg_print_keys(FILE *out);

/*
 * Splits "HOST:PORT" (or "[V6]:PORT") into host and port. RN_ERR_BAD_CONFIG when the port
 * is missing or not in 0..65535, or the host is empty or too long.
 */
rn_err_t rn_bcfg_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
