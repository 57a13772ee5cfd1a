/*
 * test_broker_retention.c - retention runs in the background (log.retention.check.interval.ms)
 * and deletes whole closed segments: by retention.ms, by retention.bytes, and - with
 * segment.ms rolling an idle active segment - down to an empty log. The log start offset
 * moves forward (ListOffsets earliest, Fetch's OFFSET_OUT_OF_RANGE) and the files are gone.
 * The flush.ms timer fsyncs a topic's partitions in the background, without a produce.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

static char *g_dir;
static char g_data[600];
static rn_hbroker_t g_broker;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    (void)state;
    g_dir = rn_h_tmpdir("broker-ret");
    snprintf(g_data, sizeof g_data, "%s/data", g_dir);
    const char *settings[] = {"log.retention.check.interval.ms=200", NULL};
    return rn_rc_broker_start(&g_broker, g_data, settings);
}

static int teardown(void **state)
{
    (void)state;
    int status = rn_h_broker_stop(&g_broker);
    if (status != 0)
        rn_h_broker_dump_log(&g_broker);
    rn_h_broker_release(&g_broker);
    rn_h_rmtree(g_dir);
    free(g_dir);
    return status == 0 ? 0 : -1;
}

/* Counts the .log files of a partition and sums their sizes. */
static int segment_files(const char *topic, int partition, uint64_t *bytes, bool *has_zero)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s-%d", g_data, topic, partition);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    if (bytes)
        *bytes = 0;
    if (has_zero)
        *has_zero = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".log") != 0)
            continue;
        n++;
        if (has_zero && strcmp(e->d_name, "00000000000000000000.log") == 0)
            *has_zero = true;
        char path[1000];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (bytes && stat(path, &st) == 0)
            *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

static void produce(rn_rc_t *c, const char *topic, int batches)
{
    for (int i = 0; i < batches; i++) {
        rn_buf_t b = RN_BUF_INIT;
        rn_rc_make_batch(&b, -1, -1, -1, 5, "retained-value-padding-padding", i * 5);
        assert_int_equal(rn_rc_produce(c, topic, 0, 1, b.data, b.len, NULL), 0);
        rn_buf_free(&b);
    }
}

/* ------------------------------------------------------------------------ */

static void test_retention_ms(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    const char *cfg[] = {"retention.ms=1000", "segment.bytes=1024", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "short", 1, 1, cfg, NULL, 0), 0);
    produce(&c, "short", 30);
    bool has_zero;
    int before = segment_files("short", 0, NULL, &has_zero);
    assert_true(before >= 4);
    assert_true(has_zero);
    assert_int_equal(rn_rc_list_offset(&c, "short", 0, -2), 0);
    int64_t end = rn_rc_list_offset(&c, "short", 0, -1);
    assert_int_equal(end, 150);
    /* retention.ms = 1 s, checks every 200 ms: within a few seconds only the active
     * segment remains. */
    int64_t earliest = 0;
    for (int i = 0; i < 100 && segment_files("short", 0, NULL, NULL) > 1; i++)
        sleep_ms(100);
    assert_int_equal(segment_files("short", 0, NULL, &has_zero), 1);
    assert_false(has_zero);
    earliest = rn_rc_list_offset(&c, "short", 0, -2);
    assert_true(earliest > 0 && earliest <= end);
    /* Below the new start: out of range, with the bounds to recover. */
    Runnel__Response *r = rn_rc_fetch(&c, "short", 0, 0, 0, 0, 0, 0, 5000);
    Runnel__FetchPartitionData *p = rn_rc_fetch_part(r);
    assert_non_null(p);
    assert_int_equal(p->error, RUNNEL__ERROR_CODE__ERR_OFFSET_OUT_OF_RANGE);
    assert_int_equal(p->log_start_offset, earliest);
    rn_rc_free(r);
    rn_rc_rec_t recs[200];
    int n = rn_rc_fetch_all(&c, "short", 0, earliest, recs, 200);
    assert_int_equal(n, end - earliest);
    rn_rc_close(&c);
}

static void test_retention_bytes(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    const char *cfg[] = {"retention.bytes=3000", "segment.bytes=1024", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "small", 1, 1, cfg, NULL, 0), 0);
    produce(&c, "small", 40);
    uint64_t bytes = 0;
    for (int i = 0; i < 100; i++) {
        segment_files("small", 0, &bytes, NULL);
        if (bytes <= 3000 + 1024)
            break;
        sleep_ms(100);
    }
    /* Oldest segments go while what remains after them still exceeds retention.bytes. */
    assert_true(bytes <= 3000 + 1024);
    assert_true(rn_rc_list_offset(&c, "small", 0, -2) > 0);
    rn_rc_close(&c);
}

static void test_segment_ms_rolls_idle_log(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    const char *cfg[] = {"retention.ms=500", "segment.ms=300", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "idle", 1, 1, cfg, NULL, 0), 0);
    produce(&c, "idle", 3);
    /* Nothing is produced any more: segment.ms closes the segment, retention deletes it. */
    int64_t earliest = 0;
    for (int i = 0; i < 100 && earliest != 15; i++) {
        sleep_ms(100);
        earliest = rn_rc_list_offset(&c, "idle", 0, -2);
    }
    assert_int_equal(earliest, 15);
    assert_int_equal(rn_rc_list_offset(&c, "idle", 0, -1), 15);
    rn_rc_close(&c);
}

/* The offset in a partition's recovery-point file: everything below it was fsynced. */
static uint64_t recovery_point(const char *topic)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s-0/recovery-point", g_data, topic);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t b[32];
    assert_int_equal(fread(b, 1, sizeof b, f), sizeof b);
    fclose(f);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[8 + i]; /* offset u64, little-endian, after magic and version */
    return v;
}

/*
 * flush.ms is the background flusher's: a topic with flush.ms=100 is fsynced (its recovery
 * point moves to the log end) within a second of a produce, with no further produce to
 * trigger it; a topic on the default policy is not.
 */
static void test_flush_ms_in_background(void **state)
{
    (void)state;
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, g_broker.addr), 0);
    const char *cfg[] = {"flush.ms=100", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "timed", 1, 1, cfg, NULL, 0), 0);
    assert_int_equal(rn_rc_create_topic(&c, "lazy", 1, 1, NULL, NULL, 0), 0);
    produce(&c, "timed", 4);
    produce(&c, "lazy", 4);
    uint64_t rp = 0;
    for (int waited = 0; waited < 5000 && (rp = recovery_point("timed")) < 20; waited += 50)
        sleep_ms(50);
    assert_int_equal(rp, 20);
    assert_int_equal(recovery_point("lazy"), 0);
    rn_rc_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_ms),
        cmocka_unit_test(test_retention_bytes),
        cmocka_unit_test(test_segment_ms_rolls_idle_log),
        cmocka_unit_test(test_flush_ms_in_background),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
