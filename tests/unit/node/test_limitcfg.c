/* test_limitcfg.c - `limit` lines (parsing, refusals, matching) and the GCRA arithmetic. */
#include "node/config.h"
#include "node/limitcfg.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../check-run.h"

static char err[400];

/* Parse one line given as words onto *set. Returns the parser's result. */
static int parse(struct mcpgw_limitcfg **set, int first, const char *const *words)
{
    int n = 0;
    while (words[n])
        n++;
    err[0] = 0;
    return mcpgw_limitcfg_parse(set, n, (char **)words, first, err, sizeof(err));
}

START_TEST(test_limitcfg_parses_rates_caps_and_overrides)
{
    struct mcpgw_limitcfg *set = NULL;
    const char *w1[] = {"rate", "100/s", "burst=200", NULL};
    const char *w2[] = {"rate", "6/m", "tool=search", "principal=https://as.example bob", NULL};
    const char *w3[] = {"concurrency", "16", NULL};
    const char *w4[] = {"sessions", "unlimited", "principal=ci", NULL};
    const char *w5[] = {"rate", "3600/h", "tool=*", NULL};
    ck_assert_int_eq(parse(&set, 1, w1), 0);
    ck_assert_int_eq(parse(&set, 0, w2), 0);
    ck_assert_int_eq(parse(&set, 0, w3), 0);
    ck_assert_int_eq(parse(&set, 0, w4), 0);
    ck_assert_int_eq(parse(&set, 0, w5), 0);
    ck_assert_int_eq(set->n, 5);
    ck_assert_int_eq(set->v[0].kind, MCPGW_LIMIT_RATE);
    ck_assert_uint_eq(set->v[0].interval_us, 10000);
    ck_assert_uint_eq(set->v[0].burst, 200);
    ck_assert_ptr_null(set->v[0].principal);
    ck_assert_str_eq(set->v[0].text, "100/s burst=200");
    ck_assert_int_eq(set->v[1].kind, MCPGW_LIMIT_TOOL_RATE);
    ck_assert_uint_eq(set->v[1].interval_us, 10000000);
    ck_assert_uint_eq(set->v[1].burst, 6); /* the default burst is the rate's count */
    ck_assert_str_eq(set->v[1].tool, "search");
    ck_assert_str_eq(set->v[1].principal, "https://as.example bob");
    ck_assert_int_eq(set->v[2].kind, MCPGW_LIMIT_CONCURRENCY);
    ck_assert_uint_eq(set->v[2].cap, 16);
    ck_assert_int_eq(set->v[3].kind, MCPGW_LIMIT_SESSIONS);
    ck_assert(set->v[3].unlimited);
    ck_assert_int_eq(set->v[4].kind, MCPGW_LIMIT_TOOL_RATE);
    ck_assert_ptr_null(set->v[4].tool);
    ck_assert_uint_eq(set->v[4].interval_us, 1000000);
    /* first=1 starts the set afresh (a reload reads the file from the top) */
    ck_assert_int_eq(parse(&set, 1, w3), 0);
    ck_assert_int_eq(set->n, 1);
    mcpgw_limitcfg_free(set);
}
END_TEST

