/* test_upsess.c - per-client upstream sessions between two gateway nodes that share a real
 * redis-server, in front of a real upstream mcpgw-node: a client session's calls go to its own
 * upstream session, the upstream's server-to-client requests reach the client on the call's
 * stream and its answer goes back, and when the node holding the session disappears the node
 * that claims it continues the same upstream session (the upstream counts one initialize) and
 * receives the upstream notifications sent during the gap exactly once.
 *
 * One process, one event loop for both gateway nodes; the client side is plain sockets.
 * Ports 16990-16996. */
#include "node/upsess.h"

#include "common/httpclient.h"
#include "common/httpd.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/call.h"
#include "node/frame.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"
#include "tests/unit/check-run.h"
#include "tests/unit/upkit.h"

#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REDIS_PORT 16990
#define UP_PORT    16991
#define A_PORT     16992
#define B_PORT     16993
#define UP_URL     "http://127.0.0.1:16991/mcp"
#define SID        "gw.session-1"

static struct event_base *base;
static struct mcpgw_hc *hc;

/* ---- processes ---- */

static pid_t redis_start(void)
{
    char port[16];
    long deadline = upkit_now_ms() + 10000;
    pid_t pid;
    ck_assert_msg(!upkit_port_open(REDIS_PORT), "port %d is already in use", REDIS_PORT);
    snprintf(port, sizeof(port), "%d", REDIS_PORT);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        perror("exec redis-server");
        _exit(127);
    }
    while (!upkit_port_open(REDIS_PORT)) {
        ck_assert_msg(upkit_now_ms() < deadline, "redis-server did not listen within 10 s");
        usleep(10000);
    }
    return pid;
}

/* ---- a gateway node: just what the per-client upstream path uses ---- */

struct gw {
    struct mcpgw_node n;
    uint64_t counters[32];
    int64_t gauges[8];
    struct mcpgw_http_conn *conn; /* the last request's connection */
};

static void gw_handler(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    ((struct gw *)arg)->conn = c;
}

