/* auth.c - the node's OAuth 2.1 resource server: bearer tokens at /mcp, RFC 9728 metadata,
 * JWKS fetching on the loop, and the audit log of refusals. */
#include "node/auth.h"

#include "common/apikey.h"
#include "common/httpclient.h"
#include "common/jsonrpc.h"
#include "common/jwks.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/tokcache.h"
#include "common/util.h"
#include "node/authz.h"
#include "node/config.h"
#include "node/msg.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WELL_KNOWN            "/.well-known/oauth-protected-resource"
#define TOKCACHE_ENTRIES      16384
#define TOKCACHE_MAX_AGE      300   /* s: a key dropped from the JWKS is honoured this long */
#define JWKS_TIMEOUT_MS       10000 /* one fetch */
#define PARKED_MAX            4096  /* requests waiting for a fetch; more are refused (503) */
#define PARKED_BODY_MAX       (1 << 20)
#define INTROSPECT_MAX        256 /* introspections in flight; more tokens get 503 */
#define INTROSPECT_TIMEOUT_MS 5000
#define INTROSPECT_DOC_MAX    (64 << 10)
/* "id:secret" for HTTP Basic, each form-encoded (3 bytes a character at most), at the longest
 * the settings allow, and the header that carries it in base64. */
#define BASIC_PLAIN_MAX                                                                            \
    (3 * (sizeof(((struct mcpgw_node_config *)0)->auth_introspect_client) +                        \
          sizeof(((struct mcpgw_node_config *)0)->auth_introspect_secret)))
#define BASIC_HDR_MAX (sizeof("Authorization: Basic ") + 4 * ((BASIC_PLAIN_MAX + 2) / 3))

enum { MODE_JWT = MCPGW_AUTH_MODE_JWT, MODE_APIKEY = MCPGW_AUTH_MODE_APIKEY };

static const char *const reason_names[MCPGW_AUTH_R_COUNT] = {
    "no_token",          "malformed",    "alg_not_allowed",      "unknown_kid",
    "bad_signature",     "wrong_issuer", "wrong_audience",       "expired",
    "not_yet_valid",     "bad_apikey",   "insufficient_scope",   "keys_unavailable",
    "session_principal", "inactive",     "introspection_failed", "rule_denied"};

const char *mcpgw_auth_reason_str(int r)
{
    return r >= 0 && r < MCPGW_AUTH_R_COUNT ? reason_names[r] : "?";
}

/* A request held while the JWKS is fetched: a deep copy of what the handler reads. */
struct parked {
    struct parked *next;
    struct mcpgw_auth *a;
    struct mcpgw_http_conn *conn; /* NULL once the client left */
    struct mcpgw_http_req req;    /* points into buf */
    char buf[];
};

struct mcpgw_auth {
    const struct mcpgw_node_config *cfg;
    struct event_base *base;
    int mode;
    struct mcpgw_jwt_config jc;
    char meta_url[1200];  /* where the metadata is, as clients outside reach it */
    char scope_hdr[512];  /* the required scopes, space-separated, for WWW-Authenticate */
    const char *res_path; /* the resource's path ("/mcp"), in cfg->auth_resource */
    struct mcpgw_hc *hc;
    struct mcpgw_hc_req *fetch;
    struct evbuffer *fetch_body;
    struct mcpgw_jwks *keys; /* NULL until the first fetch succeeds */
    struct mcpgw_jwks_sched sched;
    struct event *timer;
    struct mcpgw_tokcache *cache;
    struct mcpgw_apikey_set *apikeys;
    struct parked *parked; /* waiting for the JWKS fetch */
    int nparked;           /* on every list */
    int retrying;          /* inside parked_release */
    struct introspection *introspections;
    int nintrospections;
    char introspect_auth[BASIC_HDR_MAX]; /* "Authorization: Basic ..." or "" */
    mcpgw_http_handler_fn retry;
    void *retry_arg;
    uint64_t *refused[MCPGW_AUTH_R_COUNT];
    uint64_t *jwks_fetches, *jwks_failures, *cache_hits;
};

/* ---- configuration ---- */

/* ---- the audit log and counters ---- */

/* Copy printable ASCII of v[0..len) into out, at most outlen-1 bytes; others become '?'. */
static void clean(char *out, size_t outlen, const char *v, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < outlen; i++)
        out[k++] = v[i] >= 0x21 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\' ? v[i] : '?';
    out[k] = '\0';
}

static void peer_of(struct mcpgw_http_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(out, outlen, "-");
    if (!c || getpeername(mcpgw_http_conn_fd(c), (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)outlen);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)outlen);
}

/* One line per refusal, logfmt with quoted values: never the token. forwarded is the
 * X-Forwarded-For the balancer added (the client's address behind it). */
