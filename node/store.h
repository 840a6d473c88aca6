/* store.h - where session state lives: this process only (memory) or Redis (replicated).
 *
 * Every operation completes through a callback. The memory store calls back before returning;
 * the Redis store calls back from the event loop later. Callers are therefore written in
 * continuation style and must not assume either. Callbacks never fire after mcpgw_store_free.
 * The wire format and protocol of the Redis store are specified in docs/replication.md. */
#ifndef MCPGW_NODE_STORE_H
#define MCPGW_NODE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mcpgw_registry;
struct mcpgw_session;

enum mcpgw_store_err {
    MCPGW_STORE_OK = 0,
    MCPGW_STORE_UNAVAILABLE = -1, /* Redis unreachable or failing */
    MCPGW_STORE_GONE = -2,        /* no such session record (expired, deleted, Redis emptied) */
    MCPGW_STORE_STALE = -3,       /* the session moved: this node's epoch is old */
    MCPGW_STORE_NOSCRIPT = -4,    /* internal to the Redis store: scripts must be reloaded */
    MCPGW_STORE_FOREIGN = -5,     /* claim refused: the session belongs to another principal */
};
const char *mcpgw_store_err_str(int err);

/* A resource event: the facts of a change (the node builds the message that tells clients).
 * g-seq is its id in the shared store's event order ("<counter>-0"); 0-0 from a store without
 * one (memory). Borrowed for the duration of the callback that passes it. */
struct mcpgw_store_event {
    uint64_t g, seq;
    const char *uri;
    uint64_t version;
};

/* A resource event whose uri is this byte and a list's kind ("\x01resources") is a change of
 * that list, with its own id in the event order (version 0). No URI holds a control byte. */
#define MCPGW_STORE_LIST_PREFIX    "\x01"
#define MCPGW_STORE_LIST_RESOURCES MCPGW_STORE_LIST_PREFIX "resources"

/* What the check of a local session's record after a reconnect found. */
enum mcpgw_store_verdict {
    MCPGW_STORE_VERIFY_OWNED,  /* still this node's: events published meanwhile may be missing */
    MCPGW_STORE_VERIFY_MOVED,  /* another node took it over while this one was not listening */
    MCPGW_STORE_VERIFY_LOST,   /* its record is gone (Redis restarted empty) */
    MCPGW_STORE_VERIFY_FAILED, /* the check failed: the next reconnect checks again */
    MCPGW_STORE_VERIFY_COUNT
};
const char *mcpgw_store_verdict_str(enum mcpgw_store_verdict v);

/* How a store reports what happens to it without being asked: given at creation with an arg
 * passed back to every callback, it is the only way the store reaches the layers above it.
 * Sessions passed are registered in the registry given at creation and borrowed until the
 * callback returns; a callback may remove and free them. Any member may be NULL. */
struct mcpgw_store_events {
    /* Another node claimed s (its new epoch): this copy is stale. */
    void (*moved)(void *arg, struct mcpgw_session *s, uint64_t epoch);
    /* A resource changed: live, in the store's event order (the memory store reports its own
     * writes, before their note_write callback). */
    void (*resource)(void *arg, const struct mcpgw_store_event *ev);
    /* The live event feed was interrupted: events for s may be missing until its verified
     * callback; hold live ones back meanwhile. */
    void (*hold)(void *arg, struct mcpgw_session *s);
    /* The check of s's record after a reconnect (owner/epoch as the record has them, "" and 0
     * when unknown). Every hold is followed by a verified, or by another hold first. */
    void (*verified)(void *arg, struct mcpgw_session *s, enum mcpgw_store_verdict v,
                     const char *owner, uint64_t epoch);
    /* The live event feed was interrupted and is back: events published meanwhile may be
     * missing. Reported before any event that follows the gap; followed by feed_ready once
     * the gap can be read (mcpgw_store_replay_uris), or by another feed_hold first. feed_ready
     * also comes without a hold (after a reconnect of the command connection alone). */
    void (*feed_hold)(void *arg);
    void (*feed_ready)(void *arg);
    /* Reachability changed (mcpgw_store_up). */
    void (*up)(void *arg, int up);
    /* Names on the notes board, cluster-wide (borrowed until return): all of them, in creation
     * order, each time the store (re)connects, and each new one as it is created (on any node).
     * Names already reported may come again. */
    void (*notes)(void *arg, const char *const *names, size_t count);
};

