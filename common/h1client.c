/* h1client.c - HTTP/1.1 over plain TCP on a libevent loop: one persistent read event per
 * connection (armed from connect to close, idle or busy), the request written straight to the
 * socket, the answer parsed from one read per readiness. No bufferevents, no per-request event
 * changes: a call on a kept-alive connection costs one send, one read and its share of
 * epoll_wait. */
#include "common/h1client.h"

#include "common/util.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* A response head (status line and headers, 1xx heads each on their own) larger than this is
 * refused: no server of ours sends more than a few hundred bytes. */
#define H1_HEAD_MAX (64 * 1024)
/* Idle connections kept per origin (httpclient.c's MCPGW_HC_MAX_IDLE_CONNS). */
#define H1_MAX_IDLE 512L
/* One read per readiness into this; a full read is followed by another, up to H1_READS. */
#define H1_READ     16384
#define H1_READS    64
#define H1_HOST_MAX 256

enum conn_state { C_RESOLVING, C_CONNECTING, C_BUSY, C_IDLE };
enum body_mode { B_NONE, B_LENGTH, B_CHUNKED, B_CLOSE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct h1_conn;

/* host:port; its idle connections, most recently used first. Kept until the client is freed
 * (a gateway talks to a handful of origins). */
struct h1_origin {
    struct h1_origin *next;
    struct h1_conn *idle;
    long nidle;
    char port[8];
    char *host;     /* to connect to (no brackets) */
    char *hostport; /* the Host header */
};

/* A name being resolved for conn; freed by its callback, which libevent always runs (with
 * EVUTIL_EAI_CANCEL after a cancel), so conn is cleared when the connection goes first. */
struct h1_lookup {
    struct h1_conn *conn;
    struct mcpgw_h1 *c; /* NULL once the client is freed */
    struct evdns_getaddrinfo_request *dns;
    struct h1_lookup *prev, *next; /* the client's lookups whose callback has not run */
};

struct h1_conn {
    struct mcpgw_h1 *c;
    struct h1_origin *o;
    evutil_socket_t fd;
    enum conn_state state;
    struct event *rev; /* persistent EV_READ, from connect to close */
    struct event *wev; /* connect completion (with the connect timeout), partial writes */
    struct mcpgw_h1_req *req;
    struct h1_conn *prev, *next; /* the origin's idle list */
    struct evutil_addrinfo *ai, *ai_next;
    struct h1_lookup *lk;
    int last_errno;
};

struct mcpgw_h1_req {
    struct mcpgw_h1 *c;
    struct h1_origin *o;
    struct h1_conn *conn;
    struct mcpgw_h1_cbs cbs;
    void *arg;
    struct mcpgw_h1_req *prev, *next; /* every live request */
    struct mcpgw_h1_req *fnext;       /* failure queue */
    struct event *timer;              /* whole request, when timeout_ms > 0 */
    long timeout_ms, connect_timeout_ms;
    char *out; /* request head and body */
    size_t out_len, out_off;
    unsigned stream : 1, head_only : 1, in_cb : 1, in_done : 1, dead : 1, failed : 1;
    unsigned reused : 1, retried : 1, got_byte : 1, new_conns : 1, head_done : 1, keep : 1;
    unsigned cr : 1;
    enum mcpgw_hc_err ferr;
    long status;
    char *hbuf; /* the head being read; its lines NUL-terminated once parsed */
    size_t hlen, hcap;
    char **lines; /* header lines ("Name: value") of the final head */
    size_t nlines;
    enum body_mode body;
    enum chunk_state ch;
    unsigned long long left; /* body or chunk bytes still to come */
    size_t chlen;            /* chunk size line or trailer bytes so far */
    char chl[24];
    char fwhy[200];
};

struct mcpgw_h1 {
    struct event_base *base;
    struct evdns_base *dns; /* made at the first name to resolve */
    struct h1_lookup *lookups;
    struct event *kick; /* reports failures outside mcpgw_h1_start's caller */
    struct h1_origin *origins;
    struct mcpgw_h1_req *all;
    struct mcpgw_h1_req *failq, **failq_tail;
};

static void open_conn(struct mcpgw_h1_req *r);
static void send_some(struct h1_conn *k);

/* ---- connections ---- */

static void conn_close(struct h1_conn *k)
{
    if (k->state == C_IDLE) {
        if (k->prev)
            k->prev->next = k->next;
        else
            k->o->idle = k->next;
        if (k->next)
            k->next->prev = k->prev;
        k->o->nidle--;
    }
    if (k->lk) {
        k->lk->conn = NULL;
        evdns_getaddrinfo_cancel(k->lk->dns);
    }
    if (k->rev)
        event_free(k->rev);
    if (k->wev)
        event_free(k->wev);
    if (k->fd >= 0)
        evutil_closesocket(k->fd);
    if (k->ai)
        evutil_freeaddrinfo(k->ai);
    if (k->req)
        k->req->conn = NULL;
    free(k);
}

/* Keeps k for the next request to its origin, its read event still armed. */
static void idle_put(struct h1_conn *k)
{
    struct h1_origin *o = k->o;
    if (k->req)
        k->req->conn = NULL;
    k->req = NULL;
    if (o->nidle >= H1_MAX_IDLE) {
        conn_close(k);
        return;
    }
    k->state = C_IDLE;
    k->prev = NULL;
    k->next = o->idle;
    if (o->idle)
        o->idle->prev = k;
    o->idle = k;
    o->nidle++;
}

static struct h1_conn *idle_take(struct h1_origin *o)
{
    struct h1_conn *k = o->idle;
    if (!k)
        return NULL;
    o->idle = k->next;
    if (o->idle)
        o->idle->prev = NULL;
    o->nidle--;
    k->prev = k->next = NULL;
    k->state = C_BUSY;
    return k;
}

/* ---- ending a request ---- */

static void req_free(struct mcpgw_h1_req *r)
{
    struct mcpgw_h1 *c = r->c;
    if (r->conn)
        conn_close(r->conn);
    if (r->failed) {
        struct mcpgw_h1_req **pp = &c->failq;
        while (*pp && *pp != r)
            pp = &(*pp)->fnext;
        if (*pp)
            *pp = r->fnext;
        if (c->failq_tail == &r->fnext)
            c->failq_tail = pp;
    }
    if (r->timer)
        event_free(r->timer);
    if (r->prev)
        r->prev->next = r->next;
    else
        c->all = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r->out);
    free(r->hbuf);
    free(r->lines);
    free(r);
}

