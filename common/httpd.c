/* httpd.c - HTTP/1.1 server connections on libevent (see httpd.h for the contract). */
#include "common/httpd.h"

#include "common/httpd_int.h"
#include "common/log.h"
#include "common/net.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct chunked_req {
    struct mcpgw_chunked dec;
    struct evbuffer *body;
    char *head; /* copy of the head bytes */
    size_t head_len;
};

_Static_assert(sizeof(struct mcpgw_http_conn) <= 96, "keep the connection struct small");

static void process(struct mcpgw_http_conn *c);
static void conn_free(struct mcpgw_http_conn *c);

void mcpgw_httpd_config_defaults(struct mcpgw_httpd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_head_bytes = 32 * 1024;
    cfg->max_body_bytes = 16 * 1024 * 1024;
    cfg->head_timeout_ms = 10000;
    cfg->idle_timeout_ms = 300000;
    cfg->max_conns = 18000;
    cfg->max_output_bytes = 4 * 1024 * 1024;
    cfg->h2_max_streams = 20000;
    cfg->tcp_keepalive_s = MCPGW_TCP_KEEPIDLE_S;
}

/* ---- connection lists: idle and head are FIFO with one constant timeout each, so deadlines
 * are in order; busy holds the rest so that mcpgw_httpd_free finds every connection ---- */

static struct conn_list *list_of(struct mcpgw_http_conn *c, int which)
{
    return which == LIST_IDLE ? &c->srv->idle : which == LIST_HEAD ? &c->srv->head : &c->srv->busy;
}

static void list_remove(struct mcpgw_http_conn *c)
{
    struct conn_list *l;
    if (c->list == LIST_NONE)
        return;
    l = list_of(c, c->list);
    TAILQ_REMOVE(l, c, link);
    c->list = LIST_NONE;
}

static void list_append(struct mcpgw_http_conn *c, int which, uint32_t timeout_ms)
{
    struct conn_list *l;
    list_remove(c);
    if (!timeout_ms)
        which = LIST_BUSY; /* no timer, but still tracked */
    l = list_of(c, which);
    c->list = (uint8_t)which;
    c->deadline_ms = mcpgw_now_ms() + timeout_ms;
    TAILQ_INSERT_TAIL(l, c, link);
}

void mcpgw_httpd_list_append(struct mcpgw_http_conn *c, int which, uint32_t timeout_ms)
{
    list_append(c, which, timeout_ms);
}

static void write_simple(struct mcpgw_http_conn *c, int status, const char *msg, int close_conn)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = strlen(msg);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s"
                        "\r\n%s",
                        status, mcpgw_http_reason(status), len,
                        close_conn ? "Connection: close\r\n" : "", msg);
}

/* Answer an error and close once it is flushed. */
static void fail(struct mcpgw_http_conn *c, int status, const char *why)
{
    char msg[160];
    log_debug("http: %d %s (fd %d)", status, why, mcpgw_http_conn_fd(c));
    snprintf(msg, sizeof(msg), "%s\n", why);
    write_simple(c, status, msg, 1);
    /* Linger: keep reading (and discarding) what the client is still sending until it has our
     * answer and closes, or the head timeout passes. Closing with unread input would make the
     * kernel reset the connection, and the client could lose the 413 it is owed. */
    c->state = ST_CLOSING;
    c->keep_alive = 0;
    c->linger = 1;
    list_append(c, LIST_HEAD, c->srv->cfg.head_timeout_ms);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_httpd *s = arg;
    uint64_t now = mcpgw_now_ms();
    while (!TAILQ_EMPTY(&s->head) && TAILQ_FIRST(&s->head)->deadline_ms <= now) {
        struct mcpgw_http_conn *c = TAILQ_FIRST(&s->head);
        if (c->state == ST_CLOSING)
            conn_free(c); /* lingered long enough */
        else
            fail(c, 408, "request head not received in time");
    }
    while (!TAILQ_EMPTY(&s->idle) && TAILQ_FIRST(&s->idle)->deadline_ms <= now) {
        struct mcpgw_http_conn *c = TAILQ_FIRST(&s->idle);
        if (c->is_h2)
            mcpgw_h2_idle(c); /* GOAWAY first */
        else
            conn_free(c);
    }
}

static void chunk_data(void *arg, const char *data, size_t len)
{
    evbuffer_add(arg, data, len);
}

