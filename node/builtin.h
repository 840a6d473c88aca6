/* builtin.h - the node's built-in server surface: tools, resources, templates, prompts (the
 * conformance fixtures and the operator tools), the first provider (provider.h). */
#ifndef MCPGW_NODE_BUILTIN_H
#define MCPGW_NODE_BUILTIN_H

#include "node/provider.h"

extern const struct mcpgw_provider_ops mcpgw_builtin_provider;

/* Whether resources/read of uri is the built-ins' (a listed resource, the template's form, a
 * note): authorization rules (guard.c) must know who serves a URI before it is read. */
int mcpgw_builtin_has_uri(const char *uri);

#endif
