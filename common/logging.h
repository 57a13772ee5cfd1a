/*
 * logging.h - diagnostics on stderr, one line each, in one of two formats (--log-format):
 *   text: 2026-11-25T10:00:00.123Z INFO  [log] message
 *   json: {"ts":"2026-11-25T10:00:00.123Z","level":"info","component":"log","msg":"message"}
 * A line about one request carries its id (the wire's correlation id, and the client id when
 * known): " [req 17 client-a]" before the message in text, "request_id" in JSON.
 *
 * One process-wide level and format (set once at start-up from flags); writes are one
 * fprintf each, so lines from threads do not interleave.
 */
#ifndef RN_LOGGING_H
#define RN_LOGGING_H

typedef enum rn_level { RN_LVL_DEBUG, RN_LVL_INFO, RN_LVL_WARN, RN_LVL_ERROR } rn_level_t;

void rn_logging_set_level(rn_level_t level);
/* Parses "debug|info|warn|error"; returns -1 on anything else. */
int rn_logging_parse_level(const char *s);
typedef enum rn_log_format { RN_LOG_TEXT, RN_LOG_JSON } rn_log_format_t;

void rn_logging_set_format(rn_log_format_t format);
/* Parses "text|json"; returns -1 on anything else. */
int rn_logging_parse_format(const char *s);

void rn_logf(rn_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a line about one request; request_id may be NULL. */
void rn_logf_req(rn_level_t level, const char *component, const char *request_id,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define RN_DEBUG(comp, ...) rn_logf(RN_LVL_DEBUG, comp, __VA_ARGS__)
#define RN_INFO(comp, ...) rn_logf(RN_LVL_INFO, comp, __VA_ARGS__)
#define RN_WARN(comp, ...) rn_logf(RN_LVL_WARN, comp, __VA_ARGS__)
#define RN_ERROR(comp, ...) rn_logf(RN_LVL_ERROR, comp, __VA_ARGS__)

#endif
