/* test_membership.c - publishing node lists into the shared table that workers route on. */
#include "balancer/membership.h"

#include "balancer/shared.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct mcpgw_bal_shared *sh;
static char err[256];

static void setup(void)
{
    sh = mcpgw_bal_shared_new(err, sizeof(err));
    ck_assert_ptr_nonnull(sh);
}

static void teardown(void)
{
    mcpgw_bal_shared_free(sh);
}

static void spec(struct mcpgw_bal_node_spec *s, const char *id, const char *addr)
{
    memset(s, 0, sizeof(*s));
    strcpy(s->id, id);
    strcpy(s->addr, addr);
}

static int slot_of(const char *id)
{
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++)
        if (sh->slots[i].in_use && strcmp(sh->slots[i].id, id) == 0)
            return i;
    return -1;
}

START_TEST(test_membership_publishes_nodes_up_with_resolved_addresses)
{
    struct mcpgw_bal_node_spec s[2];
    struct mcpgw_bal_slot table[MCPGW_BAL_MAX_NODES];
    uint32_t n;
    spec(&s[0], "n1", "127.0.0.1:8801");
    spec(&s[1], "n2", "localhost:8802");
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 2, err, sizeof(err)), 0);
    ck_assert_uint_eq(mcpgw_bal_shared_gen(sh) % 2, 0);
    mcpgw_bal_shared_read(sh, table, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(table[0].id, "n1");
    ck_assert_uint_eq(table[0].in_use, 1);
    ck_assert_uint_eq(table[0].up, 1);
    ck_assert_uint_gt(table[0].salen, 0);
    ck_assert_uint_gt(table[1].salen, 0);
}
END_TEST

START_TEST(test_membership_keeps_a_node_in_its_slot_across_reloads)
{
    struct mcpgw_bal_node_spec s[3];
    uint32_t g1;
    spec(&s[0], "n1", "127.0.0.1:8801");
    spec(&s[1], "n2", "127.0.0.1:8802");
    spec(&s[2], "n3", "127.0.0.1:8803");
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 3, err, sizeof(err)), 0);
    g1 = mcpgw_bal_shared_gen(sh);
    sh->workers[0].nodes[1].requests = 77; /* n2's counters */
    MCPGW_STORE(&sh->slots[1].up, 0);      /* n2 is down */
    /* Reload: n1 removed, order changed, n4 added. */
    spec(&s[0], "n3", "127.0.0.1:8803");
    spec(&s[1], "n4", "127.0.0.1:8804");
    spec(&s[2], "n2", "127.0.0.1:8802");
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 3, err, sizeof(err)), 0);
    ck_assert_uint_ne(mcpgw_bal_shared_gen(sh), g1);
    ck_assert_int_eq(slot_of("n1"), -1);
    ck_assert_int_eq(slot_of("n2"), 1);
    ck_assert_int_eq(slot_of("n3"), 2);
    ck_assert_int_eq(slot_of("n4"), 3); /* a never-used slot, not n1's */
    ck_assert_uint_eq(sh->workers[0].nodes[1].requests, 77);
    ck_assert_uint_eq(sh->slots[1].up, 0); /* a reload does not resurrect a down node */
    /* n1 comes back: it gets its old slot again. */
    spec(&s[0], "n1", "127.0.0.1:8801");
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 3, err, sizeof(err)), 0);
    ck_assert_int_eq(slot_of("n1"), 0);
}
END_TEST

START_TEST(test_membership_reuses_a_freed_slot_only_when_no_fresh_one_is_left)
{
    struct mcpgw_bal_node_spec *s = calloc(MCPGW_BAL_MAX_NODES, sizeof(*s));
    char id[16], addr[32];
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9000 + i);
        spec(&s[i], id, addr);
    }
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, MCPGW_BAL_MAX_NODES, err, sizeof(err)), 0);
    sh->workers[0].nodes[5].requests = 9;
    spec(&s[5], "fresh", "127.0.0.1:9999"); /* n5 leaves, fresh arrives */
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, MCPGW_BAL_MAX_NODES, err, sizeof(err)), 0);
    ck_assert_int_eq(slot_of("fresh"), 5);
    ck_assert_uint_eq(sh->workers[0].nodes[5].requests, 0); /* counters start over */
    free(s);
}
END_TEST

START_TEST(test_membership_rejects_an_unresolvable_address_and_keeps_the_table)
{
    struct mcpgw_bal_node_spec s[2];
    uint32_t g;
    spec(&s[0], "n1", "127.0.0.1:8801");
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 1, err, sizeof(err)), 0);
    g = mcpgw_bal_shared_gen(sh);
    spec(&s[1], "n2", "no-such-host.invalid:8802");
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 2, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "n2"));
    ck_assert_uint_eq(mcpgw_bal_shared_gen(sh), g);
    ck_assert_int_eq(slot_of("n2"), -1);
}
END_TEST

START_TEST(test_membership_marks_draining_nodes)
{
    struct mcpgw_bal_node_spec s[2];
    spec(&s[0], "n1", "127.0.0.1:8801");
    spec(&s[1], "n2", "127.0.0.1:8802");
    s[1].draining = 1;
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 2, err, sizeof(err)), 0);
    ck_assert_uint_eq(sh->slots[0].draining, 0);
    ck_assert_uint_eq(sh->slots[1].draining, 1);
    ck_assert_uint_eq(sh->slots[1].up, 1);
}
END_TEST

static Suite *membership_suite(void)
{
    Suite *s = suite_create("membership");
    TCase *tc = tcase_create("publish");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_membership_publishes_nodes_up_with_resolved_addresses);
    tcase_add_test(tc, test_membership_keeps_a_node_in_its_slot_across_reloads);
    tcase_add_test(tc, test_membership_reuses_a_freed_slot_only_when_no_fresh_one_is_left);
    tcase_add_test(tc, test_membership_rejects_an_unresolvable_address_and_keeps_the_table);
    tcase_add_test(tc, test_membership_marks_draining_nodes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(membership_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
