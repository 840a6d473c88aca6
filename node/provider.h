/* provider.h - what serves a request: the interface of every source of tools, resources,
 * resource templates and prompts. The built-ins (builtin.c) are the first provider; an upstream
 * MCP server is the next (upprov.c). protocol.c asks the providers of its table in order, so a
 * provider answers only for the names and URIs it knows. Providers run on the event loop and
 * answer later if they must: tools through the call API (call.h), reads and prompts through a
 * deferred reply (defer.h). */
#ifndef MCPGW_NODE_PROVIDER_H
#define MCPGW_NODE_PROVIDER_H

#include <json-c/json.h>
#include <stddef.h>

struct mcpgw_node;
struct mcpgw_call;
struct mcpgw_defer;

/* A tool: its descriptor and how to run it (the provider's "call tool"). */
struct mcpgw_tool {
    const char *name;
    const char *title;
    const char *description;
    const char *input_schema;  /* JSON text */
    const char *output_schema; /* JSON text, or NULL */
    /* args is an object (possibly empty), borrowed until return. */
    void (*call)(struct mcpgw_call *c, json_object *args);
    /* 1: running it twice differs from once, so its results are recorded for retries. */
    unsigned side_effects;
};

struct mcpgw_provider_ops {
    const char *name;
    /* Append this provider's descriptors (JSON objects) to arr, a JSON array. */
    void (*list_tools)(struct mcpgw_node *n, json_object *arr);
    void (*list_resources)(struct mcpgw_node *n, json_object *arr);
    void (*list_templates)(struct mcpgw_node *n, json_object *arr);
    void (*list_prompts)(struct mcpgw_node *n, json_object *arr);
    /* The tool called name, or NULL when this provider has none (borrowed for the provider's
     * life). */
    const struct mcpgw_tool *(*tool)(struct mcpgw_node *n, const char *name);
    /* resources/read of uri: 0 when it is not this provider's (d untouched); else 1, and d is
     * answered (with the "contents" result or an error) now or later, and freed. */
    int (*read)(struct mcpgw_node *n, const char *uri, struct mcpgw_defer *d);
    /* prompts/get: 0 when this provider has no such prompt (d untouched); else 1, and d is
     * answered and freed. args is an object or NULL, borrowed until return. */
    int (*get_prompt)(struct mcpgw_node *n, const char *name, json_object *args,
                      struct mcpgw_defer *d);
    /* completion/complete for an argument of a prompt or resource template (ref_type
     * "ref/prompt" or "ref/resource"): 0 when the reference is not this provider's; else 1
     * with the values appended to vals (a JSON array of strings). */
    int (*complete)(struct mcpgw_node *n, const char *ref_type, const char *ref_name,
                    const char *arg, const char *value, json_object *vals);
    /* completion/complete answered later, for a provider that must ask someone else: 0 when
     * the reference is not this provider's (d untouched); else 1, and d is answered with the
     * whole completion result (or an error) and freed. Asked before complete. params are the
     * request's, borrowed until return. */
    int (*complete_later)(struct mcpgw_node *n, const char *ref_type, const char *ref_name,
                          json_object *params, struct mcpgw_defer *d);
    /* resources/subscribe (on) or unsubscribe of uri: whether uri is a resource of this
     * provider that may be watched. Its updates reach subscribers as store events. */
    int (*subscribe)(struct mcpgw_node *n, const char *uri, int on);
};

#endif
