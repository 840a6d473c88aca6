/* mrtr.c - multi round-trip requests: fixture rounds and their sealed requestState (see mrtr.h).
 *
 * A fixture is a list of rounds; a round is a list of input requests. The client's retry carries
 * the answers (inputResponses) and the requestState we sealed: the round reached and what the
 * earlier rounds collected. The state is bound to the method, the name, the arguments and the
 * principal and expires, so it cannot be carried to another request, another user or kept for
 * later, and any node holding the cluster key ring can continue the round. */
#include "node/mrtr.h"

#include "common/jsonrpc.h"
#include "common/seal.h"
#include "common/util.h"
#include "node/call.h"
#include "node/msg.h"
#include "node/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum input_kind { IN_ELICIT, IN_SAMPLE, IN_ROOTS, IN_KIND_COUNT };

/* The capability a kind of input request needs, as clientCapabilities names it. */
static const char *const kind_cap[IN_KIND_COUNT] = {"elicitation", "sampling", "roots"};
static const char *const kind_method[IN_KIND_COUNT] = {MCPGW_MSG_ELICITATION_CREATE,
                                                       MCPGW_MSG_SAMPLING_CREATE, "roots/list"};

struct input {
    const char *key;
    enum input_kind kind;
    const char *text;  /* elicitation message or sampling prompt */
    const char *field; /* elicitation: the one string/boolean property asked for */
    const char *type;  /* its JSON Schema type */
};

#define MAX_ROUNDS 2
#define MAX_INPUTS 3

struct fixture {
    const char *name;
    const char *description;
    unsigned is_prompt;
    /* 1: a client without one round's capabilities gets MissingRequiredClientCapability;
     * 0: inputs the client cannot answer are left out (a round with none is skipped). */
    unsigned strict;
    const char *done; /* the final text starts with this */
    struct input rounds[MAX_ROUNDS][MAX_INPUTS];
};

#define ASK_NAME(key, msg)                                                                         \
    {                                                                                              \
        key, IN_ELICIT, msg, "name", "string"                                                      \
    }

static const struct fixture fixtures[] = {
    {"test_input_required_result_elicitation",
     "Asks for the user's name by elicitation (input_required), then greets",
     0,
     1,
     "Hello,",
     {{ASK_NAME("user_name", "What is your name?")}}},
    {"test_input_required_result_sampling",
     "Asks the client's model a question (input_required sampling), then reports the answer",
     0,
     1,
     "The model answered:",
     {{{"capital_question", IN_SAMPLE, "What is the capital of France?", NULL, NULL}}}},
    {"test_input_required_result_list_roots",
     "Asks for the client's roots (input_required roots/list), then lists them",
     0,
     1,
     "Client roots:",
     {{{"client_roots", IN_ROOTS, NULL, NULL, NULL}}}},
    {"test_input_required_result_request_state",
     "Asks for a confirmation with a sealed requestState; answers state-ok once it verifies",
     0,
     1,
     "state-ok: the sealed requestState verified;",
     {{{"confirm", IN_ELICIT, "Please confirm", "ok", "boolean"}}}},
    {"test_input_required_result_multiple_inputs",
     "Asks for elicitation, sampling and roots in one input_required result",
     0,
     0,
     "All inputs received:",
     {{ASK_NAME("user_name", "What is your name?"),
       {"greeting", IN_SAMPLE, "Generate a greeting", NULL, NULL},
       {"client_roots", IN_ROOTS, NULL, NULL, NULL}}}},
    {"test_input_required_result_multi_round",
     "Two elicitation rounds carried by an updated requestState, then a result",
     0,
     1,
     "Both rounds answered:",
     {{ASK_NAME("step1", "Step 1: What is your name?")},
      {{"step2", IN_ELICIT, "Step 2: What is your favorite color?", "color", "string"}}}},
    {"test_input_required_result_tampered_state",
     "An elicitation round whose requestState is integrity-protected: altered state is refused",
     0,
     1,
     "State verified:",
     {{ASK_NAME("user_name", "What is your name?")}}},
    {"test_input_required_result_capabilities",
     "Asks only for the inputs the client declared capabilities for",
     0,
     0,
     "Inputs received:",
     {{ASK_NAME("user_name", "What is your name?"),
       {"greeting", IN_SAMPLE, "Generate a greeting", NULL, NULL},
       {"client_roots", IN_ROOTS, NULL, NULL, NULL}}}},
    {"test_missing_capability",
     "Needs the sampling capability: a client without it gets MissingRequiredClientCapability",
     0,
     1,
     "The model answered:",
     {{{"llm", IN_SAMPLE, "Say hello", NULL, NULL}}}},
    {"test_streaming_elicitation",
     "Asks for input only through an input_required result, never a request on the stream",
     0,
     1,
     "Hello,",
     {{ASK_NAME("user_name", "What is your name?")}}},
    {"test_input_required_result_prompt",
     "A prompt that asks for its context by elicitation before it is built",
     1,
     1,
     "Use this context:",
     {{{"user_context", IN_ELICIT, "What context should the prompt use?", "context", "string"}}}},
};

