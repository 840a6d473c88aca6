/* test_exchange.c - the balancer's request side driven end to end in one process: a client on
 * a socketpair, scripted nodes on real loopback sockets, the real node view and upstreams, and
 * the event loop pumped by the test until what it waits for has happened. */
#include "balancer/config.h"
#include "balancer/exchange.h"
#include "balancer/membership.h"
#include "balancer/nodes.h"
#include "balancer/shared.h"
#include "balancer/upstream.h"
#include "common/util.h"

#include "tests/unit/check-run.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000 /* for anything the test waits for; the test fails past it */

struct fx {
    struct event_base *base;
    struct mcpgw_bal_config cfg;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_nodes *nodes;
    struct mcpgw_bal_upstream_set *ups;
    struct mcpgw_bal_exchange_set *xs;
    int node_lfd[2]; /* scripted nodes' listeners (-1: none) */
    int client;      /* the test's end of the client connection */
};

/* The worker's wiring of the node view to the upstreams (as proxy.c does). */
static void on_changed(void *arg, int slot)
{
    struct fx *f = arg;
    mcpgw_bal_upstream_close_node(f->ups, slot);
}

static void on_marked(void *arg, int slot)
{
    struct fx *f = arg;
    mcpgw_bal_upstream_close_idle(f->ups, slot);
}

static void on_down(void *arg, int slot, int refused)
{
    struct fx *f = arg;
    mcpgw_bal_upstream_cut(f->ups, slot, refused);
}

static const struct mcpgw_bal_nodes_cb nodes_cb = {on_changed, on_marked, on_down};

/* One turn of the loop; sleep a little when idle is set (nothing moved on the test's side). */
static void turn(struct fx *f, int idle)
{
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    if (idle)
        usleep(100);
}

static void pump(struct fx *f)
{
    turn(f, 1);
}

