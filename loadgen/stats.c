/* stats.c - names of the load generator's counters and gauges. */
#include "loadgen/stats.h"

static const char *const counter_names[LG_C_COUNT] = {
    "sessions_attempted",  "sessions_established", "sessions_failed",  "sessions_lost",
    "requests_ok",         "requests_failed",      "requests_retried", "requests_timeout",
    "requests_http_error", "requests_rpc_error",   "requests_unsent",  "streams_opened",
    "streams_dropped",     "streams_resumed",      "streams_failed",   "notifications_received",
    "writes_ok",           "writes_failed",        "bytes_out"};

static const char *const gauge_names[LG_G_COUNT] = {"sessions_open", "streams_open", "connections",
                                                    "inflight", "backlog"};

const char *mcpgw_lg_counter_str(enum mcpgw_lg_counter c)
{
    return (unsigned)c < LG_C_COUNT ? counter_names[c] : "?";
}

const char *mcpgw_lg_gauge_str(enum mcpgw_lg_gauge g)
{
    return (unsigned)g < LG_G_COUNT ? gauge_names[g] : "?";
}
