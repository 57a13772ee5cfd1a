/*
 * fetcher.c - the follower side of replication (docs/cluster.md §5.1, §5.4): one fetcher per
 * leader broker, a state machine on the loop with one request in flight on one connection.
 *
 * Each followed partition is first F_TRUNCATE: when its epoch cache has an epoch, the fetcher
 * asks the leader OffsetForLeaderEpoch(latest epoch) and truncates to rn_lep_truncation_point
 * (asking again until the answer is final, KIP-279); then F_FETCH: Fetch from the log end with
 * replica_id = this broker, appending what comes with rn_part_append_replica (offsets and
 * epochs kept) and taking min(leader HW, log end) as its own HW. Errors back the partition off
 * (a short wait when the leader has not applied the new epoch yet); a transport error backs
 * the whole fetcher off and reconnects.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/conn.h"
#include "clock.h"
#include "logging.h"
#include "members.h"
#include "repl_int.h"

#define EPOCH_LAG_BACKOFF_MS 10
#define MAX_PARTS_PER_REQUEST 4096

static void kick(struct fetcher *f);

struct fetcher {
    struct fetcher *next;
    rn_repl_t *r;
    int32_t leader;
    rn_conn_t *conn;
    bool in_flight;
    int64_t retry_at_ms;
    rpart_t *parts;
    uv_timer_t timer;              /* wakes the fetcher when a backoff ends */
};

static void on_fetcher_timer(uv_timer_t *t)
{
    struct fetcher *f = t->data;
    kick(f);
}

/* Wakes f when its earliest backoff (its own or a partition's) ends. */
static void arm(struct fetcher *f, int64_t now)
{
    int64_t at = f->retry_at_ms > now ? f->retry_at_ms : INT64_MAX;
    for (rpart_t *rp = f->parts; rp; rp = rp->fnext)
        if (rp->retry_at_ms > now && rp->retry_at_ms < at)
            at = rp->retry_at_ms;
    if (at != INT64_MAX)
        uv_timer_start(&f->timer, on_fetcher_timer, (uint64_t)(at - now), 0);
}



static struct fetcher *fetcher_for(rn_repl_t *r, int32_t leader)
{
    for (struct fetcher *f = r->fetchers; f; f = f->next)
        if (f->leader == leader)
            return f;
    struct fetcher *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->r = r;
    f->leader = leader;
    uv_timer_init(r->loop, &f->timer);
    f->timer.data = f;
    f->next = r->fetchers;
    r->fetchers = f;
    return f;
}

void rn_repl__follow(rpart_t *rp)
{
    struct fetcher *f = fetcher_for(rp->r, rp->leader);
    if (!f)
        return;
    rp->fetcher = f;
    rp->fstate = F_TRUNCATE;
    rp->retry_at_ms = 0;
    rp->fnext = f->parts;
    f->parts = rp;
    uint64_t end = rn_log_end_offset(rn_part_log(rp->part));
    if (rp->hw > end)
        rp->hw = end;
    RN_INFO("repl", "%s-%" PRIu32 ": follower of %" PRId32 " in epoch %" PRIu32 " from offset %"
            PRIu64, rp->topic, rp->partition, rp->leader, rp->leader_epoch, end);
    kick(f);
}

void rn_repl__unfollow(rpart_t *rp)
{
    struct fetcher *f = rp->fetcher;
    if (!f)
        return;
    for (rpart_t **pp = &f->parts; *pp; pp = &(*pp)->fnext)
        if (*pp == rp) {
            *pp = rp->fnext;
            break;
        }
    rp->fetcher = NULL;
    rp->fnext = NULL;
}

static rn_conn_t *conn_for(struct fetcher *f)
{
    const rn_img_broker_t *b = rn_img_broker(f->r->img, f->leader);
    if (!b)
        return NULL;
    if (f->conn && (strcmp(rn_conn_host(f->conn), b->host) != 0 ||
                    rn_conn_port(f->conn) != (int)b->port)) {
        if (f->in_flight)
            return NULL; /* its callback runs first */
        rn_conn_free(f->conn);
        f->conn = NULL;
    }
    if (!f->conn) {
        rn_conn_opts_t co = {.max_frame = f->r->max_frame, .connect_timeout_ms = 2000};
        f->conn = rn_conn_new(f->r->loop, b->host, (int)b->port, &co);
    }
    return f->conn;
}

