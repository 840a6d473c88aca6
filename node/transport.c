/* transport.c - Streamable HTTP (2025-03-26 .. 2025-11-25) on /mcp, and the operator endpoints. */
#include "node/transport.h"

#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/call.h"
#include "node/node-t.h"
#include "node/protocol.h"
#include "node/registry.h"
#include "node/session.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plain JSON-RPC error with a null id, for refusals at the HTTP layer. */
static void refuse(struct mcpgw_node *n, struct mcpgw_http_conn *c, int status, int code,
                   const char *message, const char *extra_headers)
{
    size_t len;
    char *json = mcpgw_jsonrpc_error(NULL, code, message, NULL, &len);
    (*n->st.http_rejects)++;
    mcpgw_http_respond(c, status, "application/json", extra_headers, json, len);
    free(json);
}

/* The hostname part of a Host value: "[::1]:8080" -> "::1", "localhost:80" -> "localhost". */
static void host_part(const char *v, size_t len, const char **h, size_t *hl)
{
    if (len && v[0] == '[') {
        const char *rb = memchr(v, ']', len);
        *h = v + 1;
        *hl = rb ? (size_t)(rb - v - 1) : len - 1;
        return;
    }
    *h = v;
    *hl = len;
    for (size_t i = 0; i < len; i++)
        if (v[i] == ':') {
            *hl = i;
            break;
        }
}

int mcpgw_host_allowed(const struct mcpgw_node_config *cfg, const char *v, size_t len)
{
    const char *h;
    size_t hl;
    host_part(v, len, &h, &hl);
    for (int i = 0; i < cfg->nallowed_hosts; i++) {
        if (strcmp(cfg->allowed_hosts[i], "*") == 0)
            return 1;
        if (mcpgw_strieq(h, hl, cfg->allowed_hosts[i]))
            return 1;
    }
    return 0;
}

int mcpgw_origin_allowed(const struct mcpgw_node_config *cfg, const char *v, size_t len)
{
    const char *p = memchr(v, ':', len);
    for (int i = 0; i < cfg->nallowed_origins; i++)
        if (mcpgw_strieq(v, len, cfg->allowed_origins[i]) ||
            strcmp(cfg->allowed_origins[i], "*") == 0)
            return 1;
    /* scheme://host[:port] with an allowed host */
    if (!p || (size_t)(p - v) + 3 > len || p[1] != '/' || p[2] != '/')
        return 0;
    p += 3;
    return mcpgw_host_allowed(cfg, p, len - (size_t)(p - v));
}

static int accepts(const struct mcpgw_http_head *h, const char *type)
{
    const struct mcpgw_http_header *a = mcpgw_http_find(h, "accept");
    char major[32];
    const char *slash = strchr(type, '/');
    if (!a)
        return 0;
    if (mcpgw_http_list_has(a->value, a->value_len, type) ||
        mcpgw_http_list_has(a->value, a->value_len, "*/*"))
        return 1;
    snprintf(major, sizeof(major), "%.*s/*", (int)(slash - type), type);
    return mcpgw_http_list_has(a->value, a->value_len, major);
}

static int is_json_content(const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *ct = mcpgw_http_find(h, "content-type");
    size_t n;
    if (!ct)
        return 0;
    for (n = 0; n < ct->value_len && ct->value[n] != ';' && ct->value[n] != ' '; n++)
        ;
    return mcpgw_strieq(ct->value, n, "application/json");
}

/* Finds the session named by Mcp-Session-Id. Answers 400 (missing) or 404 (unknown) itself and
 * returns NULL then. */
static struct mcpgw_session *session_of(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                                        const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *sid = mcpgw_http_find(h, "mcp-session-id");
    struct mcpgw_session *s;
    if (!sid || sid->value_len == 0) {
        refuse(n, c, 400, -32000, "Bad Request: Mcp-Session-Id header is required", NULL);
        return NULL;
    }
    s = mcpgw_registry_lookup(n->reg, sid->value, sid->value_len);
    if (!s) {
        refuse(n, c, 404, -32001, "Session not found: initialize a new session", NULL);
        return NULL;
    }
    mcpgw_registry_touch(n->reg, s, mcpgw_now_ms());
    return s;
}

