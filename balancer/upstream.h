/* upstream.h - a worker's connections to its nodes, each carrying one exchange at a time.
 *
 * An upstream is either a pooled HTTP/1.1 connection of its own (upstream_h1.c) or a stream of
 * the node's HTTP/2 connection (upstream_mux.c, over mux.h). The exchange drives either through
 * one table of operations (struct mcpgw_bal_upstream_ops) and hears from either through one
 * table of callbacks it gave (struct mcpgw_bal_upstream_cb): it never asks which kind it has.
 * Both speak HTTP/1.1 bytes to the exchange: a request head goes in, the response comes out as
 * status line, headers and body.
 *
 * The set (struct mcpgw_bal_upstream_set) holds, per node slot, the idle pooled connections
 * (LIFO), the HTTP/2 connections, and the list of upstreams in use, which is how a node's
 * exchanges are ended at once when it dies (mcpgw_bal_upstream_cut). This module includes
 * nodes.h (to connect and to mark a node down) and nothing of the layers above it. */
#ifndef MCPGW_BALANCER_UPSTREAM_H
#define MCPGW_BALANCER_UPSTREAM_H

#include "balancer/config.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct mcpgw_bal_nodes;
struct mcpgw_bal_upstream;
struct mcpgw_bal_upstream_set;

/* How an upstream's exchange ended, as told to end(). */
enum mcpgw_bal_upstream_end {
    MCPGW_BAL_UPSTREAM_FAILED,       /* the connect failed (err; ETIMEDOUT): the request never
                                        reached the node, and the node is at fault */
    MCPGW_BAL_UPSTREAM_UNSENT,       /* the request never reached the node, which is not known
                                        to be at fault (a refused stream, a failed HTTP/2
                                        connection that reported the node itself) */
    MCPGW_BAL_UPSTREAM_UNSENT_AGAIN, /* the same, and the same node may take it again over a
                                        connection of its own (it does not speak HTTP/2) */
    MCPGW_BAL_UPSTREAM_EOF,          /* the node closed the connection after the request */
    MCPGW_BAL_UPSTREAM_ERROR,        /* a socket error (err), or the node reset the stream */
    MCPGW_BAL_UPSTREAM_LOST,         /* the HTTP/2 connection carrying the stream was lost */
    MCPGW_BAL_UPSTREAM_TIMEOUT,      /* no response head within response-timeout */
    MCPGW_BAL_UPSTREAM_CUT,          /* the worker ends every exchange with the node: it died */
    MCPGW_BAL_UPSTREAM_END_COUNT
};
const char *mcpgw_bal_upstream_end_str(enum mcpgw_bal_upstream_end how);

/* What an upstream tells its exchange (owner). No callback runs after end() or after the
 * exchange released the upstream. */
struct mcpgw_bal_upstream_cb {
    /* New response bytes are in ops->input(u). */
    void (*input)(void *owner);
    /* The output (request body, tunnel bytes) fell to the mark set with ops->watch_output. */
    void (*drained)(void *owner);
    /* The exchange with the node is over (see the enum; err is an errno value or 0, why a
     * phrase for logs and error answers). The owner must release u, here or later. */
    void (*end)(void *owner, enum mcpgw_bal_upstream_end how, int err, const char *why);
};

/* What an exchange does with its upstream. */
struct mcpgw_bal_upstream_ops {
    const char *name;
    /* Queue a whole request head, taken from head (drained); it leaves at the next flush(),
     * with whatever body bytes were added to output() meanwhile. Returns 0, or -1 with a reason
     * in why (end() does not fire then). */
    int (*send_head)(struct mcpgw_bal_upstream *u, struct evbuffer *head, char *why, size_t len);
    /* Response bytes, as HTTP/1.1. */
    struct evbuffer *(*input)(struct mcpgw_bal_upstream *u);
    /* Where request body or tunnel bytes go; NULL when the upstream carries a head only. */
    struct evbuffer *(*output)(struct mcpgw_bal_upstream *u);
    /* Send what output() holds now. */
    void (*flush)(struct mcpgw_bal_upstream *u);
    /* Call drained() once output() holds no more than low bytes; stop watching when low is 0.
     * For request backpressure. */
    void (*watch_output)(struct mcpgw_bal_upstream *u, size_t low);
    /* Stop / start taking response bytes from the node (response backpressure). */
    void (*pause)(struct mcpgw_bal_upstream *u);
    void (*resume)(struct mcpgw_bal_upstream *u);
    /* The response head was relayed: the body may be quiet for long (no response timeout), and
     * a kept request head is no longer needed. */
    void (*answered)(struct mcpgw_bal_upstream *u);
    /* Whether the node may have seen the request. */
    int (*sent)(const struct mcpgw_bal_upstream *u);
    /* The request bytes queued and never sent, to send to another node after FAILED or
     * UNSENT; NULL when there are none. */
    struct evbuffer *(*unsent)(struct mcpgw_bal_upstream *u);
    /* The request head as sent, kept until the response head (NULL: not kept). */
    struct evbuffer *(*kept_head)(struct mcpgw_bal_upstream *u);
    /* The exchange is done with u. reuse: it completed cleanly, u may serve another request
     * (a pooled connection goes back to its pool when nothing is left in its input). */
    void (*release)(struct mcpgw_bal_upstream *u, int reuse);
};

