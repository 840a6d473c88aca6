/* transport.c - Streamable HTTP (2025-03-26 .. 2025-11-25) on /mcp, and the operator endpoints. */
#include "node/transport.h"

#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gossip/swim.h"
#include "node/auth.h"
#include "node/call.h"
#include "node/cluster.h"
#include "node/era26.h"
#include "node/frame.h"
#include "node/guard.h"
#include "node/limits.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/proto.h"
#include "node/protocol.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upstream.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plain JSON-RPC error with a null id, for refusals at the HTTP layer. */
static void refuse(struct mcpgw_node *n, struct mcpgw_http_conn *c, int status, int code,
                   const char *message, const char *extra_headers)
{
    size_t len;
    char *json = mcpgw_msg_error(NULL, code, message, &len);
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

int mcpgw_transport_host_allowed(const struct mcpgw_node_config *cfg, const char *v, size_t len)
{
    const char *h;
    size_t hl;
    host_part(v, len, &h, &hl);
    for (int i = 0; i < cfg->allowed_hosts.n; i++) {
        if (strcmp(cfg->allowed_hosts.v[i], "*") == 0)
            return 1;
        if (mcpgw_strieq(h, hl, cfg->allowed_hosts.v[i]))
            return 1;
    }
    return 0;
}

int mcpgw_transport_origin_allowed(const struct mcpgw_node_config *cfg, const char *v, size_t len)
{
    const char *p = memchr(v, ':', len);
    for (int i = 0; i < cfg->allowed_origins.n; i++)
        if (mcpgw_strieq(v, len, cfg->allowed_origins.v[i]) ||
            strcmp(cfg->allowed_origins.v[i], "*") == 0)
            return 1;
    /* scheme://host[:port] with an allowed host */
    if (!p || (size_t)(p - v) + 3 > len || p[1] != '/' || p[2] != '/')
        return 0;
    p += 3;
    return mcpgw_transport_host_allowed(cfg, p, len - (size_t)(p - v));
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

/* 1: one Content-Type, application/json; 0: another type or none; -1: more than one (which
 * one the sender meant is anybody's guess, and a proxy in front may have read the other). */
static int is_json_content(const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *ct = mcpgw_http_find(h, "content-type");
    size_t n;
    int count = 0;
    if (!ct)
        return 0;
    for (int i = 0; i < h->nheaders; i++)
        count += mcpgw_strieq(h->headers[i].name, h->headers[i].name_len, "content-type");
    if (count > 1)
        return -1;
    for (n = 0; n < ct->value_len && ct->value[n] != ';' && ct->value[n] != ' '; n++)
        ;
    return mcpgw_strieq(ct->value, n, "application/json");
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

/* GET and DELETE exist only for sessions: a 2026-07-28 client (its version header says so)
 * gets 405, as the revision asks; without the header the session era's 400 stays. */
static int has_session_or_405(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                              const struct mcpgw_http_head *h)
{
    if (mcpgw_http_find(h, "mcp-session-id") || mcpgw_era26_header_version(h) != MCPGW_ERA_2026)
        return 1;
    refuse(n, c, 405, -32000,
           "Method Not Allowed: protocol revision 2026-07-28 has no sessions and no GET stream; "
           "POST each request",
           "Allow: POST\r\n");
    return 0;
}

/* A request waiting for its session: held while the store claims it. */
struct pending {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn; /* NULL once the client left */
    enum mcpgw_http_method method;
    struct mcpgw_jsonrpc_msg msg;   /* POST: owned */
    char *lei;                      /* GET: Last-Event-ID, owned, or NULL */
    struct mcpgw_resume *early;     /* GET resuming a claimed session: its replay, sent along */
    char *principal;                /* the request's authenticated principal, owned, or NULL */
    char *forwarded;                /* with auth: its X-Forwarded-For (for the audit), or NULL */
    char *scopes, *claims;          /* with authorization rules: the request's grant, owned */
    char sid[MCPGW_SESSION_ID_MAX]; /* the session asked for, while it is claimed */
};

static void serve(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                  struct pending *p);
static int owner_refused(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                         struct pending *p);

/* A Last-Event-ID of the shared store's GET stream ("0.<counter>-<n>"): the part after "0.",
 * or NULL. */
static const char *shared_resume_point(struct mcpgw_node *n, const char *lei)
{
    uint64_t ms, sq;
    if (!lei || !mcpgw_store_shared(n->store) || lei[0] != '0' || lei[1] != '.' ||
        mcpgw_session_cluster_id_parse(lei + 2, strlen(lei + 2), &ms, &sq) < 0)
        return NULL;
    return lei + 2;
}

static void pending_free(struct pending *p)
{
    if (p->msg.root)
        mcpgw_jsonrpc_msg_deinit(&p->msg);
    free(p->lei);
    free(p->principal);
    free(p->forwarded);
    free(p->scopes);
    free(p->claims);
    free(p);
}

static void on_pending_conn_close(struct mcpgw_http_conn *c, void *arg)
{
    struct pending *p = arg;
    p->conn = NULL;
}

static void on_claimed(void *arg, struct mcpgw_session *s, int err)
{
    struct pending *p = arg;
    struct mcpgw_http_conn *c = p->conn;
    if (c)
        mcpgw_http_conn_set_close_cb(c, NULL, NULL);
    if (c) {
        if (s)
            serve(p->n, c, s, p);
        else if (err == MCPGW_STORE_FOREIGN)
            owner_refused(p->n, c, NULL, p);
        else if (err == MCPGW_STORE_GONE)
            refuse(p->n, c, 404, -32001, "Session not found: initialize a new session", NULL);
        else
            refuse(p->n, c, 503, -32603,
                   "Service Unavailable: the session store is unavailable; retry shortly",
                   "Retry-After: 1\r\n");
    }
    pending_free(p);
}

/* Find the session named by Mcp-Session-Id, here or (shared store) by claiming it; then serve.
 * Answers 400 (no header) or 404 (no such session) itself. Takes p. */
static void with_session(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                         const struct mcpgw_http_head *h, struct pending *p)
{
    const struct mcpgw_http_header *sid = mcpgw_http_find(h, "mcp-session-id"), *fwd;
    struct mcpgw_session *s;
    const char *after;
    if (n->auth && (fwd = mcpgw_http_find(h, "x-forwarded-for")) != NULL)
        p->forwarded = xstrndup(fwd->value, fwd->value_len > 64 ? 64 : fwd->value_len);
    if (n->resyncing) {
        refuse(n, c, 503, -32603,
               "Service Unavailable: this node stalled and is catching up with the cluster; "
               "retry",
               "Retry-After: 1\r\n");
        pending_free(p);
        return;
    }
    if (!sid || sid->value_len == 0) {
        refuse(n, c, 400, -32000, "Bad Request: Mcp-Session-Id header is required", NULL);
        pending_free(p);
        return;
    }
    s = mcpgw_registry_lookup(n->reg, sid->value, sid->value_len);
    if (s) {
        serve(n, c, s, p);
        pending_free(p);
        return;
    }
    p->n = n;
    p->conn = c;
    snprintf(p->sid, sizeof(p->sid), "%.*s", (int)sid->value_len, sid->value);
    mcpgw_http_conn_set_close_cb(c, on_pending_conn_close, p);
    after = p->method == MCPGW_HTTP_GET ? shared_resume_point(n, p->lei) : NULL;
    mcpgw_store_set_claimant(n->store, p->principal); /* NULL without authentication */
    mcpgw_cluster_claim(n, sid->value, sid->value_len, after, on_claimed, p, &p->early);
    mcpgw_store_set_claimant(n->store, NULL);
}

static void serve_get(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                      const char *lei, struct mcpgw_resume **early)
{
    uint32_t stream;
    uint64_t seq;
    const char *after = shared_resume_point(n, lei);
    if (!lei) {
        if (mcpgw_store_shared(n->store))
            mcpgw_stream_resume(n, s, c, NULL);
        else
            mcpgw_stream_attach(n, s, c, 0, 0);
        return;
    }
    if (after) {
        if (*early) {
            mcpgw_stream_resume_claimed(n, s, c, after, *early);
            *early = NULL;
        } else {
            mcpgw_stream_resume(n, s, c, after);
        }
        return;
    }
    if (mcpgw_session_event_id_parse(lei, strlen(lei), &stream, &seq) < 0) {
        refuse(n, c, 400, -32000, "Bad Request: Last-Event-ID is not an event id of this server",
               NULL);
        return;
    }
    if (stream == 0) {
        if (mcpgw_store_shared(n->store))
            mcpgw_stream_resume(n, s, c, NULL);
        else
            mcpgw_stream_attach(n, s, c, 1, seq);
    } else {
        /* An id from before the session moved here names an earlier owner's stream: its number
         * may be another request's here. */
        struct mcpgw_call *call = seq < s->seq_base ? NULL : mcpgw_call_find_stream(s, stream);
        if (call) {
            mcpgw_call_attach(call, c, seq);
        } else {
            /* The request finished, or ran on a node that is gone: replay what is left of its
             * stream here, then end it. */
            mcpgw_frame_sse_begin(n, s, c, stream);
            if (seq >= s->seq_base)
                mcpgw_frame_replay(n, s, c, stream, seq);
            mcpgw_http_stream_end(c);
        }
    }
}

/* A session id presented by a principal other than its creator: answered exactly as an unknown
 * session (nothing tells the caller the id exists), counted and audited. */
static int owner_refused(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                         struct pending *p)
{
    const char *rid = NULL;
    char sid[MCPGW_SESSION_ID_MAX];
    if (s && mcpgw_auth_owner_ok(s->principal, p->principal))
        return 0;
    if (p->msg.root && p->msg.id)
        rid = json_object_to_json_string_ext(p->msg.id, JSON_C_TO_STRING_PLAIN);
    snprintf(sid, sizeof(sid), "%s", s ? s->id : p->sid);
    mcpgw_auth_audit_session(n->auth, c, p->principal, sid, rid, p->forwarded);
    refuse(n, c, 404, -32001, "Session not found: initialize a new session", NULL);
    return 1;
}

static void serve_request(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                          struct pending *p);

static void serve(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                  struct pending *p)
{
    if (n->auth && owner_refused(n, c, s, p))
        return;
    if (p->scopes && p->msg.kind == MCPGW_JSONRPC_REQUEST) {
        /* authorization rules see the request's grant while it is dispatched (guard.h) */
        const struct mcpgw_guard_who *outer = n->req_who;
        struct mcpgw_guard_who who = {
            {p->scopes, p->claims ? p->claims : ""}, p->principal, p->forwarded};
        n->req_who = &who;
        serve_request(n, c, s, p);
        n->req_who = outer;
        return;
    }
    serve_request(n, c, s, p);
}

static void serve_request(struct mcpgw_node *n, struct mcpgw_http_conn *c, struct mcpgw_session *s,
                          struct pending *p)
{
    mcpgw_registry_touch(n->reg, s, mcpgw_now_ms());
    mcpgw_store_touch(n->store, s);
    switch (p->method) {
    case MCPGW_HTTP_GET:
        serve_get(n, c, s, p->lei, &p->early);
        break;
    case MCPGW_HTTP_DELETE:
        mcpgw_cluster_destroy(n, s);
        (*n->st.sessions_deleted)++;
        mcpgw_http_respond(c, 200, NULL, NULL, NULL, 0);
        break;
    default:
        switch (p->msg.kind) {
        case MCPGW_JSONRPC_REQUEST:
            mcpgw_protocol_request(n, s, c, &p->msg);
            break;
        case MCPGW_JSONRPC_NOTIFICATION:
            mcpgw_protocol_notification(n, s, c, &p->msg);
            break;
        default:
            mcpgw_protocol_response(n, s, &p->msg);
            mcpgw_http_respond(c, 202, NULL, NULL, NULL, 0);
            break;
        }
    }
}

static void handle_post(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                        const struct mcpgw_http_req *req, const char *principal)
{
    struct pending *p;
    json_object *bad_id = NULL;
    const char *why = NULL;
    enum mcpgw_era26_version era;
    int rc;

    switch (is_json_content(&req->head)) {
    case -1:
        refuse(n, c, 400, -32000, "Bad Request: more than one Content-Type header", NULL);
        return;
    case 0:
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
    era = mcpgw_era26_header_version(&req->head);
    p = xcalloc(1, sizeof(*p));
    p->method = MCPGW_HTTP_POST;
    p->principal = principal ? xstrdup(principal) : NULL;
    if (n->req_who) { /* kept for a request that waits for its session's claim */
        p->scopes = xstrdup(n->req_who->grant.scopes);
        p->claims = xstrdup(n->req_who->grant.claims);
    }
    rc = mcpgw_jsonrpc_parse(req->body, req->body_len, &p->msg, &bad_id, &why);
    if (rc) {
        size_t len;
        char *json = mcpgw_msg_error(bad_id, rc, why, &len);
        (*n->st.errors)++;
        mcpgw_http_respond(c, 400, "application/json", NULL, json, len);
        free(json);
        json_object_put(bad_id);
        pending_free(p);
        return;
    }
    /* The era, per request: the header decides, except that a request without a session whose
     * _meta names a version is of the 2026-07-28 era even when its header is missing or old
     * (it is then refused there). Session-era requests carry a session: one lookup more. */
    if (era != MCPGW_ERA_SESSION ||
        (p->msg.kind != MCPGW_JSONRPC_RESULT && p->msg.kind != MCPGW_JSONRPC_ERROR &&
         !mcpgw_http_find(&req->head, "mcp-session-id") &&
         strcmp(p->msg.method, "initialize") != 0 && mcpgw_era26_claims(&p->msg))) {
        n->req_principal = principal; /* MRTR binds requestState to it */
        mcpgw_era26_post(n, c, &req->head, &p->msg);
        n->req_principal = NULL;
        pending_free(p);
        return;
    }
    if (p->msg.kind == MCPGW_JSONRPC_REQUEST && !mcpgw_http_find(&req->head, "mcp-session-id")) {
        if (strcmp(p->msg.method, "initialize") == 0) {
            (*n->st.requests)++;
            n->req_principal = principal; /* the new session is bound to it */
            struct mcpgw_session *s = mcpgw_protocol_initialize(n, c, &p->msg);
            if (s && n->limits)
                mcpgw_limits_session_created(n->limits, s->id);
            n->req_principal = NULL;
            pending_free(p);
            return;
        }
        if (strcmp(p->msg.method, "ping") == 0) {
            (*n->st.requests)++;
            mcpgw_frame_result(n, c, NULL, p->msg.id, json_object_new_object());
            pending_free(p);
            return;
        }
    }
    with_session(n, c, &req->head, p);
}

static void handle_get(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                       const struct mcpgw_http_req *req, const char *principal)
{
    const struct mcpgw_http_header *lei;
    struct pending *p;
    if (!accepts(&req->head, "text/event-stream")) {
        refuse(n, c, 406, -32000, "Not Acceptable: Accept must list text/event-stream", NULL);
        return;
    }
    if (!has_session_or_405(n, c, &req->head) || !version_ok(n, c, &req->head))
        return;
    p = xcalloc(1, sizeof(*p));
    p->method = MCPGW_HTTP_GET;
    p->principal = principal ? xstrdup(principal) : NULL;
    if ((lei = mcpgw_http_find(&req->head, "last-event-id")) != NULL)
        p->lei = xstrndup(lei->value, lei->value_len > 128 ? 128 : lei->value_len);
    with_session(n, c, &req->head, p);
}

static void handle_delete(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                          const struct mcpgw_http_req *req, const char *principal)
{
    struct pending *p;
    if (!has_session_or_405(n, c, &req->head) || !version_ok(n, c, &req->head))
        return;
    p = xcalloc(1, sizeof(*p));
    p->method = MCPGW_HTTP_DELETE;
    p->principal = principal ? xstrdup(principal) : NULL;
    with_session(n, c, &req->head, p);
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
    if (n->gossip) {
        char labels[64];
        snprintf(labels, sizeof(labels), "node=\"%s\"", n->cfg.node_id);
        mcpgw_gossip_udp_export_stats(mcpgw_gossip_stats(n->gossip), n->metrics, labels);
    }
    mcpgw_metrics_render(n->metrics, out);
    mcpgw_http_respond(c, 200, "text/plain; version=0.0.4", NULL, evbuffer_pullup(out, -1),
                       evbuffer_get_length(out));
    evbuffer_free(out);
}

/* 200 "ready", then one line per upstream: an upstream's state never makes the node not ready
 * (docs/federation.md, "Failure handling"). */
static void respond_ready(struct mcpgw_node *n, struct mcpgw_http_conn *c)
{
    char buf[8192] = "ready\n";
    size_t len = 6;
    if (n->ups)
        len += mcpgw_upstream_health(n, buf + len, sizeof(buf) - len);
    mcpgw_http_respond(c, 200, "text/plain", NULL, buf, len);
}

/* With --balancer-secret, /mcp serves only requests a balancer forwarded: the secret it adds,
 * compared in constant time. Answers 403 otherwise and returns 0. */
static int from_balancer(struct mcpgw_node *n, struct mcpgw_http_conn *c,
                         const struct mcpgw_http_req *req)
{
    const struct mcpgw_http_header *h = mcpgw_http_find(&req->head, "x-mcpgw-balancer");
    const char *want = n->cfg.balancer_secret;
    size_t wl = strlen(want);
    if (h && h->value_len == wl && CRYPTO_memcmp(h->value, want, wl) == 0)
        return 1;
    log_debug("refused a request that did not come through a balancer");
    refuse(n, c, 403, -32000, "Forbidden: this node serves requests only through its balancer",
           NULL);
    return 0;
}

void mcpgw_transport_handle(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct mcpgw_node *n = arg;
    const struct mcpgw_http_header *host = mcpgw_http_find(&req->head, "host"),
                                   *origin = mcpgw_http_find(&req->head, "origin");
    struct mcpgw_auth_who who;
    struct mcpgw_guard_who gw;
    char fwdbuf[80];
    const char *principal = NULL;

    if (mcpgw_strieq(req->path, req->path_len, "/healthz")) {
        mcpgw_http_respond(c, 200, "text/plain", NULL, "ok\n", 3);
        return;
    }
    if (mcpgw_strieq(req->path, req->path_len, "/readyz")) {
        static const char degraded[] = "degraded: session store unavailable\n",
                          draining[] = "draining\n";
        if (n->draining)
            mcpgw_http_respond(c, 503, "text/plain", NULL, draining, sizeof(draining) - 1);
        else if (!mcpgw_store_up(n->store))
            mcpgw_http_respond(c, 503, "text/plain", NULL, degraded, sizeof(degraded) - 1);
        else
            respond_ready(n, c);
        return;
    }
    if (mcpgw_strieq(req->path, req->path_len, "/metrics")) {
        handle_metrics(n, c);
        return;
    }
    if (n->auth && mcpgw_auth_well_known(n->auth, c, req))
        return;
    if (n->cfg.balancer_secret[0] && !from_balancer(n, c, req))
        return;
    if (!(req->path_len == 4 && memcmp(req->path, "/mcp", 4) == 0)) {
        refuse(n, c, 404, -32000, "Not Found: the MCP endpoint is /mcp", NULL);
        return;
    }
    /* DNS-rebinding protection comes before anything else. */
    if (!host || !mcpgw_transport_host_allowed(&n->cfg, host->value, host->value_len)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Forbidden: Host '%.*s' is not allowed",
                 host ? (int)(host->value_len > 80 ? 80 : host->value_len) : 6,
                 host ? host->value : "(none)");
        refuse(n, c, 403, -32000, msg, NULL);
        return;
    }
    if (origin && !mcpgw_transport_origin_allowed(&n->cfg, origin->value, origin->value_len)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Forbidden: Origin '%.*s' is not allowed",
                 (int)(origin->value_len > 80 ? 80 : origin->value_len), origin->value);
        refuse(n, c, 403, -32000, msg, NULL);
        return;
    }
    if (n->auth) {
        if (!mcpgw_auth_check(n->auth, c, req, &who))
            return; /* answered 401/403/503, or parked until the JWKS fetch ends */
        principal = who.principal;
        if (n->cfg.authz) { /* the rules see the grant while the request is dispatched */
            const struct mcpgw_http_header *fwd = mcpgw_http_find(&req->head, "x-forwarded-for");
            if (fwd)
                snprintf(fwdbuf, sizeof(fwdbuf), "%.*s",
                         (int)(fwd->value_len > 64 ? 64 : fwd->value_len), fwd->value);
            gw.grant.scopes = who.scopes ? who.scopes : "";
            gw.grant.claims = who.claims ? who.claims : "";
            gw.principal = principal;
            gw.forwarded = fwd ? fwdbuf : NULL;
            n->req_who = &gw;
        }
    }
    if (n->limits && !mcpgw_limits_admit(n->limits, c, req, principal)) {
        if (n->req_who == &gw) /* answered 429, or parked until Redis answers */
            n->req_who = NULL;
        return;
    }
    switch (req->head.method) {
    case MCPGW_HTTP_POST:
        handle_post(n, c, req, principal);
        break;
    case MCPGW_HTTP_GET:
        handle_get(n, c, req, principal);
        break;
    case MCPGW_HTTP_DELETE:
        handle_delete(n, c, req, principal);
        break;
    default:
        refuse(n, c, 405, -32000, "Method Not Allowed: use POST, GET or DELETE",
               "Allow: POST, GET, DELETE\r\n");
        break;
    }
    if (n->req_who == &gw)
        n->req_who = NULL;
    if (n->limits)
        mcpgw_limits_served(n->limits);
}