static void audit(struct mcpgw_auth *a, struct mcpgw_http_conn *c, int status, int reason,
                  const char *principal, const char *session, const char *request_id,
                  const char *forwarded, const char *detail)
{
    char p[MCPGW_AUTH_PRINCIPAL_MAX], sid[80], rid[80], peer[64], fwd[80], d[200], kv[1200];
    (*a->refused[reason])++;
    clean(p, sizeof(p), principal ? principal : "-", principal ? strlen(principal) : 1);
    /* principals are "iss sub": keep the space readable inside the quotes */
    for (size_t i = 0; principal && principal[i] && i < sizeof(p) - 1; i++)
        if (principal[i] == ' ')
            p[i] = ' ';
    clean(sid, sizeof(sid), session ? session : "-", session ? strlen(session) : 1);
    clean(rid, sizeof(rid), request_id ? request_id : "-", request_id ? strlen(request_id) : 1);
    clean(fwd, sizeof(fwd), forwarded ? forwarded : "-", forwarded ? strlen(forwarded) : 1);
    snprintf(d, sizeof(d), "%s", detail ? detail : "");
    for (char *q = d; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
            *q = '\'';
    peer_of(c, peer, sizeof(peer));
    snprintf(kv, sizeof(kv),
             "audit=auth status=%d reason=%s principal=\"%s\" session=\"%s\" request_id=\"%s\" "
             "remote=\"%s\" forwarded_for=\"%s\" detail=\"%s\"",
             status, reason_names[reason], p, sid, rid, peer, fwd, d);
    mcpgw_log_kv(MCPGW_LOG_WARN, "request refused", kv);
}

/* The JSON-RPC id of a POST body as JSON text, for the audit line (refusals only, so the parse
 * is off the accepted path). */
static void request_id_of(const struct mcpgw_http_req *req, char *out, size_t outlen)
{
    struct json_tokener *t;
    json_object *o, *id;
    snprintf(out, outlen, "-");
    if (!req->body || !req->body_len || req->body_len > PARKED_BODY_MAX)
        return;
    t = json_tokener_new();
    o = json_tokener_parse_ex(t, req->body, (int)req->body_len);
    json_tokener_free(t);
    if (o && json_object_object_get_ex(o, "id", &id))
        snprintf(out, outlen, "%s", json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static const char *header(const struct mcpgw_http_req *req, const char *name, char *out,
                          size_t outlen)
{
    const struct mcpgw_http_header *h = mcpgw_http_find(&req->head, name);
    if (!h)
        return NULL;
    snprintf(out, outlen, "%.*s", (int)(h->value_len < outlen ? h->value_len : outlen - 1),
             h->value);
    return out;
}

void mcpgw_auth_audit_session(struct mcpgw_auth *a, struct mcpgw_http_conn *c, const char *who,
                              const char *session, const char *request_id, const char *forwarded)
{
    audit(a, c, 404, MCPGW_AUTH_R_SESSION_PRINCIPAL, who, session, request_id, forwarded,
          "the session belongs to another principal");
}

int mcpgw_auth_owner_ok(const char *owner, const char *who)
{
    if (!owner || !who)
        return owner == who;
    return strcmp(owner, who) == 0;
}

/* ---- refusals ---- */

/* 401 (error NULL: no credentials, RFC 6750 §3.1 says no error code then), 403 or 503, with
 * WWW-Authenticate naming the metadata and the scopes, a JSON-RPC error body, and the audit
 * line. */
static void refuse(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                   const struct mcpgw_http_req *req, int status, int reason, const char *error,
                   const char *description, const char *principal)
{
    char hdr[4096], rid[80], sid[80], fwd[80], desc[200];
    const char *msg;
    size_t len, k = 0;
    char *json;
    snprintf(desc, sizeof(desc), "%s", description ? description : "");
    for (char *q = desc; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            *q = '\'';
    request_id_of(req, rid, sizeof(rid));
    audit(a, c, status, reason, principal, header(req, "mcp-session-id", sid, sizeof(sid)), rid,
          header(req, "x-forwarded-for", fwd, sizeof(fwd)), desc);
    if (status == 503) {
        msg = reason == MCPGW_AUTH_R_INTROSPECTION
                  ? "Service Unavailable: the token could not be checked with the authorization "
                    "server; retry"
                  : "Service Unavailable: the authorization server's keys could not be fetched; "
                    "retry";
        json = mcpgw_msg_error(NULL, -32000, msg, &len);
        mcpgw_http_respond(c, 503, "application/json", "Retry-After: 5\r\n", json, len);
        free(json);
        return;
    }
    k += (size_t)snprintf(hdr + k, sizeof(hdr) - k, "WWW-Authenticate: Bearer");
    if (error)
        k += (size_t)snprintf(hdr + k, sizeof(hdr) - k, " error=\"%s\", error_description=\"%s\",",
                              error, desc);
    if (a->mode & MODE_JWT)
        k += (size_t)snprintf(hdr + k, sizeof(hdr) - k, " resource_metadata=\"%s\",", a->meta_url);
    if (a->scope_hdr[0])
        k += (size_t)snprintf(hdr + k, sizeof(hdr) - k, " scope=\"%s\",", a->scope_hdr);
    /* the parts are bounded (meta_url 1200, scope_hdr 512, desc 200): hdr never truncates */
    if (hdr[k - 1] == ',')
        k--;
    snprintf(hdr + k, sizeof(hdr) - k, "\r\n");
    msg = status == 403 ? "Forbidden: the token lacks a required scope"
                        : "Unauthorized: a valid bearer token is required";
    json = mcpgw_msg_error(NULL, -32000, msg, &len);
    mcpgw_http_respond(c, status, "application/json", hdr, json, len);
    free(json);
}

void mcpgw_auth_refuse_rule(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                            const struct mcpgw_auth_refusal *r)
{
    char hdr[4096], desc[200], scopes[1024];
    size_t len, k = 0;
    char *json;
    snprintf(desc, sizeof(desc), "%s", r->detail ? r->detail : "");
    for (char *q = desc; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            *q = '\'';
    audit(a, c, r->need ? 403 : 200,
          r->need ? MCPGW_AUTH_R_INSUFFICIENT_SCOPE : MCPGW_AUTH_R_RULE_DENIED, r->principal,
          r->session, r->request_id, r->forwarded, desc);
    if (!r->need)
        return; /* the caller answers with a JSON-RPC error */
    /* The scopes of the step-up: what every request needs plus what this one needs, so the
     * client's new token keeps what it could already do (a scope is a token without blanks or
     * quotes: checked where rules are read). */
    snprintf(scopes, sizeof(scopes), "%s%s%s", a->scope_hdr, a->scope_hdr[0] ? " " : "", r->need);
    k += (size_t)snprintf(hdr + k, sizeof(hdr) - k,
                          "WWW-Authenticate: Bearer error=\"insufficient_scope\", "
                          "error_description=\"%s\", scope=\"%s\"",
                          desc, scopes);
    if (a->mode & MODE_JWT)
        k += (size_t)snprintf(hdr + k, sizeof(hdr) - k, ", resource_metadata=\"%s\"", a->meta_url);
    snprintf(hdr + k, sizeof(hdr) - k, "\r\n");
    json = mcpgw_msg_error(r->id, -32000, "Forbidden: the token lacks a scope this request needs",
                           &len);
    mcpgw_http_respond(c, 403, "application/json", hdr, json, len);
    free(json);
}

void mcpgw_auth_rules_changed(struct mcpgw_auth *a)
{
    /* cached tokens carry the claims the old rules asked about */
    mcpgw_tokcache_clear(a->cache);
}

/* ---- the JWKS, fetched on the loop as mcpgw_jwks_sched says ---- */

static void fetch_start(struct mcpgw_auth *a);
static void parked_release(struct mcpgw_auth *a, struct parked **list);

static void arm(struct mcpgw_auth *a)
{
    uint64_t wait;
    struct timeval tv;
    if (mcpgw_jwks_sched_due(&a->sched, mcpgw_now_ms(), &wait)) {
        fetch_start(a);
        return;
    }
    if (wait == UINT64_MAX)
        return;
    tv.tv_sec = (time_t)(wait / 1000);
    tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
    evtimer_add(a->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    arm(arg);
}

/* The fetch ended: set is the new key set (taken), or NULL with e saying why it failed. */
static void fetch_end(struct mcpgw_auth *a, struct mcpgw_jwks *set, int skipped, const char *e)
{
    evbuffer_drain(a->fetch_body, evbuffer_get_length(a->fetch_body));
    mcpgw_jwks_sched_done(&a->sched, mcpgw_now_ms(), set != NULL);
    if (set) {
        log_debug("auth: JWKS fetched from %s: %d keys (%d skipped)", a->cfg->auth_jwks_url,
                  mcpgw_jwks_count(set), skipped);
        mcpgw_jwks_free(a->keys);
        a->keys = set;
    } else {
        (*a->jwks_failures)++;
        log_warn("auth: JWKS fetch from %s failed, keeping %s: %s", a->cfg->auth_jwks_url,
                 a->keys ? "the keys we have" : "no keys", e);
    }
    arm(a);
    parked_release(a, &a->parked);
}

static void on_fetch_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct mcpgw_auth *a = arg;
    char e[96];
    if (evbuffer_get_length(a->fetch_body) + len <= MCPGW_JWKS_MAX_DOC) {
        evbuffer_add(a->fetch_body, buf, len);
        return;
    }
    /* Over the cap: the document is refused whole, at once. Keeping the pieces that still fit
     * would parse a document the server never sent. */
    mcpgw_hc_req_cancel(r);
    a->fetch = NULL;
    snprintf(e, sizeof(e), "the document is over %d bytes", MCPGW_JWKS_MAX_DOC);
    fetch_end(a, NULL, 0, e);
}

static void on_fetch_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    struct mcpgw_auth *a = arg;
    struct mcpgw_jwks *set = NULL;
    char e[256] = "";
    int skipped = 0;
    size_t len = evbuffer_get_length(a->fetch_body);
    long status = mcpgw_hc_req_status(r);
    a->fetch = NULL;
    if (err != MCPGW_HC_OK)
        snprintf(e, sizeof(e), "%s", why);
    else if (status != 200)
        snprintf(e, sizeof(e), "HTTP status %ld", status);
    else
        set = mcpgw_jwks_parse((const char *)evbuffer_pullup(a->fetch_body, -1), len, &skipped, e,
                               sizeof(e));
    fetch_end(a, set, skipped, e);
}

static void fetch_start(struct mcpgw_auth *a)
{
    static const struct mcpgw_hc_cbs cbs = {NULL, on_fetch_body, on_fetch_done};
    struct mcpgw_hc_opts o = {0};
    char err[256];
    o.url = a->cfg->auth_jwks_url;
    o.timeout_ms = JWKS_TIMEOUT_MS;
    evtimer_del(a->timer);
    mcpgw_jwks_sched_started(&a->sched, mcpgw_now_ms());
    (*a->jwks_fetches)++;
    a->fetch = mcpgw_hc_start(a->hc, &o, &cbs, a, err, sizeof(err));
    if (!a->fetch) {
        log_warn("auth: cannot fetch the JWKS: %s", err);
        mcpgw_jwks_sched_done(&a->sched, mcpgw_now_ms(), 0);
        arm(a);
    }
}

/* ---- requests parked until a fetch ends ---- */

static void on_parked_close(struct mcpgw_http_conn *c, void *arg)
{
    ((struct parked *)arg)->conn = NULL;
}

static size_t put(char *buf, size_t at, const char **p, const char *src, size_t len)
{
    if (src)
        memcpy(buf + at, src, len);
    *p = src ? buf + at : NULL;
    return at + len;
}

/* Copy req (head strings, path, query, body) onto *list so the handler can run on it again
 * later (parked_release). Returns -1 when too many wait already. */
static int park(struct mcpgw_auth *a, struct parked **list, struct mcpgw_http_conn *c,
                const struct mcpgw_http_req *req)
{
    size_t need = req->path_len + req->query_len + req->body_len + req->head.method_len +
                  req->head.target_len,
           at = 0;
    struct parked *pk;
    const struct mcpgw_http_head *h = &req->head;
    if (a->nparked >= PARKED_MAX || req->body_len > PARKED_BODY_MAX)
        return -1;
    for (int i = 0; i < h->nheaders; i++)
        need += h->headers[i].name_len + h->headers[i].value_len;
    pk = xcalloc(1, sizeof(*pk) + need + 1);
    pk->a = a;
    pk->conn = c;
    pk->req = *req;
    at = put(pk->buf, at, &pk->req.path, req->path, req->path_len);
    at = put(pk->buf, at, &pk->req.query, req->query, req->query_len);
    at = put(pk->buf, at, &pk->req.body, req->body, req->body_len);
    at = put(pk->buf, at, &pk->req.head.method_str, h->method_str, h->method_len);
    at = put(pk->buf, at, &pk->req.head.target, h->target, h->target_len);
    for (int i = 0; i < h->nheaders; i++) {
        at = put(pk->buf, at, &pk->req.head.headers[i].name, h->headers[i].name,
                 h->headers[i].name_len);
        at = put(pk->buf, at, &pk->req.head.headers[i].value, h->headers[i].value,
                 h->headers[i].value_len);
    }
    pk->next = *list;
    *list = pk;
    a->nparked++;
    mcpgw_http_conn_set_close_cb(c, on_parked_close, pk);
    return 0;
}

/* Run every request parked on *list through the handler again. Each is checked once more, with
 * a->retrying set: a kid still unknown is then refused (the schedule allows no second early
 * fetch), an opaque token whose introspection failed gets 503 instead of another one. */
static void parked_release(struct mcpgw_auth *a, struct parked **list)
{
    struct parked *pk = *list, *next;
    *list = NULL;
    a->retrying++;
    for (; pk; pk = next) {
        next = pk->next;
        a->nparked--;
        if (pk->conn) {
            mcpgw_http_conn_set_close_cb(pk->conn, NULL, NULL);
            a->retry(pk->conn, &pk->req, a->retry_arg);
        }
        free(pk);
    }
    a->retrying--;
}

/* Answer every request parked on *list with 503 (shutting down). */
static void parked_drop(struct mcpgw_auth *a, struct parked **list)
{
    struct parked *pk = *list, *next;
    *list = NULL;
    for (; pk; pk = next) {
        next = pk->next;
        a->nparked--;
        if (pk->conn) {
            mcpgw_http_conn_set_close_cb(pk->conn, NULL, NULL);
            mcpgw_http_respond(pk->conn, 503, "text/plain", NULL, "shutting down\n", 14);
        }
        free(pk);
    }
}

/* ---- opaque tokens: RFC 7662 introspection ---- */

/* One introspection in flight, for one token; the requests presenting it wait on it. */
struct introspection {
    struct introspection *next;
    struct mcpgw_auth *a;
    struct mcpgw_hc_req *req;
    struct evbuffer *body;
    struct parked *parked;
    size_t len;
    char tok[]; /* the token (matched against new requests, then the cache key) */
};

static void introspection_free(struct mcpgw_auth *a, struct introspection *in, int drop)
{
    struct introspection **pp = &a->introspections;
    while (*pp && *pp != in)
        pp = &(*pp)->next;
    if (*pp)
        *pp = in->next;
    a->nintrospections--;
    if (in->req)
        mcpgw_hc_req_cancel(in->req);
    if (drop)
        parked_drop(a, &in->parked);
    else
        parked_release(a, &in->parked);
    evbuffer_free(in->body);
    free(in);
}

static void on_introspect_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct introspection *in = arg;
    if (evbuffer_get_length(in->body) + len <= INTROSPECT_DOC_MAX) {
        evbuffer_add(in->body, buf, len);
        return;
    }
    /* Over the cap: refused whole, at once (the pieces that still fit would make another
     * answer than the one sent). The waiting requests get 503, as for any endpoint failure. */
    log_warn("auth: introspection at %s failed: the answer is over %d bytes",
             in->a->cfg->auth_introspect_url, INTROSPECT_DOC_MAX);
    introspection_free(in->a, in, 0); /* cancels r */
}

/* Does aud (a string or an array of strings) name resource? */
static int aud_has(json_object *aud, const char *resource)
{
    if (json_object_is_type(aud, json_type_string))
        return strcmp(json_object_get_string(aud), resource) == 0;
    for (size_t i = 0;
         json_object_is_type(aud, json_type_array) && i < json_object_array_length(aud); i++) {
        json_object *e = json_object_array_get_idx(aud, i);
        if (json_object_is_type(e, json_type_string) &&
            strcmp(json_object_get_string(e), resource) == 0)
            return 1;
    }
    return 0;
}

/* Cache what the endpoint said about the token: a principal and scopes, or (principal "") the
 * reason it is refused. Returns 0, or -1 when the answer is unusable (nothing cached). */
static int introspect_result(struct mcpgw_auth *a, struct introspection *in, json_object *o)
{
    json_object *v;
    const char *iss = a->cfg->auth_issuer, *sub = NULL, *why = NULL;
    char principal[MCPGW_AUTH_PRINCIPAL_MAX];
    int64_t now = (int64_t)time(NULL),
            exp = now + (int64_t)(a->cfg->auth_introspect_cache_ms / 1000);
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "active", &v) ||
        !json_object_is_type(v, json_type_boolean))
        return -1;
    if (!json_object_get_boolean(v))
        why = "inactive";
    else if (json_object_object_get_ex(o, "iss", &v) &&
             (!json_object_is_type(v, json_type_string) ||
              strcmp(json_object_get_string(v), iss) != 0))
        why = "wrong_issuer";
    else if (!json_object_object_get_ex(o, "aud", &v) || !aud_has(v, a->cfg->auth_resource))
        why = "wrong_audience"; /* the audience must be checked: required here */
    else if (json_object_object_get_ex(o, "exp", &v) && json_object_is_type(v, json_type_int) &&
             json_object_get_int64(v) <= now - a->jc.skew_s) /* any exp: no overflow */
        why = "expired";
    if (!why) {
        /* sub names the user; a client-credentials token has none: then the client is the
         * principal ("client:<id>", which no user's sub from the same issuer should equal). */
        if (json_object_object_get_ex(o, "sub", &v) && json_object_is_type(v, json_type_string))
            sub = json_object_get_string(v);
        int n = -1;
        if (sub)
            n = snprintf(principal, sizeof(principal), "%s %s", iss[0] ? iss : "-", sub);
        else if (json_object_object_get_ex(o, "client_id", &v) &&
                 json_object_is_type(v, json_type_string))
            n = snprintf(principal, sizeof(principal), "%s client:%s", iss[0] ? iss : "-",
                         json_object_get_string(v));
        if (n < 0 || (size_t)n >= sizeof(principal)) /* none, or too long to bind exactly */
            why = "malformed";
    }
    if (why) {
        mcpgw_tokcache_put(a->cache, in->tok, in->len, now, "", why, exp);
        return 0;
    }
    if (json_object_object_get_ex(o, "exp", &v) && json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) < exp)
        exp = json_object_get_int64(v);
    json_object_object_get_ex(o, "scope", &v);
    {
        char *claims = mcpgw_authz_claims(a->cfg->authz, o);
        mcpgw_tokcache_put_claims(
            a->cache, in->tok, in->len, now, principal,
            json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "", claims, exp);
        free(claims);
    }
    return 0;
}

