/* config.c - one option table drives the flags, the config file and --help. */
#include "balancer/config.h"

#include "common/log.h"
#include "common/net.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { T_STR, T_UINT, T_SIZE, T_DURATION, T_NODES, T_LEVEL, T_FLAG };

struct opt {
    const char *name; /* flag without "--", and the config-file key */
    enum opt_type type;
    size_t off;  /* field in struct mcpgw_bal_config */
    size_t size; /* T_STR: buffer size; T_UINT: field width */
    const char *arg;
    const char *help;
};

#define F(field)  offsetof(struct mcpgw_bal_config, field)
#define S(field)  sizeof(((struct mcpgw_bal_config *)0)->field)
#define STR(f)    T_STR, F(f), S(f)
#define NUM(t, f) t, F(f), S(f)

static const struct opt opts[] = {
    {"config", STR(config_path), "FILE", "read settings from FILE (same keys as the flags)"},
    {"listen", STR(listen), "HOST:PORT", "client listener"},
    {"nodes", T_NODES, 0, 0, "ID=HOST:PORT,...", "MCP nodes behind the balancer"},
    {"drain", STR(drain_ids), "ID,...", "nodes that take no new sessions (keep their own)"},
    {"gossip-bind", STR(gossip_bind), "HOST:PORT",
     "join the cluster's gossip (UDP) as a non-serving member: nodes come from gossip"},
    {"gossip-seeds", STR(gossip_seeds), "HOST:PORT,...", "gossip members to join through"},
    {"gossip-advertise", STR(gossip_advertise), "HOST:PORT",
     "UDP address other members reach this balancer at (default: --gossip-bind)"},
    {"gossip-keyring", STR(gossip_keyring), "FILE",
     "authenticate and encrypt gossip with this key ring (re-read on SIGHUP)"},
    {"workers", NUM(T_UINT, workers), "K", "worker processes sharing the port (SO_REUSEPORT)"},
    {"admin", STR(admin), "HOST:PORT", "admin listener for /metrics and /healthz (off if empty)"},
    {"tls-cert", STR(tls_cert), "FILE",
     "PEM certificate chain: terminate TLS 1.2+ on the listener"},
    {"tls-key", STR(tls_key), "FILE", "PEM private key for --tls-cert"},
    {"max-clients", NUM(T_UINT, max_clients), "N", "client connections per worker; more get 503"},
    {"max-header-size", NUM(T_SIZE, max_header_size), "SIZE", "request head limit (431 above)"},
    {"max-body-size", NUM(T_SIZE, max_body_size), "SIZE", "request body limit (413 above)"},
    {"header-timeout", NUM(T_DURATION, header_timeout_ms), "DUR",
     "a request head must arrive within this (408)"},
    {"body-timeout", NUM(T_DURATION, body_timeout_ms), "DUR",
     "longest pause inside a request body (408)"},
    {"idle-timeout", NUM(T_DURATION, idle_timeout_ms), "DUR", "idle keep-alive client connection"},
    {"send-timeout", NUM(T_DURATION, send_timeout_ms), "DUR",
     "a client that reads nothing for this long while output is queued is dropped"},
    {"tcp-keepalive", NUM(T_DURATION, tcp_keepalive_ms), "DUR",
     "TCP keep-alive probes after a client socket is idle this long (0 = off)"},
    {"buffer-size", NUM(T_SIZE, buffer_size), "SIZE",
     "queued bytes per direction before reading the other side pauses"},
    {"connect-timeout", NUM(T_DURATION, connect_timeout_ms), "DUR",
     "upstream connect; on expiry the node is marked down and the next one is tried"},
    {"response-timeout", NUM(T_DURATION, response_timeout_ms), "DUR",
     "from request sent to response head (504)"},
    {"source-addrs", STR(source_addrs), "LIST",
     "local IPv4 addresses to connect to nodes from, in turn (127.0.1.1-127.0.1.8,...)"},
    {"stream-mux", NUM(T_UINT, stream_mux), "0|1",
     "1: session GET streams go to a node as HTTP/2 streams over one connection per node and "
     "worker; 0: one connection each"},
    {"stream-resume", NUM(T_UINT, stream_resume), "0|1",
     "1: when a node fails, carry on each of its SSE streams on another node from the last event "
     "the client got (the client sees a comment, not a break); 0: end them, clients resume"},
    {"mux-window", NUM(T_SIZE, mux_window), "SIZE",
     "HTTP/2 window of each node connection: small, so a new stream's head passes the bytes "
     "of a fan-out queued at the node"},
    {"pool-size", NUM(T_UINT, pool_size), "N",
     "idle upstream connections kept per node and worker"},
    {"pool-idle-timeout", NUM(T_DURATION, pool_idle_timeout_ms), "DUR",
     "idle upstream connections are closed after this"},
    {"health-interval", NUM(T_DURATION, health_interval_ms), "DUR", "active check period per node"},
    {"health-timeout", NUM(T_DURATION, health_timeout_ms), "DUR", "one active check"},
    {"health-rise", NUM(T_UINT, health_rise), "N", "passing checks to mark a node up"},
    {"health-fall", NUM(T_UINT, health_fall), "N", "failing checks to mark a node down"},
    {"health-path", STR(health_path), "PATH", "path of the active check (GET)"},
    {"drain-timeout", NUM(T_DURATION, drain_timeout_ms), "DUR",
     "on SIGTERM, in-flight requests get this long to finish"},
    {"log-level", T_LEVEL, F(log_level), S(log_level), "LEVEL", "debug, info, warn or error"},
};

