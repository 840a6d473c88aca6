/* nodekit.h - a whole node in the test process for unit suites: the memory store wired to
 * node/cluster.c's event sink, the HTTP server with node/transport.c's handler on a loopback
 * port, and a blocking HTTP/1.1 client that pumps the node's loop while it waits. Nothing is
 * mocked: requests go through the real httpd, transport, protocol and cluster code.
 * Include once per suite after <check.h> (or, outside Check, define NK_NO_CHECK and the two
 * ck_assert macros used here first, as the fuzz drivers do). */
#ifndef MCPGW_TESTS_NODEKIT_H
#define MCPGW_TESTS_NODEKIT_H

#include "common/httpd.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/cluster.h"
#include "node/config.h"
#include "node/listen.h"
#include "node/node-t.h"
#include "node/notes.h"
#include "node/registry.h"
#include "node/store.h"
#include "node/transport.h"

#ifndef NK_NO_CHECK
#include <check.h>
#endif
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef NK_TIMEOUT_MS
#define NK_TIMEOUT_MS 5000
#endif

struct nk {
    struct mcpgw_node n;
    int port;
    int started;           /* mcpgw_cluster_start ran */
    const char *store_url; /* set before nk_start for another store than "memory" */
    uint64_t c[32];
    int64_t g[8];
};

/* A response as the client read it. */
struct nk_resp {
    int status;
    char sid[128];   /* Mcp-Session-Id, or "" */
    char body[8192]; /* the body as sent (chunked framing left in for SSE) */
    char all[16384];
    size_t len;
};

static inline uint64_t nk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void nk_pump(struct nk *k)
{
    event_base_loop(k->n.base, EVLOOP_NONBLOCK);
}

/* Pump the loop for ms. */
static inline void nk_run_for(struct nk *k, unsigned ms)
{
    uint64_t end = nk_now_ms() + ms;
    while (nk_now_ms() < end) {
        nk_pump(k);
        usleep(1000);
    }
}

/* A node on 127.0.0.1:port with the defaults of node/config.c; tweak k->n.cfg before
 * nk_start. Every counter points into k->c / k->g. */
static inline struct nk *nk_new(int port)
{
    struct nk *k = xcalloc(1, sizeof(*k));
    struct mcpgw_node_stats *st = &k->n.st;
    uint64_t **cs[] = {&st->requests,
                       &st->notifications,
                       &st->errors,
                       &st->http_rejects,
                       &st->sessions_created,
                       &st->sessions_expired,
                       &st->sessions_deleted,
                       &st->events_sent,
                       &st->events_replayed,
                       &st->replay_gaps,
                       &st->streams_dropped,
                       &st->stalls,
                       &st->sessions_claimed,
                       &st->sessions_moved,
                       &st->sessions_lost,
                       &st->store_errors,
                       &st->retries_answered,
                       &st->fanout_dropped,
                       &st->fanout_streams_ended,
                       &st->conns_timed_out,
                       &st->sse_keepalives};
    int64_t **gs[] = {&st->sessions, &st->streams, &st->calls_inflight, &st->store_up,
                      &st->fanout_queued};
    _Static_assert(sizeof(cs) / sizeof(cs[0]) <= 32, "k->c");
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
        *cs[i] = &k->c[i];
    for (size_t i = 0; i < sizeof(gs) / sizeof(gs[0]); i++)
        *gs[i] = &k->g[i];
    mcpgw_node_config_defaults(&k->n.cfg);
    k->port = port;
    return k;
}

static inline void nk_start(struct nk *k, int cluster)
{
    struct mcpgw_httpd_config hc;
    struct mcpgw_store_config sc;
    char err[256], addr[64];
    k->n.base = event_base_new();
    event_base_priority_init(k->n.base, 3);
    k->n.started_ms = mcpgw_now_ms();
    k->n.reg = mcpgw_registry_new(k->n.cfg.shard_bits);
    k->n.metrics = mcpgw_metrics_new();
    k->n.st.latency = mcpgw_metrics_hist(k->n.metrics, "t_seconds", "t", "");
    k->n.notes = mcpgw_notes_new();
    k->n.listen = mcpgw_listen_set_new(&k->n, 2); /* as node/main.c: subscriptions/listen */
    memset(&sc, 0, sizeof(sc));
    sc.url = k->store_url ? k->store_url : "memory";
    sc.node_id = k->n.cfg.node_id;
    sc.session_ttl_ms = k->n.cfg.session_idle_ms;
    sc.base = k->n.base;
    sc.reg = k->n.reg;
    k->n.store = mcpgw_store_new(&sc, &mcpgw_cluster_store_events, &k->n, err, sizeof(err));
    ck_assert_msg(k->n.store != NULL, "%s", err);
    mcpgw_httpd_config_defaults(&hc);
    k->n.httpd = mcpgw_httpd_new(k->n.base, &hc, mcpgw_transport_handle, &k->n);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", k->port);
    ck_assert_msg(mcpgw_httpd_listen(k->n.httpd, addr, err, sizeof(err)) == 0, "%s", err);
    if (cluster) {
        mcpgw_cluster_start(&k->n);
        k->started = 1;
    }
}

static inline void nk_free(struct nk *k)
{
    nk_pump(k);
    if (k->started)
        mcpgw_cluster_stop(&k->n);
    mcpgw_store_free(k->n.store);
    mcpgw_listen_set_free(k->n.listen);
    mcpgw_httpd_free(k->n.httpd);
    mcpgw_notes_free(k->n.notes);
    mcpgw_metrics_free(k->n.metrics);
    mcpgw_registry_free(k->n.reg);
    mcpgw_node_config_free(&k->n.cfg);
    event_base_free(k->n.base);
    free(k);
}

