/* protocol.h - MCP method dispatch for the session era (initialize, tools, resources, ...). */
#ifndef MCPGW_NODE_PROTOCOL_H
#define MCPGW_NODE_PROTOCOL_H

#include "node/node-t.h"

struct mcpgw_jsonrpc_msg;
struct mcpgw_http_conn;

/* Answer a JSON response (200, application/json) on conn. s may be NULL (no session header).
 * Takes ownership of result. */
void mcpgw_respond_result(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                          struct mcpgw_session *s, json_object *id, json_object *result);
void mcpgw_respond_error(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                         struct mcpgw_session *s, int http_status, json_object *id, int code,
                         const char *message);

/* initialize: creates the session and answers. Returns the session or NULL (answered). */
struct mcpgw_session *mcpgw_protocol_initialize(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                                const struct mcpgw_jsonrpc_msg *m);
/* Any other request in an existing session. Always answers on conn, now or later. */
void mcpgw_protocol_request(struct mcpgw_node *n, struct mcpgw_session *s,
                            struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m);
/* A client notification (initialized, cancelled, roots/list_changed, ...). */
/* Answers 202 on conn (after the store write, for notifications/initialized). */
void mcpgw_protocol_notification(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m);
/* A client's answer to one of our requests. */
void mcpgw_protocol_response(struct mcpgw_node *n, struct mcpgw_session *s,
                             const struct mcpgw_jsonrpc_msg *m);

/* End a session everywhere (DELETE): removes its store records, then drops it here. */
void mcpgw_node_session_destroy(struct mcpgw_node *n, struct mcpgw_session *s);
/* Drop this node's copy only (expired here, moved away, or lost): aborts its calls, ends its
 * GET stream, removes it from the registry and frees it. */
void mcpgw_node_session_drop(struct mcpgw_node *n, struct mcpgw_session *s);

#endif
