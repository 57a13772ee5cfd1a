#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busypoll.h"
#include "clock.h"
#include "conf.h"
#include "logging.h"

#define MAX_BOOTSTRAP 64
/* metadata.max.age.ms: refresh at least this often even when nothing failed. */
#define MD_MAX_AGE_NS (300LL * 1000000000)
#define MD_MIN_SPACING_NS (10LL * 1000000)

typedef struct post {
    struct post *next;
    void (*fn)(rn_cl_t *cl, void *arg);
    void *arg;
} post_t;

typedef struct md_waiter {
    struct md_waiter *next;
    void (*fn)(rn_cl_t *cl, void *arg, rn_err_t err);
    void *arg;
} md_waiter_t;

struct rn_call {
    void (*start)(rn_cl_t *cl, rn_call_t *call);
    void *op;
    void (*op_free)(void *op);
    int64_t deadline_ns;
    bool done, abandoned;
    rn_err_t err;
    int refs; /* app + loop; @locks cl->lock */
};

typedef struct later {
    struct later *next;
    int64_t due_ns;
    void (*fn)(rn_cl_t *cl, void *arg, rn_err_t err);
    void *arg;
} later_t;

typedef struct node {
    int32_t id;
    rn_conn_t *conn;
} node_t;

struct rn_cl {
    rn_cl_hooks_t hooks;
    void *ctx;
    char client_id[256];
    int request_timeout_ms;
    int retry_backoff_ms;
    uint32_t max_frame;
    int64_t busy_poll_ns;     /* io.busy.poll.us */

    uv_loop_t loop;
    uv_thread_t thread;
    bool started;
    uv_async_t async;
    uv_timer_t tick;
    uv_timer_t md_timer;

    /* @locks lock: shared with application threads */
    uv_mutex_t lock;
    uv_cond_t call_cond;
    post_t *posts_head, *posts_tail;
    bool stop_requested;

    /* loop thread only */
    bool stopping;
    rn_conn_t **conns;
    size_t n_conns, cap_conns;
    node_t *nodes;
    size_t n_nodes;
    rn_cl_topic_t **topics;
    size_t n_topics, cap_topics;
    char **wants;
    size_t n_wants, cap_wants;
    bool md_in_flight, md_wanted;
    size_t md_unreachable;      /* brokers that failed the current metadata attempt in a row */
    int32_t controller_id;
    bool clustered;          /* the last Metadata named a cluster id */
    int64_t md_next_ns;
    int64_t md_last_ok_ns;
    uint64_t md_version;
    rn_err_t md_last_err;
    md_waiter_t *waiters;
    later_t *laters;
};

int64_t rn_deadline_ns(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : rn_now_ns() + (int64_t)timeout_ms * 1000000;
}

int rn_ms_left(int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX)
        return -1;
    int64_t left = deadline_ns - rn_now_ns();
    if (left <= 0)
        return 0;
    return left / 1000000 > INT32_MAX ? INT32_MAX : (int)((left + 999999) / 1000000);
}

static rn_err_t fail_msg(rn_err_t err, char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", msg);
    return err;
}

rn_cl_retry_t rn_cl_retry_kind(rn_err_t err)
{
    switch (err) {
    case RN_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case RN_ERR_NOT_LEADER_OR_FOLLOWER:
    case RN_ERR_LEADER_NOT_AVAILABLE:
    case RN_ERR_FENCED_LEADER_EPOCH:
    case RN_ERR_UNKNOWN_LEADER_EPOCH:
    case RN_ERR_NOT_ENOUGH_REPLICAS:
    case RN_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RN_ERR_REQUEST_TIMED_OUT:
    case RN_ERR_NOT_CONTROLLER:
    case RN_ERR_BROKER_NOT_AVAILABLE:
    case RN_ERR_TRANSPORT:
    case RN_ERR_TIMED_OUT:
        return RN_CL_RETRY_REFRESH;
    default:
        return rn_err_retriable(err) ? RN_CL_RETRY : RN_CL_FAIL;
    }
}