static void finish(struct mcpgw_h1_req *r, enum mcpgw_hc_err err, const char *why)
{
    r->in_done = 1;
    r->cbs.on_done(r->arg, err, why);
    req_free(r);
}

/* The request failed with err: its connection is closed, and the failure is reported from the
 * loop (never inside mcpgw_h1_start). A request on a reused connection that broke before any
 * byte of the answer came is sent once more on a new connection, as libcurl does: the server
 * closed the idle connection as we wrote to it, so it never saw the request. */
static void req_fail(struct mcpgw_h1_req *r, enum mcpgw_hc_err err, const char *fmt, ...)
{
    va_list ap;
    if (r->conn)
        conn_close(r->conn);
    if (err == MCPGW_HC_E_TRANSFER && r->reused && !r->got_byte && !r->retried) {
        r->retried = 1;
        r->reused = 0;
        r->out_off = 0;
        r->hlen = 0;
        open_conn(r);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(r->fwhy, sizeof(r->fwhy), fmt, ap);
    va_end(ap);
    if (r->timer)
        evtimer_del(r->timer);
    r->ferr = err;
    r->failed = 1;
    r->fnext = NULL;
    *r->c->failq_tail = r;
    r->c->failq_tail = &r->fnext;
    event_active(r->c->kick, EV_TIMEOUT, 0);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_h1 *c = arg;
    struct mcpgw_h1_req *r;
    while ((r = c->failq)) {
        c->failq = r->fnext;
        if (!c->failq)
            c->failq_tail = &c->failq;
        r->failed = 0;
        finish(r, r->ferr, r->fwhy);
    }
}

static void on_req_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_h1_req *r = arg;
    if (!r->failed)
        req_fail(r, MCPGW_HC_E_TIMEOUT, "no complete answer from %s within %ld ms", r->o->hostport,
                 r->timeout_ms);
}

