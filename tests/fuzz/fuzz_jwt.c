/* fuzz_jwt.c - libFuzzer driver for JWT verification (common/jwt.h). */
#include "common/b64.h"
#include "common/jwt.h"
#include "common/util.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *ed;
static struct mcpgw_jwks *keys;
static const struct mcpgw_jwt_config cfg = {"https://as.example", "https://mcp.example/mcp", 60, 0};

/* One Ed25519 key, made once, published as kid "k" so fuzzed claims can be signed and reach the
 * claim checks (random bytes alone never get past the signature). */
static void setup(void)
{
    uint8_t pub[32];
    size_t n = sizeof(pub);
    char x[64], doc[256];
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!ed || !EVP_PKEY_get_raw_public_key(ed, pub, &n))
        abort();
    mcpgw_b64url_encode(pub, 32, x);
    snprintf(doc, sizeof(doc),
             "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\",\"x\":\"%s\"}]}", x);
    keys = mcpgw_jwks_parse(doc, strlen(doc), NULL, NULL, 0);
    if (mcpgw_jwks_count(keys) != 1)
        abort();
}

/* header.payload signed with the key, both given as raw JSON bytes. */
static char *signed_token(const uint8_t *hdr, size_t hl, const uint8_t *pl, size_t pn)
{
    char *tok = xmalloc(MCPGW_B64URL_LEN(hl) + MCPGW_B64URL_LEN(pn) + 100);
    uint8_t sig[64];
    size_t sl = sizeof(sig), n;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    n = mcpgw_b64url_encode(hdr, hl, tok);
    tok[n++] = '.';
    n += mcpgw_b64url_encode(pl, pn, tok + n);
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, ed) != 1 ||
        EVP_DigestSign(md, sig, &sl, (uint8_t *)tok, n) != 1)
        abort();
    EVP_MD_CTX_free(md);
    tok[n++] = '.';
    mcpgw_b64url_encode(sig, sl, tok + n);
    return tok;
}

/* First byte picks the mode: 0 the rest is a whole token; 1 the rest is the claims, signed; 2 the
 * rest is the header, signed over fixed claims. Nothing may crash or leak; a refusal always has
 * a reason and names no principal; an accepted token always names one. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char claims[] =
        "{\"iss\":\"https://as.example\",\"aud\":\"https://mcp.example/mcp\","
        "\"sub\":\"s\",\"exp\":2000000000}";
    static const char header[] = "{\"alg\":\"EdDSA\",\"kid\":\"k\"}";
    struct mcpgw_jwt_result res;
    char *tok;

    if (!keys)
        setup();
    if (size < 1 || size > MCPGW_JWT_MAX_LEN / 2)
        return 0;
    if (data[0] % 3 == 0) {
        tok = xstrndup((const char *)data + 1, size - 1);
        mcpgw_jwt_verify(&cfg, keys, (const char *)data + 1, size - 1, 1800000000, &res);
    } else {
        tok = data[0] % 3 == 1
                  ? signed_token((const uint8_t *)header, sizeof(header) - 1, data + 1, size - 1)
                  : signed_token(data + 1, size - 1, (const uint8_t *)claims, sizeof(claims) - 1);
        mcpgw_jwt_verify(&cfg, keys, tok, strlen(tok), 1800000000, &res);
    }
    if (res.err < 0 || res.err >= MCPGW_JWT_ERR_COUNT || res.reason[0] == '\0')
        abort();
    if ((res.err == MCPGW_JWT_OK) != (res.principal != NULL))
        abort();
    mcpgw_jwt_result_deinit(&res);
    free(tok);
    return 0;
}
