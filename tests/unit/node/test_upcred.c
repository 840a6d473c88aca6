/* test_upcred.c - OAuth client credentials for upstreams: the oauth-* keys, and the token source
 * against a small in-process token endpoint that answers as told (a token, an OAuth error, a
 * malformed answer), so that each answer the source must handle can be produced on demand. The
 * whole flow against a real authorization server is tests/integration/95-auth-upstream-oauth.mjs.
 * Port 14240. */
#include "node/upcred.h"

#include "tests/unit/check-run.h"
#include "tests/unit/upkit.h"

#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PORT      14240
#define TOKEN_URL "http://127.0.0.1:14240/token"

/* ---- the oauth-* keys ---- */

static int key(struct mcpgw_upcred_cfg **c, const char *k, const char *v, char *err)
{
    return mcpgw_upcred_cfg_key(c, k, v, err, 256);
}

START_TEST(test_upcred_cfg_takes_its_keys_and_leaves_others)
{
    struct mcpgw_upcred_cfg *c = NULL;
    char err[256] = "";
    ck_assert_int_eq(key(&c, "timeout", "5s", err), 0);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(key(&c, "oauth-token-url", TOKEN_URL, err), 1);
    ck_assert_int_eq(key(&c, "oauth-client-id", "gw", err), 1);
    ck_assert_int_eq(mcpgw_upcred_cfg_check(c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "missing: oauth-client-secret"));
    ck_assert_int_eq(key(&c, "oauth-client-secret", "s3cret", err), 1);
    ck_assert_int_eq(key(&c, "oauth-scope", "a b", err), 1);
    ck_assert_int_eq(key(&c, "oauth-resource", "https://up.example/mcp", err), 1);
    ck_assert_int_eq(key(&c, "oauth-client-auth", "post", err), 1);
    ck_assert_int_eq(mcpgw_upcred_cfg_check(c, err, sizeof(err)), 0);
    ck_assert_int_eq(c->auth_post, 1);
    ck_assert_str_eq(c->scope, "a b");
    ck_assert_int_eq(key(&c, "oauth-client-id", "again", err), -1);
    ck_assert_str_eq(err, "oauth-client-id= is given twice");
    mcpgw_upcred_cfg_free(c);
}
END_TEST

START_TEST(test_upcred_cfg_refuses_bad_values_without_echoing_secrets)
{
    struct mcpgw_upcred_cfg *c = NULL;
    char err[256];
    ck_assert_int_eq(key(&c, "oauth-token-url", "ftp://h/token", err), -1);
    ck_assert_int_eq(key(&c, "oauth-token-url", "http:///token", err), -1);
    ck_assert_int_eq(key(&c, "oauth-resource", "up.example", err), -1);
    ck_assert_int_eq(key(&c, "oauth-client-secret", "with space-SECRET", err), -1);
    ck_assert_ptr_null(strstr(err, "SECRET"));
    ck_assert_int_eq(key(&c, "oauth-client-secret", "", err), -1);
    ck_assert_int_eq(key(&c, "oauth-scope", "", err), -1);
    ck_assert_int_eq(key(&c, "oauth-client-auth", "jwt", err), -1);
    mcpgw_upcred_cfg_free(c);
}
END_TEST

/* ---- the token source ---- */

static struct event_base *base;
static struct evhttp *http;
static int hits;             /* requests the endpoint got */
static char last_body[1024]; /* the last form it got */
static char last_auth[256];  /* its Authorization header */
static int status = 200;     /* what it answers next */
static const char *answer;   /* ... with this body */
static int hold;             /* 1: do not answer yet (answered by release()) */
static struct evhttp_request *held;

static void reply(struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, answer, strlen(answer));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, "X", b);
    evbuffer_free(b);
}

static void token_endpoint(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    size_t n = evbuffer_get_length(in);
    (void)arg;
    hits++;
    if (n >= sizeof(last_body))
        n = sizeof(last_body) - 1;
    evbuffer_copyout(in, last_body, n);
    last_body[n] = '\0';
    snprintf(last_auth, sizeof(last_auth), "%s", a ? a : "");
    if (hold)
        held = req;
    else
        reply(req);
}

static void release(void)
{
    hold = 0;
    if (held)
        reply(held);
    held = NULL;
}

struct waiter {
    int done;
    char why[512];
};

static void on_done(void *arg, const char *why)
{
    struct waiter *w = arg;
    w->done++;
    snprintf(w->why, sizeof(w->why), "%s", why ? why : "");
}

#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        long d_ = upkit_now_ms() + (ms);                                                           \
        int z_ = 0;                                                                                \
        while (!(cond) && upkit_now_ms() < d_)                                                     \
            upkit_run_until(base, &z_, 20);                                                        \
    } while (0)

