/* broker.c - wiring of one broker process: start-up, timers, signals, orderly shutdown. */
#include "broker.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "bmetrics.h"
#include "busypoll.h"
#include "clock.h"
#include "controller.h"
#include "ctlops.h"
#include "fetch.h"
#include "fsutil.h"
#include "httpd.h"
#include "image.h"
#include "logging.h"
#include "members.h"
#include "metadata.pb-c.h"
#include "net/server.h"
#include "partition.h"
#include "pids.h"
#include "repl.h"
#include "topics.h"

#define FLUSH_TICK_MAX_MS 1000
#define FLUSH_TICK_MIN_MS 10
#define SHUTDOWN_POLL_MS 10

typedef struct broker {
    uv_loop_t loop;
    const rn_bcfg_t *cfg;
    int lock_fd;
    char listening_path[PATH_MAX];
    char metrics_listening_path[PATH_MAX];
    rn_pids_t *pids;
    rn_topics_t *topics;
    rn_part_env_t env;
    uint32_t syncs_running;
    rn_srv_t *srv;
    rn_fetch_t *fetch;
    rn_api_ctx_t api;
    rn_ctl_t *ctl;             /* cluster mode: the controller quorum member */
    rn_img_t *img;             /* cluster mode: the metadata image, the log's state machine */
    rn_img_result_t img_result;
    rn_mem_t *mem;             /* cluster mode: registration, heartbeats, fencing */
    rn_repl_t *repl;           /* cluster mode: partition replication and the publisher */
    rn_cops_t *cops;           /* cluster mode: the active controller's admin decisions */
    uv_check_t publish_check;  /* cluster mode: image deltas to partitions after each turn */
    bool publish_started;
    bool cluster_id_known;     /* the image's cluster id was logged */
    bool cluster_record_pending;
    bool ctl_stopping, ctl_stopped;
    rn_bm_t *metrics;
    rn_httpd_t *httpd;         /* --metrics-listen; NULL when off */
    rn_http_std_t http;
    volatile int ready;        /* /readyz: logs loaded and the listener up, not stopping */
    const char *volatile not_ready_why;
    /* loading the topics in the thread pool, while the loop already serves /healthz */
    uv_work_t load;
    bool loading;
    rn_topics_t *loaded;
    rn_err_t load_err;
    char load_msg[1024];
    int64_t load_started_ns;
    uv_signal_t sigint, sigterm;
    uv_timer_t retention_timer, flush_timer, shutdown_timer;
    bool handles_started;
    bool stopping;
    bool draining;             /* finish_shutdown ran */
    bool conns_closed;
    int status;                /* the exit status once the loop returns */
    int64_t shutdown_deadline_ns;
} broker_t;

static void burst_begin(void *ctx)
{
    broker_t *b = ctx;
    if (b->srv)
        rn_srv_burst_begin(b->srv);
}

static void burst_end(void *ctx)
{
    broker_t *b = ctx;
    if (b->srv)
        rn_srv_burst_end(b->srv);
}

/* ------------------------------------------------------------------- timers ---- */

static uint64_t flush_tick_ms(const broker_t *b)
{
    int64_t min = rn_topics_min_flush_ms(b->topics);
    if (min > FLUSH_TICK_MAX_MS)
        return FLUSH_TICK_MAX_MS;
    return min < FLUSH_TICK_MIN_MS ? FLUSH_TICK_MIN_MS : (uint64_t)min;
}

static void on_flush_tick(uv_timer_t *t)
{
    broker_t *b = t->data;
    rn_topics_flush_tick(b->topics);
    rn_topics_reap(b->topics);
    uv_timer_set_repeat(t, flush_tick_ms(b));
}

static void on_retention(uv_timer_t *t)
{
    broker_t *b = t->data;
    rn_topics_maintain(b->topics, b->cfg->producer_id_expiration_ms);
    rn_topics_reap(b->topics);
}

