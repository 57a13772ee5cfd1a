/* processor/state/winstate.c and snapshot.c: keyed groups, closing order, state encoding,
 * snapshot files (atomic write, checksum, corruption is a clear error). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/snapshot.h"
#include "state/winstate.h"

static const rn_agg_desc_t AGGS[] = {{RN_AGG_COUNT_STAR, RN_T_NULL, RN_T_BIGINT},
                                     {RN_AGG_MAX, RN_T_TEXT, RN_T_TEXT}};
static const rn_type_t KEYS[] = {RN_T_TEXT, RN_T_BIGINT};

static rn_ws_t *mkws(rn_win_kind_t kind, bool dirty)
{
    rn_ws_config_t cfg = {kind, AGGS, 2, KEYS, 2, dirty};
    rn_ws_t *ws;
    assert_int_equal(rn_ws_new(&cfg, &ws), RN_OK);
    return ws;
}

static void key(rn_buf_t *b, const char *s, int64_t i, bool null_i)
{
    rn_buf_reset(b);
    rn_value_t t = rn_val_text(s, strlen(s));
    rn_value_t n = null_i ? rn_val_null(RN_T_BIGINT) : rn_val_int(RN_T_BIGINT, i);
    assert_int_equal(rn_ws_key_append(b, &t), RN_OK);
    assert_int_equal(rn_ws_key_append(b, &n), RN_OK);
}

static rn_ws_group_t *get(rn_ws_t *ws, int64_t start, const char *s, int64_t i, const char *max)
{
    rn_buf_t b = RN_BUF_INIT;
    key(&b, s, i, false);
    rn_ws_group_t *g;
    assert_int_equal(rn_ws_get(ws, start, start + 10, b.data, b.len, rn_ws_key_hash(b.data, b.len), &g), RN_OK);
    rn_value_t m = rn_val_text(max, strlen(max));
    assert_int_equal(rn_agg_update(&AGGS[0], &rn_ws_accs(g)[0], NULL), RN_OK);
    assert_int_equal(rn_agg_update(&AGGS[1], &rn_ws_accs(g)[1], &m), RN_OK);
    rn_ws_touch(ws, g);
    rn_buf_free(&b);
    return g;
}

typedef struct seen {
    char what[1200][64];
    int n;
    const rn_ws_t *ws;
} seen_t;

static rn_err_t note(void *ctx, rn_ws_group_t *g)
{
    seen_t *s = ctx;
    rn_value_t k[2];
    rn_ws_key_values(s->ws, g, k);
    rn_value_t c = rn_agg_result(&AGGS[0], &rn_ws_accs(g)[0]);
    rn_value_t m = rn_agg_result(&AGGS[1], &rn_ws_accs(g)[1]);
    if (s->n >= 1200)
        fail_msg("too many groups");
    snprintf(s->what[s->n++], 64, "%lld:%.*s/%s:%lld:%.*s", (long long)rn_ws_start(g), (int)k[0].len,
             k[0].u.s, k[1].is_null ? "null" : "n", (long long)c.u.i, (int)m.len, m.u.s);
    return RN_OK;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_groups_and_closing(void **state)
{
    (void)state;
    rn_ws_t *ws = mkws(RN_WIN_TUMBLE, false);
    for (int i = 0; i < 5000; i++) { /* enough groups to grow the table */
        char k[16];
        snprintf(k, sizeof k, "k%d", i % 1000);
        get(ws, (i / 1000) * 10, k, 7, "x");
    }
    assert_int_equal(rn_ws_count(ws), 5000); /* 1000 keys x 5 windows */
    assert_true(rn_ws_next_end(ws) == 10);
    get(ws, 0, "k1", 7, "zz");
    seen_t s = {.ws = ws};
    assert_int_equal(rn_ws_close_until(ws, 9, note, &s), RN_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(rn_ws_close_until(ws, 10, note, &s), RN_OK);
    assert_int_equal(s.n, 1000);
    qsort(s.what, (size_t)s.n, 64, cmp);
    assert_string_equal(s.what[0], "0:k0/n:1:x");
    assert_string_equal(s.what[1], "0:k1/n:2:zz");
    assert_int_equal(rn_ws_count(ws), 4000);
    assert_true(rn_ws_next_end(ws) == 20);
    rn_ws_free(ws); /* frees the remaining groups (ASan checks) */

    /* NULL keys group together and decode back as NULL */
    ws = mkws(RN_WIN_NONE, true);
    rn_buf_t b = RN_BUF_INIT;
    key(&b, "a", 0, true);
    rn_ws_group_t *g1, *g2;
    assert_int_equal(rn_ws_get(ws, 0, 0, b.data, b.len, rn_ws_key_hash(b.data, b.len), &g1), RN_OK);
    assert_int_equal(rn_ws_get(ws, 0, 0, b.data, b.len, rn_ws_key_hash(b.data, b.len), &g2), RN_OK);
    assert_ptr_equal(g1, g2);
    rn_value_t k[2];
    rn_ws_key_values(ws, g1, k);
    assert_true(k[1].is_null);
    assert_int_equal(k[1].type, RN_T_BIGINT);
    assert_int_equal(rn_ws_close_until(ws, INT64_MAX, note, &s), RN_OK); /* never closes */
    assert_int_equal(rn_ws_count(ws), 1);
    rn_buf_free(&b);
    rn_ws_free(ws);
}

