/*
 * pstate.h - idempotent-producer state of one partition: for every producer id, its epoch
 * and its last RN_PSTATE_CACHED batches (sequence range and offsets), so the broker can
 *
 *   - append the next batch only when base_sequence == last sequence + 1 (sequences count
 *     records and wrap from INT32_MAX to 0);
 *   - acknowledge a retry of one of the cached batches with its ORIGINAL offsets, unappended;
 *   - fence an older epoch (INVALID_PRODUCER_EPOCH) and start a newer one at sequence 0.
 *
 * A producer this partition has no state for (never seen, or expired after
 * producer.id.expiration.ms idle) may start at any sequence: after expiry the broker cannot
 * tell a gap from a restart, and refusing would wedge the producer (Kafka >= 2.5 does the
 * same). producer_id < 0 marks a batch as not idempotent; it is never checked.
 *
 * Persistence: snapshots "%020llu.snapshot" in the partition directory, named by the log
 * offset they cover (every batch below it is in the state), written at segment rolls and at
 * clean shutdown. Loading picks the newest snapshot at or below the log end and the caller
 * replays the batch headers after it; a snapshot past the log end (the log lost its tail in a
 * crash) is deleted, never trusted.
 *
 *   snapshot := magic u32 "RNPS" | version u32 (1) | offset u64 | count u32 | entry*count |
 *               xxh3-64 u64 of every byte before it
 *   entry    := producer_id i64 | epoch i16 | n u8 | 0 u8 | last_append_ms i64 |
 *               n × (first_seq i32 | last_seq i32 | first_offset u64 | last_offset u64)
 *
 * Loop thread only.
 */
#ifndef RN_BROKER_PSTATE_H
#define RN_BROKER_PSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "err.h"

#define RN_PSTATE_CACHED 5

typedef struct rn_pstate rn_pstate_t;

typedef struct rn_pstate_verdict {
    bool duplicate;          /* a retry of a cached batch: do not append */
    uint64_t first_offset;   /* duplicate: the offsets it was appended at */
    uint64_t last_offset;
} rn_pstate_verdict_t;

rn_pstate_t *rn_pstate_new(void);
void rn_pstate_free(rn_pstate_t *ps);
size_t rn_pstate_count(const rn_pstate_t *ps);

/*
 * Checks the n batches of one append, in order, each as if the ones before it had been
 * appended. RN_OK with v[i] filled for every batch; or RN_ERR_INVALID_PRODUCER_EPOCH /
 * RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER with *bad the index of the first batch refused and a
 * message in errbuf. Changes nothing.
 */
rn_err_t rn_pstate_check(const rn_pstate_t *ps, const rn_batch_header_t *h, size_t n,
                         rn_pstate_verdict_t *v, size_t *bad, char *errbuf, size_t errlen);
/* Records an appended batch (h->base_offset stamped). RN_ERR_NOMEM. */
rn_err_t rn_pstate_update(rn_pstate_t *ps, const rn_batch_header_t *h, int64_t now_ms);
/* Drops producers whose last append is older than now_ms - max_idle_ms; returns how many. */
size_t rn_pstate_expire(rn_pstate_t *ps, int64_t now_ms, int64_t max_idle_ms);

/* Writes DIR/%020llu.snapshot for offset and keeps only the two newest snapshots. */
rn_err_t rn_pstate_save(const rn_pstate_t *ps, const char *dir, uint64_t offset);
/*
 * Loads the newest readable snapshot at or below log_end into ps (which must be empty),
 * deleting the ones past log_end and unreadable ones. RN_OK with *offset, or RN_ERR_NOT_FOUND.
 */
rn_err_t rn_pstate_load(rn_pstate_t *ps, const char *dir, uint64_t log_end, uint64_t *offset);

/* The sequence after last, wrapping at INT32_MAX. */
static inline int32_t rn_pstate_next_seq(int32_t last)
{
    return last == INT32_MAX ? 0 : last + 1;
}
/* The last sequence of a batch of count records starting at base_seq. */
static inline int32_t rn_pstate_last_seq(int32_t base_seq, uint32_t count)
{
    return (int32_t)(((int64_t)base_seq + (int64_t)count - 1) % ((int64_t)INT32_MAX + 1));
}

#endif