/* ----------------------------------------------------------------- shutdown ---- */

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Everything in flight is done: close the remaining handles so uv_run returns. */
static void close_all_handles(broker_t *b)
{
    if (b->metrics)
        rn_bm_set_repl(b->metrics, NULL);
    rn_repl_stop(b->repl);
    rn_cops_stop(b->cops);
    if (b->publish_started)
        close_handle((uv_handle_t *)&b->publish_check);
    b->publish_started = false;
    rn_mem_stop(b->mem);
    rn_fetch_free(b->fetch);
    b->fetch = NULL;
    rn_httpd_stop(b->httpd);
    b->httpd = NULL;
    if (!b->handles_started)
        return;
    close_handle((uv_handle_t *)&b->retention_timer);
    close_handle((uv_handle_t *)&b->flush_timer);
    close_handle((uv_handle_t *)&b->shutdown_timer);
    close_handle((uv_handle_t *)&b->sigint);
    close_handle((uv_handle_t *)&b->sigterm);
}

static void on_shutdown_poll(uv_timer_t *t)
{
    broker_t *b = t->data;
    if (!b->conns_closed) {
        bool idle = rn_srv_connections(b->srv) == 0;
        if (!idle && rn_now_ns() < b->shutdown_deadline_ns)
            return;
        if (!idle)
            RN_WARN("broker", "shutdown.timeout.ms passed with %" PRIu32 " connection(s) still "
                    "busy; closing them", rn_srv_connections(b->srv));
        rn_srv_free(b->srv);
        b->srv = NULL;
        b->conns_closed = true;
    }
    /* A running fsync owns file descriptors of the logs: wait for it before closing them. */
    if (b->syncs_running > 0)
        return;
    /* The controller hands over leadership and closes raft (begin_shutdown started it). */
    if (b->ctl && !b->ctl_stopped)
        return;
    close_all_handles(b);
}

static void on_ctl_stopped(void *arg)
{
    broker_t *b = arg;
    b->ctl_stopped = true;
}

/* Starts the controller's stop (transfer, then raft_close); on_ctl_stopped reports the end. */
static void stop_controller(broker_t *b)
{
    if (!b->ctl || b->ctl_stopping)
        return;
    b->ctl_stopping = true;
    rn_ctl_stop(b->ctl, on_ctl_stopped, b);
}

/* The rest of the stop, once leadership moved away (or it did not need to). */
static void finish_shutdown(broker_t *b)
{
    if (b->draining)
        return;
    b->draining = true;
    uv_timer_stop(&b->shutdown_timer);
    rn_fetch_answer_all(b->fetch);
    rn_srv_drain(b->srv);
    rn_repl_stop(b->repl);
    rn_cops_stop(b->cops);
    rn_mem_stop(b->mem);
    stop_controller(b);
    uv_timer_stop(&b->retention_timer);
    b->shutdown_deadline_ns = rn_now_ns() + b->cfg->shutdown_timeout_ms * 1000000;
    uv_timer_start(&b->shutdown_timer, on_shutdown_poll, 0, SHUTDOWN_POLL_MS);
}

static void on_controlled(void *arg, bool fenced)
{
    broker_t *b = arg;
    if (fenced)
        RN_INFO("broker", "controlled shutdown: the controller moved this broker's partitions "
                "away");
    else
        RN_WARN("broker", "controlled shutdown: no answer from the controller in time; "
                "stopping anyway (its partitions move after broker.session.timeout.ms)");
    finish_shutdown(b);
}

static void on_controlled_timeout(uv_timer_t *t)
{
    on_controlled(t->data, false);
}

static void begin_shutdown(broker_t *b, int signum)
{
    if (b->stopping) {
        RN_WARN("broker", "second signal (%s): exiting now; the next start recovers the logs",
                strsignal(signum));
        _exit(1);
    }
    b->stopping = true;
    b->ready = 0;
    b->not_ready_why = "shutting down";
    if (b->loading) {
        RN_INFO("broker", "%s: stopping once the logs are loaded", strsignal(signum));
        return; /* on_loaded finishes the stop */
    }
    RN_INFO("broker", "%s: shutting down (no new connections or requests; finishing those in "
            "flight)", strsignal(signum));
    /* Cluster mode: controlled shutdown (KIP-631's want_shut_down) first, so the leaders here
     * move to other ISR members now rather than after the session timeout. Serving goes on
     * meanwhile. */
    if (b->mem && rn_mem_own_epoch(b->mem) != 0 && rn_ctl_controller_id(b->ctl) >= 0 &&
        rn_mem_request_shutdown(b->mem, on_controlled, b) == RN_OK) {
        uv_timer_start(&b->shutdown_timer, on_controlled_timeout,
                       (uint64_t)b->cfg->broker_session_timeout_ms * 2, 0);
        return;
    }
    finish_shutdown(b);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_shutdown(h->data, signum);
}

