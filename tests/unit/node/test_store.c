/* test_store.c - the store interface through its memory backend: operations complete at once,
 * and resource events are reported through the events table given at creation; and, against a
 * real redis-server (port 13081), the list changes every node reports: recorded once for the
 * cluster and replayed to the sessions that began before them. */
#include "node/store.h"

#include "common/util.h"
#include "node/registry.h"
#include "node/session.h"

#include "tests/unit/upkit.h"

#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the events table and the completion callbacks saw. */
struct seen {
    int done, err;
    int claims;
    struct mcpgw_session *claimed;
    int notes;
    const char *text;
    uint64_t version;
    int resources;
    char uri[128];
    uint64_t ev_version, ev_g, ev_seq;
    int replayed, replay_done;
    uint64_t at;
    int results;
    const char *result;
    int others; /* moved, hold, verified: never from the memory store */
    int listed; /* names reported through the notes event */
    char listed_name[64];
};

static void on_resource(void *arg, const struct mcpgw_store_event *ev)
{
    struct seen *w = arg;
    w->resources++;
    snprintf(w->uri, sizeof(w->uri), "%s", ev->uri);
    w->ev_version = ev->version;
    w->ev_g = ev->g;
    w->ev_seq = ev->seq;
}

static void on_moved(void *arg, struct mcpgw_session *s, uint64_t epoch)
{
    ((struct seen *)arg)->others++;
}

static void on_hold(void *arg, struct mcpgw_session *s)
{
    ((struct seen *)arg)->others++;
}

static void on_verified(void *arg, struct mcpgw_session *s, enum mcpgw_store_verdict v,
                        const char *owner, uint64_t epoch)
{
    ((struct seen *)arg)->others++;
}

static void on_notes(void *arg, const char *const *names, size_t count)
{
    struct seen *w = arg;
    w->listed += (int)count;
    snprintf(w->listed_name, sizeof(w->listed_name), "%s", names[count - 1]);
}

static const struct mcpgw_store_events events = {
    .notes = on_notes,
    .moved = on_moved,
    .resource = on_resource,
    .hold = on_hold,
    .verified = on_verified,
};

static void done(void *arg, int err)
{
    struct seen *w = arg;
    w->done++;
    w->err = err;
}

static void claimed(void *arg, struct mcpgw_session *s, int err)
{
    struct seen *w = arg;
    w->claims++;
    w->claimed = s;
    w->err = err;
}

static void noted(void *arg, int err, const char *text, uint64_t version)
{
    struct seen *w = arg;
    w->notes++;
    w->err = err;
    w->text = text;
    w->version = version;
}

static void got_result(void *arg, int err, const char *json)
{
    struct seen *w = arg;
    w->results++;
    w->err = err;
    w->result = json;
}

static void visit(void *arg, const struct mcpgw_store_event *ev)
{
    ((struct seen *)arg)->replayed++;
}

static void replayed(void *arg, int err, uint64_t at)
{
    struct seen *w = arg;
    w->replay_done++;
    w->err = err;
    w->at = at;
}

static struct mcpgw_registry *reg;

static struct mcpgw_store *memory_store(struct seen *w)
{
    struct mcpgw_store_config cfg = {"memory", "n1", 60000, NULL, NULL};
    char err[256] = "";
    struct mcpgw_store *st;
    reg = mcpgw_registry_new(2);
    cfg.reg = reg;
    memset(w, 0, sizeof(*w));
    w->err = 99;
    st = mcpgw_store_new(&cfg, &events, w, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    return st;
}

static void store_free(struct mcpgw_store *st)
{
    mcpgw_store_free(st);
    mcpgw_registry_free(reg);
}

static struct mcpgw_session *session_new(const char *id)
{
    struct mcpgw_session *s = xcalloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id);
    return s;
}

START_TEST(test_store_memory_is_local_and_always_up)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    ck_assert_int_eq(mcpgw_store_shared(st), 0);
    ck_assert_int_eq(mcpgw_store_up(st), 1);
    store_free(st);
}
END_TEST

START_TEST(test_store_refuses_an_unknown_url_with_a_sentence)
{
    struct mcpgw_store_config cfg = {"postgres://x", "n1", 60000, NULL, NULL};
    char err[256] = "";
    ck_assert_ptr_null(mcpgw_store_new(&cfg, &events, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "postgres://x") && strstr(err, "memory"), "%s", err);
}
END_TEST

