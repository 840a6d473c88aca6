/* fuzz_gossip.c - libFuzzer driver for the gossip wire decoder (gossip/wire.h). */
#include "gossip/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Any bytes: the decoder must neither crash nor read out of bounds. Whatever it accepts must
 * re-encode to exactly the same bytes (the format has one encoding per message) and decode
 * again. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mcpgw_gossip_msg msg, again;
    static uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    int n;

    if (mcpgw_gossip_wire_decode(data, size, &msg) != 0)
        return 0;
    n = mcpgw_gossip_wire_encode(&msg, buf, sizeof(buf));
    if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
        abort();
    if (mcpgw_gossip_wire_decode(buf, (size_t)n, &again) != 0 || again.nupdates != msg.nupdates)
        abort();
    return 0;
}
