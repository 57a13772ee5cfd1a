/*
 * test_cluster_members.c - broker registration, heartbeats and fencing on three real brokers
 * (docs/cluster.md §3.4, issue 5 step 4):
 *   - every broker registers with the active controller and is unfenced, as DescribeCluster
 *     and `runnel cluster status` show; the controller answers a stale epoch with
 *     STALE_BROKER_EPOCH, another cluster's broker with INCONSISTENT_CLUSTER_ID, a second
 *     incarnation of a live id with BROKER_NOT_AVAILABLE; the others say NOT_CONTROLLER;
 *   - SIGSTOP a broker that is not the controller: fenced within about 2 s (session 1500 ms);
 *     SIGCONT: unfenced again;
 *   - SIGKILL the controller: the new one still lists all three brokers (registrations are
 *     in the metadata log), the killed one restarts, registers again (a new broker epoch) and
 *     is unfenced;
 *   - a single broker: `runnel cluster status` prints itself and says there is no quorum;
 *     ApiVersions does not list the registration APIs there.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
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

#include "cluster_fixture.h"
#include "harness.h"
#include "rawclient.h"



/* What one DescribeCluster said, flattened. */
typedef struct view {
    bool ok, quorum, alive_known;
    int32_t controller_id, answered_by;
    uint64_t term, commit_index;
    size_t n;
    struct {
        int32_t id;
        bool alive, fenced;
        uint64_t epoch;
        uint32_t port;
    } brokers[8];
} view_t;

static view_t describe(const char *addr)
{
    view_t v = {0};
    rn_rc_t rc;
    if (rn_rc_connect(&rc, addr) != 0)
        return v;
    Runnel__DescribeClusterRequest body = RUNNEL__DESCRIBE_CLUSTER_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_DESCRIBE_CLUSTER;
    req.describe_cluster = &body;
    Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_DESCRIBE_CLUSTER, 2000);
    if (r && r->error == 0 && r->body_case == RUNNEL__RESPONSE__BODY_DESCRIBE_CLUSTER) {
        const Runnel__DescribeClusterResponse *d = r->describe_cluster;
        v.ok = true;
        v.quorum = d->quorum;
        v.alive_known = d->alive_known;
        v.controller_id = d->controller_id;
        v.answered_by = d->answered_by;
        v.term = d->raft_term;
        v.commit_index = d->raft_commit_index;
        for (size_t i = 0; i < d->n_brokers && v.n < 8; i++, v.n++) {
            v.brokers[v.n].id = d->brokers[i]->broker_id;
            v.brokers[v.n].alive = d->brokers[i]->alive;
            v.brokers[v.n].fenced = d->brokers[i]->fenced;
            v.brokers[v.n].epoch = d->brokers[i]->broker_epoch;
            v.brokers[v.n].port = d->brokers[i]->port;
        }
    }
    rn_rc_free(r);
    rn_rc_close(&rc);
    return v;
}

/* The active controller's view (alive_known), asked of every live, unstopped broker. */
static view_t controller_view(rn_hcluster_t *c, int skip)
{
    for (int i = 0; i < RN_HC_N; i++) {
        if (i == skip || !rn_h_broker_alive(&c->b[i]))
            continue;
        view_t v = describe(c->b[i].addr);
        if (v.ok && v.alive_known)
            return v;
    }
    return (view_t){0};
}

static int find(const view_t *v, int32_t id)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->brokers[i].id == id)
            return (int)i;
    return -1;
}

/* Waits until the controller lists all RN_HC_N brokers with want_fenced for broker `which`
 * (0: none fenced), every other one alive and unfenced. Returns the view, or fails. */
static view_t wait_state(rn_hcluster_t *c, int32_t which, int skip, int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    view_t v;
    do {
        v = controller_view(c, skip);
        bool ok = v.ok && v.n == RN_HC_N;
        for (int32_t id = 1; id <= RN_HC_N && ok; id++) {
            int k = find(&v, id);
            bool want_fenced = id == which;
            ok = k >= 0 && v.brokers[k].fenced == want_fenced &&
                 v.brokers[k].alive == !want_fenced;
        }
        if (ok)
            return v;
        rn_hc_sleep_ms(20);
    } while (rn_hc_now_ms() < deadline);
    rn_hc_dump_logs(c);
    fail_msg("the controller did not show broker %d fenced and the others unfenced within %d ms "
             "(view ok=%d, %zu brokers)", which, timeout_ms, v.ok, v.n);
    return v;
}

/* `runnel -b ADDR cluster status` into out; returns its exit status. */
static int cli_status(const char *dir, const char *addr, char *out, size_t outlen)
{
    char path[700];
    snprintf(path, sizeof path, "%s/status.out", dir);
    char *argv[] = {(char *)rn_h_bin("RUNNEL_CLI_BIN"), "-b", (char *)addr, "cluster",
                    "status", NULL};
    int status = rn_h_run(argv, NULL, path, NULL, 20);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(out, 1, outlen - 1, f) : 0;
    out[len] = '\0';
    if (f)
        fclose(f);
    return status;
}