START_TEST(test_store_create_gives_epoch_one_before_returning)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    struct mcpgw_session *s = session_new("n1.a");
    mcpgw_store_create(st, s, done, &w);
    ck_assert_int_eq(w.done, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    ck_assert_uint_eq(s->epoch, 1);
    mcpgw_session_free(s);
    store_free(st);
}
END_TEST

START_TEST(test_store_claim_of_a_session_held_nowhere_is_gone)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    mcpgw_store_claim(st, "n2.b", 4, claimed, &w);
    ck_assert_int_eq(w.claims, 1);
    ck_assert_ptr_null(w.claimed);
    ck_assert_int_eq(w.err, MCPGW_STORE_GONE);
    store_free(st);
}
END_TEST

START_TEST(test_store_save_subscribe_touch_and_delete_complete_at_once)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    struct mcpgw_session *s = session_new("n1.a");
    mcpgw_store_create(st, s, done, &w);
    mcpgw_store_save(st, s, done, &w);
    mcpgw_store_subscribe(st, s, "test://watched-resource", 1, done, &w);
    mcpgw_store_subscribe(st, s, "test://watched-resource", 0, done, &w);
    ck_assert_int_eq(w.done, 4);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    mcpgw_store_touch(st, s);
    mcpgw_store_delete(st, s);
    ck_assert_int_eq(w.others, 0);
    mcpgw_session_free(s);
    store_free(st);
}
END_TEST

START_TEST(test_store_note_write_reports_the_resource_event_before_its_callback)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    mcpgw_store_note_write(st, "todo", "milk", noted, &w);
    ck_assert_int_eq(w.resources, 1);
    ck_assert_str_eq(w.uri, "mcpgw://notes/todo");
    ck_assert_uint_eq(w.ev_version, 1);
    /* no cluster-wide id: the memory store is the whole cluster */
    ck_assert_uint_eq(w.ev_g, 0);
    ck_assert_uint_eq(w.ev_seq, 0);
    ck_assert_int_eq(w.notes, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    ck_assert_uint_eq(w.version, 1);
    mcpgw_store_note_write(st, "todo", "eggs", noted, &w);
    ck_assert_int_eq(w.resources, 2);
    ck_assert_uint_eq(w.ev_version, 2);
    ck_assert_uint_eq(w.version, 2);
    ck_assert_int_eq(w.others, 0);
    store_free(st);
}
END_TEST

START_TEST(test_store_memory_reports_a_new_note_name_once_before_its_callback)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    mcpgw_store_note_write(st, "todo", "milk", noted, &w);
    ck_assert_int_eq(w.listed, 1);
    ck_assert_str_eq(w.listed_name, "todo");
    mcpgw_store_note_write(st, "todo", "eggs", noted, &w); /* not a new name */
    ck_assert_int_eq(w.listed, 1);
    mcpgw_store_note_write(st, "done", "bread", noted, &w);
    ck_assert_int_eq(w.listed, 2);
    ck_assert_str_eq(w.listed_name, "done");
    store_free(st);
}
END_TEST

START_TEST(test_store_note_read_returns_the_last_text_and_version)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    mcpgw_store_note_write(st, "a", "one", noted, &w);
    mcpgw_store_note_write(st, "b", "two", noted, &w);
    mcpgw_store_note_write(st, "a", "three", noted, &w);
    mcpgw_store_note_read(st, "a", noted, &w);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    ck_assert_str_eq(w.text, "three");
    ck_assert_uint_eq(w.version, 2);
    mcpgw_store_note_read(st, "b", noted, &w);
    ck_assert_str_eq(w.text, "two");
    ck_assert_uint_eq(w.version, 1);
    store_free(st);
}
END_TEST

START_TEST(test_store_note_read_of_a_missing_note_is_gone)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    mcpgw_store_note_read(st, "nothing", noted, &w);
    ck_assert_int_eq(w.notes, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_GONE);
    ck_assert_ptr_null(w.text);
    store_free(st);
}
END_TEST

