/* config.c - the node's settings: option rows (common/opts.h), validation, live reload. */
#include "node/config.h"

#include "common/log.h"
#include "common/net.h"
#include "common/util.h"
#include "node/authz.h"
#include "node/limitcfg.h"
#include "node/upcfg.h"

#include <stdio.h>
#include <string.h>

#define F(field)                                                                                   \
    offsetof(struct mcpgw_node_config, field), sizeof(((struct mcpgw_node_config *)0)->field)
#define LIVE .flags = MCPGW_OPTS_LIVE

static int set_builtins(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    static const char *const v[] = {"auto", "on", "off"};
    for (int i = 0; i < 3; i++)
        if (strcmp(words[0], v[i]) == 0) {
            ((struct mcpgw_node_config *)cfg)->builtins = i;
            return 0;
        }
    snprintf(err, errlen, "builtins '%.60s' is not auto, on or off", words[0]);
    return -1;
}

static int set_limit(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    return mcpgw_limitcfg_parse(&((struct mcpgw_node_config *)cfg)->limits, nwords, words, first,
                                err, errlen);
}

static int set_allow(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    return mcpgw_authz_parse(&((struct mcpgw_node_config *)cfg)->authz, 1, nwords, words, first,
                             err, errlen);
}

static int set_deny(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    return mcpgw_authz_parse(&((struct mcpgw_node_config *)cfg)->authz, 0, nwords, words, first,
                             err, errlen);
}

static int set_authz_default(void *cfg, int nwords, char **words, int first, char *err,
                             size_t errlen)
{
    (void)nwords, (void)first;
    return mcpgw_authz_parse_default(&((struct mcpgw_node_config *)cfg)->authz, words[0], err,
                                     errlen);
}