static void on_introspect_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err,
                               const char *why)
{
    struct introspection *in = arg;
    struct mcpgw_auth *a = in->a;
    json_object *o = NULL;
    size_t len = evbuffer_get_length(in->body);
    long status = mcpgw_hc_req_status(r);
    in->req = NULL;
    if (err == MCPGW_HC_OK && status == 200) {
        struct json_tokener *t = json_tokener_new();
        o = json_tokener_parse_ex(t, (const char *)evbuffer_pullup(in->body, -1), (int)len);
        json_tokener_free(t);
    }
    if (introspect_result(a, in, o) < 0)
        log_warn("auth: introspection at %s failed: %s", a->cfg->auth_introspect_url,
                 err != MCPGW_HC_OK ? why
                 : status != 200    ? "HTTP status not 200"
                                    : "not an introspection response");
    json_object_put(o);
    introspection_free(a, in, 0); /* the waiting requests run again: cached, or 503 */
}

/* token=<percent-encoded token>&token_type_hint=access_token */
/* s[0..len) form-encoded at p (at most 3 * len bytes); returns the end. */
static char *form_enc(char *p, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    return p;
}

static char *form_body(const char *tok, size_t len, size_t *out_len)
{
    char *b = xmalloc(len * 3 + 64), *p = b;
    p += sprintf(p, "token=");
    p = form_enc(p, tok, len);
    p += sprintf(p, "&token_type_hint=access_token");
    *out_len = (size_t)(p - b);
    return b;
}

