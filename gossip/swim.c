/* swim.c - SWIM membership: probing, suspicion, dissemination and joins (the member table is
 * members.c, the socket udp.c). */
#include "gossip/swim.h"

#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "gossip/keyring.h"
#include "gossip/members.h"

#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RELAYS        64 /* PING_REQs we probe for others at one time */
#define MAX_SEED_ADDRS    64 /* resolved seed addresses kept */
#define JOIN_REPLY_BURST  20 /* JOIN answers (full tables) we send per second at most */
#define CONFLICT_EVERY_MS 1000
#define MAX_PICK          16 /* fanout and indirect_k limit (members.c caps picks so) */

/* A PING_REQ we serve: our PING to the target used seq; its ACK goes back as req_seq. */
struct relay {
    int used;
    uint32_t seq, req_seq;
    uint64_t expires_ms;
    struct sockaddr_storage sa;
    socklen_t salen;
};

struct mcpgw_gossip {
    struct event_base *base;
    struct mcpgw_gossip_config cfg; /* strings point into the copies below */
    char *node_id, *bind_addr, *advertise_addr, *http_addr;
    char **seeds;
    char *keyring_path; /* NULL: unauthenticated (version 1) */
    struct mcpgw_gossip_udp *udp;
    struct event *tick_ev, *probe_ev;

    struct mcpgw_gossip_members t; /* t.m[0] is this process */

    struct mcpgw_gossip_member *probe_target; /* current period's probe */
    uint32_t probe_seq;
    int probe_active, probe_acked;

    struct relay relays[MAX_RELAYS];
    struct sockaddr_storage seed_sa[MAX_SEED_ADDRS];
    socklen_t seed_salen[MAX_SEED_ADDRS];
    int nseed_sa;

    uint32_t seq;
    unsigned pkt_mark;
    uint64_t next_join_ms, next_sync_ms, last_meta_ms, last_pull_ms, last_conflict_ms;
    uint64_t last_warn_ms, tokens_ms;
    int join_tokens;
    uint32_t want_sessions;
    int meta_dirty, started, leaving;
};

/* ---- small helpers ---- */

static struct mcpgw_gossip_member *self_of(const struct mcpgw_gossip *g)
{
    return g->t.m[0];
}

/* Each update is piggybacked lambda * ceil(log2(N+1)) times: enough for an epidemic to reach
 * every member with high probability (SWIM section 4.1). */
static int tx_limit(const struct mcpgw_gossip *g)
{
    int l = 1;
    while ((1 << l) < g->t.n + 1 && l < 30)
        l++;
    return g->cfg.retransmit_mult * l;
}

static void notify(struct mcpgw_gossip *g, struct mcpgw_gossip_member *m,
                   enum mcpgw_member_state old)
{
    if (g->cfg.on_change)
        g->cfg.on_change(g->cfg.arg, &m->pub, old);
}

static void warn_limited(struct mcpgw_gossip *g, const char *what, const char *id)
{
    uint64_t now = mcpgw_now_ms();
    if (now - g->last_warn_ms < 10000)
        return;
    g->last_warn_ms = now;
    log_warn("gossip: %s (member %s)", what, id);
}

/* ---- sending ---- */

static void send_raw(struct mcpgw_gossip *g, size_t len, const struct sockaddr_storage *to,
                     socklen_t tolen)
{
    mcpgw_gossip_udp_send(g->udp, len, to, tolen);
}

static int begin(struct mcpgw_gossip *g, struct mcpgw_gossip_writer *w, int type, uint32_t seq,
                 const char *target, const struct mcpgw_gossip_addr *target_addr)
{
    struct mcpgw_gossip_hdr h;
    struct mcpgw_gossip_member *self = self_of(g);
    size_t cap;
    uint8_t *buf = mcpgw_gossip_udp_buf(g->udp, &cap);

    memset(&h, 0, sizeof(h));
    h.type = (uint8_t)type;
    h.seq = seq;
    h.sender_generation = self->pub.generation;
    h.sender_incarnation = self->pub.incarnation;
    memcpy(h.sender, self->id, sizeof(h.sender));
    if (target)
        snprintf(h.target, sizeof(h.target), "%s", target);
    if (target_addr)
        h.target_addr = *target_addr;
    return mcpgw_gossip_wire_begin(w, buf, cap, &h);
}

static int add_record(struct mcpgw_gossip *g, struct mcpgw_gossip_writer *w,
                      struct mcpgw_gossip_member *m)
{
    struct mcpgw_gossip_update u;
    int rc;

    if (m->pkt_mark == g->pkt_mark)
        return 0;
    mcpgw_gossip_members_to_update(m, &u);
    if ((rc = mcpgw_gossip_wire_add(w, &u)) == 0) {
        m->pkt_mark = g->pkt_mark;
        if (m->tx_left > 0)
            m->tx_left--;
    }
    return rc;
}

static int by_tx_left(const void *a, const void *b)
{
    const struct mcpgw_gossip_member *x = *(struct mcpgw_gossip_member *const *)a,
                                     *y = *(struct mcpgw_gossip_member *const *)b;
    return y->tx_left - x->tx_left;
}

/* Fill the rest of a datagram: first (if any), then the recipient's own record when we hold it
 * suspect or dead (so it can refute at once), then pending updates, freshest first, while
 * they fit. */
static void piggyback(struct mcpgw_gossip *g, struct mcpgw_gossip_writer *w,
                      struct mcpgw_gossip_member *dest, struct mcpgw_gossip_member *first)
{
    int n = 0;

