/* processor/ops/json.c: the schema-driven decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include <stdio.h>

#include "ops/json.h"

static const rn_json_col_t COLS[] = {
    {"user_id", RN_T_TEXT}, {"action", RN_T_TEXT}, {"value", RN_T_DOUBLE},
    {"timestamp", RN_T_TIMESTAMP}, {"n", RN_T_BIGINT}, {"ok", RN_T_BOOLEAN},
};
#define NCOLS 6

static rn_json_dec_t *dec(void)
{
    rn_json_dec_t *d;
    assert_int_equal(rn_json_dec_new(COLS, NCOLS, &d), RN_OK);
    return d;
}

static rn_err_t decode(rn_json_dec_t *d, const char *json, rn_value_t *row, char *err)
{
    err[0] = '\0';
    return rn_json_decode(d, json, strlen(json), row, err, 256);
}

static void test_article_event(void **state)
{
    (void)state;
    rn_json_dec_t *d = dec();
    rn_value_t row[NCOLS];
    char err[256];
    const char *ev = "{\"user_id\": \"user123\", \"action\": \"click\", "
                     "\"timestamp\": \"2023-10-27T10:00:00Z\", \"value\": 150, \"n\": -42, "
                     "\"ok\": true, \"extra\": {\"nested\": [1, 2, {\"x\": \"}\"}]}, \"z\": null}";
    assert_int_equal(decode(d, ev, row, err), RN_OK);
    assert_int_equal(row[0].type, RN_T_TEXT);
    assert_int_equal(row[0].len, 7);
    assert_memory_equal(row[0].u.s, "user123", 7);
    assert_memory_equal(row[1].u.s, "click", 5);
    assert_true(row[2].u.d == 150.0);
    assert_true(row[3].u.i == 1698400800000);
    assert_true(row[4].u.i == -42);
    assert_true(row[5].u.b);
    for (int i = 0; i < NCOLS; i++)
        assert_false(row[i].is_null);
    /* numbers as ids, epoch ms, nulls */
    assert_int_equal(decode(d, "{\"user_id\":123,\"action\":null,\"value\":1.5e2,\"timestamp\":1698400800000,"
                               "\"n\":9223372036854775807,\"ok\":false}", row, err), RN_OK);
    assert_memory_equal(row[0].u.s, "123", 3);
    assert_true(row[1].is_null);
    assert_int_equal(row[1].type, RN_T_TEXT);
    assert_true(row[2].u.d == 150.0);
    assert_true(row[3].u.i == 1698400800000);
    assert_true(row[4].u.i == INT64_MAX);
    assert_false(row[5].u.b);
    rn_json_dec_free(d);
}

static void test_escapes_and_numbers(void **state)
{
    (void)state;
    rn_json_col_t cols[] = {{"s", RN_T_TEXT}, {"d", RN_T_DOUBLE}};
    rn_json_dec_t *d;
    assert_int_equal(rn_json_dec_new(cols, 2, &d), RN_OK);
    rn_value_t row[2];
    char err[256];
    const char *ev = "{\"s\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00/\\/\",\"d\":0.1}";
    assert_int_equal(decode(d, ev, row, err), RN_OK);
    const char want[] = "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80//";
    assert_int_equal(row[0].len, sizeof want - 1);
    assert_memory_equal(row[0].u.s, want, sizeof want - 1);
    assert_true(row[1].u.d == 0.1);
    struct { const char *num; double want; } nums[] = {
        {"0", 0}, {"-0.5", -0.5}, {"3.14159", 3.14159}, {"1e-5", 1e-5}, {"12345678901234567890", 12345678901234567890.0},
        {"1.7976931348623157e308", 1.7976931348623157e308}, {"5e-324", 5e-324}, {"123.456e2", 12345.6},
        {"0.30000000000000004", 0.30000000000000004},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"s\":\"\",\"d\":%s}", nums[i].num);
        assert_int_equal(decode(d, json, row, err), RN_OK);
        if (row[1].u.d != nums[i].want)
            fail_msg("%s decoded as %.17g", nums[i].num, row[1].u.d);
    }
    rn_json_dec_free(d);
}

