/* tasks.c - the tasks extension of the 2026-07-28 era (see tasks.h, docs/protocol-2026.md
 * "Tasks"). A task's record lives in the store (Redis, or this process with the memory store);
 * the node that created it runs the tool and holds a lease on the record, renewed while it runs,
 * so that another node that finds the lease run out knows the runner is gone. */
#include "node/tasks.h"

#include "common/httpd.h"
#include "common/ids.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/route.h"
#include "common/util.h"
#include "node/call.h"
#include "node/defer.h"
#include "node/listen.h"
#include "node/mrtr.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/proto.h"
#include "node/provider.h"
#include "node/session.h"
#include "node/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASK_TTL_MS 3600000 /* how long a task's record is kept, from its creation */
#define POLL_MS     500     /* the poll interval suggested to clients */
#define LEASE_MS    6000    /* a runner that has not renewed its lease for this long is gone */
#define RENEW_MS    2000    /* how often a runner renews the leases of the tasks it runs */
#define ID_MAX      128
#define MAX_RUNNING 10000     /* tasks one node runs at once: the next creation is refused */
#define NOTE_V      1         /* the status note's format (docs/protocol-2026.md) */
#define NOTE_MAX    (1 << 20) /* bytes of a status notification published to every node */
#define MAX_TRIES   5 /* reads of a record that changed under a request before it gives up */

/* A task this node runs: its record as last written, and the call running the tool. */
struct ltask {
    struct ltask *next;
    struct mcpgw_node *n;
    char id[ID_MAX];
    json_object *rec;
    struct mcpgw_call *call;
};

struct mcpgw_tasks {
    struct ltask *running;
    unsigned nrunning;
    struct event *renew;
};

/* ---- fixtures and which tools run as tasks ---- */

enum support { SUP_OPTIONAL, SUP_REQUIRED };

/* How a task of a tool is run: by its call function (RUN_CALL), or as a record that waits for
 * the client's input and then finishes (RUN_INPUTS: any node can carry it on). */
enum run { RUN_CALL, RUN_INPUTS };

struct task_tool {
    const char *name;
    enum support sup;
    enum run run;
    int idempotent; /* re-run when its runner died; otherwise it fails */
};

static const struct task_tool task_tools[] = {
    {"slow_compute", SUP_OPTIONAL, RUN_CALL, 0},
    {"failing_job", SUP_REQUIRED, RUN_CALL, 0},
    {"protocol_error_job", SUP_OPTIONAL, RUN_CALL, 0},
    {"confirm_delete", SUP_REQUIRED, RUN_INPUTS, 0},
    {"multi_input", SUP_REQUIRED, RUN_INPUTS, 0},
    {"test_tool_with_task", SUP_REQUIRED, RUN_CALL, 1},
    /* the built-in long-running tool: waiting again is harmless */
    {"sleep", SUP_OPTIONAL, RUN_CALL, 1},
};

static const struct task_tool *task_tool(const char *name)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(task_tools); i++)
        if (strcmp(task_tools[i].name, name) == 0)
            return &task_tools[i];
    return NULL;
}

static int listed(const struct mcpgw_opts_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return 1;
    return 0;
}

/* A tool the configuration runs as a task (--task-tools, --task-idempotent): filled into *buf,
 * which holds it while the caller uses it. */
static const struct task_tool *configured(struct mcpgw_node *n, const char *name,
                                          struct task_tool *buf)
{
    int idem = listed(&n->cfg.task_idempotent, name);
    if (!idem && !listed(&n->cfg.task_tools, name))
        return NULL;
    buf->name = name;
    buf->sup = SUP_OPTIONAL;
    buf->run = RUN_CALL;
    buf->idempotent = idem;
    return buf;
}

