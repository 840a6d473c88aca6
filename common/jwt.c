/* jwt.c - local verification of JWT access tokens with OpenSSL EVP; see jwt.h for the contract. */
#include "common/jwt.h"

#include "common/b64.h"
#include "common/util.h"

#include <json-c/json.h>
#include <math.h>
#include <openssl/ecdsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[MCPGW_JWT_ERR_COUNT] = {
    "ok",          "no_token",      "malformed",    "alg_not_allowed",
    "unknown_kid", "bad_signature", "wrong_issuer", "wrong_audience",
    "expired",     "not_yet_valid"};

const char *mcpgw_jwt_err_str(int err)
{
    return err >= 0 && err < MCPGW_JWT_ERR_COUNT ? err_names[err] : "?";
}

__attribute__((format(printf, 3, 4))) static int refuse(struct mcpgw_jwt_result *res, int err,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
    va_end(ap);
    res->err = err;
    return err;
}

/* Copy at most cap-1 printable ASCII characters of s into out, for messages: a header value is
 * attacker-chosen until the signature is checked. */
static void printable(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 1 < cap; s++)
        out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out[o] = '\0';
}

/* Decode one base64url part into a JSON object. Returns it (json_object_put it) or NULL. */
static json_object *decode_json_part(const char *p, size_t n, char *buf)
{
    long dl = mcpgw_b64url_decode(p, n, buf, n);
    json_tokener *tok;
    json_object *o;
    if (dl <= 0)
        return NULL;
    tok = json_tokener_new();
    o = json_tokener_parse_ex(tok, buf, (int)dl);
    if (o && (json_tokener_get_error(tok) != json_tokener_success ||
              json_tokener_get_parse_end(tok) != (size_t)dl ||
              !json_object_is_type(o, json_type_object))) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* A NumericDate claim: 1 and *out when present and a finite number, 0 when absent, -1 when of
 * another type. */
static int numeric_claim(json_object *claims, const char *name, int64_t *out)
{
    json_object *v;
    double d;
    if (!json_object_object_get_ex(claims, name, &v))
        return 0;
    /* Bounded far beyond any real date, so that arithmetic with now and skew cannot overflow. */
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return *out <= 9000000000000000LL && *out >= -9000000000000000LL ? 1 : -1;
    }
    if (!json_object_is_type(v, json_type_double))
        return -1;
    d = json_object_get_double(v);
    if (!isfinite(d) || d > 9e15 || d < -9e15)
        return -1;
    *out = (int64_t)d;
    return 1;
}

/* ES256 signatures are JOSE's raw r||s (RFC 7518 section 3.4); EVP wants DER. Returns the DER
 * length in der (room for 80 bytes), or -1. */
static int es256_der(const uint8_t *sig, size_t n, uint8_t *der)
{
    ECDSA_SIG *es;
    BIGNUM *r, *s;
    unsigned char *p = der;
    int len;
    if (n != 64)
        return -1;
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    len = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    return len > 0 && len <= 80 ? len : -1;
}

/* Verify sig over msg with key for alg. Returns 1 when it verifies. */
static int verify_sig(int alg, EVP_PKEY *key, const char *msg, size_t msglen, const uint8_t *sig,
                      size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    int ok = 0;

    if (!md)
        return 0;
    if (alg == MCPGW_JWKS_ES256) {
        int dl = es256_der(sig, siglen, der);
        if (dl < 0)
            goto out;
        sig = der;
        siglen = (size_t)dl;
    }
    if (EVP_DigestVerifyInit(md, NULL, alg == MCPGW_JWKS_EDDSA ? NULL : EVP_sha256(), NULL, key) !=
        1)
        goto out;
    ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)msg, msglen) == 1;
out:
    EVP_MD_CTX_free(md);
    return ok;
}

/* The header: alg allowed, no crit, kid picks a key. Returns OK with *alg and *key, or the
 * refusal. */
