/*
 * raft_spike.c - issue 5 spike: Debian's libraft (canonical/raft 0.15) running a three-voter
 * quorum on libuv, the way broker/cluster/controller.c would use it. Not product code: it
 * answers "does libraft do what docs/cluster.md assumes?" with a run you can repeat.
 *
 *   raft-spike [--mode inproc|procs|both] [--election-ms N] [--heartbeat-ms N] [--keep]
 *
 *   inproc  three raft instances on ONE uv loop in this process, next to the spike's own
 *           timer (the broker's case: the controller shares the broker's loop). The leader
 *           is stopped with raft_close (no leadership transfer: to its peers it just goes
 *           silent, as after a crash).
 *   procs   three child processes (this binary, --node), one raft instance each; the parent
 *           SIGKILLs the leader, the real crash.
 *   both    (default) inproc, then procs.
 *
 * Script, in both modes:
 *   1. pick three free loopback ports, bootstrap the same 3-voter configuration in three
 *      data directories under a fresh temporary directory ($TMPDIR or /tmp)
 *   2. wait for a leader that every node agrees on; apply 10 commands (counter += 1..10)
 *      on it; wait until every node's FSM reads 55
 *   3. kill the leader; time the election of the next one and its first commit
 *   4. apply 5 more (11..15) on the new leader: the survivors read 120, so the entries
 *      committed under the old leader survived the change
 *   5. restart the old leader on its data directory (raft_bootstrap answers CANTBOOTSTRAP):
 *      it restores its latest snapshot, reloads its log, catches up to 120, and - thanks to
 *      pre-vote - does not depose the current leader (the term stays the same)
 *   6. print every node's term, indexes and counter; exit 0 when all agree, 1 otherwise.
 *
 * Snapshots: threshold 8 entries, 4 trailing, so each node snapshots during the run and the
 * restart goes through fsm->restore.
 *
 * Timing: election timeout 500 ms and heartbeat 100 ms unless given. libraft ticks every
 * heartbeat timeout (raft_start passes it to io->start), so election timeouts are checked at that
 * granularity: the heartbeat also sets how finely the randomised timeouts spread.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define N_NODES 3
#define TICK_MS 20           /* the script's step and the children's status interval */
#define PHASE_TIMEOUT_MS 20000
#define FIRST_TOTAL 55ULL    /* 1 + ... + 10 */
#define FINAL_TOTAL 120ULL   /* ... + 11 + ... + 15 */

typedef unsigned long long ull;

static uint64_t g_t0;     /* uv_hrtime() at start; children get the parent's */
static unsigned g_election_ms = 500;  /* raft randomises each follower's timeout in [1x, 2x] */
static unsigned g_heartbeat_ms = 100;
static bool g_child;      /* in a child, lines go to the parent prefixed "L " */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("%s[%7.3fs] %s\n", g_child ? "L " : "", (double)(uv_hrtime() - g_t0) / 1e9, msg);
    fflush(stdout);
}

static double ms_since(uint64_t t) { return (double)(uv_hrtime() - t) / 1e6; }

static const char *state_name(int s)
{
    switch (s) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "unavailable";
    }
}

/* ------------------------------------------------------------------ one node ---- */

/*
 * One raft server: libuv TCP transport + libuv disk I/O (raft_uv_*) + a counter FSM.
 * Lifecycle: node_start (init, bootstrap-or-load, start) ... node_close (raft_close, whose
 * callback releases the raft_uv objects). The same struct can be started again afterwards.
 */
struct node {
    unsigned id;
    char dir[PATH_MAX];
    char address[32];               /* "127.0.0.1:PORT": libraft 0.15 takes IPv4 only */
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    ull counter;                    /* the FSM's whole state */
    unsigned snapshots, restores;
    bool up;                        /* started and not yet closing */
    bool closed;                    /* raft_close's callback has run (or never started) */
};

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct node *n = fsm->data;
    uint64_t v;
    if (buf->len != sizeof v)
        return RAFT_MALFORMED;
    memcpy(&v, buf->base, sizeof v);
    n->counter += v;
    *result = &n->counter;
    return 0;
}

