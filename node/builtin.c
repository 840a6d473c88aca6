/* builtin.c - built-in tools, resources and prompts (conformance fixtures and operator tools). */
#include "node/builtin.h"

#include "common/jsonrpc.h"
#include "common/util.h"
#include "node/call.h"
#include "node/catnotify.h"
#include "node/defer.h"
#include "node/node-t.h"
#include "node/msg.h"
#include "node/notes.h"
#include "node/session.h"
#include "node/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_IMAGE_BASE64                                                                          \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJg" \
    "gg"                                                                                           \
    "=="
#define TEST_AUDIO_BASE64 "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

#define NO_ARGS "{\"type\":\"object\",\"properties\":{}}"

/* ---- small builders ---- */

static json_object *text_block(const char *text)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "type", json_object_new_string("text"));
    json_object_object_add(t, "text", json_object_new_string(text));
    return t;
}

static json_object *media_block(const char *type, const char *data, const char *mime)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "type", json_object_new_string(type));
    json_object_object_add(t, "data", json_object_new_string(data));
    json_object_object_add(t, "mimeType", json_object_new_string(mime));
    return t;
}

static json_object *resource_block(const char *uri, const char *mime, const char *text)
{
    json_object *t = json_object_new_object(), *r = json_object_new_object();
    json_object_object_add(r, "uri", json_object_new_string(uri));
    json_object_object_add(r, "mimeType", json_object_new_string(mime));
    json_object_object_add(r, "text", json_object_new_string(text));
    json_object_object_add(t, "type", json_object_new_string("resource"));
    json_object_object_add(t, "resource", r);
    return t;
}

/* {"content":[block]} */
static json_object *result_of(json_object *block)
{
    json_object *r = json_object_new_object(), *a = json_object_new_array();
    json_object_array_add(a, block);
    json_object_object_add(r, "content", a);
    return r;
}

static void reply_text(struct mcpgw_call *c, const char *text)
{
    mcpgw_call_result(c, mcpgw_msg_tool_text(text, 0));
}

/* A string argument; on a bad or missing required one, answers -32602 naming it and returns
 * NULL with *failed set. */
static const char *arg_str(struct mcpgw_call *c, json_object *args, const char *key, int required,
                           int *failed)
{
    json_object *v;
    char msg[160];
    if (!json_object_object_get_ex(args, key, &v) || v == NULL) {
        if (!required)
            return NULL;
        snprintf(msg, sizeof(msg), "Invalid params: arguments.%s is required (a string)", key);
    } else if (!json_object_is_type(v, json_type_string)) {
        snprintf(msg, sizeof(msg), "Invalid params: arguments.%s must be a string", key);
    } else {
        return json_object_get_string(v);
    }
    *failed = 1;
    mcpgw_call_error(c, MCPGW_JSONRPC_INVALID_PARAMS, msg);
    return NULL;
}

/* ---- operator and load-test tools ---- */

static void tool_echo(struct mcpgw_call *c, json_object *args)
{
    int failed = 0;
    const char *text = arg_str(c, args, "text", 1, &failed);
    if (!failed)
        reply_text(c, text);
}

static void tool_node_info(struct mcpgw_call *c, json_object *args)
{
    char text[256];
    uint64_t up = (mcpgw_now_ms() - c->node->started_ms) / 1000;
    json_object *r, *sc = json_object_new_object();
    snprintf(text, sizeof(text), "node=%s session=%s uptime_s=%llu", c->node->cfg.node_id, c->s->id,
             (unsigned long long)up);
    r = result_of(text_block(text));
    json_object_object_add(sc, "node", json_object_new_string(c->node->cfg.node_id));
    json_object_object_add(sc, "session", json_object_new_string(c->s->id));
    json_object_object_add(sc, "uptime_s", json_object_new_int64((int64_t)up));
    json_object_object_add(r, "structuredContent", sc);
    mcpgw_call_result(c, r);
}

struct note_write {
    struct mcpgw_call *c;
    char name[MCPGW_NOTE_NAME_MAX + 1];
};