    g->pkt_mark++;
    if (first)
        add_record(g, w, first);
    if (dest && (dest->pub.state == MCPGW_MEMBER_SUSPECT || dest->pub.state == MCPGW_MEMBER_DEAD))
        add_record(g, w, dest);
    for (int i = 0; i < g->t.n; i++)
        if (g->t.m[i]->tx_left > 0 && g->t.m[i]->pkt_mark != g->pkt_mark)
            g->t.scratch[n++] = g->t.m[i];
    qsort(g->t.scratch, (size_t)n, sizeof(g->t.scratch[0]), by_tx_left);
    for (int i = 0; i < n; i++)
        if (add_record(g, w, g->t.scratch[i]) == MCPGW_GOSSIP_WIRE_NOSPACE)
            break;
}

static void send_msg(struct mcpgw_gossip *g, int type, uint32_t seq, const char *target,
                     const struct mcpgw_gossip_addr *target_addr, const struct sockaddr_storage *to,
                     socklen_t tolen, struct mcpgw_gossip_member *dest,
                     struct mcpgw_gossip_member *first)
{
    struct mcpgw_gossip_writer w;
    if (begin(g, &w, type, seq, target, target_addr))
        return;
    piggyback(g, &w, dest, first);
    send_raw(g, w.len, to, tolen);
}

static void send_gossip(struct mcpgw_gossip *g, struct mcpgw_gossip_member *about,
                        struct mcpgw_gossip_member *dest)
{
    send_msg(g, MCPGW_GOSSIP_GOSSIP, 0, NULL, NULL, &dest->sa, dest->salen, dest, about);
}

/* Our whole table, this member first, in as many datagrams as needed: the first of type
 * first_type (JOIN asks for the peer's table back), the rest SYNC. Does not count as
 * piggybacking. */
static void send_table(struct mcpgw_gossip *g, int first_type, const struct sockaddr_storage *to,
                       socklen_t tolen)
{
    struct mcpgw_gossip_writer w;
    struct mcpgw_gossip_update u;
    int type = first_type, i = 0;

    while (i < g->t.n) {
        if (begin(g, &w, type, ++g->seq, NULL, NULL))
            return;
        for (; i < g->t.n; i++) {
            mcpgw_gossip_members_to_update(g->t.m[i], &u);
            if (mcpgw_gossip_wire_add(&w, &u))
                break;
        }
        if (w.count == 0) {
            i++; /* cannot happen: a record is at most 231 bytes */
            continue;
        }
        send_raw(g, w.len, to, tolen);
        type = MCPGW_GOSSIP_SYNC;
    }
}

/* Urgent news about a member: tell fanout random members now instead of waiting for the
 * piggyback. Every member forwards a record once, when it is news to it, so this floods the
 * cluster in a few hops with about N*fanout datagrams. A member we suspect or declare dead is
 * told too, so that it refutes at once if it is in fact alive. */
static void broadcast(struct mcpgw_gossip *g, struct mcpgw_gossip_member *about)
{
    struct mcpgw_gossip_member *to[MAX_PICK];
    int k = mcpgw_gossip_members_pick(&g->t, to, g->cfg.fanout, about);
    for (int i = 0; i < k; i++)
        send_gossip(g, about, to[i]);
    if (about != self_of(g) &&
        (about->pub.state == MCPGW_MEMBER_SUSPECT || about->pub.state == MCPGW_MEMBER_DEAD))
        send_gossip(g, about, about);
}

/* ---- the member table ---- */

static void on_suspicion_timeout(evutil_socket_t fd, short what, void *arg);

static struct mcpgw_gossip_member *member_new(struct mcpgw_gossip *g,
                                              const struct mcpgw_gossip_update *u)
{
    struct mcpgw_gossip_member *m = mcpgw_gossip_members_add(&g->t, u);
    m->owner = g;
    m->timer = evtimer_new(g->base, on_suspicion_timeout, m);
    return m;
}

static void member_remove(struct mcpgw_gossip *g, int i)
{
    struct mcpgw_gossip_member *m = g->t.m[i];

    if (g->probe_target == m) {
        g->probe_target = NULL;
        g->probe_active = 0;
    }
    event_free(m->timer);
    mcpgw_gossip_members_remove(&g->t, i);
}

static void start_suspicion(struct mcpgw_gossip *g, struct mcpgw_gossip_member *m)
{
    struct timeval tv = {g->cfg.suspicion_ms / 1000, (g->cfg.suspicion_ms % 1000) * 1000};
    evtimer_add(m->timer, &tv);
}

/* Move a remote member to a new state at its current (generation, incarnation), as our own
 * conclusion (probe failed, suspicion expired): queue, broadcast, report. */
static void declare(struct mcpgw_gossip *g, struct mcpgw_gossip_member *m,
                    enum mcpgw_member_state state)
{
    enum mcpgw_member_state old = m->pub.state;

    m->pub.state = state;
    m->since_ms = mcpgw_now_ms();
    m->tx_left = tx_limit(g);
    if (state == MCPGW_MEMBER_SUSPECT)
        start_suspicion(g, m);
    else
        evtimer_del(m->timer);
    log_info("gossip: member %s %s -> %s (incarnation %u)", m->id, mcpgw_member_state_str(old),
             mcpgw_member_state_str(state), m->pub.incarnation);
    broadcast(g, m);
    notify(g, m, old);
}