/* The answer is complete; extra bytes after it mean the server is confused: no reuse. */
static void complete(struct mcpgw_h1_req *r, size_t extra)
{
    struct h1_conn *k = r->conn;
    if (k && r->keep && !r->stream && extra == 0 && r->out_off == r->out_len)
        idle_put(k);
    else if (k)
        conn_close(k);
    if (r->timer)
        evtimer_del(r->timer);
    finish(r, MCPGW_HC_OK, "ok");
}

/* ---- opening a connection ---- */

static void on_conn_read(evutil_socket_t fd, short what, void *arg);

static void connected(struct h1_conn *k)
{
    evutil_freeaddrinfo(k->ai);
    k->ai = k->ai_next = NULL;
    k->state = C_BUSY;
    event_add(k->rev, NULL);
    send_some(k);
}

static void on_conn_write(evutil_socket_t fd, short what, void *arg);

/* Connects to the next address of k->ai; the request fails when none is left. */
static void try_next(struct h1_conn *k)
{
    struct mcpgw_h1_req *r = k->req;
    while (k->ai_next) {
        struct evutil_addrinfo *a = k->ai_next;
        int one = 1, idle = 60;
        k->ai_next = a->ai_next;
        k->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (k->fd < 0) {
            k->last_errno = errno;
            continue;
        }
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* Event streams stay open for hours: notice a peer that vanished. */
        setsockopt(k->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(k->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(k->fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
        k->rev = event_new(k->c->base, k->fd, EV_READ | EV_PERSIST, on_conn_read, k);
        k->wev = event_new(k->c->base, k->fd, EV_WRITE, on_conn_write, k);
        if (connect(k->fd, a->ai_addr, a->ai_addrlen) == 0) {
            connected(k);
            return;
        }
        if (errno == EINPROGRESS) {
            long ms = r->connect_timeout_ms;
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            k->state = C_CONNECTING;
            event_add(k->wev, &tv);
            return;
        }
        k->last_errno = errno;
        event_free(k->rev);
        event_free(k->wev);
        k->rev = k->wev = NULL;
        evutil_closesocket(k->fd);
        k->fd = -1;
    }
    req_fail(r, MCPGW_HC_E_CONNECT, "could not connect to %s: %s", r->o->hostport,
             strerror(k->last_errno ? k->last_errno : ECONNREFUSED));
}

static void on_resolved(int res, struct evutil_addrinfo *ai, void *arg)
{
    struct h1_lookup *lk = arg;
    struct h1_conn *k = lk->conn;
    if (lk->c) {
        if (lk->prev)
            lk->prev->next = lk->next;
        else
            lk->c->lookups = lk->next;
        if (lk->next)
            lk->next->prev = lk->prev;
    }
    free(lk);
    if (res == EVUTIL_EAI_CANCEL || !k) {
        if (ai)
            evutil_freeaddrinfo(ai);
        return;
    }
    k->lk = NULL;
    if (res != 0) {
        req_fail(k->req, MCPGW_HC_E_CONNECT, "could not resolve host '%s': %s", k->o->host,
                 evutil_gai_strerror(res));
        return;
    }
    k->ai = k->ai_next = ai;
    try_next(k);
}

/* Opens a new connection for r: an IP literal at once, a name through evdns (the system's
 * resolv.conf and hosts file). */
static void open_conn(struct mcpgw_h1_req *r)
{
    struct mcpgw_h1 *c = r->c;
    struct h1_conn *k = xcalloc(1, sizeof(*k));
    struct evutil_addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    k->c = c;
    k->o = r->o;
    k->fd = -1;
    k->req = r;
    k->state = C_RESOLVING;
    r->conn = k;
    r->new_conns = 1;
    r->reused = 0;
    hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
    if (evutil_getaddrinfo(r->o->host, r->o->port, &hints, &k->ai) == 0) {
        k->ai_next = k->ai;
        try_next(k);
        return;
    }
    k->ai = NULL;
    if (!c->dns)
        c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!c->dns) {
        req_fail(r, MCPGW_HC_E_CONNECT, "could not resolve host '%s': no resolver", r->o->host);
        return;
    }
    hints.ai_flags = EVUTIL_AI_NUMERICSERV;
    k->lk = xcalloc(1, sizeof(*k->lk));
    k->lk->conn = k;
    k->lk->c = c;
    k->lk->next = c->lookups;
    if (c->lookups)
        c->lookups->prev = k->lk;
    c->lookups = k->lk;
    {
        struct h1_lookup *lk = k->lk;
        /* The callback may run before this returns (hosts file, cached answers). */
        struct evdns_getaddrinfo_request *q =
            evdns_getaddrinfo(c->dns, r->o->host, r->o->port, &hints, on_resolved, lk);
        if (r->conn == k && k->lk == lk) /* else the callback ran and lk is gone */
            lk->dns = q;
    }
}

/* ---- writing ---- */

static void send_some(struct h1_conn *k)
{
    struct mcpgw_h1_req *r = k->req;
    while (r->out_off < r->out_len) {
        ssize_t n = send(k->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            r->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(k->wev, NULL);
            return;
        } else {
            req_fail(r, MCPGW_HC_E_TRANSFER, "could not send the request to %s: %s", r->o->hostport,
                     strerror(n < 0 ? errno : EPIPE));
            return;
        }
    }
}

static void on_conn_write(evutil_socket_t fd, short what, void *arg)
{
    struct h1_conn *k = arg;
    struct mcpgw_h1_req *r = k->req;
    int err = 0;
    socklen_t len = sizeof(err);
    if (k->state != C_CONNECTING) {
        if (r)
            send_some(k);
        return;
    }
    if (what & EV_TIMEOUT) {
        req_fail(r, MCPGW_HC_E_TIMEOUT, "connecting to %s timed out after %ld ms", r->o->hostport,
                 r->connect_timeout_ms);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        connected(k);
        return;
    }
    k->last_errno = err;
    event_free(k->rev);
    event_free(k->wev);
    k->rev = k->wev = NULL;
    evutil_closesocket(k->fd);
    k->fd = -1;
    try_next(k);
}

/* ---- reading the answer ---- */

/* Calls a callback of r; -1 when r was cancelled inside it (the caller then frees r). */
static int call_head(struct mcpgw_h1_req *r)
{
    if (r->cbs.on_head) {
        r->in_cb = 1;
        r->cbs.on_head(r->arg);
        r->in_cb = 0;
    }
    return r->dead ? -1 : 0;
}

static int call_body(struct mcpgw_h1_req *r, const char *p, size_t n)
{
    if (r->cbs.on_body && n > 0) {
        r->in_cb = 1;
        r->cbs.on_body(r->arg, p, n);
        r->in_cb = 0;
    }
    return r->dead ? -1 : 0;
}

static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    while (v && *v) {
        size_t n;
        v += strspn(v, " \t,");
        n = strcspn(v, " \t,;");
        if (n == tl && strncasecmp(v, tok, tl) == 0)
            return 1;
        v += n;
        v += strcspn(v, ",");
    }
    return 0;
}

/* Parses the head in r->hbuf[0..hlen) (the blank line included). 1 for an interim (1xx) head,
 * 0 for the final one, -1 (r failed) when malformed. */
static int parse_head(struct mcpgw_h1_req *r)
{
    char *p = r->hbuf, *end = r->hbuf + r->hlen, *eol;
    int minor;
    const char *v;
    r->nlines = 0;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (r->hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9') {
        req_fail(r, MCPGW_HC_E_TRANSFER, "malformed status line from %s", r->o->hostport);
        return -1;
    }
    minor = p[7] - '0';
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (r->status < 200)
        return r->status == 101 ? (req_fail(r, MCPGW_HC_E_TRANSFER, "%s switched protocols unasked",
                                            r->o->hostport),
                                   -1)
                                : 1;
    {
        size_t nl = 0;
        for (const char *q = eol + 1; (q = memchr(q, '\n', (size_t)(end - q))); q++)
            nl++;
        r->lines = xrealloc(r->lines, (nl + 1) * sizeof(*r->lines));
    }
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        *eol = 0;
        if (eol > p && eol[-1] == '\r')
            eol[-1] = 0;
        if (!*p)
            break;
        if (!strchr(p, ':') || *p == ':' || *p == ' ' || *p == '\t') {
            req_fail(r, MCPGW_HC_E_TRANSFER, "malformed header line from %s", r->o->hostport);
            return -1;
        }
        r->lines[r->nlines++] = p;
    }
    v = mcpgw_h1_req_header(r, "Connection");
    r->keep = minor == 1 ? !has_token(v, "close") : has_token(v, "keep-alive");
    if (r->head_only || r->status == 204 || r->status == 304) {
        r->body = B_NONE;
    } else if ((v = mcpgw_h1_req_header(r, "Transfer-Encoding"))) {
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        r->body = n >= 7 && strncasecmp(v + n - 7, "chunked", 7) == 0 ? B_CHUNKED : B_CLOSE;
        r->ch = CH_SIZE;
        r->chlen = 0;
    } else if ((v = mcpgw_h1_req_header(r, "Content-Length"))) {
        char *e;
        errno = 0;
        r->left = strtoull(v, &e, 10);
        while (*e == ' ' || *e == '\t')
            e++;
        if (*v < '0' || *v > '9' || *e || errno) {
            req_fail(r, MCPGW_HC_E_TRANSFER, "bad Content-Length from %s", r->o->hostport);
            return -1;
        }
        r->body = r->left ? B_LENGTH : B_NONE;
    } else {
        r->body = B_CLOSE;
    }
    if (r->body == B_CLOSE)
        r->keep = 0;
    return 0;
}

