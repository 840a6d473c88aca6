/* main.c - mcpgw-node: configuration, event loop, idle expiry, signals. */
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gossip/swim.h"
#include "node/builtin.h"
#include "node/config.h"
#include "node/fanout.h"
#include "node/node-t.h"
#include "node/notes.h"
#include "node/protocol.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/transport.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALL_MS 1000

static void on_resynced(void *arg, int err)
{
    struct mcpgw_node *n = arg;
    n->resyncing = 0;
    log_info("resynchronized after the stall%s", err ? " (session store unreachable)" : "");
    if (err)
        mcpgw_node_reclaim_free(n);
    else
        mcpgw_node_reclaim_start(n);
}

/* Runs every 100 ms at the highest priority, so after a stall (SIGSTOP, swapping, a debugger)
 * it runs before any request that queued meanwhile. Those requests may be for sessions other
 * nodes took over while this one was silent: until every message published to this node before
 * now has been handled (its "moved" notices among them), session requests get 503 and nothing
 * is claimed or written on the strength of a stale view. */
static void on_stall_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    uint64_t now = mcpgw_now_ms(), gap = now - n->last_tick_ms;
    n->last_tick_ms = now;
    if (gap < STALL_MS || n->resyncing || !mcpgw_store_shared(n->store))
        return;
    log_warn("the event loop stalled for %llu ms: resynchronizing with the session store before "
             "serving sessions",
             (unsigned long long)gap);
    (*n->st.stalls)++;
    n->resyncing = 1;
    mcpgw_store_resync(n->store, on_resynced, n);
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    if (n->gossip) {
        struct mcpgw_registry_stats rs;
        mcpgw_registry_stats(n->reg, &rs);
        mcpgw_gossip_set_sessions(n->gossip, (uint32_t)rs.sessions);
    }
    uint64_t now = mcpgw_now_ms(), cutoff = now - n->cfg.session_idle_ms;
    struct mcpgw_session *s;
    int budget = 20000;
    if (now < n->cfg.session_idle_ms)
        return;
    while (budget-- > 0 && (s = mcpgw_registry_oldest_idle(n->reg, cutoff)) != NULL) {
        if (s->get_stream || s->calls) {
            /* A client holding a stream or waiting on a call is not idle. */
            mcpgw_registry_touch(n->reg, s, now);
            continue;
        }
        log_debug("session %s expired after %llu ms idle", s->id,
                  (unsigned long long)(now - s->last_active_ms));
        /* Only this node's copy: a shared store expires the record by its own TTL. */
        if (!mcpgw_store_shared(n->store))
            mcpgw_store_delete(n->store, s);
        mcpgw_node_session_drop(n, s);
        (*n->st.sessions_expired)++;
    }
}

static void end_stream(void *arg, struct mcpgw_session *s)
{
    struct mcpgw_http_conn *c = s->get_stream;
    if (!c)
        return;
    mcpgw_http_conn_set_close_cb(c, NULL, NULL);
    s->get_stream = NULL;
    mcpgw_http_stream_end(c);
}

/* Balancers learn of the drain through gossip within a few protocol periods: stay up at least
 * this long so no request is sent to a node that has already gone. */
#define DRAIN_MIN_MS 1500

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    uint64_t now = mcpgw_now_ms();
    if (n->gossip && now < n->drain_started_ms + DRAIN_MIN_MS && now < n->drain_deadline_ms)
        return;
    if (*n->st.calls_inflight == 0 || now >= n->drain_deadline_ms) {
        log_info("drained (%lld calls still in flight): exiting", (long long)*n->st.calls_inflight);
        event_base_loopexit(n->base, NULL);
    }
}

