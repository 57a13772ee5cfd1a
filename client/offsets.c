#include "offsets.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

typedef struct lo_op {
    rn_cl_t *cl;
    char *topic;
    int32_t partition;
    int64_t ts;
    int64_t deadline_ns;
    rn_lo_cb cb;
    void *ctx;
    bool refreshed;     /* metadata was fetched at least once for this operation */
    rn_err_t last_err;
} lo_op_t;

static void lo_step(lo_op_t *op);

static void lo_finish(lo_op_t *op, rn_err_t err, int64_t offset)
{
    op->cb(op->ctx, err, offset);
    free(op->topic);
    free(op);
}

static void lo_after_md(rn_cl_t *cl, void *arg, rn_err_t err)
{
    (void)cl;
    lo_op_t *op = arg;
    op->refreshed = true;
    if (err == RN_ERR_CLOSED) {
        lo_finish(op, err, -1);
        return;
    }
    if (err != RN_OK)
        op->last_err = err;
    lo_step(op);
}

/* Waits for fresh metadata, then tries again, unless the deadline has passed. */
static void lo_retry(lo_op_t *op, rn_err_t err)
{
    op->last_err = err;
    if (rn_now_ns() >= op->deadline_ns) {
        lo_finish(op, err, -1);
        return;
    }
    rn_cl_md_want(op->cl, op->topic);
    rn_err_t e = rn_cl_md_wait(op->cl, lo_after_md, op);
    if (e != RN_OK)
        lo_finish(op, e, -1);
}

static void lo_answered(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    lo_op_t *op = ctx;
    int64_t offset = -1;
    if (err == RN_OK) {
        if (resp->error != RUNNEL__ERROR_CODE__ERR_OK)
            err = (rn_err_t)resp->error;
        else if (resp->body_case != RUNNEL__RESPONSE__BODY_LIST_OFFSETS)
            err = RN_ERR_UNKNOWN_SERVER_ERROR;
        else
            err = RN_ERR_UNKNOWN_SERVER_ERROR; /* until the partition is found below */
        if (resp->body_case == RUNNEL__RESPONSE__BODY_LIST_OFFSETS && resp->error == 0) {
            const Runnel__ListOffsetsResponse *lr = resp->list_offsets;
            for (size_t i = 0; i < lr->n_topics; i++) {
                if (strcmp(lr->topics[i]->name, op->topic) != 0)
                    continue;
                for (size_t j = 0; j < lr->topics[i]->n_partitions; j++) {
                    const Runnel__ListOffsetsPartitionResult *pr = lr->topics[i]->partitions[j];
                    if ((int32_t)pr->partition == op->partition) {
                        err = (rn_err_t)pr->error;
                        offset = pr->offset;
                    }
                }
            }
        }
        runnel__response__free_unpacked(resp, NULL);
    }
    if (err == RN_OK || err == RN_ERR_CLOSED || !rn_err_retriable(err))
        lo_finish(op, err, offset);
    else
        lo_retry(op, err);
}

