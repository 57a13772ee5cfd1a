/*
 * processor/sink/postgres.c against a real PostgreSQL server that this test starts:
 * initdb in a fresh directory, a free loopback port, pg_ctl start; run as the unprivileged
 * `postgres` account when the test runs as root (PostgreSQL refuses root). Nothing is
 * skipped: if the server cannot start, the test fails and prints the server's log.
 * PG_BINDIR overrides where initdb and pg_ctl are (default /usr/lib/postgresql/15/bin, then
 * `pg_config --bindir`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/sink.h"

static char g_dir[256], g_bindir[512], g_conninfo[256], g_runas[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static void find_bindir(void)
{
    const char *env = getenv("PG_BINDIR");
    if (env) {
        snprintf(g_bindir, sizeof g_bindir, "%s", env);
        return;
    }
    snprintf(g_bindir, sizeof g_bindir, "/usr/lib/postgresql/15/bin");
    char probe[600];
    snprintf(probe, sizeof probe, "%s/initdb", g_bindir);
    if (access(probe, X_OK) == 0)
        return;
    FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p && fgets(g_bindir, sizeof g_bindir, p))
        g_bindir[strcspn(g_bindir, "\n")] = '\0';
    if (p)
        pclose(p);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (g_runas[0])
        snprintf(full, sizeof full, "runuser -u %s -- sh -c '%s'", g_runas, cmd);
    else
        snprintf(full, sizeof full, "sh -c '%s'", cmd);
    return system(full);
}

static void print_log(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tail -n 30 %s/log %s/initdb.log 1>&2", g_dir, g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no server log)\n");
}

static int start_server(void **state)
{
    (void)state;
    find_bindir();
    snprintf(g_dir, sizeof g_dir, "/tmp/rn-pg-XXXXXX"); /* short: the socket path is limited */
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a temp dir\n");
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "running as root and there is no 'postgres' account to run the "
                            "server as (install the Debian package postgresql)\n");
            return -1;
        }
        snprintf(g_runas, sizeof g_runas, "postgres");
        if (chown(g_dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    chmod(g_dir, 0700);
    int port = free_port();
    if (sh("%s/initdb -D %s/data -A trust -U runnel -E UTF8 --no-sync >%s/initdb.log 2>&1",
           g_bindir, g_dir, g_dir) != 0) {
        fprintf(stderr, "initdb failed (bindir %s):\n", g_bindir);
        print_log();
        return -1;
    }
    if (sh("%s/pg_ctl -D %s/data -l %s/log -w -t 60 -o \"-p %d -k %s -c listen_addresses=127.0.0.1 "
           "-c fsync=off\" start >/dev/null 2>&1", g_bindir, g_dir, g_dir, port, g_dir) != 0) {
        fprintf(stderr, "the PostgreSQL server did not start on port %d:\n", port);
        print_log();
        return -1;
    }
    snprintf(g_conninfo, sizeof g_conninfo,
             "host=127.0.0.1 port=%d user=runnel dbname=postgres connect_timeout=10", port);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    if (g_dir[0]) {
        sh("%s/pg_ctl -D %s/data -m immediate stop >/dev/null 2>&1", g_bindir, g_dir);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_dir);
    }
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