/* Takes head bytes from p; returns how many, or -1 (r failed). Sets head_done at the final
 * head's blank line. */
static long head_feed(struct mcpgw_h1_req *r, const char *p, size_t n)
{
    size_t old = r->hlen, take = n, scan;
    if (take > H1_HEAD_MAX - r->hlen)
        take = H1_HEAD_MAX - r->hlen;
    if (r->hlen + take > r->hcap) {
        r->hcap = r->hlen + take < 1024 ? 1024 : r->hlen + take;
        r->hbuf = xrealloc(r->hbuf, r->hcap);
    }
    memcpy(r->hbuf + r->hlen, p, take);
    r->hlen += take;
    for (scan = old > 2 ? old - 2 : 0; scan < r->hlen; scan++) {
        size_t e;
        int rc;
        if (r->hbuf[scan] != '\n')
            continue;
        e = scan + 1;
        if (e < r->hlen && r->hbuf[e] == '\r')
            e++;
        if (e >= r->hlen || r->hbuf[e] != '\n')
            continue;
        r->hlen = e + 1; /* the head ends here */
        rc = parse_head(r);
        if (rc < 0)
            return -1;
        if (rc == 1) { /* an interim head: forget it, read on */
            size_t used = r->hlen - old;
            r->hlen = 0;
            return (long)used;
        }
        r->head_done = 1;
        return (long)(r->hlen - old);
    }
    if (r->hlen >= H1_HEAD_MAX) {
        req_fail(r, MCPGW_HC_E_TRANSFER, "the answer's head from %s is over %d KiB", r->o->hostport,
                 H1_HEAD_MAX / 1024);
        return -1;
    }
    return (long)take;
}

