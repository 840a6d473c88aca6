/* proxy.c - client/upstream relay state machine on bufferevents (see proxy.h). */
#include "balancer/proxy.h"

#include "balancer/mux.h"
#include "balancer/resume.h"
#include "balancer/rewrite.h"
#include "common/http.h"
#include "common/log.h"
#include "common/net.h"
#include "common/route.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RESP_HEAD_MAX   (64 * 1024)
#define SID_MAX         512 /* longer ids still route, on their first SID_MAX bytes */
#define SWEEP_PERIOD_MS 250
#define WATCH_PERIOD_MS 25    /* how often the node table's up verdicts are looked at */
#define ACCEPT_BATCH    64    /* connections accepted per wakeup of the listener */
#define ACCEPT_FIRST    256   /* of them, per watch period, at the loop's first priority */
#define LINGER_MS       2000  /* after an error: read and discard before closing */
#define READ_CHUNK      16384 /* one readv takes up to this much */
#define NO_MUX_RETRY_MS 60000 /* a node without HTTP/2 is asked again after this */
#define RESUME_TRIES    3     /* a stream moves at most this often in a row without an answer */

enum cstate { C_HEAD, C_FORWARD, C_TUNNEL, C_CLOSING };
enum clist_kind { L_NONE, L_HEAD, L_BODY, L_IDLE, L_LINGER, L_COUNT };
enum rstate { R_HEAD, R_BODY };
enum rmode { R_NONE, R_LENGTH, R_CHUNKED, R_EOF, R_TUNNEL };

struct upstream;

/* A client connection. Idle, it is this struct plus its bufferevent (whose buffers are empty):
 * nothing else. Plain sockets are read through rev (see read_some); TLS ones by the OpenSSL
 * bufferevent. Writing always goes through the bufferevent. */
struct client {
    struct event rev;
    struct bufferevent *bev;
    struct mcpgw_bal_proxy *px;
    struct upstream *up;      /* the request in flight, if any */
    TAILQ_ENTRY(client) link; /* timeout list */
    uint32_t deadline;        /* proxy ms */
    uint32_t scanned;         /* head bytes already searched for the blank line */
    uint32_t ip4;             /* IPv4 peer (network order) when v4 is set */
    uint8_t state;            /* enum cstate */
    uint8_t list;             /* enum clist_kind */
    uint8_t keep_alive : 1;   /* keep the connection after the response in flight */
    uint8_t http10 : 1;       /* HTTP/1.0 client: no chunked responses */
    uint8_t paused : 1;       /* reading paused: the upstream's output is full */
    uint8_t send_timeout : 1; /* a send timeout is armed (our output is full) */
    uint8_t v4 : 1;
    uint8_t resumed : 1; /* its stream went on at another node: no error response can follow */
};
_Static_assert(sizeof(struct client) <= sizeof(struct event) + 64,
               "an idle client must stay small");

/* The part of an upstream that belongs to the request, moved along on a retry. */
struct req_state {
    uint64_t start_us;
    uint64_t tried; /* bitmap of slots tried */
    int64_t req_left;
    int64_t resp_left;
    uint64_t req_body; /* decoded chunked body bytes */
    struct mcpgw_chunked req_dec;
    struct mcpgw_chunked resp_dec;
    char *sid; /* routing key copy (owned), NULL when routed by load */
    uint32_t scanned;
    uint16_t sidlen;
    uint8_t rstate, rmode;
    uint8_t req_chunked : 1, req_done : 1, upgrade_req : 1, head_req : 1, resp_keep : 1,
        dechunk : 1, mux : 1 /* may go as a stream of the node's mux */;
};

/* An upstream connection: in use by one client's request, or idle in its node's pool. Read
 * through rev, written through the bufferevent. Or (muxed) a stream of the node's mux: no socket
 * of its own, the response comes as HTTP/1.1 bytes in the stream's input. */
struct upstream {
    struct event rev;
    struct bufferevent *bev;         /* NULL when muxed */
    struct mcpgw_mux_stream *ms;     /* muxed: the stream, NULL once it ended */
    struct evbuffer *reqhead;        /* muxed: the request head, kept until the response comes */
    struct mcpgw_bal_resume *resume; /* an SSE stream the balancer can re-open elsewhere */
    struct mcpgw_bal_proxy *px;
    struct client *c;             /* NULL while pooled */
    struct upstream *prev, *next; /* pool, most recently used first */
    uint32_t released;            /* proxy ms when pooled */
    int16_t slot;
    uint8_t connected : 1, reused : 1, pooled : 1, paused : 1, counted : 1, muxed : 1,
        resuming : 1; /* re-opened elsewhere: the new node's head is not the client's */
    uint8_t resumes;  /* times its stream moved */
    struct req_state rq;
};

/* This worker's view of one node slot. */
struct wnode {
    char id[MCPGW_BAL_ID_MAX];
    char addr[MCPGW_BAL_ADDR_MAX];
    struct sockaddr_storage sa;
    socklen_t salen;
    uint8_t in_use, draining, passive;
    uint64_t down_ms; /* when the passive mark was set */
    uint32_t active;  /* upstream connections in use */
    uint8_t seen_up;  /* the table's up verdict at the last sweep */
    struct upstream *pool_first, *pool_last;
    struct upstream *act_first;  /* in use, through prev/next (pool links are free then) */
    struct mcpgw_mux *mux;       /* --stream-mux: the HTTP/2 connection carrying GET streams */
    struct mcpgw_mux *old_mux;   /* one that takes no new streams (GOAWAY) until its last ends */
    uint64_t no_mux_ms;          /* when the node was found not to speak HTTP/2 (0: never) */
    uint32_t nmux, nmux_streams; /* muxes open, streams on them (for /metrics) */
    uint32_t npool;
    uint32_t next_src; /* round robin over cfg.sources */
};

TAILQ_HEAD(clist, client);

struct mcpgw_bal_proxy {
    struct event_base *base;
    struct mcpgw_bal_config cfg;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_worker_stats *st;
    SSL_CTX *tls;
    struct event *lev;       /* the listener: first priority while accept_first lasts */
    unsigned accept_first;   /* accepts left at first priority until the next watch */
    uint8_t lev_demoted : 1; /* the listener runs at the default priority (budget spent) */
    uint8_t lev_paused : 1;  /* out of descriptors: accept_retry re-adds the listener */
    struct event *sweep, *watch, *accept_retry, *drained_ev;
    struct clist lists[L_COUNT];
    uint32_t timeouts[L_COUNT];
    uint64_t t0;
    uint32_t gen, nslots;
    struct wnode nodes[MCPGW_BAL_MAX_NODES];
    uint64_t rng;
    unsigned nclients;
    uint64_t last_accept_warn;
    int draining;
    mcpgw_bal_proxy_drained_fn drained;
    void *drained_arg;
};

static void client_free(struct client *c);
static void client_process(struct client *c);
static void on_client_event(struct bufferevent *bev, short what, void *arg);
static void on_up_event(struct bufferevent *bev, short what, void *arg);
static void relay_request_body(struct upstream *u);
static void relay_response(struct upstream *u);
static void upstream_discard(struct upstream *u);
static void node_refused(struct mcpgw_bal_proxy *px, int slot);
static void mux_close(struct mcpgw_bal_proxy *px, int slot);

static uint32_t now_ms(const struct mcpgw_bal_proxy *px)
{
    return (uint32_t)(mcpgw_now_ms() - px->t0);
}

static struct timeval tv_ms(uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Send what is queued on a plain socket now instead of after another trip through epoll: a
 * response usually fits the socket buffer, so it costs one writev and no epoll_ctl. EV_WRITE
 * stays disabled while nothing is queued (the write callbacks disable it again once the output
 * is empty); leftovers enable it and libevent sends them when the socket is writable. */
static void push(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    if (!evbuffer_get_length(out) || (bufferevent_get_enabled(bev) & EV_WRITE))
        return;
    evbuffer_unfreeze(out, 1);
    evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    /* Leftovers, or an error libevent will run into again and report through the event
     * callback. */
    if (evbuffer_get_length(out))
        bufferevent_enable(bev, EV_WRITE);
}

/* The write callback's half of push(): once the output is empty, stop watching writability. */
static void write_idle(struct bufferevent *bev)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);
}

/* Read up to max bytes (at most READ_CHUNK) from fd into in (common/net.h). */
static ssize_t read_some(struct evbuffer *in, evutil_socket_t fd, size_t max)
{
    return mcpgw_evbuffer_readv(in, (int)fd, max < READ_CHUNK ? max : READ_CHUNK);
}

static int would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* ---- timeout lists: FIFO, one constant timeout each, so deadlines are in order ---- */

static void list_remove(struct client *c)
{
    struct clist *l;
    if (c->list == L_NONE)
        return;
    l = &c->px->lists[c->list];
    TAILQ_REMOVE(l, c, link);
    c->list = L_NONE;
}

static void list_append(struct client *c, enum clist_kind k)
{
    struct clist *l = &c->px->lists[k];
    list_remove(c);
    c->list = (uint8_t)k;
    c->deadline = now_ms(c->px) + c->px->timeouts[k];
    TAILQ_INSERT_TAIL(l, c, link);
}

/* ---- reading on/off ---- */

static void client_read_on(struct client *c)
{
    if (c->px->tls)
        bufferevent_enable(c->bev, EV_READ);
    else if (!event_pending(&c->rev, EV_READ, NULL))
        event_add(&c->rev, NULL);
}

static void client_read_off(struct client *c)
{
    if (c->px->tls)
        bufferevent_disable(c->bev, EV_READ);
    else
        event_del(&c->rev);
}

/* Reading an upstream: timeout_ms bounds the wait for the next bytes (0: none). */
static void up_read_on(struct upstream *u, uint32_t timeout_ms)
{
    struct timeval tv = tv_ms(timeout_ms);
    /* event_add with a NULL timeout leaves the timeout of an already pending event in place:
     * delete it first, or a quiet stream is cut when its old response timeout expires. */
    if (!timeout_ms)
        event_del(&u->rev);
    event_add(&u->rev, timeout_ms ? &tv : NULL);
}

static void up_read_off(struct upstream *u)
{
    event_del(&u->rev);
}

/* ---- node view ---- */

static struct mcpgw_bal_node_stats *nstats(struct mcpgw_bal_proxy *px, int slot)
{
    return &px->st->nodes[slot];
}

