/* upstream_impl.h - the state upstream.c shares with its two kinds, upstream_h1.c and
 * upstream_mux.c; included by those three files only (an internal trio, like common/httpd.c
 * and common/httpd_h2.c). */
#ifndef MCPGW_BALANCER_UPSTREAM_IMPL_H
#define MCPGW_BALANCER_UPSTREAM_IMPL_H

#include "balancer/shared.h"
#include "balancer/upstream.h"

struct mcpgw_mux;
struct up_h1;

/* One node slot's connections. */
struct upool {
    struct up_h1 *pool_first, *pool_last; /* idle HTTP/1.1 connections, most recent first */
    uint32_t npool;
    struct mcpgw_bal_upstream *act_first; /* in use (and counted) */
    uint32_t active;
    struct mcpgw_mux *mux;     /* --stream-mux: the HTTP/2 connection carrying GET streams */
    struct mcpgw_mux *old_mux; /* one that takes no new streams (GOAWAY) until its last ends */
    uint64_t no_mux_ms;        /* when the node was found not to speak HTTP/2 (0: never) */
    uint32_t nmux, nstreams;   /* HTTP/2 connections open, streams on them (for /metrics) */
};

struct mcpgw_bal_upstream_set {
    struct event_base *base;
    const struct mcpgw_bal_config *cfg;
    struct mcpgw_bal_nodes *nodes;
    uint64_t t0;
    int draining;
    struct up_h1 *wait_first, *wait_last; /* HTTP/1.1 requests without a response head yet */
    struct upool slots[MCPGW_BAL_MAX_NODES];
};

/* upstream.c */
struct mcpgw_bal_node_stats *mcpgw_bal_upstream_stats(struct mcpgw_bal_upstream_set *set, int slot);
/* Fill u's common part and put it on slot's in-use list. */
void mcpgw_bal_upstream_init(struct mcpgw_bal_upstream *u, const struct mcpgw_bal_upstream_ops *ops,
                             struct mcpgw_bal_upstream_set *set, int slot);
/* Milliseconds since the set started (for pool ages). */
uint32_t mcpgw_bal_upstream_now(const struct mcpgw_bal_upstream_set *set);

/* upstream_h1.c: pooled HTTP/1.1 connections. */
struct mcpgw_bal_upstream *mcpgw_bal_upstream_h1_get(struct mcpgw_bal_upstream_set *set, int slot,
                                                     int *err);
void mcpgw_bal_upstream_h1_close_idle(struct mcpgw_bal_upstream_set *set, int slot);
void mcpgw_bal_upstream_h1_sweep(struct mcpgw_bal_upstream_set *set);

/* upstream_mux.c: streams of the node's HTTP/2 connection. NULL with *err 0 when the request
 * should take a connection of its own instead (the node does not speak HTTP/2, or both of its
 * connections are closing or full). */
struct mcpgw_bal_upstream *mcpgw_bal_upstream_mux_get(struct mcpgw_bal_upstream_set *set, int slot,
                                                      int *err);
void mcpgw_bal_upstream_mux_close(struct mcpgw_bal_upstream_set *set, int slot);
void mcpgw_bal_upstream_mux_sweep(struct mcpgw_bal_upstream_set *set);
void mcpgw_bal_upstream_mux_drain(struct mcpgw_bal_upstream_set *set);

#endif
