/*
 * peer_client.c - runnel-peer-bench: the produce workloads of runnel-bench, against the peers
 * bench/peers.sh compares Runnel with, speaking their text protocols directly (no client
 * library, so nothing but the servers themselves is measured):
 *
 *   redis  XADD STREAM * f VALUE            reply: the entry id   (Redis Streams)
 *   nats   PUB SUBJECT _INBOX.x.SEQ VALUE   reply: {"stream":…,"seq":…} (JetStream publish ack)
 *   loopback  VALUE                         reply: the same bytes, from an echo process this
 *             program forks on a free loopback port: the machine's floor for a round trip
 *             (two processes, one TCP connection, no work), measured like the others
 *
 * --pipeline W keeps at most W commands awaiting their reply; W = 1 is one at a time (send,
 * wait for the acknowledgement, send the next). Each record's latency runs from the write()
 * that carried it to the read() that brought its reply, into the same histogram runnel-bench
 * uses, and the report has the same shape (with --json, one JSON object as the last line).
 *
 *   runnel-peer-bench redis --addr 127.0.0.1:6379 --messages 100000 --size 100 --pipeline 1
 *   runnel-peer-bench nats  --addr 127.0.0.1:4222 --messages 100000 --size 100 --pipeline 256
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

typedef enum peer { PEER_REDIS, PEER_NATS, PEER_LOOPBACK } peer_t;

typedef struct opts {
    peer_t peer;
    const char *addr;
    long long messages;
    long long size;
    long long pipeline;
    const char *stream;
    long long spin_us;
    bool json;
} opts_t;

typedef struct conn {
    int fd;
    char *in;             /* bytes read and not yet parsed */
    size_t in_len, in_cap;
    char *out;            /* bytes to write */
    size_t out_len, out_off, out_cap;
    int64_t spin_ns;      /* --spin-us: poll this long before a blocking read */
} conn_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "runnel-peer-bench: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static int dial(const char *addr)
{
    char host[256];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        die("--addr '%s' is not HOST:PORT", addr);
    *colon = '\0';
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        die("cannot resolve '%s'", addr);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0)
        die("cannot connect to %s", addr);
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void out_append(conn_t *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        c->out_cap = (c->out_len + n) * 2;
        c->out = realloc(c->out, c->out_cap);
        if (!c->out)
            die("%s", "out of memory");
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void out_printf(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(conn_t *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out_append(c, buf, (size_t)n);
}

/* Writes what is pending, waiting for room as needed (the socket is blocking). */
static void flush_out(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write: %s", strerror(errno));
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
}

/*
 * Reads at least one more byte: with --spin-us, non-blocking reads (sched_yield between them)
 * for up to spin_ns first, as runnel-bench --spin-us waits for its acknowledgement; then a
 * blocking read.
 */
static void fill_in(conn_t *c)
{
    if (c->in_cap - c->in_len < 65536) {
        c->in_cap = c->in_cap * 2 + 65536;
        c->in = realloc(c->in, c->in_cap);
        if (!c->in)
            die("%s", "out of memory");
    }
    int64_t spin_until = c->spin_ns ? now_ns() + c->spin_ns : 0;
    for (;;) {
        bool spin = spin_until && now_ns() < spin_until;
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, spin ? MSG_DONTWAIT : 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            return;
        }
        if (n < 0 && spin && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sched_yield();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        die("the server closed the connection (%s)", n == 0 ? "EOF" : strerror(errno));
    }
}

static void consume_in(conn_t *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* The end of the line starting at off ("\r\n" included), or 0 when incomplete. */
static size_t line_end(const conn_t *c, size_t off)
{
    for (size_t i = off; i + 1 < c->in_len; i++) {
        if (c->in[i] == '\r' && c->in[i + 1] == '\n')
            return i + 2;
    }
    return 0;
}

/* ------------------------------------------------------------------- redis ---- */

/*
 * Parses one reply at the start of the input: returns its length (0 when incomplete) and
 * sets *ok to false for an error reply. Handles the reply kinds XADD can produce.
 */
static size_t redis_reply(conn_t *c, bool *ok)
{
    size_t e = line_end(c, 0);
    if (!e)
        return 0;
    *ok = c->in[0] != '-';
    if (c->in[0] != '$')
        return e;
    long len = strtol(c->in + 1, NULL, 10);
    if (len < 0)
        return e;
    size_t total = e + (size_t)len + 2;
    return c->in_len >= total ? total : 0;
}

static void redis_command(conn_t *c, const opts_t *o, const char *value)
{
    out_printf(c, "*5\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n$1\r\n*\r\n$1\r\nf\r\n$%lld\r\n",
               strlen(o->stream), o->stream, o->size);
    out_append(c, value, (size_t)o->size);
    out_append(c, "\r\n", 2);
}

/* ---------------------------------------------------------------------- nats ---- */

#define NATS_INBOX "_INBOX.rpb."

/*
 * Parses one protocol message at the start of the input: returns its length (0 when
 * incomplete). For a MSG on our inbox, *seq is the sequence in its subject (-1 for others)
 * and *ok false when the payload is a JetStream error. PINGs are answered.
 */
static size_t nats_message(conn_t *c, long long *seq, bool *ok)
{
    size_t e = line_end(c, 0);
    if (!e)
        return 0;
    *seq = -1;
    *ok = true;
    if (strncmp(c->in, "PING", 4) == 0) {
        out_append(c, "PONG\r\n", 6);
        return e;
    }
    if (strncmp(c->in, "-ERR", 4) == 0) {
        c->in[e - 2] = '\0';
        die("server error: %s", c->in);
    }
    if (strncmp(c->in, "MSG ", 4) != 0)
        return e; /* +OK, PONG, INFO */
    /* MSG <subject> <sid> [reply-to] <#bytes> */
    char line[512];
    size_t ll = e - 2 < sizeof line - 1 ? e - 2 : sizeof line - 1;
    memcpy(line, c->in, ll);
    line[ll] = '\0';
    char *last = strrchr(line, ' ');
    long bytes = last ? strtol(last + 1, NULL, 10) : 0;
    size_t total = e + (size_t)bytes + 2;
    if (c->in_len < total)
        return 0;
    char *subject = line + 4;
    char *sp = strchr(subject, ' ');
    if (sp)
        *sp = '\0';
    if (strncmp(subject, NATS_INBOX, strlen(NATS_INBOX)) == 0) {
        const char *tail = subject + strlen(NATS_INBOX);
        *seq = *tail == 'c' ? -2 : strtoll(tail, NULL, 10);
        *ok = !memmem(c->in + e, (size_t)bytes, "\"error\"", 7);
        if (!*ok && *seq == -2) {
            char msg[600];
            snprintf(msg, sizeof msg, "%.*s", (int)bytes, c->in + e);
            die("creating the stream failed: %s", msg);
        }
    }
    return total;
}

static void nats_setup(conn_t *c, const opts_t *o)
{
    out_printf(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,"
                  "\"lang\":\"c\",\"version\":\"0.1\",\"protocol\":1}\r\nPING\r\n");
    out_printf(c, "SUB " NATS_INBOX "* 1\r\n");
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"name\":\"%s\",\"subjects\":[\"%s.in\"],\"storage\":\"file\","
                     "\"retention\":\"limits\",\"discard\":\"old\",\"num_replicas\":1}",
                     o->stream, o->stream);
    out_printf(c, "PUB $JS.API.STREAM.CREATE.%s " NATS_INBOX "c %d\r\n%s\r\n", o->stream, n, body);
    flush_out(c);
    for (;;) {
        long long seq;
        bool ok;
        size_t used;
        while ((used = nats_message(c, &seq, &ok)) > 0) {
            consume_in(c, used);
            if (seq == -2)
                return;
        }
        flush_out(c);
        fill_in(c);
    }
}

static void nats_command(conn_t *c, const opts_t *o, const char *value, long long seq)
{
    out_printf(c, "PUB %s.in " NATS_INBOX "%lld %lld\r\n", o->stream, seq, o->size);
    out_append(c, value, (size_t)o->size);
    out_append(c, "\r\n", 2);
}

/* ---------------------------------------------------------------- loopback ---- */

/*
 * Forks a process that accepts one connection on a free 127.0.0.1 port and writes back
 * every byte it reads (blocking I/O, TCP_NODELAY) until EOF; returns the port.
 */
static int start_echo(void)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
        die("cannot listen on loopback: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the measuring process */
        if (getppid() == 1)
            _exit(1);
        int fd = accept(ls, NULL, NULL);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char buf[65536];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                _exit(0);
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(fd, buf + off, (size_t)(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    _exit(1);
                off += w;
            }
        }
    }
    close(ls);
    return ntohs(a.sin_port);
}

/* ---------------------------------------------------------------------- main ---- */

static double q_us(const rn_hist_t *h, double q)
{
    return (double)rn_hist_quantile(h, q) / 1000.0;
}

static void report(const opts_t *o, const rn_hist_t *h, long long acked, long long failed,
                   double secs)
{
    double rps = (double)acked / secs;
    double mbps = (double)acked * (double)o->size / 1e6 / secs;
    printf("%lld records, %.1f MB in %.3f s: %.0f records/s, %.1f MB/s\n", acked,
           (double)acked * (double)o->size / 1e6, secs, rps, mbps);
    printf("ack latency (µs) over %llu records: min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  "
           "p99.9 %.1f  p99.99 %.1f  max %.1f  mean %.1f\n",
           (unsigned long long)rn_hist_count(h), (double)rn_hist_min(h) / 1000.0, q_us(h, 0.5),
           q_us(h, 0.9), q_us(h, 0.99), q_us(h, 0.999), q_us(h, 0.9999),
           (double)rn_hist_max(h) / 1000.0, rn_hist_mean(h) / 1000.0);
    if (o->json)
        printf("{\"workload\":\"%s\",\"records\":%lld,\"failed\":%lld,\"seconds\":%.6f,"
               "\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"p999_us\":%.1f,\"max_us\":%.1f}\n",
               o->peer == PEER_REDIS  ? "redis-xadd"
               : o->peer == PEER_NATS ? "nats-jetstream-publish"
                                      : "loopback-echo",
               acked, failed, secs, rps, mbps,
               q_us(h, 0.5), q_us(h, 0.99), q_us(h, 0.999), (double)rn_hist_max(h) / 1000.0);
}

static const char usage[] =
    "Usage: runnel-peer-bench redis|nats --addr HOST:PORT [--messages N] [--size B]\n"
    "                         [--pipeline W] [--stream NAME] [--spin-us US] [--json]\n"
    "       runnel-peer-bench loopback [--messages N] [--size B] [--pipeline W] [--spin-us US]\n"
    "                         [--json]\n"
    "  redis: XADD NAME * f VALUE (Redis Streams); nats: JetStream publish to NAME.in on a\n"
    "  file-storage stream NAME, created first; loopback: an echo process it forks on a free\n"
    "  127.0.0.1 port (the machine's round-trip floor). --pipeline 1 sends one record at a time.\n"
    "  --spin-us US polls the socket this long (yielding the CPU between looks) before a\n"
    "  blocking read, as runnel-bench --spin-us does (default 0).\n";

static void parse(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},   {"messages", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},   {"pipeline", required_argument, NULL, 'P'},
        {"stream", required_argument, NULL, 'S'}, {"json", no_argument, NULL, 'j'},
        {"spin-us", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || (strcmp(argv[1], "redis") && strcmp(argv[1], "nats") &&
                     strcmp(argv[1], "loopback"))) {
        fputs(usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        exit(argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2);
    }
    o->peer = strcmp(argv[1], "redis") == 0  ? PEER_REDIS
              : strcmp(argv[1], "nats") == 0 ? PEER_NATS
                                             : PEER_LOOPBACK;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o->addr = optarg; break;
        case 'n': o->messages = atoll(optarg); break;
        case 's': o->size = atoll(optarg); break;
        case 'P': o->pipeline = atoll(optarg); break;
        case 'S': o->stream = optarg; break;
        case 'j': o->json = true; break;
        case 'w': o->spin_us = atoll(optarg); break;
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); exit(2);
        }
    }
    if ((!o->addr && o->peer != PEER_LOOPBACK) || o->messages < 1 || o->size < 1 ||
        o->pipeline < 1)
        die("%s", "--addr is required; --messages, --size and --pipeline must be >= 1");
    if (o->spin_us < 0 || o->spin_us > 1000000)
        die("%s", "--spin-us must be between 0 and 1000000");
}