static int set_upstream(void *cfg, int nwords, char **words, int first, char *err, size_t errlen)
{
    return mcpgw_upcfg_parse(&((struct mcpgw_node_config *)cfg)->upstreams, nwords, words, first,
                             err, errlen);
}

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
     "memory (this process only) or redis://[USER:PASSWORD@]HOST:PORT (replicated; see "
     "docs/replication.md; the password may come from MCPGW_REDIS_PASSWORD)"},
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
    {"upstream-principals", MCPGW_OPTS_UINT, F(upprin_max), "10000", "N",
     "principals holding per-client upstream sessions for 2026-07-28 calls on this node; above "
     "it the least recently used idle one is closed, or the call refused",
     .min = 1, LIVE},
    {"upstream-principal-idle", MCPGW_OPTS_DURATION, F(upprin_idle_ms), "10m", "DUR",
     "a principal's per-client upstream sessions unused this long are closed", .min = 1, LIVE},
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
    {"sse-keepalive", MCPGW_OPTS_DURATION, F(sse_keepalive_ms), "15s", "DUR",
     "a comment on every open SSE stream this often (whole seconds), so a dead one fails "
     "within sse-keepalive + tcp-user-timeout; 0: off",
     LIVE},
    {"tcp-keepalive", MCPGW_OPTS_DURATION, F(tcp_keepalive_ms), "60s", "DUR",
     "idle time before TCP keep-alive probes on client sockets; 0: off"},
    {"tcp-user-timeout", MCPGW_OPTS_DURATION, F(tcp_user_timeout_ms), "30s", "DUR",
     "a client socket whose sent data (or probes) stays unacknowledged this long is closed "
     "(TCP_USER_TIMEOUT); 0: the kernel's default (about 15 minutes)"},
    {"fanout-queue-max", MCPGW_OPTS_UINT, F(fanout_queue_max), "10000", "N",
     "resource updates waiting for delivery to local subscribers; above it an update's "
     "subscribers have their GET streams ended and resume from the store (counted)",
     .min = 1, LIVE},
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
    {"task-tools", MCPGW_OPTS_LIST, F(task_tools), NULL, "LIST",
     "tools (as listed, upstream ones included) that run as tasks for 2026-07-28 clients of the "
     "tasks extension; failed if their node dies (docs/protocol-2026.md)",
     LIVE},
    {"task-idempotent", MCPGW_OPTS_LIST, F(task_idempotent), NULL, "LIST",
     "as --task-tools, and run again on another node if their node dies", LIVE},
    {"advertise", MCPGW_OPTS_STR, F(advertise), NULL, "HOST:PORT",
     "HTTP address balancers reach us at (default: --listen)"},
    {"drain-timeout", MCPGW_OPTS_DURATION, F(drain_timeout_ms), "10s", "DUR",
     "on SIGTERM, wait this long for calls", LIVE},
    {"upstream", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "NAME KIND TARGET [key=value...]",
     "an upstream MCP server to serve (config file only; repeatable; docs/federation.md): NAME "
     "http URL, or NAME stdio \"COMMAND LINE\"; keys prefix=, header=\"K: V\", tools=GLOBS, "
     "exclude=GLOBS, timeout=DUR, session=shared|per-client, max-inflight=N, max-procs=N, h2c=1, "
     "oauth-token-url=, oauth-client-id=, oauth-client-secret=, oauth-scope=, oauth-resource=, "
     "oauth-client-auth=basic|post (OAuth client credentials: docs/security.md)",
     .set = set_upstream, .flags = MCPGW_OPTS_WORDS | MCPGW_OPTS_FILE_ONLY | MCPGW_OPTS_LIVE},
    {"limit", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "KIND VALUE [key=value...]",
     "a limit per principal (config file only; repeatable; docs/security.md, \"Limits\"): rate "
     "N/s|N/m|N/h [burst=N] [tool=NAME] [principal=P], concurrency N [principal=P], sessions N "
     "[principal=P]; `unlimited` as the value lifts a limit for one principal",
     .set = set_limit, .flags = MCPGW_OPTS_WORDS | MCPGW_OPTS_FILE_ONLY | MCPGW_OPTS_LIVE},
    {"builtins", MCPGW_OPTS_CUSTOM, F(builtins), "auto", "auto|on|off",
     "serve the built-in tools, resources and prompts (auto: only when no upstream is "
     "configured)",
     .set = set_builtins, LIVE},
    {"allow", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "KEY=VALUES...",
     "authorization rule (config file only; repeatable; docs/security.md): what it names "
     "(upstream=, tool=, prompt= or resource= globs) needs its scope= and claim=NAME:VALUE",
     .set = set_allow, .flags = MCPGW_OPTS_WORDS | MCPGW_OPTS_FILE_ONLY | MCPGW_OPTS_LIVE},
    {"deny", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "KEY=VALUES...",
     "authorization rule (config file only; repeatable): what it names is refused when its "
     "scope= and claim= conditions hold",
     .set = set_deny, .flags = MCPGW_OPTS_WORDS | MCPGW_OPTS_FILE_ONLY | MCPGW_OPTS_LIVE},
    {"authz-default", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "allow|deny",
     "what an item no allow rule names gets once rules exist (default: deny)",
     .set = set_authz_default, LIVE},
    {"auth", MCPGW_OPTS_STR, F(auth), "off", "MODE",
     "client authentication: off, jwt (OAuth access tokens), apikey, or both"},
    {"auth-issuer", MCPGW_OPTS_STR, F(auth_issuer), NULL, "URL",
     "the authorization server whose JWT access tokens are accepted (exact iss)"},
    {"auth-jwks-url", MCPGW_OPTS_STR, F(auth_jwks_url), NULL, "URL",
     "where the authorization server publishes its signing keys (JWKS)"},
    {"auth-resource", MCPGW_OPTS_STR, F(auth_resource), NULL, "URL",
     "this gateway's canonical public URL of /mcp (behind a balancer: the balancer's), the "
     "audience tokens must name"},
    {"auth-scopes", MCPGW_OPTS_LIST, F(auth_scopes), NULL, "LIST",
     "scopes every request needs (403 insufficient_scope otherwise)"},
    {"auth-skew", MCPGW_OPTS_DURATION, F(auth_skew_ms), "60s", "DUR",
     "clock difference allowed for exp, nbf and iat"},
    {"auth-jwks-refresh", MCPGW_OPTS_DURATION, F(auth_jwks_refresh_ms), "5m", "DUR",
     "fetch the JWKS again this often", .min = 1000},
    {"auth-unknown-kid-interval", MCPGW_OPTS_DURATION, F(auth_unknown_kid_ms), "10s", "DUR",
     "a token naming an unknown key id refetches the JWKS at most this often"},
    {"auth-introspection-url", MCPGW_OPTS_STR, F(auth_introspect_url), NULL, "URL",
     "check opaque (non-JWT) tokens at this RFC 7662 introspection endpoint"},
    {"auth-introspection-client", MCPGW_OPTS_STR, F(auth_introspect_client), NULL, "ID",
     "client id the node authenticates to the introspection endpoint with (HTTP Basic)"},
    {"auth-introspection-secret", MCPGW_OPTS_STR, F(auth_introspect_secret), NULL, "SECRET",
     "its client secret; put it in the config file as ${VAR}"},
    {"auth-introspection-cache", MCPGW_OPTS_DURATION, F(auth_introspect_cache_ms), "60s", "DUR",
     "how long an introspection answer is used (a revoked token is honoured at most this long)",
     .min = 1000},
    {"auth-apikeys", MCPGW_OPTS_STR, F(auth_apikeys), NULL, "FILE",
     "API key table: lines '<principal> <sha256-hex of key> [scope ...]'"},
    {"auth-apikeys-env", MCPGW_OPTS_STR, F(auth_apikeys_env), NULL, "VAR",
     "the API key table from this environment variable (entries separated by ';')"},
    {"balancer-secret", MCPGW_OPTS_STR, F(balancer_secret), NULL, "SECRET",
     "serve /mcp only to requests carrying this secret in X-Mcpgw-Balancer (the balancers' "
     "--balancer-secret); put it in the config file as ${VAR}, not on the command line",
     LIVE},
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

