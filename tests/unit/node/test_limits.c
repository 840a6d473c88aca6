/* test_limits.c - the limits at the front door (node/limits.c) on a whole node in this process
 * (nodekit.h: memory store, real httpd and transport); ports 13502-13504, and 12403-12407 for
 * nodes on a real redis-server (one with authentication). The rules themselves are test_limitcfg.c;
 * the cluster-wide path is tests/integration/99-limits-redis.sh. */
#include "node/auth.h"
#include "node/limitcfg.h"
#include "node/limits.h"
#include "node/protocol.h"

#include <check.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "tests/unit/node/nodekit.h"

static const char sleep26[] =
    "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n"
    "Mcp-Method: tools/call\r\nMcp-Name: sleep\r\nContent-Length: %zu\r\n\r\n%s";
static const char sleep26_body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"sleep\","
    "\"arguments\":{\"ms\":60000},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
    "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}";

static struct nk *limited_node(int port, const char *kind, const char *value)
{
    struct nk *k = nk_new(port);
    char *words[] = {(char *)kind, (char *)value}, err[256];
    ck_assert_msg(mcpgw_limitcfg_parse(&k->n.cfg.limits, 2, words, 1, err, sizeof(err)) == 0, "%s",
                  err);
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n); /* the built-in tools */
    mcpgw_limits_start(&k->n, mcpgw_transport_handle);
    ck_assert_ptr_nonnull(k->n.limits);
    return k;
}

static void limited_node_free(struct nk *k)
{
    mcpgw_limits_stop(&k->n);
    mcpgw_limits_free(&k->n);
    nk_free(k);
}

/* A 2026-07-28 call belongs to no session: node/main.c frees the limits before the HTTP server,
 * whose last connections end such calls. The call's slot must not reach the freed table. */
START_TEST(test_limits_call_outliving_the_limits_ends_cleanly)
{
    struct nk *k = limited_node(13502, "concurrency", "4");
    char req[2048];
    int fd = nk_connect(k), n;
    uint64_t end = nk_now_ms() + 5000;
    n = snprintf(req, sizeof(req), sleep26, strlen(sleep26_body), sleep26_body);
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    while (k->n.st.calls_inflight[0] == 0 && nk_now_ms() < end) {
        nk_pump(k);
        usleep(1000);
    }
    ck_assert_int_eq(k->n.st.calls_inflight[0], 1);
    /* shutting down as node/main.c does: the limits go, then the server with the call's
     * connection (nk_free) */
    mcpgw_limits_stop(&k->n);
    mcpgw_limits_free(&k->n);
    nk_free(k);
    close(fd);
}
END_TEST

/* JSON-RPC 2.0: a refusal names the request's id, whatever its length (a client matches the
 * answer by it). */
START_TEST(test_limits_refusal_names_a_long_id)
{
    struct nk *k = limited_node(13503, "rate", "1/h");
    char id[301], body[512], want[400];
    struct nk_resp r;
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"method\":\"ping\"}", id);
    nk_post(k, NULL, body, &r);
    ck_assert_int_ne(r.status, 429);
    nk_post(k, NULL, body, &r);
    ck_assert_int_eq(r.status, 429);
    snprintf(want, sizeof(want), "\"id\":\"%s\"", id);
    ck_assert_msg(strstr(r.body, want) != NULL, "%s", r.body);
    limited_node_free(k);
}
END_TEST

/* A tool name as long as MCP allows (128 characters) is limited by the rule that names it. */
START_TEST(test_limits_tool_rate_applies_to_a_long_tool_name)
{
    char tool[129], rule[140], body[512];
    char *words[] = {(char *)"rate", (char *)"1/h", rule}, err[256];
    struct nk *k = nk_new(13504);
    struct nk_resp r;
    memset(tool, 't', sizeof(tool) - 1);
    tool[sizeof(tool) - 1] = '\0';
    snprintf(rule, sizeof(rule), "tool=%s", tool);
    ck_assert_msg(mcpgw_limitcfg_parse(&k->n.cfg.limits, 3, words, 1, err, sizeof(err)) == 0, "%s",
                  err);
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    mcpgw_limits_start(&k->n, mcpgw_transport_handle);
    snprintf(
        body, sizeof(body),
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\"}}",
        tool);
    nk_post(k, NULL, body, &r);
    ck_assert_int_ne(r.status, 429);
    nk_post(k, NULL, body, &r);
    ck_assert_msg(r.status == 429, "%d %s", r.status, r.body);
    limited_node_free(k);
}
END_TEST

