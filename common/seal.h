/* seal.h - small blobs sealed with AES-256-GCM under the cluster key ring and bound to a request
 * and a principal, with an expiry inside: MRTR's requestState, which travels with the client so
 * any node can continue the round. The format is in docs/security.md, "Sealed state". */
#ifndef MCPGW_COMMON_SEAL_H
#define MCPGW_COMMON_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define MCPGW_SEAL_VERSION   1
#define MCPGW_SEAL_KEY_BYTES 32
#define MCPGW_SEAL_MAX_KEYS  16
#define MCPGW_SEAL_OVERHEAD  (1 + 4 + 12 + 8 + 16) /* version, key id, nonce, expiry, tag */
#define MCPGW_SEAL_MAX_DATA  (64 << 10)            /* bytes of one sealed blob */

enum mcpgw_seal_err {
    MCPGW_SEAL_OK = 0,
    MCPGW_SEAL_MALFORMED = -1, /* not base64url, too short or too long, or another version */
    MCPGW_SEAL_NO_KEY = -2,    /* sealed under a key id our ring does not hold (rotated out) */
    MCPGW_SEAL_FORGED = -3,    /* the tag does not verify: altered, another cluster's key, or
                                  bound to another request or principal (AEAD cannot tell which) */
    MCPGW_SEAL_EXPIRED = -4,   /* authentic, but its expiry has passed */
    MCPGW_SEAL_ERR_COUNT = -5  /* sentinel */
};
/* "malformed", "no_key", "forged", "expired". */
const char *mcpgw_seal_err_str(int err);

struct mcpgw_seal_ring;

/* Parse a key ring's text, the same shape as the gossip key ring: one 32-byte key per line as 64
 * hex digits or base64 (standard or URL alphabet, with or without padding); blank lines and lines
 * starting with '#' skipped; the first key is the primary (it seals), every key opens. Keys are
 * not used directly: each is turned into a sealing key by HMAC-SHA256(key, "mcpgw requestState
 * v1"), so one ring may serve gossip and sealed state without one key doing two jobs. Returns the
 * ring (free with mcpgw_seal_ring_free; it may hold 0 keys), or NULL with a sentence naming the
 * line in err. text is borrowed; name is only used in messages. */
struct mcpgw_seal_ring *mcpgw_seal_ring_parse(const char *text, size_t len, const char *name,
                                              char *err, size_t errlen);
/* Read and parse the file at path (at most 64 KiB). Returns the ring or NULL with err. */
struct mcpgw_seal_ring *mcpgw_seal_ring_load(const char *path, char *err, size_t errlen);
/* Wipes the keys and frees. NULL is fine. */
void mcpgw_seal_ring_free(struct mcpgw_seal_ring *r);
int mcpgw_seal_ring_count(const struct mcpgw_seal_ring *r);
/* Key i's id (0 = primary): the first 4 bytes of SHA-256 of the ring key, as gossip names keys. */
uint32_t mcpgw_seal_ring_key_id(const struct mcpgw_seal_ring *r, int i);

/* What a sealed blob is bound to: a digest of the request (method, name, a hash of its params)
 * and the principal. Opening with a binding made from anything else fails as FORGED. */
struct mcpgw_seal_binding {
    uint8_t digest[32];
};
/* Fill b from the request's method and name (e.g. "tools/call", "deploy"), its params as sent
 * (params_len bytes; the caller hashes what it will see again on the retry, e.g. the arguments)
 * and the principal ("" or NULL before authentication). NULL and "" differ for method/name. */
void mcpgw_seal_bind(struct mcpgw_seal_binding *b, const char *method, const char *name,
                     const void *params, size_t params_len, const char *principal);

/* Seal data[0..len) (len <= MCPGW_SEAL_MAX_DATA) with the primary key, bound to b, valid until
 * wall time expires_ms. Returns a base64url text (free it), or NULL when the ring is empty or
 * data too long. */
char *mcpgw_seal_seal(const struct mcpgw_seal_ring *r, const struct mcpgw_seal_binding *b,
                      uint64_t expires_ms, const void *data, size_t len);
/* Open the text[0..len) that mcpgw_seal_seal returned, at wall time now_ms, for binding b. On
 * MCPGW_SEAL_OK *out is the data (free it; one extra NUL byte follows for convenience) and
 * *outlen its length; otherwise a mcpgw_seal_err and *out is NULL. */
int mcpgw_seal_open(const struct mcpgw_seal_ring *r, const struct mcpgw_seal_binding *b,
                    uint64_t now_ms, const char *text, size_t len, void **out, size_t *outlen);

#endif
