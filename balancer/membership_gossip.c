/* membership_gossip.c - the node table from the cluster's SWIM gossip.
 *
 * The master joins gossip as a non-serving member and republishes the table on every change:
 * each serving member is a node at its advertised HTTP address; alive and suspect members are
 * up, dead ones down (kept in the table until gossip forgets them, so their sessions' HRW
 * choice stays stable); a member announcing draining is "leaving" (no new sessions and none of
 * its own: they move to other nodes while its exchanges in flight finish); session counts are
 * the load hint. Each refresh also publishes, for alive members, when gossip last heard from
 * them (pass_ms), which lifts a worker's passive down mark set before that: with gossip there are
 * no active checks, and a node gossip hears from is tried again within a second. Only evidence
 * newer than the mark counts: a member killed a moment ago stays "alive" in the view until a probe
 * of it fails, and every other member's change republishes the table, so lifting on "alive"
 * alone put it back into rotation many times a second. A suspect member stays up (it may only be
 * slow) but lifts nothing. */
#include "balancer/membership.h"

#include "common/log.h"
#include "common/util.h"
#include "gossip/swim.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gossip_source {
    struct mcpgw_bal_membership base;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_gossip *g;
    struct event *tick;
    char **seeds;
    int nseeds;
    struct mcpgw_bal_node_spec fallback[MCPGW_BAL_MAX_NODES]; /* --nodes, until gossip knows */
    int nfallback;
};

static int slot_of(struct mcpgw_bal_shared *sh, const char *id)
{
    for (int s = 0; s < MCPGW_BAL_MAX_NODES; s++)
        if (sh->slots[s].in_use && strcmp(sh->slots[s].id, id) == 0)
            return s;
    return -1;
}

static void republish(struct gossip_source *gs)
{
    struct mcpgw_bal_node_spec specs[MCPGW_BAL_MAX_NODES];
    uint32_t up[MCPGW_BAL_MAX_NODES], load[MCPGW_BAL_MAX_NODES];
    uint64_t heard[MCPGW_BAL_MAX_NODES]; /* evidence of life for passive marks; 0: none */
    int n = 0, count = mcpgw_gossip_member_count(gs->g), fallback = 0;
    char err[256];

    for (int i = 0; i < count && n < MCPGW_BAL_MAX_NODES; i++) {
        const struct mcpgw_member *m = mcpgw_gossip_member_get(gs->g, i);
        if (m->is_self || !m->serving || !m->http_addr[0] || m->state == MCPGW_MEMBER_LEFT)
            continue;
        snprintf(specs[n].id, sizeof(specs[n].id), "%s", m->id);
        snprintf(specs[n].addr, sizeof(specs[n].addr), "%s", m->http_addr);
        specs[n].draining = m->draining || m->state == MCPGW_MEMBER_DRAINING ? 2 : 0;
        up[n] = m->state == MCPGW_MEMBER_ALIVE || m->state == MCPGW_MEMBER_SUSPECT ||
                m->state == MCPGW_MEMBER_DRAINING;
        heard[n] =
            m->state == MCPGW_MEMBER_ALIVE || m->state == MCPGW_MEMBER_DRAINING ? m->heard_ms : 0;
        load[n] = m->sessions;
        n++;
    }
    /* Until gossip has found any node, keep routing to the configured ones. */
    if (n == 0 && gs->nfallback) {
        memcpy(specs, gs->fallback, sizeof(specs[0]) * (size_t)gs->nfallback);
        n = gs->nfallback;
        for (int i = 0; i < n; i++)
            up[i] = 1, load[i] = 0, heard[i] = mcpgw_now_ms();
        fallback = 1;
    }
    if (mcpgw_bal_membership_publish(gs->sh, specs, n, err, sizeof(err)) < 0) {
        log_warn("gossip membership: cannot publish the node table: %s", err);
        return;
    }
    MCPGW_STORE(&gs->sh->fallback, (uint32_t)fallback);
    for (int i = 0; i < n; i++) {
        int s = slot_of(gs->sh, specs[i].id);
        if (s < 0)
            continue;
        MCPGW_STORE(&gs->sh->slots[s].up, up[i]);
        MCPGW_STORE(&gs->sh->slots[s].load, load[i]);
        if (heard[i] > MCPGW_LOAD(&gs->sh->slots[s].pass_ms))
            MCPGW_STORE(&gs->sh->slots[s].pass_ms, heard[i]);
    }
}

