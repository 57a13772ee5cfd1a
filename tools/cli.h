/*
 * cli.h - what the commands of `runnel` share: the global options, argument parsing helpers,
 * and error reporting that says what failed and what to do about it.
 *
 * Exit statuses, for every command:
 *   0  success
 *   1  the operation failed (broker unreachable, topic missing, a record not delivered, …)
 *   2  the command line is wrong (unknown flag, missing or bad value); nothing was attempted
 *
 * Diagnostics go to stderr, data to stdout, so `runnel consume … | jq` never sees a warning.
 */
#ifndef RN_TOOLS_CLI_H
#define RN_TOOLS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "runnel/runnel.h"

#define CLI_DEFAULT_BROKERS "127.0.0.1:9092"
#define CLI_TIMEOUT_MS 15000

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

typedef struct cli {
    const char *brokers;        /* bootstrap list, never NULL */
    const char *brokers_from;   /* "-b", "RUNNEL_BROKERS" or "default": named in errors */
} cli_t;

/* Commands: argv[0] is the command's own name ("produce", "topic", …). */
int cli_topic_main(cli_t *cli, int argc, char **argv);
int cli_produce_main(cli_t *cli, int argc, char **argv);
int cli_consume_main(cli_t *cli, int argc, char **argv);
int cli_offsets_main(cli_t *cli, int argc, char **argv);
int cli_top_main(cli_t *cli, int argc, char **argv);
int cli_cluster_main(cli_t *cli, int argc, char **argv);

/* "runnel CMD: <message>" and "Try 'runnel CMD --help'." on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "runnel: <message>" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Turns a getopt_long '?' or ':' into a usage error naming the flag. Call with the value
 * getopt_long returned and the argv it scanned.
 */
int cli_getopt_error(const char *cmd, int c, char **argv);

/* Strict integer parsing: the whole string, within [min, max]. */
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * Sets cli->brokers from a -b value after checking its shape (HOST:PORT[,HOST:PORT…]);
 * returns false (after a usage error naming -b) when it is malformed.
 */
bool cli_set_brokers(cli_t *cli, const char *cmd, const char *value);

/*
 * Opens a TCP connection to each bootstrap address in turn (3 s each) and closes it; returns
 * true when one answers. Otherwise prints, for each, why it failed ("connection refused") and
 * what to do, and returns false. Commands call this first so an unreachable broker fails fast
 * with a precise message instead of a library timeout.
 */
bool cli_brokers_reachable(const cli_t *cli);

/* A client config with bootstrap.servers set; NULL (message printed) on failure. */
rn_conf_t *cli_conf_new(const cli_t *cli);
/* Applies one -X key=value; prints the library's message and returns false when refused. */
bool cli_conf_set_pair(rn_conf_t *conf, const char *cmd, const char *pair);

/* An admin client; NULL (message printed) on failure. */
rn_admin_t *cli_admin_new(const cli_t *cli);

/*
 * Describes one topic. Returns the metadata (free with rn_metadata_free) and its topic entry,
 * or NULL after printing "topic 'x' does not exist — create it with …" or the error.
 */
rn_metadata_t *cli_describe_topic(const cli_t *cli, rn_admin_t *admin, const char *topic,
                                  const rn_topic_info_t **info);

/*
 * Prints "runnel: <what>: <error> — <hint>" where the hint depends on the error (unreachable
 * broker, missing topic, …) and detail is the broker's or library's message (may be NULL or
 * empty). Returns CLI_EXIT_FAIL.
 */
int cli_report(const cli_t *cli, const char *what, rn_err_t err, const char *detail);

/* Monotonic seconds, for rates. */
double cli_now_s(void);

#endif