/* Park the request on the introspection of its token, starting one if none runs. Returns 0
 * (parked), -1 (too many in flight, or the request could not start). */
static int introspect(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                      const struct mcpgw_http_req *req, const char *tok, size_t len)
{
    static const struct mcpgw_hc_cbs cbs = {NULL, on_introspect_body, on_introspect_done};
    const char *headers[4] = {"Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", NULL, NULL};
    struct mcpgw_hc_opts o = {0};
    struct introspection *in;
    char err[256];
    for (in = a->introspections; in; in = in->next)
        if (in->len == len && memcmp(in->tok, tok, len) == 0)
            return park(a, &in->parked, c, req);
    if (a->nintrospections >= INTROSPECT_MAX)
        return -1;
    in = xcalloc(1, sizeof(*in) + len);
    in->a = a;
    in->len = len;
    memcpy(in->tok, tok, len);
    in->body = evbuffer_new();
    if (a->introspect_auth[0])
        headers[2] = a->introspect_auth;
    o.method = "POST";
    o.url = a->cfg->auth_introspect_url;
    o.headers = headers;
    o.body = form_body(tok, len, &o.body_len);
    o.timeout_ms = INTROSPECT_TIMEOUT_MS;
    in->req = mcpgw_hc_start(a->hc, &o, &cbs, in, err, sizeof(err));
    free((char *)o.body);
    in->next = a->introspections;
    a->introspections = in;
    a->nintrospections++;
    if (!in->req) {
        log_warn("auth: cannot start introspection: %s", err);
        introspection_free(a, in, 0);
        return -1;
    }
    return park(a, &in->parked, c, req);
}

