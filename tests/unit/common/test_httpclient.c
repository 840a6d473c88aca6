/* test_httpclient.c - the HTTP client against a real mcpgw-node: a JSON answer with its head, an
 * event stream delivered as it comes, cancel from inside a callback, reuse of connections, h2c,
 * refused connections and timeouts; against a bare HTTP/1.1 server in the test (raw_*) what goes
 * on the wire; and against a scripted server (ss_*) that sends its answers piece by piece, each
 * piece read by the client before the next is sent, what the client makes of awkward answers.
 * Every case runs twice: with the built-in HTTP/1.1 client (plain http://) and with libcurl
 * (MCPGW_HC_CURL). Ports 18480-18489 (node unit-test range) and 12000-12009. */
#include "common/httpclient.h"

#include "tests/unit/check-run.h"
#include "tests/unit/upkit.h"

#include <check.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PORT 18480
#define URL  "http://127.0.0.1:18480/mcp"
#define INIT                                                                                       \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"     \
    "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"hc-test\",\"version\":\"1\"}}}"

struct got {
    int heads, bodies, done, cancel_in_head;
    enum mcpgw_hc_err err;
    long status;
    int version;
    long new_conns, head_new_conns;
    char sid[128], ctype[64], xa[16], link[16], why[256], body[65536];
    size_t body_len;
    long first_body_ms, done_ms;
};

static void on_head(void *arg, struct mcpgw_hc_req *r)
{
    struct got *g = arg;
    const char *v;
    g->heads++;
    g->status = mcpgw_hc_req_status(r);
    g->version = mcpgw_hc_req_http_version(r);
    g->head_new_conns = mcpgw_hc_req_new_conns(r);
    if ((v = mcpgw_hc_req_header(r, "mcp-session-id")))
        snprintf(g->sid, sizeof(g->sid), "%s", v);
    if ((v = mcpgw_hc_req_header(r, "Content-Type")))
        snprintf(g->ctype, sizeof(g->ctype), "%s", v);
    if ((v = mcpgw_hc_req_header(r, "x-A")))
        snprintf(g->xa, sizeof(g->xa), "%s", v);
    if ((v = mcpgw_hc_req_header(r, "Link")))
        snprintf(g->link, sizeof(g->link), "%s", v);
    if (g->cancel_in_head) {
        mcpgw_hc_req_cancel(r);
        g->done = 1; /* the test's own "finished" flag: on_done must never fire */
    }
}

static void on_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct got *g = arg;
    if (!g->bodies++)
        g->first_body_ms = upkit_now_ms();
    if (g->body_len + len < sizeof(g->body)) {
        memcpy(g->body + g->body_len, buf, len);
        g->body_len += len;
        g->body[g->body_len] = 0;
    }
}

static void on_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    struct got *g = arg;
    ck_assert_msg(!g->cancel_in_head, "on_done fired after a cancel");
    g->err = err;
    snprintf(g->why, sizeof(g->why), "%s", why);
    g->new_conns = mcpgw_hc_req_new_conns(r);
    g->done_ms = upkit_now_ms();
    g->done = 1;
}

static const struct mcpgw_hc_cbs cbs = {on_head, on_body, on_done};
/* MCPGW_HC_CURL for the libcurl run of the suite, 0 for the built-in client's (see main). */
static int eng;

/* mcpgw_hc_start with this run's engine. */
static struct mcpgw_hc_req *hc_start(struct mcpgw_hc *c, struct mcpgw_hc_opts *o,
                                     const struct mcpgw_hc_cbs *cb, void *arg, char *err,
                                     size_t errlen)
{
    o->flags |= eng;
    return mcpgw_hc_start(c, o, cb, arg, err, errlen);
}
static struct event_base *base;
static struct mcpgw_hc *hc;
static pid_t node;

static void setup(void)
{
    node = upkit_node_start(PORT);
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    ck_assert_ptr_nonnull(hc);
}

static void teardown(void)
{
    mcpgw_hc_free(hc);
    event_base_free(base);
    upkit_node_stop(node);
}

static void post(struct got *g, const char *sid, const char *body, int flags)
{
    char h_sid[160], err[128];
    const char *hdrs[] = {"Content-Type: application/json",
                          "Accept: application/json, text/event-stream",
                          "MCP-Protocol-Version: 2025-11-25", sid ? h_sid : NULL, NULL};
    struct mcpgw_hc_opts o = {.method = "POST",
                              .url = URL,
                              .headers = hdrs,
                              .body = body,
                              .body_len = strlen(body),
                              .timeout_ms = 10000,
                              .flags = flags};
    snprintf(h_sid, sizeof(h_sid), "Mcp-Session-Id: %s", sid ? sid : "");
    ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, g, err, sizeof(err)));
    ck_assert_msg(upkit_run_until(base, &g->done, 15000), "request did not finish");
}

