/* test_jscan.c - the strict JSON scanner: a valid/invalid corpus, member spans, and agreement
 * with json-c as common/jsonrpc.c drives it (whatever jscan accepts, the full parse accepts with
 * the same meaning). */
#include "common/jscan.h"
#include "common/jsonrpc.h"

#include "../check-run.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum mcpgw_jscan_err value(const char *s)
{
    return mcpgw_jscan_value(s, strlen(s), NULL);
}

START_TEST(test_jscan_accepts_every_kind_of_valid_json)
{
    static const char *const ok[] = {"{}",
                                     "[]",
                                     " { } ",
                                     "\t[\n]\r\n",
                                     "0",
                                     "-0",
                                     "1",
                                     "-1",
                                     "0.5",
                                     "-0.5e-3",
                                     "1E+2",
                                     "1e2",
                                     "123456789",
                                     "18446744073709551615",
                                     "-9223372036854775808",
                                     "true",
                                     "false",
                                     "null",
                                     "\"\"",
                                     "\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"",
                                     "\"\\u00e9\\u20AC\\ud83d\\ude00\"",
                                     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                                     "\"\\u0000 in a value\"",
                                     "{\"a\":[1,{\"b\":null},\"c\",[[]]],\"d\":{\"e\":{}}}",
                                     "[1,2,3,true,false,null,\"x\"]",
                                     "{\"a\" : 1 , \"b\" :\n2}",
                                     "1e-400" /* underflows to 0: finite, as json-c reads it */};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        ck_assert_msg(value(ok[i]) == MCPGW_JSCAN_OK, "%s: %s", ok[i],
                      mcpgw_jscan_err_str(value(ok[i])));
}
END_TEST

