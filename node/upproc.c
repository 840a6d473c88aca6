/* upproc.c - per-client stdio upstreams: one child per client session (see upproc.h). */
#include "node/upproc.h"

#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/util.h"
#include "node/call.h"
#include "node/node-t.h"
#include "node/s2c.h"
#include "node/session.h"
#include "node/stdiomcp.h"
#include "node/upcfg.h"
#include "node/upguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pleg;

/* One session's child of one upstream. */
struct mcpgw_upproc {
    struct mcpgw_upproc *next;
    struct mcpgw_node *n;
    char sid[MCPGW_SESSION_ID_MAX];
    char *name;
    struct mcpgw_stdiomcp *io;
    struct pleg *legs; /* calls waiting for the child or in flight */
};

/* A client call served by the child. */
struct pleg {
    struct pleg *next;
    struct mcpgw_upproc *p;
    struct mcpgw_call *c;
    char *method;
    json_object *params;
    struct mcpgw_upstdio_call *uc;
    struct mcpgw_upguard guard; /* admitted by the upstream's breaker and bulkhead */
};

/* The session's list of children lives in the session (s->procs). */

static void pleg_unlink(struct pleg *l)
{
    for (struct pleg **pp = &l->p->legs; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            return;
        }
}

static void pleg_free(void *arg)
{
    struct pleg *l = arg;
    /* Not told before (cancelled, session gone): says nothing about the upstream's health. */
    mcpgw_upguard_done(l->p->n, l->p->name, &l->guard, MCPGW_BREAKER_NEUTRAL, "cancelled");
    if (l->uc)
        mcpgw_stdiomcp_cancel(l->p->io, l->uc, 1, "the client's request ended");
    pleg_unlink(l);
    json_object_put(l->params);
    free(l->method);
    free(l);
}

static struct mcpgw_call *pleg_detach(struct pleg *l)
{
    struct mcpgw_call *c = l->c;
    c->leg = NULL;
    c->leg_free = NULL;
    l->uc = NULL;
    pleg_free(l);
    return c;
}

static void on_reply(void *arg, enum mcpgw_upstdio_err err, const char *why,
                     const struct mcpgw_jsonrpc_msg *m)
{
    struct pleg *l = arg;
    struct mcpgw_call *c;
    mcpgw_upguard_done(l->p->n, l->p->name, &l->guard,
                       err == MCPGW_UPSTDIO_OK ? MCPGW_BREAKER_OK : MCPGW_BREAKER_FAIL,
                       mcpgw_upstdio_err_str(err));
    c = pleg_detach(l);
    if (err) {
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
    } else if (m->kind == MCPGW_JSONRPC_RESULT) {
        mcpgw_call_result(c, json_object_get(m->result));
    } else {
        json_object *code = NULL, *msg = NULL;
        json_object_object_get_ex(m->error, "code", &code);
        json_object_object_get_ex(m->error, "message", &msg);
        mcpgw_call_error(c, code ? json_object_get_int(code) : MCPGW_JSONRPC_INTERNAL_ERROR,
                         msg ? json_object_get_string(msg) : "the upstream answered with an error");
    }
}

/* A plain result passed through (node/upstdio.h): answered without a parse. */
static void on_raw(void *arg, const char *result, size_t len)
{
    struct pleg *l = arg;
    mcpgw_upguard_done(l->p->n, l->p->name, &l->guard, MCPGW_BREAKER_OK,
                       mcpgw_upstdio_err_str(MCPGW_UPSTDIO_OK));
    mcpgw_call_result_raw(pleg_detach(l), result, len);
}

static void issue(struct pleg *l)
{
    char why[256];
    l->uc = mcpgw_stdiomcp_request(l->p->io, l->method, json_object_get(l->params), on_reply, l);
    if (l->uc)
        mcpgw_upstdio_call_set_raw(l->uc, on_raw);
    if (!l->uc) {
        snprintf(why, sizeof(why), "upstream %s: its process for this session is not ready",
                 l->p->name);
        mcpgw_call_error(pleg_detach(l), MCPGW_JSONRPC_INTERNAL_ERROR, why);
    }
}

static void on_ready(void *arg, int ok, const char *why)
{
    struct mcpgw_upproc *p = arg;
    struct pleg *l = p->legs, *next;
    if (!ok) {
        log_warn("upstream %s (session %s): %s", p->name, p->sid, why);
        return; /* supervision restarts it; waiting calls wait (their own deadline applies) */
    }
    for (; l; l = next) {
        next = l->next;
        if (!l->uc)
            issue(l);
    }
}

static void on_down(void *arg, int status, long restart_in_ms)
{
    struct mcpgw_upproc *p = arg;
    log_info("upstream %s (session %s): process ended (status %d)%s", p->name, p->sid, status,
             restart_in_ms >= 0 ? ", restarting" : "");
}

static void answer_up(void *arg, const char *json, size_t len)
{
    struct mcpgw_upproc *p = arg;
    if (mcpgw_stdiomcp_send(p->io, json, len) < 0)
        log_warn("upstream %s: could not send the client's answer", p->name);
}

