#include "test_client_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tc_broker_start(rn_hbroker_t *b, const char *name, const char *const *settings)
{
    char *dir = rn_h_tmpdir(name);
    memset(b, 0, sizeof *b);
    if (rn_h_broker_start(b, dir, settings) != 0) {
        fprintf(stderr, "could not start the broker\n");
        abort();
    }
    free(dir);
}

void tc_broker_finish(rn_hbroker_t *b)
{
    if (rn_h_broker_alive(b) && rn_h_broker_stop(b) != 0)
        fprintf(stderr, "broker did not stop cleanly\n");
    rn_h_rmtree(b->data_dir);
}

rn_conf_t *tc_conf(const rn_hbroker_t *b, const char *const *pairs)
{
    rn_conf_t *c = rn_conf_new();
    char err[256];
    if (rn_conf_set(c, "bootstrap.servers", b->addr, err, sizeof err) != RN_OK)
        abort();
    for (size_t i = 0; pairs && pairs[i]; i++) {
        if (rn_conf_set_pair(c, pairs[i], err, sizeof err) != RN_OK) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
    }
    return c;
}

void tc_create_topic(const rn_hbroker_t *b, const char *topic, int partitions,
                     const char *const *configs)
{
    rn_conf_t *c = tc_conf(b, NULL);
    rn_admin_t *a;
    char err[256];
    if (rn_admin_new(c, &a, err, sizeof err) != RN_OK)
        abort();
    rn_err_t e = rn_admin_create_topic(a, topic, partitions, 1, configs, 10000, err, sizeof err);
    if (e != RN_OK) {
        fprintf(stderr, "create %s: %s: %s\n", topic, rn_err_name(e), err);
        abort();
    }
    rn_admin_close(a);
    rn_conf_free(c);
}

size_t tc_key(uint64_t i, char *buf)
{
    return (size_t)sprintf(buf, "key-%08llu", (unsigned long long)i);
}

void tc_value(uint64_t i, uint8_t *buf)
{
    memcpy(buf, &i, sizeof i);
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    for (size_t k = sizeof i; k < TC_VALUE_SIZE; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[k] = (uint8_t)(x & 0x3f) + ' '; /* printable, compresses a little */
    }
}

bool tc_has_header(uint64_t i)
{
    return i % 997 == 0;
}

rn_err_t tc_send(rn_producer_t *p, const char *topic, int32_t partition, uint64_t i)
{
    char key[32], hv[32];
    uint8_t value[TC_VALUE_SIZE];
    size_t klen = tc_key(i, key);
    tc_value(i, value);
    rn_header_t h = {"id", 2, hv, snprintf(hv, sizeof hv, "h%llu", (unsigned long long)i)};
    rn_message_t m = {
        .topic = topic,
        .partition = partition,
        .key = key,
        .key_len = klen,
        .value = value,
        .value_len = sizeof value,
        .headers = tc_has_header(i) ? &h : NULL,
        .header_count = tc_has_header(i) ? 1 : 0,
        .opaque = (void *)(uintptr_t)i,
    };
    return rn_producer_send(p, &m, -1);
}

int32_t tc_partition_of(uint64_t i, int32_t partitions)
{
    char key[32];
    size_t n = tc_key(i, key);
    return (int32_t)(XXH3_64bits(key, n) % (uint64_t)partitions);
}

static bool check_record(const rn_record_view_t *r, uint64_t *index)
{
    if (r->value_len != TC_VALUE_SIZE || !r->value)
        return false;
    uint64_t i;
    memcpy(&i, r->value, sizeof i);
    uint8_t want[TC_VALUE_SIZE];
    tc_value(i, want);
    char key[32];
    size_t klen = tc_key(i, key);
    if (memcmp(want, r->value, TC_VALUE_SIZE) != 0 || r->key_len != (int32_t)klen ||
        memcmp(r->key, key, klen) != 0)
        return false;
    if (tc_has_header(i)) {
        char hv[32];
        int hl = snprintf(hv, sizeof hv, "h%llu", (unsigned long long)i);
        if (r->header_count != 1 || r->headers[0].key_len != 2 ||
            memcmp(r->headers[0].key, "id", 2) != 0 || r->headers[0].value_len != hl ||
            memcmp(r->headers[0].value, hv, (size_t)hl) != 0)
            return false;
    } else if (r->header_count != 0) {
        return false;
    }
    *index = i;
    return true;
}

