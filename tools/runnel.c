/*
 * runnel - the command-line tool: topics, produce, consume and offsets, with the conventions
 * of kafka-topics, kafka-console-* and kcat (see docs/cli.md).
 *
 *   runnel [-b HOST:PORT[,…]] COMMAND [ARGS…]
 *
 * Global options come before the command; -b is also accepted after it, as kcat users type it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: runnel [-b HOST:PORT[,HOST:PORT…]] COMMAND [ARGS…]\n"
    "\n"
    "Commands:\n"
    "  topic create NAME --partitions N   create a topic (also: delete, list, describe)\n"
    "  produce -t TOPIC                   send one record per input line\n"
    "  consume -t TOPIC                   print records, one per line\n"
    "  offsets -t TOPIC                   earliest and latest offset of each partition\n"
    "  top [-t TOPIC] [--processor H:P]   live rates, end offsets, processor lag and freshness\n"
    "  cluster status                     brokers, active controller, raft term (fenced?)\n"
    "  cluster rebalance-leaders          move leadership back to preferred replicas\n"
    "\n"
    "Options:\n"
    "  -b, --brokers HOST:PORT[,…]  bootstrap brokers (default: $RUNNEL_BROKERS, then " CLI_DEFAULT_BROKERS ")\n"
    "  -h, --help                   this help; 'runnel COMMAND --help' for a command's own\n"
    "  -V, --version                print the version\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n"
    "Examples:\n"
    "  runnel topic create clickstream --partitions 6\n"
    "  runnel produce -t clickstream --key-field user_id -l events.jsonl\n"
    "  runnel consume -t clickstream -o beginning -e -J\n";

static int dispatch(cli_t *cli, int argc, char **argv)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "topic") == 0 || strcmp(cmd, "topics") == 0)
        return cli_topic_main(cli, argc, argv);
    if (strcmp(cmd, "produce") == 0 || strcmp(cmd, "producer") == 0 || strcmp(cmd, "P") == 0)
        return cli_produce_main(cli, argc, argv);
    if (strcmp(cmd, "consume") == 0 || strcmp(cmd, "consumer") == 0 || strcmp(cmd, "C") == 0)
        return cli_consume_main(cli, argc, argv);
    if (strcmp(cmd, "offsets") == 0)
        return cli_offsets_main(cli, argc, argv);
    if (strcmp(cmd, "top") == 0)
        return cli_top_main(cli, argc, argv);
    if (strcmp(cmd, "cluster") == 0)
        return cli_cluster_main(cli, argc, argv);
    if (strcmp(cmd, "help") == 0) {
        if (argc > 1) {
            char *sub[] = {argv[1], "--help", NULL};
            return dispatch(cli, 2, sub);
        }
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    return cli_usage_error(NULL, "unknown command '%s' (commands: topic, produce, consume, offsets, top, cluster)",
                           cmd);
}

int main(int argc, char **argv)
{
    /* A closed pipe (`runnel consume | head`) ends the write loop through fwrite's error. */
    signal(SIGPIPE, SIG_IGN);

    cli_t cli = {CLI_DEFAULT_BROKERS, "default"};
    const char *env = getenv("RUNNEL_BROKERS");
    if (env && *env) {
        cli.brokers = env;
        cli.brokers_from = "RUNNEL_BROKERS";
    }

    /* Global options by hand: getopt would permute the command's own flags into ours. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *value = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("runnel %s (librunnel %s)\n", RUNNEL_VERSION, rn_version());
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "-b") == 0 || strcmp(a, "--brokers") == 0 ||
            strcmp(a, "--bootstrap-server") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(NULL, "option '%s' needs a value", a);
            value = argv[++i];
        } else if (strncmp(a, "-b", 2) == 0 && a[2]) {
            value = a + 2;
        } else if (strncmp(a, "--brokers=", 10) == 0) {
            value = a + 10;
        } else if (strncmp(a, "--bootstrap-server=", 19) == 0) {
            value = a + 19;
        } else {
            return cli_usage_error(NULL, "unknown option '%s'", a);
        }
        if (!cli_set_brokers(&cli, NULL, value))
            return CLI_EXIT_USAGE;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    return dispatch(&cli, argc - i, argv + i);
}