/* Takes chunked-body bytes; returns how many were used, or -1 (r failed or cancelled), and
 * sets *done at the end of the body. */
static long chunk_feed(struct mcpgw_h1_req *r, const char *p, size_t n, int *done)
{
    size_t i = 0;
    while (i < n && !*done) {
        char ch = p[i];
        switch (r->ch) {
        case CH_SIZE: {
            char *e;
            i++;
            if (ch != '\n') {
                if (r->chlen + 1 >= sizeof(r->chl))
                    goto bad;
                r->chl[r->chlen++] = ch;
                break;
            }
            r->chl[r->chlen] = 0;
            r->chlen = 0;
            errno = 0;
            r->left = strtoull(r->chl, &e, 16);
            if (e == r->chl || errno || (*e && *e != ';' && *e != '\r' && *e != ' '))
                goto bad;
            r->ch = r->left ? CH_DATA : CH_TRAILER;
            break;
        }
        case CH_DATA: {
            size_t take = n - i < r->left ? n - i : (size_t)r->left;
            if (call_body(r, p + i, take) < 0)
                return -1;
            i += take;
            r->left -= take;
            if (!r->left) {
                r->ch = CH_DATA_END;
                r->cr = 0;
            }
            break;
        }
        case CH_DATA_END:
            i++;
            if (ch == '\r' && !r->cr)
                r->cr = 1;
            else if (ch == '\n')
                r->ch = CH_SIZE;
            else
                goto bad;
            break;
        case CH_TRAILER:
            i++;
            if (ch == '\n') {
                if (r->chlen == 0)
                    *done = 1;
                r->chlen = 0;
            } else if (ch != '\r' && ++r->chlen > H1_HEAD_MAX) {
                goto bad;
            }
            break;
        }
    }
    return (long)i;
bad:
    req_fail(r, MCPGW_HC_E_TRANSFER, "malformed chunked body from %s", r->o->hostport);
    return -1;
}