static void note_written(void *arg, int err, const char *text, uint64_t version)
{
    struct note_write *w = arg;
    struct mcpgw_call *c = w->c;
    char uri[128], msg[192];
    c->busy--;
    /* The name reaches this node's list (resources/list, completions) as the store reports it. */
    if (c->aborted) {
        mcpgw_call_abort(c); /* frees it now that nothing else holds it */
        free(w);
        return;
    }
    if (err) {
        mcpgw_call_error(c, MCPGW_JSONRPC_INTERNAL_ERROR,
                         "Internal error: the session store is unavailable; the note was not "
                         "written");
        free(w);
        return;
    }
    /* The store has already notified the subscribers, atomically with the write. */
    snprintf(uri, sizeof(uri), "mcpgw://notes/%s", w->name);
    snprintf(msg, sizeof(msg), "%s is at version %llu", uri, (unsigned long long)version);
    reply_text(c, msg);
    free(w);
}

static void tool_notes_write(struct mcpgw_call *c, json_object *args)
{
    int failed = 0;
    const char *name = arg_str(c, args, "name", 1, &failed), *text;
    struct note_write *w;
    if (failed)
        return;
    text = arg_str(c, args, "text", 1, &failed);
    if (failed)
        return;
    if (!mcpgw_notes_name_ok(name, strlen(name))) {
        mcpgw_call_error(c, MCPGW_JSONRPC_INVALID_PARAMS,
                         "Invalid params: arguments.name must be 1-64 characters of "
                         "[A-Za-z0-9._-]");
        return;
    }
    if (strlen(text) > MCPGW_NOTE_TEXT_MAX) {
        mcpgw_call_error(c, MCPGW_JSONRPC_INVALID_PARAMS,
                         "Invalid params: arguments.text is over 65536 bytes");
        return;
    }
    w = xcalloc(1, sizeof(*w));
    w->c = c;
    snprintf(w->name, sizeof(w->name), "%s", name);
    c->busy++;
    mcpgw_store_note_write(c->node->store, name, text, note_written, w);
}

static void sleep_done(struct mcpgw_call *c)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "slept %d ms", c->step_no);
    reply_text(c, msg);
}

static void tool_sleep(struct mcpgw_call *c, json_object *args)
{
    json_object *v;
    int64_t ms;
    if (!json_object_object_get_ex(args, "ms", &v) || !json_object_is_type(v, json_type_int) ||
        (ms = json_object_get_int64(v)) < 0 || ms > 600000) {
        mcpgw_call_error(c, MCPGW_JSONRPC_INVALID_PARAMS,
                         "Invalid params: arguments.ms must be an integer from 0 to 600000");
        return;
    }
    c->step_no = (int)ms;
    mcpgw_call_after(c, (uint32_t)ms, sleep_done);
}

/* ---- conformance fixtures ---- */

static void tool_simple_text(struct mcpgw_call *c, json_object *args)
{
    reply_text(c, "This is a simple text response for testing.");
}

static void tool_image(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_result(c, result_of(media_block("image", TEST_IMAGE_BASE64, "image/png")));
}

static void tool_audio(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_result(c, result_of(media_block("audio", TEST_AUDIO_BASE64, "audio/wav")));
}

static void tool_embedded(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_result(c, result_of(resource_block("test://embedded-resource", "text/plain",
                                                  "This is an embedded resource content.")));
}

static void tool_multiple(struct mcpgw_call *c, json_object *args)
{
    json_object *r = result_of(text_block("Multiple content types test:")), *a;
    json_object_object_get_ex(r, "content", &a);
    json_object_array_add(a, media_block("image", TEST_IMAGE_BASE64, "image/png"));
    json_object_array_add(a, resource_block("test://mixed-content-resource", "application/json",
                                            "{\"test\":\"data\",\"value\":123}"));
    mcpgw_call_result(c, r);
}

static void logging_step(struct mcpgw_call *c)
{
    static const char *const msgs[] = {"Tool execution started", "Tool processing data",
                                       "Tool execution completed"};
    mcpgw_call_log(c, "info", msgs[c->step_no++]);
    if (c->step_no < 3)
        mcpgw_call_after(c, 50, logging_step);
    else
        reply_text(c, "Tool with logging executed successfully");
}

static void tool_logging(struct mcpgw_call *c, json_object *args)
{
    logging_step(c);
}

static void progress_step(struct mcpgw_call *c)
{
    char msg[64];
    double p = c->step_no * 50.0;
    snprintf(msg, sizeof(msg), "Completed step %d of 100", (int)p);
    mcpgw_call_progress(c, p, 100, msg);
    if (++c->step_no < 3) {
        mcpgw_call_after(c, 50, progress_step);
        return;
    }
    reply_text(c,
               c->progress_token ? json_object_get_string(c->progress_token) : "no progress token");
}

