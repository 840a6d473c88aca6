/* upstream.c - the node's upstream MCP servers at run time (see upstream.h). */
#include "node/upstream.h"

#include "common/httpclient.h"
#include "common/log.h"
#include "common/util.h"
#include "node/config.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/stdiomcp.h"
#include "node/upcfg.h"
#include "node/upmcp.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS   500
#define RETRY_MAX_MS   30000
#define MAX_LIST_PAGES 1000 /* a list longer than this many pages is cut there, with a log line */

struct mcpgw_upstream_call {
    struct mcpgw_upstream *u;
    struct mcpgw_upstream_call *next, *prev;
    struct mcpgw_upmcp_call *hcall;
    struct mcpgw_upstdio_call *scall;
    struct mcpgw_upstream_call_cbs cbs;
    void *arg;
    char *token;                    /* the progress token the caller sent, or NULL */
    struct mcpgw_breaker_ticket tk; /* admitted by the upstream's breaker (node/breaker.h) */
    /* HTTP: what to send again if the upstream answers 404 for its session before the call
     * reached it (one retry after initializing again); parked while that initialize runs. */
    char *method;
    json_object *params;
    int retried, parked;
};

/* A list being fetched, page by page. */
struct fetch {
    struct mcpgw_upstream *u;
    enum mcpgw_catalog_kind k;
    struct mcpgw_upstream_call *call;
    json_object *acc; /* descriptors so far */
    int pages;
    int again; /* list_changed arrived meanwhile: fetch once more afterwards */
};

struct mcpgw_upstream {
    struct mcpgw_upstream_set *set;
    struct mcpgw_upcfg *cfg; /* own copy */
    struct mcpgw_upmcp *http;
    struct mcpgw_stdiomcp *stdio;
    int ready;
    json_object *lists[MCPGW_CATALOG_KIND_COUNT]; /* as last fetched; NULL: never */
    struct fetch fetch[MCPGW_CATALOG_KIND_COUNT];
    struct mcpgw_upstream_call *calls;
    struct event *retry_ev; /* HTTP: initialize again after a failure */
    json_object *watched;   /* URIs subscribed at the upstream (object used as a set) */
    long backoff_ms;
    struct mcpgw_breaker *br; /* breaker, bulkhead, metrics, health */
    int stateful;             /* HTTP: its last initialize gave an Mcp-Session-Id */
    uint64_t epoch;           /* unique per start: tells this breaker from a replaced one */
};

struct mcpgw_upstream_set {
    struct mcpgw_node *n;
    const struct mcpgw_upstream_hooks *hooks;
    struct mcpgw_hc *hc; /* created with the first http upstream */
    struct mcpgw_upstream **v;
    int nv;
    struct mcpgw_catalog *cat;
    struct event *rebuild_ev; /* coalesces the catalogue rebuilds of one loop turn */
};

static const char *const list_methods[MCPGW_CATALOG_KIND_COUNT] = {
    "tools/list", "prompts/list", "resources/list", "resources/templates/list"};

const char *mcpgw_upstream_err_str(enum mcpgw_upstream_err e)
{
    static const char *const s[] = {"ok", "down", "timeout", "failed"};
    return e < MCPGW_UPSTREAM_E_COUNT ? s[e] : "?";
}

const struct mcpgw_upcfg *mcpgw_upstream_cfg(const struct mcpgw_upstream *u)
{
    return u->cfg;
}

int mcpgw_upstream_per_client(const struct mcpgw_upstream *u)
{
    if (u->cfg->kind != MCPGW_UPCFG_HTTP)
        return 0; /* stdio per-client children are upproc.c's, chosen explicitly */
    if (u->cfg->session != MCPGW_UPCFG_SESSION_DEFAULT)
        return u->cfg->session == MCPGW_UPCFG_SESSION_PER_CLIENT;
    return u->stateful;
}

static uint64_t epochs; /* upstreams started so far */

static struct mcpgw_upstream *by_name(const struct mcpgw_node *n, const char *name)
{
    for (int i = 0; n->ups && i < n->ups->nv; i++)
        if (n->ups->v[i] && strcmp(n->ups->v[i]->cfg->name, name) == 0)
            return n->ups->v[i];
    return NULL;
}

struct mcpgw_upstream *mcpgw_upstream_find(const struct mcpgw_node *n, const char *name)
{
    return by_name(n, name);
}

struct mcpgw_breaker *mcpgw_upstream_breaker(const struct mcpgw_node *n, const char *name,
                                             uint64_t *epoch)
{
    struct mcpgw_upstream *u = by_name(n, name);
    *epoch = u ? u->epoch : 0;
    return u ? u->br : NULL;
}

json_object *mcpgw_upstream_server(const struct mcpgw_upstream *u)
{
    if (!u->ready)
        return NULL;
    return u->http ? mcpgw_upmcp_server_result(u->http) : mcpgw_stdiomcp_server_result(u->stdio);
}

