/* test_httpd.c - HTTP/1.1 server limits and framing over real loopback sockets.
 *
 * Each test runs a server and plain client sockets in one process and one thread: the test
 * writes with blocking send() and then pumps the event loop (EVLOOP_NONBLOCK) while reading its
 * client sockets without blocking. Ports 18450-18473 (in the node unit-test range 18400-18499;
 * 42-gossip-soak.sh takes 18400-18404); 18474-18475 for the answer written straight to the socket
 * and the read past 4 KiB. */
#include "common/httpd.h"

#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT_BASE  18450
#define TIMEOUT_MS 3000

enum mode {
    ANSWER,      /* respond at once with "<path>" */
    DEFER,       /* respond from a timer, 30 ms later */
    STREAM,      /* begin a chunked stream, write one event, end it from a timer */
    STREAM_OPEN, /* begin a stream with a close callback and leave it open (in pending) */
    BIG_ANSWER,  /* respond with 16 MiB of body */
    ANSWER_LEN,  /* respond at once with the body's length, keeping no copy of the body */
    MID_ANSWER   /* "/big": respond with MID_LEN bytes of pattern; others: as ANSWER */
};

#define MID_LEN                                                                                    \
    60000 /* under the size httpd writes straight to the socket, over a small rcvbuf               \
           */

static char mid_byte(size_t i)
{
    return (char)('a' + i % 23);
}

struct seen {
    char path[64], query[64];
    int has_query;
    char body[2048];
    size_t body_len;
};

struct ctx {
    struct event_base *base;
    struct mcpgw_httpd *httpd;
    int port;
    enum mode mode;
    int nreq;
    struct seen seen[8];
    struct mcpgw_http_conn *pending; /* DEFER / STREAM: the connection answered from the timer */
    char pending_path[64];
    int overlapped; /* the handler ran while an earlier request was unanswered */
    struct event *timer;
    int closed;              /* close callback calls */
    int keepalive, keepidle; /* SO_KEEPALIVE and TCP_KEEPIDLE of the last request's socket */
};

static void answer(struct mcpgw_http_conn *c, const char *path)
{
    mcpgw_http_respond(c, 200, "text/plain", NULL, path, strlen(path));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ctx *x = arg;
    struct mcpgw_http_conn *c = x->pending;
    x->pending = NULL;
    if (x->mode == DEFER) {
        answer(c, x->pending_path);
    } else {
        ck_assert_int_eq(mcpgw_http_stream_write(c, "data: bb\n\n", 10), 0);
        mcpgw_http_stream_end(c);
    }
}

static void on_close(struct mcpgw_http_conn *c, void *arg)
{
    struct ctx *x = arg;
    x->closed++;
    x->pending = NULL;
}

