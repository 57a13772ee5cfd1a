/* api.c - dispatch, and the APIs that answer at once from metadata. */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "controller.h"
#include "ctlops.h"
#include "fetch.h"
#include "image.h"
#include "logging.h"
#include "members.h"
#include "produce.h"
#include "repl.h"

#define API_MIN RUNNEL__API_KEY__API_VERSIONS
#define API_MAX RUNNEL__API_KEY__API_FETCH_METADATA_IMAGE
#define NAPIS (API_MAX - API_MIN + 1)

/* Whether this broker serves api (at version 0): the cluster APIs need cluster mode. */
static bool served(const rn_api_ctx_t *ctx, int api)
{
    if (api >= RUNNEL__API_KEY__API_VERSIONS && api <= RUNNEL__API_KEY__API_INIT_PRODUCER_ID)
        return true;
    if (api == RUNNEL__API_KEY__API_DESCRIBE_CLUSTER)
        return true;
    if (api == RUNNEL__API_KEY__API_BROKER_REGISTRATION ||
        api == RUNNEL__API_KEY__API_BROKER_HEARTBEAT ||
        api == RUNNEL__API_KEY__API_OFFSET_FOR_LEADER_EPOCH ||
        api == RUNNEL__API_KEY__API_ALTER_PARTITION ||
        api == RUNNEL__API_KEY__API_ALLOCATE_PRODUCER_IDS ||
        api == RUNNEL__API_KEY__API_FETCH_METADATA_IMAGE)
        return ctx->ctl != NULL;
    if (api == RUNNEL__API_KEY__API_ELECT_LEADERS)
        return true;
    return false;
}

void rn_api_send_error(rn_resp_t *resp, rn_err_t err, const char *msg)
{
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.error = (Runnel__ErrorCode)err;
    r.error_message = (char *)(msg ? msg : rn_err_str(err));
    rn_resp_note_error(resp, err);
    rn_resp_pack(resp, &r);
    rn_resp_send(resp);
}

/* Packs r (body set by the caller) and sends it; a failed arena becomes an error response. */
static void send_body(rn_resp_t *resp, Runnel__Response *r, rn_arena_t *a)
{
    if (a->failed)
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
    else if (rn_resp_pack(resp, r) != RN_OK)
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
    else
        rn_resp_send(resp);
    rn_arena_free(a);
}

/* ---------------------------------------------------------------- ApiVersions ---- */

static void api_versions(rn_api_ctx_t *ctx, rn_resp_t *resp, rn_err_t err)
{
    Runnel__ApiVersionRange ranges[NAPIS], *ptrs[NAPIS];
    size_t n = 0;
    for (int api = API_MIN; api <= API_MAX; api++) {
        if (!served(ctx, api))
            continue;
        runnel__api_version_range__init(&ranges[n]);
        ranges[n].api = (Runnel__ApiKey)api;
        ranges[n].min_version = 0;
        ranges[n].max_version = 0;
        ptrs[n] = &ranges[n];
        n++;
    }
    Runnel__ApiVersionsResponse body = RUNNEL__API_VERSIONS_RESPONSE__INIT;
    body.n_apis = n;
    body.apis = ptrs;
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.error = (Runnel__ErrorCode)err;
    rn_resp_note_error(resp, err);
    if (err != RN_OK)
        r.error_message = (char *)"only version 0 of every API is supported";
    r.body_case = RUNNEL__RESPONSE__BODY_API_VERSIONS;
    r.api_versions = &body;
    rn_arena_t a = RN_ARENA_INIT;
    send_body(resp, &r, &a);
}

/* ------------------------------------------------------------------- Metadata ---- */

struct cfg_list {
    rn_arena_t *a;
    Runnel__ConfigEntry **v;
    size_t n;
};

static void add_config(void *ctx, const char *key, const char *value)
{
    struct cfg_list *l = ctx;
    Runnel__ConfigEntry *e = rn_arena_calloc(l->a, 1, sizeof *e);
    if (!e)
        return;
    runnel__config_entry__init(e);
    e->key = rn_arena_strdup(l->a, key);
    e->value = rn_arena_strdup(l->a, value);
    l->v[l->n++] = e;
}

