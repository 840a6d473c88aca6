/* resume.h - what the balancer keeps of a session's SSE stream to resume it on another node. */
#ifndef MCPGW_BALANCER_RESUME_H
#define MCPGW_BALANCER_RESUME_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Longest event id kept; a stream whose ids are longer is never resumed by the balancer. */
#define MCPGW_BAL_RESUME_ID_MAX 63

/* The SSE comment a resumed stream carries at the seam, before the new node's first byte.
 * Clients ignore comments; operators and the load generator can see where a stream moved. */
#define MCPGW_BAL_RESUME_MARK ": resumed\n\n"

/* One held GET stream: the request head that opened it (as sent to the node) and the id of the
 * last whole event relayed to the client, read off the relayed bytes by a small SSE scanner. */
struct mcpgw_bal_resume;

/* Keep a copy of the request in head[0..len): a whole head, blank line included, then its body
 * if it has one (a subscriptions/listen request's JSON, sent again as it was). Returns NULL
 * when it is too long to keep (64 KiB). Free with mcpgw_bal_resume_free. */
struct mcpgw_bal_resume *mcpgw_bal_resume_new(const char *head, size_t len);
void mcpgw_bal_resume_free(struct mcpgw_bal_resume *r);

/* Feed event-stream bytes, in order, as they are relayed to the client. Never fails: a stream
 * that cannot be resumed (an id too long, a lone CR) is only marked so. */
void mcpgw_bal_resume_feed(struct mcpgw_bal_resume *r, const char *p, size_t n);

/* 1 when the client has received whole events only, the last of them with a usable id: a
 * new stream asked to start after that id continues this one without a gap or a repeat. */
int mcpgw_bal_resume_ready(const struct mcpgw_bal_resume *r);

/* The id of the last whole event (valid while mcpgw_bal_resume_ready). */
const char *mcpgw_bal_resume_last_id(const struct mcpgw_bal_resume *r);

/* Append to out the kept request head with its Last-Event-ID set to the last whole event's id
 * (any Last-Event-ID it had is dropped), then the kept body. Call only when
 * mcpgw_bal_resume_ready. */
void mcpgw_bal_resume_head(const struct mcpgw_bal_resume *r, struct evbuffer *out);

/* A new stream carries on from here: its bytes start at an event boundary. */
void mcpgw_bal_resume_seam(struct mcpgw_bal_resume *r);

#endif