/* Version 1 FSM: raft owns bufs (and frees them with raft_free) once this returns 0. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *n = fsm->data;
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL)
        return RAFT_NOMEM;
    (*bufs)[0].len = sizeof n->counter;
    (*bufs)[0].base = raft_malloc(sizeof n->counter);
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, &n->counter, sizeof n->counter);
    *n_bufs = 1;
    n->snapshots++;
    return 0;
}

/* The FSM takes ownership of buf->base on success. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct node *n = fsm->data;
    if (buf->len != sizeof n->counter)
        return RAFT_MALFORMED;
    memcpy(&n->counter, buf->base, sizeof n->counter);
    raft_free(buf->base);
    n->restores++;
    return 0;
}

/* Failures after raft_init would need the async raft_close to unwind; a spike just exits. */
static void die(const struct node *n, const char *what, int rv, const char *msg)
{
    say("node %u: %s failed: %s (%s)", n->id, what, raft_strerror(rv), msg);
    exit(1);
}

static void node_start(struct node *n, uv_loop_t *loop, char addrs[N_NODES][32])
{
    struct raft_configuration conf;
    int rv;

    memset(&n->transport, 0, sizeof n->transport);
    memset(&n->io, 0, sizeof n->io);
    memset(&n->raft, 0, sizeof n->raft);
    n->counter = 0;
    n->fsm = (struct raft_fsm){.version = 1, .data = n, .apply = fsm_apply,
                               .snapshot = fsm_snapshot, .restore = fsm_restore};

    if ((rv = raft_uv_tcp_init(&n->transport, loop)) != 0)
        die(n, "raft_uv_tcp_init", rv, n->transport.errmsg);
    if ((rv = raft_uv_init(&n->io, loop, n->dir, &n->transport)) != 0)
        die(n, "raft_uv_init", rv, n->io.errmsg);
    raft_uv_set_connect_retry_delay(&n->io, 100);  /* default 1000 ms */
    if ((rv = raft_init(&n->raft, &n->io, &n->fsm, n->id, n->address)) != 0)
        die(n, "raft_init", rv, raft_errmsg(&n->raft));
    n->raft.data = n;

    raft_configuration_init(&conf);
    for (unsigned i = 0; i < N_NODES; i++)
        if ((rv = raft_configuration_add(&conf, i + 1, addrs[i], RAFT_VOTER)) != 0)
            die(n, "raft_configuration_add", rv, "");
    rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == 0)
        say("node %u: raft_bootstrap: 3 voters written to %s", n->id, n->dir);
    else if (rv == RAFT_CANTBOOTSTRAP)
        say("node %u: raft_bootstrap: %s -> starting from the state on disk", n->id,
            raft_strerror(rv));
    else
        die(n, "raft_bootstrap", rv, raft_errmsg(&n->raft));

    raft_set_election_timeout(&n->raft, g_election_ms);
    raft_set_heartbeat_timeout(&n->raft, g_heartbeat_ms);
    raft_set_snapshot_threshold(&n->raft, 8);
    raft_set_snapshot_trailing(&n->raft, 4);
    raft_set_pre_vote(&n->raft, true);

    if ((rv = raft_start(&n->raft)) != 0)
        die(n, "raft_start", rv, raft_errmsg(&n->raft));
    n->up = true;
    n->closed = false;
    say("node %u: raft_start on %s: term %llu, last index %llu, snapshot index %llu, "
        "counter %llu (%u snapshot restore%s)", n->id, n->address, n->raft.current_term,
        raft_last_index(&n->raft), n->raft.log.snapshot.last_index, n->counter, n->restores,
        n->restores == 1 ? "" : "s");
}

static void node_closed_cb(struct raft *r)
{
    struct node *n = r->data;
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
    n->closed = true;
}

static void node_close(struct node *n)
{
    if (!n->up)
        return;
    n->up = false;
    raft_close(&n->raft, node_closed_cb);
}

struct apply_req {
    struct raft_apply req;
    struct node *n;
    uint64_t value;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct apply_req *a = req->data;
    if (status == 0)
        say("node %u: committed +%llu at index %llu -> counter %llu", a->n->id,
            (ull)a->value, (ull)req->index, *(ull *)result);
    else
        say("node %u: +%llu failed: %s", a->n->id, (ull)a->value, raft_strerror(status));
    free(a);
}

