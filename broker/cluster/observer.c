/*
 * observer.c - the controller-quorum member of a broker that is not a voter (an observer,
 * KIP-595's term): it keeps the metadata image by pulling it, instead of replicating the raft
 * log. Every poll interval it asks one broker of observer.bootstrap.servers (round robin after
 * a failure) for FetchMetadataImage(have_index); a newer image is handed to the state machine's
 * restore (the image computes the delta, so the publisher sees what changed), and the answer's
 * controller id is what rn_ctl_controller_id reports. It never votes and never proposes.
 *
 * Costs and limits: the whole image travels when anything changed (about 100 bytes per
 * partition), at most once per poll interval; a leader change reaches an observer up to one
 * interval later than a voter.
 */
#include "observer.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/conn.h"
#include "buf.h"
#include "clock.h"
#include "fsutil.h"
#include "logging.h"

#define MAX_BOOTSTRAP 16

struct rn_obs {
    uv_loop_t *loop;
    rn_ctl_fsm_t fsm;
    int32_t node_id;
    uint32_t max_frame;
    uint32_t poll_ms;
    char hosts[MAX_BOOTSTRAP][256];
    int ports[MAX_BOOTSTRAP];
    size_t n, cur;
    size_t boot_n;                 /* the first boot_n entries are observer.bootstrap.servers */
    size_t failures;               /* asks failed in a row */
    bool (*brokers)(void *ctx, char hosts[][256], int *ports, size_t cap, size_t *n);
    void *brokers_ctx;
    char index_path[PATH_MAX];
    rn_conn_t *conn;
    bool in_flight;
    bool rotate;                   /* the last ask failed: try the next server */
    bool stopping;
    uv_timer_t timer;
    uint64_t index;
    uint64_t floor;                /* the index the last run had: nothing older is taken */
    int32_t controller_id;
    bool logged_first;
    void (*done)(void *arg);
    void *done_arg;
};

/* After a whole round of failures the registered brokers of the image join the list, so an
 * observer whose bootstrap brokers died still finds the cluster. */
static void next_server(rn_obs_t *o)
{
    if (o->conn) {
        rn_conn_free(o->conn);
        o->conn = NULL;
    }
    o->failures++;
    if (o->failures >= o->n && o->brokers) {
        size_t extra = 0;
        if (o->brokers(o->brokers_ctx, o->hosts + o->boot_n, o->ports + o->boot_n,
                       MAX_BOOTSTRAP - o->boot_n, &extra) && extra) {
            o->n = o->boot_n + extra;
            o->failures = 0;
        }
    }
    o->cur = (o->cur + 1) % o->n;
}

static void on_image(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    rn_obs_t *o = ctx;
    o->in_flight = false;
    if (o->stopping) {
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        return;
    }
    if (err != RN_OK || resp->error != 0 ||
        resp->body_case != RUNNEL__RESPONSE__BODY_FETCH_METADATA_IMAGE) {
        RN_DEBUG("observer", "FetchMetadataImage from %s:%d failed: %s", o->hosts[o->cur],
                 o->ports[o->cur], err != RN_OK ? rn_err_name(err) : resp->error_message);
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        o->rotate = true; /* not here: this runs inside the connection's own callback */
        return;
    }
    const Runnel__FetchMetadataImageResponse *r = resp->fetch_metadata_image;
    o->failures = 0;
    if (r->index < o->index || r->index < o->floor) {
        /* a broker behind this observer (still replaying its log): not its controller either */
        o->rotate = true;
        runnel__response__free_unpacked(resp, NULL);
        return;
    }
    if (r->controller_id != o->controller_id)
        RN_INFO("observer", "node %" PRId32 " is the active controller (as %s:%d says)",
                r->controller_id, o->hosts[o->cur], o->ports[o->cur]);
    o->controller_id = r->controller_id;
    if (r->index > o->index && r->image.len) {
        rn_err_t e = o->fsm.restore(o->fsm.ctx, r->image.data, r->image.len);
        if (e != RN_OK) {
            RN_ERROR("observer", "cannot take the metadata image at index %" PRIu64 " from "
                     "%s:%d: %s", r->index, o->hosts[o->cur], o->ports[o->cur], rn_err_str(e));
        } else {
            if (!o->logged_first)
                RN_INFO("observer", "metadata image at index %" PRIu64 " from %s:%d (%zu bytes)",
                        r->index, o->hosts[o->cur], o->ports[o->cur], r->image.len);
            o->logged_first = true;
            o->index = r->index;
            if (o->index_path[0]) {
                char line[32];
                int len = snprintf(line, sizeof line, "%" PRIu64 "\n", o->index);
                (void)rn_fs_write_atomic(o->index_path, line, (size_t)len, false);
            }
        }
    }
    runnel__response__free_unpacked(resp, NULL);
}

