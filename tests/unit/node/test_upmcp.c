/* test_upmcp.c - the Streamable HTTP client session against a real mcpgw-node (initialize, echo,
 * progress on the answer stream, the GET stream and its resume, adopting a session without a
 * second initialize, 404 after the upstream restarts, DELETE on close), and against a small
 * in-process server for the faults a real server does not produce on demand (wrong id, invalid
 * JSON, 202 for a request). Ports 18484-18486. */
#include "node/upmcp.h"

#include "common/httpclient.h"
#include "tests/unit/check-run.h"
#include "tests/unit/upkit.h"

#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#define PORT     18484
#define URL      "http://127.0.0.1:18484/mcp"
#define BAD_PORT 18485

static struct event_base *base;
static struct mcpgw_hc *hc;
static pid_t node;

struct sess {
    int ready, ready_err, gone, msgs, closed;
    char last_method[128], last_id[128];
};

static void s_ready(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    struct sess *s = arg;
    s->ready = 1;
    s->ready_err = err;
    ck_assert_msg(err == MCPGW_UPMCP_OK, "initialize: %s", why);
}

static void s_msg(void *arg, const char *event_id, const struct mcpgw_jsonrpc_msg *m)
{
    struct sess *s = arg;
    s->msgs++;
    snprintf(s->last_method, sizeof(s->last_method), "%s", m->method ? m->method : "");
    snprintf(s->last_id, sizeof(s->last_id), "%s", event_id ? event_id : "");
}

static void s_gone(void *arg)
{
    ((struct sess *)arg)->gone++;
}

static const struct mcpgw_upmcp_cbs scbs = {s_ready, s_msg, s_gone};

/* Runs the loop until cond holds or ms pass. */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        long d_ = upkit_now_ms() + (ms);                                                           \
        int z_ = 0;                                                                                \
        while (!(cond) && upkit_now_ms() < d_)                                                     \
            upkit_run_until(base, &z_, 20);                                                        \
    } while (0)

struct call {
    int done, err, msgs;
    long long msg_tag; /* the call id each on_message was tagged with (all must match) */
    struct mcpgw_upmcp_call *c;
    char why[512], result[4096];
};

static void c_msg(void *arg, const char *event_id, const struct mcpgw_jsonrpc_msg *m)
{
    struct call *k = arg;
    ck_assert_str_eq(m->method, "notifications/progress");
    k->msgs++;
}

static void c_reply(void *arg, enum mcpgw_upmcp_err err, const char *why,
                    const struct mcpgw_jsonrpc_msg *m)
{
    struct call *k = arg;
    k->done = 1;
    k->err = err;
    snprintf(k->why, sizeof(k->why), "%s", why);
    if (m)
        snprintf(k->result, sizeof(k->result), "%s",
                 json_object_to_json_string(m->result ? m->result : m->error));
}

static const struct mcpgw_upmcp_call_cbs ccbs = {c_msg, c_reply};

static void setup(void)
{
    node = upkit_node_start(PORT);
    base = event_base_new();
    hc = mcpgw_hc_new(base);
}

static void teardown(void)
{
    mcpgw_hc_free(hc);
    event_base_free(base);
    if (node > 0)
        upkit_node_stop(node);
}

static struct mcpgw_upmcp *session(struct sess *s, const char *url, size_t max_msg)
{
    struct mcpgw_upmcp_cfg cfg = {
        .name = "up1", .url = url, .timeout_ms = 5000, .max_msg = max_msg};
    return mcpgw_upmcp_new(hc, &cfg, &scbs, s);
}

static struct mcpgw_upmcp *initialized(struct sess *s)
{
    struct mcpgw_upmcp *u = session(s, URL, 0);
    ck_assert_int_eq(mcpgw_upmcp_initialize(u, NULL), 0);
    ck_assert_msg(upkit_run_until(base, &s->ready, 10000), "initialize did not finish");
    ck_assert_ptr_nonnull(mcpgw_upmcp_session_id(u));
    ck_assert_str_eq(mcpgw_upmcp_version(u), "2025-11-25");
    return u;
}

