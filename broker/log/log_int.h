/*
 * log_int.h - the partition log's insides, shared by log.c (segments, append, read, flush,
 * recovery, truncation, retention) and log_replica.c (the epoch cache's upkeep, follower
 * appends). Nothing outside broker/log includes it; the rn_log__ names are internal (libuv's
 * uv__ habit).
 */
#ifndef RN_LOG_INT_H
#define RN_LOG_INT_H

#include "epoch.h"
#include "log.h"
#include "segment.h"

struct rn_log {
    char *dir;
    rn_log_config_t cfg;
    const rn_clock_t *clock;
    const rn_io_t *io;
    rn_seg_t **segs;          /* oldest first; the last is the active segment */
    uint32_t nsegs;
    uint32_t cap;
    uint64_t flushed_offset;  /* everything below is durable */
    int64_t unflushed_records;
    int64_t last_flush_ms;
    bool dir_dirty;           /* names created or removed since the last directory fsync */
    bool sync_in_flight;
    rn_err_t failed;          /* RN_OK, or why the log turned read-only */
    int rp_fd;
    uint64_t recovery_from;   /* where recovery's scan started (unclean open) */
    rn_lep_t *epochs;
    rn_log_recovery_t recovery;
};

void rn_log__seterr(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The active segment (the last). */
rn_seg_t *rn_log__active(const rn_log_t *log);
/* Index of the segment that holds offset: the last with base_offset <= offset. */
uint32_t rn_log__seg_for(const rn_log_t *log, uint64_t offset);
/* True when the active segment must roll before incoming more bytes. */
bool rn_log__roll_due(const rn_log_t *log, size_t incoming);
/* Seals the active segment and starts the next one at the log end. */
rn_err_t rn_log__roll(rn_log_t *log);

/* log_replica.c: */
rn_err_t rn_log__epochs_open(rn_log_t *log, rn_err_t loaded, char *errbuf, size_t errlen);
rn_err_t rn_log__leader_epoch_start(rn_log_t *log, uint32_t epoch);

#endif