void mcpgw_bal_config_defaults(struct mcpgw_bal_config *cfg)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8800");
    cfg->workers =
        ncpu > 0 ? (int)(ncpu < MCPGW_BAL_MAX_WORKERS ? ncpu : MCPGW_BAL_MAX_WORKERS) : 1;
    cfg->max_clients = 15000;
    cfg->max_header_size = 32 * 1024;
    cfg->max_body_size = 16 * 1024 * 1024;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 30000;
    cfg->idle_timeout_ms = 120000;
    cfg->send_timeout_ms = 60000;
    cfg->tcp_keepalive_ms = MCPGW_TCP_KEEPIDLE_S * 1000;
    cfg->buffer_size = 256 * 1024;
    cfg->connect_timeout_ms = 2000;
    cfg->response_timeout_ms = 60000;
    cfg->pool_size = 64;
    cfg->stream_mux = 1;
    cfg->stream_resume = 1;
    cfg->mux_window = 16 * 1024;
    cfg->pool_idle_timeout_ms = 30000;
    cfg->health_interval_ms = 1000;
    cfg->health_timeout_ms = 1000;
    cfg->health_rise = 2;
    cfg->health_fall = 2;
    snprintf(cfg->health_path, sizeof(cfg->health_path), "/healthz");
    cfg->drain_timeout_ms = 10000;
    cfg->log_level = MCPGW_LOG_INFO;
}

static const struct opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(opts); i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
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

