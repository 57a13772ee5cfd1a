/*
 * test_cluster_controller.c - three real brokers form the controller quorum (docs/cluster.md
 * §3, issue 5 step 3):
 *   - started with --controller-listen / --controller-quorum on loopback ports picked at run
 *     time, they agree on one controller within 10 s (Metadata's controller_id on all three,
 *     and the "is the active controller" log line);
 *   - SIGKILL the controller: the other two agree on another within 3 s;
 *   - restart the killed one on its data directory (raft state loaded, not bootstrapped): all
 *     three report the same controller again;
 *   - SIGTERM the controller: it hands leadership over (raft_transfer) and exits 0;
 *   - a voter whose raft directory is gone but whose meta.properties says it bootstrapped
 *     refuses to start and names the recovery;
 *   - the controller flags are validated (exit 2, the message names the key).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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

#include "cluster_fixture.h"
#include "harness.h"
#include "rawclient.h"



/* Metadata's controller_id from broker i: -1 none known, -2 not reachable. */
/* A tiny snapshot threshold, so restarts go through the image's snapshot/restore. */
static const char *const snapshot_often[] = {"metadata.log.snapshot.threshold=2", NULL};

static int32_t controller_of(rn_hcluster_t *c, int i)
{
    if (!rn_h_broker_alive(&c->b[i]))
        return -2;
    rn_rc_t rc;
    if (rn_rc_connect(&rc, c->b[i].addr) != 0)
        return -2;
    Runnel__MetadataRequest body = RUNNEL__METADATA_REQUEST__INIT;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_METADATA;
    req.metadata = &body;
    Runnel__Response *r = rn_rc_call(&rc, &req, RUNNEL__API_KEY__API_METADATA, 2000);
    int32_t id = -2;
    if (r && r->body_case == RUNNEL__RESPONSE__BODY_METADATA)
        id = r->metadata->controller_id;
    rn_rc_free(r);
    rn_rc_close(&rc);
    return id;
}

/* Waits until every live broker reports the same controller id (> 0, != not_this, alive);
 * returns it, or -1 after timeout_ms. */
static int32_t wait_agreed(rn_hcluster_t *c, int32_t not_this, int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    do {
        int32_t agreed = 0;
        bool ok = true;
        for (int i = 0; i < RN_HC_N && ok; i++) {
            if (!rn_h_broker_alive(&c->b[i]))
                continue;
            int32_t id = controller_of(c, i);
            if (id <= 0 || id == not_this || (agreed && id != agreed))
                ok = false;
            agreed = id;
        }
        if (ok && agreed > 0 && rn_h_broker_alive(&c->b[agreed - 1]))
            return agreed;
        rn_hc_sleep_ms(20);
    } while (rn_hc_now_ms() < deadline);
    return -1;
}

/* Lines of the broker's log (all its runs) that contain text. */
static int log_count(const rn_hbroker_t *b, const char *text)
{
    FILE *f = fopen(b->log_path, "r");
    if (!f)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

static bool log_contains(const rn_hbroker_t *b, const char *text)
{
    return log_count(b, text) > 0;
}

/* The last "cluster id X" the broker logged (its image applied the ClusterRecord) into id. */
static bool logged_cluster_id(const rn_hbroker_t *b, char *id, size_t idlen)
{
    FILE *f = fopen(b->log_path, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "[controller] cluster id ");
        if (p && sscanf(p + strlen("[controller] cluster id "), "%63s", id) == 1 &&
            strlen(id) < idlen)
            found = true;
    }
    fclose(f);
    return found;
}

/* Every live broker's metadata image holds the same cluster id (the first controller's
 * ClusterRecord, replicated through raft). */
