/* proxy.h - one worker's proxy: client connections, upstream connections, per-node pools.
 *
 * Accepts on a listening socket the master created (SO_REUSEPORT, one per worker), reads each
 * request head with the shared strict parser (common/http.h), routes it (route.h) on the shared
 * node table (shared.h), and relays the request and the response on bufferevents as bytes
 * arrive: SSE and other streamed responses are never buffered whole, and reading from one side
 * pauses while the other side has more than buffer-size bytes queued. A 101 response turns the
 * pair into a byte tunnel. Idle clients hold only their bufferevent and a small struct. */
#ifndef MCPGW_BALANCER_PROXY_H
#define MCPGW_BALANCER_PROXY_H

#include "balancer/config.h"
#include "balancer/shared.h"

#include <stddef.h>

struct event_base;
struct ssl_ctx_st;
struct mcpgw_bal_proxy;

typedef void (*mcpgw_bal_proxy_drained_fn)(void *arg);

/* Serve on listen_fd (a listening socket; the proxy takes ownership and closes it when it
 * stops accepting) as worker number `worker` (its stats block in sh). cfg is copied; sh, base
 * and tls (may be NULL: plain HTTP) are borrowed for the proxy's life. Returns NULL with a
 * sentence in err on failure. */
struct mcpgw_bal_proxy *mcpgw_bal_proxy_new(struct event_base *base,
                                            const struct mcpgw_bal_config *cfg,
                                            struct mcpgw_bal_shared *sh, int worker, int listen_fd,
                                            struct ssl_ctx_st *tls, char *err, size_t errlen);

/* Stop accepting, close idle clients and pooled connections, let requests in flight finish
 * (each answered with Connection: close). done(arg) fires from the event loop once no client
 * is left; the caller bounds the wait with its own deadline. */
void mcpgw_bal_proxy_drain(struct mcpgw_bal_proxy *p, mcpgw_bal_proxy_drained_fn done, void *arg);

/* Close everything at once and free. */
void mcpgw_bal_proxy_free(struct mcpgw_bal_proxy *p);

/* Client connections currently open. */
unsigned mcpgw_bal_proxy_clients(const struct mcpgw_bal_proxy *p);

#endif
