/* config.c - the node's settings: option rows (common/opts.h), validation, live reload. */
#include "node/config.h"

#include "common/log.h"
#include "common/util.h"

#include <string.h>

#define F(field)                                                                                   \
    offsetof(struct mcpgw_node_config, field), sizeof(((struct mcpgw_node_config *)0)->field)
#define LIVE .flags = MCPGW_OPTS_LIVE

/* Each setting once: flag, config-file key, default, --help line, and whether a SIGHUP may
 * change it while the node runs (LIVE). What cannot change live: the listener, the node's id
 * (session ids carry it), the store and the registry's shards (they hold the sessions), the
 * idle expiry (the Redis store's record TTL is set from it at start), and gossip. */
static const struct mcpgw_opts_row rows[] = {
    {"config", MCPGW_OPTS_CONFIG, F(config_path), NULL, "FILE",
     "read settings from FILE (keys as the flags); SIGHUP reads it again"},
    {"listen", MCPGW_OPTS_STR, F(listen), "127.0.0.1:8801", "HOST:PORT", "HTTP listen address"},
    {"node-id", MCPGW_OPTS_STR, F(node_id), "n1", "ID",
     "node id, prefix of minted session ids (1-31 characters of [A-Za-z0-9_-])"},
    {"store", MCPGW_OPTS_STR, F(store), "memory", "URL",
     "memory (this process only) or redis://HOST:PORT (replicated; see docs/replication.md)"},
    {"shards", MCPGW_OPTS_UINT, F(shard_bits), "8", "K", "2^K registry shards", .max = 16},
    {"session-idle", MCPGW_OPTS_DURATION, F(session_idle_ms), "30m", "DUR", "idle session expiry",
     .min = 1},
    {"init-timeout", MCPGW_OPTS_DURATION, F(init_timeout_ms), "30s", "DUR",
     "a session that has not sent notifications/initialized by then is ended", .min = 1, LIVE},
    {"max-sessions", MCPGW_OPTS_UINT, F(max_sessions), "1000000", "N",
     "refuse initialize above N sessions", .min = 1, LIVE},
    {"tool-timeout", MCPGW_OPTS_DURATION, F(tool_timeout_ms), "60s", "DUR", "tools/call deadline",
     .min = 1, LIVE},
    {"client-timeout", MCPGW_OPTS_DURATION, F(client_request_timeout_ms), "60s", "DUR",
     "wait for sampling/elicitation answers", .min = 1, LIVE},
    {"page-size", MCPGW_OPTS_UINT, F(page_size), "100", "N", "items per list page", .min = 1, LIVE},
    {"sse-retry", MCPGW_OPTS_DURATION, F(sse_retry_ms), "1s", "DUR",
     "retry: advertised to SSE clients", LIVE},
    {"allowed-hosts", MCPGW_OPTS_LIST, F(allowed_hosts), "localhost,127.0.0.1,::1", "LIST",
     "Host names accepted, comma-separated, '*' for any", LIVE},
    {"allowed-origins", MCPGW_OPTS_LIST, F(allowed_origins), NULL, "LIST",
     "extra Origins accepted (scheme://host[:port]), '*' for any", LIVE},
    {"max-body", MCPGW_OPTS_SIZE, F(max_body_bytes), "16m", "SIZE", "request body limit (413)",
     .min = 1, LIVE},
    {"max-headers", MCPGW_OPTS_SIZE, F(max_head_bytes), "32k", "SIZE", "request head limit (431)",
     .min = 1024, .max = 1u << 30, LIVE},
    {"max-stream-buffer", MCPGW_OPTS_SIZE, F(max_stream_buffer), "4m", "SIZE",
     "unsent bytes a stream may queue; a client that reads slower is dropped (counted in "
     "mcpgw_node_streams_dropped_total)",
     .min = 4096},
    {"max-conns", MCPGW_OPTS_UINT, F(max_conns), "18000", "N",
     "client connections; more get 503 (lowering it closes none)", .min = 1, LIVE},
    {"gossip-bind", MCPGW_OPTS_STR, F(gossip_bind), NULL, "HOST:PORT",
     "join the cluster's SWIM gossip on this UDP address"},
    {"gossip-seeds", MCPGW_OPTS_LIST, F(gossip_seeds), NULL, "LIST",
     "host:port of gossip members to join through"},
    {"gossip-advertise", MCPGW_OPTS_STR, F(gossip_advertise), NULL, "HOST:PORT",
     "UDP address others reach us at (default: --gossip-bind)"},
    {"gossip-keyring", MCPGW_OPTS_STR, F(gossip_keyring), NULL, "FILE",
     "authenticate and encrypt gossip with this key ring (re-read on SIGHUP: docs/gossip.md)"},
    {"state-keyring", MCPGW_OPTS_STR, F(state_keyring), NULL, "FILE",
     "seal MRTR requestState with this key ring, the same file on every node (first key seals, "
     "all open; re-read on SIGHUP: docs/protocol-2026.md)"},
    {"state-ttl", MCPGW_OPTS_DURATION, F(state_ttl_ms), "10m", "DUR",
     "how long a sealed MRTR requestState can be continued", .min = 1, LIVE},
    {"advertise", MCPGW_OPTS_STR, F(advertise), NULL, "HOST:PORT",
     "HTTP address balancers reach us at (default: --listen)"},
    {"drain-timeout", MCPGW_OPTS_DURATION, F(drain_timeout_ms), "10s", "DUR",
     "on SIGTERM, wait this long for calls", LIVE},
    {"log-level", MCPGW_OPTS_LEVEL, F(log_level), "info", "LEVEL", "debug, info, warn or error",
     LIVE},
};

