/* test_auth.c - the node's authentication settings and principal checks (node/auth.c); the
 * request path is tested end to end by tests/integration/9x-auth-*. */
#include "node/auth.h"
#include "node/config.h"
#include "node/store.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/node/nodekit.h"

#include "common/jwks.h"
#include "tests/unit/common/josekit.h"

#include <openssl/evp.h>
#include <time.h>

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

/* ---- introspection: the node's own credentials (a whole node, and an introspection endpoint
 * on the same loop; ports 13500-13501) ---- */

struct introspector {
    char authorization[1024]; /* the Authorization header of the last introspection */
    const char *resource;
    const char *extra; /* more members of the answer (",\"exp\":1"), or NULL */
};

static void on_introspect(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct introspector *is = arg;
    const struct mcpgw_http_header *h = mcpgw_http_find(&req->head, "authorization");
    char body[512];
    int n;
    snprintf(is->authorization, sizeof(is->authorization), "%.*s", h ? (int)h->value_len : 0,
             h ? h->value : "");
    n = snprintf(body, sizeof(body), "{\"active\":true,\"sub\":\"u1\",\"aud\":\"%s\"%s}",
                 is->resource, is->extra ? is->extra : "");
    mcpgw_http_respond(c, 200, "application/json", NULL, body, (size_t)n);
}

/* A node with --auth jwt and an introspection endpoint that authenticates as id/secret. */
static struct nk *introspecting_node(struct introspector *is, struct mcpgw_httpd **ep,
                                     const char *id, const char *secret)
{
    struct nk *k = nk_new(13500);
    struct mcpgw_httpd_config hc;
    char e[256];
    snprintf(k->n.cfg.auth, sizeof(k->n.cfg.auth), "jwt");
    snprintf(k->n.cfg.auth_issuer, sizeof(k->n.cfg.auth_issuer), "http://127.0.0.1:13501");
    snprintf(k->n.cfg.auth_jwks_url, sizeof(k->n.cfg.auth_jwks_url), "http://127.0.0.1:13501/jwks");
    snprintf(k->n.cfg.auth_resource, sizeof(k->n.cfg.auth_resource), "http://localhost/mcp");
    snprintf(k->n.cfg.auth_introspect_url, sizeof(k->n.cfg.auth_introspect_url),
             "http://127.0.0.1:13501/introspect");
    snprintf(k->n.cfg.auth_introspect_client, sizeof(k->n.cfg.auth_introspect_client), "%s", id);
    snprintf(k->n.cfg.auth_introspect_secret, sizeof(k->n.cfg.auth_introspect_secret), "%s",
             secret);
    nk_start(k, 0);
    is->resource = k->n.cfg.auth_resource;
    mcpgw_httpd_config_defaults(&hc);
    *ep = mcpgw_httpd_new(k->n.base, &hc, on_introspect, is);
    ck_assert_msg(mcpgw_httpd_listen(*ep, "127.0.0.1:13501", e, sizeof(e)) == 0, "%s", e);
    k->n.auth = mcpgw_auth_new(k->n.base, &k->n.cfg, k->n.metrics, "node=\"t\"",
                               mcpgw_transport_handle, &k->n, e, sizeof(e));
    ck_assert_msg(k->n.auth != NULL, "%s", e);
    return k;
}

static void introspecting_node_free(struct nk *k, struct mcpgw_httpd *ep)
{
    mcpgw_auth_free(k->n.auth);
    k->n.auth = NULL;
    mcpgw_httpd_free(ep);
    nk_free(k);
}

/* What the endpoint should see: Basic over the form-encoded id and secret (RFC 6749 2.3.1). */
static void expect_basic(const char *got, const char *plain)
{
    char want[1024] = "Basic ";
    EVP_EncodeBlock((unsigned char *)want + 6, (const unsigned char *)plain, (int)strlen(plain));
    ck_assert_str_eq(got, want);
}

