/*
 * admin.c - create, delete and describe topics; elect leaders; list offsets.
 *
 * Each call is one request made on the I/O thread while the caller waits (rn_cl_call).
 * Describe goes to any reachable broker. CreateTopics, DeleteTopics and ElectLeaders go to the
 * active controller, the only broker that answers them in cluster mode: metadata's
 * controller_id (before any metadata the call fetches it first), or any broker when that node
 * is unknown. A failed connection, a timeout or NOT_CONTROLLER (the controller moved) makes
 * the call wait retry.backoff.ms, refresh metadata and ask again on the new best connection,
 * until the caller's timeout. A broker's error_message lands in the caller's errbuf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core.h"
#include "offsets.h"

struct rn_admin {
    rn_cl_t *cl;
};

typedef enum aop_kind { OP_CREATE, OP_DELETE, OP_DESCRIBE, OP_ELECT } aop_kind_t;

typedef struct aop {
    rn_cl_t *cl;
    rn_call_t *call;
    aop_kind_t kind;
    char *name;                   /* NULL for describe-all */
    int partitions;
    int replication_factor;
    char **cfg_keys, **cfg_values;
    size_t n_cfg;
    char **topics;                /* elect: the topics named; none for every topic */
    size_t n_topics;
    bool preferred;
    bool md_asked;                /* fetched metadata to learn the controller */
    int timeout_ms;
    char msg[512];
    Runnel__Response *resp;       /* describe, elect: the answer, owned until converted */
} aop_t;

static void aop_free(void *arg)
{
    aop_t *op = arg;
    free(op->name);
    for (size_t i = 0; i < op->n_cfg; i++) {
        free(op->cfg_keys[i]);
        free(op->cfg_values[i]);
    }
    free(op->cfg_keys);
    free(op->cfg_values);
    for (size_t i = 0; i < op->n_topics; i++)
        free(op->topics[i]);
    free(op->topics);
    if (op->resp)
        runnel__response__free_unpacked(op->resp, NULL);
    free(op);
}

static void aop_send(aop_t *op);

static bool to_controller(const aop_t *op)
{
    return op->kind != OP_DESCRIBE;
}

static void set_msg(aop_t *op, const char *msg)
{
    snprintf(op->msg, sizeof op->msg, "%s", msg ? msg : "");
}

/* Fresh metadata arrived (or its attempt failed: the next send finds out again). */
static void aop_retry(rn_cl_t *cl, void *arg, rn_err_t err)
{
    aop_t *op = arg;
    if (err == RN_ERR_CLOSED) {
        rn_call_done(cl, op->call, err);
        return;
    }
    aop_send(op);
}

static void aop_backed_off(rn_cl_t *cl, void *arg, rn_err_t err)
{
    aop_t *op = arg;
    if (err == RN_OK)
        err = rn_cl_md_wait(cl, aop_retry, op);
    if (err != RN_OK)
        rn_call_done(cl, op->call, err);
}

/*
 * Sends op again after retry.backoff.ms and a metadata refresh when err says the broker or
 * the controller may have moved and the caller's deadline leaves time. False: the caller
 * finishes op with err.
 */
static bool aop_again(aop_t *op, rn_err_t err)
{
    bool moved = err == RN_ERR_TRANSPORT || err == RN_ERR_TIMED_OUT ||
                 (err == RN_ERR_NOT_CONTROLLER && to_controller(op));
    if (!moved || rn_now_ns() >= rn_call_deadline_ns(op->call))
        return false;
    return rn_cl_later(op->cl, rn_cl_retry_backoff_ms(op->cl), aop_backed_off, op) == RN_OK;
}

static rn_err_t topic_result(aop_t *op, Runnel__TopicResult **results, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(results[i]->name, op->name) == 0) {
            set_msg(op, results[i]->error_message);
            return (rn_err_t)results[i]->error;
        }
    }
    set_msg(op, "the broker's answer does not name the topic");
    return RN_ERR_UNKNOWN_SERVER_ERROR;
}

