/* fsutil.c - atomic metadata files, whole-file reads, mkdir -p, rm -rf, the data-dir lock. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static rn_err_t errno_err(void)
{
    return errno == ENOSPC || errno == EDQUOT ? RN_ERR_NO_SPACE : RN_ERR_IO;
}

/* The directory part of path ("." when it has none), in buf. */
static void dirname_of(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(buf, len, ".");
        return;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= len)
        n = len - 1;
    memcpy(buf, path, n);
    buf[n] = '\0';
}

rn_err_t rn_fs_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RN_ERR_IO;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc < 0 ? errno_err() : RN_OK;
}

rn_err_t rn_fs_write_atomic(const char *path, const void *data, size_t len, bool durable)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return RN_ERR_IO;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno_err();
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        p += n;
        left -= (size_t)n;
    }
    if (durable && fdatasync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    if (durable) {
        char dir[PATH_MAX];
        dirname_of(path, dir, sizeof dir);
        return rn_fs_sync_dir(dir);
    }
    return RN_OK;
fail:;
    rn_err_t err = errno_err();
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return err;
}

rn_err_t rn_fs_read_all(const char *path, rn_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RN_ERR_NOT_FOUND : RN_ERR_IO;
    rn_err_t err = RN_OK;
    for (;;) {
        if (rn_buf_reserve(out, 4096) != RN_OK) {
            err = RN_ERR_NOMEM;
            break;
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = RN_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    close(fd);
    return err;
}

rn_err_t rn_fs_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return RN_ERR_IO;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return RN_ERR_IO;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return RN_ERR_IO;
    struct stat st;
    if (stat(buf, &st) < 0)
        return RN_ERR_IO;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return RN_ERR_IO;
    }
    return RN_OK;
}

rn_err_t rn_fs_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? RN_OK : RN_ERR_IO;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? RN_ERR_IO : RN_OK;
    DIR *d = opendir(path);
    if (!d)
        return RN_ERR_IO;
    rn_err_t err = RN_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) {
            err = RN_ERR_IO;
            continue;
        }
        if (rn_fs_rmtree(child) != RN_OK)
            err = RN_ERR_IO;
    }
    closedir(d);
    if (rmdir(path) < 0)
        err = RN_ERR_IO;
    return err;
}

rn_err_t rn_fs_lock_dir(const char *dir, int *fd)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return RN_ERR_IO;
    }
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return RN_ERR_IO;
    if (flock(f, LOCK_EX | LOCK_NB) < 0) {
        int saved = errno;
        close(f);
        errno = saved;
        return saved == EWOULDBLOCK ? RN_ERR_EXISTS : RN_ERR_IO;
    }
    *fd = f;
    return RN_OK;
}
