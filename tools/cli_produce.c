/*
 * cli_produce.c - `runnel produce`: one record per input line, like kcat -P and
 * kafka-console-producer.
 *
 * The main thread reads lines and queues records; delivery reports arrive on the library's
 * I/O thread and only bump atomic counters; a progress thread prints a status line once a
 * second when stderr is a terminal. Exit status 1 when any record was not acknowledged.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

static const char produce_usage[] =
    "Usage: runnel produce -t TOPIC [OPTIONS]\n"
    "\n"
    "Sends one record per line of standard input (or of -l FILE). Empty lines are skipped.\n"
    "Progress goes to stderr once a second when it is a terminal, and a summary at the end.\n"
    "Exit status 1 when any record was not acknowledged.\n"
    "\n"
    "  -t, --topic TOPIC             topic to write to (required)\n"
    "  -p, --partition N             write every record to partition N (default: by key;\n"
    "                                records without a key are spread in sticky batches)\n"
    "  -K, --key-delimiter DELIM     split each line at the first DELIM into key and value\n"
    "                                (\\t allowed); a line without DELIM has no key\n"
    "      --key-field FIELD         use the top-level JSON field FIELD of each line as the key\n"
    "                                (the whole line stays the value)\n"
    "  -H, --header KEY=VALUE        add a header to every record; repeat for more\n"
    "      --acks 0|1|all            acknowledgement level (default all)\n"
    "  -X, --property KEY=VALUE      a client setting (linger.ms, batch.size,\n"
    "                                compression.type, …); repeat for more\n"
    "  -l, --file FILE               read lines from FILE instead of standard input\n"
    "  -q, --quiet                   no progress and no summary\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n"
    "\n"
    "Examples:\n"
    "  echo '{\"user_id\":\"u1\",\"action\":\"click\"}' | runnel produce -t clickstream "
    "--key-field user_id\n"
    "  runnel produce -t orders -K : -l orders.txt      # lines like  order-17:{\"total\":12}\n"
    "  runnel produce -t logs --acks 1 -X linger.ms=20 -X compression.type=zstd < app.log\n";

enum { OPT_KEY_FIELD = 1000, OPT_ACKS };

typedef struct produce_state {
    _Atomic uint64_t queued_bytes;
    _Atomic uint64_t delivered;
    _Atomic uint64_t delivered_bytes; /* line bytes of acknowledged records */
    _Atomic uint64_t failed;
    _Atomic int first_error;        /* rn_err_t of the first failed delivery, 0 while none */
    double started;
    /* progress thread */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} produce_state_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_delivery(const rn_delivery_t *report, void *ctx)
{
    produce_state_t *st = ctx;
    if (report->err == RN_OK) {
        atomic_fetch_add_explicit(&st->delivered, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->delivered_bytes, (uint64_t)(uintptr_t)report->opaque,
                                  memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&st->failed, 1, memory_order_relaxed);
    int none = 0;
    atomic_compare_exchange_strong(&st->first_error, &none, (int)report->err);
}

/* One status line: totals so far and the rate over the last interval. */
static void print_progress(produce_state_t *st, uint64_t *last_n, double *last_t)
{
    double now = cli_now_s();
    uint64_t n = atomic_load(&st->delivered);
    uint64_t bytes = atomic_load(&st->queued_bytes);
    uint64_t failed = atomic_load(&st->failed);
    double dt = now - *last_t;
    fprintf(stderr, "\r\033[K%llu records acknowledged, %.1f MB read, %.0f records/s",
            (unsigned long long)n, (double)bytes / 1e6, dt > 0 ? (double)(n - *last_n) / dt : 0.0);
    if (failed)
        fprintf(stderr, ", %llu FAILED", (unsigned long long)failed);
    *last_n = n;
    *last_t = now;
}

static void *progress_main(void *arg)
{
    produce_state_t *st = arg;
    uint64_t last_n = 0;
    double last_t = st->started;
    pthread_mutex_lock(&st->lock);
    while (!st->done) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&st->cond, &st->lock, &until);
        if (!st->done)
            print_progress(st, &last_n, &last_t);
    }
    pthread_mutex_unlock(&st->lock);
    fputs("\r\033[K", stderr); /* the summary replaces the progress line */
    return NULL;
}

