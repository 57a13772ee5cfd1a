/* repl.c - roles, the publisher and the leader side of replication (see repl.h); the
 * follower side is in fetcher.c, what both share in repl_int.h. */
#include "repl.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsutil.h"
#include "fetch.h"
#include "logging.h"
#include "members.h"
#include "repl_int.h"

#define TICK_MS 100
#define ALTER_TIMEOUT_MS 5000
#define ALTER_RETRY_MS 500
#define DEFAULT_ACKS_TIMEOUT_MS 30000

int64_t rn_repl__now_ms(void)
{
    return rn_now_ns() / 1000000;
}

static bool has(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* ------------------------------------------------------------ leader side ---- */

static struct rfol *fol(rpart_t *rp, int32_t id)
{
    for (uint32_t i = 0; i < rp->n_replicas; i++)
        if (rp->fol[i].id == id)
            return &rp->fol[i];
    return NULL;
}

static uint32_t min_insync(const rpart_t *rp)
{
    rn_topic_t *t = rn_topics_find(rp->r->topics, rp->topic);
    return t ? rn_topic_config(t)->min_insync_replicas : 1;
}

/* Completes the acks=all waiters the HW passed (or all of them with err). */
static void complete_waiters(rpart_t *rp, bool all, rn_err_t err)
{
    uint32_t need = min_insync(rp);
    while (rp->waiters && (all || rp->waiters->end <= rp->hw)) {
        struct hwait *w = rp->waiters;
        rp->waiters = w->next;
        if (!rp->waiters)
            rp->waiters_tail = &rp->waiters;
        rn_err_t e = all ? err : rp->n_isr < need ? RN_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND : RN_OK;
        w->cb(w->arg, e);
        free(w);
    }
}

static void expire_waiters(rpart_t *rp, int64_t now)
{
    struct hwait **pp = &rp->waiters;
    while (*pp) {
        struct hwait *w = *pp;
        if (w->deadline_ms > now) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->cb(w->arg, RN_ERR_REQUEST_TIMED_OUT);
        free(w);
    }
    rp->waiters_tail = &rp->waiters;
    while (*rp->waiters_tail)
        rp->waiters_tail = &(*rp->waiters_tail)->next;
}

/* The HW over the ISR (and members being added); moves forward only. */
static void update_hw(rpart_t *rp)
{
    if (rp->role != ROLE_LEADER)
        return;
    uint64_t hw = rn_log_end_offset(rn_part_log(rp->part));
    for (uint32_t i = 0; i < rp->n_replicas; i++) {
        struct rfol *f = &rp->fol[i];
        if (f->id == rp->r->node_id)
            continue;
        bool counts = has(rp->isr, rp->n_isr, f->id) ||
                      (rp->alter_in_flight && has(rp->pending_isr, rp->n_pending_isr, f->id));
        if (!counts)
            continue;
        if (f->leo < 0)
            return; /* not fetched in this epoch yet: the HW waits */
        if ((uint64_t)f->leo < hw)
            hw = (uint64_t)f->leo;
    }
    if (hw <= rp->hw)
        return;
    rp->hw = hw;
    complete_waiters(rp, false, RN_OK);
    if (rp->r->fetch)
        rn_fetch_poke(rp->r->fetch);
}

struct alter {
    rn_repl_t *r;
    uint8_t topic_id[RN_IMG_ID_LEN];
    char topic[RN_REPL_TOPIC_MAX];
    uint32_t partition;
    uint32_t leader_epoch;
};

static void on_altered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    struct alter *a = ctx;
    rpart_t *rp = a->r->stopped ? NULL : rn_repl__find(a->r, a->topic, a->partition);
    if (rp && rp->leader_epoch == a->leader_epoch &&
        memcmp(rp->topic_id, a->topic_id, RN_IMG_ID_LEN) == 0) {
        rp->alter_in_flight = false;
        const Runnel__AlterPartitionResponse *ar =
            err == RN_OK && resp->body_case == RUNNEL__RESPONSE__BODY_ALTER_PARTITION
                ? resp->alter_partition : NULL;
        rn_err_t e = err != RN_OK ? err : ar ? (rn_err_t)ar->error : (rn_err_t)resp->error;
        if (e == RN_OK && ar && ar->leader_epoch == rp->leader_epoch &&
            ar->partition_epoch >= rp->partition_epoch && ar->n_isr <= RN_REPL_MAX_REPLICAS) {
            /* The image brings the same state soon; take it now so the HW can use it. */
            if (ar->n_isr < rp->n_isr)
                a->r->isr_shrinks++;
            else if (ar->n_isr > rp->n_isr)
                a->r->isr_expands++;
            memcpy(rp->isr, ar->isr, ar->n_isr * sizeof *rp->isr);
            rp->n_isr = (uint32_t)ar->n_isr;
            rp->partition_epoch = ar->partition_epoch;
            RN_INFO("repl", "%s-%" PRIu32 ": ISR now has %" PRIu32 " member(s) (partition epoch %"
                    PRIu32 ")", rp->topic, rp->partition, rp->n_isr, rp->partition_epoch);
            update_hw(rp);
        } else if (e != RN_OK) {
            /* the image brings the reason (a newer state, our fencing) soon; ask again later */
            rp->alter_retry_ms = rn_repl__now_ms() + ALTER_RETRY_MS;
            RN_INFO("repl", "%s-%" PRIu32 ": ISR change not made: %s (next try in %d ms)",
                    rp->topic, rp->partition, rn_err_name(e), ALTER_RETRY_MS);
        }
    }
    if (resp)
        runnel__response__free_unpacked(resp, NULL);
    free(a);
}

