/* transport.h - the node's HTTP front: /mcp (Streamable HTTP), /healthz, /readyz, /metrics. */
#ifndef MCPGW_NODE_TRANSPORT_H
#define MCPGW_NODE_TRANSPORT_H

#include "common/httpd.h"

struct mcpgw_node;

/* The httpd handler; arg is the struct mcpgw_node. */
void mcpgw_transport_handle(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg);

/* Host / Origin validation against the node's allow lists (exposed for unit tests).
 * Returns 1 when allowed. */
struct mcpgw_node_config;
int mcpgw_transport_host_allowed(const struct mcpgw_node_config *cfg, const char *host, size_t len);
int mcpgw_transport_origin_allowed(const struct mcpgw_node_config *cfg, const char *origin,
                                   size_t len);

#endif