static void tool_progress(struct mcpgw_call *c, json_object *args)
{
    progress_step(c);
}

static void tool_error(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_tool_error(c, "This tool intentionally returns an error for testing");
}

static int client_failed(struct mcpgw_call *c, const char *what, json_object *result,
                         json_object *error)
{
    if (error) {
        mcpgw_call_tool_error(c, "the client answered %s with an error: %s", what,
                              mcpgw_json_str(error, "message") ? mcpgw_json_str(error, "message")
                                                               : "(no message)");
        return 1;
    }
    if (!result) {
        mcpgw_call_tool_error(c, "the client did not answer %s within %llu ms", what,
                              (unsigned long long)c->node->cfg.client_request_timeout_ms);
        return 1;
    }
    return 0;
}

static void sampling_reply(struct mcpgw_call *c, json_object *result, json_object *error)
{
    char *msg;
    const char *text;
    size_t n;
    if (client_failed(c, "sampling/createMessage", result, error))
        return;
    text = mcpgw_json_str(mcpgw_json_obj(result, "content"), "text");
    n = strlen(text ? text : "") + 32;
    msg = xmalloc(n);
    snprintf(msg, n, "LLM response: %s", text ? text : "");
    reply_text(c, msg);
    free(msg);
}

static void tool_sampling(struct mcpgw_call *c, json_object *args)
{
    int failed = 0;
    const char *prompt = arg_str(c, args, "prompt", 1, &failed);
    if (failed)
        return;
    if (!(c->s->client_caps & MCPGW_CAP_SAMPLING)) {
        mcpgw_call_tool_error(c, "the client did not declare the sampling capability");
        return;
    }
    mcpgw_call_request(c, MCPGW_MSG_SAMPLING_CREATE, mcpgw_msg_sampling_params(prompt, 100),
                       sampling_reply);
}

static void elicit_reply_common(struct mcpgw_call *c, json_object *result, json_object *error,
                                const char *prefix)
{
    json_object *content = mcpgw_json_obj(result, "content");
    const char *action = mcpgw_json_str(result, "action");
    char *cj, *msg;
    size_t n;
    if (client_failed(c, "elicitation/create", result, error))
        return;
    cj = content ? mcpgw_json_dump(content, NULL) : xstrdup("{}");
    n = strlen(cj) + 96;
    msg = xmalloc(n);
    snprintf(msg, n, "%s: action=%s, content=%s", prefix, action ? action : "(none)", cj);
    reply_text(c, msg);
    free(msg);
    free(cj);
}

static void elicit_user_reply(struct mcpgw_call *c, json_object *result, json_object *error)
{
    elicit_reply_common(c, result, error, "User response");
}

static void elicit_done_reply(struct mcpgw_call *c, json_object *result, json_object *error)
{
    elicit_reply_common(c, result, error, "Elicitation completed");
}

static void elicit(struct mcpgw_call *c, const char *message, const char *schema,
                   mcpgw_call_reply_fn reply)
{
    if (!(c->s->client_caps & MCPGW_CAP_ELICITATION)) {
        mcpgw_call_tool_error(c, "the client did not declare the elicitation capability");
        return;
    }
    mcpgw_call_request(c, MCPGW_MSG_ELICITATION_CREATE,
                       mcpgw_msg_elicitation_params(message, schema), reply);
}

static void tool_elicitation(struct mcpgw_call *c, json_object *args)
{
    int failed = 0;
    const char *message = arg_str(c, args, "message", 1, &failed);
    if (failed)
        return;
    elicit(c, message,
           "{\"type\":\"object\",\"properties\":{\"username\":{\"type\":\"string\",\"description\":"
           "\"User's response\"},\"email\":{\"type\":\"string\",\"description\":\"User's email "
           "address\"}},\"required\":[\"username\",\"email\"]}",
           elicit_user_reply);
}

static void tool_sep1034(struct mcpgw_call *c, json_object *args)
{
    elicit(c, "Please review and update the form fields with defaults",
           "{\"type\":\"object\",\"properties\":{"
           "\"name\":{\"type\":\"string\",\"description\":\"User name\",\"default\":\"John Doe\"},"
           "\"age\":{\"type\":\"integer\",\"description\":\"User age\",\"default\":30},"
           "\"score\":{\"type\":\"number\",\"description\":\"User score\",\"default\":95.5},"
           "\"status\":{\"type\":\"string\",\"description\":\"User status\",\"enum\":[\"active\","
           "\"inactive\",\"pending\"],\"default\":\"active\"},"
           "\"verified\":{\"type\":\"boolean\",\"description\":\"Verification status\","
           "\"default\":true}},\"required\":[]}",
           elicit_done_reply);
}

