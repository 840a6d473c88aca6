/* guard.c - authorization rules applied to requests and lists (see guard.h). */
#include "node/guard.h"

#include "common/hash.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/util.h"
#include "node/auth.h"
#include "node/builtin.h"
#include "node/catalog.h"
#include "node/config.h"
#include "node/node-t.h"
#include "node/provider.h"
#include "node/upcfg.h"
#include "node/upprov.h"
#include "node/upstream.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct mcpgw_authz_grant no_grant = {"", ""};

static const struct mcpgw_authz_grant *grant_of(const struct mcpgw_node *n)
{
    return n->req_who ? &n->req_who->grant : &no_grant;
}

/* The catalogue's kind for an item kind, and the key naming an entry of its list. */
static enum mcpgw_catalog_kind cat_kind(enum mcpgw_authz_kind k, int templates, const char **key)
{
    *key = k == MCPGW_AUTHZ_RESOURCE ? templates ? "uriTemplate" : "uri" : "name";
    return k == MCPGW_AUTHZ_TOOL     ? MCPGW_CATALOG_TOOLS
           : k == MCPGW_AUTHZ_PROMPT ? MCPGW_CATALOG_PROMPTS
           : templates               ? MCPGW_CATALOG_TEMPLATES
                                     : MCPGW_CATALOG_RESOURCES;
}

/* What a list shows a grant is decided once per (grant, list as it is, rules): lists are asked
 * for far more often than they change, and each entry costs a pass over the rules. One
 * direct-mapped slot per hash of the grant and the list's kind; the grant is compared exactly
 * (a hash collision must never lend one principal another's view), the list by its catalogue,
 * length and a fingerprint of its names (a list that changed in place is evaluated again).
 * Memory is bounded by the slots; one event loop per process, so no lock. */
#define LIST_CACHE_SLOTS 64

struct list_memo {
    char *scopes, *claims;
    const struct mcpgw_provider_ops *p;
    int kind, templates;
    unsigned long long rules;
    const struct mcpgw_catalog *cat;
    size_t n;
    uint64_t fp;
    uint8_t *keep; /* n flags */
};

static struct list_memo memo[LIST_CACHE_SLOTS];

static uint64_t mix(uint64_t h, const char *s)
{
    return (h ^ mcpgw_hash64(s, strlen(s))) * 0x100000001b3ull;
}

void mcpgw_guard_filter(struct mcpgw_node *n, const struct mcpgw_provider_ops *p,
                        enum mcpgw_authz_kind ak, int templates, json_object *arr, size_t from)
{
    const struct mcpgw_authz *set = n->cfg.authz;
    const struct mcpgw_authz_grant *g = grant_of(n);
    const struct mcpgw_catalog *cat =
        p == &mcpgw_upprov_provider ? mcpgw_upstream_catalog(n) : NULL;
    const char *key;
    enum mcpgw_catalog_kind ck = cat_kind(ak, templates, &key);
    size_t end = json_object_array_length(arr), cnt = end - from;
    uint64_t fp = 0xcbf29ce484222325ull;
    struct list_memo *m;
    if (!mcpgw_authz_active(set) || !cnt)
        return;
    for (size_t i = from; i < end; i++) {
        const char *name = mcpgw_json_str(json_object_array_get_idx(arr, i), key);
        fp = mix(fp, name ? name : "");
    }
    m = &memo[mix(mix((uint64_t)ak * 2 + (uint64_t)templates, g->scopes), g->claims) %
              LIST_CACHE_SLOTS];
    if (!(m->keep && m->p == p && m->kind == (int)ak && m->templates == templates &&
          m->rules == mcpgw_authz_id(set) && m->cat == cat && m->n == cnt && m->fp == fp &&
          strcmp(m->scopes, g->scopes) == 0 && strcmp(m->claims, g->claims) == 0)) {
        free(m->scopes);
        free(m->claims);
        free(m->keep);
        *m = (struct list_memo){xstrdup(g->scopes),
                                xstrdup(g->claims),
                                p,
                                (int)ak,
                                templates,
                                mcpgw_authz_id(set),
                                cat,
                                cnt,
                                fp,
                                xmalloc(cnt)};
        for (size_t i = 0; i < cnt; i++) {
            const char *name = mcpgw_json_str(json_object_array_get_idx(arr, from + i), key);
            struct mcpgw_authz_item it = {ak, name ? name : "", MCPGW_AUTHZ_BUILTIN};
            if (cat) {
                const struct mcpgw_catalog_entry *e = mcpgw_catalog_find(cat, ck, it.name);
                it.upstream = e ? e->upstream : "";
            }
            m->keep[i] = mcpgw_authz_check(set, &it, g, NULL, 0) == MCPGW_AUTHZ_ALLOW;
        }
    }
    /* Backwards, so deleting an entry does not move the ones still to be looked at. */
    for (size_t i = cnt; i-- > 0;)
        if (!m->keep[i])
            json_object_array_del_idx(arr, from + i, 1);
}

/* Is name the built-ins' prompt or resource? Only asked when built-ins and upstreams are both
 * served (the built-ins are asked first there). */
