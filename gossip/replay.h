/* replay.h - which authenticated gossip datagrams were already accepted: a sliding window of
 * envelope counters per sender process, and a bound on the age of a datagram. */
#ifndef MCPGW_GOSSIP_REPLAY_H
#define MCPGW_GOSSIP_REPLAY_H

#include <stdint.h>

#define MCPGW_GOSSIP_REPLAY_WINDOW 256 /* counters remembered behind the highest one per sender */

struct mcpgw_gossip_replay;

enum mcpgw_gossip_replay_verdict {
    MCPGW_GOSSIP_REPLAY_FRESH = 0, /* first time: accept (it is now remembered) */
    MCPGW_GOSSIP_REPLAY_DUPLICATE, /* this counter was accepted before */
    MCPGW_GOSSIP_REPLAY_BEHIND,    /* older than the window, or from an earlier generation */
    MCPGW_GOSSIP_REPLAY_STALE,     /* sent_ms is further than max_skew_ms from our clock */
    MCPGW_GOSSIP_REPLAY_VERDICT_COUNT
};
const char *mcpgw_gossip_replay_verdict_str(int v);

/* A table for at most max_senders sender ids (the member table's bound); max_skew_ms is how far
 * a datagram's sent_ms may be from our wall clock (0: no bound). Free with
 * mcpgw_gossip_replay_free. */
struct mcpgw_gossip_replay *mcpgw_gossip_replay_new(int max_senders, uint32_t max_skew_ms);
void mcpgw_gossip_replay_free(struct mcpgw_gossip_replay *r);

/* Judge an authenticated datagram from sender (its id and generation, from the decoded payload)
 * with the envelope's counter and sent_ms; now_ms is our wall clock. A FRESH datagram is
 * remembered. A sender restarted with a greater generation starts a new window (its counter
 * starts anew); a smaller generation is a past life: BEHIND. When the table is full, the sender
 * heard from least recently is forgotten (its next datagram is judged by age only). Only ever
 * called after authentication, so forged senders cost nothing here. sender is copied. */
int mcpgw_gossip_replay_check(struct mcpgw_gossip_replay *r, const char *sender,
                              uint64_t generation, uint64_t counter, uint64_t sent_ms,
                              uint64_t now_ms);
/* Senders remembered. */
int mcpgw_gossip_replay_count(const struct mcpgw_gossip_replay *r);

#endif
