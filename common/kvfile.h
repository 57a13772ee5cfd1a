/*
 * kvfile.h - config files of "key=value" lines, as every Runnel binary reads (--config FILE).
 * Blank lines and lines starting with '#' are skipped; whitespace around key and value is
 * trimmed. A line without '=' is an error naming the file and line.
 */
#ifndef RN_KVFILE_H
#define RN_KVFILE_H

#include <stddef.h>

#include "err.h"

/*
 * Calls fn(ctx, key, value, line) for every setting in path, in order. fn returns RN_OK to go
 * on or an error to stop (its message should already be in errbuf). Errors: RN_ERR_IO (file
 * unreadable), RN_ERR_MALFORMED (a bad line), or what fn returned; errbuf says
 * "FILE:LINE: problem".
 */
rn_err_t rn_kvfile_read(const char *path,
                        rn_err_t (*fn)(void *ctx, const char *key, const char *value, int line,
                                       char *errbuf, size_t errlen),
                        void *ctx, char *errbuf, size_t errlen);

/* Splits "key=value" in place into trimmed key and value; RN_ERR_MALFORMED without '='. */
rn_err_t rn_kv_split(char *pair, char **key, char **value);

#endif