static inline int nk_connect(struct nk *k)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)k->port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    /* Thousands of short connections a second (the fuzz driver) can run out of local ports for
     * a moment: that is the test host's limit, not the node's, so wait for one. Anything else
     * (a refused connection: the node stopped listening) fails at once. A signal (libFuzzer's
     * timeout watchdog ticks every second) may interrupt connect: the kernel goes on with it,
     * and asking again says how it went (EALREADY meanwhile, EISCONN once done). */
    for (int tries = 0; connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0; tries++) {
        int e = errno;
        if (e == EISCONN)
            break;
        ck_assert_msg((e == EADDRNOTAVAIL || e == EINTR || e == EALREADY) && tries < 500,
                      "connect: %s", strerror(e));
        if (e != EINTR)
            usleep(10000);
    }
    return fd;
}

/* Send one request on a new connection ("Connection: close") and read until `until` appears
 * in what came back (NULL: until the server closes), pumping the loop. sid may be NULL, body
 * NULL for none. Returns 1 when the wait ended as asked. The connection is closed. */
static inline int nk_http(struct nk *k, const char *method, const char *sid, const char *extra,
                          const char *body, const char *until, struct nk_resp *r)
{
    char req[8192];
    const char *p;
    uint64_t end = nk_now_ms() + NK_TIMEOUT_MS;
    int fd = nk_connect(k), n, done = 0;
    size_t blen = body ? strlen(body) : 0;
    memset(r, 0, sizeof(*r));
    n = snprintf(req, sizeof(req),
                 "%s /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                 "%s%s%s%s%sContent-Length: %zu\r\n\r\n%s",
                 method,
                 /* extra may name its own version (a 2026-07-28 request) */
                 extra && strcasestr(extra, "MCP-Protocol-Version:")
                     ? ""
                     : "MCP-Protocol-Version: 2025-11-25\r\n",
                 sid ? "Mcp-Session-Id: " : "", sid ? sid : "", sid ? "\r\n" : "",
                 extra ? extra : "", blen, body ? body : "");
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    while (nk_now_ms() < end) {
        ssize_t got;
        nk_pump(k);
        got = recv(fd, r->all + r->len, sizeof(r->all) - 1 - r->len, MSG_DONTWAIT);
        if (got > 0) {
            r->len += (size_t)got;
            r->all[r->len] = '\0';
            if (until && strstr(r->all, until)) {
                done = 1;
                break;
            }
        } else if (got == 0) {
            done = !until;
            break;
        } else {
            usleep(500);
        }
    }
    close(fd);
    nk_pump(k);
    sscanf(r->all, "HTTP/1.1 %d", &r->status);
    if ((p = strcasestr(r->all, "\r\nMcp-Session-Id: ")) != NULL)
        sscanf(p + 18, "%127[^\r\n]", r->sid);
    if ((p = strstr(r->all, "\r\n\r\n")) != NULL)
        snprintf(r->body, sizeof(r->body), "%s", p + 4);
    return done;
}

/* POST a JSON-RPC message; waits for the whole answer. */
static inline void nk_post(struct nk *k, const char *sid, const char *json, struct nk_resp *r)
{
    ck_assert_msg(nk_http(k, "POST", sid, NULL, json, NULL, r), "no complete answer to %s", json);
}

/* initialize (and notifications/initialized when ready): the new session's id in sid. */
static inline void nk_init(struct nk *k, int ready, char *sid, size_t sidlen)
{
    struct nk_resp r;
    nk_post(k, NULL,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
            "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
            "\"unit\",\"version\":\"1\"}}}",
            &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(r.sid[0], "initialize gave no session id: %s", r.all);
    snprintf(sid, sidlen, "%s", r.sid);
    if (ready) {
        nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &r);
        ck_assert_int_eq(r.status, 202);
    }
}

/* Open the session's GET stream on a connection of its own; returns the client socket once the
 * stream has begun (its head read). */
static inline int nk_get_stream(struct nk *k, const char *sid)
{
    char req[512], buf[4096];
    size_t len = 0;
    uint64_t end = nk_now_ms() + NK_TIMEOUT_MS;
    int fd = nk_connect(k),
        n = snprintf(req, sizeof(req),
                     "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                     "MCP-Protocol-Version: 2025-11-25\r\nMcp-Session-Id: %s\r\n\r\n",
                     sid);
    ck_assert_int_eq(send(fd, req, (size_t)n, 0), n);
    buf[0] = '\0';
    while (!strstr(buf, "text/event-stream") && nk_now_ms() < end) {
        ssize_t got;
        nk_pump(k);
        got = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
        if (got > 0) {
            len += (size_t)got;
            buf[len] = '\0';
        } else if (got == 0) {
            break;
        } else {
            usleep(500);
        }
    }
    ck_assert_msg(strstr(buf, "text/event-stream") != NULL, "GET stream refused: %s", buf);
    return fd;
}

/* Read from fd, pumping, until needle appears (1) or the peer closes or time is up (0). */
static inline int nk_read_until(struct nk *k, int fd, const char *needle, char *buf, size_t cap)
{
    size_t len = strlen(buf);
    uint64_t end = nk_now_ms() + NK_TIMEOUT_MS;
    while (nk_now_ms() < end) {
        ssize_t got;
        nk_pump(k);
        got = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (got > 0) {
            len += (size_t)got;
            buf[len] = '\0';
        }
        if (strstr(buf, needle))
            return 1;
        if (got == 0)
            return 0;
        if (got < 0)
            usleep(500);
    }
    return 0;
}

static inline struct mcpgw_session *nk_session(struct nk *k, const char *sid)
{
    return mcpgw_registry_lookup(k->n.reg, sid, strlen(sid));
}

#endif