static void on_suspicion_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_gossip_member *m = arg;
    if (m->pub.state == MCPGW_MEMBER_SUSPECT)
        declare(m->owner, m, MCPGW_MEMBER_DEAD);
}

/* Publish a new incarnation of our own record (refutation, metadata, state change). */
static void self_bump(struct mcpgw_gossip *g, uint32_t at_least, int urgent)
{
    struct mcpgw_gossip_member *self = self_of(g);
    self->pub.incarnation = at_least > self->pub.incarnation ? at_least : self->pub.incarnation + 1;
    self->tx_left = tx_limit(g);
    if (urgent)
        broadcast(g, self);
}

/* A record about ourselves: refute suspicion or death with a higher incarnation. */
static void about_self(struct mcpgw_gossip *g, const struct mcpgw_gossip_update *u)
{
    struct mcpgw_gossip_member *self = self_of(g);
    uint64_t now;

    if (u->generation > self->pub.generation) {
        /* Someone runs with our id and a later start, or our clock went back since our last
         * life: take a later generation so that our record wins (rate-limited, since two
         * processes with one id would otherwise outbid each other without pause). */
        now = mcpgw_now_ms();
        warn_limited(g, "a record with our id and a later generation: is the id used twice?",
                     u->id);
        if (now - g->last_conflict_ms < CONFLICT_EVERY_MS)
            return;
        g->last_conflict_ms = now;
        self->pub.generation = u->generation + 1;
        self->pub.incarnation = 0;
        self->tx_left = tx_limit(g);
        broadcast(g, self);
        return;
    }
    if (u->generation < self->pub.generation) {
        /* news of our previous life still travels: make sure the current one does too */
        if (self->tx_left == 0)
            self->tx_left = tx_limit(g);
        return;
    }
    if (u->incarnation < self->pub.incarnation ||
        (u->incarnation == self->pub.incarnation && u->state == self->pub.state))
        return;
    log_info("gossip: refuting '%s' about us at incarnation %u", mcpgw_member_state_str(u->state),
             u->incarnation);
    self_bump(g, u->incarnation + 1, 1);
}

/* Merge one record. push: it comes from a table (JOIN/SYNC) sent by sender. */
static void apply(struct mcpgw_gossip *g, const struct mcpgw_gossip_update *u, int push,
                  const char *sender)
{
    struct mcpgw_gossip_member *m;
    enum mcpgw_member_state old, state = (enum mcpgw_member_state)u->state;
    int meta, restarted;

    if (strcmp(u->id, self_of(g)->id) == 0) {
        about_self(g, u);
        return;
    }
    m = mcpgw_gossip_members_find(&g->t, u->id);
    if (!m) {
        /* news of the death or departure of a stranger is of no use */
        if (state == MCPGW_MEMBER_DEAD || state == MCPGW_MEMBER_LEFT)
            return;
        if (g->t.n >= g->cfg.max_members) {
            warn_limited(g, "member table full (max_members): ignoring a new member", u->id);
            return;
        }
        m = member_new(g, u);
        m->tx_left = tx_limit(g);
        if (state == MCPGW_MEMBER_SUSPECT)
            start_suspicion(g, m);
        mcpgw_gossip_members_probe_insert(&g->t, m);
        log_info("gossip: member %s joined as %s at %s (generation %llu)", m->id,
                 mcpgw_member_state_str(state), m->gaddr, (unsigned long long)u->generation);
        /* a joiner learning the table from a peer has nothing new to tell the others */
        if (!push || strcmp(u->id, sender) == 0)
            broadcast(g, m);
        notify(g, m, MCPGW_MEMBER_STATE_COUNT);
        return;
    }
    /* A table pushed at join/sync may be a stale view from the far side of a partition: its
     * deaths only make us suspect, so that a live member gets its chance to refute. */
    if (push && state == MCPGW_MEMBER_DEAD)
        state = MCPGW_MEMBER_SUSPECT;
    if (!mcpgw_gossip_members_newer(u->generation, u->incarnation, state, m))
        return;
    old = m->pub.state;
    restarted = m->pub.generation != u->generation;
    meta = restarted || m->pub.sessions != u->sessions || m->flags != u->flags ||
           strcmp(m->http, u->http_addr) != 0 || !mcpgw_gossip_addr_equal(&m->addr, &u->addr);
    if (state == MCPGW_MEMBER_SUSPECT &&
        (old != MCPGW_MEMBER_SUSPECT || u->incarnation != m->pub.incarnation ||
         u->generation != m->pub.generation))
        start_suspicion(g, m); /* a new suspicion, restarted at a new incarnation */
    else if (state != MCPGW_MEMBER_SUSPECT)
        evtimer_del(m->timer);
    m->pub.state = state;
    m->pub.generation = u->generation;
    m->pub.incarnation = u->incarnation;
    m->pub.sessions = u->sessions;
    memcpy(m->http, u->http_addr, sizeof(m->http));
    mcpgw_gossip_members_set_flags(m, u->flags);
    mcpgw_gossip_members_set_addr(m, &u->addr);
    m->tx_left = tx_limit(g);
    if (state != old) {
        m->since_ms = mcpgw_now_ms();
        if (mcpgw_gossip_members_probeable(m))
            mcpgw_gossip_members_probe_insert(&g->t, m);
    }
    if (state != old || restarted) {
        log_info("gossip: member %s %s -> %s (generation %llu incarnation %u)", m->id,
                 mcpgw_member_state_str(old), mcpgw_member_state_str(state),
                 (unsigned long long)u->generation, u->incarnation);
        broadcast(g, m);
    }
    if (state != old || meta)
        notify(g, m, old);
}

