/* test_jwt.c - JWT verification with real keys made by OpenSSL in the test: every refusal the
 * authorization issue lists, each alg, and the claims' edge cases. */
#include "common/jwt.h"

#include "common/b64.h"
#include "common/util.h"
#include "tests/unit/common/josekit.h"

#include <check.h>
#include <openssl/ecdsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISS "https://as.example.com"
#define AUD "https://mcp.example.com/mcp"
#define NOW 1800000000LL

static EVP_PKEY *rsa, *rsa_other, *ec, *ed;
static struct mcpgw_jwks *keys;
static const struct mcpgw_jwt_config cfg = {ISS, AUD, 60, 0};

static void make_keys(void)
{
    char doc[16384];
    char *a, *b, *c;
    rsa = josekit_keygen("RSA", 2048);
    rsa_other = josekit_keygen("RSA", 2048);
    ec = josekit_keygen("EC", 0);
    ed = josekit_keygen("ED25519", 0);
    a = josekit_jwk(rsa, "rsa1", "\"use\":\"sig\",\"alg\":\"RS256\"");
    b = josekit_jwk(ec, "ec1", NULL);
    c = josekit_jwk(ed, "ed1", NULL);
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s]}", a, b, c);
    keys = mcpgw_jwks_parse(doc, strlen(doc), NULL, NULL, 0);
    if (!keys || mcpgw_jwks_count(keys) != 3)
        abort();
    free(a);
    free(b);
    free(c);
}

static void free_keys(void)
{
    mcpgw_jwks_free(keys);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

/* Claims with the given iss, aud (a JSON value), exp, nbf (0: none) and extra members. */
static char *claims(const char *iss, const char *aud_json, long long exp, long long nbf,
                    const char *extra)
{
    char *s = xmalloc(1024), nbfpart[64] = "";
    if (nbf)
        snprintf(nbfpart, sizeof(nbfpart), ",\"nbf\":%lld", nbf);
    snprintf(s, 1024,
             "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"alice\",\"exp\":%lld,\"iat\":%lld%s%s%s}", iss,
             aud_json, exp, NOW - 10, nbfpart, extra ? "," : "", extra ? extra : "");
    return s;
}

static char *good_claims(void)
{
    return claims(ISS, "\"" AUD "\"", NOW + 600, 0, "\"scope\":\"tools:read tools:call\"");
}

/* Verify tok and return the result code; res is deinitialised unless keep is given. */
static int verify(const char *tok, struct mcpgw_jwt_result *keep)
{
    struct mcpgw_jwt_result res;
    int r = mcpgw_jwt_verify(&cfg, keys, tok, strlen(tok), NOW, &res);
    ck_assert_int_eq(r, res.err);
    ck_assert_str_ne(res.reason, "");
    if (keep)
        *keep = res;
    else
        mcpgw_jwt_result_deinit(&res);
    return r;
}

static int verify_signed(const char *alg, const char *kid, EVP_PKEY *key, const char *payload)
{
    char *tok = josekit_sign(alg, kid, payload, key, NULL, 0);
    int r = verify(tok, NULL);
    free(tok);
    return r;
}

START_TEST(test_rs256_es256_eddsa_tokens_verify_and_name_the_principal)
{
    static const char *const algs[] = {"RS256", "ES256", "EdDSA"}, *const kids[] = {"rsa1", "ec1",
                                                                                    "ed1"};
    EVP_PKEY *k[] = {rsa, ec, ed};
    char *payload = good_claims();
    for (int i = 0; i < 3; i++) {
        struct mcpgw_jwt_result res;
        char *tok = josekit_sign(algs[i], kids[i], payload, k[i], NULL, 0);
        ck_assert_int_eq(verify(tok, &res), MCPGW_JWT_OK);
        ck_assert_str_eq(res.principal, ISS " alice");
        ck_assert_str_eq(res.subject, "alice");
        ck_assert_str_eq(res.scopes, "tools:read tools:call");
        ck_assert_int_eq(res.exp, NOW + 600);
        ck_assert_int_eq(res.iat, NOW - 10);
        ck_assert_str_eq(res.kid, kids[i]);
        ck_assert(mcpgw_jwt_scopes_have(res.scopes, "tools:call"));
        ck_assert(!mcpgw_jwt_scopes_have(res.scopes, "tools"));
        mcpgw_jwt_result_deinit(&res);
        free(tok);
    }
    free(payload);
}
END_TEST

START_TEST(test_empty_token_is_no_token)
{
    ck_assert_int_eq(verify("", NULL), MCPGW_JWT_NO_TOKEN);
}
END_TEST

START_TEST(test_expired_token_is_refused_but_skew_is_allowed)
{
    char *late = claims(ISS, "\"" AUD "\"", NOW - 61, 0, NULL);
    char *within = claims(ISS, "\"" AUD "\"", NOW - 59, 0, NULL);
    struct mcpgw_jwt_result res;
    char *tok = josekit_sign("ES256", "ec1", late, ec, NULL, 0);
    ck_assert_int_eq(verify(tok, &res), MCPGW_JWT_EXPIRED);
    ck_assert_ptr_null(res.principal);
    ck_assert_str_eq(mcpgw_jwt_err_str(res.err), "expired");
    ck_assert_ptr_nonnull(strstr(res.reason, "expired 61 s ago"));
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, within), MCPGW_JWT_OK);
    free(tok);
    free(late);
    free(within);
}
END_TEST