static int check_header(const struct mcpgw_jwt_config *cfg, const struct mcpgw_jwks *keys,
                        json_object *hdr, struct mcpgw_jwt_result *res, int *alg, EVP_PKEY **key)
{
    json_object *v;
    const char *name, *kid = NULL;
    char shown[40];
    unsigned allowed = cfg->algs ? cfg->algs : MCPGW_JWKS_ALG_ALL;
    int r;

    if (!json_object_object_get_ex(hdr, "alg", &v) || !json_object_is_type(v, json_type_string))
        return refuse(res, MCPGW_JWT_MALFORMED, "the token header has no \"alg\"");
    name = json_object_get_string(v);
    *alg = mcpgw_jwks_alg_parse(name);
    if (*alg < 0 || !(allowed & (1u << *alg))) {
        printable(name, shown, sizeof(shown));
        return refuse(res, MCPGW_JWT_ALG_NOT_ALLOWED, "signature algorithm \"%s\" is not accepted",
                      shown);
    }
    /* RFC 7515 section 4.1.11: an extension we do not understand must not be ignored. */
    if (json_object_object_get_ex(hdr, "crit", NULL))
        return refuse(res, MCPGW_JWT_MALFORMED, "the token header has \"crit\" extensions");
    if (json_object_object_get_ex(hdr, "kid", &v)) {
        if (!json_object_is_type(v, json_type_string))
            return refuse(res, MCPGW_JWT_MALFORMED, "the token header's \"kid\" is not a string");
        kid = json_object_get_string(v);
        printable(kid, res->kid, sizeof(res->kid));
    }
    r = mcpgw_jwks_find(keys, kid, *alg, key);
    if (r == MCPGW_JWKS_MISMATCH)
        return refuse(res, MCPGW_JWT_ALG_NOT_ALLOWED, "key \"%s\" is not a %s key", res->kid,
                      mcpgw_jwks_alg_str(*alg));
    if (r == MCPGW_JWKS_AMBIGUOUS)
        return refuse(res, MCPGW_JWT_UNKNOWN_KID,
                      "the token names no key id and several %s keys are published",
                      mcpgw_jwks_alg_str(*alg));
    if (r != MCPGW_JWKS_FOUND)
        return kid ? refuse(res, MCPGW_JWT_UNKNOWN_KID, "no published key has id \"%s\"", res->kid)
                   : refuse(res, MCPGW_JWT_UNKNOWN_KID, "no published %s key",
                            mcpgw_jwks_alg_str(*alg));
    return MCPGW_JWT_OK;
}

static int audience_has(json_object *aud, const char *want)
{
    if (json_object_is_type(aud, json_type_string))
        return strcmp(json_object_get_string(aud), want) == 0;
    if (!json_object_is_type(aud, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(aud); i++) {
        json_object *a = json_object_array_get_idx(aud, i);
        if (json_object_is_type(a, json_type_string) &&
            strcmp(json_object_get_string(a), want) == 0)
            return 1;
    }
    return 0;
}

/* Scopes from "scope" (RFC 8693/9068: one space-separated string) or else "scp" (an array of
 * strings, as some servers issue). Returns a new string or NULL when a claim has the wrong type. */
static char *scopes_of(json_object *claims)
{
    json_object *v;
    if (json_object_object_get_ex(claims, "scope", &v))
        return json_object_is_type(v, json_type_string) ? xstrdup(json_object_get_string(v)) : NULL;
    if (json_object_object_get_ex(claims, "scp", &v)) {
        size_t n, total = 1;
        char *out;
        if (!json_object_is_type(v, json_type_array))
            return NULL;
        n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            json_object *s = json_object_array_get_idx(v, i);
            if (!json_object_is_type(s, json_type_string))
                return NULL;
            total += (size_t)json_object_get_string_len(s) + 1;
        }
        out = xmalloc(total);
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (i)
                strcat(out, " ");
            strcat(out, json_object_get_string(json_object_array_get_idx(v, i)));
        }
        return out;
    }
    return xstrdup("");
}

/* The claims of a token whose signature verified. */
static int check_claims(const struct mcpgw_jwt_config *cfg, json_object *claims, int64_t now,
                        struct mcpgw_jwt_result *res)
{
    json_object *v;
    int64_t nbf = 0;
    int r;