/* ------------------------------------------------------------------ start-up ---- */

/*
 * Start-up in three steps, so /healthz answers (and /readyz says "loading logs") while a
 * large data directory recovers:
 *   start (loop thread, before uv_run)  lock, producer ids, metrics server, signals, then
 *                                        queue the load
 *   load_topics (thread pool)           rn_topics_open: files only, no loop state
 *   on_loaded (loop thread)             listen, timers, DATA_DIR/listening, ready
 * A failure after start ends the loop with status 1; a signal during the load stops the
 * broker once the load has ended (the logs are then closed cleanly).
 */

static void advertised(broker_t *b, const char *bind_host)
{
    rn_api_ctx_t *api = &b->api;
    api->advertised_port = rn_srv_port(b->srv);
    const char *a = b->cfg->advertised;
    if (a && strchr(a, ':')) {
        uint16_t port = 0;
        rn_bcfg_split_hostport(a, api->advertised_host, sizeof api->advertised_host, &port);
        if (port)
            api->advertised_port = port;
    } else if (a) {
        snprintf(api->advertised_host, sizeof api->advertised_host, "%s", a);
    } else if (strcmp(bind_host, "0.0.0.0") == 0 || strcmp(bind_host, "::") == 0) {
        if (gethostname(api->advertised_host, sizeof api->advertised_host) != 0)
            snprintf(api->advertised_host, sizeof api->advertised_host, "localhost");
        api->advertised_host[sizeof api->advertised_host - 1] = '\0';
    } else {
        snprintf(api->advertised_host, sizeof api->advertised_host, "%s", bind_host);
    }
}

/* Writes "ADDRESS\n" to DATA_DIR/name atomically (scripts and tests wait for it). */
static void write_address(broker_t *b, char *path, size_t pathlen, const char *name,
                          const char *address)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s\n", address);
    snprintf(path, pathlen, "%s/%s", b->cfg->data_dir, name);
    if (rn_fs_write_atomic(path, line, (size_t)n, false) != RN_OK)
        RN_WARN("broker", "cannot write %s: %s", path, strerror(errno));
}

static int start_metrics(broker_t *b)
{
    char err[512] = "";
    b->http.metrics = rn_bm_registry(b->metrics);
    b->http.ready = &b->ready;
    b->http.not_ready_why = &b->not_ready_why;
    if (rn_httpd_start(&b->loop, b->cfg->metrics_listen, rn_http_std_handler, &b->http,
                       &b->httpd, err, sizeof err) != RN_OK) {
        RN_ERROR("broker", "%s", err);
        return -1;
    }
    rn_httpd_set_timeout(b->httpd, (int)b->cfg->metrics_request_timeout_ms);
    write_address(b, b->metrics_listening_path, sizeof b->metrics_listening_path,
                  "metrics-listening", rn_httpd_address(b->httpd));
    RN_INFO("broker", "metrics on http://%s/metrics (also /healthz, /readyz)",
            rn_httpd_address(b->httpd));
    return 0;
}

/* The listener, the fetch module and the timers, once the topics are there. */
static int serve(broker_t *b)
{
    const rn_bcfg_t *cfg = b->cfg;
    char err[1024] = "";
    char host[256];
    uint16_t port = 0;
    rn_bcfg_split_hostport(cfg->listen, host, sizeof host, &port);
    rn_srv_opts_t so = {host, port, cfg->max_frame_bytes, cfg->max_connections,
                        cfg->max_inflight, rn_bm_srv_hooks(b->metrics)};
    b->api.cfg = cfg;
    b->api.topics = b->topics;
    b->api.pids = b->pids;
    if (rn_srv_start(&b->loop, &so, rn_api_dispatch, &b->api, &b->srv, err, sizeof err) !=
        RN_OK) {
        RN_ERROR("broker", "%s", err);
        return -1;
    }
    b->api.srv = b->srv;
    if (!(b->fetch = b->api.fetch = rn_fetch_new(&b->loop, b->topics, b->srv))) {
        RN_ERROR("broker", "out of memory");
        return -1;
    }
    advertised(b, host);
    uint64_t rint = (uint64_t)cfg->retention_check_interval_ms;
    uv_timer_start(&b->retention_timer, on_retention, rint, rint);
    uv_timer_start(&b->flush_timer, on_flush_tick, flush_tick_ms(b), flush_tick_ms(b));
    /* Last: whoever waits for this file may connect at once. */
    write_address(b, b->listening_path, sizeof b->listening_path, "listening",
                  rn_srv_address(b->srv));
    b->ready = 1;
    b->not_ready_why = NULL;
    RN_INFO("broker", "node %" PRId32 " listening on %s (advertised as %s:%u)", cfg->node_id,
            rn_srv_address(b->srv), b->api.advertised_host, b->api.advertised_port);
    return 0;
}

