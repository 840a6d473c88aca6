/* main.c - mcpgw-node: flags, event loop, idle expiry, signals. */
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gossip/swim.h"
#include "node/cluster.h"
#include "node/fanout.h"
#include "node/node-t.h"
#include "node/notes.h"
#include "node/registry.h"
#include "node/store.h"
#include "node/transport.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: mcpgw-node [options]\n"
           "  --listen HOST:PORT          HTTP listen address (default 127.0.0.1:8801)\n"
           "  --node-id ID                node id, prefix of minted session ids (default n1;\n"
           "                              1-31 characters of [A-Za-z0-9_-])\n"
           "  --store URL                 memory (this process only, default) or\n"
           "                              redis://HOST:PORT (replicated; see docs/replication.md)\n"
           "  --shards K                  2^K registry shards (default 8 -> 256)\n"
           "  --session-idle DURATION     idle session expiry (default 30m)\n"
           "  --max-sessions N            refuse initialize above N sessions (default 1000000)\n"
           "  --tool-timeout DURATION     tools/call deadline (default 60s)\n"
           "  --client-timeout DURATION   wait for sampling/elicitation answers (default 60s)\n"
           "  --page-size N               items per list page (default 100)\n"
           "  --sse-retry DURATION        retry: advertised to SSE clients (default 1s)\n"
           "  --allowed-hosts LIST        Host names accepted, comma-separated, '*' for any\n"
           "                              (default localhost,127.0.0.1,::1)\n"
           "  --allowed-origins LIST      extra Origins accepted (scheme://host[:port]), '*' any\n"
           "  --max-body SIZE             request body limit (default 16m)\n"
           "  --max-headers SIZE          request head limit (default 32k)\n"
           "  --max-conns N               client connections (default 18000)\n"
           "  --gossip-bind HOST:PORT     join the cluster's SWIM gossip on this UDP address\n"
           "  --gossip-seeds LIST         host:port of gossip members to join through\n"
           "  --gossip-advertise HOST:PORT UDP address others reach us at (default: bind)\n"
           "  --gossip-keyring FILE       authenticate and encrypt gossip with this key ring\n"
           "                              (re-read on SIGHUP: docs/gossip.md, rotating keys)\n"
           "  --advertise HOST:PORT       HTTP address balancers reach us at (default: listen)\n"
           "  --drain-timeout DURATION    on SIGTERM, wait this long for calls (default 10s)\n"
           "  --log-level LEVEL           debug, info, warn, error (default info)\n"
           "  --help                      this text\n"
           "Durations take ms/s/m/h suffixes; sizes k/m/g.\n");
}

static char **split_list(const char *s, int *n)
{
    char **v = NULL, *copy = xstrdup(s), *tok, *save = NULL;
    *n = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!*tok)
            continue;
        v = xrealloc(v, (size_t)(*n + 1) * sizeof(*v));
        v[(*n)++] = xstrdup(tok);
    }
    free(copy);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int node_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 31)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '-'))
            return 0;
    return 1;
}

