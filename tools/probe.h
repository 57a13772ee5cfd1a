/*
 * probe.h - "is anything listening there?" for the tools: a plain TCP connect to each
 * bootstrap address, so an unreachable broker fails in milliseconds with the precise reason
 * ("connection refused") rather than after a client timeout.
 */
#ifndef RN_TOOLS_PROBE_H
#define RN_TOOLS_PROBE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Splits "host:port" ("[::1]:9092" too) into host and port; false when the shape is wrong or
 * the port is not 1..65535.
 */
bool rn_probe_split_addr(const char *addr, char *host, size_t host_len, char *port,
                         size_t port_len);

/*
 * Connects to each address of the comma-separated list in turn (timeout_ms each) and closes
 * the connection. True as soon as one accepts. Otherwise false, with "addr: reason; addr:
 * reason" in why.
 */
bool rn_probe_brokers(const char *list, int timeout_ms, char *why, size_t why_len);

#endif
