/* store.h - where session state lives: this process only (memory) or Redis (replicated).
 *
 * Every operation completes through a callback. The memory store calls back before returning;
 * the Redis store calls back from the event loop later. Callers are therefore written in
 * continuation style and must not assume either. Callbacks never fire after mcpgw_store_free.
 * The wire format and protocol of the Redis store are specified in docs/replication.md. */
#ifndef MCPGW_NODE_STORE_H
#define MCPGW_NODE_STORE_H

#include "node/node-t.h"

enum mcpgw_store_err {
    MCPGW_STORE_OK = 0,
    MCPGW_STORE_UNAVAILABLE = -1, /* Redis unreachable or failing */
    MCPGW_STORE_GONE = -2,        /* no such session record (expired, deleted, Redis emptied) */
    MCPGW_STORE_STALE = -3,       /* the session moved: this node's epoch is old */
    MCPGW_STORE_NOSCRIPT = -4,    /* internal to the Redis store: scripts must be reloaded */
};
const char *mcpgw_store_err_str(int err);

typedef void (*mcpgw_store_done_fn)(void *arg, int err);
/* A claimed session, filled from its record but not registered (the callee owns it), or NULL
 * with err. */
typedef void (*mcpgw_store_claim_fn)(void *arg, struct mcpgw_session *s, int err);
typedef void (*mcpgw_store_note_fn)(void *arg, int err, const char *text, uint64_t version);
/* A recorded result (JSON text) or NULL when there is none. */
typedef void (*mcpgw_store_result_fn)(void *arg, int err, const char *json);
/* One replayed GET-stream event: its SSE id and the message. */
typedef void (*mcpgw_store_event_fn)(void *arg, const char *id, const char *json, size_t len);
/* The end of a replay. at: the cluster's event counter when the events were read (0 for a store
 * without one): every later event is published after the replay. */
typedef void (*mcpgw_store_replayed_fn)(void *arg, int err, uint64_t at);

struct mcpgw_store;

/* "memory" or "redis://host:port". Returns NULL with a sentence in err on a bad URL. */
struct mcpgw_store *mcpgw_store_new(struct mcpgw_node *n, const char *url, char *err,
                                    size_t errlen);
void mcpgw_store_free(struct mcpgw_store *st);
/* Whether sessions outlive this process (other nodes may claim them). */
int mcpgw_store_shared(const struct mcpgw_store *st);
/* Whether the backing service is reachable now (always 1 for memory). */
int mcpgw_store_up(const struct mcpgw_store *st);

/* Persist a new session (owner = this node, epoch 1). */
void mcpgw_store_create(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                        void *arg);
/* Take a session this node does not hold: see docs/replication.md. */
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
/* Replay the GET-stream events after the SSE id `after` (the part after "0."), then done. */
void mcpgw_store_replay(struct mcpgw_store *st, struct mcpgw_session *s, const char *after,
                        mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
/* mcpgw_store_claim, and the replay of that session after `after` sent with it: one round trip
 * instead of two when a client resumes its GET stream on a node that must claim the session.
 * claimed(claim_arg) fires first, then visit and done(arg), whatever the claim's outcome. The
 * replay reads the events before this node has registered the session: events published
 * after `at` and seen live before the registration need a catch-up (docs/replication.md). */
void mcpgw_store_claim_replay(struct mcpgw_store *st, const char *sid, size_t len,
                              const char *after, mcpgw_store_claim_fn claimed, void *claim_arg,
                              mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg);
/* The shared notes board. A write also notifies every subscriber of mcpgw://notes/<name>,
 * atomically with the write: done reports the new version. */
void mcpgw_store_note_write(struct mcpgw_store *st, const char *name, const char *text,
                            mcpgw_store_note_fn done, void *arg);
void mcpgw_store_note_read(struct mcpgw_store *st, const char *name, mcpgw_store_note_fn done,
                           void *arg);
/* Results of side-effecting requests, for retries (key: the request id as JSON text). */
void mcpgw_store_result_get(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                            mcpgw_store_result_fn done, void *arg);
void mcpgw_store_result_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                            const char *json, mcpgw_store_done_fn done, void *arg);
/* Resynchronize after this process stalled (paused, swapped): done fires once every message
 * published to this node before now has been processed (its "moved" notices included). Fires
 * at once for the memory store, or while Redis is unreachable. */
void mcpgw_store_resync(struct mcpgw_store *st, mcpgw_store_done_fn done, void *arg);

/* Local sessions this store says were lost (e.g. Redis restarted empty) are passed to lost. */
typedef void (*mcpgw_store_lost_fn)(struct mcpgw_node *n, struct mcpgw_session *s);

#endif