static void pool_remove(struct upstream *u)
{
    struct wnode *n = &u->px->nodes[u->slot];
    if (!u->pooled)
        return;
    if (u->prev)
        u->prev->next = u->next;
    else
        n->pool_first = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        n->pool_last = u->prev;
    u->prev = u->next = NULL;
    u->pooled = 0;
    n->npool--;
    MCPGW_STORE(&nstats(u->px, u->slot)->idle, (int64_t)n->npool);
}

static void pool_close_all(struct mcpgw_bal_proxy *px, int slot)
{
    while (px->nodes[slot].pool_first)
        upstream_discard(px->nodes[slot].pool_first);
}

/* Pick up table changes published by the master. */
static void refresh_nodes(struct mcpgw_bal_proxy *px)
{
    static struct mcpgw_bal_slot table[MCPGW_BAL_MAX_NODES];
    uint32_t n;
    if (mcpgw_bal_shared_gen(px->sh) == px->gen)
        return;
    px->gen = mcpgw_bal_shared_read(px->sh, table, &n);
    for (uint32_t i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        struct wnode *w = &px->nodes[i];
        const struct mcpgw_bal_slot *s = &table[i];
        int in_use = i < n && s->in_use;
        if (!in_use || strcmp(w->id, s->id) != 0 || strcmp(w->addr, s->addr) != 0) {
            pool_close_all(px, (int)i);
            mux_close(px, (int)i);
            w->no_mux_ms = 0;
            w->passive = 0;
            MCPGW_STORE(&nstats(px, (int)i)->passive_down, 0);
        }
        w->in_use = (uint8_t)in_use;
        if (!in_use)
            continue;
        memcpy(w->id, s->id, sizeof(w->id));
        memcpy(w->addr, s->addr, sizeof(w->addr));
        memcpy(&w->sa, &s->sa, sizeof(w->sa));
        w->salen = s->salen;
        w->draining = (uint8_t)s->draining;
    }
    px->nslots = n;
}

/* Connect to w from the next source address (--source-addrs) in turn, or from the kernel's
 * choice. A source whose ports to this node are all taken (EADDRNOTAVAIL) gives way to the next.
 * Returns the socket (*pending: still connecting) or -1 with errno set. */
static int node_connect(struct mcpgw_bal_proxy *px, struct wnode *w, int *pending)
{
    uint32_t n = px->cfg.nsources;
    int fd = -1;
    if (!n)
        return mcpgw_tcp_connect((const struct sockaddr *)&w->sa, w->salen, NULL, 0, pending);
    for (uint32_t i = 0; i < n; i++) {
        const struct sockaddr_in *src = &px->cfg.sources[w->next_src++ % n];
        fd = mcpgw_tcp_connect((const struct sockaddr *)&w->sa, w->salen,
                               (const struct sockaddr *)src, sizeof(*src), pending);
        if (fd >= 0 || errno != EADDRNOTAVAIL)
            break;
    }
    return fd;
}

/* A connect to the node that just failed us, to tell a dead node (refused: its exchanges are
 * ended, see node_refused) from a live one that only closed or reset one connection. Its
 * outcome is handled from the loop, never inside mark_down's caller, which may still use the
 * exchange that failed. */
struct probe {
    struct mcpgw_bal_proxy *px;
    int slot;
    int refused; /* refused at once by connect() */
    char id[MCPGW_BAL_ID_MAX];
};

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    int err = 0;
    socklen_t len = sizeof(err);
    if (!p->refused && fd >= 0 && (what & EV_WRITE) &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED)
        p->refused = 1;
    if (p->refused && p->px->nodes[p->slot].in_use && strcmp(p->px->nodes[p->slot].id, p->id) == 0)
        node_refused(p->px, p->slot);
    if (fd >= 0)
        close(fd);
    free(p);
}

static void probe_listener(struct mcpgw_bal_proxy *px, int slot)
{
    struct wnode *w = &px->nodes[slot];
    struct timeval tv = tv_ms(px->cfg.connect_timeout_ms), now = {0, 0};
    struct probe *p;
    int pending, fd = node_connect(px, w, &pending);
    if (fd < 0 && errno != ECONNREFUSED)
        return;
    p = xcalloc(1, sizeof(*p));
    p->px = px;
    p->slot = slot;
    memcpy(p->id, w->id, sizeof(p->id));
    p->refused = fd < 0;
    if (event_base_once(px->base, fd, fd >= 0 ? EV_WRITE : EV_TIMEOUT, on_probe, p,
                        fd >= 0 ? &tv : &now) < 0) {
        if (fd >= 0)
            close(fd);
        free(p);
    }
}

/* Passive health: a failed connect or a reset marks the node down in this worker until an
 * active check passes after the mark. The mark also probes the node's listener once. */
static void mark_down(struct mcpgw_bal_proxy *px, int slot, const char *why)
{
    struct wnode *w = &px->nodes[slot];
    MCPGW_BUMP(&nstats(px, slot)->errors, 1);
    if (w->passive)
        return;
    w->passive = 1;
    w->down_ms = mcpgw_now_ms();
    MCPGW_STORE(&nstats(px, slot)->passive_down, 1);
    log_warn("node %s (%s) marked down in this worker: %s", w->id, w->addr, why);
    pool_close_all(px, slot);
    probe_listener(px, slot);
}

static int node_usable(struct mcpgw_bal_proxy *px, int slot)
{
    struct wnode *w = &px->nodes[slot];
    if (!w->in_use || !MCPGW_LOAD(&px->sh->slots[slot].up))
        return 0;
    if (w->passive) {
        /* Only evidence gathered after the mark: a check answered just before a kill, or
         * gossip that has not yet noticed it, must not put the node back. */
        if (MCPGW_LOAD(&px->sh->slots[slot].pass_ms) <= w->down_ms)
            return 0;
        w->passive = 0;
        MCPGW_STORE(&nstats(px, slot)->passive_down, 0);
        log_info("node %s (%s) passed a check: back in this worker's rotation", w->id, w->addr);
    }
    return 1;
}

/* Load of a node for routing by load, summed over every worker of this balancer (their stats
 * blocks are shared) so the workers together spread sessions as evenly as one would:
 * upstream connections in use (requests in flight and open streams) plus the requests sent to
 * it by load so far (the sessions it was given; gossip will supply real session counts). The
 * sum sheds load from a slow node, yet bounds how far session counts drift apart by the
 * difference in requests in flight. */
static void node_load(struct mcpgw_bal_proxy *px, int slot, uint32_t *load, uint32_t *picks)
{
    int64_t a = 0;
    uint64_t p = 0;
    for (int w = 0; w < px->cfg.workers; w++) {
        const struct mcpgw_bal_node_stats *ns = &px->sh->workers[w].nodes[slot];
        a += MCPGW_LOAD(&ns->active);
        p += MCPGW_LOAD(&ns->assigned);
    }
    *picks = (uint32_t)p;
    *load = (uint32_t)((a > 0 ? (uint64_t)a : 0) + p);
}

static int pick(struct mcpgw_bal_proxy *px, const struct req_state *rq)
{
    struct mcpgw_route_node rn[MCPGW_BAL_MAX_NODES];
    int n = (int)px->nslots, slot;
    for (int i = 0; i < n; i++) {
        struct wnode *w = &px->nodes[i];
        rn[i].id = w->in_use ? w->id : NULL;
        /* A leaving node (gossip drain) gets nothing new, not even its own sessions: they move
         * to other nodes while its exchanges in flight finish. */
        rn[i].usable = (uint8_t)(!(rq->tried >> i & 1) && w->draining != 2 && node_usable(px, i));
        rn[i].draining = w->draining != 0;
        rn[i].load = 0;
        rn[i].picks = 0;
        if (!rq->sid && rn[i].usable)
            node_load(px, i, &rn[i].load, &rn[i].picks);
    }
    slot = mcpgw_route_pick(rn, n, rq->sid, rq->sidlen, &px->rng);
    if (mcpgw_log_enabled(MCPGW_LOG_DEBUG) && !rq->sid) {
        char b[256];
        int o = 0;
        for (int i = 0; i < n && o < 200; i++)
            o += snprintf(b + o, sizeof(b) - (size_t)o, " %s:u%d/l%u/p%u",
                          rn[i].id ? rn[i].id : "-", rn[i].usable, rn[i].load, rn[i].picks);
        log_debug("pick by load ->%d:%s", slot, b);
    }
    if (slot >= 0 && !rq->sid)
        MCPGW_BUMP(&nstats(px, slot)->assigned, 1);
    return slot;
}

/* Why no node could take a request, for the 503 body. */
static void no_node_cause(struct mcpgw_bal_proxy *px, const char *last, char *buf, size_t len)
{
    int configured = 0, up = 0, draining = 0;
    for (uint32_t i = 0; i < px->nslots; i++) {
        if (!px->nodes[i].in_use)
            continue;
        configured++;
        if (node_usable(px, (int)i)) {
            up++;
            draining += px->nodes[i].draining;
        }
    }
    if (!configured)
        snprintf(buf, len, "no MCP node is configured");
    else if (last)
        snprintf(buf, len, "no MCP node could be reached (%d of %d up; last error: %s)", up,
                 configured, last);
    else if (up == 0)
        snprintf(buf, len, "no MCP node is up (0 of %d)", configured);
    else if (draining == up)
        snprintf(buf, len, "every MCP node that is up is draining (%d of %d)", draining,
                 configured);
    else
        snprintf(buf, len, "no MCP node can take this request (%d of %d up)", up, configured);
}

/* ---- upstream connections ---- */

static void on_up_read(struct bufferevent *bev, void *arg);
static void on_up_readable(evutil_socket_t fd, short what, void *arg);
static void on_up_write(struct bufferevent *bev, void *arg);
static void on_up_event(struct bufferevent *bev, short what, void *arg);

static void uncount(struct upstream *u)
{
    if (u->counted) {
        struct wnode *w = &u->px->nodes[u->slot];
        if (u->prev)
            u->prev->next = u->next;
        else
            w->act_first = u->next;
        if (u->next)
            u->next->prev = u->prev;
        u->prev = u->next = NULL;
        u->counted = 0;
        w->active--;
        MCPGW_STORE(&nstats(u->px, u->slot)->active, (int64_t)w->active);
    }
}

