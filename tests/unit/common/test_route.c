/* test_route.c - session-prefix, rendezvous (HRW) and power-of-two-choices routing. */
#include "common/route.h"

#include "common/hash.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ids4[] = {"n1", "n2", "n3", "n4"};

static void nodes_init(struct mcpgw_route_node *n, int count)
{
    memset(n, 0, sizeof(*n) * (size_t)count);
    for (int i = 0; i < count; i++) {
        n[i].id = ids4[i];
        n[i].usable = 1;
    }
}

/* A session id minted by node `prefix` (NULL: an id with no routing prefix). */
static size_t sid(char *buf, size_t cap, const char *prefix, int i)
{
    if (prefix)
        return (size_t)snprintf(buf, cap, "%s.AbCdEfGhIjKlMnOpQr%04d", prefix, i);
    return (size_t)snprintf(buf, cap, "AbCdEfGhIjKlMnOpQrStUv%06d", i);
}

START_TEST(test_route_sends_a_session_to_the_node_its_prefix_names)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    char s[64];
    nodes_init(n, 4);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 100; i++) {
            size_t len = sid(s, sizeof(s), ids4[k], i);
            ck_assert_int_eq(mcpgw_route_pick(n, 4, s, len, &rng), k);
        }
}
END_TEST

START_TEST(test_route_sends_a_session_whose_node_is_down_to_the_hrw_choice_among_up_nodes)
{
    struct mcpgw_route_node n[4];
    static const unsigned char up[] = {1, 0, 1, 1};
    uint64_t rng = 1;
    char s[64];
    int seen[4] = {0};
    nodes_init(n, 4);
    n[1].usable = 0;
    for (int i = 0; i < 400; i++) {
        size_t len = sid(s, sizeof(s), "n2", i);
        int got = mcpgw_route_pick(n, 4, s, len, &rng);
        ck_assert_int_ne(got, 1);
        ck_assert_int_eq(got, mcpgw_hrw_pick(s, len, ids4, up, 4));
        seen[got]++;
    }
    /* The dead node's sessions spread over the survivors instead of piling onto one. */
    ck_assert_int_gt(seen[0], 80);
    ck_assert_int_gt(seen[2], 80);
    ck_assert_int_gt(seen[3], 80);
}
END_TEST

START_TEST(test_route_sends_a_session_with_an_unknown_prefix_by_hrw)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    char s[64];
    nodes_init(n, 4);
    for (int i = 0; i < 200; i++) {
        size_t len = sid(s, sizeof(s), "n9", i);
        ck_assert_int_eq(mcpgw_route_pick(n, 4, s, len, &rng),
                         mcpgw_hrw_pick(s, len, ids4, NULL, 4));
        len = sid(s, sizeof(s), NULL, i);
        ck_assert_int_eq(mcpgw_route_pick(n, 4, s, len, &rng),
                         mcpgw_hrw_pick(s, len, ids4, NULL, 4));
    }
}
END_TEST

START_TEST(test_route_prefix_must_match_a_whole_node_id)
{
    static const char *const ids[] = {"n1", "n10"};
    struct mcpgw_route_node n[2];
    uint64_t rng = 1;
    memset(n, 0, sizeof(n));
    n[0].id = ids[0];
    n[1].id = ids[1];
    n[0].usable = n[1].usable = 1;
    ck_assert_int_eq(mcpgw_route_pick(n, 2, "n10.xyz", 7, &rng), 1);
    ck_assert_int_eq(mcpgw_route_pick(n, 2, "n1.xyz", 6, &rng), 0);
}
END_TEST

START_TEST(test_route_keeps_a_session_on_its_draining_node)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    nodes_init(n, 4);
    n[2].draining = 1;
    ck_assert_int_eq(mcpgw_route_pick(n, 4, "n3.abcdef", 9, &rng), 2);
}
END_TEST

START_TEST(test_route_never_moves_a_session_to_a_draining_node_while_another_is_up)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    char s[64];
    nodes_init(n, 4);
    n[0].usable = 0; /* the owner is down */
    n[2].draining = 1;
    for (int i = 0; i < 500; i++) {
        size_t len = sid(s, sizeof(s), "n1", i);
        int got = mcpgw_route_pick(n, 4, s, len, &rng);
        ck_assert(got == 1 || got == 3);
    }
    /* Only draining nodes left: better there than nowhere. */
    n[1].usable = n[3].usable = 0;
    ck_assert_int_eq(mcpgw_route_pick(n, 4, "n1.abc", 6, &rng), 2);
}
END_TEST

