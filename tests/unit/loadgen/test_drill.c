/* test_drill.c - drill specifications: what parses, and the sentences for what does not. */
#include "loadgen/drill.h"
#include "tests/unit/check-run.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_drill_parses_every_kind)
{
    struct mcpgw_drill d;
    char err[200];
    ck_assert_int_eq(mcpgw_drill_parse("kill:n2@30s", &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d.kind, MCPGW_DRILL_KILL);
    ck_assert_str_eq(d.target, "n2");
    ck_assert_uint_eq(d.at_ms, 30000);
    ck_assert_int_eq(mcpgw_drill_parse("stop:node-3@1500ms+10s", &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d.kind, MCPGW_DRILL_STOP);
    ck_assert_uint_eq(d.at_ms, 1500);
    ck_assert_uint_eq(d.for_ms, 10000);
    ck_assert(mcpgw_drill_has_resume(&d));
    ck_assert_int_eq(mcpgw_drill_parse("drain:n1@1m", &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d.kind, MCPGW_DRILL_DRAIN);
    ck_assert_uint_eq(d.at_ms, 60000);
    ck_assert(!mcpgw_drill_has_resume(&d));
    ck_assert_int_eq(mcpgw_drill_parse("redis-restart@30s", &d, err, sizeof(err)), 0);
    ck_assert_int_eq(d.kind, MCPGW_DRILL_REDIS_RESTART);
    ck_assert_str_eq(d.target, "");
    ck_assert_int_eq(mcpgw_drill_parse("redis-restart@30s+2s", &d, err, sizeof(err)), 0);
    ck_assert_uint_eq(d.for_ms, 2000);
    ck_assert_str_eq(d.spec, "redis-restart@30s+2s");
}
END_TEST

START_TEST(test_drill_refuses_malformed_specs_with_a_reason)
{
    static const char *bad[] = {"kill:n2",      "kill@30s",           "explode:n2@30s",
                                "stop:n2@30s",  "kill:n2@30s+5s",     "kill:n 2@30s",
                                "kill:n2@soon", "redis-restart:x@1s", "stop:n2@1s+later"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mcpgw_drill d;
        char err[200] = "";
        ck_assert_msg(mcpgw_drill_parse(bad[i], &d, err, sizeof(err)) == -1, "%s parsed", bad[i]);
        ck_assert_msg(strstr(err, "--drill") != NULL, "%s: no reason: '%s'", bad[i], err);
    }
}
END_TEST

START_TEST(test_drill_reports_a_missing_node_instead_of_acting)
{
    struct mcpgw_drill d;
    struct mcpgw_drill_env env = {NULL, 6379, NULL};
    char err[200] = "";
    pid_t pid = 123;
    ck_assert_int_eq(mcpgw_drill_parse("kill:no-such-node-xyz@1s", &d, err, sizeof(err)), 0);
    ck_assert_int_eq(mcpgw_drill_act(&d, &env, &pid, err, sizeof(err)), -1);
    ck_assert_int_eq(pid, 0);
    ck_assert_ptr_nonnull(strstr(err, "no-such-node-xyz"));
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_drill_parses_every_kind,
                            test_drill_refuses_malformed_specs_with_a_reason,
                            test_drill_reports_a_missing_node_instead_of_acting};
    return mcpgw_check_run("drill", "drill", tests, sizeof(tests) / sizeof(tests[0]));
}
