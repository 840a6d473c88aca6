/* call.h - in-flight requests and session streams: the only way events reach a client.
 *
 * Every event (notification, server-to-client request, response on an SSE stream) is appended
 * to the session's event log before it is written, and its SSE id names the stream it belongs
 * to, so a client that reconnects with Last-Event-ID is replayed exactly that stream. */
#ifndef MCPGW_NODE_CALL_H
#define MCPGW_NODE_CALL_H

#include "node/node-t.h"
#include "node/store.h"

/* Start a call for request `id` (borrowed; a reference is taken) arriving on conn. */
struct mcpgw_call *mcpgw_call_new(struct mcpgw_node *n, struct mcpgw_session *s, json_object *id,
                                  struct mcpgw_http_conn *conn, json_object *params);

/* notifications/message at `level` if the session's log level lets it through. */
void mcpgw_call_log(struct mcpgw_call *c, const char *level, const char *text);
/* notifications/progress if the request carried a progress token. */
void mcpgw_call_progress(struct mcpgw_call *c, double progress, double total, const char *message);
/* Send a server-to-client request on the call's stream; on_reply fires with the client's result
 * or error (both NULL on timeout). Returns 0, or -1 if one is already pending. */
int mcpgw_call_request(struct mcpgw_call *c, const char *method, json_object *params /* takes */,
                       mcpgw_call_reply_fn on_reply);
/* End the response stream now (after its priming event) while the call goes on: the client is
 * expected to resume with GET + Last-Event-ID (SSE polling, 2025-11-25). */
void mcpgw_call_detach(struct mcpgw_call *c);
/* Run step after delay_ms (a tool's pacing). */
void mcpgw_call_after(struct mcpgw_call *c, uint32_t delay_ms, mcpgw_call_step_fn step);

/* Answer with a tool error result if the call is still running after ms. */
void mcpgw_call_set_deadline(struct mcpgw_call *c, uint64_t ms);

/* Finish: send the result / error and free the call. */
void mcpgw_call_result(struct mcpgw_call *c, json_object *result /* takes */);
void mcpgw_call_error(struct mcpgw_call *c, int code, const char *message);
/* A tool-execution failure: a normal result with isError and one text block. */
void mcpgw_call_tool_error(struct mcpgw_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drop without a response (cancelled, or the session is going away). Ends its stream. */
void mcpgw_call_abort(struct mcpgw_call *c);

struct mcpgw_call *mcpgw_call_find(struct mcpgw_session *s, json_object *id);
struct mcpgw_call *mcpgw_call_find_out(struct mcpgw_session *s, int64_t out_id);
struct mcpgw_call *mcpgw_call_find_stream(struct mcpgw_session *s, uint32_t stream);
/* Deliver a client's answer to a pending server-to-client request. */
void mcpgw_call_reply(struct mcpgw_call *c, json_object *result, json_object *error);

/* Session-level (GET stream, stream 0) delivery: log, then write if a GET stream is attached. */
void mcpgw_session_send(struct mcpgw_node *n, struct mcpgw_session *s, const char *json,
                        size_t len);
/* Attach conn as the session's GET stream (an existing one is closed), writing the priming
 * event. Replays stream-0 events after `after` first when replay is set. */
void mcpgw_session_attach_get(struct mcpgw_node *n, struct mcpgw_session *s,
                              struct mcpgw_http_conn *conn, int replay, uint64_t after);
/* Make conn the session's live GET stream (an existing one is ended); SSE already begun. */
void mcpgw_session_attach_live(struct mcpgw_node *n, struct mcpgw_session *s,
                               struct mcpgw_http_conn *conn);
/* Shared store: open a GET stream, replaying from the store after the Redis stream id `after`
 * ("<ms>-<seq>", or NULL for none) before going live. */
void mcpgw_session_resume_shared(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const char *after);
/* Shared store: a GET resuming (Last-Event-ID `after`) a session this node does not hold. The
 * claim and the replay go out together (mcpgw_store_claim_replay). *slot is set to the resume
 * before anything is sent; claimed(claim_arg) fires first and, on success, passes *slot to
 * mcpgw_session_resume_claimed. A resume never passed on frees itself when its replay returns:
 * the caller only forgets it. */
struct mcpgw_resume;
void mcpgw_session_claim_resume(struct mcpgw_node *n, const char *sid, size_t len,
                                const char *after, mcpgw_store_claim_fn claimed, void *claim_arg,
                                struct mcpgw_resume **slot);
void mcpgw_session_resume_claimed(struct mcpgw_node *n, struct mcpgw_session *s,
                                  struct mcpgw_http_conn *conn, const char *after,
                                  struct mcpgw_resume *r);
/* Shared store: a live GET-stream event from pub/sub, written once and in order (held while a
 * replay runs, skipped if already written). */
void mcpgw_session_deliver(struct mcpgw_node *n, struct mcpgw_session *s, uint64_t ms, uint64_t seq,
                           const char *json, size_t len);

/* Shared store: write into the attached GET stream whatever the store holds after the last
 * event delivered (live events may have been lost with a pub/sub connection). */
void mcpgw_session_catch_up(struct mcpgw_node *n, struct mcpgw_session *s);
/* Hold live events for s (mcpgw_session_deliver queues them) until the release (both are
 * idempotent: one hold at a time): used
 * while a gap may exist before them, e.g. from the moment the pub/sub connection is back until
 * the catch-up has read what was published while it was down. Delivering a later event first
 * would move the session's dedup mark past the gap and lose it. */
void mcpgw_session_hold(struct mcpgw_session *s);
void mcpgw_session_release(struct mcpgw_node *n, struct mcpgw_session *s);

/* A reply that waits for the store. It tracks the connection (NULL once the client left) and
 * remembers the session by id, since the session may go away meanwhile. */
struct mcpgw_defer {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn;
    json_object *id;
    char sid[64];
};
struct mcpgw_defer *mcpgw_defer_new(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                    struct mcpgw_session *s, json_object *id);
/* The session again (NULL if it is gone). */
struct mcpgw_session *mcpgw_defer_session(struct mcpgw_defer *d);
/* Take the connection back to answer on it (NULL if the client left). */
struct mcpgw_http_conn *mcpgw_defer_conn(struct mcpgw_defer *d);
void mcpgw_defer_free(struct mcpgw_defer *d);

/* Answer with a recorded result (JSON text of the result object). */
void mcpgw_call_answer_raw(struct mcpgw_call *c, const char *result_json);

/* Attach conn to an in-flight call's stream after replaying its events after `after`. */
void mcpgw_call_attach(struct mcpgw_call *c, struct mcpgw_http_conn *conn, uint64_t after);

/* Write the logged events of one stream after `after` on conn. Returns -1 if conn broke. */
int mcpgw_session_replay_to(struct mcpgw_node *n, struct mcpgw_session *s,
                            struct mcpgw_http_conn *conn, uint32_t stream, uint64_t after);

/* SSE response headers and the priming event for a fresh stream on conn. */
void mcpgw_sse_begin(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                     uint32_t stream);
/* SSE response headers for a resumed stream on conn, the logged events of `stream` after
 * `after`, then the priming event (last, so its id never skips a replayed event). Returns -1 if
 * conn broke during the replay. */
int mcpgw_sse_resume(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                     uint32_t stream, uint64_t after);

#endif
