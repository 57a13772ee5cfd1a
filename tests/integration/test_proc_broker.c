/*
 * runnel-processor through a real broker: the example jobs of examples/ give the table that
 * SQL over the raw events (in SQLite, inside this test, none of the processor's code) says
 * they must, into SQLite and into a real PostgreSQL server; a processor SIGKILLed at random
 * moments and restarted ends with the same table; malformed and late records are counted and
 * go to the dead-letter topic; the TOPIC sink publishes the same table as keyed records.
 *
 * Known answers with late events. Which records are late depends on the watermark, which
 * depends on how the partitions interleave, unless the data says it for sure. So the events
 * come in two phases: phase 1 (in order within each partition up to 4 s, inside every job's
 * watermark delay, so nothing is late) is read by processors that run unbounded until their
 * sinks have committed all of it, then stop on SIGTERM (checkpoint: the watermark is saved).
 * Phase 2 opens in every partition with events from a day earlier -- late for every job,
 * since every window they fall in closed during phase 1 -- and goes on in order; processors
 * then run --bounded over it. Malformed records (bad JSON, not an object, no time field, a
 * mistyped time field) are sprinkled through both phases and are malformed for every job.
 *
 * The metrics endpoint (--metrics-listen 127.0.0.1:0): an unbounded job scraped over HTTP
 * until it has caught up -- records in equal records produced, lag 0 on every partition,
 * /readyz 200, freshness observed for every record, rows upserted equal to the sink's rows
 * -- and the scrape passes `promtool check metrics`.
 *
 * RUNNEL_PROCESSOR_BIN, RUNNEL_BROKER_BIN come from CTest; RN_EXAMPLES_DIR from the build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pgserver.h"
#include "test_client_util.h"

#define PARTS 6
#define T0 1698400800000LL /* 2023-10-27T10:00:00Z */
#define DAY 86400000LL

/* ------------------------------------------------------------------- events -- */

typedef enum { EV_OK, EV_BAD_JSON, EV_NOT_OBJECT, EV_NO_TIME, EV_BAD_TIME, EV_LATE } ev_kind_t;

typedef struct ev {
    int part;
    ev_kind_t kind;
    int64_t ts;
    char user[8], page[12], page_id[8], merchant[8];
    const char *action, *event_type;
    int value;
    int amount; /* -1: JSON null */
} ev_t;

typedef struct gen {
    int64_t clock[PARTS];
    int count[PARTS];
    unsigned seed;
} gen_t;

static int rnd(gen_t *g, int n)
{
    return (int)(rand_r(&g->seed) % (unsigned)n);
}

/*
 * One event for partition part. Every 1,500th event of a partition jumps its clock 20 minutes
 * ahead, so user sessions (15-minute gap) break; late ones fall a day before T0, before every
 * window and session of the run.
 */
static void gen_event(gen_t *g, int part, ev_kind_t kind, ev_t *e)
{
    memset(e, 0, sizeof *e);
    e->part = part;
    e->kind = kind;
    if (++g->count[part] % 1500 == 0)
        g->clock[part] += 20 * 60000;
    g->clock[part] += rnd(g, 800);
    e->ts = kind == EV_LATE ? T0 - DAY + rnd(g, 3600000) : g->clock[part] - rnd(g, 4000);
    int u = rnd(g, 100) < 85 ? rnd(g, 5) : 5 + rnd(g, 40);
    snprintf(e->user, sizeof e->user, "u%d", u);
    snprintf(e->page, sizeof e->page, "/p%d", rnd(g, 7));
    snprintf(e->page_id, sizeof e->page_id, "pg%d", rnd(g, 9));
    snprintf(e->merchant, sizeof e->merchant, "m%d", rnd(g, 6));
    static const char *actions[] = {"click", "click", "click", "view", "purchase"};
    static const char *types[] = {"page_view", "page_view", "scroll", "page_view", "click"};
    e->action = kind == EV_LATE ? "click" : actions[rnd(g, 5)];
    e->event_type = kind == EV_LATE ? "page_view" : types[rnd(g, 5)];
    e->value = rnd(g, 400);
    e->amount = kind != EV_LATE && rnd(g, 20) == 0 ? -1 : 1 + rnd(g, 500);
}

/* The event as JSON; half the time stamps are ISO-8601, half epoch milliseconds. */
static size_t ev_json(const ev_t *e, int i, char *buf, size_t len)
{
    char ts[48], amount[16];
    if (i % 2) {
        time_t secs = (time_t)(e->ts / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char day[32];
        strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts, sizeof ts, "\"%s.%03dZ\"", day, (int)(e->ts % 1000));
    } else {
        snprintf(ts, sizeof ts, "%lld", (long long)e->ts);
    }
    if (e->kind == EV_BAD_TIME)
        snprintf(ts, sizeof ts, "true");
    if (e->amount < 0)
        snprintf(amount, sizeof amount, "null");
    else
        snprintf(amount, sizeof amount, "%d.5", e->amount);
    int n;
    switch (e->kind) {
    case EV_BAD_JSON:
        n = snprintf(buf, len, "{\"user_id\": \"%s\", \"action\": \"cli", e->user);
        break;
    case EV_NOT_OBJECT:
        n = snprintf(buf, len, "[\"%s\", %d]", e->user, e->value);
        break;
    case EV_NO_TIME:
        n = snprintf(buf, len, "{\"user_id\": \"%s\", \"action\": \"click\", \"event_type\": "
                     "\"page_view\", \"page\": \"/\", \"page_id\": \"x\", \"value\": 1, "
                     "\"merchant_id\": \"m0\", \"amount\": 1}", e->user);
        break;
    default:
        n = snprintf(buf, len,
                     "{\"user_id\": \"%s\", \"action\": \"%s\", \"event_type\": \"%s\", "
                     "\"page\": \"%s\", \"page_id\": \"%s\", \"value\": %d, \"merchant_id\": "
                     "\"%s\", \"amount\": %s, \"extra\": {\"nested\": [1, 2, {\"x\": null}]}, "
                     "\"timestamp\": %s, \"event_time\": %s, \"ts\": %s}",
                     e->user, e->action, e->event_type, e->page, e->page_id, e->value,
                     e->merchant, amount, ts, ts, ts);
    }
    assert_true(n > 0 && (size_t)n < len);
    return (size_t)n;
}

