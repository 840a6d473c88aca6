/* proto.c - the MCP protocol revisions the node speaks. */
#include "node/proto.h"

#include <string.h>

static const char *const proto_names[MCPGW_PROTO_COUNT] = {"2025-11-25", "2025-06-18",
                                                           "2025-03-26"};

const char *mcpgw_proto_str(enum mcpgw_proto p)
{
    return (unsigned)p < MCPGW_PROTO_COUNT ? proto_names[p] : "?";
}

int mcpgw_proto_parse(const char *s, size_t len)
{
    for (int i = 0; i < MCPGW_PROTO_COUNT; i++)
        if (strlen(proto_names[i]) == len && memcmp(proto_names[i], s, len) == 0)
            return i;
    return -1;
}
