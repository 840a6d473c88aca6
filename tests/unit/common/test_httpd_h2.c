/* test_httpd_h2.c - h2c (prior knowledge) on the HTTP server, against a real nghttp2 client.
 *
 * Each test runs the server and an nghttp2 client session over a real loopback TCP connection
 * in one process and one thread: the client's frames are written with blocking send() and the
 * test pumps the event loop (EVLOOP_NONBLOCK) while feeding what the client socket received to
 * the client session. Ports 18420-18435. */
#include "common/httpd.h"
#include "common/util.h"

#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT_BASE  18420
#define TIMEOUT_MS 3000
#define MAX_OPEN   256

/* ---- server side: the handler picks a behaviour from the path ---- */

struct seen {
    enum mcpgw_http_method method;
    char method_str[16], path[64], query[64], host[64], ctype[64], custom[64];
    int has_query, keep_alive, minor_version, nheaders;
    int64_t content_length;
    char body[4096];
    size_t body_len;
};

struct ctx {
    struct event_base *base;
    struct mcpgw_httpd *httpd;
    int port;
    int nreq;
    struct seen seen;
    struct mcpgw_http_conn *open[MAX_OPEN]; /* streams left open (/open, /many) */
    int nopen;
    int many_target, many_round;
    struct event *timer;
    int closed;            /* close callback calls */
    int closed_in_handler; /* the close callback ran before the handler returned */
    int in_handler;
};

static void on_close(struct mcpgw_http_conn *c, void *arg)
{
    struct ctx *x = arg;
    x->closed++;
    if (x->in_handler)
        x->closed_in_handler = 1;
    for (int i = 0; i < x->nopen; i++)
        if (x->open[i] == c)
            x->open[i] = NULL;
}

static void copy_hdr(const struct mcpgw_http_req *req, const char *name, char *out, size_t n)
{
    const struct mcpgw_http_header *h = mcpgw_http_find(&req->head, name);
    out[0] = '\0';
    if (h)
        snprintf(out, n, "%.*s", (int)h->value_len, h->value);
}

/* /many: every 5 ms one more event on each stream; after the third, end them all. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ctx *x = arg;
    struct timeval tv = {0, 5000};
    char ev[32];
    x->many_round++;
    for (int i = 0; i < x->nopen; i++) {
        if (!x->open[i])
            continue;
        snprintf(ev, sizeof(ev), "data: r%d\n\n", x->many_round);
        ck_assert_int_eq(mcpgw_http_stream_write(x->open[i], ev, strlen(ev)), 0);
        if (x->many_round == 3) {
            /* as the node does: clear the callback, then end */
            mcpgw_http_conn_set_close_cb(x->open[i], NULL, NULL);
            mcpgw_http_stream_end(x->open[i]);
            x->open[i] = NULL;
        }
    }
    if (x->many_round < 3)
        evtimer_add(x->timer, &tv);
}

