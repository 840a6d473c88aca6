/* client.c - HTTP/1.1 client connection: framing of responses on top of common/http.h. */
#include "loadgen/client.h"

#include "common/net.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (64u << 20) /* a complete (not streamed) response body */

enum state { ST_IDLE, ST_HEAD, ST_BODY_CL, ST_BODY_CHUNKED, ST_BODY_EOF, ST_DEAD };

struct mcpgw_client {
    struct bufferevent *bev;
    const struct mcpgw_client_ops *ops;
    void *arg;
    struct evbuffer *body; /* decoded body of a chunked/until-close non-streamed response */
    char *head_copy;       /* its head, kept until the body is complete */
    uint64_t remaining;    /* Content-Length bytes left */
    struct mcpgw_chunked ch;
    uint32_t head_len;
    uint32_t timeout_ms;
    uint8_t state;
    uint8_t stream : 1, in_cb : 1, freeing : 1, abort : 1, reused : 1, connected : 1, got_bytes : 1,
        keep_alive : 1;
    uint8_t held : 1; /* a stream's body: read through the held set (see below), not the bev */
};
_Static_assert(sizeof(struct mcpgw_client) <= 96, "keep the client connection small");

/* The state every client of this process shares. A process runs one event loop (one worker),
 * and the two epoll sets below serve all its held streams: it is per loop, not per client, so
 * it is one struct, not fields of each 96-byte client. */
static struct client_proc {
    /* Parsed heads are only read inside callbacks, one at a time: one scratch head. */
    struct mcpgw_http_head scratch;
    int held_fd, hup_fd; /* the held set and the hang-up set (see below); -1: not made yet */
    struct event *held_ev, *hup_ev;
    struct mcpgw_client **dead; /* released during a batch: freed after it */
    size_t ndead, dead_cap;
    int in_batch;
} P = {.held_fd = -1, .hup_fd = -1};

static const char *const err_names[MCPGW_CLIENT_ERR_COUNT] = {"ok",    "connect", "stale",
                                                              "reset", "timeout", "protocol"};

const char *mcpgw_client_err_str(enum mcpgw_client_err e)
{
    return (unsigned)e < MCPGW_CLIENT_ERR_COUNT ? err_names[e] : "?";
}

static void held_off(struct mcpgw_client *c);
static void release_later(struct mcpgw_client *c);

