/* members.c - registration, heartbeats and fencing (see members.h). */
#include "members.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
/* client/conn.h: the broker has its own net/conn.h (server side) on the include path. */
#include "../../client/conn.h"
#include "logging.h"
#include "metadata.pb-c.h"
#include "sessions.h"

#define MAX_PENDING RN_SESS_MAX

struct rn_mem {
    uv_loop_t *loop;
    rn_ctl_t *ctl;
    rn_img_t *img;
    int32_t node_id;
    char host[256];
    uint16_t port;
    char controller_address[64];
    uint32_t heartbeat_ms;
    uint32_t max_frame;
    uv_timer_t timer;
    bool stopped;
    /* broker side */
    uint8_t incarnation[RN_IMG_ID_LEN];
    rn_conn_t *conn;
    bool in_flight;
    uint64_t epoch;                /* 0: not registered */
    bool fenced_known, fenced;
    bool want_shut_down;
    void (*shut_done)(void *arg, bool fenced);
    void *shut_arg;
    /* controller side */
    bool active;
    rn_sess_t *sess;
    int32_t changing[MAX_PENDING]; /* brokers with a fence/unfence proposal in flight */
    size_t n_changing;
};

static void send_next(rn_mem_t *m);

static int64_t now_ms(void)
{
    return rn_now_ns() / 1000000;
}

/* ================================================================ controller side ==== */

static bool changing(const rn_mem_t *m, int32_t id)
{
    for (size_t i = 0; i < m->n_changing; i++)
        if (m->changing[i] == id)
            return true;
    return false;
}

static void change_done(rn_mem_t *m, int32_t id)
{
    for (size_t i = 0; i < m->n_changing; i++)
        if (m->changing[i] == id) {
            m->changing[i] = m->changing[--m->n_changing];
            return;
        }
}

/* Packs rec into a malloc'd buffer; NULL when out of memory. */
static uint8_t *pack_record(Runnel__Meta__MetadataRecord *rec, size_t *len)
{
    rec->version = RN_IMG_RECORD_VERSION;
    *len = runnel__meta__metadata_record__get_packed_size(rec);
    uint8_t *b = malloc(*len ? *len : 1);
    if (b)
        runnel__meta__metadata_record__pack(rec, b);
    return b;
}

struct change {
    rn_mem_t *m;
    int32_t id;
    bool fence;
};

static void on_change_committed(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct change *c = arg;
    const rn_img_result_t *r = result;
    (void)index;
    if (!c->m->stopped)
        change_done(c->m, c->id);
    if (status != RN_OK)
        RN_WARN("cluster", "%s of broker %" PRId32 " not committed: %s",
                c->fence ? "fencing" : "unfencing", c->id, rn_err_name(status));
    else if (r && r->outcome == RN_IMG_APPLIED)
        RN_INFO("cluster", "broker %" PRId32 " is %s", c->id, c->fence ? "fenced" : "unfenced");
    free(c);
}

/* Proposes FenceBrokerRecord or UnfenceBrokerRecord for broker id at its current epoch. */
static void propose_change(rn_mem_t *m, int32_t id, uint64_t epoch, bool fence)
{
    if (changing(m, id) || m->n_changing == MAX_PENDING)
        return;
    Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
    Runnel__Meta__FenceBrokerRecord f = RUNNEL__META__FENCE_BROKER_RECORD__INIT;
    Runnel__Meta__UnfenceBrokerRecord u = RUNNEL__META__UNFENCE_BROKER_RECORD__INIT;
    if (fence) {
        f.broker_id = id;
        f.broker_epoch = epoch;
        rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_FENCE_BROKER;
        rec.fence_broker = &f;
    } else {
        u.broker_id = id;
        u.broker_epoch = epoch;
        rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_UNFENCE_BROKER;
        rec.unfence_broker = &u;
    }
    size_t len;
    uint8_t *bytes = pack_record(&rec, &len);
    struct change *c = malloc(sizeof *c);
    if (!bytes || !c) {
        free(bytes);
        free(c);
        return;
    }
    *c = (struct change){m, id, fence};
    rn_err_t e = rn_ctl_propose(m->ctl, bytes, len, on_change_committed, c);
    free(bytes);
    if (e != RN_OK) {
        free(c);
        return;
    }
    m->changing[m->n_changing++] = id;
}

