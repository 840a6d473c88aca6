/* cluster.h - where this node's sessions live: the store's reports about them, acted upon. */
#ifndef MCPGW_NODE_CLUSTER_H
#define MCPGW_NODE_CLUSTER_H

#include "node/store.h"

/* The store's event sink: pass it to mcpgw_store_new with the struct mcpgw_node as arg.
 * moved and verified drop stale or lost local copies; hold and verified hold and release a
 * session's live events around a gap; resource events reach this node's subscribers. */
extern const struct mcpgw_store_events mcpgw_cluster_store_events;

#endif
