/*
 * cli_consume.c - `runnel consume` (kcat -C, kafka-console-consumer) and `runnel offsets`.
 *
 * Partitions are assigned directly (no group): all of the topic's, or the one given with -p.
 * Start offsets are resolved up front through ListOffsets, and so is each partition's end at
 * start-up: with -e a partition is finished once the consumer's position reaches that end,
 * so the command never depends on the timing of fetch responses.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_format.h"

static const char consume_usage[] =
    "Usage: runnel consume -t TOPIC [OPTIONS]\n"
    "\n"
    "Prints records to standard output, by default each value on a line of its own.\n"
    "Runs until interrupted, or until -c COUNT records or (with -e) the end of every partition.\n"
    "\n"
    "  -t, --topic TOPIC             topic to read (required)\n"
    "  -p, --partition N             read only partition N (default: all)\n"
    "  -o, --offset OFFSET           where to start in each partition (default beginning):\n"
    "                                  beginning  the oldest record kept\n"
    "                                  end        only records produced from now on\n"
    "                                  N          absolute offset N\n"
    "                                  -N         N records before the end\n"
    "                                  @TS        first record with timestamp >= TS (ms)\n"
    "  -c, --count COUNT             exit after COUNT records\n"
    "  -e, --exit-at-end             exit when every partition has been read to its end\n"
    "  -J, --json                    one JSON object per record: topic, partition, offset,\n"
    "                                timestamp, key, value (a JSON string), headers\n"
    "                                ([\"k\",\"v\",…]); a null key or value is null\n"
    "  -K, --key-delimiter DELIM     print key DELIM value\n"
    "  -f, --format FORMAT           print with FORMAT: %t topic, %p partition, %o offset,\n"
    "                                %k key, %s value, %T timestamp, %h headers (k=v,…),\n"
    "                                %K key length, %S value length, %% percent;\n"
    "                                escapes \\n \\t \\r \\\\\n"
    "  -X, --property KEY=VALUE      a client setting (fetch.max.wait.ms, …); repeat for more\n"
    "  -q, --quiet                   no summary on stderr\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n"
    "\n"
    "Examples:\n"
    "  runnel consume -t clickstream -e                 # everything, then exit\n"
    "  runnel consume -t clickstream -o -10 -e -J       # the last 10 of each partition, as JSON\n"
    "  runnel consume -t clickstream -p 2 -o @1700000000000 -f '%p:%o %k %s\\n'\n";

static const char offsets_usage[] =
    "Usage: runnel offsets -t TOPIC [-p N]\n"
    "\n"
    "Prints the earliest and the latest offset of each partition (the latest is the offset\n"
    "the next record will get; the partition holds latest - earliest records):\n"
    "  Topic: T  Partition: 0  Earliest: 0  Latest: 16678\n"
    "\n"
    "  -t, --topic TOPIC             the topic (required)\n"
    "  -p, --partition N             only partition N\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n";

typedef enum start_kind { START_BEGINNING, START_END, START_ABS, START_FROM_END, START_TS } start_kind_t;

typedef struct consume_args {
    const char *topic;
    int32_t partition;       /* -1: all */
    start_kind_t start;
    int64_t start_value;     /* the N of N, -N (as N) or @TS */
    int64_t count;           /* 0: unlimited */
    bool exit_at_end;
    bool json;
    bool quiet;
    const char *key_delim;
    const char *format;
} consume_args_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static bool parse_offset(const char *s, consume_args_t *a)
{
    if (strcmp(s, "beginning") == 0 || strcmp(s, "earliest") == 0) {
        a->start = START_BEGINNING;
        return true;
    }
    if (strcmp(s, "end") == 0 || strcmp(s, "latest") == 0) {
        a->start = START_END;
        return true;
    }
    if (s[0] == '@' || (s[0] == 's' && s[1] == '@')) {
        a->start = START_TS;
        return cli_parse_i64(s + (s[0] == '@' ? 1 : 2), 0, INT64_MAX, &a->start_value);
    }
    if (s[0] == '-') {
        a->start = START_FROM_END;
        return cli_parse_i64(s + 1, 0, INT64_MAX, &a->start_value);
    }
    a->start = START_ABS;
    return cli_parse_i64(s, 0, INT64_MAX, &a->start_value);
}

