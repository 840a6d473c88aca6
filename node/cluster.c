/* cluster.c - where this node's sessions live: the store's reports about them, acted upon. */
#include "node/cluster.h"

#include "common/log.h"
#include "common/util.h"
#include "node/call.h"
#include "node/fanout.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/protocol.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/transport.h"

#include <stdlib.h>

static void on_moved(void *arg, struct mcpgw_session *s, uint64_t epoch)
{
    struct mcpgw_node *n = arg;
    if (s->epoch >= epoch)
        return; /* a claim this node made itself, or an older one */
    log_info("session %s moved to another node (epoch %llu): dropping the local copy", s->id,
             (unsigned long long)epoch);
    (*n->st.sessions_moved)++;
    if (n->resyncing)
        mcpgw_node_reclaim_later(n, s->id);
    mcpgw_node_session_drop(n, s);
}

static void on_hold(void *arg, struct mcpgw_session *s)
{
    mcpgw_session_hold(s);
}

static void on_verified(void *arg, struct mcpgw_session *s, enum mcpgw_store_verdict v,
                        const char *owner, uint64_t epoch)
{
    struct mcpgw_node *n = arg;
    switch (v) {
    case MCPGW_STORE_VERIFY_OWNED:
        /* Catch its GET stream up on what the feed may have dropped meanwhile. The catch-up
         * holds live events itself from here; the gap's hold ends. */
        mcpgw_session_catch_up(n, s);
        mcpgw_session_release(n, s);
        break;
    case MCPGW_STORE_VERIFY_MOVED:
        log_info("session %s is now owned by %s (epoch %llu): dropping the local copy", s->id,
                 owner, (unsigned long long)epoch);
        (*n->st.sessions_moved)++;
        mcpgw_node_session_drop(n, s);
        break;
    case MCPGW_STORE_VERIFY_LOST:
        log_warn("session %s has no record in redis any more (restarted empty?): dropping it; "
                 "its client will get 404 and initialize again",
                 s->id);
        (*n->st.sessions_lost)++;
        mcpgw_node_session_drop(n, s);
        break;
    default:
        /* The next reconnect verifies again; meanwhile deliver what was held. */
        mcpgw_session_release(n, s);
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
    mcpgw_session_send(d->n, s, d->json, d->len);
}

static void deliver_shared(void *arg, struct mcpgw_session *s)
{
    struct delivery *d = arg;
    mcpgw_session_deliver(d->n, s, d->ev->g, d->ev->seq, d->json, d->len);
}

static void on_resource(void *arg, const struct mcpgw_store_event *ev)
{
    struct mcpgw_node *n = arg;
    struct delivery d = {n, ev, NULL, 0};
    char *json = mcpgw_msg_resource_updated(ev->uri, ev->version, &d.len);
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
}

static void on_up(void *arg, int up)
{
    struct mcpgw_node *n = arg;
    if (n->st.store_up)
        *n->st.store_up = up;
}

const struct mcpgw_store_events mcpgw_cluster_store_events = {
    .moved = on_moved,
    .resource = on_resource,
    .hold = on_hold,
    .verified = on_verified,
    .up = on_up,
};
