/* cluster.c - where this node's sessions live: claims and moves, losses and drops, idle expiry,
 * the stall detector and the claims back after a stall, the drain; the store's event sink. */
#include "node/cluster.h"

#include "common/log.h"
#include "common/route.h"
#include "common/util.h"
#include "gossip/swim.h"
#include "node/call.h"
#include "node/fanout.h"
#include "node/frame.h"
#include "node/listen.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/notes.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upproc.h"
#include "node/upsess.h"
#include "node/upsub.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* A session waiting for notifications/initialized, in creation order: with one timeout for all,
 * that is deadline order, so a sweep costs O(expired). */
struct init_wait {
    struct init_wait *next;
    uint64_t deadline_ms;
    char sid[MCPGW_SESSION_ID_MAX];
};

struct mcpgw_cluster {
    struct init_wait *init_head, *init_tail;
    /* Own sessions (ids with this node's prefix) taken over while this node stalled, learnt
     * from the "moved" notices read during the resync: claimed back once it is over. */
    char **reclaim;
    uint32_t nreclaim, reclaim_cap, reclaim_next;
    struct event *reclaim_ev;
    struct event *expiry;
    uint64_t last_tick_ms;
    struct event *stall_tick;
    uint64_t drain_started_ms, drain_deadline_ms;
    struct event *drain_timer;
};

/* ---- dropping and ending sessions ---- */

/* end: the session ends (its per-client upstream sessions are closed too), rather than only
 * leaving this node. */
static void drop(struct mcpgw_node *n, struct mcpgw_session *s, int end)
{
    while (s->calls)
        mcpgw_call_abort(s->calls);
    mcpgw_upsess_release(n, s, end);
    mcpgw_upproc_release(n, s); /* a child cannot follow its session */
    mcpgw_stream_end(s);
    mcpgw_registry_remove(n->reg, s);
    mcpgw_session_free(s);
}

void mcpgw_cluster_destroy(struct mcpgw_node *n, struct mcpgw_session *s)
{
    mcpgw_store_delete(n->store, s);
    drop(n, s, 1);
}

void mcpgw_cluster_drop(struct mcpgw_node *n, struct mcpgw_session *s)
{
    drop(n, s, 0);
}

/* ---- claims ---- */

/* Register a claimed session, or merge with a copy another claim registered first. */
static struct mcpgw_session *adopt(struct mcpgw_node *n, struct mcpgw_session *s)
{
    struct mcpgw_session *have = mcpgw_registry_lookup(n->reg, s->id, strlen(s->id));
    char **subs;
    uint32_t nsubs;
    if (have) {
        if (s->epoch > have->epoch)
            have->epoch = s->epoch;
        mcpgw_session_free(s);
        return have;
    }
    /* Move the subscriptions through the registry so its URI index has them too. */
    subs = s->subs;
    nsubs = s->nsubs;
    s->subs = NULL;
    s->nsubs = s->subs_cap = 0;
    /* Count events and requests past every earlier owner's: none is used twice in the session. */
    mcpgw_session_owned(s);
    mcpgw_registry_insert(n->reg, s);
    mcpgw_registry_touch(n->reg, s, mcpgw_now_ms());
    for (uint32_t i = 0; i < nsubs; i++) {
        mcpgw_registry_subscribe(n->reg, s, subs[i]);
        free(subs[i]);
    }
    free(subs);
    (*n->st.sessions_claimed)++;
    log_debug("session %s claimed (epoch %llu)", s->id, (unsigned long long)s->epoch);
    mcpgw_upsess_claimed(n, s); /* its per-client upstream sessions follow it here */
    mcpgw_upsub_claimed(n, s);  /* and this node subscribes where its shared ones need it */
    return s;
}

struct claim {
    struct mcpgw_node *n;
    mcpgw_store_claim_fn done;
    void *arg;
};

static void on_claim(void *arg, struct mcpgw_session *s, int err)
{
    struct claim *cl = arg;
    if (s)
        s = adopt(cl->n, s);
    cl->done(cl->arg, s, err);
    free(cl);
}