/* Close an upstream connection for good (pooled or not). */
static void upstream_discard(struct upstream *u)
{
    pool_remove(u);
    uncount(u);
    if (u->c && u->c->up == u)
        u->c->up = NULL;
    free(u->rq.sid);
    mcpgw_bal_resume_free(u->resume);
    if (u->muxed) {
        struct wnode *w = &u->px->nodes[u->slot];
        w->nmux_streams--;
        MCPGW_STORE(&nstats(u->px, u->slot)->mux_streams, (int64_t)w->nmux_streams);
        if (u->ms)
            mcpgw_mux_stream_close(u->ms);
        if (u->reqhead)
            evbuffer_free(u->reqhead);
    } else {
        event_del(&u->rev);
        bufferevent_free(u->bev);
    }
    free(u);
}

/* The input of u: its socket's, or its stream's. */
static struct evbuffer *up_in(struct upstream *u)
{
    return u->muxed ? mcpgw_mux_stream_input(u->ms) : bufferevent_get_input(u->bev);
}

static void count_active(struct upstream *u)
{
    struct wnode *w = &u->px->nodes[u->slot];
    u->counted = 1;
    u->prev = NULL;
    u->next = w->act_first;
    if (w->act_first)
        w->act_first->prev = u;
    w->act_first = u;
    w->active++;
    MCPGW_STORE(&nstats(u->px, u->slot)->active, (int64_t)w->active);
}

/* ---- muxed streams (--stream-mux, mux.h) ---- */

static void on_mux_input(void *owner);
static void on_mux_end(void *owner, enum mcpgw_mux_end how, const char *why);
static void on_mux_failed(void *arg, struct mcpgw_mux *m, int connected, int err, const char *why);
static const struct mcpgw_mux_stream_cb mux_stream_cb = {on_mux_input, on_mux_end};
static const struct mcpgw_mux_cb mux_cb = {on_mux_failed};

/* Close slot's muxes (old: the retired one only, else both). */
/* Free m, one of slot's muxes (already detached from the slot). */
static void mux_release(struct mcpgw_bal_proxy *px, int slot, struct mcpgw_mux *m)
{
    if (!m)
        return;
    px->nodes[slot].nmux--;
    MCPGW_STORE(&nstats(px, slot)->mux_conns, (int64_t)px->nodes[slot].nmux);
    mcpgw_mux_free(m);
}

static void mux_close(struct mcpgw_bal_proxy *px, int slot)
{
    struct mcpgw_mux *m = px->nodes[slot].mux, *o = px->nodes[slot].old_mux;
    px->nodes[slot].mux = px->nodes[slot].old_mux = NULL;
    mux_release(px, slot, m); /* its streams end: their clients are told */
    mux_release(px, slot, o);
}

/* A stream of slot's mux for the next request, or NULL: with *err set when the node cannot be
 * reached, with *err 0 when the request should take a connection of its own instead (the mux is
 * closing or full). */
static struct upstream *mux_upstream(struct mcpgw_bal_proxy *px, int slot, int *err)
{
    struct wnode *w = &px->nodes[slot];
    struct upstream *u;
    *err = 0;
    if (w->no_mux_ms && mcpgw_now_ms() - w->no_mux_ms < NO_MUX_RETRY_MS)
        return NULL;
    if (w->mux && !mcpgw_mux_usable(w->mux)) {
        /* Closing (GOAWAY) or full: its streams go on, new ones take a new connection. */
        if (!mcpgw_mux_streams(w->mux)) {
            mux_release(px, slot, w->mux);
        } else if (!w->old_mux || !mcpgw_mux_streams(w->old_mux)) {
            mux_release(px, slot, w->old_mux);
            w->old_mux = w->mux;
        } else {
            return NULL; /* two in use already: this stream gets a connection of its own */
        }
        w->mux = NULL;
    }
    if (!w->mux) {
        int pending, fd = node_connect(px, w, &pending);
        if (fd < 0) {
            *err = errno;
            return NULL;
        }
        w->mux = mcpgw_mux_new(px->base, fd, pending, px->cfg.connect_timeout_ms,
                               (uint32_t)px->cfg.mux_window, &mux_cb, px);
        if (!w->mux) {
            *err = ENOMEM;
            return NULL;
        }
        w->nmux++;
        MCPGW_STORE(&nstats(px, slot)->mux_conns, (int64_t)w->nmux);
    }
    u = xcalloc(1, sizeof(*u));
    u->px = px;
    u->slot = (int16_t)slot;
    u->muxed = 1;
    u->connected = 1;
    count_active(u);
    w->nmux_streams++;
    MCPGW_STORE(&nstats(px, slot)->mux_streams, (int64_t)w->nmux_streams);
    return u;
}

/* Send the request head in head (drained) on u. Returns 0, or -1 with a reason in why. */
static int up_send_head(struct upstream *u, struct evbuffer *head, char *why, size_t whylen)
{
    if (!u->muxed) {
        evbuffer_add_buffer(bufferevent_get_output(u->bev), head);
        push(u->bev);
        return 0;
    }
    if (!u->reqhead)
        u->reqhead = evbuffer_new();
    if (!u->reqhead) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (u->reqhead != head)
        evbuffer_add_buffer(u->reqhead, head);
    u->ms = mcpgw_mux_open(u->px->nodes[u->slot].mux, u->reqhead, &mux_stream_cb, u, why, whylen);
    return u->ms ? 0 : -1;
}

/* An upstream connection to slot: a pooled one, or a new one connecting. NULL with *err set to
 * an errno value when the socket cannot be created or the connect fails at once. */
static struct upstream *upstream_get(struct mcpgw_bal_proxy *px, int slot, int mux, int *err)
{
    struct wnode *w = &px->nodes[slot];
    struct upstream *u = w->pool_first;
    int fd, pending;

    if (mux && px->cfg.stream_mux) {
        struct upstream *mu = mux_upstream(px, slot, err);
        if (mu || *err)
            return mu;
    }
    if (u) {
        struct timeval rt = tv_ms(px->cfg.response_timeout_ms);
        pool_remove(u);
        u->reused = 1;
        bufferevent_set_timeouts(u->bev, NULL, &rt);
        up_read_on(u, px->cfg.response_timeout_ms);
        goto have;
    }
    fd = node_connect(px, w, &pending);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    u = xcalloc(1, sizeof(*u));
    u->px = px;
    u->slot = (int16_t)slot;
    u->bev = bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!u->bev) {
        close(fd);
        free(u);
        *err = ENOMEM;
        return NULL;
    }
    bufferevent_setcb(u->bev, on_up_read, on_up_write, on_up_event, u);
    {
        struct timeval ct = tv_ms(px->cfg.connect_timeout_ms);
        struct timeval rt = tv_ms(px->cfg.response_timeout_ms);
        bufferevent_set_timeouts(u->bev, NULL, pending ? &ct : &rt);
    }
    /* Reads go through rev; the bufferevent writes (and reports the connect). */
    bufferevent_disable(u->bev, EV_READ);
    bufferevent_enable(u->bev, EV_WRITE);
    if (pending)
        bufferevent_socket_connect(u->bev, NULL, 0);
    else
        u->connected = 1;
    event_assign(&u->rev, px->base, fd, EV_READ | EV_PERSIST, on_up_readable, u);
    up_read_on(u, px->cfg.response_timeout_ms);
have:
    count_active(u);
    return u;
}

/* Return a connection whose exchange completed cleanly to its node's pool. */
static void pool_put(struct upstream *u)
{
    struct mcpgw_bal_proxy *px = u->px;
    struct wnode *w = &px->nodes[u->slot];
    uncount(u);
    free(u->rq.sid);
    memset(&u->rq, 0, sizeof(u->rq));
    u->c = NULL;
    if (px->draining || !w->in_use || w->passive || w->npool >= px->cfg.pool_size) {
        upstream_discard(u);
        return;
    }
    bufferevent_set_timeouts(u->bev, NULL, NULL);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    up_read_on(u, 0); /* to see the node close it */
    u->paused = 0;
    u->released = now_ms(px);
    u->pooled = 1;
    u->prev = NULL;
    u->next = w->pool_first;
    if (w->pool_first)
        w->pool_first->prev = u;
    else
        w->pool_last = u;
    w->pool_first = u;
    w->npool++;
    MCPGW_STORE(&nstats(px, u->slot)->idle, (int64_t)w->npool);
}

/* ---- answers the balancer writes itself ---- */

/* Bytes the client sent that we have not read (they would turn our close into a reset). */
static int unread(struct client *c)
{
    int n = 0;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        return 1;
    return ioctl((int)bufferevent_getfd(c->bev), FIONREAD, &n) == 0 && n > 0;
}

/* Our last bytes are sent: half-close and read what the client still sends for a moment, so
 * the close does not turn into a reset that destroys the answer before the client reads it. */
static void client_linger(struct client *c)
{
    if (c->px->tls || c->list == L_LINGER) {
        if (c->px->tls)
            client_free(c);
        return;
    }
    if (!unread(c)) {
        client_free(c);
        return;
    }
    shutdown((int)bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    client_read_on(c);
    list_append(c, L_LINGER);
}

/* End the conversation: drop the request in flight, flush what is queued, then close. May free
 * c. */
static void client_close_when_flushed(struct client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev), *in = bufferevent_get_input(c->bev);
    if (c->up)
        upstream_discard(c->up);
    if (!c->px->tls)
        push(c->bev);
    list_remove(c);
    c->state = C_CLOSING;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(out) == 0) {
        client_linger(c);
        return;
    }
    {
        struct timeval st = tv_ms(c->px->cfg.send_timeout_ms);
        c->send_timeout = 1;
        bufferevent_set_timeouts(c->bev, NULL, &st);
    }
}

static enum mcpgw_bal_reject reject_of(int status)
{
    for (int r = 0; r < MCPGW_BAL_REJECT_COUNT; r++)
        if (mcpgw_bal_reject_status((enum mcpgw_bal_reject)r) == status)
            return (enum mcpgw_bal_reject)r;
    return MCPGW_BAL_REJECT_400;
}

/* Answer with a plain-text error and close. May free c. */
static void client_fail(struct client *c, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    log_debug("client fd %d: %d %s", (int)bufferevent_getfd(c->bev), status, why);
    if (c->resumed) { /* inside a response already: the client sees its stream end early */
        client_close_when_flushed(c);
        return;
    }
    MCPGW_BUMP(&c->px->st->rejected[reject_of(status)], 1);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                        "%sConnection: close\r\n\r\n%s\n",
                        status, mcpgw_http_reason(status), strlen(why) + 1,
                        status == 503 ? "Retry-After: 1\r\n" : "", why);
    client_close_when_flushed(c);
}

