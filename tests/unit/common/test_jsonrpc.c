/* test_jsonrpc.c - JSON-RPC 2.0 decoding, error codes, bad_id capture and encoders. */
#include "common/jsonrpc.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, struct mcpgw_jsonrpc_msg *m, json_object **bad_id, const char **why)
{
    return mcpgw_jsonrpc_parse(s, strlen(s), m, bad_id, why);
}

/* Parse a message that must be refused with `code`; checks that nothing is left in m, that a
 * reason was given and that no id was captured. */
static void expect_refused(const char *s, int code)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = (json_object *)1;
    const char *why = NULL;
    int rc = parse(s, &m, &bad_id, &why);
    ck_assert_msg(rc == code, "%s: got %d, want %d", s, rc, code);
    ck_assert_ptr_null(m.root);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(bad_id);
}

START_TEST(test_jsonrpc_decodes_request_with_string_id)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = NULL;
    const char *why = NULL;
    int rc = parse("{\"jsonrpc\":\"2.0\",\"id\":\"a-1\",\"method\":\"tools/list\","
                   "\"params\":{\"cursor\":\"c\"}}",
                   &m, &bad_id, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    ck_assert(json_object_is_type(m.id, json_type_string));
    ck_assert_str_eq(json_object_get_string(m.id), "a-1");
    ck_assert_str_eq(m.method, "tools/list");
    ck_assert(json_object_is_type(m.params, json_type_object));
    ck_assert_str_eq(mcpgw_json_str(m.params, "cursor"), "c");
    ck_assert_ptr_null(m.result);
    ck_assert_ptr_null(m.error);
    ck_assert_ptr_null(bad_id);
    mcpgw_jsonrpc_msg_deinit(&m);
    ck_assert_ptr_null(m.root);
}
END_TEST

