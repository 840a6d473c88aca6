/* test_upcfg.c - the `upstream` config lines: parsing, checks, names, filters, comparison. */
#include "node/upcfg.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../check-run.h"

static char err[400];

/* Parse a line given as words into *set (first: start afresh). Returns the parser's result. */
static int parse(struct mcpgw_upcfg_set **set, int first, const char *const *words)
{
    int n = 0;
    while (words[n])
        n++;
    err[0] = 0;
    return mcpgw_upcfg_parse(set, n, (char **)words, first, err, sizeof(err));
}

START_TEST(test_upcfg_parses_every_key)
{
    struct mcpgw_upcfg_set *set = NULL;
    const char *w[] = {"gh",
                       "http",
                       "https://h.example/mcp",
                       "prefix=g",
                       "header=Authorization: Bearer x",
                       "header=X-B: 2",
                       "tools=search_*,fetch",
                       "exclude=search_admin*",
                       "timeout=30s",
                       "session=per-client",
                       "max-inflight=256",
                       "protocol=auto",
                       NULL};
    const char *w2[] = {"files",          "stdio",         "npx -y 'some server' /srv",
                        "session=shared", "max-procs=200", NULL};
    struct mcpgw_upcfg *u;
    ck_assert_int_eq(parse(&set, 1, w), 0);
    ck_assert_int_eq(parse(&set, 0, w2), 0);
    ck_assert_int_eq(set->n, 2);
    u = set->v[0];
    ck_assert_str_eq(u->prefix, "g");
    ck_assert_str_eq(u->headers[1], "X-B: 2");
    ck_assert_ptr_null(u->headers[2]);
    ck_assert_uint_eq(u->timeout_ms, 30000);
    ck_assert_int_eq(u->session, MCPGW_UPCFG_SESSION_PER_CLIENT);
    ck_assert_uint_eq(u->max_inflight, 256);
    ck_assert_int_eq(u->protocol, MCPGW_UPCFG_PROTOCOL_AUTO);
    u = set->v[1];
    ck_assert_int_eq(u->kind, MCPGW_UPCFG_STDIO);
    ck_assert_str_eq(u->argv[2], "some server");
    ck_assert_str_eq(u->prefix, "files"); /* the name by default */
    ck_assert_uint_eq(u->max_procs, 200);
    ck_assert_int_eq(u->protocol, MCPGW_UPCFG_PROTOCOL_SESSION); /* the default */
    mcpgw_upcfg_set_free(set);
}
END_TEST

START_TEST(test_upcfg_refuses_bad_lines_with_a_reason)
{
    static const struct {
        const char *w[6];
        const char *want;
    } cases[] = {
        {{"a", "ftp", "x"}, "unknown kind 'ftp'"},
        {{"a", "http", "ftp://h"}, "is not an http:// or https:// URL"},
        {{"a", "http", "http://"}, "is not an http:// or https:// URL"},
        {{"a", "stdio", "x \"y"}, "bad command line"},
        {{"a", "http", "http://h", "colour=red"}, "unknown key 'colour'"},
        {{"a", "http", "http://h", "timeout=0"}, "not a duration above zero"},
        {{"a", "http", "http://h", "prefix=a__b"}, "prefix 'a__b' must be"},
        {{"a", "http", "http://h", "prefix=x", "prefix=y"}, "prefix= is given twice"},
        {{"a", "http", "http://h", "header=Bearer secret-value"}, "header= wants"},
        {{"a b", "http", "http://h"}, "upstream name"},
        {{"a", "http"}, "upstream wants NAME"},
        {{"a", "http", "http://h", "protocol=2025"}, "protocol '2025' is not session, 2026-07-28"},
        {{"a", "stdio", "srv", "protocol=2026-07-28"}, "protocol= applies to http upstreams"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mcpgw_upcfg_set *set = NULL;
        ck_assert_int_eq(parse(&set, 1, cases[i].w), -1);
        ck_assert_msg(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].want);
        ck_assert_msg(!strstr(err, "secret-value"), "a header value in an error: %s", err);
        mcpgw_upcfg_set_free(set);
    }
}
END_TEST

START_TEST(test_upcfg_refuses_a_second_name_or_prefix_and_restarts_on_first)
{
    struct mcpgw_upcfg_set *set = NULL;
    const char *a[] = {"a", "http", "http://h1", "prefix=", NULL};
    const char *b[] = {"b", "http", "http://h2", "prefix=", NULL};
    const char *a2[] = {"a", "stdio", "srv", NULL};
    ck_assert_int_eq(parse(&set, 1, a), 0);
    ck_assert_int_eq(parse(&set, 0, b), -1);
    ck_assert_ptr_nonnull(strstr(err, "an empty prefix is already taken by upstream a"));
    ck_assert_int_eq(parse(&set, 0, a2), -1);
    ck_assert_ptr_nonnull(strstr(err, "upstream a is declared twice"));
    ck_assert_int_eq(parse(&set, 1, a2), 0); /* a new source starts a new list */
    ck_assert_int_eq(set->n, 1);
    mcpgw_upcfg_set_free(set);
}
END_TEST

START_TEST(test_upcfg_names_filters_and_comparison)
{
    struct mcpgw_upcfg_set *set = NULL, *other = NULL;
    const char *w[] = {
        "a", "http", "http://h", "prefix=gh", "tools=search_*,fetch", "exclude=search_admin*",
        NULL};
    const char *w2[] = {
        "a", "http", "http://h", "prefix=gh", "tools=search_*,fetch", "exclude=search_admin", NULL};
    char *e;
    ck_assert_int_eq(parse(&set, 1, w), 0);
    e = mcpgw_upcfg_expose(set->v[0], "search");
    ck_assert_str_eq(e, "gh__search");
    ck_assert_str_eq(mcpgw_upcfg_unexpose(set->v[0], e), "search");
    ck_assert_ptr_null(mcpgw_upcfg_unexpose(set->v[0], "gh_search"));
    free(e);
    ck_assert(mcpgw_upcfg_tool_allowed(set->v[0], "search_web"));
    ck_assert(mcpgw_upcfg_tool_allowed(set->v[0], "fetch"));
    ck_assert(!mcpgw_upcfg_tool_allowed(set->v[0], "search_admin_x"));
    ck_assert(!mcpgw_upcfg_tool_allowed(set->v[0], "delete"));
    ck_assert_int_eq(parse(&other, 1, w2), 0);
    ck_assert(!mcpgw_upcfg_equal(set->v[0], other->v[0]));
    {
        struct mcpgw_upcfg *d = mcpgw_upcfg_dup(set->v[0]);
        ck_assert(mcpgw_upcfg_equal(set->v[0], d));
        mcpgw_upcfg_free(d);
    }
    mcpgw_upcfg_set_free(set);
    mcpgw_upcfg_set_free(other);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_upcfg_parses_every_key,
        test_upcfg_refuses_bad_lines_with_a_reason,
        test_upcfg_refuses_a_second_name_or_prefix_and_restarts_on_first,
        test_upcfg_names_filters_and_comparison,
    };
    return mcpgw_check_run("upcfg", "upcfg", tests, sizeof(tests) / sizeof(tests[0]));
}