/* Answer with a JSON-RPC error body (MCP clients parse it) and close. May free c. */
static void client_fail_json(struct client *c, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[512];
    int n;
    log_debug("client fd %d: %d %s", (int)bufferevent_getfd(c->bev), status, why);
    if (c->resumed) { /* inside a response already: the client sees its stream end early */
        client_close_when_flushed(c);
        return;
    }
    MCPGW_BUMP(&c->px->st->rejected[reject_of(status)], 1);
    n = snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,\"message\":\"%s\"}}",
                 why);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)strlen(body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                        "%sConnection: close\r\n\r\n",
                        status, mcpgw_http_reason(status), n,
                        status == 503 ? "Retry-After: 1\r\n" : "");
    evbuffer_add(out, body, (size_t)n);
    client_close_when_flushed(c);
}

/* ---- requests ---- */

static void peer_of(struct client *c, char *ip, size_t len, struct mcpgw_bal_peer *peer)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    peer->ip = ip;
    peer->ipv6 = 0;
    peer->tls = c->px->tls != NULL;
    snprintf(ip, len, "unknown");
    if (c->v4) {
        inet_ntop(AF_INET, &c->ip4, ip, (socklen_t)len);
        return;
    }
    if (getpeername((int)bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, (socklen_t)len);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, (socklen_t)len);
        peer->ipv6 = 1;
    }
}

/* Find a node for rq and an upstream connection to it. On success the request state moves into
 * the returned upstream (rq is zeroed). On failure returns NULL with a sentence in why, naming
 * cause (the last connect error, may be NULL) if nothing newer failed. */
static struct upstream *route_request(struct mcpgw_bal_proxy *px, struct req_state *rq,
                                      const char *cause, char *why, size_t whylen)
{
    const char *last = cause;
    char lastbuf[96];
    refresh_nodes(px);
    for (;;) {
        struct upstream *u;
        int slot = pick(px, rq), err = 0;
        if (slot < 0) {
            no_node_cause(px, last, why, whylen);
            return NULL;
        }
        rq->tried |= 1ull << slot;
        u = upstream_get(px, slot, rq->mux, &err);
        if (!u) {
            snprintf(lastbuf, sizeof(lastbuf), "%s", strerror(err));
            last = lastbuf;
            if (err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS) {
                snprintf(why, whylen, "the balancer is out of connections (%s)", lastbuf);
                return NULL;
            }
            mark_down(px, slot, lastbuf);
            if (err == ECONNREFUSED)
                node_refused(px, slot);
            MCPGW_BUMP(&nstats(px, slot)->retries, 1);
            continue;
        }
        u->rq = *rq;
        memset(rq, 0, sizeof(*rq));
        MCPGW_BUMP(&nstats(px, slot)->requests, 1);
        return u;
    }
}

/* Nothing of u's request reached its node: send the same bytes to the next candidate. */
static void move_request(struct upstream *u, const char *cause)
{
    struct mcpgw_bal_proxy *px = u->px;
    struct client *c = u->c;
    struct upstream *nu;
    char why[256];

    nu = route_request(px, &u->rq, cause, why, sizeof(why));
    if (!nu) {
        upstream_discard(u);
        client_fail_json(c, 503, why);
        return;
    }
    log_debug("request moved from node %s to %s: %s", px->nodes[u->slot].id, px->nodes[nu->slot].id,
              cause);
    nu->c = c;
    c->up = nu;
    /* A resumed stream's request stays one: its answer continues the client's body. */
    nu->resume = u->resume;
    u->resume = NULL;
    nu->resuming = u->resuming;
    nu->resumes = u->resumes;
    if (up_send_head(nu, u->muxed ? u->reqhead : bufferevent_get_output(u->bev), why, sizeof(why)) <
        0) {
        upstream_discard(u);
        client_fail_json(c, 502, why);
        return;
    }
    upstream_discard(u);
    if (c->paused && !nu->muxed)
        bufferevent_setwatermark(nu->bev, EV_WRITE, px->cfg.buffer_size / 2, 0);
}

/* u's node failed under a session's event stream: open it again at the node the session now
 * routes to, asking for the events after the last one its client has whole (Last-Event-ID), and
 * splice the new body onto the client's (resumed_head). The client sees no break: that saves
 * every client of a dead node a reconnection, and the balancer an accept and a request each.
 * Returns 0 when u was replaced (u is freed; the client may be too, if the new node could not be
 * asked), -1 when the stream cannot be carried on (nothing changed: the caller ends it). */
static int resume_stream(struct upstream *u, const char *cause)
{
    struct mcpgw_bal_proxy *px = u->px;
    struct client *c = u->c;
    struct upstream *nu;
    struct req_state rq;
    struct evbuffer *head;
    char why[256];
    int from = u->slot;

    if (!c || !u->resume || !px->cfg.stream_resume || u->paused || c->state != C_FORWARD ||
        u->resumes >= RESUME_TRIES || !mcpgw_bal_resume_ready(u->resume) ||
        !mcpgw_chunked_between(&u->rq.resp_dec))
        return -1;
    rq = u->rq;
    u->rq.sid = NULL; /* now rq's */
    rq.tried |= 1ull << from;
    rq.start_us = mcpgw_now_us();
    rq.rstate = R_HEAD;
    rq.rmode = R_NONE;
    rq.scanned = 0;
    rq.resp_left = 0;
    memset(&rq.resp_dec, 0, sizeof(rq.resp_dec));
    nu = route_request(px, &rq, cause, why, sizeof(why));
    if (!nu) {
        free(rq.sid);
        log_debug("a stream of node %s cannot move: %s", px->nodes[from].id, why);
        return -1;
    }
    nu->c = c;
    c->up = nu;
    c->resumed = 1;
    nu->resume = u->resume;
    u->resume = NULL;
    nu->resuming = 1;
    nu->resumes = (uint8_t)(u->resumes + 1);
    upstream_discard(u);
    head = evbuffer_new();
    if (!head) {
        client_close_when_flushed(c);
        return 0;
    }
    mcpgw_bal_resume_head(nu->resume, head);
    log_debug("stream of session %.*s moves from node %s to %s after event %s: %s",
              (int)nu->rq.sidlen, nu->rq.sid ? nu->rq.sid : "", px->nodes[from].id,
              px->nodes[nu->slot].id, mcpgw_bal_resume_last_id(nu->resume), cause);
    if (up_send_head(nu, head, why, sizeof(why)) < 0)
        client_close_when_flushed(c);
    evbuffer_free(head);
    return 0;
}

/* The connect to u's node failed before any byte reached it: send the same bytes to the next
 * candidate. */
static void retry(struct upstream *u, const char *cause, int refused)
{
    struct mcpgw_bal_proxy *px = u->px;

    mark_down(px, u->slot, cause);
    if (refused)
        node_refused(px, u->slot);
    MCPGW_BUMP(&nstats(px, u->slot)->retries, 1);
    move_request(u, cause);
}

static void count_chunk(void *arg, const char *data, size_t len)
{
    *(uint64_t *)arg += len;
}

static void feed_resume(void *arg, const char *data, size_t len)
{
    mcpgw_bal_resume_feed(arg, data, len);
}

/* Move chunked bytes from src to dst, up to the end of the message. Returns 0, or -1 when the
 * encoding is invalid. */
static int relay_chunked(struct mcpgw_chunked *d, struct evbuffer *src, struct evbuffer *dst,
                         mcpgw_chunk_data_fn on_data, void *arg)
{
    while (!d->done && evbuffer_get_length(src)) {
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(src, -1, NULL, v, 16);
        size_t used = 0;
        if (n > 16)
            n = 16;
        for (int i = 0; i < n && !d->done; i++) {
            ssize_t k = mcpgw_chunked_feed(d, v[i].iov_base, v[i].iov_len, on_data, arg);
            if (k < 0)
                return -1;
            used += (size_t)k;
        }
        evbuffer_remove_buffer(src, dst, used);
    }
    return 0;
}

/* Pause reading from src while dst's output is over the high-water mark; the write callback of
 * dst resumes it once half of it is sent. */
static int over_high(struct mcpgw_bal_proxy *px, struct bufferevent *dst)
{
    return evbuffer_get_length(bufferevent_get_output(dst)) >= px->cfg.buffer_size;
}

static void relay_request_body(struct upstream *u)
{
    struct client *c = u->c;
    struct mcpgw_bal_proxy *px = c->px;
    struct evbuffer *in = bufferevent_get_input(c->bev), *out = bufferevent_get_output(u->bev);
    size_t before = evbuffer_get_length(in);

    if (u->rq.req_done)
        return;
    if (u->rq.req_chunked) {
        if (relay_chunked(&u->rq.req_dec, in, out, count_chunk, &u->rq.req_body) < 0) {
            if (u->rq.rstate == R_HEAD)
                client_fail(c, 400, "invalid chunked encoding");
            else
                client_close_when_flushed(c);
            return;
        }
        if (u->rq.req_body > px->cfg.max_body_size) {
            if (u->rq.rstate == R_HEAD)
                client_fail(c, 413, "request body over the limit");
            else
                client_close_when_flushed(c);
            return;
        }
        u->rq.req_done = u->rq.req_dec.done;
    } else {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < (uint64_t)u->rq.req_left ? avail : (size_t)u->rq.req_left;
        if (n)
            evbuffer_remove_buffer(in, out, n);
        u->rq.req_left -= (int64_t)n;
        u->rq.req_done = u->rq.req_left == 0;
    }
    if (u->rq.req_done) {
        if (c->list == L_BODY)
            list_remove(c);
    } else if (evbuffer_get_length(in) != before || c->list != L_BODY) {
        list_append(c, L_BODY); /* progress: the body timeout starts over */
    }
    push(u->bev);
    if (!u->rq.req_done && over_high(px, u->bev) && !c->paused) {
        c->paused = 1;
        client_read_off(c);
        bufferevent_setwatermark(u->bev, EV_WRITE, px->cfg.buffer_size / 2, 0);
    }
}

static int count_host(const struct mcpgw_http_head *h)
{
    int n = 0;
    for (int i = 0; i < h->nheaders; i++)
        n += mcpgw_strieq(h->headers[i].name, h->headers[i].name_len, "host");
    return n;
}

