/*
 * The leader-epoch cache (broker/log/epoch.c) and the log's support for replicas: cache
 * operations, the OffsetForLeaderEpoch answer and the follower's truncation point (KIP-101,
 * KIP-279, the no-epoch fallback; docs/cluster.md §5.4), leader-epoch-checkpoint across
 * close/open, crash recovery at many cut points (the cache always equals the batches that
 * survived), truncation and retention, rn_log_append_replica, and failed checkpoint writes
 * through the io vtable (the old file stays valid).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "epoch.h"
#include "log.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers ---- */

struct fx {
    char *root;
    char *dir;
};

static char *part_dir(const char *root, const char *name)
{
    char *p = malloc(strlen(root) + strlen(name) + 2);
    sprintf(p, "%s/%s", root, name);
    return p;
}

static int fx_setup(void **state)
{
    struct fx *f = malloc(sizeof *f);
    f->root = rn_t_tmpdir("rnlep");
    f->dir = part_dir(f->root, "events-0");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    int rc = rn_t_rmtree(f->root);
    free(f->dir);
    free(f->root);
    free(f);
    return rc;
}

static void build_batch(rn_buf_t *out, uint32_t count, int64_t ts)
{
    rn_batch_builder_t *b = rn_batch_builder_new();
    rn_batch_builder_reset(b, NULL);
    for (uint32_t i = 0; i < count; i++) {
        char value[32];
        int n = snprintf(value, sizeof value, "v-%" PRId64 "-%u", ts, i);
        assert_int_equal(rn_batch_builder_add(b, ts + i, "k", 1, value, (size_t)n, NULL, 0), RN_OK);
    }
    assert_int_equal(rn_batch_builder_finish(b, out), RN_OK);
    rn_batch_builder_free(b);
}

/* Leader append of one batch of count records with this epoch; returns its base offset. */
static uint64_t lead(rn_log_t *log, uint32_t epoch, uint32_t count, int64_t ts)
{
    rn_buf_t buf = RN_BUF_INIT;
    build_batch(&buf, count, ts);
    rn_log_append_info_t info;
    rn_err_t err = rn_log_append(log, buf.data, buf.len, epoch, &info);
    if (err != RN_OK)
        fail_msg("leader append (epoch %u): %s", epoch, rn_err_name(err));
    rn_buf_free(&buf);
    return info.first_offset;
}

/* One batch as a leader would have stamped it. */
static void replica_batch(rn_buf_t *out, uint64_t base, uint32_t epoch, uint32_t count)
{
    size_t at = out->len;
    build_batch(out, count, (int64_t)base);
    rn_batch_stamp(out->data + at, base, epoch);
}

static rn_log_t *open_log(const char *dir, const rn_log_config_t *cfg, const rn_log_env_t *env)
{
    rn_log_t *log = NULL;
    char err[512] = "";
    rn_err_t rc = rn_log_open(dir, cfg, env, &log, err, sizeof err);
    if (rc != RN_OK)
        fail_msg("rn_log_open(%s): %s: %s", dir, rn_err_name(rc), err);
    return log;
}

static rn_lep_t *new_cache(void)
{
    rn_lep_t *c;
    assert_int_equal(rn_lep_new("/nonexistent-never-written", rn_io_posix(), &c), RN_OK);
    return c;
}

/* A cache from a list of (epoch, start) pairs. */
static rn_lep_t *cache_of(const rn_lep_entry_t *e, size_t n)
{
    rn_lep_t *c = new_cache();
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rn_lep_assign(c, e[i].epoch, e[i].start_offset), RN_OK);
    return c;
}

static void print_cache(const char *what, const rn_lep_t *c)
{
    print_message("%s:", what);
    for (size_t i = 0; i < rn_lep_count(c); i++)
        print_message(" (%u, %" PRIu64 ")", rn_lep_get(c, i).epoch, rn_lep_get(c, i).start_offset);
    print_message("\n");
}

static bool cache_equal(const rn_lep_t *a, const rn_lep_t *b)
{
    if (rn_lep_count(a) != rn_lep_count(b))
        return false;
    for (size_t i = 0; i < rn_lep_count(a); i++) {
        rn_lep_entry_t x = rn_lep_get(a, i), y = rn_lep_get(b, i);
        if (x.epoch != y.epoch || x.start_offset != y.start_offset)
            return false;
    }
    return true;
}

static void assert_cache(const rn_lep_t *got, const rn_lep_entry_t *want, size_t n)
{
    rn_lep_t *w = cache_of(want, n);
    if (!cache_equal(got, w)) {
        print_cache("got ", got);
        print_cache("want", w);
        fail_msg("epoch cache differs");
    }
    rn_lep_free(w);
}

/* The cache the log's batches imply: one entry where each epoch first appears. */
static rn_lep_t *cache_from_batches(rn_log_t *log)
{
    rn_lep_t *c = new_cache();
    uint64_t next = rn_log_start_offset(log);
    while (next < rn_log_end_offset(log)) {
        rn_buf_t buf = RN_BUF_INIT;
        rn_log_slice_t s;
        assert_int_equal(rn_log_read_copy(log, next, UINT64_MAX, 1 << 20, &buf, &s), RN_OK);
        assert_true(s.len > 0);
        for (size_t pos = 0; pos < buf.len;) {
            rn_batch_header_t h;
            assert_int_equal(rn_batch_validate(buf.data + pos, buf.len - pos, &h), RN_OK);
            assert_int_equal(rn_lep_assign(c, h.leader_epoch, h.base_offset), RN_OK);
            pos += rn_batch_total_size(&h);
        }
        next = s.next_offset;
        rn_buf_free(&buf);
    }
    rn_lep_truncate_from_start(c, rn_log_start_offset(log));
    return c;
}

static void assert_cache_matches_batches(rn_log_t *log, const char *what)
{
    rn_lep_t *want = cache_from_batches(log);
    if (!cache_equal(rn_log_epochs(log), want)) {
        print_cache("log's cache  ", rn_log_epochs(log));
        print_cache("from batches ", want);
        fail_msg("%s: the epoch cache does not match the batches", what);
    }
    rn_lep_free(want);
}

/* What DIR/leader-epoch-checkpoint holds now, read by a fresh cache. */
static rn_lep_t *load_file(const char *dir, rn_err_t *err)
{
    rn_lep_t *c;
    assert_int_equal(rn_lep_new(dir, rn_io_posix(), &c), RN_OK);
    *err = rn_lep_load(c);
    return c;
}