/* The outcome of op's answer; keeps resp in op->resp when the caller converts it. */
static rn_err_t aop_take(aop_t *op, Runnel__Response *resp)
{
    rn_err_t err = RN_OK;
    if (resp->error != RUNNEL__ERROR_CODE__ERR_OK) {
        err = (rn_err_t)resp->error;
        set_msg(op, *resp->error_message ? resp->error_message : rn_err_str(err));
    } else if (op->kind == OP_CREATE && resp->body_case == RUNNEL__RESPONSE__BODY_CREATE_TOPICS) {
        err = topic_result(op, resp->create_topics->results, resp->create_topics->n_results);
    } else if (op->kind == OP_DELETE && resp->body_case == RUNNEL__RESPONSE__BODY_DELETE_TOPICS) {
        err = topic_result(op, resp->delete_topics->results, resp->delete_topics->n_results);
    } else if ((op->kind == OP_DESCRIBE && resp->body_case == RUNNEL__RESPONSE__BODY_METADATA) ||
               (op->kind == OP_ELECT && resp->body_case == RUNNEL__RESPONSE__BODY_ELECT_LEADERS)) {
        op->resp = resp;
        return RN_OK;
    } else {
        err = RN_ERR_UNKNOWN_SERVER_ERROR;
        set_msg(op, "unexpected answer from the broker");
    }
    runnel__response__free_unpacked(resp, NULL);
    return err;
}

static void aop_answered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    aop_t *op = ctx;
    if (err == RN_OK)
        err = aop_take(op, resp);
    else
        set_msg(op, err == RN_ERR_TRANSPORT ? "no broker reachable" : rn_err_str(err));
    if (err != RN_OK && aop_again(op, err))
        return;
    rn_call_done(op->cl, op->call, err);
}

/* The controller's connection for calls it must answer in a cluster (any broker would forward
 * them: this saves the hop); otherwise, and on a single node, the best one. */
static rn_conn_t *aop_conn(aop_t *op)
{
    rn_conn_t *conn = NULL;
    if (to_controller(op) && rn_cl_md_clustered(op->cl))
        conn = rn_cl_conn_for_node(op->cl, rn_cl_md_controller(op->cl));
    return conn ? conn : rn_cl_conn_any(op->cl);
}