static void handler(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct ctx *x = arg;
    struct seen *s = &x->seen[x->nreq % 8];
    struct timeval tv = {0, 30000};

    socklen_t l = sizeof(int);
    if (x->pending)
        x->overlapped = 1;
    x->nreq++;
    getsockopt(mcpgw_http_conn_fd(c), SOL_SOCKET, SO_KEEPALIVE, &x->keepalive, &l);
    getsockopt(mcpgw_http_conn_fd(c), IPPROTO_TCP, TCP_KEEPIDLE, &x->keepidle, &l);
    if (x->mode == ANSWER_LEN) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", req->body_len);
        answer(c, len);
        return;
    }
    ck_assert_uint_lt(req->path_len, sizeof(s->path));
    memcpy(s->path, req->path, req->path_len);
    s->path[req->path_len] = '\0';
    s->has_query = req->query != NULL;
    if (req->query) {
        ck_assert_uint_lt(req->query_len, sizeof(s->query));
        memcpy(s->query, req->query, req->query_len);
        s->query[req->query_len] = '\0';
    }
    ck_assert_uint_le(req->body_len, sizeof(s->body));
    memcpy(s->body, req->body, req->body_len);
    s->body_len = req->body_len;

    switch (x->mode) {
    case ANSWER:
    case ANSWER_LEN: /* answered above */
        answer(c, s->path);
        break;
    case MID_ANSWER:
        if (strcmp(s->path, "/big") == 0) {
            int small = 4096; /* the socket takes only part of it at once */
            char *body = malloc(MID_LEN);
            setsockopt(mcpgw_http_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
            for (size_t i = 0; i < MID_LEN; i++)
                body[i] = mid_byte(i);
            mcpgw_http_respond(c, 200, "text/plain", NULL, body, MID_LEN);
            free(body);
        } else {
            answer(c, s->path);
        }
        break;
    case DEFER:
        x->pending = c;
        snprintf(x->pending_path, sizeof(x->pending_path), "%s", s->path);
        evtimer_add(x->timer, &tv);
        break;
    case STREAM:
        mcpgw_http_stream_begin(c, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
        ck_assert_int_eq(mcpgw_http_stream_write(c, "data: a\n\n", 9), 0);
        ck_assert_int_eq(mcpgw_http_stream_write(c, "", 0), 0); /* adds no empty chunk */
        x->pending = c;
        evtimer_add(x->timer, &tv);
        break;
    case BIG_ANSWER: {
        size_t n = 16 * 1024 * 1024;
        char *body = calloc(1, n);
        mcpgw_http_respond(c, 200, "application/octet-stream", NULL, body, n);
        free(body);
        break;
    }
    case STREAM_OPEN:
        mcpgw_http_stream_begin(c, 200, "text/event-stream", NULL);
        mcpgw_http_conn_set_close_cb(c, on_close, x);
        ck_assert_int_eq(mcpgw_http_stream_write(c, "data: a\n\n", 9), 0);
        x->pending = c;
        break;
    }
}

/* Start a server on 127.0.0.1:(PORT_BASE + port_off); cfg NULL means the defaults. */
static void start(struct ctx *x, int port_off, const struct mcpgw_httpd_config *cfg, enum mode m)
{
    struct mcpgw_httpd_config def;
    char addr[64], err[256] = "";
    memset(x, 0, sizeof(*x));
    if (!cfg) {
        mcpgw_httpd_config_defaults(&def);
        cfg = &def;
    }
    x->mode = m;
    x->port = PORT_BASE + port_off;
    x->base = event_base_new();
    x->timer = evtimer_new(x->base, on_timer, x);
    x->httpd = mcpgw_httpd_new(x->base, cfg, handler, x);
    ck_assert_ptr_nonnull(x->httpd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", x->port);
    ck_assert_msg(mcpgw_httpd_listen(x->httpd, addr, err, sizeof(err)) == 0, "listen: %s", err);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One turn of the server loop, then wait briefly for client-side readiness. */
static void pump(struct ctx *x, int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    event_base_loop(x->base, EVLOOP_NONBLOCK);
    poll(&pfd, fd >= 0 ? 1 : 0, 2);
}

static void pump_for(struct ctx *x, int ms)
{
    uint64_t until = now_ms() + (uint64_t)ms;
    while (now_ms() < until)
        pump(x, -1);
}

static int dial(struct ctx *x)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)x->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* A client whose small receive buffer makes a big response back up into the server. */
static int dial_small_rcvbuf(struct ctx *x)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)x->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        ck_assert_int_gt(w, 0);
        s += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* ---- reading responses ---- */

struct resp {
    int status;
    char head[1024];
    char body[2048]; /* decoded */
    size_t body_len;
    char raw_body[2048]; /* as sent (chunk framing included) */
    size_t raw_body_len;
    int chunked;
};

struct inbox {
    char buf[16384];
    size_t len;
    int eof;
};

static void collect_chunk(void *arg, const char *data, size_t len)
{
    struct resp *r = arg;
    ck_assert_uint_le(r->body_len + len, sizeof(r->body));
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
}

/* Split the bytes received so far into complete responses; returns how many. */
static int parse_responses(const struct inbox *in, struct resp *out, int max)
{
    size_t off = 0;
    int n = 0;
    while (n < max) {
        struct mcpgw_http_head h;
        struct resp *r = &out[n];
        size_t hl = mcpgw_http_head_end(in->buf + off, in->len - off);
        if (!hl)
            break;
        ck_assert_int_eq(mcpgw_http_parse_head(in->buf + off, hl, 1, &h, NULL), MCPGW_HTTP_OK);
        memset(r, 0, sizeof(*r));
        r->status = h.status;
        ck_assert_uint_lt(hl, sizeof(r->head));
        memcpy(r->head, in->buf + off, hl);
        off += hl;
        if (h.chunked) {
            struct mcpgw_chunked d = {0};
            ssize_t used = mcpgw_chunked_feed(&d, in->buf + off, in->len - off, collect_chunk, r);
            ck_assert_int_ge(used, 0);
            if (!d.done)
                break;
            r->chunked = 1;
            memcpy(r->raw_body, in->buf + off, (size_t)used);
            r->raw_body_len = (size_t)used;
            off += (size_t)used;
        } else {
            size_t cl = h.content_length > 0 ? (size_t)h.content_length : 0;
            if (in->len - off < cl)
                break;
            memcpy(r->body, in->buf + off, cl);
            r->body_len = cl;
            memcpy(r->raw_body, in->buf + off, cl);
            r->raw_body_len = cl;
            off += cl;
        }
        n++;
    }
    return n;
}

/* Pump the loop and read fd until `want` complete responses arrived (want < 0: until the peer
 * closes). Returns the number of complete responses. */
static int await(struct ctx *x, int fd, struct inbox *in, struct resp *out, int want)
{
    struct resp scratch[8];
    uint64_t deadline = now_ms() + TIMEOUT_MS;
    int n = 0;
    if (!out)
        out = scratch;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (now_ms() < deadline) {
        ssize_t r;
        pump(x, fd);
        r = recv(fd, in->buf + in->len, sizeof(in->buf) - 1 - in->len, 0);
        if (r > 0) {
            in->len += (size_t)r;
            in->buf[in->len] = '\0';
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            in->eof = 1;
        }
        n = parse_responses(in, out, 8);
        if (in->eof || (want >= 0 && n >= want))
            break;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return n;
}

/* Close the client sockets and let the server notice; no connection may be left behind. */
static void finish(struct ctx *x, const int *fds, int nfds)
{
    uint64_t deadline = now_ms() + TIMEOUT_MS;
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    while (mcpgw_httpd_conn_count(x->httpd) && now_ms() < deadline)
        pump(x, -1);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x->httpd), 0);
    mcpgw_httpd_free(x->httpd);
    event_free(x->timer);
    event_base_free(x->base);
}

