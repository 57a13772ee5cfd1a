/*
 * json.h - the little JSON the tools need: writing escaped strings (consume -J, --json
 * summaries) and finding one top-level field of an object (produce --key-field).
 *
 * Not a parser for general use: the extractor walks a single object, skipping nested values
 * without building anything, and stops at the first field with the wanted name.
 */
#ifndef RN_TOOLS_JSON_H
#define RN_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"

/*
 * Writes data as a JSON string literal, quotes included. Valid UTF-8 passes through; control
 * characters, '"' and '\\' are escaped; a byte that is not part of valid UTF-8 is written as
 * \u00XX (its Latin-1 reading), so the output is always valid JSON.
 */
void rn_json_write_string(FILE *out, const void *data, size_t len);
/* The same into a buffer; RN_ERR_NOMEM. */
rn_err_t rn_json_append_string(rn_buf_t *out, const void *data, size_t len);

typedef enum rn_json_kind {
    RN_JSON_STRING,   /* value points inside the quotes; may hold escapes (see unescape) */
    RN_JSON_NUMBER,
    RN_JSON_BOOL,
    RN_JSON_NULL,
    RN_JSON_OBJECT,   /* value spans the braces */
    RN_JSON_ARRAY,
} rn_json_kind_t;

/*
 * Finds the top-level field `name` of the JSON object in json[0..len). On success returns
 * RN_OK with *value / *value_len the raw text of its value (for a string: the bytes between
 * the quotes, still escaped) and *kind. RN_ERR_NOT_FOUND when the object has no such field,
 * RN_ERR_MALFORMED when the text is not an object or breaks off.
 */
rn_err_t rn_json_find_field(const char *json, size_t len, const char *name, const char **value,
                            size_t *value_len, rn_json_kind_t *kind);

/*
 * Decodes the escapes of a JSON string body (as rn_json_find_field returns it) into out
 * (reset first). \uXXXX, surrogate pairs included, becomes UTF-8. RN_ERR_MALFORMED on a bad
 * escape.
 */
rn_err_t rn_json_unescape(const char *s, size_t len, rn_buf_t *out);

#endif
