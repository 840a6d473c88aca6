/* upmcp.c - an MCP client session over Streamable HTTP, on common/httpclient: every exchange with
 * the upstream (initialize, a request, a notification or response, DELETE) is one "call". */
#include "node/upmcp.h"

#include "common/httpclient.h"
#include "common/jscan.h"
#include "common/log.h"
#include "common/sse.h"
#include "common/util.h"
#include "node/up26.h"
#include "node/upcred.h"
#include "node/upmcp_int.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The revisions this client speaks, newest first: initialize asks for the first. */
static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

#define ERR_BODY_MAX  4096
#define LISTEN_MIN_MS 200
#define LISTEN_MAX_MS 30000

static const char *const err_names[MCPGW_UPMCP_E_COUNT] = {
    "ok",       "transport", "timeout",  "http",   "gone", "too_big",
    "bad_json", "bad_id",    "protocol", "closed", "auth"};

const char *mcpgw_upmcp_err_str(enum mcpgw_upmcp_err e)
{
    return (unsigned)e < MCPGW_UPMCP_E_COUNT ? err_names[e] : "?";
}

/* ---- small pieces ---- */

void mcpgw_upmcp_q_push(void *arg, const char *id, const char *event, const char *data, size_t len)
{
    struct ev_queue *q = arg;
    if (event && strcmp(event, "message") != 0)
        return; /* MCP sends only "message" events (or unnamed ones) */
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 4;
        q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
    }
    q->v[q->n].id = id ? xstrdup(id) : NULL;
    q->v[q->n].data = xstrndup(data, len);
    q->v[q->n].len = len;
    q->n++;
}

void mcpgw_upmcp_q_clear(struct ev_queue *q, size_t from)
{
    for (size_t i = from; i < q->n; i++) {
        free(q->v[i].id);
        free(q->v[i].data);
    }
    q->n = 0;
}

void mcpgw_upmcp_enter(struct mcpgw_upmcp *u)
{
    u->busy++;
}

static void really_free(struct mcpgw_upmcp *u);

/* Leaves a callback; returns 1 when u was freed meanwhile (the caller must not touch it). */
int mcpgw_upmcp_leave(struct mcpgw_upmcp *u)
{
    if (--u->busy == 0 && u->dying) {
        really_free(u);
        return 1;
    }
    return u->dying;
}

static int version_known(const char *v)
{
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
        if (v && strcmp(v, versions[i]) == 0)
            return 1;
    return 0;
}

/* The headers of one exchange: ours, the session's, then the operator's extra ones; every
 * string is owned by the array (free with free_headers). */
static char **build_headers(struct mcpgw_upmcp *u, enum call_kind kind, const char *accept,
                            const char *last_event_id, char *const *extra, const char *auth)
{
    char **h = xcalloc(u->nheaders + 7 + MCPGW_UPMCP_EXTRA, sizeof(*h));
    size_t n = 0;
    h[n++] = xstrdup(accept);
    if (kind != CALL_DELETE && strcmp(accept, "Accept: text/event-stream") != 0)
        h[n++] = xstrdup("Content-Type: application/json");
    if (u->sid && kind != CALL_INIT && asprintf(&h[n], "Mcp-Session-Id: %s", u->sid) > 0)
        n++;
    if (u->version && kind != CALL_INIT &&
        asprintf(&h[n], "MCP-Protocol-Version: %s", u->version) > 0)
        n++;
    if (last_event_id && asprintf(&h[n], "Last-Event-ID: %s", last_event_id) > 0)
        n++;
    for (size_t i = 0; extra && i < MCPGW_UPMCP_EXTRA && extra[i]; i++)
        h[n++] = xstrdup(extra[i]);
    for (size_t i = 0; i < u->nheaders; i++)
        h[n++] = xstrdup(u->headers[i]);
    if (auth)
        h[n++] = xstrdup(auth);
    h[n] = NULL;
    return h;
}

static void free_headers(char **h)
{
    for (size_t i = 0; h[i]; i++) {
        if (strncmp(h[i], "Authorization:", 14) == 0)
            OPENSSL_cleanse(h[i], strlen(h[i]));
        free(h[i]);
    }
    free(h);
}

/* ---- calls ---- */

/* The request c keeps for a resend after a 401 (its body and extra headers), forgotten. */
static void call_forget_request(struct mcpgw_upmcp_call *c)
{
    free(c->post_body);
    c->post_body = NULL;
    c->post_len = 0;
    for (size_t i = 0; c->extra[i]; i++) {
        free(c->extra[i]);
        c->extra[i] = NULL;
    }
}

void mcpgw_upmcp_call_free(struct mcpgw_upmcp_call *c)
{
    if (c->relist)
        mcpgw_upmcp_call_cancel(c->relist, 0);
    if (c->req)
        mcpgw_hc_req_cancel(c->req);
    mcpgw_upcred_wait_cancel(c->wait);
    call_forget_request(c);
    if (c->sse)
        mcpgw_sse_parser_free(c->sse);
    mcpgw_upmcp_q_clear(&c->q, 0);
    free(c->q.v);
    free(c->body);
    free(c->method);
    json_object_put(c->params);
    json_object_put(c->failed);
    mcpgw_up26_round_free(c->round);
    free(c);
}

