/*
 * gen_seeds OUT_DIR: writes a small seed corpus for the fuzz targets into OUT_DIR/frame,
 * OUT_DIR/batch, OUT_DIR/sql and OUT_DIR/json (created if missing; existing files are
 * overwritten, others kept). Seeds start the fuzzer from valid input: frames and batches are
 * built with the real builder and packer; job files are the examples (RN_EXAMPLES_DIR) plus a
 * few that reach the syntax the examples do not use, each checked to plan; JSON records are
 * fuzz_json_job.h's, each checked to decode under its job. A seed that stopped being valid is
 * an error, so the corpus cannot drift from the language.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batch.h"
#include "buf.h"
#include "frame.h"
#include "fuzz_json_job.h"
#include "ops/json.h"
#include "sql/plan.h"

static int write_seed(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_seeds: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Frame seeds: byte 0 is the fuzz target's chunking knob, then packed Request frames. */
static int frame_seeds(const char *dir)
{
    static const uint8_t knobs[] = {0, 1, 7};
    int rc = 0;
    for (size_t k = 0; k < sizeof knobs; k++) {
        rn_buf_t out = RN_BUF_INIT;
        rn_buf_append(&out, &knobs[k], 1);
        for (uint32_t i = 0; i < 3; i++) {
            Runnel__RequestHeader hdr = RUNNEL__REQUEST_HEADER__INIT;
            hdr.api = RUNNEL__API_KEY__API_PRODUCE;
            hdr.api_version = 1;
            hdr.correlation_id = 100 + i;
            hdr.client_id = "seed";
            Runnel__ProducePartition part = RUNNEL__PRODUCE_PARTITION__INIT;
            uint8_t records[32] = {0};
            part.partition = i;
            part.records.data = records;
            part.records.len = sizeof records;
            Runnel__ProducePartition *parts[] = {&part};
            Runnel__ProduceTopic topic = RUNNEL__PRODUCE_TOPIC__INIT;
            topic.name = "orders";
            topic.n_partitions = 1;
            topic.partitions = parts;
            Runnel__ProduceTopic *topics[] = {&topic};
            Runnel__ProduceRequest produce = RUNNEL__PRODUCE_REQUEST__INIT;
            produce.acks = -1;
            produce.n_topics = 1;
            produce.topics = topics;
            Runnel__MetadataRequest meta = RUNNEL__METADATA_REQUEST__INIT;
            Runnel__Request req = RUNNEL__REQUEST__INIT;
            req.header = &hdr;
            if (i == 1) {
                req.body_case = RUNNEL__REQUEST__BODY_METADATA;
                req.metadata = &meta;
            } else {
                req.body_case = RUNNEL__REQUEST__BODY_PRODUCE;
                req.produce = &produce;
            }
            rn_frame_pack(&req.base, &out);
        }
        Runnel__Response resp = RUNNEL__RESPONSE__INIT;
        resp.correlation_id = 9;
        resp.error = RUNNEL__ERROR_CODE__ERR_CORRUPT_MESSAGE;
        resp.error_message = "bad";
        rn_frame_pack(&resp.base, &out);
        char name[32];
        snprintf(name, sizeof name, "requests-%u", knobs[k]);
        rc |= write_seed(dir, name, out.data, out.len);
        rn_buf_free(&out);
    }
    return rc;
}

static int batch_seeds(const char *dir)
{
    static const rn_rec_header_t hdrs[] = {
        {(const uint8_t *)"trace", 5, (const uint8_t *)"abc", 3},
        {(const uint8_t *)"null", 4, NULL, -1},
    };
    int rc = 0;
    for (int codec = RN_CODEC_NONE; codec <= RN_CODEC_ZSTD; codec++) {
        for (int shape = 0; shape < 2; shape++) {
            rn_batch_opts_t opts = RN_BATCH_OPTS_DEFAULT;
            opts.codec = (rn_codec_t)codec;
            rn_batch_builder_t *b = rn_batch_builder_new();
            if (!b)
                return -1;
            rn_batch_builder_reset(b, &opts);
            int n = shape == 0 ? 1 : 5;
            for (int i = 0; i < n; i++) {
                char key[16], value[64];
                int klen = snprintf(key, sizeof key, "key-%d", i);
                int vlen = snprintf(value, sizeof value, "value %d value %d value", i, i);
                rn_batch_builder_add(b, 1700000000000 + i * 10 - (i == 2) * 50,
                                     i == 1 ? NULL : key, (size_t)klen, i == 3 ? NULL : value,
                                     (size_t)vlen, hdrs, (size_t)(i % 3));
            }
            rn_buf_t out = RN_BUF_INIT;
            if (rn_batch_builder_finish(b, &out) == RN_OK) {
                rn_batch_stamp(out.data, 1000 * (uint64_t)shape, 3);
                char name[32];
                snprintf(name, sizeof name, "batch-%s-%d", codec ? "zstd" : "none", n);
                rc |= write_seed(dir, name, out.data, out.len);
            }
            rn_buf_free(&out);
            rn_batch_builder_free(b);
        }
    }
    return rc;
}

