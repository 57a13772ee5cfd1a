/* Every job file under examples/ must parse and plan (what `runnel-processor --check` does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sql/plan.h"

static int check_dir(const char *dir, int *planned)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            bad += check_dir(path, planned);
            continue;
        }
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        char err[1024];
        rn_plan_t *p = NULL;
        if (rn_plan_load(path, &p, err, sizeof err) != RN_OK) {
            print_error("%s\n", err);
            bad++;
            continue;
        }
        char *text = NULL;
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        rn_plan_print(p, f);
        fclose(f);
        if (!strstr(text, "primary key: (")) {
            print_error("%s: plan printout incomplete:\n%s\n", path, text);
            bad++;
        }
        free(text);
        rn_plan_free(p);
        (*planned)++;
    }
    closedir(d);
    return bad;
}

static void test_examples_plan(void **state)
{
    (void)state;
    int planned = 0;
    assert_int_equal(check_dir(RN_EXAMPLES_DIR, &planned), 0);
    assert_true(planned >= 6); /* one per scenario of the seed article */
}

static void test_example_semantics(void **state)
{
    (void)state;
    char err[1024];
    rn_plan_t *p;
    assert_int_equal(rn_plan_load(RN_EXAMPLES_DIR "/fraud_alerts/fraud_alerts.sql", &p, err, sizeof err), RN_OK);
    assert_int_equal(p->window.kind, RN_WIN_TUMBLE);
    assert_int_equal(p->window.size_ms, 5 * 60000);
    assert_non_null(p->having);
    rn_plan_free(p);
    assert_int_equal(rn_plan_load(RN_EXAMPLES_DIR "/user_sessions/user_sessions.sql", &p, err, sizeof err), RN_OK);
    assert_int_equal(p->window.kind, RN_WIN_SESSION);
    assert_int_equal(p->window.gap_ms, 15 * 60000);
    rn_plan_free(p);
    assert_int_equal(rn_plan_load(RN_EXAMPLES_DIR "/page_views_hopping/page_views_hopping.sql", &p, err, sizeof err), RN_OK);
    assert_int_equal(p->window.kind, RN_WIN_HOP);
    assert_int_equal(p->window.slide_ms, 60000);
    assert_int_equal(p->window.size_ms, 600000);
    rn_plan_free(p);
    assert_int_equal(rn_plan_load(RN_EXAMPLES_DIR "/active_users/active_users.sql", &p, err, sizeof err), RN_OK);
    assert_int_equal(p->aggs[0].desc.kind, RN_AGG_COUNT_DISTINCT);
    rn_plan_free(p);
    assert_int_equal(rn_plan_load("/nonexistent/job.sql", &p, err, sizeof err), RN_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/job.sql"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_plan),
        cmocka_unit_test(test_example_semantics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