static void handler(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct ctx *x = arg;
    struct seen *s = &x->seen;

    x->nreq++;
    x->in_handler = 1;
    memset(s, 0, sizeof(*s));
    s->method = req->head.method;
    snprintf(s->method_str, sizeof(s->method_str), "%.*s", (int)req->head.method_len,
             req->head.method_str);
    snprintf(s->path, sizeof(s->path), "%.*s", (int)req->path_len, req->path);
    s->has_query = req->query != NULL;
    if (req->query)
        snprintf(s->query, sizeof(s->query), "%.*s", (int)req->query_len, req->query);
    copy_hdr(req, "Host", s->host, sizeof(s->host));
    copy_hdr(req, "Content-Type", s->ctype, sizeof(s->ctype));
    copy_hdr(req, "x-custom", s->custom, sizeof(s->custom));
    s->keep_alive = req->head.keep_alive;
    s->minor_version = req->head.minor_version;
    s->content_length = req->head.content_length;
    s->nheaders = req->head.nheaders;
    ck_assert_uint_le(req->body_len, sizeof(s->body));
    memcpy(s->body, req->body, req->body_len);
    s->body_len = req->body_len;

    if (strcmp(s->path, "/echo") == 0) {
        mcpgw_http_respond(c, 200, "application/json",
                           "Mcp-Session-Id: s-1\r\nConnection: keep-alive\r\nX-Trace:  t1 \r\n",
                           req->body_len ? req->body : "{}", req->body_len ? req->body_len : 2);
    } else if (strcmp(s->path, "/open") == 0 || strcmp(s->path, "/many") == 0) {
        ck_assert_int_lt(x->nopen, MAX_OPEN);
        mcpgw_http_stream_begin(c, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
        mcpgw_http_conn_set_close_cb(c, on_close, x);
        ck_assert_int_eq(mcpgw_http_stream_write(c, "data: a\n\n", 9), 0);
        x->open[x->nopen++] = c;
        if (s->path[1] == 'm' && x->nopen == x->many_target) {
            struct timeval tv = {0, 5000};
            evtimer_add(x->timer, &tv);
        }
    } else if (strcmp(s->path, "/close") == 0) {
        mcpgw_http_conn_set_close_cb(c, on_close, x);
        mcpgw_http_conn_close(c);
        ck_assert_int_eq(x->closed, 0); /* fires after the handler returns */
        mcpgw_http_respond(c, 200, "text/plain", NULL, "late", 4); /* ignored */
    } else {
        mcpgw_http_respond(c, 404, "text/plain", NULL, "no\n", 3);
    }
    x->in_handler = 0;
}

static void start(struct ctx *x, int port_off, const struct mcpgw_httpd_config *cfg)
{
    struct mcpgw_httpd_config def;
    char addr[64], err[256] = "";
    memset(x, 0, sizeof(*x));
    if (!cfg) {
        mcpgw_httpd_config_defaults(&def);
        cfg = &def;
    }
    x->port = PORT_BASE + port_off;
    x->base = event_base_new();
    x->timer = evtimer_new(x->base, on_timer, x);
    x->httpd = mcpgw_httpd_new(x->base, cfg, handler, x);
    ck_assert_ptr_nonnull(x->httpd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", x->port);
    ck_assert_msg(mcpgw_httpd_listen(x->httpd, addr, err, sizeof(err)) == 0, "listen: %s", err);
}

/* rcvbuf 0: the system's default receive buffer. */
static int dial(struct ctx *x, int rcvbuf)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    ck_assert_int_ge(fd, 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)x->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        ck_assert_int_gt(w, 0);
        s += w;
        n -= (size_t)w;
    }
}

/* ---- client side: an nghttp2 client session over a loopback socket ---- */

struct cstream {
    int32_t id;
    int status;
    char head[2048]; /* "name: value\n" per response field */
    size_t head_len;
    char body[16384];
    size_t body_len;   /* stored: the first sizeof(body) bytes */
    size_t body_total; /* received */
    int ended, closed;
    uint32_t rst; /* error code of the close; 0 for a clean end */
    int first_data_seq, end_seq;
    const char *req_body;
    size_t req_body_len, req_body_off;
};

struct client {
    int fd;
    nghttp2_session *ng;
    struct cstream s[MAX_OPEN];
    int n;
    int eof, goaway, seq;
};

static int c_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *arg)
{
    struct cstream *cs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!cs)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        cs->status = atoi((const char *)value);
    ck_assert_uint_lt(cs->head_len + namelen + valuelen + 3, sizeof(cs->head));
    cs->head_len += (size_t)snprintf(cs->head + cs->head_len, sizeof(cs->head) - cs->head_len,
                                     "%.*s: %.*s\n", (int)namelen, name, (int)valuelen, value);
    return 0;
}

static int c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *arg)
{
    struct client *cl = arg;
    struct cstream *cs = nghttp2_session_get_stream_user_data(ng, id);
    if (!cs)
        return 0;
    if (!cs->first_data_seq)
        cs->first_data_seq = ++cl->seq;
    cs->body_total += len;
    if (cs->body_len + len > sizeof(cs->body))
        len = sizeof(cs->body) - cs->body_len;
    memcpy(cs->body + cs->body_len, data, len);
    cs->body_len += len;
    return 0;
}

static int c_on_frame(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct client *cl = arg;
    struct cstream *cs;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        cl->goaway = 1;
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        cs = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (cs) {
            cs->ended = 1;
            cs->end_seq = ++cl->seq;
        }
    }
    return 0;
}

static int c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
    struct cstream *cs = nghttp2_session_get_stream_user_data(ng, id);
    if (cs) {
        cs->closed = 1;
        cs->rst = code;
    }
    return 0;
}

