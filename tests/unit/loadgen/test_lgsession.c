/* test_lgsession.c - the GET stream's reconnection waits: jittered, growing, capped. */
#include "loadgen/session.h"
#include "tests/unit/check-run.h"

#include <check.h>
#include <stdlib.h>

START_TEST(test_backoff_first_reconnect_is_prompt)
{
    uint64_t rng = 1;
    for (int i = 0; i < 1000; i++) {
        uint32_t d = mcpgw_lgsession_backoff_ms(0, &rng);
        ck_assert_uint_ge(d, 10);
        ck_assert_uint_le(d, 20);
    }
}
END_TEST

START_TEST(test_backoff_grows_and_stays_under_the_cap)
{
    uint64_t rng = 7;
    for (unsigned a = 1; a < 300; a++) {
        uint32_t ceil_ms = LG_BACKOFF_BASE_MS << (a < 5 ? a - 1 : 4), d;
        if (ceil_ms > LG_BACKOFF_CAP_MS)
            ceil_ms = LG_BACKOFF_CAP_MS;
        d = mcpgw_lgsession_backoff_ms(a, &rng);
        ck_assert_uint_ge(d, ceil_ms / 2);
        ck_assert_uint_le(d, ceil_ms);
        ck_assert_uint_le(d, LG_BACKOFF_CAP_MS);
    }
}
END_TEST

START_TEST(test_backoff_spreads_sessions_that_broke_together)
{
    /* 1000 sessions on their 4th attempt: not one synchronized wave. */
    uint64_t rng = 0;
    uint32_t lo = UINT32_MAX, hi = 0;
    int seen[401] = {0}, distinct = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t d = mcpgw_lgsession_backoff_ms(4, &rng);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        if (d <= 400 && !seen[d]++)
            distinct++;
    }
    ck_assert_uint_ge(hi - lo, 150);
    ck_assert_int_ge(distinct, 100);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_backoff_first_reconnect_is_prompt,
                            test_backoff_grows_and_stays_under_the_cap,
                            test_backoff_spreads_sessions_that_broke_together};
    return mcpgw_check_run("loadgen_session", "backoff", tests, sizeof(tests) / sizeof(tests[0]));
}
