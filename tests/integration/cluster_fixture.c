/* cluster_fixture.c - see cluster_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster_fixture.h"
#include "rawclient.h"

int64_t rn_hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rn_hc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* n distinct free loopback ports: hold all the sockets, then release them. */
static void pick_ports(uint16_t *ports, int n)
{
    int fds[8];
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof sa;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&sa, &len), 0);
        ports[i] = ntohs(sa.sin_port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

rn_hcluster_t *rn_hc_start(const char *prefix, const char *const *extra)
{
    rn_hcluster_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->dir = rn_h_tmpdir(prefix);
    uint16_t ports[RN_HC_N];
    pick_ports(ports, RN_HC_N);
    snprintf(c->quorum_flag, sizeof c->quorum_flag,
             "--controller-quorum=1@127.0.0.1:%u,2@127.0.0.1:%u,3@127.0.0.1:%u", ports[0],
             ports[1], ports[2]);
    for (int i = 0; i < RN_HC_N; i++) {
        snprintf(c->data[i], sizeof c->data[i], "%s/node%d", c->dir, i + 1);
        snprintf(c->listen_flag[i], sizeof c->listen_flag[i],
                 "--controller-listen=127.0.0.1:%u", ports[i]);
        const char *settings[16] = {c->listen_flag[i], c->quorum_flag};
        for (int k = 0; extra && extra[k] && k < 13; k++)
            settings[2 + k] = extra[k];
        c->b[i].node_id = i + 1;
        assert_int_equal(rn_rc_broker_start(&c->b[i], c->data[i], settings), 0);
    }
    return c;
}

rn_hcluster_t *rn_hc_start_observers(const char *prefix, const char *const *extra)
{
    rn_hcluster_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->dir = rn_h_tmpdir(prefix);
    uint16_t port;
    pick_ports(&port, 1);
    snprintf(c->quorum_flag, sizeof c->quorum_flag, "--controller-quorum=1@127.0.0.1:%u", port);
    static char boot[RN_HC_N][128];
    for (int i = 0; i < RN_HC_N; i++) {
        snprintf(c->data[i], sizeof c->data[i], "%s/node%d", c->dir, i + 1);
        const char *settings[16] = {c->quorum_flag};
        int k = 1;
        if (i == 0) {
            snprintf(c->listen_flag[i], sizeof c->listen_flag[i],
                     "--controller-listen=127.0.0.1:%u", port);
            settings[k++] = c->listen_flag[i];
        } else {
            snprintf(boot[i], sizeof boot[i], "observer.bootstrap.servers=%s", c->b[0].addr);
            settings[k++] = boot[i];
        }
        for (int e = 0; extra && extra[e] && k < 15; e++)
            settings[k++] = extra[e];
        c->b[i].node_id = i + 1;
        assert_int_equal(rn_rc_broker_start(&c->b[i], c->data[i], settings), 0);
    }
    return c;
}

void rn_hc_free(rn_hcluster_t *c)
{
    for (int i = 0; i < RN_HC_N; i++)
        rn_h_broker_release(&c->b[i]);
    rn_h_rmtree(c->dir);
    free(c->dir);
    free(c);
}

void rn_hc_dump_logs(rn_hcluster_t *c)
{
    for (int i = 0; i < RN_HC_N; i++)
        rn_h_broker_dump_log(&c->b[i]);
}
