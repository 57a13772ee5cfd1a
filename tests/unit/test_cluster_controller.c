/*
 * test_cluster_controller.c - the controller (broker/cluster/controller.c) on libraft's
 * deterministic fixture (raft/fixture.h): three voters in memory, virtual time, no sockets.
 *
 * The controllers are attached to the fixture's raft instances (rn_ctl_new_detached +
 * rn_ctl_attach), so these tests drive the real FSM adapter, proposal path, leadership poll and
 * takeover barrier; only raft_uv (disk and TCP) is the fixture's. The state machine is a test
 * one: a byte log of every applied entry with its index.
 *
 * The last tests run rn_ctl_start itself, one voter on a real loop and a temporary directory:
 * entries of every length survive a stop and a restart (libraft 0.15 needs 8-byte multiples on
 * disk, which rn_ctl_propose's framing provides), snapshots are restored, and the
 * meta.properties guard. Three voters over TCP: tests/integration/test_cluster_controller.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <raft.h>
#include <raft/fixture.h>

#include "controller.h"
#include "testutil.h"

#define N 3
#define MAX_ENTRIES 512

/* The test FSM: every applied entry (index, bytes) in order. */
struct logfsm {
    uint64_t index[MAX_ENTRIES];
    char value[MAX_ENTRIES][16];
    size_t n;
    unsigned snapshots, restores;
    uint64_t result_slot;
};

static rn_err_t log_apply(void *ctx, const void *data, size_t len, uint64_t index,
                          void **result)
{
    struct logfsm *m = ctx;
    if (m->n == MAX_ENTRIES || len >= sizeof m->value[0])
        return RN_ERR_NOMEM;
    m->index[m->n] = index;
    memcpy(m->value[m->n], data, len);
    m->value[m->n][len] = '\0';
    m->n++;
    m->result_slot = m->n;
    *result = &m->result_slot;
    return RN_OK;
}

/* Snapshot: n, then the entries as they are (fixed size). */
static rn_err_t log_snapshot(void *ctx, rn_buf_t *out)
{
    struct logfsm *m = ctx;
    m->snapshots++;
    if (rn_buf_append(out, &m->n, sizeof m->n) != RN_OK ||
        rn_buf_append(out, m->index, m->n * sizeof m->index[0]) != RN_OK ||
        rn_buf_append(out, m->value, m->n * sizeof m->value[0]) != RN_OK)
        return RN_ERR_NOMEM;
    return RN_OK;
}

static rn_err_t log_restore(void *ctx, const void *data, size_t len)
{
    struct logfsm *m = ctx;
    size_t n;
    if (len < sizeof n)
        return RN_ERR_MALFORMED;
    memcpy(&n, data, sizeof n);
    if (n > MAX_ENTRIES || len != sizeof n + n * (sizeof m->index[0] + sizeof m->value[0]))
        return RN_ERR_MALFORMED;
    const uint8_t *p = (const uint8_t *)data + sizeof n;
    memcpy(m->index, p, n * sizeof m->index[0]);
    memcpy(m->value, p + n * sizeof m->index[0], n * sizeof m->value[0]);
    m->n = n;
    m->restores++;
    return RN_OK;
}

struct events {
    uint32_t leader;
    uint64_t term;
    unsigned leader_calls, activations, deactivations;
};

static void on_leader(void *ctx, uint32_t leader_id, uint64_t term)
{
    struct events *e = ctx;
    e->leader = leader_id;
    e->term = term;
    e->leader_calls++;
}

static void on_active(void *ctx, bool active)
{
    struct events *e = ctx;
    if (active)
        e->activations++;
    else
        e->deactivations++;
}

struct cluster {
    struct raft_fixture f;
    rn_ctl_t *ctl[N];
    struct logfsm fsm[N];
    struct events ev[N];
};

/* One proposal's outcome. */
struct outcome {
    bool called;
    rn_err_t status;
    uint64_t index;
    uint64_t result;
};

static void on_committed(void *arg, rn_err_t status, uint64_t index, void *result)
{
    struct outcome *o = arg;
    assert_false(o->called);
    o->called = true;
    o->status = status;
    o->index = index;
    o->result = result ? *(uint64_t *)result : 0;
}

