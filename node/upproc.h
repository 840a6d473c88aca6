/* upproc.h - per-client stdio upstreams (`upstream NAME stdio "CMD" session=per-client`): one
 * supervised child per client session and upstream, started on the session's first call, capped
 * per node (max-procs), stopped when the session ends, expires or leaves the node. A child cannot
 * follow its session to another node: there a new child starts (docs/federation.md). */
#ifndef MCPGW_NODE_UPPROC_H
#define MCPGW_NODE_UPPROC_H

#include <json-c/json.h>

struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_call;
struct mcpgw_upcfg;

/* Children per node when the line gives no max-procs. */
#define MCPGW_UPPROC_DEFAULT_MAX 100

/* Serve client call c with method(params) (params taken) at c's session's own child of upstream
 * cfg (a stdio line with session=per-client): started now if the session has none (or a clear
 * error when the node already runs max-procs of them). Progress and logging of the call go to c's
 * stream as they are, a request of the child while this is its only call in flight is forwarded
 * to the client (s2c.h), and c is answered with the child's answer. */
void mcpgw_upproc_call(struct mcpgw_call *c, const struct mcpgw_upcfg *cfg, const char *method,
                       json_object *params);
/* The same at the children that `owner` holds rather than c's session's: a principal's, for
 * 2026-07-28 calls (node/upprin.c). owner is borrowed for the call's life. */
void mcpgw_upproc_call_as(struct mcpgw_call *c, struct mcpgw_session *owner,
                          const struct mcpgw_upcfg *cfg, const char *method, json_object *params);
/* The same at exit, when the loop no longer runs to stop them gracefully: killed and reaped now. */
void mcpgw_upproc_kill(struct mcpgw_node *n, struct mcpgw_session *s);
/* Whether a child of s serves a call now. */
int mcpgw_upproc_busy(const struct mcpgw_session *s);
/* The session is leaving this node (ended, expired or moved): its children are stopped. */
void mcpgw_upproc_release(struct mcpgw_node *n, struct mcpgw_session *s);
/* Children running on this node (all per-client stdio upstreams). */
unsigned mcpgw_upproc_count(const struct mcpgw_node *n);

#endif
