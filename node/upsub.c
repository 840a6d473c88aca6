/* upsub.c - shared upstreams' resource updates to this node's subscribers, the node's
 * subscriptions for sessions claimed here, and the updates that cover the gaps in a
 * subscription (see upsub.h). */
#include "node/upsub.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/fanout.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/provider.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upstream.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAP_BATCH   256     /* gap updates written per fan-out call */
#define GAP_POLL_MS 100     /* how often waiting gap updates look at their session again */
#define GAP_WAIT_MS 300000  /* a claimed session without a GET stream this long: given up */
#define GAP_MAX     1000000 /* gap updates waiting on a node */
/* The node's feed behind the session's last event id this long: written all the same. */
#define GAP_FEED_WAIT_MS 5000

/* A claimed session's subscription to a shared upstream's URI: the update that covers the gap
 * is written once the node's subscription to it is acknowledged and the session's GET stream
 * can take it. */
struct gap {
    struct gap *next;
    uint64_t since_ms;
    char *uri;
    char sid[MCPGW_SESSION_ID_MAX];
};

struct mcpgw_upsub {
    /* Shared store: updates from upstreams get GET-stream ids "<counter>-<k>", the counter being
     * the last cluster event seen and k this node's sequence; so they sort after the cluster
     * event before them and before the next one, and a client's Last-Event-ID naming one is a
     * valid resume point for the cluster's replay. */
    uint64_t k;
    struct gap *gaps;
    size_t ngaps;
    struct event *poll;
    int called; /* a gap_write is in the fan-out's queue */
    uint64_t *m_sent, *m_dropped;
};

static struct mcpgw_upsub *state(struct mcpgw_node *n)
{
    char labels[64];
    if (n->upsub)
        return n->upsub;
    n->upsub = xcalloc(1, sizeof(*n->upsub));
    snprintf(labels, sizeof(labels), "node=\"%s\"", n->cfg.node_id);
    n->upsub->m_sent = mcpgw_metrics_counter(
        n->metrics, "mcpgw_node_upstream_gap_updates_total",
        "Resource updates for gaps in shared upstream subscriptions: one per claimed session "
        "and URI, one per URI whose upstream session started anew",
        labels);
    n->upsub->m_dropped = mcpgw_metrics_counter(
        n->metrics, "mcpgw_node_upstream_gap_updates_dropped_total",
        "Gap updates of claimed sessions given up (no GET stream for 5 min, or too many waiting)",
        labels);
    return n->upsub;
}

/* ---- delivery ---- */

struct delivery {
    struct mcpgw_node *n;
    const char *json;
    size_t len;
    uint64_t g, k;
};

static void send_one(void *arg, struct mcpgw_session *s)
{
    struct delivery *d = arg;
    if (!mcpgw_store_shared(d->n->store))
        mcpgw_stream_send(d->n, s, d->json, d->len);
    else
        mcpgw_stream_deliver(d->n, s, d->g, d->k, d->json, d->len);
}

/* The last cluster event this node knows of: the events it received, and the counter read when
 * it began listening (a node that started after the last event has received none; a session
 * claimed from a node that saw them carries their id in its mark). */
static uint64_t last_event(const struct mcpgw_node *n)
{
    uint64_t c = mcpgw_store_event_counter(n->store);
    return c > n->ev_seen ? c : n->ev_seen;
}

/* json (an update of uri) to this node's subscribers of uri, the way live updates go. */
static void push(struct mcpgw_node *n, const char *uri, const char *json, size_t len)
{
    struct mcpgw_upsub *st = state(n);
    struct delivery d = {n, json, len, last_event(n), 0};
    /* k follows the wall clock (and never goes back): a session claimed from another node
     * carries that node's k in its mark, and this node's next ids must sort after it. */
    uint64_t wall = mcpgw_wall_ms();
    st->k = wall > st->k ? wall : st->k + 1;
    d.k = st->k;
    if (mcpgw_store_shared(n->store) && n->fanout)
        mcpgw_fanout_push(n->fanout, uri, d.g, d.k, json, len);
    else
        mcpgw_registry_foreach_subscriber(n->reg, uri, send_one, &d);
}

void mcpgw_upsub_updated(struct mcpgw_node *n, const struct mcpgw_jsonrpc_msg *m)
{
    const char *uri = mcpgw_json_str(m->params, "uri");
    size_t len;
    char *json;
    if (!uri)
        return;
    json = mcpgw_json_dump(m->root, &len);
    push(n, uri, json, len);
    free(json);
}

/* ---- gaps ---- */

static void gap_free(struct gap *g)
{
    free(g->uri);
    free(g);
}

/* Whether s's GET stream can take a gap update now. Written with the id of the last event s was
 * given (as the priming event is), it moves no dedup mark and stays a valid resume point; but
 * the node's own live updates after it must sort after that id, so it waits until this node's
 * feed has reached the cluster event the session's mark names (a client resuming right after an
 * event its old node saw first; bounded). */
static int ready_for(struct mcpgw_node *n, const struct mcpgw_session *s, const struct gap *g,
                     uint64_t now)
{
    if (s->state != MCPGW_SESSION_READY || !s->get_stream || s->resuming)
        return 0;
    return last_event(n) >= s->last_ev_ms || now - g->since_ms >= GAP_FEED_WAIT_MS;
}

