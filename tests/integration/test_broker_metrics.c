/*
 * test_broker_metrics.c - runnel-broker --metrics-listen (issue 6, broker side):
 *   - a scrape after produces and fetches shows the numbers the test caused: records and
 *     bytes in and out per topic, offsets, size and segments per partition, requests and
 *     errors per API, duplicates of an idempotent retry, fsyncs, connections; the text passes
 *     `promtool check metrics`; a deleted topic's series are gone;
 *   - retention deletions are counted and the log start offset follows;
 *   - /healthz, /readyz, 404, 405, HEAD;
 *   - /readyz is 503 while the logs load (topics.meta is a FIFO the test holds shut) with
 *     /healthz 200, then 200; a SIGTERM during the load stops the broker cleanly after it;
 *   - hostile HTTP (garbage, a 100 KB header, slowloris, more connections than the cap) gets
 *     400/431/408 or a close, while produce and fetch on the broker keep working;
 *   - a bad or taken metrics address fails the start with status 2 or 1; empty turns it off.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

typedef struct fixture {
    char *dir;
    char data[600];
    rn_hbroker_t b;
    char maddr[64];          /* the metrics server's HOST:PORT */
} fixture_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads DATA_DIR/metrics-listening into addr, waiting up to timeout_ms. */
static bool read_metrics_addr(const char *data, char *addr, size_t len, int timeout_ms)
{
    char path[700];
    snprintf(path, sizeof path, "%s/metrics-listening", data);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        FILE *f = fopen(path, "r");
        if (f) {
            bool ok = fgets(addr, (int)len, f) != NULL;
            fclose(f);
            addr[strcspn(addr, "\r\n")] = '\0';
            if (ok && strchr(addr, ':'))
                return true;
        }
        sleep_ms(10);
    }
    return false;
}

static fixture_t *start(const char *const *extra)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = rn_h_tmpdir("broker-metrics");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    const char *settings[16] = {"--metrics-listen=127.0.0.1:0", "metrics.request.timeout.ms=300"};
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        settings[n++] = extra[i];
    assert_int_equal(rn_rc_broker_start(&f->b, f->data, settings), 0);
    assert_true(read_metrics_addr(f->data, f->maddr, sizeof f->maddr, 0));
    return f;
}

static void finish(fixture_t *f)
{
    int status = rn_h_broker_stop(&f->b);
    if (status != 0)
        rn_h_broker_dump_log(&f->b);
    assert_int_equal(status, 0);
    /* A clean stop removes the address file with the listener. */
    char path[700];
    snprintf(path, sizeof path, "%s/metrics-listening", f->data);
    assert_int_equal(access(path, F_OK), -1);
    rn_h_broker_release(&f->b);
    rn_h_rmtree(f->dir);
    free(f->dir);
    free(f);
}

/* ------------------------------------------------------------- HTTP client ---- */

/*
 * Sends len bytes of req on a fresh connection (stopping early, without error, if the server
 * closes first), then reads until the server closes or timeout_ms passes. Returns the status
 * code of the first response, 0 when the server closed without one, -1 when it neither
 * answered nor closed in time (or the connection failed). out (may be NULL) gets everything
 * read. *closed (may be NULL) says whether the server closed.
 */
static int http_exchange(const char *addr, const void *req, size_t len, rn_buf_t *out,
                         int timeout_ms, bool *closed)
{
    if (closed)
        *closed = false;
    int fd = rn_h_connect(addr);
    if (fd < 0)
        return -1;
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, (const char *)req + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the server closed (431 on a huge head): read what it said */
        sent += (size_t)n;
    }
    rn_buf_t local = RN_BUF_INIT, *b = out ? out : &local;
    int64_t deadline = now_ms() + timeout_ms;
    bool eof = false;
    while (!eof) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            break;
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof = true; /* EOF, or a reset after the server closed on unread input */
            break;
        }
        rn_buf_append(b, chunk, (size_t)n);
    }
    close(fd);
    if (closed)
        *closed = eof;
    int status = -1;
    if (b->len >= 12 && memcmp(b->data, "HTTP/1.1 ", 9) == 0)
        status = atoi((const char *)b->data + 9);
    else if (eof)
        status = 0;
    rn_buf_free(&local);
    return status;
}

