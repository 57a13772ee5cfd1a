/*
 * processor/sink/postgres.c against a real PostgreSQL server that this test starts
 * (tests/support/pgserver.h). Nothing is skipped: if the server cannot start, the test fails
 * and prints the server's log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgserver.h"
#include "sink/sink.h"

static char g_conninfo[256];

static int start_server(void **state)
{
    (void)state;
    return rn_pg_start(g_conninfo, sizeof g_conninfo);
}

static int stop_server(void **state)
{
    (void)state;
    rn_pg_stop();
    return 0;
}

static char *query(const char *sql)
{
    PGconn *c = PQconnectdb(g_conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    char *v = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "(none)");
    PQclear(r);
    PQfinish(c);
    return v;
}

static void expect(const char *sql, const char *want)
{
    char *got = query(sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n got: %s\nwant: %s", sql, got, want);
    free(got);
}

static const rn_plan_col_t COLS[] = {{"window_start", RN_T_TIMESTAMP}, {"user_id", RN_T_TEXT},
                                     {"total", RN_T_DOUBLE}, {"clicks", RN_T_BIGINT},
                                     {"flag", RN_T_BOOLEAN}};
static const int PK[] = {0, 1};
static const rn_sink_schema_t SCHEMA = {"fraud", "suspicious_users", COLS, 5, PK, 2};

static void row(rn_value_t *r, int64_t ws, const char *u, double total, int64_t clicks)
{
    r[0] = rn_val_int(RN_T_TIMESTAMP, ws);
    r[1] = rn_val_text(u, strlen(u));
    r[2] = rn_val_double(total);
    r[3] = rn_val_int(RN_T_BIGINT, clicks);
    r[4] = clicks % 2 ? rn_val_bool(true) : rn_val_null(RN_T_BOOLEAN);
}

static void test_postgres_sink(void **state)
{
    (void)state;
    char err[1024];
    rn_sink_t *s;
    assert_int_equal(rn_sink_open(RN_SINK_POSTGRES, g_conninfo, &SCHEMA, NULL, &s, err, sizeof err), RN_OK);
    uint64_t epoch;
    rn_sink_offset_t *offs;
    size_t n;
    assert_int_equal(rn_sink_read_offsets(s, &epoch, &offs, &n), RN_OK);
    assert_true(epoch == 0 && n == 0);
    rn_sink_offsets_free(offs, n);

    rn_value_t r[5];
    row(r, 1698400800000, "u1", 1500.5, 3);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    row(r, 1698400800000, "it's", 10, 4);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    expect("SELECT COUNT(*) FROM suspicious_users", "0"); /* not committed yet */
    rn_sink_offset_t o[2] = {{"clickstream", 0, 100}, {"clickstream", 1, 42}};
    assert_int_equal(rn_sink_commit(s, 1, o, 2), RN_OK);
    expect("SELECT COUNT(*) FROM suspicious_users", "2");
    expect("SELECT window_start AT TIME ZONE 'UTC' FROM suspicious_users WHERE user_id = 'u1'",
           "2023-10-27 10:00:00");
    expect("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
           "'suspicious_users'::regclass AND attname = 'window_start'", "timestamp with time zone");
    expect("SELECT total FROM suspicious_users WHERE user_id = 'u1'", "1500.5");
    expect("SELECT flag FROM suspicious_users WHERE user_id = 'u1'", "t");
    expect("SELECT flag IS NULL FROM suspicious_users WHERE user_id = 'it''s'", "t");

    row(r, 1698400800000, "u1", 2000, 5);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    row(r, 1698400800000, "it's", 0, 0);
    assert_int_equal(rn_sink_delete(s, r), RN_OK);
    o[0].next_offset = 150;
    assert_int_equal(rn_sink_commit(s, 2, o, 1), RN_OK);
    expect("SELECT COUNT(*) FROM suspicious_users", "1");
    expect("SELECT clicks FROM suspicious_users WHERE user_id = 'u1'", "5");
    expect("SELECT next_offset FROM runnel_offsets WHERE job = 'fraud' AND partition = 0", "150");
    expect("SELECT epoch FROM runnel_checkpoints WHERE job = 'fraud'", "2");

    row(r, 0, "ghost", 1, 1); /* uncommitted: gone with the connection */
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    rn_sink_close(s);
    expect("SELECT COUNT(*) FROM suspicious_users WHERE user_id = 'ghost'", "0");

    assert_int_equal(rn_sink_open(RN_SINK_POSTGRES, g_conninfo, &SCHEMA, NULL, &s, err, sizeof err), RN_OK);
    assert_int_equal(rn_sink_read_offsets(s, &epoch, &offs, &n), RN_OK);
    assert_true(epoch == 2);
    assert_int_equal(n, 2);
    assert_string_equal(offs[0].topic, "clickstream");
    assert_true(offs[0].next_offset == 150 && offs[1].next_offset == 42);
    rn_sink_offsets_free(offs, n);

    /* a failing statement aborts the whole checkpoint: nothing of it is visible */
    row(r, 1, "partial", 1, 1);
    assert_int_equal(rn_sink_upsert(s, r), RN_OK);
    rn_value_t bad[5];
    row(bad, 2, "bad", 1, 1);
    bad[0] = rn_val_null(RN_T_TIMESTAMP); /* NULL in a primary key column */
    assert_int_equal(rn_sink_upsert(s, bad), RN_ERR_IO);
    assert_non_null(strstr(rn_sink_errmsg(s), "postgres: upsert"));
    expect("SELECT COUNT(*) FROM suspicious_users WHERE user_id = 'partial'", "0");
    rn_sink_close(s);

    char bad_conn[300];
    snprintf(bad_conn, sizeof bad_conn, "%s", g_conninfo);
    strcpy(strstr(bad_conn, "dbname=postgres"), "dbname=nope connect_timeout=5");
    assert_int_equal(rn_sink_open(RN_SINK_POSTGRES, bad_conn, &SCHEMA, NULL, &s, err, sizeof err), RN_ERR_IO);
    assert_non_null(strstr(err, "cannot connect"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgres_sink),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
