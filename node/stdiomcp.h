/* stdiomcp.h - an MCP client session over a supervised stdio child (node/upstdio.h): each child
 * the supervisor starts is initialized (initialize, notifications/initialized) before requests
 * go to it; requests carry ids of the supervisor's choosing, so the owner maps its clients' ids
 * onto the calls this module returns. */
#ifndef MCPGW_NODE_STDIOMCP_H
#define MCPGW_NODE_STDIOMCP_H

#include "node/upstdio.h"

#include <json-c/json.h>

struct event_base;
struct mcpgw_stdiomcp;

/* All optional; all on the loop thread; they may free the session (deferred until they return). */
struct mcpgw_stdiomcp_cbs {
    /* A child answered initialize (ok 1; its result: mcpgw_stdiomcp_server_result), or its
     * initialize failed (ok 0, why names the upstream). Fires again for every restarted child. */
    void (*on_ready)(void *arg, int ok, const char *why);
    /* The child exited or was stopped: pending calls have failed with E_EXITED already;
     * restart_in_ms as in mcpgw_upstdio_cbs.on_exit (-1: none follows). */
    void (*on_down)(void *arg, int status, long restart_in_ms);
    /* A notification or server-to-client request from the child (m borrowed). */
    void (*on_message)(void *arg, const struct mcpgw_jsonrpc_msg *m);
};

/* cfg as for mcpgw_upstdio_new (copied). Nothing runs until mcpgw_stdiomcp_start. */
struct mcpgw_stdiomcp *mcpgw_stdiomcp_new(struct event_base *base,
                                          const struct mcpgw_upstdio_cfg *cfg,
                                          const struct mcpgw_stdiomcp_cbs *cbs, void *arg);
/* Spawns the first child (supervision restarts it). Returns 0, or -1 with err filled (the
 * supervisor retries with backoff all the same). */
int mcpgw_stdiomcp_start(struct mcpgw_stdiomcp *s, char *err, size_t errlen);
/* Stops the child gracefully (stdin closed, SIGTERM, SIGKILL after the grace period) and frees
 * s when it is gone; no callback of s fires after this call. */
void mcpgw_stdiomcp_close(struct mcpgw_stdiomcp *s);
/* Kills the child at once and frees s; no callback. */
void mcpgw_stdiomcp_free(struct mcpgw_stdiomcp *s);

/* Kills the running child now; supervision restarts it with its backoff (the breaker does this
 * when a child stops answering). */
void mcpgw_stdiomcp_restart(struct mcpgw_stdiomcp *s);
/* 1 once the running child answered initialize. */
int mcpgw_stdiomcp_ready(const struct mcpgw_stdiomcp *s);
/* The running child's initialize result (capabilities, serverInfo), borrowed, or NULL. */
json_object *mcpgw_stdiomcp_server_result(const struct mcpgw_stdiomcp *s);

/* A request to the child (params taken). Returns the call (reply fires exactly once unless it
 * is cancelled), or NULL without a callback when the child is not ready or its stdin is full. */
struct mcpgw_upstdio_call *mcpgw_stdiomcp_request(struct mcpgw_stdiomcp *s, const char *method,
                                                  json_object *params, mcpgw_upstdio_reply_fn reply,
                                                  void *arg);
/* Stops waiting for c; with notify, notifications/cancelled tells the child. */
void mcpgw_stdiomcp_cancel(struct mcpgw_stdiomcp *s, struct mcpgw_upstdio_call *c, int notify,
                           const char *reason);
/* A notification or response (one whole message, copied). Returns 0 or -1 (not ready). */
int mcpgw_stdiomcp_send(struct mcpgw_stdiomcp *s, const char *msg, size_t len);

#endif
