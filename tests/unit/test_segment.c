/*
 * segment.c: a .log of whole batches and its two indexes. Every offset is found in the batch
 * that holds it; index entries fall every index.interval.bytes on batch starts; a verified scan
 * stops at the first bad batch; recovery cuts a torn tail back to whole batches and reads only
 * from its restart point; truncation and seal/reopen keep next_offset and max_timestamp; and a
 * failed write leaves neither a partial batch nor a changed segment behind.
 */
#include <errno.h>
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

#include "batch.h"
#include "segment.h"
#include "varint.h"

#define BASE 1000u            /* base offset of the segment under test */
#define INTERVAL 1024u        /* index.interval.bytes */
#define INDEX_BYTES (64u << 10)
#define MAX_BATCHES 8192
#define EPOCH 7u

/* What the test appended, to check the segment against. */
struct appended {
    uint64_t base_offset;
    uint64_t last_offset;
    uint64_t pos;
    size_t size;
    int64_t max_timestamp;
};

struct fixture {
    char dir[4096];
    rn_batch_builder_t *builder;
    rn_buf_t buf;
    struct appended batches[MAX_BATCHES];
    size_t nbatches;
    uint8_t value[2u << 20];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/rn-segment-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir) || !(f->builder = rn_batch_builder_new())) {
        free(f);
        return -1;
    }
    for (size_t i = 0; i < sizeof f->value; i++)
        f->value[i] = (uint8_t)(i * 31 + 7);
    *state = f;
    return 0;
}


static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = rn_t_rmtree(f->dir);
    rn_batch_builder_free(f->builder);
    rn_buf_free(&f->buf);
    free(f);
    return rc;
}

/* ------------------------------------------------------------------ helpers ---- */

static char *log_path(const struct fixture *f)
{
    char *p = rn_seg_path(f->dir, BASE, ".log");
    assert_non_null(p);
    return p;
}

static off_t file_size(const struct fixture *f, const char *ext)
{
    char *p = rn_seg_path(f->dir, BASE, ext);
    assert_non_null(p);
    int64_t size = rn_t_file_size(p);
    assert_true(size >= 0);
    free(p);
    return (off_t)size;
}

static rn_seg_t *create_seg(struct fixture *f, const rn_io_t *io)
{
    rn_seg_t *seg;
    assert_int_equal(rn_seg_create(f->dir, BASE, INTERVAL, INDEX_BYTES, io ? io : rn_io_posix(),
                                   &seg),
                     RN_OK);
    f->nbatches = 0;
    return seg;
}

static rn_seg_t *open_seg(struct fixture *f)
{
    rn_seg_t *seg;
    assert_int_equal(rn_seg_open(f->dir, BASE, INTERVAL, INDEX_BYTES, rn_io_posix(), &seg),
                     RN_OK);
    return seg;
}

static void remove_files(const struct fixture *f)
{
    static const char *exts[] = {".log", ".index", ".timeindex"};
    for (size_t i = 0; i < 3; i++) {
        char *p = rn_seg_path(f->dir, BASE, exts[i]);
        assert_non_null(p);
        unlink(p);
        free(p);
    }
}

/* Builds one batch of nrec records of value_len bytes in f->buf, stamped at base_offset. */
static void build(struct fixture *f, uint32_t nrec, size_t value_len, int64_t ts,
                  uint64_t base_offset, rn_batch_header_t *h)
{
    rn_buf_reset(&f->buf);
    for (uint32_t r = 0; r < nrec; r++)
        assert_int_equal(rn_batch_builder_add(f->builder, ts + r, "k", 1, f->value, value_len,
                                              NULL, 0),
                         RN_OK);
    assert_int_equal(rn_batch_builder_finish(f->builder, &f->buf), RN_OK);
    rn_batch_stamp(f->buf.data, base_offset, EPOCH);
    assert_int_equal(rn_batch_validate(f->buf.data, f->buf.len, h), RN_OK);
}

