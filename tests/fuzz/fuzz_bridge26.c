/* fuzz_bridge26.c - libFuzzer driver for the node-to-node messages of node/bridge26.c (MRTR
 * answers handed to the node running an upstream call, and its answers back): another node
 * writes them, through Redis. A node with the memory store: what it would send goes nowhere. */
#include "node/bridge26.h"
#include "node/config.h"
#include "node/node-t.h"
#include "node/store.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Nothing may crash or leak, whatever the bytes: unknown calls, tickets and types are dropped or
 * answered with an error that goes nowhere. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mcpgw_node n;
    static uint64_t errors;
    if (!n.store) {
        struct mcpgw_store_config sc = {"memory", "fuzz", 60000, NULL, NULL};
        char err[200];
        n.base = event_base_new();
        sc.base = n.base;
        snprintf(n.cfg.node_id, sizeof(n.cfg.node_id), "fuzz");
        n.st.errors = &errors;
        n.store = mcpgw_store_new(&sc, NULL, NULL, err, sizeof(err));
    }
    mcpgw_bridge26_message(&n, (const char *)data, size);
    return 0;
}
