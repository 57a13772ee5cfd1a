/*
 * librunnel without a broker: handles start and stop cleanly, bad arguments are refused,
 * and every call that needs a broker gives up with an error value after its timeout instead
 * of hanging. Two cases: nothing listens (connections refused), and a socket that accepts
 * but never answers (requests time out).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "runnel/runnel.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port where nothing listens: bind, read the port, close. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* A socket that listens (the kernel completes connects) but never reads or answers. */
static int mute_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static rn_conf_t *conf_for(int port)
{
    rn_conf_t *c = rn_conf_new();
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    assert_int_equal(rn_conf_set(c, "bootstrap.servers", servers, NULL, 0), RN_OK);
    assert_int_equal(rn_conf_set(c, "request.timeout.ms", "300", NULL, 0), RN_OK);
    assert_int_equal(rn_conf_set(c, "retry.backoff.ms", "20", NULL, 0), RN_OK);
    return c;
}

static int reports;
static void count_report(const rn_delivery_t *r, void *ctx)
{
    (void)r;
    (void)ctx;
    reports++;
}

static void producer_gives_up(int port)
{
    rn_conf_t *conf = conf_for(port);
    rn_producer_t *p;
    char err[256];
    assert_int_equal(rn_producer_new(conf, count_report, NULL, &p, err, sizeof err), RN_OK);
    rn_conf_free(conf);
    rn_message_t m = {.topic = "t", .partition = RN_PARTITION_ANY, .value = "v", .value_len = 1};
    int64_t t0 = now_ms();
    rn_err_t e = rn_producer_send(p, &m, 0);
    int64_t took = now_ms() - t0;
    if (e != RN_ERR_TIMED_OUT)
        fail_msg("send without a broker gave %s", rn_err_name(e));
    assert_true(took >= 250 && took < 5000);
    /* Argument checks need no broker. */
    assert_int_equal(rn_producer_send(p, NULL, 0), RN_ERR_INVALID_ARG);
    m.topic = NULL;
    assert_int_equal(rn_producer_send(p, &m, 0), RN_ERR_INVALID_ARG);
    m.topic = "t";
    m.partition = -7;
    assert_int_equal(rn_producer_send(p, &m, 0), RN_ERR_INVALID_ARG);
    static char big[2 << 20];
    rn_message_t huge = {.topic = "t", .partition = 0, .value = big, .value_len = sizeof big};
    assert_int_equal(rn_producer_send(p, &huge, 0), RN_ERR_MESSAGE_TOO_LARGE);
    assert_int_equal(rn_producer_flush(p, 1000), RN_OK); /* nothing queued */
    assert_int_equal(rn_producer_close(p, 1000), RN_OK);
    assert_int_equal(reports, 0);
}