/* Appends one batch at the segment's end and records it; returns rn_seg_append's result. */
static rn_err_t try_append(struct fixture *f, rn_seg_t *seg, uint32_t nrec, size_t value_len,
                           int64_t ts)
{
    rn_batch_header_t h;
    build(f, nrec, value_len, ts, seg->next_offset, &h);
    uint64_t pos = seg->size;
    rn_err_t err = rn_seg_append(seg, f->buf.data, &h);
    if (err == RN_OK) {
        assert_true(f->nbatches < MAX_BATCHES);
        f->batches[f->nbatches++] = (struct appended){
            h.base_offset, rn_batch_last_offset(&h), pos, rn_batch_total_size(&h),
            h.max_timestamp};
    }
    return err;
}

static void append(struct fixture *f, rn_seg_t *seg, uint32_t nrec, size_t value_len, int64_t ts)
{
    assert_int_equal(try_append(f, seg, nrec, value_len, ts), RN_OK);
}

/* n batches of 1-5 records of 60-400 bytes, timestamps growing with the batch number. */
static void append_mixed(struct fixture *f, rn_seg_t *seg, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = f->nbatches;
        append(f, seg, (uint32_t)(1 + k % 5), 60 + (k * 37) % 340, 1700000000000 + (int64_t)k * 10);
    }
}

static uint64_t end_of(const struct fixture *f, size_t nbatches)
{
    return nbatches ? f->batches[nbatches - 1].pos + f->batches[nbatches - 1].size : 0;
}

static int64_t max_ts_of(const struct fixture *f, size_t nbatches)
{
    int64_t m = -1;
    for (size_t i = 0; i < nbatches; i++)
        if (f->batches[i].max_timestamp > m)
            m = f->batches[i].max_timestamp;
    return m;
}

/* The batch that starts at pos, or -1. */
static ptrdiff_t batch_at(const struct fixture *f, size_t nbatches, uint64_t pos)
{
    for (size_t i = 0; i < nbatches; i++)
        if (f->batches[i].pos == pos)
            return (ptrdiff_t)i;
    return -1;
}

/*
 * The segment holds exactly the first n recorded batches: its fields, the file, and indexes
 * whose entries all start one of those batches (an entry at the very end may remain when it
 * names next_offset, which is where the next batch will start).
 */
static void assert_holds(const struct fixture *f, rn_seg_t *seg, size_t n)
{
    assert_int_equal(seg->size, end_of(f, n));
    assert_int_equal(seg->next_offset, n ? f->batches[n - 1].last_offset + 1 : BASE);
    assert_true(seg->max_timestamp == max_ts_of(f, n));
    assert_int_equal(file_size(f, ".log"), (off_t)seg->size);
    size_t count = rn_idx_count(seg->offset_index);
    for (size_t i = 0; i < count; i++) {
        rn_idx_entry_t e = rn_idx_get(seg->offset_index, i);
        if (e.value == seg->size) {
            assert_true((uint64_t)e.key == seg->next_offset);
            continue;
        }
        ptrdiff_t b = batch_at(f, n, e.value);
        assert_true(b >= 0);
        assert_true((uint64_t)e.key == f->batches[b].base_offset);
    }
    size_t tcount = rn_idx_count(seg->time_index);
    for (size_t i = 0; i < tcount; i++) {
        rn_idx_entry_t e = rn_idx_get(seg->time_index, i);
        assert_true(BASE + e.value <= seg->next_offset);
        /* Every record before BASE + value has a timestamp <= key. */
        for (size_t b = 0; b < n && f->batches[b].base_offset < BASE + e.value; b++)
            assert_true(f->batches[b].max_timestamp <= e.key);
    }
    uint64_t pos;
    rn_batch_header_t h;
    assert_int_equal(rn_seg_find(seg, seg->next_offset, &pos, &h), RN_ERR_NOT_FOUND);
}

