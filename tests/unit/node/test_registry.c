/* test_registry.c - sharded session registry: lookup, expiry order, subscription index counts. */
#include "node/registry.h"

#include "common/util.h"
#include "node/session.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mcpgw_session *session_new(const char *id)
{
    struct mcpgw_session *s = xcalloc(1, sizeof(struct mcpgw_session));
    snprintf(s->id, sizeof(s->id), "%s", id);
    return s;
}

/* n sessions "sess-<i>", inserted; returns the array (free with drop_all). */
static struct mcpgw_session **insert_many(struct mcpgw_registry *r, int n)
{
    struct mcpgw_session **v = xcalloc((size_t)n, sizeof(*v));
    char id[32];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "sess-%d", i);
        v[i] = session_new(id);
        ck_assert_int_eq(mcpgw_registry_insert(r, v[i]), 0);
    }
    return v;
}

static void drop_all(struct mcpgw_registry *r, struct mcpgw_session **v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i]) {
            mcpgw_registry_remove(r, v[i]);
            mcpgw_session_free(v[i]);
        }
    free(v);
}

static struct mcpgw_registry_stats stats(const struct mcpgw_registry *r)
{
    struct mcpgw_registry_stats st;
    mcpgw_registry_stats(r, &st);
    return st;
}

static void expect_empty(const struct mcpgw_registry *r)
{
    struct mcpgw_registry_stats st = stats(r);
    ck_assert_uint_eq(st.sessions, 0);
    ck_assert_uint_eq(st.sub_uris, 0);
    ck_assert_uint_eq(st.sub_entries, 0);
}

static struct mcpgw_session *find(struct mcpgw_registry *r, const char *id)
{
    return mcpgw_registry_lookup(r, id, strlen(id));
}

START_TEST(test_registry_finds_many_sessions_across_shards)
{
    enum { N = 20000 };
    struct mcpgw_registry *r = mcpgw_registry_new(4);
    struct mcpgw_session **v = insert_many(r, N);
    char id[32];

    ck_assert_uint_eq(stats(r).sessions, N);
    ck_assert_uint_eq(stats(r).shards, 16);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "sess-%d", i);
        ck_assert_ptr_eq(find(r, id), v[i]);
    }
    ck_assert_ptr_null(find(r, "sess-20000"));
    ck_assert_ptr_null(find(r, "nope"));

    /* remove every other one: the rest stay reachable */
    for (int i = 0; i < N; i += 2) {
        mcpgw_registry_remove(r, v[i]);
        mcpgw_session_free(v[i]);
        v[i] = NULL;
    }
    ck_assert_uint_eq(stats(r).sessions, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "sess-%d", i);
        ck_assert_ptr_eq(find(r, id), v[i]);
    }
    drop_all(r, v, N);
    expect_empty(r);
    mcpgw_registry_free(r);
}
END_TEST

START_TEST(test_registry_keeps_chains_short_as_sessions_grow)
{
    /* One shard, so only the table growing keeps lookups O(1): chains must stay a small
     * constant from 1000 to 100000 sessions (a table that never grew would have chains of
     * hundreds). Deterministic: the hash is fixed and the ids are too. */
    struct mcpgw_registry *small = mcpgw_registry_new(0), *big = mcpgw_registry_new(0);
    struct mcpgw_session **vs = insert_many(small, 1000), **vb = insert_many(big, 100000);
    unsigned cs = mcpgw_registry_longest_chain(small), cb = mcpgw_registry_longest_chain(big);
    ck_assert_msg(cs <= 8 && cb <= 10, "longest chains: %u at 1000 sessions, %u at 100000", cs, cb);
    drop_all(small, vs, 1000);
    drop_all(big, vb, 100000);
    mcpgw_registry_free(small);
    mcpgw_registry_free(big);
}
END_TEST

