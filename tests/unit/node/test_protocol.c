/* test_protocol.c - node/protocol.c's dispatch: the method table, the session states it
 * enforces, parameter errors, notifications and client responses, driven over HTTP through a
 * whole node in this process (nodekit.h: real httpd, transport, memory store, no mocks).
 * Ports 18330-18339. */
#include "node/protocol.h"

#include "node/session.h"

#include <check.h>

#include "tests/unit/check-run.h"
#include "tests/unit/node/nodekit.h"

#define PORT 18330

static struct nk *ready_node(int off, char *sid, size_t sidlen)
{
    struct nk *k = nk_new(PORT + off);
    nk_start(k, 1);
    nk_init(k, 1, sid, sidlen);
    return k;
}

START_TEST(test_protocol_unknown_method_is_method_not_found)
{
    char sid[128];
    struct nk *k = ready_node(0, sid, sizeof(sid));
    struct nk_resp r;
    uint64_t errors = *k->n.st.errors;
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"no/such\"}", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":-32601"));
    ck_assert_ptr_nonnull(strstr(r.body, "Method not found: no/such"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"id\":5"));
    ck_assert_uint_eq(*k->n.st.errors, errors + 1);
    nk_free(k);
}
END_TEST

START_TEST(test_protocol_only_ping_before_initialized)
{
    char sid[128];
    struct nk *k = nk_new(PORT + 1);
    struct nk_resp r;
    nk_start(k, 1);
    nk_init(k, 0, sid, sizeof(sid));
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":-32600"));
    ck_assert_ptr_nonnull(strstr(r.body, "notifications/initialized"));
    /* an unknown method is refused for the state first, too: nothing runs before it */
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"no/such\"}", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":-32600"));
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"result\":{}"));
    ck_assert_int_ne(nk_session(k, sid)->state, MCPGW_SESSION_READY);
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_int_eq(nk_session(k, sid)->state, MCPGW_SESSION_READY);
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/list\"}", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"tools\""));
    nk_free(k);
}
END_TEST

START_TEST(test_protocol_every_table_method_is_served_when_ready)
{
    static const char *const calls[][2] = {
        {"tools/list", "\"tools\""},
        {"resources/list", "\"resources\""},
        {"resources/templates/list", "\"resourceTemplates\""},
        {"prompts/list", "\"prompts\""},
        {"ping", "\"result\":{}"},
    };
    char sid[128], body[256];
    struct nk *k = ready_node(2, sid, sizeof(sid));
    struct nk_resp r;
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"%s\"}", i + 10,
                 calls[i][0]);
        nk_post(k, sid, body, &r);
        ck_assert_msg(strstr(r.body, calls[i][1]) != NULL, "%s answered %s", calls[i][0], r.body);
    }
    nk_post(k, sid,
            "{\"jsonrpc\":\"2.0\",\"id\":20,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"echo\",\"arguments\":{\"text\":\"round trip\"}}}",
            &r);
    ck_assert_ptr_nonnull(strstr(r.body, "round trip"));
    ck_assert_uint_ge(*k->n.st.requests, 6);
    nk_free(k);
}
END_TEST

START_TEST(test_protocol_params_that_are_not_an_object_are_invalid)
{
    char sid[128];
    struct nk *k = ready_node(3, sid, sizeof(sid));
    struct nk_resp r;
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":[1]}", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":-32602"));
    ck_assert_ptr_nonnull(strstr(r.body, "params must be an object"));
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/read\",\"params\":{}}",
            &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":-32602"));
    ck_assert_ptr_nonnull(strstr(r.body, "params.uri is required"));
    nk_post(k, sid,
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"logging/setLevel\",\"params\":{\"level\":"
            "\"loud\"}}",
            &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":-32602"));
    ck_assert_int_eq(nk_session(k, sid)->log_level, -1);
    nk_post(k, sid,
            "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"logging/setLevel\",\"params\":{\"level\":"
            "\"error\"}}",
            &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"result\":{}"));
    ck_assert_int_ge(nk_session(k, sid)->log_level, 0);
    nk_free(k);
}
END_TEST

START_TEST(test_protocol_initialize_inside_a_session_is_refused)
{
    char sid[128];
    struct nk *k = ready_node(4, sid, sizeof(sid));
    struct nk_resp r;
    nk_post(k, sid,
            "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"initialize\",\"params\":{"
            "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
            "\"u\",\"version\":\"1\"}}}",
            &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "already initialized"));
    ck_assert_ptr_nonnull(nk_session(k, sid)); /* the session itself goes on */
    nk_free(k);
}
END_TEST

START_TEST(test_protocol_notifications_and_stray_responses_get_202)
{
    char sid[128];
    struct nk *k = ready_node(5, sid, sizeof(sid));
    struct nk_resp r;
    uint64_t notes = *k->n.st.notifications;
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/roots/list_changed\"}", &r);
    ck_assert_int_eq(r.status, 202);
    nk_post(k, sid,
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
            "\"requestId\":12345}}",
            &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_uint_eq(*k->n.st.notifications, notes + 2);
    /* an answer to a request never sent: accepted and ignored, the session goes on */
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":777,\"result\":{}}", &r);
    ck_assert_int_eq(r.status, 202);
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"result\":{}"));
    nk_free(k);
}
END_TEST

START_TEST(test_protocol_cancel_aborts_the_call_in_flight)
{
    char sid[128];
    struct nk *k = ready_node(6, sid, sizeof(sid));
    struct nk_resp r;
    int fd = nk_connect(k);
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"sleep\",\"arguments\":{\"ms\":60000}}}";
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: "
                     "2025-11-25\r\nMcp-Session-Id: %s\r\nContent-Length: %zu\r\n\r\n%s",
                     sid, strlen(body), body);
    uint64_t end = nk_now_ms() + NK_TIMEOUT_MS;
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    while (!nk_session(k, sid)->calls && nk_now_ms() < end)
        nk_run_for(k, 5);
    ck_assert_ptr_nonnull(nk_session(k, sid)->calls);
    nk_post(k, sid,
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
            "\"requestId\":42}}",
            &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_ptr_null(nk_session(k, sid)->calls);
    close(fd);
    nk_free(k);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_protocol_unknown_method_is_method_not_found,
        test_protocol_only_ping_before_initialized,
        test_protocol_every_table_method_is_served_when_ready,
        test_protocol_params_that_are_not_an_object_are_invalid,
        test_protocol_initialize_inside_a_session_is_refused,
        test_protocol_notifications_and_stray_responses_get_202,
        test_protocol_cancel_aborts_the_call_in_flight,
    };
    return mcpgw_check_run("protocol", "dispatch", tests, sizeof(tests) / sizeof(tests[0]));
}
