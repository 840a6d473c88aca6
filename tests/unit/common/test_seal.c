/* test_seal.c - sealed request state: round trip, every refusal (tampered, wrong key, expired,
 * other principal, other request), key rotation, and the key ring file format. */
#include "common/seal.h"

#include "common/b64.h"
#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K1  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define K2  "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define K3  "Zm9yIHRlc3RzIG9ubHk6IGEgMzItYnl0ZSBrZXkgISE=" /* base64 of 32 bytes */
#define NOW 1800000000000ULL

static const char state[] = "{\"round\":2,\"elicited\":{\"answer\":\"yes\"}}";

static struct mcpgw_seal_ring *ring(const char *text)
{
    char err[200] = "";
    struct mcpgw_seal_ring *r = mcpgw_seal_ring_parse(text, strlen(text), "test", err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

static void bind_call(struct mcpgw_seal_binding *b, const char *tool, const char *args,
                      const char *principal)
{
    mcpgw_seal_bind(b, "tools/call", tool, args, strlen(args), principal);
}

/* Open text with ring r and binding b at now; returns the code, frees the output. */
static int open_rc(const struct mcpgw_seal_ring *r, const struct mcpgw_seal_binding *b,
                   uint64_t now, const char *text)
{
    void *out;
    size_t n;
    int rc = mcpgw_seal_open(r, b, now, text, strlen(text), &out, &n);
    if (rc != MCPGW_SEAL_OK)
        ck_assert_ptr_null(out);
    free(out);
    return rc;
}

START_TEST(test_sealed_state_opens_for_the_same_request_and_principal)
{
    struct mcpgw_seal_ring *r = ring(K1 "\n");
    struct mcpgw_seal_binding b, again;
    char *text;
    void *out;
    size_t n;
    bind_call(&b, "deploy", "{\"env\":\"prod\"}", "https://as.example alice");
    text = mcpgw_seal_seal(r, &b, NOW + 60000, state, sizeof(state) - 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), MCPGW_B64URL_LEN(MCPGW_SEAL_OVERHEAD + sizeof(state) - 1));
    ck_assert_ptr_null(strstr(text, "round")); /* not readable by the client */
    bind_call(&again, "deploy", "{\"env\":\"prod\"}", "https://as.example alice");
    ck_assert_int_eq(mcpgw_seal_open(r, &again, NOW, text, strlen(text), &out, &n), MCPGW_SEAL_OK);
    ck_assert_uint_eq(n, sizeof(state) - 1);
    ck_assert_str_eq(out, state);
    free(out);
    free(text);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_two_seals_of_the_same_state_differ)
{
    struct mcpgw_seal_ring *r = ring(K1);
    struct mcpgw_seal_binding b;
    char *a, *c;
    bind_call(&b, "t", "{}", "p");
    a = mcpgw_seal_seal(r, &b, NOW + 1000, state, sizeof(state) - 1);
    c = mcpgw_seal_seal(r, &b, NOW + 1000, state, sizeof(state) - 1);
    ck_assert_str_ne(a, c); /* fresh nonce each time */
    free(a);
    free(c);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_tampered_state_is_refused)
{
    struct mcpgw_seal_ring *r = ring(K1);
    struct mcpgw_seal_binding b;
    char *text;
    size_t n;
    bind_call(&b, "deploy", "{}", "alice");
    text = mcpgw_seal_seal(r, &b, NOW + 60000, state, sizeof(state) - 1);
    n = strlen(text);
    /* Every character of the ciphertext and tag, changed in turn (the last one carries only 2
     * meaningful bits, so change it to another valid ending). */
    for (size_t i = 8; i + 1 < n; i++) {
        char was = text[i];
        text[i] = was == 'A' ? 'B' : 'A';
        ck_assert_int_eq(open_rc(r, &b, NOW, text), MCPGW_SEAL_FORGED);
        text[i] = was;
    }
    ck_assert_int_eq(open_rc(r, &b, NOW, text), MCPGW_SEAL_OK);
    text[n - 3] = '\0'; /* truncated */
    ck_assert_int_ne(open_rc(r, &b, NOW, text), MCPGW_SEAL_OK);
    ck_assert_int_eq(open_rc(r, &b, NOW, "not base64!"), MCPGW_SEAL_MALFORMED);
    ck_assert_int_eq(open_rc(r, &b, NOW, ""), MCPGW_SEAL_MALFORMED);
    ck_assert_int_eq(open_rc(r, &b, NOW, "AAAA"), MCPGW_SEAL_MALFORMED);
    free(text);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_state_sealed_by_another_cluster_is_refused)
{
    struct mcpgw_seal_ring *ours = ring(K1), *theirs = ring(K2);
    struct mcpgw_seal_binding b;
    char *text;
    bind_call(&b, "deploy", "{}", "alice");
    text = mcpgw_seal_seal(theirs, &b, NOW + 60000, state, sizeof(state) - 1);
    ck_assert_int_eq(open_rc(ours, &b, NOW, text), MCPGW_SEAL_NO_KEY);
    ck_assert_str_eq(mcpgw_seal_err_str(MCPGW_SEAL_NO_KEY), "no_key");
    free(text);
    mcpgw_seal_ring_free(ours);
    mcpgw_seal_ring_free(theirs);
}
END_TEST

START_TEST(test_forged_header_claiming_our_key_id_is_refused)
{
    /* Same key id as ours, a different key behind it: the tag fails. */
    struct mcpgw_seal_ring *ours = ring(K1), *theirs = ring(K2);
    struct mcpgw_seal_binding b;
    uint8_t raw[256];
    char *text, *forged;
    long n;
    uint32_t id = mcpgw_seal_ring_key_id(ours, 0);
    bind_call(&b, "deploy", "{}", "alice");
    text = mcpgw_seal_seal(theirs, &b, NOW + 60000, state, sizeof(state) - 1);
    n = mcpgw_b64url_decode(text, strlen(text), raw, sizeof(raw));
    ck_assert_int_gt(n, MCPGW_SEAL_OVERHEAD);
    raw[1] = (uint8_t)(id >> 24), raw[2] = (uint8_t)(id >> 16), raw[3] = (uint8_t)(id >> 8),
    raw[4] = (uint8_t)id;
    forged = xmalloc(MCPGW_B64URL_LEN((size_t)n) + 1);
    mcpgw_b64url_encode(raw, (size_t)n, forged);
    ck_assert_int_eq(open_rc(ours, &b, NOW, forged), MCPGW_SEAL_FORGED);
    raw[0] = 2; /* an unknown version */
    mcpgw_b64url_encode(raw, (size_t)n, forged);
    ck_assert_int_eq(open_rc(ours, &b, NOW, forged), MCPGW_SEAL_MALFORMED);
    free(forged);
    free(text);
    mcpgw_seal_ring_free(ours);
    mcpgw_seal_ring_free(theirs);
}
END_TEST

START_TEST(test_expired_state_is_refused)
{
    struct mcpgw_seal_ring *r = ring(K1);
    struct mcpgw_seal_binding b;
    char *text;
    bind_call(&b, "deploy", "{}", "alice");
    text = mcpgw_seal_seal(r, &b, NOW + 60000, state, sizeof(state) - 1);
    ck_assert_int_eq(open_rc(r, &b, NOW + 59999, text), MCPGW_SEAL_OK);
    ck_assert_int_eq(open_rc(r, &b, NOW + 60000, text), MCPGW_SEAL_EXPIRED);
    ck_assert_int_eq(open_rc(r, &b, NOW + 3600000, text), MCPGW_SEAL_EXPIRED);
    free(text);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_state_presented_by_another_principal_is_refused)
{
    struct mcpgw_seal_ring *r = ring(K1);
    struct mcpgw_seal_binding b, mallory, anon;
    char *text;
    bind_call(&b, "deploy", "{}", "https://as.example alice");
    bind_call(&mallory, "deploy", "{}", "https://as.example mallory");
    bind_call(&anon, "deploy", "{}", NULL);
    text = mcpgw_seal_seal(r, &b, NOW + 60000, state, sizeof(state) - 1);
    ck_assert_int_eq(open_rc(r, &mallory, NOW, text), MCPGW_SEAL_FORGED);
    ck_assert_int_eq(open_rc(r, &anon, NOW, text), MCPGW_SEAL_FORGED);
    free(text);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_state_presented_with_another_request_is_refused)
{
    struct mcpgw_seal_ring *r = ring(K1);
    struct mcpgw_seal_binding b, other_tool, other_args, other_method, shifted;
    char *text;
    bind_call(&b, "deploy", "{\"env\":\"prod\"}", "alice");
    bind_call(&other_tool, "destroy", "{\"env\":\"prod\"}", "alice");
    bind_call(&other_args, "deploy", "{\"env\":\"dev\"}", "alice");
    mcpgw_seal_bind(&other_method, "prompts/get", "deploy", "{\"env\":\"prod\"}", 14, "alice");
    /* Field boundaries count: ("deplo", "yalice") is not ("deploy", "alice"). */
    bind_call(&shifted, "deplo", "{\"env\":\"prod\"}", "yalice");
    text = mcpgw_seal_seal(r, &b, NOW + 60000, state, sizeof(state) - 1);
    ck_assert_int_eq(open_rc(r, &other_tool, NOW, text), MCPGW_SEAL_FORGED);
    ck_assert_int_eq(open_rc(r, &other_args, NOW, text), MCPGW_SEAL_FORGED);
    ck_assert_int_eq(open_rc(r, &other_method, NOW, text), MCPGW_SEAL_FORGED);
    ck_assert_int_eq(open_rc(r, &shifted, NOW, text), MCPGW_SEAL_FORGED);
    ck_assert_int_eq(open_rc(r, &b, NOW, text), MCPGW_SEAL_OK);
    free(text);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_rotation_seals_with_the_primary_and_opens_with_any_key)
{
    struct mcpgw_seal_ring *old = ring(K1), *both = ring(K2 "\n" K1 "\n"), *next = ring(K2);
    struct mcpgw_seal_binding b;
    char *by_old, *by_both;
    bind_call(&b, "deploy", "{}", "alice");
    by_old = mcpgw_seal_seal(old, &b, NOW + 60000, state, sizeof(state) - 1);
    by_both = mcpgw_seal_seal(both, &b, NOW + 60000, state, sizeof(state) - 1);
    /* Step 1 of a rotation: the new key is primary, the old one still opens. */
    ck_assert_int_eq(open_rc(both, &b, NOW, by_old), MCPGW_SEAL_OK);
    ck_assert_int_eq(open_rc(both, &b, NOW, by_both), MCPGW_SEAL_OK);
    ck_assert_int_eq(open_rc(next, &b, NOW, by_both), MCPGW_SEAL_OK);
    /* Step 2: the old key is gone; what it sealed no longer opens. */
    ck_assert_int_eq(open_rc(next, &b, NOW, by_old), MCPGW_SEAL_NO_KEY);
    ck_assert_int_eq(open_rc(old, &b, NOW, by_both), MCPGW_SEAL_NO_KEY);
    ck_assert_uint_eq(mcpgw_seal_ring_key_id(both, 0), mcpgw_seal_ring_key_id(next, 0));
    ck_assert_uint_eq(mcpgw_seal_ring_key_id(both, 1), mcpgw_seal_ring_key_id(old, 0));
    free(by_old);
    free(by_both);
    mcpgw_seal_ring_free(old);
    mcpgw_seal_ring_free(both);
    mcpgw_seal_ring_free(next);
}
END_TEST

START_TEST(test_ring_file_format_hex_base64_comments_and_errors)
{
    char err[200], path[] = "/tmp/mcpgw-seal-ring.XXXXXX";
    struct mcpgw_seal_ring *r;
    int fd;
    const char *bad[] = {"0123", (K1 "00"),
                         "zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                         "Zm9vYmFy", (K3 "=")};
    r = ring("# cluster keys\n\n  " K1 "  \n" K3 "\n# old:\n" K2 "\r\n");
    ck_assert_int_eq(mcpgw_seal_ring_count(r), 3);
    mcpgw_seal_ring_free(r);
    r = ring("");
    ck_assert_int_eq(mcpgw_seal_ring_count(r), 0);
    ck_assert_ptr_null(mcpgw_seal_seal(r, &(struct mcpgw_seal_binding){{0}}, NOW, "x", 1));
    mcpgw_seal_ring_free(r);
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(bad); i++) {
        char text[200];
        snprintf(text, sizeof(text), K1 "\n%s\n", bad[i]);
        err[0] = '\0';
        ck_assert_ptr_null(mcpgw_seal_ring_parse(text, strlen(text), "ring.txt", err, sizeof(err)));
        ck_assert_msg(strstr(err, "ring.txt line 2") != NULL, "%s", err);
    }
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, K2 "\n", 65), 65);
    close(fd);
    r = mcpgw_seal_ring_load(path, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(mcpgw_seal_ring_count(r), 1);
    mcpgw_seal_ring_free(r);
    unlink(path);
    ck_assert_ptr_null(mcpgw_seal_ring_load(path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

START_TEST(test_empty_and_largest_blobs_round_trip_and_larger_is_refused)
{
    struct mcpgw_seal_ring *r = ring(K1);
    struct mcpgw_seal_binding b;
    char *big = xcalloc(1, MCPGW_SEAL_MAX_DATA + 1), *text;
    void *out;
    size_t n;
    memset(big, 'x', MCPGW_SEAL_MAX_DATA);
    bind_call(&b, "t", "", "");
    text = mcpgw_seal_seal(r, &b, NOW + 1, "", 0);
    ck_assert_int_eq(mcpgw_seal_open(r, &b, NOW, text, strlen(text), &out, &n), MCPGW_SEAL_OK);
    ck_assert_uint_eq(n, 0);
    free(out);
    free(text);
    text = mcpgw_seal_seal(r, &b, NOW + 1, big, MCPGW_SEAL_MAX_DATA);
    ck_assert_int_eq(mcpgw_seal_open(r, &b, NOW, text, strlen(text), &out, &n), MCPGW_SEAL_OK);
    ck_assert_uint_eq(n, MCPGW_SEAL_MAX_DATA);
    ck_assert_int_eq(memcmp(out, big, n), 0);
    free(out);
    free(text);
    ck_assert_ptr_null(mcpgw_seal_seal(r, &b, NOW + 1, big, MCPGW_SEAL_MAX_DATA + 1));
    free(big);
    mcpgw_seal_ring_free(r);
}
END_TEST

static Suite *seal_suite(void)
{
    Suite *s = suite_create("seal");
    TCase *tc = tcase_create("seal");
    tcase_add_test(tc, test_sealed_state_opens_for_the_same_request_and_principal);
    tcase_add_test(tc, test_two_seals_of_the_same_state_differ);
    tcase_add_test(tc, test_tampered_state_is_refused);
    tcase_add_test(tc, test_state_sealed_by_another_cluster_is_refused);
    tcase_add_test(tc, test_forged_header_claiming_our_key_id_is_refused);
    tcase_add_test(tc, test_expired_state_is_refused);
    tcase_add_test(tc, test_state_presented_by_another_principal_is_refused);
    tcase_add_test(tc, test_state_presented_with_another_request_is_refused);
    tcase_add_test(tc, test_rotation_seals_with_the_primary_and_opens_with_any_key);
    tcase_add_test(tc, test_ring_file_format_hex_base64_comments_and_errors);
    tcase_add_test(tc, test_empty_and_largest_blobs_round_trip_and_larger_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(seal_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
