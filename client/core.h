/*
 * core.h - what producer, consumer and admin share: the I/O thread with its libuv loop, the
 * connections to brokers, the cluster metadata cache, and the way application threads hand
 * work to the loop and wait for it.
 *
 *   app threads                         I/O thread (one per handle)
 *   -----------                         ---------------------------
 *   rn_cl_wake()  ---- uv_async ---->   hooks.on_wake()
 *   rn_cl_post(fn) -- queue+async -->   fn()
 *   rn_cl_call(start) -- post ------>   start() ... rn_call_done()
 *        waits on a condition  <-----   (signals)
 *                                       hooks.on_metadata() after each metadata answer
 *                                       hooks.on_tick() every RN_CL_TICK_MS
 *
 * Metadata: rn_cl_md_want() adds a topic of interest; rn_cl_md_refresh() asks for a fresh
 * copy soon (coalesced: one request in flight at a time; after a failure the next waits
 * retry.backoff.ms). Requests name the topics of interest, or every topic when there is none.
 * A connection to a known broker that fails also triggers a refresh, since its partitions'
 * leaders may have moved. A metadata request whose broker cannot be reached (refused connect,
 * timeout) is sent again at once to the next bootstrap server or known broker, so one dead
 * broker costs no backoff while another answers; only when every one failed in a row does
 * the attempt fail and the next wait retry.backoff.ms.
 *
 * Leader epochs (KIP-320): the cache keeps each partition's leader_epoch and ignores an entry
 * whose epoch is older than the cached one. Brokers apply leader changes at slightly
 * different times; without the rule, an answer from one that is behind could send the client
 * back to a dead leader.
 */
#ifndef RN_CLIENT_CORE_H
#define RN_CLIENT_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "runnel/runnel.h"
#include "runnel.pb-c.h"

#define RN_CL_TICK_MS 20

typedef struct rn_cl rn_cl_t;

typedef struct rn_cl_hooks {
    void (*on_wake)(void *ctx);
    void (*on_metadata)(void *ctx);
    void (*on_tick)(void *ctx, int64_t now_ns);
    /* The loop is stopping: every connection is already closed and its requests failed. */
    void (*on_stop)(void *ctx);
} rn_cl_hooks_t;

typedef struct rn_cl_part {
    int32_t leader;          /* node id, -1 when none */
    uint32_t leader_epoch;
    rn_err_t err;
} rn_cl_part_t;

typedef struct rn_cl_topic {
    char *name;
    rn_err_t err;            /* RN_OK, or why the topic is unusable (UNKNOWN_TOPIC_OR_PARTITION…) */
    int32_t partition_count;
    rn_cl_part_t *parts;
    uint8_t topic_id[16];    /* cluster mode: which topic of that name (all zero: unknown) */
    bool has_id;
} rn_cl_topic_t;

/*
 * Reads the shared keys of conf (bootstrap.servers, client.id, request.timeout.ms,
 * retry.backoff.ms, fetch.max.bytes) and prepares the loop; the thread starts with
 * rn_cl_start. hooks may have NULL members.
 */
rn_err_t rn_cl_new(const rn_conf_t *conf, const rn_cl_hooks_t *hooks, void *ctx, rn_cl_t **out,
                   char *errbuf, size_t errlen);
rn_err_t rn_cl_start(rn_cl_t *cl);
/* App thread: closes every connection, runs hooks.on_stop on the loop, joins the thread. */
void rn_cl_stop(rn_cl_t *cl);
/* After rn_cl_stop (or when never started). */
void rn_cl_free(rn_cl_t *cl);

/* Any thread. */
void rn_cl_wake(rn_cl_t *cl);
/*
 * io.busy.poll.us for an application thread about to sleep on a condition under lock (the
 * flush, the consumer's poll): while the handle's polling window lasts (it starts at the first
 * call, with *until 0) and deadline has not passed, releases lock, yields the CPU, takes lock
 * again and returns true, and the caller looks at its condition again; false (always, when
 * io.busy.poll.us is 0): the caller sleeps. Any thread.
 */
bool rn_cl_poll_before_wait(const rn_cl_t *cl, uv_mutex_t *lock, int64_t *until,
                            int64_t deadline);
/* True when called on cl's I/O thread (from inside a callback the library runs). */
bool rn_cl_on_loop(const rn_cl_t *cl);
/* Any thread: runs fn(cl, arg) on the loop thread. RN_ERR_CLOSED once stopping (fn not run). */
rn_err_t rn_cl_post(rn_cl_t *cl, void (*fn)(rn_cl_t *cl, void *arg), void *arg);

/* ---- loop thread only ---- */
uv_loop_t *rn_cl_loop(rn_cl_t *cl);
int rn_cl_request_timeout_ms(const rn_cl_t *cl);
int rn_cl_retry_backoff_ms(const rn_cl_t *cl);
bool rn_cl_stopping(const rn_cl_t *cl);

