/*
 * index.c: the sparse mmapped index. Lookups agree with a linear scan; appends that would
 * break the ordering or overflow the file are refused; and what a reopen accepts is exactly
 * the increasing prefix that was written - trimmed or preallocated, torn or overwritten.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "index.h"
#include "varint.h"

#define MAX_ENTRIES 1000
#define MAX_BYTES (MAX_ENTRIES * RN_IDX_ENTRY_SIZE)

struct fixture {
    char dir[4096];
    char path[4200];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/rn-index-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/00000000000000000000.index", f->dir);
    *state = f;
    return 0;
}


static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = rn_t_rmtree(f->dir);
    free(f);
    return rc;
}


/* Entry i of the reference series: gaps that vary so the search sees uneven keys. */
static int64_t key_of(size_t i)
{
    return 1000 + (int64_t)(i * 7 + (i * i) % 5);
}

static uint32_t value_of(size_t i)
{
    return 4096u * (uint32_t)(i + 1);
}

static void fill(rn_idx_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rn_idx_append(idx, key_of(i), value_of(i)), RN_OK);
}

static void assert_entries(const rn_idx_t *idx, size_t n)
{
    assert_int_equal(rn_idx_count(idx), n);
    for (size_t i = 0; i < n; i++) {
        rn_idx_entry_t e = rn_idx_get(idx, i);
        assert_true(e.key == key_of(i));
        assert_int_equal(e.value, value_of(i));
    }
}

static ptrdiff_t linear_floor(const rn_idx_t *idx, int64_t key)
{
    ptrdiff_t found = -1;
    for (size_t i = 0; i < rn_idx_count(idx); i++) {
        if (rn_idx_get(idx, i).key <= key)
            found = (ptrdiff_t)i;
    }
    return found;
}

/* Overwrites entry i in the file behind the index's back (what a torn page leaves). */
static void poke_entry(const char *path, size_t i, int64_t key, uint32_t value)
{
    uint8_t e[RN_IDX_ENTRY_SIZE];
    rn_le_put64(e, (uint64_t)key);
    rn_le_put32(e + 8, value);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, e, sizeof e, (off_t)(i * RN_IDX_ENTRY_SIZE)), sizeof e);
    close(fd);
}

static void test_floor_matches_linear_search(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    /* Empty: every key is below. */
    assert_int_equal(rn_idx_floor(idx, 0), -1);
    assert_int_equal(rn_idx_floor(idx, INT64_MAX), -1);

    /* Every count from 1 to 300 exercises odd and even search ranges. */
    for (size_t n = 1; n <= 300; n++) {
        assert_int_equal(rn_idx_append(idx, key_of(n - 1), value_of(n - 1)), RN_OK);
        int64_t last = key_of(n - 1);
        for (int64_t k = key_of(0) - 3; k <= last + 3; k++)
            assert_int_equal(rn_idx_floor(idx, k), linear_floor(idx, k));
    }
    assert_int_equal(rn_idx_floor(idx, INT64_MIN), -1);
    assert_int_equal(rn_idx_floor(idx, key_of(0) - 1), -1);
    assert_int_equal(rn_idx_floor(idx, key_of(0)), 0);
    assert_int_equal(rn_idx_floor(idx, key_of(299)), 299);
    assert_int_equal(rn_idx_floor(idx, INT64_MAX), 299);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_append_rejects_non_increasing(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_int_equal(rn_idx_append(idx, 100, 1000), RN_OK);
    assert_int_equal(rn_idx_append(idx, 100, 2000), RN_ERR_STATE); /* same key */
    assert_int_equal(rn_idx_append(idx, 99, 2000), RN_ERR_STATE);  /* smaller key */
    assert_int_equal(rn_idx_append(idx, 200, 1000), RN_ERR_STATE); /* same value */
    assert_int_equal(rn_idx_append(idx, 200, 999), RN_ERR_STATE);  /* smaller value */
    assert_int_equal(rn_idx_count(idx), 1);
    assert_int_equal(rn_idx_append(idx, 101, 1001), RN_OK);
    assert_int_equal(rn_idx_count(idx), 2);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_append_rejects_when_full(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    /* A size that is not a multiple of the entry size rounds down. */
    assert_int_equal(rn_idx_open(f->path, 5 * RN_IDX_ENTRY_SIZE + 7, &idx), RN_OK);
    for (size_t i = 0; i < 5; i++) {
        assert_false(rn_idx_full(idx));
        assert_int_equal(rn_idx_append(idx, key_of(i), value_of(i)), RN_OK);
    }
    assert_true(rn_idx_full(idx));
    assert_int_equal(rn_idx_append(idx, key_of(5), value_of(5)), RN_ERR_STATE);
    assert_entries(idx, 5);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
    assert_int_equal(rn_t_file_size(f->path), 5 * RN_IDX_ENTRY_SIZE);
}

static void test_open_rejects_room_for_fewer_than_two(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx = NULL;
    assert_int_equal(rn_idx_open(f->path, RN_IDX_ENTRY_SIZE, &idx), RN_ERR_INVALID_ARG);
    assert_null(idx);
}

static void test_reopen_after_trimmed_close(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    /* Open preallocates the whole file. */
    assert_int_equal(rn_t_file_size(f->path), MAX_BYTES);
    fill(idx, 37);
    assert_int_equal(rn_idx_sync(idx), RN_OK);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
    assert_int_equal(rn_t_file_size(f->path), 37 * RN_IDX_ENTRY_SIZE);

    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 37);
    /* Appends continue after the kept entries. */
    assert_int_equal(rn_idx_append(idx, key_of(37), value_of(37)), RN_OK);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 38);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_reopen_empty_trimmed_and_preallocated(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);
    /* All zeros: the first slot is not an entry. */
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_int_equal(rn_idx_count(idx), 0);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
    assert_int_equal(rn_t_file_size(f->path), 0);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_int_equal(rn_idx_count(idx), 0);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_reopen_after_untrimmed_close(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    fill(idx, 123);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);
    /* The zeros after the entries stay in the file and are not taken for entries. */
    assert_int_equal(rn_t_file_size(f->path), MAX_BYTES);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 123);
    assert_int_equal(rn_idx_floor(idx, INT64_MAX), 122);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);

    /* A single entry followed by zeros is kept too. */
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    fill(idx, 1);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 1);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_reopen_keeps_only_the_increasing_prefix(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    fill(idx, 50);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);

    /* Garbage from entry 40 on: a key that goes backwards, then a value that does. */
    poke_entry(f->path, 40, key_of(39) - 1, value_of(45));
    poke_entry(f->path, 41, 0x7fffffffffffull, 0xdeadbeef);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 40);
    assert_int_equal(rn_idx_floor(idx, INT64_MAX), 39);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);

    /* A value that repeats ends the prefix as well. */
    poke_entry(f->path, 20, key_of(20), value_of(19));
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 20);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
    assert_int_equal(rn_t_file_size(f->path), 20 * RN_IDX_ENTRY_SIZE);
}