void mcpgw_cluster_claim(struct mcpgw_node *n, const char *sid, size_t len, const char *after,
                         mcpgw_store_claim_fn done, void *arg, struct mcpgw_resume **early)
{
    struct claim *cl = xcalloc(1, sizeof(*cl));
    cl->n = n;
    cl->done = done;
    cl->arg = arg;
    if (after)
        /* A stream resuming here after its node died: claim and replay in one round trip. */
        mcpgw_stream_claim_resume(n, sid, len, after, on_claim, cl, early);
    else
        mcpgw_store_claim(n->store, sid, len, on_claim, cl);
}

/* ---- claiming own sessions back after a stall ----
 *
 * Sessions this node held that others took over while it stalled: the balancer routes many of
 * them back here once the node is up again (those whose ids name it, and those whose named node
 * is gone and whose rendezvous choice it is), each on its next request, which claims it back
 * and ends its stream on the other node: one session at a time, as requests come, for many
 * seconds. Instead, reclaim_later notes each one (from its "moved" notice, read during the
 * resync) and reclaim_start claims back at once, in batches, those the balancer routes here:
 * one short disruption for all instead of a trickle of late ones. */

#define RECLAIM_BATCH 250        /* claims sent per turn */
#define RECLAIM_MAX   (1u << 20) /* ids remembered */
#define RECLAIM_VIEW  256        /* nodes considered (the balancer's own limit is lower) */

/* The balancer's view of the nodes, as far as this node's gossip tells (balancer/
 * membership_gossip.c): every serving member, up when alive, suspect or draining. Passive marks
 * of single balancer workers are not known here. Returns the count; *self is our index. */
static int route_view(struct mcpgw_node *n, struct mcpgw_route_node *nodes, int max, int *self)
{
    int k = 0;
    *self = -1;
    for (int i = 0; i < mcpgw_gossip_member_count(n->gossip) && k < max; i++) {
        const struct mcpgw_member *m = mcpgw_gossip_member_get(n->gossip, i);
        if (!m->serving || m->state == MCPGW_MEMBER_LEFT)
            continue;
        if (m->is_self)
            *self = k;
        nodes[k].id = m->id;
        nodes[k].load = nodes[k].picks = 0;
        nodes[k].usable = m->state == MCPGW_MEMBER_ALIVE || m->state == MCPGW_MEMBER_SUSPECT ||
                          m->state == MCPGW_MEMBER_DRAINING;
        nodes[k].draining = m->draining || m->state == MCPGW_MEMBER_DRAINING;
        k++;
    }
    return k;
}

/* Whether the balancer sends sid's requests here: its own rule (common/route.h) on the view
 * above. Without gossip, only the sessions whose ids name this node. */
static int routed_here(struct mcpgw_node *n, const char *sid, const struct mcpgw_route_node *nodes,
                       int nnodes, int self)
{
    size_t plen = mcpgw_route_prefix_len(sid, strlen(sid));
    uint64_t rng = 1;
    if (plen == strlen(n->cfg.node_id) && memcmp(sid, n->cfg.node_id, plen) == 0)
        return 1;
    return self >= 0 && mcpgw_route_pick(nodes, nnodes, sid, strlen(sid), &rng) == self;
}

static void reclaim_later(struct mcpgw_node *n, const char *sid)
{
    if (n->draining || n->cluster->nreclaim >= RECLAIM_MAX)
        return;
    if (n->cluster->nreclaim == n->cluster->reclaim_cap) {
        n->cluster->reclaim_cap = n->cluster->reclaim_cap ? n->cluster->reclaim_cap * 2 : 256;
        n->cluster->reclaim =
            xrealloc(n->cluster->reclaim, n->cluster->reclaim_cap * sizeof(*n->cluster->reclaim));
    }
    n->cluster->reclaim[n->cluster->nreclaim++] = xstrdup(sid);
}

