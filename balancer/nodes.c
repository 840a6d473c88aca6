/* nodes.c - one worker's view of the node table, passive marks and node choice (see nodes.h). */
#include "balancer/nodes.h"

#include "common/route.h"
#include "common/log.h"
#include "common/net.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* This worker's view of one node slot. */
struct wnode {
    char id[MCPGW_BAL_ID_MAX];
    char addr[MCPGW_BAL_ADDR_MAX];
    struct sockaddr_storage sa;
    socklen_t salen;
    uint8_t in_use, draining, passive;
    uint8_t seen_up;   /* the table's up verdict at the last refresh */
    uint64_t down_ms;  /* when the passive mark was set */
    uint32_t next_src; /* round robin over cfg->sources */
};

struct mcpgw_bal_nodes {
    struct event_base *base;
    const struct mcpgw_bal_config *cfg;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_worker_stats *st;
    const struct mcpgw_bal_nodes_cb *cb;
    void *arg;
    struct event *refused_ev; /* runs down(slot, 1) for the slots in refused */
    uint64_t refused;         /* bitmap of slots whose connect was refused, not yet told */
    uint32_t gen, nslots;
    uint64_t rng;
    struct wnode nodes[MCPGW_BAL_MAX_NODES];
};

struct mcpgw_bal_node_stats *mcpgw_bal_nodes_stats(struct mcpgw_bal_nodes *n, int slot)
{
    return &n->st->nodes[slot];
}

/* Copy the identities; returns a bitmap of the slots whose identity changed. */
static uint64_t copy_table(struct mcpgw_bal_nodes *n)
{
    static struct mcpgw_bal_slot table[MCPGW_BAL_MAX_NODES];
    uint64_t changed = 0;
    uint32_t cnt;
    n->gen = mcpgw_bal_shared_read(n->sh, table, &cnt);
    for (uint32_t i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        struct wnode *w = &n->nodes[i];
        const struct mcpgw_bal_slot *s = &table[i];
        int in_use = i < cnt && s->in_use;
        if (!in_use || strcmp(w->id, s->id) != 0 || strcmp(w->addr, s->addr) != 0) {
            if (w->in_use || in_use)
                changed |= 1ull << i;
            w->passive = 0;
            MCPGW_STORE(&n->st->nodes[i].passive_down, 0);
        }
        w->in_use = (uint8_t)in_use;
        if (!in_use) {
            w->id[0] = w->addr[0] = '\0';
            continue;
        }
        memcpy(w->id, s->id, sizeof(w->id));
        memcpy(w->addr, s->addr, sizeof(w->addr));
        memcpy(&w->sa, &s->sa, sizeof(w->sa));
        w->salen = s->salen;
        w->draining = (uint8_t)s->draining;
    }
    n->nslots = cnt;
    return changed;
}

void mcpgw_bal_nodes_refresh(struct mcpgw_bal_nodes *n)
{
    if (mcpgw_bal_shared_gen(n->sh) != n->gen) {
        uint64_t changed = copy_table(n);
        for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++)
            if (changed >> i & 1)
                n->cb->changed(n->arg, i);
    }
    /* A node the table now says is down (dead, or paused long enough for gossip to say so). A
     * leaving (draining) node stays up: its exchanges finish. */
    for (uint32_t i = 0; i < n->nslots; i++) {
        struct wnode *w = &n->nodes[i];
        uint8_t up = w->in_use && MCPGW_LOAD(&n->sh->slots[i].up);
        int was_up = w->seen_up;
        w->seen_up = up;
        if (was_up && !up)
            n->cb->down(n->arg, (int)i, 0);
    }
}

static void on_refused(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_nodes *n = arg;
    (void)fd, (void)what;
    while (n->refused) {
        int slot = __builtin_ctzll(n->refused);
        n->refused &= n->refused - 1;
        if (n->nodes[slot].in_use)
            n->cb->down(n->arg, slot, 1);
    }
}

void mcpgw_bal_nodes_refused(struct mcpgw_bal_nodes *n, int slot)
{
    n->refused |= 1ull << slot;
    event_active(n->refused_ev, EV_TIMEOUT, 1);
}

int mcpgw_bal_nodes_connect(struct mcpgw_bal_nodes *n, int slot, int *pending)
{
    struct wnode *w = &n->nodes[slot];
    uint32_t k = n->cfg->nsources;
    int fd = -1;
    if (!k)
        return mcpgw_tcp_connect((const struct sockaddr *)&w->sa, w->salen, NULL, 0, pending);
    for (uint32_t i = 0; i < k; i++) {
        const struct sockaddr_in *src = &n->cfg->sources[w->next_src++ % k];
        fd = mcpgw_tcp_connect((const struct sockaddr *)&w->sa, w->salen,
                               (const struct sockaddr *)src, sizeof(*src), pending);
        if (fd >= 0 || errno != EADDRNOTAVAIL)
            break;
    }
    return fd;
}

