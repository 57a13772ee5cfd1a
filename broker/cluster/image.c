/*
 * image.c - the metadata image: lifecycle, apply and accessors (docs/cluster.md §4.2).
 * The containers are in image_state.c, snapshot encoding and restore in image_snap.c; what
 * they share is in image_int.h.
 *
 * Every mutation follows one shape, so that RN_ERR_NOMEM never leaves half a change behind:
 * check the record against the state (a misfit is a logged no-op), allocate everything the
 * change needs (new strings, array room, delta room), and only then change the image.
 */
#include "image.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_int.h"
#include "logging.h"

/* ---- lifecycle ---- */

rn_err_t rn_img_new(rn_img_t **out)
{
    rn_img_t *img = calloc(1, sizeof *img);
    if (!img)
        return RN_ERR_NOMEM;
    if (!(img->cluster_id = img_strdup(""))) {
        free(img);
        return RN_ERR_NOMEM;
    }
    img->next_producer_id_block = RN_IMG_FIRST_PRODUCER_ID;
    *out = img;
    return RN_OK;
}

/* Frees what img holds and leaves it zeroed (the struct itself stays). */
void img_clear(rn_img_t *img)
{
    for (size_t i = 0; i < img->n_brokers; i++)
        img_broker_free(img->brokers[i]);
    free(img->brokers);
    for (size_t i = 0; i < img->n_topics; i++)
        img_topic_free(img->by_name[i]);
    free(img->by_name);
    free(img->by_id);
    img_kv_free(&img->configs);
    free(img->cluster_id);
    img_pend_free(&img->pend);
    *img = (rn_img_t){0};
}

void rn_img_free(rn_img_t *img)
{
    if (!img)
        return;
    img_clear(img);
    free(img);
}

bool rn_img_stopped(const rn_img_t *img)
{
    return img->stopped;
}

/* ---- apply ---- */

typedef Runnel__Meta__MetadataRecord meta_record_t;

static void result_vset(rn_img_result_t *r, rn_img_outcome_t outcome, rn_err_t reason,
                        const char *fmt, va_list ap)
{
    r->outcome = outcome;
    r->reason = reason;
    vsnprintf(r->message, sizeof r->message, fmt, ap);
}

