/*
 * raft_fixture_spike.c - issue 5 spike: libraft's in-memory test fixture (raft/fixture.h,
 * shipped in Debian's libraft-dev and exported by libraft.so.2) as the engine of
 * deterministic unit tests for broker/cluster: three servers, virtual time, no sockets, no
 * disk, network cuts and I/O faults on demand.
 *
 *   raft-fixture-spike
 *
 * Script: elect a leader, apply 10 commands, kill the leader, elect another, apply 5 more,
 * revive the old leader and let it catch up; then cut the new leader off from the others
 * (a partition, not a crash) and watch it step down and a new term start; then make the
 * leader's next disk write fail (raft_fixture_io_fault) and show what raft_apply reports.
 * Every step prints the virtual clock, so a run is the same on every machine.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/fixture.h>

#define N_SERVERS 3

typedef unsigned long long ull;

static ull counters[N_SERVERS];

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    ull *counter = fsm->data;
    uint64_t v;
    if (buf->len != sizeof v)
        return RAFT_MALFORMED;
    memcpy(&v, buf->base, sizeof v);
    *counter += v;
    *result = counter;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL)
        return RAFT_NOMEM;
    (*bufs)[0].len = sizeof(ull);
    (*bufs)[0].base = raft_malloc(sizeof(ull));
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, fsm->data, sizeof(ull));
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    if (buf->len != sizeof(ull))
        return RAFT_MALFORMED;
    memcpy(fsm->data, buf->base, sizeof(ull));
    raft_free(buf->base);
    return 0;
}

static struct raft_fixture f;
static int apply_status = -1;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    apply_status = status;
    free(req);
}

static int apply(unsigned i, uint64_t value)
{
    struct raft_apply *req = calloc(1, sizeof *req);
    struct raft_buffer buf = {.len = sizeof value, .base = raft_malloc(sizeof value)};
    int rv;
    memcpy(buf.base, &value, sizeof value);
    rv = raft_apply(raft_fixture_get(&f, i), req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(req);
    }
    return rv;
}

static void show(const char *what)
{
    unsigned l = raft_fixture_leader_index(&f);
    printf("[t=%6llu ms] %-44s leader=%s", (ull)raft_fixture_time(&f), what,
           l < N_SERVERS ? (char[]){(char)('1' + l), 0} : "none");
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct raft *r = raft_fixture_get(&f, i);
        printf("  s%u:%s term %llu applied %llu counter %llu", i + 1,
               raft_fixture_alive(&f, i) ? "" : "(dead)", r->current_term,
               raft_last_applied(r), counters[i]);
    }
    printf("\n");
}

static int check(bool ok, const char *what)
{
    if (!ok) {
        printf("FAILED: %s\n", what);
        exit(1);
    }
    return 0;
}

int main(void)
{
    struct raft_fsm fsms[N_SERVERS];
    struct raft_configuration conf;
    unsigned leader, old;
    raft_index idx;

    check(raft_fixture_initialize(&f) == 0, "raft_fixture_initialize");
    for (unsigned i = 0; i < N_SERVERS; i++) {
        fsms[i] = (struct raft_fsm){.version = 1, .data = &counters[i], .apply = fsm_apply,
                                    .snapshot = fsm_snapshot, .restore = fsm_restore};
        check(raft_fixture_grow(&f, &fsms[i]) == 0, "raft_fixture_grow");
        raft_set_snapshot_threshold(raft_fixture_get(&f, i), 8);
        raft_set_snapshot_trailing(raft_fixture_get(&f, i), 4);
    }
    check(raft_fixture_configuration(&f, N_SERVERS, &conf) == 0, "configuration");
    check(raft_fixture_bootstrap(&f, &conf) == 0, "bootstrap");
    raft_configuration_close(&conf);
    check(raft_fixture_start(&f) == 0, "start");

    check(raft_fixture_step_until_has_leader(&f, 10000), "first election");
    show("elected");
    leader = raft_fixture_leader_index(&f);
    for (uint64_t v = 1; v <= 10; v++)
        check(apply(leader, v) == 0, "apply 1..10");
    idx = raft_last_index(raft_fixture_get(&f, leader));
    check(raft_fixture_step_until_applied(&f, N_SERVERS, idx, 5000), "apply on all");
    show("10 commands applied everywhere");

    old = leader;
    raft_fixture_kill(&f, old);
    show("leader killed");
    check(raft_fixture_step_until_has_no_leader(&f, 10000), "leader loss noticed");
    check(raft_fixture_step_until_has_leader(&f, 10000), "second election");
    leader = raft_fixture_leader_index(&f);
    check(leader != old, "a different leader");
    show("new leader");
    for (uint64_t v = 11; v <= 15; v++)
        check(apply(leader, v) == 0, "apply 11..15");
    idx = raft_last_index(raft_fixture_get(&f, leader));
    for (unsigned i = 0; i < N_SERVERS; i++)
        if (i != old)
            check(raft_fixture_step_until_applied(&f, i, idx, 5000), "survivors apply");
    show("5 more applied on the survivors");

    raft_fixture_revive(&f, old);
    check(raft_fixture_step_until_applied(&f, old, idx, 10000), "revived catches up");
    show("old leader revived and caught up");
    for (unsigned i = 0; i < N_SERVERS; i++)
        check(counters[i] == 120, "every counter at 120");

    /* A partition rather than a crash: the leader runs on but hears no one. */
    for (unsigned i = 0; i < N_SERVERS; i++)
        if (i != leader) {
            raft_fixture_saturate(&f, leader, i);  /* drop messages both ways */
            raft_fixture_saturate(&f, i, leader);
        }
    check(raft_fixture_step_until_state_is(&f, leader, RAFT_FOLLOWER, 10000),
          "cut-off leader steps down");
    show("leader cut off: it stepped down");
    check(raft_fixture_step_until_has_leader(&f, 10000), "third election");
    show("majority side elected");
    for (unsigned i = 0; i < N_SERVERS; i++)
        for (unsigned j = 0; j < N_SERVERS; j++)
            if (i != j)
                raft_fixture_desaturate(&f, i, j);

    /* Fault injection: the leader's next I/O request fails. */
    raft_fixture_step_until_elapsed(&f, 500);
    leader = raft_fixture_leader_index(&f);
    check(leader < N_SERVERS, "a leader after healing");
    raft_fixture_io_fault(&f, leader, 0, 1);
    apply_status = -1;
    int rv = apply(leader, 1000);
    raft_fixture_step_until_elapsed(&f, 2000);
    printf("[t=%6llu ms] with an I/O fault on the leader: raft_apply returned %d (%s), "
           "callback status %d (%s)\n", (ull)raft_fixture_time(&f), rv, raft_strerror(rv),
           apply_status, apply_status < 0 ? "not called" : apply_status == 0 ? "ok" :
           raft_strerror(apply_status));
    show("after the fault");

    raft_fixture_close(&f);
    printf("OK\n");
    return 0;
}
