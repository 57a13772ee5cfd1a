/*
 * log_replica.c - what the partition log does for replication: keeping the leader-epoch cache
 * equal to the batches (at open, on leader appends, for becomeLeader), the follower append,
 * and OffsetForLeaderEpoch lookups. Truncation and retention, in log.c, keep it too.
 *
 * The epoch cache rule: whenever a batch is written, DIR/leader-epoch-checkpoint already holds
 * the start of that batch's epoch and of every epoch below it. Appends that begin an epoch write
 * the checkpoint first, and an append finds the cache dirty (after a truncation or a failed
 * write) only to write it first. So after a crash the file may hold entries past what survived
 * (epochs whose batches were lost), never lack one below the recovery point: recovery drops the
 * entries from where its scan starts and re-reads them from the scanned batches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log_int.h"

/*
 * Feeds the epochs of the batches from offset from to the log end into the cache, reading
 * headers only. A header that cannot be read ends that segment's walk (a read there reports the
 * damage); the next segment goes on. Strict mode stops with RN_ERR_STATE at a batch whose epoch
 * is older than the cache's newest entry.
 */
static rn_err_t epochs_walk(rn_log_t *log, uint64_t from, bool lenient)
{
    for (uint32_t i = rn_log__seg_for(log, from); i < log->nsegs; i++) {
        rn_seg_t *seg = log->segs[i];
        uint64_t pos = 0;
        rn_batch_header_t h;
        if (seg->next_offset <= from || seg->size == 0)
            continue;
        if (seg->base_offset < from && rn_seg_find(seg, from, &pos, &h) != RN_OK)
            continue;
        while (pos < seg->size && rn_seg_header_at(seg, pos, &h) == RN_OK) {
            if (lenient)
                rn_lep_assign_lenient(log->epochs, h.leader_epoch, h.base_offset);
            else if (rn_lep_assign(log->epochs, h.leader_epoch, h.base_offset) != RN_OK)
                return RN_ERR_STATE;
            pos += rn_batch_total_size(&h);
        }
    }
    return RN_OK;
}

/*
 * Makes the cache match the batches after the segments are open: a clean open trusts the
 * checkpoint; an unclean one keeps its entries below where recovery's scan started and re-reads
 * the rest from the batches; a missing or damaged checkpoint, or one that disagrees with the
 * batches, is rebuilt from every header. The result is written before anything is appended or
 * the recovery point moves.
 */
rn_err_t rn_log__epochs_open(rn_log_t *log, rn_err_t loaded, char *errbuf, size_t errlen)
{
    uint64_t start = rn_log_start_offset(log), end = rn_log_end_offset(log);
    bool rebuild = loaded != RN_OK;
    if (!rebuild && log->recovery.clean) {
        rn_lep_truncate_from_end(log->epochs, end + 1);
    } else if (!rebuild) {
        uint64_t from = log->recovery_from < start ? start : log->recovery_from;
        if (from > end)
            from = end;
        rn_lep_truncate_from_end(log->epochs, from);
        rebuild = epochs_walk(log, from, false) != RN_OK;
    }
    if (rebuild) {
        rn_lep_clear(log->epochs);
        epochs_walk(log, start, true);
    }
    rn_lep_truncate_from_start(log->epochs, start);
    rn_err_t err = rn_lep_persist(log->epochs);
    if (err != RN_OK)
        rn_log__seterr(errbuf, errlen, "%s: cannot write %s: %s", log->dir, RN_LEP_FILE,
                       strerror(errno));
    return err;
}

/*
 * The leader's side of the epoch cache: a new epoch starts at the log end and is on disk before
 * its first batch. An older epoch than the newest known is a deposed leader writing: refused.
 */
rn_err_t rn_log__leader_epoch_start(rn_log_t *log, uint32_t epoch)
{
    rn_lep_entry_t latest;
    bool have = rn_lep_latest(log->epochs, &latest);
    if (have && latest.epoch > epoch)
        return RN_ERR_STATE;
    if (have && latest.epoch == epoch)
        return rn_lep_persist(log->epochs); /* nothing unless a truncation left it dirty */
    rn_lep_entry_t e = {epoch, rn_log_end_offset(log)};
    return rn_lep_assign_durably(log->epochs, &e, 1);
}

rn_err_t rn_log_assign_epoch(rn_log_t *log, uint32_t epoch)
{
    if (log->failed != RN_OK)
        return RN_ERR_STATE;
    return rn_log__leader_epoch_start(log, epoch);
}

/*
 * First pass of a follower append: every batch whole and valid, the first at the log end, the
 * rest contiguous, epochs never going back. Fills info and counts the epoch starts (batches
 * whose epoch differs from the one before, the cache's newest for the first).
 */
