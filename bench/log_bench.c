/*
 * log_bench.c - runnel-log-bench: the storage engine alone, against the disk it runs on.
 *
 *   runnel-log-bench [--mb N] [--sync-mb N] [--rounds N] [--dir DIR] [--batch-kb N]
 *                    [--record-bytes N] [--lookups N] [--validate] [--disk dd|c|none]
 *                    [--keep] [--json]
 *
 * Measures, in one run and on one file system:
 *   disk      sequential write bandwidth: `dd if=/dev/zero bs=1M count=N conv=fdatasync`
 *             (or, with --disk c, the same with write() + fdatasync() from here)
 *   append    N MiB of ~16 KiB batches of 100-byte records through rn_log_append with the
 *             default flush policy, plus one rn_log_flush at the end, inside the timing
 *   lookup    rn_log_read of random offsets with max_bytes 1 over the log "append" wrote
 *   group     flush.messages=1 as a broker runs it: the main thread appends, a second thread
 *             runs rn_log_sync_run; a batch counts only once the sync that covers it has ended
 * and prints MB/s (10^6 bytes, as dd does) and records/s, and the append rate as a percentage
 * of the disk's. --json adds one JSON object as the last line.
 *
 * Page-cache writes are noisy in a VM whose free memory goes back to the host (virtio-balloon
 * free page reporting): the first writer to touch returned memory pays the hypervisor's page
 * faults. So an unmeasured write pass goes first, then disk and append alternate for --rounds
 * rounds, and the percentage compares the medians (each round's figures are printed too).
 *
 * One batch is built with rn_batch_builder and appended again and again: rn_log_append stamps
 * base_offset and leader_epoch in place, which the checksum does not cover, so the same bytes
 * are a valid new batch each time. --validate adds the broker's rn_batch_validate per batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "batch.h"
#include "clock.h"
#include "log.h"

#define MB 1e6

struct opts {
    uint64_t mb;          /* MiB appended in the no-fsync run, and written by the disk test */
    uint64_t sync_mb;     /* MiB appended in the group-commit run */
    uint64_t rounds;      /* disk + append measurements, alternating */
    const char *dir;
    size_t batch_bytes;
    size_t record_bytes;
    uint64_t lookups;
    bool validate;
    const char *disk;     /* "dd", "c" or "none" */
    bool keep;
    bool json;
};

struct batch {
    uint8_t *data;
    size_t len;
    uint32_t records;
};

static void die(const char *what, rn_err_t err)
{
    fprintf(stderr, "runnel-log-bench: %s: %s\n", what, rn_err_str(err));
    exit(1);
}

static double secs_since(int64_t start_ns)
{
    return (double)(rn_now_ns() - start_ns) / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: runnel-log-bench [--mb N] [--sync-mb N] [--rounds N] [--dir DIR]\n"
            "                        [--batch-kb N] [--record-bytes N] [--lookups N] [--validate]\n"
            "                        [--disk dd|c|none] [--keep] [--json]\n"
            "  --mb N            MiB to append without per-batch fsync, and for the disk test "
            "(1024)\n"
            "  --sync-mb N       MiB to append with flush.messages=1 and group commit (256)\n"
            "  --rounds N        alternating disk and append measurements; medians compared (5)\n"
            "  --dir DIR         where to create the temporary log ($TMPDIR or /tmp)\n"
            "  --batch-kb N      batch size in KiB (16)\n"
            "  --record-bytes N  record value size (100)\n"
            "  --lookups N       random-offset reads (200000)\n"
            "  --validate        also run rn_batch_validate on every batch, as a broker does\n"
            "  --disk dd|c|none  how to measure the disk: dd conv=fdatasync (default),\n"
            "                    write()+fdatasync() from this program, or not at all\n"
            "  --keep            leave the files behind\n"
            "  --json            print one JSON object as the last line\n");
}

