/*
 * hwcheck.c - the high-watermark checkpoint (docs/cluster.md §5.2):
 *
 *   DATA_DIR/replication-offset-checkpoint   "runnel-hw 1" then "TOPIC PARTITION HW" lines
 *
 * written (replaced atomically) every replica.high.watermark.checkpoint.interval.ms and at a
 * clean stop, read once when the broker starts. It is never fsynced: a checkpoint lost or
 * older than the truth only gives a lower HW, which is always safe (consumers see less for a
 * moment; a follower's KIP-101 fallback truncates a little more and fetches it again), while a
 * restarted broker that reads it neither re-fetches its whole log in that fallback nor, as a
 * new leader, makes consumers wait for every follower before anything is visible.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fsutil.h"
#include "logging.h"
#include "repl_int.h"

#define HWC_FILE "replication-offset-checkpoint"
#define HWC_HEADER "runnel-hw 1\n"

void rn_repl__hw_write(rn_repl_t *r)
{
    rn_buf_t b = RN_BUF_INIT;
    rn_buf_append(&b, HWC_HEADER, strlen(HWC_HEADER));
    for (rpart_t *rp = r->parts; rp; rp = rp->next) {
        char line[RN_REPL_TOPIC_MAX + 64];
        int n = snprintf(line, sizeof line, "%s %" PRIu32 " %" PRIu64 "\n", rp->topic,
                         rp->partition, rp->hw);
        if (n > 0 && (size_t)n < sizeof line)
            rn_buf_append(&b, line, (size_t)n);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", r->data_dir, HWC_FILE);
    if (rn_fs_write_atomic(path, b.data, b.len, false) != RN_OK)
        RN_WARN("repl", "cannot write %s: %s (high watermarks restart lower; that is safe)",
                path, strerror(errno));
    rn_buf_free(&b);
}

void rn_repl__hw_read(rn_repl_t *r)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", r->data_dir, HWC_FILE);
    rn_buf_t b = RN_BUF_INIT;
    if (rn_fs_read_all(path, &b) != RN_OK) {
        rn_buf_free(&b);
        return; /* none yet: every HW starts at 0 */
    }
    rn_buf_append(&b, "", 1); /* a terminating NUL */
    char *text = (char *)b.data;
    if (strncmp(text, HWC_HEADER, strlen(HWC_HEADER)) != 0) {
        RN_WARN("repl", "%s: not a high-watermark checkpoint (ignored: HWs start at 0)", path);
        rn_buf_free(&b);
        return;
    }
    size_t loaded = 0;
    char *save = NULL;
    for (char *line = strtok_r(text + strlen(HWC_HEADER), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char topic[RN_REPL_TOPIC_MAX];
        uint32_t p;
        uint64_t hw;
        if (sscanf(line, "%255s %" SCNu32 " %" SCNu64, topic, &p, &hw) != 3)
            continue; /* a torn line: that partition starts at 0 */
        rpart_t *rp = rn_repl__find(r, topic, p);
        if (!rp)
            continue;
        uint64_t end = rn_log_end_offset(rn_part_log(rp->part));
        rp->hw = hw < end ? hw : end;
        loaded++;
    }
    RN_INFO("repl", "high watermarks of %zu partition(s) from %s", loaded, path);
    rn_buf_free(&b);
}