/* MCP-Protocol-Version: absent means 2025-03-26; any supported revision is accepted. */
static int version_ok(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                      const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *pv = mcpgw_http_find(h, "mcp-protocol-version");
    char msg[160];
    if (!pv || mcpgw_proto_parse(pv->value, pv->value_len) >= 0)
        return 1;
    snprintf(msg, sizeof(msg),
             "Bad Request: unsupported MCP-Protocol-Version '%.*s' (supported: 2025-11-25, "
             "2025-06-18, 2025-03-26)",
             (int)(pv->value_len > 40 ? 40 : pv->value_len), pv->value);
    refuse(n, c, 400, -32000, msg, NULL);
    return 0;
}

static void handle_post(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                        const struct mcpgw_http_req *req)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = NULL;
    const char *why = NULL;
    struct mcpgw_session *s;
    int rc;

    if (!is_json_content(&req->head)) {
        refuse(n, c, 415, -32000, "Unsupported Media Type: Content-Type must be application/json",
               NULL);
        return;
    }
    if (!accepts(&req->head, "application/json") || !accepts(&req->head, "text/event-stream")) {
        refuse(n, c, 406, -32000,
               "Not Acceptable: Accept must list both application/json and text/event-stream",
               NULL);
        return;
    }
    if (!version_ok(n, c, &req->head))
        return;
    rc = mcpgw_jsonrpc_parse(req->body, req->body_len, &m, &bad_id, &why);
    if (rc) {
        size_t len;
        char *json = mcpgw_jsonrpc_error(bad_id, rc, why, NULL, &len);
        (*n->st.errors)++;
        mcpgw_http_respond(c, 400, "application/json", NULL, json, len);
        free(json);
        json_object_put(bad_id);
        return;
    }
    if (m.kind == MCPGW_JSONRPC_REQUEST && strcmp(m.method, "initialize") == 0 &&
        !mcpgw_http_find(&req->head, "mcp-session-id")) {
        (*n->st.requests)++;
        mcpgw_protocol_initialize(n, c, &m);
        goto out;
    }
    if (m.kind == MCPGW_JSONRPC_REQUEST && strcmp(m.method, "ping") == 0 &&
        !mcpgw_http_find(&req->head, "mcp-session-id")) {
        (*n->st.requests)++;
        mcpgw_respond_result(n, c, NULL, m.id, json_object_new_object());
        goto out;
    }
    if (!(s = session_of(n, c, &req->head)))
        goto out;
    switch (m.kind) {
    case MCPGW_JSONRPC_REQUEST:
        mcpgw_protocol_request(n, s, c, &m);
        break;
    case MCPGW_JSONRPC_NOTIFICATION:
        mcpgw_protocol_notification(n, s, &m);
        mcpgw_http_respond(c, 202, NULL, NULL, NULL, 0);
        break;
    default:
        mcpgw_protocol_response(n, s, &m);
        mcpgw_http_respond(c, 202, NULL, NULL, NULL, 0);
        break;
    }
out:
    mcpgw_jsonrpc_msg_deinit(&m);
}

static void handle_get(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                       const struct mcpgw_http_req *req)
{
    const struct mcpgw_http_header *lei;
    struct mcpgw_session *s;
    uint32_t stream;
    uint64_t seq;

    if (!accepts(&req->head, "text/event-stream")) {
        refuse(n, c, 406, -32000, "Not Acceptable: Accept must list text/event-stream", NULL);
        return;
    }
    if (!version_ok(n, c, &req->head) || !(s = session_of(n, c, &req->head)))
        return;
    lei = mcpgw_http_find(&req->head, "last-event-id");
    if (!lei) {
        mcpgw_session_attach_get(n, s, c, 0, 0);
        return;
    }
    if (mcpgw_event_id_parse(lei->value, lei->value_len, &stream, &seq) < 0) {
        refuse(n, c, 400, -32000, "Bad Request: Last-Event-ID is not an event id of this server",
               NULL);
        return;
    }
    if (stream == 0) {
        mcpgw_session_attach_get(n, s, c, 1, seq);
    } else {
        struct mcpgw_call *call = mcpgw_call_find_stream(s, stream);
        if (call) {
            mcpgw_call_attach(call, c, seq);
        } else {
            /* The request finished: replay what is left of its stream, then end it. */
            mcpgw_sse_begin(n, s, c, stream);
            mcpgw_session_replay_to(n, s, c, stream, seq);
            mcpgw_http_stream_end(c);
        }
    }
}

