/*
 * conf.h - typed reads of an rn_conf_t, for the library's own modules.
 *
 * The public half (rn_conf_new/set/get) is in runnel.h. Values are validated when set, so
 * these accessors never fail: a key that was never set yields its documented default.
 */
#ifndef RN_CLIENT_CONF_H
#define RN_CLIENT_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "runnel/runnel.h"

/* Integer keys (acks reads as 0, 1 or -1; the rest as their number). Unknown key: 0. */
int64_t rn_conf_int(const rn_conf_t *conf, const char *key);
bool rn_conf_bool(const rn_conf_t *conf, const char *key);
/* String keys; never NULL for a known key. */
const char *rn_conf_str(const rn_conf_t *conf, const char *key);

/* One host:port of bootstrap.servers. */
typedef struct rn_conf_addr {
    char host[256];
    int port;
} rn_conf_addr_t;

/*
 * Splits a "host:port[,host:port…]" list ("[::1]:9092" for IPv6) into out[0..max); returns the
 * number of entries, or -1 when an entry is malformed. Empty entries are skipped.
 */
int rn_conf_parse_servers(const char *list, rn_conf_addr_t *out, int max);

#endif