static void backoff_part(rpart_t *rp, int64_t ms)
{
    rp->retry_at_ms = rn_repl__now_ms() + ms;
}

static bool part_ready(rpart_t *rp, int64_t now)
{
    return rp->retry_at_ms <= now;
}

/* Moves the partitions up to and including last to the end of f's list, so a request capped
 * at MAX_PARTS_PER_REQUEST does not always take the same ones. */
static void rotate_after(struct fetcher *f, rpart_t *last)
{
    if (!last || !last->fnext)
        return;
    rpart_t *head = f->parts, *tail = last->fnext;
    while (tail->fnext)
        tail = tail->fnext;
    f->parts = last->fnext;
    last->fnext = NULL;
    tail->fnext = head;
}

/* ------------------------------------------------------------ truncation ---- */

static void on_epochs(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    struct fetcher *f = ctx;
    f->in_flight = false;
    rn_repl_t *r = f->r;
    if (r->stopped) {
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        return;
    }
    if (err != RN_OK || resp->body_case != RUNNEL__RESPONSE__BODY_OFFSET_FOR_LEADER_EPOCH) {
        RN_DEBUG("repl", "OffsetForLeaderEpoch to broker %" PRId32 " failed: %s", f->leader,
                 err != RN_OK ? rn_err_name(err) : resp->error_message);
        f->retry_at_ms = rn_repl__now_ms() + r->fetch_backoff_ms;
        for (rpart_t *rp = f->parts; rp; rp = rp->fnext)
            if (rp->fstate == F_TRUNCATING)
                rp->fstate = F_TRUNCATE;
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        kick(f); /* arms the backoff */
        return;
    }
    const Runnel__OffsetForLeaderEpochResponse *o = resp->offset_for_leader_epoch;
    for (size_t i = 0; i < o->n_topics; i++) {
        for (size_t j = 0; j < o->topics[i]->n_partitions; j++) {
            const Runnel__EpochEndOffset *e = o->topics[i]->partitions[j];
            rpart_t *rp = rn_repl__find(r, o->topics[i]->name, e->partition);
            if (!rp || rp->fetcher != f || rp->fstate != F_TRUNCATING)
                continue;
            rp->fstate = F_TRUNCATE;
            if (e->error != 0) {
                backoff_part(rp, e->error == RUNNEL__ERROR_CODE__ERR_UNKNOWN_LEADER_EPOCH ||
                                         e->error == RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER
                                     ? EPOCH_LAG_BACKOFF_MS : r->fetch_backoff_ms);
                continue;
            }
            rn_log_t *log = rn_part_log(rp->part);
            uint64_t end = rn_log_end_offset(log);
            if (e->leader_epoch < 0) {
                /* KIP-101's fallback: nothing here above the high watermark is known to be
                 * the leader's (after a restart the HW is 0: everything is fetched again). */
                RN_WARN("repl", "%s-%" PRIu32 ": the leader has no epoch at or below ours; "
                        "truncating to the high watermark %" PRIu64, rp->topic, rp->partition,
                        rp->hw);
                rn_err_t te = rn_part_truncate(rp->part, rp->hw);
                if (te != RN_OK && rn_log_end_offset(log) != rp->hw) {
                    backoff_part(rp, te == RN_ERR_AGAIN ? EPOCH_LAG_BACKOFF_MS
                                                        : r->fetch_backoff_ms);
                    continue;
                }
                rp->fstate = F_FETCH;
                continue;
            }
            rn_lep_answer_t a = {.epoch = (uint32_t)e->leader_epoch,
                                 .end_offset = (uint64_t)e->end_offset};
            bool done = false;
            uint64_t point = rn_lep_truncation_point(rn_log_epochs(log), end, &a, &done);
            if (point < end) {
                rn_err_t te = rn_part_truncate(rp->part, point);
                if (te != RN_OK && rn_log_end_offset(log) != point) {
                    if (te != RN_ERR_AGAIN)
                        RN_ERROR("repl", "%s-%" PRIu32 ": cannot truncate to %" PRIu64 ": %s",
                                 rp->topic, rp->partition, point, rn_err_str(te));
                    backoff_part(rp, te == RN_ERR_AGAIN ? EPOCH_LAG_BACKOFF_MS
                                                        : r->fetch_backoff_ms);
                    continue;
                }
                if (rp->hw > point)
                    rp->hw = point;
            }
            if (done) {
                rp->fstate = F_FETCH;
            } else if (point >= rn_log_end_offset(log)) {
                /* KIP-279 round that cut nothing: our newest epochs start at the end and hold
                 * no batch; drop them so the next question is about an older epoch. */
                rn_err_t de = rn_log_drop_epochs_from(log, rn_log_end_offset(log));
                if (de != RN_OK) {
                    RN_ERROR("repl", "%s-%" PRIu32 ": cannot rewrite the epoch cache: %s",
                             rp->topic, rp->partition, rn_err_str(de));
                    backoff_part(rp, r->fetch_backoff_ms);
                }
            }
        }
    }
    runnel__response__free_unpacked(resp, NULL);
    kick(f);
}

