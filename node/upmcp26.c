/* upmcp26.c - the 2026-07-28 era of the upstream MCP client (upmcp.c's internal pair):
 * server/discover in place of initialize, input_required rounds turned into server-to-client
 * requests and retries, subscribe and unsubscribe as the listen stream's filter. */
#include "common/httpclient.h"
#include "common/log.h"
#include "common/sse.h"
#include "common/util.h"
#include "node/up26.h"
#include "node/upmcp_int.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sends server/discover (2026-07-28 and auto). Returns 0 or -1. */
int mcpgw_upmcp26_discover(struct mcpgw_upmcp *u)
{
    json_object *p = mcpgw_up26_params(NULL, u->caps), *id;
    char *extra[3] = {NULL, NULL, NULL}, *body;
    size_t len;
    mcpgw_up26_headers("server/discover", p, extra);
    extra[1] = xstrdup("MCP-Protocol-Version: " MCPGW_UP26_VERSION);
    id = json_object_new_int64(++u->next_id);
    body = mcpgw_jsonrpc_request(id, "server/discover", p, &len);
    json_object_put(id);
    u->initializing = 1;
    if (!mcpgw_upmcp_call_start(u, CALL_INIT, "server/discover", u->next_id, body, len, extra)) {
        u->initializing = 0;
        return -1;
    }
    return 0;
}

/* The answer to server/discover: ready in the 2026-07-28 era, or (auto) initialize instead. */
void mcpgw_upmcp26_discover_reply(struct mcpgw_upmcp *u, enum mcpgw_upmcp_err err, const char *why,
                                  const struct mcpgw_jsonrpc_msg *m)
{
    char buf[512];
    if (err == MCPGW_UPMCP_OK && m->result && mcpgw_up26_discover_ok(m->result)) {
        free(u->version);
        u->version = xstrdup(MCPGW_UP26_VERSION);
        u->era26 = 1;
        json_object_put(u->server_result);
        u->server_result = json_object_get(m->result);
        mcpgw_upmcp_ready(u, MCPGW_UPMCP_OK, NULL);
        return;
    }
    if (err == MCPGW_UPMCP_OK)
        snprintf(buf, sizeof(buf), "upstream %s: server/discover %s", u->name,
                 m->error ? json_object_to_json_string(m->error)
                          : "does not list 2026-07-28 among its supportedVersions");
    else
        snprintf(buf, sizeof(buf), "%s", why);
    if (u->want_era == MCPGW_UPMCP_ERA_AUTO && err != MCPGW_UPMCP_E_TRANSPORT &&
        err != MCPGW_UPMCP_E_TIMEOUT) {
        log_info("%s: speaking the session era (initialize)", buf);
        u->initializing = 0;
        if (mcpgw_upmcp_send_initialize(u) == 0)
            return;
        snprintf(buf, sizeof(buf), "upstream %s: could not send initialize", u->name);
    }
    mcpgw_upmcp_ready(u, err == MCPGW_UPMCP_OK ? MCPGW_UPMCP_E_PROTOCOL : err, buf);
}

static void kick_soon(struct mcpgw_upmcp *u)
{
    struct timeval tv = {0, 0};
    evtimer_add(u->kick, &tv);
}

/* An input_required result m for call c: its input requests go to the caller one at a time
 * (from the kick), then the request is sent again with their answers. */
void mcpgw_upmcp26_round_start(struct mcpgw_upmcp_call *c, const struct mcpgw_jsonrpc_msg *m)
{
    char err[256];
    struct mcpgw_up26_round *r;
    if (++c->rounds > MCPGW_UP26_MAX_ROUNDS) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL, "%s asked for input more than %d times",
                           c->method, MCPGW_UP26_MAX_ROUNDS);
        return;
    }
    if (!(r = mcpgw_up26_round_new(m->result, err, sizeof(err)))) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL,
                           "%s was answered input_required, but %s", c->method, err);
        return;
    }
    if (c->req) {
        mcpgw_hc_req_cancel(c->req);
        c->req = NULL;
    }
    mcpgw_up26_round_free(c->round);
    c->round = r;
    c->step = STEP_ASK;
    kick_soon(c->u);
}

