/* ctlops.c - the active controller's admin and replication decisions (see ctlops.h). */
#include "ctlops_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "arena.h"
#include "logging.h"
#include "metadata.pb-c.h"

#define MAX_RF 16

/* ------------------------------------------------------------------ common ---- */

static void op_cancel(void *arg)
{
    struct op *op = arg;
    op->resp = NULL;
}

void rn_cops__op_send(struct op *op)
{
    if (op->resp) {
        rn_resp_on_cancel(op->resp, NULL, NULL);
        if (op->finish)
            op->finish(op);
        if (op->a.failed || rn_resp_pack(op->resp, &op->r) != RN_OK) {
            rn_resp_clear(op->resp);
            Runnel__Response e = RUNNEL__RESPONSE__INIT;
            e.error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_SERVER_ERROR;
            e.error_message = (char *)"broker out of memory";
            (void)rn_resp_pack(op->resp, &e);
        }
        rn_resp_send(op->resp);
    }
    rn_arena_free(&op->a);
    free(op);
}

struct op *rn_cops__op_new(rn_cops_t *c, rn_resp_t *resp)
{
    struct op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->c = c;
    op->resp = resp;
    runnel__response__init(&op->r);
    rn_resp_on_cancel(resp, op_cancel, op);
    return op;
}

/* All proposals made: answer now if none is pending. */
void rn_cops__op_arm(struct op *op)
{
    op->armed = true;
    if (op->pending == 0)
        rn_cops__op_send(op);
}

void rn_cops__error(rn_resp_t *resp, rn_err_t err, const char *msg)
{
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.error = (Runnel__ErrorCode)err;
    r.error_message = (char *)msg;
    rn_resp_note_error(resp, err);
    if (rn_resp_pack(resp, &r) != RN_OK)
        rn_resp_clear(resp);
    rn_resp_send(resp);
}

bool rn_cops__refuse(rn_cops_t *c, rn_resp_t *resp)
{
    if (c && rn_ctl_is_active(c->ctl))
        return false;
    rn_cops__error(resp, RN_ERR_NOT_CONTROLLER,
                     "this broker is not the active controller; ask the broker Metadata names "
                     "as controller_id");
    return true;
}

/* Proposes rec; cb(arg, status, index, result) as rn_ctl_propose. */
rn_err_t rn_cops__propose(rn_cops_t *c, Runnel__Meta__MetadataRecord *rec, rn_ctl_propose_cb cb,
                        void *arg)
{
    rec->version = RN_IMG_RECORD_VERSION;
    size_t len = runnel__meta__metadata_record__get_packed_size(rec);
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return RN_ERR_NOMEM;
    runnel__meta__metadata_record__pack(rec, b);
    rn_err_t err = rn_ctl_propose(c->ctl, b, len, cb, arg);
    free(b);
    return err;
}

/* Proposes a PartitionChangeRecord: ps with leader, isr and leader epoch replaced, the
 * partition epoch + 1. */
static rn_err_t propose_change(rn_cops_t *c, const rn_img_topic_t *t, uint32_t p,
                               const rn_img_partition_t *ps, int32_t leader, const int32_t *isr,
                               size_t n_isr, uint32_t leader_epoch, rn_ctl_propose_cb cb, void *arg)
{
    Runnel__Meta__PartitionState st = RUNNEL__META__PARTITION_STATE__INIT;
    st.replicas = (int32_t *)ps->replicas;
    st.n_replicas = ps->n_replicas;
    st.isr = (int32_t *)isr;
    st.n_isr = n_isr;
    st.leader = leader;
    st.leader_epoch = leader_epoch;
    st.partition_epoch = ps->partition_epoch + 1;
    Runnel__Meta__PartitionChangeRecord pc = RUNNEL__META__PARTITION_CHANGE_RECORD__INIT;
    pc.topic_id.data = (uint8_t *)rn_img_topic_id(t);
    pc.topic_id.len = RN_IMG_ID_LEN;
    pc.partition = p;
    pc.state = &st;
    Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
    rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_PARTITION_CHANGE;
    rec.partition_change = &pc;
    return rn_cops__propose(c, &rec, cb, arg);
}