START_TEST(test_limitcfg_refuses_bad_lines_with_a_reason)
{
    static const struct {
        const char *w[5];
        const char *reason;
    } bad[] = {
        {{"rate", NULL}, "needs a kind and a value"},
        {{"speed", "1/s", NULL}, "not a kind of limit"},
        {{"rate", "10", NULL}, "not a rate"},
        {{"rate", "0/s", NULL}, "not a rate"},
        {{"rate", "10/d", NULL}, "not a rate"},
        {{"rate", "10/ss", NULL}, "not a rate"},
        {{"rate", "-1/s", NULL}, "not a rate"},
        {{"rate", "2000000/s", NULL}, "not a rate"},
        {{"rate", "10/s", "burst=0", NULL}, "burst"},
        {{"rate", "10/s", "burst=x", NULL}, "burst"},
        {{"rate", "unlimited", "burst=3", NULL}, "takes no burst"},
        {{"rate", "10/s", "tool=a", "tool=b", NULL}, "given twice"},
        {{"rate", "10/s", "tool=", NULL}, "needs a tool name"},
        {{"rate", "10/s", "principal=", NULL}, "needs a principal"},
        {{"rate", "10/s", "color=red", NULL}, "unknown option"},
        {{"concurrency", "0", NULL}, "not a number"},
        {{"concurrency", "8", "tool=x", NULL}, "unknown option"},
        {{"sessions", "many", NULL}, "not a number"},
        {{"sessions", "5", "burst=2", NULL}, "unknown option"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mcpgw_limitcfg *set = NULL;
        ck_assert_msg(parse(&set, 1, bad[i].w) == -1, "line %zu accepted", i);
        ck_assert_msg(strstr(err, bad[i].reason), "line %zu: '%s' lacks '%s'", i, err,
                      bad[i].reason);
        ck_assert_ptr_null(set); /* nothing half-added */
    }
}
END_TEST

START_TEST(test_limitcfg_most_specific_rule_wins)
{
    struct mcpgw_limitcfg *set = NULL;
    const char *r_all[] = {"rate", "10/s", NULL};
    const char *r_bob[] = {"rate", "20/s", "principal=bob", NULL};
    const char *r_ci[] = {"rate", "unlimited", "principal=ci", NULL};
    const char *t_all[] = {"rate", "1/s", "tool=*", NULL};
    const char *t_echo[] = {"rate", "2/s", "tool=echo", NULL};
    const char *t_bob[] = {"rate", "3/s", "tool=*", "principal=bob", NULL};
    const char *r_later[] = {"rate", "30/s", NULL};
    const struct mcpgw_limit_rule *r;
    ck_assert_int_eq(parse(&set, 1, r_all), 0);
    ck_assert_int_eq(parse(&set, 0, r_bob), 0);
    ck_assert_int_eq(parse(&set, 0, r_ci), 0);
    ck_assert_int_eq(parse(&set, 0, t_all), 0);
    ck_assert_int_eq(parse(&set, 0, t_echo), 0);
    ck_assert_int_eq(parse(&set, 0, t_bob), 0);
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_RATE, "alice", NULL);
    ck_assert_uint_eq(r->burst, 10);
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_RATE, "bob", NULL);
    ck_assert_uint_eq(r->burst, 20);
    ck_assert_ptr_null(mcpgw_limitcfg_match(set, MCPGW_LIMIT_RATE, "ci", NULL)); /* unlimited */
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_TOOL_RATE, "alice", "sleep");
    ck_assert_uint_eq(r->burst, 1);
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_TOOL_RATE, "alice", "echo");
    ck_assert_uint_eq(r->burst, 2);
    /* naming the principal weighs more than naming the tool */
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_TOOL_RATE, "bob", "echo");
    ck_assert_uint_eq(r->burst, 3);
    ck_assert_ptr_null(mcpgw_limitcfg_match(set, MCPGW_LIMIT_CONCURRENCY, "alice", NULL));
    ck_assert(!mcpgw_limitcfg_has(set, MCPGW_LIMIT_SESSIONS));
    ck_assert(mcpgw_limitcfg_has(set, MCPGW_LIMIT_TOOL_RATE));
    /* among equally specific rules the later line wins */
    ck_assert_int_eq(parse(&set, 0, r_later), 0);
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_RATE, "alice", NULL);
    ck_assert_uint_eq(r->burst, 30);
    ck_assert_ptr_null(mcpgw_limitcfg_match(NULL, MCPGW_LIMIT_RATE, "alice", NULL));
    mcpgw_limitcfg_free(set);
}
END_TEST

