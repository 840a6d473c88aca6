/* route.c - session-prefix, rendezvous and power-of-two-choices routing (see route.h). */
#include "common/route.h"

#include "common/hash.h"

#include <string.h>

size_t mcpgw_route_prefix_len(const char *sid, size_t len)
{
    const char *dot = memchr(sid, '.', len);
    return dot ? (size_t)(dot - sid) : 0;
}

uint64_t mcpgw_route_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* HRW among usable nodes whose draining flag equals want_draining. */
static int hrw(const struct mcpgw_route_node *nodes, int n, uint64_t kh, int want_draining)
{
    uint64_t best = 0;
    int winner = -1;
    for (int i = 0; i < n; i++) {
        uint64_t w;
        if (!nodes[i].id || !nodes[i].usable || nodes[i].draining != want_draining)
            continue;
        w = mcpgw_hrw_weight(kh, nodes[i].id);
        if (winner < 0 || w > best) {
            best = w;
            winner = i;
        }
    }
    return winner;
}

static int better(const struct mcpgw_route_node *a, const struct mcpgw_route_node *b)
{
    if (a->load != b->load)
        return a->load < b->load;
    return a->picks < b->picks;
}

static int p2c(const struct mcpgw_route_node *nodes, int n, uint64_t *rng)
{
    int cand[64], nc = 0, a, b;
    for (int i = 0; i < n && nc < (int)(sizeof(cand) / sizeof(cand[0])); i++)
        if (nodes[i].id && nodes[i].usable && !nodes[i].draining)
            cand[nc++] = i;
    if (nc == 0)
        return -1;
    if (nc == 1)
        return cand[0];
    a = (int)(mcpgw_route_rand(rng) % (uint64_t)nc);
    b = (int)(mcpgw_route_rand(rng) % (uint64_t)(nc - 1));
    if (b >= a)
        b++;
    return better(&nodes[cand[b]], &nodes[cand[a]]) ? cand[b] : cand[a];
}

int mcpgw_route_pick(const struct mcpgw_route_node *nodes, int n, const char *sid, size_t sidlen,
                     uint64_t *rng)
{
    size_t plen;
    int w;
    if (!sid || sidlen == 0)
        return p2c(nodes, n, rng);
    plen = mcpgw_route_prefix_len(sid, sidlen);
    if (plen) {
        for (int i = 0; i < n; i++) {
            if (!nodes[i].id || strlen(nodes[i].id) != plen || memcmp(nodes[i].id, sid, plen))
                continue;
            if (nodes[i].usable)
                return i;
            break;
        }
    }
    {
        uint64_t kh = mcpgw_hash64(sid, sidlen);
        w = hrw(nodes, n, kh, 0);
        if (w < 0)
            w = hrw(nodes, n, kh, 1);
    }
    return w;
}

int mcpgw_route_query_param(const char *query, size_t qlen, const char *name, const char **val,
                            size_t *len)
{
    const char *p = query, *end = query + qlen;
    size_t nlen = strlen(name);
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
        if ((size_t)(e - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *val = p + nlen + 1;
            *len = (size_t)(e - *val);
            return *len ? 0 : -1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return -1;
}
