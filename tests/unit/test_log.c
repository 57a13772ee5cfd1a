/*
 * The partition log: append/read, reopen, roll, time lookup, truncation, group commit,
 * retention with a test clock, crash recovery at >= 1,000 cut points, corruption and
 * injected I/O failures.
 *
 * Records carry their own expected offset: record n (counting from 0 over the whole log)
 * has value "rec-n", so any read can check it got exactly the right records in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers ---- */

static void copy_dir(const char *from, const char *to)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

static char *part_dir(const char *root)
{
    char *p = malloc(strlen(root) + 16);
    sprintf(p, "%s/events-0", root);
    return p;
}

/* Each test gets a temporary root and the partition directory "events-0" inside it. */
struct fx {
    char *root;
    char *dir;
};

static int fx_setup(void **state)
{
    struct fx *f = malloc(sizeof *f);
    f->root = rn_t_tmpdir("rnlog");
    f->dir = part_dir(f->root);
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

/* A batch of `count` records numbered from `first`, timestamps ts, ts+1, … */
static void build_batch(rn_buf_t *out, uint64_t first, uint32_t count, int64_t ts, rn_codec_t codec)
{
    rn_batch_opts_t opts = RN_BATCH_OPTS_DEFAULT;
    opts.codec = codec;
    rn_batch_builder_t *b = rn_batch_builder_new();
    rn_batch_builder_reset(b, &opts);
    for (uint32_t i = 0; i < count; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "k%" PRIu64, (first + i) % 7);
        int vlen = snprintf(value, sizeof value, "rec-%" PRIu64, first + i);
        assert_int_equal(rn_batch_builder_add(b, ts + i, key, strlen(key), value, (size_t)vlen,
                                              NULL, 0), RN_OK);
    }
    assert_int_equal(rn_batch_builder_finish(b, out), RN_OK);
    rn_batch_builder_free(b);
}

static uint64_t append_one(rn_log_t *log, uint32_t count, int64_t ts, rn_codec_t codec)
{
    rn_buf_t buf = RN_BUF_INIT;
    uint64_t first = rn_log_end_offset(log);
    build_batch(&buf, first, count, ts, codec);
    rn_log_append_info_t info;
    assert_int_equal(rn_log_append(log, buf.data, buf.len, 3, &info), RN_OK);
    assert_true(info.first_offset == first);
    assert_true(info.last_offset == first + count - 1);
    rn_buf_free(&buf);
    return first;
}

/*
 * Reads every record from `from` to the log end and checks each is "rec-<offset>" in order.
 * Returns the number of records read.
 */