static struct gw *gw_new(const char *id, int port)
{
    struct gw *g = xcalloc(1, sizeof(*g));
    struct mcpgw_node_stats *st = &g->n.st;
    struct mcpgw_httpd_config hcfg;
    struct mcpgw_store_config sc = {"redis://127.0.0.1:16990", id, 600000, base, NULL};
    struct mcpgw_upmcp_cfg up = {.name = "up", .url = UP_URL, .timeout_ms = 10000};
    char err[256], addr[64];
    uint64_t *c = g->counters;
    g->n.base = base;
    g->n.reg = mcpgw_registry_new(2);
    g->n.metrics = mcpgw_metrics_new();
    g->n.cfg.client_request_timeout_ms = 10000;
    g->n.cfg.tool_timeout_ms = 10000;
    g->n.cfg.sse_retry_ms = 1000;
    st->requests = c++, st->notifications = c++, st->errors = c++, st->http_rejects = c++;
    st->sessions_created = c++, st->sessions_expired = c++, st->sessions_deleted = c++;
    st->events_sent = c++, st->events_replayed = c++, st->replay_gaps = c++;
    st->streams_dropped = c++, st->stalls = c++, st->sessions_claimed = c++;
    st->sessions_moved = c++, st->sessions_lost = c++, st->store_errors = c++;
    st->retries_answered = c++;
    st->sessions = &g->gauges[0], st->streams = &g->gauges[1], st->calls_inflight = &g->gauges[2];
    st->store_up = &g->gauges[3], st->fanout_queued = &g->gauges[4];
    st->latency = mcpgw_metrics_hist(g->n.metrics, "t_seconds", "t", "");
    sc.reg = g->n.reg;
    g->n.store = mcpgw_store_new(&sc, NULL, NULL, err, sizeof(err));
    ck_assert_msg(g->n.store, "%s", err);
    mcpgw_httpd_config_defaults(&hcfg);
    g->n.httpd = mcpgw_httpd_new(base, &hcfg, gw_handler, g);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ck_assert_msg(mcpgw_httpd_listen(g->n.httpd, addr, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(mcpgw_upsess_register(&g->n, &up), 0);
    for (long d = upkit_now_ms() + 10000; !mcpgw_store_up(g->n.store) && upkit_now_ms() < d;) {
        int z = 0;
        upkit_run_until(base, &z, 20);
    }
    ck_assert_msg(mcpgw_store_up(g->n.store), "node %s: redis not reachable", id);
    return g;
}

/* ---- the client side: one socket per request ---- */

struct client {
    int fd;
    char out[1 << 16];
    size_t len;
};

static void pump_read(struct client *k)
{
    int z = 0;
    ssize_t r;
    upkit_run_until(base, &z, 5);
    r = recv(k->fd, k->out + k->len, sizeof(k->out) - 1 - k->len, MSG_DONTWAIT);
    if (r > 0) {
        k->len += (size_t)r;
        k->out[k->len] = '\0';
    }
}

static int read_until(struct client *k, const char *needle, long ms)
{
    long d = upkit_now_ms() + ms;
    while (!strstr(k->out, needle) && upkit_now_ms() < d)
        pump_read(k);
    return strstr(k->out, needle) != NULL;
}

static void read_for(struct client *k, long ms)
{
    long d = upkit_now_ms() + ms;
    while (upkit_now_ms() < d)
        pump_read(k);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Connect to the gateway at port and send a request; returns once the node has its
 * connection in g->conn. */
static struct client *client_request(struct gw *g, int port, const char *method)
{
    struct client *k = xcalloc(1, sizeof(*k));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256];
    long d = upkit_now_ms() + 5000;
    int n;
    a.sin_addr.s_addr = htonl(0x7f000001);
    g->conn = NULL;
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(k->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    n = snprintf(req, sizeof(req),
                 "%s /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}", method);
    ck_assert_int_eq(send(k->fd, req, (size_t)n, 0), n);
    while (!g->conn && upkit_now_ms() < d) {
        int z = 0;
        upkit_run_until(base, &z, 5);
    }
    ck_assert_ptr_nonnull(g->conn);
    return k;
}

static void client_free(struct client *k)
{
    close(k->fd);
    free(k);
}

/* A client call on g's session s served by the per-client upstream "up". */
static struct client *call_up(struct gw *g, int port, struct mcpgw_session *s, int id,
                              const char *method, const char *params)
{
    struct client *k = client_request(g, port, "POST");
    json_object *jid = json_object_new_int(id), *p = json_tokener_parse(params);
    struct mcpgw_call *c = mcpgw_call_new(&g->n, s, jid, g->conn, p);
    json_object_put(jid);
    mcpgw_upsess_call(c, "up", method, p);
    return k;
}

/* Open the client's GET stream on g for s. */
static struct client *get_stream(struct gw *g, int port, struct mcpgw_session *s)
{
    struct client *k = client_request(g, port, "GET");
    mcpgw_frame_sse_begin(&g->n, s, g->conn, 0);
    mcpgw_stream_attach_live(&g->n, s, g->conn);
    return k;
}

/* ---- the upstream, seen directly ---- */

static int flag_ready;
static void w_ready(void *arg, enum mcpgw_upmcp_err err, const char *why)
{
    ck_assert_msg(err == MCPGW_UPMCP_OK, "writer initialize: %s", why);
    flag_ready = 1;
}
static const struct mcpgw_upmcp_cbs wcbs = {w_ready, NULL, NULL};

static int w_done;
static void w_reply(void *arg, enum mcpgw_upmcp_err err, const char *why,
                    const struct mcpgw_jsonrpc_msg *m)
{
    ck_assert_msg(err == MCPGW_UPMCP_OK, "notes_write: %s", why);
    w_done = 1;
}
static const struct mcpgw_upmcp_call_cbs wccbs = {NULL, w_reply};

static void note_write(struct mcpgw_upmcp *w, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p),
             "{\"name\":\"notes_write\",\"arguments\":{\"name\":\"k\",\"text\":\"%s\"}}", text);
    w_done = 0;
    ck_assert_ptr_nonnull(
        mcpgw_upmcp_request(w, "tools/call", json_tokener_parse(p), &wccbs, NULL));
    ck_assert(upkit_run_until(base, &w_done, 10000));
}

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
/* How many sessions the upstream initialized: mcpgw_node_sessions_created_total. */
static long upstream_initializes(void)
{
    static struct metric m;
    static const struct mcpgw_hc_cbs cbs = {NULL, m_body, m_done};
    struct mcpgw_hc_opts o = {.url = "http://127.0.0.1:16991/metrics", .timeout_ms = 5000};
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

/* The session record's up:up field, through redis-cli. */
static void record_field(char *out, size_t len)
{
    char cmd[256];
    FILE *f;
    size_t n;
    snprintf(cmd, sizeof(cmd), "redis-cli -p %d HGET 'mcpgw:{%s}:s' up:up", REDIS_PORT, SID);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    pclose(f);
}

/* ---- the session ---- */

static int created;
static void on_created(void *arg, int err)
{
    ck_assert_int_eq(err, 0);
    created = 1;
}

static struct mcpgw_session *session_on(struct gw *g, int sampling)
{
    struct mcpgw_session *s = xcalloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), SID);
    s->log_level = -1;
    s->state = MCPGW_SESSION_READY;
    s->client_caps = sampling ? MCPGW_CAP_SAMPLING : 0;
    s->client = xstrdup(sampling ? "{\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"},"
                                   "\"capabilities\":{\"sampling\":{}}}"
                                 : "{\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"},"
                                   "\"capabilities\":{}}");
    ck_assert_int_eq(mcpgw_registry_insert(g->n.reg, s), 0);
    created = 0;
    mcpgw_store_create(g->n.store, s, on_created, NULL);
    ck_assert(upkit_run_until(base, &created, 10000));
    return s;
}

