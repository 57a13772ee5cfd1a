/*
 * image_snap.c - the image as a MetadataImage: rn_img_snapshot and rn_img_restore.
 *
 * The encoding is canonical: brokers in id order, topics in name order, partitions in index
 * order, configs in key order, and nothing else in the image (no raft index, no pending
 * delta, no clock). Equal images therefore give equal bytes, which is what the tests compare
 * and what lets two voters' snapshots be checked against each other.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "image_int.h"

/* ---- snapshot ---- */

/* The temporary protobuf structs of one snapshot: every allocation is listed, freed at once. */
typedef struct tmp_allocs {
    void **ptrs;
    size_t n, cap;
    bool failed;
} tmp_allocs_t;

static void *tmp_calloc(tmp_allocs_t *t, size_t n, size_t size)
{
    if (t->failed)
        return NULL;
    void *p = calloc(n ? n : 1, size);
    if (!p || img_reserve((void **)&t->ptrs, &t->cap, t->n + 1, sizeof *t->ptrs)) {
        free(p);
        t->failed = true;
        return NULL;
    }
    t->ptrs[t->n++] = p;
    return p;
}

static void tmp_free(tmp_allocs_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->ptrs[i]);
    free(t->ptrs);
}

/* protobuf-c's structs take char * and uint8_t * although packing only reads them. */
static char *str(const char *s)
{
    return (char *)s;
}

static void build_brokers(const rn_img_t *img, Runnel__Meta__MetadataImage *mi, tmp_allocs_t *t)
{
    size_t n = img->n_brokers;
    Runnel__Meta__RegisterBrokerRecord *recs = tmp_calloc(t, n, sizeof *recs);
    Runnel__Meta__RegisterBrokerRecord **ptrs = tmp_calloc(t, n, sizeof *ptrs);
    uint64_t *epochs = tmp_calloc(t, n, sizeof *epochs);
    protobuf_c_boolean *fenced = tmp_calloc(t, n, sizeof *fenced);
    if (t->failed)
        return;
    for (size_t i = 0; i < n; i++) {
        const rn_img_broker_t *b = img->brokers[i];
        runnel__meta__register_broker_record__init(&recs[i]);
        recs[i].broker_id = b->id;
        recs[i].incarnation_id = (ProtobufCBinaryData){RN_IMG_ID_LEN, (uint8_t *)b->incarnation_id};
        recs[i].host = str(b->host);
        recs[i].port = b->port;
        recs[i].controller_address = str(b->controller_address);
        ptrs[i] = &recs[i];
        epochs[i] = b->epoch;
        fenced[i] = b->fenced;
    }
    mi->n_brokers = mi->n_broker_epochs = mi->n_fenced = n;
    mi->brokers = ptrs;
    mi->broker_epochs = epochs;
    mi->fenced = fenced;
}

static void build_topic(const rn_img_topic_t *tp, Runnel__Meta__TopicRecord *tr, tmp_allocs_t *t)
{
    runnel__meta__topic_record__init(tr);
    tr->name = str(tp->name);
    tr->topic_id = (ProtobufCBinaryData){RN_IMG_ID_LEN, (uint8_t *)tp->id};
    size_t np = tp->n_partitions, nc = tp->configs.n;
    Runnel__Meta__PartitionState *ps = tmp_calloc(t, np, sizeof *ps);
    Runnel__Meta__PartitionState **pp = tmp_calloc(t, np, sizeof *pp);
    Runnel__Meta__ConfigEntry *ce = tmp_calloc(t, nc, sizeof *ce);
    Runnel__Meta__ConfigEntry **cp = tmp_calloc(t, nc, sizeof *cp);
    if (t->failed)
        return;
    for (size_t p = 0; p < np; p++) {
        const rn_img_partition_t *s = &tp->partitions[p];
        runnel__meta__partition_state__init(&ps[p]);
        ps[p].n_replicas = s->n_replicas;
        ps[p].replicas = (int32_t *)s->replicas;
        ps[p].n_isr = s->n_isr;
        ps[p].isr = (int32_t *)s->isr;
        ps[p].leader = s->leader;
        ps[p].leader_epoch = s->leader_epoch;
        ps[p].partition_epoch = s->partition_epoch;
        pp[p] = &ps[p];
    }
    for (size_t i = 0; i < nc; i++) {
        runnel__meta__config_entry__init(&ce[i]);
        ce[i].key = tp->configs.items[i].key;
        ce[i].value = tp->configs.items[i].value;
        cp[i] = &ce[i];
    }
    tr->n_partitions = np;
    tr->partitions = pp;
    tr->n_configs = nc;
    tr->configs = cp;
}