START_TEST(test_token_not_yet_valid_is_refused)
{
    char *early = claims(ISS, "\"" AUD "\"", NOW + 600, NOW + 120, NULL);
    char *within = claims(ISS, "\"" AUD "\"", NOW + 600, NOW + 30, NULL);
    char *future_iat = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\","
                               "\"exp\":1800000600,\"iat\":1800000300}");
    ck_assert_int_eq(verify_signed("RS256", "rsa1", rsa, early), MCPGW_JWT_NOT_YET_VALID);
    ck_assert_int_eq(verify_signed("RS256", "rsa1", rsa, within), MCPGW_JWT_OK);
    ck_assert_int_eq(verify_signed("RS256", "rsa1", rsa, future_iat), MCPGW_JWT_NOT_YET_VALID);
    free(early);
    free(within);
    free(future_iat);
}
END_TEST

START_TEST(test_wrong_audience_and_token_for_another_resource_are_refused)
{
    char *wrong = claims(ISS, "\"https://mcp.example.com/other\"", NOW + 600, 0, NULL);
    char *other = claims(ISS, "[\"https://api.example.com\",\"https://mcp.example.com\"]",
                         NOW + 600, 0, NULL);
    char *listed = claims(ISS, "[\"https://api.example.com\",\"" AUD "\"]", NOW + 600, 0, NULL);
    char *none = xstrdup("{\"iss\":\"" ISS "\",\"sub\":\"a\",\"exp\":1800000600}");
    ck_assert_int_eq(verify_signed("EdDSA", "ed1", ed, wrong), MCPGW_JWT_WRONG_AUDIENCE);
    ck_assert_int_eq(verify_signed("EdDSA", "ed1", ed, other), MCPGW_JWT_WRONG_AUDIENCE);
    ck_assert_int_eq(verify_signed("EdDSA", "ed1", ed, none), MCPGW_JWT_WRONG_AUDIENCE);
    ck_assert_int_eq(verify_signed("EdDSA", "ed1", ed, listed), MCPGW_JWT_OK);
    free(wrong);
    free(other);
    free(listed);
    free(none);
}
END_TEST

START_TEST(test_wrong_issuer_is_refused)
{
    char *wrong = claims("https://evil.example.com", "\"" AUD "\"", NOW + 600, 0, NULL);
    char *slash = claims(ISS "/", "\"" AUD "\"", NOW + 600, 0, NULL);
    ck_assert_int_eq(verify_signed("RS256", "rsa1", rsa, wrong), MCPGW_JWT_WRONG_ISSUER);
    ck_assert_int_eq(verify_signed("RS256", "rsa1", rsa, slash), MCPGW_JWT_WRONG_ISSUER);
    free(wrong);
    free(slash);
}
END_TEST

