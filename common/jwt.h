/* jwt.h - JWT access tokens (RFC 7519 / RFC 9068) verified locally: compact JWS signed with
 * RS256, ES256 or EdDSA against a JWKS, then issuer, audience, lifetime and scopes checked. */
#ifndef MCPGW_COMMON_JWT_H
#define MCPGW_COMMON_JWT_H

#include "common/jwks.h"

#include <stddef.h>
#include <stdint.h>

#define MCPGW_JWT_MAX_LEN 16384 /* bytes of one compact token */

/* Why a token was refused. The audit log records the code name, WWW-Authenticate's
 * error_description the sentence (neither ever contains the token). */
enum mcpgw_jwt_err {
    MCPGW_JWT_OK = 0,
    MCPGW_JWT_NO_TOKEN,        /* empty */
    MCPGW_JWT_MALFORMED,       /* not three base64url parts of JSON objects, or a claim of the
                                  wrong type, or a required claim (exp, sub) missing */
    MCPGW_JWT_ALG_NOT_ALLOWED, /* none, HMAC, anything not allowed, or a key of another type */
    MCPGW_JWT_UNKNOWN_KID,     /* no key in the set for the token's kid */
    MCPGW_JWT_BAD_SIGNATURE,   /* the signature does not verify: forged or altered */
    MCPGW_JWT_WRONG_ISSUER,    /* iss is not the configured issuer */
    MCPGW_JWT_WRONG_AUDIENCE,  /* aud does not contain this resource */
    MCPGW_JWT_EXPIRED,         /* exp + skew <= now */
    MCPGW_JWT_NOT_YET_VALID,   /* nbf (or iat) - skew > now */
    MCPGW_JWT_ERR_COUNT
};
/* "expired", "wrong_audience", ... for logs and metrics labels. */
const char *mcpgw_jwt_err_str(int err);

/* What a verifier accepts. Strings are borrowed for the verifier's life. */
struct mcpgw_jwt_config {
    const char *issuer;   /* exact match with iss (RFC 8414 identifiers are compared verbatim);
                             must not contain a space (the principal is "issuer subject") */
    const char *audience; /* this resource's canonical URL: aud must contain it */
    int64_t skew_s;       /* allowed clock difference for exp/nbf/iat (e.g. 60) */
    unsigned algs;        /* bit (1u << MCPGW_JWKS_*) per allowed alg; 0 = all of them */
};

/* The outcome of mcpgw_jwt_verify. On MCPGW_JWT_OK the identity fields are set (owned, freed by
 * mcpgw_jwt_result_deinit); on a refusal err and reason say why and kid names the key asked for. */
struct mcpgw_jwt_result {
    int err;          /* enum mcpgw_jwt_err */
    char reason[192]; /* one sentence for the operator and the client; never the token */
    char kid[64];     /* the header's kid, truncated; "" when none */
    char *principal;  /* "<iss> <sub>": who the token speaks for */
    char *subject;    /* sub */
    char *scopes;     /* granted scopes, space-separated (from "scope" or "scp"); "" when none */
    int64_t exp;      /* seconds since the epoch */
    int64_t iat;      /* 0 when absent */
};

/* Verify the compact token tok[0..len) at wall time now_s against keys (borrowed). Never
 * touches a key before the header's alg is known to be an allowed asymmetric one, so a token
 * saying alg "none" or "HS256" is refused as such whatever the key set holds. Checks in order:
 * form, alg, key (kid), signature, iss, aud, exp, nbf/iat. Fills *res (call
 * mcpgw_jwt_result_deinit afterwards, whatever the result) and returns res->err. */
int mcpgw_jwt_verify(const struct mcpgw_jwt_config *cfg, const struct mcpgw_jwks *keys,
                     const char *tok, size_t len, int64_t now_s, struct mcpgw_jwt_result *res);
void mcpgw_jwt_result_deinit(struct mcpgw_jwt_result *res);

/* Does the space-separated scope list contain scope (a whole word)? */
int mcpgw_jwt_scopes_have(const char *scopes, const char *scope);

#endif
