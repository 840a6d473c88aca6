/* catnotify.c - list changes of what the node serves, told to its clients: sessions with a GET
 * stream and subscriptions/listen streams (docs/listen.md, docs/federation.md "Upstream
 * notifications after a failover").
 *
 * A list kind's state is one 64-bit hash: the names of the providers serving the node (the
 * built-ins come and go with a reload) and the upstreams' merged catalogue lists of that kind.
 * Every node with the same configuration computes the same hash from the same upstream answers,
 * so with a shared store a change becomes one event of the cluster, recorded by the first node
 * that reports it (mcpgw_store_list_change); the event reaches every node's sessions and listen
 * streams through the store's feed, with an id, and is replayed after a failover. */
#include "node/catnotify.h"

#include "common/hash.h"
#include "common/log.h"
#include "common/rand.h"
#include "common/util.h"
#include "node/catalog.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/provider.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "node/upstream.h"

#include <stdlib.h>
#include <string.h>

/* The store's name of each kind (enum mcpgw_listen_list order). */
static const char *const kinds[MCPGW_LISTEN_LIST_COUNT] = {"tools", "resources", "prompts"};
/* Which catalogue lists make up each kind: a template change is a change of the resource list. */
static const unsigned catalog_bits[MCPGW_LISTEN_LIST_COUNT] = {
    1u << MCPGW_CATALOG_TOOLS, (1u << MCPGW_CATALOG_RESOURCES) | (1u << MCPGW_CATALOG_TEMPLATES),
    1u << MCPGW_CATALOG_PROMPTS};

#define FNV_PRIME 1099511628211ULL

/* What list l is now on this node, as one hash (see the file comment). */
static uint64_t list_hash(struct mcpgw_node *n, enum mcpgw_listen_list l)
{
    const struct mcpgw_catalog *cat =
        mcpgw_upstream_count(n) > 0 ? mcpgw_upstream_catalog(n) : NULL;
    uint64_t h = 0;
    for (unsigned p = 0; n->providers && p < n->nproviders; p++)
        h = h * FNV_PRIME ^ mcpgw_hash64(n->providers[p]->name, strlen(n->providers[p]->name));
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        json_object *list = cat && (catalog_bits[l] & (1u << k))
                                ? mcpgw_catalog_list(cat, (enum mcpgw_catalog_kind)k)
                                : NULL;
        const char *text =
            list ? json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN) : "null";
        h = h * FNV_PRIME ^ mcpgw_hash64(text, strlen(text));
    }
    return h;
}

struct told {
    struct mcpgw_node *n;
    const char *json;
    size_t len;
};

/* A node-local notification to one session's GET stream. With the memory store it is logged
 * and numbered like any other event; with a shared store (the change could not be recorded) it
 * has no id and is delivered live only. */
static void tell_session(void *arg, struct mcpgw_session *s)
{
    struct told *t = arg;
    if (s->state != MCPGW_SESSION_READY)
        return;
    if (!mcpgw_store_shared(t->n->store))
        mcpgw_stream_send(t->n, s, t->json, t->len);
    else if (s->get_stream)
        mcpgw_frame_event_id(t->n, s->get_stream, NULL, t->json, t->len);
}

/* Tell this node's sessions and listen streams, live and without an event id, that l changed. */
static void tell_local(struct mcpgw_node *n, enum mcpgw_listen_list l)
{
    struct told t = {n, NULL, 0};
    char *json = mcpgw_msg_list_changed(kinds[l], &t.len);
    t.json = json;
    mcpgw_registry_foreach(n->reg, tell_session, &t);
    free(json);
    mcpgw_listen_list_changed(n, l);
}

struct report {
    struct mcpgw_node *n;
    enum mcpgw_listen_list l;
};

static void on_recorded(void *arg, int err)
{
    struct report *r = arg;
    /* Recorded (by this node or an earlier one): the store's "lch" event tells every node's
     * sessions and listen streams, with its id. Not recorded (Redis unreachable): this node's
     * are told live. */
    if (err)
        tell_local(r->n, r->l);
    free(r);
}

/* List l is now what hashes to h (why: for the log): announce it unless this node announced h
 * last already. */
static void announce(struct mcpgw_node *n, enum mcpgw_listen_list l, uint64_t h, const char *why)
{
    struct report *r;
    if ((n->lists_known & (1u << l)) && n->lists_told[l] == h)
        return;
    n->lists_told[l] = h;
    n->lists_known |= 1u << l;
    log_info("%s: the %s list changed; telling the clients", why, kinds[l]);
    if (!mcpgw_store_shared(n->store)) {
        tell_local(n, l);
        return;
    }
    r = xmalloc(sizeof(*r));
    r->n = n;
    r->l = l;
    if (mcpgw_store_list_change(n->store, kinds[l], h, on_recorded, r) < 0) {
        free(r);
        tell_local(n, l);
    }
}

void mcpgw_catnotify_catalog(struct mcpgw_node *n, unsigned catalog_kinds)
{
    for (int l = 0; l < MCPGW_LISTEN_LIST_COUNT; l++)
        if (catalog_kinds & catalog_bits[l])
            announce(n, (enum mcpgw_listen_list)l, list_hash(n, (enum mcpgw_listen_list)l),
                     "upstream catalogue changed");
}

void mcpgw_catnotify_providers(struct mcpgw_node *n)
{
    for (int l = 0; l < MCPGW_LISTEN_LIST_COUNT; l++)
        announce(n, (enum mcpgw_listen_list)l, list_hash(n, (enum mcpgw_listen_list)l),
                 n->nproviders == 2            ? "now serving the built-ins and the upstreams"
                 : mcpgw_upstream_count(n) > 0 ? "now serving the upstreams only"
                                               : "now serving the built-ins only");
}

void mcpgw_catnotify_drill(struct mcpgw_node *n, enum mcpgw_listen_list l)
{
    if (l >= MCPGW_LISTEN_LIST_COUNT)
        return;
    /* A hash no list has: the cluster has not announced it, so it is recorded. */
    n->lists_known &= ~(1u << l);
    announce(n, l, mcpgw_rand_seed(), "a conformance fixture asked");
}