static void dispatch(struct mcpgw_http_conn *c, const char *head, size_t head_len, const char *body,
                     size_t body_len)
{
    struct mcpgw_http_req req;
    const char *why = NULL, *q;
    if (mcpgw_http_parse_head(head, head_len, 0, &req.head, &why) != MCPGW_HTTP_OK) {
        fail(c, 400, why ? why : "malformed request");
        return;
    }
    q = memchr(req.head.target, '?', req.head.target_len);
    req.path = req.head.target;
    req.path_len = q ? (size_t)(q - req.head.target) : req.head.target_len;
    req.query = q ? q + 1 : NULL;
    req.query_len = q ? req.head.target_len - req.path_len - 1 : 0;
    req.body = body;
    req.body_len = body_len;
    req.admitted = 0;
    c->keep_alive = req.head.keep_alive;
    c->is_head_req = req.head.method == MCPGW_HTTP_HEAD;
    c->state = ST_HANDLING;
    c->in_handler = 1;
    c->srv->handler(c, &req, c->srv->arg);
    c->in_handler = 0;
}

/* Start on a head found in the input: validate framing and limits, then wait for the body. */
static int start_request(struct mcpgw_http_conn *c, struct evbuffer *in)
{
    struct mcpgw_http_head h;
    const char *why = NULL;
    const char *data = (const char *)evbuffer_pullup(in, c->head_len);
    int rc = mcpgw_http_parse_head(data, c->head_len, 0, &h, &why);
    switch (rc) {
    case MCPGW_HTTP_OK:
        break;
    case MCPGW_HTTP_TOO_MANY:
        fail(c, 431, why);
        return -1;
    case MCPGW_HTTP_UNSUPPORTED:
        fail(c, 501, why);
        return -1;
    case MCPGW_HTTP_BAD_VERSION:
        fail(c, 505, why);
        return -1;
    default:
        fail(c, 400, why ? why : "malformed request");
        return -1;
    }
    list_append(c, LIST_BUSY, 0);
    if (h.content_length > 0 && (uint64_t)h.content_length > c->srv->cfg.max_body_bytes) {
        fail(c, 413, "request body over the limit");
        return -1;
    }
    if (h.expect_continue && (h.chunked || h.content_length > 0))
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (h.chunked) {
        c->u.cr = xcalloc(1, sizeof(*c->u.cr));
        c->u.cr->head = xmalloc(c->head_len);
        c->u.cr->head_len = c->head_len;
        evbuffer_remove(in, c->u.cr->head, c->head_len);
        c->u.cr->body = evbuffer_new();
        c->state = ST_CHUNKED;
    } else {
        c->body_len = h.content_length > 0 ? h.content_length : 0;
        c->state = ST_BODY;
    }
    /* The whole request must arrive within the head timeout too (slow bodies). */
    list_append(c, LIST_HEAD, c->srv->cfg.head_timeout_ms);
    return 0;
}

