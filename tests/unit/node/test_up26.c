/* test_up26.c - the 2026-07-28 pieces of the upstream client: request _meta and headers,
 * server/discover's answer, the listen filter, and input_required rounds. */
#include "node/up26.h"

#include "common/jsonrpc.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../check-run.h"

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    ck_assert_ptr_nonnull(o);
    return o;
}

START_TEST(test_up26_params_merge_the_meta_and_keep_the_callers)
{
    json_object *caps = parse("{\"elicitation\":{}}");
    json_object *p =
        mcpgw_up26_params(parse("{\"name\":\"t\",\"_meta\":{\"progressToken\":7}}"), caps);
    json_object *meta = json_object_object_get(p, "_meta");
    ck_assert_str_eq(mcpgw_json_str(meta, "io.modelcontextprotocol/protocolVersion"), "2026-07-28");
    ck_assert_int_eq(json_object_get_int(json_object_object_get(meta, "progressToken")), 7);
    ck_assert_ptr_nonnull(mcpgw_json_obj(
        mcpgw_json_obj(meta, "io.modelcontextprotocol/clientCapabilities"), "elicitation"));
    ck_assert_str_eq(
        mcpgw_json_str(mcpgw_json_obj(meta, "io.modelcontextprotocol/clientInfo"), "name"),
        "mcpgw");
    json_object_put(p);
    p = mcpgw_up26_params(NULL, NULL); /* no params: an object with the _meta */
    ck_assert_ptr_nonnull(mcpgw_json_obj(p, "_meta"));
    json_object_put(p);
    json_object_put(caps);
}
END_TEST

static void headers_are(const char *method, const char *params, const char *a, const char *b)
{
    char *h[2] = {NULL, NULL};
    json_object *p = parse(params);
    int n = mcpgw_up26_headers(method, p, h);
    ck_assert_int_eq(n, b ? 2 : 1);
    ck_assert_str_eq(h[0], a);
    if (b)
        ck_assert_str_eq(h[1], b);
    free(h[0]);
    free(h[1]);
    json_object_put(p);
}

START_TEST(test_up26_headers_name_the_method_and_target_in_base64_when_unsafe)
{
    headers_are("tools/list", "{}", "Mcp-Method: tools/list", NULL);
    headers_are("tools/call", "{\"name\":\"get_weather\"}", "Mcp-Method: tools/call",
                "Mcp-Name: get_weather");
    headers_are("resources/read", "{\"uri\":\"file:///a b\"}", "Mcp-Method: resources/read",
                "Mcp-Name: file:///a b");
    /* The revision's own examples: non-ASCII, a leading space, the sentinel's shape. */
    headers_are("prompts/get", "{\"name\":\"Hello, \\u4e16\\u754c\"}", "Mcp-Method: prompts/get",
                "Mcp-Name: =?base64?SGVsbG8sIOS4lueVjA==?=");
    headers_are("tools/call", "{\"name\":\" padded \"}", "Mcp-Method: tools/call",
                "Mcp-Name: =?base64?IHBhZGRlZCA=?=");
    headers_are("tools/call", "{\"name\":\"=?base64?literal?=\"}", "Mcp-Method: tools/call",
                "Mcp-Name: =?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
}
END_TEST

/* The Mcp-Param-* headers of args under schema, joined by '|'. */
static void params_are(const char *schema, const char *args, const char *want)
{
    json_object *s = json_tokener_parse(schema), *a = json_tokener_parse(args);
    char *out[8] = {NULL}, got[512] = "";
    int n = mcpgw_up26_param_headers(s, a, out, 8);
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(got, "|");
        strncat(got, out[i], sizeof(got) - strlen(got) - 2);
        free(out[i]);
    }
    ck_assert_str_eq(got, want);
    json_object_put(s);
    json_object_put(a);
}

