/* registry.c - sharded session registry with per-shard subscription indexes. */
#include "node/registry.h"

#include "common/hash.h"
#include "common/util.h"
#include "node/session.h"

#include <stdlib.h>
#include <string.h>

struct sub_entry {
    struct sub_entry *next;
    uint64_t hash;
    struct mcpgw_session **sess;
    uint32_t n, cap;
    char uri[]; /* NUL-terminated */
};

struct shard {
    struct mcpgw_session **tab;
    uint32_t mask; /* table size - 1 (a power of two) */
    uint32_t count;
    struct sub_entry **subs;
    uint32_t subs_mask;
    uint32_t subs_count;
    uint64_t sub_pairs;
};

struct mcpgw_registry {
    unsigned bits;
    struct shard *shards;
    struct mcpgw_session *oldest, *youngest;
    uint64_t count;
};

struct mcpgw_registry *mcpgw_registry_new(unsigned shard_bits)
{
    struct mcpgw_registry *r = xcalloc(1, sizeof(*r));
    if (shard_bits > 16)
        shard_bits = 16;
    r->bits = shard_bits;
    r->shards = xcalloc((size_t)1 << shard_bits, sizeof(*r->shards));
    return r;
}

void mcpgw_registry_free(struct mcpgw_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < ((size_t)1 << r->bits); i++) {
        struct shard *sh = &r->shards[i];
        for (uint32_t b = 0; sh->subs && b <= sh->subs_mask; b++) {
            struct sub_entry *e = sh->subs[b], *n;
            for (; e; e = n) {
                n = e->next;
                free(e->sess);
                free(e);
            }
        }
        free(sh->subs);
        free(sh->tab);
    }
    free(r->shards);
    free(r);
}

/* The low bits of the hash pick the bucket; the high bits pick the shard. */
static struct shard *shard_of(struct mcpgw_registry *r, uint64_t h)
{
    return &r->shards[r->bits ? h >> (64 - r->bits) : 0];
}

static void grow(struct shard *sh)
{
    uint32_t nsize = sh->tab ? (sh->mask + 1) * 2 : 8;
    struct mcpgw_session **nt = xcalloc(nsize, sizeof(*nt));
    for (uint32_t b = 0; sh->tab && b <= sh->mask; b++) {
        struct mcpgw_session *s = sh->tab[b], *n;
        for (; s; s = n) {
            n = s->hnext;
            s->hnext = nt[s->hash & (nsize - 1)];
            nt[s->hash & (nsize - 1)] = s;
        }
    }
    free(sh->tab);
    sh->tab = nt;
    sh->mask = nsize - 1;
}

static void idle_unlink(struct mcpgw_registry *r, struct mcpgw_session *s)
{
    if (s->idle_prev)
        s->idle_prev->idle_next = s->idle_next;
    else if (r->oldest == s)
        r->oldest = s->idle_next;
    if (s->idle_next)
        s->idle_next->idle_prev = s->idle_prev;
    else if (r->youngest == s)
        r->youngest = s->idle_prev;
    s->idle_prev = s->idle_next = NULL;
}

static void idle_append(struct mcpgw_registry *r, struct mcpgw_session *s)
{
    s->idle_prev = r->youngest;
    s->idle_next = NULL;
    if (r->youngest)
        r->youngest->idle_next = s;
    else
        r->oldest = s;
    r->youngest = s;
}

struct mcpgw_session *mcpgw_registry_lookup(struct mcpgw_registry *r, const char *id, size_t len)
{
    uint64_t h = mcpgw_hash64(id, len);
    struct shard *sh = shard_of(r, h);
    if (!sh->tab || len >= MCPGW_SESSION_ID_MAX)
        return NULL;
    for (struct mcpgw_session *s = sh->tab[h & sh->mask]; s; s = s->hnext)
        if (s->hash == h && strncmp(s->id, id, len) == 0 && s->id[len] == '\0')
            return s;
    return NULL;
}

