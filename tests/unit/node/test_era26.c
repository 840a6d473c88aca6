/* test_era26.c - the 2026-07-28 era's header checks (node/era26.c) on a whole node in this
 * process (nodekit.h); ports 13505-13507, 12390-12391 and 12408. The era as a whole is
 * tests/integration/8x-2026-*. */
#include "node/protocol.h"

#include <check.h>

#include "tests/unit/node/nodekit.h"

static const char custom[] =
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":"
    "\"test_custom_headers\",\"arguments\":{\"region\":\"eu\",\"priority\":42},\"_meta\":{"
    "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
    "\"io.modelcontextprotocol/clientCapabilities\":{}}}}";

/* POST custom with Mcp-Param-Priority: priority; the answer in r. */
static void call_custom(struct nk *k, const char *priority, struct nk_resp *r)
{
    char extra[512];
    snprintf(extra, sizeof(extra),
             "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
             "Mcp-Name: test_custom_headers\r\nMcp-Param-Region: eu\r\n"
             "Mcp-Param-Priority: %s\r\n",
             priority);
    ck_assert(nk_http(k, "POST", NULL, extra, custom, NULL, r));
}

/* An integer header is compared numerically (42.0 is 42), but only as a decimal number: what a
 * balancer routes or limits by must be what the node runs with, and 0x2A, inf or +42 are not
 * how the body's 42 is written in a header. */
START_TEST(test_era26_integer_param_is_decimal_only)
{
    struct nk *k = nk_new(13505);
    struct nk_resp r;
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    call_custom(k, "42", &r);
    ck_assert_msg(r.status == 200 && strstr(r.body, "headers matched"), "%d %s", r.status, r.body);
    call_custom(k, "42.0", &r);
    ck_assert_msg(r.status == 200 && strstr(r.body, "headers matched"), "%d %s", r.status, r.body);
    call_custom(k, "4.2e1", &r);
    ck_assert_msg(r.status == 200 && strstr(r.body, "headers matched"), "%d %s", r.status, r.body);
    call_custom(k, "0x2A", &r);
    ck_assert_msg(r.status == 400 && strstr(r.body, "-32020"), "%d %s", r.status, r.body);
    call_custom(k, "+42", &r);
    ck_assert_msg(r.status == 400 && strstr(r.body, "-32020"), "%d %s", r.status, r.body);
    call_custom(k, "43", &r);
    ck_assert_msg(r.status == 400 && strstr(r.body, "-32020"), "%d %s", r.status, r.body);
    nk_free(k);
}
END_TEST

/* POST test_custom_headers with body priority body_priority (JSON text) and header
 * Mcp-Param-Priority: header; the answer in r. */
static void call_custom_body(struct nk *k, const char *body_priority, const char *header,
                             struct nk_resp *r)
{
    char extra[512], body[1024];
    snprintf(extra, sizeof(extra),
             "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
             "Mcp-Name: test_custom_headers\r\nMcp-Param-Region: eu\r\n"
             "Mcp-Param-Priority: %s\r\n",
             header);
    snprintf(body, sizeof(body),
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"test_custom_headers\",\"arguments\":{\"region\":\"eu\",\"priority\":%s},\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
             "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
             body_priority);
    ck_assert(nk_http(k, "POST", NULL, extra, body, NULL, r));
}

/* An integer parameter's body value is compared numerically too: 42.0 in the body is the
 * integer 42 (JSON Schema's integer is any number with a zero fraction), so its header 42
 * matches. A fraction is no integer, and a value outside JavaScript's safe range (the revision's
 * bound for mirrored integers) cannot be compared exactly: both are mismatches. */
START_TEST(test_era26_integer_param_body_value_is_compared_as_a_number)
{
    static const struct {
        const char *body, *header;
        int status;
    } cases[] = {
        {"42.0", "42", 200},
        {"42.0", "42.0", 200},
        {"4.2e1", "42", 200},
        {"-0.0", "0", 200},
        {"9007199254740991", "9007199254740991", 200},
        {"-9007199254740991.0", "-9007199254740991", 200},
        {"42.5", "42", 400},
        {"42.5", "42.5", 400},
        {"9007199254740993", "9007199254740993", 400},
        {"9007199254740993", "9007199254740992", 400},
        {"1e300", "1e300", 400},
        {"\"42\"", "42", 400},
    };
    struct nk *k = nk_new(13505);
    struct nk_resp r;
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        call_custom_body(k, cases[i].body, cases[i].header, &r);
        ck_assert_msg(r.status == cases[i].status &&
                          strstr(r.body, cases[i].status == 200 ? "headers matched" : "-32020"),
                      "body %s header %s: %d %s", cases[i].body, cases[i].header, r.status, r.body);
    }
    nk_free(k);
}
END_TEST