START_TEST(test_jscan_refuses_invalid_json_with_the_right_reason)
{
    static const struct {
        const char *text;
        enum mcpgw_jscan_err e;
    } bad[] = {
        {"", MCPGW_JSCAN_E_SYNTAX},
        {"   ", MCPGW_JSCAN_E_SYNTAX},
        {"{", MCPGW_JSCAN_E_SYNTAX},
        {"{\"a\":1", MCPGW_JSCAN_E_SYNTAX},
        {"{\"a\":1,}", MCPGW_JSCAN_E_SYNTAX},
        {"[1,]", MCPGW_JSCAN_E_SYNTAX},
        {"[1 2]", MCPGW_JSCAN_E_SYNTAX},
        {"{\"a\" 1}", MCPGW_JSCAN_E_SYNTAX},
        {"{a:1}", MCPGW_JSCAN_E_SYNTAX},
        {"{1:1}", MCPGW_JSCAN_E_SYNTAX},
        {"[}", MCPGW_JSCAN_E_SYNTAX},
        {"{]", MCPGW_JSCAN_E_SYNTAX},
        {"[1}", MCPGW_JSCAN_E_SYNTAX},
        {"{} {}", MCPGW_JSCAN_E_SYNTAX},
        {"{}x", MCPGW_JSCAN_E_SYNTAX},
        {"1 2", MCPGW_JSCAN_E_SYNTAX},
        {"tru", MCPGW_JSCAN_E_SYNTAX},
        {"nul", MCPGW_JSCAN_E_SYNTAX},
        {"True", MCPGW_JSCAN_E_SYNTAX},
        {"NaN", MCPGW_JSCAN_E_SYNTAX},
        {"Infinity", MCPGW_JSCAN_E_SYNTAX},
        {"'a'", MCPGW_JSCAN_E_SYNTAX},
        {"/* c */ {}", MCPGW_JSCAN_E_SYNTAX},
        {"\xef\xbb\xbf{}", MCPGW_JSCAN_E_SYNTAX}, /* a byte-order mark */
        {"\"abc", MCPGW_JSCAN_E_SYNTAX},
        {"\"abc\\", MCPGW_JSCAN_E_SYNTAX},
        {"\"a\tb\"", MCPGW_JSCAN_E_STRING}, /* json-c takes a raw tab: we fall back */
        {"\"a\nb\"", MCPGW_JSCAN_E_STRING},
        {"\"\\x41\"", MCPGW_JSCAN_E_STRING},
        {"\"\\'\"", MCPGW_JSCAN_E_STRING},
        {"\"\\u12\"", MCPGW_JSCAN_E_STRING},
        {"\"\\u12g4\"", MCPGW_JSCAN_E_STRING},
        {"\"\\ud800\"", MCPGW_JSCAN_E_STRING},
        {"\"\\ud800x\"", MCPGW_JSCAN_E_STRING},
        {"\"\\ud800\\u0041\"", MCPGW_JSCAN_E_STRING},
        {"\"\\udc00\"", MCPGW_JSCAN_E_STRING},
        {"\"\\udc00\\ud800\"", MCPGW_JSCAN_E_STRING},
        {"\"\x80\"", MCPGW_JSCAN_E_UTF8},
        {"\"\xc0\xaf\"", MCPGW_JSCAN_E_UTF8},         /* overlong '/' */
        {"\"\xe0\x80\xaf\"", MCPGW_JSCAN_E_UTF8},     /* overlong */
        {"\"\xed\xa0\x80\"", MCPGW_JSCAN_E_UTF8},     /* a surrogate in UTF-8 */
        {"\"\xf4\x90\x80\x80\"", MCPGW_JSCAN_E_UTF8}, /* over U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", MCPGW_JSCAN_E_UTF8},
        {"\"\xc3\"", MCPGW_JSCAN_E_UTF8}, /* cut short */
        {"\"\xe2\x82\"", MCPGW_JSCAN_E_UTF8},
        {"\"\xff\"", MCPGW_JSCAN_E_UTF8},
        {"01", MCPGW_JSCAN_E_NUMBER},
        {"-01", MCPGW_JSCAN_E_NUMBER},
        {"00", MCPGW_JSCAN_E_NUMBER},
        {"1.", MCPGW_JSCAN_E_NUMBER},
        {"-", MCPGW_JSCAN_E_NUMBER},
        {"-a", MCPGW_JSCAN_E_NUMBER},
        {".5", MCPGW_JSCAN_E_SYNTAX},
        {"+1", MCPGW_JSCAN_E_SYNTAX},
        {"1e", MCPGW_JSCAN_E_NUMBER},
        {"1e+", MCPGW_JSCAN_E_NUMBER},
        {"1.2.3", MCPGW_JSCAN_E_NUMBER},
        {"1e5e5", MCPGW_JSCAN_E_NUMBER},
        {"[1.]", MCPGW_JSCAN_E_NUMBER},
        {"-Infinity", MCPGW_JSCAN_E_NUMBER},
        {"18446744073709551616", MCPGW_JSCAN_E_RANGE},
        {"-9223372036854775809", MCPGW_JSCAN_E_RANGE},
        {"1e400", MCPGW_JSCAN_E_RANGE},
        {"-1.5e999", MCPGW_JSCAN_E_RANGE},
        {"{\"a\\u0000b\":1}", MCPGW_JSCAN_E_KEY},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        enum mcpgw_jscan_err e = value(bad[i].text);
        ck_assert_msg(e == bad[i].e, "%s: got %s, want %s", bad[i].text, mcpgw_jscan_err_str(e),
                      mcpgw_jscan_err_str(bad[i].e));
    }
    /* A NUL byte is not JSON anywhere, inside a string or out. */
    ck_assert_int_eq(mcpgw_jscan_value("\"a\0b\"", 5, NULL), MCPGW_JSCAN_E_STRING);
    ck_assert_int_eq(mcpgw_jscan_value("{}\0", 3, NULL), MCPGW_JSCAN_E_SYNTAX);
}
END_TEST

