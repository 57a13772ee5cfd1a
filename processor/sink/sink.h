/*
 * sink.h - where a job's rows go: upserts (and deletes) by primary key, committed together
 * with the source offsets they account for.
 *
 * Happy path, per checkpoint:
 *   rn_sink_upsert / rn_sink_delete …   rows of this checkpoint (a transaction opens lazily)
 *   rn_sink_commit(epoch, offsets)      rows + offsets + epoch, atomically where the sink can
 * At start, rn_sink_read_offsets returns what the last commit recorded, so a restart resumes
 * exactly after it; replayed rows upsert to the same values (effectively once).
 *
 *   kind      transactional   rows                               offsets and epoch
 *   SQLITE    yes             INSERT … ON CONFLICT DO UPDATE     runnel_offsets, runnel_checkpoints
 *   POSTGRES  yes             the same statement, libpq          the same tables
 *   STDOUT    no              JSON lines                         none (the state snapshot keeps them)
 *   TOPIC     no              JSON value keyed by the PK (JSON)  none (the state snapshot keeps them)
 *                             a delete is a tombstone
 *
 * TIMESTAMP columns are INTEGER epoch milliseconds in SQLite, timestamptz in PostgreSQL,
 * ISO-8601 strings in JSON. The table is created when missing, named by the plan.
 *
 * Failure modes: any error aborts the open transaction (nothing of it is visible) and is
 * returned with a message in rn_sink_errmsg; the runtime then stops and a restart replays
 * from the last committed offsets. A sink is used from one thread.
 */
#ifndef RN_SINK_H
#define RN_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "ops/value.h"
#include "sql/plan.h"

typedef struct rn_sink rn_sink_t;

typedef struct rn_sink_offset {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
} rn_sink_offset_t;

typedef struct rn_sink_schema {
    const char *job;            /* runnel_offsets.job */
    const char *table;
    const rn_plan_col_t *cols;  /* the row's columns, in order */
    size_t ncols;
    const int *pk;              /* indexes into cols */
    size_t npk;
} rn_sink_schema_t;

/*
 * TOPIC sink's way out: sends one record (value NULL: a tombstone). The runtime passes a
 * function over rn_producer_send (idempotent producer); tests pass a fake.
 */
typedef rn_err_t (*rn_sink_publish_fn)(void *ctx, const char *topic, const void *key,
                                       size_t key_len, const void *value, size_t value_len);
/* Waits until every published record is acknowledged (the producer's flush). */
typedef rn_err_t (*rn_sink_flush_fn)(void *ctx);

typedef struct rn_sink_io {
    FILE *out;                  /* STDOUT: where JSON lines go (default stdout) */
    rn_sink_publish_fn publish; /* TOPIC */
    rn_sink_flush_fn flush;
    void *ctx;
} rn_sink_io_t;

/* Opens the sink of a plan. io may be NULL for SQLITE/POSTGRES. */
rn_err_t rn_sink_open(rn_sink_kind_t kind, const char *target, const rn_sink_schema_t *schema,
                      const rn_sink_io_t *io, rn_sink_t **out, char *errbuf, size_t errlen);
/* The schema of a plan's sink (pointers into the plan). */
rn_sink_schema_t rn_sink_schema_of(const rn_plan_t *plan);

rn_err_t rn_sink_upsert(rn_sink_t *s, const rn_value_t *row);
/* Deletes the row with row's primary key (other columns ignored). */
rn_err_t rn_sink_delete(rn_sink_t *s, const rn_value_t *row);
/* Commits the rows written since the last commit, with the offsets and epoch. */
rn_err_t rn_sink_commit(rn_sink_t *s, uint64_t epoch, const rn_sink_offset_t *offsets,
                        size_t n);
/*
 * What the last commit of this job recorded: *epoch (0 when none) and the offsets (an array
 * the caller frees with rn_sink_offsets_free). Non-transactional sinks return epoch 0 and
 * no offsets.
 */
rn_err_t rn_sink_read_offsets(rn_sink_t *s, uint64_t *epoch, rn_sink_offset_t **offsets,
                              size_t *n);
void rn_sink_offsets_free(rn_sink_offset_t *offsets, size_t n);
bool rn_sink_transactional(const rn_sink_t *s);
/* The message of the last error. */
const char *rn_sink_errmsg(const rn_sink_t *s);
/* Rolls back an open transaction and closes. */
void rn_sink_close(rn_sink_t *s);

#endif