static ssize_t c_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct cstream *cs = src->ptr;
    size_t n = cs->req_body_len - cs->req_body_off;
    if (n > len)
        n = len;
    memcpy(buf, cs->req_body + cs->req_body_off, n);
    cs->req_body_off += n;
    if (cs->req_body_off == cs->req_body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* window 0: defaults; > 0: the client's per-stream window, never reopened; < 0: the largest
 * windows, for the stream and the connection, and a small socket receive buffer. */
static void client_open(struct ctx *x, struct client *cl, int32_t window)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[1] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                     window < 0 ? NGHTTP2_MAX_WINDOW_SIZE : (uint32_t)window}};

    memset(cl, 0, sizeof(*cl));
    cl->fd = dial(x, window < 0 ? 4096 : 0);
    ck_assert_int_eq(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
    ck_assert_int_eq(nghttp2_option_new(&opt), 0);
    if (window > 0)
        nghttp2_option_set_no_auto_window_update(opt, 1);
    ck_assert_int_eq(nghttp2_session_client_new2(&cl->ng, cbs, cl, opt), 0);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    ck_assert_int_eq(nghttp2_submit_settings(cl->ng, NGHTTP2_FLAG_NONE, iv, window ? 1 : 0), 0);
    if (window < 0)
        ck_assert_int_eq(nghttp2_session_set_local_window_size(cl->ng, NGHTTP2_FLAG_NONE, 0,
                                                               NGHTTP2_MAX_WINDOW_SIZE),
                         0);
}

static void client_close(struct client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    nghttp2_session_del(cl->ng);
    cl->ng = NULL;
}

#define NVS(n, v)                                                                                  \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

/* Submit a request; extra is NULL or pairs of name, value ending with NULL. */
static struct cstream *request(struct client *cl, const char *method, const char *path,
                               const char *const *extra, const char *body, size_t body_len)
{
    nghttp2_nv nv[200] = {NVS(":method", method), NVS(":scheme", "http"),
                          NVS(":authority", "node.test:8801"), NVS(":path", path)};
    size_t n = 4;
    nghttp2_data_provider prd;
    struct cstream *cs;

    ck_assert_int_lt(cl->n, MAX_OPEN);
    cs = &cl->s[cl->n++];
    for (; extra && extra[0]; extra += 2) {
        ck_assert_uint_lt(n, 200);
        nv[n++] = (nghttp2_nv)NVS(extra[0], extra[1]);
    }
    cs->req_body = body;
    cs->req_body_len = body_len;
    prd.source.ptr = cs;
    prd.read_callback = c_read_body;
    cs->id = nghttp2_submit_request(cl->ng, NULL, nv, n, body ? &prd : NULL, cs);
    ck_assert_int_gt(cs->id, 0);
    return cs;
}

/* Move bytes both ways between the client session and its socket. */
static void client_io(struct client *cl)
{
    uint8_t buf[65536];
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(cl->ng, &data);
        ck_assert_int_ge(n, 0);
        if (n == 0)
            break;
        send_all(cl->fd, data, (size_t)n);
    }
    for (;;) {
        ssize_t r = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            cl->eof = 1;
            break;
        }
        if (r < 0)
            break;
        ck_assert_int_eq(nghttp2_session_mem_recv(cl->ng, buf, (size_t)r), r);
    }
}

static void pump(struct ctx *x, struct client *cl)
{
    struct pollfd pfd = {cl && cl->ng ? cl->fd : -1, POLLIN, 0};
    event_base_loop(x->base, EVLOOP_NONBLOCK);
    poll(&pfd, 1, 1);
    if (cl && cl->ng && !cl->eof)
        client_io(cl);
}

#define AWAIT(x, cl, cond)                                                                         \
    do {                                                                                           \
        uint64_t until_ = mcpgw_now_ms() + TIMEOUT_MS;                                             \
        while (!(cond) && mcpgw_now_ms() < until_)                                                 \
            pump((x), (cl));                                                                       \
    } while (0)

static void pump_for(struct ctx *x, struct client *cl, int ms)
{
    uint64_t until = mcpgw_now_ms() + (uint64_t)ms;
    while (mcpgw_now_ms() < until)
        pump(x, cl);
}

static void finish(struct ctx *x, struct client *cl)
{
    if (cl && cl->ng)
        client_close(cl);
    AWAIT(x, NULL, mcpgw_httpd_conn_count(x->httpd) == 0);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x->httpd), 0);
    mcpgw_httpd_free(x->httpd);
    event_free(x->timer);
    event_base_free(x->base);
}

