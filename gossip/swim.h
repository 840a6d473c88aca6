/* swim.h - cluster membership and failure detection (SWIM over UDP) on a libevent loop. */
#ifndef MCPGW_GOSSIP_SWIM_H
#define MCPGW_GOSSIP_SWIM_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/udp.h"
#include "gossip/wire.h"

struct event_base;
struct mcpgw_gossip;

/* One member as this process sees it. Read-only for callers; every pointer (the struct and
 * its strings) is borrowed: valid until control returns to the event loop, or until the next
 * mcpgw_gossip_* call that changes membership. Copy what you keep. */
struct mcpgw_member {
    const char *id;
    const char *http_addr;   /* advertised HTTP host:port, "" when none */
    const char *gossip_addr; /* UDP "ip:port" the member is probed at */
    enum mcpgw_member_state state;
    uint64_t generation;  /* start time (wall ms) of the member's process: new on restart */
    uint32_t incarnation; /* bumped by the member to refute suspicion or publish metadata */
    uint32_t sessions;    /* load metadata published by the member */
    int serving;          /* 0 for non-serving members (balancers) */
    int draining;         /* the member announced draining (stays set while it is suspect) */
    uint64_t heard_ms;    /* monotonic ms of the last datagram from this incarnation of the
                             member, or ack (direct or relayed) of our probe of it; 0: never */
    int is_self;
};

/* Fired once per state transition of a remote member and once per change of its metadata
 * (sessions, http_addr, serving, generation); a member first learned of is reported with
 * old == MCPGW_MEMBER_STATE_COUNT. Not fired for this process's own member. Runs inside the
 * event loop; m is borrowed until the callback returns. The callback may read the view and
 * call set_sessions/set_draining/leave, but must not free the gossip instance. Dead and left
 * members are removed from the view after reap_ms without a further callback. */
typedef void (*mcpgw_gossip_change_cb)(void *arg, const struct mcpgw_member *m,
                                       enum mcpgw_member_state old);

struct mcpgw_gossip_config {
    const char *node_id;        /* 1-64 printable characters, unique in the cluster */
    const char *bind_addr;      /* UDP host:port ("127.0.0.1:0": any free port) */
    const char *advertise_addr; /* UDP host:port others reach us at; NULL: the bound address,
                                   which then must not be a wildcard (0.0.0.0, ::) */
    const char *const *seeds;   /* host:port list (names resolved at each join attempt) */
    int nseeds;
    const char *http_addr;      /* advertised host:port of the member's HTTP service, may be NULL */
    int serving;                /* 1 for nodes, 0 for balancers (non-serving members) */
    uint32_t period_ms;         /* protocol period: one probe per period */
    uint32_t probe_timeout_ms;  /* direct ack wait before indirect probes; < period_ms */
    int indirect_k;             /* members asked to probe indirectly */
    uint32_t suspicion_ms;      /* suspect -> dead when not refuted within this */
    int fanout;                 /* urgent updates (suspect, dead, joins...) sent at once to this
                                   many members, besides piggybacking */
    int retransmit_mult;        /* lambda: each update piggybacks lambda*ceil(log2(N+1)) times */
    uint32_t join_retry_ms;     /* while alone: join every seed this often */
    uint32_t sync_ms;           /* otherwise: full push-pull with one member/seed this often */
    uint32_t reap_ms;           /* dead/left members are forgotten after this */
    uint32_t meta_interval_ms;  /* session count changes are published at most this often */
    int max_members;            /* hard cap on the member table */
    const char *keyring_path;   /* key ring file (keyring.h): datagrams are sealed with its first
                                   key and must be sealed with one of its keys; NULL: version 1,
                                   unauthenticated, as before */
    uint32_t max_clock_skew_ms; /* a sealed datagram sent longer ago than this (by our clock) is
                                   refused; the members' clocks must agree this well. 0: no bound */
    mcpgw_gossip_change_cb on_change; /* may be NULL */
    void *arg;                        /* passed to on_change */
};

/* Fill *cfg with the defaults (docs/gossip.md explains them); strings and seeds are NULL. */
void mcpgw_gossip_config_defaults(struct mcpgw_gossip_config *cfg);

/* Validate cfg, bind the UDP socket and build the instance; nothing is sent before start.
 * cfg and its strings are copied. Returns NULL with a sentence in err on a bad config or a
 * bind failure. Free with mcpgw_gossip_free. base is borrowed and must outlive the instance. */
struct mcpgw_gossip *mcpgw_gossip_new(struct event_base *base,
                                      const struct mcpgw_gossip_config *cfg, char *err,
                                      size_t errlen);
/* Start probing and join through the seeds (retried while no other member is known).
 * Returns 0, or -1 if already started or an event cannot be added. */
int mcpgw_gossip_start(struct mcpgw_gossip *g);
/* Close the socket and free everything, without telling anyone: the others will detect us as
 * dead. Call mcpgw_gossip_leave first for a graceful exit. */
void mcpgw_gossip_free(struct mcpgw_gossip *g);

/* Local load metadata, disseminated at most every meta_interval_ms (changes coalesce). */
void mcpgw_gossip_set_sessions(struct mcpgw_gossip *g, uint32_t n);
/* This member is draining: announced at once; draining members are still probed. */
void mcpgw_gossip_set_draining(struct mcpgw_gossip *g);
/* Announce a graceful leave and stop probing: the announcement is sent at once, directly to
 * every live member, so freeing right afterwards is fine (running the loop a little longer
 * only adds piggybacked copies, in case a datagram is lost). */
void mcpgw_gossip_leave(struct mcpgw_gossip *g);

/* Re-read the key ring file (path, or NULL for the one configured) and use it from now on:
 * the way to rotate keys without a restart (docs/gossip.md, "Rotating keys"). Returns 0, or -1
 * with a sentence in err and the current ring unchanged (unreadable or malformed file, or one with
 * no key while authentication is on). Counted in the stats either way. */
int mcpgw_gossip_reload_keyring(struct mcpgw_gossip *g, const char *path, char *err, size_t errlen);
/* Datagram counters (accepted, sent, refused by reason) and the key count; borrowed, live. */
const struct mcpgw_gossip_stats *mcpgw_gossip_stats(const struct mcpgw_gossip *g);

/* The member view, this process included at index 0. Borrowed as struct mcpgw_member says. */
int mcpgw_gossip_member_count(const struct mcpgw_gossip *g);
const struct mcpgw_member *mcpgw_gossip_member_get(const struct mcpgw_gossip *g, int i);
/* The member with this id, or NULL. */
const struct mcpgw_member *mcpgw_gossip_member_find(const struct mcpgw_gossip *g, const char *id);
/* This process's own member. */
const struct mcpgw_member *mcpgw_gossip_self(const struct mcpgw_gossip *g);
/* The UDP port actually bound (useful with port 0). */
int mcpgw_gossip_port(const struct mcpgw_gossip *g);

#endif
