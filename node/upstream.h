/* upstream.h - the node's upstream MCP servers at run time: one connection per configured
 * upstream (shared mode: one Streamable HTTP session or one stdio child per node), their lists
 * fetched (every page) into the merged catalogue (node/catalog.h) and fetched again on their
 * list_changed, requests to them with per-call callbacks, and reloads that add, remove and
 * change upstreams without touching client sessions. The provider that serves clients from
 * this is node/upprov.c. */
#ifndef MCPGW_NODE_UPSTREAM_H
#define MCPGW_NODE_UPSTREAM_H

#include "common/jsonrpc.h"
#include "node/catalog.h"

struct mcpgw_node;
struct mcpgw_node_config;
struct mcpgw_upcfg;
struct mcpgw_upstream;
struct mcpgw_upstream_call;
struct mcpgw_breaker;

/* What the owner of the upstreams (node/upprov.c) is told; all optional, on the loop thread. */
struct mcpgw_upstream_hooks {
    /* The merged catalogue changed: bit k set for each enum mcpgw_catalog_kind that differs. */
    void (*on_changed)(struct mcpgw_node *n, unsigned kinds);
    /* A notification from upstream u that belongs to no call (its GET stream, its stdout):
     * logging messages, resource updates. m borrowed. */
    void (*on_notification)(struct mcpgw_node *n, struct mcpgw_upstream *u,
                            const struct mcpgw_jsonrpc_msg *m);
    /* The tool call function of the catalogue's tool entries. */
    void (*tool_call)(struct mcpgw_call *c, json_object *args);
    /* u acknowledged resources/subscribe of uri (borrowed until return): from now on its
     * updates of uri come. renewed: uri had been acknowledged by an earlier session of u (HTTP
     * re-initialize, child restart, a reload that changed u's line), so updates sent while u
     * was gone were lost. */
    void (*on_watched)(struct mcpgw_node *n, struct mcpgw_upstream *u, const char *uri,
                       int renewed);
};

/* Starts every upstream of n->cfg.upstreams (may be none: then nothing is allocated). hooks is
 * borrowed for the node's life. */
void mcpgw_upstream_start(struct mcpgw_node *n, const struct mcpgw_upstream_hooks *hooks);
/* SIGHUP: takes next->upstreams into n->cfg (the old set goes to next, to be freed with it).
 * Upstreams whose line is unchanged keep running (their sessions and children untouched);
 * removed ones are closed, their calls failed with an error naming them; changed ones are
 * closed and started again; new ones started. Client sessions are not touched. */
void mcpgw_upstream_reload(struct mcpgw_node *n, struct mcpgw_node_config *next);
/* Exit: fails pending calls, closes HTTP sessions (DELETE is not waited for), kills children. */
void mcpgw_upstream_stop(struct mcpgw_node *n);

/* The merged catalogue, or NULL when no upstream is configured (borrowed until the next
 * callback of the loop). */
const struct mcpgw_catalog *mcpgw_upstream_catalog(const struct mcpgw_node *n);
/* One line per upstream for /readyz (its breaker state, calls in flight, recent failures),
 * appended into buf (NUL-terminated, cut at len). Returns the length written. */
size_t mcpgw_upstream_health(const struct mcpgw_node *n, char *buf, size_t len);
/* The number of configured upstreams. */
int mcpgw_upstream_count(const struct mcpgw_node *n);

const struct mcpgw_upcfg *mcpgw_upstream_cfg(const struct mcpgw_upstream *u);
/* Whether clients' calls to u go to sessions of their own at the upstream (node/upsess.c):
 * an HTTP upstream with session=per-client, or with no session= when the upstream gave an
 * Mcp-Session-Id at the node's own initialize (a stateful server; a stateless one keeps no
 * per-client state, so one shared session serves every client). 0 for stdio upstreams. */
int mcpgw_upstream_per_client(const struct mcpgw_upstream *u);
/* The upstream named name, or NULL (borrowed until the next reload). */
struct mcpgw_upstream *mcpgw_upstream_find(const struct mcpgw_node *n, const char *name);
/* The breaker (node/breaker.h) of the upstream named name, or NULL: its per-client sessions
 * pass the same breaker and bulkhead, and count in the same metrics, as its shared session.
 * *epoch is set to a number unique to this start of the upstream (0 with NULL): a reload that
 * changes or removes the upstream frees its breaker, and a later start has another epoch. */
