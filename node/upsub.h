/* upsub.h - resources of shared upstreams: the upstream's updates are delivered to this node's
 * subscribers through the fan-out, and a session claimed here makes this node subscribe at the
 * upstream where it is not yet (the subscription itself, once per node, is
 * mcpgw_upstream_watch's). Per-client upstreams keep subscriptions in the client's own upstream
 * session: upsess.c. */
#ifndef MCPGW_NODE_UPSUB_H
#define MCPGW_NODE_UPSUB_H

#include "common/jsonrpc.h"

struct mcpgw_node;
struct mcpgw_session;

/* A session claimed here: its subscriptions to shared upstreams' resources need this node's. */
void mcpgw_upsub_claimed(struct mcpgw_node *n, struct mcpgw_session *s);
/* notifications/resources/updated from a shared upstream session: to this node's subscribers. */
void mcpgw_upsub_updated(struct mcpgw_node *n, const struct mcpgw_jsonrpc_msg *m);
void mcpgw_upsub_free(struct mcpgw_node *n);

#endif
