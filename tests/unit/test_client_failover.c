/*
 * librunnel across a failover (docs/cluster.md §7), without a real cluster:
 *   - the metadata cache's epoch rule (KIP-320): an entry with an older leader_epoch than the
 *     cached one is ignored, equal or newer replace it, a re-created topic starts afresh;
 *   - which errors are retried and which of those refresh metadata first;
 *   - against fake brokers (a thread speaking the wire protocol on two loopback ports):
 *     metadata skips a dead bootstrap server, admin calls follow the active controller through
 *     NOT_CONTROLLER, ElectLeaders results come back sorted, the consumer sends the cached
 *     leader epoch and fetches the same offset again after FENCED_LEADER_EPOCH, and the
 *     idempotent producer retries NOT_ENOUGH_REPLICAS_AFTER_APPEND with the same sequence.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core.h"
#include "runnel/runnel.h"

/* ------------------------------------------------------------ cache rules ---- */

static rn_cl_t *offline_cl(void)
{
    rn_conf_t *conf = rn_conf_new();
    assert_int_equal(rn_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", NULL, 0), RN_OK);
    rn_cl_t *cl;
    assert_int_equal(rn_cl_new(conf, NULL, NULL, &cl, NULL, 0), RN_OK);
    rn_conf_free(conf);
    return cl;
}

static void offline_cl_free(rn_cl_t *cl)
{
    rn_cl_stop(cl);
    rn_cl_free(cl);
}

typedef struct pm_spec {
    int32_t leader;
    uint32_t epoch;
} pm_spec_t;

/* Applies a one-topic answer naming partitions specs[0..n) with controller_id ctl. */
/* apply() with a 16-byte topic id whose bytes are all tag (0: no id, as a single node). */
static void apply_id(rn_cl_t *cl, const char *topic, const pm_spec_t *specs, size_t n,
                     int32_t ctl, uint8_t tag);

static void apply(rn_cl_t *cl, const char *topic, const pm_spec_t *specs, size_t n, int32_t ctl)
{
    apply_id(cl, topic, specs, n, ctl, 0);
}

static void apply_id(rn_cl_t *cl, const char *topic, const pm_spec_t *specs, size_t n,
                     int32_t ctl, uint8_t tag)
{
    uint8_t id[16];
    memset(id, tag, sizeof id);
    Runnel__PartitionMetadata pms[8], *pmp[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        runnel__partition_metadata__init(&pms[i]);
        pms[i].partition = (uint32_t)i;
        pms[i].leader = specs[i].leader;
        pms[i].leader_epoch = specs[i].epoch;
        pmp[i] = &pms[i];
    }
    Runnel__TopicMetadata tm = RUNNEL__TOPIC_METADATA__INIT, *tmp = &tm;
    tm.name = (char *)topic;
    if (tag) {
        tm.topic_id.data = id;
        tm.topic_id.len = sizeof id;
    }
    tm.n_partitions = n;
    tm.partitions = pmp;
    Runnel__MetadataResponse m = RUNNEL__METADATA_RESPONSE__INIT;
    m.controller_id = ctl;
    m.n_topics = 1;
    m.topics = &tmp;
    rn_cl_md_apply(cl, &m, false);
}

static void expect_part(rn_cl_t *cl, const char *topic, int32_t p, int32_t leader, uint32_t epoch)
{
    const rn_cl_topic_t *t = rn_cl_md_topic(cl, topic);
    assert_non_null(t);
    assert_true(p < t->partition_count);
    if (t->parts[p].leader != leader || t->parts[p].leader_epoch != epoch)
        fail_msg("%s-%d: leader %d epoch %u, want leader %d epoch %u", topic, p,
                 t->parts[p].leader, t->parts[p].leader_epoch, leader, epoch);
}

static void test_epoch_rule(void **state)
{
    (void)state;
    rn_cl_t *cl = offline_cl();
    assert_int_equal(rn_cl_md_controller(cl), -1);
    apply(cl, "t", (pm_spec_t[]){{1, 5}, {2, 5}}, 2, 3);
    assert_int_equal(rn_cl_md_controller(cl), 3);
    expect_part(cl, "t", 0, 1, 5);

    /* A newer epoch moves the leader; an older one (a broker behind) does not move it back. */
    apply(cl, "t", (pm_spec_t[]){{3, 6}, {2, 5}}, 2, 3);
    expect_part(cl, "t", 0, 3, 6);
    apply(cl, "t", (pm_spec_t[]){{1, 5}, {1, 4}}, 2, 1);
    expect_part(cl, "t", 0, 3, 6);
    expect_part(cl, "t", 1, 2, 5);
    assert_int_equal(rn_cl_md_controller(cl), 1);

    /* Per partition: the stale entry stays ignored while its neighbour's news is taken. */
    apply(cl, "t", (pm_spec_t[]){{1, 5}, {3, 7}}, 2, 1);
    expect_part(cl, "t", 0, 3, 6);
    expect_part(cl, "t", 1, 3, 7);

    /* The same epoch replaces: it can only carry the same leader or news about it. */
    apply(cl, "t", (pm_spec_t[]){{-1, 6}, {3, 7}}, 2, 1);
    expect_part(cl, "t", 0, -1, 6);
    assert_int_equal(rn_cl_md_topic(cl, "t")->parts[0].err, RN_ERR_LEADER_NOT_AVAILABLE);

    /* Another partition count is another topic (deleted and created again): taken whole. */
    apply(cl, "t", (pm_spec_t[]){{1, 0}, {1, 0}, {2, 0}}, 3, 1);
    expect_part(cl, "t", 0, 1, 0);
    expect_part(cl, "t", 2, 2, 0);

    /* Deleted and created again with the same partition count: only the topic id tells, and
     * the new topic's epochs (from 0) are taken, not ignored as older. */
    apply_id(cl, "t", (pm_spec_t[]){{1, 9}, {1, 9}, {2, 9}}, 3, 1, 0xa1);
    expect_part(cl, "t", 0, 1, 9);
    apply_id(cl, "t", (pm_spec_t[]){{3, 0}, {3, 0}, {3, 0}}, 3, 1, 0xb2);
    expect_part(cl, "t", 0, 3, 0);
    apply_id(cl, "t", (pm_spec_t[]){{1, 0}, {1, 0}, {1, 0}}, 3, 1, 0xb2); /* same id: equal */
    expect_part(cl, "t", 0, 1, 0);

    /* A named topic the answer leaves out is gone; its epochs go with it. */
    rn_cl_md_want(cl, "t");
    Runnel__MetadataResponse empty = RUNNEL__METADATA_RESPONSE__INIT;
    rn_cl_md_apply(cl, &empty, true);
    assert_int_equal(rn_cl_md_topic(cl, "t")->err, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    apply(cl, "t", (pm_spec_t[]){{2, 0}, {2, 0}, {2, 0}}, 3, 1);
    expect_part(cl, "t", 0, 2, 0);
    offline_cl_free(cl);
}

static void test_retry_kinds(void **state)
{
    (void)state;
    static const rn_err_t refresh[] = {
        RN_ERR_LEADER_NOT_AVAILABLE,   RN_ERR_NOT_ENOUGH_REPLICAS,
        RN_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RN_ERR_REQUEST_TIMED_OUT,
        RN_ERR_FENCED_LEADER_EPOCH,    RN_ERR_UNKNOWN_LEADER_EPOCH,
        RN_ERR_NOT_CONTROLLER,         RN_ERR_NOT_LEADER_OR_FOLLOWER,
        RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, RN_ERR_BROKER_NOT_AVAILABLE,
        RN_ERR_TRANSPORT,              RN_ERR_TIMED_OUT,
    };
    for (size_t i = 0; i < sizeof refresh / sizeof refresh[0]; i++) {
        if (rn_cl_retry_kind(refresh[i]) != RN_CL_RETRY_REFRESH)
            fail_msg("%s should be retried after a metadata refresh", rn_err_name(refresh[i]));
        assert_true(rn_err_retriable(refresh[i]));
    }
    static const rn_err_t plain[] = {RN_ERR_TOO_MANY_REQUESTS, RN_ERR_STORAGE_ERROR,
                                     RN_ERR_NOT_COORDINATOR};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        assert_int_equal(rn_cl_retry_kind(plain[i]), RN_CL_RETRY);
    static const rn_err_t fatal[] = {RN_OK, RN_ERR_OFFSET_OUT_OF_RANGE, RN_ERR_TOPIC_ALREADY_EXISTS,
                                     RN_ERR_ELECTION_NOT_NEEDED, RN_ERR_MESSAGE_TOO_LARGE,
                                     RN_ERR_INVALID_REPLICATION_FACTOR, RN_ERR_CLOSED};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        if (rn_cl_retry_kind(fatal[i]) != RN_CL_FAIL)
            fail_msg("%s should not be retried", rn_err_name(fatal[i]));
    }
}

/* ------------------------------------------------------------ fake brokers ---- */

#define FAKE_BROKERS 2
#define FAKE_CLIENTS 32

/*
 * Two brokers (node ids 1 and 2) served by one thread. The handler sees each request with the
 * index (0 or 1) of the broker it reached and fills resp; everything it points resp at must
 * stay valid until it returns (the thread packs the answer right after).
 */
typedef struct fake fake_t;
typedef void (*fake_handler_t)(fake_t *f, int broker, const Runnel__Request *req,
                               Runnel__Response *resp);

struct fake {
    int lfd[FAKE_BROKERS];
    int port[FAKE_BROKERS];
    int wake[2];
    pthread_t thread;
    fake_handler_t handler;
    pthread_mutex_t lock;         /* the scenario state below, shared with the test thread */
    int32_t md_controller;        /* controller_id in Metadata answers */
    int32_t real_controller;      /* the broker index that answers admin requests */
    uint32_t leader_epoch;
    int admin_calls[FAKE_BROKERS];
    int fetches;
    int32_t fetch_epochs[16];
    int64_t fetch_offsets[16];
    int produces;
    int32_t produce_seqs[16];
};

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int dead_port(void)
{
    int port;
    close(listen_any(&port));
    return port;
}

static bool read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* One request on fd answered; false when the client went away. */
static bool serve_one(fake_t *f, int broker, int fd)
{
    uint8_t hdr[4];
    if (!read_all(fd, hdr, 4))
        return false;
    uint32_t len = hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || !read_all(fd, buf, len)) {
        free(buf);
        return false;
    }
    Runnel__Request *req = runnel__request__unpack(NULL, len, buf);
    free(buf);
    if (!req)
        return false;
    Runnel__Response resp = RUNNEL__RESPONSE__INIT;
    resp.correlation_id = req->header->correlation_id;
    resp.error_message = "";
    f->handler(f, broker, req, &resp);
    size_t rlen = runnel__response__get_packed_size(&resp);
    uint8_t *out = malloc(4 + rlen);
    out[0] = (uint8_t)rlen, out[1] = (uint8_t)(rlen >> 8);
    out[2] = (uint8_t)(rlen >> 16), out[3] = (uint8_t)(rlen >> 24);
    runnel__response__pack(&resp, out + 4);
    runnel__request__free_unpacked(req, NULL); /* after packing: resp may point into it */
    bool ok = write(fd, out, 4 + rlen) == (ssize_t)(4 + rlen);
    free(out);
    return ok;
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    struct pollfd pfd[1 + FAKE_BROKERS + FAKE_CLIENTS];
    int owner[FAKE_CLIENTS];
    int nc = 0;
    for (;;) {
        pfd[0] = (struct pollfd){f->wake[0], POLLIN, 0};
        for (int i = 0; i < FAKE_BROKERS; i++)
            pfd[1 + i] = (struct pollfd){f->lfd[i], POLLIN, 0};
        for (int i = 0; i < nc; i++)
            pfd[1 + FAKE_BROKERS + i].events = POLLIN;
        if (poll(pfd, (nfds_t)(1 + FAKE_BROKERS + nc), -1) < 0)
            continue;
        if (pfd[0].revents)
            break;
        for (int i = 0; i < FAKE_BROKERS; i++) {
            if (!(pfd[1 + i].revents & POLLIN) || nc == FAKE_CLIENTS)
                continue;
            int fd = accept(f->lfd[i], NULL, NULL);
            if (fd >= 0) {
                pfd[1 + FAKE_BROKERS + nc] = (struct pollfd){fd, POLLIN, 0};
                owner[nc++] = i;
            }
        }
        for (int i = 0; i < nc; i++) {
            struct pollfd *p = &pfd[1 + FAKE_BROKERS + i];
            if (!p->revents)
                continue;
            p->revents = 0;
            if (serve_one(f, owner[i], p->fd))
                continue;
            close(p->fd);
            pfd[1 + FAKE_BROKERS + i] = pfd[1 + FAKE_BROKERS + nc - 1];
            owner[i] = owner[--nc];
            i--;
        }
    }
    for (int i = 0; i < nc; i++)
        close(pfd[1 + FAKE_BROKERS + i].fd);
    return NULL;
}

