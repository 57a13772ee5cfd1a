/*
 * harness.h - integration tests start real runnel-broker processes on loopback.
 *
 * A broker is started with --listen 127.0.0.1:0: it picks a free port and, once it accepts
 * connections, writes "HOST:PORT\n" to DATA_DIR/listening. The harness waits for that file,
 * so ports are chosen at run time and never fixed. Brokers can be stopped with SIGTERM
 * (clean), SIGKILL (crash), SIGSTOP/SIGCONT (stall) and restarted on the same data dir and
 * port.
 *
 * Brokers die with the test process (PR_SET_PDEATHSIG), so an aborted test leaves none behind.
 *
 * Paths of the built binaries come from the environment CTest sets:
 *   RUNNEL_BROKER_BIN, RUNNEL_CLI_BIN, RUNNEL_BENCH_BIN
 */
#ifndef RN_HARNESS_H
#define RN_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rn_hbroker {
    pid_t pid;
    int node_id;
    char data_dir[512];
    char addr[64];        /* "127.0.0.1:PORT" once started */
    char log_path[600];   /* the broker's stderr */
    char *extra[32];      /* extra "--set" values, NULL-terminated */
} rn_hbroker_t;

/* A fresh temporary directory under $TMPDIR (or /tmp); abort()s on failure. Free with free(). */
char *rn_h_tmpdir(const char *prefix);
/* rm -rf */
void rn_h_rmtree(const char *path);

/*
 * Starts a broker on data_dir (created) with optional "key=value" settings (NULL-terminated,
 * may be NULL), each passed as --set key=value; an entry starting with "--" is passed as it
 * is ("--config=FILE"). Waits up to 20 s until it listens. Returns 0, or -1 after printing the
 * broker's log to stderr.
 */
int rn_h_broker_start(rn_hbroker_t *b, const char *data_dir, const char *const *settings);
/* Starts it again on the same data dir and port after a stop or kill. */
int rn_h_broker_restart(rn_hbroker_t *b);
/* SIGTERM and wait (up to 30 s); returns the exit status (0 for a clean stop), -1 on timeout. */
int rn_h_broker_stop(rn_hbroker_t *b);
/* SIGKILL and reap. */
void rn_h_broker_kill(rn_hbroker_t *b);
void rn_h_broker_signal(rn_hbroker_t *b, int sig);
/* True while the process runs. */
bool rn_h_broker_alive(rn_hbroker_t *b);
/* Kills the broker if it still runs and frees what start allocated. */
void rn_h_broker_release(rn_hbroker_t *b);
/* Prints the broker's stderr log (for a failing test). */
void rn_h_broker_dump_log(const rn_hbroker_t *b);

/* Runs argv (argv[0] a path) with stdin from in_path (NULL: /dev/null), stdout to out_path
 * (NULL: /dev/null), stderr to err_path (NULL: inherited); returns its exit status, -1 when
 * it could not run or was killed, after at most timeout_s seconds (then SIGKILLed). */
int rn_h_run(char *const argv[], const char *in_path, const char *out_path, const char *err_path,
             int timeout_s);

/* The binary path from the environment variable (abort()s when unset). */
const char *rn_h_bin(const char *env_name);

/* A TCP connection to "host:port" (blocking), or -1. */
int rn_h_connect(const char *addr);

/*
 * For about ms, samples every millisecond whether a thread of process pid other than
 * skip_tid (0: none) is running or runnable (state R in /proc/PID/task/TID/stat); returns
 * the share of samples in which one was. A polling loop is R even while other processes hold
 * the CPU (it is runnable), a sleeping one is S, so this does not depend on the machine's load.
 */
double rn_h_running_share(pid_t pid, pid_t skip_tid, int ms);

#endif
