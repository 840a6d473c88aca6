/* fuzz_jsonrpc.c - libFuzzer driver for the JSON-RPC decoder (common/jsonrpc.h).
 *
 * The input is one request body. Besides "no crash, no sanitizer report", it checks what the
 * decoder promises: a body that is not UTF-8 is a parse error (judged by a decoder written
 * differently from the one under test: it computes each code point and checks its range), a
 * message that decodes has an id that survives an encode and a decode unchanged, and nothing
 * the codec writes back (a result naming the id, an error naming a refused message's id) is
 * anything but UTF-8. Seeds: tests/fuzz/corpus/fuzz_jsonrpc/. */
#include "common/jsonrpc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Unicode scalar values only, in their shortest form. */
static int utf8_valid(const uint8_t *p, size_t n)
{
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = p[i] < 0x80         ? 1
                     : (p[i] >> 5) == 6  ? 2
                     : (p[i] >> 4) == 14 ? 3
                     : (p[i] >> 3) == 30 ? 4
                                         : 0;
        if (!len || n - i < len)
            return 0;
        cp = len == 1 ? p[i] : p[i] & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void check_out(const char *s, size_t len)
{
    if (!s || strlen(s) != len || !utf8_valid((const uint8_t *)s, len))
        abort(); /* we would send something that is not UTF-8 JSON text */
}

/* Encode a result naming id, decode it, and compare the ids. */
static void check_id_round_trip(json_object *id)
{
    struct mcpgw_jsonrpc_msg back;
    const char *why = NULL;
    size_t len;
    char *s = mcpgw_jsonrpc_result(id, NULL, &len);
    check_out(s, len);
    if (mcpgw_jsonrpc_parse(s, len, &back, NULL, &why) != 0)
        abort(); /* our own result does not decode */
    if (!mcpgw_jsonrpc_id_equal(id, back.id))
        abort(); /* the id came back as another id */
    mcpgw_jsonrpc_msg_deinit(&back);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcpgw_jsonrpc_msg m;
    json_object *bad_id = NULL;
    const char *why = NULL;
    int rc = mcpgw_jsonrpc_parse((const char *)data, size, &m, &bad_id, &why);

    if (!utf8_valid(data, size) && rc != MCPGW_JSONRPC_PARSE_ERROR)
        abort(); /* ill-formed UTF-8 got past the decoder */
    if (rc == 0) {
        size_t len;
        const char *all;
        if (bad_id || !m.root)
            abort();
        if (m.id) {
            if (!json_object_is_type(m.id, json_type_string) &&
                !json_object_is_type(m.id, json_type_int))
                abort();
            check_id_round_trip(m.id);
        }
        all = json_object_to_json_string_length(m.root, JSON_C_TO_STRING_PLAIN, &len);
        check_out(all, len);
        mcpgw_jsonrpc_msg_deinit(&m);
        return 0;
    }
    if (!why || m.root)
        abort();
    if (rc != MCPGW_JSONRPC_PARSE_ERROR && rc != MCPGW_JSONRPC_INVALID_REQUEST)
        abort();
    if (bad_id) {
        size_t len;
        char *s = mcpgw_jsonrpc_error(bad_id, rc, why, NULL, &len);
        check_out(s, len);
        free(s);
        check_id_round_trip(bad_id);
        json_object_put(bad_id);
    }
    return 0;
}
