/* upprin.h - upstream sessions and stdio children per principal for 2026-07-28 calls of
 * per-client upstreams: a 2026-07-28 request has no client session to own an upstream session or
 * child, so with authentication on, each principal gets its own on each node
 * (docs/federation.md, "Bridging"). */
#ifndef MCPGW_NODE_UPPRIN_H
#define MCPGW_NODE_UPPRIN_H

#include <stddef.h>

struct mcpgw_node;
struct mcpgw_session;

/* The node-local session that holds principal's upstream sessions and children (made on first
 * use; owned by the node): pass it to mcpgw_upsess_call_as or mcpgw_upproc_call_as at once (it is
 * borrowed while that call runs: a holder serving a call is never closed). It declares sampling,
 * elicitation and roots to the upstream at initialize (each call's own client capabilities decide
 * what reaches that client), is never stored, and has no GET stream. A holder unused for
 * `upstream-principal-idle` is closed (DELETE at each upstream, children stopped). At
 * `upstream-principals` holders, a new principal's first call closes the least recently used idle
 * one; if every one is serving a call, NULL is returned with a sentence for the client in why. */
struct mcpgw_session *mcpgw_upprin_session(struct mcpgw_node *n, const char *principal, char *why,
                                           size_t whylen);

/* Forget every principal's upstream sessions (left to the upstream's idle expiry: at exit the
 * loop no longer runs to complete a DELETE), stop their children, and free them. At exit, after the
 * calls are gone and before mcpgw_upsess_free_all. */
void mcpgw_upprin_free_all(struct mcpgw_node *n);

#endif
