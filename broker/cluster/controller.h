/*
 * controller.h - the controller quorum: one libraft instance on the broker's libuv loop
 * (docs/cluster.md §3.1-§3.3). It keeps the replicated metadata log, feeds the committed
 * entries to a state machine the caller supplies, says who the active controller is, and
 * takes proposals when this broker is it.
 *
 * Happy path
 *   rn_ctl_start  raft_uv_tcp + raft_uv on the caller's loop, in DATA_DIR/__cluster_metadata;
 *                 the meta.properties guard; raft_bootstrap with every voter (RAFT_CANTBOOTSTRAP:
 *                 the state on disk is loaded instead); pre-vote, timeouts, snapshot threshold;
 *                 raft_start (which restores the latest snapshot through fsm.restore, on the loop)
 *   every 50 ms   rn_ctl_poll: raft_state() / raft_leader(); a change of leader or term is logged
 *                 ("node 2 is the active controller, term 3") and reported (events.leader);
 *                 on becoming leader a raft_barrier is appended, and once it applies this node
 *                 is *active* (events.active(true)): its FSM holds every earlier entry
 *   rn_ctl_propose  one raft entry; cb(status, index) once committed and applied here
 *   rn_ctl_stop   the active controller first hands leadership to another voter (raft_transfer,
 *                 bounded by the election timeout), then raft_close; a follower closes at once
 *
 * Failure modes
 *   - a proposal on a follower or candidate: RN_CTL_ERR_NOT_CONTROLLER synchronously;
 *   - leadership lost with proposals in flight: their cb gets RN_CTL_ERR_NOT_CONTROLLER; the
 *     outcome is unknown (the entry may still commit), so callers make changes idempotent;
 *   - stop with proposals in flight: their cb gets RN_ERR_CLOSED;
 *   - meta.properties says this voter bootstrapped but the raft directory is empty (its disk
 *     was lost): rn_ctl_start refuses with RN_ERR_STATE, because bootstrapping again could let
 *     it vote twice in a term. Recovery: libraft's raft_recover procedure, or remove and re-add
 *     the voter.
 *
 * The same object also runs on a struct raft that someone else built (rn_ctl_attach), which is
 * how tests drive it under libraft's deterministic fixture (raft/fixture.h).
 *
 * @locality every function and callback runs on the loop thread of the raft instance.
 */
#ifndef RN_BROKER_CLUSTER_CONTROLLER_H
#define RN_BROKER_CLUSTER_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "err.h"

struct raft;
struct raft_fsm;

/* "This broker is not the active controller" (retriable; common/err.h, docs/cluster.md §6.3). */
#define RN_CTL_ERR_NOT_CONTROLLER RN_ERR_NOT_CONTROLLER

#define RN_CTL_MAX_VOTERS 8

/*
 * The state machine, called on the loop thread. apply runs on every server for every committed
 * entry in log order (index = the entry's raft index); it must be deterministic and should not
 * fail on well-formed input (a record that does not fit the state is a no-op there). *result
 * (may stay NULL) reaches the proposer's callback on the leader only, and must stay valid until
 * that callback returns. snapshot appends the whole state to out; restore replaces the state
 * with one that snapshot produced (data is only valid during the call). An error from apply or
 * restore stops this server applying the log.
 */
typedef struct rn_ctl_fsm {
    void *ctx;
    rn_err_t (*apply)(void *ctx, const void *data, size_t len, uint64_t index, void **result);
    rn_err_t (*snapshot)(void *ctx, rn_buf_t *out);
    rn_err_t (*restore)(void *ctx, const void *data, size_t len);
} rn_ctl_fsm_t;

/* What the caller hears about leadership; either callback may be NULL. */
typedef struct rn_ctl_events {
    void *ctx;
    /* The known leader or the term changed; leader_id 0: none known right now. */
    void (*leader)(void *ctx, uint32_t leader_id, uint64_t term);
    /* This node became the active controller (its barrier applied), or stopped being it. */
    void (*active)(void *ctx, bool active);
} rn_ctl_events_t;

typedef struct rn_ctl_voter {
    uint32_t id;
    char address[32];              /* "a.b.c.d:PORT" (libraft 0.15 takes IPv4 literals only) */
} rn_ctl_voter_t;

typedef struct rn_ctl_opts {
    uint32_t node_id;              /* node.id; must be one of the voters */
    const char *listen;            /* controller.listen: the address the raft listener binds */
    const char *voters;            /* controller.quorum.voters: "1@H:P,2@H:P,3@H:P" */
    const char *data_dir;          /* the broker's (locked) data directory */
    uint32_t election_timeout_ms;  /* controller.quorum.election.timeout.ms */
    uint32_t heartbeat_ms;         /* controller.quorum.heartbeat.interval.ms */
    uint32_t snapshot_threshold;   /* metadata.log.snapshot.threshold (entries) */
    rn_ctl_fsm_t fsm;
    rn_ctl_events_t events;
    /* A node not in voters is an observer (observer.h): the image pulled from these brokers'
     * client listeners ("HOST:PORT,..."), every observer_poll_ms. NULL: such a node is refused. */
    const char *observer_bootstrap;
    uint32_t observer_poll_ms;
    uint32_t max_frame;
    /* An observer's fallback once every bootstrap server failed: the registered brokers'
     * client listeners (may be NULL). */
    bool (*observer_brokers)(void *ctx, char hosts[][256], int *ports, size_t cap, size_t *n);
    void *observer_brokers_ctx;
} rn_ctl_opts_t;