static const struct fixture *find(const char *name, unsigned is_prompt)
{
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(fixtures); i++)
        if (fixtures[i].is_prompt == is_prompt && strcmp(fixtures[i].name, name) == 0)
            return &fixtures[i];
    return NULL;
}

static int has_cap(json_object *caps, enum input_kind k)
{
    return mcpgw_json_obj(caps, kind_cap[k]) != NULL;
}

static json_object *input_params(const struct input *in)
{
    if (in->kind == IN_SAMPLE)
        return mcpgw_msg_sampling_params(in->text, 100);
    if (in->kind == IN_ROOTS)
        return json_object_new_object();
    {
        char schema[256];
        json_object *p;
        snprintf(schema, sizeof(schema),
                 "{\"type\":\"object\",\"properties\":{\"%s\":{\"type\":\"%s\"}},"
                 "\"required\":[\"%s\"]}",
                 in->field, in->type, in->field);
        p = mcpgw_msg_elicitation_params(in->text, schema);
        json_object_object_add(p, "mode", json_object_new_string("form"));
        return p;
    }
}

static void fail(struct mcpgw_mrtr_answer *a, int status, int code, const char *fmt,
                 const char *arg)
{
    a->status = status;
    a->code = code;
    snprintf(a->message, sizeof(a->message), fmt, arg);
}

/* The client's answer to one input, summarised as text. Returns 1 (answered, *text set), 0 (not
 * answered), -1 (an answer that is not a result of the kind asked for: a filled). */
static int answer_of(const struct input *in, json_object *responses, char *text, size_t len,
                     struct mcpgw_mrtr_answer *a)
{
    json_object *r, *v;
    if (!responses || !json_object_object_get_ex(responses, in->key, &r))
        return 0;
    if (!json_object_is_type(r, json_type_object)) {
        fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS,
             "Invalid params: inputResponses.%s must be a result object", in->key);
        return -1;
    }
    switch (in->kind) {
    case IN_ELICIT: {
        const char *action = mcpgw_json_str(r, "action");
        if (!action ||
            (strcmp(action, "accept") && strcmp(action, "decline") && strcmp(action, "cancel"))) {
            fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS,
                 "Invalid params: inputResponses.%s.action must be accept, decline or cancel",
                 in->key);
            return -1;
        }
        v = strcmp(action, "accept") == 0 ? mcpgw_json_obj(r, "content") : NULL;
        if (v && json_object_object_get_ex(v, in->field, &v) && v)
            snprintf(text, len, "%s", json_object_get_string(v));
        else
            snprintf(text, len, "(%s)", action);
        return 1;
    }
    case IN_SAMPLE:
        v = mcpgw_json_obj(r, "content");
        if (!v && !mcpgw_json_arr(r, "content")) {
            fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS,
                 "Invalid params: inputResponses.%s is not a sampling result (no content)",
                 in->key);
            return -1;
        }
        snprintf(text, len, "%s", v && mcpgw_json_str(v, "text") ? mcpgw_json_str(v, "text") : "");
        return 1;
    default: {
        json_object *roots = mcpgw_json_arr(r, "roots");
        size_t off = 0;
        if (!roots) {
            fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS,
                 "Invalid params: inputResponses.%s is not a roots/list result (no roots)",
                 in->key);
            return -1;
        }
        text[0] = 0;
        for (size_t i = 0; i < json_object_array_length(roots) && off + 1 < len; i++) {
            const char *uri = mcpgw_json_str(json_object_array_get_idx(roots, i), "uri");
            off += (size_t)snprintf(text + off, len - off, "%s%s", i ? ", " : "", uri ? uri : "?");
        }
        return 1;
    }
    }
}

