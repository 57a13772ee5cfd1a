/*
 * pids.h - producer ids for InitProducerId, unique across restarts of this broker.
 *
 * Ids are handed out from a block that is made durable before its first id is used:
 *
 *   DATA_DIR/producer-ids     "next.block.start=N\n" (written atomically, fsynced)
 *
 * On start the broker reads N and hands out nothing below it; each time the current block is
 * used up it persists N + RN_PIDS_BLOCK first. A crash wastes the rest of a block, never
 * repeats an id. Ids start at 1. Loop thread only (the block write blocks on an fsync once per
 * RN_PIDS_BLOCK producers).
 */
#ifndef RN_BROKER_PIDS_H
#define RN_BROKER_PIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RN_PIDS_BLOCK 1000

typedef struct rn_pids rn_pids_t;

/* Reads DATA_DIR/producer-ids (absent: a fresh broker). errbuf names the file on failure. */
rn_err_t rn_pids_open(const char *data_dir, rn_pids_t **out, char *errbuf, size_t errlen);
void rn_pids_free(rn_pids_t *p);
/* A new producer id; RN_ERR_IO / RN_ERR_NO_SPACE when the next block cannot be persisted. */
rn_err_t rn_pids_next(rn_pids_t *p, int64_t *id);
/* True when id was handed out by this broker (in this run or an earlier one). */
bool rn_pids_issued(const rn_pids_t *p, int64_t id);

#endif