/* ---- probing ---- */

static void start_probe(struct mcpgw_gossip *g)
{
    struct mcpgw_gossip_member *m = mcpgw_gossip_members_probe_next(&g->t);
    struct timeval tv = {g->cfg.probe_timeout_ms / 1000, (g->cfg.probe_timeout_ms % 1000) * 1000};

    if (!m)
        return;
    g->probe_target = m;
    g->probe_seq = ++g->seq;
    g->probe_active = 1;
    g->probe_acked = 0;
    send_msg(g, MCPGW_GOSSIP_PING, g->probe_seq, m->id, NULL, &m->sa, m->salen, m, NULL);
    evtimer_add(g->probe_ev, &tv);
}

/* No direct ack in time: ask k others to probe the target, and try directly once more (a
 * lost datagram should not cost a suspicion when there are few helpers). */
static void on_probe_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_gossip *g = arg;
    struct mcpgw_gossip_member *t = g->probe_target, *helpers[MAX_PICK];
    int k;

    if (!g->probe_active || g->probe_acked || !t)
        return;
    k = mcpgw_gossip_members_pick(&g->t, helpers, g->cfg.indirect_k, t);
    for (int i = 0; i < k; i++)
        send_msg(g, MCPGW_GOSSIP_PING_REQ, g->probe_seq, t->id, &t->addr, &helpers[i]->sa,
                 helpers[i]->salen, helpers[i], NULL);
    send_msg(g, MCPGW_GOSSIP_PING, g->probe_seq, t->id, NULL, &t->sa, t->salen, t, NULL);
}

static void relay_start(struct mcpgw_gossip *g, const struct mcpgw_gossip_hdr *h,
                        const struct sockaddr_storage *src, socklen_t srclen)
{
    uint64_t now = mcpgw_now_ms();
    struct sockaddr_storage to;
    socklen_t tolen;
    struct relay *r = NULL;

    for (int i = 0; i < MAX_RELAYS && !r; i++)
        if (!g->relays[i].used || g->relays[i].expires_ms <= now)
            r = &g->relays[i];
    if (!r)
        return; /* bounded: the requester has other helpers */
    r->used = 1;
    r->seq = ++g->seq;
    r->req_seq = h->seq;
    r->expires_ms = now + g->cfg.period_ms;
    r->sa = *src;
    r->salen = srclen;
    tolen = mcpgw_gossip_addr_to_sockaddr(&h->target_addr, &to);
    send_msg(g, MCPGW_GOSSIP_PING, r->seq, h->target, NULL, &to, tolen,
             mcpgw_gossip_members_find(&g->t, h->target), NULL);
}

static void on_ack(struct mcpgw_gossip *g, const struct mcpgw_gossip_hdr *h)
{
    if (g->probe_active && h->seq == g->probe_seq) {
        g->probe_acked = 1;
        if (g->probe_target)
            g->probe_target->pub.heard_ms = mcpgw_now_ms();
        return;
    }
    for (int i = 0; i < MAX_RELAYS; i++) {
        struct relay *r = &g->relays[i];
        if (r->used && r->seq == h->seq) {
            r->used = 0;
            send_msg(g, MCPGW_GOSSIP_ACK, r->req_seq, NULL, NULL, &r->sa, r->salen, NULL, NULL);
            return;
        }
    }
}

/* ---- joining and anti-entropy ---- */

static int same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    struct mcpgw_gossip_addr x, y;
    return mcpgw_gossip_addr_from_sockaddr(&x, (const struct sockaddr *)a) == 0 &&
           mcpgw_gossip_addr_from_sockaddr(&y, (const struct sockaddr *)b) == 0 &&
           mcpgw_gossip_addr_equal(&x, &y);
}

/* Resolve every seed (names may have changed since last time, e.g. a headless service),
 * leaving out our own address. getaddrinfo blocks: seeds should be literals or names the
 * local resolver answers at once. */
static void resolve_seeds(struct mcpgw_gossip *g)
{
    const struct sockaddr_storage *local = mcpgw_gossip_udp_local(g->udp);
    int family = local->ss_family;

    g->nseed_sa = 0;
    for (int i = 0; i < g->cfg.nseeds && g->nseed_sa < MAX_SEED_ADDRS; i++) {
        char host[256], port[8], err[160];
        struct addrinfo hints, *res = NULL;
        int p;

        if (mcpgw_parse_hostport(g->seeds[i], host, sizeof(host), &p, err, sizeof(err)) < 0)
            continue;
        snprintf(port, sizeof(port), "%d", p);
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = family;
        hints.ai_socktype = SOCK_DGRAM;
        hints.ai_flags = AI_NUMERICSERV;
        if (getaddrinfo(host, port, &hints, &res) != 0) {
            log_debug("gossip: cannot resolve seed %s", g->seeds[i]);
            continue;
        }
        for (struct addrinfo *ai = res; ai && g->nseed_sa < MAX_SEED_ADDRS; ai = ai->ai_next) {
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof(ss));
            memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            if (same_sockaddr(&ss, &self_of(g)->sa) || same_sockaddr(&ss, local))
                continue;
            g->seed_sa[g->nseed_sa] = ss;
            g->seed_salen[g->nseed_sa++] = ai->ai_addrlen;
        }
        freeaddrinfo(res);
    }
}

