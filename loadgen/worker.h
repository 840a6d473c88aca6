/* worker.h - one load-generator worker process: its share of the sessions and of the load, and
 * the functions its modules (pool.c, session.c) call back into. */
#ifndef MCPGW_LOADGEN_WORKER_H
#define MCPGW_LOADGEN_WORKER_H

#include "loadgen/client.h"
#include "loadgen/worker-t.h"

/* Run worker idx of cfg->workers until the parent says FINISH (or goes away); ctrl_fd is its
 * end of the socketpair to the parent. t0_us is the run's start. Returns the exit status. */
int mcpgw_worker_run(const struct mcpgw_lg_config *cfg, uint32_t idx, int ctrl_fd, uint64_t t0_us);

/* A new request; free with mcpgw_worker_req_free (the response handler does). */
struct lg_req *mcpgw_worker_req_new(struct lg_worker *w, struct lg_session *s, int kind,
                                    uint64_t intended_us);
void mcpgw_worker_req_free(struct lg_worker *w, struct lg_req *r);

/* Append the complete HTTP request for r to out. */
void mcpgw_worker_build(struct lg_worker *w, const struct lg_req *r, struct evbuffer *out);

/* The final outcome of r (err from enum mcpgw_client_err; resp NULL unless OK). Takes r. */
void mcpgw_worker_on_response(struct lg_worker *w, struct lg_req *r, int err,
                              const struct mcpgw_client_resp *resp);

/* The next generated load request when one is due, else NULL. */
struct lg_req *mcpgw_worker_pull(struct lg_worker *w);

/* Drill accounting: session s failed / succeeded now. A session with a GET stream succeeds only
 * while its stream is up (a call answered while the stream is down does not end its recovery). */
void mcpgw_worker_session_failed(struct lg_worker *w, struct lg_session *s);
void mcpgw_worker_session_ok(struct lg_worker *w, struct lg_session *s);
/* The balancer carried s's stream on at another node (the ": resumed" comment): s was hit by a
 * fault, and is served again now although it saw no error. */
void mcpgw_worker_session_moved(struct lg_worker *w, struct lg_session *s);

/* Session s became established / was lost (404 after establishment). */
void mcpgw_worker_session_established(struct lg_worker *w, struct lg_session *s);
/* The index in w->nodes of the node named by node[0..n) (n 0: "?"), added when new. */
uint16_t mcpgw_worker_node_index(struct lg_worker *w, const char *node, size_t n);
void mcpgw_worker_session_lost(struct lg_worker *w, struct lg_session *s);
/* Session s finished its setup attempt (established or failed). */
void mcpgw_worker_session_settled(struct lg_worker *w, struct lg_session *s);

#endif
