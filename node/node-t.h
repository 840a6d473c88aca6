/* node-t.h - types shared by the node's modules: the node object, in-flight calls. */
#ifndef MCPGW_NODE_NODE_T_H
#define MCPGW_NODE_NODE_T_H

#include "node/config.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;
struct mcpgw_httpd;
struct mcpgw_http_conn;
struct mcpgw_registry;
struct mcpgw_metrics;
struct mcpgw_hist;
struct mcpgw_session;
struct mcpgw_notes;
struct mcpgw_call;
struct mcpgw_store;
struct mcpgw_fanout;
struct mcpgw_gossip;

/* Protocol revisions of the session era, newest first. */
enum mcpgw_proto {
    MCPGW_PROTO_2025_11_25,
    MCPGW_PROTO_2025_06_18,
    MCPGW_PROTO_2025_03_26,
    MCPGW_PROTO_COUNT
};
const char *mcpgw_proto_str(enum mcpgw_proto p);
/* Index of a supported revision, or -1. */
int mcpgw_proto_parse(const char *s, size_t len);

struct mcpgw_node_stats {
    uint64_t *requests;      /* JSON-RPC requests served */
    uint64_t *notifications; /* JSON-RPC notifications received */
    uint64_t *errors;        /* JSON-RPC error responses sent */
    uint64_t *http_rejects;  /* requests refused at the HTTP layer (4xx) */
    uint64_t *sessions_created, *sessions_expired, *sessions_deleted;
    uint64_t *events_sent, *events_replayed, *replay_gaps, *streams_dropped;
    uint64_t *stalls, *sessions_claimed, *sessions_moved, *sessions_lost, *store_errors,
        *retries_answered;
    int64_t *sessions, *streams, *calls_inflight; /* sessions/streams set at scrape time */
    int64_t *store_up;
    int64_t *fanout_queued; /* resource updates not yet delivered to every local subscriber */
    struct mcpgw_hist *latency;
};

struct mcpgw_node {
    struct mcpgw_node_config cfg;
    struct event_base *base;
    struct mcpgw_httpd *httpd;
    struct mcpgw_registry *reg;
    struct mcpgw_metrics *metrics;
    struct mcpgw_node_stats st;
    struct mcpgw_notes *notes;
    struct mcpgw_store *store;
    struct mcpgw_fanout *fanout; /* NULL: updates are delivered at once */
    /* The highest event counter received live (shared store): a replay sent with a claim reads
     * the streams before the session is registered here, and events between the two must be
     * caught up (call.c, mcpgw_session_resume_claimed). */
    uint64_t ev_seen;
    struct event *expiry;
    uint64_t started_ms;
    int draining;
    int resyncing; /* after a stall: session requests wait for the store (503) */
    /* Own sessions (ids with this node's prefix) taken over while this node stalled, learnt from
     * the "moved" notices read during the resync: claimed back once it is over (transport.c). */
    char **reclaim;
    uint32_t nreclaim, reclaim_cap, reclaim_next;
    struct event *reclaim_ev;
    uint64_t last_tick_ms;
    struct event *stall_tick;
    uint64_t drain_started_ms, drain_deadline_ms;
    struct event *drain_timer;
    struct mcpgw_gossip *gossip; /* NULL without --gossip-bind */
    char *tools_json;            /* the full tools array, serialized once */
};

/* Client capabilities remembered per session (bit flags). */
enum {
    MCPGW_CAP_SAMPLING = 1,
    MCPGW_CAP_ELICITATION = 2,
    MCPGW_CAP_ROOTS = 4,
};

/* An in-flight client request (tools/call and friends) that may stream notifications and
 * server-to-client requests before its response. Owned by its session's call list; freed by
 * mcpgw_call_result / mcpgw_call_error / cancellation / session teardown. */
typedef void (*mcpgw_call_reply_fn)(struct mcpgw_call *c, json_object *result, json_object *error);
typedef void (*mcpgw_call_step_fn)(struct mcpgw_call *c);

struct mcpgw_call {
    struct mcpgw_node *node;
    struct mcpgw_session *s;
    struct mcpgw_call *next, *prev;
    json_object *id;              /* request id (owned reference) */
    struct mcpgw_http_conn *conn; /* where the response goes; NULL while the client is away */
    json_object *progress_token;  /* owned reference, or NULL */
    uint32_t stream;              /* response stream number once SSE started, else 0 */
    uint8_t sse;                  /* the response is an SSE stream */
    int64_t out_id;               /* pending server-to-client request id, or -1 */
    mcpgw_call_reply_fn on_reply;
    struct event *step_timer; /* client-request timeout, or a tool's delay between steps */
    struct event *deadline;   /* tool timeout */
    mcpgw_call_step_fn step;
    int step_no; /* tool-private progress counter */
    void *state; /* tool-private; freed with free() */
    uint64_t started_us;
    char *rid;         /* request id as JSON text, when the result must be recorded for retries */
    uint8_t busy;      /* store operations in flight that will call back with this call */
    uint8_t aborted;   /* dropped while busy: freed when the last store operation returns */
    uint8_t finishing; /* a result or error is being sent: later ones are ignored */
};

#endif
