/* kvfile.c (config files) and hist.c (latency histograms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hist.h"
#include "kvfile.h"

struct seen {
    int n;
    char keys[8][64];
    char values[8][64];
};

static rn_err_t collect(void *ctx, const char *key, const char *value, int line, char *errbuf,
                        size_t errlen)
{
    (void)line;
    struct seen *s = ctx;
    if (strcmp(key, "bad.key") == 0) {
        snprintf(errbuf, errlen, "unknown key '%s'", key);
        return RN_ERR_UNKNOWN_CONFIG;
    }
    snprintf(s->keys[s->n], 64, "%s", key);
    snprintf(s->values[s->n], 64, "%s", value);
    s->n++;
    return RN_OK;
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/rnkv-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_kvfile(void **state)
{
    (void)state;
    char *path = write_tmp("# comment\n\n  log.retention.ms = 1000  \nnode.id=3\nempty=\n");
    struct seen s = {0};
    char err[256] = "";
    assert_int_equal(rn_kvfile_read(path, collect, &s, err, sizeof err), RN_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "log.retention.ms");
    assert_string_equal(s.values[0], "1000");
    assert_string_equal(s.values[2], "");
    unlink(path);
    free(path);

    path = write_tmp("a=1\nno equals here\n");
    memset(&s, 0, sizeof s);
    assert_int_equal(rn_kvfile_read(path, collect, &s, err, sizeof err), RN_ERR_MALFORMED);
    assert_non_null(strstr(err, ":2:"));
    unlink(path);
    free(path);

    path = write_tmp("a=1\nbad.key=2\n");
    assert_int_equal(rn_kvfile_read(path, collect, &s, err, sizeof err), RN_ERR_UNKNOWN_CONFIG);
    assert_non_null(strstr(err, ":2: unknown key 'bad.key'"));
    unlink(path);
    free(path);

    assert_int_equal(rn_kvfile_read("/nonexistent/x.conf", collect, &s, err, sizeof err), RN_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/x.conf"));
}

static void test_hist_relative_error(void **state)
{
    (void)state;
    rn_hist_t *h = rn_hist_new();
    /* Every single value comes back within 1%. */
    for (uint64_t v = 1; v < (1ULL << 40); v = v * 3 / 2 + 1) {
        rn_hist_reset(h);
        rn_hist_record(h, v);
        rn_hist_record(h, v);
        uint64_t got = rn_hist_quantile(h, 0.5);
        double rel = fabs((double)got - (double)v) / (double)v;
        if (rel > 0.01)
            fail_msg("value %llu reported as %llu (%.3f%%)", (unsigned long long)v,
                     (unsigned long long)got, rel * 100);
    }
    /* Quantiles of a uniform 1..100000. */
    rn_hist_reset(h);
    for (uint64_t v = 1; v <= 100000; v++)
        rn_hist_record(h, v);
    assert_int_equal(rn_hist_count(h), 100000);
    assert_true(fabs((double)rn_hist_quantile(h, 0.99) - 99000) / 99000 < 0.01);
    assert_true(fabs((double)rn_hist_quantile(h, 0.5) - 50000) / 50000 < 0.01);
    assert_int_equal(rn_hist_max(h), 100000);
    assert_int_equal(rn_hist_min(h), 1);
    assert_true(fabs(rn_hist_mean(h) - 50000.5) < 1);
    rn_hist_t *h2 = rn_hist_new();
    rn_hist_record_n(h2, 1000000, 100000);
    rn_hist_merge(h, h2);
    assert_int_equal(rn_hist_count(h), 200000);
    assert_true(rn_hist_quantile(h, 0.75) > 990000);
    rn_hist_free(h2);
    rn_hist_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kvfile),
        cmocka_unit_test(test_hist_relative_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
