/* log.c - leveled logfmt logging to stderr. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static enum mcpgw_log_level min_level = MCPGW_LOG_INFO;
static char component[64] = "mcpgw";

static const char *const level_names[MCPGW_LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error"};

const char *mcpgw_log_level_str(enum mcpgw_log_level l)
{
    return (unsigned)l < MCPGW_LOG_LEVEL_COUNT ? level_names[l] : "?";
}

int mcpgw_log_level_parse(const char *s)
{
    for (int i = 0; i < MCPGW_LOG_LEVEL_COUNT; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void mcpgw_log_set_level(enum mcpgw_log_level l)
{
    min_level = l;
}

void mcpgw_log_set_component(const char *comp)
{
    snprintf(component, sizeof(component), "%s", comp);
}

int mcpgw_log_enabled(enum mcpgw_log_level l)
{
    return l >= min_level;
}

static void emit(enum mcpgw_log_level l, char *msg, const char *kv)
{
    char ts[32];
    struct timeval tv;
    struct tm tm;
    /* Quotes inside the message would break logfmt parsing: make them single quotes. */
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\n')
            *p = *p == '"' ? '\'' : ' ';
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "ts=%s.%03ldZ level=%s comp=\"%s\" msg=\"%s\"%s%s\n", ts,
            (long)tv.tv_usec / 1000, level_names[l], component, msg, kv ? " " : "", kv ? kv : "");
}

void mcpgw_log(enum mcpgw_log_level l, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (l < min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(l, msg, NULL);
}

void mcpgw_log_kv(enum mcpgw_log_level l, const char *msg, const char *kv)
{
    char m[256];
    if (l < min_level)
        return;
    snprintf(m, sizeof(m), "%s", msg);
    emit(l, m, kv);
}