static void result_set(rn_img_result_t *r, rn_img_outcome_t outcome, rn_err_t reason,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void result_set(rn_img_result_t *r, rn_img_outcome_t outcome, rn_err_t reason,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_vset(r, outcome, reason, fmt, ap);
    va_end(ap);
}

/* A record that does not fit: a no-op, so apply itself still succeeds (RN_OK). */
static rn_err_t reject(rn_img_result_t *r, rn_err_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rn_err_t reject(rn_img_result_t *r, rn_err_t reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_vset(r, RN_IMG_REJECTED, reason, fmt, ap);
    va_end(ap);
    return RN_OK;
}

/* A record whose state the image already holds (a duplicate commit). */
static rn_err_t unchanged(rn_img_result_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static rn_err_t unchanged(rn_img_result_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_vset(r, RN_IMG_UNCHANGED, RN_OK, fmt, ap);
    va_end(ap);
    return RN_OK;
}

/* The cluster id is set once. A second ClusterRecord with the same id is a duplicate commit;
 * one with another id means two clusters' logs met, which apply refuses to paper over. */
static rn_err_t apply_cluster(rn_img_t *img, const Runnel__Meta__ClusterRecord *c,
                              rn_img_result_t *r)
{
    if (!c->cluster_id || !c->cluster_id[0])
        return reject(r, RN_ERR_INVALID_REQUEST, "empty cluster_id");
    if (strcmp(img->cluster_id, c->cluster_id) == 0)
        return unchanged(r, "cluster id already %s", c->cluster_id);
    if (img->cluster_id[0])
        return reject(r, RN_ERR_INCONSISTENT_CLUSTER_ID, "cluster id is %s, record says %s",
                      img->cluster_id, c->cluster_id);
    char *id = img_strdup(c->cluster_id);
    if (!id)
        return RN_ERR_NOMEM;
    free(img->cluster_id);
    img->cluster_id = id;
    return RN_OK;
}

/*
 * A new incarnation (process start) of a broker id replaces whatever was registered under
 * that id, fenced, with broker epoch = this entry's raft index (KIP-631). The incarnation that
 * is already registered is a duplicate commit (a registration retried after NOT_CONTROLLER):
 * nothing changes, in particular not its epoch.
 */
static rn_err_t apply_register(rn_img_t *img, const Runnel__Meta__RegisterBrokerRecord *rb,
                               uint64_t raft_index, rn_img_result_t *r)
{
    const char *why = img_register_invalid(rb);
    if (why)
        return reject(r, RN_ERR_INVALID_REQUEST, "broker %" PRId32 ": %s", rb->broker_id, why);
    bool found;
    size_t i = img_broker_pos(img, rb->broker_id, &found);
    if (found && img_id_cmp(img->brokers[i]->incarnation_id, rb->incarnation_id.data) == 0)
        return unchanged(r, "broker %" PRId32 " incarnation already registered at epoch %" PRIu64,
                         rb->broker_id, img->brokers[i]->epoch);
    rn_img_broker_t *b;
    if (img_broker_new(rb, raft_index, true, &b) != RN_OK)
        return RN_ERR_NOMEM;
    if (img_pend_reserve(&img->pend, 0, 0, 0, 1) ||
        (!found &&
         img_reserve((void **)&img->brokers, &img->cap_brokers, img->n_brokers + 1, sizeof b))) {
        img_broker_free(b);
        return RN_ERR_NOMEM;
    }
    bool was_serving = found && !img->brokers[i]->fenced;
    if (found) {
        img_broker_free(img->brokers[i]);
    } else {
        memmove(&img->brokers[i + 1], &img->brokers[i], (img->n_brokers - i) * sizeof b);
        img->n_brokers++;
    }
    img->brokers[i] = b;
    img_pend_broker(&img->pend, b->id);
    /* A new incarnation starts fenced: the old one's partitions move as on a fence. */
    return was_serving ? img_elect_after_fencing(img, b->id, true) : RN_OK;
}

/* The broker a fence/unfence/unregister/producer-ids record names, or NULL with a rejection:
 * an unregistered id has no current epoch, so both cases are STALE_BROKER_EPOCH. */
static rn_img_broker_t *broker_at_epoch(rn_img_t *img, int32_t id, uint64_t epoch,
                                        const char *what, rn_img_result_t *r)
{
    bool found;
    size_t i = img_broker_pos(img, id, &found);
    if (!found) {
        reject(r, RN_ERR_STALE_BROKER_EPOCH, "%s: broker %" PRId32 " is not registered", what, id);
        return NULL;
    }
    if (img->brokers[i]->epoch != epoch) {
        reject(r, RN_ERR_STALE_BROKER_EPOCH,
               "%s: broker %" PRId32 " epoch %" PRIu64 " is not the current %" PRIu64, what, id,
               epoch, img->brokers[i]->epoch);
        return NULL;
    }
    return img->brokers[i];
}

static rn_err_t apply_fenced(rn_img_t *img, int32_t id, uint64_t epoch, bool fenced,
                             rn_img_result_t *r)
{
    const char *what = fenced ? "fence" : "unfence";
    rn_img_broker_t *b = broker_at_epoch(img, id, epoch, what, r);
    if (!b)
        return RN_OK;
    if (b->fenced == fenced)
        return unchanged(r, "broker %" PRId32 " already %sd", id, what);
    if (img_pend_reserve(&img->pend, 0, 0, 0, 1))
        return RN_ERR_NOMEM;
    b->fenced = fenced;
    img_pend_broker(&img->pend, id);
    return img_elect_after_fencing(img, id, fenced);
}

static rn_err_t apply_unregister(rn_img_t *img, const Runnel__Meta__UnregisterBrokerRecord *u,
                                 rn_img_result_t *r)
{
    rn_img_broker_t *b = broker_at_epoch(img, u->broker_id, u->broker_epoch, "unregister", r);
    if (!b)
        return RN_OK;
    if (img_pend_reserve(&img->pend, 0, 0, 0, 1))
        return RN_ERR_NOMEM;
    bool found;
    size_t i = img_broker_pos(img, u->broker_id, &found);
    img_broker_free(b);
    memmove(&img->brokers[i], &img->brokers[i + 1], (img->n_brokers - i - 1) * sizeof b);
    img->n_brokers--;
    img_pend_broker(&img->pend, u->broker_id);
    return RN_OK;
}

/* A topic needs a new id and a free name. The same (id, name) again is a duplicate commit. */
static rn_err_t apply_topic(rn_img_t *img, const Runnel__Meta__TopicRecord *tr,
                            rn_img_result_t *r)
{
    const char *why = img_topic_invalid(tr);
    if (why)
        return reject(r, RN_ERR_INVALID_REQUEST, "topic %s: %s", tr->name ? tr->name : "", why);
    const rn_img_topic_t *same_id = img_topic_find_id(img, tr->topic_id.data);
    if (same_id && strcmp(same_id->name, tr->name) == 0)
        return unchanged(r, "topic %s already exists with that id", tr->name);
    if (same_id)
        return reject(r, RN_ERR_INVALID_REQUEST, "topic %s: its id belongs to topic %s", tr->name,
                      same_id->name);
    if (rn_img_topic_by_name(img, tr->name))
        return reject(r, RN_ERR_TOPIC_ALREADY_EXISTS, "topic %s exists with another id",
                      tr->name);
    rn_img_topic_t *t;
    if (img_topic_new(tr, &t) != RN_OK)
        return RN_ERR_NOMEM;
    char *ref_name = img_strdup(tr->name);
    if (!ref_name || img_pend_reserve(&img->pend, 1, 0, 0, 0) || img_topic_insert(img, t)) {
        free(ref_name);
        img_topic_free(t);
        return RN_ERR_NOMEM;
    }
    img_pend_created(&img->pend, t, ref_name);
    return RN_OK;
}

static rn_err_t apply_remove_topic(rn_img_t *img, const Runnel__Meta__RemoveTopicRecord *rt,
                                   rn_img_result_t *r)
{
    if (rt->topic_id.len != RN_IMG_ID_LEN)
        return reject(r, RN_ERR_INVALID_REQUEST, "remove topic: topic_id is not 16 bytes");
    rn_img_topic_t *t = img_topic_find_id(img, rt->topic_id.data);
    if (!t)
        return reject(r, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "remove topic: unknown topic id");
    if (img_pend_reserve(&img->pend, 0, 1, 0, 0))
        return RN_ERR_NOMEM;
    img_topic_unlink(img, t);
    img_pend_topic_gone(&img->pend, t);
    img_topic_free(t);
    return RN_OK;
}

/*
 * The record carries the partition's whole new state; it fits when its partition_epoch is
 * the current one + 1. The current state again is a duplicate commit. Anything else (an
 * older or skipped epoch) was decided against a state this image never had.
 */
static rn_err_t apply_partition_change(rn_img_t *img,
                                       const Runnel__Meta__PartitionChangeRecord *pc,
                                       rn_img_result_t *r)
{
    if (pc->topic_id.len != RN_IMG_ID_LEN)
        return reject(r, RN_ERR_INVALID_REQUEST, "partition change: topic_id is not 16 bytes");
    if (!pc->state)
        return reject(r, RN_ERR_INVALID_REQUEST, "partition change without a state");
    rn_img_topic_t *t = img_topic_find_id(img, pc->topic_id.data);
    if (!t)
        return reject(r, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "partition change: unknown topic id");
    if (pc->partition >= t->n_partitions)
        return reject(r, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                      "partition change: %s has no partition %" PRIu32, t->name, pc->partition);
    rn_img_partition_t *cur = &t->partitions[pc->partition];
    rn_img_partition_t next = img_part_view(pc->state);
    if (img_part_equal(cur, &next))
        return unchanged(r, "%s-%" PRIu32 " already at partition epoch %" PRIu32, t->name,
                         pc->partition, cur->partition_epoch);
    if (next.partition_epoch != cur->partition_epoch + 1)
        return reject(r, RN_ERR_INVALID_UPDATE_VERSION,
                      "%s-%" PRIu32 ": partition epoch %" PRIu32 ", current %" PRIu32, t->name,
                      pc->partition, next.partition_epoch, cur->partition_epoch);
    if (img_pend_reserve(&img->pend, 0, 0, 1, 0) || img_part_set(cur, pc->state))
        return RN_ERR_NOMEM;
    img_pend_partition(&img->pend, t, pc->partition);
    return RN_OK;
}

static rn_err_t apply_config(rn_img_t *img, const Runnel__Meta__ConfigRecord *c,
                             rn_img_result_t *r)
{
    if (!c->key || !c->key[0])
        return reject(r, RN_ERR_INVALID_REQUEST, "config record with an empty key");
    img_kvlist_t *list = &img->configs;
    if (c->topic && c->topic[0]) {
        bool found;
        size_t i = img_topic_name_pos(img, c->topic, &found);
        if (!found)
            return reject(r, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "config %s: unknown topic %s",
                          c->key, c->topic);
        list = &img->by_name[i]->configs;
    }
    bool changed;
    if (c->remove)
        changed = img_kv_remove(list, c->key);
    else if (img_kv_set(list, c->key, c->value ? c->value : "", &changed) != RN_OK)
        return RN_ERR_NOMEM;
    if (!changed)
        return unchanged(r, "config %s already %s", c->key, c->remove ? "unset" : "set");
    return RN_OK;
}

/* Blocks only move forward: the same start again is a duplicate commit, a lower one would
 * hand out ids twice. */
static rn_err_t apply_producer_ids(rn_img_t *img, const Runnel__Meta__ProducerIdsRecord *p,
                                   rn_img_result_t *r)
{
    if (!broker_at_epoch(img, p->broker_id, p->broker_epoch, "producer ids", r))
        return RN_OK;
    if (p->next_block_start == img->next_producer_id_block)
        return unchanged(r, "next producer-id block already at %" PRId64, p->next_block_start);
    if (p->next_block_start < img->next_producer_id_block)
        return reject(r, RN_ERR_INVALID_REQUEST,
                      "next producer-id block %" PRId64 " is below the current %" PRId64,
                      p->next_block_start, img->next_producer_id_block);
    img->next_producer_id_block = p->next_block_start;
    return RN_OK;
}

static rn_err_t apply_body(rn_img_t *img, const meta_record_t *rec, uint64_t raft_index,
                           rn_img_result_t *r)
{
    switch (rec->body_case) {
    case RUNNEL__META__METADATA_RECORD__BODY_CLUSTER:
        return apply_cluster(img, rec->cluster, r);
    case RUNNEL__META__METADATA_RECORD__BODY_REGISTER_BROKER:
        return apply_register(img, rec->register_broker, raft_index, r);
    case RUNNEL__META__METADATA_RECORD__BODY_UNREGISTER_BROKER:
        return apply_unregister(img, rec->unregister_broker, r);
    case RUNNEL__META__METADATA_RECORD__BODY_FENCE_BROKER:
        return apply_fenced(img, rec->fence_broker->broker_id, rec->fence_broker->broker_epoch,
                            true, r);
    case RUNNEL__META__METADATA_RECORD__BODY_UNFENCE_BROKER:
        return apply_fenced(img, rec->unfence_broker->broker_id,
                            rec->unfence_broker->broker_epoch, false, r);
    case RUNNEL__META__METADATA_RECORD__BODY_TOPIC:
        return apply_topic(img, rec->topic, r);
    case RUNNEL__META__METADATA_RECORD__BODY_REMOVE_TOPIC:
        return apply_remove_topic(img, rec->remove_topic, r);
    case RUNNEL__META__METADATA_RECORD__BODY_PARTITION_CHANGE:
        return apply_partition_change(img, rec->partition_change, r);
    case RUNNEL__META__METADATA_RECORD__BODY_CONFIG:
        return apply_config(img, rec->config, r);
    case RUNNEL__META__METADATA_RECORD__BODY_PRODUCER_IDS:
        return apply_producer_ids(img, rec->producer_ids, r);
    default:
        return reject(r, RN_ERR_INVALID_REQUEST, "record without a body");
    }
}

rn_err_t rn_img_apply(rn_img_t *img, const uint8_t *record, size_t len, uint64_t raft_index,
                      rn_img_result_t *result)
{
    rn_img_result_t local;
    rn_img_result_t *r = result ? result : &local;
    *r = (rn_img_result_t){.outcome = RN_IMG_APPLIED, .reason = RN_OK};
    if (!record && len)
        return RN_ERR_INVALID_ARG;
    meta_record_t *rec = runnel__meta__metadata_record__unpack(NULL, len, record);
    if (!rec) {
        /* Not logged here: the caller cannot skip a committed entry, so it decides and says. */
        result_set(r, RN_IMG_REJECTED, RN_ERR_MALFORMED,
                   "raft index %" PRIu64 ": %zu bytes are not a MetadataRecord", raft_index, len);
        return RN_ERR_MALFORMED;
    }
    bool was_stopped = img->stopped;
    rn_err_t err = RN_OK;
    if (img->stopped) {
        result_set(r, RN_IMG_STOPPED, RN_ERR_UNSUPPORTED_VERSION,
                   "image stopped at an earlier record of a newer version");
    } else if (rec->version > RN_IMG_RECORD_VERSION) {
        img->stopped = true;
        result_set(r, RN_IMG_STOPPED, RN_ERR_UNSUPPORTED_VERSION,
                   "record version %" PRIu32 " is newer than %d: metadata stops here; upgrade "
                   "this broker", rec->version, RN_IMG_RECORD_VERSION);
    } else {
        err = apply_body(img, rec, raft_index, r);
    }
    runnel__meta__metadata_record__free_unpacked(rec, NULL);
    if (err != RN_OK) {
        result_set(r, RN_IMG_REJECTED, err, "raft index %" PRIu64 ": %s", raft_index,
                   rn_err_str(err));
        return err;
    }
    if (r->outcome == RN_IMG_REJECTED)
        RN_WARN(IMG_LOG, "raft index %" PRIu64 ": record ignored (%s): %s", raft_index,
                rn_err_name(r->reason), r->message);
    else if (r->outcome == RN_IMG_STOPPED)
        /* loudly once; every later entry would repeat the same line */
        rn_logf(was_stopped ? RN_LVL_DEBUG : RN_LVL_ERROR, IMG_LOG, "raft index %" PRIu64 ": %s",
                raft_index, r->message);
    else if (r->outcome == RN_IMG_UNCHANGED)
        RN_DEBUG(IMG_LOG, "raft index %" PRIu64 ": %s", raft_index, r->message);
    return RN_OK;
}

/* ---- accessors ---- */

const char *rn_img_cluster_id(const rn_img_t *img)
{
    return img->cluster_id;
}

int64_t rn_img_next_producer_id_block(const rn_img_t *img)
{
    return img->next_producer_id_block;
}

size_t rn_img_broker_count(const rn_img_t *img)
{
    return img->n_brokers;
}

const rn_img_broker_t *rn_img_broker_at(const rn_img_t *img, size_t i)
{
    return i < img->n_brokers ? img->brokers[i] : NULL;
}

const rn_img_broker_t *rn_img_broker(const rn_img_t *img, int32_t id)
{
    bool found;
    size_t i = img_broker_pos(img, id, &found);
    return found ? img->brokers[i] : NULL;
}

size_t rn_img_topic_count(const rn_img_t *img)
{
    return img->n_topics;
}

const rn_img_topic_t *rn_img_topic_at(const rn_img_t *img, size_t i)
{
    return i < img->n_topics ? img->by_name[i] : NULL;
}

const rn_img_topic_t *rn_img_topic_by_name(const rn_img_t *img, const char *name)
{
    bool found;
    size_t i = img_topic_name_pos(img, name, &found);
    return found ? img->by_name[i] : NULL;
}

const rn_img_topic_t *rn_img_topic_by_id(const rn_img_t *img, const uint8_t id[RN_IMG_ID_LEN])
{
    return img_topic_find_id(img, id);
}

const char *rn_img_topic_name(const rn_img_topic_t *t)
{
    return t->name;
}

const uint8_t *rn_img_topic_id(const rn_img_topic_t *t)
{
    return t->id;
}

uint32_t rn_img_topic_partitions(const rn_img_topic_t *t)
{
    return t->n_partitions;
}

const rn_img_partition_t *rn_img_partition(const rn_img_topic_t *t, uint32_t p)
{
    return p < t->n_partitions ? &t->partitions[p] : NULL;
}

void rn_img_topic_config_each(const rn_img_topic_t *t,
                              void (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
    img_kv_each(&t->configs, fn, ctx);
}

void rn_img_config_each(const rn_img_t *img,
                        void (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
    img_kv_each(&img->configs, fn, ctx);
}

const char *rn_img_config(const rn_img_t *img, const char *topic, const char *key)
{
    if (!topic || !topic[0])
        return img_kv_get(&img->configs, key);
    const rn_img_topic_t *t = rn_img_topic_by_name(img, topic);
    return t ? img_kv_get(&t->configs, key) : NULL;
}
