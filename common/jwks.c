/* jwks.c - JWKS documents into OpenSSL public keys (EVP_PKEY_fromdata), lookup by kid, and the
 * fetch schedule. Nothing here does I/O: the HTTP client's owner feeds documents and times in. */
#include "common/jwks.h"

#include "common/b64.h"
#include "common/util.h"

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <string.h>

struct jwk {
    char *kid; /* NULL when the JWK has none */
    int alg;   /* the one mcpgw_jwks_alg this key can verify */
    EVP_PKEY *pkey;
};

struct mcpgw_jwks {
    int n;
    struct jwk keys[MCPGW_JWKS_MAX_KEYS];
};

static const char *const alg_names[MCPGW_JWKS_ALG_COUNT] = {"RS256", "ES256", "EdDSA"};

const char *mcpgw_jwks_alg_str(int alg)
{
    return alg >= 0 && alg < MCPGW_JWKS_ALG_COUNT ? alg_names[alg] : "?";
}

int mcpgw_jwks_alg_parse(const char *name)
{
    for (int i = 0; i < MCPGW_JWKS_ALG_COUNT; i++)
        if (strcmp(name, alg_names[i]) == 0)
            return i;
    return -1;
}

static const char *str_field(json_object *o, const char *name)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Decode the base64url member name of o into buf; returns its length or -1 with err. */
static long b64_field(json_object *o, const char *name, uint8_t *buf, size_t cap, char *err,
                      size_t errlen)
{
    const char *s = str_field(o, name);
    long n;
    if (!s) {
        snprintf(err, errlen, "member \"%s\" is missing or not a string", name);
        return -1;
    }
    n = mcpgw_b64url_decode(s, strlen(s), buf, cap);
    if (n <= 0)
        snprintf(err, errlen, "member \"%s\" is not base64url of at most %zu bytes", name, cap);
    return n;
}

/* Build an EVP_PKEY of type keytype from the parameters in bld; NULL when OpenSSL refuses them
 * (for EC, a point not on the curve). */
static EVP_PKEY *from_params(const char *keytype, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, keytype, NULL);
    EVP_PKEY *pkey = NULL;
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
            pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(json_object *o, char *err, size_t errlen)
{
    uint8_t n[1024], e[16]; /* up to 8192-bit moduli */
    long nl = b64_field(o, "n", n, sizeof(n), err, errlen);
    long el = nl > 0 ? b64_field(o, "e", e, sizeof(e), err, errlen) : -1;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;

    if (nl <= 0 || el <= 0)
        goto out;
    bn_n = BN_bin2bn(n, (int)nl, NULL);
    bn_e = BN_bin2bn(e, (int)el, NULL);
    if (!bn_n || !bn_e)
        goto out;
    /* Short RSA keys are forgeable; RFC 7518 section 3.3 asks for 2048 bits or more. */
    if (BN_num_bits(bn_n) < 2048) {
        snprintf(err, errlen, "RSA modulus has %d bits; at least 2048 are required",
                 BN_num_bits(bn_n));
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        goto out;
    pkey = from_params("RSA", bld);
    if (!pkey)
        snprintf(err, errlen, "OpenSSL refused the RSA key");
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

static EVP_PKEY *ec_key(json_object *o, char *err, size_t errlen)
{
    uint8_t pub[65], x[33], y[33];
    long xl = b64_field(o, "x", x, sizeof(x), err, errlen);
    long yl = xl > 0 ? b64_field(o, "y", y, sizeof(y), err, errlen) : -1;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;

    if (xl <= 0 || yl <= 0)
        goto out;
    /* RFC 7518 section 6.2.1.2: the coordinates are exactly the field size, 32 bytes for P-256. */
    if (xl != 32 || yl != 32) {
        snprintf(err, errlen, "P-256 coordinates must be 32 bytes each (got %ld and %ld)", xl, yl);
        goto out;
    }
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
        goto out;
    pkey = from_params("EC", bld);
    if (!pkey)
        snprintf(err, errlen, "the EC point is not on P-256");
out:
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static EVP_PKEY *ed25519_key(json_object *o, char *err, size_t errlen)
{
    uint8_t x[33];
    long xl = b64_field(o, "x", x, sizeof(x), err, errlen);
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;

    if (xl <= 0)
        goto out;
    if (xl != 32) {
        snprintf(err, errlen, "an Ed25519 public key is 32 bytes (got %ld)", xl);
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, x, 32))
        goto out;
    pkey = from_params("ED25519", bld);
    if (!pkey)
        snprintf(err, errlen, "OpenSSL refused the Ed25519 key");
out:
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* One JWK into k. Returns 1 when kept, 0 when skipped as not ours (another type or use), -1 when
 * skipped as malformed (reason in err). */
static int parse_jwk(json_object *o, struct jwk *k, char *err, size_t errlen)
{
    const char *kty = str_field(o, "kty"), *crv = str_field(o, "crv");
    const char *use = str_field(o, "use"), *alg = str_field(o, "alg"), *kid;
    json_object *v;

    if (!json_object_is_type(o, json_type_object) || !kty) {
        snprintf(err, errlen, "a key is not an object with a \"kty\"");
        return -1;
    }
    if (use && strcmp(use, "sig") != 0)
        return 0;
    if (strcmp(kty, "RSA") == 0)
        k->alg = MCPGW_JWKS_RS256;
    else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0)
        k->alg = MCPGW_JWKS_ES256;
    else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0)
        k->alg = MCPGW_JWKS_EDDSA;
    else
        return 0;
    /* A key that declares an alg may only verify that alg (RFC 7517 section 4.4). */
    if (alg && mcpgw_jwks_alg_parse(alg) != k->alg)
        return 0;
    if (json_object_object_get_ex(o, "kid", &v) && !json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "a key's \"kid\" is not a string");
        return -1;
    }
    kid = str_field(o, "kid");
    switch (k->alg) {
    case MCPGW_JWKS_RS256:
        k->pkey = rsa_key(o, err, errlen);
        break;
    case MCPGW_JWKS_ES256:
        k->pkey = ec_key(o, err, errlen);
        break;
    default:
        k->pkey = ed25519_key(o, err, errlen);
        break;
    }
    if (!k->pkey)
        return -1;
    k->kid = kid ? xstrdup(kid) : NULL;
    return 1;
}