typedef struct rn_ctl rn_ctl_t;

/* Committed (status RN_OK, index = its raft index, result from fsm.apply) or failed. */
typedef void (*rn_ctl_propose_cb)(void *arg, rn_err_t status, uint64_t index, void *result);

/*
 * Parses controller.quorum.voters ("ID@a.b.c.d:PORT,..."): ids > 0 and distinct, addresses
 * IPv4 literals with a port in 1..65535, distinct, at most RN_CTL_MAX_VOTERS. RN_ERR_BAD_CONFIG
 * with a message naming the entry and what is accepted. Pure; any thread.
 */
rn_err_t rn_ctl_parse_voters(const char *s, rn_ctl_voter_t *out, size_t cap, size_t *n,
                             char *errbuf, size_t errlen);
/* Checks one "a.b.c.d:PORT" (PORT 1..65535); RN_ERR_BAD_CONFIG otherwise. Pure. */
rn_err_t rn_ctl_check_address(const char *address);

/*
 * Starts the quorum member on loop (see the top of this file). The settings must have passed
 * rn_bcfg_check. Synchronous disk work: the raft_uv probe, the load (about 50 ms each plus the
 * snapshot restore). RN_OK with *out, or an error with errbuf saying what and what to do;
 * nothing is left on the loop then. Free with rn_ctl_free once rn_ctl_stop has called back.
 */
rn_err_t rn_ctl_start(uv_loop_t *loop, const rn_ctl_opts_t *opts, rn_ctl_t **out, char *errbuf,
                      size_t errlen);

/*
 * Stops: hands leadership over when this node leads and another voter exists (waiting at most
 * the election timeout), then raft_close. done(arg) runs on the loop once libraft has closed;
 * raft_uv's own handles may still be closing then, so free only after the loop has run on
 * (the broker frees after uv_run returns). A second call does nothing.
 */
void rn_ctl_stop(rn_ctl_t *ctl, void (*done)(void *arg), void *arg);
/* Frees a stopped (or attached) controller; NULL is fine. */
void rn_ctl_free(rn_ctl_t *ctl);

/*
 * Proposes one entry. bytes are copied into a raft_malloc buffer, framed and padded to a
 * multiple of 8 bytes (libraft 0.15 needs that on disk; see controller.c), so any length works
 * and fsm.apply gets exactly these bytes back; the caller keeps its own.
 * RN_OK: cb runs exactly once later (also on leadership loss or stop). Otherwise cb is not
 * called: RN_CTL_ERR_NOT_CONTROLLER when this node is not the leader, RN_ERR_NOMEM,
 * RN_ERR_CLOSED once stopping, RN_ERR_IO when libraft refuses the entry (errmsg via
 * rn_ctl_errmsg).
 */
rn_err_t rn_ctl_propose(rn_ctl_t *ctl, const void *bytes, size_t len, rn_ctl_propose_cb cb,
                        void *arg);

/* One poll of raft_state()/raft_leader() (the 50 ms timer calls it; tests call it directly). */
void rn_ctl_poll(rn_ctl_t *ctl);

typedef struct rn_ctl_status {
    int state;                     /* RAFT_FOLLOWER, _CANDIDATE, _LEADER or _UNAVAILABLE */
    uint32_t leader_id;            /* 0: none known */
    uint64_t term, commit_index, last_index, last_applied, snapshot_index;
    bool active;                   /* leader and its takeover barrier applied */
} rn_ctl_status_t;

/* What libraft says now (not what the last poll saw). The one place reading struct raft. */
void rn_ctl_status(rn_ctl_t *ctl, rn_ctl_status_t *st);
/* The leader as the last poll saw it: its node id, or -1 when none is known (Metadata). */
int32_t rn_ctl_controller_id(const rn_ctl_t *ctl);
bool rn_ctl_is_active(const rn_ctl_t *ctl);
const char *rn_ctl_errmsg(rn_ctl_t *ctl);
/* rn_ctl_status's state on an observer (not a libraft state). */
#define RN_CTL_OBSERVER 100
/* True when this node is an observer, not a voter. */
bool rn_ctl_is_observer(const rn_ctl_t *ctl);

/* "follower", "candidate", "leader", "unavailable", "observer". */
const char *rn_ctl_state_name(int state);

/* ---- for tests: the controller on a struct raft built elsewhere (raft/fixture.h) ---- */

/*
 * A controller not yet bound to a raft: fills *fsm (to pass to raft_init or raft_fixture_grow)
 * with an adapter to the given state machine. Bind it with rn_ctl_attach once the struct raft
 * exists and before it starts. There is no timer: call rn_ctl_poll. rn_ctl_stop is not for
 * attached controllers; whoever built the raft closes it, then rn_ctl_free.
 */
rn_ctl_t *rn_ctl_new_detached(const rn_ctl_fsm_t *fsm, const rn_ctl_events_t *events,
                              struct raft_fsm **raft_fsm);
void rn_ctl_attach(rn_ctl_t *ctl, struct raft *raft);

#endif
