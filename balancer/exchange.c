/* exchange.c - the client side of a worker's exchanges: heads, request bodies, moves to
 * another node, closing (see exchange.h; responses are in exchange_response.c). */
#include "balancer/exchange.h"

#include "balancer/exchange_impl.h"
#include "balancer/io.h"
#include "balancer/resume.h"
#include "balancer/rewrite.h"
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define SID_MAX    512  /* longer ids still route, on their first SID_MAX bytes */
#define LINGER_MS  2000 /* after an error: read and discard before closing */
#define READ_CHUNK MCPGW_BAL_IO_READ_CHUNK

static void on_client_event(struct bufferevent *bev, short what, void *arg);

static uint32_t now_ms(const struct mcpgw_bal_exchange_set *xs)
{
    return (uint32_t)(mcpgw_now_ms() - xs->t0);
}

/* ---- timeout lists: FIFO, one constant timeout each, so deadlines are in order ---- */

void mcpgw_bal_exchange_list_remove(struct client *c)
{
    struct clist *l;
    if (c->list == L_NONE)
        return;
    l = &c->xs->lists[c->list];
    TAILQ_REMOVE(l, c, link);
    c->list = L_NONE;
}

void mcpgw_bal_exchange_list_append(struct client *c, enum clist_kind k)
{
    struct clist *l = &c->xs->lists[k];
    mcpgw_bal_exchange_list_remove(c);
    c->list = (uint8_t)k;
    c->deadline = now_ms(c->xs) + c->xs->timeouts[k];
    TAILQ_INSERT_TAIL(l, c, link);
}

/* ---- reading on/off ---- */

void mcpgw_bal_exchange_read_on(struct client *c)
{
    if (c->xs->tls)
        bufferevent_enable(c->bev, EV_READ);
    else if (!event_pending(&c->rev, EV_READ, NULL))
        event_add(&c->rev, NULL);
}

static void client_read_off(struct client *c)
{
    if (c->xs->tls)
        bufferevent_disable(c->bev, EV_READ);
    else
        event_del(&c->rev);
}

/* Send what is queued to c now. A client that is gone is closed at once (its request too):
 * returns -1 then, and c->closed is set; c itself stays valid until the loop frees it. */
int mcpgw_bal_exchange_push(struct client *c)
{
    if (c->xs->tls || c->closed || mcpgw_bal_io_push(c->bev) == 0)
        return 0;
    log_debug("client fd %d is gone: %s", (int)bufferevent_getfd(c->bev), strerror(errno));
    mcpgw_bal_exchange_close(c);
    return -1;
}

/* ---- requests: their lifetime ---- */

/* End rq: its upstream is closed (not reused), and the client forgets it. */
void mcpgw_bal_exchange_request_free(struct request *rq)
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
    if (c->xs->tls || c->list == L_LINGER) {
        if (c->xs->tls)
            mcpgw_bal_exchange_close(c);
        return;
    }
    if (!unread(c)) {
        mcpgw_bal_exchange_close(c);
        return;
    }
    shutdown((int)bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    mcpgw_bal_exchange_read_on(c);
    mcpgw_bal_exchange_list_append(c, L_LINGER);
}

/* End the conversation: drop the request in flight, flush what is queued, then close. May free
 * c. */
void mcpgw_bal_exchange_close_when_flushed(struct client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev), *in = bufferevent_get_input(c->bev);
    if (c->closed)
        return;
    if (c->rq)
        mcpgw_bal_exchange_request_free(c->rq);
    mcpgw_bal_exchange_push(c);
    if (c->closed)
        return;
    mcpgw_bal_exchange_list_remove(c);
    c->state = C_CLOSING;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(out) == 0) {
        client_linger(c);
        return;
    }
    {
        struct timeval st = mcpgw_bal_io_tv(c->xs->cfg->send_timeout_ms);
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
        mcpgw_bal_exchange_close_when_flushed(c);
        return;
    }
    MCPGW_BUMP(&c->xs->st->rejected[reject_of(status)], 1);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                        "%sConnection: close\r\n\r\n%s\n",
                        status, mcpgw_http_reason(status), strlen(why) + 1,
                        status == 503 ? "Retry-After: 1\r\n" : "", why);
    mcpgw_bal_exchange_close_when_flushed(c);
}