static void initialize(struct got *g, int flags)
{
    post(g, NULL, INIT, flags);
    ck_assert_int_eq(g->err, MCPGW_HC_OK);
    ck_assert_int_eq(g->status, 200);
    ck_assert_msg(g->sid[0], "no Mcp-Session-Id in the answer");
    {
        struct got n = {0};
        post(&n, g->sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", flags);
        ck_assert_msg(n.status == 202, "initialized: status %ld err %d %s", n.status, (int)n.err,
                      n.why);
    }
}

START_TEST(test_hc_posts_and_reads_head_and_json_body)
{
    struct got g = {0};
    setup();
    initialize(&g, 0);
    ck_assert_int_eq(g.heads, 1);
    ck_assert_int_eq(g.version, 1);
    ck_assert_str_eq(g.ctype, "application/json");
    ck_assert_msg(strstr(g.body, "\"protocolVersion\":\"2025-11-25\""), "body: %s", g.body);
    teardown();
}
END_TEST

START_TEST(test_hc_delivers_an_event_stream_before_it_ends)
{
    struct got init = {0}, g = {0};
    setup();
    initialize(&init, 0);
    post(&g, init.sid,
         "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
         "\"test_tool_with_progress\",\"arguments\":{},\"_meta\":{\"progressToken\":\"p1\"}}}",
         0);
    ck_assert_int_eq(g.err, MCPGW_HC_OK);
    ck_assert_str_eq(g.ctype, "text/event-stream");
    ck_assert_msg(strstr(g.body, "notifications/progress") && strstr(g.body, "\"id\":2"),
                  "body: %s", g.body);
    /* the progress events came as separate pieces, before the end of the stream */
    ck_assert_int_ge(g.bodies, 2);
    ck_assert_int_lt(g.first_body_ms, g.done_ms);
    teardown();
}
END_TEST

START_TEST(test_hc_cancel_inside_a_callback_stops_a_stream)
{
    struct got init = {0}, g = {.cancel_in_head = 1}, after = {0};
    char h_sid[160], err[128];
    const char *hdrs[] = {"Accept: text/event-stream", "MCP-Protocol-Version: 2025-11-25", h_sid,
                          NULL};
    struct mcpgw_hc_opts o = {.method = "GET", .url = URL, .headers = hdrs};
    int never = 0;
    setup();
    initialize(&init, 0);
    snprintf(h_sid, sizeof(h_sid), "Mcp-Session-Id: %s", init.sid);
    ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, &g, err, sizeof(err)));
    ck_assert(upkit_run_until(base, &g.done, 10000));
    ck_assert_int_eq(g.status, 200);
    /* the stream is gone: nothing more arrives for it, and the client still works */
    upkit_run_until(base, &never, 200);
    post(&after, init.sid, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", 0);
    ck_assert_int_eq(after.err, MCPGW_HC_OK);
    ck_assert_int_eq(after.status, 200);
    teardown();
}
END_TEST

START_TEST(test_hc_cancel_before_the_loop_runs_fires_nothing)
{
    struct got g = {.cancel_in_head = 1};
    char err[128];
    struct mcpgw_hc_opts o = {.url = "http://127.0.0.1:18480/healthz"};
    struct mcpgw_hc_req *r;
    int never = 0;
    setup();
    r = hc_start(hc, &o, &cbs, &g, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    mcpgw_hc_req_cancel(r);
    upkit_run_until(base, &never, 300);
    ck_assert_int_eq(g.heads, 0);
    teardown();
}
END_TEST

START_TEST(test_hc_reuses_the_connection)
{
    struct got a = {0}, b = {0};
    setup();
    initialize(&a, 0);
    ck_assert_int_eq(a.new_conns, 1);
    post(&b, a.sid, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", 0);
    ck_assert_int_eq(b.err, MCPGW_HC_OK);
    ck_assert_int_eq(b.new_conns, 0);
    teardown();
}
END_TEST

/* Regression: libcurl sized its connection cache by the requests under way, so after a burst
 * it closed all but a few connections and the next burst connected again. */
START_TEST(test_hc_keeps_a_burst_of_connections_for_the_next_burst)
{
    enum { N = 16 };
    struct got init = {0}, g[N];
    char err[128], h_sid[160], body[N][160];
    long first = 0, second = 0;
    setup();
    initialize(&init, 0);
    snprintf(h_sid, sizeof(h_sid), "Mcp-Session-Id: %s", init.sid);
    for (int round = 0; round < 2; round++) {
        const char *hdrs[] = {"Content-Type: application/json",
                              "Accept: application/json, text/event-stream",
                              "MCP-Protocol-Version: 2025-11-25", h_sid, NULL};
        memset(g, 0, sizeof(g));
        /* Calls that overlap (the built-in sleep tool), so each needs a connection of its own. */
        for (int i = 0; i < N; i++) {
            struct mcpgw_hc_opts o = {.method = "POST",
                                      .url = URL,
                                      .headers = hdrs,
                                      .body = body[i],
                                      .timeout_ms = 10000};
            snprintf(body[i], sizeof(body[i]),
                     "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":"
                     "{\"name\":\"sleep\",\"arguments\":{\"ms\":300}}}",
                     100 * round + i + 10);
            o.body_len = strlen(body[i]);
            ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, &g[i], err, sizeof(err)));
        }
        for (int i = 0; i < N; i++) {
            ck_assert_msg(upkit_run_until(base, &g[i].done, 15000), "request did not finish");
            ck_assert_int_eq(g[i].err, MCPGW_HC_OK);
            ck_assert_int_eq(g[i].status, 200);
            *(round ? &second : &first) += g[i].new_conns;
        }
    }
    ck_assert_msg(first > 1, "the first burst shared %ld connection(s): no burst to keep", first);
    ck_assert_msg(second == 0, "the second burst opened %ld new connections", second);
    teardown();
}
END_TEST

