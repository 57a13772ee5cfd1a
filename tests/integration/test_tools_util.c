#include "test_tools_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *scratch;

const char *tt_dir(void)
{
    if (!scratch)
        scratch = rn_h_tmpdir("tools");
    return scratch;
}

void tt_cleanup(void)
{
    if (scratch) {
        rn_h_rmtree(scratch);
        free(scratch);
        scratch = NULL;
    }
}

const char *tt_path(const char *name)
{
    static char bufs[8][700];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tt_dir(), name);
    return b;
}

char *tt_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        abort();
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    if (!buf)
        abort();
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

tt_run_t tt_run(const char *bin_env, const char *in_path, ...)
{
    static int seq;
    char *argv[128];
    int n = 0;
    argv[n++] = (char *)rn_h_bin(bin_env);
    va_list ap;
    va_start(ap, in_path);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 127)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char out_name[32], err_name[32];
    snprintf(out_name, sizeof out_name, "run%d.out", seq);
    snprintf(err_name, sizeof err_name, "run%d.err", seq++);
    char out_path[700], err_path[700];
    snprintf(out_path, sizeof out_path, "%s", tt_path(out_name));
    snprintf(err_path, sizeof err_path, "%s", tt_path(err_name));
    tt_run_t r = {0};
    r.status = rn_h_run(argv, in_path, out_path, err_path, 240);
    r.out = tt_slurp(out_path, &r.out_len);
    r.err = tt_slurp(err_path, NULL);
    unlink(out_path);
    unlink(err_path);
    return r;
}

void tt_run_free(tt_run_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void tt_dump(const char *what, const tt_run_t *r)
{
    fprintf(stderr, "---- %s: exit status %d ----\n-- stdout (%zu bytes):\n%.4000s\n-- stderr:\n%.4000s\n",
            what, r->status, r->out_len, r->out ? r->out : "", r->err ? r->err : "");
}

size_t tt_count_lines(const char *s)
{
    size_t n = 0;
    const char *p = s;
    for (; *p; p++)
        n += *p == '\n';
    if (p > s && p[-1] != '\n')
        n++;
    return n;
}

void tt_last_line(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n')
        n--;
    size_t start = n;
    while (start && s[start - 1] != '\n')
        start--;
    snprintf(buf, len, "%.*s", (int)(n - start), s + start);
}

int tt_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        abort();
    close(fd); /* bound, never listened: connecting to it is refused */
    return ntohs(sa.sin_port);
}

int tt_broker_start(rn_hbroker_t *b)
{
    memset(b, 0, sizeof *b);
    b->node_id = 1;
    if (rn_h_broker_start(b, tt_path("broker"), NULL) != 0)
        return -1;
    setenv("RUNNEL_BROKERS", b->addr, 1);
    return 0;
}

int tt_broker_stop(rn_hbroker_t *b)
{
    int status = rn_h_broker_stop(b);
    if (status != 0)
        rn_h_broker_dump_log(b);
    for (int i = 0; b->extra[i]; i++)
        free(b->extra[i]);
    return status;
}