static void lo_step(lo_op_t *op)
{
    const rn_cl_topic_t *md = rn_cl_md_topic(op->cl, op->topic);
    if (!md || (!op->refreshed && md->err != RN_OK)) {
        lo_retry(op, op->last_err != RN_OK ? op->last_err : RN_ERR_TIMED_OUT);
        return;
    }
    if (md->err != RN_OK) {
        if (md->err == RN_ERR_UNKNOWN_TOPIC_OR_PARTITION || !rn_err_retriable(md->err))
            lo_finish(op, md->err, -1);
        else
            lo_retry(op, md->err);
        return;
    }
    if (op->partition < 0 || op->partition >= md->partition_count) {
        if (op->refreshed)
            lo_finish(op, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, -1);
        else
            lo_retry(op, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        return;
    }
    const rn_cl_part_t *part = &md->parts[op->partition];
    rn_conn_t *conn = part->err == RN_OK ? rn_cl_conn_for_node(op->cl, part->leader) : NULL;
    if (!conn) {
        lo_retry(op, part->err != RN_OK ? part->err : RN_ERR_LEADER_NOT_AVAILABLE);
        return;
    }
    Runnel__ListOffsetsPartition lp = RUNNEL__LIST_OFFSETS_PARTITION__INIT;
    lp.partition = (uint32_t)op->partition;
    lp.timestamp = op->ts;
    Runnel__ListOffsetsPartition *lpp = &lp;
    Runnel__ListOffsetsTopic lt = RUNNEL__LIST_OFFSETS_TOPIC__INIT;
    lt.name = op->topic;
    lt.n_partitions = 1;
    lt.partitions = &lpp;
    Runnel__ListOffsetsTopic *ltp = &lt;
    Runnel__ListOffsetsRequest lr = RUNNEL__LIST_OFFSETS_REQUEST__INIT;
    lr.replica_id = -1;
    lr.n_topics = 1;
    lr.topics = &ltp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_LIST_OFFSETS;
    req.list_offsets = &lr;
    rn_err_t err = rn_cl_send(op->cl, conn, &req, RUNNEL__API_KEY__API_LIST_OFFSETS,
                              rn_cl_request_timeout_ms(op->cl), true, lo_answered, op);
    if (err != RN_OK)
        lo_finish(op, err, -1);
}


rn_err_t rn_lo_start(rn_cl_t *cl, const char *topic, int32_t partition, int64_t ts,
                     int64_t deadline_ns, rn_lo_cb cb, void *ctx)
{
    if (rn_cl_stopping(cl))
        return RN_ERR_CLOSED;
    lo_op_t *op = calloc(1, sizeof *op);
    if (!op || !(op->topic = strdup(topic))) {
        free(op);
        return RN_ERR_NOMEM;
    }
    op->cl = cl;
    op->partition = partition;
    op->ts = ts;
    op->deadline_ns = deadline_ns;
    op->cb = cb;
    op->ctx = ctx;
    const rn_cl_topic_t *md = rn_cl_md_topic(cl, topic);
    if (md && md->err == RN_OK) {
        /* Known leader: go now. lo_step only calls back from the loop, never inside. */
        op->refreshed = false;
        const rn_cl_part_t *part =
            partition >= 0 && partition < md->partition_count ? &md->parts[partition] : NULL;
        if (part && part->err == RN_OK && rn_cl_conn_for_node(cl, part->leader)) {
            lo_step(op);
            return RN_OK;
        }
    }
    /* Everything else starts with a metadata round trip, which also calls back later. */
    rn_cl_md_want(cl, topic);
    rn_err_t e = rn_cl_md_wait(cl, lo_after_md, op);
    if (e != RN_OK) {
        free(op->topic);
        free(op);
    }
    return e;
}

/* ------------------------------------------------------------ sync call ---- */

typedef struct lo_call {
    rn_cl_t *cl;
    rn_call_t *call;
    char *topic;
    int32_t partition;
    int64_t ts;
    int64_t offset;
} lo_call_t;

static void lo_call_free(void *arg)
{
    lo_call_t *lc = arg;
    free(lc->topic);
    free(lc);
}

static void lo_call_done(void *ctx, rn_err_t err, int64_t offset)
{
    lo_call_t *lc = ctx;
    lc->offset = offset;
    rn_call_done(lc->cl, lc->call, err);
}

static void lo_call_start(rn_cl_t *cl, rn_call_t *call)
{
    lo_call_t *lc = rn_call_op(call);
    lc->call = call;
    rn_err_t err = rn_lo_start(cl, lc->topic, lc->partition, lc->ts, rn_call_deadline_ns(call),
                               lo_call_done, lc);
    if (err != RN_OK)
        rn_call_done(cl, call, err);
}

rn_err_t rn_lo_call(rn_cl_t *cl, const char *topic, int32_t partition, int64_t ts,
                    int timeout_ms, int64_t *offset)
{
    lo_call_t *lc = calloc(1, sizeof *lc);
    if (!lc || !(lc->topic = strdup(topic))) {
        free(lc);
        return RN_ERR_NOMEM;
    }
    lc->cl = cl;
    lc->partition = partition;
    lc->ts = ts;
    bool abandoned;
    rn_err_t err = rn_cl_call(cl, lo_call_start, lc, lo_call_free, timeout_ms, &abandoned);
    if (abandoned)
        return err; /* lc now belongs to the loop */
    if (err == RN_OK && offset)
        *offset = lc->offset;
    lo_call_free(lc);
    return err;
}
