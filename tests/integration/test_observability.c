/*
 * test_observability.c - a real Prometheus server (Debian's `prometheus`), started on a free
 * loopback port with a config generated from tools/prometheus/, scrapes a real broker and a
 * real processor; the test asks Prometheus's HTTP API for the series and checks their values
 * (records in equal records produced, lag falls to 0, freshness counted every record), checks
 * both scrapes with `promtool check metrics`, checks the alert rules with `promtool check
 * rules`, and checks that every metric name the Grafana dashboard and the alert rules use
 * appears in a real scrape.
 *
 * RUNNEL_TOOLS_DIR points at tools/ (dashboard and rules); PROMETHEUS_BIN and PROMTOOL_BIN
 * override /usr/bin/prometheus and /usr/bin/promtool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "promscrape.h"
#include "test_client_util.h"

#define RECORDS 20000

static rn_hbroker_t g_broker;
static char *g_dir;
static pid_t g_prom, g_proc;
static char g_prom_addr[64], g_broker_metrics[80], g_proc_metrics[80];

static const char *bin_or(const char *env, const char *dflt)
{
    const char *v = getenv(env);
    return v && *v ? v : dflt;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void dump(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "tail -n 40 %s 1>&2", path);
    if (system(cmd) != 0)
        fprintf(stderr, "(no %s)\n", path);
}

/* Reads the first line of path into buf, waiting up to 20 s for it to appear. */
static bool wait_line(const char *path, char *buf, size_t len)
{
    for (int i = 0; i < 400; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            bool ok = fgets(buf, (int)len, f) != NULL;
            fclose(f);
            if (ok) {
                buf[strcspn(buf, "\n")] = '\0';
                return true;
            }
        }
        usleep(50000);
    }
    return false;
}

static char *path_in(const char *name)
{
    static char bufs[4][700];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 700, "%s/%s", g_dir, name);
    return b;
}

static int setup(void **state)
{
    (void)state;
    g_dir = rn_h_tmpdir("observability");
    const char *settings[] = {"--metrics-listen=127.0.0.1:0", NULL};
    tc_broker_start(&g_broker, "obs", settings);
    char path[700];
    snprintf(path, sizeof path, "%s/metrics-listening", g_broker.data_dir);
    if (!wait_line(path, g_broker_metrics, sizeof g_broker_metrics)) {
        rn_h_broker_dump_log(&g_broker);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_proc) {
        kill(g_proc, SIGKILL);
        waitpid(g_proc, NULL, 0);
    }
    if (g_prom) {
        kill(g_prom, SIGKILL);
        waitpid(g_prom, NULL, 0);
    }
    tc_broker_finish(&g_broker);
    rn_h_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* The first sample value of a PromQL instant query's answer; NAN when there is none. */
static double query(const char *promql)
{
    char path[1024] = "/api/v1/query?query=", *w = path + strlen(path);
    for (const unsigned char *p = (const unsigned char *)promql; *p && w < path + 1000; p++) {
        if (isalnum(*p) || strchr("_.-~", *p))
            *w++ = (char)*p;
        else
            w += sprintf(w, "%%%02X", *p);
    }
    *w = '\0';
    char *body = NULL, err[256];
    int status = prom_http_get(g_prom_addr, path, 5000, &body, err, sizeof err);
    double v = NAN;
    const char *at = body && status == 200 ? strstr(body, "\"value\":[") : NULL;
    if (at && (at = strchr(at, ',')) && at[1] == '"')
        v = strtod(at + 2, NULL);
    free(body);
    return v;
}

/* Waits up to timeout_s for the query to answer want. */
static bool eventually(const char *promql, double want, int timeout_s, double *last)
{
    for (int i = 0; i < timeout_s * 4; i++) {
        *last = query(promql);
        if (*last == want)
            return true;
        usleep(250000);
    }
    return false;
}

static char *scrape(const char *addr)
{
    char *body = NULL, err[256];
    int status = prom_http_get(addr, "/metrics", 5000, &body, err, sizeof err);
    if (status != 200)
        fail_msg("GET %s/metrics: %d %s", addr, status, status < 0 ? err : "");
    return body;
}

static void promtool_check_metrics(const char *text, const char *what)
{
    char file[700], cmd[2400];
    snprintf(file, sizeof file, "%s", path_in(what));
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s check metrics < %s > %s.out 2>&1", bin_or("PROMTOOL_BIN",
             "/usr/bin/promtool"), file, file);
    if (system(cmd) != 0) {
        char out[760];
        snprintf(out, sizeof out, "%s.out", file);
        dump(out);
        fail_msg("promtool check metrics rejects the %s scrape", what);
    }
}

