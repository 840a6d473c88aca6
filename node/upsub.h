/* upsub.h - resource subscriptions at shared upstream sessions: a resource of a shared upstream
 * is subscribed at the upstream once per node, whatever the number of this node's client
 * sessions subscribed to it, and the upstream's updates are delivered to this node's
 * subscribers through the fan-out. (Per-client upstreams keep subscriptions in the client's own
 * upstream session: upsess.c.) */
#ifndef MCPGW_NODE_UPSUB_H
#define MCPGW_NODE_UPSUB_H

#include "common/jsonrpc.h"

struct mcpgw_node;
struct mcpgw_session;

/* The provider's subscribe: 1 when uri is a resource of a shared upstream (subscribed there for
 * this node if it was not yet), else 0. An unsubscribe keeps the node's subscription at the
 * upstream (other sessions of this node may come back to it; updates nobody here wants are
 * dropped by the registry). */
int mcpgw_upsub_watch(struct mcpgw_node *n, const char *uri, int on);
/* A session claimed here: its subscriptions to shared upstreams' resources need this node's. */
void mcpgw_upsub_claimed(struct mcpgw_node *n, struct mcpgw_session *s);
/* notifications/resources/updated from a shared upstream session: to this node's subscribers. */
void mcpgw_upsub_updated(struct mcpgw_node *n, const struct mcpgw_jsonrpc_msg *m);
void mcpgw_upsub_free(struct mcpgw_node *n);

#endif
