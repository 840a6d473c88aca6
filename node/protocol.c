/* protocol.c - the MCP method table (session era): initialize, then each method of a session. */
#include "node/protocol.h"

#include "common/hash.h"
#include "common/httpd.h"
#include "common/ids.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/builtin.h"
#include "node/catnotify.h"
#include "node/call.h"
#include "node/cluster.h"
#include "node/defer.h"
#include "node/frame.h"
#include "node/guard.h"
#include "node/node-t.h"
#include "node/msg.h"
#include "node/proto.h"
#include "node/provider.h"
#include "node/upsess.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/upprov.h"
#include "node/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where requests are served, asked in order (n->providers): the built-ins, the upstream servers
 * (upprov.c), or both, as mcpgw_protocol_configure chose. */
static const struct mcpgw_provider_ops *const only_builtins[] = {&mcpgw_builtin_provider};
static const struct mcpgw_provider_ops *const only_upstreams[] = {&mcpgw_upprov_provider};
static const struct mcpgw_provider_ops *const both[] = {&mcpgw_builtin_provider,
                                                        &mcpgw_upprov_provider};

void mcpgw_protocol_configure(struct mcpgw_node *n)
{
    const struct mcpgw_provider_ops *const *was = n->providers;
    int b = mcpgw_node_config_builtins(&n->cfg), u = mcpgw_upstream_count(n) > 0;
    n->providers = b && u ? both : u ? only_upstreams : only_builtins;
    n->nproviders = b && u ? 2 : 1;
    /* A reload that toggled the built-ins (or added the first upstream, removed the last):
     * the merged lists changed, and the clients are told (node/catnotify.c). */
    if (was && was != n->providers)
        mcpgw_catnotify_providers(n);
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
        mcpgw_frame_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                          "Invalid params: params.protocolVersion is required (a string)");
        return NULL;
    }
    if (!caps) {
        mcpgw_frame_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                          "Invalid params: params.capabilities is required (an object)");
        return NULL;
    }
    info = mcpgw_json_obj(m->params, "clientInfo");
    if (!info || !mcpgw_json_str(info, "name")) {
        mcpgw_frame_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                          "Invalid params: params.clientInfo.name is required (a string)");
        return NULL;
    }
    mcpgw_registry_stats(n->reg, &rs);
    if (rs.sessions >= n->cfg.max_sessions) {
        log_warn("refusing initialize: %llu sessions is the configured maximum",
                 (unsigned long long)n->cfg.max_sessions);
        mcpgw_frame_error(n, conn, NULL, 503, m->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                          "this node is at its session limit; retry shortly");
        return NULL;
    }
    proto = mcpgw_proto_parse(pv, strlen(pv));
    if (proto < 0)
        proto = MCPGW_PROTO_2025_11_25; /* offer the latest we support */

    s = xcalloc(1, sizeof(*s));
    if (mcpgw_id_new(n->cfg.node_id, s->id, sizeof(s->id)) < 0) {
        free(s);
        mcpgw_frame_error(n, conn, NULL, 500, m->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                          "cannot generate a session id (RAND_bytes failed)");
        return NULL;
    }
    s->proto = (uint8_t)proto;
    s->principal = n->req_principal ? xstrdup(n->req_principal) : NULL;
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
        mcpgw_frame_error(n, conn, NULL, 503, m->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                          "this node is draining; initialize again to reach another node");
        return NULL;
    }
    mcpgw_registry_insert(n->reg, s);
    mcpgw_registry_touch(n->reg, s, mcpgw_now_ms());
    mcpgw_cluster_init_deadline(n, s);
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
            mcpgw_frame_error(n, conn, NULL, 503, d->id, MCPGW_JSONRPC_INTERNAL_ERROR,
                              "Service Unavailable: the session store is unavailable; retry "
                              "shortly");
        else if (!err)
            mcpgw_store_delete(n->store, s); /* nobody will ever know this id */
        mcpgw_cluster_drop(n, s);
        mcpgw_defer_free(d);
        return;
    }
    (*n->st.sessions_created)++;
    result = mcpgw_msg_initialize_result((enum mcpgw_proto)s->proto);
    mcpgw_frame_result(n, conn, s, d->id, result);
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

