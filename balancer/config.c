/* config.c - the balancer's settings: option rows (common/opts.h), node lists, validation. */
#include "balancer/config.h"

#include "common/log.h"
#include "common/opts.h"
#include "common/net.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(field)                                                                                   \
    offsetof(struct mcpgw_bal_config, field), sizeof(((struct mcpgw_bal_config *)0)->field)
#define LIVE .flags = MCPGW_OPTS_LIVE

static int set_nodes(void *cfg, int nwords, char **words, int first, char *err, size_t errlen);
static int set_node_line(void *cfg, int nwords, char **words, int first, char *err, size_t errlen);

/* Each setting once: flag, config-file key, default and --help line (common/opts.h). LIVE rows
 * are the ones a SIGHUP applies (main.c, on_hup). */
static const struct mcpgw_opts_row rows[] = {
    {"config", MCPGW_OPTS_CONFIG, F(config_path), NULL, "FILE",
     "read settings from FILE (same keys as the flags)"},
    {"listen", MCPGW_OPTS_STR, F(listen), "127.0.0.1:8800", "HOST:PORT", "client listener"},
    {"nodes", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "ID=HOST:PORT,...", "MCP nodes behind the balancer",
     .set = set_nodes, LIVE},
    {"node", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "ID HOST:PORT [drain]",
     "one node per line (the first line replaces the list); drain: it takes no new sessions",
     .set = set_node_line, .flags = MCPGW_OPTS_LIVE | MCPGW_OPTS_WORDS | MCPGW_OPTS_FILE_ONLY},
    {"drain", MCPGW_OPTS_STR, F(drain_ids), NULL, "ID,...",
     "nodes that take no new sessions (keep their own)", LIVE},
    {"gossip-bind", MCPGW_OPTS_STR, F(gossip_bind), NULL, "HOST:PORT",
     "join the cluster's gossip (UDP) as a non-serving member: nodes come from gossip"},
    {"gossip-seeds", MCPGW_OPTS_STR, F(gossip_seeds), NULL, "HOST:PORT,...",
     "gossip members to join through"},
    {"gossip-advertise", MCPGW_OPTS_STR, F(gossip_advertise), NULL, "HOST:PORT",
     "UDP address other members reach this balancer at (default: --gossip-bind)"},
    {"gossip-keyring", MCPGW_OPTS_STR, F(gossip_keyring), NULL, "FILE",
     "authenticate and encrypt gossip with this key ring (re-read on SIGHUP)"},
    {"workers", MCPGW_OPTS_UINT, F(workers), NULL, "K",
     "worker processes sharing the port (SO_REUSEPORT); default: one per CPU"},
    {"admin", MCPGW_OPTS_STR, F(admin), NULL, "HOST:PORT",
     "admin listener for /metrics and /healthz (off if empty)"},
    {"balancer-secret", MCPGW_OPTS_STR, F(balancer_secret), NULL, "SECRET",
     "send SECRET to the nodes in X-Mcpgw-Balancer (nodes with --balancer-secret serve only "
     "such requests); put it in the config file as ${VAR}, not on the command line"},
    {"tls-cert", MCPGW_OPTS_STR, F(tls_cert), NULL, "FILE",
     "PEM certificate chain: terminate TLS 1.2+ on the listener"},
    {"tls-key", MCPGW_OPTS_STR, F(tls_key), NULL, "FILE", "PEM private key for --tls-cert"},
    {"max-clients", MCPGW_OPTS_UINT, F(max_clients), "15000", "N",
     "client connections per worker; more get 503"},
    {"max-header-size", MCPGW_OPTS_SIZE, F(max_header_size), "32k", "SIZE",
     "request head limit (431 above)"},
    {"max-body-size", MCPGW_OPTS_SIZE, F(max_body_size), "16m", "SIZE",
     "request body limit (413 above)"},
    {"header-timeout", MCPGW_OPTS_DURATION, F(header_timeout_ms), "10s", "DUR",
     "a request head must arrive within this (408)"},
    {"body-timeout", MCPGW_OPTS_DURATION, F(body_timeout_ms), "30s", "DUR",
     "longest pause inside a request body (408)"},
    {"idle-timeout", MCPGW_OPTS_DURATION, F(idle_timeout_ms), "2m", "DUR",
     "idle keep-alive client connection"},
    {"send-timeout", MCPGW_OPTS_DURATION, F(send_timeout_ms), "1m", "DUR",
     "a client that reads nothing for this long while output is queued is dropped"},
    {"tcp-keepalive", MCPGW_OPTS_DURATION, F(tcp_keepalive_ms), "60s", "DUR",
     "TCP keep-alive probes after a client socket is idle this long (0 = off)"},
    {"buffer-size", MCPGW_OPTS_SIZE, F(buffer_size), "256k", "SIZE",
     "queued bytes per direction before reading the other side pauses"},
    {"connect-timeout", MCPGW_OPTS_DURATION, F(connect_timeout_ms), "2s", "DUR",
     "upstream connect; on expiry the node is marked down and the next one is tried"},
    {"response-timeout", MCPGW_OPTS_DURATION, F(response_timeout_ms), "1m", "DUR",
     "from request sent to response head (504)"},
    {"source-addrs", MCPGW_OPTS_STR, F(source_addrs), NULL, "LIST",
     "local IPv4 addresses to connect to nodes from, in turn (127.0.1.1-127.0.1.8,...)"},
    {"stream-mux", MCPGW_OPTS_BOOL, F(stream_mux), "1", "0|1",
     "1: session GET streams go to a node as HTTP/2 streams over one connection per node and "
     "worker; 0: one connection each"},
    {"stream-resume", MCPGW_OPTS_BOOL, F(stream_resume), "1", "0|1",
     "1: when a node fails, carry on each of its SSE streams on another node from the last event "
     "the client got (the client sees a comment, not a break); 0: end them, clients resume"},
    {"mux-window", MCPGW_OPTS_SIZE, F(mux_window), "16k", "SIZE",
     "HTTP/2 window of each node connection: small, so a new stream's head passes the bytes "
     "of a fan-out queued at the node"},
    {"pool-size", MCPGW_OPTS_UINT, F(pool_size), "64", "N",
     "idle upstream connections kept per node and worker"},
    {"pool-idle-timeout", MCPGW_OPTS_DURATION, F(pool_idle_timeout_ms), "30s", "DUR",
     "idle upstream connections are closed after this"},
    {"health-interval", MCPGW_OPTS_DURATION, F(health_interval_ms), "1s", "DUR",
     "active check period per node", LIVE},
    {"health-timeout", MCPGW_OPTS_DURATION, F(health_timeout_ms), "1s", "DUR", "one active check",
     LIVE},
    {"health-rise", MCPGW_OPTS_UINT, F(health_rise), "2", "N", "passing checks to mark a node up",
     LIVE},
    {"health-fall", MCPGW_OPTS_UINT, F(health_fall), "2", "N", "failing checks to mark a node down",
     LIVE},
    {"health-path", MCPGW_OPTS_STR, F(health_path), "/healthz", "PATH",
     "path of the active check (GET)", LIVE},
    {"drain-timeout", MCPGW_OPTS_DURATION, F(drain_timeout_ms), "10s", "DUR",
     "on SIGTERM, in-flight requests get this long to finish"},
    {"log-level", MCPGW_OPTS_LEVEL, F(log_level), "info", "LEVEL", "debug, info, warn or error"},
};