void tc_read_back(const rn_hbroker_t *b, const char *topic, int32_t partitions,
                  const tc_sent_t *sent, uint64_t n, tc_check_t *out)
{
    memset(out, 0, sizeof *out);
    const char *pairs[] = {"auto.offset.reset=error", NULL};
    rn_conf_t *conf = tc_conf(b, pairs);
    rn_consumer_t *c;
    if (rn_consumer_new(conf, &c, NULL, 0) != RN_OK)
        abort();
    rn_conf_free(conf);
    for (int32_t p = 0; p < partitions; p++)
        rn_consumer_assign(c, topic, p, RN_OFFSET_BEGINNING);
    uint8_t *seen = calloc(n ? n : 1, 1);
    int64_t last_index[TC_MAX_PARTS];
    XXH3_state_t *hs[TC_MAX_PARTS];
    for (int32_t p = 0; p < partitions; p++) {
        last_index[p] = -1;
        hs[p] = XXH3_createState();
        XXH3_64bits_reset(hs[p]);
    }
    int64_t deadline = mono_ms() + 120000;
    for (;;) {
        const rn_record_view_t *recs;
        size_t cnt;
        rn_err_t e = rn_consumer_poll(c, 200, 10000, &recs, &cnt);
        if (e != RN_OK) {
            fprintf(stderr, "poll: %s\n", rn_err_name(e));
            out->bad++;
            break;
        }
        for (size_t k = 0; k < cnt; k++) {
            const rn_record_view_t *r = &recs[k];
            uint64_t i;
            int32_t p = r->partition;
            if (p < 0 || p >= partitions || !check_record(r, &i) || i >= n) {
                if (out->bad++ < 5)
                    fprintf(stderr, "bad record at %s/%d@%lld\n", topic, p, (long long)r->offset);
                continue;
            }
            if (seen[i]++) {
                if (out->duplicates++ < 5)
                    fprintf(stderr, "record %llu read twice (again at %d@%lld)\n",
                            (unsigned long long)i, p, (long long)r->offset);
                continue;
            }
            out->records++;
            out->per_part[p]++;
            XXH3_64bits_update(hs[p], r->value, (size_t)r->value_len);
            bool wrong = p != tc_partition_of(i, partitions) || (int64_t)i <= last_index[p] ||
                         (sent[i].reported && sent[i].err == RN_OK &&
                          (sent[i].partition != p || sent[i].offset != r->offset));
            if (wrong && out->bad++ < 5)
                fprintf(stderr,
                        "record %llu at %d@%lld: expected partition %d, after record %lld, "
                        "acked at %d@%lld\n",
                        (unsigned long long)i, p, (long long)r->offset, tc_partition_of(i, partitions),
                        (long long)last_index[p], sent[i].partition, (long long)sent[i].offset);
            last_index[p] = (int64_t)i;
        }
        bool all_end = true;
        for (int32_t p = 0; p < partitions && all_end; p++)
            all_end = rn_consumer_at_end(c, topic, p);
        if (all_end)
            break;
        if (mono_ms() > deadline) {
            fprintf(stderr, "read-back did not reach the end in time\n");
            out->bad++;
            break;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        if (sent[i].reported && sent[i].err == RN_OK && !seen[i] && out->acked_missing++ < 5)
            fprintf(stderr, "acknowledged record %llu (%d@%lld) not read back\n",
                    (unsigned long long)i, sent[i].partition, (long long)sent[i].offset);
    }
    for (int32_t p = 0; p < partitions; p++) {
        out->hash[p] = XXH3_64bits_digest(hs[p]);
        XXH3_freeState(hs[p]);
    }
    free(seen);
    rn_consumer_close(c);
}