static void build_topics(const rn_img_t *img, Runnel__Meta__MetadataImage *mi, tmp_allocs_t *t)
{
    size_t n = img->n_topics;
    Runnel__Meta__TopicRecord *recs = tmp_calloc(t, n, sizeof *recs);
    Runnel__Meta__TopicRecord **ptrs = tmp_calloc(t, n, sizeof *ptrs);
    if (t->failed)
        return;
    for (size_t i = 0; i < n && !t->failed; i++) {
        build_topic(img->by_name[i], &recs[i], t);
        ptrs[i] = &recs[i];
    }
    mi->n_topics = n;
    mi->topics = ptrs;
}

static void build_configs(const rn_img_t *img, Runnel__Meta__MetadataImage *mi, tmp_allocs_t *t)
{
    size_t n = img->configs.n;
    Runnel__Meta__ConfigRecord *recs = tmp_calloc(t, n, sizeof *recs);
    Runnel__Meta__ConfigRecord **ptrs = tmp_calloc(t, n, sizeof *ptrs);
    if (t->failed)
        return;
    for (size_t i = 0; i < n; i++) {
        runnel__meta__config_record__init(&recs[i]);
        recs[i].key = img->configs.items[i].key;
        recs[i].value = img->configs.items[i].value;
        ptrs[i] = &recs[i];
    }
    mi->n_configs = n;
    mi->configs = ptrs;
}

rn_err_t rn_img_snapshot(const rn_img_t *img, void *(*alloc_fn)(size_t), uint8_t **out,
                         size_t *out_len)
{
    if (img->stopped)
        return RN_ERR_STATE;
    Runnel__Meta__MetadataImage mi;
    runnel__meta__metadata_image__init(&mi);
    mi.version = RN_IMG_RECORD_VERSION;
    mi.cluster_id = img->cluster_id;
    mi.next_producer_id_block = img->next_producer_id_block;
    tmp_allocs_t t = {0};
    build_brokers(img, &mi, &t);
    build_topics(img, &mi, &t);
    build_configs(img, &mi, &t);
    rn_err_t err = RN_ERR_NOMEM;
    if (!t.failed) {
        size_t len = runnel__meta__metadata_image__get_packed_size(&mi);
        uint8_t *buf = (alloc_fn ? alloc_fn : malloc)(len ? len : 1);
        if (buf) {
            *out_len = runnel__meta__metadata_image__pack(&mi, buf);
            *out = buf;
            err = RN_OK;
        }
    }
    tmp_free(&t);
    return err;
}

/* ---- restore ---- */

static rn_err_t fail(char *errbuf, size_t errlen, rn_err_t err, const char *what)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "metadata snapshot: %s", what);
    return err;
}

static rn_err_t load_brokers(rn_img_t *n, const Runnel__Meta__MetadataImage *mi, char *errbuf,
                             size_t errlen)
{
    if (mi->n_broker_epochs != mi->n_brokers || mi->n_fenced != mi->n_brokers)
        return fail(errbuf, errlen, RN_ERR_MALFORMED,
                    "brokers, epochs and fenced differ in length");
    for (size_t i = 0; i < mi->n_brokers; i++) {
        const Runnel__Meta__RegisterBrokerRecord *rb = mi->brokers[i];
        const char *why = img_register_invalid(rb);
        if (why)
            return fail(errbuf, errlen, RN_ERR_MALFORMED, why);
        bool found;
        size_t pos = img_broker_pos(n, rb->broker_id, &found);
        if (found)
            return fail(errbuf, errlen, RN_ERR_MALFORMED, "a broker id appears twice");
        rn_img_broker_t *b;
        if (img_reserve((void **)&n->brokers, &n->cap_brokers, n->n_brokers + 1, sizeof b) ||
            img_broker_new(rb, mi->broker_epochs[i], mi->fenced[i], &b))
            return RN_ERR_NOMEM;
        memmove(&n->brokers[pos + 1], &n->brokers[pos], (n->n_brokers - pos) * sizeof b);
        n->brokers[pos] = b;
        n->n_brokers++;
    }
    return RN_OK;
}

