/* msg.c - every MCP message the node emits (see msg.h). */
#include "node/msg.h"

#include "common/jsonrpc.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

/* ---- JSON-RPC envelopes ---- */

char *mcpgw_msg_result(json_object *id, json_object *result, size_t *len)
{
    return mcpgw_jsonrpc_result(id, result, len);
}

char *mcpgw_msg_error(json_object *id, int code, const char *message, size_t *len)
{
    return mcpgw_jsonrpc_error(id, code, message, NULL, len);
}

char *mcpgw_msg_request(int64_t out_id, const char *method, json_object *params, size_t *len)
{
    json_object *id = json_object_new_int64(out_id);
    char *json = mcpgw_jsonrpc_request(id, method, params, len);
    json_object_put(id);
    return json;
}

/* ---- results ---- */

json_object *mcpgw_msg_initialize_result(enum mcpgw_proto proto)
{
    json_object *result = json_object_new_object(), *sinfo = json_object_new_object();
    json_object_object_add(result, "protocolVersion",
                           json_object_new_string(mcpgw_proto_str(proto)));
    json_object_object_add(
        result, "capabilities",
        json_tokener_parse("{\"tools\":{\"listChanged\":true},\"resources\":{\"subscribe\":"
                           "true,\"listChanged\":true},\"prompts\":{\"listChanged\":true},"
                           "\"logging\":{},\"completions\":{}}"));
    json_object_object_add(sinfo, "name", json_object_new_string(MCPGW_SERVER_NAME));
    json_object_object_add(sinfo, "title", json_object_new_string("mcpgw gateway"));
    json_object_object_add(sinfo, "version", json_object_new_string(MCPGW_SERVER_VERSION));
    json_object_object_add(result, "serverInfo", sinfo);
    json_object_object_add(result, "instructions",
                           json_object_new_string("mcpgw gateway node. Tools: echo, node_info, "
                                                  "notes_write, sleep and test fixtures."));
    return result;
}

json_object *mcpgw_msg_tool_text(const char *text, int is_error)
{
    json_object *r = json_object_new_object(), *content = json_object_new_array(),
                *t = json_object_new_object();
    json_object_object_add(t, "type", json_object_new_string("text"));
    json_object_object_add(t, "text", json_object_new_string(text));
    json_object_array_add(content, t);
    json_object_object_add(r, "content", content);
    if (is_error)
        json_object_object_add(r, "isError", json_object_new_boolean(1));
    return r;
}

json_object *mcpgw_msg_completion(json_object *values)
{
    json_object *comp = json_object_new_object(), *r = json_object_new_object();
    json_object_object_add(comp, "total",
                           json_object_new_int((int)json_object_array_length(values)));
    json_object_object_add(comp, "values", values);
    json_object_object_add(comp, "hasMore", json_object_new_boolean(0));
    json_object_object_add(r, "completion", comp);
    return r;
}

/* ---- notifications ---- */

char *mcpgw_msg_resource_updated(const char *uri, uint64_t version, size_t *len)
{
    json_object *p = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(p, "uri", json_object_new_string(uri));
    json_object_object_add(meta, "io.mcpgw/version", json_object_new_int64((int64_t)version));
    json_object_object_add(p, "_meta", meta);
    return mcpgw_jsonrpc_notification("notifications/resources/updated", p, len);
}

char *mcpgw_msg_resource_resubscribed(const char *uri, size_t *len)
{
    json_object *p = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(p, "uri", json_object_new_string(uri));
    json_object_object_add(meta, "io.mcpgw/resubscribed", json_object_new_boolean(1));
    json_object_object_add(p, "_meta", meta);
    return mcpgw_jsonrpc_notification("notifications/resources/updated", p, len);
}

char *mcpgw_msg_resource_list_changed(size_t *len)
{
    return mcpgw_jsonrpc_notification("notifications/resources/list_changed", NULL, len);
}

static const char *const log_levels[] = {"debug", "info",     "notice", "warning",
                                         "error", "critical", "alert",  "emergency"};

const char *mcpgw_msg_log_level_name(int level)
{
    return level >= 0 && level < (int)(sizeof(log_levels) / sizeof(log_levels[0]))
               ? log_levels[level]
               : NULL;
}

int mcpgw_msg_log_level(const char *level)
{
    if (!level) /* a message without one (an upstream's): not a level */
        return -1;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(log_levels); i++)
        if (strcmp(level, log_levels[i]) == 0)
            return (int)i;
    return -1;
}

char *mcpgw_msg_log(const char *level, const char *text, size_t *len)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "level", json_object_new_string(level));
    json_object_object_add(p, "logger", json_object_new_string("mcpgw"));
    json_object_object_add(p, "data", json_object_new_string(text));
    return mcpgw_jsonrpc_notification("notifications/message", p, len);
}

char *mcpgw_msg_progress(json_object *token, double progress, double total, const char *message,
                         size_t *len)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "progressToken", json_object_get(token));
    json_object_object_add(p, "progress", json_object_new_double(progress));
    if (total > 0)
        json_object_object_add(p, "total", json_object_new_double(total));
    if (message)
        json_object_object_add(p, "message", json_object_new_string(message));
    return mcpgw_jsonrpc_notification("notifications/progress", p, len);
}