/* What the state is bound to: this method and name, these arguments, this principal. */
static void bind(struct mcpgw_seal_binding *b, const struct mcpgw_mrtr_req *req)
{
    json_object *args = mcpgw_json_obj(req->params, "arguments");
    size_t len = 0;
    char *text = args ? mcpgw_json_dump(args, &len) : NULL;
    mcpgw_seal_bind(b, req->method, req->name, text ? text : "", len, req->principal);
    free(text);
}

/* Open params.requestState: 0 with *round 0 and *vals NULL when there is none, 1 when it
 * verifies (*vals owned), -1 when it does not (a filled: tampered, expired, malformed). */
static int open_state(const struct mcpgw_mrtr_req *req, int *round, json_object **vals,
                      struct mcpgw_mrtr_answer *a)
{
    json_object *st, *doc, *r;
    struct mcpgw_seal_binding b;
    void *out = NULL;
    size_t outlen;
    int rc;
    *round = 0;
    *vals = NULL;
    if (!json_object_object_get_ex(req->params, "requestState", &st) || !st)
        return 0;
    if (!json_object_is_type(st, json_type_string)) {
        fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS, "%s",
             "Invalid params: requestState must be the string this server issued");
        return -1;
    }
    bind(&b, req);
    rc = mcpgw_seal_open(req->ring, &b, mcpgw_wall_ms(), json_object_get_string(st),
                         (size_t)json_object_get_string_len(st), &out, &outlen);
    if (rc != MCPGW_SEAL_OK) {
        fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS,
             rc == MCPGW_SEAL_EXPIRED
                 ? "Invalid params: requestState has expired (%s); send the request again "
                   "without it"
                 : "Invalid params: requestState failed its integrity check (%s): it was "
                   "altered, or issued for another request",
             mcpgw_seal_err_str(rc));
        return -1;
    }
    doc = json_tokener_parse(out);
    free(out);
    if (!doc || !json_object_object_get_ex(doc, "r", &r) ||
        !json_object_is_type(r, json_type_int) || json_object_get_int(r) < 0 ||
        json_object_get_int(r) >= MAX_ROUNDS) {
        json_object_put(doc);
        fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS, "%s",
             "Invalid params: requestState does not hold a round of this request");
        return -1;
    }
    *round = json_object_get_int(r);
    *vals = json_object_get(mcpgw_json_obj(doc, "v"));
    json_object_put(doc);
    if (!*vals)
        *vals = json_object_new_object();
    return 1;
}

static char *seal_state(const struct mcpgw_mrtr_req *req, int round, json_object *vals)
{
    json_object *doc = json_object_new_object();
    struct mcpgw_seal_binding b;
    size_t len;
    char *text, *sealed;
    json_object_object_add(doc, "r", json_object_new_int(round));
    json_object_object_add(doc, "v", json_object_get(vals));
    text = mcpgw_json_dump(doc, &len);
    json_object_put(doc);
    bind(&b, req);
    sealed = mcpgw_seal_seal(req->ring, &b, mcpgw_wall_ms() + req->ttl_ms, text, len);
    free(text);
    return sealed;
}

