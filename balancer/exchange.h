/* exchange.h - the request side of a worker: client connections, each request from its head
 * to the end of its response, relayed to and from an upstream (upstream.h) on a node chosen by
 * nodes.h.
 *
 * Reads each request head with the shared strict parser (common/http.h), routes it, and relays
 * the request and the response on bufferevents as bytes arrive: SSE and other streamed
 * responses are never buffered whole, and reading from one side pauses while the other side has
 * more than buffer-size bytes queued. A 101 response turns the pair into a byte tunnel. A
 * request that never reached its node moves to the next candidate; a session's event stream
 * whose node failed is carried on at another node (resume.h). Idle clients hold only their
 * bufferevent and a small struct. A client is freed only from the loop, never inside one of
 * its own callbacks or an upstream's. */
#ifndef MCPGW_BALANCER_EXCHANGE_H
#define MCPGW_BALANCER_EXCHANGE_H

#include "balancer/config.h"
#include "balancer/shared.h"

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct ssl_ctx_st;
struct mcpgw_bal_nodes;
struct mcpgw_bal_upstream_set;
struct mcpgw_bal_exchange_set;

/* The last client left while draining (from the loop). */
typedef void (*mcpgw_bal_exchange_empty_fn)(void *arg);

/* A worker's exchanges. Every pointer is borrowed for the set's life; st is the worker's stats
 * block, tls NULL for plain HTTP. NULL only when libevent cannot allocate. */
struct mcpgw_bal_exchange_set *
mcpgw_bal_exchange_set_new(struct event_base *base, const struct mcpgw_bal_config *cfg,
                           struct mcpgw_bal_worker_stats *st, struct mcpgw_bal_nodes *nodes,
                           struct mcpgw_bal_upstream_set *ups, struct ssl_ctx_st *tls,
                           mcpgw_bal_exchange_empty_fn empty, void *arg);
/* Close every client at once and free. */
void mcpgw_bal_exchange_set_free(struct mcpgw_bal_exchange_set *xs);

/* Serve the accepted connection fd (non-blocking; taken over, closed on failure) from peer sa.
 * Its first bytes are read at once (the listener defers accepts until they are in). */
void mcpgw_bal_exchange_accept(struct mcpgw_bal_exchange_set *xs, int fd,
                               const struct sockaddr *sa);
/* Timers: clients whose head, body or idle time ran out. */
void mcpgw_bal_exchange_sweep(struct mcpgw_bal_exchange_set *xs);
/* Close idle clients; requests in flight finish, answered with Connection: close. empty()
 * fires once no client is left (at once, from the loop, if none is). */
void mcpgw_bal_exchange_drain(struct mcpgw_bal_exchange_set *xs);
/* Client connections open (closed ones count until the loop frees them). */
unsigned mcpgw_bal_exchange_clients(const struct mcpgw_bal_exchange_set *xs);

#endif