/* Which list a list method returns: the result key, and each provider's op that fills it. */
#define L_TOOLS     MCPGW_LIST_TOOLS
#define L_RESOURCES MCPGW_LIST_RESOURCES
#define L_TEMPLATES MCPGW_LIST_TEMPLATES
#define L_PROMPTS   MCPGW_LIST_PROMPTS
typedef enum mcpgw_protocol_list_kind list_kind_t;

static void list_fill(struct mcpgw_node *n, const struct mcpgw_provider_ops *p, list_kind_t k,
                      json_object *arr)
{
    static const enum mcpgw_authz_kind ak[MCPGW_LIST_KIND_COUNT] = {
        MCPGW_AUTHZ_TOOL, MCPGW_AUTHZ_RESOURCE, MCPGW_AUTHZ_RESOURCE, MCPGW_AUTHZ_PROMPT};
    size_t from = json_object_array_length(arr);
    void (*fill)(struct mcpgw_node *, json_object *) = k == L_TOOLS       ? p->list_tools
                                                       : k == L_RESOURCES ? p->list_resources
                                                       : k == L_TEMPLATES ? p->list_templates
                                                                          : p->list_prompts;
    if (fill)
        fill(n, arr);
    if (n->cfg.authz) /* a principal sees only what the rules let it use */
        mcpgw_guard_filter(n, p, ak[k], k == L_TEMPLATES, arr, from);
}

static json_object *list_all(struct mcpgw_node *n, list_kind_t k)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n->nproviders; i++)
        list_fill(n, n->providers[i], k, arr);
    return arr;
}

const struct mcpgw_provider_ops *const *mcpgw_protocol_providers(struct mcpgw_node *n,
                                                                 size_t *count)
{
    *count = n->nproviders;
    return n->providers;
}

int mcpgw_protocol_list(struct mcpgw_node *n, enum mcpgw_protocol_list_kind k, json_object *params,
                        const struct mcpgw_provider_ops *extra, json_object **result)
{
    static const char *const keys[MCPGW_LIST_KIND_COUNT] = {"tools", "resources",
                                                            "resourceTemplates", "prompts"};
    json_object *arr = json_object_new_array();
    /* The caller's own entries first: a client that tries "the first tool" with no arguments
     * meets one of the era's fixtures, which need none. */
    if (extra)
        list_fill(n, extra, k, arr);
    for (size_t i = 0; i < n->nproviders; i++)
        list_fill(n, n->providers[i], k, arr);
    return paginate(n, arr, keys[k], params, result);
}

static void list(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                 const struct mcpgw_jsonrpc_msg *m, list_kind_t k, const char *key)
{
    json_object *result;
    if (paginate(n, list_all(n, k), key, m->params, &result) < 0) {
        mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS,
                          "Invalid params: params.cursor is not a cursor this server issued");
        return;
    }
    mcpgw_frame_result(n, conn, s, m->id, result);
}

static void bad_params(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                       const struct mcpgw_jsonrpc_msg *m, const char *msg)
{
    mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS, msg);
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

/* With authorization rules: may the request use kind/name? 0 when refused: the step-up 403 was
 * answered (*answered), or the caller answers as for an unknown name. */
