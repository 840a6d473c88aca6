/* config.h - mcpgw-node settings: defaults, flags, config file, validation, live reload. */
#ifndef MCPGW_NODE_CONFIG_H
#define MCPGW_NODE_CONFIG_H

#include "common/opts.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct mcpgw_upcfg_set;
struct mcpgw_authz;
struct mcpgw_limitcfg;

/* Filled by mcpgw_node_config_load; the lists are owned (mcpgw_node_config_free). Settings
 * marked live may be replaced by a reload (mcpgw_node_config_apply_live) between two events of
 * the loop, so a module reads them where it uses them and never keeps a copy across events. */
struct mcpgw_node_config {
    char config_path[512]; /* "" when no --config */
    char node_id[32];
    char listen[128];
    char store[256];                        /* "memory" or redis://HOST:PORT */
    unsigned shard_bits;                    /* 2^k registry shards */
    uint64_t session_idle_ms;               /* idle expiry */
    uint64_t init_timeout_ms;               /* live: initialize to notifications/initialized */
    size_t max_stream_buffer;               /* unsent bytes per stream before it is dropped */
    uint64_t max_sessions;                  /* live */
    uint64_t tool_timeout_ms;               /* live: applies to calls started after the reload */
    uint64_t client_request_timeout_ms;     /* live: sampling / elicitation / roots answers */
    uint32_t page_size;                     /* live: list pagination */
    uint32_t sse_retry_ms;                  /* live: retry: advertised on priming events */
    struct mcpgw_opts_list allowed_hosts;   /* live: hostnames without port; "*" allows any */
    struct mcpgw_opts_list allowed_origins; /* live: exact origins (scheme://host[:port]); the
                                               allowed hosts are allowed origins too */
    size_t max_body_bytes;                  /* live */
    size_t max_head_bytes;                  /* live */
    uint64_t sse_keepalive_ms;              /* live: comment on open SSE streams; 0 off */
    uint64_t tcp_keepalive_ms;              /* idle before TCP keep-alive probes; 0 off */
    uint64_t tcp_user_timeout_ms;           /* TCP_USER_TIMEOUT of client sockets; 0 kernel's */
    uint64_t fanout_queue_max;              /* live: updates queued for local fan-out */
    uint32_t max_conns;                     /* live */
    uint64_t drain_timeout_ms;              /* live */
    int log_level;                          /* live: enum mcpgw_log_level */
    char gossip_bind[128], gossip_advertise[128], advertise[128];
    char gossip_keyring[512]; /* key ring file (re-read on SIGHUP); "": unauthenticated gossip */
    uint64_t state_ttl_ms;    /* live: lifetime of a sealed MRTR requestState */
    /* live: tools of any provider that run as tasks for clients of the tasks extension
     * (node/tasks.c); those of task_idempotent are run again when their node dies */
    struct mcpgw_opts_list task_tools, task_idempotent;
    char state_keyring[512]; /* MRTR requestState key ring (re-read on SIGHUP); "": see era26.h */
    struct mcpgw_opts_list gossip_seeds;
    /* live: principals holding per-client upstream sessions and children for 2026-07-28 calls,
     * and their idle expiry (node/upprin.c) */
    uint64_t upprin_max, upprin_idle_ms;
    struct mcpgw_upcfg_set *upstreams; /* live: `upstream` lines (node/upcfg.h); NULL: none.
                                          Reloaded by node/upstream.c, not by apply_live */
    struct mcpgw_limitcfg *limits;     /* live: `limit` lines (node/limitcfg.h); NULL: none.
                                          Reloaded by node/limits.c, not by apply_live */
    int builtins;                      /* live: 0 auto, 1 on, 2 off (mcpgw_node_config_builtins) */
    struct mcpgw_authz *authz;         /* live: `allow` / `deny` rules (node/authz.h); NULL: none.
                                          Swapped on a reload by mcpgw_guard_reload */
    /* Client authentication (node/auth.h, docs/security.md); "off" keeps the request path as
     * it was. Read at start only. */
    char auth[16];                      /* off, jwt, apikey or both */
    char auth_issuer[512];              /* the authorization server (JWT iss, metadata) */
    char auth_jwks_url[512];            /* its JWKS */
    char auth_resource[512];            /* canonical public URL of /mcp: JWT aud, metadata */
    struct mcpgw_opts_list auth_scopes; /* every request needs all of them */
    uint64_t auth_skew_ms;              /* clock skew allowed for exp/nbf/iat */
    uint64_t auth_jwks_refresh_ms;      /* periodic JWKS refresh */
    uint64_t auth_unknown_kid_ms;       /* at most one JWKS fetch per this for unknown kids */
    char auth_apikeys[512];             /* API key table file */
    char auth_introspect_url[512];      /* RFC 7662 endpoint for opaque tokens ("" = none) */
    char auth_introspect_client[256];   /* its client id and secret (HTTP Basic) */
    char auth_introspect_secret[256];
    uint64_t auth_introspect_cache_ms; /* how long an introspection answer is trusted */
    char auth_apikeys_env[64];         /* or: environment variable holding it */
    char balancer_secret[256];         /* live: /mcp only with this X-Mcpgw-Balancer ("" = any) */
};