/* ---- params of server-to-client requests ---- */

json_object *mcpgw_msg_sampling_params(const char *prompt, int max_tokens)
{
    json_object *p = json_object_new_object(), *msgs = json_object_new_array(),
                *m = json_object_new_object(), *t = json_object_new_object();
    json_object_object_add(t, "type", json_object_new_string("text"));
    json_object_object_add(t, "text", json_object_new_string(prompt));
    json_object_object_add(m, "role", json_object_new_string("user"));
    json_object_object_add(m, "content", t);
    json_object_array_add(msgs, m);
    json_object_object_add(p, "messages", msgs);
    json_object_object_add(p, "maxTokens", json_object_new_int(max_tokens));
    return p;
}

json_object *mcpgw_msg_elicitation_params(const char *message, const char *schema)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "message", json_object_new_string(message));
    json_object_object_add(p, "requestedSchema", json_tokener_parse(schema));
    return p;
}

/* ---- federation: what the node sends to upstream servers, and relays from them ---- */

json_object *mcpgw_msg_upstream_capabilities(void)
{
    /* Sampling and elicitation are forwarded to the client that made the call, when it declared
     * them (s2c.c); roots are not declared: a shared session has no one client's roots. */
    return json_tokener_parse("{\"sampling\":{},\"elicitation\":{}}");
}

json_object *mcpgw_msg_upstream_initialize(void)
{
    json_object *p = json_object_new_object(), *info = json_object_new_object();
    json_object_object_add(p, "protocolVersion",
                           json_object_new_string(mcpgw_proto_str(MCPGW_PROTO_2025_11_25)));
    json_object_object_add(p, "capabilities", mcpgw_msg_upstream_capabilities());
    json_object_object_add(info, "name", json_object_new_string(MCPGW_SERVER_NAME));
    json_object_object_add(info, "version", json_object_new_string(MCPGW_SERVER_VERSION));
    json_object_object_add(p, "clientInfo", info);
    return p;
}

char *mcpgw_msg_cancelled(json_object *request_id, const char *reason, size_t *len)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "requestId", request_id);
    if (reason)
        json_object_object_add(p, "reason", json_object_new_string(reason));
    return mcpgw_jsonrpc_notification("notifications/cancelled", p, len);
}

char *mcpgw_msg_list_changed(const char *what, size_t *len)
{
    char method[64];
    snprintf(method, sizeof(method), "notifications/%s/list_changed", what);
    return mcpgw_jsonrpc_notification(method, NULL, len);
}

char *mcpgw_msg_relay(const char *method, json_object *params, size_t *len)
{
    return mcpgw_jsonrpc_notification(method, params, len);
}

/* ---- the 2026-07-28 era ---- */

char *mcpgw_msg_error_data(json_object *id, int code, const char *message, json_object *data,
                           size_t *len)
{
    return mcpgw_jsonrpc_error(id, code, message, data, len);
}

char *mcpgw_msg_missing_extension(json_object *id, const char *ext, const char *what, size_t *len)
{
    json_object *data = json_object_new_object(), *req = json_object_new_object(),
                *exts = json_object_new_object();
    char msg[300];
    json_object_object_add(exts, ext, json_object_new_object());
    json_object_object_add(req, "extensions", exts);
    json_object_object_add(data, "requiredCapabilities", req);
    snprintf(msg, sizeof(msg),
             "Missing required client capability: %.100s needs the %.100s extension", what, ext);
    return mcpgw_jsonrpc_error(id, MCPGW_MSG_MISSING_CAPABILITY, msg, data, len);
}

json_object *mcpgw_msg_unsupported_version_data(const char *requested)
{
    json_object *d = json_object_new_object(), *v = json_object_new_array();
    json_object_array_add(v, json_object_new_string(MCPGW_PROTO_2026_07_28));
    for (int i = 0; i < MCPGW_PROTO_COUNT; i++)
        json_object_array_add(v, json_object_new_string(mcpgw_proto_str((enum mcpgw_proto)i)));
    json_object_object_add(d, "supported", v);
    json_object_object_add(d, "requested", json_object_new_string(requested ? requested : ""));
    return d;
}

static json_object *server_info(void)
{
    json_object *si = json_object_new_object();
    json_object_object_add(si, "name", json_object_new_string(MCPGW_SERVER_NAME));
    json_object_object_add(si, "title", json_object_new_string("mcpgw gateway"));
    json_object_object_add(si, "version", json_object_new_string(MCPGW_SERVER_VERSION));
    return si;
}

/* Freshness of a discover result: what it says changes only with a release. */
#define DISCOVER_TTL_MS 3600000