void rn_mem_set_active(rn_mem_t *m, bool active)
{
    m->active = active;
    rn_sess_clear(m->sess);
    if (!active)
        return;
    /* KIP-631 takeover: nobody is blamed for the old controller's silence. */
    int64_t now = now_ms();
    for (size_t i = 0; i < rn_img_broker_count(m->img); i++) {
        const rn_img_broker_t *b = rn_img_broker_at(m->img, i);
        rn_sess_track(m->sess, b->id, b->epoch, now);
    }
    RN_INFO("cluster", "active controller: %zu broker session(s) start fresh",
            rn_sess_count(m->sess));
}

/* Fences every broker whose session expired and that the image has unfenced. */
static void check_sessions(rn_mem_t *m)
{
    int32_t ids[RN_SESS_MAX];
    size_t n = rn_sess_expired(m->sess, now_ms(), ids, RN_SESS_MAX);
    for (size_t i = 0; i < n; i++) {
        const rn_img_broker_t *b = rn_img_broker(m->img, ids[i]);
        if (!b)
            continue;
        RN_INFO("cluster", "broker %" PRId32 " sent no heartbeat for %s: its session expired",
                ids[i], "broker.session.timeout.ms");
        if (!b->fenced)
            propose_change(m, b->id, b->epoch, true);
    }
}

static void send_error(rn_resp_t *resp, rn_err_t err, const char *msg)
{
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.error = (Runnel__ErrorCode)err;
    r.error_message = (char *)(msg ? msg : rn_err_str(err));
    rn_resp_note_error(resp, err);
    if (rn_resp_pack(resp, &r) != RN_OK)
        rn_resp_clear(resp);
    rn_resp_send(resp);
}

