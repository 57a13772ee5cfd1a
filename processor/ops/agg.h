/*
 * agg.h - aggregate accumulators: COUNT(*), COUNT(x), COUNT(DISTINCT x), SUM, MIN, MAX, AVG.
 *
 * An accumulator is 24 bytes the caller embeds in group state (no allocation for the common
 * aggregates). NULL arguments are skipped, as SQL says; SUM/MIN/MAX/AVG over no non-NULL
 * value give NULL, COUNT gives 0. Two heap-backed cases keep a pointer in `ext`:
 *   COUNT(DISTINCT x)  a hash set of the 64-bit XXH3 hashes of the values (exact up to hash
 *                      collisions: for n distinct values per group the chance of any is about
 *                      n^2 / 2^65, 3e-8 at a million)
 *   MIN/MAX of TEXT    a copy of the current extreme
 * rn_agg_free releases them.
 */
#ifndef RN_AGG_H
#define RN_AGG_H

#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "ops/value.h"

typedef enum rn_agg_kind {
    RN_AGG_COUNT_STAR,
    RN_AGG_COUNT,
    RN_AGG_COUNT_DISTINCT,
    RN_AGG_SUM,
    RN_AGG_MIN,
    RN_AGG_MAX,
    RN_AGG_AVG,
} rn_agg_kind_t;

typedef struct rn_agg_desc {
    rn_agg_kind_t kind;
    rn_type_t arg_type;  /* the argument's type (unused for COUNT(*)) */
    rn_type_t type;      /* the result's type */
} rn_agg_desc_t;

typedef struct rn_agg_acc {
    int64_t n;           /* non-NULL values seen (COUNT(*): rows) */
    union {
        int64_t i;
        double d;
    } v;
    void *ext;
} rn_agg_acc_t;

/* The result type of kind over arg_type, or -1 when kind does not apply (SUM of TEXT). */
int rn_agg_result_type(rn_agg_kind_t kind, rn_type_t arg_type);
/* "COUNT", "SUM" … */
const char *rn_agg_name(rn_agg_kind_t kind);

/* Folds one value in (ignored for COUNT(*): pass NULL). RN_ERR_NOMEM leaves acc as it was. */
rn_err_t rn_agg_update(const rn_agg_desc_t *d, rn_agg_acc_t *acc, const rn_value_t *v);
/* Folds src into dst (session windows merging); src is freed. */
rn_err_t rn_agg_merge(const rn_agg_desc_t *d, rn_agg_acc_t *dst, rn_agg_acc_t *src);
/* The current result; a TEXT result points into acc (valid until acc changes). */
rn_value_t rn_agg_result(const rn_agg_desc_t *d, const rn_agg_acc_t *acc);
void rn_agg_free(const rn_agg_desc_t *d, rn_agg_acc_t *acc);

/* Snapshot encoding (self-delimiting; see state/winstate.c). */
rn_err_t rn_agg_write(const rn_agg_desc_t *d, const rn_agg_acc_t *acc, rn_buf_t *out);
/* Reads what rn_agg_write wrote; RN_ERR_CORRUPT on bad input. Advances *p. */
rn_err_t rn_agg_read(const rn_agg_desc_t *d, rn_agg_acc_t *acc, const uint8_t **p,
                     const uint8_t *end);

/* Hash of a value as COUNT(DISTINCT) and group keys see it (type-aware; NULLs equal). */
uint64_t rn_agg_value_hash(const rn_value_t *v);

#endif
