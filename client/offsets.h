/*
 * offsets.h - ListOffsets for one partition, routed to its leader, retried through metadata
 * refreshes until a deadline. The consumer uses it for offset resets and seek-by-timestamp;
 * the admin for list_offsets.
 */
#ifndef RN_CLIENT_OFFSETS_H
#define RN_CLIENT_OFFSETS_H

#include <stdint.h>

#include "core.h"

/* err RN_OK: offset is the answer. */
typedef void (*rn_lo_cb)(void *ctx, rn_err_t err, int64_t offset);

/*
 * Loop thread. ts: -1 latest, -2 earliest, else the first offset with timestamp >= ts.
 * Retriable failures (no leader yet, NOT_LEADER_OR_FOLLOWER, a lost connection) are retried
 * after a metadata refresh until deadline_ns; then cb gets the last error. cb runs exactly
 * once; only when the request cannot even be queued (out of memory) may that happen inside
 * this call. Returns RN_OK, or RN_ERR_NOMEM / RN_ERR_CLOSED (cb not run).
 */
rn_err_t rn_lo_start(rn_cl_t *cl, const char *topic, int32_t partition, int64_t ts,
                     int64_t deadline_ns, rn_lo_cb cb, void *ctx);

/* App thread: the same, waiting up to timeout_ms (-1: no limit). */
rn_err_t rn_lo_call(rn_cl_t *cl, const char *topic, int32_t partition, int64_t ts,
                    int timeout_ms, int64_t *offset);

#endif
