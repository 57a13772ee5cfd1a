#include "buf.h"

#include <stdlib.h>
#include <string.h>

rn_err_t rn_buf_reserve(rn_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return RN_ERR_NOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return RN_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return RN_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return RN_OK;
}

rn_err_t rn_buf_append(rn_buf_t *b, const void *data, size_t len)
{
    uint8_t *dst = rn_buf_extend(b, len);
    if (!dst)
        return RN_ERR_NOMEM;
    if (len)
        memcpy(dst, data, len);
    return RN_OK;
}

uint8_t *rn_buf_extend(rn_buf_t *b, size_t len)
{
    if (rn_buf_reserve(b, len) != RN_OK)
        return NULL;
    uint8_t *p = b->data + b->len;
    b->len += len;
    return p;
}

void rn_buf_reset(rn_buf_t *b)
{
    b->len = 0;
}

void rn_buf_free(rn_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
