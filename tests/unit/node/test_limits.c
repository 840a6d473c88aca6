/* test_limits.c - the limits at the front door (node/limits.c) on a whole node in this process
 * (nodekit.h: memory store, real httpd and transport); port 13502. The rules themselves are
 * test_limitcfg.c; the cluster-wide path is tests/integration/99-limits-redis.sh. */
#include "node/limitcfg.h"
#include "node/limits.h"
#include "node/protocol.h"

#include <check.h>

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

static Suite *suite(void)
{
    Suite *s = suite_create("limits");
    TCase *t = tcase_create("limits");
    tcase_add_test(t, test_limits_call_outliving_the_limits_ends_cleanly);
    tcase_add_test(t, test_limits_refusal_names_a_long_id);
    tcase_add_test(t, test_limits_tool_rate_applies_to_a_long_tool_name);
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