static void write_gap(struct mcpgw_node *n, struct mcpgw_session *s, const char *uri)
{
    struct mcpgw_upsub *st = state(n);
    size_t len;
    char id[64], *json = mcpgw_msg_resource_resubscribed(uri, &len);
    /* The mark may carry another node's sequence (the client's Last-Event-ID from its dead
     * node): this node's next updates must sort after it, or the session's dedup drops them. */
    if (last_event(n) <= s->last_ev_ms && st->k < s->last_ev_seq)
        st->k = s->last_ev_seq;
    snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)s->last_ev_ms,
             (unsigned long long)s->last_ev_seq);
    mcpgw_frame_event_id(n, s->get_stream, id, json, len);
    (*st->m_sent)++;
    free(json);
}

static void schedule(struct mcpgw_node *n, long ms);

/* Run from the fan-out's queue, behind every update queued before: write the gap updates whose
 * node subscription is acknowledged to the sessions that can take them now. */
static void gap_write(void *arg)
{
    struct mcpgw_node *n = arg;
    struct mcpgw_upsub *st = n->upsub;
    struct gap **pp = &st->gaps;
    uint64_t now = mcpgw_now_ms();
    unsigned written = 0;
    st->called = 0;
    while (*pp && written < GAP_BATCH) {
        struct gap *g = *pp;
        struct mcpgw_session *s = mcpgw_registry_lookup(n->reg, g->sid, strlen(g->sid));
        struct mcpgw_upstream *u = s ? mcpgw_upstream_owner(n, g->uri) : NULL;
        int w = u ? mcpgw_upstream_watching(u, g->uri) : -1;
        int done = 1;
        if (!s || w < 0 || !mcpgw_session_subscribed(s, g->uri)) {
            /* moved on, ended, or unsubscribed meanwhile: no gap to cover here */
        } else if (w == 1 && ready_for(n, s, g, now)) {
            write_gap(n, s, g->uri);
            written++;
        } else if (now - g->since_ms >= GAP_WAIT_MS) {
            (*st->m_dropped)++;
            log_debug("session %s: no GET stream %d s after its claim: the update of %s for the "
                      "gap is not sent",
                      g->sid, GAP_WAIT_MS / 1000, g->uri);
        } else {
            done = 0;
        }
        if (done) {
            *pp = g->next;
            st->ngaps--;
            gap_free(g);
        } else {
            pp = &g->next;
        }
    }
    if (st->gaps)
        schedule(n, *pp ? 0 : GAP_POLL_MS);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    struct mcpgw_upsub *st = n->upsub;
    (void)fd, (void)what;
    if (st->called || !st->gaps)
        return;
    st->called = 1;
    mcpgw_fanout_push_call(n->fanout, gap_write, n);
}

static void schedule(struct mcpgw_node *n, long ms)
{
    struct mcpgw_upsub *st = n->upsub;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (st->called)
        return;
    if (!st->poll)
        st->poll = evtimer_new(n->base, on_poll, n);
    if (!ms || !evtimer_pending(st->poll, NULL))
        evtimer_add(st->poll, &tv);
}

static void gap_add(struct mcpgw_node *n, const struct mcpgw_session *s, const char *uri)
{
    struct mcpgw_upsub *st = state(n);
    struct gap *g;
    if (st->ngaps >= GAP_MAX) {
        (*st->m_dropped)++;
        log_warn("session %s: %d gap updates already wait on this node: the one of %s is not "
                 "sent",
                 s->id, GAP_MAX, uri);
        return;
    }
    g = xcalloc(1, sizeof(*g));
    g->since_ms = mcpgw_now_ms();
    g->uri = xstrdup(uri);
    snprintf(g->sid, sizeof(g->sid), "%s", s->id);
    g->next = st->gaps;
    st->gaps = g;
    st->ngaps++;
}

void mcpgw_upsub_claimed(struct mcpgw_node *n, struct mcpgw_session *s)
{
    int added = 0;
    if (!n->cfg.upstreams)
        return;
    /* The upstreams' provider subscribes this node where it is not yet (once per node). */
    for (uint32_t i = 0; i < s->nsubs; i++)
        for (unsigned k = 0; k < n->nproviders; k++)
            if (n->providers[k]->subscribe && n->providers[k]->subscribe(n, s->subs[i], 1))
                break;
    /* Claims come with a shared store only. Between the old node's death and now no node may
     * have watched these URIs for this session: each gets one update once this node's
     * subscription is acknowledged (docs/federation.md, "Updates from shared upstreams"). */
    if (!mcpgw_store_shared(n->store) || !n->fanout)
        return;
    for (uint32_t i = 0; i < s->nsubs; i++) {
        struct mcpgw_upstream *u = mcpgw_upstream_owner(n, s->subs[i]);
        if (u && !mcpgw_upstream_per_client(u) && mcpgw_upstream_watching(u, s->subs[i]) >= 0) {
            gap_add(n, s, s->subs[i]);
            added = 1;
        }
    }
    if (added)
        schedule(n, 0);
}

void mcpgw_upsub_watched(struct mcpgw_node *n, const char *uri, int renewed)
{
    if (renewed) {
        /* The upstream's session started anew: what it sent while it was gone is lost for every
         * subscriber here. */
        size_t len;
        char *json = mcpgw_msg_resource_resubscribed(uri, &len);
        log_debug("upstream subscription to %s renewed: telling its subscribers here", uri);
        push(n, uri, json, len);
        (*state(n)->m_sent)++;
        free(json);
    }
    if (n->upsub && n->upsub->gaps)
        schedule(n, 0); /* claimed sessions waiting for this acknowledgement */
}

void mcpgw_upsub_free(struct mcpgw_node *n)
{
    struct mcpgw_upsub *st = n->upsub;
    if (!st)
        return;
    while (st->gaps) {
        struct gap *g = st->gaps;
        st->gaps = g->next;
        gap_free(g);
    }
    if (st->poll)
        event_free(st->poll);
    free(st);
    n->upsub = NULL;
}
