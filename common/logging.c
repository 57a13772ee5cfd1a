#include "logging.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The one piece of process-wide state in common/: the level, set from main(). */
static _Atomic int log_level = RN_LVL_INFO;

void rn_logging_set_level(rn_level_t level)
{
    atomic_store(&log_level, (int)level);
}

int rn_logging_parse_level(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

static _Atomic int log_format = RN_LOG_TEXT;

void rn_logging_set_format(rn_log_format_t format)
{
    atomic_store(&log_format, (int)format);
}

int rn_logging_parse_format(const char *s)
{
    if (strcmp(s, "text") == 0)
        return RN_LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return RN_LOG_JSON;
    return -1;
}

/* s as the inside of a JSON string, cut to fit out. */
static void json_escape(const char *s, char *out, size_t len)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && w + 7 < len; p++) {
        if (*p == '"' || *p == '\\') {
            out[w++] = '\\';
            out[w++] = (char)*p;
        } else if (*p < 0x20) {
            w += (size_t)snprintf(out + w, len - w, "\\u%04x", *p);
        } else {
            out[w++] = (char)*p;
        }
    }
    out[w] = '\0';
}

static void vlog(rn_level_t level, const char *component, const char *request_id,
                 const char *fmt, va_list ap)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)level < atomic_load(&log_level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64], msg[1024];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (atomic_load(&log_format) == RN_LOG_JSON) {
        char emsg[2048], ecomp[128], ereq[256];
        json_escape(msg, emsg, sizeof emsg);
        json_escape(component, ecomp, sizeof ecomp);
        json_escape(request_id ? request_id : "", ereq, sizeof ereq);
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\"%s%s%s,\"msg\":\"%s\"}\n",
                when, names[level], ecomp, request_id ? ",\"request_id\":\"" : "", ereq,
                request_id ? "\"" : "", emsg);
    } else if (request_id) {
        fprintf(stderr, "%s %s [%s] [req %s] %s\n", when, tags[level], component, request_id, msg);
    } else {
        fprintf(stderr, "%s %s [%s] %s\n", when, tags[level], component, msg);
    }
}

void rn_logf(rn_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, NULL, fmt, ap);
    va_end(ap);
}

void rn_logf_req(rn_level_t level, const char *component, const char *request_id,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, component, request_id, fmt, ap);
    va_end(ap);
}
