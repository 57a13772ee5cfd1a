/* rawclient.c - blocking raw-frame client for the broker's integration tests. */
#include "rawclient.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t tracked[64];
static int ntracked;

static void kill_tracked(void)
{
    for (int i = 0; i < ntracked; i++) {
        /* Only a child not yet reaped is signalled: its pid cannot have been reused. */
        if (waitpid(tracked[i], NULL, WNOHANG) == 0) {
            kill(tracked[i], SIGKILL);
            waitpid(tracked[i], NULL, 0);
        }
    }
}

static void track(const rn_hbroker_t *b)
{
    if (ntracked == 0)
        atexit(kill_tracked);
    if (b->pid > 0 && ntracked < 64)
        tracked[ntracked++] = b->pid;
}

int rn_rc_broker_start(rn_hbroker_t *b, const char *data_dir, const char *const *settings)
{
    int rc = rn_h_broker_start(b, data_dir, settings);
    track(b);
    return rc;
}

int rn_rc_broker_restart(rn_hbroker_t *b)
{
    int rc = rn_h_broker_restart(b);
    track(b);
    return rc;
}

int rn_rc_connect(rn_rc_t *c, const char *addr)
{
    memset(c, 0, sizeof *c);
    c->next_cid = 1;
    c->fd = rn_h_connect(addr);
    if (c->fd < 0)
        return -1;
    c->dec = rn_frame_dec_new(1u << 30);
    return c->dec ? 0 : -1;
}

void rn_rc_close(rn_rc_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    rn_frame_dec_free(c->dec);
    c->dec = NULL;
    rn_buf_free(&c->in);
}

int rn_rc_send_raw(rn_rc_t *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int64_t rn_rc_send(rn_rc_t *c, Runnel__Request *req, Runnel__ApiKey api)
{
    Runnel__RequestHeader hdr;
    runnel__request_header__init(&hdr);
    hdr.api = api;
    hdr.correlation_id = c->next_cid++;
    hdr.client_id = (char *)"rawclient";
    req->header = &hdr;
    rn_buf_t b = RN_BUF_INIT;
    int rc = rn_frame_pack(&req->base, &b) == RN_OK ? rn_rc_send_raw(c, b.data, b.len) : -1;
    rn_buf_free(&b);
    req->header = NULL;
    return rc < 0 ? -1 : (int64_t)hdr.correlation_id;
}

/* Waits until fd is readable; false on timeout. */
static bool wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

Runnel__Response *rn_rc_recv(rn_rc_t *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (c->in_pos < c->in.len) {
            size_t used;
            const uint8_t *payload;
            uint32_t plen;
            rn_err_t err = rn_frame_dec_feed(c->dec, c->in.data + c->in_pos,
                                             c->in.len - c->in_pos, &used, &payload, &plen);
            c->in_pos += used;
            if (err == RN_OK) {
                Runnel__Response *r = NULL;
                rn_frame_unpack_response(payload, plen, &r);
                if (c->in_pos == c->in.len) {
                    rn_buf_reset(&c->in);
                    c->in_pos = 0;
                }
                return r;
            }
            if (err != RN_ERR_AGAIN)
                return NULL;
            rn_buf_reset(&c->in);
            c->in_pos = 0;
        }
        if (!wait_readable(c->fd, deadline))
            return NULL;
        if (rn_buf_reserve(&c->in, 65536) != RN_OK)
            return NULL;
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        c->in.len += (size_t)n;
    }
}

void rn_rc_free(Runnel__Response *r)
{
    if (r)
        runnel__response__free_unpacked(r, NULL);
}

Runnel__Response *rn_rc_call(rn_rc_t *c, Runnel__Request *req, Runnel__ApiKey api,
                             int timeout_ms)
{
    int64_t cid = rn_rc_send(c, req, api);
    if (cid < 0)
        return NULL;
    Runnel__Response *r = rn_rc_recv(c, timeout_ms);
    if (r && r->correlation_id != (uint32_t)cid) {
        fprintf(stderr, "rawclient: correlation id %u, expected %lld\n", r->correlation_id,
                (long long)cid);
        rn_rc_free(r);
        return NULL;
    }
    return r;
}

bool rn_rc_closed_by_peer(rn_rc_t *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    uint8_t buf[4096];
    for (;;) {
        if (!wait_readable(c->fd, deadline))
            return false;
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return true;
    }
}

/* ------------------------------------------------------------------ requests ---- */

