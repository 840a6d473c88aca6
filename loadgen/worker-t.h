/* worker-t.h - types shared by a worker's modules (worker.c, session.c, pool.c). */
#ifndef MCPGW_LOADGEN_WORKER_T_H
#define MCPGW_LOADGEN_WORKER_T_H

#include "loadgen/opts.h"
#include "loadgen/stats.h"
#include "loadgen/wire.h"

#include <stdint.h>

struct event;
struct event_base;
struct evbuffer;
struct mcpgw_client;
struct lg_conn_node;
struct mcpgw_lathist;
struct mcpgw_sse_parser;

enum lg_req_kind {
    LG_REQ_INIT,        /* initialize */
    LG_REQ_INITIALIZED, /* notifications/initialized */
    LG_REQ_SUBSCRIBE,   /* resources/subscribe */
    LG_REQ_ECHO,        /* tools/call echo: the measured load */
    LG_REQ_WRITE,       /* tools/call notes_write */
    LG_REQ_DELETE,      /* DELETE at the end */
    LG_REQ_KIND_COUNT
};

/* One request, from creation to its final outcome (retries reuse it). Owned by the pool while
 * queued or in flight; freed by the worker's response handler. */
struct lg_req {
    struct lg_session *s;
    struct lg_req *next;  /* pool queue */
    uint64_t intended_us; /* latency is measured from here (open loop: the scheduled time) */
    uint64_t id;          /* JSON-RPC id */
    uint8_t kind;
    uint8_t tries; /* sends so far */
};

enum lg_sess_state {
    LG_SS_INIT,
    LG_SS_INITIALIZED,
    LG_SS_STREAM,
    LG_SS_SUBSCRIBE,
    LG_SS_ESTABLISHED,
    LG_SS_FAILED,
    LG_SS_LOST,
    LG_SS_STATE_COUNT
};

/* One MCP session. Lives in the worker's session array for the whole run. */
struct lg_session {
    char *sid;                    /* Mcp-Session-Id, malloc'd */
    struct mcpgw_client *stream;  /* the held GET stream, or NULL */
    struct mcpgw_sse_parser *sse; /* parser of the current stream */
    struct event *retry_ev;       /* pending stream reconnection */
    char *last_eid;               /* last SSE event id seen, malloc'd */
    uint64_t setup_start_us;      /* when the setup was due */
    uint64_t stream_down_us;      /* when the stream broke; 0 while up */
    /* Notification versions (io.mcpgw/version): highest seen, the 64 below it as a bitmap. */
    uint64_t nv_last, nv_window, nv_first;
    uint32_t nv_uniq, nv_dups;
    /* Drill accounting: the drill whose fault this session felt (index + 1), and when it
     * succeeded again after its latest failure (0: not yet). */
    uint64_t drill_ok_us;
    /* A failure seen before this worker heard of the fault that caused it (the fault's notice
     * and the broken stream race), and the first success after it: attributed on the notice. */
    uint64_t early_fail_us, early_ok_us;
    uint32_t alive_pos; /* index in worker->alive while established */
    uint16_t node;      /* index in worker->nodes (session id prefix) */
    uint8_t state;
    uint8_t drill;
    uint8_t stream_attempts;
    uint8_t stream_up : 1, stream_ever : 1, writer : 1, closing : 1;
    /* Its node was killed or stopped by a drill while its stream was up: served again only once
     * the stream is back, resumed by us or carried on by the balancer (its seam comment). */
    uint8_t move_wait : 1;
};

/* A request connection of the pool. */
struct lg_conn {
    struct lg_worker *w;
    struct mcpgw_client *c;
    struct lg_req *req;   /* in flight, or NULL */
    struct lg_conn *next; /* idle stack */
    uint64_t sent_us;
};

struct lg_node_count {
    char name[32];
    uint64_t established, alive;
};

enum lg_phase { LG_PH_RAMP, LG_PH_DRIVE, LG_PH_STOPPED, LG_PH_FINISHING, LG_PH_COUNT };

struct lg_worker {
    const struct mcpgw_lg_config *cfg;
    uint32_t idx;
    struct event_base *base;
    int ctrl_fd;
    struct evbuffer *ctrl_in;
    struct event *ctrl_ev;
    uint64_t t0_us;   /* run start, shared by all workers (seconds are counted from it) */
    uint64_t ramp_t0; /* when this worker began its ramp */
    uint8_t phase;

    /* Sessions: my share, plus the writer's own session on worker 0. */
    uint32_t nsessions, nall;
    struct lg_session *sessions;
    struct lg_session **alive;
    uint32_t nalive, rr;
    uint32_t started, settled;
    double ramp_rate;
    struct event *ramp_ev;
    int ready_sent;

    /* Source addresses of this worker (indexes into cfg->src). */
    uint32_t *srcs, nsrc, src_rr;

    /* Request pool. */
    struct lg_conn *idle;
    uint32_t nconns, max_conns, inflight;
    struct lg_req *qhead, *qtail;
    uint32_t nqueued;

    /* Load. */
    uint64_t go_us;
    double rate;       /* my echo calls per second (open loop) */
    uint64_t issued;   /* open loop: calls sent (or being sent) so far */
    uint32_t closed_n; /* closed loop: calls kept in flight */
    struct event *pace_ev;
    uint64_t next_id;
    char *echo_prefix; /* request body up to the id */
    char *echo_suffix; /* after the id: method, params with the payload */
    size_t echo_prefix_len, echo_suffix_len;

    /* Notes writer (worker 0). */
    struct lg_session *writer;
    struct event *writer_ev;
    double writer_rate;
    uint64_t writer_sent, writer_first, writer_last;
    char note_uri[96], note_uri_esc[104]; /* quoted; the second with '/' escaped as '\/' */

    /* Counters since the last tick, histograms since the last tick. */
    uint64_t c[LG_C_COUNT];
    uint32_t streams_open;
    struct mcpgw_lathist *lat, *setup;
    uint32_t sec;
    struct event *tick_ev;

    struct lg_node_count nodes[MCPGW_WIRE_MAX_NODES];
    uint32_t nnodes;

    /* Drills: the fault in effect (index + 1; 0 none) and each one's error window. */
    uint8_t drill;
    uint64_t fault_us[MCPGW_WIRE_MAX_DRILLS];
    uint64_t err_first_us[MCPGW_WIRE_MAX_DRILLS], err_last_us[MCPGW_WIRE_MAX_DRILLS];

    uint32_t deletes_pending;
    struct event *exit_ev;

    /* Once file-level state of worker.c, session.c and pool.c: one worker's. */
    uint32_t echo_out; /* echo calls outstanding (queued, in flight or waiting for a retry) */
    int exit_code;     /* the worker's exit status: 2 when the parent is gone or garbled */
    uint64_t setup_err_log_ms; /* session and stream errors are logged at most once a second */
    uint64_t backoff_rng;      /* stream reconnection jitter (common/rand.h) */
    char *rpc_found;           /* the JSON-RPC answer found in an SSE response body (session.c) */
    size_t rpc_found_len;
    struct lg_conn_node *all_conns; /* every request connection, to close them all (pool.c) */
    struct evbuffer *pool_scratch;  /* one request being built (pool.c) */
    uint64_t pool_err_log_ms;       /* connection errors are logged at most once a second */
};

#endif
