/*
 * io.h - the file operations the storage engine uses, behind a vtable so tests can fail the
 * Nth write (ENOSPC, EIO) or count syncs (STYLE habit 3, SQLite's fault loops).
 *
 * Every function follows POSIX: -1 with errno set on failure. Index files are mmapped
 * directly (mmap is not routed through here); their durability is never relied upon, because
 * recovery rebuilds what it scans.
 */
#ifndef RN_IO_H
#define RN_IO_H

#include <stddef.h>
#include <sys/types.h>

typedef struct rn_io {
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*close)(void *ctx, int fd);
    int (*unlink)(void *ctx, const char *path);
    int (*rename)(void *ctx, const char *from, const char *to);
    void *ctx;
} rn_io_t;

/* Plain POSIX calls; static storage. */
const rn_io_t *rn_io_posix(void);

/* Writes all of buf at off, retrying short writes and EINTR; -1 with errno on failure. */
int rn_io_pwrite_all(const rn_io_t *io, int fd, const void *buf, size_t len, off_t off);
/* Reads up to len bytes at off, retrying short reads; returns bytes read (less at EOF) or -1. */
ssize_t rn_io_pread_all(const rn_io_t *io, int fd, void *buf, size_t len, off_t off);
/* fsync of a directory, so that created, renamed and deleted names are durable. */
int rn_io_sync_dir(const rn_io_t *io, const char *dir);

#endif
