/*
 * postgres.c - the PostgreSQL sink, through libpq.
 *
 * The same statements as SQLite (INSERT … ON CONFLICT DO UPDATE, runnel_offsets,
 * runnel_checkpoints), prepared once per connection and sent with text parameters; the
 * server types them from the table (TIMESTAMP columns are timestamptz and receive ISO-8601
 * UTC strings). A transaction opens at a checkpoint's first row and commits with its
 * offsets. One round trip per row: pipelining would cut that (libpq 14+), left for when a
 * benchmark says it matters.
 */
#include "sink/sink_int.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

typedef struct pg {
    PGconn *conn;
    bool in_txn;
    rn_buf_t scratch;
} pg_t;

static rn_err_t pg_fail(rn_sink_t *s, const char *what, const PGresult *res)
{
    pg_t *p = s->impl;
    const char *msg = res ? PQresultErrorMessage(res) : (p && p->conn ? PQerrorMessage(p->conn) : "");
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    rn__sink_fail(s, RN_ERR_IO, "postgres: %s: %.*s", what, (int)len, msg);
    if (p && p->in_txn) {
        PQclear(PQexec(p->conn, "ROLLBACK"));
        p->in_txn = false;
    }
    return RN_ERR_IO;
}

static rn_err_t exec(rn_sink_t *s, const char *sql, const char *what)
{
    pg_t *p = s->impl;
    PGresult *res = PQexec(p->conn, sql);
    rn_err_t err = PQresultStatus(res) == PGRES_COMMAND_OK ? RN_OK : pg_fail(s, what, res);
    PQclear(res);
    return err;
}

static rn_err_t begin(rn_sink_t *s)
{
    pg_t *p = s->impl;
    if (p->in_txn)
        return RN_OK;
    rn_err_t err = exec(s, "BEGIN", "BEGIN");
    p->in_txn = err == RN_OK;
    return err;
}

/* Text forms of values, NUL-terminated, laid out in scratch; NULL for SQL NULL. */
static rn_err_t params(rn_sink_t *s, const rn_value_t *row, const int *idx, size_t n,
                       const char **out)
{
    pg_t *p = s->impl;
    size_t offs[64];
    if (n > 64)
        return rn__sink_fail(s, RN_ERR_INVALID_ARG, "more than 64 columns");
    rn_buf_reset(&p->scratch);
    for (size_t i = 0; i < n; i++) {
        const rn_value_t *v = &row[idx ? (size_t)idx[i] : i];
        offs[i] = p->scratch.len;
        if (v->is_null) {
            offs[i] = SIZE_MAX;
            continue;
        }
        char tmp[48];
        int len = 0;
        rn_err_t err;
        switch (v->type) {
        case RN_T_TEXT: err = rn_buf_append(&p->scratch, v->u.s, v->len); break;
        case RN_T_DOUBLE: len = snprintf(tmp, sizeof tmp, "%.17g", v->u.d); break;
        case RN_T_BOOLEAN: len = snprintf(tmp, sizeof tmp, "%s", v->u.b ? "t" : "f"); break;
        case RN_T_TIMESTAMP: len = rn_ts_format(v->u.i, tmp, sizeof tmp); break;
        default: len = snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i); break;
        }
        err = v->type == RN_T_TEXT ? RN_OK : rn_buf_append(&p->scratch, tmp, (size_t)len);
        if (err != RN_OK || rn_buf_append(&p->scratch, "", 1) != RN_OK)
            return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        out[i] = offs[i] == SIZE_MAX ? NULL : (const char *)p->scratch.data + offs[i];
    return RN_OK;
}

