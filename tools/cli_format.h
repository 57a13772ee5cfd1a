/*
 * cli_format.h - how `runnel consume` writes a record: the value alone (default), key and
 * value around a delimiter (-K), a JSON envelope (-J) or a kcat-style format string (-f).
 */
#ifndef RN_TOOLS_CLI_FORMAT_H
#define RN_TOOLS_CLI_FORMAT_H

#include <stdbool.h>
#include <stdio.h>

#include "runnel/runnel.h"

typedef struct cli_format cli_format_t;

/*
 * A compiled -f string. Conversions: %t topic, %p partition, %o offset, %k key, %s value,
 * %T timestamp (ms), %h headers (k=v,k=v), %K key length, %S value length, %% a '%'.
 * Escapes: \n \r \t \\ \0. NULL with a message in errbuf on an unknown conversion.
 */
cli_format_t *cli_format_compile(const char *spec, char *errbuf, size_t errlen);
/* The default output: the value and a newline, or key DELIM value when key_delim is set. */
cli_format_t *cli_format_plain(const char *key_delim);
/* The -J envelope, one JSON object per line. */
cli_format_t *cli_format_json(void);
void cli_format_free(cli_format_t *f);

/* Writes one record; false on a write error (errno set). */
bool cli_format_write(const cli_format_t *f, FILE *out, const rn_record_view_t *r);

#endif
