/* fanout.h - resource updates delivered to this node's subscribers a batch at a time. */
#ifndef MCPGW_NODE_FANOUT_H
#define MCPGW_NODE_FANOUT_H

#include "node/node-t.h"

#include <stddef.h>
#include <stdint.h>

struct mcpgw_fanout;

/* priority: the event base priority batches run at (the lowest, so that requests, streams,
 * gossip and timers go first). */
struct mcpgw_fanout *mcpgw_fanout_new(struct mcpgw_node *n, int priority);
/* Pending updates are dropped (their subscribers replay them from the store on resume). */
void mcpgw_fanout_free(struct mcpgw_fanout *f);

/* Queue an update of uri with GET-stream event id <g>-<seq> (json is copied). Updates reach each
 * subscriber in the order they were pushed. With n->cfg.fanout_queue_max updates queued, the
 * update is not queued: its local subscribers' GET streams are ended (their clients resume from
 * the store), counted in n->st.fanout_dropped and n->st.fanout_streams_ended. */
void mcpgw_fanout_push(struct mcpgw_fanout *f, const char *uri, uint64_t g, uint64_t seq,
                       const char *json, size_t len);

/* Queue a list change with GET-stream event id <g>-<seq> for every initialized session with a
 * GET stream (json is copied), in order with the updates. Not bounded by fanout_queue_max. */
void mcpgw_fanout_push_all(struct mcpgw_fanout *f, uint64_t g, uint64_t seq, const char *json,
                           size_t len);

/* Call fn(arg) once every update and list change queued before it has been delivered (from
 * the loop, between batches; not bounded by fanout_queue_max): what fn writes then cannot
 * overtake them. Not called when f is freed first. */
void mcpgw_fanout_push_call(struct mcpgw_fanout *f, void (*fn)(void *arg), void *arg);

/* Updates queued or in delivery. */
size_t mcpgw_fanout_queued(const struct mcpgw_fanout *f);

#endif