static void process(struct mcpgw_http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (c->state == ST_CLOSING && c->linger) {
            evbuffer_drain(in, avail);
            return;
        }
        if (c->dead || c->state == ST_HANDLING || c->state == ST_STREAMING ||
            c->state == ST_CLOSING)
            return;
        if (c->state == ST_HEAD) {
            size_t lim = c->srv->cfg.max_head_bytes, n = avail < lim ? avail : lim, end;
            const char *data;
            if (avail == 0) {
                if (c->list != LIST_IDLE)
                    list_append(c, LIST_IDLE, c->srv->cfg.idle_timeout_ms);
                return;
            }
            if (c->list != LIST_HEAD)
                list_append(c, LIST_HEAD, c->srv->cfg.head_timeout_ms);
            data = (const char *)evbuffer_pullup(in, (ssize_t)n);
            /* Resume the search a few bytes back so a split "\r\n\r\n" is found. */
            {
                size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
                end = mcpgw_http_head_end(data + from, n - from);
                if (end)
                    end += from;
            }
            if (!end) {
                if (avail >= lim) {
                    fail(c, 431, "request head over the limit");
                    return;
                }
                c->scanned = (uint32_t)n;
                return;
            }
            c->scanned = 0;
            c->head_len = (uint32_t)end;
            if (start_request(c, in) < 0)
                return;
            continue;
        }
        if (c->state == ST_BODY) {
            size_t total = c->head_len + (size_t)c->body_len;
            const char *data;
            if (avail < total)
                return;
            list_append(c, LIST_BUSY, 0);
            data = (const char *)evbuffer_pullup(in, (ssize_t)total);
            dispatch(c, data, c->head_len, data + c->head_len, (size_t)c->body_len);
            evbuffer_drain(in, total);
            continue;
        }
        if (c->state == ST_CHUNKED) {
            struct chunked_req *cr = c->u.cr;
            const char *data = (const char *)evbuffer_pullup(in, -1);
            ssize_t used = mcpgw_chunked_feed(&cr->dec, data, avail, chunk_data, cr->body);
            if (used < 0) {
                fail(c, 400, "invalid chunked encoding");
                return;
            }
            evbuffer_drain(in, (size_t)used);
            if (evbuffer_get_length(cr->body) > c->srv->cfg.max_body_bytes) {
                fail(c, 413, "request body over the limit");
                return;
            }
            if (!cr->dec.done)
                return;
            list_append(c, LIST_BUSY, 0);
            c->u.cr = NULL;
            {
                size_t blen = evbuffer_get_length(cr->body);
                const char *body = (const char *)evbuffer_pullup(cr->body, -1);
                dispatch(c, cr->head, cr->head_len, body, blen);
            }
            evbuffer_free(cr->body);
            free(cr->head);
            free(cr);
            continue;
        }
        return;
    }
}

/* Whether the first bytes of a connection are the h2 client preface: 1 yes, 0 not known yet (all
 * bytes so far are a prefix of it), -1 no. */
static int sniff_h2(struct mcpgw_http_conn *c)
{
    char buf[MCPGW_H2_PREFACE_LEN];
    ev_ssize_t n = evbuffer_copyout(bufferevent_get_input(c->bev), buf, sizeof(buf));
    if (n <= 0)
        return 0;
    if (memcmp(buf, MCPGW_H2_PREFACE, (size_t)n) != 0)
        return -1;
    return n == MCPGW_H2_PREFACE_LEN ? 1 : 0;
}

/* libevent 2.1 reads at most 4096 bytes per read callback (EVBUFFER_MAX_READ), so a request a
 * little over that (a tool call with 4 KB of arguments) took one more turn of the loop and three
 * more system calls (epoll_wait, FIONREAD, readv) before it could be handled. When a read may
 * have stopped at that cap, take what the socket holds now, up to the read watermark. EOF and
 * errors are left for the bufferevent to find on its next read. */
