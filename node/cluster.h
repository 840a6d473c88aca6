/* cluster.h - where this node's sessions live: claims and moves, losses and drops, idle expiry,
 * the stall detector and the claims back after a stall, the drain; the store's event sink.
 *
 * Every way a session leaves this node goes through here (moved, lost, expired, deleted,
 * drained, shut down), and so does every claim; initialize (protocol.c) registers new ones. */
#ifndef MCPGW_NODE_CLUSTER_H
#define MCPGW_NODE_CLUSTER_H

#include "node/store.h"

#include <stddef.h>

struct mcpgw_node;
struct mcpgw_session;
struct mcpgw_resume;

/* The store's event sink: pass it to mcpgw_store_new with the struct mcpgw_node as arg.
 * moved and verified drop stale or lost local copies; hold and verified hold and release a
 * session's live events around a gap; resource events reach this node's subscribers. */
extern const struct mcpgw_store_events mcpgw_cluster_store_events;

/* Start the periodic work (idle expiry every second; the stall detector every 100 ms at the
 * loop's top priority). */
void mcpgw_cluster_start(struct mcpgw_node *n);
/* Stop it, and drop every local session (their shared records stay for other nodes). */
void mcpgw_cluster_stop(struct mcpgw_node *n);
/* Drain (SIGTERM): take no new sessions, end GET streams so clients resume elsewhere, let
 * in-flight calls finish within the drain timeout, then leave the loop. */
void mcpgw_cluster_drain(struct mcpgw_node *n);

/* Take over the session sid (len bytes) that this node does not hold, then done(arg, s, err)
 * with s registered here (borrowed), or NULL and err. after: with a shared store, the GET
 * stream's resume point ("<g>-<seq>") to replay along with the claim, in one round trip
 * (mcpgw_stream_claim_resume sets *early), else NULL. */
void mcpgw_cluster_claim(struct mcpgw_node *n, const char *sid, size_t len, const char *after,
                         mcpgw_store_claim_fn done, void *arg, struct mcpgw_resume **early);
/* Drop this node's copy only (expired here, moved away, or lost): aborts its calls, ends its
 * GET stream, removes it from the registry and frees it. */
void mcpgw_cluster_drop(struct mcpgw_node *n, struct mcpgw_session *s);
/* End a session everywhere (DELETE): removes its store records, then drops it here. */
void mcpgw_cluster_destroy(struct mcpgw_node *n, struct mcpgw_session *s);

#endif