/* STEP_ASK: the next input request to the caller, or the retry when none is left. */
static void round_ask(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_upmcp *u = c->u;
    struct mcpgw_jsonrpc_msg m;
    json_object *id, *bad = NULL;
    const char *why;
    size_t len;
    char *text;
    snprintf(c->input_id, sizeof(c->input_id), "mcpgw-in-%lld", ++u->next_input);
    id = json_object_new_string(c->input_id);
    text = mcpgw_up26_round_next(c->round, id, &len);
    json_object_put(id);
    if (!text) {
        c->step = STEP_RETRY;
        kick_soon(u);
        return;
    }
    c->step = STEP_WAIT;
    if (mcpgw_jsonrpc_parse(text, len, &m, &bad, &why) != 0) {
        json_object_put(bad);
        free(text);
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL,
                           "an input request of %s is not valid: %s", c->method, why);
        return;
    }
    free(text);
    if (c->cbs.on_message) {
        c->busy++;
        c->cbs.on_message(c->arg, NULL, &m); /* may answer, or cancel c, at once */
        mcpgw_jsonrpc_msg_deinit(&m);
        if (!--c->busy && c->finished)
            mcpgw_upmcp_call_free(c);
        return;
    } else {
        c->failed = json_object_new_object();
        json_object_object_add(c->failed, "code", json_object_new_int(-32601));
        json_object_object_add(c->failed, "message",
                               json_object_new_string("mcpgw: no client to ask"));
        c->step = STEP_FAIL;
        kick_soon(u);
    }
    mcpgw_jsonrpc_msg_deinit(&m);
}

/* STEP_RETRY: the same request again, with a new id, the answers and the request state. */
static void round_retry(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_upmcp *u = c->u;
    json_object *p = mcpgw_up26_round_retry(c->round, c->params), *id;
    char *extra[MCPGW_UPMCP_EXTRA] = {NULL}, *body;
    size_t len;
    int n = mcpgw_up26_headers(c->method, p, extra);
    mcpgw_upmcp26_param_headers(u, c->method, p, extra + n, MCPGW_UPMCP_EXTRA - n);
    c->id = ++u->next_id;
    id = json_object_new_int64(c->id);
    body = mcpgw_jsonrpc_request(id, c->method, p, &len);
    json_object_put(id);
    mcpgw_up26_round_free(c->round);
    c->round = NULL;
    c->step = STEP_NONE;
    c->mode = BODY_NONE;
    c->status = 0;
    c->body_len = 0;
    if (c->sse) {
        mcpgw_sse_parser_free(c->sse);
        c->sse = NULL;
    }
    mcpgw_upmcp_q_clear(&c->q, 0);
    if (mcpgw_upmcp_call_post(c, body, len, extra) < 0)
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TRANSPORT, NULL,
                           "could not send %s again with its input", c->method);
}

/* A call that ends with the client's error to an input request (STEP_FAIL), or with {} for a
 * request answered here (STEP_LOCAL). */
static void round_end_here(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *id = json_object_new_int64(c->id), *bad = NULL;
    const char *why;
    size_t len;
    char *text;
    if (c->step == STEP_FAIL) {
        const char *msg = mcpgw_json_str(c->failed, "message");
        json_object *data = json_object_object_get(c->failed, "data");
        text =
            mcpgw_jsonrpc_error(id, json_object_get_int(json_object_object_get(c->failed, "code")),
                                msg ? msg : "the client refused the input request",
                                data ? json_object_get(data) : NULL, &len);
    } else
        text = mcpgw_jsonrpc_result(id, json_object_new_object(), &len);
    json_object_put(id);
    c->step = STEP_NONE;
    if (mcpgw_jsonrpc_parse(text, len, &m, &bad, &why) != 0) {
        json_object_put(bad);
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_PROTOCOL, NULL, "%s", why);
    } else {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_OK, &m, NULL);
        mcpgw_jsonrpc_msg_deinit(&m);
    }
    free(text);
}

/* Runs the steps of the calls that have one to run; one at a time, from the start again after
 * each, since a step may end calls (and the caller's callbacks may start or cancel others). */