static void assert_find_every_offset(const struct fixture *f, rn_seg_t *seg, size_t n)
{
    for (size_t b = 0; b < n; b++) {
        for (uint64_t off = f->batches[b].base_offset; off <= f->batches[b].last_offset; off++) {
            uint64_t pos = UINT64_MAX;
            rn_batch_header_t h;
            assert_int_equal(rn_seg_find(seg, off, &pos, &h), RN_OK);
            assert_int_equal(pos, f->batches[b].pos);
            assert_int_equal(h.base_offset, f->batches[b].base_offset);
            assert_int_equal(h.leader_epoch, EPOCH);
            assert_int_equal(rn_batch_total_size(&h), f->batches[b].size);
        }
    }
}

static void corrupt_byte(const struct fixture *f, uint64_t pos)
{
    char *p = log_path(f);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, (off_t)pos), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)pos), 1);
    close(fd);
    free(p);
}

static void truncate_log(const struct fixture *f, uint64_t len)
{
    char *p = log_path(f);
    assert_int_equal(truncate(p, (off_t)len), 0);
    free(p);
}

struct scan_count {
    size_t batches;
    uint64_t last_pos;
};

static bool count_cb(void *ctx, const rn_batch_header_t *h, uint64_t pos, const uint8_t *data)
{
    struct scan_count *c = ctx;
    assert_int_equal(rn_le_get64(data + RN_BATCH_OFF_BASE_OFFSET), h->base_offset);
    c->batches++;
    c->last_pos = pos;
    return true;
}

/* -------------------------------------------------------------------- tests ---- */

static void test_create_and_open_errors(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = NULL;
    assert_int_equal(rn_seg_open(f->dir, BASE, INTERVAL, INDEX_BYTES, rn_io_posix(), &seg),
                     RN_ERR_NOT_FOUND);
    seg = create_seg(f, NULL);
    assert_int_equal(seg->size, 0);
    assert_int_equal(seg->next_offset, BASE);
    assert_true(seg->max_timestamp == -1);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
    assert_int_equal(rn_seg_create(f->dir, BASE, INTERVAL, INDEX_BYTES, rn_io_posix(), &seg),
                     RN_ERR_EXISTS);
    char *p = rn_seg_path(f->dir, BASE, ".timeindex");
    assert_string_equal(p + strlen(f->dir), "/00000000000000001000.timeindex");
    free(p);
}