START_TEST(test_jsonrpc_decodes_request_with_integer_id_and_array_params)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc =
        parse("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"m\",\"params\":[1,2]}", &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    ck_assert(json_object_is_type(m.id, json_type_int));
    ck_assert_int_eq(json_object_get_int64(m.id), 42);
    ck_assert(json_object_is_type(m.params, json_type_array));
    ck_assert_int_eq(json_object_array_length(m.params), 2);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_accepts_id_zero_as_a_request_id)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc = parse("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\"}", &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    ck_assert_ptr_nonnull(m.id);
    ck_assert(json_object_is_type(m.id, json_type_int));
    ck_assert_int_eq(json_object_get_int64(m.id), 0);
    ck_assert_ptr_null(m.params);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_decodes_notification_without_id)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc =
        parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_NOTIFICATION);
    ck_assert_ptr_null(m.id);
    ck_assert_str_eq(m.method, "notifications/initialized");
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_decodes_result)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc = parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}", &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_RESULT);
    ck_assert_int_eq(json_object_get_int64(m.id), 7);
    ck_assert(json_object_is_type(m.result, json_type_object));
    ck_assert_ptr_null(m.error);
    ck_assert_ptr_null(m.method);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_decodes_error_response)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc =
        parse("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32601,\"message\":\"no\"}}",
              &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_ERROR);
    ck_assert_str_eq(json_object_get_string(m.id), "x");
    ck_assert(json_object_is_type(m.error, json_type_object));
    ck_assert_ptr_null(m.result);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_rejects_null_id_as_invalid_request)
{
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_rejects_float_id_as_invalid_request)
{
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"ping\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_rejects_object_and_boolean_ids)
{
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_rejects_batch_as_invalid_request)
{
    expect_refused("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("[]", MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_rejects_malformed_json_as_parse_error)
{
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("hello", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("   ", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",}", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":01,\"method\":\"ping\"}",
                   MCPGW_JSONRPC_PARSE_ERROR);
    /* Not JSON, though json-c reads them; nor is a number no double can hold. */
    expect_refused("{'jsonrpc':'2.0','id':1,'method':'ping'}", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"x\":NaN}}",
                   MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[1,[-Infinity]]}",
                   MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"a\":{\"b\":1e400}}}",
        MCPGW_JSONRPC_PARSE_ERROR);
}
END_TEST

START_TEST(test_jsonrpc_accepts_finite_numbers_everywhere)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc =
        parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"a\":[1.5,-2e300,0.0,"
              "{\"b\":1e-320}]}}",
              &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_rejects_trailing_garbage_as_parse_error)
{
    static const char two[] = "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}{\"jsonrpc\":\"2.0\"}";
    static const char nul[] = "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\0";
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;

    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"a\"} x", MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n]", MCPGW_JSONRPC_PARSE_ERROR);
    ck_assert_int_eq(mcpgw_jsonrpc_parse(two, sizeof(two) - 1, &m, NULL, &why),
                     MCPGW_JSONRPC_PARSE_ERROR);
    /* A NUL byte is not whitespace. */
    ck_assert_int_eq(mcpgw_jsonrpc_parse(nul, sizeof(nul) - 1, &m, NULL, &why),
                     MCPGW_JSONRPC_PARSE_ERROR);
    ck_assert_ptr_null(m.root);
}
END_TEST

START_TEST(test_jsonrpc_accepts_surrounding_whitespace)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    int rc =
        parse(" \r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} \t\r\n\n", &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_rejects_valid_json_that_is_not_an_object_as_invalid_request)
{
    /* JSON-RPC 2.0 spec example: "--> 1" is answered with -32600, not a parse error. */
    expect_refused("1", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("\"ping\"", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("true", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("null", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("null\n", MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_requires_jsonrpc_2_0)
{
    expect_refused("{\"method\":\"ping\"}", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"1.0\",\"method\":\"ping\"}", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":2.0,\"method\":\"ping\"}", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0 \",\"method\":\"ping\"}", MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_rejects_params_that_are_not_object_or_array)
{
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":\"x\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":3}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":true}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_rejects_messages_of_no_known_shape)
{
    /* empty or non-string method, method with result, result and error together, a response
     * without an id, an error that is not an object */
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"\"}", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":5}", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"result\":{}}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"result\":{},\"error\":{}}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"result\":{}}", MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\"}", MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_captures_bad_id_of_invalid_message)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = NULL;
    const char *why = NULL;
    int rc;

    rc = parse("{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"ping\"}", &m, &bad_id, &why);
    ck_assert_int_eq(rc, MCPGW_JSONRPC_INVALID_REQUEST);
    ck_assert_ptr_nonnull(bad_id);
    ck_assert_int_eq(json_object_get_int64(bad_id), 5);
    json_object_put(bad_id);

    rc = parse("{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"ping\",\"params\":\"x\"}", &m,
               &bad_id, &why);
    ck_assert_int_eq(rc, MCPGW_JSONRPC_INVALID_REQUEST);
    ck_assert_ptr_nonnull(bad_id);
    ck_assert_str_eq(json_object_get_string(bad_id), "r1");
    json_object_put(bad_id);

    /* id 0 is usable too */
    rc = parse("{\"id\":0,\"method\":\"ping\"}", &m, &bad_id, &why);
    ck_assert_int_eq(rc, MCPGW_JSONRPC_INVALID_REQUEST);
    ck_assert_ptr_nonnull(bad_id);
    ck_assert_int_eq(json_object_get_int64(bad_id), 0);
    json_object_put(bad_id);
}
END_TEST

START_TEST(test_jsonrpc_leaves_bad_id_null_on_success)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = (json_object *)1;
    const char *why = NULL;
    int rc = parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", &m, &bad_id, &why);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_null(bad_id);
    /* the id still belongs to the message */
    ck_assert_int_eq(json_object_get_int64(m.id), 3);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

/* Issue 20: json-c clamps integers beyond -2^63..2^64-1 to the nearest end, so two ids became
 * one and a reply carried another id. Such an id is refused, and the error names no id. */
START_TEST(test_jsonrpc_refuses_ids_json_c_would_clamp_as_invalid_request)
{
    static const char *const ids[] = {"18446744073709551616", "18446744073709551617",
                                      "-9223372036854775809", "123456789012345678901234567890",
                                      "-99999999999999999999999"};
    char buf[256];
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}", ids[i]);
        expect_refused(buf, MCPGW_JSONRPC_INVALID_REQUEST);
    }
}
END_TEST

START_TEST(test_jsonrpc_echoes_ids_at_both_ends_of_the_range_exactly)
{
    static const char *const ids[] = {"18446744073709551615",
                                      "9223372036854775808",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "0",
                                      "-1"};
    char buf[256], want[128];
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        struct mcpgw_jsonrpc_msg m;
        const char *why = NULL;
        size_t len;
        char *out;
        snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}", ids[i]);
        ck_assert_msg(parse(buf, &m, NULL, &why) == 0, "%s: %s", ids[i], why);
        out = mcpgw_jsonrpc_result(m.id, NULL, &len);
        snprintf(want, sizeof(want), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}", ids[i]);
        ck_assert_str_eq(out, want);
        free(out);
        mcpgw_jsonrpc_msg_deinit(&m);
    }
}
END_TEST

START_TEST(test_jsonrpc_takes_negative_zero_as_the_integer_zero)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    ck_assert_int_eq(parse("{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"ping\"}", &m, NULL, &why),
                     0);
    ck_assert(json_object_is_type(m.id, json_type_int));
    ck_assert_int_eq(json_object_get_int64(m.id), 0);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_refuses_a_clamped_integer_anywhere_naming_only_an_unchanged_id)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = NULL;
    const char *why = NULL;
    int rc;
    /* A progress token or a tool argument would be changed as silently as an id. */
    rc = parse("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"_meta\":"
               "{\"progressToken\":18446744073709551616}}}",
               &m, &bad_id, &why);
    ck_assert_int_eq(rc, MCPGW_JSONRPC_INVALID_REQUEST);
    ck_assert_ptr_nonnull(strstr(why, "2^64-1"));
    ck_assert_ptr_nonnull(bad_id);
    ck_assert_int_eq(json_object_get_int64(bad_id), 5);
    json_object_put(bad_id);
    rc = parse(
        "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"m\",\"params\":[-9223372036854775809]}", &m,
        &bad_id, &why);
    ck_assert_int_eq(rc, MCPGW_JSONRPC_INVALID_REQUEST);
    ck_assert_str_eq(json_object_get_string(bad_id), "s");
    json_object_put(bad_id);
    /* 2^64-1 is exact, but a clamped number reads the same: rather no id than a wrong one. */
    rc = parse("{\"jsonrpc\":\"2.0\",\"id\":18446744073709551615,\"method\":\"m\","
               "\"params\":[18446744073709551616]}",
               &m, &bad_id, &why);
    ck_assert_int_eq(rc, MCPGW_JSONRPC_INVALID_REQUEST);
    ck_assert_ptr_null(bad_id);
    /* Doubles keep their text in json-c; a big one is not refused. */
    rc = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[1e30,"
               "123456789012345678901234567890.5]}",
               &m, NULL, &why);
    ck_assert_int_eq(rc, 0);
    mcpgw_jsonrpc_msg_deinit(&m);
}
END_TEST