#define PUMP_UNTIL(f, cond)                                                                        \
    do {                                                                                           \
        uint64_t until_ = mcpgw_now_ms() + WAIT_MS;                                                \
        while (!(cond)) {                                                                          \
            ck_assert_msg(mcpgw_now_ms() < until_, "timed out waiting for: %s", #cond);            \
            pump(f);                                                                               \
        }                                                                                          \
    } while (0)

/* A listening loopback socket on a port of the kernel's choice; *port gets it. */
static int listen_any(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* nodes: "live" (a scripted node listens) or "dead" (nothing listens at its port). */
static void setup(struct fx *f, const char *const *nodes, int n, uint64_t buffer_size)
{
    struct mcpgw_bal_node_spec spec[2];
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char err[256];
    int sv[2];

    signal(SIGPIPE, SIG_IGN);
    memset(f, 0, sizeof(*f));
    mcpgw_bal_config_defaults(&f->cfg);
    f->cfg.workers = 1;
    f->cfg.stream_mux = 0; /* the scripted nodes speak HTTP/1.1 */
    if (buffer_size)
        f->cfg.buffer_size = buffer_size;
    f->base = event_base_new();
    ck_assert_ptr_nonnull(f->base);
    f->sh = mcpgw_bal_shared_new(err, sizeof(err));
    ck_assert_ptr_nonnull(f->sh);
    memset(spec, 0, sizeof(spec));
    for (int i = 0; i < n; i++) {
        int port;
        f->node_lfd[i] = listen_any(&port);
        if (strcmp(nodes[i], "dead") == 0) { /* a port nothing listens at any more */
            close(f->node_lfd[i]);
            f->node_lfd[i] = -1;
        }
        snprintf(spec[i].id, sizeof(spec[i].id), "n%d", i + 1);
        snprintf(spec[i].addr, sizeof(spec[i].addr), "127.0.0.1:%d", port);
    }
    ck_assert_int_eq(mcpgw_bal_membership_publish(f->sh, spec, n, err, sizeof(err)), 0);
    f->nodes = mcpgw_bal_nodes_new(f->base, &f->cfg, f->sh, 0, &nodes_cb, f);
    f->ups = mcpgw_bal_upstream_set_new(f->base, &f->cfg, f->nodes);
    f->xs = mcpgw_bal_exchange_set_new(f->base, &f->cfg, &f->sh->workers[0], f->nodes, f->ups, NULL,
                                       NULL, NULL);
    ck_assert_ptr_nonnull(f->xs);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    f->client = sv[1];
    mcpgw_bal_exchange_accept(f->xs, sv[0], (struct sockaddr *)&peer);
}

static void teardown(struct fx *f)
{
    if (f->client >= 0)
        close(f->client);
    for (int i = 0; i < 2; i++)
        if (f->node_lfd[i] > 0)
            close(f->node_lfd[i]);
    mcpgw_bal_exchange_set_free(f->xs);
    mcpgw_bal_upstream_set_free(f->ups);
    mcpgw_bal_nodes_free(f->nodes);
    event_base_free(f->base);
    mcpgw_bal_shared_free(f->sh);
}

/* The next connection the balancer makes to scripted node k. */
static int node_accept(struct fx *f, int k)
{
    int fd = -1;
    PUMP_UNTIL(f, (fd = accept4(f->node_lfd[k], NULL, NULL, SOCK_NONBLOCK)) >= 0 ||
                      (errno != EAGAIN && errno != EWOULDBLOCK));
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Read until buf contains what (NUL-terminated text). */
static size_t read_until(struct fx *f, int fd, char *buf, size_t cap, const char *what)
{
    size_t have = 0;
    uint64_t until = mcpgw_now_ms() + WAIT_MS;
    buf[0] = '\0';
    while (!strstr(buf, what)) {
        ssize_t r = read(fd, buf + have, cap - 1 - have);
        if (r > 0) {
            have += (size_t)r;
            buf[have] = '\0';
            continue;
        }
        ck_assert_msg(r < 0 && errno == EAGAIN, "connection ended before \"%s\": got \"%s\"", what,
                      buf);
        ck_assert_msg(mcpgw_now_ms() < until, "timed out waiting for \"%s\": got \"%s\"", what,
                      buf);
        pump(f);
    }
    return have;
}

static void write_all(struct fx *f, int fd, const char *s, size_t len)
{
    uint64_t until = mcpgw_now_ms() + WAIT_MS;
    while (len) {
        ssize_t w = write(fd, s, len);
        if (w > 0) {
            s += w;
            len -= (size_t)w;
            continue;
        }
        ck_assert_msg(w < 0 && errno == EAGAIN, "write failed: %s", strerror(errno));
        ck_assert(mcpgw_now_ms() < until);
        pump(f);
    }
}

static void write_str(struct fx *f, int fd, const char *s)
{
    write_all(f, fd, s, strlen(s));
}

START_TEST(test_exchange_relays_a_request_and_its_response_and_pools_the_connection)
{
    static const char *const live[] = {"live"};
    struct fx fx, *f = &fx;
    char buf[4096];
    int nfd;

    setup(f, live, 1, 0);
    write_str(f, f->client,
              "POST /mcp HTTP/1.1\r\nHost: gw\r\nMcp-Session-Id: n1.abc\r\n"
              "Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nContent-Length: 5\r\n\r\nhello");
    nfd = node_accept(f, 0);
    read_until(f, nfd, buf, sizeof(buf), "\r\n\r\nhello");
    ck_assert_ptr_nonnull(strstr(buf, "POST /mcp HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Mcp-Session-Id: n1.abc\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "X-Forwarded-For: 127.0.0.1\r\n"));
    ck_assert_ptr_null(strstr(buf, "X-Drop")); /* named by Connection: hop-by-hop */
    write_str(f, nfd,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nok");
    read_until(f, f->client, buf, sizeof(buf), "\r\n\r\nok");
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 200 OK\r\n"));

    /* The next request goes over the same, pooled, connection to the node. */
    write_str(f, f->client, "GET /healthz HTTP/1.1\r\nHost: gw\r\nMcp-Session-Id: n1.abc\r\n\r\n");
    read_until(f, nfd, buf, sizeof(buf), "GET /healthz HTTP/1.1\r\n");
    ck_assert_int_lt(accept4(f->node_lfd[0], NULL, NULL, SOCK_NONBLOCK), 0);
    write_str(f, nfd, "HTTP/1.1 204 No Content\r\n\r\n");
    read_until(f, f->client, buf, sizeof(buf), "204 No Content");
    ck_assert_uint_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].requests), 2);
    ck_assert_int_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].active), 0);
    ck_assert_int_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].idle), 1);
    close(nfd);
    teardown(f);
}
END_TEST