static const struct mcpgw_opts_spec spec = {
    .prog = "mcpgw-balancer",
    .rows = rows,
    .nrows = MCPGW_ARRAY_LEN(rows),
    .cfg_size = sizeof(struct mcpgw_bal_config),
    .synopsis =
        "usage: mcpgw-balancer --listen HOST:PORT --nodes ID=HOST:PORT,... [options]\n"
        "       mcpgw-balancer --config FILE [--check]\n\n"
        "Stateless sticky front for mcpgw nodes: requests with Mcp-Session-Id go to the node\n"
        "named by the id's prefix (or the rendezvous-hash choice among nodes that are up);\n"
        "requests without a session go by load (power of two choices).\n",
    .epilogue = "Signals: SIGTERM/SIGINT drain and exit; SIGHUP re-reads the config file (the "
                "flags apply over it\nagain) and applies its node list and health settings "
                "without dropping connections, and\nre-reads the gossip key ring.\n",
    .check_help = "validate the configuration, print a summary, exit (0: valid, 2: not)",
    .flags = MCPGW_OPTS_RELOADS,
};

void mcpgw_bal_config_defaults(struct mcpgw_bal_config *cfg)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    mcpgw_opts_defaults(&spec, cfg);
    cfg->workers =
        ncpu > 0 ? (int)(ncpu < MCPGW_BAL_MAX_WORKERS ? ncpu : MCPGW_BAL_MAX_WORKERS) : 1;
}

