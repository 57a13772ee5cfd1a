/* topics.c - topic table, topics.meta persistence, create and delete. */
#include "topics.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fsutil.h"
#include "logging.h"
#include "sorted.h"

#define META_FILE "topics.meta"
#define META_HEADER "runnel-topics 1"
#define MAX_NAME 249
#define MAX_PARTITIONS 100000

struct rn_topic {
    char *name;
    uint32_t nparts;
    rn_part_t **parts;
    size_t noverrides;
    char **keys;             /* overrides, as given at create */
    char **values;
    rn_log_config_t cfg;     /* defaults + overrides */
    void *stats;             /* the observer's (rn_topics_observe) */
    rn_topic_t *next_dead;   /* in the reap list once deleted */
};

struct rn_topics {
    const rn_part_env_t *env;
    char *data_dir;
    char *meta_path;
    rn_log_config_t defaults;
    rn_topic_t **v;          /* sorted by name */
    size_t n, cap;
    rn_topic_t *dead;        /* deleted, directories not yet removed */
    rn_topics_observer_t obs;
};

const char *rn_topic_name(const rn_topic_t *topic) { return topic->name; }
uint32_t rn_topic_partition_count(const rn_topic_t *topic) { return topic->nparts; }
const rn_log_config_t *rn_topic_config(const rn_topic_t *topic) { return &topic->cfg; }
void *rn_topic_stats(const rn_topic_t *topic) { return topic->stats; }
size_t rn_topics_count(const rn_topics_t *t) { return t->n; }
rn_topic_t *rn_topics_at(rn_topics_t *t, size_t i) { return i < t->n ? t->v[i] : NULL; }

rn_part_t *rn_topic_partition(rn_topic_t *topic, uint32_t i)
{
    return i < topic->nparts ? topic->parts[i] : NULL;
}

bool rn_topic_name_valid(const char *name, char *errbuf, size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_NAME) {
        snprintf(errbuf, errlen, "topic name must be 1 to %d characters long", MAX_NAME);
        return false;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(errbuf, errlen, "topic name cannot be '.' or '..'");
        return false;
    }
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            snprintf(errbuf, errlen,
                     "topic name may contain only ASCII letters, digits, '.', '_' and '-'");
            return false;
        }
    }
    return true;
}

static int name_cmp(const void *element, const void *key)
{
    return strcmp(((const rn_topic_t *)element)->name, key);
}

/* Index of name in the sorted array, or where it would go (*found false). */
static size_t search(const rn_topics_t *t, const char *name, bool *found)
{
    return rn_sorted_pos((void *const *)t->v, t->n, name, name_cmp, found);
}

rn_topic_t *rn_topics_find(rn_topics_t *t, const char *name)
{
    bool found;
    size_t i = search(t, name, &found);
    return found ? t->v[i] : NULL;
}

static bool is_dead(const rn_topics_t *t, const char *name)
{
    for (const rn_topic_t *d = t->dead; d; d = d->next_dead) {
        if (strcmp(d->name, name) == 0)
            return true;
    }
    return false;
}

static void free_topic(rn_topic_t *topic)
{
    for (size_t i = 0; i < topic->noverrides; i++) {
        free(topic->keys[i]);
        free(topic->values[i]);
    }
    free(topic->keys);
    free(topic->values);
    free(topic->parts);
    free(topic->name);
    free(topic);
}

static void part_dir(const rn_topics_t *t, const char *name, uint32_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s-%" PRIu32, t->data_dir, name, i);
}

static void observe_added(rn_topics_t *t, rn_topic_t *topic)
{
    if (t->obs.added)
        topic->stats = t->obs.added(t->obs.ctx, topic);
}

static void observe_removed(rn_topics_t *t, rn_topic_t *topic)
{
    if (t->obs.removed && topic->stats)
        t->obs.removed(t->obs.ctx, topic->stats);
    topic->stats = NULL;
}

void rn_topics_observe(rn_topics_t *t, const rn_topics_observer_t *obs)
{
    t->obs = *obs;
    for (size_t i = 0; i < t->n; i++)
        observe_added(t, t->v[i]);
}

