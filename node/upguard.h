/* upguard.h - the breaker, bulkhead and metrics of an upstream (node/breaker.h) for the calls
 * of its per-client sessions and children (upsess.c, upproc.c): they pass the same breaker and
 * the same max-inflight as the upstream's shared session, and count in the same series. A
 * guard names its upstream and the start it was admitted by, not a breaker pointer, because a
 * reload may replace the breaker while the call runs: the end of such a call is not counted. */
#ifndef MCPGW_NODE_UPGUARD_H
#define MCPGW_NODE_UPGUARD_H

#include "node/breaker.h"

#include <stddef.h>
#include <stdint.h>

struct mcpgw_node;

struct mcpgw_upguard {
    struct mcpgw_breaker_ticket tk;
    uint64_t epoch; /* mcpgw_upstream_breaker's */
};

/* May a client call go to the upstream named name (borrowed) now? 0 with g filled (in flight
 * until mcpgw_upguard_done), or -1 with why filled (the breaker is open, or max-inflight calls
 * are in flight): the client gets that sentence at once, nothing is queued. An upstream the
 * node does not run (no breaker) admits everything, untracked. */
int mcpgw_upguard_admit(struct mcpgw_node *n, const char *name, struct mcpgw_upguard *g, char *why,
                        size_t whylen);
/* The end of an admitted call; a guard already settled, or admitted by a breaker since
 * replaced, is ignored. cls: as mcpgw_breaker_done's. */
void mcpgw_upguard_done(struct mcpgw_node *n, const char *name, struct mcpgw_upguard *g,
                        enum mcpgw_breaker_outcome outcome, const char *cls);

#endif
