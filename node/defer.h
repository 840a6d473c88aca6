/* defer.h - a reply that waits for the store: it follows the client's connection and finds the
 * session again by id when the store answers. */
#ifndef MCPGW_NODE_DEFER_H
#define MCPGW_NODE_DEFER_H

#include <json-c/json.h>

struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_http_conn;

/* A reply that waits for the store. It tracks the connection (NULL once the client left) and
 * remembers the session by id, since the session may go away meanwhile. */
struct mcpgw_defer {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn;
    json_object *id;
    char sid[64];
    /* 2026-07-28 era (node/era26.c): results become complete results with these caching hints
     * (ttl < 0: none), and resource-not-found is -32602. */
    uint8_t era26;
    int64_t era26_ttl_ms;
};
struct mcpgw_defer *mcpgw_defer_new(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                    struct mcpgw_session *s, json_object *id);
/* The session again (NULL if it is gone). */
struct mcpgw_session *mcpgw_defer_session(struct mcpgw_defer *d);
/* Take the connection back to answer on it (NULL if the client left). */
struct mcpgw_http_conn *mcpgw_defer_conn(struct mcpgw_defer *d);
void mcpgw_defer_free(struct mcpgw_defer *d);
/* Answer the request with result (takes) or a JSON-RPC error (HTTP 200) if the client is still
 * there, naming the session if it still exists; then free d. */
void mcpgw_defer_result(struct mcpgw_defer *d, json_object *result);
/* Answer with an upstream's result passed through: the JSON text of an object (borrowed; valid
 * by common/jscan.h), as it is unless the 2026-07-28 era completes it (then parsed and answered
 * by mcpgw_defer_result). */
void mcpgw_defer_result_raw(struct mcpgw_defer *d, const char *result, size_t len);
void mcpgw_defer_error(struct mcpgw_defer *d, int code, const char *message);

#endif
