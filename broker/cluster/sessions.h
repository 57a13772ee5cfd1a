/*
 * sessions.h - the active controller's broker sessions (docs/cluster.md §3.2, §3.4; KIP-631).
 *
 * A session is memory only: broker id, the broker epoch it registered with, and a deadline.
 * Heartbeats are RPCs, not log records; only the fence/unfence decisions that fall out of
 * this table are logged (FenceBrokerRecord, UnfenceBrokerRecord), by the caller.
 *
 * Happy path
 *   rn_sess_reset(now)         takeover: every registered broker (the caller adds them with
 *                              rn_sess_track) gets a fresh deadline now + session timeout
 *   rn_sess_track(id, epoch)   a (re-)registration committed: deadline now + timeout
 *   rn_sess_heartbeat(...)     RN_OK and a new deadline, or STALE_BROKER_EPOCH
 *   rn_sess_expired(now, ...)  the brokers whose deadline passed and that are not yet being
 *                              fenced; each is reported once until its next heartbeat
 *
 * The clock comes in as an argument (milliseconds, any monotonic origin), so unit tests drive
 * it step by step. No I/O, no allocation after rn_sess_new.
 *
 * @locality one owner thread (the broker loop).
 */
#ifndef RN_BROKER_CLUSTER_SESSIONS_H
#define RN_BROKER_CLUSTER_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RN_SESS_MAX 64

typedef struct rn_sess rn_sess_t;

/* NULL when out of memory. timeout_ms is broker.session.timeout.ms. */
rn_sess_t *rn_sess_new(uint32_t timeout_ms);
void rn_sess_free(rn_sess_t *s);

/* Forgets every session (leadership lost, or a takeover about to re-track them). */
void rn_sess_clear(rn_sess_t *s);

/*
 * Starts or replaces the session of broker id at broker epoch epoch, deadline now_ms +
 * timeout. RN_ERR_NO_SPACE when RN_SESS_MAX other brokers are tracked.
 */
rn_err_t rn_sess_track(rn_sess_t *s, int32_t id, uint64_t epoch, int64_t now_ms);

/* Drops broker id's session (unregistered). */
void rn_sess_forget(rn_sess_t *s, int32_t id);

/*
 * A heartbeat from broker id at epoch. RN_OK: the deadline is now_ms + timeout (and a broker
 * reported expired may be reported again later). RN_ERR_STALE_BROKER_EPOCH: epoch is not the
 * tracked one; RN_ERR_NOT_FOUND: no session (the broker must register). Neither moves the
 * deadline.
 */
rn_err_t rn_sess_heartbeat(rn_sess_t *s, int32_t id, uint64_t epoch, int64_t now_ms);

/*
 * Writes up to cap ids whose deadline is <= now_ms and that were not reported since their
 * last heartbeat or track, marks them reported, and returns how many it wrote.
 */
size_t rn_sess_expired(rn_sess_t *s, int64_t now_ms, int32_t *ids, size_t cap);

/* True when broker id has a session whose deadline is after now_ms. */
bool rn_sess_alive(const rn_sess_t *s, int32_t id, int64_t now_ms);
/* The epoch of broker id's session; 0 when none. */
uint64_t rn_sess_epoch(const rn_sess_t *s, int32_t id);
size_t rn_sess_count(const rn_sess_t *s);

#endif
