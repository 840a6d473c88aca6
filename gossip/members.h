/* members.h - the member table of gossip/ (internal to the library, driven by swim.c): the
 * records, lookup by id, the order in which members are probed, and random picks. */
#ifndef MCPGW_GOSSIP_MEMBERS_H
#define MCPGW_GOSSIP_MEMBERS_H

#include <stdint.h>
#include <sys/socket.h>

#include "gossip/swim.h"
#include "gossip/wire.h"

struct event;

/* One member as the protocol keeps it; the view hands out &pub. */
struct mcpgw_gossip_member {
    struct mcpgw_member pub;
    char id[MCPGW_GOSSIP_MAX_ID + 1];
    char http[MCPGW_GOSSIP_MAX_HTTP + 1];
    char gaddr[64];
    uint64_t id_hash;
    uint8_t flags; /* MCPGW_GOSSIP_F_* */
    struct mcpgw_gossip_addr addr;
    struct sockaddr_storage sa;
    socklen_t salen;
    int tx_left;         /* piggyback transmissions still owed */
    unsigned pkt_mark;   /* last datagram this record went into (no duplicates) */
    int in_probe;        /* present in the probe order */
    uint64_t since_ms;   /* when it entered its current state */
    struct event *timer; /* the owner's: suspicion timeout, pending while SUSPECT */
    void *owner;         /* the owner's: passed to its timer */
};

/* The table, embedded in its owner. m[0] is this process. */
struct mcpgw_gossip_members {
    struct mcpgw_gossip_member **m;
    struct mcpgw_gossip_member **scratch; /* same capacity: random picks, piggyback ordering */
    struct mcpgw_gossip_member **probe;   /* shuffled probe order for the current round */
    int n, cap, nprobe, probe_idx;
    uint64_t rng;
};

/* Start empty with a random seed (not 0); deinit frees every record (their timers are the
 * owner's to free first). */
void mcpgw_gossip_members_init(struct mcpgw_gossip_members *t, uint64_t seed);
void mcpgw_gossip_members_deinit(struct mcpgw_gossip_members *t);

/* Uniform-enough randomness for probe order, picks and jitter (xorshift64*: spread, not
 * secrecy); rand_below returns 0 for n <= 0. */
uint64_t mcpgw_gossip_members_rand(struct mcpgw_gossip_members *t);
int mcpgw_gossip_members_rand_below(struct mcpgw_gossip_members *t, int n);

/* Alive, suspect or draining: probed, picked, and counted as company. */
int mcpgw_gossip_members_probeable(const struct mcpgw_gossip_member *m);
/* Whether a record (generation, incarnation, state) about m's member supersedes what m holds:
 * ordered by generation, then incarnation, then state precedence (alive < draining < suspect <
 * dead < left). */
int mcpgw_gossip_members_newer(uint64_t gen, uint32_t inc, int state,
                               const struct mcpgw_gossip_member *m);

/* The record with this id, or NULL. */
struct mcpgw_gossip_member *mcpgw_gossip_members_find(const struct mcpgw_gossip_members *t,
                                                      const char *id);
/* Append a record built from u (the table owns it; timer and owner are left NULL). */
struct mcpgw_gossip_member *mcpgw_gossip_members_add(struct mcpgw_gossip_members *t,
                                                     const struct mcpgw_gossip_update *u);
/* Remove and free record i (never 0); the last record takes its place. */
void mcpgw_gossip_members_remove(struct mcpgw_gossip_members *t, int i);

void mcpgw_gossip_members_set_addr(struct mcpgw_gossip_member *m,
                                   const struct mcpgw_gossip_addr *a);
void mcpgw_gossip_members_set_flags(struct mcpgw_gossip_member *m, uint8_t flags);
/* The wire record of m. */
void mcpgw_gossip_members_to_update(const struct mcpgw_gossip_member *m,
                                    struct mcpgw_gossip_update *u);

/* Pick up to k (<= 16) distinct probeable remote members other than skip at random into out;
 * returns how many. */
int mcpgw_gossip_members_pick(struct mcpgw_gossip_members *t, struct mcpgw_gossip_member **out,
                              int k, const struct mcpgw_gossip_member *skip);
/* SWIM's round-robin over a random permutation: the next member to probe (a new shuffle when a
 * round ends), or NULL when none is probeable. */
struct mcpgw_gossip_member *mcpgw_gossip_members_probe_next(struct mcpgw_gossip_members *t);
/* A member that became probeable mid-round joins the rest of the round at a random place. */
void mcpgw_gossip_members_probe_insert(struct mcpgw_gossip_members *t,
                                       struct mcpgw_gossip_member *m);

#endif