static void assert_file(const char *dir, const rn_lep_entry_t *want, size_t n)
{
    rn_err_t err;
    rn_lep_t *c = load_file(dir, &err);
    if (err != RN_OK)
        fail_msg("%s/%s does not load: %s", dir, RN_LEP_FILE, rn_err_name(err));
    assert_cache(c, want, n);
    rn_lep_free(c);
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------ cache alone ---- */

static void test_cache_assign_and_truncate(void **state)
{
    (void)state;
    rn_lep_t *c = new_cache();
    rn_lep_entry_t e;
    assert_false(rn_lep_latest(c, &e));
    assert_int_equal(rn_lep_assign(c, 0, 0), RN_OK);
    assert_int_equal(rn_lep_assign(c, 0, 40), RN_OK); /* the epoch goes on */
    assert_int_equal(rn_lep_assign(c, 2, 100), RN_OK);
    assert_int_equal(rn_lep_assign(c, 3, 250), RN_OK);
    assert_true(rn_lep_dirty(c));
    assert_cache(c, (rn_lep_entry_t[]){{0, 0}, {2, 100}, {3, 250}}, 3);
    assert_true(rn_lep_latest(c, &e) && e.epoch == 3 && e.start_offset == 250);

    /* An older epoch after batches of a newer one: refused, nothing changes. */
    assert_int_equal(rn_lep_assign(c, 1, 300), RN_ERR_STATE);
    assert_int_equal(rn_lep_assign(c, 2, 300), RN_ERR_STATE);
    assert_cache(c, (rn_lep_entry_t[]){{0, 0}, {2, 100}, {3, 250}}, 3);

    /* A newer epoch at the start of one that wrote nothing replaces it (becomeLeader twice). */
    assert_int_equal(rn_lep_assign(c, 5, 400), RN_OK);
    assert_int_equal(rn_lep_assign(c, 6, 400), RN_OK);
    assert_cache(c, (rn_lep_entry_t[]){{0, 0}, {2, 100}, {3, 250}, {6, 400}}, 4);
    /* ... and so does an older one: epoch 6 had no batches at or below 400. */
    assert_int_equal(rn_lep_assign(c, 4, 400), RN_OK);
    assert_cache(c, (rn_lep_entry_t[]){{0, 0}, {2, 100}, {3, 250}, {4, 400}}, 4);

    /* Truncation from the end: entries starting at or past the new end go. */
    assert_false(rn_lep_truncate_from_end(c, 401));
    assert_true(rn_lep_truncate_from_end(c, 400));
    assert_false(rn_lep_truncate_from_end(c, 251)); /* epoch 3 still has 250 */
    assert_cache(c, (rn_lep_entry_t[]){{0, 0}, {2, 100}, {3, 250}}, 3);
    assert_true(rn_lep_truncate_from_end(c, 250));
    assert_cache(c, (rn_lep_entry_t[]){{0, 0}, {2, 100}}, 2);
    assert_int_equal(rn_lep_assign(c, 3, 250), RN_OK);

    /* From the start: the entry that covers the new start stays, moved up to it. */
    assert_false(rn_lep_truncate_from_start(c, 0));
    assert_true(rn_lep_truncate_from_start(c, 120));
    assert_cache(c, (rn_lep_entry_t[]){{2, 120}, {3, 250}}, 2);
    assert_true(rn_lep_truncate_from_start(c, 250)); /* exactly an epoch start */
    assert_cache(c, (rn_lep_entry_t[]){{3, 250}}, 1);
    assert_true(rn_lep_truncate_from_start(c, 900));
    assert_cache(c, (rn_lep_entry_t[]){{3, 900}}, 1);

    /* Lenient (rebuild) assignment never refuses: it drops what contradicts the batch. */
    rn_lep_assign_lenient(c, 1, 950);
    assert_cache(c, (rn_lep_entry_t[]){{1, 950}}, 1);
    rn_lep_clear(c);
    assert_int_equal(rn_lep_count(c), 0);
    rn_lep_free(c);
}

static void test_offset_for_leader_epoch(void **state)
{
    (void)state;
    rn_lep_t *c = cache_of((rn_lep_entry_t[]){{1, 10}, {2, 100}, {5, 250}}, 3);
    rn_lep_answer_t a;
    /* A known epoch ends where the next starts; the latest at the log end. */
    assert_int_equal(rn_lep_end_offset_for(c, 1, 300, &a), RN_OK);
    assert_true(a.epoch == 1 && a.end_offset == 100);
    assert_int_equal(rn_lep_end_offset_for(c, 2, 300, &a), RN_OK);
    assert_true(a.epoch == 2 && a.end_offset == 250);
    assert_int_equal(rn_lep_end_offset_for(c, 5, 300, &a), RN_OK);
    assert_true(a.epoch == 5 && a.end_offset == 300);
    /* An unknown epoch: the largest known below it (KIP-279), ending where the next starts. */
    assert_int_equal(rn_lep_end_offset_for(c, 3, 300, &a), RN_OK);
    assert_true(a.epoch == 2 && a.end_offset == 250);
    assert_int_equal(rn_lep_end_offset_for(c, 4, 300, &a), RN_OK);
    assert_true(a.epoch == 2 && a.end_offset == 250);
    assert_int_equal(rn_lep_end_offset_for(c, 9, 300, &a), RN_OK);
    assert_true(a.epoch == 5 && a.end_offset == 300);
    /* Nothing at or below: KIP-101's fallback to the high watermark is the caller's. */
    assert_int_equal(rn_lep_end_offset_for(c, 0, 300, &a), RN_ERR_NOT_FOUND);
    rn_lep_t *empty = new_cache();
    assert_int_equal(rn_lep_end_offset_for(empty, 7, 0, &a), RN_ERR_NOT_FOUND);
    rn_lep_free(empty);
    rn_lep_free(c);
}

/*
 * One follower/leader exchange until done, as replica.c will run it: ask with the follower's
 * latest epoch, truncate the follower (cache and end), repeat while not done. Returns the
 * final end and the rounds it took.
 */
static uint64_t reconcile(rn_lep_t *follower, uint64_t follower_end, const rn_lep_t *leader,
                          uint64_t leader_end, int *rounds)
{
    *rounds = 0;
    for (;;) {
        rn_lep_entry_t latest;
        assert_true(rn_lep_latest(follower, &latest));
        rn_lep_answer_t a;
        assert_int_equal(rn_lep_end_offset_for(leader, latest.epoch, leader_end, &a), RN_OK);
        bool done;
        uint64_t to = rn_lep_truncation_point(follower, follower_end, &a, &done);
        (*rounds)++;
        assert_true(to <= follower_end);
        follower_end = to;
        rn_lep_truncate_from_end(follower, to);
        if (done)
            return follower_end;
        assert_true(*rounds < 10);
    }
}

static void test_kip101_kip279_scenarios(void **state)
{
    (void)state;
    int rounds;
    rn_lep_answer_t a;
    bool done;

    /*
     * KIP-101, lost data: A led epoch 0 and has offsets 0..1, B has only 0; B restarts. With
     * the high watermark (1) B would truncate m1 away and lose it if A then died. By epoch B
     * asks for epoch 0, A says it ends at A's log end 2: B keeps everything it has.
     */
    rn_lep_t *a_cache = cache_of((rn_lep_entry_t[]){{0, 0}}, 1);
    rn_lep_t *b_cache = cache_of((rn_lep_entry_t[]){{0, 0}}, 1);
    assert_true(reconcile(b_cache, 1, a_cache, 2, &rounds) == 1);
    assert_int_equal(rounds, 1);
    rn_lep_free(a_cache);
    rn_lep_free(b_cache);

    /*
     * KIP-101, divergence: A has 0..1 in epoch 0, B has 0. Both crash; B comes back first,
     * leads epoch 1 and writes offset 1 (a different m1). A returns as follower, asks for
     * epoch 0, B answers "ends at 1": A cuts its own offset 1, the logs agree again.
     */
    rn_lep_t *leader = cache_of((rn_lep_entry_t[]){{0, 0}, {1, 1}}, 2);
    rn_lep_t *follower = cache_of((rn_lep_entry_t[]){{0, 0}}, 1);
    assert_true(reconcile(follower, 2, leader, 2, &rounds) == 1);
    assert_int_equal(rounds, 1);
    rn_lep_free(leader);
    rn_lep_free(follower);

    /*
     * KIP-279, two quick leader changes: epoch 0 wrote 0..9 everywhere but A got only 0..7.
     * A led epoch 1 and wrote 8..11 alone, then B (with 0..9 of epoch 0) led epoch 2 and
     * wrote 10..14. A asks for epoch 1, which B never saw: B answers epoch 0, ending at 10.
     * Plain KIP-101 (end of the requested epoch without saying which) would leave A at 10
     * holding its own 8..9 of epoch 1 where B has epoch 0's 8..9. With the answered epoch, A
     * cuts at its own end of epoch 0, 8, and fetches B's 8..9.
     */
    leader = cache_of((rn_lep_entry_t[]){{0, 0}, {2, 10}}, 2);
    follower = cache_of((rn_lep_entry_t[]){{0, 0}, {1, 8}}, 2);
    assert_int_equal(rn_lep_end_offset_for(leader, 1, 15, &a), RN_OK);
    assert_true(a.epoch == 0 && a.end_offset == 10);
    assert_true(rn_lep_truncation_point(follower, 12, &a, &done) == 8);
    assert_true(done);
    assert_true(reconcile(follower, 12, leader, 15, &rounds) == 8);
    assert_cache(follower, (rn_lep_entry_t[]){{0, 0}}, 1);
    rn_lep_free(leader);
    rn_lep_free(follower);

    /*
     * KIP-279, the answered epoch is one the follower never had: leader epochs 0, 1 (at 30),
     * 3 (at 50); follower 0, 2 (at 40), end 60. Ask 2 -> (1, 50); the follower has no epoch 1,
     * so it cuts to its own end of epoch 0 (40) and asks again: 0 -> (0, 30) -> cut to 30.
     */
    leader = cache_of((rn_lep_entry_t[]){{0, 0}, {1, 30}, {3, 50}}, 3);
    follower = cache_of((rn_lep_entry_t[]){{0, 0}, {2, 40}}, 2);
    assert_int_equal(rn_lep_end_offset_for(leader, 2, 70, &a), RN_OK);
    assert_true(a.epoch == 1 && a.end_offset == 50);
    assert_true(rn_lep_truncation_point(follower, 60, &a, &done) == 40);
    assert_false(done);
    assert_true(reconcile(follower, 60, leader, 70, &rounds) == 30);
    assert_int_equal(rounds, 2);
    rn_lep_free(leader);
    rn_lep_free(follower);

    /* The follower is behind in the same epoch: nothing to cut. */
    leader = cache_of((rn_lep_entry_t[]){{0, 0}, {4, 20}}, 2);
    follower = cache_of((rn_lep_entry_t[]){{0, 0}, {4, 20}}, 2);
    assert_true(reconcile(follower, 25, leader, 90, &rounds) == 25);
    rn_lep_free(follower);

    /* A follower with no epoch at or below the answer cuts to the leader's end offset. */
    follower = cache_of((rn_lep_entry_t[]){{4, 20}}, 1);
    a = (rn_lep_answer_t){0, 15};
    assert_true(rn_lep_truncation_point(follower, 25, &a, &done) == 15);
    assert_true(done);
    rn_lep_free(follower);

    /* No-epoch fallback: the leader's log starts past the follower's latest epoch. */
    rn_lep_truncate_from_start(leader, 30);
    rn_lep_truncate_from_end(leader, 25); /* keep only epoch 4 from 30 ... */
    rn_lep_assign(leader, 4, 30);
    assert_int_equal(rn_lep_end_offset_for(leader, 3, 90, &a), RN_ERR_NOT_FOUND);
    rn_lep_free(leader);
}

static void test_cache_file(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    assert_int_equal(mkdir(dir, 0755), 0);
    rn_lep_t *c;
    assert_int_equal(rn_lep_new(dir, rn_io_posix(), &c), RN_OK);
    assert_int_equal(rn_lep_load(c), RN_ERR_NOT_FOUND);
    assert_int_equal(rn_lep_persist(c), RN_OK); /* clean: nothing written */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, RN_LEP_FILE);
    assert_true(access(path, F_OK) < 0);
    for (uint32_t e = 0; e < 1000; e++)
        assert_int_equal(rn_lep_assign(c, e * 2, (uint64_t)e * 1000), RN_OK);
    assert_int_equal(rn_lep_persist(c), RN_OK);
    assert_false(rn_lep_dirty(c));
    rn_lep_t *d;
    rn_err_t err;
    d = load_file(dir, &err);
    assert_int_equal(err, RN_OK);
    assert_true(cache_equal(c, d));
    rn_lep_free(d);
    /* Every torn length and every flipped byte is detected. */
    int64_t size = rn_t_file_size(path);
    uint8_t *orig = malloc((size_t)size);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(orig, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    for (int64_t cut = 0; cut < size; cut += 1 + cut / 7) {
        assert_int_equal(truncate(path, cut), 0);
        d = load_file(dir, &err);
        assert_int_equal(err, RN_ERR_CORRUPT);
        assert_int_equal(rn_lep_count(d), 0);
        rn_lep_free(d);
    }
    for (int64_t at = 0; at < size; at += 1 + at / 5) {
        uint8_t *b = malloc((size_t)size);
        memcpy(b, orig, (size_t)size);
        b[at] ^= 0x10;
        f = fopen(path, "wb");
        fwrite(b, 1, (size_t)size, f);
        fclose(f);
        free(b);
        d = load_file(dir, &err);
        assert_int_equal(err, RN_ERR_CORRUPT);
        rn_lep_free(d);
    }
    free(orig);
    rn_lep_free(c);
}

/* ---------------------------------------------------------- in the log ---- */

static void test_leader_epochs_persist(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 4096;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    assert_int_equal(rn_lep_count(rn_log_epochs(log)), 0);
    for (int i = 0; i < 10; i++)
        lead(log, 0, 5, i);
    /* becomeLeader(2) before any append of epoch 2, then epoch 2 writes. */
    assert_int_equal(rn_log_assign_epoch(log, 2), RN_OK);
    assert_cache(rn_log_epochs(log), (rn_lep_entry_t[]){{0, 0}, {2, 50}}, 2);
    assert_file(dir, (rn_lep_entry_t[]){{0, 0}, {2, 50}}, 2);
    for (int i = 0; i < 10; i++)
        lead(log, 2, 5, i);
    /* A quick succession: epoch 3 never writes, epoch 4 does. */
    assert_int_equal(rn_log_assign_epoch(log, 3), RN_OK);
    assert_int_equal(rn_log_assign_epoch(log, 3), RN_OK);
    lead(log, 4, 5, 0);
    lead(log, 4, 5, 0);
    rn_lep_entry_t want[] = {{0, 0}, {2, 50}, {4, 100}};
    assert_cache(rn_log_epochs(log), want, 3);
    assert_cache_matches_batches(log, "after leader appends");
    /* A deposed leader's append with an older epoch is refused. */
    rn_buf_t buf = RN_BUF_INIT;
    build_batch(&buf, 3, 0);
    rn_log_append_info_t info;
    assert_int_equal(rn_log_append(log, buf.data, buf.len, 3, &info), RN_ERR_STATE);
    assert_int_equal(rn_log_assign_epoch(log, 2), RN_ERR_STATE);
    rn_buf_free(&buf);
    assert_true(rn_log_end_offset(log) == 110);

    /* OffsetForLeaderEpoch through the log. */
    rn_lep_answer_t a;
    assert_int_equal(rn_log_end_offset_for_epoch(log, 3, &a), RN_OK);
    assert_true(a.epoch == 2 && a.end_offset == 100);
    assert_int_equal(rn_log_end_offset_for_epoch(log, 4, &a), RN_OK);
    assert_true(a.epoch == 4 && a.end_offset == 110);

    /* Clean close and open. */
    assert_int_equal(rn_log_close(log), RN_OK);
    assert_file(dir, want, 3);
    log = open_log(dir, &cfg, NULL);
    assert_true(rn_log_recovery(log)->clean);
    assert_cache(rn_log_epochs(log), want, 3);
    /* A crash right after: the same. */
    lead(log, 4, 5, 0);
    rn_log_abandon(log);
    log = open_log(dir, &cfg, NULL);
    assert_false(rn_log_recovery(log)->clean);
    assert_cache(rn_log_epochs(log), want, 3);
    assert_int_equal(rn_log_close(log), RN_OK);

    /* No checkpoint (a log from before it existed): rebuilt from every header, then written. */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, RN_LEP_FILE);
    assert_int_equal(unlink(path), 0);
    log = open_log(dir, &cfg, NULL);
    assert_cache(rn_log_epochs(log), want, 3);
    assert_file(dir, want, 3);
    rn_log_close(log);
    /* A damaged one likewise, after a clean or an unclean stop. */
    for (int clean = 0; clean < 2; clean++) {
        FILE *f = fopen(path, "r+b");
        fseek(f, 20, SEEK_SET);
        fputc(0x77, f);
        fclose(f);
        log = open_log(dir, &cfg, NULL);
        assert_cache(rn_log_epochs(log), want, 3);
        if (clean)
            rn_log_close(log);
        else
            rn_log_abandon(log);
    }
}

