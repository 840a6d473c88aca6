/* mux.c - HTTP/2 connections from a balancer worker to a node (see mux.h). */
#include "balancer/mux.h"

#include "common/http.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define STREAM_WINDOW (256 * 1024)  /* per stream: what a paused client can leave with us */
#define OUT_HIGH      (1024 * 1024) /* stop generating frames while this much is unsent */
#define READ_BUF      (64 * 1024)
#define PARTIAL_MAX   (64 * 1024) /* an event longer than this is relayed in pieces after all */
#define MAX_NV        (MCPGW_HTTP_MAX_HEADERS + 4)

struct mcpgw_mux_stream {
    struct mcpgw_mux *m;
    struct mcpgw_mux_stream *prev, *next;
    struct mcpgw_mux_stream *wprev, *wnext; /* waiting for a response head, oldest first */
    const struct mcpgw_mux_stream_cb *cb;
    void *owner;
    struct evbuffer *in;
    struct evbuffer *partial; /* events: the bytes after the last whole event, held back */
    struct mux_body *body;    /* a request body still to send (listen streams), or NULL */
    uint64_t opened_ms;
    int32_t id;
    uint32_t unconsumed; /* received while paused, window not yet returned */
    char hist[2];        /* events: the last two body bytes received */
    int status;
    uint8_t sent : 1;      /* its HEADERS frame went out */
    uint8_t head_seen : 1; /* final response head in the input */
    uint8_t interim : 1;   /* the head being received is a 1xx */
    uint8_t no_body : 1;   /* 204 / 304 */
    uint8_t resp_end : 1;  /* final chunk in the input */
    uint8_t events : 1;    /* a text/event-stream body: relayed a whole event at a time */
    uint8_t closed : 1;    /* nghttp2 is done with it (or the connection is gone) */
    uint8_t paused : 1;
    uint8_t in_cb : 1;   /* its end callback is running */
    uint8_t waiting : 1; /* on the mux's wait list */
};

struct mcpgw_mux {
    struct event_base *base;
    struct bufferevent *bev; /* writes and connect */
    struct event rev;        /* reads */
    struct event flush_ev;   /* frames are generated from the loop, never inside the caller */
    nghttp2_session *sess;
    const struct mcpgw_mux_cb *cb;
    void *arg;
    struct mcpgw_mux_stream *first;
    struct mcpgw_mux_stream *wait_first, *wait_last; /* no response head yet, by open time */
    unsigned nstreams;
    int depth; /* nesting of our entry points: frees and sends wait until it is 0 */
    uint8_t connected : 1, dead : 1, freed : 1, goaway : 1, want_flush : 1, rev_on : 1,
        got_settings : 1, not_h2 : 1;
};

static void mux_flush(struct mcpgw_mux *m);
static void mux_fail(struct mcpgw_mux *m, int err, const char *why);

/* ---- entry and exit: nghttp2 may not be re-entered from its callbacks, and a mux freed
 * inside one of its callbacks is released only when the outermost entry returns ---- */

static void destroy(struct mcpgw_mux *m)
{
    if (m->rev_on)
        event_del(&m->rev);
    event_del(&m->flush_ev);
    if (m->sess)
        nghttp2_session_del(m->sess);
    if (m->bev)
        bufferevent_free(m->bev);
    free(m);
}

static void enter(struct mcpgw_mux *m)
{
    m->depth++;
}

static void flush_now(struct mcpgw_mux *m);

static void leave(struct mcpgw_mux *m)
{
    if (--m->depth > 0)
        return;
    if (!m->freed && !m->dead && m->want_flush) {
        m->depth++; /* a failure while sending may free m: hold it until we are done */
        flush_now(m);
        m->depth--;
    }
    if (m->freed)
        destroy(m);
}

/* ---- streams ---- */

static void wait_remove(struct mcpgw_mux_stream *s)
{
    struct mcpgw_mux *m = s->m;
    if (!s->waiting)
        return;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        m->wait_first = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    else
        m->wait_last = s->wprev;
    s->wprev = s->wnext = NULL;
    s->waiting = 0;
}

static void unlink_stream(struct mcpgw_mux_stream *s)
{
    struct mcpgw_mux *m = s->m;
    wait_remove(s);
    if (s->prev)
        s->prev->next = s->next;
    else if (m->first == s)
        m->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    m->nstreams--;
}