static int has_field(const struct cstream *cs, const char *line)
{
    return strstr(cs->head, line) != NULL;
}

/* ---- tests ---- */

START_TEST(test_h2_post_with_a_json_body_gets_the_handlers_response)
{
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}";
    static const char *const hdrs[] = {"content-type", "application/json", "x-custom", "v1", NULL};
    struct ctx x;
    struct client cl;
    struct cstream *cs;

    start(&x, 0, NULL);
    client_open(&x, &cl, 0);
    cs = request(&cl, "POST", "/echo?a=1", hdrs, body, sizeof(body) - 1);
    AWAIT(&x, &cl, cs->closed);
    ck_assert(cs->ended);
    ck_assert_uint_eq(cs->rst, 0);
    /* the request as the handler saw it */
    ck_assert_int_eq(x.nreq, 1);
    ck_assert_int_eq(x.seen.method, MCPGW_HTTP_POST);
    ck_assert_str_eq(x.seen.method_str, "POST");
    ck_assert_str_eq(x.seen.path, "/echo");
    ck_assert(x.seen.has_query);
    ck_assert_str_eq(x.seen.query, "a=1");
    ck_assert_str_eq(x.seen.host, "node.test:8801"); /* from :authority */
    ck_assert_str_eq(x.seen.ctype, "application/json");
    ck_assert_str_eq(x.seen.custom, "v1");
    ck_assert_int_eq(x.seen.content_length, -1); /* the client sent none */
    ck_assert_int_eq(x.seen.keep_alive, 1);
    ck_assert_int_eq(x.seen.minor_version, 1);
    ck_assert_uint_eq(x.seen.body_len, sizeof(body) - 1);
    ck_assert_mem_eq(x.seen.body, body, sizeof(body) - 1);
    /* the response */
    ck_assert_int_eq(cs->status, 200);
    ck_assert(has_field(cs, "content-type: application/json\n"));
    ck_assert(has_field(cs, "content-length: 46\n"));
    ck_assert(has_field(cs, "mcp-session-id: s-1\n"));
    ck_assert(has_field(cs, "x-trace: t1\n"));
    ck_assert(!has_field(cs, "connection"));
    ck_assert_uint_eq(cs->body_len, sizeof(body) - 1);
    ck_assert_mem_eq(cs->body, body, sizeof(body) - 1);

    /* a second request on the same connection, with a content-length */
    {
        static const char *const h2[] = {"content-length", "2", NULL};
        cs = request(&cl, "PUT", "/echo", h2, "[]", 2);
        AWAIT(&x, &cl, cs->closed);
        ck_assert_int_eq(cs->status, 200);
        ck_assert_int_eq(x.seen.method, MCPGW_HTTP_PUT);
        ck_assert_int_eq(x.seen.content_length, 2);
        ck_assert(!x.seen.has_query);
        ck_assert_mem_eq(cs->body, "[]", 2);
    }
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 1); /* the connection, no stream */
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_serves_200_interleaved_streamed_responses_on_one_connection)
{
    struct ctx x;
    struct client cl;
    int max_first = 0, min_end = 1 << 30, all_closed = 0;

    start(&x, 1, NULL);
    x.many_target = 200;
    client_open(&x, &cl, 0);
    for (int i = 0; i < 200; i++)
        request(&cl, "GET", "/many", NULL, NULL, 0);
    for (uint64_t until = mcpgw_now_ms() + 2 * TIMEOUT_MS; !all_closed && mcpgw_now_ms() < until;) {
        pump(&x, &cl);
        all_closed = 1;
        for (int i = 0; i < 200; i++)
            all_closed &= cl.s[i].closed;
    }
    ck_assert(all_closed);
    ck_assert_int_eq(x.nreq, 200);
    ck_assert_int_eq(x.many_round, 3);
    for (int i = 0; i < 200; i++) {
        struct cstream *cs = &cl.s[i];
        ck_assert_int_eq(cs->status, 200);
        ck_assert_uint_eq(cs->rst, 0);
        ck_assert(cs->ended);
        ck_assert(has_field(cs, "content-type: text/event-stream\n"));
        ck_assert(has_field(cs, "cache-control: no-cache\n"));
        ck_assert(!has_field(cs, "content-length"));
        ck_assert_uint_eq(cs->body_len, 39);
        ck_assert_mem_eq(cs->body, "data: a\n\ndata: r1\n\ndata: r2\n\ndata: r3\n\n", 39);
        if (cs->first_data_seq > max_first)
            max_first = cs->first_data_seq;
        if (cs->end_seq < min_end)
            min_end = cs->end_seq;
    }
    /* interleaved: every stream had data before any of them ended */
    ck_assert_int_lt(max_first, min_end);
    /* streams the application ended normally get no close callback */
    ck_assert_int_eq(x.closed, 0);
    AWAIT(&x, &cl, mcpgw_httpd_conn_count(x.httpd) == 1);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 1);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_client_reset_fires_the_close_callback_once_and_others_go_on)
{
    struct ctx x;
    struct client cl;
    struct cstream *a, *b, *c;

    start(&x, 2, NULL);
    client_open(&x, &cl, 0);
    a = request(&cl, "GET", "/open", NULL, NULL, 0);
    b = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, a->body_len == 9 && b->body_len == 9);
    ck_assert_int_eq(x.nopen, 2);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 3); /* connection + 2 streams */

    ck_assert_int_eq(nghttp2_submit_rst_stream(cl.ng, NGHTTP2_FLAG_NONE, a->id, NGHTTP2_CANCEL), 0);
    AWAIT(&x, &cl, x.closed == 1);
    ck_assert_int_eq(x.closed, 1);
    ck_assert_ptr_null(x.open[0]);
    ck_assert_ptr_nonnull(x.open[1]);
    AWAIT(&x, &cl, mcpgw_httpd_conn_count(x.httpd) == 2);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 2);

    /* the other stream still carries events, and new requests are served */
    ck_assert_int_eq(mcpgw_http_stream_write(x.open[1], "data: b\n\n", 9), 0);
    c = request(&cl, "POST", "/echo", NULL, "{\"x\":1}", 7);
    AWAIT(&x, &cl, b->body_len == 18 && c->closed);
    ck_assert_mem_eq(b->body, "data: a\n\ndata: b\n\n", 18);
    ck_assert_int_eq(c->status, 200);
    ck_assert_mem_eq(c->body, "{\"x\":1}", 7);
    pump_for(&x, &cl, 30);
    ck_assert_int_eq(x.closed, 1); /* once */
    ck_assert(!b->closed);
    finish(&x, &cl);
    ck_assert_int_eq(x.closed, 2); /* b went with the connection */
}
END_TEST