static void start_processor(void)
{
    FILE *f = fopen(path_in("job.sql"), "w");
    fprintf(f, "CREATE SOURCE clicks (user_id TEXT, value DOUBLE, ts TIMESTAMP)\n"
               "  FROM TOPIC 'obs-events' FORMAT JSON;\n"
               "CREATE SINK per_user INTO SQLITE '%s' PRIMARY KEY (window_start, user_id) AS\n"
               "SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) AS n\n"
               "FROM TUMBLE(clicks, ts, INTERVAL '1' SECOND)\n"
               "GROUP BY window_start, window_end, user_id EMIT ON WINDOW CLOSE;\n",
            path_in("out.db"));
    fclose(f);
    char *argv[] = {(char *)rn_h_bin("RUNNEL_PROCESSOR_BIN"), "--job", path_in("job.sql"),
                    "--state-dir", path_in("state"), "--metrics-listen", "127.0.0.1:0",
                    "--set", "checkpoint.interval.ms=200", "-b", g_broker.addr, "--log-format",
                    "json", NULL};
    g_proc = spawn(argv, path_in("processor.log"));
    if (!wait_line(path_in("state/metrics-listening"), g_proc_metrics, sizeof g_proc_metrics)) {
        dump(path_in("processor.log"));
        fail_msg("the processor did not report its metrics address");
    }
}

static void start_prometheus(void)
{
    char rules[700];
    snprintf(rules, sizeof rules, "%s/prometheus/alerts.yml", getenv("RUNNEL_TOOLS_DIR"));
    FILE *f = fopen(path_in("prometheus.yml"), "w");
    fprintf(f, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
               "rule_files:\n  - %s\n"
               "scrape_configs:\n"
               "  - job_name: runnel-broker\n    static_configs:\n      - targets: [\"%s\"]\n"
               "  - job_name: runnel-processor\n    honor_labels: true\n"
               "    static_configs:\n      - targets: [\"%s\"]\n",
            rules, g_broker_metrics, g_proc_metrics);
    fclose(f);
    snprintf(g_prom_addr, sizeof g_prom_addr, "127.0.0.1:%d", free_port());
    char cfg[720], tsdb[720], listen[100];
    snprintf(cfg, sizeof cfg, "--config.file=%s", path_in("prometheus.yml"));
    snprintf(tsdb, sizeof tsdb, "--storage.tsdb.path=%s", path_in("tsdb"));
    snprintf(listen, sizeof listen, "--web.listen-address=%s", g_prom_addr);
    char *argv[] = {(char *)bin_or("PROMETHEUS_BIN", "/usr/bin/prometheus"), cfg, tsdb, listen,
                    NULL};
    g_prom = spawn(argv, path_in("prometheus.log"));
    for (int i = 0; i < 120; i++) {
        char *body = NULL, err[200];
        int st = prom_http_get(g_prom_addr, "/-/ready", 1000, &body, err, sizeof err);
        free(body);
        if (st == 200)
            return;
        usleep(250000);
    }
    dump(path_in("prometheus.log"));
    fail_msg("Prometheus did not become ready on %s", g_prom_addr);
}

static void produce(int n)
{
    tc_create_topic(&g_broker, "obs-events", 3, NULL);
    rn_conf_t *conf = tc_conf(&g_broker, NULL);
    rn_producer_t *p;
    char err[256];
    assert_int_equal(rn_producer_new(conf, NULL, NULL, &p, err, sizeof err), RN_OK);
    rn_conf_free(conf);
    int64_t t0 = 1700000000000;
    for (int i = 0; i < n; i++) {
        char json[160], key[16];
        int len = snprintf(json, sizeof json, "{\"user_id\":\"u%d\",\"value\":%d,\"ts\":%lld}",
                           i % 10, i % 7, (long long)(t0 + i));
        snprintf(key, sizeof key, "u%d", i % 10);
        rn_message_t m = {.topic = "obs-events", .partition = RN_PARTITION_ANY, .key = key,
                          .key_len = strlen(key), .value = json, .value_len = (size_t)len};
        assert_int_equal(rn_producer_send(p, &m, -1), RN_OK);
    }
    assert_int_equal(rn_producer_close(p, 30000), RN_OK);
}

