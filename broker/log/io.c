#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int px_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    return open(path, flags | O_CLOEXEC, mode);
}

static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    (void)ctx;
    return pwrite(fd, buf, len, off);
}

static ssize_t px_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    return pread(fd, buf, len, off);
}

static int px_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd);
}

static int px_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    return ftruncate(fd, len);
}

static int px_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}

static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path);
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to);
}

static const rn_io_t posix_io = {px_open,  px_pwrite, px_pread,  px_fdatasync,
                                 px_ftruncate, px_close, px_unlink, px_rename, NULL};

const rn_io_t *rn_io_posix(void)
{
    return &posix_io;
}

int rn_io_pwrite_all(const rn_io_t *io, int fd, const void *buf, size_t len, off_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = io->pwrite(io->ctx, fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

ssize_t rn_io_pread_all(const rn_io_t *io, int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = io->pread(io->ctx, fd, (char *)buf + got, len - got, off + (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int rn_io_sync_dir(const rn_io_t *io, const char *dir)
{
    int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return -1;
    int rc = io->fdatasync(io->ctx, fd);
    int saved = errno;
    io->close(io->ctx, fd);
    errno = saved;
    return rc;
}