/* The CLI line of broker id (starts with the id, then its address). */
static const char *status_line(const char *out, int id, char *line, size_t linelen)
{
    char start[16];
    snprintf(start, sizeof start, "%d ", id);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, start, strlen(start)) == 0) {
            size_t n = strcspn(p, "\n");
            snprintf(line, linelen, "%.*s", (int)n, p);
            return line;
        }
    }
    return NULL;
}

/* "ALIVE FENCED" columns of broker id's line, e.g. "yes no". */
static void assert_cli_columns(const char *out, int id, const char *alive, const char *fenced)
{
    char line[256], a[8], f[8], addr[64];
    int got_id;
    if (!status_line(out, id, line, sizeof line))
        fail_msg("no line for broker %d in:\n%s", id, out);
    assert_int_equal(sscanf(line, "%d %63s %7s %7s", &got_id, addr, a, f), 4);
    if (strcmp(a, alive) != 0 || strcmp(f, fenced) != 0)
        fail_msg("broker %d: want ALIVE %s FENCED %s, got line '%s' in:\n%s", id, alive, fenced,
                 line, out);
}

/* One BrokerHeartbeat (or, with reg, a BrokerRegistration) to addr; returns the error code. */
static int call_error(const char *addr, int32_t id, uint64_t epoch, const char *cluster_id,
                      bool reg)
{
    rn_rc_t rc;
    assert_int_equal(rn_rc_connect(&rc, addr), 0);
    Runnel__BrokerHeartbeatRequest hb = RUNNEL__BROKER_HEARTBEAT_REQUEST__INIT;
    Runnel__BrokerRegistrationRequest rg = RUNNEL__BROKER_REGISTRATION_REQUEST__INIT;
    uint8_t incarnation[16] = {1, 2, 3};
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    if (reg) {
        rg.broker_id = id;
        rg.incarnation_id.data = incarnation;
        rg.incarnation_id.len = sizeof incarnation;
        rg.cluster_id = (char *)cluster_id;
        rg.host = "127.0.0.1";
        rg.port = 1;
        req.body_case = RUNNEL__REQUEST__BODY_BROKER_REGISTRATION;
        req.broker_registration = &rg;
    } else {
        hb.broker_id = id;
        hb.broker_epoch = epoch;
        req.body_case = RUNNEL__REQUEST__BODY_BROKER_HEARTBEAT;
        req.broker_heartbeat = &hb;
    }
    Runnel__Response *r = rn_rc_call(&rc, &req, reg ? RUNNEL__API_KEY__API_BROKER_REGISTRATION
                                                    : RUNNEL__API_KEY__API_BROKER_HEARTBEAT,
                                     3000);
    assert_non_null(r);
    int err = r->error;
    rn_rc_free(r);
    rn_rc_close(&rc);
    return err;
}

