/* upprov.c - serving clients from the upstream servers (see upprov.h). */
#include "node/upprov.h"

#include "common/hash.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/util.h"
#include "node/call.h"
#include "node/defer.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upcfg.h"
#include "node/s2c.h"
#include "node/upprin.h"
#include "node/upproc.h"
#include "node/upsess.h"
#include "node/upsub.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lists ---- */

static void append(struct mcpgw_node *n, json_object *arr, enum mcpgw_catalog_kind k)
{
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    json_object *l = cat ? mcpgw_catalog_list(cat, k) : NULL;
    for (size_t i = 0; l && i < json_object_array_length(l); i++)
        json_object_array_add(arr, json_object_get(json_object_array_get_idx(l, i)));
}

static void list_tools(struct mcpgw_node *n, json_object *arr)
{
    append(n, arr, MCPGW_CATALOG_TOOLS);
}

static void list_prompts(struct mcpgw_node *n, json_object *arr)
{
    append(n, arr, MCPGW_CATALOG_PROMPTS);
}

static void list_resources(struct mcpgw_node *n, json_object *arr)
{
    append(n, arr, MCPGW_CATALOG_RESOURCES);
}

static void list_templates(struct mcpgw_node *n, json_object *arr)
{
    append(n, arr, MCPGW_CATALOG_TEMPLATES);
}

/* ---- tools/call ---- */

/* One client call served by one upstream call. Owned by the client call (c->ext) until the
 * upstream answers; freed by whichever side ends first. */
struct bridge {
    struct mcpgw_call *c;
    struct mcpgw_upstream *u;
    struct mcpgw_upstream_call *uc;
    char token[40]; /* the progress token sent upstream ("" when the client gave none) */
};

static uint64_t token_seq;

static const struct mcpgw_tool *tool(struct mcpgw_node *n, const char *name)
{
    const struct mcpgw_catalog_entry *e =
        mcpgw_catalog_find(mcpgw_upstream_catalog(n), MCPGW_CATALOG_TOOLS, name);
    return e ? &e->tool : NULL;
}

/* The client's call ended first (cancelled, timed out, its session went): cancel upstream. */
static void on_call_free(struct mcpgw_call *c)
{
    struct bridge *b = c->ext;
    c->ext = NULL;
    if (b->uc)
        mcpgw_upstream_cancel(b->uc, "the client's request was cancelled or timed out");
    free(b);
}

/* Whether a notifications/message at level reaches session s. */
static int level_ok(const struct mcpgw_session *s, json_object *params)
{
    int li = mcpgw_msg_log_level(mcpgw_json_str(params, "level"));
    return li >= 0 && (s->log_level < 0 || li >= s->log_level);
}

static void on_call_message(void *arg, const struct mcpgw_jsonrpc_msg *m)
{
    struct bridge *b = arg;
    struct mcpgw_call *c = b->c;
    if (strcmp(m->method, "notifications/progress") == 0) {
        json_object *p = m->params, *v;
        double progress = 0, total = 0;
        if (json_object_object_get_ex(p, "progress", &v))
            progress = json_object_get_double(v);
        if (json_object_object_get_ex(p, "total", &v))
            total = json_object_get_double(v);
        mcpgw_call_progress(c, progress, total, mcpgw_json_str(p, "message"));
    } else if (strcmp(m->method, "notifications/message") == 0 && c->s &&
               level_ok(c->s, m->params)) {
        size_t len;
        char *json = mcpgw_msg_relay(m->method, json_object_get(m->params), &len);
        mcpgw_call_emit(c, json, len);
        free(json);
    }
}

/* The upstream's JSON-RPC error, passed on with its code and message. */
static void error_parts(const struct mcpgw_jsonrpc_msg *m, int *code, const char **message)
{
    json_object *v;
    *code = MCPGW_JSONRPC_INTERNAL_ERROR;
    *message = "the upstream answered with an error without a message";
    if (json_object_object_get_ex(m->error, "code", &v) && json_object_is_type(v, json_type_int))
        *code = json_object_get_int(v);
    if (mcpgw_json_str(m->error, "message"))
        *message = mcpgw_json_str(m->error, "message");
}