rn_err_t rn_cl_later(rn_cl_t *cl, int delay_ms, void (*fn)(rn_cl_t *cl, void *arg, rn_err_t err),
                     void *arg)
{
    if (cl->stopping)
        return RN_ERR_CLOSED;
    later_t *l = malloc(sizeof *l);
    if (!l)
        return RN_ERR_NOMEM;
    *l = (later_t){cl->laters, rn_now_ns() + (int64_t)(delay_ms > 0 ? delay_ms : 0) * 1000000,
                   fn, arg};
    cl->laters = l;
    return RN_OK;
}

/* Runs the delayed calls that are due (all of them, with err, when stopping). */
static void laters_run(rn_cl_t *cl, int64_t now, bool all, rn_err_t err)
{
    later_t *due = NULL, **pp = &cl->laters;
    while (*pp) {
        later_t *l = *pp;
        if (all || l->due_ns <= now) {
            *pp = l->next;
            l->next = due;
            due = l;
        } else {
            pp = &l->next;
        }
    }
    /* Taken off the list first: a callback may add new ones. */
    while (due) {
        later_t *next = due->next;
        due->fn(cl, due->arg, err);
        free(due);
        due = next;
    }
}

/* ------------------------------------------------------------ connections ---- */

static void conn_down(rn_conn_t *c, rn_err_t err, void *ctx)
{
    (void)err;
    rn_cl_t *cl = ctx;
    /* A broker we route to went away: its partitions may have new leaders. */
    for (size_t i = 0; i < cl->n_nodes; i++) {
        if (cl->nodes[i].conn == c) {
            rn_cl_md_refresh(cl);
            return;
        }
    }
}

static rn_conn_t *conn_find_or_add(rn_cl_t *cl, const char *host, int port)
{
    for (size_t i = 0; i < cl->n_conns; i++) {
        if (rn_conn_port(cl->conns[i]) == port && strcmp(rn_conn_host(cl->conns[i]), host) == 0)
            return cl->conns[i];
    }
    if (cl->n_conns == cl->cap_conns) {
        size_t cap = cl->cap_conns ? cl->cap_conns * 2 : 8;
        rn_conn_t **p = realloc(cl->conns, cap * sizeof *p);
        if (!p)
            return NULL;
        cl->conns = p;
        cl->cap_conns = cap;
    }
    rn_conn_opts_t o = {
        .max_frame = cl->max_frame,
        .connect_timeout_ms = cl->request_timeout_ms,
        .on_down = conn_down,
        .ctx = cl,
    };
    rn_conn_t *c = rn_conn_new(&cl->loop, host, port, &o);
    if (c)
        cl->conns[cl->n_conns++] = c;
    return c;
}

rn_conn_t *rn_cl_conn_for_node(rn_cl_t *cl, int32_t node_id)
{
    for (size_t i = 0; i < cl->n_nodes; i++) {
        if (cl->nodes[i].id == node_id)
            return cl->nodes[i].conn;
    }
    return NULL;
}

rn_conn_t *rn_cl_conn_any(rn_cl_t *cl)
{
    rn_conn_t *best = NULL;
    int best_rank = 3;
    for (size_t i = 0; i < cl->n_conns; i++) {
        rn_conn_t *c = cl->conns[i];
        int rank = rn_conn_state(c) == RN_CONN_UP ? 0 : rn_conn_state(c) == RN_CONN_CONNECTING ? 1 : 2;
        if (rank < best_rank ||
            (rank == best_rank && rank == 0 && rn_conn_inflight(c) < rn_conn_inflight(best)) ||
            (rank == best_rank && rank == 2 &&
             rn_conn_last_failure_ns(c) < rn_conn_last_failure_ns(best))) {
            best = c;
            best_rank = rank;
        }
    }
    return best;
}

