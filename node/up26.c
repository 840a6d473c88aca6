/* up26.c - the 2026-07-28 pieces of the upstream client: request _meta and headers, discover,
 * the listen filter, and MRTR rounds (see up26.h). */
#include "node/up26.h"

#include "common/jsonrpc.h"
#include "common/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *mcpgw_up26_params(json_object *params, json_object *caps)
{
    json_object *meta, *info;
    if (!params || !json_object_is_type(params, json_type_object)) {
        json_object_put(params);
        params = json_object_new_object();
    }
    meta = json_object_object_get(params, "_meta");
    if (!meta || !json_object_is_type(meta, json_type_object)) {
        meta = json_object_new_object();
        json_object_object_add(params, "_meta", meta);
    }
    json_object_object_add(meta, "io.modelcontextprotocol/protocolVersion",
                           json_object_new_string(MCPGW_UP26_VERSION));
    json_object_object_add(meta, "io.modelcontextprotocol/clientCapabilities",
                           caps ? json_object_get(caps) : json_object_new_object());
    info = json_object_new_object();
    json_object_object_add(info, "name", json_object_new_string("mcpgw"));
    json_object_object_add(info, "version", json_object_new_string("1"));
    json_object_object_add(meta, "io.modelcontextprotocol/clientInfo", info);
    return params;
}

/* A value that may go into a header as it is: printable ASCII, no whitespace at either end,
 * and not itself of the Base64 sentinel's shape. */
static int header_safe(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || v[0] == ' ' || v[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return 0;
    return !(n >= 11 && strncmp(v, "=?base64?", 9) == 0 && strcmp(v + n - 2, "?=") == 0);
}

/* "Prefix: value" for a header, the value in the Base64 sentinel form when it is not header-safe;
 * NULL when it could not be built. */
static char *encoded_header(const char *prefix, const char *v)
{
    char *out = NULL;
    if (header_safe(v)) {
        if (asprintf(&out, "%s: %s", prefix, v) < 0)
            out = NULL;
    } else {
        size_t len = strlen(v);
        unsigned char *b = xmalloc(4 * ((len + 2) / 3) + 1);
        EVP_EncodeBlock(b, (const unsigned char *)v, (int)len);
        if (asprintf(&out, "%s: =?base64?%s?=", prefix, (char *)b) < 0)
            out = NULL;
        free(b);
    }
    return out;
}

int mcpgw_up26_headers(const char *method, json_object *params, char **out)
{
    int n = 0;
    const char *name = NULL;
    if (asprintf(&out[n], "Mcp-Method: %s", method) > 0)
        n++;
    if (strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0)
        name = mcpgw_json_str(params, "name");
    else if (strcmp(method, "resources/read") == 0)
        name = mcpgw_json_str(params, "uri");
    if (name && (out[n] = encoded_header("Mcp-Name", name)))
        n++;
    return n;
}

/* A header name token (RFC 9110: 1*tchar). */
static int token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("!#$%&'*+-.^_`|~", s[i])))
            return 0;
    return 1;
}

/* Walks schema's properties (only `properties` chains: the revision's static reachability) with
 * args the instance at the same path, adding a header for each annotated property whose value
 * is present. Depth-bounded: a schema is the upstream's input, not ours. */
static void param_walk(json_object *schema, json_object *args, char **out, int *n, int max,
                       int depth)
{
    json_object *props = mcpgw_json_obj(schema, "properties");
    if (!props || depth > 8)
        return;
    json_object_object_foreach(props, key, sub)
    {
        json_object *v = args ? json_object_object_get(args, key) : NULL;
        const char *h = mcpgw_json_str(sub, "x-mcp-header");
        char *prefix = NULL, buf[32];
        const char *text = NULL, *type = mcpgw_json_str(sub, "type");
        int64_t i;
        if (!v)
            continue;
        if (json_object_is_type(v, json_type_object))
            param_walk(sub, v, out, n, max, depth + 1);
        if (!h || !token_ok(h) || *n >= max)
            continue;
        if (json_object_is_type(v, json_type_string))
            text = json_object_get_string(v);
        else if (json_object_is_type(v, json_type_boolean))
            text = json_object_get_boolean(v) ? "true" : "false";
        else if (json_object_is_type(v, json_type_int)) {
            snprintf(buf, sizeof(buf), "%lld", (long long)json_object_get_int64(v));
            text = buf;
        } else if (type && strcmp(type, "integer") == 0 && mcpgw_json_safe_int(v, &i)) {
            /* 42.0 for an integer property is 42, and its header says so in decimal */
            snprintf(buf, sizeof(buf), "%lld", (long long)i);
            text = buf;
        }
        if (!text || asprintf(&prefix, "Mcp-Param-%s", h) < 0)
            continue;
        if ((out[*n] = encoded_header(prefix, text)))
            (*n)++;
        free(prefix);
    }
}

