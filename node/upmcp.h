/* upmcp.h - one MCP client session to an upstream server over Streamable HTTP (revisions
 * 2025-03-26 to 2025-11-25): initialize or adopt, requests answered in JSON or on an event stream,
 * notifications and responses, the GET stream with Last-Event-ID, DELETE on close. */
#ifndef MCPGW_NODE_UPMCP_H
#define MCPGW_NODE_UPMCP_H

#include "common/jsonrpc.h"

#include <stddef.h>

struct mcpgw_hc;
struct mcpgw_upcred_cfg;
struct mcpgw_upmcp;
struct mcpgw_upmcp_call;

enum mcpgw_upmcp_err {
    MCPGW_UPMCP_OK,
    MCPGW_UPMCP_E_TRANSPORT, /* connection refused/reset, TLS: the upstream was not reached or cut
                              */
    MCPGW_UPMCP_E_TIMEOUT,  /* no answer within the call's timeout (notifications/cancelled sent) */
    MCPGW_UPMCP_E_HTTP,     /* an HTTP status that is not an answer (4xx/5xx but a session 404) */
    MCPGW_UPMCP_E_GONE,     /* 404 on a request carrying the session id: re-initialize */
    MCPGW_UPMCP_E_TOO_BIG,  /* a message over the size cap */
    MCPGW_UPMCP_E_BAD_JSON, /* not JSON, or not a JSON-RPC message */
    MCPGW_UPMCP_E_BAD_ID,   /* a response whose id is not the request's */
    MCPGW_UPMCP_E_PROTOCOL, /* anything else the MCP transport rules forbid (202 for a request,
                             * a stream that ended without the answer, unknown version) */
    MCPGW_UPMCP_E_CLOSED,   /* the session was closed or freed while the call was pending */
    MCPGW_UPMCP_E_AUTH,     /* no access token for the upstream (oauth: node/upcred.h) */
    MCPGW_UPMCP_E_COUNT
};
const char *mcpgw_upmcp_err_str(enum mcpgw_upmcp_err e);

#define MCPGW_UPMCP_MAX_MSG (16u << 20)

/* Which revision to speak (docs/federation.md, "Bridging"). With 2026-07-28 the session-era
 * interface below stays the same: "initialize" is server/discover, every request carries the
 * revision's _meta and headers, an input_required result becomes server-to-client requests on
 * the call's on_message (answered with mcpgw_upmcp_send, as today) and a retry, the "GET stream"
 * is a subscriptions/listen stream, and resources/subscribe and unsubscribe change its filter. */
enum mcpgw_upmcp_era {
    MCPGW_UPMCP_ERA_SESSION, /* initialize, Mcp-Session-Id (2025-03-26 to 2025-11-25) */
    MCPGW_UPMCP_ERA_2026,    /* 2026-07-28 only */
    MCPGW_UPMCP_ERA_AUTO,    /* server/discover; initialize when the upstream refuses it */
    MCPGW_UPMCP_ERA_COUNT
};

struct mcpgw_upmcp_cfg {
    const char *name;           /* for logs and error messages (copied) */
    const char *url;            /* the upstream's MCP endpoint (copied) */
    const char *const *headers; /* extra "Name: value" headers (auth), NULL-terminated; copied */
    long timeout_ms;            /* per request; 0 = 60 s */
    size_t max_msg;             /* 0 = MCPGW_UPMCP_MAX_MSG */
    int flags;                  /* MCPGW_HC_* (h2c) */
    /* OAuth client credentials (copied; NULL: none): every exchange carries the upstream's own
     * access token, fetched before the first one; an exchange answered 401 gets a new token and
     * is sent again, once (a 401 means the upstream did not take it). */
    const struct mcpgw_upcred_cfg *oauth;
    enum mcpgw_upmcp_era era; /* 0: the session era */
};

/* Session-level callbacks (all optional). */
struct mcpgw_upmcp_cbs {
    /* initialize finished (err 0: the session is ready), or failed. */
    void (*on_ready)(void *arg, enum mcpgw_upmcp_err err, const char *why);
    /* A message on the GET stream, with its SSE event id (NULL when the upstream gives none):
     * the owner records the last one for a later mcpgw_upmcp_listen. m is borrowed. */
    void (*on_message)(void *arg, const char *event_id, const struct mcpgw_jsonrpc_msg *m);
    /* The upstream no longer knows this session (404 on a request with its id). Fired once,
     * before the failing call's own callback. */
    void (*on_gone)(void *arg);
};