/* Proposes new_isr for rp through the active controller (one change in flight). */
static void propose_isr(rpart_t *rp, const int32_t *new_isr, uint32_t n)
{
    rn_repl_t *r = rp->r;
    if (rp->alter_in_flight)
        return;
    struct alter *a = calloc(1, sizeof *a);
    if (!a)
        return;
    a->r = r;
    snprintf(a->topic, sizeof a->topic, "%s", rp->topic);
    memcpy(a->topic_id, rp->topic_id, RN_IMG_ID_LEN);
    a->partition = rp->partition;
    a->leader_epoch = rp->leader_epoch;
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_ALTER_PARTITION;
    h.client_id = (char *)"runnel-broker";
    Runnel__AlterPartitionRequest ap = RUNNEL__ALTER_PARTITION_REQUEST__INIT;
    ap.broker_id = r->node_id;
    ap.broker_epoch = rn_mem_own_epoch(r->mem);
    ap.topic = rp->topic;
    ap.partition = rp->partition;
    ap.leader_epoch = rp->leader_epoch;
    ap.partition_epoch = rp->partition_epoch;
    ap.new_isr = (int32_t *)new_isr;
    ap.n_new_isr = n;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    req.body_case = RUNNEL__REQUEST__BODY_ALTER_PARTITION;
    req.alter_partition = &ap;
    if (rn_mem_send_controller(r->mem, &req, ALTER_TIMEOUT_MS, on_altered, a) != RN_OK) {
        free(a);
        return;
    }
    rp->alter_in_flight = true;
    memcpy(rp->pending_isr, new_isr, n * sizeof *new_isr);
    rp->n_pending_isr = n;
}

static bool unfenced_here(const rn_repl_t *r, int32_t id)
{
    const rn_img_broker_t *b = rn_img_broker(r->img, id);
    return b && !b->fenced;
}

/* Shrink: ISR followers not caught up for replica.lag.time.max.ms; expand: caught-up others. */
static void check_isr(rpart_t *rp, int64_t now)
{
    if (rp->role != ROLE_LEADER || rp->alter_in_flight || now < rp->alter_retry_ms)
        return;
    int32_t next[RN_REPL_MAX_REPLICAS];
    uint32_t n = 0;
    bool change = false;
    for (uint32_t i = 0; i < rp->n_isr; i++) {
        struct rfol *f = fol(rp, rp->isr[i]);
        if (rp->isr[i] != rp->r->node_id && f && now - f->caught_up_ms > rp->r->lag_time_max_ms) {
            RN_INFO("repl", "%s-%" PRIu32 ": follower %" PRId32 " has not caught up for %" PRId64
                    " ms (replica.lag.time.max.ms): proposing it out of the ISR", rp->topic,
                    rp->partition, rp->isr[i], now - f->caught_up_ms);
            change = true;
            continue;
        }
        next[n++] = rp->isr[i];
    }
    for (uint32_t i = 0; i < rp->n_replicas && !change; i++) {
        struct rfol *f = &rp->fol[i];
        if (has(rp->isr, rp->n_isr, f->id) || f->leo < 0 || (uint64_t)f->leo < rp->hw ||
            (uint64_t)f->leo < rp->epoch_start || !unfenced_here(rp->r, f->id))
            continue;
        RN_INFO("repl", "%s-%" PRIu32 ": follower %" PRId32 " caught up: proposing it into the ISR",
                rp->topic, rp->partition, f->id);
        next[n++] = f->id;
        change = true;
    }
    if (change)
        propose_isr(rp, next, n);
}

