/*
 * jsonsink.c - the STDOUT and TOPIC sinks: rows as JSON.
 *
 * STDOUT writes one JSON object per line: an upsert is the row ({"window_start":
 * "2023-10-27T10:00:00.000Z","user_id":"u1","total":1500}); a delete is the primary key with
 * "__deleted": true. A commit flushes the stream.
 *
 * TOPIC publishes each row with the JSON object of its primary key as the record key and the
 * row as the value; a delete is a tombstone (null value), so a compacted topic keeps exactly
 * the current table. A commit waits for every record to be acknowledged. Neither sink can
 * hold offsets: the runtime keeps them in the state snapshot.
 */
#include "sink/sink_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct json_sink {
    bool topic;
    rn_buf_t line, key;
} json_sink_t;

static rn_err_t emit(rn_sink_t *s, const rn_value_t *row, bool deleted)
{
    json_sink_t *j = s->impl;
    rn_buf_reset(&j->line);
    rn_buf_reset(&j->key);
    const rn_sink_schema_t *sc = &s->schema;
    rn_err_t err;
    if (j->topic) {
        err = rn__json_object(&j->key, sc, row, sc->pk, sc->npk);
        if (err == RN_OK && !deleted)
            err = rn__json_object(&j->line, sc, row, NULL, sc->ncols);
        if (err != RN_OK)
            return rn__sink_fail(s, err, "out of memory");
        err = s->io.publish(s->io.ctx, s->target, j->key.data, j->key.len,
                            deleted ? NULL : j->line.data, deleted ? 0 : j->line.len);
        return err == RN_OK ? RN_OK
                            : rn__sink_fail(s, err, "publishing to topic '%s': %s", s->target,
                                            rn_err_str(err));
    }
    err = rn__json_object(&j->line, sc, row, deleted ? sc->pk : NULL, deleted ? sc->npk : sc->ncols);
    if (err == RN_OK && deleted) {
        j->line.len--; /* reopen the object */
        err = rn_buf_append(&j->line, ",\"__deleted\":true}", 18);
    }
    if (err == RN_OK)
        err = rn_buf_append(&j->line, "\n", 1);
    if (err != RN_OK)
        return rn__sink_fail(s, err, "out of memory");
    if (fwrite(j->line.data, 1, j->line.len, s->io.out) != j->line.len)
        return rn__sink_fail(s, RN_ERR_IO, "writing rows to standard output failed");
    return RN_OK;
}

static rn_err_t json_upsert(rn_sink_t *s, const rn_value_t *row) { return emit(s, row, false); }
static rn_err_t json_delete(rn_sink_t *s, const rn_value_t *row) { return emit(s, row, true); }

static rn_err_t json_commit(rn_sink_t *s, uint64_t epoch, const rn_sink_offset_t *offs, size_t n)
{
    (void)epoch;
    (void)offs;
    (void)n;
    json_sink_t *j = s->impl;
    if (j->topic) {
        rn_err_t err = s->io.flush ? s->io.flush(s->io.ctx) : RN_OK;
        return err == RN_OK ? RN_OK
                            : rn__sink_fail(s, err, "flushing topic '%s': %s", s->target, rn_err_str(err));
    }
    return fflush(s->io.out) == 0 ? RN_OK
                                  : rn__sink_fail(s, RN_ERR_IO, "flushing standard output failed");
}

static void json_close(rn_sink_t *s)
{
    json_sink_t *j = s->impl;
    if (!j)
        return;
    if (!j->topic)
        fflush(s->io.out);
    rn_buf_free(&j->line);
    rn_buf_free(&j->key);
    free(j);
}

static const rn__sink_ops_t json_ops = {false, json_upsert, json_delete, json_commit, NULL, json_close};

rn_err_t rn__sink_json_open(rn_sink_t *s, bool topic)
{
    if (topic && !s->io.publish)
        return rn__sink_fail(s, RN_ERR_STATE,
                             "the TOPIC sink needs a producer (not available in this build)");
    json_sink_t *j = calloc(1, sizeof *j);
    if (!j)
        return rn__sink_fail(s, RN_ERR_NOMEM, "out of memory");
    j->topic = topic;
    s->impl = j;
    s->ops = &json_ops;
    return RN_OK;
}