/* A complete, valid head is at the start of c's input: route it and start relaying. */
static void start_request(struct client *c, const struct mcpgw_http_head *h)
{
    struct mcpgw_bal_proxy *px = c->px;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const struct mcpgw_http_header *sh = mcpgw_http_find(h, "mcp-session-id");
    struct req_state rq;
    struct upstream *u;
    struct mcpgw_bal_peer peer;
    char why[256], ip[INET6_ADDRSTRLEN];
    const char *sid = NULL;
    size_t sidlen = 0;

    memset(&rq, 0, sizeof(rq));
    if (sh && sh->value_len) {
        sid = sh->value;
        sidlen = sh->value_len;
    } else {
        /* Legacy HTTP+SSE transport: POST /messages?sessionId=... */
        const char *q = memchr(h->target, '?', h->target_len);
        size_t plen = q ? (size_t)(q - h->target) : h->target_len;
        if (q && plen == 9 && memcmp(h->target, "/messages", 9) == 0)
            mcpgw_route_query_param(q + 1, h->target_len - plen - 1, "sessionId", &sid, &sidlen);
    }
    if (sid) {
        rq.sidlen = (uint16_t)(sidlen < SID_MAX ? sidlen : SID_MAX);
        rq.sid = xstrndup(sid, rq.sidlen);
    }
    rq.start_us = mcpgw_now_us();
    rq.req_chunked = h->chunked;
    rq.req_left = h->chunked ? 0 : (h->content_length > 0 ? h->content_length : 0);
    rq.upgrade_req = h->upgrade;
    rq.head_req = h->method == MCPGW_HTTP_HEAD;
    rq.rstate = R_HEAD;
    /* A session's GET stream (no body, no upgrade) may share the node's mux. */
    rq.mux =
        sid && h->method == MCPGW_HTTP_GET && !h->upgrade && !h->chunked && h->content_length <= 0;

    u = route_request(px, &rq, NULL, why, sizeof(why));
    if (!u) {
        free(rq.sid);
        client_fail_json(c, 503, why);
        return;
    }
    u->c = c;
    c->up = u;
    c->state = C_FORWARD;
    list_remove(c);
    peer_of(c, ip, sizeof(ip), &peer);
    if (u->muxed) {
        u->reqhead = evbuffer_new();
        if (u->reqhead)
            mcpgw_bal_rewrite_request(h, &peer, u->reqhead);
        evbuffer_drain(in, h->head_len);
        u->rq.req_done = 1;
        if (up_send_head(u, u->reqhead, why, sizeof(why)) < 0)
            client_fail_json(c, 502, why);
        return;
    }
    mcpgw_bal_rewrite_request(h, &peer, bufferevent_get_output(u->bev));
    evbuffer_drain(in, h->head_len);
    if (!u->rq.req_chunked && u->rq.req_left == 0) {
        u->rq.req_done = 1;
        push(u->bev);
    } else {
        relay_request_body(u);
    }
}

/* Read a request head from c's input (state C_HEAD). */
static void client_process(struct client *c)
{
    struct mcpgw_bal_proxy *px = c->px;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t avail = evbuffer_get_length(in), lim = px->cfg.max_header_size, n, end, from;
    const char *data, *why = NULL;
    struct mcpgw_http_head h;
    int rc;

    if (avail == 0)
        return;
    if (c->list != L_HEAD)
        list_append(c, L_HEAD); /* the first byte of a head starts the header timeout */
    n = avail < lim ? avail : lim;
    data = (const char *)evbuffer_pullup(in, (ssize_t)n);
    from = c->scanned > 3 ? c->scanned - 3 : 0;
    end = mcpgw_http_head_end(data + from, n - from);
    if (!end) {
        if (avail >= lim)
            client_fail(c, 431, "request head over the limit");
        else
            c->scanned = (uint32_t)n;
        return;
    }
    end += from;
    c->scanned = 0;
    rc = mcpgw_http_parse_head(data, end, 0, &h, &why);
    switch (rc) {
    case MCPGW_HTTP_OK:
        break;
    case MCPGW_HTTP_TOO_MANY:
        client_fail(c, 431, why);
        return;
    case MCPGW_HTTP_UNSUPPORTED:
        client_fail(c, 501, why);
        return;
    case MCPGW_HTTP_BAD_VERSION:
        client_fail(c, 505, why);
        return;
    default:
        client_fail(c, 400, why ? why : "malformed request");
        return;
    }
    if (h.nheaders > MCPGW_HTTP_MAX_HEADERS - MCPGW_BAL_REQ_ADDED) {
        client_fail(c, 431, "too many header fields");
        return;
    }
    if (h.minor_version == 1 && count_host(&h) != 1) {
        client_fail(c, 400, "an HTTP/1.1 request needs exactly one Host header");
        return;
    }
    if (h.method_len == 7 && memcmp(h.method_str, "CONNECT", 7) == 0) {
        client_fail(c, 405, "CONNECT is not supported");
        return;
    }
    if (h.content_length > 0 && (uint64_t)h.content_length > px->cfg.max_body_size) {
        client_fail(c, 413, "request body over the limit");
        return;
    }
    c->keep_alive = h.keep_alive && !px->draining;
    c->http10 = h.minor_version == 0;
    start_request(c, &h);
}

/* ---- responses ---- */

/* The response in flight is complete: pool the upstream, then serve the client's next request
 * or close it. */
static void response_done(struct upstream *u)
{
    struct client *c = u->c;
    int keep_up = !u->muxed && u->rq.resp_keep && u->rq.req_done &&
                  evbuffer_get_length(bufferevent_get_input(u->bev)) == 0;
    int keep_client = c->keep_alive && u->rq.req_done && !c->px->draining;

    c->up = NULL;
    c->resumed = 0;
    if (keep_up)
        pool_put(u);
    else
        upstream_discard(u);
    if (c->send_timeout) {
        c->send_timeout = 0;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    }
    if (!keep_client) {
        client_close_when_flushed(c);
        return;
    }
    c->state = C_HEAD;
    c->paused = 0;
    client_read_on(c);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        client_process(c);
    else
        list_append(c, L_IDLE);
}

static void dechunk_out(void *arg, const char *data, size_t len)
{
    evbuffer_add(arg, data, len);
}

static int is_event_stream(const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *ct = mcpgw_http_find(h, "content-type");
    return ct && ct->value_len >= 17 && strncasecmp(ct->value, "text/event-stream", 17) == 0;
}

/* The head answering a stream re-opened at another node (resume_stream), end bytes of u's
 * input. The client has its head already: a 200 event stream goes on as the same body, after a
 * comment that marks the seam; anything else ends the client's stream early (no final chunk)
 * and the client resumes it itself. Returns as response_head. */
static int resumed_head(struct upstream *u, const struct mcpgw_http_head *h, size_t end)
{
    struct client *c = u->c;
    struct mcpgw_bal_proxy *px = u->px;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int ok = h->status == 200 && h->chunked && is_event_stream(h);

    evbuffer_drain(up_in(u), end);
    if (!ok) {
        log_info("node %s answered a resumed stream with %d: its client resumes it itself",
                 px->nodes[u->slot].id, h->status);
        client_close_when_flushed(c);
        return -1;
    }
    u->resuming = 0;
    /* Answered: the limit is on moves in a row without an answer, and a node that refused an
     * earlier move is a candidate again for the next one. */
    u->resumes = 0;
    u->rq.tried = 0;
    u->rq.rstate = R_BODY;
    u->rq.rmode = R_CHUNKED;
    memset(&u->rq.resp_dec, 0, sizeof(u->rq.resp_dec));
    mcpgw_bal_resume_seam(u->resume);
    evbuffer_add_printf(out, "%zx\r\n%s\r\n", sizeof(MCPGW_BAL_RESUME_MARK) - 1,
                        MCPGW_BAL_RESUME_MARK);
    MCPGW_BUMP(&nstats(px, u->slot)->resumed, 1);
    if (u->reqhead) {
        evbuffer_free(u->reqhead);
        u->reqhead = NULL;
    }
    if (!u->muxed) {
        bufferevent_set_timeouts(u->bev, NULL, NULL);
        up_read_on(u, 0);
    }
    return 1;
}

/* Parse the response head in u's input. Returns 1 when the body phase starts, 0 when more
 * bytes are needed, -1 when the exchange ended (the client may be gone). */
