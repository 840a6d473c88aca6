/* protocol.h - MCP method dispatch for the session era (initialize, tools, resources, ...). */
#ifndef MCPGW_NODE_PROTOCOL_H
#define MCPGW_NODE_PROTOCOL_H

#include "node/node-t.h"

struct mcpgw_jsonrpc_msg;
struct mcpgw_http_conn;

/* initialize: creates the session and answers. Returns the session or NULL (answered). */
struct mcpgw_session *mcpgw_protocol_initialize(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                                const struct mcpgw_jsonrpc_msg *m);
/* Any other request in an existing session. Always answers on conn, now or later. */
/* Choose who serves requests (n->providers) from the configuration and the upstreams: at start
 * and after every reload. */
void mcpgw_protocol_configure(struct mcpgw_node *n);

void mcpgw_protocol_request(struct mcpgw_node *n, struct mcpgw_session *s,
                            struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m);
/* A client notification (initialized, cancelled, roots/list_changed, ...). */
/* Answers 202 on conn (after the store write, for notifications/initialized). */
void mcpgw_protocol_notification(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m);
/* A client's answer to one of our requests. */
void mcpgw_protocol_response(struct mcpgw_node *n, struct mcpgw_session *s,
                             const struct mcpgw_jsonrpc_msg *m);

#endif
