/* config.c - the broker's key table, defaults and parsing. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "kvfile.h"
#include "observer.h"

enum kind {
    K_STR,   /* char * member */
    K_STR_OPT, /* char * member; an empty value unsets it (NULL) */
    K_I32,
    K_U32,
    K_I64,
    K_BOOL,  /* uint32_t member: "true" 1, "false" 0 */
    K_TOPIC, /* default of a per-topic setting: parsed by rn_log_config_set */
};

struct key {
    const char *name;
    enum kind kind;
    size_t offset;         /* member of rn_bcfg_t (not for K_TOPIC) */
    const char *topic_key; /* K_TOPIC: the per-topic name */
    int64_t min, max;
    const char *def;       /* default as documented */
    const char *doc;
};

#define M(member) offsetof(rn_bcfg_t, member)
#define DAY_MS "604800000"

/* The one list of broker settings; docs/broker.md copies it. */
static const struct key keys[] = {
    {"node.id", K_I32, M(node_id), NULL, 0, INT32_MAX, "1",
     "id of this broker in Metadata (leader, replicas, isr); also --node-id"},
    {"log.dirs", K_STR, M(data_dir), NULL, 0, 0, "(required)",
     "data directory: topics, partition logs, producer ids; also --data-dir"},
    {"listeners", K_STR, M(listen), NULL, 0, 0, "(required)",
     "HOST:PORT to listen on; port 0 picks a free port; also --listen"},
    {"advertised.listeners", K_STR, M(advertised), NULL, 0, 0, "(bound address)",
     "HOST[:PORT] clients are told to connect to (Metadata); the bound host (the machine's "
     "hostname when bound to a wildcard address) and port when unset"},
    {"num.partitions", K_U32, M(num_partitions), NULL, 1, 100000, "1",
     "partitions of a topic created with partitions = 0"},
    {"log.segment.bytes", K_TOPIC, 0, "segment.bytes", 0, 0, "1073741824",
     "default segment.bytes: roll the active segment past this size"},
    {"log.roll.ms", K_TOPIC, 0, "segment.ms", 0, 0, DAY_MS,
     "default segment.ms: roll the active segment when it is this old (7 days)"},
    {"log.segment.ms", K_TOPIC, 0, "segment.ms", 0, 0, DAY_MS, "alias of log.roll.ms"},
    {"log.retention.ms", K_TOPIC, 0, "retention.ms", 0, 0, DAY_MS,
     "default retention.ms: delete closed segments whose newest record is older; -1 keeps "
     "forever"},
    {"log.retention.bytes", K_TOPIC, 0, "retention.bytes", 0, 0, "-1",
     "default retention.bytes: delete the oldest closed segments while a partition is "
     "larger; -1 for no limit"},
    {"log.flush.interval.messages", K_TOPIC, 0, "flush.messages", 0, 0, "9223372036854775807",
     "default flush.messages: fsync after this many records; 1 acknowledges a produce only "
     "once it is on disk"},
    {"log.flush.interval.ms", K_TOPIC, 0, "flush.ms", 0, 0, "9223372036854775807",
     "default flush.ms: longest time appended data stays without fsync"},
    {"log.index.size.max.bytes", K_TOPIC, 0, "segment.index.bytes", 0, 0, "10485760",
     "default segment.index.bytes: room preallocated for each index file"},
    {"log.index.interval.bytes", K_TOPIC, 0, "index.interval.bytes", 0, 0, "4096",
     "default index.interval.bytes: bytes between offset-index entries"},
    {"message.max.bytes", K_TOPIC, 0, "max.message.bytes", 0, 0, "1048588",
     "default max.message.bytes: largest record batch a produce may carry"},
    {"min.insync.replicas", K_TOPIC, 0, "min.insync.replicas", 0, 0, "1",
     "default min.insync.replicas (cluster mode): an acks=all produce is refused with "
     "NOT_ENOUGH_REPLICAS while the partition's ISR has fewer members"},
    {"unclean.leader.election.enable", K_TOPIC, 0, "unclean.leader.election.enable", 0, 0,
     "false",
     "default unclean.leader.election.enable (cluster mode): when no ISR member is left, elect "
     "another replica anyway (records only the ISR had are lost); the active controller writes "
     "it into each topic it creates"},
    {"log.retention.check.interval.ms", K_I64, M(retention_check_interval_ms), NULL, 10,
     INT64_MAX, "300000",
     "how often retention (and segment.ms rolling) runs over every partition"},
    {"max.frame.bytes", K_U32, M(max_frame_bytes), NULL, 1024, UINT32_MAX - 8, "104857600",
     "largest request frame; a longer length prefix gets FRAME_TOO_LARGE and a close"},
    {"max.connections", K_U32, M(max_connections), NULL, 1, 1000000, "10000",
     "connections served at once; one more is accepted, sent TOO_MANY_CONNECTIONS, closed"},
    {"max.inflight.requests.per.connection", K_U32, M(max_inflight), NULL, 1, 100000, "100",
     "requests read from one connection and not yet answered; beyond it the broker stops "
     "reading that socket until responses drain (backpressure)"},
    {"io.busy.poll.us", K_U32, M(busy_poll_us), NULL, 0, 1000000, "0",
     "for this many µs after request bytes arrive, the loop polls its sockets (sched_yield "
     "between polls) instead of sleeping in epoll: less latency per request, more CPU; 0: "
     "always sleep"},
    {"producer.id.expiration.ms", K_I64, M(producer_id_expiration_ms), NULL, 1000, INT64_MAX,
     "86400000",
     "idempotent producer state of a partition is dropped after this long without a batch"},
    {"shutdown.timeout.ms", K_I64, M(shutdown_timeout_ms), NULL, 0, INT64_MAX, "10000",
     "on SIGTERM, how long to wait for in-flight requests before closing connections"},
    {"metrics.listen", K_STR_OPT, M(metrics_listen), NULL, 0, 0, "(off)",
     "HOST:PORT of the HTTP server for /metrics (Prometheus), /healthz and /readyz; port 0 "
     "picks a free port, written to DIR/metrics-listening; empty: off; also --metrics-listen"},
    {"metrics.request.timeout.ms", K_I64, M(metrics_request_timeout_ms), NULL, 10, 3600000,
     "10000",
     "an HTTP request to the metrics server not complete in this long gets 408 and a close; "
     "also how long an idle keep-alive connection stays open"},
    {"controller.listen", K_STR_OPT, M(controller_listen), NULL, 0, 0, "(off)",
     "a.b.c.d:PORT of this broker's controller-quorum (raft) listener; an IPv4 literal and a "
     "fixed port (peers dial the addresses in controller.quorum.voters); needs "
     "controller.quorum.voters; also --controller-listen"},
    {"controller.quorum.voters", K_STR_OPT, M(controller_voters), NULL, 0, 0, "(off)",
     "ID@a.b.c.d:PORT,... of every controller voter, this node (node.id) among them; set: the "
     "broker joins that quorum (cluster mode); unset: a single node as before; also "
     "--controller-quorum"},
    {"observer.bootstrap.servers", K_STR_OPT, M(observer_bootstrap), NULL, 0, 0, "(off)",
     "HOST:PORT,... client listeners of brokers of the cluster; with it, a broker whose node.id "
     "is not in controller.quorum.voters runs as an observer: it serves data and takes the "
     "metadata from those brokers instead of voting (controller.listen is then not needed)"},
    {"controller.quorum.election.timeout.ms", K_U32, M(controller_election_timeout_ms), NULL,
     10, 600000, "500",
     "a follower that hears no controller for this long (randomised up to twice as long) "
     "starts an election"},
    {"controller.quorum.heartbeat.interval.ms", K_U32, M(controller_heartbeat_ms), NULL, 1,
     600000, "100",
     "the active controller's heartbeat to the other voters; also libraft's tick; must be "
     "below the election timeout"},
    {"broker.heartbeat.interval.ms", K_U32, M(broker_heartbeat_ms), NULL, 10, 600000, "250",
     "cluster mode: how often this broker sends a heartbeat to the active controller (it "
     "registers first); must be below broker.session.timeout.ms"},
    {"broker.session.timeout.ms", K_U32, M(broker_session_timeout_ms), NULL, 20, 3600000,
     "1500",
     "cluster mode: the active controller fences a broker whose last heartbeat is this old "
     "(Kafka's 9000 is tuned for WANs; see docs/cluster.md §8)"},
    {"replica.lag.time.max.ms", K_I64, M(replica_lag_time_max_ms), NULL, 10, INT64_MAX, "30000",
     "cluster mode: a follower whose fetches have not reached the leader's log end for this "
     "long leaves the ISR"},
    {"replica.fetch.wait.max.ms", K_U32, M(replica_fetch_wait_max_ms), NULL, 0, 600000, "500",
     "cluster mode: how long a follower's fetch waits at the leader for new records"},
    {"replica.fetch.max.bytes", K_U32, M(replica_fetch_max_bytes), NULL, 1024, 1u << 30,
     "1048576",
     "cluster mode: bytes a follower asks for per partition in one fetch (a larger first batch "
     "still comes whole)"},
    {"replica.fetch.backoff.ms", K_U32, M(replica_fetch_backoff_ms), NULL, 1, 600000, "100",
     "cluster mode: a follower's pause after a fetch error"},
    {"replica.high.watermark.checkpoint.interval.ms", K_I64, M(replica_hw_checkpoint_ms), NULL,
     10, 86400000, "5000",
     "cluster mode: how often the high watermarks go to DATA_DIR/replication-offset-checkpoint "
     "(also at a clean stop), so a restart does not start them at 0"},
    {"default.replication.factor", K_U32, M(default_replication_factor), NULL, 1, 16, "1",
     "cluster mode: replicas of each partition when CreateTopics asks for replication factor 0"},
    {"auto.leader.rebalance.enable", K_BOOL, M(auto_leader_rebalance), NULL, 0, 1, "true",
     "cluster mode: the active controller moves leadership back to each partition's preferred "
     "replica (the first) when it is in the ISR, every leader.imbalance.check.interval.seconds"},
    {"leader.imbalance.check.interval.seconds", K_I64, M(leader_imbalance_check_interval_s),
     NULL, 1, 86400, "300",
     "cluster mode: how often the automatic preferred-leader rebalance runs"},
    {"metadata.log.snapshot.threshold", K_U32, M(metadata_snapshot_threshold), NULL, 2,
     UINT32_MAX, "1024",
     "snapshot the metadata image after this many new log entries (the 128 newest entries "
     "are kept after a snapshot)"},
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

void rn_bcfg_init(rn_bcfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->node_id = 1;
    cfg->num_partitions = 1;
    rn_log_config_default(&cfg->topic_defaults);
    cfg->retention_check_interval_ms = 300000;
    cfg->max_frame_bytes = 100u << 20;
    cfg->max_connections = 10000;
    cfg->max_inflight = 100;
    cfg->producer_id_expiration_ms = 86400000;
    cfg->shutdown_timeout_ms = 10000;
    cfg->metrics_request_timeout_ms = 10000;
    cfg->controller_election_timeout_ms = 500;
    cfg->controller_heartbeat_ms = 100;
    cfg->metadata_snapshot_threshold = 1024;
    cfg->broker_heartbeat_ms = 250;
    cfg->broker_session_timeout_ms = 1500;
    cfg->replica_lag_time_max_ms = 30000;
    cfg->replica_fetch_wait_max_ms = 500;
    cfg->replica_fetch_max_bytes = 1u << 20;
    cfg->replica_fetch_backoff_ms = 100;
    cfg->replica_hw_checkpoint_ms = 5000;
    cfg->default_replication_factor = 1;
    cfg->auto_leader_rebalance = 1;
    cfg->leader_imbalance_check_interval_s = 300;
}

bool rn_bcfg_cluster_mode(const rn_bcfg_t *cfg)
{
    return cfg->controller_voters != NULL;
}

void rn_bcfg_free(rn_bcfg_t *cfg)
{
    free(cfg->data_dir);
    free(cfg->listen);
    free(cfg->advertised);
    free(cfg->metrics_listen);
    free(cfg->controller_listen);
    free(cfg->controller_voters);
    free(cfg->observer_bootstrap);
    cfg->data_dir = cfg->listen = cfg->advertised = cfg->metrics_listen = NULL;
    cfg->controller_listen = cfg->controller_voters = NULL;
}

static rn_err_t parse_int(const struct key *k, const char *value, int64_t *out, char *errbuf,
                          size_t errlen)
{
    errno = 0;
    char *end;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < k->min || v > k->max) {
        snprintf(errbuf, errlen,
                 "bad value '%s' for %s: expected an integer in [%" PRId64 ", %" PRId64 "]",
                 value, k->name, k->min, k->max);
        return RN_ERR_BAD_CONFIG;
    }
    *out = v;
    return RN_OK;
}