START_TEST(test_registry_refuses_duplicate_insert)
{
    struct mcpgw_registry *r = mcpgw_registry_new(2);
    struct mcpgw_session *a = session_new("dup-1"), *b = session_new("dup-1");
    ck_assert_int_eq(mcpgw_registry_insert(r, a), 0);
    ck_assert_int_eq(mcpgw_registry_insert(r, b), -1);
    ck_assert_ptr_eq(find(r, "dup-1"), a);
    ck_assert_uint_eq(stats(r).sessions, 1);
    /* once the first is gone the id is free again */
    mcpgw_registry_remove(r, a);
    ck_assert_int_eq(mcpgw_registry_insert(r, b), 0);
    ck_assert_ptr_eq(find(r, "dup-1"), b);
    mcpgw_registry_remove(r, b);
    expect_empty(r);
    mcpgw_session_free(a);
    mcpgw_session_free(b);
    mcpgw_registry_free(r);
}
END_TEST

START_TEST(test_registry_looks_up_by_pointer_and_length_without_nul)
{
    static const char header[] = "abc123XYZ"; /* e.g. a header value inside a request buffer */
    struct mcpgw_registry *r = mcpgw_registry_new(3);
    struct mcpgw_session *ab = session_new("ab"), *abc = session_new("abc123");
    char longid[MCPGW_SESSION_ID_MAX + 8];

    ck_assert_int_eq(mcpgw_registry_insert(r, ab), 0);
    ck_assert_int_eq(mcpgw_registry_insert(r, abc), 0);
    ck_assert_ptr_eq(mcpgw_registry_lookup(r, header, 6), abc);
    ck_assert_ptr_eq(mcpgw_registry_lookup(r, header, 2), ab);
    ck_assert_ptr_null(mcpgw_registry_lookup(r, header, 5));
    ck_assert_ptr_null(mcpgw_registry_lookup(r, header, 7));
    ck_assert_ptr_null(mcpgw_registry_lookup(r, header, 0));
    memset(longid, 'a', sizeof(longid));
    ck_assert_ptr_null(mcpgw_registry_lookup(r, longid, sizeof(longid)));
    mcpgw_registry_remove(r, ab);
    mcpgw_registry_remove(r, abc);
    mcpgw_session_free(ab);
    mcpgw_session_free(abc);
    mcpgw_registry_free(r);
}
END_TEST

START_TEST(test_registry_subscribe_updates_session_list_and_shard_index)
{
    struct mcpgw_registry *r = mcpgw_registry_new(0);
    struct mcpgw_session *a = session_new("a1"), *b = session_new("b1");
    struct mcpgw_registry_stats st;

    mcpgw_registry_insert(r, a);
    mcpgw_registry_insert(r, b);
    ck_assert_int_eq(mcpgw_registry_subscribe(r, a, "file:///x"), 1);
    ck_assert_int_eq(mcpgw_registry_subscribe(r, a, "file:///x"), 0);
    ck_assert_int_eq(mcpgw_registry_subscribe(r, a, "file:///y"), 1);
    ck_assert_int_eq(mcpgw_registry_subscribe(r, b, "file:///x"), 1);
    ck_assert(mcpgw_session_subscribed(a, "file:///x"));
    ck_assert(mcpgw_session_subscribed(a, "file:///y"));
    ck_assert_uint_eq(a->nsubs, 2);
    ck_assert_uint_eq(b->nsubs, 1);
    st = stats(r);
    ck_assert_uint_eq(st.sub_uris, 2);
    ck_assert_uint_eq(st.sub_entries, 3);

    ck_assert_int_eq(mcpgw_registry_unsubscribe(r, a, "file:///x"), 1);
    ck_assert_int_eq(mcpgw_registry_unsubscribe(r, a, "file:///x"), 0);
    ck_assert_int_eq(mcpgw_registry_unsubscribe(r, a, "file:///never"), 0);
    ck_assert(!mcpgw_session_subscribed(a, "file:///x"));
    st = stats(r);
    ck_assert_uint_eq(st.sub_uris, 2); /* b still holds file:///x */
    ck_assert_uint_eq(st.sub_entries, 2);

    ck_assert_int_eq(mcpgw_registry_unsubscribe(r, b, "file:///x"), 1);
    ck_assert_int_eq(mcpgw_registry_unsubscribe(r, a, "file:///y"), 1);
    ck_assert_uint_eq(a->nsubs, 0);
    ck_assert_uint_eq(b->nsubs, 0);
    st = stats(r);
    ck_assert_uint_eq(st.sub_uris, 0);
    ck_assert_uint_eq(st.sub_entries, 0);
    ck_assert_uint_eq(st.sessions, 2);

    mcpgw_registry_remove(r, a);
    mcpgw_registry_remove(r, b);
    expect_empty(r);
    mcpgw_session_free(a);
    mcpgw_session_free(b);
    mcpgw_registry_free(r);
}
END_TEST