static uint64_t parse_u64(const char *flag, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0) {
        fprintf(stderr, "runnel-log-bench: %s wants a positive integer, not '%s'\n", flag, s);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    const char *tmp = getenv("TMPDIR");
    *o = (struct opts){1024, 256, 5, tmp && *tmp ? tmp : "/tmp", 16 << 10, 100, 200000,
                       false, "dd", false, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (!strcmp(a, "--validate"))
            o->validate = true, takes = false;
        else if (!strcmp(a, "--keep"))
            o->keep = true, takes = false;
        else if (!strcmp(a, "--json"))
            o->json = true, takes = false;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        } else if (!v) {
            usage();
            exit(2);
        } else if (!strcmp(a, "--mb"))
            o->mb = parse_u64(a, v);
        else if (!strcmp(a, "--sync-mb"))
            o->sync_mb = parse_u64(a, v);
        else if (!strcmp(a, "--rounds"))
            o->rounds = parse_u64(a, v);
        else if (!strcmp(a, "--dir"))
            o->dir = v;
        else if (!strcmp(a, "--batch-kb"))
            o->batch_bytes = (size_t)parse_u64(a, v) << 10;
        else if (!strcmp(a, "--record-bytes"))
            o->record_bytes = (size_t)parse_u64(a, v);
        else if (!strcmp(a, "--lookups"))
            o->lookups = parse_u64(a, v);
        else if (!strcmp(a, "--disk") &&
                 (!strcmp(v, "dd") || !strcmp(v, "c") || !strcmp(v, "none")))
            o->disk = v;
        else {
            usage();
            exit(2);
        }
        if (takes)
            i++;
    }
}

/* One batch of record_bytes-sized values, as many as fit in batch_bytes. */
static struct batch build_batch(const struct opts *o)
{
    rn_batch_builder_t *b = rn_batch_builder_new();
    uint8_t *value = malloc(o->record_bytes);
    if (!b || !value)
        die("build batch", RN_ERR_NOMEM);
    for (size_t i = 0; i < o->record_bytes; i++)
        value[i] = (uint8_t)('a' + i % 26);
    int64_t ts = rn_clock_wall_ms(rn_clock_system());
    /* ~ record_bytes + 8 bytes of framing per record; stop before the batch would pass the size */
    while (rn_batch_builder_count(b) == 0 ||
           rn_batch_builder_size(b) + o->record_bytes + 8 <= o->batch_bytes) {
        rn_err_t err = rn_batch_builder_add(b, ts, NULL, 0, value, o->record_bytes, NULL, 0);
        if (err != RN_OK)
            die("build batch", err);
    }
    rn_buf_t out = RN_BUF_INIT;
    rn_err_t err = rn_batch_builder_finish(b, &out);
    if (err != RN_OK)
        die("build batch", err);
    rn_batch_header_t h;
    if ((err = rn_batch_validate(out.data, out.len, &h)) != RN_OK)
        die("validate batch", err);
    rn_batch_builder_free(b);
    free(value);
    return (struct batch){out.data, out.len, h.record_count};
}

static rn_log_t *open_log(const char *dir, const rn_log_config_t *cfg)
{
    rn_log_t *log;
    char errbuf[256] = "";
    rn_err_t err = rn_log_open(dir, cfg, NULL, &log, errbuf, sizeof errbuf);
    if (err != RN_OK) {
        fprintf(stderr, "runnel-log-bench: open %s: %s %s\n", dir, rn_err_str(err), errbuf);
        exit(1);
    }
    return log;
}

static void append_one(rn_log_t *log, struct batch *b, bool validate)
{
    if (validate) {
        rn_batch_header_t h;
        rn_err_t err = rn_batch_validate(b->data, b->len, &h);
        if (err != RN_OK)
            die("validate", err);
    }
    rn_log_append_info_t info;
    rn_err_t err = rn_log_append(log, b->data, b->len, 0, &info);
    if (err != RN_OK)
        die("append", err);
}

/* ------------------------------------------------------------------ files ---- */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Commits the file system's journal, so that the discards of what was just removed (ext4
 * mounted with -o discard issues them at commit) are not paid by the next measured fsync.
 */
static void settle(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

/* ------------------------------------------------------------------- disk ---- */

struct disk_result {
    const char *method;
    double mb_per_s;
    double secs;
};

/* dd prints "N bytes (...) copied, S s, R MB/s" on stderr; we recompute R from N and S. */
static bool disk_dd(const char *path, uint64_t mib, struct disk_result *r)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd,
             "LC_ALL=C dd if=/dev/zero of='%s' bs=1M count=%" PRIu64 " conv=fdatasync 2>&1",
             path, mib);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    char line[512];
    bool ok = false;
    while (fgets(line, sizeof line, p)) {
        unsigned long long bytes;
        double secs;
        const char *c = strstr(line, "copied, ");
        if (sscanf(line, "%llu bytes", &bytes) == 1 && c &&
            sscanf(c, "copied, %lf s", &secs) == 1 && secs > 0) {
            r->mb_per_s = (double)bytes / MB / secs;
            r->secs = secs;
            ok = true;
        }
    }
    ok = pclose(p) == 0 && ok;
    r->method = "dd if=/dev/zero bs=1M conv=fdatasync";
    return ok;
}