/* Proposes counter += value; RAFT_NOTLEADER unless this node leads. */
static int node_apply(struct node *n, uint64_t value)
{
    struct raft_buffer buf;
    struct apply_req *a;
    int rv;

    if (!n->up || raft_state(&n->raft) != RAFT_LEADER)
        return RAFT_NOTLEADER;
    a = calloc(1, sizeof *a);
    buf.len = sizeof value;
    buf.base = raft_malloc(buf.len);
    if (a == NULL || buf.base == NULL) {
        free(a);
        raft_free(buf.base);
        return RAFT_NOMEM;
    }
    memcpy(buf.base, &value, sizeof value);
    a->req.data = a;
    a->n = n;
    a->value = value;
    rv = raft_apply(&n->raft, &a->req, &buf, 1, apply_cb);
    if (rv != 0) {                  /* ownership of buf.base passes only on success */
        raft_free(buf.base);
        free(a);
    }
    return rv;
}

/* ---------------------------------------------------------------- the cluster ---- */

/* What the script sees of a node, whether it runs here or in a child. */
struct view {
    bool alive;
    int state;
    ull term, leader, last_index, last_applied, counter, snapshot_index;
};

static void node_view(struct node *n, struct view *v)
{
    raft_id leader = 0;
    const char *addr = NULL;
    memset(v, 0, sizeof *v);
    v->alive = n->up;
    if (!n->up)
        return;
    raft_leader(&n->raft, &leader, &addr);
    v->state = raft_state(&n->raft);
    v->term = n->raft.current_term;
    v->leader = leader;
    v->last_index = raft_last_index(&n->raft);
    v->last_applied = raft_last_applied(&n->raft);
    v->counter = n->counter;
    v->snapshot_index = n->raft.log.snapshot.last_index;
}

struct cluster;
struct cluster_ops {
    void (*refresh)(struct cluster *c);
    int (*apply)(struct cluster *c, unsigned i, uint64_t value);
    void (*kill)(struct cluster *c, unsigned i);
    bool (*restart)(struct cluster *c, unsigned i);   /* false: not ready yet, ask again */
    void (*shutdown)(struct cluster *c);
    bool (*stopped)(struct cluster *c);
};

enum phase {
    WAIT_LEADER, WAIT_FIRST_TOTAL, KILL_LEADER, WAIT_NEW_LEADER, WAIT_FINAL_TOTAL,
    RESTART_OLD, WAIT_CATCH_UP, SHUTDOWN, DONE
};

struct cluster {
    const struct cluster_ops *ops;
    uv_loop_t *loop;
    uv_timer_t tick;
    char root[512];                 /* the temporary directory holding node1..3 */
    char addrs[N_NODES][32];
    struct view v[N_NODES];
    enum phase phase;
    uint64_t phase_start;
    uint64_t kill_time;
    unsigned leader, old_leader;
    ull term_before_restart;
    bool new_leader_seen, first_commit_seen;
    int failed;
};

/* A leader every live node names; N_NODES when there is none yet. */
static unsigned stable_leader(const struct cluster *c)
{
    for (unsigned i = 0; i < N_NODES; i++) {
        if (!c->v[i].alive || c->v[i].state != RAFT_LEADER)
            continue;
        bool agreed = true;
        for (unsigned j = 0; j < N_NODES; j++)
            if (c->v[j].alive && c->v[j].leader != i + 1)
                agreed = false;
        if (agreed)
            return i;
    }
    return N_NODES;
}

static bool live_nodes_at(const struct cluster *c, ull total)
{
    for (unsigned i = 0; i < N_NODES; i++)
        if (c->v[i].alive && c->v[i].counter != total)
            return false;
    return true;
}

static void print_table(const struct cluster *c, const char *title)
{
    say("%s", title);
    say("  node  state        term  last_index  applied  snapshot_at  counter");
    for (unsigned i = 0; i < N_NODES; i++) {
        const struct view *v = &c->v[i];
        if (!v->alive)
            say("  %4u  down", i + 1);
        else
            say("  %4u  %-11s %5llu  %10llu  %7llu  %11llu  %7llu", i + 1,
                state_name(v->state), v->term, v->last_index, v->last_applied,
                v->snapshot_index, v->counter);
    }
}