/* ---------------------------------------------------------------- topics.meta ---- */

static rn_err_t write_meta(rn_topics_t *t)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_err_t err = rn_buf_append(&b, META_HEADER "\n", strlen(META_HEADER) + 1);
    for (size_t i = 0; i < t->n && err == RN_OK; i++) {
        const rn_topic_t *topic = t->v[i];
        char num[16];
        snprintf(num, sizeof num, " %" PRIu32, topic->nparts);
        err = rn_buf_append(&b, topic->name, strlen(topic->name));
        if (err == RN_OK)
            err = rn_buf_append(&b, num, strlen(num));
        for (size_t j = 0; j < topic->noverrides && err == RN_OK; j++) {
            if ((err = rn_buf_append(&b, " ", 1)) == RN_OK &&
                (err = rn_buf_append(&b, topic->keys[j], strlen(topic->keys[j]))) == RN_OK &&
                (err = rn_buf_append(&b, "=", 1)) == RN_OK)
                err = rn_buf_append(&b, topic->values[j], strlen(topic->values[j]));
        }
        if (err == RN_OK)
            err = rn_buf_append(&b, "\n", 1);
    }
    if (err == RN_OK)
        err = rn_fs_write_atomic(t->meta_path, b.data, b.len, true);
    rn_buf_free(&b);
    return err;
}

/* A topic from its spec, config resolved; no partitions opened yet. */
static rn_err_t topic_from_spec(const rn_topics_t *t, const rn_topic_spec_t *spec,
                                uint32_t nparts, rn_topic_t **out, char *errbuf, size_t errlen)
{
    rn_topic_t *topic = calloc(1, sizeof *topic);
    if (!topic)
        return RN_ERR_NOMEM;
    topic->cfg = t->defaults;
    topic->nparts = nparts;
    topic->name = strdup(spec->name);
    topic->parts = calloc(nparts ? nparts : 1, sizeof *topic->parts);
    topic->keys = calloc(spec->nconfigs + 1, sizeof *topic->keys);
    topic->values = calloc(spec->nconfigs + 1, sizeof *topic->values);
    if (!topic->name || !topic->parts || !topic->keys || !topic->values) {
        free_topic(topic);
        return RN_ERR_NOMEM;
    }
    for (size_t i = 0; i < spec->nconfigs; i++) {
        rn_err_t err = rn_log_config_set(&topic->cfg, spec->keys[i], spec->values[i], errbuf,
                                         errlen);
        if (err != RN_OK) {
            free_topic(topic);
            return RN_ERR_INVALID_CONFIG;
        }
        topic->keys[i] = strdup(spec->keys[i]);
        topic->values[i] = strdup(spec->values[i]);
        topic->noverrides++;
        if (!topic->keys[i] || !topic->values[i]) {
            free_topic(topic);
            return RN_ERR_NOMEM;
        }
    }
    *out = topic;
    return RN_OK;
}

static rn_err_t open_partitions(rn_topics_t *t, rn_topic_t *topic, bool fresh, char *errbuf,
                                size_t errlen)
{
    for (uint32_t i = 0; i < topic->nparts; i++) {
        char dir[PATH_MAX];
        part_dir(t, topic->name, i, dir, sizeof dir);
        if (fresh && rn_fs_rmtree(dir) != RN_OK) {
            snprintf(errbuf, errlen, "%s: cannot remove a leftover directory: %s", dir,
                     strerror(errno));
            return RN_ERR_IO;
        }
        rn_err_t err = rn_part_open(t->env, dir, &topic->cfg, &topic->parts[i], errbuf, errlen);
        if (err != RN_OK)
            return err;
    }
    return RN_OK;
}

static rn_err_t insert_topic(rn_topics_t *t, rn_topic_t *topic)
{
    bool found;
    size_t at = search(t, topic->name, &found);
    if (found)
        return RN_ERR_EXISTS;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        rn_topic_t **v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return RN_ERR_NOMEM;
        t->v = v;
        t->cap = cap;
    }
    memmove(&t->v[at + 1], &t->v[at], (t->n - at) * sizeof *t->v);
    t->v[at] = topic;
    t->n++;
    return RN_OK;
}

