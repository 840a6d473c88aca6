/* hash.c - FNV-1a with a 64-bit finalizer, and rendezvous hashing. */
#include "common/hash.h"

#include <string.h>

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

uint64_t mcpgw_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return fmix64(h ^ len);
}

uint64_t mcpgw_hrw_weight(uint64_t key_hash, const char *node_id)
{
    return fmix64(key_hash ^ mcpgw_hash64(node_id, strlen(node_id)));
}

int mcpgw_hrw_pick(const char *key, size_t keylen, const char *const *node_ids,
                   const unsigned char *usable, int n)
{
    uint64_t kh = mcpgw_hash64(key, keylen), best = 0;
    int winner = -1;
    for (int i = 0; i < n; i++) {
        if (usable && !usable[i])
            continue;
        uint64_t w = mcpgw_hrw_weight(kh, node_ids[i]);
        if (winner < 0 || w > best) {
            best = w;
            winner = i;
        }
    }
    return winner;
}
