/* cluster_check.c - see cluster_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_check.h"
#include "rawclient.h"

#define POLL_MS 50

bool rn_cc_usable(rn_hcluster_t *c, unsigned skip, int i)
{
    return !(skip & (1u << i)) && rn_h_broker_alive(&c->b[i]);
}

void rn_cc_bootstrap(rn_hcluster_t *c, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < RN_HC_N; i++) {
        if (!c->b[i].addr[0])
            continue;
        int n = snprintf(buf + pos, len - pos, "%s%s", pos ? "," : "", c->b[i].addr);
        if (n < 0 || (size_t)n >= len - pos)
            fail_msg("bootstrap list longer than %zu bytes", len);
        pos += (size_t)n;
    }
}

rn_cc_part_t rn_cc_part(const char *addr, const char *topic, uint32_t partition)
{
    rn_cc_part_t out = {.leader = -1, .error = -1, .log_end_offset = -1, .high_watermark = -1};
    rn_rc_t rc;
    if (rn_rc_connect(&rc, addr) != 0)
        return out;
    char *topics[1] = {(char *)topic};
    Runnel__MetadataRequest body = RUNNEL__METADATA_REQUEST__INIT;
    body.n_topics = 1;
    body.topics = topics;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &body;
    Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_METADATA, 2000);
    if (r && r->body_case == RUNNEL__RESPONSE__BODY_METADATA) {
        out.answered = true;
        out.error = RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION;
        const Runnel__MetadataResponse *m = r->metadata;
        for (size_t t = 0; t < m->n_topics; t++) {
            const Runnel__TopicMetadata *tm = m->topics[t];
            if (strcmp(tm->name, topic) != 0)
                continue;
            if (tm->error) {
                out.error = tm->error;
                break;
            }
            for (size_t k = 0; k < tm->n_partitions; k++) {
                const Runnel__PartitionMetadata *p = tm->partitions[k];
                if (p->partition != partition)
                    continue;
                out.error = p->error;
                out.leader = p->leader;
                out.leader_epoch = p->leader_epoch;
                for (size_t j = 0; j < p->n_replicas && j < RN_CC_MAX_REPLICAS; j++)
                    out.replicas[out.n_replicas++] = p->replicas[j];
                for (size_t j = 0; j < p->n_isr && j < RN_CC_MAX_REPLICAS; j++)
                    out.isr[out.n_isr++] = p->isr[j];
                out.log_end_offset = p->log_end_offset;
                out.high_watermark = p->high_watermark;
            }
        }
    } else if (r) {
        out.answered = true;
        out.error = r->error;
    }
    rn_rc_free(r);
    rn_rc_close(&rc);
    return out;
}

bool rn_cc_isr_has(const rn_cc_part_t *p, int32_t id)
{
    for (size_t i = 0; i < p->n_isr; i++)
        if (p->isr[i] == id)
            return true;
    return false;
}

const char *rn_cc_part_str(const rn_cc_part_t *p, char *buf, size_t len)
{
    if (!p->answered) {
        snprintf(buf, len, "(no answer)");
        return buf;
    }
    char isr[64] = "", reps[64] = "";
    size_t a = 0, b = 0;
    for (size_t i = 0; i < p->n_isr && a < sizeof isr; i++)
        a += (size_t)snprintf(isr + a, sizeof isr - a, "%s%d", i ? "," : "", p->isr[i]);
    for (size_t i = 0; i < p->n_replicas && b < sizeof reps; i++)
        b += (size_t)snprintf(reps + b, sizeof reps - b, "%s%d", i ? "," : "", p->replicas[i]);
    snprintf(buf, len,
             "error %d leader %d epoch %" PRIu32 " replicas [%s] isr [%s] log end %" PRId64
             " hw %" PRId64,
             p->error, p->leader, p->leader_epoch, reps, isr, p->log_end_offset,
             p->high_watermark);
    return buf;
}

/* ---- controller ---- */

typedef struct members {
    bool ok;
    int32_t controller_id;
    size_t n;
    int32_t id[8];
    bool alive[8], fenced[8];
} members_t;

static members_t describe(const char *addr)
{
    members_t v = {.controller_id = -1};
    rn_rc_t rc;
    if (rn_rc_connect(&rc, addr) != 0)
        return v;
    Runnel__DescribeClusterRequest body = RUNNEL__DESCRIBE_CLUSTER_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_DESCRIBE_CLUSTER;
    req.describe_cluster = &body;
    Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_DESCRIBE_CLUSTER, 2000);
    if (r && r->error == 0 && r->body_case == RUNNEL__RESPONSE__BODY_DESCRIBE_CLUSTER &&
        r->describe_cluster->alive_known) {
        const Runnel__DescribeClusterResponse *d = r->describe_cluster;
        v.ok = true;
        v.controller_id = d->controller_id;
        for (size_t i = 0; i < d->n_brokers && v.n < 8; i++, v.n++) {
            v.id[v.n] = d->brokers[i]->broker_id;
            v.alive[v.n] = d->brokers[i]->alive;
            v.fenced[v.n] = d->brokers[i]->fenced;
        }
    }
    rn_rc_free(r);
    rn_rc_close(&rc);
    return v;
}

