/* apikey.c - hashed API key table (see apikey.h). SHA-256, not a slow password hash: the keys are
 * random with >= 128 bits of entropy, so a stolen table cannot be brute-forced anyway, and a slow
 * hash would cost milliseconds of CPU on every request (docs/security.md, "API keys"). */
#include "common/apikey.h"

#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    uint8_t hash[32];
    char *principal;
    char *scopes;
};

struct mcpgw_apikey_set {
    int n, cap;
    struct entry *e;
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Next whitespace-separated word of line[*pos..n); returns its length (0 at the end). */
static size_t word(const char *line, size_t n, size_t *pos, const char **w)
{
    size_t start;
    while (*pos < n && isspace((unsigned char)line[*pos]))
        (*pos)++;
    start = *pos;
    while (*pos < n && !isspace((unsigned char)line[*pos]))
        (*pos)++;
    *w = line + start;
    return *pos - start;
}

/* One non-blank, non-comment line into s. Returns 0 or -1 with err. */
static int parse_line(struct mcpgw_apikey_set *s, const char *line, size_t n, const char *name,
                      int lineno, char *err, size_t errlen)
{
    const char *p, *h, *w;
    size_t pos = 0, pl = word(line, n, &pos, &p), hl = word(line, n, &pos, &h), wl, sl = 0;
    struct entry e = {0};

    if (hl != 64) {
        snprintf(err, errlen, "%s line %d: want \"<principal> <sha256-hex> [scopes...]\"", name,
                 lineno);
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)h[2 * i]), lo = hexval((unsigned char)h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "%s line %d: the hash is not 64 hex digits", name, lineno);
            return -1;
        }
        e.hash[i] = (uint8_t)(hi << 4 | lo);
    }
    if (s->n == MCPGW_APIKEY_MAX) {
        snprintf(err, errlen, "%s line %d: more than %d keys", name, lineno, MCPGW_APIKEY_MAX);
        return -1;
    }
    e.principal = xstrndup(p, pl);
    e.scopes = xmalloc(n + 1);
    e.scopes[0] = '\0';
    while ((wl = word(line, n, &pos, &w)) > 0) {
        if (sl)
            e.scopes[sl++] = ' ';
        memcpy(e.scopes + sl, w, wl);
        sl += wl;
        e.scopes[sl] = '\0';
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->e = xrealloc(s->e, (size_t)s->cap * sizeof(*s->e));
    }
    s->e[s->n++] = e;
    return 0;
}

/* Entries are separated by newlines, and by ';' too when semis is set (environment values). */
static struct mcpgw_apikey_set *parse(const char *text, size_t len, int semis, const char *name,
                                      char *err, size_t errlen)
{
    struct mcpgw_apikey_set *s = xcalloc(1, sizeof(*s));
    size_t pos = 0;
    int lineno = 0;

    while (pos < len) {
        const char *line = text + pos;
        size_t n = 0;
        while (pos + n < len && line[n] != '\n' && !(semis && line[n] == ';'))
            n++;
        pos += n + 1;
        lineno++;
        while (n && isspace((unsigned char)*line)) {
            line++;
            n--;
        }
        while (n && isspace((unsigned char)line[n - 1]))
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        if (parse_line(s, line, n, name, lineno, err, errlen) < 0) {
            mcpgw_apikey_set_free(s);
            return NULL;
        }
    }
    return s;
}

struct mcpgw_apikey_set *mcpgw_apikey_parse(const char *text, size_t len, const char *name,
                                            char *err, size_t errlen)
{
    return parse(text, len, 0, name, err, errlen);
}

struct mcpgw_apikey_set *mcpgw_apikey_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    size_t cap = (1 << 20) + 1, n;
    char *buf;
    struct mcpgw_apikey_set *s = NULL;

    if (!f) {
        snprintf(err, errlen, "cannot open API key file %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(cap);
    n = fread(buf, 1, cap, f);
    if (ferror(f))
        snprintf(err, errlen, "cannot read API key file %s: %s", path, strerror(errno));
    else if (n == cap)
        snprintf(err, errlen, "API key file %s is larger than 1 MiB", path);
    else
        s = parse(buf, n, 0, path, err, errlen);
    fclose(f);
    free(buf);
    return s;
}

struct mcpgw_apikey_set *mcpgw_apikey_from_env(const char *var, char *err, size_t errlen)
{
    const char *v = getenv(var);
    return parse(v ? v : "", v ? strlen(v) : 0, 1, var, err, errlen);
}

void mcpgw_apikey_set_free(struct mcpgw_apikey_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].principal);
        free(s->e[i].scopes);
    }
    free(s->e);
    free(s);
}

int mcpgw_apikey_count(const struct mcpgw_apikey_set *s)
{
    return s ? s->n : 0;
}

int mcpgw_apikey_lookup(const struct mcpgw_apikey_set *s, const char *key, size_t len,
                        const char **principal, const char **scopes)
{
    uint8_t h[32];
    int found = -1;

    if (!s || len < MCPGW_APIKEY_MIN_LEN)
        return -1;
    EVP_Digest(key, len, h, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < s->n; i++) {
        /* No break: the loop takes the same time wherever (and whether) the key matches. */
        int same = CRYPTO_memcmp(h, s->e[i].hash, sizeof(h)) == 0;
        found = same && found < 0 ? i : found;
    }
    if (found < 0)
        return -1;
    *principal = s->e[found].principal;
    *scopes = s->e[found].scopes;
    return 0;
}

void mcpgw_apikey_hash_hex(const char *key, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[32];
    EVP_Digest(key, len, h, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = '\0';
}
