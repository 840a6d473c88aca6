/* membership.c - slot-stable publishing of node lists, and the static membership source. */
#include "balancer/membership.h"

#include "balancer/health.h"
#include "common/log.h"
#include "common/util.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int resolve(const char *addr, struct sockaddr_storage *sa, uint32_t *salen, char *err,
                   size_t errlen)
{
    char host[256], port[16];
    int p, rc;
    struct addrinfo hints, *res = NULL;
    if (mcpgw_parse_hostport(addr, host, sizeof(host), &p, err, errlen) < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", p);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve node address '%s': %s", addr, gai_strerror(rc));
        return -1;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *salen = (uint32_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int mcpgw_bal_membership_publish(struct mcpgw_bal_shared *sh,
                                 const struct mcpgw_bal_node_spec *nodes, int n, char *err,
                                 size_t errlen)
{
    struct mcpgw_bal_slot next[MCPGW_BAL_MAX_NODES];
    int slot_of[MCPGW_BAL_MAX_NODES];
    uint32_t nslots = 0;
    char e[256];

    memcpy(next, sh->slots, sizeof(next));
    for (int s = 0; s < MCPGW_BAL_MAX_NODES; s++)
        next[s].in_use = 0;
    /* Nodes already known keep their slot, in use or not. */
    for (int i = 0; i < n; i++) {
        slot_of[i] = -1;
        for (int s = 0; s < MCPGW_BAL_MAX_NODES; s++)
            if (sh->slots[s].id[0] && strcmp(sh->slots[s].id, nodes[i].id) == 0) {
                slot_of[i] = s;
                break;
            }
    }
    /* New nodes take never-used slots first, then slots of nodes since removed. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            if (slot_of[i] >= 0)
                continue;
            for (int s = 0; s < MCPGW_BAL_MAX_NODES; s++) {
                int taken = 0;
                if (pass == 0 ? sh->slots[s].id[0] != 0 : next[s].in_use)
                    continue;
                for (int j = 0; j < n; j++)
                    if (slot_of[j] == s)
                        taken = 1;
                if (taken)
                    continue;
                slot_of[i] = s;
                break;
            }
        }
    for (int i = 0; i < n; i++) {
        struct mcpgw_bal_slot *t;
        if (slot_of[i] < 0) {
            snprintf(err, errlen, "no free node slot (at most %d nodes)", MCPGW_BAL_MAX_NODES);
            return -1;
        }
        t = &next[slot_of[i]];
        if (resolve(nodes[i].addr, &t->sa, &t->salen, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "node %s: %s", nodes[i].id, e);
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        struct mcpgw_bal_slot *t = &next[slot_of[i]];
        if (strcmp(t->id, nodes[i].id) != 0 || strcmp(t->addr, nodes[i].addr) != 0 ||
            !sh->slots[slot_of[i]].in_use)
            t->up = 1; /* a new or moved node starts up; checks and passive marks correct it */
        if (strcmp(t->id, nodes[i].id) != 0) {
            /* The slot changes hands: its counters start over. */
            for (int w = 0; w < MCPGW_BAL_MAX_WORKERS; w++)
                memset(&sh->workers[w].nodes[slot_of[i]], 0, sizeof(struct mcpgw_bal_node_stats));
            sh->checks[slot_of[i]][0] = sh->checks[slot_of[i]][1] = 0;
        }
        snprintf(t->id, sizeof(t->id), "%s", nodes[i].id);
        snprintf(t->addr, sizeof(t->addr), "%s", nodes[i].addr);
        t->in_use = 1;
        t->draining = nodes[i].draining;
        t->load = 0;
        if ((uint32_t)slot_of[i] + 1 > nslots)
            nslots = (uint32_t)slot_of[i] + 1;
    }
    mcpgw_bal_shared_write_begin(sh);
    for (int s = 0; s < MCPGW_BAL_MAX_NODES; s++) {
        struct mcpgw_bal_slot *d = &sh->slots[s];
        uint32_t up = next[s].up;
        memcpy(d->id, next[s].id, sizeof(d->id));
        memcpy(d->addr, next[s].addr, sizeof(d->addr));
        memcpy(&d->sa, &next[s].sa, sizeof(d->sa));
        d->salen = next[s].salen;
        d->in_use = next[s].in_use;
        d->draining = next[s].draining;
        d->load = next[s].load;
        MCPGW_STORE(&d->up, up);
    }
    __atomic_store_n(&sh->nslots, nslots, __ATOMIC_RELAXED);
    mcpgw_bal_shared_write_end(sh);
    return 0;
}

/* ---- static source ---- */

struct static_source {
    struct mcpgw_bal_membership base;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_health *health;
};

static struct mcpgw_bal_membership *static_start(struct event_base *base,
                                                 struct mcpgw_bal_shared *sh,
                                                 const struct mcpgw_bal_config *cfg, char *err,
                                                 size_t errlen)
{
    struct static_source *s;
    if (mcpgw_bal_membership_publish(sh, cfg->nodes, cfg->nnodes, err, errlen) < 0)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->base.ops = &mcpgw_bal_membership_static;
    s->sh = sh;
    s->health = mcpgw_bal_health_new(base, sh, cfg);
    if (!s->health) {
        snprintf(err, errlen, "cannot start health checks (libevent)");
        free(s);
        return NULL;
    }
    mcpgw_bal_health_kick(s->health);
    return &s->base;
}

static int static_reload(struct mcpgw_bal_membership *m, const struct mcpgw_bal_config *cfg,
                         char *err, size_t errlen)
{
    struct static_source *s = (struct static_source *)m;
    if (mcpgw_bal_membership_publish(s->sh, cfg->nodes, cfg->nnodes, err, errlen) < 0)
        return -1;
    mcpgw_bal_health_configure(s->health, cfg);
    mcpgw_bal_health_kick(s->health);
    return 0;
}

static void static_stop(struct mcpgw_bal_membership *m)
{
    struct static_source *s = (struct static_source *)m;
    if (!s)
        return;
    mcpgw_bal_health_free(s->health);
    free(s);
}

const struct mcpgw_bal_membership_ops mcpgw_bal_membership_static = {
    .name = "static",
    .start = static_start,
    .reload = static_reload,
    .stop = static_stop,
};