static void call(struct mcpgw_upmcp *u, struct call *k, const char *method, const char *params)
{
    k->c = mcpgw_upmcp_request(u, method, params ? json_tokener_parse(params) : NULL, &ccbs, k);
    ck_assert_ptr_nonnull(k->c);
    ck_assert_msg(upkit_run_until(base, &k->done, 10000), "%s was not answered", method);
}

static void echo(struct mcpgw_upmcp *u, struct call *k, const char *text)
{
    char p[4096];
    snprintf(p, sizeof(p), "{\"name\":\"echo\",\"arguments\":{\"text\":\"%s\"}}", text);
    call(u, k, "tools/call", p);
}

/* mcpgw_node_sessions_created_total from the node's /metrics. */
struct metric {
    int done;
    char body[1 << 16];
    size_t len;
};
static void m_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct metric *m = arg;
    if (m->len + len < sizeof(m->body)) {
        memcpy(m->body + m->len, buf, len);
        m->len += len;
    }
}
static void m_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    ((struct metric *)arg)->done = 1;
}
static long sessions_created(void)
{
    static struct metric m;
    static const struct mcpgw_hc_cbs cbs = {NULL, m_body, m_done};
    struct mcpgw_hc_opts o = {.url = "http://127.0.0.1:18484/metrics", .timeout_ms = 5000};
    char err[128], *p;
    memset(&m, 0, sizeof(m));
    ck_assert_ptr_nonnull(mcpgw_hc_start(hc, &o, &cbs, &m, err, sizeof(err)));
    ck_assert(upkit_run_until(base, &m.done, 10000));
    p = strstr(m.body, "\nmcpgw_node_sessions_created_total");
    ck_assert_msg(p, "no sessions_created_total in /metrics");
    p = strchr(p + 1, '\n');
    while (p[-1] != ' ')
        p--;
    return strtol(p, NULL, 10);
}

START_TEST(test_upmcp_initializes_and_calls_echo)
{
    struct sess s = {0};
    struct call k = {0};
    struct mcpgw_upmcp *u;
    setup();
    u = initialized(&s);
    ck_assert_ptr_nonnull(mcpgw_json_obj(mcpgw_upmcp_server_result(u), "capabilities"));
    echo(u, &k, "hello upstream");
    ck_assert_msg(k.err == MCPGW_UPMCP_OK, "%s", k.why);
    ck_assert_msg(strstr(k.result, "hello upstream"), "result: %s", k.result);
    ck_assert_int_eq(sessions_created(), 1);
    mcpgw_upmcp_free(u);
    teardown();
}
END_TEST

START_TEST(test_upmcp_passes_progress_tagged_with_its_call)
{
    struct sess s = {0};
    struct call k = {0}, other = {0};
    struct mcpgw_upmcp *u;
    setup();
    u = initialized(&s);
    /* two calls at once: each call's progress reaches its own callback only */
    other.c = mcpgw_upmcp_request(
        u, "tools/call", json_tokener_parse("{\"name\":\"echo\",\"arguments\":{\"text\":\"x\"}}"),
        &ccbs, &other);
    call(u, &k, "tools/call",
         "{\"name\":\"test_tool_with_progress\",\"arguments\":{},\"_meta\":{\"progressToken\":7}}");
    ck_assert_msg(k.err == MCPGW_UPMCP_OK, "%s", k.why);
    ck_assert_int_eq(k.msgs, 3);
    ck_assert(upkit_run_until(base, &other.done, 5000));
    ck_assert_int_eq(other.msgs, 0);
    ck_assert_int_eq(s.msgs, 0); /* nothing leaked to the session-level callback */
    mcpgw_upmcp_free(u);
    teardown();
}
END_TEST

