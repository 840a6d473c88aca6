/* bridge26.h - a 2026-07-28 client calling a session-era upstream whose tool asks the client
 * something during the call (sampling/createMessage, elicitation/create, roots/list): each such
 * request becomes an input_required round, and the retry's answer goes back to the upstream,
 * on whichever node the retry lands (docs/protocol-2026.md, "Bridging").
 *
 * The upstream call stays on the node that started it (its origin); the requestState of a round
 * is sealed under the cluster key ring and names that node, the call and the round. A retry on
 * the origin continues there; a retry on another node is handed to the origin through the
 * store's node-to-node messages (Redis pub/sub) and waits there for the next round or the
 * result, which the origin sends back the same way. */
#ifndef MCPGW_NODE_BRIDGE26_H
#define MCPGW_NODE_BRIDGE26_H

#include "common/jsonrpc.h"

#include <json-c/json.h>

struct mcpgw_node;
struct mcpgw_call;
struct mcpgw_http_conn;

/* How an upstream's request asked through this module is answered: the client's result or
 * error (borrowed), or both NULL when the client did not answer in time. */
typedef void (*mcpgw_bridge26_answer_fn)(void *arg, json_object *result, json_object *error);

/* Ask the client of 2026-07-28 call c method(params) (params taken) for an upstream: every
 * request of the upstream waiting when a round goes out is in it (inputRequests is a map, one
 * key per request, upstream_K with K counting the call's requests); a round goes out at the end
 * of the loop turn the first request arrives in while the client waits, or as the answer to the
 * retry of the previous round. done(arg) fires once: with the client's answer when a retry
 * brings it, with neither result nor error when the round is not retried within the
 * client-request timeout, or at once for ping ({}) and methods other than sampling, elicitation
 * and roots (an error). It never fires if the call ends first. */
void mcpgw_bridge26_ask(struct mcpgw_call *c, const char *method, json_object *params,
                        mcpgw_bridge26_answer_fn done, void *arg);

/* Whether a tools/call retry of the 2026-07-28 era carries a requestState that this module
 * continues (a tool served by a call function: only this module issues state for those). */
int mcpgw_bridge26_claims(const struct mcpgw_jsonrpc_msg *m);

/* Continue the round that m's requestState names (m: a tools/call retry with inputResponses,
 * borrowed until return) and answer on conn, now or later: the next round, the upstream's result,
 * or a JSON-RPC error (state tampered with, expired, or for a call that is no longer pending; the
 * node running the call is gone; inputResponses malformed). principal: the request's ("" without
 * authentication). */
void mcpgw_bridge26_resume(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                           const struct mcpgw_jsonrpc_msg *m, const char *principal);

/* Node-to-node messages are refused above this size (an answer carries the client's
 * inputResponses, which the node already took in a request body). */
#define MCPGW_BRIDGE26_MSG_MAX (16u << 20)

/* Handle one node-to-node message of this module (what the store's node handler passes; the
 * format is in docs/protocol-2026.md): bytes, not necessarily NUL-terminated, borrowed. Anything
 * not version 1 JSON of a known type is logged and dropped. Exposed for the fuzz driver. */
void mcpgw_bridge26_message(struct mcpgw_node *n, const char *msg, size_t len);

/* Listen for this module's node-to-node messages (after the store is made): a node that never
 * ran a bridged call still answers a retry handed to it (a restarted origin: "no longer
 * pending"). */
void mcpgw_bridge26_start(struct mcpgw_node *n);

/* End every pending round (their calls are aborted) and every retry waiting for another node
 * (answered 503). At shutdown, before the store is freed. */
void mcpgw_bridge26_stop(struct mcpgw_node *n);

#endif