/* An opaque token: from the cache, or parked on its introspection. Returns 1 (who and *scopes
 * filled; *scopes borrowed from the cache), 0 (answered or parked). */
static int check_opaque(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                        const struct mcpgw_http_req *req, const char *tok, size_t len, int64_t now,
                        const char **scopes, struct mcpgw_auth_who *who)
{
    struct mcpgw_tokcache_entry e;
    if (mcpgw_tokcache_get(a->cache, tok, len, now, &e)) {
        (*a->cache_hits)++;
        if (!e.principal[0]) {
            int r = strcmp(e.scopes, "wrong_audience") == 0 ? MCPGW_AUTH_R_WRONG_AUDIENCE
                    : strcmp(e.scopes, "wrong_issuer") == 0 ? MCPGW_AUTH_R_WRONG_ISSUER
                    : strcmp(e.scopes, "expired") == 0      ? MCPGW_AUTH_R_EXPIRED
                    : strcmp(e.scopes, "malformed") == 0    ? MCPGW_AUTH_R_MALFORMED
                                                            : MCPGW_AUTH_R_INACTIVE;
            char d[120];
            snprintf(d, sizeof(d), "the authorization server says the token is refused here (%s)",
                     e.scopes);
            refuse(a, c, req, 401, r, "invalid_token", d, NULL);
            return 0;
        }
        snprintf(who->principal, sizeof(who->principal), "%s", e.principal);
        *scopes = e.scopes;
        who->claims = e.claims;
        return 1;
    }
    if (a->retrying || introspect(a, c, req, tok, len) < 0)
        refuse(a, c, req, 503, MCPGW_AUTH_R_INTROSPECTION, NULL,
               "the token could not be introspected", NULL);
    return 0;
}

