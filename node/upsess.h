/* upsess.h - per-client upstream sessions (session=per-client, HTTP upstreams): one MCP session
 * at the upstream for each client session, that belongs to the client session and not to the
 * node. Its Mcp-Session-Id, revision and the last upstream event id delivered to the client are
 * written into the replicated session record, so the node that takes the client session over
 * (after a kill -9, a drain) continues the same upstream session: no second initialize, the
 * upstream's GET stream reopened with Last-Event-ID. docs/federation.md has the guarantee. */
#ifndef MCPGW_NODE_UPSESS_H
#define MCPGW_NODE_UPSESS_H

#include "common/jsonrpc.h"
#include "node/upmcp.h"

struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_call;

/* Make an HTTP upstream known as per-client (cfg copied; its name must be unique): sessions
 * claimed from another node adopt their upstream sessions at once for every upstream known.
 * Registering a name again replaces its configuration (a reload). Returns 0, or -1 when the
 * configuration is not usable (no name or URL). */
int mcpgw_upsess_register(struct mcpgw_node *n, const struct mcpgw_upmcp_cfg *cfg);
/* Whether name is a registered per-client upstream. */
int mcpgw_upsess_known(struct mcpgw_node *n, const char *name);

/* Serve client call c (method and params, params taken) at c's session's own session of the
 * upstream `name`: initialized on first use with the client's own capabilities, or adopted
 * from the session record. Progress and log notifications of the upstream call go to c's
 * stream as they are (the client's progress token is passed through unchanged: the upstream
 * session is this client's alone), server-to-client requests are forwarded (s2c.h), and c is
 * answered with the upstream's result or error, or a JSON-RPC error naming the upstream.
 * Cancelling c (notifications/cancelled, session end) cancels the upstream request. */
void mcpgw_upsess_call(struct mcpgw_call *c, const char *name, const char *method,
                       json_object *params);

/* The same at the upstream session that `owner` holds, rather than c's session: a principal's
 * session for 2026-07-28 calls (node/bridge26.c). An owner marked stateless is node-local: its
 * upstream session is not recorded in the store, and what the upstream sends outside a call
 * (its GET stream) is dropped, its requests refused (owner's client_caps). owner is borrowed for
 * the call's life. */
void mcpgw_upsess_call_as(struct mcpgw_call *c, struct mcpgw_session *owner, const char *name,
                          const char *method, json_object *params);

/* Whether owner's upstream sessions serve a request now (in flight, or waiting for initialize):
 * a holder that does is not idle (node/upprin.c). */
int mcpgw_upsess_busy(const struct mcpgw_session *owner);

/* resources/subscribe (on) or unsubscribe of uri for session s: 0 when uri is not a resource of
 * a per-client upstream; else 1, and the request goes to s's own session at that
 * upstream, which keeps the subscription (it survives a move of the session with it), and d is
 * the client's request (id, on conn) is answered with what the upstream says. Updates arrive on
 * that session's GET stream. */
struct mcpgw_http_conn;
int mcpgw_upsess_subscribe(struct mcpgw_node *n, struct mcpgw_session *s, const char *uri, int on,
                           struct mcpgw_http_conn *conn, json_object *id);
/* A session claimed from another node was registered here: adopt its upstream sessions (from
 * s->up_state) and reopen their GET streams after the last event delivered. */
void mcpgw_upsess_claimed(struct mcpgw_node *n, struct mcpgw_session *s);
/* The client session is leaving this node: with end (DELETE by the client, expiry) its
 * upstream sessions are closed (DELETE at the upstream); without (it moved, or this node is
 * stopping) they are only forgotten here and stay alive at the upstream. Idempotent. */
void mcpgw_upsess_release(struct mcpgw_node *n, struct mcpgw_session *s, int end);
/* A client's response that matched none of its calls: 1 when it answered a request forwarded
 * from an upstream's GET stream, or one of several forwarded on one call (s2c.h), now
 * answered upstream; else 0. */
int mcpgw_upsess_response(struct mcpgw_node *n, struct mcpgw_session *s,
                          const struct mcpgw_jsonrpc_msg *m);
/* SIGHUP, before mcpgw_upstream_reload (next: the new file's upstream lines, borrowed). For each
 * per-client upstream in use: removed from the file, made session=shared or stdio, or given
 * another URL (or h2c) -> every client session's session at it is closed (its calls in flight
 * fail with an error naming the reload, DELETE goes to the old endpoint; with a new URL the
 * next call opens a new session there); otherwise (headers, timeout, filters, prefix, breaker
 * keys) the sessions stay and their next request uses the new headers and timeout. */
struct mcpgw_upcfg_set;
void mcpgw_upsess_reload(struct mcpgw_node *n, const struct mcpgw_upcfg_set *next);
/* Free the node's per-client upstream state (at exit; sessions released first). */
void mcpgw_upsess_free_all(struct mcpgw_node *n);

#endif