static void on_change(void *arg, const struct mcpgw_member *m, enum mcpgw_member_state old)
{
    struct gossip_source *gs = arg;
    if (m->serving)
        log_info("gossip: node %s is %s%s", m->id, mcpgw_member_state_str(m->state),
                 m->draining ? " (draining)" : "");
    republish(gs);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gossip_source *gs = arg;
    republish(gs);
    gs->sh->gossip = *mcpgw_gossip_stats(gs->g);
}

static char **split(const char *s, int *n)
{
    char **v = NULL, *copy = xstrdup(s), *tok, *save = NULL;
    *n = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        v = xrealloc(v, (size_t)(*n + 1) * sizeof(*v));
        v[(*n)++] = xstrdup(tok);
    }
    free(copy);
    return v;
}

static void free_source(struct gossip_source *gs)
{
    if (gs->tick)
        event_free(gs->tick);
    if (gs->g) {
        mcpgw_gossip_leave(gs->g);
        mcpgw_gossip_free(gs->g);
    }
    for (int i = 0; i < gs->nseeds; i++)
        free(gs->seeds[i]);
    free(gs->seeds);
    free(gs);
}

static struct mcpgw_bal_membership *gossip_start(struct event_base *base,
                                                 struct mcpgw_bal_shared *sh,
                                                 const struct mcpgw_bal_config *cfg, char *err,
                                                 size_t errlen)
{
    struct gossip_source *gs = xcalloc(1, sizeof(*gs));
    struct mcpgw_gossip_config gc;
    struct timeval one_s = {1, 0};
    char id[MCPGW_BAL_ADDR_MAX + 16];

    gs->base.ops = &mcpgw_bal_membership_gossip;
    gs->sh = sh;
    gs->nfallback = cfg->nnodes;
    memcpy(gs->fallback, cfg->nodes, sizeof(cfg->nodes[0]) * (size_t)cfg->nnodes);
    gs->seeds = split(cfg->gossip_seeds, &gs->nseeds);
    /* Balancers need unique member ids too: the gossip address is unique. */
    snprintf(id, sizeof(id), "balancer@%s",
             cfg->gossip_advertise[0] ? cfg->gossip_advertise : cfg->gossip_bind);
    mcpgw_gossip_config_defaults(&gc);
    gc.node_id = id;
    gc.bind_addr = cfg->gossip_bind;
    gc.advertise_addr = cfg->gossip_advertise[0] ? cfg->gossip_advertise : NULL;
    gc.seeds = (const char *const *)gs->seeds;
    gc.nseeds = gs->nseeds;
    gc.serving = 0;
    gc.keyring_path = cfg->gossip_keyring[0] ? cfg->gossip_keyring : NULL;
    gc.on_change = on_change;
    gc.arg = gs;
    gs->g = mcpgw_gossip_new(base, &gc, err, errlen);
    if (!gs->g || mcpgw_gossip_start(gs->g) < 0) {
        if (gs->g)
            snprintf(err, errlen, "cannot start gossip on %s", cfg->gossip_bind);
        free_source(gs);
        return NULL;
    }
    republish(gs);
    sh->gossip_on = 1;
    sh->gossip = *mcpgw_gossip_stats(gs->g);
    gs->tick = event_new(base, -1, EV_PERSIST, on_tick, gs);
    event_add(gs->tick, &one_s);
    log_info("membership: gossip on %s (seeds %s)", cfg->gossip_bind,
             cfg->gossip_seeds[0] ? cfg->gossip_seeds : "none");
    return &gs->base;
}

static int gossip_reload(struct mcpgw_bal_membership *m, const struct mcpgw_bal_config *cfg,
                         char *err, size_t errlen)
{
    struct gossip_source *gs = (struct gossip_source *)m;
    /* the key ring first: a bad file refuses the whole reload, like any bad setting */
    if (cfg->gossip_keyring[0]) {
        int rc = mcpgw_gossip_reload_keyring(gs->g, cfg->gossip_keyring, err, errlen);
        gs->sh->gossip = *mcpgw_gossip_stats(gs->g);
        if (rc < 0)
            return -1;
    }
    gs->nfallback = cfg->nnodes;
    memcpy(gs->fallback, cfg->nodes, sizeof(cfg->nodes[0]) * (size_t)cfg->nnodes);
    republish(gs);
    return 0;
}

static void gossip_stop(struct mcpgw_bal_membership *m)
{
    if (m)
        free_source((struct gossip_source *)m);
}

const struct mcpgw_bal_membership_ops mcpgw_bal_membership_gossip = {
    .name = "gossip",
    .start = gossip_start,
    .reload = gossip_reload,
    .stop = gossip_stop,
};