static fake_t *fake_start(fake_handler_t handler)
{
    fake_t *f = calloc(1, sizeof *f);
    f->handler = handler;
    f->md_controller = 1;
    f->real_controller = 0;
    pthread_mutex_init(&f->lock, NULL);
    for (int i = 0; i < FAKE_BROKERS; i++)
        f->lfd[i] = listen_any(&f->port[i]);
    assert_int_equal(pipe(f->wake), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(fake_t *f)
{
    assert_int_equal(write(f->wake[1], "x", 1), 1);
    pthread_join(f->thread, NULL);
    for (int i = 0; i < FAKE_BROKERS; i++)
        close(f->lfd[i]);
    close(f->wake[0]);
    close(f->wake[1]);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Bootstrap: a dead server first, then broker index 0. */
static rn_conf_t *fake_conf(const fake_t *f)
{
    rn_conf_t *c = rn_conf_new();
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), f->port[0]);
    assert_int_equal(rn_conf_set(c, "bootstrap.servers", servers, NULL, 0), RN_OK);
    assert_int_equal(rn_conf_set(c, "request.timeout.ms", "2000", NULL, 0), RN_OK);
    assert_int_equal(rn_conf_set(c, "retry.backoff.ms", "20", NULL, 0), RN_OK);
    return c;
}

/* Metadata: both brokers, topic "t" with one partition led by node 1 at f->leader_epoch. */
static void answer_metadata(fake_t *f, Runnel__Response *resp)
{
    static Runnel__BrokerInfo bi[FAKE_BROKERS];
    static Runnel__BrokerInfo *bip[FAKE_BROKERS];
    static Runnel__PartitionMetadata pm;
    static Runnel__PartitionMetadata *pmp = &pm;
    static Runnel__TopicMetadata tm;
    static Runnel__TopicMetadata *tmp = &tm;
    static Runnel__MetadataResponse m;
    static int32_t replicas[1] = {1};
    for (int i = 0; i < FAKE_BROKERS; i++) {
        runnel__broker_info__init(&bi[i]);
        bi[i].node_id = i + 1;
        bi[i].host = "127.0.0.1";
        bi[i].port = (uint32_t)f->port[i];
        bip[i] = &bi[i];
    }
    runnel__partition_metadata__init(&pm);
    pm.leader = 1;
    pm.n_replicas = pm.n_isr = 1;
    pm.replicas = pm.isr = replicas;
    runnel__topic_metadata__init(&tm);
    tm.name = "t";
    tm.n_partitions = 1;
    tm.partitions = &pmp;
    runnel__metadata_response__init(&m);
    m.n_brokers = FAKE_BROKERS;
    m.brokers = bip;
    m.n_topics = 1;
    m.topics = &tmp;
    pthread_mutex_lock(&f->lock);
    pm.leader_epoch = f->leader_epoch;
    m.controller_id = f->md_controller;
    m.cluster_id = (char *)"fake-cluster"; /* a cluster: admin calls go to the controller */
    pthread_mutex_unlock(&f->lock);
    resp->body_case = RUNNEL__RESPONSE__BODY_METADATA;
    resp->metadata = &m;
}

/* ----------------------------------------------------------------- admin ---- */

/*
 * Admin requests: only broker f->real_controller answers; the other says NOT_CONTROLLER, and
 * from then on Metadata names the real one (the client's next refresh finds it).
 */
static void admin_handler(fake_t *f, int broker, const Runnel__Request *req,
                          Runnel__Response *resp)
{
    static Runnel__TopicResult tr, *trp = &tr;
    static Runnel__CreateTopicsResponse cr;
    static Runnel__ElectLeadersPartitionResult er[3], *erp[3];
    static Runnel__ElectLeadersResponse el;
    if (req->body_case == RUNNEL__REQUEST__BODY_METADATA) {
        answer_metadata(f, resp);
        return;
    }
    pthread_mutex_lock(&f->lock);
    f->admin_calls[broker]++;
    bool controller = broker == f->real_controller;
    if (!controller)
        f->md_controller = f->real_controller + 1;
    pthread_mutex_unlock(&f->lock);
    if (!controller) {
        resp->error = RUNNEL__ERROR_CODE__ERR_NOT_CONTROLLER;
        resp->error_message = "not the active controller";
        return;
    }
    if (req->body_case == RUNNEL__REQUEST__BODY_CREATE_TOPICS) {
        runnel__topic_result__init(&tr);
        tr.name = req->create_topics->topics[0]->name;
        runnel__create_topics_response__init(&cr);
        cr.n_results = 1;
        cr.results = &trp;
        resp->body_case = RUNNEL__RESPONSE__BODY_CREATE_TOPICS;
        resp->create_topics = &cr;
        return;
    }
    if (req->body_case == RUNNEL__REQUEST__BODY_ELECT_LEADERS) {
        assert_true(req->elect_leaders->preferred);
        static const struct { const char *t; uint32_t p; Runnel__ErrorCode e; int32_t l; } rows[3] = {
            {"b", 1, RUNNEL__ERROR_CODE__ERR_PREFERRED_LEADER_NOT_AVAILABLE, 2},
            {"a", 0, RUNNEL__ERROR_CODE__ERR_OK, 1},
            {"b", 0, RUNNEL__ERROR_CODE__ERR_ELECTION_NOT_NEEDED, 2},
        };
        for (int i = 0; i < 3; i++) {
            runnel__elect_leaders_partition_result__init(&er[i]);
            er[i].topic = (char *)rows[i].t;
            er[i].partition = rows[i].p;
            er[i].error = rows[i].e;
            er[i].leader = rows[i].l;
            erp[i] = &er[i];
        }
        runnel__elect_leaders_response__init(&el);
        el.n_results = 3;
        el.results = erp;
        resp->body_case = RUNNEL__RESPONSE__BODY_ELECT_LEADERS;
        resp->elect_leaders = &el;
        return;
    }
    resp->error = RUNNEL__ERROR_CODE__ERR_UNSUPPORTED_VERSION;
}

static void test_admin_follows_controller(void **state)
{
    (void)state;
    fake_t *f = fake_start(admin_handler);
    f->md_controller = 1;
    f->real_controller = 1; /* node 2: metadata names node 1 until node 1 refuses */
    rn_conf_t *conf = fake_conf(f);
    rn_admin_t *a;
    assert_int_equal(rn_admin_new(conf, &a, NULL, 0), RN_OK);
    rn_conf_free(conf);
    char err[256] = "";
    rn_err_t e = rn_admin_create_topic(a, "new", 1, 1, NULL, 5000, err, sizeof err);
    if (e != RN_OK)
        fail_msg("create through NOT_CONTROLLER: %s (%s)", rn_err_name(e), err);
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->admin_calls[0], 1);
    assert_int_equal(f->admin_calls[1], 1);
    pthread_mutex_unlock(&f->lock);

    /* Now the cache knows node 2: the election goes straight there. */
    rn_election_results_t *r = NULL;
    const char *topics[] = {"a", "b", NULL};
    e = rn_admin_elect_leaders(a, true, topics, 5000, &r, err, sizeof err);
    if (e != RN_OK)
        fail_msg("elect leaders: %s (%s)", rn_err_name(e), err);
    assert_int_equal(r->count, 3);
    assert_string_equal(r->results[0].topic, "a");
    assert_int_equal(r->results[0].err, RN_OK);
    assert_int_equal(r->results[0].leader, 1);
    assert_string_equal(r->results[1].topic, "b");
    assert_int_equal(r->results[1].partition, 0);
    assert_int_equal(r->results[1].err, RN_ERR_ELECTION_NOT_NEEDED);
    assert_int_equal(r->results[2].partition, 1);
    assert_int_equal(r->results[2].err, RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE);
    rn_election_results_free(r);
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->admin_calls[0], 1);
    assert_int_equal(f->admin_calls[1], 2);
    pthread_mutex_unlock(&f->lock);

    /* A controller that never appears: NOT_CONTROLLER until the call's timeout. */
    pthread_mutex_lock(&f->lock);
    f->real_controller = 5;
    pthread_mutex_unlock(&f->lock);
    e = rn_admin_delete_topic(a, "new", 300, err, sizeof err);
    if (e != RN_ERR_NOT_CONTROLLER && e != RN_ERR_TIMED_OUT)
        fail_msg("delete without a controller gave %s", rn_err_name(e));
    assert_int_equal(rn_admin_elect_leaders(a, true, NULL, 1000, NULL, NULL, 0),
                     RN_ERR_INVALID_ARG);
    rn_admin_close(a);
    fake_stop(f);
}