static bool disk_c(const char *path, uint64_t mib, struct disk_result *r)
{
    size_t chunk = 1u << 20;
    uint8_t *buf = calloc(1, chunk);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!buf || fd < 0) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return false;
    }
    int64_t t0 = rn_now_ns();
    bool ok = true;
    for (uint64_t i = 0; i < mib && ok; i++) {
        size_t done = 0;
        while (done < chunk && ok) {
            ssize_t n = write(fd, buf + done, chunk - done);
            if (n < 0 && errno != EINTR)
                ok = false;
            else if (n > 0)
                done += (size_t)n;
        }
    }
    ok = ok && fdatasync(fd) == 0;
    r->secs = secs_since(t0);
    close(fd);
    free(buf);
    r->mb_per_s = (double)(mib << 20) / MB / r->secs;
    r->method = "write(1 MiB) + fdatasync";
    return ok;
}

static bool measure_disk(const struct opts *o, const char *work, struct disk_result *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/disk-test", work);
    bool ok = !strcmp(o->disk, "dd") ? disk_dd(path, o->mb, r) : disk_c(path, o->mb, r);
    if (!ok && !strcmp(o->disk, "dd")) {
        fprintf(stderr, "runnel-log-bench: dd failed; measuring with write()+fdatasync()\n");
        ok = disk_c(path, o->mb, r);
    }
    unlink(path);
    settle(work);
    return ok;
}

/*
 * The log's own write pattern without the log: the same batch bytes with one pwrite each,
 * then one fdatasync. Between this and "append" lies what the engine costs; between this and
 * the disk figure lies what writing 16 KiB at a time instead of 1 MiB costs.
 */
static bool bench_raw(const char *work, const struct batch *b, uint64_t nbatches, double *mbs,
                      double *write_secs, double *sync_secs)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw-test", work);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    bool ok = true;
    int64_t t0 = rn_now_ns();
    for (uint64_t i = 0; i < nbatches && ok; i++)
        ok = rn_io_pwrite_all(rn_io_posix(), fd, b->data, b->len, (off_t)(i * b->len)) == 0;
    int64_t t1 = rn_now_ns();
    ok = ok && fdatasync(fd) == 0;
    *write_secs = (double)(t1 - t0) / 1e9;
    *sync_secs = secs_since(t1);
    *mbs = (double)(nbatches * b->len) / MB / (*write_secs + *sync_secs);
    close(fd);
    unlink(path);
    settle(work);
    return ok;
}

/* ---------------------------------------------------------- append, no fsync ---- */

struct append_result {
    uint64_t batches;
    uint64_t records;
    uint64_t bytes;
    double secs;
    double flush_secs;
};

static struct append_result bench_append(rn_log_t *log, struct batch *b, uint64_t nbatches,
                                         bool validate)
{
    struct append_result r = {nbatches, nbatches * b->records, nbatches * b->len, 0, 0};
    int64_t t0 = rn_now_ns();
    for (uint64_t i = 0; i < nbatches; i++)
        append_one(log, b, validate);
    int64_t t1 = rn_now_ns();
    rn_err_t err = rn_log_flush(log);
    if (err != RN_OK)
        die("flush", err);
    r.secs = secs_since(t0);
    r.flush_secs = secs_since(t1);
    return r;
}

/* ------------------------------------------------------------- group commit ---- */

/*
 * The fsync thread: takes one sync at a time from the owner, runs it, hands the result back.
 * @locks: mu guards job, result, done and quit.
 */