/* Store value into the option's field. */
static int set_opt(struct mcpgw_bal_config *cfg, const struct opt *o, const char *v, char *err,
                   size_t errlen)
{
    char *field = (char *)cfg + o->off;
    uint64_t x;
    char *end;
    switch (o->type) {
    case T_STR:
        if (strlen(v) >= o->size) {
            snprintf(err, errlen, "value of %s is too long (at most %zu bytes)", o->name,
                     o->size - 1);
            return -1;
        }
        snprintf(field, o->size, "%s", v);
        return 0;
    case T_UINT:
        errno = 0;
        x = strtoull(v, &end, 10);
        if (errno || end == v || *end || !isdigit((unsigned char)*v) || x > INT32_MAX) {
            snprintf(err, errlen, "%s wants a whole number, not '%s'", o->name, v);
            return -1;
        }
        if (o->size == sizeof(int))
            *(int *)(void *)field = (int)x;
        else
            *(uint32_t *)(void *)field = (uint32_t)x;
        return 0;
    case T_SIZE:
        if (mcpgw_parse_size(v, &x) < 0) {
            snprintf(err, errlen, "%s wants a size such as 64k or 16m, not '%s'", o->name, v);
            return -1;
        }
        *(uint64_t *)(void *)field = x;
        return 0;
    case T_DURATION:
        if (mcpgw_parse_duration_ms(v, &x) < 0 || x > UINT32_MAX) {
            snprintf(err, errlen, "%s wants a duration such as 500ms, 10s or 2m, not '%s'", o->name,
                     v);
            return -1;
        }
        *(uint32_t *)(void *)field = (uint32_t)x;
        return 0;
    case T_NODES:
        return mcpgw_bal_config_parse_nodes(cfg, v, err, errlen);
    case T_LEVEL: {
        int l = mcpgw_log_level_parse(v);
        if (l < 0) {
            snprintf(err, errlen, "log-level wants debug, info, warn or error, not '%s'", v);
            return -1;
        }
        cfg->log_level = l;
        return 0;
    }
    case T_FLAG:
        return 0;
    }
    return -1;
}

int mcpgw_bal_config_parse_text(struct mcpgw_bal_config *cfg, const char *text, const char *origin,
                                char *err, size_t errlen)
{
    const char *p = text;
    int lineno = 0, file_nodes = 0;
    char e[256];

    while (*p) {
        const char *nl = strchr(p, '\n'), *key;
        size_t len = nl ? (size_t)(nl - p) : strlen(p), klen;
        char line[1024], *words[4];
        int nargs = 0;

        lineno++;
        if (len >= sizeof(line)) {
            snprintf(err, errlen, "%s:%d: line too long", origin, lineno);
            return -1;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        {
            char *hash = strchr(line, '#');
            if (hash)
                *hash = '\0';
        }
        for (char *s = line; *s;) {
            while (*s == ' ' || *s == '\t' || *s == '\r')
                s++;
            if (!*s)
                break;
            if (nargs == 4) {
                snprintf(err, errlen, "%s:%d: too many words", origin, lineno);
                return -1;
            }
            words[nargs++] = s;
            while (*s && *s != ' ' && *s != '\t' && *s != '\r')
                s++;
            if (*s)
                *s++ = '\0';
        }
        if (nargs == 0)
            continue;
        key = words[0];
        klen = strlen(key);
        if (strcmp(key, "node") == 0) {
            /* node ID HOST:PORT [drain]; the first node line replaces the current list. */
            if (nargs < 3 || (nargs == 4 && strcmp(words[3], "drain") != 0)) {
                snprintf(err, errlen, "%s:%d: expected 'node ID HOST:PORT [drain]'", origin,
                         lineno);
                return -1;
            }
            if (!file_nodes)
                cfg->nnodes = 0;
            file_nodes = 1;
            if (add_node(cfg, words[1], strlen(words[1]), words[2], strlen(words[2]), nargs == 4, e,
                         sizeof(e)) < 0)
                goto bad;
            continue;
        }
        {
            const struct opt *o = find_opt(key, klen);
            if (!o || o->type == T_FLAG || strcmp(o->name, "config") == 0) {
                snprintf(err, errlen, "%s:%d: unknown setting '%s'", origin, lineno, key);
                return -1;
            }
            if (nargs != 2) {
                snprintf(err, errlen, "%s:%d: '%s' takes exactly one value", origin, lineno, key);
                return -1;
            }
            if (set_opt(cfg, o, words[1], e, sizeof(e)) < 0)
                goto bad;
        }
        continue;
    bad:
        snprintf(err, errlen, "%s:%d: %s", origin, lineno, e);
        return -1;
    }
    return 0;
}

static int load_file(struct mcpgw_bal_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    if (!f) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;
        if (cap - len < 4097) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 1024 * 1024) {
                snprintf(err, errlen, "config file %s is over 1 MiB", path);
                goto out;
            }
            text = xrealloc(text, cap);
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        goto out;
    }
    text[len] = '\0';
    rc = mcpgw_bal_config_parse_text(cfg, text, path, err, errlen);