const struct mcpgw_catalog *mcpgw_upstream_catalog(const struct mcpgw_node *n)
{
    return n->ups ? n->ups->cat : NULL;
}

size_t mcpgw_upstream_health(const struct mcpgw_node *n, char *buf, size_t len)
{
    const struct mcpgw_upstream_set *set = n->ups;
    size_t used = 0;
    for (int i = 0; set && i < set->nv && used + 1 < len; i++)
        used += mcpgw_breaker_health(set->v[i]->br, buf + used, len - used);
    if (len)
        buf[used] = '\0';
    return used;
}

int mcpgw_upstream_count(const struct mcpgw_node *n)
{
    return n->ups ? n->ups->nv : 0;
}

/* ---- the catalogue ---- */

static void on_rebuild(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upstream_set *set = arg;
    struct mcpgw_catalog_src *srcs = xcalloc((size_t)set->nv + 1, sizeof(*srcs));
    struct mcpgw_catalog *old = set->cat;
    unsigned changed = 0;
    for (int i = 0; i < set->nv; i++) {
        srcs[i].cfg = set->v[i]->cfg;
        srcs[i].owner = set->v[i];
        memcpy(srcs[i].lists, set->v[i]->lists, sizeof(srcs[i].lists));
    }
    set->cat = mcpgw_catalog_build(srcs, set->nv, set->hooks->tool_call);
    free(srcs);
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++)
        if (!old || !json_object_equal(mcpgw_catalog_list(old, (enum mcpgw_catalog_kind)k),
                                       mcpgw_catalog_list(set->cat, (enum mcpgw_catalog_kind)k)))
            changed |= 1u << k;
    mcpgw_catalog_free(old);
    if (changed && old && set->hooks->on_changed)
        set->hooks->on_changed(set->n, changed);
}

static void schedule_rebuild(struct mcpgw_upstream_set *set)
{
    static const struct timeval zero = {0, 0};
    evtimer_add(set->rebuild_ev, &zero);
}

/* ---- calls ---- */

