/* proxy.c - one worker: its node view, upstreams, exchanges and listener, wired together and
 * driven by two timers (see proxy.h). */
#include "balancer/proxy.h"

#include "balancer/exchange.h"
#include "balancer/io.h"
#include "balancer/listener.h"
#include "balancer/nodes.h"
#include "balancer/upstream.h"
#include "common/log.h"
#include "common/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SWEEP_PERIOD_MS 250
#define WATCH_PERIOD_MS 25 /* how often the node table is looked at */

struct mcpgw_bal_proxy {
    struct event_base *base;
    struct mcpgw_bal_config cfg;
    struct mcpgw_bal_nodes *nodes;
    struct mcpgw_bal_upstream_set *ups;
    struct mcpgw_bal_exchange_set *xs;
    struct mcpgw_bal_listener *listener;
    struct event *sweep, *watch, *drained_ev;
    mcpgw_bal_proxy_drained_fn drained;
    void *drained_arg;
};

/* ---- the node table's news (nodes.h), from the timers and the loop ---- */

static void on_node_changed(void *arg, int slot)
{
    struct mcpgw_bal_proxy *px = arg;
    mcpgw_bal_upstream_close_node(px->ups, slot);
}

static void on_node_marked(void *arg, int slot)
{
    struct mcpgw_bal_proxy *px = arg;
    mcpgw_bal_upstream_close_idle(px->ups, slot);
}

/* End every exchange of this worker with slot, streams included, so their clients resume on
 * another node (or the balancer carries their streams on) instead of waiting on one that
 * cannot answer. A refused connect means nothing listens at its address, so its process is gone
 * (a node keeps its listener until it exits, draining included) however long its kernel takes
 * to close its connections one by one (seconds, for a killed node holding thousands of streams
 * on a busy machine); connections still connecting are left to fail and move on their own. */
static void on_node_down(void *arg, int slot, int refused)
{
    struct mcpgw_bal_proxy *px = arg;
    unsigned n = mcpgw_bal_upstream_cut(px->ups, slot, refused);
    if (n && refused)
        log_warn("node %s (%s) refused a connection: ended %u exchanges in flight with it",
                 mcpgw_bal_nodes_id(px->nodes, slot), mcpgw_bal_nodes_addr(px->nodes, slot), n);
    else if (n)
        log_warn("node %s (%s) is down: ended %u exchanges in flight with it",
                 mcpgw_bal_nodes_id(px->nodes, slot), mcpgw_bal_nodes_addr(px->nodes, slot), n);
}

static const struct mcpgw_bal_nodes_cb nodes_cb = {on_node_changed, on_node_marked, on_node_down};

/* ---- timers ---- */

/* A node the master has just found down must lose its exchanges now, not at the next sweep: on
 * a saturated machine a worker's 250 ms sweep ran 0.6-1.4 s after gossip declared a killed node
 * dead (100,000 sessions, a kill during a fan-out), and its sessions waited that long to move.
 * Looking at the table is two loads per slot, so it runs ten times as often, and at the loop's
 * first priority when the base has more than one (the worker's has two): a turn of the loop then
 * relays up to 64 KiB from each node, and a timer that expired during one runs before the next
 * one's reads instead of after them. This and the sweep are the only places the worker's view
 * of the table changes: never while a request is routed. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    (void)fd, (void)what;
    mcpgw_bal_nodes_refresh(px->nodes);
    if (px->listener)
        mcpgw_bal_listener_rearm(px->listener);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    (void)fd, (void)what;
    mcpgw_bal_nodes_refresh(px->nodes);
    mcpgw_bal_exchange_sweep(px->xs);
    mcpgw_bal_upstream_sweep(px->ups);
}

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    (void)fd, (void)what;
    if (px->drained && mcpgw_bal_exchange_clients(px->xs) == 0) {
        mcpgw_bal_proxy_drained_fn cb = px->drained;
        px->drained = NULL;
        cb(px->drained_arg);
    }
}

static void on_empty(void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    event_active(px->drained_ev, EV_TIMEOUT, 1);
}

static void on_accept(void *arg, int fd, const struct sockaddr *sa)
{
    struct mcpgw_bal_proxy *px = arg;
    mcpgw_bal_exchange_accept(px->xs, fd, sa);
}

struct mcpgw_bal_proxy *mcpgw_bal_proxy_new(struct event_base *base,
                                            const struct mcpgw_bal_config *cfg,
                                            struct mcpgw_bal_shared *sh, int worker, int listen_fd,
                                            struct ssl_ctx_st *tls, char *err, size_t errlen)
{
    struct mcpgw_bal_proxy *px = xcalloc(1, sizeof(*px));
    struct timeval tv = mcpgw_bal_io_tv(SWEEP_PERIOD_MS);

    px->base = base;
    px->cfg = *cfg;
    px->nodes = mcpgw_bal_nodes_new(base, &px->cfg, sh, worker, &nodes_cb, px);
    if (px->nodes)
        px->ups = mcpgw_bal_upstream_set_new(base, &px->cfg, px->nodes);
    if (px->ups)
        px->xs = mcpgw_bal_exchange_set_new(base, &px->cfg, &sh->workers[worker], px->nodes,
                                            px->ups, tls, on_empty, px);
    if (px->xs)
        px->listener = mcpgw_bal_listener_new(base, listen_fd, on_accept, px);
    px->sweep = event_new(base, -1, EV_PERSIST, on_sweep, px);
    px->watch = event_new(base, -1, EV_PERSIST, on_watch, px);
    if (px->watch)
        event_priority_set(px->watch, 0);
    px->drained_ev = event_new(base, -1, 0, on_drained, px);
    if (!px->listener || !px->sweep || !px->watch || !px->drained_ev) {
        snprintf(err, errlen, "cannot set up the worker's event loop (libevent)");
        if (!px->listener)
            close(listen_fd);
        mcpgw_bal_proxy_free(px);
        return NULL;
    }
    event_add(px->sweep, &tv);
    tv = mcpgw_bal_io_tv(WATCH_PERIOD_MS);
    event_add(px->watch, &tv);
    return px;
}

void mcpgw_bal_proxy_drain(struct mcpgw_bal_proxy *px, mcpgw_bal_proxy_drained_fn done, void *arg)
{
    px->drained = done;
    px->drained_arg = arg;
    mcpgw_bal_listener_free(px->listener);
    px->listener = NULL;
    mcpgw_bal_exchange_drain(px->xs);
    mcpgw_bal_upstream_drain(px->ups);
}

void mcpgw_bal_proxy_free(struct mcpgw_bal_proxy *px)
{
    if (!px)
        return;
    mcpgw_bal_listener_free(px->listener);
    mcpgw_bal_exchange_set_free(px->xs);
    mcpgw_bal_upstream_set_free(px->ups);
    mcpgw_bal_nodes_free(px->nodes);
    if (px->sweep)
        event_free(px->sweep);
    if (px->watch)
        event_free(px->watch);
    if (px->drained_ev)
        event_free(px->drained_ev);
    free(px);
}

unsigned mcpgw_bal_proxy_clients(const struct mcpgw_bal_proxy *px)
{
    return mcpgw_bal_exchange_clients(px->xs);
}
