/*
 * produce.h - the Produce API.
 *
 * For every partition of the request: look it up (UNKNOWN_TOPIC_OR_PARTITION), append its
 * batches through rn_part_append (validation, idempotence, one write), and collect
 * per-partition results. acks:
 *   0    no response at all (as in Kafka); the appends still happen
 *   1    answer once every partition is appended - and, where flush.messages says a flush is
 *        due (flush.messages=1: always), once the group-commit fsync covering it has ended
 *   -1   (all) the same as 1 on a single node
 * Any other acks value gets INVALID_REQUEST. The response waits for the slowest partition;
 * later responses on the connection wait behind it (responses stay in request order).
 */
#ifndef RN_BROKER_PRODUCE_H
#define RN_BROKER_PRODUCE_H

#include "api.h"

void rn_produce_handle(rn_api_ctx_t *ctx, rn_resp_t *resp, Runnel__ProduceRequest *req);

#endif