static int setup(void **state)
{
    struct cluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N; i++) {
        rn_ctl_fsm_t fsm = {&c->fsm[i], log_apply, log_snapshot, log_restore};
        rn_ctl_events_t ev = {&c->ev[i], on_leader, on_active};
        struct raft_fsm *raft_fsm = NULL;
        c->ctl[i] = rn_ctl_new_detached(&fsm, &ev, &raft_fsm);
        assert_non_null(c->ctl[i]);
        assert_int_equal(raft_fixture_grow(&c->f, raft_fsm), 0);
        struct raft *r = raft_fixture_get(&c->f, i);
        rn_ctl_attach(c->ctl[i], r);
        raft_set_pre_vote(r, true);
        /* Small, so that the snapshot tests see snapshots and InstallSnapshot. */
        raft_set_snapshot_threshold(r, 16);
        raft_set_snapshot_trailing(r, 4);
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct cluster *c = *state;
    /* Closing the fixture fails pending requests: the controllers must still exist then. */
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < N; i++)
        rn_ctl_free(c->ctl[i]);
    free(c);
    return 0;
}

/* ---- stepping: every fixture step is followed by a poll of every controller ---- */

typedef bool (*cond_fn)(struct cluster *c, void *arg);

struct until {
    struct cluster *c;
    cond_fn cond;
    void *arg;
};

static bool poll_and_check(struct raft_fixture *f, void *arg)
{
    struct until *u = arg;
    (void)f;
    for (unsigned i = 0; i < N; i++)
        if (raft_fixture_alive(&u->c->f, i))
            rn_ctl_poll(u->c->ctl[i]);
    return u->cond(u->c, u->arg);
}

static bool step_until(struct cluster *c, cond_fn cond, void *arg, unsigned max_ms)
{
    struct until u = {c, cond, arg};
    if (poll_and_check(&c->f, &u))
        return true;
    return raft_fixture_step_until(&c->f, poll_and_check, &u, max_ms);
}

/* The index of the controller every live one names, which is active; N when there is none. */
static unsigned agreed_active(struct cluster *c)
{
    unsigned active = N;
    for (unsigned i = 0; i < N; i++)
        if (raft_fixture_alive(&c->f, i) && rn_ctl_is_active(c->ctl[i]))
            active = i;
    if (active == N)
        return N;
    for (unsigned i = 0; i < N; i++)
        if (raft_fixture_alive(&c->f, i) &&
            rn_ctl_controller_id(c->ctl[i]) != (int32_t)(active + 1))
            return N;
    return active;
}

static bool has_agreed_active(struct cluster *c, void *arg)
{
    unsigned not_this = arg ? *(unsigned *)arg : N;
    unsigned a = agreed_active(c);
    return a < N && a != not_this;
}

static unsigned wait_active(struct cluster *c, unsigned not_this)
{
    assert_true(step_until(c, has_agreed_active, &not_this, 10000));
    return agreed_active(c);
}

struct applied_arg {
    unsigned i;      /* N: every live server */
    size_t n;
};

static bool fsm_has(struct cluster *c, void *arg)
{
    struct applied_arg *a = arg;
    for (unsigned i = 0; i < N; i++)
        if ((a->i == N ? raft_fixture_alive(&c->f, i) : i == a->i) && c->fsm[i].n < a->n)
            return false;
    return true;
}

static bool outcome_called(struct cluster *c, void *arg)
{
    (void)c;
    return ((struct outcome *)arg)->called;
}

static void propose_range(struct cluster *c, unsigned leader, int from, int to,
                          struct outcome *out)
{
    for (int v = from; v <= to; v++) {
        char text[16];
        int len = snprintf(text, sizeof text, "e%d", v);
        assert_int_equal(rn_ctl_propose(c->ctl[leader], text, (size_t)len, on_committed,
                                        &out[v]), RN_OK);
    }
}

