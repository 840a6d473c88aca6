/* seal.c - AES-256-GCM sealed blobs under a rotating key ring (see seal.h and docs/security.md). */
#include "common/seal.h"

#include "common/b64.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define HDR 17 /* version, key id, nonce */
#define TAG 16

struct mcpgw_seal_ring {
    int n;
    uint32_t ids[MCPGW_SEAL_MAX_KEYS];
    uint8_t keys[MCPGW_SEAL_MAX_KEYS][32]; /* derived sealing keys */
};

static const char *const err_names[] = {"ok", "malformed", "no_key", "forged", "expired"};

const char *mcpgw_seal_err_str(int err)
{
    return err <= 0 && err > MCPGW_SEAL_ERR_COUNT ? err_names[-err] : "?";
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One key from a line's text; 0 or -1. */
static int parse_key(const char *s, size_t n, uint8_t key[32])
{
    char b64[64];
    size_t m = 0;
    if (n == 64) {
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
            if (hi < 0 || lo < 0)
                goto try_b64;
            key[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
try_b64:
    if (n != 43 && n != 44)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
        if (c == '=' && i == 43)
            break;
        b64[m++] = c;
    }
    return mcpgw_b64url_decode(b64, m, key, 32) == 32 ? 0 : -1;
}

struct mcpgw_seal_ring *mcpgw_seal_ring_parse(const char *text, size_t len, const char *name,
                                              char *err, size_t errlen)
{
    static const char label[] = "mcpgw requestState v1";
    struct mcpgw_seal_ring *r = xcalloc(1, sizeof(*r));
    size_t pos = 0;
    int lineno = 0;

    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        uint8_t key[32], digest[32];
        size_t dl = 0;
        pos += n + 1;
        lineno++;
        while (n && isspace((unsigned char)line[n - 1]))
            n--;
        while (n && isspace((unsigned char)*line)) {
            line++;
            n--;
        }
        if (n == 0 || line[0] == '#')
            continue;
        if (parse_key(line, n, key) < 0) {
            snprintf(err, errlen,
                     "%s line %d: not a 32-byte key (64 hex digits or 43/44 base64 characters)",
                     name, lineno);
            goto fail;
        }
        if (r->n == MCPGW_SEAL_MAX_KEYS) {
            snprintf(err, errlen, "%s line %d: more than %d keys", name, lineno,
                     MCPGW_SEAL_MAX_KEYS);
            OPENSSL_cleanse(key, sizeof(key));
            goto fail;
        }
        EVP_Digest(key, 32, digest, NULL, EVP_sha256(), NULL);
        r->ids[r->n] = (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 |
                       (uint32_t)digest[2] << 8 | digest[3];
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, (const unsigned char *)label,
                       sizeof(label) - 1, r->keys[r->n], 32, &dl) ||
            dl != 32) {
            snprintf(err, errlen, "%s: OpenSSL could not derive a key", name);
            OPENSSL_cleanse(key, sizeof(key));
            goto fail;
        }
        OPENSSL_cleanse(key, sizeof(key));
        r->n++;
    }
    return r;
fail:
    mcpgw_seal_ring_free(r);
    return NULL;
}

struct mcpgw_seal_ring *mcpgw_seal_ring_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;
    struct mcpgw_seal_ring *r = NULL;

    if (!f) {
        snprintf(err, errlen, "cannot open key ring %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(65537);
    n = fread(buf, 1, 65537, f);
    if (ferror(f))
        snprintf(err, errlen, "cannot read key ring %s: %s", path, strerror(errno));
    else if (n > 65536)
        snprintf(err, errlen, "key ring %s is larger than 64 KiB", path);
    else
        r = mcpgw_seal_ring_parse(buf, n, path, err, errlen);
    fclose(f);
    OPENSSL_cleanse(buf, n);
    free(buf);
    return r;
}

void mcpgw_seal_ring_free(struct mcpgw_seal_ring *r)
{
    if (!r)
        return;
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

int mcpgw_seal_ring_count(const struct mcpgw_seal_ring *r)
{
    return r ? r->n : 0;
}

uint32_t mcpgw_seal_ring_key_id(const struct mcpgw_seal_ring *r, int i)
{
    return r && i >= 0 && i < r->n ? r->ids[i] : 0;
}

/* Length-prefixed, so ("ab","c") and ("a","bc") differ; NULL is its own value. */
static void bind_field(EVP_MD_CTX *md, const void *p, size_t n, int null)
{
    uint8_t len[4];
    uint32_t v = null ? UINT32_MAX : (uint32_t)n;
    len[0] = (uint8_t)(v >> 24);
    len[1] = (uint8_t)(v >> 16);
    len[2] = (uint8_t)(v >> 8);
    len[3] = (uint8_t)v;
    EVP_DigestUpdate(md, len, 4);
    if (!null && n)
        EVP_DigestUpdate(md, p, n);
}

void mcpgw_seal_bind(struct mcpgw_seal_binding *b, const char *method, const char *name,
                     const void *params, size_t params_len, const char *principal)
{
    static const char label[] = "mcpgw requestState binding v1";
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t ph[32];

    if (!md)
        abort();
    EVP_Digest(params ? params : "", params ? params_len : 0, ph, NULL, EVP_sha256(), NULL);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    bind_field(md, label, sizeof(label), 0);
    bind_field(md, method, method ? strlen(method) : 0, !method);
    bind_field(md, name, name ? strlen(name) : 0, !name);
    bind_field(md, ph, sizeof(ph), 0);
    bind_field(md, principal ? principal : "", principal ? strlen(principal) : 0, 0);
    EVP_DigestFinal_ex(md, b->digest, NULL);
    EVP_MD_CTX_free(md);
}

/* Run AES-256-GCM over in[0..n) into out with aad = hdr || binding. enc = 1 seals (writes the
 * tag), 0 opens (checks it). Returns 1 on success. */
static int gcm(int enc, const uint8_t key[32], const uint8_t hdr[HDR],
               const struct mcpgw_seal_binding *b, const uint8_t *in, size_t n, uint8_t *out,
               uint8_t tag[TAG])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = 0, l;
    if (!ctx)
        return 0;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, hdr + 5, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &l, hdr, HDR) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &l, b->digest, sizeof(b->digest)) != 1 ||
        EVP_CipherUpdate(ctx, out, &l, in, (int)n) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, out + l, &l) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag) != 1)
        goto out;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