/* The connection to broker node_id (connecting lazily); NULL when the broker is unknown. */
rn_conn_t *rn_cl_conn_for_node(rn_cl_t *cl, int32_t node_id);
/* The best connection for a request any broker can answer (up first, then connecting…). */
rn_conn_t *rn_cl_conn_any(rn_cl_t *cl);
/* Fills req's header (api, version 0, client id) and sends it on conn; see rn_conn_send. */
rn_err_t rn_cl_send(rn_cl_t *cl, rn_conn_t *conn, Runnel__Request *req, Runnel__ApiKey api,
                    int timeout_ms, bool expect_response, rn_conn_resp_cb cb, void *ctx);

/*
 * How a client retries an error from a broker or the transport (docs/cluster.md §7):
 * RN_CL_RETRY_REFRESH when the leader, its epoch, the ISR or the active controller may have
 * changed (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, FENCED_/UNKNOWN_LEADER_EPOCH,
 * NOT_ENOUGH_REPLICAS[_AFTER_APPEND], REQUEST_TIMED_OUT, NOT_CONTROLLER, a failed connection…):
 * back off retry.backoff.ms, refresh metadata (rn_cl_md_refresh coalesces), retry.
 * RN_CL_RETRY for the other retriable errors: back off and retry. RN_CL_FAIL: report it.
 * Any thread.
 */
typedef enum rn_cl_retry { RN_CL_FAIL, RN_CL_RETRY, RN_CL_RETRY_REFRESH } rn_cl_retry_t;
rn_cl_retry_t rn_cl_retry_kind(rn_err_t err);

/* Runs fn(cl, arg, RN_OK) on the loop after about delay_ms (tick granularity), or with
 * RN_ERR_CLOSED when the loop stops first. RN_ERR_NOMEM / RN_ERR_CLOSED: fn never runs. */
rn_err_t rn_cl_later(rn_cl_t *cl, int delay_ms, void (*fn)(rn_cl_t *cl, void *arg, rn_err_t err),
                     void *arg);

void rn_cl_md_want(rn_cl_t *cl, const char *topic);
void rn_cl_md_refresh(rn_cl_t *cl);
/* The topic as of the latest metadata; NULL when no metadata named it yet. */
const rn_cl_topic_t *rn_cl_md_topic(rn_cl_t *cl, const char *name);
/* The active controller's node id as of the latest metadata; -1 before any. */
/* True when the last Metadata came from a cluster (it named a cluster id); a single node
 * answers admin calls on any connection, the one the caller bootstrapped with. */
bool rn_cl_md_clustered(const rn_cl_t *cl);
int32_t rn_cl_md_controller(const rn_cl_t *cl);
/*
 * Applies a Metadata answer to the cache (named: the request named the topics of interest,
 * so a topic it leaves out does not exist). What md_answered does; exposed for unit tests of
 * the cache's rules, which drive it without a broker.
 */
void rn_cl_md_apply(rn_cl_t *cl, const Runnel__MetadataResponse *m, bool named);
/* Bumped by each applied metadata answer. */
uint64_t rn_cl_md_version(const rn_cl_t *cl);
/* The error of the latest metadata attempt (RN_OK after a success). */
rn_err_t rn_cl_md_last_err(const rn_cl_t *cl);
/* Runs fn(cl, arg, err) once, after the next metadata attempt finishes (err its outcome). */
rn_err_t rn_cl_md_wait(rn_cl_t *cl, void (*fn)(rn_cl_t *cl, void *arg, rn_err_t err), void *arg);

/* ---- synchronous calls from application threads ---- */

typedef struct rn_call rn_call_t;

/*
 * App thread: runs start(cl, call) on the loop thread and waits up to timeout_ms (-1: no
 * limit) until the loop side calls rn_call_done, whose error it returns. When the wait runs
 * out first it returns RN_ERR_TIMED_OUT and sets *abandoned: the loop side keeps going and
 * frees op with op_free when it finishes. Otherwise op belongs to the caller again and holds
 * the results.
 */
rn_err_t rn_cl_call(rn_cl_t *cl, void (*start)(rn_cl_t *cl, rn_call_t *call), void *op,
                    void (*op_free)(void *op), int timeout_ms, bool *abandoned);
/* Loop thread. */
void *rn_call_op(rn_call_t *call);
/* Monotonic ns by which the caller stops waiting (INT64_MAX: never). */
int64_t rn_call_deadline_ns(const rn_call_t *call);
void rn_call_done(rn_cl_t *cl, rn_call_t *call, rn_err_t err);

/* Monotonic deadline for a timeout in ms (-1: INT64_MAX). */
int64_t rn_deadline_ns(int timeout_ms);
/* Milliseconds left until deadline_ns (0 when past, -1 for INT64_MAX), for cond waits. */
int rn_ms_left(int64_t deadline_ns);

#endif