static void call_unlink(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_upmcp *u = c->u;
    if (c->prev)
        c->prev->next = c->next;
    else if (u->calls == c)
        u->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void internal_reply(struct mcpgw_upmcp_call *c, enum mcpgw_upmcp_err err, const char *why,
                           const struct mcpgw_jsonrpc_msg *m);

/* Ends a call once: its callback fires with the outcome, then it is freed (after the dispatch
 * that is running, if any). */
void mcpgw_upmcp_finish(struct mcpgw_upmcp_call *c, enum mcpgw_upmcp_err err,
                        const struct mcpgw_jsonrpc_msg *m, const char *fmt, ...)
{
    char why[512] = "ok";
    struct mcpgw_upmcp *u = c->u;
    if (c->finished)
        return;
    c->finished = 1;
    if (c->req) {
        mcpgw_hc_req_cancel(c->req);
        c->req = NULL;
    }
    mcpgw_upcred_wait_cancel(c->wait);
    c->wait = NULL;
    call_unlink(c);
    if (fmt) {
        va_list ap;
        int n = snprintf(why, sizeof(why), "upstream %s: ", u->name);
        va_start(ap, fmt);
        vsnprintf(why + n, sizeof(why) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    c->busy++;
    mcpgw_upmcp_enter(u);
    if (c->kind == CALL_REQUEST && c->raw) {
        c->cbs.on_result_raw(c->arg, c->raw, c->raw_len);
    } else if (c->kind == CALL_REQUEST) {
        if (c->cbs.on_reply)
            c->cbs.on_reply(c->arg, err, why, m);
    } else if (c->kind == CALL_SEND || c->kind == CALL_DELETE) {
        if (c->send_done)
            c->send_done(c->arg, err, why);
    } else {
        internal_reply(c, err, why, m);
    }
    mcpgw_upmcp_leave(u);
    if (!--c->busy)
        mcpgw_upmcp_call_free(c);
}

static void report_gone(struct mcpgw_upmcp *u)
{
    if (!u->sid)
        return;
    log_warn("upstream %s: session %s gone (HTTP 404); it must be initialized again", u->name,
             u->sid);
    free(u->sid);
    u->sid = NULL;
    u->ready = 0;
    u->listen_wanted = 0;
    mcpgw_upcred_wait_cancel(u->get_wait);
    u->get_wait = NULL;
    if (u->get) {
        mcpgw_hc_req_cancel(u->get);
        u->get = NULL;
    }
    if (u->cbs.on_gone)
        u->cbs.on_gone(u->arg);
}

/* Whether data is the plain answer to c that goes on unparsed (on_result_raw): exactly the three
 * members "jsonrpc":"2.0", "id" (c's, as an integer) and an object "result", valid by jscan's
 * strict rules. Anything else (an error, other members, a notification on the stream, a key
 * written with escapes, text jscan refuses) takes the full parse, which gives today's answer or
 * today's error. The 2026-07-28 era looks into results (input_required, list answers): never. */
static int pass_through(struct mcpgw_upmcp_call *c, const char *data, size_t len)
{
    struct mcpgw_jscan_top t;
    const struct mcpgw_jscan_member *jr, *id, *res;
    char want[24];
    int n;
    if (c->kind != CALL_REQUEST || !c->cbs.on_result_raw || c->u->era26 ||
        mcpgw_jscan_object(data, len, &t) != MCPGW_JSCAN_OK || t.n != 3 || t.more)
        return 0;
    jr = mcpgw_jscan_get(&t, "jsonrpc");
    id = mcpgw_jscan_get(&t, "id");
    res = mcpgw_jscan_get(&t, "result");
    n = snprintf(want, sizeof(want), "%lld", c->id);
    if (!jr || !id || !res || jr->val_len != 5 || memcmp(jr->val, "\"2.0\"", 5) != 0 ||
        id->val_len != (size_t)n || memcmp(id->val, want, (size_t)n) != 0 || res->val[0] != '{')
        return 0;
    c->raw = res->val;
    c->raw_len = res->val_len;
    mcpgw_upmcp_finish(c, MCPGW_UPMCP_OK, NULL, NULL);
    return 1;
}

/* One JSON-RPC message that arrived for call c (in its JSON body or on its event stream). */
static void dispatch(struct mcpgw_upmcp_call *c, const char *event_id, const char *data, size_t len,
                     int from_stream)
{
    struct mcpgw_upmcp *u = c->u;
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    json_object *bad = NULL;
    if (len == 0 && from_stream)
        return; /* a priming event: an id, no message */
    if (len > u->max_msg) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TOO_BIG, NULL,
                           "a message of %zu bytes for %s is over the %zu-byte cap", len, c->method,
                           u->max_msg);
        return;
    }
    if (pass_through(c, data, len))
        return;
    if (mcpgw_jsonrpc_parse(data, len, &m, &bad, &why) != 0) {
        json_object_put(bad);
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_BAD_JSON, NULL,
                           "invalid JSON-RPC in the answer to %s: %s", c->method, why);
        return;
    }
    if (m.kind == MCPGW_JSONRPC_RESULT || m.kind == MCPGW_JSONRPC_ERROR) {
        if (!json_object_is_type(m.id, json_type_int) || json_object_get_int64(m.id) != c->id)
            mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_BAD_ID, NULL,
                               "the answer to %s (id %lld) carries id %s", c->method, c->id,
                               json_object_to_json_string(m.id));
        else if (u->era26 && c->kind == CALL_REQUEST && m.result &&
                 mcpgw_up26_input_required(m.result))
            mcpgw_upmcp26_round_start(c, &m);
        else {
            if (u->era26 && m.result)
                mcpgw_upmcp26_list_answer(c, m.result);
            mcpgw_upmcp_finish(c, MCPGW_UPMCP_OK, &m, NULL);
        }
    } else if (!from_stream) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL,
                           "a JSON body answering %s holds a %s, not the answer", c->method,
                           mcpgw_jsonrpc_kind_str(m.kind));
    } else if (c->cbs.on_message && c->kind == CALL_REQUEST) {
        c->busy++;
        c->cbs.on_message(c->arg, event_id, &m);
        c->busy--;
    }
    mcpgw_jsonrpc_msg_deinit(&m);
}

