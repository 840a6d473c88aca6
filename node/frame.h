/* frame.h - a session's messages on one connection: JSON answers of calls, SSE response heads,
 * priming events, events with ids and replays of the session's log. The code above writes a
 * session's response bytes through these. */
#ifndef MCPGW_NODE_FRAME_H
#define MCPGW_NODE_FRAME_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_http_conn;

/* Answer conn at once with the JSON-RPC result (takes) or error for request id; s (may be NULL)
 * is named in Mcp-Session-Id. Errors are counted. */
void mcpgw_frame_result(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                        const struct mcpgw_session *s, json_object *id, json_object *result);
/* The same answer with result the JSON text of an object passed through (borrowed). */
void mcpgw_frame_result_raw(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                            const struct mcpgw_session *s, json_object *id, const char *result,
                            size_t result_len);
void mcpgw_frame_error(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                       const struct mcpgw_session *s, int http_status, json_object *id, int code,
                       const char *message);
/* Answer conn with a call's whole JSON-RPC message (application/json, the session's id,
 * no-cache). */
void mcpgw_frame_json(struct mcpgw_http_conn *conn, const struct mcpgw_session *s, int status,
                      const char *json, size_t len);
/* One SSE event on conn whose id is the given text (NULL: none), counted as sent. Returns 0,
 * or -1 when the connection is gone. */
int mcpgw_frame_event_id(struct mcpgw_node *n, struct mcpgw_http_conn *conn, const char *id,
                         const char *data, size_t len);
/* The same with the id "<stream>.<seq>". */
int mcpgw_frame_event(struct mcpgw_node *n, struct mcpgw_http_conn *conn, uint32_t stream,
                      uint64_t seq, const char *data, size_t len);
/* An SSE comment on conn, which every client ignores: keeps an idle stream's path (NATs,
 * proxies) open and makes TCP find out whether the peer is still there. Skipped when output is
 * already waiting (that tests the peer as well). Returns 0 (written or skipped), or -1 when the
 * connection is gone. */
int mcpgw_frame_keepalive(struct mcpgw_http_conn *conn);
/* SSE response headers and the priming event for a fresh stream on conn. */
void mcpgw_frame_sse_begin(struct mcpgw_node *n, struct mcpgw_session *s,
                           struct mcpgw_http_conn *conn, uint32_t stream);
/* SSE response headers for a resumed stream on conn, the logged events of `stream` after
 * `after`, then the priming event (last, so its id never skips a replayed event). Returns -1 if
 * conn broke during the replay. */
int mcpgw_frame_sse_resume(struct mcpgw_node *n, struct mcpgw_session *s,
                           struct mcpgw_http_conn *conn, uint32_t stream, uint64_t after);
/* Write the logged events of one stream after `after` on conn (counting replays, and a gap when
 * some were evicted). Returns -1 if conn broke. */
int mcpgw_frame_replay(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                       uint32_t stream, uint64_t after);

#endif