static int has_header(const struct resp *r, const char *line)
{
    return strstr(r->head, line) != NULL;
}

/* ---- tests ---- */

START_TEST(test_httpd_hands_request_to_handler_with_path_query_and_body_split)
{
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 0, NULL, ANSWER);
    fd = dial(&x);
    send_str(fd, "POST /mcp/x?a=1&b=2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    ck_assert_int_eq(x.nreq, 1);
    ck_assert_str_eq(x.seen[0].path, "/mcp/x");
    ck_assert(x.seen[0].has_query);
    ck_assert_str_eq(x.seen[0].query, "a=1&b=2");
    ck_assert_uint_eq(x.seen[0].body_len, 5);
    ck_assert_mem_eq(x.seen[0].body, "hello", 5);
    ck_assert_int_eq(r[0].status, 200);
    ck_assert_uint_eq(r[0].body_len, 6);
    ck_assert_mem_eq(r[0].body, "/mcp/x", 6);

    send_str(fd, "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 2), 2);
    ck_assert_str_eq(x.seen[1].path, "/plain");
    ck_assert(!x.seen[1].has_query);
    ck_assert_uint_eq(x.seen[1].body_len, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_serves_two_requests_on_one_keep_alive_connection)
{
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 1, NULL, ANSWER);
    fd = dial(&x);
    send_str(fd, "GET /one HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    ck_assert(!has_header(&r[0], "Connection: close"));
    send_str(fd, "GET /two HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 2), 2);
    ck_assert(!in.eof);
    ck_assert_int_eq(x.nreq, 2);
    ck_assert_mem_eq(r[0].body, "/one", 4);
    ck_assert_mem_eq(r[1].body, "/two", 4);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 1);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_closes_after_response_when_client_asks)
{
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 2, NULL, ANSWER);
    fd = dial(&x);
    send_str(fd, "GET /bye HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    ck_assert(in.eof);
    ck_assert(has_header(&r[0], "Connection: close\r\n"));
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_answers_pipelined_requests_in_order)
{
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 3, NULL, ANSWER);
    fd = dial(&x);
    send_str(fd, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                 "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                 "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 3), 3);
    ck_assert_mem_eq(r[0].body, "/a", 2);
    ck_assert_mem_eq(r[1].body, "/b", 2);
    ck_assert_mem_eq(r[2].body, "/c", 2);
    ck_assert_uint_eq(x.seen[1].body_len, 3);
    ck_assert_mem_eq(x.seen[1].body, "xyz", 3);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_holds_pipelined_requests_until_the_deferred_answer)
{
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 4, NULL, DEFER);
    fd = dial(&x);
    send_str(fd, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 3), 3);
    ck_assert_int_eq(x.nreq, 3);
    ck_assert(!x.overlapped);
    ck_assert_mem_eq(r[0].body, "/a", 2);
    ck_assert_mem_eq(r[1].body, "/b", 2);
    ck_assert_mem_eq(r[2].body, "/c", 2);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_refuses_head_over_max_head_bytes_with_431)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    char big[2048];
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_head_bytes = 1024;
    start(&x, 5, &cfg, ANSWER);
    fd = dial(&x);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
    send_all(fd, big, sizeof(big));
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    ck_assert_int_eq(r[0].status, 431);
    ck_assert(in.eof);
    ck_assert_int_eq(x.nreq, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_refuses_unterminated_head_over_max_head_bytes_with_431)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    char big[1500];
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_head_bytes = 1024;
    start(&x, 6, &cfg, ANSWER);
    fd = dial(&x);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    send_all(fd, big, sizeof(big)); /* no blank line ever */
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    ck_assert_int_eq(r[0].status, 431);
    ck_assert_int_eq(x.nreq, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_accepts_body_of_exactly_max_body_bytes)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    char body[1000];
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_body_bytes = sizeof(body);
    start(&x, 7, &cfg, ANSWER);
    fd = dial(&x);
    memset(body, 'b', sizeof(body));
    send_str(fd, "POST /full HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
    send_all(fd, body, sizeof(body));
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    ck_assert_int_eq(r[0].status, 200);
    ck_assert_uint_eq(x.seen[0].body_len, sizeof(body));
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_refuses_content_length_over_max_body_bytes_with_413)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_body_bytes = 1000;
    start(&x, 8, &cfg, ANSWER);
    fd = dial(&x);
    send_str(fd, "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    ck_assert_int_eq(r[0].status, 413);
    ck_assert(in.eof);
    ck_assert_int_eq(x.nreq, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_decodes_a_chunked_body_arriving_in_pieces)
{
    static const char *const pieces[] = {
        "POST /ch HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhel",
        "lo\r\n6;ext=1\r\n wor", "ld\r\n0\r",
        "\nTrailer: x\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"};
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 9, NULL, ANSWER);
    fd = dial(&x);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        send_str(fd, pieces[i]);
        pump_for(&x, 20);
        if (i + 1 < sizeof(pieces) / sizeof(pieces[0]))
            ck_assert_int_eq(x.nreq, 0); /* nothing before the body is complete */
    }
    ck_assert_int_eq(await(&x, fd, &in, r, 2), 2);
    ck_assert_int_eq(x.nreq, 2);
    ck_assert_uint_eq(x.seen[0].body_len, 11);
    ck_assert_mem_eq(x.seen[0].body, "hello world", 11);
    ck_assert_str_eq(x.seen[0].path, "/ch");
    /* the request pipelined right behind the chunked body is served next */
    ck_assert_mem_eq(r[0].body, "/ch", 3);
    ck_assert_mem_eq(r[1].body, "/next", 5);
    ck_assert_uint_eq(x.seen[1].body_len, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_refuses_chunked_body_over_max_body_bytes_with_413)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_body_bytes = 8;
    start(&x, 10, &cfg, ANSWER);
    fd = dial(&x);
    send_str(fd, "POST /ch HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    ck_assert_int_eq(r[0].status, 413);
    ck_assert_int_eq(x.nreq, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_refuses_content_length_with_transfer_encoding_with_400)
{
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 11, NULL, ANSWER);
    fd = dial(&x);
    send_str(fd, "POST /smuggle HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    ck_assert_int_eq(r[0].status, 400);
    ck_assert(has_header(&r[0], "Connection: close\r\n"));
    ck_assert(in.eof);
    ck_assert_int_eq(x.nreq, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_times_out_an_incomplete_head_with_408)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    uint64_t t0, waited;
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.head_timeout_ms = 300;
    start(&x, 12, &cfg, ANSWER);
    fd = dial(&x);
    t0 = now_ms();
    send_str(fd, "GET /slow HTTP/1.1\r\nHost: h\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1);
    waited = now_ms() - t0;
    ck_assert_int_eq(r[0].status, 408);
    ck_assert(in.eof);
    ck_assert_uint_ge(waited, 250);
    ck_assert_uint_lt(waited, 2000);
    ck_assert_int_eq(x.nreq, 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_refuses_connections_over_max_conns_with_503_and_retry_after)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in3 = {0}, in1 = {0};
    struct resp r[8];
    uint64_t deadline;
    int fds[3];

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_conns = 2;
    start(&x, 13, &cfg, ANSWER);
    fds[0] = dial(&x);
    fds[1] = dial(&x);
    deadline = now_ms() + TIMEOUT_MS;
    while (mcpgw_httpd_conn_count(x.httpd) < 2 && now_ms() < deadline)
        pump(&x, -1);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 2);

    fds[2] = dial(&x);
    ck_assert_int_eq(await(&x, fds[2], &in3, r, -1), 1);
    ck_assert_int_eq(r[0].status, 503);
    ck_assert(has_header(&r[0], "Retry-After: "));
    ck_assert(in3.eof);

    /* the connections within the limit still work */
    send_str(fds[0], "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fds[0], &in1, r, 1), 1);
    ck_assert_int_eq(r[0].status, 200);
    finish(&x, fds, 3);
}
END_TEST

/* A reload raises the body limit: a connection accepted under the old one takes a body larger
 * than the read bound it was given at accept (it would stall there until the head timeout). */
START_TEST(test_httpd_set_limits_lets_a_larger_body_in_on_an_existing_connection)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    size_t n = 300 * 1024;
    char *body = malloc(n), head[128];
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_body_bytes = 1000;
    start(&x, 21, &cfg, ANSWER_LEN);
    fd = dial(&x);
    send_str(fd, "GET /warm HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    mcpgw_httpd_set_limits(x.httpd, cfg.max_head_bytes, 1024 * 1024, cfg.max_conns);
    memset(body, 'b', n);
    snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", n);
    send_str(fd, head);
    send_all(fd, body, n);
    free(body);
    ck_assert_int_eq(await(&x, fd, &in, r, 2), 2);
    ck_assert_int_eq(r[1].status, 200);
    ck_assert_str_eq(r[1].body, "307200");
    finish(&x, &fd, 1);
}
END_TEST

/* Lower limits hold for the next request on an existing connection and for new connections;
 * connections already open are not closed. */
START_TEST(test_httpd_set_limits_lowers_body_and_connection_limits_without_closing)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in0 = {0}, in1 = {0}, in2 = {0};
    struct resp r[8];
    uint64_t deadline;
    int fds[3];

    mcpgw_httpd_config_defaults(&cfg);
    start(&x, 22, &cfg, ANSWER_LEN);
    fds[0] = dial(&x);
    fds[1] = dial(&x);
    deadline = now_ms() + TIMEOUT_MS;
    while (mcpgw_httpd_conn_count(x.httpd) < 2 && now_ms() < deadline)
        pump(&x, -1);
    mcpgw_httpd_set_limits(x.httpd, cfg.max_head_bytes, 10, 1);
    send_str(fds[0], "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789");
    ck_assert_int_eq(await(&x, fds[0], &in0, r, 1), 1);
    ck_assert_int_eq(r[0].status, 200);
    send_str(fds[1], "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n0123456789!");
    ck_assert_int_eq(await(&x, fds[1], &in1, r, -1), 1);
    ck_assert_int_eq(r[0].status, 413);
    fds[2] = dial(&x);
    ck_assert_int_eq(await(&x, fds[2], &in2, r, -1), 1);
    ck_assert_int_eq(r[0].status, 503);
    finish(&x, fds, 3);
}
END_TEST

START_TEST(test_httpd_chunk_encodes_a_streamed_response_and_ends_it)
{
    static const char want[] = "9\r\ndata: a\n\n\r\n"
                               "a\r\ndata: bb\n\n\r\n"
                               "0\r\n\r\n";
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 14, NULL, STREAM);
    fd = dial(&x);
    send_str(fd, "GET /sse HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    ck_assert_int_eq(r[0].status, 200);
    ck_assert(r[0].chunked);
    ck_assert(has_header(&r[0], "Transfer-Encoding: chunked\r\n"));
    ck_assert(has_header(&r[0], "Content-Type: text/event-stream\r\n"));
    ck_assert(has_header(&r[0], "Cache-Control: no-cache\r\n"));
    ck_assert(!has_header(&r[0], "Content-Length"));
    ck_assert_uint_eq(r[0].raw_body_len, sizeof(want) - 1);
    ck_assert_mem_eq(r[0].raw_body, want, sizeof(want) - 1);
    ck_assert_uint_eq(r[0].body_len, 19);
    ck_assert_mem_eq(r[0].body, "data: a\n\ndata: bb\n\n", 19);
    /* nothing after the terminating chunk */
    ck_assert_uint_eq(in.len, strlen(r[0].head) + r[0].raw_body_len);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_fires_close_callback_when_client_leaves_a_stream)
{
    struct ctx x;
    struct inbox in = {0};
    uint64_t deadline;
    int fd;

    start(&x, 15, NULL, STREAM_OPEN);
    fd = dial(&x);
    send_str(fd, "GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
    /* wait for the head and the first event */
    deadline = now_ms() + TIMEOUT_MS;
    while (!strstr(in.buf, "data: a\n\n") && now_ms() < deadline) {
        ssize_t n;
        pump(&x, fd);
        n = recv(fd, in.buf + in.len, sizeof(in.buf) - 1 - in.len, MSG_DONTWAIT);
        if (n > 0)
            in.len += (size_t)n;
        in.buf[in.len] = '\0';
    }
    ck_assert_ptr_nonnull(strstr(in.buf, "data: a\n\n"));
    ck_assert_int_eq(x.closed, 0);
    pump_for(&x, 50);
    ck_assert_int_eq(x.closed, 0); /* an open stream stays open */

    close(fd);
    deadline = now_ms() + TIMEOUT_MS;
    while (!x.closed && now_ms() < deadline)
        pump(&x, -1);
    ck_assert_int_eq(x.closed, 1);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 0);
    pump_for(&x, 50);
    ck_assert_int_eq(x.closed, 1); /* once */
    finish(&x, NULL, 0);
}
END_TEST

START_TEST(test_httpd_finds_a_head_end_split_across_reads)
{
    static const char req[] = "GET /split?q HTTP/1.1\r\nHost: h\r\n\r\n";
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    int fd;

    start(&x, 16, NULL, ANSWER);
    fd = dial(&x);
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        send_all(fd, req + i, 1);
        pump_for(&x, 3);
    }
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    ck_assert_int_eq(x.nreq, 1);
    ck_assert_str_eq(x.seen[0].path, "/split");
    ck_assert_str_eq(x.seen[0].query, "q");
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_closes_an_idle_keep_alive_connection_silently)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    struct resp r[8];
    uint64_t t0;
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.idle_timeout_ms = 300;
    start(&x, 17, &cfg, ANSWER);
    fd = dial(&x);
    send_str(fd, "GET /once HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    t0 = now_ms();
    ck_assert_int_eq(await(&x, fd, &in, r, -1), 1); /* EOF and no second response */
    ck_assert(in.eof);
    ck_assert_uint_ge(now_ms() - t0, 250);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 0);
    finish(&x, &fd, 1);
}
END_TEST