START_TEST(test_exchange_relays_chunked_bodies_as_they_come)
{
    static const char *const live[] = {"live"};
    struct fx fx, *f = &fx;
    char buf[4096];
    int nfd;

    setup(f, live, 1, 0);
    write_str(f, f->client,
              "POST /mcp HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    nfd = node_accept(f, 0);
    /* The first chunk reaches the node before the client sent the rest. */
    read_until(f, nfd, buf, sizeof(buf), "5\r\nhello\r\n");
    ck_assert_ptr_nonnull(strstr(buf, "Transfer-Encoding: chunked\r\n"));
    write_str(f, f->client, "6\r\n world\r\n0\r\n\r\n");
    read_until(f, nfd, buf, sizeof(buf), "6\r\n world\r\n0\r\n\r\n");
    write_str(f, nfd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    read_until(f, f->client, buf, sizeof(buf), "3\r\nabc\r\n");
    write_str(f, nfd, "0\r\n\r\n");
    read_until(f, f->client, buf, sizeof(buf), "0\r\n\r\n");
    /* The exchange is over and the client connection is kept. */
    PUMP_UNTIL(f, MCPGW_LOAD(&f->sh->workers[0].nodes[0].active) == 0);
    ck_assert_uint_eq(mcpgw_bal_exchange_clients(f->xs), 1);
    close(nfd);
    teardown(f);
}
END_TEST

START_TEST(test_exchange_retries_a_refused_connect_on_the_next_node)
{
    static const char *const nodes[] = {"dead", "live"};
    struct fx fx, *f = &fx;
    char buf[4096];
    int nfd;

    setup(f, nodes, 2, 0);
    /* The session's prefix names n1, which refuses: the same bytes go to n2. */
    write_str(
        f, f->client,
        "POST /mcp HTTP/1.1\r\nHost: gw\r\nMcp-Session-Id: n1.abc\r\nContent-Length: 4\r\n\r\n"
        "ping");
    nfd = node_accept(f, 1);
    read_until(f, nfd, buf, sizeof(buf), "\r\n\r\nping");
    ck_assert_ptr_nonnull(strstr(buf, "Mcp-Session-Id: n1.abc\r\n"));
    write_str(f, nfd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong");
    read_until(f, f->client, buf, sizeof(buf), "\r\n\r\npong");
    ck_assert_uint_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].retries), 1);
    ck_assert_uint_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].passive_down), 1);
    ck_assert_uint_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[1].requests), 1);
    close(nfd);
    teardown(f);
}
END_TEST

#define BIG (32u << 20) /* far more than the kernel's socket buffers on both hops hold */

/* The body's byte at offset i. */
static char pattern(size_t i)
{
    return (char)('a' + i % 65536 % 26);
}

/* Whether p[0..n) is the body from offset at. (One assertion per read: Check reports every
 * assertion to its parent process.) */
static int same_as_pattern(const char *p, size_t at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(at + i))
            return 0;
    return 1;
}

/* How much of the body to write next: up to the end of the pattern chunk, or of the body. */
static size_t next_piece(size_t sent)
{
    size_t n = 65536 - sent % 65536;
    return n < BIG - sent ? n : BIG - sent;
}