/* A small request body sent after the HEADERS (a subscriptions/listen request's JSON). */
struct mux_body {
    size_t len, off;
    char data[];
};

/* nghttp2 asks for the body's bytes: all of it is in memory. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *arg)
{
    struct mux_body *b = src->ptr;
    size_t n = b->len - b->off < len ? b->len - b->off : len;
    (void)ng, (void)id, (void)arg;
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* A stream's own memory; the caller has taken it off its connection's list. */
static void stream_release(struct mcpgw_mux_stream *s)
{
    free(s->body);
    evbuffer_free(s->in);
    if (s->partial)
        evbuffer_free(s->partial);
    free(s);
}

static void stream_free(struct mcpgw_mux_stream *s)
{
    unlink_stream(s);
    stream_release(s);
}

/* Tell the owner its stream is over, then forget the owner. */
static void stream_end(struct mcpgw_mux_stream *s, enum mcpgw_mux_end how, const char *why)
{
    void *o = s->owner;
    if (!o)
        return;
    s->owner = NULL;
    s->in_cb = 1;
    s->cb->end(o, how, why);
    s->in_cb = 0;
}

static void notify(struct mcpgw_mux_stream *s)
{
    if (s->owner)
        s->cb->input(s->owner);
}

/* ---- nghttp2 callbacks ---- */

static ssize_t no_send(nghttp2_session *sess, const uint8_t *data, size_t len, int flags, void *arg)
{
    (void)sess, (void)data, (void)len, (void)flags, (void)arg;
    return NGHTTP2_ERR_CALLBACK_FAILURE; /* mem_send is used */
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    struct mcpgw_mux_stream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    (void)flags, (void)arg;
    if (!s || f->hd.type != NGHTTP2_HEADERS || s->head_seen)
        return 0; /* trailers: dropped */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        s->status = st;
        s->interim = st >= 100 && st < 200;
        s->no_body = st == 204 || st == 304;
        evbuffer_add_printf(s->in, "HTTP/1.1 %d %s\r\n", st, mcpgw_http_reason(st));
        return 0;
    }
    if (name[0] == ':')
        return 0;
    /* The body is re-framed as chunks; a length would contradict that. */
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
        return 0;
    if (namelen == 12 && memcmp(name, "content-type", 12) == 0 && valuelen >= 17 &&
        strncasecmp((const char *)value, "text/event-stream", 17) == 0)
        s->events = 1;
    evbuffer_add(s->in, name, namelen);
    evbuffer_add(s->in, ": ", 2);
    evbuffer_add(s->in, value, valuelen);
    evbuffer_add(s->in, "\r\n", 2);
    return 0;
}

/* Whatever of an event is held back goes to the input as it is (the stream ends, or the event
 * is too long to hold). */
static void flush_partial(struct mcpgw_mux_stream *s)
{
    size_t n = s->partial ? evbuffer_get_length(s->partial) : 0;
    if (!n)
        return;
    evbuffer_add_printf(s->in, "%zx\r\n", n);
    evbuffer_add_buffer(s->in, s->partial);
    evbuffer_add(s->in, "\r\n", 2);
}

static void add_chunk(struct evbuffer *in, const void *data, size_t len)
{
    evbuffer_add_printf(in, "%zx\r\n", len);
    evbuffer_add(in, data, len);
    evbuffer_add(in, "\r\n", 2);
}

/* Where the last blank line of an event stream ends in data (0: none), given the two bytes
 * before it (hist): after "\n\n" or "\n\r\n". */
static size_t last_event_end(const uint8_t *data, size_t len, const char hist[2])
{
    for (size_t i = len; i-- > 0;) {
        char p1, p2;
        if (data[i] != '\n')
            continue;
        p1 = i >= 1 ? (char)data[i - 1] : hist[1];
        p2 = i >= 2 ? (char)data[i - 2] : i == 1 ? hist[1] : hist[0];
        if (p1 == '\n' || (p1 == '\r' && p2 == '\n'))
            return i + 1;
    }
    return 0;
}

/* The body of an event stream reaches the input a whole event at a time; the bytes of an event
 * still incomplete wait here. An SSE client acts on an event only at its blank line, so nobody
 * waits for them; but a client that never got part of an event is always at an event boundary,
 * where the proxy can resume its stream at another node if this one fails (a small window
 * splits events between DATA frames, and the rest of one dies with a killed node). */