static void test_dirty_list(void **state)
{
    (void)state;
    rn_ws_t *ws = mkws(RN_WIN_TUMBLE, true);
    get(ws, 0, "a", 1, "x");
    get(ws, 0, "b", 1, "x");
    get(ws, 0, "a", 1, "y");
    seen_t s = {.ws = ws};
    assert_int_equal(rn_ws_each_dirty(ws, note, &s), RN_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.what[0], "0:a/n:2:y"); /* oldest change first */
    assert_int_equal(rn_ws_each_dirty(ws, note, &s), RN_OK);
    assert_int_equal(s.n, 2);
    get(ws, 10, "c", 1, "x");
    assert_int_equal(rn_ws_close_until(ws, 20, NULL, NULL), RN_OK); /* closing drops it */
    assert_int_equal(rn_ws_each_dirty(ws, note, &s), RN_OK);
    assert_int_equal(s.n, 2);
    rn_ws_free(ws);
}

static rn_err_t count_retract(void *ctx, rn_ws_group_t *g)
{
    (void)g;
    (*(int *)ctx)++;
    return RN_OK;
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    rn_win_kind_t kinds[] = {RN_WIN_TUMBLE, RN_WIN_SESSION, RN_WIN_NONE};
    for (int k = 0; k < 3; k++) {
        rn_ws_t *ws = mkws(kinds[k], true);
        rn_buf_t b = RN_BUF_INIT;
        for (int i = 0; i < 300; i++) {
            char name[16];
            snprintf(name, sizeof name, "u%d", i % 37);
            key(&b, name, i % 3, i % 5 == 0);
            uint64_t h = rn_ws_key_hash(b.data, b.len);
            rn_ws_group_t *g;
            int retracted = 0;
            if (kinds[k] == RN_WIN_SESSION) {
                assert_int_equal(rn_ws_session(ws, b.data, b.len, h, i * 7 % 500, 20, INT64_MIN,
                                               count_retract, &retracted, &g), RN_OK);
            } else {
                int64_t st = kinds[k] == RN_WIN_NONE ? 0 : (i % 4) * 10;
                assert_int_equal(rn_ws_get(ws, st, kinds[k] == RN_WIN_NONE ? 0 : st + 10, b.data, b.len, h, &g), RN_OK);
            }
            rn_value_t m = rn_val_text(name, strlen(name));
            rn_agg_update(&AGGS[0], &rn_ws_accs(g)[0], NULL);
            rn_agg_update(&AGGS[1], &rn_ws_accs(g)[1], &m);
            if (i % 2)
                rn_ws_touch(ws, g);
            if (i % 3 == 0)
                rn_ws_set_emitted(g, true);
        }
        rn_buf_t enc = RN_BUF_INIT, enc2 = RN_BUF_INIT;
        assert_int_equal(rn_ws_write(ws, &enc), RN_OK);
        rn_ws_t *back = mkws(kinds[k], true);
        const uint8_t *p = enc.data;
        assert_int_equal(rn_ws_read(back, &p, enc.data + enc.len), RN_OK);
        assert_ptr_equal(p, enc.data + enc.len);
        assert_int_equal(rn_ws_count(back), rn_ws_count(ws));
        /* closing both yields the same groups */
        seen_t s1 = {.ws = ws}, s2 = {.ws = back};
        if (kinds[k] != RN_WIN_NONE) {
            assert_int_equal(rn_ws_close_until(ws, 30, note, &s1), RN_OK);
            assert_int_equal(rn_ws_close_until(back, 30, note, &s2), RN_OK);
            assert_int_equal(s1.n, s2.n);
            qsort(s1.what, (size_t)s1.n, 64, cmp);
            qsort(s2.what, (size_t)s2.n, 64, cmp);
            for (int i = 0; i < s1.n; i++)
                assert_string_equal(s1.what[i], s2.what[i]);
        }
        s1.n = s2.n = 0;
        assert_int_equal(rn_ws_each_dirty(ws, note, &s1), RN_OK);
        assert_int_equal(rn_ws_each_dirty(back, note, &s2), RN_OK);
        assert_int_equal(s1.n, s2.n);
        /* every truncation of the encoding is refused, never a crash */
        for (size_t cut = 0; cut < enc.len; cut += 1 + cut / 7) {
            rn_ws_t *t = mkws(kinds[k], true);
            const uint8_t *q = enc.data;
            assert_int_equal(rn_ws_read(t, &q, enc.data + cut), RN_ERR_CORRUPT);
            rn_ws_free(t);
        }
        rn_buf_free(&enc);
        rn_buf_free(&enc2);
        rn_buf_free(&b);
        rn_ws_free(ws);
        rn_ws_free(back);
    }
}

