/* sink.c - the sink front door, schema copies, and the SQL and JSON text the sinks share. */
#include "sink/sink_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

rn_sink_schema_t rn_sink_schema_of(const rn_plan_t *p)
{
    rn_sink_schema_t s = {p->job, p->table, p->out, p->nout, p->pk, p->npk};
    return s;
}

rn_err_t rn__sink_fail(rn_sink_t *s, rn_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return err;
}

static void schema_free(rn_sink_schema_t *s)
{
    for (size_t i = 0; s->cols && i < s->ncols; i++)
        free((char *)s->cols[i].name);
    free((void *)s->cols);
    free((void *)s->pk);
    free((char *)s->job);
    free((char *)s->table);
}

static rn_err_t schema_copy(rn_sink_schema_t *dst, const rn_sink_schema_t *src)
{
    memset(dst, 0, sizeof *dst);
    rn_plan_col_t *cols = calloc(src->ncols + 1, sizeof *cols);
    int *pk = calloc(src->npk + 1, sizeof *pk);
    dst->cols = cols;
    dst->pk = pk;
    dst->job = strdup(src->job ? src->job : "job");
    dst->table = strdup(src->table ? src->table : "results");
    if (!cols || !pk || !dst->job || !dst->table)
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < src->ncols; i++) {
        cols[i].type = src->cols[i].type;
        if (!(cols[i].name = strdup(src->cols[i].name)))
            return RN_ERR_NOMEM;
        dst->ncols = i + 1;
    }
    memcpy(pk, src->pk, src->npk * sizeof *pk);
    dst->npk = src->npk;
    return RN_OK;
}

rn_err_t rn_sink_open(rn_sink_kind_t kind, const char *target, const rn_sink_schema_t *schema,
                      const rn_sink_io_t *io, rn_sink_t **out, char *errbuf, size_t errlen)
{
    rn_sink_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errbuf, errlen, "out of memory");
        return RN_ERR_NOMEM;
    }
    if (io)
        s->io = *io;
    if (!s->io.out)
        s->io.out = stdout;
    rn_err_t err = schema_copy(&s->schema, schema);
    if (err == RN_OK && target && !(s->target = strdup(target)))
        err = RN_ERR_NOMEM;
    if (err != RN_OK) {
        snprintf(s->err, sizeof s->err, "out of memory");
    } else {
        switch (kind) {
        case RN_SINK_SQLITE: err = rn__sink_sqlite_open(s); break;
        case RN_SINK_POSTGRES: err = rn__sink_pg_open(s); break;
        case RN_SINK_STDOUT: err = rn__sink_json_open(s, false); break;
        case RN_SINK_TOPIC: err = rn__sink_json_open(s, true); break;
        }
    }
    if (err != RN_OK) {
        snprintf(errbuf, errlen, "%s", s->err);
        rn_sink_close(s);
        return err;
    }
    *out = s;
    return RN_OK;
}

rn_err_t rn_sink_upsert(rn_sink_t *s, const rn_value_t *row) { return s->ops->upsert(s, row); }
rn_err_t rn_sink_delete(rn_sink_t *s, const rn_value_t *row) { return s->ops->remove(s, row); }
bool rn_sink_transactional(const rn_sink_t *s) { return s->ops->transactional; }
const char *rn_sink_errmsg(const rn_sink_t *s) { return s->err; }

rn_err_t rn_sink_commit(rn_sink_t *s, uint64_t epoch, const rn_sink_offset_t *offsets, size_t n)
{
    return s->ops->commit(s, epoch, offsets, n);
}

rn_err_t rn_sink_read_offsets(rn_sink_t *s, uint64_t *epoch, rn_sink_offset_t **offsets, size_t *n)
{
    *epoch = 0;
    *offsets = NULL;
    *n = 0;
    return s->ops->read_offsets ? s->ops->read_offsets(s, epoch, offsets, n) : RN_OK;
}

void rn_sink_offsets_free(rn_sink_offset_t *offsets, size_t n)
{
    for (size_t i = 0; offsets && i < n; i++)
        free((char *)offsets[i].topic);
    free(offsets);
}

void rn_sink_close(rn_sink_t *s)
{
    if (!s)
        return;
    if (s->ops && s->ops->close)
        s->ops->close(s);
    schema_free(&s->schema);
    free(s->target);
    free(s);
}

/* ---------------------------------------------------------------------- SQL -- */

static void puts_(rn_buf_t *b, const char *s)
{
    rn_buf_append(b, s, strlen(s));
}