static void add_events(struct mcpgw_mux_stream *s, const uint8_t *data, size_t len)
{
    size_t cut = last_event_end(data, len, s->hist);

    if (len >= 2) {
        s->hist[0] = (char)data[len - 2];
        s->hist[1] = (char)data[len - 1];
    } else if (len == 1) {
        s->hist[0] = s->hist[1];
        s->hist[1] = (char)data[0];
    }
    if (cut) { /* the event held back ends here: both go in at once */
        flush_partial(s);
        add_chunk(s->in, data, cut);
    }
    if (cut == len)
        return;
    if (!s->partial)
        s->partial = evbuffer_new();
    evbuffer_add(s->partial, data + cut, len - cut);
    if (evbuffer_get_length(s->partial) > PARTIAL_MAX)
        flush_partial(s);
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *arg)
{
    struct mcpgw_mux_stream *s = nghttp2_session_get_stream_user_data(sess, id);
    (void)flags, (void)arg;
    nghttp2_session_consume_connection(sess, len);
    if (!s) {
        nghttp2_session_consume_stream(sess, id, len);
        return 0;
    }
    if (len && s->head_seen && !s->no_body) {
        if (s->events)
            add_events(s, data, len);
        else
            add_chunk(s->in, data, len);
    }
    if (s->paused)
        s->unconsumed += (uint32_t)len;
    else
        nghttp2_session_consume_stream(sess, id, len);
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *arg)
{
    struct mcpgw_mux *m = arg;
    struct mcpgw_mux_stream *s;
    int changed = 0;

    if (f->hd.type == NGHTTP2_GOAWAY) {
        m->goaway = 1;
        return 0;
    }
    if (f->hd.type == NGHTTP2_SETTINGS) {
        m->got_settings = 1;
        m->not_h2 = 0;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
    if (!s)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !s->head_seen && s->status) {
        /* The end of a response head: a 1xx passes as it is, a final one gets chunked framing
         * (or none, for a status without a body). */
        if (s->interim) {
            evbuffer_add(s->in, "\r\n", 2);
            s->status = 0;
            s->interim = 0;
        } else {
            evbuffer_add_printf(s->in, "%s\r\n",
                                s->no_body ? "" : "transfer-encoding: chunked\r\n");
            s->head_seen = 1;
            wait_remove(s);
        }
        changed = 1;
    }
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->head_seen && !s->resp_end) {
        if (!s->no_body) {
            flush_partial(s);
            evbuffer_add(s->in, "0\r\n\r\n", 5);
        }
        s->resp_end = 1;
        changed = 1;
    }
    if (f->hd.type == NGHTTP2_DATA && f->hd.length)
        changed = 1;
    if (changed)
        notify(s);
    return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *f, void *arg)
{
    (void)arg;
    if (f->hd.type == NGHTTP2_HEADERS) {
        struct mcpgw_mux_stream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
        if (s)
            s->sent = 1;
    } else if (f->hd.type == NGHTTP2_DATA && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* The body is all sent (nghttp2 reads no more of it): a held listen stream need not
         * carry its copy (~300 bytes each; the exchange keeps the request for a re-open). */
        struct mcpgw_mux_stream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
        if (s && s->body) {
            free(s->body);
            s->body = NULL;
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code, void *arg)
{
    struct mcpgw_mux_stream *s = nghttp2_session_get_stream_user_data(sess, id);
    char why[96];
    (void)arg;
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(sess, id, NULL);
    s->closed = 1;
    if (s->owner && !(s->resp_end && code == NGHTTP2_NO_ERROR)) {
        if (code == NGHTTP2_REFUSED_STREAM || !s->sent) {
            stream_end(s, MCPGW_MUX_UNSENT, "the node refused the stream");
        } else {
            snprintf(why, sizeof(why), "the node reset the stream (%s)",
                     nghttp2_http2_strerror(code));
            stream_end(s, MCPGW_MUX_RESET, why);
        }
    }
    if (!s->owner)
        stream_free(s); /* else the owner still reads its input; freed on close */
    return 0;
}

/* ---- the connection ---- */

/* Generate frames into the socket's output while it has room. Inside an entry point. */
static void flush_now(struct mcpgw_mux *m)
{
    struct evbuffer *out = bufferevent_get_output(m->bev);
    m->want_flush = 0;
    while (!m->dead && evbuffer_get_length(out) < OUT_HIGH) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(m->sess, &p);
        if (n < 0) {
            mux_fail(m, 0, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, p, (size_t)n);
    }
    /* Write now rather than from the bufferevent's write event, which runs in its turn behind
     * everything else the loop has due: on a loop busy relaying, a failover's new streams
     * reached the nodes only once the relaying was done. What is left (a full socket), or an
     * error, the bufferevent meets again on its own write. */
    if (!m->dead && m->connected && evbuffer_get_length(out)) {
        evbuffer_unfreeze(out, 1);
        evbuffer_write(out, bufferevent_getfd(m->bev));
        evbuffer_freeze(out, 1);
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_mux *m = arg;
    (void)fd, (void)what;
    enter(m);
    m->want_flush = 1;
    leave(m);
}

/* Send what was queued once the caller is back in the loop: what a caller does to one stream
 * then never calls back into it, and one loop turn's streams share a write. */
static void mux_flush(struct mcpgw_mux *m)
{
    if (!m->dead && !m->freed)
        event_active(&m->flush_ev, EV_TIMEOUT, 1);
}

static void mux_fail(struct mcpgw_mux *m, int err, const char *why)
{
    if (m->dead)
        return;
    m->dead = 1;
    if (m->cb->failed)
        m->cb->failed(m->arg, m, m->connected, err, why);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    static uint8_t buf[READ_BUF];
    struct mcpgw_mux *m = arg;
    ssize_t r;
    (void)what;
    r = read((int)fd, buf, sizeof(buf));
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    enter(m);
    if (r <= 0) {
        mux_fail(m, r < 0 ? errno : 0, r < 0 ? strerror(errno) : "the node closed the connection");
    } else {
        ssize_t k = nghttp2_session_mem_recv(m->sess, buf, (size_t)r);
        /* Bytes, but no HTTP/2 SETTINGS first (nghttp2 may only queue a GOAWAY for them):
         * the peer speaks something else. */
        if (!m->got_settings)
            m->not_h2 = 1;
        if (k < 0)
            mux_fail(m, 0, nghttp2_strerror((int)k));
        else
            m->want_flush = 1;
    }
    leave(m);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct mcpgw_mux *m = arg;
    (void)bev;
    enter(m);
    m->want_flush = 1; /* generate what waited for room */
    leave(m);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mcpgw_mux *m = arg;
    int err = EVUTIL_SOCKET_ERROR();
    enter(m);
    if (what & BEV_EVENT_CONNECTED) {
        m->connected = 1;
        bufferevent_set_timeouts(bev, NULL, NULL);
        event_add(&m->rev, NULL);
        m->rev_on = 1;
        m->want_flush = 1;
    } else if (what & BEV_EVENT_TIMEOUT) {
        mux_fail(m, ETIMEDOUT, "connect timed out");
    } else {
        if (!err)
            err = m->connected ? ECONNRESET : ECONNREFUSED;
        mux_fail(m, err, strerror(err));
    }
    leave(m);
}

struct mcpgw_mux *mcpgw_mux_new(struct event_base *base, int fd, int pending,
                                uint32_t connect_timeout_ms, uint32_t conn_window,
                                const struct mcpgw_mux_cb *cb, void *arg)
{
    struct mcpgw_mux *m = xcalloc(1, sizeof(*m));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
    };
    int ok;

    m->base = base;
    m->cb = cb;
    m->arg = arg;
    m->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!m->bev) {
        close(fd);
        free(m);
        return NULL;
    }
    event_assign(&m->rev, base, fd, EV_READ | EV_PERSIST, on_readable, m);
    event_assign(&m->flush_ev, base, -1, 0, on_flush, m);
    /* Writing frames out is the control path (a failover's reconnections open streams here):
     * at the loop's first priority, ahead of the relaying of other streams' bytes. */
    event_priority_set(&m->flush_ev, 0);
    ok = nghttp2_session_callbacks_new(&cbs) == 0 && nghttp2_option_new(&opt) == 0;
    if (ok) {
        nghttp2_session_callbacks_set_send_callback(cbs, no_send);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_option_set_no_auto_window_update(opt, 1);
        /* Until the node's SETTINGS arrive; a failover opens thousands of streams at once. */
        nghttp2_option_set_peer_max_concurrent_streams(opt, 10000);
        ok = nghttp2_session_client_new2(&m->sess, cbs, m, opt) == 0;
    }
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    if (opt)
        nghttp2_option_del(opt);
    if (!ok || nghttp2_submit_settings(m->sess, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(m->sess, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)conn_window) != 0) {
        destroy(m);
        return NULL;
    }
    bufferevent_setcb(m->bev, NULL, on_write, on_event, m);
    bufferevent_disable(m->bev, EV_READ);
    bufferevent_enable(m->bev, EV_WRITE);
    if (pending) {
        struct timeval ct = {connect_timeout_ms / 1000, (connect_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(m->bev, NULL, &ct);
        bufferevent_socket_connect(m->bev, NULL, 0);
    } else {
        m->connected = 1;
        event_add(&m->rev, NULL);
        m->rev_on = 1;
    }
    mux_flush(m); /* preface and SETTINGS: queued until the connect completes */
    return m;
}

void mcpgw_mux_free(struct mcpgw_mux *m)
{
    if (!m || m->freed)
        return;
    enter(m);
    m->dead = 1;
    m->freed = 1; /* a nested call (from an owner's end callback) returns at once */
    /* Every stream ends; owners may close other streams of m meanwhile (no-ops now). */
    while (m->first) {
        struct mcpgw_mux_stream *s = m->first;
        m->first = s->next;
        if (m->first)
            m->first->prev = NULL;
        m->nstreams--;
        s->closed = 1;
        /* Without the node's SETTINGS it did not take our frames as HTTP/2 requests. */
        if (s->owner && s->sent && m->got_settings)
            stream_end(s, MCPGW_MUX_LOST, "the connection to the node was lost");
        else if (s->owner)
            stream_end(s, MCPGW_MUX_UNSENT, "the connection to the node failed");
        stream_release(s); /* with the held-back part of an event, which this path forgot */
    }
    leave(m);
}

int mcpgw_mux_usable(const struct mcpgw_mux *m)
{
    uint32_t max;
    if (m->dead || m->freed || m->goaway)
        return 0;
    max = nghttp2_session_get_remote_settings(m->sess, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return m->nstreams < max;
}

int mcpgw_mux_not_h2(const struct mcpgw_mux *m)
{
    return m->not_h2;
}

unsigned mcpgw_mux_streams(const struct mcpgw_mux *m)
{
    return m->nstreams;
}

static int hop_by_hop(const char *n, size_t len)
{
    static const char *const drop[] = {"host",    "connection",        "keep-alive",
                                       "upgrade", "transfer-encoding", "proxy-connection",
                                       "te",      "content-length"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (mcpgw_strieq(n, len, drop[i]))
            return 1;
    return 0;
}

static nghttp2_nv nv_of(const char *name, size_t nlen, const char *value, size_t vlen)
{
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
    return nv;
}

struct mcpgw_mux_stream *mcpgw_mux_open(struct mcpgw_mux *m, struct evbuffer *head,
                                        const struct mcpgw_mux_stream_cb *cb, void *owner,
                                        char *why, size_t whylen)
{
    size_t len = evbuffer_get_length(head), end;
    const char *data = (const char *)evbuffer_pullup(head, -1), *perr = NULL;
    struct mcpgw_http_head h;
    const struct mcpgw_http_header *host;
    nghttp2_nv nv[MAX_NV];
    char lower[MCPGW_HTTP_MAX_HEADERS][64];
    size_t n = 0;
    struct mcpgw_mux_stream *s;
    nghttp2_data_provider prd;
    int32_t id;

    if (!mcpgw_mux_usable(m)) {
        snprintf(why, whylen, "the connection to the node is closing");
        return NULL;
    }
    end = data ? mcpgw_http_head_end(data, len) : 0;
    if (!end || mcpgw_http_parse_head(data, end, 0, &h, &perr) != MCPGW_HTTP_OK) {
        snprintf(why, whylen, "request head not carried: %s", perr ? perr : "incomplete");
        return NULL;
    }
    host = mcpgw_http_find(&h, "host");
    nv[n++] = nv_of(":method", 7, h.method_str, h.method_len);
    nv[n++] = nv_of(":scheme", 7, "http", 4);
    nv[n++] = nv_of(":path", 5, h.target, h.target_len);
    if (host)
        nv[n++] = nv_of(":authority", 10, host->value, host->value_len);
    for (int i = 0; i < h.nheaders && n < MAX_NV; i++) {
        const struct mcpgw_http_header *x = &h.headers[i];
        if (hop_by_hop(x->name, x->name_len))
            continue;
        if (x->name_len > sizeof(lower[i])) {
            snprintf(why, whylen, "header name over 64 bytes");
            return NULL;
        }
        for (size_t k = 0; k < x->name_len; k++) {
            char ch = x->name[k];
            lower[i][k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        nv[n++] = nv_of(lower[i], x->name_len, x->value, x->value_len);
    }
    s = xcalloc(1, sizeof(*s));
    s->m = m;
    s->cb = cb;
    s->owner = owner;
    s->in = evbuffer_new();
    s->opened_ms = mcpgw_now_ms();
    if (len > end) { /* the bytes after the head are its body (a small one: listen streams) */
        s->body = xmalloc(sizeof(*s->body) + (len - end));
        s->body->len = len - end;
        s->body->off = 0;
        memcpy(s->body->data, data + end, len - end);
        prd.source.ptr = s->body;
        prd.read_callback = read_body;
    }
    id = nghttp2_submit_request(m->sess, NULL, nv, n, s->body ? &prd : NULL, s);
    if (id < 0 || !s->in) {
        snprintf(why, whylen, "cannot open an HTTP/2 stream: %s",
                 id < 0 ? nghttp2_strerror(id) : "out of memory");
        if (s->in)
            evbuffer_free(s->in);
        free(s->body);
        free(s);
        return NULL;
    }
    s->id = id;
    s->next = m->first;
    if (m->first)
        m->first->prev = s;
    m->first = s;
    m->nstreams++;
    s->waiting = 1;
    s->wprev = m->wait_last;
    if (m->wait_last)
        m->wait_last->wnext = s;
    else
        m->wait_first = s;
    m->wait_last = s;
    mux_flush(m);
    return s;
}

struct evbuffer *mcpgw_mux_stream_input(struct mcpgw_mux_stream *s)
{
    return s->in;
}

int mcpgw_mux_stream_sent(const struct mcpgw_mux_stream *s)
{
    return s->sent;
}

void mcpgw_mux_stream_pause(struct mcpgw_mux_stream *s)
{
    s->paused = 1;
}

void mcpgw_mux_stream_resume(struct mcpgw_mux_stream *s)
{
    struct mcpgw_mux *m = s->m;
    s->paused = 0;
    if (!s->unconsumed || s->closed || m->dead)
        return;
    nghttp2_session_consume_stream(m->sess, s->id, s->unconsumed);
    s->unconsumed = 0;
    mux_flush(m);
}

void mcpgw_mux_stream_close(struct mcpgw_mux_stream *s)
{
    struct mcpgw_mux *m = s->m;
    s->owner = NULL;
    if (s->in_cb)
        return; /* the end callback's caller frees it */
    if (s->closed || m->dead) {
        if (!m->dead)
            stream_free(s);
        return; /* a dead mux frees its streams itself */
    }
    nghttp2_submit_rst_stream(m->sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    mux_flush(m); /* on_stream_close frees it */
}

void mcpgw_mux_expire(struct mcpgw_mux *m, uint32_t timeout_ms)
{
    uint64_t now = mcpgw_now_ms();
    char why[96];
    if (m->dead)
        return;
    enter(m);
    /* Oldest first: the walk stops at the first stream still within its time. */
    for (struct mcpgw_mux_stream *s;
         (s = m->wait_first) && !m->dead && now - s->opened_ms >= timeout_ms;) {
        wait_remove(s);
        if (!s->owner)
            continue;
        snprintf(why, sizeof(why), "no response head within %u ms", timeout_ms);
        stream_end(s, MCPGW_MUX_TIMEOUT, why);
        if (!s->closed)
            nghttp2_submit_rst_stream(m->sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        m->want_flush = 1;
    }
    leave(m);
}