void mcpgw_upmcp26_on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upmcp *u = arg;
    struct mcpgw_upmcp_call *c;
    (void)fd, (void)what;
    mcpgw_upmcp_enter(u);
    for (;;) {
        for (c = u->calls; c; c = c->next)
            if (c->step == STEP_ASK || c->step == STEP_RETRY || c->step == STEP_FAIL ||
                c->step == STEP_LOCAL)
                break;
        if (!c || u->dying)
            break;
        if (c->step == STEP_ASK)
            round_ask(c);
        else if (c->step == STEP_RETRY)
            round_retry(c);
        else
            round_end_here(c);
    }
    mcpgw_upmcp_leave(u);
}

/* resources/subscribe and unsubscribe of the 2026-07-28 era: the URI joins or leaves the listen
 * stream's filter (the stream is opened again with it); the call ends with {} from the kick. */
struct mcpgw_upmcp_call *mcpgw_upmcp26_local_call(struct mcpgw_upmcp *u, const char *method,
                                                  json_object *params,
                                                  const struct mcpgw_upmcp_call_cbs *cbs, void *arg)
{
    struct mcpgw_upmcp_call *c = xcalloc(1, sizeof(*c));
    const char *uri = mcpgw_json_str(params, "uri");
    size_t i;
    for (i = 0; uri && i < u->nwatch && strcmp(u->watch[i], uri) != 0; i++)
        ;
    if (uri && strcmp(method, "resources/subscribe") == 0 && i == u->nwatch) {
        u->watch = xrealloc(u->watch, (u->nwatch + 1) * sizeof(*u->watch));
        u->watch[u->nwatch++] = xstrdup(uri);
        mcpgw_upmcp26_watch_changed(u);
    } else if (uri && strcmp(method, "resources/unsubscribe") == 0 && i < u->nwatch) {
        free(u->watch[i]);
        u->watch[i] = u->watch[--u->nwatch];
        mcpgw_upmcp26_watch_changed(u);
    }
    json_object_put(params);
    c->u = u;
    c->kind = CALL_REQUEST;
    c->id = ++u->next_id;
    c->method = xstrdup(method);
    c->cbs = *cbs;
    c->arg = arg;
    c->step = STEP_LOCAL;
    c->next = u->calls;
    if (u->calls)
        u->calls->prev = c;
    u->calls = c;
    kick_soon(u);
    return c;
}

/* ---- HeaderMismatch ---- */

/* The most pages of tools/list read again after a HeaderMismatch. */
#define RELIST_MAX_PAGES 16

static void relist_start(struct mcpgw_upmcp_call *c, const char *cursor);
static void tell(struct mcpgw_upmcp *u, const char *method, json_object *params);

/* c sent again, as it was, with the Mcp-Param-* headers of the schemas now known. */
static void mismatch_retry(struct mcpgw_upmcp_call *c)
{
    struct mcpgw_upmcp *u = c->u;
    char *extra[MCPGW_UPMCP_EXTRA] = {NULL}, *body;
    json_object *id;
    size_t len;
    int n = mcpgw_up26_headers(c->method, c->params, extra);
    mcpgw_upmcp26_param_headers(u, c->method, c->params, extra + n, MCPGW_UPMCP_EXTRA - n);
    c->id = ++u->next_id;
    id = json_object_new_int64(c->id);
    body = mcpgw_jsonrpc_request(id, c->method, json_object_get(c->params), &len);
    json_object_put(id);
    c->mode = BODY_NONE;
    c->status = 0;
    c->body_len = 0;
    if (mcpgw_upmcp_call_post(c, body, len, extra) < 0)
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TRANSPORT, NULL, "could not send %s again", c->method);
}

static void on_relist(void *arg, enum mcpgw_upmcp_err err, const char *why,
                      const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upmcp_call *c = arg;
    const char *cursor = m && m->result ? mcpgw_json_str(m->result, "nextCursor") : NULL;
    c->relist = NULL;
    if (err != MCPGW_UPMCP_OK || !m->result) {
        mcpgw_upmcp_finish(c, err != MCPGW_UPMCP_OK ? err : MCPGW_UPMCP_E_PROTOCOL, NULL,
                           "%s was refused with HeaderMismatch (-32020), and listing the tools "
                           "again failed: %s",
                           c->method,
                           err != MCPGW_UPMCP_OK ? why : json_object_to_json_string(m->error));
        return;
    }
    /* The schemas were learned as the page came in (mcpgw_upmcp26_learn_tools). */
    if (cursor && *cursor && ++c->relist_pages < RELIST_MAX_PAGES) {
        relist_start(c, cursor);
        return;
    }
    /* The catalogue's copy of the tool is as stale as the node's: have it fetched again. */
    tell(c->u, "notifications/tools/list_changed", NULL);
    mismatch_retry(c);
}

