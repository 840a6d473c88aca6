/* era26.c - the 2026-07-28 era on /mcp: era detection, header and _meta checks, dispatch (see
 * era26.h and docs/protocol-2026.md). */
#include "node/listen.h"
#include "node/era26.h"

#include "common/http.h"
#include "common/httpd.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/util.h"
#include "node/bridge26.h"
#include "node/call.h"
#include "node/defer.h"
#include "node/frame.h"
#include "node/guard.h"
#include "node/msg.h"
#include "node/mrtr.h"
#include "node/node-t.h"
#include "node/proto.h"
#include "node/protocol.h"
#include "node/provider.h"
#include "node/session.h"
#include "node/tasks.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CAPS    "io.modelcontextprotocol/clientCapabilities"
#define META_LEVEL   "io.modelcontextprotocol/logLevel"

/* Freshness hints (ttlMs) of cacheable results. Tool, prompt and template lists change only
 * with a release or a configuration reload; resources include notes written at any time. */
#define TTL_STATIC_LIST_MS 60000
#define TTL_RESOURCES_MS   5000

enum mcpgw_era26_version mcpgw_era26_header_version(const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *pv = mcpgw_http_find(h, "mcp-protocol-version");
    if (!pv || mcpgw_proto_parse(pv->value, pv->value_len) >= 0)
        return MCPGW_ERA_SESSION;
    if (pv->value_len == 10 && memcmp(pv->value, MCPGW_PROTO_2026_07_28, 10) == 0)
        return MCPGW_ERA_2026;
    return MCPGW_ERA_UNKNOWN;
}

int mcpgw_era26_claims(const struct mcpgw_jsonrpc_msg *m)
{
    json_object *meta = mcpgw_json_obj(m->params, "_meta");
    return meta && json_object_object_get_ex(meta, META_VERSION, NULL);
}

/* One request being served: what every handler needs. */
struct req {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn;
    const struct mcpgw_http_head *h;
    const struct mcpgw_jsonrpc_msg *m;
    json_object *caps; /* _meta clientCapabilities */
};

static void fail_data(struct req *r, int status, int code, const char *message, json_object *data)
{
    size_t len;
    char *json = mcpgw_msg_error_data(r->m->id, code, message, data, &len);
    (*r->n->st.errors)++;
    mcpgw_http_respond(r->conn, status, "application/json", NULL, json, len);
    free(json);
}

static void fail(struct req *r, int status, int code, const char *message)
{
    fail_data(r, status, code, message, NULL);
}

static void answer(struct req *r, json_object *result, int64_t ttl_ms)
{
    mcpgw_msg_complete26(result, ttl_ms);
    if (ttl_ms >= 0 && r->n->cfg.authz && mcpgw_authz_active(r->n->cfg.authz))
        /* what a list shows depends on the principal: no cache may share it across them */
        json_object_object_add(result, "cacheScope", json_object_new_string("private"));
    mcpgw_frame_result(r->n, r->conn, NULL, r->m->id, result);
}

/* ---- header checks ---- */

/* The header's value without the optional whitespace around it (RFC 9110 5.5). */
static void header_value(const struct mcpgw_http_header *hd, const char **v, size_t *len)
{
    const char *p = hd->value;
    size_t n = hd->value_len;
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    *v = p;
    *len = n;
}

/* Decode a header value that may use the "=?base64?...?=" form into out (NUL-terminated).
 * Returns the decoded length, or -1 for characters a header value may not carry or Base64 that
 * is not canonical (bad padding, a character outside the alphabet). */
static long decode_value(const char *v, size_t len, char *out, size_t cap)
{
    static const char pre[] = "=?base64?", suf[] = "?=";
    const size_t pl = sizeof(pre) - 1, sl = sizeof(suf) - 1;
    size_t b64len, pad = 0;
    int n;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
            return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] >= 0x7f)
            return -1;
    if (len < pl + sl || memcmp(v, pre, pl) != 0 || memcmp(v + len - sl, suf, sl) != 0) {
        if (len + 1 > cap)
            return -1;
        memcpy(out, v, len);
        out[len] = 0;
        return (long)len;
    }
    v += pl;
    b64len = len - pl - sl;
    if (b64len % 4 || b64len / 4 * 3 + 1 > cap)
        return -1;
    for (size_t i = 0; i < b64len; i++) {
        char ch = v[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '+' || ch == '/';
        if (ch == '=' && i >= b64len - 2) {
            pad++;
            continue;
        }
        if (!ok || pad)
            return -1;
    }
    if (pad && v[b64len - 1] != '=')
        return -1;
    n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)v, (int)b64len);
    if (n < 0 || (size_t)n < pad)
        return -1;
    n -= (int)pad;
    out[n] = 0;
    return n;
}