START_TEST(test_up26_param_headers_follow_the_marked_properties)
{
    const char *schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"region\":{\"type\":\"string\",\"x-mcp-header\":\"Region\"},"
        "\"n\":{\"type\":\"integer\",\"x-mcp-header\":\"N\"},"
        "\"flag\":{\"type\":\"boolean\",\"x-mcp-header\":\"Flag\"},"
        "\"bad\":{\"type\":\"string\",\"x-mcp-header\":\"a b\"},"
        "\"list\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":"
        "{\"x\":{\"type\":\"string\",\"x-mcp-header\":\"X\"}}}},"
        "\"o\":{\"type\":\"object\",\"properties\":{\"z\":{\"type\":\"string\","
        "\"x-mcp-header\":\"Zone\"}}},"
        "\"plain\":{\"type\":\"string\"}}}";
    params_are(schema, "{\"region\":\"us-west1\",\"n\":-7,\"flag\":false,\"plain\":\"p\"}",
               "Mcp-Param-Region: us-west1|Mcp-Param-N: -7|Mcp-Param-Flag: false");
    /* Base64 when not header-safe; nested through properties only (not items); absent, null,
     * a non-token name, or a number that is not an integer: no header. */
    params_are(schema,
               "{\"region\":\"line1\\nline2\",\"n\":null,\"bad\":\"v\",\"flag\":1.5,"
               "\"list\":[{\"x\":\"1\"}],\"o\":{\"z\":\"=?base64?literal?=\"}}",
               "Mcp-Param-Region: =?base64?bGluZTEKbGluZTI=?=|"
               "Mcp-Param-Zone: =?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    /* An integer property's value with a zero fraction is that integer, written as one (the
     * revision converts integers to their decimal form); a fraction, or a value outside
     * JavaScript's safe range, is no integer the header can carry: no header. */
    params_are(schema, "{\"n\":42.0}", "Mcp-Param-N: 42");
    params_are(schema, "{\"n\":-4.2e1}", "Mcp-Param-N: -42");
    params_are(schema, "{\"n\":42.5}", "");
    params_are(schema, "{\"n\":1e300}", "");
    params_are(schema, "{\"region\":42.0}", "");
    params_are(schema, "{}", "");
    params_are("{\"type\":\"object\"}", "{\"region\":\"x\"}", "");
}
END_TEST

START_TEST(test_up26_discover_and_result_kinds)
{
    json_object *ok = parse("{\"supportedVersions\":[\"2025-11-25\",\"2026-07-28\"]}");
    json_object *old = parse("{\"supportedVersions\":[\"2025-11-25\"]}");
    json_object *none = parse("{\"protocolVersion\":\"2025-11-25\"}");
    json_object *ir = parse("{\"resultType\":\"input_required\",\"requestState\":\"s\"}");
    json_object *done = parse("{\"resultType\":\"complete\"}");
    ck_assert(mcpgw_up26_discover_ok(ok));
    ck_assert(!mcpgw_up26_discover_ok(old));
    ck_assert(!mcpgw_up26_discover_ok(none));
    ck_assert(mcpgw_up26_input_required(ir));
    ck_assert(!mcpgw_up26_input_required(done));
    ck_assert(!mcpgw_up26_input_required(none)); /* no resultType: complete */
    json_object_put(ok);
    json_object_put(old);
    json_object_put(none);
    json_object_put(ir);
    json_object_put(done);
}
END_TEST

START_TEST(test_up26_listen_filter_asks_for_list_changes_and_the_uris)
{
    char *uris[] = {"demo://a", "demo://b"};
    json_object *p = mcpgw_up26_listen_params(uris, 2, NULL);
    json_object *f = mcpgw_json_obj(p, "notifications");
    json_object *subs = mcpgw_json_arr(f, "resourceSubscriptions");
    ck_assert(json_object_get_boolean(json_object_object_get(f, "toolsListChanged")));
    ck_assert(json_object_get_boolean(json_object_object_get(f, "resourcesListChanged")));
    ck_assert_int_eq(json_object_array_length(subs), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(subs, 1)), "demo://b");
    ck_assert_ptr_nonnull(mcpgw_json_obj(p, "_meta"));
    json_object_put(p);
}
END_TEST

