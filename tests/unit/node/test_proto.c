/* test_proto.c - the protocol revisions the node speaks (mcpgw_proto_parse / mcpgw_proto_str). */
#include "node/proto.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s)
{
    return mcpgw_proto_parse(s, strlen(s));
}

START_TEST(test_proto_parses_every_supported_revision)
{
    ck_assert_int_eq(parse("2025-11-25"), MCPGW_PROTO_2025_11_25);
    ck_assert_int_eq(parse("2025-06-18"), MCPGW_PROTO_2025_06_18);
    ck_assert_int_eq(parse("2025-03-26"), MCPGW_PROTO_2025_03_26);
}
END_TEST

START_TEST(test_proto_str_round_trips_through_parse)
{
    for (int p = 0; p < MCPGW_PROTO_COUNT; p++) {
        const char *s = mcpgw_proto_str((enum mcpgw_proto)p);
        ck_assert_uint_eq(strlen(s), 10);
        ck_assert_int_eq(parse(s), p);
    }
    ck_assert_str_eq(mcpgw_proto_str(MCPGW_PROTO_COUNT), "?");
}
END_TEST

START_TEST(test_proto_lists_revisions_newest_first)
{
    for (int p = 1; p < MCPGW_PROTO_COUNT; p++)
        ck_assert_int_gt(strcmp(mcpgw_proto_str((enum mcpgw_proto)(p - 1)),
                                mcpgw_proto_str((enum mcpgw_proto)p)),
                         0);
}
END_TEST

START_TEST(test_proto_refuses_unsupported_revisions)
{
    static const char *const bad[] = {
        "2024-11-05",  "2026-07-28", "",          "2025-11-2", "2025-11-255", "2025-11-25 ",
        " 2025-11-25", "2025-11-26", "2025-06-1", "latest",    "2025/11/25"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i]) == -1, "'%s' was accepted", bad[i]);
}
END_TEST

START_TEST(test_proto_parse_uses_only_len_bytes)
{
    ck_assert_int_eq(mcpgw_proto_parse("2025-06-18XYZ", 10), MCPGW_PROTO_2025_06_18);
    ck_assert_int_eq(mcpgw_proto_parse("2025-06-18", 9), -1);
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("version");
    tcase_add_test(tc, test_proto_parses_every_supported_revision);
    tcase_add_test(tc, test_proto_str_round_trips_through_parse);
    tcase_add_test(tc, test_proto_lists_revisions_newest_first);
    tcase_add_test(tc, test_proto_refuses_unsupported_revisions);
    tcase_add_test(tc, test_proto_parse_uses_only_len_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