static rn_err_t load_topics(rn_img_t *n, const Runnel__Meta__MetadataImage *mi, char *errbuf,
                            size_t errlen)
{
    for (size_t i = 0; i < mi->n_topics; i++) {
        const Runnel__Meta__TopicRecord *tr = mi->topics[i];
        const char *why = img_topic_invalid(tr);
        if (why)
            return fail(errbuf, errlen, RN_ERR_MALFORMED, why);
        bool name_found, id_found;
        img_topic_name_pos(n, tr->name, &name_found);
        img_topic_id_pos(n, tr->topic_id.data, &id_found);
        if (name_found || id_found)
            return fail(errbuf, errlen, RN_ERR_MALFORMED, "a topic name or id appears twice");
        rn_img_topic_t *t;
        if (img_topic_new(tr, &t))
            return RN_ERR_NOMEM;
        if (img_topic_insert(n, t)) {
            img_topic_free(t);
            return RN_ERR_NOMEM;
        }
    }
    return RN_OK;
}

/* Snapshots hold cluster defaults only (overrides travel in their TopicRecord); a topic
 * override here is accepted when its topic exists. */
static rn_err_t load_configs(rn_img_t *n, const Runnel__Meta__MetadataImage *mi, char *errbuf,
                             size_t errlen)
{
    for (size_t i = 0; i < mi->n_configs; i++) {
        const Runnel__Meta__ConfigRecord *c = mi->configs[i];
        if (!c->key || !c->key[0] || c->remove)
            return fail(errbuf, errlen, RN_ERR_MALFORMED,
                        "a config entry without a key, or a removal");
        img_kvlist_t *list = &n->configs;
        if (c->topic && c->topic[0]) {
            bool found;
            size_t pos = img_topic_name_pos(n, c->topic, &found);
            if (!found)
                return fail(errbuf, errlen, RN_ERR_MALFORMED, "a config override of no topic");
            list = &n->by_name[pos]->configs;
        }
        if (img_kv_set(list, c->key, c->value, NULL))
            return RN_ERR_NOMEM;
    }
    return RN_OK;
}

static rn_err_t diff_created(img_pending_t *p, rn_img_topic_t *t)
{
    char *name = img_strdup(t->name);
    if (!name || img_pend_reserve(p, 1, 0, 0, 0)) {
        free(name);
        return RN_ERR_NOMEM;
    }
    img_pend_created(p, t, name);
    return RN_OK;
}

static rn_err_t diff_removed(img_pending_t *p, const uint8_t *id, const char *name,
                             uint32_t n_partitions)
{
    char *copy = img_strdup(name);
    if (!copy || img_pend_reserve(p, 0, 1, 0, 0)) {
        free(copy);
        return RN_ERR_NOMEM;
    }
    img_pend_removed(p, id, copy, n_partitions);
    return RN_OK;
}

/* A topic live at the last take and in the restored image: its partitions that changed since
 * the last take or differ between the old and the new image. */
static rn_err_t diff_partitions(img_pending_t *p, const rn_img_topic_t *ot, rn_img_topic_t *nt)
{
    for (uint32_t i = 0; i < nt->n_partitions; i++) {
        if (!ot->changed[i] && img_part_equal(&ot->partitions[i], &nt->partitions[i]))
            continue;
        if (img_pend_reserve(p, 0, 0, 1, 0))
            return RN_ERR_NOMEM;
        img_pend_partition(p, nt, i);
    }
    return RN_OK;
}