static void on_call_cred(void *arg, const char *why);

static void on_call_head(void *arg, struct mcpgw_hc_req *r)
{
    struct mcpgw_upmcp_call *c = arg;
    struct mcpgw_upmcp *u = c->u;
    const char *ct = mcpgw_hc_req_header(r, "Content-Type");
    c->status = mcpgw_hc_req_status(r);
    if (c->status == 401 && u->cred && !c->auth_retried) {
        /* Refused before the upstream looked at the message: a new token, and once more. */
        mcpgw_hc_req_cancel(r);
        c->req = NULL;
        c->status = 0;
        c->auth_retried = 1;
        c->wait = mcpgw_upcred_refresh(u->cred, c->gen, on_call_cred, c);
        return;
    }
    if (c->status == 404 && u->sid && c->kind != CALL_INIT && c->kind != CALL_DELETE) {
        mcpgw_upmcp_enter(u);
        report_gone(u);
        if (!mcpgw_upmcp_leave(u))
            mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_GONE, NULL,
                               "the upstream no longer knows the session (HTTP 404)");
        return;
    }
    if (c->status >= 300) {
        c->mode = BODY_ERROR;
        return;
    }
    if (c->kind == CALL_INIT) {
        const char *sid = mcpgw_hc_req_header(r, "Mcp-Session-Id");
        free(u->sid);
        u->sid = sid && *sid ? xstrdup(sid) : NULL;
    }
    if (c->kind == CALL_SEND || c->kind == CALL_INITIALIZED || c->kind == CALL_DELETE) {
        c->mode = BODY_NONE;
        return;
    }
    if (c->status == 202) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL,
                           "%s was answered 202 Accepted, with no answer", c->method);
    } else if (ct && strncasecmp(ct, "text/event-stream", 17) == 0) {
        c->mode = BODY_SSE;
        c->sse = mcpgw_sse_parser_new(u->max_msg, mcpgw_upmcp_q_push, &c->q);
    } else if (ct && strncasecmp(ct, "application/json", 16) == 0) {
        c->mode = BODY_JSON;
    } else {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL,
                           "%s was answered with Content-Type '%s'", c->method, ct ? ct : "(none)");
    }
}

static void append_body(struct mcpgw_upmcp_call *c, const char *buf, size_t len)
{
    if (c->body_len + len + 1 > c->body_cap) {
        c->body_cap = (c->body_len + len + 1) * 2;
        c->body = xrealloc(c->body, c->body_cap);
    }
    memcpy(c->body + c->body_len, buf, len);
    c->body_len += len;
    c->body[c->body_len] = 0;
}

/* Dispatches what the stream parser queued; stops when the call ends. */
static void drain_queue(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_upmcp *u = c->u;
    size_t i;
    c->busy++;
    mcpgw_upmcp_enter(u);
    for (i = 0; i < c->q.n && !c->finished && !u->dying && c->step == STEP_NONE; i++)
        dispatch(c, c->q.v[i].id, c->q.v[i].data, c->q.v[i].len, 1);
    mcpgw_upmcp_q_clear(&c->q, 0);
    mcpgw_upmcp_leave(u); /* may free u: a busy call is only unlinked then, and ends here */
    if (!--c->busy && c->finished)
        mcpgw_upmcp_call_free(c);
}

static void on_call_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct mcpgw_upmcp_call *c = arg;
    struct mcpgw_upmcp *u = c->u;
    if (c->finished)
        return;
    switch (c->mode) {
    case BODY_NONE:
        break;
    case BODY_ERROR:
        if (c->body_len < ERR_BODY_MAX)
            append_body(c, buf, len < ERR_BODY_MAX ? len : ERR_BODY_MAX);
        break;
    case BODY_JSON:
        if (c->body_len + len > u->max_msg) {
            mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TOO_BIG, NULL,
                               "the answer to %s is over the %zu-byte cap", c->method, u->max_msg);
            return;
        }
        append_body(c, buf, len);
        break;
    case BODY_SSE:
        if (mcpgw_sse_parser_feed(c->sse, buf, len) < 0) {
            mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TOO_BIG, NULL,
                               "a line on the answer stream of %s is over the %zu-byte cap",
                               c->method, u->max_msg);
            return;
        }
        drain_queue(c);
        break;
    }
}