static void remove_topic(rn_topics_t *t, const char *name)
{
    bool found;
    size_t at = search(t, name, &found);
    if (!found)
        return;
    memmove(&t->v[at], &t->v[at + 1], (t->n - at - 1) * sizeof *t->v);
    t->n--;
}

/* Parses one topics.meta line into t (opening its partitions). */
static rn_err_t load_line(rn_topics_t *t, char *line, int lineno, char *errbuf, size_t errlen)
{
    const char *keys[64], *values[64];
    rn_topic_spec_t spec = {.keys = keys, .values = values};
    char *save = NULL;
    spec.name = strtok_r(line, " ", &save);
    char *parts = strtok_r(NULL, " ", &save), *end = NULL;
    long np = parts ? strtol(parts, &end, 10) : 0;
    if (!spec.name || !parts || *end || np < 1 || np > MAX_PARTITIONS ||
        !rn_topic_name_valid(spec.name, errbuf, errlen)) {
        snprintf(errbuf, errlen, "%s:%d: expected 'NAME PARTITIONS [key=value]...'",
                 t->meta_path, lineno);
        return RN_ERR_CORRUPT;
    }
    for (char *kv; (kv = strtok_r(NULL, " ", &save));) {
        char *eq = strchr(kv, '=');
        if (!eq || spec.nconfigs == 64) {
            snprintf(errbuf, errlen, "%s:%d: bad config '%s'", t->meta_path, lineno, kv);
            return RN_ERR_CORRUPT;
        }
        *eq = '\0';
        keys[spec.nconfigs] = kv;
        values[spec.nconfigs++] = eq + 1;
    }
    rn_topic_t *topic;
    char inner[256];
    rn_err_t err = topic_from_spec(t, &spec, (uint32_t)np, &topic, inner, sizeof inner);
    if (err != RN_OK) {
        snprintf(errbuf, errlen, "%s:%d: %s", t->meta_path, lineno, inner);
        return err == RN_ERR_NOMEM ? err : RN_ERR_CORRUPT;
    }
    if (insert_topic(t, topic) != RN_OK) {
        snprintf(errbuf, errlen, "%s:%d: topic '%s' listed twice", t->meta_path, lineno,
                 topic->name);
        free_topic(topic);
        return RN_ERR_CORRUPT;
    }
    return open_partitions(t, topic, false, errbuf, errlen);
}

static rn_err_t load_meta(rn_topics_t *t, char *errbuf, size_t errlen)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_err_t err = rn_fs_read_all(t->meta_path, &b);
    if (err == RN_ERR_NOT_FOUND) {
        rn_buf_free(&b);
        return RN_OK;
    }
    if (err == RN_OK && rn_buf_append(&b, "", 1) != RN_OK)
        err = RN_ERR_NOMEM;
    if (err != RN_OK) {
        snprintf(errbuf, errlen, "%s: cannot read: %s", t->meta_path, strerror(errno));
        rn_buf_free(&b);
        return err;
    }
    char *save = NULL;
    int lineno = 0;
    for (char *line = strtok_r((char *)b.data, "\n", &save); line && err == RN_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, META_HEADER) != 0) {
                snprintf(errbuf, errlen, "%s: first line is not '%s'", t->meta_path, META_HEADER);
                err = RN_ERR_CORRUPT;
            }
            continue;
        }
        if (*line && *line != '#')
            err = load_line(t, line, lineno, errbuf, errlen);
    }
    rn_buf_free(&b);
    return err;
}

/* ------------------------------------------------------------------ lifecycle ---- */