int mcpgw_up26_param_headers(json_object *schema, json_object *args, char **out, int max)
{
    int n = 0;
    if (schema && args && json_object_is_type(args, json_type_object))
        param_walk(schema, args, out, &n, max, 0);
    return n;
}

/* The keywords whose subschemas are not reached through `properties` chains alone: a marking
 * under one of them breaks the revision's static reachability rule. Those whose value is a map
 * of names to schemas are flagged 1. */
static const struct {
    const char *kw;
    int map;
} not_static[] = {{"items", 0},
                  {"prefixItems", 0},
                  {"contains", 0},
                  {"additionalProperties", 0},
                  {"unevaluatedProperties", 0},
                  {"unevaluatedItems", 0},
                  {"propertyNames", 0},
                  {"patternProperties", 1},
                  {"dependentSchemas", 1},
                  {"dependencies", 1},
                  {"oneOf", 0},
                  {"anyOf", 0},
                  {"allOf", 0},
                  {"not", 0},
                  {"if", 0},
                  {"then", 0},
                  {"else", 0},
                  {"$defs", 1},
                  {"definitions", 1}};

static int marks_walk(json_object *node, int reachable, int depth, json_object *seen, char *why,
                      size_t whylen);

static int marks_sub(json_object *v, int map, int depth, json_object *seen, char *why,
                     size_t whylen)
{
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (marks_walk(json_object_array_get_idx(v, i), 0, depth, seen, why, whylen) < 0)
                return -1;
    } else if (map && json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, sub)
        {
            (void)k;
            if (marks_walk(sub, 0, depth, seen, why, whylen) < 0)
                return -1;
        }
    } else if (marks_walk(v, 0, depth, seen, why, whylen) < 0) {
        return -1;
    }
    return 0;
}

/* Checks the markings of schema node (reached through `properties` alone when reachable) and
 * below; seen holds the lower-cased names met so far. */
static int marks_walk(json_object *node, int reachable, int depth, json_object *seen, char *why,
                      size_t whylen)
{
    json_object *h, *props;
    if (!node || !json_object_is_type(node, json_type_object) || depth > 64)
        return 0; /* json-c's own nesting limit is lower: nothing is left unchecked */
    if (json_object_object_get_ex(node, "x-mcp-header", &h)) {
        const char *name =
            json_object_is_type(h, json_type_string) ? json_object_get_string(h) : NULL;
        const char *type = mcpgw_json_str(node, "type");
        char lower[256];
        size_t i;
        if (!reachable || depth == 0) {
            snprintf(why, whylen,
                     "x-mcp-header on a schema not reached through `properties` alone");
            return -1;
        }
        if (!name || !token_ok(name)) {
            snprintf(why, whylen, "x-mcp-header %.60s is not an HTTP header name token",
                     json_object_to_json_string(h));
            return -1;
        }
        if (!type || (strcmp(type, "string") != 0 && strcmp(type, "integer") != 0 &&
                      strcmp(type, "boolean") != 0)) {
            snprintf(why, whylen,
                     "x-mcp-header '%.60s' marks a property of type %.20s (string, integer or "
                     "boolean only)",
                     name, type ? type : "(none)");
            return -1;
        }
        for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
            lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
        lower[i] = 0;
        if (json_object_object_get_ex(seen, lower, NULL)) {
            snprintf(why, whylen, "x-mcp-header '%.60s' is declared twice (case-insensitively)",
                     name);
            return -1;
        }
        json_object_object_add(seen, lower, NULL);
    }
    if ((props = mcpgw_json_obj(node, "properties"))) {
        json_object_object_foreach(props, k, sub)
        {
            (void)k;
            if (marks_walk(sub, reachable, depth + 1, seen, why, whylen) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < sizeof(not_static) / sizeof(not_static[0]); i++) {
        json_object *v;
        if (json_object_object_get_ex(node, not_static[i].kw, &v) &&
            marks_sub(v, not_static[i].map, depth + 1, seen, why, whylen) < 0)
            return -1;
    }
    return 0;
}

int mcpgw_up26_tool_marks_ok(json_object *schema, char *why, size_t whylen)
{
    json_object *seen = json_object_new_object();
    int rc = marks_walk(schema, 1, 0, seen, why, whylen);
    json_object_put(seen);
    return rc == 0;
}

int mcpgw_up26_discover_ok(json_object *result)
{
    json_object *v = mcpgw_json_arr(result, "supportedVersions");
    for (size_t i = 0; v && i < json_object_array_length(v); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(v, i));
        if (s && strcmp(s, MCPGW_UP26_VERSION) == 0)
            return 1;
    }
    return 0;
}

int mcpgw_up26_input_required(json_object *result)
{
    const char *t = mcpgw_json_str(result, "resultType");
    return t && strcmp(t, "input_required") == 0;
}

json_object *mcpgw_up26_listen_params(char *const *uris, size_t n, json_object *caps)
{
    json_object *p = json_object_new_object(), *f = json_object_new_object();
    json_object *a = json_object_new_array();
    json_object_object_add(f, "toolsListChanged", json_object_new_boolean(1));
    json_object_object_add(f, "promptsListChanged", json_object_new_boolean(1));
    json_object_object_add(f, "resourcesListChanged", json_object_new_boolean(1));
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(uris[i]));
    json_object_object_add(f, "resourceSubscriptions", a);
    json_object_object_add(p, "notifications", f);
    return mcpgw_up26_params(p, caps);
}