static void read_rest(struct mcpgw_http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t high = 0;
    bufferevent_getwatermark(c->bev, EV_READ, NULL, &high);
    while (evbuffer_get_length(in) >= 4096 && (!high || evbuffer_get_length(in) < high)) {
        ssize_t n = mcpgw_evbuffer_readv(in, (int)bufferevent_getfd(c->bev), 16384);
        if (n < 16384)
            return; /* nothing more now; EOF and errors are seen by the next read */
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct mcpgw_http_conn *c = arg;
    if (c->is_h2) {
        mcpgw_h2_on_read(c);
        return;
    }
    if (c->fresh) {
        int h2 = sniff_h2(c);
        if (h2 == 0)
            return;
        c->fresh = 0;
        if (h2 > 0) {
            mcpgw_h2_start(c);
            return;
        }
    }
    read_rest(c);
    process(c);
    if (c->dead && !c->in_handler)
        conn_free(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct mcpgw_http_conn *c = arg;
    if (c->is_h2) {
        mcpgw_h2_on_write(c);
        return;
    }
    if (c->state != ST_CLOSING || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (!c->linger) {
        conn_free(c);
        return;
    }
    /* The refusal is out: tell the client we are done sending, then wait for its close. */
    shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mcpgw_http_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        int e = EVUTIL_SOCKET_ERROR();
        if ((what & BEV_EVENT_ERROR) &&
            (e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN)) {
            /* No FIN, no RST: keep-alive probes or data went unacknowledged until the socket
             * timed out (mcpgw_tcp_*). The kernel reports the last ICMP or neighbour error it
             * saw meanwhile instead of ETIMEDOUT, if any: the same vanished peer. */
            log_info("http: connection on fd %d timed out (%s): the peer is gone or has kept its "
                     "window closed",
                     (int)bufferevent_getfd(bev), strerror(e));
            if (c->srv->cfg.conns_timed_out)
                (*c->srv->cfg.conns_timed_out)++;
        }
        /* A half-close from a client that has sent its request and waits for a response is
         * still a closed conversation for us: SSE needs the socket open both ways. */
        conn_free(c);
    }
}

static void conn_free(struct mcpgw_http_conn *c)
{
    if (c->in_handler) {
        c->dead = 1;
        return;
    }
    if (c->is_h2)
        mcpgw_h2_shutdown(c); /* the streams' close callbacks */
    if (c->on_close) {
        mcpgw_http_close_fn cb = c->on_close;
        c->on_close = NULL;
        cb(c, c->close_arg);
    }
    list_remove(c);
    if (!c->is_h2 && c->u.cr) {
        evbuffer_free(c->u.cr->body);
        free(c->u.cr->head);
        free(c->u.cr);
    }
    bufferevent_free(c->bev);
    c->srv->nconns--;
    free(c);
}

void mcpgw_httpd_conn_free(struct mcpgw_http_conn *c)
{
    conn_free(c);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct mcpgw_httpd *s = arg;
    struct mcpgw_http_conn *c;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A client gone behind a NAT would otherwise keep its GET stream and session forever. */
    mcpgw_tcp_keepalive(fd, s->cfg.tcp_keepalive_s);
    if (s->cfg.tcp_user_timeout_ms)
        mcpgw_tcp_user_timeout(fd, s->cfg.tcp_user_timeout_ms);
    c = xcalloc(1, sizeof(*c));
    c->hdr.kind = HTTPD_KIND_H1;
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    s->nconns++;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* Bound what a client can make us buffer: one maximal request plus slack. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             s->cfg.max_head_bytes + s->cfg.max_body_bytes + 65536);
    if (s->nconns > s->cfg.max_conns) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        static const char msg[] = "too many connections\n";
        evbuffer_add_printf(out,
                            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: "
                            "text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                            sizeof(msg) - 1, msg);
        c->state = ST_CLOSING;
        list_append(c, LIST_BUSY, 0);
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    c->state = ST_HEAD;
    c->fresh = 1;
    list_append(c, LIST_HEAD, s->cfg.head_timeout_ms);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void mcpgw_httpd_set_limits(struct mcpgw_httpd *s, size_t max_head_bytes, size_t max_body_bytes,
                            uint32_t max_conns)
{
    size_t old = s->cfg.max_head_bytes + s->cfg.max_body_bytes,
           now = max_head_bytes + max_body_bytes;
    struct conn_list *lists[3] = {&s->idle, &s->head, &s->busy};
    s->cfg.max_head_bytes = max_head_bytes;
    s->cfg.max_body_bytes = max_body_bytes;
    s->cfg.max_conns = max_conns;
    if (now <= old)
        return;
    /* The read bound set at accept (one maximal request plus slack) must let the larger request
     * in. It is raised to the largest limits ever set, so a connection accepted under any of
     * them is never bounded below what it was promised. */
    if (now > s->read_bound)
        s->read_bound = now;
    for (int i = 0; i < 3; i++) {
        struct mcpgw_http_conn *c;
        TAILQ_FOREACH(c, lists[i], link)
        if (c->bev)
            bufferevent_setwatermark(c->bev, EV_READ, 0, s->read_bound + 65536);
    }
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct mcpgw_httpd *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    uint64_t now = mcpgw_now_ms();
    if (now - s->last_accept_warn > 1000) {
        s->last_accept_warn = now;
        log_warn("accept failed: %s (connections: %u)", evutil_socket_error_to_string(err),
                 s->nconns);
    }
}

struct mcpgw_httpd *mcpgw_httpd_new(struct event_base *base, const struct mcpgw_httpd_config *cfg,
                                    mcpgw_http_handler_fn handler, void *arg)
{
    struct mcpgw_httpd *s = xcalloc(1, sizeof(*s));
    struct timeval tv = {0, 250000};
    TAILQ_INIT(&s->idle);
    TAILQ_INIT(&s->head);
    TAILQ_INIT(&s->busy);
    s->base = base;
    s->cfg = *cfg;
    s->read_bound = cfg->max_head_bytes + cfg->max_body_bytes;
    s->handler = handler;
    s->arg = arg;
    s->sweep = event_new(base, -1, EV_PERSIST, on_sweep, s);
    event_add(s->sweep, &tv);
    return s;
}

int mcpgw_httpd_listen(struct mcpgw_httpd *s, const char *addr, char *err, size_t errlen)
{
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    struct addrinfo *res = mcpgw_resolve_listen(addr, err, errlen);

    if (!res)
        return -1;
    if (s->cfg.reuseport)
        flags |= LEV_OPT_REUSEABLE_PORT;
    s->lev = evconnlistener_new_bind(s->base, on_accept, s, flags, 4096, res->ai_addr,
                                     (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!s->lev) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(s->lev, on_accept_error);
    return 0;
}

void mcpgw_httpd_stop_accepting(struct mcpgw_httpd *s)
{
    if (s->lev) {
        evconnlistener_free(s->lev);
        s->lev = NULL;
    }
}

void mcpgw_httpd_free(struct mcpgw_httpd *s)
{
    if (!s)
        return;
    mcpgw_httpd_stop_accepting(s);
    while (!TAILQ_EMPTY(&s->idle))
        conn_free(TAILQ_FIRST(&s->idle));
    while (!TAILQ_EMPTY(&s->head))
        conn_free(TAILQ_FIRST(&s->head));
    /* Streams, requests awaiting an answer and responses still flushing: their close callbacks
     * tell the application, which must not use them afterwards. */
    while (!TAILQ_EMPTY(&s->busy))
        conn_free(TAILQ_FIRST(&s->busy));
    event_free(s->sweep);
    free(s);
}

uint32_t mcpgw_httpd_conn_count(const struct mcpgw_httpd *s)
{
    return s->nconns;
}

/* Formats the response head into buf (as snprintf: the length it needs, which may be size or
 * more when it did not fit). clen < 0: a chunked body. */
static int format_head(const struct mcpgw_http_conn *c, char *buf, size_t size, int status,
                       const char *ctype, const char *extra, int64_t clen)
{
    char lenbuf[48];
    if (clen >= 0)
        snprintf(lenbuf, sizeof(lenbuf), "Content-Length: %lld\r\n", (long long)clen);
    else
        snprintf(lenbuf, sizeof(lenbuf), "Transfer-Encoding: chunked\r\n");
    return snprintf(buf, size, "HTTP/1.1 %d %s\r\n%s%s%s%s%s%s\r\n", status,
                    mcpgw_http_reason(status), ctype ? "Content-Type: " : "", ctype ? ctype : "",
                    ctype ? "\r\n" : "", lenbuf, extra ? extra : "",
                    c->keep_alive ? "" : "Connection: close\r\n");
}

static void write_head(struct mcpgw_http_conn *c, int status, const char *ctype, const char *extra,
                       int64_t clen)
{
    char small[1024], *buf = small;
    int n = format_head(c, small, sizeof(small), status, ctype, extra, clen);
    if (n >= (int)sizeof(small)) {
        buf = xmalloc((size_t)n + 1);
        format_head(c, buf, (size_t)n + 1, status, ctype, extra, clen);
    }
    if (n > 0)
        evbuffer_add(bufferevent_get_output(c->bev), buf, (size_t)n);
    if (buf != small)
        free(buf);
}

/* Writes what fits of head + body straight to the socket; returns the bytes written (0 when the
 * socket would block or failed: the bufferevent then meets the error itself). MSG_NOSIGNAL: a
 * client gone must not raise SIGPIPE, whatever the program's signal setup. */
static size_t write_now(struct mcpgw_http_conn *c, const char *head, size_t hlen, const void *body,
                        size_t blen)
{
    struct iovec iov[2] = {{(void *)head, hlen}, {(void *)body, blen}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
    ssize_t n;
    do
        n = sendmsg((int)bufferevent_getfd(c->bev), &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n > 0 ? (size_t)n : 0;
}

/* The response is complete: read the next request, or close once flushed. */
static void finish(struct mcpgw_http_conn *c)
{
    c->on_close = NULL;
    if (!c->keep_alive || c->dead) {
        c->state = ST_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            mcpgw_http_conn_close(c);
        return;
    }
    c->state = ST_HEAD;
    if (!c->in_handler) {
        process(c);
        if (c->dead && !c->in_handler)
            conn_free(c);
    }
}

void mcpgw_http_respond(struct mcpgw_http_conn *c, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t len)
{
    if (httpd_is_h2_stream(c)) {
        mcpgw_h2_respond((struct h2_stream *)c, status, content_type, extra_headers, body, len);
        return;
    }
    size_t blen = c->is_head_req ? 0 : len;
    if (c->state != ST_HANDLING)
        return;
    if (blen < 65536 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        /* Nothing queued before it: write it now. Queued in the bufferevent, every answer cost
         * arming and disarming its write event (two epoll_ctl) and one more turn of the loop,
         * a fifth of a node's system calls per request (docs/federation.md, "Where the time
         * goes"); an answer of a request usually fits the socket's buffer at once. */
        char head[1024];
        int hl =
            format_head(c, head, sizeof(head), status, content_type, extra_headers, (int64_t)len);
        if (hl > 0 && hl < (int)sizeof(head)) {
            struct evbuffer *out = bufferevent_get_output(c->bev);
            size_t done = write_now(c, head, (size_t)hl, body, blen);
            if (done < (size_t)hl) {
                evbuffer_add(out, head + done, (size_t)hl - done);
                done = 0;
            } else {
                done -= (size_t)hl;
            }
            if (done < blen)
                evbuffer_add(out, (const char *)body + done, blen - done);
            finish(c);
            return;
        }
    }
    write_head(c, status, content_type, extra_headers, (int64_t)len);
    if (len && !c->is_head_req)
        evbuffer_add(bufferevent_get_output(c->bev), body, len);
    finish(c);
}

void mcpgw_http_stream_begin(struct mcpgw_http_conn *c, int status, const char *content_type,
                             const char *extra_headers)
{
    if (httpd_is_h2_stream(c)) {
        mcpgw_h2_stream_begin((struct h2_stream *)c, status, content_type, extra_headers);
        return;
    }
    if (c->state != ST_HANDLING)
        return;
    write_head(c, status, content_type, extra_headers, -1);
    c->stream_chunked = 1;
    c->state = ST_STREAMING;
}

int mcpgw_http_stream_write(struct mcpgw_http_conn *c, const void *data, size_t len)
{
    struct evbuffer *out;
    if (httpd_is_h2_stream(c))
        return mcpgw_h2_stream_write((struct h2_stream *)c, data, len);
    if (c->state != ST_STREAMING || c->dead)
        return -1;
    out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) > c->srv->cfg.max_output_bytes) {
        if (c->srv->cfg.streams_dropped)
            (*c->srv->cfg.streams_dropped)++;
        log_warn("http: dropping a stream whose client does not read (%zu bytes queued)",
                 evbuffer_get_length(out));
        mcpgw_http_conn_close(c);
        return -1;
    }
    if (!len)
        return 0;
    evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    evbuffer_add(out, "\r\n", 2);
    return 0;
}

void mcpgw_http_stream_end(struct mcpgw_http_conn *c)
{
    if (httpd_is_h2_stream(c)) {
        mcpgw_h2_stream_end((struct h2_stream *)c);
        return;
    }
    if (c->state != ST_STREAMING)
        return;
    evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
    c->stream_chunked = 0;
    finish(c);
}

void mcpgw_http_conn_close(struct mcpgw_http_conn *c)
{
    if (httpd_is_h2_stream(c)) {
        mcpgw_h2_close((struct h2_stream *)c);
        return;
    }
    conn_free(c);
}

void mcpgw_http_conn_set_close_cb(struct mcpgw_http_conn *c, mcpgw_http_close_fn cb, void *arg)
{
    if (httpd_is_h2_stream(c)) {
        mcpgw_h2_set_close_cb((struct h2_stream *)c, cb, arg);
        return;
    }
    c->on_close = cb;
    c->close_arg = arg;
}

size_t mcpgw_http_conn_pending_output(const struct mcpgw_http_conn *c)
{
    if (httpd_is_h2_stream(c))
        return mcpgw_h2_pending_output((const struct h2_stream *)c);
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

int mcpgw_http_conn_fd(const struct mcpgw_http_conn *c)
{
    if (httpd_is_h2_stream(c))
        return mcpgw_h2_fd((const struct h2_stream *)c);
    return (int)bufferevent_getfd(c->bev);
}