/* Job files for syntax the examples leave out: no window, every aggregate, IN, arithmetic,
 * quoted names, '' in strings, comments, options, the other sinks, EMIT EVERY. */
static const char *const extra_jobs[] = {
    "-- unwindowed, every aggregate\n"
    "CREATE SOURCE clicks (user_id TEXT, \"Action\" TEXT, value DOUBLE, n BIGINT, ok BOOLEAN,\n"
    "  ts TIMESTAMP) FROM TOPIC 'click''stream' FORMAT JSON\n"
    "  WATERMARK FOR ts AS ts - INTERVAL '1500' MILLISECOND;\n"
    "CREATE SINK totals INTO STDOUT PRIMARY KEY (user_id) AS\n"
    "SELECT user_id, COUNT(*), SUM(n) AS s, AVG(value) AS a, MIN(\"Action\") lo, MAX(ts) hi,\n"
    "       COUNT(DISTINCT \"Action\"), SUM(n) * 2 + 1 % 3 - MAX(n) / 4 AS expr\n"
    "FROM clicks\n"
    "WHERE ts >= '2023-10-27T10:00:00Z' AND \"Action\" NOT IN ('a', 'b''c') AND NOT ok\n"
    "   OR value <> 1.5e3 AND n <= -7 AND user_id IS NOT NULL\n"
    "GROUP BY user_id\n"
    "HAVING COUNT(*) > 1 AND (s IS NULL) = FALSE;\n",
    "CREATE SOURCE orders (shop TEXT, amount DOUBLE, at TIMESTAMP)\n"
    "  FROM TOPIC 'orders' FORMAT JSON\n"
    "  WATERMARK FOR at AS at - INTERVAL '2' MINUTE\n"
    "  WITH (idle.timeout.ms = 1000, 'allowed.lateness.ms' = '250', dead.letter.topic = 'dlq');\n"
    "CREATE SINK hourly INTO POSTGRES 'dbname=analytics' TABLE shop_hours\n"
    "  PRIMARY KEY (window_end, shop) AS\n"
    "SELECT window_end, shop, SUM(amount) AS revenue, MAX(amount) - MIN(amount) AS spread\n"
    "FROM HOP(orders, at, INTERVAL '1' HOUR, INTERVAL '1' DAY)\n"
    "GROUP BY window_start, window_end, shop\n"
    "EMIT EVERY INTERVAL '30' SECOND;\n",
    "CREATE SOURCE c (k TEXT, ts TIMESTAMP) FROM TOPIC 't' FORMAT JSON;\n"
    "CREATE SINK s INTO TOPIC 'sessions' PRIMARY KEY (k, window_start) AS\n"
    "SELECT k, window_start, window_end, COUNT(*) AS n\n"
    "FROM SESSION(c, ts, INTERVAL '15' MINUTE) GROUP BY k EMIT ON WINDOW CLOSE;\n",
};

static int check_job(const char *name, const char *text, size_t len)
{
    rn_sql_src_t src = {name, text, len};
    rn_plan_t *plan;
    char errbuf[1024];
    if (rn_plan_build(&src, &plan, errbuf, sizeof errbuf) != RN_OK) {
        fprintf(stderr, "gen_seeds: seed job does not plan:\n%s\n", errbuf);
        return -1;
    }
    rn_plan_free(plan);
    return 0;
}

static int read_file(const char *path, rn_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "gen_seeds: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char chunk[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc |= rn_buf_append(out, chunk, n) == RN_OK ? 0 : -1;
    if (ferror(f))
        rc = -1;
    fclose(f);
    if (rc)
        fprintf(stderr, "gen_seeds: cannot read %s\n", path);
    return rc;
}