static void on_call_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    struct mcpgw_upmcp_call *c = arg;
    struct mcpgw_upmcp *u = c->u;
    c->req = NULL; /* the client frees r after this returns */
    if (c->finished)
        return;
    if (err == MCPGW_HC_E_TIMEOUT) {
        if (c->kind == CALL_REQUEST && u->ready) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
                     "{\"requestId\":%lld,\"reason\":\"timeout\"}}",
                     c->id);
            mcpgw_upmcp_send(u, msg, strlen(msg), NULL, NULL);
        }
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TIMEOUT, NULL, "no answer to %s within %ld ms",
                           c->method, u->timeout_ms);
    } else if (err != MCPGW_HC_OK && c->mode != BODY_SSE) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TRANSPORT, NULL, "%s failed: %s", c->method, why);
    } else if (c->mode == BODY_ERROR && u->era26 && mcpgw_upmcp26_mismatch(c)) {
        return; /* listed again and sent again, or ended */
    } else if (c->mode == BODY_ERROR) {
        json_object *o = c->body ? json_tokener_parse(c->body) : NULL;
        const char *msg = mcpgw_json_str(mcpgw_json_obj(o, "error"), "message");
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_HTTP, NULL, "%s was answered HTTP %ld%s%s", c->method,
                           c->status, msg ? ": " : "", msg ? msg : "");
        json_object_put(o);
    } else if (c->mode == BODY_JSON) {
        c->busy++;
        dispatch(c, NULL, c->body ? c->body : "", c->body_len, 0);
        c->busy--;
        if (!c->finished && c->step != STEP_NONE)
            return; /* input_required: the call goes on */
        if (!c->finished)
            mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL, "no answer to %s", c->method);
        else if (!c->busy)
            mcpgw_upmcp_call_free(c);
    } else if (c->mode == BODY_SSE) {
        mcpgw_upmcp_finish(c, err == MCPGW_HC_OK ? MCPGW_UPMCP_E_PROTOCOL : MCPGW_UPMCP_E_TRANSPORT,
                           NULL, "the stream answering %s ended before the answer%s%s", c->method,
                           err == MCPGW_HC_OK ? "" : ": ", err == MCPGW_HC_OK ? "" : why);
    } else {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_OK, NULL,
                           NULL); /* a notification or response was accepted */
    }
}

static const struct mcpgw_hc_cbs call_hc_cbs = {on_call_head, on_call_body, on_call_done};

static void on_call_cred(void *arg, const char *why);

/* Sends c's request as it is kept in c (see mcpgw_upmcp_call_post). */
static int call_send(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_upmcp *u = c->u;
    const char *auth = NULL;
    char **h, err[256];
    struct mcpgw_hc_opts o = {0};
    if (u->cred && !(auth = mcpgw_upcred_header(u->cred, &c->gen))) {
        c->wait = mcpgw_upcred_refresh(u->cred, 0, on_call_cred, c);
        return 0;
    }
    h = build_headers(u, c->kind, "Accept: application/json, text/event-stream", NULL, c->extra,
                      auth);
    o.method = c->kind == CALL_DELETE ? "DELETE" : "POST";
    o.url = u->url;
    o.headers = (const char *const *)h;
    o.body = c->post_body;
    o.body_len = c->post_len;
    o.timeout_ms = c->kind == CALL_REQUEST || c->kind == CALL_INIT ? u->timeout_ms : 30000;
    o.flags = u->flags;
    c->req = mcpgw_hc_start(u->hc, &o, &call_hc_cbs, c, err, sizeof(err));
    free_headers(h);
    if (!c->req) {
        log_warn("upstream %s: %s", u->name, err);
        return -1;
    }
    if (!u->cred) /* never sent again: the client has its copy */
        call_forget_request(c);
    return 0;
}

int mcpgw_upmcp_call_post(struct mcpgw_upmcp_call *c, char *body, size_t len, char **extra)
{
    call_forget_request(c);
    c->post_body = body;
    c->post_len = len;
    for (size_t i = 0; extra && i < MCPGW_UPMCP_EXTRA && extra[i]; i++)
        c->extra[i] = extra[i];
    c->auth_retried = 0;
    return call_send(c);
}

static void on_call_cred(void *arg, const char *why)
{
    struct mcpgw_upmcp_call *c = arg;
    c->wait = NULL;
    if (why)
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_AUTH, NULL, "%s (%s not sent)", why, c->method);
    else if (call_send(c) < 0)
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TRANSPORT, NULL, "%s could not be sent", c->method);
}

/* Posts body (taken) as a new call of this kind, with the extra headers (taken, as
 * mcpgw_upmcp_call_post). */
struct mcpgw_upmcp_call *mcpgw_upmcp_call_start(struct mcpgw_upmcp *u, enum call_kind kind,
                                                const char *method, long long id, char *body,
                                                size_t len, char **extra)
{
    struct mcpgw_upmcp_call *c = xcalloc(1, sizeof(*c));
    c->u = u;
    c->kind = kind;
    c->id = id;
    c->method = xstrdup(method);
    if (mcpgw_upmcp_call_post(c, body, len, extra) < 0) {
        mcpgw_upmcp_call_free(c);
        return NULL;
    }
    c->next = u->calls;
    if (u->calls)
        u->calls->prev = c;
    u->calls = c;
    return c;
}

/* ---- initialize ---- */

void mcpgw_upmcp_ready(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    struct mcpgw_upmcp *u = arg;
    u->initializing = 0;
    u->ready = err == MCPGW_UPMCP_OK;
    if (u->cbs.on_ready)
        u->cbs.on_ready(u->arg, err, why);
}