/* Ends the loop with status 1 (nothing was served yet); a started controller closes first. */
static void fail_running(broker_t *b)
{
    b->status = 1;
    b->stopping = true;
    b->ready = 0;
    if (b->srv) {
        rn_srv_free(b->srv);
        b->srv = NULL;
    }
    b->conns_closed = true;
    if (b->ctl) {
        stop_controller(b);
        uv_timer_start(&b->shutdown_timer, on_shutdown_poll, 0, SHUTDOWN_POLL_MS);
        return;
    }
    close_all_handles(b);
}

/* ------------------------------------------------------ the controller quorum ---- */

/* Logs the cluster id once this broker's image has one (from the log or a snapshot). */
static void note_cluster_id(broker_t *b, const char *from)
{
    if (b->cluster_id_known || !rn_img_cluster_id(b->img)[0])
        return;
    b->cluster_id_known = true;
    RN_INFO("controller", "cluster id %s (%s)", rn_img_cluster_id(b->img), from);
}

/*
 * The state machine behind the metadata log is the metadata image (broker/cluster/image.h).
 * libraft calls the leader's raft_apply callback right after fsm->apply of the same entry, on
 * the same stack (test_cluster_controller checks it), so one result slot per broker is
 * enough for the proposer to read.
 */
static rn_err_t img_apply(void *ctx, const void *data, size_t len, uint64_t index,
                          void **result)
{
    broker_t *b = ctx;
    rn_err_t e = rn_img_apply(b->img, data, len, index, &b->img_result);
    if (e == RN_ERR_MALFORMED) {
        /* Every voter sees the same bytes and skips them alike: a no-op, not a divergence. */
        RN_ERROR("controller", "metadata log entry %" PRIu64 " is not a MetadataRecord "
                 "(%zu bytes): skipped", index, len);
        b->img_result.outcome = RN_IMG_REJECTED;
        b->img_result.reason = RN_ERR_INVALID_REQUEST;
        e = RN_OK;
    }
    *result = &b->img_result;
    if (!b->cluster_id_known) {
        char from[64];
        snprintf(from, sizeof from, "metadata log index %" PRIu64, index);
        note_cluster_id(b, from);
    }
    return e;
}

static rn_err_t img_snapshot(void *ctx, rn_buf_t *out)
{
    broker_t *b = ctx;
    uint8_t *bytes = NULL;
    size_t len = 0;
    rn_err_t e = rn_img_snapshot(b->img, NULL, &bytes, &len);
    if (e == RN_OK)
        e = rn_buf_append(out, bytes, len);
    free(bytes);
    return e;
}

static rn_err_t img_restore(void *ctx, const void *data, size_t len)
{
    broker_t *b = ctx;
    char err[256] = "";
    rn_err_t e = rn_img_restore(b->img, data, len, err, sizeof err);
    if (e != RN_OK)
        RN_ERROR("controller", "cannot restore the metadata image: %s", err);
    else
        note_cluster_id(b, "restored from a snapshot");
    return e;
}

/* 16 random bytes in unpadded base64url (22 characters), as Kafka's cluster ids look. */
static int random_cluster_id(char out[23])
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[18] = {0};
    if (getrandom(raw, 16, 0) != 16)
        return -1;
    for (int i = 0, o = 0; i < 18; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 3; k >= 0 && o < 22; k--)
            out[o++] = abc[(v >> (6 * k)) & 63];
    }
    out[22] = '\0';
    return 0;
}

