/*
 * common/httpd.c: the metrics/health server answers the three routes, refuses what it does not
 * serve with the right 4xx, survives garbage, oversized heads and clients that stop mid-request,
 * and keeps serving well-behaved clients meanwhile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"
#include "metrics.h"

static rn_metrics_t *g_metrics;
static rn_httpd_t *g_httpd;
static volatile int g_ready;
static const char *volatile g_why = "loading logs";
static rn_http_std_t g_std = {NULL, &g_ready, &g_why};

static int setup(void **state)
{
    (void)state;
    g_metrics = rn_metrics_new();
    g_std.metrics = g_metrics;
    rn_metric_t *c = rn_metric_get(rn_metrics_counter(g_metrics, "test_requests_total",
                                                      "Requests.", NULL), NULL);
    rn_counter_add(c, 42);
    char err[256];
    if (rn_httpd_start_thread("127.0.0.1:0", rn_http_std_handler, &g_std, &g_httpd, err,
                              sizeof err) != RN_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    rn_httpd_set_timeout(g_httpd, 300);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rn_httpd_stop(g_httpd);
    rn_metrics_free(g_metrics);
    return 0;
}

static int connect_server(void)
{
    const char *addr = rn_httpd_address(g_httpd);
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close on us: that is allowed */
        p += n;
        len -= (size_t)n;
    }
}

/* Everything until the server closes or wait_ms passes without data. */
static char *recv_all(int fd, int wait_ms)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) <= 0)
            break;
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static char *request(const char *raw)
{
    int fd = connect_server();
    send_all(fd, raw, strlen(raw));
    char *out = recv_all(fd, 2000);
    close(fd);
    return out;
}

static void expect_status(const char *raw, const char *status_line)
{
    char *out = request(raw);
    if (strncmp(out, status_line, strlen(status_line)) != 0)
        fail_msg("request %.40s...: expected '%s', got '%.80s'", raw, status_line, out);
    free(out);
}