static members_t controller_view(rn_hcluster_t *c, unsigned skip)
{
    for (int i = 0; i < RN_HC_N; i++) {
        if (!rn_cc_usable(c, skip, i))
            continue;
        members_t v = describe(c->b[i].addr);
        if (v.ok)
            return v;
    }
    return (members_t){.controller_id = -1};
}

int32_t rn_cc_controller(rn_hcluster_t *c, unsigned skip)
{
    return controller_view(c, skip).controller_id;
}

void rn_cc_wait_members(rn_hcluster_t *c, unsigned skip, unsigned fenced_mask, int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    members_t v;
    do {
        v = controller_view(c, skip);
        bool ok = v.ok && v.n == RN_HC_N;
        for (size_t k = 0; k < v.n && ok; k++) {
            bool want_fenced = v.id[k] >= 1 && (fenced_mask & (1u << (v.id[k] - 1)));
            ok = v.fenced[k] == want_fenced && (want_fenced || v.alive[k]);
        }
        if (ok)
            return;
        rn_hc_sleep_ms(POLL_MS);
    } while (rn_hc_now_ms() < deadline);
    rn_hc_dump_logs(c);
    fail_msg("within %d ms the controller did not list every broker unfenced except the mask "
             "0x%x fenced (view ok=%d, %zu brokers, controller %d)",
             timeout_ms, fenced_mask, v.ok, v.n, v.controller_id);
}

/* ---- partitions ---- */

rn_cc_part_t rn_cc_wait_leader(rn_hcluster_t *c, unsigned skip, const char *topic,
                               uint32_t partition, int32_t not_id, int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    rn_cc_part_t last = {0};
    int last_from = -1;
    do {
        for (int i = 0; i < RN_HC_N; i++) {
            if (!rn_cc_usable(c, skip, i))
                continue;
            rn_cc_part_t p = rn_cc_part(c->b[i].addr, topic, partition);
            last = p;
            last_from = i + 1;
            if (p.error || p.leader < 1 || p.leader > RN_HC_N || p.leader == not_id ||
                !rn_cc_usable(c, skip, p.leader - 1))
                continue;
            rn_cc_part_t l = rn_cc_part(c->b[p.leader - 1].addr, topic, partition);
            if (l.error == 0 && l.leader == p.leader)
                return l;
        }
        rn_hc_sleep_ms(POLL_MS);
    } while (rn_hc_now_ms() < deadline);
    char s[256];
    rn_hc_dump_logs(c);
    fail_msg("%s/%u: no usable leader other than %d within %d ms; broker %d last said: %s",
             topic, partition, not_id, timeout_ms, last_from, rn_cc_part_str(&last, s, sizeof s));
    return last;
}

rn_cc_part_t rn_cc_wait_isr(rn_hcluster_t *c, unsigned skip, const char *topic,
                            uint32_t partition, size_t want, int32_t absent_id, int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    rn_cc_part_t l = {0};
    do {
        int64_t left = deadline - rn_hc_now_ms();
        l = rn_cc_wait_leader(c, skip, topic, partition, -1, left > 0 ? (int)left : 1);
        if (l.n_isr == want && (absent_id < 0 || !rn_cc_isr_has(&l, absent_id)))
            return l;
        rn_hc_sleep_ms(POLL_MS);
    } while (rn_hc_now_ms() < deadline);
    char s[256];
    rn_hc_dump_logs(c);
    fail_msg("%s/%u: the leader did not report an ISR of %zu without broker %d within %d ms; "
             "it said: %s",
             topic, partition, want, absent_id, timeout_ms, rn_cc_part_str(&l, s, sizeof s));
    return l;
}

