/* keepalive.c - SSE keep-alive comments on open streams, a slice of the registry per second.
 *
 * Why a sweep and not a timer per stream: a node holds 100,000 GET streams; one event each would
 * cost memory per stream and as many timer operations as writes. The sweep visits every session
 * once per interval, 1/interval of the shards each second, so a tick costs a few thousand
 * sessions at most and the loop is never held for long. A stream that carried an event a moment
 * ago gets a comment too: a few bytes per interval, cheaper than tracking the last write of
 * every stream. */
#include "node/keepalive.h"

#include "common/util.h"
#include "node/call.h"
#include "node/frame.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"

#include <event2/event.h>
#include <stdlib.h>

#define TICK_MS 1000

struct mcpgw_keepalive {
    struct mcpgw_node *n;
    struct event *tick;
    size_t next_shard; /* where the next slice starts */
    uint64_t credit;   /* shard visits owed, times the interval in ms */
};

static void comment(struct mcpgw_node *n, struct mcpgw_http_conn *conn)
{
    if (mcpgw_frame_keepalive(conn) == 0 && n->st.sse_keepalives)
        (*n->st.sse_keepalives)++;
}

static void visit(void *arg, struct mcpgw_session *s)
{
    struct mcpgw_node *n = arg;
    struct mcpgw_call *c, *next;
    if (s->get_stream)
        comment(n, s->get_stream); /* a failed write clears s->get_stream (its close callback) */
    for (c = s->calls; c; c = next) {
        next = c->next;
        if (c->sse && c->conn)
            comment(n, c->conn);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_keepalive *k = arg;
    struct mcpgw_node *n = k->n;
    uint64_t every = n->cfg.sse_keepalive_ms, shards = mcpgw_registry_shard_count(n->reg);
    if (!every) {
        k->credit = 0;
        return;
    }
    /* shards / every visits per ms: every shard once per interval, whatever the shard count. */
    k->credit += shards * TICK_MS;
    if (k->credit > shards * every)
        k->credit = shards * every; /* at most one pass per tick (an interval under a tick) */
    while (k->credit >= every) {
        k->credit -= every;
        mcpgw_registry_foreach_in_shard(n->reg, k->next_shard, visit, n);
        k->next_shard = (k->next_shard + 1) % shards;
    }
}

struct mcpgw_keepalive *mcpgw_keepalive_new(struct mcpgw_node *n)
{
    static const struct timeval tick = {TICK_MS / 1000, 0};
    struct mcpgw_keepalive *k = xcalloc(1, sizeof(*k));
    k->n = n;
    k->tick = event_new(n->base, -1, EV_PERSIST, on_tick, k);
    event_add(k->tick, &tick);
    return k;
}

void mcpgw_keepalive_free(struct mcpgw_keepalive *k)
{
    if (!k)
        return;
    event_free(k->tick);
    free(k);
}