static void test_find_every_offset(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    uint64_t pos;
    rn_batch_header_t h;
    assert_int_equal(rn_seg_find(seg, BASE, &pos, &h), RN_ERR_NOT_FOUND);
    append_mixed(f, seg, 400);
    assert_true(rn_idx_count(seg->offset_index) > 20);
    assert_holds(f, seg, f->nbatches);
    assert_find_every_offset(f, seg, f->nbatches);
    /* Below the base: the first batch after it. */
    assert_int_equal(rn_seg_find(seg, 0, &pos, &h), RN_OK);
    assert_int_equal(pos, 0);
    assert_int_equal(h.base_offset, BASE);
    assert_int_equal(rn_seg_find(seg, UINT64_MAX, &pos, &h), RN_ERR_NOT_FOUND);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static void test_index_entry_every_interval(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 500);
    size_t count = rn_idx_count(seg->offset_index);
    assert_true(count >= seg->size / (INTERVAL + 4096) && count <= seg->size / INTERVAL);
    uint64_t prev_pos = 0;
    for (size_t i = 0; i < count; i++) {
        rn_idx_entry_t e = rn_idx_get(seg->offset_index, i);
        ptrdiff_t b = batch_at(f, f->nbatches, e.value);
        assert_true(b > 0);
        assert_true((uint64_t)e.key == f->batches[b].base_offset);
        /* At least an interval since the previous entry, and the batch before crossed it. */
        assert_true(e.value - prev_pos >= INTERVAL);
        assert_true(f->batches[b - 1].pos - prev_pos < INTERVAL);
        /* The time entry written with it covers exactly the batches before it. */
        rn_idx_entry_t t = rn_idx_get(seg->time_index, i);
        assert_int_equal(t.value, e.key - BASE);
        assert_true(t.key == max_ts_of(f, (size_t)b));
        prev_pos = e.value;
    }
    assert_int_equal(rn_idx_count(seg->time_index), count);
    /* No entry was due when the last batch was appended. */
    assert_true(f->batches[f->nbatches - 1].pos - prev_pos < INTERVAL);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static void test_scan_verify_stops_at_corruption(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 100);
    /* One batch larger than the scan's read chunk, so the scan has to grow its buffer. */
    append(f, seg, 2, sizeof f->value / 2 + 4096, 1800000000000);
    append_mixed(f, seg, 100);
    struct scan_count c = {0};
    rn_seg_scan_result_t res;
    assert_int_equal(rn_seg_scan(seg, 0, true, count_cb, &c, &res), RN_OK);
    assert_int_equal(res.stop, RN_OK);
    assert_false(res.stopped_by_cb);
    assert_int_equal(c.batches, f->nbatches);
    assert_int_equal(res.end_pos, seg->size);
    assert_int_equal(res.bytes_read, seg->size);

    /* A flipped byte in the records of batch 150 (after the large one). */
    const struct appended *bad = &f->batches[150];
    corrupt_byte(f, bad->pos + RN_BATCH_HEADER_SIZE + 5);
    memset(&c, 0, sizeof c);
    assert_int_equal(rn_seg_scan(seg, 0, true, count_cb, &c, &res), RN_OK);
    assert_int_equal(res.stop, RN_ERR_CHECKSUM);
    assert_int_equal(res.end_pos, bad->pos);
    assert_int_equal(c.batches, 150);
    /* Starting at a later batch boundary sees the same stop. */
    assert_int_equal(rn_seg_scan(seg, f->batches[120].pos, true, NULL, NULL, &res), RN_OK);
    assert_int_equal(res.stop, RN_ERR_CHECKSUM);
    assert_int_equal(res.end_pos, bad->pos);
    /* Without verify, the framing still holds and the scan goes to the end. */
    memset(&c, 0, sizeof c);
    assert_int_equal(rn_seg_scan(seg, 0, false, count_cb, &c, &res), RN_OK);
    assert_int_equal(res.stop, RN_OK);
    assert_int_equal(res.end_pos, seg->size);
    assert_int_equal(c.batches, f->nbatches);

    /* A broken magic byte stops even an unverified scan. */
    corrupt_byte(f, f->batches[180].pos + 16);
    assert_int_equal(rn_seg_scan(seg, 0, false, NULL, NULL, &res), RN_OK);
    assert_int_equal(res.stop, RN_ERR_BAD_MAGIC);
    assert_int_equal(res.end_pos, f->batches[180].pos);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static bool stop_at_third(void *ctx, const rn_batch_header_t *h, uint64_t pos,
                          const uint8_t *data)
{
    (void)h;
    (void)pos;
    (void)data;
    return ++*(int *)ctx < 3;
}

static void test_scan_stopped_by_callback(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 10);
    int calls = 0;
    rn_seg_scan_result_t res;
    assert_int_equal(rn_seg_scan(seg, 0, true, stop_at_third, &calls, &res), RN_OK);
    assert_true(res.stopped_by_cb);
    assert_int_equal(res.stop, RN_OK);
    assert_int_equal(calls, 3);
    assert_int_equal(res.end_pos, f->batches[2].pos);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

/* A fresh segment of the n mixed batches that append_mixed makes, closed as a crash leaves it. */
static void rebuild(struct fixture *f, size_t n)
{
    remove_files(f);
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, n);
    assert_int_equal(rn_seg_close(seg, false), RN_OK);
}

/*
 * A crash tore the last write. Wherever the cut falls - inside a header, inside the records,
 * a whole batch gone, or several - recovery keeps exactly the whole batches before it, whether
 * it trusts all of the index or none of it.
 */
