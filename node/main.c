/* main.c - mcpgw-node: configuration, wiring, signals (sessions: node/cluster.c). */
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gossip/swim.h"
#include "node/auth.h"
#include "node/upprin.h"
#include "node/upsess.h"
#include "node/upsub.h"
#include "node/cluster.h"
#include "node/config.h"
#include "node/bridge26.h"
#include "node/era26.h"
#include "node/guard.h"
#include "node/fanout.h"
#include "node/keepalive.h"
#include "node/limits.h"
#include "node/listen.h"
#include "node/node-t.h"
#include "node/notes.h"
#include "node/registry.h"
#include "node/store.h"
#include "node/protocol.h"
#include "node/transport.h"
#include "node/upprov.h"
#include "node/upstream.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SIGTERM: drain. Stop taking sessions (readyz 503, initialize refused), end GET streams so
 * clients reconnect (through the balancer, to another node, resuming from the shared store),
 * let in-flight calls finish within the drain timeout, then exit. A second signal exits now. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    if (n->draining || sig == SIGINT) {
        log_info("signal %d: exiting now", (int)sig);
        event_base_loopexit(n->base, NULL);
        return;
    }
    log_info("signal %d: draining (up to %llu ms)", (int)sig,
             (unsigned long long)n->cfg.drain_timeout_ms);
    mcpgw_cluster_drain(n);
}

/* SIGHUP: read the configuration again (file, then the same flags over it), validate it whole,
 * and only then take its live settings (node/config.h); one that needs a restart is reported and
 * left as it runs. A file that does not parse or validate changes nothing. The gossip key ring
 * file is read again too (key rotation without a restart, docs/gossip.md). */
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

static void reload_config(struct mcpgw_node *n, int argc, char **argv)
{
    struct mcpgw_node_config next;
    char err[512];
    int check, help, applied;
    if (!n->cfg.config_path[0]) {
        log_info("SIGHUP: started without --config, no settings to reload");
        return;
    }
    if (mcpgw_node_config_load(&next, argc, argv, &check, &help, err, sizeof(err)) < 0) {
        log_error("reload refused, the running configuration stays: %s", err);
        mcpgw_node_config_free(&next);
        return;
    }
    applied = mcpgw_node_config_apply_live(&n->cfg, &next, on_reload_diff, NULL);
    mcpgw_upsess_reload(n, next.upstreams); /* per-client sessions first: they name upstreams */
    mcpgw_upstream_reload(n, &next);        /* upstreams are diffed and restarted there */
    mcpgw_guard_reload(n, &next);           /* authorization rules: taken whole */
    mcpgw_limits_reload(n, &next, mcpgw_transport_handle);
    mcpgw_protocol_configure(n);
    mcpgw_node_config_free(&next);
    /* The settings other modules copied at start; the rest is read from n->cfg where used. */
    mcpgw_log_set_level((enum mcpgw_log_level)n->cfg.log_level);
    mcpgw_httpd_set_limits(n->httpd, n->cfg.max_head_bytes, n->cfg.max_body_bytes,
                           n->cfg.max_conns);
    log_info("reloaded %s: %d setting%s changed", n->cfg.config_path, applied,
             applied == 1 ? "" : "s");
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct reload *r = arg;
    struct mcpgw_node *n = r->n;
    char err[512];
    reload_config(n, r->argc, r->argv);
    if (n->gossip && n->cfg.gossip_keyring[0] &&
        mcpgw_gossip_reload_keyring(n->gossip, NULL, err, sizeof(err)) < 0)
        log_error("SIGHUP: keeping the current gossip key ring: %s", err);
    mcpgw_era26_reload(n);
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
    n->st.fanout_dropped = mcpgw_metrics_counter(
        m, "mcpgw_node_fanout_dropped_total",
        "Resource updates not queued for fan-out (queue full): their subscribers resumed instead",
        labels);
    n->st.fanout_streams_ended = mcpgw_metrics_counter(
        m, "mcpgw_node_fanout_streams_ended_total",
        "GET streams ended so their clients resume from the store (fan-out queue full)", labels);
    n->st.conns_timed_out = mcpgw_metrics_counter(
        m, "mcpgw_node_conns_timed_out_total",
        "Client connections failed by TCP keep-alive or user timeout (the peer vanished)", labels);
    n->st.sse_keepalives = mcpgw_metrics_counter(m, "mcpgw_node_sse_keepalives_total",
                                                 "SSE keep-alive comments written", labels);
}