/* Opens the session's GET event stream (no whole-request timeout: a stream) into g. */
static struct mcpgw_hc_req *open_stream(struct got *g, const char *sid)
{
    char h_sid[160], err[128];
    const char *hdrs[] = {"Accept: text/event-stream", "MCP-Protocol-Version: 2025-11-25", h_sid,
                          NULL};
    struct mcpgw_hc_opts o = {.method = "GET", .url = URL, .headers = hdrs};
    struct mcpgw_hc_req *r;
    snprintf(h_sid, sizeof(h_sid), "Mcp-Session-Id: %s", sid);
    r = hc_start(hc, &o, &cbs, g, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Regression: thousands of open event streams (per-client upstream sessions' GET streams) each
 * hold an HTTP/1.1 connection, and libcurl walked all of them to the origin for every request
 * and every new stream. Streams now live apart from requests and never look in a cache: a stream
 * opens its own connection even with an idle one at hand, and a request after the stream ended
 * does not get the stream's connection. */
START_TEST(test_hc_streams_never_share_connections_with_requests)
{
    struct got init = {0}, st = {0}, after = {0};
    struct mcpgw_hc_req *r;
    setup();
    initialize(&init, 0); /* leaves an idle connection in the cache */
    r = open_stream(&st, init.sid);
    ck_assert_msg(upkit_run_until(base, &st.heads, 15000), "no head for the stream");
    ck_assert_int_eq(st.status, 200);
    ck_assert_msg(st.head_new_conns == 1, "the stream took a cached connection");
    mcpgw_hc_req_cancel(r);
    post(&after, init.sid, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", 0);
    ck_assert_int_eq(after.err, MCPGW_HC_OK);
    ck_assert_int_eq(after.new_conns, 0); /* the request's own idle connection */
    teardown();
}
END_TEST

START_TEST(test_hc_speaks_h2c_with_prior_knowledge)
{
    struct got g = {0};
    setup();
    initialize(&g, MCPGW_HC_H2C);
    ck_assert_int_eq(g.version, 2);
    ck_assert_msg(strstr(g.body, "\"protocolVersion\""), "body: %s", g.body);
    teardown();
}
END_TEST

START_TEST(test_hc_reports_a_refused_connection)
{
    struct got g = {0};
    char err[128];
    struct mcpgw_hc_opts o = {.url = "http://127.0.0.1:18489/mcp"};
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, &g, err, sizeof(err)));
    ck_assert(upkit_run_until(base, &g.done, 10000));
    ck_assert_int_eq(g.err, MCPGW_HC_E_CONNECT);
    ck_assert_int_eq(g.heads, 0);
    mcpgw_hc_free(hc);
    event_base_free(base);
}
END_TEST

START_TEST(test_hc_times_out_a_stream_that_never_ends)
{
    struct got init = {0}, g = {0};
    char h_sid[160], err[128];
    const char *hdrs[] = {"Accept: text/event-stream", h_sid, NULL};
    struct mcpgw_hc_opts o = {.url = URL, .headers = hdrs, .timeout_ms = 300};
    long t0;
    setup();
    initialize(&init, 0);
    snprintf(h_sid, sizeof(h_sid), "Mcp-Session-Id: %s", init.sid);
    t0 = upkit_now_ms();
    ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, &g, err, sizeof(err)));
    ck_assert(upkit_run_until(base, &g.done, 10000));
    ck_assert_int_eq(g.status, 200);
    ck_assert_int_eq(g.err, MCPGW_HC_E_TIMEOUT);
    ck_assert_int_ge(upkit_now_ms() - t0, 290);
    teardown();
}
END_TEST

