/* test_replay.c - Check suite for gossip/replay.c: per-sender windows of envelope counters and
 * the age bound. */
#include "gossip/replay.h"

#include <check.h>
#include <stdio.h>

#include "../check-run.h"

#define NOW  1800000000000ULL
#define SKEW 30000

static int check(struct mcpgw_gossip_replay *r, const char *id, uint64_t gen, uint64_t ctr)
{
    return mcpgw_gossip_replay_check(r, id, gen, ctr, NOW, NOW);
}

START_TEST(test_a_counter_is_accepted_once)
{
    struct mcpgw_gossip_replay *r = mcpgw_gossip_replay_new(8, SKEW);
    ck_assert_int_eq(check(r, "n1", 5, 1000), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 5, 1000), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    ck_assert_int_eq(check(r, "n1", 5, 1001), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 5, 1001), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    /* another sender has its own window */
    ck_assert_int_eq(check(r, "n2", 5, 1000), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(mcpgw_gossip_replay_count(r), 2);
    mcpgw_gossip_replay_free(r);
}
END_TEST

START_TEST(test_late_datagrams_inside_the_window_are_accepted_once)
{
    struct mcpgw_gossip_replay *r = mcpgw_gossip_replay_new(8, SKEW);
    const uint64_t top = 1000000;

    /* counters go to other members in between: a receiver sees gaps and reordering */
    ck_assert_int_eq(check(r, "n1", 5, top - 300), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 5, top), MCPGW_GOSSIP_REPLAY_FRESH);
    for (uint64_t back = 1; back < MCPGW_GOSSIP_REPLAY_WINDOW; back += 37) {
        ck_assert_int_eq(check(r, "n1", 5, top - back), MCPGW_GOSSIP_REPLAY_FRESH);
        ck_assert_int_eq(check(r, "n1", 5, top - back), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    }
    ck_assert_int_eq(check(r, "n1", 5, top - MCPGW_GOSSIP_REPLAY_WINDOW),
                     MCPGW_GOSSIP_REPLAY_BEHIND);
    ck_assert_int_eq(check(r, "n1", 5, top - 300), MCPGW_GOSSIP_REPLAY_BEHIND);
    /* moving the window up keeps what it still covers (across its 64-bit words) */
    ck_assert_int_eq(check(r, "n1", 5, top + 65), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 5, top), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    ck_assert_int_eq(check(r, "n1", 5, top - 1), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    ck_assert_int_eq(check(r, "n1", 5, top - 38), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    ck_assert_int_eq(check(r, "n1", 5, top - 2), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 5, top - 149), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    ck_assert_int_eq(check(r, "n1", 5, top - 223),
                     MCPGW_GOSSIP_REPLAY_BEHIND); /* 223 + 65 >= 256 */
    ck_assert_int_eq(check(r, "n1", 5, top + 1000), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 5, top + 65), MCPGW_GOSSIP_REPLAY_BEHIND);
    mcpgw_gossip_replay_free(r);
}
END_TEST

START_TEST(test_a_restarted_sender_starts_a_new_window_and_its_past_life_is_refused)
{
    struct mcpgw_gossip_replay *r = mcpgw_gossip_replay_new(8, SKEW);
    ck_assert_int_eq(check(r, "n1", 5, 900000), MCPGW_GOSSIP_REPLAY_FRESH);
    /* a new process draws a new random counter start, lower here */
    ck_assert_int_eq(check(r, "n1", 6, 12), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 6, 13), MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(check(r, "n1", 6, 12), MCPGW_GOSSIP_REPLAY_DUPLICATE);
    ck_assert_int_eq(check(r, "n1", 5, 900001), MCPGW_GOSSIP_REPLAY_BEHIND);
    mcpgw_gossip_replay_free(r);
}
END_TEST

START_TEST(test_datagrams_outside_the_clock_skew_are_stale_and_not_remembered)
{
    struct mcpgw_gossip_replay *r = mcpgw_gossip_replay_new(8, SKEW);
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n1", 5, 1, NOW - SKEW - 1, NOW),
                     MCPGW_GOSSIP_REPLAY_STALE);
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n1", 5, 1, NOW + SKEW + 1, NOW),
                     MCPGW_GOSSIP_REPLAY_STALE);
    ck_assert_int_eq(mcpgw_gossip_replay_count(r), 0);
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n1", 5, 1, NOW - SKEW, NOW),
                     MCPGW_GOSSIP_REPLAY_FRESH);
    mcpgw_gossip_replay_free(r);
    /* 0: no age bound */
    r = mcpgw_gossip_replay_new(8, 0);
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n1", 5, 1, 0, NOW), MCPGW_GOSSIP_REPLAY_FRESH);
    mcpgw_gossip_replay_free(r);
}
END_TEST

START_TEST(test_the_table_is_bounded_and_forgets_the_quietest_sender)
{
    struct mcpgw_gossip_replay *r = mcpgw_gossip_replay_new(4, SKEW);
    char id[16];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        ck_assert_int_eq(
            mcpgw_gossip_replay_check(r, id, 1, 10, NOW + (uint64_t)i, NOW + (uint64_t)i),
            MCPGW_GOSSIP_REPLAY_FRESH);
    }
    /* n0 is the quietest: a fifth sender takes its place */
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n9", 1, 10, NOW + 9, NOW + 9),
                     MCPGW_GOSSIP_REPLAY_FRESH);
    ck_assert_int_eq(mcpgw_gossip_replay_count(r), 4);
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n1", 1, 10, NOW + 9, NOW + 9),
                     MCPGW_GOSSIP_REPLAY_DUPLICATE);
    /* forgotten: judged by age alone */
    ck_assert_int_eq(mcpgw_gossip_replay_check(r, "n0", 1, 10, NOW + 9, NOW + 9),
                     MCPGW_GOSSIP_REPLAY_FRESH);
    mcpgw_gossip_replay_free(r);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_a_counter_is_accepted_once,
        test_late_datagrams_inside_the_window_are_accepted_once,
        test_a_restarted_sender_starts_a_new_window_and_its_past_life_is_refused,
        test_datagrams_outside_the_clock_skew_are_stale_and_not_remembered,
        test_the_table_is_bounded_and_forgets_the_quietest_sender,
    };
    return mcpgw_check_run("replay", "replay", tests, sizeof(tests) / sizeof(tests[0]));
}