/*
 * A follower whose newest epoch holds no batch (it was elected, then lost leadership at once):
 * F (3,100) (5,200), end 200; the leader (3,100) (4,200) (6,250). F asks with 5 and the answer
 * (epoch 4, end 250) cuts nothing: the point is F's end. Dropping the empty epoch 5
 * (rn_log_drop_epochs_from) makes the next round ask with 3 and finish, and F can then append
 * the leader's epoch-4 batches (an epoch below a cached 5 would be refused).
 */
static void test_kip279_empty_epoch_round(void **state)
{
    struct fx *fx = *state;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    rn_log_t *f = open_log(fx->dir, &cfg, NULL);
    rn_buf_t buf = RN_BUF_INIT;
    replica_batch(&buf, 0, 1, 100);
    replica_batch(&buf, 100, 3, 100);
    rn_log_append_info_t info;
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
    assert_int_equal(rn_log_assign_epoch(f, 5), RN_OK); /* becomeLeader(5), no append */
    const rn_lep_entry_t leader_entries[] = {{1, 0}, {3, 100}, {4, 200}, {6, 250}};
    rn_lep_t *leader = cache_of(leader_entries, 4);

    rn_lep_entry_t latest;
    assert_true(rn_lep_latest(rn_log_epochs(f), &latest));
    assert_int_equal(latest.epoch, 5);
    rn_lep_answer_t a;
    assert_int_equal(rn_lep_end_offset_for(leader, latest.epoch, 300, &a), RN_OK);
    assert_int_equal(a.epoch, 4);
    bool done = true;
    uint64_t point = rn_lep_truncation_point(rn_log_epochs(f), rn_log_end_offset(f), &a, &done);
    assert_false(done);
    assert_true(point == rn_log_end_offset(f)); /* the round cuts nothing */
    /* below the end is refused; at the end the empty epoch goes */
    assert_int_equal(rn_log_drop_epochs_from(f, 199), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_log_drop_epochs_from(f, rn_log_end_offset(f)), RN_OK);
    assert_true(rn_lep_latest(rn_log_epochs(f), &latest));
    assert_int_equal(latest.epoch, 3);
    assert_int_equal(rn_lep_end_offset_for(leader, latest.epoch, 300, &a), RN_OK);
    point = rn_lep_truncation_point(rn_log_epochs(f), rn_log_end_offset(f), &a, &done);
    assert_true(done);
    assert_true(point == 200);
    /* the leader's epoch-4 batch now appends, and the file says so after a reopen */
    rn_buf_reset(&buf);
    replica_batch(&buf, 200, 4, 50);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
    const rn_lep_entry_t want[] = {{1, 0}, {3, 100}, {4, 200}};
    assert_cache(rn_log_epochs(f), want, 3);
    assert_int_equal(rn_log_close(f), RN_OK);
    assert_file(fx->dir, want, 3);
    rn_buf_free(&buf);
    rn_lep_free(leader);
}

