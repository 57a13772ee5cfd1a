/*
 * runnel-processor - runs one streaming SQL job (see docs/processor.md).
 *
 *   runnel-processor --job FILE [-b BROKERS] [--state-dir DIR] [--set key=value]…
 *                    [-X key=value]… [--bounded] [--check] [--input FILE] [--log-level LEVEL]
 *                    [--log-format text|json]
 *                    [--metrics-listen HOST:PORT]
 *
 * Exit status: 0 done (or stopped by SIGINT/SIGTERM after a final checkpoint), 1 the job
 * failed while running, 2 bad usage or a job file with errors.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "kvfile.h"
#include "logging.h"
#include "metrics.h"
#include "broker_io.h"
#include "runtime.h"
#include "sql/plan.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: runnel-processor --job FILE [options]\n"
            "\n"
            "Runs a streaming SQL job: reads its source topic, aggregates by window and key, and\n"
            "upserts the results into its sink, checkpointing offsets with the rows.\n"
            "\n"
            "  --job FILE          the job (CREATE SOURCE …; CREATE SINK … AS SELECT …)\n"
            "  -b, --brokers LIST  bootstrap brokers host:port[,…] (default $RUNNEL_BROKERS)\n"
            "  --state-dir DIR     window state snapshots (default JOB.state, JOB = the file's name)\n"
            "  --set KEY=VALUE     override a setting (repeatable):\n"
            "                        checkpoint.interval.ms  (default 1000)\n"
            "                        idle.timeout.ms, allowed.lateness.ms, dead.letter.topic,\n"
            "                        metrics.listen (--metrics-listen wins over it)\n"
            "  --bounded           read each partition up to its end offset at start, close every\n"
            "                      window, commit and exit (backfills, tests, benchmarks)\n"
            "  --check             parse and plan the job, print the plan, exit\n"
            "  -X KEY=VALUE        a librunnel setting for the job's consumer and producer\n"
            "                      (fetch.max.bytes, linger.ms, compression.type, …; repeatable)\n"
            "  --input FILE        read JSON lines from FILE (one partition) instead of a topic\n"
            "  --log-level LEVEL   debug, info, warn or error (default info)\n"
            "  --log-format FORMAT text (default) or json: one JSON object per line\n"
            "  --metrics-listen HOST:PORT\n"
            "                      serve GET /metrics (Prometheus), /healthz and /readyz there\n"
            "                      (metrics.listen); port 0 picks a free one; the bound address\n"
            "                      is written to STATE_DIR/metrics-listening\n"
            "  --help, --version\n");
}

typedef struct settings {
    int64_t checkpoint_interval_ms;
} settings_t;

static int apply_set(rn_plan_t *plan, settings_t *s, const char *pair)
{
    char *copy = strdup(pair), *key, *value, err[256];
    if (!copy || rn_kv_split(copy, &key, &value) != RN_OK) {
        fprintf(stderr, "runnel-processor: --set needs key=value, got '%s'\n", pair);
        free(copy);
        return -1;
    }
    int rc = 0;
    if (strcmp(key, "checkpoint.interval.ms") == 0) {
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*value == '\0' || *end != '\0' || v < 1) {
            fprintf(stderr, "runnel-processor: checkpoint.interval.ms must be a positive number of milliseconds\n");
            rc = -1;
        }
        s->checkpoint_interval_ms = v;
    } else if (rn_plan_set_option(plan, key, value, err, sizeof err) != RN_OK) {
        fprintf(stderr, "runnel-processor: --set %s: %s (known: checkpoint.interval.ms, "
                        "idle.timeout.ms, allowed.lateness.ms, dead.letter.topic, "
                        "metrics.listen)\n", pair, err);
        rc = -1;
    }
    free(copy);
    return rc;
}

/*
 * Writes "HOST:PORT\n" to DIR/metrics-listening through a temporary file and a rename, so a
 * reader (a test, a script) never sees half an address. The path goes to path.
 */
static void write_listening(const char *dir, const char *addr, char *path, size_t pathlen)
{
    char tmp[4200];
    snprintf(path, pathlen, "%s/metrics-listening", dir);
    snprintf(tmp, sizeof tmp, "%s/.metrics-listening.tmp", dir);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%s\n", addr) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        RN_WARN("processor", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        path[0] = '\0';
    }
}

/* The metrics registry and its HTTP server, when --metrics-listen asks for them. */
typedef struct metrics_srv {
    rn_metrics_t *registry;
    rn_httpd_t *httpd;
    rn_http_std_t routes;
    volatile int ready;
    const char *volatile why;
    char listening_path[4200];
} metrics_srv_t;