START_TEST(test_jsonrpc_refuses_numbers_json_c_reads_but_json_does_not)
{
    static const char *const nums[] = {"-01", "00",  "-00", "1.",  "1.e5",  "01.5", "1.5.2",
                                       "1e",  "1e+", "-",   "--1", "1e5e5", "0x10"};
    char buf[256];
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}", nums[i]);
        expect_refused(buf, MCPGW_JSONRPC_PARSE_ERROR);
        snprintf(buf, sizeof(buf),
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[%s]}", nums[i]);
        expect_refused(buf, MCPGW_JSONRPC_PARSE_ERROR);
    }
}
END_TEST

/* A request whose "text" member holds the raw bytes b[0..n). */
static int parse_text_bytes(const char *b, size_t n, struct mcpgw_jsonrpc_msg *m,
                            json_object **bad_id)
{
    static const char pre[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"text\":\"";
    char buf[256];
    const char *why = NULL;
    ck_assert_uint_lt(sizeof(pre) + n + 3, sizeof(buf));
    memcpy(buf, pre, sizeof(pre) - 1);
    memcpy(buf + sizeof(pre) - 1, b, n);
    memcpy(buf + sizeof(pre) - 1 + n, "\"}}", 3);
    return mcpgw_jsonrpc_parse(buf, sizeof(pre) - 1 + n + 3, m, bad_id, &why);
}

/* Issue 20: json-c's JSON_TOKENER_VALIDATE_UTF8 lets overlong forms, UTF-8 surrogates and code
 * points over U+10FFFF through, and without it anything goes; the node echoed them. */
START_TEST(test_jsonrpc_refuses_ill_formed_utf8_as_parse_error)
{
    static const struct {
        const char *b;
        size_t n;
    } bad[] = {
        {"\xC0\x80", 2},
        {"\xC1\xBF", 2},
        {"\xE0\x80\x80", 3},
        {"\xE0\x9F\xBF", 3},
        {"\xED\xA0\x80", 3},
        {"\xED\xBF\xBF", 3},
        {"\xF0\x80\x80\x80", 4},
        {"\xF0\x8F\xBF\xBF", 4},
        {"\xF4\x90\x80\x80", 4},
        {"\xF5\x80\x80\x80", 4},
        {"\xFF", 1},
        {"\xFE", 1},
        {"\x80", 1},
        {"\xBF", 1},
        {"\xE2\x82", 2},
        {"\xC3", 1},
        {"a\xC3(", 3},
        {"\xF0\x9F\x98", 3},
        {"\\\xC3\xA9", 3},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mcpgw_jsonrpc_msg m;
        json_object *bad_id = (json_object *)1;
        ck_assert_msg(parse_text_bytes(bad[i].b, bad[i].n, &m, &bad_id) ==
                          MCPGW_JSONRPC_PARSE_ERROR,
                      "case %zu not refused", i);
        ck_assert_ptr_null(m.root);
        ck_assert_ptr_null(bad_id);
    }
    /* In a member name, in the id, and at the very end of the body. */
    expect_refused(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"\xED\xA0\x80\":1}}",
        MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":\"\xC0\xAF\",\"method\":\"m\"}",
                   MCPGW_JSONRPC_PARSE_ERROR);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}\xC3",
                   MCPGW_JSONRPC_PARSE_ERROR);
}
END_TEST

