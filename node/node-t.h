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
struct mcpgw_guard_who;
struct mcpgw_notes;
struct mcpgw_call;
struct mcpgw_store;
struct mcpgw_fanout;
struct mcpgw_keepalive;
struct mcpgw_listen_set;
struct mcpgw_gossip;
struct mcpgw_cluster;
struct mcpgw_upstream_set;
struct mcpgw_provider_ops;
struct mcpgw_seal_ring;
struct mcpgw_auth;
struct mcpgw_limits;
struct mcpgw_upsess_node;
struct mcpgw_upsub;
struct mcpgw_tasks;
struct mcpgw_bridge26;
struct mcpgw_upprin;

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
    uint64_t *fanout_dropped, *fanout_streams_ended; /* updates not queued (queue full), and the
                                                        GET streams ended for them */
    uint64_t *conns_timed_out; /* client connections the kernel failed: the peer is gone */
    uint64_t *sse_keepalives;  /* keep-alive comments written (keepalive.c) */
    struct mcpgw_hist *latency;
};

struct mcpgw_node {
    struct mcpgw_node_config cfg;
    struct event_base *base;
    struct mcpgw_httpd *httpd;
    struct mcpgw_registry *reg;
    struct mcpgw_metrics *metrics;
    struct mcpgw_node_stats st;
    struct mcpgw_notes *notes; /* the notes board's names, as the store reports them (cluster.c) */
    struct mcpgw_store *store;
    struct mcpgw_fanout *fanout; /* NULL: updates are delivered at once */
    struct mcpgw_keepalive *keepalive;
    struct mcpgw_listen_set *listen; /* subscriptions/listen streams (listen.c) */
    /* The highest event counter received live (shared store): a replay sent with a claim reads
     * the streams before the session is registered here, and events between the two must be
     * caught up (stream.c, mcpgw_stream_resume_claimed). */
    uint64_t ev_seen;
    uint64_t started_ms;
    int draining;
    int resyncing;                  /* after a stall: session requests wait for the store (503) */
    struct mcpgw_cluster *cluster;  /* timers and claims-back of cluster.c */
    struct mcpgw_gossip *gossip;    /* NULL without --gossip-bind */
    struct mcpgw_upstream_set *ups; /* upstream servers (node/upstream.c) */
    /* Who serves requests, asked in order (protocol.c, mcpgw_protocol_configure): the built-ins
     * and/or the upstreams, as the configuration says. */
    const struct mcpgw_provider_ops *const *providers;
    unsigned nproviders;
    /* The hash of each list kind (enum mcpgw_listen_list) this node last announced, valid for
     * the kinds whose bit is in lists_known (node/catnotify.c). */
    uint64_t lists_told[3];
    unsigned lists_known;
    struct mcpgw_seal_ring *state_ring; /* seals MRTR requestState (node/era26.c) */
    struct mcpgw_auth *auth;            /* NULL with --auth off */
    struct mcpgw_limits *limits;        /* NULL without `limit` lines (node/limits.c) */
    /* The authenticated principal of the request being handled, borrowed while its handler
     * runs (initialize binds the new session to it, an MRTR round its requestState); NULL without
     * authentication. */
    const char *req_principal;
    /* With authorization rules: the grant of that request (node/guard.h), borrowed likewise;
     * NULL otherwise. */
    const struct mcpgw_guard_who *req_who;
    struct mcpgw_upsess_node *upsess; /* per-client upstream sessions (upsess.c); NULL when none */
    struct mcpgw_upsub *upsub;       /* shared upstreams' subscriptions (upsub.c); NULL when none */
    unsigned upprocs;                /* per-client stdio children running (upproc.c) */
    struct mcpgw_bridge26 *bridge26; /* bridged MRTR rounds (bridge26.c); NULL until one is */
    struct mcpgw_upprin *upprin; /* per-principal upstream sessions (upprin.c); NULL until one */
    struct mcpgw_tasks *tasks;   /* the tasks this node runs (tasks.c); NULL until the first */
};

#endif
