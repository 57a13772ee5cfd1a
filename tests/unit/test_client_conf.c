/*
 * client/conf.c: every documented key has its default, good values stick, and an unknown
 * key or a bad value is refused with a message that names the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "runnel/runnel.h"

static const struct {
    const char *key, *def;
} defaults[] = {
    {"bootstrap.servers", "127.0.0.1:9092"},
    {"client.id", "runnel"},
    {"acks", "all"},
    {"linger.ms", "5"},
    {"batch.size", "65536"},
    {"compression.type", "none"},
    {"enable.idempotence", "true"},
    {"max.in.flight", "5"},
    {"retries", "2147483647"},
    {"retry.backoff.ms", "100"},
    {"request.timeout.ms", "30000"},
    {"delivery.timeout.ms", "120000"},
    {"buffer.memory", "33554432"},
    {"fetch.min.bytes", "1"},
    {"fetch.max.bytes", "52428800"},
    {"max.partition.fetch.bytes", "1048576"},
    {"fetch.max.wait.ms", "500"},
    {"auto.offset.reset", "latest"},
    {"queued.max.messages.kbytes", "65536"},
    {"io.busy.poll.us", "0"},
};

static void test_defaults_match_the_header(void **state)
{
    (void)state;
    rn_conf_t *c = rn_conf_new();
    assert_non_null(c);
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const char *v = rn_conf_get(c, defaults[i].key);
        if (!v || strcmp(v, defaults[i].def) != 0)
            fail_msg("%s defaults to %s, runnel.h says %s", defaults[i].key, v ? v : "(null)",
                     defaults[i].def);
    }
    assert_int_equal(rn_conf_int(c, "acks"), -1);
    assert_int_equal(rn_conf_int(c, "linger.ms"), 5);
    assert_true(rn_conf_bool(c, "enable.idempotence"));
    assert_null(rn_conf_get(c, "no.such.key"));
    /* NULL conf reads as all defaults. */
    assert_string_equal(rn_conf_get(NULL, "acks"), "all");
    rn_conf_free(c);
}

