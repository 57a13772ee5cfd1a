/* main.c - runnel-broker's command line: flags, config file, --set overrides, signals. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "kvfile.h"
#include "logging.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: runnel-broker --data-dir DIR --listen HOST:PORT [--node-id N]\n"
            "                     [--metrics-listen HOST:PORT] [--config FILE]\n"
            "                     [--controller-listen A.B.C.D:PORT\n"
            "                      --controller-quorum ID@A.B.C.D:PORT,...]\n"
            "                     [--set key=value]... [--log-level debug|info|warn|error]\n"
            "                     [--log-format text|json]\n"
            "       runnel-broker --help | --version\n"
            "\n"
            "Runs a Runnel broker on one event loop: a single node, or with the two\n"
            "--controller-* flags a member of a controller quorum (docs/cluster.md).\n"
            "\n"
            "  --data-dir DIR        topics, partition logs and producer ids (log.dirs)\n"
            "  --listen HOST:PORT    address to listen on; port 0 picks a free one; the bound\n"
            "                        address is written to DIR/listening (listeners)\n"
            "  --node-id N           this broker's id (node.id, default 1)\n"
            "  --metrics-listen HOST:PORT\n"
            "                        serve /metrics, /healthz and /readyz over HTTP there; the\n"
            "                        bound address is written to DIR/metrics-listening\n"
            "                        (metrics.listen)\n"
            "  --controller-listen A.B.C.D:PORT\n"
            "                        this broker's controller-quorum (raft) listener; a fixed\n"
            "                        port (controller.listen)\n"
            "  --controller-quorum 1@A.B.C.D:PORT,2@...,3@...\n"
            "                        every voter of the quorum, this node among them\n"
            "                        (controller.quorum.voters)\n"
            "  --config FILE         key=value lines; '#' starts a comment\n"
            "  --set key=value       one setting; overrides the file; may repeat\n"
            "  --log-level LEVEL     stderr log level (default info)\n"
            "  --log-format FORMAT   text (default) or json: one JSON object per line\n"
            "\n"
            "Flags win over --set, which wins over --config. Settings:\n\n");
    rn_bcfg_print_keys(out);
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "runnel-broker: error: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nRun 'runnel-broker --help' for usage.\n");
    return EXIT_USAGE;
}

struct args {
    const char *data_dir, *listen, *node_id, *metrics_listen, *config, *log_level, *log_format;
    const char *controller_listen, *controller_quorum;
    char **sets;
    int nsets;
};

static int parse_args(int argc, char **argv, struct args *a, bool *exit_now)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"listen", required_argument, NULL, 'l'},
        {"node-id", required_argument, NULL, 'n'},  {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},      {"log-level", required_argument, NULL, 'L'},
        {"metrics-listen", required_argument, NULL, 'm'},
        {"log-format", required_argument, NULL, 'F'},
        {"controller-listen", required_argument, NULL, 'C'},
        {"controller-quorum", required_argument, NULL, 'Q'},
        {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a->data_dir = optarg; break;
        case 'l': a->listen = optarg; break;
        case 'n': a->node_id = optarg; break;
        case 'm': a->metrics_listen = optarg; break;
        case 'c': a->config = optarg; break;
        case 'L': a->log_level = optarg; break;
        case 'F': a->log_format = optarg; break;
        case 'C': a->controller_listen = optarg; break;
        case 'Q': a->controller_quorum = optarg; break;
        case 's': a->sets[a->nsets++] = optarg; break;
        case 'h':
            usage(stdout);
            *exit_now = true;
            return 0;
        case 'V':
            printf("runnel-broker %s\n", RUNNEL_VERSION);
            *exit_now = true;
            return 0;
        case ':':
            return fail("flag '%s' needs a value%s", argv[optind - 1], "");
        default:
            return fail("unknown flag '%s'%s", argv[optind - 1], "");
        }
    }
    if (optind < argc)
        return fail("unexpected argument '%s'%s (settings go after --set)", argv[optind], "");
    return 0;
}

/* Defaults, then the file, then --set, then the dedicated flags. */
static int build_config(const struct args *a, rn_bcfg_t *cfg)
{
    char err[1024];
    if (a->config && rn_bcfg_load_file(cfg, a->config, err, sizeof err) != RN_OK)
        return fail("%s%s", err, "");
    for (int i = 0; i < a->nsets; i++) {
        char *pair = strdup(a->sets[i]), *key, *value;
        if (!pair)
            return fail("out of memory%s%s", "", "");
        if (rn_kv_split(pair, &key, &value) != RN_OK) {
            free(pair);
            return fail("--set '%s': expected key=value%s", a->sets[i], "");
        }
        rn_err_t e = rn_bcfg_set(cfg, key, value, err, sizeof err);
        free(pair);
        if (e != RN_OK)
            return fail("--set: %s%s", err, "");
    }
    struct {
        const char *flag, *key, *value;
    } flags[] = {{"--data-dir", "log.dirs", a->data_dir},
                 {"--listen", "listeners", a->listen},
                 {"--node-id", "node.id", a->node_id},
                 {"--metrics-listen", "metrics.listen", a->metrics_listen},
                 {"--controller-listen", "controller.listen", a->controller_listen},
                 {"--controller-quorum", "controller.quorum.voters", a->controller_quorum}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (flags[i].value && rn_bcfg_set(cfg, flags[i].key, flags[i].value, err, sizeof err))
            return fail("%s: %s", flags[i].flag, err);
    }
    if (rn_bcfg_check(cfg, err, sizeof err) != RN_OK)
        return fail("%s%s", err, "");
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    a.sets = calloc((size_t)argc + 1, sizeof *a.sets);
    if (!a.sets)
        return 1;
    bool exit_now = false;
    int rc = parse_args(argc, argv, &a, &exit_now);
    if (rc != 0 || exit_now) {
        free(a.sets);
        return rc;
    }
    if (a.log_level) {
        int level = rn_logging_parse_level(a.log_level);
        if (level < 0) {
            free(a.sets);
            return fail("--log-level '%s': expected debug, info, warn or error%s", a.log_level,
                        "");
        }
        rn_logging_set_level((rn_level_t)level);
    }
    if (a.log_format) {
        int format = rn_logging_parse_format(a.log_format);
        if (format < 0) {
            free(a.sets);
            return fail("--log-format '%s': expected text or json%s", a.log_format, "");
        }
        rn_logging_set_format((rn_log_format_t)format);
    }
    rn_bcfg_t cfg;
    rn_bcfg_init(&cfg);
    rc = build_config(&a, &cfg);
    free(a.sets);
    if (rc != 0) {
        rn_bcfg_free(&cfg);
        return rc;
    }
    /* Writes to a closed socket fail with EPIPE instead of killing the broker; a write past
     * RLIMIT_FSIZE fails with EFBIG (a storage error for that produce) instead of SIGXFSZ. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    /* raft_uv's disk work shares libuv's thread pool (4 threads by default) with the logs'
     * fsyncs and the topic load (docs/cluster.md §9). */
    if (rn_bcfg_cluster_mode(&cfg))
        setenv("UV_THREADPOOL_SIZE", "8", 0);
    rc = rn_broker_run(&cfg);
    rn_bcfg_free(&cfg);
    return rc;
}