/* Sends OffsetForLeaderEpoch for the partitions that must truncate first; true if sent. */
static bool send_epochs(struct fetcher *f, rn_conn_t *c, int64_t now)
{
    rn_repl_t *r = f->r;
    size_t n = 0;
    for (rpart_t *rp = f->parts; rp; rp = rp->fnext) {
        if (rp->fstate != F_TRUNCATE || !part_ready(rp, now))
            continue;
        rn_lep_entry_t latest;
        if (!rn_lep_latest(rn_log_epochs(rn_part_log(rp->part)), &latest)) {
            rp->fstate = F_FETCH; /* an empty log has nothing to diverge */
            continue;
        }
        n++;
    }
    if (n == 0)
        return false;
    if (n > MAX_PARTS_PER_REQUEST)
        n = MAX_PARTS_PER_REQUEST;
    Runnel__OffsetForLeaderEpochTopic *topics = calloc(n, sizeof *topics);
    Runnel__OffsetForLeaderEpochTopic **tps = calloc(n, sizeof *tps);
    Runnel__OffsetForLeaderEpochPartition *parts = calloc(n, sizeof *parts);
    Runnel__OffsetForLeaderEpochPartition **pps = calloc(n, sizeof *pps);
    rpart_t **sent = calloc(n, sizeof *sent);
    bool ok = topics && tps && parts && pps && sent;
    size_t k = 0;
    for (rpart_t *rp = f->parts; rp && ok && k < n; rp = rp->fnext) {
        if (rp->fstate != F_TRUNCATE || !part_ready(rp, now))
            continue;
        rn_lep_entry_t latest;
        rn_lep_latest(rn_log_epochs(rn_part_log(rp->part)), &latest);
        runnel__offset_for_leader_epoch_topic__init(&topics[k]);
        runnel__offset_for_leader_epoch_partition__init(&parts[k]);
        topics[k].name = rp->topic;
        parts[k].partition = rp->partition;
        parts[k].current_leader_epoch = (int32_t)rp->leader_epoch;
        parts[k].leader_epoch = latest.epoch;
        pps[k] = &parts[k];
        topics[k].partitions = &pps[k];
        topics[k].n_partitions = 1;
        tps[k] = &topics[k];
        sent[k++] = rp;
    }
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_OFFSET_FOR_LEADER_EPOCH;
    h.client_id = (char *)"runnel-replica";
    Runnel__OffsetForLeaderEpochRequest o = RUNNEL__OFFSET_FOR_LEADER_EPOCH_REQUEST__INIT;
    o.replica_id = r->node_id;
    o.topics = tps;
    o.n_topics = k;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    req.body_case = RUNNEL__REQUEST__BODY_OFFSET_FOR_LEADER_EPOCH;
    req.offset_for_leader_epoch = &o;
    if (ok && rn_conn_send(c, &req, 5000, true, on_epochs, f) == RN_OK) {
        f->in_flight = true;
        for (size_t i = 0; i < k; i++)
            sent[i]->fstate = F_TRUNCATING;
        if (k == MAX_PARTS_PER_REQUEST)
            rotate_after(f, sent[k - 1]);
    }
    free(topics);
    free(tps);
    free(parts);
    free(pps);
    free(sent);
    return ok;
}