static void test_recover_torn_tail(void **state)
{
    struct fixture *f = *state;
    const size_t n = 300;
    rebuild(f, n);
    const struct appended *last = &f->batches[n - 1];
    struct {
        uint64_t len;
        size_t keep;
    } cuts[] = {
        {last->pos + last->size - 1, n - 1},
        {last->pos + RN_BATCH_HEADER_SIZE + 3, n - 1},
        {last->pos + 20, n - 1},
        {last->pos + 1, n - 1},
        {last->pos, n - 1},
        {f->batches[n - 40].pos + 70, n - 40},
        {f->batches[3].pos + 2, 3},
    };
    uint64_t froms[] = {UINT64_MAX, 0};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        for (size_t k = 0; k < sizeof froms / sizeof froms[0]; k++) {
            rebuild(f, n);
            truncate_log(f, cuts[c].len);
            rn_seg_t *seg = open_seg(f);
            assert_int_equal(seg->size, cuts[c].len);
            uint64_t scanned, cut;
            assert_int_equal(rn_seg_recover(seg, froms[k], &scanned, &cut), RN_OK);
            assert_int_equal(cut, cuts[c].len - end_of(f, cuts[c].keep));
            assert_holds(f, seg, cuts[c].keep);
            assert_find_every_offset(f, seg, cuts[c].keep);
            /* Appends continue where the cut left the segment. */
            f->nbatches = cuts[c].keep;
            append_mixed(f, seg, 3);
            assert_holds(f, seg, cuts[c].keep + 3);
            assert_find_every_offset(f, seg, cuts[c].keep + 3);
            assert_int_equal(rn_seg_close(seg, false), RN_OK);
        }
    }
}