/* Feeds n bytes of the answer; 0 to read on, -1 when r is over (completed, failed or
 * cancelled: the caller must not touch r or its connection again). */
static int feed(struct mcpgw_h1_req *r, const char *p, size_t n)
{
    while (n > 0) {
        long used;
        int done = 0;
        if (!r->head_done) {
            if ((used = head_feed(r, p, n)) < 0)
                return -1;
            if (r->head_done) {
                if (call_head(r) < 0)
                    goto cancelled;
                if (r->body == B_NONE) {
                    complete(r, n - (size_t)used);
                    return -1;
                }
            }
        } else if (r->body == B_CHUNKED) {
            if ((used = chunk_feed(r, p, n, &done)) < 0)
                return r->dead ? (req_free(r), -1) : -1;
        } else {
            used = (long)(r->body == B_LENGTH && r->left < n ? r->left : n);
            if (call_body(r, p, (size_t)used) < 0)
                goto cancelled;
            if (r->body == B_LENGTH && !(r->left -= (unsigned long long)used))
                done = 1;
        }
        p += used;
        n -= (size_t)used;
        if (done) {
            complete(r, n);
            return -1;
        }
    }
    return 0;
cancelled:
    req_free(r);
    return -1;
}

static void on_conn_read(evutil_socket_t fd, short what, void *arg)
{
    struct h1_conn *k = arg;
    struct mcpgw_h1_req *r = k->req;
    char buf[H1_READ];
    for (int i = 0; i < H1_READS; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (!r || k->state != C_BUSY) { /* idle: the server closed it, or sent garbage */
            conn_close(k);
            return;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            if (e == 0 && r->head_done && r->body == B_CLOSE) {
                complete(r, 0);
                return;
            }
            req_fail(r, MCPGW_HC_E_TRANSFER,
                     r->got_byte ? "the connection to %s broke before the answer was "
                                   "complete%s%s"
                                 : "%s closed the connection without answering%s%s",
                     r->o->hostport, e ? ": " : "", e ? strerror(e) : "");
            return;
        }
        r->got_byte = 1;
        if (feed(r, buf, (size_t)n) < 0 || (size_t)n < sizeof(buf))
            return;
    }
}

/* ---- the API ---- */

struct mcpgw_h1 *mcpgw_h1_new(struct event_base *base)
{
    struct mcpgw_h1 *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->kick = event_new(base, -1, 0, on_kick, c);
    c->failq_tail = &c->failq;
    return c;
}