static void test_good_values_stick(void **state)
{
    (void)state;
    rn_conf_t *c = rn_conf_new();
    char err[256];
    const char *pairs[][2] = {
        {"acks", "0"}, {"acks", "1"}, {"acks", "-1"}, {"acks", "all"},
        {"linger.ms", "0"}, {"batch.size", "1"}, {"compression.type", "zstd"},
        {"enable.idempotence", "false"}, {"max.in.flight", "1"}, {"retries", "0"},
        {"auto.offset.reset", "earliest"}, {"auto.offset.reset", "error"},
        {"bootstrap.servers", "a:1,b.example:65535"}, {"bootstrap.servers", "[::1]:9092"},
        {"client.id", ""}, {"fetch.min.bytes", "0"}, {"fetch.max.wait.ms", "0"},
        {"io.busy.poll.us", "100"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        rn_err_t e = rn_conf_set(c, pairs[i][0], pairs[i][1], err, sizeof err);
        if (e != RN_OK)
            fail_msg("%s=%s refused: %s", pairs[i][0], pairs[i][1], err);
        assert_string_equal(rn_conf_get(c, pairs[i][0]), pairs[i][1]);
    }
    assert_int_equal(rn_conf_int(c, "acks"), -1);
    assert_false(rn_conf_bool(c, "enable.idempotence"));
    /* NULL puts the default back. */
    assert_int_equal(rn_conf_set(c, "acks", NULL, err, sizeof err), RN_OK);
    assert_string_equal(rn_conf_get(c, "acks"), "all");
    /* The Kafka spelling is an alias. */
    assert_int_equal(rn_conf_set(c, "max.in.flight.requests.per.connection", "3", err, sizeof err),
                     RN_OK);
    assert_string_equal(rn_conf_get(c, "max.in.flight"), "3");
    rn_conf_free(c);
}

static void test_unknown_key_is_named(void **state)
{
    (void)state;
    rn_conf_t *c = rn_conf_new();
    char err[256] = "";
    assert_int_equal(rn_conf_set(c, "linger.msec", "5", err, sizeof err), RN_ERR_UNKNOWN_CONFIG);
    assert_non_null(strstr(err, "linger.msec"));
    assert_int_equal(rn_conf_set(c, "x", "1", NULL, 0), RN_ERR_UNKNOWN_CONFIG);
    rn_conf_free(c);
}

static void test_bad_values_are_named(void **state)
{
    (void)state;
    rn_conf_t *c = rn_conf_new();
    const char *bad[][2] = {
        {"acks", "2"}, {"acks", "ALL"}, {"linger.ms", "-1"}, {"linger.ms", "5ms"},
        {"linger.ms", ""}, {"linger.ms", " 5"}, {"linger.ms", "+5"}, {"batch.size", "0"},
        {"compression.type", "gzip"}, {"enable.idempotence", "yes"}, {"max.in.flight", "0"},
        {"retries", "2147483648"}, {"buffer.memory", "10"}, {"auto.offset.reset", "smallest"},
        {"io.busy.poll.us", "-1"}, {"io.busy.poll.us", "1000001"},
        {"bootstrap.servers", "localhost"}, {"bootstrap.servers", "h:0"},
        {"bootstrap.servers", "h:65536"}, {"bootstrap.servers", ""}, {"bootstrap.servers", "::1:9"},
        {"bootstrap.servers", "[::1]9092"}, {"request.timeout.ms", "0"},
        {"fetch.max.bytes", "99999999999999999999"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        rn_err_t e = rn_conf_set(c, bad[i][0], bad[i][1], err, sizeof err);
        if (e != RN_ERR_BAD_CONFIG)
            fail_msg("%s=\"%s\" gave %s, expected BAD_CONFIG", bad[i][0], bad[i][1], rn_err_name(e));
        if (!strstr(err, bad[i][0]))
            fail_msg("message \"%s\" does not name %s", err, bad[i][0]);
        /* The old value stays. */
        assert_string_equal(rn_conf_get(c, bad[i][0]), rn_conf_get(NULL, bad[i][0]));
    }
    rn_conf_free(c);
}

static void test_set_pair(void **state)
{
    (void)state;
    rn_conf_t *c = rn_conf_new();
    char err[256];
    assert_int_equal(rn_conf_set_pair(c, "linger.ms=7", err, sizeof err), RN_OK);
    assert_string_equal(rn_conf_get(c, "linger.ms"), "7");
    /* Only the first '=' splits. */
    assert_int_equal(rn_conf_set_pair(c, "client.id=a=b", err, sizeof err), RN_OK);
    assert_string_equal(rn_conf_get(c, "client.id"), "a=b");
    assert_int_equal(rn_conf_set_pair(c, "linger.ms", err, sizeof err), RN_ERR_BAD_CONFIG);
    assert_int_equal(rn_conf_set_pair(c, "=5", err, sizeof err), RN_ERR_BAD_CONFIG);
    assert_int_equal(rn_conf_set_pair(c, "nope=5", err, sizeof err), RN_ERR_UNKNOWN_CONFIG);
    assert_non_null(strstr(err, "nope"));
    assert_int_equal(rn_conf_set_pair(c, "acks=3", err, sizeof err), RN_ERR_BAD_CONFIG);
    assert_non_null(strstr(err, "acks"));
    rn_conf_free(c);
}

static void test_dup_is_independent(void **state)
{
    (void)state;
    rn_conf_t *a = rn_conf_new();
    assert_int_equal(rn_conf_set(a, "linger.ms", "9", NULL, 0), RN_OK);
    rn_conf_t *b = rn_conf_dup(a);
    assert_non_null(b);
    assert_int_equal(rn_conf_set(a, "linger.ms", "1", NULL, 0), RN_OK);
    assert_string_equal(rn_conf_get(b, "linger.ms"), "9");
    rn_conf_free(a);
    rn_conf_free(b);
    rn_conf_free(NULL);
}

static void test_parse_servers(void **state)
{
    (void)state;
    rn_conf_addr_t a[4];
    assert_int_equal(rn_conf_parse_servers("h1:1, h2:2 ,[::1]:3", a, 4), 3);
    assert_string_equal(a[0].host, "h1");
    assert_int_equal(a[0].port, 1);
    assert_string_equal(a[1].host, "h2");
    assert_int_equal(a[1].port, 2);
    assert_string_equal(a[2].host, "::1");
    assert_int_equal(a[2].port, 3);
    assert_int_equal(rn_conf_parse_servers("h:1,,h:2", a, 4), 2);
    assert_int_equal(rn_conf_parse_servers("h:1,x", a, 4), -1);
    assert_int_equal(rn_conf_parse_servers(":9", a, 4), -1);
}

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(rn_version(), "0.1.0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_header),
        cmocka_unit_test(test_good_values_stick),
        cmocka_unit_test(test_unknown_key_is_named),
        cmocka_unit_test(test_bad_values_are_named),
        cmocka_unit_test(test_set_pair),
        cmocka_unit_test(test_dup_is_independent),
        cmocka_unit_test(test_parse_servers),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