static void poll_once(rn_obs_t *o)
{
    if (o->stopping)
        return;
    /* rn_conn has no timer of its own: without this a silent server (no RST) would hold the
     * ask for the kernel's minutes; the check may run on_image, which clears in_flight. */
    if (o->conn && o->in_flight)
        rn_conn_check_timeouts(o->conn, rn_now_ns());
    if (o->in_flight)
        return;
    if (o->rotate) {
        o->rotate = false;
        next_server(o);
    }
    if (!o->conn) {
        rn_conn_opts_t co = {.max_frame = o->max_frame, .connect_timeout_ms = 2000};
        if (!(o->conn = rn_conn_new(o->loop, o->hosts[o->cur], o->ports[o->cur], &co)))
            return;
    }
    rn_conn_check_timeouts(o->conn, rn_now_ns());
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_FETCH_METADATA_IMAGE;
    h.client_id = (char *)"runnel-observer";
    Runnel__FetchMetadataImageRequest q = RUNNEL__FETCH_METADATA_IMAGE_REQUEST__INIT;
    q.broker_id = o->node_id;
    q.have_index = o->index;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH_METADATA_IMAGE;
    req.fetch_metadata_image = &q;
    if (rn_conn_send(o->conn, &req, 5000, true, on_image, o) == RN_OK)
        o->in_flight = true;
}

static void on_timer(uv_timer_t *t)
{
    poll_once(t->data);
}

rn_err_t rn_obs_parse_servers(const char *list, char hosts[][256], int *ports, size_t cap,
                              size_t *n, char *errbuf, size_t errlen)
{
    *n = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char entry[256];
        snprintf(entry, sizeof entry, "%.*s", (int)(len < sizeof entry ? len : sizeof entry - 1),
                 p);
        char *colon = strrchr(entry, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (!colon || colon == entry || port <= 0 || port > 65535 || *n == cap) {
            snprintf(errbuf, errlen, "bad observer.bootstrap.servers entry '%s': expected "
                     "HOST:PORT (a client listener of a broker of the cluster), at most %zu of "
                     "them", entry, cap);
            return RN_ERR_BAD_CONFIG;
        }
        *colon = '\0';
        memcpy(hosts[*n], entry, strlen(entry) + 1);
        ports[(*n)++] = (int)port;
        p += len + (end ? 1 : 0);
    }
    if (*n == 0) {
        snprintf(errbuf, errlen, "observer.bootstrap.servers is empty");
        return RN_ERR_BAD_CONFIG;
    }
    return RN_OK;
}

rn_obs_t *rn_obs_start(uv_loop_t *loop, const rn_obs_opts_t *opts, char *errbuf, size_t errlen)
{
    rn_obs_t *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    if (rn_obs_parse_servers(opts->bootstrap, o->hosts, o->ports, MAX_BOOTSTRAP, &o->n, errbuf,
                             errlen) != RN_OK) {
        free(o);
        return NULL;
    }
    o->loop = loop;
    o->fsm = opts->fsm;
    o->node_id = opts->node_id;
    o->max_frame = opts->max_frame;
    o->poll_ms = opts->poll_ms ? opts->poll_ms : 250;
    o->boot_n = o->n;
    if (opts->data_dir) {
        snprintf(o->index_path, sizeof o->index_path, "%s/observer-index", opts->data_dir);
        rn_buf_t b = RN_BUF_INIT;
        if (rn_fs_read_all(o->index_path, &b) == RN_OK && b.len && b.len < 32) {
            char num[32];
            memcpy(num, b.data, b.len);
            num[b.len] = '\0';
            /* the image itself is gone with the process: ask for it again from above this */
            o->floor = strtoull(num, NULL, 10);
        }
        rn_buf_free(&b);
    }
    o->brokers = opts->brokers;
    o->brokers_ctx = opts->brokers_ctx;
    o->controller_id = -1;
    uv_timer_init(loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, on_timer, 0, o->poll_ms);
    RN_INFO("observer", "node %" PRId32 " is an observer (not a controller voter): it takes "
            "the metadata image from %s every %" PRIu32 " ms", o->node_id, opts->bootstrap,
            o->poll_ms);
    return o;
}

int32_t rn_obs_controller_id(const rn_obs_t *o)
{
    return o ? o->controller_id : -1;
}

uint64_t rn_obs_index(const rn_obs_t *o)
{
    return o ? o->index : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    rn_obs_t *o = h->data;
    if (o->done)
        o->done(o->done_arg);
}

void rn_obs_stop(rn_obs_t *o, void (*done)(void *arg), void *arg)
{
    if (!o || o->stopping)
        return;
    o->stopping = true;
    o->done = done;
    o->done_arg = arg;
    if (o->conn) {
        rn_conn_free(o->conn);
        o->conn = NULL;
    }
    uv_close((uv_handle_t *)&o->timer, on_timer_closed);
}

void rn_obs_free(rn_obs_t *o)
{
    free(o);
}
