/* proxy.c - client/upstream relay state machine on bufferevents (see proxy.h). */
#include "balancer/proxy.h"

#include "balancer/io.h"
#include "balancer/nodes.h"
#include "balancer/resume.h"
#include "balancer/rewrite.h"
#include "balancer/route.h"
#include "balancer/upstream.h"
#include "common/http.h"
#include "common/log.h"
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
#include <unistd.h>

#define RESP_HEAD_MAX   (64 * 1024)
#define SID_MAX         512 /* longer ids still route, on their first SID_MAX bytes */
#define SWEEP_PERIOD_MS 250
#define WATCH_PERIOD_MS 25   /* how often the node table's up verdicts are looked at */
#define ACCEPT_BATCH    64   /* connections accepted per wakeup of the listener */
#define ACCEPT_FIRST    256  /* of them, per watch period, at the loop's first priority */
#define LINGER_MS       2000 /* after an error: read and discard before closing */
#define READ_CHUNK      MCPGW_BAL_IO_READ_CHUNK
#define RESUME_TRIES    3 /* a stream moves at most this often in a row without an answer */

enum cstate { C_HEAD, C_FORWARD, C_TUNNEL, C_CLOSING };
/* Timeout lists, and L_CLOSED: clients closed and waiting to be freed from the loop. */
enum clist_kind { L_NONE, L_HEAD, L_BODY, L_IDLE, L_LINGER, L_CLOSED, L_COUNT };
enum rstate { R_HEAD, R_BODY };
enum rmode { R_NONE, R_LENGTH, R_CHUNKED, R_EOF, R_TUNNEL };

struct request;

/* A client connection. Idle, it is this struct plus its bufferevent (whose buffers are empty):
 * nothing else. Plain sockets are read through rev (see on_client_readable); TLS ones by the
 * OpenSSL bufferevent. Writing always goes through the bufferevent. */
struct client {
    struct event rev;
    struct bufferevent *bev;
    struct mcpgw_bal_proxy *px;
    struct request *rq;       /* the request in flight, if any */
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
    uint8_t closed : 1;  /* closed: no I/O, no callbacks; freed from the loop (on_reap) */
};
_Static_assert(sizeof(struct client) <= sizeof(struct event) + 64,
               "an idle client must stay small");

/* The request in flight on a client, from its head to the end of its response. It owns the
 * upstream carrying it and is that upstream's owner (its callbacks get the request); when the
 * request moves to another node, it keeps its state and takes another upstream. */
struct request {
    struct client *c;
    struct mcpgw_bal_upstream *up;   /* NULL only while it moves */
    struct mcpgw_bal_resume *resume; /* an SSE stream the balancer can re-open elsewhere */
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
        dechunk : 1, mux : 1 /* may go as a stream of the node's mux */,
        resuming : 1 /* re-opened elsewhere: the new node's head is not the client's */,
        up_paused : 1 /* the upstream is paused: the client's output is full */;
    uint8_t resumes; /* times its stream moved */
};

TAILQ_HEAD(clist, client);

struct mcpgw_bal_proxy {
    struct event_base *base;
    struct mcpgw_bal_config cfg;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_worker_stats *st;
    struct mcpgw_bal_nodes *nodes;
    struct mcpgw_bal_upstream_set *ups;
    SSL_CTX *tls;
    struct evbuffer *scratch; /* a request head being rewritten */
    struct event *lev;        /* the listener: first priority while accept_first lasts */
    unsigned accept_first;    /* accepts left at first priority until the next watch */
    uint8_t lev_demoted : 1;  /* the listener runs at the default priority (budget spent) */
    uint8_t lev_paused : 1;   /* out of descriptors: accept_retry re-adds the listener */
    struct event *sweep, *watch, *accept_retry, *drained_ev, *reap;
    struct clist lists[L_COUNT];
    uint32_t timeouts[L_COUNT];
    uint64_t t0;
    unsigned nclients;
    uint64_t last_accept_warn;
    int draining;
    mcpgw_bal_proxy_drained_fn drained;
    void *drained_arg;
};

static void client_close(struct client *c);
static void client_process(struct client *c);
static void on_client_event(struct bufferevent *bev, short what, void *arg);
static void relay_request_body(struct request *rq);
static void relay_response(struct request *rq);

static void on_up_input(void *owner);
static void on_up_drained(void *owner);
static void on_up_end(void *owner, enum mcpgw_bal_upstream_end how, int err, const char *why);
static const struct mcpgw_bal_upstream_cb up_cb = {on_up_input, on_up_drained, on_up_end};

static uint32_t now_ms(const struct mcpgw_bal_proxy *px)
{
    return (uint32_t)(mcpgw_now_ms() - px->t0);
}

static struct mcpgw_bal_node_stats *nstats(struct mcpgw_bal_proxy *px, int slot)
{
    return mcpgw_bal_nodes_stats(px->nodes, slot);
}

