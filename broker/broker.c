/* broker.c - wiring of one broker process: start-up, timers, signals, orderly shutdown. */
#include "broker.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "clock.h"
#include "fetch.h"
#include "fsutil.h"
#include "logging.h"
#include "net/server.h"
#include "partition.h"
#include "pids.h"
#include "topics.h"

#define FLUSH_TICK_MAX_MS 1000
#define FLUSH_TICK_MIN_MS 10
#define SHUTDOWN_POLL_MS 10

typedef struct broker {
    uv_loop_t loop;
    const rn_bcfg_t *cfg;
    int lock_fd;
    char listening_path[PATH_MAX];
    rn_pids_t *pids;
    rn_topics_t *topics;
    rn_part_env_t env;
    uint32_t syncs_running;
    rn_srv_t *srv;
    rn_fetch_t *fetch;
    rn_api_ctx_t api;
    uv_signal_t sigint, sigterm;
    uv_timer_t retention_timer, flush_timer, shutdown_timer;
    bool handles_started;
    bool stopping;
    bool conns_closed;
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
    rn_fetch_free(b->fetch);
    b->fetch = NULL;
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
    close_all_handles(b);
}

static void begin_shutdown(broker_t *b, int signum)
{
    if (b->stopping) {
        RN_WARN("broker", "second signal (%s): exiting now; the next start recovers the logs",
                strsignal(signum));
        _exit(1);
    }
    b->stopping = true;
    RN_INFO("broker", "%s: shutting down (no new connections or requests; finishing those in "
            "flight)", strsignal(signum));
    rn_fetch_answer_all(b->fetch);
    rn_srv_drain(b->srv);
    uv_timer_stop(&b->retention_timer);
    b->shutdown_deadline_ns = rn_now_ns() + b->cfg->shutdown_timeout_ms * 1000000;
    uv_timer_start(&b->shutdown_timer, on_shutdown_poll, 0, SHUTDOWN_POLL_MS);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_shutdown(h->data, signum);
}

/* ------------------------------------------------------------------ start-up ---- */

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
    b->env.loop = &b->loop;
    b->env.burst_begin = burst_begin;
    b->env.burst_end = burst_end;
    b->env.ctx = b;
    b->env.syncs_running = &b->syncs_running;
    int64_t t0 = rn_now_ns();
    if (rn_topics_open(&b->env, cfg->data_dir, &cfg->topic_defaults, &b->topics, err,
                       sizeof err) != RN_OK) {
        RN_ERROR("broker", "cannot load topics: %s", err);
        return -1;
    }
    RN_INFO("broker", "loaded %zu topic(s) in %" PRId64 " ms", rn_topics_count(b->topics),
            (rn_now_ns() - t0) / 1000000);
    char host[256];
    uint16_t port = 0;
    rn_bcfg_split_hostport(cfg->listen, host, sizeof host, &port);
    rn_srv_opts_t so = {host, port, cfg->max_frame_bytes, cfg->max_connections,
                        cfg->max_inflight};
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
    uv_signal_init(&b->loop, &b->sigint);
    uv_signal_init(&b->loop, &b->sigterm);
    b->sigint.data = b->sigterm.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    uv_timer_init(&b->loop, &b->retention_timer);
    uv_timer_init(&b->loop, &b->flush_timer);
    uv_timer_init(&b->loop, &b->shutdown_timer);
    b->retention_timer.data = b->flush_timer.data = b->shutdown_timer.data = b;
    uint64_t rint = (uint64_t)cfg->retention_check_interval_ms;
    uv_timer_start(&b->retention_timer, on_retention, rint, rint);
    uv_timer_start(&b->flush_timer, on_flush_tick, flush_tick_ms(b), flush_tick_ms(b));
    b->handles_started = true;
    /* Last: whoever waits for this file may connect at once. */
    char line[128];
    int n = snprintf(line, sizeof line, "%s\n", rn_srv_address(b->srv));
    snprintf(b->listening_path, sizeof b->listening_path, "%s/listening", cfg->data_dir);
    if (rn_fs_write_atomic(b->listening_path, line, (size_t)n, false) != RN_OK)
        RN_WARN("broker", "cannot write %s: %s", b->listening_path, strerror(errno));
    RN_INFO("broker", "node %" PRId32 " listening on %s (advertised as %s:%u)", cfg->node_id,
            rn_srv_address(b->srv), b->api.advertised_host, b->api.advertised_port);
    return 0;
}

/* Frees what start() built when it failed part-way (no handle of the loop is running). */
static void abandon_start(broker_t *b)
{
    if (b->fetch)
        rn_fetch_free(b->fetch);
    if (b->srv)
        rn_srv_free(b->srv);
    uv_run(&b->loop, UV_RUN_NOWAIT); /* let the close callbacks run */
    if (b->topics)
        rn_topics_close(b->topics);
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
    int status = 0;
    if (uv_loop_init(&b->loop) != 0) {
        RN_ERROR("broker", "cannot create the event loop");
        free(b);
        return 1;
    }
    RN_INFO("broker", "runnel-broker %s starting: node %" PRId32 ", data dir %s", RUNNEL_VERSION,
            cfg->node_id, cfg->data_dir);
    if (start(b) != 0) {
        abandon_start(b);
        status = 1;
    } else {
        uv_run(&b->loop, UV_RUN_DEFAULT);
        int64_t t0 = rn_now_ns();
        if (rn_topics_close(b->topics) != RN_OK) {
            RN_ERROR("broker", "some partitions did not close cleanly; the next start "
                     "recovers them");
            status = 1;
        }
        RN_INFO("broker", "partitions closed in %" PRId64 " ms", (rn_now_ns() - t0) / 1000000);
        unlink(b->listening_path);
    }
    b->topics = NULL;
    uv_run(&b->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&b->loop) != 0)
        RN_WARN("broker", "event loop closed with handles still open");
    rn_pids_free(b->pids);
    if (b->lock_fd >= 0)
        close(b->lock_fd);
    free(b);
    if (status == 0)
        RN_INFO("broker", "stopped cleanly");
    return status;
}