int mcpgw_node_config_auth_mode(const char *s)
{
    if (strcmp(s, "off") == 0)
        return 0;
    if (strcmp(s, "jwt") == 0)
        return MCPGW_AUTH_MODE_JWT;
    if (strcmp(s, "apikey") == 0)
        return MCPGW_AUTH_MODE_APIKEY;
    if (strcmp(s, "both") == 0)
        return MCPGW_AUTH_MODE_JWT | MCPGW_AUTH_MODE_APIKEY;
    return -1;
}

/* The scheme://authority part's length of an absolute http(s) URL, or 0. */
size_t mcpgw_node_config_origin_len(const char *url)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else
        return 0;
    if (!*p || *p == '/')
        return 0;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    return *p == '?' || *p == '#' ? 0 : (size_t)(p - url);
}

/* The auth-* settings hang together (the node as a resource server: docs/security.md). */
static int auth_ok(const struct mcpgw_node_config *cfg, char *err, size_t errlen)
{
    int mode = mcpgw_node_config_auth_mode(cfg->auth);
    if (mode < 0) {
        snprintf(err, errlen, "auth '%s' is not a mode (off, jwt, apikey or both)", cfg->auth);
        return -1;
    }
    if (mode == 0)
        return 0;
    if (!cfg->auth_resource[0] || !mcpgw_node_config_origin_len(cfg->auth_resource)) {
        snprintf(err, errlen,
                 "auth-resource must be this gateway's public URL of /mcp, as clients reach it "
                 "(e.g. https://mcp.example.com/mcp), with --auth %s",
                 cfg->auth);
        return -1;
    }
    if ((mode & MCPGW_AUTH_MODE_JWT) && (!cfg->auth_issuer[0] || !cfg->auth_jwks_url[0])) {
        snprintf(err, errlen, "--auth %s needs auth-issuer and auth-jwks-url", cfg->auth);
        return -1;
    }
    if (strchr(cfg->auth_issuer, ' ')) {
        snprintf(err, errlen, "auth-issuer must not contain a space");
        return -1;
    }
    if ((mode & MCPGW_AUTH_MODE_APIKEY) && !cfg->auth_apikeys[0] && !cfg->auth_apikeys_env[0]) {
        snprintf(err, errlen, "--auth %s needs auth-apikeys FILE or auth-apikeys-env VAR",
                 cfg->auth);
        return -1;
    }
    if (cfg->auth_introspect_url[0] && !mcpgw_node_config_origin_len(cfg->auth_introspect_url)) {
        snprintf(err, errlen, "auth-introspection-url must be an http(s) URL");
        return -1;
    }
    if (!cfg->auth_introspect_client[0] != !cfg->auth_introspect_secret[0]) {
        snprintf(err, errlen,
                 "auth-introspection-client and auth-introspection-secret go together");
        return -1;
    }
    for (int i = 0; i < cfg->auth_scopes.n; i++)
        if (!cfg->auth_scopes.v[i][0] || strpbrk(cfg->auth_scopes.v[i], " \"\\")) {
            snprintf(err, errlen, "auth-scopes: '%s' is not a scope token", cfg->auth_scopes.v[i]);
            return -1;
        }
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
        char shown[256];
        mcpgw_url_redact(cfg->store, shown, sizeof(shown));
        snprintf(err, errlen, "store '%s' is not supported (memory or redis://HOST:PORT)", shown);
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
    if (cfg->sse_keepalive_ms && cfg->sse_keepalive_ms < 1000) {
        snprintf(err, errlen, "sse-keepalive must be 0 (off) or at least 1s");
        return -1;
    }
    if (cfg->tcp_keepalive_ms > MCPGW_TCP_KEEPIDLE_MAX_S * 1000ull) {
        snprintf(err, errlen, "tcp-keepalive must be at most %us", MCPGW_TCP_KEEPIDLE_MAX_S);
        return -1;
    }
    if (cfg->tcp_user_timeout_ms > UINT32_MAX) {
        snprintf(err, errlen, "tcp-user-timeout must be at most %llums",
                 (unsigned long long)UINT32_MAX);
        return -1;
    }
    if (auth_ok(cfg, err, errlen) < 0)
        return -1;
    if (mcpgw_authz_active(cfg->authz) && strcmp(cfg->auth, "off") == 0) {
        snprintf(err, errlen,
                 "allow/deny rules need --auth (they decide by the token's scopes "
                 "and claims)");
        return -1;
    }
    if (mcpgw_authz_validate(cfg->authz, cfg->upstreams, err, errlen) < 0)
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

int mcpgw_node_config_builtins(const struct mcpgw_node_config *cfg)
{
    if (cfg->builtins == 0)
        return !cfg->upstreams || cfg->upstreams->n == 0;
    return cfg->builtins == 1;
}

void mcpgw_node_config_free(struct mcpgw_node_config *cfg)
{
    mcpgw_upcfg_set_free(cfg->upstreams);
    cfg->upstreams = NULL;
    mcpgw_authz_free(cfg->authz);
    cfg->authz = NULL;
    mcpgw_limitcfg_free(cfg->limits);
    cfg->limits = NULL;
    mcpgw_opts_free(&spec, cfg);
}
