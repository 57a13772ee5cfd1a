/* produce.c - the Produce API: append per partition, wait for durability where due, answer. */
#include "produce.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bmetrics.h"
#include "fetch.h"
#include "logging.h"
#include "repl.h"

/* A produce whose response waits for syncs. */
struct produce {
    rn_resp_t *resp;          /* NULL once the connection is gone */
    rn_arena_t arena;
    Runnel__ProduceResponse body;
    uint32_t pending;         /* partitions still waiting for their fsync */
};

/* One partition's wait. */
struct pwait {
    struct produce *p;
    Runnel__ProducePartitionResult *res;
};

static void finish(struct produce *p)
{
    if (p->resp) {
        Runnel__Response r = RUNNEL__RESPONSE__INIT;
        r.body_case = RUNNEL__RESPONSE__BODY_PRODUCE;
        r.produce = &p->body;
        if (p->arena.failed || rn_resp_pack(p->resp, &r) != RN_OK)
            rn_api_send_error(p->resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        else
            rn_resp_send(p->resp);
    }
    rn_arena_free(&p->arena);
    free(p);
}

static void on_durable(void *arg, rn_err_t err)
{
    struct pwait *w = arg;
    if (err != RN_OK) {
        rn_resp_note_error(w->p->resp, err);
        w->res->error = (Runnel__ErrorCode)err;
        w->res->error_message = (char *)(err == RN_ERR_STORAGE_ERROR
                                             ? "fsync failed; the partition is read-only"
                                             : rn_err_str(err));
        w->res->base_offset = -1;
    }
    if (--w->p->pending == 0)
        finish(w->p);
}

/* acks=all: the high watermark passed the batch (or it never will here). */
static void on_replicated(void *arg, rn_err_t err)
{
    struct pwait *w = arg;
    if (err != RN_OK && w->res->error == 0) {
        if (w->p->resp)
            rn_resp_note_error(w->p->resp, err);
        w->res->error = (Runnel__ErrorCode)err;
        w->res->error_message =
            (char *)(err == RN_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND
                         ? "appended, but the ISR shrank below min.insync.replicas; retry"
                     : err == RN_ERR_REQUEST_TIMED_OUT
                         ? "not replicated to the whole ISR within timeout_ms; retry"
                         : "leadership moved before the ISR had the batch; retry on the new "
                           "leader");
        w->res->base_offset = -1;
    }
    if (--w->p->pending == 0)
        finish(w->p);
}

static void on_cancel(void *arg)
{
    struct produce *p = arg;
    p->resp = NULL;
}

static void produce_partition(struct produce *p, int32_t acks, uint32_t timeout_ms,
                              rn_topic_t *topic, const char *topic_name,
                              Runnel__ProducePartition *pp, Runnel__ProducePartitionResult *res,
                              bool *appended)
{
    res->partition = pp->partition;
    res->base_offset = -1;
    res->log_append_time_ms = -1;
    res->log_start_offset = -1;
    rn_part_t *part = topic ? rn_topic_partition(topic, pp->partition) : NULL;
    if (!part) {
        res->error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION;
        res->error_message = (char *)(topic ? "no such partition" : "no such topic");
        rn_resp_note_error(p->resp, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        return;
    }
    rn_part_result_t pr;
    rn_err_t cerr = rn_repl_produce_check(part, acks, pr.msg, sizeof pr.msg);
    if (cerr != RN_OK) {
        rn_resp_note_error(p->resp, cerr);
        res->error = (Runnel__ErrorCode)cerr;
        res->error_message = rn_arena_strdup(&p->arena, pr.msg);
        return;
    }
    rn_part_append(part, pp->records.data, pp->records.len, &pr);
    res->log_start_offset = (int64_t)rn_log_start_offset(rn_part_log(part));
    rn_bm_produced(rn_topic_stats(topic), &pr);
    if (pr.err != RN_OK) {
        rn_resp_note_error(p->resp, pr.err);
        res->error = (Runnel__ErrorCode)pr.err;
        res->error_message = rn_arena_strdup(&p->arena, pr.msg);
        RN_INFO("produce", "%s-%" PRIu32 " from %s: %s: %s", topic_name, pp->partition,
                rn_resp_peer(p->resp), rn_err_name(pr.err), pr.msg);
        return;
    }
    res->base_offset = (int64_t)pr.base_offset;
    if (pr.duplicate)
        RN_DEBUG("produce", "%s-%" PRIu32 ": duplicate batch acknowledged at offset %" PRIu64,
                 topic_name, pp->partition, pr.base_offset);
    if (pr.records)
        *appended = true;
    rn_repl_appended(part);
    if (acks == -1 && rn_part_repl(part)) {
        struct pwait *rw = rn_arena_calloc(&p->arena, 1, sizeof *rw);
        bool rwaiting = false;
        rn_err_t rerr = RN_ERR_NOMEM;
        if (rw) {
            rw->p = p;
            rw->res = res;
            rerr = rn_repl_wait_hw(part, rn_log_end_offset(rn_part_log(part)), timeout_ms,
                                   on_replicated, rw, &rwaiting);
        }
        if (rerr != RN_OK) {
            rn_resp_note_error(p->resp, RN_ERR_UNKNOWN_SERVER_ERROR);
            res->error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_SERVER_ERROR;
            res->error_message = (char *)"broker out of memory";
            res->base_offset = -1;
            return;
        }
        if (rwaiting)
            p->pending++;
    }
    if (!pr.durable_target || acks == 0)
        return;
    struct pwait *w = rn_arena_calloc(&p->arena, 1, sizeof *w);
    bool waiting = false;
    rn_err_t err = RN_ERR_STORAGE_ERROR;
    if (w) {
        w->p = p;
        w->res = res;
        err = rn_part_wait_durable(part, pr.durable_target, on_durable, w, &waiting);
    }
    if (err != RN_OK) {
        rn_resp_note_error(p->resp, err);
        res->error = (Runnel__ErrorCode)err;
        res->error_message = (char *)"cannot make the batch durable";
        res->base_offset = -1;
    }
    if (waiting)
        p->pending++;
}

void rn_produce_handle(rn_api_ctx_t *ctx, rn_resp_t *resp, Runnel__ProduceRequest *req)
{
    int32_t acks = req->acks;
    if (acks != 0 && acks != 1 && acks != -1) {
        rn_api_send_error(resp, RN_ERR_INVALID_REQUEST, "acks must be 0, 1 or -1 (all)");
        return;
    }
    struct produce *p = calloc(1, sizeof *p);
    if (!p) {
        rn_api_send_error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    p->resp = resp;
    runnel__produce_response__init(&p->body);
    rn_arena_t *a = &p->arena;
    bool appended = false;
    p->body.topics = rn_arena_calloc(a, req->n_topics, sizeof *p->body.topics);
    for (size_t i = 0; i < req->n_topics && p->body.topics; i++) {
        Runnel__ProduceTopic *pt = req->topics[i];
        Runnel__ProduceTopicResult *tr = rn_arena_calloc(a, 1, sizeof *tr);
        if (!tr)
            break;
        runnel__produce_topic_result__init(tr);
        tr->name = rn_arena_strdup(a, pt->name);
        tr->partitions = rn_arena_calloc(a, pt->n_partitions, sizeof *tr->partitions);
        rn_topic_t *topic = rn_topics_find(ctx->topics, pt->name);
        for (size_t j = 0; j < pt->n_partitions && tr->partitions; j++) {
            Runnel__ProducePartitionResult *res = rn_arena_calloc(a, 1, sizeof *res);
            if (!res)
                break;
            runnel__produce_partition_result__init(res);
            produce_partition(p, acks, req->timeout_ms, topic, pt->name, pt->partitions[j], res,
                              &appended);
            tr->partitions[tr->n_partitions++] = res;
        }
        p->body.topics[p->body.n_topics++] = tr;
    }
    if (appended)
        rn_fetch_poke(ctx->fetch);
    if (acks == 0) {
        rn_resp_drop(resp);
        p->resp = NULL;
    }
    if (p->pending == 0) {
        finish(p);
        return;
    }
    rn_resp_on_cancel(resp, on_cancel, p);
}