int main(int argc, char **argv)
{
    struct mcpgw_node node;
    struct mcpgw_httpd_config hcfg;
    struct event *sigterm, *sigint;
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
    node.listen = mcpgw_listen_set_new(&node, 2);
    {
        struct mcpgw_store_config sc = {node.cfg.store, node.cfg.node_id, node.cfg.session_idle_ms,
                                        node.base, node.reg};
        node.store = mcpgw_store_new(&sc, &mcpgw_cluster_store_events, &node, err, sizeof(err));
    }
    if (!node.store) {
        log_error("%s", err);
        goto out;
    }
    *node.st.store_up = mcpgw_store_up(node.store);
    mcpgw_bridge26_start(&node);
    if (mcpgw_era26_start(&node, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }

    mcpgw_httpd_config_defaults(&hcfg);
    hcfg.max_body_bytes = node.cfg.max_body_bytes;
    hcfg.max_head_bytes = node.cfg.max_head_bytes;
    hcfg.max_conns = node.cfg.max_conns;
    hcfg.max_output_bytes = node.cfg.max_stream_buffer;
    hcfg.streams_dropped = node.st.streams_dropped;
    hcfg.tcp_keepalive_s = (uint32_t)((node.cfg.tcp_keepalive_ms + 999) / 1000);
    hcfg.tcp_user_timeout_ms = (uint32_t)node.cfg.tcp_user_timeout_ms;
    hcfg.conns_timed_out = node.st.conns_timed_out;
    node.httpd = mcpgw_httpd_new(node.base, &hcfg, mcpgw_transport_handle, &node);
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
        gc.keyring_path = node.cfg.gossip_keyring[0] ? node.cfg.gossip_keyring : NULL;
        node.gossip = mcpgw_gossip_new(node.base, &gc, err, sizeof(err));
        if (!node.gossip || mcpgw_gossip_start(node.gossip) < 0) {
            log_error("gossip: %s", node.gossip ? "cannot start" : err);
            goto out;
        }
    }
    if (strcmp(node.cfg.auth, "off") != 0) {
        char labels[64];
        snprintf(labels, sizeof(labels), "node=\"%s\"", node.cfg.node_id);
        node.auth = mcpgw_auth_new(node.base, &node.cfg, node.metrics, labels,
                                   mcpgw_transport_handle, &node, err, sizeof(err));
        if (!node.auth) {
            log_error("%s", err);
            goto out;
        }
    }
    mcpgw_limits_start(&node, mcpgw_transport_handle);
    mcpgw_upstream_start(&node, &mcpgw_upprov_hooks);
    mcpgw_protocol_configure(&node);
    mcpgw_cluster_start(&node);
    node.keepalive = mcpgw_keepalive_new(&node);
    sigterm = evsignal_new(node.base, SIGTERM, on_signal, &node);
    sigint = evsignal_new(node.base, SIGINT, on_signal, &node);
    reload.ev = evsignal_new(node.base, SIGHUP, on_hup, &reload);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(reload.ev, NULL);
    mcpgw_url_redact(node.cfg.store, err, sizeof(err));
    log_info("listening on http://%s/mcp (store %s, %u shards, idle expiry %llus)", node.cfg.listen,
             err, 1u << node.cfg.shard_bits, (unsigned long long)(node.cfg.session_idle_ms / 1000));
    event_base_dispatch(node.base);
    rc = 0;
    event_free(sigterm);
    event_free(sigint);
    event_free(reload.ev);
    /* Sessions go before the registry (its contract) and the server (ending their streams makes
     * those connections idle, which mcpgw_httpd_free closes), so LeakSanitizer sees real leaks. */
    mcpgw_cluster_stop(&node);
    mcpgw_upstream_stop(&node);
    mcpgw_bridge26_stop(&node);
out:
    mcpgw_auth_free(node.auth);
    if (node.gossip) {
        mcpgw_gossip_leave(node.gossip);
        mcpgw_gossip_free(node.gossip);
    }
    mcpgw_keepalive_free(node.keepalive);
    mcpgw_limits_stop(&node);
    mcpgw_store_free(node.store);
    mcpgw_limits_free(&node);
    mcpgw_era26_stop(&node);
    mcpgw_upprin_free_all(&node);
    mcpgw_upsess_free_all(&node);
    mcpgw_upsub_free(&node);
    mcpgw_fanout_free(node.fanout);
    mcpgw_listen_set_free(node.listen);
    mcpgw_httpd_free(node.httpd);
    mcpgw_notes_free(node.notes);
    mcpgw_metrics_free(node.metrics);
    mcpgw_registry_free(node.reg);
    mcpgw_node_config_free(&node.cfg);
    event_base_free(node.base);
    return rc;
}
