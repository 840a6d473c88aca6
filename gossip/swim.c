/* swim.c - SWIM membership: probing, suspicion, dissemination and joins over one UDP socket. */
#include "gossip/swim.h"

#include "common/hash.h"
#include "common/log.h"
#include "common/rand.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <linux/errqueue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RELAYS        64 /* PING_REQs we probe for others at one time */
#define MAX_SEED_ADDRS    64 /* resolved seed addresses kept */
#define RX_BURST          64 /* datagrams read per wakeup before yielding to the loop */
#define JOIN_REPLY_BURST  20 /* JOIN answers (full tables) we send per second at most */
#define CONFLICT_EVERY_MS 1000
#define MAX_PICK          16 /* fanout and indirect_k limit */

struct member {
    struct mcpgw_member pub; /* the view hands out &m->pub */
    char id[MCPGW_GOSSIP_MAX_ID + 1];
    char http[MCPGW_GOSSIP_MAX_HTTP + 1];
    char gaddr[64];
    uint64_t id_hash;
    uint8_t flags; /* MCPGW_GOSSIP_F_* */
    struct mcpgw_gossip_addr addr;
    struct sockaddr_storage sa;
    socklen_t salen;
    int tx_left;         /* piggyback transmissions still owed */
    unsigned pkt_mark;   /* last datagram this record went into (no duplicates) */
    int in_probe;        /* present in g->probe */
    uint64_t since_ms;   /* when it entered its current state */
    struct event *timer; /* suspicion timeout, pending while SUSPECT */
    struct mcpgw_gossip *g;
};

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
    int fd;
    int port;
    struct event *read_ev, *tick_ev, *probe_ev;

    struct member **members; /* members[0] is this process */
    struct member **scratch; /* same capacity: random picks, piggyback ordering */
    struct member **probe;   /* shuffled probe order for the current round */
    int nmembers, cap, nprobe, probe_idx;

    struct member *probe_target; /* current period's probe */
    uint32_t probe_seq;
    int probe_active, probe_acked;

    struct relay relays[MAX_RELAYS];
    struct sockaddr_storage seed_sa[MAX_SEED_ADDRS];
    socklen_t seed_salen[MAX_SEED_ADDRS];
    int nseed_sa;

    uint32_t seq;
    uint64_t rng;
    unsigned pkt_mark;
    uint64_t next_join_ms, next_sync_ms, last_meta_ms, last_pull_ms, last_conflict_ms;
    uint64_t last_warn_ms, tokens_ms;
    int join_tokens;
    uint32_t want_sessions;
    int meta_dirty, started, leaving;

    struct mcpgw_gossip_msg rx;                 /* decode scratch */
    uint8_t rxbuf[MCPGW_GOSSIP_MAX_PACKET + 1]; /* +1: spot oversize datagrams */
    uint8_t txbuf[MCPGW_GOSSIP_MAX_PACKET];
};

/* ---- small helpers ---- */

/* Probe order and fan-out picks need spread, not secrecy. */
static uint64_t rnd(struct mcpgw_gossip *g)
{
    return mcpgw_rand_next(&g->rng);
}

static int rnd_below(struct mcpgw_gossip *g, int n)
{
    return n > 0 ? (int)(rnd(g) % (uint64_t)n) : 0;
}

static struct member *self_of(const struct mcpgw_gossip *g)
{
    return g->members[0];
}

static int probeable(const struct member *m)
{
    return m->pub.state == MCPGW_MEMBER_ALIVE || m->pub.state == MCPGW_MEMBER_SUSPECT ||
           m->pub.state == MCPGW_MEMBER_DRAINING;
}

/* Each update is piggybacked lambda * ceil(log2(N+1)) times: enough for an epidemic to reach
 * every member with high probability (SWIM section 4.1). */
static int tx_limit(const struct mcpgw_gossip *g)
{
    int l = 1;
    while ((1 << l) < g->nmembers + 1 && l < 30)
        l++;
    return g->cfg.retransmit_mult * l;
}

/* Order of records about one member: (generation, incarnation, state precedence). At equal
 * incarnation suspect beats alive, dead beats suspect, and the member's own leave beats all. */
static int precedence(int state)
{
    static const int p[MCPGW_MEMBER_STATE_COUNT] = {[MCPGW_MEMBER_ALIVE] = 0,
                                                    [MCPGW_MEMBER_DRAINING] = 1,
                                                    [MCPGW_MEMBER_SUSPECT] = 2,
                                                    [MCPGW_MEMBER_DEAD] = 3,
                                                    [MCPGW_MEMBER_LEFT] = 4};
    return p[state];
}

