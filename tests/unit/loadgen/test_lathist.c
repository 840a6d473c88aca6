/* test_lathist.c - the latency histogram: exact counts and extremes, bounded bucket error, merging
 * and the sparse pipe encoding. */
#include "loadgen/lathist.h"
#include "tests/unit/check-run.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>

START_TEST(test_hist_counts_every_sample_and_keeps_exact_extremes)
{
    struct mcpgw_lathist *h = mcpgw_lathist_new();
    ck_assert_uint_eq(mcpgw_lathist_count(h), 0);
    ck_assert_uint_eq(mcpgw_lathist_percentile(h, 50), 0);
    mcpgw_lathist_record(h, 7);
    mcpgw_lathist_record(h, 123456);
    mcpgw_lathist_record(h, 999);
    ck_assert_uint_eq(mcpgw_lathist_count(h), 3);
    ck_assert_uint_eq(mcpgw_lathist_min(h), 7);
    ck_assert_uint_eq(mcpgw_lathist_max(h), 123456);
    ck_assert_uint_eq(mcpgw_lathist_percentile(h, 100), 123456);
    ck_assert(mcpgw_lathist_mean(h) > 41487.0 && mcpgw_lathist_mean(h) < 41488.0);
    mcpgw_lathist_free(h);
}
END_TEST

START_TEST(test_hist_values_below_256_us_are_exact)
{
    struct mcpgw_lathist *h = mcpgw_lathist_new();
    for (uint64_t v = 0; v < 256; v++)
        mcpgw_lathist_record(h, v);
    ck_assert_uint_eq(mcpgw_lathist_percentile(h, 50), 127);
    ck_assert_uint_eq(mcpgw_lathist_percentile(h, 0), 0);
    mcpgw_lathist_free(h);
}
END_TEST

START_TEST(test_hist_percentiles_are_within_one_percent)
{
    struct mcpgw_lathist *h = mcpgw_lathist_new();
    for (uint64_t v = 1; v <= 1000000; v++)
        mcpgw_lathist_record(h, v);
    const double pcts[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        double want = pcts[i] / 100.0 * 1000000.0,
               got = (double)mcpgw_lathist_percentile(h, pcts[i]);
        ck_assert_msg(got >= want && got <= want * 1.0079, "p%g: got %.0f want %.0f", pcts[i], got,
                      want);
    }
    mcpgw_lathist_free(h);
}
END_TEST

START_TEST(test_hist_merge_equals_recording_into_one)
{
    struct mcpgw_lathist *a = mcpgw_lathist_new(), *b = mcpgw_lathist_new(),
                         *all = mcpgw_lathist_new();
    for (uint64_t v = 1; v < 50000; v += 7) {
        mcpgw_lathist_record(v % 2 ? a : b, v * 3);
        mcpgw_lathist_record(all, v * 3);
    }
    mcpgw_lathist_merge(a, b);
    ck_assert_uint_eq(mcpgw_lathist_count(a), mcpgw_lathist_count(all));
    ck_assert_uint_eq(mcpgw_lathist_min(a), mcpgw_lathist_min(all));
    ck_assert_uint_eq(mcpgw_lathist_max(a), mcpgw_lathist_max(all));
    for (double p = 1; p < 100; p += 3.7)
        ck_assert_uint_eq(mcpgw_lathist_percentile(a, p), mcpgw_lathist_percentile(all, p));
    mcpgw_lathist_free(a);
    mcpgw_lathist_free(b);
    mcpgw_lathist_free(all);
}
END_TEST

START_TEST(test_hist_clamps_values_beyond_its_range_without_losing_them)
{
    struct mcpgw_lathist *h = mcpgw_lathist_new();
    mcpgw_lathist_record(h, UINT64_MAX / 2);
    mcpgw_lathist_record(h, 1);
    ck_assert_uint_eq(mcpgw_lathist_count(h), 2);
    ck_assert_uint_eq(mcpgw_lathist_max(h), UINT64_MAX / 2);
    mcpgw_lathist_free(h);
}
END_TEST

START_TEST(test_hist_encoding_round_trips_and_adds)
{
    struct mcpgw_lathist *h = mcpgw_lathist_new(), *d = mcpgw_lathist_new();
    struct evbuffer *b = evbuffer_new();
    size_t len;
    long used;
    for (uint64_t v = 100; v < 300000; v = v * 3 / 2)
        mcpgw_lathist_record(h, v);
    mcpgw_lathist_encode(h, b);
    len = evbuffer_get_length(b);
    used = mcpgw_lathist_decode_add(d, evbuffer_pullup(b, -1), len);
    ck_assert_int_eq(used, (long)len);
    ck_assert_uint_eq(mcpgw_lathist_count(d), mcpgw_lathist_count(h));
    ck_assert_uint_eq(mcpgw_lathist_percentile(d, 90), mcpgw_lathist_percentile(h, 90));
    used = mcpgw_lathist_decode_add(d, evbuffer_pullup(b, -1), len);
    ck_assert_uint_eq(mcpgw_lathist_count(d), 2 * mcpgw_lathist_count(h));
    evbuffer_free(b);
    mcpgw_lathist_free(h);
    mcpgw_lathist_free(d);
}
END_TEST

START_TEST(test_hist_decode_refuses_truncated_or_out_of_range_input)
{
    struct mcpgw_lathist *h = mcpgw_lathist_new(), *d = mcpgw_lathist_new();
    struct evbuffer *b = evbuffer_new();
    unsigned char *p;
    size_t len;
    mcpgw_lathist_record(h, 1000);
    mcpgw_lathist_encode(h, b);
    len = evbuffer_get_length(b);
    p = evbuffer_pullup(b, -1);
    ck_assert_int_eq(mcpgw_lathist_decode_add(d, p, len - 1), -1);
    ck_assert_int_eq(mcpgw_lathist_decode_add(d, p, 10), -1);
    p[36] = 0xff; /* the bucket index of the only pair */
    p[37] = 0xff;
    ck_assert_int_eq(mcpgw_lathist_decode_add(d, p, len), -1);
    ck_assert_uint_eq(mcpgw_lathist_count(d), 0);
    evbuffer_free(b);
    mcpgw_lathist_free(h);
    mcpgw_lathist_free(d);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_hist_counts_every_sample_and_keeps_exact_extremes,
                            test_hist_values_below_256_us_are_exact,
                            test_hist_percentiles_are_within_one_percent,
                            test_hist_merge_equals_recording_into_one,
                            test_hist_clamps_values_beyond_its_range_without_losing_them,
                            test_hist_encoding_round_trips_and_adds,
                            test_hist_decode_refuses_truncated_or_out_of_range_input};
    return mcpgw_check_run("hist", "hist", tests, sizeof(tests) / sizeof(tests[0]));
}