START_TEST(test_jsonrpc_accepts_utf8_at_every_boundary_of_the_table)
{
    static const struct {
        const char *b;
        size_t n;
    } good[] = {
        {"\x7F", 1},
        {"\xC2\x80", 2},
        {"\xDF\xBF", 2},
        {"\xE0\xA0\x80", 3},
        {"\xED\x9F\xBF", 3},
        {"\xEE\x80\x80", 3},
        {"\xEF\xBF\xBF", 3},
        {"\xF0\x90\x80\x80", 4},
        {"\xF4\x8F\xBF\xBF", 4},
        {"\xE2\x82\xAC", 3},
        {"\xF0\x9F\x98\x80", 4},
        {"\\ud83d\\ude00", 12},
        {"\\uD83D\\uDE00", 12},
        {"\\\\ud800", 7},
        {"\\\"\\ud7ff\\ue000", 14},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct mcpgw_jsonrpc_msg m;
        ck_assert_msg(parse_text_bytes(good[i].b, good[i].n, &m, NULL) == 0, "case %zu refused", i);
        mcpgw_jsonrpc_msg_deinit(&m);
    }
}
END_TEST

/* The scan skips plain string bytes eight at a time: what it looks for is found at every
 * offset of a long string. */
START_TEST(test_jsonrpc_finds_bad_bytes_and_escapes_at_every_offset_of_a_string)
{
    static const struct {
        const char *b;
        int rc;
    } cases[] = {{"\xFF", MCPGW_JSONRPC_PARSE_ERROR},
                 {"\xED\xA0\x80", MCPGW_JSONRPC_PARSE_ERROR},
                 {"\\ud800", MCPGW_JSONRPC_INVALID_REQUEST},
                 {"\\\"\\ud800", MCPGW_JSONRPC_INVALID_REQUEST},
                 {"\\\\\\udc00", MCPGW_JSONRPC_INVALID_REQUEST},
                 {"\\\"", 0},
                 {"\x7F", 0},
                 {"\xC3\xA9", 0},
                 {"\\\\ud800", 0}};
    char text[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t k = 0; k <= 20; k++) {
            struct mcpgw_jsonrpc_msg m;
            json_object *bad_id = NULL;
            size_t n = strlen(cases[i].b);
            int rc;
            memset(text, 'a', sizeof(text));
            memcpy(text + k, cases[i].b, n);
            rc = parse_text_bytes(text, k + n + 20, &m, &bad_id);
            ck_assert_msg(rc == cases[i].rc, "case %zu at offset %zu: got %d, want %d", i, k, rc,
                          cases[i].rc);
            if (!rc)
                mcpgw_jsonrpc_msg_deinit(&m);
            json_object_put(bad_id);
        }
    }
}
END_TEST