static void on_message(void *arg, const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upproc *p = arg;
    struct pleg *only = NULL;
    int n = 0;
    for (struct pleg *l = p->legs; l; l = l->next)
        if (l->uc)
            only = l, n++;
    if (m->kind == MCPGW_JSONRPC_REQUEST) {
        char why[200];
        size_t len;
        char *json;
        if (n == 1) {
            mcpgw_s2c_forward(only->c, p->name, m, answer_up, p);
            return;
        }
        /* The child is this client's alone, but its request names no call. */
        snprintf(why, sizeof(why), "%.60s not forwarded: %s", m->method,
                 n ? "several calls are in flight" : "no call is in flight");
        json = mcpgw_jsonrpc_error(m->id, MCPGW_JSONRPC_METHOD_NOT_FOUND, why, NULL, &len);
        mcpgw_stdiomcp_send(p->io, json, len);
        free(json);
    } else if (m->kind == MCPGW_JSONRPC_NOTIFICATION && n == 1) {
        /* progress (the client's own token), logging: the call's stream */
        size_t len;
        char *json = mcpgw_json_dump(m->root, &len);
        mcpgw_call_emit(only->c, json, len);
        free(json);
    }
}

static const struct mcpgw_stdiomcp_cbs proc_cbs = {on_ready, on_down, on_message};

static struct mcpgw_upproc *find(struct mcpgw_session *s, const char *name)
{
    for (struct mcpgw_upproc *p = s->procs; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

void mcpgw_upproc_call(struct mcpgw_call *c, const struct mcpgw_upcfg *cfg, const char *method,
                       json_object *params)
{
    mcpgw_upproc_call_as(c, c->s, cfg, method, params);
}

void mcpgw_upproc_call_as(struct mcpgw_call *c, struct mcpgw_session *owner,
                          const struct mcpgw_upcfg *cfg, const char *method, json_object *params)
{
    struct mcpgw_node *n = c->node;
    struct mcpgw_session *s = owner;
    struct mcpgw_upproc *p = s ? find(s, cfg->name) : NULL;
    struct pleg *l;
    struct mcpgw_upguard g;
    char why[256];
    if (!s) {
        json_object_put(params);
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, "the session is gone");
        return;
    }
    /* The upstream's breaker and bulkhead first: a refused call starts no process. */
    if (mcpgw_upguard_admit(n, cfg->name, &g, why, sizeof(why)) < 0) {
        json_object_put(params);
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        return;
    }
    if (!p) {
        unsigned max = cfg->max_procs ? cfg->max_procs : MCPGW_UPPROC_DEFAULT_MAX;
        struct mcpgw_upstdio_cfg sc = {.name = cfg->name,
                                       .argv = (const char *const *)cfg->argv,
                                       .timeout_ms = (long)cfg->timeout_ms};
        if (n->upprocs >= max) {
            snprintf(why, sizeof(why),
                     "upstream %s: this node already runs %u per-client processes (max-procs)",
                     cfg->name, n->upprocs);
            mcpgw_upguard_done(n, cfg->name, &g, MCPGW_BREAKER_NEUTRAL, "max_procs");
            json_object_put(params);
            mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
            return;
        }
        p = xcalloc(1, sizeof(*p));
        p->n = n;
        snprintf(p->sid, sizeof(p->sid), "%s", s->id);
        p->name = xstrdup(cfg->name);
        p->io = mcpgw_stdiomcp_new(n->base, &sc, &proc_cbs, p);
        p->next = s->procs;
        s->procs = p;
        n->upprocs++;
        log_info("upstream %s: process started for session %s (%u per-client processes)", cfg->name,
                 s->id, n->upprocs);
        if (mcpgw_stdiomcp_start(p->io, why, sizeof(why)) < 0)
            log_warn("upstream %s (session %s): %s (retrying with backoff)", cfg->name, s->id, why);
    }
    l = xcalloc(1, sizeof(*l));
    l->guard = g;
    l->p = p;
    l->c = c;
    l->method = xstrdup(method);
    l->params = params;
    l->next = p->legs;
    p->legs = l;
    c->leg = l;
    c->leg_free = pleg_free;
    if (mcpgw_stdiomcp_ready(p->io))
        issue(l);
}

/* graceful: stdin closed, SIGTERM, SIGKILL after the grace period, on the loop; otherwise killed
 * and reaped now (the loop has stopped). */
static void release(struct mcpgw_node *n, struct mcpgw_session *s, int graceful)
{
    while (s->procs) {
        struct mcpgw_upproc *p = s->procs;
        s->procs = p->next;
        while (p->legs) { /* calls were aborted before: none should be left */
            struct pleg *l = p->legs;
            l->c->leg = NULL;
            l->c->leg_free = NULL;
            pleg_free(l);
        }
        log_info("upstream %s: process of session %s stopped", p->name, s->id);
        if (graceful)
            mcpgw_stdiomcp_close(p->io);
        else
            mcpgw_stdiomcp_free(p->io);
        n->upprocs--;
        free(p->name);
        free(p);
    }
}

void mcpgw_upproc_release(struct mcpgw_node *n, struct mcpgw_session *s)
{
    release(n, s, 1);
}

void mcpgw_upproc_kill(struct mcpgw_node *n, struct mcpgw_session *s)
{
    release(n, s, 0);
}

int mcpgw_upproc_busy(const struct mcpgw_session *s)
{
    for (const struct mcpgw_upproc *p = s->procs; p; p = p->next)
        if (p->legs)
            return 1;
    return 0;
}

unsigned mcpgw_upproc_count(const struct mcpgw_node *n)
{
    return n->upprocs;
}