START_TEST(test_store_memory_records_no_results_for_retries)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    struct mcpgw_session *s = session_new("n1.a");
    mcpgw_store_result_put(st, s, "7", "{\"content\":[]}", done, &w);
    ck_assert_int_eq(w.done, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    /* A single process never sees a retry on another node: nothing to look up. */
    mcpgw_store_result_get(st, s, "7", got_result, &w);
    ck_assert_int_eq(w.results, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    ck_assert_ptr_null(w.result);
    mcpgw_session_free(s);
    store_free(st);
}
END_TEST

START_TEST(test_store_memory_replays_nothing_and_resyncs_at_once)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    struct mcpgw_session *s = session_new("n1.a");
    mcpgw_registry_insert(reg, s);
    mcpgw_store_note_write(st, "a", "x", noted, &w);
    mcpgw_store_replay(st, s, "0-0", visit, replayed, &w);
    ck_assert_int_eq(w.replayed, 0);
    ck_assert_int_eq(w.replay_done, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    ck_assert_uint_eq(w.at, 0);
    mcpgw_store_resync(st, done, &w);
    ck_assert_int_eq(w.done, 1);
    ck_assert_int_eq(w.err, MCPGW_STORE_OK);
    mcpgw_registry_remove(reg, s);
    mcpgw_session_free(s);
    store_free(st);
}
END_TEST

START_TEST(test_store_claim_replay_calls_claimed_then_done)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    mcpgw_store_claim_replay(st, "n2.b", 4, "3-0", claimed, &w, visit, replayed, &w);
    ck_assert_int_eq(w.claims, 1);
    ck_assert_int_eq(w.replay_done, 1);
    ck_assert_int_eq(w.replayed, 0);
    store_free(st);
}
END_TEST

START_TEST(test_store_names_every_error_and_verdict)
{
    ck_assert_str_eq(mcpgw_store_err_str(MCPGW_STORE_GONE), "session record not found");
    ck_assert_str_eq(mcpgw_store_err_str(-99), "unknown store error");
    ck_assert_str_eq(mcpgw_store_verdict_str(MCPGW_STORE_VERIFY_MOVED), "moved");
    ck_assert_str_eq(mcpgw_store_verdict_str(MCPGW_STORE_VERIFY_COUNT), "?");
    for (int v = 0; v < MCPGW_STORE_VERIFY_COUNT; v++)
        ck_assert_str_ne(mcpgw_store_verdict_str((enum mcpgw_store_verdict)v), "?");
}
END_TEST

START_TEST(test_store_memory_records_no_list_changes)
{
    struct seen w;
    struct mcpgw_store *st = memory_store(&w);
    ck_assert_int_eq(mcpgw_store_list_change(st, "tools", 1, done, &w), -1);
    ck_assert_int_eq(w.done, 0);
    ck_assert_uint_eq(mcpgw_store_event_counter(st), 0);
    store_free(st);
}
END_TEST

/* ---- the Redis store: list changes ---- */

#define REDIS_PORT 13081

static pid_t redis_start(void)
{
    char port[16];
    long deadline = upkit_now_ms() + 10000;
    pid_t pid;
    ck_assert_msg(!upkit_port_open(REDIS_PORT), "port %d is already in use", REDIS_PORT);
    snprintf(port, sizeof(port), "%d", REDIS_PORT);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        perror("exec redis-server");
        _exit(127);
    }
    while (!upkit_port_open(REDIS_PORT)) {
        ck_assert_msg(upkit_now_ms() < deadline, "redis-server did not listen within 10 s");
        usleep(10000);
    }
    return pid;
}

struct lnode {
    struct mcpgw_store *st;
    struct mcpgw_registry *reg;
    int lists;     /* list-change events reported */
    uint64_t g;    /* the last one's counter */
    char kind[16]; /* ... and its kind */
    int done, err;
    int replayed, replay_done;
    char replay_uri[16];
};

static void l_resource(void *arg, const struct mcpgw_store_event *ev)
{
    struct lnode *l = arg;
    if (ev->uri[0] != MCPGW_STORE_LIST_PREFIX[0])
        return;
    l->lists++;
    l->g = ev->g;
    snprintf(l->kind, sizeof(l->kind), "%s", ev->uri + 1);
}

