/*
 * test_tools_bulk.c - 100,000 keyed records through the CLI and back: produced from a file
 * with -K, consumed with -e -J, then checked record by record: the count, the exact content
 * of each (key and value), an order-independent content hash, offsets consecutive from 0 in
 * every partition, every key on one partition, and each key's records in produce order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test_tools_util.h"

#define CLI "RUNNEL_CLI_BIN"
#define RECORDS 100000
#define KEYS 997
#define PARTITIONS 6

static rn_hbroker_t broker;

static int group_setup(void **state)
{
    (void)state;
    return tt_broker_start(&broker);
}

static int group_teardown(void **state)
{
    (void)state;
    int status = tt_broker_stop(&broker);
    tt_cleanup();
    return status == 0 ? 0 : -1;
}

/* The value of record seq; escapes in it exercise -J's escaping. */
static int format_value(char *buf, size_t len, int seq)
{
    return snprintf(buf, len, "{\"seq\":%d,\"user\":\"user%d\",\"note\":\"tab\\there \\\"q\\\" %s\"}",
                    seq, seq % KEYS, seq % 3 ? "é" : "\\\\");
}

static uint64_t fnv1a(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t record_hash(const char *key, size_t key_len, const char *value, size_t value_len)
{
    uint64_t h = fnv1a(key, key_len, 0xcbf29ce484222325ULL);
    return fnv1a(value, value_len, fnv1a("\t", 1, h));
}

static int64_t json_int(const char *line, size_t len, const char *field)
{
    const char *v;
    size_t vl;
    rn_json_kind_t kind;
    assert_int_equal(rn_json_find_field(line, len, field, &v, &vl, &kind), RN_OK);
    assert_int_equal(kind, RN_JSON_NUMBER);
    return strtoll(v, NULL, 10);
}

static void json_str(const char *line, size_t len, const char *field, rn_buf_t *out)
{
    const char *v;
    size_t vl;
    rn_json_kind_t kind;
    assert_int_equal(rn_json_find_field(line, len, field, &v, &vl, &kind), RN_OK);
    assert_int_equal(kind, RN_JSON_STRING);
    assert_int_equal(rn_json_unescape(v, vl, out), RN_OK);
}

static void test_100k_through_the_cli(void **state)
{
    (void)state;
    const char *in_path = tt_path("bulk.in");
    FILE *in = fopen(in_path, "w");
    assert_non_null(in);
    uint64_t want_hash = 0;
    char value[256], key[32];
    for (int i = 0; i < RECORDS; i++) {
        int kl = snprintf(key, sizeof key, "user%d", i % KEYS);
        int vl = format_value(value, sizeof value, i);
        fprintf(in, "%s\t%s\n", key, value);
        want_hash += record_hash(key, (size_t)kl, value, (size_t)vl);
    }
    fclose(in);

    tt_run_t r = tt_run(CLI, NULL, "topic", "create", "bulk", "--partitions", "6", NULL);
    assert_int_equal(r.status, 0);
    tt_run_free(&r);

    r = tt_run(CLI, in_path, "produce", "-t", "bulk", "-K", "\\t", NULL);
    if (r.status != 0)
        tt_dump("produce", &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "100000 records"));
    assert_non_null(strstr(r.err, "0 failed"));
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "offsets", "-t", "bulk", NULL);
    assert_int_equal(r.status, 0);
    long long total = 0;
    for (const char *p = r.out; (p = strstr(p, "Latest: ")); p += 8)
        total += atoll(p + 8);
    assert_int_equal(total, RECORDS);
    tt_run_free(&r);

    r = tt_run(CLI, NULL, "consume", "-t", "bulk", "-o", "beginning", "-e", "-J", NULL);
    if (r.status != 0)
        tt_dump("consume", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(tt_count_lines(r.out), RECORDS);

    int64_t next_offset[PARTITIONS] = {0};
    int key_partition[KEYS];
    int key_last_seq[KEYS];
    for (int k = 0; k < KEYS; k++)
        key_partition[k] = key_last_seq[k] = -1;
    char *seen = calloc(RECORDS, 1);
    assert_non_null(seen);
    uint64_t got_hash = 0;
    rn_buf_t k = RN_BUF_INIT, v = RN_BUF_INIT, t = RN_BUF_INIT;
    size_t count = 0;
    for (char *line = r.out; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t len = (size_t)(nl - line);
        json_str(line, len, "topic", &t);
        assert_int_equal(t.len, 4);
        assert_memory_equal(t.data, "bulk", 4);
        int64_t partition = json_int(line, len, "partition");
        int64_t offset = json_int(line, len, "offset");
        assert_true(partition >= 0 && partition < PARTITIONS);
        assert_int_equal(offset, next_offset[partition]); /* consecutive, in order */
        next_offset[partition]++;
        json_str(line, len, "key", &k);
        json_str(line, len, "value", &v);
        got_hash += record_hash((char *)k.data, k.len, (char *)v.data, v.len);
        /* The exact content: the value names its seq, which fixes key and value. */
        rn_buf_append(&v, "", 1);
        int seq = atoi((char *)v.data + strlen("{\"seq\":"));
        assert_true(seq >= 0 && seq < RECORDS);
        assert_false(seen[seq]);
        seen[seq] = 1;
        char want_value[256], want_key[32];
        int wl = format_value(want_value, sizeof want_value, seq);
        assert_int_equal(v.len - 1, (size_t)wl);
        assert_string_equal((char *)v.data, want_value);
        int kl = snprintf(want_key, sizeof want_key, "user%d", seq % KEYS);
        assert_int_equal(k.len, (size_t)kl);
        assert_memory_equal(k.data, want_key, k.len);
        int key_id = seq % KEYS;
        if (key_partition[key_id] < 0)
            key_partition[key_id] = (int)partition;
        assert_int_equal(key_partition[key_id], partition); /* one partition per key */
        assert_true(seq > key_last_seq[key_id]);            /* per-key produce order */
        key_last_seq[key_id] = seq;
        count++;
        line = nl + 1;
    }
    assert_int_equal(count, RECORDS);
    assert_true(got_hash == want_hash);
    int used = 0;
    for (int p = 0; p < PARTITIONS; p++)
        used += next_offset[p] > 0;
    assert_true(used >= 5); /* 997 keys spread over (nearly) every partition */
    fprintf(stderr, "100000 records back, content hash %016llx, per partition:",
            (unsigned long long)got_hash);
    for (int p = 0; p < PARTITIONS; p++)
        fprintf(stderr, " %lld", (long long)next_offset[p]);
    fputc('\n', stderr);
    rn_buf_free(&k);
    rn_buf_free(&v);
    rn_buf_free(&t);
    free(seen);
    tt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_100k_through_the_cli),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
