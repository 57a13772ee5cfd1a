/*
 * gen_seeds OUT_DIR: writes a small seed corpus for the fuzz targets into OUT_DIR/frame and
 * OUT_DIR/batch (created if missing; existing files are overwritten, others kept). Seeds are
 * built with the real builder and packer, so they start the fuzzer from valid input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batch.h"
#include "buf.h"
#include "frame.h"

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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    char frame_dir[4096], batch_dir[4096];
    snprintf(frame_dir, sizeof frame_dir, "%s/frame", argv[1]);
    snprintf(batch_dir, sizeof batch_dir, "%s/batch", argv[1]);
    if (make_dir(argv[1]) || make_dir(frame_dir) || make_dir(batch_dir))
        return 1;
    return frame_seeds(frame_dir) | batch_seeds(batch_dir) ? 1 : 0;
}