rn_err_t rn_cl_send(rn_cl_t *cl, rn_conn_t *conn, Runnel__Request *req, Runnel__ApiKey api,
                    int timeout_ms, bool expect_response, rn_conn_resp_cb cb, void *ctx)
{
    if (cl->stopping)
        return RN_ERR_CLOSED;
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = api;
    h.api_version = 0;
    h.client_id = cl->client_id;
    req->header = &h;
    rn_err_t err = rn_conn_send(conn, req, timeout_ms, expect_response, cb, ctx);
    req->header = NULL;
    return err;
}

/* --------------------------------------------------------------- metadata ---- */

uint64_t rn_cl_md_version(const rn_cl_t *cl) { return cl->md_version; }
int32_t rn_cl_md_controller(const rn_cl_t *cl) { return cl->controller_id; }
bool rn_cl_md_clustered(const rn_cl_t *cl) { return cl->clustered; }
rn_err_t rn_cl_md_last_err(const rn_cl_t *cl) { return cl->md_last_err; }

const rn_cl_topic_t *rn_cl_md_topic(rn_cl_t *cl, const char *name)
{
    for (size_t i = 0; i < cl->n_topics; i++) {
        if (strcmp(cl->topics[i]->name, name) == 0)
            return cl->topics[i];
    }
    return NULL;
}

void rn_cl_md_want(rn_cl_t *cl, const char *topic)
{
    for (size_t i = 0; i < cl->n_wants; i++) {
        if (strcmp(cl->wants[i], topic) == 0)
            return;
    }
    if (cl->n_wants == cl->cap_wants) {
        size_t cap = cl->cap_wants ? cl->cap_wants * 2 : 8;
        char **p = realloc(cl->wants, cap * sizeof *p);
        if (!p)
            return; /* the request then asks for every topic, which includes this one */
        cl->wants = p;
        cl->cap_wants = cap;
    }
    char *copy = strdup(topic);
    if (copy)
        cl->wants[cl->n_wants++] = copy;
}