START_TEST(test_hc_refuses_a_url_that_is_not_http)
{
    char err[128] = "";
    struct mcpgw_hc_opts o = {.url = "file:///etc/passwd"};
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    ck_assert_ptr_null(hc_start(hc, &o, &cbs, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not http"), "err: %s", err);
    mcpgw_hc_free(hc);
    event_base_free(base);
}
END_TEST

/* ---- a bare HTTP/1.1 server: records each request, answers "{}"; never sends 100 Continue ---- */

#define RAW_PORT 18482
#define RAW_URL  "http://127.0.0.1:18482/mcp"

struct raw_req {
    char head[2048];
    size_t body_len;
};

static struct raw_req raw_seen[8];
static int raw_n;
static struct bufferevent *raw_conns[8]; /* freed by raw_stop when the client did not close */

static void raw_on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        size_t hlen, clen = 0;
        char head[2048];
        const char *cl;
        if (end.pos < 0)
            return;
        hlen = (size_t)end.pos + 4;
        ck_assert_uint_lt(hlen, sizeof(head));
        evbuffer_copyout(in, head, hlen);
        head[hlen] = 0;
        if ((cl = strcasestr(head, "\r\ncontent-length:")))
            clen = strtoul(cl + 17, NULL, 10);
        if (evbuffer_get_length(in) < hlen + clen)
            return; /* the body is still coming (it must come without a 100 Continue) */
        ck_assert_int_lt(raw_n, 8);
        memcpy(raw_seen[raw_n].head, head, hlen + 1);
        raw_seen[raw_n++].body_len = clen;
        evbuffer_drain(in, hlen + clen);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 2\r\n\r\n{}";
        bufferevent_write(bev, ok, sizeof(ok) - 1);
    }
}

static void raw_on_event(struct bufferevent *bev, short what, void *arg)
{
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    for (int i = 0; i < 8; i++)
        if (raw_conns[i] == bev)
            raw_conns[i] = NULL;
    bufferevent_free(bev);
}

static void raw_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    int i = 0;
    while (i < 8 && raw_conns[i])
        i++;
    ck_assert_int_lt(i, 8);
    raw_conns[i] = bev;
    bufferevent_setcb(bev, raw_on_read, NULL, raw_on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct evconnlistener *raw_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(RAW_PORT)};
    struct evconnlistener *l;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    raw_n = 0;
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    ck_assert_ptr_nonnull(hc);
    l = evconnlistener_new_bind(base, raw_on_accept, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sa, sizeof(sa));
    ck_assert_ptr_nonnull(l);
    return l;
}

static void raw_stop(struct evconnlistener *l)
{
    mcpgw_hc_free(hc);
    for (int i = 0; i < 8; i++)
        if (raw_conns[i]) {
            bufferevent_free(raw_conns[i]);
            raw_conns[i] = NULL;
        }
    evconnlistener_free(l);
    event_base_free(base);
}

static void raw_call(struct got *g, const char *method, const char *body)
{
    char err[128];
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    struct mcpgw_hc_opts o = {.method = method,
                              .url = RAW_URL,
                              .headers = hdrs,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .timeout_ms = 10000};
    ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, g, err, sizeof(err)));
    ck_assert_msg(upkit_run_until(base, &g->done, 15000), "request did not finish");
    ck_assert_msg(g->err == MCPGW_HC_OK && g->status == 200, "err %d status %ld: %s", (int)g->err,
                  g->status, g->why);
}

/* libcurl adds "Expect: 100-continue" to large bodies (over 1 MiB in 7.88; over 1 KiB in older
 * releases) and holds the body back until a 100 comes or a second passes: a server that never
 * sends one (as this one) would have each such call wait for that second. A tool call with a
 * large argument (a file's text) is such a body. */
START_TEST(test_hc_sends_a_large_body_without_waiting_for_100_continue)
{
    enum { N = 2 * 1024 * 1024 + 1 };
    struct evconnlistener *l = raw_start();
    struct got g = {0};
    char *body = malloc(N + 1);
    memset(body, 'x', N);
    body[N] = 0;
    raw_call(&g, "POST", body);
    ck_assert_int_eq(raw_n, 1);
    ck_assert_uint_eq(raw_seen[0].body_len, N);
    ck_assert_msg(!strcasestr(raw_seen[0].head, "\r\nExpect:"), "head: %s", raw_seen[0].head);
    free(body);
    raw_stop(l);
}
END_TEST

/* Easy handles are reset and used again: nothing of one request (its method, its GET, its
 * headers) may reach the next. */
START_TEST(test_hc_a_reused_handle_forgets_the_last_requests_method_and_headers)
{
    struct evconnlistener *l = raw_start();
    struct got a = {0}, b = {0}, c = {0}, d = {0};
    raw_call(&a, "DELETE", NULL);
    raw_call(&b, "POST", "{\"n\":1}");
    raw_call(&c, "GET", NULL);
    raw_call(&d, "POST", "{\"n\":2}");
    ck_assert_int_eq(raw_n, 4);
    ck_assert_msg(strncmp(raw_seen[0].head, "DELETE /mcp ", 12) == 0, "%s", raw_seen[0].head);
    ck_assert_msg(strncmp(raw_seen[1].head, "POST /mcp ", 10) == 0, "%s", raw_seen[1].head);
    ck_assert_msg(strncmp(raw_seen[2].head, "GET /mcp ", 9) == 0, "%s", raw_seen[2].head);
    ck_assert_msg(strncmp(raw_seen[3].head, "POST /mcp ", 10) == 0, "%s", raw_seen[3].head);
    ck_assert_uint_eq(raw_seen[1].body_len, 7);
    ck_assert_uint_eq(raw_seen[3].body_len, 7);
    ck_assert_uint_eq(raw_seen[2].body_len, 0);
    ck_assert_msg(b.new_conns + c.new_conns + d.new_conns == 0, "new connections: %ld %ld %ld %ld",
                  a.new_conns, b.new_conns, c.new_conns, d.new_conns); /* one, reused */
    raw_stop(l);
}
END_TEST

