/* test_jsonrpc.c - JSON-RPC 2.0 decoding, error codes, bad_id capture and encoders. */
#include "common/jsonrpc.h"

#include <check.h>
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
    tcase_add_test(dec, test_jsonrpc_kind_str_names_every_kind);
    suite_add_tcase(s, dec);

    tcase_add_test(enc, test_jsonrpc_encodes_result_exactly);
    tcase_add_test(enc, test_jsonrpc_encodes_null_result_as_empty_object);
    tcase_add_test(enc, test_jsonrpc_encodes_error_with_null_id_when_id_is_absent);
    tcase_add_test(enc, test_jsonrpc_encodes_error_with_id_and_data);
    tcase_add_test(enc, test_jsonrpc_encodes_request_and_notification_exactly);
    tcase_add_test(enc, test_jsonrpc_encoded_messages_decode_back);
    tcase_add_test(enc, test_json_accessors_return_null_for_other_types);
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