rn_err_t rn_bcfg_set(rn_bcfg_t *cfg, const char *name, const char *value, char *errbuf,
                     size_t errlen)
{
    const struct key *k = find_key(name);
    if (!k) {
        snprintf(errbuf, errlen,
                 "unknown config key '%s' (runnel-broker --help lists the keys)", name);
        return RN_ERR_UNKNOWN_CONFIG;
    }
    char *member = (char *)cfg + k->offset;
    int64_t v = 0;
    rn_err_t err;
    switch (k->kind) {
    case K_STR_OPT:
        if (!*value) {
            char **slot = (char **)(void *)member;
            free(*slot);
            *slot = NULL;
            return RN_OK;
        }
        /* fall through */
    case K_STR: {
        if (!*value) {
            snprintf(errbuf, errlen, "empty value for %s", name);
            return RN_ERR_BAD_CONFIG;
        }
        char *copy = strdup(value);
        if (!copy)
            return RN_ERR_NOMEM;
        char **slot = (char **)(void *)member;
        free(*slot);
        *slot = copy;
        return RN_OK;
    }
    case K_TOPIC: {
        char inner[256];
        err = rn_log_config_set(&cfg->topic_defaults, k->topic_key, value, inner, sizeof inner);
        if (err != RN_OK) {
            /* inner names the topic key; say which broker key the user wrote. */
            snprintf(errbuf, errlen, "%s: %s", name, inner);
            return RN_ERR_BAD_CONFIG;
        }
        return RN_OK;
    }
    case K_I32:
        if ((err = parse_int(k, value, &v, errbuf, errlen)) != RN_OK)
            return err;
        *(int32_t *)(void *)member = (int32_t)v;
        return RN_OK;
    case K_U32:
        if ((err = parse_int(k, value, &v, errbuf, errlen)) != RN_OK)
            return err;
        *(uint32_t *)(void *)member = (uint32_t)v;
        return RN_OK;
    case K_I64:
        if ((err = parse_int(k, value, &v, errbuf, errlen)) != RN_OK)
            return err;
        *(int64_t *)(void *)member = v;
        return RN_OK;
    case K_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            snprintf(errbuf, errlen, "bad value '%s' for %s: expected true or false", value, name);
            return RN_ERR_BAD_CONFIG;
        }
        *(uint32_t *)(void *)member = value[0] == 't';
        return RN_OK;
    }
    return RN_ERR_INVALID_ARG;
}