struct mcpgw_up26_round {
    json_object *requests;  /* the inputRequests object (a reference), or NULL */
    json_object *responses; /* key -> the client's result */
    char *state;            /* requestState, or NULL */
    char **keys;            /* the keys of requests, in their order */
    size_t nkeys, pos;
};

static int input_method_ok(const char *m)
{
    return m && (strcmp(m, "elicitation/create") == 0 || strcmp(m, "sampling/createMessage") == 0 ||
                 strcmp(m, "roots/list") == 0);
}

struct mcpgw_up26_round *mcpgw_up26_round_new(json_object *result, char *err, size_t errlen)
{
    json_object *reqs = mcpgw_json_obj(result, "inputRequests");
    const char *state = mcpgw_json_str(result, "requestState");
    struct mcpgw_up26_round *r;
    if (json_object_object_get(result, "inputRequests") && !reqs) {
        snprintf(err, errlen, "its inputRequests is not an object");
        return NULL;
    }
    if (!reqs && !state) {
        snprintf(err, errlen,
                 "an input_required result with neither inputRequests nor "
                 "requestState");
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->responses = json_object_new_object();
    r->state = state ? xstrdup(state) : NULL;
    if (reqs) {
        r->requests = json_object_get(reqs);
        r->keys = xcalloc((size_t)json_object_object_length(reqs) + 1, sizeof(*r->keys));
        json_object_object_foreach(reqs, key, val)
        {
            const char *m = mcpgw_json_str(val, "method");
            json_object *p = json_object_object_get(val, "params");
            if (!input_method_ok(m) || (p && !json_object_is_type(p, json_type_object))) {
                snprintf(err, errlen,
                         "input request '%.60s' is not an elicitation/create, "
                         "sampling/createMessage or roots/list request",
                         key);
                mcpgw_up26_round_free(r);
                return NULL;
            }
            r->keys[r->nkeys++] = xstrdup(key);
        }
    }
    return r;
}

void mcpgw_up26_round_free(struct mcpgw_up26_round *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nkeys; i++)
        free(r->keys[i]);
    free(r->keys);
    json_object_put(r->requests);
    json_object_put(r->responses);
    free(r->state);
    free(r);
}

char *mcpgw_up26_round_next(struct mcpgw_up26_round *r, json_object *id, size_t *len)
{
    json_object *req, *p;
    if (r->pos >= r->nkeys)
        return NULL;
    req = json_object_object_get(r->requests, r->keys[r->pos]);
    p = json_object_object_get(req, "params");
    return mcpgw_jsonrpc_request(id, mcpgw_json_str(req, "method"),
                                 p ? json_object_get(p) : json_object_new_object(), len);
}

void mcpgw_up26_round_answer(struct mcpgw_up26_round *r, json_object *result)
{
    if (r->pos >= r->nkeys)
        return;
    json_object_object_add(r->responses, r->keys[r->pos], json_object_get(result));
    r->pos++;
}

json_object *mcpgw_up26_round_retry(const struct mcpgw_up26_round *r, json_object *orig)
{
    json_object *p = NULL;
    if (orig && json_object_deep_copy(orig, &p, NULL) != 0)
        p = NULL;
    if (!p)
        p = json_object_new_object();
    json_object_object_del(p, "inputResponses");
    json_object_object_del(p, "requestState");
    if (r->nkeys)
        json_object_object_add(p, "inputResponses", json_object_get(r->responses));
    if (r->state)
        json_object_object_add(p, "requestState", json_object_new_string(r->state));
    return p;
}