static const struct mcpgw_store_events l_events = {.resource = l_resource};

static void l_done(void *arg, int err)
{
    struct lnode *l = arg;
    l->done++;
    l->err = err;
}

static void l_visit(void *arg, const struct mcpgw_store_event *ev)
{
    struct lnode *l = arg;
    l->replayed++;
    snprintf(l->replay_uri, sizeof(l->replay_uri), "%s", ev->uri);
}

static void l_replayed(void *arg, int err, uint64_t at)
{
    struct lnode *l = arg;
    l->replay_done++;
    l->err = err;
}

static void l_open(struct lnode *l, struct event_base *b, const char *id)
{
    struct mcpgw_store_config cfg = {"redis://127.0.0.1:13081", id, 60000, b, NULL};
    char err[256] = "";
    memset(l, 0, sizeof(*l));
    l->reg = mcpgw_registry_new(2);
    cfg.reg = l->reg;
    l->st = mcpgw_store_new(&cfg, &l_events, l, err, sizeof(err));
    ck_assert_msg(l->st != NULL, "%s", err);
}

/* Runs b until cond(a, b2) holds or 10 s pass. */
static int run_while(struct event_base *b, int (*cond)(struct lnode *, struct lnode *),
                     struct lnode *x, struct lnode *y)
{
    long deadline = upkit_now_ms() + 10000;
    struct event *tick = event_new(b, -1, EV_PERSIST, upkit_wake, NULL);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);
    while (!cond(x, y) && upkit_now_ms() < deadline)
        event_base_loop(b, EVLOOP_ONCE);
    event_free(tick);
    return cond(x, y);
}

static int both_up(struct lnode *x, struct lnode *y)
{
    return mcpgw_store_up(x->st) && mcpgw_store_up(y->st);
}
static int both_done(struct lnode *x, struct lnode *y)
{
    return x->done && y->done;
}
static int one_list(struct lnode *x, struct lnode *y)
{
    return x->lists >= 1 && y->lists >= 1;
}
static int two_lists(struct lnode *x, struct lnode *y)
{
    return x->lists >= 2 && y->lists >= 2;
}
static void run_for(struct event_base *b, long ms)
{
    int flag = 0;
    upkit_run_until(b, &flag, ms);
}
static int replay_done(struct lnode *x, struct lnode *y)
{
    return x->replay_done > 0;
}

START_TEST(test_store_redis_records_a_list_change_once_and_replays_it_to_older_sessions)
{
    struct event_base *b = event_base_new();
    pid_t redis = redis_start();
    struct lnode n1, n2;
    struct mcpgw_session *before = session_new("n1.before"), *after = session_new("n1.after");
    l_open(&n1, b, "n1");
    l_open(&n2, b, "n2");
    ck_assert_msg(run_while(b, both_up, &n1, &n2), "the stores did not connect");
    mcpgw_store_create(n1.st, before, l_done, &n1);
    ck_assert(run_while(b, both_done, &n1, &n1) && n1.err == 0);

    /* Both nodes saw the same change: one event, reported to both, once. */
    n1.done = 0;
    ck_assert_int_eq(mcpgw_store_list_change(n1.st, "tools", 0xabcULL, l_done, &n1), 0);
    ck_assert_int_eq(mcpgw_store_list_change(n2.st, "tools", 0xabcULL, l_done, &n2), 0);
    ck_assert(run_while(b, both_done, &n1, &n2));
    ck_assert_int_eq(n1.err, 0);
    ck_assert_int_eq(n2.err, 0);
    ck_assert_msg(run_while(b, one_list, &n1, &n2), "the list change was not published");
    run_for(b, 300); /* a second record of the same change would be published meanwhile */
    ck_assert_int_eq(n1.lists, 1);
    ck_assert_int_eq(n2.lists, 1);
    ck_assert_str_eq(n1.kind, "tools");

    /* Another list: a second event. */
    ck_assert_int_eq(mcpgw_store_list_change(n2.st, "tools", 0xdefULL, l_done, &n2), 0);
    ck_assert_msg(run_while(b, two_lists, &n1, &n2), "the second list change was not published");
    ck_assert_uint_eq(n1.g, n2.g);

    /* A session from before both changes gets both; one that began after them, none. */
    mcpgw_store_replay(n2.st, before, "0-0", l_visit, l_replayed, &n2);
    ck_assert(run_while(b, replay_done, &n2, &n2) && n2.err == 0);
    ck_assert_int_eq(n2.replayed, 2);
    ck_assert_str_eq(n2.replay_uri, MCPGW_STORE_LIST_PREFIX "tools");
    n1.done = 0;
    mcpgw_store_create(n1.st, after, l_done, &n1);
    ck_assert(run_while(b, both_done, &n1, &n1) && n1.err == 0);
    n1.replay_done = n1.replayed = 0;
    mcpgw_store_replay(n1.st, after, "0-0", l_visit, l_replayed, &n1);
    ck_assert(run_while(b, replay_done, &n1, &n1) && n1.err == 0);
    ck_assert_int_eq(n1.replayed, 0);

    mcpgw_store_free(n1.st);
    mcpgw_store_free(n2.st);
    mcpgw_registry_free(n1.reg);
    mcpgw_registry_free(n2.reg);
    mcpgw_session_free(before);
    mcpgw_session_free(after);
    event_base_free(b);
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
}
END_TEST