/* One partition fully replicated, as every broker tells it; *why explains a false. */
static bool part_in_sync(rn_hcluster_t *c, const char *topic, uint32_t p, int64_t *end,
                         char *why, size_t whylen)
{
    rn_cc_part_t v[RN_HC_N];
    for (int i = 0; i < RN_HC_N; i++)
        v[i] = rn_cc_part(c->b[i].addr, topic, p);
    char s[256];
    int32_t leader = v[0].leader;
    if (leader < 1 || leader > RN_HC_N) {
        snprintf(why, whylen, "broker 1 knows no leader: %s", rn_cc_part_str(&v[0], s, sizeof s));
        return false;
    }
    const rn_cc_part_t *l = &v[leader - 1];
    if (l->error || l->leader != leader || l->n_isr != RN_HC_N ||
        l->high_watermark != l->log_end_offset) {
        snprintf(why, whylen, "leader %d says: %s", leader, rn_cc_part_str(l, s, sizeof s));
        return false;
    }
    for (int i = 0; i < RN_HC_N; i++) {
        if (v[i].error || v[i].leader != leader || v[i].log_end_offset != l->log_end_offset) {
            snprintf(why, whylen, "leader %d has log end %" PRId64 ", broker %d says: %s", leader,
                     l->log_end_offset, i + 1, rn_cc_part_str(&v[i], s, sizeof s));
            return false;
        }
    }
    if (end)
        *end = l->log_end_offset;
    return true;
}

void rn_cc_wait_in_sync(rn_hcluster_t *c, const char *topic, uint32_t nparts, int64_t *end,
                        int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    char why[512] = "";
    for (uint32_t p = 0; p < nparts; p++) {
        while (!part_in_sync(c, topic, p, end ? &end[p] : NULL, why, sizeof why)) {
            if (rn_hc_now_ms() > deadline) {
                rn_hc_dump_logs(c);
                fail_msg("%s/%u: the replicas did not catch up within %d ms: %s", topic, p,
                         timeout_ms, why);
            }
            rn_hc_sleep_ms(POLL_MS);
        }
    }
}

/* ---- topics ---- */

int rn_cc_try_create(const char *addr, const char *name, uint32_t partitions, uint32_t rf,
                     const char *const *configs, char *msg, size_t msglen)
{
    rn_rc_t rc;
    if (msg && msglen)
        msg[0] = '\0';
    if (rn_rc_connect(&rc, addr) != 0)
        return -1;
    int err = rn_rc_create_topic(&rc, name, partitions, rf, configs, msg, msglen);
    rn_rc_close(&rc);
    return err;
}

bool rn_cc_topic_complete(const char *addr, const char *name, uint32_t partitions,
                          bool *absent)
{
    if (absent)
        *absent = false;
    for (uint32_t p = 0; p < partitions; p++) {
        rn_cc_part_t v = rn_cc_part(addr, name, p);
        if (p == 0 && absent && v.answered &&
            v.error == RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION)
            *absent = true;
        if (!v.answered || v.error || v.leader < 1)
            return false;
    }
    /* and no partition beyond */
    rn_cc_part_t extra = rn_cc_part(addr, name, partitions);
    return extra.answered && extra.error != 0;
}

void rn_cc_create_topic(rn_hcluster_t *c, unsigned skip, const char *name, uint32_t partitions,
                        uint32_t rf, const char *const *configs, bool accept_exists,
                        int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    char msg[512] = "";
    int err = -1;
    for (;;) {
        int32_t ctl = rn_cc_controller(c, skip);
        if (ctl >= 1 && ctl <= RN_HC_N && rn_cc_usable(c, skip, ctl - 1)) {
            err = rn_cc_try_create(c->b[ctl - 1].addr, name, partitions, rf, configs, msg,
                                   sizeof msg);
            if (err == 0 || (accept_exists && err == RUNNEL__ERROR_CODE__ERR_TOPIC_ALREADY_EXISTS))
                break;
            if (err != -1 && err != RUNNEL__ERROR_CODE__ERR_NOT_CONTROLLER) {
                rn_hc_dump_logs(c);
                fail_msg("CreateTopics %s (%u partitions, replication factor %u) to the "
                         "controller %d: error %d: %s",
                         name, partitions, rf, ctl, err, msg);
            }
        }
        if (rn_hc_now_ms() > deadline) {
            rn_hc_dump_logs(c);
            fail_msg("CreateTopics %s: no controller took it within %d ms (last error %d: %s)",
                     name, timeout_ms, err, msg);
        }
        rn_hc_sleep_ms(100);
    }
    for (int i = 0; i < RN_HC_N; i++) {
        if (!rn_cc_usable(c, skip, i))
            continue;
        while (!rn_cc_topic_complete(c->b[i].addr, name, partitions, NULL)) {
            if (rn_hc_now_ms() > deadline + 10000) {
                rn_cc_part_t v = rn_cc_part(c->b[i].addr, name, 0);
                char s[256];
                rn_hc_dump_logs(c);
                fail_msg("topic %s created, but broker %d does not show all %u partitions with "
                         "leaders; partition 0: %s",
                         name, i + 1, partitions, rn_cc_part_str(&v, s, sizeof s));
            }
            rn_hc_sleep_ms(POLL_MS);
        }
    }
}