/* ---- a scripted server: the test sends each answer piece by piece ---- */

#define SS_PORT 12000
#define SS_URL  "http://127.0.0.1:12000/x"

struct ss_conn {
    int fd;  /* the server's end */
    int cfd; /* the client's end of the same connection (same process), or -1 */
    struct event *ev;
    char in[8192];
    size_t inlen;
    int eof;
};

static struct ss_conn ssc[16];
static int nssc, ss_nreq, ss_last; /* connections, requests seen, the last one's connection */
static struct evconnlistener *ss_l;

/* Counts complete requests (head and Content-Length body) in k's input. */
static void ss_scan(struct ss_conn *k)
{
    for (;;) {
        char *end = memmem(k->in, k->inlen, "\r\n\r\n", 4);
        size_t hlen, clen = 0;
        const char *cl;
        if (!end)
            return;
        hlen = (size_t)(end - k->in) + 4;
        *end = 0;
        if ((cl = strcasestr(k->in, "\r\ncontent-length:")))
            clen = strtoul(cl + 17, NULL, 10);
        *end = '\r';
        if (k->inlen < hlen + clen)
            return;
        memmove(k->in, k->in + hlen + clen, k->inlen - hlen - clen);
        k->inlen -= hlen + clen;
        ss_nreq++;
        ss_last = (int)(k - ssc);
    }
}

static void ss_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct ss_conn *k = arg;
    ssize_t n = recv(fd, k->in + k->inlen, sizeof(k->in) - k->inlen, 0);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        k->eof = 1;
        event_del(k->ev);
        return;
    }
    k->inlen += (size_t)n;
    ck_assert_uint_lt(k->inlen, sizeof(k->in));
    ss_scan(k);
}

/* The client's socket of the connection whose client port is port: the fd in this process
 * bound to it. */
static int ss_find_client_fd(unsigned short port)
{
    for (int fd = 3; fd < 4096; fd++) {
        struct sockaddr_in a, b;
        socklen_t al = sizeof(a), bl = sizeof(b);
        if (getsockname(fd, (struct sockaddr *)&a, &al) == 0 && a.sin_family == AF_INET &&
            ntohs(a.sin_port) == port && getpeername(fd, (struct sockaddr *)&b, &bl) == 0 &&
            ntohs(b.sin_port) == SS_PORT)
            return fd;
    }
    return -1;
}

