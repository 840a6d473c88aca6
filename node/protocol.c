/* protocol.c - MCP method dispatch (session era). */
#include "node/protocol.h"

#include "common/httpd.h"
#include "common/ids.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/builtin.h"
#include "node/call.h"
#include "node/msg.h"
#include "node/notes.h"
#include "node/proto.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void respond_json(struct mcpgw_http_conn *conn, struct mcpgw_session *s, int status,
                         char *json, size_t len)
{
    char hdr[128];
    if (s)
        snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", s->id);
    mcpgw_http_respond(conn, status, "application/json", s ? hdr : NULL, json, len);
    free(json);
}

void mcpgw_respond_result(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                          struct mcpgw_session *s, json_object *id, json_object *result)
{
    size_t len;
    char *json = mcpgw_msg_result(id, result, &len);
    respond_json(conn, s, 200, json, len);
}

void mcpgw_respond_error(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                         struct mcpgw_session *s, int http_status, json_object *id, int code,
                         const char *message)
{
    size_t len;
    char *json = mcpgw_msg_error(id, code, message, &len);
    (*n->st.errors)++;
    respond_json(conn, s, http_status, json, len);
}

/* ---- initialize ---- */

static void on_created(void *arg, int err);

struct mcpgw_session *mcpgw_protocol_initialize(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                                const struct mcpgw_jsonrpc_msg *m)
{
    const char *pv = mcpgw_json_str(m->params, "protocolVersion");
    json_object *caps = mcpgw_json_obj(m->params, "capabilities"), *info, *client;
    struct mcpgw_session *s;
    struct mcpgw_registry_stats rs;
    int proto;

    if (!pv) {
        mcpgw_respond_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                            "Invalid params: params.protocolVersion is required (a string)");
        return NULL;
    }
    if (!caps) {
        mcpgw_respond_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                            "Invalid params: params.capabilities is required (an object)");
        return NULL;
    }
    info = mcpgw_json_obj(m->params, "clientInfo");
    if (!info || !mcpgw_json_str(info, "name")) {
        mcpgw_respond_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                            "Invalid params: params.clientInfo.name is required (a string)");
        return NULL;
    }
    mcpgw_registry_stats(n->reg, &rs);
    if (rs.sessions >= n->cfg.max_sessions) {
        log_warn("refusing initialize: %llu sessions is the configured maximum",
                 (unsigned long long)n->cfg.max_sessions);
        mcpgw_respond_error(n, conn, NULL, 503, m->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                            "this node is at its session limit; retry shortly");
        return NULL;
    }
    proto = mcpgw_proto_parse(pv, strlen(pv));
    if (proto < 0)
        proto = MCPGW_PROTO_2025_11_25; /* offer the latest we support */

    s = xcalloc(1, sizeof(*s));
    if (mcpgw_id_new(n->cfg.node_id, s->id, sizeof(s->id)) < 0) {
        free(s);
        mcpgw_respond_error(n, conn, NULL, 500, m->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                            "cannot generate a session id (RAND_bytes failed)");
        return NULL;
    }
    s->proto = (uint8_t)proto;
    s->log_level = -1;
    s->state = MCPGW_SESSION_INITIALIZING;
    if (mcpgw_json_obj(caps, "sampling"))
        s->client_caps |= MCPGW_CAP_SAMPLING;
    if (mcpgw_json_obj(caps, "elicitation"))
        s->client_caps |= MCPGW_CAP_ELICITATION;
    if (mcpgw_json_obj(caps, "roots"))
        s->client_caps |= MCPGW_CAP_ROOTS;
    client = json_object_new_object();
    json_object_object_add(client, "clientInfo", json_object_get(info));
    json_object_object_add(client, "capabilities", json_object_get(caps));
    s->client = mcpgw_json_dump(client, NULL);
    json_object_put(client);
    if (n->draining) {
        mcpgw_session_free(s);
        mcpgw_respond_error(n, conn, NULL, 503, m->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                            "this node is draining; initialize again to reach another node");
        return NULL;
    }
    mcpgw_registry_insert(n->reg, s);
    mcpgw_registry_touch(n->reg, s, mcpgw_now_ms());
    {
        struct mcpgw_defer *d = mcpgw_defer_new(n, conn, s, m->id);
        /* Answer only once the record is durable: an acknowledged session survives this node. */
        mcpgw_store_create(n->store, s, on_created, d);
    }
    return s;
}

