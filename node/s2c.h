/* s2c.h - server-to-client requests of an upstream server (sampling/createMessage,
 * elicitation/create, roots/list, ping...) forwarded to the client during one of its calls: on
 * the call's stream, under an id of the client session's own, and the client's answer sent back
 * to the upstream under the upstream's original id. The client's declared capabilities are
 * respected: a request it cannot answer never reaches it, the upstream gets a JSON-RPC error.
 * (Requests arriving on a per-client upstream session's GET stream go to the client's GET
 * stream: upsess.c.) */
#ifndef MCPGW_NODE_S2C_H
#define MCPGW_NODE_S2C_H

#include "common/jsonrpc.h"

#include <stddef.h>

struct mcpgw_call;
struct mcpgw_session;

/* How the response for the upstream leaves: json is a whole JSON-RPC response (borrowed until
 * return), to send with mcpgw_upmcp_send / mcpgw_upstdio_send. */
typedef void (*mcpgw_s2c_answer_fn)(void *arg, const char *json, size_t len);

/* 0 when the client of s declared what method needs (sampling, elicitation, roots; other
 * methods need nothing), else -1 with a sentence for the upstream in why. */
int mcpgw_s2c_allowed(const struct mcpgw_session *s, const char *method, char *why, size_t len);

/* The response to the upstream's request up_id (borrowed) from the client's result or error
 * (borrowed; both NULL: the client did not answer in time). Returns malloc'd text. */
char *mcpgw_s2c_response(json_object *up_id, json_object *result, json_object *error,
                         const char *upstream, size_t *len);

/* Forward m, a request of upstream `upstream` that arrived during call c, to the client on c's
 * stream. answer(arg) fires exactly once with the response for the upstream: the client's
 * answer, or at once an error (capability not declared, 16 forwarded requests of this call
 * already pending), or an error when the client does not answer within the client-request
 * timeout. Several may be pending at once (a tool that asks sampling twice in parallel); each
 * is answered on its own. If the call ends first answer never fires (the upstream call ends
 * with it). */
void mcpgw_s2c_forward(struct mcpgw_call *c, const char *upstream,
                       const struct mcpgw_jsonrpc_msg *m, mcpgw_s2c_answer_fn answer, void *arg);

/* A client's response that matched no call's own pending request: 1 when it answered one of
 * the forwarded requests sent beside it (above), now answered upstream; else 0. */
int mcpgw_s2c_answer(struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m);

#endif