/* Mcp-Method must be the body's method, byte for byte (values are case-sensitive). */
static int check_method(struct req *r)
{
    const struct mcpgw_http_header *hd = mcpgw_http_find(r->h, "mcp-method");
    const char *v;
    size_t len;
    char msg[256];
    if (!hd) {
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH,
             "Header mismatch: the Mcp-Method header is required (the body's method)");
        return 0;
    }
    header_value(hd, &v, &len);
    if (len != strlen(r->m->method) || memcmp(v, r->m->method, len) != 0) {
        snprintf(msg, sizeof(msg),
                 "Header mismatch: Mcp-Method header value '%.*s' does not match body value "
                 "'%.100s'",
                 (int)(len > 100 ? 100 : len), v, r->m->method);
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH, msg);
        return 0;
    }
    return 1;
}

/* Mcp-Name must be the body's params.name (or params.uri), after Base64 decoding. */
static int check_name(struct req *r, const char *body)
{
    const struct mcpgw_http_header *hd = mcpgw_http_find(r->h, "mcp-name");
    char buf[2048], msg[256];
    const char *v;
    size_t len;
    long dl;
    if (!hd) {
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH,
             "Header mismatch: the Mcp-Name header is required for this method");
        return 0;
    }
    header_value(hd, &v, &len);
    dl = decode_value(v, len, buf, sizeof(buf));
    if (dl < 0 || (size_t)dl != strlen(body) || memcmp(buf, body, (size_t)dl) != 0) {
        snprintf(msg, sizeof(msg),
                 "Header mismatch: Mcp-Name header value '%.*s' does not match body value "
                 "'%.80s'",
                 (int)(len > 80 ? 80 : len), v, body);
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH, msg);
        return 0;
    }
    return 1;
}

/* One x-mcp-header parameter against its header: 1 when they agree (both absent, or equal). */
static int param_matches(const struct mcpgw_http_head *h, const char *hname, json_object *sch,
                         json_object *val, char *why, size_t whylen)
{
    char lname[160], buf[1024];
    const struct mcpgw_http_header *hd;
    const char *type = mcpgw_json_str(sch, "type"), *v;
    size_t len;
    long dl;
    snprintf(lname, sizeof(lname), "mcp-param-%s", hname);
    hd = mcpgw_http_find(h, lname);
    if (!val) {
        if (hd)
            snprintf(why, whylen, "Mcp-Param-%s is sent but the body has no value for it", hname);
        return !hd;
    }
    if (!hd) {
        snprintf(why, whylen, "Mcp-Param-%s is required: the body has a value for it", hname);
        return 0;
    }
    header_value(hd, &v, &len);
    if ((dl = decode_value(v, len, buf, sizeof(buf))) < 0) {
        snprintf(why, whylen, "Mcp-Param-%s has invalid characters or Base64", hname);
        return 0;
    }
    if (type && strcmp(type, "integer") == 0) {
        /* Numerically on both sides (docs/protocol-2026.md, check 7): the body's value is an
         * integer if it has no fraction (42.0 is 42) and lies in JavaScript's safe range, the
         * revision's bound, inside which a double holds it exactly. The header is a decimal
         * number only: strtod also reads 0x2A, inf and +42, and a balancer routing by the
         * header must see what the node runs with. */
        char *e;
        double d;
        int64_t want;
        if (!mcpgw_json_safe_int(val, &want)) {
            snprintf(why, whylen,
                     "the body's value for Mcp-Param-%s is not an integer within +-(2^53-1)",
                     hname);
            return 0;
        }
        if (!(buf[0] == '-' ? buf[1] >= '0' && buf[1] <= '9' : buf[0] >= '0' && buf[0] <= '9') ||
            strspn(buf, "0123456789-+.eE") != (size_t)dl)
            goto mismatch;
        d = strtod(buf, &e);
        if (*e || d != (double)want)
            goto mismatch;
        return 1;
    }
    if (json_object_is_type(val, json_type_boolean)) {
        if (strcmp(buf, json_object_get_boolean(val) ? "true" : "false") != 0)
            goto mismatch;
        return 1;
    }
    if (json_object_is_type(val, json_type_string) &&
        (size_t)dl == (size_t)json_object_get_string_len(val) &&
        memcmp(buf, json_object_get_string(val), (size_t)dl) == 0)
        return 1;
mismatch:
    snprintf(why, whylen, "Mcp-Param-%s header value does not match the body's value", hname);
    return 0;
}