typedef struct part {
    int32_t id;
    int64_t start;      /* offset to assign (or RN_OFFSET_BEGINNING) */
    int64_t end;        /* log end offset when we started */
    bool done;
} part_t;

/* Resolves where each partition starts and ends. false after printing the error. */
static bool resolve_offsets(const cli_t *cli, rn_admin_t *admin, const consume_args_t *a,
                            part_t *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        part_t *p = &parts[i];
        int64_t earliest = 0;
        rn_err_t err = rn_admin_list_offsets(admin, a->topic, p->id, RN_OFFSET_END, &p->end,
                                             CLI_TIMEOUT_MS);
        if (err == RN_OK && a->start != START_END && a->start != START_TS)
            err = rn_admin_list_offsets(admin, a->topic, p->id, RN_OFFSET_BEGINNING, &earliest,
                                        CLI_TIMEOUT_MS);
        if (err == RN_OK && a->start == START_TS)
            err = rn_admin_list_offsets(admin, a->topic, p->id, a->start_value, &p->start,
                                        CLI_TIMEOUT_MS);
        if (err != RN_OK) {
            char what[300];
            snprintf(what, sizeof what, "cannot list offsets of '%s' partition %d", a->topic,
                     p->id);
            cli_report(cli, what, err, NULL);
            return false;
        }
        switch (a->start) {
        case START_BEGINNING: p->start = earliest; break;
        case START_END: p->start = p->end; break;
        case START_ABS:
            /* Outside the log: the nearest end of it, rather than a reset to either. */
            p->start = a->start_value < earliest ? earliest
                       : a->start_value > p->end ? p->end
                                                 : a->start_value;
            break;
        case START_FROM_END:
            p->start = p->end - a->start_value < earliest ? earliest : p->end - a->start_value;
            break;
        case START_TS: break;
        }
    }
    return true;
}

/* Marks partitions whose position reached their end; true when all have. */
static bool all_at_end(rn_consumer_t *c, const char *topic, part_t *parts, size_t n)
{
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].done)
            continue;
        int64_t pos = -1;
        if (rn_consumer_position(c, topic, parts[i].id, &pos) == RN_OK && pos >= parts[i].end)
            parts[i].done = true;
        else
            all = false;
    }
    return all;
}

/* A reader that went away (`| head`) is a normal end: status 0, nothing said. */
static int write_failed(bool *broken_pipe)
{
    if (errno == EPIPE) {
        *broken_pipe = true;
        return CLI_EXIT_OK;
    }
    return cli_fail("writing to standard output: %s", strerror(errno));
}

static int consume_loop(const consume_args_t *a, rn_consumer_t *c, part_t *parts, size_t n,
                        const cli_format_t *fmt, uint64_t *consumed, bool *broken_pipe)
{
    FILE *out = stdout;
    bool tty = isatty(STDOUT_FILENO);
    while (!interrupted) {
        if (a->exit_at_end && all_at_end(c, a->topic, parts, n))
            break;
        const rn_record_view_t *recs = NULL;
        size_t count = 0;
        size_t max = 4096;
        if (a->count && (uint64_t)a->count - *consumed < max)
            max = (size_t)((uint64_t)a->count - *consumed);
        rn_err_t err = rn_consumer_poll(c, 200, max, &recs, &count);
        if (err != RN_OK) {
            fflush(out);
            return cli_fail("consuming '%s' failed after %llu records: %s", a->topic,
                            (unsigned long long)*consumed, rn_err_str(err));
        }
        for (size_t i = 0; i < count; i++) {
            if (!cli_format_write(fmt, out, &recs[i]))
                return write_failed(broken_pipe);
            (*consumed)++;
        }
        /* A pipe reader sees each poll's records at once; a file gets large writes. */
        if (count && (tty || !a->exit_at_end) && fflush(out) != 0)
            return write_failed(broken_pipe);
        if (a->count && *consumed >= (uint64_t)a->count)
            break;
    }
    if (fflush(out) != 0)
        return write_failed(broken_pipe);
    return CLI_EXIT_OK;
}

