/* httpd_h2.c - h2c (HTTP/2 with prior knowledge) on httpd's connections, one stream per request.
 *
 * One nghttp2 server session per connection. nghttp2's callbacks only record what happened
 * (a request complete, a stream closed) on a to-do list; the handler, the close callbacks and
 * the freeing of streams run from that list after nghttp2 returns, and frames are produced by
 * nghttp2_session_send from the libevent callbacks (read, write, and a "kick" event that API
 * calls activate). So a stream handle never goes away inside an API call: it lives until
 * nghttp2 has closed the stream AND the application has let go of it (complete response, close,
 * or its close callback). */
#include "common/httpd_int.h"

#include "common/log.h"
#include "common/util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connection-level backpressure: no more frames into the socket's output buffer above HIGH;
 * the write callback (output drained to LOW) resumes. The rest waits in the streams' buffers. */
#define H2_OUT_HIGH (1024 * 1024)
#define H2_OUT_LOW  (256 * 1024)

/* A request being received; freed once the handler has returned. */
struct h2_req {
    char *fields; /* per field: uint32 name length, uint32 value length, name, value */
    size_t len, cap;
    uint32_t nregular; /* fields that are not pseudo-headers */
    struct evbuffer *body;
};

struct h2_stream {
    struct httpd_handle hdr; /* HTTPD_KIND_H2_STREAM: the handle the application holds */
    uint16_t refuse;         /* status the request is refused with (431, 413, 503), or 0 */
    uint8_t queued : 1;      /* on the connection's to-do list */
    uint8_t req_done : 1;    /* the request's END_STREAM arrived */
    uint8_t dispatched : 1;  /* handed to the handler */
    uint8_t closed : 1;      /* nghttp2 closed the stream (or the session is gone) */
    uint8_t released : 1;    /* the application does not hold it (any more) */
    uint8_t begun : 1;       /* response HEADERS submitted */
    uint8_t streaming : 1;   /* started by stream_begin */
    uint8_t ended : 1;       /* no more output: END_STREAM once out is sent */
    uint8_t in_handler : 1;
    uint8_t close_pending : 1; /* closed inside its handler: close callback after it returns */
    uint8_t is_head : 1;
    int32_t id;
    struct h2_conn *h2;
    TAILQ_ENTRY(h2_stream) link; /* all streams of the connection */
    struct h2_stream *next_todo;
    mcpgw_http_close_fn on_close;
    void *close_arg;
    struct evbuffer *out; /* response bytes not yet framed into the socket buffer */
    struct h2_req *req;
};

TAILQ_HEAD(h2_stream_list, h2_stream);

struct h2_conn {
    nghttp2_session *ng;
    struct mcpgw_http_conn *c; /* the TCP connection: bev, srv, timeout list */
    struct event *kick;        /* runs pump after API calls made outside of it */
    struct h2_stream_list streams;
    struct h2_stream *todo, *todo_tail;
    uint32_t nstreams;
    uint8_t pumping : 1;
    uint8_t dead : 1;     /* session being torn down */
    uint8_t read_off : 1; /* reading stopped while the output is above H2_OUT_HIGH */
};

#define NV(n, v, vlen)                                                                             \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vlen), NGHTTP2_NV_FLAG_NONE})

static struct mcpgw_http_conn *handle(struct h2_stream *st)
{
    return (struct mcpgw_http_conn *)(void *)st;
}

static const struct mcpgw_httpd_config *cfg_of(const struct h2_conn *h2)
{
    return &h2->c->srv->cfg;
}

static void kick(struct h2_conn *h2)
{
    if (!h2->dead && !h2->pumping)
        event_active(h2->kick, EV_TIMEOUT, 1);
}

static void todo_push(struct h2_stream *st)
{
    struct h2_conn *h2 = st->h2;
    if (st->queued)
        return;
    st->queued = 1;
    st->next_todo = NULL;
    if (h2->todo_tail)
        h2->todo_tail->next_todo = st;
    else
        h2->todo = st;
    h2->todo_tail = st;
}

static struct h2_stream *todo_pop(struct h2_conn *h2)
{
    struct h2_stream *st = h2->todo;
    if (!st)
        return NULL;
    h2->todo = st->next_todo;
    if (!h2->todo)
        h2->todo_tail = NULL;
    st->queued = 0;
    return st;
}

