/* session.h - one MCP session of the load generator: its setup (initialize, initialized, GET
 * stream, subscribe), its held GET stream with Last-Event-ID reconnection, and the accounting of
 * the note versions it receives. */
#ifndef MCPGW_LOADGEN_SESSION_H
#define MCPGW_LOADGEN_SESSION_H

#include "loadgen/client.h"
#include "loadgen/worker-t.h"

/* Reconnection waits of a broken GET stream: attempt 0 waits 10-20 ms, attempt n >= 1 a
 * uniformly random time between half and all of min(LG_BACKOFF_BASE_MS * 2^(n-1),
 * LG_BACKOFF_CAP_MS). rng is the caller's mcpgw_rand state (common/rand.h). */
#define LG_BACKOFF_BASE_MS 50
#define LG_BACKOFF_CAP_MS  500
uint32_t mcpgw_lgsession_backoff_ms(unsigned attempt, uint64_t *rng);

/* The _meta every 2026-07-28 request carries (the revision has no initialize). */
#define LG_META26                                                                                  \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","                       \
    "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"mcpgw-loadgen\",\"version\":\"0.1\"},"     \
    "\"io.modelcontextprotocol/clientCapabilities\":{}}"

/* Begin the setup of s, due at due_us (setup latency counts from then). */
void mcpgw_lgsession_start(struct lg_worker *w, struct lg_session *s, uint64_t due_us);

/* Outcome of a setup request (initialize, initialized, subscribe). Takes r. */
void mcpgw_lgsession_setup_response(struct lg_worker *w, struct lg_req *r, int err,
                                    const struct mcpgw_client_resp *resp);

/* Close the session's stream now (with a reset) and stop reconnecting it. */
void mcpgw_lgsession_close(struct lg_worker *w, struct lg_session *s);

/* Versions of the note between first and last (inclusive) that s should have received, did
 * receive once, and received more than once. */
/* The versions in first..last this session did not see, as "v1,v2,..." in out (cut at outlen);
 * returns how many. */
int mcpgw_lgsession_missing(const struct lg_session *s, uint64_t first, uint64_t last, char *out,
                            size_t outlen);
void mcpgw_lgsession_account(const struct lg_session *s, uint64_t first, uint64_t last,
                             uint64_t *expected, uint64_t *received, uint64_t *duplicated);

/* The JSON-RPC message of a response body: the body itself (application/json) or the data of
 * the SSE event carrying the response (text/event-stream). Sets *p and *n; the pointer is valid
 * until the next call or until the callback returns. Returns 0, or -1 when there is none. */
int mcpgw_lgsession_rpc_body(struct lg_worker *w, const struct mcpgw_client_resp *resp,
                             const char **p, size_t *n);

#endif
