/* proto.h - the MCP protocol revisions the node speaks (session era). */
#ifndef MCPGW_NODE_PROTO_H
#define MCPGW_NODE_PROTO_H

#include <stddef.h>

/* Protocol revisions of the session era, newest first. */
enum mcpgw_proto {
    MCPGW_PROTO_2025_11_25,
    MCPGW_PROTO_2025_06_18,
    MCPGW_PROTO_2025_03_26,
    MCPGW_PROTO_COUNT
};
/* "2025-11-25", ...; "?" for a value out of range. */
const char *mcpgw_proto_str(enum mcpgw_proto p);
/* Index of the supported revision named by the len bytes at s, or -1. */
int mcpgw_proto_parse(const char *s, size_t len);

#endif