char *mcpgw_seal_seal(const struct mcpgw_seal_ring *r, const struct mcpgw_seal_binding *b,
                      uint64_t expires_ms, const void *data, size_t len)
{
    size_t total = MCPGW_SEAL_OVERHEAD + len;
    uint8_t *raw, *plain;
    char *text = NULL;

    if (!r || r->n == 0 || len > MCPGW_SEAL_MAX_DATA)
        return NULL;
    raw = xmalloc(total);
    plain = xmalloc(8 + len);
    raw[0] = MCPGW_SEAL_VERSION;
    for (int i = 0; i < 4; i++)
        raw[1 + i] = (uint8_t)(r->ids[0] >> (24 - 8 * i));
    /* A random 96-bit nonce: safe for 2^32 blobs per key (NIST SP 800-38D), far more than a key
     * seals between rotations. */
    if (RAND_bytes(raw + 5, 12) != 1)
        goto out;
    for (int i = 0; i < 8; i++)
        plain[i] = (uint8_t)(expires_ms >> (56 - 8 * i));
    if (len)
        memcpy(plain + 8, data, len);
    if (!gcm(1, r->keys[0], raw, b, plain, 8 + len, raw + HDR, raw + total - TAG))
        goto out;
    text = xmalloc(MCPGW_B64URL_LEN(total) + 1);
    mcpgw_b64url_encode(raw, total, text);
out:
    OPENSSL_cleanse(plain, 8 + len);
    free(plain);
    free(raw);
    return text;
}

int mcpgw_seal_open(const struct mcpgw_seal_ring *r, const struct mcpgw_seal_binding *b,
                    uint64_t now_ms, const char *text, size_t len, void **out, size_t *outlen)
{
    size_t cap = MCPGW_SEAL_OVERHEAD + MCPGW_SEAL_MAX_DATA;
    uint8_t *raw = NULL, *plain = NULL;
    uint64_t expires = 0;
    uint32_t id;
    long n;
    int k = -1, rc = MCPGW_SEAL_MALFORMED;

    *out = NULL;
    *outlen = 0;
    if (len < MCPGW_B64URL_LEN(MCPGW_SEAL_OVERHEAD) || len > MCPGW_B64URL_LEN(cap))
        goto out;
    raw = xmalloc(len);
    n = mcpgw_b64url_decode(text, len, raw, len);
    if (n < MCPGW_SEAL_OVERHEAD || raw[0] != MCPGW_SEAL_VERSION)
        goto out;
    id = (uint32_t)raw[1] << 24 | (uint32_t)raw[2] << 16 | (uint32_t)raw[3] << 8 | raw[4];
    for (int i = 0; r && i < r->n && k < 0; i++)
        if (r->ids[i] == id)
            k = i;
    rc = MCPGW_SEAL_NO_KEY;
    if (k < 0)
        goto out;
    plain = xmalloc((size_t)n - HDR - TAG + 1);
    rc = MCPGW_SEAL_FORGED;
    if (!gcm(0, r->keys[k], raw, b, raw + HDR, (size_t)n - HDR - TAG, plain, raw + n - TAG))
        goto out;
    for (int i = 0; i < 8; i++)
        expires = expires << 8 | plain[i];
    rc = MCPGW_SEAL_EXPIRED;
    if (now_ms >= expires)
        goto out;
    *outlen = (size_t)n - MCPGW_SEAL_OVERHEAD;
    memmove(plain, plain + 8, *outlen);
    plain[*outlen] = '\0';
    *out = plain;
    plain = NULL;
    rc = MCPGW_SEAL_OK;
out:
    free(plain);
    free(raw);
    return rc;
}
