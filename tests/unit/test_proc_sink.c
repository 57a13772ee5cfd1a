/* processor/sink: SQLite upserts and offsets in one transaction, STDOUT JSON lines, and the
 * TOPIC sink through a fake publisher. */
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

#include "sink/sink.h"

static const rn_plan_col_t COLS[] = {{"window_start", RN_T_TIMESTAMP}, {"user_id", RN_T_TEXT},
                                     {"total", RN_T_DOUBLE}, {"clicks", RN_T_BIGINT},
                                     {"flag", RN_T_BOOLEAN}};
static const int PK[] = {0, 1};
static const rn_sink_schema_t SCHEMA = {"fraud", "suspicious users", COLS, 5, PK, 2};

static void row(rn_value_t *r, int64_t ws, const char *u, double total, int64_t clicks)
{
    r[0] = rn_val_int(RN_T_TIMESTAMP, ws);
    r[1] = rn_val_text(u, strlen(u));
    r[2] = rn_val_double(total);
    r[3] = rn_val_int(RN_T_BIGINT, clicks);
    r[4] = clicks % 2 ? rn_val_bool(true) : rn_val_null(RN_T_BOOLEAN);
}

static char *tmpfile_path(const char *suffix)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/proc-sink-%d%s", base, (int)getpid(), suffix);
    return p;
}

static void unlink_db(const char *path)
{
    char x[4200];
    unlink(path);
    snprintf(x, sizeof x, "%s-wal", path);
    unlink(x);
    snprintf(x, sizeof x, "%s-shm", path);
    unlink(x);
}