/* A connect to the node that just failed us, to tell a dead node (refused: its exchanges are
 * ended, down(slot, 1)) from a live one that only closed or reset one connection. Its outcome
 * is handled from the loop, never inside mark_down's caller, which may still use the exchange
 * that failed. */
struct probe {
    struct mcpgw_bal_nodes *n;
    int slot;
    int refused; /* refused at once by connect() */
    char id[MCPGW_BAL_ID_MAX];
};

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    struct mcpgw_bal_nodes *n = p->n;
    int err = 0;
    socklen_t len = sizeof(err);
    if (!p->refused && fd >= 0 && (what & EV_WRITE) &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED)
        p->refused = 1;
    if (fd >= 0)
        close(fd);
    if (p->refused && n->nodes[p->slot].in_use && strcmp(n->nodes[p->slot].id, p->id) == 0)
        n->cb->down(n->arg, p->slot, 1);
    free(p);
}

static void probe_listener(struct mcpgw_bal_nodes *n, int slot)
{
    struct wnode *w = &n->nodes[slot];
    struct timeval tv = {n->cfg->connect_timeout_ms / 1000,
                         (n->cfg->connect_timeout_ms % 1000) * 1000},
                   now = {0, 0};
    struct probe *p;
    int pending, fd = mcpgw_bal_nodes_connect(n, slot, &pending);
    if (fd < 0 && errno != ECONNREFUSED)
        return;
    p = xcalloc(1, sizeof(*p));
    p->n = n;
    p->slot = slot;
    memcpy(p->id, w->id, sizeof(p->id));
    p->refused = fd < 0;
    if (event_base_once(n->base, fd, fd >= 0 ? EV_WRITE : EV_TIMEOUT, on_probe, p,
                        fd >= 0 ? &tv : &now) < 0) {
        if (fd >= 0)
            close(fd);
        free(p);
    }
}

void mcpgw_bal_nodes_mark_down(struct mcpgw_bal_nodes *n, int slot, const char *why)
{
    struct wnode *w = &n->nodes[slot];
    MCPGW_BUMP(&n->st->nodes[slot].errors, 1);
    if (w->passive)
        return;
    w->passive = 1;
    w->down_ms = mcpgw_now_ms();
    MCPGW_STORE(&n->st->nodes[slot].passive_down, 1);
    log_warn("node %s (%s) marked down in this worker: %s", w->id, w->addr, why);
    n->cb->marked(n->arg, slot);
    probe_listener(n, slot);
}

int mcpgw_bal_nodes_usable(struct mcpgw_bal_nodes *n, int slot)
{
    struct wnode *w = &n->nodes[slot];
    if (!w->in_use || !MCPGW_LOAD(&n->sh->slots[slot].up))
        return 0;
    if (w->passive) {
        /* Only evidence gathered after the mark: a check answered just before a kill, or
         * gossip that has not yet noticed it, must not put the node back. */
        if (MCPGW_LOAD(&n->sh->slots[slot].pass_ms) <= w->down_ms)
            return 0;
        w->passive = 0;
        MCPGW_STORE(&n->st->nodes[slot].passive_down, 0);
        log_info("node %s (%s) passed a check: back in this worker's rotation", w->id, w->addr);
    }
    return 1;
}

int mcpgw_bal_nodes_failed(const struct mcpgw_bal_nodes *n, int slot)
{
    return n->nodes[slot].passive || !MCPGW_LOAD(&n->sh->slots[slot].up);
}

/* Load of a node for routing by load, summed over every worker of this balancer (their stats
 * blocks are shared) so the workers together spread sessions as evenly as one would:
 * upstream connections in use (requests in flight and open streams) plus the requests sent to
 * it by load so far (the sessions it was given; gossip will supply real session counts). The
 * sum sheds load from a slow node, yet bounds how far session counts drift apart by the
 * difference in requests in flight. */
static void node_load(struct mcpgw_bal_nodes *n, int slot, uint32_t *load, uint32_t *picks)
{
    int64_t a = 0;
    uint64_t p = 0;
    for (int w = 0; w < n->cfg->workers; w++) {
        const struct mcpgw_bal_node_stats *ns = &n->sh->workers[w].nodes[slot];
        a += MCPGW_LOAD(&ns->active);
        p += MCPGW_LOAD(&ns->assigned);
    }
    *picks = (uint32_t)p;
    *load = (uint32_t)((a > 0 ? (uint64_t)a : 0) + p);
}