static void wait_same_cluster_id(rn_hcluster_t *c, char *first, int timeout_ms)
{
    int64_t deadline = rn_hc_now_ms() + timeout_ms;
    for (;;) {
        char ids[RN_HC_N][64] = {{0}};
        int have = 0, live = 0;
        for (int i = 0; i < RN_HC_N; i++) {
            if (!rn_h_broker_alive(&c->b[i]))
                continue;
            live++;
            have += logged_cluster_id(&c->b[i], ids[i], sizeof ids[i]);
        }
        if (have == live) {
            const char *want = first[0] ? first : NULL;
            for (int i = 0; i < RN_HC_N; i++) {
                if (!ids[i][0])
                    continue;
                if (!want)
                    want = ids[i];
                assert_string_equal(ids[i], want);
            }
            assert_int_equal(strlen(want), 22); /* 16 bytes in base64url */
            memmove(first, want, 23);
            return;
        }
        if (rn_hc_now_ms() > deadline) {
            rn_hc_dump_logs(c);
            fail_msg("not every broker logged a cluster id within %d ms", timeout_ms);
        }
        rn_hc_sleep_ms(20);
    }
}

static void quorum_elects_fails_over_and_rejoins(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-controller", snapshot_often);
    int64_t t0 = rn_hc_now_ms();
    int32_t first = wait_agreed(c, 0, 10000);
    if (first < 0)
        rn_hc_dump_logs(c);
    assert_true(first >= 1 && first <= RN_HC_N);
    printf("# node %d is the controller after %lld ms\n", first, (long long)(rn_hc_now_ms() - t0));
    char line[64];
    snprintf(line, sizeof line, "node %d is the active controller, term", first);
    for (int i = 0; i < RN_HC_N; i++)
        assert_true(log_contains(&c->b[i], line));
    /* The active controller's first proposal, its ClusterRecord, reached every image. */
    char cluster_id[64] = "";
    wait_same_cluster_id(c, cluster_id, 5000);

    /* SIGKILL the controller: another takes over within 3 s. */
    rn_h_broker_kill(&c->b[first - 1]);
    t0 = rn_hc_now_ms();
    int32_t second = wait_agreed(c, first, 3000);
    if (second < 0)
        rn_hc_dump_logs(c);
    assert_true(second >= 1 && second != first);
    printf("# node %d took over %lld ms after the kill\n", second,
           (long long)(rn_hc_now_ms() - t0));

    /* The killed one restarts on its data directory and rejoins: all three agree. */
    assert_int_equal(rn_rc_broker_restart(&c->b[first - 1]), 0);
    assert_true(log_contains(&c->b[first - 1], "raft state found on disk"));
    int32_t third = wait_agreed(c, 0, 10000);
    if (third < 0)
        rn_hc_dump_logs(c);
    assert_true(third >= 1);
    for (int i = 0; i < RN_HC_N; i++)
        assert_int_equal(controller_of(c, i), third);
    /* pre-vote: the returning voter does not depose the controller */
    assert_int_equal(third, second);
    /* the restarted one rebuilt the same image from its log (its second run logs the id
     * again), and no second id was made */
    int64_t deadline = rn_hc_now_ms() + 5000;
    while (log_count(&c->b[first - 1], "[controller] cluster id ") < 2 && rn_hc_now_ms() < deadline)
        rn_hc_sleep_ms(20);
    assert_int_equal(log_count(&c->b[first - 1], "[controller] cluster id "), 2);
    wait_same_cluster_id(c, cluster_id, 5000);

    /* A clean stop of the controller hands leadership over and exits 0. */
    int status = rn_h_broker_stop(&c->b[third - 1]);
    if (status != 0)
        rn_hc_dump_logs(c);
    assert_int_equal(status, 0);
    assert_true(log_contains(&c->b[third - 1], "handed the controller over to node"));
    int32_t fourth = wait_agreed(c, third, 3000);
    assert_true(fourth >= 1 && fourth != third);
    for (int i = 0; i < RN_HC_N; i++)
        if (rn_h_broker_alive(&c->b[i]))
            assert_int_equal(rn_h_broker_stop(&c->b[i]), 0);
    rn_hc_free(c);
}