/* Answer with a JSON-RPC error body (MCP clients parse it) and close. May free c. */
void mcpgw_bal_exchange_fail_json(struct client *c, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[512];
    int n;
    log_debug("client fd %d: %d %s", (int)bufferevent_getfd(c->bev), status, why);
    if (c->closed)
        return;
    if (c->resumed) { /* inside a response already: the client sees its stream end early */
        mcpgw_bal_exchange_close_when_flushed(c);
        return;
    }
    MCPGW_BUMP(&c->xs->st->rejected[reject_of(status)], 1);
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
    mcpgw_bal_exchange_close_when_flushed(c);
}

/* ---- requests ---- */

static void peer_of(struct client *c, char *ip, size_t len, struct mcpgw_bal_peer *peer)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    peer->ip = ip;
    peer->ipv6 = 0;
    peer->tls = c->xs->tls != NULL;
    peer->secret = c->xs->cfg->balancer_secret[0] ? c->xs->cfg->balancer_secret : NULL;
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
struct mcpgw_bal_upstream *mcpgw_bal_exchange_route(struct mcpgw_bal_exchange_set *xs,
                                                    struct request *rq, const char *cause,
                                                    char *why, size_t whylen)
{
    const char *last = cause;
    char lastbuf[96];
    for (;;) {
        struct mcpgw_bal_upstream *u;
        int slot = mcpgw_bal_nodes_pick(xs->nodes, rq->sid, rq->sidlen, rq->tried), err = 0;
        if (slot < 0) {
            mcpgw_bal_nodes_cause(xs->nodes, last, why, whylen);
            return NULL;
        }
        rq->tried |= 1ull << slot;
        u = mcpgw_bal_upstream_get(xs->ups, slot, rq->mux, &mcpgw_bal_exchange_upstream_cb, rq,
                                   &err);
        if (!u) {
            snprintf(lastbuf, sizeof(lastbuf), "%s", strerror(err));
            last = lastbuf;
            if (err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS) {
                snprintf(why, whylen, "the balancer is out of connections (%s)", lastbuf);
                return NULL;
            }
            mcpgw_bal_nodes_mark_down(xs->nodes, slot, lastbuf);
            if (err == ECONNREFUSED)
                mcpgw_bal_nodes_refused(xs->nodes, slot);
            MCPGW_BUMP(&nstats(xs, slot)->retries, 1);
            continue;
        }
        MCPGW_BUMP(&nstats(xs, slot)->requests, 1);
        return u;
    }
}

/* Nothing of rq's request reached its node: send the same bytes to the next candidate. */
void mcpgw_bal_exchange_move(struct request *rq, const char *cause)
{
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    struct mcpgw_bal_upstream *old = rq->up, *nu;
    struct evbuffer *bytes;
    char why[256];

    rq->up = NULL;
    nu = mcpgw_bal_exchange_route(xs, rq, cause, why, sizeof(why));
    if (!nu) {
        old->ops->release(old, 0);
        mcpgw_bal_exchange_fail_json(c, 503, why);
        return;
    }
    log_debug("request moved from node %s to %s: %s", node_id(xs, old->slot), node_id(xs, nu->slot),
              cause);
    rq->up = nu;
    bytes = old->ops->unsent(old);
    if (!bytes) {
        snprintf(why, sizeof(why), "the request was lost on its way to node %s",
                 node_id(xs, old->slot));
        old->ops->release(old, 0);
        mcpgw_bal_exchange_fail_json(c, 502, why);
        return;
    }
    if (nu->ops->send_head(nu, bytes, why, sizeof(why)) < 0) {
        old->ops->release(old, 0);
        mcpgw_bal_exchange_fail_json(c, 502, why);
        return;
    }
    old->ops->release(old, 0);
    nu->ops->flush(nu);
    if (c->paused)
        nu->ops->watch_output(nu, xs->cfg->buffer_size / 2);
}

static void count_chunk(void *arg, const char *data, size_t len)
{
    *(uint64_t *)arg += len;
}

/* Move chunked bytes from src to dst, up to the end of the message. Returns 0, or -1 when the
 * encoding is invalid. */
int mcpgw_bal_exchange_relay_chunked(struct mcpgw_chunked *d, struct evbuffer *src,
                                     struct evbuffer *dst, mcpgw_chunk_data_fn on_data, void *arg)
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

