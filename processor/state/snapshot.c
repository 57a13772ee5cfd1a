#include "state/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define HDR 32
static const char MAGIC[4] = {'R', 'N', 'S', 'S'};

void rn_snap_path(const char *dir, uint64_t epoch, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/snapshot-%020" PRIu64 ".rnsnap", dir, epoch);
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t checksum(const uint8_t *hdr, const void *payload, size_t len)
{
    return XXH3_64bits_withSeed(payload, len, XXH3_64bits(hdr, 24));
}

static rn_err_t io_error(const char *what, const char *path, char *errbuf, size_t errlen)
{
    int e = errno;
    snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(e));
    return e == ENOSPC || e == EDQUOT ? RN_ERR_NO_SPACE : RN_ERR_IO;
}

static rn_err_t write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RN_ERR_IO;
        b += w;
        len -= (size_t)w;
    }
    return RN_OK;
}

rn_err_t rn_snap_write(const char *dir, uint64_t epoch, const void *payload, size_t len,
                       char *errbuf, size_t errlen)
{
    char path[4096], tmp[4096];
    rn_snap_path(dir, epoch, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/.snapshot-%020" PRIu64 ".tmp", dir, epoch);
    uint8_t hdr[HDR] = {0};
    memcpy(hdr, MAGIC, 4);
    hdr[4] = RN_SNAP_VERSION;
    le64(hdr + 8, epoch);
    le64(hdr + 16, len);
    le64(hdr + 24, checksum(hdr, payload, len));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return io_error("cannot create", tmp, errbuf, errlen);
    if (write_all(fd, hdr, HDR) != RN_OK || write_all(fd, payload, len) != RN_OK) {
        rn_err_t err = io_error("cannot write", tmp, errbuf, errlen);
        close(fd);
        unlink(tmp);
        return err;
    }
    if (fsync(fd) != 0) {
        rn_err_t err = io_error("cannot fsync", tmp, errbuf, errlen);
        close(fd);
        unlink(tmp);
        return err;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        rn_err_t err = io_error("cannot rename to", path, errbuf, errlen);
        unlink(tmp);
        return err;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return io_error("cannot open", dir, errbuf, errlen);
    int rc = fsync(dfd);
    close(dfd);
    return rc == 0 ? RN_OK : io_error("cannot fsync", dir, errbuf, errlen);
}

static rn_err_t corrupt(const char *path, const char *what, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "snapshot %s is corrupt: %s; remove it to start that state over "
             "(and reset the sink's runnel_offsets rows of this job)", path, what);
    return RN_ERR_CORRUPT;
}

rn_err_t rn_snap_read(const char *dir, uint64_t epoch, rn_buf_t *payload, char *errbuf,
                      size_t errlen)
{
    char path[4096];
    rn_snap_path(dir, epoch, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) {
            snprintf(errbuf, errlen, "no snapshot %s", path);
            return RN_ERR_NOT_FOUND;
        }
        return io_error("cannot open", path, errbuf, errlen);
    }
    uint8_t hdr[HDR];
    rn_err_t err = RN_OK;
    size_t got = fread(hdr, 1, HDR, f);
    rn_buf_reset(payload);
    if (got < HDR) {
        err = corrupt(path, "shorter than its header", errbuf, errlen);
    } else if (memcmp(hdr, MAGIC, 4) != 0) {
        err = corrupt(path, "bad magic (not a snapshot file)", errbuf, errlen);
    } else if (hdr[4] != RN_SNAP_VERSION || hdr[5] != 0) {
        char what[80];
        snprintf(what, sizeof what, "format version %u, this build reads %u",
                 hdr[4] | (unsigned)hdr[5] << 8, RN_SNAP_VERSION);
        err = corrupt(path, what, errbuf, errlen);
    } else if (rd64(hdr + 8) != epoch) {
        err = corrupt(path, "its epoch does not match its name", errbuf, errlen);
    } else {
        uint64_t len = rd64(hdr + 16);
        struct stat st;
        uint8_t *p = NULL;
        if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size != HDR + len) {
            err = corrupt(path, (uint64_t)st.st_size < HDR + len ? "truncated payload"
                                                                  : "its length does not match its header",
                          errbuf, errlen);
        } else if (!(p = rn_buf_extend(payload, (size_t)len))) {
            snprintf(errbuf, errlen, "out of memory reading %s", path);
            err = RN_ERR_NOMEM;
        } else if (fread(p, 1, (size_t)len, f) != len) {
            err = corrupt(path, "truncated payload", errbuf, errlen);
        } else if (checksum(hdr, p, (size_t)len) != rd64(hdr + 24)) {
            err = corrupt(path, "checksum mismatch", errbuf, errlen);
        }
    }
    fclose(f);
    if (err != RN_OK)
        rn_buf_reset(payload);
    return err;
}

static bool parse_name(const char *name, uint64_t *epoch, bool *tmp)
{
    const char *digits;
    if (strncmp(name, "snapshot-", 9) == 0 && strlen(name) == 9 + 20 + 7 &&
        strcmp(name + 29, ".rnsnap") == 0) {
        digits = name + 9;
        *tmp = false;
    } else if (strncmp(name, ".snapshot-", 10) == 0 && strlen(name) == 10 + 20 + 4 &&
               strcmp(name + 30, ".tmp") == 0) {
        digits = name + 10;
        *tmp = true;
    } else {
        return false;
    }
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(digits[i] - '0');
    }
    *epoch = v;
    return true;
}

uint64_t rn_snap_latest(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t best = 0, e;
    bool tmp;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (parse_name(ent->d_name, &e, &tmp) && !tmp && e > best)
            best = e;
    }
    closedir(d);
    return best;
}

void rn_snap_prune(const char *dir, uint64_t keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    uint64_t e;
    bool tmp;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (parse_name(ent->d_name, &e, &tmp) && (tmp || e != keep)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
            unlink(path);
        }
    }
    closedir(d);
}