static void internal_reply(struct mcpgw_upmcp_call *c, enum mcpgw_upmcp_err err, const char *why,
                           const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upmcp *u = c->u;
    const char *v;
    size_t len;
    char *body;
    if (c->kind == CALL_INITIALIZED) {
        mcpgw_upmcp_ready(u, err, why);
        return;
    }
    if (strcmp(c->method, "server/discover") == 0) {
        mcpgw_upmcp26_discover_reply(u, err, why, m);
        return;
    }
    /* CALL_INIT */
    if (err == MCPGW_UPMCP_OK && m->error) {
        char buf[512];
        snprintf(buf, sizeof(buf), "upstream %s: initialize failed: %s", u->name,
                 json_object_to_json_string(m->error));
        mcpgw_upmcp_ready(u, MCPGW_UPMCP_E_PROTOCOL, buf);
        return;
    }
    if (err != MCPGW_UPMCP_OK) {
        mcpgw_upmcp_ready(u, err, why);
        return;
    }
    v = mcpgw_json_str(m->result, "protocolVersion");
    if (!version_known(v)) {
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "upstream %s: initialize answered revision '%s', which we do not speak", u->name,
                 v ? v : "(none)");
        mcpgw_upmcp_ready(u, MCPGW_UPMCP_E_PROTOCOL, buf);
        return;
    }
    free(u->version);
    u->version = xstrdup(v);
    json_object_put(u->server_result);
    u->server_result = json_object_get(m->result);
    body = mcpgw_jsonrpc_notification("notifications/initialized", NULL, &len);
    if (!mcpgw_upmcp_call_start(u, CALL_INITIALIZED, "notifications/initialized", 0, body, len,
                                NULL))
        mcpgw_upmcp_ready(u, MCPGW_UPMCP_E_TRANSPORT, "could not send notifications/initialized");
}

/* Sends initialize, with u->caps. Returns 0 or -1. */
int mcpgw_upmcp_send_initialize(struct mcpgw_upmcp *u)
{
    json_object *p, *info, *id;
    char *body;
    size_t len;
    p = json_object_new_object();
    json_object_object_add(p, "protocolVersion", json_object_new_string(versions[0]));
    json_object_object_add(p, "capabilities", json_object_get(u->caps));
    info = json_object_new_object();
    json_object_object_add(info, "name", json_object_new_string("mcpgw"));
    json_object_object_add(info, "version", json_object_new_string("1"));
    json_object_object_add(p, "clientInfo", info);
    free(u->version);
    u->version = NULL;
    id = json_object_new_int64(++u->next_id);
    body = mcpgw_jsonrpc_request(id, "initialize", p, &len);
    json_object_put(id);
    u->initializing = 1;
    if (!mcpgw_upmcp_call_start(u, CALL_INIT, "initialize", u->next_id, body, len, NULL)) {
        u->initializing = 0;
        return -1;
    }
    return 0;
}

int mcpgw_upmcp_initialize(struct mcpgw_upmcp *u, json_object *client_capabilities)
{
    if (u->sid || u->ready || u->initializing) {
        json_object_put(client_capabilities);
        return -1;
    }
    json_object_put(u->caps);
    u->caps = client_capabilities ? client_capabilities : json_object_new_object();
    u->era26 = 0;
    free(u->version);
    u->version = NULL;
    if (u->want_era != MCPGW_UPMCP_ERA_SESSION)
        return mcpgw_upmcp26_discover(u);
    return mcpgw_upmcp_send_initialize(u);
}

int mcpgw_upmcp_adopt(struct mcpgw_upmcp *u, const char *session_id, const char *version)
{
    if (u->ready || u->initializing || !version_known(version) || !session_id || !*session_id)
        return -1;
    free(u->sid);
    free(u->version);
    u->sid = xstrdup(session_id);
    u->version = xstrdup(version);
    u->ready = 1;
    return 0;
}

/* ---- requests, notifications, responses ---- */

struct mcpgw_upmcp_call *mcpgw_upmcp_request(struct mcpgw_upmcp *u, const char *method,
                                             json_object *params,
                                             const struct mcpgw_upmcp_call_cbs *cbs, void *arg)
{
    struct mcpgw_upmcp_call *c;
    json_object *id;
    char *body;
    size_t len;
    char *extra[MCPGW_UPMCP_EXTRA] = {NULL};
    if (!u->ready || u->dying) {
        json_object_put(params);
        return NULL;
    }
    if (u->era26) {
        int n;
        if (strcmp(method, "resources/subscribe") == 0 ||
            strcmp(method, "resources/unsubscribe") == 0)
            return mcpgw_upmcp26_local_call(u, method, params, cbs, arg);
        params = mcpgw_up26_params(params, u->caps);
        n = mcpgw_up26_headers(method, params, extra);
        mcpgw_upmcp26_param_headers(u, method, params, extra + n, MCPGW_UPMCP_EXTRA - n);
        json_object_get(params); /* kept for the retries of input_required rounds */
    } else if (u->want_era != MCPGW_UPMCP_ERA_SESSION && params) {
        /* protocol=auto fell back: the revision's per-request log level is not this era's */
        json_object *meta = mcpgw_json_obj(params, "_meta");
        if (meta)
            json_object_object_del(meta, "io.modelcontextprotocol/logLevel");
    }
    id = json_object_new_int64(++u->next_id);
    body = mcpgw_jsonrpc_request(id, method, params, &len);
    json_object_put(id);
    c = mcpgw_upmcp_call_start(u, CALL_REQUEST, method, u->next_id, body, len, extra);
    if (c) {
        c->cbs = *cbs;
        c->arg = arg;
        c->params = u->era26 ? params : NULL;
    } else if (u->era26) {
        json_object_put(params);
    }
    return c;
}

