/* upprin.c - per-principal holders of upstream sessions and stdio children for 2026-07-28 calls
 * (see upprin.h).
 *
 * A hash table finds a principal's holder; a list in order of use finds the least recently used
 * one when the cap is reached. Idle holders are swept by one timer, armed only while there are
 * holders: a node that never serves such calls pays nothing. */
#include "node/upprin.h"

#include "common/hash.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/node-t.h"
#include "node/proto.h"
#include "node/session.h"
#include "node/upproc.h"
#include "node/upsess.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024
/* The sweep runs every quarter of the idle expiry, within these bounds: a holder is closed
 * between `upstream-principal-idle` and a quarter more after its last use. */
#define SWEEP_MIN_MS 100
#define SWEEP_MAX_MS 60000

struct holder {
    struct holder *hnext;         /* in its bucket */
    struct holder *newer, *older; /* in order of use */
    struct mcpgw_session *s;
    uint64_t used_ms; /* last use (or last seen busy by the sweep) */
};

struct mcpgw_upprin {
    struct mcpgw_node *n;
    struct holder *buckets[BUCKETS];
    struct holder *newest, *oldest;
    uint64_t count;
    struct event *sweep;
    int64_t *m_held;
    uint64_t *m_expired, *m_evicted, *m_refused;
};

static unsigned bucket(const char *principal)
{
    return (unsigned)(mcpgw_hash64(principal, strlen(principal)) % BUCKETS);
}

static void unlink_use(struct mcpgw_upprin *p, struct holder *h)
{
    if (h->newer)
        h->newer->older = h->older;
    else
        p->newest = h->older;
    if (h->older)
        h->older->newer = h->newer;
    else
        p->oldest = h->newer;
    h->newer = h->older = NULL;
}

static void link_newest(struct mcpgw_upprin *p, struct holder *h)
{
    h->older = p->newest;
    h->newer = NULL;
    if (p->newest)
        p->newest->newer = h;
    p->newest = h;
    if (!p->oldest)
        p->oldest = h;
}

/* Take h out and free it: end closes its upstream sessions (DELETE at each upstream) and stops
 * its children gracefully; without (at exit: the loop has stopped, so neither could complete)
 * the sessions are only forgotten (the upstream expires them as any idle session) and the
 * children killed now. */
static void holder_drop(struct mcpgw_upprin *p, struct holder *h, int end)
{
    struct holder **pp;
    for (pp = &p->buckets[bucket(h->s->principal)]; *pp; pp = &(*pp)->hnext)
        if (*pp == h) {
            *pp = h->hnext;
            break;
        }
    unlink_use(p, h);
    p->count--;
    *p->m_held = (int64_t)p->count;
    mcpgw_upsess_release(p->n, h->s, end);
    if (end) /* its stdio children are stopped either way */
        mcpgw_upproc_release(p->n, h->s);
    else
        mcpgw_upproc_kill(p->n, h->s);
    mcpgw_session_free(h->s);
    free(h);
}

/* Serving a call: an upstream request in flight, or a child's. */
static int busy(const struct holder *h)
{
    return mcpgw_upsess_busy(h->s) || mcpgw_upproc_busy(h->s);
}

static void arm(struct mcpgw_upprin *p)
{
    uint64_t ms = p->n->cfg.upprin_idle_ms / 4;
    struct timeval tv;
    if (ms < SWEEP_MIN_MS)
        ms = SWEEP_MIN_MS;
    if (ms > SWEEP_MAX_MS)
        ms = SWEEP_MAX_MS;
    tv = (struct timeval){(long)(ms / 1000), (long)(ms % 1000) * 1000};
    evtimer_add(p->sweep, &tv);
}