/* While alone, push our table to every seed each join_retry_ms, so a restarted or isolated
 * member (re)joins as soon as a seed answers. Otherwise, every sync_ms, a full push-pull with
 * one peer: a member we hold dead (heals partitions), a seed (heals partitions that outlived
 * reaping), or a live member (repairs missed updates). */
static void join_or_sync(struct mcpgw_gossip *g, uint64_t now)
{
    int alone = 1, ndead = 0, pick;
    struct mcpgw_gossip_member *m;

    if (g->leaving)
        return;

    for (int i = 1; i < g->t.n; i++) {
        if (mcpgw_gossip_members_probeable(g->t.m[i]))
            alone = 0;
        else if (g->t.m[i]->pub.state == MCPGW_MEMBER_DEAD)
            g->t.scratch[ndead++] = g->t.m[i];
    }
    if (alone) {
        if (now < g->next_join_ms)
            return;
        g->next_join_ms = now + g->cfg.join_retry_ms;
        resolve_seeds(g);
        for (int i = 0; i < g->nseed_sa; i++)
            send_table(g, MCPGW_GOSSIP_JOIN, &g->seed_sa[i], g->seed_salen[i]);
        for (int i = 0; i < ndead; i++) /* seedless clusters heal through old members */
            send_table(g, MCPGW_GOSSIP_JOIN, &g->t.scratch[i]->sa, g->t.scratch[i]->salen);
        return;
    }
    if (now < g->next_sync_ms)
        return;
    /* jitter 75-125% so that members do not sync in lockstep */
    g->next_sync_ms = now + g->cfg.sync_ms * 3 / 4 +
                      (uint64_t)mcpgw_gossip_members_rand_below(&g->t, (int)g->cfg.sync_ms / 2 + 1);
    pick = mcpgw_gossip_members_rand_below(&g->t, 4);
    if (pick < 2 && ndead > 0) {
        m = g->t.scratch[mcpgw_gossip_members_rand_below(&g->t, ndead)];
        send_table(g, MCPGW_GOSSIP_JOIN, &m->sa, m->salen);
        return;
    }
    if (pick < 3 && g->cfg.nseeds > 0) {
        resolve_seeds(g);
        if (g->nseed_sa > 0) {
            int i = mcpgw_gossip_members_rand_below(&g->t, g->nseed_sa);
            send_table(g, MCPGW_GOSSIP_JOIN, &g->seed_sa[i], g->seed_salen[i]);
            return;
        }
    }
    if (mcpgw_gossip_members_pick(&g->t, &m, 1, NULL) == 1)
        send_table(g, MCPGW_GOSSIP_JOIN, &m->sa, m->salen);
}

static int take_join_token(struct mcpgw_gossip *g, uint64_t now)
{
    uint64_t add = (now - g->tokens_ms) * JOIN_REPLY_BURST / 1000;
    if (add > 0) {
        g->join_tokens = (int)(g->join_tokens + add > JOIN_REPLY_BURST ? JOIN_REPLY_BURST
                                                                       : g->join_tokens + add);
        g->tokens_ms = now;
    }
    if (g->join_tokens <= 0)
        return 0;
    g->join_tokens--;
    return 1;
}

/* ---- receiving ---- */

static void handle(struct mcpgw_gossip *g, const struct mcpgw_gossip_msg *msg,
                   const struct sockaddr_storage *src, socklen_t srclen)
{
    const struct mcpgw_gossip_hdr *h = &msg->hdr;
    struct mcpgw_gossip_member *self = self_of(g), *s;
    int push = h->type == MCPGW_GOSSIP_JOIN || h->type == MCPGW_GOSSIP_SYNC;
    uint64_t now = mcpgw_now_ms();

    if (strcmp(h->sender, self->id) == 0) {
        if (h->sender_generation != self->pub.generation)
            warn_limited(g, "a datagram from another process with our id", h->sender);
        return;
    }
    for (int i = 0; i < msg->nupdates; i++)
        apply(g, &msg->updates[i], push, h->sender);

    /* The sender is alive but we do not know it, or only a past incarnation of it that died:
     * we missed its current record. Ask for its table (rate-limited). */
    s = mcpgw_gossip_members_find(&g->t, h->sender);
    if (!push &&
        (!s || ((s->pub.state == MCPGW_MEMBER_DEAD || s->pub.state == MCPGW_MEMBER_LEFT) &&
                (h->sender_generation > s->pub.generation ||
                 (h->sender_generation == s->pub.generation &&
                  h->sender_incarnation > s->pub.incarnation)))) &&
        now - g->last_pull_ms >= g->cfg.period_ms) {
        g->last_pull_ms = now;
        send_table(g, MCPGW_GOSSIP_JOIN, src, srclen);
    }

    if (s && h->sender_generation == s->pub.generation)
        s->pub.heard_ms = now;

    switch (h->type) {
    case MCPGW_GOSSIP_PING:
        /* a PING for another id means the address changed hands: staying silent is right */
        if (strcmp(h->target, self->id) == 0)
            send_msg(g, MCPGW_GOSSIP_ACK, h->seq, NULL, NULL, src, srclen, s, NULL);
        break;
    case MCPGW_GOSSIP_ACK:
        on_ack(g, h);
        break;
    case MCPGW_GOSSIP_PING_REQ:
        relay_start(g, h, src, srclen);
        break;
    case MCPGW_GOSSIP_JOIN:
        if (take_join_token(g, now))
            send_table(g, MCPGW_GOSSIP_SYNC, src, srclen);
        break;
    default:
        break;
    }
}