/* Every FSM that has n entries holds e1..en, the same way, at increasing indexes. */
static void check_fsms(struct cluster *c, size_t n)
{
    for (unsigned i = 0; i < N; i++) {
        if (c->fsm[i].n < n)
            continue;
        for (size_t k = 0; k < n; k++) {
            char want[32];
            snprintf(want, sizeof want, "e%zu", k + 1);
            assert_string_equal(c->fsm[i].value[k], want);
            assert_int_equal(c->fsm[i].index[k], c->fsm[0].n >= n ? c->fsm[0].index[k]
                                                                  : c->fsm[i].index[k]);
            if (k)
                assert_true(c->fsm[i].index[k] > c->fsm[i].index[k - 1]);
        }
    }
}

/* ---------------------------------------------------------------- tests ---- */

static void elects_one_active_controller(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_active(c, N);
    assert_int_equal(raft_state(raft_fixture_get(&c->f, leader)), RAFT_LEADER);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(c->ev[i].leader, leader + 1);
        assert_int_equal(c->ev[i].term, raft_fixture_get(&c->f, leader)->current_term);
        assert_int_equal(c->ev[i].activations, i == leader ? 1 : 0);
        rn_ctl_status_t st;
        rn_ctl_status(c->ctl[i], &st);
        assert_int_equal(st.leader_id, leader + 1);
        assert_int_equal(st.active, i == leader);
    }
    /* The barrier applied, so the active controller's FSM saw everything before it. */
    rn_ctl_status_t st;
    rn_ctl_status(c->ctl[leader], &st);
    assert_true(st.last_applied >= st.commit_index - 1);
}

static void proposals_commit_in_order_everywhere(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_active(c, N);
    struct outcome out[21] = {0};
    propose_range(c, leader, 1, 20, out);
    struct applied_arg all = {N, 20};
    assert_true(step_until(c, fsm_has, &all, 5000));
    assert_true(step_until(c, outcome_called, &out[20], 5000));
    check_fsms(c, 20);
    for (int v = 1; v <= 20; v++) {
        assert_true(out[v].called);
        assert_int_equal(out[v].status, RN_OK);
        /* cb's index is the one the FSM was given, and the FSM's result came through */
        assert_int_equal(out[v].index, c->fsm[leader].index[v - 1]);
        assert_int_equal(out[v].result, (uint64_t)v);
    }
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(c->fsm[i].n, 20);
}

static void proposal_on_follower_is_refused(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_active(c, N);
    unsigned follower = (leader + 1) % N;
    struct outcome o = {0};
    assert_int_equal(rn_ctl_propose(c->ctl[follower], "x", 1, on_committed, &o),
                     RN_ERR_NOT_CONTROLLER);
    assert_true(rn_err_retriable(RN_ERR_NOT_CONTROLLER));
    raft_fixture_step_until_elapsed(&c->f, 500);
    assert_false(o.called);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(c->fsm[i].n, 0);
}

static void new_controller_after_leader_dies(void **state)
{
    struct cluster *c = *state;
    unsigned old = wait_active(c, N);
    struct outcome out[41] = {0};
    propose_range(c, old, 1, 10, out);
    struct applied_arg all = {N, 10};
    assert_true(step_until(c, fsm_has, &all, 5000));

    raft_fixture_kill(&c->f, old);
    unsigned leader = wait_active(c, old);
    assert_true(leader != old);
    for (unsigned i = 0; i < N; i++)
        if (i != old)
            assert_int_equal(rn_ctl_controller_id(c->ctl[i]), (int32_t)leader + 1);
    /* the dead one's proposals all committed before the kill, and later ones go on */
    propose_range(c, leader, 11, 20, out);
    all.n = 20;
    assert_true(step_until(c, fsm_has, &all, 5000));
    check_fsms(c, 20);

    /* the old leader comes back, catches up, and every FSM is the same */
    raft_fixture_revive(&c->f, old);
    struct applied_arg back = {old, 20};
    assert_true(step_until(c, fsm_has, &back, 10000));
    check_fsms(c, 20);
    assert_int_equal(c->fsm[old].n, 20);
    assert_true(c->ev[leader].activations >= 1);
}

static bool leader_stepped_down(struct cluster *c, void *arg)
{
    unsigned i = *(unsigned *)arg;
    return !rn_ctl_is_active(c->ctl[i]) &&
           raft_state(raft_fixture_get(&c->f, i)) != RAFT_LEADER;
}