static void reclaim_free(struct mcpgw_node *n)
{
    for (uint32_t i = n->cluster->reclaim_next; i < n->cluster->nreclaim; i++)
        free(n->cluster->reclaim[i]);
    free(n->cluster->reclaim);
    n->cluster->reclaim = NULL;
    n->cluster->nreclaim = n->cluster->reclaim_cap = n->cluster->reclaim_next = 0;
    if (n->cluster->reclaim_ev) {
        event_free(n->cluster->reclaim_ev);
        n->cluster->reclaim_ev = NULL;
    }
}

static void on_reclaimed(void *arg, struct mcpgw_session *s, int err)
{
    struct mcpgw_node *n = arg;
    (void)err; /* gone (expired, deleted) or Redis away: the session stays where it is */
    if (s && (n->draining || n->resyncing)) {
        mcpgw_session_free(s); /* the record names us; the next request claims it again */
        return;
    }
    if (s)
        adopt(n, s);
}

static void on_reclaim_turn(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    struct timeval tv = {0, 10000};
    struct mcpgw_route_node nodes[RECLAIM_VIEW];
    int nnodes = 0, self = -1;
    (void)fd, (void)what;
    if (n->draining) {
        reclaim_free(n);
        return;
    }
    if (n->resyncing)
        return; /* stalled again: the resync's end starts the next turn, with what it adds */
    if (n->gossip)
        nnodes = route_view(n, nodes, RECLAIM_VIEW, &self);
    for (int i = 0; i < RECLAIM_BATCH && n->cluster->reclaim_next < n->cluster->nreclaim; i++) {
        char *sid = n->cluster->reclaim[n->cluster->reclaim_next++];
        size_t len = strlen(sid);
        /* Only where requests come anyway, and not already back (a request claimed it first). */
        if (routed_here(n, sid, nodes, nnodes, self) && !mcpgw_registry_lookup(n->reg, sid, len))
            mcpgw_store_claim(n->store, sid, len, on_reclaimed, n);
        free(sid);
    }
    if (n->cluster->reclaim_next < n->cluster->nreclaim)
        evtimer_add(n->cluster->reclaim_ev, &tv);
    else
        reclaim_free(n);
}

static void reclaim_start(struct mcpgw_node *n)
{
    if (n->cluster->reclaim_next >= n->cluster->nreclaim)
        return;
    if (!n->cluster->reclaim_ev)
        n->cluster->reclaim_ev = evtimer_new(n->base, on_reclaim_turn, n);
    if (!n->cluster->reclaim_ev) {
        reclaim_free(n);
        return;
    }
    log_info("claiming back %u of this node's sessions that moved while it stalled",
             n->cluster->nreclaim - n->cluster->reclaim_next);
    on_reclaim_turn(-1, 0, n);
}

/* ---- timers: idle expiry, the stall detector, the drain ---- */

#define STALL_MS 1000

static void on_resynced(void *arg, int err)
{
    struct mcpgw_node *n = arg;
    n->resyncing = 0;
    log_info("resynchronized after the stall%s", err ? " (session store unreachable)" : "");
    if (err)
        reclaim_free(n);
    else
        reclaim_start(n);
}

/* Runs every 100 ms at the highest priority, so after a stall (SIGSTOP, swapping, a debugger)
 * it runs before any request that queued meanwhile. Those requests may be for sessions other
 * nodes took over while this one was silent: until every message published to this node before
 * now has been handled (its "moved" notices among them), session requests get 503 and nothing
 * is claimed or written on the strength of a stale view. */
static void on_stall_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    uint64_t now = mcpgw_now_ms(), gap = now - n->cluster->last_tick_ms;
    n->cluster->last_tick_ms = now;
    if (gap < STALL_MS || n->resyncing || !mcpgw_store_shared(n->store))
        return;
    log_warn("the event loop stalled for %llu ms: resynchronizing with the session store before "
             "serving sessions",
             (unsigned long long)gap);
    (*n->st.stalls)++;
    n->resyncing = 1;
    mcpgw_store_resync(n->store, on_resynced, n);
}