static void consumer_gives_up(int port)
{
    rn_conf_t *conf = conf_for(port);
    rn_consumer_t *c;
    assert_int_equal(rn_consumer_new(conf, &c, NULL, 0), RN_OK);
    rn_conf_free(conf);
    assert_int_equal(rn_consumer_assign(c, "t", 0, RN_OFFSET_BEGINNING), RN_OK);
    assert_int_equal(rn_consumer_assign(c, "t", 1, 5), RN_OK);
    assert_int_equal(rn_consumer_assign(c, "t", -1, 0), RN_ERR_INVALID_ARG);
    assert_int_equal(rn_consumer_assign(c, "t", 0, -5), RN_ERR_INVALID_ARG);
    const rn_record_view_t *recs;
    size_t n = 99;
    int64_t t0 = now_ms();
    assert_int_equal(rn_consumer_poll(c, 100, 10, &recs, &n), RN_OK);
    assert_int_equal(n, 0);
    assert_true(now_ms() - t0 >= 90);
    int64_t pos;
    assert_int_equal(rn_consumer_position(c, "t", 1, &pos), RN_OK);
    assert_int_equal(pos, 5);
    assert_int_equal(rn_consumer_position(c, "t", 0, &pos), RN_ERR_TIMED_OUT);
    assert_false(rn_consumer_at_end(c, "t", 0));
    assert_false(rn_consumer_at_end(c, "t", 1));
    int64_t hw;
    assert_int_equal(rn_consumer_high_watermark(c, "t", 1, &hw), RN_ERR_AGAIN); /* no fetch yet */
    assert_int_equal(rn_consumer_high_watermark(c, "t", 7, &hw), RN_ERR_NOT_FOUND);
    assert_int_equal(rn_consumer_seek(c, "t", 7, 0), RN_ERR_NOT_FOUND);
    /* At the deadline the call reports its last error: TRANSPORT once an attempt was refused
     * within the 200 ms, TIMED_OUT when none finished (as for admin_gives_up below). */
    rn_err_t e = rn_consumer_seek_timestamp(c, "t", 1, 1000, 200);
    if (e != RN_ERR_TIMED_OUT && e != RN_ERR_TRANSPORT)
        fail_msg("seek_timestamp without a broker gave %s", rn_err_name(e));
    assert_int_equal(rn_consumer_unassign(c, "t", 1), RN_OK);
    assert_int_equal(rn_consumer_unassign(c, "t", 1), RN_ERR_NOT_FOUND);
    rn_consumer_close(c);
}

static void admin_gives_up(int port)
{
    rn_conf_t *conf = conf_for(port);
    rn_admin_t *a;
    assert_int_equal(rn_admin_new(conf, &a, NULL, 0), RN_OK);
    rn_conf_free(conf);
    char err[256] = "";
    rn_err_t e = rn_admin_create_topic(a, "t", 1, 1, NULL, 300, err, sizeof err);
    assert_true(e == RN_ERR_TIMED_OUT || e == RN_ERR_TRANSPORT);
    assert_true(strlen(err) > 0);
    assert_int_equal(rn_admin_create_topic(a, "t", 0, 1, NULL, 300, err, sizeof err),
                     RN_ERR_INVALID_PARTITIONS);
    const char *bad_cfg[] = {"retention.ms", NULL};
    assert_int_equal(rn_admin_create_topic(a, "t", 1, 1, bad_cfg, 300, err, sizeof err),
                     RN_ERR_INVALID_CONFIG);
    assert_non_null(strstr(err, "retention.ms"));
    rn_metadata_t *md = NULL;
    e = rn_admin_describe(a, NULL, 300, &md);
    assert_true(e == RN_ERR_TIMED_OUT || e == RN_ERR_TRANSPORT);
    assert_null(md);
    int64_t off;
    e = rn_admin_list_offsets(a, "t", 0, RN_OFFSET_END, &off, 300);
    assert_true(e == RN_ERR_TIMED_OUT || e == RN_ERR_TRANSPORT);
    rn_admin_close(a);
}

static void test_refused(void **state)
{
    (void)state;
    int port = dead_port();
    producer_gives_up(port);
    consumer_gives_up(port);
    admin_gives_up(port);
}

static void test_mute(void **state)
{
    (void)state;
    int port;
    int fd = mute_listener(&port);
    producer_gives_up(port);
    consumer_gives_up(port);
    admin_gives_up(port);
    close(fd);
}

static void test_close_right_away(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        rn_producer_t *p;
        assert_int_equal(rn_producer_new(NULL, NULL, NULL, &p, NULL, 0), RN_OK);
        assert_int_equal(rn_producer_close(p, 0), RN_OK);
        rn_consumer_t *c;
        assert_int_equal(rn_consumer_new(NULL, &c, NULL, 0), RN_OK);
        rn_consumer_close(c);
        rn_admin_t *a;
        assert_int_equal(rn_admin_new(NULL, &a, NULL, 0), RN_OK);
        rn_admin_close(a);
    }
    assert_int_equal(rn_producer_close(NULL, 0), RN_OK);
    rn_consumer_close(NULL);
    rn_admin_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_right_away),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_mute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