json_object *mcpgw_msg_discover_result(void)
{
    json_object *r = json_object_new_object(), *v = json_object_new_array();
    json_object_array_add(v, json_object_new_string(MCPGW_PROTO_2026_07_28));
    for (int i = 0; i < MCPGW_PROTO_COUNT; i++)
        json_object_array_add(v, json_object_new_string(mcpgw_proto_str((enum mcpgw_proto)i)));
    json_object_object_add(r, "supportedVersions", v);
    /* subscriptions/listen (node/listen.c) serves resource updates and the resource list's
     * changes cluster-wide; tools and prompts never change at run time yet, so their
     * listChanged is not claimed (docs/listen.md). */
    json_object_object_add(r, "capabilities",
                           json_tokener_parse("{\"tools\":{},\"resources\":{\"subscribe\":true,"
                                              "\"listChanged\":true},\"prompts\":{},"
                                              "\"completions\":{},\"logging\":{},"
                                              "\"extensions\":{\"io.modelcontextprotocol/"
                                              "tasks\":{}}}"));
    json_object_object_add(r, "instructions",
                           json_object_new_string("mcpgw gateway node. Tools: echo, node_info, "
                                                  "notes_write, sleep and test fixtures."));
    mcpgw_msg_complete26(r, DISCOVER_TTL_MS);
    return r;
}

void mcpgw_msg_complete26(json_object *result, int64_t ttl_ms)
{
    json_object *meta;
    if (!json_object_is_type(result, json_type_object))
        return;
    if (!json_object_object_get_ex(result, "resultType", NULL))
        json_object_object_add(result, "resultType", json_object_new_string("complete"));
    if (!json_object_object_get_ex(result, "_meta", &meta) ||
        !json_object_is_type(meta, json_type_object)) {
        meta = json_object_new_object();
        json_object_object_add(result, "_meta", meta);
    }
    json_object_object_add(meta, "io.modelcontextprotocol/serverInfo", server_info());
    if (ttl_ms >= 0) {
        json_object_object_add(result, "ttlMs", json_object_new_int64(ttl_ms));
        json_object_object_add(result, "cacheScope", json_object_new_string("public"));
    }
}

json_object *mcpgw_msg_input_required(json_object *input_requests, const char *request_state)
{
    json_object *r = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(r, "resultType", json_object_new_string("input_required"));
    if (input_requests)
        json_object_object_add(r, "inputRequests", input_requests);
    if (request_state)
        json_object_object_add(r, "requestState", json_object_new_string(request_state));
    json_object_object_add(meta, "io.modelcontextprotocol/serverInfo", server_info());
    json_object_object_add(r, "_meta", meta);
    return r;
}

json_object *mcpgw_msg_input_request(const char *method, json_object *params)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "method", json_object_new_string(method));
    json_object_object_add(e, "params", params ? params : json_object_new_object());
    return e;
}

/* ---- subscriptions/listen ---- */

char *mcpgw_msg_listen_template(const char *method, json_object *params, size_t *len)
{
    json_object *meta;
    char *json;
    size_t n;
    if (!params)
        params = json_object_new_object();
    if (!json_object_object_get_ex(params, "_meta", &meta)) {
        meta = json_object_new_object();
        json_object_object_add(params, "_meta", meta);
    }
    /* Last member of _meta, _meta the last of params, params the last of the message: the
     * placeholder is the message's tail, cut here and replaced per stream. */
    json_object_object_add(meta, MCPGW_MSG_SUBSCRIPTION_ID, NULL);
    json = mcpgw_jsonrpc_notification(method, params, &n);
    if (n >= 7 && memcmp(json + n - 7, "null" MCPGW_MSG_LISTEN_TAIL, 7) == 0)
        n -= 7;
    json[n] = '\0';
    *len = n;
    return json;
}

char *mcpgw_msg_listen_task_status(json_object *task, size_t *len)
{
    return mcpgw_msg_listen_template("notifications/tasks", task, len);
}

char *mcpgw_msg_listen_resource_updated(const char *uri, uint64_t version, size_t *len)
{
    json_object *p = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(p, "uri", json_object_new_string(uri));
    json_object_object_add(meta, "io.mcpgw/version", json_object_new_int64((int64_t)version));
    json_object_object_add(p, "_meta", meta);
    return mcpgw_msg_listen_template("notifications/resources/updated", p, len);
}

char *mcpgw_msg_listen_ack(json_object *id, json_object *notifications, const char *node,
                           size_t *len)
{
    json_object *p = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(meta, "io.mcpgw/node", json_object_new_string(node));
    json_object_object_add(meta, MCPGW_MSG_SUBSCRIPTION_ID, json_object_get(id));
    json_object_object_add(p, "_meta", meta);
    json_object_object_add(p, "notifications", notifications);
    return mcpgw_jsonrpc_notification("notifications/subscriptions/acknowledged", p, len);
}

char *mcpgw_msg_listen_complete(json_object *id, size_t *len)
{
    json_object *r = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(r, "resultType", json_object_new_string("complete"));
    json_object_object_add(meta, MCPGW_MSG_SUBSCRIPTION_ID, json_object_get(id));
    json_object_object_add(r, "_meta", meta);
    return mcpgw_jsonrpc_result(id, r, len);
}