int main(int argc, char **argv)
{
    opts_t o = {.messages = 100000, .size = 100, .pipeline = 1, .stream = "RPB"};
    parse(argc, argv, &o);
    char echo_addr[32];
    if (o.peer == PEER_LOOPBACK) {
        snprintf(echo_addr, sizeof echo_addr, "127.0.0.1:%d", start_echo());
        o.addr = echo_addr;
    }
    conn_t c = {.fd = dial(o.addr), .spin_ns = o.spin_us * 1000};
    if (o.peer == PEER_NATS) {
        fill_in(&c); /* INFO */
        nats_setup(&c, &o);
    }
    char *value = malloc((size_t)o.size);
    int64_t *sent_at = calloc((size_t)o.pipeline, sizeof *sent_at);
    rn_hist_t *h = rn_hist_new();
    if (!value || !sent_at || !h)
        die("%s", "out of memory");
    for (long long i = 0; i < o.size; i++)
        value[i] = (char)('a' + (i * 7 + 3) % 26);

    long long sent = 0, acked = 0, failed = 0;
    int64_t start = now_ns();
    while (acked < o.messages) {
        long long room = o.pipeline - (sent - acked);
        long long first = sent;
        for (; room > 0 && sent < o.messages; room--, sent++) {
            if (o.peer == PEER_REDIS)
                redis_command(&c, &o, value);
            else if (o.peer == PEER_LOOPBACK)
                out_append(&c, value, (size_t)o.size);
            else
                nats_command(&c, &o, value, sent);
        }
        int64_t t = now_ns();
        for (long long s = first; s < sent; s++)
            sent_at[s % o.pipeline] = t;
        flush_out(&c);
        /* Read at least one acknowledgement, then whatever else has arrived. */
        long long before = acked;
        while (acked == before) {
            fill_in(&c);
            int64_t now = now_ns();
            size_t used;
            bool ok;
            long long seq;
            for (;;) {
                if (o.peer == PEER_REDIS) {
                    used = redis_reply(&c, &ok);
                    seq = acked;
                } else if (o.peer == PEER_LOOPBACK) {
                    used = c.in_len >= (size_t)o.size ? (size_t)o.size : 0;
                    seq = acked;
                    ok = true;
                } else {
                    used = nats_message(&c, &seq, &ok);
                }
                if (!used)
                    break;
                consume_in(&c, used);
                if (seq < 0)
                    continue;
                if (ok)
                    rn_hist_record(h, (uint64_t)(now - sent_at[seq % o.pipeline]));
                else if (failed++ == 0)
                    fprintf(stderr, "runnel-peer-bench: a record was refused\n");
                acked++;
            }
            if (c.out_len)
                flush_out(&c); /* PONGs */
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    report(&o, h, acked - failed, failed, secs);
    close(c.fd);
    if (o.peer == PEER_LOOPBACK)
        wait(NULL); /* the echo process exits at EOF */
    free(c.in);
    free(c.out);
    free(value);
    free(sent_at);
    rn_hist_free(h);
    return failed ? 1 : 0;
}