typedef void (*mcpgw_store_done_fn)(void *arg, int err);
/* A claimed session, filled from its record but not registered (the callee owns it), or NULL
 * with err. */
typedef void (*mcpgw_store_claim_fn)(void *arg, struct mcpgw_session *s, int err);
typedef void (*mcpgw_store_note_fn)(void *arg, int err, const char *text, uint64_t version);
/* A recorded result (JSON text) or NULL when there is none. */
typedef void (*mcpgw_store_result_fn)(void *arg, int err, const char *json);
/* One replayed resource event (borrowed until return). */
typedef void (*mcpgw_store_event_fn)(void *arg, const struct mcpgw_store_event *ev);
/* The end of a replay. at: the cluster's event counter when the events were read (0 for a store
 * without one): every later event is published after the replay. */
typedef void (*mcpgw_store_replayed_fn)(void *arg, int err, uint64_t at);

struct mcpgw_store;

struct mcpgw_store_config {
    const char *url;            /* "memory" or "redis://host:port[/db]" */
    const char *node_id;        /* this node: owner of the sessions it creates and claims */
    uint64_t session_ttl_ms;    /* the idle expiry: TTL of session records */
    struct event_base *base;    /* the loop the store's connections and timers run on */
    struct mcpgw_registry *reg; /* this node's sessions (borrowed for the store's life) */
};

/* Create a store from cfg (copied; the strings are borrowed for the store's life). ev (and arg)
 * are how it reports up, borrowed for its life. Returns NULL with a sentence in err on a bad
 * URL. */
struct mcpgw_store *mcpgw_store_new(const struct mcpgw_store_config *cfg,
                                    const struct mcpgw_store_events *ev, void *arg, char *err,
                                    size_t errlen);
void mcpgw_store_free(struct mcpgw_store *st);
/* Whether sessions outlive this process (other nodes may claim them). */
int mcpgw_store_shared(const struct mcpgw_store *st);
/* Whether the backing service is reachable now (always 1 for memory). */
int mcpgw_store_up(const struct mcpgw_store *st);
/* The highest value of the cluster's event counter this node knows: read at each (re)connect,
 * once its live feed is in place, and raised by every event received since. Unlike the events
 * a node has received, it covers those published before the node started listening. 0 for a
 * store without one (memory). */
uint64_t mcpgw_store_event_counter(const struct mcpgw_store *st);

/* Persist a new session (owner = this node, epoch 1). */
void mcpgw_store_create(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                        void *arg);
/* Take a session this node does not hold: see docs/replication.md. */

/* The principal the claims started from now on are made for (borrowed until the next call;
 * NULL: any). A claim for a session whose record names another principal changes nothing (the
 * session stays where it is) and ends with MCPGW_STORE_FOREIGN. Set it around one claim call. */
void mcpgw_store_set_claimant(struct mcpgw_store *st, const char *principal);
void mcpgw_store_claim(struct mcpgw_store *st, const char *sid, size_t len,
                       mcpgw_store_claim_fn done, void *arg);
/* Persist lifecycle state and log level (fenced by epoch). */
void mcpgw_store_save(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                      void *arg);
/* Persist a subscription change (fenced), keeping the cluster-wide URI index. */
void mcpgw_store_subscribe(struct mcpgw_store *st, struct mcpgw_session *s, const char *uri, int on,
                           mcpgw_store_done_fn done, void *arg);