/* -------------------------------------------------------------- consumer ---- */

/* Fetch: the first answer is FENCED_LEADER_EPOCH, after which metadata moves to epoch 4. */
static void fetch_handler(fake_t *f, int broker, const Runnel__Request *req,
                          Runnel__Response *resp)
{
    (void)broker;
    static Runnel__FetchPartitionData pd, *pdp = &pd;
    static Runnel__FetchTopicData td, *tdp = &td;
    static Runnel__FetchResponse fr;
    if (req->body_case == RUNNEL__REQUEST__BODY_METADATA) {
        answer_metadata(f, resp);
        return;
    }
    if (req->body_case != RUNNEL__REQUEST__BODY_FETCH) {
        resp->error = RUNNEL__ERROR_CODE__ERR_UNSUPPORTED_VERSION;
        return;
    }
    const Runnel__FetchPartition *fp = req->fetch->topics[0]->partitions[0];
    pthread_mutex_lock(&f->lock);
    int n = f->fetches++;
    if (n < 16) {
        f->fetch_epochs[n] = fp->current_leader_epoch;
        f->fetch_offsets[n] = fp->fetch_offset;
    }
    if (n == 0)
        f->leader_epoch = 4;
    pthread_mutex_unlock(&f->lock);
    runnel__fetch_partition_data__init(&pd);
    pd.error = n == 0 ? RUNNEL__ERROR_CODE__ERR_FENCED_LEADER_EPOCH : RUNNEL__ERROR_CODE__ERR_OK;
    pd.high_watermark = 5;
    runnel__fetch_topic_data__init(&td);
    td.name = "t";
    td.n_partitions = 1;
    td.partitions = &pdp;
    runnel__fetch_response__init(&fr);
    fr.n_topics = 1;
    fr.topics = &tdp;
    resp->body_case = RUNNEL__RESPONSE__BODY_FETCH;
    resp->fetch = &fr;
}

