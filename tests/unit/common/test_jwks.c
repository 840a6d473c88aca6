/* test_jwks.c - JWKS parsing with real keys, lookup by kid, the fetch schedule, and the
 * verified-token cache. */
#include "common/jwks.h"

#include "common/b64.h"
#include "common/tokcache.h"
#include "common/util.h"
#include "tests/unit/common/josekit.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *rsa, *ec, *ed;

static void make_keys(void)
{
    rsa = josekit_keygen("RSA", 2048);
    ec = josekit_keygen("EC", 0);
    ed = josekit_keygen("ED25519", 0);
}

static void free_keys(void)
{
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

/* Parse "{"keys":[members]}"; returns the set, *skipped set. */
static struct mcpgw_jwks *parse_keys(const char *members, int *skipped, char *err, size_t errlen)
{
    char *doc = xmalloc(strlen(members) + 16);
    struct mcpgw_jwks *set;
    sprintf(doc, "{\"keys\":[%s]}", members);
    set = mcpgw_jwks_parse(doc, strlen(doc), skipped, err, errlen);
    free(doc);
    return set;
}

START_TEST(test_rsa_ec_and_ed25519_keys_are_parsed_and_found_by_kid)
{
    char *a = josekit_jwk(rsa, "r", NULL), *b = josekit_jwk(ec, "e", NULL),
         *c = josekit_jwk(ed, "d", NULL), members[8192], err[200] = "";
    struct mcpgw_jwks *set;
    EVP_PKEY *k = NULL;
    int skipped = -1;
    snprintf(members, sizeof(members), "%s,%s,%s", a, b, c);
    set = parse_keys(members, &skipped, err, sizeof(err));
    ck_assert_ptr_nonnull(set);
    ck_assert_int_eq(mcpgw_jwks_count(set), 3);
    ck_assert_int_eq(skipped, 0);
    ck_assert_int_eq(mcpgw_jwks_find(set, "r", MCPGW_JWKS_RS256, &k), MCPGW_JWKS_FOUND);
    ck_assert_int_eq(EVP_PKEY_eq(k, rsa), 1);
    ck_assert_int_eq(mcpgw_jwks_find(set, "e", MCPGW_JWKS_ES256, &k), MCPGW_JWKS_FOUND);
    ck_assert_int_eq(EVP_PKEY_eq(k, ec), 1);
    ck_assert_int_eq(mcpgw_jwks_find(set, "d", MCPGW_JWKS_EDDSA, &k), MCPGW_JWKS_FOUND);
    ck_assert_int_eq(EVP_PKEY_eq(k, ed), 1);
    ck_assert_int_eq(mcpgw_jwks_find(set, "x", MCPGW_JWKS_EDDSA, &k), MCPGW_JWKS_NO_KID);
    ck_assert_int_eq(mcpgw_jwks_find(set, "r", MCPGW_JWKS_ES256, &k), MCPGW_JWKS_MISMATCH);
    ck_assert_int_eq(mcpgw_jwks_find(set, NULL, MCPGW_JWKS_ES256, &k), MCPGW_JWKS_FOUND);
    mcpgw_jwks_free(set);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(test_keys_not_for_signing_or_of_other_types_are_skipped)
{
    char *enc = josekit_jwk(rsa, "enc", "\"use\":\"enc\""),
         *ps = josekit_jwk(rsa, "ps", "\"alg\":\"PS256\""),
         *ok = josekit_jwk(ec, "ok", "\"use\":\"sig\",\"alg\":\"ES256\""), members[8192];
    struct mcpgw_jwks *set;
    EVP_PKEY *k;
    int skipped = 0;
    /* A symmetric key in a JWKS must never become a verification key. */
    snprintf(members, sizeof(members),
             "%s,%s,{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"},%s",
             enc, ps, ok);
    set = parse_keys(members, &skipped, NULL, 0);
    ck_assert_int_eq(mcpgw_jwks_count(set), 1);
    ck_assert_int_eq(skipped, 4);
    ck_assert_int_eq(mcpgw_jwks_find(set, "h", MCPGW_JWKS_RS256, &k), MCPGW_JWKS_NO_KID);
    ck_assert_int_eq(mcpgw_jwks_find(set, "ok", MCPGW_JWKS_ES256, &k), MCPGW_JWKS_FOUND);
    mcpgw_jwks_free(set);
    free(enc);
    free(ps);
    free(ok);
}
END_TEST

START_TEST(test_weak_or_invalid_keys_are_skipped_with_a_reason)
{
    EVP_PKEY *small = josekit_keygen("RSA", 1024);
    char *jwk = josekit_jwk(small, "small", NULL), err[200] = "";
    struct mcpgw_jwks *set;
    int skipped = 0;
    set = parse_keys(jwk, &skipped, err, sizeof(err));
    ck_assert_int_eq(mcpgw_jwks_count(set), 0);
    ck_assert_int_eq(skipped, 1);
    ck_assert_ptr_nonnull(strstr(err, "2048"));
    mcpgw_jwks_free(set);

    /* The point (1, 1) is not on P-256. */
    set = parse_keys("{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"off\","
                     "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\","
                     "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}",
                     &skipped, err, sizeof(err));
    ck_assert_int_eq(mcpgw_jwks_count(set), 0);
    ck_assert_ptr_nonnull(strstr(err, "not on P-256"));
    mcpgw_jwks_free(set);

    set =
        parse_keys("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"},"
                   "{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"e\":\"AQAB\"},"
                   "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":7,\"x\":\"AAAA\"},17,{}",
                   &skipped, err, sizeof(err));
    ck_assert_int_eq(mcpgw_jwks_count(set), 0);
    ck_assert_int_eq(skipped, 6);
    mcpgw_jwks_free(set);
    EVP_PKEY_free(small);
    free(jwk);
}
END_TEST

