/* test_session.c - the session event log (sequence, replay, eviction), event ids, subscriptions. */
#include "node/session.h"

#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mcpgw_session *session_new(void)
{
    struct mcpgw_session *s = xcalloc(1, sizeof(struct mcpgw_session));
    snprintf(s->id, sizeof(s->id), "%s", "s1");
    return s;
}

struct visits {
    int n;
    uint64_t seq[MCPGW_EVLOG_MAX_EVENTS + 1];
    uint32_t stream[MCPGW_EVLOG_MAX_EVENTS + 1];
    char data[MCPGW_EVLOG_MAX_EVENTS + 1][32];
    size_t bytes;
};

static void visit(void *arg, const struct mcpgw_event *ev)
{
    struct visits *v = arg;
    ck_assert_int_le(v->n, MCPGW_EVLOG_MAX_EVENTS);
    v->seq[v->n] = ev->seq;
    v->stream[v->n] = ev->stream;
    snprintf(v->data[v->n], sizeof(v->data[0]), "%.*s", (int)ev->len, ev->data);
    v->bytes += ev->len;
    v->n++;
}

static uint64_t log_str(struct mcpgw_session *s, uint32_t stream, const char *data)
{
    return mcpgw_session_log(s, stream, data, strlen(data));
}

START_TEST(test_session_sequence_numbers_strictly_increase)
{
    struct mcpgw_session *s = session_new();
    uint64_t prev = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t seq = i % 3 == 0 ? mcpgw_session_next_seq(s) : log_str(s, (uint32_t)i % 4, "{}");
        ck_assert_uint_gt(seq, prev);
        prev = seq;
    }
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_next_seq_reserves_a_number_without_logging)
{
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    ck_assert_uint_eq(log_str(s, 0, "a"), 1);
    ck_assert_uint_eq(mcpgw_session_next_seq(s), 2);
    ck_assert_uint_eq(log_str(s, 0, "b"), 3);
    ck_assert_int_eq(mcpgw_session_replay(s, 0, 0, visit, &v), 2);
    ck_assert_uint_eq(v.seq[0], 1);
    ck_assert_uint_eq(v.seq[1], 3);
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_each_owner_counts_past_every_earlier_owner)
{
    struct mcpgw_session *a = session_new(), *b = session_new(), *c = session_new();
    uint64_t last;
    /* The first owner (epoch 1) counts from 0, as a session that never moved. */
    a->epoch = 1;
    mcpgw_session_owned(a);
    ck_assert_uint_eq(a->seq_base, 0);
    ck_assert_uint_eq(mcpgw_session_next_seq(a), 1);
    for (int i = 0; i < 1000; i++)
        last = mcpgw_session_next_seq(a);
    /* The next owner starts above all of them, without knowing how far the first one got. */
    b->epoch = 2;
    mcpgw_session_owned(b);
    ck_assert_uint_eq(b->seq_base, UINT64_C(1) << MCPGW_SEQ_EPOCH_SHIFT);
    ck_assert_uint_gt(mcpgw_session_next_seq(b), last);
    /* Owning again at the same or an older epoch never moves the counter back. */
    last = mcpgw_session_next_seq(b);
    b->epoch = 1;
    mcpgw_session_owned(b);
    ck_assert_uint_gt(mcpgw_session_next_seq(b), last);
    /* Epochs past the last range keep counting in it: no wrap to small ids. */
    c->epoch = UINT64_MAX;
    mcpgw_session_owned(c);
    ck_assert_uint_gt(mcpgw_session_next_seq(c), UINT64_C(1) << 63);
    mcpgw_session_free(a);
    mcpgw_session_free(b);
    mcpgw_session_free(c);
}
END_TEST

