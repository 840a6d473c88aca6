/* store_task.c - task records kept in this process, for the memory store: the same rules as the
 * Redis store's (a terminal state is written once, an owner check, expiry by ttl), so that
 * node/tasks.c is written once for both. */
#include "common/jsonrpc.h"
#include "common/util.h"
#include "node/store-impl.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* The table: task id -> {"st", "own", "lease", "rec", "ver", "exp"} (lease and exp: this
 * process's monotonic clock, mcpgw_now_ms). */
struct mem_tasks {
    json_object *by_id;
    uint64_t swept_ms;
};

/* Records kept at most: a new task beyond it is refused (MCPGW_STORE_UNAVAILABLE). */
#define MAX_RECORDS 100000

static int terminal(const char *st)
{
    return st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
                  strcmp(st, "cancelled") == 0);
}

static struct mem_tasks *table(struct mcpgw_store *st)
{
    struct mem_tasks *m = st->tasks;
    if (!m) {
        m = xcalloc(1, sizeof(*m));
        m->by_id = json_object_new_object();
        st->tasks = m;
    }
    return m;
}

/* Drop expired records, at most once a second (each sweep is linear in the records kept). */
static void sweep(struct mem_tasks *m, uint64_t now)
{
    json_object *dead;
    if (now - m->swept_ms < 1000)
        return;
    m->swept_ms = now;
    dead = json_object_new_array();
    json_object_object_foreach(m->by_id, id, rec)
    {
        if ((uint64_t)json_object_get_int64(json_object_object_get(rec, "exp")) <= now)
            json_object_array_add(dead, json_object_new_string(id));
    }
    for (size_t i = 0; i < json_object_array_length(dead); i++)
        json_object_object_del(m->by_id,
                               json_object_get_string(json_object_array_get_idx(dead, i)));
    json_object_put(dead);
}

/* The live record of id, or NULL (absent or expired). */
static json_object *find(struct mem_tasks *m, const char *id, uint64_t now)
{
    json_object *rec = json_object_object_get(m->by_id, id);
    if (rec && (uint64_t)json_object_get_int64(json_object_object_get(rec, "exp")) <= now) {
        json_object_object_del(m->by_id, id);
        rec = NULL;
    }
    return rec;
}

static void set_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

void mcpgw_store_task_mem_put(struct mcpgw_store *st, const char *id,
                              const struct mcpgw_store_task *t, const char *expect_owner,
                              uint64_t ttl_ms, mcpgw_store_done_fn done, void *arg)
{
    struct mem_tasks *m = table(st);
    uint64_t now = mcpgw_now_ms();
    json_object *rec;
    int changed = 0;
    sweep(m, now);
    rec = find(m, id, now);
    if ((!rec && !ttl_ms) || (rec && terminal(mcpgw_json_str(rec, "st"))) ||
        (rec && expect_owner && strcmp(mcpgw_json_str(rec, "own"), expect_owner) != 0) ||
        (rec && t->version &&
         (uint64_t)json_object_get_int64(json_object_object_get(rec, "ver")) != t->version)) {
        if (done)
            done(arg, MCPGW_STORE_STALE);
        return;
    }
    if (!rec && json_object_object_length(m->by_id) >= MAX_RECORDS) {
        if (done)
            done(arg, MCPGW_STORE_UNAVAILABLE);
        return;
    }
    if (!rec) {
        rec = json_object_new_object();
        set_str(rec, "st", "");
        set_str(rec, "rec", "");
        json_object_object_add(m->by_id, id, rec);
    } else {
        changed = t->status && strcmp(mcpgw_json_str(rec, "st"), t->status) != 0;
    }
    set_str(rec, "own", t->owner);
    json_object_object_add(rec, "lease", json_object_new_int64((int64_t)(now + t->lease_ms)));
    if (t->status)
        set_str(rec, "st", t->status);
    if (t->rec) {
        set_str(rec, "rec", t->rec);
        json_object_object_add(
            rec, "ver",
            json_object_new_int64(json_object_get_int64(json_object_object_get(rec, "ver")) + 1));
    }
    if (ttl_ms)
        json_object_object_add(rec, "exp", json_object_new_int64((int64_t)(now + ttl_ms)));
    /* As Redis publishes it: once per change of status, before the write is reported. */
    if (changed && t->note)
        mcpgw_store_report_task_note(st, t->note, strlen(t->note));
    if (done)
        done(arg, MCPGW_STORE_OK);
}

void mcpgw_store_task_mem_get(struct mcpgw_store *st, const char *id, mcpgw_store_task_fn done,
                              void *arg)
{
    struct mem_tasks *m = table(st);
    json_object *rec = find(m, id, mcpgw_now_ms());
    struct mcpgw_store_task t = {0};
    uint64_t now = mcpgw_now_ms(), lease;
    if (!rec) {
        done(arg, MCPGW_STORE_GONE, NULL);
        return;
    }
    t.status = mcpgw_json_str(rec, "st");
    t.owner = mcpgw_json_str(rec, "own");
    t.rec = mcpgw_json_str(rec, "rec");
    lease = (uint64_t)json_object_get_int64(json_object_object_get(rec, "lease"));
    t.lease_ms = lease > now ? lease - now : 0;
    t.version = (uint64_t)json_object_get_int64(json_object_object_get(rec, "ver"));
    done(arg, MCPGW_STORE_OK, &t);
}

void mcpgw_store_task_mem_free(struct mcpgw_store *st)
{
    struct mem_tasks *m = st->tasks;
    if (!m)
        return;
    json_object_put(m->by_id);
    free(m);
    st->tasks = NULL;
}