static void call_unlink(struct mcpgw_upstream_call *c)
{
    struct mcpgw_upstream *u = c->u;
    if (c->prev)
        c->prev->next = c->next;
    else if (u->calls == c)
        u->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void call_free(struct mcpgw_upstream_call *c)
{
    free(c->token);
    free(c->method);
    json_object_put(c->params);
    free(c);
}

static void call_end(struct mcpgw_upstream_call *c, enum mcpgw_upstream_err err, const char *why,
                     const struct mcpgw_jsonrpc_msg *m)
{
    call_unlink(c);
    c->hcall = NULL;
    c->scall = NULL;
    /* The reply paths told the breaker how it ended; anything else (removal, shutdown) says
     * nothing about the upstream's health. */
    mcpgw_breaker_done(c->u->br, &c->tk, MCPGW_BREAKER_NEUTRAL, "closed");
    if (c->cbs.on_reply)
        c->cbs.on_reply(c->arg, err, why, m);
    call_free(c);
}

/* Answer a server-to-client request that came on a shared session: ping is answered, the rest
 * refused (requests on a call's stream go to that call's client: on_request). */
static void answer_server_request(struct mcpgw_upstream *u, const struct mcpgw_jsonrpc_msg *m)
{
    size_t len;
    char *msg, why[200];
    if (strcmp(m->method, "ping") == 0) {
        msg = mcpgw_msg_result(m->id, json_object_new_object(), &len);
    } else {
        snprintf(why, sizeof(why),
                 "mcpgw: %.60s is not forwarded to clients from the shared session of upstream "
                 "%s",
                 m->method, u->cfg->name);
        msg = mcpgw_msg_error(m->id, MCPGW_JSONRPC_METHOD_NOT_FOUND, why, &len);
        log_info("upstream %s sent %s: refused (%s)", u->cfg->name, m->method,
                 "no client to forward it to");
    }
    if (u->http)
        mcpgw_upmcp_send(u->http, msg, len, NULL, NULL);
    else
        mcpgw_stdiomcp_send(u->stdio, msg, len);
    free(msg);
}

static void fetch_start(struct mcpgw_upstream *u, enum mcpgw_catalog_kind k);

/* A message of the session itself (GET stream, stdout), or one on a call's stream that is not
 * that call's (list_changed). */
static void session_message(struct mcpgw_upstream *u, const struct mcpgw_jsonrpc_msg *m)
{
    const char *meth = m->method;
    if (m->kind == MCPGW_JSONRPC_REQUEST) {
        /* A stdio child's request names no call: it belongs to the only call that could take
         * it, if exactly one is in flight (several: no way to tell whose client it is for). */
        struct mcpgw_upstream_call *only = NULL;
        int n = 0;
        for (struct mcpgw_upstream_call *c = u->calls; c; c = c->next)
            if (c->cbs.on_request)
                only = c, n++;
        if (n == 1 && strcmp(m->method, "ping") != 0) {
            only->cbs.on_request(only->arg, m);
            return;
        }
        answer_server_request(u, m);
        return;
    }
    if (m->kind != MCPGW_JSONRPC_NOTIFICATION)
        return;
    if (strcmp(meth, "notifications/tools/list_changed") == 0) {
        fetch_start(u, MCPGW_CATALOG_TOOLS);
    } else if (strcmp(meth, "notifications/prompts/list_changed") == 0) {
        fetch_start(u, MCPGW_CATALOG_PROMPTS);
    } else if (strcmp(meth, "notifications/resources/list_changed") == 0) {
        fetch_start(u, MCPGW_CATALOG_RESOURCES);
        fetch_start(u, MCPGW_CATALOG_TEMPLATES);
    } else if (strcmp(meth, "notifications/progress") == 0) {
        /* Progress apart from its call (a stdio child's stdout): find the call by its token. */
        json_object *tok = m->params ? json_object_object_get(m->params, "progressToken") : NULL;
        const char *t = tok ? json_object_get_string(tok) : NULL;
        for (struct mcpgw_upstream_call *c = u->calls; c && t; c = c->next)
            if (c->token && strcmp(c->token, t) == 0) {
                if (c->cbs.on_message)
                    c->cbs.on_message(c->arg, m);
                return;
            }
        log_debug("upstream %s: progress for no pending call: dropped", u->cfg->name);
    } else if (strcmp(meth, "notifications/cancelled") == 0) {
        /* It cancels one of its own server-to-client requests: none is pending here. */
    } else if (u->set->hooks->on_notification) {
        u->set->hooks->on_notification(u->set->n, u, m);
    }
}

static void on_http_call_message(void *arg, const char *event_id, const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upstream_call *c = arg;
    (void)event_id;
    if (m->kind == MCPGW_JSONRPC_NOTIFICATION &&
        (strcmp(m->method, "notifications/progress") == 0 ||
         strcmp(m->method, "notifications/message") == 0) &&
        c->cbs.on_message)
        c->cbs.on_message(c->arg, m);
    else if (m->kind == MCPGW_JSONRPC_REQUEST && strcmp(m->method, "ping") != 0 &&
             c->cbs.on_request)
        c->cbs.on_request(c->arg, m); /* on this call's stream: for this call's client */
    else
        session_message(c->u, m);
}

int mcpgw_upstream_call_answer(struct mcpgw_upstream_call *c, const char *json, size_t len)
{
    struct mcpgw_upstream *u = c->u;
    if (u->http)
        return mcpgw_upmcp_send(u->http, json, len, NULL, NULL);
    return mcpgw_stdiomcp_send(u->stdio, json, len);
}

static void on_http_call_reply(void *arg, enum mcpgw_upmcp_err err, const char *why,
                               const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upstream_call *c = arg;
    c->hcall = NULL;
    if (err == MCPGW_UPMCP_E_GONE && !c->retried && c->params) {
        /* The upstream refused this very request for an unknown session: it never reached a
         * tool. on_gone has scheduled a new initialize; send it again once that is done. */
        c->retried = c->parked = 1;
        return;
    }
    mcpgw_breaker_done(c->u->br, &c->tk,
                       err == MCPGW_UPMCP_OK         ? MCPGW_BREAKER_OK
                       : err == MCPGW_UPMCP_E_CLOSED ? MCPGW_BREAKER_NEUTRAL
                                                     : MCPGW_BREAKER_FAIL,
                       mcpgw_upmcp_err_str(err));
    call_end(c,
             err == MCPGW_UPMCP_OK          ? MCPGW_UPSTREAM_OK
             : err == MCPGW_UPMCP_E_TIMEOUT ? MCPGW_UPSTREAM_E_TIMEOUT
                                            : MCPGW_UPSTREAM_E_FAILED,
             why, m);
}

static void on_stdio_call_reply(void *arg, enum mcpgw_upstdio_err err, const char *why,
                                const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upstream_call *c = arg;
    mcpgw_breaker_done(c->u->br, &c->tk,
                       err == MCPGW_UPSTDIO_OK ? MCPGW_BREAKER_OK : MCPGW_BREAKER_FAIL,
                       mcpgw_upstdio_err_str(err));
    call_end(c,
             err == MCPGW_UPSTDIO_OK          ? MCPGW_UPSTREAM_OK
             : err == MCPGW_UPSTDIO_E_TIMEOUT ? MCPGW_UPSTREAM_E_TIMEOUT
             : err == MCPGW_UPSTDIO_E_DOWN    ? MCPGW_UPSTREAM_E_DOWN
                                              : MCPGW_UPSTREAM_E_FAILED,
             why, m);
}

static const struct mcpgw_upmcp_call_cbs http_call_cbs = {on_http_call_message, on_http_call_reply};

/* guarded: the call passes the breaker and the bulkhead first (every call but the node's own
 * list fetches and subscription renewals, which must refill the catalogue and the
 * subscriptions after a restart even while the breaker is open; their outcomes still count). */
static struct mcpgw_upstream_call *request(struct mcpgw_upstream *u, const char *method,
                                           json_object *params, const char *progress_token,
                                           const struct mcpgw_upstream_call_cbs *cbs, void *arg,
                                           int guarded, char *why, size_t whylen)
{
    struct mcpgw_upstream_call *c;
    struct mcpgw_breaker_ticket tk = {0};
    if (!u->ready) {
        snprintf(why, whylen, "upstream %s is not connected (starting or restarting)",
                 u->cfg->name);
        json_object_put(params);
        return NULL;
    }
    if (guarded && mcpgw_breaker_admit(u->br, &tk, why, whylen) != MCPGW_BREAKER_ADMIT) {
        json_object_put(params);
        return NULL;
    }
    if (!guarded) /* counted all the same, never refused */
        mcpgw_breaker_admit_always(u->br, &tk);
    c = xcalloc(1, sizeof(*c));
    c->u = u;
    c->cbs = *cbs;
    c->arg = arg;
    c->tk = tk;
    c->token = progress_token ? xstrdup(progress_token) : NULL;
    if (u->http) {
        c->method = xstrdup(method);
        c->params = json_object_get(params); /* serialized at once: sharing it is safe */
        c->hcall = mcpgw_upmcp_request(u->http, method, params, &http_call_cbs, c);
    } else
        c->scall = mcpgw_stdiomcp_request(u->stdio, method, params, on_stdio_call_reply, c);
    if (!c->hcall && !c->scall) {
        snprintf(why, whylen,
                 "upstream %s cannot take a request now (not ready, or its input is "
                 "full)",
                 u->cfg->name);
        mcpgw_breaker_done(u->br, &c->tk, MCPGW_BREAKER_NEUTRAL, "not_sent");
        call_free(c);
        return NULL;
    }
    c->next = u->calls;
    if (u->calls)
        u->calls->prev = c;
    u->calls = c;
    return c;
}

struct mcpgw_upstream_call *mcpgw_upstream_request(struct mcpgw_upstream *u, const char *method,
                                                   json_object *params, const char *progress_token,
                                                   const struct mcpgw_upstream_call_cbs *cbs,
                                                   void *arg, char *why, size_t whylen)
{
    return request(u, method, params, progress_token, cbs, arg, 1, why, whylen);
}

/* The session was initialized again after a 404 (err 0), or that failed: send the parked calls
 * once more, or fail them. */
static void resend_parked(struct mcpgw_upstream *u, enum mcpgw_upmcp_err err, const char *why)
{
    struct mcpgw_upstream_call *c = u->calls, *next;
    char msg[400];
    for (; c; c = next) {
        next = c->next;
        if (!c->parked)
            continue;
        c->parked = 0;
        if (!err)
            c->hcall = mcpgw_upmcp_request(u->http, c->method, json_object_get(c->params),
                                           &http_call_cbs, c);
        if (c->hcall)
            continue;
        snprintf(msg, sizeof(msg),
                 "upstream %s forgot the session (404) and initializing it again failed: %s",
                 u->cfg->name, err ? why : "not ready");
        mcpgw_breaker_done(u->br, &c->tk, MCPGW_BREAKER_FAIL, "gone");
        call_end(c, MCPGW_UPSTREAM_E_FAILED, msg, NULL);
    }
}

void mcpgw_upstream_cancel(struct mcpgw_upstream_call *c, const char *reason)
{
    mcpgw_breaker_done(c->u->br, &c->tk, MCPGW_BREAKER_NEUTRAL, "cancelled");
    call_unlink(c);
    if (c->hcall)
        mcpgw_upmcp_call_cancel(c->hcall, 1);
    if (c->scall)
        mcpgw_stdiomcp_cancel(c->u->stdio, c->scall, 1, reason);
    call_free(c);
}

/* Fail every call of u at once (it goes away or stops). */
static void fail_all(struct mcpgw_upstream *u, const char *why)
{
    while (u->calls) {
        struct mcpgw_upstream_call *c = u->calls;
        if (c->hcall)
            mcpgw_upmcp_call_cancel(c->hcall, 0);
        if (c->scall)
            mcpgw_upstdio_call_cancel(c->scall);
        call_end(c, MCPGW_UPSTREAM_E_DOWN, why, NULL);
    }
}

/* ---- lists ---- */

static void fetch_page(struct fetch *f, const char *cursor);

static void on_page(void *arg, enum mcpgw_upstream_err err, const char *why,
                    const struct mcpgw_jsonrpc_msg *m)
{
    struct fetch *f = arg;
    struct mcpgw_upstream *u = f->u;
    json_object *items;
    const char *next;
    f->call = NULL;
    if (err || m->kind == MCPGW_JSONRPC_ERROR ||
        !json_object_object_get_ex(m->result, mcpgw_catalog_kind_str(f->k), &items) ||
        !json_object_is_type(items, json_type_array)) {
        if (err != MCPGW_UPSTREAM_E_DOWN)
            log_warn("upstream %s: %s failed, keeping the list it had: %s", u->cfg->name,
                     list_methods[f->k],
                     err                              ? why
                     : m->kind == MCPGW_JSONRPC_ERROR ? json_object_to_json_string(m->error)
                                                      : "the result has no list");
        json_object_put(f->acc);
        f->acc = NULL;
        return;
    }
    for (size_t i = 0; i < json_object_array_length(items); i++)
        json_object_array_add(f->acc, json_object_get(json_object_array_get_idx(items, i)));
    next = mcpgw_json_str(m->result, "nextCursor");
    if (next && *next && ++f->pages < MAX_LIST_PAGES) {
        fetch_page(f, next);
        return;
    }
    if (next && *next)
        log_warn("upstream %s: %s has more than %d pages: the rest is left out", u->cfg->name,
                 list_methods[f->k], MAX_LIST_PAGES);
    json_object_put(u->lists[f->k]);
    u->lists[f->k] = f->acc;
    f->acc = NULL;
    log_info("upstream %s: %zu %s", u->cfg->name, json_object_array_length(u->lists[f->k]),
             mcpgw_catalog_kind_str(f->k));
    schedule_rebuild(u->set);
    if (f->again)
        fetch_start(u, f->k);
}

static void fetch_page(struct fetch *f, const char *cursor)
{
    static const struct mcpgw_upstream_call_cbs cbs = {NULL, on_page};
    json_object *params = json_object_new_object();
    char why[200];
    if (cursor)
        json_object_object_add(params, "cursor", json_object_new_string(cursor));
    f->call = request(f->u, list_methods[f->k], params, NULL, &cbs, f, 0, why, sizeof(why));
    if (!f->call) {
        json_object_put(f->acc);
        f->acc = NULL;
    }
}

static void fetch_start(struct mcpgw_upstream *u, enum mcpgw_catalog_kind k)
{
    struct fetch *f = &u->fetch[k];
    if (f->call) {
        f->again = 1;
        return;
    }
    f->again = 0;
    f->pages = 0;
    f->acc = json_object_new_array();
    fetch_page(f, NULL);
}

/* The upstream is ready: fetch what its capabilities say it has; forget what it no longer has. */
static void fetch_all(struct mcpgw_upstream *u)
{
    json_object *caps = mcpgw_json_obj(mcpgw_upstream_server(u), "capabilities");
    static const char *const cap[MCPGW_CATALOG_KIND_COUNT] = {"tools", "prompts", "resources",
                                                              "resources"};
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        if (mcpgw_json_obj(caps, cap[k])) {
            fetch_start(u, (enum mcpgw_catalog_kind)k);
        } else if (u->lists[k]) {
            json_object_put(u->lists[k]);
            u->lists[k] = NULL;
            schedule_rebuild(u->set);
        }
    }
}

