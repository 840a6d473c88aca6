/* test_tasks.c - the tasks extension's pieces that stand alone: what node a task id names, who
 * declared the extension, and the rules of task records (through the memory store, which keeps
 * them as the Redis store does: a terminal state is written once, writes can name the owner they
 * replace, a record is not re-created by a late write, and it expires). */
#include "node/tasks.h"

#include "common/ids.h"
#include "node/registry.h"
#include "node/store.h"

#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../check-run.h"

START_TEST(test_tasks_id_names_its_node)
{
    char id[96], node[32];
    ck_assert_int_eq(mcpgw_id_new("n7", id, sizeof(id)), 0);
    ck_assert_uint_eq(mcpgw_tasks_id_node(id, node, sizeof(node)), 2);
    ck_assert_str_eq(node, "n7");
    ck_assert_uint_eq(mcpgw_tasks_id_node("node-12.abcdef", node, sizeof(node)), 7);
    ck_assert_str_eq(node, "node-12");
    /* no prefix, an empty one, or one longer than the caller's buffer: no node */
    ck_assert_uint_eq(mcpgw_tasks_id_node("tasks-conformance-nonexistent", node, sizeof(node)), 0);
    ck_assert_uint_eq(mcpgw_tasks_id_node(".abc", node, sizeof(node)), 0);
    ck_assert_uint_eq(mcpgw_tasks_id_node("a-very-long-node-name.x", node, 8), 0);
}
END_TEST

START_TEST(test_tasks_declared_only_with_the_extension_object)
{
    json_object *yes = json_tokener_parse(
        "{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}},\"elicitation\":{}}");
    json_object *other = json_tokener_parse("{\"extensions\":{\"io.example/other\":{}}}");
    json_object *wrong =
        json_tokener_parse("{\"extensions\":{\"io.modelcontextprotocol/tasks\":1}}");
    ck_assert(mcpgw_tasks_declared(yes));
    ck_assert(!mcpgw_tasks_declared(other));
    ck_assert(!mcpgw_tasks_declared(wrong));
    ck_assert(!mcpgw_tasks_declared(NULL));
    json_object_put(yes);
    json_object_put(other);
    json_object_put(wrong);
}
END_TEST

static struct mcpgw_registry *reg;