START_TEST(test_h2_closing_the_socket_fires_every_open_streams_close_callback)
{
    struct ctx x;
    struct client cl;

    start(&x, 3, NULL);
    client_open(&x, &cl, 0);
    for (int i = 0; i < 5; i++)
        request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, x.nopen == 5);
    pump_for(&x, &cl, 30);
    ck_assert_int_eq(x.closed, 0);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 6);

    client_close(&cl);
    AWAIT(&x, NULL, x.closed == 5);
    ck_assert_int_eq(x.closed, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_ptr_null(x.open[i]);
    AWAIT(&x, NULL, mcpgw_httpd_conn_count(x.httpd) == 0);
    pump_for(&x, NULL, 30);
    ck_assert_int_eq(x.closed, 5);
    finish(&x, NULL);
}
END_TEST

START_TEST(test_h2_refuses_a_body_over_max_body_bytes_with_413)
{
    static char big[3000];
    static const char *const with_len[] = {"content-length", "3000", NULL};
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *a, *b, *c;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_body_bytes = 1000;
    start(&x, 4, &cfg);
    memset(big, 'b', sizeof(big));
    client_open(&x, &cl, 0);
    a = request(&cl, "POST", "/echo", with_len, big, sizeof(big)); /* refused on its head */
    b = request(&cl, "POST", "/echo", NULL, big, sizeof(big));     /* refused on its data */
    c = request(&cl, "POST", "/echo", NULL, big, 1000);            /* exactly the limit */
    AWAIT(&x, &cl, a->closed && b->closed && c->closed);
    ck_assert_int_eq(a->status, 413);
    ck_assert_int_eq(b->status, 413);
    ck_assert_int_eq(c->status, 200);
    ck_assert_uint_eq(c->body_len, 1000);
    ck_assert_int_eq(x.nreq, 1);
    ck_assert(!cl.goaway); /* a stream matter, not a connection one */
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_stream_write_over_max_output_bytes_resets_a_stream_whose_window_stays_shut)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *cs, *other;
    char chunk[4096];
    size_t queued = 0;
    int rc = 0;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_output_bytes = 64 * 1024;
    start(&x, 5, &cfg);
    client_open(&x, &cl, 1024); /* 1 KiB per stream, never reopened */
    cs = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, cs->body_len == 9);
    ck_assert_ptr_nonnull(x.open[0]);

    /* The loop runs between writes: bytes leave only as far as the window lets them. */
    memset(chunk, 'x', sizeof(chunk));
    while (rc == 0 && queued < 1024 * 1024) {
        rc = mcpgw_http_stream_write(x.open[0], chunk, sizeof(chunk));
        if (rc == 0) {
            queued += sizeof(chunk);
            pump(&x, &cl);
            if (x.open[0])
                ck_assert_uint_ge(mcpgw_http_conn_pending_output(x.open[0]), queued - 1024);
        }
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_ge(queued, cfg.max_output_bytes - sizeof(chunk));
    ck_assert_uint_le(queued, cfg.max_output_bytes + 2 * sizeof(chunk));
    ck_assert_int_eq(x.closed, 1);
    ck_assert_ptr_null(x.open[0]);
    ck_assert_uint_le(cs->body_len, 1024);
    /* the peer sees the stream reset, the connection goes on */
    AWAIT(&x, &cl, cs->closed);
    ck_assert_uint_eq(cs->rst, NGHTTP2_INTERNAL_ERROR);
    other = request(&cl, "GET", "/echo", NULL, NULL, 0);
    AWAIT(&x, &cl, other->closed);
    ck_assert_int_eq(other->status, 200);
    ck_assert_int_eq(x.closed, 1);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_and_http11_share_the_listener)
{
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
    struct ctx x;
    struct client cl;
    struct cstream *cs;
    char buf[2048];
    size_t got = 0;
    int fd;

    start(&x, 6, NULL);
    client_open(&x, &cl, 0);
    cs = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, cs->body_len == 9);

    /* "POST" starts like the preface ("PRI ..."): the server must still see HTTP/1.1 */
    fd = dial(&x, 0);
    send_all(fd, req, sizeof(req) - 1);
    for (uint64_t until = mcpgw_now_ms() + TIMEOUT_MS;
         mcpgw_now_ms() < until && !strstr(buf, "\r\n\r\n{}");) {
        ssize_t r;
        pump(&x, &cl);
        r = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        buf[got] = '\0';
    }
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Connection: keep-alive\r\n")); /* as given, in HTTP/1.1 */
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\n{}"));
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 3);
    close(fd);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_preface_arriving_byte_by_byte_still_selects_h2)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct ctx x;
    struct client cl;
    struct cstream *cs;
    const uint8_t *data;
    ssize_t n;

    start(&x, 7, NULL);
    client_open(&x, &cl, 0);
    /* the session's first output starts with the preface: send that part one byte at a time */
    n = nghttp2_session_mem_send(cl.ng, &data);
    ck_assert_int_ge(n, 24);
    ck_assert_mem_eq(data, preface, 24);
    {
        uint8_t *copy = malloc((size_t)n);
        memcpy(copy, data, (size_t)n);
        for (int i = 0; i < 24; i++) {
            send_all(cl.fd, copy + i, 1);
            pump_for(&x, NULL, 3);
        }
        send_all(cl.fd, copy + 24, (size_t)n - 24);
        free(copy);
    }
    cs = request(&cl, "GET", "/echo", NULL, NULL, 0);
    AWAIT(&x, &cl, cs->closed);
    ck_assert_int_eq(cs->status, 200);
    ck_assert_mem_eq(cs->body, "{}", 2);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_counts_streams_against_max_conns_and_refuses_with_503)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *a, *b, *c;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_conns = 3;
    start(&x, 8, &cfg);
    client_open(&x, &cl, 0);
    a = request(&cl, "GET", "/open", NULL, NULL, 0);
    b = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, a->body_len == 9 && b->body_len == 9);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 3);
    c = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, c->closed);
    ck_assert_int_eq(c->status, 503);
    ck_assert(has_field(c, "retry-after: 1\n"));
    ck_assert_int_eq(x.nreq, 2);
    AWAIT(&x, &cl, mcpgw_httpd_conn_count(x.httpd) == 3);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 3);

    /* a freed slot is usable again */
    nghttp2_submit_rst_stream(cl.ng, NGHTTP2_FLAG_NONE, a->id, NGHTTP2_CANCEL);
    AWAIT(&x, &cl, x.closed == 1);
    c = request(&cl, "GET", "/echo", NULL, NULL, 0);
    AWAIT(&x, &cl, c->closed);
    ck_assert_int_eq(c->status, 200);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_refuses_too_many_or_too_large_header_fields_with_431)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *a, *b, *ok;
    const char *many[2 * 70 + 1];
    char names[70][8], bigval[1500];
    const char *big[] = {"x-big", bigval, NULL};

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_head_bytes = 1024;
    start(&x, 9, &cfg);
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof(names[i]), "x-h%d", i);
        many[2 * i] = names[i];
        many[2 * i + 1] = "v";
    }
    many[2 * 65] = NULL;
    memset(bigval, 'v', sizeof(bigval) - 1);
    bigval[sizeof(bigval) - 1] = '\0';
    client_open(&x, &cl, 0);
    a = request(&cl, "GET", "/echo", many, NULL, 0);
    b = request(&cl, "GET", "/echo", big, NULL, 0);
    many[2 * 63] = NULL; /* 63 fields + host from :authority = 64: accepted */
    ok = request(&cl, "GET", "/echo", many, NULL, 0);
    AWAIT(&x, &cl, a->closed && b->closed && ok->closed);
    ck_assert_int_eq(a->status, 431);
    ck_assert_int_eq(b->status, 431);
    ck_assert_int_eq(ok->status, 200);
    ck_assert_int_eq(x.nreq, 1);
    ck_assert_int_eq(x.seen.nheaders, 64);
    ck_assert_str_eq(x.seen.host, "node.test:8801");
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_close_inside_the_handler_resets_and_calls_back_after_it)
{
    struct ctx x;
    struct client cl;
    struct cstream *cs;

    start(&x, 10, NULL);
    client_open(&x, &cl, 0);
    cs = request(&cl, "POST", "/close", NULL, "{}", 2);
    AWAIT(&x, &cl, cs->closed);
    ck_assert_uint_eq(cs->rst, NGHTTP2_INTERNAL_ERROR);
    ck_assert_int_eq(cs->status, 0); /* no response started */
    ck_assert_int_eq(x.closed, 1);
    ck_assert(!x.closed_in_handler);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_idle_connection_gets_goaway_and_is_closed)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *cs;
    uint64_t t0;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.idle_timeout_ms = 300;
    start(&x, 11, &cfg);
    client_open(&x, &cl, 0);
    cs = request(&cl, "GET", "/echo", NULL, NULL, 0);
    AWAIT(&x, &cl, cs->closed);
    ck_assert_int_eq(cs->status, 200);
    t0 = mcpgw_now_ms();
    AWAIT(&x, &cl, cl.eof);
    ck_assert(cl.goaway);
    ck_assert(cl.eof);
    ck_assert_uint_ge(mcpgw_now_ms() - t0, 250);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 0);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_an_open_stream_keeps_the_connection_from_idling_out)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *cs;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.idle_timeout_ms = 200;
    start(&x, 12, &cfg);
    client_open(&x, &cl, 0);
    cs = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, cs->body_len == 9);
    pump_for(&x, &cl, 600);
    ck_assert(!cl.goaway);
    ck_assert(!cs->closed);
    ck_assert_int_eq(x.closed, 0);
    finish(&x, &cl);
    ck_assert_int_eq(x.closed, 1);
}
END_TEST

