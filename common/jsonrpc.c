/* jsonrpc.c - JSON-RPC 2.0 codec on json-c. */
#include "common/jsonrpc.h"

#include "common/jscan.h"
#include "common/util.h"

#include <math.h>
#include <stdint.h>
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

/* ---- what json-c would change silently: a pass over the raw text before it parses ----
 *
 * json-c 0.16 accepts, in strict mode and with JSON_TOKENER_VALIDATE_UTF8: overlong UTF-8,
 * surrogates encoded in UTF-8 (ED A0 80), code points over U+10FFFF (F4 90.., F5..); the
 * numbers "-01", "00" and "1."; it clamps integers beyond -2^63..2^64-1 to the nearest end, and
 * turns a lone surrogate escape ("\ud800") into U+FFFD. Each would make us answer or record
 * something other than what the client sent (docs/design.md, "JSON-RPC ids are exact"). */

struct scan {
    int big_int;        /* an integer json-c cannot hold exactly */
    int lone_surrogate; /* a \uD800-\uDFFF escape that is not half of a pair */
};

enum { SCAN_OK, SCAN_BAD_UTF8, SCAN_BAD_NUMBER };

/* The UTF-16 code unit of the escape "\uXXXX" at p, or -1 when p does not start one. */
static long u_escape(const unsigned char *p, const unsigned char *end)
{
    return end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? mcpgw_jscan_hex4(p + 2, end) : -1;
}

/* p is at a '-' or a digit outside any string. Returns the end of the number, or NULL when the
 * text there is not an RFC 8259 number or runs on into more number characters ("01", "1.",
 * "1.2.3", "-Infinity"). */
