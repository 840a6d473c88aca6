/* sse.h - Server-Sent Events framing (text/event-stream). */
#ifndef MCPGW_COMMON_SSE_H
#define MCPGW_COMMON_SSE_H

#include <stddef.h>

struct evbuffer;

/* Append one event: optional "id:", optional "event:", optional "retry:" (retry_ms > 0), and the
 * data split into "data:" lines at every newline (CR, LF or CRLF), then the blank line. data may
 * be NULL for an event without data lines (a priming event carries "data:" with nothing). */
void mcpgw_sse_format(struct evbuffer *out, const char *id, const char *event, long retry_ms,
                      const char *data, size_t len);

/* Incremental SSE parser (for clients such as the load generator and tests). Feed bytes; each
 * complete event is delivered with its id (NULL when absent), event name and data (lines joined
 * with '\n'). Returns 0, or -1 when a line exceeds max_line bytes. */
struct mcpgw_sse_parser;
typedef void (*mcpgw_sse_event_fn)(void *arg, const char *id, const char *event, const char *data,
                                   size_t len);
struct mcpgw_sse_parser *mcpgw_sse_parser_new(size_t max_line, mcpgw_sse_event_fn cb, void *arg);
int mcpgw_sse_parser_feed(struct mcpgw_sse_parser *p, const char *buf, size_t len);

/* Also deliver comment lines (": text"): text is what follows the colon and one space, not
 * NUL-terminated, borrowed until the callback returns. */
typedef void (*mcpgw_sse_comment_fn)(void *arg, const char *text, size_t len);
void mcpgw_sse_parser_on_comment(struct mcpgw_sse_parser *p, mcpgw_sse_comment_fn cb);
void mcpgw_sse_parser_free(struct mcpgw_sse_parser *p);

#endif
