/* log.h - leveled, structured (logfmt) logging to stderr. */
#ifndef MCPGW_COMMON_LOG_H
#define MCPGW_COMMON_LOG_H

enum mcpgw_log_level {
    MCPGW_LOG_DEBUG,
    MCPGW_LOG_INFO,
    MCPGW_LOG_WARN,
    MCPGW_LOG_ERROR,
    MCPGW_LOG_LEVEL_COUNT
};

const char *mcpgw_log_level_str(enum mcpgw_log_level l);
/* Parse "debug"/"info"/"warn"/"error"; returns the level or -1. */
int mcpgw_log_level_parse(const char *s);
void mcpgw_log_set_level(enum mcpgw_log_level l);
/* Every line carries "comp=<component>" (e.g. "node n1"); the string is copied. */
void mcpgw_log_set_component(const char *comp);
int mcpgw_log_enabled(enum mcpgw_log_level l);

/* One line: ts=... level=... comp=... msg="<formatted>" */
void mcpgw_log(enum mcpgw_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line with fields after the message: ts=... level=... comp=... msg="<msg>" <kv>. kv is
 * logfmt the caller built (values quoted, no newline); msg is sanitized as in mcpgw_log. */
void mcpgw_log_kv(enum mcpgw_log_level l, const char *msg, const char *kv);

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (mcpgw_log_enabled(MCPGW_LOG_DEBUG))                                                    \
            mcpgw_log(MCPGW_LOG_DEBUG, __VA_ARGS__);                                               \
    } while (0)
#define log_info(...)  mcpgw_log(MCPGW_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  mcpgw_log(MCPGW_LOG_WARN, __VA_ARGS__)
#define log_error(...) mcpgw_log(MCPGW_LOG_ERROR, __VA_ARGS__)

#endif
