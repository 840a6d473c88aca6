/* keepalive.h - SSE keep-alive comments on the node's open streams, so that a client gone
 * without a FIN or RST (a NAT that dropped its mapping) is noticed and its session idles out. */
#ifndef MCPGW_NODE_KEEPALIVE_H
#define MCPGW_NODE_KEEPALIVE_H

struct mcpgw_node;
struct mcpgw_keepalive;

/* Start the ticker on n's loop. Every n->cfg.sse_keepalive_ms (read at each tick, so a reload
 * applies; 0: nothing is written) each session's GET stream and each of its calls' SSE response
 * streams gets one comment (mcpgw_frame_keepalive), counted in n->st.sse_keepalives. The work is
 * spread over the interval a slice of registry shards per second, never all streams at once.
 * A comment to a vanished peer stays unacknowledged, and the socket's TCP_USER_TIMEOUT (set by
 * the HTTP server) then fails it: its close callbacks detach the stream. */
struct mcpgw_keepalive *mcpgw_keepalive_new(struct mcpgw_node *n);
void mcpgw_keepalive_free(struct mcpgw_keepalive *k);

#endif
