/* route.h - the routing rule: which node serves a request, a pure function of the request's key
 * and the node table.
 *
 * Every worker of every balancer computes the same answer from the same membership, so no
 * routing table is stored anywhere; a node applies the same rule to know which sessions come to
 * it (node/cluster.c, claiming its sessions back after a stall):
 *   - with a session id: the node its prefix names (everything before the first '.') when that
 *     node is usable, even if draining (it still serves its own sessions); otherwise the
 *     rendezvous-hash (HRW) winner of the whole id among usable, non-draining nodes (among
 *     draining ones only if nothing else is usable);
 *   - without one: power of two choices on load among usable, non-draining nodes. */
#ifndef MCPGW_COMMON_ROUTE_H
#define MCPGW_COMMON_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct mcpgw_route_node {
    const char *id;   /* NULL for an empty slot (never picked) */
    uint32_t load;    /* lower is better: upstream connections in use (later: sessions) */
    uint32_t picks;   /* tie-break between equal loads: requests sent here by load so far */
    uint8_t usable;   /* up, not passively marked down, not already tried for this request */
    uint8_t draining; /* takes no new sessions */
};

/* Length of the routing prefix of a session id (bytes before the first '.'), or 0 if it has
 * none. */
size_t mcpgw_route_prefix_len(const char *sid, size_t len);

/* Pick a node index among nodes[0..n). sid may be NULL (no session). rng is the caller's
 * xorshift state, advanced only for load-based picks. Returns the index, or -1 when no node
 * may take the request. */
int mcpgw_route_pick(const struct mcpgw_route_node *nodes, int n, const char *sid, size_t sidlen,
                     uint64_t *rng);

/* xorshift64* step; state must be non-zero. */
uint64_t mcpgw_route_rand(uint64_t *state);

/* Extract the value of query parameter name from a request target's query string (the part
 * after '?'). Returns 0 with *val and *len pointing into query, or -1 when absent or empty. */
int mcpgw_route_query_param(const char *query, size_t qlen, const char *name, const char **val,
                            size_t *len);

#endif
