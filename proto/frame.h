/*
 * frame.h - the wire framing (DESIGN §3).
 *
 *   0        4                       4+length
 *   +--------+-----------------------+
 *   | length | protobuf message      |     length: u32 little-endian, bytes after itself
 *   +--------+-----------------------+
 *
 * The decoder is incremental: bytes may arrive one at a time. It rejects a length above its
 * maximum as soon as the 4 length bytes are in, before allocating anything, and it never
 * reads outside the input it is given.
 */
#ifndef RN_FRAME_H
#define RN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "runnel.pb-c.h"

#define RN_FRAME_LEN_SIZE 4

typedef struct rn_frame_dec rn_frame_dec_t;

/* A decoder that accepts frames of at most max_len payload bytes; NULL when out of memory. */
rn_frame_dec_t *rn_frame_dec_new(uint32_t max_len);
void rn_frame_dec_free(rn_frame_dec_t *d);

/*
 * Feeds [data, data+len) to the decoder.
 *   RN_OK: a whole frame is ready; *payload and *payload_len point at it (into `data` when the
 *          frame arrived whole, else into the decoder's buffer) and stay valid until the next
 *          call or until `data` is reused. *consumed says how many input bytes were used;
 *          call again with the rest.
 *   RN_ERR_AGAIN: every input byte was consumed (*consumed == len) and no frame is complete.
 *   RN_ERR_FRAME_TOO_LARGE: the length prefix exceeds max_len; the stream cannot be resynced.
 *   RN_ERR_NOMEM.
 */
rn_err_t rn_frame_dec_feed(rn_frame_dec_t *d, const uint8_t *data, size_t len, size_t *consumed,
                           const uint8_t **payload, uint32_t *payload_len);
/* Bytes of a partial frame held by the decoder (0 at a frame boundary). */
size_t rn_frame_dec_pending(const rn_frame_dec_t *d);

/* Appends length prefix + packed message to out. */
rn_err_t rn_frame_pack(const ProtobufCMessage *msg, rn_buf_t *out);

/*
 * Unpacks a Request / Response payload. RN_ERR_MALFORMED when protobuf-c rejects the bytes
 * (truncated or invalid); free the result with runnel__request__free_unpacked(msg, NULL).
 */
rn_err_t rn_frame_unpack_request(const uint8_t *payload, size_t len, Runnel__Request **out);
rn_err_t rn_frame_unpack_response(const uint8_t *payload, size_t len, Runnel__Response **out);

/*
 * Reads header.correlation_id out of a Request payload that may be malformed elsewhere, so
 * the broker can answer a bad frame before closing. RN_ERR_NOT_FOUND when it is unreadable.
 */
rn_err_t rn_frame_peek_correlation_id(const uint8_t *payload, size_t len, uint32_t *cid);

#endif