/* SIGTERM: drain. Stop taking sessions (readyz 503, initialize refused), end GET streams so
 * clients reconnect (through the balancer, to another node, resuming from the shared store),
 * let in-flight calls finish within the drain timeout, then exit. A second signal exits now. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    struct timeval tick = {0, 100000};
    if (n->draining || sig == SIGINT) {
        log_info("signal %d: exiting now", (int)sig);
        event_base_loopexit(n->base, NULL);
        return;
    }
    n->draining = 1;
    n->drain_started_ms = mcpgw_now_ms();
    n->drain_deadline_ms = n->drain_started_ms + n->cfg.drain_timeout_ms;
    log_info("signal %d: draining (up to %llu ms)", (int)sig,
             (unsigned long long)n->cfg.drain_timeout_ms);
    if (n->gossip)
        mcpgw_gossip_set_draining(n->gossip);
    mcpgw_registry_foreach(n->reg, end_stream, NULL);
    n->drain_timer = event_new(n->base, -1, EV_PERSIST, on_drain_tick, n);
    event_add(n->drain_timer, &tick);
}

/* SIGHUP: read the configuration again (file, then the same flags over it), validate it whole,
 * and only then take its live settings (node/config.h); one that needs a restart is reported and
 * left as it runs. A file that does not parse or validate changes nothing. */
struct reload {
    struct mcpgw_node *n;
    int argc;
    char **argv;
    struct event *ev;
};

static void on_reload_diff(void *arg, const char *key, int applied)
{
    if (applied)
        log_info("reload: %s changed", key);
    else
        log_warn("reload: %s changed in the configuration but needs a restart; it keeps its "
                 "running value",
                 key);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct reload *r = arg;
    struct mcpgw_node *n = r->n;
    struct mcpgw_node_config next;
    char err[512];
    int check, help, applied;
    if (!n->cfg.config_path[0]) {
        log_warn("SIGHUP: started without --config, nothing to reload");
        return;
    }
    if (mcpgw_node_config_load(&next, r->argc, r->argv, &check, &help, err, sizeof(err)) < 0) {
        log_error("reload refused, the running configuration stays: %s", err);
        mcpgw_node_config_free(&next);
        return;
    }
    applied = mcpgw_node_config_apply_live(&n->cfg, &next, on_reload_diff, NULL);
    mcpgw_node_config_free(&next);
    /* The settings other modules copied at start; the rest is read from n->cfg where used. */
    mcpgw_log_set_level((enum mcpgw_log_level)n->cfg.log_level);
    mcpgw_httpd_set_limits(n->httpd, n->cfg.max_head_bytes, n->cfg.max_body_bytes,
                           n->cfg.max_conns);
    log_info("reloaded %s: %d setting%s changed", n->cfg.config_path, applied,
             applied == 1 ? "" : "s");
}