void rn__sql_ident(rn_buf_t *b, const char *name)
{
    puts_(b, "\"");
    for (const char *c = name; *c; c++)
        rn_buf_append(b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
    puts_(b, "\"");
}

static const char *sql_type(rn_type_t t, rn__sql_dialect_t d)
{
    static const char *const lite[] = {"", "TEXT", "INTEGER", "REAL", "INTEGER", "INTEGER"};
    static const char *const pg[] = {"", "TEXT", "BIGINT", "DOUBLE PRECISION", "BOOLEAN",
                                     "TIMESTAMPTZ"};
    return d == RN__SQL_SQLITE ? lite[t] : pg[t];
}

static void param(rn_buf_t *b, rn__sql_dialect_t d, size_t n)
{
    char tmp[16];
    snprintf(tmp, sizeof tmp, d == RN__SQL_SQLITE ? "?%zu" : "$%zu", n);
    puts_(b, tmp);
}

static rn_err_t finish(rn_buf_t *b)
{
    return rn_buf_append(b, "", 1) == RN_OK && b->data ? RN_OK : RN_ERR_NOMEM;
}

static void pk_list(rn_buf_t *b, const rn_sink_schema_t *s)
{
    for (size_t i = 0; i < s->npk; i++) {
        if (i)
            puts_(b, ", ");
        rn__sql_ident(b, s->cols[s->pk[i]].name);
    }
}

rn_err_t rn__sql_create(rn_buf_t *b, const rn_sink_schema_t *s, rn__sql_dialect_t d)
{
    rn_buf_reset(b);
    puts_(b, "CREATE TABLE IF NOT EXISTS ");
    rn__sql_ident(b, s->table);
    puts_(b, " (");
    for (size_t i = 0; i < s->ncols; i++) {
        rn__sql_ident(b, s->cols[i].name);
        puts_(b, " ");
        puts_(b, sql_type(s->cols[i].type, d));
        puts_(b, ", ");
    }
    puts_(b, "PRIMARY KEY (");
    pk_list(b, s);
    puts_(b, "))");
    return finish(b);
}

static bool is_pk(const rn_sink_schema_t *s, size_t col)
{
    for (size_t i = 0; i < s->npk; i++) {
        if ((size_t)s->pk[i] == col)
            return true;
    }
    return false;
}

rn_err_t rn__sql_upsert(rn_buf_t *b, const rn_sink_schema_t *s, rn__sql_dialect_t d)
{
    rn_buf_reset(b);
    puts_(b, "INSERT INTO ");
    rn__sql_ident(b, s->table);
    puts_(b, " (");
    for (size_t i = 0; i < s->ncols; i++) {
        if (i)
            puts_(b, ", ");
        rn__sql_ident(b, s->cols[i].name);
    }
    puts_(b, ") VALUES (");
    for (size_t i = 0; i < s->ncols; i++) {
        if (i)
            puts_(b, ", ");
        param(b, d, i + 1);
    }
    puts_(b, ") ON CONFLICT (");
    pk_list(b, s);
    puts_(b, ") DO ");
    bool any = false;
    for (size_t i = 0; i < s->ncols; i++) {
        if (is_pk(s, i))
            continue;
        puts_(b, any ? ", " : "UPDATE SET ");
        rn__sql_ident(b, s->cols[i].name);
        puts_(b, " = excluded.");
        rn__sql_ident(b, s->cols[i].name);
        any = true;
    }
    if (!any)
        puts_(b, "NOTHING");
    return finish(b);
}

rn_err_t rn__sql_delete(rn_buf_t *b, const rn_sink_schema_t *s, rn__sql_dialect_t d)
{
    rn_buf_reset(b);
    puts_(b, "DELETE FROM ");
    rn__sql_ident(b, s->table);
    puts_(b, " WHERE ");
    for (size_t i = 0; i < s->npk; i++) {
        if (i)
            puts_(b, " AND ");
        rn__sql_ident(b, s->cols[s->pk[i]].name);
        puts_(b, " = ");
        param(b, d, i + 1);
    }
    return finish(b);
}

const char *const rn__sql_offsets_ddl[2] = {
    "CREATE TABLE IF NOT EXISTS runnel_offsets (job TEXT NOT NULL, topic TEXT NOT NULL, "
    "\"partition\" INTEGER NOT NULL, next_offset INTEGER NOT NULL, "
    "PRIMARY KEY (job, topic, \"partition\"))",
    "CREATE TABLE IF NOT EXISTS runnel_offsets (job TEXT NOT NULL, topic TEXT NOT NULL, "
    "\"partition\" INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
    "PRIMARY KEY (job, topic, \"partition\"))",
};
const char *const rn__sql_checkpoints_ddl[2] = {
    "CREATE TABLE IF NOT EXISTS runnel_checkpoints (job TEXT PRIMARY KEY, epoch INTEGER NOT NULL, "
    "committed_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runnel_checkpoints (job TEXT PRIMARY KEY, epoch BIGINT NOT NULL, "
    "committed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
};
const char *const rn__sql_offsets_upsert[2] = {
    "INSERT INTO runnel_offsets (job, topic, \"partition\", next_offset) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (job, topic, \"partition\") DO UPDATE SET next_offset = excluded.next_offset",
    "INSERT INTO runnel_offsets (job, topic, \"partition\", next_offset) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (job, topic, \"partition\") DO UPDATE SET next_offset = excluded.next_offset",
};
const char *const rn__sql_checkpoints_upsert[2] = {
    "INSERT INTO runnel_checkpoints (job, epoch, committed_at) VALUES (?1, ?2, "
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) "
    "ON CONFLICT (job) DO UPDATE SET epoch = excluded.epoch, committed_at = excluded.committed_at",
    "INSERT INTO runnel_checkpoints (job, epoch) VALUES ($1, $2) "
    "ON CONFLICT (job) DO UPDATE SET epoch = excluded.epoch, committed_at = now()",
};
const char *const rn__sql_offsets_select[2] = {
    "SELECT topic, \"partition\", next_offset FROM runnel_offsets WHERE job = ?1 ORDER BY topic, \"partition\"",
    "SELECT topic, \"partition\", next_offset FROM runnel_offsets WHERE job = $1 ORDER BY topic, \"partition\"",
};
const char *const rn__sql_checkpoints_select[2] = {
    "SELECT epoch FROM runnel_checkpoints WHERE job = ?1",
    "SELECT epoch FROM runnel_checkpoints WHERE job = $1",
};