rn_err_t rn_topics_open(const rn_part_env_t *env, const char *data_dir,
                        const rn_log_config_t *defaults, rn_topics_t **out, char *errbuf,
                        size_t errlen)
{
    rn_topics_t *t = calloc(1, sizeof *t);
    if (!t)
        return RN_ERR_NOMEM;
    t->env = env;
    t->defaults = *defaults;
    size_t n = strlen(data_dir) + sizeof META_FILE + 2;
    t->data_dir = strdup(data_dir);
    t->meta_path = malloc(n);
    if (!t->data_dir || !t->meta_path) {
        rn_topics_close(t);
        return RN_ERR_NOMEM;
    }
    snprintf(t->meta_path, n, "%s/%s", data_dir, META_FILE);
    rn_err_t err = load_meta(t, errbuf, errlen);
    if (err != RN_OK) {
        /* Partitions opened so far close uncleanly: nothing was appended. */
        for (size_t i = 0; i < t->n; i++) {
            for (uint32_t j = 0; j < t->v[i]->nparts; j++) {
                if (t->v[i]->parts[j])
                    rn_part_close(t->v[i]->parts[j]);
            }
            free_topic(t->v[i]);
        }
        t->n = 0;
        rn_topics_close(t);
        return err;
    }
    *out = t;
    return RN_OK;
}

rn_err_t rn_topics_close(rn_topics_t *t)
{
    if (!t)
        return RN_OK;
    rn_err_t err = RN_OK;
    rn_topics_reap(t);
    for (size_t i = 0; i < t->n; i++) {
        rn_topic_t *topic = t->v[i];
        observe_removed(t, topic);
        for (uint32_t j = 0; j < topic->nparts; j++) {
            if (rn_part_close(topic->parts[j]) != RN_OK && err == RN_OK)
                err = RN_ERR_IO;
        }
        free_topic(topic);
    }
    /* A dead topic still here had a sync running; destroy finishes it when that ends. */
    for (rn_topic_t *d = t->dead, *next; d; d = next) {
        next = d->next_dead;
        for (uint32_t j = 0; j < d->nparts; j++)
            rn_part_destroy(d->parts[j]);
        free_topic(d);
    }
    free(t->v);
    free(t->data_dir);
    free(t->meta_path);
    free(t);
    return err;
}

/* ---------------------------------------------------------- create / delete ---- */

rn_err_t rn_topics_validate(rn_topics_t *t, const rn_topic_spec_t *spec, uint32_t num_partitions,
                            char *errbuf, size_t errlen)
{
    if (!rn_topic_name_valid(spec->name, errbuf, errlen))
        return RN_ERR_INVALID_TOPIC;
    uint32_t np = spec->partitions ? spec->partitions : num_partitions;
    if (np < 1 || np > MAX_PARTITIONS) {
        snprintf(errbuf, errlen, "partitions must be in 1..%d (0 means num.partitions)",
                 MAX_PARTITIONS);
        return RN_ERR_INVALID_PARTITIONS;
    }
    if (spec->replication_factor > 1) {
        snprintf(errbuf, errlen, "replication factor %" PRIu32 " needs %" PRIu32
                 " brokers; this single-node broker supports 1", spec->replication_factor,
                 spec->replication_factor);
        return RN_ERR_INVALID_REPLICATION_FACTOR;
    }
    rn_log_config_t cfg = t->defaults;
    for (size_t i = 0; i < spec->nconfigs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(spec->keys[i], spec->keys[j]) == 0) {
                snprintf(errbuf, errlen, "config '%s' given twice", spec->keys[i]);
                return RN_ERR_INVALID_CONFIG;
            }
        }
        if (strchr(spec->values[i], ' ') || strchr(spec->values[i], '\n') ||
            rn_log_config_set(&cfg, spec->keys[i], spec->values[i], errbuf, errlen) != RN_OK) {
            if (strchr(spec->values[i], ' ') || strchr(spec->values[i], '\n'))
                snprintf(errbuf, errlen, "bad value for %s: whitespace", spec->keys[i]);
            return RN_ERR_INVALID_CONFIG;
        }
    }
    if (rn_topics_find(t, spec->name)) {
        snprintf(errbuf, errlen, "topic '%s' already exists", spec->name);
        return RN_ERR_TOPIC_ALREADY_EXISTS;
    }
    if (is_dead(t, spec->name)) {
        snprintf(errbuf, errlen, "topic '%s' is being deleted; retry in a moment", spec->name);
        return RN_ERR_TOPIC_ALREADY_EXISTS;
    }
    return RN_OK;
}