static int64_t query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_sqlite_upsert_and_offsets(void **state)
{
    (void)state;
    char *path = tmpfile_path(".db");
    unlink_db(path);
    char err[1024];
    rn_sink_t *s;
    assert_int_equal(rn_sink_open(RN_SINK_SQLITE, path, &SCHEMA, NULL, &s, err, sizeof err), RN_OK);
    assert_true(rn_sink_transactional(s));
    uint64_t epoch;
    rn_sink_offset_t *offs;
    size_t n;
    assert_int_equal(rn_sink_read_offsets(s, &epoch, &offs, &n), RN_OK);
    assert_true(epoch == 0 && n == 0);

    rn_value_t r[5];
    row(r, 1698400800000, "u1", 1500.5, 3);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    row(r, 1698400800000, "it's \"u2\"", 10, 4);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    /* not committed: another connection sees nothing */
    assert_true(query_int(path, "SELECT COUNT(*) FROM \"suspicious users\"") == 0);
    rn_sink_offset_t o[2] = {{"clickstream", 0, 100}, {"clickstream", 1, 42}};
    assert_int_equal(rn_sink_commit(s, 1, o, 2), RN_OK);
    assert_true(query_int(path, "SELECT COUNT(*) FROM \"suspicious users\"") == 2);
    assert_true(query_int(path, "SELECT window_start FROM \"suspicious users\" WHERE user_id = 'u1'") == 1698400800000);
    assert_true(query_int(path, "SELECT typeof(total) = 'real' AND flag = 1 FROM \"suspicious users\" WHERE user_id = 'u1'") == 1);
    assert_true(query_int(path, "SELECT flag IS NULL FROM \"suspicious users\" WHERE user_id = 'it''s \"u2\"'") == 1);

    /* upsert overwrites by key; delete removes; offsets move in the same transaction */
    row(r, 1698400800000, "u1", 2000, 5);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    row(r, 1698400800000, "it's \"u2\"", 0, 0);
    assert_int_equal(rn_sink_delete(s, r), RN_OK);
    o[0].next_offset = 150;
    assert_int_equal(rn_sink_commit(s, 2, o, 1), RN_OK);
    assert_true(query_int(path, "SELECT COUNT(*) FROM \"suspicious users\"") == 1);
    assert_true(query_int(path, "SELECT clicks FROM \"suspicious users\" WHERE user_id = 'u1'") == 5);
    assert_true(query_int(path, "SELECT next_offset FROM runnel_offsets WHERE job = 'fraud' AND \"partition\" = 0") == 150);
    assert_true(query_int(path, "SELECT next_offset FROM runnel_offsets WHERE job = 'fraud' AND \"partition\" = 1") == 42);

    /* rows written after the last commit vanish with the process */
    row(r, 0, "ghost", 1, 1);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    rn_sink_close(s);
    assert_true(query_int(path, "SELECT COUNT(*) FROM \"suspicious users\" WHERE user_id = 'ghost'") == 0);

    /* a restart reads back what was committed */
    assert_int_equal(rn_sink_open(RN_SINK_SQLITE, path, &SCHEMA, NULL, &s, err, sizeof err), RN_OK);
    assert_int_equal(rn_sink_read_offsets(s, &epoch, &offs, &n), RN_OK);
    assert_true(epoch == 2);
    assert_int_equal(n, 2);
    assert_string_equal(offs[0].topic, "clickstream");
    assert_true(offs[0].partition == 0 && offs[0].next_offset == 150);
    assert_true(offs[1].partition == 1 && offs[1].next_offset == 42);
    rn_sink_offsets_free(offs, n);
    rn_sink_close(s);

    /* another job in the same database keeps its own offsets */
    rn_sink_schema_t other = SCHEMA;
    other.job = "other";
    assert_int_equal(rn_sink_open(RN_SINK_SQLITE, path, &other, NULL, &s, err, sizeof err), RN_OK);
    assert_int_equal(rn_sink_read_offsets(s, &epoch, &offs, &n), RN_OK);
    assert_true(epoch == 0 && n == 0);
    rn_sink_offsets_free(offs, n);
    rn_sink_close(s);
    unlink_db(path);

    /* errors name the database */
    assert_int_equal(rn_sink_open(RN_SINK_SQLITE, "/nonexistent/dir/x.db", &SCHEMA, NULL, &s, err, sizeof err), RN_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/dir/x.db"));
    free(path);
}

static void test_sqlite_schema_mismatch_is_an_error(void **state)
{
    (void)state;
    char *path = tmpfile_path("-mismatch.db");
    unlink_db(path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE \"suspicious users\" (a INTEGER)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[1024];
    rn_sink_t *s;
    assert_int_equal(rn_sink_open(RN_SINK_SQLITE, path, &SCHEMA, NULL, &s, err, sizeof err), RN_ERR_IO);
    assert_non_null(strstr(err, "window_start")); /* "table … has no column named window_start" */
    unlink_db(path);
    free(path);
}

static void test_stdout_json_lines(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rn_sink_io_t io = {.out = f};
    char err[1024];
    rn_sink_t *s;
    assert_int_equal(rn_sink_open(RN_SINK_STDOUT, NULL, &SCHEMA, &io, &s, err, sizeof err), RN_OK);
    assert_false(rn_sink_transactional(s));
    rn_value_t r[5];
    row(r, 1698400800123, "a\"b\n", 0.1, 3);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    assert_int_equal(rn_sink_delete(s, r), RN_OK);
    assert_int_equal(rn_sink_commit(s, 1, NULL, 0), RN_OK);
    rn_sink_close(s);
    fclose(f);
    assert_string_equal(text,
        "{\"window_start\":\"2023-10-27T10:00:00.123Z\",\"user_id\":\"a\\\"b\\n\",\"total\":0.10000000000000001,\"clicks\":3,\"flag\":true}\n"
        "{\"window_start\":\"2023-10-27T10:00:00.123Z\",\"user_id\":\"a\\\"b\\n\",\"__deleted\":true}\n");
    free(text);
}

typedef struct fake_topic {
    char log[8][256];
    int n, flushes;
} fake_topic_t;

static rn_err_t fake_publish(void *ctx, const char *topic, const void *key, size_t klen,
                             const void *value, size_t vlen)
{
    fake_topic_t *t = ctx;
    snprintf(t->log[t->n++], 256, "%s|%.*s|%.*s", topic, (int)klen, (const char *)key,
             value ? (int)vlen : 4, value ? (const char *)value : "NULL");
    return RN_OK;
}

static rn_err_t fake_flush(void *ctx)
{
    ((fake_topic_t *)ctx)->flushes++;
    return RN_OK;
}

static void test_topic_sink(void **state)
{
    (void)state;
    fake_topic_t t = {0};
    rn_sink_io_t io = {.publish = fake_publish, .flush = fake_flush, .ctx = &t};
    char err[1024];
    rn_sink_t *s;
    assert_int_equal(rn_sink_open(RN_SINK_TOPIC, "alerts", &SCHEMA, NULL, &s, err, sizeof err), RN_ERR_STATE);
    assert_non_null(strstr(err, "producer"));
    assert_int_equal(rn_sink_open(RN_SINK_TOPIC, "alerts", &SCHEMA, &io, &s, err, sizeof err), RN_OK);
    rn_value_t r[5];
    row(r, 0, "u1", 5, 2);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    assert_int_equal(rn_sink_delete(s, r), RN_OK);
    assert_int_equal(rn_sink_commit(s, 7, NULL, 0), RN_OK);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.log[0], "alerts|{\"window_start\":\"1970-01-01T00:00:00.000Z\",\"user_id\":\"u1\"}|"
                                  "{\"window_start\":\"1970-01-01T00:00:00.000Z\",\"user_id\":\"u1\",\"total\":5,\"clicks\":2,\"flag\":null}");
    assert_string_equal(t.log[1], "alerts|{\"window_start\":\"1970-01-01T00:00:00.000Z\",\"user_id\":\"u1\"}|NULL");
    assert_int_equal(t.flushes, 1);
    rn_sink_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite_upsert_and_offsets),
        cmocka_unit_test(test_sqlite_schema_mismatch_is_an_error),
        cmocka_unit_test(test_stdout_json_lines),
        cmocka_unit_test(test_topic_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
