/* listen.h - subscriptions/listen (revision 2026-07-28): long-lived notification streams that
 * belong to no session, fed by the cluster-wide resource events (docs/listen.md). */
#ifndef MCPGW_NODE_LISTEN_H
#define MCPGW_NODE_LISTEN_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct mcpgw_node;
struct mcpgw_http_conn;
struct mcpgw_http_head;
struct mcpgw_jsonrpc_msg;
struct mcpgw_store_event;
struct mcpgw_listen_set;

/* Which list a list-changed notification is about. */
enum mcpgw_listen_list {
    MCPGW_LISTEN_TOOLS,
    MCPGW_LISTEN_RESOURCES,
    MCPGW_LISTEN_PROMPTS,
    MCPGW_LISTEN_LIST_COUNT
};
const char *mcpgw_listen_list_str(enum mcpgw_listen_list l);

/* The node's listen streams. priority: the event base priority fan-out batches run at (the
 * lowest, as node/fanout.c's). Registers its metrics on n->metrics. */
struct mcpgw_listen_set *mcpgw_listen_set_new(struct mcpgw_node *n, int priority);
/* Ends nothing (the HTTP server closes the connections); frees every listen stream. */
void mcpgw_listen_set_free(struct mcpgw_listen_set *ls);

/* Serve a subscriptions/listen request m (borrowed until return) on conn: check the filter,
 * answer 200 text/event-stream with the acknowledgement first, then notifications until the
 * client goes. h: its request head (Last-Event-ID: a stream re-opened after that event replays
 * what came after it from the store before going live, docs/listen.md). Bad params are
 * answered with a JSON-RPC error. */
void mcpgw_listen_open(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                       const struct mcpgw_http_head *h, const struct mcpgw_jsonrpc_msg *m);

/* A resource event (live from the store, in the store's event order): notifications/resources/
 * updated to every local listen stream naming ev->uri, and resources/list_changed to those that
 * asked for it when the event created the resource (version 1). Delivered in batches in the
 * background; cheap when no local stream wants it. */
void mcpgw_listen_resource(struct mcpgw_node *n, const struct mcpgw_store_event *ev);

/* Task id of principal changed status (its note, from any node): notifications/tasks with task
 * (the DetailedTask, borrowed; copied) to the local streams that follow id for that principal
 * (docs/protocol-2026.md, "Status notifications"). In the background, as resource events. */
void mcpgw_listen_task(struct mcpgw_node *n, const char *id, const char *principal,
                       json_object *task);

/* List l changed and no store event carries it (the memory store, or a shared store that could
 * not record it): tell this node's streams that asked, live and without an event id
 * (node/catnotify.c). A recorded change arrives as a store event (mcpgw_listen_resource). */
void mcpgw_listen_list_changed(struct mcpgw_node *n, enum mcpgw_listen_list l);

/* The store's live event feed was interrupted (hold: before any event after the gap) and the
 * gap can be read (ready): live events wait from the hold until this node's streams are caught
 * up from the store after the last event it had seen, then follow (docs/listen.md). A ready
 * without a hold does nothing. */
void mcpgw_listen_gap_hold(struct mcpgw_node *n);
void mcpgw_listen_gap_ready(struct mcpgw_node *n);

/* Draining: end every stream with the completion result (a graceful end, as the revision asks
 * of a server that shuts down), so clients re-open elsewhere. */
void mcpgw_listen_end_all(struct mcpgw_node *n);

/* Open listen streams on this node. */
size_t mcpgw_listen_count(const struct mcpgw_listen_set *ls);

#endif