static void tool_sep1330(struct mcpgw_call *c, json_object *args)
{
    elicit(c, "Please select options from the enum fields",
           "{\"type\":\"object\",\"properties\":{"
           "\"untitledSingle\":{\"type\":\"string\",\"description\":\"Select one option\","
           "\"enum\":[\"option1\",\"option2\",\"option3\"]},"
           "\"titledSingle\":{\"type\":\"string\",\"description\":\"Select one option with "
           "titles\",\"oneOf\":[{\"const\":\"value1\",\"title\":\"First Option\"},{\"const\":"
           "\"value2\",\"title\":\"Second Option\"},{\"const\":\"value3\",\"title\":\"Third "
           "Option\"}]},"
           "\"legacyEnum\":{\"type\":\"string\",\"description\":\"Select one option (legacy)\","
           "\"enum\":[\"opt1\",\"opt2\",\"opt3\"],\"enumNames\":[\"Option One\",\"Option Two\","
           "\"Option Three\"]},"
           "\"untitledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options\","
           "\"minItems\":1,\"maxItems\":3,\"items\":{\"type\":\"string\",\"enum\":[\"option1\","
           "\"option2\",\"option3\"]}},"
           "\"titledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options with "
           "titles\",\"minItems\":1,\"maxItems\":3,\"items\":{\"anyOf\":[{\"const\":\"value1\","
           "\"title\":\"First Choice\"},{\"const\":\"value2\",\"title\":\"Second Choice\"},"
           "{\"const\":\"value3\",\"title\":\"Third Choice\"}]}}},\"required\":[]}",
           elicit_done_reply);
}

static void tool_json_schema(struct mcpgw_call *c, json_object *args)
{
    char *aj = mcpgw_json_dump(args, NULL), *msg;
    size_t n = strlen(aj) + 64;
    msg = xmalloc(n);
    snprintf(msg, n, "JSON Schema 2020-12 tool called with: %s", aj);
    reply_text(c, msg);
    free(msg);
    free(aj);
}

static void reconnection_done(struct mcpgw_call *c)
{
    reply_text(c, "Reconnection test completed successfully. If you received this, the client "
                  "properly reconnected after stream closure.");
}

static void tool_reconnection(struct mcpgw_call *c, json_object *args)
{
    mcpgw_call_detach(c);
    mcpgw_call_after(c, 100, reconnection_done);
}

/* Conformance fixtures for the list-change checks: announce a change of the tools (prompts) list
 * to every client of the cluster, recorded and delivered as an upstream's change is
 * (node/catnotify.c). The built-in lists themselves never change; the notification only tells
 * clients to list again, as one after a new note does. */
static void tool_trigger_tools(struct mcpgw_call *c, json_object *args)
{
    mcpgw_catnotify_drill(c->node, MCPGW_LISTEN_TOOLS);
    reply_text(c, "tools/list_changed announced");
}

static void tool_trigger_prompts(struct mcpgw_call *c, json_object *args)
{
    mcpgw_catnotify_drill(c->node, MCPGW_LISTEN_PROMPTS);
    reply_text(c, "prompts/list_changed announced");
}