static void lost_raft_directory_refuses_to_start(void **state)
{
    (void)state;
    rn_hcluster_t *c = rn_hc_start("cluster-controller", snapshot_often);
    assert_true(wait_agreed(c, 0, 10000) > 0);
    assert_int_equal(rn_h_broker_stop(&c->b[2]), 0);
    char raft_dir[700];
    snprintf(raft_dir, sizeof raft_dir, "%s/__cluster_metadata", c->data[2]);
    rn_h_rmtree(raft_dir);
    rn_hbroker_t again = {.node_id = 3};
    const char *settings[] = {c->listen_flag[2], c->quorum_flag, NULL};
    assert_int_equal(rn_h_broker_start(&again, c->data[2], settings), -1);
    assert_true(log_contains(&again, "raft_recover"));
    rn_h_broker_release(&again);
    for (int i = 0; i < 2; i++)
        assert_int_equal(rn_h_broker_stop(&c->b[i]), 0);
    rn_hc_free(c);
}

/* Runs the broker with extra flags; returns its exit status and its stderr in err. */
static int run_broker(const char *dir, const char *const *flags, char *err, size_t errlen)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)rn_h_bin("RUNNEL_BROKER_BIN");
    argv[n++] = "--data-dir";
    argv[n++] = (char *)dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (int i = 0; flags[i]; i++)
        argv[n++] = (char *)flags[i];
    argv[n] = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s.err", dir);
    int status = rn_h_run(argv, NULL, NULL, path, 20);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(err, 1, errlen - 1, f) : 0;
    err[len] = '\0';
    if (f)
        fclose(f);
    return status;
}

static void controller_flags_are_validated(void **state)
{
    (void)state;
    char *dir = rn_h_tmpdir("cluster-flags");
    char data[600], err[4096];
    snprintf(data, sizeof data, "%s/data", dir);
    struct {
        const char *flags[8];
        const char *says;
    } cases[] = {
        {{"--controller-listen", "127.0.0.1:9093", NULL}, "controller.quorum.voters"},
        {{"--controller-quorum", "1@127.0.0.1:9093", NULL}, "controller.listen"},
        {{"--controller-listen", "127.0.0.1:0", "--controller-quorum", "1@127.0.0.1:9093",
          NULL}, "controller.listen"},
        {{"--controller-listen", "localhost:9093", "--controller-quorum", "1@127.0.0.1:9093",
          NULL}, "IPv4"},
        {{"--controller-listen", "127.0.0.1:9093", "--controller-quorum", "1@127.0.0.1:9093,x",
          NULL}, "controller.quorum.voters"},
        {{"--controller-listen", "127.0.0.1:9093", "--controller-quorum",
          "2@127.0.0.1:9093,3@127.0.0.1:9094", NULL}, "node.id 1 is not in"},
        {{"--controller-listen", "127.0.0.1:9093", "--controller-quorum", "1@127.0.0.1:9094",
          NULL}, "different ports"},
        {{"--controller-listen", "127.0.0.1:9093", "--controller-quorum", "1@127.0.0.1:9093",
          "--set", "controller.quorum.heartbeat.interval.ms=500", NULL},
         "controller.quorum.election.timeout.ms"},
        {{"--set", "metadata.log.snapshot.threshold=0", NULL}, "metadata.log.snapshot.threshold"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status = run_broker(data, cases[i].flags, err, sizeof err);
        if (status != 2 || !strstr(err, cases[i].says))
            fprintf(stderr, "case %zu: status %d, stderr: %s\n", i, status, err);
        assert_int_equal(status, 2);
        assert_non_null(strstr(err, cases[i].says));
    }
    rn_h_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(controller_flags_are_validated),
        cmocka_unit_test(quorum_elects_fails_over_and_rejoins),
        cmocka_unit_test(lost_raft_directory_refuses_to_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