int mcpgw_registry_insert(struct mcpgw_registry *r, struct mcpgw_session *s)
{
    struct shard *sh;
    size_t len = strlen(s->id);
    s->hash = mcpgw_hash64(s->id, len);
    if (mcpgw_registry_lookup(r, s->id, len))
        return -1;
    sh = shard_of(r, s->hash);
    if (!sh->tab || sh->count >= (sh->mask + 1))
        grow(sh);
    s->hnext = sh->tab[s->hash & sh->mask];
    sh->tab[s->hash & sh->mask] = s;
    sh->count++;
    r->count++;
    idle_append(r, s);
    return 0;
}

static struct sub_entry **sub_slot(struct shard *sh, const char *uri, uint64_t h)
{
    struct sub_entry **pp;
    if (!sh->subs)
        return NULL;
    for (pp = &sh->subs[h & sh->subs_mask]; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->uri, uri) == 0)
            return pp;
    return pp;
}

static void sub_grow(struct shard *sh)
{
    uint32_t nsize = sh->subs ? (sh->subs_mask + 1) * 2 : 4;
    struct sub_entry **nt = xcalloc(nsize, sizeof(*nt));
    for (uint32_t b = 0; sh->subs && b <= sh->subs_mask; b++) {
        struct sub_entry *e = sh->subs[b], *n;
        for (; e; e = n) {
            n = e->next;
            e->next = nt[e->hash & (nsize - 1)];
            nt[e->hash & (nsize - 1)] = e;
        }
    }
    free(sh->subs);
    sh->subs = nt;
    sh->subs_mask = nsize - 1;
}

static int index_del(struct shard *sh, struct mcpgw_session *s, const char *uri)
{
    uint64_t h = mcpgw_hash64(uri, strlen(uri));
    struct sub_entry **pp = sub_slot(sh, uri, h), *e;
    if (!pp || !*pp)
        return 0;
    e = *pp;
    for (uint32_t i = 0; i < e->n; i++)
        if (e->sess[i] == s) {
            e->sess[i] = e->sess[--e->n];
            sh->sub_pairs--;
            break;
        }
    if (e->n == 0) {
        *pp = e->next;
        free(e->sess);
        free(e);
        sh->subs_count--;
    }
    return 1;
}

void mcpgw_registry_remove(struct mcpgw_registry *r, struct mcpgw_session *s)
{
    struct shard *sh = shard_of(r, s->hash);
    struct mcpgw_session **pp;
    for (uint32_t i = 0; i < s->nsubs; i++)
        index_del(sh, s, s->subs[i]);
    if (!sh->tab)
        return;
    for (pp = &sh->tab[s->hash & sh->mask]; *pp; pp = &(*pp)->hnext)
        if (*pp == s) {
            *pp = s->hnext;
            s->hnext = NULL;
            sh->count--;
            r->count--;
            idle_unlink(r, s);
            if (sh->count == 0) {
                free(sh->tab);
                sh->tab = NULL;
                sh->mask = 0;
            }
            return;
        }
}

void mcpgw_registry_touch(struct mcpgw_registry *r, struct mcpgw_session *s, uint64_t now_ms)
{
    s->last_active_ms = now_ms;
    if (r->youngest != s) {
        idle_unlink(r, s);
        idle_append(r, s);
    }
}

struct mcpgw_session *mcpgw_registry_oldest_idle(struct mcpgw_registry *r, uint64_t older_than_ms)
{
    return r->oldest && r->oldest->last_active_ms < older_than_ms ? r->oldest : NULL;
}