START_TEST(test_upmcp_listens_and_an_adopter_resumes_after_the_last_event)
{
    struct sess s = {0}, s2 = {0};
    struct call k = {0}, w = {0}, w2 = {0}, k2 = {0}, pre = {0};
    struct mcpgw_upmcp *u, *u2;
    char sid[128], last[128];
    setup();
    u = initialized(&s);
    /* the note exists before the stream opens: a new note would add
     * notifications/resources/list_changed to the stream */
    call(u, &pre, "tools/call",
         "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"n1\",\"text\":\"0\"}}");
    ck_assert_msg(pre.err == MCPGW_UPMCP_OK, "%s", pre.why);
    call(u, &k, "resources/subscribe", "{\"uri\":\"mcpgw://notes/n1\"}");
    ck_assert_msg(k.err == MCPGW_UPMCP_OK, "%s", k.why);
    ck_assert_int_eq(mcpgw_upmcp_listen(u, NULL), 0);
    RUN_UNTIL(mcpgw_upmcp_listening(u), 10000);
    ck_assert(mcpgw_upmcp_listening(u));
    call(u, &w, "tools/call",
         "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"n1\",\"text\":\"a\"}}");
    RUN_UNTIL(s.msgs >= 1, 10000);
    ck_assert_int_eq(s.msgs, 1);
    ck_assert_str_eq(s.last_method, "notifications/resources/updated");
    ck_assert_msg(s.last_id[0], "no event id on the GET stream");
    ck_assert_str_eq(mcpgw_upmcp_last_event_id(u), s.last_id);
    snprintf(sid, sizeof(sid), "%s", mcpgw_upmcp_session_id(u));
    snprintf(last, sizeof(last), "%s", s.last_id);
    /* the session moves: this object goes away silently (no DELETE), an update is sent while
     * nobody listens, and a second object adopts the session and resumes after the last id */
    mcpgw_upmcp_free(u);
    u2 = session(&s2, URL, 0);
    ck_assert_int_eq(mcpgw_upmcp_adopt(u2, sid, "2025-11-25"), 0);
    call(u2, &w2, "tools/call",
         "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"n1\",\"text\":\"b\"}}");
    ck_assert_msg(w2.err == MCPGW_UPMCP_OK, "%s", w2.why);
    ck_assert_int_eq(mcpgw_upmcp_listen(u2, last), 0);
    RUN_UNTIL(s2.msgs >= 1, 10000);
    ck_assert_int_eq(s2.msgs, 1);
    ck_assert_str_eq(s2.last_method, "notifications/resources/updated");
    ck_assert_str_ne(s2.last_id, last);
    echo(u2, &k2, "adopted");
    ck_assert_msg(k2.err == MCPGW_UPMCP_OK, "%s", k2.why);
    ck_assert_int_eq(s2.ready, 0);           /* adopt never initializes */
    ck_assert_int_eq(sessions_created(), 1); /* one session at the upstream, ever */
    mcpgw_upmcp_free(u2);
    teardown();
}
END_TEST

/* A second GET stream on the session makes the node end the first: the client reconnects with
 * Last-Event-ID, and an update sent meanwhile arrives once. */
static int rival_head;
static void rival_on_head(void *arg, struct mcpgw_hc_req *r)
{
    rival_head = (int)mcpgw_hc_req_status(r);
    mcpgw_hc_req_cancel(r);
}
static void rival_on_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err e, const char *w)
{
    rival_head = -1;
}

START_TEST(test_upmcp_reconnects_a_cut_get_stream_after_its_last_event)
{
    struct sess s = {0};
    struct call k = {0}, w = {0}, w2 = {0}, pre = {0};
    static const struct mcpgw_hc_cbs rival = {rival_on_head, NULL, rival_on_done};
    struct mcpgw_upmcp *u;
    char h_sid[160], err[128], first[128];
    const char *hdrs[] = {"Accept: text/event-stream", h_sid, NULL};
    struct mcpgw_hc_opts o = {.url = URL, .headers = hdrs};
    setup();
    u = initialized(&s);
    /* the note exists before the stream opens: a new note would add
     * notifications/resources/list_changed to the stream */
    call(u, &pre, "tools/call",
         "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"n2\",\"text\":\"0\"}}");
    ck_assert_msg(pre.err == MCPGW_UPMCP_OK, "%s", pre.why);
    call(u, &k, "resources/subscribe", "{\"uri\":\"mcpgw://notes/n2\"}");
    ck_assert_int_eq(mcpgw_upmcp_listen(u, NULL), 0);
    RUN_UNTIL(mcpgw_upmcp_listening(u), 10000);
    call(u, &w, "tools/call",
         "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"n2\",\"text\":\"a\"}}");
    RUN_UNTIL(s.msgs >= 1, 10000);
    ck_assert_int_eq(s.msgs, 1);
    snprintf(first, sizeof(first), "%s", s.last_id);
    snprintf(h_sid, sizeof(h_sid), "Mcp-Session-Id: %s", mcpgw_upmcp_session_id(u));
    ck_assert_ptr_nonnull(mcpgw_hc_start(hc, &o, &rival, NULL, err, sizeof(err)));
    RUN_UNTIL(rival_head != 0 && !mcpgw_upmcp_listening(u), 10000);
    ck_assert_int_eq(rival_head, 200);
    ck_assert(!mcpgw_upmcp_listening(u)); /* cut */
    call(u, &w2, "tools/call",
         "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"n2\",\"text\":\"b\"}}");
    RUN_UNTIL(s.msgs >= 2 && mcpgw_upmcp_listening(u), 10000);
    ck_assert_int_eq(s.msgs, 2);
    ck_assert(mcpgw_upmcp_listening(u)); /* back */
    ck_assert_str_ne(s.last_id, first);
    mcpgw_upmcp_free(u);
    teardown();
}
END_TEST

