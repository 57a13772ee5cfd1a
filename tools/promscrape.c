/* promscrape.c - see promscrape.h. */
#include "promscrape.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static int connect_to(const char *addr, int timeout_ms, char *errbuf, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        snprintf(errbuf, errlen, "'%s' is not HOST:PORT", addr);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "%s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(errbuf, errlen, "%s: %s", addr, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    struct pollfd p = {fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
        soerr != 0) {
        snprintf(errbuf, errlen, "%s: %s", addr, soerr ? strerror(soerr) : "connect timed out");
        close(fd);
        return -1;
    }
    return fd;
}

int prom_http_get(const char *addr, const char *path, int timeout_ms, char **body, char *errbuf,
                  size_t errlen)
{
    *body = NULL;
    double deadline = now_ms() + timeout_ms;
    int fd = connect_to(addr, timeout_ms, errbuf, errlen);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, addr);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(errbuf, errlen, "%s: sending the request failed", addr);
        close(fd);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        int left = (int)(deadline - now_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1) {
            snprintf(errbuf, errlen, "%s%s: no complete answer within %d ms", addr, path,
                     timeout_ms);
            free(buf);
            close(fd);
            return -1;
        }
        if (len + 4096 >= cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) {
                free(buf);
                close(fd);
                snprintf(errbuf, errlen, "out of memory");
                return -1;
            }
            buf = grown;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !sep) {
        snprintf(errbuf, errlen, "%s%s: not an HTTP answer", addr, path);
        free(buf);
        return -1;
    }
    sep += 4;
    memmove(buf, sep, strlen(sep) + 1);
    *body = buf;
    return status;
}

bool prom_parse(const char *text, prom_scrape_t *out)
{
    out->samples = NULL;
    out->n = 0;
    size_t cap = 0;
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len && line[0] != '#') {
            size_t name_len = strcspn(line, "{ ");
            const char *labels = "", *labels_end = line + name_len, *rest = line + name_len;
            if (line[name_len] == '{') {
                labels = line + name_len + 1;
                labels_end = strchr(labels, '}');
                rest = labels_end ? labels_end + 1 : line + len;
            }
            if (labels_end && rest < line + len) {
                if (out->n == cap) {
                    cap = cap ? cap * 2 : 256;
                    prom_sample_t *g = realloc(out->samples, cap * sizeof *g);
                    if (!g)
                        return false;
                    out->samples = g;
                }
                prom_sample_t *s = &out->samples[out->n++];
                s->name = strndup(line, name_len);
                s->labels = labels[0] ? strndup(labels, (size_t)(labels_end - labels)) : strdup("");
                s->value = strtod(rest, NULL);
                if (!s->name || !s->labels)
                    return false;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return true;
}

void prom_free(prom_scrape_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->samples[i].name);
        free(s->samples[i].labels);
    }
    free(s->samples);
    s->samples = NULL;
    s->n = 0;
}

bool prom_label(const char *labels, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = labels; (p = strstr(p, key)); p += kl) {
        if ((p == labels || p[-1] == ',') && p[kl] == '=' && p[kl + 1] == '"') {
            const char *v = p + kl + 2, *end = strchr(v, '"');
            if (!end)
                return false;
            snprintf(buf, len, "%.*s", (int)(end - v), v);
            return true;
        }
    }
    return false;
}

static bool matches(const prom_sample_t *s, const char *name, const char *match)
{
    return strcmp(s->name, name) == 0 && (!match || strstr(s->labels, match));
}

double prom_sum(const prom_scrape_t *s, const char *name, const char *match, size_t *count)
{
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (matches(&s->samples[i], name, match)) {
            sum += s->samples[i].value;
            n++;
        }
    }
    if (count)
        *count = n;
    return sum;
}

typedef struct bucket {
    double le, count;
} bucket_t;

/* The buckets of name (summed over matching series), by increasing le; returns how many. */
static size_t buckets_of(const prom_scrape_t *s, const char *bname, const char *match,
                         bucket_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; s && i < s->n; i++) {
        if (!matches(&s->samples[i], bname, match))
            continue;
        char le[40];
        if (!prom_label(s->samples[i].labels, "le", le, sizeof le))
            continue;
        double bound = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
        size_t k = 0;
        while (k < n && out[k].le != bound)
            k++;
        if (k == n) {
            if (n == max)
                continue;
            out[n++] = (bucket_t){bound, 0};
        }
        out[k].count += s->samples[i].value;
    }
    for (size_t a = 1; a < n; a++) /* insertion sort: a few dozen buckets */
        for (size_t b = a; b > 0 && out[b - 1].le > out[b].le; b--) {
            bucket_t t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return n;
}

double prom_quantile(const prom_scrape_t *s, const prom_scrape_t *prev, const char *name,
                     const char *match, double q)
{
    char bname[256];
    snprintf(bname, sizeof bname, "%s_bucket", name);
    bucket_t cur[64], old[64];
    size_t n = buckets_of(s, bname, match, cur, 64);
    size_t m = prev ? buckets_of(prev, bname, match, old, 64) : 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m; k++)
            if (old[k].le == cur[i].le)
                cur[i].count -= old[k].count;
    if (n == 0 || cur[n - 1].count <= 0)
        return NAN;
    double rank = q * cur[n - 1].count;
    for (size_t i = 0; i < n; i++)
        if (cur[i].count >= rank)
            return isinf(cur[i].le) && i > 0 ? cur[i - 1].le : cur[i].le;
    return NAN;
}
