/* upcred.h - credentials the gateway presents to an HTTP upstream on its own behalf: an OAuth 2.0
 * access token got with the client credentials grant (RFC 6749 section 4.4), for the upstream's
 * resource (RFC 8707), cached until shortly before it expires and fetched again on demand. The
 * client's own token never goes upstream (docs/security.md, "Upstream credentials"). */
#ifndef MCPGW_NODE_UPCRED_H
#define MCPGW_NODE_UPCRED_H

#include <stddef.h>

struct event_base;
struct mcpgw_upcred;
struct mcpgw_upcred_wait;

/* The oauth-* keys of one `upstream` line. Strings owned (NULL when not given). */
struct mcpgw_upcred_cfg {
    char *token_url;     /* oauth-token-url: the authorization server's token endpoint */
    char *client_id;     /* oauth-client-id */
    char *client_secret; /* oauth-client-secret (a secret: never logged) */
    char *scope;         /* oauth-scope: space-separated scopes to ask for, or NULL */
    char *resource;      /* oauth-resource: the RFC 8707 resource indicator, or NULL */
    int auth_post;       /* oauth-client-auth=post: id and secret in the form, not HTTP Basic */
};

/* One key=value of an `upstream` line: 1 when key is an oauth-* key (stored in *cfg, created on
 * first use), 0 when it is not one, -1 with a sentence in err when its value is unusable. */
int mcpgw_upcred_cfg_key(struct mcpgw_upcred_cfg **cfg, const char *key, const char *value,
                         char *err, size_t errlen);
/* After the whole line: the keys hang together (token URL, client id and secret all given).
 * Returns 0, or -1 with a sentence in err. */
int mcpgw_upcred_cfg_check(const struct mcpgw_upcred_cfg *cfg, char *err, size_t errlen);
/* A copy (NULL for NULL); free with mcpgw_upcred_cfg_free. */
struct mcpgw_upcred_cfg *mcpgw_upcred_cfg_dup(const struct mcpgw_upcred_cfg *cfg);
void mcpgw_upcred_cfg_free(struct mcpgw_upcred_cfg *cfg);

/* The token source of upstream name with these settings, on base: the one already in use by
 * another session of the same upstream (same name and settings), so that every session of an
 * upstream on this node shares one token, or a new one. cfg is copied. Release each acquire
 * with mcpgw_upcred_release; the last release frees the source and forgets its token. */
struct mcpgw_upcred *mcpgw_upcred_acquire(struct event_base *base, const char *name,
                                          const struct mcpgw_upcred_cfg *cfg);
void mcpgw_upcred_release(struct mcpgw_upcred *c);

/* The header line to send ("Authorization: Bearer ...", borrowed until the next loop turn) when
 * a token is cached and not about to expire, else NULL (then ask with mcpgw_upcred_refresh).
 * *gen (optional) names the token, for a later refresh after the upstream refused it. */
const char *mcpgw_upcred_header(struct mcpgw_upcred *c, unsigned *gen);

/* Wants a usable token: when one other than token stale_gen (0: none refused) is cached, done
 * fires on the next loop turn; else one fetch is started (or joined) and done fires when it
 * ends. done gets why NULL when a token is ready (read it with mcpgw_upcred_header), or a
 * sentence naming the token endpoint and the cause (the caller adds the upstream's name). Never
 * calls done before returning. The wait is freed after done returns, or by mcpgw_upcred_wait_cancel
 * (then done never fires). */
struct mcpgw_upcred_wait *mcpgw_upcred_refresh(struct mcpgw_upcred *c, unsigned stale_gen,
                                               void (*done)(void *arg, const char *why), void *arg);
void mcpgw_upcred_wait_cancel(struct mcpgw_upcred_wait *w);

/* Fetches so far (successful or not) of c, for tests and logs. */
unsigned long mcpgw_upcred_fetches(const struct mcpgw_upcred *c);

#endif