static void on_cluster_record(void *arg, rn_err_t status, uint64_t index, void *result)
{
    broker_t *b = arg;
    const rn_img_result_t *r = result;
    b->cluster_record_pending = false;
    if (status != RN_OK)
        RN_WARN("controller", "ClusterRecord not committed: %s (the next active controller "
                "writes one)", rn_err_name(status));
    else if (r && r->outcome == RN_IMG_REJECTED)
        RN_INFO("controller", "ClusterRecord at index %" PRIu64 " was a no-op: %s", index,
                r->message);
}

/*
 * The first active controller of a cluster writes its ClusterRecord (docs/cluster.md §4.1).
 * Two controllers in quick succession may both propose one; the image keeps the first.
 */
static void on_ctl_active(void *ctx, bool active)
{
    broker_t *b = ctx;
    if (b->mem)
        rn_mem_set_active(b->mem, active);
    rn_cops_set_active(b->cops, active);
    if (!active || rn_img_cluster_id(b->img)[0] || b->cluster_record_pending)
        return;
    char id[23];
    if (random_cluster_id(id) != 0) {
        RN_ERROR("controller", "getrandom failed: %s", strerror(errno));
        return;
    }
    Runnel__Meta__ClusterRecord cr = RUNNEL__META__CLUSTER_RECORD__INIT;
    Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
    cr.cluster_id = id;
    rec.version = RN_IMG_RECORD_VERSION;
    rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_CLUSTER;
    rec.cluster = &cr;
    uint8_t bytes[64];
    size_t len = runnel__meta__metadata_record__get_packed_size(&rec);
    if (len > sizeof bytes)
        return;
    runnel__meta__metadata_record__pack(&rec, bytes);
    rn_err_t e = rn_ctl_propose(b->ctl, bytes, len, on_cluster_record, b);
    if (e != RN_OK) {
        RN_WARN("controller", "cannot propose the ClusterRecord: %s", rn_err_name(e));
        return;
    }
    b->cluster_record_pending = true;
}

/* An observer's fallback servers: every registered broker but this one, from the image. */
static bool image_brokers(void *ctx, char hosts[][256], int *ports, size_t cap, size_t *n)
{
    broker_t *b = ctx;
    *n = 0;
    for (size_t i = 0; b->img && i < rn_img_broker_count(b->img) && *n < cap; i++) {
        const rn_img_broker_t *x = rn_img_broker_at(b->img, i);
        if (x->id == b->cfg->node_id || x->fenced)
            continue;
        snprintf(hosts[*n], 256, "%s", x->host);
        ports[(*n)++] = (int)x->port;
    }
    return *n > 0;
}

/* Cluster mode only: after the topics load, before the client listener (docs/cluster.md §3.1). */
static int start_controller(broker_t *b)
{
    const rn_bcfg_t *cfg = b->cfg;
    char err[1024] = "";
    if (rn_img_new(&b->img) != RN_OK) {
        RN_ERROR("broker", "out of memory");
        return -1;
    }
    rn_ctl_opts_t o = {
        .node_id = (uint32_t)cfg->node_id,
        .listen = cfg->controller_listen,
        .voters = cfg->controller_voters,
        .data_dir = cfg->data_dir,
        .election_timeout_ms = cfg->controller_election_timeout_ms,
        .heartbeat_ms = cfg->controller_heartbeat_ms,
        .snapshot_threshold = cfg->metadata_snapshot_threshold,
        .fsm = {b, img_apply, img_snapshot, img_restore},
        .events = {b, NULL, on_ctl_active},
        .observer_bootstrap = cfg->observer_bootstrap,
        .observer_poll_ms = cfg->broker_heartbeat_ms,
        .max_frame = cfg->max_frame_bytes,
        .observer_brokers = image_brokers,
        .observer_brokers_ctx = b,
    };
    if (rn_ctl_start(&b->loop, &o, &b->ctl, err, sizeof err) != RN_OK) {
        RN_ERROR("broker", "cannot start the controller quorum member: %s", err);
        return -1;
    }
    b->api.ctl = b->ctl;
    b->api.img = b->img;
    return 0;
}

/* After each loop turn: what the metadata log changed reaches the partitions. */
static void on_publish(uv_check_t *h)
{
    broker_t *b = h->data;
    rn_repl_publish(b->repl);
}