static double num_arg(json_object *args, const char *k, double dflt)
{
    json_object *v;
    if (!args || !json_object_object_get_ex(args, k, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return dflt;
    return json_object_get_double(v);
}

static const char *str_arg(json_object *args, const char *k, const char *dflt)
{
    const char *v = mcpgw_json_str(args, k);
    return v ? v : dflt;
}

static void greet(struct mcpgw_call *c, json_object *args)
{
    char text[200];
    snprintf(text, sizeof(text), "Hello, %.150s!", str_arg(args, "name", "World"));
    mcpgw_call_result(c, mcpgw_msg_tool_text(text, 0));
}

/* The text a delayed fixture answers with, kept in c->state until its step runs. */
static void slow_done(struct mcpgw_call *c)
{
    mcpgw_call_result(c, mcpgw_msg_tool_text(c->state ? c->state : "done", 0));
}

static void slow_compute(struct mcpgw_call *c, json_object *args)
{
    double s = num_arg(args, "seconds", 1);
    char text[200];
    if (s < 0 || s > 3600) {
        mcpgw_call_tool_error(c, "seconds must be between 0 and 3600");
        return;
    }
    snprintf(text, sizeof(text), "Computed '%.100s' in %g s", str_arg(args, "label", ""), s);
    c->state = xstrdup(text);
    mcpgw_call_after(c, (uint32_t)(s * 1000), slow_done);
}

static void failing_done(struct mcpgw_call *c)
{
    mcpgw_call_tool_error(c, "failing_job failed, as it always does");
}

static void failing_job(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_after(c, 1000, failing_done);
}

static void protocol_error_done(struct mcpgw_call *c)
{
    mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR,
                     "Internal error: protocol_error_job fails at the protocol level on purpose");
}

static void protocol_error_job(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_after(c, 200, protocol_error_done);
}

static void tool_with_task(struct mcpgw_call *c, json_object *args)
{
    char text[200];
    snprintf(text, sizeof(text), "Hello, %.150s: your task is done",
             str_arg(args, "user_name", "stranger"));
    c->state = xstrdup(text);
    mcpgw_call_after(c, 300, slow_done);
}

#define NO_ARGS "{\"type\":\"object\",\"properties\":{}}"

static const struct mcpgw_tool fixtures[] = {
    {"greet", NULL, "Says hello to name at once (a tool that never runs as a task).",
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}", NULL, greet},
    {"slow_compute", NULL,
     "Waits `seconds`, then answers; runs as a task for clients of the tasks extension.",
     "{\"type\":\"object\",\"properties\":{\"seconds\":{\"type\":\"number\",\"minimum\":0,"
     "\"maximum\":3600},\"label\":{\"type\":\"string\"}}}",
     NULL, slow_compute, 1},
    {"failing_job", NULL, "A task that ends with a tool error after about a second.", NO_ARGS, NULL,
     failing_job},
    {"protocol_error_job", NULL, "A task that ends with a protocol-level error.", NO_ARGS, NULL,
     protocol_error_job},
    {"confirm_delete", NULL, "A task that asks the client to confirm, then answers.",
     "{\"type\":\"object\",\"properties\":{\"filename\":{\"type\":\"string\"}}}", NULL, NULL, 1},
    {"multi_input", NULL, "A task that asks the client two questions at once.", NO_ARGS, NULL,
     NULL},
    {"test_tool_with_task", NULL,
     "Asks for the user's name (input_required), then runs as a task that greets them.", NO_ARGS,
     NULL, tool_with_task},
};

static const struct mcpgw_tool *fixture(const char *name)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(fixtures); i++)
        if (strcmp(fixtures[i].name, name) == 0)
            return &fixtures[i];
    return NULL;
}

static void list_tools(struct mcpgw_node *n, json_object *arr)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(fixtures); i++) {
        const struct task_tool *tt = task_tool(fixtures[i].name);
        json_object *t = json_object_new_object();
        json_object_object_add(t, "name", json_object_new_string(fixtures[i].name));
        json_object_object_add(t, "description", json_object_new_string(fixtures[i].description));
        json_object_object_add(t, "inputSchema", json_tokener_parse(fixtures[i].input_schema));
        if (tt) {
            json_object *ex = json_object_new_object();
            json_object_object_add(
                ex, "taskSupport",
                json_object_new_string(tt->sup == SUP_REQUIRED ? "required" : "optional"));
            json_object_object_add(t, "execution", ex);
        }
        json_object_array_add(arr, t);
    }
    mcpgw_mrtr_provider.list_tools(n, arr);
}

static const struct mcpgw_tool *find_tool(struct mcpgw_node *n, const char *name)
{
    const struct mcpgw_tool *t = fixture(name);
    return t ? t : mcpgw_mrtr_provider.tool(n, name);
}

/* The tool a task runs, wherever it comes from: the shared provider table (the built-ins, the
 * upstreams), then this era's fixtures. */
static const struct mcpgw_tool *task_runner(struct mcpgw_node *n, const char *name)
{
    const struct mcpgw_tool *t = NULL;
    for (unsigned i = 0; i < n->nproviders && !t; i++)
        t = n->providers[i]->tool ? n->providers[i]->tool(n, name) : NULL;
    return t ? t : find_tool(n, name);
}

static void list_prompts(struct mcpgw_node *n, json_object *arr)
{
    if (mcpgw_mrtr_provider.list_prompts)
        mcpgw_mrtr_provider.list_prompts(n, arr);
}

const struct mcpgw_provider_ops mcpgw_tasks_provider = {
    .name = "tasks",
    .list_tools = list_tools,
    .list_prompts = list_prompts,
    .tool = find_tool,
};

/* ---- records ---- */