void mcpgw_cluster_init_deadline(struct mcpgw_node *n, const struct mcpgw_session *s)
{
    struct mcpgw_cluster *cl = n->cluster;
    struct init_wait *w;
    if (!cl)
        return;
    w = xcalloc(1, sizeof(*w));
    w->deadline_ms = mcpgw_now_ms() + n->cfg.init_timeout_ms;
    snprintf(w->sid, sizeof(w->sid), "%s", s->id);
    if (cl->init_tail)
        cl->init_tail->next = w;
    else
        cl->init_head = w;
    cl->init_tail = w;
}

/* End the sessions whose init deadline passed while they were still initializing: their
 * records too, so no other node takes one up later. */
static void expire_uninitialized(struct mcpgw_node *n, uint64_t now)
{
    struct mcpgw_cluster *cl = n->cluster;
    struct init_wait *w;
    while ((w = cl->init_head) != NULL && w->deadline_ms <= now) {
        struct mcpgw_session *s = mcpgw_registry_lookup(n->reg, w->sid, strlen(w->sid));
        cl->init_head = w->next;
        if (!cl->init_head)
            cl->init_tail = NULL;
        if (s && s->state == MCPGW_SESSION_INITIALIZING && !s->calls) {
            log_info("session %s never sent notifications/initialized within %llu ms: ended", s->id,
                     (unsigned long long)n->cfg.init_timeout_ms);
            mcpgw_cluster_destroy(n, s);
            (*n->st.sessions_expired)++;
        }
        free(w);
    }
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    expire_uninitialized(n, mcpgw_now_ms());
    if (n->gossip) {
        struct mcpgw_registry_stats rs;
        mcpgw_registry_stats(n->reg, &rs);
        mcpgw_gossip_set_sessions(n->gossip, (uint32_t)rs.sessions);
    }
    uint64_t now = mcpgw_now_ms(), cutoff = now - n->cfg.session_idle_ms;
    struct mcpgw_session *s;
    int budget = 20000;
    if (now < n->cfg.session_idle_ms)
        return;
    while (budget-- > 0 && (s = mcpgw_registry_oldest_idle(n->reg, cutoff)) != NULL) {
        if (s->get_stream || s->calls) {
            /* A client holding a stream or waiting on a call is not idle. */
            mcpgw_registry_touch(n->reg, s, now);
            continue;
        }
        log_debug("session %s expired after %llu ms idle", s->id,
                  (unsigned long long)(now - s->last_active_ms));
        /* Only this node's copy: a shared store expires the record by its own TTL. */
        if (!mcpgw_store_shared(n->store))
            mcpgw_store_delete(n->store, s);
        drop(n, s, 1);
        (*n->st.sessions_expired)++;
    }
}

static void end_stream(void *arg, struct mcpgw_session *s)
{
    mcpgw_stream_end(s);
}

/* Balancers learn of the drain through gossip within a few protocol periods: stay up at least
 * this long so no request is sent to a node that has already gone. */
#define DRAIN_MIN_MS 1500

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_node *n = arg;
    uint64_t now = mcpgw_now_ms();
    if (n->gossip && now < n->cluster->drain_started_ms + DRAIN_MIN_MS &&
        now < n->cluster->drain_deadline_ms)
        return;
    if (*n->st.calls_inflight == 0 || now >= n->cluster->drain_deadline_ms) {
        log_info("drained (%lld calls still in flight): exiting", (long long)*n->st.calls_inflight);
        event_base_loopexit(n->base, NULL);
    }
}

void mcpgw_cluster_start(struct mcpgw_node *n)
{
    struct mcpgw_cluster *cl = n->cluster = xcalloc(1, sizeof(*cl));
    struct timeval one_s = {1, 0}, tick = {0, 100000};
    cl->expiry = event_new(n->base, -1, EV_PERSIST, on_expiry, n);
    event_add(cl->expiry, &one_s);
    cl->last_tick_ms = mcpgw_now_ms();
    cl->stall_tick = event_new(n->base, -1, EV_PERSIST, on_stall_tick, n);
    event_priority_set(cl->stall_tick, 0);
    event_add(cl->stall_tick, &tick);
}

