/* tasks.h - the tasks extension (io.modelcontextprotocol/tasks) of the 2026-07-28 era: tool
 * calls answered with a task handle, tasks/get, tasks/update and tasks/cancel, task records in
 * the store so that any node answers for a task (docs/protocol-2026.md, "Tasks"). */
#ifndef MCPGW_NODE_TASKS_H
#define MCPGW_NODE_TASKS_H

#include <json-c/json.h>
#include <stddef.h>

struct mcpgw_node;
struct mcpgw_http_conn;
struct mcpgw_tool;
struct mcpgw_provider_ops;

#define MCPGW_TASKS_EXT "io.modelcontextprotocol/tasks"

/* The era's own fixtures: the tasks extension's (greet, slow_compute, failing_job,
 * protocol_error_job, confirm_delete, multi_input, test_tool_with_task), then MRTR's
 * (mcpgw_mrtr_provider, to which every other member defers). */
extern const struct mcpgw_provider_ops mcpgw_tasks_provider;

/* Whether the client capabilities of a request (the _meta object) declare the extension. */
int mcpgw_tasks_declared(json_object *caps);

/* A request being served, as this module needs it; everything borrowed until return. */
struct mcpgw_tasks_req {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn;
    json_object *id;       /* the JSON-RPC id */
    json_object *params;   /* the request's params */
    json_object *caps;     /* _meta clientCapabilities */
    const char *principal; /* "" without authentication */
};

/* tools/call of t with args (an object or NULL): 1 when this module answered or will answer
 * (a task created, an MRTR round before one, -32021 for a tool that needs the extension the
 * client did not declare), 0 when the call runs synchronously as any other. */
int mcpgw_tasks_call(const struct mcpgw_tasks_req *q, const struct mcpgw_tool *t,
                     json_object *args);

/* Whether method is one of the extension's: tasks/get, tasks/update, tasks/cancel (tasks/result
 * and tasks/list of the 2025-11-25 tasks are gone). */
int mcpgw_tasks_is_method(const char *method);

/* tasks/get, tasks/update or tasks/cancel (method) of task id: answered now or later. The
 * caller has checked the extension was declared and that Mcp-Name names id. */
void mcpgw_tasks_method(const struct mcpgw_tasks_req *q, const char *method, const char *id);

/* The node id a task id names (its routing prefix, as a session id's) into out; returns its
 * length, 0 when id names none (then any node answers from the store). */
size_t mcpgw_tasks_id_node(const char *id, char *out, size_t cap);

/* Hand the store's task status notes (every node's task writes) to this node's listen streams
 * (mcpgw_listen_task). */
void mcpgw_tasks_start(struct mcpgw_node *n);

/* Stop the tasks this node runs (their records stay: another node answers for them) and free
 * the module's state. */
void mcpgw_tasks_stop(struct mcpgw_node *n);

#endif