/* ------------------------------------------------------------ the examples -- */

typedef struct example {
    const char *name;      /* examples/NAME/NAME.sql */
    const char *table;
    const char *cols;      /* the sink's columns, in the order compared */
    const char *ts_cols;   /* which of them are TIMESTAMPs, comma-separated */
    const char *order;
    const char *expected;  /* over events(part, ts, user_id, action, event_type, page, page_id,
                            * value, merchant_id, amount): the same columns, same order */
} example_t;

static const example_t EXAMPLES[] = {
    {"fraud_alerts", "suspicious_users", "window_start, window_end, user_id, total, clicks",
     "window_start,window_end", "window_start, user_id",
     "SELECT ts / 300000 * 300000, ts / 300000 * 300000 + 300000, user_id, SUM(value), COUNT(*)"
     " FROM events WHERE action = 'click' GROUP BY 1, 2, 3 HAVING SUM(value) > 1000"
     " ORDER BY 1, 3"},
    {"page_views", "page_views_per_minute", "window_start, window_end, page, views",
     "window_start,window_end", "window_start, page",
     "SELECT ts / 60000 * 60000, ts / 60000 * 60000 + 60000, page, COUNT(*) FROM events"
     " WHERE event_type = 'page_view' GROUP BY 1, 2, 3 ORDER BY 1, 3"},
    {"active_users", "minute_metrics", "window_start, window_end, active_users, total_events",
     "window_start,window_end", "window_start",
     "SELECT ts / 60000 * 60000, ts / 60000 * 60000 + 60000, COUNT(DISTINCT user_id), COUNT(*)"
     " FROM events GROUP BY 1, 2 ORDER BY 1"},
    {"merchant_avg", "merchant_avg_5m",
     "window_start, window_end, merchant_id, avg_amount, transactions, max_amount",
     "window_start,window_end", "window_start, merchant_id",
     "SELECT ts / 300000 * 300000, ts / 300000 * 300000 + 300000, merchant_id, AVG(amount),"
     " COUNT(*), MAX(amount) FROM events WHERE amount IS NOT NULL GROUP BY 1, 2, 3"
     " ORDER BY 1, 3"},
    {"user_sessions", "user_sessions", "user_id, window_start, window_end, pages, distinct_pages",
     "window_start,window_end", "user_id, window_start",
     "WITH f AS (SELECT user_id, ts, page_id, CASE WHEN ts - LAG(ts) OVER (PARTITION BY user_id"
     " ORDER BY ts) <= 900000 THEN 0 ELSE 1 END AS brk FROM events WHERE event_type ="
     " 'page_view'), s AS (SELECT user_id, ts, page_id, SUM(brk) OVER (PARTITION BY user_id"
     " ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM f) SELECT user_id, MIN(ts),"
     " MAX(ts) + 900000, COUNT(*), COUNT(DISTINCT page_id) FROM s GROUP BY user_id, sid"
     " ORDER BY 1, 2"},
    {"page_views_hopping", "page_views_10m", "window_start, window_end, page, views, viewers",
     "window_start,window_end", "window_end, page",
     "WITH k(n) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) SELECT"
     " (ts / 60000 - n) * 60000, (ts / 60000 - n) * 60000 + 600000, page, COUNT(*),"
     " COUNT(DISTINCT user_id) FROM events, k WHERE event_type = 'page_view'"
     " GROUP BY 1, 2, 3 ORDER BY 2, 3"},
};
#define NEXAMPLES (sizeof EXAMPLES / sizeof EXAMPLES[0])

/* ---------------------------------------------------------------- fixture -- */

static rn_hbroker_t g_broker;
static char *g_dir;
static sqlite3 *g_expect;          /* events that count, and nothing else */
static char g_pg[256];
static bool g_pg_up;

static void expect_open(void)
{
    assert_int_equal(sqlite3_open(":memory:", &g_expect), SQLITE_OK);
    assert_int_equal(sqlite3_exec(g_expect,
                                  "CREATE TABLE events (part INTEGER, ts INTEGER, user_id TEXT,"
                                  " action TEXT, event_type TEXT, page TEXT, page_id TEXT,"
                                  " value REAL, merchant_id TEXT, amount REAL)",
                                  NULL, NULL, NULL), SQLITE_OK);
}