START_TEST(test_exchange_stops_reading_a_node_whose_client_does_not_read)
{
    static const char *const live[] = {"live"};
    struct fx fx, *f = &fx;
    static char chunk[65536], got[65536 + 1];
    char head[256], buf[4096];
    size_t sent = 0, received = 0, hlen;
    int nfd, still = 0;

    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = pattern(i);
    setup(f, live, 1, 64 * 1024);
    write_str(f, f->client, "GET /big HTTP/1.1\r\nHost: gw\r\n\r\n");
    nfd = node_accept(f, 0);
    read_until(f, nfd, buf, sizeof(buf), "\r\n\r\n");
    hlen =
        (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BIG);
    write_all(f, nfd, head, hlen);
    /* The client reads nothing: the node's writes must stall once the buffers fill, long
     * before the whole body is sent (the balancer stops reading the node). */
    while (sent < BIG && still < 1000) {
        ssize_t w = write(nfd, chunk + sent % sizeof(chunk), next_piece(sent));
        if (w > 0) {
            sent += (size_t)w;
            still = 0;
        } else {
            ck_assert(errno == EAGAIN);
            still++;
        }
        turn(f, w <= 0);
    }
    ck_assert_msg(sent < BIG / 2, "the balancer took %zu bytes the client did not read", sent);
    /* Now the client reads: every byte arrives, in order. */
    read_until(f, f->client, buf, sizeof(buf), "\r\n\r\n");
    {
        char *body = strstr(buf, "\r\n\r\n") + 4;
        size_t n = strlen(body);
        ck_assert(same_as_pattern(body, 0, n));
        received = n;
    }
    while (received < BIG) {
        ssize_t r, w = 0;
        if (sent < BIG) {
            w = write(nfd, chunk + sent % sizeof(chunk), next_piece(sent));
            if (w > 0)
                sent += (size_t)w;
        }
        r = read(f->client, got, sizeof(got) - 1);
        if (r > 0) {
            ck_assert_msg(same_as_pattern(got, received, (size_t)r), "body bytes at %zu differ",
                          received);
            received += (size_t)r;
        } else {
            ck_assert(r < 0 && errno == EAGAIN);
        }
        turn(f, r <= 0 && w <= 0);
    }
    ck_assert_uint_eq(received, BIG);
    close(nfd);
    teardown(f);
}
END_TEST

/* The client is gone when the node's answer arrives: the relay finds out inside the node
 * connection's read callback, closes the client there, and goes on looking at it. Before the
 * deferred close this freed the client under its caller (a use after free under ASan). */
START_TEST(test_exchange_closes_a_client_gone_inside_the_nodes_callback)
{
    static const char *const live[] = {"live"};
    struct fx fx, *f = &fx;
    char buf[4096];
    int nfd;

    setup(f, live, 1, 0);
    write_str(f, f->client, "GET /mcp HTTP/1.1\r\nHost: gw\r\nMcp-Session-Id: n1.abc\r\n\r\n");
    nfd = node_accept(f, 0);
    read_until(f, nfd, buf, sizeof(buf), "\r\n\r\n");
    /* The client will read nothing more: the balancer's next write to it fails (EPIPE). */
    ck_assert_int_eq(shutdown(f->client, SHUT_RD), 0);
    write_str(f, nfd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    PUMP_UNTIL(f, mcpgw_bal_exchange_clients(f->xs) == 0);
    /* The node's connection went with the request, not back to the pool. */
    PUMP_UNTIL(f, read(nfd, buf, sizeof(buf)) == 0);
    ck_assert_int_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].active), 0);
    ck_assert_int_eq(MCPGW_LOAD(&f->sh->workers[0].nodes[0].idle), 0);
    close(nfd);
    teardown(f);
}
END_TEST

int main(void)
{
    /* Check's default of 4 s is short for 32 MiB through a sanitized build on a busy machine;
     * each test still ends by itself (every wait is bounded by WAIT_MS). */
    setenv("CK_DEFAULT_TIMEOUT", "60", 0);
    const TTest *tests[] = {
        test_exchange_relays_a_request_and_its_response_and_pools_the_connection,
        test_exchange_relays_chunked_bodies_as_they_come,
        test_exchange_retries_a_refused_connect_on_the_next_node,
        test_exchange_stops_reading_a_node_whose_client_does_not_read,
        test_exchange_closes_a_client_gone_inside_the_nodes_callback};
    return mcpgw_check_run("exchange", "exchange", tests, sizeof(tests) / sizeof(tests[0]));
}
