/*
 * sink_int.h - what each sink implements (sqlite.c, postgres.c, jsonsink.c) and the SQL and
 * JSON text they share. Not for use outside sink/.
 */
#ifndef RN_SINK_INT_H
#define RN_SINK_INT_H

#include "buf.h"
#include "sink/sink.h"

typedef struct rn__sink_ops {
    bool transactional;
    rn_err_t (*upsert)(rn_sink_t *s, const rn_value_t *row);
    rn_err_t (*remove)(rn_sink_t *s, const rn_value_t *row);
    rn_err_t (*commit)(rn_sink_t *s, uint64_t epoch, const rn_sink_offset_t *offs, size_t n);
    rn_err_t (*read_offsets)(rn_sink_t *s, uint64_t *epoch, rn_sink_offset_t **offs, size_t *n);
    void (*close)(rn_sink_t *s);
} rn__sink_ops_t;

struct rn_sink {
    const rn__sink_ops_t *ops;
    rn_sink_schema_t schema;   /* deep copy, owned */
    rn_sink_io_t io;
    char *target;
    char err[1024];
    void *impl;
};

rn_err_t rn__sink_sqlite_open(rn_sink_t *s);
rn_err_t rn__sink_pg_open(rn_sink_t *s);
rn_err_t rn__sink_json_open(rn_sink_t *s, bool topic);
rn_err_t rn__sink_fail(rn_sink_t *s, rn_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "name" with embedded quotes doubled. */
void rn__sql_ident(rn_buf_t *b, const char *name);
typedef enum { RN__SQL_SQLITE, RN__SQL_PG } rn__sql_dialect_t;
/* CREATE TABLE IF NOT EXISTS for the schema, NUL-terminated in b. */
rn_err_t rn__sql_create(rn_buf_t *b, const rn_sink_schema_t *s, rn__sql_dialect_t d);
/* INSERT … ON CONFLICT (pk) DO UPDATE SET …; params in column order. */
rn_err_t rn__sql_upsert(rn_buf_t *b, const rn_sink_schema_t *s, rn__sql_dialect_t d);
/* DELETE … WHERE pk = …; params in primary-key order. */
rn_err_t rn__sql_delete(rn_buf_t *b, const rn_sink_schema_t *s, rn__sql_dialect_t d);
/* The bookkeeping tables' DDL and statements, shared by both SQL sinks. */
extern const char *const rn__sql_offsets_ddl[2];
extern const char *const rn__sql_checkpoints_ddl[2];
extern const char *const rn__sql_offsets_upsert[2];
extern const char *const rn__sql_checkpoints_upsert[2];
extern const char *const rn__sql_offsets_select[2];
extern const char *const rn__sql_checkpoints_select[2];

/* Appends v as a JSON value (TIMESTAMP as an ISO-8601 string). */
rn_err_t rn__json_value(rn_buf_t *b, const rn_value_t *v);
/* {"col": value, …} of the given columns (idx NULL: all). */
rn_err_t rn__json_object(rn_buf_t *b, const rn_sink_schema_t *s, const rn_value_t *row,
                         const int *idx, size_t n);

#endif
