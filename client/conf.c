/*
 * conf.c - the configuration object: a fixed table of known keys, each with its type, range
 * and default. A value is checked when it is set, so the handles built from a configuration
 * never meet a value they cannot use.
 */
#include "conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum key_type { T_INT, T_BOOL, T_ENUM, T_STR, T_SERVERS } key_type_t;

typedef struct key_def {
    const char *name;
    key_type_t type;
    const char *def;
    int64_t min, max;       /* T_INT */
    const char *choices;    /* T_ENUM: "a|b|c" */
} key_def_t;

#define KIB 1024LL
#define MIB (1024LL * 1024)

static const key_def_t keys[] = {
    {"bootstrap.servers", T_SERVERS, "127.0.0.1:9092", 0, 0, NULL},
    {"client.id", T_STR, "runnel", 0, 0, NULL},
    {"acks", T_ENUM, "all", 0, 0, "0|1|all|-1"},
    {"linger.ms", T_INT, "5", 0, 900000, NULL},
    {"batch.size", T_INT, "65536", 1, 64 * MIB, NULL},
    {"compression.type", T_ENUM, "none", 0, 0, "none|zstd"},
    {"enable.idempotence", T_BOOL, "true", 0, 0, NULL},
    {"max.in.flight", T_INT, "5", 1, 1000, NULL},
    {"retries", T_INT, "2147483647", 0, INT32_MAX, NULL},
    {"retry.backoff.ms", T_INT, "100", 0, 3600000, NULL},
    {"request.timeout.ms", T_INT, "30000", 1, INT32_MAX, NULL},
    {"delivery.timeout.ms", T_INT, "120000", 1, INT32_MAX, NULL},
    {"buffer.memory", T_INT, "33554432", 64 * KIB, 1LL << 40, NULL},
    {"fetch.min.bytes", T_INT, "1", 0, INT32_MAX, NULL},
    {"fetch.max.bytes", T_INT, "52428800", 1, 1024 * MIB, NULL},
    {"max.partition.fetch.bytes", T_INT, "1048576", 1, 1024 * MIB, NULL},
    {"fetch.max.wait.ms", T_INT, "500", 0, 300000, NULL},
    {"auto.offset.reset", T_ENUM, "latest", 0, 0, "earliest|latest|error"},
    {"queued.max.messages.kbytes", T_INT, "65536", 1, 2097151, NULL},
    {"io.busy.poll.us", T_INT, "0", 0, 1000000, NULL},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* Names Kafka users may type for the same thing. */
static const struct {
    const char *alias, *name;
} aliases[] = {
    {"max.in.flight.requests.per.connection", "max.in.flight"},
};

struct rn_conf {
    char *values[N_KEYS]; /* NULL: the default */
};

const char *rn_version(void)
{
    return RUNNEL_VERSION;
}

static int key_index(const char *key)
{
    if (!key)
        return -1;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(key, aliases[i].alias) == 0)
            key = aliases[i].name;
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(key, keys[i].name) == 0)
            return (int)i;
    }
    return -1;
}

rn_conf_t *rn_conf_new(void)
{
    return calloc(1, sizeof(rn_conf_t));
}

rn_conf_t *rn_conf_dup(const rn_conf_t *conf)
{
    rn_conf_t *c = rn_conf_new();
    if (!c || !conf)
        return c;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (conf->values[i] && !(c->values[i] = strdup(conf->values[i]))) {
            rn_conf_free(c);
            return NULL;
        }
    }
    return c;
}

void rn_conf_free(rn_conf_t *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        free(conf->values[i]);
    free(conf);
}