static void enter(struct cluster *c, enum phase p)
{
    c->phase = p;
    c->phase_start = uv_hrtime();
}

static void apply_range(struct cluster *c, uint64_t from, uint64_t to)
{
    for (uint64_t v = from; v <= to; v++) {
        int rv = c->ops->apply(c, c->leader, v);
        if (rv != 0) {
            say("apply +%llu on node %u: %s", (ull)v, c->leader + 1, raft_strerror(rv));
            c->failed = 1;
        }
    }
}

static void fail(struct cluster *c, const char *why)
{
    say("FAILED: %s", why);
    print_table(c, "state at the failure:");
    c->failed = 1;
    c->ops->shutdown(c);
    enter(c, SHUTDOWN);
}

/* The script, one step per tick (TICK_MS). */
static void step(uv_timer_t *t)
{
    struct cluster *c = t->data;
    unsigned l;

    c->ops->refresh(c);
    if (c->phase < SHUTDOWN && ms_since(c->phase_start) > PHASE_TIMEOUT_MS) {
        fail(c, "phase timed out");
        return;
    }
    switch (c->phase) {
    case WAIT_LEADER:
        if ((l = stable_leader(c)) == N_NODES)
            return;
        c->leader = l;
        say(">> node %u leads term %llu, agreed by all, %.0f ms after start", l + 1,
            c->v[l].term, ms_since(c->phase_start));
        apply_range(c, 1, 10);
        enter(c, WAIT_FIRST_TOTAL);
        return;
    case WAIT_FIRST_TOTAL:
        if (!live_nodes_at(c, FIRST_TOTAL))
            return;
        print_table(c, ">> every FSM reads 55:");
        enter(c, KILL_LEADER);
        return;
    case KILL_LEADER:
        c->old_leader = c->leader;
        c->kill_time = uv_hrtime();
        c->ops->kill(c, c->leader);
        enter(c, WAIT_NEW_LEADER);
        return;
    case WAIT_NEW_LEADER:
        if ((l = stable_leader(c)) == N_NODES || l == c->old_leader)
            return;
        c->leader = l;
        say(">> node %u leads term %llu, %.0f ms after the old leader died", l + 1,
            c->v[l].term, ms_since(c->kill_time));
        apply_range(c, 11, 15);
        enter(c, WAIT_FINAL_TOTAL);
        return;
    case WAIT_FINAL_TOTAL:
        if (!c->first_commit_seen && c->v[c->leader].counter > FIRST_TOTAL) {
            c->first_commit_seen = true;
            say(">> first commit on the new leader %.0f ms after the kill",
                ms_since(c->kill_time));
        }
        if (!live_nodes_at(c, FINAL_TOTAL))
            return;
        print_table(c, ">> survivors read 120 = 55 committed under the old leader + 65:");
        enter(c, RESTART_OLD);
        return;
    case RESTART_OLD:
        if (!c->ops->restart(c, c->old_leader))
            return;
        c->term_before_restart = c->v[c->leader].term;
        enter(c, WAIT_CATCH_UP);
        return;
    case WAIT_CATCH_UP: {
        const struct view *o = &c->v[c->old_leader], *L = &c->v[c->leader];
        if (!o->alive || o->counter != FINAL_TOTAL || o->last_applied != L->last_applied ||
            stable_leader(c) != c->leader)
            return;
        say(">> node %u caught up %.0f ms after its restart", c->old_leader + 1,
            ms_since(c->phase_start));
        print_table(c, ">> final state:");
        bool same = true;
        for (unsigned i = 0; i < N_NODES; i++)
            same = same && c->v[i].counter == FINAL_TOTAL &&
                   c->v[i].last_index == L->last_index && c->v[i].term == L->term;
        if (!same)
            c->failed = 1;
        say("%s: counters, last indexes and terms agree on all three nodes",
            same ? "OK" : "MISMATCH");
        say("%s: term %llu before the restart, %llu after (pre-vote: a returning node does "
            "not depose the leader)", L->term == c->term_before_restart ? "OK" : "NOTE",
            c->term_before_restart, L->term);
        c->ops->shutdown(c);
        enter(c, SHUTDOWN);
        return;
    }
    case SHUTDOWN:
        if (!c->ops->stopped(c))
            return;
        uv_timer_stop(&c->tick);
        uv_close((uv_handle_t *)&c->tick, NULL);
        enter(c, DONE);
        return;
    case DONE:
        return;
    }
}

