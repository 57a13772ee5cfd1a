/*
 * test_tools_json.c - the tools' JSON helpers (tools/json.c): escaping that always yields
 * valid JSON, the top-level field finder behind --key-field, and unescaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

static void expect_escape(const char *in, size_t len, const char *want)
{
    rn_buf_t b = RN_BUF_INIT;
    assert_int_equal(rn_json_append_string(&b, in, len), RN_OK);
    rn_buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, want);
    rn_buf_free(&b);
}

static void test_escape(void **state)
{
    (void)state;
    expect_escape("", 0, "\"\"");
    expect_escape("plain", 5, "\"plain\"");
    expect_escape("q\"b\\", 4, "\"q\\\"b\\\\\"");
    expect_escape("\n\r\t\b\f\x01\x1f", 7, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\"");
    expect_escape("a\0b", 3, "\"a\\u0000b\"");
    expect_escape("é€😀", strlen("é€😀"), "\"é€😀\"");          /* valid UTF-8 passes */
    expect_escape("\xff" "a\xc3", 3, "\"\\u00ffa\\u00c3\"");      /* invalid bytes escaped */
    expect_escape("\xc0\x80", 2, "\"\\u00c0\\u0080\"");           /* overlong */
    expect_escape("\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\""); /* a surrogate */

    char tmp[] = "/tmp/rn-json-XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    rn_json_write_string(f, "x\"y", 3);
    rewind(f);
    char got[32] = "";
    assert_non_null(fgets(got, sizeof got, f));
    fclose(f);
    unlink(tmp);
    assert_string_equal(got, "\"x\\\"y\"");
}

static void expect_field(const char *json, const char *name, rn_err_t want_err,
                         rn_json_kind_t want_kind, const char *want_value)
{
    const char *v = NULL;
    size_t vl = 0;
    rn_json_kind_t kind = RN_JSON_NULL;
    rn_err_t err = rn_json_find_field(json, strlen(json), name, &v, &vl, &kind);
    assert_int_equal(err, want_err);
    if (err != RN_OK)
        return;
    assert_int_equal(kind, want_kind);
    assert_int_equal(vl, strlen(want_value));
    assert_memory_equal(v, want_value, vl);
}

static void test_find_field(void **state)
{
    (void)state;
    const char *ev = "{\"user_id\":\"user123\",\"action\":\"click\",\"value\":150,"
                     "\"ts\":\"2023-10-27T10:00:00Z\"}";
    expect_field(ev, "user_id", RN_OK, RN_JSON_STRING, "user123");
    expect_field(ev, "value", RN_OK, RN_JSON_NUMBER, "150");
    expect_field(ev, "ts", RN_OK, RN_JSON_STRING, "2023-10-27T10:00:00Z");
    expect_field(ev, "page", RN_ERR_NOT_FOUND, RN_JSON_NULL, "");
    /* Nested fields of the same name are not top-level ones. */
    const char *nested = " { \"a\" : {\"user_id\":\"inner\",\"x\":[1,{\"user_id\":2}]} ,"
                         "\"s\":\"}\\\"{\", \"user_id\" : -4.5e3 , \"n\":null,\"b\":true} ";
    expect_field(nested, "user_id", RN_OK, RN_JSON_NUMBER, "-4.5e3");
    expect_field(nested, "a", RN_OK, RN_JSON_OBJECT,
                 "{\"user_id\":\"inner\",\"x\":[1,{\"user_id\":2}]}");
    expect_field(nested, "s", RN_OK, RN_JSON_STRING, "}\\\"{");
    expect_field(nested, "n", RN_OK, RN_JSON_NULL, "null");
    expect_field(nested, "b", RN_OK, RN_JSON_BOOL, "true");
    expect_field("{}", "x", RN_ERR_NOT_FOUND, RN_JSON_NULL, "");
    expect_field("[1,2]", "x", RN_ERR_MALFORMED, RN_JSON_NULL, "");
    expect_field("not json", "x", RN_ERR_MALFORMED, RN_JSON_NULL, "");
    expect_field("{\"a\":\"unterminated", "x", RN_ERR_MALFORMED, RN_JSON_NULL, "");
    expect_field("{\"a\":{\"b\":1}", "x", RN_ERR_MALFORMED, RN_JSON_NULL, "");
    expect_field("{\"a\" 1}", "a", RN_ERR_MALFORMED, RN_JSON_NULL, "");
    expect_field("", "a", RN_ERR_MALFORMED, RN_JSON_NULL, "");
    /* Deep nesting is walked without recursion. */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 32);
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"d\":");
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    n += (size_t)sprintf(deep + n, ",\"k\":1}");
    expect_field(deep, "k", RN_OK, RN_JSON_NUMBER, "1");
    free(deep);
}

static void expect_unescape(const char *in, rn_err_t want_err, const char *want)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_err_t err = rn_json_unescape(in, strlen(in), &b);
    assert_int_equal(err, want_err);
    if (err == RN_OK) {
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data ? (const void *)b.data : "", want, b.len);
    }
    rn_buf_free(&b);
}

static void test_unescape(void **state)
{
    (void)state;
    expect_unescape("plain", RN_OK, "plain");
    expect_unescape("", RN_OK, "");
    expect_unescape("a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f", RN_OK, "a\"b\\c/d\n\t\r\b\f");
    expect_unescape("\\u00e9\\u20AC", RN_OK, "é€");
    expect_unescape("\\ud83d\\ude00", RN_OK, "😀");
    expect_unescape("\\ud83d", RN_ERR_MALFORMED, NULL);
    expect_unescape("\\ude00", RN_ERR_MALFORMED, NULL);
    expect_unescape("\\u12", RN_ERR_MALFORMED, NULL);
    expect_unescape("\\x", RN_ERR_MALFORMED, NULL);
    expect_unescape("end\\", RN_ERR_MALFORMED, NULL);

    /* Round trip: whatever escape writes, unescape restores (valid UTF-8 input). */
    const char *samples[] = {"", "a\"\\\n\x01z", "é€😀 tab\there", "{\"k\":[1,2]}"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        rn_buf_t esc = RN_BUF_INIT, back = RN_BUF_INIT;
        assert_int_equal(rn_json_append_string(&esc, samples[i], strlen(samples[i])), RN_OK);
        assert_int_equal(rn_json_unescape((char *)esc.data + 1, esc.len - 2, &back), RN_OK);
        assert_int_equal(back.len, strlen(samples[i]));
        if (back.len)
            assert_memory_equal(back.data, samples[i], back.len);
        rn_buf_free(&esc);
        rn_buf_free(&back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_find_field),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
