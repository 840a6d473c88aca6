/* test_rewrite.c - request and response heads the balancer sends on. */
#include "balancer/rewrite.h"

#include "common/http.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static char out_text[8192];

/* Parse head (a request unless is_response), rewrite it, and return the rewritten text. */
static const char *rewrite(const char *head, int is_response, unsigned flags,
                           const struct mcpgw_bal_peer *peer)
{
    struct mcpgw_http_head h;
    struct evbuffer *out = evbuffer_new();
    size_t len = strlen(head);
    ck_assert_int_eq(mcpgw_http_parse_head(head, len, is_response, &h, NULL), MCPGW_HTTP_OK);
    if (is_response)
        mcpgw_bal_rewrite_response(&h, head, flags, out);
    else
        mcpgw_bal_rewrite_request(&h, peer, out);
    len = evbuffer_get_length(out);
    ck_assert_uint_lt(len, sizeof(out_text));
    evbuffer_remove(out, out_text, len);
    out_text[len] = '\0';
    evbuffer_free(out);
    /* Whatever we send must itself be a valid head. */
    ck_assert_int_eq(mcpgw_http_parse_head(out_text, len, is_response, &h, NULL), MCPGW_HTTP_OK);
    return out_text;
}

static const struct mcpgw_bal_peer v4 = {"10.1.2.3", 0, 0};

START_TEST(test_rewrite_request_strips_hop_by_hop_headers)
{
    const char *r = rewrite("POST /mcp HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Private\r\n"
                            "Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\n"
                            "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"
                            "X-Private: secret\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\n",
                            0, 0, &v4);
    ck_assert_ptr_null(strcasestr(r, "Connection:"));
    ck_assert_ptr_null(strcasestr(r, "Keep-Alive"));
    ck_assert_ptr_null(strcasestr(r, "\r\nTE:"));
    ck_assert_ptr_null(strcasestr(r, "Trailer:"));
    ck_assert_ptr_null(strcasestr(r, "Proxy-"));
    ck_assert_ptr_null(strcasestr(r, "X-Private"));
    ck_assert_ptr_null(strcasestr(r, "Upgrade"));
    ck_assert_ptr_nonnull(strstr(r, "Content-Length: 2\r\n"));
}
END_TEST

START_TEST(test_rewrite_never_drops_framing_named_by_a_connection_header)
{
    /* Regression (found by fuzz_http): "Connection: Content-Length" made the body's length
     * vanish on the way to the node, which then read the body as the next request. */
    const char *r = rewrite("POST /mcp HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Host\r\n"
                            "Content-Length: 5\r\n\r\n",
                            0, 0, &v4);
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Length: 5\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nHost: a\r\n"));
    r = rewrite("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\n", 1, 0,
                NULL);
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Length: 2\r\n"));
}
END_TEST

START_TEST(test_rewrite_request_forwards_host_origin_and_session_unchanged)
{
    const char *r = rewrite("POST /mcp?x=1 HTTP/1.1\r\nHost: evil.example.com:8800\r\n"
                            "Origin: http://localhost:3000\r\nMcp-Session-Id: n1.abc\r\n"
                            "MCP-Protocol-Version: 2025-11-25\r\nContent-Length: 0\r\n\r\n",
                            0, 0, &v4);
    ck_assert(strncmp(r, "POST /mcp?x=1 HTTP/1.1\r\n", 24) == 0);
    ck_assert_ptr_nonnull(strstr(r, "\r\nHost: evil.example.com:8800\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nOrigin: http://localhost:3000\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nMcp-Session-Id: n1.abc\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nMCP-Protocol-Version: 2025-11-25\r\n"));
}
END_TEST