void mcpgw_bal_exchange_relay_body(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *in = bufferevent_get_input(c->bev), *out = u->ops->output(u);
    size_t before = evbuffer_get_length(in);

    if (rq->req_done || !out)
        return;
    if (rq->req_chunked) {
        if (mcpgw_bal_exchange_relay_chunked(&rq->req_dec, in, out, count_chunk, &rq->req_body) <
            0) {
            if (rq->rstate == R_HEAD)
                client_fail(c, 400, "invalid chunked encoding");
            else
                mcpgw_bal_exchange_close_when_flushed(c);
            return;
        }
        if (rq->req_body > xs->cfg->max_body_size) {
            if (rq->rstate == R_HEAD)
                client_fail(c, 413, "request body over the limit");
            else
                mcpgw_bal_exchange_close_when_flushed(c);
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
            mcpgw_bal_exchange_list_remove(c);
    } else if (evbuffer_get_length(in) != before || c->list != L_BODY) {
        mcpgw_bal_exchange_list_append(c, L_BODY); /* progress: the body timeout starts over */
    }
    u->ops->flush(u);
    /* Backpressure: pause reading the client while the node's side is over the high-water
     * mark; drained() resumes it once half of it is sent. */
    if (!rq->req_done && evbuffer_get_length(out) >= xs->cfg->buffer_size && !c->paused) {
        c->paused = 1;
        client_read_off(c);
        u->ops->watch_output(u, xs->cfg->buffer_size / 2);
    }
}

static int count_host(const struct mcpgw_http_head *h)
{
    int n = 0;
    for (int i = 0; i < h->nheaders; i++)
        n += mcpgw_strieq(h->headers[i].name, h->headers[i].name_len, "host");
    return n;
}

/* The routing key of a request: its Mcp-Session-Id; for the tasks extension's methods
 * (Mcp-Method tasks/..., 2026-07-28) the task id in Mcp-Name, which names its node as a
 * session id does; or for the legacy HTTP+SSE transport the sessionId query parameter of POST
 * /messages. */
static void session_of(const struct mcpgw_http_head *h, const char **sid, size_t *sidlen)
{
    const struct mcpgw_http_header *sh = mcpgw_http_find(h, "mcp-session-id"), *mm;
    *sid = NULL;
    *sidlen = 0;
    if (sh && sh->value_len) {
        *sid = sh->value;
        *sidlen = sh->value_len;
    } else if ((mm = mcpgw_http_find(h, "mcp-method")) && mm->value_len > 6 &&
               memcmp(mm->value, "tasks/", 6) == 0 && (sh = mcpgw_http_find(h, "mcp-name")) &&
               sh->value_len) {
        *sid = sh->value;
        *sidlen = sh->value_len;
    } else {
        const char *q = memchr(h->target, '?', h->target_len);
        size_t plen = q ? (size_t)(q - h->target) : h->target_len;
        if (q && plen == 9 && memcmp(h->target, "/messages", 9) == 0)
            mcpgw_route_query_param(q + 1, h->target_len - plen - 1, "sessionId", sid, sidlen);
    }
}

/* A 2026-07-28 subscriptions/listen request, by its Mcp-Method header (bodies are not read): a
 * long-lived event stream that goes over the node's mux with its body, so that it can be
 * re-opened elsewhere (docs/listen.md). Only a small body with a Content-Length (it must fit in
 * the head buffer, lim bytes, with the head) is taken that way; others go as any POST. */
static int listen_request(const struct mcpgw_http_head *h, size_t lim)
{
    const struct mcpgw_http_header *mm;
    if (h->method != MCPGW_HTTP_POST || h->chunked || h->upgrade || h->content_length <= 0 ||
        h->head_len + (size_t)h->content_length > lim)
        return 0;
    mm = mcpgw_http_find(h, "mcp-method");
    return mm && mcpgw_strieq(mm->value, mm->value_len, "subscriptions/listen");
}

/* A complete, valid head is at the start of c's input: route it and start relaying. */
static void start_request(struct client *c, const struct mcpgw_http_head *h)
{
    struct mcpgw_bal_exchange_set *xs = c->xs;
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
    /* A session's GET stream (no body, no upgrade) may share the node's mux; so may a listen
     * stream, whose whole body is in the input (mcpgw_bal_exchange_process waited for it). */
    rq->mux =
        sid && h->method == MCPGW_HTTP_GET && !h->upgrade && !h->chunked && h->content_length <= 0;
    if (!sid && listen_request(h, xs->cfg->max_header_size) &&
        evbuffer_get_length(in) >= h->head_len + (size_t)h->content_length) {
        rq->mux = rq->listen = 1;
        rq->req_left = 0;
    }

    u = mcpgw_bal_exchange_route(xs, rq, NULL, why, sizeof(why));
    if (!u) {
        mcpgw_bal_exchange_request_free(rq);
        mcpgw_bal_exchange_fail_json(c, 503, why);
        return;
    }
    rq->up = u;
    c->rq = rq;
    c->state = C_FORWARD;
    mcpgw_bal_exchange_list_remove(c);
    peer_of(c, ip, sizeof(ip), &peer);
    mcpgw_bal_rewrite_request(h, &peer, xs->scratch);
    evbuffer_drain(in, h->head_len);
    if (rq->listen) /* sent with the head, and kept with it for a re-open */
        evbuffer_remove_buffer(in, xs->scratch, (size_t)h->content_length);
    if (u->ops->send_head(u, xs->scratch, why, sizeof(why)) < 0) {
        evbuffer_drain(xs->scratch, evbuffer_get_length(xs->scratch));
        mcpgw_bal_exchange_fail_json(c, 502, why);
        return;
    }
    if (!u->ops->output(u) || (!rq->req_chunked && rq->req_left == 0)) {
        rq->req_done = 1;
        u->ops->flush(u);
    } else {
        mcpgw_bal_exchange_relay_body(rq); /* the head goes out with the body's first bytes */
    }
}

/* Read a request head from c's input (state C_HEAD). */
void mcpgw_bal_exchange_process(struct client *c)
{
    struct mcpgw_bal_exchange_set *xs = c->xs;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t avail = evbuffer_get_length(in), lim = xs->cfg->max_header_size, n, end, from;
    const char *data, *why = NULL;
    struct mcpgw_http_head h;
    int rc;

    if (avail == 0)
        return;
    if (c->list != L_HEAD)
        mcpgw_bal_exchange_list_append(
            c, L_HEAD); /* the first byte of a head starts the header timeout */
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
    if (h.content_length > 0 && (uint64_t)h.content_length > xs->cfg->max_body_size) {
        client_fail(c, 413, "request body over the limit");
        return;
    }
    if (listen_request(&h, lim) && avail < end + (size_t)h.content_length)
        return; /* a listen request goes with its whole body: wait for it (the head timeout
                 * still runs) */
    c->keep_alive = h.keep_alive && !xs->draining;
    c->http10 = h.minor_version == 0;
    start_request(c, &h);
}

/* ---- client callbacks ---- */

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    switch (c->state) {
    case C_HEAD:
        mcpgw_bal_exchange_process(c);
        break;
    case C_FORWARD:
        if (c->rq && !c->rq->req_done)
            mcpgw_bal_exchange_relay_body(c->rq);
        /* Else: a pipelined request waits in the input (bounded by the read watermark). */
        break;
    case C_TUNNEL:
        if (c->rq) {
            struct mcpgw_bal_upstream *u = c->rq->up;
            struct evbuffer *out = u->ops->output(u);
            evbuffer_add_buffer(out, bufferevent_get_input(bev));
            u->ops->flush(u);
            if (!c->paused && evbuffer_get_length(out) >= c->xs->cfg->buffer_size) {
                c->paused = 1;
                client_read_off(c);
                u->ops->watch_output(u, c->xs->cfg->buffer_size / 2);
            }
        }
        break;
    case C_CLOSING:
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        if (c->list == L_LINGER && !unread(c))
            mcpgw_bal_exchange_close(c);
        break;
    }
}

