/* msg.h - every MCP message the node emits, built in one place.
 *
 * Builders return a malloc'd NUL-terminated JSON text (free with free()) and set *len to its
 * length, or a new json_object for a result that is embedded in a response. Upstream federation
 * and the 2026-07-28 revision add their messages here. */
#ifndef MCPGW_NODE_MSG_H
#define MCPGW_NODE_MSG_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* notifications/resources/updated for uri at version. The version (in _meta io.mcpgw/version)
 * lets a client, such as the load generator, count lost and duplicate updates. */
char *mcpgw_msg_resource_updated(const char *uri, uint64_t version, size_t *len);

#endif