/* subscriptions/listen on a node as the suites and fuzz_dispatch build it: acknowledged. */
START_TEST(test_era26_listen_is_acknowledged)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\",\"params\":{"
        "\"notifications\":{\"resourceSubscriptions\":[\"mcpgw://notes/a\"]},\"_meta\":{"
        "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    struct nk *k = nk_new(13506);
    struct nk_resp r;
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    ck_assert(nk_http(k, "POST", NULL,
                      "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n",
                      body, "acknowledged", &r));
    nk_free(k);
}
END_TEST

/* A listen filter's arrays are checked the same way for URIs and task ids: the refusal names
 * the field and the rule, and a value given twice counts once. */
START_TEST(test_era26_listen_filter_arrays_are_refused_clearly)
{
    static const struct {
        const char *filter, *want;
    } cases[] = {
        {"\"resourceSubscriptions\":\"mcpgw://notes/a\"",
         "resourceSubscriptions must be an array of URIs"},
        {"\"resourceSubscriptions\":[7]", "holds a value that is not a URI"},
        {"\"resourceSubscriptions\":[\"\"]", "holds a value that is not a URI"},
        {"\"taskIds\":{}", "taskIds must be an array of task ids"},
        {"\"taskIds\":[\"a\\u0001b\"]", "holds a value that is not a task id"},
    };
    static const char head[] =
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\",\"params\":{"
        "\"notifications\":{";
    static const char tail[] =
        "},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{\"extensions\":{"
        "\"io.modelcontextprotocol/tasks\":{}}}}}}";
    static const char hdrs[] =
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n";
    struct nk *k = nk_new(13507);
    struct nk_resp r;
    char body[4096];
    size_t o;
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "%s%s%s", head, cases[i].filter, tail);
        ck_assert(nk_http(k, "POST", NULL, hdrs, body, NULL, &r));
        ck_assert_msg(strstr(r.body, cases[i].want) && strstr(r.body, "-32602"), "%s: answered %s",
                      cases[i].filter, r.body);
    }
    /* 65 distinct URIs: over the limit; 64 distinct and one repeated: within it. */
    for (int distinct = 65; distinct >= 64; distinct--) {
        o = (size_t)snprintf(body, sizeof(body), "%s\"resourceSubscriptions\":[", head);
        for (int j = 0; j < distinct; j++)
            o += (size_t)snprintf(body + o, sizeof(body) - o, "\"mcpgw://notes/n%d\",", j);
        o += (size_t)snprintf(body + o, sizeof(body) - o, "\"mcpgw://notes/n0\"]%s", tail);
        ck_assert(o < sizeof(body));
        ck_assert(nk_http(k, "POST", NULL, hdrs, body, distinct == 65 ? NULL : "acknowledged", &r));
        if (distinct == 65)
            ck_assert_msg(strstr(r.body, "may name 64 resources"), "answered %s", r.body);
    }
    nk_free(k);
}
END_TEST

static const char listen_hdrs[] =
    "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n";
#define META26                                                                                     \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","                       \
    "\"io.modelcontextprotocol/clientCapabilities\":{}}"

/* Every list kind is agreed to when asked for (true), left out when not (false or absent), and
 * a flag that is not a boolean is refused naming it; server/discover claims listChanged for
 * each, to match. */