struct mcpgw_jwks *mcpgw_jwks_parse(const char *text, size_t len, int *skipped, char *err,
                                    size_t errlen)
{
    json_tokener *tok = NULL;
    json_object *doc = NULL, *keys;
    struct mcpgw_jwks *set = NULL;
    char why[160] = "";
    int skip = 0;

    if (len > MCPGW_JWKS_MAX_DOC) {
        snprintf(err, errlen, "JWKS document of %zu bytes is over the %d-byte limit", len,
                 MCPGW_JWKS_MAX_DOC);
        goto out;
    }
    tok = json_tokener_new();
    doc = json_tokener_parse_ex(tok, text, (int)len);
    if (!doc || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len) {
        snprintf(err, errlen, "JWKS document is not one JSON value");
        goto out;
    }
    if (!json_object_object_get_ex(doc, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        snprintf(err, errlen, "JWKS document has no \"keys\" array");
        goto out;
    }
    set = xcalloc(1, sizeof(*set));
    for (size_t i = 0; i < json_object_array_length(keys); i++) {
        struct jwk k = {0};
        int r;
        if (set->n == MCPGW_JWKS_MAX_KEYS) {
            skip++;
            continue;
        }
        r = parse_jwk(json_object_array_get_idx(keys, i), &k, why, sizeof(why));
        if (r == 1)
            set->keys[set->n++] = k;
        else
            skip++;
    }
    if (why[0] && err)
        snprintf(err, errlen, "%s", why);
out:
    if (skipped)
        *skipped = skip;
    json_object_put(doc);
    if (tok)
        json_tokener_free(tok);
    return set;
}

void mcpgw_jwks_free(struct mcpgw_jwks *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++) {
        free(set->keys[i].kid);
        EVP_PKEY_free(set->keys[i].pkey);
    }
    free(set);
}

int mcpgw_jwks_count(const struct mcpgw_jwks *set)
{
    return set ? set->n : 0;
}

int mcpgw_jwks_find(const struct mcpgw_jwks *set, const char *kid, int alg, EVP_PKEY **key)
{
    int found = -1, mismatch = 0, fits = 0;

    for (int i = 0; set && i < set->n; i++) {
        const struct jwk *k = &set->keys[i];
        if (kid) {
            if (!k->kid || strcmp(k->kid, kid) != 0)
                continue;
            if (k->alg != alg) {
                mismatch = 1;
                continue;
            }
            found = i;
            break;
        }
        if (k->alg == alg) {
            fits++;
            found = i;
        }
    }
    if (!kid && fits > 1)
        return MCPGW_JWKS_AMBIGUOUS;
    if (found < 0)
        return mismatch ? MCPGW_JWKS_MISMATCH : MCPGW_JWKS_NO_KID;
    *key = set->keys[found].pkey;
    return MCPGW_JWKS_FOUND;
}

void mcpgw_jwks_sched_init(struct mcpgw_jwks_sched *s, uint64_t refresh_ms, uint64_t retry_ms,
                           uint64_t unknown_kid_min_ms)
{
    memset(s, 0, sizeof(*s));
    s->refresh_ms = refresh_ms ? refresh_ms : 300000;
    s->retry_ms = retry_ms ? retry_ms : 1000;
    s->unknown_kid_min_ms = unknown_kid_min_ms ? unknown_kid_min_ms : 10000;
    s->backoff_ms = s->retry_ms;
}

int mcpgw_jwks_sched_due(const struct mcpgw_jwks_sched *s, uint64_t now_ms, uint64_t *wait_ms)
{
    if (s->in_flight) {
        if (wait_ms)
            *wait_ms = UINT64_MAX;
        return 0;
    }
    if (now_ms >= s->next_ms)
        return 1;
    if (wait_ms)
        *wait_ms = s->next_ms - now_ms;
    return 0;
}

int mcpgw_jwks_sched_unknown_kid(const struct mcpgw_jwks_sched *s, uint64_t now_ms)
{
    if (s->in_flight)
        return -1;
    if (s->last_start_ms && now_ms - s->last_start_ms < s->unknown_kid_min_ms)
        return 0;
    return 1;
}

void mcpgw_jwks_sched_started(struct mcpgw_jwks_sched *s, uint64_t now_ms)
{
    s->in_flight = 1;
    /* 0 means "never" in last_start_ms, so a fetch at time 0 counts as time 1. */
    s->last_start_ms = now_ms ? now_ms : 1;
}

void mcpgw_jwks_sched_done(struct mcpgw_jwks_sched *s, uint64_t now_ms, int ok)
{
    s->in_flight = 0;
    if (ok) {
        s->have_set = 1;
        s->failures = 0;
        s->backoff_ms = s->retry_ms;
        s->next_ms = now_ms + s->refresh_ms;
        return;
    }
    /* Keep serving with the old set (the caller does not touch it); retry sooner than a refresh,
     * backing off so a down authorization server is not hammered. */
    s->failures++;
    s->next_ms = now_ms + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > s->refresh_ms ? s->refresh_ms : s->backoff_ms * 2;
}