static json_object *final_result(const struct fixture *f, json_object *vals)
{
    char text[1024];
    size_t off = (size_t)snprintf(text, sizeof(text), "%s", f->done);
    json_object_object_foreach(vals, k, v)
    {
        if (off + 1 >= sizeof(text))
            break;
        off += (size_t)snprintf(text + off, sizeof(text) - off, " %s=%s", k,
                                json_object_get_string(v));
    }
    if (f->is_prompt) {
        json_object *r = json_object_new_object(), *msgs = json_object_new_array(),
                    *m = json_object_new_object(), *c = json_object_new_object();
        json_object_object_add(c, "type", json_object_new_string("text"));
        json_object_object_add(c, "text", json_object_new_string(text));
        json_object_object_add(m, "role", json_object_new_string("user"));
        json_object_object_add(m, "content", c);
        json_object_array_add(msgs, m);
        json_object_object_add(r, "description", json_object_new_string(f->description));
        json_object_object_add(r, "messages", msgs);
        return r;
    }
    return mcpgw_msg_tool_text(text, 0);
}

/* Round `round` of f: 1 when all its inputs the client can answer are answered (added to vals),
 * 0 with *asks (the input requests still missing), -1 on a bad answer or a missing capability. */
static int run_round(const struct fixture *f, int round, const struct mcpgw_mrtr_req *req,
                     json_object *responses, json_object *vals, json_object **asks,
                     struct mcpgw_mrtr_answer *a)
{
    for (int i = 0; i < MAX_INPUTS && f->rounds[round][i].key; i++) {
        const struct input *in = &f->rounds[round][i];
        char text[512];
        int rc;
        if (!has_cap(req->caps, in->kind)) {
            if (!f->strict)
                continue;
            fail(a, 400, MCPGW_MSG_MISSING_CAPABILITY,
                 "Missing required client capability: %s (declare it in _meta "
                 "io.modelcontextprotocol/clientCapabilities)",
                 kind_cap[in->kind]);
            a->data = json_object_new_object();
            json_object_object_add(a->data, "requiredCapabilities",
                                   json_tokener_parse(in->kind == IN_ELICIT ? "{\"elicitation\":{}}"
                                                      : in->kind == IN_SAMPLE ? "{\"sampling\":{}}"
                                                                              : "{\"roots\":{}}"));
            return -1;
        }
        if ((rc = answer_of(in, responses, text, sizeof(text), a)) < 0)
            return -1;
        if (rc)
            json_object_object_add(vals, in->key, json_object_new_string(text));
        else {
            if (!*asks)
                *asks = json_object_new_object();
            json_object_object_add(
                *asks, in->key, mcpgw_msg_input_request(kind_method[in->kind], input_params(in)));
        }
    }
    return *asks ? 0 : 1;
}

int mcpgw_mrtr_serve(const struct mcpgw_mrtr_req *req, struct mcpgw_mrtr_answer *a)
{
    const struct fixture *f = find(req->name, strcmp(req->method, "prompts/get") == 0);
    json_object *responses = NULL, *vals = NULL, *asks = NULL;
    int round, rc;
    if (!f)
        return 0;
    memset(a, 0, sizeof(*a));
    if (json_object_object_get_ex(req->params, "inputResponses", &responses) &&
        !json_object_is_type(responses, json_type_object)) {
        fail(a, 200, MCPGW_JSONRPC_INVALID_PARAMS, "%s",
             "Invalid params: inputResponses must be an object of results keyed as asked");
        return 1;
    }
    if (open_state(req, &round, &vals, a) < 0)
        return 1;
    if (!vals)
        vals = json_object_new_object();
    for (;;) {
        rc = run_round(f, round, req, responses, vals, &asks, a);
        if (rc < 0)
            break;
        if (rc == 0) {
            char *state = seal_state(req, round, vals);
            a->result = mcpgw_msg_input_required(asks, state);
            free(state);
            break;
        }
        /* Answers of one round never answer the next: its keys are its own. */
        if (++round == MAX_ROUNDS || !f->rounds[round][0].key) {
            a->result = final_result(f, vals);
            break;
        }
        responses = NULL;
    }
    json_object_put(vals);
    return 1;
}