/* ------------------------------------------------------------- in one process ---- */

struct inproc {
    struct cluster c;
    struct node nodes[N_NODES];
};

static struct inproc *as_inproc(struct cluster *c) { return (struct inproc *)c; }

static void ip_refresh(struct cluster *c)
{
    for (unsigned i = 0; i < N_NODES; i++)
        node_view(&as_inproc(c)->nodes[i], &c->v[i]);
}
static int ip_apply(struct cluster *c, unsigned i, uint64_t value)
{
    return node_apply(&as_inproc(c)->nodes[i], value);
}
static void ip_kill(struct cluster *c, unsigned i)
{
    say(">> raft_close(node %u), the leader: no transfer, its peers just stop hearing it",
        i + 1);
    node_close(&as_inproc(c)->nodes[i]);
}
static bool ip_restart(struct cluster *c, unsigned i)
{
    struct node *n = &as_inproc(c)->nodes[i];
    if (!n->closed)
        return false;
    say(">> restarting node %u on %s", i + 1, n->dir);
    node_start(n, c->loop, c->addrs);
    return true;
}
static void ip_shutdown(struct cluster *c)
{
    for (unsigned i = 0; i < N_NODES; i++)
        node_close(&as_inproc(c)->nodes[i]);
}
static bool ip_stopped(struct cluster *c)
{
    for (unsigned i = 0; i < N_NODES; i++)
        if (!as_inproc(c)->nodes[i].closed)
            return false;
    return true;
}
static const struct cluster_ops inproc_ops = {ip_refresh, ip_apply, ip_kill, ip_restart,
                                              ip_shutdown, ip_stopped};

/* ---------------------------------------------------------- one process each ---- */

/*
 * The parent spawns "raft-spike --node ID DIR T0 ELECTION_MS HEARTBEAT_MS ADDR1 ADDR2 ADDR3".
 * The child reads
 * commands on stdin ("a VALUE" apply, "q" quit) and writes to stdout "S state term leader
 * last_index last_applied counter snapshot_index" every TICK_MS and "L text" log lines.
 */
struct proc {
    struct cluster *c;
    unsigned i;
    uv_process_t process;
    uv_pipe_t in, out;              /* the child's stdin and stdout */
    int handles;                    /* of the three above, not yet closed */
    bool running;
    char line[1024];
    size_t len;
};

struct procs {
    struct cluster c;
    struct proc p[N_NODES];
    char exe[PATH_MAX];
};

static struct procs *as_procs(struct cluster *c) { return (struct procs *)c; }

static void pr_handle_closed(uv_handle_t *h)
{
    struct proc *p = h->data;
    p->handles--;
}

static void pr_line(struct proc *p, char *line)
{
    struct view *v = &p->c->v[p->i];
    if (line[0] == 'L' && line[1] == ' ') {
        printf("%s\n", line + 2);
        fflush(stdout);
    } else if (line[0] == 'S' && p->running) {
        if (sscanf(line + 1, "%d %llu %llu %llu %llu %llu %llu", &v->state, &v->term,
                   &v->leader, &v->last_index, &v->last_applied, &v->counter,
                   &v->snapshot_index) == 7)
            v->alive = true;
    }
}

static void pr_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct proc *p = h->data;
    (void)suggested;
    buf->base = p->line + p->len;
    buf->len = sizeof p->line - p->len - 1;
}

