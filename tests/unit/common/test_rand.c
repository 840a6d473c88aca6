/* test_rand.c - the shared xorshift64* generator. */
#include "common/rand.h"
#include "tests/unit/check-run.h"

#include <check.h>
#include <stdlib.h>

START_TEST(test_rand_is_xorshift64star_from_a_given_state)
{
    /* The first outputs from state 1, computed by hand from the three shifts and the multiply. */
    uint64_t s = 1, x = 1;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    ck_assert_uint_eq(mcpgw_rand_next(&s), x * UINT64_C(0x2545F4914F6CDD1D));
    ck_assert_uint_eq(s, x);
    ck_assert_uint_eq(x, UINT64_C(0x2000001));
}
END_TEST

START_TEST(test_rand_replaces_a_zero_state)
{
    uint64_t s = 0, a, b;
    a = mcpgw_rand_next(&s);
    ck_assert_uint_ne(s, 0);
    s = 0;
    b = mcpgw_rand_next(&s);
    ck_assert_uint_eq(a, b); /* the fixed seed: reproducible */
    ck_assert_uint_ne(a, 0);
}
END_TEST

START_TEST(test_rand_below_stays_in_range_and_spreads)
{
    uint64_t s = mcpgw_rand_seed();
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t v = mcpgw_rand_below(&s, 10);
        ck_assert_uint_lt(v, 10);
        seen[v]++;
    }
    for (int i = 0; i < 10; i++)
        ck_assert_int_gt(seen[i], 800); /* 1000 expected each */
    ck_assert_uint_eq(mcpgw_rand_below(&s, 0), 0);
}
END_TEST

START_TEST(test_rand_seeds_differ_between_calls)
{
    uint64_t a = mcpgw_rand_seed(), b = mcpgw_rand_seed();
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_ne(a, b);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_rand_is_xorshift64star_from_a_given_state, test_rand_replaces_a_zero_state,
        test_rand_below_stays_in_range_and_spreads, test_rand_seeds_differ_between_calls};
    return mcpgw_check_run("rand", "rand", tests, sizeof(tests) / sizeof(tests[0]));
}
