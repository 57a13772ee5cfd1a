/* pgserver.c - see pgserver.h. */
#include "pgserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256], g_bindir[512], g_runas[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static void find_bindir(void)
{
    const char *env = getenv("PG_BINDIR");
    if (env) {
        snprintf(g_bindir, sizeof g_bindir, "%s", env);
        return;
    }
    snprintf(g_bindir, sizeof g_bindir, "/usr/lib/postgresql/15/bin");
    char probe[600];
    snprintf(probe, sizeof probe, "%s/initdb", g_bindir);
    if (access(probe, X_OK) == 0)
        return;
    FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p && fgets(g_bindir, sizeof g_bindir, p))
        g_bindir[strcspn(g_bindir, "\n")] = '\0';
    if (p)
        pclose(p);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (g_runas[0])
        snprintf(full, sizeof full, "runuser -u %s -- sh -c '%s'", g_runas, cmd);
    else
        snprintf(full, sizeof full, "sh -c '%s'", cmd);
    return system(full);
}

static void print_log(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tail -n 30 %s/log %s/initdb.log 1>&2", g_dir, g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no server log)\n");
}

int rn_pg_start(char *conninfo, unsigned long len)
{
    find_bindir();
    snprintf(g_dir, sizeof g_dir, "/tmp/rn-pg-XXXXXX"); /* short: the socket path is limited */
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a temp dir\n");
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "running as root and there is no 'postgres' account to run the "
                            "server as (install the Debian package postgresql)\n");
            return -1;
        }
        snprintf(g_runas, sizeof g_runas, "postgres");
        if (chown(g_dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    chmod(g_dir, 0700);
    int port = free_port();
    if (sh("%s/initdb -D %s/data -A trust -U runnel -E UTF8 --no-sync >%s/initdb.log 2>&1",
           g_bindir, g_dir, g_dir) != 0) {
        fprintf(stderr, "initdb failed (bindir %s):\n", g_bindir);
        print_log();
        return -1;
    }
    if (sh("%s/pg_ctl -D %s/data -l %s/log -w -t 60 -o \"-p %d -k %s -c listen_addresses=127.0.0.1 "
           "-c fsync=off\" start >/dev/null 2>&1", g_bindir, g_dir, g_dir, port, g_dir) != 0) {
        fprintf(stderr, "the PostgreSQL server did not start on port %d:\n", port);
        print_log();
        return -1;
    }
    snprintf(conninfo, len,
             "host=127.0.0.1 port=%d user=runnel dbname=postgres connect_timeout=10", port);
    return 0;
}

void rn_pg_stop(void)
{
    if (g_dir[0]) {
        sh("%s/pg_ctl -D %s/data -m immediate stop >/dev/null 2>&1", g_bindir, g_dir);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_dir);
        g_dir[0] = '\0';
    }
}