/* A lone surrogate escape is JSON but not Unicode; json-c makes it U+FFFD, so "\ud800" and
 * "\udc00" would be one id. Refused with -32600. */
START_TEST(test_jsonrpc_refuses_lone_surrogate_escapes_as_invalid_request)
{
    static const char *const bad[] = {"\\ud800",        "\\udc00",        "\\udbff",
                                      "\\ud800x",       "\\ud800\\u0041", "\\udc00\\ud800",
                                      "\\ud800\\ud800", "\\uD800\\n",     "x\\udfff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mcpgw_jsonrpc_msg m;
        json_object *bad_id = NULL;
        ck_assert_msg(parse_text_bytes(bad[i], strlen(bad[i]), &m, &bad_id) ==
                          MCPGW_JSONRPC_INVALID_REQUEST,
                      "%s not refused", bad[i]);
        ck_assert_ptr_null(m.root);
        /* The id (1) came through unchanged, so the error can name it. */
        ck_assert_ptr_nonnull(bad_id);
        ck_assert_int_eq(json_object_get_int64(bad_id), 1);
        json_object_put(bad_id);
    }
    /* In the id itself: refused, and the error names no id (json-c's would be U+FFFD). */
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":\"\\ud800\",\"method\":\"m\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":\"a\\udc00\",\"method\":\"m\"}",
                   MCPGW_JSONRPC_INVALID_REQUEST);
}
END_TEST

START_TEST(test_jsonrpc_id_equal_tells_every_two_ids_apart)
{
    json_object *a = json_object_new_uint64(9223372036854775808ULL),
                *b = json_object_new_int64(INT64_MAX), *c = json_object_new_int64(-1),
                *d = json_object_new_uint64(UINT64_MAX), *e = json_object_new_int64(0),
                *f = json_object_new_string("0"), *g = json_object_new_string_len("a\0b", 3),
                *h = json_object_new_string_len("a\0c", 3), *i = json_object_new_string("a"),
                *a2 = json_object_new_uint64(9223372036854775808ULL),
                *g2 = json_object_new_string_len("a\0b", 3), *e2 = json_object_new_int(0);
    ck_assert(!mcpgw_jsonrpc_id_equal(a, b));
    ck_assert(!mcpgw_jsonrpc_id_equal(c, d));
    ck_assert(!mcpgw_jsonrpc_id_equal(c, e));
    ck_assert(!mcpgw_jsonrpc_id_equal(e, f));
    ck_assert(!mcpgw_jsonrpc_id_equal(g, h));
    ck_assert(!mcpgw_jsonrpc_id_equal(g, i));
    ck_assert(!mcpgw_jsonrpc_id_equal(a, NULL));
    ck_assert(mcpgw_jsonrpc_id_equal(a, a2));
    ck_assert(mcpgw_jsonrpc_id_equal(g, g2));
    ck_assert(mcpgw_jsonrpc_id_equal(e, e2));
    ck_assert(mcpgw_jsonrpc_id_equal(d, d));
    json_object_put(a), json_object_put(b), json_object_put(c), json_object_put(d);
    json_object_put(e), json_object_put(f), json_object_put(g), json_object_put(h);
    json_object_put(i), json_object_put(a2), json_object_put(g2), json_object_put(e2);
}
END_TEST

