/* transport.h - the node's HTTP front: /mcp (Streamable HTTP), /healthz, /readyz, /metrics. */
#ifndef MCPGW_NODE_TRANSPORT_H
#define MCPGW_NODE_TRANSPORT_H

#include "common/httpd.h"

struct mcpgw_node;

/* The httpd handler; arg is the struct mcpgw_node. */
void mcpgw_node_handle(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg);

/* Host / Origin validation against the node's allow lists (exposed for unit tests).
 * Returns 1 when allowed. */
struct mcpgw_node_config;
/* After a stall. Sessions this node held that others took over meanwhile: the balancer routes
 * many of them back here once the node is up again (those whose ids name it, and those whose
 * named node is gone and whose rendezvous choice it is), each on its next request, which claims
 * it back and ends its stream on the other node: one session at a time, as requests come, for
 * many seconds. Instead, reclaim_later notes each one (from its "moved" notice, read during the
 * resync) and reclaim_start claims back at once, in batches, those the balancer routes here:
 * one short disruption for all instead of a trickle of late ones. */
void mcpgw_node_reclaim_later(struct mcpgw_node *n, const char *sid);
void mcpgw_node_reclaim_start(struct mcpgw_node *n);
void mcpgw_node_reclaim_free(struct mcpgw_node *n);

int mcpgw_host_allowed(const struct mcpgw_node_config *cfg, const char *host, size_t len);
int mcpgw_origin_allowed(const struct mcpgw_node_config *cfg, const char *origin, size_t len);

#endif