static void test_consumer_fenced_epoch(void **state)
{
    (void)state;
    fake_t *f = fake_start(fetch_handler);
    f->leader_epoch = 3;
    rn_conf_t *conf = fake_conf(f);
    assert_int_equal(rn_conf_set(conf, "fetch.max.wait.ms", "10", NULL, 0), RN_OK);
    rn_consumer_t *c;
    assert_int_equal(rn_consumer_new(conf, &c, NULL, 0), RN_OK);
    rn_conf_free(conf);
    assert_int_equal(rn_consumer_assign(c, "t", 0, 5), RN_OK);
    for (int i = 0; i < 100; i++) {
        const rn_record_view_t *recs;
        size_t n;
        rn_err_t e = rn_consumer_poll(c, 100, 20, &recs, &n);
        if (e != RN_OK)
            fail_msg("poll gave %s", rn_err_name(e));
        pthread_mutex_lock(&f->lock);
        int fetches = f->fetches;
        pthread_mutex_unlock(&f->lock);
        if (fetches >= 2)
            break;
    }
    rn_consumer_close(c);
    assert_true(f->fetches >= 2);
    assert_int_equal(f->fetch_epochs[0], 3);
    assert_int_equal(f->fetch_offsets[0], 5);
    assert_int_equal(f->fetch_epochs[1], 4);
    assert_int_equal(f->fetch_offsets[1], 5);
    fake_stop(f);
}