static void aop_send(aop_t *op)
{
    rn_cl_t *cl = op->cl;
    if (to_controller(op) && rn_cl_md_version(cl) == 0 && !op->md_asked) {
        op->md_asked = true;
        rn_err_t err = rn_cl_md_wait(cl, aop_retry, op);
        if (err != RN_OK)
            rn_call_done(cl, op->call, err);
        return;
    }
    rn_conn_t *conn = aop_conn(op);
    if (!conn) {
        rn_call_done(cl, op->call, RN_ERR_TRANSPORT);
        return;
    }
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    Runnel__ApiKey api;
    Runnel__CreatableTopic ct = RUNNEL__CREATABLE_TOPIC__INIT;
    Runnel__CreatableTopic *ctp = &ct;
    Runnel__CreateTopicsRequest cr = RUNNEL__CREATE_TOPICS_REQUEST__INIT;
    Runnel__DeleteTopicsRequest dr = RUNNEL__DELETE_TOPICS_REQUEST__INIT;
    Runnel__MetadataRequest mr = RUNNEL__METADATA_REQUEST__INIT;
    Runnel__ElectLeadersRequest er = RUNNEL__ELECT_LEADERS_REQUEST__INIT;
    Runnel__ConfigEntry *entries = NULL, **entry_ptrs = NULL;
    uint32_t timeout = op->timeout_ms < 0 ? (uint32_t)rn_cl_request_timeout_ms(cl)
                                          : (uint32_t)op->timeout_ms;
    switch (op->kind) {
    case OP_CREATE:
        entries = calloc(op->n_cfg + 1, sizeof *entries);
        entry_ptrs = calloc(op->n_cfg + 1, sizeof *entry_ptrs);
        if (!entries || !entry_ptrs) {
            free(entries);
            free(entry_ptrs);
            rn_call_done(cl, op->call, RN_ERR_NOMEM);
            return;
        }
        for (size_t i = 0; i < op->n_cfg; i++) {
            runnel__config_entry__init(&entries[i]);
            entries[i].key = op->cfg_keys[i];
            entries[i].value = op->cfg_values[i];
            entry_ptrs[i] = &entries[i];
        }
        ct.name = op->name;
        ct.partitions = (uint32_t)op->partitions;
        ct.replication_factor = (uint32_t)op->replication_factor;
        ct.n_configs = op->n_cfg;
        ct.configs = entry_ptrs;
        cr.n_topics = 1;
        cr.topics = &ctp;
        cr.timeout_ms = timeout;
        req.body_case = RUNNEL__REQUEST__BODY_CREATE_TOPICS;
        req.create_topics = &cr;
        api = RUNNEL__API_KEY__API_CREATE_TOPICS;
        break;
    case OP_DELETE:
        dr.n_topics = 1;
        dr.topics = &op->name;
        dr.timeout_ms = timeout;
        req.body_case = RUNNEL__REQUEST__BODY_DELETE_TOPICS;
        req.delete_topics = &dr;
        api = RUNNEL__API_KEY__API_DELETE_TOPICS;
        break;
    case OP_ELECT:
        er.preferred = op->preferred;
        er.n_topics = op->n_topics;
        er.topics = op->topics;
        req.body_case = RUNNEL__REQUEST__BODY_ELECT_LEADERS;
        req.elect_leaders = &er;
        api = RUNNEL__API_KEY__API_ELECT_LEADERS;
        break;
    default:
        mr.n_topics = op->name ? 1 : 0;
        mr.topics = op->name ? &op->name : NULL;
        req.body_case = RUNNEL__REQUEST__BODY_METADATA;
        req.metadata = &mr;
        api = RUNNEL__API_KEY__API_METADATA;
        break;
    }
    rn_err_t err = rn_cl_send(cl, conn, &req, api, (int)timeout + rn_cl_request_timeout_ms(cl),
                              true, aop_answered, op);
    free(entries);
    free(entry_ptrs);
    if (err != RN_OK)
        rn_call_done(cl, op->call, err);
}

static void aop_start(rn_cl_t *cl, rn_call_t *call)
{
    aop_t *op = rn_call_op(call);
    op->cl = cl;
    op->call = call;
    aop_send(op);
}

/* Runs op; on return (unless abandoned) op still belongs to the caller. */
static rn_err_t aop_run(rn_admin_t *a, aop_t *op, int timeout_ms, bool *abandoned)
{
    op->timeout_ms = timeout_ms;
    return rn_cl_call(a->cl, aop_start, op, aop_free, timeout_ms, abandoned);
}

static rn_err_t errbuf_set(char *errbuf, size_t errlen, rn_err_t err, const char *msg)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", msg && *msg ? msg : rn_err_str(err));
    return err;
}

/* ------------------------------------------------------------------ public ---- */

rn_err_t rn_admin_new(const rn_conf_t *conf, rn_admin_t **out, char *errbuf, size_t errlen)
{
    if (!out)
        return RN_ERR_INVALID_ARG;
    *out = NULL;
    rn_admin_t *a = calloc(1, sizeof *a);
    if (!a)
        return RN_ERR_NOMEM;
    rn_err_t err = rn_cl_new(conf, NULL, a, &a->cl, errbuf, errlen);
    if (err == RN_OK && (err = rn_cl_start(a->cl)) != RN_OK) {
        rn_cl_stop(a->cl);
        rn_cl_free(a->cl);
    }
    if (err != RN_OK) {
        free(a);
        return err;
    }
    *out = a;
    return RN_OK;
}

