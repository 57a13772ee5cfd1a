/* controller.c - the controller quorum on libraft, on the broker's loop (see controller.h). */
#include "controller.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "observer.h"
#include "fsutil.h"
#include "kvfile.h"
#include "logging.h"

#define POLL_MS 50
#define CONNECT_RETRY_MS 100      /* raft_uv's default is 1000 ms: too slow for a restart */
#define SNAPSHOT_TRAILING 128
#define RAFT_SUBDIR "__cluster_metadata"
#define META_FILE "meta.properties"

struct rn_ctl {
    rn_obs_t *obs;                 /* an observer: no raft at all (observer.c) */
    struct raft *raft;             /* &own_raft, or the fixture's */
    struct raft own_raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm raft_fsm;
    rn_ctl_fsm_t fsm;
    rn_ctl_events_t events;
    uv_loop_t *loop;
    uv_timer_t poll_timer;
    bool owned;                    /* rn_ctl_start built the raft (and the timer) */
    bool timer_started;
    bool stopping;
    bool closed;                   /* raft_close's callback has run */
    /* what the last poll saw */
    int state;
    uint32_t leader_id;
    uint64_t term;
    bool active;
    uint64_t barrier_term;         /* term of the outstanding takeover barrier; 0 for none */
    uint64_t barrier_index;        /* log index of the last applied takeover barrier */
    struct raft_transfer transfer;
    void (*done)(void *arg);
    void *done_arg;
    char errmsg[RAFT_ERRMSG_BUF_SIZE + 64];
};

/* ---------------------------------------------------------------- helpers ---- */

const char *rn_ctl_state_name(int state)
{
    if (state == RN_CTL_OBSERVER)
        return "observer";
    switch (state) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "unavailable";
    }
}

/* libraft's status codes as rn_err_t; "not the leader" in any form is NOT_CONTROLLER. */
static rn_err_t from_raft(int rv)
{
    switch (rv) {
    case 0: return RN_OK;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST: return RN_CTL_ERR_NOT_CONTROLLER;
    case RAFT_NOMEM: return RN_ERR_NOMEM;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED: return RN_ERR_CLOSED;
    case RAFT_NOSPACE: return RN_ERR_NO_SPACE;
    case RAFT_TOOBIG: return RN_ERR_INVALID_ARG;
    default: return RN_ERR_IO;
    }
}

rn_err_t rn_ctl_check_address(const char *address)
{
    char host[32];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host || colon == address)
        return RN_ERR_BAD_CONFIG;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return RN_ERR_BAD_CONFIG;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
        return RN_ERR_BAD_CONFIG;
    return RN_OK;
}

static rn_err_t voter_error(char *errbuf, size_t errlen, const char *entry, const char *why)
{
    snprintf(errbuf, errlen,
             "bad controller.quorum.voters entry '%s': %s; expected ID@a.b.c.d:PORT,... with "
             "distinct ids 1..%d, IPv4 addresses and ports 1..65535 (e.g. "
             "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095)",
             entry, why, INT32_MAX);
    return RN_ERR_BAD_CONFIG;
}

rn_err_t rn_ctl_parse_voters(const char *s, rn_ctl_voter_t *out, size_t cap, size_t *n,
                             char *errbuf, size_t errlen)
{
    *n = 0;
    const char *p = s;
    if (!*p)
        return voter_error(errbuf, errlen, s, "empty");
    for (;;) {
        size_t len = strcspn(p, ",");
        char entry[64];
        if (len == 0 || len >= sizeof entry)
            return voter_error(errbuf, errlen, len ? p : s, len ? "too long" : "empty entry");
        memcpy(entry, p, len);
        entry[len] = '\0';
        char *at = strchr(entry, '@');
        if (!at)
            return voter_error(errbuf, errlen, entry, "no '@'");
        *at = '\0';
        char *end;
        errno = 0;
        long long id = strtoll(entry, &end, 10);
        *at = '@';
        if (errno || end == entry || end != at || id < 1 || id > INT32_MAX)
            return voter_error(errbuf, errlen, entry, "the id is not an integer > 0");
        if (rn_ctl_check_address(at + 1) != RN_OK)
            return voter_error(errbuf, errlen, entry, "the address is not a.b.c.d:PORT");
        for (size_t i = 0; i < *n; i++) {
            if (out[i].id == (uint32_t)id)
                return voter_error(errbuf, errlen, entry, "the id is listed twice");
            if (strcmp(out[i].address, at + 1) == 0)
                return voter_error(errbuf, errlen, entry, "the address is listed twice");
        }
        if (*n == cap) {
            snprintf(errbuf, errlen, "controller.quorum.voters: at most %zu voters", cap);
            return RN_ERR_BAD_CONFIG;
        }
        out[*n].id = (uint32_t)id;
        snprintf(out[*n].address, sizeof out[*n].address, "%s", at + 1);
        (*n)++;
        if (!p[len])
            return RN_OK;
        p += len + 1;
    }
}