void mcpgw_h1_free(struct mcpgw_h1 *c)
{
    if (!c)
        return;
    while (c->all)
        req_free(c->all);
    while (c->origins) {
        struct h1_origin *o = c->origins;
        c->origins = o->next;
        while (o->idle)
            conn_close(o->idle);
        free(o->host);
        free(o->hostport);
        free(o);
    }
    event_free(c->kick);
    /* A cancelled lookup's callback still runs later, from the loop, and takes the resolver's
     * lock: with one pending, the resolver is left allocated (rare: freed mid-resolution). */
    for (struct h1_lookup *lk = c->lookups; lk; lk = lk->next)
        lk->c = NULL;
    if (c->dns && !c->lookups)
        evdns_base_free(c->dns, 0);
    free(c);
}

/* Splits an http:// URL: host (brackets of an IPv6 literal removed), port, and where the path
 * starts. -1 when it does not parse or carries user info (left to libcurl). */
static int split_url(const char *url, char *host, unsigned *port, const char **path)
{
    const char *a, *e, *h, *he, *pe;
    if (!url || strncmp(url, "http://", 7) != 0)
        return -1;
    a = url + 7;
    e = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(e - a)))
        return -1;
    if (*a == '[') {
        h = a + 1;
        if (!(he = memchr(a, ']', (size_t)(e - a))))
            return -1;
        pe = he + 1;
    } else {
        h = a;
        he = memchr(a, ':', (size_t)(e - a));
        pe = he = he ? he : e;
    }
    if (he == h || he - h >= H1_HOST_MAX)
        return -1;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = 0;
    *port = 80;
    if (pe < e) {
        char *pend;
        unsigned long v;
        if (*pe != ':' || pe + 1 == e || pe[1] < '0' || pe[1] > '9')
            return -1;
        v = strtoul(pe + 1, &pend, 10);
        if (pend != e || v == 0 || v > 65535)
            return -1;
        *port = (unsigned)v;
    }
    *path = e;
    return 0;
}

int mcpgw_h1_can(const struct mcpgw_hc_opts *o)
{
    char host[H1_HOST_MAX];
    unsigned port;
    const char *path;
    return split_url(o->url, host, &port, &path) == 0;
}

static struct h1_origin *origin_get(struct mcpgw_h1 *c, const char *host, unsigned port)
{
    struct h1_origin *o;
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    for (o = c->origins; o; o = o->next)
        if (strcmp(o->port, ps) == 0 && strcmp(o->host, host) == 0)
            return o;
    o = xcalloc(1, sizeof(*o));
    memcpy(o->port, ps, sizeof(ps));
    o->host = xstrdup(host);
    {
        const char *l = strchr(host, ':') ? "[" : "", *rb = *l ? "]" : "";
        size_t n = strlen(host) + 16;
        o->hostport = xmalloc(n);
        if (port == 80)
            snprintf(o->hostport, n, "%s%s%s", l, host, rb);
        else
            snprintf(o->hostport, n, "%s%s%s:%u", l, host, rb, port);
    }
    o->next = c->origins;
    c->origins = o;
    return o;
}

/* Is this caller header name (up to the colon) n? */
static int hdr_is(const char *h, const char *n)
{
    size_t l = strlen(n);
    return strncasecmp(h, n, l) == 0 && h[l] == ':';
}

/* The request on the wire: request line, Host, the caller's headers (a "Name:" without a value
 * is left out, as libcurl does), what libcurl adds by default, the body. NULL with err filled
 * when a header or the method would break the framing. */