static struct mcpgw_upcred_cfg *cfg_new(int post)
{
    struct mcpgw_upcred_cfg *c = NULL;
    char err[256];
    key(&c, "oauth-token-url", TOKEN_URL, err);
    key(&c, "oauth-client-id", "gw:1", err);
    key(&c, "oauth-client-secret", "s&cret", err);
    key(&c, "oauth-scope", "up:tools up:read", err);
    key(&c, "oauth-resource", "http://up.example/mcp", err);
    if (post)
        key(&c, "oauth-client-auth", "post", err);
    return c;
}

static void setup(void)
{
    base = event_base_new();
    http = evhttp_new(base);
    ck_assert_int_eq(evhttp_bind_socket(http, "127.0.0.1", PORT), 0);
    evhttp_set_gencb(http, token_endpoint, NULL);
    hits = 0;
    status = 200;
    hold = 0;
    held = NULL;
    answer = "{\"access_token\":\"tok-1\",\"token_type\":\"Bearer\",\"expires_in\":600}";
}

static void teardown(void)
{
    evhttp_free(http);
    event_base_free(base);
}

START_TEST(test_upcred_fetches_once_for_joined_waiters_and_caches)
{
    struct mcpgw_upcred_cfg *cfg = cfg_new(0);
    struct mcpgw_upcred *c, *c2;
    struct waiter a = {0}, b = {0}, d = {0};
    unsigned gen = 0;
    setup();
    c = mcpgw_upcred_acquire(base, "up", cfg);
    c2 = mcpgw_upcred_acquire(base, "up", cfg); /* another session of the same upstream */
    ck_assert_ptr_eq(c, c2);
    ck_assert_ptr_null(mcpgw_upcred_header(c, NULL));
    hold = 1;
    mcpgw_upcred_refresh(c, 0, on_done, &a);
    mcpgw_upcred_refresh(c2, 0, on_done, &b);
    ck_assert_int_eq(a.done + b.done, 0); /* never before returning */
    RUN_UNTIL(held, 5000);
    release();
    RUN_UNTIL(a.done && b.done, 5000);
    ck_assert_int_eq(hits, 1);
    ck_assert_str_eq(a.why, "");
    ck_assert_str_eq(mcpgw_upcred_header(c, &gen), "Authorization: Bearer tok-1");
    ck_assert_uint_ne(gen, 0);
    /* The client credentials grant, form-encoded, with HTTP Basic (RFC 6749 2.3.1). */
    ck_assert_str_eq(last_body, "grant_type=client_credentials&scope=up%3Atools%20up%3Aread"
                                "&resource=http%3A%2F%2Fup.example%2Fmcp");
    ck_assert_str_eq(last_auth, "Basic Z3clM0ExOnMlMjZjcmV0"); /* gw%3A1:s%26cret */
    /* A token still good: the next waiter gets it on the next loop turn, no fetch. */
    mcpgw_upcred_refresh(c, 0, on_done, &d);
    ck_assert_int_eq(d.done, 0);
    RUN_UNTIL(d.done, 5000);
    ck_assert_int_eq(hits, 1);
    mcpgw_upcred_release(c2);
    mcpgw_upcred_release(c);
    mcpgw_upcred_cfg_free(cfg);
    teardown();
}
END_TEST

START_TEST(test_upcred_refetches_a_refused_token_once)
{
    struct mcpgw_upcred_cfg *cfg = cfg_new(1);
    struct mcpgw_upcred *c;
    struct waiter a = {0}, b = {0}, d = {0};
    unsigned g1 = 0, g2 = 0;
    setup();
    c = mcpgw_upcred_acquire(base, "up", cfg);
    mcpgw_upcred_refresh(c, 0, on_done, &a);
    RUN_UNTIL(a.done, 5000);
    ck_assert_ptr_nonnull(mcpgw_upcred_header(c, &g1));
    ck_assert_ptr_nonnull(strstr(last_body, "&client_id=gw%3A1&client_secret=s%26cret"));
    ck_assert_str_eq(last_auth, "");
    /* Two exchanges refused with token g1: one fetch, and both get the new token. */
    answer = "{\"access_token\":\"tok-2\",\"token_type\":\"bearer\",\"expires_in\":600}";
    hold = 1;
    mcpgw_upcred_refresh(c, g1, on_done, &b);
    mcpgw_upcred_refresh(c, g1, on_done, &d);
    RUN_UNTIL(held, 5000);
    release();
    RUN_UNTIL(b.done && d.done, 5000);
    ck_assert_int_eq(hits, 2);
    ck_assert_str_eq(mcpgw_upcred_header(c, &g2), "Authorization: Bearer tok-2");
    ck_assert_uint_ne(g1, g2);
    mcpgw_upcred_release(c);
    mcpgw_upcred_cfg_free(cfg);
    teardown();
}
END_TEST