/* A datagram of ours to dst met a closed port (ICMP port unreachable, read off the error queue
 * that IP_RECVERR keeps). A host that answers so has no socket on that port: the member that
 * lived there is gone (killed, crashed, exited without leaving). That is conclusive where a
 * missing ack is not, so it is dead at once instead of after a suspicion: the whole cluster
 * learns it a suspicion timeout earlier. A member alive at another address, or restarted with a
 * new generation at this one, is not affected: the address is looked up as the view has it now,
 * and a new generation revives a dead record. */
static void on_port_unreachable(void *arg, const struct mcpgw_gossip_addr *a)
{
    struct mcpgw_gossip *g = arg;

    for (int i = 1; i < g->t.n; i++) {
        struct mcpgw_gossip_member *m = g->t.m[i];
        if (!mcpgw_gossip_members_probeable(m) || !mcpgw_gossip_addr_equal(&m->addr, a))
            continue;
        log_info("gossip: member %s: port %s unreachable, nothing listens there any more", m->id,
                 m->gaddr);
        declare(g, m, MCPGW_MEMBER_DEAD);
        return;
    }
}

/* A datagram that passed the socket's checks (udp.c): authentic when we hold keys. */
static void on_datagram(void *arg, const struct mcpgw_gossip_msg *msg,
                        const struct sockaddr_storage *src, socklen_t srclen)
{
    handle(arg, msg, src, srclen);
}

/* ---- periodic work ---- */

static void publish_meta(struct mcpgw_gossip *g, uint64_t now)
{
    if (!g->meta_dirty || g->leaving || now - g->last_meta_ms < g->cfg.meta_interval_ms)
        return;
    g->meta_dirty = 0;
    g->last_meta_ms = now;
    if (self_of(g)->pub.sessions == g->want_sessions)
        return;
    self_of(g)->pub.sessions = g->want_sessions;
    self_bump(g, 0, 0);
}

static void reap(struct mcpgw_gossip *g, uint64_t now)
{
    for (int i = g->t.n - 1; i > 0; i--) {
        struct mcpgw_gossip_member *m = g->t.m[i];
        if ((m->pub.state == MCPGW_MEMBER_DEAD || m->pub.state == MCPGW_MEMBER_LEFT) &&
            now - m->since_ms >= g->cfg.reap_ms) {
            log_info("gossip: forgetting %s member %s", mcpgw_member_state_str(m->pub.state),
                     m->id);
            member_remove(g, i);
        }
    }
}

/* One protocol period: conclude the last probe, start the next one, then housekeeping. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_gossip *g = arg;
    uint64_t now = mcpgw_now_ms();
    struct mcpgw_gossip_member *t = g->probe_target;

    if (g->probe_active && !g->probe_acked && t &&
        (t->pub.state == MCPGW_MEMBER_ALIVE || t->pub.state == MCPGW_MEMBER_DRAINING)) {
        log_info("gossip: no ack from %s in one period (direct and %d indirect probes)", t->id,
                 g->cfg.indirect_k);
        declare(g, t, MCPGW_MEMBER_SUSPECT);
    }
    g->probe_active = 0;
    g->probe_target = NULL;
    if (!g->leaving)
        start_probe(g);
    join_or_sync(g, now);
    publish_meta(g, now);
    reap(g, now);
}

/* ---- lifecycle ---- */

void mcpgw_gossip_config_defaults(struct mcpgw_gossip_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->serving = 1;
    cfg->period_ms = 150;
    cfg->probe_timeout_ms = 60;
    cfg->indirect_k = 3;
    cfg->suspicion_ms = 800;
    cfg->fanout = 3;
    cfg->retransmit_mult = 3;
    cfg->join_retry_ms = 1000;
    cfg->sync_ms = 5000;
    cfg->reap_ms = 30000;
    cfg->meta_interval_ms = 500;
    cfg->max_members = 1024;
    cfg->max_clock_skew_ms = 30000;
}

static int check_str(const char *what, const char *s, size_t minlen, size_t maxlen, char *err,
                     size_t errlen)
{
    size_t n = s ? strlen(s) : 0;
    int ok = n >= minlen && n <= maxlen;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f;
    if (!ok)
        snprintf(err, errlen, "gossip %s must be %zu-%zu printable characters without spaces", what,
                 minlen, maxlen);
    return ok ? 0 : -1;
}

