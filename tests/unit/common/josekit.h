/* josekit.h - test helpers: fresh keys made with OpenSSL, their JWKs, and tokens signed with them
 * (an independent path from common/jwt.c: signing, DER -> raw r||s, JSON by hand). */
#ifndef MCPGW_TESTS_JOSEKIT_H
#define MCPGW_TESTS_JOSEKIT_H

#include <openssl/evp.h>
#include <stddef.h>

/* A new key: "RSA" (2048 bits, or bits if non-zero), "EC" (P-256) or "ED25519". Aborts on
 * failure. */
EVP_PKEY *josekit_keygen(const char *type, int bits);
/* The public JWK of key as a JSON object text (malloc'd), with kid (NULL: none) and extra members
 * (NULL or e.g. "\"use\":\"sig\"") spliced in. */
char *josekit_jwk(EVP_PKEY *key, const char *kid, const char *extra);
/* A compact JWS over payload_json with header {"alg":alg,"kid":kid,"typ":"at+jwt"} (kid NULL:
 * none), signed with key (RS256, ES256, EdDSA) or, for alg "HS256", HMAC-SHA256 with
 * secret[0..secret_len). malloc'd. */
char *josekit_sign(const char *alg, const char *kid, const char *payload_json, EVP_PKEY *key,
                   const void *secret, size_t secret_len);
/* A compact JWS with a raw header JSON text and an empty or given signature text. */
char *josekit_raw(const char *header_json, const char *payload_json, const char *sig_b64);
/* The public key in PEM (SubjectPublicKeyInfo), malloc'd, *len set: the HMAC secret of the
 * classic alg-confusion attack. */
char *josekit_public_pem(EVP_PKEY *key, size_t *len);

#endif