static const struct mcpgw_tool tools[] = {
    {"echo", "Echo", "Returns the given text unchanged (for load tests and diagnostics).",
     "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"description\":\"Text "
     "to return\"}},\"required\":[\"text\"]}",
     NULL, tool_echo},
    {"node_info", "Node info",
     "Returns the id of the gateway node serving this session, the session id and the node's "
     "uptime.",
     NO_ARGS,
     "{\"type\":\"object\",\"properties\":{\"node\":{\"type\":\"string\"},\"session\":{\"type\":"
     "\"string\"},\"uptime_s\":{\"type\":\"integer\"}},\"required\":[\"node\",\"session\","
     "\"uptime_s\"]}",
     tool_node_info},
    {"notes_write", "Write a note",
     "Sets the text of the shared note mcpgw://notes/{name} and notifies every subscriber of "
     "that URI.",
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"description\":\"Note "
     "name: 1-64 characters of [A-Za-z0-9._-]\"},\"text\":{\"type\":\"string\",\"description\":"
     "\"New text of the note\"}},\"required\":[\"name\",\"text\"]}",
     NULL, tool_notes_write, 1},
    {"sleep", "Sleep",
     "Waits the given number of milliseconds, then answers (for timeout and cancellation tests).",
     "{\"type\":\"object\",\"properties\":{\"ms\":{\"type\":\"integer\",\"minimum\":0,"
     "\"maximum\":600000}},\"required\":[\"ms\"]}",
     NULL, tool_sleep},
    {"test_simple_text", NULL, "Tests simple text content response", NO_ARGS, NULL,
     tool_simple_text},
    {"test_image_content", NULL, "Tests image content response", NO_ARGS, NULL, tool_image},
    {"test_audio_content", NULL, "Tests audio content response", NO_ARGS, NULL, tool_audio},
    {"test_embedded_resource", NULL, "Tests embedded resource content response", NO_ARGS, NULL,
     tool_embedded},
    {"test_multiple_content_types", NULL,
     "Tests response with multiple content types (text, image, resource)", NO_ARGS, NULL,
     tool_multiple},
    {"test_tool_with_logging", NULL, "Tests tool that emits log messages during execution", NO_ARGS,
     NULL, tool_logging},
    {"test_tool_with_progress", NULL, "Tests tool that reports progress notifications", NO_ARGS,
     NULL, tool_progress},
    {"test_error_handling", NULL, "Tests error response handling", NO_ARGS, NULL, tool_error},
    {"test_sampling", NULL, "Tests server-initiated sampling (LLM completion request)",
     "{\"type\":\"object\",\"properties\":{\"prompt\":{\"type\":\"string\",\"description\":\"The "
     "prompt to send to the LLM\"}},\"required\":[\"prompt\"]}",
     NULL, tool_sampling},
    {"test_elicitation", NULL, "Tests server-initiated elicitation (user input request)",
     "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\",\"description\":"
     "\"The message to show the user\"}},\"required\":[\"message\"]}",
     NULL, tool_elicitation},
    {"test_elicitation_sep1034_defaults", NULL,
     "Tests elicitation with default values per SEP-1034", NO_ARGS, NULL, tool_sep1034},
    {"test_elicitation_sep1330_enums", NULL,
     "Tests elicitation with enum schema improvements per SEP-1330", NO_ARGS, NULL, tool_sep1330},
    {"test_reconnection", NULL,
     "Tests SSE stream disconnection and client reconnection (SEP-1699): the response stream "
     "closes after its priming event and the result is replayed on GET with Last-Event-ID",
     NO_ARGS, NULL, tool_reconnection},
    {"test_trigger_tool_change", NULL,
     "Tests tools/list_changed: announces a change of the tool list to every listen stream and "
     "session of the cluster",
     NO_ARGS, NULL, tool_trigger_tools},
    {"test_trigger_prompt_change", NULL,
     "Tests prompts/list_changed: announces a change of the prompt list to every listen stream "
     "and session of the cluster",
     NO_ARGS, NULL, tool_trigger_prompts},
    {"json_schema_2020_12_tool", NULL,
     "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
     "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
     "\"$defs\":{\"address\":{\"$anchor\":\"addressDef\",\"type\":\"object\",\"properties\":{"
     "\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"}}}},\"properties\":{"
     "\"name\":{\"type\":\"string\"},\"address\":{\"$ref\":\"#/$defs/address\"},"
     "\"contactMethod\":{\"type\":\"string\",\"enum\":[\"phone\",\"email\"]},\"phone\":{"
     "\"type\":\"string\"},\"email\":{\"type\":\"string\"}},\"allOf\":[{\"anyOf\":[{"
     "\"required\":[\"phone\"]},{\"required\":[\"email\"]}]}],\"if\":{\"properties\":{"
     "\"contactMethod\":{\"const\":\"phone\"}},\"required\":[\"contactMethod\"]},\"then\":{"
     "\"required\":[\"phone\"]},\"else\":{\"required\":[\"email\"]},"
     "\"additionalProperties\":false}",
     NULL, tool_json_schema},
};

static const struct mcpgw_tool *tool_named(struct mcpgw_node *n, const char *name)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(tools); i++)
        if (strcmp(tools[i].name, name) == 0)
            return &tools[i];
    return NULL;
}

