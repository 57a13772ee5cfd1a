/*
 * json.h - a schema-driven JSON decoder: reads one JSON object per record and fills exactly
 * the columns the job declares, skipping every other field without building anything.
 *
 *   column type   accepts                               gives
 *   TEXT          "string" (escapes decoded), or a      the text (a number: its digits)
 *                 number (ids arrive both ways)
 *   BIGINT        an integer number                     int64
 *   DOUBLE        any number                            double
 *   BOOLEAN       true / false                          bool
 *   TIMESTAMP     a number of epoch milliseconds, or    epoch ms
 *                 an ISO-8601 string
 *   any           null                                  SQL NULL
 *
 * A declared field that is missing, or has the wrong JSON type, is a decode error naming the
 * field; malformed JSON is an error naming the byte offset. Duplicate keys: the last wins.
 *
 * No allocation per record: TEXT values point into the input when they hold no escape, or
 * into the decoder's scratch space otherwise; either way they are valid until the next
 * rn_json_decode on the same decoder (and the input must stay alive that long).
 */
#ifndef RN_JSON_H
#define RN_JSON_H

#include <stddef.h>

#include "err.h"
#include "ops/value.h"

typedef struct rn_json_col {
    const char *name;
    rn_type_t type;
} rn_json_col_t;

typedef struct rn_json_dec rn_json_dec_t;

/* A decoder for ncols columns (names are copied). RN_ERR_NOMEM. */
rn_err_t rn_json_dec_new(const rn_json_col_t *cols, size_t ncols, rn_json_dec_t **out);
void rn_json_dec_free(rn_json_dec_t *d);

/*
 * Decodes json[0..len) into row[0..ncols). RN_OK, or RN_ERR_MALFORMED with errbuf saying
 * why ("malformed JSON at byte 17: expected ':'", "missing field 'ts'", "field 'value':
 * expected a number, found a string"). The row is undefined after an error.
 */
rn_err_t rn_json_decode(rn_json_dec_t *d, const char *json, size_t len, rn_value_t *row,
                        char *errbuf, size_t errlen);

#endif