int mcpgw_registry_subscribe(struct mcpgw_registry *r, struct mcpgw_session *s, const char *uri)
{
    struct shard *sh = shard_of(r, s->hash);
    uint64_t h;
    struct sub_entry **pp, *e;
    if (!mcpgw_session_sub_add(s, uri))
        return 0;
    if (!sh->subs || sh->subs_count >= sh->subs_mask + 1)
        sub_grow(sh);
    h = mcpgw_hash64(uri, strlen(uri));
    pp = sub_slot(sh, uri, h);
    e = *pp;
    if (!e) {
        size_t ul = strlen(uri);
        e = xcalloc(1, sizeof(*e) + ul + 1);
        memcpy(e->uri, uri, ul + 1);
        e->hash = h;
        *pp = e;
        sh->subs_count++;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->sess = xrealloc(e->sess, e->cap * sizeof(*e->sess));
    }
    e->sess[e->n++] = s;
    sh->sub_pairs++;
    return 1;
}

int mcpgw_registry_unsubscribe(struct mcpgw_registry *r, struct mcpgw_session *s, const char *uri)
{
    if (!mcpgw_session_sub_del(s, uri))
        return 0;
    index_del(shard_of(r, s->hash), s, uri);
    return 1;
}

size_t mcpgw_registry_foreach_subscriber_from(struct mcpgw_registry *r, const char *uri,
                                              size_t *shard, size_t budget,
                                              void (*fn)(void *arg, struct mcpgw_session *s),
                                              void *arg)
{
    uint64_t h = mcpgw_hash64(uri, strlen(uri));
    size_t visited = 0;
    while (*shard < ((size_t)1 << r->bits) && visited < budget) {
        struct shard *sh = &r->shards[(*shard)++];
        struct sub_entry **pp;
        if (!sh->subs_count)
            continue;
        pp = sub_slot(sh, uri, h);
        if (pp && *pp) {
            for (uint32_t j = 0; j < (*pp)->n; j++)
                fn(arg, (*pp)->sess[j]);
            visited += (*pp)->n;
        }
    }
    return visited;
}

int mcpgw_registry_subscriber_shards_left(const struct mcpgw_registry *r, size_t shard)
{
    return shard < ((size_t)1 << r->bits);
}

void mcpgw_registry_foreach_subscriber(struct mcpgw_registry *r, const char *uri,
                                       void (*fn)(void *arg, struct mcpgw_session *s), void *arg)
{
    size_t shard = 0;
    mcpgw_registry_foreach_subscriber_from(r, uri, &shard, SIZE_MAX, fn, arg);
}

void mcpgw_registry_foreach(struct mcpgw_registry *r,
                            void (*fn)(void *arg, struct mcpgw_session *s), void *arg)
{
    for (struct mcpgw_session *s = r->oldest; s; s = s->idle_next)
        fn(arg, s);
}

size_t mcpgw_registry_shard_count(const struct mcpgw_registry *r)
{
    return (size_t)1 << r->bits;
}

void mcpgw_registry_foreach_in_shard(struct mcpgw_registry *r, size_t shard,
                                     void (*fn)(void *arg, struct mcpgw_session *s), void *arg)
{
    struct shard *sh = &r->shards[shard];
    for (uint32_t b = 0; sh->tab && b <= sh->mask; b++)
        for (struct mcpgw_session *s = sh->tab[b]; s; s = s->hnext)
            fn(arg, s);
}

void mcpgw_registry_stats(const struct mcpgw_registry *r, struct mcpgw_registry_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->shards = 1u << r->bits;
    st->sessions = r->count;
    for (size_t i = 0; i < ((size_t)1 << r->bits); i++) {
        st->sub_uris += r->shards[i].subs_count;
        st->sub_entries += r->shards[i].sub_pairs;
    }
}

unsigned mcpgw_registry_longest_chain(const struct mcpgw_registry *r)
{
    unsigned longest = 0;
    for (size_t i = 0; i < ((size_t)1 << r->bits); i++) {
        const struct shard *sh = &r->shards[i];
        for (uint32_t b = 0; sh->tab && b <= sh->mask; b++) {
            unsigned n = 0;
            for (const struct mcpgw_session *s = sh->tab[b]; s; s = s->hnext)
                n++;
            if (n > longest)
                longest = n;
        }
    }
    return longest;
}