static void list_tools(struct mcpgw_node *n, json_object *a)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(tools); i++) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "name", json_object_new_string(tools[i].name));
        if (tools[i].title)
            json_object_object_add(t, "title", json_object_new_string(tools[i].title));
        json_object_object_add(t, "description", json_object_new_string(tools[i].description));
        json_object_object_add(t, "inputSchema", json_tokener_parse(tools[i].input_schema));
        if (tools[i].output_schema)
            json_object_object_add(t, "outputSchema", json_tokener_parse(tools[i].output_schema));
        if (tools[i].title) {
            /* Our own tools say whether a retry may run them again (docs/replication.md). */
            json_object *an = json_object_new_object();
            json_object_object_add(an, "readOnlyHint",
                                   json_object_new_boolean(!tools[i].side_effects));
            json_object_object_add(an, "idempotentHint",
                                   json_object_new_boolean(!tools[i].side_effects));
            json_object_object_add(t, "annotations", an);
        }
        json_object_array_add(a, t);
    }
}

/* ---- resources ---- */

struct static_resource {
    const char *uri, *name, *title, *description, *mime;
    const char *text; /* NULL: binary (the test image) */
};

static const struct static_resource resources[] = {
    {"test://static-text", "static-text", "Static Text Resource",
     "A static text resource for testing", "text/plain",
     "This is the content of the static text resource."},
    {"test://static-binary", "static-binary", "Static Binary Resource",
     "A static binary resource (image) for testing", "image/png", NULL},
    {"test://watched-resource", "watched-resource", "Watched Resource",
     "A resource clients may subscribe to", "text/plain", "Watched resource content"},
};

static json_object *resource_desc(const char *uri, const char *name, const char *title,
                                  const char *description, const char *mime)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "uri", json_object_new_string(uri));
    json_object_object_add(r, "name", json_object_new_string(name));
    if (title)
        json_object_object_add(r, "title", json_object_new_string(title));
    json_object_object_add(r, "description", json_object_new_string(description));
    json_object_object_add(r, "mimeType", json_object_new_string(mime));
    return r;
}

static void list_resources(struct mcpgw_node *n, json_object *a)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(resources); i++)
        json_object_array_add(a,
                              resource_desc(resources[i].uri, resources[i].name, resources[i].title,
                                            resources[i].description, resources[i].mime));
    for (size_t i = 0; i < mcpgw_notes_count(n->notes); i++) {
        char uri[128];
        const char *name = mcpgw_notes_name_at(n->notes, i);
        snprintf(uri, sizeof(uri), "mcpgw://notes/%s", name);
        json_object_array_add(
            a, resource_desc(uri, name, NULL, "A note on the shared board", "text/plain"));
    }
}

static void list_templates(struct mcpgw_node *n, json_object *a)
{
    json_object *t;
    t = json_object_new_object();
    json_object_object_add(t, "uriTemplate", json_object_new_string("test://template/{id}/data"));
    json_object_object_add(t, "name", json_object_new_string("template"));
    json_object_object_add(t, "title", json_object_new_string("Resource Template"));
    json_object_object_add(
        t, "description",
        json_object_new_string("A resource template with parameter substitution"));
    json_object_object_add(t, "mimeType", json_object_new_string("application/json"));
    json_object_array_add(a, t);
    t = json_object_new_object();
    json_object_object_add(t, "uriTemplate", json_object_new_string("mcpgw://notes/{name}"));
    json_object_object_add(t, "name", json_object_new_string("notes"));
    json_object_object_add(t, "title", json_object_new_string("Shared notes"));
    json_object_object_add(t, "description",
                           json_object_new_string("Notes written with the notes_write tool; "
                                                  "subscribe to be told of every change"));
    json_object_object_add(t, "mimeType", json_object_new_string("text/plain"));
    json_object_array_add(a, t);
}

static json_object *contents_of(const char *uri, const char *mime, const char *key,
                                const char *value)
{
    json_object *a = json_object_new_array(), *c = json_object_new_object();
    json_object_object_add(c, "uri", json_object_new_string(uri));
    json_object_object_add(c, "mimeType", json_object_new_string(mime));
    json_object_object_add(c, key, json_object_new_string(value));
    json_object_array_add(a, c);
    return a;
}

