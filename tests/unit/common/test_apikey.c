/* test_apikey.c - the hashed API key table: file and environment formats, lookup, refusals. */
#include "common/apikey.h"

#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_A "mcpgw_k1_QmFzZTY0dXJsIHJhbmRvbSBieXRlcyBmb3IgYQ"
#define KEY_B "mcpgw_k1_c2Vjb25kIGtleSBmb3IgdGhlIGJhdGNoIGpvYg"

/* A table line for principal with the hash of key, computed by `sha256sum` (an independent
 * implementation), and scopes. */
static char *line_for(const char *principal, const char *key, const char *scopes)
{
    char cmd[256], hex[80] = "", *line = xmalloc(512);
    FILE *p;
    snprintf(cmd, sizeof(cmd), "printf %%s '%s' | sha256sum", key);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", hex), 1);
    pclose(p);
    snprintf(line, 512, "%s %s %s", principal, hex, scopes);
    return line;
}

static int lookup(const struct mcpgw_apikey_set *s, const char *key, const char **principal,
                  const char **scopes)
{
    return mcpgw_apikey_lookup(s, key, strlen(key), principal, scopes);
}

START_TEST(test_keys_match_their_principal_and_scopes)
{
    char *a = line_for("ci-bot", KEY_A, "tools:call  tools:read"),
         *b = line_for("batch", KEY_B, "");
    char text[1200], err[200] = "", hex[65];
    const char *p = NULL, *sc = NULL;
    struct mcpgw_apikey_set *s;
    snprintf(text, sizeof(text), "# machine clients\n%s\n\n   %s   \n", a, b);
    s = mcpgw_apikey_parse(text, strlen(text), "keys.txt", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_apikey_count(s), 2);
    ck_assert_int_eq(lookup(s, KEY_A, &p, &sc), 0);
    ck_assert_str_eq(p, "ci-bot");
    ck_assert_str_eq(sc, "tools:call tools:read");
    ck_assert_int_eq(lookup(s, KEY_B, &p, &sc), 0);
    ck_assert_str_eq(p, "batch");
    ck_assert_str_eq(sc, "");
    mcpgw_apikey_hash_hex(KEY_A, strlen(KEY_A), hex);
    ck_assert_ptr_nonnull(strstr(a, hex));
    mcpgw_apikey_set_free(s);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_wrong_short_or_altered_keys_do_not_match)
{
    char *a = line_for("ci-bot", KEY_A, "x");
    struct mcpgw_apikey_set *s = mcpgw_apikey_parse(a, strlen(a), "t", NULL, 0);
    char altered[] = KEY_A;
    const char *p = NULL, *sc = NULL;
    altered[20] ^= 1;
    ck_assert_int_eq(lookup(s, altered, &p, &sc), -1);
    ck_assert_int_eq(lookup(s, KEY_B, &p, &sc), -1);
    ck_assert_int_eq(lookup(s, "", &p, &sc), -1);
    ck_assert_int_eq(mcpgw_apikey_lookup(s, KEY_A, strlen(KEY_A) - 1, &p, &sc), -1);
    ck_assert_ptr_null(p);
    mcpgw_apikey_set_free(s);
    free(a);

    /* A short key never matches, even when its hash is in the table. */
    a = line_for("weak", "password", "");
    s = mcpgw_apikey_parse(a, strlen(a), "t", NULL, 0);
    ck_assert_int_eq(mcpgw_apikey_count(s), 1);
    ck_assert_int_eq(lookup(s, "password", &p, &sc), -1);
    mcpgw_apikey_set_free(s);
    free(a);
}
END_TEST

START_TEST(test_bad_lines_are_refused_with_the_line_number)
{
    const char *bad[] = {"onlyprincipal", "p 1234",
                         "p zz3456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                         ("p " KEY_A)};
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(bad); i++) {
        char text[300], err[200] = "";
        snprintf(text, sizeof(text), "# header\n%s\n", bad[i]);
        ck_assert_ptr_null(mcpgw_apikey_parse(text, strlen(text), "keys.txt", err, sizeof(err)));
        ck_assert_msg(strstr(err, "keys.txt line 2") != NULL, "%s", err);
    }
}
END_TEST

START_TEST(test_keys_from_the_environment_and_a_file)
{
    char *a = line_for("ci-bot", KEY_A, "s1"), *b = line_for("batch", KEY_B, "s2");
    char env[1200], err[200] = "", path[] = "/tmp/mcpgw-apikeys.XXXXXX";
    const char *p, *sc;
    struct mcpgw_apikey_set *s;
    FILE *f;
    int fd;

    unsetenv("MCPGW_TEST_API_KEYS");
    s = mcpgw_apikey_from_env("MCPGW_TEST_API_KEYS", err, sizeof(err));
    ck_assert_int_eq(mcpgw_apikey_count(s), 0);
    mcpgw_apikey_set_free(s);
    snprintf(env, sizeof(env), "%s; %s", a, b);
    setenv("MCPGW_TEST_API_KEYS", env, 1);
    s = mcpgw_apikey_from_env("MCPGW_TEST_API_KEYS", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_apikey_count(s), 2);
    ck_assert_int_eq(lookup(s, KEY_B, &p, &sc), 0);
    ck_assert_str_eq(p, "batch");
    mcpgw_apikey_set_free(s);

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    fprintf(f, "%s\n%s\n", a, b);
    fclose(f);
    s = mcpgw_apikey_load(path, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(lookup(s, KEY_A, &p, &sc), 0);
    ck_assert_str_eq(sc, "s1");
    mcpgw_apikey_set_free(s);
    unlink(path);
    ck_assert_ptr_null(mcpgw_apikey_load(path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, path));
    free(a);
    free(b);
}
END_TEST

static Suite *apikey_suite(void)
{
    Suite *s = suite_create("apikey");
    TCase *tc = tcase_create("apikey");
    tcase_add_test(tc, test_keys_match_their_principal_and_scopes);
    tcase_add_test(tc, test_wrong_short_or_altered_keys_do_not_match);
    tcase_add_test(tc, test_bad_lines_are_refused_with_the_line_number);
    tcase_add_test(tc, test_keys_from_the_environment_and_a_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(apikey_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