START_TEST(test_upmcp_reports_the_session_gone_after_an_upstream_restart)
{
    struct sess s = {0};
    struct call k = {0}, k2 = {0};
    struct mcpgw_upmcp *u;
    setup();
    u = initialized(&s);
    upkit_node_stop(node);
    node = upkit_node_start(PORT);
    echo(u, &k, "after restart");
    ck_assert_int_eq(k.err, MCPGW_UPMCP_E_GONE);
    ck_assert_msg(strstr(k.why, "up1") && strstr(k.why, "404"), "%s", k.why);
    ck_assert_int_eq(s.gone, 1);
    ck_assert_ptr_null(mcpgw_upmcp_session_id(u));
    /* the owner initializes again on the same object */
    s.ready = 0;
    ck_assert_int_eq(mcpgw_upmcp_initialize(u, NULL), 0);
    ck_assert(upkit_run_until(base, &s.ready, 10000));
    echo(u, &k2, "again");
    ck_assert_msg(k2.err == MCPGW_UPMCP_OK, "%s", k2.why);
    mcpgw_upmcp_free(u);
    teardown();
}
END_TEST

START_TEST(test_upmcp_refuses_an_answer_over_the_size_cap)
{
    struct sess s = {0};
    struct call k = {0}, k2 = {0};
    struct mcpgw_upmcp *u;
    char big[3000];
    setup();
    u = session(&s, URL, 2048);
    ck_assert_int_eq(mcpgw_upmcp_initialize(u, NULL), 0);
    ck_assert(upkit_run_until(base, &s.ready, 10000));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    echo(u, &k, big);
    ck_assert_int_eq(k.err, MCPGW_UPMCP_E_TOO_BIG);
    ck_assert_msg(strstr(k.why, "2048-byte cap"), "%s", k.why);
    echo(u, &k2, "small"); /* only that request failed */
    ck_assert_msg(k2.err == MCPGW_UPMCP_OK, "%s", k2.why);
    mcpgw_upmcp_free(u);
    teardown();
}
END_TEST

struct deleted {
    int done;
};
static void on_closed(void *arg)
{
    ((struct deleted *)arg)->done = 1;
}

START_TEST(test_upmcp_close_deletes_the_upstream_session)
{
    struct sess s = {0}, s2 = {0};
    struct call k = {0};
    struct deleted d = {0};
    struct mcpgw_upmcp *u, *u2;
    char sid[128];
    setup();
    u = initialized(&s);
    snprintf(sid, sizeof(sid), "%s", mcpgw_upmcp_session_id(u));
    mcpgw_upmcp_close(u, on_closed, &d);
    ck_assert(upkit_run_until(base, &d.done, 10000));
    u2 = session(&s2, URL, 0);
    ck_assert_int_eq(mcpgw_upmcp_adopt(u2, sid, "2025-11-25"), 0);
    echo(u2, &k, "deleted?");
    ck_assert_int_eq(k.err, MCPGW_UPMCP_E_GONE);
    mcpgw_upmcp_free(u2);
    teardown();
}
END_TEST

/* ---- faults from a small in-process server ---- */