/* examples/NAME/NAME.sql -> sql/example-NAME.sql; every example must be there. */
static int example_seeds(const char *dir)
{
    DIR *ex = opendir(RN_EXAMPLES_DIR);
    if (!ex) {
        fprintf(stderr, "gen_seeds: cannot open %s: %s\n", RN_EXAMPLES_DIR, strerror(errno));
        return -1;
    }
    int rc = 0, found = 0;
    struct dirent *e;
    while ((e = readdir(ex)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096], name[512];
        snprintf(path, sizeof path, "%s/%s/%s.sql", RN_EXAMPLES_DIR, e->d_name, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* README.md, or an example directory without a job */
        rn_buf_t text = RN_BUF_INIT;
        snprintf(name, sizeof name, "example-%s.sql", e->d_name);
        if (read_file(path, &text) || check_job(path, (const char *)text.data, text.len) ||
            write_seed(dir, name, text.data, text.len))
            rc = -1;
        rn_buf_free(&text);
        found++;
    }
    closedir(ex);
    if (found == 0) {
        fprintf(stderr, "gen_seeds: no job files under %s\n", RN_EXAMPLES_DIR);
        rc = -1;
    }
    return rc;
}

static int sql_seeds(const char *dir)
{
    int rc = example_seeds(dir);
    for (size_t i = 0; i < sizeof extra_jobs / sizeof extra_jobs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra-%zu.sql", i);
        size_t len = strlen(extra_jobs[i]);
        rc |= check_job(name, extra_jobs[i], len) ||
              write_seed(dir, name, (const uint8_t *)extra_jobs[i], len);
    }
    size_t len = strlen(FUZZ_JSON_JOB);
    rc |= check_job("fuzz_json.sql", FUZZ_JSON_JOB, len) ||
          write_seed(dir, "fuzz_json.sql", (const uint8_t *)FUZZ_JSON_JOB, len);
    return rc;
}

static int json_seeds(const char *dir)
{
    rn_sql_src_t src = {"fuzz_json.sql", FUZZ_JSON_JOB, strlen(FUZZ_JSON_JOB)};
    rn_plan_t *plan;
    char errbuf[1024];
    if (rn_plan_build(&src, &plan, errbuf, sizeof errbuf) != RN_OK) {
        fprintf(stderr, "gen_seeds: FUZZ_JSON_JOB does not plan:\n%s\n", errbuf);
        return -1;
    }
    rn_json_col_t cols[16];
    rn_value_t row[16];
    rn_json_dec_t *dec = NULL;
    size_t ncols = plan->ncols < 16 ? plan->ncols : 16;
    for (size_t i = 0; i < ncols; i++)
        cols[i] = (rn_json_col_t){plan->cols[i].name, plan->cols[i].type};
    int rc = rn_json_dec_new(cols, ncols, &dec) == RN_OK ? 0 : -1;
    rn_plan_free(plan);
    for (size_t i = 0; rc == 0 && i < sizeof fuzz_json_seeds / sizeof fuzz_json_seeds[0]; i++) {
        const char *json = fuzz_json_seeds[i];
        if (rn_json_decode(dec, json, strlen(json), row, errbuf, sizeof errbuf) != RN_OK) {
            fprintf(stderr, "gen_seeds: JSON seed %zu does not decode: %s\n", i, errbuf);
            rc = -1;
            break;
        }
        char name[32];
        snprintf(name, sizeof name, "record-%zu.json", i);
        rc |= write_seed(dir, name, (const uint8_t *)json, strlen(json));
    }
    rn_json_dec_free(dec);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    static const char *const targets[] = {"frame", "batch", "sql", "json"};
    enum { NTARGETS = sizeof targets / sizeof targets[0] };
    char dirs[NTARGETS][4096];
    if (make_dir(argv[1]))
        return 1;
    for (size_t i = 0; i < NTARGETS; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/%s", argv[1], targets[i]);
        if (make_dir(dirs[i]))
            return 1;
    }
    int rc = frame_seeds(dirs[0]);
    rc |= batch_seeds(dirs[1]);
    rc |= sql_seeds(dirs[2]);
    rc |= json_seeds(dirs[3]);
    return rc ? 1 : 0;
}
