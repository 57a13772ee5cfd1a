#include "kvfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

rn_err_t rn_kv_split(char *pair, char **key, char **value)
{
    char *eq = strchr(pair, '=');
    if (!eq)
        return RN_ERR_MALFORMED;
    *eq = '\0';
    *key = trim(pair);
    *value = trim(eq + 1);
    return **key ? RN_OK : RN_ERR_MALFORMED;
}

rn_err_t rn_kvfile_read(const char *path,
                        rn_err_t (*fn)(void *ctx, const char *key, const char *value, int line,
                                       char *errbuf, size_t errlen),
                        void *ctx, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errbuf, errlen, "%s: cannot open config file: %s", path, strerror(errno));
        return RN_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    rn_err_t err = RN_OK;
    while (err == RN_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *key, *value;
        if (rn_kv_split(s, &key, &value) != RN_OK) {
            snprintf(errbuf, errlen, "%s:%d: expected key=value, got '%s'", path, lineno, s);
            err = RN_ERR_MALFORMED;
            break;
        }
        char inner[512] = "";
        err = fn(ctx, key, value, lineno, inner, sizeof inner);
        if (err != RN_OK)
            snprintf(errbuf, errlen, "%s:%d: %s", path, lineno, inner[0] ? inner : rn_err_str(err));
    }
    free(line);
    fclose(f);
    return err;
}
