#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

char *rn_h_tmpdir(const char *prefix)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *p = malloc(strlen(base) + strlen(prefix) + 16);
    if (!p)
        abort();
    sprintf(p, "%s/%s-XXXXXX", base, prefix);
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

void rn_h_rmtree(const char *path)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)path, NULL};
    rn_h_run(argv, NULL, NULL, NULL, 60);
}

const char *rn_h_bin(const char *env_name)
{
    const char *v = getenv(env_name);
    if (!v || !*v) {
        fprintf(stderr, "harness: %s is not set (run the test through ctest)\n", env_name);
        abort();
    }
    return v;
}

static int wait_listening(rn_hbroker_t *b, int timeout_ms)
{
    char path[700];
    snprintf(path, sizeof path, "%s/listening", b->data_dir);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[64] = "";
            bool ok = fgets(line, sizeof line, f) != NULL;
            fclose(f);
            line[strcspn(line, "\r\n")] = '\0';
            if (ok && strchr(line, ':')) {
                snprintf(b->addr, sizeof b->addr, "%s", line);
                return 0;
            }
        }
        int status;
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            fprintf(stderr, "harness: broker exited during start-up (status %d)\n", status);
            b->pid = 0;
            rn_h_broker_dump_log(b);
            return -1;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "harness: broker did not listen within %d ms\n", timeout_ms);
    rn_h_broker_dump_log(b);
    return -1;
}

static int spawn(rn_hbroker_t *b, const char *listen)
{
    char path[700];
    snprintf(path, sizeof path, "%s/listening", b->data_dir);
    unlink(path);
    const char *bin = rn_h_bin("RUNNEL_BROKER_BIN");
    char node[16];
    snprintf(node, sizeof node, "%d", b->node_id);
    char *argv[100];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "--data-dir";
    argv[n++] = b->data_dir;
    argv[n++] = "--listen";
    argv[n++] = (char *)listen;
    argv[n++] = "--node-id";
    argv[n++] = node;
    for (int i = 0; b->extra[i] && n < 96; i++) {
        if (strncmp(b->extra[i], "--", 2) != 0) /* "--flag=value" goes in as it is */
            argv[n++] = "--set";
        argv[n++] = b->extra[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execv(bin, argv);
        _exit(127);
    }
    b->pid = pid;
    return wait_listening(b, 20000);
}

int rn_h_broker_start(rn_hbroker_t *b, const char *data_dir, const char *const *settings)
{
    int node_id = b->node_id ? b->node_id : 1;
    memset(b, 0, sizeof *b);
    b->node_id = node_id;
    snprintf(b->data_dir, sizeof b->data_dir, "%s", data_dir);
    mkdir(data_dir, 0755);
    snprintf(b->log_path, sizeof b->log_path, "%s.log", data_dir);
    for (int i = 0; settings && settings[i] && i < 31; i++)
        b->extra[i] = strdup(settings[i]);
    return spawn(b, "127.0.0.1:0");
}

int rn_h_broker_restart(rn_hbroker_t *b)
{
    char listen[64];
    snprintf(listen, sizeof listen, "%s", b->addr);
    /* The old port may sit in TIME_WAIT for a moment; the broker sets SO_REUSEADDR. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (spawn(b, listen) == 0)
            return 0;
        if (b->pid)
            rn_h_broker_kill(b);
        sleep_ms(100);
    }
    return -1;
}

int rn_h_broker_stop(rn_hbroker_t *b)
{
    if (!b->pid)
        return -1;
    kill(b->pid, SIGTERM);
    for (int waited = 0; waited < 30000; waited += 10) {
        int status;
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            b->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(10);
    }
    rn_h_broker_kill(b);
    return -1;
}

void rn_h_broker_kill(rn_hbroker_t *b)
{
    if (!b->pid)
        return;
    kill(b->pid, SIGKILL);
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
}

void rn_h_broker_signal(rn_hbroker_t *b, int sig)
{
    if (b->pid)
        kill(b->pid, sig);
}

bool rn_h_broker_alive(rn_hbroker_t *b)
{
    if (!b->pid)
        return false;
    int status;
    if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
        b->pid = 0;
        return false;
    }
    return true;
}

void rn_h_broker_release(rn_hbroker_t *b)
{
    rn_h_broker_kill(b);
    for (int i = 0; i < 32 && b->extra[i]; i++) {
        free(b->extra[i]);
        b->extra[i] = NULL;
    }
}

void rn_h_broker_dump_log(const rn_hbroker_t *b)
{
    FILE *f = fopen(b->log_path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- broker %d log (%s) ----\n", b->node_id, b->log_path);
    char line[1024];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fprintf(stderr, "---- end of broker log ----\n");
    fclose(f);
}

int rn_h_run(char *const argv[], const char *in_path, const char *out_path, const char *err_path,
             int timeout_s)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        if (err_path) {
            int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (err >= 0)
                dup2(err, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    for (int waited = 0; waited < timeout_s * 1000; waited += 10) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fprintf(stderr, "harness: %s timed out after %d s\n", argv[0], timeout_s);
    return -1;
}

int rn_h_connect(const char *addr)
{
    char host[64];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Monotonic ms. */
static int64_t h_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True when some thread of pid other than skip_tid is in state R now. */
static bool any_thread_running(pid_t pid, pid_t skip_tid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool any = false;
    struct dirent *e;
    while (!any && (e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == (int)skip_tid)
            continue;
        char path[400], buf[512];
        snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread exited */
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *paren = strrchr(buf, ')'); /* "TID (comm) STATE ..." */
        any = paren && paren[1] == ' ' && paren[2] == 'R';
    }
    closedir(d);
    return any;
}

double rn_h_running_share(pid_t pid, pid_t skip_tid, int ms)
{
    int samples = 0, running = 0;
    for (int64_t end = h_mono_ms() + ms; h_mono_ms() < end; samples++) {
        running += any_thread_running(pid, skip_tid);
        usleep(1000);
    }
    return samples ? (double)running / samples : 0;
}