/* ---- resource subscriptions ---- */

/* What u->watched holds for a URI: where its subscription at the upstream stands. */
enum watch_state {
    W_SENT,  /* not acknowledged yet by any session of u (sent, or waiting for u to connect) */
    W_ACKED, /* acknowledged by u's current session */
    W_RENEW, /* acknowledged by an earlier session of u; sent again to the current one */
};

struct watch_req {
    struct mcpgw_upstream *u;
    char uri[];
};

static void on_subscribed(void *arg, enum mcpgw_upstream_err err, const char *why,
                          const struct mcpgw_jsonrpc_msg *m)
{
    struct watch_req *w = arg;
    struct mcpgw_upstream *u = w->u;
    json_object *v;
    if (err && err != MCPGW_UPSTREAM_E_DOWN)
        log_warn("upstream %s: resources/subscribe failed: %s", u->cfg->name, why);
    else if (!err && m->kind == MCPGW_JSONRPC_ERROR)
        log_warn("upstream %s: resources/subscribe refused: %s", u->cfg->name,
                 json_object_to_json_string(m->error));
    else if (!err && u->watched && json_object_object_get_ex(u->watched, w->uri, &v)) {
        int renewed = json_object_get_int(v) == W_RENEW;
        json_object_set_int(v, W_ACKED);
        if (u->set->hooks->on_watched)
            u->set->hooks->on_watched(u->set->n, u, w->uri, renewed);
    }
    free(w);
}