/* ---------------------------------------------------------------- fetching ---- */

static void on_fetched(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    struct fetcher *f = ctx;
    f->in_flight = false;
    rn_repl_t *r = f->r;
    if (r->stopped) {
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        return;
    }
    if (err != RN_OK || resp->body_case != RUNNEL__RESPONSE__BODY_FETCH) {
        RN_DEBUG("repl", "fetch from broker %" PRId32 " failed: %s", f->leader,
                 err != RN_OK ? rn_err_name(err) : resp->error_message);
        f->retry_at_ms = rn_repl__now_ms() + r->fetch_backoff_ms;
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        kick(f); /* arms the backoff */
        return;
    }
    const Runnel__FetchResponse *fr = resp->fetch;
    for (size_t i = 0; i < fr->n_topics; i++) {
        for (size_t j = 0; j < fr->topics[i]->n_partitions; j++) {
            const Runnel__FetchPartitionData *pd = fr->topics[i]->partitions[j];
            rpart_t *rp = rn_repl__find(r, fr->topics[i]->name, pd->partition);
            if (!rp || rp->fetcher != f || rp->fstate != F_FETCH)
                continue;
            uint64_t leo = rn_log_end_offset(rn_part_log(rp->part));
            if (pd->error == RUNNEL__ERROR_CODE__ERR_OFFSET_OUT_OF_RANGE &&
                pd->log_start_offset > 0 && (uint64_t)pd->log_start_offset > leo) {
                /* Away longer than the leader's retention: start over at its log start. */
                rn_err_t re = rn_part_reset(rp->part, (uint64_t)pd->log_start_offset);
                if (re == RN_OK) {
                    rp->hw = (uint64_t)pd->log_start_offset;
                    continue;
                }
                RN_WARN("repl", "%s-%" PRIu32 ": cannot reset to the leader's log start %" PRId64
                        ": %s", rp->topic, rp->partition, pd->log_start_offset, rn_err_str(re));
                backoff_part(rp, re == RN_ERR_AGAIN ? EPOCH_LAG_BACKOFF_MS : r->fetch_backoff_ms);
                continue;
            }
            if (pd->error != 0) {
                rn_err_t e = (rn_err_t)pd->error;
                RN_DEBUG("repl", "%s-%" PRIu32 ": fetch from %" PRId32 ": %s", rp->topic,
                         rp->partition, f->leader, rn_err_name(e));
                backoff_part(rp, e == RN_ERR_UNKNOWN_LEADER_EPOCH ||
                                         e == RN_ERR_NOT_LEADER_OR_FOLLOWER
                                     ? EPOCH_LAG_BACKOFF_MS : r->fetch_backoff_ms);
                continue;
            }
            if (pd->records.len) {
                uint64_t target;
                rn_err_t ae = rn_part_append_replica(rp->part, pd->records.data, pd->records.len,
                                                     &target);
                if (ae != RN_OK) {
                    RN_WARN("repl", "%s-%" PRIu32 ": cannot append %zu bytes from leader %" PRId32
                            ": %s", rp->topic, rp->partition, pd->records.len, f->leader,
                            rn_err_str(ae));
                    backoff_part(rp, r->fetch_backoff_ms);
                    continue;
                }
            }
            uint64_t end = rn_log_end_offset(rn_part_log(rp->part));
            uint64_t hw = pd->high_watermark > 0 ? (uint64_t)pd->high_watermark : 0;
            rp->hw = hw < end ? hw : end;
        }
    }
    runnel__response__free_unpacked(resp, NULL);
    kick(f);
}