/* A follower fetched at offset: its log end. */
static void follower_fetched(rpart_t *rp, int32_t id, int64_t offset)
{
    struct rfol *f = fol(rp, id);
    if (!f)
        return;
    int64_t now = rn_repl__now_ms();
    uint64_t end = rn_log_end_offset(rn_part_log(rp->part));
    f->leo = offset;
    /* Kafka's rule: caught up when at the end now, or at least where the end was when the
     * previous fetch was answered (as of then) - under load there is always a newer append. */
    if ((uint64_t)offset >= end)
        f->caught_up_ms = now;
    else if (f->last_fetch_ms && (uint64_t)offset >= f->last_fetch_end)
        f->caught_up_ms = f->last_fetch_ms;
    f->last_fetch_end = end;
    f->last_fetch_ms = now;
    update_hw(rp);
    if (!has(rp->isr, rp->n_isr, id))
        check_isr(rp, now);
}

static void on_tick(uv_timer_t *t)
{
    rn_repl_t *r = t->data;
    int64_t now = rn_repl__now_ms();
    for (rpart_t *rp = r->parts; rp; rp = rp->next) {
        if (rp->role != ROLE_LEADER)
            continue;
        check_isr(rp, now);
        update_hw(rp); /* an ISR of the leader alone follows the log end */
        expire_waiters(rp, now);
    }
    rn_repl__fetchers_tick(r);
    if (now - r->hw_written_ms >= r->hw_interval_ms) {
        r->hw_written_ms = now;
        rn_repl__hw_write(r);
    }
}

/* ----------------------------------------------------------------- roles ---- */

static void become_leader(rpart_t *rp, const rn_img_partition_t *ps)
{
    rn_log_t *log = rn_part_log(rp->part);
    rn_err_t err = rn_log_assign_epoch(log, ps->leader_epoch);
    if (err != RN_OK)
        RN_ERROR("repl", "%s-%" PRIu32 ": cannot record leader epoch %" PRIu32 ": %s", rp->topic,
                 rp->partition, ps->leader_epoch, rn_err_str(err));
    rn_part_set_leader_epoch(rp->part, ps->leader_epoch);
    rp->epoch_start = rn_log_end_offset(log);
    int64_t now = rn_repl__now_ms();
    for (uint32_t i = 0; i < rp->n_replicas; i++) {
        rp->fol[i].leo = -1;
        rp->fol[i].caught_up_ms = now; /* everyone gets replica.lag.time.max.ms to show up */
    }
    rp->alter_in_flight = false;
    RN_INFO("repl", "%s-%" PRIu32 ": leader in epoch %" PRIu32 " from offset %" PRIu64
            " (ISR %" PRIu32 " of %" PRIu32 ")", rp->topic, rp->partition, ps->leader_epoch,
            rp->epoch_start, ps->n_isr, ps->n_replicas);
}

