/*
 * sqlite.c - the SQLite sink (the default: a file, no server).
 *
 * The database runs in WAL mode with synchronous=FULL, so a COMMIT is on disk when it
 * returns: the offsets it records must never be ahead of what survives a power cut. Rows of
 * a checkpoint go through one prepared INSERT … ON CONFLICT DO UPDATE inside a transaction
 * that BEGIN IMMEDIATE opens at the first row; the commit adds the runnel_offsets and
 * runnel_checkpoints rows and commits all of it at once. TIMESTAMP is INTEGER epoch ms,
 * BOOLEAN is 0/1.
 */
#include "sink/sink_int.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct lite {
    sqlite3 *db;
    sqlite3_stmt *upsert, *remove, *off_upsert, *ckpt_upsert, *off_select, *ckpt_select;
    bool in_txn;
} lite_t;

static rn_err_t lite_fail(rn_sink_t *s, const char *what)
{
    lite_t *l = s->impl;
    rn__sink_fail(s, RN_ERR_IO, "sqlite %s: %s: %s", s->target, what,
                  l && l->db ? sqlite3_errmsg(l->db) : "cannot open");
    if (l && l->in_txn) {
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        l->in_txn = false;
    }
    return RN_ERR_IO;
}

static int bind(sqlite3_stmt *st, int i, const rn_value_t *v)
{
    if (v->is_null)
        return sqlite3_bind_null(st, i);
    switch (v->type) {
    case RN_T_TEXT: return sqlite3_bind_text(st, i, v->len ? v->u.s : "", (int)v->len, SQLITE_STATIC);
    case RN_T_DOUBLE: return sqlite3_bind_double(st, i, v->u.d);
    case RN_T_BOOLEAN: return sqlite3_bind_int(st, i, v->u.b);
    default: return sqlite3_bind_int64(st, i, v->u.i);
    }
}