static rn_err_t replica_check(rn_log_t *log, const uint8_t *batches, size_t len,
                              rn_log_append_info_t *info, size_t *nstarts)
{
    rn_lep_entry_t latest = {0, 0};
    bool have = rn_lep_latest(log->epochs, &latest);
    uint32_t epoch = latest.epoch;
    uint64_t next = rn_log_end_offset(log);
    memset(info, 0, sizeof *info);
    info->first_offset = next;
    info->max_timestamp = -1;
    *nstarts = 0;
    for (size_t pos = 0; pos < len;) {
        rn_batch_header_t h;
        if (rn_batch_validate(batches + pos, len - pos, &h) != RN_OK)
            return RN_ERR_CORRUPT_MESSAGE;
        if (h.base_offset != next)
            return pos == 0 ? RN_ERR_STATE : RN_ERR_CORRUPT_MESSAGE;
        if (pos > 0 && h.leader_epoch < epoch)
            return RN_ERR_CORRUPT_MESSAGE;
        if (!have || h.leader_epoch != epoch)
            (*nstarts)++;
        have = true;
        epoch = h.leader_epoch;
        next = rn_batch_last_offset(&h) + 1;
        info->record_count += h.record_count;
        info->batch_count++;
        if (h.max_timestamp > info->max_timestamp)
            info->max_timestamp = h.max_timestamp;
        pos += rn_batch_total_size(&h);
    }
    info->last_offset = next - 1;
    return RN_OK;
}

/* The epoch starts counted by replica_check, in order. */
static void replica_starts(const rn_log_t *log, const uint8_t *batches, size_t len,
                           rn_lep_entry_t *starts)
{
    rn_lep_entry_t latest = {0, 0};
    bool have = rn_lep_latest(log->epochs, &latest);
    uint32_t epoch = latest.epoch;
    size_t n = 0;
    for (size_t pos = 0; pos < len;) {
        rn_batch_header_t h;
        rn_batch_parse_header(batches + pos, len - pos, &h);
        if (!have || h.leader_epoch != epoch)
            starts[n++] = (rn_lep_entry_t){h.leader_epoch, h.base_offset};
        have = true;
        epoch = h.leader_epoch;
        pos += rn_batch_total_size(&h);
    }
}

rn_err_t rn_log_append_replica(rn_log_t *log, const uint8_t *batches, size_t len,
                               rn_log_append_info_t *info)
{
    if (log->failed != RN_OK)
        return RN_ERR_STATE;
    if (len == 0)
        return RN_ERR_CORRUPT_MESSAGE;
    size_t nstarts;
    rn_err_t err = replica_check(log, batches, len, info, &nstarts);
    if (err != RN_OK)
        return err;
    uint64_t first_start = 0;
    if (nstarts == 0) {
        err = rn_lep_persist(log->epochs);
    } else {
        rn_lep_entry_t small[4], *starts = nstarts <= 4 ? small : malloc(nstarts * sizeof *starts);
        if (!starts)
            return RN_ERR_NOMEM;
        replica_starts(log, batches, len, starts);
        first_start = starts[0].start_offset;
        err = rn_lep_assign_durably(log->epochs, starts, nstarts);
        if (starts != small)
            free(starts);
    }
    if (err != RN_OK)
        return err;
    if (rn_log__roll_due(log, len) && (err = rn_log__roll(log)) != RN_OK)
        goto unwrite;
    if ((err = rn_seg_append_span(rn_log__active(log), batches, len)) != RN_OK)
        goto unwrite;
    log->unflushed_records += info->record_count;
    return RN_OK;
unwrite:
    /*
     * The epochs recorded for these batches go again; the file keeps them until the next
     * write, which the dirty cache forces before any later batch. Harmless meanwhile: recovery
     * drops entries past what it finds.
     */
    if (nstarts > 0)
        rn_lep_truncate_from_end(log->epochs, first_start);
    return err;
}

const rn_lep_t *rn_log_epochs(const rn_log_t *log)
{
    return log->epochs;
}

rn_err_t rn_log_end_offset_for_epoch(const rn_log_t *log, uint32_t epoch, rn_lep_answer_t *out)
{
    return rn_lep_end_offset_for(log->epochs, epoch, rn_log_end_offset(log), out);
}

rn_err_t rn_log_drop_epochs_from(rn_log_t *log, uint64_t offset)
{
    if (offset < rn_log_end_offset(log))
        return RN_ERR_INVALID_ARG;
    if (!rn_lep_truncate_from_end(log->epochs, offset))
        return RN_OK;
    return rn_lep_persist(log->epochs);
}
