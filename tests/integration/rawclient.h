/*
 * rawclient.h - a tiny blocking client that speaks the wire protocol with raw frames, so the
 * broker's integration tests do not depend on librunnel. Not thread-safe; one per connection.
 *
 * Functions return NULL / -1 on transport failure (connection closed, timeout) and never
 * abort, so tests can assert on what the broker did to a misbehaving client.
 */
#ifndef RN_RAWCLIENT_H
#define RN_RAWCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "buf.h"
#include "frame.h"
#include "runnel.pb-c.h"

#include "harness.h"

/*
 * rn_h_broker_start / rn_h_broker_restart, and the broker's pid is remembered: at exit every
 * such broker still running is SIGKILLed, so a failed assertion (which skips the test's own
 * stop) leaves no process behind.
 */
int rn_rc_broker_start(rn_hbroker_t *b, const char *data_dir, const char *const *settings);
int rn_rc_broker_restart(rn_hbroker_t *b);

typedef struct rn_rc {
    int fd;
    uint32_t next_cid;
    rn_frame_dec_t *dec;
    rn_buf_t in;        /* bytes received, not yet decoded */
    size_t in_pos;
} rn_rc_t;

/* Connects to "HOST:PORT"; -1 on failure. */
int rn_rc_connect(rn_rc_t *c, const char *addr);
void rn_rc_close(rn_rc_t *c);

/* Sends bytes as they are. */
int rn_rc_send_raw(rn_rc_t *c, const void *data, size_t len);
/* Fills req->header (api, version 0, a fresh correlation id) and sends it; returns the id. */
int64_t rn_rc_send(rn_rc_t *c, Runnel__Request *req, Runnel__ApiKey api);
/* Next response frame, or NULL on EOF, error or timeout. Free with rn_rc_free. */
Runnel__Response *rn_rc_recv(rn_rc_t *c, int timeout_ms);
void rn_rc_free(Runnel__Response *r);
/* send + recv; checks the correlation id matches (NULL otherwise). */
Runnel__Response *rn_rc_call(rn_rc_t *c, Runnel__Request *req, Runnel__ApiKey api,
                             int timeout_ms);
/* True when the broker closed the connection within timeout_ms (responses before are dropped). */
bool rn_rc_closed_by_peer(rn_rc_t *c, int timeout_ms);

/* ---- requests ---- */

/* CreateTopics for one topic; configs is a NULL-terminated list of "key=value" (or NULL).
 * Returns the topic's error code, or -1 on transport failure; msg (may be NULL) gets the
 * error message. */
int rn_rc_create_topic(rn_rc_t *c, const char *name, uint32_t partitions, uint32_t rf,
                       const char *const *configs, char *msg, size_t msglen);
int rn_rc_delete_topic(rn_rc_t *c, const char *name);

/* Produce of batches to one partition with acks 1/-1. Returns the partition's error code
 * (-1 on transport failure); *base_offset gets the result's base offset. */
int rn_rc_produce(rn_rc_t *c, const char *topic, uint32_t partition, int32_t acks,
                  const void *batches, size_t len, int64_t *base_offset);

/* Fetch of one partition. Returns the Response (check its fetch body) or NULL. */
Runnel__Response *rn_rc_fetch(rn_rc_t *c, const char *topic, uint32_t partition, int64_t offset,
                              uint32_t partition_max_bytes, uint32_t max_bytes,
                              uint32_t min_bytes, uint32_t max_wait_ms, int timeout_ms);
/* The one partition's data in a fetch response (NULL when the shape is wrong). */
Runnel__FetchPartitionData *rn_rc_fetch_part(Runnel__Response *r);

/* ListOffsets for one partition: the offset, or -1 - error code (< -1) on an error, or
 * INT64_MIN on transport failure. */
int64_t rn_rc_list_offset(rn_rc_t *c, const char *topic, uint32_t partition, int64_t ts);

/* ---- batches ---- */

/* Appends one batch of n records with values "<prefix>-<first + i>" (keys NULL). */
void rn_rc_make_batch(rn_buf_t *out, int64_t producer_id, int16_t epoch, int32_t base_seq,
                      int n, const char *prefix, int first);

/* A record read back: its offset and value. */
typedef struct rn_rc_rec {
    uint64_t offset;
    char value[64];
} rn_rc_rec_t;

/* Decodes every record of the batches in [data, data+len) into recs (up to cap); returns the
 * count, or -1 when a batch does not verify. */
int rn_rc_decode(const uint8_t *data, size_t len, rn_rc_rec_t *recs, int cap);

/* Fetches the whole partition from offset `from` to its end into recs; returns the count or -1. */
int rn_rc_fetch_all(rn_rc_t *c, const char *topic, uint32_t partition, int64_t from,
                    rn_rc_rec_t *recs, int cap);

#endif