START_TEST(test_session_replay_visits_only_the_stream_after_the_given_seq)
{
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    uint64_t third = 0;
    char buf[16];
    for (int i = 0; i < 12; i++) {
        uint64_t seq;
        snprintf(buf, sizeof(buf), "m%d", i);
        seq = log_str(s, (uint32_t)(i % 3), buf); /* streams 0, 1, 2, 0, 1, 2, ... */
        if (i == 4)
            third = seq; /* the 2nd event of stream 1 */
    }
    ck_assert_int_eq(mcpgw_session_replay(s, 1, third, visit, &v), 2);
    ck_assert_str_eq(v.data[0], "m7");
    ck_assert_str_eq(v.data[1], "m10");
    for (int i = 0; i < v.n; i++) {
        ck_assert_uint_eq(v.stream[i], 1);
        ck_assert_uint_gt(v.seq[i], third);
        if (i)
            ck_assert_uint_gt(v.seq[i], v.seq[i - 1]);
    }

    memset(&v, 0, sizeof(v));
    ck_assert_int_eq(mcpgw_session_replay(s, 0, 0, visit, &v), 4);
    ck_assert_str_eq(v.data[0], "m0");
    ck_assert_str_eq(v.data[3], "m9");

    memset(&v, 0, sizeof(v));
    ck_assert_int_eq(mcpgw_session_replay(s, 7, 0, visit, &v), 0);
    ck_assert_int_eq(mcpgw_session_replay(s, 0, 1000, visit, &v), 0);
    ck_assert_int_eq(v.n, 0);
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_replay_of_an_empty_log_visits_nothing)
{
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    ck_assert_int_eq(mcpgw_session_replay(s, 0, 0, visit, &v), 0);
    ck_assert_int_eq(v.n, 0);
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_log_copies_the_data)
{
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    char buf[] = "original";
    mcpgw_session_log(s, 0, buf, 4); /* only len bytes */
    memcpy(buf, "XXXXXXXX", 8);
    ck_assert_int_eq(mcpgw_session_replay(s, 0, 0, visit, &v), 1);
    ck_assert_str_eq(v.data[0], "orig");
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_log_evicts_by_count)
{
    enum { EXTRA = 10, TOTAL = MCPGW_EVLOG_MAX_EVENTS + EXTRA };
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    for (int i = 0; i < TOTAL; i++)
        ck_assert_uint_eq(log_str(s, 0, "x"), (uint64_t)i + 1);
    ck_assert_uint_eq(s->log->count, MCPGW_EVLOG_MAX_EVENTS);

    /* seqs 1..10 are gone: replay after 10 is complete, after 9 is not */
    ck_assert_int_eq(mcpgw_session_replay(s, 0, EXTRA, visit, &v), MCPGW_EVLOG_MAX_EVENTS);
    ck_assert_uint_eq(v.seq[0], EXTRA + 1);
    ck_assert_uint_eq(v.seq[v.n - 1], TOTAL);

    memset(&v, 0, sizeof(v));
    ck_assert_int_eq(mcpgw_session_replay(s, 0, EXTRA - 1, visit, &v), -1);
    ck_assert_int_eq(v.n, MCPGW_EVLOG_MAX_EVENTS); /* what is kept is still visited */
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_log_evicts_by_bytes)
{
    enum { SIZE = 10 * 1024, N = 40, FIT = MCPGW_EVLOG_MAX_BYTES / SIZE };
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    char *big = xmalloc(SIZE);
    memset(big, 'z', SIZE);
    for (int i = 0; i < N; i++)
        mcpgw_session_log(s, 0, big, SIZE);
    ck_assert_uint_eq(s->log->count, FIT);
    ck_assert_uint_le(s->log->bytes, MCPGW_EVLOG_MAX_BYTES);
    ck_assert_int_eq(mcpgw_session_replay(s, 0, N - FIT, visit, &v), FIT);
    ck_assert_uint_eq(v.bytes, (size_t)FIT * SIZE);
    ck_assert_uint_eq(v.seq[0], N - FIT + 1);
    memset(&v, 0, sizeof(v));
    ck_assert_int_eq(mcpgw_session_replay(s, 0, 0, visit, &v), -1);
    free(big);
    mcpgw_session_free(s);
}
END_TEST

START_TEST(test_session_replay_reports_gap_when_other_streams_events_were_evicted)
{
    /* Eviction does not know which stream a client missed: any evicted event newer than `after`
     * is a possible gap, even for a stream whose own events are all still kept. */
    struct mcpgw_session *s = session_new();
    struct visits v = {0};
    uint64_t mine;
    for (int i = 0; i < MCPGW_EVLOG_MAX_EVENTS; i++)
        log_str(s, 5, "other");
    mine = log_str(s, 1, "mine");
    ck_assert_int_eq(mcpgw_session_replay(s, 1, 0, visit, &v), -1);
    ck_assert_int_eq(v.n, 1);
    ck_assert_uint_eq(v.seq[0], mine);
    memset(&v, 0, sizeof(v));
    ck_assert_int_eq(mcpgw_session_replay(s, 1, 1, visit, &v), 1);
    mcpgw_session_free(s);
}
END_TEST

static void expect_round_trip(uint32_t stream, uint64_t seq, const char *want)
{
    char buf[64];
    uint32_t st = 12345;
    uint64_t sq = 12345;
    mcpgw_session_event_id_format(buf, sizeof(buf), stream, seq);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(mcpgw_session_event_id_parse(buf, strlen(buf), &st, &sq), 0);
    ck_assert_uint_eq(st, stream);
    ck_assert_uint_eq(sq, seq);
}

START_TEST(test_event_id_format_and_parse_round_trip)
{
    expect_round_trip(0, 1, "0.1");
    expect_round_trip(7, 12345, "7.12345");
    expect_round_trip(UINT32_MAX, 9999999999999999999ULL, "4294967295.9999999999999999999");
    expect_round_trip(1, UINT64_MAX, "1.18446744073709551615");
}
END_TEST

