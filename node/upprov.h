/* upprov.h - the provider (provider.h) that serves clients from the upstream servers: merged
 * lists from the catalogue, and tools/call, resources/read, prompts/get, completion/complete
 * routed to the owning upstream with the prefix removed; progress, logging and cancellation
 * carried across. */
#ifndef MCPGW_NODE_UPPROV_H
#define MCPGW_NODE_UPPROV_H

#include "node/provider.h"
#include "node/upstream.h"

extern const struct mcpgw_provider_ops mcpgw_upprov_provider;
/* What node/upstream.c tells this provider (pass to mcpgw_upstream_start). */
extern const struct mcpgw_upstream_hooks mcpgw_upprov_hooks;

#endif