long long mcpgw_upmcp_call_id(const struct mcpgw_upmcp_call *c)
{
    return c->id;
}

void mcpgw_upmcp_call_cancel(struct mcpgw_upmcp_call *c, int notify)
{
    struct mcpgw_upmcp *u = c->u;
    if (c->finished)
        return;
    c->finished = 1;
    call_unlink(c);
    mcpgw_upcred_wait_cancel(c->wait);
    c->wait = NULL;
    if (notify && u->ready) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
                 "{\"requestId\":%lld,\"reason\":\"cancelled by the client\"}}",
                 c->id);
        mcpgw_upmcp_send(u, msg, strlen(msg), NULL, NULL);
    }
    if (c->req) {
        mcpgw_hc_req_cancel(c->req);
        c->req = NULL;
    }
    if (!c->busy)
        mcpgw_upmcp_call_free(c);
}

int mcpgw_upmcp_send(struct mcpgw_upmcp *u, const char *msg, size_t len,
                     void (*done)(void *arg, enum mcpgw_upmcp_err err, const char *why), void *arg)
{
    struct mcpgw_upmcp_call *c;
    if (!u->ready || u->dying)
        return -1;
    if (u->era26)
        return mcpgw_upmcp26_send(u, msg, len, done, arg);
    c = mcpgw_upmcp_call_start(u, CALL_SEND, "a notification or response", 0, xstrndup(msg, len),
                               len, NULL);
    if (!c)
        return -1;
    c->send_done = done;
    c->arg = arg;
    return 0;
}

/* ---- the GET stream ---- */

static void on_get_cred(void *arg, const char *why);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upmcp *u = arg;
    if (u->listen_wanted && !u->get && u->ready)
        mcpgw_upmcp_listen_open(u);
}

void mcpgw_upmcp_listen_again(struct mcpgw_upmcp *u)
{
    struct timeval tv;
    if (!u->listen_wanted || u->dying)
        return;
    if (u->listen_got) { /* the last stream delivered: start the backoff afresh */
        u->backoff_ms = LISTEN_MIN_MS;
        u->listen_got = 0;
    }
    tv.tv_sec = u->backoff_ms / 1000;
    tv.tv_usec = (u->backoff_ms % 1000) * 1000;
    evtimer_add(u->retry, &tv);
    u->backoff_ms = u->backoff_ms * 2 > LISTEN_MAX_MS ? LISTEN_MAX_MS : u->backoff_ms * 2;
}

static void on_get_head(void *arg, struct mcpgw_hc_req *r)
{
    struct mcpgw_upmcp *u = arg;
    long st = mcpgw_hc_req_status(r);
    const char *ct = mcpgw_hc_req_header(r, "Content-Type");
    if (u->era26) {
        mcpgw_upmcp26_listen_head(u, r);
        return;
    }
    if (st == 200 && ct && strncasecmp(ct, "text/event-stream", 17) == 0) {
        u->listening = 1;
        u->get_refused = 0;
        if (u->get_sse)
            mcpgw_sse_parser_free(u->get_sse);
        u->get_sse = mcpgw_sse_parser_new(u->max_msg, mcpgw_upmcp_q_push, &u->get_q);
        return;
    }
    mcpgw_hc_req_cancel(r);
    u->get = NULL;
    mcpgw_upmcp_listen_refused(u, st);
}

void mcpgw_upmcp_listen_refused(struct mcpgw_upmcp *u, long st)
{
    mcpgw_upmcp_enter(u);
    if (st == 401 && u->cred && !u->get_refused) {
        /* A new token at once; a second refusal in a row waits for the backoff. */
        u->get_refused = 1;
        u->get_wait = mcpgw_upcred_refresh(u->cred, u->get_gen, on_get_cred, u);
    } else if (st == 405) {
        log_info("upstream %s offers no GET stream (405): not listening", u->name);
        u->listen_wanted = 0;
    } else if (st == 404 && u->sid) {
        report_gone(u);
    } else {
        log_warn("upstream %s: the GET stream was answered HTTP %ld; retrying", u->name, st);
        mcpgw_upmcp_listen_again(u);
    }
    mcpgw_upmcp_leave(u);
}

static void on_get_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct mcpgw_upmcp *u = arg;
    if (u->era26) {
        mcpgw_upmcp26_listen_body(u, r, buf, len);
        return;
    }
    if (!u->get_sse)
        return;
    if (mcpgw_sse_parser_feed(u->get_sse, buf, len) < 0) {
        log_warn("upstream %s: a line on the GET stream is over the %zu-byte cap; reconnecting",
                 u->name, u->max_msg);
        mcpgw_upmcp_q_clear(&u->get_q, 0);
        mcpgw_hc_req_cancel(r);
        u->get = NULL;
        u->listening = 0;
        mcpgw_upmcp_listen_again(u);
        return;
    }
    mcpgw_upmcp_enter(u);
    for (size_t i = 0; i < u->get_q.n && !u->dying; i++) {
        struct ev_item *e = &u->get_q.v[i];
        struct mcpgw_jsonrpc_msg m;
        const char *why = NULL;
        json_object *bad = NULL;
        if (e->id) {
            free(u->last_event_id);
            u->last_event_id = xstrdup(e->id);
        }
        u->listen_got = 1;
        if (e->len == 0)
            continue; /* priming event */
        if (e->len > u->max_msg || mcpgw_jsonrpc_parse(e->data, e->len, &m, &bad, &why) != 0) {
            json_object_put(bad);
            log_warn("upstream %s: dropped a message on the GET stream: %s", u->name,
                     e->len > u->max_msg ? "over the size cap" : why);
            continue;
        }
        if (u->cbs.on_message)
            u->cbs.on_message(u->arg, e->id, &m);
        mcpgw_jsonrpc_msg_deinit(&m);
    }
    mcpgw_upmcp_q_clear(&u->get_q, 0);
    mcpgw_upmcp_leave(u);
}