START_TEST(test_jsonrpc_kind_str_names_every_kind)
{
    ck_assert_str_eq(mcpgw_jsonrpc_kind_str(MCPGW_JSONRPC_REQUEST), "request");
    ck_assert_str_eq(mcpgw_jsonrpc_kind_str(MCPGW_JSONRPC_NOTIFICATION), "notification");
    ck_assert_str_eq(mcpgw_jsonrpc_kind_str(MCPGW_JSONRPC_RESULT), "result");
    ck_assert_str_eq(mcpgw_jsonrpc_kind_str(MCPGW_JSONRPC_ERROR), "error");
    ck_assert_str_eq(mcpgw_jsonrpc_kind_str(MCPGW_JSONRPC_KIND_COUNT), "?");
}
END_TEST

/* got and len come from one encoder call made before this one (not in its argument list, whose
 * evaluation order is unspecified). */
static void expect_json(char *got, size_t len, const char *want)
{
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    ck_assert_uint_eq(len, strlen(want));
    free(got);
}

START_TEST(test_jsonrpc_encodes_result_exactly)
{
    json_object *id = json_object_new_int(1), *res = json_object_new_object();
    size_t len = 0;
    char *got;
    json_object_object_add(res, "a", json_object_new_string("x/y"));
    got = mcpgw_jsonrpc_result(id, res, &len);
    expect_json(got, len, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":\"x/y\"}}");
    /* id was borrowed: still ours */
    ck_assert_int_eq(json_object_get_int64(id), 1);
    json_object_put(id);
}
END_TEST

START_TEST(test_jsonrpc_encodes_null_result_as_empty_object)
{
    json_object *id = json_object_new_string("s");
    size_t len = 0;
    char *got;
    got = mcpgw_jsonrpc_result(id, NULL, &len);
    expect_json(got, len, "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"result\":{}}");
    json_object_put(id);
}
END_TEST

START_TEST(test_jsonrpc_encodes_error_with_null_id_when_id_is_absent)
{
    size_t len = 0;
    char *got;
    got = mcpgw_jsonrpc_error(NULL, MCPGW_JSONRPC_PARSE_ERROR, "Parse error", NULL, &len);
    expect_json(got, len,
                "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                "\"message\":\"Parse error\"}}");
}
END_TEST

START_TEST(test_jsonrpc_encodes_error_with_id_and_data)
{
    json_object *id = json_object_new_int(0), *data = json_object_new_object();
    size_t len = 0;
    char *got;
    json_object_object_add(data, "uri", json_object_new_string("file:///a"));
    got =
        mcpgw_jsonrpc_error(id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, "Resource not found", data, &len);
    expect_json(got, len,
                "{\"jsonrpc\":\"2.0\",\"id\":0,\"error\":{\"code\":-32002,"
                "\"message\":\"Resource not found\",\"data\":{\"uri\":\"file:///a\"}}}");
    json_object_put(id);
}
END_TEST

/* Error messages quote client bytes (a Host header's obs-text, a tool name cut at 100 bytes);
 * JSON text must stay UTF-8. */
START_TEST(test_jsonrpc_error_message_is_utf8_whatever_it_quotes)
{
    size_t len = 0;
    char *got;
    got =
        mcpgw_jsonrpc_error(NULL, -32000, "Host '\xFF\xC3' and \xC3\xA9 and \xE2\x82", NULL, &len);
    expect_json(got, len,
                "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,\"message\":\"Host "
                "'\xEF\xBF\xBD\xEF\xBF\xBD' and \xC3\xA9 and \xEF\xBF\xBD\xEF\xBF\xBD\"}}");
}
END_TEST