static void send_subscribe(struct mcpgw_upstream *u, const char *uri)
{
    static const struct mcpgw_upstream_call_cbs cbs = {NULL, on_subscribed};
    json_object *params = json_object_new_object();
    size_t len = strlen(uri) + 1;
    struct watch_req *w = xmalloc(sizeof(*w) + len);
    char why[200];
    w->u = u;
    memcpy(w->uri, uri, len);
    json_object_object_add(params, "uri", json_object_new_string(uri));
    /* Unguarded like the list fetches: a subscription renewed after a restart must not be lost
     * to an open breaker. */
    if (!request(u, "resources/subscribe", params, NULL, &cbs, w, 0, why, sizeof(why)))
        free(w);
}

int mcpgw_upstream_watch(struct mcpgw_upstream *u, const char *uri)
{
    json_object *res = mcpgw_json_obj(mcpgw_json_obj(mcpgw_upstream_server(u), "capabilities"),
                                      "resources"),
                *sub;
    if (u->ready &&
        !(res && json_object_object_get_ex(res, "subscribe", &sub) && json_object_get_boolean(sub)))
        return -1;
    if (!u->watched)
        u->watched = json_object_new_object();
    if (json_object_object_get_ex(u->watched, uri, NULL))
        return 0;
    json_object_object_add(u->watched, uri, json_object_new_int(W_SENT));
    if (u->ready)
        send_subscribe(u, uri);
    return 0;
}

