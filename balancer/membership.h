/* membership.h - where the node table comes from: a pluggable source run by the master.
 *
 * A membership source publishes the nodes (id, address, draining, up/down verdicts, optional
 * load hints) into the shared table that every worker routes on. The static source serves a
 * configured node list with active health checks; a gossip source (SWIM) plugs in through the
 * same table of operations with the cluster-state issue. Workers never talk to a source: they
 * read the table (shared.h) and add their own passive marks. */
#ifndef MCPGW_BALANCER_MEMBERSHIP_H
#define MCPGW_BALANCER_MEMBERSHIP_H

#include "balancer/config.h"
#include "balancer/shared.h"

#include <stddef.h>

struct event_base;

/* Base of every source's state; implementations embed it first. */
struct mcpgw_bal_membership {
    const struct mcpgw_bal_membership_ops *ops;
};

struct mcpgw_bal_membership_ops {
    const char *name;
    /* Publish the initial table and start tracking on base (borrowed, as are sh and cfg for
     * this call only). Returns the source, or NULL with a sentence in err. */
    struct mcpgw_bal_membership *(*start)(struct event_base *base, struct mcpgw_bal_shared *sh,
                                          const struct mcpgw_bal_config *cfg, char *err,
                                          size_t errlen);
    /* Apply a reloaded configuration (node list, draining marks, check settings). Connections
     * in flight are untouched. Returns 0, or -1 with err (the old table stays). */
    int (*reload)(struct mcpgw_bal_membership *m, const struct mcpgw_bal_config *cfg, char *err,
                  size_t errlen);
    /* Stop tracking and free. */
    void (*stop)(struct mcpgw_bal_membership *m);
};

/* Static node list + active health checks (health.h). */
extern const struct mcpgw_bal_membership_ops mcpgw_bal_membership_static;
/* The cluster's SWIM gossip, joined as a non-serving member (membership_gossip.c). */
extern const struct mcpgw_bal_membership_ops mcpgw_bal_membership_gossip;

/* Publish a node list into the table, for any source. A node keeps its slot across calls (so
 * workers' pools and the per-node metrics stay attached to it); new nodes take free slots and
 * start up. Addresses are resolved here (getaddrinfo, blocking). Returns 0, or -1 with err and
 * the table unchanged. */
int mcpgw_bal_membership_publish(struct mcpgw_bal_shared *sh,
                                 const struct mcpgw_bal_node_spec *nodes, int n, char *err,
                                 size_t errlen);

#endif
