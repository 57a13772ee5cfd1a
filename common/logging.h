/*
 * logging.h - diagnostics on stderr: "2026-11-25T10:00:00.123Z INFO  [log] message".
 *
 * One process-wide level (set once at start-up from a flag); writes are one fprintf each,
 * so lines from threads do not interleave.
 */
#ifndef RN_LOGGING_H
#define RN_LOGGING_H

typedef enum rn_level { RN_LVL_DEBUG, RN_LVL_INFO, RN_LVL_WARN, RN_LVL_ERROR } rn_level_t;

void rn_logging_set_level(rn_level_t level);
/* Parses "debug|info|warn|error"; returns -1 on anything else. */
int rn_logging_parse_level(const char *s);
void rn_logf(rn_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RN_DEBUG(comp, ...) rn_logf(RN_LVL_DEBUG, comp, __VA_ARGS__)
#define RN_INFO(comp, ...) rn_logf(RN_LVL_INFO, comp, __VA_ARGS__)
#define RN_WARN(comp, ...) rn_logf(RN_LVL_WARN, comp, __VA_ARGS__)
#define RN_ERROR(comp, ...) rn_logf(RN_LVL_ERROR, comp, __VA_ARGS__)

#endif
