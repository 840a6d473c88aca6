/* auth.h - the node's OAuth 2.1 resource server: bearer tokens (JWT, API keys) checked at the
 * front door, RFC 9728 metadata, and the audit log of refusals (docs/security.md). */
#ifndef MCPGW_NODE_AUTH_H
#define MCPGW_NODE_AUTH_H

#include "common/httpd.h"

#include <json-c/json.h>

#include <stddef.h>

struct event_base;
struct mcpgw_metrics;
struct mcpgw_node_config;
struct mcpgw_auth;

#define MCPGW_AUTH_PRINCIPAL_MAX 512 /* bytes of "<iss> <sub>" or an API key's name, with NUL */

/* Why a request was refused: the audit log's and the metric's reason label. */
enum mcpgw_auth_reason {
    MCPGW_AUTH_R_NO_TOKEN,           /* no Authorization: Bearer */
    MCPGW_AUTH_R_MALFORMED,          /* jwt: malformed */
    MCPGW_AUTH_R_ALG_NOT_ALLOWED,    /* jwt: none, HMAC, key of another type */
    MCPGW_AUTH_R_UNKNOWN_KID,        /* jwt: no such key, also after a refetch */
    MCPGW_AUTH_R_BAD_SIGNATURE,      /* jwt: forged or altered */
    MCPGW_AUTH_R_WRONG_ISSUER,       /* jwt */
    MCPGW_AUTH_R_WRONG_AUDIENCE,     /* jwt: a token for another resource */
    MCPGW_AUTH_R_EXPIRED,            /* jwt */
    MCPGW_AUTH_R_NOT_YET_VALID,      /* jwt */
    MCPGW_AUTH_R_BAD_APIKEY,         /* no API key entry matches */
    MCPGW_AUTH_R_INSUFFICIENT_SCOPE, /* 403 */
    MCPGW_AUTH_R_KEYS_UNAVAILABLE,   /* 503: the JWKS could never be fetched */
    MCPGW_AUTH_R_SESSION_PRINCIPAL,  /* 404: a session id presented by another principal */
    MCPGW_AUTH_R_INACTIVE,           /* introspection: not active (revoked, expired, unknown) */
    MCPGW_AUTH_R_INTROSPECTION,      /* 503: the introspection endpoint failed */
    MCPGW_AUTH_R_RULE_DENIED,        /* an authorization rule refused a call (JSON-RPC error) */
    MCPGW_AUTH_R_COUNT
};
const char *mcpgw_auth_reason_str(int r);

/* Who a request speaks for, filled by mcpgw_auth_check. */
struct mcpgw_auth_who {
    char principal[MCPGW_AUTH_PRINCIPAL_MAX]; /* "<iss> <sub>" for a JWT, the key's name for an
                                                 API key */
    const char *scopes; /* granted scopes, space-separated; borrowed until the next check */
    const char *claims; /* the claims authorization rules ask about (node/authz.h), or NULL;
                           borrowed likewise */
};

/* The resource server of a node with --auth other than off (NULL when it is off: the caller
 * then skips every hook, so the unauthenticated path costs nothing). cfg is borrowed for the
 * server's life. Requests parked while the JWKS is fetched are handed to retry(c, req, arg)
 * again (the node's request handler) when the fetch ends; req is then borrowed for that call.
 * Counters are registered in m with labels. Returns NULL with err when the API key table
 * cannot be read. Starts the first JWKS fetch on the loop. */
struct mcpgw_auth *mcpgw_auth_new(struct event_base *base, const struct mcpgw_node_config *cfg,
                                  struct mcpgw_metrics *m, const char *labels,
                                  mcpgw_http_handler_fn retry, void *retry_arg, char *err,
                                  size_t errlen);
/* Cancels the fetch and answers parked requests with 503. */
void mcpgw_auth_free(struct mcpgw_auth *a);

/* Serve the RFC 9728 protected resource metadata when req asks for it
 * (/.well-known/oauth-protected-resource, with or without the resource's path appended).
 * Returns 1 when it answered, 0 when req is something else. */
int mcpgw_auth_well_known(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                          const struct mcpgw_http_req *req);

/* The front door of /mcp. Returns 1 when the request is authenticated and has the required
 * scopes (*who filled), 0 when this function took care of it: answered 401/403/503 (and wrote
 * the audit line), or parked it until a JWKS fetch ends (then retry is called with it). */
int mcpgw_auth_check(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                     const struct mcpgw_http_req *req, struct mcpgw_auth_who *who);

/* May the principal who (NULL: none) use a session created by owner (NULL: none)? */
int mcpgw_auth_owner_ok(const char *owner, const char *who);

/* A request named a session owned by another principal: count it and write the audit line
 * (the caller answers exactly as for an unknown session). request_id is the JSON-RPC id's text
 * or NULL; forwarded the request's X-Forwarded-For or NULL. */
void mcpgw_auth_audit_session(struct mcpgw_auth *a, struct mcpgw_http_conn *c, const char *who,
                              const char *session, const char *request_id, const char *forwarded);

/* An authorization rule refused a request (node/guard.c). */
struct mcpgw_auth_refusal {
    const char *principal, *session, *request_id, *forwarded; /* for the audit line, or NULL */
    const char *detail; /* one sentence: what was refused and why */
    const char *need;   /* step-up: the scopes the request needs; NULL: no scope helps */
    json_object *id;    /* the request's JSON-RPC id (the 403 body names it) */
};
/* Write the audit line; with need, answer 403 with WWW-Authenticate: Bearer
 * error="insufficient_scope", scope= the required scopes plus need, resource_metadata (the
 * step-up of the MCP authorization spec). Without need nothing is answered: the caller sends
 * its JSON-RPC error. */
void mcpgw_auth_refuse_rule(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                            const struct mcpgw_auth_refusal *r);
/* The authorization rules were replaced (SIGHUP): forget cached tokens, whose claims were
 * picked for the old rules. */
void mcpgw_auth_rules_changed(struct mcpgw_auth *a);

#endif