enum { SUB_SESSIONS = 300, SUB_URIS = 12, SUB_PER_SESSION = 5 };

static void uri_of(char *buf, size_t cap, int k)
{
    snprintf(buf, cap, "res://item/%d", k % SUB_URIS);
}

/* Each session subscribes to 5 of 12 URIs (overlapping between sessions). */
static void subscribe_many(struct mcpgw_registry *r, struct mcpgw_session **v, int n)
{
    char uri[64];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < SUB_PER_SESSION; k++) {
            uri_of(uri, sizeof(uri), i + k);
            ck_assert_int_eq(mcpgw_registry_subscribe(r, v[i], uri), 1);
        }
    ck_assert_uint_eq(stats(r).sub_entries, (uint64_t)n * SUB_PER_SESSION);
    ck_assert_uint_ge(stats(r).sub_uris, SUB_URIS);
}

START_TEST(test_registry_counts_return_to_zero_after_unsubscribe)
{
    struct mcpgw_registry *r = mcpgw_registry_new(3);
    struct mcpgw_session **v = insert_many(r, SUB_SESSIONS);
    char uri[64];

    subscribe_many(r, v, SUB_SESSIONS);
    for (int i = 0; i < SUB_SESSIONS; i++)
        for (int k = SUB_PER_SESSION - 1; k >= 0; k--) {
            uri_of(uri, sizeof(uri), i + k);
            ck_assert_int_eq(mcpgw_registry_unsubscribe(r, v[i], uri), 1);
        }
    ck_assert_uint_eq(stats(r).sub_uris, 0);
    ck_assert_uint_eq(stats(r).sub_entries, 0);
    ck_assert_uint_eq(stats(r).sessions, SUB_SESSIONS);
    drop_all(r, v, SUB_SESSIONS);
    expect_empty(r);
    mcpgw_registry_free(r);
}
END_TEST

static void count_visit(void *arg, struct mcpgw_session *s)
{
    (*(int *)arg)++;
}

START_TEST(test_registry_counts_return_to_zero_after_remove_with_live_subscriptions)
{
    struct mcpgw_registry *r = mcpgw_registry_new(3);
    struct mcpgw_session **v = insert_many(r, SUB_SESSIONS);
    char uri[64];
    int visited = 0;

    subscribe_many(r, v, SUB_SESSIONS);
    drop_all(r, v, SUB_SESSIONS); /* a DELETE: remove without unsubscribing first */
    expect_empty(r);
    for (int k = 0; k < SUB_URIS; k++) {
        uri_of(uri, sizeof(uri), k);
        mcpgw_registry_foreach_subscriber(r, uri, count_visit, &visited);
    }
    ck_assert_int_eq(visited, 0);
    mcpgw_registry_free(r);
}
END_TEST

