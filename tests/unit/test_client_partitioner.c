/*
 * client/partitioner.c: keyed records land on XXH3(key) % partitions (a contract other
 * clients and the processor rely on), spread evenly; sticky picks for null keys never repeat
 * the previous partition and cover the others evenly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>
#include <cmocka.h>

#include "partitioner.h"

static void test_key_is_xxh3_modulo(void **state)
{
    (void)state;
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "user-%d", i);
        for (int32_t parts = 1; parts <= 13; parts += 3) {
            int32_t want = (int32_t)(XXH3_64bits(key, (size_t)n) % (uint64_t)parts);
            assert_int_equal(rn_part_for_key(key, (size_t)n, parts), want);
        }
    }
    /* The empty key is a key (not null) and has a fixed partition too. */
    assert_int_equal(rn_part_for_key("", 0, 6), (int32_t)(XXH3_64bits("", 0) % 6));
}

static void test_keys_spread_evenly(void **state)
{
    (void)state;
    enum { PARTS = 6, KEYS = 60000 };
    int count[PARTS] = {0};
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        int32_t p = rn_part_for_key(key, (size_t)n, PARTS);
        assert_true(p >= 0 && p < PARTS);
        count[p]++;
    }
    for (int p = 0; p < PARTS; p++) {
        if (count[p] < KEYS / PARTS * 9 / 10 || count[p] > KEYS / PARTS * 11 / 10)
            fail_msg("partition %d got %d of %d keys", p, count[p], KEYS);
    }
}

static void test_sticky_moves_on(void **state)
{
    (void)state;
    enum { PARTS = 5, ROUNDS = 50000 };
    rn_part_rng_t rng;
    rn_part_rng_seed(&rng, 42);
    int count[PARTS] = {0};
    int32_t prev = rn_part_sticky_next(&rng, -1, PARTS);
    assert_true(prev >= 0 && prev < PARTS);
    for (int i = 0; i < ROUNDS; i++) {
        int32_t p = rn_part_sticky_next(&rng, prev, PARTS);
        assert_true(p >= 0 && p < PARTS);
        assert_int_not_equal(p, prev);
        count[p]++;
        prev = p;
    }
    for (int p = 0; p < PARTS; p++) {
        if (count[p] < ROUNDS / PARTS * 9 / 10 || count[p] > ROUNDS / PARTS * 11 / 10)
            fail_msg("sticky partition %d picked %d times of %d", p, count[p], ROUNDS);
    }
    /* One partition: always 0; a stale previous outside the range is ignored. */
    assert_int_equal(rn_part_sticky_next(&rng, 0, 1), 0);
    assert_int_equal(rn_part_sticky_next(&rng, -1, 1), 0);
    for (int i = 0; i < 100; i++) {
        int32_t p = rn_part_sticky_next(&rng, 9, 3);
        assert_true(p >= 0 && p < 3);
    }
    /* Two partitions alternate. */
    assert_int_equal(rn_part_sticky_next(&rng, 0, 2), 1);
    assert_int_equal(rn_part_sticky_next(&rng, 1, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_is_xxh3_modulo),
        cmocka_unit_test(test_keys_spread_evenly),
        cmocka_unit_test(test_sticky_moves_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