/* The wire error for a proposal's outcome, with its message in *msg. */
rn_err_t rn_cops__outcome(rn_err_t status, const rn_img_result_t *res, const char **msg)
{
    *msg = "";
    if (status != RN_OK) {
        *msg = "the change was not committed (controller changed); retry";
        return status == RN_CTL_ERR_NOT_CONTROLLER ? RN_ERR_NOT_CONTROLLER
                                                   : RN_ERR_REQUEST_TIMED_OUT;
    }
    if (res && res->outcome == RN_IMG_REJECTED) {
        *msg = res->message;
        return res->reason > 0 ? res->reason : RN_ERR_INVALID_REQUEST;
    }
    return RN_OK;
}

static bool has(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool unfenced(const rn_img_t *img, int32_t id)
{
    const rn_img_broker_t *b = rn_img_broker(img, id);
    return b && !b->fenced;
}

/*
 * The start of every controller request: NOT_CONTROLLER unless active, then an op whose
 * response body (of message type d, initialised) is set as op->r's body_case. NULL when it
 * already answered (refused, or out of memory).
 */
static struct op *op_begin(rn_cops_t *c, rn_resp_t *resp, const ProtobufCMessageDescriptor *d,
                           Runnel__Response__BodyCase body_case, void **body)
{
    if (rn_cops__refuse(c, resp))
        return NULL;
    struct op *op = rn_cops__op_new(c, resp);
    *body = op ? rn_arena_calloc(&op->a, 1, d->sizeof_message) : NULL;
    if (!*body) {
        if (op)
            rn_cops__op_send(op);
        else
            rn_cops__error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return NULL;
    }
    protobuf_c_message_init(d, *body);
    op->r.body_case = body_case;
    /* every body member of the oneof shares one address */
    op->r.create_topics = *body;
    return op;
}

/* ------------------------------------------------------------ CreateTopics ---- */

static Runnel__TopicResult *topic_result(rn_arena_t *a, const char *name, rn_err_t err,
                                         const char *msg)
{
    Runnel__TopicResult *tr = rn_arena_calloc(a, 1, sizeof *tr);
    if (!tr)
        return NULL;
    runnel__topic_result__init(tr);
    tr->name = rn_arena_strdup(a, name);
    tr->error = (Runnel__ErrorCode)err;
    tr->error_message = rn_arena_strdup(a, msg ? msg : "");
    return tr;
}

static void on_topic_done(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct prop *p = arg;
    struct op *op = p->op;
    (void)index;
    const char *msg;
    rn_err_t err = rn_cops__outcome(status, result, &msg);
    /* body is a oneof (a union): which one is in body_case */
    Runnel__TopicResult *tr = op->r.body_case == RUNNEL__RESPONSE__BODY_CREATE_TOPICS
                                  ? op->r.create_topics->results[p->slot]
                                  : op->r.delete_topics->results[p->slot];
    tr->error = (Runnel__ErrorCode)err;
    tr->error_message = rn_arena_strdup(&op->a, msg);
    if (op->resp)
        rn_resp_note_error(op->resp, err);
    free(p);
    if (--op->pending == 0 && op->armed)
        rn_cops__op_send(op);
}

static uint32_t random_u32(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (uint32_t)uv_hrtime();
    return v;
}

/* Validates ct and fills a TopicRecord (arena memory); RN_OK or a wire error with msg. */
static rn_err_t plan_topic(rn_cops_t *c, rn_arena_t *a, const Runnel__CreatableTopic *ct,
                           Runnel__Meta__TopicRecord *tr, char *msg, size_t msglen)
{
    if (rn_img_topic_by_name(c->img, ct->name)) {
        snprintf(msg, msglen, "topic '%s' already exists", ct->name);
        return RN_ERR_TOPIC_ALREADY_EXISTS;
    }
    uint32_t rf = ct->replication_factor ? ct->replication_factor : c->default_rf;
    const char **keys = rn_arena_calloc(a, ct->n_configs + 1, sizeof *keys);
    const char **values = rn_arena_calloc(a, ct->n_configs + 1, sizeof *values);
    if (!keys || !values)
        return RN_ERR_UNKNOWN_SERVER_ERROR;
    for (size_t i = 0; i < ct->n_configs; i++) {
        keys[i] = ct->configs[i]->key;
        values[i] = ct->configs[i]->value;
    }
    /* Name, partitions and configs as on one node; the local table may hold a stale copy. */
    rn_topic_spec_t spec = {ct->name, ct->partitions, 1, ct->n_configs, keys, values};
    rn_err_t err = rn_topics_validate(c->topics, &spec, c->num_partitions, msg, msglen);
    if (err != RN_OK && err != RN_ERR_TOPIC_ALREADY_EXISTS)
        return err;
    int32_t brokers[256];
    size_t nb = 0;
    for (size_t i = 0; i < rn_img_broker_count(c->img) && nb < 256; i++) {
        const rn_img_broker_t *b = rn_img_broker_at(c->img, i);
        if (!b->fenced)
            brokers[nb++] = b->id;
    }
    if (rf == 0 || rf > MAX_RF || rf > nb) {
        snprintf(msg, msglen, "replication factor %" PRIu32 " is more than the %zu available "
                 "(unfenced) broker(s)%s", rf, nb, rf > MAX_RF ? " or the limit of 16" : "");
        return RN_ERR_INVALID_REPLICATION_FACTOR;
    }
    uint32_t np = ct->partitions ? ct->partitions : c->num_partitions;
    uint8_t *id = rn_arena_calloc(a, RN_IMG_ID_LEN, 1);
    Runnel__Meta__PartitionState *ps = rn_arena_calloc(a, np, sizeof *ps);
    Runnel__Meta__PartitionState **pps = rn_arena_calloc(a, np, sizeof *pps);
    Runnel__Meta__ConfigEntry *ce = rn_arena_calloc(a, ct->n_configs + 1, sizeof *ce);
    Runnel__Meta__ConfigEntry **ces = rn_arena_calloc(a, ct->n_configs + 1, sizeof *ces);
    if (!id || !ps || !pps || !ce || !ces || getrandom(id, RN_IMG_ID_LEN, 0) != RN_IMG_ID_LEN)
        return RN_ERR_UNKNOWN_SERVER_ERROR;
    uint32_t start = random_u32() % (uint32_t)nb;
    for (uint32_t p = 0; p < np; p++) {
        runnel__meta__partition_state__init(&ps[p]);
        int32_t *reps = rn_arena_calloc(a, rf, sizeof *reps);
        int32_t *isr = rn_arena_calloc(a, rf, sizeof *isr);
        if (!reps || !isr)
            return RN_ERR_UNKNOWN_SERVER_ERROR;
        for (uint32_t j = 0; j < rf; j++)
            reps[j] = isr[j] = brokers[(start + p + j) % nb];
        ps[p].replicas = reps;
        ps[p].n_replicas = rf;
        ps[p].isr = isr;
        ps[p].n_isr = rf;
        ps[p].leader = reps[0];
        pps[p] = &ps[p];
    }
    size_t nc = 0;
    bool unclean_set = false;
    for (size_t i = 0; i < ct->n_configs; i++) {
        runnel__meta__config_entry__init(&ce[nc]);
        ce[nc].key = ct->configs[i]->key;
        ce[nc].value = ct->configs[i]->value;
        unclean_set |= strcmp(ce[nc].key, "unclean.leader.election.enable") == 0;
        ces[nc] = &ce[nc];
        nc++;
    }
    if (c->unclean_default && !unclean_set) {
        /* Elections run in the image's apply, which reads topic configs only. */
        runnel__meta__config_entry__init(&ce[nc]);
        ce[nc].key = (char *)"unclean.leader.election.enable";
        ce[nc].value = (char *)"true";
        ces[nc] = &ce[nc];
        nc++;
    }
    tr->name = ct->name;
    tr->topic_id.data = id;
    tr->topic_id.len = RN_IMG_ID_LEN;
    tr->partitions = pps;
    tr->n_partitions = np;
    tr->configs = ces;
    tr->n_configs = nc;
    return RN_OK;
}

void rn_cops_create_topics(rn_cops_t *c, rn_resp_t *resp, const Runnel__CreateTopicsRequest *req)
{
    Runnel__CreateTopicsResponse *body;
    struct op *op = op_begin(c, resp, &runnel__create_topics_response__descriptor,
                             RUNNEL__RESPONSE__BODY_CREATE_TOPICS, (void **)&body);
    if (!op)
        return;
    body->results = rn_arena_calloc(&op->a, req->n_topics + 1, sizeof *body->results);
    for (size_t i = 0; i < req->n_topics && body->results; i++) {
        const Runnel__CreatableTopic *ct = req->topics[i];
        char msg[512] = "";
        rn_err_t err = RN_OK;
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->topics[j]->name, ct->name) == 0) {
                err = RN_ERR_INVALID_REQUEST;
                snprintf(msg, sizeof msg, "topic '%s' appears more than once in the request",
                         ct->name);
            }
        Runnel__Meta__TopicRecord tr = RUNNEL__META__TOPIC_RECORD__INIT;
        if (err == RN_OK)
            err = plan_topic(c, &op->a, ct, &tr, msg, sizeof msg);
        Runnel__TopicResult *res = topic_result(&op->a, ct->name, err, msg);
        if (!res)
            break;
        body->results[body->n_results++] = res;
        if (err != RN_OK) {
            rn_resp_note_error(resp, err);
            RN_INFO("cluster", "CreateTopics %s from %s: %s: %s", ct->name, rn_resp_peer(resp),
                    rn_err_name(err), msg);
            continue;
        }
        if (req->validate_only)
            continue;
        Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
        rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_TOPIC;
        rec.topic = &tr;
        struct prop *p = malloc(sizeof *p);
        rn_err_t pe = p ? rn_cops__propose(c, &rec, on_topic_done, p) : RN_ERR_NOMEM;
        if (pe != RN_OK) {
            free(p);
            res->error = (Runnel__ErrorCode)(pe == RN_CTL_ERR_NOT_CONTROLLER ? RN_ERR_NOT_CONTROLLER
                                                                             : RN_ERR_UNKNOWN_SERVER_ERROR);
            continue;
        }
        *p = (struct prop){op, body->n_results - 1};
        op->pending++;
    }
    rn_cops__op_arm(op);
}