int mcpgw_tasks_declared(json_object *caps)
{
    return mcpgw_json_obj(mcpgw_json_obj(caps, "extensions"), MCPGW_TASKS_EXT) != NULL;
}

size_t mcpgw_tasks_id_node(const char *id, char *out, size_t cap)
{
    size_t n = mcpgw_route_prefix_len(id, strlen(id));
    if (!n || n + 1 > cap)
        return 0;
    memcpy(out, id, n);
    out[n] = 0;
    return n;
}

static int terminal(const char *st)
{
    return strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
           strcmp(st, "cancelled") == 0;
}

static json_object *iso_time(uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40], out[48];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof(out), "%s.%03uZ", buf, (unsigned)(ms % 1000));
    return json_object_new_string(out);
}

/* The record's public part: the Task (the wire's DetailedTask fields). */
static json_object *task_of(json_object *rec)
{
    return mcpgw_json_obj(rec, "task");
}

/* Set the task's status (and statusMessage when msg is not NULL), and its lastUpdatedAt. */
static void set_status(json_object *rec, const char *st, const char *msg)
{
    json_object *t = task_of(rec);
    json_object_object_add(t, "status", json_object_new_string(st));
    if (msg)
        json_object_object_add(t, "statusMessage", json_object_new_string(msg));
    json_object_object_add(t, "lastUpdatedAt", iso_time(mcpgw_wall_ms()));
}

/* A new record: {"v":1,"task":{...},"tool","args","pr","idem"} (docs/protocol-2026.md). */
static json_object *rec_new(const char *id, const struct task_tool *tt, json_object *args,
                            const char *principal)
{
    json_object *rec = json_object_new_object(), *t = json_object_new_object();
    uint64_t now = mcpgw_wall_ms();
    json_object_object_add(t, "taskId", json_object_new_string(id));
    json_object_object_add(t, "status", json_object_new_string("working"));
    json_object_object_add(t, "createdAt", iso_time(now));
    json_object_object_add(t, "lastUpdatedAt", iso_time(now));
    json_object_object_add(t, "ttlMs", json_object_new_int64(TASK_TTL_MS));
    json_object_object_add(t, "pollIntervalMs", json_object_new_int64(POLL_MS));
    json_object_object_add(rec, "v", json_object_new_int(1));
    json_object_object_add(rec, "task", t);
    json_object_object_add(rec, "tool", json_object_new_string(tt->name));
    json_object_object_add(rec, "args", args ? json_object_get(args) : json_object_new_object());
    json_object_object_add(rec, "pr", json_object_new_string(principal));
    json_object_object_add(rec, "idem", json_object_new_boolean(tt->idempotent));
    return rec;
}

static json_object *detailed(json_object *rec);

/* The note a write publishes when it changes the task's status (docs/protocol-2026.md, "Status
 * notifications"): {"v": NOTE_V, "id", "pr", "task": the DetailedTask as tasks/get answers it};
 * NULL (no notification: clients poll) when larger than NOTE_MAX, which Redis would push to every
 * node. */
static char *note_of(json_object *rec)
{
    json_object *o = json_object_new_object();
    const char *pr = mcpgw_json_str(rec, "pr"), *json;
    char *text = NULL;
    json_object_object_add(o, "v", json_object_new_int(NOTE_V));
    json_object_object_add(o, "id", json_object_new_string(mcpgw_json_str(task_of(rec), "taskId")));
    json_object_object_add(o, "pr", json_object_new_string(pr ? pr : ""));
    json_object_object_add(o, "task", detailed(rec));
    json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (strlen(json) <= NOTE_MAX)
        text = xstrdup(json);
    else
        log_info("task %s: its status notification (%zu bytes) is not sent: over %d bytes",
                 mcpgw_json_str(task_of(rec), "taskId"), strlen(json), NOTE_MAX);
    json_object_put(o);
    return text;
}

/* Write rec (its status with it) as owner with a fresh lease (LEASE_MS by the store's clock).
 * version: the record's version it was read at, which it must still have (0: any). */
static void put(struct mcpgw_node *n, json_object *rec, const char *expect_owner, uint64_t ttl,
                uint64_t version, mcpgw_store_done_fn done, void *arg)
{
    const char *id = mcpgw_json_str(task_of(rec), "taskId");
    char *note = ttl ? NULL : note_of(rec); /* a creation changes no status */
    struct mcpgw_store_task t = {mcpgw_json_str(task_of(rec), "status"),
                                 n->cfg.node_id,
                                 json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN),
                                 LEASE_MS,
                                 version,
                                 note};
    mcpgw_store_task_put(n->store, id, &t, expect_owner, ttl, done, arg);
    free(note);
}

/* ---- answers ---- */

