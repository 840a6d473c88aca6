/* protocol.h - MCP method dispatch for the session era (initialize, tools, resources, ...). */
#ifndef MCPGW_NODE_PROTOCOL_H
#define MCPGW_NODE_PROTOCOL_H

#include "node/node-t.h"

#include <json-c/json.h>
#include <stddef.h>

struct mcpgw_jsonrpc_msg;
struct mcpgw_provider_ops;
struct mcpgw_http_conn;

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

/* The sources of tools, resources and prompts, asked in order; both eras serve through this one
 * table. Sets *count. */
const struct mcpgw_provider_ops *const *mcpgw_protocol_providers(size_t *count);

/* Which list a list method returns. */
enum mcpgw_protocol_list_kind {
    MCPGW_LIST_TOOLS,
    MCPGW_LIST_RESOURCES,
    MCPGW_LIST_TEMPLATES,
    MCPGW_LIST_PROMPTS,
    MCPGW_LIST_KIND_COUNT
};
/* One page of a list as the result object ({"tools": [...], "nextCursor"?}) from every provider
 * of extra (NULL: none) and then of the table, at params.cursor (params may be NULL). Returns 0
 * with *result (the caller owns it), or -1 for a cursor this server did not issue. */
int mcpgw_protocol_list(struct mcpgw_node *n, enum mcpgw_protocol_list_kind k, json_object *params,
                        const struct mcpgw_provider_ops *extra, json_object **result);

#endif