static char *tmpdir(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *d = malloc(4096);
    snprintf(d, 4096, "%s/proc-snap-XXXXXX", base);
    assert_non_null(mkdtemp(d));
    return d;
}

static void test_snapshot_files(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[512];
    rn_buf_t out = RN_BUF_INIT;
    assert_int_equal(rn_snap_read(dir, 1, &out, err, sizeof err), RN_ERR_NOT_FOUND);
    assert_true(rn_snap_latest(dir) == 0);
    const char payload[] = "window state bytes";
    assert_int_equal(rn_snap_write(dir, 1, payload, sizeof payload, err, sizeof err), RN_OK);
    assert_int_equal(rn_snap_write(dir, 2, payload, 5, err, sizeof err), RN_OK);
    assert_true(rn_snap_latest(dir) == 2);
    assert_int_equal(rn_snap_read(dir, 1, &out, err, sizeof err), RN_OK);
    assert_int_equal(out.len, sizeof payload);
    assert_memory_equal(out.data, payload, sizeof payload);

    /* flip every byte of the file in turn: each is detected */
    char path[4096];
    rn_snap_path(dir, 1, path, sizeof path);
    FILE *f = fopen(path, "rb");
    unsigned char file[256];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    assert_int_equal(n, 32 + sizeof payload);
    for (size_t i = 0; i < n; i++) {
        file[i] ^= 0x20;
        f = fopen(path, "wb");
        fwrite(file, 1, n, f);
        fclose(f);
        rn_err_t e = rn_snap_read(dir, 1, &out, err, sizeof err);
        if (e != RN_ERR_CORRUPT)
            fail_msg("byte %zu flipped: %d", i, e);
        assert_non_null(strstr(err, "is corrupt"));
        assert_non_null(strstr(err, path));
        file[i] ^= 0x20;
    }
    /* truncated, extended */
    f = fopen(path, "wb");
    fwrite(file, 1, n - 1, f);
    fclose(f);
    assert_int_equal(rn_snap_read(dir, 1, &out, err, sizeof err), RN_ERR_CORRUPT);
    assert_non_null(strstr(err, "truncated payload"));
    f = fopen(path, "wb");
    fwrite(file, 1, n, f);
    fputc(0, f);
    fclose(f);
    assert_int_equal(rn_snap_read(dir, 1, &out, err, sizeof err), RN_ERR_CORRUPT);
    /* a newer format version is named */
    file[4] = 9;
    f = fopen(path, "wb");
    fwrite(file, 1, n, f);
    fclose(f);
    assert_int_equal(rn_snap_read(dir, 1, &out, err, sizeof err), RN_ERR_CORRUPT);
    assert_non_null(strstr(err, "format version 9"));

    /* prune keeps one epoch and removes leftovers of a crashed write */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/.snapshot-%020d.tmp", dir, 3);
    f = fopen(tmp, "wb");
    fclose(f);
    rn_snap_prune(dir, 2);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rn_snap_read(dir, 2, &out, err, sizeof err), RN_OK);
    rn_snap_prune(dir, 0);
    rn_buf_free(&out);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_and_closing),
        cmocka_unit_test(test_dirty_list),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_snapshot_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