static void register_metrics(struct mcpgw_node *n)
{
    struct mcpgw_metrics *m = n->metrics;
    char labels[64];
    snprintf(labels, sizeof(labels), "node=\"%s\"", n->cfg.node_id);
    n->st.requests =
        mcpgw_metrics_counter(m, "mcpgw_node_requests_total", "JSON-RPC requests received", labels);
    n->st.notifications = mcpgw_metrics_counter(m, "mcpgw_node_notifications_total",
                                                "JSON-RPC notifications received", labels);
    n->st.errors = mcpgw_metrics_counter(m, "mcpgw_node_errors_total",
                                         "JSON-RPC error responses sent", labels);
    n->st.http_rejects = mcpgw_metrics_counter(m, "mcpgw_node_http_rejects_total",
                                               "Requests refused at the HTTP layer", labels);
    n->st.sessions_created = mcpgw_metrics_counter(m, "mcpgw_node_sessions_created_total",
                                                   "Sessions initialized", labels);
    n->st.sessions_expired = mcpgw_metrics_counter(m, "mcpgw_node_sessions_expired_total",
                                                   "Sessions expired after idling", labels);
    n->st.sessions_deleted = mcpgw_metrics_counter(m, "mcpgw_node_sessions_deleted_total",
                                                   "Sessions ended by DELETE", labels);
    n->st.events_sent =
        mcpgw_metrics_counter(m, "mcpgw_node_sse_events_total", "SSE events written", labels);
    n->st.events_replayed = mcpgw_metrics_counter(
        m, "mcpgw_node_sse_replayed_total", "SSE events replayed after Last-Event-ID", labels);
    n->st.replay_gaps = mcpgw_metrics_counter(
        m, "mcpgw_node_sse_replay_gaps_total",
        "Resumptions that asked for events already evicted from the log", labels);
    n->st.streams_dropped = mcpgw_metrics_counter(m, "mcpgw_node_streams_dropped_total",
                                                  "Streams closed for not reading", labels);
    n->st.sessions = mcpgw_metrics_gauge(m, "mcpgw_node_sessions", "Sessions held", labels);
    n->st.streams = mcpgw_metrics_gauge(m, "mcpgw_node_get_streams", "Open GET streams", labels);
    n->st.calls_inflight =
        mcpgw_metrics_gauge(m, "mcpgw_node_calls_inflight", "Requests in flight", labels);
    n->st.latency = mcpgw_metrics_hist(m, "mcpgw_node_call_seconds",
                                       "tools/call latency inside the node", labels);
    n->st.sessions_claimed = mcpgw_metrics_counter(
        m, "mcpgw_node_sessions_claimed_total",
        "Sessions taken over from the shared store (failover, rebalancing)", labels);
    n->st.sessions_moved = mcpgw_metrics_counter(
        m, "mcpgw_node_sessions_moved_total", "Sessions another node took from this one", labels);
    n->st.sessions_lost = mcpgw_metrics_counter(
        m, "mcpgw_node_sessions_lost_total",
        "Local sessions whose record vanished from the store (dropped)", labels);
    n->st.store_errors = mcpgw_metrics_counter(m, "mcpgw_node_store_errors_total",
                                               "Store writes refused or failed", labels);
    n->st.retries_answered = mcpgw_metrics_counter(
        m, "mcpgw_node_retries_answered_total",
        "Retried side-effecting requests answered from their recorded result", labels);
    n->st.stalls = mcpgw_metrics_counter(
        m, "mcpgw_node_stalls_total",
        "Event loop stalls (>1 s) after which the node resynchronized before serving", labels);
    n->st.store_up = mcpgw_metrics_gauge(m, "mcpgw_node_store_up",
                                         "1 when the session store is reachable", labels);
    n->st.fanout_queued =
        mcpgw_metrics_gauge(m, "mcpgw_node_fanout_queued",
                            "Resource updates not yet delivered to every local subscriber", labels);
}