static void req_free(struct h2_stream *st)
{
    if (!st->req)
        return;
    if (st->req->body)
        evbuffer_free(st->req->body);
    free(st->req->fields);
    free(st->req);
    st->req = NULL;
}

static struct h2_stream *stream_new(struct h2_conn *h2, int32_t id)
{
    struct mcpgw_httpd *srv = h2->c->srv;
    struct h2_stream *st = xcalloc(1, sizeof(*st));
    st->hdr.kind = HTTPD_KIND_H2_STREAM;
    st->id = id;
    st->h2 = h2;
    st->released = 1; /* until the handler has it */
    st->req = xcalloc(1, sizeof(*st->req));
    TAILQ_INSERT_TAIL(&h2->streams, st, link);
    h2->nstreams++;
    srv->nconns++;
    if (srv->nconns > srv->cfg.max_conns)
        st->refuse = 503;
    nghttp2_session_set_stream_user_data(h2->ng, id, st);
    return st;
}

/* Only once nghttp2 has closed the stream (or the session is gone) and nobody holds it. */
static void stream_free(struct h2_stream *st)
{
    struct h2_conn *h2 = st->h2;
    req_free(st);
    if (st->out)
        evbuffer_free(st->out);
    TAILQ_REMOVE(&h2->streams, st, link);
    h2->nstreams--;
    h2->c->srv->nconns--;
    free(st);
}

/* The application lets go of the stream; with fire, its close callback (if any) tells it. */
static void release(struct h2_stream *st, int fire)
{
    mcpgw_http_close_fn cb = st->on_close;
    void *arg = st->close_arg;
    st->on_close = NULL;
    st->close_arg = NULL;
    st->released = 1;
    st->close_pending = 0;
    if (fire && cb)
        cb(handle(st), arg);
}

/* The application may answer, write or close only a stream it holds. */
static int held(const struct h2_stream *st)
{
    return st->dispatched && !st->released && !st->close_pending;
}

/* ---- nghttp2 callbacks: record, never call the application ---- */

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct h2_conn *h2 = arg;
    struct evbuffer *out = bufferevent_get_output(h2->c->bev);
    if (evbuffer_get_length(out) >= H2_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    evbuffer_add(out, data, len);
    return (ssize_t)len;
}

/* DATA frames: move the stream's bytes into the socket buffer without copying them. */
static int on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t len, nghttp2_data_source *src, void *arg)
{
    struct h2_conn *h2 = arg;
    struct h2_stream *st = src->ptr;
    struct evbuffer *out = bufferevent_get_output(h2->c->bev);
    size_t pad = frame->data.padlen;
    evbuffer_add(out, framehd, 9);
    if (pad > 0) {
        uint8_t padlen = (uint8_t)(pad - 1);
        evbuffer_add(out, &padlen, 1);
    }
    if (len)
        evbuffer_remove_buffer(st->out, out, len);
    if (pad > 1) {
        static const uint8_t zeros[256];
        evbuffer_add(out, zeros, pad - 1);
    }
    return evbuffer_get_length(out) >= H2_OUT_HIGH ? NGHTTP2_ERR_PAUSE : 0;
}

static ssize_t read_data(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *arg)
{
    struct h2_stream *st = src->ptr;
    size_t n = st->out ? evbuffer_get_length(st->out) : 0;
    if (n > len)
        n = len;
    else if (st->ended)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (n == 0 && !(*flags & NGHTTP2_DATA_FLAG_EOF))
        return NGHTTP2_ERR_DEFERRED; /* resumed by stream_write / stream_end */
    if (n)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        stream_new(arg, frame->hd.stream_id);
    return 0;
}

