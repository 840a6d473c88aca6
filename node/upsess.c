/* upsess.c - per-client upstream sessions (see upsess.h).
 *
 * Each client session that used a per-client upstream holds one `struct one` per upstream: the
 * upmcp session, the client calls waiting for it to be ready, and the GET-stream bookkeeping.
 * The upstream state is written to the session record as the field "up:<name>" with the value
 * "<revision>\n<Mcp-Session-Id>\n<last event id delivered>" (docs/replication.md). At most one
 * such write is in flight per upstream session: a later event id waits for it, so a burst of
 * upstream notifications costs one write per Redis round trip, not one per notification. */
#include "node/upsess.h"

#include "common/httpclient.h"
#include "common/log.h"
#include "common/util.h"
#include "node/call.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/s2c.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upcfg.h"
#include "node/upcred.h"
#include "node/upguard.h"
#include "node/upstream.h"
#include "node/defer.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET-stream messages waiting for the client's GET stream (shared store), per upstream session:
 * beyond this the oldest are dropped (and logged); the upstream still has them after the last
 * event id recorded. */
#define QUEUE_MAX 1024
/* How often a queue checks for the client's GET stream. */
#define FLUSH_MS 50

struct upcfg {
    struct upcfg *next;
    struct mcpgw_upmcp_cfg cfg; /* strings owned */
    char **headers;
};

struct mcpgw_upsess_node {
    struct mcpgw_hc *hc;
    struct upcfg *cfgs;
    struct mcpgw_upsess *sets; /* every session's set here (a reload walks them) */
};

struct qmsg {
    struct qmsg *next;
    char *ev_id; /* the upstream's event id, or NULL */
    size_t len;
    char data[];
};

struct leg;
struct pend;

/* One client session's session at one upstream. */
struct one {
    struct one *next;
    struct mcpgw_upsess *set;
    char *name;
    struct mcpgw_upmcp *u;
    int ready, starting;
    struct leg *waiting; /* client calls waiting for initialize */
    struct leg *legs;    /* every request of a client in flight or waiting here (failed when
                          * the session ends or a reload takes the upstream away) */
    char *want_ev;       /* the last event id delivered to the client */
    char *saved_ev;      /* ... and the one the record has */
    int saving;
    struct qmsg *q, **qtail;
    unsigned qn;
};

/* A server-to-client request from an upstream's GET stream, forwarded on the client's GET
 * stream under out_id. */
struct pend {
    struct pend *next;
    struct mcpgw_upsess *set;
    int64_t out_id;
    json_object *up_id;
    char *upstream;
    struct event *timer;
};

struct mcpgw_upsess {
    struct mcpgw_node *n;
    struct mcpgw_session *s;
    struct mcpgw_upsess *snext, **sprev; /* in the node's list */
    struct one *ones;
    struct pend *pend;
    struct event *flush;
};

/* The upstream request serving one client call, or one request answered through a deferred
 * reply (d: resources/subscribe). */
struct leg {
    struct leg *next; /* in its upstream session's waiting list */
    struct mcpgw_call *c;
    struct mcpgw_defer *d;
    struct leg *dnext, **dprev; /* in their upstream session's list of legs */
    struct one *o;
    char *method;
    json_object *params;
    struct mcpgw_upmcp_call *uc;
    int retried;
    struct mcpgw_upguard guard; /* admitted by the upstream's breaker and bulkhead */
};

/* ---- configuration ---- */

static struct mcpgw_upsess_node *node_state(struct mcpgw_node *n)
{
    if (!n->upsess) {
        n->upsess = xcalloc(1, sizeof(*n->upsess));
        n->upsess->hc = mcpgw_hc_new(n->base);
    }
    return n->upsess;
}

static void upcfg_free(struct upcfg *u)
{
    free((char *)u->cfg.name);
    free((char *)u->cfg.url);
    mcpgw_upcred_cfg_free((struct mcpgw_upcred_cfg *)u->cfg.oauth);
    for (size_t i = 0; u->headers && u->headers[i]; i++)
        free(u->headers[i]);
    free(u->headers);
    free(u);
}