START_TEST(test_route_hrw_removing_a_node_moves_only_its_sessions)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    char s[64];
    int before[4000], moved = 0, owned_by_n3 = 0;
    nodes_init(n, 4);
    for (int i = 0; i < 4000; i++) {
        size_t len = sid(s, sizeof(s), NULL, i);
        before[i] = mcpgw_route_pick(n, 4, s, len, &rng);
    }
    n[2].usable = 0;
    for (int i = 0; i < 4000; i++) {
        size_t len = sid(s, sizeof(s), NULL, i);
        int after = mcpgw_route_pick(n, 4, s, len, &rng);
        if (before[i] == 2) {
            owned_by_n3++;
            ck_assert_int_ne(after, 2);
        } else {
            ck_assert_int_eq(after, before[i]);
        }
        moved += after != before[i];
    }
    ck_assert_int_eq(moved, owned_by_n3);
    ck_assert_int_gt(owned_by_n3, 800);
    ck_assert_int_lt(owned_by_n3, 1200);
}
END_TEST

START_TEST(test_route_hrw_gives_every_worker_the_same_answer_whatever_the_slot_order)
{
    static const char *const rev[] = {"n4", "n3", "n2", "n1"};
    struct mcpgw_route_node a[4], b[4];
    uint64_t r1 = 1, r2 = 99;
    char s[64];
    nodes_init(a, 4);
    nodes_init(b, 4);
    for (int i = 0; i < 4; i++)
        b[i].id = rev[i];
    a[1].usable = 0;
    b[2].usable = 0; /* n2 in both */
    for (int i = 0; i < 1000; i++) {
        size_t len = sid(s, sizeof(s), "n2", i);
        int x = mcpgw_route_pick(a, 4, s, len, &r1), y = mcpgw_route_pick(b, 4, s, len, &r2);
        ck_assert_str_eq(a[x].id, b[y].id);
    }
}
END_TEST

START_TEST(test_route_p2c_never_picks_a_down_or_draining_node)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 42;
    int seen[4] = {0};
    nodes_init(n, 4);
    n[0].usable = 0;
    n[3].draining = 1;
    for (int i = 0; i < 10000; i++) {
        int got;
        for (int j = 0; j < 4; j++)
            n[j].load = (uint32_t)(mcpgw_route_rand(&rng) % 5);
        got = mcpgw_route_pick(n, 4, NULL, 0, &rng);
        ck_assert(got == 1 || got == 2);
        seen[got]++;
    }
    ck_assert_int_gt(seen[1], 2000);
    ck_assert_int_gt(seen[2], 2000);
}
END_TEST

START_TEST(test_route_p2c_picks_the_less_loaded_of_its_two_choices)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 7;
    int seen[4] = {0};
    nodes_init(n, 4);
    n[0].load = 10;
    n[1].load = 1;
    n[2].load = 5;
    n[3].load = 7;
    for (int i = 0; i < 4000; i++)
        seen[mcpgw_route_pick(n, 4, NULL, 0, &rng)]++;
    /* The most loaded node loses every comparison; the least loaded wins every one it is in
     * (half of all pairs). */
    ck_assert_int_eq(seen[0], 0);
    ck_assert_int_gt(seen[1], 1800);
    ck_assert_int_gt(seen[1], seen[2]);
    ck_assert_int_gt(seen[2], seen[3]);
}
END_TEST

START_TEST(test_route_p2c_breaks_load_ties_by_fewer_picks)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 3;
    int count[4] = {0};
    nodes_init(n, 4);
    /* Equal loads: counting picks as the tie-break spreads sessions nearly evenly. */
    for (int i = 0; i < 400; i++) {
        int got = mcpgw_route_pick(n, 4, NULL, 0, &rng);
        n[got].picks++;
        count[got]++;
    }
    for (int j = 0; j < 4; j++) {
        ck_assert_int_ge(count[j], 95);
        ck_assert_int_le(count[j], 105);
    }
}
END_TEST

