/* test_admin.c - the admin /healthz body: which nodes every running worker can route to. */
#include "balancer/admin.h"

#include "balancer/membership.h"
#include "balancer/shared.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static struct mcpgw_bal_shared *sh;
static char err[256];

static void setup(void)
{
    struct mcpgw_bal_node_spec s[4];
    const char *ids[4] = {"n1", "n2", "n3", "n4"};
    sh = mcpgw_bal_shared_new(err, sizeof(err));
    ck_assert_ptr_nonnull(sh);
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 4; i++) {
        strcpy(s[i].id, ids[i]);
        strcpy(s[i].addr, "127.0.0.1:8801");
    }
    ck_assert_int_eq(mcpgw_bal_membership_publish(sh, s, 4, err, sizeof(err)), 0);
    sh->workers[0].pid = 100;
    sh->workers[1].pid = 101;
}

static void teardown(void)
{
    mcpgw_bal_shared_free(sh);
}

/* The body as a string; *up gets the return value. Free with free(). */
static char *health(int draining, int *up)
{
    struct evbuffer *b = evbuffer_new();
    size_t len;
    char *s;
    *up = mcpgw_bal_admin_render_health(sh, draining, b);
    len = evbuffer_get_length(b);
    s = calloc(1, len + 1);
    evbuffer_remove(b, s, len);
    evbuffer_free(b);
    return s;
}

START_TEST(test_admin_health_counts_every_node_routable_in_a_complete_table)
{
    int up;
    char *s = health(0, &up);
    ck_assert_int_eq(up, 4);
    ck_assert_str_eq(s, "{\"status\":\"ok\",\"nodes\":4,\"nodes_up\":4,\"workers\":2,"
                        "\"fallback\":false,\"routable\":4,\"not_routable\":[]}\n");
    free(s);
}
END_TEST

START_TEST(test_admin_health_names_nodes_down_draining_or_marked_by_one_worker)
{
    int up;
    char *s;
    sh->slots[0].up = 0;
    sh->slots[1].draining = 2;
    sh->workers[1].nodes[2].passive_down = 1;
    sh->workers[5].nodes[3].passive_down = 1; /* a worker slot with no process: ignored */
    s = health(0, &up);
    ck_assert_int_eq(up, 3);
    ck_assert_str_eq(
        s, "{\"status\":\"ok\",\"nodes\":4,\"nodes_up\":3,\"workers\":2,"
           "\"fallback\":false,\"routable\":1,\"not_routable\":[\"n1: down\",\"n2: draining\","
           "\"n3: marked down by a worker\"]}\n");
    free(s);
}
END_TEST

START_TEST(test_admin_health_escapes_quotes_in_gossip_ids_and_flags_a_fallback_table)
{
    int up;
    char *s;
    strcpy(sh->slots[0].id, "a\"b\\c");
    sh->slots[0].up = 0;
    sh->fallback = 1;
    s = health(1, &up);
    ck_assert_ptr_nonnull(strstr(s, "\"status\":\"draining\""));
    ck_assert_ptr_nonnull(strstr(s, "\"fallback\":true"));
    ck_assert_ptr_nonnull(strstr(s, "\"not_routable\":[\"a\\\"b\\\\c: down\"]"));
    free(s);
}
END_TEST

static Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("health");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_admin_health_counts_every_node_routable_in_a_complete_table);
    tcase_add_test(tc, test_admin_health_names_nodes_down_draining_or_marked_by_one_worker);
    tcase_add_test(tc, test_admin_health_escapes_quotes_in_gossip_ids_and_flags_a_fallback_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(admin_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
