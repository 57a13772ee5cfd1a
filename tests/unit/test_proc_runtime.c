/*
 * processor/runtime.c with the in-memory source and the SQLite sink: a known-answer run of
 * the fraud job (the expected table computed by SQLite over the raw events, not by the
 * processor's code), crashes at random points with restarts (no double count, no loss),
 * late and malformed records to the dead-letter hook, and state/sink mismatches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "state/snapshot.h"

#define JOB \
    "CREATE SOURCE clicks (user_id TEXT, action TEXT, value DOUBLE, timestamp TIMESTAMP)\n" \
    "  FROM TOPIC 'clickstream' FORMAT JSON WATERMARK FOR timestamp AS timestamp - INTERVAL '5' SECOND\n" \
    "  WITH ('dead.letter.topic' = 'dlq');\n" \
    "CREATE SINK suspicious_users INTO SQLITE '%s' PRIMARY KEY (window_start, user_id) AS\n" \
    "SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) AS clicks\n" \
    "FROM TUMBLE(clicks, timestamp, INTERVAL '10' SECOND) WHERE action = 'click'\n" \
    "GROUP BY window_start, window_end, user_id HAVING SUM(value) > 1000;\n"

typedef struct ev {
    int part;
    char user[8];
    int click;
    int value;
    int64_t ts;
    int malformed;
} ev_t;

static char g_dir[4096], g_db[4200], g_state[4200], g_expect_db[4200];

static void setup_paths(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/proc-rt-XXXXXX", base);
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_db, sizeof g_db, "%s/out.db", g_dir);
    snprintf(g_state, sizeof g_state, "%s/state", g_dir);
    snprintf(g_expect_db, sizeof g_expect_db, "%s/expect.db", g_dir);
}

static void cleanup(void)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
}

static rn_plan_t *fraud_plan(void)
{
    char text[8192], err[1024];
    snprintf(text, sizeof text, JOB, g_db);
    rn_sql_src_t src = {"fraud.sql", text, strlen(text)};
    rn_plan_t *p;
    if (rn_plan_build(&src, &p, err, sizeof err) != RN_OK)
        fail_msg("%s", err);
    return p;
}

/* Events of 3 partitions, out of order by up to 4 s (within the 5 s watermark delay, so none
 * is late), some with ISO timestamps, some malformed. */
static size_t gen(ev_t *evs, size_t max)
{
    int64_t base[3] = {1698400800000, 1698400800000, 1698400800000};
    size_t n = 0;
    srand(42);
    for (size_t i = 0; i < max; i++) {
        ev_t *e = &evs[n++];
        e->part = rand() % 3;
        base[e->part] += rand() % 40;
        e->ts = base[e->part] - rand() % 4000;
        snprintf(e->user, sizeof e->user, "u%d", rand() % 12);
        e->click = rand() % 5 != 0;
        e->value = rand() % 400;
        e->malformed = rand() % 97 == 0 ? 1 + rand() % 3 : 0;
    }
    return n;
}

static void fill(rn_memsrc_t *m, const ev_t *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &evs[i];
        char json[256];
        if (e->malformed == 1)
            snprintf(json, sizeof json, "{\"user_id\": \"%s\", \"action\": ", e->user);
        else if (e->malformed == 2)
            snprintf(json, sizeof json, "{\"user_id\": \"%s\", \"action\": \"click\", \"timestamp\": %lld}",
                     e->user, (long long)e->ts);
        else if (e->malformed == 3)
            snprintf(json, sizeof json, "{\"user_id\": \"%s\", \"action\": \"click\", \"value\": \"10\", \"timestamp\": %lld}",
                     e->user, (long long)e->ts);
        else if (i % 2) {
            char iso[40];
            rn_ts_format(e->ts, iso, sizeof iso);
            snprintf(json, sizeof json, "{\"user_id\": \"%s\", \"action\": \"%s\", \"timestamp\": \"%s\", \"value\": %d}",
                     e->user, e->click ? "click" : "view", iso, e->value);
        } else {
            snprintf(json, sizeof json, "{\"value\": %d.0, \"user_id\": \"%s\", \"extra\": [1, {\"a\": null}], \"action\": \"%s\", \"timestamp\": %lld}",
                     e->value, e->user, e->click ? "click" : "view", (long long)e->ts);
        }
        assert_int_equal(rn_memsrc_append(m, e->part, json, strlen(json)), RN_OK);
    }
}

