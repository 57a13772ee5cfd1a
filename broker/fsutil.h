/*
 * fsutil.h - small file helpers for the broker's own metadata files (topics.meta,
 * producer-ids, listening, producer-state snapshots): atomic replacement, whole-file reads,
 * directory creation and removal, and the data-directory lock.
 *
 * Loop-thread helpers: they block on the disk (an fsync when durable), which is acceptable for
 * the rare metadata writes they serve (topic changes, a producer-id block, segment rolls).
 */
#ifndef RN_BROKER_FSUTIL_H
#define RN_BROKER_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/*
 * Replaces path with data: writes "path.tmp", (durable: fdatasync), renames it over path,
 * (durable: fsyncs the directory). A crash leaves the old or the new content, never a mix.
 * RN_ERR_IO / RN_ERR_NO_SPACE with errno set.
 */
rn_err_t rn_fs_write_atomic(const char *path, const void *data, size_t len, bool durable);
/* Reads the whole file into out (appended). RN_ERR_NOT_FOUND when it does not exist. */
rn_err_t rn_fs_read_all(const char *path, rn_buf_t *out);
/* mkdir -p; RN_ERR_IO with errno set. */
rn_err_t rn_fs_mkdirs(const char *path);
/* rm -rf; RN_OK when path does not exist. */
rn_err_t rn_fs_rmtree(const char *path);
/* fsync of a directory. */
rn_err_t rn_fs_sync_dir(const char *path);
/*
 * Takes an exclusive flock on DIR/.lock so two brokers never share a data directory.
 * *fd holds the lock until closed (the kernel drops it when the process dies).
 * RN_ERR_EXISTS when another process holds it.
 */
rn_err_t rn_fs_lock_dir(const char *dir, int *fd);

#endif