/* ---- a request admitted, then parked by authentication: one charge (ports 12403-12405) ---- */

struct introspector {
    int hits;
};

static void on_introspect(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    static const char body[] = "{\"active\":true,\"sub\":\"u1\",\"aud\":\"http://localhost/mcp\"}";
    if (!mcpgw_strieq(req->path, req->path_len, "/introspect")) {
        mcpgw_http_respond(c, 404, "text/plain", NULL, "", 0); /* the JWKS: none here */
        return;
    }
    ((struct introspector *)arg)->hits++;
    mcpgw_http_respond(c, 200, "application/json", NULL, body, sizeof(body) - 1);
}

static int port_open(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static pid_t redis_start(int port)
{
    char p[16];
    uint64_t deadline = nk_now_ms() + 10000;
    pid_t pid;
    ck_assert_msg(!port_open(port), "port %d is already in use", port);
    snprintf(p, sizeof(p), "%d", port);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        perror("exec redis-server");
        _exit(127);
    }
    while (!port_open(port)) {
        ck_assert_msg(nk_now_ms() < deadline, "redis-server did not listen within 10 s");
        usleep(10000);
    }
    return pid;
}

/* A request the limits admitted (here after Redis did not answer in time, decided with the local
 * bucket) goes through the node's handler again; if authentication must check its token once
 * more (the token cache was cleared meanwhile, as a reload of the authorization rules does, or
 * its entry ran out), the request is parked on an introspection and resumed later. It was
 * admitted already: resumed, it must not be charged again (with a rate of one per hour, the
 * second charge refused it with 429, its own first charge standing in its way). */