static void bad_server(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    int status = 200;
    evhttp_add_header(h, "Mcp-Session-Id", "bad.1");
    if (strstr(uri, "/init")) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add_printf(b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":"
                               "\"2025-06-18\",\"capabilities\":{},\"serverInfo\":{\"name\":\"b\","
                               "\"version\":\"1\"}}}");
    } else if (strstr(uri, "/wrongid")) {
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evbuffer_add_printf(b, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                               "\"params\":{\"progressToken\":1,\"progress\":1}}\n\n"
                               "data: {\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}\n\n");
    } else if (strstr(uri, "/badjson")) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add_printf(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    } else if (strstr(uri, "/accepted")) {
        status = 202;
    } else if (strstr(uri, "/oldversion")) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add_printf(b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":"
                               "\"2024-11-05\",\"capabilities\":{}}}");
    }
    evhttp_send_reply(req, status, "X", b);
    evbuffer_free(b);
}

static struct mcpgw_upmcp *bad_session(struct sess *s, struct evhttp **http, const char *path)
{
    char url[128];
    struct mcpgw_upmcp *u;
    *http = evhttp_new(base);
    ck_assert_int_eq(evhttp_bind_socket(*http, "127.0.0.1", BAD_PORT), 0);
    evhttp_set_gencb(*http, bad_server, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", BAD_PORT, path);
    u = session(s, url, 0);
    ck_assert_int_eq(mcpgw_upmcp_adopt(u, "bad.1", "2025-06-18"), 0);
    return u;
}

START_TEST(test_upmcp_reports_wrong_id_bad_json_and_202_for_that_request_only)
{
    static const struct {
        const char *path;
        enum mcpgw_upmcp_err err;
        const char *why;
    } cases[] = {
        {"/wrongid", MCPGW_UPMCP_E_BAD_ID, "carries id 999"},
        {"/badjson", MCPGW_UPMCP_E_BAD_JSON, "invalid JSON-RPC"},
        {"/accepted", MCPGW_UPMCP_E_PROTOCOL, "202 Accepted"},
    };
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sess s = {0};
        struct call k = {0};
        struct evhttp *http;
        struct mcpgw_upmcp *u = bad_session(&s, &http, cases[i].path);
        k.c = mcpgw_upmcp_request(u, "tools/list", NULL, &ccbs, &k);
        ck_assert(upkit_run_until(base, &k.done, 10000));
        ck_assert_msg(k.err == (int)cases[i].err, "%s: err %d: %s", cases[i].path, k.err, k.why);
        ck_assert_msg(strstr(k.why, cases[i].why) && strstr(k.why, "upstream up1"), "%s: %s",
                      cases[i].path, k.why);
        if (i == 0)
            ck_assert_int_eq(k.msgs, 1); /* the notification before the bad answer got through */
        mcpgw_upmcp_free(u);
        evhttp_free(http);
    }
    mcpgw_hc_free(hc);
    event_base_free(base);
}
END_TEST

static int old_ready;
static char old_why[512];
static void old_on_ready(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    old_ready = err == MCPGW_UPMCP_OK ? 1 : 2;
    snprintf(old_why, sizeof(old_why), "%s", why);
}

START_TEST(test_upmcp_refuses_a_revision_it_does_not_speak)
{
    struct evhttp *http = evhttp_new(base = event_base_new());
    struct mcpgw_upmcp *u;
    struct mcpgw_upmcp_cfg cfg = {.name = "up1", .url = "http://127.0.0.1:18485/oldversion"};
    static const struct mcpgw_upmcp_cbs cbs = {old_on_ready, NULL, NULL};
    hc = mcpgw_hc_new(base);
    ck_assert_int_eq(evhttp_bind_socket(http, "127.0.0.1", BAD_PORT), 0);
    evhttp_set_gencb(http, bad_server, NULL);
    u = mcpgw_upmcp_new(hc, &cfg, &cbs, NULL);
    ck_assert_int_eq(mcpgw_upmcp_adopt(u, "x", "2024-11-05"), -1);
    ck_assert_int_eq(mcpgw_upmcp_initialize(u, NULL), 0);
    ck_assert(upkit_run_until(base, &old_ready, 10000));
    ck_assert_int_eq(old_ready, 2);
    ck_assert_msg(strstr(old_why, "2024-11-05"), "%s", old_why);
    ck_assert_ptr_null(mcpgw_upmcp_request(u, "ping", NULL, &ccbs, NULL));
    mcpgw_upmcp_free(u);
    evhttp_free(http);
    mcpgw_hc_free(hc);
    event_base_free(base);
}
END_TEST