/* ------------------------------------------------------------ DeleteTopics ---- */

void rn_cops_delete_topics(rn_cops_t *c, rn_resp_t *resp, const Runnel__DeleteTopicsRequest *req)
{
    Runnel__DeleteTopicsResponse *body;
    struct op *op = op_begin(c, resp, &runnel__delete_topics_response__descriptor,
                             RUNNEL__RESPONSE__BODY_DELETE_TOPICS, (void **)&body);
    if (!op)
        return;
    body->results = rn_arena_calloc(&op->a, req->n_topics + 1, sizeof *body->results);
    for (size_t i = 0; i < req->n_topics && body->results; i++) {
        const rn_img_topic_t *t = rn_img_topic_by_name(c->img, req->topics[i]);
        rn_err_t err = t ? RN_OK : RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        Runnel__TopicResult *res = topic_result(&op->a, req->topics[i], err,
                                                t ? "" : "no such topic");
        if (!res)
            break;
        body->results[body->n_results++] = res;
        if (!t) {
            rn_resp_note_error(resp, err);
            continue;
        }
        Runnel__Meta__RemoveTopicRecord rt = RUNNEL__META__REMOVE_TOPIC_RECORD__INIT;
        rt.topic_id.data = (uint8_t *)rn_img_topic_id(t);
        rt.topic_id.len = RN_IMG_ID_LEN;
        Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
        rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_REMOVE_TOPIC;
        rec.remove_topic = &rt;
        struct prop *p = malloc(sizeof *p);
        if (!p || rn_cops__propose(c, &rec, on_topic_done, p) != RN_OK) {
            free(p);
            res->error = RUNNEL__ERROR_CODE__ERR_NOT_CONTROLLER;
            continue;
        }
        *p = (struct prop){op, body->n_results - 1};
        op->pending++;
    }
    rn_cops__op_arm(op);
}

