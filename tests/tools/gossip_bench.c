/* gossip_bench.c - what authentication costs per gossip datagram: encode + decode of a
 * version-1 datagram, seal + open of the version-2 envelope around it (AES-256-GCM), and the
 * replay check, in nanoseconds per datagram on one core. Run by bench/gossip.sh; prints a table,
 * asserts nothing about time. */
#include "common/util.h"
#include "gossip/keyring.h"
#include "gossip/replay.h"
#include "gossip/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A PING from node-1 with nrec records (with HTTP addresses): 3 is a typical datagram, 25
 * nearly fills one. */
static struct mcpgw_gossip_msg m;

static int datagram(uint8_t *buf, size_t cap, int nrec)
{
    memset(&m, 0, sizeof(m));
    m.hdr.type = MCPGW_GOSSIP_PING;
    m.hdr.seq = 42;
    m.hdr.sender_generation = 1796479860543ULL;
    snprintf(m.hdr.sender, sizeof(m.hdr.sender), "node-1");
    snprintf(m.hdr.target, sizeof(m.hdr.target), "node-2");
    m.nupdates = nrec;
    for (int i = 0; i < nrec; i++) {
        struct mcpgw_gossip_update *u = &m.updates[i];
        snprintf(u->id, sizeof(u->id), "node-%d", i);
        u->generation = 1796479860000ULL + (uint64_t)i;
        u->incarnation = 3;
        u->sessions = 4999;
        u->flags = MCPGW_GOSSIP_F_SERVING;
        u->addr.family = 4;
        memcpy(u->addr.ip, "\x0a\x00\x00\x01", 4);
        u->addr.port = (uint16_t)(7946 + i);
        snprintf(u->http_addr, sizeof(u->http_addr), "10.0.0.1:%d", 8080 + i);
    }
    return mcpgw_gossip_wire_encode(&m, buf, cap);
}

static void row(const char *what, int bytes, uint64_t ns, long iters)
{
    printf("%-44s %6d B %9.0f ns\n", what, bytes, (double)ns / (double)iters);
}

int main(int argc, char **argv)
{
    static const char ring_text[] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    static struct mcpgw_gossip_msg msg;
    uint8_t plain[MCPGW_GOSSIP_MAX_PACKET], sealed[MCPGW_GOSSIP_MAX_PACKET],
        opened[MCPGW_GOSSIP_MAX_PACKET];
    char err[256];
    struct mcpgw_gossip_keyring *r =
        mcpgw_gossip_keyring_parse(ring_text, sizeof(ring_text) - 1, "bench", err, sizeof(err));
    const int sizes[2] = {3, 25};
    volatile int sink = 0;

    if (!r || iters <= 0) {
        fprintf(stderr, "gossip-bench: %s\n", r ? "iterations must be > 0" : err);
        return 1;
    }
    printf("per datagram, %ld iterations each, one core\n", iters);
    for (int s = 0; s < 2; s++) {
        int n = datagram(plain, MCPGW_GOSSIP_MAX_PACKET - MCPGW_GOSSIP_ENVELOPE_OVERHEAD, sizes[s]);
        struct mcpgw_gossip_envelope env = {.salt = 1, .sent_ms = 1};
        uint64_t t0;
        char label[64];
        if (n < 0) {
            fprintf(stderr, "gossip-bench: cannot encode %d records\n", sizes[s]);
            return 1;
        }
        snprintf(label, sizeof(label), "v1 encode + decode (%d records)", sizes[s]);
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += mcpgw_gossip_wire_encode(&m, plain, sizeof(plain));
            sink += mcpgw_gossip_wire_decode(plain, (size_t)n, &msg);
        }
        row(label, n, now_ns() - t0, iters);
        snprintf(label, sizeof(label), "v2 seal + open, AES-256-GCM (%d records)", sizes[s]);
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            int k;
            env.counter = (uint64_t)i;
            k = mcpgw_gossip_keyring_seal(r, &env, plain, (size_t)n, sealed, sizeof(sealed));
            sink += mcpgw_gossip_keyring_open(r, sealed, (size_t)k, opened, sizeof(opened), &env);
        }
        row(label, n + MCPGW_GOSSIP_ENVELOPE_OVERHEAD, now_ns() - t0, iters);
        t0 = now_ns();
        sealed[MCPGW_GOSSIP_ENVELOPE_HDR] ^= 1;
        for (long i = 0; i < iters; i++)
            sink += mcpgw_gossip_keyring_open(r, sealed, (size_t)n + MCPGW_GOSSIP_ENVELOPE_OVERHEAD,
                                              opened, sizeof(opened), &env);
        snprintf(label, sizeof(label), "v2 open of a forged datagram (%d records)", sizes[s]);
        row(label, n + MCPGW_GOSSIP_ENVELOPE_OVERHEAD, now_ns() - t0, iters);
    }
    for (int senders = 20; senders <= 1024; senders = senders == 20 ? 1024 : 2048) {
        struct mcpgw_gossip_replay *rp = mcpgw_gossip_replay_new(senders, 30000);
        char ids[1024][16], label[64];
        uint64_t t0;
        for (int i = 0; i < senders; i++)
            snprintf(ids[i], sizeof(ids[i]), "node-%d", i);
        t0 = now_ns();
        for (long i = 0; i < iters; i++)
            sink += mcpgw_gossip_replay_check(rp, ids[i % senders], 1, (uint64_t)(i / senders + 1),
                                              1000, 1000);
        snprintf(label, sizeof(label), "replay check (%d senders)", senders);
        row(label, 0, now_ns() - t0, iters);
        mcpgw_gossip_replay_free(rp);
    }
    mcpgw_gossip_keyring_free(r);
    return sink == 42 ? 2 : 0; /* keep the loops from being optimized away */
}