/* A follower below the leader's log start starts over there (rn_log_reset), and stays so. */
static void test_reset_to_leader_start(void **state)
{
    struct fx *fx = *state;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    rn_log_t *f = open_log(fx->dir, &cfg, NULL);
    rn_buf_t buf = RN_BUF_INIT;
    replica_batch(&buf, 0, 1, 100);
    rn_log_append_info_t info;
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
    assert_int_equal(rn_log_reset(f, 100), RN_ERR_INVALID_ARG); /* not past the end */
    assert_int_equal(rn_log_reset(f, 5000), RN_OK);
    assert_true(rn_log_start_offset(f) == 5000 && rn_log_end_offset(f) == 5000);
    assert_int_equal(rn_lep_count(rn_log_epochs(f)), 0);
    rn_buf_reset(&buf);
    replica_batch(&buf, 5000, 7, 10);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
    assert_int_equal(rn_log_close(f), RN_OK);
    f = open_log(fx->dir, &cfg, NULL);
    assert_true(rn_log_start_offset(f) == 5000 && rn_log_end_offset(f) == 5010);
    const rn_lep_entry_t want[] = {{7, 5000}};
    assert_cache(rn_log_epochs(f), want, 1);
    assert_int_equal(rn_log_close(f), RN_OK);
    rn_buf_free(&buf);
}

