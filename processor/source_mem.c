/* source_mem.c - the in-memory source: partitions of copied records, polled round-robin. */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mpart {
    rn_src_record_t *recs;
    size_t n, cap;
    int64_t pos;      /* next offset to deliver; -1 when unassigned */
} mpart_t;

struct rn_memsrc {
    char *topic;
    int32_t nparts;
    mpart_t *parts;
    rn_src_record_t *out;
    size_t outcap;
    size_t batch;
    int32_t next_part;
};

rn_err_t rn_memsrc_new(const char *topic, int32_t partitions, rn_memsrc_t **out)
{
    rn_memsrc_t *m = calloc(1, sizeof *m);
    if (!m)
        return RN_ERR_NOMEM;
    m->topic = strdup(topic);
    m->nparts = partitions;
    m->parts = calloc((size_t)partitions + 1, sizeof *m->parts);
    m->batch = 512;
    if (!m->topic || !m->parts) {
        rn_memsrc_free(m);
        return RN_ERR_NOMEM;
    }
    for (int32_t p = 0; p < partitions; p++)
        m->parts[p].pos = -1;
    *out = m;
    return RN_OK;
}

void rn_memsrc_free(rn_memsrc_t *m)
{
    if (!m)
        return;
    for (int32_t p = 0; m->parts && p < m->nparts; p++) {
        for (size_t i = 0; i < m->parts[p].n; i++)
            free((void *)m->parts[p].recs[i].value);
        free(m->parts[p].recs);
    }
    free(m->parts);
    free(m->out);
    free(m->topic);
    free(m);
}

rn_err_t rn_memsrc_append(rn_memsrc_t *m, int32_t partition, const void *value, size_t len)
{
    return rn_memsrc_append_ts(m, partition, value, len, 0);
}

rn_err_t rn_memsrc_append_ts(rn_memsrc_t *m, int32_t partition, const void *value, size_t len,
                             int64_t timestamp_ms)
{
    if (partition < 0 || partition >= m->nparts)
        return RN_ERR_INVALID_ARG;
    mpart_t *p = &m->parts[partition];
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        rn_src_record_t *r = realloc(p->recs, cap * sizeof *r);
        if (!r)
            return RN_ERR_NOMEM;
        p->recs = r;
        p->cap = cap;
    }
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return RN_ERR_NOMEM;
    memcpy(copy, value, len);
    p->recs[p->n] = (rn_src_record_t){partition, (int64_t)p->n, timestamp_ms, copy, len};
    p->n++;
    return RN_OK;
}

rn_err_t rn_memsrc_load_lines(rn_memsrc_t *m, const char *path, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return RN_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    rn_err_t err = RN_OK;
    while (err == RN_OK && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len > 0)
            err = rn_memsrc_append(m, 0, line, (size_t)len);
    }
    free(line);
    fclose(f);
    if (err != RN_OK)
        snprintf(errbuf, errlen, "%s: out of memory", path);
    return err;
}

void rn_memsrc_set_batch(rn_memsrc_t *m, size_t max)
{
    m->batch = max ? max : 1;
}

static rn_err_t mem_partitions(void *ctx, const char *topic, int32_t *count, char *errbuf,
                               size_t errlen)
{
    rn_memsrc_t *m = ctx;
    if (strcmp(topic, m->topic) != 0) {
        snprintf(errbuf, errlen, "unknown topic '%s'", topic);
        return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    *count = m->nparts;
    return RN_OK;
}

static rn_err_t mem_assign(void *ctx, const char *topic, int32_t partition, int64_t offset)
{
    rn_memsrc_t *m = ctx;
    (void)topic;
    if (partition < 0 || partition >= m->nparts)
        return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    m->parts[partition].pos = offset == RN_SRC_BEGINNING ? 0 : offset;
    return RN_OK;
}

static rn_err_t mem_end(void *ctx, const char *topic, int32_t partition, int64_t *end)
{
    rn_memsrc_t *m = ctx;
    (void)topic;
    if (partition < 0 || partition >= m->nparts)
        return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    *end = (int64_t)m->parts[partition].n;
    return RN_OK;
}

/* Every record is there from the start: the end is the partition's record count. */
static rn_err_t mem_high_watermark(void *ctx, const char *topic, int32_t partition, int64_t *hw)
{
    return mem_end(ctx, topic, partition, hw);
}

/* Round-robin over partitions, up to `batch` records from one partition per poll. */
static rn_err_t mem_poll(void *ctx, int timeout_ms, size_t max, const rn_src_record_t **recs,
                         size_t *n)
{
    rn_memsrc_t *m = ctx;
    (void)timeout_ms;
    *n = 0;
    if (max > m->batch)
        max = m->batch;
    if (m->outcap < max) {
        rn_src_record_t *o = realloc(m->out, max * sizeof *o);
        if (!o)
            return RN_ERR_NOMEM;
        m->out = o;
        m->outcap = max;
    }
    for (int32_t k = 0; k < m->nparts && *n == 0; k++) {
        int32_t pi = (m->next_part + k) % m->nparts;
        mpart_t *p = &m->parts[pi];
        while (p->pos >= 0 && (size_t)p->pos < p->n && *n < max)
            m->out[(*n)++] = p->recs[p->pos++];
        if (*n)
            m->next_part = (pi + 1) % m->nparts;
    }
    *recs = m->out;
    return RN_OK;
}

rn_source_t rn_memsrc_source(rn_memsrc_t *m)
{
    return (rn_source_t){.partitions = mem_partitions, .assign = mem_assign,
                         .end_offset = mem_end, .poll = mem_poll,
                         .high_watermark = mem_high_watermark, .ctx = m};
}
