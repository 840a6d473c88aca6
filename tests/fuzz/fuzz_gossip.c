/* fuzz_gossip.c - libFuzzer driver for the gossip parsers: the version-1 wire decoder
 * (gossip/wire.h), the version-2 envelope and the key ring file (gossip/keyring.h). */
#include "gossip/keyring.h"
#include "gossip/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mcpgw_gossip_keyring *ring(void)
{
    static struct mcpgw_gossip_keyring *r;
    static const char text[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
                               "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A=\n";
    char err[128];
    if (!r)
        r = mcpgw_gossip_keyring_parse(text, sizeof(text) - 1, "fuzz", err, sizeof(err));
    if (!r)
        abort();
    return r;
}

/* Any bytes as a version-1 datagram: the decoder must neither crash nor read out of bounds.
 * Whatever it accepts must re-encode to exactly the same bytes (the format has one encoding
 * per message) and decode again. */
static void wire(const uint8_t *data, size_t size)
{
    static struct mcpgw_gossip_msg msg, again;
    static uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    int n;

    if (mcpgw_gossip_wire_decode(data, size, &msg) != 0)
        return;
    n = mcpgw_gossip_wire_encode(&msg, buf, sizeof(buf));
    if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
        abort();
    if (mcpgw_gossip_wire_decode(buf, (size_t)n, &again) != 0 || again.nupdates != msg.nupdates)
        abort();
}

/* Any bytes as a sealed datagram (what a stranger can send): opening checks lengths and the
 * tag and never crashes; the fuzzer cannot forge a tag, so an open that succeeds is a bug.
 * Then the bytes as a plaintext: sealed and opened again, they come back unchanged, and the
 * opened bytes go on to the version-1 decoder as a received datagram would. */
static void envelope(const uint8_t *data, size_t size)
{
    static uint8_t sealed[MCPGW_GOSSIP_MAX_PACKET], plain[MCPGW_GOSSIP_MAX_PACKET + 64];
    struct mcpgw_gossip_envelope env = {.salt = 1, .counter = size, .sent_ms = 2}, got;
    int n;

    if (mcpgw_gossip_keyring_open(ring(), data, size, plain, sizeof(plain), &got) >= 0)
        abort();
    n = mcpgw_gossip_keyring_seal(ring(), &env, data, size, sealed, sizeof(sealed));
    if (size > MCPGW_GOSSIP_MAX_PACKET - MCPGW_GOSSIP_ENVELOPE_OVERHEAD) {
        if (n != MCPGW_GOSSIP_KEYRING_NOSPACE)
            abort();
        return;
    }
    if (n != (int)(size + MCPGW_GOSSIP_ENVELOPE_OVERHEAD))
        abort();
    n = mcpgw_gossip_keyring_open(ring(), sealed, (size_t)n, plain, sizeof(plain), &got);
    if (n != (int)size || memcmp(plain, data, size) != 0 || got.counter != size)
        abort();
    wire(plain, size);
}

/* Any bytes as a key ring file: parsed or refused with a sentence, never a crash. */
static void keyring_text(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct mcpgw_gossip_keyring *r =
        mcpgw_gossip_keyring_parse((const char *)data, size, "fuzz", err, sizeof(err));
    if (!r && !err[0])
        abort();
    mcpgw_gossip_keyring_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire(data, size);
    envelope(data, size);
    keyring_text(data, size);
    return 0;
}