/* A plain client socket is readable: one readv, then the same path as a bufferevent read. The
 * input holds at most one head's worth while a request waits (like a read watermark). */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in), lim = c->xs->cfg->max_header_size;
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
    if (!c->xs->tls)
        mcpgw_bal_io_write_idle(bev);
    if (c->state == C_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            client_linger(c);
        return;
    }
    if (!rq || !rq->up_paused ||
        evbuffer_get_length(bufferevent_get_output(bev)) > c->xs->cfg->buffer_size / 2)
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
        mcpgw_bal_exchange_relay_response(rq);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    if (what & BEV_EVENT_CONNECTED)
        return; /* the TLS handshake completed */
    if (what & BEV_EVENT_TIMEOUT)
        log_debug("client fd %d dropped: it read nothing for %u ms", (int)bufferevent_getfd(bev),
                  c->xs->cfg->send_timeout_ms);
    /* EOF, error or send timeout: the conversation is over (SSE needs both directions, so a
     * half-close is a close too). */
    mcpgw_bal_exchange_close(c);
}

/* The conversation is over: stop all I/O on c now and end its request, but free c only from
 * the loop (on_reap). A client is closed from inside its own callbacks and from an upstream's
 * (a node's answer relayed to a client that is gone): the code up the stack may still look at
 * c (c->closed tells it to stop), never at freed memory. Safe to call twice. */
