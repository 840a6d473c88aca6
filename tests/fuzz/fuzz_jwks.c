/* fuzz_jwks.c - libFuzzer driver for the JWKS parser (common/jwks.h). */
#include "common/jwks.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Any bytes: the parser must neither crash nor leak; every key it keeps is usable for lookup. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[200];
    int skipped = 0;
    EVP_PKEY *k;
    struct mcpgw_jwks *set = mcpgw_jwks_parse((const char *)data, size, &skipped, err, sizeof(err));
    if (!set)
        return 0;
    if (mcpgw_jwks_count(set) > MCPGW_JWKS_MAX_KEYS || skipped < 0)
        abort();
    for (int alg = 0; alg < MCPGW_JWKS_ALG_COUNT; alg++)
        if (mcpgw_jwks_find(set, NULL, alg, &k) == MCPGW_JWKS_FOUND && !k)
            abort();
    mcpgw_jwks_free(set);
    return 0;
}