int rn_rc_create_topic(rn_rc_t *c, const char *name, uint32_t partitions, uint32_t rf,
                       const char *const *configs, char *msg, size_t msglen)
{
    Runnel__ConfigEntry entries[16], *eptrs[16];
    char kv[16][128];
    size_t n = 0;
    for (; configs && configs[n] && n < 16; n++) {
        snprintf(kv[n], sizeof kv[n], "%s", configs[n]);
        char *eq = strchr(kv[n], '=');
        if (eq)
            *eq = '\0';
        runnel__config_entry__init(&entries[n]);
        entries[n].key = kv[n];
        entries[n].value = eq ? eq + 1 : (char *)"";
        eptrs[n] = &entries[n];
    }
    Runnel__CreatableTopic t = RUNNEL__CREATABLE_TOPIC__INIT, *tp = &t;
    t.name = (char *)name;
    t.partitions = partitions;
    t.replication_factor = rf;
    t.n_configs = n;
    t.configs = eptrs;
    Runnel__CreateTopicsRequest body = RUNNEL__CREATE_TOPICS_REQUEST__INIT;
    body.n_topics = 1;
    body.topics = &tp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_CREATE_TOPICS;
    req.create_topics = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_CREATE_TOPICS, 10000);
    if (!r || r->body_case != RUNNEL__RESPONSE__BODY_CREATE_TOPICS ||
        r->create_topics->n_results != 1) {
        rn_rc_free(r);
        return -1;
    }
    int err = r->create_topics->results[0]->error;
    if (msg)
        snprintf(msg, msglen, "%s", r->create_topics->results[0]->error_message);
    rn_rc_free(r);
    return err;
}

int rn_rc_delete_topic(rn_rc_t *c, const char *name)
{
    char *names[1] = {(char *)name};
    Runnel__DeleteTopicsRequest body = RUNNEL__DELETE_TOPICS_REQUEST__INIT;
    body.n_topics = 1;
    body.topics = names;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_DELETE_TOPICS;
    req.delete_topics = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_DELETE_TOPICS, 10000);
    if (!r || r->body_case != RUNNEL__RESPONSE__BODY_DELETE_TOPICS ||
        r->delete_topics->n_results != 1) {
        rn_rc_free(r);
        return -1;
    }
    int err = r->delete_topics->results[0]->error;
    rn_rc_free(r);
    return err;
}

int rn_rc_produce(rn_rc_t *c, const char *topic, uint32_t partition, int32_t acks,
                  const void *batches, size_t len, int64_t *base_offset)
{
    Runnel__ProducePartition pp = RUNNEL__PRODUCE_PARTITION__INIT, *ppp = &pp;
    pp.partition = partition;
    pp.records.data = (uint8_t *)batches;
    pp.records.len = len;
    Runnel__ProduceTopic pt = RUNNEL__PRODUCE_TOPIC__INIT, *ptp = &pt;
    pt.name = (char *)topic;
    pt.n_partitions = 1;
    pt.partitions = &ppp;
    Runnel__ProduceRequest body = RUNNEL__PRODUCE_REQUEST__INIT;
    body.acks = acks;
    body.n_topics = 1;
    body.topics = &ptp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
    req.produce = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_PRODUCE, 15000);
    if (!r || r->body_case != RUNNEL__RESPONSE__BODY_PRODUCE || r->produce->n_topics != 1 ||
        r->produce->topics[0]->n_partitions != 1) {
        rn_rc_free(r);
        return -1;
    }
    Runnel__ProducePartitionResult *res = r->produce->topics[0]->partitions[0];
    int err = res->error;
    if (base_offset)
        *base_offset = res->base_offset;
    rn_rc_free(r);
    return err;
}

Runnel__Response *rn_rc_fetch(rn_rc_t *c, const char *topic, uint32_t partition, int64_t offset,
                              uint32_t partition_max_bytes, uint32_t max_bytes,
                              uint32_t min_bytes, uint32_t max_wait_ms, int timeout_ms)
{
    Runnel__FetchPartition fp = RUNNEL__FETCH_PARTITION__INIT, *fpp = &fp;
    fp.partition = partition;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = partition_max_bytes;
    fp.current_leader_epoch = -1;
    Runnel__FetchTopic ft = RUNNEL__FETCH_TOPIC__INIT, *ftp = &ft;
    ft.name = (char *)topic;
    ft.n_partitions = 1;
    ft.partitions = &fpp;
    Runnel__FetchRequest body = RUNNEL__FETCH_REQUEST__INIT;
    body.replica_id = -1;
    body.max_wait_ms = max_wait_ms;
    body.min_bytes = min_bytes;
    body.max_bytes = max_bytes;
    body.n_topics = 1;
    body.topics = &ftp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_FETCH;
    req.fetch = &body;
    return rn_rc_call(c, &req, RUNNEL__API_KEY__API_FETCH, timeout_ms);
}

Runnel__FetchPartitionData *rn_rc_fetch_part(Runnel__Response *r)
{
    if (!r || r->body_case != RUNNEL__RESPONSE__BODY_FETCH || r->fetch->n_topics != 1 ||
        r->fetch->topics[0]->n_partitions != 1)
        return NULL;
    return r->fetch->topics[0]->partitions[0];
}