static Runnel__TopicMetadata *topic_metadata(rn_api_ctx_t *ctx, rn_arena_t *a,
                                              const char *name)
{
    Runnel__TopicMetadata *tm = rn_arena_calloc(a, 1, sizeof *tm);
    if (!tm)
        return NULL;
    runnel__topic_metadata__init(tm);
    tm->name = rn_arena_strdup(a, name);
    rn_topic_t *topic = rn_topics_find(ctx->topics, name);
    if (!topic) {
        tm->error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return tm;
    }
    uint32_t np = rn_topic_partition_count(topic);
    int32_t *node = rn_arena_calloc(a, 1, sizeof *node);
    tm->partitions = rn_arena_calloc(a, np, sizeof *tm->partitions);
    if (!node || !tm->partitions)
        return NULL;
    *node = ctx->cfg->node_id;
    for (uint32_t i = 0; i < np; i++) {
        Runnel__PartitionMetadata *pm = rn_arena_calloc(a, 1, sizeof *pm);
        if (!pm)
            return NULL;
        runnel__partition_metadata__init(pm);
        rn_log_t *log = rn_part_log(rn_topic_partition(topic, i));
        pm->partition = i;
        pm->leader = ctx->cfg->node_id;
        pm->leader_epoch = 0;
        pm->n_replicas = pm->n_isr = 1;
        pm->replicas = pm->isr = node;
        pm->log_start_offset = (int64_t)rn_log_start_offset(log);
        pm->log_end_offset = pm->high_watermark = (int64_t)rn_log_end_offset(log);
        tm->partitions[tm->n_partitions++] = pm;
    }
    struct cfg_list cl = {a, rn_arena_calloc(a, 32, sizeof(Runnel__ConfigEntry *)), 0};
    if (cl.v) {
        rn_log_config_each(rn_topic_config(topic), add_config, &cl);
        tm->configs = cl.v;
        tm->n_configs = cl.n;
    }
    return tm;
}