START_TEST(test_event_id_parse_uses_only_len_bytes)
{
    uint32_t st;
    uint64_t sq;
    ck_assert_int_eq(mcpgw_session_event_id_parse("12.34xyz", 5, &st, &sq), 0);
    ck_assert_uint_eq(st, 12);
    ck_assert_uint_eq(sq, 34);
}
END_TEST

START_TEST(test_event_id_parse_rejects_garbage)
{
    static const char *const bad[] = {"",
                                      ".",
                                      "1.",
                                      ".2",
                                      "a.b",
                                      "1.2x",
                                      "1..2",
                                      "1.2.3",
                                      "-1.2",
                                      "1.-2",
                                      " 1.2",
                                      "1. 2",
                                      "12",
                                      "4294967296.1",           /* stream over 32 bits */
                                      "99999999999.1",          /* 11 digits */
                                      "1.18446744073709551616", /* seq over 64 bits */
                                      "1.99999999999999999999",
                                      "1.123456789012345678901"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t st = 77;
        uint64_t sq = 77;
        ck_assert_msg(mcpgw_session_event_id_parse(bad[i], strlen(bad[i]), &st, &sq) == -1,
                      "'%s' was accepted", bad[i]);
        ck_assert_uint_eq(st, 77); /* untouched on failure */
        ck_assert_uint_eq(sq, 77);
    }
}
END_TEST

START_TEST(test_session_subscription_add_and_del_are_idempotent)
{
    struct mcpgw_session *s = session_new();
    char uri[32];
    ck_assert_int_eq(mcpgw_session_sub_add(s, "file:///a"), 1);
    ck_assert_int_eq(mcpgw_session_sub_add(s, "file:///a"), 0);
    ck_assert_uint_eq(s->nsubs, 1);
    ck_assert(mcpgw_session_subscribed(s, "file:///a"));
    ck_assert(!mcpgw_session_subscribed(s, "file:///b"));
    ck_assert_int_eq(mcpgw_session_sub_del(s, "file:///a"), 1);
    ck_assert_int_eq(mcpgw_session_sub_del(s, "file:///a"), 0);
    ck_assert_int_eq(mcpgw_session_sub_del(s, "file:///never"), 0);
    ck_assert_uint_eq(s->nsubs, 0);
    ck_assert(!mcpgw_session_subscribed(s, "file:///a"));

    /* many, removed in another order than added */
    for (int i = 0; i < 10; i++) {
        snprintf(uri, sizeof(uri), "res://%d", i);
        ck_assert_int_eq(mcpgw_session_sub_add(s, uri), 1);
    }
    for (int i = 0; i < 10; i += 2) {
        snprintf(uri, sizeof(uri), "res://%d", i);
        ck_assert_int_eq(mcpgw_session_sub_del(s, uri), 1);
    }
    ck_assert_uint_eq(s->nsubs, 5);
    for (int i = 0; i < 10; i++) {
        snprintf(uri, sizeof(uri), "res://%d", i);
        ck_assert_int_eq(mcpgw_session_subscribed(s, uri), i % 2);
    }
    mcpgw_session_free(s); /* frees what is still subscribed */
}
END_TEST

START_TEST(test_session_state_str_names_every_state)
{
    ck_assert_str_eq(mcpgw_session_state_str(MCPGW_SESSION_INITIALIZING), "initializing");
    ck_assert_str_eq(mcpgw_session_state_str(MCPGW_SESSION_READY), "ready");
    ck_assert_str_eq(mcpgw_session_state_str(MCPGW_SESSION_STATE_COUNT), "?");
}
END_TEST

static Suite *session_suite(void)
{
    Suite *s = suite_create("session");
    TCase *log = tcase_create("evlog"), *ids = tcase_create("event ids"),
          *subs = tcase_create("subscriptions");

    tcase_add_test(log, test_session_sequence_numbers_strictly_increase);
    tcase_add_test(log, test_session_next_seq_reserves_a_number_without_logging);
    tcase_add_test(log, test_session_each_owner_counts_past_every_earlier_owner);
    tcase_add_test(log, test_session_replay_visits_only_the_stream_after_the_given_seq);
    tcase_add_test(log, test_session_replay_of_an_empty_log_visits_nothing);
    tcase_add_test(log, test_session_log_copies_the_data);
    tcase_add_test(log, test_session_log_evicts_by_count);
    tcase_add_test(log, test_session_log_evicts_by_bytes);
    tcase_add_test(log, test_session_replay_reports_gap_when_other_streams_events_were_evicted);
    suite_add_tcase(s, log);

    tcase_add_test(ids, test_event_id_format_and_parse_round_trip);
    tcase_add_test(ids, test_event_id_parse_uses_only_len_bytes);
    tcase_add_test(ids, test_event_id_parse_rejects_garbage);
    suite_add_tcase(s, ids);

    tcase_add_test(subs, test_session_subscription_add_and_del_are_idempotent);
    tcase_add_test(subs, test_session_state_str_names_every_state);
    suite_add_tcase(s, subs);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(session_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