static void on_created(void *arg, int err)
{
    struct mcpgw_defer *d = arg;
    struct mcpgw_node *n = d->n;
    struct mcpgw_session *s = mcpgw_defer_session(d);
    struct mcpgw_http_conn *conn = mcpgw_defer_conn(d);
    json_object *result;
    if (!s) {
        mcpgw_defer_free(d);
        return;
    }
    if (err || !conn) {
        if (err)
            log_warn("initialize refused: %s", mcpgw_store_err_str(err));
        if (conn)
            mcpgw_respond_error(n, conn, NULL, 503, d->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                                "Service Unavailable: the session store is unavailable; retry "
                                "shortly");
        else if (!err)
            mcpgw_store_delete(n->store, s); /* nobody will ever know this id */
        mcpgw_node_session_drop(n, s);
        mcpgw_defer_free(d);
        return;
    }
    (*n->st.sessions_created)++;
    result = mcpgw_msg_initialize_result((enum mcpgw_proto)s->proto);
    mcpgw_respond_result(n, conn, s, d->id, result);
    mcpgw_defer_free(d);
}

/* ---- helpers ---- */

/* Slice arr into one page: result[key] = page, plus nextCursor. Takes arr. Returns 0, or -1 on
 * a bad cursor (arr freed). */
static int paginate(struct mcpgw_node *n, json_object *arr, const char *key, json_object *params,
                    json_object **result)
{
    const char *cursor = mcpgw_json_str(params, "cursor");
    size_t total = json_object_array_length(arr), off = 0, end;
    json_object *page;
    if (params && json_object_object_get_ex(params, "cursor", NULL) && !cursor &&
        !json_object_is_type(json_object_object_get(params, "cursor"), json_type_null)) {
        json_object_put(arr);
        return -1;
    }
    if (cursor) {
        char *e;
        unsigned long v;
        if (cursor[0] != 'o' || cursor[1] < '0' || cursor[1] > '9')
            goto bad;
        v = strtoul(cursor + 1, &e, 10);
        if (*e || v > total)
            goto bad;
        off = v;
    }
    end = off + n->cfg.page_size < total ? off + n->cfg.page_size : total;
    page = json_object_new_array_ext((int)(end - off));
    for (size_t i = off; i < end; i++)
        json_object_array_add(page, json_object_get(json_object_array_get_idx(arr, i)));
    json_object_put(arr);
    *result = json_object_new_object();
    json_object_object_add(*result, key, page);
    if (end < total) {
        char next[32];
        snprintf(next, sizeof(next), "o%zu", end);
        json_object_object_add(*result, "nextCursor", json_object_new_string(next));
    }
    return 0;
bad:
    json_object_put(arr);
    return -1;
}

static void list(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                 const struct mcpgw_jsonrpc_msg *m, json_object *arr, const char *key)
{
    json_object *result;
    if (paginate(n, arr, key, m->params, &result) < 0) {
        mcpgw_respond_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                            "Invalid params: params.cursor is not a cursor this server issued");
        return;
    }
    mcpgw_respond_result(n, conn, s, m->id, result);
}

static void bad_params(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                       const struct mcpgw_jsonrpc_msg *m, const char *msg)
{
    mcpgw_respond_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS, msg);
}

/* params must be an object when present. */
static int params_ok(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                     const struct mcpgw_jsonrpc_msg *m)
{
    if (m->params && !json_object_is_type(m->params, json_type_object)) {
        bad_params(n, conn, s, m, "Invalid params: params must be an object");
        return 0;
    }
    return 1;
}

static const char *required_str(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m,
                                const char *key)
{
    const char *v = mcpgw_json_str(m->params, key);
    if (!v) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Invalid params: params.%s is required (a string)", key);
        bad_params(n, conn, s, m, msg);
    }
    return v;
}

/* ---- store writes answered afterwards ---- */

/* Answer {} (or, for a notification, 202) once the store has the change; a refused write
 * (the session moved, or Redis is away) gets an error that says so. */