/* Close every holder unused for the idle expiry. One still serving a call is in use: its idle
 * time starts over. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upprin *p = arg;
    uint64_t now = mcpgw_now_ms(), idle = p->n->cfg.upprin_idle_ms;
    struct holder *h = p->oldest;
    (void)fd, (void)what;
    while (h) {
        struct holder *next = h->newer;
        if (busy(h)) {
            h->used_ms = now;
        } else if (now - h->used_ms >= idle) {
            log_info("upstream sessions of %s closed: unused for %llu ms", h->s->id,
                     (unsigned long long)(now - h->used_ms));
            (*p->m_expired)++;
            holder_drop(p, h, 1);
        }
        h = next;
    }
    if (p->count)
        arm(p);
}

static struct mcpgw_upprin *state(struct mcpgw_node *n)
{
    struct mcpgw_upprin *p = n->upprin;
    char labels[64];
    if (p)
        return p;
    snprintf(labels, sizeof(labels), "node=\"%s\"", n->cfg.node_id);
    p = n->upprin = xcalloc(1, sizeof(*p));
    p->n = n;
    p->sweep = evtimer_new(n->base, on_sweep, p);
    p->m_held =
        mcpgw_metrics_gauge(n->metrics, "mcpgw_node_upstream_principals",
                            "Principals holding upstream sessions for 2026-07-28 calls", labels);
    p->m_expired = mcpgw_metrics_counter(
        n->metrics, "mcpgw_node_upstream_principals_expired_total",
        "Principals' upstream sessions closed after upstream-principal-idle unused", labels);
    p->m_evicted = mcpgw_metrics_counter(
        n->metrics, "mcpgw_node_upstream_principals_evicted_total",
        "Principals' idle upstream sessions closed to make room (upstream-principals)", labels);
    p->m_refused = mcpgw_metrics_counter(
        n->metrics, "mcpgw_node_upstream_principals_refused_total",
        "Calls refused: upstream-principals reached and every holder busy", labels);
    return p;
}

/* The least recently used holder not serving a call, or NULL. */
static struct holder *idlest(struct mcpgw_upprin *p)
{
    for (struct holder *h = p->oldest; h; h = h->newer)
        if (!busy(h))
            return h;
    return NULL;
}

struct mcpgw_session *mcpgw_upprin_session(struct mcpgw_node *n, const char *principal, char *why,
                                           size_t whylen)
{
    struct mcpgw_upprin *p = state(n);
    unsigned b = bucket(principal);
    struct holder *h;
    struct mcpgw_session *s;
    for (h = p->buckets[b]; h; h = h->hnext)
        if (strcmp(h->s->principal, principal) == 0) {
            h->used_ms = mcpgw_now_ms();
            unlink_use(p, h);
            link_newest(p, h);
            return h->s;
        }
    if (p->count >= n->cfg.upprin_max) {
        struct holder *victim = idlest(p);
        if (!victim) {
            (*p->m_refused)++;
            snprintf(why, whylen,
                     "this node holds upstream sessions for %llu principals "
                     "(upstream-principals), all serving calls: try again later",
                     (unsigned long long)p->count);
            return NULL;
        }
        log_info("upstream sessions of %s closed to make room for another principal",
                 victim->s->id);
        (*p->m_evicted)++;
        holder_drop(p, victim, 1);
    }
    s = xcalloc(1, sizeof(*s));
    s->stateless = 1; /* node-local: never registered nor stored */
    s->state = MCPGW_SESSION_READY;
    s->proto = MCPGW_PROTO_2025_11_25;
    s->log_level = 8; /* nothing outside calls is passed on */
    s->principal = xstrdup(principal);
    /* What the upstream may ask during calls: each call checks its own client's capabilities. */
    s->client = xstrdup("{\"capabilities\":{\"sampling\":{},\"elicitation\":{},\"roots\":{}}}");
    /* Logs name it without the principal. */
    snprintf(s->id, sizeof(s->id), "principal-%016llx",
             (unsigned long long)mcpgw_hash64(principal, strlen(principal)));
    h = xcalloc(1, sizeof(*h));
    h->s = s;
    h->used_ms = mcpgw_now_ms();
    h->hnext = p->buckets[b];
    p->buckets[b] = h;
    link_newest(p, h);
    if (p->count++ == 0)
        arm(p);
    *p->m_held = (int64_t)p->count;
    return s;
}

void mcpgw_upprin_free_all(struct mcpgw_node *n)
{
    struct mcpgw_upprin *p = n->upprin;
    if (!p)
        return;
    while (p->newest)
        holder_drop(p, p->newest, 0);
    event_free(p->sweep);
    free(p);
    n->upprin = NULL;
}