static void on_call_reply(void *arg, enum mcpgw_upstream_err err, const char *why,
                          const struct mcpgw_jsonrpc_msg *m)
{
    struct bridge *b = arg;
    struct mcpgw_call *c = b->c;
    c->on_free = NULL;
    c->ext = NULL;
    free(b);
    if (err) {
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
    } else if (m->kind == MCPGW_JSONRPC_ERROR) {
        int code;
        const char *message;
        error_parts(m, &code, &message);
        mcpgw_call_error(c, code, message);
    } else {
        mcpgw_call_result(c, json_object_get(m->result));
    }
}

/* The client's answer to a forwarded server-to-client request goes back to the upstream. */
static void on_client_answer(void *arg, const char *json, size_t len)
{
    struct bridge *b = arg;
    if (!b->uc || mcpgw_upstream_call_answer(b->uc, json, len) < 0)
        log_warn("could not send a client's answer to its upstream");
}

/* An upstream's request during this call reaches the call's client (s2c.h). */
static void on_call_request(void *arg, const struct mcpgw_jsonrpc_msg *m)
{
    struct bridge *b = arg;
    mcpgw_s2c_forward(b->c, mcpgw_upstream_cfg(b->u)->name, m, on_client_answer, b);
}

/* A 2026-07-28 upstream sends log messages only for requests whose _meta names a level: the
 * calling client's level (logging/setLevel, or its own request's) goes with each of its calls,
 * in shared and per-client mode alike (docs/federation.md, "Bridging"). */
static void log_level_meta(const struct mcpgw_call *c, const struct mcpgw_upcfg *cfg,
                           json_object *params)
{
    const char *level;
    json_object *meta;
    if (cfg->kind != MCPGW_UPCFG_HTTP || cfg->protocol == MCPGW_UPCFG_PROTOCOL_SESSION || !c->s ||
        !(level = mcpgw_msg_log_level_name(c->s->log_level)))
        return;
    if (!(meta = mcpgw_json_obj(params, "_meta"))) {
        meta = json_object_new_object();
        json_object_object_add(params, "_meta", meta);
    }
    json_object_object_add(meta, "io.modelcontextprotocol/logLevel", json_object_new_string(level));
}

static void tool_call(struct mcpgw_call *c, json_object *args)
{
    static const struct mcpgw_upstream_call_cbs cbs = {on_call_message, on_call_reply,
                                                       on_call_request};
    const struct mcpgw_catalog_entry *e =
        (const struct mcpgw_catalog_entry *)((const char *)c->tool -
                                             offsetof(struct mcpgw_catalog_entry, tool));
    struct mcpgw_upstream *u = e->owner;
    const struct mcpgw_upcfg *cfg = mcpgw_upstream_cfg(u);
    struct bridge *b;
    struct mcpgw_session *holder;
    json_object *params = json_object_new_object();
    char why[256];
    /* The client's own upstream session (http: per-client, or stateful by default) or child. */
    int own = cfg->kind == MCPGW_UPCFG_HTTP ? mcpgw_upstream_per_client(u)
                                            : cfg->session == MCPGW_UPCFG_SESSION_PER_CLIENT;
    json_object_object_add(params, "name", json_object_new_string(e->name));
    json_object_object_add(params, "arguments", json_object_get(args));
    if (own && c->s->stateless) {
        /* A 2026-07-28 call has no client session to own an upstream session (or child). With
         * authentication its principal holds one (session or child) per upstream on this node;
         * without, the node's shared session or child serves it (docs/federation.md,
         * "Bridging"). */
        if (c->node->auth) {
            if (!(holder = mcpgw_upprin_session(c->node, c->s->principal ? c->s->principal : "",
                                                why, sizeof(why)))) {
                json_object_put(params);
                mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
                return;
            }
            if (c->progress_token) { /* on this call's own stream: passed as it is */
                json_object *meta = json_object_new_object();
                json_object_object_add(meta, "progressToken", json_object_get(c->progress_token));
                json_object_object_add(params, "_meta", meta);
            }
            if (cfg->timeout_ms) /* as below: the upstream's own timeout answers first */
                mcpgw_call_set_deadline(c, cfg->timeout_ms + 1000);
            log_level_meta(c, cfg, params);
            if (cfg->kind == MCPGW_UPCFG_HTTP)
                mcpgw_upsess_call_as(c, holder, cfg->name, "tools/call", params);
            else /* the principal's own child */
                mcpgw_upproc_call_as(c, holder, cfg, "tools/call", params);
            return;
        }
        own = 0;
    }
    if (own && cfg->kind == MCPGW_UPCFG_HTTP) {
        /* The client's own upstream session: its progress token passes through as it is. */
        if (c->progress_token) {
            json_object *meta = json_object_new_object();
            json_object_object_add(meta, "progressToken", json_object_get(c->progress_token));
            json_object_object_add(params, "_meta", meta);
        }
        /* As below: the session's own timeout answers first (and counts in the breaker). */
        if (cfg->timeout_ms)
            mcpgw_call_set_deadline(c, cfg->timeout_ms + 1000);
        log_level_meta(c, cfg, params);
        mcpgw_upsess_call(c, cfg->name, "tools/call", params);
        return;
    }
    if (own && cfg->kind == MCPGW_UPCFG_STDIO) {
        /* The client's own child: its progress token passes through as it is. */
        if (c->progress_token) {
            json_object *meta = json_object_new_object();
            json_object_object_add(meta, "progressToken", json_object_get(c->progress_token));
            json_object_object_add(params, "_meta", meta);
        }
        if (cfg->timeout_ms)
            mcpgw_call_set_deadline(c, cfg->timeout_ms + 1000);
        mcpgw_upproc_call(c, cfg, "tools/call", params);
        return;
    }
    b = xcalloc(1, sizeof(*b));
    if (c->progress_token) {
        /* Our own token upstream: two clients' tokens may be equal, ours never are. */
        json_object *meta = json_object_new_object();
        snprintf(b->token, sizeof(b->token), "mcpgw-%llu", (unsigned long long)++token_seq);
        json_object_object_add(meta, "progressToken", json_object_new_string(b->token));
        json_object_object_add(params, "_meta", meta);
    }
    log_level_meta(c, cfg, params);
    b->c = c;
    b->u = u;
    b->uc = mcpgw_upstream_request(u, "tools/call", params, b->token[0] ? b->token : NULL, &cbs, b,
                                   why, sizeof(why));
    if (!b->uc) {
        free(b);
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        return;
    }
    c->ext = b;
    c->on_free = on_call_free;
    /* The upstream's own timeout (upmcp, upstdio) answers first, naming the upstream and
     * cancelling upstream; this deadline is only the backstop. */
    if (cfg->timeout_ms)
        mcpgw_call_set_deadline(c, cfg->timeout_ms + 1000);
}