/* --------------------------------------------------------------------- JSON -- */

static rn_err_t json_string(rn_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    rn_err_t err = rn_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len && err == RN_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        err = rn_buf_append(b, s + run, i - run);
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : esc;
        if (err == RN_OK)
            err = rn_buf_append(b, e, strlen(e));
        run = i + 1;
    }
    if (err == RN_OK)
        err = rn_buf_append(b, s + run, len - run);
    return err == RN_OK ? rn_buf_append(b, "\"", 1) : err;
}

rn_err_t rn__json_value(rn_buf_t *b, const rn_value_t *v)
{
    char tmp[48];
    int n;
    if (v->is_null)
        return rn_buf_append(b, "null", 4);
    switch (v->type) {
    case RN_T_TEXT:
        return json_string(b, v->u.s, v->len);
    case RN_T_BOOLEAN:
        return v->u.b ? rn_buf_append(b, "true", 4) : rn_buf_append(b, "false", 5);
    case RN_T_DOUBLE:
        if (!isfinite(v->u.d))
            return rn_buf_append(b, "null", 4);
        n = snprintf(tmp, sizeof tmp, "%.17g", v->u.d);
        return rn_buf_append(b, tmp, (size_t)n);
    case RN_T_TIMESTAMP:
        tmp[0] = '"';
        n = rn_ts_format(v->u.i, tmp + 1, sizeof tmp - 2);
        tmp[n + 1] = '"';
        return rn_buf_append(b, tmp, (size_t)n + 2);
    default:
        n = snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        return rn_buf_append(b, tmp, (size_t)n);
    }
}

rn_err_t rn__json_object(rn_buf_t *b, const rn_sink_schema_t *s, const rn_value_t *row,
                         const int *idx, size_t n)
{
    rn_err_t err = rn_buf_append(b, "{", 1);
    for (size_t i = 0; i < n && err == RN_OK; i++) {
        size_t c = idx ? (size_t)idx[i] : i;
        const char *name = s->cols[c].name;
        if ((i && (err = rn_buf_append(b, ",", 1)) != RN_OK) ||
            (err = json_string(b, name, strlen(name))) != RN_OK ||
            (err = rn_buf_append(b, ":", 1)) != RN_OK)
            break;
        err = rn__json_value(b, &row[c]);
    }
    return err == RN_OK ? rn_buf_append(b, "}", 1) : err;
}