static uint64_t check_all(rn_log_t *log, uint64_t from)
{
    uint64_t next = from, n = 0;
    while (next < rn_log_end_offset(log)) {
        rn_buf_t buf = RN_BUF_INIT;
        rn_log_slice_t s;
        assert_int_equal(rn_log_read_copy(log, next, UINT64_MAX, 64 * 1024, &buf, &s), RN_OK);
        assert_true(s.len > 0);
        size_t pos = 0;
        while (pos < buf.len) {
            rn_batch_iter_t it;
            assert_int_equal(rn_batch_iter_init(&it, buf.data + pos, buf.len - pos, 1 << 24), RN_OK);
            assert_int_equal(it.hdr.leader_epoch, 3);
            rn_record_t rec;
            rn_err_t err;
            while ((err = rn_batch_iter_next(&it, &rec)) == RN_OK) {
                if (rec.offset < next)
                    continue; /* the batch holding `next` starts earlier */
                char want[64];
                int wl = snprintf(want, sizeof want, "rec-%" PRIu64, rec.offset);
                assert_true(rec.offset == next);
                assert_int_equal(rec.value_len, wl);
                assert_memory_equal(rec.value, want, (size_t)wl);
                next++;
                n++;
            }
            assert_int_equal(err, RN_ERR_NOT_FOUND);
            pos += rn_batch_total_size(&it.hdr);
            rn_batch_iter_free(&it);
        }
        assert_true(next == s.next_offset);
        rn_buf_free(&buf);
    }
    assert_true(next == rn_log_end_offset(log));
    return n;
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


/* ------------------------------------------------------------------ tests ---- */

static void test_append_read_reopen(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 4 * 1024; /* several segments */
    cfg.index_interval_bytes = 512;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    assert_true(rn_log_end_offset(log) == 0);
    for (int i = 0; i < 200; i++)
        append_one(log, 1 + (uint32_t)(i % 9), 1000 + i * 10, i % 3 == 0 ? RN_CODEC_ZSTD : RN_CODEC_NONE);
    uint64_t end = rn_log_end_offset(log);
    assert_true(rn_log_segment_count(log) > 3);
    assert_true(check_all(log, 0) == end);
    /* Reads may start at any offset, including inside a batch. */
    for (uint64_t o = 0; o < end; o += 37)
        check_all(log, o);
    /* Past the end is out of range; exactly the end is an empty read. */
    rn_log_slice_t s;
    assert_int_equal(rn_log_read(log, end + 1, UINT64_MAX, 1024, &s), RN_ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(rn_log_read(log, end, UINT64_MAX, 1024, &s), RN_OK);
    assert_int_equal(s.len, 0);
    /* max_offset (the high watermark) bounds what a read returns. */
    assert_int_equal(rn_log_read(log, 0, 10, 1 << 20, &s), RN_OK);
    assert_true(s.next_offset <= 10);
    rn_log_slice_release(&s);

    assert_int_equal(rn_log_close(log), RN_OK);
    log = open_log(dir, &cfg, NULL);
    assert_true(rn_log_recovery(log)->clean);
    assert_true(rn_log_recovery(log)->bytes_scanned == 0);
    assert_true(rn_log_end_offset(log) == end);
    append_one(log, 5, 99999, RN_CODEC_NONE);
    assert_true(check_all(log, 0) == end + 5);
    assert_int_equal(rn_log_close(log), RN_OK);
}

static void test_max_bytes_and_first_batch(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    rn_log_t *log = open_log(dir, &cfg, NULL);
    for (int i = 0; i < 10; i++)
        append_one(log, 50, 0, RN_CODEC_NONE);
    rn_log_slice_t s;
    /* A limit smaller than one batch still returns that whole batch. */
    assert_int_equal(rn_log_read(log, 0, UINT64_MAX, 1, &s), RN_OK);
    assert_true(s.first_offset == 0 && s.next_offset == 50);
    size_t one = s.len;
    rn_log_slice_release(&s);
    rn_log_slice_release(&s);
    size_t three = 0;
    for (uint64_t o = 50; o < 200; o += 50) {
        assert_int_equal(rn_log_read(log, o, UINT64_MAX, 1, &s), RN_OK);
        three += s.len;
        rn_log_slice_release(&s);
    }
    assert_true(one > 0);
    /* Whole batches only: exactly three fit, one byte less fits two. */
    assert_int_equal(rn_log_read(log, 60, UINT64_MAX, three, &s), RN_OK);
    assert_true(s.first_offset == 50 && s.next_offset == 200 && s.len == three);
    rn_log_slice_release(&s);
    assert_int_equal(rn_log_read(log, 60, UINT64_MAX, three - 1, &s), RN_OK);
    assert_true(s.first_offset == 50 && s.next_offset == 150);
    rn_log_slice_release(&s);
    /* Oversized batches are refused before anything is written. */
    cfg.max_message_bytes = 100;
    rn_log_set_config(log, &cfg);
    rn_buf_t buf = RN_BUF_INIT;
    build_batch(&buf, 500, 20, 0, RN_CODEC_NONE);
    rn_log_append_info_t info;
    assert_int_equal(rn_log_append(log, buf.data, buf.len, 0, &info), RN_ERR_MESSAGE_TOO_LARGE);
    /* Bytes that are not whole batches are refused too. */
    assert_int_equal(rn_log_append(log, buf.data, buf.len - 1, 0, &info), RN_ERR_CORRUPT_MESSAGE);
    assert_true(rn_log_end_offset(log) == 500);
    rn_buf_free(&buf);
    rn_log_close(log);
}

static void test_offset_for_time(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 8 * 1024;
    cfg.index_interval_bytes = 256;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    /* Batch i covers timestamps 1000 + 100 i .. + count - 1. */
    int64_t ts_of[2000];
    uint64_t n = 0;
    for (int i = 0; i < 150; i++) {
        uint32_t count = 1 + (uint32_t)(i % 5);
        append_one(log, count, 1000 + 100 * i, i % 2 ? RN_CODEC_ZSTD : RN_CODEC_NONE);
        for (uint32_t j = 0; j < count; j++)
            ts_of[n++] = 1000 + 100 * i + j;
    }
    for (int round = 0; round < 2; round++) {
        for (int64_t t = 900; t < 1000 + 100 * 151; t += 7) {
            uint64_t want = UINT64_MAX;
            for (uint64_t o = 0; o < n; o++) {
                if (ts_of[o] >= t) {
                    want = o;
                    break;
                }
            }
            uint64_t got;
            rn_err_t err = rn_log_offset_for_time(log, t, &got);
            if (want == UINT64_MAX) {
                assert_int_equal(err, RN_ERR_NOT_FOUND);
            } else {
                assert_int_equal(err, RN_OK);
                if (got != want)
                    fail_msg("offset_for_time(%" PRId64 ") = %" PRIu64 ", want %" PRIu64, t, got, want);
            }
        }
        /* And the same answers from the sealed, reopened indexes. */
        rn_log_close(log);
        log = open_log(dir, &cfg, NULL);
    }
    rn_log_close(log);
}

static void test_truncate(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 4 * 1024;
    cfg.index_interval_bytes = 300;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    for (int i = 0; i < 100; i++)
        append_one(log, 4, i, RN_CODEC_NONE);
    rn_log_flush(log);
    uint32_t segs = rn_log_segment_count(log);
    /* A batch boundary: exactly there. Inside a batch: back to its base. */
    assert_int_equal(rn_log_truncate(log, 200), RN_OK);
    assert_true(rn_log_end_offset(log) == 200);
    assert_true(rn_log_flushed_offset(log) <= 200);
    assert_true(rn_log_segment_count(log) < segs);
    assert_int_equal(rn_log_truncate(log, 102), RN_OK);
    assert_true(rn_log_end_offset(log) == 100);
    check_all(log, 0);
    /* Appends continue at the new end, and a crash right now recovers the same state. */
    append_one(log, 4, 0, RN_CODEC_NONE);
    rn_log_flush(log);
    rn_log_abandon(log);
    log = open_log(dir, &cfg, NULL);
    assert_true(rn_log_end_offset(log) == 104);
    assert_true(check_all(log, 0) == 104);
    rn_log_close(log);
}

struct syncer {
    rn_log_sync_t *sync;
    rn_err_t result;
};

static void *sync_thread(void *arg)
{
    struct syncer *s = arg;
    s->result = rn_log_sync_run(s->sync);
    return NULL;
}

static void test_group_commit_on_thread(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.flush_messages = 1;
    cfg.segment_bytes = 32 * 1024;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    int syncs = 0;
    for (int round = 0; round < 20; round++) {
        append_one(log, 3, 0, RN_CODEC_NONE);
        assert_true(rn_log_flush_due(log));
        struct syncer s = {0};
        assert_int_equal(rn_log_sync_begin(log, &s.sync), RN_OK);
        assert_non_null(s.sync);
        uint64_t target = rn_log_sync_target(s.sync);
        /* Only one sync at a time per log. */
        rn_log_sync_t *second;
        assert_int_equal(rn_log_sync_begin(log, &second), RN_ERR_STATE);
        pthread_t t;
        pthread_create(&t, NULL, sync_thread, &s);
        /* Appends go on while the fsync runs; they are not covered by it. */
        for (int i = 0; i < 5; i++)
            append_one(log, 2, 0, RN_CODEC_NONE);
        pthread_join(t, NULL);
        assert_int_equal(rn_log_sync_end(log, s.sync, s.result), RN_OK);
        assert_true(rn_log_flushed_offset(log) == target);
        assert_true(rn_log_flushed_offset(log) < rn_log_end_offset(log));
        syncs++;
    }
    assert_int_equal(rn_log_flush(log), RN_OK);
    assert_true(rn_log_flushed_offset(log) == rn_log_end_offset(log));
    assert_false(rn_log_flush_due(log));
    assert_int_equal(syncs, 20);
    rn_log_close(log);
}

static void test_flush_policy_by_time(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_clock_manual_t clock;
    rn_clock_manual_init(&clock, 1000000);
    rn_log_env_t env = {&clock.clock, NULL};
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.flush_ms = 100;
    cfg.flush_messages = 1000;
    rn_log_t *log = open_log(dir, &cfg, &env);
    append_one(log, 10, 0, RN_CODEC_NONE);
    assert_false(rn_log_flush_due(log));
    clock.now_ms += 99;
    assert_false(rn_log_flush_due(log));
    clock.now_ms += 1;
    assert_true(rn_log_flush_due(log));
    rn_log_flush(log);
    assert_false(rn_log_flush_due(log));
    for (int i = 0; i < 100; i++)
        append_one(log, 10, 0, RN_CODEC_NONE);
    assert_true(rn_log_flush_due(log)); /* 1,000 records */
    rn_log_close(log);
}

static void test_retention_with_test_clock(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_clock_manual_t clock;
    rn_clock_manual_init(&clock, 10 * 1000 * 1000);
    rn_log_env_t env = {&clock.clock, NULL};
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 2048;
    cfg.retention_ms = 60 * 1000;
    rn_log_t *log = open_log(dir, &cfg, &env);
    /* One batch per simulated second, timestamped with the clock. */
    for (int i = 0; i < 120; i++) {
        append_one(log, 5, clock.now_ms, RN_CODEC_NONE);
        clock.now_ms += 1000;
    }
    uint32_t before = rn_log_segment_count(log), deleted;
    assert_true(before > 5);
    assert_int_equal(rn_log_apply_retention(log, &deleted), RN_OK);
    assert_true(deleted > 0);
    assert_int_equal(rn_log_segment_count(log), before - deleted);
    uint64_t start = rn_log_start_offset(log);
    assert_true(start > 0);
    /* What is left starts at the new log start and is intact. */
    check_all(log, start);
    rn_log_slice_t s;
    assert_int_equal(rn_log_read(log, start - 1, UINT64_MAX, 100, &s), RN_ERR_OFFSET_OUT_OF_RANGE);
    /* Nothing that remains is older than retention.ms except possibly the segment that holds
     * both old and recent records. */
    uint64_t first_recent;
    assert_int_equal(rn_log_offset_for_time(log, clock.now_ms - 60 * 1000, &first_recent), RN_OK);
    assert_true(start <= first_recent);
    /* Far in the future everything but the active segment goes. */
    clock.now_ms += 3600 * 1000;
    assert_int_equal(rn_log_apply_retention(log, &deleted), RN_OK);
    assert_int_equal(rn_log_segment_count(log), 1);
    uint64_t end = rn_log_end_offset(log);
    assert_true(rn_log_start_offset(log) < end);
    append_one(log, 1, clock.now_ms, RN_CODEC_NONE);
    /* retention.bytes: keep the newest segments under the limit. */
    for (int i = 0; i < 100; i++)
        append_one(log, 5, clock.now_ms, RN_CODEC_NONE);
    cfg.retention_bytes = 4096;
    rn_log_set_config(log, &cfg);
    assert_int_equal(rn_log_apply_retention(log, &deleted), RN_OK);
    assert_true(deleted > 0);
    assert_true(rn_log_size_bytes(log) - 2048 < 4096 + 2048);
    check_all(log, rn_log_start_offset(log));
    /* The start offset survives a restart. */
    uint64_t start2 = rn_log_start_offset(log);
    rn_log_close(log);
    log = open_log(dir, &cfg, &env);
    assert_true(rn_log_start_offset(log) == start2);
    rn_log_close(log);
}

/*
 * Crash recovery: random batches with random flushes, then the active segment cut at many
 * random positions at or after the flushed point (what a crash can lose), sometimes with
 * garbage written over the tail, and reopened. Every flushed batch must be there, no
 * partial batch visible, appends continue at the right offset, and recovery reads only the
 * unflushed part (plus at most one index interval and one batch).
 */
static void test_crash_recovery_cuts(void **state)
{
    unsigned seed = (unsigned)rn_t_seed("crash recovery");
    int cuts = getenv("RUNNEL_TEST_CUTS") ? atoi(getenv("RUNNEL_TEST_CUTS")) : 1000;
    print_message("crash recovery: %d cuts\n", cuts);
    srand(seed);
    const char *dir = ((struct fx *)*state)->dir;
    char scratch_root[4096], scratch[4200];
    snprintf(scratch_root, sizeof scratch_root, "%s-scratch", ((struct fx *)*state)->root);
    snprintf(scratch, sizeof scratch, "%s/events-0", scratch_root);
    mkdir(scratch_root, 0755);

    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 24 * 1024;
    cfg.index_interval_bytes = 1024;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    /* Batch boundaries of the whole log: offset -> (segment base, position). */
    uint64_t bounds[4096];
    int nb = 0;
    uint64_t flushed = 0;
    for (int i = 0; i < 400; i++) {
        bounds[nb++] = rn_log_end_offset(log);
        append_one(log, 1 + (uint32_t)(rand() % 20), i, rand() % 4 ? RN_CODEC_NONE : RN_CODEC_ZSTD);
        if (rand() % 25 == 0) {
            assert_int_equal(rn_log_flush(log), RN_OK);
            flushed = rn_log_end_offset(log);
        }
    }
    bounds[nb] = rn_log_end_offset(log);
    assert_true(flushed > 0);
    assert_true(rn_log_segment_count(log) >= 3);
    rn_log_abandon(log);

    /* The active segment is the file with the largest base; find the flushed position in it. */
    char active_path[4400];
    uint64_t active_base = 0;
    for (int i = 0; i <= nb; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%020" PRIu64 ".log", dir, bounds[i]);
        if (access(p, F_OK) == 0)
            active_base = bounds[i];
    }
    snprintf(active_path, sizeof active_path, "%s/%020" PRIu64 ".log", dir, active_base);
    uint64_t active_size = (uint64_t)rn_t_file_size(active_path);
    /* Position of the first unflushed batch in the active segment. */
    uint64_t flushed_pos = 0;
    {
        rn_log_t *probe;
        copy_dir(dir, scratch);
        probe = open_log(scratch, &cfg, NULL);
        rn_log_slice_t s;
        if (flushed > active_base && flushed < rn_log_end_offset(probe)) {
            assert_int_equal(rn_log_read(probe, flushed, UINT64_MAX, 1, &s), RN_OK);
            flushed_pos = s.pos;
            rn_log_slice_release(&s);
        } else if (flushed >= rn_log_end_offset(probe)) {
            flushed_pos = active_size;
        }
        rn_log_abandon(probe);
    }
    assert_true(flushed_pos <= active_size);

    for (int c = 0; c < cuts; c++) {
        copy_dir(dir, scratch);
        char cut_path[4400];
        snprintf(cut_path, sizeof cut_path, "%s/%020" PRIu64 ".log", scratch, active_base);
        uint64_t cut = flushed_pos + (uint64_t)rand() % (active_size - flushed_pos + 1);
        assert_int_equal(truncate(cut_path, (off_t)cut), 0);
        if (c % 3 == 0 && cut > flushed_pos + 8) {
            /* A torn write that left garbage instead of zeros. */
            int fd = open(cut_path, O_WRONLY);
            uint8_t junk[8];
            for (int k = 0; k < 8; k++)
                junk[k] = (uint8_t)rand();
            assert_int_equal(pwrite(fd, junk, 8, (off_t)(cut - 8)), 8);
            close(fd);
        }
        rn_log_t *r = open_log(scratch, &cfg, NULL);
        uint64_t end = rn_log_end_offset(r);
        if (end < flushed)
            fail_msg("cut %d at %" PRIu64 " (seed %u): end %" PRIu64 " lost flushed data below %" PRIu64,
                     c, cut, seed, end, flushed);
        int is_bound = 0;
        for (int i = 0; i <= nb; i++)
            is_bound |= bounds[i] == end;
        if (!is_bound)
            fail_msg("cut %d (seed %u): end %" PRIu64 " is not a batch boundary", c, seed, end);
        const rn_log_recovery_t *rec = rn_log_recovery(r);
        assert_false(rec->clean);
        uint64_t allowed = (active_size - flushed_pos) + cfg.index_interval_bytes + 16 * 1024;
        if (rec->bytes_scanned > allowed)
            fail_msg("cut %d (seed %u): recovery read %" PRIu64 " bytes, more than the unflushed tail "
                     "allows (%" PRIu64 ")", c, seed, rec->bytes_scanned, allowed);
        assert_true(check_all(r, rn_log_start_offset(r)) == end);
        uint64_t base = append_one(r, 2, 0, RN_CODEC_NONE);
        assert_true(base == end);
        rn_log_abandon(r);
    }
    rn_t_rmtree(scratch_root);
}

/* Recovery reads the unflushed tail, not the log: a large flushed log costs nothing. */
static void test_recovery_independent_of_flushed_size(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 1 << 20;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    for (int i = 0; i < 2000; i++)
        append_one(log, 100, i, RN_CODEC_NONE);
    assert_int_equal(rn_log_flush(log), RN_OK);
    uint64_t flushed_size = rn_log_size_bytes(log);
    for (int i = 0; i < 5; i++)
        append_one(log, 10, i, RN_CODEC_NONE);
    uint64_t end = rn_log_end_offset(log);
    rn_log_abandon(log);
    log = open_log(dir, &cfg, NULL);
    const rn_log_recovery_t *rec = rn_log_recovery(log);
    assert_false(rec->clean);
    assert_true(rn_log_end_offset(log) == end);
    print_message("flushed %" PRIu64 " bytes, recovery scanned %" PRIu64 "\n", flushed_size,
                  rec->bytes_scanned);
    assert_true(flushed_size > 3 * 1000 * 1000);
    assert_true(rec->bytes_scanned < 64 * 1024);
    rn_log_close(log);
}

/* Bytes flipped inside a closed segment: that batch reads as an error, earlier ones are fine. */
static void test_corruption_in_closed_segment(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.segment_bytes = 8 * 1024;
    rn_log_t *log = open_log(dir, &cfg, NULL);
    for (int i = 0; i < 100; i++)
        append_one(log, 10, i, RN_CODEC_NONE);
    rn_log_slice_t s;
    /* Batch 20 (offsets 200..209) lies in the first segment, which is closed. */
    assert_int_equal(rn_log_read(log, 200, UINT64_MAX, 1, &s), RN_OK);
    uint64_t pos = s.pos;
    size_t len = s.len;
    rn_log_slice_release(&s);
    rn_log_close(log);
    char path[4400];
    snprintf(path, sizeof path, "%s/%020d.log", dir, 0);
    assert_true((uint64_t)rn_t_file_size(path) > pos + len);
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)(pos + len - 5)), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)(pos + len - 5)), 1);
    close(fd);

    log = open_log(dir, &cfg, NULL);
    /* Batches before the damage read back intact. */
    rn_buf_t buf = RN_BUF_INIT;
    uint64_t next = 0;
    while (next < 200) {
        rn_buf_reset(&buf);
        assert_int_equal(rn_log_read_copy(log, next, 200, 1 << 20, &buf, &s), RN_OK);
        size_t p = 0;
        while (p < buf.len) {
            rn_batch_header_t h;
            assert_int_equal(rn_batch_validate(buf.data + p, buf.len - p, &h), RN_OK);
            p += rn_batch_total_size(&h);
        }
        next = s.next_offset;
    }
    /* The damaged batch: a clear checksum error for whoever reads it. */
    rn_buf_reset(&buf);
    assert_int_equal(rn_log_read_copy(log, 200, UINT64_MAX, 1, &buf, &s), RN_OK);
    rn_batch_header_t h;
    assert_int_equal(rn_batch_validate(buf.data, buf.len, &h), RN_ERR_CHECKSUM);
    rn_buf_free(&buf);

    /* Damage to a header (its length) is refused by the log itself, not sent on. */
    rn_log_close(log);
    fd = open(path, O_RDWR);
    uint8_t bad_len[4] = {0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(pwrite(fd, bad_len, 4, (off_t)(pos + 8)), 4);
    close(fd);
    log = open_log(dir, &cfg, NULL);
    rn_err_t err = rn_log_read(log, 200, UINT64_MAX, 1, &s);
    assert_int_equal(err, RN_ERR_CORRUPT);
    assert_int_equal(rn_log_read(log, 0, 200, 1 << 20, &s), RN_OK); /* still serves before it */
    rn_log_slice_release(&s);
    rn_log_close(log);
}