START_TEST(test_limitcfg_sets_compare_by_rules)
{
    struct mcpgw_limitcfg *a = NULL, *b = NULL;
    const char *w1[] = {"rate", "10/s", "principal=x", NULL};
    const char *w2[] = {"rate", "10/s", "principal=y", NULL};
    ck_assert(mcpgw_limitcfg_equal(NULL, NULL));
    ck_assert_int_eq(parse(&a, 1, w1), 0);
    ck_assert(!mcpgw_limitcfg_equal(a, NULL));
    ck_assert_int_eq(parse(&b, 1, w1), 0);
    ck_assert(mcpgw_limitcfg_equal(a, b));
    ck_assert_int_eq(parse(&b, 1, w2), 0);
    ck_assert(!mcpgw_limitcfg_equal(a, b));
    mcpgw_limitcfg_free(a);
    mcpgw_limitcfg_free(b);
}
END_TEST

START_TEST(test_gcra_allows_the_burst_then_the_rate)
{
    /* 10/s burst 3: interval 100 ms */
    uint64_t tat = 0, now = 5000000, iv = 100000, w;
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now, iv, 3, 1), 0);
    w = mcpgw_limitcfg_gcra(&tat, now, iv, 3, 1);
    ck_assert_uint_eq(w, 100000);         /* the fourth waits one interval */
    ck_assert_uint_eq(tat, now + 3 * iv); /* a refusal costs nothing */
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now + 99999, iv, 3, 1), 1);
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now + 100000, iv, 3, 1), 0);
    /* steady: one per interval conforms forever */
    for (int i = 2; i < 50; i++)
        ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now + (uint64_t)i * iv, iv, 3, 1), 0);
}
END_TEST

START_TEST(test_gcra_refills_while_idle_and_never_beyond_the_burst)
{
    uint64_t tat = 0, now = 1000000, iv = 1000000, w; /* 1/s burst 2 */
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now, iv, 2, 1), 0);
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now, iv, 2, 1), 0);
    ck_assert_uint_gt(mcpgw_limitcfg_gcra(&tat, now, iv, 2, 1), 0);
    /* an hour idle gives back the burst, not 3600 requests */
    now += 3600ull * 1000000;
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now, iv, 2, 1), 0);
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now, iv, 2, 1), 0);
    w = mcpgw_limitcfg_gcra(&tat, now, iv, 2, 1);
    ck_assert_uint_eq(w, iv);
    /* a peek (commit 0) never moves the bucket */
    tat = 0;
    ck_assert_uint_eq(mcpgw_limitcfg_gcra(&tat, now, iv, 2, 0), 0);
    ck_assert_uint_eq(tat, 0);
}
END_TEST

START_TEST(test_limit_lines_in_the_node_config_name_file_and_line)
{
    struct mcpgw_node_config cfg;
    mcpgw_node_config_defaults(&cfg);
    ck_assert_int_eq(mcpgw_node_config_parse_text(&cfg,
                                                  "limit rate 5/s\n"
                                                  "limit sessions 3 principal=\"iss bob\"\n",
                                                  "node.conf", err, sizeof(err)),
                     0);
    ck_assert_int_eq(cfg.limits->n, 2);
    ck_assert_str_eq(cfg.limits->v[1].principal, "iss bob");
    ck_assert_int_eq(mcpgw_node_config_parse_text(&cfg, "\n\nlimit rate 5/fortnight\n", "node.conf",
                                                  err, sizeof(err)),
                     -1);
    ck_assert_msg(strstr(err, "node.conf:3: limit rate"), "%s", err);
    mcpgw_node_config_free(&cfg);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_limitcfg_parses_rates_caps_and_overrides,
        test_limitcfg_refuses_bad_lines_with_a_reason,
        test_limitcfg_most_specific_rule_wins,
        test_limitcfg_sets_compare_by_rules,
        test_gcra_allows_the_burst_then_the_rate,
        test_gcra_refills_while_idle_and_never_beyond_the_burst,
        test_limit_lines_in_the_node_config_name_file_and_line,
    };
    return mcpgw_check_run("limitcfg", "limitcfg", tests, sizeof(tests) / sizeof(tests[0]));
}