static void send_registered(rn_resp_t *resp, uint64_t epoch)
{
    Runnel__BrokerRegistrationResponse body = RUNNEL__BROKER_REGISTRATION_RESPONSE__INIT;
    body.broker_epoch = epoch;
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_BROKER_REGISTRATION;
    r.broker_registration = &body;
    if (rn_resp_pack(resp, &r) != RN_OK) {
        send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    rn_resp_send(resp);
}

struct reg {
    rn_mem_t *m;
    rn_resp_t *resp;               /* NULL once the connection closed */
    int32_t id;
};

static void on_reg_cancel(void *arg)
{
    struct reg *g = arg;
    g->resp = NULL;
}

static void on_reg_committed(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct reg *g = arg;
    const rn_img_result_t *r = result;
    rn_mem_t *m = g->m;
    if (!g->resp) {
        free(g);
        return;
    }
    if (status != RN_OK) {
        send_error(g->resp, status == RN_CTL_ERR_NOT_CONTROLLER ? RN_ERR_NOT_CONTROLLER : status,
                   "the registration was not committed; retry");
    } else if (r && r->outcome == RN_IMG_REJECTED) {
        send_error(g->resp, r->reason, r->message);
    } else {
        const rn_img_broker_t *b = rn_img_broker(m->img, g->id);
        uint64_t epoch = b ? b->epoch : index;
        if (m->active)
            rn_sess_track(m->sess, g->id, epoch, now_ms());
        RN_INFO("cluster", "broker %" PRId32 " registered (%s:%" PRIu32 "), broker epoch %" PRIu64,
                g->id, b ? b->host : "?", b ? b->port : 0, epoch);
        send_registered(g->resp, epoch);
    }
    free(g);
}

void rn_mem_handle_registration(rn_mem_t *m, rn_resp_t *resp,
                                const Runnel__BrokerRegistrationRequest *req)
{
    if (!m || !m->active) {
        send_error(resp, RN_ERR_NOT_CONTROLLER, "this broker is not the active controller");
        return;
    }
    if (req->broker_id <= 0 || req->incarnation_id.len != RN_IMG_ID_LEN || !req->host[0] ||
        req->port == 0 || req->port > 65535) {
        send_error(resp, RN_ERR_INVALID_REQUEST, "a registration needs broker_id > 0, a 16-byte "
                   "incarnation_id, a host and a port");
        return;
    }
    const char *cid = rn_img_cluster_id(m->img);
    if (req->cluster_id[0] && cid[0] && strcmp(req->cluster_id, cid) != 0) {
        send_error(resp, RN_ERR_INCONSISTENT_CLUSTER_ID, "the broker belongs to another cluster");
        return;
    }
    const rn_img_broker_t *b = rn_img_broker(m->img, req->broker_id);
    if (b && memcmp(b->incarnation_id, req->incarnation_id.data, RN_IMG_ID_LEN) == 0 &&
        strcmp(b->host, req->host) == 0 && b->port == req->port) {
        rn_sess_track(m->sess, b->id, b->epoch, now_ms());
        send_registered(resp, b->epoch);
        return;
    }
    if (b && !b->fenced && rn_sess_alive(m->sess, b->id, now_ms())) {
        /* Another process holds this id; it may be a restart faster than the session. */
        send_error(resp, RN_ERR_BROKER_NOT_AVAILABLE, "another incarnation of this broker id "
                   "still has a live session; retry after broker.session.timeout.ms");
        return;
    }
    Runnel__Meta__RegisterBrokerRecord rb = RUNNEL__META__REGISTER_BROKER_RECORD__INIT;
    rb.broker_id = req->broker_id;
    rb.incarnation_id.data = req->incarnation_id.data;
    rb.incarnation_id.len = req->incarnation_id.len;
    rb.host = req->host;
    rb.port = req->port;
    rb.controller_address = req->controller_address;
    Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
    rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_REGISTER_BROKER;
    rec.register_broker = &rb;
    size_t len;
    uint8_t *bytes = pack_record(&rec, &len);
    struct reg *g = malloc(sizeof *g);
    if (!bytes || !g) {
        free(bytes);
        free(g);
        send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    *g = (struct reg){m, resp, req->broker_id};
    rn_err_t e = rn_ctl_propose(m->ctl, bytes, len, on_reg_committed, g);
    free(bytes);
    if (e != RN_OK) {
        free(g);
        send_error(resp, e == RN_CTL_ERR_NOT_CONTROLLER ? RN_ERR_NOT_CONTROLLER : e, NULL);
        return;
    }
    rn_resp_on_cancel(resp, on_reg_cancel, g);
}

void rn_mem_handle_heartbeat(rn_mem_t *m, rn_resp_t *resp,
                             const Runnel__BrokerHeartbeatRequest *req)
{
    if (!m || !m->active) {
        send_error(resp, RN_ERR_NOT_CONTROLLER, "this broker is not the active controller");
        return;
    }
    const rn_img_broker_t *b = rn_img_broker(m->img, req->broker_id);
    if (!b || b->epoch != req->broker_epoch) {
        send_error(resp, RN_ERR_STALE_BROKER_EPOCH, "this broker epoch is not the current "
                   "registration's; register again");
        return;
    }
    /* The image holds the epochs; a session missing or behind it (a registration committed
     * while this node was not yet active) starts here. */
    if (rn_sess_heartbeat(m->sess, b->id, b->epoch, now_ms()) != RN_OK)
        rn_sess_track(m->sess, b->id, b->epoch, now_ms());
    bool caught_up = req->metadata_offset >= b->epoch;
    if (req->want_shut_down && !b->fenced) {
        RN_INFO("cluster", "broker %" PRId32 " is shutting down: fencing it now", b->id);
        propose_change(m, b->id, b->epoch, true);
    } else if (b->fenced && caught_up && !req->want_shut_down) {
        propose_change(m, b->id, b->epoch, false);
    }
    Runnel__BrokerHeartbeatResponse body = RUNNEL__BROKER_HEARTBEAT_RESPONSE__INIT;
    body.is_fenced = b->fenced;
    body.is_caught_up = caught_up;
    body.should_shut_down = req->want_shut_down && b->fenced;
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_BROKER_HEARTBEAT;
    r.broker_heartbeat = &body;
    if (rn_resp_pack(resp, &r) != RN_OK) {
        send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    rn_resp_send(resp);
}

rn_err_t rn_mem_request_shutdown(rn_mem_t *m, void (*done)(void *arg, bool fenced), void *arg)
{
    if (!m || m->stopped || m->epoch == 0)
        return RN_ERR_STATE;
    m->want_shut_down = true;
    m->shut_done = done;
    m->shut_arg = arg;
    send_next(m);
    return RN_OK;
}

bool rn_mem_alive(const rn_mem_t *m, int32_t id)
{
    return m && m->active && rn_sess_alive(m->sess, id, now_ms());
}

uint64_t rn_mem_own_epoch(const rn_mem_t *m)
{
    return m ? m->epoch : 0;
}

/* ==================================================================== broker side ==== */

/* The active controller's client address, or false when it is not known yet. */
static bool controller_address(rn_mem_t *m, const char **host, int *port)
{
    int32_t id = rn_ctl_controller_id(m->ctl);
    if (id < 0)
        return false;
    if (id == m->node_id) {
        *host = m->host;
        *port = m->port;
        return true;
    }
    const rn_img_broker_t *b = rn_img_broker(m->img, id);
    if (!b)
        return false;
    *host = b->host;
    *port = (int)b->port;
    return true;
}

static void on_registered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    rn_mem_t *m = ctx;
    m->in_flight = false;
    if (m->stopped) {
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        return;
    }
    if (err == RN_OK && resp->error == 0 &&
        resp->body_case == RUNNEL__RESPONSE__BODY_BROKER_REGISTRATION) {
        m->epoch = resp->broker_registration->broker_epoch;
        m->fenced_known = false;
        RN_INFO("cluster", "registered with the active controller: broker epoch %" PRIu64,
                m->epoch);
    } else if (err == RN_OK && (rn_err_t)resp->error != RN_ERR_NOT_CONTROLLER) {
        RN_DEBUG("cluster", "registration refused: %s (%s)", rn_err_name((rn_err_t)resp->error),
                 resp->error_message);
    }
    if (resp)
        runnel__response__free_unpacked(resp, NULL);
}

static void on_heartbeat(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    rn_mem_t *m = ctx;
    m->in_flight = false;
    if (m->stopped || err != RN_OK) {
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        return;
    }
    if ((rn_err_t)resp->error == RN_ERR_STALE_BROKER_EPOCH) {
        RN_INFO("cluster", "broker epoch %" PRIu64 " is stale: registering again", m->epoch);
        m->epoch = 0;
    } else if (resp->error == 0 && resp->body_case == RUNNEL__RESPONSE__BODY_BROKER_HEARTBEAT) {
        bool fenced = resp->broker_heartbeat->is_fenced;
        if (!m->fenced_known || fenced != m->fenced)
            RN_INFO("cluster", "the controller has this broker %s", fenced ? "fenced" : "unfenced");
        m->fenced_known = true;
        m->fenced = fenced;
        if (m->shut_done && resp->broker_heartbeat->should_shut_down) {
            void (*done)(void *, bool) = m->shut_done;
            m->shut_done = NULL;
            runnel__response__free_unpacked(resp, NULL);
            done(m->shut_arg, true);
            return;
        }
    }
    runnel__response__free_unpacked(resp, NULL);
}

/* The connection to the active controller's client listener; NULL when it is not known. */
static rn_conn_t *controller_conn(rn_mem_t *m)
{
    const char *host;
    int port;
    if (m->stopped || !controller_address(m, &host, &port))
        return NULL;
    if (m->conn && (strcmp(rn_conn_host(m->conn), host) != 0 || rn_conn_port(m->conn) != port)) {
        rn_conn_free(m->conn);
        m->conn = NULL;
        m->in_flight = false;
    }
    if (!m->conn) {
        rn_conn_opts_t co = {.max_frame = m->max_frame,
                             .connect_timeout_ms = (int)m->heartbeat_ms * 4};
        m->conn = rn_conn_new(m->loop, host, port, &co);
    }
    return m->conn;
}

rn_err_t rn_mem_send_controller(rn_mem_t *m, Runnel__Request *req, int timeout_ms,
                                rn_conn_resp_cb cb, void *ctx)
{
    rn_conn_t *c = m ? controller_conn(m) : NULL;
    if (!c)
        return RN_ERR_NOT_CONTROLLER;
    return rn_conn_send(c, req, timeout_ms, true, cb, ctx);
}

static void send_next(rn_mem_t *m)
{
    if (m->want_shut_down && m->epoch == 0) {
        /* Shutting down and the registration went stale: never register again on the way
         * out; the controller fences the old epoch by itself. */
        if (m->shut_done) {
            void (*done)(void *, bool) = m->shut_done;
            m->shut_done = NULL;
            done(m->shut_arg, false);
        }
        return;
    }
    if (!controller_conn(m))
        return;
    rn_conn_check_timeouts(m->conn, rn_now_ns());
    if (m->in_flight)
        return;
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.client_id = (char *)"runnel-broker";
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    Runnel__BrokerRegistrationRequest reg = RUNNEL__BROKER_REGISTRATION_REQUEST__INIT;
    Runnel__BrokerHeartbeatRequest hb = RUNNEL__BROKER_HEARTBEAT_REQUEST__INIT;
    rn_conn_resp_cb cb;
    if (m->epoch == 0) {
        h.api = RUNNEL__API_KEY__API_BROKER_REGISTRATION;
        reg.broker_id = m->node_id;
        reg.incarnation_id.data = m->incarnation;
        reg.incarnation_id.len = RN_IMG_ID_LEN;
        reg.cluster_id = (char *)rn_img_cluster_id(m->img);
        reg.host = m->host;
        reg.port = m->port;
        reg.controller_address = m->controller_address;
        req.body_case = RUNNEL__REQUEST__BODY_BROKER_REGISTRATION;
        req.broker_registration = &reg;
        cb = on_registered;
    } else {
        rn_ctl_status_t st;
        rn_ctl_status(m->ctl, &st);
        h.api = RUNNEL__API_KEY__API_BROKER_HEARTBEAT;
        hb.broker_id = m->node_id;
        hb.broker_epoch = m->epoch;
        hb.metadata_offset = st.last_applied;
        hb.want_shut_down = m->want_shut_down;
        req.body_case = RUNNEL__REQUEST__BODY_BROKER_HEARTBEAT;
        req.broker_heartbeat = &hb;
        cb = on_heartbeat;
    }
    /* A registration waits for a commit; a heartbeat must beat the session timeout. */
    if (rn_conn_send(m->conn, &req, (int)m->heartbeat_ms * 4, true, cb, m) == RN_OK)
        m->in_flight = true;
}

static void on_tick(uv_timer_t *t)
{
    rn_mem_t *m = t->data;
    if (m->active)
        check_sessions(m);
    send_next(m);
}

rn_mem_t *rn_mem_start(const rn_mem_opts_t *o)
{
    rn_mem_t *m = calloc(1, sizeof *m);
    if (!m || !(m->sess = rn_sess_new(o->session_timeout_ms))) {
        free(m);
        return NULL;
    }
    m->loop = o->loop;
    m->ctl = o->ctl;
    m->img = o->img;
    m->node_id = o->node_id;
    snprintf(m->host, sizeof m->host, "%s", o->host);
    m->port = o->port;
    snprintf(m->controller_address, sizeof m->controller_address, "%s",
             o->controller_address ? o->controller_address : "");
    m->heartbeat_ms = o->heartbeat_ms;
    m->max_frame = o->max_frame;
    if (getrandom(m->incarnation, sizeof m->incarnation, 0) != sizeof m->incarnation) {
        rn_sess_free(m->sess);
        free(m);
        return NULL;
    }
    uv_timer_init(m->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, on_tick, 0, m->heartbeat_ms);
    return m;
}

void rn_mem_stop(rn_mem_t *m)
{
    if (!m || m->stopped)
        return;
    m->stopped = true;
    m->active = false;
    uv_close((uv_handle_t *)&m->timer, NULL);
    if (m->conn) {
        rn_conn_free(m->conn);
        m->conn = NULL;
    }
}

void rn_mem_free(rn_mem_t *m)
{
    if (!m)
        return;
    rn_sess_free(m->sess);
    free(m);
}
