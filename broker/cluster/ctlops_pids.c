/* ctlops_pids.c - producer-id blocks on both sides (KIP-730) and the forwarding of admin
 * requests to the active controller (KIP-590); see ctlops.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlops_int.h"
#include "logging.h"

/* ------------------------------------------------------ producer-id blocks ---- */

struct alloc {
    struct op *op;
    int64_t start;
};

static void on_allocated(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct alloc *al = arg;
    struct op *op = al->op;
    (void)index;
    const char *msg;
    rn_err_t err = rn_cops__outcome(status, result, &msg);
    if (err != RN_OK) {
        op->r.body_case = RUNNEL__RESPONSE__BODY__NOT_SET;
        op->r.error = (Runnel__ErrorCode)err;
        op->r.error_message = rn_arena_strdup(&op->a, msg);
        op->c->pid_reserved = rn_img_next_producer_id_block(op->c->img);
    } else {
        op->r.allocate_producer_ids->producer_id_start = al->start;
        op->r.allocate_producer_ids->producer_id_len = RN_COPS_PID_BLOCK;
    }
    free(al);
    op->pending--;
    rn_cops__op_send(op);
}

void rn_cops_allocate_pids(rn_cops_t *c, rn_resp_t *resp,
                           const Runnel__AllocateProducerIdsRequest *req)
{
    if (rn_cops__refuse(c, resp))
        return;
    const rn_img_broker_t *b = rn_img_broker(c->img, req->broker_id);
    if (!b || b->epoch != req->broker_epoch) {
        rn_cops__error(resp, RN_ERR_STALE_BROKER_EPOCH, "the broker epoch is not current");
        return;
    }
    struct op *op = rn_cops__op_new(c, resp);
    Runnel__AllocateProducerIdsResponse *body = op ? rn_arena_calloc(&op->a, 1, sizeof *body)
                                                   : NULL;
    struct alloc *al = calloc(1, sizeof *al);
    if (!op || !body || !al) {
        free(al);
        if (op)
            rn_cops__op_send(op);
        else
            rn_cops__error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    runnel__allocate_producer_ids_response__init(body);
    op->r.body_case = RUNNEL__RESPONSE__BODY_ALLOCATE_PRODUCER_IDS;
    op->r.allocate_producer_ids = body;
    int64_t cur = rn_img_next_producer_id_block(c->img);
    if (c->pid_reserved > cur)
        cur = c->pid_reserved;
    Runnel__Meta__ProducerIdsRecord pr = RUNNEL__META__PRODUCER_IDS_RECORD__INIT;
    pr.broker_id = req->broker_id;
    pr.broker_epoch = req->broker_epoch;
    pr.next_block_start = cur + RN_COPS_PID_BLOCK;
    Runnel__Meta__MetadataRecord rec = RUNNEL__META__METADATA_RECORD__INIT;
    rec.body_case = RUNNEL__META__METADATA_RECORD__BODY_PRODUCER_IDS;
    rec.producer_ids = &pr;
    al->op = op;
    al->start = cur;
    if (rn_cops__propose(c, &rec, on_allocated, al) != RN_OK) {
        free(al);
        op->r.body_case = RUNNEL__RESPONSE__BODY__NOT_SET;
        op->r.error = RUNNEL__ERROR_CODE__ERR_NOT_CONTROLLER;
        rn_cops__op_send(op);
        return;
    }
    c->pid_reserved = cur + RN_COPS_PID_BLOCK;
    op->pending++;
}

static void answer_pid(rn_cops_t *c, rn_resp_t *resp)
{
    Runnel__InitProducerIdResponse body = RUNNEL__INIT_PRODUCER_ID_RESPONSE__INIT;
    body.producer_id = c->pid_next++;
    body.producer_epoch = 0;
    Runnel__Response r = RUNNEL__RESPONSE__INIT;
    r.body_case = RUNNEL__RESPONSE__BODY_INIT_PRODUCER_ID;
    r.init_producer_id = &body;
    if (rn_resp_pack(resp, &r) != RN_OK)
        rn_resp_clear(resp);
    rn_resp_send(resp);
}

static void pid_waiter_cancel(void *arg)
{
    struct pid_wait *w = arg;
    w->resp = NULL;
}

static void ask_block(rn_cops_t *c);

static void on_block(void *ctx, rn_err_t err, Runnel__Response *resp)
{
    rn_cops_t *c = ctx;
    c->pid_asking = false;
    if (c->stopped) {
        if (resp)
            runnel__response__free_unpacked(resp, NULL);
        return;
    }
    bool ok = err == RN_OK && resp->error == 0 &&
              resp->body_case == RUNNEL__RESPONSE__BODY_ALLOCATE_PRODUCER_IDS;
    if (ok) {
        c->pid_next = resp->allocate_producer_ids->producer_id_start;
        c->pid_end = c->pid_next + resp->allocate_producer_ids->producer_id_len;
        RN_INFO("cluster", "producer-id block [%" PRId64 ", %" PRId64 ") from the controller",
                c->pid_next, c->pid_end);
    }
    if (resp)
        runnel__response__free_unpacked(resp, NULL);
    while (c->pid_waiters) {
        struct pid_wait *w = c->pid_waiters;
        if (w->resp && !ok)
            break;
        if (w->resp && c->pid_next >= c->pid_end)
            break;
        c->pid_waiters = w->next;
        if (w->resp) {
            rn_resp_on_cancel(w->resp, NULL, NULL);
            answer_pid(c, w->resp);
        }
        free(w);
    }
    if (c->pid_waiters) {
        if (ok) {
            ask_block(c);
            return;
        }
        /* No block: answer retriably rather than holding producers forever. */
        while (c->pid_waiters) {
            struct pid_wait *w = c->pid_waiters;
            c->pid_waiters = w->next;
            if (w->resp) {
                rn_resp_on_cancel(w->resp, NULL, NULL);
                rn_cops__error(w->resp, RN_ERR_COORDINATOR_NOT_AVAILABLE,
                                 "no producer-id block from the controller yet; retry");
            }
            free(w);
        }
    }
}

static void ask_block(rn_cops_t *c)
{
    if (c->pid_asking)
        return;
    Runnel__RequestHeader h = RUNNEL__REQUEST_HEADER__INIT;
    h.api = RUNNEL__API_KEY__API_ALLOCATE_PRODUCER_IDS;
    h.client_id = (char *)"runnel-broker";
    Runnel__AllocateProducerIdsRequest ap = RUNNEL__ALLOCATE_PRODUCER_IDS_REQUEST__INIT;
    ap.broker_id = c->node_id;
    ap.broker_epoch = rn_mem_own_epoch(c->mem);
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.header = &h;
    req.body_case = RUNNEL__REQUEST__BODY_ALLOCATE_PRODUCER_IDS;
    req.allocate_producer_ids = &ap;
    if (rn_mem_send_controller(c->mem, &req, 5000, on_block, c) == RN_OK)
        c->pid_asking = true;
    else
        on_block(c, RN_ERR_NOT_CONTROLLER, NULL);
}

void rn_cops_init_producer_id(rn_cops_t *c, rn_resp_t *resp,
                              const Runnel__InitProducerIdRequest *req)
{
    (void)req; /* a known id is bumped by the client asking again; ids are never reused */
    if (!c) {
        rn_cops__error(resp, RN_ERR_COORDINATOR_NOT_AVAILABLE, "the broker is starting; retry");
        return;
    }
    if (c->pid_next < c->pid_end && !c->pid_waiters) {
        answer_pid(c, resp);
        return;
    }
    struct pid_wait *w = calloc(1, sizeof *w);
    if (!w) {
        rn_cops__error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return;
    }
    w->resp = resp;
    struct pid_wait **pp = &c->pid_waiters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    rn_resp_on_cancel(resp, pid_waiter_cancel, w);
    if (rn_mem_own_epoch(c->mem) == 0) {
        on_block(c, RN_ERR_NOT_CONTROLLER, NULL);
        return;
    }
    ask_block(c);
}

/* ------------------------------------------------------------- forwarding ---- */

struct fwd {
    rn_resp_t *resp;               /* NULL once the client's connection is gone */
};

static void fwd_cancel(void *arg)
{
    struct fwd *f = arg;
    f->resp = NULL;
}

static void on_forwarded(void *ctx, rn_err_t err, Runnel__Response *answer)
{
    struct fwd *f = ctx;
    if (f->resp) {
        rn_resp_on_cancel(f->resp, NULL, NULL);
        if (err != RN_OK) {
            rn_cops__error(f->resp, RN_ERR_NOT_CONTROLLER,
                             "the active controller did not answer the forwarded request; retry");
        } else {
            rn_resp_note_error(f->resp, (rn_err_t)answer->error);
            if (rn_resp_pack(f->resp, answer) != RN_OK)
                rn_resp_clear(f->resp);
            rn_resp_send(f->resp);
        }
    }
    if (answer)
        runnel__response__free_unpacked(answer, NULL);
    free(f);
}

#define FORWARDED_BY "runnel-forward"

bool rn_cops_forward(rn_cops_t *c, rn_resp_t *resp, Runnel__Request *req)
{
    if (!c || rn_ctl_is_active(c->ctl))
        return false;
    /* Forward once, and never to ourselves (a new raft leader before its barrier applied):
     * two brokers that disagree on the controller must not bounce a request. */
    int32_t ctl = rn_ctl_controller_id(c->ctl);
    if (ctl < 0 || ctl == c->node_id ||
        (req->header->client_id && strcmp(req->header->client_id, FORWARDED_BY) == 0)) {
        rn_cops__error(resp, RN_ERR_NOT_CONTROLLER,
                         "the active controller is changing; retry");
        return true;
    }
    char *client_id = req->header->client_id; /* the server frees the request: put it back */
    req->header->client_id = (char *)FORWARDED_BY;
    struct fwd *f = calloc(1, sizeof *f);
    if (!f) {
        rn_cops__error(resp, RN_ERR_UNKNOWN_SERVER_ERROR, "broker out of memory");
        return true;
    }
    f->resp = resp;
    uint32_t timeout = req->body_case == RUNNEL__REQUEST__BODY_CREATE_TOPICS
                           ? req->create_topics->timeout_ms
                       : req->body_case == RUNNEL__REQUEST__BODY_DELETE_TOPICS
                           ? req->delete_topics->timeout_ms
                           : 0;
    rn_err_t sent = rn_mem_send_controller(c->mem, req, (int)(timeout ? timeout : 30000),
                                           on_forwarded, f); /* packed here, at once */
    req->header->client_id = client_id;
    if (sent != RN_OK) {
        free(f);
        rn_cops__error(resp, RN_ERR_NOT_CONTROLLER,
                         "no active controller is known right now; retry");
        return true;
    }
    rn_resp_on_cancel(resp, fwd_cancel, f);
    return true;
}

void rn_cops__pids_stop(rn_cops_t *c)
{
    while (c->pid_waiters) {
        struct pid_wait *w = c->pid_waiters;
        c->pid_waiters = w->next;
        if (w->resp) {
            rn_resp_on_cancel(w->resp, NULL, NULL);
            rn_cops__error(w->resp, RN_ERR_BROKER_NOT_AVAILABLE, "the broker is stopping");
        }
        free(w);
    }
}