/* ---- server-everything over Streamable HTTP (another implementation than ours) ---- */

#define EV_PORT 18486

static pid_t everything_http_start(void)
{
    static char script[1024], port[16];
    const char *npm = getenv("MCPGW_NPM");
    long deadline = upkit_now_ms() + 20000;
    pid_t pid;
    ck_assert_msg(npm && *npm,
                  "MCPGW_NPM is not set: run through tests/run.sh or set it to the "
                  "folder holding node_modules/@modelcontextprotocol/server-everything");
    snprintf(script, sizeof(script),
             "%s/node_modules/@modelcontextprotocol/server-everything/dist/index.js", npm);
    ck_assert_msg(access(script, R_OK) == 0, "%s is missing: install the test packages", script);
    ck_assert_msg(!upkit_port_open(EV_PORT), "port %d is already in use", EV_PORT);
    snprintf(port, sizeof(port), "%d", EV_PORT);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("PORT", port, 1);
        execlp("node", "node", "--require", MCPGW_SOURCE_DIR "/tests/lib/loopback.cjs", script,
               "streamableHttp", (char *)NULL);
        _exit(127);
    }
    while (!upkit_port_open(EV_PORT)) {
        int st;
        ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "server-everything exited at start");
        ck_assert_msg(upkit_now_ms() < deadline, "server-everything did not listen within 20 s");
        usleep(20000);
    }
    return pid;
}

START_TEST(test_upmcp_works_with_server_everything_over_streamable_http)
{
    struct sess s = {0};
    struct call sum = {0}, longop = {0};
    struct mcpgw_upmcp *u;
    pid_t ev = everything_http_start();
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    u = session(&s, "http://127.0.0.1:18486/mcp", 0);
    ck_assert_int_eq(mcpgw_upmcp_initialize(u, NULL), 0);
    ck_assert(upkit_run_until(base, &s.ready, 20000));
    ck_assert_ptr_nonnull(mcpgw_upmcp_session_id(u));
    ck_assert_int_eq(mcpgw_upmcp_listen(u, NULL), 0);
    RUN_UNTIL(mcpgw_upmcp_listening(u), 10000);
    ck_assert(mcpgw_upmcp_listening(u));
    call(u, &sum, "tools/call", "{\"name\":\"get-sum\",\"arguments\":{\"a\":2,\"b\":40}}");
    ck_assert_msg(sum.err == MCPGW_UPMCP_OK && strstr(sum.result, "42"), "%s %s", sum.why,
                  sum.result);
    call(u, &longop, "tools/call",
         "{\"name\":\"trigger-long-running-operation\",\"arguments\":{\"duration\":0.3,"
         "\"steps\":3},\"_meta\":{\"progressToken\":5}}");
    ck_assert_msg(longop.err == MCPGW_UPMCP_OK, "%s", longop.why);
    ck_assert_int_eq(longop.msgs, 3); /* progress on the answer stream, tagged with its call */
    mcpgw_upmcp_free(u);
    mcpgw_hc_free(hc);
    event_base_free(base);
    upkit_node_stop(ev);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_upmcp_initializes_and_calls_echo,
        test_upmcp_passes_progress_tagged_with_its_call,
        test_upmcp_listens_and_an_adopter_resumes_after_the_last_event,
        test_upmcp_reconnects_a_cut_get_stream_after_its_last_event,
        test_upmcp_reports_the_session_gone_after_an_upstream_restart,
        test_upmcp_refuses_an_answer_over_the_size_cap,
        test_upmcp_close_deletes_the_upstream_session,
        test_upmcp_reports_wrong_id_bad_json_and_202_for_that_request_only,
        test_upmcp_refuses_a_revision_it_does_not_speak,
        test_upmcp_works_with_server_everything_over_streamable_http,
    };
    return mcpgw_check_run("upmcp", "core", tests, sizeof(tests) / sizeof(tests[0]));
}