static int builtin_has(struct mcpgw_node *n, enum mcpgw_authz_kind k, const char *name)
{
    json_object *arr;
    int found = 0;
    if (k == MCPGW_AUTHZ_RESOURCE)
        return mcpgw_builtin_has_uri(name);
    arr = json_object_new_array();
    mcpgw_builtin_provider.list_prompts(n, arr);
    for (size_t i = 0; i < json_object_array_length(arr) && !found; i++) {
        const char *v = mcpgw_json_str(json_object_array_get_idx(arr, i), "name");
        found = v && strcmp(v, name) == 0;
    }
    json_object_put(arr);
    return found;
}

/* Which upstream serves kind/name, the way the providers would route it (protocol.c asks the
 * built-ins first when both are served): MCPGW_AUTHZ_BUILTIN for the node's own. */
static const char *owner_of(struct mcpgw_node *n, enum mcpgw_authz_kind k, const char *name)
{
    size_t np = n->nproviders;
    const struct mcpgw_provider_ops *const *ps = n->providers;
    const struct mcpgw_catalog *cat = mcpgw_upstream_catalog(n);
    const struct mcpgw_catalog_entry *e = NULL;
    int builtins = 0, upstreams = 0;
    for (size_t i = 0; i < np; i++) {
        builtins |= ps[i] == &mcpgw_builtin_provider;
        upstreams |= ps[i] == &mcpgw_upprov_provider;
    }
    if (k == MCPGW_AUTHZ_TOOL) {
        if (builtins && mcpgw_builtin_provider.tool(n, name))
            return MCPGW_AUTHZ_BUILTIN;
    } else if (builtins && (!upstreams || builtin_has(n, k, name))) {
        return MCPGW_AUTHZ_BUILTIN;
    }
    if (!upstreams || !cat)
        return MCPGW_AUTHZ_BUILTIN;
    if (k == MCPGW_AUTHZ_TOOL)
        e = mcpgw_catalog_find(cat, MCPGW_CATALOG_TOOLS, name);
    else if (k == MCPGW_AUTHZ_PROMPT)
        e = mcpgw_catalog_find(cat, MCPGW_CATALOG_PROMPTS, name);
    else if (!(e = mcpgw_catalog_find(cat, MCPGW_CATALOG_RESOURCES, name)) &&
             !(e = mcpgw_catalog_find(cat, MCPGW_CATALOG_TEMPLATES, name)) &&
             !(e = mcpgw_catalog_match(cat, name))) {
        /* what upprov.c routes to the only upstream with resources */
        const struct mcpgw_upcfg *u = NULL;
        void *sole = mcpgw_catalog_sole_resource_owner(cat);
        if (sole)
            u = mcpgw_upstream_cfg(sole);
        return u ? u->name : MCPGW_AUTHZ_BUILTIN;
    }
    /* what no upstream serves is the node's own (built-ins, the 2026-07-28 era's fixtures) */
    return e ? e->upstream : MCPGW_AUTHZ_BUILTIN;
}

int mcpgw_guard_allows(struct mcpgw_node *n, struct mcpgw_http_conn *conn, const char *session,
                       json_object *id, enum mcpgw_authz_kind kind, const char *name, int *answered)
{
    const struct mcpgw_authz *set = n->cfg.authz;
    struct mcpgw_authz_item it = {kind, name, ""};
    enum mcpgw_authz_verdict v;
    char need[512], detail[240];
    const char *rid;
    *answered = 0;
    if (!mcpgw_authz_active(set))
        return 1;
    it.upstream = owner_of(n, kind, name);
    v = mcpgw_authz_check(set, &it, grant_of(n), need, sizeof(need));
    if (v == MCPGW_AUTHZ_ALLOW)
        return 1;
    rid = id ? json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN) : NULL;
    snprintf(detail, sizeof(detail), "%s '%.120s' of upstream %.64s: %s",
             mcpgw_authz_kind_str(kind), name, it.upstream[0] ? it.upstream : "-",
             v == MCPGW_AUTHZ_STEPUP ? "needs more scopes" : "refused by the rules");
    if (n->auth) {
        struct mcpgw_auth_refusal r = {
            .principal = n->req_who ? n->req_who->principal : NULL,
            .session = session,
            .request_id = rid,
            .forwarded = n->req_who ? n->req_who->forwarded : NULL,
            .detail = detail,
            .need = v == MCPGW_AUTHZ_STEPUP ? need : NULL,
            .id = id,
        };
        mcpgw_auth_refuse_rule(n->auth, conn, &r);
        *answered = v == MCPGW_AUTHZ_STEPUP;
    } else {
        log_warn("refused by the authorization rules: %s", detail);
    }
    return 0;
}

int mcpgw_guard_keep(struct mcpgw_node *n, enum mcpgw_authz_kind kind, const char **names, int n_)
{
    int k = 0;
    for (int i = 0; i < n_; i++) {
        struct mcpgw_authz_item it = {kind, names[i], owner_of(n, kind, names[i])};
        if (mcpgw_authz_check(n->cfg.authz, &it, grant_of(n), NULL, 0) == MCPGW_AUTHZ_ALLOW)
            names[k++] = names[i];
    }
    return k;
}

void mcpgw_guard_reload(struct mcpgw_node *n, struct mcpgw_node_config *next)
{
    struct mcpgw_authz *t = n->cfg.authz;
    n->cfg.authz = next->authz;
    next->authz = t; /* freed with next */
    if (n->auth)
        mcpgw_auth_rules_changed(n->auth);
}