/* "test://template/{id}/data" with id one non-empty path segment: returns id's length. */
static size_t template_id(const char *uri, const char **id)
{
    static const char pre[] = "test://template/", suf[] = "/data";
    size_t ul = strlen(uri), pl = sizeof(pre) - 1, sl = sizeof(suf) - 1;
    if (ul <= pl + sl || strncmp(uri, pre, pl) != 0 || strcmp(uri + ul - sl, suf) != 0)
        return 0;
    *id = uri + pl;
    if (memchr(*id, '/', ul - pl - sl))
        return 0;
    return ul - pl - sl;
}

static json_object *read_static(const char *uri)
{
    const char *id;
    size_t idl;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(resources); i++)
        if (strcmp(resources[i].uri, uri) == 0)
            return resources[i].text
                       ? contents_of(uri, resources[i].mime, "text", resources[i].text)
                       : contents_of(uri, resources[i].mime, "blob", TEST_IMAGE_BASE64);
    if ((idl = template_id(uri, &id)) > 0) {
        json_object *o = json_object_new_object(), *r;
        char *idz = xstrndup(id, idl), *data, *text;
        size_t dl = idl + 16;
        data = xmalloc(dl);
        snprintf(data, dl, "Data for ID: %s", idz);
        json_object_object_add(o, "id", json_object_new_string(idz));
        json_object_object_add(o, "templateTest", json_object_new_boolean(1));
        json_object_object_add(o, "data", json_object_new_string(data));
        text = mcpgw_json_dump(o, NULL);
        r = contents_of(uri, "application/json", "text", text);
        json_object_put(o);
        free(idz);
        free(data);
        free(text);
        return r;
    }
    return NULL;
}

static int is_note_uri(const char *uri)
{
    return strncmp(uri, "mcpgw://notes/", 14) == 0 &&
           mcpgw_notes_name_ok(uri + 14, strlen(uri + 14));
}

struct note_read {
    struct mcpgw_defer *d;
    char uri[128];
};

static void on_note_read(void *arg, int err, const char *text, uint64_t version)
{
    struct note_read *nr = arg;
    json_object *r;
    if (text) {
        r = json_object_new_object();
        json_object_object_add(r, "contents", contents_of(nr->uri, "text/plain", "text", text));
        mcpgw_defer_result(nr->d, r);
    } else if (err == MCPGW_STORE_GONE) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Resource not found: %s", nr->uri);
        mcpgw_defer_error(nr->d, MCPGW_JSONRPC_RESOURCE_NOT_FOUND, msg);
    } else {
        mcpgw_defer_error(nr->d, MCPGW_JSONRPC_INTERNAL_ERROR,
                          "Internal error: the session store is unavailable");
    }
    free(nr);
}

int mcpgw_builtin_has_uri(const char *uri)
{
    const char *id;
    if (is_note_uri(uri) || template_id(uri, &id) > 0)
        return 1;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(resources); i++)
        if (strcmp(resources[i].uri, uri) == 0)
            return 1;
    return 0;
}

static int read_resource(struct mcpgw_node *n, const char *uri, struct mcpgw_defer *d)
{
    json_object *contents, *r;
    if (is_note_uri(uri)) {
        /* Notes live in the store: any node's write is read here. */
        struct note_read *nr = xcalloc(1, sizeof(*nr));
        snprintf(nr->uri, sizeof(nr->uri), "%s", uri);
        nr->d = d;
        mcpgw_store_note_read(n->store, uri + 14, on_note_read, nr);
        return 1;
    }
    if (!(contents = read_static(uri)))
        return 0;
    r = json_object_new_object();
    json_object_object_add(r, "contents", contents);
    mcpgw_defer_result(d, r);
    return 1;
}

/* Every resource may be watched; only notes ever change (their updates are store events). */
static int subscribe(struct mcpgw_node *n, const char *uri, int on)
{
    const char *id;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(resources); i++)
        if (strcmp(resources[i].uri, uri) == 0)
            return 1;
    if (template_id(uri, &id) > 0)
        return 1;
    return is_note_uri(uri);
}

/* ---- prompts ---- */