static char *build_request(const struct mcpgw_hc_opts *o, const char *method, const char *path,
                           const char *hostport, size_t *len, char *err, size_t errlen)
{
    size_t cap = strlen(method) + strlen(path) + strlen(hostport) + 128 + o->body_len, n;
    int has_host = 0, has_accept = 0, has_ctype = 0;
    size_t plen = strcspn(path, "#");
    char *out, *w;
    if (strpbrk(method, " \t\r\n") || path[strcspn(path, " \t\r\n")]) {
        snprintf(err, errlen, "the method or URL contains white space");
        return NULL;
    }
    for (const char *const *h = o->headers; h && *h; h++) {
        if (strpbrk(*h, "\r\n")) {
            snprintf(err, errlen, "header '%.40s' contains a line break", *h);
            return NULL;
        }
        cap += strlen(*h) + 2;
        has_host |= hdr_is(*h, "Host");
        has_accept |= hdr_is(*h, "Accept");
        has_ctype |= hdr_is(*h, "Content-Type");
    }
    w = out = xmalloc(cap);
    w += sprintf(w, "%s %s%.*s HTTP/1.1\r\n", method, *path == '/' ? "" : "/", (int)plen, path);
    if (!has_host)
        w += sprintf(w, "Host: %s\r\n", hostport);
    if (!has_accept)
        w += sprintf(w, "Accept: */*\r\n");
    for (const char *const *h = o->headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        if (colon && colon[1 + strspn(colon + 1, " \t")] == 0)
            continue;
        n = strlen(*h);
        memcpy(w, *h, n);
        w += n;
        *w++ = '\r';
        *w++ = '\n';
    }
    if (o->body && !has_ctype)
        w += sprintf(w, "Content-Type: application/x-www-form-urlencoded\r\n");
    if (o->body)
        w += sprintf(w, "Content-Length: %zu\r\n", o->body_len);
    *w++ = '\r';
    *w++ = '\n';
    if (o->body && o->body_len) {
        memcpy(w, o->body, o->body_len);
        w += o->body_len;
    }
    *len = (size_t)(w - out);
    return out;
}

struct mcpgw_h1_req *mcpgw_h1_start(struct mcpgw_h1 *c, const struct mcpgw_hc_opts *o,
                                    const struct mcpgw_h1_cbs *cbs, void *arg, char *err,
                                    size_t errlen)
{
    char host[H1_HOST_MAX];
    unsigned port;
    const char *path, *method = o->method ? o->method : o->body ? "POST" : "GET";
    struct mcpgw_h1_req *r;
    struct h1_origin *og;
    struct h1_conn *k;
    char *out;
    size_t out_len;
    if (split_url(o->url, host, &port, &path) < 0) {
        snprintf(err, errlen, "URL '%s' is not a plain http:// URL", o->url ? o->url : "");
        return NULL;
    }
    og = origin_get(c, host, port);
    if (!(out = build_request(o, method, path, og->hostport, &out_len, err, errlen)))
        return NULL;
    r = xcalloc(1, sizeof(*r));
    r->c = c;
    r->o = og;
    r->cbs = *cbs;
    r->arg = arg;
    r->out = out;
    r->out_len = out_len;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;
    r->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    r->stream = o->timeout_ms <= 0;
    r->head_only = strcmp(method, "HEAD") == 0;
    r->next = c->all;
    if (c->all)
        c->all->prev = r;
    c->all = r;
    if (r->timeout_ms) {
        struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
        r->timer = evtimer_new(c->base, on_req_timer, r);
        evtimer_add(r->timer, &tv);
    }
    /* An event stream holds its connection for as long as it is open and its connection is
     * not kept afterwards, so it always opens one (as it did with libcurl). */
    if (!r->stream && (k = idle_take(og))) {
        k->req = r;
        r->conn = k;
        r->reused = 1;
        send_some(k);
    } else {
        open_conn(r);
    }
    return r;
}

void mcpgw_h1_req_cancel(struct mcpgw_h1_req *r)
{
    if (r->in_done || r->dead)
        return;
    if (r->in_cb) {
        r->dead = 1; /* freed once the callback returns */
        return;
    }
    req_free(r);
}

long mcpgw_h1_req_status(const struct mcpgw_h1_req *r)
{
    return r->head_done ? r->status : 0;
}

const char *mcpgw_h1_req_header(const struct mcpgw_h1_req *r, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nlines; i++) {
        const char *h = r->lines[i];
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ' || *h == '\t')
                h++;
            return h;
        }
    }
    return NULL;
}

long mcpgw_h1_req_new_conns(const struct mcpgw_h1_req *r)
{
    return r->new_conns;
}