static void test_replica_append(void **state)
{
    struct fx *fx = *state;
    char *leader_dir = part_dir(fx->root, "leader-0");
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 8192;
    /* The leader's log: epochs 1, 1, 3, 3, 3, 6, … */
    rn_log_t *leader = open_log(leader_dir, &cfg, NULL);
    uint32_t epoch = 1;
    for (int i = 0; i < 120; i++) {
        if (i % 17 == 5)
            epoch += 1 + (uint32_t)(i % 3);
        lead(leader, epoch, 1 + (uint32_t)(i % 7), i);
    }
    rn_log_t *f = open_log(fx->dir, &cfg, NULL);
    /* Copy in fetch-sized chunks, as a fetcher does. */
    uint64_t next = 0;
    while (next < rn_log_end_offset(leader)) {
        rn_buf_t buf = RN_BUF_INIT;
        rn_log_slice_t s;
        assert_int_equal(rn_log_read_copy(leader, next, UINT64_MAX, 700, &buf, &s), RN_OK);
        rn_log_append_info_t info;
        assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
        assert_true(info.first_offset == next && info.last_offset + 1 == s.next_offset);
        next = s.next_offset;
        rn_buf_free(&buf);
    }
    assert_true(rn_log_end_offset(f) == rn_log_end_offset(leader));
    assert_true(cache_equal(rn_log_epochs(f), rn_log_epochs(leader)));
    assert_cache_matches_batches(f, "follower");
    /* Byte for byte the leader's batches. */
    rn_buf_t a = RN_BUF_INIT, b = RN_BUF_INIT;
    for (uint64_t o = 0; o < rn_log_end_offset(f);) {
        rn_log_slice_t sa, sb;
        rn_buf_reset(&a);
        rn_buf_reset(&b);
        assert_int_equal(rn_log_read_copy(leader, o, UINT64_MAX, 1 << 20, &a, &sa), RN_OK);
        assert_int_equal(rn_log_read_copy(f, o, UINT64_MAX, sa.len, &b, &sb), RN_OK);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        o = sa.next_offset;
    }
    rn_buf_free(&a);
    rn_buf_free(&b);

    uint64_t end = rn_log_end_offset(f);
    rn_lep_entry_t latest;
    assert_true(rn_lep_latest(rn_log_epochs(f), &latest));
    rn_log_append_info_t info;
    rn_buf_t buf = RN_BUF_INIT;
    /* A gap, an overlap and a batch of the past are refused, nothing written. */
    uint64_t bad_bases[] = {end + 1, end - 1, 0, end + 1000};
    for (size_t i = 0; i < 4; i++) {
        rn_buf_reset(&buf);
        replica_batch(&buf, bad_bases[i], latest.epoch, 2);
        assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_ERR_STATE);
    }
    /* Not contiguous inside the span. */
    rn_buf_reset(&buf);
    replica_batch(&buf, end, latest.epoch, 2);
    replica_batch(&buf, end + 3, latest.epoch, 2);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_ERR_CORRUPT_MESSAGE);
    /* An epoch going back inside the span, or below the log's newest. */
    rn_buf_reset(&buf);
    replica_batch(&buf, end, latest.epoch + 2, 2);
    replica_batch(&buf, end + 2, latest.epoch + 1, 2);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_ERR_CORRUPT_MESSAGE);
    rn_buf_reset(&buf);
    replica_batch(&buf, end, latest.epoch - 1, 2);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_ERR_STATE);
    /* A flipped byte (checksum) and a torn batch. */
    rn_buf_reset(&buf);
    replica_batch(&buf, end, latest.epoch, 2);
    buf.data[buf.len - 3] ^= 1;
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_ERR_CORRUPT_MESSAGE);
    buf.data[buf.len - 3] ^= 1;
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len - 1, &info),
                     RN_ERR_CORRUPT_MESSAGE);
    assert_int_equal(rn_log_append_replica(f, buf.data, 0, &info), RN_ERR_CORRUPT_MESSAGE);
    assert_true(rn_log_end_offset(f) == end);
    assert_true(cache_equal(rn_log_epochs(f), rn_log_epochs(leader)));

    /* Several new epochs in one span, all recorded, and durable before the batches. */
    rn_buf_reset(&buf);
    replica_batch(&buf, end, latest.epoch, 2);
    replica_batch(&buf, end + 2, latest.epoch + 1, 3);
    replica_batch(&buf, end + 5, latest.epoch + 1, 1);
    replica_batch(&buf, end + 6, latest.epoch + 5, 1);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
    assert_true(info.first_offset == end && info.last_offset == end + 6 && info.batch_count == 4);
    rn_lep_entry_t l2;
    assert_true(rn_lep_latest(rn_log_epochs(f), &l2));
    assert_true(l2.epoch == latest.epoch + 5 && l2.start_offset == end + 6);
    assert_cache_matches_batches(f, "multi-epoch span");
    rn_log_abandon(f);
    f = open_log(fx->dir, &cfg, NULL);
    assert_cache_matches_batches(f, "multi-epoch span after a crash");

    /* A follower that had become leader of an epoch it never wrote: the leader's older epoch
     * continues at the same offset and replaces it. */
    assert_int_equal(rn_log_assign_epoch(f, l2.epoch + 10), RN_OK);
    rn_buf_reset(&buf);
    replica_batch(&buf, rn_log_end_offset(f), l2.epoch + 3, 2);
    assert_int_equal(rn_log_append_replica(f, buf.data, buf.len, &info), RN_OK);
    assert_cache_matches_batches(f, "after an empty epoch");
    rn_buf_free(&buf);
    rn_log_close(f);
    rn_log_close(leader);
    free(leader_dir);
}