static void refuse(struct h2_stream *st, uint16_t status)
{
    if (!st->refuse)
        st->refuse = status;
    if (st->req) {
        free(st->req->fields);
        st->req->fields = NULL;
        st->req->len = st->req->cap = 0;
        if (st->req->body) {
            evbuffer_free(st->req->body);
            st->req->body = NULL;
        }
    }
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    struct h2_conn *h2 = arg;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    struct h2_req *r;
    size_t need = 8 + namelen + valuelen;
    uint32_t l;

    if (!st || !st->req || st->refuse || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers are ignored */
    r = st->req;
    if (r->len + namelen + valuelen + 4 > cfg_of(h2)->max_head_bytes || namelen > 65535) {
        refuse(st, 431);
        return 0;
    }
    if ((namelen == 0 || name[0] != ':') && ++r->nregular > MCPGW_HTTP_MAX_HEADERS) {
        refuse(st, 431);
        return 0;
    }
    if (mcpgw_strieq((const char *)name, namelen, "content-length")) {
        uint64_t v = 0;
        for (size_t i = 0; i < valuelen && v <= UINT32_MAX * (uint64_t)1024; i++)
            v = v * 10 + (uint64_t)(value[i] - '0'); /* digits only: nghttp2 checked */
        if (v > cfg_of(h2)->max_body_bytes) {
            refuse(st, 413);
            return 0;
        }
    }
    if (r->len + need > r->cap) {
        r->cap = (r->len + need) * 2;
        r->fields = xrealloc(r->fields, r->cap);
    }
    l = (uint32_t)namelen;
    memcpy(r->fields + r->len, &l, 4);
    l = (uint32_t)valuelen;
    memcpy(r->fields + r->len + 4, &l, 4);
    memcpy(r->fields + r->len + 8, name, namelen);
    memcpy(r->fields + r->len + 8 + namelen, value, valuelen);
    r->len += need;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *arg)
{
    struct h2_conn *h2 = arg;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    struct h2_req *r;
    if (!st || !st->req || st->refuse)
        return 0;
    r = st->req;
    if (!r->body)
        r->body = evbuffer_new();
    if (evbuffer_get_length(r->body) + len > cfg_of(h2)->max_body_bytes) {
        refuse(st, 413);
        todo_push(st); /* answer now, do not wait for the rest */
        return 0;
    }
    evbuffer_add(r->body, data, len);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct h2_stream *st;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        st->req_done = 1;
    if (st->refuse || st->req_done)
        todo_push(st);
    return 0;
}

/* A refusal answered before the request was complete: ask the client to stop sending it
 * (RFC 9113 8.1), once the whole response is out. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct h2_stream *st;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (st && st->refuse && !st->req_done && !st->closed)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *arg)
{
    struct h2_conn *h2 = arg;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st || h2->dead)
        return 0;
    st->closed = 1;
    todo_push(st);
    return 0;
}

/* ---- responses ---- */

/* Submit the response HEADERS: :status, content-type, content-length (clen >= 0) and the
 * "Name: value\r\n" lines of extra with lowercased names, hop-by-hop ones dropped. With data,
 * DATA frames follow from st->out until ended. */
static void submit(struct h2_stream *st, int status, const char *ctype, const char *extra,
                   int64_t clen, int data)
{
    nghttp2_data_provider prd;
    nghttp2_nv *nv;
    char sbuf[16], lbuf[24], *x = NULL;
    size_t n = 0, cap = 4;
    int rv;

    if (extra)
        for (const char *p = extra; *p; p++)
            cap += *p == '\n';
    nv = xmalloc(cap * sizeof(*nv));
    snprintf(sbuf, sizeof(sbuf), "%d", status);
    nv[n++] = NV(":status", sbuf, strlen(sbuf));
    if (ctype)
        nv[n++] = NV("content-type", ctype, strlen(ctype));
    if (clen >= 0) {
        snprintf(lbuf, sizeof(lbuf), "%lld", (long long)clen);
        nv[n++] = NV("content-length", lbuf, strlen(lbuf));
    }
    if (extra) {
        char *p, *end;
        x = xstrdup(extra);
        end = x + strlen(x);
        for (p = x; p < end && n < cap;) {
            char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *ne, *v, *ve;
            if (!eol)
                eol = end;
            colon = memchr(p, ':', (size_t)(eol - p));
            if (colon) {
                for (ne = colon; ne > p && (ne[-1] == ' ' || ne[-1] == '\t'); ne--)
                    ;
                for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
                    ;
                for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
                    ;
                if (ne > p && !mcpgw_http_is_hop_by_hop(p, (size_t)(ne - p))) {
                    for (char *q = p; q < ne; q++)
                        if (*q >= 'A' && *q <= 'Z')
                            *q = (char)(*q - 'A' + 'a');
                    nv[n++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)v, (size_t)(ne - p),
                                           (size_t)(ve - v), NGHTTP2_NV_FLAG_NONE};
                }
            }
            p = eol + 1;
        }
    }
    prd.source.ptr = st;
    prd.read_callback = read_data;
    rv = nghttp2_submit_response(st->h2->ng, st->id, nv, n, data ? &prd : NULL);
    if (rv)
        log_debug("h2: cannot answer stream %d: %s", st->id, nghttp2_strerror(rv));
    free(nv);
    free(x); /* nghttp2 copied the fields */
}