/* Takes the image's state for rp and changes its role when the leader or epoch moved. */
static void apply_state(rpart_t *rp, const rn_img_partition_t *ps)
{
    rn_repl_t *r = rp->r;
    int role = ps->leader == r->node_id ? ROLE_LEADER
               : ps->leader >= 0 && has(ps->replicas, ps->n_replicas, r->node_id) ? ROLE_FOLLOWER
                                                                                   : ROLE_NONE;
    bool moved = role != rp->role || ps->leader != rp->leader ||
                 ps->leader_epoch != rp->leader_epoch;
    uint32_t nr = ps->n_replicas < RN_REPL_MAX_REPLICAS ? ps->n_replicas : RN_REPL_MAX_REPLICAS;
    uint32_t ni = ps->n_isr < RN_REPL_MAX_REPLICAS ? ps->n_isr : RN_REPL_MAX_REPLICAS;
    if (moved) {
        for (uint32_t i = 0; i < nr; i++)
            rp->fol[i] = (struct rfol){.id = ps->replicas[i], .leo = -1};
    }
    memcpy(rp->replicas, ps->replicas, nr * sizeof *rp->replicas);
    rp->n_replicas = nr;
    /* Never an older state than an AlterPartition answer already gave (the image may lag). */
    if (moved || ps->partition_epoch > rp->partition_epoch ||
        (!rp->alter_in_flight && ps->partition_epoch == rp->partition_epoch)) {
        memcpy(rp->isr, ps->isr, ni * sizeof *rp->isr);
        rp->n_isr = ni;
        rp->partition_epoch = ps->partition_epoch;
        rp->alter_in_flight = false;
    }
    if (!moved) {
        update_hw(rp);
        return;
    }
    if (rp->role == ROLE_FOLLOWER)
        rn_repl__unfollow(rp);
    /* acks=all waits belong to the old epoch: their records may or may not survive it. */
    complete_waiters(rp, true, RN_ERR_NOT_LEADER_OR_FOLLOWER);
    rp->role = role;
    rp->leader = ps->leader;
    rp->leader_epoch = ps->leader_epoch;
    if (role == ROLE_LEADER)
        become_leader(rp, ps);
    else if (role == ROLE_FOLLOWER)
        rn_repl__follow(rp);
    else
        RN_INFO("repl", "%s-%" PRIu32 ": no leader (epoch %" PRIu32 "); not served here",
                rp->topic, rp->partition, ps->leader_epoch);
    if (r->fetch)
        rn_fetch_poke(r->fetch);
}

rpart_t *rn_repl__find(rn_repl_t *r, const char *topic, uint32_t partition)
{
    rn_topic_t *t = rn_topics_find(r->topics, topic); /* a binary search */
    rn_part_t *part = t ? rn_topic_partition(t, partition) : NULL;
    return part ? rn_part_repl(part) : NULL;
}

static void drop_rpart(rpart_t *rp)
{
    rn_repl_t *r = rp->r;
    if (rp->role == ROLE_FOLLOWER)
        rn_repl__unfollow(rp);
    complete_waiters(rp, true, RN_ERR_NOT_LEADER_OR_FOLLOWER);
    for (rpart_t **pp = &r->parts; *pp; pp = &(*pp)->next)
        if (*pp == rp) {
            *pp = rp->next;
            break;
        }
    rn_part_set_repl(rp->part, NULL);
    free(rp);
}

static void drop_topic(rn_repl_t *r, const char *name)
{
    for (rpart_t *rp = r->parts, *next; rp; rp = next) {
        next = rp->next;
        if (strcmp(rp->topic, name) == 0)
            drop_rpart(rp);
    }
}

struct cfgs {
    const char *keys[64];
    const char *values[64];
    size_t n;
};

static void add_cfg(void *ctx, const char *key, const char *value)
{
    struct cfgs *c = ctx;
    if (c->n < 64) {
        c->keys[c->n] = key;
        c->values[c->n++] = value;
    }
}

static bool replicates(const rn_img_topic_t *t, int32_t id)
{
    for (uint32_t p = 0; p < rn_img_topic_partitions(t); p++) {
        const rn_img_partition_t *ps = rn_img_partition(t, p);
        if (has(ps->replicas, ps->n_replicas, id))
            return true;
    }
    return false;
}

/* Gives part its replication state (no role yet); NULL when out of memory. */
static rpart_t *attach(rn_repl_t *r, rn_part_t *part, const char *name, uint32_t p)
{
    rpart_t *rp = rn_part_repl(part);
    if (rp)
        return rp;
    if (!(rp = calloc(1, sizeof *rp)))
        return NULL;
    rp->r = r;
    rp->part = part;
    snprintf(rp->topic, sizeof rp->topic, "%s", name);
    rp->partition = p;
    rp->role = ROLE_NONE;
    rp->leader = -1;
    rp->leader_epoch = UINT32_MAX;
    rp->waiters_tail = &rp->waiters;
    rp->next = r->parts;
    r->parts = rp;
    rn_part_set_repl(part, rp);
    return rp;
}

/* DATA_DIR/NAME-0/topic.id: which topic (by id) the local copy of NAME is. */
static void id_path(const rn_repl_t *r, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s-0/topic.id", r->data_dir, name);
}