static void pr_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct proc *p = s->data;
    (void)buf;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, pr_handle_closed);
        return;
    }
    p->len += (size_t)nread;
    p->line[p->len] = '\0';
    char *start = p->line, *nl;
    while ((nl = strchr(start, '\n')) != NULL) {
        *nl = '\0';
        pr_line(p, start);
        start = nl + 1;
    }
    p->len = strlen(start);
    memmove(p->line, start, p->len);
    if (p->len == sizeof p->line - 1)   /* a line longer than the buffer: drop it */
        p->len = 0;
}

static void pr_exit(uv_process_t *proc, int64_t status, int sig)
{
    struct proc *p = proc->data;
    p->running = false;
    p->c->v[p->i].alive = false;
    say("node %u: process %d exited (status %lld%s%s)", p->i + 1, proc->pid,
        (long long)status, sig ? ", signal " : "", sig ? strsignal(sig) : "");
    uv_close((uv_handle_t *)proc, pr_handle_closed);
    uv_close((uv_handle_t *)&p->in, pr_handle_closed);
}

static void pr_spawn(struct procs *ps, unsigned i)
{
    struct proc *p = &ps->p[i];
    char id[16], t0[32], el[16], hb[16], dir[PATH_MAX];
    char *args[] = {ps->exe, "--node", id, dir, t0, el, hb, ps->c.addrs[0], ps->c.addrs[1],
                    ps->c.addrs[2], NULL};
    uv_stdio_container_t stdio[3];
    uv_process_options_t opts = {0};
    int rv;

    snprintf(id, sizeof id, "%u", i + 1);
    snprintf(t0, sizeof t0, "%llu", (ull)g_t0);
    snprintf(el, sizeof el, "%u", g_election_ms);
    snprintf(hb, sizeof hb, "%u", g_heartbeat_ms);
    snprintf(dir, sizeof dir, "%s/node%u", ps->c.root, i + 1);
    p->c = &ps->c;
    p->i = i;
    p->len = 0;
    uv_pipe_init(ps->c.loop, &p->in, 0);
    uv_pipe_init(ps->c.loop, &p->out, 0);
    p->process.data = p->in.data = p->out.data = p;
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&p->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    opts.file = ps->exe;
    opts.args = args;
    opts.exit_cb = pr_exit;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    if ((rv = uv_spawn(ps->c.loop, &p->process, &opts)) != 0) {
        say("uv_spawn: %s", uv_strerror(rv));
        exit(1);
    }
    p->handles = 3;
    p->running = true;
    uv_read_start((uv_stream_t *)&p->out, pr_alloc, pr_read);
}

struct pr_write {
    uv_write_t req;
    char text[32];
};

static void pr_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
}

static int pr_send(struct proc *p, const char *text)
{
    struct pr_write *w;
    uv_buf_t buf;
    if (!p->running)
        return RAFT_NOCONNECTION;
    if ((w = calloc(1, sizeof *w)) == NULL)
        return RAFT_NOMEM;
    snprintf(w->text, sizeof w->text, "%s", text);
    w->req.data = w;
    buf = uv_buf_init(w->text, (unsigned)strlen(w->text));
    if (uv_write(&w->req, (uv_stream_t *)&p->in, &buf, 1, pr_written) != 0) {
        free(w);
        return RAFT_NOCONNECTION;
    }
    return 0;
}

static void pr_refresh(struct cluster *c) { (void)c; /* views arrive with the "S" lines */ }
static int pr_apply(struct cluster *c, unsigned i, uint64_t value)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "a %llu\n", (ull)value);
    return pr_send(&as_procs(c)->p[i], cmd);
}
static void pr_kill(struct cluster *c, unsigned i)
{
    struct proc *p = &as_procs(c)->p[i];
    say(">> SIGKILL node %u (pid %d), the leader", i + 1, p->process.pid);
    uv_process_kill(&p->process, SIGKILL);
}
static bool pr_restart(struct cluster *c, unsigned i)
{
    if (as_procs(c)->p[i].handles > 0)
        return false;
    say(">> restarting node %u as a new process on %s/node%u", i + 1, c->root, i + 1);
    pr_spawn(as_procs(c), i);
    return true;
}
static void pr_shutdown(struct cluster *c)
{
    for (unsigned i = 0; i < N_NODES; i++)
        pr_send(&as_procs(c)->p[i], "q\n");
}
static bool pr_stopped(struct cluster *c)
{
    for (unsigned i = 0; i < N_NODES; i++)
        if (as_procs(c)->p[i].handles > 0)
            return false;
    return true;
}
static const struct cluster_ops procs_ops = {pr_refresh, pr_apply, pr_kill, pr_restart,
                                             pr_shutdown, pr_stopped};

