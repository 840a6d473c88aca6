/* upsub.c - shared upstreams' resource updates to this node's subscribers, and the node's
 * subscriptions for sessions claimed here (see upsub.h). */
#include "node/upsub.h"

#include "common/util.h"
#include "node/fanout.h"
#include "node/node-t.h"
#include "node/provider.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"

#include <stdlib.h>
#include <string.h>

struct mcpgw_upsub {
    /* Shared store: updates from upstreams get GET-stream ids "<counter>-<k>", the counter being
     * the last cluster event seen and k this node's sequence; so they sort after the cluster
     * event before them and before the next one, and a client's Last-Event-ID naming one is a
     * valid resume point for the cluster's replay. */
    uint64_t k;
};

static struct mcpgw_upsub *state(struct mcpgw_node *n)
{
    if (!n->upsub) {
        n->upsub = xcalloc(1, sizeof(*n->upsub));
    }
    return n->upsub;
}

void mcpgw_upsub_claimed(struct mcpgw_node *n, struct mcpgw_session *s)
{
    /* The upstreams' provider subscribes this node where it is not yet (once per node). */
    if (!n->cfg.upstreams)
        return;
    for (uint32_t i = 0; i < s->nsubs; i++)
        for (unsigned k = 0; k < n->nproviders; k++)
            if (n->providers[k]->subscribe && n->providers[k]->subscribe(n, s->subs[i], 1))
                break;
}

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

void mcpgw_upsub_updated(struct mcpgw_node *n, const struct mcpgw_jsonrpc_msg *m)
{
    const char *uri = mcpgw_json_str(m->params, "uri");
    struct mcpgw_upsub *st = state(n);
    struct delivery d = {n, NULL, 0, n->ev_seen, ++st->k};
    char *json;
    if (!uri)
        return;
    json = mcpgw_json_dump(m->root, &d.len);
    d.json = json;
    if (mcpgw_store_shared(n->store) && n->fanout)
        mcpgw_fanout_push(n->fanout, uri, d.g, d.k, json, d.len);
    else
        mcpgw_registry_foreach_subscriber(n->reg, uri, send_one, &d);
    free(json);
}

void mcpgw_upsub_free(struct mcpgw_node *n)
{
    if (!n->upsub)
        return;
    free(n->upsub);
    n->upsub = NULL;
}