/* GET path with Connection: close; the body (after the head) NUL-terminated in *body. */
static int http_get(const char *addr, const char *method, const char *path, char **body)
{
    char req[512];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     method, path, addr);
    rn_buf_t b = RN_BUF_INIT;
    int status = http_exchange(addr, req, (size_t)n, &b, 10000, NULL);
    rn_buf_append(&b, "", 1);
    if (body) {
        const char *sep = strstr((const char *)b.data, "\r\n\r\n");
        *body = strdup(sep ? sep + 4 : "");
    }
    rn_buf_free(&b);
    return status;
}

static char *scrape(const fixture_t *f)
{
    char *body = NULL;
    assert_int_equal(http_get(f->maddr, "GET", "/metrics", &body), 200);
    return body;
}

/* The value of the sample whose name and labels are exactly series ("a{b=\"c\"}"); NAN when
 * there is none. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return NAN;
}

static double samplef(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static double samplef(const char *text, const char *fmt, ...)
{
    char series[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(series, sizeof series, fmt, ap);
    va_end(ap);
    double v = sample(text, series);
    if (isnan(v))
        fprintf(stderr, "no sample %s in the scrape\n", series);
    return v;
}

/* promtool check metrics < text: its exit status (its findings go to stderr). */
static int promtool_check(const fixture_t *f, const char *text)
{
    const char *bin = getenv("RUNNEL_PROMTOOL");
    if (!bin)
        bin = "/usr/bin/promtool";
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "promtool not found at %s: install the Debian package 'prometheus' "
                "(scripts/install-deps.sh) or set RUNNEL_PROMTOOL\n", bin);
        return -1;
    }
    char path[700];
    snprintf(path, sizeof path, "%s/scrape.txt", f->dir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
    char *argv[] = {(char *)bin, "check", "metrics", NULL};
    int status = rn_h_run(argv, path, NULL, NULL, 60);
    if (status != 0)
        fprintf(stderr, "promtool check metrics exited %d on:\n%s\n", status, text);
    return status;
}

/* ----------------------------------------------------------- broker helpers ---- */

static int64_t new_producer(rn_rc_t *c)
{
    Runnel__InitProducerIdRequest body = RUNNEL__INIT_PRODUCER_ID_REQUEST__INIT;
    body.producer_id = -1;
    Runnel__Request req = RUNNEL__REQUEST__INIT;
    req.body_case = RUNNEL__REQUEST__BODY_INIT_PRODUCER_ID;
    req.init_producer_id = &body;
    Runnel__Response *r = rn_rc_call(c, &req, RUNNEL__API_KEY__API_INIT_PRODUCER_ID, 5000);
    assert_non_null(r);
    assert_int_equal(r->error, 0);
    int64_t id = r->init_producer_id->producer_id;
    rn_rc_free(r);
    return id;
}

/* Produces n records in one batch to topic-partition; returns the batch's size in bytes. */
static size_t produce(rn_rc_t *c, const char *topic, uint32_t partition, int n, int first)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, n, "m", first);
    int64_t off = -1;
    assert_int_equal(rn_rc_produce(c, topic, partition, 1, b.data, b.len, &off), 0);
    size_t len = b.len;
    rn_buf_free(&b);
    return len;
}

/* A produce and a full fetch of a fresh topic: the broker still serves its clients. */
static void assert_broker_serves(const fixture_t *f, const char *topic)
{
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    assert_int_equal(rn_rc_create_topic(&c, topic, 1, 1, NULL, NULL, 0), 0);
    produce(&c, topic, 0, 5, 0);
    rn_rc_rec_t recs[16];
    assert_int_equal(rn_rc_fetch_all(&c, topic, 0, 0, recs, 16), 5);
    rn_rc_close(&c);
}

/* ---------------------------------------------------------------- tests ---- */