/* Walk the properties chain of schema; for every x-mcp-header parameter compare the body value
 * at the same path. Returns 1 when all agree. */
static int walk_params(const struct mcpgw_http_head *h, json_object *schema, json_object *args,
                       char *why, size_t whylen, int depth)
{
    json_object *props = mcpgw_json_obj(schema, "properties");
    if (!props || depth > 8)
        return 1;
    json_object_object_foreach(props, key, sch)
    {
        const char *hname = mcpgw_json_str(sch, "x-mcp-header");
        json_object *val = NULL;
        if (args)
            json_object_object_get_ex(args, key, &val);
        if (hname && !param_matches(h, hname, sch, val, why, whylen))
            return 0;
        if (!hname && val && json_object_is_type(val, json_type_object) &&
            !walk_params(h, sch, val, why, whylen, depth + 1))
            return 0;
    }
    return 1;
}

/* The Mcp-Param-* headers of a tool whose schema names some (x-mcp-header). */
static int check_params(struct req *r, const struct mcpgw_tool *t, json_object *args)
{
    json_object *schema;
    char why[200], msg[256];
    int ok;
    if (!t->input_schema || !strstr(t->input_schema, "x-mcp-header"))
        return 1; /* the common case costs one strstr */
    schema = json_tokener_parse(t->input_schema);
    ok = walk_params(r->h, schema, args, why, sizeof(why), 0);
    json_object_put(schema);
    if (!ok) {
        snprintf(msg, sizeof(msg), "Header mismatch: %s", why);
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH, msg);
    }
    return ok;
}

/* ---- methods ---- */

static void m_discover(struct req *r)
{
    mcpgw_frame_result(r->n, r->conn, NULL, r->m->id, mcpgw_msg_discover_result());
}

static void list(struct req *r, enum mcpgw_protocol_list_kind k, int64_t ttl)
{
    json_object *result;
    if (mcpgw_protocol_list(r->n, k, r->m->params, &mcpgw_tasks_provider, &result) < 0) {
        fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params.cursor is not a cursor this server issued");
        return;
    }
    answer(r, result, ttl);
}

static void m_tools_list(struct req *r)
{
    list(r, MCPGW_LIST_TOOLS, TTL_STATIC_LIST_MS);
}

static void m_prompts_list(struct req *r)
{
    list(r, MCPGW_LIST_PROMPTS, TTL_STATIC_LIST_MS);
}

static void m_resources_list(struct req *r)
{
    list(r, MCPGW_LIST_RESOURCES, TTL_RESOURCES_MS);
}

static void m_templates_list(struct req *r)
{
    list(r, MCPGW_LIST_TEMPLATES, TTL_STATIC_LIST_MS);
}

static const char *required(struct req *r, const char *key)
{
    const char *v = mcpgw_json_str(r->m->params, key);
    if (!v) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Invalid params: params.%s is required (a string)", key);
        fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS, msg);
    }
    return v;
}

/* An MRTR round (mrtr.c) answered; 0 when name is not one. */
static int try_round(struct req *r, const char *name)
{
    /* The principal is the request's (transport.c sets it while the request is dispatched; a
     * round is answered before that returns), "" without authentication. */
    const char *who = r->n->req_principal ? r->n->req_principal : "";
    struct mcpgw_mrtr_req q = {
        r->n->state_ring, r->m->method, name, r->m->params, r->caps, who, r->n->cfg.state_ttl_ms};
    struct mcpgw_mrtr_answer a;
    if (!mcpgw_mrtr_serve(&q, &a))
        return 0;
    if (a.result)
        answer(r, a.result, -1);
    else
        fail_data(r, a.status, a.code, a.message, a.data);
    return 1;
}