/* ---- fault injection through the io vtable (SQLite-style fault loops) ---- */

struct faulty {
    rn_io_t io;
    int writes_left;   /* fail the write after this many; -1 never */
    int syncs_left;
    int fail_errno;
};

static ssize_t faulty_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    struct faulty *f = ctx;
    if (f->writes_left == 0) {
        /* A partial write first, as a filling disk does, then the error. */
        if (len > 1)
            pwrite(fd, buf, len / 2, off);
        errno = f->fail_errno;
        return -1;
    }
    if (f->writes_left > 0)
        f->writes_left--;
    return rn_io_posix()->pwrite(NULL, fd, buf, len, off);
}

static int faulty_fdatasync(void *ctx, int fd)
{
    struct faulty *f = ctx;
    if (f->syncs_left == 0) {
        errno = EIO;
        return -1;
    }
    if (f->syncs_left > 0)
        f->syncs_left--;
    return rn_io_posix()->fdatasync(NULL, fd);
}

static void faulty_init(struct faulty *f)
{
    f->io = *rn_io_posix();
    f->io.pwrite = faulty_pwrite;
    f->io.fdatasync = faulty_fdatasync;
    f->io.ctx = f;
    f->writes_left = -1;
    f->syncs_left = -1;
    f->fail_errno = ENOSPC;
}