int mcpgw_upstream_watching(const struct mcpgw_upstream *u, const char *uri)
{
    json_object *v;
    if (!u->watched || !json_object_object_get_ex(u->watched, uri, &v))
        return -1;
    return json_object_get_int(v) == W_ACKED;
}

struct mcpgw_upstream *mcpgw_upstream_owner(const struct mcpgw_node *n, const char *uri)
{
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    const struct mcpgw_catalog_entry *e = mcpgw_catalog_find(cat, MCPGW_CATALOG_RESOURCES, uri);
    if (!e)
        e = mcpgw_catalog_match(cat, uri);
    return e ? e->owner : mcpgw_catalog_sole_resource_owner(cat);
}

/* A new upstream session: subscribe again to what was watched. What the last session had
 * acknowledged is marked for renewal: its acknowledgement now tells hooks->on_watched that
 * updates were lost in between. */
static void rewatch(struct mcpgw_upstream *u)
{
    if (!u->watched)
        return;
    json_object_object_foreach(u->watched, uri, v)
    {
        if (json_object_get_int(v) == W_ACKED)
            json_object_set_int(v, W_RENEW);
        send_subscribe(u, uri);
    }
}

/* ---- connections ---- */

static void http_connect(struct mcpgw_upstream *u);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    http_connect(arg);
}

static void on_http_ready(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    struct mcpgw_upstream *u = arg;
    if (err) {
        struct timeval tv = {u->backoff_ms / 1000, (u->backoff_ms % 1000) * 1000};
        log_warn("upstream %s: initialize failed (%s); again in %ld ms", u->cfg->name, why,
                 u->backoff_ms);
        evtimer_add(u->retry_ev, &tv);
        u->backoff_ms = u->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : u->backoff_ms * 2;
        resend_parked(u, err, why);
        return;
    }
    u->backoff_ms = RETRY_MIN_MS;
    u->ready = 1;
    u->stateful = mcpgw_upmcp_session_id(u->http) != NULL;
    log_info("upstream %s: connected (revision %s, %s%s)", u->cfg->name,
             mcpgw_upmcp_version(u->http), u->stateful ? "stateful" : "stateless",
             u->cfg->session != MCPGW_UPCFG_SESSION_DEFAULT ? ""
             : u->stateful                                  ? ": per-client sessions"
                                                            : ": one shared session");
    mcpgw_upmcp_listen(u->http, NULL);
    resend_parked(u, MCPGW_UPMCP_OK, NULL);
    fetch_all(u);
    rewatch(u);
}

static void on_http_message(void *arg, const char *event_id, const struct mcpgw_jsonrpc_msg *m)
{
    (void)event_id;
    session_message(arg, m);
}

static void on_http_gone(void *arg)
{
    struct mcpgw_upstream *u = arg;
    static const struct timeval zero = {0, 0};
    u->ready = 0;
    evtimer_add(u->retry_ev, &zero); /* initialize again once the failing call has returned */
}

static void http_connect(struct mcpgw_upstream *u)
{
    if (mcpgw_upmcp_initialize(u->http, mcpgw_msg_upstream_capabilities()) < 0) {
        log_warn("upstream %s: cannot initialize now", u->cfg->name);
        resend_parked(u, MCPGW_UPMCP_E_PROTOCOL, "cannot initialize now");
    }
}

static void on_stdio_ready(void *arg, int ok, const char *why)
{
    struct mcpgw_upstream *u = arg;
    if (!ok) {
        /* A child that cannot initialize is as good as a hung one: restart it (with backoff). */
        log_warn("upstream %s: %s; restarting its process", u->cfg->name, why);
        mcpgw_stdiomcp_restart(u->stdio);
        return;
    }
    u->ready = 1;
    mcpgw_breaker_note_procs(u->br, 1);
    log_info("upstream %s: process ready", u->cfg->name);
    fetch_all(u);
    rewatch(u);
}

static void on_stdio_down(void *arg, int status, long restart_in_ms)
{
    struct mcpgw_upstream *u = arg;
    u->ready = 0;
    (void)status;
    mcpgw_breaker_note_procs(u->br, 0);
    if (restart_in_ms >= 0)
        mcpgw_breaker_note_restart(u->br);
}

/* A stdio child whose calls keep failing (hung, or answering garbage) is replaced when its
 * breaker opens: the restart's backoff and the open period keep a crash loop slow. */
