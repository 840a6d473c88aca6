/* up26.h - the 2026-07-28 revision as the node's upstream client speaks it: the `_meta` every
 * request carries, the Mcp-Method/Mcp-Name headers, the answer of server/discover, the
 * subscriptions/listen filter, and the rounds of an input_required result (MRTR), whose input
 * requests node/upmcp.c hands to its caller as server-to-client requests and whose answers make
 * the retry. No I/O here: upmcp.c does the HTTP (docs/federation.md, "Bridging"). */
#ifndef MCPGW_NODE_UP26_H
#define MCPGW_NODE_UP26_H

#include <json-c/json.h>
#include <stddef.h>

#define MCPGW_UP26_VERSION "2026-07-28"
/* The most input_required rounds one request may take before it fails: an upstream that asks
 * forever must not hold a client's call forever. */
#define MCPGW_UP26_MAX_ROUNDS 32

/* params (taken; NULL = {}) with the request `_meta` of the revision merged into its own `_meta`
 * (entries already there, such as progressToken, are kept): protocol version, client info, and
 * caps (borrowed; NULL = {}) as the client capabilities. Returns params. */
json_object *mcpgw_up26_params(json_object *params, json_object *caps);

/* The standard request headers for method(params): "Mcp-Method: ..." and, for tools/call,
 * prompts/get and resources/read, "Mcp-Name: ..." (Base64 sentinel form when the value is not
 * plain header-safe ASCII). Each is malloc'd into out (room for 2). Returns how many. */
int mcpgw_up26_headers(const char *method, json_object *params, char **out);

/* The Mcp-Param-{Name} headers of a tools/call: for each property of the tool's inputSchema
 * (borrowed) reached through `properties` chains alone that carries `x-mcp-header`, the value at
 * the same path in args (borrowed) when it is a string, integer or boolean (absent or null: no
 * header), encoded as the revision says (Base64 sentinel form when not plain header-safe ASCII).
 * At most max, each malloc'd into out. Returns how many. */
int mcpgw_up26_param_headers(json_object *schema, json_object *args, char **out, int max);

/* 1 when the x-mcp-header markings of a tool's inputSchema (borrowed) keep the revision's rules:
 * each a non-empty header token, on a property of type string, integer or boolean reached from
 * the root through `properties` alone, unique ignoring case. Otherwise 0 with why filled (the
 * first rule broken): a client must then leave the tool out of its tools/list. */
int mcpgw_up26_tool_marks_ok(json_object *schema, char *why, size_t whylen);

/* 1 when a server/discover result (borrowed) lists 2026-07-28 among its supportedVersions. */
int mcpgw_up26_discover_ok(json_object *result);
/* 1 when a result (borrowed) is an input_required one. */
int mcpgw_up26_input_required(json_object *result);

/* The params of subscriptions/listen: every list change, and updates of the n uris (borrowed),
 * with the request _meta (caps borrowed). */
json_object *mcpgw_up26_listen_params(char *const *uris, size_t n, json_object *caps);

/* One input_required result being served: its input requests asked one at a time, their
 * answers kept under their keys, then the retry's params. */
struct mcpgw_up26_round;

/* A round for result (borrowed). NULL with err filled when the result breaks the revision's
 * rules (neither inputRequests nor requestState, an input request that is not {method, params}
 * of elicitation/create, sampling/createMessage or roots/list). Free with _free. */
struct mcpgw_up26_round *mcpgw_up26_round_new(json_object *result, char *err, size_t errlen);
void mcpgw_up26_round_free(struct mcpgw_up26_round *r);
/* The next input request not yet answered, as a JSON-RPC request text under id (borrowed),
 * malloc'd with its length in *len; NULL when every request has its answer. */
char *mcpgw_up26_round_next(struct mcpgw_up26_round *r, json_object *id, size_t *len);
/* The answer (a result, borrowed) to the request _next returned last. */
void mcpgw_up26_round_answer(struct mcpgw_up26_round *r, json_object *result);
/* The params of the retry: a copy of orig (borrowed) with inputResponses and requestState
 * replaced by this round's (requestState left out when the upstream gave none). */
json_object *mcpgw_up26_round_retry(const struct mcpgw_up26_round *r, json_object *orig);

#endif