static void test_truncation_and_retention(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_clock_manual_t clock;
    rn_clock_manual_init(&clock, 10 * 1000 * 1000);
    rn_log_env_t env = {&clock.clock, NULL};
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 1024;
    cfg.retention_ms = 60 * 1000;
    rn_log_t *log = open_log(dir, &cfg, &env);
    /* Epoch e covers offsets [10 e, 10 e + 10) for e = 0 … 9: ten batches of one record. */
    for (uint32_t e = 0; e < 10; e++) {
        for (int i = 0; i < 10; i++)
            lead(log, e, 1, clock.now_ms);
        clock.now_ms += 10 * 1000;
    }
    assert_true(rn_log_segment_count(log) > 4);
    assert_int_equal(rn_lep_count(rn_log_epochs(log)), 10);
    assert_int_equal(rn_log_flush(log), RN_OK); /* the recovery point is past the cuts below */

    /* Inside epoch 7: epochs 8 and 9 go, 7 stays. At an epoch's start: that epoch goes too. */
    assert_int_equal(rn_log_truncate(log, 75), RN_OK);
    assert_true(rn_log_end_offset(log) == 75);
    assert_int_equal(rn_lep_count(rn_log_epochs(log)), 8);
    assert_int_equal(rn_log_truncate(log, 70), RN_OK);
    assert_int_equal(rn_lep_count(rn_log_epochs(log)), 7);
    assert_cache_matches_batches(log, "after truncation");
    rn_err_t err;
    rn_lep_t *file = load_file(dir, &err);
    assert_int_equal(err, RN_OK);
    assert_true(cache_equal(file, rn_log_epochs(log)));
    rn_lep_free(file);
    /* Truncate, the same epoch 6 goes on, a crash: the stale entries must not come back. */
    for (int i = 0; i < 5; i++)
        lead(log, 6, 1, clock.now_ms);
    rn_log_abandon(log);
    log = open_log(dir, &cfg, &env);
    assert_cache_matches_batches(log, "truncate, append, crash");
    assert_int_equal(rn_lep_count(rn_log_epochs(log)), 7);
    /* Re-append after truncation in a new epoch. */
    assert_int_equal(rn_log_truncate(log, 72), RN_OK);
    lead(log, 11, 3, clock.now_ms);
    assert_cache_matches_batches(log, "re-append");
    rn_lep_answer_t a;
    assert_int_equal(rn_log_end_offset_for_epoch(log, 9, &a), RN_OK);
    assert_true(a.epoch == 6 && a.end_offset == 72);

    /* Retention: the start moves into epoch 3 or so; the entry covering it starts there. */
    clock.now_ms += 30 * 1000;
    uint32_t deleted;
    assert_int_equal(rn_log_apply_retention(log, &deleted), RN_OK);
    assert_true(deleted > 0);
    uint64_t start = rn_log_start_offset(log);
    assert_true(start > 0);
    rn_lep_entry_t first = rn_lep_get(rn_log_epochs(log), 0);
    assert_true(first.start_offset == start);
    assert_cache_matches_batches(log, "after retention");
    file = load_file(dir, &err);
    assert_true(cache_equal(file, rn_log_epochs(log)));
    rn_lep_free(file);
    /* Below the start no epoch is known: the fallback answer. */
    if (first.epoch > 0)
        assert_int_equal(rn_log_end_offset_for_epoch(log, first.epoch - 1, &a), RN_ERR_NOT_FOUND);
    rn_log_close(log);
    log = open_log(dir, &cfg, &env);
    assert_true(rn_log_start_offset(log) == start);
    assert_cache_matches_batches(log, "after retention and reopen");
    /* Truncation to the start empties it; the next epoch starts there. */
    assert_int_equal(rn_log_truncate(log, start), RN_OK);
    assert_int_equal(rn_lep_count(rn_log_epochs(log)), 0);
    lead(log, 12, 1, clock.now_ms);
    assert_cache(rn_log_epochs(log), (rn_lep_entry_t[]){{12, start}}, 1);
    rn_log_close(log);
}

/*
 * Crash recovery: leader and follower appends with epochs changing at random, random flushes,
 * then the active segment cut at many random positions at or after the flushed point (with
 * garbage over the tail now and then) and reopened. The cache must equal what the surviving
 * batches imply, and appends of a new epoch must go on from there.
 */
static void test_crash_recovery_cuts(void **state)
{
    uint64_t rng = rn_t_seed("epoch crash recovery");
    int cuts = getenv("RUNNEL_TEST_CUTS") ? atoi(getenv("RUNNEL_TEST_CUTS")) : 400;
    struct fx *fx = *state;
    char *scratch = part_dir(fx->root, "scratch-0");
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 16 * 1024;
    cfg.index_interval_bytes = 1024;
    rn_log_t *log = open_log(fx->dir, &cfg, NULL);
    uint32_t epoch = 0;
    uint64_t flushed = 0;
    for (int i = 0; i < 300; i++) {
        if (rn_t_rng_below(&rng, 6) == 0)
            epoch += 1 + (uint32_t)rn_t_rng_below(&rng, 3);
        uint32_t count = 1 + (uint32_t)rn_t_rng_below(&rng, 12);
        if (rn_t_rng_below(&rng, 2)) {
            lead(log, epoch, count, i);
        } else {
            rn_buf_t buf = RN_BUF_INIT;
            replica_batch(&buf, rn_log_end_offset(log), epoch, count);
            rn_log_append_info_t info;
            assert_int_equal(rn_log_append_replica(log, buf.data, buf.len, &info), RN_OK);
            rn_buf_free(&buf);
        }
        if (rn_t_rng_below(&rng, 20) == 0) {
            assert_int_equal(rn_log_flush(log), RN_OK);
            flushed = rn_log_end_offset(log);
        }
    }
    /* An unflushed tail that crosses a few epoch starts and a segment roll, for the cuts. */
    for (int i = 0; i < 60; i++) {
        if (i % 12 == 0)
            epoch++;
        lead(log, epoch, 1 + (uint32_t)rn_t_rng_below(&rng, 12), i);
    }
    assert_true(rn_log_segment_count(log) >= 3);
    uint32_t final_epoch = epoch;
    /* Where the unflushed part of the active segment begins (one batch per read). */
    uint64_t active_base = 0, flushed_batch_pos = 0, end = rn_log_end_offset(log);
    for (uint64_t o = rn_log_start_offset(log); o < end;) {
        rn_log_slice_t s;
        assert_int_equal(rn_log_read(log, o, UINT64_MAX, 1, &s), RN_OK);
        if (s.pos == 0)
            active_base = s.first_offset;
        if (s.first_offset == flushed)
            flushed_batch_pos = s.pos;
        o = s.next_offset;
        rn_log_slice_release(&s);
    }
    uint64_t flushed_pos = flushed <= active_base ? 0
                           : flushed >= end       ? UINT64_MAX
                                                  : flushed_batch_pos;
    rn_log_abandon(log);
    char active_path[4400];
    snprintf(active_path, sizeof active_path, "%s/%020" PRIu64 ".log", scratch, active_base);
    size_t full_epochs;
    {
        rn_err_t err;
        rn_lep_t *file = load_file(fx->dir, &err);
        assert_int_equal(err, RN_OK);
        full_epochs = rn_lep_count(file);
        rn_lep_free(file);
    }
    int lost_epochs = 0;
    for (int c = 0; c < cuts; c++) {
        copy_dir(fx->dir, scratch);
        uint64_t size = (uint64_t)rn_t_file_size(active_path);
        uint64_t from = flushed_pos > size ? size : flushed_pos;
        uint64_t cut = from + rn_t_rng_below(&rng, (size_t)(size - from + 1));
        assert_int_equal(truncate(active_path, (off_t)cut), 0);
        if (c % 3 == 0 && cut > from + 8) {
            int fd = open(active_path, O_WRONLY);
            uint8_t junk[8];
            for (int k = 0; k < 8; k++)
                junk[k] = (uint8_t)rn_t_rng(&rng);
            assert_int_equal(pwrite(fd, junk, 8, (off_t)(cut - 8)), 8);
            close(fd);
        }
        if (c % 10 == 7) {
            /* Sometimes the checkpoint is gone as well: rebuilt from every header. */
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", scratch, RN_LEP_FILE);
            unlink(p);
        }
        rn_log_t *r = open_log(scratch, &cfg, NULL);
        if (rn_log_end_offset(r) < flushed)
            fail_msg("cut %d at %" PRIu64 ": flushed data lost", c, cut);
        char what[64];
        snprintf(what, sizeof what, "cut %d at byte %" PRIu64, c, cut);
        assert_cache_matches_batches(r, what);
        lost_epochs += rn_lep_count(rn_log_epochs(r)) < full_epochs;
        /* The file written at open says the same. */
        rn_err_t err;
        rn_lep_t *file = load_file(scratch, &err);
        if (rn_lep_count(rn_log_epochs(r)) > 0) {
            assert_int_equal(err, RN_OK);
            assert_true(cache_equal(file, rn_log_epochs(r)));
        }
        rn_lep_free(file);
        /* A new leader epoch goes on from the recovered end; a second crash keeps it. */
        uint64_t base = lead(r, final_epoch + 1, 2, 0);
        rn_lep_entry_t latest;
        assert_true(rn_lep_latest(rn_log_epochs(r), &latest));
        assert_true(latest.epoch == final_epoch + 1 && latest.start_offset == base);
        rn_log_abandon(r);
        r = open_log(scratch, &cfg, NULL);
        assert_cache_matches_batches(r, "second crash");
        rn_log_abandon(r);
    }
    print_message("%d epochs in the log; %d of %d cuts lost the start of one or more\n",
                  (int)full_epochs, lost_epochs, cuts);
    assert_true(lost_epochs > 0);
    free(scratch);
}