/* Replaces "\t", "\n" and "\\" in a delimiter given on the command line. */
static void unescape_delimiter(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1]) {
            r++;
            *w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

typedef struct produce_args {
    const char *topic;
    int32_t partition;
    char *key_delim;
    const char *key_field;
    const char *file;
    bool quiet;
    rn_header_t *headers;
    size_t header_count;
} produce_args_t;

/*
 * Fills msg's key and value from one line. key_buf holds an unescaped JSON key. Returns false
 * (after a warning for the first few) when --key-field cannot find the field; the record
 * then goes without a key.
 */
static void split_line(const produce_args_t *a, char *line, size_t len, rn_message_t *msg,
                       rn_buf_t *key_buf, uint64_t line_no, uint64_t *warnings)
{
    msg->key = NULL;
    msg->key_len = 0;
    msg->value = line;
    msg->value_len = len;
    if (a->key_delim) {
        size_t dl = strlen(a->key_delim);
        char *d = dl ? memmem(line, len, a->key_delim, dl) : NULL;
        if (d) {
            msg->key = line;
            msg->key_len = (size_t)(d - line);
            msg->value = d + dl;
            msg->value_len = len - msg->key_len - dl;
        }
        return;
    }
    if (!a->key_field)
        return;
    const char *v;
    size_t vl;
    rn_json_kind_t kind;
    rn_err_t err = rn_json_find_field(line, len, a->key_field, &v, &vl, &kind);
    if (err == RN_OK && kind == RN_JSON_STRING) {
        if (memchr(v, '\\', vl) && rn_json_unescape(v, vl, key_buf) == RN_OK) {
            msg->key = key_buf->data ? (const void *)key_buf->data : "";
            msg->key_len = key_buf->len;
        } else {
            msg->key = v;
            msg->key_len = vl;
        }
        return;
    }
    if (err == RN_OK && kind != RN_JSON_NULL) {
        msg->key = v;
        msg->key_len = vl;
        return;
    }
    if (err == RN_OK)
        return; /* "field": null is a null key on purpose */
    if ((*warnings)++ < 5)
        fprintf(stderr, "runnel produce: line %llu: %s field '%s'; sent without a key\n",
                (unsigned long long)line_no,
                err == RN_ERR_NOT_FOUND ? "no" : "not a JSON object, no", a->key_field);
}

/* Errors of one record that do not stop the others. */
static bool per_record_error(rn_err_t err)
{
    return err == RN_ERR_MESSAGE_TOO_LARGE || err == RN_ERR_INVALID_ARG;
}

static int run(cli_t *cli, produce_args_t *a, rn_conf_t *conf)
{
    FILE *in = stdin;
    if (a->file && !(in = fopen(a->file, "r")))
        return cli_fail("cannot open '%s': %s", a->file, strerror(errno));
    if (!cli_brokers_reachable(cli))
        goto fail_file;
    /* Check the topic (and partition) first: a clear error beats a failed first send. */
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        goto fail_file;
    const rn_topic_info_t *t = NULL;
    rn_metadata_t *md = cli_describe_topic(cli, admin, a->topic, &t);
    rn_admin_close(admin);
    if (!md)
        goto fail_file;
    size_t partitions = t->partition_count;
    rn_metadata_free(md);
    if (a->partition != RN_PARTITION_ANY && (size_t)a->partition >= partitions) {
        cli_fail("topic '%s' has no partition %d (it has %zu: 0 to %zu)", a->topic, a->partition,
                 partitions, partitions - 1);
        goto fail_file;
    }

    produce_state_t st = {.started = cli_now_s()};
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.cond, NULL);
    rn_producer_t *p = NULL;
    char errbuf[256] = "";
    rn_err_t err = rn_producer_new(conf, on_delivery, &st, &p, errbuf, sizeof errbuf);
    if (err != RN_OK) {
        cli_report(cli, "cannot create a producer", err, errbuf);
        goto fail_file;
    }
    pthread_t progress;
    bool progress_on = !a->quiet && isatty(STDERR_FILENO) &&
                       pthread_create(&progress, NULL, progress_main, &st) == 0;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t line_no = 0, warnings = 0, refused = 0;
    rn_err_t fatal = RN_OK;
    rn_buf_t key_buf = RN_BUF_INIT;
    rn_message_t msg = {.topic = a->topic, .partition = a->partition, .headers = a->headers,
                        .header_count = a->header_count};
    while (!interrupted && (len = getline(&line, &cap, in)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        split_line(a, line, (size_t)len, &msg, &key_buf, line_no, &warnings);
        msg.opaque = (void *)(uintptr_t)len;
        err = rn_producer_send(p, &msg, -1);
        if (err == RN_OK) {
            atomic_fetch_add_explicit(&st.queued_bytes, (uint64_t)len, memory_order_relaxed);
            continue;
        }
        if (per_record_error(err)) {
            if (refused++ < 5)
                fprintf(stderr, "runnel produce: line %llu not sent: %s\n",
                        (unsigned long long)line_no, rn_err_str(err));
            continue;
        }
        fatal = err;
        break;
    }
    bool read_error = ferror(in) && !interrupted;
    free(line);
    rn_buf_free(&key_buf);

    rn_err_t flush_err = rn_producer_flush(p, -1);
    rn_producer_close(p, 5000);
    pthread_mutex_lock(&st.lock);
    st.done = true;
    pthread_cond_signal(&st.cond);
    pthread_mutex_unlock(&st.lock);
    if (progress_on)
        pthread_join(progress, NULL);
    pthread_mutex_destroy(&st.lock);
    pthread_cond_destroy(&st.cond);
    if (in != stdin)
        fclose(in);

    double elapsed = cli_now_s() - st.started;
    uint64_t delivered = atomic_load(&st.delivered);
    uint64_t failed = atomic_load(&st.failed) + refused;
    uint64_t bytes = atomic_load(&st.delivered_bytes);
    if (!a->quiet)
        fprintf(stderr,
                "runnel produce: %llu records (%.1f MB) acknowledged by '%s' in %.2f s "
                "(%.0f records/s, %.1f MB/s); %llu failed\n",
                (unsigned long long)delivered, (double)bytes / 1e6, a->topic, elapsed,
                elapsed > 0 ? (double)delivered / elapsed : 0.0,
                elapsed > 0 ? (double)bytes / 1e6 / elapsed : 0.0,
                (unsigned long long)failed);
    int status = CLI_EXIT_OK;
    if (fatal != RN_OK) {
        char what[300];
        snprintf(what, sizeof what, "stopped at line %llu", (unsigned long long)line_no);
        status = cli_report(cli, what, fatal, NULL);
    }
    if (atomic_load(&st.failed)) {
        rn_err_t first = (rn_err_t)atomic_load(&st.first_error);
        char what[300];
        snprintf(what, sizeof what, "%llu records were not acknowledged; the first",
                 (unsigned long long)atomic_load(&st.failed));
        status = cli_report(cli, what, first, NULL);
    }
    if (flush_err != RN_OK && status == CLI_EXIT_OK)
        status = cli_report(cli, "waiting for acknowledgements", flush_err, NULL);
    if (read_error)
        status = cli_fail("reading %s: %s", a->file ? a->file : "standard input", strerror(errno));
    if (refused)
        status = CLI_EXIT_FAIL;
    return status;

fail_file:
    if (in != stdin)
        fclose(in);
    return CLI_EXIT_FAIL;
}

int cli_produce_main(cli_t *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"key-delimiter", required_argument, NULL, 'K'},
        {"key-field", required_argument, NULL, OPT_KEY_FIELD},
        {"header", required_argument, NULL, 'H'},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"property", required_argument, NULL, 'X'},
        {"file", required_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    produce_args_t a = {.partition = RN_PARTITION_ANY};
    rn_header_t headers[64];
    a.headers = headers;
    int status = CLI_EXIT_USAGE;
    rn_conf_t *conf = rn_conf_new();
    if (!conf)
        return cli_fail("out of memory");
    const char *x_pairs[argc + 1];
    size_t x_count = 0;
    const char *acks = NULL;
    optind = 0;
    opterr = 0;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, ":b:t:p:K:H:X:l:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_set_brokers(cli, "produce", optarg))
                goto out;
            break;
        case 't':
            a.topic = optarg;
            break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &v)) {
                cli_usage_error("produce", "option '-p': '%s' is not a partition number", optarg);
                goto out;
            }
            a.partition = (int32_t)v;
            break;
        case 'K':
            a.key_delim = optarg;
            unescape_delimiter(a.key_delim);
            if (!*a.key_delim) {
                cli_usage_error("produce", "option '-K' needs a non-empty delimiter");
                goto out;
            }
            break;
        case OPT_KEY_FIELD:
            a.key_field = optarg;
            break;
        case 'H': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                cli_usage_error("produce", "option '-H': '%s' is not KEY=VALUE", optarg);
                goto out;
            }
            if (a.header_count == sizeof headers / sizeof headers[0]) {
                cli_usage_error("produce", "option '-H': at most 64 headers");
                goto out;
            }
            headers[a.header_count++] = (rn_header_t){optarg, (size_t)(eq - optarg), eq + 1,
                                                      (int32_t)strlen(eq + 1)};
            break;
        }
        case OPT_ACKS:
            if (strcmp(optarg, "0") && strcmp(optarg, "1") && strcmp(optarg, "all") &&
                strcmp(optarg, "-1")) {
                cli_usage_error("produce", "option '--acks': '%s' is not 0, 1 or all", optarg);
                goto out;
            }
            acks = optarg;
            break;
        case 'X':
            x_pairs[x_count++] = optarg;
            break;
        case 'l':
            a.file = optarg;
            break;
        case 'q':
            a.quiet = true;
            break;
        case 'h':
            fputs(produce_usage, stdout);
            status = CLI_EXIT_OK;
            goto out;
        default:
            cli_getopt_error("produce", c, argv);
            goto out;
        }
    }
    if (optind < argc) {
        cli_usage_error("produce", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!a.topic) {
        cli_usage_error("produce", "option '-t TOPIC' is required");
        goto out;
    }
    if (a.key_delim && a.key_field) {
        cli_usage_error("produce", "options '-K' and '--key-field' exclude each other");
        goto out;
    }
    rn_conf_free(conf);
    if (!(conf = cli_conf_new(cli)))
        return CLI_EXIT_FAIL;
    char errbuf[256];
    if (acks && rn_conf_set(conf, "acks", acks, errbuf, sizeof errbuf) != RN_OK) {
        cli_usage_error("produce", "option '--acks': %s", errbuf);
        goto out;
    }
    for (size_t i = 0; i < x_count; i++) {
        if (!cli_conf_set_pair(conf, "produce", x_pairs[i]))
            goto out;
    }
    status = run(cli, &a, conf);
out:
    rn_conf_free(conf);
    return status;
}
