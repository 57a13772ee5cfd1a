/* varint.c: round trips at every width, and rejection of truncated or overlong input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "varint.h"

static void test_u64_round_trip_every_width(void **state)
{
    (void)state;
    for (int bits = 0; bits <= 64; bits++) {
        uint64_t v = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        uint8_t buf[RN_VARINT_MAX];
        size_t n = rn_varint_put_u64(buf, v);
        assert_int_equal(n, rn_varint_size_u64(v));
        uint64_t got;
        assert_int_equal(rn_varint_get_u64(buf, buf + n, &got), n);
        assert_true(got == v);
        /* Any shorter input is truncated. */
        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal(rn_varint_get_u64(buf, buf + cut, &got), 0);
    }
}

static void test_i64_zigzag(void **state)
{
    (void)state;
    int64_t vals[] = {0, -1, 1, -64, 63, -65, 64, INT64_MIN, INT64_MAX, -123456789};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[RN_VARINT_MAX];
        size_t n = rn_varint_put_i64(buf, vals[i]);
        int64_t got;
        assert_int_equal(rn_varint_get_i64(buf, buf + n, &got), n);
        assert_true(got == vals[i]);
    }
    /* Small magnitudes stay small. */
    uint8_t buf[RN_VARINT_MAX];
    assert_int_equal(rn_varint_put_i64(buf, -1), 1);
}

static void test_overlong_rejected(void **state)
{
    (void)state;
    uint8_t eleven[11];
    for (int i = 0; i < 10; i++)
        eleven[i] = 0x80;
    eleven[10] = 0x01;
    uint64_t got;
    assert_int_equal(rn_varint_get_u64(eleven, eleven + 11, &got), 0);
    /* A tenth byte carrying more than bit 63 overflows. */
    uint8_t ten[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(rn_varint_get_u64(ten, ten + 10, &got), 0);
}

static void test_fixed_le(void **state)
{
    (void)state;
    uint8_t b[8];
    rn_le_put32(b, 0x01020304);
    assert_int_equal(b[0], 0x04);
    assert_int_equal(rn_le_get32(b), 0x01020304);
    rn_le_put64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 0x08);
    assert_true(rn_le_get64(b) == 0x0102030405060708ull);
    rn_le_put16(b, 0xbeef);
    assert_int_equal(rn_le_get16(b), 0xbeef);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64_round_trip_every_width),
        cmocka_unit_test(test_i64_zigzag),
        cmocka_unit_test(test_overlong_rejected),
        cmocka_unit_test(test_fixed_le),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