static void release(struct mcpgw_client *c)
{
    held_off(c);
    if (c->abort) {
        struct linger lg = {1, 0};
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    bufferevent_free(c->bev);
    if (c->body)
        evbuffer_free(c->body);
    free(c->head_copy);
    c->state = ST_DEAD;
    release_later(c);
}

void mcpgw_client_free(struct mcpgw_client *c, int abort)
{
    if (!c)
        return;
    c->abort |= abort ? 1 : 0;
    if (c->in_cb) {
        c->freeing = 1;
        c->state = ST_DEAD;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        held_off(c);
        return;
    }
    release(c);
}

int mcpgw_client_reusable(const struct mcpgw_client *c)
{
    return c->state == ST_IDLE && c->keep_alive && !c->freeing;
}

int mcpgw_client_reused(const struct mcpgw_client *c)
{
    return c->reused;
}

/* Run a callback; returns -1 when the connection was freed meanwhile (the caller must stop). */
#define CALL(c, expr)                                                                              \
    do {                                                                                           \
        (c)->in_cb = 1;                                                                            \
        expr;                                                                                      \
        (c)->in_cb = 0;                                                                            \
        if ((c)->freeing) {                                                                        \
            release(c);                                                                            \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static void clear_timeouts(struct mcpgw_client *c)
{
    bufferevent_set_timeouts(c->bev, NULL, NULL);
}

/* The request failed: the connection is dead from now on. */
static int fail(struct mcpgw_client *c, int err)
{
    c->state = ST_DEAD;
    c->keep_alive = 0;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    held_off(c);
    CALL(c, c->ops->done(c, err, NULL, c->arg));
    return -1;
}

/* The response is complete; body (may be NULL) is borrowed. */
static int complete(struct mcpgw_client *c, const char *head, size_t head_len, const char *body,
                    size_t body_len)
{
    struct mcpgw_client_resp r = {0};
    const char *why;
    c->state = ST_IDLE;
    c->reused = 1;
    clear_timeouts(c);
    if (head && mcpgw_http_parse_head(head, head_len, 1, &P.scratch, &why) == MCPGW_HTTP_OK) {
        r.status = P.scratch.status;
        r.head = &P.scratch;
    }
    r.body = body;
    r.body_len = body_len;
    CALL(c, c->ops->done(c, MCPGW_CLIENT_OK, &r, c->arg));
    return 0;
}

static void collect(void *arg, const char *data, size_t len)
{
    struct mcpgw_client *c = arg;
    if (c->stream) {
        if (!c->freeing) /* the feeding loop holds in_cb */
            c->ops->data(c, data, len, c->arg);
    } else {
        evbuffer_add(c->body, data, len);
    }
}

static int finish_collected(struct mcpgw_client *c)
{
    size_t n;
    const char *p;
    int rc;
    if (c->stream) {
        c->state = ST_IDLE;
        c->reused = 1;
        clear_timeouts(c);
        if (c->held) {
            held_off(c);
            bufferevent_enable(c->bev, EV_READ);
        }
        CALL(c, c->ops->done(c, MCPGW_CLIENT_OK, NULL, c->arg));
        return 0;
    }
    n = evbuffer_get_length(c->body);
    p = n ? (const char *)evbuffer_pullup(c->body, -1) : "";
    rc = complete(c, c->head_copy, c->head_len, p, n);
    if (rc == 0) {
        free(c->head_copy);
        c->head_copy = NULL;
        evbuffer_free(c->body);
        c->body = NULL;
    }
    return rc;
}

/* ---- held streams ----
 *
 * One process plays thousands of clients, and serves their sockets in the order they became
 * readable. During a fan-out to every session tens of thousands of notifications are queued in
 * those sockets, and a reconnecting session's answer, or an echo call's, would be read only
 * after all of them: a real client waits for nobody, so that delay is the load generator's, and
 * a failover drill would measure it as the gateway's. So once a stream's head is in, its socket
 * leaves the event loop for a second epoll set ("held"), which the loop polls as one socket at
 * its lowest priority, HELD_BATCH streams a turn: requests, stream setups and timers go first.
 * Held streams are read with one readv (libevent's reads ask FIONREAD first).
 *
 * A held stream's end must not wait its turn either: a real client whose stream breaks learns
 * it at once, and reconnects. So each held socket is also in a third set that reports only a
 * peer's FIN or RST (EPOLLRDHUP; data does not wake it), polled at the loop's first priority;
 * a stream found ended there is read to its end at once, the events before the end included. */

#define HELD_BATCH 64

static void release_later(struct mcpgw_client *c)
{
    if (!P.in_batch) {
        free(c);
        return;
    }
    if (P.ndead == P.dead_cap) {
        P.dead_cap = P.dead_cap ? P.dead_cap * 2 : 64;
        P.dead = xrealloc(P.dead, P.dead_cap * sizeof(*P.dead));
    }
    P.dead[P.ndead++] = c;
}

static void on_event(struct bufferevent *bev, short what, void *arg);
static int process(struct mcpgw_client *c);

/* One read of a held stream. Returns 1 if there may be more to read now. */
static int held_read(struct mcpgw_client *c)
{
    ssize_t r =
        mcpgw_evbuffer_readv(bufferevent_get_input(c->bev), bufferevent_getfd(c->bev), 16384);
    int e = errno;
    if (r < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == EINTR))
        return e == EINTR;
    if (r <= 0) {
        on_event(c->bev, BEV_EVENT_READING | (r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
        return 0;
    }
    process(c);
    return 1;
}

static void free_dead(void)
{
    P.in_batch = 0;
    for (size_t i = 0; i < P.ndead; i++)
        free(P.dead[i]);
    P.ndead = 0;
}

/* One of the two sets is readable: the held set (arg NULL), one read for each of up to
 * HELD_BATCH streams; or the hang-up set (arg non-NULL), each stream read to its end. */
static void on_set(evutil_socket_t fd, short what, void *arg)
{
    struct epoll_event evs[HELD_BATCH];
    int n = epoll_wait(fd, evs, HELD_BATCH, 0);
    (void)what;
    P.in_batch = 1;
    for (int i = 0; i < n; i++) {
        struct mcpgw_client *c = evs[i].data.ptr;
        /* not released or moved back by an earlier one */
        while (c->held && c->state != ST_DEAD && held_read(c) && arg)
            ;
    }
    free_dead();
}

static struct event *poll_set(struct event_base *base, int *fd, void *arg, int prio)
{
    struct event *ev;
    *fd = epoll_create1(EPOLL_CLOEXEC);
    if (*fd < 0)
        return NULL;
    ev = event_new(base, *fd, EV_READ | EV_PERSIST, on_set, arg);
    if (!ev) {
        close(*fd);
        *fd = -1;
        return NULL;
    }
    event_priority_set(ev, prio);
    event_add(ev, NULL);
    return ev;
}

/* The held and hang-up sets of this process, polled by base at its lowest and first
 * priorities. */
static int held_setup(struct event_base *base)
{
    int np = event_base_get_npriorities(base);
    if (P.held_ev)
        return 0;
    if (np < 3)
        return -1; /* without priorities the sets would only reorder nothing */
    P.held_ev = poll_set(base, &P.held_fd, NULL, np - 1);
    P.hup_ev = P.held_ev ? poll_set(base, &P.hup_fd, &P.hup_fd, 0) : NULL;
    if (!P.hup_ev) {
        if (P.held_ev) {
            event_free(P.held_ev);
            close(P.held_fd);
            P.held_ev = NULL;
            P.held_fd = -1;
        }
        return -1;
    }
    return 0;
}

static void held_on(struct mcpgw_client *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    struct epoll_event hup = {.events = EPOLLRDHUP, .data.ptr = c};
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (c->held || c->state == ST_DEAD || c->state == ST_IDLE ||
        held_setup(bufferevent_get_base(c->bev)) < 0)
        return; /* the bufferevent keeps reading */
    if (epoll_ctl(P.held_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return;
    if (epoll_ctl(P.hup_fd, EPOLL_CTL_ADD, fd, &hup) < 0) {
        epoll_ctl(P.held_fd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    c->held = 1;
    bufferevent_disable(c->bev, EV_READ);
}

static void held_off(struct mcpgw_client *c)
{
    evutil_socket_t fd;
    if (!c->held)
        return;
    fd = bufferevent_getfd(c->bev);
    epoll_ctl(P.held_fd, EPOLL_CTL_DEL, fd, NULL);
    epoll_ctl(P.hup_fd, EPOLL_CTL_DEL, fd, NULL);
    c->held = 0;
}

/* A head of head_len bytes is at the front of in. Sets up the body state. */
static int on_head(struct mcpgw_client *c, struct evbuffer *in, size_t head_len)
{
    const char *why = NULL;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    int no_body;
    if (mcpgw_http_parse_head(p, head_len, 1, &P.scratch, &why) != MCPGW_HTTP_OK)
        return fail(c, MCPGW_CLIENT_PROTOCOL);
    if (P.scratch.status >= 100 && P.scratch.status < 200) {
        evbuffer_drain(in, head_len);
        return 0; /* interim response: wait for the final one */
    }
    c->keep_alive = P.scratch.keep_alive;
    no_body = P.scratch.status == 204 || P.scratch.status == 304;
    if (no_body) {
        c->state = ST_BODY_CL;
        c->remaining = 0;
    } else if (P.scratch.chunked) {
        c->state = ST_BODY_CHUNKED;
        memset(&c->ch, 0, sizeof(c->ch));
    } else if (P.scratch.content_length >= 0) {
        if (!c->stream && (uint64_t)P.scratch.content_length > MAX_BODY)
            return fail(c, MCPGW_CLIENT_PROTOCOL);
        c->state = ST_BODY_CL;
        c->remaining = (uint64_t)P.scratch.content_length;
    } else {
        c->state = ST_BODY_EOF;
        c->keep_alive = 0;
    }
    if (c->stream) {
        struct mcpgw_client_resp r = {P.scratch.status, &P.scratch, NULL, 0};
        /* Streams have no deadline once the head is in: an idle SSE stream is normal. */
        clear_timeouts(c);
        CALL(c, c->ops->head(c, &r, c->arg));
        evbuffer_drain(in, head_len);
        held_on(c);
        return 0;
    }
    if (c->state == ST_BODY_CL) {
        c->head_len = (uint32_t)head_len; /* kept in the buffer until the body is complete */
        return 0;
    }
    c->head_copy = xmalloc(head_len);
    memcpy(c->head_copy, p, head_len);
    c->head_len = (uint32_t)head_len;
    c->body = evbuffer_new();
    evbuffer_drain(in, head_len);
    return 0;
}

/* Consume what the input holds. Returns -1 once the connection is freed or dead. */
static int process(struct mcpgw_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        switch (c->state) {
        case ST_IDLE:
            if (len)
                return fail(c, MCPGW_CLIENT_PROTOCOL); /* bytes nobody asked for */
            return 0;
        case ST_DEAD:
            return -1;
        case ST_HEAD: {
            struct evbuffer_ptr pos;
            if (len == 0)
                return 0;
            c->got_bytes = 1;
            pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (pos.pos < 0) {
                if (len > MAX_HEAD)
                    return fail(c, MCPGW_CLIENT_PROTOCOL);
                return 0;
            }
            if (on_head(c, in, (size_t)pos.pos + 4) < 0)
                return -1;
            break;
        }
        case ST_BODY_CL:
            if (c->stream) {
                size_t n = len < c->remaining ? len : (size_t)c->remaining;
                if (n) {
                    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
                    CALL(c, c->ops->data(c, p, n, c->arg));
                    evbuffer_drain(in, n);
                    c->remaining -= n;
                }
                if (c->remaining)
                    return 0;
                if (finish_collected(c) < 0)
                    return -1;
                break;
            }
            if (len < c->head_len + c->remaining)
                return 0;
            {
                size_t total = c->head_len + (size_t)c->remaining;
                const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)total);
                if (complete(c, p, c->head_len, p + c->head_len, (size_t)c->remaining) < 0)
                    return -1;
                evbuffer_drain(in, total);
            }
            break;
        case ST_BODY_CHUNKED: {
            struct evbuffer_iovec v[8];
            int nv;
            if (len == 0)
                return 0;
            nv = evbuffer_peek(in, -1, NULL, v, 8);
            for (int i = 0; i < nv && i < 8; i++) {
                ssize_t used;
                c->in_cb = 1;
                used = mcpgw_chunked_feed(&c->ch, v[i].iov_base, v[i].iov_len, collect, c);
                c->in_cb = 0;
                if (c->freeing) {
                    release(c);
                    return -1;
                }
                if (used < 0)
                    return fail(c, MCPGW_CLIENT_PROTOCOL);
                evbuffer_drain(in, (size_t)used);
                if (c->ch.done)
                    break;
                if ((size_t)used < v[i].iov_len)
                    break;
            }
            if (c->ch.done) {
                if (finish_collected(c) < 0)
                    return -1;
                break;
            }
            if (c->body && evbuffer_get_length(c->body) > MAX_BODY)
                return fail(c, MCPGW_CLIENT_PROTOCOL);
            if (nv <= 8)
                return 0;
            break; /* more segments than peeked: loop */
        }
        case ST_BODY_EOF:
            if (len == 0)
                return 0;
            if (c->stream) {
                const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
                CALL(c, c->ops->data(c, p, len, c->arg));
            } else {
                evbuffer_add_buffer(c->body, in);
                if (evbuffer_get_length(c->body) > MAX_BODY)
                    return fail(c, MCPGW_CLIENT_PROTOCOL);
            }
            evbuffer_drain(in, len);
            return 0;
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    process(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mcpgw_client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        return;
    }
    if (c->state == ST_DEAD)
        return;
    if (what & BEV_EVENT_TIMEOUT) {
        fail(c, MCPGW_CLIENT_TIMEOUT);
        return;
    }
    /* EOF or error. Deliver what was read first. */
    if (process(c) < 0)
        return;
    if (c->state == ST_BODY_EOF && (what & BEV_EVENT_EOF)) {
        c->keep_alive = 0;
        if (finish_collected(c) < 0)
            return;
        c->state = ST_DEAD;
        return;
    }
    if (c->state == ST_IDLE) {
        c->state = ST_DEAD;
        c->in_cb = 1;
        c->ops->idle_closed(c, c->arg);
        c->in_cb = 0;
        if (c->freeing)
            release(c);
        return;
    }
    if (!c->connected)
        fail(c, MCPGW_CLIENT_CONNECT);
    else if (!c->got_bytes && c->reused)
        fail(c, MCPGW_CLIENT_STALE);
    else
        fail(c, MCPGW_CLIENT_RESET);
}

struct mcpgw_client *mcpgw_client_new(struct event_base *base, const struct sockaddr *dst,
                                      socklen_t dstlen, const struct sockaddr *src,
                                      socklen_t srclen, const struct mcpgw_client_ops *ops,
                                      void *arg, char *err, size_t errlen)
{
    struct mcpgw_client *c = NULL;
    struct bufferevent *bev = NULL;
    int one = 1;
    evutil_socket_t fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src) {
        /* Let connect() pick the port per destination: one source address then serves ~28K
         * connections to each destination instead of ~28K in total. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, src, srclen) < 0) {
            snprintf(err, errlen, "bind source address: %s", strerror(errno));
            goto out;
        }
    }
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        snprintf(err, errlen, "bufferevent_socket_new failed");
        goto out;
    }
    fd = -1; /* the bufferevent owns it */
    c = xcalloc(1, sizeof(*c));
    c->bev = bev;
    c->ops = ops;
    c->arg = arg;
    c->state = ST_DEAD; /* a synchronous connect error fires on_event: ignore it there */
    c->keep_alive = 1;
    bufferevent_setcb(bev, on_read, NULL, on_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, dst, (int)dstlen) < 0) {
        snprintf(err, errlen, "connect: %s", strerror(errno));
        free(c);
        c = NULL;
        goto out;
    }
    c->state = ST_IDLE;
    bev = NULL;
out:
    if (bev)
        bufferevent_free(bev);
    if (fd >= 0)
        close(fd);
    return c;
}

int mcpgw_client_request(struct mcpgw_client *c, struct evbuffer *req, int stream,
                         uint32_t timeout_ms)
{
    if (c->state != ST_IDLE || c->freeing || !c->keep_alive)
        return -1;
    c->stream = stream ? 1 : 0;
    c->state = ST_HEAD;
    c->got_bytes = 0;
    c->timeout_ms = timeout_ms;
    if (timeout_ms) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, &tv, &tv);
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    bufferevent_write_buffer(c->bev, req);
    return 0;
}