static void test_write_failures_lose_nothing(void **state)
{
    (void)state;
    /* Fail the Nth write for N = 0, 1, 2, … over a run of appends that also rolls segments. */
    for (int n = 0; n < 40; n++) {
        char *root = rn_t_tmpdir("rnlog"), *dir = part_dir(root);
        struct faulty f;
        faulty_init(&f);
        rn_log_env_t env = {NULL, &f.io};
        rn_log_config_t cfg;
        rn_log_config_default(&cfg);
        cfg.segment_bytes = 2048;
        rn_log_t *log = open_log(dir, &cfg, &env);
        f.writes_left = n;
        uint64_t acked = 0;
        int failures = 0;
        for (int i = 0; i < 40; i++) {
            rn_buf_t buf = RN_BUF_INIT;
            build_batch(&buf, rn_log_end_offset(log), 6, i, RN_CODEC_NONE);
            rn_log_append_info_t info;
            rn_err_t err = rn_log_append(log, buf.data, buf.len, 3, &info);
            rn_buf_free(&buf);
            if (err == RN_OK) {
                acked = info.last_offset + 1;
            } else {
                assert_int_equal(err, RN_ERR_NO_SPACE);
                failures++;
                f.writes_left = -1; /* the disk has room again */
            }
            assert_true(rn_log_end_offset(log) == acked);
        }
        assert_int_equal(failures, 1);
        assert_true(check_all(log, 0) == acked);
        assert_int_equal(rn_log_flush(log), RN_OK);
        rn_log_abandon(log);
        log = open_log(dir, &cfg, NULL);
        assert_true(rn_log_end_offset(log) == acked);
        assert_true(check_all(log, 0) == acked);
        rn_log_close(log);
        rn_t_rmtree(root);
        free(dir);
        free(root);
    }
}