static void test_recover_from_middle_reads_less(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    /* About 3 MiB, so the scan from the start needs several of its 1 MiB reads. */
    while (seg->size < (3u << 20))
        append_mixed(f, seg, 100);
    size_t n = f->nbatches;
    size_t entries = rn_idx_count(seg->offset_index);
    assert_int_equal(rn_seg_close(seg, false), RN_OK);

    seg = open_seg(f);
    uint64_t scanned_all, cut;
    assert_int_equal(rn_seg_recover(seg, 0, &scanned_all, &cut), RN_OK);
    assert_int_equal(cut, 0);
    assert_int_equal(scanned_all, end_of(f, n));
    assert_holds(f, seg, n);
    assert_int_equal(rn_idx_count(seg->offset_index), entries);
    assert_int_equal(rn_seg_close(seg, false), RN_OK);

    seg = open_seg(f);
    uint64_t from = f->batches[n / 2].base_offset, scanned_mid;
    rn_idx_entry_t restart = rn_idx_get(seg->offset_index,
                                        (size_t)rn_idx_floor(seg->offset_index, (int64_t)from));
    assert_int_equal(rn_seg_recover(seg, from, &scanned_mid, &cut), RN_OK);
    assert_int_equal(cut, 0);
    assert_true(scanned_mid < scanned_all);
    /* It read from the last index entry at or below from_offset, and no earlier. */
    assert_int_equal(scanned_mid, end_of(f, n) - restart.value);
    assert_holds(f, seg, n);
    assert_int_equal(rn_idx_count(seg->offset_index), entries);
    assert_find_every_offset(f, seg, n);
    assert_int_equal(rn_seg_close(seg, false), RN_OK);

    /* From the end: only the last index interval is read. */
    seg = open_seg(f);
    uint64_t scanned_end;
    assert_int_equal(rn_seg_recover(seg, UINT64_MAX, &scanned_end, &cut), RN_OK);
    assert_true(scanned_end < INTERVAL + 4096);
    assert_holds(f, seg, n);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static void test_recover_cuts_at_corrupt_batch(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 200);
    assert_int_equal(rn_seg_close(seg, false), RN_OK);
    size_t n = f->nbatches;
    corrupt_byte(f, f->batches[150].pos + f->batches[150].size - 1);
    seg = open_seg(f);
    uint64_t scanned, cut;
    assert_int_equal(rn_seg_recover(seg, f->batches[100].base_offset, &scanned, &cut), RN_OK);
    assert_int_equal(cut, end_of(f, n) - f->batches[150].pos);
    assert_holds(f, seg, 150);
    assert_find_every_offset(f, seg, 150);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static void test_truncate_at_batch_boundary(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 300);
    size_t keep = 211;
    const struct appended *cut = &f->batches[keep];
    assert_int_equal(rn_seg_truncate(seg, cut->pos, cut->base_offset), RN_OK);
    assert_holds(f, seg, keep);
    assert_find_every_offset(f, seg, keep);
    for (size_t i = 0; i < rn_idx_count(seg->offset_index); i++)
        assert_true(rn_idx_get(seg->offset_index, i).key < (int64_t)cut->base_offset);
    uint64_t pos;
    rn_batch_header_t h;
    assert_int_equal(rn_seg_find(seg, cut->base_offset, &pos, &h), RN_ERR_NOT_FOUND);

    /* Appends reuse the offsets that were cut, and the indexes grow again from the cut. */
    f->nbatches = keep;
    append_mixed(f, seg, 100);
    assert_holds(f, seg, f->nbatches);
    assert_find_every_offset(f, seg, f->nbatches);

    /* Down to nothing. */
    assert_int_equal(rn_seg_truncate(seg, 0, BASE), RN_OK);
    assert_holds(f, seg, 0);
    assert_int_equal(rn_idx_count(seg->offset_index), 0);
    assert_int_equal(rn_idx_count(seg->time_index), 0);
    /* Past the end is refused. */
    assert_int_equal(rn_seg_truncate(seg, 1, BASE), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static void reopen_and_load_tail(struct fixture *f, rn_seg_t *seg, bool seal, bool trim)
{
    uint64_t next = seg->next_offset, size = seg->size;
    int64_t max_ts = seg->max_timestamp;
    size_t entries = rn_idx_count(seg->offset_index);
    if (seal)
        assert_int_equal(rn_seg_seal(seg), RN_OK);
    size_t time_entries = rn_idx_count(seg->time_index);
    assert_int_equal(rn_seg_close(seg, trim), RN_OK);
    if (trim) {
        assert_int_equal(file_size(f, ".index"), (off_t)(entries * RN_IDX_ENTRY_SIZE));
        assert_int_equal(file_size(f, ".timeindex"), (off_t)(time_entries * RN_IDX_ENTRY_SIZE));
    }
    seg = open_seg(f);
    assert_int_equal(seg->size, size);
    assert_int_equal(seg->next_offset, BASE); /* unknown until the tail is read */
    assert_int_equal(rn_idx_count(seg->offset_index), entries);
    assert_int_equal(rn_idx_count(seg->time_index), time_entries);
    assert_int_equal(rn_seg_load_tail(seg), RN_OK);
    assert_int_equal(seg->next_offset, next);
    assert_true(seg->max_timestamp == max_ts);
    assert_holds(f, seg, f->nbatches);
    assert_find_every_offset(f, seg, f->nbatches);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

static void test_seal_close_reopen_load_tail(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 257);
    size_t t = rn_idx_count(seg->time_index);
    assert_int_equal(rn_seg_seal(seg), RN_OK);
    /* Seal adds the entry that covers the whole segment. */
    assert_int_equal(rn_idx_count(seg->time_index), t + 1);
    rn_idx_entry_t sealed = rn_idx_get(seg->time_index, t);
    assert_true(sealed.key == seg->max_timestamp);
    assert_int_equal(BASE + sealed.value, seg->next_offset);
    /* Sealing twice adds nothing. */
    assert_int_equal(rn_seg_seal(seg), RN_OK);
    assert_int_equal(rn_idx_count(seg->time_index), t + 1);
    reopen_and_load_tail(f, seg, false, true);
}

static void test_seal_with_max_timestamp_in_the_middle(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 250);
    append(f, seg, 3, 100, 1900000000000);
    append_mixed(f, seg, 100);
    assert_true(seg->max_timestamp == 1900000000002);
    reopen_and_load_tail(f, seg, true, true);
}

static void test_reopen_without_seal_or_trim(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 120);
    append(f, seg, 1, 100, 1900000000000);
    append_mixed(f, seg, 40);
    reopen_and_load_tail(f, seg, false, false);
}