static void answer_refusal(struct h2_stream *st)
{
    const char *why = st->refuse == 431   ? "request header fields over the limit\n"
                      : st->refuse == 413 ? "request body over the limit\n"
                                          : "too many connections\n";
    size_t len = strlen(why);
    log_debug("h2: %d on stream %d (fd %d)", st->refuse, st->id, mcpgw_h2_fd(st));
    req_free(st);
    st->begun = 1;
    st->ended = 1;
    st->out = evbuffer_new();
    evbuffer_add(st->out, why, len);
    submit(st, st->refuse, "text/plain", st->refuse == 503 ? "Retry-After: 1\r\n" : NULL,
           (int64_t)len, 1);
}

static enum mcpgw_http_method method_of(const char *m, size_t n)
{
    for (int i = 0; i < MCPGW_HTTP_OTHER; i++) {
        const char *s = mcpgw_http_method_str((enum mcpgw_http_method)i);
        if (strlen(s) == n && memcmp(s, m, n) == 0)
            return (enum mcpgw_http_method)i;
    }
    return MCPGW_HTTP_OTHER;
}

/* Build the request the HTTP/1.1 way and hand it to the handler. */
static void dispatch(struct h2_stream *st)
{
    struct mcpgw_http_req req;
    struct mcpgw_http_head *h = &req.head;
    struct h2_req *r = st->req;
    const char *authority = NULL, *q;
    size_t alen = 0;
    int has_host = 0;

    memset(&req, 0, sizeof(req));
    h->content_length = -1;
    h->keep_alive = 1;
    h->minor_version = 1;
    h->method_str = h->target = "";
    h->head_len = r->len;
    for (size_t off = 0; off < r->len;) {
        uint32_t nl, vl;
        const char *name, *value;
        memcpy(&nl, r->fields + off, 4);
        memcpy(&vl, r->fields + off + 4, 4);
        name = r->fields + off + 8;
        value = name + nl;
        off += 8 + (size_t)nl + vl;
        if (nl && name[0] == ':') {
            if (mcpgw_strieq(name, nl, ":method")) {
                h->method_str = value;
                h->method_len = vl;
            } else if (mcpgw_strieq(name, nl, ":path")) {
                h->target = value;
                h->target_len = vl;
            } else if (mcpgw_strieq(name, nl, ":authority")) {
                authority = value;
                alen = vl;
            }
            continue;
        }
        if (mcpgw_strieq(name, nl, "host"))
            has_host = 1;
        if (mcpgw_strieq(name, nl, "content-length")) {
            h->content_length = 0;
            for (uint32_t i = 0; i < vl; i++)
                h->content_length = h->content_length * 10 + (value[i] - '0');
        }
        h->headers[h->nheaders++] = (struct mcpgw_http_header){name, value, (unsigned short)nl, vl};
    }
    if (!has_host && authority) {
        if (h->nheaders >= MCPGW_HTTP_MAX_HEADERS) {
            st->refuse = 431;
            answer_refusal(st);
            return;
        }
        h->headers[h->nheaders++] =
            (struct mcpgw_http_header){"host", authority, 4, (unsigned)alen};
    }
    h->method = method_of(h->method_str, h->method_len);
    q = memchr(h->target, '?', h->target_len);
    req.path = h->target;
    req.path_len = q ? (size_t)(q - h->target) : h->target_len;
    req.query = q ? q + 1 : NULL;
    req.query_len = q ? h->target_len - req.path_len - 1 : 0;
    req.body = r->body ? (const char *)evbuffer_pullup(r->body, -1) : "";
    req.body_len = r->body ? evbuffer_get_length(r->body) : 0;
    if (!req.body)
        req.body = "";

    st->is_head = h->method == MCPGW_HTTP_HEAD;
    st->dispatched = 1;
    st->released = 0;
    st->in_handler = 1;
    st->h2->c->srv->handler(handle(st), &req, st->h2->c->srv->arg);
    st->in_handler = 0;
    req_free(st);
    if (st->close_pending)
        release(st, 1);
}

/* ---- the session's work loop ---- */