/* ----------------------------------------------------------- the FSM adapter ---- */

/*
 * One raft entry as this module writes it. libraft 0.15's on-disk segment loader assumes every
 * entry's length is a multiple of 8 (a TODO in its uv_segment.c, canonical/raft issues 189 and
 * 304): a 28-byte entry is written padded but read back unpadded, and the next restart fails
 * with "load closed segment ...: read preamble: short read". So the payload is framed and
 * zero-padded to 8 bytes, and apply hands the FSM the payload only:
 *
 *   0         4         5         8                 8 + len        multiple of 8
 *   +---------+---------+---------+-----------------+--------------+
 *   | len u32 | version | 0 0 0   | payload (len)   | 0 (padding)  |
 *   | LE      | 1       |         |                 |              |
 *   +---------+---------+---------+-----------------+--------------+
 */
#define FRAME_HEADER 8
#define FRAME_VERSION 1

static size_t frame_size(size_t len)
{
    return (FRAME_HEADER + len + 7) & ~(size_t)7;
}

static void frame_encode(uint8_t *out, const void *payload, size_t len)
{
    size_t total = frame_size(len);
    memset(out, 0, total);
    out[0] = (uint8_t)len;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 24);
    out[4] = FRAME_VERSION;
    if (len)
        memcpy(out + FRAME_HEADER, payload, len);
}

/* The payload of a framed entry, or NULL when buf is not one. */
static const uint8_t *frame_decode(const struct raft_buffer *buf, size_t *len)
{
    const uint8_t *p = buf->base;
    if (buf->len < FRAME_HEADER || buf->len % 8 || p[4] != FRAME_VERSION)
        return NULL;
    *len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (frame_size(*len) != buf->len)
        return NULL;
    return p + FRAME_HEADER;
}