/* Remove the session's records (fenced; fire and forget). */
void mcpgw_store_delete(struct mcpgw_store *st, struct mcpgw_session *s);
/* Note activity; refreshes TTLs at most every tenth of the idle expiry. */
void mcpgw_store_touch(struct mcpgw_store *st, struct mcpgw_session *s);
/* Replay the resource events of s's subscriptions after the event id `after` ("<g>-<seq>", the
 * part after "0." of the client's Last-Event-ID), and the list changes recorded since the
 * session began (events named MCPGW_STORE_LIST_PREFIX <kind>), then done. The memory store keeps no
 * events: a session's GET stream replays from the session's own log there, and this finds nothing.
 */
void mcpgw_store_replay(struct mcpgw_store *st, struct mcpgw_session *s, const char *after,
                        mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
/* The resource events of the URIs in uris (newline-separated, none holding a newline) after
 * the event counter value `after`, merged in counter order, then done: a listen stream resumed
 * (node/listen.c). Only the last ~1000 events of each URI are kept. The memory store keeps no
 * events and finds nothing. */
void mcpgw_store_replay_uris(struct mcpgw_store *st, const char *uris, uint64_t after,
                             mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
/* mcpgw_store_claim, and the replay of that session after `after` sent with it: one round trip
 * instead of two when a client resumes its GET stream on a node that must claim the session.
 * claimed(claim_arg) fires first, then visit and done(arg), whatever the claim's outcome. The
 * replay reads the events before this node has registered the session: events published
 * after `at` and seen live before the registration need a catch-up (docs/replication.md). */
void mcpgw_store_claim_replay(struct mcpgw_store *st, const char *sid, size_t len,
                              const char *after, mcpgw_store_claim_fn claimed, void *claim_arg,
                              mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
/* A list (kind: "tools", "prompts", "resources") is now what hashes to hash, as this node sees
 * it (its upstreams' merged catalogue). Every node sees the same upstream change: the first to
 * report a list the cluster has not announced yet makes it a list-change event (recorded for
 * replays, delivered to every node through the events callback `resource`, named
 * MCPGW_STORE_LIST_PREFIX <kind>); the others' reports record nothing. done(arg, 0) either way,
 * or with an error (Redis unreachable: nothing was recorded, the caller tells its sessions
 * itself). Returns -1 (done never fires) for a store that keeps no events (memory). */
int mcpgw_store_list_change(struct mcpgw_store *st, const char *kind, uint64_t hash,
                            mcpgw_store_done_fn done, void *arg);
/* The shared notes board. A write is also the resource event of mcpgw://notes/<name>, recorded
 * and published atomically with the write: done reports the new version. */
void mcpgw_store_note_write(struct mcpgw_store *st, const char *name, const char *text,
                            mcpgw_store_note_fn done, void *arg);
void mcpgw_store_note_read(struct mcpgw_store *st, const char *name, mcpgw_store_note_fn done,
                           void *arg);
/* Results of side-effecting requests, for retries (key: the request id as JSON text). */
void mcpgw_store_result_get(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                            mcpgw_store_result_fn done, void *arg);
void mcpgw_store_result_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                            const char *json, mcpgw_store_done_fn done, void *arg);
/* The state of the session's own upstream session at upstream `name` (a per-client upstream:
 * its Mcp-Session-Id, revision and last event id, as upsess.c encodes them), fenced; claims
 * return it in s->up_state ("" for none). The memory store keeps nothing (the state
 * lives in this process). */
void mcpgw_store_upstream_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *name,
                              const char *value, mcpgw_store_done_fn done, void *arg);
/* One command of a module with keys of its own (node/limits.c) on the Redis store's command
 * connection, so it shares that connection's AUTH, ordering and watchdog. Returns 0 when sent:
 * fn then fires once from the loop with the reply (borrowed until it returns), or with NULL when
 * the connection failed or the store is being freed. Returns -1 (fn never fires) for the memory
 * store and while Redis is down. NOSCRIPT and other error replies are the caller's to read. */
struct redisReply;
typedef void (*mcpgw_store_raw_fn)(void *arg, struct redisReply *reply);
int mcpgw_store_command(struct mcpgw_store *st, int argc, const char **argv, const size_t *lens,
                        mcpgw_store_raw_fn fn, void *arg);
/* Resynchronize after this process stalled (paused, swapped): done fires once every message
 * published to this node before now has been processed (its "moved" notices included). Fires
 * at once for the memory store, or while Redis is unreachable. */
void mcpgw_store_resync(struct mcpgw_store *st, mcpgw_store_done_fn done, void *arg);

/* Task records (2026-07-28 tasks extension, node/tasks.c; format in docs/protocol-2026.md):
 * a status word, the node running the task, that node's lease and the record's JSON text.
 * Leases are kept by the store's clock (Redis TIME; this process's monotonic clock for the
 * memory store), never by a node's wall clock: lease_ms is, written, how long the lease lasts
 * from the write, and, read, how long it has left (0: run out). version counts the writes of
 * rec (1 after creation). Borrowed for the duration of the callback that passes it. */
struct mcpgw_store_task {
    const char *status, *owner, *rec;
    uint64_t lease_ms;
    /* read: the record's version; written: the version the record must still have (0: any) */
    uint64_t version;
    /* written only: a notification published to every node (mcpgw_store_set_task_handler) when
     * this write changes the record's status; NULL: none */
    const char *note;
};
/* A task record, or NULL with err (MCPGW_STORE_GONE: no such task, or expired). */
typedef void (*mcpgw_store_task_fn)(void *arg, int err, const struct mcpgw_store_task *t);
/* Write task id's record, atomically: status and rec NULL keep theirs, owner and lease are
 * always set. ttl_ms > 0 creates (or overwrites) with that lifetime from now; 0 writes only over
 * an existing record. Refused (MCPGW_STORE_STALE) when the record is terminal (completed,
 * failed, cancelled: a terminal state is written once), when expect_owner is not NULL and the
 * record names another owner, or when t->version is not 0 and the record's version differs (it
 * was written since it was read: read it again and redo the change). The memory store keeps
 * records in this process. */
void mcpgw_store_task_put(struct mcpgw_store *st, const char *id, const struct mcpgw_store_task *t,
                          const char *expect_owner, uint64_t ttl_ms, mcpgw_store_done_fn done,
                          void *arg);
void mcpgw_store_task_get(struct mcpgw_store *st, const char *id, mcpgw_store_task_fn done,
                          void *arg);
/* Where the notes of task writes go (one handler, fn NULL: dropped): with Redis every node's
 * handler gets each, from the cluster's event channel (at most once: pub/sub); with the memory
 * store this process's, before the write's done fires. msg (len bytes) is borrowed until
 * return. */
typedef void (*mcpgw_store_task_note_fn)(void *arg, const char *msg, size_t len);
void mcpgw_store_set_task_handler(struct mcpgw_store *st, mcpgw_store_task_note_fn fn, void *arg);
/* Node-to-node messages (node/bridge26.c hands MRTR answers to the node running an upstream
 * call). How many nodes received a message: 0 means no node of that id is listening now (dead,
 * or unknown); err when the store could not send it (the memory store never can). */
typedef void (*mcpgw_store_sent_fn)(void *arg, int err, long receivers);
/* A message (bytes, copied) for this node, borrowed until return. */
typedef void (*mcpgw_store_node_msg_fn)(void *arg, const char *msg, size_t len);
/* Send msg to node `node_id` on its own channel; done (may be NULL) fires once. Delivery is at
 * most once and only to a node listening at that moment: the receiver answers if it must. */
void mcpgw_store_node_send(struct mcpgw_store *st, const char *node_id, const char *msg, size_t len,
                           mcpgw_store_sent_fn done, void *arg);
/* Where this node's node-to-node messages go (one handler; fn NULL: dropped). */
void mcpgw_store_set_node_handler(struct mcpgw_store *st, mcpgw_store_node_msg_fn fn, void *arg);

#endif