START_TEST(test_h2_server_free_fires_open_streams_close_callbacks)
{
    struct ctx x;
    struct client cl;

    start(&x, 13, NULL);
    client_open(&x, &cl, 0);
    for (int i = 0; i < 3; i++)
        request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, x.nopen == 3);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 4);
    mcpgw_httpd_free(x.httpd);
    ck_assert_int_eq(x.closed, 3);
    client_close(&cl);
    event_free(x.timer);
    event_base_free(x.base);
}
END_TEST

START_TEST(test_h2_protocol_error_closes_the_connection_and_its_streams)
{
    /* a DATA frame on stream 0 is a connection error (RFC 9113 6.1) */
    static const uint8_t bad[] = {0, 0, 1, NGHTTP2_DATA, 0, 0, 0, 0, 0, 'x'};
    struct ctx x;
    struct client cl;

    start(&x, 14, NULL);
    client_open(&x, &cl, 0);
    request(&cl, "GET", "/open", NULL, NULL, 0);
    request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, x.nopen == 2 && cl.s[1].body_len == 9);
    send_all(cl.fd, bad, sizeof(bad));
    AWAIT(&x, NULL, x.closed == 2);
    ck_assert_int_eq(x.closed, 2);
    AWAIT(&x, &cl, cl.eof);
    ck_assert(cl.eof);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 0);
    finish(&x, &cl);
}
END_TEST