/* Cluster mode, once the listener is up (the registration carries its address). */
static int start_members(broker_t *b)
{
    const rn_bcfg_t *cfg = b->cfg;
    rn_mem_opts_t o = {
        .loop = &b->loop,
        .ctl = b->ctl,
        .img = b->img,
        .node_id = cfg->node_id,
        .host = b->api.advertised_host,
        .port = b->api.advertised_port,
        .controller_address = cfg->controller_listen,
        .heartbeat_ms = cfg->broker_heartbeat_ms,
        .session_timeout_ms = cfg->broker_session_timeout_ms,
        .max_frame = cfg->max_frame_bytes,
    };
    if (!(b->mem = b->api.mem = rn_mem_start(&o))) {
        RN_ERROR("broker", "out of memory");
        return -1;
    }
    rn_repl_opts_t ro = {
        .loop = &b->loop,
        .topics = b->topics,
        .img = b->img,
        .mem = b->mem,
        .node_id = cfg->node_id,
        .max_frame = cfg->max_frame_bytes,
        .lag_time_max_ms = cfg->replica_lag_time_max_ms,
        .fetch_wait_max_ms = cfg->replica_fetch_wait_max_ms,
        .fetch_max_bytes = cfg->replica_fetch_max_bytes,
        .fetch_backoff_ms = cfg->replica_fetch_backoff_ms,
        .num_partitions = cfg->num_partitions,
        .data_dir = cfg->data_dir,
        .hw_checkpoint_ms = cfg->replica_hw_checkpoint_ms,
    };
    rn_cops_opts_t co = {
        .loop = &b->loop,
        .ctl = b->ctl,
        .img = b->img,
        .mem = b->mem,
        .topics = b->topics,
        .node_id = cfg->node_id,
        .num_partitions = cfg->num_partitions,
        .default_rf = cfg->default_replication_factor,
        .auto_rebalance = cfg->auto_leader_rebalance != 0,
        .unclean_default = cfg->topic_defaults.unclean_leader_election != 0,
        .rebalance_interval_ms = cfg->leader_imbalance_check_interval_s * 1000,
    };
    if (!(b->repl = b->api.repl = rn_repl_new(&ro)) ||
        !(b->cops = b->api.cops = rn_cops_new(&co))) {
        RN_ERROR("broker", "out of memory");
        return -1;
    }
    rn_repl_set_fetch(b->repl, b->fetch);
    rn_bm_set_repl(b->metrics, b->repl);
    uv_check_init(&b->loop, &b->publish_check);
    b->publish_check.data = b;
    uv_check_start(&b->publish_check, on_publish);
    b->publish_started = true;
    rn_repl_publish(b->repl);
    if (rn_ctl_is_active(b->ctl)) {
        rn_mem_set_active(b->mem, true);
        rn_cops_set_active(b->cops, true);
    }
    return 0;
}

static void load_topics(uv_work_t *w)
{
    broker_t *b = w->data;
    b->load_err = rn_topics_open(&b->env, b->cfg->data_dir, &b->cfg->topic_defaults,
                                 &b->loaded, b->load_msg, sizeof b->load_msg);
}

static void on_loaded(uv_work_t *w, int status)
{
    broker_t *b = w->data;
    b->loading = false;
    if (status < 0 || b->load_err != RN_OK) {
        RN_ERROR("broker", "cannot load topics: %s",
                 status < 0 ? uv_strerror(status) : b->load_msg);
        fail_running(b);
        return;
    }
    b->topics = b->loaded;
    rn_bm_follow(b->metrics, b->topics);
    RN_INFO("broker", "loaded %zu topic(s) in %" PRId64 " ms", rn_topics_count(b->topics),
            (rn_now_ns() - b->load_started_ns) / 1000000);
    if (b->stopping) {
        close_all_handles(b); /* a signal came during the load */
        return;
    }
    bool cluster = rn_bcfg_cluster_mode(b->cfg);
    if ((cluster && start_controller(b) != 0) || serve(b) != 0 ||
        (cluster && start_members(b) != 0))
        fail_running(b);
}