START_TEST(test_jscan_caps_nesting_where_json_c_does)
{
    char buf[600];
    for (int d = 1; d <= 70; d++) {
        size_t n = 0;
        for (int i = 0; i < d; i++) { /* objects and arrays by turns: {"k":[{"k":[...1]}]} */
            buf[n++] = i % 2 ? '[' : '{';
            if (i % 2 == 0) {
                memcpy(buf + n, "\"k\":", 4);
                n += 4;
            }
        }
        buf[n++] = '1';
        for (int i = d - 1; i >= 0; i--)
            buf[n++] = i % 2 ? ']' : '}';
        {
            struct json_tokener *tok = json_tokener_new_ex(64);
            json_object *o;
            json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
            o = json_tokener_parse_ex(tok, buf, (int)n);
            /* Nested values in every level: the two agree exactly. */
            ck_assert_msg((mcpgw_jscan_value(buf, n, NULL) == MCPGW_JSCAN_OK) == (o != NULL),
                          "depth %d: jscan %s, json-c %s", d,
                          mcpgw_jscan_err_str(mcpgw_jscan_value(buf, n, NULL)),
                          o ? "ok" : "refused");
            if (d > MCPGW_JSCAN_MAX_DEPTH)
                ck_assert_int_eq(mcpgw_jscan_value(buf, n, NULL), MCPGW_JSCAN_E_DEPTH);
            json_object_put(o);
            json_tokener_free(tok);
        }
    }
}
END_TEST

START_TEST(test_jscan_reports_top_level_member_spans)
{
    const char *s = " {\"jsonrpc\":\"2.0\", \"id\" : 7,\"result\":{\"content\":[{\"type\":\"text\","
                    "\"text\":\"x\\\"}\"}],\"n\":[1,{}]} } ";
    struct mcpgw_jscan_top t;
    const struct mcpgw_jscan_member *m;
    ck_assert_int_eq(mcpgw_jscan_object(s, strlen(s), &t), MCPGW_JSCAN_OK);
    ck_assert_uint_eq(t.n, 3);
    ck_assert_int_eq(t.more, 0);
    m = mcpgw_jscan_get(&t, "jsonrpc");
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->val_len, 5);
    ck_assert(memcmp(m->val, "\"2.0\"", 5) == 0);
    m = mcpgw_jscan_get(&t, "id");
    ck_assert_uint_eq(m->val_len, 1);
    ck_assert_int_eq(m->val[0], '7');
    m = mcpgw_jscan_get(&t, "result");
    ck_assert_uint_eq(m->val_len, strlen("{\"content\":[{\"type\":\"text\",\"text\":\"x\\\"}\"}],"
                                         "\"n\":[1,{}]}"));
    ck_assert(memcmp(m->val, "{\"content\"", 10) == 0);
    ck_assert_int_eq(m->val[m->val_len - 1], '}');
    ck_assert_ptr_null(mcpgw_jscan_get(&t, "error"));
    ck_assert_ptr_null(mcpgw_jscan_get(&t, "content")); /* nested keys are not top-level */
}
END_TEST

START_TEST(test_jscan_refuses_a_top_level_key_given_twice_and_counts_past_the_cap)
{
    struct mcpgw_jscan_top t;
    const char *dup = "{\"id\":1,\"result\":{},\"id\":2}";
    const char *nested = "{\"result\":{\"a\":1,\"a\":2}}";
    const char *many = "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,"
                       "\"a\":10}";
    ck_assert_int_eq(mcpgw_jscan_object(dup, strlen(dup), &t), MCPGW_JSCAN_E_DUP);
    ck_assert_uint_eq(t.err_off, strlen("{\"id\":1,\"result\":{},\"id\""));
    /* Nested duplicates are JSON all the same (json-c and JSON.parse keep the last one). */
    ck_assert_int_eq(mcpgw_jscan_object(nested, strlen(nested), &t), MCPGW_JSCAN_OK);
    /* Past the cap the members are validated but not reported (nor compared). */
    ck_assert_int_eq(mcpgw_jscan_object(many, strlen(many), &t), MCPGW_JSCAN_OK);
    ck_assert_uint_eq(t.n, MCPGW_JSCAN_MAX_MEMBERS);
    ck_assert_int_eq(t.more, 1);
    ck_assert_int_eq(mcpgw_jscan_object("[1]", 3, &t), MCPGW_JSCAN_E_NOT_OBJECT);
    ck_assert_int_eq(mcpgw_jscan_object("\"x\"", 3, &t), MCPGW_JSCAN_E_NOT_OBJECT);
    ck_assert_int_eq(mcpgw_jscan_object("[1,]", 4, &t), MCPGW_JSCAN_E_SYNTAX);
    ck_assert_int_eq(mcpgw_jscan_object("{\"a\":01}", 8, &t), MCPGW_JSCAN_E_NUMBER);
    ck_assert_uint_eq(t.err_off, 5);
}
END_TEST