static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf, void **result)
{
    rn_ctl_t *ctl = f->data;
    /* libraft advances last_applied right after apply returns, so this entry is the next. */
    uint64_t index = raft_last_applied(ctl->raft) + 1;
    size_t len = 0;
    const uint8_t *payload = frame_decode(buf, &len);
    *result = NULL;
    if (!payload) {
        /* Only rn_ctl_propose writes entries; every server skips such an entry alike. */
        RN_ERROR("controller", "metadata log entry %" PRIu64 " (%zu bytes) is not framed as "
                 "rn_ctl_propose writes entries: skipped", index, buf->len);
        return 0;
    }
    rn_err_t e = ctl->fsm.apply(ctl->fsm.ctx, payload, len, index, result);
    if (e != RN_OK) {
        RN_ERROR("controller", "the metadata state machine cannot apply entry %" PRIu64 ": %s; "
                 "this node stops applying the log", index, rn_err_name(e));
        return e == RN_ERR_NOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    return 0;
}

/* Version 1: libraft frees bufs and their base with raft_free once this returns 0. */
static int fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    rn_ctl_t *ctl = f->data;
    rn_buf_t out = RN_BUF_INIT;
    rn_err_t e = ctl->fsm.snapshot(ctl->fsm.ctx, &out);
    if (e != RN_OK) {
        rn_buf_free(&out);
        RN_WARN("controller", "metadata snapshot failed: %s", rn_err_name(e));
        return e == RN_ERR_NOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    struct raft_buffer *b = raft_malloc(sizeof *b);
    void *base = raft_malloc(out.len ? out.len : 1);
    if (!b || !base) {
        raft_free(b);
        raft_free(base);
        rn_buf_free(&out);
        return RAFT_NOMEM;
    }
    if (out.len)
        memcpy(base, out.data, out.len);
    b->base = base;
    b->len = out.len;
    rn_buf_free(&out);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

/* Takes ownership of buf->base on success. */
static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
    rn_ctl_t *ctl = f->data;
    rn_err_t e = ctl->fsm.restore(ctl->fsm.ctx, buf->base, buf->len);
    if (e != RN_OK) {
        RN_ERROR("controller", "cannot restore the metadata snapshot (%zu bytes): %s",
                 buf->len, rn_err_name(e));
        return e == RN_ERR_NOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    raft_free(buf->base);
    return 0;
}

static rn_ctl_t *ctl_alloc(const rn_ctl_fsm_t *fsm, const rn_ctl_events_t *events)
{
    rn_ctl_t *ctl = calloc(1, sizeof *ctl);
    if (!ctl)
        return NULL;
    ctl->fsm = *fsm;
    if (events)
        ctl->events = *events;
    ctl->raft_fsm = (struct raft_fsm){.version = 1, .data = ctl, .apply = fsm_apply,
                                      .snapshot = fsm_snapshot, .restore = fsm_restore};
    ctl->state = RAFT_UNAVAILABLE;
    return ctl;
}

rn_ctl_t *rn_ctl_new_detached(const rn_ctl_fsm_t *fsm, const rn_ctl_events_t *events,
                              struct raft_fsm **raft_fsm)
{
    rn_ctl_t *ctl = ctl_alloc(fsm, events);
    if (ctl)
        *raft_fsm = &ctl->raft_fsm;
    return ctl;
}

void rn_ctl_attach(rn_ctl_t *ctl, struct raft *raft)
{
    ctl->raft = raft;
}

/* ------------------------------------------------------------ leadership ---- */

void rn_ctl_status(rn_ctl_t *ctl, rn_ctl_status_t *st)
{
    struct raft *r = ctl->raft;
    raft_id leader = 0;
    const char *address = NULL;
    memset(st, 0, sizeof *st);
    if (ctl->obs) {
        int32_t id = rn_obs_controller_id(ctl->obs);
        st->state = RN_CTL_OBSERVER;
        st->leader_id = id > 0 ? (uint32_t)id : 0;
        st->commit_index = st->last_index = st->last_applied = rn_obs_index(ctl->obs);
        return;
    }
    st->state = RAFT_UNAVAILABLE;
    st->active = ctl->active;
    if (!r || ctl->closed || ctl->stopping)
        return;
    st->state = raft_state(r);
    raft_leader(r, &leader, &address);
    st->leader_id = (uint32_t)leader;
    /* struct raft is not opaque in libraft 0.15; these reads stay in this one function. */
    st->term = r->current_term;
    st->commit_index = r->commit_index;
    st->snapshot_index = r->log.snapshot.last_index;
    st->last_index = raft_last_index(r);
    st->last_applied = raft_last_applied(r);
}

static void set_active(rn_ctl_t *ctl, bool active)
{
    if (ctl->active == active)
        return;
    ctl->active = active;
    if (active)
        RN_INFO("controller", "node %" PRIu32 " is active: the metadata log is applied up to "
                "index %" PRIu64, ctl->leader_id, ctl->barrier_index);
    if (ctl->events.active)
        ctl->events.active(ctl->events.ctx, active);
}

struct barrier {
    struct raft_barrier req;
    rn_ctl_t *ctl;
    uint64_t term;
};

static void on_barrier(struct raft_barrier *req, int status)
{
    struct barrier *b = req->data;
    rn_ctl_t *ctl = b->ctl;
    uint64_t term = b->term, index = req->index;
    free(b);
    if (ctl->barrier_term == term)
        ctl->barrier_term = 0;
    if (status != 0) {
        if (status != RAFT_SHUTDOWN && status != RAFT_LEADERSHIPLOST)
            RN_WARN("controller", "takeover barrier failed: %s", raft_strerror(status));
        return;
    }
    rn_ctl_status_t st;
    rn_ctl_status(ctl, &st);
    if (st.state == RAFT_LEADER && st.term == term) {
        ctl->barrier_index = index;
        set_active(ctl, true);
    }
}

/*
 * A new leader knows entries of earlier terms are committed only once an entry of its own term
 * commits; until its barrier applies, its FSM may be behind, so it is not active yet.
 */
static void start_barrier(rn_ctl_t *ctl, uint64_t term)
{
    struct barrier *b = calloc(1, sizeof *b);
    if (!b) {
        RN_ERROR("controller", "out of memory for the takeover barrier");
        return;
    }
    b->req.data = b;
    b->ctl = ctl;
    b->term = term;
    int rv = raft_barrier(ctl->raft, &b->req, on_barrier);
    if (rv != 0) {
        RN_WARN("controller", "takeover barrier refused: %s", raft_strerror(rv));
        free(b);
        return;
    }
    ctl->barrier_term = term;
}

void rn_ctl_poll(rn_ctl_t *ctl)
{
    if (!ctl->raft || ctl->closed || ctl->stopping)
        return;
    rn_ctl_status_t st;
    rn_ctl_status(ctl, &st);
    if (st.state != RAFT_LEADER)
        set_active(ctl, false);
    if (st.leader_id != ctl->leader_id || st.term != ctl->term) {
        if (st.leader_id != ctl->leader_id) {
            if (st.leader_id)
                RN_INFO("controller", "node %" PRIu32 " is the active controller, term %" PRIu64,
                        st.leader_id, st.term);
            else
                RN_INFO("controller", "no active controller (term %" PRIu64 ", this node is %s)",
                        st.term, rn_ctl_state_name(st.state));
        }
        ctl->leader_id = st.leader_id;
        ctl->term = st.term;
        if (ctl->events.leader)
            ctl->events.leader(ctl->events.ctx, st.leader_id, st.term);
    }
    ctl->state = st.state;
    if (st.state == RAFT_LEADER && !ctl->active && ctl->barrier_term != st.term)
        start_barrier(ctl, st.term);
}

static void on_poll(uv_timer_t *t)
{
    rn_ctl_poll(t->data);
}

int32_t rn_ctl_controller_id(const rn_ctl_t *ctl)
{
    if (ctl && ctl->obs)
        return rn_obs_controller_id(ctl->obs);
    return ctl && ctl->leader_id ? (int32_t)ctl->leader_id : -1;
}

bool rn_ctl_is_observer(const rn_ctl_t *ctl)
{
    return ctl && ctl->obs;
}

bool rn_ctl_is_active(const rn_ctl_t *ctl)
{
    return ctl && ctl->active;
}

const char *rn_ctl_errmsg(rn_ctl_t *ctl)
{
    if (ctl->errmsg[0])
        return ctl->errmsg;
    return ctl->raft ? raft_errmsg(ctl->raft) : "";
}

/* -------------------------------------------------------------- proposals ---- */

struct proposal {
    struct raft_apply req;
    rn_ctl_propose_cb cb;
    void *arg;
};

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct proposal *p = req->data;
    rn_ctl_propose_cb cb = p->cb;
    void *arg = p->arg;
    uint64_t index = req->index;
    free(p);
    cb(arg, from_raft(status), index, status == 0 ? result : NULL);
}

rn_err_t rn_ctl_propose(rn_ctl_t *ctl, const void *bytes, size_t len, rn_ctl_propose_cb cb,
                        void *arg)
{
    ctl->errmsg[0] = '\0';
    if (ctl->obs)
        return RN_CTL_ERR_NOT_CONTROLLER;
    if (!ctl->raft || ctl->stopping || ctl->closed)
        return RN_ERR_CLOSED;
    if (raft_state(ctl->raft) != RAFT_LEADER)
        return RN_CTL_ERR_NOT_CONTROLLER;
    if (len > UINT32_MAX - FRAME_HEADER - 8)
        return RN_ERR_INVALID_ARG;
    struct proposal *p = calloc(1, sizeof *p);
    struct raft_buffer buf = {.base = raft_malloc(frame_size(len)), .len = frame_size(len)};
    if (!p || !buf.base) {
        free(p);
        raft_free(buf.base);
        return RN_ERR_NOMEM;
    }
    frame_encode(buf.base, bytes, len);
    p->req.data = p;
    p->cb = cb;
    p->arg = arg;
    int rv = raft_apply(ctl->raft, &p->req, &buf, 1, on_applied);
    if (rv != 0) {
        /* The buffer passes to libraft only when raft_apply returns 0. */
        snprintf(ctl->errmsg, sizeof ctl->errmsg, "raft_apply: %s (%s)", raft_strerror(rv),
                 raft_errmsg(ctl->raft));
        raft_free(buf.base);
        free(p);
        rn_err_t e = from_raft(rv);
        return e == RN_ERR_CLOSED ? RN_ERR_IO : e;
    }
    return RN_OK;
}

/* --------------------------------------------------------------- start-up ---- */

/* True when dir has no entries (dot files aside). */
static bool dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return true;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            empty = false;
            break;
        }
    }
    closedir(d);
    return empty;
}