/* The expected table, computed by SQLite over the raw events. */
static void expected(const ev_t *evs, size_t n)
{
    sqlite3 *db;
    unlink(g_expect_db);
    assert_int_equal(sqlite3_open(g_expect_db, &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE events (user_id TEXT, action TEXT, value REAL, ts INTEGER); BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO events VALUES (?, ?, ?, ?)", -1, &st, NULL);
    for (size_t i = 0; i < n; i++) {
        if (evs[i].malformed)
            continue;
        sqlite3_bind_text(st, 1, evs[i].user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, evs[i].click ? "click" : "view", -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, evs[i].value);
        sqlite3_bind_int64(st, 4, evs[i].ts);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT; CREATE TABLE expected AS SELECT ts / 10000 * 10000 AS window_start, "
                                      "ts / 10000 * 10000 + 10000 AS window_end, user_id, SUM(value) AS total, COUNT(*) AS clicks "
                                      "FROM events WHERE action = 'click' GROUP BY 1, 2, 3 HAVING SUM(value) > 1000",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void compare_tables(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    char attach[4400];
    snprintf(attach, sizeof attach, "ATTACH '%s' AS e", g_expect_db);
    assert_int_equal(sqlite3_exec(db, attach, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    const char *sql =
        "SELECT (SELECT COUNT(*) FROM e.expected), (SELECT COUNT(*) FROM suspicious_users), "
        "(SELECT COUNT(*) FROM (SELECT window_start, window_end, user_id, total, clicks FROM suspicious_users "
        " EXCEPT SELECT * FROM e.expected)), "
        "(SELECT COUNT(*) FROM (SELECT * FROM e.expected EXCEPT SELECT window_start, window_end, user_id, total, clicks FROM suspicious_users))";
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int want = sqlite3_column_int(st, 0), got = sqlite3_column_int(st, 1);
    int extra = sqlite3_column_int(st, 2), missing = sqlite3_column_int(st, 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (want < 10 || got != want || extra || missing)
        fail_msg("expected %d rows, got %d (%d unexpected, %d missing)", want, got, extra, missing);
}

typedef struct dlq {
    int malformed, late;
    char last_reason[256];
} dlq_t;

static rn_err_t dead_letter(void *ctx, const char *topic, int32_t partition, int64_t offset,
                            const void *value, size_t len, const char *reason)
{
    dlq_t *d = ctx;
    (void)partition;
    (void)offset;
    (void)value;
    (void)len;
    assert_string_equal(topic, "dlq");
    if (strncmp(reason, "late record", 11) == 0)
        d->late++;
    else
        d->malformed++;
    snprintf(d->last_reason, sizeof d->last_reason, "%s", reason);
    return RN_OK;
}

static rn_err_t run(rn_plan_t *p, rn_memsrc_t *m, uint64_t crash_after, rn_job_stats_t *st,
                    dlq_t *d, char *err)
{
    rn_job_config_t cfg = {
        .plan = p, .state_dir = g_state, .checkpoint_interval_ms = 0, .bounded = true,
        .clock = rn_clock_system(), .source = rn_memsrc_source(m), .dead_letter = dead_letter,
        .dead_letter_ctx = d, .crash_after_records = crash_after,
    };
    return rn_job_run(&cfg, st, err, 1024);
}

static void test_known_answer(void **state)
{
    (void)state;
    setup_paths();
    static ev_t evs[9000];
    size_t n = gen(evs, 9000);
    expected(evs, n);
    rn_plan_t *p = fraud_plan();
    rn_memsrc_t *m;
    assert_int_equal(rn_memsrc_new("clickstream", 3, &m), RN_OK);
    fill(m, evs, n);
    rn_memsrc_set_batch(m, 300);
    rn_job_stats_t st;
    dlq_t d = {0};
    char err[1024];
    if (run(p, m, 0, &st, &d, err) != RN_OK)
        fail_msg("%s", err);
    compare_tables();
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += evs[i].malformed != 0;
    assert_int_equal(st.records, n);
    assert_int_equal(st.malformed, bad);
    assert_int_equal(d.malformed, (int)bad);
    assert_int_equal(st.late, 0);
    assert_true(st.checkpoints > 5);
    /* a second run finds everything committed: nothing to redo, same table */
    rn_memsrc_t *m2;
    assert_int_equal(rn_memsrc_new("clickstream", 3, &m2), RN_OK);
    fill(m2, evs, n);
    if (run(p, m2, 0, &st, &d, err) != RN_OK)
        fail_msg("%s", err);
    assert_int_equal(st.records, 0);
    assert_true(st.resumed_epoch > 0);
    compare_tables();
    rn_memsrc_free(m2);
    rn_memsrc_free(m);
    rn_plan_free(p);
    cleanup();
}

static void test_crash_and_restart(void **state)
{
    (void)state;
    setup_paths();
    static ev_t evs[9000];
    size_t n = gen(evs, 9000);
    expected(evs, n);
    rn_plan_t *p = fraud_plan();
    srand(1234);
    int crashes = 0;
    for (int attempt = 0; attempt < 40; attempt++) {
        rn_memsrc_t *m;
        assert_int_equal(rn_memsrc_new("clickstream", 3, &m), RN_OK);
        fill(m, evs, n);
        rn_memsrc_set_batch(m, 37 + (size_t)(rand() % 200));
        rn_job_stats_t st;
        dlq_t d = {0};
        char err[1024];
        uint64_t crash_at = attempt < 8 ? 1 + (uint64_t)(rand() % 2500) : 0;
        rn_err_t e = run(p, m, crash_at, &st, &d, err);
        rn_memsrc_free(m);
        if (crash_at && e == RN_ERR_STATE && strstr(err, "test crash")) {
            crashes++;
            continue;
        }
        if (e != RN_OK)
            fail_msg("run %d: %s", attempt, err);
        break;
    }
    assert_true(crashes >= 5);
    compare_tables(); /* no row lost, none double-counted */
    rn_plan_free(p);
    cleanup();
}

static void test_late_records_and_mismatch(void **state)
{
    (void)state;
    setup_paths();
    rn_plan_t *p = fraud_plan();
    rn_memsrc_t *m;
    assert_int_equal(rn_memsrc_new("clickstream", 1, &m), RN_OK);
    const char *lines[] = {
        "{\"user_id\":\"a\",\"action\":\"click\",\"value\":600,\"timestamp\":1000}",
        "{\"user_id\":\"a\",\"action\":\"click\",\"value\":600,\"timestamp\":2000}",
        "{\"user_id\":\"a\",\"action\":\"click\",\"value\":1,\"timestamp\":30000}",
        "{\"user_id\":\"a\",\"action\":\"click\",\"value\":999,\"timestamp\":3000}", /* late */
        "not json",
    };
    for (int i = 0; i < 5; i++)
        rn_memsrc_append(m, 0, lines[i], strlen(lines[i]));
    rn_job_stats_t st;
    dlq_t d = {0};
    char err[1024];
    if (run(p, m, 0, &st, &d, err) != RN_OK)
        fail_msg("%s", err);
    assert_int_equal(st.late, 1);
    assert_int_equal(d.late, 1);
    assert_int_equal(d.malformed, 1);
    assert_non_null(strstr(d.last_reason, "malformed JSON at byte 0"));
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    sqlite3_prepare_v2(db, "SELECT total, clicks FROM suspicious_users", -1, &q, NULL);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_true(sqlite3_column_double(q, 0) == 1200); /* without the late 999 */
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* the sink says checkpoint N but the state dir lost it: a clear error, not a silent reset */
    char snap[4400];
    rn_snap_path(g_state, st.epoch, snap, sizeof snap);
    assert_int_equal(unlink(snap), 0);
    assert_int_equal(run(p, m, 0, &st, &d, err), RN_ERR_STATE);
    assert_non_null(strstr(err, "is missing"));
    rn_memsrc_free(m);
    rn_plan_free(p);
    cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_crash_and_restart),
        cmocka_unit_test(test_late_records_and_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