static struct mcpgw_defer *defer_of(const struct mcpgw_tasks_req *q)
{
    struct mcpgw_defer *d = mcpgw_defer_new(q->n, q->conn, NULL, q->id);
    d->era26 = 1;
    d->era26_ttl_ms = -1;
    return d;
}

static void ack(struct mcpgw_defer *d)
{
    mcpgw_defer_result(d, json_object_new_object()); /* {resultType: "complete"} */
}

static void unknown_task(struct mcpgw_defer *d, const char *id)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "Invalid params: unknown task '%.120s'", id);
    mcpgw_defer_error(d, MCPGW_JSONRPC_INVALID_PARAMS, msg);
}

static void store_failed(struct mcpgw_defer *d, int err)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "Internal error: the task store failed (%s)",
             mcpgw_store_err_str(err));
    mcpgw_defer_error(d, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
}

/* The Task of rec as tasks/get answers it (a copy). */
static json_object *detailed(json_object *rec)
{
    json_object *out = NULL;
    json_object_deep_copy(task_of(rec), &out, NULL);
    return out;
}

/* -32021 for a tool that needs the extension, with the capability it needs. */
static void missing_ext(const struct mcpgw_tasks_req *q, const char *what)
{
    size_t len;
    char *json = mcpgw_msg_missing_extension(q->id, MCPGW_TASKS_EXT, what, &len);
    (*q->n->st.errors)++;
    mcpgw_http_respond(q->conn, 400, "application/json", NULL, json, len);
    free(json);
}

/* ---- running a task's tool ---- */

static struct mcpgw_tasks *set_of(struct mcpgw_node *n);

static struct ltask *local(struct mcpgw_node *n, const char *id)
{
    for (struct ltask *lt = n->tasks ? n->tasks->running : NULL; lt; lt = lt->next)
        if (strcmp(lt->id, id) == 0)
            return lt;
    return NULL;
}

static void lt_unlink_free(struct ltask *lt)
{
    struct mcpgw_tasks *ts = lt->n->tasks;
    for (struct ltask **pp = ts ? &ts->running : NULL; pp && *pp; pp = &(*pp)->next)
        if (*pp == lt) {
            *pp = lt->next;
            ts->nrunning--;
            break;
        }
    json_object_put(lt->rec);
    free(lt);
}

static void logged(void *arg, int err)
{
    if (err && err != MCPGW_STORE_STALE)
        log_warn("task %s: the store refused its final state: %s", (char *)arg,
                 mcpgw_store_err_str(err));
    free(arg);
}

/* The call's whole response: the task's final state, written unless the task was cancelled or
 * taken over meanwhile (the store refuses it then). */
static void on_sink(struct mcpgw_call *c, const char *json, size_t len)
{
    struct ltask *lt = c->ext;
    json_object *msg = json_tokener_parse(json), *v;
    json_object *t = task_of(lt->rec);
    if (msg && json_object_object_get_ex(msg, "result", &v)) {
        json_object_object_add(t, "result", json_object_get(v));
        set_status(lt->rec, "completed", NULL);
    } else {
        if (!msg || !json_object_object_get_ex(msg, "error", &v))
            v = json_tokener_parse("{\"code\":-32603,\"message\":\"Internal error\"}");
        else
            json_object_get(v);
        json_object_object_add(t, "error", v);
        set_status(lt->rec, "failed", NULL);
    }
    json_object_put(msg);
    put(lt->n, lt->rec, lt->n->cfg.node_id, 0, 0, logged, xstrdup(lt->id));
}

/* The call is freed (answered, cancelled, timed out, the node stopping): so is the local task.
 * (Its one-call session is freed by the call machinery, mcpgw_call_abort included.) */
static void on_call_free(struct mcpgw_call *c)
{
    lt_unlink_free(c->ext);
}

/* Start running rec's tool on this node (the record is written already). Takes rec. */
static void run(struct mcpgw_node *n, json_object *rec)
{
    const struct mcpgw_tool *tool = task_runner(n, mcpgw_json_str(rec, "tool"));
    struct mcpgw_tasks *ts = set_of(n);
    struct ltask *lt = xcalloc(1, sizeof(*lt));
    struct mcpgw_session *s = xcalloc(1, sizeof(*s));
    json_object *id, *args = mcpgw_json_obj(rec, "args");
    const char *pr;
    struct mcpgw_call *c;
    if (!tool || !tool->call) {
        json_object_put(rec);
        free(lt);
        free(s);
        return;
    }
    lt->n = n;
    lt->rec = rec;
    snprintf(lt->id, sizeof(lt->id), "%s", mcpgw_json_str(task_of(rec), "taskId"));
    lt->next = ts->running;
    ts->running = lt;
    ts->nrunning++;
    s->stateless = 1;
    s->state = MCPGW_SESSION_READY;
    s->proto = MCPGW_PROTO_2025_11_25;
    s->log_level = 8; /* nobody listens to its log */
    if ((pr = mcpgw_json_str(rec, "pr")) && *pr)
        s->principal = xstrdup(pr); /* whose task the tool runs for */
    id = json_object_new_string(lt->id);
    c = mcpgw_call_new(n, s, id, NULL, NULL);
    json_object_put(id);
    lt->call = c;
    c->ext = lt;
    c->relay = on_sink;
    c->on_free = on_call_free;
    c->tool = tool;
    mcpgw_call_set_deadline(c, n->cfg.tool_timeout_ms);
    tool->call(c, args); /* may finish (and free lt) before it returns */
}