/* ---- requests answered through a deferred reply ---- */

static void on_defer_reply(void *arg, enum mcpgw_upstream_err err, const char *why,
                           const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_defer *d = arg;
    if (err) {
        mcpgw_defer_error(d, MCPGW_JSONRPC_INTERNAL_ERROR, why);
    } else if (m->kind == MCPGW_JSONRPC_ERROR) {
        int code;
        const char *message;
        error_parts(m, &code, &message);
        mcpgw_defer_error(d, code, message);
    } else {
        mcpgw_defer_result(d, json_object_get(m->result));
    }
}

/* Send method(params) (taken) to u and answer d with what it says. */
static void defer_request(struct mcpgw_upstream *u, const char *method, json_object *params,
                          struct mcpgw_defer *d)
{
    static const struct mcpgw_upstream_call_cbs cbs = {NULL, on_defer_reply};
    char why[256];
    if (!mcpgw_upstream_request(u, method, params, NULL, &cbs, d, why, sizeof(why)))
        mcpgw_defer_error(d, MCPGW_JSONRPC_INTERNAL_ERROR, why);
}

/* The upstream that serves uri (mcpgw_upstream_owner). */
static struct mcpgw_upstream *resource_owner(struct mcpgw_node *n, const char *uri)
{
    return mcpgw_upstream_owner(n, uri);
}

static int read_resource(struct mcpgw_node *n, const char *uri, struct mcpgw_defer *d)
{
    struct mcpgw_upstream *u = resource_owner(n, uri);
    json_object *params;
    if (!u)
        return 0;
    params = json_object_new_object();
    json_object_object_add(params, "uri", json_object_new_string(uri));
    defer_request(u, "resources/read", params, d);
    return 1;
}

static int get_prompt(struct mcpgw_node *n, const char *name, json_object *args,
                      struct mcpgw_defer *d)
{
    const struct mcpgw_catalog_entry *e =
        mcpgw_catalog_find(mcpgw_upstream_catalog(n), MCPGW_CATALOG_PROMPTS, name);
    json_object *params;
    if (!e)
        return 0;
    params = json_object_new_object();
    json_object_object_add(params, "name", json_object_new_string(e->name));
    if (args)
        json_object_object_add(params, "arguments", json_object_get(args));
    defer_request(e->owner, "prompts/get", params, d);
    return 1;
}

