/* hash.h - fast non-cryptographic hashing and rendezvous (HRW) selection. */
#ifndef MCPGW_COMMON_HASH_H
#define MCPGW_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of a byte string (FNV-1a core with a murmur-style finalizer for avalanche).
 * Stable across processes and versions: routing depends on it. */
uint64_t mcpgw_hash64(const void *data, size_t len);

/* Rendezvous weight of (key, node): the node with the highest weight wins. */
uint64_t mcpgw_hrw_weight(uint64_t key_hash, const char *node_id);

/* Index of the HRW winner among n candidate node ids, skipping those whose usable[i] is 0
 * (usable may be NULL: all usable). Returns -1 when none is usable. */
int mcpgw_hrw_pick(const char *key, size_t keylen, const char *const *node_ids,
                   const unsigned char *usable, int n);

#endif