static rn_err_t file_line(void *ctx, const char *key, const char *value, int line, char *errbuf,
                          size_t errlen)
{
    (void)line;
    return rn_bcfg_set(ctx, key, value, errbuf, errlen);
}

rn_err_t rn_bcfg_load_file(rn_bcfg_t *cfg, const char *path, char *errbuf, size_t errlen)
{
    return rn_kvfile_read(path, file_line, cfg, errbuf, errlen);
}

rn_err_t rn_bcfg_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return RN_ERR_BAD_CONFIG;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return RN_ERR_BAD_CONFIG;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return RN_ERR_BAD_CONFIG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    errno = 0;
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end != '\0' || v < 0 || v > 65535)
        return RN_ERR_BAD_CONFIG;
    *port = (uint16_t)v;
    return RN_OK;
}

/* The controller quorum settings (docs/cluster.md §2.1); all of them only in cluster mode. */
static rn_err_t check_controller(const rn_bcfg_t *cfg, char *errbuf, size_t errlen)
{
    if (!cfg->controller_listen && !cfg->controller_voters)
        return RN_OK;
    bool voter = false;
    if (cfg->controller_voters) {
        rn_ctl_voter_t vs[RN_CTL_MAX_VOTERS];
        size_t nv = 0;
        rn_err_t ve = rn_ctl_parse_voters(cfg->controller_voters, vs, RN_CTL_MAX_VOTERS, &nv,
                                          errbuf, errlen);
        if (ve != RN_OK)
            return ve;
        for (size_t i = 0; i < nv; i++)
            voter |= cfg->node_id > 0 && vs[i].id == (uint32_t)cfg->node_id;
    }
    if (cfg->controller_voters && !voter) {
        /* An observer: no raft listener of its own, the image from other brokers. */
        if (!cfg->observer_bootstrap) {
            snprintf(errbuf, errlen,
                     "node.id %" PRId32 " is not in controller.quorum.voters '%s': list this "
                     "node as ID@a.b.c.d:PORT to make it a voter, or set "
                     "observer.bootstrap.servers=HOST:PORT,... (client listeners of brokers of "
                     "the cluster) to run it as an observer", cfg->node_id,
                     cfg->controller_voters);
            return RN_ERR_BAD_CONFIG;
        }
        char hosts[16][256];
        int ports[16];
        size_t nb;
        return rn_obs_parse_servers(cfg->observer_bootstrap, hosts, ports, 16, &nb, errbuf,
                                    errlen);
    }
    if (!cfg->controller_voters || !cfg->controller_listen) {
        snprintf(errbuf, errlen,
                 "%s is set but %s is not: cluster mode needs both (--controller-listen "
                 "a.b.c.d:PORT and --controller-quorum ID@a.b.c.d:PORT,...), a single node "
                 "neither",
                 cfg->controller_voters ? "controller.quorum.voters" : "controller.listen",
                 cfg->controller_voters ? "controller.listen" : "controller.quorum.voters");
        return RN_ERR_BAD_CONFIG;
    }
    if (rn_ctl_check_address(cfg->controller_listen) != RN_OK) {
        snprintf(errbuf, errlen,
                 "bad controller.listen '%s': expected a.b.c.d:PORT, an IPv4 literal with PORT "
                 "in 1..65535 (no port 0: the other voters dial this address), e.g. "
                 "127.0.0.1:9093", cfg->controller_listen);
        return RN_ERR_BAD_CONFIG;
    }
    rn_ctl_voter_t voters[RN_CTL_MAX_VOTERS];
    size_t n = 0;
    rn_err_t e = rn_ctl_parse_voters(cfg->controller_voters, voters, RN_CTL_MAX_VOTERS, &n,
                                     errbuf, errlen);
    if (e != RN_OK)
        return e;
    const char *self = NULL;
    for (size_t i = 0; i < n; i++)
        if (cfg->node_id > 0 && voters[i].id == (uint32_t)cfg->node_id)
            self = voters[i].address;
    if (!self) {
        snprintf(errbuf, errlen, "node.id %" PRId32 " is not in controller.quorum.voters '%s'",
                 cfg->node_id, cfg->controller_voters);
        return RN_ERR_BAD_CONFIG;
    }
    char lhost[64], vhost[64];
    uint16_t lport = 0, vport = 0;
    rn_bcfg_split_hostport(cfg->controller_listen, lhost, sizeof lhost, &lport);
    rn_bcfg_split_hostport(self, vhost, sizeof vhost, &vport);
    if (lport != vport) {
        snprintf(errbuf, errlen,
                 "controller.listen '%s' and this node's entry in controller.quorum.voters "
                 "('%s') have different ports: the other voters dial the voters entry, so the "
                 "listener must use its port", cfg->controller_listen, self);
        return RN_ERR_BAD_CONFIG;
    }
    if (cfg->controller_heartbeat_ms >= cfg->controller_election_timeout_ms) {
        snprintf(errbuf, errlen,
                 "controller.quorum.heartbeat.interval.ms (%" PRIu32 ") must be below "
                 "controller.quorum.election.timeout.ms (%" PRIu32 ")",
                 cfg->controller_heartbeat_ms, cfg->controller_election_timeout_ms);
        return RN_ERR_BAD_CONFIG;
    }
    if (cfg->broker_heartbeat_ms >= cfg->broker_session_timeout_ms) {
        snprintf(errbuf, errlen,
                 "broker.heartbeat.interval.ms (%" PRIu32 ") must be below "
                 "broker.session.timeout.ms (%" PRIu32 ")",
                 cfg->broker_heartbeat_ms, cfg->broker_session_timeout_ms);
        return RN_ERR_BAD_CONFIG;
    }
    return RN_OK;
}