/* ---- the metadata (RFC 9728) ---- */

int mcpgw_auth_well_known(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                          const struct mcpgw_http_req *req)
{
    size_t wl = sizeof(WELL_KNOWN) - 1, rl = strlen(a->res_path);
    json_object *o, *arr;
    const char *text;
    size_t len;
    if (req->path_len < wl || memcmp(req->path, WELL_KNOWN, wl) != 0)
        return 0;
    /* the bare form, and the form with the resource's path appended (RFC 9728 §3.1) */
    if (!(req->path_len == wl ||
          (rl > 1 && req->path_len == wl + rl && memcmp(req->path + wl, a->res_path, rl) == 0)))
        return 0;
    if (req->head.method != MCPGW_HTTP_GET && req->head.method != MCPGW_HTTP_HEAD) {
        mcpgw_http_respond(c, 405, "text/plain", "Allow: GET\r\n", "GET only\n", 9);
        return 1;
    }
    o = json_object_new_object();
    json_object_object_add(o, "resource", json_object_new_string(a->cfg->auth_resource));
    if (a->mode & MODE_JWT) {
        arr = json_object_new_array();
        json_object_array_add(arr, json_object_new_string(a->cfg->auth_issuer));
        json_object_object_add(o, "authorization_servers", arr);
    }
    arr = json_object_new_array();
    for (int i = 0; i < a->cfg->auth_scopes.n; i++)
        json_object_array_add(arr, json_object_new_string(a->cfg->auth_scopes.v[i]));
    json_object_object_add(o, "scopes_supported", arr);
    arr = json_object_new_array();
    json_object_array_add(arr, json_object_new_string("header"));
    json_object_object_add(o, "bearer_methods_supported", arr);
    json_object_object_add(o, "resource_name", json_object_new_string("mcpgw"));
    text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    /* Browser-based clients read it cross-origin; it is public by design. */
    mcpgw_http_respond(c, 200, "application/json",
                       "Access-Control-Allow-Origin: *\r\nCache-Control: max-age=300\r\n", text,
                       len);
    json_object_put(o);
    return 1;
}

/* ---- the check ---- */

static const char *bearer(const struct mcpgw_http_req *req, size_t *len)
{
    const struct mcpgw_http_header *h = mcpgw_http_find(&req->head, "authorization");
    const char *v;
    size_t n;
    if (!h || h->value_len < 7 || !mcpgw_strieq(h->value, 6, "bearer") || h->value[6] != ' ')
        return NULL;
    v = h->value + 7;
    n = h->value_len - 7;
    while (n && *v == ' ')
        v++, n--;
    *len = n;
    return n ? v : NULL;
}

static int jwt_reason(int err)
{
    switch (err) {
    case MCPGW_JWT_ALG_NOT_ALLOWED:
        return MCPGW_AUTH_R_ALG_NOT_ALLOWED;
    case MCPGW_JWT_UNKNOWN_KID:
        return MCPGW_AUTH_R_UNKNOWN_KID;
    case MCPGW_JWT_BAD_SIGNATURE:
        return MCPGW_AUTH_R_BAD_SIGNATURE;
    case MCPGW_JWT_WRONG_ISSUER:
        return MCPGW_AUTH_R_WRONG_ISSUER;
    case MCPGW_JWT_WRONG_AUDIENCE:
        return MCPGW_AUTH_R_WRONG_AUDIENCE;
    case MCPGW_JWT_EXPIRED:
        return MCPGW_AUTH_R_EXPIRED;
    case MCPGW_JWT_NOT_YET_VALID:
        return MCPGW_AUTH_R_NOT_YET_VALID;
    default:
        return MCPGW_AUTH_R_MALFORMED;
    }
}

