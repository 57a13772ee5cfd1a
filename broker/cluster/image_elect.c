/*
 * image_elect.c - what fencing and unfencing a broker do to partitions (docs/cluster.md §3.4),
 * as part of applying the FenceBrokerRecord or UnfenceBrokerRecord itself.
 *
 * Doing it in apply rather than in separate PartitionChangeRecords makes a broker's fencing
 * and every leader change it causes one atomic raft entry: a controller that dies half way
 * cannot leave some partitions led by a fenced broker. Apply stays deterministic: the rules
 * below read only the image.
 *
 * Fence(b), for each partition b replicates:
 *   - b leaves the ISR unless it is the last member (Kafka keeps the last ISR member, so the
 *     partition knows whose return brings its data back);
 *   - if b led it, the new leader is the first replica (preferred order) that is in the new ISR
 *     and not fenced; none: leader -1 (offline), unless unclean.leader.election.enable is true
 *     for the topic, which elects the first unfenced replica with ISR = {it} (data loss);
 *   - leader_epoch + 1 when the leader changed, partition_epoch + 1 on any change.
 * Unfence(b): an offline partition whose ISR holds b gets b as leader (epoch + 1), as does an
 * offline partition with the unclean flag that b replicates (ISR = {b}).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "image_int.h"
#include "logging.h"

static bool has(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool usable(const rn_img_t *img, int32_t id)
{
    const rn_img_broker_t *b = rn_img_broker(img, id);
    return b && !b->fenced;
}

bool img_unclean_allowed(const rn_img_t *img, const rn_img_topic_t *t)
{
    const char *v = img_kv_get(&t->configs, "unclean.leader.election.enable");
    if (!v)
        v = img_kv_get(&img->configs, "unclean.leader.election.enable");
    return v && strcmp(v, "true") == 0;
}

int32_t img_pick_leader(const rn_img_t *img, const rn_img_partition_t *p)
{
    for (uint32_t i = 0; i < p->n_replicas; i++)
        if (has(p->isr, p->n_isr, p->replicas[i]) && usable(img, p->replicas[i]))
            return p->replicas[i];
    return -1;
}

/* Makes isr = {id}; the array has room for at least one. */
static void isr_only(rn_img_partition_t *p, int32_t id)
{
    ((int32_t *)p->isr)[0] = id;
    p->n_isr = 1;
}

static rn_err_t changed(rn_img_t *img, rn_img_topic_t *t, uint32_t i, int32_t old_leader)
{
    rn_img_partition_t *p = &t->partitions[i];
    if (p->leader != old_leader) {
        p->leader_epoch++;
        RN_INFO(IMG_LOG, "%s-%" PRIu32 ": leader %" PRId32 " -> %" PRId32 ", epoch %" PRIu32
                ", isr size %" PRIu32, t->name, i, old_leader, p->leader, p->leader_epoch,
                p->n_isr);
    }
    p->partition_epoch++;
    if (img_pend_reserve(&img->pend, 0, 0, 1, 0))
        return RN_ERR_NOMEM;
    img_pend_partition(&img->pend, t, i);
    return RN_OK;
}

static rn_err_t fence_one(rn_img_t *img, rn_img_topic_t *t, uint32_t i, int32_t id)
{
    rn_img_partition_t *p = &t->partitions[i];
    if (!has(p->replicas, p->n_replicas, id))
        return RN_OK;
    int32_t old_leader = p->leader;
    bool touched = false;
    if (has(p->isr, p->n_isr, id) && p->n_isr > 1) {
        int32_t *isr = (int32_t *)p->isr;
        uint32_t k = 0;
        for (uint32_t j = 0; j < p->n_isr; j++)
            if (isr[j] != id)
                isr[k++] = isr[j];
        p->n_isr = k;
        touched = true;
    }
    if (p->leader == id) {
        p->leader = img_pick_leader(img, p);
        if (p->leader < 0 && img_unclean_allowed(img, t)) {
            for (uint32_t j = 0; j < p->n_replicas && p->leader < 0; j++)
                if (usable(img, p->replicas[j]))
                    p->leader = p->replicas[j];
            if (p->leader >= 0) {
                RN_WARN(IMG_LOG, "%s-%" PRIu32 ": unclean election of %" PRId32
                        " (outside the ISR): records only the old ISR had are lost", t->name,
                        i, p->leader);
                isr_only(p, p->leader);
            }
        }
        touched = true;
    }
    return touched ? changed(img, t, i, old_leader) : RN_OK;
}

static rn_err_t unfence_one(rn_img_t *img, rn_img_topic_t *t, uint32_t i, int32_t id)
{
    rn_img_partition_t *p = &t->partitions[i];
    if (p->leader >= 0 || !has(p->replicas, p->n_replicas, id))
        return RN_OK;
    if (has(p->isr, p->n_isr, id)) {
        p->leader = id;
    } else if (img_unclean_allowed(img, t) && p->n_isr > 0) {
        RN_WARN(IMG_LOG, "%s-%" PRIu32 ": unclean election of %" PRId32 " (outside the ISR)",
                t->name, i, id);
        p->leader = id;
        isr_only(p, id);
    } else {
        return RN_OK;
    }
    return changed(img, t, i, -1);
}

rn_err_t img_elect_after_fencing(rn_img_t *img, int32_t id, bool fenced)
{
    for (size_t k = 0; k < img->n_topics; k++) {
        rn_img_topic_t *t = img->by_name[k];
        for (uint32_t i = 0; i < t->n_partitions; i++) {
            rn_err_t err = fenced ? fence_one(img, t, i, id) : unfence_one(img, t, i, id);
            if (err != RN_OK)
                return err;
        }
    }
    return RN_OK;
}