/* ---- the child side ---- */

struct child {
    struct node n;
    uv_loop_t loop;
    uv_pipe_t ctl;
    uv_timer_t status;
    char buf[256];
    size_t len;
};

static void child_status(uv_timer_t *t)
{
    struct child *ch = t->data;
    struct view v;
    node_view(&ch->n, &v);
    if (v.alive)
        printf("S %d %llu %llu %llu %llu %llu %llu\n", v.state, v.term, v.leader,
               v.last_index, v.last_applied, v.counter, v.snapshot_index);
    fflush(stdout);
}

static void child_stop(struct child *ch)
{
    if (uv_is_closing((uv_handle_t *)&ch->ctl))
        return;
    uv_close((uv_handle_t *)&ch->ctl, NULL);
    uv_close((uv_handle_t *)&ch->status, NULL);
    node_close(&ch->n);
}

static void child_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct child *ch = h->data;
    (void)suggested;
    buf->base = ch->buf + ch->len;
    buf->len = sizeof ch->buf - ch->len - 1;
}

static void child_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct child *ch = s->data;
    char *start, *nl;
    (void)buf;
    if (nread < 0) {                /* the parent went away */
        child_stop(ch);
        return;
    }
    ch->len += (size_t)nread;
    ch->buf[ch->len] = '\0';
    start = ch->buf;
    while ((nl = strchr(start, '\n')) != NULL) {
        unsigned long long value;
        *nl = '\0';
        if (start[0] == 'q') {
            child_stop(ch);
            return;
        }
        if (sscanf(start, "a %llu", &value) == 1) {
            int rv = node_apply(&ch->n, value);
            if (rv != 0)
                say("node %u: raft_apply(+%llu): %s", ch->n.id, value, raft_strerror(rv));
        }
        start = nl + 1;
    }
    ch->len = strlen(start);
    memmove(ch->buf, start, ch->len);
    if (ch->len == sizeof ch->buf - 1)
        ch->len = 0;
}

static int child_main(int argc, char **argv)
{
    static struct child ch;
    char addrs[N_NODES][32];

    if (argc != 10)
        return 2;
    g_child = true;
    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the spike */
    signal(SIGPIPE, SIG_IGN);
    g_t0 = strtoull(argv[4], NULL, 10);
    g_election_ms = (unsigned)atoi(argv[5]);
    g_heartbeat_ms = (unsigned)atoi(argv[6]);
    ch.n.id = (unsigned)atoi(argv[2]);
    snprintf(ch.n.dir, sizeof ch.n.dir, "%s", argv[3]);
    for (unsigned i = 0; i < N_NODES; i++)
        snprintf(addrs[i], sizeof addrs[i], "%s", argv[7 + i]);
    snprintf(ch.n.address, sizeof ch.n.address, "%s", addrs[ch.n.id - 1]);

    uv_loop_init(&ch.loop);
    node_start(&ch.n, &ch.loop, addrs);
    uv_pipe_init(&ch.loop, &ch.ctl, 0);
    uv_pipe_open(&ch.ctl, 0);
    ch.ctl.data = &ch;
    uv_read_start((uv_stream_t *)&ch.ctl, child_alloc, child_read);
    uv_timer_init(&ch.loop, &ch.status);
    ch.status.data = &ch;
    uv_timer_start(&ch.status, child_status, 0, TICK_MS);
    uv_run(&ch.loop, UV_RUN_DEFAULT);
    uv_loop_close(&ch.loop);
    return 0;
}

/* ------------------------------------------------------------------- driver ---- */