static rn_err_t run(rn_sink_t *s, const char *stmt, int n, const char *const *vals,
                    const char *what)
{
    pg_t *p = s->impl;
    PGresult *res = PQexecPrepared(p->conn, stmt, n, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    rn_err_t err = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? RN_OK : pg_fail(s, what, res);
    PQclear(res);
    return err;
}

static rn_err_t pg_upsert(rn_sink_t *s, const rn_value_t *row)
{
    const char *vals[64];
    rn_err_t err = begin(s);
    if (err == RN_OK)
        err = params(s, row, NULL, s->schema.ncols, vals);
    return err == RN_OK ? run(s, "rn_upsert", (int)s->schema.ncols, vals, "upsert") : err;
}

static rn_err_t pg_delete(rn_sink_t *s, const rn_value_t *row)
{
    const char *vals[64];
    rn_err_t err = begin(s);
    if (err == RN_OK)
        err = params(s, row, s->schema.pk, s->schema.npk, vals);
    return err == RN_OK ? run(s, "rn_delete", (int)s->schema.npk, vals, "delete") : err;
}

static rn_err_t pg_commit(rn_sink_t *s, uint64_t epoch, const rn_sink_offset_t *offs, size_t n)
{
    pg_t *p = s->impl;
    rn_err_t err = begin(s);
    char part[16], next[24], ep[24];
    for (size_t i = 0; i < n && err == RN_OK; i++) {
        snprintf(part, sizeof part, "%d", offs[i].partition);
        snprintf(next, sizeof next, "%lld", (long long)offs[i].next_offset);
        const char *vals[4] = {s->schema.job, offs[i].topic, part, next};
        err = run(s, "rn_offsets", 4, vals, "recording offsets");
    }
    if (err != RN_OK)
        return err;
    snprintf(ep, sizeof ep, "%llu", (unsigned long long)epoch);
    const char *vals[2] = {s->schema.job, ep};
    if ((err = run(s, "rn_checkpoint", 2, vals, "recording the checkpoint")) != RN_OK)
        return err;
    err = exec(s, "COMMIT", "COMMIT");
    p->in_txn = false;
    return err;
}

static rn_err_t pg_read_offsets(rn_sink_t *s, uint64_t *epoch, rn_sink_offset_t **offs, size_t *n)
{
    pg_t *p = s->impl;
    const char *job[1] = {s->schema.job};
    PGresult *res = PQexecParams(p->conn, rn__sql_checkpoints_select[1], 1, NULL, job, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rn_err_t err = pg_fail(s, "reading runnel_checkpoints", res);
        PQclear(res);
        return err;
    }
    if (PQntuples(res) > 0)
        *epoch = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = PQexecParams(p->conn, rn__sql_offsets_select[1], 1, NULL, job, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rn_err_t err = pg_fail(s, "reading runnel_offsets", res);
        PQclear(res);
        return err;
    }
    int rows = PQntuples(res);
    *offs = calloc((size_t)rows + 1, sizeof **offs);
    if (!*offs) {
        PQclear(res);
        return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; r < rows; r++) {
        rn_sink_offset_t *o = &(*offs)[r];
        o->topic = strdup(PQgetvalue(res, r, 0));
        o->partition = atoi(PQgetvalue(res, r, 1));
        o->next_offset = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        *n = (size_t)r + 1;
        if (!o->topic) {
            PQclear(res);
            return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
        }
    }
    PQclear(res);
    return RN_OK;
}

static void pg_close(rn_sink_t *s)
{
    pg_t *p = s->impl;
    if (!p)
        return;
    if (p->in_txn)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    PQfinish(p->conn);
    rn_buf_free(&p->scratch);
    free(p);
}

static const rn__sink_ops_t pg_ops = {true, pg_upsert, pg_delete, pg_commit, pg_read_offsets,
                                      pg_close};

static rn_err_t prepare(rn_sink_t *s, const char *name, const char *sql, int nparams)
{
    pg_t *p = s->impl;
    PGresult *res = PQprepare(p->conn, name, sql, nparams, NULL);
    rn_err_t err = PQresultStatus(res) == PGRES_COMMAND_OK ? RN_OK : pg_fail(s, name, res);
    PQclear(res);
    return err;
}

rn_err_t rn__sink_pg_open(rn_sink_t *s)
{
    pg_t *p = calloc(1, sizeof *p);
    if (!p)
        return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
    s->impl = p;
    s->ops = &pg_ops;
    if (s->schema.ncols > 64)
        return rn__sink_fail(s, RN_ERR_INVALID_ARG, "postgres sink: more than 64 columns");
    p->conn = PQconnectdb(s->target ? s->target : "");
    if (PQstatus(p->conn) != CONNECTION_OK)
        return pg_fail(s, "cannot connect", NULL);
    PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
    /* CREATE TABLE IF NOT EXISTS is not safe against a concurrent one (both may try to
     * create the row type): jobs that start together take turns under an advisory lock. */
    rn_err_t err = begin(s);
    if (err == RN_OK) {
        PGresult *res = PQexec(p->conn, "SELECT pg_advisory_xact_lock(7508451796)");
        err = PQresultStatus(res) == PGRES_TUPLES_OK ? RN_OK : pg_fail(s, "locking for DDL", res);
        PQclear(res);
    }
    if (err == RN_OK)
        err = exec(s, rn__sql_offsets_ddl[1], "creating runnel_offsets");
    if (err == RN_OK)
        err = exec(s, rn__sql_checkpoints_ddl[1], "creating runnel_checkpoints");
    rn_buf_t sql = RN_BUF_INIT;
    if (err == RN_OK && (err = rn__sql_create(&sql, &s->schema, RN__SQL_PG)) == RN_OK)
        err = exec(s, (char *)sql.data, "creating the table");
    if (err == RN_OK && (err = exec(s, "COMMIT", "COMMIT")) == RN_OK)
        p->in_txn = false;
    if (err == RN_OK && (err = rn__sql_upsert(&sql, &s->schema, RN__SQL_PG)) == RN_OK)
        err = prepare(s, "rn_upsert", (char *)sql.data, (int)s->schema.ncols);
    if (err == RN_OK && (err = rn__sql_delete(&sql, &s->schema, RN__SQL_PG)) == RN_OK)
        err = prepare(s, "rn_delete", (char *)sql.data, (int)s->schema.npk);
    rn_buf_free(&sql);
    if (err == RN_OK)
        err = prepare(s, "rn_offsets", rn__sql_offsets_upsert[1], 4);
    if (err == RN_OK)
        err = prepare(s, "rn_checkpoint", rn__sql_checkpoints_upsert[1], 2);
    return err;
}
