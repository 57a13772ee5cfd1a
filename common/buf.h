/*
 * buf.h - a growable byte buffer. The struct is public so callers can embed it and read
 * data/len directly; only the functions here change it.
 */
#ifndef RN_BUF_H
#define RN_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct rn_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} rn_buf_t;

#define RN_BUF_INIT {NULL, 0, 0}

/* Makes room for `extra` more bytes; RN_ERR_NOMEM leaves the buffer unchanged. */
rn_err_t rn_buf_reserve(rn_buf_t *b, size_t extra);
rn_err_t rn_buf_append(rn_buf_t *b, const void *data, size_t len);
/* Appends len bytes and returns a pointer to them (for the caller to fill), or NULL. */
uint8_t *rn_buf_extend(rn_buf_t *b, size_t len);
void rn_buf_reset(rn_buf_t *b);
void rn_buf_free(rn_buf_t *b);

#endif