static const struct upcfg *find_cfg(struct mcpgw_node *n, const char *name)
{
    const struct mcpgw_upcfg *uc;
    if (n->upsess)
        for (struct upcfg *u = n->upsess->cfgs; u; u = u->next)
            if (strcmp(u->cfg.name, name) == 0)
                return u;
    /* An http `upstream` line with session=per-client, or with no session= (per-client when the
     * upstream is stateful: upprov.c asks mcpgw_upstream_per_client before calling here; a
     * claimed session has a record only for those): registered on first use. */
    uc = mcpgw_upcfg_find(n->cfg.upstreams, name);
    if (uc && uc->kind == MCPGW_UPCFG_HTTP && uc->session != MCPGW_UPCFG_SESSION_SHARED) {
        struct mcpgw_upmcp_cfg c = {.name = uc->name,
                                    .url = uc->url,
                                    .headers = (const char *const *)uc->headers,
                                    .timeout_ms = (long)uc->timeout_ms,
                                    .flags = uc->h2c ? MCPGW_HC_H2C : 0,
                                    .oauth = uc->oauth,
                                    .era = (enum mcpgw_upmcp_era)uc->protocol};
        if (mcpgw_upsess_register(n, &c) == 0)
            return find_cfg(n, name);
    }
    return NULL;
}

int mcpgw_upsess_register(struct mcpgw_node *n, const struct mcpgw_upmcp_cfg *cfg)
{
    struct mcpgw_upsess_node *ns;
    struct upcfg *u, **pp;
    size_t nh = 0;
    if (!cfg || !cfg->name || !*cfg->name || !cfg->url || !*cfg->url)
        return -1;
    ns = node_state(n);
    u = xcalloc(1, sizeof(*u));
    u->cfg = *cfg;
    u->cfg.name = xstrdup(cfg->name);
    u->cfg.url = xstrdup(cfg->url);
    u->cfg.oauth = mcpgw_upcred_cfg_dup(cfg->oauth);
    while (cfg->headers && cfg->headers[nh])
        nh++;
    u->headers = xcalloc(nh + 1, sizeof(char *));
    for (size_t i = 0; i < nh; i++)
        u->headers[i] = xstrdup(cfg->headers[i]);
    u->cfg.headers = (const char *const *)u->headers;
    for (pp = &ns->cfgs; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->cfg.name, cfg->name) == 0) {
            struct upcfg *old = *pp;
            u->next = old->next;
            *pp = u;
            upcfg_free(old);
            return 0;
        }
    *pp = u;
    return 0;
}

int mcpgw_upsess_known(struct mcpgw_node *n, const char *name)
{
    return find_cfg(n, name) != NULL;
}

/* ---- the record ---- */

struct saving {
    struct mcpgw_node *n;
    char sid[MCPGW_SESSION_ID_MAX];
    char *name;
    char *ev;
};

static void save(struct one *o);

static struct one *find_one(struct mcpgw_upsess *set, const char *name)
{
    for (struct one *o = set ? set->ones : NULL; o; o = o->next)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

static void on_saved(void *arg, int err)
{
    struct saving *sv = arg;
    struct mcpgw_session *s = mcpgw_registry_lookup(sv->n->reg, sv->sid, strlen(sv->sid));
    struct one *o = s ? find_one(s->ups, sv->name) : NULL;
    if (err && err != MCPGW_STORE_STALE)
        log_warn("session %s: could not record the state of upstream %s: %s", sv->sid, sv->name,
                 mcpgw_store_err_str(err));
    if (o) {
        o->saving = 0;
        if (!err) {
            free(o->saved_ev);
            o->saved_ev = sv->ev;
            sv->ev = NULL;
        }
        if (!err)
            save(o); /* a newer event id arrived meanwhile */
        /* On an error the next delivered event tries again (no retry loop while Redis is away). */
    }
    free(sv->name);
    free(sv->ev);
    free(sv);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Write the upstream session's state if the record does not have it yet (one write at a time). */
static void save(struct one *o)
{
    struct mcpgw_node *n = o->set->n;
    struct saving *sv;
    const char *sid = mcpgw_upmcp_session_id(o->u), *ver = mcpgw_upmcp_version(o->u);
    char *val;
    size_t len;
    /* A principal's session (mcpgw_upsess_call_as) is this node's alone: no record to keep. */
    if (o->saving || !mcpgw_store_shared(n->store) || !o->ready || !sid || !ver ||
        o->set->s->stateless)
        return;
    if (o->saved_ev && same(o->saved_ev, o->want_ev ? o->want_ev : ""))
        return;
    len = strlen(ver) + strlen(sid) + (o->want_ev ? strlen(o->want_ev) : 0) + 3;
    val = xmalloc(len);
    snprintf(val, len, "%s\n%s\n%s", ver, sid, o->want_ev ? o->want_ev : "");
    sv = xcalloc(1, sizeof(*sv));
    sv->n = n;
    snprintf(sv->sid, sizeof(sv->sid), "%s", o->set->s->id);
    sv->name = xstrdup(o->name);
    sv->ev = xstrdup(o->want_ev ? o->want_ev : "");
    o->saving = 1;
    mcpgw_store_upstream_put(n->store, o->set->s, o->name, val, on_saved, sv);
    free(val);
}

/* ---- delivery on the client's GET stream ---- */

static void delivered(struct one *o, const char *ev_id)
{
    if (!ev_id)
        return;
    free(o->want_ev);
    o->want_ev = xstrdup(ev_id);
    save(o);
}

/* Write one message into the client's GET stream now, if it can take it (shared store: the
 * session's GET stream is live and not replaying). The event id repeats the last cluster event
 * id written, so the client's Last-Event-ID stays a valid resume point for the cluster's replay
 * (the upstream's own order is kept by the upstream event id in the record). */
static int write_now(struct mcpgw_upsess *set, const char *json, size_t len)
{
    struct mcpgw_session *s = set->s;
    char id[64];
    if (!mcpgw_store_shared(set->n->store)) {
        mcpgw_stream_send(set->n, s, json, len); /* logged: a resume replays it */
        return 0;
    }
    if (!s->get_stream || s->resuming)
        return -1;
    snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)s->last_ev_ms,
             (unsigned long long)s->last_ev_seq);
    return mcpgw_frame_event_id(set->n, s->get_stream, id, json, len);
}