static int response_head(struct upstream *u)
{
    struct client *c = u->c;
    struct mcpgw_bal_proxy *px = u->px;
    struct evbuffer *in = up_in(u), *out = bufferevent_get_output(c->bev);

    for (;;) {
        size_t avail = evbuffer_get_length(in), n, end, from;
        const char *data, *why = NULL;
        struct mcpgw_http_head h;
        unsigned flags = 0;
        int close_client;
        char msg[160];

        if (!avail)
            return 0;
        n = avail < RESP_HEAD_MAX ? avail : RESP_HEAD_MAX;
        data = (const char *)evbuffer_pullup(in, (ssize_t)n);
        from = u->rq.scanned > 3 ? u->rq.scanned - 3 : 0;
        end = mcpgw_http_head_end(data + from, n - from);
        if (!end) {
            if (avail < RESP_HEAD_MAX) {
                u->rq.scanned = (uint32_t)n;
                return 0;
            }
            MCPGW_BUMP(&nstats(px, u->slot)->errors, 1);
            client_fail_json(c, 502, "the node's response head is over the limit");
            return -1;
        }
        end += from;
        u->rq.scanned = 0;
        if (mcpgw_http_parse_head(data, end, 1, &h, &why) != MCPGW_HTTP_OK) {
            MCPGW_BUMP(&nstats(px, u->slot)->errors, 1);
            snprintf(msg, sizeof(msg), "malformed response from node %s: %s", px->nodes[u->slot].id,
                     why ? why : "?");
            client_fail_json(c, 502, msg);
            return -1;
        }
        if (h.nheaders > MCPGW_HTTP_MAX_HEADERS - MCPGW_BAL_RESP_ADDED) {
            MCPGW_BUMP(&nstats(px, u->slot)->errors, 1);
            client_fail_json(c, 502, "the node's response has too many header fields");
            return -1;
        }
        if (h.status < 200 && h.status != 101) {
            /* Interim response (100 Continue, 103): pass it on to HTTP/1.1 clients (not inside
             * the body of a resumed stream). */
            if (!c->http10 && !u->resuming)
                mcpgw_bal_rewrite_response(&h, data, 0, out);
            evbuffer_drain(in, end);
            if (!px->tls)
                push(c->bev);
            continue;
        }
        mcpgw_hist_observe(&nstats(px, u->slot)->latency,
                           (double)(mcpgw_now_us() - u->rq.start_us) / 1e6);
        MCPGW_BUMP(&nstats(px, u->slot)->responses[h.status / 100 - 1], 1);
        if (u->resuming)
            return resumed_head(u, &h, end);
        if (h.status == 101) {
            if (!u->rq.upgrade_req) {
                MCPGW_BUMP(&nstats(px, u->slot)->errors, 1);
                client_fail_json(c, 502, "the node switched protocols without an Upgrade");
                return -1;
            }
            mcpgw_bal_rewrite_response(&h, data, 0, out);
            evbuffer_drain(in, end);
            u->rq.rmode = R_TUNNEL;
            u->rq.rstate = R_BODY;
            c->state = C_TUNNEL;
            list_remove(c);
            evbuffer_add_buffer(bufferevent_get_output(u->bev), bufferevent_get_input(c->bev));
            bufferevent_set_timeouts(u->bev, NULL, NULL);
            up_read_on(u, 0);
            uncount(u); /* a tunnel is not load the node can shed */
            return 1;
        }
        if (u->rq.head_req || h.status == 204 || h.status == 304)
            u->rq.rmode = R_NONE;
        else if (h.chunked)
            u->rq.rmode = R_CHUNKED;
        else if (h.content_length >= 0)
            u->rq.rmode = R_LENGTH;
        else
            u->rq.rmode = R_EOF;
        u->rq.resp_left = h.content_length;
        u->rq.resp_keep = h.keep_alive && u->rq.rmode != R_EOF;
        u->rq.dechunk = c->http10 && u->rq.rmode == R_CHUNKED;
        close_client = !c->keep_alive || px->draining || u->rq.rmode == R_EOF || u->rq.dechunk ||
                       !u->rq.req_done;
        if (close_client) {
            flags |= MCPGW_BAL_RESP_CLOSE;
            c->keep_alive = 0;
        } else if (c->http10) {
            flags |= MCPGW_BAL_RESP_KEEPALIVE10;
        }
        if (u->rq.dechunk)
            flags |= MCPGW_BAL_RESP_DECHUNK;
        /* A session's event stream over the mux: keep what it takes to carry it on elsewhere
         * (resume_stream) before the head goes. */
        if (u->muxed && u->reqhead && px->cfg.stream_resume && u->rq.mux && h.status == 200 &&
            u->rq.rmode == R_CHUNKED && !u->rq.dechunk && is_event_stream(&h))
            u->resume = mcpgw_bal_resume_new((const char *)evbuffer_pullup(u->reqhead, -1),
                                             evbuffer_get_length(u->reqhead));
        mcpgw_bal_rewrite_response(&h, data, flags, out);
        evbuffer_drain(in, end);
        u->rq.rstate = R_BODY;
        if (u->muxed) {
            if (u->reqhead) { /* answered: nothing left to retry */
                evbuffer_free(u->reqhead);
                u->reqhead = NULL;
            }
            return 1;
        }
        /* Streams may be quiet for long: no read timeout once the head is here. */
        bufferevent_set_timeouts(u->bev, NULL, NULL);
        up_read_on(u, 0);
        return 1;
    }
}

static void pause_upstream(struct upstream *u)
{
    struct client *c = u->c;
    struct mcpgw_bal_proxy *px = u->px;
    if (u->paused || !over_high(px, c->bev))
        return;
    u->paused = 1;
    if (u->muxed)
        mcpgw_mux_stream_pause(u->ms);
    else
        up_read_off(u);
    bufferevent_setwatermark(c->bev, EV_WRITE, px->cfg.buffer_size / 2, 0);
    if (!c->send_timeout) {
        struct timeval st = tv_ms(px->cfg.send_timeout_ms);
        c->send_timeout = 1;
        bufferevent_set_timeouts(c->bev, NULL, &st);
    }
}

/* Relay response bytes (state R_BODY) from u's input to its client. */
static void relay_response(struct upstream *u)
{
    struct client *c = u->c;
    struct evbuffer *in = up_in(u), *out = bufferevent_get_output(c->bev);
    size_t avail = evbuffer_get_length(in);
    int done = 0;

    switch (u->rq.rmode) {
    case R_NONE:
        done = 1;
        break;
    case R_LENGTH: {
        size_t n = avail < (uint64_t)u->rq.resp_left ? avail : (size_t)u->rq.resp_left;
        if (n)
            evbuffer_remove_buffer(in, out, n);
        u->rq.resp_left -= (int64_t)n;
        done = u->rq.resp_left == 0;
        break;
    }
    case R_CHUNKED: {
        int bad;
        if (u->rq.dechunk) {
            ssize_t k = 0;
            bad = 0;
            while (!u->rq.resp_dec.done && evbuffer_get_length(in)) {
                size_t len = evbuffer_get_contiguous_space(in);
                const char *p = (const char *)evbuffer_pullup(in, (ssize_t)len);
                k = mcpgw_chunked_feed(&u->rq.resp_dec, p, len, dechunk_out, out);
                if (k < 0) {
                    bad = 1;
                    break;
                }
                evbuffer_drain(in, (size_t)k);
            }
        } else {
            bad = relay_chunked(&u->rq.resp_dec, in, out, u->resume ? feed_resume : NULL,
                                u->resume) < 0;
        }
        if (bad) {
            MCPGW_BUMP(&nstats(u->px, u->slot)->errors, 1);
            log_warn("node %s sent an invalid chunked body", u->px->nodes[u->slot].id);
            client_close_when_flushed(c);
            return;
        }
        done = u->rq.resp_dec.done;
        break;
    }
    case R_EOF:
    case R_TUNNEL:
        evbuffer_add_buffer(out, in);
        break;
    }
    if (!c->px->tls)
        push(c->bev);
    if (done) {
        response_done(u);
        return;
    }
    pause_upstream(u);
}

/* ---- upstream callbacks ---- */

static void on_up_read(struct bufferevent *bev, void *arg)
{
    struct upstream *u = arg;
    if (!u->c) {
        /* Bytes on an idle pooled connection: nothing may come there. */
        upstream_discard(u);
        return;
    }
    if (u->rq.rstate == R_HEAD && response_head(u) <= 0)
        return;
    relay_response(u);
}

/* An upstream socket is readable (or its response timeout expired): one readv, then the same
 * path as a bufferevent read. */
static void on_up_readable(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *u = arg;
    struct evbuffer *in = bufferevent_get_input(u->bev);
    ssize_t r;
    if (what & EV_TIMEOUT) {
        on_up_event(u->bev, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, u);
        return;
    }
    r = read_some(in, fd, READ_CHUNK);
    if (r == 0) {
        on_up_event(u->bev, BEV_EVENT_EOF | BEV_EVENT_READING, u);
        return;
    }
    if (r < 0) {
        if (!would_block(errno))
            on_up_event(u->bev, BEV_EVENT_ERROR | BEV_EVENT_READING, u);
        return;
    }
    on_up_read(u->bev, u);
}

static void on_up_write(struct bufferevent *bev, void *arg)
{
    struct upstream *u = arg;
    struct client *c = u->c;
    write_idle(bev);
    if (!c || !c->paused)
        return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > u->px->cfg.buffer_size / 2)
        return;
    c->paused = 0;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    client_read_on(c);
    if (c->state == C_TUNNEL) {
        evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(c->bev));
        push(bev);
    } else {
        relay_request_body(u);
    }
}

static void on_up_event(struct bufferevent *bev, short what, void *arg)
{
    struct upstream *u = arg;
    struct mcpgw_bal_proxy *px = u->px;
    struct client *c = u->c;
    char why[160];
    int err = EVUTIL_SOCKET_ERROR();

    if (what & BEV_EVENT_CONNECTED) {
        struct timeval rt = tv_ms(px->cfg.response_timeout_ms);
        u->connected = 1;
        bufferevent_set_timeouts(bev, NULL, &rt);
        return;
    }
    if (!c) { /* pooled: the node closed it */
        upstream_discard(u);
        return;
    }
    if (!u->connected) {
        /* Nothing reached the node: the next candidate gets the request. */
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "connect timed out after %u ms", px->cfg.connect_timeout_ms);
        else
            snprintf(why, sizeof(why), "%s", strerror(err ? err : ECONNREFUSED));
        retry(u, why, !(what & BEV_EVENT_TIMEOUT) && err == ECONNREFUSED);
        return;
    }
    if (u->rq.rmode == R_TUNNEL) {
        client_close_when_flushed(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && u->rq.rstate == R_BODY && u->rq.rmode == R_EOF) {
        relay_response(u);
        if (c->up == u) {
            c->keep_alive = 0;
            response_done(u);
        }
        return;
    }
    MCPGW_BUMP(&nstats(px, u->slot)->errors, 1);
    if (u->rq.rstate == R_HEAD) {
        if (what & BEV_EVENT_TIMEOUT) {
            snprintf(why, sizeof(why), "node %s did not answer within %u ms", px->nodes[u->slot].id,
                     px->cfg.response_timeout_ms);
            client_fail_json(c, 504, why);
            return;
        }
        if (err == ECONNRESET || err == EPIPE)
            mark_down(px, u->slot, strerror(err));
        snprintf(why, sizeof(why), "node %s closed the connection before answering (%s)",
                 px->nodes[u->slot].id, (what & BEV_EVENT_EOF) ? "end of stream" : strerror(err));
        client_fail_json(c, 502, why);
        return;
    }
    /* Mid-response: the client sees the stream end early (no final chunk). */
    log_debug("node %s dropped a response in flight", px->nodes[u->slot].id);
    client_close_when_flushed(c);
}

/* ---- muxed stream callbacks ---- */

static void on_mux_input(void *owner)
{
    struct upstream *u = owner;
    if (u->paused)
        return; /* the client's output drains first; on_client_write resumes */
    if (u->rq.rstate == R_HEAD && response_head(u) <= 0)
        return;
    relay_response(u);
}