static int permitted(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                     const struct mcpgw_jsonrpc_msg *m, enum mcpgw_authz_kind kind,
                     const char *name, int *answered)
{
    *answered = 0;
    return !n->cfg.authz || mcpgw_guard_allows(n, conn, s->id, m->id, kind, name, answered);
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
                mcpgw_cluster_drop(n, s);
                s = NULL;
            }
        }
    }
    if (conn) {
        if (!d->id)
            mcpgw_http_respond(conn, err ? 503 : 202, NULL, NULL, NULL, 0);
        else if (err == MCPGW_STORE_GONE)
            mcpgw_frame_error(n, conn, NULL, 404, d->id, -32001,
                              "Session not found: initialize a new session");
        else if (err) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Internal error: %s; retry the request",
                     mcpgw_store_err_str(err));
            mcpgw_frame_error(n, conn, s, 200, d->id, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
        } else
            mcpgw_frame_result(n, conn, s, d->id, json_object_new_object());
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

/* The key a side-effecting request's result is recorded under: its id and a 64-bit hash of its
 * method and params (as parsed, written compactly), so a retry finds it and another request
 * that reuses the id does not (it is executed: docs/replication.md, "Retries"). Free with free().
 */
static char *record_key(const struct mcpgw_jsonrpc_msg *m)
{
    size_t idlen, plen = 0, mlen = strlen(m->method);
    char *id = mcpgw_json_dump(m->id, &idlen),
         *params = m->params ? mcpgw_json_dump(m->params, &plen) : NULL;
    char *buf = xmalloc(mlen + 1 + plen + 1), *key;
    uint64_t h;
    memcpy(buf, m->method, mlen + 1); /* the NUL separates method from params */
    if (params)
        memcpy(buf + mlen + 1, params, plen);
    h = mcpgw_hash64(buf, mlen + 1 + plen);
    key = xmalloc(idlen + 18);
    snprintf(key, idlen + 18, "%s#%016llx", id, (unsigned long long)h);
    free(buf);
    free(params);
    free(id);
    return key;
}