static void relist_start(struct mcpgw_upmcp_call *c, const char *cursor)
{
    static const struct mcpgw_upmcp_call_cbs cbs = {.on_reply = on_relist};
    json_object *p = json_object_new_object();
    if (cursor)
        json_object_object_add(p, "cursor", json_object_new_string(cursor));
    if (!(c->relist = mcpgw_upmcp_request(c->u, "tools/list", p, &cbs, c)))
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_TRANSPORT, NULL,
                           "%s was refused with HeaderMismatch (-32020), and the tools could not "
                           "be listed again",
                           c->method);
}

int mcpgw_upmcp26_mismatch(struct mcpgw_upmcp_call *c)
{
    json_object *o, *e;
    const char *msg, *tool = mcpgw_json_str(c->params, "name");
    if (c->kind != CALL_REQUEST || c->status != 400 || !c->body || !c->params || !tool ||
        strcmp(c->method, "tools/call") != 0)
        return 0;
    o = json_tokener_parse(c->body);
    e = mcpgw_json_obj(o, "error");
    if (!e || json_object_get_int(json_object_object_get(e, "code")) != -32020) {
        json_object_put(o);
        return 0;
    }
    msg = mcpgw_json_str(e, "message");
    if (c->mismatched) {
        mcpgw_upmcp_finish(c, MCPGW_UPMCP_E_HTTP, NULL,
                           "tools/call of '%.100s' was refused with HeaderMismatch (-32020) again "
                           "after the node listed the upstream's tools anew: %.200s",
                           tool, msg ? msg : "(no message)");
        json_object_put(o);
        return 1;
    }
    /* A 400 comes before the tool ran: sending it again cannot run it twice. */
    log_info("upstream %s: tools/call of '%s' was refused with HeaderMismatch (%s); listing the "
             "tools again, then sending it once more",
             c->u->name, tool, msg ? msg : "no message");
    json_object_put(o);
    c->mismatched = 1;
    c->relist_pages = 0;
    relist_start(c, NULL);
    return 1;
}

/* mcpgw_upmcp_send in the 2026-07-28 era: the answer to an input request goes to its call;
 * notifications (cancellation is closing the stream in this era) and the rest are dropped. */
int mcpgw_upmcp26_send(struct mcpgw_upmcp *u, const char *msg, size_t len,
                       void (*done)(void *arg, enum mcpgw_upmcp_err err, const char *why),
                       void *arg)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad = NULL;
    const char *why, *id;
    struct mcpgw_upmcp_call *c = NULL;
    if (mcpgw_jsonrpc_parse(msg, len, &m, &bad, &why) != 0) {
        json_object_put(bad);
        return -1;
    }
    id = m.id && json_object_is_type(m.id, json_type_string) ? json_object_get_string(m.id) : NULL;
    if ((m.kind == MCPGW_JSONRPC_RESULT || m.kind == MCPGW_JSONRPC_ERROR) && id)
        for (c = u->calls; c; c = c->next)
            if (c->step == STEP_WAIT && strcmp(c->input_id, id) == 0)
                break;
    if (c && m.kind == MCPGW_JSONRPC_RESULT) {
        mcpgw_up26_round_answer(c->round, m.result);
        c->step = STEP_ASK;
        kick_soon(u);
    } else if (c) {
        c->failed = json_object_get(m.error);
        c->step = STEP_FAIL;
        kick_soon(u);
    } else if (m.kind != MCPGW_JSONRPC_NOTIFICATION) {
        log_debug("upstream %s: an answer for no pending input request: dropped", u->name);
    }
    mcpgw_jsonrpc_msg_deinit(&m);
    if (done)
        done(arg, MCPGW_UPMCP_OK, "ok");
    return 0;
}

