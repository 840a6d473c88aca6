/* mrtr.h - multi round-trip requests (2026-07-28): sealed requestState and the fixture tools and
 * prompt that answer with input_required results (the conformance suite's names). */
#ifndef MCPGW_NODE_MRTR_H
#define MCPGW_NODE_MRTR_H

#include <json-c/json.h>
#include <stddef.h>

struct mcpgw_node;
struct mcpgw_seal_ring;
struct mcpgw_provider_ops;

/* The 2026-07-28 era's own tools and prompt, asked after the shared provider table. Tools whose
 * `call` is NULL are answered by mcpgw_mrtr_serve (they need the whole request). */
extern const struct mcpgw_provider_ops mcpgw_mrtr_provider;

/* One request as an MRTR round sees it; everything borrowed. */
struct mcpgw_mrtr_req {
    const struct mcpgw_seal_ring *ring;
    const char *method;    /* "tools/call" or "prompts/get" */
    const char *name;      /* the tool or prompt */
    json_object *params;   /* the request's params (arguments, inputResponses, requestState) */
    json_object *caps;     /* _meta io.modelcontextprotocol/clientCapabilities */
    const char *principal; /* who asked (node/auth.h); "" without authentication */
    uint64_t ttl_ms;       /* lifetime of the requestState this round issues */
};

/* What a round answered: a result, or an error with its HTTP status. */
struct mcpgw_mrtr_answer {
    json_object *result; /* owned by the caller when set */
    int status, code;    /* an error: HTTP status and JSON-RPC code */
    char message[256];
    json_object *data; /* error data, owned by the caller, or NULL */
};

/* Serve req if it names one of this module's rounds: returns 1 with *a filled (a result, or an
 * error: tampered or expired requestState, invalid inputResponses, a missing client
 * capability), or 0 when the name is not ours. */
int mcpgw_mrtr_serve(const struct mcpgw_mrtr_req *req, struct mcpgw_mrtr_answer *a);

#endif
