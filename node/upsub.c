/* upsub.c - shared upstream sessions' resource subscriptions, once per node (see upsub.h). */
#include "node/upsub.h"

#include "common/log.h"
#include "common/util.h"
#include "node/catalog.h"
#include "node/fanout.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upcfg.h"
#include "node/upstream.h"

#include <stdlib.h>
#include <string.h>

struct mcpgw_upsub {
    json_object *uris; /* URI -> the upstream's name: subscribed at it for this node */
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
        n->upsub->uris = json_object_new_object();
    }
    return n->upsub;
}

/* The shared upstream that serves uri (as upprov.c routes reads), or NULL. */
static struct mcpgw_upstream *shared_owner(struct mcpgw_node *n, const char *uri)
{
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    const struct mcpgw_catalog_entry *e;
    struct mcpgw_upstream *owner;
    if (!cat)
        return NULL;
    e = mcpgw_catalog_find(cat, MCPGW_CATALOG_RESOURCES, uri);
    if (!e)
        e = mcpgw_catalog_match(cat, uri);
    owner = e ? e->owner : mcpgw_catalog_sole_resource_owner(cat);
    if (!owner || mcpgw_upstream_cfg(owner)->session == MCPGW_UPCFG_SESSION_PER_CLIENT)
        return NULL;
    return owner;
}

struct subscribing {
    struct mcpgw_node *n;
    char *uri;
};

static void on_subscribed(void *arg, enum mcpgw_upstream_err err, const char *why,
                          const struct mcpgw_jsonrpc_msg *m)
{
    struct subscribing *sb = arg;
    if (err || (m && m->kind == MCPGW_JSONRPC_ERROR)) {
        log_warn("upstream subscription to %s failed: %s", sb->uri,
                 err ? why : json_object_to_json_string(m->error));
        json_object_object_del(state(sb->n)->uris, sb->uri); /* the next subscriber tries again */
    }
    free(sb->uri);
    free(sb);
}

int mcpgw_upsub_watch(struct mcpgw_node *n, const char *uri, int on)
{
    static const struct mcpgw_upstream_call_cbs cbs = {NULL, on_subscribed, NULL};
    struct mcpgw_upstream *u = shared_owner(n, uri);
    struct mcpgw_upsub *st;
    struct subscribing *sb;
    json_object *params;
    char why[256];
    if (!u)
        return 0;
    st = state(n);
    if (!on || json_object_object_get_ex(st->uris, uri, NULL))
        return 1;
    params = json_object_new_object();
    json_object_object_add(params, "uri", json_object_new_string(uri));
    sb = xcalloc(1, sizeof(*sb));
    sb->n = n;
    sb->uri = xstrdup(uri);
    if (!mcpgw_upstream_request(u, "resources/subscribe", params, NULL, &cbs, sb, why,
                                sizeof(why))) {
        log_warn("upstream subscription to %s: %s", uri, why);
        free(sb->uri);
        free(sb);
        return 1; /* the client's subscription stands; the next subscriber tries again */
    }
    json_object_object_add(st->uris, uri, json_object_new_string(mcpgw_upstream_cfg(u)->name));
    log_info("upstream %s: subscribed to %s for this node", mcpgw_upstream_cfg(u)->name, uri);
    return 1;
}

void mcpgw_upsub_claimed(struct mcpgw_node *n, struct mcpgw_session *s)
{
    if (!n->cfg.upstreams)
        return;
    for (uint32_t i = 0; i < s->nsubs; i++)
        mcpgw_upsub_watch(n, s->subs[i], 1);
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
    json_object_put(n->upsub->uris);
    free(n->upsub);
    n->upsub = NULL;
}
