/* test_ids.c - random identifier format, uniqueness, buffer limits and base64url vectors. */
#include "common/ids.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int all_base64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(alphabet, s[i]))
            return 0;
    return 1;
}

START_TEST(test_ids_have_prefix_dot_and_22_random_chars)
{
    char id[64];
    ck_assert_int_eq(mcpgw_id_new("sess", id, sizeof(id)), 0);
    ck_assert_uint_eq(strlen(id), 4 + 1 + MCPGW_ID_RAND_CHARS);
    ck_assert_mem_eq(id, "sess.", 5);
    ck_assert(all_base64url(id + 5, MCPGW_ID_RAND_CHARS));
}
END_TEST

START_TEST(test_ids_without_prefix_are_just_the_random_part)
{
    char a[64], b[64];
    ck_assert_int_eq(mcpgw_id_new(NULL, a, sizeof(a)), 0);
    ck_assert_int_eq(mcpgw_id_new("", b, sizeof(b)), 0);
    ck_assert_uint_eq(strlen(a), MCPGW_ID_RAND_CHARS);
    ck_assert_uint_eq(strlen(b), MCPGW_ID_RAND_CHARS);
    ck_assert(all_base64url(a, MCPGW_ID_RAND_CHARS));
    ck_assert(all_base64url(b, MCPGW_ID_RAND_CHARS));
}
END_TEST

START_TEST(test_ids_use_only_the_base64url_alphabet)
{
    /* Over many ids every character is from the url alphabet (never '+', '/' or '='), and the
     * last of the 22 characters carries only 2 bits of the 128, so it is one of A, Q, g, w. */
    char id[64];
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(mcpgw_id_new("n1", id, sizeof(id)), 0);
        ck_assert(all_base64url(id + 3, MCPGW_ID_RAND_CHARS));
        ck_assert_ptr_nonnull(strchr("AQgw", id[3 + MCPGW_ID_RAND_CHARS - 1]));
    }
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

START_TEST(test_ids_10000_are_unique)
{
    enum { N = 10000, W = MCPGW_ID_RAND_CHARS + 1 };
    char(*ids)[W] = calloc(N, W);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(mcpgw_id_new(NULL, ids[i], W), 0);
    qsort(ids, N, W, cmp_str);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
    free(ids);
}
END_TEST

START_TEST(test_ids_refuse_a_buffer_too_small)
{
    /* "ab." + 22 + NUL = 26 bytes; heap buffers of exact size let ASan catch an overrun */
    char *exact = malloc(26), *short_by_one = malloc(25), *tiny = malloc(22);
    ck_assert_int_eq(mcpgw_id_new("ab", exact, 26), 0);
    ck_assert_uint_eq(strlen(exact), 25);
    ck_assert_int_eq(mcpgw_id_new("ab", short_by_one, 25), -1);
    ck_assert_int_eq(mcpgw_id_new(NULL, tiny, 22), -1);
    ck_assert_int_eq(mcpgw_id_new(NULL, exact, 23), 0);
    ck_assert_uint_eq(strlen(exact), 22);
    ck_assert_int_eq(mcpgw_id_new("ab", exact, 0), -1);
    free(exact);
    free(short_by_one);
    free(tiny);
}
END_TEST

static void expect_b64(const void *in, size_t n, const char *want)
{
    char out[64];
    memset(out, '#', sizeof(out));
    ck_assert_uint_eq(mcpgw_base64url(in, n, out), strlen(want));
    ck_assert_str_eq(out, want);
}

START_TEST(test_base64url_matches_rfc4648_vectors_without_padding)
{
    expect_b64("", 0, "");
    expect_b64("f", 1, "Zg");
    expect_b64("fo", 2, "Zm8");
    expect_b64("foo", 3, "Zm9v");
    expect_b64("foob", 4, "Zm9vYg");
    expect_b64("fooba", 5, "Zm9vYmE");
    expect_b64("foobar", 6, "Zm9vYmFy");
}
END_TEST

START_TEST(test_base64url_uses_dash_and_underscore_for_62_and_63)
{
    static const unsigned char a[] = {0xfb, 0xff}, b[] = {0xff, 0xff, 0xff},
                               c[] = {0xfb, 0xef, 0xbe}, d[] = {0x00};
    expect_b64(a, sizeof(a), "-_8"); /* standard base64: "+/8=" */
    expect_b64(b, sizeof(b), "____");
    expect_b64(c, sizeof(c), "----");
    expect_b64(d, sizeof(d), "AA");
}
END_TEST

static Suite *ids_suite(void)
{
    Suite *s = suite_create("ids");
    TCase *tc = tcase_create("ids");
    tcase_add_test(tc, test_ids_have_prefix_dot_and_22_random_chars);
    tcase_add_test(tc, test_ids_without_prefix_are_just_the_random_part);
    tcase_add_test(tc, test_ids_use_only_the_base64url_alphabet);
    tcase_add_test(tc, test_ids_10000_are_unique);
    tcase_add_test(tc, test_ids_refuse_a_buffer_too_small);
    tcase_add_test(tc, test_base64url_matches_rfc4648_vectors_without_padding);
    tcase_add_test(tc, test_base64url_uses_dash_and_underscore_for_62_and_63);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ids_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