START_TEST(test_documents_that_are_not_jwks_are_refused)
{
    const char *bad[] = {"", "{", "[]", "{\"keys\":{}}", "{\"key\":[]}", "{\"keys\":[]} x", "null"};
    char err[200];
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        ck_assert_ptr_null(mcpgw_jwks_parse(bad[i], strlen(bad[i]), NULL, err, sizeof(err)));
        ck_assert_str_ne(err, "");
    }
    struct mcpgw_jwks *empty = mcpgw_jwks_parse("{\"keys\":[]}", 11, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(empty);
    ck_assert_int_eq(mcpgw_jwks_count(empty), 0);
    mcpgw_jwks_free(empty);
}
END_TEST

START_TEST(test_a_token_without_kid_is_ambiguous_when_two_keys_fit)
{
    EVP_PKEY *ec2 = josekit_keygen("EC", 0), *k;
    char *a = josekit_jwk(ec, NULL, NULL), *b = josekit_jwk(ec2, NULL, NULL), members[4096];
    struct mcpgw_jwks *set;
    snprintf(members, sizeof(members), "%s,%s", a, b);
    set = parse_keys(members, NULL, NULL, 0);
    ck_assert_int_eq(mcpgw_jwks_count(set), 2);
    ck_assert_int_eq(mcpgw_jwks_find(set, NULL, MCPGW_JWKS_ES256, &k), MCPGW_JWKS_AMBIGUOUS);
    ck_assert_int_eq(mcpgw_jwks_find(set, NULL, MCPGW_JWKS_RS256, &k), MCPGW_JWKS_NO_KID);
    mcpgw_jwks_free(set);
    EVP_PKEY_free(ec2);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_alg_names_parse_and_print)
{
    ck_assert_int_eq(mcpgw_jwks_alg_parse("RS256"), MCPGW_JWKS_RS256);
    ck_assert_int_eq(mcpgw_jwks_alg_parse("ES256"), MCPGW_JWKS_ES256);
    ck_assert_int_eq(mcpgw_jwks_alg_parse("EdDSA"), MCPGW_JWKS_EDDSA);
    ck_assert_int_eq(mcpgw_jwks_alg_parse("none"), -1);
    ck_assert_int_eq(mcpgw_jwks_alg_parse("HS256"), -1);
    ck_assert_int_eq(mcpgw_jwks_alg_parse("rs256"), -1);
    ck_assert_str_eq(mcpgw_jwks_alg_str(MCPGW_JWKS_EDDSA), "EdDSA");
}
END_TEST