/*
 * A follower killed with SIGKILL in the middle of its appends, five times over: each child
 * reopens the log, appends replica batches with epochs moving on and flushes now and then,
 * reporting each flushed offset through a pipe. After each kill the log is reopened: nothing
 * flushed is lost and the epoch cache equals the batches.
 */
static void follower_child(const char *dir, const rn_log_config_t *cfg, int out, uint64_t seed)
{
    rn_log_t *log;
    if (rn_log_open(dir, cfg, NULL, &log, NULL, 0) != RN_OK)
        _exit(2);
    rn_lep_entry_t latest = {0, 0};
    rn_lep_latest(rn_log_epochs(log), &latest);
    uint32_t epoch = latest.epoch;
    for (uint64_t i = 0;; i++) {
        if (rn_t_rng_below(&seed, 8) == 0)
            epoch++;
        rn_buf_t buf = RN_BUF_INIT;
        replica_batch(&buf, rn_log_end_offset(log), epoch, 1 + (uint32_t)rn_t_rng_below(&seed, 10));
        rn_log_append_info_t info;
        if (rn_log_append_replica(log, buf.data, buf.len, &info) != RN_OK)
            _exit(3);
        rn_buf_free(&buf);
        if (i % 10 == 9) {
            if (rn_log_flush(log) != RN_OK)
                _exit(4);
            uint64_t flushed = rn_log_flushed_offset(log);
            if (write(out, &flushed, sizeof flushed) != sizeof flushed)
                _exit(5);
        }
    }
}

static void test_sigkill_during_follower_appends(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    uint64_t rng = rn_t_seed("sigkill follower");
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 64 * 1024;
    uint64_t flushed = 0;
    for (int round = 0; round < 5; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        uint64_t seed = rn_t_rng(&rng);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            follower_child(dir, &cfg, fds[1], seed);
        }
        close(fds[1]);
        struct timespec ts = {0, (long)(50 + rn_t_rng_below(&rng, 200)) * 1000 * 1000};
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("round %d: the child ended by itself (status %d)", round, status);
        uint64_t f;
        while (read(fds[0], &f, sizeof f) == sizeof f)
            flushed = f > flushed ? f : flushed;
        close(fds[0]);
        rn_log_t *log = open_log(dir, &cfg, NULL);
        assert_false(rn_log_recovery(log)->clean);
        if (rn_log_end_offset(log) < flushed)
            fail_msg("round %d: end %" PRIu64 " below the flushed %" PRIu64, round,
                     rn_log_end_offset(log), flushed);
        assert_cache_matches_batches(log, "after SIGKILL");
        print_message("round %d: end %" PRIu64 ", %zu epochs\n", round, rn_log_end_offset(log),
                      rn_lep_count(rn_log_epochs(log)));
        rn_log_close(log);
    }
    assert_true(flushed > 0);
}

/* ---- fault injection through the io vtable ---- */

struct faulty {
    rn_io_t io;
    int ops_left;   /* fail the pwrite/fdatasync/rename after this many; -1 never */
    int ops;        /* counted while armed */
};

static bool faulty_fire(struct faulty *f)
{
    if (f->ops_left < 0)
        return false;
    f->ops++;
    if (f->ops_left == 0)
        return true;
    f->ops_left--;
    return false;
}

static ssize_t faulty_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    if (faulty_fire(ctx)) {
        if (len > 1)
            pwrite(fd, buf, len / 2, off); /* a partial write first, as a filling disk does */
        errno = ENOSPC;
        return -1;
    }
    return rn_io_posix()->pwrite(NULL, fd, buf, len, off);
}

static int faulty_fdatasync(void *ctx, int fd)
{
    if (faulty_fire(ctx)) {
        errno = EIO;
        return -1;
    }
    return rn_io_posix()->fdatasync(NULL, fd);
}

static int faulty_rename(void *ctx, const char *from, const char *to)
{
    if (faulty_fire(ctx)) {
        errno = EIO;
        return -1;
    }
    return rn_io_posix()->rename(NULL, from, to);
}

static void faulty_init(struct faulty *f)
{
    f->io = *rn_io_posix();
    f->io.pwrite = faulty_pwrite;
    f->io.fdatasync = faulty_fdatasync;
    f->io.rename = faulty_rename;
    f->io.ctx = f;
    f->ops_left = -1;
    f->ops = 0;
}