START_TEST(test_jsonrpc_encodes_request_and_notification_exactly)
{
    json_object *id = json_object_new_int(9), *params = json_object_new_object();
    size_t len = 0;
    char *got;
    json_object_object_add(params, "level", json_object_new_string("info"));
    got = mcpgw_jsonrpc_request(id, "logging/setLevel", params, &len);
    expect_json(got, len,
                "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"logging/setLevel\","
                "\"params\":{\"level\":\"info\"}}");
    got = mcpgw_jsonrpc_request(id, "ping", NULL, &len);
    expect_json(got, len, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}");
    got = mcpgw_jsonrpc_notification("notifications/initialized", NULL, &len);
    expect_json(got, len, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    json_object_put(id);
}
END_TEST

START_TEST(test_jsonrpc_encoded_messages_decode_back)
{
    json_object *id = json_object_new_string("rt");
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    size_t len = 0;
    char *s = mcpgw_jsonrpc_request(id, "tools/call", json_object_new_object(), &len);
    ck_assert_int_eq(mcpgw_jsonrpc_parse(s, len, &m, NULL, &why), 0);
    ck_assert_int_eq(m.kind, MCPGW_JSONRPC_REQUEST);
    ck_assert_str_eq(json_object_get_string(m.id), "rt");
    ck_assert_str_eq(m.method, "tools/call");
    mcpgw_jsonrpc_msg_deinit(&m);
    free(s);
    json_object_put(id);
}
END_TEST

/* JSON Schema's integer: a number without a fraction (42 and 42.0), within JavaScript's safe
 * range (the bound MCP puts on integers carried as text). */
START_TEST(test_json_safe_int_reads_integers_with_a_zero_fraction)
{
    static const struct {
        const char *json;
        int ok;
        int64_t want;
    } cases[] = {
        {"42", 1, 42},
        {"42.0", 1, 42},
        {"-4.2e1", 1, -42},
        {"-0.0", 1, 0},
        {"9007199254740991", 1, 9007199254740991LL},
        {"-9007199254740991.0", 1, -9007199254740991LL},
        {"9007199254740992", 0, 0},
        {"-9007199254740992", 0, 0},
        {"18446744073709551615", 0, 0},
        {"42.5", 0, 0},
        {"1e300", 0, 0},
        {"\"42\"", 0, 0},
        {"true", 0, 0},
        {"null", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *v = json_tokener_parse(cases[i].json);
        int64_t got = -1;
        ck_assert_msg(mcpgw_json_safe_int(v, &got) == cases[i].ok, "%s", cases[i].json);
        if (cases[i].ok)
            ck_assert_msg(got == cases[i].want, "%s: %lld", cases[i].json, (long long)got);
        json_object_put(v);
    }
}
END_TEST

START_TEST(test_json_accessors_return_null_for_other_types)
{
    json_object *o = json_tokener_parse("{\"s\":\"v\",\"o\":{},\"a\":[],\"n\":1}");
    ck_assert_str_eq(mcpgw_json_str(o, "s"), "v");
    ck_assert_ptr_null(mcpgw_json_str(o, "n"));
    ck_assert_ptr_null(mcpgw_json_str(o, "missing"));
    ck_assert_ptr_nonnull(mcpgw_json_obj(o, "o"));
    ck_assert_ptr_null(mcpgw_json_obj(o, "a"));
    ck_assert_ptr_nonnull(mcpgw_json_arr(o, "a"));
    ck_assert_ptr_null(mcpgw_json_arr(o, "o"));
    ck_assert_ptr_null(mcpgw_json_str(NULL, "s"));
    json_object_put(o);
}
END_TEST

static Suite *jsonrpc_suite(void)
{
    Suite *s = suite_create("jsonrpc");
    TCase *dec = tcase_create("decode"), *enc = tcase_create("encode");

    tcase_add_test(dec, test_jsonrpc_decodes_request_with_string_id);
    tcase_add_test(dec, test_jsonrpc_decodes_request_with_integer_id_and_array_params);
    tcase_add_test(dec, test_jsonrpc_accepts_id_zero_as_a_request_id);
    tcase_add_test(dec, test_jsonrpc_decodes_notification_without_id);
    tcase_add_test(dec, test_jsonrpc_decodes_result);
    tcase_add_test(dec, test_jsonrpc_decodes_error_response);
    tcase_add_test(dec, test_jsonrpc_rejects_null_id_as_invalid_request);
    tcase_add_test(dec, test_jsonrpc_rejects_float_id_as_invalid_request);
    tcase_add_test(dec, test_jsonrpc_rejects_object_and_boolean_ids);
    tcase_add_test(dec, test_jsonrpc_rejects_batch_as_invalid_request);
    tcase_add_test(dec, test_jsonrpc_rejects_malformed_json_as_parse_error);
    tcase_add_test(dec, test_jsonrpc_accepts_finite_numbers_everywhere);
    tcase_add_test(dec, test_jsonrpc_rejects_trailing_garbage_as_parse_error);
    tcase_add_test(dec, test_jsonrpc_accepts_surrounding_whitespace);
    tcase_add_test(dec, test_jsonrpc_rejects_valid_json_that_is_not_an_object_as_invalid_request);
    tcase_add_test(dec, test_jsonrpc_requires_jsonrpc_2_0);
    tcase_add_test(dec, test_jsonrpc_rejects_params_that_are_not_object_or_array);
    tcase_add_test(dec, test_jsonrpc_rejects_messages_of_no_known_shape);
    tcase_add_test(dec, test_jsonrpc_captures_bad_id_of_invalid_message);
    tcase_add_test(dec, test_jsonrpc_leaves_bad_id_null_on_success);
    tcase_add_test(dec, test_jsonrpc_refuses_ids_json_c_would_clamp_as_invalid_request);
    tcase_add_test(dec, test_jsonrpc_echoes_ids_at_both_ends_of_the_range_exactly);
    tcase_add_test(dec, test_jsonrpc_takes_negative_zero_as_the_integer_zero);
    tcase_add_test(dec,
                   test_jsonrpc_refuses_a_clamped_integer_anywhere_naming_only_an_unchanged_id);
    tcase_add_test(dec, test_jsonrpc_refuses_numbers_json_c_reads_but_json_does_not);
    tcase_add_test(dec, test_jsonrpc_refuses_ill_formed_utf8_as_parse_error);
    tcase_add_test(dec, test_jsonrpc_accepts_utf8_at_every_boundary_of_the_table);
    tcase_add_test(dec, test_jsonrpc_refuses_lone_surrogate_escapes_as_invalid_request);
    tcase_add_test(dec, test_jsonrpc_finds_bad_bytes_and_escapes_at_every_offset_of_a_string);
    tcase_add_test(dec, test_jsonrpc_id_equal_tells_every_two_ids_apart);
    tcase_add_test(dec, test_jsonrpc_kind_str_names_every_kind);
    suite_add_tcase(s, dec);

    tcase_add_test(enc, test_jsonrpc_encodes_result_exactly);
    tcase_add_test(enc, test_jsonrpc_encodes_null_result_as_empty_object);
    tcase_add_test(enc, test_jsonrpc_encodes_error_with_null_id_when_id_is_absent);
    tcase_add_test(enc, test_jsonrpc_encodes_error_with_id_and_data);
    tcase_add_test(enc, test_jsonrpc_error_message_is_utf8_whatever_it_quotes);
    tcase_add_test(enc, test_jsonrpc_encodes_request_and_notification_exactly);
    tcase_add_test(enc, test_jsonrpc_encoded_messages_decode_back);
    tcase_add_test(enc, test_json_accessors_return_null_for_other_types);
    tcase_add_test(enc, test_json_safe_int_reads_integers_with_a_zero_fraction);
    suite_add_tcase(s, enc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jsonrpc_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