static const struct mcpgw_opts_spec spec = {
    .prog = "mcpgw-node",
    .rows = rows,
    .nrows = MCPGW_ARRAY_LEN(rows),
    .cfg_size = sizeof(struct mcpgw_node_config),
    .synopsis =
        "usage: mcpgw-node [options]\n"
        "       mcpgw-node --config FILE [--check]\n\n"
        "The MCP engine: Streamable HTTP on /mcp (HTTP/1.1 and h2c), sessions in a sharded\n"
        "registry, resumable SSE streams, built-in tools, /healthz, /readyz, /metrics.\n",
    .epilogue = "Signals: SIGTERM drains (stops taking sessions, ends GET streams, lets calls "
                "finish, exits);\nSIGINT or a second SIGTERM exits now; SIGHUP re-reads the "
                "config file (the flags apply over it\nagain): a file that does not validate "
                "changes nothing, settings without (reloads) are\nreported and kept until a "
                "restart.\nExit status: 0 done, 1 failed at start, 2 bad configuration.\n",
    .check_help = "validate the settings and the config file without binding anything; print "
                  "\"config ok\" and exit 0, or the error and exit 2",
    .flags = MCPGW_OPTS_RELOADS,
};

void mcpgw_node_config_defaults(struct mcpgw_node_config *cfg)
{
    mcpgw_opts_defaults(&spec, cfg);
}

int mcpgw_node_config_parse_text(struct mcpgw_node_config *cfg, const char *text,
                                 const char *origin, char *err, size_t errlen)
{
    return mcpgw_opts_parse_text(&spec, cfg, text, strlen(text), origin, err, errlen);
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

/* name: "host:port" in field, when set. */
static int addr_ok(const char *name, const char *v, char *err, size_t errlen)
{
    char host[256], e[200];
    int port;
    if (!v[0] || mcpgw_parse_hostport(v, host, sizeof(host), &port, e, sizeof(e)) == 0)
        return 1;
    snprintf(err, errlen, "%s: %s", name, e);
    return 0;
}

int mcpgw_node_config_validate(const struct mcpgw_node_config *cfg, char *err, size_t errlen)
{
    if (!node_id_ok(cfg->node_id)) {
        snprintf(err, errlen, "node-id '%s' must be 1-31 characters of [A-Za-z0-9_-]",
                 cfg->node_id);
        return -1;
    }
    if (strcmp(cfg->store, "memory") != 0 && strncmp(cfg->store, "redis://", 8) != 0) {
        snprintf(err, errlen, "store '%s' is not supported (memory or redis://HOST:PORT)",
                 cfg->store);
        return -1;
    }
    if (!cfg->listen[0]) {
        snprintf(err, errlen, "listen needs an address HOST:PORT");
        return -1;
    }
    if (!addr_ok("listen", cfg->listen, err, errlen) ||
        !addr_ok("gossip-bind", cfg->gossip_bind, err, errlen) ||
        !addr_ok("gossip-advertise", cfg->gossip_advertise, err, errlen) ||
        !addr_ok("advertise", cfg->advertise, err, errlen))
        return -1;
    for (int i = 0; i < cfg->gossip_seeds.n; i++)
        if (!addr_ok("gossip-seeds", cfg->gossip_seeds.v[i], err, errlen))
            return -1;
    if (cfg->allowed_hosts.n == 0) {
        snprintf(err, errlen, "allowed-hosts is empty: every request would be refused (403)");
        return -1;
    }
    return 0;
}

int mcpgw_node_config_load(struct mcpgw_node_config *cfg, int argc, char **argv, int *check,
                           int *help, char *err, size_t errlen)
{
    mcpgw_node_config_defaults(cfg);
    if (mcpgw_opts_parse_argv(&spec, cfg, argc, argv, check, help, err, errlen) < 0)
        return -1;
    if (*help)
        return 0;
    return mcpgw_node_config_validate(cfg, err, errlen);
}

struct diff_ctx {
    mcpgw_node_config_diff_fn fn;
    void *arg;
};

static void on_diff(void *arg, const struct mcpgw_opts_row *row, int applied)
{
    struct diff_ctx *d = arg;
    if (d->fn)
        d->fn(d->arg, row->name, applied);
}

int mcpgw_node_config_apply_live(struct mcpgw_node_config *live, struct mcpgw_node_config *next,
                                 mcpgw_node_config_diff_fn fn, void *arg)
{
    struct diff_ctx d = {fn, arg};
    return mcpgw_opts_apply_live(&spec, live, next, on_diff, &d);
}

void mcpgw_node_config_usage(FILE *out)
{
    struct mcpgw_node_config d;
    mcpgw_node_config_defaults(&d);
    mcpgw_opts_usage(out, &spec, &d);
    mcpgw_node_config_free(&d);
}

void mcpgw_node_config_free(struct mcpgw_node_config *cfg)
{
    mcpgw_opts_free(&spec, cfg);
}