void mcpgw_bal_exchange_close(struct client *c)
{
    struct mcpgw_bal_exchange_set *xs = c->xs;
    if (c->closed)
        return;
    c->closed = 1;
    if (c->rq)
        mcpgw_bal_exchange_request_free(c->rq);
    if (!xs->tls) {
        event_del(&c->rev);
        /* libevent closes a freed bufferevent's socket from its active queue, behind every
         * event already due: on a busy loop, long after. The client must learn now (a stream
         * cut because its node died reconnects on this FIN). */
        shutdown((int)bufferevent_getfd(c->bev), SHUT_WR);
    }
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    mcpgw_bal_exchange_list_append(c, L_CLOSED);
    event_active(xs->reap, EV_TIMEOUT, 1);
}

/* Free the clients closed since the last turn. */
static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_exchange_set *xs = arg;
    struct client *c;
    (void)fd, (void)what;
    while ((c = TAILQ_FIRST(&xs->lists[L_CLOSED]))) {
        mcpgw_bal_exchange_list_remove(c);
        bufferevent_free(c->bev);
        free(c);
        xs->nclients--;
    }
    MCPGW_STORE(&xs->st->clients, (int64_t)xs->nclients);
    if (xs->draining && xs->nclients == 0 && xs->empty)
        xs->empty(xs->arg);
}

/* ---- the set ---- */