START_TEST(test_schedule_fetches_at_start_then_refreshes_periodically)
{
    struct mcpgw_jwks_sched s;
    uint64_t wait = 0;
    mcpgw_jwks_sched_init(&s, 300000, 1000, 10000);
    ck_assert_int_eq(mcpgw_jwks_sched_due(&s, 5000, NULL), 1);
    mcpgw_jwks_sched_started(&s, 5000);
    ck_assert_int_eq(mcpgw_jwks_sched_due(&s, 5001, &wait), 0);
    ck_assert_uint_eq(wait, UINT64_MAX);
    mcpgw_jwks_sched_done(&s, 5100, 1);
    ck_assert_int_eq(s.have_set, 1);
    ck_assert_int_eq(mcpgw_jwks_sched_due(&s, 6100, &wait), 0);
    ck_assert_uint_eq(wait, 299000);
    ck_assert_int_eq(mcpgw_jwks_sched_due(&s, 305100, NULL), 1);
}
END_TEST

START_TEST(test_schedule_keeps_the_old_set_and_backs_off_on_failure)
{
    struct mcpgw_jwks_sched s;
    uint64_t now = 1000, wait = 0;
    mcpgw_jwks_sched_init(&s, 8000, 1000, 10000);
    mcpgw_jwks_sched_started(&s, now);
    mcpgw_jwks_sched_done(&s, now, 1);
    now += 8000;
    ck_assert_int_eq(mcpgw_jwks_sched_due(&s, now, NULL), 1);
    /* Failures: retry after 1 s, 2 s, 4 s, then capped at the refresh period; have_set stays. */
    for (uint64_t want = 1000; want <= 8000; want *= 2) {
        mcpgw_jwks_sched_started(&s, now);
        mcpgw_jwks_sched_done(&s, now, 0);
        ck_assert_int_eq(s.have_set, 1);
        ck_assert_int_eq(mcpgw_jwks_sched_due(&s, now, &wait), 0);
        ck_assert_uint_eq(wait, want);
        now += want;
        ck_assert_int_eq(mcpgw_jwks_sched_due(&s, now, NULL), 1);
    }
    mcpgw_jwks_sched_started(&s, now);
    mcpgw_jwks_sched_done(&s, now, 0);
    ck_assert_int_eq(mcpgw_jwks_sched_due(&s, now, &wait), 0);
    ck_assert_uint_eq(wait, 8000);
    /* A success resets the back-off. */
    mcpgw_jwks_sched_started(&s, now + 8000);
    mcpgw_jwks_sched_done(&s, now + 8000, 1);
    ck_assert_int_eq(s.failures, 0);
    ck_assert_uint_eq(s.backoff_ms, 1000);
}
END_TEST

START_TEST(test_schedule_allows_one_unknown_kid_fetch_per_interval)
{
    struct mcpgw_jwks_sched s;
    mcpgw_jwks_sched_init(&s, 300000, 1000, 10000);
    mcpgw_jwks_sched_started(&s, 1000);
    ck_assert_int_eq(mcpgw_jwks_sched_unknown_kid(&s, 1500), -1); /* in flight: wait for it */
    mcpgw_jwks_sched_done(&s, 2000, 1);
    ck_assert_int_eq(mcpgw_jwks_sched_unknown_kid(&s, 5000), 0); /* too soon: refuse */
    ck_assert_int_eq(mcpgw_jwks_sched_unknown_kid(&s, 11000), 1);
    mcpgw_jwks_sched_started(&s, 11000);
    mcpgw_jwks_sched_done(&s, 11100, 1);
    for (uint64_t t = 11100; t < 21000; t += 500)
        ck_assert_int_eq(mcpgw_jwks_sched_unknown_kid(&s, t), 0);
    ck_assert_int_eq(mcpgw_jwks_sched_unknown_kid(&s, 21000), 1);
}
END_TEST

