/* jwks.h - JSON Web Key Sets (RFC 7517): public signing keys as OpenSSL keys, looked up by kid,
 * and the policy deciding when to (re)fetch the set, as a pure state machine with no I/O. */
#ifndef MCPGW_COMMON_JWKS_H
#define MCPGW_COMMON_JWKS_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* The signature algorithms mcpgw accepts (RFC 7518 names in mcpgw_jwks_alg_str). There is no
 * "none" and no HMAC member on purpose: a token naming one is refused before any key is used. */
enum mcpgw_jwks_alg {
    MCPGW_JWKS_RS256, /* RSASSA-PKCS1-v1_5 with SHA-256, RSA key of >= 2048 bits */
    MCPGW_JWKS_ES256, /* ECDSA on P-256 with SHA-256 */
    MCPGW_JWKS_EDDSA, /* Ed25519 (RFC 8037) */
    MCPGW_JWKS_ALG_COUNT
};
const char *mcpgw_jwks_alg_str(int alg);
/* The alg for a JOSE "alg" name, or -1 for anything else ("none", "HS256", "PS256", ...). */
int mcpgw_jwks_alg_parse(const char *name);
#define MCPGW_JWKS_ALG_ALL ((1u << MCPGW_JWKS_ALG_COUNT) - 1)

#define MCPGW_JWKS_MAX_KEYS 64          /* keys kept from one document; more are ignored */
#define MCPGW_JWKS_MAX_DOC  (256 << 10) /* bytes of one JWKS document */

struct mcpgw_jwks;

/* Parse a JWKS document {"keys":[...]}. Keeps every key it can use for verifying: kty RSA (n, e;
 * at least 2048 bits), EC with crv P-256 (x, y: a point on the curve), OKP with crv Ed25519 (x);
 * a key with "use" other than "sig", or with an "alg" mcpgw does not accept, or of another type,
 * is skipped (authorization servers publish encryption keys in the same set), and so is a key
 * whose fields are malformed (counted in skipped, with the last reason in err when err is set).
 * Returns the set (free with mcpgw_jwks_free; it may hold 0 keys), or NULL with a sentence in err
 * when the text is not a JWKS document at all. text is borrowed. */
struct mcpgw_jwks *mcpgw_jwks_parse(const char *text, size_t len, int *skipped, char *err,
                                    size_t errlen);
void mcpgw_jwks_free(struct mcpgw_jwks *set);
int mcpgw_jwks_count(const struct mcpgw_jwks *set);

/* Results of mcpgw_jwks_find. */
enum mcpgw_jwks_find_result {
    MCPGW_JWKS_FOUND = 0,
    MCPGW_JWKS_NO_KID = -1,   /* no key with this kid (or, without a kid, no key for this alg) */
    MCPGW_JWKS_MISMATCH = -2, /* a key with this kid exists, but its type/curve/alg is not alg's */
    MCPGW_JWKS_AMBIGUOUS = -3 /* the token names no kid and several keys could fit */
};

/* Find the key that verifies a token signed with alg and naming kid (NULL when the token has no
 * kid: then the one key of the set fitting alg, if exactly one does). Returns a
 * mcpgw_jwks_find_result; on FOUND *key is borrowed from the set (valid until it is freed). */
int mcpgw_jwks_find(const struct mcpgw_jwks *set, const char *kid, int alg, EVP_PKEY **key);

/* When to fetch the set: a pure state machine driven by the owner of the HTTP client, which
 * calls it with the current monotonic time and does what it says. Embedded (init, no free).
 *   - at start, fetch at once;
 *   - after a success, fetch again refresh_ms later (periodic refresh, so rotated keys arrive);
 *   - after a failure, keep the old set and retry after retry_ms, doubling up to refresh_ms;
 *   - a token with an unknown kid may trigger one early fetch, at most once per
 *     unknown_kid_min_ms (so tokens with made-up kids cannot make us hammer the server);
 *   - never two fetches at once. */
struct mcpgw_jwks_sched {
    uint64_t refresh_ms;         /* periodic refresh after a success */
    uint64_t retry_ms;           /* first retry after a failure */
    uint64_t unknown_kid_min_ms; /* minimum time between fetches caused by unknown kids */
    uint64_t next_ms;            /* when the next periodic/retry fetch is due (0 = now) */
    uint64_t last_start_ms;      /* when the last fetch started (0 = never) */
    uint64_t backoff_ms;         /* current retry delay */
    int in_flight;               /* a fetch is running */
    int have_set;                /* at least one fetch succeeded */
    int failures;                /* consecutive failures */
};

/* Defaults: refresh 5 min, retry 1 s, unknown kid at most once per 10 s. */
void mcpgw_jwks_sched_init(struct mcpgw_jwks_sched *s, uint64_t refresh_ms, uint64_t retry_ms,
                           uint64_t unknown_kid_min_ms);
/* Is a periodic (or first, or retry) fetch due at now_ms? Returns 1 when the caller should start
 * one now (then call _started), else 0 and, in *wait_ms if given, how long until one is due (the
 * timer to arm; UINT64_MAX while a fetch is in flight). */
int mcpgw_jwks_sched_due(const struct mcpgw_jwks_sched *s, uint64_t now_ms, uint64_t *wait_ms);
/* A token named a kid the set does not have. Returns 1 when the caller should start an early
 * fetch now (then call _started and retry the token once when it completes), 0 when it should
 * refuse the token now (too soon since the last fetch) and -1 when a fetch is already in flight
 * (the caller may wait for it and retry the token once). */
int mcpgw_jwks_sched_unknown_kid(const struct mcpgw_jwks_sched *s, uint64_t now_ms);
void mcpgw_jwks_sched_started(struct mcpgw_jwks_sched *s, uint64_t now_ms);
/* The fetch ended: ok = the document was fetched and parsed (the caller swaps in the new set);
 * otherwise the caller keeps the old set. */
void mcpgw_jwks_sched_done(struct mcpgw_jwks_sched *s, uint64_t now_ms, int ok);

#endif