static void test_decode_errors(void **state)
{
    (void)state;
    rn_json_dec_t *d = dec();
    rn_value_t row[NCOLS];
    char err[256];
    const char *ok_tail = ",\"action\":\"a\",\"value\":1,\"timestamp\":0,\"n\":1,\"ok\":true}";
    struct { const char *json, *want; } cases[] = {
        {"{\"action\":\"a\",\"value\":1,\"timestamp\":0,\"n\":1,\"ok\":true}", "missing field 'user_id'"},
        {"{\"user_id\":true,\"action\":\"a\",\"value\":1,\"timestamp\":0,\"n\":1,\"ok\":true}",
         "field 'user_id': expected a string, found a boolean"},
        {"{\"user_id\":\"u\",\"action\":\"a\",\"value\":\"1\",\"timestamp\":0,\"n\":1,\"ok\":true}",
         "field 'value': expected a number, found a string"},
        {"{\"user_id\":\"u\",\"action\":\"a\",\"value\":1,\"timestamp\":0,\"n\":1.5,\"ok\":true}",
         "field 'n': expected an integer, found a fraction"},
        {"{\"user_id\":\"u\",\"action\":\"a\",\"value\":1,\"timestamp\":\"soon\",\"n\":1,\"ok\":true}",
         "field 'timestamp': 'soon' is not an ISO-8601 timestamp"},
        {"{\"user_id\":\"u\",\"action\":\"a\",\"value\":1,\"timestamp\":[1],\"n\":1,\"ok\":true}",
         "field 'timestamp': expected epoch milliseconds or an ISO-8601 string, found an array"},
        {"{\"user_id\" \"u\"}", "malformed JSON at byte 11: expected ':', found '\"'"},
        {"{\"user_id\":\"u\"", "malformed JSON at byte 14: expected ',' or '}', found the end of the record"},
        {"{\"user_id\":\"u", "malformed JSON at byte 13: unterminated string"},
        {"[1,2]", "malformed JSON at byte 0: expected a JSON object '{'"},
        {"", "malformed JSON at byte 0: expected a JSON object '{', found the end of the record"},
        {"{\"user_id\":\"u\"} x", "malformed JSON at byte 16: expected the end of the record"},
        {"{\"x\":tru,\"user_id\":\"u\"}", "malformed JSON at byte 5: expected a JSON value"},
        {"{\"x\":01}", "malformed JSON at byte 6: expected ',' or '}'"},
        {"{\"x\":-}", "malformed JSON at byte 6: expected a digit"},
        {"{\"x\":[1,}", "malformed JSON at byte 8: expected a digit"},
        {"{\"x\":\"a\\qb\"}", "malformed JSON at byte 8: unknown escape"},
        {"{\"x\":\"a\tb\"}", "malformed JSON at byte 7: control character in a string"},
    };
    (void)ok_tail;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(decode(d, cases[i].json, row, err), RN_ERR_MALFORMED);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            print_error("case %zu:\n got: %s\nwant: %s\n", i, err, cases[i].want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    /* The decoder recovers: the next good record decodes. */
    assert_int_equal(decode(d, "{\"user_id\":\"u\",\"action\":\"a\",\"value\":1,\"timestamp\":0,\"n\":1,\"ok\":true}",
                            row, err), RN_OK);
    rn_json_dec_free(d);
}

static void test_deep_nesting_bounded(void **state)
{
    (void)state;
    rn_json_col_t cols[] = {{"a", RN_T_BIGINT}};
    rn_json_dec_t *d;
    assert_int_equal(rn_json_dec_new(cols, 1, &d), RN_OK);
    char json[400] = "{\"x\":";
    for (int i = 0; i < 100; i++)
        strcat(json, "[");
    rn_value_t row[1];
    char err[256];
    assert_int_equal(rn_json_decode(d, json, strlen(json), row, err, sizeof err), RN_ERR_MALFORMED);
    assert_non_null(strstr(err, "nesting deeper than 64"));
    /* Duplicate keys: the last one wins. */
    assert_int_equal(decode(d, "{\"a\":1,\"a\":2}", row, err), RN_OK);
    assert_true(row[0].u.i == 2);
    rn_json_dec_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_article_event),
        cmocka_unit_test(test_escapes_and_numbers),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_deep_nesting_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