/* The part every upstream has; implementations embed it first. */
struct mcpgw_bal_upstream {
    const struct mcpgw_bal_upstream_ops *ops;
    const struct mcpgw_bal_upstream_cb *cb;
    void *owner;
    struct mcpgw_bal_upstream_set *set;
    struct mcpgw_bal_upstream *aprev, *anext; /* slot's upstreams in use */
    int16_t slot;
    uint8_t counted; /* on the in-use list, counted as the node's active load */
};

/* A worker's upstreams: every pointer is borrowed for the set's life. NULL only when libevent
 * cannot allocate. */
struct mcpgw_bal_upstream_set *mcpgw_bal_upstream_set_new(struct event_base *base,
                                                          const struct mcpgw_bal_config *cfg,
                                                          struct mcpgw_bal_nodes *nodes);
/* Close everything (owners of upstreams in use get no callback: call after the exchanges are
 * gone). */
void mcpgw_bal_upstream_set_free(struct mcpgw_bal_upstream_set *set);

/* An upstream to slot for a new request, owned by owner (told through cb): a stream of the
 * node's HTTP/2 connection when want_mux (a session's GET stream) and --stream-mux, unless the
 * node was found not to speak HTTP/2; else an idle pooled connection, else a new one. NULL with
 * *err (errno) when the node cannot be reached at once. */
struct mcpgw_bal_upstream *mcpgw_bal_upstream_get(struct mcpgw_bal_upstream_set *set, int slot,
                                                  int want_mux,
                                                  const struct mcpgw_bal_upstream_cb *cb,
                                                  void *owner, int *err);
/* The owner hands u to another owner (a request moving along with its client). */
void mcpgw_bal_upstream_reown(struct mcpgw_bal_upstream *u, void *owner);
/* No longer counted as load on its node, nor ended by a cut (a tunnel). */
void mcpgw_bal_upstream_uncount(struct mcpgw_bal_upstream *u);

/* Close slot's idle pooled connections (it was marked down). */
void mcpgw_bal_upstream_close_idle(struct mcpgw_bal_upstream_set *set, int slot);
/* Close everything to slot (the node at the slot changed): pooled connections, HTTP/2
 * connections (their streams end: UNSENT or LOST), and forget that it did not speak HTTP/2. */
void mcpgw_bal_upstream_close_node(struct mcpgw_bal_upstream_set *set, int slot);
/* End every exchange with slot: end(CUT) to each owner; with sent_only, upstreams whose
 * request has not reached the node are left to fail on their own (and move elsewhere). Returns
 * how many were ended. */
unsigned mcpgw_bal_upstream_cut(struct mcpgw_bal_upstream_set *set, int slot, int sent_only);
/* Whether slot has upstreams in use. */
int mcpgw_bal_upstream_busy(const struct mcpgw_bal_upstream_set *set, int slot);

/* Timers: close pooled connections idle for pool-idle-timeout and HTTP/2 connections that
 * carry nothing and take nothing new; end exchanges whose response head is later than
 * response-timeout (end(TIMEOUT)). */
void mcpgw_bal_upstream_sweep(struct mcpgw_bal_upstream_set *set);
/* Close the pools and idle HTTP/2 connections; from now on nothing is pooled. */
void mcpgw_bal_upstream_drain(struct mcpgw_bal_upstream_set *set);

#endif
