/* test_hash.c - 64-bit hash stability and rendezvous (HRW) selection. */
#include "common/hash.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const nodes5[] = {"node-a", "node-b", "node-c", "node-d", "node-e"};

static size_t key(char *buf, size_t cap, int i)
{
    return (size_t)snprintf(buf, cap, "mcp-session-%d", i);
}

START_TEST(test_hash64_is_pinned_to_known_values)
{
    /* Routing depends on these staying the same across versions (values from an independent
     * implementation of FNV-1a 64 ^ length, then the murmur3 fmix64 finalizer). */
    ck_assert_uint_eq(mcpgw_hash64("", 0), 0xefd01f60ba992926ULL);
    ck_assert_uint_eq(mcpgw_hash64("a", 1), 0x25ad9d1b70de62d1ULL);
    ck_assert_uint_eq(mcpgw_hash64("mcp-session-1", 13), 0x40ea9dbf2c8af68aULL);
    ck_assert_uint_eq(mcpgw_hrw_weight(mcpgw_hash64("mcp-session-1", 13), "node-a"),
                      0x62f6cb6fba492abdULL);
}
END_TEST

START_TEST(test_hrw_pick_is_deterministic)
{
    static const unsigned char all[] = {1, 1, 1, 1, 1};
    char k[64];
    for (int i = 0; i < 1000; i++) {
        size_t n = key(k, sizeof(k), i);
        int a = mcpgw_hrw_pick(k, n, nodes5, NULL, 5);
        ck_assert_int_ge(a, 0);
        ck_assert_int_lt(a, 5);
        ck_assert_int_eq(mcpgw_hrw_pick(k, n, nodes5, NULL, 5), a);
        ck_assert_int_eq(mcpgw_hrw_pick(k, n, nodes5, all, 5), a);
    }
}
END_TEST

START_TEST(test_hrw_pick_is_the_highest_weight_node)
{
    char k[64];
    for (int i = 0; i < 1000; i++) {
        size_t n = key(k, sizeof(k), i);
        uint64_t kh = mcpgw_hash64(k, n);
        int w = mcpgw_hrw_pick(k, n, nodes5, NULL, 5);
        for (int j = 0; j < 5; j++)
            if (j != w)
                ck_assert_uint_gt(mcpgw_hrw_weight(kh, nodes5[w]), mcpgw_hrw_weight(kh, nodes5[j]));
    }
}
END_TEST

START_TEST(test_hrw_pick_does_not_depend_on_node_order)
{
    static const char *const reversed[] = {"node-e", "node-d", "node-c", "node-b", "node-a"};
    char k[64];
    for (int i = 0; i < 1000; i++) {
        size_t n = key(k, sizeof(k), i);
        int a = mcpgw_hrw_pick(k, n, nodes5, NULL, 5);
        int b = mcpgw_hrw_pick(k, n, reversed, NULL, 5);
        ck_assert_str_eq(nodes5[a], reversed[b]);
    }
}
END_TEST

START_TEST(test_hrw_pick_skips_unusable_nodes)
{
    char k[64];
    for (int i = 0; i < 1000; i++) {
        size_t n = key(k, sizeof(k), i);
        unsigned char usable[5] = {1, 1, 1, 1, 1};
        int first = mcpgw_hrw_pick(k, n, nodes5, usable, 5), second;
        usable[first] = 0;
        second = mcpgw_hrw_pick(k, n, nodes5, usable, 5);
        ck_assert_int_ge(second, 0);
        ck_assert_int_ne(second, first);
        ck_assert(usable[second]);
        /* only one usable node left: it must win */
        memset(usable, 0, sizeof(usable));
        usable[i % 5] = 1;
        ck_assert_int_eq(mcpgw_hrw_pick(k, n, nodes5, usable, 5), i % 5);
    }
}
END_TEST

START_TEST(test_hrw_pick_returns_minus_one_when_none_usable)
{
    static const unsigned char none[] = {0, 0, 0, 0, 0};
    ck_assert_int_eq(mcpgw_hrw_pick("k", 1, nodes5, none, 5), -1);
    ck_assert_int_eq(mcpgw_hrw_pick("k", 1, nodes5, NULL, 0), -1);
}
END_TEST

START_TEST(test_hrw_removing_a_node_moves_only_its_keys)
{
    enum { KEYS = 10000 };
    static const char *const four[] = {"node-a", "node-b", "node-d", "node-e"};
    unsigned char usable[5] = {1, 1, 0, 1, 1}; /* node-c gone */
    int owned_by_c = 0, moved = 0;
    char k[64];
    for (int i = 0; i < KEYS; i++) {
        size_t n = key(k, sizeof(k), i);
        int before = mcpgw_hrw_pick(k, n, nodes5, NULL, 5);
        int after = mcpgw_hrw_pick(k, n, nodes5, usable, 5);
        int shrunk = mcpgw_hrw_pick(k, n, four, NULL, 4);
        ck_assert_str_eq(nodes5[after], four[shrunk]);
        if (before == 2) {
            owned_by_c++;
            ck_assert_int_ne(after, 2);
        } else {
            ck_assert_int_eq(after, before);
        }
        moved += after != before;
    }
    ck_assert_int_eq(moved, owned_by_c);
    ck_assert_int_gt(owned_by_c, KEYS / 10); /* node-c owned its share (about 1/5) */
}
END_TEST

START_TEST(test_hrw_spreads_40000_keys_over_4_nodes_within_10_percent)
{
    enum { KEYS = 40000 };
    static const char *const four[] = {"n1", "n2", "n3", "n4"};
    int count[4] = {0};
    char k[64];
    for (int i = 0; i < KEYS; i++) {
        size_t n = key(k, sizeof(k), i);
        count[mcpgw_hrw_pick(k, n, four, NULL, 4)]++;
    }
    for (int j = 0; j < 4; j++) {
        ck_assert_int_ge(count[j], KEYS / 4 * 9 / 10);
        ck_assert_int_le(count[j], KEYS / 4 * 11 / 10);
    }
}
END_TEST

static Suite *hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("hrw");
    tcase_add_test(tc, test_hash64_is_pinned_to_known_values);
    tcase_add_test(tc, test_hrw_pick_is_deterministic);
    tcase_add_test(tc, test_hrw_pick_is_the_highest_weight_node);
    tcase_add_test(tc, test_hrw_pick_does_not_depend_on_node_order);
    tcase_add_test(tc, test_hrw_pick_skips_unusable_nodes);
    tcase_add_test(tc, test_hrw_pick_returns_minus_one_when_none_usable);
    tcase_add_test(tc, test_hrw_removing_a_node_moves_only_its_keys);
    tcase_add_test(tc, test_hrw_spreads_40000_keys_over_4_nodes_within_10_percent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hash_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