START_TEST(test_registry_counts_return_to_zero_after_expiry)
{
    struct mcpgw_registry *r = mcpgw_registry_new(3);
    struct mcpgw_session **v = insert_many(r, SUB_SESSIONS), *s;
    char id[32];
    int expired = 0;

    subscribe_many(r, v, SUB_SESSIONS);
    for (int i = 0; i < SUB_SESSIONS; i++)
        mcpgw_registry_touch(r, v[i], 1000 + (uint64_t)i);
    /* the first 100 have been idle since before t=1100 */
    while ((s = mcpgw_registry_oldest_idle(r, 1100)) != NULL) {
        ck_assert_uint_lt(s->last_active_ms, 1100);
        mcpgw_registry_remove(r, s);
        mcpgw_session_free(s);
        expired++;
    }
    ck_assert_int_eq(expired, 100);
    ck_assert_uint_eq(stats(r).sessions, SUB_SESSIONS - 100);
    ck_assert_uint_eq(stats(r).sub_entries, (uint64_t)(SUB_SESSIONS - 100) * SUB_PER_SESSION);
    for (int i = 0; i < SUB_SESSIONS; i++) {
        snprintf(id, sizeof(id), "sess-%d", i);
        if (i < 100)
            ck_assert_ptr_null(find(r, id));
        else
            ck_assert_ptr_eq(find(r, id), v[i]);
    }
    /* then everything expires */
    while ((s = mcpgw_registry_oldest_idle(r, UINT64_MAX)) != NULL) {
        mcpgw_registry_remove(r, s);
        mcpgw_session_free(s);
    }
    expect_empty(r);
    free(v);
    mcpgw_registry_free(r);
}
END_TEST

struct order {
    struct mcpgw_session *seen[8];
    int n;
};

static void record_order(void *arg, struct mcpgw_session *s)
{
    struct order *o = arg;
    ck_assert_int_lt(o->n, 8);
    o->seen[o->n++] = s;
}

START_TEST(test_registry_touch_orders_sessions_for_oldest_idle)
{
    struct mcpgw_registry *r = mcpgw_registry_new(2);
    struct mcpgw_session *a = session_new("a"), *b = session_new("b"), *c = session_new("c");
    struct order o = {0};

    mcpgw_registry_insert(r, a);
    mcpgw_registry_insert(r, b);
    mcpgw_registry_insert(r, c);
    mcpgw_registry_touch(r, a, 100);
    mcpgw_registry_touch(r, b, 200);
    mcpgw_registry_touch(r, c, 300);
    ck_assert_ptr_null(mcpgw_registry_oldest_idle(r, 100)); /* idle since *before* */
    ck_assert_ptr_eq(mcpgw_registry_oldest_idle(r, 101), a);

    mcpgw_registry_touch(r, a, 400);
    ck_assert_ptr_eq(mcpgw_registry_oldest_idle(r, 1000), b);
    mcpgw_registry_touch(r, b, 500);
    ck_assert_ptr_eq(mcpgw_registry_oldest_idle(r, 1000), c);
    ck_assert_ptr_null(mcpgw_registry_oldest_idle(r, 300));

    /* touching the youngest keeps the order; the list is c, a, b */
    mcpgw_registry_touch(r, b, 600);
    mcpgw_registry_foreach(r, record_order, &o);
    ck_assert_int_eq(o.n, 3);
    ck_assert_ptr_eq(o.seen[0], c);
    ck_assert_ptr_eq(o.seen[1], a);
    ck_assert_ptr_eq(o.seen[2], b);

    /* removing the oldest hands the role to the next */
    mcpgw_registry_remove(r, c);
    ck_assert_ptr_eq(mcpgw_registry_oldest_idle(r, 1000), a);
    mcpgw_registry_remove(r, b);
    mcpgw_registry_remove(r, a);
    ck_assert_ptr_null(mcpgw_registry_oldest_idle(r, UINT64_MAX));
    mcpgw_session_free(a);
    mcpgw_session_free(b);
    mcpgw_session_free(c);
    mcpgw_registry_free(r);
}
END_TEST

struct marks {
    struct mcpgw_session **v;
    int n;
    int *hits;
};

static void mark_visit(void *arg, struct mcpgw_session *s)
{
    struct marks *m = arg;
    for (int i = 0; i < m->n; i++)
        if (m->v[i] == s) {
            m->hits[i]++;
            return;
        }
    ck_abort_msg("visited a session that is not registered");
}