static rn_err_t fail(rn_err_t err, char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rn_err_t fail(rn_err_t err, char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Strict decimal: optional sign, digits, nothing else. */
static bool parse_int(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || s[0] == ' ' || s[0] == '\t' || s[0] == '+')
        return false;
    *out = v;
    return true;
}

static bool choice_ok(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

int rn_conf_parse_servers(const char *list, rn_conf_addr_t *out, int max)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            char entry[300];
            if (len >= sizeof entry)
                return -1;
            memcpy(entry, p, len);
            entry[len] = '\0';
            char *host = entry, *port;
            if (entry[0] == '[') { /* [v6]:port */
                char *close = strchr(entry, ']');
                if (!close || close[1] != ':')
                    return -1;
                *close = '\0';
                host = entry + 1;
                port = close + 2;
            } else {
                char *colon = strrchr(entry, ':');
                if (!colon || strchr(entry, ':') != colon)
                    return -1;
                *colon = '\0';
                port = colon + 1;
            }
            int64_t portnum;
            if (!*host || strlen(host) >= sizeof out->host || !parse_int(port, &portnum) ||
                portnum < 1 || portnum > 65535)
                return -1;
            if (n < max) {
                snprintf(out[n].host, sizeof out[n].host, "%s", host);
                out[n].port = (int)portnum;
            }
            n++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

static rn_err_t check_value(const key_def_t *k, const char *value, char *errbuf, size_t errlen)
{
    int64_t v;
    rn_conf_addr_t addr;
    switch (k->type) {
    case T_INT:
        if (!parse_int(value, &v) || v < k->min || v > k->max)
            return fail(RN_ERR_BAD_CONFIG, errbuf, errlen,
                        "bad value \"%s\" for %s: expected an integer in [%lld, %lld]", value,
                        k->name, (long long)k->min, (long long)k->max);
        return RN_OK;
    case T_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return fail(RN_ERR_BAD_CONFIG, errbuf, errlen,
                        "bad value \"%s\" for %s: expected true or false", value, k->name);
        return RN_OK;
    case T_ENUM:
        if (!choice_ok(k->choices, value))
            return fail(RN_ERR_BAD_CONFIG, errbuf, errlen,
                        "bad value \"%s\" for %s: expected one of %s", value, k->name,
                        k->choices);
        return RN_OK;
    case T_STR:
        if (strlen(value) > 255)
            return fail(RN_ERR_BAD_CONFIG, errbuf, errlen,
                        "bad value for %s: longer than 255 bytes", k->name);
        return RN_OK;
    case T_SERVERS:
        if (rn_conf_parse_servers(value, &addr, 1) <= 0)
            return fail(RN_ERR_BAD_CONFIG, errbuf, errlen,
                        "bad value \"%s\" for %s: expected host:port[,host:port...]", value,
                        k->name);
        return RN_OK;
    }
    return RN_ERR_BAD_CONFIG;
}

rn_err_t rn_conf_set(rn_conf_t *conf, const char *key, const char *value, char *errbuf,
                     size_t errlen)
{
    if (!conf || !key)
        return fail(RN_ERR_INVALID_ARG, errbuf, errlen, "no configuration or key given");
    int i = key_index(key);
    if (i < 0)
        return fail(RN_ERR_UNKNOWN_CONFIG, errbuf, errlen, "unknown configuration key \"%s\"",
                    key);
    char *copy = NULL;
    if (value) { /* NULL puts the default back */
        rn_err_t err = check_value(&keys[i], value, errbuf, errlen);
        if (err != RN_OK)
            return err;
        if (!(copy = strdup(value)))
            return fail(RN_ERR_NOMEM, errbuf, errlen, "out of memory");
    }
    free(conf->values[i]);
    conf->values[i] = copy;
    return RN_OK;
}

rn_err_t rn_conf_set_pair(rn_conf_t *conf, const char *pair, char *errbuf, size_t errlen)
{
    if (!pair)
        return fail(RN_ERR_INVALID_ARG, errbuf, errlen, "no key=value given");
    const char *eq = strchr(pair, '=');
    if (!eq || eq == pair)
        return fail(RN_ERR_BAD_CONFIG, errbuf, errlen, "expected key=value, got \"%s\"", pair);
    char key[128];
    size_t klen = (size_t)(eq - pair);
    if (klen >= sizeof key)
        return fail(RN_ERR_UNKNOWN_CONFIG, errbuf, errlen, "unknown configuration key \"%.*s\"",
                    (int)klen, pair);
    memcpy(key, pair, klen);
    key[klen] = '\0';
    return rn_conf_set(conf, key, eq + 1, errbuf, errlen);
}

const char *rn_conf_get(const rn_conf_t *conf, const char *key)
{
    int i = key_index(key);
    if (i < 0)
        return NULL;
    return conf && conf->values[i] ? conf->values[i] : keys[i].def;
}

const char *rn_conf_str(const rn_conf_t *conf, const char *key)
{
    return rn_conf_get(conf, key);
}

int64_t rn_conf_int(const rn_conf_t *conf, const char *key)
{
    const char *v = rn_conf_get(conf, key);
    if (!v)
        return 0;
    if (strcmp(v, "all") == 0)
        return -1;
    int64_t n = 0;
    parse_int(v, &n);
    return n;
}

bool rn_conf_bool(const rn_conf_t *conf, const char *key)
{
    const char *v = rn_conf_get(conf, key);
    return v && strcmp(v, "true") == 0;
}
