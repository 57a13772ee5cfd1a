/* common/logging.c: both formats, request ids, escaping in JSON, the level filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging.h"

/* Runs the logging calls of fn with stderr sent to a file; returns what was written. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/rn-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *out = calloc(1, 8192);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, 8191);
    assert_true(n >= 0);
    close(fd);
    unlink(path);
    return out;
}

static void text_lines(void)
{
    rn_logging_set_format(RN_LOG_TEXT);
    rn_logging_set_level(RN_LVL_INFO);
    RN_DEBUG("net", "not shown");
    RN_WARN("net", "slow client %d", 7);
    rn_logf_req(RN_LVL_ERROR, "api", "17 client-a", "bad batch");
}

static void json_lines(void)
{
    rn_logging_set_format(RN_LOG_JSON);
    RN_INFO("log", "a \"quoted\"\tword\\");
    rn_logf_req(RN_LVL_ERROR, "api", "42", "unknown topic");
    rn_logging_set_format(RN_LOG_TEXT);
}

static void test_text(void **state)
{
    (void)state;
    char *out = capture(text_lines);
    assert_null(strstr(out, "not shown"));
    assert_non_null(strstr(out, "Z WARN  [net] slow client 7\n"));
    assert_non_null(strstr(out, "Z ERROR [api] [req 17 client-a] bad batch\n"));
    assert_true(out[4] == '-' && out[10] == 'T');
    free(out);
}

static void test_json(void **state)
{
    (void)state;
    char *out = capture(json_lines);
    assert_non_null(strstr(out, "\"level\":\"info\",\"component\":\"log\",\"msg\":\"a \\\"quoted\\\"\\u0009word\\\\\"}\n"));
    assert_non_null(strstr(out, "\"level\":\"error\",\"component\":\"api\",\"request_id\":\"42\",\"msg\":\"unknown topic\"}\n"));
    assert_true(strncmp(out, "{\"ts\":\"", 7) == 0);
    free(out);
}

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(rn_logging_parse_format("json"), RN_LOG_JSON);
    assert_int_equal(rn_logging_parse_format("text"), RN_LOG_TEXT);
    assert_int_equal(rn_logging_parse_format("xml"), -1);
    assert_int_equal(rn_logging_parse_level("warn"), RN_LVL_WARN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