/* Whether the built-in tools, resources and prompts are served: "on", "off", or "auto" (on
 * unless an upstream is configured). */
int mcpgw_node_config_builtins(const struct mcpgw_node_config *cfg);

/* --auth MODE as bits (MCPGW_AUTH_MODE_*): 0 for off, -1 for a word that is no mode. */
enum { MCPGW_AUTH_MODE_JWT = 1, MCPGW_AUTH_MODE_APIKEY = 2 };
int mcpgw_node_config_auth_mode(const char *s);
/* Length of the origin ("https://host:port") of an http(s) URL, or 0 when url is none. */
size_t mcpgw_node_config_origin_len(const char *url);

/* Every field to its default (lists allocated: free with mcpgw_node_config_free). */
void mcpgw_node_config_defaults(struct mcpgw_node_config *cfg);

/* The effective configuration: defaults, then the file named by --config, then the other
 * flags, then validation. *check and *help report --check and --help (on --help nothing is
 * validated). Returns 0, or -1 with a sentence in err naming the flag or file:line. cfg must be
 * freed with mcpgw_node_config_free either way. Never binds or connects anything. */
int mcpgw_node_config_load(struct mcpgw_node_config *cfg, int argc, char **argv, int *check,
                           int *help, char *err, size_t errlen);

/* Apply config-file text over cfg (no validation); origin names it in errors. For tests. */
int mcpgw_node_config_parse_text(struct mcpgw_node_config *cfg, const char *text,
                                 const char *origin, char *err, size_t errlen);

/* Check the settings together: node id, store, addresses. Returns 0 or -1 (err). */
int mcpgw_node_config_validate(const struct mcpgw_node_config *cfg, char *err, size_t errlen);

/* Called for each setting that differs on a reload: applied 1 when it was taken (a live
 * setting), 0 when it needs a restart and was left as it runs. key is the option's name. */
typedef void (*mcpgw_node_config_diff_fn)(void *arg, const char *key, int applied);

/* Reload: move the live settings of next (a whole, validated configuration) into live, and
 * report every setting that differs through fn. Nothing in live changes when next equals it.
 * Free next afterwards with mcpgw_node_config_free (it holds the replaced lists). Returns the
 * number of settings applied. The caller pushes them to the modules that copied them at start
 * (log level, HTTP limits); everything else is read from live where it is used.
 * Upstreams (the next issue) are the first setting that needs more than a field copy: they
 * join here as a CUSTOM row plus a step that diffs the old and new lists and opens or closes
 * connections, so that a reload stays all-or-nothing up to that step. */
int mcpgw_node_config_apply_live(struct mcpgw_node_config *live, struct mcpgw_node_config *next,
                                 mcpgw_node_config_diff_fn fn, void *arg);

/* Print --help. */
void mcpgw_node_config_usage(FILE *out);

/* Free the lists; cfg may be loaded again afterwards. */
void mcpgw_node_config_free(struct mcpgw_node_config *cfg);

#endif