static bool send_fetch(struct fetcher *f, rn_conn_t *c, int64_t now)
{
    rn_repl_t *r = f->r;
    size_t n = 0;
    for (rpart_t *rp = f->parts; rp; rp = rp->fnext)
        n += rp->fstate == F_FETCH && part_ready(rp, now);
    if (n == 0)
        return false;
    if (n > MAX_PARTS_PER_REQUEST)
        n = MAX_PARTS_PER_REQUEST;
    Runnel__FetchTopic *topics = calloc(n, sizeof *topics);
    Runnel__FetchTopic **tps = calloc(n, sizeof *tps);
    Runnel__FetchPartition *parts = calloc(n, sizeof *parts);
    Runnel__FetchPartition **pps = calloc(n, sizeof *pps);
    bool ok = topics && tps && parts && pps;
    size_t k = 0;
    rpart_t *last = NULL;
    for (rpart_t *rp = f->parts; rp && ok && k < n; rp = rp->fnext) {
        if (rp->fstate != F_FETCH || !part_ready(rp, now))
            continue;
        last = rp;
        runnel__fetch_topic__init(&topics[k]);
        runnel__fetch_partition__init(&parts[k]);
        topics[k].name = rp->topic;
        parts[k].partition = rp->partition;
        parts[k].fetch_offset = (int64_t)rn_log_end_offset(rn_part_log(rp->part));
        parts[k].partition_max_bytes = r->fetch_max_bytes;
        parts[k].current_leader_epoch = (int32_t)rp->leader_epoch;
        pps[k] = &parts[k];
        topics[k].partitions = &pps[k];
        topics[k].n_partitions = 1;
        tps[k] = &topics[k];
        k++;
    }
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_FETCH;
    h.client_id = (char *)"runnel-replica";
    Runnel__FetchRequest fq = RUNNEL__FETCH_REQUEST__INIT;
    fq.replica_id = r->node_id;
    fq.replica_epoch = rn_mem_own_epoch(r->mem);
    fq.max_wait_ms = r->fetch_wait_max_ms;
    fq.min_bytes = 1;
    fq.max_bytes = r->fetch_max_bytes * 4;
    fq.topics = tps;
    fq.n_topics = k;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH;
    req.fetch = &fq;
    if (ok && rn_conn_send(c, &req, (int)r->fetch_wait_max_ms + 5000, true, on_fetched, f) ==
                  RN_OK) {
        f->in_flight = true;
        if (k == MAX_PARTS_PER_REQUEST)
            rotate_after(f, last);
    }
    free(topics);
    free(tps);
    free(parts);
    free(pps);
    return ok;
}

/* Sends the fetcher's next request when none is in flight and it is not backing off. */
static void kick(struct fetcher *f)
{
    int64_t now = rn_repl__now_ms();
    if (f->in_flight || !f->parts || f->r->stopped)
        return;
    if (f->retry_at_ms > now) {
        arm(f, now);
        return;
    }
    rn_conn_t *c = conn_for(f);
    if (!c)
        return;
    rn_conn_check_timeouts(c, rn_now_ns());
    if (f->in_flight)
        return;
    if (!send_epochs(f, c, now) || !f->in_flight)
        send_fetch(f, c, now);
    if (!f->in_flight)
        arm(f, now); /* every partition is backing off */
}

void rn_repl__fetchers_tick(rn_repl_t *r)
{
    for (struct fetcher *f = r->fetchers; f; f = f->next) {
        if (f->in_flight && f->conn)
            rn_conn_check_timeouts(f->conn, rn_now_ns());
        kick(f);
    }
}

static void on_fetcher_closed(uv_handle_t *h)
{
    free(h->data);
}

void rn_repl__fetchers_free(rn_repl_t *r)
{
    while (r->fetchers) {
        struct fetcher *f = r->fetchers;
        r->fetchers = f->next;
        f->in_flight = false;
        if (f->conn) {
            rn_conn_t *c = f->conn;
            f->conn = NULL;
            f->r = r;
            rn_conn_free(c); /* fails the outstanding request: its callback sees r->stopped */
        }
        uv_close((uv_handle_t *)&f->timer, on_fetcher_closed);
    }
}