    if (!json_object_object_get_ex(claims, "iss", &v) ||
        !json_object_is_type(v, json_type_string) || !cfg->issuer ||
        strcmp(json_object_get_string(v), cfg->issuer) != 0)
        return refuse(res, MCPGW_JWT_WRONG_ISSUER, "the token was not issued by %s",
                      cfg->issuer ? cfg->issuer : "a trusted issuer");
    if (!json_object_object_get_ex(claims, "aud", &v) || !cfg->audience ||
        !audience_has(v, cfg->audience))
        return refuse(res, MCPGW_JWT_WRONG_AUDIENCE, "the token is not meant for %s",
                      cfg->audience ? cfg->audience : "this resource");
    r = numeric_claim(claims, "exp", &res->exp);
    if (r != 1)
        return refuse(res, MCPGW_JWT_MALFORMED, "the token has no numeric \"exp\"");
    if (now - cfg->skew_s >= res->exp)
        return refuse(res, MCPGW_JWT_EXPIRED, "the token expired %lld s ago",
                      (long long)(now - res->exp));
    r = numeric_claim(claims, "nbf", &nbf);
    if (r < 0 || numeric_claim(claims, "iat", &res->iat) < 0)
        return refuse(res, MCPGW_JWT_MALFORMED, "the token's \"nbf\" or \"iat\" is not a number");
    if (r == 1 && nbf > now + cfg->skew_s)
        return refuse(res, MCPGW_JWT_NOT_YET_VALID, "the token is not valid for another %lld s",
                      (long long)(nbf - now));
    if (res->iat > now + cfg->skew_s)
        return refuse(res, MCPGW_JWT_NOT_YET_VALID, "the token was issued %lld s in the future",
                      (long long)(res->iat - now));
    if (!json_object_object_get_ex(claims, "sub", &v) ||
        !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        return refuse(res, MCPGW_JWT_MALFORMED, "the token has no \"sub\"");
    res->scopes = scopes_of(claims);
    if (!res->scopes)
        return refuse(res, MCPGW_JWT_MALFORMED, "the token's \"scope\" or \"scp\" is malformed");
    res->subject = xstrdup(json_object_get_string(v));
    res->principal = xmalloc(strlen(cfg->issuer) + strlen(res->subject) + 2);
    sprintf(res->principal, "%s %s", cfg->issuer, res->subject);
    return MCPGW_JWT_OK;
}

int mcpgw_jwt_verify(const struct mcpgw_jwt_config *cfg, const struct mcpgw_jwks *keys,
                     const char *tok, size_t len, int64_t now_s, struct mcpgw_jwt_result *res)
{
    const char *d1, *d2;
    json_object *hdr = NULL, *claims = NULL;
    char *buf = NULL;
    EVP_PKEY *key = NULL;
    long sl;
    int alg = 0;

    memset(res, 0, sizeof(*res));
    if (len == 0)
        return refuse(res, MCPGW_JWT_NO_TOKEN, "no access token");
    if (len > MCPGW_JWT_MAX_LEN)
        return refuse(res, MCPGW_JWT_MALFORMED, "the token is longer than %d bytes",
                      MCPGW_JWT_MAX_LEN);
    d1 = memchr(tok, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return refuse(res, MCPGW_JWT_MALFORMED, "the token is not a compact JWS (three parts)");
    buf = xmalloc(len);
    hdr = decode_json_part(tok, (size_t)(d1 - tok), buf);
    if (!hdr) {
        refuse(res, MCPGW_JWT_MALFORMED, "the token header is not base64url of a JSON object");
        goto out;
    }
    if (check_header(cfg, keys, hdr, res, &alg, &key) != MCPGW_JWT_OK)
        goto out;
    sl = mcpgw_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), buf, len);
    if (sl <= 0 || !verify_sig(alg, key, tok, (size_t)(d2 - tok), (uint8_t *)buf, (size_t)sl)) {
        refuse(res, MCPGW_JWT_BAD_SIGNATURE, "the token's %s signature does not verify",
               mcpgw_jwks_alg_str(alg));
        goto out;
    }
    claims = decode_json_part(d1 + 1, (size_t)(d2 - d1 - 1), buf);
    if (!claims) {
        refuse(res, MCPGW_JWT_MALFORMED, "the token payload is not base64url of a JSON object");
        goto out;
    }
    if (check_claims(cfg, claims, now_s, res) == MCPGW_JWT_OK)
        snprintf(res->reason, sizeof(res->reason), "valid");
out:
    json_object_put(hdr);
    json_object_put(claims);
    free(buf);
    if (res->err != MCPGW_JWT_OK) {
        /* A refused token names nobody. */
        free(res->principal);
        free(res->subject);
        free(res->scopes);
        res->principal = res->subject = res->scopes = NULL;
    }
    return res->err;
}

void mcpgw_jwt_result_deinit(struct mcpgw_jwt_result *res)
{
    free(res->principal);
    free(res->subject);
    free(res->scopes);
    res->principal = res->subject = res->scopes = NULL;
}

int mcpgw_jwt_scopes_have(const char *scopes, const char *scope)
{
    size_t n = strlen(scope);
    const char *p = scopes;
    if (!scopes || n == 0)
        return 0;
    while ((p = strstr(p, scope)) != NULL) {
        if ((p == scopes || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
        p += n;
    }
    return 0;
}