START_TEST(test_upcred_uses_a_short_token_only_until_its_margin)
{
    struct mcpgw_upcred_cfg *cfg = cfg_new(0);
    struct mcpgw_upcred *c;
    struct waiter a = {0};
    setup();
    answer = "{\"access_token\":\"short\",\"token_type\":\"Bearer\",\"expires_in\":1}";
    c = mcpgw_upcred_acquire(base, "up", cfg);
    mcpgw_upcred_refresh(c, 0, on_done, &a);
    RUN_UNTIL(a.done, 5000);
    ck_assert_ptr_nonnull(mcpgw_upcred_header(c, NULL));
    RUN_UNTIL(!mcpgw_upcred_header(c, NULL), 3000);
    ck_assert_ptr_null(mcpgw_upcred_header(c, NULL)); /* stale: the caller must refresh */
    mcpgw_upcred_release(c);
    mcpgw_upcred_cfg_free(cfg);
    teardown();
}
END_TEST

/* Each bad answer gives a sentence naming the endpoint and the cause, and no token. */
START_TEST(test_upcred_reports_each_bad_answer)
{
    static const struct {
        int status;
        const char *body, *want;
    } rows[] = {
        {401, "{\"error\":\"invalid_client\",\"error_description\":\"no such client\"}",
         "HTTP 401, error invalid_client: no such client"},
        {200, "not json", "HTTP 200 with a body that is not a JSON object"},
        {200, "{\"token_type\":\"Bearer\"}", "no usable access_token"},
        {200, "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}", "no usable access_token"},
        {200, "{\"access_token\":\"t\",\"token_type\":\"DPoP\"}", "token_type is 'DPoP'"},
        {200, "{\"access_token\":\"t\",\"token_type\":\"Bearer\",\"expires_in\":0}",
         "expires_in is not a positive"},
    };
    struct mcpgw_upcred_cfg *cfg = cfg_new(0);
    setup();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct mcpgw_upcred *c = mcpgw_upcred_acquire(base, "up", cfg);
        struct waiter a = {0}, b = {0};
        int h;
        status = rows[i].status;
        answer = rows[i].body;
        mcpgw_upcred_refresh(c, 0, on_done, &a);
        RUN_UNTIL(a.done, 5000);
        ck_assert_msg(strstr(a.why, "no access token from " TOKEN_URL ": ") &&
                          strstr(a.why, rows[i].want),
                      "row %zu: %s", i, a.why);
        ck_assert_ptr_null(mcpgw_upcred_header(c, NULL));
        /* Right after a failure, callers get it without another fetch. */
        h = hits;
        mcpgw_upcred_refresh(c, 0, on_done, &b);
        RUN_UNTIL(b.done, 5000);
        ck_assert_int_eq(hits, h);
        ck_assert_str_eq(a.why, b.why);
        mcpgw_upcred_release(c); /* the last release: the next acquire starts afresh */
    }
    mcpgw_upcred_cfg_free(cfg);
    teardown();
}
END_TEST

START_TEST(test_upcred_cancelled_waiter_is_not_called)
{
    struct mcpgw_upcred_cfg *cfg = cfg_new(0);
    struct mcpgw_upcred *c;
    struct waiter a = {0}, b = {0};
    setup();
    c = mcpgw_upcred_acquire(base, "up", cfg);
    hold = 1;
    mcpgw_upcred_wait_cancel(mcpgw_upcred_refresh(c, 0, on_done, &a));
    mcpgw_upcred_refresh(c, 0, on_done, &b);
    RUN_UNTIL(held, 5000);
    release();
    RUN_UNTIL(b.done, 5000);
    ck_assert_int_eq(a.done, 0);
    ck_assert_int_eq(b.done, 1);
    mcpgw_upcred_release(c);
    mcpgw_upcred_cfg_free(cfg);
    teardown();
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_upcred_cfg_takes_its_keys_and_leaves_others,
        test_upcred_cfg_refuses_bad_values_without_echoing_secrets,
        test_upcred_fetches_once_for_joined_waiters_and_caches,
        test_upcred_refetches_a_refused_token_once,
        test_upcred_uses_a_short_token_only_until_its_margin,
        test_upcred_reports_each_bad_answer,
        test_upcred_cancelled_waiter_is_not_called,
    };
    return mcpgw_check_run("upcred", "core", tests, sizeof(tests) / sizeof(tests[0]));
}