START_TEST(test_alg_none_is_refused)
{
    char *payload = good_claims();
    const char *headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"none\",\"kid\":\"rsa1\"}",
                             "{\"alg\":\"None\"}", "{\"alg\":\"NONE\",\"kid\":\"ed1\"}"};
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(headers); i++) {
        char *tok = josekit_raw(headers[i], payload, "");
        ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_ALG_NOT_ALLOWED);
        free(tok);
        tok = josekit_raw(headers[i], payload, "AAAA");
        ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_ALG_NOT_ALLOWED);
        free(tok);
    }
    free(payload);
}
END_TEST

START_TEST(test_hs256_signed_with_the_public_key_is_refused)
{
    /* The alg-confusion attack: HMAC "keyed" with what the verifier holds as a public key,
     * in each form an implementation might use as the secret. */
    char *payload = good_claims(), *jwk = josekit_jwk(rsa, "rsa1", NULL), *tok;
    size_t pemlen;
    char *pem = josekit_public_pem(rsa, &pemlen);
    const char *algs[] = {"HS256", "HS384", "HS512"};

    tok = josekit_sign("HS256", "rsa1", payload, NULL, pem, pemlen);
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_ALG_NOT_ALLOWED);
    free(tok);
    tok = josekit_sign("HS256", "rsa1", payload, NULL, jwk, strlen(jwk));
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_ALG_NOT_ALLOWED);
    free(tok);
    tok = josekit_sign("HS256", NULL, payload, NULL, pem, pemlen);
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_ALG_NOT_ALLOWED);
    free(tok);
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(algs); i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"ec1\"}", algs[i]);
        tok = josekit_raw(hdr, payload, "c2lnbmF0dXJl");
        ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_ALG_NOT_ALLOWED);
        free(tok);
    }
    free(pem);
    free(jwk);
    free(payload);
}
END_TEST

START_TEST(test_tampered_payload_or_signature_is_refused)
{
    char *payload = good_claims(), *tok = josekit_sign("RS256", "rsa1", payload, rsa, NULL, 0);
    char *evil = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"root\","
                         "\"exp\":1800000600,\"scope\":\"admin\"}");
    char *forged = josekit_raw("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"at+jwt\"}", evil,
                               strrchr(tok, '.') + 1);
    ck_assert_int_eq(verify(forged, NULL), MCPGW_JWT_BAD_SIGNATURE);
    /* One bit of the signature, then one character of the payload. */
    tok[strlen(tok) - 5] ^= 1;
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_BAD_SIGNATURE);
    tok[strlen(tok) - 5] ^= 1;
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_OK);
    *(strchr(tok, '.') + 3) ^= 1;
    ck_assert_int_ne(verify(tok, NULL), MCPGW_JWT_OK);
    free(forged);
    free(evil);
    free(tok);
    free(payload);
}
END_TEST

START_TEST(test_token_signed_by_another_key_under_a_known_kid_is_refused)
{
    char *payload = good_claims();
    EVP_PKEY *ec2 = josekit_keygen("EC", 0), *ed2 = josekit_keygen("ED25519", 0);
    ck_assert_int_eq(verify_signed("RS256", "rsa1", rsa_other, payload), MCPGW_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec2, payload), MCPGW_JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify_signed("EdDSA", "ed1", ed2, payload), MCPGW_JWT_BAD_SIGNATURE);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(ed2);
    free(payload);
}
END_TEST

START_TEST(test_unknown_kid_is_refused_and_named)
{
    struct mcpgw_jwt_result res;
    char *payload = good_claims(),
         *tok = josekit_sign("RS256", "rsa2", payload, rsa_other, NULL, 0);
    ck_assert_int_eq(verify(tok, &res), MCPGW_JWT_UNKNOWN_KID);
    ck_assert_str_eq(res.kid, "rsa2");
    mcpgw_jwt_result_deinit(&res);
    free(tok);
    free(payload);
}
END_TEST