/* A lease renewal came back: refused means the task is no longer this node's to run
 * (cancelled, taken over, or expired). */
struct renewal {
    struct mcpgw_node *n;
    char id[ID_MAX];
};

static void on_renewed(void *arg, int err)
{
    struct renewal *rn = arg;
    struct ltask *lt = rn->n->tasks ? local(rn->n, rn->id) : NULL;
    if (err == MCPGW_STORE_STALE && lt && lt->call) {
        log_info("task %s: no longer this node's to run; stopping it", rn->id);
        mcpgw_call_abort(lt->call);
    }
    free(rn);
}

static void on_renew(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    struct mcpgw_store_task t = {NULL, n->cfg.node_id, NULL, LEASE_MS, 0, NULL};
    for (struct ltask *lt = n->tasks->running; lt; lt = lt->next) {
        struct renewal *rn = xcalloc(1, sizeof(*rn));
        rn->n = n;
        snprintf(rn->id, sizeof(rn->id), "%s", lt->id);
        mcpgw_store_task_put(n->store, lt->id, &t, n->cfg.node_id, 0, on_renewed, rn);
    }
}

static struct mcpgw_tasks *set_of(struct mcpgw_node *n)
{
    if (!n->tasks) {
        struct timeval tv = {RENEW_MS / 1000, (RENEW_MS % 1000) * 1000};
        n->tasks = xcalloc(1, sizeof(*n->tasks));
        n->tasks->renew = event_new(n->base, -1, EV_PERSIST, on_renew, n);
        event_add(n->tasks->renew, &tv);
    }
    return n->tasks;
}

/* A task changed status on some node (a note of put): to this node's listen streams that
 * follow it for its principal. */
static void on_note(void *arg, const char *msg, size_t len)
{
    struct mcpgw_node *n = arg;
    struct json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, msg, (int)len);
    const char *id = mcpgw_json_str(o, "id"), *pr = mcpgw_json_str(o, "pr");
    json_object *task = mcpgw_json_obj(o, "task"), *v = NULL;
    json_tokener_free(tok);
    json_object_object_get_ex(o, "v", &v);
    if (json_object_get_int(v) != NOTE_V)
        log_warn("tasks: a status note of another version (%d); dropped", json_object_get_int(v));
    else if (id && pr && task)
        mcpgw_listen_task(n, id, pr, task);
    else
        log_warn("tasks: a status note that is not one (%zu bytes); dropped", len);
    json_object_put(o);
}

void mcpgw_tasks_start(struct mcpgw_node *n)
{
    mcpgw_store_set_task_handler(n->store, on_note, n);
}

void mcpgw_tasks_stop(struct mcpgw_node *n)
{
    struct mcpgw_tasks *ts = n->tasks;
    /* (The store, and its note handler, are freed before this runs: nothing to undo there.) */
    if (!ts)
        return;
    while (ts->running) {
        struct ltask *lt = ts->running;
        if (lt->call)
            mcpgw_call_abort(lt->call); /* frees lt through on_call_free */
        else
            lt_unlink_free(lt);
    }
    event_free(ts->renew);
    free(ts);
    n->tasks = NULL;
}

/* ---- tasks that wait for the client's input (RUN_INPUTS) ---- */

static json_object *elicit(const char *message, const char *field, const char *type)
{
    char schema[256];
    json_object *p;
    snprintf(
        schema, sizeof(schema),
        "{\"type\":\"object\",\"properties\":{\"%s\":{\"type\":\"%s\"}},\"required\":[\"%s\"]}",
        field, type, field);
    p = mcpgw_msg_elicitation_params(message, schema);
    json_object_object_add(p, "mode", json_object_new_string("form"));
    return mcpgw_msg_input_request(MCPGW_MSG_ELICITATION_CREATE, p);
}