static void id_hex(const uint8_t *id, char out[2 * RN_IMG_ID_LEN + 2])
{
    for (int i = 0; i < RN_IMG_ID_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
    out[2 * RN_IMG_ID_LEN] = '\n';
    out[2 * RN_IMG_ID_LEN + 1] = '\0';
}

/* True when the local copy of t's name holds topic t (its topic.id says so). */
static bool same_topic(const rn_repl_t *r, const rn_img_topic_t *t)
{
    char path[PATH_MAX], want[2 * RN_IMG_ID_LEN + 2];
    id_path(r, rn_img_topic_name(t), path, sizeof path);
    id_hex(rn_img_topic_id(t), want);
    rn_buf_t b = RN_BUF_INIT;
    bool same = rn_fs_read_all(path, &b) == RN_OK && b.len == strlen(want) &&
                memcmp(b.data, want, b.len) == 0;
    rn_buf_free(&b);
    return same;
}

static void drop_local(rn_repl_t *r, const char *name, const char *why)
{
    char copy[RN_REPL_TOPIC_MAX], err[256];
    snprintf(copy, sizeof copy, "%s", name);
    RN_WARN("repl", "topic %s: %s; removing the local copy", copy, why);
    drop_topic(r, copy);
    if (rn_topics_delete(r->topics, copy, err, sizeof err) != RN_OK)
        RN_ERROR("repl", "topic %s: cannot delete the local copy: %s", copy, err);
}

/* Opens (creating when missing) the local logs of t and gives each partition its state. */
static void open_topic(rn_repl_t *r, const rn_img_topic_t *t)
{
    const char *name = rn_img_topic_name(t);
    if (!replicates(t, r->node_id))
        return;
    rn_topic_t *local = rn_topics_find(r->topics, name);
    if (local && rn_topic_partition_count(local) != rn_img_topic_partitions(t)) {
        drop_local(r, name, "the cluster's topic of that name has another partition count");
        local = NULL;
    } else if (local && !same_topic(r, t)) {
        /* deleted and created again while this broker was away: other records */
        drop_local(r, name, "the local copy belongs to an earlier topic of that name");
        local = NULL;
    }
    if (!local) {
        struct cfgs c = {0};
        rn_img_topic_config_each(t, add_cfg, &c);
        rn_topic_spec_t spec = {.name = name, .partitions = rn_img_topic_partitions(t),
                                .replication_factor = 1, .nconfigs = c.n, .keys = c.keys,
                                .values = c.values};
        char err[512];
        if (rn_topics_create(r->topics, &spec, r->num_partitions, err, sizeof err) != RN_OK) {
            RN_ERROR("repl", "topic %s: cannot create the local replica: %s", name, err);
            return;
        }
        local = rn_topics_find(r->topics, name);
        if (!local)
            return;
        char path[PATH_MAX], hex[2 * RN_IMG_ID_LEN + 2];
        id_path(r, name, path, sizeof path);
        id_hex(rn_img_topic_id(t), hex);
        if (rn_fs_write_atomic(path, hex, strlen(hex), true) != RN_OK)
            RN_ERROR("repl", "topic %s: cannot write %s: %s", name, path, strerror(errno));
    }
    for (uint32_t p = 0; p < rn_img_topic_partitions(t); p++) {
        rpart_t *rp = attach(r, rn_topic_partition(local, p), name, p);
        if (!rp)
            continue;
        memcpy(rp->topic_id, rn_img_topic_id(t), RN_IMG_ID_LEN);
        apply_state(rp, rn_img_partition(t, p));
    }
}

/* Local topics the image does not have (deleted while this broker was away). */
static void reconcile(rn_repl_t *r)
{
    for (size_t i = rn_topics_count(r->topics); i-- > 0;) {
        rn_topic_t *local = rn_topics_at(r->topics, i);
        const char *name = rn_topic_name(local);
        const rn_img_topic_t *t = rn_img_topic_by_name(r->img, name);
        if (t && replicates(t, r->node_id) && same_topic(r, t))
            continue;
        drop_local(r, name, t ? "not replicated here (or an earlier topic of that name)"
                              : "the cluster no longer has it");
    }
}

void rn_repl_publish(rn_repl_t *r)
{
    if (r->stopped)
        return;
    rn_img_delta_t d;
    rn_img_take_delta(r->img, &d);
    bool empty = rn_img_delta_empty(&d);
    for (size_t i = 0; i < d.n_topics_removed; i++) {
        const char *name = d.topics_removed[i].name;
        if (!rn_topics_find(r->topics, name))
            continue;
        const rn_img_topic_t *again = rn_img_topic_by_name(r->img, name);
        drop_topic(r, name);
        char err[256];
        if (rn_topics_delete(r->topics, name, err, sizeof err) != RN_OK)
            RN_ERROR("repl", "topic %s: cannot delete the local replica: %s", name, err);
        else
            RN_INFO("repl", "topic %s deleted", name);
        (void)again;
    }
    for (size_t i = 0; i < d.n_topics_created; i++) {
        const rn_img_topic_t *t = rn_img_topic_by_id(r->img, d.topics_created[i].id);
        if (t)
            open_topic(r, t);
    }
    for (size_t i = 0; i < d.n_partitions_changed; i++) {
        const rn_img_topic_t *t = rn_img_topic_by_id(r->img, d.partitions_changed[i].topic_id);
        if (!t)
            continue;
        rn_topic_t *local = rn_topics_find(r->topics, rn_img_topic_name(t));
        rn_part_t *part = local ? rn_topic_partition(local, d.partitions_changed[i].partition)
                                : NULL;
        rpart_t *rp = part ? rn_part_repl(part) : NULL;
        if (rp && memcmp(rp->topic_id, rn_img_topic_id(t), RN_IMG_ID_LEN) == 0)
            apply_state(rp, rn_img_partition(t, d.partitions_changed[i].partition));
        else
            open_topic(r, t); /* newly assigned here, or the local copy is not this topic */
    }
    /* Brokers moved (a leader's address) or this broker is now known: fetchers re-resolve. */
    if (d.n_brokers_changed)
        rn_repl__fetchers_tick(r);
    rn_img_delta_free(&d);
    const rn_img_broker_t *me = rn_img_broker(r->img, r->node_id);
    if (!r->reconciled && me && !me->fenced) {
        r->reconciled = true;
        reconcile(r);
    }
    (void)empty;
}

/* ------------------------------------------------------------- data path ---- */

rn_err_t rn_repl_read_limit(rn_part_t *part, int32_t replica_id, int32_t current_epoch,
                            int64_t fetch_offset, uint64_t *limit, uint64_t *hw)
{
    rpart_t *rp = rn_part_repl(part);
    uint64_t end = rn_log_end_offset(rn_part_log(part));
    if (!rp) {
        *limit = *hw = end;
        /* a single node's leader epoch is 0 */
        return current_epoch > 0 ? RN_ERR_UNKNOWN_LEADER_EPOCH : RN_OK;
    }
    if (rp->role != ROLE_LEADER)
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    if (current_epoch >= 0 && (uint32_t)current_epoch < rp->leader_epoch)
        return RN_ERR_FENCED_LEADER_EPOCH;
    if (current_epoch >= 0 && (uint32_t)current_epoch > rp->leader_epoch)
        return RN_ERR_UNKNOWN_LEADER_EPOCH;
    if (replica_id >= 0) {
        if (!fol(rp, replica_id))
            return RN_ERR_NOT_LEADER_OR_FOLLOWER;
        follower_fetched(rp, replica_id, fetch_offset);
        *limit = end;
    } else {
        *limit = rp->hw;
    }
    *hw = rp->hw;
    return RN_OK;
}

uint64_t rn_repl_hw(rn_part_t *part)
{
    rpart_t *rp = rn_part_repl(part);
    return rp ? rp->hw : rn_log_end_offset(rn_part_log(part));
}

void rn_repl_appended(rn_part_t *part)
{
    rpart_t *rp = rn_part_repl(part);
    if (rp)
        update_hw(rp);
}

rn_err_t rn_repl_offsets_check(rn_part_t *part)
{
    rpart_t *rp = rn_part_repl(part);
    if (!rp)
        return RN_OK;
    if (rp->role != ROLE_LEADER)
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    return rp->hw < rp->epoch_start ? RN_ERR_LEADER_NOT_AVAILABLE : RN_OK;
}

rn_err_t rn_repl_produce_check(rn_part_t *part, int32_t acks, char *msg, size_t msglen)
{
    rpart_t *rp = rn_part_repl(part);
    if (!rp)
        return RN_OK;
    if (rp->role != ROLE_LEADER) {
        snprintf(msg, msglen, "this broker does not lead the partition (leader %" PRId32 ")",
                 rp->leader);
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    uint32_t need = min_insync(rp);
    if (acks == -1 && rp->n_isr < need) {
        snprintf(msg, msglen, "the ISR has %" PRIu32 " member(s); min.insync.replicas is %" PRIu32,
                 rp->n_isr, need);
        return RN_ERR_NOT_ENOUGH_REPLICAS;
    }
    return RN_OK;
}

rn_err_t rn_repl_wait_hw(rn_part_t *part, uint64_t end_offset, uint32_t timeout_ms,
                         rn_repl_wait_cb cb, void *arg, bool *waiting)
{
    rpart_t *rp = rn_part_repl(part);
    *waiting = false;
    if (!rp)
        return RN_OK;
    update_hw(rp);
    if (rp->hw >= end_offset)
        return RN_OK;
    struct hwait *w = calloc(1, sizeof *w);
    if (!w)
        return RN_ERR_NOMEM;
    w->end = end_offset;
    w->deadline_ms = rn_repl__now_ms() + (timeout_ms ? timeout_ms : DEFAULT_ACKS_TIMEOUT_MS);
    w->cb = cb;
    w->arg = arg;
    *rp->waiters_tail = w;
    rp->waiters_tail = &w->next;
    *waiting = true;
    return RN_OK;
}

void rn_repl_stats(const rn_repl_t *r, rn_repl_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (!r)
        return;
    st->isr_shrinks = r->isr_shrinks;
    st->isr_expands = r->isr_expands;
    for (const rpart_t *rp = r->parts; rp; rp = rp->next) {
        if (rp->role == ROLE_LEADER && rp->n_isr < rp->n_replicas)
            st->under_replicated++;
        if (rp->leader < 0)
            st->offline++;
    }
}

void rn_repl_counts(const rn_img_t *img, uint32_t *under_replicated, uint32_t *offline)
{
    *under_replicated = *offline = 0;
    for (size_t i = 0; i < rn_img_topic_count(img); i++) {
        const rn_img_topic_t *t = rn_img_topic_at(img, i);
        for (uint32_t p = 0; p < rn_img_topic_partitions(t); p++) {
            const rn_img_partition_t *ps = rn_img_partition(t, p);
            if (ps->leader < 0)
                (*offline)++;
            else if (ps->n_isr < ps->n_replicas)
                (*under_replicated)++;
        }
    }
}

/* ------------------------------------------------------------- lifecycle ---- */

rn_repl_t *rn_repl_new(const rn_repl_opts_t *o)
{
    rn_repl_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = o->loop;
    r->topics = o->topics;
    r->img = o->img;
    r->mem = o->mem;
    r->node_id = o->node_id;
    r->max_frame = o->max_frame;
    r->lag_time_max_ms = o->lag_time_max_ms;
    r->fetch_wait_max_ms = o->fetch_wait_max_ms;
    r->fetch_max_bytes = o->fetch_max_bytes;
    r->fetch_backoff_ms = o->fetch_backoff_ms;
    r->num_partitions = o->num_partitions;
    if (!(r->data_dir = strdup(o->data_dir ? o->data_dir : "."))) {
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < rn_topics_count(r->topics); i++) {
        rn_topic_t *t = rn_topics_at(r->topics, i);
        for (uint32_t p = 0; p < rn_topic_partition_count(t); p++)
            (void)attach(r, rn_topic_partition(t, p), rn_topic_name(t), p);
    }
    rn_repl__hw_read(r);
    r->hw_interval_ms = o->hw_checkpoint_ms > 0 ? o->hw_checkpoint_ms : 5000;
    r->hw_written_ms = rn_repl__now_ms();
    uv_timer_init(r->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_tick, TICK_MS, TICK_MS);
    return r;
}

void rn_repl_set_fetch(rn_repl_t *r, rn_fetch_t *f)
{
    r->fetch = f;
}

void rn_repl_stop(rn_repl_t *r)
{
    if (!r || r->stopped)
        return;
    rn_repl__hw_write(r); /* a clean stop: the next start knows every HW */
    while (r->parts)
        drop_rpart(r->parts);
    r->stopped = true;
    r->fetch = NULL;
    rn_repl__fetchers_free(r);
    uv_close((uv_handle_t *)&r->timer, NULL);
}

void rn_repl_free(rn_repl_t *r)
{
    if (r)
        free(r->data_dir);
    free(r);
}

/* ---------------------------------------------------- OffsetForLeaderEpoch ---- */

static void epoch_end(rn_repl_t *r, const char *topic, const Runnel__OffsetForLeaderEpochPartition *q,
                      Runnel__EpochEndOffset *e)
{
    e->partition = q->partition;
    e->leader_epoch = -1;
    e->end_offset = -1;
    rn_topic_t *t = rn_topics_find(r->topics, topic);
    rn_part_t *part = t ? rn_topic_partition(t, q->partition) : NULL;
    rpart_t *rp = part ? rn_part_repl(part) : NULL;
    rn_err_t err = RN_OK;
    if (!part)
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    else if (!rp || rp->role != ROLE_LEADER)
        err = RN_ERR_NOT_LEADER_OR_FOLLOWER;
    else if (q->current_leader_epoch >= 0 && (uint32_t)q->current_leader_epoch < rp->leader_epoch)
        err = RN_ERR_FENCED_LEADER_EPOCH;
    else if (q->current_leader_epoch >= 0 && (uint32_t)q->current_leader_epoch > rp->leader_epoch)
        err = RN_ERR_UNKNOWN_LEADER_EPOCH;
    if (err == RN_OK) {
        rn_lep_answer_t a;
        if (rn_log_end_offset_for_epoch(rn_part_log(part), q->leader_epoch, &a) == RN_OK) {
            e->leader_epoch = (int32_t)a.epoch;
            e->end_offset = (int64_t)a.end_offset;
        }
    }
    e->error = (Runnel__ErrorCode)err;
}

void rn_repl_handle_offset_for_epoch(rn_repl_t *r, rn_resp_t *resp,
                                     const Runnel__OffsetForLeaderEpochRequest *req)
{
    Runnel__OffsetForLeaderEpochResponse body = RUNNEL__OFFSET_FOR_LEADER_EPOCH_RESPONSE__INIT;
    size_t np = 0;
    for (size_t i = 0; i < req->n_topics; i++)
        np += req->topics[i]->n_partitions;
    Runnel__OffsetForLeaderEpochTopicResult *tr = calloc(req->n_topics + 1, sizeof *tr);
    Runnel__OffsetForLeaderEpochTopicResult **trs = calloc(req->n_topics + 1, sizeof *trs);
    Runnel__EpochEndOffset *es = calloc(np + 1, sizeof *es);
    Runnel__EpochEndOffset **eps = calloc(np + 1, sizeof *eps);
    Runnel__Response out = RUNNEL__RESPONSE__INIT;
    if (!tr || !trs || !es || !eps) {
        out.error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_SERVER_ERROR;
        out.error_message = (char *)"broker out of memory";
    } else {
        size_t k = 0;
        for (size_t i = 0; i < req->n_topics; i++) {
            runnel__offset_for_leader_epoch_topic_result__init(&tr[i]);
            tr[i].name = req->topics[i]->name;
            tr[i].partitions = &eps[k];
            for (size_t j = 0; j < req->topics[i]->n_partitions; j++, k++) {
                runnel__epoch_end_offset__init(&es[k]);
                eps[k] = &es[k];
                if (r)
                    epoch_end(r, req->topics[i]->name, req->topics[i]->partitions[j], &es[k]);
                else
                    es[k].error = RUNNEL__ERROR_CODE__ERR_NOT_LEADER_OR_FOLLOWER;
                rn_resp_note_error(resp, (rn_err_t)es[k].error);
                tr[i].n_partitions++;
            }
            trs[i] = &tr[i];
        }
        body.topics = trs;
        body.n_topics = req->n_topics;
        out.body_case = RUNNEL__RESPONSE__BODY_OFFSET_FOR_LEADER_EPOCH;
        out.offset_for_leader_epoch = &body;
    }
    if (rn_resp_pack(resp, &out) != RN_OK)
        rn_resp_clear(resp);
    rn_resp_send(resp);
    free(tr);
    free(trs);
    free(es);
    free(eps);
}