START_TEST(test_limits_request_parked_by_auth_after_admission_is_charged_once)
{
    char *words[] = {(char *)"rate", (char *)"1/h"}, err[256], req[1024];
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    struct introspector is = {0};
    struct mcpgw_httpd_config hc;
    struct mcpgw_httpd *ep;
    struct nk *k = nk_new(12403);
    uint64_t *hits, end;
    pid_t redis = redis_start(12405);
    int fd, n, got;
    char resp[4096];
    size_t len = 0;

    ck_assert(mcpgw_limitcfg_parse(&k->n.cfg.limits, 2, words, 1, err, sizeof(err)) == 0);
    snprintf(k->n.cfg.auth, sizeof(k->n.cfg.auth), "jwt");
    snprintf(k->n.cfg.auth_issuer, sizeof(k->n.cfg.auth_issuer), "http://127.0.0.1:12404");
    snprintf(k->n.cfg.auth_jwks_url, sizeof(k->n.cfg.auth_jwks_url), "http://127.0.0.1:12404/jwks");
    snprintf(k->n.cfg.auth_resource, sizeof(k->n.cfg.auth_resource), "http://localhost/mcp");
    snprintf(k->n.cfg.auth_introspect_url, sizeof(k->n.cfg.auth_introspect_url),
             "http://127.0.0.1:12404/introspect");
    k->store_url = "redis://127.0.0.1:12405";
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    mcpgw_httpd_config_defaults(&hc);
    ep = mcpgw_httpd_new(k->n.base, &hc, on_introspect, &is);
    ck_assert_msg(mcpgw_httpd_listen(ep, "127.0.0.1:12404", err, sizeof(err)) == 0, "%s", err);
    k->n.auth = mcpgw_auth_new(k->n.base, &k->n.cfg, k->n.metrics, "node=\"t\"",
                               mcpgw_transport_handle, &k->n, err, sizeof(err));
    ck_assert_msg(k->n.auth != NULL, "%s", err);
    mcpgw_limits_start(&k->n, mcpgw_transport_handle);
    hits = mcpgw_metrics_counter(k->n.metrics, "mcpgw_node_auth_token_cache_hits_total", "",
                                 "node=\"t\"");
    for (end = nk_now_ms() + 10000; !mcpgw_store_up(k->n.store) && nk_now_ms() < end;)
        nk_run_for(k, 5);
    ck_assert(mcpgw_store_up(k->n.store));

    /* Redis holds its answer: the limits decide here after their timeout. */
    kill(redis, SIGSTOP);
    fd = nk_connect(k);
    n = snprintf(req, sizeof(req),
                 "POST /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                 "MCP-Protocol-Version: 2025-11-25\r\nAuthorization: Bearer opaque-token-5\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 sizeof(body) - 1, body);
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    /* introspected, then found in the cache and handed to the limits, which ask Redis */
    for (end = nk_now_ms() + 5000; *hits == 0 && nk_now_ms() < end;)
        nk_run_for(k, 1);
    ck_assert_int_eq(is.hits, 1);
    ck_assert_int_eq(*hits, 1);
    /* meanwhile the token cache is emptied (a reload of the rules) */
    mcpgw_auth_rules_changed(k->n.auth);
    for (end = nk_now_ms() + 10000; nk_now_ms() < end;) {
        nk_pump(k);
        got = (int)recv(fd, resp + len, sizeof(resp) - 1 - len, MSG_DONTWAIT);
        if (got == 0)
            break;
        if (got > 0)
            len += (size_t)got;
        else
            usleep(500);
    }
    resp[len] = '\0';
    close(fd);
    ck_assert_int_eq(is.hits, 2); /* the token was checked again */
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);

    kill(redis, SIGCONT);
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
    /* as node/main.c: the limits stop, the store goes (its last replies with it), then them */
    mcpgw_limits_stop(&k->n);
    mcpgw_auth_free(k->n.auth);
    k->n.auth = NULL;
    mcpgw_httpd_free(ep);
    mcpgw_store_free(k->n.store);
    k->n.store = NULL;
    mcpgw_limits_free(&k->n);
    nk_free(k);
}
END_TEST

/* A refusal decided after Redis answered comes outside the connection's handler: answering may
 * free a "Connection: close" connection at once, and the audit line must not read it after
 * that (the sanitized build saw a use after free). */
START_TEST(test_limits_refusal_after_redis_answered_outlives_the_connection)
{
    char *words[] = {(char *)"rate", (char *)"1/h"}, err[256];
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    struct nk *k = nk_new(12406);
    struct nk_resp r;
    uint64_t end;
    pid_t redis = redis_start(12407);
    ck_assert(mcpgw_limitcfg_parse(&k->n.cfg.limits, 2, words, 1, err, sizeof(err)) == 0);
    k->store_url = "redis://127.0.0.1:12407";
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    mcpgw_limits_start(&k->n, mcpgw_transport_handle);
    for (end = nk_now_ms() + 10000; !mcpgw_store_up(k->n.store) && nk_now_ms() < end;)
        nk_run_for(k, 5);
    ck_assert(mcpgw_store_up(k->n.store));
    nk_post(k, NULL, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    nk_post(k, NULL, body, &r);
    ck_assert_msg(r.status == 429, "%d %s", r.status, r.body);
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
    mcpgw_limits_stop(&k->n);
    mcpgw_store_free(k->n.store);
    k->n.store = NULL;
    mcpgw_limits_free(&k->n);
    nk_free(k);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("limits");
    TCase *t = tcase_create("limits");
    tcase_add_test(t, test_limits_call_outliving_the_limits_ends_cleanly);
    tcase_add_test(t, test_limits_refusal_names_a_long_id);
    tcase_add_test(t, test_limits_tool_rate_applies_to_a_long_tool_name);
    tcase_add_test(t, test_limits_request_parked_by_auth_after_admission_is_charged_once);
    tcase_add_test(t, test_limits_refusal_after_redis_answered_outlives_the_connection);
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