/* The questions a RUN_INPUTS task starts with. */
static json_object *first_inputs(const char *tool, json_object *args)
{
    json_object *in = json_object_new_object();
    if (strcmp(tool, "confirm_delete") == 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Delete %.150s?", str_arg(args, "filename", "the file"));
        json_object_object_add(in, "confirm", elicit(msg, "confirm", "boolean"));
    } else {
        json_object_object_add(in, "first", elicit("First question: your name?", "name", "string"));
        json_object_object_add(in, "second",
                               elicit("Second question: confirm?", "confirm", "boolean"));
    }
    return in;
}

/* What a RUN_INPUTS task answers once every question has its answer. */
static json_object *inputs_result(const char *tool, json_object *args, json_object *answers)
{
    char text[400];
    if (strcmp(tool, "confirm_delete") == 0) {
        json_object *a = mcpgw_json_obj(answers, "confirm");
        const char *action = mcpgw_json_str(a, "action");
        json_object *ok = NULL;
        json_object_object_get_ex(mcpgw_json_obj(a, "content"), "confirm", &ok);
        snprintf(text, sizeof(text), "%s %.150s",
                 action && strcmp(action, "accept") == 0 && json_object_get_boolean(ok) ? "Deleted"
                                                                                        : "Kept",
                 str_arg(args, "filename", "the file"));
    } else {
        snprintf(
            text, sizeof(text), "Answers: %.150s, %.150s",
            str_arg(mcpgw_json_obj(mcpgw_json_obj(answers, "first"), "content"), "name", "?"),
            str_arg(mcpgw_json_obj(mcpgw_json_obj(answers, "second"), "content"), "name", "?"));
    }
    return mcpgw_msg_tool_text(text, 0);
}

/* ---- creation ---- */

struct creation {
    struct mcpgw_defer *d;
    struct mcpgw_node *n;
    json_object *rec;
    int start; /* run the tool once the record is written */
};

static void on_created(void *arg, int err)
{
    struct creation *cr = arg;
    json_object *res;
    if (err) {
        store_failed(cr->d, err);
        json_object_put(cr->rec);
        free(cr);
        return;
    }
    /* CreateTaskResult: the Task's fields at the top level, no result, error or inputs. */
    res = detailed(cr->rec);
    json_object_object_del(res, "inputRequests");
    json_object_object_add(res, "resultType", json_object_new_string("task"));
    mcpgw_defer_result(cr->d, res);
    if (cr->start)
        run(cr->n, cr->rec); /* takes rec */
    else
        json_object_put(cr->rec);
    free(cr);
}

/* Record a new task of tt with args, then answer with it and start it. */
static void create(const struct mcpgw_tasks_req *q, const struct task_tool *tt, json_object *args)
{
    struct creation *cr;
    char id[ID_MAX];
    if (tt->run == RUN_CALL && q->n->tasks && q->n->tasks->nrunning >= MAX_RUNNING) {
        mcpgw_defer_error(defer_of(q), MCPGW_JSONRPC_INTERNAL_ERROR,
                          "Internal error: this node runs too many tasks; try again later");
        return;
    }
    cr = xcalloc(1, sizeof(*cr));
    if (mcpgw_id_new(q->n->cfg.node_id, id, sizeof(id)) < 0) {
        mcpgw_defer_error(defer_of(q), MCPGW_JSONRPC_INTERNAL_ERROR,
                          "Internal error: no task id (RAND_bytes failed)");
        free(cr);
        return;
    }
    cr->d = defer_of(q);
    cr->n = q->n;
    cr->rec = rec_new(id, tt, args, q->principal);
    if (tt->run == RUN_INPUTS) {
        json_object_object_add(task_of(cr->rec), "inputRequests", first_inputs(tt->name, args));
        set_status(cr->rec, "input_required", NULL);
        json_object_object_add(cr->rec, "answers", json_object_new_object());
    }
    cr->start = tt->run == RUN_CALL;
    put(q->n, cr->rec, NULL, TASK_TTL_MS, 0, on_created, cr);
}

/* test_tool_with_task: an MRTR round for the user's name, then a task that greets them. */
static void with_task(const struct mcpgw_tasks_req *q, const struct task_tool *tt)
{
    json_object *resp = mcpgw_json_obj(q->params, "inputResponses");
    const char *name =
        str_arg(mcpgw_json_obj(mcpgw_json_obj(resp, "user_name"), "content"), "name", NULL);
    json_object *in, *args;
    if (!name) {
        in = json_object_new_object();
        json_object_object_add(in, "user_name", elicit("What is your name?", "name", "string"));
        mcpgw_defer_result(defer_of(q), mcpgw_msg_input_required(in, NULL));
        return;
    }
    args = json_object_new_object();
    json_object_object_add(args, "user_name", json_object_new_string(name));
    create(q, tt, args);
    json_object_put(args);
}