START_TEST(test_key_of_another_type_than_the_alg_is_refused)
{
    char *payload = good_claims();
    /* kid names the EC key, the token claims RS256 (signed with the RSA key). */
    ck_assert_int_eq(verify_signed("RS256", "ec1", rsa, payload), MCPGW_JWT_ALG_NOT_ALLOWED);
    ck_assert_int_eq(verify_signed("EdDSA", "rsa1", ed, payload), MCPGW_JWT_ALG_NOT_ALLOWED);
    free(payload);
}
END_TEST

START_TEST(test_disallowed_alg_is_refused_before_any_key)
{
    struct mcpgw_jwt_config rs_only = cfg;
    struct mcpgw_jwt_result res;
    char *payload = good_claims(), *tok = josekit_sign("EdDSA", "ed1", payload, ed, NULL, 0);
    rs_only.algs = 1u << MCPGW_JWKS_RS256;
    ck_assert_int_eq(mcpgw_jwt_verify(&rs_only, keys, tok, strlen(tok), NOW, &res),
                     MCPGW_JWT_ALG_NOT_ALLOWED);
    mcpgw_jwt_result_deinit(&res);
    free(tok);
    free(payload);
}
END_TEST

START_TEST(test_token_without_kid_uses_the_one_key_of_its_alg)
{
    char *payload = good_claims();
    ck_assert_int_eq(verify_signed("ES256", NULL, ec, payload), MCPGW_JWT_OK);
    ck_assert_int_eq(verify_signed("EdDSA", NULL, ed, payload), MCPGW_JWT_OK);
    free(payload);
}
END_TEST

START_TEST(test_scp_array_gives_the_scopes)
{
    struct mcpgw_jwt_result res;
    char *payload = claims(ISS, "\"" AUD "\"", NOW + 600, 0, "\"scp\":[\"a\",\"b:c\"]");
    char *tok = josekit_sign("ES256", "ec1", payload, ec, NULL, 0);
    ck_assert_int_eq(verify(tok, &res), MCPGW_JWT_OK);
    ck_assert_str_eq(res.scopes, "a b:c");
    mcpgw_jwt_result_deinit(&res);
    free(tok);
    free(payload);
    payload = claims(ISS, "\"" AUD "\"", NOW + 600, 0, "\"scp\":[\"a\",7]");
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, payload), MCPGW_JWT_MALFORMED);
    free(payload);
}
END_TEST

START_TEST(test_malformed_tokens_are_refused_with_a_reason)
{
    char *payload = good_claims(), *tok = josekit_sign("ES256", "ec1", payload, ec, NULL, 0);
    char *buf = xmalloc(strlen(tok) + 8);
    const char *bad[] = {"abc", "a.b", "a.b.c.d", "....", "!!!.eyJ9.sig", "e30.e30.", ".."};
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(bad); i++)
        ck_assert_int_eq(verify(bad[i], NULL), MCPGW_JWT_MALFORMED);
    sprintf(buf, "%s.x", tok);
    ck_assert_int_eq(verify(buf, NULL), MCPGW_JWT_MALFORMED);
    sprintf(buf, "%s=", tok); /* padding is not base64url */
    ck_assert_int_eq(verify(buf, NULL), MCPGW_JWT_BAD_SIGNATURE);
    free(buf);
    free(tok);
    free(payload);

    /* Well signed, but missing exp / sub, or an exp that is not a number, or a crit header. */
    payload = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}");
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, payload), MCPGW_JWT_MALFORMED);
    free(payload);
    payload = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000600}");
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, payload), MCPGW_JWT_MALFORMED);
    free(payload);
    payload = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":\"soon\"}");
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, payload), MCPGW_JWT_MALFORMED);
    free(payload);
    /* Dates so large that exp + skew would overflow: refused, not wrapped around. */
    payload = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\","
                      "\"exp\":9223372036854775807}");
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, payload), MCPGW_JWT_MALFORMED);
    free(payload);
    payload = xstrdup("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\","
                      "\"exp\":1800000600,\"nbf\":-9223372036854775807}");
    ck_assert_int_eq(verify_signed("ES256", "ec1", ec, payload), MCPGW_JWT_MALFORMED);
    free(payload);
    tok = josekit_raw("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[\"x\"]}", "{}", "AAAA");
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_MALFORMED);
    free(tok);
    tok = josekit_raw("[\"alg\",\"ES256\"]", "{}", "AAAA");
    ck_assert_int_eq(verify(tok, NULL), MCPGW_JWT_MALFORMED);
    free(tok);
}
END_TEST