static int counter_known(struct lnode *x, struct lnode *y)
{
    return mcpgw_store_up(x->st) && mcpgw_store_event_counter(x->st) >= y->g;
}

/* A node that starts listening after the last event has received none, yet its event counter
 * names that event (upstream update ids start from it: node/upsub.c). */
START_TEST(test_store_redis_event_counter_covers_events_published_before_it_listened)
{
    struct event_base *b = event_base_new();
    pid_t redis = redis_start();
    struct lnode n1, n3;
    l_open(&n1, b, "n1");
    ck_assert_msg(run_while(b, both_up, &n1, &n1), "the store did not connect");
    ck_assert_int_eq(mcpgw_store_list_change(n1.st, "tools", 0x1ULL, l_done, &n1), 0);
    ck_assert_int_eq(mcpgw_store_list_change(n1.st, "prompts", 0x2ULL, l_done, &n1), 0);
    ck_assert_msg(run_while(b, two_lists, &n1, &n1), "the list changes were not published");
    ck_assert_uint_eq(mcpgw_store_event_counter(n1.st), n1.g);
    l_open(&n3, b, "n3");
    ck_assert_msg(run_while(b, counter_known, &n3, &n1),
                  "the late store's counter is %llu, not %llu",
                  (unsigned long long)mcpgw_store_event_counter(n3.st), (unsigned long long)n1.g);
    ck_assert_int_eq(n3.lists, 0);
    mcpgw_store_free(n1.st);
    mcpgw_store_free(n3.st);
    mcpgw_registry_free(n1.reg);
    mcpgw_registry_free(n3.reg);
    event_base_free(b);
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("memory");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, test_store_memory_is_local_and_always_up);
    tcase_add_test(tc, test_store_refuses_an_unknown_url_with_a_sentence);
    tcase_add_test(tc, test_store_create_gives_epoch_one_before_returning);
    tcase_add_test(tc, test_store_claim_of_a_session_held_nowhere_is_gone);
    tcase_add_test(tc, test_store_save_subscribe_touch_and_delete_complete_at_once);
    tcase_add_test(tc, test_store_note_write_reports_the_resource_event_before_its_callback);
    tcase_add_test(tc, test_store_memory_reports_a_new_note_name_once_before_its_callback);
    tcase_add_test(tc, test_store_note_read_returns_the_last_text_and_version);
    tcase_add_test(tc, test_store_note_read_of_a_missing_note_is_gone);
    tcase_add_test(tc, test_store_memory_records_no_results_for_retries);
    tcase_add_test(tc, test_store_memory_replays_nothing_and_resyncs_at_once);
    tcase_add_test(tc, test_store_claim_replay_calls_claimed_then_done);
    tcase_add_test(tc, test_store_names_every_error_and_verdict);
    tcase_add_test(tc, test_store_memory_records_no_list_changes);
    suite_add_tcase(s, tc);
    tc = tcase_create("redis");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
                   test_store_redis_records_a_list_change_once_and_replays_it_to_older_sessions);
    tcase_add_test(tc, test_store_redis_event_counter_covers_events_published_before_it_listened);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