struct meta {
    long long node_id;             /* -1: absent */
    bool bootstrapped;
};

static rn_err_t meta_line(void *ctx, const char *key, const char *value, int line, char *errbuf,
                          size_t errlen)
{
    struct meta *m = ctx;
    (void)line, (void)errbuf, (void)errlen;
    if (strcmp(key, "node.id") == 0)
        m->node_id = strtoll(value, NULL, 10);
    else if (strcmp(key, "metadata.bootstrapped") == 0)
        m->bootstrapped = strcmp(value, "true") == 0;
    return RN_OK; /* later steps add cluster.id; unknown keys are kept for them */
}

/*
 * DATA_DIR/meta.properties (key=value lines): node.id, and metadata.bootstrapped=true once this
 * voter's raft state exists. It lives outside the raft directory so that losing that directory
 * is detected instead of silently bootstrapping again (docs/cluster.md §3.1 step 2).
 */
static rn_err_t meta_check(const rn_ctl_opts_t *o, const char *raft_dir, char *errbuf,
                           size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", o->data_dir, META_FILE);
    struct meta m = {-1, false};
    if (access(path, F_OK) == 0 &&
        rn_kvfile_read(path, meta_line, &m, errbuf, errlen) != RN_OK)
        return RN_ERR_CORRUPT;
    if (m.node_id >= 0 && m.node_id != (long long)o->node_id) {
        snprintf(errbuf, errlen,
                 "%s says node.id=%lld but this broker is node %" PRIu32 ": a data directory "
                 "belongs to one node; pass --node-id %lld or another --data-dir", path,
                 m.node_id, o->node_id, m.node_id);
        return RN_ERR_STATE;
    }
    if (m.bootstrapped && dir_empty(raft_dir)) {
        snprintf(errbuf, errlen,
                 "%s says this voter joined the controller quorum, but %s is empty: its raft "
                 "state was lost, and starting over could let it vote twice in one term. "
                 "Recover the quorum with libraft's raft_recover procedure, or remove this "
                 "voter and add it back as a new one (then delete metadata.bootstrapped from "
                 "%s)", path, raft_dir, path);
        return RN_ERR_STATE;
    }
    return RN_OK;
}