static void run_todo(struct h2_conn *h2)
{
    struct h2_stream *st;
    while ((st = todo_pop(h2))) {
        if (st->refuse && !st->begun && !st->closed && !st->dispatched)
            answer_refusal(st);
        else if (st->req_done && !st->dispatched && !st->closed && !st->refuse)
            dispatch(st);
        /* Closed under an application that holds it (peer reset): tell it. A held stream
         * without a close callback is let go too, as an HTTP/1.1 connection would be freed. */
        if (st->closed && !st->released)
            release(st, 1);
        if (st->closed && st->released && !st->in_handler && !st->queued)
            stream_free(st);
    }
}

/* Run the to-do list and send what can be sent. Returns 0, or -1 when the session is over
 * (error, or both sides done after a GOAWAY) and the connection must be closed. */
static int pump(struct h2_conn *h2)
{
    struct mcpgw_http_conn *c = h2->c;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = 0;

    h2->pumping = 1;
    for (;;) {
        int rv;
        run_todo(h2);
        if (evbuffer_get_length(out) >= H2_OUT_HIGH)
            break; /* on_write resumes */
        rv = nghttp2_session_send(h2->ng);
        if (rv) {
            log_debug("h2: send failed: %s (fd %d)", nghttp2_strerror(rv),
                      (int)bufferevent_getfd(c->bev));
            rc = -1;
            break;
        }
        if (!h2->todo)
            break;
    }
    h2->pumping = 0;
    if (rc == 0 && !nghttp2_session_want_read(h2->ng) && !nghttp2_session_want_write(h2->ng))
        rc = -1;
    if (rc < 0)
        return rc;
    if (h2->nstreams == 0 && c->list != LIST_IDLE)
        mcpgw_httpd_list_append(c, LIST_IDLE, cfg_of(h2)->idle_timeout_ms);
    else if (h2->nstreams && c->list != LIST_BUSY)
        mcpgw_httpd_list_append(c, LIST_BUSY, 0);
    /* A peer that does not read gets nothing more read from it either. */
    if (evbuffer_get_length(out) >= H2_OUT_HIGH && !h2->read_off) {
        h2->read_off = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
    return 0;
}

/* The session is over: streams' close callbacks now, the socket once its output is flushed. */
static void finish_conn(struct mcpgw_http_conn *c)
{
    mcpgw_h2_shutdown(c);
    c->state = ST_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        mcpgw_httpd_conn_free(c);
        return;
    }
    /* a peer that does not read is given up on after the head timeout (see on_sweep) */
    mcpgw_httpd_list_append(c, LIST_HEAD, c->srv->cfg.head_timeout_ms);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct h2_conn *h2 = arg;
    if (pump(h2) < 0)
        finish_conn(h2->c);
}

void mcpgw_h2_start(struct mcpgw_http_conn *c)
{
    const struct mcpgw_httpd_config *cfg = &c->srv->cfg;
    struct h2_conn *h2 = xcalloc(1, sizeof(*h2));
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[3] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         cfg->h2_max_streams ? cfg->h2_max_streams : 20000},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         cfg->max_head_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)cfg->max_head_bytes},
    };

    h2->c = c;
    TAILQ_INIT(&h2->streams);
    if (nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt)) {
        log_error("h2: out of memory");
        abort();
    }
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    /* Closed streams are not kept around for the priority tree: thousands of short POSTs. */
    nghttp2_option_set_no_closed_streams(opt, 1);
    if (nghttp2_session_server_new2(&h2->ng, cbs, h2, opt)) {
        log_error("h2: out of memory");
        abort();
    }
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv, MCPGW_ARRAY_LEN(iv));
    h2->kick = event_new(c->srv->base, -1, 0, on_kick, h2);
    c->u.h2 = h2;
    c->is_h2 = 1;
    bufferevent_setwatermark(c->bev, EV_WRITE, H2_OUT_LOW, 0);
    mcpgw_httpd_list_append(c, LIST_IDLE, cfg->idle_timeout_ms);
    log_debug("h2: connection (fd %d)", (int)bufferevent_getfd(c->bev));
    mcpgw_h2_on_read(c);
}

void mcpgw_h2_on_read(struct mcpgw_http_conn *c)
{
    struct h2_conn *h2 = c->u.h2;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (!h2) { /* closing: discard */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t n;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = nghttp2_session_mem_recv(h2->ng, v.iov_base, v.iov_len);
        if (n < 0) {
            log_debug("h2: %s (fd %d)", nghttp2_strerror((int)n), (int)bufferevent_getfd(c->bev));
            finish_conn(c);
            return;
        }
        evbuffer_drain(in, v.iov_len);
    }
    if (pump(h2) < 0)
        finish_conn(c);
}

