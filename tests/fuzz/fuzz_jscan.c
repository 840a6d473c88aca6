/* fuzz_jscan.c - libFuzzer driver for the strict JSON scanner (common/jscan.h).
 *
 * The input is one upstream answer. Besides "no crash, no sanitizer report", it checks the
 * promise the pass-through rests on (docs/federation.md, "Answers passed through"): whatever
 * mcpgw_jscan_object accepts, json-c (as common/jsonrpc.c drives it) accepts too, every reported
 * span lies inside the input, and a "result" member read alone is the tree the full parse holds.
 * Seeds: tests/fuzz/corpus/fuzz_jscan/. */
#include "common/jscan.h"
#include "common/jsonrpc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct mcpgw_jscan_top t;
    const struct mcpgw_jscan_member *r;
    struct mcpgw_jsonrpc_msg m;
    const char *why;
    struct json_tokener *tok;
    json_object *o;
    if (size > (1u << 20))
        return 0;
    (void)mcpgw_jscan_value(buf, size, NULL);
    if (mcpgw_jscan_object(buf, size, &t) != MCPGW_JSCAN_OK)
        return 0;
    for (size_t i = 0; i < t.n; i++)
        if (t.m[i].key < buf || t.m[i].key + t.m[i].key_len > buf + size || !t.m[i].val ||
            t.m[i].val < buf || t.m[i].val + t.m[i].val_len > buf + size)
            abort();
    /* The text is one valid JSON object: json-c must take it (strict, depth 64). */
    tok = json_tokener_new_ex(64);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, buf, (int)size);
    json_tokener_free(tok);
    if (!o)
        abort();
    json_object_put(o);
    if (!(r = mcpgw_jscan_get(&t, "result")) || t.more || t.n != 3 || r->val[0] != '{' ||
        !mcpgw_jscan_get(&t, "jsonrpc") || !mcpgw_jscan_get(&t, "id"))
        return 0;
    if (mcpgw_jsonrpc_parse(buf, size, &m, NULL, &why) != 0)
        return 0; /* refused for the envelope ("jsonrpc" not "2.0", a non-integer id) only */
    tok = json_tokener_new_ex(64);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, r->val, (int)r->val_len);
    json_tokener_free(tok);
    if (!o || !json_object_equal(o, m.result))
        abort();
    json_object_put(o);
    mcpgw_jsonrpc_msg_deinit(&m);
    return 0;
}
