/* ids.c - random identifiers from OpenSSL's CSPRNG. */
#include "common/ids.h"

#include <openssl/rand.h>
#include <string.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t mcpgw_base64url(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

int mcpgw_id_new(const char *prefix, char *out, size_t outlen)
{
    unsigned char raw[16];
    size_t pl = prefix ? strlen(prefix) : 0;
    size_t need = (pl ? pl + 1 : 0) + MCPGW_ID_RAND_CHARS + 1;

    if (outlen < need || RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    if (pl) {
        memcpy(out, prefix, pl);
        out[pl] = '.';
        pl++;
    }
    mcpgw_base64url(raw, sizeof(raw), out + pl);
    return 0;
}