int mcpgw_tasks_call(const struct mcpgw_tasks_req *q, const struct mcpgw_tool *t, json_object *args)
{
    const struct task_tool *tt = task_tool(t->name);
    struct task_tool buf;
    if (tt && t != fixture(t->name) && strcmp(t->name, "sleep") != 0)
        tt = NULL; /* another provider's tool of the same name */
    /* only a tool with a call function can run without its client */
    if (!tt && (!t->call || !(tt = configured(q->n, t->name, &buf))))
        return 0;
    if (!mcpgw_tasks_declared(q->caps)) {
        if (tt->sup == SUP_OPTIONAL)
            return 0;
        missing_ext(q, t->name);
        return 1;
    }
    if (strcmp(t->name, "test_tool_with_task") == 0)
        with_task(q, tt);
    else
        create(q, tt, args);
    return 1;
}

/* ---- tasks/get, tasks/update, tasks/cancel ---- */

enum op { OP_GET, OP_UPDATE, OP_CANCEL };

struct lookup {
    struct mcpgw_defer *d;
    struct mcpgw_node *n;
    enum op op;
    char id[ID_MAX];
    char *principal;
    json_object *responses; /* tasks/update's inputResponses */
    json_object *rec;       /* the record being written */
    char prev_owner[64];
    uint64_t version; /* the record's version as read */
    int tries;
};

static void lookup_free(struct lookup *lk)
{
    free(lk->principal);
    json_object_put(lk->responses);
    json_object_put(lk->rec);
    free(lk);
}

static void on_found(void *arg, int err, const struct mcpgw_store_task *t);

static void again(struct lookup *lk)
{
    json_object_put(lk->rec);
    lk->rec = NULL;
    if (++lk->tries > MAX_TRIES) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "Internal error: task %.120s changed under this request %d times in a row; send "
                 "it again",
                 lk->id, MAX_TRIES);
        mcpgw_defer_error(lk->d, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
        lookup_free(lk);
        return;
    }
    mcpgw_store_task_get(lk->n->store, lk->id, on_found, lk);
}

/* The orphan's new state is written: answer with it (and run it here when taken over). */
static void on_orphan_written(void *arg, int err)
{
    struct lookup *lk = arg;
    if (err == MCPGW_STORE_STALE) {
        again(lk); /* another node decided first: answer with what it wrote */
        return;
    }
    if (err) {
        store_failed(lk->d, err);
        lookup_free(lk);
        return;
    }
    mcpgw_defer_result(lk->d, detailed(lk->rec));
    if (strcmp(mcpgw_json_str(task_of(lk->rec), "status"), "working") == 0) {
        log_info("task %s: re-run here, its node %s stopped while running it", lk->id,
                 lk->prev_owner);
        run(lk->n, lk->rec); /* takes rec */
        lk->rec = NULL;
    }
    lookup_free(lk);
}

/* A working task whose runner is gone: run it again here if its tool is idempotent (and known
 * here), else it has failed. Either way the write names the runner it replaces, so one node
 * decides. */
static void orphaned(struct lookup *lk)
{
    const char *tool = mcpgw_json_str(lk->rec, "tool");
    json_object *idem = NULL;
    const struct mcpgw_tool *t = tool ? task_runner(lk->n, tool) : NULL;
    char msg[300];
    json_object_object_get_ex(lk->rec, "idem", &idem);
    if (t && t->call && json_object_get_boolean(idem)) {
        snprintf(msg, sizeof(msg), "restarted on node %s: node %s stopped while running it",
                 lk->n->cfg.node_id, lk->prev_owner);
        set_status(lk->rec, "working", msg);
    } else {
        json_object *e = json_object_new_object();
        snprintf(msg, sizeof(msg),
                 "Internal error: node %s stopped while running this task, which did not finish "
                 "and is not run again (%s is not marked idempotent)",
                 lk->prev_owner, tool ? tool : "its tool");
        json_object_object_add(e, "code", json_object_new_int(MCPGW_JSONRPC_INTERNAL_ERROR));
        json_object_object_add(e, "message", json_object_new_string(msg));
        json_object_object_add(task_of(lk->rec), "error", e);
        set_status(lk->rec, "failed", "its node stopped before it finished");
    }
    put(lk->n, lk->rec, lk->prev_owner, 0, 0, on_orphan_written, lk);
}

static void on_written_ack(void *arg, int err)
{
    struct lookup *lk = arg;
    if (err == MCPGW_STORE_STALE) {
        /* Written since it was read (another update, a cancel, the runner): read it again and
         * redo the change on what is there now, so no answer is lost; a task terminal by then
         * is acked as it is. */
        again(lk);
        return;
    }
    if (err)
        store_failed(lk->d, err);
    else
        ack(lk->d);
    lookup_free(lk);
}

/* tasks/update: answers for the questions still open are kept, the others ignored; once none is
 * open the task completes. */