struct syncer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rn_log_sync_t *job;
    rn_err_t result;
    bool done;
    bool quit;
};

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->job && !s->quit)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit)
            break;
        rn_log_sync_t *job = s->job;
        pthread_mutex_unlock(&s->mu);
        rn_err_t err = rn_log_sync_run(job);
        pthread_mutex_lock(&s->mu);
        s->job = NULL;
        s->result = err;
        s->done = true;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct group_result {
    uint64_t batches;
    uint64_t records;
    uint64_t bytes;
    double secs;
    uint64_t syncs;
    double ack_p50_ms;
    double ack_p99_ms;
    double ack_max_ms;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static struct group_result bench_group_commit(rn_log_t *log, struct batch *b, uint64_t nbatches,
                                              bool validate)
{
    struct syncer s = {.result = RN_OK};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_t tid;
    if (pthread_create(&tid, NULL, syncer_main, &s) != 0)
        die("pthread_create", RN_ERR_IO);

    /* appended_ns[i]: when batch i was appended; its last offset is base + (i+1)*records - 1 */
    int64_t *appended_ns = malloc(nbatches * sizeof *appended_ns);
    int64_t *ack_ns = malloc(nbatches * sizeof *ack_ns);
    if (!appended_ns || !ack_ns)
        die("malloc", RN_ERR_NOMEM);
    uint64_t base = rn_log_end_offset(log);
    uint64_t appended = 0, acked = 0, syncs = 0;
    rn_log_sync_t *in_flight = NULL;
    int64_t t0 = rn_now_ns();

    while (acked < nbatches) {
        if (appended < nbatches) {
            append_one(log, b, validate);
            appended_ns[appended++] = rn_now_ns();
        }
        pthread_mutex_lock(&s.mu);
        /* With nothing left to append, sleep until the sync in flight ends. */
        while (in_flight && !s.done && appended == nbatches)
            pthread_cond_wait(&s.cv, &s.mu);
        bool ended = in_flight && s.done;
        rn_err_t run_result = s.result;
        s.done = false;
        pthread_mutex_unlock(&s.mu);

        if (ended) {
            uint64_t target = rn_log_sync_target(in_flight);
            rn_err_t err = rn_log_sync_end(log, in_flight, run_result);
            if (err != RN_OK)
                die("sync", err);
            in_flight = NULL;
            syncs++;
            int64_t now = rn_now_ns();
            while (acked < appended && base + (acked + 1) * b->records <= target)
                ack_ns[acked] = now - appended_ns[acked], acked++;
        }
        if (!in_flight && rn_log_flush_due(log)) {
            rn_err_t err = rn_log_sync_begin(log, &in_flight);
            if (err != RN_OK)
                die("sync begin", err);
            if (in_flight) {
                pthread_mutex_lock(&s.mu);
                s.job = in_flight;
                pthread_cond_broadcast(&s.cv);
                pthread_mutex_unlock(&s.mu);
            }
        }
    }
    struct group_result r = {nbatches, nbatches * b->records, nbatches * b->len, secs_since(t0),
                             syncs, 0, 0, 0};
    pthread_mutex_lock(&s.mu);
    s.quit = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(tid, NULL);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);

    qsort(ack_ns, nbatches, sizeof *ack_ns, cmp_i64);
    r.ack_p50_ms = (double)ack_ns[nbatches / 2] / 1e6;
    r.ack_p99_ms = (double)ack_ns[nbatches - 1 - nbatches / 100] / 1e6;
    r.ack_max_ms = (double)ack_ns[nbatches - 1] / 1e6;
    free(appended_ns);
    free(ack_ns);
    return r;
}

/* ------------------------------------------------------------------ lookups ---- */

struct lookup_result {
    uint64_t lookups;
    double secs;
};

/* xorshift64*: the same offsets on every run */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static struct lookup_result bench_lookups(rn_log_t *log, uint64_t n)
{
    uint64_t start = rn_log_start_offset(log), end = rn_log_end_offset(log);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int64_t t0 = rn_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = start + next_rand(&rng) % (end - start);
        rn_log_slice_t slice;
        rn_err_t err = rn_log_read(log, off, UINT64_MAX, 1, &slice);
        if (err != RN_OK)
            die("read", err);
        if (slice.len == 0 || slice.first_offset > off || slice.next_offset <= off) {
            fprintf(stderr, "runnel-log-bench: read of offset %" PRIu64 " returned [%" PRIu64
                            ", %" PRIu64 ")\n", off, slice.first_offset, slice.next_offset);
            exit(1);
        }
        rn_log_slice_release(&slice);
    }
    return (struct lookup_result){n, secs_since(t0)};
}

/* --------------------------------------------------------------------- main ---- */

