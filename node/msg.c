/* msg.c - every MCP message the node emits (see msg.h). */
#include "node/msg.h"

#include "common/jsonrpc.h"

char *mcpgw_msg_resource_updated(const char *uri, uint64_t version, size_t *len)
{
    json_object *p = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(p, "uri", json_object_new_string(uri));
    json_object_object_add(meta, "io.mcpgw/version", json_object_new_int64((int64_t)version));
    json_object_object_add(p, "_meta", meta);
    return mcpgw_jsonrpc_notification("notifications/resources/updated", p, len);
}