rn_err_t rn_bcfg_check(const rn_bcfg_t *cfg, char *errbuf, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (!cfg->data_dir) {
        snprintf(errbuf, errlen, "no data directory: pass --data-dir DIR (or set log.dirs)");
        return RN_ERR_BAD_CONFIG;
    }
    if (!cfg->listen) {
        snprintf(errbuf, errlen,
                 "no listen address: pass --listen HOST:PORT (or set listeners), e.g. "
                 "--listen 127.0.0.1:9092");
        return RN_ERR_BAD_CONFIG;
    }
    if (rn_bcfg_split_hostport(cfg->listen, host, sizeof host, &port) != RN_OK) {
        snprintf(errbuf, errlen,
                 "bad listen address '%s': expected HOST:PORT with PORT in 0..65535, e.g. "
                 "127.0.0.1:9092", cfg->listen);
        return RN_ERR_BAD_CONFIG;
    }
    if (cfg->advertised && strchr(cfg->advertised, ':') &&
        rn_bcfg_split_hostport(cfg->advertised, host, sizeof host, &port) != RN_OK) {
        snprintf(errbuf, errlen,
                 "bad advertised.listeners '%s': expected HOST or HOST:PORT", cfg->advertised);
        return RN_ERR_BAD_CONFIG;
    }
    if (cfg->metrics_listen &&
        rn_bcfg_split_hostport(cfg->metrics_listen, host, sizeof host, &port) != RN_OK) {
        snprintf(errbuf, errlen,
                 "bad metrics.listen '%s': expected HOST:PORT with PORT in 0..65535, e.g. "
                 "127.0.0.1:9100 (empty turns the metrics server off)", cfg->metrics_listen);
        return RN_ERR_BAD_CONFIG;
    }
    rn_err_t e = check_controller(cfg, errbuf, errlen);
    if (e != RN_OK)
        return e;
    /* A produce must fit in a frame with room for the request around its batch. */
    if ((uint64_t)cfg->topic_defaults.max_message_bytes + 4096 > cfg->max_frame_bytes) {
        snprintf(errbuf, errlen,
                 "message.max.bytes (%" PRIu32 ") must be at least 4096 below max.frame.bytes "
                 "(%" PRIu32 "): raise max.frame.bytes or lower message.max.bytes",
                 cfg->topic_defaults.max_message_bytes, cfg->max_frame_bytes);
        return RN_ERR_BAD_CONFIG;
    }
    return RN_OK;
}

void rn_bcfg_print_keys(FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "  %s (default %s)\n      %s\n", keys[i].name, keys[i].def, keys[i].doc);
}
