/* fuzz_loadgen_wire.c - libFuzzer driver for the load generator's parent <-> worker frames and
 * their payload decoders (loadgen/wire.h, loadgen/lathist.h). */
#include "loadgen/lathist.h"
#include "loadgen/wire.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Any bytes, as a frame stream and as bare payloads: no crash, no out-of-bounds read. A tick
 * that decodes must re-encode and decode to the same counters. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mcpgw_lathist *lat, *setup, *rec[MCPGW_WIRE_MAX_DRILLS];
    struct evbuffer *b;
    struct mcpgw_wire_tick t, again;
    struct mcpgw_wire_final f;
    struct mcpgw_wire_cmd c;
    unsigned char *p;
    uint32_t worker, len;
    int type;

    if (!lat) {
        lat = mcpgw_lathist_new();
        setup = mcpgw_lathist_new();
        for (int i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++)
            rec[i] = mcpgw_lathist_new();
    }
    mcpgw_wire_get_cmd(data, (uint32_t)size, &c);
    mcpgw_wire_get_final(data, (uint32_t)size, &f, rec, MCPGW_WIRE_MAX_DRILLS);
    if (mcpgw_wire_get_tick(data, (uint32_t)size, &t, lat, setup) == 0) {
        b = evbuffer_new();
        mcpgw_wire_put_tick(b, 0, &t, lat, setup);
        if (mcpgw_wire_take(b, &type, &worker, &p, &len) != 1)
            abort();
        mcpgw_lathist_reset(lat);
        mcpgw_lathist_reset(setup);
        if (mcpgw_wire_get_tick(p, len, &again, lat, setup) != 0 ||
            memcmp(again.c, t.c, sizeof(t.c)) != 0 || again.sec != t.sec)
            abort();
        free(p);
        evbuffer_free(b);
    }
    b = evbuffer_new();
    evbuffer_add(b, data, size);
    while (mcpgw_wire_take(b, &type, &worker, &p, &len) == 1) {
        if (type == MCPGW_WIRE_TICK)
            mcpgw_wire_get_tick(p, len, &t, lat, setup);
        else if (type == MCPGW_WIRE_FINAL)
            mcpgw_wire_get_final(p, len, &f, rec, MCPGW_WIRE_MAX_DRILLS);
        else
            mcpgw_wire_get_cmd(p, len, &c);
        free(p);
    }
    evbuffer_free(b);
    mcpgw_lathist_reset(lat);
    mcpgw_lathist_reset(setup);
    for (int i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++)
        mcpgw_lathist_reset(rec[i]);
    return 0;
}