static void on_breaker_state(void *arg, enum mcpgw_breaker_state from, enum mcpgw_breaker_state to)
{
    struct mcpgw_upstream *u = arg;
    (void)from;
    if (to == MCPGW_BREAKER_OPEN && u->stdio && mcpgw_stdiomcp_ready(u->stdio)) {
        log_warn("upstream %s: circuit breaker open: restarting its process", u->cfg->name);
        mcpgw_stdiomcp_restart(u->stdio);
    }
}

static void on_stdio_message(void *arg, const struct mcpgw_jsonrpc_msg *m)
{
    session_message(arg, m);
}

static struct mcpgw_upstream *upstream_start(struct mcpgw_upstream_set *set,
                                             const struct mcpgw_upcfg *cfg)
{
    struct mcpgw_upstream *u = xcalloc(1, sizeof(*u));
    struct mcpgw_node *n = set->n;
    u->set = set;
    u->cfg = mcpgw_upcfg_dup(cfg);
    u->backoff_ms = RETRY_MIN_MS;
    u->epoch = ++epochs;
    {
        struct mcpgw_breaker_cfg bc = cfg->breaker;
        bc.name = cfg->name;
        bc.kind = mcpgw_upcfg_kind_str(cfg->kind);
        bc.max_inflight = cfg->max_inflight;
        u->br = mcpgw_breaker_new(&bc, n->metrics, NULL, NULL);
        mcpgw_breaker_on_state(u->br, on_breaker_state, u);
    }
    u->retry_ev = evtimer_new(n->base, on_retry, u);
    if (cfg->session == MCPGW_UPCFG_SESSION_PER_CLIENT)
        log_info("upstream %s: per-client sessions (upsess.c / upproc.c); this node's own session "
                 "serves the catalogue",
                 cfg->name);
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        u->fetch[k].u = u;
        u->fetch[k].k = (enum mcpgw_catalog_kind)k;
    }
    if (cfg->kind == MCPGW_UPCFG_HTTP) {
        static const struct mcpgw_upmcp_cbs cbs = {on_http_ready, on_http_message, on_http_gone};
        struct mcpgw_upmcp_cfg hc = {.name = cfg->name,
                                     .url = cfg->url,
                                     .headers = (const char *const *)cfg->headers,
                                     .timeout_ms = (long)cfg->timeout_ms,
                                     .flags = cfg->h2c ? MCPGW_HC_H2C : 0,
                                     .oauth = cfg->oauth,
                                     .era = (enum mcpgw_upmcp_era)cfg->protocol};
        if (!set->hc)
            set->hc = mcpgw_hc_new(n->base);
        u->http = mcpgw_upmcp_new(set->hc, &hc, &cbs, u);
        log_info("upstream %s: http %s (prefix '%s')", cfg->name, cfg->url, cfg->prefix);
        http_connect(u);
    } else {
        static const struct mcpgw_stdiomcp_cbs cbs = {on_stdio_ready, on_stdio_down,
                                                      on_stdio_message};
        struct mcpgw_upstdio_cfg sc = {.name = cfg->name,
                                       .argv = (const char *const *)cfg->argv,
                                       .timeout_ms = (long)cfg->timeout_ms};
        char err[256];
        u->stdio = mcpgw_stdiomcp_new(n->base, &sc, &cbs, u);
        log_info("upstream %s: stdio %s (prefix '%s')", cfg->name, cfg->argv[0], cfg->prefix);
        if (mcpgw_stdiomcp_start(u->stdio, err, sizeof(err)) < 0)
            log_warn("upstream %s: %s (retrying with backoff)", cfg->name, err);
    }
    return u;
}

/* Take u away: its calls fail with why; graceful closes with DELETE / SIGTERM, else at once. */
static void upstream_free(struct mcpgw_upstream *u, const char *why, int graceful)
{
    u->ready = 0;
    fail_all(u, why);
    if (u->http) {
        if (graceful)
            mcpgw_upmcp_close(u->http, NULL, NULL);
        else
            mcpgw_upmcp_free(u->http);
    }
    if (u->stdio) {
        if (graceful)
            mcpgw_stdiomcp_close(u->stdio);
        else
            mcpgw_stdiomcp_free(u->stdio);
    }
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        json_object_put(u->lists[k]);
        json_object_put(u->fetch[k].acc);
    }
    event_free(u->retry_ev);
    mcpgw_breaker_free(u->br);
    json_object_put(u->watched);
    mcpgw_upcfg_free(u->cfg);
    free(u);
}

/* ---- the set ---- */

static struct mcpgw_upstream_set *set_new(struct mcpgw_node *n,
                                          const struct mcpgw_upstream_hooks *hooks)
{
    struct mcpgw_upstream_set *set = xcalloc(1, sizeof(*set));
    set->n = n;
    set->hooks = hooks;
    set->rebuild_ev = evtimer_new(n->base, on_rebuild, set);
    set->cat = mcpgw_catalog_build(NULL, 0, hooks->tool_call);
    return set;
}