static void on_mux_end(void *owner, enum mcpgw_mux_end how, const char *why)
{
    struct upstream *u = owner;
    struct mcpgw_bal_proxy *px = u->px;
    struct client *c = u->c;
    char msg[256];

    u->ms = NULL;
    if (how == MCPGW_MUX_UNSENT) {
        if (px->nodes[u->slot].no_mux_ms) /* same node, over a connection of its own */
            u->rq.tried &= ~(1ull << u->slot);
        move_request(u, why);
        return;
    }
    MCPGW_BUMP(&nstats(px, u->slot)->errors, 1);
    /* Only a failed node's streams move: a live node that resets one stream (a newer stream of
     * the session replaced it, say) keeps the session, and the client decides. */
    if ((u->rq.rstate != R_HEAD || u->resuming) &&
        (px->nodes[u->slot].passive || !MCPGW_LOAD(&px->sh->slots[u->slot].up)) &&
        resume_stream(u, why) == 0)
        return;
    if (u->rq.rstate != R_HEAD || u->resuming) {
        /* Mid-response: the client sees the stream end early (no final chunk). */
        log_debug("node %s dropped a stream in flight: %s", px->nodes[u->slot].id, why);
        client_close_when_flushed(c);
        return;
    }
    snprintf(msg, sizeof(msg), "node %s %s: %s", px->nodes[u->slot].id,
             how == MCPGW_MUX_TIMEOUT ? "did not answer" : "ended the stream before answering",
             why);
    client_fail_json(c, how == MCPGW_MUX_TIMEOUT ? 504 : 502, msg);
}

/* A mux's connection failed: like a failed connect or a reset of a connection of its own,
 * except that every stream on it is affected at once. Streams the node never saw move to the
 * next candidate; the others' clients see their stream end and resume it elsewhere. */
static void on_mux_failed(void *arg, struct mcpgw_mux *m, int connected, int err, const char *why)
{
    struct mcpgw_bal_proxy *px = arg;
    int slot = -1;
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++)
        if (px->nodes[i].mux == m || px->nodes[i].old_mux == m)
            slot = i;
    if (slot < 0) {
        mcpgw_mux_free(m);
        return;
    }
    if (px->nodes[slot].old_mux == m) {
        /* The retired one: its own streams end, the current one is not affected. */
        px->nodes[slot].old_mux = NULL;
        mux_release(px, slot, m);
        return;
    }
    if (mcpgw_mux_not_h2(m)) {
        /* An older node, or something else that only speaks HTTP/1.1: not a failure. */
        log_warn("node %s (%s) does not speak HTTP/2 (%s): its streams take a connection each",
                 px->nodes[slot].id, px->nodes[slot].addr, why);
        px->nodes[slot].no_mux_ms = mcpgw_now_ms();
        px->nodes[slot].mux = NULL;
        mux_release(px, slot, m);
        return;
    }
    /* A node ends its streams before it closes the connection (drain, idle): a close with
     * streams open means it is going away, like a reset. */
    if (!connected || err == ECONNRESET || err == EPIPE || mcpgw_mux_streams(m))
        mark_down(px, slot, why);
    else
        log_info("node %s (%s) closed the stream connection: %s (%u streams)", px->nodes[slot].id,
                 px->nodes[slot].addr, why, mcpgw_mux_streams(m));
    px->nodes[slot].mux = NULL;
    mux_release(px, slot, m);
    if (!connected && err == ECONNREFUSED)
        node_refused(px, slot);
}

/* ---- client callbacks ---- */

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    switch (c->state) {
    case C_HEAD:
        client_process(c);
        break;
    case C_FORWARD:
        if (c->up && !c->up->rq.req_done)
            relay_request_body(c->up);
        /* Else: a pipelined request waits in the input (bounded by the read watermark). */
        break;
    case C_TUNNEL:
        if (c->up) {
            evbuffer_add_buffer(bufferevent_get_output(c->up->bev), bufferevent_get_input(bev));
            push(c->up->bev);
            if (!c->paused && over_high(c->px, c->up->bev)) {
                c->paused = 1;
                client_read_off(c);
                bufferevent_setwatermark(c->up->bev, EV_WRITE, c->px->cfg.buffer_size / 2, 0);
            }
        }
        break;
    case C_CLOSING:
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        if (c->list == L_LINGER && !unread(c))
            client_free(c);
        break;
    }
}

/* A plain client socket is readable: one readv, then the same path as a bufferevent read. The
 * input holds at most one head's worth while a request waits (like a read watermark). */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in), lim = c->px->cfg.max_header_size;
    ssize_t r;
    if (c->state == C_FORWARD || c->state == C_TUNNEL) {
        /* Bodies and tunnels move on at once; what may wait is a pipelined head. */
        if (c->state == C_TUNNEL || (c->up && !c->up->rq.req_done))
            lim = have + READ_CHUNK;
    }
    if (have >= lim) {
        client_read_off(c); /* resumed when the request in flight completes */
        return;
    }
    r = read_some(in, fd, lim - have);
    if (r == 0) {
        on_client_event(c->bev, BEV_EVENT_EOF | BEV_EVENT_READING, c);
        return;
    }
    if (r < 0) {
        if (!would_block(errno))
            on_client_event(c->bev, BEV_EVENT_ERROR | BEV_EVENT_READING, c);
        return;
    }
    on_client_read(c->bev, c);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct upstream *u = c->up;
    if (!c->px->tls)
        write_idle(bev);
    if (c->state == C_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            client_linger(c);
        return;
    }
    if (!u || !u->paused ||
        evbuffer_get_length(bufferevent_get_output(bev)) > c->px->cfg.buffer_size / 2)
        return;
    u->paused = 0;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (c->send_timeout) {
        c->send_timeout = 0;
        bufferevent_set_timeouts(bev, NULL, NULL);
    }
    if (u->muxed)
        mcpgw_mux_stream_resume(u->ms);
    else
        up_read_on(u, 0);
    if (evbuffer_get_length(up_in(u)))
        relay_response(u);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    if (what & BEV_EVENT_CONNECTED)
        return; /* the TLS handshake completed */
    if (what & BEV_EVENT_TIMEOUT)
        log_debug("client fd %d dropped: it read nothing for %u ms", (int)bufferevent_getfd(bev),
                  c->px->cfg.send_timeout_ms);
    /* EOF, error or send timeout: the conversation is over (SSE needs both directions, so a
     * half-close is a close too). */
    client_free(c);
}

static void client_free(struct client *c)
{
    struct mcpgw_bal_proxy *px = c->px;
    if (c->up)
        upstream_discard(c->up);
    if (!px->tls) {
        event_del(&c->rev);
        /* libevent closes a freed bufferevent's socket from its active queue, behind every
         * event already due: on a busy loop, long after. The client must learn now (a stream
         * cut because its node died reconnects on this FIN). */
        shutdown((int)bufferevent_getfd(c->bev), SHUT_WR);
    }
    list_remove(c);
    bufferevent_free(c->bev);
    free(c);
    px->nclients--;
    MCPGW_STORE(&px->st->clients, (int64_t)px->nclients);
    if (px->draining && px->nclients == 0 && px->drained)
        event_active(px->drained_ev, EV_TIMEOUT, 1);
}

/* ---- accepting ---- */