static int check_config(const struct mcpgw_gossip_config *c, char *err, size_t errlen)
{
    if (check_str("node id", c->node_id, 1, MCPGW_GOSSIP_MAX_ID, err, errlen) ||
        check_str("http address", c->http_addr ? c->http_addr : "", 0, MCPGW_GOSSIP_MAX_HTTP, err,
                  errlen))
        return -1;
    if (!c->bind_addr) {
        snprintf(err, errlen, "gossip needs a UDP bind address (host:port)");
        return -1;
    }
    if (c->period_ms < 10 || c->probe_timeout_ms == 0 || c->probe_timeout_ms >= c->period_ms) {
        snprintf(err, errlen,
                 "gossip period (%u ms) must be at least 10 ms and longer than the probe "
                 "timeout (%u ms), which must not be 0",
                 c->period_ms, c->probe_timeout_ms);
        return -1;
    }
    if (c->suspicion_ms < c->period_ms) {
        snprintf(err, errlen, "gossip suspicion timeout (%u ms) must be at least one period",
                 c->suspicion_ms);
        return -1;
    }
    if (c->indirect_k < 0 || c->indirect_k > 16 || c->fanout < 0 || c->fanout > 16 ||
        c->retransmit_mult < 1 || c->retransmit_mult > 16) {
        snprintf(err, errlen, "gossip indirect_k and fanout must be 0-16, retransmit_mult 1-16");
        return -1;
    }
    if (c->max_members < 2 || c->join_retry_ms == 0 || c->sync_ms == 0 || c->reap_ms == 0) {
        snprintf(err, errlen,
                 "gossip max_members must be at least 2 and the join, sync and "
                 "reap intervals more than 0");
        return -1;
    }
    if (c->nseeds < 0 || (c->nseeds > 0 && !c->seeds)) {
        snprintf(err, errlen, "gossip seed list is inconsistent (nseeds=%d)", c->nseeds);
        return -1;
    }
    for (int i = 0; i < c->nseeds; i++) {
        char host[256];
        int port;
        if (!c->seeds[i] ||
            mcpgw_parse_hostport(c->seeds[i], host, sizeof(host), &port, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Load the key ring at path into the socket layer. At start an empty ring is allowed (gossip
 * stays unauthenticated, with a warning); on a reload, a ring that would turn authentication
 * off is refused, since an emptied file is far likelier a mistake than a wish. */
static int load_keyring(struct mcpgw_gossip *g, const char *path, int reload, char *err,
                        size_t errlen)
{
    struct mcpgw_gossip_stats *st = mcpgw_gossip_udp_stats(g->udp);
    struct mcpgw_gossip_keyring *ring = mcpgw_gossip_keyring_load(path, err, errlen);
    int n = mcpgw_gossip_keyring_count(ring);

    if (ring && reload && n == 0 && st->keys > 0) {
        snprintf(err, errlen,
                 "the gossip key ring %s has no key: refusing to turn authentication off "
                 "(restart without --gossip-keyring to do that)",
                 path);
        mcpgw_gossip_keyring_free(ring);
        ring = NULL;
    }
    if (!ring) {
        if (reload)
            st->key_reload_failures++;
        return -1;
    }
    if (reload)
        st->key_reloads++;
    if (n == 0)
        log_warn("gossip: the key ring %s has no key: gossip is unauthenticated", path);
    else
        log_info("gossip: key ring %s: %d key%s, primary %08x", path, n, n == 1 ? "" : "s",
                 mcpgw_gossip_keyring_key_id(ring, 0));
    mcpgw_gossip_udp_set_keyring(g->udp, ring);
    return 0;
}

struct mcpgw_gossip *mcpgw_gossip_new(struct event_base *base,
                                      const struct mcpgw_gossip_config *cfg, char *err,
                                      size_t errlen)
{
    static uint64_t last_generation;
    struct mcpgw_gossip *g = NULL;
    struct mcpgw_gossip_udp_config uc;
    struct mcpgw_gossip_update u;
    uint64_t gen;

    if (check_config(cfg, err, errlen) < 0)
        goto fail;
    g = xcalloc(1, sizeof(*g));
    g->base = base;
    g->cfg = *cfg;
    g->node_id = xstrdup(cfg->node_id);
    g->bind_addr = xstrdup(cfg->bind_addr);
    g->advertise_addr = cfg->advertise_addr ? xstrdup(cfg->advertise_addr) : NULL;
    g->http_addr = xstrdup(cfg->http_addr ? cfg->http_addr : "");
    g->keyring_path = cfg->keyring_path ? xstrdup(cfg->keyring_path) : NULL;
    g->seeds = xcalloc((size_t)cfg->nseeds + 1, sizeof(char *));
    for (int i = 0; i < cfg->nseeds; i++)
        g->seeds[i] = xstrdup(cfg->seeds[i]);
    g->cfg.node_id = g->node_id;
    g->cfg.bind_addr = g->bind_addr;
    g->cfg.advertise_addr = g->advertise_addr;
    g->cfg.http_addr = g->http_addr;
    g->cfg.keyring_path = g->keyring_path;
    g->cfg.seeds = (const char *const *)g->seeds;

    memset(&u, 0, sizeof(u));
    memset(&uc, 0, sizeof(uc));
    uc.bind_addr = g->bind_addr;
    uc.advertise_addr = g->advertise_addr;
    uc.max_senders = cfg->max_members;
    uc.max_clock_skew_ms = cfg->max_clock_skew_ms;
    uc.on_msg = on_datagram;
    uc.on_unreachable = on_port_unreachable;
    uc.arg = g;
    g->udp = mcpgw_gossip_udp_new(base, &uc, &u.addr, err, errlen);
    if (!g->udp)
        goto fail;
    if (!g->keyring_path)
        log_warn("gossip: no key ring: datagrams are neither authenticated nor encrypted, so "
                 "anyone who can reach %s can declare members dead (see --gossip-keyring)",
                 g->bind_addr);
    else if (load_keyring(g, g->keyring_path, 0, err, errlen) < 0)
        goto fail;
    /* The generation tells a restarted process from its predecessor, whose incarnation
     * counter it cannot know: the start time, kept increasing within this process. */
    gen = mcpgw_wall_ms();
    if (gen <= last_generation)
        gen = last_generation + 1;
    last_generation = gen;
    snprintf(u.id, sizeof(u.id), "%s", g->node_id);
    snprintf(u.http_addr, sizeof(u.http_addr), "%s", g->http_addr);
    u.state = MCPGW_MEMBER_ALIVE;
    u.flags = cfg->serving ? MCPGW_GOSSIP_F_SERVING : 0;
    u.generation = gen;
    mcpgw_gossip_members_init(&g->t, mcpgw_now_us() ^ ((uint64_t)getpid() << 32) ^
                                         mcpgw_hash64(u.id, strlen(u.id)) ^ gen);
    member_new(g, &u)->pub.is_self = 1;
    self_of(g)->tx_left = 0;
    g->seq = (uint32_t)mcpgw_gossip_members_rand(&g->t);
    g->join_tokens = JOIN_REPLY_BURST;
    g->tokens_ms = mcpgw_now_ms();
    g->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, g);
    g->probe_ev = evtimer_new(base, on_probe_timeout, g);
    if (!g->tick_ev || !g->probe_ev) {
        snprintf(err, errlen, "cannot create the gossip events");
        goto fail;
    }
    return g;
fail:
    mcpgw_gossip_free(g);
    return NULL;
}

int mcpgw_gossip_start(struct mcpgw_gossip *g)
{
    struct timeval tv = {g->cfg.period_ms / 1000, (g->cfg.period_ms % 1000) * 1000};

    if (g->started || mcpgw_gossip_udp_start(g->udp) < 0 || event_add(g->tick_ev, &tv) < 0)
        return -1;
    g->started = 1;
    g->next_join_ms = 0;
    g->next_sync_ms = mcpgw_now_ms() + g->cfg.sync_ms;
    join_or_sync(g, mcpgw_now_ms());
    return 0;
}

void mcpgw_gossip_free(struct mcpgw_gossip *g)
{
    if (!g)
        return;
    if (g->tick_ev)
        event_free(g->tick_ev);
    if (g->probe_ev)
        event_free(g->probe_ev);
    for (int i = 0; i < g->t.n; i++)
        event_free(g->t.m[i]->timer);
    mcpgw_gossip_members_deinit(&g->t);
    mcpgw_gossip_udp_free(g->udp);
    for (int i = 0; g->seeds && i < g->cfg.nseeds; i++)
        free(g->seeds[i]);
    free(g->seeds);
    free(g->node_id);
    free(g->bind_addr);
    free(g->advertise_addr);
    free(g->http_addr);
    free(g->keyring_path);
    free(g);
}

int mcpgw_gossip_reload_keyring(struct mcpgw_gossip *g, const char *path, char *err, size_t errlen)
{
    if (path && (!g->keyring_path || strcmp(path, g->keyring_path) != 0)) {
        free(g->keyring_path);
        g->keyring_path = xstrdup(path);
        g->cfg.keyring_path = g->keyring_path;
    }
    if (!g->keyring_path) {
        snprintf(err, errlen, "gossip runs without a key ring: nothing to reload");
        return -1;
    }
    return load_keyring(g, g->keyring_path, 1, err, errlen);
}

const struct mcpgw_gossip_stats *mcpgw_gossip_stats(const struct mcpgw_gossip *g)
{
    return mcpgw_gossip_udp_stats(g->udp);
}

/* ---- local state ---- */

void mcpgw_gossip_set_sessions(struct mcpgw_gossip *g, uint32_t n)
{
    g->want_sessions = n;
    g->meta_dirty = 1;
    publish_meta(g, mcpgw_now_ms());
}

void mcpgw_gossip_set_draining(struct mcpgw_gossip *g)
{
    struct mcpgw_gossip_member *self = self_of(g);
    if (g->leaving || self->pub.state == MCPGW_MEMBER_DRAINING)
        return;
    mcpgw_gossip_members_set_flags(self, self->flags | MCPGW_GOSSIP_F_DRAINING);
    self->pub.state = MCPGW_MEMBER_DRAINING;
    log_info("gossip: %s is draining", self->id);
    self_bump(g, 0, 1);
}

void mcpgw_gossip_leave(struct mcpgw_gossip *g)
{
    struct mcpgw_gossip_member *self = self_of(g);
    if (g->leaving)
        return;
    g->leaving = 1;
    g->probe_active = 0;
    g->probe_target = NULL;
    evtimer_del(g->probe_ev);
    self->pub.state = MCPGW_MEMBER_LEFT;
    log_info("gossip: %s is leaving", self->id);
    self_bump(g, 0, 0);
    /* everyone directly: we stop soon, and a leave must not look like a death */
    for (int i = 1; i < g->t.n; i++)
        if (mcpgw_gossip_members_probeable(g->t.m[i]))
            send_gossip(g, self, g->t.m[i]);
}

/* ---- the view ---- */

int mcpgw_gossip_member_count(const struct mcpgw_gossip *g)
{
    return g->t.n;
}

const struct mcpgw_member *mcpgw_gossip_member_get(const struct mcpgw_gossip *g, int i)
{
    return i >= 0 && i < g->t.n ? &g->t.m[i]->pub : NULL;
}

const struct mcpgw_member *mcpgw_gossip_member_find(const struct mcpgw_gossip *g, const char *id)
{
    struct mcpgw_gossip_member *m = mcpgw_gossip_members_find(&g->t, id);
    return m ? &m->pub : NULL;
}

const struct mcpgw_member *mcpgw_gossip_self(const struct mcpgw_gossip *g)
{
    return &self_of(g)->pub;
}

int mcpgw_gossip_port(const struct mcpgw_gossip *g)
{
    return mcpgw_gossip_udp_port(g->udp);
}
