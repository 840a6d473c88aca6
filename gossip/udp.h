/* udp.h - the gossip socket: datagrams out and in, sealed and checked with the key ring when
 * there is one (authentication, replay window, counters), and the ICMP reports our datagrams
 * meet. Reports up through callbacks; knows nothing of members. */
#ifndef MCPGW_GOSSIP_UDP_H
#define MCPGW_GOSSIP_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gossip/wire.h"

struct event_base;
struct mcpgw_gossip_keyring;
struct mcpgw_metrics;
struct mcpgw_gossip_udp;

/* Why a received datagram was dropped before the protocol saw it. */
enum mcpgw_gossip_refusal {
    MCPGW_GOSSIP_REFUSED_FORGED = 0, /* envelope does not authenticate (altered, truncated) */
    MCPGW_GOSSIP_REFUSED_REPLAYED,   /* authentic, but accepted before or from a past life */
    MCPGW_GOSSIP_REFUSED_STALE,      /* authentic, but sent too long ago (or clocks too far) */
    MCPGW_GOSSIP_REFUSED_VERSION,    /* unknown version, or version 1 while we hold keys */
    MCPGW_GOSSIP_REFUSED_NO_KEY,     /* sealed with a key we do not hold (or we hold none) */
    MCPGW_GOSSIP_REFUSED_MALFORMED,  /* the version-1 datagram does not decode */
    MCPGW_GOSSIP_REFUSED_COUNT
};
const char *mcpgw_gossip_refusal_str(int r);

struct mcpgw_gossip_stats {
    uint64_t received; /* datagrams handed to the protocol */
    uint64_t sent;
    uint64_t refused[MCPGW_GOSSIP_REFUSED_COUNT];
    uint64_t key_reloads, key_reload_failures;
    int keys; /* keys in the ring; 0: unauthenticated version 1 */
};

/* A datagram that passed every check: msg and src are borrowed until the callback returns. */
typedef void (*mcpgw_gossip_udp_msg_cb)(void *arg, const struct mcpgw_gossip_msg *msg,
                                        const struct sockaddr_storage *src, socklen_t srclen);
/* A datagram of ours to dst met "port unreachable": nothing listens there any more. */
typedef void (*mcpgw_gossip_udp_unreach_cb)(void *arg, const struct mcpgw_gossip_addr *dst);

struct mcpgw_gossip_udp_config {
    const char *bind_addr;      /* host:port */
    const char *advertise_addr; /* host:port or NULL: the bound address (not a wildcard) */
    int max_senders;            /* replay windows kept: the member table's bound */
    uint32_t max_clock_skew_ms; /* how old (or early) a sealed datagram may be */
    mcpgw_gossip_udp_msg_cb on_msg;
    mcpgw_gossip_udp_unreach_cb on_unreachable;
    void *arg;
};

/* Bind the socket (not yet reading) and fill *self_addr with the address to advertise. Strings
 * are used during the call only. Returns NULL with a sentence in err. base is borrowed. */
struct mcpgw_gossip_udp *mcpgw_gossip_udp_new(struct event_base *base,
                                              const struct mcpgw_gossip_udp_config *cfg,
                                              struct mcpgw_gossip_addr *self_addr, char *err,
                                              size_t errlen);
/* Start reading. Returns 0 or -1. */
int mcpgw_gossip_udp_start(struct mcpgw_gossip_udp *u);
void mcpgw_gossip_udp_free(struct mcpgw_gossip_udp *u);

/* Use ring from now on (takes ownership, frees the previous one). NULL or an empty ring: send
 * and accept version 1 only, as without authentication. Counters are kept. */
void mcpgw_gossip_udp_set_keyring(struct mcpgw_gossip_udp *u, struct mcpgw_gossip_keyring *ring);

/* Where to encode the next datagram, and how long it may be (shorter than a datagram when the
 * envelope must fit around it). Valid until the next send. */
uint8_t *mcpgw_gossip_udp_buf(struct mcpgw_gossip_udp *u, size_t *cap);
/* Send the len bytes encoded in the buffer to `to`, sealed when there is a key ring. A failed
 * send is a lost datagram (logged at debug). */
void mcpgw_gossip_udp_send(struct mcpgw_gossip_udp *u, size_t len,
                           const struct sockaddr_storage *to, socklen_t tolen);

int mcpgw_gossip_udp_port(const struct mcpgw_gossip_udp *u);
/* The socket's own address (borrowed). */
const struct sockaddr_storage *mcpgw_gossip_udp_local(const struct mcpgw_gossip_udp *u);
/* Counters so far (borrowed, live). */
struct mcpgw_gossip_stats *mcpgw_gossip_udp_stats(struct mcpgw_gossip_udp *u);

/* Put the counters of s into a metrics registry as mcpgw_gossip_* series (labels: e.g.
 * node="n1" or NULL, copied). The one place those series are defined, for node and balancer. */
void mcpgw_gossip_udp_export_stats(const struct mcpgw_gossip_stats *s, struct mcpgw_metrics *m,
                                   const char *labels);

#endif
