/* catalog.h - the merged catalogue of the upstream servers: every upstream's tools, prompts,
 * resources and resource templates as the clients see them (names prefixed, filters applied,
 * collisions refused), and the lookups that route a request back to the upstream that owns it.
 * A pure data structure: it is rebuilt whole whenever an upstream's lists change. */
#ifndef MCPGW_NODE_CATALOG_H
#define MCPGW_NODE_CATALOG_H

#include "node/provider.h"

#include <json-c/json.h>

struct mcpgw_upcfg;
struct mcpgw_catalog;

enum mcpgw_catalog_kind {
    MCPGW_CATALOG_TOOLS,
    MCPGW_CATALOG_PROMPTS,
    MCPGW_CATALOG_RESOURCES,
    MCPGW_CATALOG_TEMPLATES,
    MCPGW_CATALOG_KIND_COUNT
};
/* The list's key in a list result ("tools", "prompts", "resources", "resourceTemplates"). */
const char *mcpgw_catalog_kind_str(enum mcpgw_catalog_kind k);

/* What one upstream offers: its configuration (prefix, filters), an opaque owner handed back by
 * the lookups, and its lists as fetched (JSON arrays of descriptors, or NULL), all borrowed
 * while mcpgw_catalog_build runs. */
struct mcpgw_catalog_src {
    const struct mcpgw_upcfg *cfg;
    void *owner;
    json_object *lists[MCPGW_CATALOG_KIND_COUNT];
};

/* One entry: the owner, the upstream's own name (tools, prompts) or URI (resources, templates),
 * and for a tool its descriptor as struct mcpgw_tool (provider.h) with call set to tool_call. */
struct mcpgw_catalog_entry {
    void *owner;
    const char *name;
    const char *upstream; /* the owner's configured name, for log lines */
    struct mcpgw_tool tool;
};

/* Merge srcs in order: an upstream's names are exposed as prefix + MCPGW_UPCFG_SEP + name (the
 * name alone for an empty prefix), its tools filtered by tools=/exclude=; resource URIs and
 * templates pass unchanged. A name (or URI) an earlier upstream already exposes is refused with
 * a log line naming both. Returns the catalogue (free with mcpgw_catalog_free). */
struct mcpgw_catalog *mcpgw_catalog_build(const struct mcpgw_catalog_src *srcs, int n,
                                          void (*tool_call)(struct mcpgw_call *c,
                                                            json_object *args));
void mcpgw_catalog_free(struct mcpgw_catalog *cat);

/* The merged list of kind k (a JSON array, borrowed until the catalogue is freed). */
json_object *mcpgw_catalog_list(const struct mcpgw_catalog *cat, enum mcpgw_catalog_kind k);
/* The entry exposed as key (a tool or prompt name, a resource URI, a template's uriTemplate),
 * or NULL. Borrowed until the catalogue is freed. */
const struct mcpgw_catalog_entry *mcpgw_catalog_find(const struct mcpgw_catalog *cat,
                                                     enum mcpgw_catalog_kind k, const char *key);
/* The template entry whose uriTemplate matches uri (RFC 6570 expressions match any non-empty
 * run of characters up to the next literal), first in catalogue order, or NULL. */
const struct mcpgw_catalog_entry *mcpgw_catalog_match(const struct mcpgw_catalog *cat,
                                                      const char *uri);
/* The only owner that offers resources or templates, or NULL when none or several do. */
void *mcpgw_catalog_sole_resource_owner(const struct mcpgw_catalog *cat);

#endif