/* Serves /metrics, /healthz and /readyz on listen; 0, or the exit status after a message. */
static int metrics_start(metrics_srv_t *ms, const char *listen, const char *state_dir,
                         const char *job)
{
    char err[512];
    ms->why = "starting";
    ms->registry = rn_metrics_new();
    if (!ms->registry) {
        fprintf(stderr, "runnel-processor: out of memory\n");
        return 1;
    }
    ms->routes = (rn_http_std_t){ms->registry, &ms->ready, &ms->why};
    rn_err_t rc = rn_httpd_start_thread(listen, rn_http_std_handler, &ms->routes, &ms->httpd,
                                        err, sizeof err);
    if (rc != RN_OK) {
        fprintf(stderr, "runnel-processor: %s\n", err);
        return rc == RN_ERR_BAD_CONFIG ? 2 : 1;
    }
    const char *addr = rn_httpd_address(ms->httpd);
    RN_INFO("processor", "job %s: metrics on http://%s/metrics (and /healthz, /readyz)", job,
            addr);
    /* Needed with port 0 (how else would a script find it); written always, as the broker
     * does, so one way to find the address works for every processor. */
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST)
        RN_WARN("processor", "cannot create the state dir %s: %s", state_dir, strerror(errno));
    write_listening(state_dir, addr, ms->listening_path, sizeof ms->listening_path);
    return 0;
}

static void metrics_stop(metrics_srv_t *ms)
{
    rn_httpd_stop(ms->httpd);
    if (ms->listening_path[0])
        unlink(ms->listening_path);
    rn_metrics_free(ms->registry);
}

/*
 * librunnel's config for the job's consumer, admin and producer: the brokers, a client.id
 * naming the job, and auto.offset.reset=earliest (a partition without a committed offset is
 * read from its start: the job's table covers the whole topic), then the user's -X settings.
 */
static rn_conf_t *client_conf(const rn_plan_t *plan, const char *brokers, const char **xsets,
                              int nxsets)
{
    rn_conf_t *c = rn_conf_new();
    char err[512], id[300];
    snprintf(id, sizeof id, "runnel-processor-%s", plan->job);
    if (!c || rn_conf_set(c, "bootstrap.servers", brokers ? brokers : "127.0.0.1:9092", err,
                          sizeof err) != RN_OK ||
        rn_conf_set(c, "client.id", id, err, sizeof err) != RN_OK ||
        rn_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err) != RN_OK) {
        fprintf(stderr, "runnel-processor: -b %s: %s\n", brokers ? brokers : "", err);
        rn_conf_free(c);
        return NULL;
    }
    for (int i = 0; i < nxsets; i++) {
        if (rn_conf_set_pair(c, xsets[i], err, sizeof err) != RN_OK) {
            fprintf(stderr, "runnel-processor: -X %s: %s\n", xsets[i], err);
            rn_conf_free(c);
            return NULL;
        }
    }
    return c;
}