START_TEST(test_registry_foreach_subscriber_visits_exactly_the_subscribers_across_shards)
{
    enum { N = 400 };
    struct mcpgw_registry *r = mcpgw_registry_new(4);
    struct mcpgw_session **v = insert_many(r, N);
    int hits[N];
    struct marks m = {v, N, hits};

    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)
            mcpgw_registry_subscribe(r, v[i], "res://x");
        if (i % 5 == 0)
            mcpgw_registry_subscribe(r, v[i], "res://y");
    }
    /* sessions 0, 3, 6, ... but not those that later left */
    for (int i = 0; i < N; i += 9)
        mcpgw_registry_unsubscribe(r, v[i], "res://x");

    memset(hits, 0, sizeof(hits));
    mcpgw_registry_foreach_subscriber(r, "res://x", mark_visit, &m);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(hits[i], i % 3 == 0 && i % 9 != 0);

    memset(hits, 0, sizeof(hits));
    mcpgw_registry_foreach_subscriber(r, "res://y", mark_visit, &m);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(hits[i], i % 5 == 0);

    memset(hits, 0, sizeof(hits));
    mcpgw_registry_foreach_subscriber(r, "res://z", mark_visit, &m);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(hits[i], 0);

    memset(hits, 0, sizeof(hits));
    mcpgw_registry_foreach(r, mark_visit, &m);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(hits[i], 1);

    drop_all(r, v, N);
    expect_empty(r);
    mcpgw_registry_free(r);
}
END_TEST

/* The fan-out walks one URI's subscribers a batch at a time: every subscriber exactly once, no
 * batch far above its budget (whole shards), and the walk ends. */
START_TEST(test_registry_subscriber_walk_in_batches_visits_each_once)
{
    enum { N = 400 };
    struct mcpgw_registry *r = mcpgw_registry_new(4);
    struct mcpgw_session **v = insert_many(r, N);
    int hits[N], batches = 0;
    struct marks m = {v, N, hits};
    size_t shard = 0, total = 0;

    for (int i = 0; i < N; i += 2)
        mcpgw_registry_subscribe(r, v[i], "res://x");
    memset(hits, 0, sizeof(hits));
    while (mcpgw_registry_subscriber_shards_left(r, shard)) {
        size_t before = shard, n;
        n = mcpgw_registry_foreach_subscriber_from(r, "res://x", &shard, 10, mark_visit, &m);
        ck_assert_uint_gt(shard, before);
        total += n;
        batches++;
    }
    ck_assert_uint_eq(total, N / 2);
    ck_assert_int_gt(batches, 4); /* 200 subscribers over 16 shards, 10 at a time */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(hits[i], i % 2 == 0);
    /* a finished walk visits nothing more */
    ck_assert_uint_eq(
        mcpgw_registry_foreach_subscriber_from(r, "res://x", &shard, 10, mark_visit, &m), 0);

    drop_all(r, v, N);
    mcpgw_registry_free(r);
}
END_TEST

START_TEST(test_registry_clamps_shard_bits_to_16)
{
    struct mcpgw_registry *r = mcpgw_registry_new(40);
    ck_assert_uint_eq(stats(r).shards, 1u << 16);
    mcpgw_registry_free(r);
    r = mcpgw_registry_new(0);
    ck_assert_uint_eq(stats(r).shards, 1);
    mcpgw_registry_free(r);
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_registry_finds_many_sessions_across_shards);
    tcase_add_test(tc, test_registry_keeps_chains_short_as_sessions_grow);
    tcase_add_test(tc, test_registry_refuses_duplicate_insert);
    tcase_add_test(tc, test_registry_looks_up_by_pointer_and_length_without_nul);
    tcase_add_test(tc, test_registry_subscribe_updates_session_list_and_shard_index);
    tcase_add_test(tc, test_registry_counts_return_to_zero_after_unsubscribe);
    tcase_add_test(tc, test_registry_counts_return_to_zero_after_remove_with_live_subscriptions);
    tcase_add_test(tc, test_registry_counts_return_to_zero_after_expiry);
    tcase_add_test(tc, test_registry_touch_orders_sessions_for_oldest_idle);
    tcase_add_test(tc,
                   test_registry_foreach_subscriber_visits_exactly_the_subscribers_across_shards);
    tcase_add_test(tc, test_registry_subscriber_walk_in_batches_visits_each_once);
    tcase_add_test(tc, test_registry_clamps_shard_bits_to_16);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registry_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