rn_err_t rn_topics_create(rn_topics_t *t, const rn_topic_spec_t *spec, uint32_t num_partitions,
                          char *errbuf, size_t errlen)
{
    rn_err_t err = rn_topics_validate(t, spec, num_partitions, errbuf, errlen);
    if (err != RN_OK)
        return err;
    rn_topic_t *topic;
    uint32_t np = spec->partitions ? spec->partitions : num_partitions;
    if ((err = topic_from_spec(t, spec, np, &topic, errbuf, errlen)) != RN_OK)
        return err == RN_ERR_NOMEM ? RN_ERR_STORAGE_ERROR : err;
    if ((err = open_partitions(t, topic, true, errbuf, errlen)) != RN_OK)
        goto undo;
    if ((err = insert_topic(t, topic)) != RN_OK) {
        snprintf(errbuf, errlen, "out of memory");
        goto undo;
    }
    if ((err = write_meta(t)) != RN_OK) {
        snprintf(errbuf, errlen, "cannot write %s: %s", t->meta_path, strerror(errno));
        remove_topic(t, topic->name);
        goto undo;
    }
    RN_INFO("topics", "created topic %s with %" PRIu32 " partition(s)", topic->name, np);
    observe_added(t, topic);
    return RN_OK;
undo:
    for (uint32_t i = 0; i < topic->nparts; i++) {
        if (topic->parts[i])
            rn_part_destroy(topic->parts[i]);
    }
    free_topic(topic);
    return RN_ERR_STORAGE_ERROR;
}

rn_err_t rn_topics_delete(rn_topics_t *t, const char *name, char *errbuf, size_t errlen)
{
    rn_topic_t *topic = rn_topics_find(t, name);
    if (!topic) {
        snprintf(errbuf, errlen, "no topic '%s'", name);
        return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    remove_topic(t, name);
    if (write_meta(t) != RN_OK) {
        snprintf(errbuf, errlen, "cannot write %s: %s", t->meta_path, strerror(errno));
        insert_topic(t, topic); /* cannot fail: its slot was just freed */
        return RN_ERR_STORAGE_ERROR;
    }
    observe_removed(t, topic);
    topic->next_dead = t->dead;
    t->dead = topic;
    RN_INFO("topics", "deleted topic %s", name);
    rn_topics_reap(t);
    return RN_OK;
}

void rn_topics_reap(rn_topics_t *t)
{
    for (rn_topic_t **pp = &t->dead; *pp;) {
        rn_topic_t *d = *pp;
        bool busy = false;
        for (uint32_t j = 0; j < d->nparts && !busy; j++)
            busy = rn_part_sync_running(d->parts[j]);
        if (busy) {
            pp = &d->next_dead;
            continue;
        }
        *pp = d->next_dead;
        for (uint32_t j = 0; j < d->nparts; j++)
            rn_part_destroy(d->parts[j]);
        free_topic(d);
    }
}

bool rn_topics_reaping(const rn_topics_t *t)
{
    return t->dead != NULL;
}

/* -------------------------------------------------------------- maintenance ---- */

void rn_topics_flush_tick(rn_topics_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        for (uint32_t j = 0; j < t->v[i]->nparts; j++)
            rn_part_flush_tick(t->v[i]->parts[j]);
    }
}

int64_t rn_topics_min_flush_ms(const rn_topics_t *t)
{
    int64_t min = t->defaults.flush_ms;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i]->cfg.flush_ms < min)
            min = t->v[i]->cfg.flush_ms;
    }
    return min;
}

void rn_topics_maintain(rn_topics_t *t, int64_t producer_idle_ms)
{
    for (size_t i = 0; i < t->n; i++) {
        rn_topic_t *topic = t->v[i];
        for (uint32_t j = 0; j < topic->nparts; j++) {
            rn_part_retention_t deleted = {0};
            rn_part_maintain(topic->parts[j], producer_idle_ms, &deleted);
            if (deleted.segments && t->obs.retention && topic->stats)
                t->obs.retention(t->obs.ctx, topic->stats, deleted.segments, deleted.bytes);
        }
    }
}