static int newer(uint64_t gen, uint32_t inc, int state, const struct member *m)
{
    if (gen != m->pub.generation)
        return gen > m->pub.generation;
    if (inc != m->pub.incarnation)
        return inc > m->pub.incarnation;
    return precedence(state) > precedence(m->pub.state);
}

static void notify(struct mcpgw_gossip *g, struct member *m, enum mcpgw_member_state old)
{
    if (g->cfg.on_change)
        g->cfg.on_change(g->cfg.arg, &m->pub, old);
}

static void set_addr(struct member *m, const struct mcpgw_gossip_addr *a)
{
    m->addr = *a;
    m->salen = mcpgw_gossip_addr_to_sockaddr(a, &m->sa);
    mcpgw_gossip_addr_format(a, m->gaddr, sizeof(m->gaddr));
}

static void set_flags(struct member *m, uint8_t flags)
{
    m->flags = flags;
    m->pub.serving = !!(flags & MCPGW_GOSSIP_F_SERVING);
    m->pub.draining = !!(flags & MCPGW_GOSSIP_F_DRAINING);
}

static void to_update(const struct member *m, struct mcpgw_gossip_update *u)
{
    memcpy(u->id, m->id, sizeof(u->id));
    memcpy(u->http_addr, m->http, sizeof(u->http_addr));
    u->state = (uint8_t)m->pub.state;
    u->flags = m->flags;
    u->generation = m->pub.generation;
    u->incarnation = m->pub.incarnation;
    u->sessions = m->pub.sessions;
    u->addr = m->addr;
}

static struct member *find(const struct mcpgw_gossip *g, const char *id)
{
    uint64_t h = mcpgw_hash64(id, strlen(id));
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->id_hash == h && strcmp(g->members[i]->id, id) == 0)
            return g->members[i];
    return NULL;
}

static void warn_limited(struct mcpgw_gossip *g, const char *what, const char *id)
{
    uint64_t now = mcpgw_now_ms();
    if (now - g->last_warn_ms < 10000)
        return;
    g->last_warn_ms = now;
    log_warn("gossip: %s (member %s)", what, id);
}

/* Pick up to k (<= MAX_PICK) distinct members at random into out; returns how many.
 * Candidates are probeable remote members other than skip. */
static int pick_random(struct mcpgw_gossip *g, struct member **out, int k,
                       const struct member *skip)
{
    int n = 0;
    for (int i = 1; i < g->nmembers; i++)
        if (g->members[i] != skip && probeable(g->members[i]))
            g->scratch[n++] = g->members[i];
    if (k > MAX_PICK)
        k = MAX_PICK;
    if (k > n)
        k = n;
    for (int i = 0; i < k; i++) {
        int j = i + rnd_below(g, n - i);
        struct member *t = g->scratch[i];
        g->scratch[i] = g->scratch[j];
        g->scratch[j] = t;
        out[i] = g->scratch[i];
    }
    return k;
}

/* ---- sending ---- */

static void send_raw(struct mcpgw_gossip *g, size_t len, const struct sockaddr_storage *to,
                     socklen_t tolen)
{
    if (sendto(g->fd, g->txbuf, len, 0, (const struct sockaddr *)to, tolen) < 0)
        log_debug("gossip: sendto failed: %s", strerror(errno));
}

static int begin(struct mcpgw_gossip *g, struct mcpgw_gossip_writer *w, int type, uint32_t seq,
                 const char *target, const struct mcpgw_gossip_addr *target_addr)
{
    struct mcpgw_gossip_hdr h;
    struct member *self = self_of(g);

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
    return mcpgw_gossip_wire_begin(w, g->txbuf, sizeof(g->txbuf), &h);
}

static int add_record(struct mcpgw_gossip *g, struct mcpgw_gossip_writer *w, struct member *m)
{
    struct mcpgw_gossip_update u;
    int rc;

    if (m->pkt_mark == g->pkt_mark)
        return 0;
    to_update(m, &u);
    if ((rc = mcpgw_gossip_wire_add(w, &u)) == 0) {
        m->pkt_mark = g->pkt_mark;
        if (m->tx_left > 0)
            m->tx_left--;
    }
    return rc;
}