static void on_written(void *arg, int err)
{
    struct mcpgw_defer *d = arg;
    struct mcpgw_node *n = d->n;
    struct mcpgw_session *s = mcpgw_defer_session(d);
    struct mcpgw_http_conn *conn = mcpgw_defer_conn(d);
    if (err) {
        (*n->st.store_errors)++;
        if (err == MCPGW_STORE_STALE || err == MCPGW_STORE_GONE) {
            if (s) {
                log_info("session %s: %s; dropping the local copy", s->id,
                         mcpgw_store_err_str(err));
                mcpgw_node_session_drop(n, s);
                s = NULL;
            }
        }
    }
    if (conn) {
        if (!d->id)
            mcpgw_http_respond(conn, err ? 503 : 202, NULL, NULL, NULL, 0);
        else if (err == MCPGW_STORE_GONE)
            mcpgw_respond_error(n, conn, NULL, 404, d->id, -32001,
                                "Session not found: initialize a new session");
        else if (err) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Internal error: %s; retry the request",
                     mcpgw_store_err_str(err));
            mcpgw_respond_error(n, conn, s, 200, d->id, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
        } else
            mcpgw_respond_result(n, conn, s, d->id, json_object_new_object());
    }
    mcpgw_defer_free(d);
}

/* ---- methods ---- */

struct pending_call {
    struct mcpgw_call *c;
    const struct mcpgw_tool *t;
    json_object *args;
};

static void on_recorded_result(void *arg, int err, const char *json)
{
    struct pending_call *pc = arg;
    struct mcpgw_call *c = pc->c;
    c->busy--;
    if (c->aborted)
        mcpgw_call_abort(c);
    else if (json) {
        (*c->node->st.retries_answered)++;
        mcpgw_call_answer_raw(c, json);
    } else if (err)
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR,
                         "Internal error: the session store is unavailable; not executed");
    else
        pc->t->call(c, pc->args);
    json_object_put(pc->args);
    free(pc);
}

static void m_tools_call(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                         struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    const char *name = required_str(n, conn, s, m, "name");
    const struct mcpgw_tool *t;
    json_object *args = NULL;
    struct mcpgw_call *c;
    int own_args = 0;
    if (!name)
        return;
    if (!(t = mcpgw_builtin_tool(name))) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Invalid params: unknown tool '%.100s'", name);
        bad_params(n, conn, s, m, msg);
        return;
    }
    if (json_object_object_get_ex(m->params, "arguments", &args) && args &&
        !json_object_is_type(args, json_type_object)) {
        bad_params(n, conn, s, m, "Invalid params: params.arguments must be an object");
        return;
    }
    if (!args) {
        args = json_object_new_object();
        own_args = 1;
    }
    c = mcpgw_call_new(n, s, m->id, conn, m->params);
    mcpgw_call_set_deadline(c, n->cfg.tool_timeout_ms);
    if (t->side_effects && mcpgw_store_shared(n->store)) {
        /* A retry of a side-effecting call gets the recorded result, if there is one. */
        struct pending_call *pc = xcalloc(1, sizeof(*pc));
        c->rid = mcpgw_json_dump(m->id, NULL);
        pc->c = c;
        pc->t = t;
        pc->args = own_args ? args : json_object_get(args);
        c->busy++;
        mcpgw_store_result_get(n->store, s, c->rid, on_recorded_result, pc);
        return;
    }
    t->call(c, args);
    if (own_args)
        json_object_put(args);
}

struct note_read {
    struct mcpgw_defer *d;
    char uri[128];
};

static void on_note_read(void *arg, int err, const char *text, uint64_t version)
{
    struct note_read *nr = arg;
    struct mcpgw_defer *d = nr->d;
    struct mcpgw_session *s = mcpgw_defer_session(d);
    struct mcpgw_http_conn *conn = mcpgw_defer_conn(d);
    if (conn) {
        if (text) {
            json_object *r = json_object_new_object();
            json_object_object_add(r, "contents",
                                   mcpgw_builtin_contents(nr->uri, "text/plain", "text", text));
            mcpgw_respond_result(d->n, conn, s, d->id, r);
        } else if (err == MCPGW_STORE_GONE) {
            char msg[200];
            snprintf(msg, sizeof(msg), "Resource not found: %s", nr->uri);
            mcpgw_respond_error(d->n, conn, s, 200, d->id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
        } else {
            mcpgw_respond_error(d->n, conn, s, 200, d->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                                "Internal error: the session store is unavailable");
        }
    }
    mcpgw_defer_free(d);
    free(nr);
}

static void m_resources_read(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                             struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    const char *uri = required_str(n, conn, s, m, "uri");
    json_object *contents, *r;
    if (!uri)
        return;
    if (strncmp(uri, "mcpgw://notes/", 14) == 0 &&
        mcpgw_notes_name_ok(uri + 14, strlen(uri + 14))) {
        struct note_read *nr = xcalloc(1, sizeof(*nr));
        snprintf(nr->uri, sizeof(nr->uri), "%s", uri);
        nr->d = mcpgw_defer_new(n, conn, s, m->id);
        mcpgw_store_note_read(n->store, uri + 14, on_note_read, nr);
        return;
    }
    if (!(contents = mcpgw_builtin_read(n, uri))) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Resource not found: %.250s", uri);
        mcpgw_respond_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
        return;
    }
    r = json_object_new_object();
    json_object_object_add(r, "contents", contents);
    mcpgw_respond_result(n, conn, s, m->id, r);
}