static void leadership_loss_fails_pending_proposals(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_active(c, N);
    for (unsigned i = 0; i < N; i++) {
        if (i == leader)
            continue;
        raft_fixture_saturate(&c->f, leader, i);
        raft_fixture_saturate(&c->f, i, leader);
    }
    struct outcome o = {0};
    assert_int_equal(rn_ctl_propose(c->ctl[leader], "lost", 4, on_committed, &o), RN_OK);
    assert_true(step_until(c, leader_stepped_down, &leader, 10000));
    assert_true(step_until(c, outcome_called, &o, 1000));
    assert_int_equal(o.status, RN_ERR_NOT_CONTROLLER);
    assert_int_equal(c->ev[leader].deactivations, 1);
    /* the majority side elects another controller, which the healed one then follows */
    for (unsigned i = 0; i < N; i++)
        for (unsigned j = 0; j < N; j++)
            if (i != j)
                raft_fixture_desaturate(&c->f, i, j);
    unsigned other = wait_active(c, leader);
    assert_true(other != leader);
    assert_int_equal(rn_ctl_controller_id(c->ctl[leader]), (int32_t)other + 1);
}

static void snapshot_and_restore_give_the_same_state(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_active(c, N);
    unsigned lagging = (leader + 1) % N;
    struct outcome out[121] = {0};
    propose_range(c, leader, 1, 10, out);
    struct applied_arg all = {N, 10};
    assert_true(step_until(c, fsm_has, &all, 5000));

    /* One follower misses 100 entries; the others snapshot (threshold 16) and drop the log
     * below it (4 trailing), so it can only catch up through InstallSnapshot -> restore. */
    raft_fixture_kill(&c->f, lagging);
    for (int v = 11; v <= 110; v += 10) {
        propose_range(c, leader, v, v + 9, out);
        all.n = (size_t)v + 9;
        assert_true(step_until(c, fsm_has, &all, 5000));
    }
    assert_true(c->fsm[leader].snapshots > 0);
    assert_true(raft_fixture_get(&c->f, leader)->log.snapshot.last_index > 20);
    raft_fixture_revive(&c->f, lagging);
    struct applied_arg back = {lagging, 110};
    assert_true(step_until(c, fsm_has, &back, 20000));
    assert_true(c->fsm[lagging].restores > 0);
    check_fsms(c, 110);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(c->fsm[i].n, 110);
        assert_memory_equal(c->fsm[i].value, c->fsm[leader].value, sizeof c->fsm[i].value);
        assert_memory_equal(c->fsm[i].index, c->fsm[leader].index, sizeof c->fsm[i].index);
    }
    /* and proposals still commit on all three after the restore */
    propose_range(c, leader, 111, 120, out);
    all.n = 120;
    assert_true(step_until(c, fsm_has, &all, 5000));
    check_fsms(c, 120);
}

/* The FSM adapter on its own: snapshot bytes restored into a fresh FSM are the same state. */
static void snapshot_bytes_restore_exactly(void **state)
{
    (void)state;
    struct logfsm *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    void *res;
    for (int i = 1; i <= 5; i++) {
        char t[8];
        int n = snprintf(t, sizeof t, "e%d", i);
        assert_int_equal(log_apply(a, t, (size_t)n, (uint64_t)i + 2, &res), RN_OK);
    }
    rn_buf_t snap = RN_BUF_INIT;
    assert_int_equal(log_snapshot(a, &snap), RN_OK);
    assert_int_equal(log_restore(b, snap.data, snap.len), RN_OK);
    assert_int_equal(b->n, 5);
    assert_memory_equal(a->value, b->value, sizeof a->value);
    assert_memory_equal(a->index, b->index, sizeof a->index);
    rn_buf_free(&snap);
    free(a);
    free(b);
}