/* ---- the listen streams ----
 *
 * The revision has no resumption: whatever the upstream sends while no stream with the right
 * filter is open is lost. So a filter change opens the new stream beside the current one and
 * closes the old one only once the new one is acknowledged (the revision allows several
 * concurrent subscriptions), plus a grace for what the upstream wrote on the old one before it
 * acknowledged the new one (another connection: it may be read later). After a break, when a
 * stream is acknowledged again, the caller is told that every list changed and that every
 * watched resource was updated: at least once, never lost (docs/federation.md, "Notifications"). */

/* How long a replaced stream stays open after its successor's acknowledgement. */
#define LISTEN_GRACE_MS 2000

struct mcpgw_upmcp_lstream {
    struct mcpgw_hc_req *req;
    struct mcpgw_sse_parser *sse;
    struct ev_queue q;
    unsigned gen; /* the filter it asked for: u->watch_gen when it was opened */
    int acked;
    int busy, dead; /* inside its dispatch: a drop only marks it */
};

static void ls_free(struct mcpgw_upmcp_lstream *ls)
{
    if (ls->req) {
        mcpgw_hc_req_cancel(ls->req);
        ls->req = NULL;
    }
    if (ls->busy) {
        ls->dead = 1;
        return;
    }
    mcpgw_sse_parser_free(ls->sse);
    mcpgw_upmcp_q_clear(&ls->q, 0);
    free(ls->q.v);
    free(ls);
}

/* Takes the stream out of its slot and closes it. */
static void ls_drop(struct mcpgw_upmcp_lstream **slot)
{
    struct mcpgw_upmcp_lstream *ls = *slot;
    *slot = NULL;
    if (ls)
        ls_free(ls);
}

static struct mcpgw_upmcp_lstream **slot_of(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r)
{
    if (u->lcur && u->lcur->req == r)
        return &u->lcur;
    if (u->lnext && u->lnext->req == r)
        return &u->lnext;
    if (u->lold && u->lold->req == r)
        return &u->lold;
    return NULL;
}

void mcpgw_upmcp26_listen_stop(struct mcpgw_upmcp *u)
{
    ls_drop(&u->lcur);
    ls_drop(&u->lnext);
    ls_drop(&u->lold);
    if (u->retire)
        evtimer_del(u->retire);
    u->listening = 0;
}

void mcpgw_upmcp26_listen_open(struct mcpgw_upmcp *u, const char *auth)
{
    struct mcpgw_upmcp_lstream *ls, **slot;
    if (u->lnext || (u->lcur && u->lcur->gen == u->watch_gen))
        return; /* what the filter asks for is open or opening */
    slot = u->lcur ? &u->lnext : &u->lcur;
    ls = xcalloc(1, sizeof(*ls));
    ls->gen = u->watch_gen;
    ls->sse = mcpgw_sse_parser_new(u->max_msg, mcpgw_upmcp_q_push, &ls->q);
    if (!(ls->req = mcpgw_upmcp_listen_post(u, auth))) {
        ls_free(ls);
        return;
    }
    *slot = ls;
}

void mcpgw_upmcp26_watch_changed(struct mcpgw_upmcp *u)
{
    u->watch_gen++;
    if (!u->listen_wanted || u->dying)
        return;
    ls_drop(&u->lnext);               /* asked for a filter that is already out of date */
    if (u->lcur && !u->lcur->acked) { /* covers nothing yet: nothing to keep */
        ls_drop(&u->lcur);
        u->listening = 0;
    }
    evtimer_del(u->retry);
    mcpgw_upmcp_listen_open(u);
}

static void on_retire(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upmcp *u = arg;
    (void)fd, (void)what;
    ls_drop(&u->lold);
}

/* The stream with the new filter was acknowledged: it is the current one; the one it replaces
 * stays open for LISTEN_GRACE_MS. */
static void promote(struct mcpgw_upmcp *u)
{
    struct timeval tv = {LISTEN_GRACE_MS / 1000, (LISTEN_GRACE_MS % 1000) * 1000};
    ls_drop(&u->lold);
    u->lold = u->lcur;
    u->lcur = u->lnext;
    u->lnext = NULL;
    u->listening = 1;
    if (!u->lold)
        return;
    if (!u->retire)
        u->retire = evtimer_new(mcpgw_hc_base(u->hc), on_retire, u);
    evtimer_add(u->retire, &tv);
}