START_TEST(test_es256_signature_in_der_form_is_refused)
{
    /* JOSE requires raw r||s; a DER signature (what EVP produces) must not be accepted. */
    char *payload = good_claims(), *tok = josekit_sign("ES256", "ec1", payload, ec, NULL, 0);
    char *dot = strrchr(tok, '.'), sigtext[200], *der_tok;
    uint8_t raw[64], der[80], *p = der;
    ECDSA_SIG *es = ECDSA_SIG_new();
    int n;
    ck_assert_int_eq(mcpgw_b64url_decode(dot + 1, strlen(dot + 1), raw, sizeof(raw)), 64);
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    mcpgw_b64url_encode(der, (size_t)n, sigtext);
    *dot = '\0';
    der_tok = xmalloc(strlen(tok) + strlen(sigtext) + 2);
    sprintf(der_tok, "%s.%s", tok, sigtext);
    ck_assert_int_eq(verify(der_tok, NULL), MCPGW_JWT_BAD_SIGNATURE);
    free(der_tok);
    free(tok);
    free(payload);
}
END_TEST

START_TEST(test_scopes_have_matches_whole_words)
{
    ck_assert(mcpgw_jwt_scopes_have("a b c", "a"));
    ck_assert(mcpgw_jwt_scopes_have("a b c", "b"));
    ck_assert(mcpgw_jwt_scopes_have("a b c", "c"));
    ck_assert(!mcpgw_jwt_scopes_have("ab bc", "b"));
    ck_assert(!mcpgw_jwt_scopes_have("", "a"));
    ck_assert(!mcpgw_jwt_scopes_have("a", ""));
    ck_assert(mcpgw_jwt_scopes_have("xa a", "a"));
}
END_TEST

static Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("verify");
    tcase_add_unchecked_fixture(tc, make_keys, free_keys);
    tcase_add_test(tc, test_rs256_es256_eddsa_tokens_verify_and_name_the_principal);
    tcase_add_test(tc, test_empty_token_is_no_token);
    tcase_add_test(tc, test_expired_token_is_refused_but_skew_is_allowed);
    tcase_add_test(tc, test_token_not_yet_valid_is_refused);
    tcase_add_test(tc, test_wrong_audience_and_token_for_another_resource_are_refused);
    tcase_add_test(tc, test_wrong_issuer_is_refused);
    tcase_add_test(tc, test_alg_none_is_refused);
    tcase_add_test(tc, test_hs256_signed_with_the_public_key_is_refused);
    tcase_add_test(tc, test_tampered_payload_or_signature_is_refused);
    tcase_add_test(tc, test_token_signed_by_another_key_under_a_known_kid_is_refused);
    tcase_add_test(tc, test_unknown_kid_is_refused_and_named);
    tcase_add_test(tc, test_key_of_another_type_than_the_alg_is_refused);
    tcase_add_test(tc, test_disallowed_alg_is_refused_before_any_key);
    tcase_add_test(tc, test_token_without_kid_uses_the_one_key_of_its_alg);
    tcase_add_test(tc, test_scp_array_gives_the_scopes);
    tcase_add_test(tc, test_malformed_tokens_are_refused_with_a_reason);
    tcase_add_test(tc, test_es256_signature_in_der_form_is_refused);
    tcase_add_test(tc, test_scopes_have_matches_whole_words);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jwt_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