static void test_reopen_sealed_then_append_more(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    append_mixed(f, seg, 50);
    assert_int_equal(rn_seg_seal(seg), RN_OK);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
    seg = open_seg(f);
    assert_int_equal(rn_seg_load_tail(seg), RN_OK);
    append_mixed(f, seg, 50);
    assert_holds(f, seg, f->nbatches);
    reopen_and_load_tail(f, seg, true, true);
}

static void test_load_tail_empty(void **state)
{
    struct fixture *f = *state;
    rn_seg_t *seg = create_seg(f, NULL);
    reopen_and_load_tail(f, seg, true, true);
}

/* ---------------------------------------------------------------- fault io ---- */

struct fault_io {
    rn_io_t io;
    size_t partial;     /* bytes the failing write still writes (0: none) */
    int err;            /* errno of the failure; 0: no fault armed */
    bool fail_truncate; /* the cut-back after the failure fails too */
    int writes_failed;
};

static ssize_t fault_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    struct fault_io *ft = ctx;
    if (!ft->err)
        return pwrite(fd, buf, len, off);
    if (ft->partial) {
        /* A short write first, as a filling disk gives; the retry then fails. */
        size_t n = ft->partial < len ? ft->partial : len - 1;
        ft->partial = 0;
        return n ? pwrite(fd, buf, n, off) : 0;
    }
    errno = ft->err;
    ft->err = 0;
    ft->writes_failed++;
    return -1;
}

static int fault_ftruncate(void *ctx, int fd, off_t len)
{
    struct fault_io *ft = ctx;
    if (ft->fail_truncate) {
        ft->fail_truncate = false;
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, len);
}

static void fault_io_init(struct fault_io *ft)
{
    memset(ft, 0, sizeof *ft);
    ft->io = *rn_io_posix();
    ft->io.pwrite = fault_pwrite;
    ft->io.ftruncate = fault_ftruncate;
    ft->io.ctx = ft;
}

enum partial { NONE, ONE_BYTE, HEADER, HALF, ALL_BUT_ONE };

static size_t partial_bytes(enum partial p, size_t total)
{
    switch (p) {
    case NONE: return 0;
    case ONE_BYTE: return 1;
    case HEADER: return RN_BATCH_HEADER_SIZE;
    case HALF: return total / 2;
    case ALL_BUT_ONE: return total - 1;
    }
    return 0;
}