static void parses_voters(void **state)
{
    (void)state;
    rn_ctl_voter_t v[RN_CTL_MAX_VOTERS];
    size_t n = 0;
    char err[512];
    assert_int_equal(rn_ctl_parse_voters("1@127.0.0.1:9093,2@127.0.0.1:9094,3@10.0.0.3:9095", v,
                                         RN_CTL_MAX_VOTERS, &n, err, sizeof err), RN_OK);
    assert_int_equal(n, 3);
    assert_int_equal(v[2].id, 3);
    assert_string_equal(v[2].address, "10.0.0.3:9095");
    const char *bad[] = {"", "1@127.0.0.1:9093,", "0@127.0.0.1:9093", "x@127.0.0.1:1",
                         "1@localhost:9093", "1@127.0.0.1:0", "1@127.0.0.1", "1127.0.0.1:9093",
                         "1@127.0.0.1:9093,1@127.0.0.1:9094", "1@127.0.0.1:9093,2@127.0.0.1:9093",
                         "1@[::1]:9093"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(rn_ctl_parse_voters(bad[i], v, RN_CTL_MAX_VOTERS, &n, err, sizeof err),
                         RN_ERR_BAD_CONFIG);
        assert_non_null(strstr(err, "controller.quorum.voters"));
    }
    assert_int_equal(rn_ctl_check_address("127.0.0.1:9093"), RN_OK);
    assert_int_equal(rn_ctl_check_address("127.0.0.1:70000"), RN_ERR_BAD_CONFIG);
}

/* ---------------------------------------- one real voter on raft_uv and a loop ---- */

static uint16_t free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

struct solo {
    uv_loop_t loop;
    char *dir;
    char listen[32], voters[48];
    struct logfsm fsm;
    struct events ev;
    rn_ctl_t *ctl;
    bool stopped;
};

static rn_err_t solo_start(struct solo *s, uint32_t node_id, char *err, size_t errlen)
{
    memset(&s->fsm, 0, sizeof s->fsm);
    rn_ctl_opts_t o = {
        .node_id = node_id,
        .listen = s->listen,
        .voters = s->voters,
        .data_dir = s->dir,
        .election_timeout_ms = 100,
        .heartbeat_ms = 20,
        .snapshot_threshold = 8,
        .fsm = {&s->fsm, log_apply, log_snapshot, log_restore},
        .events = {&s->ev, on_leader, on_active},
    };
    s->stopped = false;
    return rn_ctl_start(&s->loop, &o, &s->ctl, err, errlen);
}

/* Runs the loop until *flag is true (at most 10 s). */
static void run_until(struct solo *s, const bool *flag)
{
    uint64_t deadline = uv_hrtime() + 10000000000ULL;
    while (!*flag && uv_hrtime() < deadline) {
        uv_update_time(&s->loop);
        uv_run(&s->loop, UV_RUN_ONCE);
    }
    assert_true(*flag);
}

static void on_solo_stopped(void *arg)
{
    ((struct solo *)arg)->stopped = true;
}

static void solo_stop(struct solo *s)
{
    rn_ctl_stop(s->ctl, on_solo_stopped, s);
    run_until(s, &s->stopped);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* raft_uv's handles finish closing */
    rn_ctl_free(s->ctl);
    s->ctl = NULL;
}

static void wait_solo_active(struct solo *s)
{
    /* the 50 ms poll timer reports it; run the loop until then */
    uint64_t deadline = uv_hrtime() + 10000000000ULL;
    while (!rn_ctl_is_active(s->ctl) && uv_hrtime() < deadline)
        uv_run(&s->loop, UV_RUN_ONCE);
    assert_true(rn_ctl_is_active(s->ctl));
    assert_int_equal(rn_ctl_controller_id(s->ctl), 1);
}

static int solo_setup(void **state)
{
    struct solo *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    s->dir = rn_t_tmpdir("ctl-solo");
    uint16_t port = free_port();
    snprintf(s->listen, sizeof s->listen, "127.0.0.1:%u", port);
    snprintf(s->voters, sizeof s->voters, "1@127.0.0.1:%u", port);
    *state = s;
    return 0;
}

static int solo_teardown(void **state)
{
    struct solo *s = *state;
    if (s->ctl)
        solo_stop(s);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    rn_t_rmtree(s->dir);
    free(s->dir);
    free(s);
    return 0;
}

/* Payload k (1-based) is k bytes long: every length mod 8 is there. */
static int payload(int k, char *out)
{
    for (int i = 0; i < k; i++)
        out[i] = (char)('a' + (k + i) % 26);
    return k;
}