static const unsigned char *scan_number(const unsigned char *p, const unsigned char *end,
                                        struct scan *sc)
{
    const unsigned char *s = p;
    int integer;
    if (!(p = mcpgw_jscan_number(p, end, &integer)))
        return NULL;
    if (integer && !mcpgw_jscan_int_fits(s, p))
        sc->big_int = 1;
    return p;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether all eight bytes of w are plain string bytes: 0x20..0x7F but '"' and '\\'. With no high
 * bit set, (x - ONES * n) & ~x & HIGHS is non-zero exactly when some byte of x is below n. */
static int plain8(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return ((w | ((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS) == 0;
}

/* One pass over the body: UTF-8 everywhere, numbers outside strings, \u escapes inside them.
 * Only a valid JSON text is judged by what it sets in sc; on other input it just stops safely
 * (json-c then refuses the text). */
static int scan_text(const char *buf, size_t len, struct scan *sc)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    int in_str = 0;
    while (p < end) {
        unsigned char c;
        /* Most of a body is ASCII inside strings: skip it eight bytes at a time. */
        if (in_str) {
            uint64_t w;
            while (end - p >= 8 && (memcpy(&w, p, 8), plain8(w)))
                p += 8;
            while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
                p++;
        }
        if (p == end)
            break;
        c = *p;
        if (c >= 0x80) {
            size_t n = mcpgw_jscan_utf8_len(p, end);
            if (!n)
                return SCAN_BAD_UTF8;
            p += n;
        } else if (in_str) {
            long u = c == '\\' ? u_escape(p, end) : -1;
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo = u_escape(p + 6, end);
                if (lo >= 0xDC00 && lo <= 0xDFFF)
                    p += 6;
                else
                    sc->lone_surrogate = 1;
                p += 6;
            } else if (u >= 0) {
                sc->lone_surrogate |= u >= 0xDC00 && u <= 0xDFFF;
                p += 6;
            } else {
                in_str = c != '"';
                /* An escaped character is skipped with its backslash, so \" does not end the
                 * string; a byte over 0x7F after one is left to the UTF-8 check. */
                p += c == '\\' && end - p > 1 && p[1] < 0x80 ? 2 : 1;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!(p = scan_number(p, end, sc)))
                return SCAN_BAD_NUMBER;
        } else {
            in_str = c == '"';
            p++;
        }
    }
    return SCAN_OK;
}

/* Whether the parsed id is the one the client sent, so an error may name it: not an integer
 * json-c may have clamped (it clamps to -2^63 or 2^64-1), not a string json-c may have given a
 * U+FFFD for a lone surrogate escape. */
static int id_exact(json_object *id, const struct scan *sc)
{
    if (json_object_is_type(id, json_type_int))
        return !sc->big_int ||
               (json_object_get_int64(id) != INT64_MIN && json_object_get_uint64(id) != UINT64_MAX);
    return !sc->lone_surrogate ||
           !memmem(json_object_get_string(id), (size_t)json_object_get_string_len(id),
                   "\xEF\xBF\xBD", 3);
}

int mcpgw_jsonrpc_parse(const char *buf, size_t len, struct mcpgw_jsonrpc_msg *m,
                        json_object **bad_id, const char **why)
{
    struct json_tokener *tok;
    json_object *root, *v, *id = NULL;
    enum json_tokener_error jerr;
    struct scan sc = {0, 0};
    size_t end;
    int has_method, has_result, has_error, has_id;

    memset(m, 0, sizeof(*m));
    if (bad_id)
        *bad_id = NULL;
    switch (scan_text(buf, len, &sc)) {
    case SCAN_BAD_UTF8:
        *why = "Parse error: body is not valid UTF-8";
        return MCPGW_JSONRPC_PARSE_ERROR;
    case SCAN_BAD_NUMBER:
        *why = "Parse error: body is not valid JSON (a malformed number)";
        return MCPGW_JSONRPC_PARSE_ERROR;
    }
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
    if (has_id && id_ok(id) && id_exact(id, &sc) && bad_id)
        *bad_id = json_object_get(id);
    if (sc.big_int) {
        *why = "Invalid Request: an integer outside -2^63..2^64-1 cannot be taken exactly";
        goto invalid;
    }
    if (sc.lone_surrogate) {
        *why = "Invalid Request: a string holds an unpaired surrogate escape (\\uD800-\\uDFFF)";
        goto invalid;
    }
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

/* A JSON string of s with every byte that starts no well-formed UTF-8 sequence replaced by
 * U+FFFD. Error messages quote what a client sent (a header's obs-text, a name cut at a byte
 * count), and JSON text must be UTF-8 (RFC 8259, 8.1). */
static json_object *utf8_string(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    json_object *o;
    char *fixed, *w;
    size_t n;
    while (p < end && (n = mcpgw_jscan_utf8_len(p, end)) != 0)
        p += n;
    if (p == end)
        return json_object_new_string(s);
    w = fixed = xmalloc((size_t)(end - (const unsigned char *)s) * 3 + 1);
    for (p = (const unsigned char *)s; p < end; p += n ? n : 1) {
        n = mcpgw_jscan_utf8_len(p, end);
        memcpy(w, n ? (const char *)p : "\xEF\xBF\xBD", n ? n : 3);
        w += n ? n : 3;
    }
    o = json_object_new_string_len(fixed, (int)(w - fixed));
    free(fixed);
    return o;
}

char *mcpgw_jsonrpc_error(json_object *id, int code, const char *message, json_object *data,
                          size_t *len)
{
    json_object *o = envelope(id), *e = json_object_new_object();
    if (!id)
        json_object_object_add(o, "id", NULL);
    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", utf8_string(message));
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

int mcpgw_jsonrpc_id_equal(json_object *a, json_object *b)
{
    if (!a || !b || json_object_get_type(a) != json_object_get_type(b))
        return 0;
    if (json_object_is_type(a, json_type_int))
        /* Neither half alone is exact: get_int64 clamps 2^63.. to 2^63-1, get_uint64 clamps
         * negatives to 0; together they tell any two of -2^63..2^64-1 apart. */
        return json_object_get_int64(a) == json_object_get_int64(b) &&
               json_object_get_uint64(a) == json_object_get_uint64(b);
    if (json_object_is_type(a, json_type_string))
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    return 0;
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

int mcpgw_json_safe_int(json_object *v, int64_t *out)
{
    int64_t i;
    double d;
    if (json_object_is_type(v, json_type_int)) {
        /* json-c clamps what int64 cannot hold to its bounds: outside the range either way */
        i = json_object_get_int64(v);
        if (i < -MCPGW_JSON_SAFE_INT_MAX || i > MCPGW_JSON_SAFE_INT_MAX)
            return 0;
        *out = i;
        return 1;
    }
    if (!json_object_is_type(v, json_type_double))
        return 0;
    d = json_object_get_double(v);
    if (!isfinite(d) || d != trunc(d) || fabs(d) > (double)MCPGW_JSON_SAFE_INT_MAX)
        return 0;
    *out = (int64_t)d;
    return 1;
}