static int start(broker_t *b)
{
    const rn_bcfg_t *cfg = b->cfg;
    char err[1024] = "";
    if (rn_fs_mkdirs(cfg->data_dir) != RN_OK) {
        RN_ERROR("broker", "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    rn_err_t e = rn_fs_lock_dir(cfg->data_dir, &b->lock_fd);
    if (e != RN_OK) {
        RN_ERROR("broker", "cannot lock data directory %s: %s", cfg->data_dir,
                 e == RN_ERR_EXISTS ? "another broker uses it; stop it or pick another "
                                      "--data-dir" : strerror(errno));
        return -1;
    }
    if (rn_pids_open(cfg->data_dir, &b->pids, err, sizeof err) != RN_OK) {
        RN_ERROR("broker", "%s", err);
        return -1;
    }
    if (!(b->metrics = rn_bm_new(cfg))) {
        RN_ERROR("broker", "out of memory");
        return -1;
    }
    b->not_ready_why = "loading logs";
    if (cfg->metrics_listen && start_metrics(b) != 0)
        return -1;
    b->env.loop = &b->loop;
    b->env.burst_begin = burst_begin;
    b->env.burst_end = burst_end;
    b->env.ctx = b;
    b->env.syncs_running = &b->syncs_running;
    b->env.fsync_seconds = rn_bm_fsync_seconds(b->metrics);
    uv_signal_init(&b->loop, &b->sigint);
    uv_signal_init(&b->loop, &b->sigterm);
    b->sigint.data = b->sigterm.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    uv_timer_init(&b->loop, &b->retention_timer);
    uv_timer_init(&b->loop, &b->flush_timer);
    uv_timer_init(&b->loop, &b->shutdown_timer);
    b->retention_timer.data = b->flush_timer.data = b->shutdown_timer.data = b;
    b->handles_started = true;
    b->load.data = b;
    b->load_started_ns = rn_now_ns();
    b->loading = true;
    if (uv_queue_work(&b->loop, &b->load, load_topics, on_loaded) != 0) {
        b->loading = false;
        RN_ERROR("broker", "cannot start loading the topics");
        return -1;
    }
    return 0;
}

/* Frees what start() built when it failed (the load never began). */
static void abandon_start(broker_t *b)
{
    close_all_handles(b);
    uv_run(&b->loop, UV_RUN_DEFAULT); /* let the close callbacks run */
}

/* io.busy.poll.us: when request bytes last arrived (rn_busypoll_run). */
static int64_t last_request_ns(void *ctx)
{
    const broker_t *b = ctx;
    return b->srv ? rn_srv_last_io_ns(b->srv) : 0;
}

int rn_broker_run(const rn_bcfg_t *cfg)
{
    broker_t *b = calloc(1, sizeof *b);
    if (!b) {
        RN_ERROR("broker", "out of memory");
        return 1;
    }
    b->cfg = cfg;
    b->lock_fd = -1;
    if (uv_loop_init(&b->loop) != 0) {
        RN_ERROR("broker", "cannot create the event loop");
        free(b);
        return 1;
    }
    RN_INFO("broker", "runnel-broker %s starting: node %" PRId32 ", data dir %s", RUNNEL_VERSION,
            cfg->node_id, cfg->data_dir);
    if (start(b) != 0) {
        abandon_start(b);
        b->status = 1;
    } else {
        rn_busypoll_run(&b->loop, (int64_t)cfg->busy_poll_us * 1000, last_request_ns, b);
    }
    if (b->topics) {
        rn_bm_follow(b->metrics, NULL);
        int64_t t0 = rn_now_ns();
        if (rn_topics_close(b->topics) != RN_OK) {
            RN_ERROR("broker", "some partitions did not close cleanly; the next start "
                     "recovers them");
            b->status = 1;
        }
        RN_INFO("broker", "partitions closed in %" PRId64 " ms", (rn_now_ns() - t0) / 1000000);
        b->topics = NULL;
    }
    if (b->listening_path[0])
        unlink(b->listening_path);
    if (b->metrics_listening_path[0])
        unlink(b->metrics_listening_path);
    uv_run(&b->loop, UV_RUN_NOWAIT);
    rn_repl_free(b->repl);
    rn_cops_free(b->cops);
    rn_mem_free(b->mem);
    rn_ctl_free(b->ctl);
    if (b->img)
        rn_img_free(b->img);
    if (uv_loop_close(&b->loop) != 0)
        RN_WARN("broker", "event loop closed with handles still open");
    rn_bm_free(b->metrics);
    rn_pids_free(b->pids);
    if (b->lock_fd >= 0)
        close(b->lock_fd);
    int status = b->status;
    free(b);
    if (status == 0)
        RN_INFO("broker", "stopped cleanly");
    return status;
}
