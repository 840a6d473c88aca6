/* test_upstream.c - a worker's upstream set (balancer/upstream.c with upstream_h1.c) against
 * a scripted node on a real loopback listener: a request out and its answer back through the
 * callback table, a clean release pooling the connection for the next request, the idle pool
 * closed on a mark, and a cut ending every exchange with the node. */
#include "balancer/upstream.h"

#include "balancer/config.h"
#include "balancer/membership.h"
#include "balancer/nodes.h"
#include "balancer/shared.h"
#include "common/util.h"

#include "tests/unit/check-run.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx {
    struct event_base *base;
    struct mcpgw_bal_config cfg;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_nodes *nodes;
    struct mcpgw_bal_upstream_set *ups;
    int lfd;
    /* what the owner heard */
    int inputs, ends;
    enum mcpgw_bal_upstream_end how;
};

static void nop_changed(void *arg, int slot)
{
}
static void nop_marked(void *arg, int slot)
{
}
static void nop_down(void *arg, int slot, int refused)
{
}
static const struct mcpgw_bal_nodes_cb nodes_cb = {nop_changed, nop_marked, nop_down};

static void on_input(void *owner)
{
    ((struct fx *)owner)->inputs++;
}
static void on_drained(void *owner)
{
}
static void on_end(void *owner, enum mcpgw_bal_upstream_end how, int err, const char *why)
{
    struct fx *f = owner;
    f->ends++;
    f->how = how;
}
static const struct mcpgw_bal_upstream_cb up_cb = {on_input, on_drained, on_end};

#define PUMP_UNTIL(f, cond)                                                                        \
    do {                                                                                           \
        uint64_t until_ = mcpgw_now_ms() + 10000;                                                  \
        while (!(cond)) {                                                                          \
            ck_assert_msg(mcpgw_now_ms() < until_, "timed out waiting for: %s", #cond);            \
            event_base_loop((f)->base, EVLOOP_NONBLOCK);                                           \
            usleep(200);                                                                           \
        }                                                                                          \
    } while (0)

static void setup(struct fx *f)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    struct mcpgw_bal_node_spec spec;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    memset(f, 0, sizeof(*f));
    mcpgw_bal_config_defaults(&f->cfg);
    f->cfg.workers = 1;
    f->cfg.stream_mux = 0;
    f->base = event_base_new();
    f->sh = mcpgw_bal_shared_new(err, sizeof(err));
    ck_assert_ptr_nonnull(f->sh);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &len), 0);
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.id, sizeof(spec.id), "n1");
    snprintf(spec.addr, sizeof(spec.addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    ck_assert_int_eq(mcpgw_bal_membership_publish(f->sh, &spec, 1, err, sizeof(err)), 0);
    f->nodes = mcpgw_bal_nodes_new(f->base, &f->cfg, f->sh, 0, &nodes_cb, f);
    f->ups = mcpgw_bal_upstream_set_new(f->base, &f->cfg, f->nodes);
    ck_assert_ptr_nonnull(f->ups);
}

static void teardown(struct fx *f)
{
    mcpgw_bal_upstream_set_free(f->ups);
    mcpgw_bal_nodes_free(f->nodes);
    close(f->lfd);
    event_base_free(f->base);
    mcpgw_bal_shared_free(f->sh);
}

/* The next connection from the balancer to the scripted node, or -1 within ms. */
static int node_accept(struct fx *f, unsigned ms)
{
    uint64_t end = mcpgw_now_ms() + ms;
    int fd;
    while ((fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK)) < 0 && mcpgw_now_ms() < end) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        usleep(200);
    }
    return fd;
}

/* Read from the node's side until what arrives (or EOF: returns 0). */
static int node_read_until(struct fx *f, int fd, const char *what)
{
    char buf[4096];
    size_t have = 0;
    uint64_t end = mcpgw_now_ms() + 10000;
    buf[0] = '\0';
    while (!strstr(buf, what) && mcpgw_now_ms() < end) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (r == 0)
            return 0;
        if (r > 0) {
            have += (size_t)r;
            buf[have] = '\0';
        } else {
            event_base_loop(f->base, EVLOOP_NONBLOCK);
            usleep(200);
        }
    }
    return strstr(buf, what) != NULL;
}