static void ss_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int salen, void *arg)
{
    struct ss_conn *k = &ssc[nssc++];
    int one = 1;
    ck_assert_int_le(nssc, 16);
    memset(k, 0, sizeof(*k));
    /* each piece goes out at once (no Nagle wait for the client's delayed ACK) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    k->fd = fd;
    k->cfd = ss_find_client_fd(ntohs(((struct sockaddr_in *)sa)->sin_port));
    k->ev = event_new(base, fd, EV_READ | EV_PERSIST, ss_on_read, k);
    event_add(k->ev, NULL);
}

static void ss_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(SS_PORT)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    nssc = ss_nreq = 0;
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    ck_assert_ptr_nonnull(hc);
    ss_l =
        evconnlistener_new_bind(base, ss_on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&sa, sizeof(sa));
    ck_assert_ptr_nonnull(ss_l);
}

static void ss_stop(void)
{
    mcpgw_hc_free(hc);
    for (int i = 0; i < nssc; i++) {
        event_free(ssc[i].ev);
        if (ssc[i].fd >= 0)
            close(ssc[i].fd);
    }
    evconnlistener_free(ss_l);
    event_base_free(base);
}

/* Runs the loop until n requests came in all; returns the connection of the last. */
static int ss_wait_req(int n)
{
    long deadline = upkit_now_ms() + 10000;
    while (ss_nreq < n && upkit_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_msg(ss_nreq >= n, "request %d did not come", n);
    return ss_last;
}

/* Sends len bytes on connection i, then runs the loop until the client has read all of them
 * (or closed its socket), so the next piece comes in a read of its own. */
static void ss_send(int i, const char *p, size_t len)
{
    long deadline = upkit_now_ms() + 10000;
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(ssc[i].fd, p + off, len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EAGAIN)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        else
            return; /* the client closed it */
        ck_assert(upkit_now_ms() < deadline);
    }
    for (;;) {
        int avail = 0;
        if (ssc[i].cfd < 0 || ioctl(ssc[i].cfd, FIONREAD, &avail) < 0 || avail == 0)
            return;
        ck_assert_msg(upkit_now_ms() < deadline, "the client did not read");
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
}

static void ss_send_str(int i, const char *p)
{
    ss_send(i, p, strlen(p));
}

static void ss_close(int i)
{
    event_del(ssc[i].ev);
    close(ssc[i].fd);
    ssc[i].fd = -1;
}

static struct mcpgw_hc_req *ss_get(struct got *g, const char *url, long timeout_ms)
{
    char err[128];
    struct mcpgw_hc_opts o = {.url = url, .timeout_ms = timeout_ms};
    struct mcpgw_hc_req *r = hc_start(hc, &o, &cbs, g, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

static void wait_done(struct got *g)
{
    ck_assert_msg(upkit_run_until(base, &g->done, 10000), "request did not finish");
}

#define CHUNKED_HEAD "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
#define CHUNKED_BODY                                                                               \
    "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n"

/* A chunked answer cut in two at every byte (the size line, its extension, the CRLF after the
 * data, the last chunk, the trailers), then one sent byte by byte: the body is always the
 * same, and the connection is reused for the next (the answer was complete). */
START_TEST(test_hc_reads_chunked_bodies_split_anywhere)
{
    static const char ans[] = CHUNKED_HEAD CHUNKED_BODY;
    size_t n = sizeof(ans) - 1;
    ss_start();
    for (size_t cut = 1; cut <= n; cut++) {
        struct got g = {0};
        int k;
        ss_get(&g, SS_URL, 10000);
        k = ss_wait_req((int)cut);
        if (cut < n) {
            ss_send(k, ans, cut);
            ss_send(k, ans + cut, n - cut);
        } else {
            for (size_t i = 0; i < n; i++)
                ss_send(k, ans + i, 1);
        }
        wait_done(&g);
        ck_assert_msg(g.err == MCPGW_HC_OK, "cut %zu: %s", cut, g.why);
        ck_assert_str_eq(g.body, "helloabcdefghijklmnopqrstuvwxyz");
        ck_assert_int_eq(g.heads, 1);
        ck_assert_int_eq(nssc, 1);
    }
    ss_stop();
}
END_TEST

/* An event stream over chunked encoding: each event reaches on_body when it arrives, long
 * before the stream ends. */
START_TEST(test_hc_delivers_a_chunked_event_stream_piece_by_piece)
{
    struct got g = {0};
    int k;
    ss_start();
    ss_get(&g, SS_URL, 0);
    k = ss_wait_req(1);
    ss_send_str(k, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n");
    ck_assert(upkit_run_until(base, &g.heads, 5000));
    ck_assert_str_eq(g.ctype, "text/event-stream");
    for (int i = 1; i <= 3; i++) {
        char ev[64], chunk[96];
        snprintf(ev, sizeof(ev), "data: {\"n\":%d}\n\n", i);
        snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n", strlen(ev), ev);
        ss_send_str(k, chunk);
        ck_assert_int_eq(g.bodies, i);
        ck_assert_msg(strstr(g.body, ev), "body: %s", g.body);
        ck_assert_int_eq(g.done, 0);
    }
    ss_send_str(k, "0\r\n\r\n");
    wait_done(&g);
    ck_assert_int_eq(g.err, MCPGW_HC_OK);
    ss_stop();
}
END_TEST

static const char ok_keep[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

/* The server closed a kept-alive connection while it sat idle; the next request gets through
 * (on a new connection), whether the client saw the close first (the idle connection is
 * watched) or only when it sent on it (then it sends once more: nothing of an answer came). */
START_TEST(test_hc_survives_a_server_closing_an_idle_connection)
{
    ss_start();
    for (int see_it = 0; see_it < 2; see_it++) {
        struct got a = {0}, b = {0};
        int k, base_req = ss_nreq;
        ss_get(&a, SS_URL, 10000);
        k = ss_wait_req(base_req + 1);
        ss_send_str(k, ok_keep);
        wait_done(&a);
        ck_assert_int_eq(a.err, MCPGW_HC_OK);
        ss_close(k);
        if (see_it) { /* let the loop run: the client sees the close on the idle connection */
            int never = 0;
            upkit_run_until(base, &never, 50);
        }
        ss_get(&b, SS_URL, 10000);
        k = ss_wait_req(base_req + 2);
        ss_send_str(k, ok_keep);
        wait_done(&b);
        ck_assert_msg(b.err == MCPGW_HC_OK, "see_it %d: %s", see_it, b.why);
        ck_assert_int_eq(b.status, 200);
        ck_assert_int_eq(b.new_conns, 1);
    }
    ss_stop();
}
END_TEST

/* Once a byte of the answer came, the request is never sent again: the server may have acted
 * on it. */
START_TEST(test_hc_never_resends_after_part_of_the_answer)
{
    struct got a = {0}, b = {0};
    int k;
    ss_start();
    ss_get(&a, SS_URL, 10000);
    k = ss_wait_req(1);
    ss_send_str(k, ok_keep);
    wait_done(&a);
    ss_get(&b, SS_URL, 10000);
    k = ss_wait_req(2);
    ss_send_str(k, "HTTP/1.1 200 OK\r\n");
    ss_close(k);
    wait_done(&b);
    /* libcurl 7.88 takes a head cut by the close for an answer; the built-in client does not */
    if (!eng)
        ck_assert_int_eq(b.err, MCPGW_HC_E_TRANSFER);
    ck_assert_int_eq(ss_nreq, 2);
    ck_assert_int_eq(nssc, 1);
    ss_stop();
}
END_TEST

/* "Connection: close", HTTP/1.0 without keep-alive and a body read until the close: the
 * connection is not used again. */
START_TEST(test_hc_does_not_reuse_a_connection_the_answer_ended)
{
    static const char *const ans[] = {
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\n\r\n{}", /* until close */
    };
    ss_start();
    for (int i = 0; i < 3; i++) {
        struct got g = {0};
        int k;
        ss_get(&g, SS_URL, 10000);
        k = ss_wait_req(i + 1);
        ck_assert_int_eq(k, i); /* a new connection each time */
        ss_send_str(k, ans[i]);
        if (i == 2) {
            ck_assert_int_eq(g.done, 0);
            ss_close(k);
        }
        wait_done(&g);
        ck_assert_msg(g.err == MCPGW_HC_OK, "%d: %s", i, g.why);
        ck_assert_str_eq(g.body, "{}");
    }
    ss_stop();
}
END_TEST

START_TEST(test_hc_skips_interim_heads)
{
    struct got g = {0};
    struct mcpgw_hc_req *r;
    int k;
    ss_start();
    r = ss_get(&g, SS_URL, 10000);
    k = ss_wait_req(1);
    ss_send_str(k, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
    ck_assert_int_eq(g.heads, 0);
    ck_assert_int_eq(mcpgw_hc_req_status(r), 0);
    ss_send_str(k, "HTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\n{}");
    wait_done(&g);
    ck_assert_int_eq(g.err, MCPGW_HC_OK);
    ck_assert_int_eq(g.heads, 1);
    ck_assert_int_eq(g.status, 201);
    ck_assert_str_eq(g.xa, "1");  /* the first of two, whatever the case */
    ck_assert_str_eq(g.link, ""); /* the interim head's headers are gone */
    ck_assert_str_eq(g.body, "{}");
    ss_stop();
}
END_TEST

/* Headers beyond any sane size are a broken answer, not an allocation without end. (libcurl
 * 7.88 has no cap on a whole head: the built-in client's only.) */
START_TEST(test_hc_refuses_a_head_over_the_cap)
{
    if (eng)
        return;
    struct got g = {0};
    enum { N = 200 * 1024 };
    char *big = malloc(N + 64);
    int k;
    strcpy(big, "HTTP/1.1 200 OK\r\n");
    for (size_t i = strlen(big); i < N; i += 64)
        snprintf(big + i, 65, "X-Pad: %055d\r\n", 0);
    ss_start();
    ss_get(&g, SS_URL, 10000);
    k = ss_wait_req(1);
    ss_send(k, big, strlen(big));
    wait_done(&g);
    ck_assert_int_eq(g.err, MCPGW_HC_E_TRANSFER);
    ck_assert_int_eq(g.heads, 0);
    free(big);
    ss_stop();
}
END_TEST

START_TEST(test_hc_times_out_a_silent_server)
{
    struct got g = {0};
    long t0 = upkit_now_ms();
    ss_start();
    ss_get(&g, SS_URL, 300);
    ss_wait_req(1);
    wait_done(&g);
    ck_assert_int_eq(g.err, MCPGW_HC_E_TIMEOUT);
    ck_assert_int_ge(upkit_now_ms() - t0, 290);
    ss_stop();
}
END_TEST

static struct mcpgw_hc_req *cancel_me;
static void on_body_cancel(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct got *g = arg;
    on_body(arg, r, buf, len);
    mcpgw_hc_req_cancel(r);
    g->done = 1;
    cancel_me = NULL;
}

static void on_done_never(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    ck_abort_msg("on_done after a cancel");
}

/* Cancelled inside on_body: nothing more is delivered and the connection is closed (its
 * answer could still come). */
START_TEST(test_hc_cancel_inside_on_body_closes_the_connection)
{
    static const struct mcpgw_hc_cbs ccbs = {on_head, on_body_cancel, on_done_never};
    struct got g = {0};
    char err[128];
    struct mcpgw_hc_opts o = {.url = SS_URL, .timeout_ms = 10000};
    int k, never = 0;
    long t0;
    ss_start();
    ck_assert_ptr_nonnull(hc_start(hc, &o, &ccbs, &g, err, sizeof(err)));
    k = ss_wait_req(1);
    ss_send_str(k, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    ck_assert(upkit_run_until(base, &g.done, 5000));
    ck_assert_int_eq(g.bodies, 1);
    t0 = upkit_now_ms();
    while (!ssc[k].eof && upkit_now_ms() - t0 < 5000)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_msg(ssc[k].eof, "the cancelled request's connection stayed open");
    upkit_run_until(base, &never, 50);
    ck_assert_int_eq(g.bodies, 1);
    ss_stop();
}
END_TEST

START_TEST(test_hc_reports_a_malformed_answer)
{
    static const char *const ans[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "SMTP ready\r\n\r\n",
    };
    ss_start();
    for (int i = 0; i < 3; i++) {
        struct got g = {0};
        int k;
        ss_get(&g, SS_URL, 10000);
        k = ss_wait_req(i + 1);
        ss_send_str(k, ans[i]);
        wait_done(&g);
        ck_assert_msg(g.err == MCPGW_HC_E_TRANSFER, "%d: err %d %s", i, (int)g.err, g.why);
        ck_assert_msg(g.why[0], "no reason given");
    }
    ss_stop();
}
END_TEST

/* A server whose accept queue is full drops new SYNs: the connection never completes, and
 * connect_timeout_ms ends the request long before timeout_ms. */
START_TEST(test_hc_times_out_a_connection_that_never_completes)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(12001)};
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1, fill[4];
    struct got g = {0};
    char err[128];
    struct mcpgw_hc_opts o = {
        .url = "http://127.0.0.1:12001/x", .timeout_ms = 8000, .connect_timeout_ms = 300};
    long t0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    for (int i = 0; i < 4; i++) { /* fill the accept queue (never accepted) */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(100000);
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    t0 = upkit_now_ms();
    ck_assert_ptr_nonnull(hc_start(hc, &o, &cbs, &g, err, sizeof(err)));
    wait_done(&g);
    ck_assert_msg(g.err == MCPGW_HC_E_TIMEOUT, "err %d: %s", (int)g.err, g.why);
    ck_assert_int_lt(upkit_now_ms() - t0, 4000);
    mcpgw_hc_free(hc);
    event_base_free(base);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}
END_TEST

/* A name, not an address: resolved without blocking the loop (the hosts file here). */
START_TEST(test_hc_resolves_localhost)
{
    struct got a = {0}, b = {0};
    int k;
    ss_start();
    ss_get(&a, "http://localhost:12000/x", 10000);
    k = ss_wait_req(1);
    ss_send_str(k, ok_keep);
    wait_done(&a);
    ck_assert_msg(a.err == MCPGW_HC_OK, "%s", a.why);
    ck_assert_int_eq(a.new_conns, 1);
    ss_get(&b, "http://localhost:12000/x", 10000);
    k = ss_wait_req(2);
    ss_send_str(k, ok_keep);
    wait_done(&b);
    ck_assert_int_eq(b.err, MCPGW_HC_OK);
    ck_assert_int_eq(b.new_conns, 0);
    ss_stop();
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_hc_posts_and_reads_head_and_json_body,
        test_hc_delivers_an_event_stream_before_it_ends,
        test_hc_cancel_inside_a_callback_stops_a_stream,
        test_hc_cancel_before_the_loop_runs_fires_nothing,
        test_hc_reuses_the_connection,
        test_hc_keeps_a_burst_of_connections_for_the_next_burst,
        test_hc_streams_never_share_connections_with_requests,
        test_hc_speaks_h2c_with_prior_knowledge,
        test_hc_reports_a_refused_connection,
        test_hc_times_out_a_stream_that_never_ends,
        test_hc_refuses_a_url_that_is_not_http,
        test_hc_sends_a_large_body_without_waiting_for_100_continue,
        test_hc_a_reused_handle_forgets_the_last_requests_method_and_headers,
        test_hc_reads_chunked_bodies_split_anywhere,
        test_hc_delivers_a_chunked_event_stream_piece_by_piece,
        test_hc_survives_a_server_closing_an_idle_connection,
        test_hc_never_resends_after_part_of_the_answer,
        test_hc_does_not_reuse_a_connection_the_answer_ended,
        test_hc_skips_interim_heads,
        test_hc_refuses_a_head_over_the_cap,
        test_hc_times_out_a_silent_server,
        test_hc_cancel_inside_on_body_closes_the_connection,
        test_hc_reports_a_malformed_answer,
        test_hc_resolves_localhost,
        test_hc_times_out_a_connection_that_never_completes,
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    int rc = mcpgw_check_run("httpclient (built-in HTTP/1.1)", "core", tests, n);
    eng = MCPGW_HC_CURL; /* the forked test processes inherit it */
    return mcpgw_check_run("httpclient (libcurl)", "core", tests, n) | rc;
}
