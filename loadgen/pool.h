/* pool.h - a worker's keep-alive request connections: queueing, sending, retrying connection
 * failures. Requests come from the queue first, then from the worker's load generator. */
#ifndef MCPGW_LOADGEN_POOL_H
#define MCPGW_LOADGEN_POOL_H

#include "loadgen/worker-t.h"

/* Queue a request (takes ownership) and send what capacity allows. */
void mcpgw_pool_submit(struct lg_worker *w, struct lg_req *r);
/* Send queued and generated requests while connections are available. */
void mcpgw_pool_kick(struct lg_worker *w);
/* Close every connection now, with a reset; in-flight requests are dropped without callbacks. */
void mcpgw_pool_close_all(struct lg_worker *w);

/* A source address for the next socket (round robin over the worker's), or NULL. */
const struct sockaddr *mcpgw_pool_next_src(struct lg_worker *w, socklen_t *len);

#endif
