/* lines.h - newline-delimited framing over an evbuffer (stdio MCP: one JSON-RPC message per
 * line). The framing is kept apart from the child process that feeds it so it can be fuzzed
 * and unit tested on its own. */
#ifndef MCPGW_LINES_H
#define MCPGW_LINES_H

#include <event2/buffer.h>
#include <stddef.h>

/* Called once per whole line, without its '\n' (a '\r' before it is left to the caller).
 * Returns nonzero to stop taking lines: the line just handed over stays drained, the rest of
 * the buffer stays for a later call. */
typedef int (*mcpgw_lines_fn)(void *arg, const char *line, size_t len);

/* Takes every whole line out of b and hands it to fn. A line longer than max bytes is
 * dropped, with everything up to and including its newline, even when it arrives over several
 * calls: *discard carries "the start of an over-long line was already dropped" between calls
 * (start it at 0). A partial line of at most max bytes stays in b for the next call.
 * Returns how many over-long lines were started being dropped in this call (for a log line). */
unsigned mcpgw_lines_take(struct evbuffer *b, size_t max, int *discard, mcpgw_lines_fn fn,
                          void *arg);

#endif
