/* upguard.c - an upstream's breaker for its per-client calls (see upguard.h). */
#include "node/upguard.h"

#include "node/upstream.h"

int mcpgw_upguard_admit(struct mcpgw_node *n, const char *name, struct mcpgw_upguard *g, char *why,
                        size_t whylen)
{
    struct mcpgw_breaker *b = mcpgw_upstream_breaker(n, name, &g->epoch);
    g->tk.live = 0;
    if (!b)
        return 0;
    return mcpgw_breaker_admit(b, &g->tk, why, whylen) == MCPGW_BREAKER_ADMIT ? 0 : -1;
}

void mcpgw_upguard_done(struct mcpgw_node *n, const char *name, struct mcpgw_upguard *g,
                        enum mcpgw_breaker_outcome outcome, const char *cls)
{
    struct mcpgw_breaker *b;
    uint64_t epoch;
    if (!g->tk.live)
        return;
    b = mcpgw_upstream_breaker(n, name, &epoch);
    if (b && epoch == g->epoch)
        mcpgw_breaker_done(b, &g->tk, outcome, cls);
    g->tk.live = 0;
}
