/*
 * partitioner.h - which partition a record goes to when the application says "any".
 *
 * Keyed records: XXH3-64 of the key bytes modulo the partition count, so every client that
 * uses XXH3 (and the processor's repartitioning) puts a key on the same partition. Records
 * with a null key stick to one partition until that partition's batch is sent, then move to
 * another one chosen at random: batches fill up instead of trickling one record to each
 * partition (Kafka's KIP-480).
 */
#ifndef RN_CLIENT_PARTITIONER_H
#define RN_CLIENT_PARTITIONER_H

#include <stddef.h>
#include <stdint.h>

/* The partition of a non-null key; partition_count > 0. */
int32_t rn_part_for_key(const void *key, size_t key_len, int32_t partition_count);

/* A small, fast PRNG (xorshift64*); one per producer, under its lock. */
typedef struct rn_part_rng {
    uint64_t state;
} rn_part_rng_t;

void rn_part_rng_seed(rn_part_rng_t *r, uint64_t seed);
/*
 * A new sticky partition: uniform over [0, partition_count), never `previous` when there is
 * another choice (previous < 0: none).
 */
int32_t rn_part_sticky_next(rn_part_rng_t *r, int32_t previous, int32_t partition_count);

#endif
