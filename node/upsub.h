/* upsub.h - resources of shared upstreams: the upstream's updates are delivered to this node's
 * subscribers through the fan-out, and a session claimed here makes this node subscribe at the
 * upstream where it is not yet (the subscription itself, once per node, is
 * mcpgw_upstream_watch's). Where a subscription had a gap (a session claimed from a dead node,
 * the upstream's session started anew), the sessions it covers get one update of each URI once
 * the subscription is in place again, so that no update is lost (docs/federation.md, "Updates
 * from shared upstreams"). Per-client upstreams keep subscriptions in the client's own upstream
 * session: upsess.c. */
#ifndef MCPGW_NODE_UPSUB_H
#define MCPGW_NODE_UPSUB_H

#include "common/jsonrpc.h"

struct mcpgw_node;
struct mcpgw_session;

/* A session claimed here (registered, with its subscriptions): they need this node's
 * subscriptions at the upstreams, and each of its URIs of a shared upstream gets one
 * notifications/resources/updated on s's GET stream once this node's subscription to it is
 * acknowledged and the stream is attached and not replaying (through the fan-out's queue,
 * behind what was queued before; given up after 5 min without a GET stream). */
void mcpgw_upsub_claimed(struct mcpgw_node *n, struct mcpgw_session *s);
/* A shared upstream acknowledged this node's subscription to uri (borrowed until return).
 * renewed (its session started anew): every subscriber of uri here gets one update, as live
 * updates go. Claimed sessions waiting for it are looked at again. */
void mcpgw_upsub_watched(struct mcpgw_node *n, const char *uri, int renewed);
/* notifications/resources/updated from a shared upstream session: to this node's subscribers. */
void mcpgw_upsub_updated(struct mcpgw_node *n, const struct mcpgw_jsonrpc_msg *m);
void mcpgw_upsub_free(struct mcpgw_node *n);

#endif
