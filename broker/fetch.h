/*
 * fetch.h - the Fetch API, with long polls and zero-copy record bytes.
 *
 * Per partition: fetch_offset below the log start or above the high watermark (= log end on
 * one node) gets OFFSET_OUT_OF_RANGE with log_start_offset and high_watermark set; otherwise
 * whole batches from fetch_offset, up to partition_max_bytes (0: 1 MiB) and, over the whole
 * response, max_bytes (0: 50 MiB) - except that the first batch of the response is always
 * sent whole so a consumer progresses (KIP-74).
 *
 * Long poll: when the response would hold fewer than min_bytes of records and max_wait_ms > 0
 * (and no partition has an error), the fetch waits. Any append (rn_fetch_poke) makes every
 * waiting fetch look again after the loop's I/O phase; it answers as soon as min_bytes are
 * there, or at max_wait_ms with what there is. Later responses on its connection wait behind
 * it (request order).
 *
 * Zero copy: records is the last field of FetchPartitionData, so the response is written by
 * hand as protobuf - every length computed up front - with the records field's tag and length
 * in memory and its bytes as file ranges that the connection sends with sendfile(2) from the
 * segment files. The client sees ordinary protobuf.
 */
#ifndef RN_BROKER_FETCH_H
#define RN_BROKER_FETCH_H

#include <stddef.h>
#include <uv.h>

#include "api.h"

rn_fetch_t *rn_fetch_new(uv_loop_t *loop, rn_topics_t *topics, rn_srv_t *srv);
/* Closes the handles; the struct is freed when they are closed. No fetch may wait any more. */
void rn_fetch_free(rn_fetch_t *f);

void rn_fetch_handle(rn_fetch_t *f, rn_resp_t *resp, Runnel__FetchRequest *req);
/* Data was appended or topics changed: waiting fetches look again before the loop sleeps. */
void rn_fetch_poke(rn_fetch_t *f);
/* Shutdown: every waiting fetch answers now with what it has; later ones never wait. */
void rn_fetch_answer_all(rn_fetch_t *f);
size_t rn_fetch_waiting(const rn_fetch_t *f);

#endif