START_TEST(test_era26_listen_agrees_to_tools_and_prompts_list_changes)
{
    static const struct {
        const char *filter, *want, *not_want;
    } cases[] = {
        {"\"toolsListChanged\":true,\"promptsListChanged\":true,\"resourcesListChanged\":true",
         "\"notifications\":{\"toolsListChanged\":true,\"resourcesListChanged\":true,"
         "\"promptsListChanged\":true}",
         NULL},
        {"\"toolsListChanged\":true", "\"notifications\":{\"toolsListChanged\":true}",
         "promptsListChanged"},
        {"\"promptsListChanged\":true,\"toolsListChanged\":false",
         "\"notifications\":{\"promptsListChanged\":true}", "toolsListChanged"},
    };
    struct nk *k = nk_new(12390);
    struct nk_resp r;
    char body[1024];
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\",\"params\":{"
                 "\"notifications\":{%s}," META26 "}}",
                 cases[i].filter);
        ck_assert(nk_http(k, "POST", NULL, listen_hdrs, body, "\n\n", &r));
        ck_assert_msg(strstr(r.body, "acknowledged") && strstr(r.body, cases[i].want),
                      "%s: acknowledged %s", cases[i].filter, r.body);
        ck_assert_msg(!cases[i].not_want || !strstr(r.body, cases[i].not_want),
                      "%s: acknowledged %s", cases[i].filter, r.body);
    }
    ck_assert(nk_http(k, "POST", NULL, listen_hdrs,
                      "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\","
                      "\"params\":{\"notifications\":{\"toolsListChanged\":\"yes\"}," META26 "}}",
                      NULL, &r));
    ck_assert_msg(strstr(r.body, "-32602") &&
                      strstr(r.body, "params.notifications.toolsListChanged must be a boolean"),
                  "answered %s", r.body);
    ck_assert(nk_http(k, "POST", NULL, listen_hdrs,
                      "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\","
                      "\"params\":{\"notifications\":{\"promptsListChanged\":1}," META26 "}}",
                      NULL, &r));
    ck_assert_msg(strstr(r.body, "-32602") &&
                      strstr(r.body, "params.notifications.promptsListChanged must be a boolean"),
                  "answered %s", r.body);
    ck_assert(nk_http(
        k, "POST", NULL, "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{" META26 "}}",
        NULL, &r));
    ck_assert_msg(strstr(r.body, "\"tools\":{\"listChanged\":true}") &&
                      strstr(r.body, "\"prompts\":{\"listChanged\":true}"),
                  "discover claims %s", r.body);
    nk_free(k);
}
END_TEST

/* A listen stream on its own connection, its acknowledgement read; returns the socket. */
static int listen_stream(struct nk *k, const char *id, const char *filter)
{
    char req[1024], body[512], buf[4096] = "";
    int fd = nk_connect(k), n, blen;
    blen = snprintf(body, sizeof(body),
                    "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"method\":\"subscriptions/listen\","
                    "\"params\":{\"notifications\":{%s}," META26 "}}",
                    id, filter);
    n = snprintf(req, sizeof(req),
                 "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 "Accept: application/json, text/event-stream\r\n%sContent-Length: %d\r\n\r\n%s",
                 listen_hdrs, blen, body);
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    ck_assert_msg(nk_read_until(k, fd, "acknowledged", buf, sizeof(buf)), "listen %s: %s", id, buf);
    return fd;
}

static void trigger(struct nk *k, const char *tool)
{
    char body[512], hdrs[256];
    struct nk_resp r;
    snprintf(hdrs, sizeof(hdrs),
             "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: %s\r\n",
             tool);
    snprintf(body, sizeof(body),
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
             "\"arguments\":{}," META26 "}}",
             tool);
    ck_assert(nk_http(k, "POST", NULL, hdrs, body, NULL, &r));
    ck_assert_msg(r.status == 200 && strstr(r.body, "announced"), "%s: %d %s", tool, r.status,
                  r.body);
}

/* With the memory store a change of the tools or prompts list reaches, live, the listen streams
 * that asked for that kind (with their subscription id) and the sessions' GET streams, and no
 * stream that did not ask. */
