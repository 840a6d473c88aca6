/* session.h - one MCP session (session era): lifecycle, GET stream, event log, in-flight calls. */
#ifndef MCPGW_NODE_SESSION_H
#define MCPGW_NODE_SESSION_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct mcpgw_http_conn;
struct mcpgw_call;

#define MCPGW_SESSION_ID_MAX 64

/* Client capabilities remembered per session (bit flags). */
enum {
    MCPGW_CAP_SAMPLING = 1,
    MCPGW_CAP_ELICITATION = 2,
    MCPGW_CAP_ROOTS = 4,
};

enum mcpgw_session_state {
    MCPGW_SESSION_INITIALIZING, /* initialize answered, notifications/initialized not yet seen */
    MCPGW_SESSION_READY,
    MCPGW_SESSION_STATE_COUNT
};
const char *mcpgw_session_state_str(enum mcpgw_session_state s);

/* One event kept for Last-Event-ID replay. stream 0 is the session's GET stream; n > 0 is the
 * response stream of one POST request. */
struct mcpgw_event {
    uint64_t seq;
    uint32_t stream;
    uint32_t len;
    char *data; /* the JSON-RPC message */
};

/* Bounded ring of recent events, allocated on first use. */
struct mcpgw_evlog {
    struct mcpgw_event *ev;
    uint32_t cap, head, count;
    size_t bytes;
    uint64_t evicted_max; /* highest sequence number evicted so far */
};

struct mcpgw_session {
    char id[MCPGW_SESSION_ID_MAX];
    uint64_t hash;
    struct mcpgw_session *hnext;                 /* registry shard chain */
    struct mcpgw_session *idle_prev, *idle_next; /* registry expiry list, oldest first */
    uint64_t last_active_ms;
    uint8_t state;
    uint8_t proto;    /* index into the node's protocol version table */
    int8_t log_level; /* minimum level of notifications/message; -1: not set */
    uint8_t closing;
    /* A request of the 2026-07-28 era: a session of one call, never registered or stored; it
     * carries that call's log level and is freed with the call (node/era26.c). */
    uint8_t stateless;
    uint32_t next_stream; /* response-stream numbers for POSTs that answer with SSE */
    uint64_t next_seq;    /* event sequence, unique within the session */
    struct mcpgw_http_conn *get_stream;
    char *client; /* compact JSON: {"clientInfo":...,"capabilities":...}; owned */
    char **subs;  /* subscribed resource URIs; owned */
    uint32_t nsubs, subs_cap;
    struct mcpgw_evlog *log;
    struct mcpgw_call *calls; /* in-flight requests of this session */
    uint8_t client_caps;      /* MCPGW_CAP_* */
    uint8_t resuming;         /* replays (or the gap hold) in flight: live events wait in held */
    uint8_t gap_hold;         /* held until a catch-up after a pub/sub gap (mcpgw_stream_hold) */
    /* Shared store only: ownership epoch, TTL refresh time, and the id of the last GET-stream
     * event written ("<ms>-<seq>" of the Redis stream), so live events are never written twice. */
    uint64_t epoch;
    uint64_t ttl_refreshed_ms;
    uint64_t last_ev_ms, last_ev_seq;
    struct mcpgw_held_event *held; /* live events that arrived during a replay, oldest first */
};

/* A live event held back while a replay is in flight. */
struct mcpgw_held_event {
    struct mcpgw_held_event *next;
    uint64_t ms, seq;
    size_t len;
    char data[];
};

/* Parse a Redis stream entry id "<ms>-<seq>" (the shared store's event ids: "<counter>-0"). */
int mcpgw_session_cluster_id_parse(const char *s, size_t len, uint64_t *ms, uint64_t *seq);

/* Event log limits (per session). */
#define MCPGW_EVLOG_MAX_EVENTS 256
#define MCPGW_EVLOG_MAX_BYTES  (256 * 1024)

/* The longest resource URI a session may subscribe to. */
#define MCPGW_URI_MAX 1024

/* Append an event (data is copied). Returns the sequence number given to it. */
uint64_t mcpgw_session_log(struct mcpgw_session *s, uint32_t stream, const char *data, size_t len);
/* Reserve a sequence number without storing anything (priming events). */
uint64_t mcpgw_session_next_seq(struct mcpgw_session *s);
/* Visit the logged events of one stream with seq > after, oldest first. Returns -1 when events
 * after `after` may have been evicted (a possible gap; what is kept is still visited), else the
 * number visited. */
int mcpgw_session_replay(struct mcpgw_session *s, uint32_t stream, uint64_t after,
                         void (*visit)(void *arg, const struct mcpgw_event *ev), void *arg);

/* Format an SSE event id "<stream>.<seq>" / parse it back. */
void mcpgw_session_event_id_format(char *out, size_t outlen, uint32_t stream, uint64_t seq);
int mcpgw_session_event_id_parse(const char *s, size_t len, uint32_t *stream, uint64_t *seq);

int mcpgw_session_subscribed(const struct mcpgw_session *s, const char *uri);
/* Add/remove a URI in the session's own list. Return 1 if it changed, 0 if not. */
int mcpgw_session_sub_add(struct mcpgw_session *s, const char *uri);
int mcpgw_session_sub_del(struct mcpgw_session *s, const char *uri);

/* Free what the session owns (not the GET stream connection or calls: the engine closes those
 * first) and the session itself. */
void mcpgw_session_free(struct mcpgw_session *s);

#endif
