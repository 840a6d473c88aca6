/* catalog.c - the merged catalogue of the upstream servers (see catalog.h). */
#include "node/catalog.h"

#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/util.h"
#include "node/upcfg.h"

#include <stdlib.h>
#include <string.h>

struct kind_tab {
    json_object *list;  /* merged descriptors, in catalogue order */
    json_object *index; /* exposed key -> position in entries (json-c's hash table) */
    struct mcpgw_catalog_entry **entries;
    size_t n;
};

struct mcpgw_catalog {
    struct kind_tab k[MCPGW_CATALOG_KIND_COUNT];
};

const char *mcpgw_catalog_kind_str(enum mcpgw_catalog_kind k)
{
    static const char *const s[] = {"tools", "prompts", "resources", "resourceTemplates"};
    return k < MCPGW_CATALOG_KIND_COUNT ? s[k] : "?";
}

/* The field naming an entry of kind k, as the upstream wrote it. */
static const char *key_field(enum mcpgw_catalog_kind k)
{
    return k == MCPGW_CATALOG_RESOURCES   ? "uri"
           : k == MCPGW_CATALOG_TEMPLATES ? "uriTemplate"
                                          : "name";
}

static void add_entry(struct kind_tab *t, enum mcpgw_catalog_kind k, const struct mcpgw_upcfg *cfg,
                      void *owner, json_object *desc,
                      void (*tool_call)(struct mcpgw_call *, json_object *))
{
    const char *orig = mcpgw_json_str(desc, key_field(k)), *prev_owner;
    char *exposed;
    json_object *copy, *pos;
    struct mcpgw_catalog_entry *e;
    if (!orig) {
        log_warn("upstream %s: a %s entry without %s: ignored", cfg->name,
                 mcpgw_catalog_kind_str(k), key_field(k));
        return;
    }
    if (k == MCPGW_CATALOG_TOOLS && !mcpgw_upcfg_tool_allowed(cfg, orig))
        return;
    exposed = (k == MCPGW_CATALOG_TOOLS || k == MCPGW_CATALOG_PROMPTS)
                  ? mcpgw_upcfg_expose(cfg, orig)
                  : xstrdup(orig);
    if (json_object_object_get_ex(t->index, exposed, &pos)) {
        prev_owner = t->entries[json_object_get_int(pos)]->upstream;
        log_warn("upstream %s: %s '%s' collides with the one of upstream %s: not served", cfg->name,
                 k == MCPGW_CATALOG_TOOLS       ? "tool"
                 : k == MCPGW_CATALOG_PROMPTS   ? "prompt"
                 : k == MCPGW_CATALOG_RESOURCES ? "resource"
                                                : "resource template",
                 exposed, prev_owner);
        free(exposed);
        return;
    }
    if (k == MCPGW_CATALOG_TOOLS || k == MCPGW_CATALOG_PROMPTS) {
        copy = json_object_new_object();
        json_object_object_foreach(desc, key, val)
        {
            if (strcmp(key, "name") != 0)
                json_object_object_add(copy, key, json_object_get(val));
        }
        json_object_object_add(copy, "name", json_object_new_string(exposed));
    } else {
        copy = json_object_get(desc);
    }
    json_object_array_add(t->list, copy);
    e = xcalloc(1, sizeof(*e));
    e->owner = owner;
    e->name = xstrdup(orig);
    e->upstream = xstrdup(cfg->name);
    e->tool.name = xstrdup(exposed);
    e->tool.call = tool_call;
    t->entries = xrealloc(t->entries, (t->n + 1) * sizeof(*t->entries));
    t->entries[t->n] = e;
    json_object_object_add(t->index, exposed, json_object_new_int((int)t->n));
    t->n++;
    free(exposed);
}

struct mcpgw_catalog *mcpgw_catalog_build(const struct mcpgw_catalog_src *srcs, int n,
                                          void (*tool_call)(struct mcpgw_call *c,
                                                            json_object *args))
{
    struct mcpgw_catalog *cat = xcalloc(1, sizeof(*cat));
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        struct kind_tab *t = &cat->k[k];
        t->list = json_object_new_array();
        t->index = json_object_new_object();
        for (int i = 0; i < n; i++) {
            json_object *l = srcs[i].lists[k];
            size_t len =
                l && json_object_is_type(l, json_type_array) ? json_object_array_length(l) : 0;
            for (size_t j = 0; j < len; j++) {
                json_object *d = json_object_array_get_idx(l, j);
                if (json_object_is_type(d, json_type_object))
                    add_entry(t, (enum mcpgw_catalog_kind)k, srcs[i].cfg, srcs[i].owner, d,
                              tool_call);
            }
        }
    }
    return cat;
}

void mcpgw_catalog_free(struct mcpgw_catalog *cat)
{
    if (!cat)
        return;
    for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++) {
        struct kind_tab *t = &cat->k[k];
        for (size_t i = 0; i < t->n; i++) {
            free((char *)t->entries[i]->name);
            free((char *)t->entries[i]->tool.name);
            free((char *)t->entries[i]->upstream);
            free(t->entries[i]);
        }
        free(t->entries);
        json_object_put(t->list);
        json_object_put(t->index);
    }
    free(cat);
}

json_object *mcpgw_catalog_list(const struct mcpgw_catalog *cat, enum mcpgw_catalog_kind k)
{
    return cat->k[k].list;
}

const struct mcpgw_catalog_entry *mcpgw_catalog_find(const struct mcpgw_catalog *cat,
                                                     enum mcpgw_catalog_kind k, const char *key)
{
    json_object *pos;
    if (!cat || !json_object_object_get_ex(cat->k[k].index, key, &pos))
        return NULL;
    return cat->k[k].entries[json_object_get_int(pos)];
}

/* Whether uri matches the RFC 6570 template tpl: literals match themselves, an expression
 * {...} any non-empty run up to the next literal character (or the end). */
static int template_match(const char *tpl, const char *uri)
{
    while (*tpl) {
        if (*tpl == '{') {
            const char *close = strchr(tpl, '}');
            char stop;
            size_t run = 0;
            if (!close)
                return 0;
            tpl = close + 1;
            stop = *tpl;
            while (uri[run] && uri[run] != stop && (stop || uri[run] != '/'))
                run++;
            if (!stop)
                run = strlen(uri); /* the last expression takes the rest */
            if (run == 0)
                return 0;
            uri += run;
        } else if (*tpl++ != *uri++) {
            return 0;
        }
    }
    return *uri == 0;
}

const struct mcpgw_catalog_entry *mcpgw_catalog_match(const struct mcpgw_catalog *cat,
                                                      const char *uri)
{
    const struct kind_tab *t;
    if (!cat)
        return NULL;
    t = &cat->k[MCPGW_CATALOG_TEMPLATES];
    for (size_t i = 0; i < t->n; i++)
        if (template_match(t->entries[i]->name, uri))
            return t->entries[i];
    return NULL;
}

void *mcpgw_catalog_sole_resource_owner(const struct mcpgw_catalog *cat)
{
    void *owner = NULL;
    if (!cat)
        return NULL;
    for (int k = MCPGW_CATALOG_RESOURCES; k <= MCPGW_CATALOG_TEMPLATES; k++)
        for (size_t i = 0; i < cat->k[k].n; i++) {
            if (owner && owner != cat->k[k].entries[i]->owner)
                return NULL;
            owner = cat->k[k].entries[i]->owner;
        }
    return owner;
}
