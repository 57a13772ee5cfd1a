/* pids.c - durable producer-id blocks. */
#include "pids.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"

#define PIDS_FILE "producer-ids"
#define PIDS_KEY "next.block.start="

struct rn_pids {
    char *path;
    int64_t next;  /* next id to hand out */
    int64_t limit; /* ids below limit are covered by the persisted block */
};

rn_err_t rn_pids_open(const char *data_dir, rn_pids_t **out, char *errbuf, size_t errlen)
{
    rn_pids_t *p = calloc(1, sizeof *p);
    if (!p)
        return RN_ERR_NOMEM;
    size_t n = strlen(data_dir) + sizeof PIDS_FILE + 2;
    if (!(p->path = malloc(n))) {
        free(p);
        return RN_ERR_NOMEM;
    }
    snprintf(p->path, n, "%s/%s", data_dir, PIDS_FILE);
    p->next = p->limit = 1;
    rn_buf_t b = RN_BUF_INIT;
    rn_err_t err = rn_fs_read_all(p->path, &b);
    if (err == RN_OK) {
        char text[64] = "";
        size_t len = b.len < sizeof text - 1 ? b.len : sizeof text - 1;
        memcpy(text, b.data, len);
        char *end;
        errno = 0;
        long long v = strncmp(text, PIDS_KEY, strlen(PIDS_KEY)) == 0
                          ? strtoll(text + strlen(PIDS_KEY), &end, 10)
                          : -1;
        if (errno || v < 1 || (*end != '\n' && *end != '\0')) {
            snprintf(errbuf, errlen,
                     "%s: unreadable (expected '" PIDS_KEY "N'); it guards producer-id "
                     "uniqueness, so fix or remove it only if no producer of this broker "
                     "remains", p->path);
            err = RN_ERR_CORRUPT;
        } else {
            p->next = p->limit = v;
        }
    } else if (err == RN_ERR_NOT_FOUND) {
        err = RN_OK;
    } else {
        snprintf(errbuf, errlen, "%s: cannot read: %s", p->path, strerror(errno));
    }
    rn_buf_free(&b);
    if (err != RN_OK) {
        rn_pids_free(p);
        return err;
    }
    *out = p;
    return RN_OK;
}

void rn_pids_free(rn_pids_t *p)
{
    if (!p)
        return;
    free(p->path);
    free(p);
}

rn_err_t rn_pids_next(rn_pids_t *p, int64_t *id)
{
    if (p->next >= p->limit) {
        if (p->limit > INT64_MAX - RN_PIDS_BLOCK)
            return RN_ERR_STATE;
        int64_t limit = p->limit + RN_PIDS_BLOCK;
        char text[64];
        int n = snprintf(text, sizeof text, PIDS_KEY "%" PRId64 "\n", limit);
        rn_err_t err = rn_fs_write_atomic(p->path, text, (size_t)n, true);
        if (err != RN_OK)
            return err;
        p->next = p->limit; /* the first id of the new block */
        p->limit = limit;
    }
    *id = p->next++;
    return RN_OK;
}

bool rn_pids_issued(const rn_pids_t *p, int64_t id)
{
    return id >= 1 && id < p->next;
}