/* Three distinct free loopback ports: hold all three sockets, then release them. */
static int pick_ports(char addrs[N_NODES][32])
{
    int fds[N_NODES];
    for (unsigned i = 0; i < N_NODES; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t len = sizeof sa;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0)
            return -1;
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%u", ntohs(sa.sin_port));
    }
    for (unsigned i = 0; i < N_NODES; i++)
        close(fds[i]);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void list_dir(const char *dir)
{
    struct dirent **names;
    char line[600] = "";
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' &&
            strlen(line) + strlen(names[i]->d_name) + 2 < sizeof line) {
            strcat(line, " ");
            strcat(line, names[i]->d_name);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    say("files in %s:%s", dir, line);
}

static int run(const char *mode, bool keep)
{
    static struct inproc ip;
    static struct procs ps;
    bool inproc = strcmp(mode, "inproc") == 0;
    struct cluster *c = inproc ? &ip.c : &ps.c;
    uv_loop_t loop;
    const char *tmp = getenv("TMPDIR");

    memset(c, 0, inproc ? sizeof ip : sizeof ps);
    c->ops = inproc ? &inproc_ops : &procs_ops;
    c->loop = &loop;
    snprintf(c->root, sizeof c->root, "%s/raft-spike-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(c->root) == NULL || pick_ports(c->addrs) != 0) {
        perror("raft-spike: temp dir or ports");
        return 1;
    }
    say("==== mode %s: data under %s, voters 1=%s 2=%s 3=%s", mode, c->root, c->addrs[0],
        c->addrs[1], c->addrs[2]);
    for (unsigned i = 0; i < N_NODES; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/node%u", c->root, i + 1);
        mkdir(dir, 0700);
    }

    uv_loop_init(&loop);
    if (inproc) {
        for (unsigned i = 0; i < N_NODES; i++) {
            struct node *n = &ip.nodes[i];
            n->id = i + 1;
            n->closed = true;
            snprintf(n->dir, sizeof n->dir, "%s/node%u", c->root, i + 1);
            snprintf(n->address, sizeof n->address, "%s", c->addrs[i]);
            node_start(n, &loop, c->addrs);
        }
    } else {
        size_t len = sizeof ps.exe;
        if (uv_exepath(ps.exe, &len) != 0) {
            say("uv_exepath failed");
            return 1;
        }
        for (unsigned i = 0; i < N_NODES; i++)
            pr_spawn(&ps, i);
    }
    /* The script's own timer on the same loop as the raft instances (inproc). */
    uv_timer_init(&loop, &c->tick);
    c->tick.data = c;
    enter(c, WAIT_LEADER);
    uv_timer_start(&c->tick, step, TICK_MS, TICK_MS);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        say("note: handles left open on the loop");

    /* What raft_uv keeps on disk (metadata1/2, closed and open segments, snapshots). */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/node%u", c->root, c->old_leader + 1);
    list_dir(dir);
    if (!keep)
        nftw(c->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    say("==== mode %s: %s", mode, c->failed ? "FAILED" : "passed");
    return c->failed;
}

int main(int argc, char **argv)
{
    const char *mode = "both";
    bool keep = false;

    if (argc > 1 && strcmp(argv[1], "--node") == 0)
        return child_main(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--election-ms") == 0 && i + 1 < argc)
            g_election_ms = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--heartbeat-ms") == 0 && i + 1 < argc)
            g_heartbeat_ms = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else {
            fprintf(stderr, "usage: %s [--mode inproc|procs|both] [--election-ms N] "
                    "[--heartbeat-ms N] [--keep]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    g_t0 = uv_hrtime();
    if (g_election_ms == 0 || g_heartbeat_ms == 0 || g_heartbeat_ms >= g_election_ms) {
        fprintf(stderr, "raft-spike: need 0 < --heartbeat-ms < --election-ms\n");
        return 2;
    }
    say("libraft %s (raft.pc), libuv %s; election timeout %u ms, heartbeat %u ms",
        RAFT_SPIKE_LIBRAFT_VERSION, uv_version_string(), g_election_ms, g_heartbeat_ms);
    if (strcmp(mode, "both") == 0)
        return run("inproc", keep) | run("procs", keep);
    if (strcmp(mode, "inproc") != 0 && strcmp(mode, "procs") != 0) {
        fprintf(stderr, "raft-spike: --mode is inproc, procs or both\n");
        return 2;
    }
    return run(mode, keep);
}