/* runnel_xxx names in a file (dashboard JSON or rules YAML), each once. */
static size_t metric_names(const char *path, char names[][128], size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        for (char *p = line; (p = strstr(p, "runnel_"));) {
            if (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) {
                p++;
                continue;
            }
            size_t l = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)l, p);
            p += l;
            const char *suffixes[] = {"_bucket", "_sum", "_count"};
            for (size_t s = 0; s < 3; s++) {
                size_t nl = strlen(name), sl = strlen(suffixes[s]);
                if (nl > sl && strcmp(name + nl - sl, suffixes[s]) == 0)
                    name[nl - sl] = '\0';
            }
            bool seen = false;
            for (size_t k = 0; k < n; k++)
                seen |= strcmp(names[k], name) == 0;
            if (!seen && n < max)
                snprintf(names[n++], 128, "%s", name);
        }
    }
    fclose(f);
    return n;
}

static void test_prometheus_scrapes_broker_and_processor(void **state)
{
    (void)state;
    produce(RECORDS);
    start_processor();
    start_prometheus();
    double v;
    if (!eventually("sum(runnel_broker_records_in_total{topic=\"obs-events\"})", RECORDS, 60, &v))
        fail_msg("Prometheus says the broker took %g records in, want %d", v, RECORDS);
    if (!eventually("sum(runnel_processor_records_in_total)", RECORDS, 60, &v)) {
        dump(path_in("processor.log"));
        fail_msg("Prometheus says the processor read %g records, want %d", v, RECORDS);
    }
    if (!eventually("sum(runnel_processor_consumer_lag)", 0, 30, &v))
        fail_msg("consumer lag is %g, want 0 once caught up", v);
    if (!eventually("sum(runnel_processor_freshness_seconds_count)", RECORDS, 30, &v))
        fail_msg("freshness counted %g records, want %d (every record reached a commit)", v,
                 RECORDS);
    v = query("max(runnel_processor_last_checkpoint_timestamp_seconds)");
    assert_true(v > 1.7e9);
    v = query("up{job=\"runnel-broker\"}");
    assert_true(v == 1);

    /* Both scrapes are valid exposition format. */
    char *b = scrape(g_broker_metrics), *p = scrape(g_proc_metrics);
    promtool_check_metrics(b, "broker.prom");
    promtool_check_metrics(p, "processor.prom");

    /* Every metric the dashboard and the alert rules use is served. */
    char names[256][128];
    char dash[700], rules[700];
    snprintf(dash, sizeof dash, "%s/grafana/runnel.json", getenv("RUNNEL_TOOLS_DIR"));
    snprintf(rules, sizeof rules, "%s/prometheus/alerts.yml", getenv("RUNNEL_TOOLS_DIR"));
    size_t n = metric_names(dash, names, 256);
    n += metric_names(rules, names + n, 256 - n);
    assert_true(n >= 10);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        char type_line[200];
        snprintf(type_line, sizeof type_line, "# TYPE %s ", names[i]);
        if (!strstr(b, type_line) && !strstr(p, type_line)) {
            fprintf(stderr, "%s is used by the dashboard or the alert rules but no scrape has it\n",
                    names[i]);
            missing++;
        }
    }
    free(b);
    free(p);
    assert_int_equal(missing, 0);

    /* The rules load into Prometheus: its rules API lists our group. */
    char *body = NULL, err[200];
    assert_int_equal(prom_http_get(g_prom_addr, "/api/v1/rules", 5000, &body, err, sizeof err),
                     200);
    assert_non_null(strstr(body, "RunnelFreshnessSLABreached"));
    free(body);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s check rules %s >/dev/null", bin_or("PROMTOOL_BIN",
             "/usr/bin/promtool"), rules);
    assert_int_equal(system(cmd), 0);

    kill(g_proc, SIGTERM);
    int status;
    waitpid(g_proc, &status, 0);
    g_proc = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* --log-format json: every line of the processor's log is one JSON object. */
    FILE *log = fopen(path_in("processor.log"), "r");
    char line[2048];
    int lines = 0;
    while (log && fgets(line, sizeof line, log)) {
        lines++;
        if (strncmp(line, "{\"ts\":\"", 7) != 0 || !strstr(line, "\"component\":\"processor\""))
            fail_msg("not a JSON log line: %s", line);
    }
    if (log)
        fclose(log);
    assert_true(lines >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_scrapes_broker_and_processor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
