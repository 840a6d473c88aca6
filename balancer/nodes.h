/* nodes.h - one worker's view of the node table: identities, passive marks, load, and the
 * choice of a node for a request.
 *
 * The master publishes the table in shared memory (shared.h); a worker copies the identities
 * (id, address, draining) only when mcpgw_bal_nodes_refresh is called, which the worker does
 * from its timers, never while it routes a request: what a table change closes (pools, the HTTP/2
 * connection, every exchange with a node that left) is closed from the timer, not from inside
 * another client's request. Up verdicts and evidence of life (pass_ms) are single words read
 * live from the table. Passive marks are this worker's own: set on a failed connect or a reset,
 * lifted only by evidence newer than the mark.
 *
 * The worker learns what it must act on through the callbacks it gave: this module closes
 * nothing itself. */
#ifndef MCPGW_BALANCER_NODES_H
#define MCPGW_BALANCER_NODES_H

#include "balancer/config.h"
#include "balancer/shared.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mcpgw_bal_nodes;

struct mcpgw_bal_nodes_cb {
    /* slot's node changed identity (another id or address) or left the table: everything open
     * to the old node must close. Only from mcpgw_bal_nodes_refresh, after the whole table was
     * copied (a callback sees the new table). */
    void (*changed)(void *arg, int slot);
    /* A passive mark was just set on slot: its idle connections should close. From inside
     * mcpgw_bal_nodes_mark_down; touches nothing an exchange holds. */
    void (*marked)(void *arg, int slot);
    /* slot's node is gone: its listener refused a connection (refused = 1: its process is
     * gone, connections still connecting may be left to fail on their own), or the table says
     * down after it said up (refused = 0). Every exchange with it should end. Always from the
     * event loop (a timer or an event of this module), never inside the call that found it. */
    void (*down)(void *arg, int slot, int refused);
};

/* The view of worker number worker; cfg, sh, base and cb are borrowed for its life. Reads the
 * table once (no callbacks for that first read). NULL only when libevent cannot allocate. */
struct mcpgw_bal_nodes *mcpgw_bal_nodes_new(struct event_base *base,
                                            const struct mcpgw_bal_config *cfg,
                                            struct mcpgw_bal_shared *sh, int worker,
                                            const struct mcpgw_bal_nodes_cb *cb, void *arg);
void mcpgw_bal_nodes_free(struct mcpgw_bal_nodes *n);

/* Pick up what the master published: identity changes (changed) and nodes the table now has
 * down (down). Call from timers only. */
void mcpgw_bal_nodes_refresh(struct mcpgw_bal_nodes *n);

/* A node for a request, or -1. sid (may be NULL: route by load) is the session id, tried a
 * bitmap of slots to leave out. A node picked by load counts as assigned to it. */
int mcpgw_bal_nodes_pick(struct mcpgw_bal_nodes *n, const char *sid, size_t sidlen, uint64_t tried);
/* Why no node could take a request, for the 503 body; last is the last connect error (may be
 * NULL). */
void mcpgw_bal_nodes_cause(struct mcpgw_bal_nodes *n, const char *last, char *buf, size_t len);

/* Up in the table and not passively marked down (a mark is lifted here by newer evidence). */
int mcpgw_bal_nodes_usable(struct mcpgw_bal_nodes *n, int slot);
/* Whether slot's node failed: passively marked down, or down in the table. */
int mcpgw_bal_nodes_failed(const struct mcpgw_bal_nodes *n, int slot);
/* Passive mark (counted as an error of the node): set it unless set, tell marked(), and probe
 * the node's listener once with a connect of its own; a refusal there calls down(slot, 1). */
void mcpgw_bal_nodes_mark_down(struct mcpgw_bal_nodes *n, int slot, const char *why);
/* A connect to slot was refused: down(slot, 1) runs from the loop, at its first priority. */
void mcpgw_bal_nodes_refused(struct mcpgw_bal_nodes *n, int slot);

/* Connect to slot's node from the next source address (--source-addrs) in turn, or from the
 * kernel's choice. A source whose ports towards the node are all taken gives way to the next.
 * Returns the socket (*pending: still connecting) or -1 with errno set. */
int mcpgw_bal_nodes_connect(struct mcpgw_bal_nodes *n, int slot, int *pending);

int mcpgw_bal_nodes_in_use(const struct mcpgw_bal_nodes *n, int slot);
int mcpgw_bal_nodes_passive(const struct mcpgw_bal_nodes *n, int slot);
const char *mcpgw_bal_nodes_id(const struct mcpgw_bal_nodes *n, int slot);
const char *mcpgw_bal_nodes_addr(const struct mcpgw_bal_nodes *n, int slot);
/* Slots below this may be in use. */
int mcpgw_bal_nodes_count(const struct mcpgw_bal_nodes *n);
/* This worker's counters for slot (in the shared region). */
struct mcpgw_bal_node_stats *mcpgw_bal_nodes_stats(struct mcpgw_bal_nodes *n, int slot);

#endif
