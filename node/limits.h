/* limits.h - per-principal limits at the front door of /mcp: request rates (per principal and
 * per principal and tool, cluster-wide through Redis with a local fallback), calls in flight
 * and sessions per principal; 429 with Retry-After over a limit (docs/security.md, "Limits"). */
#ifndef MCPGW_NODE_LIMITS_H
#define MCPGW_NODE_LIMITS_H

#include "common/httpd.h"

struct mcpgw_node;
struct mcpgw_node_config;
struct mcpgw_limits;

/* Create n->limits when the configuration has `limit` lines (otherwise n->limits stays NULL and
 * the request path tests one pointer). Registers the counters. Call after the store exists.
 * Parked requests that are admitted go to retry(c, req, n) (the node's request handler); req
 * is borrowed for that call. */
void mcpgw_limits_start(struct mcpgw_node *n, mcpgw_http_handler_fn retry);
/* Before the store is freed: parked requests get 503 and Redis answers arriving afterwards
 * are dropped. */
void mcpgw_limits_stop(struct mcpgw_node *n);
/* After the store is freed. */
void mcpgw_limits_free(struct mcpgw_node *n);
/* A configuration reload: take next's `limit` lines (next->limits is swapped with the running
 * set and freed with next). Creates n->limits when the first lines appear; removing every line
 * keeps the object with no rules (calls in flight still hold their slots). */
void mcpgw_limits_reload(struct mcpgw_node *n, struct mcpgw_node_config *next,
                         mcpgw_http_handler_fn retry);

/* The front door, after authentication: principal is the authenticated one, or NULL (then the
 * client's address stands for it, see the docs). Returns 1 when the request may go on (the
 * caller serves it, then calls mcpgw_limits_served), 0 when this function took care of it:
 * answered 429 (and wrote the audit line) or parked it until Redis answers; a parked request
 * that passes is handed to the node's request handler again marked req->admitted, and passes
 * here at once without a second charge (also when authentication parks it meanwhile). */
int mcpgw_limits_admit(struct mcpgw_limits *l, struct mcpgw_http_conn *c,
                       const struct mcpgw_http_req *req, const char *principal);
/* The request admitted last has been handed on (its handler returned). */
void mcpgw_limits_served(struct mcpgw_limits *l);

/* A call starts while its request is being served: it holds one of its principal's slots of
 * `limit concurrency` until mcpgw_limits_call_end. Returns the slot (NULL: nothing held). */
void *mcpgw_limits_call_begin(struct mcpgw_limits *l);
/* l is the node's limits now: NULL once mcpgw_limits_free ran (the slot is then gone too). */
void mcpgw_limits_call_end(struct mcpgw_limits *l, void *slot);
/* initialize created session sid for the request being served: it counts against its
 * principal's `limit sessions` from now on. */
void mcpgw_limits_session_created(struct mcpgw_limits *l, const char *sid);

#endif