static void describe_machine(char *out, size_t len)
{
    struct utsname u;
    uname(&u);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    snprintf(out, len, "%s %s %s, %ld CPUs, %.1f GiB RAM", u.sysname, u.release, u.machine, cpus,
             (double)pages * (double)page / (1 << 30));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, size_t n)
{
    double *c = malloc(n * sizeof *c);
    if (!c)
        die("malloc", RN_ERR_NOMEM);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

struct rounds {
    double *disk_mbs;
    double *raw_mbs;
    double *append_mbs;
    double *append_rps;
    const char *disk_method;
    struct lookup_result lookup;
    uint64_t lookup_end;
};

enum phase { PHASE_DISK, PHASE_RAW, PHASE_APPEND, NPHASES };

static void run_phase(const struct opts *o, const char *work, struct batch *b, uint64_t nbatches,
                      enum phase phase, uint64_t r, struct rounds *rs)
{
    if (phase == PHASE_DISK) {
        struct disk_result d;
        if (!measure_disk(o, work, &d)) {
            fprintf(stderr, "runnel-log-bench: disk measurement failed\n");
            exit(1);
        }
        rs->disk_mbs[r] = d.mb_per_s;
        rs->disk_method = d.method;
        printf("round %" PRIu64 " disk:   %8.1f MB/s  %" PRIu64 " MiB in %.2f s (%s)\n", r + 1,
               d.mb_per_s, o->mb, d.secs, d.method);
    } else if (phase == PHASE_RAW) {
        double ws, ss;
        if (!bench_raw(work, b, nbatches, &rs->raw_mbs[r], &ws, &ss)) {
            fprintf(stderr, "runnel-log-bench: raw write failed: %s\n", strerror(errno));
            exit(1);
        }
        printf("round %" PRIu64 " raw:    %8.1f MB/s  %" PRIu64
               " pwrites of one batch in %.2f s (writes %.2f s + fdatasync %.2f s), no log\n",
               r + 1, rs->raw_mbs[r], nbatches, ws + ss, ws, ss);
    } else {
        rn_log_config_t cfg;
        rn_log_config_default(&cfg);
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/append-%" PRIu64, work, r);
        rn_log_t *log = open_log(dir, &cfg);
        struct append_result a = bench_append(log, b, nbatches, o->validate);
        rs->append_mbs[r] = (double)a.bytes / MB / a.secs;
        rs->append_rps[r] = (double)a.records / a.secs;
        printf("round %" PRIu64 " append: %8.1f MB/s  %10.0f records/s  %" PRIu64
               " batches in %.2f s (appends %.2f s + final flush %.2f s)\n",
               r + 1, rs->append_mbs[r], rs->append_rps[r], a.batches, a.secs,
               a.secs - a.flush_secs, a.flush_secs);
        if (r + 1 == o->rounds) {
            rs->lookup = bench_lookups(log, o->lookups);
            rs->lookup_end = rn_log_end_offset(log);
        }
        rn_err_t err = rn_log_close(log);
        if (err != RN_OK)
            die("close", err);
        if (!o->keep)
            remove_tree(dir);
        settle(work);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(argc, argv, &o);
    char work[4096];
    snprintf(work, sizeof work, "%s/runnel-log-bench-XXXXXX", o.dir);
    if (!mkdtemp(work)) {
        fprintf(stderr, "runnel-log-bench: cannot create a directory under %s: %s\n", o.dir,
                strerror(errno));
        return 1;
    }
    char machine[512];
    describe_machine(machine, sizeof machine);
    struct batch b = build_batch(&o);
    uint64_t nbatches = (o.mb << 20) / b.len, sync_batches = (o.sync_mb << 20) / b.len;
    if (nbatches == 0 || sync_batches == 0) {
        fprintf(stderr, "runnel-log-bench: --mb/--sync-mb smaller than one batch\n");
        return 2;
    }
    printf("machine: %s\n", machine);
    printf("dir:     %s\n", work);
    printf("batch:   %zu bytes, %" PRIu32 " records of %zu bytes%s\n", b.len, b.records,
           o.record_bytes, o.validate ? ", validated before each append" : "");

    bool measure = strcmp(o.disk, "none") != 0;
    if (measure) {
        struct disk_result warm;
        char path[4200];
        snprintf(path, sizeof path, "%s/warm-up", work);
        int64_t t0 = rn_now_ns();
        if (!disk_c(path, o.mb, &warm))
            fprintf(stderr, "runnel-log-bench: warm-up write failed\n");
        unlink(path);
        settle(work);
        printf("warm-up: %" PRIu64 " MiB written and removed in %.2f s (not measured)\n", o.mb,
               secs_since(t0));
    }

    struct rounds rs = {calloc(o.rounds, sizeof(double)), calloc(o.rounds, sizeof(double)),
                        calloc(o.rounds, sizeof(double)), calloc(o.rounds, sizeof(double)),
                        "none", {0, 0}, 0};
    if (!rs.disk_mbs || !rs.raw_mbs || !rs.append_mbs || !rs.append_rps)
        die("malloc", RN_ERR_NOMEM);
    for (uint64_t r = 0; r < o.rounds; r++) {
        /* The order turns each round, so that no phase always follows the same one. */
        for (int k = 0; k < NPHASES; k++) {
            enum phase phase = (enum phase)((k + (int)(r % NPHASES)) % NPHASES);
            if (phase == PHASE_APPEND || measure)
                run_phase(&o, work, &b, nbatches, phase, r, &rs);
        }
    }
    double disk_med = measure ? median(rs.disk_mbs, o.rounds) : 0;
    double raw_med = measure ? median(rs.raw_mbs, o.rounds) : 0;
    double append_med = median(rs.append_mbs, o.rounds);
    double append_rps_med = median(rs.append_rps, o.rounds);
    double pct = disk_med > 0 ? 100.0 * append_med / disk_med : 0;
    printf("append:  %8.1f MB/s  %10.0f records/s  median of %" PRIu64
           " rounds, no per-batch fsync, one rn_log_flush at the end\n",
           append_med, append_rps_med, o.rounds);
    if (measure)
        printf("raw:     %8.1f MB/s  median (same pwrites without the log)\n"
               "disk:    %8.1f MB/s  median (%s)\n"
               "append/disk: %.0f%% (target >= 80%%); append/raw: %.0f%%; raw/disk: %.0f%%\n",
               raw_med, disk_med, rs.disk_method, pct, 100.0 * append_med / raw_med,
               100.0 * raw_med / disk_med);
    struct lookup_result l = rs.lookup;
    printf("lookup:  %8.0f reads/s  %" PRIu64 " random offsets of %" PRIu64
           " in %.2f s (rn_log_read, max_bytes 1)\n",
           (double)l.lookups / l.secs, l.lookups, rs.lookup_end, l.secs);

    rn_log_config_t cfg;
    rn_log_config_default(&cfg);
    cfg.flush_messages = 1;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/group-0", work);
    rn_log_t *log = open_log(dir, &cfg);
    struct group_result g = bench_group_commit(log, &b, sync_batches, o.validate);
    double g_mbs = (double)g.bytes / MB / g.secs;
    printf("group:   %8.1f MB/s  %10.0f records/s  %" PRIu64 " batches in %.2f s, "
           "flush.messages=1, %" PRIu64 " fsyncs (%.1f batches each), "
           "ack latency p50 %.2f ms p99 %.2f ms max %.2f ms\n",
           g_mbs, (double)g.records / g.secs, g.batches, g.secs, g.syncs,
           (double)g.batches / (double)g.syncs, g.ack_p50_ms, g.ack_p99_ms, g.ack_max_ms);
    rn_err_t err = rn_log_close(log);
    if (err != RN_OK)
        die("close", err);

    if (!o.keep)
        remove_tree(work);
    if (o.json) {
        printf("{\"machine\":\"%s\",\"batch_bytes\":%zu,\"records_per_batch\":%" PRIu32
               ",\"record_bytes\":%zu,\"validate\":%s,\"rounds\":%" PRIu64 ","
               "\"disk_method\":\"%s\",\"disk_mb_s\":%.1f,\"raw_mb_s\":%.1f,"
               "\"append_mb\":%" PRIu64 ",\"append_mb_s\":%.1f,\"append_records_s\":%.0f,"
               "\"append_pct_of_disk\":%.1f,"
               "\"group_mb\":%" PRIu64 ",\"group_mb_s\":%.1f,\"group_records_s\":%.0f,"
               "\"group_fsyncs\":%" PRIu64 ",\"group_ack_p50_ms\":%.3f,"
               "\"group_ack_p99_ms\":%.3f,\"group_ack_max_ms\":%.3f,"
               "\"lookups\":%" PRIu64 ",\"lookups_s\":%.0f}\n",
               machine, b.len, b.records, o.record_bytes, o.validate ? "true" : "false", o.rounds,
               rs.disk_method, disk_med, raw_med, o.mb, append_med, append_rps_med, pct, o.sync_mb,
               g_mbs, (double)g.records / g.secs, g.syncs, g.ack_p50_ms, g.ack_p99_ms,
               g.ack_max_ms, l.lookups, (double)l.lookups / l.secs);
    }
    free(rs.disk_mbs);
    free(rs.raw_mbs);
    free(rs.append_mbs);
    free(rs.append_rps);
    free(b.data);
    return 0;
}