/* Has scopes every required scope? Returns the first missing one's index, or -1. */
static int missing_scope(const struct mcpgw_auth *a, const char *scopes)
{
    for (int i = 0; i < a->cfg->auth_scopes.n; i++)
        if (!mcpgw_jwt_scopes_have(scopes, a->cfg->auth_scopes.v[i]))
            return i;
    return -1;
}

/* Verify a JWT not in the cache. Returns 1 (who filled, cached), 0 (answered or parked). */
static int check_jwt(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                     const struct mcpgw_http_req *req, const char *tok, size_t len, int64_t now,
                     const char **scopes, struct mcpgw_auth_who *who)
{
    struct mcpgw_jwt_result res;
    int rc = mcpgw_jwt_verify(&a->jc, a->keys, tok, len, now, &res), ok = 0;
    if (rc == MCPGW_JWT_UNKNOWN_KID) {
        switch (mcpgw_jwks_sched_unknown_kid(&a->sched, mcpgw_now_ms())) {
        case 1:
            fetch_start(a);
            /* wait for it */
            __attribute__((fallthrough));
        case -1:
            if (a->fetch && park(a, &a->parked, c, req) == 0)
                goto out;
            break;
        }
        if (!a->keys) {
            refuse(a, c, req, 503, MCPGW_AUTH_R_KEYS_UNAVAILABLE, NULL,
                   "the authorization server's keys could not be fetched", NULL);
            goto out;
        }
    }
    if (rc != MCPGW_JWT_OK) {
        refuse(a, c, req, 401, jwt_reason(rc), "invalid_token", res.reason, NULL);
        goto out;
    }
    if (strlen(res.principal) >= MCPGW_AUTH_PRINCIPAL_MAX) {
        refuse(a, c, req, 401, MCPGW_AUTH_R_MALFORMED, "invalid_token",
               "issuer and subject are too long", NULL);
        goto out;
    }
    {
        /* the claims authorization rules ask about (none: no work) */
        char *claims = mcpgw_authz_claims_jwt(a->cfg->authz, tok, len);
        mcpgw_tokcache_put_claims(a->cache, tok, len, now, res.principal, res.scopes, claims,
                                  res.exp);
        free(claims);
    }
    memcpy(who->principal, res.principal, strlen(res.principal) + 1);
    ok = 1;
    if (scopes) {
        /* scopes must outlive res: read it from the cache entry just made */
        struct mcpgw_tokcache_entry e;
        if (mcpgw_tokcache_get(a->cache, tok, len, now, &e)) {
            *scopes = e.scopes;
            who->claims = e.claims;
        } else
            *scopes = "";
    }
out:
    mcpgw_jwt_result_deinit(&res);
    return ok;
}

int mcpgw_auth_check(struct mcpgw_auth *a, struct mcpgw_http_conn *c,
                     const struct mcpgw_http_req *req, struct mcpgw_auth_who *who)
{
    size_t len;
    const char *tok = bearer(req, &len), *scopes = "", *principal;
    int64_t now = (int64_t)time(NULL);
    int miss;
    struct mcpgw_tokcache_entry e;
    who->scopes = who->claims = NULL;
    if (!tok) {
        refuse(a, c, req, 401, MCPGW_AUTH_R_NO_TOKEN, NULL, "no bearer token", NULL);
        return 0;
    }
    /* A JWT has two dots; an API key (base64url) has none. */
    if ((a->mode & MODE_JWT) && memchr(tok, '.', len)) {
        if (mcpgw_tokcache_get(a->cache, tok, len, now, &e)) {
            (*a->cache_hits)++;
            snprintf(who->principal, sizeof(who->principal), "%s", e.principal);
            scopes = e.scopes;
            who->claims = e.claims;
        } else if (!check_jwt(a, c, req, tok, len, now, &scopes, who)) {
            return 0;
        }
    } else if ((a->mode & MODE_APIKEY) &&
               mcpgw_apikey_lookup(a->apikeys, tok, len, &principal, &scopes) == 0) {
        snprintf(who->principal, sizeof(who->principal), "%s", principal);
    } else if (a->cfg->auth_introspect_url[0]) {
        if (!check_opaque(a, c, req, tok, len, now, &scopes, who))
            return 0;
    } else if (a->mode & MODE_APIKEY) {
        refuse(a, c, req, 401, MCPGW_AUTH_R_BAD_APIKEY, "invalid_token", "the API key is not known",
               NULL);
        return 0;
    } else {
        refuse(a, c, req, 401, MCPGW_AUTH_R_MALFORMED, "invalid_token", "the token is not a JWT",
               NULL);
        return 0;
    }
    if ((miss = missing_scope(a, scopes)) >= 0) {
        char d[160];
        snprintf(d, sizeof(d), "the token lacks the scope '%s'", a->cfg->auth_scopes.v[miss]);
        refuse(a, c, req, 403, MCPGW_AUTH_R_INSUFFICIENT_SCOPE, "insufficient_scope", d,
               who->principal);
        return 0;
    }
    who->scopes = scopes;
    return 1;
}