void mcpgw_h2_on_write(struct mcpgw_http_conn *c)
{
    struct h2_conn *h2 = c->u.h2;
    if (!h2) {
        if (c->state == ST_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            mcpgw_httpd_conn_free(c);
        return;
    }
    if (h2->read_off) {
        h2->read_off = 0;
        bufferevent_enable(c->bev, EV_READ);
    }
    if (pump(h2) < 0)
        finish_conn(c);
}

void mcpgw_h2_idle(struct mcpgw_http_conn *c)
{
    if (c->u.h2) {
        nghttp2_session_terminate_session(c->u.h2->ng, NGHTTP2_NO_ERROR);
        pump(c->u.h2);
    }
    finish_conn(c);
}

void mcpgw_h2_shutdown(struct mcpgw_http_conn *c)
{
    struct h2_conn *h2 = c->u.h2;
    struct h2_stream *st;
    if (!h2)
        return;
    h2->dead = 1;
    while ((st = TAILQ_FIRST(&h2->streams))) {
        st->closed = 1;
        if (!st->released)
            release(st, 1); /* may use other streams of h2: they see it dead */
        stream_free(st);
    }
    nghttp2_session_del(h2->ng);
    event_free(h2->kick);
    free(h2);
    c->u.h2 = NULL;
}

/* ---- the httpd.h API on a stream ---- */

void mcpgw_h2_respond(struct h2_stream *st, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t len)
{
    int with_body = len && !st->is_head;
    if (!held(st) || st->begun)
        return;
    if (st->closed || st->h2->dead) {
        release(st, 0);
        return;
    }
    st->begun = 1;
    st->ended = 1;
    if (with_body) {
        st->out = evbuffer_new();
        evbuffer_add(st->out, body, len);
    }
    submit(st, status, content_type, extra_headers, (int64_t)len, with_body);
    release(st, 0);
    kick(st->h2);
}

void mcpgw_h2_stream_begin(struct h2_stream *st, int status, const char *content_type,
                           const char *extra_headers)
{
    if (!held(st) || st->begun || st->closed || st->h2->dead)
        return;
    st->begun = 1;
    st->streaming = 1;
    st->out = evbuffer_new();
    submit(st, status, content_type, extra_headers, -1, 1);
    kick(st->h2);
}

int mcpgw_h2_stream_write(struct h2_stream *st, const void *data, size_t len)
{
    size_t queued;
    if (!held(st) || !st->streaming || st->ended || st->closed || st->h2->dead)
        return -1;
    queued = evbuffer_get_length(st->out);
    if (queued > cfg_of(st->h2)->max_output_bytes) {
        if (cfg_of(st->h2)->streams_dropped)
            (*cfg_of(st->h2)->streams_dropped)++;
        log_warn("http: dropping an h2 stream whose client does not read (%zu bytes queued)",
                 queued);
        mcpgw_h2_close(st);
        return -1;
    }
    if (!len)
        return 0;
    evbuffer_add(st->out, data, len);
    nghttp2_session_resume_data(st->h2->ng, st->id);
    kick(st->h2);
    return 0;
}

void mcpgw_h2_stream_end(struct h2_stream *st)
{
    if (!held(st) || !st->streaming || st->ended)
        return;
    st->ended = 1;
    if (!st->closed && !st->h2->dead) {
        nghttp2_session_resume_data(st->h2->ng, st->id);
        kick(st->h2);
    }
    release(st, 0);
}

void mcpgw_h2_close(struct h2_stream *st)
{
    if (!held(st))
        return;
    st->ended = 1;
    if (!st->closed && !st->h2->dead) {
        /* an abnormal end for the peer, as a dropped connection is in HTTP/1.1 */
        nghttp2_submit_rst_stream(st->h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        kick(st->h2);
    }
    if (st->in_handler) {
        st->close_pending = 1; /* the close callback fires once the handler returns */
        return;
    }
    release(st, 1);
}

void mcpgw_h2_set_close_cb(struct h2_stream *st, mcpgw_http_close_fn cb, void *arg)
{
    if (st->released)
        return;
    st->on_close = cb;
    st->close_arg = arg;
}

size_t mcpgw_h2_pending_output(const struct h2_stream *st)
{
    return st->out ? evbuffer_get_length(st->out) : 0;
}

int mcpgw_h2_fd(const struct h2_stream *st)
{
    return (int)bufferevent_getfd(st->h2->c->bev);
}
