/* tokcache.c - verified-token cache: a 4-way set-associative table of fixed size, so memory is
 * bounded by construction and every operation is a hash and four comparisons. */
#include "common/tokcache.h"

#include "common/util.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct slot {
    uint8_t key[32]; /* SHA-256 of the token: the token itself is never stored */
    int64_t until;   /* dead at or after this wall second; 0 = empty */
    int64_t exp;
    char *principal;
    char *scopes;
    char *claims; /* NULL when none were kept */
};

struct mcpgw_tokcache {
    size_t nsets; /* power of two */
    int64_t max_age_s;
    size_t used;
    uint64_t hits, misses;
    EVP_MD *sha256;     /* fetched once: an implicit fetch per digest costs more than the hash */
    struct slot *slots; /* nsets * WAYS */
};

struct mcpgw_tokcache *mcpgw_tokcache_new(size_t capacity, int64_t max_age_s)
{
    struct mcpgw_tokcache *c = xcalloc(1, sizeof(*c));
    size_t sets = 1;
    while (sets * WAYS < capacity)
        sets <<= 1;
    c->nsets = sets;
    c->max_age_s = max_age_s > 0 ? max_age_s : 300;
    c->slots = xcalloc(sets * WAYS, sizeof(struct slot));
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!c->sha256)
        abort();
    return c;
}

static void slot_clear(struct mcpgw_tokcache *c, struct slot *s)
{
    if (s->until)
        c->used--;
    free(s->principal);
    free(s->scopes);
    free(s->claims);
    memset(s, 0, sizeof(*s));
}

void mcpgw_tokcache_clear(struct mcpgw_tokcache *c)
{
    for (size_t i = 0; i < c->nsets * WAYS; i++)
        slot_clear(c, &c->slots[i]);
}

void mcpgw_tokcache_free(struct mcpgw_tokcache *c)
{
    if (!c)
        return;
    mcpgw_tokcache_clear(c);
    free(c->slots);
    EVP_MD_free(c->sha256);
    free(c);
}

static struct slot *set_of(struct mcpgw_tokcache *c, const char *tok, size_t len, uint8_t *key)
{
    uint64_t h;
    EVP_Digest(tok, len, key, NULL, c->sha256, NULL);
    memcpy(&h, key, sizeof(h));
    return &c->slots[(h & (c->nsets - 1)) * WAYS];
}

int mcpgw_tokcache_get(struct mcpgw_tokcache *c, const char *tok, size_t len, int64_t now_s,
                       struct mcpgw_tokcache_entry *out)
{
    uint8_t key[32];
    struct slot *set = set_of(c, tok, len, key);
    for (int i = 0; i < WAYS; i++) {
        struct slot *s = &set[i];
        if (!s->until || memcmp(s->key, key, sizeof(key)) != 0)
            continue;
        if (now_s >= s->until) {
            slot_clear(c, s);
            break;
        }
        out->principal = s->principal;
        out->scopes = s->scopes;
        out->claims = s->claims;
        out->exp = s->exp;
        c->hits++;
        return 1;
    }
    c->misses++;
    return 0;
}

void mcpgw_tokcache_put(struct mcpgw_tokcache *c, const char *tok, size_t len, int64_t now_s,
                        const char *principal, const char *scopes, int64_t exp)
{
    mcpgw_tokcache_put_claims(c, tok, len, now_s, principal, scopes, NULL, exp);
}

void mcpgw_tokcache_put_claims(struct mcpgw_tokcache *c, const char *tok, size_t len, int64_t now_s,
                               const char *principal, const char *scopes, const char *claims,
                               int64_t exp)
{
    uint8_t key[32];
    struct slot *set = set_of(c, tok, len, key), *victim = NULL;
    int64_t until = now_s + c->max_age_s < exp ? now_s + c->max_age_s : exp;

    if (until <= now_s)
        return;
    for (int i = 0; i < WAYS && !victim; i++)
        if (set[i].until && memcmp(set[i].key, key, sizeof(key)) == 0)
            victim = &set[i];
    for (int i = 0; i < WAYS && !victim; i++)
        if (!set[i].until || set[i].until <= now_s)
            victim = &set[i];
    if (!victim) {
        victim = &set[0];
        for (int i = 1; i < WAYS; i++)
            if (set[i].until < victim->until)
                victim = &set[i];
    }
    slot_clear(c, victim);
    memcpy(victim->key, key, sizeof(key));
    victim->until = until;
    victim->exp = exp;
    victim->principal = xstrdup(principal);
    victim->scopes = xstrdup(scopes ? scopes : "");
    victim->claims = claims ? xstrdup(claims) : NULL;
    c->used++;
}

size_t mcpgw_tokcache_size(const struct mcpgw_tokcache *c)
{
    return c->used;
}

uint64_t mcpgw_tokcache_hits(const struct mcpgw_tokcache *c)
{
    return c->hits;
}

uint64_t mcpgw_tokcache_misses(const struct mcpgw_tokcache *c)
{
    return c->misses;
}