static void m_subscribe(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                        const struct mcpgw_jsonrpc_msg *m, int on)
{
    const char *uri = required_str(n, conn, s, m, "uri");
    if (!uri)
        return;
    if (strlen(uri) > MCPGW_URI_MAX) {
        bad_params(n, conn, s, m, "Invalid params: params.uri is longer than 1024 bytes");
        return;
    }
    if (on) {
        if (!mcpgw_builtin_resource_known(uri)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "Resource not found: %.250s", uri);
            mcpgw_respond_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
            return;
        }
        if (s->nsubs >= 1024 && !mcpgw_session_subscribed(s, uri)) {
            bad_params(n, conn, s, m, "Invalid params: a session may hold 1024 subscriptions");
            return;
        }
        mcpgw_registry_subscribe(n->reg, s, uri);
    } else {
        mcpgw_registry_unsubscribe(n->reg, s, uri);
    }
    mcpgw_store_subscribe(n->store, s, uri, on, on_written, mcpgw_defer_new(n, conn, s, m->id));
}

static void m_prompts_get(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                          struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    const char *name = required_str(n, conn, s, m, "name");
    json_object *args = NULL, *result;
    char why[200];
    int rc;
    if (!name)
        return;
    if (json_object_object_get_ex(m->params, "arguments", &args) && args &&
        !json_object_is_type(args, json_type_object)) {
        bad_params(n, conn, s, m, "Invalid params: params.arguments must be an object");
        return;
    }
    rc = mcpgw_builtin_prompt(name, args, &result, why, sizeof(why));
    if (rc)
        mcpgw_respond_error(n, conn, s, 200, m->id, rc, why);
    else
        mcpgw_respond_result(n, conn, s, m->id, result);
}

static void m_set_level(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                        const struct mcpgw_jsonrpc_msg *m)
{
    const char *level = required_str(n, conn, s, m, "level");
    int li;
    if (!level)
        return;
    if ((li = mcpgw_msg_log_level(level)) < 0) {
        bad_params(n, conn, s, m,
                   "Invalid params: params.level must be one of debug, info, notice, warning, "
                   "error, critical, alert, emergency");
        return;
    }
    s->log_level = (int8_t)li;
    mcpgw_store_save(n->store, s, on_written, mcpgw_defer_new(n, conn, s, m->id));
}

static void m_complete(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                       const struct mcpgw_jsonrpc_msg *m)
{
    json_object *ref = mcpgw_json_obj(m->params, "ref"),
                *arg = mcpgw_json_obj(m->params, "argument");
    const char *type = mcpgw_json_str(ref, "type"), *rname, *aname, *value;
    json_object *vals;
    if (!ref || !type) {
        bad_params(n, conn, s, m, "Invalid params: params.ref.type is required (a string)");
        return;
    }
    if (strcmp(type, "ref/prompt") == 0)
        rname = mcpgw_json_str(ref, "name");
    else if (strcmp(type, "ref/resource") == 0)
        rname = mcpgw_json_str(ref, "uri");
    else {
        bad_params(n, conn, s, m,
                   "Invalid params: params.ref.type must be ref/prompt or ref/resource");
        return;
    }
    if (!rname) {
        bad_params(n, conn, s, m,
                   strcmp(type, "ref/prompt") == 0
                       ? "Invalid params: params.ref.name is required (a string)"
                       : "Invalid params: params.ref.uri is required (a string)");
        return;
    }
    aname = mcpgw_json_str(arg, "name");
    value = mcpgw_json_str(arg, "value");
    if (!aname || !value) {
        bad_params(n, conn, s, m,
                   "Invalid params: params.argument.name and params.argument.value are required "
                   "(strings)");
        return;
    }
    vals = mcpgw_builtin_complete(n, type, rname, aname, value);
    mcpgw_respond_result(n, conn, s, m->id, mcpgw_msg_completion(vals));
}