static rn_err_t meta_write(const rn_ctl_opts_t *o, char *errbuf, size_t errlen)
{
    char path[PATH_MAX], text[128];
    snprintf(path, sizeof path, "%s/%s", o->data_dir, META_FILE);
    int n = snprintf(text, sizeof text,
                     "# written by runnel-broker; do not edit\nnode.id=%" PRIu32
                     "\nmetadata.bootstrapped=true\n", o->node_id);
    if (rn_fs_write_atomic(path, text, (size_t)n, true) != RN_OK) {
        snprintf(errbuf, errlen, "cannot write %s: %s", path, strerror(errno));
        return RN_ERR_IO;
    }
    return RN_OK;
}

static rn_err_t raft_fail(char *errbuf, size_t errlen, const char *what, int rv,
                          const char *msg)
{
    snprintf(errbuf, errlen, "controller: %s failed: %s%s%s", what, raft_strerror(rv),
             msg && *msg ? ": " : "", msg ? msg : "");
    return from_raft(rv) == RN_ERR_NOMEM ? RN_ERR_NOMEM : RN_ERR_IO;
}

/* After raft_init, failing needs raft_close (asynchronous): run the loop until it is done. */
static void closed_after_failure(struct raft *r)
{
    rn_ctl_t *ctl = r->data;
    raft_uv_close(&ctl->io);
    raft_uv_tcp_close(&ctl->transport);
    ctl->closed = true;
}

static void abandon_raft(rn_ctl_t *ctl)
{
    raft_close(ctl->raft, closed_after_failure);
    while (!ctl->closed)
        uv_run(ctl->loop, UV_RUN_ONCE);
    uv_run(ctl->loop, UV_RUN_NOWAIT); /* raft_uv's handle close callbacks */
}

