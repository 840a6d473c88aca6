/* builtin.h - the node's built-in server surface: tools, resources, templates, prompts.
 *
 * Tools are a static const table (name, schemas, handler): the plug-in point that upstream
 * federation will extend. Handlers run on the event loop and finish through the call API. */
#ifndef MCPGW_NODE_BUILTIN_H
#define MCPGW_NODE_BUILTIN_H

#include "node/node-t.h"

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

const struct mcpgw_tool *mcpgw_builtin_tools(size_t *count);
const struct mcpgw_tool *mcpgw_builtin_tool(const char *name);

/* JSON arrays for the list methods (new references; the caller paginates). */
json_object *mcpgw_builtin_tools_json(void);
json_object *mcpgw_builtin_resources_json(struct mcpgw_node *n);
json_object *mcpgw_builtin_templates_json(void);
json_object *mcpgw_builtin_prompts_json(void);

/* A one-element "contents" array {uri, mimeType, <key>: value}. */
json_object *mcpgw_builtin_contents(const char *uri, const char *mime, const char *key,
                                    const char *value);
/* resources/read of the static resources and templates (notes are read through the store):
 * the "contents" array for uri, or NULL when no such resource. */
json_object *mcpgw_builtin_read(struct mcpgw_node *n, const char *uri);
/* Whether uri names a resource that exists (or may exist: a notes URI) for subscription. */
int mcpgw_builtin_resource_known(const char *uri);

/* prompts/get: fills *result, or returns a JSON-RPC error code with *why set. */
int mcpgw_builtin_prompt(const char *name, json_object *args, json_object **result, char *why,
                         size_t whylen);

/* completion/complete values for a prompt argument or template variable (new array). */
json_object *mcpgw_builtin_complete(struct mcpgw_node *n, const char *ref_type,
                                    const char *ref_name, const char *arg, const char *value);

#endif
