/* msg.h - every MCP message the node emits, built in one place: the node's wire vocabulary.
 *
 * Text builders return a whole JSON-RPC message as a malloc'd NUL-terminated string (free with
 * free()) and set *len to its length. Object builders return a new json_object (the caller owns
 * the reference) for a result or params that a text builder or the caller wraps. "takes" marks
 * a json_object argument whose reference the builder takes; others are borrowed. Upstream
 * federation and the 2026-07-28 revision add their messages here. */
#ifndef MCPGW_NODE_MSG_H
#define MCPGW_NODE_MSG_H

#include "node/proto.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define MCPGW_SERVER_NAME    "mcpgw"
#define MCPGW_SERVER_VERSION "0.1.0"

/* ---- JSON-RPC envelopes ---- */

/* The response to request id carrying result (takes). */
char *mcpgw_msg_result(json_object *id, json_object *result, size_t *len);
/* The error response to request id (NULL: a null id, for a request that could not be read). */
char *mcpgw_msg_error(json_object *id, int code, const char *message, size_t *len);
/* A server-to-client request with the numeric id out_id and params (takes). */
char *mcpgw_msg_request(int64_t out_id, const char *method, json_object *params, size_t *len);

/* ---- results ---- */

/* The initialize result for a session that negotiated proto: our capabilities, serverInfo and
 * instructions. */
json_object *mcpgw_msg_initialize_result(enum mcpgw_proto proto);
/* A tools/call result of one text block; is_error marks a tool-execution failure (isError). */
json_object *mcpgw_msg_tool_text(const char *text, int is_error);
/* The completion/complete result offering values (takes; a JSON array of strings). */
json_object *mcpgw_msg_completion(json_object *values);

/* ---- notifications ---- */

/* notifications/resources/updated for uri at version. The version (in _meta io.mcpgw/version)
 * lets a client, such as the load generator, count lost and duplicate updates. */
char *mcpgw_msg_resource_updated(const char *uri, uint64_t version, size_t *len);
/* notifications/resources/updated for uri of a shared upstream, sent by the node when a gap in
 * its subscription there may have lost updates (a session claimed from a dead node, the
 * upstream's session started anew). _meta io.mcpgw/resubscribed: true says so. */
char *mcpgw_msg_resource_resubscribed(const char *uri, size_t *len);
/* notifications/resources/list_changed: resources/list would answer differently now. */
char *mcpgw_msg_resource_list_changed(size_t *len);
/* notifications/message: text logged at level (one of mcpgw_msg_log_level's names). */
char *mcpgw_msg_log(const char *level, const char *text, size_t *len);
/* notifications/progress for the request that carried progress token (borrowed); total <= 0
 * and message NULL are left out. */
char *mcpgw_msg_progress(json_object *token, double progress, double total, const char *message,
                         size_t *len);
/* Index of a notifications/message level ("debug" 0 .. "emergency" 7), or -1 (also for NULL). */
int mcpgw_msg_log_level(const char *level);
/* The name of level index level, or NULL when it is none (-1: not set). */
const char *mcpgw_msg_log_level_name(int level);

/* ---- subscriptions/listen (2026-07-28) ---- */

#define MCPGW_MSG_SUBSCRIPTION_ID "io.modelcontextprotocol/subscriptionId"

/* A notification of a listen stream as a template: the message up to the value of
 * _meta[MCPGW_MSG_SUBSCRIPTION_ID], the last member of the message. A stream sends the template,
 * its subscription id (JSON text) and MCPGW_MSG_LISTEN_TAIL, so one rendering serves every
 * stream. params: takes, NULL for none. */