static rn_err_t begin(rn_sink_t *s)
{
    lite_t *l = s->impl;
    if (l->in_txn)
        return RN_OK;
    if (sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return lite_fail(s, "BEGIN");
    l->in_txn = true;
    return RN_OK;
}

static rn_err_t step(rn_sink_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? RN_OK : lite_fail(s, what);
}

static rn_err_t lite_upsert(rn_sink_t *s, const rn_value_t *row)
{
    lite_t *l = s->impl;
    rn_err_t err = begin(s);
    if (err != RN_OK)
        return err;
    for (size_t i = 0; i < s->schema.ncols; i++)
        bind(l->upsert, (int)i + 1, &row[i]);
    return step(s, l->upsert, "upsert");
}

static rn_err_t lite_delete(rn_sink_t *s, const rn_value_t *row)
{
    lite_t *l = s->impl;
    rn_err_t err = begin(s);
    if (err != RN_OK)
        return err;
    for (size_t i = 0; i < s->schema.npk; i++)
        bind(l->remove, (int)i + 1, &row[s->schema.pk[i]]);
    return step(s, l->remove, "delete");
}

static rn_err_t lite_commit(rn_sink_t *s, uint64_t epoch, const rn_sink_offset_t *offs, size_t n)
{
    lite_t *l = s->impl;
    rn_err_t err = begin(s);
    for (size_t i = 0; i < n && err == RN_OK; i++) {
        sqlite3_bind_text(l->off_upsert, 1, s->schema.job, -1, SQLITE_STATIC);
        sqlite3_bind_text(l->off_upsert, 2, offs[i].topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(l->off_upsert, 3, offs[i].partition);
        sqlite3_bind_int64(l->off_upsert, 4, offs[i].next_offset);
        err = step(s, l->off_upsert, "recording offsets");
    }
    if (err != RN_OK)
        return err;
    sqlite3_bind_text(l->ckpt_upsert, 1, s->schema.job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(l->ckpt_upsert, 2, (sqlite3_int64)epoch);
    if ((err = step(s, l->ckpt_upsert, "recording the checkpoint")) != RN_OK)
        return err;
    if (sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return lite_fail(s, "COMMIT");
    l->in_txn = false;
    return RN_OK;
}

static rn_err_t lite_read_offsets(rn_sink_t *s, uint64_t *epoch, rn_sink_offset_t **offs, size_t *n)
{
    lite_t *l = s->impl;
    sqlite3_bind_text(l->ckpt_select, 1, s->schema.job, -1, SQLITE_STATIC);
    if (sqlite3_step(l->ckpt_select) == SQLITE_ROW)
        *epoch = (uint64_t)sqlite3_column_int64(l->ckpt_select, 0);
    sqlite3_reset(l->ckpt_select);
    size_t cap = 0;
    sqlite3_bind_text(l->off_select, 1, s->schema.job, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(l->off_select)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            rn_sink_offset_t *bigger = realloc(*offs, cap * sizeof *bigger);
            if (!bigger) {
                sqlite3_reset(l->off_select);
                return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
            }
            *offs = bigger;
        }
        rn_sink_offset_t *o = &(*offs)[(*n)++];
        o->topic = strdup((const char *)sqlite3_column_text(l->off_select, 0));
        o->partition = sqlite3_column_int(l->off_select, 1);
        o->next_offset = sqlite3_column_int64(l->off_select, 2);
        if (!o->topic) {
            sqlite3_reset(l->off_select);
            return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
        }
    }
    sqlite3_reset(l->off_select);
    return rc == SQLITE_DONE ? RN_OK : lite_fail(s, "reading runnel_offsets");
}

static void lite_close(rn_sink_t *s)
{
    lite_t *l = s->impl;
    if (!l)
        return;
    if (l->in_txn)
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(l->upsert);
    sqlite3_finalize(l->remove);
    sqlite3_finalize(l->off_upsert);
    sqlite3_finalize(l->ckpt_upsert);
    sqlite3_finalize(l->off_select);
    sqlite3_finalize(l->ckpt_select);
    sqlite3_close(l->db);
    free(l);
}

static const rn__sink_ops_t lite_ops = {true, lite_upsert, lite_delete, lite_commit,
                                        lite_read_offsets, lite_close};

static rn_err_t prepare(rn_sink_t *s, const char *sql, sqlite3_stmt **st)
{
    lite_t *l = s->impl;
    if (sqlite3_prepare_v2(l->db, sql, -1, st, NULL) != SQLITE_OK)
        return lite_fail(s, sql);
    return RN_OK;
}

rn_err_t rn__sink_sqlite_open(rn_sink_t *s)
{
    lite_t *l = calloc(1, sizeof *l);
    if (!l)
        return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
    s->impl = l;
    s->ops = &lite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->target, &l->db, flags, NULL) != SQLITE_OK)
        return lite_fail(s, "open");
    sqlite3_busy_timeout(l->db, 10000);
    const char *setup[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                           rn__sql_offsets_ddl[0], rn__sql_checkpoints_ddl[0]};
    for (size_t i = 0; i < 4; i++) {
        if (sqlite3_exec(l->db, setup[i], NULL, NULL, NULL) != SQLITE_OK)
            return lite_fail(s, setup[i]);
    }
    rn_buf_t sql = RN_BUF_INIT;
    rn_err_t err = rn__sql_create(&sql, &s->schema, RN__SQL_SQLITE);
    if (err == RN_OK && sqlite3_exec(l->db, (char *)sql.data, NULL, NULL, NULL) != SQLITE_OK)
        err = lite_fail(s, "creating the table");
    if (err == RN_OK && (err = rn__sql_upsert(&sql, &s->schema, RN__SQL_SQLITE)) == RN_OK)
        err = prepare(s, (char *)sql.data, &l->upsert);
    if (err == RN_OK && (err = rn__sql_delete(&sql, &s->schema, RN__SQL_SQLITE)) == RN_OK)
        err = prepare(s, (char *)sql.data, &l->remove);
    rn_buf_free(&sql);
    if (err == RN_OK)
        err = prepare(s, rn__sql_offsets_upsert[0], &l->off_upsert);
    if (err == RN_OK)
        err = prepare(s, rn__sql_checkpoints_upsert[0], &l->ckpt_upsert);
    if (err == RN_OK)
        err = prepare(s, rn__sql_offsets_select[0], &l->off_select);
    if (err == RN_OK)
        err = prepare(s, rn__sql_checkpoints_select[0], &l->ckpt_select);
    return err;
}
