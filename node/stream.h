/* stream.h - the session's GET stream (stream 0): live delivery, replay when a client resumes,
 * and holding live events back across a gap. The memory store's events go through
 * mcpgw_stream_send (logged, numbered by the session); the shared store's through
 * mcpgw_stream_deliver (numbered by the cluster, written once and in order). */
#ifndef MCPGW_NODE_STREAM_H
#define MCPGW_NODE_STREAM_H

#include "node/store.h"

#include <stddef.h>
#include <stdint.h>

struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_http_conn;

/* Session-level (GET stream, stream 0) delivery: log, then write if a GET stream is attached. */
void mcpgw_stream_send(struct mcpgw_node *n, struct mcpgw_session *s, const char *json, size_t len);
/* Attach conn as the session's GET stream (an existing one is closed), writing the priming
 * event. Replays stream-0 events after `after` first when replay is set. */
void mcpgw_stream_attach(struct mcpgw_node *n, struct mcpgw_session *s,
                         struct mcpgw_http_conn *conn, int replay, uint64_t after);
/* End the session's GET stream, if it has one (the client may resume it elsewhere). */
void mcpgw_stream_end(struct mcpgw_session *s);
/* Make conn the session's live GET stream (an existing one is ended); SSE already begun. */
void mcpgw_stream_attach_live(struct mcpgw_node *n, struct mcpgw_session *s,
                              struct mcpgw_http_conn *conn);
/* Shared store: open a GET stream, replaying from the store after the Redis stream id `after`
 * ("<ms>-<seq>", or NULL for none) before going live. */
void mcpgw_stream_resume(struct mcpgw_node *n, struct mcpgw_session *s,
                         struct mcpgw_http_conn *conn, const char *after);
/* Shared store: a GET resuming (Last-Event-ID `after`) a session this node does not hold. The
 * claim and the replay go out together (mcpgw_store_claim_replay). *slot is set to the resume
 * before anything is sent; claimed(claim_arg) fires first and, on success, passes *slot to
 * mcpgw_stream_resume_claimed. A resume never passed on frees itself when its replay returns:
 * the caller only forgets it. */
struct mcpgw_resume;
void mcpgw_stream_claim_resume(struct mcpgw_node *n, const char *sid, size_t len, const char *after,
                               mcpgw_store_claim_fn claimed, void *claim_arg,
                               struct mcpgw_resume **slot);
void mcpgw_stream_resume_claimed(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const char *after,
                                 struct mcpgw_resume *r);
/* The notification that tells a session of the store event ev: notifications/resources/updated,
 * or for a list change (MCPGW_STORE_LIST_PREFIX <kind>) notifications/<kind>/list_changed; NULL
 * for a kind this node does not know. Free with free(). */
char *mcpgw_stream_event_json(const struct mcpgw_store_event *ev, size_t *len);
/* Shared store: a live GET-stream event from pub/sub, written once and in order (held while a
 * replay runs, skipped if already written). */
void mcpgw_stream_deliver(struct mcpgw_node *n, struct mcpgw_session *s, uint64_t ms, uint64_t seq,
                          const char *json, size_t len);

/* Shared store: write into the attached GET stream whatever the store holds after the last
 * event delivered (live events may have been lost with a pub/sub connection). */
void mcpgw_stream_catch_up(struct mcpgw_node *n, struct mcpgw_session *s);
/* Hold live events for s (mcpgw_stream_deliver queues them) until the release (both are
 * idempotent: one hold at a time): used
 * while a gap may exist before them, e.g. from the moment the pub/sub connection is back until
 * the catch-up has read what was published while it was down. Delivering a later event first
 * would move the session's dedup mark past the gap and lose it. */
void mcpgw_stream_hold(struct mcpgw_session *s);
void mcpgw_stream_release(struct mcpgw_node *n, struct mcpgw_session *s);

#endif
