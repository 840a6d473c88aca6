/* keyring.c - the gossip key ring file and the AES-256-GCM envelope (version 2) made with it. */
#include "gossip/keyring.h"

#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (64 * 1024)

struct key {
    uint8_t bytes[MCPGW_GOSSIP_KEY_BYTES];
    uint32_t id;
    /* Contexts keyed once at load: per datagram only the nonce is set, which is what makes the
     * envelope cost a microsecond rather than a key schedule. */
    EVP_CIPHER_CTX *enc, *dec;
};

struct mcpgw_gossip_keyring {
    int n;
    struct key keys[MCPGW_GOSSIP_MAX_KEYS];
};

const char *mcpgw_gossip_keyring_err_str(int err)
{
    static const char *const s[] = {"ok",
                                    "truncated envelope",
                                    "unknown version or suite",
                                    "sealed with a key we do not hold",
                                    "authentication failed",
                                    "no space"};
    return err <= 0 && err > MCPGW_GOSSIP_KEYRING_ERR_COUNT ? s[-err] : "?";
}

/* ---- the file ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* One key as 64 hex digits, or 32 bytes of base64 (standard or URL alphabet, padded or not).
 * Returns 0 and fills out, or -1. */
static int decode_key(const char *s, size_t n, uint8_t out[MCPGW_GOSSIP_KEY_BYTES])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;

    if (n == 2 * MCPGW_GOSSIP_KEY_BYTES) {
        for (size_t i = 0; i < MCPGW_GOSSIP_KEY_BYTES; i++) {
            int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
    if (n == 44 && s[43] == '=')
        n = 43;
    if (n != 43)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (uint8_t)(acc >> bits);
        }
    }
    /* 43 characters carry 258 bits: the last 2 must be zero, or this is not the canonical
     * encoding of 32 bytes (a typo would otherwise go unnoticed) */
    return k == MCPGW_GOSSIP_KEY_BYTES && (acc & ((1u << bits) - 1)) == 0 ? 0 : -1;
}

static uint32_t key_id_of(const uint8_t *key)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(key, MCPGW_GOSSIP_KEY_BYTES, md, &mdlen, EVP_sha256(), NULL))
        return 0;
    return (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
}

static int key_init(struct key *k)
{
    k->id = key_id_of(k->bytes);
    k->enc = EVP_CIPHER_CTX_new();
    k->dec = EVP_CIPHER_CTX_new();
    return k->enc && k->dec &&
           EVP_EncryptInit_ex(k->enc, EVP_aes_256_gcm(), NULL, k->bytes, NULL) == 1 &&
           EVP_DecryptInit_ex(k->dec, EVP_aes_256_gcm(), NULL, k->bytes, NULL) == 1;
}

void mcpgw_gossip_keyring_free(struct mcpgw_gossip_keyring *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        EVP_CIPHER_CTX_free(r->keys[i].enc);
        EVP_CIPHER_CTX_free(r->keys[i].dec);
    }
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

struct mcpgw_gossip_keyring *mcpgw_gossip_keyring_parse(const char *text, size_t len,
                                                        const char *name, char *err, size_t errlen)
{
    struct mcpgw_gossip_keyring *r = xcalloc(1, sizeof(*r));
    size_t pos = 0;
    int line = 0, key_line[MCPGW_GOSSIP_MAX_KEYS];

    while (pos < len) {
        size_t start = pos, end;
        struct key *k;

        while (pos < len && text[pos] != '\n')
            pos++;
        end = pos++;
        line++;
        while (start < end && isspace((unsigned char)text[start]))
            start++;
        while (end > start && isspace((unsigned char)text[end - 1]))
            end--;
        if (start == end || text[start] == '#')
            continue;
        if (r->n == MCPGW_GOSSIP_MAX_KEYS) {
            snprintf(err, errlen, "gossip key ring %s line %d: more than %d keys", name, line,
                     MCPGW_GOSSIP_MAX_KEYS);
            goto fail;
        }
        k = &r->keys[r->n];
        if (decode_key(text + start, end - start, k->bytes) < 0) {
            snprintf(err, errlen,
                     "gossip key ring %s line %d: not a 32-byte key written as 64 hex digits or "
                     "44 characters of base64",
                     name, line);
            goto fail;
        }
        if (!key_init(k)) {
            r->n++; /* so that free releases its contexts */
            snprintf(err, errlen, "gossip key ring %s: OpenSSL cannot set up AES-256-GCM", name);
            goto fail;
        }
        for (int i = 0; i < r->n; i++)
            if (r->keys[i].id == k->id) {
                snprintf(err, errlen, "gossip key ring %s line %d: the same key as line %d", name,
                         line, key_line[i]);
                r->n++;
                goto fail;
            }
        key_line[r->n++] = line;
    }
    return r;
fail:
    mcpgw_gossip_keyring_free(r);
    return NULL;
}

struct mcpgw_gossip_keyring *mcpgw_gossip_keyring_load(const char *path, char *err, size_t errlen)
{
    struct mcpgw_gossip_keyring *r = NULL;
    char *buf = xmalloc(MAX_FILE + 1);
    size_t n;
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, errlen, "cannot open the gossip key ring %s: %s", path, strerror(errno));
        goto out;
    }
    n = fread(buf, 1, MAX_FILE + 1, f);
    if (ferror(f) || n > MAX_FILE) {
        snprintf(err, errlen, "cannot read the gossip key ring %s: %s", path,
                 ferror(f) ? strerror(errno) : "larger than 64 KiB");
        goto out;
    }
    r = mcpgw_gossip_keyring_parse(buf, n, path, err, errlen);
