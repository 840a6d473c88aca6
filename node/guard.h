/* guard.h - authorization rules applied to a node's requests: what the lists show and which
 * calls, reads, prompts and completions go through, for the principal of the request being
 * handled (docs/security.md, "Authorization rules"). The rules themselves are node/authz.c. */
#ifndef MCPGW_NODE_GUARD_H
#define MCPGW_NODE_GUARD_H

#include "node/authz.h"

#include <json-c/json.h>

struct mcpgw_node;
struct mcpgw_http_conn;
struct mcpgw_node_config;
struct mcpgw_provider_ops;

/* Who the request being handled speaks for, as the rules see it: set by transport.c in
 * n->req_who while the request's handler runs (strings borrowed for that time). */
struct mcpgw_guard_who {
    struct mcpgw_authz_grant grant;
    const char *principal;
    const char *forwarded; /* X-Forwarded-For, for the audit line, or NULL */
};

/* Callers test n->cfg.authz (NULL without rules) before calling: no rule, no cost. */

/* Remove from arr, a list being built, the entries [from, end) that provider p added and the
 * request's principal may not use: tools, prompts, resources or (templates 1) resource
 * templates. */
void mcpgw_guard_filter(struct mcpgw_node *n, const struct mcpgw_provider_ops *p,
                        enum mcpgw_authz_kind k, int templates, json_object *arr, size_t from);

/* May the request being handled use item kind/name (a tool or prompt name, a resource URI)?
 * Returns 1 (also when no rule is configured). Returns 0 when a rule refuses it; the refusal is
 * audited. If scopes would allow it, the step-up has been answered on conn (403 with
 * WWW-Authenticate: Bearer error="insufficient_scope", scope=...) and *answered is 1; else
 * nothing is answered and the caller answers exactly as if the item did not exist (a
 * principal never learns of what it may not use). session (or NULL) and id (borrowed) name the
 * request in the audit line. */
int mcpgw_guard_allows(struct mcpgw_node *n, struct mcpgw_http_conn *conn, const char *session,
                       json_object *id, enum mcpgw_authz_kind kind, const char *name,
                       int *answered);

/* Keep in names[0..n) only those of kind the request's principal may use (order kept), as a
 * list would show them; nothing is answered or audited. Returns how many are left. */
int mcpgw_guard_keep(struct mcpgw_node *n, enum mcpgw_authz_kind kind, const char **names, int n_);

/* SIGHUP: take the rules of next (a validated configuration) into the running one. */
void mcpgw_guard_reload(struct mcpgw_node *n, struct mcpgw_node_config *next);

#endif