/* What jscan accepts as a response, the full parse accepts, and the result's span read alone
 * is the tree the full parse holds. Checked over a corpus and over many random one-byte
 * changes of it (deterministic), so the agreement is tested where the grammar is thin. */
static void agree(const char *buf, size_t len, int *accepted)
{
    struct mcpgw_jscan_top t;
    struct mcpgw_jsonrpc_msg m;
    const char *why;
    const struct mcpgw_jscan_member *r;
    int rc;
    if (mcpgw_jscan_object(buf, len, &t) != MCPGW_JSCAN_OK || t.more)
        return;
    r = mcpgw_jscan_get(&t, "result");
    rc = mcpgw_jsonrpc_parse(buf, len, &m, NULL, &why);
    if (!r || !mcpgw_jscan_get(&t, "id") || !mcpgw_jscan_get(&t, "jsonrpc") || t.n != 3 ||
        r->val[0] != '{') {
        if (rc == 0)
            mcpgw_jsonrpc_msg_deinit(&m);
        return;
    }
    ck_assert_msg(rc == 0 || strstr(why, "\"jsonrpc\"") || strstr(why, "\"id\""),
                  "jscan took what the full parse refuses (%s): %.*s", why, (int)len, buf);
    if (rc == 0) {
        {
            struct json_tokener *tok = json_tokener_new_ex(64);
            json_object *o;
            json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
            o = json_tokener_parse_ex(tok, r->val, (int)r->val_len);
            ck_assert_msg(o && json_object_equal(o, m.result), "result differs: %.*s", (int)len,
                          buf);
            json_object_put(o);
            json_tokener_free(tok);
        }
        (*accepted)++;
        mcpgw_jsonrpc_msg_deinit(&m);
    }
}

START_TEST(test_jscan_accepts_only_what_the_full_parse_reads_the_same)
{
    static const char *const corpus[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":"
        "\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 a\\/b \\\\ \\\" \\n\"}],\"isError\":false}}",
        "{\"jsonrpc\":\"2.0\",\"id\":22,\"result\":{\"n\":[0,-0,1.5,-2e-3,1E+2,"
        "18446744073709551615,-9223372036854775808],\"o\":{\"p\":{\"q\":[[],{}]}},\"t\":true,"
        "\"f\":false,\"z\":null}}",
        "{ \"result\" : { \"a\" : [ 1 , 2 ] } , \"id\" : 3 , \"jsonrpc\" : \"2.0\" }",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"k\":\"\\u0000\\u001f\\t\",\"k\":2}}",
    };
    int accepted = 0;
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof(corpus) / sizeof(*corpus); i++) {
        size_t len = strlen(corpus[i]);
        char *buf = malloc(len);
        agree(corpus[i], len, &accepted);
        for (int k = 0; k < 5000; k++) {
            static const char pool[] = "{}[]\",:\\u0123456789eE+-.tfnul \t\x80\xc3\xa9\xed\xff";
            size_t at;
            memcpy(buf, corpus[i], len);
            seed = seed * 1103515245u + 12345u;
            at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            buf[at] = pool[(seed >> 8) % (sizeof(pool) - 1)];
            agree(buf, len, &accepted);
        }
        free(buf);
    }
    ck_assert_int_ge(accepted, 250); /* the mutations did keep many valid */
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_jscan_accepts_every_kind_of_valid_json,
        test_jscan_refuses_invalid_json_with_the_right_reason,
        test_jscan_caps_nesting_where_json_c_does,
        test_jscan_reports_top_level_member_spans,
        test_jscan_refuses_a_top_level_key_given_twice_and_counts_past_the_cap,
        test_jscan_accepts_only_what_the_full_parse_reads_the_same,
    };
    return mcpgw_check_run("jscan", "core", tests, sizeof(tests) / sizeof(*tests));
}
