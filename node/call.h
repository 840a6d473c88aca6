/* call.h - in-flight requests and session streams: the only way events reach a client.
 *
 * Every event (notification, server-to-client request, response on an SSE stream) is appended
 * to the session's event log before it is written, and its SSE id names the stream it belongs
 * to, so a client that reconnects with Last-Event-ID is replayed exactly that stream. */
#ifndef MCPGW_NODE_CALL_H
#define MCPGW_NODE_CALL_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct event;
struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_http_conn;
struct mcpgw_call;
struct mcpgw_tool;

/* An in-flight client request (tools/call and friends) that may stream notifications and
 * server-to-client requests before its response. Owned by its session's call list; freed by
 * mcpgw_call_result / mcpgw_call_error / cancellation / session teardown. */
typedef void (*mcpgw_call_reply_fn)(struct mcpgw_call *c, json_object *result, json_object *error);
typedef void (*mcpgw_call_step_fn)(struct mcpgw_call *c);

struct mcpgw_call {
    struct mcpgw_node *node;
    struct mcpgw_session *s;
    struct mcpgw_call *next, *prev;
    json_object *id;              /* request id (owned reference) */
    struct mcpgw_http_conn *conn; /* where the response goes; NULL while the client is away */
    json_object *progress_token;  /* owned reference, or NULL */
    uint32_t stream;              /* response stream number once SSE started, else 0 */
    uint8_t sse;                  /* the response is an SSE stream */
    int64_t out_id;               /* pending server-to-client request id, or -1 */
    mcpgw_call_reply_fn on_reply;
    struct event *step_timer; /* client-request timeout, or a tool's delay between steps */
    struct event *deadline;   /* tool timeout */
    mcpgw_call_step_fn step;
    int step_no; /* tool-private progress counter */
    void *state; /* tool-private; freed with free() */
    uint64_t started_us;
    char *rid;         /* request id as JSON text, when the result must be recorded for retries */
    uint8_t busy;      /* store operations in flight that will call back with this call */
    uint8_t aborted;   /* dropped while busy: freed when the last store operation returns */
    uint8_t finishing; /* a result or error is being sent: later ones are ignored */
    /* An upstream's server-to-client request forwarded on this call (s2c.c), freed with the
     * call through fwd_free. */
    void *fwd;
    void (*fwd_free)(void *fwd);
    /* The upstream request serving this call (upsess.c), cancelled with the call through
     * leg_free. */
    void *leg;
    void (*leg_free)(void *leg);
    /* The tool being run (set by protocol.c before its call function; borrowed only until that
     * returns), and a provider's per-call hook: on_free runs once when the call is freed for any
     * reason (answered, cancelled, timed out, session gone) unless the provider cleared it. */
    const struct mcpgw_tool *tool;
    void *ext;
    void (*on_free)(struct mcpgw_call *c);
    void *limit_slot; /* the principal's `limit concurrency` slot it holds (node/limits.h) */
    /* 2026-07-28 calls only (node/bridge26.c). relay: where
     * the call's next whole response goes instead of conn (a retry held by another node); it
     * fires once and is cleared. round: the pending round's state, freed with the call through
     * round_free. */
    void (*relay)(struct mcpgw_call *c, const char *json, size_t len);
    /* relay_note: while relay is set, where the call's notifications go (not to conn). */
    void (*relay_note)(struct mcpgw_call *c, const char *json, size_t len);
    void *round;
    void (*round_free)(void *round);
    json_object *request; /* 2026-07-28: the request's params (owned), what rounds are bound to */
};

/* Start a call for request `id` (borrowed; a reference is taken) arriving on conn (NULL: a call
 * with no client connection, answered through its relay: a task, node/tasks.c). */
struct mcpgw_call *mcpgw_call_new(struct mcpgw_node *n, struct mcpgw_session *s, json_object *id,
                                  struct mcpgw_http_conn *conn, json_object *params);

/* notifications/message at `level` if the session's log level lets it through. */
void mcpgw_call_log(struct mcpgw_call *c, const char *level, const char *text);
/* notifications/progress if the request carried a progress token. */
void mcpgw_call_progress(struct mcpgw_call *c, double progress, double total, const char *message);
/* Send a notification built elsewhere (a whole JSON-RPC message, copied) on the call's stream:
 * what an upstream server sent for this call. */
void mcpgw_call_emit(struct mcpgw_call *c, const char *json, size_t len);
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

/* Finish with an upstream's result passed through: the JSON text of an object (borrowed; valid
 * by common/jscan.h), written into the response as it is when nothing in this node changes a
 * result on its way (a session-era client, no result to record for retries, no relay); else it
 * is parsed and goes the way of mcpgw_call_result. */
void mcpgw_call_result_raw(struct mcpgw_call *c, const char *result, size_t len);

/* Answer with a recorded result (JSON text of the result object). */
void mcpgw_call_answer_raw(struct mcpgw_call *c, const char *result_json);

/* 2026-07-28 (MRTR): answer the current request of c with result (taken; an input_required
 * result) on its connection, or through c->relay, and let the call go on with no client until
 * mcpgw_call_rebind names the retry that continues it. */
void mcpgw_call_handoff(struct mcpgw_call *c, json_object *result);
/* The retry that continues c: its id (borrowed; a reference is taken) and conn (NULL when the
 * retry is held by another node: set c->relay). Closing conn cancels the call, as it does for
 * the first request. */
void mcpgw_call_rebind(struct mcpgw_call *c, struct mcpgw_http_conn *conn, json_object *id);

/* Attach conn to an in-flight call's stream after replaying its events after `after`. */
void mcpgw_call_attach(struct mcpgw_call *c, struct mcpgw_http_conn *conn, uint64_t after);

#endif