static void test_write_failure_leaves_no_partial_batch(void **state)
{
    struct fixture *f = *state;
    struct fault_io ft;
    fault_io_init(&ft);
    rn_seg_t *seg = create_seg(f, &ft.io);
    append_mixed(f, seg, 30);

    /* Part of a batch written, then the disk fills up (or fails). */
    struct {
        enum partial partial;
        int err;
        rn_err_t want;
    } faults[] = {
        {HALF, ENOSPC, RN_ERR_NO_SPACE},    {NONE, ENOSPC, RN_ERR_NO_SPACE},
        {ONE_BYTE, EDQUOT, RN_ERR_NO_SPACE}, {HEADER, EIO, RN_ERR_IO},
        {ALL_BUT_ONE, ENOSPC, RN_ERR_NO_SPACE},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        /* Far enough past the last index entry that the failing batch would get one. */
        while (seg->bytes_since_index < INTERVAL)
            append_mixed(f, seg, 1);
        uint64_t size = seg->size, next = seg->next_offset;
        int64_t max_ts = seg->max_timestamp;
        size_t entries = rn_idx_count(seg->offset_index);
        size_t time_entries = rn_idx_count(seg->time_index);
        rn_batch_header_t h;
        build(f, 4, 300, 1800000000000, next, &h);
        ft.partial = partial_bytes(faults[i].partial, rn_batch_total_size(&h));
        ft.err = faults[i].err;
        assert_int_equal(rn_seg_append(seg, f->buf.data, &h), faults[i].want);
        assert_int_equal(ft.writes_failed, (int)i + 1);
        assert_int_equal(seg->size, size);
        assert_int_equal(seg->next_offset, next);
        assert_true(seg->max_timestamp == max_ts);
        assert_int_equal(rn_idx_count(seg->offset_index), entries);
        assert_int_equal(rn_idx_count(seg->time_index), time_entries);
        assert_int_equal(file_size(f, ".log"), (off_t)size);
        /* The next append succeeds, and takes the index entry the failed one would have. */
        append(f, seg, 2, 200, 1700000000000 + (int64_t)f->nbatches * 10);
        assert_int_equal(rn_idx_count(seg->offset_index), entries + 1);
        assert_int_equal(rn_idx_get(seg->offset_index, entries).value, size);
        assert_holds(f, seg, f->nbatches);
    }
    rn_seg_scan_result_t res;
    assert_int_equal(rn_seg_scan(seg, 0, true, NULL, NULL, &res), RN_OK);
    assert_int_equal(res.stop, RN_OK);
    assert_int_equal(res.end_pos, seg->size);
    assert_find_every_offset(f, seg, f->nbatches);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

/* If even the cut-back fails, the next append overwrites the partial batch in place. */
static void test_write_failure_when_the_cut_fails_too(void **state)
{
    struct fixture *f = *state;
    struct fault_io ft;
    fault_io_init(&ft);
    rn_seg_t *seg = create_seg(f, &ft.io);
    append_mixed(f, seg, 30);
    uint64_t size = seg->size;
    rn_batch_header_t h;
    build(f, 5, 1000, 1800000000000, seg->next_offset, &h);
    ft.partial = rn_batch_total_size(&h) - 10;
    ft.err = ENOSPC;
    ft.fail_truncate = true;
    assert_int_equal(rn_seg_append(seg, f->buf.data, &h), RN_ERR_NO_SPACE);
    assert_int_equal(seg->size, size);
    assert_true(file_size(f, ".log") > (off_t)size); /* the partial batch stayed */
    /* A smaller batch now: garbage is left after it, which recovery must cut. */
    append(f, seg, 1, 50, 1700000000000 + (int64_t)f->nbatches * 10);
    assert_int_equal(rn_seg_close(seg, false), RN_OK);
    seg = open_seg(f);
    uint64_t scanned, cut;
    assert_int_equal(rn_seg_recover(seg, UINT64_MAX, &scanned, &cut), RN_OK);
    assert_true(cut > 0);
    assert_holds(f, seg, f->nbatches);
    assert_find_every_offset(f, seg, f->nbatches);
    assert_int_equal(rn_seg_close(seg, true), RN_OK);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_and_open_errors),
        T(test_find_every_offset),
        T(test_index_entry_every_interval),
        T(test_scan_verify_stops_at_corruption),
        T(test_scan_stopped_by_callback),
        T(test_recover_torn_tail),
        T(test_recover_from_middle_reads_less),
        T(test_recover_cuts_at_corrupt_batch),
        T(test_truncate_at_batch_boundary),
        T(test_seal_close_reopen_load_tail),
        T(test_seal_with_max_timestamp_in_the_middle),
        T(test_reopen_without_seal_or_trim),
        T(test_reopen_sealed_then_append_more),
        T(test_load_tail_empty),
        T(test_write_failure_leaves_no_partial_batch),
        T(test_write_failure_when_the_cut_fails_too),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