static int run_consume(cli_t *cli, const consume_args_t *a, rn_conf_t *conf,
                       const cli_format_t *fmt)
{
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    const rn_topic_info_t *t = NULL;
    rn_metadata_t *md = cli_describe_topic(cli, admin, a->topic, &t);
    if (!md) {
        rn_admin_close(admin);
        return CLI_EXIT_FAIL;
    }
    size_t total = t->partition_count;
    rn_metadata_free(md);
    if (a->partition >= 0 && (size_t)a->partition >= total) {
        rn_admin_close(admin);
        return cli_fail("topic '%s' has no partition %d (it has %zu: 0 to %zu)", a->topic,
                        a->partition, total, total - 1);
    }
    size_t n = a->partition >= 0 ? 1 : total;
    part_t *parts = calloc(n, sizeof *parts);
    if (!parts) {
        rn_admin_close(admin);
        return cli_fail("out of memory");
    }
    for (size_t i = 0; i < n; i++)
        parts[i].id = a->partition >= 0 ? a->partition : (int32_t)i;
    bool resolved = resolve_offsets(cli, admin, a, parts, n);
    rn_admin_close(admin);
    if (!resolved) {
        free(parts);
        return CLI_EXIT_FAIL;
    }

    rn_consumer_t *c = NULL;
    char errbuf[256] = "";
    rn_err_t err = rn_consumer_new(conf, &c, errbuf, sizeof errbuf);
    if (err != RN_OK) {
        free(parts);
        return cli_report(cli, "cannot create a consumer", err, errbuf);
    }
    for (size_t i = 0; i < n && err == RN_OK; i++)
        err = rn_consumer_assign(c, a->topic, parts[i].id, parts[i].start);
    if (err != RN_OK) {
        rn_consumer_close(c);
        free(parts);
        return cli_report(cli, "cannot assign partitions", err, NULL);
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t consumed = 0;
    double started = cli_now_s();
    bool broken_pipe = false;
    int status = consume_loop(a, c, parts, n, fmt, &consumed, &broken_pipe);
    double elapsed = cli_now_s() - started;
    rn_consumer_close(c);
    free(parts);
    if (!a->quiet && status == CLI_EXIT_OK && !broken_pipe)
        fprintf(stderr, "runnel consume: %llu records from '%s' in %.2f s%s\n",
                (unsigned long long)consumed, a->topic, elapsed,
                interrupted ? " (interrupted)" : "");
    return status;
}

int cli_consume_main(cli_t *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"offset", required_argument, NULL, 'o'},
        {"count", required_argument, NULL, 'c'},
        {"exit-at-end", no_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'J'},
        {"key-delimiter", required_argument, NULL, 'K'},
        {"format", required_argument, NULL, 'f'},
        {"property", required_argument, NULL, 'X'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    consume_args_t a = {.partition = -1, .start = START_BEGINNING};
    const char *x_pairs[argc + 1];
    size_t x_count = 0;
    int64_t v;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:t:p:o:c:eJK:f:X:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_set_brokers(cli, "consume", optarg))
                return CLI_EXIT_USAGE;
            break;
        case 't': a.topic = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &v))
                return cli_usage_error("consume", "option '-p': '%s' is not a partition number",
                                       optarg);
            a.partition = (int32_t)v;
            break;
        case 'o':
            if (!parse_offset(optarg, &a))
                return cli_usage_error("consume",
                                       "option '-o': '%s' is not beginning, end, N, -N or @TS",
                                       optarg);
            break;
        case 'c':
            if (!cli_parse_i64(optarg, 1, INT64_MAX, &a.count))
                return cli_usage_error("consume", "option '-c': '%s' is not a count >= 1", optarg);
            break;
        case 'e': a.exit_at_end = true; break;
        case 'J': a.json = true; break;
        case 'K': a.key_delim = optarg; break;
        case 'f': a.format = optarg; break;
        case 'X': x_pairs[x_count++] = optarg; break;
        case 'q': a.quiet = true; break;
        case 'h': fputs(consume_usage, stdout); return CLI_EXIT_OK;
        default: return cli_getopt_error("consume", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("consume", "unexpected argument '%s'", argv[optind]);
    if (!a.topic)
        return cli_usage_error("consume", "option '-t TOPIC' is required");
    if ((a.json ? 1 : 0) + (a.format ? 1 : 0) + (a.key_delim ? 1 : 0) > 1)
        return cli_usage_error("consume", "options '-J', '-f' and '-K' exclude each other");

    char errbuf[256] = "";
    cli_format_t *fmt = a.json     ? cli_format_json()
                        : a.format ? cli_format_compile(a.format, errbuf, sizeof errbuf)
                                   : cli_format_plain(a.key_delim);
    if (!fmt)
        return a.format ? cli_usage_error("consume", "option '-f': %s", errbuf)
                        : cli_fail("out of memory");
    rn_conf_t *conf = cli_conf_new(cli);
    int status = CLI_EXIT_FAIL;
    if (!conf)
        goto out;
    /* An absolute offset below the log start begins at the oldest record kept. */
    rn_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
    status = CLI_EXIT_USAGE;
    for (size_t i = 0; i < x_count; i++) {
        if (!cli_conf_set_pair(conf, "consume", x_pairs[i]))
            goto out;
    }
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, sizeof outbuf);
    status = run_consume(cli, &a, conf, fmt);
