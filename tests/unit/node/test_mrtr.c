/* test_mrtr.c - MRTR rounds and their sealed requestState (node/mrtr.c): a round asks, its
 * retry continues from the state, and state that was altered, moved to another request, sealed
 * under another key ring or has expired is refused. */
#include "node/mrtr.h"

#include "common/jsonrpc.h"
#include "common/seal.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"

static struct mcpgw_seal_ring *ring(const char *hex)
{
    char err[128];
    struct mcpgw_seal_ring *r = mcpgw_seal_ring_parse(hex, strlen(hex), "test", err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

/* Serve tool name with params (JSON text) and clientCapabilities caps (JSON text) under ring r,
 * lifetime ttl_ms. Returns mcpgw_mrtr_serve's value; *a as it filled it. */
static int serve(struct mcpgw_seal_ring *r, const char *method, const char *name,
                 const char *params, const char *caps, uint64_t ttl_ms, struct mcpgw_mrtr_answer *a,
                 json_object **keep)
{
    json_object *p = json_tokener_parse(params), *c = json_tokener_parse(caps);
    struct mcpgw_mrtr_req q = {r, method, name, p, c, "", ttl_ms};
    int rc;
    ck_assert_ptr_nonnull(p);
    memset(a, 0, sizeof(*a));
    rc = mcpgw_mrtr_serve(&q, a);
    json_object_put(c);
    *keep = p; /* the caller frees it */
    return rc;
}

/* "input_required", "complete" (a final result: era26.c adds its resultType), or NULL. */
static const char *result_type(const struct mcpgw_mrtr_answer *a)
{
    const char *t = a->result ? mcpgw_json_str(a->result, "resultType") : NULL;
    return t ? t : a->result ? "complete" : NULL;
}

#define ALL_CAPS "{\"elicitation\":{},\"sampling\":{},\"roots\":{}}"
#define TEN_MIN  600000

/* Round 1 of the request-state fixture; returns its requestState (free it). */
static char *round1(struct mcpgw_seal_ring *r, const char *args)
{
    struct mcpgw_mrtr_answer a;
    json_object *p;
    char params[256], *state;
    snprintf(params, sizeof(params), "{\"arguments\":%s}", args);
    ck_assert_int_eq(serve(r, "tools/call", "test_input_required_result_request_state", params,
                           ALL_CAPS, TEN_MIN, &a, &p),
                     1);
    ck_assert_str_eq(result_type(&a), "input_required");
    ck_assert_ptr_nonnull(mcpgw_json_obj(mcpgw_json_obj(a.result, "inputRequests"), "confirm"));
    state = strdup(mcpgw_json_str(a.result, "requestState"));
    json_object_put(a.result);
    json_object_put(p);
    return state;
}

/* The retry of the request-state fixture with state; fills a. */
static void retry(struct mcpgw_seal_ring *r, const char *name, const char *args, const char *state,
                  uint64_t ttl_ms, struct mcpgw_mrtr_answer *a)
{
    char params[2048];
    json_object *p;
    snprintf(params, sizeof(params),
             "{\"arguments\":%s,\"inputResponses\":{\"confirm\":{\"action\":\"accept\","
             "\"content\":{\"ok\":true}}},\"requestState\":\"%s\"}",
             args, state);
    ck_assert_int_eq(serve(r, "tools/call", name, params, ALL_CAPS, ttl_ms, a, &p), 1);
    json_object_put(p);
}

START_TEST(test_mrtr_round_continues_from_its_sealed_state)
{
    struct mcpgw_seal_ring *r = ring(KEY_A), *r2 = ring(KEY_A);
    struct mcpgw_mrtr_answer a;
    char *state = round1(r, "{\"x\":1}");
    /* Another ring object with the same key: another node of the cluster. */
    retry(r2, "test_input_required_result_request_state", "{\"x\":1}", state, TEN_MIN, &a);
    ck_assert_str_eq(result_type(&a), "complete");
    ck_assert_ptr_nonnull(strstr(json_object_to_json_string(a.result), "state-ok"));
    json_object_put(a.result);
    free(state);
    mcpgw_seal_ring_free(r);
    mcpgw_seal_ring_free(r2);
}
END_TEST

START_TEST(test_mrtr_refuses_altered_moved_foreign_and_expired_state)
{
    struct mcpgw_seal_ring *r = ring(KEY_A), *other = ring(KEY_B);
    struct mcpgw_mrtr_answer a;
    char *state = round1(r, "{}");
    char *bent = strdup(state);
    bent[strlen(bent) / 2] = bent[strlen(bent) / 2] == 'A' ? 'B' : 'A';
    retry(r, "test_input_required_result_request_state", "{}", bent, TEN_MIN, &a);
    ck_assert_ptr_null(a.result);
    ck_assert_int_eq(a.code, -32602);
    /* The same state on other arguments, another tool, under another key ring. */
    retry(r, "test_input_required_result_request_state", "{\"y\":2}", state, TEN_MIN, &a);
    ck_assert_int_eq(a.code, -32602);
    retry(r, "test_input_required_result_tampered_state", "{}", state, TEN_MIN, &a);
    ck_assert_int_eq(a.code, -32602);
    retry(other, "test_input_required_result_request_state", "{}", state, TEN_MIN, &a);
    ck_assert_int_eq(a.code, -32602);
    ck_assert_ptr_nonnull(strstr(a.message, "integrity"));
    free(state);
    free(bent);
    /* Sealed with a lifetime of 0 ms: authentic, and already expired. */
    {
        json_object *p;
        ck_assert_int_eq(serve(r, "tools/call", "test_input_required_result_request_state",
                               "{\"arguments\":{}}", ALL_CAPS, 0, &a, &p),
                         1);
        state = strdup(mcpgw_json_str(a.result, "requestState"));
        json_object_put(a.result);
        json_object_put(p);
        retry(r, "test_input_required_result_request_state", "{}", state, TEN_MIN, &a);
        ck_assert_int_eq(a.code, -32602);
        ck_assert_ptr_nonnull(strstr(a.message, "expired"));
        free(state);
    }
    mcpgw_seal_ring_free(r);
    mcpgw_seal_ring_free(other);
}
END_TEST

START_TEST(test_mrtr_multi_round_issues_a_new_state_each_round)
{
    struct mcpgw_seal_ring *r = ring(KEY_A);
    struct mcpgw_mrtr_answer a;
    json_object *p;
    char params[2048], *s1, *s2;
    const char *name = "test_input_required_result_multi_round";
    ck_assert_int_eq(serve(r, "tools/call", name, "{}", ALL_CAPS, TEN_MIN, &a, &p), 1);
    ck_assert_ptr_nonnull(mcpgw_json_obj(mcpgw_json_obj(a.result, "inputRequests"), "step1"));
    s1 = strdup(mcpgw_json_str(a.result, "requestState"));
    json_object_put(a.result);
    json_object_put(p);
    snprintf(params, sizeof(params),
             "{\"inputResponses\":{\"step1\":{\"action\":\"accept\",\"content\":{\"name\":"
             "\"Ada\"}}},\"requestState\":\"%s\"}",
             s1);
    ck_assert_int_eq(serve(r, "tools/call", name, params, ALL_CAPS, TEN_MIN, &a, &p), 1);
    ck_assert_str_eq(result_type(&a), "input_required");
    ck_assert_ptr_nonnull(mcpgw_json_obj(mcpgw_json_obj(a.result, "inputRequests"), "step2"));
    s2 = strdup(mcpgw_json_str(a.result, "requestState"));
    ck_assert_str_ne(s1, s2);
    json_object_put(a.result);
    json_object_put(p);
    snprintf(params, sizeof(params),
             "{\"inputResponses\":{\"step2\":{\"action\":\"accept\",\"content\":{\"color\":"
             "\"blue\"}}},\"requestState\":\"%s\"}",
             s2);
    ck_assert_int_eq(serve(r, "tools/call", name, params, ALL_CAPS, TEN_MIN, &a, &p), 1);
    ck_assert_str_eq(result_type(&a), "complete");
    ck_assert_ptr_nonnull(strstr(json_object_to_json_string(a.result), "Ada"));
    ck_assert_ptr_nonnull(strstr(json_object_to_json_string(a.result), "blue"));
    json_object_put(a.result);
    json_object_put(p);
    free(s1);
    free(s2);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_mrtr_respects_client_capabilities)
{
    struct mcpgw_seal_ring *r = ring(KEY_A);
    struct mcpgw_mrtr_answer a;
    json_object *p, *asks;
    /* Strict: a fixture that needs sampling refuses a client without it (-32021, 400). */
    ck_assert_int_eq(serve(r, "tools/call", "test_missing_capability", "{}", "{}", TEN_MIN, &a, &p),
                     1);
    ck_assert_ptr_null(a.result);
    ck_assert_int_eq(a.code, -32021);
    ck_assert_int_eq(a.status, 400);
    ck_assert_ptr_nonnull(
        mcpgw_json_obj(mcpgw_json_obj(a.data, "requiredCapabilities"), "sampling"));
    json_object_put(a.data);
    json_object_put(p);
    /* Lenient: only the inputs the client can answer are asked for. */
    ck_assert_int_eq(serve(r, "tools/call", "test_input_required_result_capabilities", "{}",
                           "{\"sampling\":{}}", TEN_MIN, &a, &p),
                     1);
    asks = mcpgw_json_obj(a.result, "inputRequests");
    ck_assert_int_eq(json_object_object_length(asks), 1);
    ck_assert_ptr_nonnull(mcpgw_json_obj(asks, "greeting"));
    json_object_put(a.result);
    json_object_put(p);
    mcpgw_seal_ring_free(r);
}
END_TEST

START_TEST(test_mrtr_validates_input_responses)
{
    struct mcpgw_seal_ring *r = ring(KEY_A);
    struct mcpgw_mrtr_answer a;
    json_object *p;
    static const char *const bad[] = {
        "{\"inputResponses\":null}",
        "{\"inputResponses\":[1]}",
        "{\"inputResponses\":{\"user_name\":12345}}",
        "{\"inputResponses\":{\"user_name\":{\"action\":\"maybe\"}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(serve(r, "tools/call", "test_input_required_result_elicitation", bad[i],
                               ALL_CAPS, TEN_MIN, &a, &p),
                         1);
        ck_assert_msg(a.result == NULL && a.code == -32602, "accepted %s", bad[i]);
        json_object_put(p);
    }
    /* Unknown keys are ignored; a missing one is asked for again. */
    ck_assert_int_eq(serve(r, "tools/call", "test_input_required_result_elicitation",
                           "{\"inputResponses\":{\"other\":{\"x\":1}}}", ALL_CAPS, TEN_MIN, &a, &p),
                     1);
    ck_assert_str_eq(result_type(&a), "input_required");
    json_object_put(a.result);
    json_object_put(p);
    /* Not one of ours. */
    ck_assert_int_eq(serve(r, "tools/call", "echo", "{}", ALL_CAPS, TEN_MIN, &a, &p), 0);
    json_object_put(p);
    mcpgw_seal_ring_free(r);
}
END_TEST

static Suite *mrtr_suite(void)
{
    Suite *s = suite_create("mrtr");
    TCase *tc = tcase_create("rounds");
    tcase_add_test(tc, test_mrtr_round_continues_from_its_sealed_state);
    tcase_add_test(tc, test_mrtr_refuses_altered_moved_foreign_and_expired_state);
    tcase_add_test(tc, test_mrtr_multi_round_issues_a_new_state_each_round);
    tcase_add_test(tc, test_mrtr_respects_client_capabilities);
    tcase_add_test(tc, test_mrtr_validates_input_responses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mrtr_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