static void handle_delete(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                          const struct mcpgw_http_req *req)
{
    struct mcpgw_session *s;
    if (!version_ok(n, c, &req->head) || !(s = session_of(n, c, &req->head)))
        return;
    mcpgw_node_session_destroy(n, s);
    (*n->st.sessions_deleted)++;
    mcpgw_http_respond(c, 200, NULL, NULL, NULL, 0);
}

static void count_stream(void *arg, struct mcpgw_session *s)
{
    if (s->get_stream)
        (*(int64_t *)arg)++;
}

static void handle_metrics(struct mcpgw_node *n, struct mcpgw_http_conn *c)
{
    struct evbuffer *out = evbuffer_new();
    struct mcpgw_registry_stats rs;
    int64_t streams = 0;
    mcpgw_registry_stats(n->reg, &rs);
    mcpgw_registry_foreach(n->reg, count_stream, &streams);
    *n->st.sessions = (int64_t)rs.sessions;
    *n->st.streams = streams;
    mcpgw_metrics_render(n->metrics, out);
    mcpgw_http_respond(c, 200, "text/plain; version=0.0.4", NULL, evbuffer_pullup(out, -1),
                       evbuffer_get_length(out));
    evbuffer_free(out);
}

void mcpgw_node_handle(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct mcpgw_node *n = arg;
    const struct mcpgw_http_header *host = mcpgw_http_find(&req->head, "host"),
                                   *origin = mcpgw_http_find(&req->head, "origin");

    if (mcpgw_strieq(req->path, req->path_len, "/healthz")) {
        mcpgw_http_respond(c, 200, "text/plain", NULL, "ok\n", 3);
        return;
    }
    if (mcpgw_strieq(req->path, req->path_len, "/readyz")) {
        mcpgw_http_respond(c, 200, "text/plain", NULL, "ready\n", 6);
        return;
    }
    if (mcpgw_strieq(req->path, req->path_len, "/metrics")) {
        handle_metrics(n, c);
        return;
    }
    if (!(req->path_len == 4 && memcmp(req->path, "/mcp", 4) == 0)) {
        refuse(n, c, 404, -32000, "Not Found: the MCP endpoint is /mcp", NULL);
        return;
    }
    /* DNS-rebinding protection comes before anything else. */
    if (!host || !mcpgw_host_allowed(&n->cfg, host->value, host->value_len)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Forbidden: Host '%.*s' is not allowed",
                 host ? (int)(host->value_len > 80 ? 80 : host->value_len) : 6,
                 host ? host->value : "(none)");
        refuse(n, c, 403, -32000, msg, NULL);
        return;
    }
    if (origin && !mcpgw_origin_allowed(&n->cfg, origin->value, origin->value_len)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Forbidden: Origin '%.*s' is not allowed",
                 (int)(origin->value_len > 80 ? 80 : origin->value_len), origin->value);
        refuse(n, c, 403, -32000, msg, NULL);
        return;
    }
    switch (req->head.method) {
    case MCPGW_HTTP_POST:
        handle_post(n, c, req);
        break;
    case MCPGW_HTTP_GET:
        handle_get(n, c, req);
        break;
    case MCPGW_HTTP_DELETE:
        handle_delete(n, c, req);
        break;
    default:
        refuse(n, c, 405, -32000, "Method Not Allowed: use POST, GET or DELETE",
               "Allow: POST, GET, DELETE\r\n");
        break;
    }
}
