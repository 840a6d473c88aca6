/* keyring.h - the gossip key ring and the version-2 security envelope sealed and opened with it
 * (AES-256-GCM around a version-1 datagram); the spec is docs/gossip.md, "Wire format (version 2)".
 */
#ifndef MCPGW_GOSSIP_KEYRING_H
#define MCPGW_GOSSIP_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#define MCPGW_GOSSIP_ENVELOPE_VERSION  2
#define MCPGW_GOSSIP_SUITE_AES256GCM   1  /* the only suite so far */
#define MCPGW_GOSSIP_ENVELOPE_HDR      26 /* version, suite, key id, salt, counter, sent_ms */
#define MCPGW_GOSSIP_ENVELOPE_TAG      16
#define MCPGW_GOSSIP_ENVELOPE_OVERHEAD (MCPGW_GOSSIP_ENVELOPE_HDR + MCPGW_GOSSIP_ENVELOPE_TAG)
#define MCPGW_GOSSIP_KEY_BYTES         32
#define MCPGW_GOSSIP_MAX_KEYS          16 /* keys in one ring: rotation needs two or three */

struct mcpgw_gossip_keyring;

/* The authenticated header of a sealed datagram, as the sender wrote it. */
struct mcpgw_gossip_envelope {
    uint8_t version;  /* MCPGW_GOSSIP_ENVELOPE_VERSION */
    uint8_t suite;    /* MCPGW_GOSSIP_SUITE_* */
    uint32_t key_id;  /* which key sealed it (first 4 bytes of SHA-256 of the key) */
    uint32_t salt;    /* random per sending process; with counter, the GCM nonce */
    uint64_t counter; /* +1 per datagram the process sends: the replay window's sequence */
    uint64_t sent_ms; /* the sender's wall clock when it sealed the datagram */
};

enum mcpgw_gossip_keyring_err {
    MCPGW_GOSSIP_KEYRING_OK = 0,
    MCPGW_GOSSIP_KEYRING_TRUNCATED = -1, /* shorter than header + tag, or longer than a datagram */
    MCPGW_GOSSIP_KEYRING_VERSION = -2,   /* not version 2, or a suite we do not know */
    MCPGW_GOSSIP_KEYRING_NO_KEY = -3,    /* sealed with a key id that is not in our ring */
    MCPGW_GOSSIP_KEYRING_FORGED = -4,    /* the tag does not verify: altered or wrong key */
    MCPGW_GOSSIP_KEYRING_NOSPACE = -5,   /* seal: the output buffer is too small */
    MCPGW_GOSSIP_KEYRING_ERR_COUNT = -6  /* sentinel: one past the last code */
};
const char *mcpgw_gossip_keyring_err_str(int err);

/* Parse a key ring file's text: one key per line, 32 bytes written as 64 hex digits or as
 * base64 (44 characters with padding, 43 without); blank lines and lines starting with '#'
 * are skipped; the first key is the primary (it seals what we send), all of them open. A text
 * with no key gives an empty ring (count 0). Returns the ring (free with
 * mcpgw_gossip_keyring_free), or NULL with a sentence naming the line in err. text is borrowed;
 * name is only used in messages. */
struct mcpgw_gossip_keyring *mcpgw_gossip_keyring_parse(const char *text, size_t len,
                                                        const char *name, char *err, size_t errlen);
/* Read and parse the file at path (at most 64 KiB). Returns the ring or NULL with err. */
struct mcpgw_gossip_keyring *mcpgw_gossip_keyring_load(const char *path, char *err, size_t errlen);
/* Wipes the keys and frees. NULL is fine. */
void mcpgw_gossip_keyring_free(struct mcpgw_gossip_keyring *r);

/* Keys in the ring (0 for NULL), and the id of key i (0 = the primary). */
int mcpgw_gossip_keyring_count(const struct mcpgw_gossip_keyring *r);
uint32_t mcpgw_gossip_keyring_key_id(const struct mcpgw_gossip_keyring *r, int i);

/* Seal the version-1 datagram in[0..inlen) into out with the primary key, env giving salt,
 * counter and sent_ms (the rest is filled in). The caller never reuses a (salt, counter) pair
 * with one key. Returns the sealed length (inlen + MCPGW_GOSSIP_ENVELOPE_OVERHEAD), or a negative
 * enum mcpgw_gossip_keyring_err (NO_KEY for an empty ring, NOSPACE). */
int mcpgw_gossip_keyring_seal(struct mcpgw_gossip_keyring *r, struct mcpgw_gossip_envelope *env,
                              const uint8_t *in, size_t inlen, uint8_t *out, size_t cap);
/* Check and decrypt a sealed datagram of len bytes (any bytes are safe: lengths are checked
 * before anything is read). The key is chosen by the key id in the header, so a forged datagram
 * costs at most one decryption and no trial of every key. On success fills *env and returns the
 * plaintext length (out must hold len bytes); otherwise a negative enum mcpgw_gossip_keyring_err
 * and out holds nothing usable. r may be NULL (NO_KEY for any well-formed envelope). */
int mcpgw_gossip_keyring_open(struct mcpgw_gossip_keyring *r, const uint8_t *in, size_t len,
                              uint8_t *out, size_t cap, struct mcpgw_gossip_envelope *env);

#endif