/* With authorization rules: may this request use kind/name? 0 when refused: the step-up 403
 * was answered (*answered), or the caller answers as for an unknown name (guard.h). */
static int permitted(struct req *r, enum mcpgw_authz_kind kind, const char *name, int *answered)
{
    *answered = 0;
    return !r->n->cfg.authz ||
           mcpgw_guard_allows(r->n, r->conn, NULL, r->m->id, kind, name, answered);
}

static const struct mcpgw_tool *find_tool(struct mcpgw_node *n, const char *name)
{
    size_t np;
    const struct mcpgw_provider_ops *const *ps = mcpgw_protocol_providers(n, &np);
    const struct mcpgw_tool *t = NULL;
    for (size_t i = 0; i < np && !t; i++)
        t = ps[i]->tool ? ps[i]->tool(n, name) : NULL;
    return t ? t : mcpgw_tasks_provider.tool(n, name);
}

/* The request as the tasks extension (tasks.c) sees it. */
static struct mcpgw_tasks_req tasks_req(struct req *r)
{
    struct mcpgw_tasks_req q = {
        .n = r->n, .conn = r->conn, .id = r->m->id, .params = r->m->params, .caps = r->caps};
    q.principal = r->n->req_principal ? r->n->req_principal : "";
    return q;
}

/* A tool runs as a call of a session that lives as long as the call: the call machinery
 * (progress, logging, deadlines, the switch to SSE) is the session era's, unchanged. */
static void run_tool(struct req *r, const struct mcpgw_tool *t, json_object *args)
{
    struct mcpgw_session *s = xcalloc(1, sizeof(*s));
    json_object *meta = mcpgw_json_obj(r->m->params, "_meta");
    const char *level = mcpgw_json_str(meta, META_LEVEL);
    struct mcpgw_call *c;
    int li = level ? mcpgw_msg_log_level(level) : -1;
    s->stateless = 1;
    s->state = MCPGW_SESSION_READY;
    s->proto = MCPGW_PROTO_2025_11_25;
    /* No logLevel: no notifications/message at all (8 is above every level). */
    s->log_level = (int8_t)(li >= 0 ? li : 8);
    if (mcpgw_json_obj(r->caps, "sampling"))
        s->client_caps |= MCPGW_CAP_SAMPLING;
    if (mcpgw_json_obj(r->caps, "elicitation"))
        s->client_caps |= MCPGW_CAP_ELICITATION;
    if (mcpgw_json_obj(r->caps, "roots"))
        s->client_caps |= MCPGW_CAP_ROOTS;
    if (r->n->req_principal)
        s->principal = xstrdup(r->n->req_principal);
    c = mcpgw_call_new(r->n, s, r->m->id, r->conn, r->m->params);
    c->request = json_object_get(r->m->params); /* what bridged rounds are bound to */
    c->tool = t; /* an upstream's tool finds its catalogue entry through it (upprov.c) */
    mcpgw_call_set_deadline(c, r->n->cfg.tool_timeout_ms);
    t->call(c, args);
}

static void m_tools_call(struct req *r)
{
    const char *name = required(r, "name");
    const struct mcpgw_tool *t;
    json_object *args = NULL;
    char msg[160];
    int answered;
    if (!name || !check_name(r, name))
        return;
    if (json_object_object_get_ex(r->m->params, "arguments", &args) && args &&
        !json_object_is_type(args, json_type_object)) {
        fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params.arguments must be an object");
        return;
    }
    if ((t = find_tool(r->n, name)) && !permitted(r, MCPGW_AUTHZ_TOOL, name, &answered)) {
        if (answered)
            return;
        t = NULL;
    }
    if (!t) {
        snprintf(msg, sizeof(msg), "Invalid params: unknown tool '%.100s'", name);
        fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS, msg);
        return;
    }
    if (!check_params(r, t, args))
        return;
    {
        struct mcpgw_tasks_req q = tasks_req(r);
        if (mcpgw_tasks_call(&q, t, args))
            return;
    }
    if (!t->call) {
        try_round(r, name);
        return;
    }
    if (mcpgw_bridge26_claims(r->m)) { /* a retry of a round an upstream asked (bridge26.c) */
        mcpgw_bridge26_resume(r->n, r->conn, r->m, r->n->req_principal ? r->n->req_principal : "");
        return;
    }
    if (args) {
        run_tool(r, t, args);
    } else {
        args = json_object_new_object();
        run_tool(r, t, args);
        json_object_put(args);
    }
}