static void update(struct lookup *lk)
{
    json_object *t = task_of(lk->rec), *open = mcpgw_json_obj(t, "inputRequests");
    json_object *answers = mcpgw_json_obj(lk->rec, "answers");
    int changed = 0;
    if (strcmp(mcpgw_json_str(t, "status"), "input_required") != 0 || !open || !answers ||
        !lk->responses) {
        ack(lk->d);
        lookup_free(lk);
        return;
    }
    json_object_object_foreach(lk->responses, key, val)
    {
        if (!json_object_object_get_ex(open, key, NULL))
            continue;
        json_object_object_add(answers, key, json_object_get(val));
        json_object_object_del(open, key);
        changed = 1;
    }
    if (!changed) {
        ack(lk->d);
        lookup_free(lk);
        return;
    }
    if (json_object_object_length(open) == 0) {
        json_object_object_add(t, "result",
                               inputs_result(mcpgw_json_str(lk->rec, "tool"),
                                             mcpgw_json_obj(lk->rec, "args"), answers));
        json_object_object_del(t, "inputRequests");
        set_status(lk->rec, "completed", NULL);
    } else {
        set_status(lk->rec, "input_required", NULL);
    }
    put(lk->n, lk->rec, NULL, 0, lk->version, on_written_ack, lk);
}

static void cancel(struct lookup *lk)
{
    struct ltask *lt = local(lk->n, lk->id);
    if (terminal(mcpgw_json_str(task_of(lk->rec), "status"))) {
        ack(lk->d);
        lookup_free(lk);
        return;
    }
    if (lt && lt->call)
        mcpgw_call_abort(lt->call); /* cooperative elsewhere: the runner's renewal is refused */
    json_object_object_del(task_of(lk->rec), "inputRequests");
    set_status(lk->rec, "cancelled", "cancelled by the client");
    put(lk->n, lk->rec, NULL, 0, lk->version, on_written_ack, lk);
}

static void on_found(void *arg, int err, const struct mcpgw_store_task *t)
{
    struct lookup *lk = arg;
    const char *pr;
    if (err == MCPGW_STORE_GONE || (!err && !(lk->rec = json_tokener_parse(t->rec)))) {
        unknown_task(lk->d, lk->id);
        lookup_free(lk);
        return;
    }
    if (err) {
        store_failed(lk->d, err);
        lookup_free(lk);
        return;
    }
    /* Another principal's task is as unknown as one that never existed. */
    pr = mcpgw_json_str(lk->rec, "pr");
    if (!task_of(lk->rec) || !pr || strcmp(pr, lk->principal) != 0) {
        unknown_task(lk->d, lk->id);
        lookup_free(lk);
        return;
    }
    lk->version = t->version;
    /* Its runner is gone: the lease ran out (by the store's clock, so no node's clock skew
     * matters), or it names this node, which does not run it. */
    if (strcmp(t->status, "working") == 0 && lk->op != OP_CANCEL &&
        (strcmp(t->owner, lk->n->cfg.node_id) == 0 ? !local(lk->n, lk->id) : t->lease_ms == 0)) {
        snprintf(lk->prev_owner, sizeof(lk->prev_owner), "%s", t->owner);
        orphaned(lk);
        return;
    }
    if (lk->op == OP_UPDATE) {
        update(lk);
    } else if (lk->op == OP_CANCEL) {
        cancel(lk);
    } else {
        mcpgw_defer_result(lk->d, detailed(lk->rec));
        lookup_free(lk);
    }
}

int mcpgw_tasks_is_method(const char *method)
{
    return strcmp(method, "tasks/get") == 0 || strcmp(method, "tasks/update") == 0 ||
           strcmp(method, "tasks/cancel") == 0;
}

void mcpgw_tasks_method(const struct mcpgw_tasks_req *q, const char *method, const char *id)
{
    struct lookup *lk = xcalloc(1, sizeof(*lk));
    json_object *resp = NULL;
    lk->n = q->n;
    lk->op = strcmp(method, "tasks/get") == 0      ? OP_GET
             : strcmp(method, "tasks/update") == 0 ? OP_UPDATE
                                                   : OP_CANCEL;
    lk->principal = xstrdup(q->principal);
    if (lk->op == OP_UPDATE && json_object_object_get_ex(q->params, "inputResponses", &resp) &&
        json_object_is_type(resp, json_type_object))
        lk->responses = json_object_get(resp);
    snprintf(lk->id, sizeof(lk->id), "%s", id);
    lk->d = defer_of(q);
    if (strlen(id) >= ID_MAX) {
        unknown_task(lk->d, id);
        lk->d = NULL;
        lookup_free(lk);
        return;
    }
    mcpgw_store_task_get(q->n->store, lk->id, on_found, lk);
}