int64_t rn_rc_list_offset(rn_rc_t *c, const char *topic, uint32_t partition, int64_t ts)
{
    Runnel__ListOffsetsPartition lp = RUNNEL__LIST_OFFSETS_PARTITION__INIT, *lpp = &lp;
    lp.partition = partition;
    lp.timestamp = ts;
    Runnel__ListOffsetsTopic lt = RUNNEL__LIST_OFFSETS_TOPIC__INIT, *ltp = &lt;
    lt.name = (char *)topic;
    lt.n_partitions = 1;
    lt.partitions = &lpp;
    Runnel__ListOffsetsRequest body = RUNNEL__LIST_OFFSETS_REQUEST__INIT;
    body.replica_id = -1;
    body.n_topics = 1;
    body.topics = &ltp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_LIST_OFFSETS;
    req.list_offsets = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_LIST_OFFSETS, 10000);
    if (!r || r->body_case != RUNNEL__RESPONSE__BODY_LIST_OFFSETS ||
        r->list_offsets->n_topics != 1 || r->list_offsets->topics[0]->n_partitions != 1) {
        rn_rc_free(r);
        return INT64_MIN;
    }
    Runnel__ListOffsetsPartitionResult *res = r->list_offsets->topics[0]->partitions[0];
    int64_t out = res->error ? -1 - (int64_t)res->error : res->offset;
    rn_rc_free(r);
    return out;
}

/* ------------------------------------------------------------------- batches ---- */

void rn_rc_make_batch(rn_buf_t *out, int64_t producer_id, int16_t epoch, int32_t base_seq,
                      int n, const char *prefix, int first)
{
    rn_batch_opts_t opts = RN_BATCH_OPTS_DEFAULT;
    opts.producer_id = producer_id;
    opts.producer_epoch = epoch;
    opts.base_sequence = base_seq;
    rn_batch_builder_t *b = rn_batch_builder_new();
    rn_batch_builder_reset(b, &opts);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (int i = 0; i < n; i++) {
        char v[64];
        int len = snprintf(v, sizeof v, "%s-%lld", prefix, (long long)first + i);
        rn_batch_builder_add(b, now, NULL, 0, v, (size_t)len, NULL, 0);
    }
    rn_batch_builder_finish(b, out);
    rn_batch_builder_free(b);
}

int rn_rc_decode(const uint8_t *data, size_t len, rn_rc_rec_t *recs, int cap)
{
    int count = 0;
    size_t pos = 0;
    while (pos < len) {
        rn_batch_iter_t it;
        if (rn_batch_iter_init(&it, data + pos, len - pos, 1u << 26) != RN_OK) {
            rn_batch_iter_free(&it);
            return -1;
        }
        size_t total = rn_batch_total_size(&it.hdr);
        rn_record_t rec;
        rn_err_t err;
        while ((err = rn_batch_iter_next(&it, &rec)) == RN_OK) {
            if (count < cap) {
                recs[count].offset = rec.offset;
                int vl = rec.value_len < 0 ? 0 : rec.value_len;
                if (vl > 63)
                    vl = 63;
                memcpy(recs[count].value, rec.value, (size_t)vl);
                recs[count].value[vl] = '\0';
            }
            count++;
        }
        rn_batch_iter_free(&it);
        if (err != RN_ERR_NOT_FOUND)
            return -1;
        pos += total;
    }
    return count;
}

int rn_rc_fetch_all(rn_rc_t *c, const char *topic, uint32_t partition, int64_t from,
                    rn_rc_rec_t *recs, int cap)
{
    int count = 0;
    int64_t off = from;
    for (int rounds = 0; rounds < 100000; rounds++) {
        Runnel__Response *r = rn_rc_fetch(c, topic, partition, off, 1u << 20, 4u << 20, 0, 0,
                                          10000);
        Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
        if (!p || p->error) {
            rn_rc_free(r);
            return -1;
        }
        if (p->records.len == 0) {
            rn_rc_free(r);
            return count;
        }
        int n = rn_rc_decode(p->records.data, p->records.len, recs + count, cap - count);
        if (n < 0 || count + n > cap) {
            rn_rc_free(r);
            return -1;
        }
        /* Records below the fetch offset (inside the first batch) are skipped by consumers. */
        int kept = 0;
        for (int i = 0; i < n; i++) {
            if ((int64_t)recs[count + i].offset >= off)
                recs[count + kept++] = recs[count + i];
        }
        count += kept;
        if (kept)
            off = (int64_t)recs[count - 1].offset + 1;
        rn_rc_free(r);
        if (!kept)
            return -1;
    }
    return count;
}