static int valid_id(const char *s, size_t n)
{
    if (n == 0 || n >= MCPGW_BAL_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

/* Add one node; id and addr are (ptr,len) tokens. */
static int add_node(struct mcpgw_bal_config *cfg, const char *id, size_t idlen, const char *addr,
                    size_t addrlen, int draining, char *err, size_t errlen)
{
    struct mcpgw_bal_node_spec *n;
    if (!valid_id(id, idlen)) {
        snprintf(err, errlen,
                 "node id '%.*s' is invalid: use 1-%d letters, digits, '-' or '_' (no '.')",
                 (int)idlen, id, MCPGW_BAL_ID_MAX - 1);
        return -1;
    }
    if (addrlen == 0 || addrlen >= MCPGW_BAL_ADDR_MAX) {
        snprintf(err, errlen, "node '%.*s' needs an address host:port", (int)idlen, id);
        return -1;
    }
    if (cfg->nnodes == MCPGW_BAL_MAX_NODES) {
        snprintf(err, errlen, "too many nodes: at most %d", MCPGW_BAL_MAX_NODES);
        return -1;
    }
    n = &cfg->nodes[cfg->nnodes++];
    memset(n, 0, sizeof(*n));
    memcpy(n->id, id, idlen);
    memcpy(n->addr, addr, addrlen);
    n->draining = draining ? 1 : 0;
    return 0;
}

int mcpgw_bal_config_parse_nodes(struct mcpgw_bal_config *cfg, const char *list, char *err,
                                 size_t errlen)
{
    const char *p = list;
    cfg->nnodes = 0;
    while (*p) {
        const char *comma = strchr(p, ','), *eq;
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        eq = memchr(p, '=', len);
        if (!eq) {
            snprintf(err, errlen, "node '%.*s' is not of the form id=host:port", (int)len, p);
            return -1;
        }
        if (add_node(cfg, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1, 0, err, errlen) <
            0)
            return -1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int set_nodes(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    return mcpgw_bal_config_parse_nodes(cfg, words[0], err, errlen);
}

/* node ID HOST:PORT [drain]: the first node line of a file replaces the current list. */
static int set_node_line(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_bal_config *c = cfg;
    if (nwords < 2 || nwords > 3 || (nwords == 3 && strcmp(words[2], "drain") != 0)) {
        snprintf(err, errlen, "expected 'node ID HOST:PORT [drain]'");
        return -1;
    }
    if (first)
        c->nnodes = 0;
    return add_node(c, words[0], strlen(words[0]), words[1], strlen(words[1]), nwords == 3, err,
                    errlen);
}

int mcpgw_bal_config_parse_text(struct mcpgw_bal_config *cfg, const char *text, const char *origin,
                                char *err, size_t errlen)
{
    return mcpgw_opts_parse_text(&spec, cfg, text, strlen(text), origin, err, errlen);
}

/* Mark the nodes named in drain_ids. */
static int apply_drain(struct mcpgw_bal_config *cfg, char *err, size_t errlen)
{
    const char *p = cfg->drain_ids;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < cfg->nnodes; i++)
            if (strlen(cfg->nodes[i].id) == len && memcmp(cfg->nodes[i].id, p, len) == 0) {
                cfg->nodes[i].draining = 1;
                found = 1;
            }
        if (!found && len) {
            snprintf(err, errlen, "drain names node '%.*s', which is not in the node list",
                     (int)len, p);
            return -1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int mcpgw_bal_config_load(struct mcpgw_bal_config *cfg, int argc, char **argv, int *check,
                          int *help, char *err, size_t errlen)
{
    mcpgw_bal_config_defaults(cfg);
    if (mcpgw_opts_parse_argv(&spec, cfg, argc, argv, check, help, err, errlen) < 0)
        return -1;
    if (*help)
        return 0;
    if (apply_drain(cfg, err, errlen) < 0)
        return -1;
    return mcpgw_bal_config_validate(cfg, err, errlen);
}

int mcpgw_bal_config_validate(struct mcpgw_bal_config *cfg, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (mcpgw_parse_hostport(cfg->listen, host, sizeof(host), &port, err, errlen) < 0)
        return -1;
    if (cfg->admin[0] &&
        mcpgw_parse_hostport(cfg->admin, host, sizeof(host), &port, err, errlen) < 0)
        return -1;
    if (cfg->admin[0] && strcmp(cfg->admin, cfg->listen) == 0) {
        snprintf(err, errlen, "admin and listen must be different addresses");
        return -1;
    }
    if (cfg->nnodes == 0 && !cfg->gossip_bind[0]) {
        snprintf(err, errlen,
                 "no nodes: give --nodes id=host:port,... or 'node' lines, or --gossip-bind");
        return -1;
    }
    if (cfg->gossip_bind[0] &&
        mcpgw_parse_hostport(cfg->gossip_bind, host, sizeof(host), &port, err, errlen) < 0)
        return -1;
    for (int i = 0; i < cfg->nnodes; i++) {
        char e[256];
        if (mcpgw_parse_hostport(cfg->nodes[i].addr, host, sizeof(host), &port, e, sizeof(e)) < 0 ||
            port == 0) {
            snprintf(err, errlen, "node %s: %s", cfg->nodes[i].id,
                     port == 0 ? "port 0 is not a node address" : e);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cfg->nodes[i].id, cfg->nodes[j].id) == 0) {
                snprintf(err, errlen, "node id '%s' appears twice", cfg->nodes[i].id);
                return -1;
            }
    }
    if (cfg->workers < 1 || cfg->workers > MCPGW_BAL_MAX_WORKERS) {
        snprintf(err, errlen, "workers must be between 1 and %d", MCPGW_BAL_MAX_WORKERS);
        return -1;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, errlen, "tls-cert and tls-key must be given together");
        return -1;
    }
    if (cfg->max_clients < 1) {
        snprintf(err, errlen, "max-clients must be at least 1");
        return -1;
    }
    if (cfg->max_header_size < 1024 || cfg->max_header_size > 1024 * 1024) {
        snprintf(err, errlen, "max-header-size must be between 1k and 1m");
        return -1;
    }
    if (cfg->buffer_size < 16 * 1024) {
        snprintf(err, errlen, "buffer-size must be at least 16k");
        return -1;
    }
    if (!cfg->header_timeout_ms || !cfg->body_timeout_ms || !cfg->idle_timeout_ms ||
        !cfg->send_timeout_ms || !cfg->connect_timeout_ms || !cfg->response_timeout_ms ||
        !cfg->pool_idle_timeout_ms || !cfg->health_interval_ms || !cfg->health_timeout_ms) {
        snprintf(err, errlen, "timeouts and intervals must be greater than zero");
        return -1;
    }
    if (cfg->tcp_keepalive_ms > MCPGW_TCP_KEEPIDLE_MAX_S * 1000u) {
        snprintf(err, errlen, "tcp-keepalive must be at most %us", MCPGW_TCP_KEEPIDLE_MAX_S);
        return -1;
    }
    if (cfg->stream_mux > 1) {
        snprintf(err, errlen, "stream-mux must be 0 or 1");
        return -1;
    }
    if (cfg->stream_resume > 1) {
        snprintf(err, errlen, "stream-resume must be 0 or 1");
        return -1;
    }
    if (cfg->mux_window < 4 * 1024 || cfg->mux_window > 1024 * 1024 * 1024) {
        snprintf(err, errlen, "mux-window must be between 4k and 1g");
        return -1;
    }
    if (cfg->health_rise < 1 || cfg->health_fall < 1) {
        snprintf(err, errlen, "health-rise and health-fall must be at least 1");
        return -1;
    }
    if (cfg->health_path[0] != '/' || strpbrk(cfg->health_path, " \r\n\t")) {
        snprintf(err, errlen, "health-path must start with '/' and contain no spaces");
        return -1;
    }
    cfg->nsources = 0;
    if (cfg->source_addrs[0]) {
        char e[200];
        if (mcpgw_parse_ipv4_list(cfg->source_addrs, cfg->sources, MCPGW_BAL_MAX_SOURCES,
                                  &cfg->nsources, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "source-addrs: %s", e);
            return -1;
        }
    }
    return 0;
}

void mcpgw_bal_config_usage(FILE *out, const char *prog)
{
    struct mcpgw_bal_config d;
    mcpgw_bal_config_defaults(&d);
    mcpgw_opts_usage(out, &spec, &d);
}