static int parse_flags(int argc, char **argv, struct mcpgw_node_config *cfg)
{
    enum {
        O_LISTEN = 1,
        O_NODE_ID,
        O_STORE,
        O_SHARDS,
        O_IDLE,
        O_MAX_SESSIONS,
        O_TOOL_TIMEOUT,
        O_CLIENT_TIMEOUT,
        O_PAGE,
        O_RETRY,
        O_HOSTS,
        O_ORIGINS,
        O_MAX_BODY,
        O_MAX_HEADERS,
        O_MAX_CONNS,
        O_LOG_LEVEL,
        O_DRAIN,
        O_GBIND,
        O_GSEEDS,
        O_GADV,
        O_GKEYRING,
        O_ADV,
        O_HELP
    };
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"node-id", required_argument, 0, O_NODE_ID},
        {"store", required_argument, 0, O_STORE},
        {"shards", required_argument, 0, O_SHARDS},
        {"session-idle", required_argument, 0, O_IDLE},
        {"max-sessions", required_argument, 0, O_MAX_SESSIONS},
        {"tool-timeout", required_argument, 0, O_TOOL_TIMEOUT},
        {"client-timeout", required_argument, 0, O_CLIENT_TIMEOUT},
        {"page-size", required_argument, 0, O_PAGE},
        {"sse-retry", required_argument, 0, O_RETRY},
        {"allowed-hosts", required_argument, 0, O_HOSTS},
        {"allowed-origins", required_argument, 0, O_ORIGINS},
        {"max-body", required_argument, 0, O_MAX_BODY},
        {"max-headers", required_argument, 0, O_MAX_HEADERS},
        {"max-conns", required_argument, 0, O_MAX_CONNS},
        {"log-level", required_argument, 0, O_LOG_LEVEL},
        {"drain-timeout", required_argument, 0, O_DRAIN},
        {"gossip-bind", required_argument, 0, O_GBIND},
        {"gossip-seeds", required_argument, 0, O_GSEEDS},
        {"gossip-advertise", required_argument, 0, O_GADV},
        {"gossip-keyring", required_argument, 0, O_GKEYRING},
        {"advertise", required_argument, 0, O_ADV},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int o;
    uint64_t v;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN:
            snprintf(cfg->listen, sizeof(cfg->listen), "%s", optarg);
            break;
        case O_NODE_ID:
            if (!node_id_ok(optarg)) {
                fprintf(stderr,
                        "mcpgw-node: --node-id '%s' must be 1-31 characters of "
                        "[A-Za-z0-9_-]\n",
                        optarg);
                return -1;
            }
            snprintf(cfg->node_id, sizeof(cfg->node_id), "%s", optarg);
            break;
        case O_STORE:
            if (strcmp(optarg, "memory") != 0 && strncmp(optarg, "redis://", 8) != 0) {
                fprintf(stderr,
                        "mcpgw-node: --store '%s' is not supported (memory or redis://HOST:PORT)\n",
                        optarg);
                return -1;
            }
            snprintf(cfg->store, sizeof(cfg->store), "%s", optarg);
            break;
        case O_DRAIN:
            if (mcpgw_parse_duration_ms(optarg, &v) < 0) {
                fprintf(stderr, "mcpgw-node: '%s' is not a valid duration\n", optarg);
                return -1;
            }
            cfg->drain_timeout_ms = v;
            break;
        case O_SHARDS:
            if (mcpgw_parse_size(optarg, &v) < 0 || v > 16) {
                fprintf(stderr, "mcpgw-node: --shards takes K from 0 to 16 (2^K shards)\n");
                return -1;
            }
            cfg->shard_bits = (unsigned)v;
            break;
        case O_IDLE:
        case O_TOOL_TIMEOUT:
        case O_CLIENT_TIMEOUT:
        case O_RETRY:
            if (mcpgw_parse_duration_ms(optarg, &v) < 0 || (v == 0 && o != O_RETRY)) {
                fprintf(stderr, "mcpgw-node: '%s' is not a valid duration (e.g. 500ms, 30s, 5m)\n",
                        optarg);
                return -1;
            }
            if (o == O_IDLE)
                cfg->session_idle_ms = v;
            else if (o == O_TOOL_TIMEOUT)
                cfg->tool_timeout_ms = v;
            else if (o == O_CLIENT_TIMEOUT)
                cfg->client_request_timeout_ms = v;
            else
                cfg->sse_retry_ms = (uint32_t)v;
            break;
        case O_MAX_SESSIONS:
        case O_PAGE:
        case O_MAX_BODY:
        case O_MAX_HEADERS:
        case O_MAX_CONNS:
            if (mcpgw_parse_size(optarg, &v) < 0 || v == 0) {
                fprintf(stderr, "mcpgw-node: '%s' is not a valid positive number or size\n",
                        optarg);
                return -1;
            }
            if (o == O_MAX_SESSIONS)
                cfg->max_sessions = v;
            else if (o == O_PAGE)
                cfg->page_size = (uint32_t)v;
            else if (o == O_MAX_BODY)
                cfg->max_body_bytes = v;
            else if (o == O_MAX_HEADERS)
                cfg->max_head_bytes = v;
            else
                cfg->max_conns = (uint32_t)v;
            break;
        case O_GBIND:
            snprintf(cfg->gossip_bind, sizeof(cfg->gossip_bind), "%s", optarg);
            break;
        case O_GADV:
            snprintf(cfg->gossip_advertise, sizeof(cfg->gossip_advertise), "%s", optarg);
            break;
        case O_ADV:
            snprintf(cfg->advertise, sizeof(cfg->advertise), "%s", optarg);
            break;
        case O_GKEYRING:
            snprintf(cfg->gossip_keyring, sizeof(cfg->gossip_keyring), "%s", optarg);
            break;
        case O_GSEEDS:
            free_list(cfg->gossip_seeds, cfg->ngossip_seeds);
            cfg->gossip_seeds = split_list(optarg, &cfg->ngossip_seeds);
            break;
        case O_HOSTS:
            free_list(cfg->allowed_hosts, cfg->nallowed_hosts);
            cfg->allowed_hosts = split_list(optarg, &cfg->nallowed_hosts);
            break;
        case O_ORIGINS:
            free_list(cfg->allowed_origins, cfg->nallowed_origins);
            cfg->allowed_origins = split_list(optarg, &cfg->nallowed_origins);
            break;
        case O_LOG_LEVEL: {
            int l = mcpgw_log_level_parse(optarg);
            if (l < 0) {
                fprintf(stderr, "mcpgw-node: --log-level must be debug, info, warn or error\n");
                return -1;
            }
            mcpgw_log_set_level((enum mcpgw_log_level)l);
            break;
        }
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mcpgw-node: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

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

