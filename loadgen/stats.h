/* stats.h - what workers count: event counters (added up), gauges (summed over workers). */
#ifndef MCPGW_LOADGEN_STATS_H
#define MCPGW_LOADGEN_STATS_H

/* Counters are sent as per-second deltas; their names are the JSON report's keys. */
enum mcpgw_lg_counter {
    LG_C_SESS_ATTEMPTED,   /* initialize sent */
    LG_C_SESS_ESTABLISHED, /* every setup step done */
    LG_C_SESS_FAILED,      /* a setup step failed after its retries */
    LG_C_SESS_LOST,        /* 404 for an established session */
    LG_C_REQ_OK,           /* echo calls answered with a result */
    LG_C_REQ_FAILED,       /* echo calls that failed (any reason, after retries) */
    LG_C_REQ_RETRIED,      /* re-sends after a connection failure (any request) */
    LG_C_REQ_TIMEOUT,      /* echo calls that timed out (part of failed) */
    LG_C_REQ_HTTP_ERROR,   /* echo calls answered with a non-200 status (part of failed) */
    LG_C_REQ_RPC_ERROR,    /* echo calls answered with a JSON-RPC or tool error (part of failed) */
    LG_C_REQ_UNSENT,       /* open loop: calls still due but unsent when the load phase ended */
    LG_C_STREAM_OPENED,    /* GET streams that got their 200 head (first time) */
    LG_C_STREAM_DROPPED,   /* GET streams that ended without the load generator asking */
    LG_C_STREAM_RESUMED,   /* reconnections with Last-Event-ID that got a 200 head */
    LG_C_STREAM_FAILED,    /* streams given up after the reconnect window */
    LG_C_NOTIF_RECEIVED,   /* notifications/resources/updated events received (raw) */
    LG_C_WRITE_OK,         /* notes_write calls answered */
    LG_C_WRITE_FAILED,     /* notes_write calls failed */
    LG_C_BYTES_OUT,        /* request bytes queued for sending */
    LG_C_COUNT
};
const char *mcpgw_lg_counter_str(enum mcpgw_lg_counter c);

/* Gauges are a worker's current value; the run's value is the sum over workers. */
enum mcpgw_lg_gauge {
    LG_G_SESSIONS_OPEN, /* established and not lost */
    LG_G_STREAMS_OPEN,  /* GET streams with their head received */
    LG_G_CONNS,         /* request connections (the pool) */
    LG_G_INFLIGHT,      /* requests sent and not answered */
    LG_G_BACKLOG,       /* open loop: calls due but not yet sent (client-side queue) */
    LG_G_COUNT
};
const char *mcpgw_lg_gauge_str(enum mcpgw_lg_gauge g);

#endif