/* Per-call callbacks. */
struct mcpgw_upmcp_call_cbs {
    /* A notification or server-to-client request that came on this request's event stream before
     * its answer (progress, logging, sampling...). Optional; m is borrowed. */
    void (*on_message)(void *arg, const char *event_id, const struct mcpgw_jsonrpc_msg *m);
    /* The end of the call: err 0 with m the response (a result or a JSON-RPC error, borrowed), or
     * an error with a sentence naming the upstream (m NULL). Fires exactly once unless the call
     * is cancelled; the call is freed after it returns. */
    void (*on_reply)(void *arg, enum mcpgw_upmcp_err err, const char *why,
                     const struct mcpgw_jsonrpc_msg *m);
    /* Optional: fires instead of on_reply when the answer is a plain result that can be passed
     * on without a parse (docs/federation.md, "Answers passed through"): the session era, a
     * message of exactly "jsonrpc":"2.0", the call's own id and an object "result", strictly
     * valid JSON (common/jscan.h). result is that object's text as the upstream wrote it,
     * borrowed for the callback. Every other answer and every failure still goes to on_reply,
     * with the same errors as without this callback. */
    void (*on_result_raw)(void *arg, const char *result, size_t len);
};

/* hc is borrowed and must outlive the session. Returns the session, not yet initialized. */
struct mcpgw_upmcp *mcpgw_upmcp_new(struct mcpgw_hc *hc, const struct mcpgw_upmcp_cfg *cfg,
                                    const struct mcpgw_upmcp_cbs *cbs, void *arg);
/* A reload changed the upstream's headers or timeout (cfg's url, name and flags are ignored:
 * another endpoint is another session). The next request uses them; copied. */
void mcpgw_upmcp_set_cfg(struct mcpgw_upmcp *u, const struct mcpgw_upmcp_cfg *cfg);
/* Cancels every call and the GET stream, without callbacks and without telling the upstream. */
void mcpgw_upmcp_free(struct mcpgw_upmcp *u);
/* Fails pending calls with E_CLOSED, sends DELETE for the session (if any), then frees u once
 * the DELETE is answered (or failed); done (optional) fires then. */
void mcpgw_upmcp_close(struct mcpgw_upmcp *u, void (*done)(void *arg), void *arg);

/* Sends initialize (the newest revision we speak; the upstream may answer an older one we also
 * speak) and notifications/initialized; on_ready fires when done. With the 2026-07-28 era it
 * sends server/discover instead (auto: then initialize if discover is refused), and keeps the
 * capabilities for every request's _meta. client_capabilities is taken (NULL = {}). Returns 0,
 * or -1 when a session is already set. */
int mcpgw_upmcp_initialize(struct mcpgw_upmcp *u, json_object *client_capabilities);
/* Continues an existing upstream session (one that moved here from another node): no
 * initialize. version must be one we speak. Returns 0, or -1 with nothing changed. */
int mcpgw_upmcp_adopt(struct mcpgw_upmcp *u, const char *session_id, const char *version);

/* The upstream's Mcp-Session-Id (NULL for a sessionless server), negotiated revision, and the
 * initialize result (server capabilities, info; NULL after adopt), all borrowed. */
const char *mcpgw_upmcp_session_id(const struct mcpgw_upmcp *u);
const char *mcpgw_upmcp_version(const struct mcpgw_upmcp *u);
json_object *mcpgw_upmcp_server_result(const struct mcpgw_upmcp *u);

/* Sends a request with an id of the session's own choosing (params taken). Returns the call,
 * owned by the session until on_reply returns, or NULL (no callback) when u is not ready. */
struct mcpgw_upmcp_call *mcpgw_upmcp_request(struct mcpgw_upmcp *u, const char *method,
                                             json_object *params,
                                             const struct mcpgw_upmcp_call_cbs *cbs, void *arg);
/* The JSON-RPC id the call was sent with (for notifications/cancelled, progress mapping). */
long long mcpgw_upmcp_call_id(const struct mcpgw_upmcp_call *c);
/* Stops a call: no callback fires afterwards; with notify, notifications/cancelled goes upstream.
 */
void mcpgw_upmcp_call_cancel(struct mcpgw_upmcp_call *c, int notify);

/* Sends a notification or a response (a whole JSON-RPC message, copied), which the upstream
 * answers with 202. done (optional) gets 0 or the error. Returns 0, or -1 when not ready. */
int mcpgw_upmcp_send(struct mcpgw_upmcp *u, const char *msg, size_t len,
                     void (*done)(void *arg, enum mcpgw_upmcp_err err, const char *why), void *arg);

/* Opens the GET stream (Last-Event-ID: last_event_id when not NULL) and keeps it open: when it
 * ends or fails it is re-opened after a backoff (200 ms doubling to 30 s, reset when a stream
 * delivers), resuming after the last event id seen. A 405 means the upstream offers no GET
 * stream: it is not retried. Returns 0, or -1 when not ready. */
int mcpgw_upmcp_listen(struct mcpgw_upmcp *u, const char *last_event_id);
/* The id of the last event seen on the GET stream (borrowed), or NULL. */
const char *mcpgw_upmcp_last_event_id(const struct mcpgw_upmcp *u);
/* 1 while a GET stream is open (its 200 head arrived). */
int mcpgw_upmcp_listening(const struct mcpgw_upmcp *u);

#endif
