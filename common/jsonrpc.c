/* jsonrpc.c - JSON-RPC 2.0 codec on json-c. */
#include "common/jsonrpc.h"

#include "common/util.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[MCPGW_JSONRPC_KIND_COUNT] = {"request", "notification",
                                                                 "result", "error"};

const char *mcpgw_jsonrpc_kind_str(enum mcpgw_jsonrpc_kind k)
{
    return (unsigned)k < MCPGW_JSONRPC_KIND_COUNT ? kind_names[k] : "?";
}

/* Whether v holds a number that is not finite. json-c reads NaN, Infinity and -Infinity even in
 * strict mode, and a number beyond a double's range as an infinity: none is JSON's (RFC 8259)
 * or a value any client meant. Nesting is bounded by the tokener's depth. */
static int nonfinite(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_double:
        return !isfinite(json_object_get_double(v));
    case json_type_array:
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++)
            if (nonfinite(json_object_array_get_idx(v, i)))
                return 1;
        return 0;
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            if (nonfinite(val))
                return 1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int id_ok(json_object *id)
{
    return id &&
           (json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_int));
}

int mcpgw_jsonrpc_parse(const char *buf, size_t len, struct mcpgw_jsonrpc_msg *m,
                        json_object **bad_id, const char **why)
{
    struct json_tokener *tok;
    json_object *root, *v, *id = NULL;
    enum json_tokener_error jerr;
    size_t end;
    int has_method, has_result, has_error, has_id;

    memset(m, 0, sizeof(*m));
    if (bad_id)
        *bad_id = NULL;
    tok = json_tokener_new_ex(64);
    /* RFC 8259 only: no trailing commas, comments or leading zeros. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, buf, (int)len);
    end = json_tokener_get_parse_end(tok);
    /* A bare number or literal ("1", "null") is complete only once the input is known to end:
     * it is valid JSON, so it must reach the -32600 below rather than count as malformed. */
    if (json_tokener_get_error(tok) == json_tokener_continue && end == len)
        root = json_tokener_parse_ex(tok, "", 1);
    jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    /* Trailing whitespace after a complete value is fine; anything else (a NUL too) is not. */
    while (end < len && memchr(" \t\r\n", buf[end], 4))
        end++;
    if (jerr != json_tokener_success || end < len) {
        json_object_put(root);
        *why = "Parse error: body is not valid JSON";
        return MCPGW_JSONRPC_PARSE_ERROR;
    }
    if (nonfinite(root)) {
        json_object_put(root);
        *why = "Parse error: body is not valid JSON (NaN, Infinity, or a number out of range)";
        return MCPGW_JSONRPC_PARSE_ERROR;
    }
    if (json_object_is_type(root, json_type_array)) {
        json_object_put(root);
        *why = "Invalid Request: batches are not supported (one JSON-RPC message per POST)";
        return MCPGW_JSONRPC_INVALID_REQUEST;
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        *why = "Invalid Request: message must be a JSON object";
        return MCPGW_JSONRPC_INVALID_REQUEST;
    }
    has_id = json_object_object_get_ex(root, "id", &id);
    if (has_id && id_ok(id) && bad_id)
        *bad_id = json_object_get(id);
    if (!json_object_object_get_ex(root, "jsonrpc", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), "2.0") != 0) {
        *why = "Invalid Request: \"jsonrpc\" must be \"2.0\"";
        goto invalid;
    }
    has_method = json_object_object_get_ex(root, "method", &v);
    has_result = json_object_object_get_ex(root, "result", NULL);
    has_error = json_object_object_get_ex(root, "error", NULL);
    if (has_id && !id_ok(id)) {
        *why = "Invalid Request: \"id\" must be a string or an integer";
        goto invalid;
    }
    if (has_method) {
        if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
            *why = "Invalid Request: \"method\" must be a non-empty string";
            goto invalid;
        }
        if (has_result || has_error) {
            *why = "Invalid Request: a request cannot carry \"result\" or \"error\"";
            goto invalid;
        }
        m->method = json_object_get_string(v);
        if (json_object_object_get_ex(root, "params", &m->params) && m->params &&
            !json_object_is_type(m->params, json_type_object) &&
            !json_object_is_type(m->params, json_type_array)) {
            *why = "Invalid Request: \"params\" must be an object or an array";
            goto invalid;
        }
        m->kind = has_id ? MCPGW_JSONRPC_REQUEST : MCPGW_JSONRPC_NOTIFICATION;
    } else if (has_result != has_error && has_id) {
        m->kind = has_result ? MCPGW_JSONRPC_RESULT : MCPGW_JSONRPC_ERROR;
        json_object_object_get_ex(root, "result", &m->result);
        json_object_object_get_ex(root, "error", &m->error);
        if (has_error && !json_object_is_type(m->error, json_type_object)) {
            *why = "Invalid Request: \"error\" must be an object";
            goto invalid;
        }
    } else {
        *why = "Invalid Request: not a request, notification, result or error";
        goto invalid;
    }
    m->root = root;
    m->id = has_id ? id : NULL;
    if (bad_id && *bad_id) {
        json_object_put(*bad_id);
        *bad_id = NULL;
    }
    return 0;
invalid:
    json_object_put(root);
    memset(m, 0, sizeof(*m));
    return MCPGW_JSONRPC_INVALID_REQUEST;
}

void mcpgw_jsonrpc_msg_deinit(struct mcpgw_jsonrpc_msg *m)
{
    json_object_put(m->root);
    memset(m, 0, sizeof(*m));
}

char *mcpgw_json_dump(json_object *o, size_t *len)
{
    size_t n;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (len)
        *len = n;
    return xstrndup(s, n);
}

static json_object *envelope(json_object *id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    if (id)
        json_object_object_add(o, "id", json_object_get(id));
    return o;
}

static char *finish(json_object *o, size_t *len)
{
    char *s = mcpgw_json_dump(o, len);
    json_object_put(o);
    return s;
}

char *mcpgw_jsonrpc_result(json_object *id, json_object *result, size_t *len)
{
    json_object *o = envelope(id);
    json_object_object_add(o, "result", result ? result : json_object_new_object());
    return finish(o, len);
}

char *mcpgw_jsonrpc_error(json_object *id, int code, const char *message, json_object *data,
                          size_t *len)
{
    json_object *o = envelope(id), *e = json_object_new_object();
    if (!id)
        json_object_object_add(o, "id", NULL);
    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    if (data)
        json_object_object_add(e, "data", data);
    json_object_object_add(o, "error", e);
    return finish(o, len);
}

char *mcpgw_jsonrpc_request(json_object *id, const char *method, json_object *params, size_t *len)
{
    json_object *o = envelope(id);
    json_object_object_add(o, "method", json_object_new_string(method));
    if (params)
        json_object_object_add(o, "params", params);
    return finish(o, len);
}

char *mcpgw_jsonrpc_notification(const char *method, json_object *params, size_t *len)
{
    return mcpgw_jsonrpc_request(NULL, method, params, len);
}

const char *mcpgw_json_str(json_object *obj, const char *key)
{
    json_object *v;
    if (!obj || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

json_object *mcpgw_json_obj(json_object *obj, const char *key)
{
    json_object *v;
    if (!obj || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

json_object *mcpgw_json_arr(json_object *obj, const char *key)
{
    json_object *v;
    if (!obj || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_array))
        return NULL;
    return v;
}
