/* era26.h - the 2026-07-28 era on /mcp: which era a request belongs to, the revision's header
 * and _meta checks, and the dispatch of its methods (docs/protocol-2026.md). The session era
 * (transport.c, protocol.c) is untouched by a request this module does not claim. */
#ifndef MCPGW_NODE_ERA26_H
#define MCPGW_NODE_ERA26_H

#include <json-c/json.h>
#include <stddef.h>

struct mcpgw_node;
struct mcpgw_http_conn;
struct mcpgw_http_head;
struct mcpgw_jsonrpc_msg;

/* What a request's MCP-Protocol-Version header says about its era. */
enum mcpgw_era26_version {
    MCPGW_ERA_SESSION, /* absent, or a session-era revision: the session era's path, unchanged */
    MCPGW_ERA_2026,    /* 2026-07-28 */
    MCPGW_ERA_UNKNOWN, /* a revision we do not speak: answered here (400 with the list) */
    MCPGW_ERA_VERSION_COUNT
};
/* One header lookup and at most one short compare: the session era's hot path pays no more. */
enum mcpgw_era26_version mcpgw_era26_header_version(const struct mcpgw_http_head *h);

/* Whether a POST without Mcp-Session-Id whose header left the era open (MCPGW_ERA_SESSION) is
 * of the 2026-07-28 era all the same: its params._meta names a protocol version, as only this
 * era's requests do (the header is then missing or wrong, which is answered here). */
int mcpgw_era26_claims(const struct mcpgw_jsonrpc_msg *m);

/* Serve one POSTed message of the 2026-07-28 era (or of an unknown version) on conn: checks,
 * then the method, answering now or later. m is borrowed until return (what outlives the call
 * is copied or referenced). */
void mcpgw_era26_post(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                      const struct mcpgw_http_head *h, const struct mcpgw_jsonrpc_msg *m);

/* The cluster key ring that seals MRTR requestState: --state-keyring FILE, else the
 * MCPGW_STATE_KEYRING environment variable (the ring's text), else a random key of this
 * process (state then opens only on this node; logged). Returns 0, or -1 with err. */
int mcpgw_era26_start(struct mcpgw_node *n, char *err, size_t errlen);
/* SIGHUP: read the key ring file again (rotation); on failure the running ring stays. */
void mcpgw_era26_reload(struct mcpgw_node *n);
void mcpgw_era26_stop(struct mcpgw_node *n);

#endif