static void entries_of_any_length_survive_a_restart(void **state)
{
    struct solo *s = *state;
    char err[1024] = "";
    assert_int_equal(solo_start(s, 1, err, sizeof err), RN_OK);
    wait_solo_active(s);
    struct outcome out[14] = {0};
    for (int k = 1; k <= 13; k++) {
        char text[16];
        int n = payload(k, text);
        assert_int_equal(rn_ctl_propose(s->ctl, text, (size_t)n, on_committed, &out[k]), RN_OK);
    }
    run_until(s, &out[13].called);
    for (int k = 1; k <= 13; k++)
        assert_int_equal(out[k].status, RN_OK);
    assert_int_equal(s->fsm.n, 13);
    struct logfsm before = s->fsm;
    /* threshold 8: libraft took a snapshot; its write finishes in the thread pool */
    rn_ctl_status_t st;
    uint64_t deadline = uv_hrtime() + 10000000000ULL;
    do {
        uv_run(&s->loop, UV_RUN_NOWAIT);
        rn_ctl_status(s->ctl, &st);
    } while (st.snapshot_index == 0 && uv_hrtime() < deadline);
    assert_true(st.snapshot_index > 0);
    assert_true(s->fsm.snapshots > 0);
    solo_stop(s);

    /* Start again on the same directory: not bootstrapped again; snapshot + log replayed. */
    assert_int_equal(solo_start(s, 1, err, sizeof err), RN_OK);
    assert_true(s->fsm.restores == 1);
    wait_solo_active(s);
    assert_int_equal(s->fsm.n, 13);
    for (int k = 1; k <= 13; k++) {
        char text[16] = "";
        payload(k, text);
        assert_string_equal(s->fsm.value[k - 1], text);
        assert_int_equal(s->fsm.index[k - 1], before.index[k - 1]);
    }
    /* a proposal after the restart commits too, at the next index */
    struct outcome more = {0};
    assert_int_equal(rn_ctl_propose(s->ctl, "more", 4, on_committed, &more), RN_OK);
    run_until(s, &more.called);
    assert_int_equal(more.status, RN_OK);
    assert_true(more.index > before.index[12]);
    /* stopping fails nothing that committed; a second stop does nothing */
    solo_stop(s);
}

static void lost_raft_state_is_refused(void **state)
{
    struct solo *s = *state;
    char err[1024] = "";
    assert_int_equal(solo_start(s, 1, err, sizeof err), RN_OK);
    wait_solo_active(s);
    solo_stop(s);

    /* another node id on this data directory */
    char voters2[48];
    snprintf(voters2, sizeof voters2, "2@%s", s->listen);
    char saved[48];
    memcpy(saved, s->voters, sizeof saved);
    memcpy(s->voters, voters2, sizeof voters2);
    err[0] = '\0';
    assert_int_equal(solo_start(s, 2, err, sizeof err), RN_ERR_STATE);
    assert_non_null(strstr(err, "node.id=1"));
    memcpy(s->voters, saved, sizeof saved);

    /* the raft directory is gone but meta.properties says this voter bootstrapped */
    char raft_dir[600];
    snprintf(raft_dir, sizeof raft_dir, "%s/__cluster_metadata", s->dir);
    assert_int_equal(rn_t_rmtree(raft_dir), 0);
    err[0] = '\0';
    assert_int_equal(solo_start(s, 1, err, sizeof err), RN_ERR_STATE);
    assert_non_null(strstr(err, "raft_recover"));
    assert_null(s->ctl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(elects_one_active_controller, setup, teardown),
        cmocka_unit_test_setup_teardown(proposals_commit_in_order_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(proposal_on_follower_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(new_controller_after_leader_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(leadership_loss_fails_pending_proposals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(snapshot_and_restore_give_the_same_state, setup,
                                        teardown),
        cmocka_unit_test(snapshot_bytes_restore_exactly),
        cmocka_unit_test(parses_voters),
        cmocka_unit_test_setup_teardown(entries_of_any_length_survive_a_restart, solo_setup,
                                        solo_teardown),
        cmocka_unit_test_setup_teardown(lost_raft_state_is_refused, solo_setup, solo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
