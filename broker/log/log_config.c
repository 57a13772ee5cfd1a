/* log_config.c - the per-topic settings of a partition log: defaults, parsing, listing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "log.h"

#define DAY_MS (24LL * 3600 * 1000)

void rn_log_config_default(rn_log_config_t *cfg)
{
    cfg->segment_bytes = 1ULL << 30;
    cfg->segment_ms = 7 * DAY_MS;
    cfg->segment_index_bytes = 10u << 20;
    cfg->index_interval_bytes = 4096;
    cfg->flush_messages = INT64_MAX;
    cfg->flush_ms = INT64_MAX;
    cfg->retention_ms = 7 * DAY_MS;
    cfg->retention_bytes = -1;
    cfg->max_message_bytes = 1048588;
    cfg->min_insync_replicas = 1;
    cfg->unclean_leader_election = 0;
}

enum field_kind { F_U64, F_I64, F_U32, F_BOOL };

struct field {
    const char *key;
    size_t offset;
    enum field_kind kind;
    int64_t min;
    int64_t max;
};

#define FIELD(key, member, kind, min, max) {key, offsetof(rn_log_config_t, member), kind, min, max}

static const struct field fields[] = {
    FIELD("segment.bytes", segment_bytes, F_U64, 1024, INT32_MAX),
    FIELD("segment.ms", segment_ms, F_I64, 1, INT64_MAX),
    FIELD("segment.index.bytes", segment_index_bytes, F_U32, 4 * RN_IDX_ENTRY_SIZE, INT32_MAX),
    FIELD("index.interval.bytes", index_interval_bytes, F_U32, 1, INT32_MAX),
    FIELD("flush.messages", flush_messages, F_I64, 1, INT64_MAX),
    FIELD("flush.ms", flush_ms, F_I64, 0, INT64_MAX),
    FIELD("retention.ms", retention_ms, F_I64, -1, INT64_MAX),
    FIELD("retention.bytes", retention_bytes, F_I64, -1, INT64_MAX),
    FIELD("max.message.bytes", max_message_bytes, F_U32, RN_BATCH_HEADER_SIZE, RN_BATCH_MAX_SIZE),
    FIELD("min.insync.replicas", min_insync_replicas, F_U32, 1, 1000),
    FIELD("unclean.leader.election.enable", unclean_leader_election, F_BOOL, 0, 1),
};

static const struct field *find_field(const char *key)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    }
    return NULL;
}

rn_err_t rn_log_config_set(rn_log_config_t *cfg, const char *key, const char *value,
                           char *errbuf, size_t errlen)
{
    const struct field *f = find_field(key);
    if (!f) {
        if (errbuf)
            snprintf(errbuf, errlen, "unknown topic config '%s'", key);
        return RN_ERR_UNKNOWN_CONFIG;
    }
    char *p = (char *)cfg + f->offset;
    if (f->kind == F_BOOL) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            if (errbuf)
                snprintf(errbuf, errlen, "bad value '%s' for %s: expected true or false", value,
                         key);
            return RN_ERR_BAD_CONFIG;
        }
        *(uint32_t *)(void *)p = value[0] == 't';
        return RN_OK;
    }
    errno = 0;
    char *end;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < f->min || v > f->max) {
        if (errbuf)
            snprintf(errbuf, errlen, "bad value '%s' for %s: expected an integer in [%" PRId64
                     ", %" PRId64 "]", value, key, f->min, f->max);
        return RN_ERR_BAD_CONFIG;
    }
    switch (f->kind) {
    case F_U64: *(uint64_t *)(void *)p = (uint64_t)v; break;
    case F_I64: *(int64_t *)(void *)p = (int64_t)v; break;
    case F_U32: *(uint32_t *)(void *)p = (uint32_t)v; break;
    case F_BOOL: break;
    }
    return RN_OK;
}

void rn_log_config_each(const rn_log_config_t *cfg,
                        void (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *p = (const char *)cfg + fields[i].offset;
        char buf[32];
        switch (fields[i].kind) {
        case F_U64: snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)(const void *)p); break;
        case F_I64: snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)(const void *)p); break;
        case F_U32: snprintf(buf, sizeof buf, "%" PRIu32, *(const uint32_t *)(const void *)p); break;
        case F_BOOL: snprintf(buf, sizeof buf, "%s", *(const uint32_t *)(const void *)p ? "true" : "false"); break;
        }
        fn(ctx, fields[i].key, buf);
    }
}