/* -------------------------------------------------------------- producer ---- */

#define OFF_BASE_SEQUENCE 57 /* batch.h's diagram */

/* Produce: the first attempt NOT_ENOUGH_REPLICAS_AFTER_APPEND, then acknowledged at 0. */
static void produce_handler(fake_t *f, int broker, const Runnel__Request *req,
                            Runnel__Response *resp)
{
    (void)broker;
    static Runnel__InitProducerIdResponse ip;
    static Runnel__ProducePartitionResult pr, *prp = &pr;
    static Runnel__ProduceTopicResult tr, *trp = &tr;
    static Runnel__ProduceResponse prr;
    switch (req->body_case) {
    case RUNNEL__REQUEST__BODY_METADATA: answer_metadata(f, resp); return;
    case RUNNEL__REQUEST__BODY_INIT_PRODUCER_ID:
        runnel__init_producer_id_response__init(&ip);
        ip.producer_id = 7;
        resp->body_case = RUNNEL__RESPONSE__BODY_INIT_PRODUCER_ID;
        resp->init_producer_id = &ip;
        return;
    case RUNNEL__REQUEST__BODY_PRODUCE: break;
    default: resp->error = RUNNEL__ERROR_CODE__ERR_UNSUPPORTED_VERSION; return;
    }
    const ProtobufCBinaryData *rec = &req->produce->topics[0]->partitions[0]->records;
    assert_true(rec->len > OFF_BASE_SEQUENCE + 4);
    const uint8_t *s = rec->data + OFF_BASE_SEQUENCE;
    pthread_mutex_lock(&f->lock);
    int n = f->produces++;
    if (n < 16)
        f->produce_seqs[n] = (int32_t)(s[0] | s[1] << 8 | s[2] << 16 | (uint32_t)s[3] << 24);
    pthread_mutex_unlock(&f->lock);
    runnel__produce_partition_result__init(&pr);
    pr.error = n == 0 ? RUNNEL__ERROR_CODE__ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND
                      : RUNNEL__ERROR_CODE__ERR_OK;
    pr.base_offset = n == 0 ? -1 : 0;
    pr.error_message = "";
    runnel__produce_topic_result__init(&tr);
    tr.name = "t";
    tr.n_partitions = 1;
    tr.partitions = &prp;
    runnel__produce_response__init(&prr);
    prr.n_topics = 1;
    prr.topics = &trp;
    resp->body_case = RUNNEL__RESPONSE__BODY_PRODUCE;
    resp->produce = &prr;
}