static int complete_later(struct mcpgw_node *n, const char *ref_type, const char *ref_name,
                          json_object *params, struct mcpgw_defer *d)
{
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    const struct mcpgw_catalog_entry *e;
    struct mcpgw_upstream *owner;
    json_object *copy = NULL, *ref;
    if (strcmp(ref_type, "ref/prompt") == 0) {
        if (!(e = mcpgw_catalog_find(cat, MCPGW_CATALOG_PROMPTS, ref_name)))
            return 0;
        owner = e->owner;
        json_object_deep_copy(params, &copy, NULL);
        ref = json_object_object_get(copy, "ref");
        json_object_object_add(ref, "name", json_object_new_string(e->name));
    } else {
        e = mcpgw_catalog_find(cat, MCPGW_CATALOG_TEMPLATES, ref_name);
        owner = e ? e->owner : resource_owner(n, ref_name);
        if (!owner)
            return 0;
        json_object_deep_copy(params, &copy, NULL);
    }
    defer_request(owner, "completion/complete", copy, d);
    return 1;
}

/* Subscribing at the upstream is once per node and lasts while the upstream runs; unsubscribing
 * a session is the registry's alone (updates for a URI nobody here watches find no one). */
static int subscribe(struct mcpgw_node *n, const char *uri, int on)
{
    struct mcpgw_upstream *u = resource_owner(n, uri);
    if (!u)
        return 0;
    return on ? mcpgw_upstream_watch(u, uri) == 0 : 1;
}

const struct mcpgw_provider_ops mcpgw_upprov_provider = {
    .name = "upstreams",
    .list_tools = list_tools,
    .list_resources = list_resources,
    .list_templates = list_templates,
    .list_prompts = list_prompts,
    .tool = tool,
    .read = read_resource,
    .get_prompt = get_prompt,
    .complete_later = complete_later,
    .subscribe = subscribe,
};

/* ---- what the upstreams send apart from calls ---- */

/* A node-local notification to one session's GET stream. With the memory store it is logged
 * and numbered like any other event; with a shared store, the GET stream's ids are the
 * cluster's and this event has none: it is delivered live only, not replayed after a resume
 * (docs/federation.md, "Notifications from a shared upstream session"). */
static void send_note(struct mcpgw_node *n, struct mcpgw_session *s, const char *json, size_t len)
{
    if (s->state != MCPGW_SESSION_READY)
        return;
    if (!mcpgw_store_shared(n->store))
        mcpgw_stream_send(n, s, json, len);
    else if (s->get_stream)
        mcpgw_frame_event_id(n, s->get_stream, NULL, json, len);
}

struct broadcast {
    struct mcpgw_node *n;
    const char *json[MCPGW_CATALOG_KIND_COUNT];
    size_t len[MCPGW_CATALOG_KIND_COUNT];
    json_object *level_params; /* notifications/message: filter by level */
};

static void send_each(void *arg, struct mcpgw_session *s)
{
    struct broadcast *b = arg;
    if (b->level_params && !level_ok(s, b->level_params))
        return;
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++)
        if (b->json[k])
            send_note(b->n, s, b->json[k], b->len[k]);
}

/* The list kinds clients are told about, as bits of enum mcpgw_catalog_kind: a template change
 * is a change of the resource list. */
static const char *const told_kinds[3] = {"tools", "prompts", "resources"};
static const unsigned told_bits[3] = {1u << MCPGW_CATALOG_TOOLS, 1u << MCPGW_CATALOG_PROMPTS,
                                      (1u << MCPGW_CATALOG_RESOURCES) |
                                          (1u << MCPGW_CATALOG_TEMPLATES)};

/* Tell this node's sessions, live and without an event id, that the lists in mask changed. */
static void tell_sessions(struct mcpgw_node *n, unsigned mask)
{
    struct broadcast b = {.n = n};
    for (int i = 0; i < 3; i++)
        if (mask & (1u << i))
            b.json[i] = mcpgw_msg_list_changed(told_kinds[i], &b.len[i]);
    mcpgw_registry_foreach(n->reg, send_each, &b);
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++)
        free((char *)b.json[k]);
}