static void on_get_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    struct mcpgw_upmcp *u = arg;
    if (u->era26) {
        mcpgw_upmcp26_listen_done(u, r, err, why);
        return;
    }
    u->get = NULL;
    u->listening = 0;
    log_debug("upstream %s: the GET stream ended (%s)", u->name, why);
    mcpgw_upmcp_listen_again(u);
}

static const struct mcpgw_hc_cbs get_hc_cbs = {on_get_head, on_get_body, on_get_done};

static void on_get_cred(void *arg, const char *why)
{
    struct mcpgw_upmcp *u = arg;
    u->get_wait = NULL;
    if (why) {
        log_warn("upstream %s: the GET stream waits for a token: %s", u->name, why);
        mcpgw_upmcp_listen_again(u);
    } else if (u->listen_wanted && !u->get && u->ready) {
        mcpgw_upmcp_listen_open(u);
    }
}

void mcpgw_upmcp_listen_open(struct mcpgw_upmcp *u)
{
    const char *auth = NULL;
    char **h;
    struct mcpgw_hc_opts o = {.method = "GET", .url = u->url, .flags = u->flags};
    char err[256];
    if (u->get_wait)
        return;
    if (u->cred && !(auth = mcpgw_upcred_header(u->cred, &u->get_gen))) {
        u->get_wait = mcpgw_upcred_refresh(u->cred, 0, on_get_cred, u);
        return;
    }
    if (u->era26) {
        mcpgw_upmcp26_listen_open(u, auth);
        return;
    }
    h = build_headers(u, CALL_REQUEST, "Accept: text/event-stream", u->last_event_id, NULL, auth);
    o.headers = (const char *const *)h;
    u->get = mcpgw_hc_start(u->hc, &o, &get_hc_cbs, u, err, sizeof(err));
    free_headers(h);
    if (!u->get)
        log_warn("upstream %s: %s", u->name, err);
}

struct mcpgw_hc_req *mcpgw_upmcp_listen_post(struct mcpgw_upmcp *u, const char *auth)
{
    json_object *p = mcpgw_up26_listen_params(u->watch, u->nwatch, u->caps);
    json_object *id = json_object_new_int64(++u->next_id);
    char **h, *extra[4] = {NULL, NULL, NULL, NULL}, *body, err[256];
    struct mcpgw_hc_opts o = {.method = "POST", .url = u->url, .flags = u->flags};
    struct mcpgw_hc_req *r;
    mcpgw_up26_headers("subscriptions/listen", p, extra);
    body = mcpgw_jsonrpc_request(id, "subscriptions/listen", p, &o.body_len);
    json_object_put(id);
    o.body = body;
    h = build_headers(u, CALL_REQUEST, "Accept: application/json, text/event-stream", NULL, extra,
                      auth);
    for (size_t i = 0; extra[i]; i++)
        free(extra[i]);
    o.headers = (const char *const *)h;
    r = mcpgw_hc_start(u->hc, &o, &get_hc_cbs, u, err, sizeof(err));
    free_headers(h);
    free(body);
    if (!r)
        log_warn("upstream %s: %s", u->name, err);
    return r;
}

int mcpgw_upmcp_listen(struct mcpgw_upmcp *u, const char *last_event_id)
{
    if (!u->ready || u->dying)
        return -1;
    if (last_event_id) {
        free(u->last_event_id);
        u->last_event_id = xstrdup(last_event_id);
    }
    u->listen_wanted = 1;
    u->backoff_ms = LISTEN_MIN_MS;
    if (!u->get)
        mcpgw_upmcp_listen_open(u);
    return 0;
}

const char *mcpgw_upmcp_last_event_id(const struct mcpgw_upmcp *u)
{
    return u->last_event_id;
}

int mcpgw_upmcp_listening(const struct mcpgw_upmcp *u)
{
    return u->listening;
}

/* ---- lifetime ---- */

struct mcpgw_upmcp *mcpgw_upmcp_new(struct mcpgw_hc *hc, const struct mcpgw_upmcp_cfg *cfg,
                                    const struct mcpgw_upmcp_cbs *cbs, void *arg)
{
    struct mcpgw_upmcp *u = xcalloc(1, sizeof(*u));
    u->hc = hc;
    u->name = xstrdup(cfg->name ? cfg->name : "?");
    u->url = xstrdup(cfg->url);
    for (const char *const *h = cfg->headers; h && *h; h++)
        u->nheaders++;
    u->headers = xcalloc(u->nheaders + 1, sizeof(*u->headers));
    for (size_t i = 0; i < u->nheaders; i++)
        u->headers[i] = xstrdup(cfg->headers[i]);
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    u->max_msg = cfg->max_msg ? cfg->max_msg : MCPGW_UPMCP_MAX_MSG;
    u->flags = cfg->flags;
    if (cfg->oauth)
        u->cred = mcpgw_upcred_acquire(mcpgw_hc_base(hc), u->name, cfg->oauth);
    if (cbs)
        u->cbs = *cbs;
    u->arg = arg;
    u->retry = evtimer_new(mcpgw_hc_base(hc), on_retry, u);
    u->kick = evtimer_new(mcpgw_hc_base(hc), mcpgw_upmcp26_on_kick, u);
    u->want_era = cfg->era;
    return u;
}