static void register_fence_unfence_and_survive_failover(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-members", NULL);
    int64_t t0 = rn_hc_now_ms();
    view_t v = wait_state(c, 0, -1, 15000);
    printf("# all %d brokers registered and unfenced %lld ms after start; controller %d\n", RN_HC_N,
           (long long)(rn_hc_now_ms() - t0), v.controller_id);
    int32_t ctl = v.controller_id;
    assert_true(ctl >= 1 && ctl <= RN_HC_N);
    uint64_t epochs[RN_HC_N + 1];
    for (int32_t id = 1; id <= RN_HC_N; id++) {
        epochs[id] = v.brokers[find(&v, id)].epoch;
        assert_true(epochs[id] > 0);
    }

    /* The controller checks epochs and cluster ids; the others are not the controller. */
    int other = ctl % RN_HC_N; /* index of a broker that is not the controller */
    const char *ctl_addr = c->b[ctl - 1].addr;
    assert_int_equal(call_error(ctl_addr, other + 1, epochs[other + 1] + 1000, NULL, false),
                     RUNNEL__ERROR_CODE__ERR_STALE_BROKER_EPOCH);
    assert_int_equal(call_error(ctl_addr, 42, 1, NULL, false),
                     RUNNEL__ERROR_CODE__ERR_STALE_BROKER_EPOCH);
    assert_int_equal(call_error(c->b[other].addr, other + 1, epochs[other + 1], NULL, false),
                     RUNNEL__ERROR_CODE__ERR_NOT_CONTROLLER);
    assert_int_equal(call_error(ctl_addr, 42, 0, "another-cluster", true),
                     RUNNEL__ERROR_CODE__ERR_INCONSISTENT_CLUSTER_ID);
    /* a second process claiming a live broker's id is refused while that session lives */
    assert_int_equal(call_error(ctl_addr, other + 1, 0, "", true),
                     RUNNEL__ERROR_CODE__ERR_BROKER_NOT_AVAILABLE);

    /* The CLI, asked of a broker that is not the controller, shows the controller's view. */
    char out[8192];
    assert_int_equal(cli_status(c->dir, c->b[other].addr, out, sizeof out), 0);
    char want[64];
    snprintf(want, sizeof want, "controller:  %d", ctl);
    if (!strstr(out, want) || !strstr(out, "cluster id:") || !strstr(out, "term "))
        fail_msg("cluster status output:\n%s", out);
    for (int id = 1; id <= RN_HC_N; id++)
        assert_cli_columns(out, id, "yes", "no");
    assert_non_null(strstr(out, "(controller)"));

    /* SIGSTOP that broker: fenced after the session timeout (1500 ms) plus a commit. */
    rn_h_broker_signal(&c->b[other], SIGSTOP);
    t0 = rn_hc_now_ms();
    wait_state(c, other + 1, other, 2500);
    printf("# broker %d fenced %lld ms after SIGSTOP\n", other + 1,
           (long long)(rn_hc_now_ms() - t0));
    assert_int_equal(cli_status(c->dir, c->b[ctl - 1].addr, out, sizeof out), 0);
    assert_cli_columns(out, other + 1, "no", "yes");
    assert_cli_columns(out, ctl, "yes", "no");
    rn_h_broker_signal(&c->b[other], SIGCONT);
    t0 = rn_hc_now_ms();
    v = wait_state(c, 0, -1, 3000);
    printf("# broker %d unfenced %lld ms after SIGCONT\n", other + 1,
           (long long)(rn_hc_now_ms() - t0));
    /* the same registration: the epoch did not change */
    assert_int_equal(v.brokers[find(&v, other + 1)].epoch, epochs[other + 1]);

    /* SIGKILL the controller: the new one lists every broker from the log. */
    rn_h_broker_kill(&c->b[ctl - 1]);
    t0 = rn_hc_now_ms();
    int64_t deadline = rn_hc_now_ms() + 5000;
    do {
        v = controller_view(c, ctl - 1);
        if (v.ok && v.controller_id != ctl)
            break;
        rn_hc_sleep_ms(20);
    } while (rn_hc_now_ms() < deadline);
    if (!v.ok || v.controller_id == ctl)
        rn_hc_dump_logs(c);
    assert_true(v.ok && v.controller_id != ctl);
    assert_int_equal(v.n, RN_HC_N);
    for (int32_t id = 1; id <= RN_HC_N; id++)
        assert_true(find(&v, id) >= 0);
    printf("# node %d took over in %lld ms and lists %zu brokers\n", v.controller_id,
           (long long)(rn_hc_now_ms() - t0), v.n);
    int32_t ctl2 = v.controller_id;
    /* the killed one is fenced once its fresh session expires */
    wait_state(c, ctl, ctl - 1, 4000);

    /* Restart it: a new incarnation registers (new epoch) and is unfenced. */
    assert_int_equal(rn_rc_broker_restart(&c->b[ctl - 1]), 0);
    v = wait_state(c, 0, -1, 8000);
    assert_int_equal(v.controller_id, ctl2);
    assert_true(v.brokers[find(&v, ctl)].epoch > epochs[ctl]);
    assert_int_equal(v.brokers[find(&v, other + 1)].epoch, epochs[other + 1]);
    assert_int_equal(cli_status(c->dir, c->b[ctl - 1].addr, out, sizeof out), 0);
    for (int id = 1; id <= RN_HC_N; id++)
        assert_cli_columns(out, id, "yes", "no");

    for (int i = 0; i < RN_HC_N; i++)
        assert_int_equal(rn_h_broker_stop(&c->b[i]), 0);
    rn_hc_free(c);
}

static void single_node_status(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("cluster-single");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    rn_hbroker_t b = {.node_id = 1};
    assert_int_equal(rn_rc_broker_start(&b, data, NULL), 0);
    view_t v = describe(b.addr);
    assert_true(v.ok);
    assert_false(v.quorum);
    assert_int_equal(v.controller_id, 1);
    assert_int_equal(v.n, 1);
    char out[4096];
    assert_int_equal(cli_status(dir, b.addr, out, sizeof out), 0);
    if (!strstr(out, "no controller quorum"))
        fail_msg("cluster status output:\n%s", out);
    assert_cli_columns(out, 1, "yes", "no");

    /* Registration is not served without a quorum: UNSUPPORTED_VERSION, not listed. */
    rn_rc_t rc;
    assert_int_equal(rn_rc_connect(&rc, b.addr), 0);
    Runnel__BrokerHeartbeatRequest hb = RUNNEL__BROKER_HEARTBEAT_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_BROKER_HEARTBEAT;
    req.broker_heartbeat = &hb;
    Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_BROKER_HEARTBEAT, 2000);
    assert_non_null(r);
    assert_int_equal(r->error, RUNNEL__ERROR_CODE__ERR_UNSUPPORTED_VERSION);
    rn_rc_free(r);
    rn_rc_close(&rc);

    /* Nothing listens: the CLI fails with status 1 and says so. */
    assert_int_equal(rn_h_broker_stop(&b), 0);
    assert_int_equal(cli_status(dir, b.addr, out, sizeof out), 1);
    rn_h_broker_release(&b);
    rn_h_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_node_status),
        cmocka_unit_test(register_fence_unfence_and_survive_failover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