static struct mcpgw_bal_upstream *send_request(struct fx *f, const char *path)
{
    char why[128];
    int err = 0;
    struct evbuffer *head = evbuffer_new();
    struct mcpgw_bal_upstream *u = mcpgw_bal_upstream_get(f->ups, 0, 0, &up_cb, f, &err);
    ck_assert_msg(u != NULL, "get: %s", strerror(err));
    evbuffer_add_printf(head, "GET %s HTTP/1.1\r\nHost: n1\r\n\r\n", path);
    ck_assert_int_eq(u->ops->send_head(u, head, why, sizeof(why)), 0);
    u->ops->flush(u);
    evbuffer_free(head);
    return u;
}

START_TEST(test_upstream_answer_returns_and_a_clean_release_pools_the_connection)
{
    struct fx f;
    struct mcpgw_bal_upstream *u;
    const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    int nfd;
    setup(&f);
    u = send_request(&f, "/one");
    nfd = node_accept(&f, 10000);
    ck_assert_int_ge(nfd, 0);
    ck_assert(node_read_until(&f, nfd, "GET /one HTTP/1.1"));
    ck_assert_int_eq(f.sh->workers[0].nodes[0].active, 1);
    ck_assert_int_eq(write(nfd, resp, sizeof(resp) - 1), (ssize_t)sizeof(resp) - 1);
    PUMP_UNTIL(&f, evbuffer_get_length(u->ops->input(u)) >= sizeof(resp) - 1);
    ck_assert_int_ge(f.inputs, 1);
    evbuffer_drain(u->ops->input(u), sizeof(resp) - 1);
    u->ops->answered(u);
    u->ops->release(u, 1);
    ck_assert_int_eq(f.sh->workers[0].nodes[0].active, 0);
    ck_assert_int_eq(f.sh->workers[0].nodes[0].idle, 1);
    /* the next request takes the pooled connection: the node sees no new one */
    u = send_request(&f, "/two");
    ck_assert(node_read_until(&f, nfd, "GET /two HTTP/1.1"));
    ck_assert_int_eq(node_accept(&f, 100), -1);
    u->ops->release(u, 0);
    ck_assert_int_eq(f.ends, 0);
    close(nfd);
    teardown(&f);
}
END_TEST

START_TEST(test_upstream_close_idle_empties_the_pool)
{
    struct fx f;
    struct mcpgw_bal_upstream *u;
    const char resp[] = "HTTP/1.1 204 No Content\r\n\r\n";
    int nfd;
    setup(&f);
    u = send_request(&f, "/x");
    nfd = node_accept(&f, 10000);
    ck_assert(node_read_until(&f, nfd, "GET /x"));
    ck_assert_int_eq(write(nfd, resp, sizeof(resp) - 1), (ssize_t)sizeof(resp) - 1);
    PUMP_UNTIL(&f, evbuffer_get_length(u->ops->input(u)) >= sizeof(resp) - 1);
    evbuffer_drain(u->ops->input(u), sizeof(resp) - 1);
    u->ops->answered(u);
    u->ops->release(u, 1);
    ck_assert_int_eq(f.sh->workers[0].nodes[0].idle, 1);
    mcpgw_bal_upstream_close_idle(f.ups, 0);
    ck_assert_int_eq(f.sh->workers[0].nodes[0].idle, 0);
    ck_assert(!node_read_until(&f, nfd, "never")); /* the node sees EOF */
    close(nfd);
    teardown(&f);
}
END_TEST

START_TEST(test_upstream_cut_ends_every_exchange_with_the_node)
{
    struct fx f;
    struct mcpgw_bal_upstream *u1, *u2;
    int a, b;
    setup(&f);
    u1 = send_request(&f, "/a");
    u2 = send_request(&f, "/b");
    a = node_accept(&f, 10000);
    b = node_accept(&f, 10000);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    PUMP_UNTIL(&f, u1->ops->sent(u1) && u2->ops->sent(u2));
    ck_assert(mcpgw_bal_upstream_busy(f.ups, 0));
    ck_assert_uint_eq(mcpgw_bal_upstream_cut(f.ups, 0, 0), 2);
    ck_assert_int_eq(f.ends, 2);
    ck_assert_int_eq(f.how, MCPGW_BAL_UPSTREAM_CUT);
    u1->ops->release(u1, 0);
    u2->ops->release(u2, 0);
    ck_assert(!mcpgw_bal_upstream_busy(f.ups, 0));
    ck_assert_int_eq(f.sh->workers[0].nodes[0].active, 0);
    close(a);
    close(b);
    teardown(&f);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_upstream_answer_returns_and_a_clean_release_pools_the_connection,
        test_upstream_close_idle_empties_the_pool,
        test_upstream_cut_ends_every_exchange_with_the_node,
    };
    return mcpgw_check_run("upstream", "h1 pool", tests, sizeof(tests) / sizeof(tests[0]));
}