struct claimed {
    int done;
    struct mcpgw_session *s;
};
static void on_claimed(void *arg, struct mcpgw_session *s, int err)
{
    struct claimed *c = arg;
    ck_assert_int_eq(err, 0);
    c->s = s;
    c->done = 1;
}

/* The node leaves without a word (what a kill -9 does to the upstream: its connections close). */
static void gw_vanish(struct gw *g, struct mcpgw_session *s)
{
    while (s->calls)
        mcpgw_call_abort(s->calls);
    mcpgw_upsess_release(&g->n, s, 0);
    mcpgw_stream_end(s);
    mcpgw_registry_remove(g->n.reg, s);
    mcpgw_session_free(s);
}

static void gw_free(struct gw *g)
{
    mcpgw_store_free(g->n.store);
    mcpgw_upsess_free_all(&g->n);
    mcpgw_httpd_free(g->n.httpd);
    mcpgw_registry_free(g->n.reg);
    mcpgw_metrics_free(g->n.metrics);
    free(g);
}

START_TEST(test_upsess_follows_its_client_session_to_another_node)
{
    pid_t redis, up;
    struct gw *a, *b;
    struct mcpgw_session *s;
    struct mcpgw_upmcp *w;
    struct client *k, *ga, *gb;
    struct claimed cl = {0};
    struct mcpgw_upmcp_cfg wcfg = {.name = "writer", .url = UP_URL};
    char field[512];
    long before;
    signal(SIGPIPE, SIG_IGN);
    redis = redis_start();
    up = upkit_node_start(UP_PORT);
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    a = gw_new("A", A_PORT);
    b = gw_new("B", B_PORT);
    s = session_on(a, 0);

    /* a call through the client's own upstream session */
    k = call_up(a, A_PORT, s, 1, "tools/call",
                "{\"name\":\"echo\",\"arguments\":{\"text\":\"through A\"}}");
    ck_assert_msg(read_until(k, "through A", 10000), "no answer: %s", k->out);
    client_free(k);
    k = call_up(a, A_PORT, s, 2, "resources/subscribe", "{\"uri\":\"mcpgw://notes/k\"}");
    ck_assert_msg(read_until(k, "\"result\"", 10000), "subscribe: %s", k->out);
    client_free(k);
    ga = get_stream(a, A_PORT, s);

    /* another client writes at the upstream: A's client hears it, the record follows */
    w = mcpgw_upmcp_new(hc, &wcfg, &wcbs, NULL);
    ck_assert_int_eq(mcpgw_upmcp_initialize(w, NULL), 0);
    ck_assert(upkit_run_until(base, &flag_ready, 10000));
    note_write(w, "v1");
    ck_assert_msg(read_until(ga, "mcpgw://notes/k", 10000), "A's GET stream: %s", ga->out);
    for (long d = upkit_now_ms() + 10000; upkit_now_ms() < d;) {
        int z = 0;
        record_field(field, sizeof(field));
        if (count(field, "\n") >= 2 && field[strlen(field) - 2] != '\n')
            break; /* "<revision>\n<session id>\n<event id>" with an event id */
        upkit_run_until(base, &z, 20);
    }
    ck_assert_msg(count(field, "\n") >= 2 && field[strlen(field) - 2] != '\n',
                  "the record has no event id: '%s'", field);
    before = upstream_initializes();
    ck_assert_int_eq(before, 2); /* the gateway's session for this client, and the writer */

    /* A disappears; three writes while nobody holds the session */
    gw_vanish(a, s);
    client_free(ga);
    note_write(w, "v2");
    note_write(w, "v3");
    note_write(w, "v4");

    /* B takes the session over (what a claim does) and the client's GET stream comes back */
    mcpgw_store_claim(b->n.store, SID, strlen(SID), on_claimed, &cl);
    ck_assert(upkit_run_until(base, &cl.done, 10000));
    ck_assert_ptr_nonnull(cl.s->up_state);
    ck_assert_int_eq(mcpgw_registry_insert(b->n.reg, cl.s), 0);
    mcpgw_upsess_claimed(&b->n, cl.s);
    gb = get_stream(b, B_PORT, cl.s);
    ck_assert_msg(read_until(gb, "\"io.mcpgw/version\":4", 10000), "B's GET stream: %s", gb->out);
    read_for(gb, 500);
    /* each gap write exactly once, nothing from before the gap */
    ck_assert_int_eq(count(gb->out, "notifications/resources/updated"), 3);
    ck_assert_int_eq(count(gb->out, "\"io.mcpgw/version\":1"), 0);
    ck_assert_int_eq(count(gb->out, "\"io.mcpgw/version\":2"), 1);
    ck_assert_int_eq(count(gb->out, "\"io.mcpgw/version\":3"), 1);

    /* calls go on in the same upstream session: no second initialize */
    k = call_up(b, B_PORT, cl.s, 3, "tools/call",
                "{\"name\":\"echo\",\"arguments\":{\"text\":\"through B\"}}");
    ck_assert_msg(read_until(k, "through B", 10000), "no answer: %s", k->out);
    client_free(k);
    ck_assert_int_eq(upstream_initializes(), before);

    gw_vanish(b, cl.s);
    client_free(gb);
    mcpgw_upmcp_free(w);
    gw_free(a);
    gw_free(b);
    mcpgw_hc_free(hc);
    event_base_free(base);
    upkit_node_stop(up);
    upkit_node_stop(redis);
}
END_TEST