static void test_scrape_counts_what_happened(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    assert_int_equal(rn_rc_create_topic(&c, "clicks", 2, 1, NULL, NULL, 0), 0);
    const char *durable[] = {"flush.messages=1", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "durable", 1, 1, durable, NULL, 0), 0);

    /* 3 + 4 + 5 records to partition 0, 7 to partition 1. */
    size_t p0_bytes = produce(&c, "clicks", 0, 3, 0) + produce(&c, "clicks", 0, 4, 3) +
                      produce(&c, "clicks", 0, 5, 7);
    size_t p1_bytes = produce(&c, "clicks", 1, 7, 0);
    size_t d_bytes = produce(&c, "durable", 0, 2, 0);
    /* A retried idempotent batch: acknowledged, not appended. */
    int64_t pid = new_producer(&c);
    rn_buf_t batch = RN_BUF_INIT;
    rn_rc_make_batch(&batch, pid, 0, 0, 6, "idem", 0);
    int64_t off;
    assert_int_equal(rn_rc_produce(&c, "durable", 0, 1, batch.data, batch.len, &off), 0);
    assert_int_equal(rn_rc_produce(&c, "durable", 0, 1, batch.data, batch.len, &off), 0);
    d_bytes += batch.len;
    rn_buf_free(&batch);
    /* Two errors: a missing topic and a missing partition. */
    rn_buf_t b = RN_BUF_INIT;
    rn_rc_make_batch(&b, -1, -1, -1, 1, "x", 0);
    assert_int_equal(rn_rc_produce(&c, "nope", 0, 1, b.data, b.len, &off),
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_int_equal(rn_rc_produce(&c, "clicks", 9, 1, b.data, b.len, &off),
                     RUNNEL__ERROR_CODE__ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_buf_free(&b);
    /* Read partition 0 once, whole. */
    rn_rc_rec_t recs[64];
    assert_int_equal(rn_rc_fetch_all(&c, "clicks", 0, 0, recs, 64), 12);

    char *m = scrape(f);
    assert_true(samplef(m, "runnel_broker_records_in_total{topic=\"clicks\"}") == 19);
    assert_true(samplef(m, "runnel_broker_bytes_in_total{topic=\"clicks\"}") ==
                (double)(p0_bytes + p1_bytes));
    assert_true(samplef(m, "runnel_broker_records_in_total{topic=\"durable\"}") == 8);
    assert_true(samplef(m, "runnel_broker_bytes_in_total{topic=\"durable\"}") == (double)d_bytes);
    assert_true(samplef(m, "runnel_broker_records_out_total{topic=\"clicks\"}") == 12);
    assert_true(samplef(m, "runnel_broker_bytes_out_total{topic=\"clicks\"}") == (double)p0_bytes);
    assert_true(samplef(m, "runnel_broker_records_out_total{topic=\"durable\"}") == 0);
    assert_true(samplef(m, "runnel_broker_idempotent_duplicates_total{topic=\"durable\"}") == 1);
    assert_true(samplef(m, "runnel_broker_idempotent_duplicates_total{topic=\"clicks\"}") == 0);

    const char *pl = "{topic=\"clicks\",partition=\"%d\"}";
    char series[256];
    int64_t ends[2] = {12, 7};
    size_t sizes[2] = {p0_bytes, p1_bytes};
    for (int p = 0; p < 2; p++) {
        snprintf(series, sizeof series, pl, p);
        assert_true(samplef(m, "runnel_broker_log_end_offset%s", series) == (double)ends[p]);
        assert_true(samplef(m, "runnel_broker_high_watermark%s", series) == (double)ends[p]);
        assert_true(samplef(m, "runnel_broker_log_start_offset%s", series) == 0);
        assert_true(samplef(m, "runnel_broker_log_size_bytes%s", series) == (double)sizes[p]);
        assert_true(samplef(m, "runnel_broker_log_segments%s", series) == 1);
        /* The same end offset ListOffsets reports. */
        assert_int_equal(rn_rc_list_offset(&c, "clicks", (uint32_t)p, -1), ends[p]);
    }
    assert_true(samplef(m, "runnel_broker_topics") == 2);
    assert_true(samplef(m, "runnel_broker_partitions") == 3);

    /* Requests: 2 creates, 9 produces, 1 InitProducerId, >= 2 fetches. */
    assert_true(samplef(m, "runnel_broker_requests_total{api=\"create_topics\"}") == 2);
    assert_true(samplef(m, "runnel_broker_requests_total{api=\"produce\"}") == 9);
    assert_true(samplef(m, "runnel_broker_requests_total{api=\"init_producer_id\"}") == 1);
    assert_true(samplef(m, "runnel_broker_requests_total{api=\"fetch\"}") >= 2);
    assert_true(samplef(m, "runnel_broker_request_duration_seconds_count{api=\"produce\"}") == 9);
    assert_true(samplef(m, "runnel_broker_request_duration_seconds_bucket{api=\"produce\","
                           "le=\"+Inf\"}") == 9);
    assert_true(samplef(m, "runnel_broker_request_duration_seconds_sum{api=\"produce\"}") > 0);
    assert_true(samplef(m, "runnel_broker_request_errors_total{api=\"produce\","
                           "error=\"UNKNOWN_TOPIC_OR_PARTITION\"}") == 2);
    /* flush.messages=1: every produce to "durable" waited for an fsync. */
    assert_true(samplef(m, "runnel_broker_fsync_duration_seconds_count") >= 2);
    assert_true(samplef(m, "runnel_broker_connections") >= 1);
    assert_true(samplef(m, "runnel_broker_connections_accepted_total") >= 1);
    assert_true(samplef(m, "runnel_broker_data_dir_free_bytes") > 0);
    assert_true(samplef(m, "runnel_broker_data_dir_size_bytes") >=
                samplef(m, "runnel_broker_data_dir_free_bytes"));
    assert_true(samplef(m, "runnel_broker_start_time_seconds") > 1.5e9);
    assert_non_null(strstr(m, "\nrunnel_broker_info{version=\""));
    assert_non_null(strstr(m, "node_id=\"1\"} 1\n"));
    assert_int_equal(promtool_check(f, m), 0);
    free(m);

    /* A deleted topic's series go; the other topic's stay. */
    assert_int_equal(rn_rc_delete_topic(&c, "clicks"), 0);
    m = scrape(f);
    assert_null(strstr(m, "topic=\"clicks\""));
    assert_true(samplef(m, "runnel_broker_records_in_total{topic=\"durable\"}") == 8);
    assert_true(samplef(m, "runnel_broker_topics") == 1);
    assert_true(samplef(m, "runnel_broker_requests_total{api=\"delete_topics\"}") == 1);
    assert_int_equal(promtool_check(f, m), 0);
    free(m);
    /* Created again, it starts from zero. */
    assert_int_equal(rn_rc_create_topic(&c, "clicks", 1, 1, NULL, NULL, 0), 0);
    m = scrape(f);
    assert_true(samplef(m, "runnel_broker_records_in_total{topic=\"clicks\"}") == 0);
    assert_true(samplef(m, "runnel_broker_log_end_offset{topic=\"clicks\",partition=\"0\"}") == 0);
    free(m);
    rn_rc_close(&c);
    /* The connection's close is seen. */
    bool closed_seen = false;
    for (int i = 0; i < 100 && !closed_seen; i++) {
        m = scrape(f);
        closed_seen = sample(m, "runnel_broker_connections") == 0;
        free(m);
        if (!closed_seen)
            sleep_ms(20);
    }
    assert_true(closed_seen);
    finish(f);
}

static void test_retention_is_counted(void **state)
{
    (void)state;
    const char *extra[] = {"log.retention.check.interval.ms=100", NULL};
    fixture_t *f = start(extra);
    rn_rc_t c;
    assert_int_equal(rn_rc_connect(&c, f->b.addr), 0);
    const char *cfg[] = {"segment.bytes=1024", "retention.bytes=1", NULL};
    assert_int_equal(rn_rc_create_topic(&c, "old", 1, 1, cfg, NULL, 0), 0);
    size_t total = 0;
    for (int i = 0; i < 20; i++)
        total += produce(&c, "old", 0, 10, i * 10);
    const char *p0 = "{topic=\"old\",partition=\"0\"}";
    double segs = 0;
    char *m = NULL;
    for (int i = 0; i < 200; i++) {
        free(m);
        m = scrape(f);
        segs = samplef(m, "runnel_broker_retention_deleted_segments_total{topic=\"old\"}");
        if (segs > 0 && samplef(m, "runnel_broker_log_segments%s", p0) == 1)
            break;
        sleep_ms(20);
    }
    /* All from one scrape: retention runs on the same loop, never in the middle of one. */
    double bytes = samplef(m, "runnel_broker_retention_deleted_bytes_total{topic=\"old\"}");
    double start_offset = samplef(m, "runnel_broker_log_start_offset%s", p0);
    double size = samplef(m, "runnel_broker_log_size_bytes%s", p0);
    assert_true(segs >= 1);
    assert_true(samplef(m, "runnel_broker_log_segments%s", p0) == 1);
    /* What retention removed plus what is left is everything produced. */
    assert_true(bytes + size == (double)total);
    assert_true(start_offset > 0);
    assert_int_equal(rn_rc_list_offset(&c, "old", 0, -2), (int64_t)start_offset);
    assert_int_equal(promtool_check(f, m), 0);
    free(m);
    rn_rc_close(&c);
    finish(f);
}

static void test_routes(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    char *body = NULL;
    assert_int_equal(http_get(f->maddr, "GET", "/healthz", &body), 200);
    assert_string_equal(body, "ok\n");
    free(body);
    assert_int_equal(http_get(f->maddr, "GET", "/readyz", &body), 200);
    assert_string_equal(body, "ready\n");
    free(body);
    assert_int_equal(http_get(f->maddr, "GET", "/metrics?x=1", &body), 200);
    assert_non_null(strstr(body, "# TYPE runnel_broker_requests_total counter\n"));
    free(body);
    assert_int_equal(http_get(f->maddr, "HEAD", "/metrics", &body), 200);
    assert_string_equal(body, "");
    free(body);
    assert_int_equal(http_get(f->maddr, "GET", "/nope", NULL), 404);
    assert_int_equal(http_get(f->maddr, "POST", "/metrics", NULL), 405);
    assert_int_equal(http_get(f->maddr, "DELETE", "/healthz", NULL), 405);
    /* Two requests on one keep-alive connection. */
    const char *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    rn_buf_t b = RN_BUF_INIT;
    bool closed;
    assert_int_equal(http_exchange(f->maddr, two, strlen(two), &b, 5000, &closed), 200);
    rn_buf_append(&b, "", 1);
    assert_non_null(strstr((const char *)b.data, "ready\n"));
    assert_true(closed);
    rn_buf_free(&b);
    finish(f);
}

/* A helper thread: waits for the metrics server of a broker whose topics.meta is a FIFO,
 * checks /readyz and /healthz while the load blocks, then lets the load finish. */
struct loading {
    const char *data;
    bool send_sigterm;
    pid_t pid;               /* send_sigterm: the broker to signal */
    int readyz_while_loading, healthz_while_loading;
    char why[128];
};

static void *hold_the_load(void *arg)
{
    struct loading *l = arg;
    char addr[64];
    if (!read_metrics_addr(l->data, addr, sizeof addr, 20000))
        return NULL;
    char *body = NULL;
    l->readyz_while_loading = http_get(addr, "GET", "/readyz", &body);
    snprintf(l->why, sizeof l->why, "%s", body ? body : "");
    free(body);
    l->healthz_while_loading = http_get(addr, "GET", "/healthz", NULL);
    if (l->send_sigterm) {
        kill(l->pid, SIGTERM);
        sleep_ms(100);
        body = NULL;
        if (http_get(addr, "GET", "/readyz", &body) == 503 && body &&
            strstr(body, "shutting down"))
            snprintf(l->why, sizeof l->why, "%s", body);
        free(body);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/topics.meta", l->data);
    int fd = open(path, O_WRONLY | O_CLOEXEC); /* blocks until the broker opens it */
    if (fd >= 0) {
        (void)!write(fd, "runnel-topics 1\n", 16);
        close(fd);
    }
    return NULL;
}

static char *fifo_data_dir(char **dir)
{
    *dir = rn_h_tmpdir("broker-metrics-load");
    char *data = malloc(600);
    snprintf(data, 600, "%s/data", *dir);
    assert_int_equal(mkdir(data, 0755), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/topics.meta", data);
    assert_int_equal(mkfifo(path, 0644), 0);
    return data;
}

static void test_readyz_while_loading(void **state)
{
    (void)state;
    char *dir;
    char *data = fifo_data_dir(&dir);
    struct loading l = {.data = data};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_the_load, &l), 0);
    rn_hbroker_t b = {0};
    const char *settings[] = {"--metrics-listen=127.0.0.1:0", NULL};
    int rc = rn_rc_broker_start(&b, data, settings);
    pthread_join(th, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(l.readyz_while_loading, 503);
    assert_non_null(strstr(l.why, "loading logs"));
    assert_int_equal(l.healthz_while_loading, 200);
    char addr[64];
    assert_true(read_metrics_addr(data, addr, sizeof addr, 0));
    assert_int_equal(http_get(addr, "GET", "/readyz", NULL), 200);
    assert_int_equal(rn_h_broker_stop(&b), 0);
    rn_h_broker_release(&b);
    rn_h_rmtree(dir);
    free(dir);
    free(data);
}

static void test_sigterm_while_loading(void **state)
{
    (void)state;
    char *dir;
    char *data = fifo_data_dir(&dir);
    char log[700];
    snprintf(log, sizeof log, "%s/broker.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        const char *bin = rn_h_bin("RUNNEL_BROKER_BIN");
        execl(bin, bin, "--data-dir", data, "--listen", "127.0.0.1:0", "--metrics-listen",
              "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    struct loading l = {.data = data, .send_sigterm = true, .pid = pid};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_the_load, &l), 0);
    pthread_join(th, NULL);
    int status = -1;
    for (int i = 0; i < 2000 && waitpid(pid, &status, WNOHANG) == 0; i++)
        sleep_ms(10);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        char *argv[] = {"/bin/cat", log, NULL};
        rn_h_run(argv, NULL, NULL, NULL, 5);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(l.readyz_while_loading, 503);
    assert_int_equal(l.healthz_while_loading, 200);
    assert_non_null(strstr(l.why, "shutting down"));
    /* It never listened for clients. */
    char path[700];
    snprintf(path, sizeof path, "%s/listening", data);
    assert_int_equal(access(path, F_OK), -1);
    rn_h_rmtree(dir);
    free(dir);
    free(data);
}

static void test_hostile_http(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    /* Garbage: 400 or a close, never a hang. */
    srand(7);
    for (int round = 0; round < 20; round++) {
        char junk[512];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (char)(rand() & 0xff);
        bool closed;
        int status = http_exchange(f->maddr, junk, sizeof junk, NULL, 5000, &closed);
        assert_true(status == 400 || status == 0);
        assert_true(closed);
    }
    /* A 100 KB header: 431 or a close. */
    size_t big = 100 * 1024;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, big + 64, "GET /metrics HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\r\n\r\n", 4);
    bool closed;
    int status = http_exchange(f->maddr, huge, (size_t)n + big + 4, NULL, 5000, &closed);
    free(huge);
    assert_true(status == 431 || status == 0);
    assert_true(closed);
    assert_broker_serves(f, "after-garbage");

    /* Slowloris: partial requests that stop. The broker serves clients meanwhile, and each
     * gets 408 and a close after metrics.request.timeout.ms (300 ms here). */
    int slow[8];
    const char *partial = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (int i = 0; i < 8; i++) {
        slow[i] = rn_h_connect(f->maddr);
        assert_true(slow[i] >= 0);
        assert_true(send(slow[i], partial, strlen(partial), MSG_NOSIGNAL) > 0);
    }
    int64_t t0 = now_ms();
    assert_broker_serves(f, "during-slowloris");
    for (int i = 0; i < 8; i++) {
        rn_buf_t b = RN_BUF_INIT;
        char chunk[4096];
        ssize_t got;
        struct pollfd p = {slow[i], POLLIN, 0};
        while (poll(&p, 1, 5000) > 0 && (got = recv(slow[i], chunk, sizeof chunk, 0)) > 0)
            rn_buf_append(&b, chunk, (size_t)got);
        rn_buf_append(&b, "", 1);
        assert_non_null(strstr((const char *)b.data, "HTTP/1.1 408 "));
        rn_buf_free(&b);
        close(slow[i]);
    }
    int64_t took = now_ms() - t0;
    assert_true(took < 4000);
    /* An idle connection (no byte sent) is closed after the same timeout. */
    int idle = rn_h_connect(f->maddr);
    assert_true(idle >= 0);
    struct pollfd p = {idle, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    char c;
    assert_true(recv(idle, &c, 1, 0) <= 0);
    close(idle);

    /* More connections than the server's cap (64): the extra ones are closed, clients of the
     * broker are not affected, and once they go the server answers again. */
    int many[80];
    for (int i = 0; i < 80; i++)
        many[i] = rn_h_connect(f->maddr);
    assert_broker_serves(f, "during-flood");
    for (int i = 0; i < 80; i++) {
        if (many[i] >= 0)
            close(many[i]);
    }
    int health = 0;
    for (int i = 0; i < 100 && health != 200; i++) {
        if ((health = http_get(f->maddr, "GET", "/healthz", NULL)) != 200)
            sleep_ms(20);
    }
    assert_int_equal(health, 200);
    char *m = scrape(f);
    assert_int_equal(promtool_check(f, m), 0);
    free(m);
    finish(f);
}

/* A metrics address that does not parse is a usage error (2); one that is taken fails the
 * start (1) and says so, leaving the data directory free for the next try. */
static void test_bad_metrics_listen(void **state)
{
    (void)state;
    fixture_t *f = start(NULL);
    char *dir = rn_h_tmpdir("broker-metrics-bad");
    char data[600], err[700];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    const char *bin = rn_h_bin("RUNNEL_BROKER_BIN");
    char *usage[] = {(char *)bin, "--data-dir", data, "--listen", "127.0.0.1:0",
                     "--metrics-listen", "no-port", NULL};
    assert_int_equal(rn_h_run(usage, NULL, NULL, err, 30), 2);
    char *taken[] = {(char *)bin, "--data-dir", data, "--listen", "127.0.0.1:0",
                     "--set", "metrics.listen=", "--metrics-listen", f->maddr, NULL};
    assert_int_equal(rn_h_run(taken, NULL, NULL, err, 30), 1);
    rn_buf_t log = RN_BUF_INIT;
    FILE *in = fopen(err, "r");
    assert_non_null(in);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        rn_buf_append(&log, chunk, n);
    fclose(in);
    rn_buf_append(&log, "", 1);
    assert_non_null(strstr((const char *)log.data, "cannot listen for metrics on"));
    rn_buf_free(&log);
    /* An empty metrics.listen turns the server off: the broker starts without it. */
    rn_hbroker_t b = {0};
    const char *off[] = {"metrics.listen=", NULL};
    assert_int_equal(rn_rc_broker_start(&b, data, off), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/metrics-listening", data);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(rn_h_broker_stop(&b), 0);
    rn_h_broker_release(&b);
    rn_h_rmtree(dir);
    free(dir);
    finish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape_counts_what_happened),
        cmocka_unit_test(test_retention_is_counted),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_readyz_while_loading),
        cmocka_unit_test(test_sigterm_while_loading),
        cmocka_unit_test(test_hostile_http),
        cmocka_unit_test(test_bad_metrics_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
