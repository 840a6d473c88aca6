/* test_store.c - the store interface through its memory backend: operations complete at once,
 * and resource events are reported through the events table given at creation. */
#include "node/store.h"

#include "common/util.h"
#include "node/registry.h"
#include "node/session.h"

#include <check.h>
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
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