static struct mcpgw_defer *defer26(struct req *r, int64_t ttl_ms)
{
    struct mcpgw_defer *d = mcpgw_defer_new(r->n, r->conn, NULL, r->m->id);
    d->era26 = 1;
    d->era26_ttl_ms = ttl_ms;
    return d;
}

static void m_resources_read(struct req *r)
{
    const char *uri = required(r, "uri");
    size_t np;
    const struct mcpgw_provider_ops *const *ps = mcpgw_protocol_providers(r->n, &np);
    struct mcpgw_defer *d;
    json_object *data;
    char msg[300];
    int answered;
    if (!uri || !check_name(r, uri))
        return;
    if (!permitted(r, MCPGW_AUTHZ_RESOURCE, uri, &answered)) {
        if (answered)
            return;
        goto not_found;
    }
    d = defer26(r, TTL_RESOURCES_MS);
    for (size_t i = 0; i < np; i++)
        if (ps[i]->read && ps[i]->read(r->n, uri, d))
            return;
    mcpgw_defer_free(d);
not_found:
    snprintf(msg, sizeof(msg), "Resource not found: %.250s", uri);
    data = json_object_new_object();
    json_object_object_add(data, "uri", json_object_new_string(uri));
    fail_data(r, 200, MCPGW_JSONRPC_INVALID_PARAMS, msg, data);
}

static void m_prompts_get(struct req *r)
{
    const char *name = required(r, "name");
    size_t np;
    const struct mcpgw_provider_ops *const *ps = mcpgw_protocol_providers(r->n, &np);
    json_object *args = NULL;
    struct mcpgw_defer *d;
    char msg[200];
    int answered;
    if (!name || !check_name(r, name))
        return;
    if (json_object_object_get_ex(r->m->params, "arguments", &args) && args &&
        !json_object_is_type(args, json_type_object)) {
        fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params.arguments must be an object");
        return;
    }
    if (!permitted(r, MCPGW_AUTHZ_PROMPT, name, &answered)) {
        if (answered)
            return;
        goto unknown;
    }
    if (try_round(r, name))
        return;
    d = defer26(r, -1);
    for (size_t i = 0; i < np; i++)
        if (ps[i]->get_prompt && ps[i]->get_prompt(r->n, name, args, d))
            return;
    mcpgw_defer_free(d);
unknown:
    snprintf(msg, sizeof(msg), "Invalid params: unknown prompt '%.100s'", name);
    fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS, msg);
}

static void m_complete(struct req *r)
{
    json_object *ref = mcpgw_json_obj(r->m->params, "ref"),
                *arg = mcpgw_json_obj(r->m->params, "argument"), *vals;
    const char *type = mcpgw_json_str(ref, "type"), *rname = NULL, *aname, *value;
    size_t np;
    const struct mcpgw_provider_ops *const *ps = mcpgw_protocol_providers(r->n, &np);
    if (type && strcmp(type, "ref/prompt") == 0)
        rname = mcpgw_json_str(ref, "name");
    else if (type && strcmp(type, "ref/resource") == 0)
        rname = mcpgw_json_str(ref, "uri");
    aname = mcpgw_json_str(arg, "name");
    value = mcpgw_json_str(arg, "value");
    if (!rname || !aname || !value) {
        fail(r, 200, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params.ref (ref/prompt with name, or ref/resource with uri) and "
             "params.argument.name and .value (strings) are required");
        return;
    }
    vals = json_object_new_array();
    {
        int answered,
            kind = strcmp(type, "ref/prompt") == 0 ? MCPGW_AUTHZ_PROMPT : MCPGW_AUTHZ_RESOURCE;
        if (!permitted(r, (enum mcpgw_authz_kind)kind, rname, &answered)) {
            if (answered) {
                json_object_put(vals);
                return;
            }
            np = 0; /* as for a name nobody completes: no values */
        }
    }
    for (size_t i = 0; i < np; i++)
        if (ps[i]->complete && ps[i]->complete(r->n, type, rname, aname, value, vals))
            break;
    answer(r, mcpgw_msg_completion(vals), -1);
}

