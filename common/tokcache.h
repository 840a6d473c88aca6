/* tokcache.h - a bounded cache of verified access tokens, so a token presented on every request
 * is checked with public-key crypto once, not every time. Keyed by SHA-256 of the token. */
#ifndef MCPGW_COMMON_TOKCACHE_H
#define MCPGW_COMMON_TOKCACHE_H

#include <stddef.h>
#include <stdint.h>

struct mcpgw_tokcache;

/* What is remembered about a verified token: who it speaks for and what it may do. */
struct mcpgw_tokcache_entry {
    const char *principal; /* borrowed from the cache */
    const char *scopes;    /* borrowed from the cache */
    const char *claims;    /* borrowed; NULL unless put with claims (node/authz.h's form) */
    int64_t exp;           /* the token's own expiry, seconds since the epoch */
};

/* A cache of at most capacity entries (rounded up to a power of two, at least 4), each kept
 * until the token's exp or max_age_s after it was verified, whichever comes first: max_age_s
 * bounds how long a key removed from the JWKS (or a revoked API key) keeps being honoured.
 * Free with mcpgw_tokcache_free. Not thread-safe: one cache per event loop. */
struct mcpgw_tokcache *mcpgw_tokcache_new(size_t capacity, int64_t max_age_s);
void mcpgw_tokcache_free(struct mcpgw_tokcache *c);

/* Look the token up at wall time now_s. Returns 1 and fills *out (pointers borrowed until the
 * next _put, _clear or _free) when a live entry exists, else 0. */
int mcpgw_tokcache_get(struct mcpgw_tokcache *c, const char *tok, size_t len, int64_t now_s,
                       struct mcpgw_tokcache_entry *out);
/* Remember a token that just verified (strings are copied). When its set is full, the entry
 * that expires first is replaced. */
void mcpgw_tokcache_put(struct mcpgw_tokcache *c, const char *tok, size_t len, int64_t now_s,
                        const char *principal, const char *scopes, int64_t exp);
/* The same, also keeping claims (copied; may be NULL): what authorization rules ask about. */
void mcpgw_tokcache_put_claims(struct mcpgw_tokcache *c, const char *tok, size_t len, int64_t now_s,
                               const char *principal, const char *scopes, const char *claims,
                               int64_t exp);
/* Forget everything (after a key set or configuration change that should take effect now). */
void mcpgw_tokcache_clear(struct mcpgw_tokcache *c);
/* Entries in use, and lookups that hit / missed since creation (for metrics). */
size_t mcpgw_tokcache_size(const struct mcpgw_tokcache *c);
uint64_t mcpgw_tokcache_hits(const struct mcpgw_tokcache *c);
uint64_t mcpgw_tokcache_misses(const struct mcpgw_tokcache *c);

#endif