static rn_err_t diff_topics(rn_img_t *n, const rn_img_t *o)
{
    img_pending_t *p = &n->pend;
    const rn_img_delta_t *od = &o->pend.d;
    rn_err_t err;
    /* Removed since the last take: still removed, and re-created if the new image has it. */
    for (size_t i = 0; i < od->n_topics_removed; i++) {
        const rn_img_topic_ref_t *r = &od->topics_removed[i];
        if ((err = diff_removed(p, r->id, r->name, r->n_partitions)))
            return err;
        rn_img_topic_t *nt = img_topic_find_id(n, r->id);
        if (nt && !nt->created && (err = diff_created(p, nt)))
            return err;
    }
    for (size_t i = 0; i < o->n_topics; i++) {
        const rn_img_topic_t *ot = o->by_id[i];
        rn_img_topic_t *nt = img_topic_find_id(n, ot->id);
        if (ot->created) { /* not live at the last take */
            err = nt && !nt->created ? diff_created(p, nt) : RN_OK;
        } else if (!nt) {
            err = diff_removed(p, ot->id, ot->name, ot->n_partitions);
        } else if (strcmp(ot->name, nt->name) || ot->n_partitions != nt->n_partitions) {
            err = diff_removed(p, ot->id, ot->name, ot->n_partitions);
            if (!err)
                err = diff_created(p, nt);
        } else {
            err = diff_partitions(p, ot, nt);
        }
        if (err)
            return err;
    }
    for (size_t i = 0; i < n->n_topics; i++) {
        rn_img_topic_t *nt = n->by_id[i];
        if (!nt->created && !img_topic_find_id(o, nt->id) && (err = diff_created(p, nt)))
            return err;
    }
    return RN_OK;
}

static rn_err_t diff_brokers(rn_img_t *n, const rn_img_t *o)
{
    img_pending_t *p = &n->pend;
    const rn_img_delta_t *od = &o->pend.d;
    if (img_pend_reserve(p, 0, 0, 0, od->n_brokers_changed + o->n_brokers + n->n_brokers))
        return RN_ERR_NOMEM;
    for (size_t i = 0; i < od->n_brokers_changed; i++)
        img_pend_broker(p, od->brokers_changed[i]);
    for (size_t i = 0; i < o->n_brokers; i++) {
        const rn_img_broker_t *nb = rn_img_broker(n, o->brokers[i]->id);
        if (!nb || !img_broker_equal(nb, o->brokers[i]))
            img_pend_broker(p, o->brokers[i]->id);
    }
    for (size_t i = 0; i < n->n_brokers; i++)
        if (!rn_img_broker(o, n->brokers[i]->id))
            img_pend_broker(p, n->brokers[i]->id);
    return RN_OK;
}

rn_err_t rn_img_restore(rn_img_t *img, const uint8_t *data, size_t len, char *errbuf,
                        size_t errlen)
{
    if (!data && len)
        return fail(errbuf, errlen, RN_ERR_INVALID_ARG, "no data");
    Runnel__Meta__MetadataImage *mi = runnel__meta__metadata_image__unpack(NULL, len, data);
    if (!mi)
        return fail(errbuf, errlen, RN_ERR_MALFORMED, "not a MetadataImage");
    rn_img_t fresh = {0};
    rn_err_t err = RN_OK;
    if (mi->version > RN_IMG_RECORD_VERSION)
        err = fail(errbuf, errlen, RN_ERR_BAD_MAGIC, "version newer than this broker knows");
    else if (!(fresh.cluster_id = img_strdup(mi->cluster_id)))
        err = RN_ERR_NOMEM;
    if (!err)
        err = load_brokers(&fresh, mi, errbuf, errlen);
    if (!err)
        err = load_topics(&fresh, mi, errbuf, errlen);
    if (!err)
        err = load_configs(&fresh, mi, errbuf, errlen);
    fresh.next_producer_id_block = mi->next_producer_id_block;
    runnel__meta__metadata_image__free_unpacked(mi, NULL);
    if (!err)
        err = diff_topics(&fresh, img);
    if (!err)
        err = diff_brokers(&fresh, img);
    if (err) {
        if (err == RN_ERR_NOMEM)
            fail(errbuf, errlen, err, "out of memory");
        img_clear(&fresh);
        return err;
    }
    img_clear(img);
    *img = fresh;
    return RN_OK;
}