START_TEST(test_httpd_free_closes_an_open_stream_and_fires_its_close_callback)
{
    struct ctx x;
    struct inbox in = {0};
    uint64_t deadline;
    int fd;

    start(&x, 18, NULL, STREAM_OPEN);
    fd = dial(&x);
    send_str(fd, "GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
    deadline = now_ms() + TIMEOUT_MS;
    while (x.nreq == 0 && now_ms() < deadline)
        pump(&x, fd);
    ck_assert_int_eq(x.nreq, 1);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 1);

    mcpgw_httpd_free(x.httpd); /* the contract: every connection closes, callbacks fire */
    ck_assert_int_eq(x.closed, 1);
    /* libevent finalizes freed bufferevents (closing their sockets) from the loop */
    deadline = now_ms() + TIMEOUT_MS;
    while (!in.eof && now_ms() < deadline) {
        ssize_t n;
        pump(&x, fd);
        n = recv(fd, in.buf, sizeof(in.buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            in.eof = 1;
    }
    ck_assert(in.eof);
    close(fd);
    event_free(x.timer);
    event_base_free(x.base);
}
END_TEST

START_TEST(test_httpd_free_releases_a_connection_still_flushing_its_last_response)
{
    /* A response the client does not read stays queued; freeing the server must still release
     * the connection (LeakSanitizer checks this in the ASan build). */
    struct ctx x;
    uint64_t deadline;
    int fd;

    start(&x, 19, NULL, BIG_ANSWER);
    fd = dial_small_rcvbuf(&x);
    send_str(fd, "GET /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    deadline = now_ms() + TIMEOUT_MS;
    while (x.nreq == 0 && now_ms() < deadline)
        pump(&x, -1);
    ck_assert_int_eq(x.nreq, 1);
    pump_for(&x, 50);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 1); /* still flushing */
    mcpgw_httpd_free(x.httpd);
    close(fd);
    event_free(x.timer);
    event_base_free(x.base);
}
END_TEST

START_TEST(test_httpd_drops_a_stream_whose_unsent_output_exceeds_max_output_bytes)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    char chunk[4096];
    size_t queued = 0;
    uint64_t deadline;
    int fd, rc = 0;

    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_output_bytes = 64 * 1024;
    start(&x, 20, &cfg, STREAM_OPEN);
    fd = dial_small_rcvbuf(&x);
    send_str(fd, "GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
    deadline = now_ms() + TIMEOUT_MS;
    while (x.nreq == 0 && now_ms() < deadline)
        pump(&x, -1);
    ck_assert_ptr_nonnull(x.pending);

    /* No loop turns in between: nothing is sent, everything queues. */
    memset(chunk, 'x', sizeof(chunk));
    while (rc == 0 && queued < 1024 * 1024) {
        rc = mcpgw_http_stream_write(x.pending, chunk, sizeof(chunk));
        if (rc == 0)
            queued += sizeof(chunk);
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_ge(queued, cfg.max_output_bytes - sizeof(chunk));
    ck_assert_uint_le(queued, cfg.max_output_bytes + sizeof(chunk));
    ck_assert_int_eq(x.closed, 1);
    ck_assert_ptr_null(x.pending);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 0);
    finish(&x, &fd, 1);
}
END_TEST

/* Issue 20: a client that vanished behind a NAT kept its GET stream (and session) forever;
 * keep-alive probes end such a connection. */
START_TEST(test_httpd_turns_on_keepalive_probes_on_accepted_sockets)
{
    struct mcpgw_httpd_config cfg;
    struct ctx x;
    struct inbox in = {0};
    int fd;

    mcpgw_httpd_config_defaults(&cfg);
    ck_assert_uint_eq(cfg.tcp_keepalive_s, 60);
    cfg.tcp_keepalive_s = 7;
    start(&x, 23, &cfg, ANSWER);
    fd = dial(&x);
    send_str(fd, "GET /ka HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, NULL, 1), 1);
    ck_assert_int_eq(x.keepalive, 1);
    ck_assert_int_eq(x.keepidle, 7);
    finish(&x, &fd, 1);

    cfg.tcp_keepalive_s = 0;
    memset(&in, 0, sizeof(in));
    start(&x, 23, &cfg, ANSWER);
    fd = dial(&x);
    send_str(fd, "GET /ka HTTP/1.1\r\nHost: h\r\n\r\n");
    ck_assert_int_eq(await(&x, fd, &in, NULL, 1), 1);
    ck_assert_int_eq(x.keepalive, 0);
    finish(&x, &fd, 1);
}
END_TEST

/* An answer is written straight to the socket when nothing is queued before it; what the socket
 * does not take must follow intact, and a pipelined answer after it must wait its turn. */
START_TEST(test_httpd_finishes_an_answer_the_socket_took_in_part_before_the_next)
{
    static char buf[MID_LEN + 4096];
    const char *p;
    size_t got = 0;
    uint64_t deadline;
    struct ctx x;
    int fd;

    start(&x, 24, NULL, MID_ANSWER);
    fd = dial_small_rcvbuf(&x);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    send_str(fd, "GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    deadline = now_ms() + TIMEOUT_MS;
    while (now_ms() < deadline && !(got > 4 && memcmp(buf + got - 4, "\r\n/c", 4) == 0)) {
        ssize_t n;
        pump(&x, fd);
        while (got < sizeof(buf) && (n = recv(fd, buf + got, sizeof(buf) - got, 0)) > 0)
            got += (size_t)n;
    }
    ck_assert_int_eq(x.nreq, 2);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "first answer: %.40s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Content-Length: 60000\r\n"));
    p = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(p);
    p += 4;
    ck_assert_uint_ge(got, (size_t)(p - buf) + MID_LEN);
    for (size_t i = 0; i < MID_LEN; i++)
        ck_assert_msg(p[i] == mid_byte(i), "byte %zu of the big answer is wrong", i);
    p += MID_LEN;
    ck_assert_msg(strncmp(p, "HTTP/1.1 200 ", 13) == 0, "second answer: %.40s", p);
    ck_assert_msg(got - (size_t)(p - buf) > 4 && memcmp(buf + got - 2, "/c", 2) == 0,
                  "second answer incomplete");
    finish(&x, &fd, 1);
}
END_TEST

/* libevent 2.1 hands a read callback at most 4 KiB; a request over that must still be handled in
 * the loop turn that finds it complete in the socket, not one turn per 4 KiB. */
START_TEST(test_httpd_handles_a_request_over_4k_in_one_loop_turn)
{
    static char req[12000];
    struct inbox in = {0};
    struct resp r[1];
    uint64_t deadline;
    struct ctx x;
    int fd, hl;

    start(&x, 25, NULL, ANSWER_LEN);
    fd = dial(&x);
    deadline = now_ms() + TIMEOUT_MS;
    while (mcpgw_httpd_conn_count(x.httpd) == 0 && now_ms() < deadline)
        pump(&x, -1);
    ck_assert_uint_eq(mcpgw_httpd_conn_count(x.httpd), 1);
    hl = snprintf(req, sizeof(req), "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n");
    memset(req + hl, 'x', 10000);
    send_all(fd, req, (size_t)hl + 10000); /* over loopback: in the server's socket on return */
    event_base_loop(x.base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* one turn */
    ck_assert_int_eq(x.nreq, 1);
    ck_assert_int_eq(await(&x, fd, &in, r, 1), 1);
    ck_assert_mem_eq(r[0].body, "10000", 5);
    finish(&x, &fd, 1);
}
END_TEST

static Suite *httpd_suite(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_httpd_hands_request_to_handler_with_path_query_and_body_split);
    tcase_add_test(tc, test_httpd_serves_two_requests_on_one_keep_alive_connection);
    tcase_add_test(tc, test_httpd_closes_after_response_when_client_asks);
    tcase_add_test(tc, test_httpd_answers_pipelined_requests_in_order);
    tcase_add_test(tc, test_httpd_finishes_an_answer_the_socket_took_in_part_before_the_next);
    tcase_add_test(tc, test_httpd_handles_a_request_over_4k_in_one_loop_turn);
    tcase_add_test(tc, test_httpd_holds_pipelined_requests_until_the_deferred_answer);
    tcase_add_test(tc, test_httpd_refuses_head_over_max_head_bytes_with_431);
    tcase_add_test(tc, test_httpd_refuses_unterminated_head_over_max_head_bytes_with_431);
    tcase_add_test(tc, test_httpd_accepts_body_of_exactly_max_body_bytes);
    tcase_add_test(tc, test_httpd_refuses_content_length_over_max_body_bytes_with_413);
    tcase_add_test(tc, test_httpd_decodes_a_chunked_body_arriving_in_pieces);
    tcase_add_test(tc, test_httpd_refuses_chunked_body_over_max_body_bytes_with_413);
    tcase_add_test(tc, test_httpd_refuses_content_length_with_transfer_encoding_with_400);
    tcase_add_test(tc, test_httpd_times_out_an_incomplete_head_with_408);
    tcase_add_test(tc, test_httpd_refuses_connections_over_max_conns_with_503_and_retry_after);
    tcase_add_test(tc, test_httpd_set_limits_lets_a_larger_body_in_on_an_existing_connection);
    tcase_add_test(tc, test_httpd_set_limits_lowers_body_and_connection_limits_without_closing);
    tcase_add_test(tc, test_httpd_chunk_encodes_a_streamed_response_and_ends_it);
    tcase_add_test(tc, test_httpd_fires_close_callback_when_client_leaves_a_stream);
    tcase_add_test(tc, test_httpd_finds_a_head_end_split_across_reads);
    tcase_add_test(tc, test_httpd_closes_an_idle_keep_alive_connection_silently);
    tcase_add_test(tc, test_httpd_free_closes_an_open_stream_and_fires_its_close_callback);
    tcase_add_test(tc, test_httpd_free_releases_a_connection_still_flushing_its_last_response);
    tcase_add_test(tc, test_httpd_drops_a_stream_whose_unsent_output_exceeds_max_output_bytes);
    tcase_add_test(tc, test_httpd_turns_on_keepalive_probes_on_accepted_sockets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(httpd_suite());
    int failed;
    signal(SIGPIPE, SIG_IGN); /* a server write to a closed client must not kill the test */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
