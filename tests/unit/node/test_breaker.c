/* test_breaker.c - circuit breaker and bulkhead of one upstream, driven by an injected clock. */
#include "node/breaker.h"

#include "common/metrics.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check-run.h"

static uint64_t now_us;
static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return now_us;
}

static void advance_ms(uint64_t ms)
{
    now_us += ms * 1000u;
}

static struct mcpgw_breaker *make(struct mcpgw_breaker_cfg *cfg, struct mcpgw_metrics *m)
{
    now_us = 1000000000u;
    if (!cfg->name)
        cfg->name = "up1";
    return mcpgw_breaker_new(cfg, m, fake_clock, NULL);
}

/* One call admitted and ended with outcome; fails the test if it was refused. */
static void call(struct mcpgw_breaker *b, enum mcpgw_breaker_outcome o)
{
    struct mcpgw_breaker_ticket t;
    char why[256];
    ck_assert_int_eq(mcpgw_breaker_admit(b, &t, why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    mcpgw_breaker_done(b, &t, o, o == MCPGW_BREAKER_FAIL ? "timeout" : NULL);
}

static int refused(struct mcpgw_breaker *b, char *why, size_t len)
{
    struct mcpgw_breaker_ticket t;
    int v = mcpgw_breaker_admit(b, &t, why, len);
    if (v == MCPGW_BREAKER_ADMIT)
        mcpgw_breaker_done(b, &t, MCPGW_BREAKER_NEUTRAL, NULL);
    return v;
}

/* Fails calls until the breaker opens (at most 100). */
static void trip(struct mcpgw_breaker *b)
{
    for (int i = 0; i < 100 && mcpgw_breaker_state(b) == MCPGW_BREAKER_CLOSED; i++)
        call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_OPEN);
}

START_TEST(test_breaker_stays_closed_below_min_calls_even_if_all_fail)
{
    struct mcpgw_breaker_cfg cfg = {.min_calls = 10};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    for (int i = 0; i < 9; i++)
        call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_OPEN);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_trips_at_the_error_rate_not_below)
{
    struct mcpgw_breaker_cfg cfg = {.min_calls = 10, .error_pct = 50};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    /* 11 successes then failures: at 10 of 21 (47 %) still closed, at 11 of 22 open */
    for (int i = 0; i < 11; i++)
        call(b, MCPGW_BREAKER_OK);
    for (int i = 0; i < 10; i++)
        call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_OPEN);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_forgets_failures_older_than_the_window)
{
    struct mcpgw_breaker_cfg cfg = {.min_calls = 10, .window_ms = 10000, .buckets = 10};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    for (int i = 0; i < 9; i++)
        call(b, MCPGW_BREAKER_FAIL);
    advance_ms(10500); /* all nine slid out of the window */
    call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    /* but failures spread inside the window add up */
    for (int i = 0; i < 8; i++) {
        advance_ms(1000);
        call(b, MCPGW_BREAKER_FAIL);
    }
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    advance_ms(500);
    call(b, MCPGW_BREAKER_FAIL); /* 10 failures within 9.5 s */
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_OPEN);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_open_refuses_at_once_naming_the_upstream)
{
    struct mcpgw_breaker_cfg cfg = {.name = "github", .open_ms = 5000};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    char why[256];
    trip(b);
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_OPEN);
    ck_assert_ptr_nonnull(strstr(why, "upstream 'github'"));
    ck_assert_ptr_nonnull(strstr(why, "circuit breaker is open"));
    ck_assert_ptr_nonnull(strstr(why, "10 of 10"));
    ck_assert_uint_eq(mcpgw_breaker_inflight(b), 0);
    advance_ms(4999);
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_OPEN);
    ck_assert_uint_eq(mcpgw_breaker_retry_in_us(b), 1000);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_half_open_lets_one_probe_through_and_closes_on_success)
{
    struct mcpgw_breaker_cfg cfg = {.open_ms = 5000, .probes = 1};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    struct mcpgw_breaker_ticket probe;
    char why[256];
    trip(b);
    advance_ms(5000);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_HALF_OPEN);
    ck_assert_int_eq(mcpgw_breaker_admit(b, &probe, why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    ck_assert_int_eq(probe.probe, 1);
    /* while the probe is out, others are refused */
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_OPEN);
    ck_assert_ptr_nonnull(strstr(why, "half-open"));
    mcpgw_breaker_done(b, &probe, MCPGW_BREAKER_OK, NULL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    /* closed again with a fresh window: 9 failures do not trip it */
    for (int i = 0; i < 9; i++)
        call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_failed_probe_reopens_for_twice_as_long_up_to_the_cap)
{
    struct mcpgw_breaker_cfg cfg = {.open_ms = 1000, .max_open_ms = 3000};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    char why[256];
    trip(b);
    advance_ms(1000);
    call(b, MCPGW_BREAKER_FAIL); /* the probe fails */
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_OPEN);
    ck_assert_uint_eq(mcpgw_breaker_retry_in_us(b), 2000000);
    advance_ms(2000);
    call(b, MCPGW_BREAKER_FAIL);
    ck_assert_uint_eq(mcpgw_breaker_retry_in_us(b), 3000000); /* capped, not 4 s */
    advance_ms(3000);
    call(b, MCPGW_BREAKER_OK);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    /* back to the first period after closing */
    trip(b);
    ck_assert_uint_eq(mcpgw_breaker_retry_in_us(b), 1000000);
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_OPEN);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_needs_every_probe_to_succeed_to_close)
{
    struct mcpgw_breaker_cfg cfg = {.open_ms = 1000, .probes = 3};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    struct mcpgw_breaker_ticket t[3];
    char why[256];
    trip(b);
    advance_ms(1000);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mcpgw_breaker_admit(b, &t[i], why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_OPEN);
    mcpgw_breaker_done(b, &t[0], MCPGW_BREAKER_OK, NULL);
    mcpgw_breaker_done(b, &t[1], MCPGW_BREAKER_OK, NULL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_HALF_OPEN);
    mcpgw_breaker_done(b, &t[2], MCPGW_BREAKER_OK, NULL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_ignores_outcomes_of_calls_admitted_before_the_state_changed)
{
    struct mcpgw_breaker_cfg cfg = {.open_ms = 1000};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    struct mcpgw_breaker_ticket slow, probe;
    char why[256];
    ck_assert_int_eq(mcpgw_breaker_admit(b, &slow, why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    trip(b);
    advance_ms(1000);
    ck_assert_int_eq(mcpgw_breaker_admit(b, &probe, why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    /* a slow call from the closed period succeeding must not close the breaker */
    mcpgw_breaker_done(b, &slow, MCPGW_BREAKER_OK, NULL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_HALF_OPEN);
    mcpgw_breaker_done(b, &probe, MCPGW_BREAKER_FAIL, "transport");
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_OPEN);
    ck_assert_uint_eq(mcpgw_breaker_inflight(b), 0);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_neutral_outcomes_neither_trip_nor_close)
{
    struct mcpgw_breaker_cfg cfg = {.open_ms = 1000};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    for (int i = 0; i < 50; i++)
        call(b, MCPGW_BREAKER_NEUTRAL);
    for (int i = 0; i < 9; i++)
        call(b, MCPGW_BREAKER_FAIL);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    call(b, MCPGW_BREAKER_FAIL);
    advance_ms(1000);
    call(b, MCPGW_BREAKER_NEUTRAL); /* a cancelled probe frees its place, decides nothing */
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_HALF_OPEN);
    call(b, MCPGW_BREAKER_OK);
    ck_assert_int_eq(mcpgw_breaker_state(b), MCPGW_BREAKER_CLOSED);
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_bulkhead_refuses_beyond_max_inflight_and_admits_again_when_one_ends)
{
    struct mcpgw_breaker_cfg cfg = {.name = "tools", .max_inflight = 3};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    struct mcpgw_breaker_ticket t[3];
    char why[256];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mcpgw_breaker_admit(b, &t[i], why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_FULL);
    ck_assert_ptr_nonnull(strstr(why, "upstream 'tools'"));
    ck_assert_ptr_nonnull(strstr(why, "max-inflight"));
    mcpgw_breaker_done(b, &t[1], MCPGW_BREAKER_OK, NULL);
    mcpgw_breaker_done(b, &t[1], MCPGW_BREAKER_OK, NULL); /* a second done is ignored */
    ck_assert_uint_eq(mcpgw_breaker_inflight(b), 2);
    ck_assert_int_eq(mcpgw_breaker_admit(b, &t[1], why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_REFUSE_FULL);
    mcpgw_breaker_set_limits(b, 4); /* a reload raised it */
    ck_assert_int_eq(refused(b, why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    for (int i = 0; i < 3; i++)
        mcpgw_breaker_done(b, &t[i], MCPGW_BREAKER_OK, NULL);
    ck_assert_uint_eq(mcpgw_breaker_inflight(b), 0);
    mcpgw_breaker_free(b);
}
END_TEST

static int changes, last_from, last_to;
static void on_state(void *arg, enum mcpgw_breaker_state from, enum mcpgw_breaker_state to)
{
    (void)arg;
    changes++;
    last_from = (int)from;
    last_to = (int)to;
}

START_TEST(test_breaker_reports_each_state_change_once)
{
    struct mcpgw_breaker_cfg cfg = {.open_ms = 1000};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    changes = 0;
    mcpgw_breaker_on_state(b, on_state, NULL);
    trip(b);
    ck_assert_int_eq(changes, 1);
    ck_assert_int_eq(last_to, MCPGW_BREAKER_OPEN);
    advance_ms(1000);
    mcpgw_breaker_state(b);
    mcpgw_breaker_state(b);
    ck_assert_int_eq(changes, 2);
    ck_assert_int_eq(last_from, MCPGW_BREAKER_OPEN);
    ck_assert_int_eq(last_to, MCPGW_BREAKER_HALF_OPEN);
    call(b, MCPGW_BREAKER_OK);
    ck_assert_int_eq(changes, 3);
    ck_assert_int_eq(last_to, MCPGW_BREAKER_CLOSED);
    mcpgw_breaker_free(b);
}
END_TEST

static char *render(struct mcpgw_metrics *m)
{
    struct evbuffer *out = evbuffer_new();
    size_t n;
    char *s;
    mcpgw_metrics_render(m, out);
    n = evbuffer_get_length(out);
    s = malloc(n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    evbuffer_free(out);
    return s;
}

START_TEST(test_breaker_exports_calls_errors_by_class_latency_state_and_processes)
{
    struct mcpgw_metrics *m = mcpgw_metrics_new();
    struct mcpgw_breaker_cfg cfg = {.name = "files", .kind = "stdio", .max_inflight = 1};
    struct mcpgw_breaker *b = make(&cfg, m);
    struct mcpgw_breaker_ticket t, u;
    char why[256], *text;
    ck_assert_int_eq(mcpgw_breaker_admit(b, &t, why, sizeof(why)), MCPGW_BREAKER_ADMIT);
    ck_assert_int_eq(mcpgw_breaker_admit(b, &u, why, sizeof(why)), MCPGW_BREAKER_REFUSE_FULL);
    advance_ms(3); /* 3 ms: the 5 ms bucket and above */
    mcpgw_breaker_done(b, &t, MCPGW_BREAKER_FAIL, "timeout");
    call(b, MCPGW_BREAKER_FAIL);
    call(b, MCPGW_BREAKER_OK);
    mcpgw_breaker_note_procs(b, 1);
    mcpgw_breaker_note_restart(b);
    text = render(m);
#define L "upstream=\"files\",kind=\"stdio\""
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_calls_total{" L "} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_errors_total{" L ",class=\"timeout\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "mcpgw_upstream_refused_total{" L ",reason=\"max_inflight\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_call_seconds_count{" L "} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_breaker_state{" L "} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_processes{" L "} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_restarts_total{" L "} 1\n"));
    free(text);
    trip(b);
    text = render(m);
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_breaker_state{" L "} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "mcpgw_upstream_breaker_opened_total{" L "} 1\n"));
    free(text);
#undef L
    mcpgw_breaker_free(b);
    mcpgw_metrics_free(m);
}
END_TEST

START_TEST(test_breaker_health_line_says_state_and_when_the_probe_comes)
{
    struct mcpgw_breaker_cfg cfg = {.name = "gh", .open_ms = 4000};
    struct mcpgw_breaker *b = make(&cfg, NULL);
    char line[256];
    call(b, MCPGW_BREAKER_FAIL);
    mcpgw_breaker_health(b, line, sizeof(line));
    ck_assert_str_eq(line, "upstream gh: closed, 0 in flight, 1 of 1 calls failed recently\n");
    trip(b);
    mcpgw_breaker_health(b, line, sizeof(line));
    ck_assert_str_eq(line, "upstream gh: open (10 of 10 calls failed; probe in 4.0 s)\n");
    ck_assert_uint_eq(mcpgw_breaker_health(b, line, 8), 7);
    ck_assert_str_eq(line, "upstrea");
    mcpgw_breaker_free(b);
}
END_TEST

START_TEST(test_breaker_config_keys_are_read_and_bad_values_named)
{
    struct mcpgw_breaker_cfg cfg = {0};
    char err[200];
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-window", "30s", err, sizeof(err)), 1);
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-errors", "25%", err, sizeof(err)), 1);
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-min", "3", err, sizeof(err)), 1);
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-open", "500ms", err, sizeof(err)), 1);
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-probes", "2", err, sizeof(err)), 1);
    ck_assert_uint_eq(cfg.window_ms, 30000);
    ck_assert_uint_eq(cfg.error_pct, 25);
    ck_assert_uint_eq(cfg.min_calls, 3);
    ck_assert_uint_eq(cfg.open_ms, 500);
    ck_assert_uint_eq(cfg.probes, 2);
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "timeout", "5s", err, sizeof(err)), 0);
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-errors", "150%", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "breaker-errors=150%"));
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-open", "soon", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "duration"));
    ck_assert_int_eq(mcpgw_breaker_cfg_key(&cfg, "breaker-min", "", err, sizeof(err)), -1);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_breaker_stays_closed_below_min_calls_even_if_all_fail,
        test_breaker_trips_at_the_error_rate_not_below,
        test_breaker_forgets_failures_older_than_the_window,
        test_breaker_open_refuses_at_once_naming_the_upstream,
        test_breaker_half_open_lets_one_probe_through_and_closes_on_success,
        test_breaker_failed_probe_reopens_for_twice_as_long_up_to_the_cap,
        test_breaker_needs_every_probe_to_succeed_to_close,
        test_breaker_ignores_outcomes_of_calls_admitted_before_the_state_changed,
        test_breaker_neutral_outcomes_neither_trip_nor_close,
        test_bulkhead_refuses_beyond_max_inflight_and_admits_again_when_one_ends,
        test_breaker_reports_each_state_change_once,
        test_breaker_exports_calls_errors_by_class_latency_state_and_processes,
        test_breaker_health_line_says_state_and_when_the_probe_comes,
        test_breaker_config_keys_are_read_and_bad_values_named,
    };
    return mcpgw_check_run("breaker", "breaker", tests, sizeof(tests) / sizeof(tests[0]));
}
