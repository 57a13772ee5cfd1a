/*
 * image_int.h - what image.c (apply, deltas, accessors) and image_snap.c (snapshot, restore)
 * share. Not for other modules: they use image.h.
 */
#ifndef RN_CLUSTER_IMAGE_INT_H
#define RN_CLUSTER_IMAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "metadata.pb-c.h"

#define IMG_LOG "metadata"

typedef struct img_kv {
    char *key;
    char *value;
} img_kv_t;

/* Configs, sorted by key (so snapshots and iteration are in one canonical order). */
typedef struct img_kvlist {
    img_kv_t *items;
    size_t n;
    size_t cap;
} img_kvlist_t;

struct rn_img_topic {
    char *name;
    uint8_t id[RN_IMG_ID_LEN];
    uint32_t n_partitions;
    rn_img_partition_t *partitions; /* owns replicas and isr */
    bool *changed;                  /* partition p is in the pending partitions_changed */
    bool created;                   /* the topic is in the pending topics_created */
    img_kvlist_t configs;           /* overrides */
};

/* The delta being collected, with the capacity of each of its arrays. */
typedef struct img_pending {
    rn_img_delta_t d;
    size_t cap_created, cap_removed, cap_partitions, cap_brokers;
} img_pending_t;

struct rn_img {
    char *cluster_id; /* "" for none */
    rn_img_broker_t **brokers; /* by id; each owns host and controller_address */
    size_t n_brokers, cap_brokers;
    rn_img_topic_t **by_name; /* the same n_topics topics, twice: by name ... */
    rn_img_topic_t **by_id;   /* ... and by id (memcmp order) */
    size_t n_topics, cap_by_name, cap_by_id;
    img_kvlist_t configs; /* cluster defaults */
    int64_t next_producer_id_block;
    bool stopped;
    img_pending_t pend;
};

char *img_strdup(const char *s);
/* memcmp of two RN_IMG_ID_LEN-byte ids. */
int img_id_cmp(const uint8_t *a, const uint8_t *b);
/* Grows *arr to hold need elements of elem bytes; RN_ERR_NOMEM leaves it as it was. */
rn_err_t img_reserve(void **arr, size_t *cap, size_t need, size_t elem);

const char *img_kv_get(const img_kvlist_t *l, const char *key);
/* RN_ERR_NOMEM leaves the list unchanged; *changed (may be NULL) false when already so. */
rn_err_t img_kv_set(img_kvlist_t *l, const char *key, const char *value, bool *changed);
/* False when key was not there. */
bool img_kv_remove(img_kvlist_t *l, const char *key);
void img_kv_free(img_kvlist_t *l);
void img_kv_each(const img_kvlist_t *l, void (*fn)(void *, const char *, const char *),
                 void *ctx);

/* Copies src into dst (freeing dst's arrays); RN_ERR_NOMEM leaves dst unchanged. */
rn_err_t img_part_set(rn_img_partition_t *dst, const Runnel__Meta__PartitionState *src);
bool img_part_equal(const rn_img_partition_t *a, const rn_img_partition_t *b);
/* A view of a decoded PartitionState (borrowing its arrays), for comparing without copying. */
rn_img_partition_t img_part_view(const Runnel__Meta__PartitionState *s);

/* Why a TopicRecord cannot be a topic, or NULL when it can. */
const char *img_topic_invalid(const Runnel__Meta__TopicRecord *tr);
rn_err_t img_topic_new(const Runnel__Meta__TopicRecord *tr, rn_img_topic_t **out);
void img_topic_free(rn_img_topic_t *t);
size_t img_topic_name_pos(const rn_img_t *img, const char *name, bool *found);
size_t img_topic_id_pos(const rn_img_t *img, const uint8_t *id, bool *found);
rn_img_topic_t *img_topic_find_id(const rn_img_t *img, const uint8_t *id);
/* Inserts t (name and id not present); RN_ERR_NOMEM leaves the image unchanged. */
rn_err_t img_topic_insert(rn_img_t *img, rn_img_topic_t *t);
/* Takes t out of both arrays without freeing it. */
void img_topic_unlink(rn_img_t *img, rn_img_topic_t *t);

const char *img_register_invalid(const Runnel__Meta__RegisterBrokerRecord *rb);
rn_err_t img_broker_new(const Runnel__Meta__RegisterBrokerRecord *rb, uint64_t epoch,
                        bool fenced, rn_img_broker_t **out);
void img_broker_free(rn_img_broker_t *b);
bool img_broker_equal(const rn_img_broker_t *a, const rn_img_broker_t *b);
size_t img_broker_pos(const rn_img_t *img, int32_t id, bool *found);

/* Room for that many more entries in each list; the img_pend_* adds then cannot fail. */
rn_err_t img_pend_reserve(img_pending_t *p, size_t created, size_t removed, size_t parts,
                          size_t brokers);
void img_pend_broker(img_pending_t *p, int32_t id);
void img_pend_created(img_pending_t *p, rn_img_topic_t *t, char *name);
void img_pend_removed(img_pending_t *p, const uint8_t *id, char *name, uint32_t n_partitions);
void img_pend_partition(img_pending_t *p, rn_img_topic_t *t, uint32_t partition);
/* t leaves the image (see image_state.c); needs room for one removal. */
void img_pend_topic_gone(img_pending_t *p, rn_img_topic_t *t);
void img_pend_free(img_pending_t *p);

/* image_elect.c: partitions' leaders and ISRs after broker id was fenced or unfenced (the
 * rules are at the top of image_elect.c). RN_ERR_NOMEM only when the delta cannot grow. */
rn_err_t img_elect_after_fencing(rn_img_t *img, int32_t id, bool fenced);
/* The first replica in preferred order that is in the ISR and not fenced; -1 when none. */
int32_t img_pick_leader(const rn_img_t *img, const rn_img_partition_t *p);
/* unclean.leader.election.enable for the topic (its override, else the cluster default). */
bool img_unclean_allowed(const rn_img_t *img, const rn_img_topic_t *t);

/* Frees everything img holds and zeroes it. */
void img_clear(rn_img_t *img);

#endif