static int by_tx_left(const void *a, const void *b)
{
    const struct member *x = *(struct member *const *)a, *y = *(struct member *const *)b;
    return y->tx_left - x->tx_left;
}

/* Fill the rest of a datagram: first (if any), then the recipient's own record when we hold it
 * suspect or dead (so it can refute at once), then pending updates, freshest first, while
 * they fit. */
static void piggyback(struct mcpgw_gossip *g, struct mcpgw_gossip_writer *w, struct member *dest,
                      struct member *first)
{
    int n = 0;

    g->pkt_mark++;
    if (first)
        add_record(g, w, first);
    if (dest && (dest->pub.state == MCPGW_MEMBER_SUSPECT || dest->pub.state == MCPGW_MEMBER_DEAD))
        add_record(g, w, dest);
    for (int i = 0; i < g->nmembers; i++)
        if (g->members[i]->tx_left > 0 && g->members[i]->pkt_mark != g->pkt_mark)
            g->scratch[n++] = g->members[i];
    qsort(g->scratch, (size_t)n, sizeof(g->scratch[0]), by_tx_left);
    for (int i = 0; i < n; i++)
        if (add_record(g, w, g->scratch[i]) == MCPGW_GOSSIP_WIRE_NOSPACE)
            break;
}

static void send_msg(struct mcpgw_gossip *g, int type, uint32_t seq, const char *target,
                     const struct mcpgw_gossip_addr *target_addr, const struct sockaddr_storage *to,
                     socklen_t tolen, struct member *dest, struct member *first)
{
    struct mcpgw_gossip_writer w;
    if (begin(g, &w, type, seq, target, target_addr))
        return;
    piggyback(g, &w, dest, first);
    send_raw(g, w.len, to, tolen);
}