struct mcpgw_breaker *mcpgw_upstream_breaker(const struct mcpgw_node *n, const char *name,
                                             uint64_t *epoch);
/* The upstream's initialize result (capabilities...), borrowed, or NULL when not connected. */
json_object *mcpgw_upstream_server(const struct mcpgw_upstream *u);

/* resources/subscribe uri at u, once per node: the first local subscriber sends it; it is sent
 * again whenever u's session starts anew (HTTP re-initialize, child restart) and kept until u
 * goes (docs/federation.md, "Resource subscriptions"). Returns 0, or -1 when u does not offer
 * subscriptions (its capabilities say so). */
int mcpgw_upstream_watch(struct mcpgw_upstream *u, const char *uri);
/* Whether uri is watched at u: -1 not watched; 0 watched, but u's current session has not
 * acknowledged the subscription yet (sent, or waiting for u to connect); 1 acknowledged
 * (hooks->on_watched has fired for it in this session). */
int mcpgw_upstream_watching(const struct mcpgw_upstream *u, const char *uri);
/* The upstream that serves uri (borrowed until the next reload): one that lists it, else one
 * whose template matches it, else the only upstream with resources; NULL when none. */
struct mcpgw_upstream *mcpgw_upstream_owner(const struct mcpgw_node *n, const char *uri);

/* A failure of a call: the upstream was not reached or answered badly (why names it). */
enum mcpgw_upstream_err {
    MCPGW_UPSTREAM_OK,
    MCPGW_UPSTREAM_E_DOWN,    /* not connected (starting, restarting, removed) */
    MCPGW_UPSTREAM_E_TIMEOUT, /* no answer within the upstream's timeout */
    MCPGW_UPSTREAM_E_FAILED,  /* transport, protocol or process failure */
    MCPGW_UPSTREAM_E_COUNT
};
const char *mcpgw_upstream_err_str(enum mcpgw_upstream_err e);

struct mcpgw_upstream_call_cbs {
    /* A notification (progress, logging) for this call; progress tokens are the caller's own,
     * as it sent them. Optional; m borrowed. */
    void (*on_message)(void *arg, const struct mcpgw_jsonrpc_msg *m);
    /* The answer (err 0, m a result or a JSON-RPC error, borrowed) or a failure (m NULL).
     * Exactly once unless cancelled; the call is freed after it returns. */
    void (*on_reply)(void *arg, enum mcpgw_upstream_err err, const char *why,
                     const struct mcpgw_jsonrpc_msg *m);
    /* A server-to-client request for this call's client (sampling, elicitation...): on the
     * call's HTTP stream, or from a stdio child while this is its only such call in flight.
     * Optional (without it the request is refused); answer with mcpgw_upstream_call_answer. */
    void (*on_request)(void *arg, const struct mcpgw_jsonrpc_msg *m);
};

/* Sends method(params) to u (params taken). progress_token (may be NULL, borrowed) is the
 * token the caller put in params._meta, so that progress arriving apart from the call (a stdio
 * child's stdout) finds it. Returns the call, or NULL with nothing called when u is down
 * (why filled). */
struct mcpgw_upstream_call *mcpgw_upstream_request(struct mcpgw_upstream *u, const char *method,
                                                   json_object *params, const char *progress_token,
                                                   const struct mcpgw_upstream_call_cbs *cbs,
                                                   void *arg, char *why, size_t whylen);
/* Sends the answer to a server-to-client request (a whole JSON-RPC response) to c's upstream.
 * Returns 0, or -1 when it cannot be sent now. */
int mcpgw_upstream_call_answer(struct mcpgw_upstream_call *c, const char *json, size_t len);
/* Stops a call: no callback fires afterwards; notifications/cancelled goes upstream. */
void mcpgw_upstream_cancel(struct mcpgw_upstream_call *c, const char *reason);

#endif