/* Hands the caller a notification the node makes up, as if the upstream had sent it. */
static void tell(struct mcpgw_upmcp *u, const char *method, json_object *params)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad = NULL;
    const char *why;
    size_t len;
    char *text = mcpgw_jsonrpc_notification(method, params, &len);
    if (mcpgw_jsonrpc_parse(text, len, &m, &bad, &why) != 0) {
        json_object_put(bad);
    } else {
        if (u->cbs.on_message)
            u->cbs.on_message(u->arg, NULL, &m);
        mcpgw_jsonrpc_msg_deinit(&m);
    }
    free(text);
}

/* A stream was acknowledged: after a break, what may have been sent meanwhile is told again. */
static void acknowledged(struct mcpgw_upmcp *u)
{
    static const char *const kinds[] = {"tools", "prompts", "resources"};
    char method[64];
    char **uris;
    size_t n;
    if (!u->listen_broken)
        return;
    u->listen_broken = 0;
    log_info("upstream %s: the listen stream is back; fetching the lists again and telling the "
             "subscribers of %zu resource(s) to read them again",
             u->name, u->nwatch);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !u->dying; i++) {
        snprintf(method, sizeof(method), "notifications/%s/list_changed", kinds[i]);
        tell(u, method, NULL);
    }
    /* A copy: a callback may subscribe or unsubscribe (and so change u->watch). */
    n = u->nwatch;
    uris = xcalloc(n + 1, sizeof(*uris));
    for (size_t i = 0; i < n; i++)
        uris[i] = xstrdup(u->watch[i]);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "uri", json_object_new_string(uris[i]));
        if (!u->dying)
            tell(u, "notifications/resources/updated", p);
        else
            json_object_put(p);
        free(uris[i]);
    }
    free(uris);
}

/* The stream in slot ended or failed (r already cancelled or finished). */
static void ls_lost(struct mcpgw_upmcp *u, struct mcpgw_upmcp_lstream **slot, long status)
{
    struct mcpgw_upmcp_lstream *ls = *slot;
    int cur = slot == &u->lcur, old = slot == &u->lold;
    ls->req = NULL;
    ls_drop(slot);
    if (old)
        return;
    if (cur) {
        /* Updates sent from now until a stream is acknowledged again reach nobody. */
        u->listen_broken = 1;
        u->listening = 0;
        if (u->lnext) { /* already opening, with the newer filter: it takes over */
            u->lcur = u->lnext;
            u->lnext = NULL;
            return;
        }
    }
    /* The current stream (if any) goes on; the one the filter wants is opened after the
     * backoff, or with a new token. */
    if (status)
        mcpgw_upmcp_listen_refused(u, status);
    else
        mcpgw_upmcp_listen_again(u);
    if (!u->listen_wanted) /* 405: the upstream does not listen */
        mcpgw_upmcp26_listen_stop(u);
}

void mcpgw_upmcp26_listen_head(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r)
{
    struct mcpgw_upmcp_lstream **slot = slot_of(u, r);
    long st = mcpgw_hc_req_status(r);
    const char *ct = mcpgw_hc_req_header(r, "Content-Type");
    if (!slot)
        return;
    if (st == 200 && ct && strncasecmp(ct, "text/event-stream", 17) == 0) {
        u->get_refused = 0;
        if (slot == &u->lcur)
            u->listening = 1;
        return;
    }
    mcpgw_hc_req_cancel(r);
    ls_lost(u, slot, st);
}

/* One event of stream ls. */
static void ls_event(struct mcpgw_upmcp *u, struct mcpgw_upmcp_lstream *ls, struct ev_item *e)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    json_object *bad = NULL;
    u->listen_got = 1;
    if (e->len == 0)
        return; /* priming event */
    if (e->len > u->max_msg || mcpgw_jsonrpc_parse(e->data, e->len, &m, &bad, &why) != 0) {
        json_object_put(bad);
        log_warn("upstream %s: dropped a message on the listen stream: %s", u->name,
                 e->len > u->max_msg ? "over the size cap" : why);
        return;
    }
    if (m.kind == MCPGW_JSONRPC_NOTIFICATION &&
        strcmp(m.method, "notifications/subscriptions/acknowledged") == 0) {
        if (!ls->acked) {
            ls->acked = 1;
            if (ls == u->lnext)
                promote(u);
            else if (ls == u->lcur)
                u->listening = 1;
            acknowledged(u);
        }
    } else if (m.kind != MCPGW_JSONRPC_NOTIFICATION) {
        log_debug("upstream %s: the listen stream's subscription ended", u->name);
    } else if (u->cbs.on_message) {
        u->cbs.on_message(u->arg, NULL, &m);
    }
    mcpgw_jsonrpc_msg_deinit(&m);
}

