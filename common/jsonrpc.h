/* jsonrpc.h - JSON-RPC 2.0 message codec on json-c (one message per call; no batches). */
#ifndef MCPGW_COMMON_JSONRPC_H
#define MCPGW_COMMON_JSONRPC_H

#include <json-c/json.h>
#include <stddef.h>

enum mcpgw_jsonrpc_kind {
    MCPGW_JSONRPC_REQUEST,
    MCPGW_JSONRPC_NOTIFICATION,
    MCPGW_JSONRPC_RESULT,
    MCPGW_JSONRPC_ERROR,
    MCPGW_JSONRPC_KIND_COUNT
};
const char *mcpgw_jsonrpc_kind_str(enum mcpgw_jsonrpc_kind k);

enum {
    MCPGW_JSONRPC_PARSE_ERROR = -32700,
    MCPGW_JSONRPC_INVALID_REQUEST = -32600,
    MCPGW_JSONRPC_METHOD_NOT_FOUND = -32601,
    MCPGW_JSONRPC_INVALID_PARAMS = -32602,
    MCPGW_JSONRPC_INTERNAL_ERROR = -32603,
    MCPGW_JSONRPC_RESOURCE_NOT_FOUND = -32002,
};

/* A decoded message. Borrowed pointers live as long as root. */
struct mcpgw_jsonrpc_msg {
    enum mcpgw_jsonrpc_kind kind;
    json_object *root;   /* owned; put with mcpgw_jsonrpc_msg_deinit */
    json_object *id;     /* string or integer; NULL for notifications */
    const char *method;  /* requests and notifications */
    json_object *params; /* object or array, or NULL */
    json_object *result; /* results */
    json_object *error;  /* errors */
};

/* Decode one message. Returns 0, or a JSON-RPC error code with *why set to a static sentence:
 *   -32700 for text that is not JSON (RFC 8259): malformed, not UTF-8 (overlong forms,
 *          surrogates and code points over U+10FFFF included), NaN/Infinity, "01", "1.";
 *   -32600 for valid JSON that is not one message we can take exactly: a batch, a non-object,
 *          an invalid message, an integer outside -2^63..2^64-1 (json-c would clamp it), a
 *          lone surrogate escape such as "\ud800" (json-c would make it U+FFFD).
 * So a message that decodes carries exactly the ids, numbers and strings the client sent.
 * When the message is refused but has an id it carried unchanged, *bad_id receives a new
 * reference to it (else NULL) so the error can name the id; never a changed one. */
int mcpgw_jsonrpc_parse(const char *buf, size_t len, struct mcpgw_jsonrpc_msg *m,
                        json_object **bad_id, const char **why);
void mcpgw_jsonrpc_msg_deinit(struct mcpgw_jsonrpc_msg *m);

/* Encoders return a malloc'd NUL-terminated string (free with free()); *len gets its length.
 * "takes" = takes ownership of that json_object reference; id is borrowed (copied). An error's
 * message may quote client bytes: what is not UTF-8 in it is sent as U+FFFD. */
char *mcpgw_jsonrpc_result(json_object *id, json_object *result /* takes */, size_t *len);
char *mcpgw_jsonrpc_error(json_object *id /* NULL -> null */, int code, const char *message,
                          json_object *data /* takes, may be NULL */, size_t *len);
char *mcpgw_jsonrpc_request(json_object *id, const char *method, json_object *params /* takes */,
                            size_t *len);
char *mcpgw_jsonrpc_notification(const char *method, json_object *params /* takes */, size_t *len);

/* Whether a and b (ids as decoded: strings or integers) are the same id: the same type and
 * exactly the same value (strings by length and bytes; integers over all of -2^63..2^64-1). */
int mcpgw_jsonrpc_id_equal(json_object *a, json_object *b);

/* Serialize compactly into a malloc'd string. */
char *mcpgw_json_dump(json_object *o, size_t *len);

/* Small accessors: NULL/0 when absent or of another type. */
const char *mcpgw_json_str(json_object *obj, const char *key);
json_object *mcpgw_json_obj(json_object *obj, const char *key);
json_object *mcpgw_json_arr(json_object *obj, const char *key);

/* The largest integer JavaScript represents exactly (2^53 - 1): the bound MCP puts on integers
 * that travel as text, such as mirrored Mcp-Param-* values. */
#define MCPGW_JSON_SAFE_INT_MAX 9007199254740991LL
/* When v is a JSON number with no fraction within +-MCPGW_JSON_SAFE_INT_MAX (42 and 42.0 alike,
 * as JSON Schema's "integer" reads them), set *out to it and return 1; else 0. */
int mcpgw_json_safe_int(json_object *v, int64_t *out);

#endif