/* ---------------------------------------------------------- AlterPartition ---- */

struct alter {
    struct op *op;
    char topic[256];
    uint32_t partition;
};

static void fill_state(Runnel__AlterPartitionResponse *ar, rn_arena_t *a,
                       const rn_img_partition_t *ps)
{
    ar->leader = ps->leader;
    ar->leader_epoch = ps->leader_epoch;
    ar->partition_epoch = ps->partition_epoch;
    ar->isr = rn_arena_calloc(a, ps->n_isr + 1, sizeof *ar->isr);
    if (ar->isr) {
        memcpy(ar->isr, ps->isr, ps->n_isr * sizeof *ar->isr);
        ar->n_isr = ps->n_isr;
    }
}

static void on_altered(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct alter *al = arg;
    struct op *op = al->op;
    (void)index;
    const char *msg;
    Runnel__AlterPartitionResponse *ar = op->r.alter_partition;
    rn_err_t err = rn_cops__outcome(status, result, &msg);
    ar->error = (Runnel__ErrorCode)err;
    ar->error_message = rn_arena_strdup(&op->a, msg);
    const rn_img_topic_t *t = rn_img_topic_by_name(op->c->img, al->topic);
    const rn_img_partition_t *ps = t ? rn_img_partition(t, al->partition) : NULL;
    if (ps)
        fill_state(ar, &op->a, ps);
    free(al);
    op->pending--;
    rn_cops__op_send(op);
}