START_TEST(test_rewrite_request_adds_x_forwarded_for)
{
    const char *r = rewrite("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0, &v4);
    ck_assert_ptr_nonnull(strstr(r, "\r\nX-Forwarded-For: 10.1.2.3\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nForwarded: for=10.1.2.3;proto=http\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nX-Forwarded-Proto: http\r\n"));
}
END_TEST

START_TEST(test_rewrite_request_appends_to_earlier_x_forwarded_for_values)
{
    const char *r = rewrite("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
                            "x-forwarded-for: 2.2.2.2, 3.3.3.3\r\nForwarded: for=1.1.1.1\r\n"
                            "X-Forwarded-Proto: https\r\n\r\n",
                            0, 0, &v4);
    ck_assert_ptr_nonnull(
        strstr(r, "\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.1.2.3\r\n"));
    ck_assert_ptr_null(strstr(r, "x-forwarded-for"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nForwarded: for=1.1.1.1, for=10.1.2.3;proto=http\r\n"));
    /* The client's claim about the scheme is replaced by ours. */
    ck_assert_ptr_null(strstr(r, "X-Forwarded-Proto: https"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nX-Forwarded-Proto: http\r\n"));
}
END_TEST

START_TEST(test_rewrite_request_quotes_ipv6_in_forwarded_and_names_tls)
{
    static const struct mcpgw_bal_peer v6 = {"::1", 1, 1};
    const char *r = rewrite("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0, &v6);
    ck_assert_ptr_nonnull(strstr(r, "\r\nX-Forwarded-For: ::1\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nForwarded: for=\"[::1]\";proto=https\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nX-Forwarded-Proto: https\r\n"));
}
END_TEST

START_TEST(test_rewrite_request_keeps_chunked_framing)
{
    const char *r =
        rewrite("POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, &v4);
    ck_assert_ptr_nonnull(strstr(r, "\r\nTransfer-Encoding: chunked\r\n"));
    ck_assert_ptr_null(strstr(r, "Content-Length"));
}
END_TEST

START_TEST(test_rewrite_request_keeps_the_upgrade_pair_of_an_upgrade_request)
{
    const char *r = rewrite("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                            "Upgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n",
                            0, 0, &v4);
    ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nSec-WebSocket-Key: x\r\n"));
    ck_assert_ptr_null(strstr(r, "keep-alive"));
}
END_TEST

START_TEST(test_rewrite_request_speaks_http11_to_nodes)
{
    const char *r =
        rewrite("GET /healthz HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", 0, 0, &v4);
    ck_assert(strncmp(r, "GET /healthz HTTP/1.1\r\n", 23) == 0);
    ck_assert_ptr_null(strstr(r, "Connection"));
}
END_TEST

START_TEST(test_rewrite_response_keeps_status_reason_and_end_to_end_headers)
{
    const char *r = rewrite("HTTP/1.1 404 Session Not Found\r\nContent-Type: application/json\r\n"
                            "Mcp-Session-Id: n1.x\r\nConnection: keep-alive\r\n"
                            "Keep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\n",
                            1, 0, NULL);
    ck_assert(strncmp(r, "HTTP/1.1 404 Session Not Found\r\n", 32) == 0);
    ck_assert_ptr_nonnull(strstr(r, "\r\nMcp-Session-Id: n1.x\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Length: 3\r\n"));
    ck_assert_ptr_null(strcasestr(r, "keep-alive"));
    ck_assert_ptr_null(strstr(r, "Connection"));
}
END_TEST

START_TEST(test_rewrite_response_says_close_when_the_client_connection_ends)
{
    const char *r =
        rewrite("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, MCPGW_BAL_RESP_CLOSE, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: close\r\n\r\n"));
}
END_TEST

START_TEST(test_rewrite_response_streams_sse_chunked)
{
    const char *r = rewrite("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n",
                            1, 0, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\r\nTransfer-Encoding: chunked\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Type: text/event-stream\r\n"));
}
END_TEST

START_TEST(test_rewrite_response_drops_chunking_for_an_http10_client)
{
    const char *r = rewrite("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1,
                            MCPGW_BAL_RESP_DECHUNK | MCPGW_BAL_RESP_CLOSE, NULL);
    ck_assert_ptr_null(strstr(r, "Transfer-Encoding"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: close\r\n"));
    r = rewrite("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, MCPGW_BAL_RESP_KEEPALIVE10,
                NULL);
    ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: keep-alive\r\n"));
}
END_TEST

START_TEST(test_rewrite_response_101_keeps_the_upgrade_pair)
{
    const char *r = rewrite("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\nSec-WebSocket-Accept: y\r\n\r\n",
                            1, 0, NULL);
    ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nSec-WebSocket-Accept: y\r\n"));
}
END_TEST

static Suite *rewrite_suite(void)
{
    Suite *s = suite_create("rewrite");
    TCase *tc = tcase_create("request");
    tcase_add_test(tc, test_rewrite_request_strips_hop_by_hop_headers);
    tcase_add_test(tc, test_rewrite_request_forwards_host_origin_and_session_unchanged);
    tcase_add_test(tc, test_rewrite_never_drops_framing_named_by_a_connection_header);
    tcase_add_test(tc, test_rewrite_request_adds_x_forwarded_for);
    tcase_add_test(tc, test_rewrite_request_appends_to_earlier_x_forwarded_for_values);
    tcase_add_test(tc, test_rewrite_request_quotes_ipv6_in_forwarded_and_names_tls);
    tcase_add_test(tc, test_rewrite_request_keeps_chunked_framing);
    tcase_add_test(tc, test_rewrite_request_keeps_the_upgrade_pair_of_an_upgrade_request);
    tcase_add_test(tc, test_rewrite_request_speaks_http11_to_nodes);
    suite_add_tcase(s, tc);
    tc = tcase_create("response");
    tcase_add_test(tc, test_rewrite_response_keeps_status_reason_and_end_to_end_headers);
    tcase_add_test(tc, test_rewrite_response_says_close_when_the_client_connection_ends);
    tcase_add_test(tc, test_rewrite_response_streams_sse_chunked);
    tcase_add_test(tc, test_rewrite_response_drops_chunking_for_an_http10_client);
    tcase_add_test(tc, test_rewrite_response_101_keeps_the_upgrade_pair);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rewrite_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