static void on_accept(struct mcpgw_bal_proxy *px, evutil_socket_t fd, const struct sockaddr *sa)
{
    struct bufferevent *bev;
    struct client *c;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mcpgw_tcp_keepalive(fd, (px->cfg.tcp_keepalive_ms + 999) / 1000);
    if (px->tls) {
        SSL *ssl = SSL_new(px->tls);
        if (!ssl) {
            close(fd);
            return;
        }
        bev = bufferevent_openssl_socket_new(px->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        else
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) {
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->bev = bev;
    c->px = px;
    if (sa->sa_family == AF_INET) {
        c->v4 = 1;
        c->ip4 = ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
    }
    px->nclients++;
    MCPGW_STORE(&px->st->clients, (int64_t)px->nclients);
    MCPGW_BUMP(&px->st->accepted, 1);
    bufferevent_setcb(bev, on_client_read, on_client_write, on_client_event, c);
    if (px->tls) {
        /* Bound what a client can make us hold: one head (bodies are relayed as they come). */
        bufferevent_setwatermark(bev, EV_READ, 0, px->cfg.max_header_size);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    } else {
        /* Plain sockets: our own reads (rev) and writes through push(). */
        bufferevent_disable(bev, EV_READ | EV_WRITE);
        event_assign(&c->rev, px->base, fd, EV_READ | EV_PERSIST, on_client_readable, c);
        event_add(&c->rev, NULL);
    }
    if (px->nclients > px->cfg.max_clients) {
        client_fail(c, 503, "too many connections");
        return;
    }
    c->state = C_HEAD;
    list_append(c, L_HEAD);
    /* The listener defers accepts until the first bytes are in (main.c): read them now rather
     * than a turn of the loop later. */
    if (!px->tls)
        on_client_readable(fd, EV_READ, c);
}

static void lev_priority(struct mcpgw_bal_proxy *px, int demoted)
{
    if (!px->lev || px->lev_demoted == demoted || event_base_get_npriorities(px->base) < 2)
        return;
    event_del(px->lev);
    event_priority_set(px->lev, demoted ? event_base_get_npriorities(px->base) / 2 : 0);
    if (!px->lev_paused)
        event_add(px->lev, NULL);
    px->lev_demoted = (uint8_t)demoted;
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    px->lev_paused = 0;
    if (px->lev)
        event_add(px->lev, NULL);
}

static void accept_failed(struct mcpgw_bal_proxy *px, int err)
{
    uint64_t now = mcpgw_now_ms();
    if (now - px->last_accept_warn > 1000) {
        px->last_accept_warn = now;
        log_warn("accept failed: %s (clients: %u)", strerror(err), px->nclients);
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* Out of descriptors: pause accepting instead of spinning on a readable listener. */
        struct timeval tv = {0, 100000};
        event_del(px->lev);
        px->lev_paused = 1;
        event_add(px->accept_retry, &tv);
    }
}

/* New connections go first: a client that connects is one a cut stream or a failover sent
 * back, or a new request, and on a loop busy relaying notifications its accept (and, with the
 * listener's deferred accepts, its request) would otherwise wait a whole turn. Bounded:
 * ACCEPT_FIRST a watch period at the first priority, then the default one until the next watch
 * (a connection flood must not starve the relaying of answers). */
static void on_listen(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int cfd = accept4((int)fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                accept_failed(px, errno);
            break;
        }
        on_accept(px, cfd, (const struct sockaddr *)&ss);
        if (!px->lev_demoted && px->accept_first && --px->accept_first == 0) {
            lev_priority(px, 1);
            break;
        }
    }
}

/* ---- timers ---- */

static void sweep_pools(struct mcpgw_bal_proxy *px, uint32_t now)
{
    for (uint32_t i = 0; i < px->nslots; i++) {
        struct wnode *w = &px->nodes[i];
        while (w->pool_last &&
               (int32_t)(now - w->pool_last->released) >= (int32_t)px->cfg.pool_idle_timeout_ms)
            upstream_discard(w->pool_last);
    }
}

/* Close muxes that take no more streams and carry none; end streams whose node does not answer. */
static void sweep_muxes(struct mcpgw_bal_proxy *px)
{
    for (uint32_t i = 0; i < px->nslots; i++) {
        struct wnode *w = &px->nodes[i];
        if (w->old_mux && !mcpgw_mux_streams(w->old_mux)) {
            struct mcpgw_mux *o = w->old_mux;
            w->old_mux = NULL;
            mux_release(px, (int)i, o);
        }
        if (w->mux && !mcpgw_mux_usable(w->mux) && !mcpgw_mux_streams(w->mux)) {
            struct mcpgw_mux *m = w->mux;
            w->mux = NULL;
            mux_release(px, (int)i, m);
        }
        if (w->old_mux)
            mcpgw_mux_expire(w->old_mux, px->cfg.response_timeout_ms);
        if (w->mux)
            mcpgw_mux_expire(w->mux, px->cfg.response_timeout_ms);
    }
}

/* End every exchange of this worker with slot, streams included, so their clients reconnect and
 * resume on another node instead of waiting on one that cannot answer (HAProxy's
 * on-marked-down shutdown-sessions). With connected_only, connections still connecting are
 * left alone: their own failure moves their request to another node, which the client never
 * sees. Returns how many were ended. */
static unsigned cut_node(struct mcpgw_bal_proxy *px, int slot, int connected_only)
{
    struct wnode *w = &px->nodes[slot];
    struct upstream *skip = NULL; /* every exchange before it is being kept */
    unsigned n = 0;
    for (;;) {
        struct upstream *u = skip ? skip->next : w->act_first;
        while (u && connected_only &&
               !(u->muxed ? u->ms && mcpgw_mux_stream_sent(u->ms) : u->connected)) {
            skip = u;
            u = u->next;
        }
        if (!u)
            break;
        n++;
        if (u->c && u->resume && resume_stream(u, "its node is down") == 0)
            continue;
        if (u->c)
            client_free(u->c);
        else
            upstream_discard(u);
    }
    return n;
}

/* A connect to slot was refused: nothing listens at its address, so its process is gone (a node
 * keeps its listener until it exits, draining included) and every exchange with it is dead or
 * dying, however long its kernel takes to close them one by one (seconds, for a killed node
 * holding thousands of streams on a busy machine). End them now rather than when the active
 * checks or gossip agree, about a second later. */
static void node_refused(struct mcpgw_bal_proxy *px, int slot)
{
    unsigned n = cut_node(px, slot, 1);
    if (n)
        log_warn("node %s (%s) refused a connection: ended %u exchanges in flight with it",
                 px->nodes[slot].id, px->nodes[slot].addr, n);
}

/* A node the table now says is down (dead, or paused long enough for gossip to say so): end
 * every exchange with it at once. A leaving (draining) node stays up: its exchanges finish. */
static void cut_down_nodes(struct mcpgw_bal_proxy *px)
{
    for (uint32_t i = 0; i < px->nslots; i++) {
        struct wnode *w = &px->nodes[i];
        uint8_t up = w->in_use && MCPGW_LOAD(&px->sh->slots[i].up);
        if (w->seen_up && !up && w->act_first) {
            unsigned n = cut_node(px, (int)i, 0);
            log_warn("node %s (%s) is down: ended %u exchanges in flight with it", w->id, w->addr,
                     n);
        }
        w->seen_up = up;
    }
}

/* A node the master has just found down must lose its exchanges now, not at the next sweep: on
 * a saturated machine a worker's 250 ms sweep ran 0.6-1.4 s after gossip declared a killed node
 * dead (100,000 sessions, a kill during a fan-out), and its sessions waited that long to move.
 * Looking at the table is two loads per slot, so it runs ten times as often, and at the loop's
 * first priority when the base has more than one (the worker's has two): a turn of the loop then
 * relays up to 64 KiB from each node, and a timer that expired during one runs before the next
 * one's reads instead of after them. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    (void)fd, (void)what;
    refresh_nodes(px);
    cut_down_nodes(px);
    px->accept_first = ACCEPT_FIRST;
    lev_priority(px, 0);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    uint32_t now = now_ms(px);
    struct client *c;
    char why[96];

    refresh_nodes(px);
    cut_down_nodes(px);

    while ((c = TAILQ_FIRST(&px->lists[L_HEAD])) && (int32_t)(now - c->deadline) >= 0) {
        snprintf(why, sizeof(why), "request head not received within %u ms",
                 px->cfg.header_timeout_ms);
        client_fail(c, 408, why);
    }
    while ((c = TAILQ_FIRST(&px->lists[L_BODY])) && (int32_t)(now - c->deadline) >= 0) {
        if (c->up && c->up->rq.rstate == R_HEAD) {
            snprintf(why, sizeof(why), "request body stalled for %u ms", px->cfg.body_timeout_ms);
            client_fail(c, 408, why);
        } else {
            client_close_when_flushed(c);
        }
    }
    while ((c = TAILQ_FIRST(&px->lists[L_IDLE])) && (int32_t)(now - c->deadline) >= 0)
        client_free(c);
    while ((c = TAILQ_FIRST(&px->lists[L_LINGER])) && (int32_t)(now - c->deadline) >= 0)
        client_free(c);
    sweep_pools(px, now);
    sweep_muxes(px);
    refresh_nodes(px);
}

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    if (px->drained && px->nclients == 0) {
        mcpgw_bal_proxy_drained_fn cb = px->drained;
        px->drained = NULL;
        cb(px->drained_arg);
    }
}

struct mcpgw_bal_proxy *mcpgw_bal_proxy_new(struct event_base *base,
                                            const struct mcpgw_bal_config *cfg,
                                            struct mcpgw_bal_shared *sh, int worker, int listen_fd,
                                            struct ssl_ctx_st *tls, char *err, size_t errlen)
{
    struct mcpgw_bal_proxy *px = xcalloc(1, sizeof(*px));
    struct timeval tv = tv_ms(SWEEP_PERIOD_MS);

    for (int k = 0; k < L_COUNT; k++)
        TAILQ_INIT(&px->lists[k]);
    px->base = base;
    px->cfg = *cfg;
    px->sh = sh;
    px->st = &sh->workers[worker];
    px->tls = tls;
    px->t0 = mcpgw_now_ms();
    px->rng = mcpgw_now_us() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (!px->rng)
        px->rng = 1;
    px->timeouts[L_HEAD] = cfg->header_timeout_ms;
    px->timeouts[L_BODY] = cfg->body_timeout_ms;
    px->timeouts[L_IDLE] = cfg->idle_timeout_ms;
    px->timeouts[L_LINGER] = LINGER_MS;
    px->gen = 1; /* odd: never a published generation, so the first refresh reads the table */
    refresh_nodes(px);
    px->sweep = event_new(base, -1, EV_PERSIST, on_sweep, px);
    px->watch = event_new(base, -1, EV_PERSIST, on_watch, px);
    if (px->watch)
        event_priority_set(px->watch, 0);
    px->accept_retry = evtimer_new(base, on_accept_retry, px);
    px->drained_ev = event_new(base, -1, 0, on_drained, px);
    px->lev = event_new(base, listen_fd, EV_READ | EV_PERSIST, on_listen, px);
    px->accept_first = ACCEPT_FIRST;
    if (px->lev) {
        if (event_base_get_npriorities(base) > 1)
            event_priority_set(px->lev, 0);
        event_add(px->lev, NULL);
    }
    if (!px->sweep || !px->watch || !px->accept_retry || !px->drained_ev || !px->lev) {
        snprintf(err, errlen, "cannot set up the worker's event loop (libevent)");
        mcpgw_bal_proxy_free(px);
        return NULL;
    }
    event_add(px->sweep, &tv);
    tv = tv_ms(WATCH_PERIOD_MS);
    event_add(px->watch, &tv);
    return px;
}

void mcpgw_bal_proxy_drain(struct mcpgw_bal_proxy *px, mcpgw_bal_proxy_drained_fn done, void *arg)
{
    struct client *c;
    px->draining = 1;
    px->drained = done;
    px->drained_arg = arg;
    if (px->lev) {
        evutil_socket_t lfd = event_get_fd(px->lev);
        event_free(px->lev);
        close(lfd);
        px->lev = NULL;
    }
    while ((c = TAILQ_FIRST(&px->lists[L_IDLE])))
        client_free(c);
    /* Connections that have not sent a byte of a request yet are idle too. */
    for (c = TAILQ_FIRST(&px->lists[L_HEAD]); c;) {
        struct client *next = TAILQ_NEXT(c, link);
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            client_free(c);
        c = next;
    }
    for (uint32_t i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        pool_close_all(px, (int)i);
        struct wnode *w = &px->nodes[i];
        if (w->mux && !mcpgw_mux_streams(w->mux)) {
            struct mcpgw_mux *m = w->mux;
            w->mux = NULL;
            mux_release(px, (int)i, m);
        }
    }
    if (px->nclients == 0)
        event_active(px->drained_ev, EV_TIMEOUT, 1);
}

void mcpgw_bal_proxy_free(struct mcpgw_bal_proxy *px)
{
    if (!px)
        return;
    if (px->lev) {
        evutil_socket_t lfd = event_get_fd(px->lev);
        event_free(px->lev);
        close(lfd);
    }
    for (int k = L_HEAD; k < L_COUNT; k++)
        while (!TAILQ_EMPTY(&px->lists[k]))
            client_free(TAILQ_FIRST(&px->lists[k]));
    for (uint32_t i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        pool_close_all(px, (int)i);
        mux_close(px, (int)i);
    }
    /* Clients in flight are in no list; they are reclaimed by process exit. */
    if (px->sweep)
        event_free(px->sweep);
    if (px->watch)
        event_free(px->watch);
    if (px->accept_retry)
        event_free(px->accept_retry);
    if (px->drained_ev)
        event_free(px->drained_ev);
    free(px);
}

unsigned mcpgw_bal_proxy_clients(const struct mcpgw_bal_proxy *px)
{
    return px->nclients;
}