static rn_cl_topic_t *topic_get(rn_cl_t *cl, const char *name)
{
    rn_cl_topic_t *t = (rn_cl_topic_t *)rn_cl_md_topic(cl, name);
    if (t)
        return t;
    if (cl->n_topics == cl->cap_topics) {
        size_t cap = cl->cap_topics ? cl->cap_topics * 2 : 8;
        rn_cl_topic_t **p = realloc(cl->topics, cap * sizeof *p);
        if (!p)
            return NULL;
        cl->topics = p;
        cl->cap_topics = cap;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    cl->topics[cl->n_topics++] = t;
    return t;
}

static void part_set(rn_cl_part_t *p, const Runnel__PartitionMetadata *pm)
{
    p->leader = pm->leader;
    p->leader_epoch = pm->leader_epoch;
    p->err = (rn_err_t)pm->error;
    if (p->err == RN_OK && p->leader < 0)
        p->err = RN_ERR_LEADER_NOT_AVAILABLE;
}

/*
 * Replaces t's partitions with the answer's, except that a partition entry with an older
 * leader_epoch than the cached one is ignored (KIP-320, see the top of core.h). Another
 * topic id (cluster mode), or a different partition count, means another topic of that name
 * (deleted and created again restarts the epochs at 0), so then the answer is taken whole.
 * A partition the answer leaves out has no leader.
 */
static void topic_set(rn_cl_topic_t *t, const Runnel__TopicMetadata *tm)
{
    rn_cl_part_t *old = t->parts;
    bool id = tm->topic_id.len == sizeof t->topic_id;
    bool same = old && t->partition_count == (int32_t)tm->n_partitions &&
                (!id || !t->has_id || memcmp(t->topic_id, tm->topic_id.data, sizeof t->topic_id) == 0);
    if (id) {
        memcpy(t->topic_id, tm->topic_id.data, sizeof t->topic_id);
        t->has_id = true;
    }
    t->parts = NULL;
    t->partition_count = 0;
    t->err = (rn_err_t)tm->error;
    if (tm->n_partitions == 0) {
        if (t->err == RN_OK)
            t->err = RN_ERR_LEADER_NOT_AVAILABLE;
        free(old);
        return;
    }
    t->parts = calloc(tm->n_partitions, sizeof *t->parts);
    if (!t->parts) {
        t->err = RN_ERR_NOMEM;
        free(old);
        return;
    }
    t->partition_count = (int32_t)tm->n_partitions;
    for (size_t i = 0; i < tm->n_partitions; i++)
        t->parts[i] = (rn_cl_part_t){.leader = -1, .err = RN_ERR_LEADER_NOT_AVAILABLE};
    for (size_t i = 0; i < tm->n_partitions; i++) {
        const Runnel__PartitionMetadata *pm = tm->partitions[i];
        if (pm->partition < tm->n_partitions)
            part_set(&t->parts[pm->partition], pm);
    }
    for (int32_t i = 0; same && i < t->partition_count; i++) {
        if (old[i].leader_epoch > t->parts[i].leader_epoch) {
            RN_DEBUG("client", "%s-%d: ignoring leader %d at epoch %u, older than epoch %u",
                     t->name, (int)i, (int)t->parts[i].leader, t->parts[i].leader_epoch,
                     old[i].leader_epoch);
            t->parts[i] = old[i];
        }
    }
    free(old);
}

void rn_cl_md_apply(rn_cl_t *cl, const Runnel__MetadataResponse *m, bool named)
{
    cl->controller_id = m->controller_id;
    cl->clustered = m->cluster_id && m->cluster_id[0];
    node_t *nodes = calloc(m->n_brokers ? m->n_brokers : 1, sizeof *nodes);
    if (nodes) {
        size_t n = 0;
        for (size_t i = 0; i < m->n_brokers; i++) {
            const Runnel__BrokerInfo *b = m->brokers[i];
            rn_conn_t *c = conn_find_or_add(cl, b->host, (int)b->port);
            if (c)
                nodes[n++] = (node_t){b->node_id, c};
        }
        free(cl->nodes);
        cl->nodes = nodes;
        cl->n_nodes = n;
    }
    for (size_t i = 0; i < m->n_topics; i++) {
        rn_cl_topic_t *t = topic_get(cl, m->topics[i]->name);
        if (t)
            topic_set(t, m->topics[i]);
    }
    if (!named)
        return;
    /* A named topic the answer left out does not exist. */
    for (size_t w = 0; w < cl->n_wants; w++) {
        bool seen = false;
        for (size_t i = 0; i < m->n_topics && !seen; i++)
            seen = strcmp(m->topics[i]->name, cl->wants[w]) == 0;
        if (seen)
            continue;
        rn_cl_topic_t *t = topic_get(cl, cl->wants[w]);
        if (t) {
            free(t->parts);
            t->parts = NULL;
            t->partition_count = 0;
            t->err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    }
}

static void md_maybe_send(rn_cl_t *cl);

static void md_finish(rn_cl_t *cl, rn_err_t err)
{
    cl->md_in_flight = false;
    cl->md_unreachable = 0;
    cl->md_last_err = err;
    int64_t now = rn_now_ns();
    if (err == RN_OK) {
        cl->md_version++;
        cl->md_last_ok_ns = now;
        /* A topic still being created must not turn refreshes into a busy loop. */
        cl->md_next_ns = now + MD_MIN_SPACING_NS;
    } else {
        cl->md_next_ns = now + (int64_t)cl->retry_backoff_ms * 1000000;
        RN_DEBUG("client", "metadata request failed: %s", rn_err_str(err));
    }
    md_waiter_t *w = cl->waiters;
    cl->waiters = NULL;
    while (w) {
        md_waiter_t *next = w->next;
        w->fn(cl, w->arg, err);
        free(w);
        w = next;
    }
    if (cl->hooks.on_metadata && !cl->stopping)
        cl->hooks.on_metadata(cl->ctx);
    md_maybe_send(cl);
}

typedef struct md_req {
    rn_cl_t *cl;
    bool named;
} md_req_t;

static void md_answered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    md_req_t *mr = ctx;
    rn_cl_t *cl = mr->cl;
    bool named = mr->named;
    free(mr);
    if (err == RN_OK) {
        if (resp->error != RUNNEL__ERROR_CODE__ERR_OK)
            err = (rn_err_t)resp->error;
        else if (resp->body_case != RUNNEL__RESPONSE__BODY_METADATA)
            err = RN_ERR_MALFORMED;
        else
            rn_cl_md_apply(cl, resp->metadata, named);
    }
    if (resp)
        runnel__response__free_unpacked(resp, NULL);
    if ((err == RN_ERR_TRANSPORT || err == RN_ERR_TIMED_OUT) && !cl->stopping &&
        ++cl->md_unreachable < cl->n_conns) {
        /* Skip the broker that failed: the next best connection ranks it last. */
        cl->md_in_flight = false;
        cl->md_wanted = true;
        md_maybe_send(cl);
        return;
    }
    md_finish(cl, err);
}

static void md_timer_fired(uv_timer_t *t)
{
    md_maybe_send(t->data);
}

static void md_maybe_send(rn_cl_t *cl)
{
    if (!cl->md_wanted || cl->md_in_flight || cl->stopping)
        return;
    int64_t now = rn_now_ns();
    if (now < cl->md_next_ns) {
        uv_timer_start(&cl->md_timer, md_timer_fired, (uint64_t)((cl->md_next_ns - now) / 1000000 + 1), 0);
        return;
    }
    rn_conn_t *conn = rn_cl_conn_any(cl);
    md_req_t *mr = malloc(sizeof *mr);
    if (!conn || !mr) {
        free(mr);
        cl->md_wanted = false;
        cl->md_in_flight = true;
        md_finish(cl, conn ? RN_ERR_NOMEM : RN_ERR_TRANSPORT);
        return;
    }
    mr->cl = cl;
    mr->named = cl->n_wants > 0;
    Runnel__MetadataRequest m = RUNNEL__METADATA_REQUEST__INIT;
    m.n_topics = cl->n_wants;
    m.topics = cl->wants;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &m;
    cl->md_wanted = false;
    cl->md_in_flight = true;
    rn_err_t err = rn_cl_send(cl, conn, &req, RUNNEL__API_KEY__API_METADATA,
                              cl->request_timeout_ms, true, md_answered, mr);
    if (err != RN_OK) {
        free(mr);
        md_finish(cl, err);
    }
}

void rn_cl_md_refresh(rn_cl_t *cl)
{
    cl->md_wanted = true;
    md_maybe_send(cl);
}

rn_err_t rn_cl_md_wait(rn_cl_t *cl, void (*fn)(rn_cl_t *cl, void *arg, rn_err_t err), void *arg)
{
    if (cl->stopping)
        return RN_ERR_CLOSED;
    md_waiter_t *w = malloc(sizeof *w);
    if (!w)
        return RN_ERR_NOMEM;
    w->fn = fn;
    w->arg = arg;
    w->next = cl->waiters;
    cl->waiters = w;
    rn_cl_md_refresh(cl);
    return RN_OK;
}

/* ------------------------------------------------------------------- loop ---- */

uv_loop_t *rn_cl_loop(rn_cl_t *cl) { return &cl->loop; }
int rn_cl_request_timeout_ms(const rn_cl_t *cl) { return cl->request_timeout_ms; }
int rn_cl_retry_backoff_ms(const rn_cl_t *cl) { return cl->retry_backoff_ms; }
bool rn_cl_stopping(const rn_cl_t *cl) { return cl->stopping; }

static void tick_fired(uv_timer_t *t)
{
    rn_cl_t *cl = t->data;
    int64_t now = rn_now_ns();
    for (size_t i = 0; i < cl->n_conns; i++)
        rn_conn_check_timeouts(cl->conns[i], now);
    if (cl->md_last_ok_ns && now - cl->md_last_ok_ns > MD_MAX_AGE_NS)
        rn_cl_md_refresh(cl);
    laters_run(cl, now, false, RN_OK);
    if (cl->hooks.on_tick && !cl->stopping)
        cl->hooks.on_tick(cl->ctx, now);
}

static void do_stop(rn_cl_t *cl)
{
    cl->stopping = true;
    /* Failing the requests first lets their owners see RN_ERR_CLOSED while still whole. */
    for (size_t i = 0; i < cl->n_conns; i++)
        rn_conn_free(cl->conns[i]);
    cl->n_conns = 0;
    cl->n_nodes = 0;
    md_waiter_t *w = cl->waiters;
    cl->waiters = NULL;
    while (w) {
        md_waiter_t *next = w->next;
        w->fn(cl, w->arg, RN_ERR_CLOSED);
        free(w);
        w = next;
    }
    laters_run(cl, 0, true, RN_ERR_CLOSED);
    if (cl->hooks.on_stop)
        cl->hooks.on_stop(cl->ctx);
    uv_close((uv_handle_t *)&cl->tick, NULL);
    uv_close((uv_handle_t *)&cl->md_timer, NULL);
    uv_close((uv_handle_t *)&cl->async, NULL);
}

static void async_fired(uv_async_t *a)
{
    rn_cl_t *cl = a->data;
    if (cl->stopping)
        return;
    uv_mutex_lock(&cl->lock);
    post_t *p = cl->posts_head;
    cl->posts_head = cl->posts_tail = NULL;
    bool stop = cl->stop_requested;
    uv_mutex_unlock(&cl->lock);
    while (p) {
        post_t *next = p->next;
        p->fn(cl, p->arg);
        free(p);
        p = next;
    }
    if (stop) {
        do_stop(cl);
        return;
    }
    if (cl->hooks.on_wake)
        cl->hooks.on_wake(cl->ctx);
}

/* The handle whose loop runs on this thread, so calls from callbacks can tell. */
static _Thread_local const rn_cl_t *current_cl;

bool rn_cl_on_loop(const rn_cl_t *cl)
{
    return current_cl == cl;
}

/* The latest rn_conn_last_io_ns over the handle's connections (rn_busypoll_run). */
static int64_t last_socket_io_ns(void *ctx)
{
    const rn_cl_t *cl = ctx;
    int64_t last = 0;
    for (size_t i = 0; i < cl->n_conns; i++) {
        int64_t t = rn_conn_last_io_ns(cl->conns[i]);
        if (t > last)
            last = t;
    }
    return last;
}

/*
 * The I/O thread blocks every signal: the application's handlers run on its own threads, and
 * a write to a connection the broker has reset (libuv writes with writev, which has no
 * MSG_NOSIGNAL) raises SIGPIPE in the writing thread. Blocked, that SIGPIPE stays pending on
 * this thread and is discarded when it exits; the write fails with EPIPE and the connection
 * fails over as for any other transport error, instead of the default action killing the
 * application.
 */
static void thread_main(void *arg)
{
    rn_cl_t *cl = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    current_cl = cl;
    /* io.busy.poll.us; an idle handle (a consumer whose fetch waits at the broker for
     * fetch.max.wait.ms) stops polling that long after its last request. */
    rn_busypoll_run(&cl->loop, cl->busy_poll_ns, last_socket_io_ns, cl);
}

rn_err_t rn_cl_new(const rn_conf_t *conf, const rn_cl_hooks_t *hooks, void *ctx, rn_cl_t **out,
                   char *errbuf, size_t errlen)
{
    *out = NULL;
    rn_conf_addr_t addrs[MAX_BOOTSTRAP];
    int n = rn_conf_parse_servers(rn_conf_str(conf, "bootstrap.servers"), addrs, MAX_BOOTSTRAP);
    if (n <= 0)
        return fail_msg(RN_ERR_BAD_CONFIG, errbuf, errlen, "bootstrap.servers names no broker");
    if (n > MAX_BOOTSTRAP)
        n = MAX_BOOTSTRAP;
    rn_cl_t *cl = calloc(1, sizeof *cl);
    if (!cl)
        return fail_msg(RN_ERR_NOMEM, errbuf, errlen, "out of memory");
    if (hooks)
        cl->hooks = *hooks;
    cl->ctx = ctx;
    cl->controller_id = -1;
    snprintf(cl->client_id, sizeof cl->client_id, "%s", rn_conf_str(conf, "client.id"));
    cl->request_timeout_ms = (int)rn_conf_int(conf, "request.timeout.ms");
    cl->retry_backoff_ms = (int)rn_conf_int(conf, "retry.backoff.ms");
    cl->busy_poll_ns = rn_conf_int(conf, "io.busy.poll.us") * 1000;
    int64_t frame = rn_conf_int(conf, "fetch.max.bytes") + (64LL << 20);
    cl->max_frame = frame > UINT32_MAX ? UINT32_MAX : (uint32_t)frame;
    if (uv_loop_init(&cl->loop) != 0) {
        free(cl);
        return fail_msg(RN_ERR_NOMEM, errbuf, errlen, "cannot create the event loop");
    }
    uv_mutex_init(&cl->lock);
    uv_cond_init(&cl->call_cond);
    uv_async_init(&cl->loop, &cl->async, async_fired);
    cl->async.data = cl;
    uv_timer_init(&cl->loop, &cl->tick);
    cl->tick.data = cl;
    uv_timer_init(&cl->loop, &cl->md_timer);
    cl->md_timer.data = cl;
    uv_timer_start(&cl->tick, tick_fired, RN_CL_TICK_MS, RN_CL_TICK_MS);
    for (int i = 0; i < n; i++) {
        if (!conn_find_or_add(cl, addrs[i].host, addrs[i].port)) {
            cl->started = false;
            rn_cl_stop(cl);
            rn_cl_free(cl);
            return fail_msg(RN_ERR_NOMEM, errbuf, errlen, "out of memory");
        }
    }
    *out = cl;
    return RN_OK;
}

rn_err_t rn_cl_start(rn_cl_t *cl)
{
    if (uv_thread_create(&cl->thread, thread_main, cl) != 0)
        return RN_ERR_NOMEM;
    cl->started = true;
    return RN_OK;
}

void rn_cl_stop(rn_cl_t *cl)
{
    if (!cl)
        return;
    uv_mutex_lock(&cl->lock);
    bool already = cl->stop_requested;
    cl->stop_requested = true;
    uv_mutex_unlock(&cl->lock);
    if (already)
        return;
    if (cl->started) {
        uv_async_send(&cl->async);
        uv_thread_join(&cl->thread);
    } else {
        /* Never started: this thread may drive the loop itself. */
        post_t *p = cl->posts_head;
        cl->posts_head = cl->posts_tail = NULL;
        while (p) {
            post_t *next = p->next;
            p->fn(cl, p->arg);
            free(p);
            p = next;
        }
        do_stop(cl);
        uv_run(&cl->loop, UV_RUN_DEFAULT);
    }
}

void rn_cl_free(rn_cl_t *cl)
{
    if (!cl)
        return;
    uv_loop_close(&cl->loop);
    uv_mutex_destroy(&cl->lock);
    uv_cond_destroy(&cl->call_cond);
    free(cl->conns);
    free(cl->nodes);
    for (size_t i = 0; i < cl->n_topics; i++) {
        free(cl->topics[i]->name);
        free(cl->topics[i]->parts);
        free(cl->topics[i]);
    }
    free(cl->topics);
    for (size_t i = 0; i < cl->n_wants; i++)
        free(cl->wants[i]);
    free(cl->wants);
    free(cl);
}

bool rn_cl_poll_before_wait(const rn_cl_t *cl, uv_mutex_t *lock, int64_t *until,
                            int64_t deadline)
{
    if (cl->busy_poll_ns <= 0)
        return false;
    int64_t now = rn_now_ns();
    if (!*until)
        *until = now + cl->busy_poll_ns;
    if (now >= *until || now >= deadline)
        return false;
    uv_mutex_unlock(lock);
    sched_yield();
    uv_mutex_lock(lock);
    return true;
}

void rn_cl_wake(rn_cl_t *cl)
{
    uv_async_send(&cl->async);
}

rn_err_t rn_cl_post(rn_cl_t *cl, void (*fn)(rn_cl_t *cl, void *arg), void *arg)
{
    post_t *p = malloc(sizeof *p);
    if (!p)
        return RN_ERR_NOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    uv_mutex_lock(&cl->lock);
    if (cl->stop_requested) {
        uv_mutex_unlock(&cl->lock);
        free(p);
        return RN_ERR_CLOSED;
    }
    if (cl->posts_tail)
        cl->posts_tail->next = p;
    else
        cl->posts_head = p;
    cl->posts_tail = p;
    uv_mutex_unlock(&cl->lock);
    uv_async_send(&cl->async);
    return RN_OK;
}

/* ------------------------------------------------------------------ calls ---- */

void *rn_call_op(rn_call_t *call) { return call->op; }
int64_t rn_call_deadline_ns(const rn_call_t *call) { return call->deadline_ns; }

static void call_start(rn_cl_t *cl, void *arg)
{
    rn_call_t *call = arg;
    call->start(cl, call);
}

rn_err_t rn_cl_call(rn_cl_t *cl, void (*start)(rn_cl_t *cl, rn_call_t *call), void *op,
                    void (*op_free)(void *op), int timeout_ms, bool *abandoned)
{
    *abandoned = false;
    rn_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return RN_ERR_NOMEM;
    call->start = start;
    call->op = op;
    call->op_free = op_free;
    call->deadline_ns = rn_deadline_ns(timeout_ms);
    call->refs = 2;
    rn_err_t err = rn_cl_post(cl, call_start, call);
    if (err != RN_OK) {
        free(call);
        return err;
    }
    uv_mutex_lock(&cl->lock);
    while (!call->done) {
        if (call->deadline_ns == INT64_MAX) {
            uv_cond_wait(&cl->call_cond, &cl->lock);
            continue;
        }
        int64_t left = call->deadline_ns - rn_now_ns();
        if (left <= 0)
            break;
        uv_cond_timedwait(&cl->call_cond, &cl->lock, (uint64_t)left);
    }
    if (call->done) {
        err = call->err;
    } else {
        call->abandoned = true;
        *abandoned = true;
        err = RN_ERR_TIMED_OUT;
    }
    bool last = --call->refs == 0;
    uv_mutex_unlock(&cl->lock);
    if (last)
        free(call);
    return err;
}

void rn_call_done(rn_cl_t *cl, rn_call_t *call, rn_err_t err)
{
    uv_mutex_lock(&cl->lock);
    if (call->done) {
        uv_mutex_unlock(&cl->lock);
        return;
    }
    call->done = true;
    call->err = err;
    bool abandoned = call->abandoned;
    bool last = --call->refs == 0;
    uv_cond_broadcast(&cl->call_cond);
    uv_mutex_unlock(&cl->lock);
    if (abandoned && call->op_free)
        call->op_free(call->op);
    if (last)
        free(call);
}