static void test_routes(void **state)
{
    (void)state;
    char *m = request("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(m, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(m, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(m, "# TYPE test_requests_total counter\ntest_requests_total 42\n"));
    free(m);
    expect_status("GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK");
    g_ready = 0;
    char *r = request("GET /readyz HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(r, "HTTP/1.1 503"));
    assert_non_null(strstr(r, "not ready: loading logs"));
    free(r);
    g_ready = 1;
    expect_status("GET /readyz?verbose=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK");
    expect_status("GET /nope HTTP/1.0\r\n\r\n", "HTTP/1.1 404");
    expect_status("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 405");
    /* HEAD: headers with the length, no body. */
    char *h = request("HEAD /healthz HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(h, "Content-Length: 3\r\n"));
    assert_null(strstr(h, "\r\n\r\nok"));
    free(h);
}

static void test_keep_alive_and_pipelining(void **state)
{
    (void)state;
    int fd = connect_server();
    const char *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n";
    send_all(fd, two, strlen(two));
    char *out = recv_all(fd, 2000);
    close(fd);
    char *second = strstr(out, "HTTP/1.1 200 OK");
    assert_non_null(second);
    assert_non_null(strstr(second + 1, "HTTP/1.1 200 OK"));
    free(out);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Many pipelined requests: all answered in order; a client that never reads them costs the
 * server one response, not a queue (regression: memory grew by ~100 MB/s). */
static void test_pipelining_is_bounded(void **state)
{
    (void)state;
    int fd = connect_server();
    const char *one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char *many = malloc(strlen(one) * 500 + 64);
    many[0] = '\0';
    for (int i = 0; i < 499; i++)
        strcat(many, one);
    strcat(many, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    send_all(fd, many, strlen(many));
    free(many);
    char *out = recv_all(fd, 3000);
    close(fd);
    int n = 0;
    for (char *p = out; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        n++;
    free(out);
    assert_int_equal(n, 500);

    /* Now a client that writes /metrics requests for a second and reads nothing. */
    rn_mfamily_t *f = rn_metrics_gauge(g_metrics, "test_big", "Many series.", "i");
    for (int i = 0; i < 60000; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *lv[] = {v};
        rn_gauge_set(rn_metric_get(f, lv), i);
    }
    long before = rss_kb();
    fd = connect_server();
    struct timeval tv = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const char *m = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 20000; i++)
        if (send(fd, m, strlen(m), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            usleep(100);
    long grown = rss_kb() - before;
    /* Meanwhile another client is served. */
    expect_status("GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK");
    close(fd);
    if (grown > 20 * 1024)
        fail_msg("the server grew by %ld KiB for a client that does not read", grown);
}

/* A client that half-closes after its request still gets the whole (large) response. */
static void test_half_close_gets_whole_response(void **state)
{
    (void)state;
    int fd = connect_server();
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    char *out = recv_all(fd, 3000);
    close(fd);
    const char *cl = strstr(out, "Content-Length: ");
    assert_non_null(cl);
    long want = atol(cl + 16);
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    assert_true(want > 1000000); /* more than the socket buffers hold */
    assert_int_equal((long)strlen(body + 4), want);
    free(out);
}

static void test_bad_requests(void **state)
{
    (void)state;
    expect_status("\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n", "HTTP/1.1 400");
    /* A head larger than the limit: 431, without waiting for its end. */
    size_t big = RN_HTTPD_MAX_HEAD * 4;
    char *raw = malloc(big + 64);
    int n = snprintf(raw, big, "GET /metrics HTTP/1.1\r\nX-Big: ");
    memset(raw + n, 'a', big - (size_t)n);
    raw[big] = '\0';
    expect_status(raw, "HTTP/1.1 431");
    free(raw);
    /* Slowloris: half a request, then silence: 408 after the (shortened) timeout. */
    int fd = connect_server();
    send_all(fd, "GET /metr", 9);
    char *out = recv_all(fd, 3000);
    close(fd);
    assert_non_null(strstr(out, "HTTP/1.1 408"));
    free(out);
    /* And the server still serves. */
    expect_status("GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK");
}

/* Over the limit, the oldest idle connection makes room; the new one is served. */
static void test_connection_limit(void **state)
{
    (void)state;
    int fds[RN_HTTPD_MAX_CONNS + 8];
    for (int i = 0; i < RN_HTTPD_MAX_CONNS + 8; i++) {
        fds[i] = connect_server();
        usleep(2000); /* in order, so "oldest" is well defined */
    }
    usleep(100000);
    /* The 8 oldest were closed to make room (EOF, no data). */
    for (int i = 0; i < 8; i++) {
        char *out = recv_all(fds[i], 1000);
        assert_string_equal(out, "");
        free(out);
    }
    int last = fds[RN_HTTPD_MAX_CONNS + 7];
    send_all(last, "GET /healthz HTTP/1.0\r\n\r\n", 25);
    char *out = recv_all(last, 2000);
    assert_non_null(strstr(out, "200 OK"));
    free(out);
    send_all(fds[8], "GET /healthz HTTP/1.0\r\n\r\n", 25);
    out = recv_all(fds[8], 2000);
    assert_non_null(strstr(out, "200 OK"));
    free(out);
    for (int i = 0; i < RN_HTTPD_MAX_CONNS + 8; i++)
        close(fds[i]);
}

static void test_bad_listen_address(void **state)
{
    (void)state;
    rn_httpd_t *h;
    char err[256];
    assert_int_not_equal(rn_httpd_start_thread("nonsense", rn_http_std_handler, &g_std, &h, err,
                                               sizeof err), RN_OK);
    assert_non_null(strstr(err, "not HOST:PORT"));
    assert_int_not_equal(rn_httpd_start_thread(rn_httpd_address(g_httpd), rn_http_std_handler,
                                               &g_std, &h, err, sizeof err), RN_OK);
    assert_non_null(strstr(err, "cannot listen"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_keep_alive_and_pipelining),
        cmocka_unit_test(test_pipelining_is_bounded),
        cmocka_unit_test(test_half_close_gets_whole_response),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_bad_listen_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