START_TEST(test_h2_keeps_output_in_the_stream_while_the_socket_buffer_is_full)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct client cl;
    struct cstream *cs;
    static char chunk[64 * 1024];
    size_t total = 4 * 1024 * 1024, pending;
    int small = 4096;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_output_bytes = 64 * 1024 * 1024;
    start(&x, 15, &cfg);
    client_open(&x, &cl, -1); /* flow control never limits; only the socket does */
    cs = request(&cl, "GET", "/open", NULL, NULL, 0);
    AWAIT(&x, &cl, cs->body_len == 9);
    /* small kernel buffers on both ends, so what is not sent stays in user space */
    ck_assert_int_eq(
        setsockopt(mcpgw_http_conn_fd(x.open[0]), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);

    /* The client does not read: the server frames at most ~1 MiB into the socket buffer and
     * keeps the rest in the stream, where max_output_bytes can see it. */
    memset(chunk, 'y', sizeof(chunk));
    for (size_t done = 0; done < total; done += sizeof(chunk)) {
        ck_assert_int_eq(mcpgw_http_stream_write(x.open[0], chunk, sizeof(chunk)), 0);
        for (int i = 0; i < 3; i++)
            event_base_loop(x.base, EVLOOP_NONBLOCK);
    }
    pump_for(&x, NULL, 50);
    pending = mcpgw_http_conn_pending_output(x.open[0]);
    ck_assert_msg(pending >= total - 1024 * 1024 - 256 * 1024, "only %zu bytes left pending",
                  pending);

    /* once the client reads, everything arrives and the stream ends normally */
    mcpgw_http_conn_set_close_cb(x.open[0], NULL, NULL);
    mcpgw_http_stream_end(x.open[0]);
    AWAIT(&x, &cl, cs->closed);
    ck_assert(cs->ended);
    ck_assert_uint_eq(cs->rst, 0);
    ck_assert_uint_eq(cs->body_total, 9 + total);
    finish(&x, &cl);
}
END_TEST