static void send_gossip(struct mcpgw_gossip *g, struct member *about, struct member *dest)
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

    while (i < g->nmembers) {
        if (begin(g, &w, type, ++g->seq, NULL, NULL))
            return;
        for (; i < g->nmembers; i++) {
            to_update(g->members[i], &u);
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
static void broadcast(struct mcpgw_gossip *g, struct member *about)
{
    struct member *to[MAX_PICK];
    int k = pick_random(g, to, g->cfg.fanout, about);
    for (int i = 0; i < k; i++)
        send_gossip(g, about, to[i]);
    if (about != self_of(g) &&
        (about->pub.state == MCPGW_MEMBER_SUSPECT || about->pub.state == MCPGW_MEMBER_DEAD))
        send_gossip(g, about, about);
}

/* ---- the member table ---- */

static void on_suspicion_timeout(evutil_socket_t fd, short what, void *arg);

static void grow(struct mcpgw_gossip *g)
{
    if (g->nmembers < g->cap)
        return;
    g->cap = g->cap ? g->cap * 2 : 8;
    g->members = xrealloc(g->members, (size_t)g->cap * sizeof(*g->members));
    g->scratch = xrealloc(g->scratch, (size_t)g->cap * sizeof(*g->scratch));
    g->probe = xrealloc(g->probe, (size_t)g->cap * sizeof(*g->probe));
}

static struct member *member_new(struct mcpgw_gossip *g, const struct mcpgw_gossip_update *u)
{
    struct member *m = xcalloc(1, sizeof(*m));

    memcpy(m->id, u->id, sizeof(m->id));
    memcpy(m->http, u->http_addr, sizeof(m->http));
    m->id_hash = mcpgw_hash64(m->id, strlen(m->id));
    m->pub.id = m->id;
    m->pub.http_addr = m->http;
    m->pub.gossip_addr = m->gaddr;
    m->pub.state = (enum mcpgw_member_state)u->state;
    m->pub.generation = u->generation;
    m->pub.incarnation = u->incarnation;
    m->pub.sessions = u->sessions;
    set_flags(m, u->flags);
    set_addr(m, &u->addr);
    m->since_ms = mcpgw_now_ms();
    m->g = g;
    m->timer = evtimer_new(g->base, on_suspicion_timeout, m);
    grow(g);
    g->members[g->nmembers++] = m;
    return m;
}

/* A member that became probeable mid-round joins the rest of the round at a random place. */
static void probe_insert(struct mcpgw_gossip *g, struct member *m)
{
    int at;
    if (m->in_probe || m == self_of(g))
        return;
    at = g->probe_idx + rnd_below(g, g->nprobe - g->probe_idx + 1);
    memmove(&g->probe[at + 1], &g->probe[at], (size_t)(g->nprobe - at) * sizeof(g->probe[0]));
    g->probe[at] = m;
    g->nprobe++;
    m->in_probe = 1;
}

static void probe_rebuild(struct mcpgw_gossip *g)
{
    g->nprobe = 0;
    g->probe_idx = 0;
    for (int i = 1; i < g->nmembers; i++) {
        struct member *m = g->members[i];
        m->in_probe = probeable(m);
        if (m->in_probe)
            g->probe[g->nprobe++] = m;
    }
    for (int i = g->nprobe - 1; i > 0; i--) {
        int j = rnd_below(g, i + 1);
        struct member *t = g->probe[i];
        g->probe[i] = g->probe[j];
        g->probe[j] = t;
    }
}

static void member_remove(struct mcpgw_gossip *g, int i)
{
    struct member *m = g->members[i];

    for (int j = 0; j < g->nprobe; j++) {
        if (g->probe[j] != m)
            continue;
        memmove(&g->probe[j], &g->probe[j + 1], (size_t)(g->nprobe - j - 1) * sizeof(g->probe[0]));
        g->nprobe--;
        if (j < g->probe_idx)
            g->probe_idx--;
        break;
    }
    if (g->probe_target == m) {
        g->probe_target = NULL;
        g->probe_active = 0;
    }
    event_free(m->timer);
    free(m);
    g->members[i] = g->members[--g->nmembers];
}

static void start_suspicion(struct mcpgw_gossip *g, struct member *m)
{
    struct timeval tv = {g->cfg.suspicion_ms / 1000, (g->cfg.suspicion_ms % 1000) * 1000};
    evtimer_add(m->timer, &tv);
}

/* Move a remote member to a new state at its current (generation, incarnation), as our own
 * conclusion (probe failed, suspicion expired): queue, broadcast, report. */
static void declare(struct mcpgw_gossip *g, struct member *m, enum mcpgw_member_state state)
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
    struct member *m = arg;
    if (m->pub.state == MCPGW_MEMBER_SUSPECT)
        declare(m->g, m, MCPGW_MEMBER_DEAD);
}

/* Publish a new incarnation of our own record (refutation, metadata, state change). */
static void self_bump(struct mcpgw_gossip *g, uint32_t at_least, int urgent)
{
    struct member *self = self_of(g);
    self->pub.incarnation = at_least > self->pub.incarnation ? at_least : self->pub.incarnation + 1;
    self->tx_left = tx_limit(g);
    if (urgent)
        broadcast(g, self);
}

/* A record about ourselves: refute suspicion or death with a higher incarnation. */
static void about_self(struct mcpgw_gossip *g, const struct mcpgw_gossip_update *u)
{
    struct member *self = self_of(g);
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
    struct member *m;
    enum mcpgw_member_state old, state = (enum mcpgw_member_state)u->state;
    int meta, restarted;

    if (strcmp(u->id, self_of(g)->id) == 0) {
        about_self(g, u);
        return;
    }
    m = find(g, u->id);
    if (!m) {
        /* news of the death or departure of a stranger is of no use */
        if (state == MCPGW_MEMBER_DEAD || state == MCPGW_MEMBER_LEFT)
            return;
        if (g->nmembers >= g->cfg.max_members) {
            warn_limited(g, "member table full (max_members): ignoring a new member", u->id);
            return;
        }
        m = member_new(g, u);
        m->tx_left = tx_limit(g);
        if (state == MCPGW_MEMBER_SUSPECT)
            start_suspicion(g, m);
        probe_insert(g, m);
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
    if (!newer(u->generation, u->incarnation, state, m))
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
    set_flags(m, u->flags);
    set_addr(m, &u->addr);
    m->tx_left = tx_limit(g);
    if (state != old) {
        m->since_ms = mcpgw_now_ms();
        if (probeable(m))
            probe_insert(g, m);
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

static struct member *next_target(struct mcpgw_gossip *g)
{
    for (int round = 0; round < 2; round++) {
        while (g->probe_idx < g->nprobe) {
            struct member *m = g->probe[g->probe_idx++];
            if (probeable(m))
                return m;
        }
        probe_rebuild(g);
    }
    return NULL;
}

static void start_probe(struct mcpgw_gossip *g)
{
    struct member *m = next_target(g);
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
    struct member *t = g->probe_target, *helpers[MAX_PICK];
    int k;

    if (!g->probe_active || g->probe_acked || !t)
        return;
    k = pick_random(g, helpers, g->cfg.indirect_k, t);
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
    send_msg(g, MCPGW_GOSSIP_PING, r->seq, h->target, NULL, &to, tolen, find(g, h->target), NULL);
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
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);
    int family;

    g->nseed_sa = 0;
    if (getsockname(g->fd, (struct sockaddr *)&local, &locallen) < 0)
        return;
    family = local.ss_family;
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
            if (same_sockaddr(&ss, &self_of(g)->sa) || same_sockaddr(&ss, &local))
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
    struct member *m;

    if (g->leaving)
        return;

    for (int i = 1; i < g->nmembers; i++) {
        if (probeable(g->members[i]))
            alone = 0;
        else if (g->members[i]->pub.state == MCPGW_MEMBER_DEAD)
            g->scratch[ndead++] = g->members[i];
    }
    if (alone) {
        if (now < g->next_join_ms)
            return;
        g->next_join_ms = now + g->cfg.join_retry_ms;
        resolve_seeds(g);
        for (int i = 0; i < g->nseed_sa; i++)
            send_table(g, MCPGW_GOSSIP_JOIN, &g->seed_sa[i], g->seed_salen[i]);
        for (int i = 0; i < ndead; i++) /* seedless clusters heal through old members */
            send_table(g, MCPGW_GOSSIP_JOIN, &g->scratch[i]->sa, g->scratch[i]->salen);
        return;
    }
    if (now < g->next_sync_ms)
        return;
    /* jitter 75-125% so that members do not sync in lockstep */
    g->next_sync_ms =
        now + g->cfg.sync_ms * 3 / 4 + (uint64_t)rnd_below(g, (int)g->cfg.sync_ms / 2 + 1);
    pick = rnd_below(g, 4);
    if (pick < 2 && ndead > 0) {
        m = g->scratch[rnd_below(g, ndead)];
        send_table(g, MCPGW_GOSSIP_JOIN, &m->sa, m->salen);
        return;
    }
    if (pick < 3 && g->cfg.nseeds > 0) {
        resolve_seeds(g);
        if (g->nseed_sa > 0) {
            int i = rnd_below(g, g->nseed_sa);
            send_table(g, MCPGW_GOSSIP_JOIN, &g->seed_sa[i], g->seed_salen[i]);
            return;
        }
    }
    if (pick_random(g, &m, 1, NULL) == 1)
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
    struct member *self = self_of(g), *s;
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
    s = find(g, h->sender);
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
static void on_port_unreachable(struct mcpgw_gossip *g, const struct sockaddr *dst)
{
    struct mcpgw_gossip_addr a;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (mcpgw_gossip_addr_from_sockaddr(&a, dst) < 0)
        return;
    if (a.family == 6 && memcmp(a.ip, v4mapped, 12) == 0) {
        a.family = 4;
        memmove(a.ip, a.ip + 12, 4);
        memset(a.ip + 4, 0, 12);
    }
    for (int i = 1; i < g->nmembers; i++) {
        struct member *m = g->members[i];
        if (!probeable(m) || !mcpgw_gossip_addr_equal(&m->addr, &a))
            continue;
        log_info("gossip: member %s: port %s unreachable, nothing listens there any more", m->id,
                 m->gaddr);
        declare(g, m, MCPGW_MEMBER_DEAD);
        return;
    }
}

/* Read the socket's error queue (IP_RECVERR): the ICMP errors our datagrams met. */
static void read_errors(struct mcpgw_gossip *g)
{
    for (int i = 0; i < RX_BURST; i++) {
        struct sockaddr_storage dst;
        union {
            char buf[256];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {g->rxbuf, sizeof(g->rxbuf)};
        struct msghdr mh = {.msg_name = &dst,
                            .msg_namelen = sizeof(dst),
                            .msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.buf,
                            .msg_controllen = sizeof(ctl.buf)};

        memset(&dst, 0, sizeof(dst));
        if (recvmsg(g->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            struct sock_extended_err ee;
            if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) ||
                c->cmsg_len < CMSG_LEN(sizeof(ee)))
                continue;
            memcpy(&ee, CMSG_DATA(c), sizeof(ee));
            /* ICMP type 3 code 3; ICMPv6 type 1 code 4 */
            if ((ee.ee_origin == SO_EE_ORIGIN_ICMP && ee.ee_type == 3 && ee.ee_code == 3) ||
                (ee.ee_origin == SO_EE_ORIGIN_ICMP6 && ee.ee_type == 1 && ee.ee_code == 4))
                on_port_unreachable(g, (const struct sockaddr *)&dst);
        }
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_gossip *g = arg;

    for (int i = 0; i < RX_BURST; i++) {
        struct sockaddr_storage src;
        socklen_t srclen = sizeof(src);
        ssize_t n = recvfrom(fd, g->rxbuf, sizeof(g->rxbuf), 0, (struct sockaddr *)&src, &srclen);
        int rc;

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                /* Woken with no datagram: the socket polls as in error because reports are
                 * queued whose pending error a send already took (a send after an ICMP report
                 * fails with it and clears it, the report stays). Unread, they would wake the
                 * loop again at once, forever. */
                if (i == 0)
                    read_errors(g);
                return;
            }
            /* The pending error of a queued ICMP report (ECONNREFUSED...): read the reports,
             * then the datagrams behind them. */
            read_errors(g);
            continue;
        }
        rc = mcpgw_gossip_wire_decode(g->rxbuf, (size_t)n, &g->rx);
        if (rc) {
            log_debug("gossip: dropped a datagram of %zd bytes: %s", n,
                      mcpgw_gossip_wire_err_str(rc));
            continue;
        }
        handle(g, &g->rx, &src, srclen);
    }
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
    for (int i = g->nmembers - 1; i > 0; i--) {
        struct member *m = g->members[i];
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
    struct member *t = g->probe_target;

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

static int resolve_one(const char *hostport, int passive, struct sockaddr_storage *ss,
                       socklen_t *sslen, char *err, size_t errlen)
{
    char host[256], port[8];
    struct addrinfo hints, *res = NULL;
    int p, rc;

    if (mcpgw_parse_hostport(hostport, host, sizeof(host), &p, err, errlen) < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", p);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "cannot resolve gossip address '%s': %s", hostport, gai_strerror(rc));
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int is_wildcard(const struct mcpgw_gossip_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

static int open_socket(struct mcpgw_gossip *g, struct mcpgw_gossip_addr *self_addr, char *err,
                       size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rcvbuf = 1 << 20, one = 1;

    if (resolve_one(g->bind_addr, 1, &ss, &sslen, err, errlen) < 0)
        return -1;
    g->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g->fd < 0 || bind(g->fd, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(err, errlen, "cannot bind the gossip UDP socket to %s: %s", g->bind_addr,
                 strerror(errno));
        return -1;
    }
    /* a burst of JOIN/SYNC tables must not overflow the default buffer */
    setsockopt(g->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    /* Keep the ICMP errors our datagrams meet, with the address they were sent to: a closed
     * port is a dead member (on_port_unreachable). Best effort: without it, suspicion alone. */
    if (ss.ss_family == AF_INET6)
        setsockopt(g->fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
    setsockopt(g->fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
    sslen = sizeof(ss);
    if (getsockname(g->fd, (struct sockaddr *)&ss, &sslen) < 0 ||
        mcpgw_gossip_addr_from_sockaddr(self_addr, (struct sockaddr *)&ss) < 0) {
        snprintf(err, errlen, "cannot read the gossip socket's address: %s", strerror(errno));
        return -1;
    }
    g->port = self_addr->port;
    if (g->advertise_addr) {
        struct mcpgw_gossip_addr adv;
        if (resolve_one(g->advertise_addr, 0, &ss, &sslen, err, errlen) < 0)
            return -1;
        if (mcpgw_gossip_addr_from_sockaddr(&adv, (struct sockaddr *)&ss) < 0 ||
            is_wildcard(&adv)) {
            snprintf(err, errlen, "gossip advertise address %s is not a reachable IP address",
                     g->advertise_addr);
            return -1;
        }
        if (adv.port == 0)
            adv.port = self_addr->port;
        *self_addr = adv;
    } else if (is_wildcard(self_addr)) {
        snprintf(err, errlen,
                 "gossip bind address %s is a wildcard: set an advertise address the other "
                 "members can reach",
                 g->bind_addr);
        return -1;
    }
    return 0;
}

struct mcpgw_gossip *mcpgw_gossip_new(struct event_base *base,
                                      const struct mcpgw_gossip_config *cfg, char *err,
                                      size_t errlen)
{
    static uint64_t last_generation;
    struct mcpgw_gossip *g = NULL;
    struct mcpgw_gossip_update u;
    uint64_t gen;

    if (check_config(cfg, err, errlen) < 0)
        goto fail;
    g = xcalloc(1, sizeof(*g));
    g->base = base;
    g->fd = -1;
    g->cfg = *cfg;
    g->node_id = xstrdup(cfg->node_id);
    g->bind_addr = xstrdup(cfg->bind_addr);
    g->advertise_addr = cfg->advertise_addr ? xstrdup(cfg->advertise_addr) : NULL;
    g->http_addr = xstrdup(cfg->http_addr ? cfg->http_addr : "");
    g->seeds = xcalloc((size_t)cfg->nseeds + 1, sizeof(char *));
    for (int i = 0; i < cfg->nseeds; i++)
        g->seeds[i] = xstrdup(cfg->seeds[i]);
    g->cfg.node_id = g->node_id;
    g->cfg.bind_addr = g->bind_addr;
    g->cfg.advertise_addr = g->advertise_addr;
    g->cfg.http_addr = g->http_addr;
    g->cfg.seeds = (const char *const *)g->seeds;

    memset(&u, 0, sizeof(u));
    if (open_socket(g, &u.addr, err, errlen) < 0)
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
    member_new(g, &u)->pub.is_self = 1;
    self_of(g)->tx_left = 0;

    g->rng = mcpgw_now_us() ^ ((uint64_t)getpid() << 32) ^ mcpgw_hash64(u.id, strlen(u.id)) ^ gen;
    if (!g->rng)
        g->rng = 1;
    g->seq = (uint32_t)rnd(g);
    g->join_tokens = JOIN_REPLY_BURST;
    g->tokens_ms = mcpgw_now_ms();
    g->read_ev = event_new(base, g->fd, EV_READ | EV_PERSIST, on_read, g);
    g->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, g);
    g->probe_ev = evtimer_new(base, on_probe_timeout, g);
    if (!g->read_ev || !g->tick_ev || !g->probe_ev) {
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

    if (g->started || event_add(g->read_ev, NULL) < 0 || event_add(g->tick_ev, &tv) < 0)
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
    if (g->read_ev)
        event_free(g->read_ev);
    if (g->tick_ev)
        event_free(g->tick_ev);
    if (g->probe_ev)
        event_free(g->probe_ev);
    while (g->nmembers > 0) {
        struct member *m = g->members[--g->nmembers];
        event_free(m->timer);
        free(m);
    }
    if (g->fd >= 0)
        close(g->fd);
    for (int i = 0; g->seeds && i < g->cfg.nseeds; i++)
        free(g->seeds[i]);
    free(g->seeds);
    free(g->members);
    free(g->scratch);
    free(g->probe);
    free(g->node_id);
    free(g->bind_addr);
    free(g->advertise_addr);
    free(g->http_addr);
    free(g);
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
    struct member *self = self_of(g);
    if (g->leaving || self->pub.state == MCPGW_MEMBER_DRAINING)
        return;
    set_flags(self, self->flags | MCPGW_GOSSIP_F_DRAINING);
    self->pub.state = MCPGW_MEMBER_DRAINING;
    log_info("gossip: %s is draining", self->id);
    self_bump(g, 0, 1);
}

void mcpgw_gossip_leave(struct mcpgw_gossip *g)
{
    struct member *self = self_of(g);
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
    for (int i = 1; i < g->nmembers; i++)
        if (probeable(g->members[i]))
            send_gossip(g, self, g->members[i]);
}

/* ---- the view ---- */

int mcpgw_gossip_member_count(const struct mcpgw_gossip *g)
{
    return g->nmembers;
}

const struct mcpgw_member *mcpgw_gossip_member_get(const struct mcpgw_gossip *g, int i)
{
    return i >= 0 && i < g->nmembers ? &g->members[i]->pub : NULL;
}

const struct mcpgw_member *mcpgw_gossip_member_find(const struct mcpgw_gossip *g, const char *id)
{
    struct member *m = find(g, id);
    return m ? &m->pub : NULL;
}

const struct mcpgw_member *mcpgw_gossip_self(const struct mcpgw_gossip *g)
{
    return &self_of(g)->pub;
}

int mcpgw_gossip_port(const struct mcpgw_gossip *g)
{
    return g->port;
}