static const char *node_id(struct mcpgw_bal_proxy *px, int slot)
{
    return mcpgw_bal_nodes_id(px->nodes, slot);
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

/* Send what is queued to c now. A client that is gone is closed at once (its request too):
 * returns -1 then, and c->closed is set; c itself stays valid until the loop frees it. */
static int client_push(struct client *c)
{
    if (c->px->tls || c->closed || mcpgw_bal_io_push(c->bev) == 0)
        return 0;
    log_debug("client fd %d is gone: %s", (int)bufferevent_getfd(c->bev), strerror(errno));
    client_close(c);
    return -1;
}

/* ---- requests: their lifetime ---- */

/* End rq: its upstream is closed (not reused), and the client forgets it. */
static void request_free(struct request *rq)
{
    if (rq->up)
        rq->up->ops->release(rq->up, 0);
    if (rq->c && rq->c->rq == rq)
        rq->c->rq = NULL;
    free(rq->sid);
    mcpgw_bal_resume_free(rq->resume);
    free(rq);
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
    if (c->closed)
        return;
    if (c->px->tls || c->list == L_LINGER) {
        if (c->px->tls)
            client_close(c);
        return;
    }
    if (!unread(c)) {
        client_close(c);
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
    if (c->closed)
        return;
    if (c->rq)
        request_free(c->rq);
    client_push(c);
    if (c->closed)
        return;
    list_remove(c);
    c->state = C_CLOSING;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(out) == 0) {
        client_linger(c);
        return;
    }
    {
        struct timeval st = mcpgw_bal_io_tv(c->px->cfg.send_timeout_ms);
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
    if (c->closed)
        return;
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
    if (c->closed)
        return;
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

/* Find a node for rq and an upstream to it, owned by rq. The node table is not refreshed here
 * (the worker's timers do that): a request racing a table change goes by the view of the last
 * refresh, at most one watch period old. On failure returns NULL with a sentence in why, naming
 * cause (the last connect error, may be NULL) if nothing newer failed. */
static struct mcpgw_bal_upstream *route_request(struct mcpgw_bal_proxy *px, struct request *rq,
                                                const char *cause, char *why, size_t whylen)
{
    const char *last = cause;
    char lastbuf[96];
    for (;;) {
        struct mcpgw_bal_upstream *u;
        int slot = mcpgw_bal_nodes_pick(px->nodes, rq->sid, rq->sidlen, rq->tried), err = 0;
        if (slot < 0) {
            mcpgw_bal_nodes_cause(px->nodes, last, why, whylen);
            return NULL;
        }
        rq->tried |= 1ull << slot;
        u = mcpgw_bal_upstream_get(px->ups, slot, rq->mux, &up_cb, rq, &err);
        if (!u) {
            snprintf(lastbuf, sizeof(lastbuf), "%s", strerror(err));
            last = lastbuf;
            if (err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS) {
                snprintf(why, whylen, "the balancer is out of connections (%s)", lastbuf);
                return NULL;
            }
            mcpgw_bal_nodes_mark_down(px->nodes, slot, lastbuf);
            if (err == ECONNREFUSED)
                mcpgw_bal_nodes_refused(px->nodes, slot);
            MCPGW_BUMP(&nstats(px, slot)->retries, 1);
            continue;
        }
        MCPGW_BUMP(&nstats(px, slot)->requests, 1);
        return u;
    }
}

/* Nothing of rq's request reached its node: send the same bytes to the next candidate. */
static void move_request(struct request *rq, const char *cause)
{
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    struct mcpgw_bal_upstream *old = rq->up, *nu;
    struct evbuffer *bytes;
    char why[256];

    rq->up = NULL;
    nu = route_request(px, rq, cause, why, sizeof(why));
    if (!nu) {
        old->ops->release(old, 0);
        client_fail_json(c, 503, why);
        return;
    }
    log_debug("request moved from node %s to %s: %s", node_id(px, old->slot), node_id(px, nu->slot),
              cause);
    rq->up = nu;
    bytes = old->ops->unsent(old);
    if (!bytes) {
        snprintf(why, sizeof(why), "the request was lost on its way to node %s",
                 node_id(px, old->slot));
        old->ops->release(old, 0);
        client_fail_json(c, 502, why);
        return;
    }
    if (nu->ops->send_head(nu, bytes, why, sizeof(why)) < 0) {
        old->ops->release(old, 0);
        client_fail_json(c, 502, why);
        return;
    }
    old->ops->release(old, 0);
    nu->ops->flush(nu);
    if (c->paused)
        nu->ops->watch_output(nu, px->cfg.buffer_size / 2);
}

/* rq's node failed under a session's event stream: open it again at the node the session now
 * routes to, asking for the events after the last one its client has whole (Last-Event-ID), and
 * splice the new body onto the client's (resumed_head). The client sees no break: that saves
 * every client of a dead node a reconnection, and the balancer an accept and a request each.
 * Returns 0 when rq took another upstream (the client may be closed, if the new node could not
 * be asked), -1 when the stream cannot be carried on (the caller ends it). */
static int resume_stream(struct request *rq, const char *cause)
{
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    struct mcpgw_bal_upstream *old = rq->up, *nu;
    struct evbuffer *head;
    char why[256];
    int from = old->slot;

    if (!rq->resume || !px->cfg.stream_resume || rq->up_paused || c->state != C_FORWARD ||
        rq->resumes >= RESUME_TRIES || !mcpgw_bal_resume_ready(rq->resume) ||
        !mcpgw_chunked_between(&rq->resp_dec))
        return -1;
    rq->tried |= 1ull << from;
    nu = route_request(px, rq, cause, why, sizeof(why));
    if (!nu) {
        log_debug("a stream of node %s cannot move: %s", node_id(px, from), why);
        return -1;
    }
    rq->up = nu;
    old->ops->release(old, 0);
    c->resumed = 1;
    rq->resuming = 1;
    rq->resumes++;
    rq->start_us = mcpgw_now_us();
    rq->rstate = R_HEAD;
    rq->rmode = R_NONE;
    rq->scanned = 0;
    rq->resp_left = 0;
    memset(&rq->resp_dec, 0, sizeof(rq->resp_dec));
    head = evbuffer_new();
    if (!head) {
        client_close_when_flushed(c);
        return 0;
    }
    mcpgw_bal_resume_head(rq->resume, head);
    log_debug("stream of session %.*s moves from node %s to %s after event %s: %s", (int)rq->sidlen,
              rq->sid ? rq->sid : "", node_id(px, from), node_id(px, nu->slot),
              mcpgw_bal_resume_last_id(rq->resume), cause);
    if (nu->ops->send_head(nu, head, why, sizeof(why)) < 0)
        client_close_when_flushed(c);
    else
        nu->ops->flush(nu);
    evbuffer_free(head);
    return 0;
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

static void relay_request_body(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *in = bufferevent_get_input(c->bev), *out = u->ops->output(u);
    size_t before = evbuffer_get_length(in);

    if (rq->req_done || !out)
        return;
    if (rq->req_chunked) {
        if (relay_chunked(&rq->req_dec, in, out, count_chunk, &rq->req_body) < 0) {
            if (rq->rstate == R_HEAD)
                client_fail(c, 400, "invalid chunked encoding");
            else
                client_close_when_flushed(c);
            return;
        }
        if (rq->req_body > px->cfg.max_body_size) {
            if (rq->rstate == R_HEAD)
                client_fail(c, 413, "request body over the limit");
            else
                client_close_when_flushed(c);
            return;
        }
        rq->req_done = rq->req_dec.done;
    } else {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < (uint64_t)rq->req_left ? avail : (size_t)rq->req_left;
        if (n)
            evbuffer_remove_buffer(in, out, n);
        rq->req_left -= (int64_t)n;
        rq->req_done = rq->req_left == 0;
    }
    if (rq->req_done) {
        if (c->list == L_BODY)
            list_remove(c);
    } else if (evbuffer_get_length(in) != before || c->list != L_BODY) {
        list_append(c, L_BODY); /* progress: the body timeout starts over */
    }
    u->ops->flush(u);
    /* Backpressure: pause reading the client while the node's side is over the high-water
     * mark; drained() resumes it once half of it is sent. */
    if (!rq->req_done && evbuffer_get_length(out) >= px->cfg.buffer_size && !c->paused) {
        c->paused = 1;
        client_read_off(c);
        u->ops->watch_output(u, px->cfg.buffer_size / 2);
    }
}

static int count_host(const struct mcpgw_http_head *h)
{
    int n = 0;
    for (int i = 0; i < h->nheaders; i++)
        n += mcpgw_strieq(h->headers[i].name, h->headers[i].name_len, "host");
    return n;
}

/* The routing key of a request: its Mcp-Session-Id, or for the legacy HTTP+SSE transport the
 * sessionId query parameter of POST /messages. */
static void session_of(const struct mcpgw_http_head *h, const char **sid, size_t *sidlen)
{
    const struct mcpgw_http_header *sh = mcpgw_http_find(h, "mcp-session-id");
    *sid = NULL;
    *sidlen = 0;
    if (sh && sh->value_len) {
        *sid = sh->value;
        *sidlen = sh->value_len;
    } else {
        const char *q = memchr(h->target, '?', h->target_len);
        size_t plen = q ? (size_t)(q - h->target) : h->target_len;
        if (q && plen == 9 && memcmp(h->target, "/messages", 9) == 0)
            mcpgw_bal_route_query_param(q + 1, h->target_len - plen - 1, "sessionId", sid, sidlen);
    }
}

/* A complete, valid head is at the start of c's input: route it and start relaying. */
static void start_request(struct client *c, const struct mcpgw_http_head *h)
{
    struct mcpgw_bal_proxy *px = c->px;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct request *rq = xcalloc(1, sizeof(*rq));
    struct mcpgw_bal_upstream *u;
    struct mcpgw_bal_peer peer;
    char why[256], ip[INET6_ADDRSTRLEN];
    const char *sid;
    size_t sidlen;

    session_of(h, &sid, &sidlen);
    if (sid) {
        rq->sidlen = (uint16_t)(sidlen < SID_MAX ? sidlen : SID_MAX);
        rq->sid = xstrndup(sid, rq->sidlen);
    }
    rq->c = c;
    rq->start_us = mcpgw_now_us();
    rq->req_chunked = h->chunked;
    rq->req_left = h->chunked ? 0 : (h->content_length > 0 ? h->content_length : 0);
    rq->upgrade_req = h->upgrade;
    rq->head_req = h->method == MCPGW_HTTP_HEAD;
    rq->rstate = R_HEAD;
    /* A session's GET stream (no body, no upgrade) may share the node's mux. */
    rq->mux =
        sid && h->method == MCPGW_HTTP_GET && !h->upgrade && !h->chunked && h->content_length <= 0;

    u = route_request(px, rq, NULL, why, sizeof(why));
    if (!u) {
        request_free(rq);
        client_fail_json(c, 503, why);
        return;
    }
    rq->up = u;
    c->rq = rq;
    c->state = C_FORWARD;
    list_remove(c);
    peer_of(c, ip, sizeof(ip), &peer);
    mcpgw_bal_rewrite_request(h, &peer, px->scratch);
    evbuffer_drain(in, h->head_len);
    if (u->ops->send_head(u, px->scratch, why, sizeof(why)) < 0) {
        evbuffer_drain(px->scratch, evbuffer_get_length(px->scratch));
        client_fail_json(c, 502, why);
        return;
    }
    if (!u->ops->output(u) || (!rq->req_chunked && rq->req_left == 0)) {
        rq->req_done = 1;
        u->ops->flush(u);
    } else {
        relay_request_body(rq); /* the head goes out with the body's first bytes */
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

/* The response in flight is complete: release the upstream (pooled when it may serve another
 * request), then serve the client's next request or close it. */
static void response_done(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    int keep_client = c->keep_alive && rq->req_done && !c->px->draining;

    rq->up = NULL;
    u->ops->release(u, rq->resp_keep && rq->req_done);
    request_free(rq);
    c->resumed = 0;
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

/* The head answering a stream re-opened at another node (resume_stream), end bytes of the
 * upstream's input. The client has its head already: a 200 event stream goes on as the same
 * body, after a comment that marks the seam; anything else ends the client's stream early (no
 * final chunk) and the client resumes it itself. Returns as response_head. */
static int resumed_head(struct request *rq, const struct mcpgw_http_head *h, size_t end)
{
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int ok = h->status == 200 && h->chunked && is_event_stream(h);

    evbuffer_drain(u->ops->input(u), end);
    if (!ok) {
        log_info("node %s answered a resumed stream with %d: its client resumes it itself",
                 node_id(px, u->slot), h->status);
        client_close_when_flushed(c);
        return -1;
    }
    rq->resuming = 0;
    /* Answered: the limit is on moves in a row without an answer, and a node that refused an
     * earlier move is a candidate again for the next one. */
    rq->resumes = 0;
    rq->tried = 0;
    rq->rstate = R_BODY;
    rq->rmode = R_CHUNKED;
    memset(&rq->resp_dec, 0, sizeof(rq->resp_dec));
    mcpgw_bal_resume_seam(rq->resume);
    evbuffer_add_printf(out, "%zx\r\n%s\r\n", sizeof(MCPGW_BAL_RESUME_MARK) - 1,
                        MCPGW_BAL_RESUME_MARK);
    MCPGW_BUMP(&nstats(px, u->slot)->resumed, 1);
    u->ops->answered(u);
    return 1;
}

/* A 101 answered an upgrade: from now on the pair is a byte tunnel. */
static void start_tunnel(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    rq->rmode = R_TUNNEL;
    rq->rstate = R_BODY;
    c->state = C_TUNNEL;
    list_remove(c);
    evbuffer_add_buffer(u->ops->output(u), bufferevent_get_input(c->bev));
    u->ops->answered(u);
    u->ops->flush(u);
    mcpgw_bal_upstream_uncount(u); /* a tunnel is not load the node can shed */
}

/* Where rq's response body ends, from its head h; and the flags for rewriting that head.
 * Decides whether the client connection stays open after it. */
static unsigned response_mode(struct request *rq, const struct mcpgw_http_head *h)
{
    struct client *c = rq->c;
    unsigned flags = 0;
    if (rq->head_req || h->status == 204 || h->status == 304)
        rq->rmode = R_NONE;
    else if (h->chunked)
        rq->rmode = R_CHUNKED;
    else if (h->content_length >= 0)
        rq->rmode = R_LENGTH;
    else
        rq->rmode = R_EOF;
    rq->resp_left = h->content_length;
    rq->resp_keep = h->keep_alive && rq->rmode != R_EOF;
    rq->dechunk = c->http10 && rq->rmode == R_CHUNKED;
    if (!c->keep_alive || c->px->draining || rq->rmode == R_EOF || rq->dechunk || !rq->req_done) {
        flags |= MCPGW_BAL_RESP_CLOSE;
        c->keep_alive = 0;
    } else if (c->http10) {
        flags |= MCPGW_BAL_RESP_KEEPALIVE10;
    }
    if (rq->dechunk)
        flags |= MCPGW_BAL_RESP_DECHUNK;
    return flags;
}

/* Answer rq with a 502 for a response the node got wrong. */
static void bad_response(struct request *rq, const char *why)
{
    MCPGW_BUMP(&nstats(rq->c->px, rq->up->slot)->errors, 1);
    client_fail_json(rq->c, 502, why);
}

/* Parse the response head in the upstream's input. Returns 1 when the body phase starts, 0
 * when more bytes are needed, -1 when the exchange ended (the client may be gone). */
static int response_head(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *in = u->ops->input(u), *out = bufferevent_get_output(c->bev);

    for (;;) {
        size_t avail = evbuffer_get_length(in), n, end, from;
        const char *data, *why = NULL;
        struct mcpgw_http_head h;
        struct evbuffer *kept;
        unsigned flags;
        char msg[160];

        if (!avail)
            return 0;
        n = avail < RESP_HEAD_MAX ? avail : RESP_HEAD_MAX;
        data = (const char *)evbuffer_pullup(in, (ssize_t)n);
        from = rq->scanned > 3 ? rq->scanned - 3 : 0;
        end = mcpgw_http_head_end(data + from, n - from);
        if (!end) {
            if (avail < RESP_HEAD_MAX) {
                rq->scanned = (uint32_t)n;
                return 0;
            }
            bad_response(rq, "the node's response head is over the limit");
            return -1;
        }
        end += from;
        rq->scanned = 0;
        if (mcpgw_http_parse_head(data, end, 1, &h, &why) != MCPGW_HTTP_OK) {
            snprintf(msg, sizeof(msg), "malformed response from node %s: %s", node_id(px, u->slot),
                     why ? why : "?");
            bad_response(rq, msg);
            return -1;
        }
        if (h.nheaders > MCPGW_HTTP_MAX_HEADERS - MCPGW_BAL_RESP_ADDED) {
            bad_response(rq, "the node's response has too many header fields");
            return -1;
        }
        if (h.status < 200 && h.status != 101) {
            /* Interim response (100 Continue, 103): pass it on to HTTP/1.1 clients (not inside
             * the body of a resumed stream). */
            if (!c->http10 && !rq->resuming)
                mcpgw_bal_rewrite_response(&h, data, 0, out);
            evbuffer_drain(in, end);
            client_push(c);
            if (c->closed)
                return -1;
            continue;
        }
        mcpgw_hist_observe(&nstats(px, u->slot)->latency,
                           (double)(mcpgw_now_us() - rq->start_us) / 1e6);
        MCPGW_BUMP(&nstats(px, u->slot)->responses[h.status / 100 - 1], 1);
        if (rq->resuming)
            return resumed_head(rq, &h, end);
        if (h.status == 101) {
            if (!rq->upgrade_req || !u->ops->output(u)) {
                bad_response(rq, "the node switched protocols without an Upgrade");
                return -1;
            }
            mcpgw_bal_rewrite_response(&h, data, 0, out);
            evbuffer_drain(in, end);
            start_tunnel(rq);
            return 1;
        }
        flags = response_mode(rq, &h);
        /* A session's event stream whose request head is kept (over the mux): keep what it
         * takes to carry it on elsewhere (resume_stream) before the head goes. */
        kept = u->ops->kept_head(u);
        if (kept && px->cfg.stream_resume && rq->mux && h.status == 200 && rq->rmode == R_CHUNKED &&
            !rq->dechunk && is_event_stream(&h))
            rq->resume = mcpgw_bal_resume_new((const char *)evbuffer_pullup(kept, -1),
                                              evbuffer_get_length(kept));
        mcpgw_bal_rewrite_response(&h, data, flags, out);
        evbuffer_drain(in, end);
        rq->rstate = R_BODY;
        u->ops->answered(u);
        return 1;
    }
}

/* Stop taking response bytes while the client's output is over the high-water mark; the
 * client's write callback resumes once half of it is sent. */
static void pause_upstream(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    if (rq->up_paused || evbuffer_get_length(bufferevent_get_output(c->bev)) < px->cfg.buffer_size)
        return;
    rq->up_paused = 1;
    rq->up->ops->pause(rq->up);
    bufferevent_setwatermark(c->bev, EV_WRITE, px->cfg.buffer_size / 2, 0);
    if (!c->send_timeout) {
        struct timeval st = mcpgw_bal_io_tv(px->cfg.send_timeout_ms);
        c->send_timeout = 1;
        bufferevent_set_timeouts(c->bev, NULL, &st);
    }
}

/* Move a chunked response body on: de-chunked for an HTTP/1.0 client, else as it came (an
 * event stream's bytes are read by its resume scanner on the way). Returns 0, or -1 when the
 * node's chunked encoding is invalid. */
static int relay_chunked_response(struct request *rq, struct evbuffer *in, struct evbuffer *out)
{
    if (!rq->dechunk)
        return relay_chunked(&rq->resp_dec, in, out, rq->resume ? feed_resume : NULL, rq->resume);
    while (!rq->resp_dec.done && evbuffer_get_length(in)) {
        size_t len = evbuffer_get_contiguous_space(in);
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)len);
        ssize_t k = mcpgw_chunked_feed(&rq->resp_dec, p, len, dechunk_out, out);
        if (k < 0)
            return -1;
        evbuffer_drain(in, (size_t)k);
    }
    return 0;
}

/* Relay response bytes (state R_BODY) from the upstream's input to the client. */
static void relay_response(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *in = u->ops->input(u), *out = bufferevent_get_output(c->bev);
    size_t avail = evbuffer_get_length(in);
    int done = 0;

    switch (rq->rmode) {
    case R_NONE:
        done = 1;
        break;
    case R_LENGTH: {
        size_t n = avail < (uint64_t)rq->resp_left ? avail : (size_t)rq->resp_left;
        if (n)
            evbuffer_remove_buffer(in, out, n);
        rq->resp_left -= (int64_t)n;
        done = rq->resp_left == 0;
        break;
    }
    case R_CHUNKED:
        if (relay_chunked_response(rq, in, out) < 0) {
            MCPGW_BUMP(&nstats(c->px, u->slot)->errors, 1);
            log_warn("node %s sent an invalid chunked body", node_id(c->px, u->slot));
            client_close_when_flushed(c);
            return;
        }
        done = rq->resp_dec.done;
        break;
    case R_EOF:
    case R_TUNNEL:
        evbuffer_add_buffer(out, in);
        break;
    }
    client_push(c);
    if (c->closed) /* the client is gone: rq went with it */
        return;
    if (done) {
        response_done(rq);
        return;
    }
    pause_upstream(rq);
}

/* ---- upstream callbacks (upstream.h): the same for both kinds ---- */

static void on_up_input(void *owner)
{
    struct request *rq = owner;
    if (rq->rstate == R_HEAD && response_head(rq) <= 0)
        return;
    relay_response(rq);
}

static void on_up_drained(void *owner)
{
    struct request *rq = owner;
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    if (!c->paused)
        return;
    c->paused = 0;
    client_read_on(c);
    if (c->state == C_TUNNEL) {
        evbuffer_add_buffer(u->ops->output(u), bufferevent_get_input(c->bev));
        u->ops->flush(u);
    } else {
        relay_request_body(rq);
    }
}

/* The exchange with the node ended before its response did (or, for a body that runs to the
 * connection's end, with it). */
static void on_up_end(void *owner, enum mcpgw_bal_upstream_end how, int err, const char *why)
{
    struct request *rq = owner;
    struct client *c = rq->c;
    struct mcpgw_bal_proxy *px = c->px;
    int slot = rq->up->slot;
    char msg[256];

    switch (how) {
    case MCPGW_BAL_UPSTREAM_FAILED: /* nothing reached the node: the next candidate */
        mcpgw_bal_nodes_mark_down(px->nodes, slot, why);
        if (err == ECONNREFUSED)
            mcpgw_bal_nodes_refused(px->nodes, slot);
        MCPGW_BUMP(&nstats(px, slot)->retries, 1);
        move_request(rq, why);
        return;
    case MCPGW_BAL_UPSTREAM_UNSENT_AGAIN:
        rq->tried &= ~(1ull << slot);
        move_request(rq, why);
        return;
    case MCPGW_BAL_UPSTREAM_UNSENT:
        move_request(rq, why);
        return;
    case MCPGW_BAL_UPSTREAM_CUT:
        /* The node is gone: its streams go on elsewhere, or their clients are told at once. */
        if (resume_stream(rq, why) < 0)
            client_close(c);
        return;
    default:
        break;
    }
    if (rq->rmode == R_TUNNEL) {
        client_close_when_flushed(c);
        return;
    }
    if (how == MCPGW_BAL_UPSTREAM_EOF && rq->rstate == R_BODY && rq->rmode == R_EOF) {
        relay_response(rq);
        if (c->rq == rq) {
            c->keep_alive = 0;
            response_done(rq);
        }
        return;
    }
    MCPGW_BUMP(&nstats(px, slot)->errors, 1);
    /* Only a failed node's streams move: a live node that resets one stream (a newer stream of
     * the session replaced it, say) keeps the session, and the client decides. */
    if ((rq->rstate != R_HEAD || rq->resuming) && mcpgw_bal_nodes_failed(px->nodes, slot) &&
        resume_stream(rq, why) == 0)
        return;
    if (rq->rstate != R_HEAD || rq->resuming) {
        /* Mid-response: the client sees the stream end early (no final chunk). */
        log_debug("node %s dropped a response in flight: %s", node_id(px, slot), why);
        client_close_when_flushed(c);
        return;
    }
    if (how == MCPGW_BAL_UPSTREAM_TIMEOUT) {
        snprintf(msg, sizeof(msg), "node %s did not answer within %u ms", node_id(px, slot),
                 px->cfg.response_timeout_ms);
        client_fail_json(c, 504, msg);
        return;
    }
    if (how == MCPGW_BAL_UPSTREAM_ERROR && (err == ECONNRESET || err == EPIPE))
        mcpgw_bal_nodes_mark_down(px->nodes, slot, strerror(err));
    snprintf(msg, sizeof(msg), "node %s closed the connection before answering (%s)",
             node_id(px, slot), why);
    client_fail_json(c, 502, msg);
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
        if (c->rq && !c->rq->req_done)
            relay_request_body(c->rq);
        /* Else: a pipelined request waits in the input (bounded by the read watermark). */
        break;
    case C_TUNNEL:
        if (c->rq) {
            struct mcpgw_bal_upstream *u = c->rq->up;
            struct evbuffer *out = u->ops->output(u);
            evbuffer_add_buffer(out, bufferevent_get_input(bev));
            u->ops->flush(u);
            if (!c->paused && evbuffer_get_length(out) >= c->px->cfg.buffer_size) {
                c->paused = 1;
                client_read_off(c);
                u->ops->watch_output(u, c->px->cfg.buffer_size / 2);
            }
        }
        break;
    case C_CLOSING:
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        if (c->list == L_LINGER && !unread(c))
            client_close(c);
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
        if (c->state == C_TUNNEL || (c->rq && !c->rq->req_done))
            lim = have + READ_CHUNK;
    }
    if (have >= lim) {
        client_read_off(c); /* resumed when the request in flight completes */
        return;
    }
    r = mcpgw_bal_io_read(in, (int)fd, lim - have);
    if (r == 0) {
        on_client_event(c->bev, BEV_EVENT_EOF | BEV_EVENT_READING, c);
        return;
    }
    if (r < 0) {
        if (!mcpgw_bal_io_would_block(errno))
            on_client_event(c->bev, BEV_EVENT_ERROR | BEV_EVENT_READING, c);
        return;
    }
    on_client_read(c->bev, c);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct request *rq = c->rq;
    struct mcpgw_bal_upstream *u;
    if (!c->px->tls)
        mcpgw_bal_io_write_idle(bev);
    if (c->state == C_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            client_linger(c);
        return;
    }
    if (!rq || !rq->up_paused ||
        evbuffer_get_length(bufferevent_get_output(bev)) > c->px->cfg.buffer_size / 2)
        return;
    u = rq->up;
    rq->up_paused = 0;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (c->send_timeout) {
        c->send_timeout = 0;
        bufferevent_set_timeouts(bev, NULL, NULL);
    }
    u->ops->resume(u);
    if (evbuffer_get_length(u->ops->input(u)))
        relay_response(rq);
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
    client_close(c);
}

/* The conversation is over: stop all I/O on c now and end its request, but free c only from
 * the loop (on_reap). A client is closed from inside its own callbacks and from an upstream's
 * (a node's answer relayed to a client that is gone): the code up the stack may still look at
 * c (c->closed tells it to stop), never at freed memory. Safe to call twice. */
static void client_close(struct client *c)
{
    struct mcpgw_bal_proxy *px = c->px;
    if (c->closed)
        return;
    c->closed = 1;
    if (c->rq)
        request_free(c->rq);
    if (!px->tls) {
        event_del(&c->rev);
        /* libevent closes a freed bufferevent's socket from its active queue, behind every
         * event already due: on a busy loop, long after. The client must learn now (a stream
         * cut because its node died reconnects on this FIN). */
        shutdown((int)bufferevent_getfd(c->bev), SHUT_WR);
    }
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    list_append(c, L_CLOSED);
    event_active(px->reap, EV_TIMEOUT, 1);
}

/* Free the clients closed since the last turn. */
static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    struct client *c;
    (void)fd, (void)what;
    while ((c = TAILQ_FIRST(&px->lists[L_CLOSED]))) {
        list_remove(c);
        bufferevent_free(c->bev);
        free(c);
        px->nclients--;
    }
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

/* ---- the node table's news (nodes.h), from the timers and the loop ---- */

static void on_node_changed(void *arg, int slot)
{
    struct mcpgw_bal_proxy *px = arg;
    mcpgw_bal_upstream_close_node(px->ups, slot);
}

static void on_node_marked(void *arg, int slot)
{
    struct mcpgw_bal_proxy *px = arg;
    mcpgw_bal_upstream_close_idle(px->ups, slot);
}

/* End every exchange of this worker with slot, streams included, so their clients resume on
 * another node (or the balancer carries their streams on) instead of waiting on one that
 * cannot answer. A refused connect means nothing listens at its address, so its process is gone
 * (a node keeps its listener until it exits, draining included) however long its kernel takes
 * to close its connections one by one (seconds, for a killed node holding thousands of streams
 * on a busy machine); connections still connecting are left to fail and move on their own. */
static void on_node_down(void *arg, int slot, int refused)
{
    struct mcpgw_bal_proxy *px = arg;
    unsigned n = mcpgw_bal_upstream_cut(px->ups, slot, refused);
    if (n && refused)
        log_warn("node %s (%s) refused a connection: ended %u exchanges in flight with it",
                 node_id(px, slot), mcpgw_bal_nodes_addr(px->nodes, slot), n);
    else if (n)
        log_warn("node %s (%s) is down: ended %u exchanges in flight with it", node_id(px, slot),
                 mcpgw_bal_nodes_addr(px->nodes, slot), n);
}

static const struct mcpgw_bal_nodes_cb nodes_cb = {on_node_changed, on_node_marked, on_node_down};

/* ---- timers ---- */

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
    mcpgw_bal_nodes_refresh(px->nodes);
    px->accept_first = ACCEPT_FIRST;
    lev_priority(px, 0);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_proxy *px = arg;
    uint32_t now = now_ms(px);
    struct client *c;
    char why[96];

    mcpgw_bal_nodes_refresh(px->nodes);
    while ((c = TAILQ_FIRST(&px->lists[L_HEAD])) && (int32_t)(now - c->deadline) >= 0) {
        snprintf(why, sizeof(why), "request head not received within %u ms",
                 px->cfg.header_timeout_ms);
        client_fail(c, 408, why);
    }
    while ((c = TAILQ_FIRST(&px->lists[L_BODY])) && (int32_t)(now - c->deadline) >= 0) {
        if (c->rq && c->rq->rstate == R_HEAD) {
            snprintf(why, sizeof(why), "request body stalled for %u ms", px->cfg.body_timeout_ms);
            client_fail(c, 408, why);
        } else {
            client_close_when_flushed(c);
        }
    }
    while ((c = TAILQ_FIRST(&px->lists[L_IDLE])) && (int32_t)(now - c->deadline) >= 0)
        client_close(c);
    while ((c = TAILQ_FIRST(&px->lists[L_LINGER])) && (int32_t)(now - c->deadline) >= 0)
        client_close(c);
    mcpgw_bal_upstream_sweep(px->ups);
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
    struct timeval tv = mcpgw_bal_io_tv(SWEEP_PERIOD_MS);

    for (int k = 0; k < L_COUNT; k++)
        TAILQ_INIT(&px->lists[k]);
    px->base = base;
    px->cfg = *cfg;
    px->sh = sh;
    px->st = &sh->workers[worker];
    px->tls = tls;
    px->t0 = mcpgw_now_ms();
    px->timeouts[L_HEAD] = cfg->header_timeout_ms;
    px->timeouts[L_BODY] = cfg->body_timeout_ms;
    px->timeouts[L_IDLE] = cfg->idle_timeout_ms;
    px->timeouts[L_LINGER] = LINGER_MS;
    px->nodes = mcpgw_bal_nodes_new(base, &px->cfg, sh, worker, &nodes_cb, px);
    if (px->nodes)
        px->ups = mcpgw_bal_upstream_set_new(base, &px->cfg, px->nodes);
    px->scratch = evbuffer_new();
    px->sweep = event_new(base, -1, EV_PERSIST, on_sweep, px);
    px->watch = event_new(base, -1, EV_PERSIST, on_watch, px);
    if (px->watch)
        event_priority_set(px->watch, 0);
    px->accept_retry = evtimer_new(base, on_accept_retry, px);
    px->drained_ev = event_new(base, -1, 0, on_drained, px);
    px->reap = event_new(base, -1, 0, on_reap, px);
    px->lev = event_new(base, listen_fd, EV_READ | EV_PERSIST, on_listen, px);
    px->accept_first = ACCEPT_FIRST;
    if (px->lev) {
        if (event_base_get_npriorities(base) > 1)
            event_priority_set(px->lev, 0);
        event_add(px->lev, NULL);
    }
    if (!px->nodes || !px->ups || !px->scratch || !px->sweep || !px->watch || !px->accept_retry ||
        !px->drained_ev || !px->reap || !px->lev) {
        snprintf(err, errlen, "cannot set up the worker's event loop (libevent)");
        mcpgw_bal_proxy_free(px);
        return NULL;
    }
    event_add(px->sweep, &tv);
    tv = mcpgw_bal_io_tv(WATCH_PERIOD_MS);
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
        client_close(c);
    /* Connections that have not sent a byte of a request yet are idle too. */
    for (c = TAILQ_FIRST(&px->lists[L_HEAD]); c;) {
        struct client *next = TAILQ_NEXT(c, link);
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            client_close(c);
        c = next;
    }
    mcpgw_bal_upstream_drain(px->ups);
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
    for (int k = L_HEAD; k < L_CLOSED; k++)
        while (!TAILQ_EMPTY(&px->lists[k]))
            client_close(TAILQ_FIRST(&px->lists[k]));
    if (px->reap)
        on_reap(-1, 0, px);
    /* Clients in flight are in no list; they are reclaimed by process exit. */
    mcpgw_bal_upstream_set_free(px->ups);
    mcpgw_bal_nodes_free(px->nodes);
    if (px->scratch)
        evbuffer_free(px->scratch);
    if (px->sweep)
        event_free(px->sweep);
    if (px->watch)
        event_free(px->watch);
    if (px->accept_retry)
        event_free(px->accept_retry);
    if (px->drained_ev)
        event_free(px->drained_ev);
    if (px->reap)
        event_free(px->reap);
    free(px);
}

unsigned mcpgw_bal_proxy_clients(const struct mcpgw_bal_proxy *px)
{
    return px->nclients;
}
