/* fuzz_seal.c - libFuzzer driver for sealed-state opening, the key ring and the API key table
 * (common/seal.h, common/apikey.h): all three read text an outsider or an operator writes. */
#include "common/apikey.h"
#include "common/seal.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Nothing may crash or leak; random bytes never open (the chance of forging a GCM tag is 2^-128),
 * and an opened blob always comes with its data. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mcpgw_seal_ring *ring;
    struct mcpgw_seal_binding b;
    struct mcpgw_seal_ring *r;
    struct mcpgw_apikey_set *s;
    char err[200];
    void *out;
    size_t n;

    if (!ring) {
        static const char key[] =
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        ring = mcpgw_seal_ring_parse(key, sizeof(key) - 1, "fuzz", err, sizeof(err));
    }
    mcpgw_seal_bind(&b, "tools/call", "t", data, size, "p");
    if (mcpgw_seal_open(ring, &b, 0, (const char *)data, size, &out, &n) == MCPGW_SEAL_OK)
        abort();
    if (out)
        abort();
    r = mcpgw_seal_ring_parse((const char *)data, size, "fuzz", err, sizeof(err));
    mcpgw_seal_ring_free(r);
    s = mcpgw_apikey_parse((const char *)data, size, "fuzz", err, sizeof(err));
    mcpgw_apikey_set_free(s);
    return 0;
}