void rn_cops_alter_partition(rn_cops_t *c, rn_resp_t *resp,
                             const Runnel__AlterPartitionRequest *req)
{
    if (rn_cops__refuse(c, resp))
        return;
    struct op *op = rn_cops__op_new(c, resp);
    Runnel__AlterPartitionResponse *ar = op ? rn_arena_calloc(&op->a, 1, sizeof *ar) : NULL;
    if (!op || !ar) {
        if (op)
            rn_cops__op_send(op);
        else
            rn_cops__error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    runnel__alter_partition_response__init(ar);
    op->r.body_case = RUNNEL__RESPONSE__BODY_ALTER_PARTITION;
    op->r.alter_partition = ar;
    const rn_img_broker_t *b = rn_img_broker(c->img, req->broker_id);
    const rn_img_topic_t *t = rn_img_topic_by_name(c->img, req->topic);
    const rn_img_partition_t *ps = t ? rn_img_partition(t, req->partition) : NULL;
    rn_err_t err = RN_OK;
    const char *why = "";
    if (!b || b->epoch != req->broker_epoch) {
        err = RN_ERR_STALE_BROKER_EPOCH;
        why = "the broker epoch is not current";
    } else if (!ps) {
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        why = "no such partition";
    } else if (ps->leader != req->broker_id || ps->leader_epoch != req->leader_epoch) {
        err = RN_ERR_FENCED_LEADER_EPOCH;
        why = "the sender does not lead the partition in that epoch";
    } else if (ps->partition_epoch != req->partition_epoch) {
        err = RN_ERR_INVALID_UPDATE_VERSION;
        why = "the partition changed since (partition epoch)";
    } else if (req->n_new_isr == 0 || req->n_new_isr > ps->n_replicas ||
               !has(req->new_isr, req->n_new_isr, ps->leader)) {
        err = RN_ERR_INVALID_REQUEST;
        why = "the new ISR must hold the leader and only replicas";
    }
    for (size_t i = 0; err == RN_OK && i < req->n_new_isr; i++) {
        int32_t id = req->new_isr[i];
        if (!has(ps->replicas, ps->n_replicas, id) || has(req->new_isr, i, id)) {
            err = RN_ERR_INVALID_REQUEST;
            why = "the new ISR names a broker twice or one that is not a replica";
        } else if (!has(ps->isr, ps->n_isr, id) && !unfenced(c->img, id)) {
            err = RN_ERR_INELIGIBLE_REPLICA;
            why = "a fenced broker cannot join the ISR";
        }
    }
    if (err != RN_OK) {
        ar->error = (Runnel__ErrorCode)err;
        ar->error_message = (char *)why;
        if (ps)
            fill_state(ar, &op->a, ps);
        rn_cops__op_send(op);
        return;
    }
    struct alter *al = calloc(1, sizeof *al);
    if (!al || propose_change(c, t, req->partition, ps, ps->leader, req->new_isr, req->n_new_isr,
                              ps->leader_epoch, on_altered, al) != RN_OK) {
        free(al);
        ar->error = RUNNEL__ERROR_CODE__ERR_NOT_CONTROLLER;
        rn_cops__op_send(op);
        return;
    }
    al->op = op;
    snprintf(al->topic, sizeof al->topic, "%s", req->topic);
    al->partition = req->partition;
    op->pending++;
}

/* ----------------------------------------------------------- ElectLeaders ---- */

static void on_elected(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct prop *p = arg;
    struct op *op = p->op;
    (void)index;
    const char *msg;
    rn_err_t err = rn_cops__outcome(status, result, &msg);
    if (op->r.elect_leaders) {
        Runnel__ElectLeadersPartitionResult *res = op->r.elect_leaders->results[p->slot];
        res->error = (Runnel__ErrorCode)err;
        if (err != RN_OK)
            res->leader = -1;
    }
    free(p);
    if (--op->pending == 0 && op->armed)
        rn_cops__op_send(op);
}

static void on_auto_elected(void *arg, rn_err_t status, uint64_t index, void *result)
{
    (void)arg;
    (void)index;
    (void)result;
    if (status != RN_OK)
        RN_DEBUG("cluster", "preferred leader election not committed: %s", rn_err_name(status));
}

/* Proposes the preferred replica as leader of (t, p) when it can be; the slot's verdict. */
static rn_err_t elect_preferred(rn_cops_t *c, const rn_img_topic_t *t, uint32_t p,
                                struct prop *pr)
{
    const rn_img_partition_t *ps = rn_img_partition(t, p);
    if (ps->n_replicas == 0)
        return RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE;
    int32_t want = ps->replicas[0];
    if (ps->leader == want)
        return RN_ERR_ELECTION_NOT_NEEDED;
    if (!has(ps->isr, ps->n_isr, want) || !unfenced(c->img, want))
        return RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE;
    return propose_change(c, t, p, ps, want, ps->isr, ps->n_isr, ps->leader_epoch + 1,
                          pr ? on_elected : on_auto_elected, pr) == RN_OK
               ? RN_OK
               : RN_ERR_NOT_CONTROLLER;
}

static bool listed(const Runnel__ElectLeadersRequest *req, const char *name)
{
    if (!req || req->n_topics == 0)
        return true;
    for (size_t i = 0; i < req->n_topics; i++)
        if (strcmp(req->topics[i], name) == 0)
            return true;
    return false;
}

void rn_cops_elect_leaders(rn_cops_t *c, rn_resp_t *resp, const Runnel__ElectLeadersRequest *req)
{
    Runnel__ElectLeadersResponse *body;
    struct op *op = op_begin(c, resp, &runnel__elect_leaders_response__descriptor,
                             RUNNEL__RESPONSE__BODY_ELECT_LEADERS, (void **)&body);
    if (!op)
        return;
    size_t n = 0;
    for (size_t i = 0; i < rn_img_topic_count(c->img); i++) {
        const rn_img_topic_t *t = rn_img_topic_at(c->img, i);
        if (listed(req, rn_img_topic_name(t)))
            n += rn_img_topic_partitions(t);
    }
    body->results = rn_arena_calloc(&op->a, n + 1, sizeof *body->results);
    for (size_t i = 0; i < rn_img_topic_count(c->img) && body->results; i++) {
        const rn_img_topic_t *t = rn_img_topic_at(c->img, i);
        if (!listed(req, rn_img_topic_name(t)))
            continue;
        for (uint32_t p = 0; p < rn_img_topic_partitions(t); p++) {
            Runnel__ElectLeadersPartitionResult *res = rn_arena_calloc(&op->a, 1, sizeof *res);
            struct prop *pr = malloc(sizeof *pr);
            if (!res || !pr) {
                free(pr);
                break;
            }
            runnel__elect_leaders_partition_result__init(res);
            res->topic = rn_arena_strdup(&op->a, rn_img_topic_name(t));
            res->partition = p;
            const rn_img_partition_t *ps = rn_img_partition(t, p);
            res->leader = ps->n_replicas ? ps->replicas[0] : -1;
            *pr = (struct prop){op, body->n_results};
            body->results[body->n_results++] = res;
            rn_err_t err = elect_preferred(c, t, p, pr);
            if (err == RN_OK) {
                op->pending++;
                continue;
            }
            free(pr);
            res->error = (Runnel__ErrorCode)err;
            res->leader = ps->leader;
        }
    }
    for (size_t i = 0; req && i < req->n_topics; i++)
        if (!rn_img_topic_by_name(c->img, req->topics[i]))
            RN_INFO("cluster", "ElectLeaders: no topic %s", req->topics[i]);
    rn_cops__op_arm(op);
}


static void on_rebalance(uv_timer_t *t)
{
    rn_cops_t *c = t->data;
    if (!rn_ctl_is_active(c->ctl))
        return;
    for (size_t i = 0; i < rn_img_topic_count(c->img); i++) {
        const rn_img_topic_t *tp = rn_img_topic_at(c->img, i);
        for (uint32_t p = 0; p < rn_img_topic_partitions(tp); p++) {
            const rn_img_partition_t *ps = rn_img_partition(tp, p);
            if (ps->n_replicas && ps->leader != ps->replicas[0] &&
                elect_preferred(c, tp, p, NULL) == RN_OK)
                RN_INFO("cluster", "auto.leader.rebalance: %s-%" PRIu32 " back to broker %" PRId32,
                        rn_img_topic_name(tp), p, ps->replicas[0]);
        }
    }
}

/* --------------------------------------------------------------- lifecycle ---- */

rn_cops_t *rn_cops_new(const rn_cops_opts_t *o)
{
    rn_cops_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = o->loop;
    c->ctl = o->ctl;
    c->img = o->img;
    c->mem = o->mem;
    c->topics = o->topics;
    c->node_id = o->node_id;
    c->num_partitions = o->num_partitions;
    c->default_rf = o->default_rf ? o->default_rf : 1;
    c->auto_rebalance = o->auto_rebalance;
    c->unclean_default = o->unclean_default;
    uv_timer_init(c->loop, &c->rebalance_timer);
    c->rebalance_timer.data = c;
    if (o->auto_rebalance && o->rebalance_interval_ms > 0)
        uv_timer_start(&c->rebalance_timer, on_rebalance, (uint64_t)o->rebalance_interval_ms,
                       (uint64_t)o->rebalance_interval_ms);
    return c;
}

void rn_cops_set_active(rn_cops_t *c, bool active)
{
    if (c)
        c->pid_reserved = active ? rn_img_next_producer_id_block(c->img) : 0;
}

void rn_cops_stop(rn_cops_t *c)
{
    if (!c || c->stopped)
        return;
    c->stopped = true;
    uv_close((uv_handle_t *)&c->rebalance_timer, NULL);
    rn_cops__pids_stop(c);
}

void rn_cops_free(rn_cops_t *c)
{
    free(c);
}
