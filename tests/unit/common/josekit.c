/* josekit.c - keys, JWKs and signed tokens for the JOSE tests (see josekit.h). */
#include "tests/unit/common/josekit.h"

#include "common/b64.h"
#include "common/util.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
    fprintf(stderr, "josekit: %s failed\n", what);
    abort();
}

EVP_PKEY *josekit_keygen(const char *type, int bits)
{
    EVP_PKEY *k = NULL;
    if (strcmp(type, "RSA") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(bits ? bits : 2048));
    else if (strcmp(type, "EC") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, type);
    if (!k)
        die("keygen");
    return k;
}

static char *b64(const void *p, size_t n)
{
    char *s = xmalloc(MCPGW_B64URL_LEN(n) + 1);
    mcpgw_b64url_encode(p, n, s);
    return s;
}

static char *bn_b64(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    uint8_t buf[1024];
    int n;
    if (!EVP_PKEY_get_bn_param(key, param, &bn))
        die("get_bn_param");
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64(buf, (size_t)n);
}

/* An EC coordinate, left-padded to 32 bytes as RFC 7518 requires. */
static char *coord_b64(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    uint8_t buf[32];
    if (!EVP_PKEY_get_bn_param(key, param, &bn) || BN_bn2binpad(bn, buf, 32) != 32)
        die("ec coordinate");
    BN_free(bn);
    return b64(buf, 32);
}

char *josekit_jwk(EVP_PKEY *key, const char *kid, const char *extra)
{
    char kidpart[128] = "", *out = xmalloc(4096), *a, *b = NULL;
    if (kid)
        snprintf(kidpart, sizeof(kidpart), "\"kid\":\"%s\",", kid);
    if (EVP_PKEY_is_a(key, "RSA")) {
        a = bn_b64(key, OSSL_PKEY_PARAM_RSA_N);
        b = bn_b64(key, OSSL_PKEY_PARAM_RSA_E);
        snprintf(out, 4096, "{%s%s%s\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", kidpart,
                 extra ? extra : "", extra ? "," : "", a, b);
    } else if (EVP_PKEY_is_a(key, "EC")) {
        a = coord_b64(key, OSSL_PKEY_PARAM_EC_PUB_X);
        b = coord_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y);
        snprintf(out, 4096, "{%s%s%s\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
                 kidpart, extra ? extra : "", extra ? "," : "", a, b);
    } else {
        uint8_t pub[32];
        size_t n = sizeof(pub);
        if (!EVP_PKEY_get_raw_public_key(key, pub, &n) || n != 32)
            die("raw public key");
        a = b64(pub, 32);
        snprintf(out, 4096, "{%s%s%s\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", kidpart,
                 extra ? extra : "", extra ? "," : "", a);
    }
    free(a);
    free(b);
    return out;
}

static char *join(const char *signing_input, const uint8_t *sig, size_t siglen)
{
    char *s = b64(sig, siglen);
    char *out = xmalloc(strlen(signing_input) + strlen(s) + 2);
    sprintf(out, "%s.%s", signing_input, s);
    free(s);
    return out;
}

char *josekit_raw(const char *header_json, const char *payload_json, const char *sig_b64)
{
    char *h = b64(header_json, strlen(header_json)), *p = b64(payload_json, strlen(payload_json));
    char *out = xmalloc(strlen(h) + strlen(p) + strlen(sig_b64) + 3);
    sprintf(out, "%s.%s.%s", h, p, sig_b64);
    free(h);
    free(p);
    return out;
}

char *josekit_sign(const char *alg, const char *kid, const char *payload_json, EVP_PKEY *key,
                   const void *secret, size_t secret_len)
{
    char header[256], *h, *p, *input, *out;
    uint8_t sig[1024];
    size_t siglen = sizeof(sig);

    if (kid)
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}", alg,
                 kid);
    else
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"at+jwt\"}", alg);
    h = b64(header, strlen(header));
    p = b64(payload_json, strlen(payload_json));
    input = xmalloc(strlen(h) + strlen(p) + 2);
    sprintf(input, "%s.%s", h, p);
    if (strcmp(alg, "HS256") == 0) {
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
                       (const unsigned char *)input, strlen(input), sig, sizeof(sig), &siglen))
            die("hmac");
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ed = strcmp(alg, "EdDSA") == 0;
        if (EVP_DigestSignInit(md, NULL, ed ? NULL : EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
            die("sign");
        EVP_MD_CTX_free(md);
        if (strcmp(alg, "ES256") == 0) {
            /* EVP gives DER; JOSE wants r||s, 32 bytes each. */
            const unsigned char *d = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)siglen);
            uint8_t raw[64];
            if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
                BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
                die("ecdsa sig");
            ECDSA_SIG_free(es);
            memcpy(sig, raw, 64);
            siglen = 64;
        }
    }
    out = join(input, sig, siglen);
    free(h);
    free(p);
    free(input);
    return out;
}

char *josekit_public_pem(EVP_PKEY *key, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    if (!bio || PEM_write_bio_PUBKEY(bio, key) != 1)
        die("pem");
    n = BIO_get_mem_data(bio, &data);
    out = xmalloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}
