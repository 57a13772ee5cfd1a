/*
 * cli_top.c - `runnel top`: a live view of topics and processors for people without Grafana.
 *
 * Every interval it asks the brokers for every partition's log end offset (Metadata, one
 * request) and scrapes each --processor's /metrics; rates are the differences between two
 * rounds. On a terminal the table is redrawn in place; otherwise each round is printed as
 * plain lines (for logs and scripts), and -n bounds the rounds.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "promscrape.h"

#define MAX_PROCS 16
#define MAX_PARTS 4096

static const char top_usage[] =
    "Usage: runnel top [-t TOPIC] [--processor HOST:PORT]… [-i SECONDS] [-n ROUNDS]\n"
    "\n"
    "A live view, refreshed every interval: for each topic (or only TOPIC) and partition, the\n"
    "log end offset and records/s appended; for each processor (its --metrics-listen address),\n"
    "records/s read, consumer lag, watermark delay and freshness p99 over the interval.\n"
    "On a terminal the table redraws in place (Ctrl-C quits); otherwise plain lines.\n"
    "\n"
    "  -t, --topic TOPIC             only this topic\n"
    "      --processor HOST:PORT     a runnel-processor's metrics address; repeat for more\n"
    "  -i, --interval SECONDS        refresh interval (default 1; fractions allowed)\n"
    "  -n, --iterations N            stop after N rounds (default: until Ctrl-C; 1 round\n"
    "                                shows offsets but no rates)\n"
    "      --partitions              one line per partition too (default on a terminal)\n"
    "  -b, --brokers HOST:PORT[,…]   bootstrap brokers\n"
    "  -h, --help                    this help\n"
    "\n"
    "Example:\n"
    "  runnel top -t clickstream --processor 127.0.0.1:9101\n";

static volatile sig_atomic_t g_quit;

static void on_sigint(int sig)
{
    (void)sig;
    g_quit = 1;
}

typedef struct part_row {
    char topic[256];
    int32_t partition;
    int64_t end;
} part_row_t;

typedef struct round_state {
    part_row_t rows[MAX_PARTS];
    size_t n;
    double t;
} round_state_t;

typedef struct proc_state {
    const char *addr;
    prom_scrape_t now, prev;
    bool have_prev, up;
    char err[256];
} proc_state_t;

static int64_t prev_end(const round_state_t *prev, const part_row_t *r)
{
    for (size_t i = 0; prev && i < prev->n; i++)
        if (prev->rows[i].partition == r->partition && strcmp(prev->rows[i].topic, r->topic) == 0)
            return prev->rows[i].end;
    return -1;
}

static rn_err_t collect(rn_admin_t *admin, const char *topic, round_state_t *st)
{
    rn_metadata_t *md = NULL;
    rn_err_t rc = rn_admin_describe(admin, topic, CLI_TIMEOUT_MS, &md);
    if (rc != RN_OK)
        return rc;
    st->n = 0;
    for (size_t t = 0; t < md->topic_count; t++) {
        const rn_topic_info_t *ti = &md->topics[t];
        if (ti->err != RN_OK) {
            rc = ti->err;
            rn_metadata_free(md);
            return rc;
        }
        for (size_t p = 0; p < ti->partition_count && st->n < MAX_PARTS; p++) {
            part_row_t *r = &st->rows[st->n++];
            snprintf(r->topic, sizeof r->topic, "%s", ti->name);
            r->partition = ti->partitions[p].partition;
            r->end = ti->partitions[p].log_end_offset;
        }
    }
    rn_metadata_free(md);
    st->t = cli_now_s();
    return RN_OK;
}

static void scrape(proc_state_t *ps)
{
    char *body = NULL;
    if (ps->up) {
        prom_free(&ps->prev);
        ps->prev = ps->now;
        ps->have_prev = true;
        memset(&ps->now, 0, sizeof ps->now);
    }
    int status = prom_http_get(ps->addr, "/metrics", 3000, &body, ps->err, sizeof ps->err);
    ps->up = status == 200 && prom_parse(body, &ps->now);
    if (status > 0 && status != 200)
        snprintf(ps->err, sizeof ps->err, "HTTP %d from %s/metrics", status, ps->addr);
    free(body);
}

static void fmt_secs(double v, char *buf, size_t len)
{
    double a = fabs(v);
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (a < 1)
        snprintf(buf, len, "%.0f ms", v * 1000);
    else if (a < 120)
        snprintf(buf, len, "%.2f s", v);
    else if (a < 7200)
        snprintf(buf, len, "%.1f min", v / 60);
    else
        snprintf(buf, len, "%.1f h", v / 3600);
}

static void print_round(const cli_t *cli, const round_state_t *cur, const round_state_t *prev,
                        proc_state_t *procs, int nprocs, bool per_partition, bool tty)
{
    double dt = prev ? cur->t - prev->t : 0;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    if (tty)
        fputs("\033[H\033[2J", stdout);
    printf("runnel top  %s  brokers %s%s\n", when, cli->brokers, tty ? "  (Ctrl-C quits)" : "");
    printf("%-32s %9s %16s %14s\n", "TOPIC", "PARTITION", "END OFFSET", "RECORDS/S");
    for (size_t i = 0; i < cur->n;) {
        size_t j = i;
        int64_t total = 0, total_prev = 0;
        bool rated = prev != NULL;
        while (j < cur->n && strcmp(cur->rows[j].topic, cur->rows[i].topic) == 0) {
            int64_t pe = prev_end(prev, &cur->rows[j]);
            total += cur->rows[j].end;
            total_prev += pe < 0 ? cur->rows[j].end : pe;
            rated &= pe >= 0;
            j++;
        }
        char rate[32] = "-";
        if (rated && dt > 0)
            snprintf(rate, sizeof rate, "%.0f", (double)(total - total_prev) / dt);
        printf("%-32s %9s %16lld %14s\n", cur->rows[i].topic, "all", (long long)total, rate);
        for (size_t k = i; per_partition && k < j; k++) {
            int64_t pe = prev_end(prev, &cur->rows[k]);
            char r[32] = "-";
            if (pe >= 0 && dt > 0)
                snprintf(r, sizeof r, "%.0f", (double)(cur->rows[k].end - pe) / dt);
            printf("%-32s %9d %16lld %14s\n", "", cur->rows[k].partition,
                   (long long)cur->rows[k].end, r);
        }
        i = j;
    }
    if (nprocs == 0)
        goto done;
    printf("\n%-22s %-20s %12s %12s %14s %14s\n", "PROCESSOR", "JOB", "RECORDS/S", "LAG",
           "WM DELAY", "FRESHNESS p99");
    for (int p = 0; p < nprocs; p++) {
        proc_state_t *ps = &procs[p];
        if (!ps->up) {
            printf("%-22s unreachable: %s\n", ps->addr, ps->err);
            continue;
        }
        char job[128] = "?";
        for (size_t i = 0; i < ps->now.n; i++)
            if (strcmp(ps->now.samples[i].name, "runnel_processor_checkpoints_total") == 0 &&
                prom_label(ps->now.samples[i].labels, "job", job, sizeof job))
                break;
        double in = prom_sum(&ps->now, "runnel_processor_records_in_total", NULL, NULL);
        double in_prev = ps->have_prev
                             ? prom_sum(&ps->prev, "runnel_processor_records_in_total", NULL, NULL)
                             : NAN;
        char rate[32] = "-", lag[32], wm[32], fresh[32];
        if (ps->have_prev && dt > 0)
            snprintf(rate, sizeof rate, "%.0f", (in - in_prev) / dt);
        snprintf(lag, sizeof lag, "%.0f",
                 prom_sum(&ps->now, "runnel_processor_consumer_lag", NULL, NULL));
        size_t nwm;
        double delay = prom_sum(&ps->now, "runnel_processor_watermark_delay_seconds", NULL, &nwm);
        fmt_secs(nwm ? delay : NAN, wm, sizeof wm);
        fmt_secs(prom_quantile(&ps->now, ps->have_prev ? &ps->prev : NULL,
                               "runnel_processor_freshness_seconds", NULL, 0.99),
                 fresh, sizeof fresh);
        printf("%-22s %-20s %12s %12s %14s %14s\n", ps->addr, job, rate, lag, wm, fresh);
    }
done:
    if (!tty)
        printf("\n");
    fflush(stdout);
}

int cli_top_main(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"topic", required_argument, NULL, 't'},     {"processor", required_argument, NULL, 'P'},
        {"interval", required_argument, NULL, 'i'},  {"iterations", required_argument, NULL, 'n'},
        {"partitions", no_argument, NULL, 'A'},      {"brokers", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    const char *topic = NULL;
    proc_state_t procs[MAX_PROCS];
    int nprocs = 0;
    double interval = 1;
    int64_t rounds = -1;
    bool tty = isatty(STDOUT_FILENO), per_partition = tty;
    memset(procs, 0, sizeof procs);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":t:i:n:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': topic = optarg; break;
        case 'P':
            if (nprocs == MAX_PROCS)
                return cli_usage_error("top", "at most %d --processor addresses", MAX_PROCS);
            procs[nprocs++].addr = optarg;
            break;
        case 'i': {
            char *end;
            interval = strtod(optarg, &end);
            if (*end || !(interval >= 0.05 && interval <= 3600))
                return cli_usage_error("top", "-i wants seconds between 0.05 and 3600, got '%s'",
                                       optarg);
            break;
        }
        case 'n':
            if (!cli_parse_i64(optarg, 1, INT64_MAX, &rounds))
                return cli_usage_error("top", "-n wants a positive number of rounds, got '%s'",
                                       optarg);
            break;
        case 'A': per_partition = true; break;
        case 'b':
            if (!cli_set_brokers(cli, "top", optarg))
                return CLI_EXIT_USAGE;
            break;
        case 'h': fputs(top_usage, stdout); return CLI_EXIT_OK;
        default: return cli_getopt_error("top", c, argv);
        }
    }
    if (optind != argc)
        return cli_usage_error("top", "unexpected argument '%s'", argv[optind]);
    if (!cli_brokers_reachable(cli))
        return CLI_EXIT_FAIL;
    rn_admin_t *admin = cli_admin_new(cli);
    if (!admin)
        return CLI_EXIT_FAIL;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    round_state_t *cur = calloc(1, sizeof *cur), *prev = calloc(1, sizeof *prev);
    int status = CLI_EXIT_OK;
    bool have_prev = false;
    for (int64_t r = 0; !g_quit && (rounds < 0 || r < rounds); r++) {
        rn_err_t err = collect(admin, topic, cur);
        if (err != RN_OK) {
            char what[300];
            snprintf(what, sizeof what, "topic '%s'", topic ? topic : "(all)");
            status = cli_report(cli, what, err, NULL);
            break;
        }
        for (int p = 0; p < nprocs; p++)
            scrape(&procs[p]);
        print_round(cli, cur, have_prev ? prev : NULL, procs, nprocs, per_partition, tty);
        round_state_t *t = prev;
        prev = cur;
        cur = t;
        have_prev = true;
        if (rounds >= 0 && r + 1 >= rounds)
            break;
        for (double slept = 0; slept < interval && !g_quit; slept += 0.05)
            usleep(50000);
    }
    for (int p = 0; p < nprocs; p++) {
        prom_free(&procs[p].now);
        prom_free(&procs[p].prev);
    }
    free(cur);
    free(prev);
    rn_admin_close(admin);
    return status;
}
