#include "probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool rn_probe_split_addr(const char *addr, char *host, size_t host_len, char *port,
                         size_t port_len)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1])
        return false;
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= host_len || strlen(colon + 1) >= port_len)
        return false;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    snprintf(port, port_len, "%s", colon + 1);
    char *end;
    long p = strtol(port, &end, 10);
    return *end == '\0' && p >= 1 && p <= 65535;
}

/* getaddrinfo's errors (negative EAI_* values) travel as GAI_BASE - code, errno values as is. */
#define GAI_BASE 100000

/* Connects to one address with a timeout; 0, or an error code (see GAI_BASE). */
static int probe_one(const char *addr, int timeout_ms)
{
    char host[256], port[16];
    if (!rn_probe_split_addr(addr, host, sizeof host, port, sizeof port))
        return EINVAL;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai)
        return GAI_BASE - gai;
    int result = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            result = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            rc = poll(&pfd, 1, timeout_ms);
            if (rc == 0) {
                errno = ETIMEDOUT;
                rc = -1;
            } else if (rc > 0) {
                int so = 0;
                socklen_t sl = sizeof so;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
                errno = so;
                rc = so ? -1 : 0;
            }
        }
        result = rc == 0 ? 0 : errno;
        close(fd);
        if (result == 0)
            break;
    }
    freeaddrinfo(res);
    return result;
}

static const char *reason(int code, int timeout_ms, char *buf, size_t len)
{
    if (code >= GAI_BASE) {
        snprintf(buf, len, "cannot resolve the host (%s)", gai_strerror(-(code - GAI_BASE)));
        return buf;
    }
    switch (code) {
    case ECONNREFUSED: return "connection refused";
    case ETIMEDOUT:
        snprintf(buf, len, "no answer within %d ms", timeout_ms);
        return buf;
    case EINVAL: return "not HOST:PORT";
    default: return strerror(code);
    }
}

bool rn_probe_brokers(const char *list, int timeout_ms, char *why, size_t why_len)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    size_t used = 0;
    why[0] = '\0';
    char *save = NULL;
    for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        int code = probe_one(a, timeout_ms);
        if (code == 0)
            return true;
        char buf[128];
        int n = snprintf(why + used, why_len - used, "%s%s: %s", used ? "; " : "", a,
                         reason(code, timeout_ms, buf, sizeof buf));
        if (n > 0 && (size_t)n < why_len - used)
            used += (size_t)n;
    }
    return false;
}