/* ---- the provider: descriptors of the fixtures, and two ordinary tools of the era ---- */

#define NO_ARGS "{\"type\":\"object\",\"properties\":{}}"

static void tool_logging(struct mcpgw_call *c, json_object *args)
{
    (void)args;
    /* Logged only when the request asked for a level (_meta io.modelcontextprotocol/logLevel). */
    mcpgw_call_log(c, "info", "test_logging_tool: first message");
    mcpgw_call_log(c, "warning", "test_logging_tool: second message");
    mcpgw_call_result(c, mcpgw_msg_tool_text("logged (if a log level was asked for)", 0));
}

static void tool_custom_headers(struct mcpgw_call *c, json_object *args)
{
    char text[512];
    snprintf(text, sizeof(text), "headers matched the body: %s",
             json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
    mcpgw_call_result(c, mcpgw_msg_tool_text(text, 0));
}

static const struct mcpgw_tool plain_tools[] = {
    {"test_logging_tool", NULL, "Emits notifications/message only at the level the request asked",
     NO_ARGS, NULL, tool_logging, 0},
    {"test_custom_headers", NULL,
     "Parameters mirrored into Mcp-Param headers (x-mcp-header); the node checks them against "
     "the body",
     "{\"type\":\"object\",\"properties\":{\"region\":{\"type\":\"string\",\"x-mcp-header\":"
     "\"Region\"},\"priority\":{\"type\":\"integer\",\"x-mcp-header\":\"Priority\"},\"urgent\":"
     "{\"type\":\"boolean\",\"x-mcp-header\":\"Urgent\"},\"note\":{\"type\":\"string\"}},"
     "\"required\":[\"region\"]}",
     NULL, tool_custom_headers, 0},
};

/* Descriptors of the round fixtures: found by name, answered by mcpgw_mrtr_serve. */
static struct mcpgw_tool round_tools[MCPGW_ARRAY_LEN(fixtures)];

static const struct mcpgw_tool *p_tool(struct mcpgw_node *n, const char *name)
{
    const struct fixture *f = find(name, 0);
    (void)n;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(plain_tools); i++)
        if (strcmp(plain_tools[i].name, name) == 0)
            return &plain_tools[i];
    if (!f)
        return NULL;
    {
        struct mcpgw_tool *t = &round_tools[f - fixtures];
        t->name = f->name;
        t->description = f->description;
        t->input_schema = NO_ARGS;
        return t;
    }
}

static void add_tool(json_object *arr, const char *name, const char *desc, const char *schema)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "name", json_object_new_string(name));
    json_object_object_add(t, "description", json_object_new_string(desc));
    json_object_object_add(t, "inputSchema", json_tokener_parse(schema));
    json_object_array_add(arr, t);
}

static void p_list_tools(struct mcpgw_node *n, json_object *arr)
{
    (void)n;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(fixtures); i++)
        if (!fixtures[i].is_prompt)
            add_tool(arr, fixtures[i].name, fixtures[i].description, NO_ARGS);
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(plain_tools); i++)
        add_tool(arr, plain_tools[i].name, plain_tools[i].description, plain_tools[i].input_schema);
}

static void p_list_prompts(struct mcpgw_node *n, json_object *arr)
{
    (void)n;
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(fixtures); i++)
        if (fixtures[i].is_prompt) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "name", json_object_new_string(fixtures[i].name));
            json_object_object_add(p, "description",
                                   json_object_new_string(fixtures[i].description));
            json_object_array_add(arr, p);
        }
}

const struct mcpgw_provider_ops mcpgw_mrtr_provider = {
    .name = "mrtr",
    .list_tools = p_list_tools,
    .list_prompts = p_list_prompts,
    .tool = p_tool,
};