void mcpgw_cluster_drain(struct mcpgw_node *n)
{
    struct mcpgw_cluster *cl = n->cluster;
    struct timeval tick = {0, 100000};
    n->draining = 1;
    cl->drain_started_ms = mcpgw_now_ms();
    cl->drain_deadline_ms = cl->drain_started_ms + n->cfg.drain_timeout_ms;
    if (n->gossip)
        mcpgw_gossip_set_draining(n->gossip);
    mcpgw_registry_foreach(n->reg, end_stream, NULL);
    mcpgw_listen_end_all(n);
    cl->drain_timer = event_new(n->base, -1, EV_PERSIST, on_drain_tick, n);
    event_add(cl->drain_timer, &tick);
}

void mcpgw_cluster_stop(struct mcpgw_node *n)
{
    struct mcpgw_cluster *cl = n->cluster;
    struct mcpgw_session *s;
    if (!cl)
        return;
    event_free(cl->expiry);
    event_free(cl->stall_tick);
    reclaim_free(n);
    /* Dropping (not deleting) keeps shared sessions' records for the nodes that take over. */
    while ((s = mcpgw_registry_oldest_idle(n->reg, UINT64_MAX)) != NULL)
        mcpgw_cluster_drop(n, s);
    if (cl->drain_timer)
        event_free(cl->drain_timer);
    while (cl->init_head) {
        struct init_wait *w = cl->init_head;
        cl->init_head = w->next;
        free(w);
    }
    free(cl);
    n->cluster = NULL;
}

/* ---- the store's event sink ---- */

static void on_moved(void *arg, struct mcpgw_session *s, uint64_t epoch)
{
    struct mcpgw_node *n = arg;
    if (s->epoch >= epoch)
        return; /* a claim this node made itself, or an older one */
    log_info("session %s moved to another node (epoch %llu): dropping the local copy", s->id,
             (unsigned long long)epoch);
    (*n->st.sessions_moved)++;
    if (n->resyncing && n->cluster)
        reclaim_later(n, s->id);
    mcpgw_cluster_drop(n, s);
}

static void on_hold(void *arg, struct mcpgw_session *s)
{
    mcpgw_stream_hold(s);
}

static void on_verified(void *arg, struct mcpgw_session *s, enum mcpgw_store_verdict v,
                        const char *owner, uint64_t epoch)
{
    struct mcpgw_node *n = arg;
    switch (v) {
    case MCPGW_STORE_VERIFY_OWNED:
        /* Catch its GET stream up on what the feed may have dropped meanwhile. The catch-up
         * holds live events itself from here; the gap's hold ends. */
        mcpgw_stream_catch_up(n, s);
        mcpgw_stream_release(n, s);
        break;
    case MCPGW_STORE_VERIFY_MOVED:
        log_info("session %s is now owned by %s (epoch %llu): dropping the local copy", s->id,
                 owner, (unsigned long long)epoch);
        (*n->st.sessions_moved)++;
        mcpgw_cluster_drop(n, s);
        break;
    case MCPGW_STORE_VERIFY_LOST:
        log_warn("session %s has no record in redis any more (restarted empty?): dropping it; "
                 "its client will get 404 and initialize again",
                 s->id);
        (*n->st.sessions_lost)++;
        mcpgw_cluster_drop(n, s);
        break;
    default:
        /* The next reconnect verifies again; meanwhile deliver what was held. */
        mcpgw_stream_release(n, s);
        break;
    }
}

struct delivery {
    struct mcpgw_node *n;
    const struct mcpgw_store_event *ev;
    const char *json;
    size_t len;
};

static void send_local(void *arg, struct mcpgw_session *s)
{
    struct delivery *d = arg;
    mcpgw_stream_send(d->n, s, d->json, d->len);
}

static void deliver_shared(void *arg, struct mcpgw_session *s)
{
    struct delivery *d = arg;
    mcpgw_stream_deliver(d->n, s, d->ev->g, d->ev->seq, d->json, d->len);
}

/* A list change (an event of the shared store's order) to a session with a GET stream: in order
 * with its resource events, held while it resumes, replayed from the store after a failover. */