void mcpgw_upstream_start(struct mcpgw_node *n, const struct mcpgw_upstream_hooks *hooks)
{
    const struct mcpgw_upcfg_set *cs = n->cfg.upstreams;
    /* The set exists even when empty, for a reload that adds upstreams; the request path asks
     * it nothing while there are none (protocol.c picks its providers by mcpgw_upstream_count). */
    n->ups = set_new(n, hooks);
    n->ups->v = xcalloc((size_t)(cs ? cs->n : 0) + 1, sizeof(*n->ups->v));
    for (int i = 0; cs && i < cs->n; i++)
        n->ups->v[n->ups->nv++] = upstream_start(n->ups, cs->v[i]);
}

void mcpgw_upstream_reload(struct mcpgw_node *n, struct mcpgw_node_config *next)
{
    struct mcpgw_upcfg_set *ns = next->upstreams, *tmp;
    struct mcpgw_upstream_set *set = n->ups;
    struct mcpgw_upstream **v;
    /* name -> the watched set of a changed upstream: its subscribers here still want those
     * URIs, from the upstream started again (a new session: what was acknowledged is renewed). */
    json_object *carried = NULL, *w;
    int nv = 0, added = 0, removed = 0, changed = 0;
    if (!set)
        goto swap; /* not started (tests) */
    v = xcalloc((size_t)(ns ? ns->n : 0) + 1, sizeof(*v));
    /* Old ones first: removed or changed ones go (their calls fail with a reason). */
    for (int i = 0; i < set->nv; i++) {
        struct mcpgw_upstream *u = set->v[i];
        const struct mcpgw_upcfg *c = mcpgw_upcfg_find(ns, u->cfg->name);
        char why[200];
        if (c && mcpgw_upcfg_equal(c, u->cfg))
            continue;
        snprintf(why, sizeof(why), "upstream %s was %s by a configuration reload", u->cfg->name,
                 c ? "changed" : "removed");
        log_info("reload: %s", why);
        if (c)
            changed++;
        else
            removed++;
        if (c && u->http && c->kind == MCPGW_UPCFG_HTTP && strcmp(c->url, u->cfg->url) == 0) {
            /* The same endpoint: the DELETE that closes the old session goes with the new
             * line's headers and token source (a rotated client secret is not tried old). */
            struct mcpgw_upmcp_cfg hc = {.name = c->name,
                                         .url = c->url,
                                         .headers = (const char *const *)c->headers,
                                         .timeout_ms = (long)c->timeout_ms,
                                         .flags = c->h2c ? MCPGW_HC_H2C : 0,
                                         .oauth = c->oauth,
                                         .era = (enum mcpgw_upmcp_era)c->protocol};
            mcpgw_upmcp_set_cfg(u->http, &hc);
        }
        if (c && u->watched) {
            json_object_object_foreach(u->watched, uri, st)
            {
                (void)uri;
                if (json_object_get_int(st) == W_ACKED)
                    json_object_set_int(st, W_RENEW);
            }
            if (!carried)
                carried = json_object_new_object();
            json_object_object_add(carried, u->cfg->name, u->watched);
            u->watched = NULL;
        }
        upstream_free(u, why, 1);
        set->v[i] = NULL;
    }
    for (int i = 0; ns && i < ns->n; i++) {
        struct mcpgw_upstream *keep = NULL;
        for (int j = 0; j < set->nv && !keep; j++)
            if (set->v[j] && strcmp(set->v[j]->cfg->name, ns->v[i]->name) == 0)
                keep = set->v[j];
        if (!keep) {
            if (!mcpgw_upcfg_find(n->cfg.upstreams, ns->v[i]->name)) {
                log_info("reload: upstream %s added", ns->v[i]->name);
                added++;
            }
            keep = upstream_start(set, ns->v[i]);
            /* Before it is ready (it connects from the loop): sent then, by rewatch. */
            if (carried && json_object_object_get_ex(carried, ns->v[i]->name, &w))
                keep->watched = json_object_get(w);
        }
        v[nv++] = keep;
    }
    free(set->v);
    set->v = v;
    set->nv = nv;
    schedule_rebuild(set);
    json_object_put(carried);
    if (added || removed || changed)
        log_info("reload: upstreams: %d added, %d removed, %d changed", added, removed, changed);
swap:
    tmp = n->cfg.upstreams;
    n->cfg.upstreams = next->upstreams;
    next->upstreams = tmp;
}

void mcpgw_upstream_stop(struct mcpgw_node *n)
{
    struct mcpgw_upstream_set *set = n->ups;
    if (!set)
        return;
    for (int i = 0; i < set->nv; i++)
        upstream_free(set->v[i], "the node is stopping", 0);
    free(set->v);
    event_free(set->rebuild_ev);
    mcpgw_catalog_free(set->cat);
    if (set->hc)
        mcpgw_hc_free(set->hc);
    free(set);
    n->ups = NULL;
}
