/* members.c - the gossip member table: records, lookup, probe order, random picks. */
#include "gossip/members.h"

#include "common/hash.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PICK 16

void mcpgw_gossip_members_init(struct mcpgw_gossip_members *t, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->rng = seed ? seed : 1;
}

void mcpgw_gossip_members_deinit(struct mcpgw_gossip_members *t)
{
    while (t->n > 0)
        free(t->m[--t->n]);
    free(t->m);
    free(t->scratch);
    free(t->probe);
    memset(t, 0, sizeof(*t));
}

uint64_t mcpgw_gossip_members_rand(struct mcpgw_gossip_members *t)
{
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int mcpgw_gossip_members_rand_below(struct mcpgw_gossip_members *t, int n)
{
    return n > 0 ? (int)(mcpgw_gossip_members_rand(t) % (uint64_t)n) : 0;
}

int mcpgw_gossip_members_probeable(const struct mcpgw_gossip_member *m)
{
    return m->pub.state == MCPGW_MEMBER_ALIVE || m->pub.state == MCPGW_MEMBER_SUSPECT ||
           m->pub.state == MCPGW_MEMBER_DRAINING;
}

/* At equal incarnation suspect beats alive, dead beats suspect, and the member's own leave
 * beats all. */
static int precedence(int state)
{
    static const int p[MCPGW_MEMBER_STATE_COUNT] = {[MCPGW_MEMBER_ALIVE] = 0,
                                                    [MCPGW_MEMBER_DRAINING] = 1,
                                                    [MCPGW_MEMBER_SUSPECT] = 2,
                                                    [MCPGW_MEMBER_DEAD] = 3,
                                                    [MCPGW_MEMBER_LEFT] = 4};
    return p[state];
}

int mcpgw_gossip_members_newer(uint64_t gen, uint32_t inc, int state,
                               const struct mcpgw_gossip_member *m)
{
    if (gen != m->pub.generation)
        return gen > m->pub.generation;
    if (inc != m->pub.incarnation)
        return inc > m->pub.incarnation;
    return precedence(state) > precedence(m->pub.state);
}

struct mcpgw_gossip_member *mcpgw_gossip_members_find(const struct mcpgw_gossip_members *t,
                                                      const char *id)
{
    uint64_t h = mcpgw_hash64(id, strlen(id));
    for (int i = 0; i < t->n; i++)
        if (t->m[i]->id_hash == h && strcmp(t->m[i]->id, id) == 0)
            return t->m[i];
    return NULL;
}

void mcpgw_gossip_members_set_addr(struct mcpgw_gossip_member *m, const struct mcpgw_gossip_addr *a)
{
    m->addr = *a;
    m->salen = mcpgw_gossip_addr_to_sockaddr(a, &m->sa);
    mcpgw_gossip_addr_format(a, m->gaddr, sizeof(m->gaddr));
}

void mcpgw_gossip_members_set_flags(struct mcpgw_gossip_member *m, uint8_t flags)
{
    m->flags = flags;
    m->pub.serving = !!(flags & MCPGW_GOSSIP_F_SERVING);
    m->pub.draining = !!(flags & MCPGW_GOSSIP_F_DRAINING);
}

void mcpgw_gossip_members_to_update(const struct mcpgw_gossip_member *m,
                                    struct mcpgw_gossip_update *u)
{
    memcpy(u->id, m->id, sizeof(u->id));
    memcpy(u->http_addr, m->http, sizeof(u->http_addr));
    u->state = (uint8_t)m->pub.state;
    u->flags = m->flags;
    u->generation = m->pub.generation;
    u->incarnation = m->pub.incarnation;
    u->sessions = m->pub.sessions;
    u->addr = m->addr;
}

static void grow(struct mcpgw_gossip_members *t)
{
    if (t->n < t->cap)
        return;
    t->cap = t->cap ? t->cap * 2 : 8;
    t->m = xrealloc(t->m, (size_t)t->cap * sizeof(*t->m));
    t->scratch = xrealloc(t->scratch, (size_t)t->cap * sizeof(*t->scratch));
    t->probe = xrealloc(t->probe, (size_t)t->cap * sizeof(*t->probe));
}

struct mcpgw_gossip_member *mcpgw_gossip_members_add(struct mcpgw_gossip_members *t,
                                                     const struct mcpgw_gossip_update *u)
{
    struct mcpgw_gossip_member *m = xcalloc(1, sizeof(*m));

    memcpy(m->id, u->id, sizeof(m->id));
    memcpy(m->http, u->http_addr, sizeof(m->http));
    m->id_hash = mcpgw_hash64(m->id, strlen(m->id));
    m->pub.id = m->id;
    m->pub.http_addr = m->http;
    m->pub.gossip_addr = m->gaddr;
    m->pub.state = (enum mcpgw_member_state)u->state;
    m->pub.generation = u->generation;
    m->pub.incarnation = u->incarnation;
    m->pub.sessions = u->sessions;
    mcpgw_gossip_members_set_flags(m, u->flags);
    mcpgw_gossip_members_set_addr(m, &u->addr);
    m->since_ms = mcpgw_now_ms();
    grow(t);
    t->m[t->n++] = m;
    return m;
}

void mcpgw_gossip_members_remove(struct mcpgw_gossip_members *t, int i)
{
    struct mcpgw_gossip_member *m = t->m[i];

    for (int j = 0; j < t->nprobe; j++) {
        if (t->probe[j] != m)
            continue;
        memmove(&t->probe[j], &t->probe[j + 1], (size_t)(t->nprobe - j - 1) * sizeof(t->probe[0]));
        t->nprobe--;
        if (j < t->probe_idx)
            t->probe_idx--;
        break;
    }
    free(m);
    t->m[i] = t->m[--t->n];
}

int mcpgw_gossip_members_pick(struct mcpgw_gossip_members *t, struct mcpgw_gossip_member **out,
                              int k, const struct mcpgw_gossip_member *skip)
{
    int n = 0;
    for (int i = 1; i < t->n; i++)
        if (t->m[i] != skip && mcpgw_gossip_members_probeable(t->m[i]))
            t->scratch[n++] = t->m[i];
    if (k > MAX_PICK)
        k = MAX_PICK;
    if (k > n)
        k = n;
    for (int i = 0; i < k; i++) {
        int j = i + mcpgw_gossip_members_rand_below(t, n - i);
        struct mcpgw_gossip_member *x = t->scratch[i];
        t->scratch[i] = t->scratch[j];
        t->scratch[j] = x;
        out[i] = t->scratch[i];
    }
    return k;
}

void mcpgw_gossip_members_probe_insert(struct mcpgw_gossip_members *t,
                                       struct mcpgw_gossip_member *m)
{
    int at;
    if (m->in_probe || m == t->m[0])
        return;
    at = t->probe_idx + mcpgw_gossip_members_rand_below(t, t->nprobe - t->probe_idx + 1);
    memmove(&t->probe[at + 1], &t->probe[at], (size_t)(t->nprobe - at) * sizeof(t->probe[0]));
    t->probe[at] = m;
    t->nprobe++;
    m->in_probe = 1;
}

static void probe_rebuild(struct mcpgw_gossip_members *t)
{
    t->nprobe = 0;
    t->probe_idx = 0;
    for (int i = 1; i < t->n; i++) {
        struct mcpgw_gossip_member *m = t->m[i];
        m->in_probe = mcpgw_gossip_members_probeable(m);
        if (m->in_probe)
            t->probe[t->nprobe++] = m;
    }
    for (int i = t->nprobe - 1; i > 0; i--) {
        int j = mcpgw_gossip_members_rand_below(t, i + 1);
        struct mcpgw_gossip_member *x = t->probe[i];
        t->probe[i] = t->probe[j];
        t->probe[j] = x;
    }
}

struct mcpgw_gossip_member *mcpgw_gossip_members_probe_next(struct mcpgw_gossip_members *t)
{
    for (int round = 0; round < 2; round++) {
        while (t->probe_idx < t->nprobe) {
            struct mcpgw_gossip_member *m = t->probe[t->probe_idx++];
            if (mcpgw_gossip_members_probeable(m))
                return m;
        }
        probe_rebuild(t);
    }
    return NULL;
}