START_TEST(test_era26_listen_delivers_tools_and_prompts_list_changes)
{
    struct nk *k = nk_new(12391);
    char sid[128], buf[8192];
    int tools, prompts, get;
    nk_start(k, 1); /* with cluster.c: the session goes with the node */
    mcpgw_protocol_configure(&k->n);
    tools = listen_stream(k, "t", "\"toolsListChanged\":true");
    prompts = listen_stream(k, "p", "\"promptsListChanged\":true,\"resourcesListChanged\":true");
    nk_init(k, 1, sid, sizeof(sid));
    get = nk_get_stream(k, sid);
    trigger(k, "test_trigger_tool_change");
    buf[0] = '\0';
    ck_assert_msg(nk_read_until(k, tools, "notifications/tools/list_changed", buf, sizeof(buf)),
                  "tools stream got %s", buf);
    ck_assert_msg(strstr(buf, "\"io.modelcontextprotocol/subscriptionId\":\"t\""), "%s", buf);
    buf[0] = '\0';
    ck_assert_msg(nk_read_until(k, get, "notifications/tools/list_changed", buf, sizeof(buf)),
                  "GET stream got %s", buf);
    trigger(k, "test_trigger_prompt_change");
    buf[0] = '\0';
    ck_assert_msg(nk_read_until(k, prompts, "notifications/prompts/list_changed", buf, sizeof(buf)),
                  "prompts stream got %s", buf);
    ck_assert_msg(!strstr(buf, "tools/list_changed"), "a prompts stream got %s", buf);
    nk_run_for(k, 200);
    {
        ssize_t got = recv(tools, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        buf[got > 0 ? got : 0] = '\0';
        ck_assert_msg(!strstr(buf, "list_changed"), "a tools stream got %s", buf);
    }
    close(tools);
    close(prompts);
    close(get);
    nk_free(k);
}
END_TEST

/* A listen stream whose client left while a notification for it waited for its batch: the node
 * stops (SIGINT exits the loop before the lower-priority batch runs) and frees the listen set.
 * The index entry of the stream's URI, kept only by the waiting job, must go with the job
 * (LeakSanitizer, in the sanitized build, saw it leak). Port 12408. */
START_TEST(test_era26_listen_entry_of_a_pending_job_is_freed_at_shutdown)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\",\"params\":{"
        "\"notifications\":{\"resourceSubscriptions\":[\"mcpgw://notes/leak\"]},\"_meta\":{"
        "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    struct mcpgw_store_event ev = {0, 0, "mcpgw://notes/leak", 2};
    struct nk *k = nk_new(12408);
    char req[2048], buf[8192] = "";
    uint64_t end;
    int fd, n;
    nk_start(k, 0);
    mcpgw_protocol_configure(&k->n);
    fd = nk_connect(k);
    n = snprintf(req, sizeof(req),
                 "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: "
                 "2026-07-28\r\nMcp-Method: subscriptions/listen\r\nContent-Length: %zu\r\n\r\n%s",
                 sizeof(body) - 1, body);
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    ck_assert(nk_read_until(k, fd, "acknowledged", buf, sizeof(buf)));
    ck_assert_uint_eq(mcpgw_listen_count(k->n.listen), 1);
    /* the client leaves; before the node sees it, an update for its URI is queued */
    close(fd);
    mcpgw_listen_resource(&k->n, &ev);
    /* SIGINT (node/main.c): the loop ends after this turn's most urgent callbacks, the close
     * among them; the batch has the lowest priority and waits */
    event_base_loopexit(k->n.base, NULL);
    for (end = nk_now_ms() + 5000; mcpgw_listen_count(k->n.listen) && nk_now_ms() < end;)
        nk_pump(k);
    ck_assert_uint_eq(mcpgw_listen_count(k->n.listen), 0);
    /* node/main.c after the loop: no turn of it runs the batch before the set is freed */
    mcpgw_listen_set_free(k->n.listen);
    k->n.listen = NULL;
    nk_free(k);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("era26");
    TCase *t = tcase_create("era26");
    tcase_add_test(t, test_era26_integer_param_is_decimal_only);
    tcase_add_test(t, test_era26_integer_param_body_value_is_compared_as_a_number);
    tcase_add_test(t, test_era26_listen_is_acknowledged);
    tcase_add_test(t, test_era26_listen_entry_of_a_pending_job_is_freed_at_shutdown);
    tcase_add_test(t, test_era26_listen_filter_arrays_are_refused_clearly);
    tcase_add_test(t, test_era26_listen_agrees_to_tools_and_prompts_list_changes);
    tcase_add_test(t, test_era26_listen_delivers_tools_and_prompts_list_changes);
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