static void deliver_list(void *arg, struct mcpgw_session *s)
{
    struct delivery *d = arg;
    if (s->state != MCPGW_SESSION_READY || (!s->get_stream && !s->resuming))
        return;
    mcpgw_stream_deliver(d->n, s, d->ev->g, d->ev->seq, d->json, d->len);
}

static void on_resource(void *arg, const struct mcpgw_store_event *ev)
{
    struct mcpgw_node *n = arg;
    struct delivery d = {n, ev, NULL, 0};
    char *json;
    if (ev->uri[0] == MCPGW_STORE_LIST_PREFIX[0]) {
        /* A list change with its own event id, for listen streams and for every session. */
        if (ev->g > n->ev_seen)
            n->ev_seen = ev->g;
        if ((json = mcpgw_stream_event_json(ev, &d.len)) != NULL) {
            d.json = json;
            /* Behind the updates queued before it: delivered first, its id would move each
             * session's dedup mark past theirs. */
            if (n->fanout)
                mcpgw_fanout_push_all(n->fanout, ev->g, ev->seq, json, d.len);
            else
                mcpgw_registry_foreach(n->reg, deliver_list, &d);
            free(json);
        }
        mcpgw_listen_resource(n, ev);
        return;
    }
    json = mcpgw_stream_event_json(ev, &d.len);
    d.json = json;
    if (!mcpgw_store_shared(n->store)) {
        /* This node is the whole cluster: its subscribers' logs number the event. */
        mcpgw_registry_foreach_subscriber(n->reg, ev->uri, send_local, &d);
    } else {
        if (ev->g > n->ev_seen)
            n->ev_seen = ev->g;
        if (n->fanout)
            mcpgw_fanout_push(n->fanout, ev->uri, ev->g, ev->seq, json, d.len);
        else
            mcpgw_registry_foreach_subscriber(n->reg, ev->uri, deliver_shared, &d);
    }
    free(json);
    mcpgw_listen_resource(n, ev);
}

/* notifications/resources/list_changed to a session with a GET stream open, with the memory store:
 * logged and numbered like any GET-stream event (a resume replays it). With a shared store the
 * notes script records the change as an event of the cluster's order ("lch"), which
 * on_resource delivers with its id (docs/replication.md). */
static void send_list_changed(void *arg, struct mcpgw_session *s)
{
    struct delivery *d = arg;
    if (!s->get_stream || s->state != MCPGW_SESSION_READY)
        return;
    mcpgw_stream_send(d->n, s, d->json, d->len);
}

/* The cluster's notes list, as the store reports it: this node's copy (what resources/list and
 * completions read) learns the new names, and if there were any, every local session is told. */
static void on_notes(void *arg, const char *const *names, size_t count)
{
    struct mcpgw_node *n = arg;
    int added = 0;
    for (size_t i = 0; i < count; i++) {
        int created = 0;
        if (mcpgw_notes_name_ok(names[i], strlen(names[i])) &&
            !mcpgw_notes_read(n->notes, names[i], NULL))
            mcpgw_notes_write(n->notes, names[i], "", &created);
        added |= created;
    }
    if (added && !mcpgw_store_shared(n->store)) {
        struct delivery d = {n, NULL, NULL, 0};
        char *json = mcpgw_msg_resource_list_changed(&d.len);
        d.json = json;
        mcpgw_registry_foreach(n->reg, send_list_changed, &d);
        free(json);
    }
}

static void on_up(void *arg, int up)
{
    struct mcpgw_node *n = arg;
    if (n->st.store_up)
        *n->st.store_up = up;
}

static void on_feed_hold(void *arg)
{
    mcpgw_listen_gap_hold(arg);
}

static void on_feed_ready(void *arg)
{
    mcpgw_listen_gap_ready(arg);
}

const struct mcpgw_store_events mcpgw_cluster_store_events = {
    .moved = on_moved,
    .resource = on_resource,
    .hold = on_hold,
    .verified = on_verified,
    .feed_hold = on_feed_hold,
    .feed_ready = on_feed_ready,
    .up = on_up,
    .notes = on_notes,
};