static void test_fsync_failure_makes_log_read_only(void **state)
{
    const char *dir = ((struct fx *)*state)->dir;
    struct faulty f;
    faulty_init(&f);
    rn_log_env_t env = {NULL, &f.io};
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    rn_log_t *log = open_log(dir, &cfg, &env);
    append_one(log, 5, 0, RN_CODEC_NONE);
    assert_int_equal(rn_log_flush(log), RN_OK);
    append_one(log, 5, 0, RN_CODEC_NONE);
    f.syncs_left = 0;
    assert_int_equal(rn_log_flush(log), RN_ERR_IO);
    assert_true(rn_log_flushed_offset(log) == 5);
    rn_buf_t buf = RN_BUF_INIT;
    build_batch(&buf, 10, 1, 0, RN_CODEC_NONE);
    rn_log_append_info_t info;
    assert_int_equal(rn_log_append(log, buf.data, buf.len, 0, &info), RN_ERR_STATE);
    rn_buf_free(&buf);
    /* Reads still work. */
    assert_true(check_all(log, 0) == 10);
    rn_log_abandon(log);
    f.syncs_left = -1;
    log = open_log(dir, &cfg, NULL);
    assert_true(rn_log_end_offset(log) >= 5);
    rn_log_close(log);
}

static void test_config_keys(void **state)
{
    (void)state;
    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    char err[256];
    assert_int_equal(rn_log_config_set(&cfg, "retention.ms", "1000", err, sizeof err), RN_OK);
    assert_true(cfg.retention_ms == 1000);
    assert_int_equal(rn_log_config_set(&cfg, "flush.messages", "1", err, sizeof err), RN_OK);
    assert_true(cfg.flush_messages == 1);
    assert_int_equal(rn_log_config_set(&cfg, "retention.mss", "1", err, sizeof err), RN_ERR_UNKNOWN_CONFIG);
    assert_non_null(strstr(err, "retention.mss"));
    assert_int_equal(rn_log_config_set(&cfg, "segment.bytes", "12x", err, sizeof err), RN_ERR_BAD_CONFIG);
    assert_non_null(strstr(err, "segment.bytes"));
    assert_int_equal(rn_log_config_set(&cfg, "flush.messages", "0", err, sizeof err), RN_ERR_BAD_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test_setup_teardown(test_append_read_reopen, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_max_bytes_and_first_batch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_offset_for_time, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_on_thread, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_flush_policy_by_time, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_retention_with_test_clock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_independent_of_flushed_size, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_corruption_in_closed_segment, fx_setup, fx_teardown),
        cmocka_unit_test(test_write_failures_lose_nothing),
        cmocka_unit_test_setup_teardown(test_fsync_failure_makes_log_read_only, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_recovery_cuts, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