START_TEST(test_up26_round_asks_each_request_then_retries_with_answers_and_state)
{
    char err[200];
    json_object *res =
        parse("{\"resultType\":\"input_required\",\"requestState\":\"st\",\"inputRequests\":{"
              "\"who\":{\"method\":\"elicitation/create\",\"params\":{\"message\":\"Name?\"}},"
              "\"roots\":{\"method\":\"roots/list\"}}}");
    json_object *orig = parse("{\"name\":\"t\",\"inputResponses\":{\"old\":{}},"
                              "\"requestState\":\"old\",\"arguments\":{\"x\":1}}");
    json_object *id = json_object_new_string("in-1"), *ans, *retry;
    struct mcpgw_up26_round *r = mcpgw_up26_round_new(res, err, sizeof(err));
    struct mcpgw_jsonrpc_msg m;
    json_object *bad = NULL;
    const char *why;
    size_t len;
    char *text;
    ck_assert_ptr_nonnull(r);
    text = mcpgw_up26_round_next(r, id, &len);
    ck_assert_int_eq(mcpgw_jsonrpc_parse(text, len, &m, &bad, &why), 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    ck_assert_str_eq(m.method, "elicitation/create");
    ck_assert_str_eq(json_object_get_string(m.id), "in-1");
    ck_assert_str_eq(mcpgw_json_str(m.params, "message"), "Name?");
    mcpgw_jsonrpc_msg_deinit(&m);
    free(text);
    ans = parse("{\"action\":\"accept\",\"content\":{\"name\":\"a\"}}");
    mcpgw_up26_round_answer(r, ans);
    json_object_put(ans);
    text = mcpgw_up26_round_next(r, id, &len);
    ck_assert_ptr_nonnull(strstr(text, "\"roots/list\""));
    free(text);
    ans = parse("{\"roots\":[]}");
    mcpgw_up26_round_answer(r, ans);
    json_object_put(ans);
    ck_assert_ptr_null(mcpgw_up26_round_next(r, id, &len));
    retry = mcpgw_up26_round_retry(r, orig);
    ck_assert_str_eq(mcpgw_json_str(retry, "requestState"), "st");
    ck_assert_str_eq(
        mcpgw_json_str(mcpgw_json_obj(mcpgw_json_obj(retry, "inputResponses"), "who"), "action"),
        "accept");
    ck_assert_ptr_nonnull(mcpgw_json_obj(mcpgw_json_obj(retry, "inputResponses"), "roots"));
    ck_assert_ptr_null(mcpgw_json_obj(mcpgw_json_obj(retry, "inputResponses"), "old"));
    ck_assert_int_eq(
        json_object_get_int(json_object_object_get(mcpgw_json_obj(retry, "arguments"), "x")), 1);
    /* the original params are untouched (the next round starts from them again) */
    ck_assert_str_eq(mcpgw_json_str(orig, "requestState"), "old");
    json_object_put(retry);
    mcpgw_up26_round_free(r);
    json_object_put(res);
    json_object_put(orig);
    json_object_put(id);
}
END_TEST

START_TEST(test_up26_round_with_state_only_retries_at_once_and_drops_old_answers)
{
    char err[200];
    json_object *res = parse("{\"resultType\":\"input_required\",\"requestState\":\"s2\"}");
    json_object *orig = parse("{\"inputResponses\":{\"a\":{}},\"requestState\":\"s1\"}");
    json_object *id = json_object_new_string("x"), *retry;
    size_t len;
    struct mcpgw_up26_round *r = mcpgw_up26_round_new(res, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(mcpgw_up26_round_next(r, id, &len));
    retry = mcpgw_up26_round_retry(r, orig);
    ck_assert_str_eq(mcpgw_json_str(retry, "requestState"), "s2");
    ck_assert_ptr_null(json_object_object_get(retry, "inputResponses"));
    json_object_put(retry);
    mcpgw_up26_round_free(r);
    json_object_put(res);
    json_object_put(orig);
    json_object_put(id);
}
END_TEST

START_TEST(test_up26_round_refuses_results_that_break_the_revision)
{
    static const struct {
        const char *res, *want;
    } cases[] = {
        {"{\"resultType\":\"input_required\"}", "neither inputRequests nor requestState"},
        {"{\"resultType\":\"input_required\",\"inputRequests\":[1]}", "not an object"},
        {"{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":{\"method\":\"tools/"
         "call\"}}}",
         "input request 'k' is not"},
        {"{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":{\"method\":\"roots/list\","
         "\"params\":3}}}",
         "input request 'k' is not"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[200] = "";
        json_object *res = parse(cases[i].res);
        ck_assert_ptr_null(mcpgw_up26_round_new(res, err, sizeof(err)));
        ck_assert_msg(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].want);
        json_object_put(res);
    }
}
END_TEST

START_TEST(test_up26_tool_marks_keep_the_revisions_rules)
{
    static const struct {
        const char *schema, *want; /* want NULL: valid */
    } cases[] = {
        {"{\"type\":\"object\",\"properties\":{\"r\":{\"type\":\"string\",\"x-mcp-header\":"
         "\"Region\"},\"o\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
         "\"x-mcp-header\":\"N\"},\"f\":{\"type\":\"boolean\",\"x-mcp-header\":\"F\"}}}}}",
         NULL},
        {"{\"type\":\"object\"}", NULL},
        /* a property named like the keyword is a property, not a marking */
        {"{\"properties\":{\"x-mcp-header\":{\"type\":\"string\"}}}", NULL},
        {"{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"\"}}}", "token"},
        {"{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"A B\"}}}", "token"},
        {"{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"A\\r\\nX: y\"}}}",
         "token"},
        {"{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":7}}}", "token"},
        {"{\"properties\":{\"a\":{\"type\":\"number\",\"x-mcp-header\":\"A\"}}}", "type number"},
        {"{\"properties\":{\"a\":{\"x-mcp-header\":\"A\"}}}", "type (none)"},
        {"{\"properties\":{\"a\":{\"type\":\"object\",\"x-mcp-header\":\"A\"}}}", "type object"},
        {"{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"Dup\"},\"b\":{\"type\":"
         "\"string\",\"x-mcp-header\":\"dUP\"}}}",
         "twice"},
        {"{\"type\":\"string\",\"x-mcp-header\":\"Root\"}", "not reached"},
        {"{\"properties\":{\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
         "\"x-mcp-header\":\"L\"}}}}",
         "not reached"},
        {"{\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\",\"x-mcp-header\":\"A\"}]}}}",
         "not reached"},
        {"{\"$defs\":{\"d\":{\"type\":\"string\",\"x-mcp-header\":\"D\"}},\"properties\":{\"a\":{"
         "\"$ref\":\"#/$defs/d\"}}}",
         "not reached"},
        {"{\"patternProperties\":{\"^x\":{\"type\":\"string\",\"x-mcp-header\":\"P\"}}}",
         "not reached"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[256] = "";
        json_object *schema = parse(cases[i].schema);
        int ok = mcpgw_up26_tool_marks_ok(schema, why, sizeof(why));
        if (!cases[i].want)
            ck_assert_msg(ok, "case %zu refused: %s", i, why);
        else
            ck_assert_msg(!ok && strstr(why, cases[i].want), "case %zu: '%s' lacks '%s'", i, why,
                          cases[i].want);
        json_object_put(schema);
    }
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_up26_params_merge_the_meta_and_keep_the_callers,
        test_up26_headers_name_the_method_and_target_in_base64_when_unsafe,
        test_up26_param_headers_follow_the_marked_properties,
        test_up26_discover_and_result_kinds,
        test_up26_listen_filter_asks_for_list_changes_and_the_uris,
        test_up26_round_asks_each_request_then_retries_with_answers_and_state,
        test_up26_round_with_state_only_retries_at_once_and_drops_old_answers,
        test_up26_round_refuses_results_that_break_the_revision,
        test_up26_tool_marks_keep_the_revisions_rules,
    };
    return mcpgw_check_run("up26", "up26", tests, sizeof(tests) / sizeof(tests[0]));
}