/* The file either still loads as `old`, or (after the rename) as `now`; never broken. */
static void assert_file_old_or(const char *dir, const rn_lep_t *old, const rn_lep_t *now,
                               bool must_be_old)
{
    rn_err_t err;
    rn_lep_t *c = load_file(dir, &err);
    assert_int_equal(err, RN_OK);
    if (must_be_old)
        assert_true(cache_equal(c, old));
    else
        assert_true(cache_equal(c, old) || cache_equal(c, now));
    rn_lep_free(c);
}

static rn_lep_t *copy_cache(const rn_lep_t *src)
{
    rn_lep_t *c = new_cache();
    for (size_t i = 0; i < rn_lep_count(src); i++) {
        rn_lep_entry_t e = rn_lep_get(src, i);
        assert_int_equal(rn_lep_assign(c, e.epoch, e.start_offset), RN_OK);
    }
    return c;
}

enum fault_op { OP_LEADER, OP_REPLICA, OP_BECOME_LEADER, OP_TRUNCATE };

/*
 * Fails the Nth write, fsync or rename for N = 0, 1, 2 … of one operation that changes the
 * epochs, until it succeeds. Each time: the operation reports the error, the log end and the
 * in-memory cache are as before (a truncation excepted: its data is cut), the checkpoint file
 * still loads - as the old cache when the failure came before the rename - and after the fault
 * clears the operation succeeds, and a crash then recovers a cache equal to the batches.
 */
static void fault_loop(enum fault_op op)
{
    bool succeeded = false;
    for (int n = 0; !succeeded; n++) {
        assert_true(n < 50);
        char *root = rn_t_tmpdir("rnlep"), *dir = part_dir(root, "events-0");
        struct faulty f;
        faulty_init(&f);
        rn_log_env_t env = {NULL, &f.io};
        rn_log_config_t cfg;
        rn_log_config_default(&cfg);
        rn_log_t *log = open_log(dir, &cfg, &env);
        for (uint32_t e = 1; e <= 3; e++)
            for (int i = 0; i < 4; i++)
                lead(log, e, 5, i);
        rn_lep_t *old = copy_cache(rn_log_epochs(log));
        uint64_t end = rn_log_end_offset(log);
        rn_buf_t buf = RN_BUF_INIT;
        rn_log_append_info_t info;
        f.ops_left = n;
        f.ops = 0;
        rn_err_t err = RN_OK;
        switch (op) {
        case OP_LEADER:
            build_batch(&buf, 2, 0);
            err = rn_log_append(log, buf.data, buf.len, 7, &info);
            break;
        case OP_REPLICA:
            replica_batch(&buf, end, 3, 2);
            replica_batch(&buf, end + 2, 8, 2);
            err = rn_log_append_replica(log, buf.data, buf.len, &info);
            break;
        case OP_BECOME_LEADER:
            err = rn_log_assign_epoch(log, 9);
            break;
        case OP_TRUNCATE:
            err = rn_log_truncate(log, 25); /* inside epoch 2: epoch 3 goes */
            break;
        }
        bool fired = f.ops > n;
        f.ops_left = -1;
        if (!fired) {
            assert_int_equal(err, RN_OK);
            print_message("op %d: succeeded after failing each of its first %d I/O calls\n", op, n);
            assert_true(n >= 4); /* temp write, its fsync, rename, directory fsync at least */
            succeeded = true;
        } else if (err == RN_OK) {
            /* The fault hit something after the operation's own I/O (nothing here does). */
            fail_msg("op %d: fault %d fired but the operation succeeded", op, n);
        } else {
            assert_true(err == RN_ERR_NO_SPACE || err == RN_ERR_IO);
            if (op == OP_TRUNCATE) {
                /* The data was cut first; the file may lag, and the next append writes it. */
                assert_true(rn_log_end_offset(log) == 25);
                assert_cache(rn_log_epochs(log), (rn_lep_entry_t[]){{1, 0}, {2, 20}}, 2);
                rn_lep_t *cut = copy_cache(old);
                rn_lep_truncate_from_end(cut, 25);
                assert_file_old_or(dir, old, cut, n < 3);
                rn_lep_free(cut);
                lead(log, 2, 1, 0); /* epoch 2 goes on: the checkpoint is written first */
                assert_file(dir, (rn_lep_entry_t[]){{1, 0}, {2, 20}}, 2);
            } else {
                assert_true(rn_log_end_offset(log) == end);
                rn_lep_t *intended = copy_cache(old);
                uint32_t new_epoch = op == OP_LEADER ? 7 : op == OP_REPLICA ? 8 : 9;
                assert_int_equal(rn_lep_assign(intended, new_epoch,
                                               op == OP_REPLICA ? end + 2 : end), RN_OK);
                /* Only the leader, whose batch write failed, keeps its epoch at the log end:
                 * true, since it leads that epoch. Otherwise the cache is as before. */
                if (op == OP_LEADER && !cache_equal(rn_log_epochs(log), old))
                    assert_true(cache_equal(rn_log_epochs(log), intended));
                else
                    assert_true(cache_equal(rn_log_epochs(log), old));
                /* Before the rename (temp write, its fsync, the rename): exactly the old file. */
                assert_file_old_or(dir, old, intended, n < 3);
                rn_lep_free(intended);
            }
            /* A crash now: whatever the file says, recovery makes it match the batches. */
            rn_log_abandon(log);
            log = open_log(dir, &cfg, NULL);
            assert_cache_matches_batches(log, "after a failed checkpoint write and a crash");
        }
        rn_buf_free(&buf);
        rn_lep_free(old);
        rn_log_close(log);
        rn_t_rmtree(root);
        free(dir);
        free(root);
    }
}

static void test_checkpoint_faults_leader(void **state)
{
    (void)state;
    fault_loop(OP_LEADER);
}

static void test_checkpoint_faults_replica(void **state)
{
    (void)state;
    fault_loop(OP_REPLICA);
}

static void test_checkpoint_faults_become_leader(void **state)
{
    (void)state;
    fault_loop(OP_BECOME_LEADER);
}

static void test_checkpoint_faults_truncate(void **state)
{
    (void)state;
    fault_loop(OP_TRUNCATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_assign_and_truncate),
        cmocka_unit_test(test_offset_for_leader_epoch),
        cmocka_unit_test(test_kip101_kip279_scenarios),
        cmocka_unit_test_setup_teardown(test_cache_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_leader_epochs_persist, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_replica_append, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kip279_empty_epoch_round, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reset_to_leader_start, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncation_and_retention, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_recovery_cuts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_during_follower_appends, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(test_checkpoint_faults_leader),
        cmocka_unit_test(test_checkpoint_faults_replica),
        cmocka_unit_test(test_checkpoint_faults_become_leader),
        cmocka_unit_test(test_checkpoint_faults_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