/* tasks/get, tasks/update, tasks/cancel: only for clients of the extension, and Mcp-Name must
 * name the task (so that a balancer routes by it). */
static void m_tasks(struct req *r)
{
    struct mcpgw_tasks_req q = tasks_req(r);
    const char *id;
    if (!mcpgw_tasks_declared(r->caps)) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "Missing required client capability: %.40s needs the %s extension", r->m->method,
                 MCPGW_TASKS_EXT);
        fail_data(r, 400, MCPGW_MSG_MISSING_CAPABILITY, msg,
                  json_tokener_parse("{\"requiredCapabilities\":{\"extensions\":{\"" MCPGW_TASKS_EXT
                                     "\":{}}}}"));
        return;
    }
    if (!(id = required(r, "taskId")) || !check_name(r, id))
        return;
    mcpgw_tasks_method(&q, r->m->method, id);
}

static void m_listen(struct req *r)
{
    mcpgw_listen_open(r->n, r->conn, r->h, r->m); /* node/listen.c */
}

/* The methods of the era, looked up by name; tools/call first, as the most frequent. */
static const struct method {
    const char *name;
    void (*fn)(struct req *r);
} methods[] = {
    {"tools/call", m_tools_call},         {"tools/list", m_tools_list},
    {"server/discover", m_discover},      {"resources/read", m_resources_read},
    {"resources/list", m_resources_list}, {"resources/templates/list", m_templates_list},
    {"prompts/list", m_prompts_list},     {"prompts/get", m_prompts_get},
    {"completion/complete", m_complete},  {"subscriptions/listen", m_listen},
};
/* The tasks extension's methods (tasks.c, mcpgw_tasks_is_method). */
static const struct method tasks_method = {"tasks/*", m_tasks};

