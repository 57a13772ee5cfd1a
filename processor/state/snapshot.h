/*
 * snapshot.h - state snapshots on disk: one file per checkpoint epoch in the state dir.
 *
 *   DIR/snapshot-00000000000000000042.rnsnap
 *
 *   offset  size  field
 *        0     4  magic "RNSS"
 *        4     2  format version (1), little-endian
 *        6     2  reserved, 0
 *        8     8  epoch: the checkpoint this snapshot belongs to
 *       16     8  payload length
 *       24     8  XXH3-64 of bytes 0..24 and of the payload (seeded by the header hash)
 *       32     …  payload (the runtime's encoding of offsets, watermarks and window state)
 *
 * Writing: DIR/.snapshot-….tmp is written, fsynced, renamed to its final name, and the
 * directory fsynced, so a snapshot file is either absent or complete. Any other damage
 * (a bad magic, version, length or checksum) reads back as RN_ERR_CORRUPT with a message
 * that names the file and what is wrong; it is never loaded.
 */
#ifndef RN_SNAPSHOT_H
#define RN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define RN_SNAP_VERSION 1

/* DIR/snapshot-<epoch>.rnsnap into out. */
void rn_snap_path(const char *dir, uint64_t epoch, char *out, size_t outlen);

/* Writes the snapshot of epoch atomically (see above). RN_ERR_IO / RN_ERR_NO_SPACE. */
rn_err_t rn_snap_write(const char *dir, uint64_t epoch, const void *payload, size_t len,
                       char *errbuf, size_t errlen);
/*
 * Reads the snapshot of epoch into payload (replacing its contents). RN_ERR_NOT_FOUND when
 * there is none, RN_ERR_CORRUPT when it fails validation, RN_ERR_IO.
 */
rn_err_t rn_snap_read(const char *dir, uint64_t epoch, rn_buf_t *payload, char *errbuf,
                      size_t errlen);
/* The newest epoch with a snapshot file in dir (0 when none). */
uint64_t rn_snap_latest(const char *dir);
/* Deletes snapshot files (and leftover temporaries) of every epoch other than keep. */
void rn_snap_prune(const char *dir, uint64_t keep);

#endif