out:
    free(text);
    fclose(f);
    return rc;
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
    char e[384];
    *check = *help = 0;
    mcpgw_bal_config_defaults(cfg);
    /* First pass: --config, --check and --help, so the file applies before the other flags. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (strcmp(argv[i], "--check") == 0)
            *check = 1;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", argv[++i]);
        else if (strncmp(argv[i], "--config=", 9) == 0)
            snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", argv[i] + 9);
    }
    if (cfg->config_path[0] && load_file(cfg, cfg->config_path, err, errlen) < 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val, *eq;
        const struct opt *o;
        if (strcmp(a, "--check") == 0)
            continue;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return -1;
        }
        a += 2;
        eq = strchr(a, '=');
        o = find_opt(a, eq ? (size_t)(eq - a) : strlen(a));
        if (!o) {
            snprintf(err, errlen, "unknown flag '%s' (see --help)", argv[i]);
            return -1;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            snprintf(err, errlen, "flag --%s needs a value %s", o->name, o->arg);
            return -1;
        }
        if (strcmp(o->name, "config") == 0)
            continue;
        if (set_opt(cfg, o, val, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "%s", e);
            return -1;
        }
    }
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
    fprintf(out,
            "usage: %s --listen HOST:PORT --nodes ID=HOST:PORT,... [options]\n"
            "       %s --config FILE [--check]\n\n"
            "Stateless sticky front for mcpgw nodes: requests with Mcp-Session-Id go to the node\n"
            "named by the id's prefix (or the rendezvous-hash choice among nodes that are up);\n"
            "requests without a session go by load (power of two choices).\n\n",
            prog, prog);
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(opts); i++) {
        const struct opt *o = &opts[i];
        const char *field = (const char *)&d + o->off;
        char def[64] = "";
        char flag[64];
        switch (o->type) {
        case T_STR:
            if (*field)
                snprintf(def, sizeof(def), "%s", field);
            break;
        case T_UINT:
            snprintf(def, sizeof(def), "%u",
                     o->size == sizeof(int) ? (unsigned)*(const int *)(const void *)field
                                            : *(const uint32_t *)(const void *)field);
            break;
        case T_SIZE:
            snprintf(def, sizeof(def), "%llu",
                     (unsigned long long)*(const uint64_t *)(const void *)field);
            break;
        case T_DURATION:
            snprintf(def, sizeof(def), "%ums", *(const uint32_t *)(const void *)field);
            break;
        case T_LEVEL:
            snprintf(def, sizeof(def), "%s", mcpgw_log_level_str(d.log_level));
            break;
        default:
            break;
        }
        snprintf(flag, sizeof(flag), "--%s %s", o->name, o->arg);
        fprintf(out, "  %-32s %s%s%s%s\n", flag, o->help, def[0] ? " [" : "", def,
                def[0] ? "]" : "");
    }
    fprintf(out, "  %-32s %s\n", "--check", "validate the configuration, print a summary, exit");
    fprintf(out, "  %-32s %s\n", "--help", "this text");
    fprintf(
        out,
        "\nConfig file: one 'key value' per line, keys as the flags without '--'; '#' starts a\n"
        "comment; nodes as 'node ID HOST:PORT' lines. Flags override the file.\n"
        "Signals: SIGTERM/SIGINT drain and exit; SIGHUP re-reads the config file and applies\n"
        "its node list and health settings without dropping connections, and re-reads the\n"
        "gossip key ring.\n");
}