static bool in(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Cluster mode: one topic as the metadata image has it, with this broker's offsets where it
 * holds a replica (the HW only means something on the leader). */
static Runnel__TopicMetadata *cluster_topic_metadata(rn_api_ctx_t *ctx, rn_arena_t *a,
                                                      const char *name)
{
    Runnel__TopicMetadata *tm = rn_arena_calloc(a, 1, sizeof *tm);
    if (!tm)
        return NULL;
    runnel__topic_metadata__init(tm);
    tm->name = rn_arena_strdup(a, name);
    const rn_img_topic_t *t = rn_img_topic_by_name(ctx->img, name);
    if (!t) {
        tm->error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return tm;
    }
    rn_topic_t *local = rn_topics_find(ctx->topics, name);
    tm->topic_id.data = (uint8_t *)rn_img_topic_id(t);
    tm->topic_id.len = RN_IMG_ID_LEN;
    uint32_t np = rn_img_topic_partitions(t);
    tm->partitions = rn_arena_calloc(a, np, sizeof *tm->partitions);
    if (!tm->partitions)
        return NULL;
    for (uint32_t i = 0; i < np; i++) {
        const rn_img_partition_t *ps = rn_img_partition(t, i);
        Runnel__PartitionMetadata *pm = rn_arena_calloc(a, 1, sizeof *pm);
        int32_t *reps = rn_arena_calloc(a, ps->n_replicas + 1, sizeof *reps);
        int32_t *isr = rn_arena_calloc(a, ps->n_isr + 1, sizeof *isr);
        int32_t *off = rn_arena_calloc(a, ps->n_replicas + 1, sizeof *off);
        if (!pm || !reps || !isr || !off)
            return NULL;
        runnel__partition_metadata__init(pm);
        pm->partition = i;
        pm->leader = ps->leader;
        pm->leader_epoch = ps->leader_epoch;
        if (ps->leader < 0)
            pm->error = RUNNEL__ERROR_CODE__ERR_LEADER_NOT_AVAILABLE;
        memcpy(reps, ps->replicas, ps->n_replicas * sizeof *reps);
        memcpy(isr, ps->isr, ps->n_isr * sizeof *isr);
        pm->replicas = reps;
        pm->n_replicas = ps->n_replicas;
        pm->isr = isr;
        pm->n_isr = ps->n_isr;
        pm->offline_replicas = off;
        for (uint32_t j = 0; j < ps->n_replicas; j++) {
            const rn_img_broker_t *b = rn_img_broker(ctx->img, ps->replicas[j]);
            if (!b || b->fenced)
                off[pm->n_offline_replicas++] = ps->replicas[j];
        }
        rn_part_t *part = local ? rn_topic_partition(local, i) : NULL;
        pm->log_start_offset = pm->log_end_offset = pm->high_watermark = -1;
        if (part && in(ps->replicas, ps->n_replicas, ctx->cfg->node_id)) {
            rn_log_t *log = rn_part_log(part);
            pm->log_start_offset = (int64_t)rn_log_start_offset(log);
            pm->log_end_offset = (int64_t)rn_log_end_offset(log);
            pm->high_watermark = (int64_t)rn_repl_hw(part);
        }
        tm->partitions[tm->n_partitions++] = pm;
    }
    struct cfg_list cl = {a, rn_arena_calloc(a, 32, sizeof(Runnel__ConfigEntry *)), 0};
    if (cl.v && local) {
        rn_log_config_each(rn_topic_config(local), add_config, &cl);
    } else if (cl.v) {
        rn_img_topic_config_each(t, add_config, &cl);
    }
    tm->configs = cl.v;
    tm->n_configs = cl.n;
    return tm;
}

static void cluster_metadata(rn_api_ctx_t *ctx, rn_resp_t *resp, const Runnel__MetadataRequest *req)
{
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__MetadataResponse body = RUNNEL__METADATA_RESPONSE__INIT;
    body.controller_id = rn_ctl_controller_id(ctx->ctl);
    body.cluster_id = rn_arena_strdup(&a, rn_img_cluster_id(ctx->img));
    size_t nb = rn_img_broker_count(ctx->img);
    body.brokers = rn_arena_calloc(&a, nb + 1, sizeof *body.brokers);
    bool self_listed = false;
    for (size_t i = 0; i < nb && body.brokers; i++) {
        const rn_img_broker_t *b = rn_img_broker_at(ctx->img, i);
        Runnel__BrokerInfo *bi = rn_arena_calloc(&a, 1, sizeof *bi);
        if (b->fenced || !bi)
            continue;
        runnel__broker_info__init(bi);
        bi->node_id = b->id;
        bi->host = rn_arena_strdup(&a, b->host);
        bi->port = b->port;
        self_listed |= b->id == ctx->cfg->node_id;
        body.brokers[body.n_brokers++] = bi;
    }
    Runnel__BrokerInfo *me = rn_arena_calloc(&a, 1, sizeof *me);
    if (!self_listed && me && body.brokers) {
        /* Not unfenced yet: clients may still bootstrap through this broker. */
        runnel__broker_info__init(me);
        me->node_id = ctx->cfg->node_id;
        me->host = ctx->advertised_host;
        me->port = ctx->advertised_port;
        body.brokers[body.n_brokers++] = me;
    }
    size_t n = req->n_topics ? req->n_topics : rn_img_topic_count(ctx->img);
    body.topics = rn_arena_calloc(&a, n + 1, sizeof *body.topics);
    for (size_t i = 0; i < n && body.topics; i++) {
        const char *name = req->n_topics ? req->topics[i]
                                         : rn_img_topic_name(rn_img_topic_at(ctx->img, i));
        Runnel__TopicMetadata *tm = cluster_topic_metadata(ctx, &a, name);
        if (tm) {
            rn_resp_note_error(resp, (rn_err_t)tm->error);
            body.topics[body.n_topics++] = tm;
        }
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_METADATA;
    r.metadata = &body;
    send_body(resp, &r, &a);
}

static void api_metadata(rn_api_ctx_t *ctx, rn_resp_t *resp, const Runnel__MetadataRequest *req)
{
    if (ctx->ctl) {
        cluster_metadata(ctx, resp, req);
        return;
    }
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__BrokerInfo broker = RUNNEL__BROKER_INFO__INIT, *brokers[1] = {&broker};
    broker.node_id = ctx->cfg->node_id;
    broker.host = ctx->advertised_host;
    broker.port = ctx->advertised_port;
    Runnel__MetadataResponse body = RUNNEL__METADATA_RESPONSE__INIT;
    body.n_brokers = 1;
    body.brokers = brokers;
    /* Cluster mode: the raft leader (-1 while none is known); a single node is its own. */
    body.controller_id = ctx->ctl ? rn_ctl_controller_id(ctx->ctl) : ctx->cfg->node_id;
    size_t n = req->n_topics ? req->n_topics : rn_topics_count(ctx->topics);
    body.topics = rn_arena_calloc(&a, n, sizeof *body.topics);
    for (size_t i = 0; i < n && body.topics; i++) {
        const char *name = req->n_topics ? req->topics[i]
                                         : rn_topic_name(rn_topics_at(ctx->topics, i));
        Runnel__TopicMetadata *tm = topic_metadata(ctx, &a, name);
        if (tm) {
            rn_resp_note_error(resp, (rn_err_t)tm->error);
            body.topics[body.n_topics++] = tm;
        }
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_METADATA;
    r.metadata = &body;
    send_body(resp, &r, &a);
}

/* ------------------------------------------------------- CreateTopics/Delete ---- */

static Runnel__TopicResult *topic_result(rn_arena_t *a, const char *name, rn_err_t err,
                                         const char *msg)
{
    Runnel__TopicResult *tr = rn_arena_calloc(a, 1, sizeof *tr);
    if (!tr)
        return NULL;
    runnel__topic_result__init(tr);
    tr->name = rn_arena_strdup(a, name);
    tr->error = (Runnel__ErrorCode)err;
    if (err != RN_OK)
        tr->error_message = rn_arena_strdup(a, msg);
    return tr;
}

static bool named_twice(const Runnel__CreateTopicsRequest *req, size_t i)
{
    for (size_t j = 0; j < req->n_topics; j++) {
        if (j != i && strcmp(req->topics[j]->name, req->topics[i]->name) == 0)
            return true;
    }
    return false;
}

static rn_err_t create_one(rn_api_ctx_t *ctx, rn_arena_t *a, const Runnel__CreatableTopic *ct,
                           bool validate_only, char *msg, size_t msglen)
{
    const char **keys = rn_arena_calloc(a, ct->n_configs, sizeof *keys);
    const char **values = rn_arena_calloc(a, ct->n_configs, sizeof *values);
    if (!keys || !values) {
        snprintf(msg, msglen, "broker out of memory");
        return RN_ERR_UNKNOWN_SERVER_ERROR;
    }
    for (size_t i = 0; i < ct->n_configs; i++) {
        keys[i] = ct->configs[i]->key;
        values[i] = ct->configs[i]->value;
    }
    rn_topic_spec_t spec = {ct->name, ct->partitions, ct->replication_factor, ct->n_configs,
                            keys, values};
    if (validate_only)
        return rn_topics_validate(ctx->topics, &spec, ctx->cfg->num_partitions, msg, msglen);
    return rn_topics_create(ctx->topics, &spec, ctx->cfg->num_partitions, msg, msglen);
}

static void api_create_topics(rn_api_ctx_t *ctx, rn_resp_t *resp,
                              const Runnel__CreateTopicsRequest *req)
{
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__CreateTopicsResponse body = RUNNEL__CREATE_TOPICS_RESPONSE__INIT;
    body.results = rn_arena_calloc(&a, req->n_topics, sizeof *body.results);
    for (size_t i = 0; i < req->n_topics && body.results; i++) {
        const Runnel__CreatableTopic *ct = req->topics[i];
        char msg[512] = "";
        rn_err_t err;
        if (named_twice(req, i)) {
            err = RN_ERR_INVALID_REQUEST;
            snprintf(msg, sizeof msg, "topic '%s' appears more than once in the request",
                     ct->name);
        } else {
            err = create_one(ctx, &a, ct, req->validate_only, msg, sizeof msg);
        }
        rn_resp_note_error(resp, err);
        if (err != RN_OK)
            RN_INFO("api", "CreateTopics %s from %s: %s: %s", ct->name, rn_resp_peer(resp),
                    rn_err_name(err), msg);
        Runnel__TopicResult *tr = topic_result(&a, ct->name, err, msg);
        if (tr)
            body.results[body.n_results++] = tr;
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_CREATE_TOPICS;
    r.create_topics = &body;
    send_body(resp, &r, &a);
}

static void api_delete_topics(rn_api_ctx_t *ctx, rn_resp_t *resp,
                              const Runnel__DeleteTopicsRequest *req)
{
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__DeleteTopicsResponse body = RUNNEL__DELETE_TOPICS_RESPONSE__INIT;
    body.results = rn_arena_calloc(&a, req->n_topics, sizeof *body.results);
    for (size_t i = 0; i < req->n_topics && body.results; i++) {
        char msg[512] = "";
        rn_err_t err = rn_topics_delete(ctx->topics, req->topics[i], msg, sizeof msg);
        rn_resp_note_error(resp, err);
        Runnel__TopicResult *tr = topic_result(&a, req->topics[i], err, msg);
        if (tr)
            body.results[body.n_results++] = tr;
    }
    /* Long-poll fetches on a deleted topic answer now, with UNKNOWN_TOPIC_OR_PARTITION. */
    rn_fetch_poke(ctx->fetch);
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_DELETE_TOPICS;
    r.delete_topics = &body;
    send_body(resp, &r, &a);
}

/* ---------------------------------------------------------------- ListOffsets ---- */

static void list_one(rn_api_ctx_t *ctx, const char *topic_name, Runnel__ListOffsetsPartition *lp,
                     Runnel__ListOffsetsPartitionResult *res)
{
    res->partition = lp->partition;
    res->timestamp = -1;
    res->offset = -1;
    rn_topic_t *topic = rn_topics_find(ctx->topics, topic_name);
    rn_part_t *part = topic ? rn_topic_partition(topic, lp->partition) : NULL;
    if (!part) {
        res->error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    rn_log_t *log = rn_part_log(part);
    /* Served by the leader; "latest" only once a new leader knows its committed end. */
    rn_err_t lerr = rn_repl_offsets_check(part);
    if (lerr == RN_ERR_LEADER_NOT_AVAILABLE && lp->timestamp != -1)
        lerr = RN_OK;
    if (lerr != RN_OK) {
        res->error = (Runnel__ErrorCode)lerr;
        return;
    }
    if (lp->timestamp == -1) {
        res->offset = (int64_t)rn_repl_hw(part); /* consumers see up to the high watermark */
    } else if (lp->timestamp == -2) {
        res->offset = (int64_t)rn_log_start_offset(log);
    } else if (lp->timestamp < 0) {
        res->error = RUNNEL__ERROR_CODE__ERR_INVALID_REQUEST;
    } else {
        uint64_t off;
        rn_err_t err = rn_log_offset_for_time(log, lp->timestamp, &off);
        if (err == RN_OK)
            res->offset = (int64_t)off;
        else if (err == RN_ERR_NOT_FOUND)
            res->offset = (int64_t)rn_log_end_offset(log);
        else
            res->error = (Runnel__ErrorCode)rn_part_wire_err(err);
    }
}

static void api_list_offsets(rn_api_ctx_t *ctx, rn_resp_t *resp,
                             const Runnel__ListOffsetsRequest *req)
{
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__ListOffsetsResponse body = RUNNEL__LIST_OFFSETS_RESPONSE__INIT;
    body.topics = rn_arena_calloc(&a, req->n_topics, sizeof *body.topics);
    for (size_t i = 0; i < req->n_topics && body.topics; i++) {
        const Runnel__ListOffsetsTopic *lt = req->topics[i];
        Runnel__ListOffsetsTopicResult *tr = rn_arena_calloc(&a, 1, sizeof *tr);
        if (!tr)
            break;
        runnel__list_offsets_topic_result__init(tr);
        tr->name = rn_arena_strdup(&a, lt->name);
        tr->partitions = rn_arena_calloc(&a, lt->n_partitions, sizeof *tr->partitions);
        for (size_t j = 0; j < lt->n_partitions && tr->partitions; j++) {
            Runnel__ListOffsetsPartitionResult *pr = rn_arena_calloc(&a, 1, sizeof *pr);
            if (!pr)
                break;
            runnel__list_offsets_partition_result__init(pr);
            list_one(ctx, lt->name, lt->partitions[j], pr);
            rn_resp_note_error(resp, (rn_err_t)pr->error);
            tr->partitions[tr->n_partitions++] = pr;
        }
        body.topics[body.n_topics++] = tr;
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_LIST_OFFSETS;
    r.list_offsets = &body;
    send_body(resp, &r, &a);
}

/* ------------------------------------------------------------- InitProducerId ---- */

/*
 * producer_id -1: a new id at epoch 0. An id this broker issued, with its current epoch: the
 * same id at epoch + 1 (the producer resets its sequences, and the older epoch is fenced in
 * every partition it writes next), or a new id when the epoch would overflow.
 */
static void api_init_producer_id(rn_api_ctx_t *ctx, rn_resp_t *resp,
                                 const Runnel__InitProducerIdRequest *req)
{
    Runnel__InitProducerIdResponse body = RUNNEL__INIT_PRODUCER_ID_RESPONSE__INIT;
    if (req->producer_id >= 0) {
        if (!rn_pids_issued(ctx->pids, req->producer_id) || req->producer_epoch < 0) {
            rn_api_send_error(resp, RN_ERR_UNKNOWN_PRODUCER_ID,
                              "producer id was not issued by this broker; ask for a new one "
                              "with producer_id -1");
            return;
        }
        if (req->producer_epoch < INT16_MAX - 1) {
            body.producer_id = req->producer_id;
            body.producer_epoch = req->producer_epoch + 1;
        }
    }
    if (body.producer_epoch == 0) {
        int64_t id;
        rn_err_t err = rn_pids_next(ctx->pids, &id);
        if (err != RN_OK) {
            RN_ERROR("api", "cannot persist a producer-id block: %s", rn_err_str(err));
            rn_api_send_error(resp, RN_ERR_STORAGE_ERROR, "cannot persist a producer-id block");
            return;
        }
        body.producer_id = id;
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_INIT_PRODUCER_ID;
    r.init_producer_id = &body;
    rn_arena_t a = RN_ARENA_INIT;
    send_body(resp, &r, &a);
}

/* ------------------------------------------------------------ DescribeCluster ---- */

static Runnel__BrokerStatus *broker_status(rn_arena_t *a, int32_t id, const char *host,
                                           uint32_t port)
{
    Runnel__BrokerStatus *bs = rn_arena_calloc(a, 1, sizeof *bs);
    if (!bs)
        return NULL;
    runnel__broker_status__init(bs);
    bs->broker_id = id;
    bs->host = rn_arena_strdup(a, host);
    bs->port = port;
    return bs;
}

/*
 * Cluster mode: the brokers of this broker's image, raft's term and indexes. "alive" is the
 * active controller's session table (alive_known); any other broker answers alive = not
 * fenced. A single node: itself, alive and unfenced, and quorum = false.
 */
static void api_describe_cluster(rn_api_ctx_t *ctx, rn_resp_t *resp)
{
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__DescribeClusterResponse body = RUNNEL__DESCRIBE_CLUSTER_RESPONSE__INIT;
    body.answered_by = ctx->cfg->node_id;
    if (!ctx->ctl) {
        body.controller_id = ctx->cfg->node_id;
        body.alive_known = true;
        body.brokers = rn_arena_calloc(&a, 1, sizeof *body.brokers);
        Runnel__BrokerStatus *bs = broker_status(&a, ctx->cfg->node_id, ctx->advertised_host,
                                                 ctx->advertised_port);
        if (body.brokers && bs) {
            bs->alive = true;
            body.brokers[body.n_brokers++] = bs;
        }
    } else {
        rn_ctl_status_t st;
        rn_ctl_status(ctx->ctl, &st);
        body.quorum = true;
        body.cluster_id = rn_arena_strdup(&a, rn_img_cluster_id(ctx->img));
        body.controller_id = rn_ctl_controller_id(ctx->ctl);
        body.raft_term = st.term;
        body.raft_commit_index = st.commit_index;
        body.raft_last_applied = st.last_applied;
        body.alive_known = rn_ctl_is_active(ctx->ctl);
        rn_repl_counts(ctx->img, &body.under_replicated_partitions, &body.offline_partitions);
        size_t n = rn_img_broker_count(ctx->img);
        body.brokers = rn_arena_calloc(&a, n ? n : 1, sizeof *body.brokers);
        for (size_t i = 0; i < n && body.brokers; i++) {
            const rn_img_broker_t *b = rn_img_broker_at(ctx->img, i);
            Runnel__BrokerStatus *bs = broker_status(&a, b->id, b->host, b->port);
            if (!bs)
                break;
            bs->fenced = b->fenced;
            bs->broker_epoch = b->epoch;
            bs->alive = body.alive_known ? rn_mem_alive(ctx->mem, b->id) : !b->fenced;
            body.brokers[body.n_brokers++] = bs;
        }
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_DESCRIBE_CLUSTER;
    r.describe_cluster = &body;
    send_body(resp, &r, &a);
}

/* Cluster mode: this broker's image for an observer, when it is newer than the one it has. */
static void api_fetch_metadata_image(rn_api_ctx_t *ctx, rn_resp_t *resp,
                                     const Runnel__FetchMetadataImageRequest *req)
{
    rn_ctl_status_t st;
    rn_ctl_status(ctx->ctl, &st);
    Runnel__FetchMetadataImageResponse body = RUNNEL__FETCH_METADATA_IMAGE_RESPONSE__INIT;
    body.index = st.last_applied;
    body.controller_id = rn_ctl_controller_id(ctx->ctl);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (req->have_index < st.last_applied) {
        rn_err_t e = rn_img_snapshot(ctx->img, NULL, &bytes, &len);
        if (e != RN_OK) {
            rn_api_send_error(resp, e == RN_ERR_STATE ? RN_ERR_UNSUPPORTED_VERSION
                                                      : RN_ERR_UNKNOWN_SERVER_ERROR,
                              "this broker cannot encode its metadata image");
            return;
        }
        body.image.data = bytes;
        body.image.len = len;
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_FETCH_METADATA_IMAGE;
    r.fetch_metadata_image = &body;
    rn_arena_t a = RN_ARENA_INIT;
    send_body(resp, &r, &a);
    free(bytes);
}

/* A single node: every partition is led by its only (preferred) replica already. */
static void api_elect_leaders(rn_api_ctx_t *ctx, rn_resp_t *resp,
                              const Runnel__ElectLeadersRequest *req)
{
    if (ctx->ctl) {
        rn_cops_elect_leaders(ctx->cops, resp, req);
        return;
    }
    rn_arena_t a = RN_ARENA_INIT;
    Runnel__ElectLeadersResponse body = RUNNEL__ELECT_LEADERS_RESPONSE__INIT;
    size_t n = 0;
    for (size_t i = 0; i < rn_topics_count(ctx->topics); i++)
        n += rn_topic_partition_count(rn_topics_at(ctx->topics, i));
    body.results = rn_arena_calloc(&a, n + 1, sizeof *body.results);
    for (size_t i = 0; i < rn_topics_count(ctx->topics) && body.results; i++) {
        rn_topic_t *t = rn_topics_at(ctx->topics, i);
        bool want = req->n_topics == 0;
        for (size_t k = 0; k < req->n_topics; k++)
            want |= strcmp(req->topics[k], rn_topic_name(t)) == 0;
        for (uint32_t p = 0; want && p < rn_topic_partition_count(t); p++) {
            Runnel__ElectLeadersPartitionResult *res = rn_arena_calloc(&a, 1, sizeof *res);
            if (!res)
                break;
            runnel__elect_leaders_partition_result__init(res);
            res->topic = rn_arena_strdup(&a, rn_topic_name(t));
            res->partition = p;
            res->error = RUNNEL__ERROR_CODE__ERR_ELECTION_NOT_NEEDED;
            res->leader = ctx->cfg->node_id;
            body.results[body.n_results++] = res;
        }
    }
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_ELECT_LEADERS;
    r.elect_leaders = &body;
    send_body(resp, &r, &a);
}

/* ------------------------------------------------------------------- dispatch ---- */

void rn_api_dispatch(void *vctx, rn_resp_t *resp, Runnel__Request *req)
{
    rn_api_ctx_t *ctx = vctx;
    char msg[160];
    if (!req->header) {
        rn_api_send_error(resp, RN_ERR_INVALID_REQUEST, "request has no header");
        return;
    }
    int api = (int)req->header->api;
    if (api < API_MIN || api > API_MAX || !served(ctx, api)) {
        snprintf(msg, sizeof msg, "unknown API %d (ApiVersions lists the supported ones)", api);
        rn_api_send_error(resp, RN_ERR_UNSUPPORTED_VERSION, msg);
        return;
    }
    if (req->header->api_version != 0) {
        if (api == RUNNEL__API_KEY__API_VERSIONS) {
            api_versions(ctx, resp, RN_ERR_UNSUPPORTED_VERSION);
            return;
        }
        snprintf(msg, sizeof msg, "API %d version %" PRIu32 " is not supported (only 0)", api,
                 req->header->api_version);
        rn_api_send_error(resp, RN_ERR_UNSUPPORTED_VERSION, msg);
        return;
    }
    /* The body field numbers are the API numbers + 9 (runnel.proto). */
    if ((int)req->body_case != api + 9) {
        snprintf(msg, sizeof msg, "the request body does not match API %d", api);
        rn_api_send_error(resp, RN_ERR_INVALID_REQUEST, msg);
        return;
    }
    bool admin = api == RUNNEL__API_KEY__API_CREATE_TOPICS ||
                 api == RUNNEL__API_KEY__API_DELETE_TOPICS || api == RUNNEL__API_KEY__API_ELECT_LEADERS;
    if (admin && ctx->ctl && rn_cops_forward(ctx->cops, resp, req))
        return;
    switch (req->header->api) {
    case RUNNEL__API_KEY__API_VERSIONS: api_versions(ctx, resp, RN_OK); break;
    case RUNNEL__API_KEY__API_METADATA: api_metadata(ctx, resp, req->metadata); break;
    case RUNNEL__API_KEY__API_CREATE_TOPICS:
        if (ctx->ctl)
            rn_cops_create_topics(ctx->cops, resp, req->create_topics);
        else
            api_create_topics(ctx, resp, req->create_topics);
        break;
    case RUNNEL__API_KEY__API_DELETE_TOPICS:
        if (ctx->ctl)
            rn_cops_delete_topics(ctx->cops, resp, req->delete_topics);
        else
            api_delete_topics(ctx, resp, req->delete_topics);
        break;
    case RUNNEL__API_KEY__API_PRODUCE: rn_produce_handle(ctx, resp, req->produce); break;
    case RUNNEL__API_KEY__API_FETCH: rn_fetch_handle(ctx->fetch, resp, req->fetch); break;
    case RUNNEL__API_KEY__API_LIST_OFFSETS: api_list_offsets(ctx, resp, req->list_offsets); break;
    case RUNNEL__API_KEY__API_INIT_PRODUCER_ID:
        if (ctx->ctl)
            rn_cops_init_producer_id(ctx->cops, resp, req->init_producer_id);
        else
            api_init_producer_id(ctx, resp, req->init_producer_id);
        break;
    case RUNNEL__API_KEY__API_BROKER_REGISTRATION:
        rn_mem_handle_registration(ctx->mem, resp, req->broker_registration);
        break;
    case RUNNEL__API_KEY__API_BROKER_HEARTBEAT:
        rn_mem_handle_heartbeat(ctx->mem, resp, req->broker_heartbeat);
        break;
    case RUNNEL__API_KEY__API_DESCRIBE_CLUSTER: api_describe_cluster(ctx, resp); break;
    case RUNNEL__API_KEY__API_OFFSET_FOR_LEADER_EPOCH:
        rn_repl_handle_offset_for_epoch(ctx->repl, resp, req->offset_for_leader_epoch);
        break;
    case RUNNEL__API_KEY__API_ALTER_PARTITION:
        rn_cops_alter_partition(ctx->cops, resp, req->alter_partition);
        break;
    case RUNNEL__API_KEY__API_ELECT_LEADERS: api_elect_leaders(ctx, resp, req->elect_leaders); break;
    case RUNNEL__API_KEY__API_ALLOCATE_PRODUCER_IDS:
        rn_cops_allocate_pids(ctx->cops, resp, req->allocate_producer_ids);
        break;
    case RUNNEL__API_KEY__API_FETCH_METADATA_IMAGE:
        api_fetch_metadata_image(ctx, resp, req->fetch_metadata_image);
        break;
    default: rn_api_send_error(resp, RN_ERR_UNSUPPORTED_VERSION, "unknown API"); break;
    }
}
