/*
 * processor_bench - the fraud job (examples/fraud_alerts: 5-minute tumbling SUM per user,
 * HAVING > 1000) end to end inside the processor: pre-loaded JSON events in 6 partitions of
 * the in-memory source, --bounded, into SQLite. Reports events per CPU-second of the
 * processor (decode, filter, window, aggregate, emit, checkpoints). It leaves out what a
 * broker adds (fetching and unpacking batches in librunnel), which the end-to-end
 * figure includes.
 *
 *   runnel-processor-bench [--events N] [--users N] [--dir DIR] [--metrics]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "runtime.h"

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = 2000000, users = 10000;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    bool metrics = false;
    for (int i = 1; i < argc; i++) {
        bool has_value = i + 1 < argc;
        /* --metrics: the job keeps every runnel_processor_* series (and records carry broker
         * timestamps, 100 per millisecond, for freshness), to measure what metrics cost. */
        if (strcmp(argv[i], "--metrics") == 0)
            metrics = true;
        else if (has_value && strcmp(argv[i], "--events") == 0)
            n = strtoull(argv[++i], NULL, 10);
        else if (has_value && strcmp(argv[i], "--users") == 0)
            users = strtoull(argv[++i], NULL, 10);
        else if (has_value && strcmp(argv[i], "--dir") == 0)
            dir = argv[++i];
    }
    char work[4096], db[4200], state[4200], job[8192], err[2048];
    snprintf(work, sizeof work, "%s/rn-proc-bench-XXXXXX", dir);
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db, sizeof db, "%s/analytics.db", work);
    snprintf(state, sizeof state, "%s/state", work);
    snprintf(job, sizeof job,
             "CREATE SOURCE clicks (user_id TEXT, action TEXT, value DOUBLE, timestamp TIMESTAMP)\n"
             "  FROM TOPIC 'clickstream' FORMAT JSON WATERMARK FOR timestamp AS timestamp - INTERVAL '5' SECOND;\n"
             "CREATE SINK suspicious_users INTO SQLITE '%s' PRIMARY KEY (window_start, user_id) AS\n"
             "SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) AS clicks\n"
             "FROM TUMBLE(clicks, timestamp, INTERVAL '5' MINUTE) WHERE action = 'click'\n"
             "GROUP BY window_start, window_end, user_id HAVING SUM(value) > 1000;\n", db);
    rn_sql_src_t src = {"fraud.sql", job, strlen(job)};
    rn_plan_t *plan;
    if (rn_plan_build(&src, &plan, err, sizeof err) != RN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rn_memsrc_t *m;
    rn_memsrc_new("clickstream", 6, &m);
    srand(11);
    long long ts[6];
    for (int p = 0; p < 6; p++)
        ts[p] = 1698400800000LL;
    static const char *actions[] = {"click", "click", "view", "purchase"};
    size_t bytes = 0;
    long long broker_ts = (long long)time(NULL) * 1000 - 60000;
    for (size_t i = 0; i < n; i++) {
        int p = (int)(i % 6);
        ts[p] += rand() % 3; /* ~2M events over ~10 minutes of event time per partition */
        char line[256];
        int w = sprintf(line, "{\"user_id\": \"user%zu\", \"action\": \"%s\", \"timestamp\": %lld, \"value\": %d}",
                        (size_t)rand() % users, actions[rand() % 4], ts[p] - rand() % 2000, rand() % 300);
        if (metrics)
            rn_memsrc_append_ts(m, p, line, (size_t)w, broker_ts + (long long)(i / 100));
        else
            rn_memsrc_append(m, p, line, (size_t)w);
        bytes += (size_t)w;
    }
    rn_metrics_t *registry = metrics ? rn_metrics_new() : NULL;
    rn_job_config_t cfg = {.plan = plan, .state_dir = state, .checkpoint_interval_ms = 1000,
                           .bounded = true, .clock = rn_clock_system(),
                           .source = rn_memsrc_source(m), .metrics = registry};
    rn_job_stats_t st;
    double c0 = cpu_seconds(), w0 = wall_seconds();
    rn_err_t rc = rn_job_run(&cfg, &st, err, sizeof err);
    double cpu = cpu_seconds() - c0, wall = wall_seconds() - w0;
    if (rc != RN_OK) {
        fprintf(stderr, "job failed: %s\n", err);
        return 1;
    }
    printf("# fraud job, %zu events (%.1f MB) in 6 partitions, %zu users, in-memory source, "
           "SQLite sink%s\n", n, (double)bytes / 1e6, users, metrics ? ", metrics on" : "");
    printf("records %llu, rows written %llu, checkpoints %llu\n", (unsigned long long)st.records,
           (unsigned long long)st.upserts, (unsigned long long)st.checkpoints);
    printf("cpu %.3f s, wall %.3f s: %.0f events per CPU-second (%.0f per wall-second)\n", cpu,
           wall, (double)n / cpu, (double)n / wall);
    printf("{\"bench\":\"processor_fraud\",\"events\":%zu,\"cpu_s\":%.3f,\"wall_s\":%.3f,"
           "\"events_per_cpu_s\":%.0f,\"rows\":%llu}\n", n, cpu, wall, (double)n / cpu,
           (unsigned long long)st.upserts);
    rn_metrics_free(registry);
    rn_memsrc_free(m);
    rn_plan_free(plan);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    return system(cmd) == 0 ? 0 : 1;
}