/* The upstream asks the client for a completion during a call: the request reaches the client
 * on the call's stream under the session's own id, and the client's answer goes back. */
START_TEST(test_upsess_forwards_sampling_and_routes_the_answer_back)
{
    pid_t redis, up;
    struct gw *a;
    struct mcpgw_session *s;
    struct mcpgw_call *c;
    struct client *k;
    const char *p;
    json_object *answer;
    int64_t out_id;
    signal(SIGPIPE, SIG_IGN);
    redis = redis_start();
    up = upkit_node_start(UP_PORT);
    base = event_base_new();
    hc = mcpgw_hc_new(base);
    a = gw_new("A", A_PORT);
    s = session_on(a, 1);
    k = call_up(a, A_PORT, s, 7, "tools/call",
                "{\"name\":\"test_sampling\",\"arguments\":{\"prompt\":\"hi\"}}");
    ck_assert_msg(read_until(k, "sampling/createMessage", 10000), "no request: %s", k->out);
    p = strstr(k->out, "\"id\":");
    ck_assert_ptr_nonnull(p);
    out_id = strtoll(p + 5, NULL, 10);
    c = mcpgw_call_find_out(s, out_id);
    ck_assert_msg(c, "no call waits for id %lld: %s", (long long)out_id, k->out);
    answer = json_tokener_parse("{\"role\":\"assistant\",\"model\":\"m\",\"content\":"
                                "{\"type\":\"text\",\"text\":\"from the client\"}}");
    mcpgw_call_reply(c, answer, NULL); /* borrowed, as protocol.c passes it */
    json_object_put(answer);
    ck_assert_msg(read_until(k, "LLM response: from the client", 10000), "no result: %s", k->out);
    client_free(k);
    gw_vanish(a, s);
    gw_free(a);
    mcpgw_hc_free(hc);
    event_base_free(base);
    upkit_node_stop(up);
    upkit_node_stop(redis);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_upsess_follows_its_client_session_to_another_node,
        test_upsess_forwards_sampling_and_routes_the_answer_back,
    };
    return mcpgw_check_run("upsess", "core", tests, sizeof(tests) / sizeof(tests[0]));
}