/*
 * Entries past a break in the prefix are stale (a page of a crashed run that reached the disk
 * when the page before it did not). New appends must not join up with them on a later open:
 * an entry that resurfaced would point at a position that no longer starts a batch.
 */
static void test_stale_entries_past_the_prefix_do_not_come_back(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    fill(idx, 30);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);
    poke_entry(f->path, 10, 0, 0); /* a hole, as if the page never reached the disk */

    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 10);
    /* A different history from entry 10 on, with keys and values below the stale ones. */
    assert_int_equal(rn_idx_append(idx, key_of(9) + 1, value_of(9) + 1), RN_OK);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);

    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_int_equal(rn_idx_count(idx), 11);
    assert_true(rn_idx_get(idx, 10).key == key_of(9) + 1);
    assert_int_equal(rn_idx_floor(idx, key_of(29)), 10);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_truncate(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    fill(idx, 100);
    rn_idx_truncate(idx, 200); /* beyond the count: nothing changes */
    assert_entries(idx, 100);
    rn_idx_truncate(idx, 60);
    assert_entries(idx, 60);
    assert_int_equal(rn_idx_floor(idx, key_of(99)), 59);
    /* Appends continue from the cut, and may reuse keys that were cut off. */
    assert_int_equal(rn_idx_append(idx, key_of(60), value_of(60)), RN_OK);
    assert_entries(idx, 61);
    /* What the cut removed does not come back after an untrimmed close. */
    assert_int_equal(rn_idx_close(idx, false), RN_OK);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_entries(idx, 61);
    rn_idx_truncate(idx, 0);
    assert_int_equal(rn_idx_count(idx), 0);
    assert_int_equal(rn_idx_floor(idx, INT64_MAX), -1);
    assert_int_equal(rn_idx_close(idx, false), RN_OK);
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    assert_int_equal(rn_idx_count(idx), 0);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

static void test_open_larger_than_max_bytes(void **state)
{
    struct fixture *f = *state;
    rn_idx_t *idx;
    assert_int_equal(rn_idx_open(f->path, MAX_BYTES, &idx), RN_OK);
    fill(idx, 20);
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
    /* segment.index.bytes lowered below what the file holds: the first entries are kept. */
    assert_int_equal(rn_idx_open(f->path, 8 * RN_IDX_ENTRY_SIZE, &idx), RN_OK);
    assert_entries(idx, 8);
    assert_true(rn_idx_full(idx));
    assert_int_equal(rn_idx_close(idx, true), RN_OK);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_floor_matches_linear_search),
        T(test_append_rejects_non_increasing),
        T(test_append_rejects_when_full),
        T(test_open_rejects_room_for_fewer_than_two),
        T(test_reopen_after_trimmed_close),
        T(test_reopen_empty_trimmed_and_preallocated),
        T(test_reopen_after_untrimmed_close),
        T(test_reopen_keeps_only_the_increasing_prefix),
        T(test_stale_entries_past_the_prefix_do_not_come_back),
        T(test_truncate),
        T(test_open_larger_than_max_bytes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