static Suite *h2_suite(void)
{
    Suite *s = suite_create("httpd_h2");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_h2_post_with_a_json_body_gets_the_handlers_response);
    tcase_add_test(tc, test_h2_serves_200_interleaved_streamed_responses_on_one_connection);
    tcase_add_test(tc, test_h2_client_reset_fires_the_close_callback_once_and_others_go_on);
    tcase_add_test(tc, test_h2_closing_the_socket_fires_every_open_streams_close_callback);
    tcase_add_test(tc, test_h2_refuses_a_body_over_max_body_bytes_with_413);
    tcase_add_test(
        tc, test_h2_stream_write_over_max_output_bytes_resets_a_stream_whose_window_stays_shut);
    tcase_add_test(tc, test_h2_and_http11_share_the_listener);
    tcase_add_test(tc, test_h2_preface_arriving_byte_by_byte_still_selects_h2);
    tcase_add_test(tc, test_h2_counts_streams_against_max_conns_and_refuses_with_503);
    tcase_add_test(tc, test_h2_refuses_too_many_or_too_large_header_fields_with_431);
    tcase_add_test(tc, test_h2_close_inside_the_handler_resets_and_calls_back_after_it);
    tcase_add_test(tc, test_h2_idle_connection_gets_goaway_and_is_closed);
    tcase_add_test(tc, test_h2_an_open_stream_keeps_the_connection_from_idling_out);
    tcase_add_test(tc, test_h2_server_free_fires_open_streams_close_callbacks);
    tcase_add_test(tc, test_h2_protocol_error_closes_the_connection_and_its_streams);
    tcase_add_test(tc, test_h2_keeps_output_in_the_stream_while_the_socket_buffer_is_full);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(h2_suite());
    int failed;
    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
