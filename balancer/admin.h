/* admin.h - the admin listener (master process): /metrics in Prometheus text, /healthz. */
#ifndef MCPGW_BALANCER_ADMIN_H
#define MCPGW_BALANCER_ADMIN_H

#include "balancer/shared.h"

#include <stddef.h>

struct event_base;
struct evbuffer;
struct mcpgw_bal_admin;

/* Listen on addr ("host:port") and serve the metrics of sh (borrowed). Returns NULL with a
 * sentence in err when the address cannot be bound. */
struct mcpgw_bal_admin *mcpgw_bal_admin_new(struct event_base *base, const char *addr,
                                            struct mcpgw_bal_shared *sh, char *err, size_t errlen);
/* While draining, /healthz answers 503 so an outer balancer stops sending. */
void mcpgw_bal_admin_set_draining(struct mcpgw_bal_admin *a, int draining);
void mcpgw_bal_admin_free(struct mcpgw_bal_admin *a);

/* Append the /healthz body to out: {"status", "nodes" (in the table), "nodes_up", "workers"
 * (running), "fallback" (true while the table is the --nodes list standing in until gossip finds
 * a node), "routable" (nodes every running worker can send new sessions to: up, not draining, no
 * worker's passive mark), "not_routable" (["id: why", ...])}, so that a launcher can wait for
 * the complete table rather than the first node. Returns the count of nodes up. */
int mcpgw_bal_admin_render_health(const struct mcpgw_bal_shared *sh, int draining,
                                  struct evbuffer *out);
/* Append the Prometheus exposition of sh (every worker summed) to out. */
void mcpgw_bal_admin_render(const struct mcpgw_bal_shared *sh, struct evbuffer *out);

#endif
