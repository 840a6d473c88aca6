/* upstream.c - a worker's connections to its nodes: the set, the in-use lists, cuts and
 * sweeps (see upstream.h; the two kinds are in upstream_h1.c and upstream_mux.c). */
#include "balancer/upstream.h"

#include "balancer/nodes.h"
#include "balancer/upstream_impl.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

const char *mcpgw_bal_upstream_end_str(enum mcpgw_bal_upstream_end how)
{
    static const char *const names[MCPGW_BAL_UPSTREAM_END_COUNT] = {
        "failed", "unsent", "unsent-again", "eof", "error", "lost", "timeout", "cut"};
    return how < MCPGW_BAL_UPSTREAM_END_COUNT ? names[how] : "?";
}

struct mcpgw_bal_node_stats *mcpgw_bal_upstream_stats(struct mcpgw_bal_upstream_set *set, int slot)
{
    return mcpgw_bal_nodes_stats(set->nodes, slot);
}

uint32_t mcpgw_bal_upstream_now(const struct mcpgw_bal_upstream_set *set)
{
    return (uint32_t)(mcpgw_now_ms() - set->t0);
}

void mcpgw_bal_upstream_init(struct mcpgw_bal_upstream *u, const struct mcpgw_bal_upstream_ops *ops,
                             struct mcpgw_bal_upstream_set *set, int slot)
{
    struct upool *p = &set->slots[slot];
    u->ops = ops;
    u->set = set;
    u->slot = (int16_t)slot;
    u->counted = 1;
    u->aprev = NULL;
    u->anext = p->act_first;
    if (p->act_first)
        p->act_first->aprev = u;
    p->act_first = u;
    p->active++;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(set, slot)->active, (int64_t)p->active);
}

void mcpgw_bal_upstream_uncount(struct mcpgw_bal_upstream *u)
{
    struct upool *p;
    if (!u->counted)
        return;
    p = &u->set->slots[u->slot];
    if (u->aprev)
        u->aprev->anext = u->anext;
    else
        p->act_first = u->anext;
    if (u->anext)
        u->anext->aprev = u->aprev;
    u->aprev = u->anext = NULL;
    u->counted = 0;
    p->active--;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(u->set, u->slot)->active, (int64_t)p->active);
}

void mcpgw_bal_upstream_reown(struct mcpgw_bal_upstream *u, void *owner)
{
    u->owner = owner;
}

struct mcpgw_bal_upstream *mcpgw_bal_upstream_get(struct mcpgw_bal_upstream_set *set, int slot,
                                                  int want_mux,
                                                  const struct mcpgw_bal_upstream_cb *cb,
                                                  void *owner, int *err)
{
    struct mcpgw_bal_upstream *u = NULL;
    *err = 0;
    if (want_mux && set->cfg->stream_mux)
        u = mcpgw_bal_upstream_mux_get(set, slot, err);
    if (!u && !*err)
        u = mcpgw_bal_upstream_h1_get(set, slot, err);
    if (u) {
        u->cb = cb;
        u->owner = owner;
    }
    return u;
}

void mcpgw_bal_upstream_close_idle(struct mcpgw_bal_upstream_set *set, int slot)
{
    mcpgw_bal_upstream_h1_close_idle(set, slot);
}

void mcpgw_bal_upstream_close_node(struct mcpgw_bal_upstream_set *set, int slot)
{
    mcpgw_bal_upstream_h1_close_idle(set, slot);
    mcpgw_bal_upstream_mux_close(set, slot);
    set->slots[slot].no_mux_ms = 0;
}

int mcpgw_bal_upstream_busy(const struct mcpgw_bal_upstream_set *set, int slot)
{
    return set->slots[slot].act_first != NULL;
}

/* (HAProxy's on-marked-down shutdown-sessions.) Each upstream is taken off the in-use list
 * before its owner hears of it, so the walk always moves on whatever the owner does. */
unsigned mcpgw_bal_upstream_cut(struct mcpgw_bal_upstream_set *set, int slot, int sent_only)
{
    struct upool *p = &set->slots[slot];
    struct mcpgw_bal_upstream *skip = NULL; /* every upstream before it is being kept */
    unsigned n = 0;
    for (;;) {
        struct mcpgw_bal_upstream *u = skip ? skip->anext : p->act_first;
        while (u && sent_only && !u->ops->sent(u)) {
            skip = u;
            u = u->anext;
        }
        if (!u)
            break;
        n++;
        mcpgw_bal_upstream_uncount(u);
        u->cb->end(u->owner, MCPGW_BAL_UPSTREAM_CUT, 0, "its node is down");
    }
    return n;
}

void mcpgw_bal_upstream_sweep(struct mcpgw_bal_upstream_set *set)
{
    mcpgw_bal_upstream_h1_sweep(set);
    mcpgw_bal_upstream_mux_sweep(set);
}

void mcpgw_bal_upstream_drain(struct mcpgw_bal_upstream_set *set)
{
    set->draining = 1;
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++)
        mcpgw_bal_upstream_h1_close_idle(set, i);
    mcpgw_bal_upstream_mux_drain(set);
}

struct mcpgw_bal_upstream_set *mcpgw_bal_upstream_set_new(struct event_base *base,
                                                          const struct mcpgw_bal_config *cfg,
                                                          struct mcpgw_bal_nodes *nodes)
{
    struct mcpgw_bal_upstream_set *set = xcalloc(1, sizeof(*set));
    set->base = base;
    set->cfg = cfg;
    set->nodes = nodes;
    set->t0 = mcpgw_now_ms();
    return set;
}

void mcpgw_bal_upstream_set_free(struct mcpgw_bal_upstream_set *set)
{
    if (!set)
        return;
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        mcpgw_bal_upstream_h1_close_idle(set, i);
        mcpgw_bal_upstream_mux_close(set, i);
    }
    free(set);
}
