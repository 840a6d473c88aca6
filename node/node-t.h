/* node-t.h - the types of the node as a whole: its counters and the node object (its config
 * is node/config.h). */
#ifndef MCPGW_NODE_NODE_T_H
#define MCPGW_NODE_NODE_T_H

#include "node/config.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;
struct mcpgw_httpd;
struct mcpgw_http_conn;
struct mcpgw_registry;
struct mcpgw_metrics;
struct mcpgw_hist;
struct mcpgw_session;
struct mcpgw_notes;
struct mcpgw_call;
struct mcpgw_store;
struct mcpgw_fanout;
struct mcpgw_listen_set;
struct mcpgw_gossip;
struct mcpgw_cluster;
struct mcpgw_seal_ring;

struct mcpgw_node_stats {
    uint64_t *requests;      /* JSON-RPC requests served */
    uint64_t *notifications; /* JSON-RPC notifications received */
    uint64_t *errors;        /* JSON-RPC error responses sent */
    uint64_t *http_rejects;  /* requests refused at the HTTP layer (4xx) */
    uint64_t *sessions_created, *sessions_expired, *sessions_deleted;
    uint64_t *events_sent, *events_replayed, *replay_gaps, *streams_dropped;
    uint64_t *stalls, *sessions_claimed, *sessions_moved, *sessions_lost, *store_errors,
        *retries_answered;
    int64_t *sessions, *streams, *calls_inflight; /* sessions/streams set at scrape time */
    int64_t *store_up;
    int64_t *fanout_queued; /* resource updates not yet delivered to every local subscriber */
    struct mcpgw_hist *latency;
};

struct mcpgw_node {
    struct mcpgw_node_config cfg;
    struct event_base *base;
    struct mcpgw_httpd *httpd;
    struct mcpgw_registry *reg;
    struct mcpgw_metrics *metrics;
    struct mcpgw_node_stats st;
    struct mcpgw_notes *notes; /* names of the notes written through this node (builtin.c) */
    struct mcpgw_store *store;
    struct mcpgw_fanout *fanout;     /* NULL: updates are delivered at once */
    struct mcpgw_listen_set *listen; /* subscriptions/listen streams (listen.c) */
    /* The highest event counter received live (shared store): a replay sent with a claim reads
     * the streams before the session is registered here, and events between the two must be
     * caught up (stream.c, mcpgw_stream_resume_claimed). */
    uint64_t ev_seen;
    uint64_t started_ms;
    int draining;
    int resyncing;                 /* after a stall: session requests wait for the store (503) */
    struct mcpgw_cluster *cluster; /* timers and claims-back of cluster.c */
    struct mcpgw_gossip *gossip;   /* NULL without --gossip-bind */
    struct mcpgw_seal_ring *state_ring; /* seals MRTR requestState (node/era26.c) */
};

#endif