static void on_flush(evutil_socket_t fd, short what, void *arg);

static void flush(struct mcpgw_upsess *set)
{
    int left = 0;
    for (struct one *o = set->ones; o; o = o->next) {
        while (o->q) {
            struct qmsg *m = o->q;
            if (write_now(set, m->data, m->len) < 0)
                break;
            o->q = m->next;
            if (!o->q)
                o->qtail = &o->q;
            o->qn--;
            delivered(o, m->ev_id);
            free(m->ev_id);
            free(m);
        }
        left |= o->q != NULL;
    }
    if (left) {
        struct timeval tv = {0, FLUSH_MS * 1000};
        if (!set->flush)
            set->flush = evtimer_new(set->n->base, on_flush, set);
        evtimer_add(set->flush, &tv);
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    flush(arg);
}

static void deliver(struct one *o, const char *ev_id, const char *json, size_t len)
{
    struct qmsg *m;
    if (o->set->s->stateless) {
        /* A principal's session has no GET stream to write into (2026-07-28 clients have only
         * their calls' streams): what the upstream says outside a call is not passed on. */
        delivered(o, ev_id);
        return;
    }
    if (!o->q && write_now(o->set, json, len) == 0) {
        delivered(o, ev_id);
        return;
    }
    if (o->qn >= QUEUE_MAX) {
        struct qmsg *old = o->q;
        log_warn("session %s: upstream %s: the client's GET stream is away; a message dropped",
                 o->set->s->id, o->name);
        o->q = old->next;
        if (!o->q)
            o->qtail = &o->q;
        o->qn--;
        free(old->ev_id);
        free(old);
    }
    m = xmalloc(sizeof(*m) + len);
    m->next = NULL;
    m->ev_id = ev_id ? xstrdup(ev_id) : NULL;
    m->len = len;
    memcpy(m->data, json, len);
    *o->qtail = m;
    o->qtail = &m->next;
    o->qn++;
    flush(o->set);
}

/* ---- server-to-client requests from the GET stream ---- */

static void pend_free(struct pend *p)
{
    struct pend **pp;
    for (pp = &p->set->pend; *pp && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = p->next;
    if (p->timer)
        event_free(p->timer);
    json_object_put(p->up_id);
    free(p->upstream);
    free(p);
}

static void send_up(struct mcpgw_upsess *set, const char *upstream, const char *json, size_t len)
{
    struct one *o = find_one(set, upstream);
    if (o && o->u && mcpgw_upmcp_send(o->u, json, len, NULL, NULL) < 0)
        log_warn("session %s: upstream %s: could not send the client's answer", set->s->id,
                 upstream);
}

static void on_pend_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pend *p = arg;
    size_t len;
    char *json = mcpgw_s2c_response(p->up_id, NULL, NULL, p->upstream, &len);
    (void)fd, (void)what;
    send_up(p->set, p->upstream, json, len);
    free(json);
    pend_free(p);
}

static void forward_request(struct one *o, const char *ev_id, const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_upsess *set = o->set;
    struct mcpgw_node *n = set->n;
    struct pend *p;
    char why[256], *json;
    size_t len;
    uint64_t ms = n->cfg.client_request_timeout_ms;
    struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
    if (mcpgw_s2c_allowed(set->s, m->method, why, sizeof(why)) < 0) {
        json = mcpgw_jsonrpc_error(m->id, MCPGW_JSONRPC_METHOD_NOT_FOUND, why, NULL, &len);
        mcpgw_upmcp_send(o->u, json, len, NULL, NULL);
        free(json);
        delivered(o, ev_id);
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->set = set;
    p->out_id = (int64_t)mcpgw_session_next_seq(set->s);
    p->up_id = json_object_get(m->id);
    p->upstream = xstrdup(o->name);
    p->timer = evtimer_new(n->base, on_pend_timeout, p);
    evtimer_add(p->timer, &tv);
    p->next = set->pend;
    set->pend = p;
    json = mcpgw_msg_request(p->out_id, m->method, m->params ? json_object_get(m->params) : NULL,
                             &len);
    deliver(o, ev_id, json, len);
    free(json);
}

int mcpgw_upsess_response(struct mcpgw_node *n, struct mcpgw_session *s,
                          const struct mcpgw_jsonrpc_msg *m)
{
    struct pend *p;
    size_t len;
    char *json;
    (void)n;
    if (mcpgw_s2c_answer(s, m))
        return 1; /* a call's forwarded request beyond its first (s2c.c) */
    if (!s->ups || !json_object_is_type(m->id, json_type_int))
        return 0;
    for (p = s->ups->pend; p && p->out_id != json_object_get_int64(m->id); p = p->next)
        ;
    if (!p)
        return 0;
    json = mcpgw_s2c_response(p->up_id, m->result, m->kind == MCPGW_JSONRPC_ERROR ? m->error : NULL,
                              p->upstream, &len);
    send_up(s->ups, p->upstream, json, len);
    free(json);
    pend_free(p);
    return 1;
}

/* ---- the upstream session ---- */

static void leg_issue(struct leg *l);
static void leg_fail(struct leg *l, const char *why);

static void on_up_message(void *arg, const char *ev_id, const struct mcpgw_jsonrpc_msg *m)
{
    struct one *o = arg;
    if (m->kind == MCPGW_JSONRPC_REQUEST) {
        forward_request(o, ev_id, m);
    } else if (m->kind == MCPGW_JSONRPC_NOTIFICATION) {
        size_t len;
        char *json = mcpgw_json_dump(m->root, &len);
        deliver(o, ev_id, json, len);
        free(json);
    } else {
        delivered(o, ev_id); /* a stray response: nothing for the client */
    }
}

static void on_up_ready(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    struct one *o = arg;
    struct leg *w = o->waiting;
    o->waiting = NULL;
    o->starting = 0;
    if (err) {
        log_warn("session %s: upstream %s: %s", o->set->s->id, o->name, why);
        while (w) {
            struct leg *next = w->next;
            w->next = NULL;
            mcpgw_upguard_done(o->set->n, o->name, &w->guard, MCPGW_BREAKER_FAIL,
                               mcpgw_upmcp_err_str(err));
            leg_fail(w, why);
            w = next;
        }
        return; /* the next call initializes again */
    }
    o->ready = 1;
    free(o->want_ev);
    o->want_ev = NULL;
    free(o->saved_ev);
    o->saved_ev = NULL;
    save(o);
    mcpgw_upmcp_listen(o->u, NULL);
    while (w) {
        struct leg *next = w->next;
        w->next = NULL;
        leg_issue(w);
        w = next;
    }
}

/* The client's declared capabilities, for the upstream's initialize (it then knows what it may
 * ask this client). */
static json_object *client_caps(const struct mcpgw_session *s)
{
    json_object *cl = s->client ? json_tokener_parse(s->client) : NULL, *caps = NULL;
    if (cl && json_object_object_get_ex(cl, "capabilities", &caps) &&
        json_object_is_type(caps, json_type_object))
        caps = json_object_get(caps);
    else
        caps = NULL;
    json_object_put(cl);
    return caps;
}

static void start(struct one *o)
{
    o->ready = 0;
    o->starting = 1;
    if (mcpgw_upmcp_initialize(o->u, client_caps(o->set->s)) < 0)
        log_warn("session %s: upstream %s: initialize refused", o->set->s->id, o->name);
}

static void on_up_gone(void *arg)
{
    struct one *o = arg;
    log_info("session %s: upstream %s no longer knows its session: initializing again",
             o->set->s->id, o->name);
    o->ready = 0;
    start(o);
}

static const struct mcpgw_upmcp_cbs one_cbs = {on_up_ready, on_up_message, on_up_gone};

static struct mcpgw_upsess *set_of(struct mcpgw_node *n, struct mcpgw_session *s)
{
    if (!s->ups) {
        struct mcpgw_upsess_node *ns = node_state(n);
        s->ups = xcalloc(1, sizeof(*s->ups));
        s->ups->n = n;
        s->ups->s = s;
        s->ups->snext = ns->sets;
        if (ns->sets)
            ns->sets->sprev = &s->ups->snext;
        ns->sets = s->ups;
        s->ups->sprev = &ns->sets;
    }
    return s->ups;
}

/* The session's session at upstream name: existing, adopted from the record, or initializing. */
static struct one *get_one(struct mcpgw_node *n, struct mcpgw_session *s, const char *name)
{
    struct mcpgw_upsess *set = set_of(n, s);
    const struct upcfg *cfg;
    struct one *o = find_one(set, name);
    const char *st;
    json_object *v;
    if (o)
        return o;
    if (!(cfg = find_cfg(n, name)))
        return NULL;
    o = xcalloc(1, sizeof(*o));
    o->set = set;
    o->name = xstrdup(name);
    o->qtail = &o->q;
    o->u = mcpgw_upmcp_new(n->upsess->hc, &cfg->cfg, &one_cbs, o);
    o->next = set->ones;
    set->ones = o;
    if (s->up_state && json_object_object_get_ex(s->up_state, name, &v) &&
        (st = json_object_get_string(v)) != NULL) {
        /* "<revision>\n<session id>\n<last event id>" from the node that had it before. */
        char *copy = xstrdup(st), *ver = copy, *sid = strchr(copy, '\n'), *ev = NULL;
        if (sid) {
            *sid++ = '\0';
            if ((ev = strchr(sid, '\n')) != NULL)
                *ev++ = '\0';
        }
        if (sid && *sid && mcpgw_upmcp_adopt(o->u, sid, ver) == 0) {
            o->ready = 1;
            o->saved_ev = xstrdup(ev ? ev : "");
            o->want_ev = ev && *ev ? xstrdup(ev) : NULL;
            mcpgw_upmcp_listen(o->u, ev && *ev ? ev : NULL);
            log_info("session %s: upstream %s: session adopted, stream resumed after %s", s->id,
                     name, ev && *ev ? ev : "(start)");
        }
        free(copy);
        json_object_object_del(s->up_state, name);
        if (o->ready)
            return o;
    }
    start(o);
    return o;
}

void mcpgw_upsess_claimed(struct mcpgw_node *n, struct mcpgw_session *s)
{
    json_object *names;
    if (!s->up_state)
        return;
    names = json_object_new_array();
    json_object_object_foreach(s->up_state, k, v)
    {
        (void)v;
        json_object_array_add(names, json_object_new_string(k));
    }
    for (size_t i = 0; i < json_object_array_length(names); i++) {
        const char *name = json_object_get_string(json_object_array_get_idx(names, i));
        if (find_cfg(n, name))
            get_one(n, s, name);
    }
    json_object_put(names);
}

/* why (may be NULL) is what the client calls still served here are told. */
static void one_free(struct one *o, int end, const char *why)
{
    while (o->legs)
        leg_fail(o->legs, why ? why : "the session left this node before the upstream answered");
    while (o->q) {
        struct qmsg *m = o->q;
        o->q = m->next;
        free(m->ev_id);
        free(m);
    }
    if (end)
        mcpgw_upmcp_close(o->u, NULL, NULL);
    else
        mcpgw_upmcp_free(o->u);
    free(o->name);
    free(o->want_ev);
    free(o->saved_ev);
    free(o);
}

void mcpgw_upsess_release(struct mcpgw_node *n, struct mcpgw_session *s, int end)
{
    struct mcpgw_upsess *set = s->ups;
    (void)n;
    if (!set)
        return;
    s->ups = NULL;
    *set->sprev = set->snext;
    if (set->snext)
        set->snext->sprev = set->sprev;
    while (set->pend)
        pend_free(set->pend);
    while (set->ones) {
        struct one *o = set->ones;
        set->ones = o->next;
        /* Calls were aborted before: no leg waits. */
        one_free(o, end, NULL);
    }
    if (set->flush)
        event_free(set->flush);
    free(set);
}

/* Close every session's session at upstream name (calls fail with why, DELETE sent). */
static void close_all(struct mcpgw_upsess_node *ns, const char *name, const char *why)
{
    unsigned closed = 0;
    for (struct mcpgw_upsess *set = ns->sets; set; set = set->snext)
        for (struct one **pp = &set->ones; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->name, name) == 0) {
                struct one *o = *pp;
                *pp = o->next;
                one_free(o, 1, why);
                closed++;
                break;
            }
    if (closed)
        log_info("reload: upstream %s: %u per-client session%s closed", name, closed,
                 closed == 1 ? "" : "s");
}

void mcpgw_upsess_reload(struct mcpgw_node *n, const struct mcpgw_upcfg_set *next)
{
    struct mcpgw_upsess_node *ns = n->upsess;
    struct upcfg **pp;
    char why[200];
    if (!ns)
        return;
    for (pp = &ns->cfgs; *pp;) {
        struct upcfg *u = *pp;
        const struct mcpgw_upcfg *nu = mcpgw_upcfg_find(next, u->cfg.name);
        struct mcpgw_upmcp_cfg c;
        if (!nu || nu->kind != MCPGW_UPCFG_HTTP || nu->session == MCPGW_UPCFG_SESSION_SHARED ||
            strcmp(nu->url, u->cfg.url) != 0 || (enum mcpgw_upmcp_era)nu->protocol != u->cfg.era ||
            (nu->h2c ? MCPGW_HC_H2C : 0) != (u->cfg.flags & MCPGW_HC_H2C)) {
            /* Gone, or another endpoint: its sessions cannot carry on. Closed, DELETEd at the
             * old endpoint; with a new URL the next call opens a session there. */
            snprintf(why, sizeof(why), "upstream %s was %s by a configuration reload", u->cfg.name,
                     nu && nu->kind == MCPGW_UPCFG_HTTP ? "changed" : "removed");
            close_all(ns, u->cfg.name, why);
            *pp = u->next;
            upcfg_free(u);
            continue; /* registered again on first use if still per-client */
        }
        /* Same endpoint: the sessions stay; headers, OAuth client settings (a rotated secret)
         * and the timeout apply from the next request (filters and the prefix live in the
         * catalogue, rebuilt by upstream.c). */
        c = (struct mcpgw_upmcp_cfg){.name = nu->name,
                                     .url = nu->url,
                                     .headers = (const char *const *)nu->headers,
                                     .timeout_ms = (long)nu->timeout_ms,
                                     .flags = nu->h2c ? MCPGW_HC_H2C : 0,
                                     .oauth = nu->oauth,
                                     .era = (enum mcpgw_upmcp_era)nu->protocol};
        for (struct mcpgw_upsess *set = ns->sets; set; set = set->snext) {
            struct one *o = find_one(set, u->cfg.name);
            if (o)
                mcpgw_upmcp_set_cfg(o->u, &c);
        }
        mcpgw_upsess_register(n, &c); /* replaces u in place (u is freed) */
        pp = &(*pp)->next;
    }
}

void mcpgw_upsess_free_all(struct mcpgw_node *n)
{
    struct mcpgw_upsess_node *ns = n->upsess;
    if (!ns)
        return;
    while (ns->cfgs) {
        struct upcfg *u = ns->cfgs;
        ns->cfgs = u->next;
        upcfg_free(u);
    }
    mcpgw_hc_free(ns->hc);
    free(ns);
    n->upsess = NULL;
}

/* ---- client calls ---- */

static void leg_link(struct one *o, struct leg *l)
{
    l->dnext = o->legs;
    if (o->legs)
        o->legs->dprev = &l->dnext;
    o->legs = l;
    l->dprev = &o->legs;
}

static void leg_fail(struct leg *l, const char *why);

static void leg_free(void *p)
{
    struct leg *l = p;
    if (!l)
        return;
    /* An end not told to the breaker before (cancelled, session gone) says nothing about the
     * upstream's health. */
    mcpgw_upguard_done(l->o->set->n, l->o->name, &l->guard, MCPGW_BREAKER_NEUTRAL, "cancelled");
    if (l->uc)
        mcpgw_upmcp_call_cancel(l->uc, 1);
    for (struct leg **pp = &l->o->waiting; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    if (l->dprev) {
        *l->dprev = l->dnext;
        if (l->dnext)
            l->dnext->dprev = l->dprev;
    }
    json_object_put(l->params);
    free(l->method);
    free(l);
}

/* The call is answered: it no longer holds the leg. */
static struct mcpgw_call *leg_detach(struct leg *l)
{
    struct mcpgw_call *c = l->c;
    c->leg = NULL;
    c->leg_free = NULL;
    l->uc = NULL;
    leg_free(l);
    return c;
}

/* A deferred-reply leg ends: its reply, then the leg. */
static struct mcpgw_defer *leg_detach_defer(struct leg *l)
{
    struct mcpgw_defer *d = l->d;
    l->uc = NULL;
    leg_free(l);
    return d;
}

static void leg_fail(struct leg *l, const char *why)
{
    if (l->uc) { /* in flight: the upstream's answer must not reach the freed leg */
        mcpgw_upmcp_call_cancel(l->uc, 0);
        l->uc = NULL;
    }
    if (l->d)
        mcpgw_defer_error(leg_detach_defer(l), MCPGW_JSONRPC_INTERNAL_ERROR, why);
    else
        mcpgw_call_error(leg_detach(l), MCPGW_JSONRPC_INTERNAL_ERROR, why);
}

static void answer_up(void *arg, const char *json, size_t len)
{
    struct one *o = arg;
    if (mcpgw_upmcp_send(o->u, json, len, NULL, NULL) < 0)
        log_warn("upstream %s: could not send the client's answer", o->name);
}

static void on_leg_message(void *arg, const char *ev_id, const struct mcpgw_jsonrpc_msg *m)
{
    struct leg *l = arg;
    (void)ev_id;
    if (l->d) {
        if (m->kind == MCPGW_JSONRPC_REQUEST)
            forward_request(l->o, NULL, m); /* no call stream: the client's GET stream */
    } else if (m->kind == MCPGW_JSONRPC_REQUEST) {
        mcpgw_s2c_forward(l->c, l->o->name, m, answer_up, l->o);
    } else if (m->kind == MCPGW_JSONRPC_NOTIFICATION) {
        size_t len;
        char *json = mcpgw_json_dump(m->root, &len);
        mcpgw_call_emit(l->c, json, len);
        free(json);
    }
}

static void on_leg_reply(void *arg, enum mcpgw_upmcp_err err, const char *why,
                         const struct mcpgw_jsonrpc_msg *m)
{
    struct leg *l = arg;
    struct mcpgw_call *c;
    l->uc = NULL;
    if (err == MCPGW_UPMCP_E_GONE && !l->retried) {
        /* The upstream had lost the session: the request never ran there. Once more, in the new
         * session (on_up_gone started it). */
        l->retried = 1;
        l->next = l->o->waiting;
        l->o->waiting = l;
        return;
    }
    mcpgw_upguard_done(l->o->set->n, l->o->name, &l->guard,
                       err == MCPGW_UPMCP_OK         ? MCPGW_BREAKER_OK
                       : err == MCPGW_UPMCP_E_CLOSED ? MCPGW_BREAKER_NEUTRAL
                                                     : MCPGW_BREAKER_FAIL,
                       mcpgw_upmcp_err_str(err));
    if (l->d) {
        struct mcpgw_defer *d = leg_detach_defer(l);
        if (err) {
            mcpgw_defer_error(d, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        } else if (m->kind == MCPGW_JSONRPC_RESULT) {
            mcpgw_defer_result(d, json_object_get(m->result));
        } else {
            json_object *code = NULL, *msg = NULL;
            json_object_object_get_ex(m->error, "code", &code);
            json_object_object_get_ex(m->error, "message", &msg);
            mcpgw_defer_error(d, code ? json_object_get_int(code) : MCPGW_JSONRPC_INTERNAL_ERROR,
                              msg ? json_object_get_string(msg)
                                  : "the upstream answered with an error");
        }
        return;
    }
    c = leg_detach(l);
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

/* A plain result passed through (node/upmcp.h); only a call's legs take it (leg_issue). */
static void on_leg_result_raw(void *arg, const char *result, size_t len)
{
    struct leg *l = arg;
    l->uc = NULL;
    mcpgw_upguard_done(l->o->set->n, l->o->name, &l->guard, MCPGW_BREAKER_OK,
                       mcpgw_upmcp_err_str(MCPGW_UPMCP_OK));
    mcpgw_call_result_raw(leg_detach(l), result, len);
}

static const struct mcpgw_upmcp_call_cbs leg_cbs = {on_leg_message, on_leg_reply};
static const struct mcpgw_upmcp_call_cbs leg_raw_cbs = {on_leg_message, on_leg_reply,
                                                        on_leg_result_raw};

static void leg_issue(struct leg *l)
{
    char why[256];
    /* A deferred reply's leg keeps the parse (its results are not passed through yet). */
    l->uc = mcpgw_upmcp_request(l->o->u, l->method, json_object_get(l->params),
                                l->d ? &leg_cbs : &leg_raw_cbs, l);
    if (!l->uc) {
        snprintf(why, sizeof(why), "upstream %s: its session is not ready", l->o->name);
        leg_fail(l, why);
    }
}

void mcpgw_upsess_call(struct mcpgw_call *c, const char *name, const char *method,
                       json_object *params)
{
    mcpgw_upsess_call_as(c, c->s, name, method, params);
}

void mcpgw_upsess_call_as(struct mcpgw_call *c, struct mcpgw_session *owner, const char *name,
                          const char *method, json_object *params)
{
    struct mcpgw_upguard g;
    struct one *o;
    struct leg *l;
    char why[256];
    /* The breaker and the bulkhead first: a refused call opens no upstream session. */
    if (mcpgw_upguard_admit(c->node, name, &g, why, sizeof(why)) < 0) {
        json_object_put(params);
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        return;
    }
    if (!(o = owner ? get_one(c->node, owner, name) : NULL)) {
        mcpgw_upguard_done(c->node, name, &g, MCPGW_BREAKER_NEUTRAL, "not_sent");
        snprintf(why, sizeof(why), "no per-client upstream named %.100s", name);
        json_object_put(params);
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        return;
    }
    l = xcalloc(1, sizeof(*l));
    l->guard = g;
    l->c = c;
    l->o = o;
    l->method = xstrdup(method);
    l->params = params;
    leg_link(o, l);
    c->leg = l;
    c->leg_free = leg_free;
    if (o->ready) {
        leg_issue(l);
    } else {
        l->next = o->waiting;
        o->waiting = l;
        if (!o->starting)
            start(o); /* the last initialize failed: try again for this call */
    }
}

int mcpgw_upsess_busy(const struct mcpgw_session *owner)
{
    for (const struct one *o = owner->ups ? owner->ups->ones : NULL; o; o = o->next)
        if (o->legs || o->waiting)
            return 1;
    return 0;
}

/* The per-client upstream that serves uri, or NULL: one that lists it, else one whose template
 * matches it, else the only upstream with resources (as upprov.c routes reads). */
static const char *per_client_owner(struct mcpgw_node *n, const char *uri)
{
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    const struct mcpgw_catalog_entry *e;
    void *owner;
    const struct mcpgw_upcfg *cfg;
    if (!cat)
        return NULL;
    e = mcpgw_catalog_find(cat, MCPGW_CATALOG_RESOURCES, uri);
    if (!e)
        e = mcpgw_catalog_match(cat, uri);
    owner = e ? e->owner : mcpgw_catalog_sole_resource_owner(cat);
    cfg = owner ? mcpgw_upstream_cfg(owner) : NULL;
    if (!cfg || !mcpgw_upstream_per_client(owner))
        return NULL;
    return cfg->name;
}

int mcpgw_upsess_subscribe(struct mcpgw_node *n, struct mcpgw_session *s, const char *uri, int on,
                           struct mcpgw_http_conn *conn, json_object *id)
{
    const char *name = per_client_owner(n, uri);
    struct mcpgw_defer *d;
    struct mcpgw_upguard g;
    struct one *o;
    struct leg *l;
    json_object *params;
    char why[256];
    if (!name)
        return 0;
    d = mcpgw_defer_new(n, conn, s, id);
    if (mcpgw_upguard_admit(n, name, &g, why, sizeof(why)) < 0) {
        mcpgw_defer_error(d, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        return 1;
    }
    if (!(o = get_one(n, s, name))) {
        mcpgw_upguard_done(n, name, &g, MCPGW_BREAKER_NEUTRAL, "not_sent");
        mcpgw_defer_error(d, MCPGW_JSONRPC_INTERNAL_ERROR, "the upstream is not configured");
        return 1;
    }
    params = json_object_new_object();
    json_object_object_add(params, "uri", json_object_new_string(uri));
    l = xcalloc(1, sizeof(*l));
    l->guard = g;
    l->d = d;
    l->o = o;
    l->method = xstrdup(on ? "resources/subscribe" : "resources/unsubscribe");
    l->params = params;
    leg_link(o, l);
    if (o->ready) {
        leg_issue(l);
    } else {
        l->next = o->waiting;
        o->waiting = l;
        if (!o->starting)
            start(o);
    }
    return 1;
}