void mcpgw_upmcp26_listen_body(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r, const char *buf,
                               size_t len)
{
    struct mcpgw_upmcp_lstream **slot = slot_of(u, r), *ls;
    if (!slot)
        return;
    ls = *slot;
    if (mcpgw_sse_parser_feed(ls->sse, buf, len) < 0) {
        log_warn("upstream %s: a line on the listen stream is over the %zu-byte cap; reconnecting",
                 u->name, u->max_msg);
        mcpgw_upmcp_q_clear(&ls->q, 0);
        mcpgw_hc_req_cancel(r);
        ls_lost(u, slot, 0);
        return;
    }
    mcpgw_upmcp_enter(u);
    ls->busy++;
    for (size_t i = 0; i < ls->q.n && !u->dying && !ls->dead; i++)
        ls_event(u, ls, &ls->q.v[i]);
    mcpgw_upmcp_q_clear(&ls->q, 0);
    if (!--ls->busy && ls->dead)
        ls_free(ls);
    mcpgw_upmcp_leave(u);
}

void mcpgw_upmcp26_listen_done(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r, int err,
                               const char *why)
{
    struct mcpgw_upmcp_lstream **slot = slot_of(u, r);
    if (!slot)
        return;
    log_debug("upstream %s: a listen stream ended (%s)", u->name, why);
    (void)err;
    (*slot)->req = NULL; /* the client frees r after this returns */
    ls_lost(u, slot, 0);
}

/* ---- ttlMs, for lists without list_changed ----
 *
 * An upstream that announces list_changed for a kind tells the node when to fetch those lists
 * again, and their ttlMs adds nothing (docs/federation.md, "Caching hints"). One that does not
 * leaves the client "relying entirely on TTL-based freshness"; the node answers its clients
 * from the catalogue, so it fetches such a list again when its ttlMs runs out, with jitter, at
 * least a second apart, and backing off (doubling, up to an hour) while no answer comes. */

#define TTL_MIN_MS 1000L
#define TTL_MAX_MS 3600000L

static const char *const ttl_kinds[] = {"tools", "prompts", "resources"};

static void on_ttl0(evutil_socket_t fd, short what, void *arg);
static void on_ttl1(evutil_socket_t fd, short what, void *arg);
static void on_ttl2(evutil_socket_t fd, short what, void *arg);
static void (*const on_ttl_of[])(evutil_socket_t, short, void *) = {on_ttl0, on_ttl1, on_ttl2};

static void ttl_arm(struct mcpgw_upmcp *u, int k, long ms)
{
    struct timeval tv;
    ms = ms < TTL_MIN_MS ? TTL_MIN_MS : ms > TTL_MAX_MS ? TTL_MAX_MS : ms;
    u->ttl_ms[k] = ms;
    ms += random() % (ms / 10 + 1); /* nodes and lines apart */
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (!u->ttl[k])
        u->ttl[k] = evtimer_new(mcpgw_hc_base(u->hc), on_ttl_of[k], u);
    evtimer_add(u->ttl[k], &tv);
}

/* The ttlMs of a list of kind k ran out (u closed: not ready, nothing more). */
static void on_ttl(struct mcpgw_upmcp *u, int k)
{
    char method[64];
    if (!u->ready || u->dying)
        return;
    ttl_arm(u, k, u->ttl_ms[k] * 2); /* unless an answer comes and sets it anew */
    snprintf(method, sizeof(method), "notifications/%s/list_changed", ttl_kinds[k]);
    mcpgw_upmcp_enter(u);
    tell(u, method, NULL); /* the caller fetches the list(s) of that kind */
    mcpgw_upmcp_leave(u);
}

static void on_ttl0(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    on_ttl(arg, 0);
}

static void on_ttl1(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    on_ttl(arg, 1);
}