out:
    if (f)
        fclose(f);
    OPENSSL_cleanse(buf, MAX_FILE + 1);
    free(buf);
    return r;
}

int mcpgw_gossip_keyring_count(const struct mcpgw_gossip_keyring *r)
{
    return r ? r->n : 0;
}

uint32_t mcpgw_gossip_keyring_key_id(const struct mcpgw_gossip_keyring *r, int i)
{
    return r && i >= 0 && i < r->n ? r->keys[i].id : 0;
}

/* ---- the envelope ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Header layout: version 0, suite 1, key id 2-5, salt 6-9, counter 10-17, sent_ms 18-25. The
 * nonce is bytes 6-17 (salt and counter), the whole header is the associated data. */
#define NONCE_OFF 6
#define NONCE_LEN 12

int mcpgw_gossip_keyring_seal(struct mcpgw_gossip_keyring *r, struct mcpgw_gossip_envelope *env,
                              const uint8_t *in, size_t inlen, uint8_t *out, size_t cap)
{
    struct key *k;
    int n = 0, fin = 0;

    if (!r || r->n == 0)
        return MCPGW_GOSSIP_KEYRING_NO_KEY;
    if (cap < MCPGW_GOSSIP_ENVELOPE_OVERHEAD || inlen > cap - MCPGW_GOSSIP_ENVELOPE_OVERHEAD)
        return MCPGW_GOSSIP_KEYRING_NOSPACE;
    k = &r->keys[0];
    env->version = MCPGW_GOSSIP_ENVELOPE_VERSION;
    env->suite = MCPGW_GOSSIP_SUITE_AES256GCM;
    env->key_id = k->id;
    out[0] = env->version;
    out[1] = env->suite;
    put32(out + 2, env->key_id);
    put32(out + 6, env->salt);
    put64(out + 10, env->counter);
    put64(out + 18, env->sent_ms);
    if (EVP_EncryptInit_ex(k->enc, NULL, NULL, NULL, out + NONCE_OFF) != 1 ||
        EVP_EncryptUpdate(k->enc, NULL, &n, out, MCPGW_GOSSIP_ENVELOPE_HDR) != 1 ||
        EVP_EncryptUpdate(k->enc, out + MCPGW_GOSSIP_ENVELOPE_HDR, &n, in, (int)inlen) != 1 ||
        EVP_EncryptFinal_ex(k->enc, out + MCPGW_GOSSIP_ENVELOPE_HDR + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(k->enc, EVP_CTRL_GCM_GET_TAG, MCPGW_GOSSIP_ENVELOPE_TAG,
                            out + MCPGW_GOSSIP_ENVELOPE_HDR + inlen) != 1)
        return MCPGW_GOSSIP_KEYRING_NO_KEY; /* cannot happen with a context keyed at load */
    return (int)(inlen + MCPGW_GOSSIP_ENVELOPE_OVERHEAD);
}

int mcpgw_gossip_keyring_open(struct mcpgw_gossip_keyring *r, const uint8_t *in, size_t len,
                              uint8_t *out, size_t cap, struct mcpgw_gossip_envelope *env)
{
    struct key *k = NULL;
    size_t clen;
    uint32_t id;
    int n = 0, fin = 0;

    if (len < 2)
        return MCPGW_GOSSIP_KEYRING_TRUNCATED;
    if (in[0] != MCPGW_GOSSIP_ENVELOPE_VERSION || in[1] != MCPGW_GOSSIP_SUITE_AES256GCM)
        return MCPGW_GOSSIP_KEYRING_VERSION;
    if (len <= MCPGW_GOSSIP_ENVELOPE_OVERHEAD || len > 0x7fffffff)
        return MCPGW_GOSSIP_KEYRING_TRUNCATED;
    clen = len - MCPGW_GOSSIP_ENVELOPE_OVERHEAD;
    if (cap < clen)
        return MCPGW_GOSSIP_KEYRING_NOSPACE;
    id = get32(in + 2);
    for (int i = 0; r && i < r->n && !k; i++)
        if (r->keys[i].id == id)
            k = &r->keys[i];
    if (!k)
        return MCPGW_GOSSIP_KEYRING_NO_KEY;
    if (EVP_DecryptInit_ex(k->dec, NULL, NULL, NULL, in + NONCE_OFF) != 1 ||
        EVP_DecryptUpdate(k->dec, NULL, &n, in, MCPGW_GOSSIP_ENVELOPE_HDR) != 1 ||
        EVP_DecryptUpdate(k->dec, out, &n, in + MCPGW_GOSSIP_ENVELOPE_HDR, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(k->dec, EVP_CTRL_GCM_SET_TAG, MCPGW_GOSSIP_ENVELOPE_TAG,
                            (void *)(in + MCPGW_GOSSIP_ENVELOPE_HDR + clen)) != 1 ||
        EVP_DecryptFinal_ex(k->dec, out + n, &fin) != 1)
        return MCPGW_GOSSIP_KEYRING_FORGED;
    env->version = in[0];
    env->suite = in[1];
    env->key_id = id;
    env->salt = get32(in + 6);
    env->counter = get64(in + 10);
    env->sent_ms = get64(in + 18);
    return (int)clen;
}