void mcpgw_bal_exchange_accept(struct mcpgw_bal_exchange_set *xs, int fd, const struct sockaddr *sa)
{
    struct bufferevent *bev;
    struct client *c;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mcpgw_tcp_keepalive(fd, (xs->cfg->tcp_keepalive_ms + 999) / 1000);
    if (xs->tls) {
        SSL *ssl = SSL_new(xs->tls);
        if (!ssl) {
            close(fd);
            return;
        }
        bev = bufferevent_openssl_socket_new(xs->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        else
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(xs->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) {
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->bev = bev;
    c->xs = xs;
    if (sa->sa_family == AF_INET) {
        c->v4 = 1;
        c->ip4 = ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
    }
    xs->nclients++;
    MCPGW_STORE(&xs->st->clients, (int64_t)xs->nclients);
    MCPGW_BUMP(&xs->st->accepted, 1);
    bufferevent_setcb(bev, on_client_read, on_client_write, on_client_event, c);
    if (xs->tls) {
        /* Bound what a client can make us hold: one head (bodies are relayed as they come). */
        bufferevent_setwatermark(bev, EV_READ, 0, xs->cfg->max_header_size);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    } else {
        /* Plain sockets: our own reads (rev) and writes through push(). */
        bufferevent_disable(bev, EV_READ | EV_WRITE);
        event_assign(&c->rev, xs->base, fd, EV_READ | EV_PERSIST, on_client_readable, c);
        event_add(&c->rev, NULL);
    }
    if (xs->nclients > xs->cfg->max_clients) {
        client_fail(c, 503, "too many connections");
        return;
    }
    c->state = C_HEAD;
    mcpgw_bal_exchange_list_append(c, L_HEAD);
    /* The listener defers accepts until the first bytes are in (main.c): read them now rather
     * than a turn of the loop later. */
    if (!xs->tls)
        on_client_readable(fd, EV_READ, c);
}

void mcpgw_bal_exchange_sweep(struct mcpgw_bal_exchange_set *xs)
{
    uint32_t now = now_ms(xs);
    struct client *c;
    char why[96];

    while ((c = TAILQ_FIRST(&xs->lists[L_HEAD])) && (int32_t)(now - c->deadline) >= 0) {
        snprintf(why, sizeof(why), "request head not received within %u ms",
                 xs->cfg->header_timeout_ms);
        client_fail(c, 408, why);
    }
    while ((c = TAILQ_FIRST(&xs->lists[L_BODY])) && (int32_t)(now - c->deadline) >= 0) {
        if (c->rq && c->rq->rstate == R_HEAD) {
            snprintf(why, sizeof(why), "request body stalled for %u ms", xs->cfg->body_timeout_ms);
            client_fail(c, 408, why);
        } else {
            mcpgw_bal_exchange_close_when_flushed(c);
        }
    }
    while ((c = TAILQ_FIRST(&xs->lists[L_IDLE])) && (int32_t)(now - c->deadline) >= 0)
        mcpgw_bal_exchange_close(c);
    while ((c = TAILQ_FIRST(&xs->lists[L_LINGER])) && (int32_t)(now - c->deadline) >= 0)
        mcpgw_bal_exchange_close(c);
}

void mcpgw_bal_exchange_drain(struct mcpgw_bal_exchange_set *xs)
{
    struct client *c;
    xs->draining = 1;
    while ((c = TAILQ_FIRST(&xs->lists[L_IDLE])))
        mcpgw_bal_exchange_close(c);
    /* Connections that have not sent a byte of a request yet are idle too. */
    for (c = TAILQ_FIRST(&xs->lists[L_HEAD]); c;) {
        struct client *next = TAILQ_NEXT(c, link);
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            mcpgw_bal_exchange_close(c);
        c = next;
    }
    if (xs->nclients == 0 || !TAILQ_EMPTY(&xs->lists[L_CLOSED]))
        event_active(xs->reap, EV_TIMEOUT, 1); /* tells empty() when the last one is gone */
}

unsigned mcpgw_bal_exchange_clients(const struct mcpgw_bal_exchange_set *xs)
{
    return xs->nclients;
}

struct mcpgw_bal_exchange_set *
mcpgw_bal_exchange_set_new(struct event_base *base, const struct mcpgw_bal_config *cfg,
                           struct mcpgw_bal_worker_stats *st, struct mcpgw_bal_nodes *nodes,
                           struct mcpgw_bal_upstream_set *ups, struct ssl_ctx_st *tls,
                           mcpgw_bal_exchange_empty_fn empty, void *arg)
{
    struct mcpgw_bal_exchange_set *xs = xcalloc(1, sizeof(*xs));
    for (int k = 0; k < L_COUNT; k++)
        TAILQ_INIT(&xs->lists[k]);
    xs->base = base;
    xs->cfg = cfg;
    xs->st = st;
    xs->nodes = nodes;
    xs->ups = ups;
    xs->tls = tls;
    xs->empty = empty;
    xs->arg = arg;
    xs->t0 = mcpgw_now_ms();
    xs->timeouts[L_HEAD] = cfg->header_timeout_ms;
    xs->timeouts[L_BODY] = cfg->body_timeout_ms;
    xs->timeouts[L_IDLE] = cfg->idle_timeout_ms;
    xs->timeouts[L_LINGER] = LINGER_MS;
    xs->scratch = evbuffer_new();
    xs->reap = event_new(base, -1, 0, on_reap, xs);
    if (!xs->scratch || !xs->reap) {
        mcpgw_bal_exchange_set_free(xs);
        return NULL;
    }
    return xs;
}

void mcpgw_bal_exchange_set_free(struct mcpgw_bal_exchange_set *xs)
{
    if (!xs)
        return;
    for (int k = L_HEAD; k < L_CLOSED; k++)
        while (!TAILQ_EMPTY(&xs->lists[k]))
            mcpgw_bal_exchange_close(TAILQ_FIRST(&xs->lists[k]));
    /* Clients in flight are in no list; they are reclaimed by process exit. */
    if (xs->reap) {
        xs->empty = NULL;
        on_reap(-1, 0, xs);
        event_free(xs->reap);
    }
    if (xs->scratch)
        evbuffer_free(xs->scratch);
    free(xs);
}
