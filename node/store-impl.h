/* store-impl.h - the table every store backend fills (memory in store.c, Redis in
 * store_redis.c). Only store backends include this. */
#ifndef MCPGW_NODE_STORE_IMPL_H
#define MCPGW_NODE_STORE_IMPL_H

#include "node/store.h"

struct mcpgw_store_ops {
    const char *name;
    int shared;
    int (*up)(const struct mcpgw_store *st);
    void (*free)(struct mcpgw_store *st);
    void (*create)(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                   void *arg);
    void (*claim)(struct mcpgw_store *st, const char *sid, size_t len, mcpgw_store_claim_fn done,
                  void *arg);
    void (*save)(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                 void *arg);
    void (*subscribe)(struct mcpgw_store *st, struct mcpgw_session *s, const char *uri, int on,
                      mcpgw_store_done_fn done, void *arg);
    void (*del)(struct mcpgw_store *st, struct mcpgw_session *s);
    void (*touch)(struct mcpgw_store *st, struct mcpgw_session *s);
    /* sid: NUL-terminated; the session need not be registered here */
    void (*replay)(struct mcpgw_store *st, const char *sid, const char *after,
                   mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
    /* uris: newline-separated */
    void (*replay_uris)(struct mcpgw_store *st, const char *uris, uint64_t after,
                        mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
    void (*note_write)(struct mcpgw_store *st, const char *name, const char *text,
                       mcpgw_store_note_fn done, void *arg);
    void (*note_read)(struct mcpgw_store *st, const char *name, mcpgw_store_note_fn done,
                      void *arg);
    void (*result_get)(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                       mcpgw_store_result_fn done, void *arg);
    void (*resync)(struct mcpgw_store *st, mcpgw_store_done_fn done, void *arg);
    void (*result_put)(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                       const char *json, mcpgw_store_done_fn done, void *arg);
    void (*upstream_put)(struct mcpgw_store *st, struct mcpgw_session *s, const char *name,
                         const char *value, mcpgw_store_done_fn done, void *arg);
    /* NULL: no such connection (mcpgw_store_command returns -1) */
    int (*command)(struct mcpgw_store *st, int argc, const char **argv, const size_t *lens,
                   mcpgw_store_raw_fn fn, void *arg);
    /* Task records; NULL: kept in this process (store_task.c). */
    void (*task_put)(struct mcpgw_store *st, const char *id, const struct mcpgw_store_task *t,
                     const char *expect_owner, uint64_t ttl_ms, mcpgw_store_done_fn done,
                     void *arg);
    void (*task_get)(struct mcpgw_store *st, const char *id, mcpgw_store_task_fn done, void *arg);
    /* NULL: the store keeps no events (memory): mcpgw_store_list_change returns -1 */
    void (*list_change)(struct mcpgw_store *st, const char *kind, uint64_t hash,
                        mcpgw_store_done_fn done, void *arg);
    /* NULL: the store keeps no event order (memory): mcpgw_store_event_counter returns 0 */
    uint64_t (*event_counter)(const struct mcpgw_store *st);
    /* NULL: the store cannot reach other nodes (memory) */
    void (*node_send)(struct mcpgw_store *st, const char *node_id, const char *msg, size_t len,
                      mcpgw_store_sent_fn done, void *arg);
};

struct mcpgw_store {
    const struct mcpgw_store_ops *ops;
    struct mcpgw_store_config cfg;
    const struct mcpgw_store_events *ev;
    void *ev_arg;
    void *impl;
    const char *claimant; /* mcpgw_store_set_claimant: read by claims as they are sent */
    void *tasks;          /* task records of a store without task_put (store_task.c) */
    mcpgw_store_node_msg_fn node_msg; /* mcpgw_store_set_node_handler */
    void *node_msg_arg;
    mcpgw_store_task_note_fn task_note; /* mcpgw_store_set_task_handler */
    void *task_note_arg;
};

extern const struct mcpgw_store_ops mcpgw_store_redis_ops;
/* Task records kept in this process, for a store whose ops have no task_put. */
void mcpgw_store_task_mem_put(struct mcpgw_store *st, const char *id,
                              const struct mcpgw_store_task *t, const char *expect_owner,
                              uint64_t ttl_ms, mcpgw_store_done_fn done, void *arg);
void mcpgw_store_task_mem_get(struct mcpgw_store *st, const char *id, mcpgw_store_task_fn done,
                              void *arg);
void mcpgw_store_task_mem_free(struct mcpgw_store *st);
/* Parse "host:port[/db]" and start connecting (the node serves while Redis is unreachable). */
int mcpgw_store_redis_init(struct mcpgw_store *st, const char *hostport, char *err, size_t errlen);

/* Report through the events table (nothing when the member is NULL). */
void mcpgw_store_report_moved(struct mcpgw_store *st, struct mcpgw_session *s, uint64_t epoch);
void mcpgw_store_report_resource(struct mcpgw_store *st, const struct mcpgw_store_event *ev);
void mcpgw_store_report_hold(struct mcpgw_store *st, struct mcpgw_session *s);
void mcpgw_store_report_verified(struct mcpgw_store *st, struct mcpgw_session *s,
                                 enum mcpgw_store_verdict v, const char *owner, uint64_t epoch);
void mcpgw_store_report_feed_hold(struct mcpgw_store *st);
void mcpgw_store_report_feed_ready(struct mcpgw_store *st);
void mcpgw_store_report_up(struct mcpgw_store *st, int up);
void mcpgw_store_report_node_msg(struct mcpgw_store *st, const char *msg, size_t len);
void mcpgw_store_report_task_note(struct mcpgw_store *st, const char *msg, size_t len);
void mcpgw_store_report_notes(struct mcpgw_store *st, const char *const *names, size_t count);

#endif
