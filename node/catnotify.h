/* catnotify.h - telling clients that a list the node serves (tools, prompts, resources) changed:
 * recorded once for the cluster with a shared store, told live otherwise (docs/listen.md,
 * docs/federation.md "Upstream notifications after a failover"). */
#ifndef MCPGW_NODE_CATNOTIFY_H
#define MCPGW_NODE_CATNOTIFY_H

#include "node/listen.h"

struct mcpgw_node;

/* The upstreams' merged catalogue changed; kinds are bits of enum mcpgw_catalog_kind (a
 * template change is a change of the resource list). The upstream set's on_changed hook. Each
 * list kind whose hash (what serves the node and the catalogue's lists of that kind) differs
 * from the one this node last announced is announced: with a shared store as one event of the
 * cluster (the first node to report a hash the cluster has not announced records it; the rest
 * record nothing), else, or when the store cannot record it, live to this node's sessions and
 * listen streams without an event id. */
void mcpgw_catnotify_catalog(struct mcpgw_node *n, unsigned kinds);

/* What serves the node changed (a reload toggled the built-ins, or added the first upstream or
 * removed the last): every list kind is announced as above, if its hash moved. */
void mcpgw_catnotify_providers(struct mcpgw_node *n);

/* Announce a change of list l that no list made: the conformance fixtures that ask for one
 * (test_trigger_tool_change, test_trigger_prompt_change in node/builtin.c). Each call is a change
 * of its own, recorded and delivered as a real one. */
void mcpgw_catnotify_drill(struct mcpgw_node *n, enum mcpgw_listen_list l);

#endif