START_TEST(test_cache_returns_what_was_put_until_exp_or_max_age)
{
    struct mcpgw_tokcache *c = mcpgw_tokcache_new(64, 300);
    struct mcpgw_tokcache_entry e;
    ck_assert_int_eq(mcpgw_tokcache_get(c, "tok", 3, 1000, &e), 0);
    mcpgw_tokcache_put(c, "tok", 3, 1000, "iss alice", "a b", 1100);
    ck_assert_int_eq(mcpgw_tokcache_get(c, "tok", 3, 1099, &e), 1);
    ck_assert_str_eq(e.principal, "iss alice");
    ck_assert_str_eq(e.scopes, "a b");
    ck_assert_int_eq(e.exp, 1100);
    ck_assert_int_eq(mcpgw_tokcache_get(c, "tok", 3, 1100, &e), 0); /* exp reached */
    ck_assert_int_eq(mcpgw_tokcache_get(c, "toK", 3, 1050, &e), 0);
    mcpgw_tokcache_put(c, "long", 4, 1000, "iss bob", "", 99999);
    ck_assert_int_eq(mcpgw_tokcache_get(c, "long", 4, 1299, &e), 1);
    ck_assert_int_eq(mcpgw_tokcache_get(c, "long", 4, 1300, &e), 0); /* max age reached */
    mcpgw_tokcache_put(c, "gone", 4, 1000, "x", "", 900);            /* already expired: not kept */
    ck_assert_int_eq(mcpgw_tokcache_get(c, "gone", 4, 1000, &e), 0);
    ck_assert_uint_eq(mcpgw_tokcache_hits(c), 2);
    mcpgw_tokcache_free(c);
}
END_TEST

START_TEST(test_cache_stays_bounded_and_clears)
{
    struct mcpgw_tokcache *c = mcpgw_tokcache_new(100, 300);
    struct mcpgw_tokcache_entry e;
    char tok[32];
    int present = 0;
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(tok, sizeof(tok), "token-%d", i);
        mcpgw_tokcache_put(c, tok, (size_t)n, 1000, "p", "", 2000 + i);
    }
    ck_assert_uint_le(mcpgw_tokcache_size(c), 128);
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(tok, sizeof(tok), "token-%d", i);
        present += mcpgw_tokcache_get(c, tok, (size_t)n, 1001, &e);
    }
    ck_assert_int_eq(present, (int)mcpgw_tokcache_size(c));
    ck_assert_int_gt(present, 64);
    /* Putting the same token again replaces its entry instead of taking a second slot. */
    mcpgw_tokcache_put(c, "token-9999", 10, 1000, "q", "", 5000);
    mcpgw_tokcache_put(c, "token-9999", 10, 1000, "r", "", 5000);
    ck_assert_int_eq(mcpgw_tokcache_get(c, "token-9999", 10, 1001, &e), 1);
    ck_assert_str_eq(e.principal, "r");
    ck_assert_uint_le(mcpgw_tokcache_size(c), 128);
    mcpgw_tokcache_clear(c);
    ck_assert_uint_eq(mcpgw_tokcache_size(c), 0);
    ck_assert_int_eq(mcpgw_tokcache_get(c, "token-9999", 10, 1001, &e), 0);
    mcpgw_tokcache_free(c);
}
END_TEST

static Suite *jwks_suite(void)
{
    Suite *s = suite_create("jwks");
    TCase *tc = tcase_create("parse");
    TCase *sc = tcase_create("schedule");
    TCase *cc = tcase_create("cache");
    tcase_add_unchecked_fixture(tc, make_keys, free_keys);
    tcase_add_test(tc, test_rsa_ec_and_ed25519_keys_are_parsed_and_found_by_kid);
    tcase_add_test(tc, test_keys_not_for_signing_or_of_other_types_are_skipped);
    tcase_add_test(tc, test_weak_or_invalid_keys_are_skipped_with_a_reason);
    tcase_add_test(tc, test_documents_that_are_not_jwks_are_refused);
    tcase_add_test(tc, test_a_token_without_kid_is_ambiguous_when_two_keys_fit);
    tcase_add_test(tc, test_alg_names_parse_and_print);
    tcase_add_test(sc, test_schedule_fetches_at_start_then_refreshes_periodically);
    tcase_add_test(sc, test_schedule_keeps_the_old_set_and_backs_off_on_failure);
    tcase_add_test(sc, test_schedule_allows_one_unknown_kid_fetch_per_interval);
    tcase_add_test(cc, test_cache_returns_what_was_put_until_exp_or_max_age);
    tcase_add_test(cc, test_cache_stays_bounded_and_clears);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, sc);
    suite_add_tcase(s, cc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jwks_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