START_TEST(test_route_answers_minus_one_when_no_node_may_take_the_request)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    nodes_init(n, 4);
    for (int i = 0; i < 4; i++)
        n[i].usable = 0;
    ck_assert_int_eq(mcpgw_route_pick(n, 4, NULL, 0, &rng), -1);
    ck_assert_int_eq(mcpgw_route_pick(n, 4, "n1.abc", 6, &rng), -1);
    for (int i = 0; i < 4; i++) {
        n[i].usable = 1;
        n[i].draining = 1;
    }
    ck_assert_int_eq(mcpgw_route_pick(n, 4, NULL, 0, &rng), -1);
    ck_assert_int_eq(mcpgw_route_pick(n, 0, NULL, 0, &rng), -1);
}
END_TEST

START_TEST(test_route_p2c_with_one_usable_node_picks_it)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    nodes_init(n, 4);
    n[0].usable = n[1].usable = n[3].usable = 0;
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(mcpgw_route_pick(n, 4, NULL, 0, &rng), 2);
}
END_TEST

START_TEST(test_route_empty_slots_are_never_picked)
{
    struct mcpgw_route_node n[4];
    uint64_t rng = 1;
    char s[64];
    nodes_init(n, 4);
    n[1].id = NULL;
    for (int i = 0; i < 500; i++) {
        size_t len = sid(s, sizeof(s), NULL, i);
        ck_assert_int_ne(mcpgw_route_pick(n, 4, NULL, 0, &rng), 1);
        ck_assert_int_ne(mcpgw_route_pick(n, 4, s, len, &rng), 1);
    }
}
END_TEST

START_TEST(test_route_prefix_is_everything_before_the_first_dot)
{
    ck_assert_uint_eq(mcpgw_route_prefix_len("n1.abc", 6), 2);
    ck_assert_uint_eq(mcpgw_route_prefix_len("node-7.a.b", 10), 6);
    ck_assert_uint_eq(mcpgw_route_prefix_len("nodot", 5), 0);
    ck_assert_uint_eq(mcpgw_route_prefix_len(".x", 2), 0);
}
END_TEST

START_TEST(test_route_query_param_finds_the_legacy_session_id)
{
    const char *v;
    size_t len;
    const char *q = "foo=1&sessionId=n2.abc&bar=2";
    ck_assert_int_eq(mcpgw_route_query_param(q, strlen(q), "sessionId", &v, &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(v, "n2.abc", 6) == 0);
    q = "sessionId=n3.x";
    ck_assert_int_eq(mcpgw_route_query_param(q, strlen(q), "sessionId", &v, &len), 0);
    ck_assert_uint_eq(len, 4);
    q = "xsessionId=n3.x&sessionIdx=1";
    ck_assert_int_eq(mcpgw_route_query_param(q, strlen(q), "sessionId", &v, &len), -1);
    q = "sessionId=";
    ck_assert_int_eq(mcpgw_route_query_param(q, strlen(q), "sessionId", &v, &len), -1);
    ck_assert_int_eq(mcpgw_route_query_param("", 0, "sessionId", &v, &len), -1);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("sessions");
    tcase_add_test(tc, test_route_sends_a_session_to_the_node_its_prefix_names);
    tcase_add_test(tc,
                   test_route_sends_a_session_whose_node_is_down_to_the_hrw_choice_among_up_nodes);
    tcase_add_test(tc, test_route_sends_a_session_with_an_unknown_prefix_by_hrw);
    tcase_add_test(tc, test_route_prefix_must_match_a_whole_node_id);
    tcase_add_test(tc, test_route_keeps_a_session_on_its_draining_node);
    tcase_add_test(tc, test_route_never_moves_a_session_to_a_draining_node_while_another_is_up);
    tcase_add_test(tc, test_route_hrw_removing_a_node_moves_only_its_sessions);
    tcase_add_test(tc, test_route_hrw_gives_every_worker_the_same_answer_whatever_the_slot_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, test_route_p2c_never_picks_a_down_or_draining_node);
    tcase_add_test(tc, test_route_p2c_picks_the_less_loaded_of_its_two_choices);
    tcase_add_test(tc, test_route_p2c_breaks_load_ties_by_fewer_picks);
    tcase_add_test(tc, test_route_p2c_with_one_usable_node_picks_it);
    tcase_add_test(tc, test_route_answers_minus_one_when_no_node_may_take_the_request);
    tcase_add_test(tc, test_route_empty_slots_are_never_picked);
    suite_add_tcase(s, tc);
    tc = tcase_create("keys");
    tcase_add_test(tc, test_route_prefix_is_everything_before_the_first_dot);
    tcase_add_test(tc, test_route_query_param_finds_the_legacy_session_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(route_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