void rn_admin_close(rn_admin_t *a)
{
    if (!a)
        return;
    rn_cl_stop(a->cl);
    rn_cl_free(a->cl);
    free(a);
}

rn_err_t rn_admin_create_topic(rn_admin_t *a, const char *name, int partitions,
                               int replication_factor, const char *const *configs,
                               int timeout_ms, char *errbuf, size_t errlen)
{
    if (!a || !name || !*name)
        return errbuf_set(errbuf, errlen, RN_ERR_INVALID_ARG, "a topic name is required");
    if (partitions <= 0)
        return errbuf_set(errbuf, errlen, RN_ERR_INVALID_PARTITIONS,
                          "the partition count must be at least 1");
    if (replication_factor <= 0)
        return errbuf_set(errbuf, errlen, RN_ERR_INVALID_REPLICATION_FACTOR,
                          "the replication factor must be at least 1");
    aop_t *op = calloc(1, sizeof *op);
    if (!op || !(op->name = strdup(name))) {
        free(op);
        return errbuf_set(errbuf, errlen, RN_ERR_NOMEM, NULL);
    }
    op->kind = OP_CREATE;
    op->partitions = partitions;
    op->replication_factor = replication_factor;
    size_t n = 0;
    while (configs && configs[n])
        n++;
    op->cfg_keys = calloc(n + 1, sizeof *op->cfg_keys);
    op->cfg_values = calloc(n + 1, sizeof *op->cfg_values);
    if (!op->cfg_keys || !op->cfg_values) {
        aop_free(op);
        return errbuf_set(errbuf, errlen, RN_ERR_NOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(configs[i], '=');
        if (!eq || eq == configs[i]) {
            char msg[300];
            snprintf(msg, sizeof msg, "topic config \"%s\" is not key=value", configs[i]);
            aop_free(op);
            return errbuf_set(errbuf, errlen, RN_ERR_INVALID_CONFIG, msg);
        }
        op->cfg_keys[i] = strndup(configs[i], (size_t)(eq - configs[i]));
        op->cfg_values[i] = strdup(eq + 1);
        op->n_cfg = i + 1;
        if (!op->cfg_keys[i] || !op->cfg_values[i]) {
            aop_free(op);
            return errbuf_set(errbuf, errlen, RN_ERR_NOMEM, NULL);
        }
    }
    bool abandoned;
    rn_err_t err = aop_run(a, op, timeout_ms, &abandoned);
    errbuf_set(errbuf, errlen, err, abandoned ? NULL : op->msg);
    if (!abandoned)
        aop_free(op);
    return err;
}

rn_err_t rn_admin_delete_topic(rn_admin_t *a, const char *name, int timeout_ms, char *errbuf,
                               size_t errlen)
{
    if (!a || !name || !*name)
        return errbuf_set(errbuf, errlen, RN_ERR_INVALID_ARG, "a topic name is required");
    aop_t *op = calloc(1, sizeof *op);
    if (!op || !(op->name = strdup(name))) {
        free(op);
        return errbuf_set(errbuf, errlen, RN_ERR_NOMEM, NULL);
    }
    op->kind = OP_DELETE;
    bool abandoned;
    rn_err_t err = aop_run(a, op, timeout_ms, &abandoned);
    errbuf_set(errbuf, errlen, err, abandoned ? NULL : op->msg);
    if (!abandoned)
        aop_free(op);
    return err;
}

/* rn_metadata_t and everything it points to, in one piece with the answer it was made from. */
typedef struct md_holder {
    rn_metadata_t md;             /* first: rn_metadata_free casts back */
    Runnel__Response *resp;
    rn_broker_info_t *brokers;
    rn_topic_info_t *topics;
    rn_partition_info_t *parts;
    const char **cfg;
} md_holder_t;

void rn_metadata_free(rn_metadata_t *md)
{
    if (!md)
        return;
    md_holder_t *h = (md_holder_t *)md;
    if (h->resp)
        runnel__response__free_unpacked(h->resp, NULL);
    free(h->brokers);
    free(h->topics);
    free(h->parts);
    free(h->cfg);
    free(h);
}

static md_holder_t *md_convert(Runnel__Response *resp)
{
    const Runnel__MetadataResponse *m = resp->metadata;
    md_holder_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    size_t np = 0, nc = 0;
    for (size_t i = 0; i < m->n_topics; i++) {
        np += m->topics[i]->n_partitions;
        nc += m->topics[i]->n_configs;
    }
    h->brokers = calloc(m->n_brokers + 1, sizeof *h->brokers);
    h->topics = calloc(m->n_topics + 1, sizeof *h->topics);
    h->parts = calloc(np + 1, sizeof *h->parts);
    h->cfg = calloc(2 * nc + 1, sizeof *h->cfg);
    if (!h->brokers || !h->topics || !h->parts || !h->cfg) {
        rn_metadata_free(&h->md);
        return NULL;
    }
    for (size_t i = 0; i < m->n_brokers; i++)
        h->brokers[i] = (rn_broker_info_t){m->brokers[i]->node_id, m->brokers[i]->host,
                                           (int)m->brokers[i]->port};
    size_t pi = 0, ci = 0;
    for (size_t i = 0; i < m->n_topics; i++) {
        const Runnel__TopicMetadata *t = m->topics[i];
        rn_topic_info_t *ti = &h->topics[i];
        ti->name = t->name;
        ti->err = (rn_err_t)t->error;
        ti->partitions = &h->parts[pi];
        ti->partition_count = t->n_partitions;
        for (size_t j = 0; j < t->n_partitions; j++) {
            const Runnel__PartitionMetadata *p = t->partitions[j];
            h->parts[pi++] = (rn_partition_info_t){
                .partition = (int32_t)p->partition,
                .err = (rn_err_t)p->error,
                .leader = p->leader,
                .leader_epoch = p->leader_epoch,
                .replicas = p->replicas,
                .replica_count = p->n_replicas,
                .isr = p->isr,
                .isr_count = p->n_isr,
                .log_start_offset = p->log_start_offset,
                .log_end_offset = p->log_end_offset,
                .high_watermark = p->high_watermark,
                .offline_replicas = p->offline_replicas,
                .offline_count = p->n_offline_replicas,
            };
        }
        ti->config_keys = &h->cfg[ci];
        ti->config_values = &h->cfg[ci + t->n_configs];
        ti->config_count = t->n_configs;
        for (size_t j = 0; j < t->n_configs; j++) {
            h->cfg[ci + j] = t->configs[j]->key;
            h->cfg[ci + t->n_configs + j] = t->configs[j]->value;
        }
        ci += 2 * t->n_configs;
    }
    h->md = (rn_metadata_t){
        .brokers = h->brokers,
        .broker_count = m->n_brokers,
        .controller_id = m->controller_id,
        .topics = h->topics,
        .topic_count = m->n_topics,
    };
    h->resp = resp;
    return h;
}

rn_err_t rn_admin_describe(rn_admin_t *a, const char *topic, int timeout_ms, rn_metadata_t **out)
{
    if (!a || !out)
        return RN_ERR_INVALID_ARG;
    *out = NULL;
    aop_t *op = calloc(1, sizeof *op);
    if (!op || (topic && !(op->name = strdup(topic)))) {
        free(op);
        return RN_ERR_NOMEM;
    }
    op->kind = OP_DESCRIBE;
    bool abandoned;
    rn_err_t err = aop_run(a, op, timeout_ms, &abandoned);
    if (abandoned)
        return err;
    if (err == RN_OK && topic) {
        /* One named topic: its error is the call's. */
        const Runnel__MetadataResponse *m = op->resp->metadata;
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        for (size_t i = 0; i < m->n_topics; i++) {
            if (strcmp(m->topics[i]->name, topic) == 0)
                err = (rn_err_t)m->topics[i]->error;
        }
    }
    if (err == RN_OK) {
        md_holder_t *h = md_convert(op->resp);
        if (!h) {
            err = RN_ERR_NOMEM;
        } else {
            op->resp = NULL;
            *out = &h->md;
        }
    }
    aop_free(op);
    return err;
}

rn_err_t rn_admin_list_offsets(rn_admin_t *a, const char *topic, int32_t partition, int64_t ts,
                               int64_t *offset, int timeout_ms)
{
    if (!a || !topic || !offset || partition < 0 || ts < RN_OFFSET_BEGINNING)
        return RN_ERR_INVALID_ARG;
    return rn_lo_call(a->cl, topic, partition, ts, timeout_ms, offset);
}

/* rn_election_results_t and its entries, in one piece with the answer they point into. */
typedef struct elect_holder {
    rn_election_results_t r;      /* first: rn_election_results_free casts back */
    Runnel__Response *resp;
    rn_election_result_t *items;
} elect_holder_t;

void rn_election_results_free(rn_election_results_t *r)
{
    if (!r)
        return;
    elect_holder_t *h = (elect_holder_t *)r;
    if (h->resp)
        runnel__response__free_unpacked(h->resp, NULL);
    free(h->items);
    free(h);
}

static int cmp_election(const void *a, const void *b)
{
    const rn_election_result_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Takes resp on success. */
static elect_holder_t *elect_convert(Runnel__Response *resp)
{
    const Runnel__ElectLeadersResponse *er = resp->elect_leaders;
    elect_holder_t *h = calloc(1, sizeof *h);
    if (!h || !(h->items = calloc(er->n_results + 1, sizeof *h->items))) {
        free(h);
        return NULL;
    }
    for (size_t i = 0; i < er->n_results; i++) {
        const Runnel__ElectLeadersPartitionResult *pr = er->results[i];
        h->items[i] = (rn_election_result_t){pr->topic, (int32_t)pr->partition,
                                             (rn_err_t)pr->error, pr->leader};
    }
    qsort(h->items, er->n_results, sizeof *h->items, cmp_election);
    h->r = (rn_election_results_t){h->items, er->n_results};
    h->resp = resp;
    return h;
}

rn_err_t rn_admin_elect_leaders(rn_admin_t *a, bool preferred, const char *const *topics,
                                int timeout_ms, rn_election_results_t **out, char *errbuf,
                                size_t errlen)
{
    if (!a || !out)
        return errbuf_set(errbuf, errlen, RN_ERR_INVALID_ARG, NULL);
    *out = NULL;
    size_t n = 0;
    while (topics && topics[n])
        n++;
    aop_t *op = calloc(1, sizeof *op);
    if (!op || !(op->topics = calloc(n + 1, sizeof *op->topics))) {
        free(op);
        return errbuf_set(errbuf, errlen, RN_ERR_NOMEM, NULL);
    }
    op->kind = OP_ELECT;
    op->preferred = preferred;
    for (; op->n_topics < n; op->n_topics++) {
        if (!*topics[op->n_topics]) {
            aop_free(op);
            return errbuf_set(errbuf, errlen, RN_ERR_INVALID_ARG, "an empty topic name");
        }
        if (!(op->topics[op->n_topics] = strdup(topics[op->n_topics]))) {
            aop_free(op);
            return errbuf_set(errbuf, errlen, RN_ERR_NOMEM, NULL);
        }
    }
    bool abandoned;
    rn_err_t err = aop_run(a, op, timeout_ms, &abandoned);
    if (abandoned)
        return errbuf_set(errbuf, errlen, err, NULL);
    if (err == RN_OK) {
        elect_holder_t *h = elect_convert(op->resp);
        if (!h) {
            err = RN_ERR_NOMEM;
        } else {
            op->resp = NULL;
            *out = &h->r;
        }
    }
    errbuf_set(errbuf, errlen, err, err == RN_OK ? NULL : op->msg);
    aop_free(op);
    return err;
}