static void expect_add(const ev_t *e)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(g_expect, "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?,"
                                        " ?, ?, ?, ?)", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int(st, 1, e->part);
    sqlite3_bind_int64(st, 2, e->ts);
    sqlite3_bind_text(st, 3, e->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->event_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->page, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, e->page_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 8, e->value);
    sqlite3_bind_text(st, 9, e->merchant, -1, SQLITE_STATIC);
    if (e->amount < 0)
        sqlite3_bind_null(st, 10);
    else
        sqlite3_bind_double(st, 10, e->amount + 0.5);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

typedef struct counts {
    int produced, malformed, late;
} counts_t;

/* Produces n events (the first `late` of each partition late), acks=all, and records them. */
static void produce(const char *topic, gen_t *g, int n, int late_per_part, counts_t *c)
{
    const char *pairs[] = {"acks=all", "linger.ms=2", NULL};
    rn_conf_t *conf = tc_conf(&g_broker, pairs);
    rn_producer_t *p;
    char err[256];
    assert_int_equal(rn_producer_new(conf, NULL, NULL, &p, err, sizeof err), RN_OK);
    rn_conf_free(conf);
    int late_left[PARTS];
    for (int i = 0; i < PARTS; i++)
        late_left[i] = late_per_part;
    for (int i = 0; i < n; i++) {
        int part = rnd(g, PARTS);
        ev_kind_t kind = EV_OK;
        if (late_left[part] > 0) {
            kind = EV_LATE;
            late_left[part]--;
        } else if (rnd(g, 150) == 0) {
            kind = (ev_kind_t)(EV_BAD_JSON + rnd(g, 4));
        }
        ev_t e;
        gen_event(g, part, kind, &e);
        char json[1024];
        size_t len = ev_json(&e, i, json, sizeof json);
        rn_message_t m = {.topic = topic, .partition = part, .key = e.user,
                          .key_len = strlen(e.user), .value = json, .value_len = len};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
        c->produced++;
        if (kind == EV_OK)
            expect_add(&e);
        else if (kind == EV_LATE)
            c->late++;
        else
            c->malformed++;
    }
    assert_int_equal(rn_producer_flush(p, 60000), RN_OK);
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
}

static int setup(void **state)
{
    (void)state;
    tc_broker_start(&g_broker, "proc", NULL);
    g_dir = rn_h_tmpdir("proc-broker");
    setenv("RUNNEL_BROKERS", g_broker.addr, 1);
    expect_open();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_pg_up)
        rn_pg_stop();
    sqlite3_close(g_expect);
    tc_broker_finish(&g_broker);
    rn_h_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* ------------------------------------------------------- processes and jobs -- */

typedef struct job {
    const example_t *ex;
    bool pg;
    char file[700], state[700], log[700], db[700];
    pid_t pid;
} job_t;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_true(fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* s with every `from` replaced by `to` (one level, no overlap); free() it. */
static char *replace(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * tl + 1), *w = out;
    for (const char *p; (p = strstr(s, from)); s = p + fl) {
        memcpy(w, s, (size_t)(p - s));
        w += p - s;
        memcpy(w, to, tl);
        w += tl;
    }
    strcpy(w, s);
    return out;
}

/*
 * The example's job file, reading `topic` and writing into a SQLite file of its own (or
 * into the PostgreSQL server), written under tag/ in the test's directory.
 */
static void job_prepare(job_t *j, const example_t *ex, const char *tag, const char *topic,
                        bool pg)
{
    memset(j, 0, sizeof *j);
    j->ex = ex;
    j->pg = pg;
    char sub[600], src[700], from_topic[300], sink[900];
    snprintf(sub, sizeof sub, "%s/%s", g_dir, tag);
    mkdir(sub, 0755);
    snprintf(j->file, sizeof j->file, "%s/%s.sql", sub, ex->name);
    snprintf(j->state, sizeof j->state, "%s/%s.state", sub, ex->name);
    snprintf(j->log, sizeof j->log, "%s/%s.log", sub, ex->name);
    snprintf(j->db, sizeof j->db, "%s/%s.db", sub, ex->name);
    snprintf(src, sizeof src, "%s/%s/%s.sql", RN_EXAMPLES_DIR, ex->name, ex->name);
    char *text = slurp(src);
    char *t1 = NULL;
    const char *topics[] = {"'clickstream'", "'user-clicks'", "'transactions'", "'user-events'"};
    snprintf(from_topic, sizeof from_topic, "'%s'", topic);
    for (size_t i = 0; i < 4; i++) {
        t1 = replace(text, topics[i], from_topic);
        free(text);
        text = t1;
    }
    if (pg)
        snprintf(sink, sizeof sink, "POSTGRES '%s'", g_pg);
    else
        snprintf(sink, sizeof sink, "SQLITE '%s'", j->db);
    t1 = replace(text, "SQLITE 'analytics.db'", sink);
    assert_non_null(strstr(t1, pg ? "POSTGRES" : j->db));
    FILE *f = fopen(j->file, "w");
    assert_non_null(f);
    fputs(t1, f);
    fclose(f);
    free(text);
    free(t1);
}

/* Starts runnel-processor for the job with extra arguments (NULL-terminated). */
static void job_start(job_t *j, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)rn_h_bin("RUNNEL_PROCESSOR_BIN");
    argv[argc++] = "--job";
    argv[argc++] = j->file;
    argv[argc++] = "--state-dir";
    argv[argc++] = j->state;
    va_list ap;
    va_start(ap, j);
    for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(j->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    j->pid = pid;
}

static void dump_log(const job_t *j)
{
    char *log = slurp(j->log);
    fprintf(stderr, "---- %s (%s) ----\n%s\n", j->ex->name, j->pg ? "postgres" : "sqlite", log);
    free(log);
}

/* Waits for the job to exit (up to timeout_s, then SIGKILL); its exit status or -1. */
static int job_wait(job_t *j, int timeout_s)
{
    int status;
    for (int i = 0; i < timeout_s * 100; i++) {
        if (waitpid(j->pid, &status, WNOHANG) == j->pid) {
            j->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(10000);
    }
    kill(j->pid, SIGKILL);
    waitpid(j->pid, NULL, 0);
    j->pid = 0;
    return -1;
}

/* ------------------------------------------------------------ reading sinks -- */

typedef struct rows {
    char **v;      /* nrows * ncols values, NULL for SQL NULL */
    size_t nrows, ncols;
} rows_t;

static void rows_free(rows_t *r)
{
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static void rows_sqlite(sqlite3 *db, const char *sql, rows_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    memset(out, 0, sizeof *out);
    out->ncols = (size_t)sqlite3_column_count(st);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((out->nrows + 1) * out->ncols > cap) {
            cap = cap ? cap * 2 : 64 * out->ncols;
            out->v = realloc(out->v, cap * sizeof *out->v);
        }
        for (size_t c = 0; c < out->ncols; c++) {
            const unsigned char *t = sqlite3_column_text(st, (int)c);
            out->v[out->nrows * out->ncols + c] = t ? strdup((const char *)t) : NULL;
        }
        out->nrows++;
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
}

static void rows_pg(const char *sql, rows_t *out)
{
    PGconn *c = PQconnectdb(g_pg);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    out->nrows = (size_t)PQntuples(r);
    out->ncols = (size_t)PQnfields(r);
    out->v = calloc(out->nrows * out->ncols + 1, sizeof *out->v);
    for (size_t i = 0; i < out->nrows; i++)
        for (size_t k = 0; k < out->ncols; k++)
            out->v[i * out->ncols + k] = PQgetisnull(r, (int)i, (int)k)
                                             ? NULL
                                             : strdup(PQgetvalue(r, (int)i, (int)k));
    PQclear(r);
    PQfinish(c);
}

/* The job's table as the sink holds it: the example's columns, TIMESTAMPs as epoch ms. */
static void rows_of_sink(const job_t *j, rows_t *out)
{
    char sql[2048] = "SELECT ";
    char cols[512];
    snprintf(cols, sizeof cols, "%s", j->ex->cols);
    bool first = true;
    for (char *save, *c = strtok_r(cols, ", ", &save); c; c = strtok_r(NULL, ", ", &save)) {
        char one[200];
        bool ts = strstr(j->ex->ts_cols, c) != NULL;
        if (j->pg && ts)
            snprintf(one, sizeof one, "(extract(epoch from %s) * 1000)::bigint", c);
        else
            snprintf(one, sizeof one, "%s", c);
        strcat(sql, first ? "" : ", ");
        strcat(sql, one);
        first = false;
    }
    char tail[600];
    snprintf(tail, sizeof tail, " FROM %s ORDER BY %s", j->ex->table, j->ex->order);
    strcat(sql, tail);
    if (j->pg) {
        rows_pg(sql, out);
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(j->db, &db), SQLITE_OK);
        rows_sqlite(db, sql, out);
        sqlite3_close(db);
    }
}

static bool same_value(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    if (strcmp(a, b) == 0)
        return true;
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    return *a && *b && *ea == '\0' && *eb == '\0' && fabs(x - y) <= 1e-9 * fmax(1, fabs(x));
}

/* Row for row, with every difference printed; returns the number of differences. */
static int compare_rows(const char *what, const rows_t *want, const rows_t *got)
{
    int diffs = 0;
    if (want->nrows != got->nrows || want->ncols != got->ncols) {
        fprintf(stderr, "%s: expected %zu rows of %zu columns, got %zu of %zu\n", what,
                want->nrows, want->ncols, got->nrows, got->ncols);
        diffs++;
    }
    size_t n = want->nrows < got->nrows ? want->nrows : got->nrows;
    for (size_t i = 0; i < n && want->ncols == got->ncols && diffs < 10; i++) {
        for (size_t c = 0; c < want->ncols; c++) {
            const char *a = want->v[i * want->ncols + c], *b = got->v[i * got->ncols + c];
            if (!same_value(a, b)) {
                fprintf(stderr, "%s: row %zu column %zu: expected %s, got %s\n", what, i, c,
                        a ? a : "NULL", b ? b : "NULL");
                diffs++;
                break;
            }
        }
    }
    return diffs;
}

static int check_job(const job_t *j)
{
    rows_t want, got;
    rows_sqlite(g_expect, j->ex->expected, &want);
    rows_of_sink(j, &got);
    char what[128];
    snprintf(what, sizeof what, "%s (%s)", j->ex->name, j->pg ? "postgres" : "sqlite");
    int diffs = compare_rows(what, &want, &got);
    if (want.nrows < 5) {
        fprintf(stderr, "%s: only %zu expected rows; the data does not exercise the job\n",
                what, want.nrows);
        diffs++;
    }
    rows_free(&want);
    rows_free(&got);
    return diffs;
}

/* How many records the job's sink has committed offsets for (-1 when nothing yet). */
static long long committed(const job_t *j)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT SUM(next_offset) FROM runnel_offsets WHERE job = '%s'",
             j->ex->name);
    rows_t r = {0};
    if (j->pg) {
        PGconn *c = PQconnectdb(g_pg);
        PGresult *res = PQexec(c, sql);
        long long v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                              !PQgetisnull(res, 0, 0)
                          ? atoll(PQgetvalue(res, 0, 0))
                          : -1;
        PQclear(res);
        PQfinish(c);
        return v;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(j->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    (void)r;
    return v;
}

/* The "N malformed, M late" the job's last run reported on stderr. */
static void reported(const job_t *j, long long *malformed, long long *late)
{
    char *log = slurp(j->log);
    *malformed = *late = -1;
    for (char *p = log; (p = strstr(p, " records, ")); p++)
        sscanf(p, " records, %lld malformed, %lld late", malformed, late);
    free(log);
}

/* --------------------------------------------------------------------- tests -- */

static void known_answers(bool pg)
{
    const char *topic = pg ? "events-pg" : "events";
    const char *tag = pg ? "pg" : "sqlite";
    tc_create_topic(&g_broker, topic, PARTS, NULL);
    sqlite3_exec(g_expect, "DELETE FROM events", NULL, NULL, NULL);
    gen_t g = {.seed = pg ? 11u : 7u};
    for (int p = 0; p < PARTS; p++)
        g.clock[p] = T0;
    counts_t phase1 = {0}, phase2 = {0};
    produce(topic, &g, 24000, 0, &phase1);

    job_t jobs[NEXAMPLES];
    for (size_t i = 0; i < NEXAMPLES; i++) {
        job_prepare(&jobs[i], &EXAMPLES[i], tag, topic, pg);
        if (!pg && i == 0)
            job_start(&jobs[i], "--set", "checkpoint.interval.ms=100", "--set",
                      "dead.letter.topic=dead-letters", NULL);
        else
            job_start(&jobs[i], "--set", "checkpoint.interval.ms=100", NULL);
    }
    /* Phase 1: unbounded, until every sink has committed every record, then SIGTERM. */
    for (size_t i = 0; i < NEXAMPLES; i++) {
        int waited = 0;
        while (committed(&jobs[i]) < phase1.produced && waited++ < 6000)
            usleep(10000);
        if (committed(&jobs[i]) != phase1.produced) {
            dump_log(&jobs[i]);
            fail_msg("%s: committed %lld of %d records within 60 s", jobs[i].ex->name,
                     committed(&jobs[i]), phase1.produced);
        }
    }
    for (size_t i = 0; i < NEXAMPLES; i++) {
        kill(jobs[i].pid, SIGTERM);
        int status = job_wait(&jobs[i], 30);
        if (status != 0) {
            dump_log(&jobs[i]);
            fail_msg("%s: exit status %d after SIGTERM, want 0", jobs[i].ex->name, status);
        }
    }
    /* Phase 2: late records first in every partition, then more in order; --bounded. */
    produce(topic, &g, 24000, 3, &phase2);
    assert_int_equal(phase2.late, 3 * PARTS);
    int diffs = 0;
    for (size_t i = 0; i < NEXAMPLES; i++) {
        if (!pg && i == 0)
            job_start(&jobs[i], "--bounded", "--set", "checkpoint.interval.ms=100", "--set",
                      "dead.letter.topic=dead-letters", NULL);
        else
            job_start(&jobs[i], "--bounded", "--set", "checkpoint.interval.ms=100", NULL);
    }
    for (size_t i = 0; i < NEXAMPLES; i++) {
        int status = job_wait(&jobs[i], 120);
        long long malformed, late;
        reported(&jobs[i], &malformed, &late);
        int d = status != 0;
        if (malformed != phase2.malformed || late != phase2.late) {
            fprintf(stderr, "%s: reported %lld malformed and %lld late, want %d and %d\n",
                    jobs[i].ex->name, malformed, late, phase2.malformed, phase2.late);
            d++;
        }
        d += check_job(&jobs[i]);
        if (d)
            dump_log(&jobs[i]);
        diffs += d;
    }
    if (diffs)
        fail_msg("%d differences from the expected tables (printed above)", diffs);
    if (pg)
        return;
    /* The fraud job sent its malformed and late records to the dead-letter topic. */
    rn_conf_t *conf = tc_conf(&g_broker, NULL);
    rn_admin_t *a;
    char err[256];
    assert_int_equal(rn_admin_new(conf, &a, err, sizeof err), RN_OK);
    rn_metadata_t *md;
    assert_int_equal(rn_admin_describe(a, "dead-letters", 10000, &md), RN_OK);
    assert_int_equal(md->topic_count, 1);
    long long letters = 0;
    for (size_t p = 0; p < md->topics[0].partition_count; p++)
        letters += md->topics[0].partitions[p].log_end_offset -
                   md->topics[0].partitions[p].log_start_offset;
    rn_metadata_free(md);
    rn_admin_close(a);
    rn_conf_free(conf);
    assert_int_equal(letters, phase1.malformed + phase2.malformed + phase2.late);
}

static void test_known_answers_sqlite(void **state)
{
    (void)state;
    /* The dead-letter topic must exist for the producer to reach it. */
    tc_create_topic(&g_broker, "dead-letters", 2, NULL);
    known_answers(false);
}

static void test_known_answers_postgres(void **state)
{
    (void)state;
    assert_int_equal(rn_pg_start(g_pg, sizeof g_pg), 0);
    g_pg_up = true;
    known_answers(true);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * SIGKILL at random moments of --bounded runs, restart, and in the end the table a clean run
 * gives: no missing, duplicated or double-counted row. A first clean run (its own sink and
 * state) times the job, so the kills land inside a run on a fast machine and a slow one
 * alike; checkpoints every 10 ms and small fetches give each run many checkpoints to die
 * between. Data without late records, so the answer does not depend on how the partitions
 * interleave in each run.
 */
static void test_sigkill_and_restart(void **state)
{
    (void)state;
    const char *topic = "events-crash";
    tc_create_topic(&g_broker, topic, PARTS, NULL);
    sqlite3_exec(g_expect, "DELETE FROM events", NULL, NULL, NULL);
    gen_t g = {.seed = 23u};
    for (int p = 0; p < PARTS; p++)
        g.clock[p] = T0;
    counts_t c = {0};
    produce(topic, &g, 80000, 0, &c);
    const size_t which[] = {0, 4}; /* fraud alerts (tumble) and user sessions (merging) */
    unsigned seed = 99;
    for (size_t w = 0; w < 2; w++) {
        job_t ref, j;
        job_prepare(&ref, &EXAMPLES[which[w]], "crash-ref", topic, false);
        double t = now_s();
        job_start(&ref, "--bounded", "--set", "checkpoint.interval.ms=10", "-X",
                  "max.partition.fetch.bytes=4096", NULL);
        assert_int_equal(job_wait(&ref, 120), 0);
        double run_s = now_s() - t;
        assert_int_equal(check_job(&ref), 0);

        job_prepare(&j, &EXAMPLES[which[w]], "crash", topic, false);
        int interrupted = 0;
        long long seen = 0; /* the most committed so far (committed() may read -1 while busy) */
        for (int run = 0; run < 6; run++) {
            job_start(&j, "--bounded", "--set", "checkpoint.interval.ms=10", "-X",
                      "max.partition.fetch.bytes=4096", NULL);
            /* Each run resumes where the last died. It is killed once it has committed a
             * checkpoint of its own (so every run makes progress, however slow the machine),
             * then at a random moment up to 10% of a clean run later: short runs, so that
             * most of the six end mid-job, at different points of a checkpoint. */
            double until = now_s() + 2 * run_s + 10;
            bool exited = false;
            int st = 0;
            long long now_committed;
            while ((now_committed = committed(&j)) <= seen && now_s() < until && !exited) {
                exited = waitpid(j.pid, &st, WNOHANG) == j.pid;
                usleep(2000);
            }
            if (exited && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                dump_log(&j);
                fail_msg("%s: run %d ended by itself with status %d", j.ex->name, run, st);
            }
            if (!exited && now_committed <= seen) {
                dump_log(&j);
                fail_msg("%s: run %d committed nothing in %.1f s", j.ex->name, run,
                         2 * run_s + 10);
            }
            double frac = 0.1 * (double)rand_r(&seed) / RAND_MAX;
            if (!exited) {
                usleep((useconds_t)(frac * run_s * 1e6));
                kill(j.pid, SIGKILL);
                waitpid(j.pid, NULL, 0);
            }
            j.pid = 0;
            long long after = committed(&j);
            if (after > seen)
                seen = after;
            if (after < c.produced)
                interrupted++;
        }
        print_message("%s: a clean run takes %.3f s; %d of 6 kills interrupted a run\n",
                      j.ex->name, run_s, interrupted);
        job_start(&j, "--bounded", NULL);
        int status = job_wait(&j, 120);
        int diffs = (status != 0) + check_job(&j);
        char *log = slurp(j.log);
        bool resumed = strstr(log, "resuming from checkpoint") != NULL;
        free(log);
        if (diffs || !resumed || interrupted < 3) {
            dump_log(&j);
            fail_msg("%s: exit %d, %d differences, %d of 6 kills before the end (a clean run "
                     "takes %.3f s), resumed: %s", j.ex->name, status, diffs, interrupted,
                     run_s, resumed ? "yes" : "no");
        }
    }
}

/*
 * The TOPIC sink: the fraud job into a topic, read back as a table (latest value per key, a
 * tombstone deletes), is the expected table; keys are the primary key as JSON.
 */
static void test_topic_sink(void **state)
{
    (void)state;
    /* Uses the data of test_sigkill_and_restart (no late records). */
    tc_create_topic(&g_broker, "alerts", 3, NULL);
    job_t j;
    job_prepare(&j, &EXAMPLES[0], "topic", "events-crash", false);
    char *text = slurp(j.file), *t1 = replace(text, "SQLITE '", "TOPIC 'alerts' -- ");
    FILE *f = fopen(j.file, "w");
    fputs(t1, f);
    fclose(f);
    free(text);
    free(t1);
    job_start(&j, "--bounded", NULL);
    if (job_wait(&j, 120) != 0) {
        dump_log(&j);
        fail_msg("the TOPIC job failed");
    }
    assert_int_equal(sqlite3_exec(g_expect, "CREATE TABLE got (k TEXT PRIMARY KEY, v TEXT)",
                                  NULL, NULL, NULL), SQLITE_OK);
    rn_conf_t *conf = tc_conf(&g_broker, NULL);
    rn_consumer_t *c;
    char err[256];
    assert_int_equal(rn_consumer_new(conf, &c, err, sizeof err), RN_OK);
    rn_conf_free(conf);
    for (int p = 0; p < 3; p++)
        assert_int_equal(rn_consumer_assign(c, "alerts", p, RN_OFFSET_BEGINNING), RN_OK);
    sqlite3_stmt *put, *del;
    sqlite3_prepare_v2(g_expect, "INSERT OR REPLACE INTO got VALUES (?, ?)", -1, &put, NULL);
    sqlite3_prepare_v2(g_expect, "DELETE FROM got WHERE k = ?", -1, &del, NULL);
    size_t records = 0;
    for (int polls = 0; polls < 600; polls++) {
        const rn_record_view_t *recs;
        size_t n;
        assert_int_equal(rn_consumer_poll(c, 100, 1000, &recs, &n), RN_OK);
        for (size_t i = 0; i < n; i++, records++) {
            sqlite3_stmt *st = recs[i].value ? put : del;
            sqlite3_bind_text(st, 1, recs[i].key, recs[i].key_len, SQLITE_TRANSIENT);
            if (recs[i].value)
                sqlite3_bind_text(st, 2, recs[i].value, recs[i].value_len, SQLITE_TRANSIENT);
            assert_int_equal(sqlite3_step(st), SQLITE_DONE);
            sqlite3_reset(st);
        }
        if (rn_consumer_at_end(c, "alerts", 0) && rn_consumer_at_end(c, "alerts", 1) &&
            rn_consumer_at_end(c, "alerts", 2))
            break;
    }
    sqlite3_finalize(put);
    sqlite3_finalize(del);
    rn_consumer_close(c);
    rows_t want, got;
    rows_sqlite(g_expect,
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ws / 1000.0, 'unixepoch'), user_id, total,"
                " clicks FROM (SELECT ts / 300000 * 300000 AS ws, user_id, SUM(value) AS total,"
                " COUNT(*) AS clicks FROM events WHERE action = 'click' GROUP BY 1, 2"
                " HAVING SUM(value) > 1000) ORDER BY 1, 2", &want);
    rows_sqlite(g_expect,
                "SELECT json_extract(k, '$.window_start'), json_extract(k, '$.user_id'),"
                " json_extract(v, '$.total'), json_extract(v, '$.clicks') FROM got"
                " WHERE json_extract(v, '$.window_start') = json_extract(k, '$.window_start')"
                " ORDER BY 1, 2", &got);
    int diffs = compare_rows("fraud_alerts (topic)", &want, &got);
    if (diffs || want.nrows < 5 || records < want.nrows)
        fail_msg("%d differences; %zu expected rows, %zu records read", diffs, want.nrows,
                 records);
    rows_free(&want);
    rows_free(&got);
}

/* A job file with an error: exit status 2 and file:line:col with a caret, before any I/O. */
static void test_bad_job_file(void **state)
{
    (void)state;
    char path[700], log[700];
    snprintf(path, sizeof path, "%s/bad.sql", g_dir);
    snprintf(log, sizeof log, "%s/bad.out", g_dir);
    FILE *f = fopen(path, "w");
    fputs("CREATE SOURCE clicks (user_id TEXT, value DOUBLE, ts TIMESTAMP)\n"
          "  FROM TOPIC 'clickstream' FORMAT JSON;\n"
          "CREATE SINK s INTO STDOUT PRIMARY KEY (window_start, user_id) AS\n"
          "SELECT window_start, user_id, SUM(valu) AS total\n"
          "FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY window_start, user_id;\n", f);
    fclose(f);
    char *argv[] = {(char *)rn_h_bin("RUNNEL_PROCESSOR_BIN"), "--job", path, NULL};
    assert_int_equal(rn_h_run(argv, NULL, NULL, log, 30), 2);
    char *out = slurp(log);
    if (!strstr(out, "bad.sql:4:35: unknown column 'valu' (did you mean 'value'?)") ||
        !strstr(out, "^"))
        fail_msg("unexpected diagnostic:\n%s", out);
    free(out);
}

/*
 * A dead letter that cannot be sent (its topic does not exist) stops the job at the next
 * checkpoint instead of being dropped; a restart would replay it (regression: the send error
 * was ignored and the offsets moved past the record).
 */
static void test_dead_letter_failure_stops_the_job(void **state)
{
    (void)state;
    tc_create_topic(&g_broker, "events-dlq-missing", 1, NULL);
    rn_conf_t *conf = tc_conf(&g_broker, NULL);
    rn_producer_t *p;
    char err[256];
    assert_int_equal(rn_producer_new(conf, NULL, NULL, &p, err, sizeof err), RN_OK);
    rn_conf_free(conf);
    const char *lines[] = {"{\"user_id\": \"u1\", \"action\": \"click\", \"value\": 5, "
                           "\"timestamp\": 1698400800000}", "not json at all"};
    for (int i = 0; i < 2; i++) {
        rn_message_t m = {.topic = "events-dlq-missing", .partition = 0, .value = lines[i],
                          .value_len = strlen(lines[i])};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 10000), RN_OK);
    job_t j;
    job_prepare(&j, &EXAMPLES[0], "dlq-missing", "events-dlq-missing", false);
    job_start(&j, "--bounded", "--set", "dead.letter.topic=no-such-dlq", "-X",
              "request.timeout.ms=2000", NULL);
    int status = job_wait(&j, 60);
    char *log = slurp(j.log);
    if (status != 1 || !strstr(log, "no-such-dlq"))
        fail_msg("exit %d, want 1 naming the dead-letter topic; log:\n%s", status, log);
    free(log);
    assert_true(committed(&j) <= 0); /* nothing committed past the lost dead letter */
}

/* A topic that does not exist: a message that says so and what to do, exit status 1. */
static void test_missing_topic(void **state)
{
    (void)state;
    job_t j;
    job_prepare(&j, &EXAMPLES[0], "missing", "no-such-topic", false);
    job_start(&j, "--bounded", NULL);
    assert_int_equal(job_wait(&j, 60), 1);
    char *log = slurp(j.log);
    if (!strstr(log, "topic 'no-such-topic' does not exist") || !strstr(log, "runnel topic create"))
        fail_msg("unexpected message:\n%s", log);
    free(log);
}

/* ------------------------------------------------------------------ metrics -- */

/*
 * GET path from addr over a fresh connection (Connection: close); the status code (-1 when
 * the request failed) and the body in *body (free() it; may be NULL).
 */
static int http_get(const char *addr, const char *path, char **body)
{
    *body = NULL;
    int fd = rn_h_connect(addr);
    if (fd < 0)
        return -1;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, addr);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = recv(fd, buf + len, cap - len - 1, 0)) > 0) {
        len += (size_t)got;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    char *start = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || !start) {
        free(buf);
        return -1;
    }
    *body = strdup(start + 4);
    free(buf);
    return status;
}

