/* test_auth.c - the node's authentication settings and principal checks (node/auth.c); the
 * request path is tested end to end by tests/integration/9x-auth-*. */
#include "node/auth.h"
#include "node/config.h"
#include "node/store.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static struct mcpgw_node_config cfg;
static char err[600];

static int load(const char *const *args)
{
    char *argv[32];
    int argc = 0, check, help;
    argv[argc++] = (char *)"mcpgw-node";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    mcpgw_node_config_free(&cfg);
    err[0] = '\0';
    return mcpgw_node_config_load(&cfg, argc, argv, &check, &help, err, sizeof(err));
}

static void teardown(void)
{
    mcpgw_node_config_free(&cfg);
}

START_TEST(test_auth_off_needs_nothing)
{
    const char *a[] = {NULL};
    ck_assert_int_eq(load(a), 0);
    ck_assert_str_eq(cfg.auth, "off");
}
END_TEST

START_TEST(test_auth_jwt_with_everything_is_accepted)
{
    const char *a[] = {"--auth",
                       "jwt",
                       "--auth-issuer",
                       "https://login.example.com",
                       "--auth-jwks-url",
                       "https://login.example.com/jwks",
                       "--auth-resource",
                       "https://mcp.example.com/mcp",
                       "--auth-scopes",
                       "mcp:tools,mcp:read",
                       NULL};
    ck_assert_msg(load(a) == 0, "%s", err);
    ck_assert_int_eq(cfg.auth_scopes.n, 2);
    ck_assert_uint_eq(cfg.auth_skew_ms, 60000);
}
END_TEST

START_TEST(test_auth_refuses_what_a_mode_lacks)
{
    const char *unknown[] = {"--auth", "oauth", NULL};
    const char *nores[] = {"--auth",         "jwt", "--auth-issuer", "https://i", "--auth-jwks-url",
                           "https://i/jwks", NULL};
    const char *relres[] = {"--auth",
                            "jwt",
                            "--auth-issuer",
                            "https://i",
                            "--auth-jwks-url",
                            "https://i/jwks",
                            "--auth-resource",
                            "/mcp",
                            NULL};
    const char *noiss[] = {"--auth", "jwt", "--auth-resource", "https://gw/mcp", NULL};
    const char *spaceiss[] = {"--auth",
                              "jwt",
                              "--auth-issuer",
                              "https://i x",
                              "--auth-jwks-url",
                              "https://i/jwks",
                              "--auth-resource",
                              "https://gw/mcp",
                              NULL};
    const char *nokeys[] = {"--auth", "apikey", "--auth-resource", "https://gw/mcp", NULL};
    const char *badscope[] = {"--auth",
                              "apikey",
                              "--auth-resource",
                              "https://gw/mcp",
                              "--auth-apikeys-env",
                              "K",
                              "--auth-scopes",
                              "a\"b",
                              NULL};
    ck_assert_int_eq(load(unknown), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a mode"));
    ck_assert_int_eq(load(nores), -1);
    ck_assert_ptr_nonnull(strstr(err, "auth-resource"));
    ck_assert_int_eq(load(relres), -1);
    ck_assert_ptr_nonnull(strstr(err, "auth-resource"));
    ck_assert_int_eq(load(noiss), -1);
    ck_assert_ptr_nonnull(strstr(err, "auth-issuer"));
    ck_assert_int_eq(load(spaceiss), -1);
    ck_assert_ptr_nonnull(strstr(err, "space"));
    ck_assert_int_eq(load(nokeys), -1);
    ck_assert_ptr_nonnull(strstr(err, "auth-apikeys"));
    ck_assert_int_eq(load(badscope), -1);
    ck_assert_ptr_nonnull(strstr(err, "scope token"));
}
END_TEST

START_TEST(test_auth_owner_must_be_the_same_principal)
{
    ck_assert_int_eq(mcpgw_auth_owner_ok("https://i alice", "https://i alice"), 1);
    ck_assert_int_eq(mcpgw_auth_owner_ok("https://i alice", "https://i bob"), 0);
    ck_assert_int_eq(mcpgw_auth_owner_ok("https://i alice", "https://i alice2"), 0);
    /* a session from before auth was on belongs to nobody: refused once it is on */
    ck_assert_int_eq(mcpgw_auth_owner_ok(NULL, "https://i alice"), 0);
    ck_assert_int_eq(mcpgw_auth_owner_ok("https://i alice", NULL), 0);
    ck_assert_int_eq(mcpgw_auth_owner_ok(NULL, NULL), 1);
}
END_TEST

START_TEST(test_auth_reasons_have_names)
{
    for (int i = 0; i < MCPGW_AUTH_R_COUNT; i++)
        ck_assert_str_ne(mcpgw_auth_reason_str(i), "?");
    ck_assert_str_eq(mcpgw_auth_reason_str(MCPGW_AUTH_R_SESSION_PRINCIPAL), "session_principal");
    ck_assert_str_eq(mcpgw_auth_reason_str(MCPGW_AUTH_R_COUNT), "?");
}
END_TEST

START_TEST(test_store_url_is_logged_without_its_password)
{
    char out[256];
    mcpgw_url_redact("redis://mcpgw:pw@127.0.0.1:6379", out, sizeof(out));
    ck_assert_str_eq(out, "redis://mcpgw:***@127.0.0.1:6379");
    mcpgw_url_redact("redis://:pw@h:1", out, sizeof(out));
    ck_assert_str_eq(out, "redis://:***@h:1");
    mcpgw_url_redact("redis://h:1", out, sizeof(out));
    ck_assert_str_eq(out, "redis://h:1");
    mcpgw_url_redact("rediss://u:pw@h:1", out, sizeof(out)); /* a typo still hides it */
    ck_assert_str_eq(out, "rediss://u:***@h:1");
    mcpgw_url_redact("memory", out, sizeof(out));
    ck_assert_str_eq(out, "memory");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("auth");
    TCase *t = tcase_create("auth");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_add_test(t, test_auth_off_needs_nothing);
    tcase_add_test(t, test_auth_jwt_with_everything_is_accepted);
    tcase_add_test(t, test_auth_refuses_what_a_mode_lacks);
    tcase_add_test(t, test_auth_owner_must_be_the_same_principal);
    tcase_add_test(t, test_auth_reasons_have_names);
    tcase_add_test(t, test_store_url_is_logged_without_its_password);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    int failed;
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