static const char ping26[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";

START_TEST(test_auth_long_introspection_credentials_fit)
{
    /* Each as long as the settings allow: the Basic header of both must not overrun. */
    char id[256], secret[256], plain[600];
    struct introspector is = {{0}, NULL, NULL};
    struct mcpgw_httpd *ep;
    struct nk *k;
    struct nk_resp r;
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    memset(secret, 's', sizeof(secret) - 1);
    secret[sizeof(secret) - 1] = '\0';
    k = introspecting_node(&is, &ep, id, secret);
    /* a refusal counts itself: the counters must be intact */
    nk_post(k, NULL, ping26, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert(
        nk_http(k, "POST", NULL, "Authorization: Bearer opaque-token-1\r\n", ping26, NULL, &r));
    snprintf(plain, sizeof(plain), "%s:%s", id, secret);
    expect_basic(is.authorization, plain);
    introspecting_node_free(k, ep);
}
END_TEST

START_TEST(test_auth_introspection_credentials_are_form_encoded)
{
    /* RFC 6749 2.3.1: id and secret are form-encoded before Basic. A generated secret often
     * holds '+' and '/', which an authorization server decodes (oidc-provider: '+' is a
     * space); an id may hold ':'. */
    struct introspector is = {{0}, NULL, NULL};
    struct mcpgw_httpd *ep;
    struct nk *k = introspecting_node(&is, &ep, "rs:node", "a+b/c%d=");
    struct nk_resp r;
    ck_assert(
        nk_http(k, "POST", NULL, "Authorization: Bearer opaque-token-2\r\n", ping26, NULL, &r));
    expect_basic(is.authorization, "rs%3Anode:a%2Bb%2Fc%25d%3D");
    introspecting_node_free(k, ep);
}
END_TEST

START_TEST(test_auth_introspection_far_exp_is_not_an_overflow)
{
    /* An answer's exp is the authorization server's number: the largest one is a token that
     * does not expire soon, not a signed overflow (which the sanitized build aborts on). */
    struct introspector is = {{0}, NULL, ",\"exp\":9223372036854775807"};
    struct mcpgw_httpd *ep;
    struct nk *k = introspecting_node(&is, &ep, "rs", "secret");
    struct nk_resp r;
    ck_assert(
        nk_http(k, "POST", NULL, "Authorization: Bearer opaque-token-3\r\n", ping26, NULL, &r));
    ck_assert_str_ne(is.authorization, "");
    ck_assert_int_ne(r.status, 401);
    ck_assert_int_ne(r.status, 503);
    introspecting_node_free(k, ep);
}
END_TEST

/* ---- response bodies over the caps (ports 12400-12401): a document served in chunks whose
 * first chunk fills the cap to within 8 bytes; then padding chunks that cannot fit, then one byte
 * that can. The whole is over the cap and must be refused; accepting the first and last chunks
 * without the middle would take a different document than the one served. ---- */

struct oversized {
    const char *head; /* the document's start; spaces follow to cap - 8 bytes */
    size_t cap;
    int hits;
};

static void on_oversized(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct oversized *o = arg;
    size_t fill = o->cap - 8, hl = strlen(o->head);
    char *buf = xmalloc(fill);
    o->hits++;
    memcpy(buf, o->head, hl);
    memset(buf + hl, ' ', fill - hl);
    mcpgw_http_stream_begin(c, 200, "application/json", NULL);
    mcpgw_http_stream_write(c, buf, fill);
    /* whitespace: whatever part of it were kept, the document would still parse */
    memset(buf, ' ', 16000);
    for (int i = 0; i < 4; i++)
        mcpgw_http_stream_write(c, buf, 16000);
    mcpgw_http_stream_write(c, "}", 1);
    mcpgw_http_stream_end(c);
    free(buf);
}

/* A node with --auth jwt whose JWKS (and introspection endpoint) is served by on_oversized. */
static struct nk *oversized_node(struct oversized *o, struct mcpgw_httpd **ep)
{
    struct nk *k = nk_new(12400);
    struct mcpgw_httpd_config hc;
    char e[256];
    snprintf(k->n.cfg.auth, sizeof(k->n.cfg.auth), "jwt");
    snprintf(k->n.cfg.auth_issuer, sizeof(k->n.cfg.auth_issuer), "http://127.0.0.1:12401");
    snprintf(k->n.cfg.auth_jwks_url, sizeof(k->n.cfg.auth_jwks_url), "http://127.0.0.1:12401/jwks");
    snprintf(k->n.cfg.auth_resource, sizeof(k->n.cfg.auth_resource), "http://localhost/mcp");
    snprintf(k->n.cfg.auth_introspect_url, sizeof(k->n.cfg.auth_introspect_url),
             "http://127.0.0.1:12401/introspect");
    nk_start(k, 0);
    mcpgw_httpd_config_defaults(&hc);
    *ep = mcpgw_httpd_new(k->n.base, &hc, on_oversized, o);
    ck_assert_msg(mcpgw_httpd_listen(*ep, "127.0.0.1:12401", e, sizeof(e)) == 0, "%s", e);
    k->n.auth = mcpgw_auth_new(k->n.base, &k->n.cfg, k->n.metrics, "node=\"t\"",
                               mcpgw_transport_handle, &k->n, e, sizeof(e));
    ck_assert_msg(k->n.auth != NULL, "%s", e);
    return k;
}

START_TEST(test_auth_jwks_over_the_cap_is_refused_whole)
{
    EVP_PKEY *key = josekit_keygen("EC", 0);
    char *jwk = josekit_jwk(key, "k1", NULL), head[1024], payload[512], hdr[2048], *tok;
    struct oversized o = {head, MCPGW_JWKS_MAX_DOC, 0};
    struct mcpgw_httpd *ep;
    struct nk *k;
    struct nk_resp r;
    snprintf(head, sizeof(head), "{\"keys\":[%s]", jwk);
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"http://127.0.0.1:12401\",\"aud\":\"http://localhost/mcp\",\"sub\":\"u1\","
             "\"exp\":%lld}",
             (long long)time(NULL) + 600);
    tok = josekit_sign("ES256", "k1", payload, key, NULL, 0);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
    k = oversized_node(&o, &ep);
    /* parked on the first fetch, then answered: no keys came from a document over the cap */
    ck_assert(nk_http(k, "POST", NULL, hdr, ping26, NULL, &r));
    ck_assert_int_ge(o.hits, 1);
    ck_assert_msg(r.status == 503 && strstr(r.body, "keys could not be fetched"), "%d %s", r.status,
                  r.body);
    introspecting_node_free(k, ep);
    free(tok);
    free(jwk);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_auth_introspection_over_the_cap_is_refused_whole)
{
    struct oversized o = {"{\"active\":true,\"sub\":\"u1\",\"aud\":\"http://localhost/mcp\"",
                          64 << 10, 0};
    struct mcpgw_httpd *ep;
    struct nk *k = oversized_node(&o, &ep);
    struct nk_resp r;
    ck_assert(
        nk_http(k, "POST", NULL, "Authorization: Bearer opaque-token-4\r\n", ping26, NULL, &r));
    ck_assert_int_ge(o.hits, 1);
    ck_assert_msg(r.status == 503 && strstr(r.body, "could not be checked"), "%d %s", r.status,
                  r.body);
    introspecting_node_free(k, ep);
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
    tcase_add_test(t, test_auth_long_introspection_credentials_fit);
    tcase_add_test(t, test_auth_introspection_credentials_are_form_encoded);
    tcase_add_test(t, test_auth_introspection_far_exp_is_not_an_overflow);
    tcase_add_test(t, test_auth_jwks_over_the_cap_is_refused_whole);
    tcase_add_test(t, test_auth_introspection_over_the_cap_is_refused_whole);
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
