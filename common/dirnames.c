#include "dirnames.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

bool rn_offset_name_parse(const char *name, const char *suffix, uint64_t *offset)
{
    size_t len = strlen(name), slen = strlen(suffix);
    if (len != RN_OFFSET_NAME_DIGITS + slen || strcmp(name + RN_OFFSET_NAME_DIGITS, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < RN_OFFSET_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *offset = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

rn_err_t rn_dir_offsets(const char *dir, const char *suffix, uint64_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return RN_ERR_IO;
    size_t cap = 16, count = 0;
    uint64_t *v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        uint64_t off;
        if (!rn_offset_name_parse(e->d_name, suffix, &off))
            continue;
        if (count == cap) {
            uint64_t *p = realloc(v, (cap *= 2) * sizeof *v);
            if (!p) {
                free(v);
                v = NULL;
                break;
            }
            v = p;
        }
        v[count++] = off;
    }
    closedir(d);
    if (!v)
        return RN_ERR_NOMEM;
    qsort(v, count, sizeof *v, cmp_u64);
    *out = v;
    *n = count;
    return RN_OK;
}