static void on_ttl2(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    on_ttl(arg, 2);
}

static void on_relist(void *arg, enum mcpgw_upmcp_err err, const char *why,
                      const struct mcpgw_jsonrpc_msg *m);

void mcpgw_upmcp26_list_answer(struct mcpgw_upmcp_call *c, json_object *result)
{
    struct mcpgw_upmcp *u = c->u;
    const char *method = c->method;
    json_object *caps = mcpgw_json_obj(u->server_result, "capabilities"), *ttl, *lc;
    int k;
    if (strcmp(method, "tools/list") == 0)
        mcpgw_upmcp26_learn_tools(u, result);
    if (strcmp(method, "tools/list") == 0)
        k = 0;
    else if (strcmp(method, "prompts/list") == 0)
        k = 1;
    else if (strcmp(method, "resources/list") == 0 ||
             strcmp(method, "resources/templates/list") == 0)
        k = 2;
    else
        return;
    lc = json_object_object_get(mcpgw_json_obj(caps, ttl_kinds[k]), "listChanged");
    if (lc && json_object_get_boolean(lc))
        return; /* list_changed says when */
    ttl = json_object_object_get(result, "ttlMs");
    if (!ttl || !json_object_is_type(ttl, json_type_int) || json_object_get_int64(ttl) <= 0)
        return; /* 0 or none: stale at once, so no hint when to look again */
    if (c->cbs.on_reply == on_relist)
        return; /* a session that lists only after a HeaderMismatch serves no catalogue */
    ttl_arm(
        u, k,
        (long)(json_object_get_int64(ttl) > TTL_MAX_MS ? TTL_MAX_MS : json_object_get_int64(ttl)));
}

/* The tool schemas of the upstreams, by URL: learned from the tools/list answers of the shared
 * session and used by every session to that URL (per-client ones list nothing themselves). One
 * entry per distinct URL that answered a 2026-07-28 tools/list, kept for the process's life (the
 * node is single-threaded). */
struct schemas {
    struct schemas *next;
    char *url;
    json_object *tools; /* name -> inputSchema */
};
static struct schemas *schemas_all;

static struct schemas *schemas_of(const char *url, int create)
{
    struct schemas *s;
    for (s = schemas_all; s && strcmp(s->url, url) != 0; s = s->next)
        ;
    if (!s && create) {
        s = xcalloc(1, sizeof(*s));
        s->url = xstrdup(url);
        s->tools = json_object_new_object();
        s->next = schemas_all;
        schemas_all = s;
    }
    return s;
}

void mcpgw_upmcp26_learn_tools(struct mcpgw_upmcp *u, json_object *result)
{
    json_object *tools = mcpgw_json_arr(result, "tools");
    struct schemas *s;
    if (!tools)
        return;
    s = schemas_of(u->url, 1);
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        const char *name = mcpgw_json_str(t, "name");
        json_object *schema = mcpgw_json_obj(t, "inputSchema");
        char why[256];
        if (!name)
            continue;
        if (schema && !mcpgw_up26_tool_marks_ok(schema, why, sizeof(why))) {
            /* The revision: a client leaves such a tool out of its tools/list (and warns). */
            log_warn("upstream %s: tool '%s' left out of the catalogue: %s", u->name, name, why);
            json_object_object_del(s->tools, name);
            json_object_array_del_idx(tools, i--, 1);
            continue;
        }
        /* Only schemas that mark a header are kept: the rest need nothing. */
        if (schema && strstr(json_object_to_json_string(schema), "x-mcp-header"))
            json_object_object_add(s->tools, name, json_object_get(schema));
        else
            json_object_object_del(s->tools, name);
    }
}

int mcpgw_upmcp26_param_headers(struct mcpgw_upmcp *u, const char *method, json_object *params,
                                char **out, int max)
{
    struct schemas *s;
    json_object *schema;
    if (strcmp(method, "tools/call") != 0 || !(s = schemas_of(u->url, 0)) ||
        !mcpgw_json_str(params, "name") ||
        !(schema = json_object_object_get(s->tools, mcpgw_json_str(params, "name"))))
        return 0;
    return mcpgw_up26_param_headers(schema, json_object_object_get(params, "arguments"), out, max);
}