/* The sum of every sample of name (over all its label sets) in a scrape; -1 when none. */
static double metric_sum(const char *text, const char *name, int *series)
{
    size_t len = strlen(name);
    double sum = 0;
    int found = 0;
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        if (strncmp(line, name, len) != 0 || (line[len] != '{' && line[len] != ' '))
            continue;
        const char *v = line[len] == '{' ? strchr(line, '}') : line + len;
        if (!v)
            continue;
        sum += strtod(v + 1 + (line[len] == '{'), NULL);
        found++;
    }
    if (series)
        *series = found;
    return found ? sum : -1;
}

static long long sink_rows(const job_t *j)
{
    sqlite3 *db;
    long long v = -1;
    if (sqlite3_open_v2(j->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", j->ex->table);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return v;
}

/*
 * An unbounded fraud job with --metrics-listen 127.0.0.1:0: its address appears in
 * STATE_DIR/metrics-listening; once it has caught up, /metrics says every produced record
 * came in, lag is 0 on every partition and every record's freshness was observed; /readyz
 * and /healthz answer 200; rows upserted equal the sink's rows; promtool accepts the scrape.
 * SIGTERM stops it cleanly and removes the address file.
 */
static void test_metrics_endpoint(void **state)
{
    (void)state;
    const char *topic = "events-metrics";
    tc_create_topic(&g_broker, topic, PARTS, NULL);
    sqlite3_exec(g_expect, "DELETE FROM events", NULL, NULL, NULL);
    gen_t g = {.seed = 31u};
    for (int p = 0; p < PARTS; p++)
        g.clock[p] = T0;
    counts_t c = {0};
    produce(topic, &g, 6000, 0, &c);
    job_t j;
    job_prepare(&j, &EXAMPLES[0], "metrics", topic, false);
    job_start(&j, "--metrics-listen", "127.0.0.1:0", "--set", "checkpoint.interval.ms=100", NULL);
    char path[800], addr[80] = "";
    snprintf(path, sizeof path, "%s/metrics-listening", j.state);
    for (int i = 0; i < 2000 && !addr[0]; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(addr, sizeof addr, f))
                addr[0] = '\0';
            fclose(f);
            addr[strcspn(addr, "\n")] = '\0';
        }
        if (!addr[0])
            usleep(10000);
    }
    if (!addr[0]) {
        dump_log(&j);
        fail_msg("no %s within 20 s", path);
    }
    char *body = NULL;
    double in = -1, lag = -1, fresh = -1;
    int lag_series = 0;
    for (int i = 0; i < 600; i++) {
        free(body);
        assert_int_equal(http_get(addr, "/metrics", &body), 200);
        in = metric_sum(body, "runnel_processor_records_in_total", NULL);
        lag = metric_sum(body, "runnel_processor_consumer_lag", &lag_series);
        fresh = metric_sum(body, "runnel_processor_freshness_seconds_count", NULL);
        if (in == c.produced && lag == 0 && lag_series == PARTS && fresh == c.produced &&
            committed(&j) == c.produced)
            break;
        usleep(100000);
    }
    if (in != c.produced || lag != 0 || lag_series != PARTS || fresh != c.produced) {
        dump_log(&j);
        fail_msg("after 60 s: records in %.0f of %d, lag %.0f over %d partitions, freshness "
                 "count %.0f\n%s", in, c.produced, lag, lag_series, fresh, body);
    }
    /* Rows upserted are counted at the commit that writes them; a later commit may close
     * more windows (a partition going idle moves the watermark), so read both until they
     * agree between two commits. */
    double upserted = -1;
    long long rows = -2;
    for (int i = 0; i < 100 && upserted != (double)rows; i++) {
        free(body);
        assert_int_equal(http_get(addr, "/metrics", &body), 200);
        upserted = metric_sum(body, "runnel_processor_rows_upserted_total", NULL);
        rows = sink_rows(&j);
        if (upserted != (double)rows)
            usleep(50000);
    }
    if (rows < 5 || upserted != (double)rows)
        fail_msg("rows upserted %.0f, the sink holds %lld rows", upserted, rows);
    assert_true(metric_sum(body, "runnel_processor_malformed_records_total", NULL) ==
                c.malformed);
    assert_true(metric_sum(body, "runnel_processor_checkpoints_total", NULL) > 0);
    assert_non_null(strstr(body, "runnel_processor_records_in_total{job=\"fraud_alerts\","
                                 "topic=\"events-metrics\",partition=\"0\"}"));
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char scrape[800], cmd[2000];
        snprintf(scrape, sizeof scrape, "%s/metrics/scrape.txt", g_dir);
        FILE *f = fopen(scrape, "w");
        fputs(body, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < '%s' >&2", scrape);
        if (system(cmd) != 0)
            fail_msg("promtool check metrics rejected the scrape:\n%s", body);
    } else {
        print_message("/usr/bin/promtool not installed: the scrape was not linted\n");
    }
    free(body);
    assert_int_equal(http_get(addr, "/readyz", &body), 200);
    free(body);
    assert_int_equal(http_get(addr, "/healthz", &body), 200);
    free(body);
    assert_int_equal(http_get(addr, "/nowhere", &body), 404);
    free(body);
    kill(j.pid, SIGTERM);
    int status = job_wait(&j, 30);
    if (status != 0) {
        dump_log(&j);
        fail_msg("exit status %d after SIGTERM, want 0", status);
    }
    assert_int_equal(access(path, F_OK), -1);
    char *log = slurp(j.log);
    if (!strstr(log, "metrics on http://127.0.0.1:"))
        fail_msg("the bound address is not logged:\n%s", log);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_job_file),
        cmocka_unit_test(test_missing_topic),
        cmocka_unit_test(test_dead_letter_failure_stops_the_job),
        cmocka_unit_test(test_known_answers_sqlite),
        cmocka_unit_test(test_known_answers_postgres),
        cmocka_unit_test(test_sigkill_and_restart),
        cmocka_unit_test(test_topic_sink),
        cmocka_unit_test(test_metrics_endpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
