#include "partitioner.h"

#include <xxhash.h>

int32_t rn_part_for_key(const void *key, size_t key_len, int32_t partition_count)
{
    return (int32_t)(XXH3_64bits(key, key_len) % (uint64_t)partition_count);
}

void rn_part_rng_seed(rn_part_rng_t *r, uint64_t seed)
{
    r->state = seed ? seed : 0x9E3779B97F4A7C15ull;
}

static uint64_t next_u64(rn_part_rng_t *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int32_t rn_part_sticky_next(rn_part_rng_t *r, int32_t previous, int32_t partition_count)
{
    if (partition_count <= 1)
        return 0;
    if (previous < 0 || previous >= partition_count)
        return (int32_t)(next_u64(r) % (uint64_t)partition_count);
    /* Uniform over the others: draw from count-1 slots and skip over the previous one. */
    int32_t p = (int32_t)(next_u64(r) % (uint64_t)(partition_count - 1));
    return p >= previous ? p + 1 : p;
}