void mcpgw_upmcp_set_cfg(struct mcpgw_upmcp *u, const struct mcpgw_upmcp_cfg *cfg)
{
    /* Requests build their headers when they start: those in flight keep the old ones. */
    for (size_t i = 0; i < u->nheaders; i++)
        free(u->headers[i]);
    free(u->headers);
    u->nheaders = 0;
    for (const char *const *h = cfg->headers; h && *h; h++)
        u->nheaders++;
    u->headers = xcalloc(u->nheaders + 1, sizeof(*u->headers));
    for (size_t i = 0; i < u->nheaders; i++)
        u->headers[i] = xstrdup(cfg->headers[i]);
    u->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    u->max_msg = cfg->max_msg ? cfg->max_msg : MCPGW_UPMCP_MAX_MSG;
    /* New OAuth settings (a rotated client secret): the next request asks the new token source.
     * One waiting for a token of the old source finishes with it; that source is kept until the
     * next change or the end of the session, so such a wait never outlives it. */
    {
        struct mcpgw_upcred *nc =
            cfg->oauth ? mcpgw_upcred_acquire(mcpgw_hc_base(u->hc), u->name, cfg->oauth) : NULL;
        if (nc == u->cred) {
            mcpgw_upcred_release(nc); /* the same source: drop the extra reference */
        } else {
            mcpgw_upcred_release(u->old_cred);
            u->old_cred = u->cred;
            u->cred = nc;
        }
    }
}

const char *mcpgw_upmcp_session_id(const struct mcpgw_upmcp *u)
{
    return u->sid;
}

const char *mcpgw_upmcp_version(const struct mcpgw_upmcp *u)
{
    return u->version;
}

json_object *mcpgw_upmcp_server_result(const struct mcpgw_upmcp *u)
{
    return u->server_result;
}

static void really_free(struct mcpgw_upmcp *u)
{
    for (struct mcpgw_upmcp_call *c = u->calls; c; c = c->next)
        c->relist = NULL; /* each is freed below */
    while (u->calls) {
        struct mcpgw_upmcp_call *c = u->calls;
        call_unlink(c);
        c->finished = 1;
        if (!c->busy) /* a busy one is freed by whoever holds it */
            mcpgw_upmcp_call_free(c);
    }
    if (u->get)
        mcpgw_hc_req_cancel(u->get);
    mcpgw_upmcp26_listen_stop(u);
    if (u->retire)
        event_free(u->retire);
    for (size_t i = 0; i < sizeof(u->ttl) / sizeof(u->ttl[0]); i++)
        if (u->ttl[i])
            event_free(u->ttl[i]);
    mcpgw_upcred_wait_cancel(u->get_wait);
    mcpgw_upcred_release(u->cred);
    mcpgw_upcred_release(u->old_cred);
    if (u->get_sse)
        mcpgw_sse_parser_free(u->get_sse);
    mcpgw_upmcp_q_clear(&u->get_q, 0);
    free(u->get_q.v);
    event_free(u->retry);
    event_free(u->kick);
    json_object_put(u->caps);
    for (size_t i = 0; i < u->nwatch; i++)
        free(u->watch[i]);
    free(u->watch);
    for (size_t i = 0; i < u->nheaders; i++)
        free(u->headers[i]);
    free(u->headers);
    json_object_put(u->server_result);
    free(u->sid);
    free(u->version);
    free(u->last_event_id);
    free(u->name);
    free(u->url);
    free(u);
}

void mcpgw_upmcp_free(struct mcpgw_upmcp *u)
{
    if (!u || u->dying)
        return;
    u->dying = 1;
    if (!u->busy)
        really_free(u);
}

static void on_deleted(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    struct mcpgw_upmcp *u = arg;
    if (err != MCPGW_UPMCP_OK)
        log_debug("%s (DELETE)", why);
    if (u->close_done)
        u->close_done(u->close_arg);
    mcpgw_upmcp_free(u);
}

void mcpgw_upmcp_close(struct mcpgw_upmcp *u, void (*done)(void *arg), void *arg)
{
    struct mcpgw_upmcp_call *c;
    u->close_done = done;
    u->close_arg = arg;
    u->listen_wanted = 0;
    evtimer_del(u->retry);
    mcpgw_upcred_wait_cancel(u->get_wait);
    u->get_wait = NULL;
    mcpgw_upmcp26_listen_stop(u);
    if (u->get) {
        mcpgw_hc_req_cancel(u->get);
        u->get = NULL;
        u->listening = 0;
    }
    mcpgw_upmcp_enter(u);
    while ((c = u->calls) && !u->dying)
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_CLOSED, NULL,
                           "the session was closed before %s was answered", c->method);
    u->ready = 0;
    if (mcpgw_upmcp_leave(u))
        return;
    if (u->sid && (c = mcpgw_upmcp_call_start(u, CALL_DELETE, "DELETE", 0, NULL, 0, NULL))) {
        c->send_done = on_deleted;
        c->arg = u;
        return;
    }
    on_deleted(u, MCPGW_UPMCP_OK, "no session to delete");
}
