/* upcfg.h - the configured upstream MCP servers: the `upstream` lines of the node's config file,
 * parsed and checked (names, URLs, prefixes, keys), and compared on a reload. No connection is
 * made here; node/upstream.c runs what this module describes. */
#ifndef MCPGW_NODE_UPCFG_H
#define MCPGW_NODE_UPCFG_H

#include "node/breaker.h"
#include "node/upcred.h"

#include <stddef.h>
#include <stdint.h>

enum mcpgw_upcfg_kind { MCPGW_UPCFG_HTTP, MCPGW_UPCFG_STDIO, MCPGW_UPCFG_KIND_COUNT };
const char *mcpgw_upcfg_kind_str(enum mcpgw_upcfg_kind k);

enum mcpgw_upcfg_session {
    MCPGW_UPCFG_SESSION_DEFAULT, /* not given: mcpgw_upstream_per_client decides at run time */
    MCPGW_UPCFG_SESSION_SHARED,  /* one upstream session (or child) per node */
    MCPGW_UPCFG_SESSION_PER_CLIENT,
    MCPGW_UPCFG_SESSION_COUNT
};
const char *mcpgw_upcfg_session_str(enum mcpgw_upcfg_session s);

/* Which revision of MCP to speak to an http upstream (docs/federation.md, "Bridging"). */
enum mcpgw_upcfg_protocol {
    MCPGW_UPCFG_PROTOCOL_SESSION, /* initialize and a session (2025-03-26 to 2025-11-25) */
    MCPGW_UPCFG_PROTOCOL_2026,    /* 2026-07-28: server/discover, _meta on every request */
    MCPGW_UPCFG_PROTOCOL_AUTO,    /* server/discover first; initialize when it is refused */
    MCPGW_UPCFG_PROTOCOL_COUNT
};
/* The key's value as written: "session", "2026-07-28", "auto". The order is node/upmcp.h's
 * enum mcpgw_upmcp_era, which the runtime casts to. */
const char *mcpgw_upcfg_protocol_str(enum mcpgw_upcfg_protocol p);

/* Between an upstream's prefix and a name it exposes: prefix "gh" shows tool "search" as
 * "gh__search" (docs/federation.md, "Naming"). */
#define MCPGW_UPCFG_SEP "__"

/* One `upstream` line. Strings are owned; the lists are NULL-terminated arrays (NULL when
 * empty). */
struct mcpgw_upcfg {
    char *name; /* [A-Za-z0-9_-], 1-64 characters: logs, metrics, the default prefix */
    enum mcpgw_upcfg_kind kind;
    char *url;           /* http: the MCP endpoint (http:// or https://) */
    char *cmd;           /* stdio: the command line (split by mcpgw_upstdio_split) */
    char **argv;         /* stdio: the command line, split */
    char *prefix;        /* "" passes names through; default: the name */
    char **headers;      /* "Name: value" (values are secrets: never logged) */
    char **tools;        /* include globs (fnmatch) on the upstream's own tool names; NULL: all */
    char **exclude;      /* exclude globs on tool names, applied after tools= */
    uint64_t timeout_ms; /* per request; 0: the node's default */
    enum mcpgw_upcfg_session session;
    /* http: protocol= (default session) */
    enum mcpgw_upcfg_protocol protocol;
    uint32_t max_inflight; /* 0: unlimited (the bulkhead is fedfail's) */
    uint32_t max_procs;    /* stdio per-client: children per node; 0: default */
    int h2c;               /* http: HTTP/2 with prior knowledge on http:// */
    char *line;            /* the words of the line as given (secrets included), to compare on
                              reload; never printed */
    int lineno;            /* where it was declared, for runtime log lines (0: unknown) */
    /* oauth-* keys: OAuth client credentials for this upstream (node/upcred.h); NULL: none */
    struct mcpgw_upcred_cfg *oauth;
    /* breaker-* keys (name, kind and max_inflight are filled in when the breaker starts) */
    struct mcpgw_breaker_cfg breaker;
};

/* The upstreams of one configuration, in file order. */
struct mcpgw_upcfg_set {
    struct mcpgw_upcfg **v;
    int n;
};

/* The setter of the config-file row "upstream" (common/opts.h, MCPGW_OPTS_WORDS): words are
 * NAME KIND TARGET key=value...; *set is created on first use and cleared when first is set.
 * Checks the line and its relation to the lines before it (duplicate name, duplicate prefix).
 * Returns 0, or -1 with a sentence in err (the caller adds file:line). */
int mcpgw_upcfg_parse(struct mcpgw_upcfg_set **set, int nwords, char **words, int first, char *err,
                      size_t errlen);

/* Whether tool (an upstream's own name) passes u's tools= and exclude= filters. */
int mcpgw_upcfg_tool_allowed(const struct mcpgw_upcfg *u, const char *tool);

/* The name the client sees for an upstream's name (malloc'd). */
char *mcpgw_upcfg_expose(const struct mcpgw_upcfg *u, const char *name);
/* The upstream's own name if exposed is one of u's names (pointer into exposed), else NULL. */
const char *mcpgw_upcfg_unexpose(const struct mcpgw_upcfg *u, const char *exposed);

/* 1 when a and b describe the same upstream (same line), so a reload keeps it running. */
int mcpgw_upcfg_equal(const struct mcpgw_upcfg *a, const struct mcpgw_upcfg *b);
/* The upstream called name in set (NULL if none; set may be NULL). */
struct mcpgw_upcfg *mcpgw_upcfg_find(const struct mcpgw_upcfg_set *set, const char *name);

/* A copy of u (for a running upstream that must outlive its configuration). */
struct mcpgw_upcfg *mcpgw_upcfg_dup(const struct mcpgw_upcfg *u);
void mcpgw_upcfg_free(struct mcpgw_upcfg *u);
void mcpgw_upcfg_set_free(struct mcpgw_upcfg_set *set);

#endif
