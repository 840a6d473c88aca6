/* registry.h - the node's local sharded registry of sessions and resource subscriptions.
 *
 * Sessions are partitioned into 2^k shards by hash of the id. Each shard owns a hash table of
 * its sessions and an index from resource URI to its local subscriber sessions. Lookup, insert
 * and delete are O(1) on average; the registry also keeps every session on one list ordered by
 * last activity, so expiring idle sessions costs O(expired). */
#ifndef MCPGW_NODE_REGISTRY_H
#define MCPGW_NODE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

struct mcpgw_session;
struct mcpgw_registry;

/* shard_bits: k in 2^k shards (0..16). */
struct mcpgw_registry *mcpgw_registry_new(unsigned shard_bits);
/* Frees the registry's own structures, not the sessions (remove and free them first). */
void mcpgw_registry_free(struct mcpgw_registry *r);

/* Insert a session whose id and hash are set (borrowed: the registry never frees sessions).
 * Returns 0, or -1 if a session with that id is already present. */
int mcpgw_registry_insert(struct mcpgw_registry *r, struct mcpgw_session *s);
struct mcpgw_session *mcpgw_registry_lookup(struct mcpgw_registry *r, const char *id, size_t len);
/* Remove the session and all its subscription index entries. */
void mcpgw_registry_remove(struct mcpgw_registry *r, struct mcpgw_session *s);
/* Mark activity now: moves the session to the young end of the expiry list. */
void mcpgw_registry_touch(struct mcpgw_registry *r, struct mcpgw_session *s, uint64_t now_ms);
/* Oldest session if it has been idle since before `older_than_ms`, else NULL. */
struct mcpgw_session *mcpgw_registry_oldest_idle(struct mcpgw_registry *r, uint64_t older_than_ms);

/* Subscription index. subscribe/unsubscribe update both the session's list and its shard's
 * index; they return 1 if anything changed. */
int mcpgw_registry_subscribe(struct mcpgw_registry *r, struct mcpgw_session *s, const char *uri);
int mcpgw_registry_unsubscribe(struct mcpgw_registry *r, struct mcpgw_session *s, const char *uri);
/* Call fn for every local session subscribed to uri (fn must not change subscriptions). */
void mcpgw_registry_foreach_subscriber(struct mcpgw_registry *r, const char *uri,
                                       void (*fn)(void *arg, struct mcpgw_session *s), void *arg);
/* The same a part at a time: from shard *shard on, whole shards until at least budget sessions
 * were visited (or the last shard); *shard is left at the next shard to visit. Returns the
 * number visited. Sessions that subscribe meanwhile in a shard not yet visited are visited. */
size_t mcpgw_registry_foreach_subscriber_from(struct mcpgw_registry *r, const char *uri,
                                              size_t *shard, size_t budget,
                                              void (*fn)(void *arg, struct mcpgw_session *s),
                                              void *arg);
/* Whether a walk left at shard has shards left to visit. */
int mcpgw_registry_subscriber_shards_left(const struct mcpgw_registry *r, size_t shard);
/* The number of shards (2^k), and every session of one of them (for work spread over time:
 * fn must not insert or remove sessions). */
size_t mcpgw_registry_shard_count(const struct mcpgw_registry *r);
void mcpgw_registry_foreach_in_shard(struct mcpgw_registry *r, size_t shard,
                                     void (*fn)(void *arg, struct mcpgw_session *s), void *arg);
/* Call fn for every session (fn must not insert or remove). */
void mcpgw_registry_foreach(struct mcpgw_registry *r,
                            void (*fn)(void *arg, struct mcpgw_session *s), void *arg);

struct mcpgw_registry_stats {
    uint64_t sessions;
    uint64_t sub_uris;    /* URI entries in the shard indexes */
    uint64_t sub_entries; /* (URI, session) pairs in the shard indexes */
    unsigned shards;
};
void mcpgw_registry_stats(const struct mcpgw_registry *r, struct mcpgw_registry_stats *st);
/* The longest bucket chain over all shards (O(sessions): for tests and diagnostics). Lookups
 * are O(1) as long as this stays a small constant as the registry grows. */
unsigned mcpgw_registry_longest_chain(const struct mcpgw_registry *r);

#endif