static rn_err_t bootstrap(rn_ctl_t *ctl, const rn_ctl_voter_t *voters, size_t n, char *errbuf,
                          size_t errlen)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < n; i++) {
        int rv = raft_configuration_add(&conf, voters[i].id, voters[i].address, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return raft_fail(errbuf, errlen, "raft_configuration_add", rv, NULL);
        }
    }
    int rv = raft_bootstrap(ctl->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        RN_INFO("controller", "raft state found on disk: loading it");
        return RN_OK;
    }
    if (rv != 0)
        return raft_fail(errbuf, errlen, "raft_bootstrap", rv, raft_errmsg(ctl->raft));
    RN_INFO("controller", "bootstrapped the controller quorum: %zu voter(s)", n);
    return RN_OK;
}

rn_err_t rn_ctl_start(uv_loop_t *loop, const rn_ctl_opts_t *o, rn_ctl_t **out, char *errbuf,
                      size_t errlen)
{
    rn_ctl_voter_t voters[RN_CTL_MAX_VOTERS];
    size_t n = 0;
    const char *self = NULL;
    rn_err_t e = rn_ctl_parse_voters(o->voters, voters, RN_CTL_MAX_VOTERS, &n, errbuf, errlen);
    if (e != RN_OK)
        return e;
    for (size_t i = 0; i < n; i++)
        if (voters[i].id == o->node_id)
            self = voters[i].address;
    if (!self && o->observer_bootstrap && *o->observer_bootstrap) {
        rn_ctl_t *ctl = ctl_alloc(&o->fsm, &o->events);
        if (!ctl)
            return RN_ERR_NOMEM;
        ctl->loop = loop;
        ctl->owned = true;
        rn_obs_opts_t oo = {.node_id = (int32_t)o->node_id, .bootstrap = o->observer_bootstrap,
                            .poll_ms = o->observer_poll_ms, .max_frame = o->max_frame,
                            .fsm = o->fsm, .brokers = o->observer_brokers,
                            .brokers_ctx = o->observer_brokers_ctx, .data_dir = o->data_dir};
        if (!(ctl->obs = rn_obs_start(loop, &oo, errbuf, errlen))) {
            free(ctl);
            return RN_ERR_BAD_CONFIG;
        }
        *out = ctl;
        return RN_OK;
    }
    if (!self) {
        snprintf(errbuf, errlen, "node.id %" PRIu32 " is not in controller.quorum.voters and "
                 "observer.bootstrap.servers is not set", o->node_id);
        return RN_ERR_BAD_CONFIG;
    }
    char raft_dir[PATH_MAX];
    snprintf(raft_dir, sizeof raft_dir, "%s/%s", o->data_dir, RAFT_SUBDIR);
    if (rn_fs_mkdirs(raft_dir) != RN_OK) {
        snprintf(errbuf, errlen, "cannot create %s: %s", raft_dir, strerror(errno));
        return RN_ERR_IO;
    }
    if ((e = meta_check(o, raft_dir, errbuf, errlen)) != RN_OK)
        return e;

    rn_ctl_t *ctl = ctl_alloc(&o->fsm, &o->events);
    if (!ctl)
        return RN_ERR_NOMEM;
    ctl->loop = loop;
    ctl->owned = true;
    ctl->raft = &ctl->own_raft;
    int rv;
    if ((rv = raft_uv_tcp_init(&ctl->transport, loop)) != 0) {
        e = raft_fail(errbuf, errlen, "raft_uv_tcp_init", rv, ctl->transport.errmsg);
        free(ctl);
        return e;
    }
    if (strcmp(o->listen, self) != 0 &&
        (rv = raft_uv_tcp_set_bind_address(&ctl->transport, o->listen)) != 0) {
        e = raft_fail(errbuf, errlen, "raft_uv_tcp_set_bind_address", rv, ctl->transport.errmsg);
        raft_uv_tcp_close(&ctl->transport);
        free(ctl);
        return e;
    }
    if ((rv = raft_uv_init(&ctl->io, loop, raft_dir, &ctl->transport)) != 0) {
        e = raft_fail(errbuf, errlen, "raft_uv_init", rv, ctl->io.errmsg);
        raft_uv_tcp_close(&ctl->transport);
        uv_run(loop, UV_RUN_NOWAIT);
        free(ctl);
        return e;
    }
    raft_uv_set_connect_retry_delay(&ctl->io, CONNECT_RETRY_MS);
    if ((rv = raft_init(ctl->raft, &ctl->io, &ctl->raft_fsm, o->node_id, self)) != 0) {
        e = raft_fail(errbuf, errlen, "raft_init", rv, raft_errmsg(ctl->raft));
        raft_uv_close(&ctl->io);
        raft_uv_tcp_close(&ctl->transport);
        uv_run(loop, UV_RUN_NOWAIT);
        free(ctl);
        return e;
    }
    ctl->raft->data = ctl;
    if ((e = bootstrap(ctl, voters, n, errbuf, errlen)) != RN_OK ||
        (e = meta_write(o, errbuf, errlen)) != RN_OK)
        goto fail;
    raft_set_election_timeout(ctl->raft, o->election_timeout_ms);
    raft_set_heartbeat_timeout(ctl->raft, o->heartbeat_ms);
    raft_set_pre_vote(ctl->raft, true); /* a returning voter does not depose the leader */
    raft_set_snapshot_threshold(ctl->raft, o->snapshot_threshold);
    raft_set_snapshot_trailing(ctl->raft, SNAPSHOT_TRAILING);
    if ((rv = raft_start(ctl->raft)) != 0) {
        e = raft_fail(errbuf, errlen, "raft_start", rv, raft_errmsg(ctl->raft));
        goto fail;
    }
    uv_timer_init(loop, &ctl->poll_timer);
    ctl->poll_timer.data = ctl;
    uv_timer_start(&ctl->poll_timer, on_poll, POLL_MS, POLL_MS);
    ctl->timer_started = true;
    rn_ctl_status_t st;
    rn_ctl_status(ctl, &st);
    RN_INFO("controller", "raft node %" PRIu32 " on %s (%zu voters): term %" PRIu64
            ", last index %" PRIu64 ", snapshot at %" PRIu64 ", data in %s", o->node_id, o->listen,
            n, st.term, st.last_index, st.snapshot_index, raft_dir);
    *out = ctl;
    return RN_OK;
fail:
    abandon_raft(ctl);
    free(ctl);
    return e;
}