int main(int argc, char **argv)
{
    const char *job = NULL, *brokers = getenv("RUNNEL_BROKERS"), *state_dir = NULL;
    const char *input = NULL, *metrics_listen = NULL, *set_metrics_listen = NULL;
    const char *sets[64], *xsets[64];
    int nsets = 0, nxsets = 0;
    bool bounded = false, check = false;
    static const struct option opts[] = {
        {"job", required_argument, NULL, 'j'}, {"brokers", required_argument, NULL, 'b'},
        {"property", required_argument, NULL, 'X'},
        {"state-dir", required_argument, NULL, 's'}, {"set", required_argument, NULL, 'S'},
        {"bounded", no_argument, NULL, 'B'}, {"check", no_argument, NULL, 'c'},
        {"input", required_argument, NULL, 'i'}, {"log-level", required_argument, NULL, 'l'},
        {"log-format", required_argument, NULL, 'F'},
        {"metrics-listen", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "b:X:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': job = optarg; break;
        case 'b': brokers = optarg; break;
        case 's': state_dir = optarg; break;
        case 'M': metrics_listen = optarg; break;
        case 'S':
            /* A process setting, not the job's; the flag wins over it, as in runnel-broker. */
            if (strncmp(optarg, "metrics.listen=", 15) == 0) {
                set_metrics_listen = optarg + 15;
                break;
            }
            if (nsets == 64) {
                fprintf(stderr, "runnel-processor: too many --set\n");
                return 2;
            }
            sets[nsets++] = optarg;
            break;
        case 'X':
            if (nxsets == 64) {
                fprintf(stderr, "runnel-processor: too many -X\n");
                return 2;
            }
            xsets[nxsets++] = optarg;
            break;
        case 'B': bounded = true; break;
        case 'c': check = true; break;
        case 'i': input = optarg; break;
        case 'l': {
            int lvl = rn_logging_parse_level(optarg);
            if (lvl < 0) {
                fprintf(stderr, "runnel-processor: unknown log level '%s'\n", optarg);
                return 2;
            }
            rn_logging_set_level((rn_level_t)lvl);
            break;
        }
        case 'F': {
            int fmt = rn_logging_parse_format(optarg);
            if (fmt < 0) {
                fprintf(stderr, "runnel-processor: --log-format '%s': expected text or json\n",
                        optarg);
                return 2;
            }
            rn_logging_set_format((rn_log_format_t)fmt);
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("runnel-processor %s\n", RUNNEL_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!job || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!metrics_listen)
        metrics_listen = set_metrics_listen;
    char err[2048];
    rn_plan_t *plan;
    if (rn_plan_load(job, &plan, err, sizeof err) != RN_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    settings_t s = {1000};
    for (int i = 0; i < nsets; i++) {
        if (apply_set(plan, &s, sets[i]) != 0) {
            rn_plan_free(plan);
            return 2;
        }
    }
    rn_conf_t *client = client_conf(plan, brokers, xsets, nxsets);
    if (!client) {
        rn_plan_free(plan);
        return 2;
    }
    if (check) {
        rn_plan_print(plan, stdout);
        rn_conf_free(client);
        rn_plan_free(plan);
        return 0;
    }
    char default_dir[1024];
    if (!state_dir) {
        snprintf(default_dir, sizeof default_dir, "%s.state", plan->job);
        state_dir = default_dir;
    }
    rn_memsrc_t *mem = NULL;
    rn_brksrc_t *brk = NULL;
    rn_pub_t *pub = NULL;
    rn_source_t source;
    rn_sink_io_t sink_io = {.out = stdout};
    metrics_srv_t ms = {0};
    int status = 2;
    if (metrics_listen && (status = metrics_start(&ms, metrics_listen, state_dir, plan->job)) != 0)
        goto done;
    status = 2;
    if (input) {
        if (rn_memsrc_new(plan->topic, 1, &mem) != RN_OK ||
            rn_memsrc_load_lines(mem, input, err, sizeof err) != RN_OK) {
            fprintf(stderr, "runnel-processor: %s\n", err);
            goto done;
        }
        source = rn_memsrc_source(mem);
    } else {
        if (rn_brksrc_new(client, &brk, err, sizeof err) != RN_OK) {
            fprintf(stderr, "runnel-processor: %s\n", err);
            goto done;
        }
        source = rn_brksrc_source(brk);
    }
    /* The TOPIC sink and the dead-letter topic share one idempotent producer. */
    bool wants_topic = plan->sink_kind == RN_SINK_TOPIC;
    if (wants_topic && input) {
        fprintf(stderr, "runnel-processor: a TOPIC sink needs brokers; --input reads a file "
                        "but cannot publish (use -b, or a SQLITE/POSTGRES/STDOUT sink)\n");
        goto done;
    }
    if ((wants_topic || plan->dead_letter_topic) && !input) {
        if (rn_pub_new(client, &pub, err, sizeof err) != RN_OK) {
            fprintf(stderr, "runnel-processor: %s\n", err);
            goto done;
        }
        rn_pub_set_source_topic(pub, plan->topic);
        if (wants_topic)
            sink_io = rn_pub_sink_io(pub);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rn_job_config_t cfg = {
        .plan = plan, .state_dir = state_dir, .checkpoint_interval_ms = s.checkpoint_interval_ms,
        .bounded = bounded || input, .clock = rn_clock_system(), .source = source,
        .sink_io = sink_io, .stop = &g_stop, .metrics = ms.registry, .ready = &ms.ready,
        .not_ready_why = &ms.why,
    };
    if (pub && plan->dead_letter_topic) {
        cfg.dead_letter = rn_pub_dead_letter;
        cfg.dead_letter_flush = rn_pub_flush;
        cfg.dead_letter_ctx = pub;
    } else if (plan->dead_letter_topic) {
        RN_WARN("processor", "dead.letter.topic '%s' needs brokers; with --input, bad and late "
                "records are only counted and logged", plan->dead_letter_topic);
    }
    rn_job_stats_t st;
    rn_err_t rc = rn_job_run(&cfg, &st, err, sizeof err);
    if (rc != RN_OK)
        RN_ERROR("processor", "job %s: %s", plan->job, err);
    else
        RN_INFO("processor", "job %s: %llu records, %llu malformed, %llu late, %llu rows written, "
                "checkpoint %llu", plan->job, (unsigned long long)st.records,
                (unsigned long long)st.malformed, (unsigned long long)st.late,
                (unsigned long long)(st.upserts + st.deletes), (unsigned long long)st.epoch);
    status = rc == RN_OK ? 0 : 1;
done:
    metrics_stop(&ms);
    rn_pub_free(pub);
    rn_brksrc_free(brk);
    rn_memsrc_free(mem);
    rn_conf_free(client);
    rn_plan_free(plan);
    return status;
}