#define MCPGW_MSG_LISTEN_TAIL "}}}"
char *mcpgw_msg_listen_template(const char *method, json_object *params, size_t *len);
/* The template of notifications/resources/updated for uri at version (as above). */
char *mcpgw_msg_listen_resource_updated(const char *uri, uint64_t version, size_t *len);
/* The template of notifications/tasks (tasks extension) with task, a DetailedTask (takes). */
char *mcpgw_msg_listen_task_status(json_object *task, size_t *len);
/* notifications/subscriptions/acknowledged for the listen request id (borrowed) with the
 * filter the server agreed to honour (takes). node: the node serving it, in _meta
 * io.mcpgw/node (the load generator attributes streams to nodes by it, as it does sessions by
 * their id's prefix). */
char *mcpgw_msg_listen_ack(json_object *id, json_object *notifications, const char *node,
                           size_t *len);
/* The completion result that ends the listen request id gracefully (borrowed). */
char *mcpgw_msg_listen_complete(json_object *id, size_t *len);

/* ---- server-to-client requests: methods and params ---- */

#define MCPGW_MSG_SAMPLING_CREATE    "sampling/createMessage"
#define MCPGW_MSG_ELICITATION_CREATE "elicitation/create"

/* sampling/createMessage: one user message with prompt as its text. */
json_object *mcpgw_msg_sampling_params(const char *prompt, int max_tokens);
/* elicitation/create: message and the JSON schema (text) of what to ask for. */
json_object *mcpgw_msg_elicitation_params(const char *message, const char *schema);

/* ---- federation (docs/federation.md) ---- */

/* The params of the initialize the node sends to an upstream server (newest revision, no client
 * capabilities: a shared upstream session speaks for no client in particular). */
/* The capabilities a gateway's shared upstream session declares in its initialize. */
json_object *mcpgw_msg_upstream_capabilities(void);
json_object *mcpgw_msg_upstream_initialize(void);
/* notifications/cancelled for request_id (takes), with reason (may be NULL). */
char *mcpgw_msg_cancelled(json_object *request_id, const char *reason, size_t *len);
/* notifications/<what>/list_changed; what is "tools", "prompts" or "resources". */
char *mcpgw_msg_list_changed(const char *what, size_t *len);
/* A notification from an upstream server passed on to a client: method and params (takes;
 * already rewritten where the client's view differs, e.g. a progress token). */
char *mcpgw_msg_relay(const char *method, json_object *params, size_t *len);

/* ---- the 2026-07-28 era (docs/protocol-2026.md) ---- */

#define MCPGW_PROTO_2026_07_28 "2026-07-28"
/* Error codes the revision adds. */
#define MCPGW_MSG_HEADER_MISMATCH     (-32020)
#define MCPGW_MSG_MISSING_CAPABILITY  (-32021)
#define MCPGW_MSG_UNSUPPORTED_VERSION (-32022)

/* An error response carrying data (takes; may be NULL). */
char *mcpgw_msg_error_data(json_object *id, int code, const char *message, json_object *data,
                           size_t *len);
/* MissingRequiredClientCapability (-32021) to request id (borrowed): what needs extension ext,
 * which the request did not declare; data.requiredCapabilities names it. */
char *mcpgw_msg_missing_extension(json_object *id, const char *ext, const char *what, size_t *len);
/* UnsupportedProtocolVersionError's data: {"supported":[every revision we speak, newest
 * first],"requested":requested}. */
json_object *mcpgw_msg_unsupported_version_data(const char *requested);
/* The server/discover result (complete, with caching hints): the same on every node. */
json_object *mcpgw_msg_discover_result(void);
/* Make result (borrowed, changed in place) a complete result of the 2026-07-28 era:
 * resultType "complete" unless it already has a resultType, our serverInfo in _meta, and when
 * ttl_ms >= 0 the caching hints ttlMs and cacheScope ("public": the node has no authorization
 * contexts yet). */
void mcpgw_msg_complete26(json_object *result, int64_t ttl_ms);
/* An InputRequiredResult: inputRequests (takes; an object, or NULL) and requestState (NULL:
 * none). */
json_object *mcpgw_msg_input_required(json_object *input_requests, const char *request_state);
/* One entry of inputRequests: {"method":method,"params":params (takes)}. */
json_object *mcpgw_msg_input_request(const char *method, json_object *params);

#endif