/* ---- lifecycle ---- */

static void register_metrics(struct mcpgw_auth *a, struct mcpgw_metrics *m, const char *labels)
{
    char l[160];
    for (int i = 0; i < MCPGW_AUTH_R_COUNT; i++) {
        snprintf(l, sizeof(l), "%s,reason=\"%s\"", labels, reason_names[i]);
        a->refused[i] = mcpgw_metrics_counter(
            m, "mcpgw_node_auth_refused_total",
            "Requests refused by authentication (404 session_principal: a session id presented "
            "by another principal)",
            l);
    }
    a->jwks_fetches = mcpgw_metrics_counter(m, "mcpgw_node_auth_jwks_fetches_total",
                                            "JWKS fetches started", labels);
    a->jwks_failures = mcpgw_metrics_counter(m, "mcpgw_node_auth_jwks_failures_total",
                                             "JWKS fetches that failed", labels);
    a->cache_hits = mcpgw_metrics_counter(m, "mcpgw_node_auth_token_cache_hits_total",
                                          "Tokens found in the verified-token cache", labels);
}

struct mcpgw_auth *mcpgw_auth_new(struct event_base *base, const struct mcpgw_node_config *cfg,
                                  struct mcpgw_metrics *m, const char *labels,
                                  mcpgw_http_handler_fn retry, void *retry_arg, char *err,
                                  size_t errlen)
{
    struct mcpgw_auth *a;
    size_t ol, k = 0;
    int mode = mcpgw_node_config_auth_mode(cfg->auth);
    if (mode <= 0)
        return NULL;
    a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->base = base;
    a->mode = mode;
    a->retry = retry;
    a->retry_arg = retry_arg;
    a->jc.issuer = cfg->auth_issuer;
    a->jc.audience = cfg->auth_resource;
    a->jc.skew_s = (int64_t)(cfg->auth_skew_ms / 1000);
    ol = mcpgw_node_config_origin_len(cfg->auth_resource);
    a->res_path = cfg->auth_resource + ol;
    /* RFC 9728 §3.1: the well-known part goes between the origin and the resource's path. */
    snprintf(a->meta_url, sizeof(a->meta_url), "%.*s%s%s", (int)ol, cfg->auth_resource, WELL_KNOWN,
             strcmp(a->res_path, "/") == 0 ? "" : a->res_path);
    for (int i = 0; i < cfg->auth_scopes.n; i++)
        k += (size_t)snprintf(a->scope_hdr + k,
                              k < sizeof(a->scope_hdr) ? sizeof(a->scope_hdr) - k : 0, "%s%s",
                              i ? " " : "", cfg->auth_scopes.v[i]);
    register_metrics(a, m, labels);
    a->cache = mcpgw_tokcache_new(TOKCACHE_ENTRIES, TOKCACHE_MAX_AGE);
    if (mode & MODE_APIKEY) {
        a->apikeys = cfg->auth_apikeys[0]
                         ? mcpgw_apikey_load(cfg->auth_apikeys, err, errlen)
                         : mcpgw_apikey_from_env(cfg->auth_apikeys_env, err, errlen);
        if (!a->apikeys)
            goto fail;
    }
    if (cfg->auth_introspect_client[0]) {
        /* RFC 6749 2.3.1 (which RFC 7662 refers to): each form-encoded, then joined by ':' */
        char plain[BASIC_PLAIN_MAX], *p = plain;
        p = form_enc(p, cfg->auth_introspect_client, strlen(cfg->auth_introspect_client));
        *p++ = ':';
        p = form_enc(p, cfg->auth_introspect_secret, strlen(cfg->auth_introspect_secret));
        memcpy(a->introspect_auth, "Authorization: Basic ", 21);
        EVP_EncodeBlock((unsigned char *)a->introspect_auth + 21, (const unsigned char *)plain,
                        (int)(p - plain));
        OPENSSL_cleanse(plain, sizeof(plain));
    }
    if ((mode & MODE_JWT) || cfg->auth_introspect_url[0]) {
        a->hc = mcpgw_hc_new(base);
        if (!a->hc) {
            snprintf(err, errlen, "auth: cannot set up the HTTP client (libcurl)");
            goto fail;
        }
    }
    if (mode & MODE_JWT) {
        a->fetch_body = evbuffer_new();
        a->timer = evtimer_new(base, on_timer, a);
        mcpgw_jwks_sched_init(&a->sched, cfg->auth_jwks_refresh_ms, 1000, cfg->auth_unknown_kid_ms);
        arm(a);
    }
    log_info("auth: %s; resource %s, metadata at %s", cfg->auth, cfg->auth_resource, a->meta_url);
    return a;
fail:
    mcpgw_auth_free(a);
    return NULL;
}

void mcpgw_auth_free(struct mcpgw_auth *a)
{
    if (!a)
        return;
    parked_drop(a, &a->parked);
    while (a->introspections)
        introspection_free(a, a->introspections, 1);
    if (a->fetch)
        mcpgw_hc_req_cancel(a->fetch);
    if (a->hc)
        mcpgw_hc_free(a->hc);
    if (a->timer)
        event_free(a->timer);
    if (a->fetch_body)
        evbuffer_free(a->fetch_body);
    mcpgw_jwks_free(a->keys);
    mcpgw_tokcache_free(a->cache);
    mcpgw_apikey_set_free(a->apikeys);
    free(a);
}
