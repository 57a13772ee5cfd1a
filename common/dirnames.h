/*
 * dirnames.h - files named by a 20-digit, zero-padded offset ("00000000000000012345.log"),
 * as segments and producer-state snapshots are.
 */
#ifndef RN_DIRNAMES_H
#define RN_DIRNAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RN_OFFSET_NAME_DIGITS 20

/* True with *offset when name is exactly 20 digits followed by suffix. */
bool rn_offset_name_parse(const char *name, const char *suffix, uint64_t *offset);

/*
 * The offsets of every file in dir named "<20 digits><suffix>", ascending; free(*out).
 * RN_ERR_IO when dir cannot be read, RN_ERR_NOMEM.
 */
rn_err_t rn_dir_offsets(const char *dir, const char *suffix, uint64_t **out, size_t *n);

#endif