static struct mcpgw_store *store(void)
{
    static const struct mcpgw_store_events events;
    struct mcpgw_store_config cfg = {"memory", "n1", 60000, NULL, NULL};
    char err[256];
    struct mcpgw_store *st;
    reg = mcpgw_registry_new(2);
    cfg.reg = reg;
    st = mcpgw_store_new(&cfg, &events, NULL, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    return st;
}

static void store_free(struct mcpgw_store *st)
{
    mcpgw_store_free(st);
    mcpgw_registry_free(reg);
}

static void on_done(void *arg, int err)
{
    *(int *)arg = err;
}

/* What a get found: status, owner and rec copied, or err. */
struct found {
    int err;
    char status[32], owner[32], rec[128];
    uint64_t lease, version;
};

static void on_get(void *arg, int err, const struct mcpgw_store_task *t)
{
    struct found *f = arg;
    f->err = err;
    if (t) {
        snprintf(f->status, sizeof(f->status), "%s", t->status);
        snprintf(f->owner, sizeof(f->owner), "%s", t->owner);
        snprintf(f->rec, sizeof(f->rec), "%s", t->rec);
        f->lease = t->lease_ms;
        f->version = t->version;
    }
}

static int put_v(struct mcpgw_store *st, const char *status, const char *owner, const char *rec,
                 const char *expect, uint64_t ttl, uint64_t version, uint64_t lease,
                 const char *note)
{
    struct mcpgw_store_task t = {status, owner, rec, lease, version, note};
    int err = 99;
    mcpgw_store_task_put(st, "n1.task", &t, expect, ttl, on_done, &err);
    ck_assert_int_ne(err, 99); /* the memory store answers before returning */
    return err;
}

static int put(struct mcpgw_store *st, const char *status, const char *owner, const char *rec,
               const char *expect, uint64_t ttl)
{
    return put_v(st, status, owner, rec, expect, ttl, 0, 1234, NULL);
}

START_TEST(test_task_record_terminal_state_is_written_once)
{
    struct mcpgw_store *st = store();
    struct found f = {0};
    ck_assert_int_eq(put(st, "working", "n1", "{\"a\":1}", NULL, 60000), MCPGW_STORE_OK);
    /* a renewal keeps status and record */
    ck_assert_int_eq(put(st, NULL, "n1", NULL, "n1", 0), MCPGW_STORE_OK);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_int_eq(f.err, MCPGW_STORE_OK);
    ck_assert_str_eq(f.status, "working");
    ck_assert_str_eq(f.rec, "{\"a\":1}");
    ck_assert(f.lease > 0 && f.lease <= 1234); /* what is left of it, by the store's clock */
    ck_assert_int_eq(put(st, "cancelled", "n2", "{\"c\":1}", NULL, 0), MCPGW_STORE_OK);
    /* the runner's late result, a renewal, even a new creation: refused */
    ck_assert_int_eq(put(st, "completed", "n1", "{\"r\":1}", "n1", 0), MCPGW_STORE_STALE);
    ck_assert_int_eq(put(st, NULL, "n1", NULL, NULL, 0), MCPGW_STORE_STALE);
    ck_assert_int_eq(put(st, "working", "n1", "{}", NULL, 60000), MCPGW_STORE_STALE);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_str_eq(f.status, "cancelled");
    ck_assert_str_eq(f.rec, "{\"c\":1}");
    store_free(st);
}
END_TEST

START_TEST(test_task_record_write_names_the_owner_it_replaces)
{
    struct mcpgw_store *st = store();
    struct found f = {0};
    ck_assert_int_eq(put(st, "working", "n1", "{}", NULL, 60000), MCPGW_STORE_OK);
    /* two nodes find n1 gone: the first to write wins, the second is refused */
    ck_assert_int_eq(put(st, "working", "n2", "{\"by\":2}", "n1", 0), MCPGW_STORE_OK);
    ck_assert_int_eq(put(st, "working", "n3", "{\"by\":3}", "n1", 0), MCPGW_STORE_STALE);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_str_eq(f.owner, "n2");
    ck_assert_str_eq(f.rec, "{\"by\":2}");
    store_free(st);
}
END_TEST

START_TEST(test_task_record_is_not_recreated_and_expires)
{
    struct mcpgw_store *st = store();
    struct found f = {0};
    /* a write without a lifetime over no record (it expired): refused, nothing created */
    ck_assert_int_eq(put(st, "completed", "n1", "{}", "n1", 0), MCPGW_STORE_STALE);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_int_eq(f.err, MCPGW_STORE_GONE);
    ck_assert_int_eq(put(st, "working", "n1", "{}", NULL, 50), MCPGW_STORE_OK);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_int_eq(f.err, MCPGW_STORE_OK);
    usleep(120 * 1000);
    f.err = 0;
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_int_eq(f.err, MCPGW_STORE_GONE);
    store_free(st);
}
END_TEST

START_TEST(test_task_record_write_refused_when_written_since_read)
{
    struct mcpgw_store *st = store();
    struct found f = {0};
    uint64_t v;
    ck_assert_int_eq(put(st, "input_required", "n1", "{\"open\":2}", NULL, 60000), MCPGW_STORE_OK);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    v = f.version;
    ck_assert_uint_eq(v, 1);
    /* two updates read version 1: the first write wins, the second is refused (it must read
     * again and redo its change on the first one's record), not written over it */
    ck_assert_int_eq(put_v(st, "input_required", "n1", "{\"a\":1}", NULL, 0, v, 6000, NULL),
                     MCPGW_STORE_OK);
    ck_assert_int_eq(put_v(st, "input_required", "n2", "{\"b\":1}", NULL, 0, v, 6000, NULL),
                     MCPGW_STORE_STALE);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_str_eq(f.rec, "{\"a\":1}");
    ck_assert_uint_eq(f.version, 2);
    /* a lease renewal writes no record: the version stays */
    ck_assert_int_eq(put(st, NULL, "n1", NULL, NULL, 0), MCPGW_STORE_OK);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_uint_eq(f.version, 2);
    ck_assert_int_eq(put_v(st, "completed", "n2", "{\"ab\":1}", NULL, 0, 2, 6000, NULL),
                     MCPGW_STORE_OK);
    store_free(st);
}
END_TEST

START_TEST(test_task_lease_runs_out_by_the_store_clock)
{
    struct mcpgw_store *st = store();
    struct found f = {0};
    ck_assert_int_eq(put_v(st, "working", "n1", "{}", NULL, 60000, 0, 60, NULL), MCPGW_STORE_OK);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert(f.lease > 0 && f.lease <= 60);
    usleep(100 * 1000);
    mcpgw_store_task_get(st, "n1.task", on_get, &f);
    ck_assert_uint_eq(f.lease, 0); /* run out: 0 left, whatever any node's wall clock says */
    store_free(st);
}
END_TEST

static int notes;
static char last_note[64];

static void on_note(void *arg, const char *msg, size_t len)
{
    (void)arg;
    notes++;
    snprintf(last_note, sizeof(last_note), "%.*s", (int)len, msg);
}

START_TEST(test_task_note_published_once_per_change_of_status)
{
    struct mcpgw_store *st = store();
    notes = 0;
    mcpgw_store_set_task_handler(st, on_note, NULL);
    /* a creation is no change; the same status again neither */
    ck_assert_int_eq(put_v(st, "working", "n1", "{}", NULL, 60000, 0, 6000, "created"),
                     MCPGW_STORE_OK);
    ck_assert_int_eq(put_v(st, "working", "n1", "{}", NULL, 0, 0, 6000, "same"), MCPGW_STORE_OK);
    ck_assert_int_eq(put(st, NULL, "n1", NULL, NULL, 0), MCPGW_STORE_OK);
    ck_assert_int_eq(notes, 0);
    ck_assert_int_eq(put_v(st, "input_required", "n1", "{}", NULL, 0, 0, 6000, "asks"),
                     MCPGW_STORE_OK);
    ck_assert_int_eq(notes, 1);
    ck_assert_str_eq(last_note, "asks");
    ck_assert_int_eq(put_v(st, "completed", "n1", "{}", NULL, 0, 0, 6000, "done"), MCPGW_STORE_OK);
    /* refused writes publish nothing */
    ck_assert_int_eq(put_v(st, "cancelled", "n1", "{}", NULL, 0, 0, 6000, "late"),
                     MCPGW_STORE_STALE);
    ck_assert_int_eq(notes, 2);
    ck_assert_str_eq(last_note, "done");
    store_free(st);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_tasks_id_names_its_node,
                            test_tasks_declared_only_with_the_extension_object,
                            test_task_record_terminal_state_is_written_once,
                            test_task_record_write_names_the_owner_it_replaces,
                            test_task_record_is_not_recreated_and_expires,
                            test_task_record_write_refused_when_written_since_read,
                            test_task_lease_runs_out_by_the_store_clock,
                            test_task_note_published_once_per_change_of_status};
    return mcpgw_check_run("tasks", "core", tests, sizeof(tests) / sizeof(tests[0]));
}