/* --------------------------------------------------------------- stopping ---- */

static void on_timer_closed(uv_handle_t *h)
{
    rn_ctl_t *ctl = h->data;
    ctl->timer_started = false;
    if (ctl->closed && ctl->done)
        ctl->done(ctl->done_arg);
}

static void on_raft_closed(struct raft *r)
{
    rn_ctl_t *ctl = r->data;
    raft_uv_close(&ctl->io);
    raft_uv_tcp_close(&ctl->transport);
    ctl->closed = true;
    RN_INFO("controller", "raft closed");
    if (ctl->timer_started) {
        if (!uv_is_closing((uv_handle_t *)&ctl->poll_timer))
            uv_close((uv_handle_t *)&ctl->poll_timer, on_timer_closed);
        return;
    }
    if (ctl->done)
        ctl->done(ctl->done_arg);
}

static void close_raft(rn_ctl_t *ctl)
{
    raft_close(ctl->raft, on_raft_closed);
}

static void on_transferred(struct raft_transfer *req)
{
    rn_ctl_t *ctl = req->data;
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(ctl->raft, &leader, &address);
    if (leader && leader != ctl->raft->id)
        RN_INFO("controller", "handed the controller over to node %llu",
                (unsigned long long)leader);
    else
        RN_WARN("controller", "leadership transfer did not complete; closing anyway (the "
                "other voters elect after their election timeout)");
    close_raft(ctl);
}

void rn_ctl_stop(rn_ctl_t *ctl, void (*done)(void *arg), void *arg)
{
    if (!ctl || ctl->stopping || !ctl->owned)
        return;
    if (ctl->obs) {
        ctl->stopping = true;
        rn_obs_stop(ctl->obs, done, arg);
        return;
    }
    ctl->done = done;
    ctl->done_arg = arg;
    uv_timer_stop(&ctl->poll_timer);
    bool leading = raft_state(ctl->raft) == RAFT_LEADER;
    set_active(ctl, false);
    ctl->stopping = true;
    if (leading) {
        ctl->transfer.data = ctl;
        int rv = raft_transfer(ctl->raft, &ctl->transfer, 0, on_transferred);
        if (rv == 0) {
            RN_INFO("controller", "stopping: handing the controller to another voter");
            return;
        }
        /* A single voter (RAFT_NOTFOUND) or a transfer already running: close directly. */
        RN_INFO("controller", "stopping: no leadership transfer (%s)", raft_strerror(rv));
    }
    close_raft(ctl);
}

void rn_ctl_free(rn_ctl_t *ctl)
{
    if (ctl)
        rn_obs_free(ctl->obs);
    free(ctl);
}
