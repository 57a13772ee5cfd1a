/*
 * image_state.c - the containers of the image: sorted config lists, partitions, topics (by
 * name and by id), brokers (by id) and the pending delta. image.c changes them per record,
 * image_snap.c builds them from a snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "image_int.h"
#include "sorted.h"

/* ---- small helpers ---- */

char *img_strdup(const char *s)
{
    return strdup(s ? s : "");
}

rn_err_t img_reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return RN_OK;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return RN_ERR_NOMEM;
    *arr = p;
    *cap = n;
    return RN_OK;
}

int img_id_cmp(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, RN_IMG_ID_LEN);
}

/* ---- key/value lists (configs), sorted by key ---- */

static size_t kv_pos(const img_kvlist_t *l, const char *key, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->items[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const char *img_kv_get(const img_kvlist_t *l, const char *key)
{
    bool found;
    size_t i = kv_pos(l, key, &found);
    return found ? l->items[i].value : NULL;
}

rn_err_t img_kv_set(img_kvlist_t *l, const char *key, const char *value, bool *changed)
{
    bool found;
    size_t i = kv_pos(l, key, &found);
    if (found && strcmp(l->items[i].value, value) == 0) {
        if (changed)
            *changed = false;
        return RN_OK;
    }
    char *v = img_strdup(value);
    if (!v)
        return RN_ERR_NOMEM;
    if (found) {
        free(l->items[i].value);
        l->items[i].value = v;
    } else {
        char *k = img_strdup(key);
        if (!k || img_reserve((void **)&l->items, &l->cap, l->n + 1, sizeof *l->items)) {
            free(k);
            free(v);
            return RN_ERR_NOMEM;
        }
        memmove(&l->items[i + 1], &l->items[i], (l->n - i) * sizeof *l->items);
        l->items[i] = (img_kv_t){k, v};
        l->n++;
    }
    if (changed)
        *changed = true;
    return RN_OK;
}

bool img_kv_remove(img_kvlist_t *l, const char *key)
{
    bool found;
    size_t i = kv_pos(l, key, &found);
    if (!found)
        return false;
    free(l->items[i].key);
    free(l->items[i].value);
    memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof *l->items);
    l->n--;
    return true;
}

void img_kv_free(img_kvlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    *l = (img_kvlist_t){0};
}

void img_kv_each(const img_kvlist_t *l, void (*fn)(void *, const char *, const char *),
                    void *ctx)
{
    for (size_t i = 0; i < l->n; i++)
        fn(ctx, l->items[i].key, l->items[i].value);
}

/* ---- partitions ---- */

rn_err_t img_part_set(rn_img_partition_t *dst, const Runnel__Meta__PartitionState *src)
{
    int32_t *replicas = NULL, *isr = NULL;
    if (src->n_replicas && !(replicas = malloc(src->n_replicas * sizeof *replicas)))
        return RN_ERR_NOMEM;
    if (src->n_isr && !(isr = malloc(src->n_isr * sizeof *isr))) {
        free(replicas);
        return RN_ERR_NOMEM;
    }
    if (src->n_replicas)
        memcpy(replicas, src->replicas, src->n_replicas * sizeof *replicas);
    if (src->n_isr)
        memcpy(isr, src->isr, src->n_isr * sizeof *isr);
    free((void *)dst->replicas);
    free((void *)dst->isr);
    *dst = (rn_img_partition_t){
        .replicas = replicas,
        .n_replicas = (uint32_t)src->n_replicas,
        .isr = isr,
        .n_isr = (uint32_t)src->n_isr,
        .leader = src->leader,
        .leader_epoch = src->leader_epoch,
        .partition_epoch = src->partition_epoch,
    };
    return RN_OK;
}

bool img_part_equal(const rn_img_partition_t *a, const rn_img_partition_t *b)
{
    return a->n_replicas == b->n_replicas && a->n_isr == b->n_isr && a->leader == b->leader &&
           a->leader_epoch == b->leader_epoch && a->partition_epoch == b->partition_epoch &&
           (!a->n_replicas || !memcmp(a->replicas, b->replicas, a->n_replicas * sizeof(int32_t))) &&
           (!a->n_isr || !memcmp(a->isr, b->isr, a->n_isr * sizeof(int32_t)));
}

/* A view of a decoded PartitionState, for comparing without copying. */
rn_img_partition_t img_part_view(const Runnel__Meta__PartitionState *s)
{
    return (rn_img_partition_t){s->replicas, (uint32_t)s->n_replicas, s->isr, (uint32_t)s->n_isr,
                                s->leader, s->leader_epoch, s->partition_epoch};
}

/* ---- topics ---- */

const char *img_topic_invalid(const Runnel__Meta__TopicRecord *tr)
{
    if (!tr->name || !tr->name[0])
        return "empty topic name";
    if (tr->topic_id.len != RN_IMG_ID_LEN)
        return "topic_id is not 16 bytes";
    if (tr->n_partitions == 0)
        return "no partitions";
    if (tr->n_partitions > UINT32_MAX)
        return "too many partitions";
    for (size_t i = 0; i < tr->n_configs; i++)
        if (!tr->configs[i]->key || !tr->configs[i]->key[0])
            return "config override with an empty key";
    return NULL;
}

void img_topic_free(rn_img_topic_t *t)
{
    if (!t)
        return;
    for (uint32_t p = 0; p < t->n_partitions && t->partitions; p++) {
        free((void *)t->partitions[p].replicas);
        free((void *)t->partitions[p].isr);
    }
    free(t->partitions);
    free(t->changed);
    free(t->name);
    img_kv_free(&t->configs);
    free(t);
}

rn_err_t img_topic_new(const Runnel__Meta__TopicRecord *tr, rn_img_topic_t **out)
{
    rn_img_topic_t *t = calloc(1, sizeof *t);
    if (!t)
        return RN_ERR_NOMEM;
    t->n_partitions = (uint32_t)tr->n_partitions;
    if (!(t->name = img_strdup(tr->name)) ||
        !(t->partitions = calloc(t->n_partitions, sizeof *t->partitions)) ||
        !(t->changed = calloc(t->n_partitions, sizeof *t->changed)))
        goto fail;
    memcpy(t->id, tr->topic_id.data, RN_IMG_ID_LEN);
    for (uint32_t p = 0; p < t->n_partitions; p++)
        if (img_part_set(&t->partitions[p], tr->partitions[p]) != RN_OK)
            goto fail;
    for (size_t i = 0; i < tr->n_configs; i++)
        if (img_kv_set(&t->configs, tr->configs[i]->key, tr->configs[i]->value, NULL) != RN_OK)
            goto fail;
    *out = t;
    return RN_OK;
fail:
    img_topic_free(t);
    return RN_ERR_NOMEM;
}

static int by_name_cmp(const void *element, const void *key)
{
    return strcmp(((const rn_img_topic_t *)element)->name, key);
}

static int by_id_cmp(const void *element, const void *key)
{
    return img_id_cmp(((const rn_img_topic_t *)element)->id, key);
}

size_t img_topic_name_pos(const rn_img_t *img, const char *name, bool *found)
{
    return rn_sorted_pos((void *const *)img->by_name, img->n_topics, name, by_name_cmp, found);
}

size_t img_topic_id_pos(const rn_img_t *img, const uint8_t *id, bool *found)
{
    return rn_sorted_pos((void *const *)img->by_id, img->n_topics, id, by_id_cmp, found);
}

rn_img_topic_t *img_topic_find_id(const rn_img_t *img, const uint8_t *id)
{
    bool found;
    size_t i = img_topic_id_pos(img, id, &found);
    return found ? img->by_id[i] : NULL;
}

/* Inserts t (name and id not present). RN_ERR_NOMEM leaves the image unchanged. */
rn_err_t img_topic_insert(rn_img_t *img, rn_img_topic_t *t)
{
    if (img_reserve((void **)&img->by_name, &img->cap_by_name, img->n_topics + 1, sizeof t) ||
        img_reserve((void **)&img->by_id, &img->cap_by_id, img->n_topics + 1, sizeof t))
        return RN_ERR_NOMEM;
    bool found;
    size_t ni = img_topic_name_pos(img, t->name, &found);
    size_t ii = img_topic_id_pos(img, t->id, &found);
    memmove(&img->by_name[ni + 1], &img->by_name[ni], (img->n_topics - ni) * sizeof t);
    img->by_name[ni] = t;
    memmove(&img->by_id[ii + 1], &img->by_id[ii], (img->n_topics - ii) * sizeof t);
    img->by_id[ii] = t;
    img->n_topics++;
    return RN_OK;
}

/* Takes t out of both arrays without freeing it. */
void img_topic_unlink(rn_img_t *img, rn_img_topic_t *t)
{
    bool found;
    size_t ni = img_topic_name_pos(img, t->name, &found);
    size_t ii = img_topic_id_pos(img, t->id, &found);
    memmove(&img->by_name[ni], &img->by_name[ni + 1], (img->n_topics - ni - 1) * sizeof t);
    memmove(&img->by_id[ii], &img->by_id[ii + 1], (img->n_topics - ii - 1) * sizeof t);
    img->n_topics--;
}

/* ---- brokers, sorted by id ---- */

size_t img_broker_pos(const rn_img_t *img, int32_t id, bool *found)
{
    size_t lo = 0, hi = img->n_brokers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (img->brokers[mid]->id == id) {
            *found = true;
            return mid;
        }
        if (img->brokers[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const char *img_register_invalid(const Runnel__Meta__RegisterBrokerRecord *rb)
{
    if (rb->broker_id <= 0)
        return "broker_id must be > 0";
    if (rb->incarnation_id.len != RN_IMG_ID_LEN)
        return "incarnation_id is not 16 bytes";
    return NULL;
}

void img_broker_free(rn_img_broker_t *b)
{
    if (!b)
        return;
    free((void *)b->host);
    free((void *)b->controller_address);
    free(b);
}

rn_err_t img_broker_new(const Runnel__Meta__RegisterBrokerRecord *rb, uint64_t epoch,
                        bool fenced, rn_img_broker_t **out)
{
    rn_img_broker_t *b = calloc(1, sizeof *b);
    if (!b)
        return RN_ERR_NOMEM;
    b->host = img_strdup(rb->host);
    b->controller_address = img_strdup(rb->controller_address);
    if (!b->host || !b->controller_address) {
        img_broker_free(b);
        return RN_ERR_NOMEM;
    }
    b->id = rb->broker_id;
    memcpy(b->incarnation_id, rb->incarnation_id.data, RN_IMG_ID_LEN);
    b->port = rb->port;
    b->epoch = epoch;
    b->fenced = fenced;
    *out = b;
    return RN_OK;
}

bool img_broker_equal(const rn_img_broker_t *a, const rn_img_broker_t *b)
{
    return a->id == b->id && !img_id_cmp(a->incarnation_id, b->incarnation_id) &&
           !strcmp(a->host, b->host) && a->port == b->port &&
           !strcmp(a->controller_address, b->controller_address) && a->epoch == b->epoch &&
           a->fenced == b->fenced;
}

/* ---- the pending delta ---- */

rn_err_t img_pend_reserve(img_pending_t *p, size_t created, size_t removed, size_t parts,
                          size_t brokers)
{
    rn_img_delta_t *d = &p->d;
    if (img_reserve((void **)&d->topics_created, &p->cap_created, d->n_topics_created + created,
                    sizeof *d->topics_created) ||
        img_reserve((void **)&d->topics_removed, &p->cap_removed, d->n_topics_removed + removed,
                    sizeof *d->topics_removed) ||
        img_reserve((void **)&d->partitions_changed, &p->cap_partitions,
                    d->n_partitions_changed + parts, sizeof *d->partitions_changed) ||
        img_reserve((void **)&d->brokers_changed, &p->cap_brokers, d->n_brokers_changed + brokers,
                    sizeof *d->brokers_changed))
        return RN_ERR_NOMEM;
    return RN_OK;
}

/* The add functions below need room reserved by img_pend_reserve first; they cannot fail. */
void img_pend_broker(img_pending_t *p, int32_t id)
{
    rn_img_delta_t *d = &p->d;
    for (size_t i = 0; i < d->n_brokers_changed; i++)
        if (d->brokers_changed[i] == id)
            return;
    d->brokers_changed[d->n_brokers_changed++] = id;
}

/* name is moved into the delta. */
void img_pend_created(img_pending_t *p, rn_img_topic_t *t, char *name)
{
    rn_img_topic_ref_t *r = &p->d.topics_created[p->d.n_topics_created++];
    memcpy(r->id, t->id, RN_IMG_ID_LEN);
    r->name = name;
    r->n_partitions = t->n_partitions;
    t->created = true;
}

void img_pend_removed(img_pending_t *p, const uint8_t *id, char *name, uint32_t n_partitions)
{
    rn_img_topic_ref_t *r = &p->d.topics_removed[p->d.n_topics_removed++];
    memcpy(r->id, id, RN_IMG_ID_LEN);
    r->name = name;
    r->n_partitions = n_partitions;
}

void img_pend_partition(img_pending_t *p, rn_img_topic_t *t, uint32_t partition)
{
    if (t->created || t->changed[partition])
        return;
    rn_img_partition_ref_t *r = &p->d.partitions_changed[p->d.n_partitions_changed++];
    memcpy(r->topic_id, t->id, RN_IMG_ID_LEN);
    r->partition = partition;
    t->changed[partition] = true;
}

/* t leaves the image: a topic created since the last take vanishes from the delta; one that
 * was there at the last take is reported removed (taking its name) and its partition entries
 * go. Needs room for one removal. */
void img_pend_topic_gone(img_pending_t *p, rn_img_topic_t *t)
{
    rn_img_delta_t *d = &p->d;
    if (t->created) {
        for (size_t i = 0; i < d->n_topics_created; i++) {
            if (img_id_cmp(d->topics_created[i].id, t->id) == 0) {
                free(d->topics_created[i].name);
                memmove(&d->topics_created[i], &d->topics_created[i + 1],
                        (d->n_topics_created - i - 1) * sizeof *d->topics_created);
                d->n_topics_created--;
                break;
            }
        }
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < d->n_partitions_changed; i++)
        if (img_id_cmp(d->partitions_changed[i].topic_id, t->id) != 0)
            d->partitions_changed[kept++] = d->partitions_changed[i];
    d->n_partitions_changed = kept;
    img_pend_removed(p, t->id, t->name, t->n_partitions);
    t->name = NULL;
}

void img_pend_free(img_pending_t *p)
{
    rn_img_delta_free(&p->d);
    *p = (img_pending_t){0};
}

void rn_img_take_delta(rn_img_t *img, rn_img_delta_t *out)
{
    rn_img_delta_t *d = &img->pend.d;
    for (size_t i = 0; i < d->n_topics_created; i++) {
        rn_img_topic_t *t = img_topic_find_id(img, d->topics_created[i].id);
        if (t)
            t->created = false;
    }
    for (size_t i = 0; i < d->n_partitions_changed; i++) {
        rn_img_topic_t *t = img_topic_find_id(img, d->partitions_changed[i].topic_id);
        if (t && d->partitions_changed[i].partition < t->n_partitions)
            t->changed[d->partitions_changed[i].partition] = false;
    }
    *out = *d;
    img->pend = (img_pending_t){0};
}

bool rn_img_delta_empty(const rn_img_delta_t *d)
{
    return !d->n_topics_created && !d->n_topics_removed && !d->n_partitions_changed &&
           !d->n_brokers_changed;
}

void rn_img_delta_free(rn_img_delta_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_topics_created; i++)
        free(d->topics_created[i].name);
    for (size_t i = 0; i < d->n_topics_removed; i++)
        free(d->topics_removed[i].name);
    free(d->topics_created);
    free(d->topics_removed);
    free(d->partitions_changed);
    free(d->brokers_changed);
    *d = (rn_img_delta_t){0};
}
