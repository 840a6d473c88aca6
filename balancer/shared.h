/* shared.h - state shared by the master and the workers: the node table and per-worker stats.
 *
 * One anonymous MAP_SHARED region, created by the master before it forks. The master (through
 * a membership source) is the only writer of the node table; each worker is the only writer of
 * its own stats block, and the master reads them all for /metrics. Nothing here is per session
 * or per connection: routing stays a pure function of this table. */
#ifndef MCPGW_BALANCER_SHARED_H
#define MCPGW_BALANCER_SHARED_H

#include "balancer/config.h"
#include "common/metrics.h"
#include "gossip/udp.h"

#include <stdint.h>
#include <sys/socket.h>

/* One node of the table. id/addr/sa/in_use/draining change only under the table's seqlock;
 * up and pass_ms are single words the health checker updates at any time. */
struct mcpgw_bal_slot {
    char id[MCPGW_BAL_ID_MAX];
    char addr[MCPGW_BAL_ADDR_MAX];
    struct sockaddr_storage sa;
    uint32_t salen;
    uint32_t in_use;   /* slot holds a node */
    uint32_t draining; /* 1: no new sessions (operator's --drain); 2: leaving (gossip): route
                          its sessions away too, but let exchanges in flight finish */
    uint32_t up;       /* verdict of the active checks (rise/fall) */
    uint64_t pass_ms;  /* newest evidence the node is alive (monotonic ms): the start of a
                          passing check, or when gossip last heard from it. A worker's passive
                          mark clears only on evidence newer than the mark. */
    uint32_t load;     /* load hint from the membership source (0 = none; gossip: sessions) */
};

/* Balancer-generated answers, counted by status. */
enum mcpgw_bal_reject {
    MCPGW_BAL_REJECT_400,
    MCPGW_BAL_REJECT_405,
    MCPGW_BAL_REJECT_408,
    MCPGW_BAL_REJECT_413,
    MCPGW_BAL_REJECT_431,
    MCPGW_BAL_REJECT_501,
    MCPGW_BAL_REJECT_502,
    MCPGW_BAL_REJECT_503,
    MCPGW_BAL_REJECT_504,
    MCPGW_BAL_REJECT_505,
    MCPGW_BAL_REJECT_COUNT
};
const char *mcpgw_bal_reject_str(enum mcpgw_bal_reject r); /* "400", ... */
int mcpgw_bal_reject_status(enum mcpgw_bal_reject r);

struct mcpgw_bal_node_stats {
    uint64_t requests;         /* requests sent to the node */
    uint64_t errors;           /* connect refused/timeout, reset, bad or missing response */
    uint64_t retries;          /* requests moved to another node before any byte reached this one */
    uint64_t assigned;         /* requests without a session sent here by load (new sessions) */
    uint64_t responses[5];     /* by status class 1xx..5xx */
    int64_t active;            /* upstream connections in use */
    int64_t idle;              /* pooled upstream connections */
    int64_t mux_conns;         /* HTTP/2 connections carrying GET streams (--stream-mux) */
    int64_t mux_streams;       /* streams on them (also counted in active) */
    uint64_t passive_down;     /* 1 while this worker holds a passive down mark */
    uint64_t resumed;          /* SSE streams of a failed node carried on here (--stream-resume) */
    struct mcpgw_hist latency; /* request sent -> response head, seconds */
};

struct mcpgw_bal_worker_stats {
    int64_t pid; /* 0 when no worker runs in this slot */
    int64_t clients;
    uint64_t accepted;
    uint64_t rejected[MCPGW_BAL_REJECT_COUNT];
    struct mcpgw_bal_node_stats nodes[MCPGW_BAL_MAX_NODES];
};

struct mcpgw_bal_shared {
    uint32_t seq;      /* seqlock over the table: odd while the master writes */
    uint32_t nslots;   /* slots in use are below this */
    uint32_t fallback; /* 1 while a gossip balancer routes on its --nodes list because gossip has
                          found no node yet: a stand-in table that gossip's view will replace */
    struct mcpgw_bal_slot slots[MCPGW_BAL_MAX_NODES];
    uint64_t checks[MCPGW_BAL_MAX_NODES][2]; /* active checks: [fail, pass] */
    struct mcpgw_bal_worker_stats workers[MCPGW_BAL_MAX_WORKERS];
    uint32_t gossip_on;               /* the master runs a gossip member */
    struct mcpgw_gossip_stats gossip; /* its counters, copied in by the master every second */
};

/* Map a zeroed shared region. Returns NULL (err filled) if mmap fails. Free with
 * mcpgw_bal_shared_free; forked children inherit it. */
struct mcpgw_bal_shared *mcpgw_bal_shared_new(char *err, size_t errlen);
void mcpgw_bal_shared_free(struct mcpgw_bal_shared *sh);

/* Writer side (master): bracket changes of slot identity (id, addr, sa, in_use, draining). */
void mcpgw_bal_shared_write_begin(struct mcpgw_bal_shared *sh);
void mcpgw_bal_shared_write_end(struct mcpgw_bal_shared *sh);

/* Reader side (workers): the table generation (even, stable), changes whenever identities do. */
uint32_t mcpgw_bal_shared_gen(const struct mcpgw_bal_shared *sh);
/* Copy the identity part of the table consistently; returns its generation. out has
 * MCPGW_BAL_MAX_NODES entries; *nslots gets the count. */
uint32_t mcpgw_bal_shared_read(const struct mcpgw_bal_shared *sh, struct mcpgw_bal_slot *out,
                               uint32_t *nslots);

/* Relaxed single-word access for counters and flags shared across processes. */
#define MCPGW_LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define MCPGW_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Single-writer increment: plain load and store, no locked instruction. */
#define MCPGW_BUMP(p, v) MCPGW_STORE((p), MCPGW_LOAD(p) + (v))

#endif