/* What a told kind's lists are now, as one 64-bit hash of their JSON text: every node builds the
 * same catalogue from the same upstream answers, in the same order. */
static uint64_t told_hash(struct mcpgw_node *n, int i)
{
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    uint64_t h = 0;
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        json_object *l = cat && (told_bits[i] & (1u << k))
                             ? mcpgw_catalog_list(cat, (enum mcpgw_catalog_kind)k)
                             : NULL;
        const char *text = l ? json_object_to_json_string_ext(l, JSON_C_TO_STRING_PLAIN) : "null";
        h = h * 1099511628211ULL ^ mcpgw_hash64(text, strlen(text));
    }
    return h;
}

struct list_report {
    struct mcpgw_node *n;
    int kind; /* index into told_kinds */
};

static void on_list_recorded(void *arg, int err)
{
    struct list_report *lr = arg;
    /* Recorded (by this node or an earlier one): the "lch" event tells every node's sessions,
     * with its id. Not recorded (Redis unreachable): this node's sessions are told live. */
    if (err)
        tell_sessions(lr->n, 1u << lr->kind);
    free(lr);
}

static void on_changed(struct mcpgw_node *n, unsigned kinds)
{
    unsigned mask = 0;
    for (int i = 0; i < 3; i++)
        if (kinds & told_bits[i])
            mask |= 1u << i;
    log_info("upstream catalogue changed:%s%s%s: telling the sessions", mask & 1 ? " tools" : "",
             mask & 2 ? " prompts" : "", mask & 4 ? " resources" : "");
    if (!mcpgw_store_shared(n->store)) {
        tell_sessions(n, mask);
        return;
    }
    /* A shared store: every node sees this change on its own upstream session, and a session
     * whose node is down meanwhile must still learn of it when it resumes elsewhere. So the
     * change becomes one event of the cluster's order, recorded by the first node to report
     * it (docs/federation.md, "Upstream notifications after a failover"). */
    for (int i = 0; i < 3; i++) {
        struct list_report *lr;
        if (!(mask & (1u << i)))
            continue;
        lr = xmalloc(sizeof(*lr));
        lr->n = n;
        lr->kind = i;
        if (mcpgw_store_list_change(n->store, told_kinds[i], told_hash(n, i), on_list_recorded,
                                    lr) < 0) {
            free(lr);
            tell_sessions(n, 1u << i);
        }
    }
}

static void on_notification(struct mcpgw_node *n, struct mcpgw_upstream *u,
                            const struct mcpgw_jsonrpc_msg *m)
{
    struct broadcast b = {.n = n};
    char *json;
    if (strcmp(m->method, "notifications/resources/updated") == 0) {
        /* Each node holds its own upstream subscription: its local subscribers, through the
         * fan-out (upsub.c). */
        mcpgw_upsub_updated(n, m);
        return;
    }
    if (strcmp(m->method, "notifications/message") != 0) {
        log_debug("upstream %s: %s is not passed on from a shared session",
                  mcpgw_upstream_cfg(u)->name, m->method);
        return;
    }
    if (n->auth) {
        /* With authentication this node's sessions belong to different principals, and a log
         * message outside any call speaks for none of them (it may be about another client's
         * work): it stays in the node's log (docs/federation.md, "Logging"). */
        log_info("upstream %s: a log message outside a call is not passed to clients "
                 "(authentication is on)",
                 mcpgw_upstream_cfg(u)->name);
        return;
    }
    /* A shared session speaks for every client of this node: its log reaches all of them. */
    json = mcpgw_msg_relay(m->method, json_object_get(m->params), &b.len[0]);
    b.json[0] = json;
    b.level_params = m->params;
    mcpgw_registry_foreach(n->reg, send_each, &b);
    free(json);
}

/* A shared session's subscription is (again) in place: upsub.c tells the sessions that may
 * have missed updates (docs/federation.md, "Updates from shared upstreams"). */
static void on_watched(struct mcpgw_node *n, struct mcpgw_upstream *u, const char *uri, int renewed)
{
    if (!mcpgw_upstream_per_client(u))
        mcpgw_upsub_watched(n, uri, renewed);
}

const struct mcpgw_upstream_hooks mcpgw_upprov_hooks = {
    .on_changed = on_changed,
    .on_notification = on_notification,
    .tool_call = tool_call,
    .on_watched = on_watched,
};