static void m_tools_call(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                         struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    const char *name = required_str(n, conn, s, m, "name");
    const struct mcpgw_tool *t = NULL;
    json_object *args = NULL;
    struct mcpgw_call *c;
    int own_args = 0, answered;
    if (!name)
        return;
    for (size_t i = 0; i < n->nproviders && !t; i++)
        t = n->providers[i]->tool ? n->providers[i]->tool(n, name) : NULL;
    if (t && !permitted(n, conn, s, m, MCPGW_AUTHZ_TOOL, name, &answered)) {
        if (answered)
            return;
        t = NULL;
    }
    if (!t) {
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
    if (mcpgw_call_find(s, m->id)) {
        /* Two live calls with one id could not be told apart by a cancel or a retry. */
        mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_REQUEST,
                          "Invalid Request: duplicate request id: a request with this id is "
                          "still in flight in this session");
        return;
    }
    if (!args) {
        args = json_object_new_object();
        own_args = 1;
    }
    c = mcpgw_call_new(n, s, m->id, conn, m->params);
    c->tool = t;
    mcpgw_call_set_deadline(c, n->cfg.tool_timeout_ms);
    if (t->side_effects && mcpgw_store_shared(n->store)) {
        /* A retry of a side-effecting call gets the recorded result, if there is one. */
        struct pending_call *pc = xcalloc(1, sizeof(*pc));
        c->rid = record_key(m);
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

static void m_resources_read(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                             struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    const char *uri = required_str(n, conn, s, m, "uri");
    struct mcpgw_defer *d;
    char msg[300];
    int answered;
    if (!uri)
        return;
    if (!permitted(n, conn, s, m, MCPGW_AUTHZ_RESOURCE, uri, &answered)) {
        if (answered)
            return;
        goto not_found;
    }
    d = mcpgw_defer_new(n, conn, s, m->id);
    for (size_t i = 0; i < n->nproviders; i++)
        if (n->providers[i]->read && n->providers[i]->read(n, uri, d))
            return;
    mcpgw_defer_free(d);
not_found:
    snprintf(msg, sizeof(msg), "Resource not found: %.250s", uri);
    mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
}

/* Whether a provider knows uri (and has been told of the subscription change). */
static int providers_subscribe(struct mcpgw_node *n, const char *uri, int on)
{
    int known = 0;
    for (size_t i = 0; i < n->nproviders && !known; i++)
        known = n->providers[i]->subscribe && n->providers[i]->subscribe(n, uri, on);
    return known;
}

static void m_subscribe(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                        const struct mcpgw_jsonrpc_msg *m, int on)
{
    const char *uri = required_str(n, conn, s, m, "uri");
    int answered;
    if (!uri)
        return;
    if (on && !permitted(n, conn, s, m, MCPGW_AUTHZ_RESOURCE, uri, &answered)) {
        char msg[300];
        if (answered)
            return;
        snprintf(msg, sizeof(msg), "Resource not found: %.250s", uri);
        mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
        return;
    }
    if (strlen(uri) > MCPGW_URI_MAX) {
        bad_params(n, conn, s, m, "Invalid params: params.uri is longer than 1024 bytes");
        return;
    }
    if (n->cfg.upstreams && mcpgw_upsess_subscribe(n, s, uri, on, conn, m->id))
        return; /* the client's own upstream session holds it (docs/federation.md) */
    if (on) {
        if (!providers_subscribe(n, uri, 1)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "Resource not found: %.250s", uri);
            mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
            return;
        }
        if (s->nsubs >= 1024 && !mcpgw_session_subscribed(s, uri)) {
            bad_params(n, conn, s, m, "Invalid params: a session may hold 1024 subscriptions");
            return;
        }
        mcpgw_registry_subscribe(n->reg, s, uri);
    } else {
        providers_subscribe(n, uri, 0);
        mcpgw_registry_unsubscribe(n->reg, s, uri);
    }
    mcpgw_store_subscribe(n->store, s, uri, on, on_written, mcpgw_defer_new(n, conn, s, m->id));
}

static void m_prompts_get(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                          struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    const char *name = required_str(n, conn, s, m, "name");
    json_object *args = NULL;
    struct mcpgw_defer *d;
    char why[200];
    int answered;
    if (!name)
        return;
    if (!permitted(n, conn, s, m, MCPGW_AUTHZ_PROMPT, name, &answered)) {
        if (answered)
            return;
        goto unknown;
    }
    if (json_object_object_get_ex(m->params, "arguments", &args) && args &&
        !json_object_is_type(args, json_type_object)) {
        bad_params(n, conn, s, m, "Invalid params: params.arguments must be an object");
        return;
    }
    d = mcpgw_defer_new(n, conn, s, m->id);
    for (size_t i = 0; i < n->nproviders; i++)
        if (n->providers[i]->get_prompt && n->providers[i]->get_prompt(n, name, args, d))
            return;
    mcpgw_defer_free(d);
unknown:
    snprintf(why, sizeof(why), "Invalid params: unknown prompt '%.100s'", name);
    bad_params(n, conn, s, m, why);
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
    int answered;
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
    if (!permitted(n, conn, s, m,
                   strcmp(type, "ref/prompt") == 0 ? MCPGW_AUTHZ_PROMPT : MCPGW_AUTHZ_RESOURCE,
                   rname, &answered)) {
        if (!answered) /* as for a name nobody completes: no values */
            mcpgw_frame_result(n, conn, s, m->id, mcpgw_msg_completion(json_object_new_array()));
        return;
    }
    for (size_t i = 0; i < n->nproviders; i++)
        if (n->providers[i]->complete_later) {
            struct mcpgw_defer *d = mcpgw_defer_new(n, conn, s, m->id);
            if (n->providers[i]->complete_later(n, type, rname, m->params, d))
                return;
            mcpgw_defer_free(d);
        }
    vals = json_object_new_array();
    for (size_t i = 0; i < n->nproviders; i++)
        if (n->providers[i]->complete &&
            n->providers[i]->complete(n, type, rname, aname, value, vals))
            break;
    mcpgw_frame_result(n, conn, s, m->id, mcpgw_msg_completion(vals));
}

static void m_ping(struct mcpgw_node *n, struct mcpgw_http_conn *conn, struct mcpgw_session *s,
                   const struct mcpgw_jsonrpc_msg *m)
{
    mcpgw_frame_result(n, conn, s, m->id, json_object_new_object());
}

static void m_initialize_again(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                               struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    mcpgw_frame_error(n, conn, s, 400, m->id, MCPGW_JSONRPC_INVALID_REQUEST,
                      "Invalid Request: this session is already initialized; send "
                      "initialize without Mcp-Session-Id to start a new one");
}

static void m_tools_list(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                         struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    list(n, conn, s, m, L_TOOLS, "tools");
}

static void m_resources_list(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                             struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    list(n, conn, s, m, L_RESOURCES, "resources");
}

static void m_templates_list(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                             struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    list(n, conn, s, m, L_TEMPLATES, "resourceTemplates");
}

static void m_prompts_list(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                           struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    list(n, conn, s, m, L_PROMPTS, "prompts");
}

static void m_resources_subscribe(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                  struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    m_subscribe(n, conn, s, m, 1);
}

static void m_resources_unsubscribe(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                    struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    m_subscribe(n, conn, s, m, 0);
}

/* Method flags. */
#define M_ANY_STATE 1u /* served before notifications/initialized, params unchecked */

typedef void (*method_fn)(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                          struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m);

/* The requests of a session, looked up by name; tools/call first, as the most frequent. */
static const struct method {
    const char *name;
    method_fn fn;
    unsigned flags;
} methods[] = {
    {"tools/call", m_tools_call, 0},
    {"ping", m_ping, M_ANY_STATE},
    {"initialize", m_initialize_again, M_ANY_STATE},
    {"tools/list", m_tools_list, 0},
    {"resources/list", m_resources_list, 0},
    {"resources/templates/list", m_templates_list, 0},
    {"resources/read", m_resources_read, 0},
    {"resources/subscribe", m_resources_subscribe, 0},
    {"resources/unsubscribe", m_resources_unsubscribe, 0},
    {"prompts/list", m_prompts_list, 0},
    {"prompts/get", m_prompts_get, 0},
    {"logging/setLevel", m_set_level, 0},
    {"completion/complete", m_complete, 0},
};

void mcpgw_protocol_request(struct mcpgw_node *n, struct mcpgw_session *s,
                            struct mcpgw_http_conn *conn, const struct mcpgw_jsonrpc_msg *m)
{
    const struct method *me = NULL;
    (*n->st.requests)++;
    if (!n->providers)
        mcpgw_protocol_configure(n); /* a node assembled without main (unit tests) */
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(methods) && !me; i++)
        if (strcmp(m->method, methods[i].name) == 0)
            me = &methods[i];
    if (me && (me->flags & M_ANY_STATE)) {
        me->fn(n, conn, s, m);
        return;
    }
    if (s->state != MCPGW_SESSION_READY) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Invalid Request: session is in state '%s': only ping is allowed until the "
                 "client sends notifications/initialized",
                 mcpgw_session_state_str((enum mcpgw_session_state)s->state));
        mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_INVALID_REQUEST, msg);
        return;
    }
    if (!params_ok(n, conn, s, m))
        return;
    if (me) {
        me->fn(n, conn, s, m);
    } else {
        char msg[160];
        snprintf(msg, sizeof(msg), "Method not found: %.100s", m->method);
        mcpgw_frame_error(n, conn, s, 200, m->id, MCPGW_JSONRPC_METHOD_NOT_FOUND, msg);
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
        if (mcpgw_upsess_response(n, s, m))
            return; /* answered a per-client upstream's request from its GET stream */
        log_debug("session %s: a response matches no pending request", s->id);
        return;
    }
    mcpgw_call_reply(c, m->result, m->kind == MCPGW_JSONRPC_ERROR ? m->error : NULL);
}