int mcpgw_bal_nodes_pick(struct mcpgw_bal_nodes *n, const char *sid, size_t sidlen, uint64_t tried)
{
    struct mcpgw_route_node rn[MCPGW_BAL_MAX_NODES];
    int cnt = (int)n->nslots, slot;
    for (int i = 0; i < cnt; i++) {
        struct wnode *w = &n->nodes[i];
        rn[i].id = w->in_use ? w->id : NULL;
        /* A leaving node (gossip drain) gets nothing new, not even its own sessions: they move
         * to other nodes while its exchanges in flight finish. */
        rn[i].usable =
            (uint8_t)(!(tried >> i & 1) && w->draining != 2 && mcpgw_bal_nodes_usable(n, i));
        rn[i].draining = w->draining != 0;
        rn[i].load = 0;
        rn[i].picks = 0;
        if (!sid && rn[i].usable)
            node_load(n, i, &rn[i].load, &rn[i].picks);
    }
    slot = mcpgw_route_pick(rn, cnt, sid, sidlen, &n->rng);
    if (mcpgw_log_enabled(MCPGW_LOG_DEBUG) && !sid) {
        char b[256];
        int o = 0;
        for (int i = 0; i < cnt && o < 200; i++)
            o += snprintf(b + o, sizeof(b) - (size_t)o, " %s:u%d/l%u/p%u",
                          rn[i].id ? rn[i].id : "-", rn[i].usable, rn[i].load, rn[i].picks);
        log_debug("pick by load ->%d:%s", slot, b);
    }
    if (slot >= 0 && !sid)
        MCPGW_BUMP(&n->st->nodes[slot].assigned, 1);
    return slot;
}

void mcpgw_bal_nodes_cause(struct mcpgw_bal_nodes *n, const char *last, char *buf, size_t len)
{
    int configured = 0, up = 0, draining = 0;
    for (uint32_t i = 0; i < n->nslots; i++) {
        if (!n->nodes[i].in_use)
            continue;
        configured++;
        if (mcpgw_bal_nodes_usable(n, (int)i)) {
            up++;
            draining += n->nodes[i].draining != 0;
        }
    }
    if (!configured)
        snprintf(buf, len, "no MCP node is configured");
    else if (last)
        snprintf(buf, len, "no MCP node could be reached (%d of %d up; last error: %s)", up,
                 configured, last);
    else if (up == 0)
        snprintf(buf, len, "no MCP node is up (0 of %d)", configured);
    else if (draining == up)
        snprintf(buf, len, "every MCP node that is up is draining (%d of %d)", draining,
                 configured);
    else
        snprintf(buf, len, "no MCP node can take this request (%d of %d up)", up, configured);
}

int mcpgw_bal_nodes_in_use(const struct mcpgw_bal_nodes *n, int slot)
{
    return n->nodes[slot].in_use;
}

int mcpgw_bal_nodes_passive(const struct mcpgw_bal_nodes *n, int slot)
{
    return n->nodes[slot].passive;
}

const char *mcpgw_bal_nodes_id(const struct mcpgw_bal_nodes *n, int slot)
{
    return n->nodes[slot].id;
}

const char *mcpgw_bal_nodes_addr(const struct mcpgw_bal_nodes *n, int slot)
{
    return n->nodes[slot].addr;
}

int mcpgw_bal_nodes_count(const struct mcpgw_bal_nodes *n)
{
    return (int)n->nslots;
}

struct mcpgw_bal_nodes *mcpgw_bal_nodes_new(struct event_base *base,
                                            const struct mcpgw_bal_config *cfg,
                                            struct mcpgw_bal_shared *sh, int worker,
                                            const struct mcpgw_bal_nodes_cb *cb, void *arg)
{
    struct mcpgw_bal_nodes *n = xcalloc(1, sizeof(*n));
    n->base = base;
    n->cfg = cfg;
    n->sh = sh;
    n->st = &sh->workers[worker];
    n->cb = cb;
    n->arg = arg;
    n->rng = mcpgw_now_us() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (!n->rng)
        n->rng = 1;
    n->refused_ev = event_new(base, -1, 0, on_refused, n);
    if (!n->refused_ev) {
        free(n);
        return NULL;
    }
    /* The control path: ending a dead node's exchanges goes ahead of relaying. */
    if (event_base_get_npriorities(base) > 1)
        event_priority_set(n->refused_ev, 0);
    copy_table(n);
    for (uint32_t i = 0; i < n->nslots; i++)
        n->nodes[i].seen_up = n->nodes[i].in_use && MCPGW_LOAD(&sh->slots[i].up);
    return n;
}

void mcpgw_bal_nodes_free(struct mcpgw_bal_nodes *n)
{
    if (!n)
        return;
    event_free(n->refused_ev);
    free(n);
}