void mcpgw_protocol_request(struct mcpgw_node *n, struct mcpgw_session *s,
                            struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m)
{
    const char *method = m->method;
    (*n->st.requests)++;
    if (strcmp(method, "ping") == 0) {
        mcpgw_respond_result(n, conn, s, m->id, json_object_new_object());
        return;
    }
    if (strcmp(method, "initialize") == 0) {
        mcpgw_respond_error(n, conn, s, 400, m->id, MCPGW_JSONRPC_INVALID_REQUEST,
                            "Invalid Request: this session is already initialized; send "
                            "initialize without Mcp-Session-Id to start a new one");
        return;
    }
    if (s->state != MCPGW_SESSION_READY) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Invalid Request: session is in state '%s': only ping is allowed until the "
                 "client sends notifications/initialized",
                 mcpgw_session_state_str((enum mcpgw_session_state)s->state));
        mcpgw_respond_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_REQUEST, msg);
        return;
    }
    if (!params_ok(n, conn, s, m))
        return;
    if (strcmp(method, "tools/call") == 0)
        m_tools_call(n, conn, s, m);
    else if (strcmp(method, "tools/list") == 0)
        list(n, conn, s, m, mcpgw_builtin_tools_json(), "tools");
    else if (strcmp(method, "resources/list") == 0)
        list(n, conn, s, m, mcpgw_builtin_resources_json(n), "resources");
    else if (strcmp(method, "resources/templates/list") == 0)
        list(n, conn, s, m, mcpgw_builtin_templates_json(), "resourceTemplates");
    else if (strcmp(method, "resources/read") == 0)
        m_resources_read(n, conn, s, m);
    else if (strcmp(method, "resources/subscribe") == 0)
        m_subscribe(n, conn, s, m, 1);
    else if (strcmp(method, "resources/unsubscribe") == 0)
        m_subscribe(n, conn, s, m, 0);
    else if (strcmp(method, "prompts/list") == 0)
        list(n, conn, s, m, mcpgw_builtin_prompts_json(), "prompts");
    else if (strcmp(method, "prompts/get") == 0)
        m_prompts_get(n, conn, s, m);
    else if (strcmp(method, "logging/setLevel") == 0)
        m_set_level(n, conn, s, m);
    else if (strcmp(method, "completion/complete") == 0)
        m_complete(n, conn, s, m);
    else {
        char msg[160];
        snprintf(msg, sizeof(msg), "Method not found: %.100s", method);
        mcpgw_respond_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_METHOD_NOT_FOUND, msg);
    }
}

void mcpgw_protocol_notification(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m)
{
    (*n->st.notifications)++;
    if (strcmp(m->method, "notifications/initialized") == 0) {
        if (s->state != MCPGW_SESSION_READY) {
            s->state = MCPGW_SESSION_READY;
            mcpgw_store_save(n->store, s, on_written, mcpgw_defer_new(n, conn, s, NULL));
            return;
        }
    } else if (strcmp(m->method, "notifications/cancelled") == 0) {
        json_object *rid;
        struct mcpgw_call *c;
        if (m->params && json_object_object_get_ex(m->params, "requestId", &rid) &&
            (c = mcpgw_call_find(s, rid)) != NULL) {
            log_debug("session %s: request cancelled by the client", s->id);
            mcpgw_call_abort(c);
        }
    }
    /* Other notifications (roots/list_changed, progress) need no action here. */
    mcpgw_http_respond(conn, 202, NULL, NULL, NULL, 0);
}

void mcpgw_protocol_response(struct mcpgw_node *n, struct mcpgw_session *s,
                             const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_call *c;
    if (!json_object_is_type(m->id, json_type_int) ||
        !(c = mcpgw_call_find_out(s, json_object_get_int64(m->id)))) {
        log_debug("session %s: a response matches no pending request", s->id);
        return;
    }
    mcpgw_call_reply(c, m->result, m->kind == MCPGW_JSONRPC_ERROR ? m->error : NULL);
}

void mcpgw_node_session_destroy(struct mcpgw_node *n, struct mcpgw_session *s)
{
    mcpgw_store_delete(n->store, s);
    mcpgw_node_session_drop(n, s);
}

void mcpgw_node_session_drop(struct mcpgw_node *n, struct mcpgw_session *s)
{
    while (s->calls)
        mcpgw_call_abort(s->calls);
    if (s->get_stream) {
        struct mcpgw_http_conn *c = s->get_stream;
        mcpgw_http_conn_set_close_cb(c, NULL, NULL);
        s->get_stream = NULL;
        mcpgw_http_stream_end(c);
    }
    mcpgw_registry_remove(n->reg, s);
    mcpgw_session_free(s);
}