/* params._meta, and the version in header and body: 1 when the request may go on. */
static int check_meta(struct req *r, enum mcpgw_era26_version hv)
{
    json_object *meta = mcpgw_json_obj(r->m->params, "_meta");
    const struct mcpgw_http_header *hd = mcpgw_http_find(r->h, "mcp-protocol-version");
    const char *pv = mcpgw_json_str(meta, META_VERSION), *v;
    size_t len;
    char msg[256];
    if (r->m->params && !json_object_is_type(r->m->params, json_type_object)) {
        fail(r, 400, MCPGW_JSONRPC_INVALID_PARAMS, "Invalid params: params must be an object");
        return 0;
    }
    if (hv == MCPGW_ERA_UNKNOWN && !pv && hd) {
        /* A version we do not speak, from a client of either era: name what we do speak. */
        char req[48];
        header_value(hd, &v, &len);
        snprintf(req, sizeof(req), "%.*s", (int)(len > 40 ? 40 : len), v);
        snprintf(msg, sizeof(msg), "Unsupported protocol version '%s'", req);
        fail_data(r, 400, MCPGW_MSG_UNSUPPORTED_VERSION, msg,
                  mcpgw_msg_unsupported_version_data(req));
        return 0;
    }
    if (!meta) {
        fail(r, 400, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params._meta is required (protocol version and client "
             "capabilities travel with every request)");
        return 0;
    }
    if (!pv) {
        fail(r, 400, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params._meta[\"" META_VERSION "\"] is required (a string)");
        return 0;
    }
    if (!(r->caps = mcpgw_json_obj(meta, META_CAPS))) {
        fail(r, 400, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: params._meta[\"" META_CAPS "\"] is required (an object)");
        return 0;
    }
    if (!hd) {
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH,
             "Header mismatch: the MCP-Protocol-Version header is required (the _meta "
             "protocol version)");
        return 0;
    }
    header_value(hd, &v, &len);
    if (len != strlen(pv) || memcmp(v, pv, len) != 0) {
        snprintf(msg, sizeof(msg),
                 "Header mismatch: MCP-Protocol-Version header value '%.*s' does not match body "
                 "value '%.40s'",
                 (int)(len > 40 ? 40 : len), v, pv);
        fail(r, 400, MCPGW_MSG_HEADER_MISMATCH, msg);
        return 0;
    }
    if (hv != MCPGW_ERA_2026) {
        snprintf(msg, sizeof(msg), "Unsupported protocol version '%.40s'", pv);
        fail_data(r, 400, MCPGW_MSG_UNSUPPORTED_VERSION, msg,
                  mcpgw_msg_unsupported_version_data(pv));
        return 0;
    }
    return 1;
}

void mcpgw_era26_post(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                      const struct mcpgw_http_head *h, const struct mcpgw_jsonrpc_msg *m)
{
    struct req r = {n, conn, h, m, NULL};
    enum mcpgw_era26_version hv = mcpgw_era26_header_version(h);
    const struct method *me = NULL;
    char msg[160];
    if (m->kind == MCPGW_JSONRPC_NOTIFICATION) {
        /* The revision defines no client notifications over HTTP; accepting is harmless. */
        (*n->st.notifications)++;
        mcpgw_http_respond(conn, 202, NULL, NULL, NULL, 0);
        return;
    }
    if (m->kind != MCPGW_JSONRPC_REQUEST) {
        fail(&r, 400, MCPGW_JSONRPC_INVALID_REQUEST,
             "Invalid Request: this protocol revision has no client responses (input goes in "
             "inputResponses of a retried request)");
        return;
    }
    (*n->st.requests)++;
    if (!check_meta(&r, hv))
        return;
    if (!check_method(&r))
        return;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(methods) && !me; i++)
        if (strcmp(m->method, methods[i].name) == 0)
            me = &methods[i];
    if (!me && mcpgw_tasks_is_method(m->method))
        me = &tasks_method;
    if (!me) {
        snprintf(msg, sizeof(msg), "Method not found: %.100s", m->method);
        fail(&r, 404, MCPGW_JSONRPC_METHOD_NOT_FOUND, msg);
        return;
    }
    me->fn(&r);
}

/* ---- the state key ring ---- */

int mcpgw_era26_start(struct mcpgw_node *n, char *err, size_t errlen)
{
    const char *env = getenv("MCPGW_STATE_KEYRING");
    mcpgw_tasks_start(n);
    if (n->cfg.state_keyring[0]) {
        n->state_ring = mcpgw_seal_ring_load(n->cfg.state_keyring, err, errlen);
    } else if (env && *env) {
        n->state_ring = mcpgw_seal_ring_parse(env, strlen(env), "MCPGW_STATE_KEYRING", err, errlen);
    } else {
        uint8_t key[MCPGW_SEAL_KEY_BYTES];
        char hex[2 * MCPGW_SEAL_KEY_BYTES + 1];
        if (RAND_bytes(key, sizeof(key)) != 1) {
            snprintf(err, errlen, "cannot generate a requestState key (RAND_bytes failed)");
            return -1;
        }
        for (size_t i = 0; i < sizeof(key); i++)
            snprintf(hex + 2 * i, 3, "%02x", key[i]);
        n->state_ring = mcpgw_seal_ring_parse(hex, strlen(hex), "random key", err, errlen);
        memset(key, 0, sizeof(key));
        memset(hex, 0, sizeof(hex));
        log_warn("no --state-keyring: MRTR requestState is sealed under a key of this process "
                 "only, so a retry must come back to this node");
    }
    if (n->state_ring && mcpgw_seal_ring_count(n->state_ring) == 0) {
        snprintf(err, errlen, "the requestState key ring holds no key");
        mcpgw_seal_ring_free(n->state_ring);
        n->state_ring = NULL;
    }
    return n->state_ring ? 0 : -1;
}

void mcpgw_era26_reload(struct mcpgw_node *n)
{
    struct mcpgw_seal_ring *r;
    char err[256];
    if (!n->cfg.state_keyring[0])
        return;
    r = mcpgw_seal_ring_load(n->cfg.state_keyring, err, sizeof(err));
    if (!r || mcpgw_seal_ring_count(r) == 0) {
        log_error("SIGHUP: keeping the current requestState key ring: %s",
                  r ? "the file holds no key" : err);
        mcpgw_seal_ring_free(r);
        return;
    }
    mcpgw_seal_ring_free(n->state_ring);
    n->state_ring = r;
    log_info("requestState key ring reloaded: %d key%s", mcpgw_seal_ring_count(r),
             mcpgw_seal_ring_count(r) == 1 ? "" : "s");
}

void mcpgw_era26_stop(struct mcpgw_node *n)
{
    mcpgw_tasks_stop(n);
    mcpgw_seal_ring_free(n->state_ring);
    n->state_ring = NULL;
}
