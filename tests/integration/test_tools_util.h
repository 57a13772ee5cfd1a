/*
 * test_tools_util.h - what the tools' integration tests share: running `runnel` and
 * `runnel-bench` as child processes with captured output, and reading that output back.
 */
#ifndef RN_TEST_TOOLS_UTIL_H
#define RN_TEST_TOOLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

typedef struct tt_run {
    int status;         /* exit status, -1 when it could not run or was killed */
    char *out;          /* stdout, NUL-terminated (free with tt_run_free) */
    size_t out_len;
    char *err;          /* stderr */
} tt_run_t;

/* A fresh scratch directory for the test program (under TMPDIR); removed by tt_cleanup. */
const char *tt_dir(void);
void tt_cleanup(void);
/* tt_dir()/name, in a static rotating buffer (valid for the next 8 calls). */
const char *tt_path(const char *name);

/*
 * Runs bin (RUNNEL_CLI_BIN or RUNNEL_BENCH_BIN) with the NULL-terminated arguments, stdin from
 * in_path (NULL: /dev/null), and captures stdout and stderr. Times out after 240 s.
 */
tt_run_t tt_run(const char *bin_env, const char *in_path, ...) __attribute__((sentinel));
void tt_run_free(tt_run_t *r);
/* Prints the command's output when status differs (for a failing assertion). */
void tt_dump(const char *what, const tt_run_t *r);
/* In a cmocka test: asserts r's exit status, printing the command's output when it differs. */
#define EXPECT_STATUS(r, want, what)                                                         \
    do {                                                                                     \
        if ((r).status != (want))                                                            \
            tt_dump(what, &(r));                                                             \
        assert_int_equal((r).status, (want));                                                \
    } while (0)

/* The whole file, NUL-terminated; *len may be NULL. abort()s on failure. */
char *tt_slurp(const char *path, size_t *len);

/* Number of lines in s (a final line without '\n' counts). */
size_t tt_count_lines(const char *s);
/* The last non-empty line of s, copied into buf. */
void tt_last_line(const char *s, char *buf, size_t len);

/* A loopback TCP port that nothing listens on right now. */
int tt_closed_port(void);

/* Starts a broker for the test program and exports RUNNEL_BROKERS=its address. */
int tt_broker_start(rn_hbroker_t *b);
/* Stops it (SIGTERM); returns its exit status. */
int tt_broker_stop(rn_hbroker_t *b);

#endif