int main(int argc, char **argv)
{
    struct mcpgw_node node;
    struct mcpgw_httpd_config hcfg;
    struct event *sigterm, *sigint;
    struct mcpgw_session *s;
    struct timeval one_s = {1, 0};
    struct reload reload = {&node, argc, argv, NULL};
    char err[512], comp[64];
    int rc = 1, check = 0, help = 0;

    memset(&node, 0, sizeof(node));
    if (mcpgw_node_config_load(&node.cfg, argc, argv, &check, &help, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-node: %s\n", err);
        mcpgw_node_config_free(&node.cfg);
        return 2;
    }
    if (help || check) {
        if (help)
            mcpgw_node_config_usage(stdout);
        else
            printf("config ok\n");
        mcpgw_node_config_free(&node.cfg);
        return 0;
    }
    mcpgw_log_set_level((enum mcpgw_log_level)node.cfg.log_level);
    snprintf(comp, sizeof(comp), "node %s", node.cfg.node_id);
    mcpgw_log_set_component(comp);
    signal(SIGPIPE, SIG_IGN);

    node.base = event_base_new();
    /* Three priorities: 0 for the stall detector, 1 (the default) for everything else, 2 for
     * background work that must not hold up the rest (resource-update fan-out). */
    event_base_priority_init(node.base, 3);
    node.fanout = mcpgw_fanout_new(&node, 2);
    node.started_ms = mcpgw_now_ms();
    node.reg = mcpgw_registry_new(node.cfg.shard_bits);
    node.metrics = mcpgw_metrics_new();
    node.notes = mcpgw_notes_new();
    register_metrics(&node);
    node.store = mcpgw_store_new(&node, node.cfg.store, err, sizeof(err));
    if (!node.store) {
        log_error("%s", err);
        goto out;
    }
    *node.st.store_up = mcpgw_store_up(node.store);

    mcpgw_httpd_config_defaults(&hcfg);
    hcfg.max_body_bytes = node.cfg.max_body_bytes;
    hcfg.max_head_bytes = node.cfg.max_head_bytes;
    hcfg.max_conns = node.cfg.max_conns;
    node.httpd = mcpgw_httpd_new(node.base, &hcfg, mcpgw_node_handle, &node);
    if (mcpgw_httpd_listen(node.httpd, node.cfg.listen, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (node.cfg.gossip_bind[0]) {
        struct mcpgw_gossip_config gc;
        mcpgw_gossip_config_defaults(&gc);
        gc.node_id = node.cfg.node_id;
        gc.bind_addr = node.cfg.gossip_bind;
        gc.advertise_addr = node.cfg.gossip_advertise[0] ? node.cfg.gossip_advertise : NULL;
        gc.seeds = (const char *const *)node.cfg.gossip_seeds.v;
        gc.nseeds = node.cfg.gossip_seeds.n;
        gc.http_addr = node.cfg.advertise[0] ? node.cfg.advertise : node.cfg.listen;
        gc.serving = 1;
        node.gossip = mcpgw_gossip_new(node.base, &gc, err, sizeof(err));
        if (!node.gossip || mcpgw_gossip_start(node.gossip) < 0) {
            log_error("gossip: %s", node.gossip ? "cannot start" : err);
            goto out;
        }
    }
    node.expiry = event_new(node.base, -1, EV_PERSIST, on_expiry, &node);
    event_add(node.expiry, &one_s);
    {
        struct timeval tick = {0, 100000};
        node.last_tick_ms = mcpgw_now_ms();
        node.stall_tick = event_new(node.base, -1, EV_PERSIST, on_stall_tick, &node);
        event_priority_set(node.stall_tick, 0);
        event_add(node.stall_tick, &tick);
    }
    sigterm = evsignal_new(node.base, SIGTERM, on_signal, &node);
    sigint = evsignal_new(node.base, SIGINT, on_signal, &node);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    reload.ev = evsignal_new(node.base, SIGHUP, on_hup, &reload);
    event_add(reload.ev, NULL);
    log_info("listening on http://%s/mcp (store %s, %u shards, idle expiry %llus)", node.cfg.listen,
             node.cfg.store, 1u << node.cfg.shard_bits,
             (unsigned long long)(node.cfg.session_idle_ms / 1000));
    event_base_dispatch(node.base);
    rc = 0;
    event_free(sigterm);
    event_free(sigint);
    event_free(reload.ev);
    event_free(node.expiry);
    event_free(node.stall_tick);
    mcpgw_node_reclaim_free(&node);
    /* Sessions go before the registry (its contract) and the server (ending their streams makes
     * those connections idle, which mcpgw_httpd_free closes), so LeakSanitizer sees real leaks. */
    /* Dropping (not deleting) keeps shared sessions' records for the nodes that take over. */
    while ((s = mcpgw_registry_oldest_idle(node.reg, UINT64_MAX)) != NULL)
        mcpgw_node_session_drop(&node, s);
    if (node.drain_timer)
        event_free(node.drain_timer);
out:
    if (node.gossip) {
        mcpgw_gossip_leave(node.gossip);
        mcpgw_gossip_free(node.gossip);
    }
    mcpgw_store_free(node.store);
    mcpgw_fanout_free(node.fanout);
    mcpgw_httpd_free(node.httpd);
    mcpgw_notes_free(node.notes);
    mcpgw_metrics_free(node.metrics);
    mcpgw_registry_free(node.reg);
    mcpgw_node_config_free(&node.cfg);
    event_base_free(node.base);
    return rc;
}