static void list_prompts(struct mcpgw_node *n, json_object *arr)
{
    json_object *all = json_tokener_parse(
        "[{\"name\":\"test_simple_prompt\",\"title\":\"Simple Test Prompt\",\"description\":\"A "
        "simple prompt without arguments\"},"
        "{\"name\":\"test_prompt_with_arguments\",\"title\":\"Prompt With Arguments\","
        "\"description\":\"A prompt with required arguments\",\"arguments\":[{\"name\":\"arg1\","
        "\"description\":\"First test argument\",\"required\":true},{\"name\":\"arg2\","
        "\"description\":\"Second test argument\",\"required\":true}]},"
        "{\"name\":\"test_prompt_with_embedded_resource\",\"title\":\"Prompt With Embedded "
        "Resource\",\"description\":\"A prompt that includes an embedded resource\","
        "\"arguments\":[{\"name\":\"resourceUri\",\"description\":\"URI of the resource to "
        "embed\",\"required\":true}]},"
        "{\"name\":\"test_prompt_with_image\",\"title\":\"Prompt With Image\",\"description\":\"A "
        "prompt that includes image content\"}]");
    for (size_t i = 0; i < json_object_array_length(all); i++)
        json_object_array_add(arr, json_object_get(json_object_array_get_idx(all, i)));
    json_object_put(all);
}

static json_object *message(const char *role, json_object *content)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", content);
    return m;
}

static const char *prompt_arg(json_object *args, const char *key, char *why, size_t whylen)
{
    const char *v = mcpgw_json_str(args, key);
    if (!v)
        snprintf(why, whylen, "Invalid params: arguments.%s is required (a string)", key);
    return v;
}

static int get_prompt(struct mcpgw_node *n, const char *name, json_object *args,
                      struct mcpgw_defer *d)
{
    json_object *msgs = json_object_new_array(), *result;
    char why[200];
    size_t whylen = sizeof(why);
    if (strcmp(name, "test_simple_prompt") == 0) {
        json_object_array_add(msgs,
                              message("user", text_block("This is a simple prompt for testing.")));
    } else if (strcmp(name, "test_prompt_with_arguments") == 0) {
        const char *a1 = prompt_arg(args, "arg1", why, whylen), *a2;
        char *text;
        size_t tl;
        if (!a1 || !(a2 = prompt_arg(args, "arg2", why, whylen)))
            goto bad_params;
        tl = strlen(a1) + strlen(a2) + 64;
        text = xmalloc(tl);
        snprintf(text, tl, "Prompt with arguments: arg1='%s', arg2='%s'", a1, a2);
        json_object_array_add(msgs, message("user", text_block(text)));
        free(text);
    } else if (strcmp(name, "test_prompt_with_embedded_resource") == 0) {
        const char *uri = prompt_arg(args, "resourceUri", why, whylen);
        if (!uri)
            goto bad_params;
        json_object_array_add(
            msgs, message("user", resource_block(uri, "text/plain",
                                                 "Embedded resource content for testing.")));
        json_object_array_add(
            msgs, message("user", text_block("Please process the embedded resource above.")));
    } else if (strcmp(name, "test_prompt_with_image") == 0) {
        json_object_array_add(
            msgs, message("user", media_block("image", TEST_IMAGE_BASE64, "image/png")));
        json_object_array_add(msgs, message("user", text_block("Please analyze the image above.")));
    } else {
        json_object_put(msgs);
        return 0;
    }
    result = json_object_new_object();
    json_object_object_add(result, "messages", msgs);
    mcpgw_defer_result(d, result);
    return 1;
bad_params:
    json_object_put(msgs);
    mcpgw_defer_error(d, MCPGW_JSONRPC_INVALID_PARAMS, why);
    return 1;
}

/* Note names complete the notes template; other arguments have no known values. */
static int complete(struct mcpgw_node *n, const char *ref_type, const char *ref_name,
                    const char *arg, const char *value, json_object *vals)
{
    size_t vl = strlen(value);
    if (strcmp(ref_type, "ref/resource") != 0 || strcmp(ref_name, "mcpgw://notes/{name}") != 0)
        return 0;
    if (strcmp(arg, "name") == 0) {
        for (size_t i = 0; i < mcpgw_notes_count(n->notes) && json_object_array_length(vals) < 100;
             i++) {
            const char *nm = mcpgw_notes_name_at(n->notes, i);
            if (strncmp(nm, value, vl) == 0)
                json_object_array_add(vals, json_object_new_string(nm));
        }
    }
    return 1;
}

const struct mcpgw_provider_ops mcpgw_builtin_provider = {
    .name = "builtin",
    .list_tools = list_tools,
    .list_resources = list_resources,
    .list_templates = list_templates,
    .list_prompts = list_prompts,
    .tool = tool_named,
    .read = read_resource,
    .get_prompt = get_prompt,
    .complete = complete,
    .subscribe = subscribe,
};