static rn_err_t delivered_err = RN_ERR_STATE;
static int64_t delivered_offset = -2;

static void on_delivery(const rn_delivery_t *d, void *ctx)
{
    (void)ctx;
    delivered_err = d->err;
    delivered_offset = d->offset;
}

static void test_producer_retries_same_sequence(void **state)
{
    (void)state;
    fake_t *f = fake_start(produce_handler);
    rn_conf_t *conf = fake_conf(f);
    assert_int_equal(rn_conf_set(conf, "linger.ms", "0", NULL, 0), RN_OK);
    rn_producer_t *p;
    assert_int_equal(rn_producer_new(conf, on_delivery, NULL, &p, NULL, 0), RN_OK);
    rn_conf_free(conf);
    rn_message_t m = {.topic = "t", .partition = 0, .value = "v", .value_len = 1};
    assert_int_equal(rn_producer_send(p, &m, 5000), RN_OK);
    assert_int_equal(rn_producer_flush(p, 5000), RN_OK);
    assert_int_equal(rn_producer_close(p, 1000), RN_OK);
    if (delivered_err != RN_OK)
        fail_msg("delivery: %s", rn_err_name(delivered_err));
    assert_int_equal(delivered_offset, 0);
    assert_int_equal(f->produces, 2);
    assert_int_equal(f->produce_seqs[0], 0);
    assert_int_equal(f->produce_seqs[1], 0);
    fake_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_rule),
        cmocka_unit_test(test_retry_kinds),
        cmocka_unit_test(test_admin_follows_controller),
        cmocka_unit_test(test_consumer_fenced_epoch),
        cmocka_unit_test(test_producer_retries_same_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