out:
    rn_conf_free(conf);
    cli_format_free(fmt);
    return status;
}

/* ----------------------------------------------------------------- offsets ---- */

int cli_offsets_main(cli_t *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *topic = NULL;
    int64_t only = -1;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:t:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_set_brokers(cli, "offsets", optarg))
                return CLI_EXIT_USAGE;
            break;
        case 't': topic = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &only))
                return cli_usage_error("offsets", "option '-p': '%s' is not a partition number",
                                       optarg);
            break;
        case 'h': fputs(offsets_usage, stdout); return CLI_EXIT_OK;
        default: return cli_getopt_error("offsets", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("offsets", "unexpected argument '%s'", argv[optind]);
    if (!topic)
        return cli_usage_error("offsets", "option '-t TOPIC' is required");
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    const rn_topic_info_t *t = NULL;
    rn_metadata_t *md = cli_describe_topic(cli, admin, topic, &t);
    if (!md) {
        rn_admin_close(admin);
        return CLI_EXIT_FAIL;
    }
    size_t n = t->partition_count;
    rn_metadata_free(md);
    int status = CLI_EXIT_OK;
    if (only >= 0 && (size_t)only >= n)
        status = cli_fail("topic '%s' has no partition %lld (it has %zu: 0 to %zu)", topic,
                          (long long)only, n, n - 1);
    for (size_t i = 0; i < n && status == CLI_EXIT_OK; i++) {
        if (only >= 0 && (int64_t)i != only)
            continue;
        int64_t earliest = 0, latest = 0;
        rn_err_t err = rn_admin_list_offsets(admin, topic, (int32_t)i, RN_OFFSET_BEGINNING,
                                             &earliest, CLI_TIMEOUT_MS);
        if (err == RN_OK)
            err = rn_admin_list_offsets(admin, topic, (int32_t)i, RN_OFFSET_END, &latest,
                                        CLI_TIMEOUT_MS);
        if (err != RN_OK) {
            char what[300];
            snprintf(what, sizeof what, "cannot list offsets of '%s' partition %zu", topic, i);
            status = cli_report(cli, what, err, NULL);
            break;
        }
        printf("Topic: %s\tPartition: %zu\tEarliest: %lld\tLatest: %lld\n", topic, i,
               (long long)earliest, (long long)latest);
    }
    rn_admin_close(admin);
    if (fflush(stdout) != 0)
        status = CLI_EXIT_FAIL;
    return status;
}