/* SIGHUP: re-read the gossip key ring (key rotation without a restart); nothing else reloads. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    char err[512];
    if (!n->gossip || !n->cfg.gossip_keyring[0]) {
        log_warn("SIGHUP: no gossip key ring to re-read, nothing else reloads");
        return;
    }
    if (mcpgw_gossip_reload_keyring(n->gossip, NULL, err, sizeof(err)) < 0)
        log_error("SIGHUP: keeping the current gossip key ring: %s", err);
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
    struct event *sigterm, *sigint, *sighup;
    char err[256], comp[64];
    int rc = 1;

    memset(&node, 0, sizeof(node));
    snprintf(node.cfg.node_id, sizeof(node.cfg.node_id), "n1");
    snprintf(node.cfg.listen, sizeof(node.cfg.listen), "127.0.0.1:8801");
    snprintf(node.cfg.store, sizeof(node.cfg.store), "memory");
    node.cfg.shard_bits = 8;
    node.cfg.session_idle_ms = 30 * 60 * 1000;
    node.cfg.max_sessions = 1000000;
    node.cfg.tool_timeout_ms = 60000;
    node.cfg.client_request_timeout_ms = 60000;
    node.cfg.page_size = 100;
    node.cfg.sse_retry_ms = 1000;
    node.cfg.allowed_hosts = split_list("localhost,127.0.0.1,::1", &node.cfg.nallowed_hosts);
    node.cfg.max_body_bytes = 16 * 1024 * 1024;
    node.cfg.max_head_bytes = 32 * 1024;
    node.cfg.max_conns = 18000;
    node.cfg.drain_timeout_ms = 10000;
    if (parse_flags(argc, argv, &node.cfg) < 0)
        return 2;
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

    mcpgw_httpd_config_defaults(&hcfg);
    hcfg.max_body_bytes = node.cfg.max_body_bytes;
    hcfg.max_head_bytes = node.cfg.max_head_bytes;
    hcfg.max_conns = node.cfg.max_conns;
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
        gc.seeds = (const char *const *)node.cfg.gossip_seeds;
        gc.nseeds = node.cfg.ngossip_seeds;
        gc.http_addr = node.cfg.advertise[0] ? node.cfg.advertise : node.cfg.listen;
        gc.serving = 1;
        gc.keyring_path = node.cfg.gossip_keyring[0] ? node.cfg.gossip_keyring : NULL;
        node.gossip = mcpgw_gossip_new(node.base, &gc, err, sizeof(err));
        if (!node.gossip || mcpgw_gossip_start(node.gossip) < 0) {
            log_error("gossip: %s", node.gossip ? "cannot start" : err);
            goto out;
        }
    }
    mcpgw_cluster_start(&node);
    sigterm = evsignal_new(node.base, SIGTERM, on_signal, &node);
    sigint = evsignal_new(node.base, SIGINT, on_signal, &node);
    sighup = evsignal_new(node.base, SIGHUP, on_hup, &node);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);
    log_info("listening on http://%s/mcp (store %s, %u shards, idle expiry %llus)", node.cfg.listen,
             node.cfg.store, 1u << node.cfg.shard_bits,
             (unsigned long long)(node.cfg.session_idle_ms / 1000));
    event_base_dispatch(node.base);
    rc = 0;
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    /* Sessions go before the registry (its contract) and the server (ending their streams makes
     * those connections idle, which mcpgw_httpd_free closes), so LeakSanitizer sees real leaks. */
    mcpgw_cluster_stop(&node);
out:
    if (node.gossip) {
        mcpgw_gossip_leave(node.gossip);
        mcpgw_gossip_free(node.gossip);
    }
    free_list(node.cfg.gossip_seeds, node.cfg.ngossip_seeds);
    mcpgw_store_free(node.store);
    mcpgw_fanout_free(node.fanout);
    mcpgw_httpd_free(node.httpd);
    mcpgw_notes_free(node.notes);
    mcpgw_metrics_free(node.metrics);
    mcpgw_registry_free(node.reg);
    free_list(node.cfg.allowed_hosts, node.cfg.nallowed_hosts);
    free_list(node.cfg.allowed_origins, node.cfg.nallowed_origins);
    event_base_free(node.base);
    return rc;
}