/* ---- stop and compare ---- */

void rn_cc_stop_all(rn_hcluster_t *c)
{
    for (int i = 0; i < RN_HC_N; i++) {
        if (!rn_h_broker_alive(&c->b[i]))
            continue;
        rn_h_broker_signal(&c->b[i], SIGCONT);
        int status = rn_h_broker_stop(&c->b[i]);
        if (status != 0) {
            rn_h_broker_dump_log(&c->b[i]);
            fail_msg("broker %d did not stop cleanly on SIGTERM (status %d)", i + 1, status);
        }
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The concatenated *.log files of dir, in name order; NULL when dir cannot be read. */
static uint8_t *read_log(const char *dir, size_t *len, size_t *files)
{
    *len = 0;
    *files = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *names[4096];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    uint8_t *buf = malloc(1);
    for (size_t i = 0; i < n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = realloc(buf, *len + (size_t)size + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf + *len, 1, (size_t)size, f), (size_t)size);
        fclose(f);
        *len += (size_t)size;
        free(names[i]);
    }
    *files = n;
    return buf;
}

void rn_cc_assert_logs_equal(rn_hcluster_t *c, const char *topic, uint32_t nparts)
{
    for (int i = 0; i < RN_HC_N; i++)
        if (rn_h_broker_alive(&c->b[i]))
            fail_msg("compare logs: broker %d still runs", i + 1);
    for (uint32_t p = 0; p < nparts; p++) {
        uint8_t *buf[RN_HC_N];
        size_t len[RN_HC_N], files[RN_HC_N];
        for (int i = 0; i < RN_HC_N; i++) {
            char dir[800];
            snprintf(dir, sizeof dir, "%s/%s-%u", c->data[i], topic, p);
            buf[i] = read_log(dir, &len[i], &files[i]);
            if (!buf[i])
                fail_msg("broker %d has no log directory %s", i + 1, dir);
        }
        if (len[0] == 0)
            fail_msg("%s-%u: broker 1's log is empty; nothing was replicated to compare", topic,
                     p);
        for (int i = 1; i < RN_HC_N; i++) {
            size_t k = 0;
            while (k < len[0] && k < len[i] && buf[0][k] == buf[i][k])
                k++;
            if (len[i] != len[0] || k != len[0])
                fail_msg("%s-%u: broker 1's log (%zu bytes in %zu segments) and broker %d's "
                         "(%zu bytes in %zu segments) differ, first at byte %zu",
                         topic, p, len[0], files[0], i + 1, len[i], files[i], k);
        }
        fprintf(stderr, "# %s-%u: %zu bytes (%zu segments) identical on all %d brokers\n", topic,
                p, len[0], files[0], RN_HC_N);
        for (int i = 0; i < RN_HC_N; i++)
            free(buf[i]);
    }
}

/* ---- produce ---- */

int rn_cc_produce(const char *addr, const char *topic, uint32_t partition, int32_t acks, int n,
                  const char *prefix, int first, int timeout_ms, int64_t *base_offset)
{
    rn_rc_t rc;
    if (rn_rc_connect(&rc, addr) != 0)
        return -1;
    rn_buf_t batch = RN_BUF_INIT;
    rn_rc_make_batch(&batch, -1, -1, -1, n, prefix, first);
    Runnel__ProducePartition pp = RUNNEL__PRODUCE_PARTITION__INIT, *ppp = &pp;
    pp.partition = partition;
    pp.records.data = batch.data;
    pp.records.len = batch.len;
    Runnel__ProduceTopic pt = RUNNEL__PRODUCE_TOPIC__INIT, *ptp = &pt;
    pt.name = (char *)topic;
    pt.n_partitions = 1;
    pt.partitions = &ppp;
    Runnel__ProduceRequest body = RUNNEL__PRODUCE_REQUEST__INIT;
    body.acks = acks;
    body.timeout_ms = (uint32_t)timeout_ms;
    body.n_topics = 1;
    body.topics = &ptp;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
    req.produce = &body;
    Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_PRODUCE, timeout_ms + 3000);
    int err = -1;
    if (r && r->body_case == RUNNEL__RESPONSE__BODY_PRODUCE && r->produce->n_topics == 1 &&
        r->produce->topics[0]->n_partitions == 1) {
        err = r->produce->topics[0]->partitions[0]->error;
        if (base_offset)
            *base_offset = r->produce->topics[0]->partitions[0]->base_offset;
    } else if (r && r->error) {
        err = r->error;
    }
    rn_rc_free(r);
    rn_buf_free(&batch);
    rn_rc_close(&rc);
    return err;
}
