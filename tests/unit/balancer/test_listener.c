/* test_listener.c - a worker's listening socket (balancer/listener.c) on a real loopback port
 * and event loop: every connection reaches the accept callback, also past the budget of
 * first-priority accepts and after a rearm; freeing it closes the socket. */
#include "balancer/listener.h"

#include "common/util.h"

#include "tests/unit/check-run.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS 300 /* more than the listener's first-priority budget (256) */

struct got {
    int n;
    int fds[CONNS];
    int nonblock;
};

static void on_accept(void *arg, int fd, const struct sockaddr *sa)
{
    struct got *g = arg;
    ck_assert_int_eq(sa->sa_family, AF_INET);
    if (fcntl(fd, F_GETFL) & O_NONBLOCK)
        g->nonblock++;
    if (g->n < CONNS)
        g->fds[g->n++] = fd;
    else
        close(fd);
}

static int listen_any(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 512), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int dial(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = htons((uint16_t)port);
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? fd : (close(fd), -1);
}

static void pump_until(struct event_base *base, struct got *g, int want)
{
    uint64_t end = mcpgw_now_ms() + 10000;
    while (g->n < want && mcpgw_now_ms() < end) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(200);
    }
}

START_TEST(test_listener_accepts_every_connection_past_its_budget)
{
    struct event_base *base = event_base_new();
    struct got *g = xcalloc(1, sizeof(*g));
    int port, lfd, cl[CONNS];
    struct mcpgw_bal_listener *l;
    event_base_priority_init(base, 3);
    lfd = listen_any(&port);
    l = mcpgw_bal_listener_new(base, lfd, on_accept, g);
    ck_assert_ptr_nonnull(l);
    for (int i = 0; i < CONNS; i++) {
        cl[i] = dial(port);
        ck_assert_int_ge(cl[i], 0);
        if (i % 64 == 63)
            event_base_loop(base, EVLOOP_NONBLOCK); /* keep the backlog short */
    }
    pump_until(base, g, CONNS);
    ck_assert_int_eq(g->n, CONNS);
    ck_assert_int_eq(g->nonblock, CONNS);
    /* a new period: first priority again, and it still accepts */
    mcpgw_bal_listener_rearm(l);
    for (int i = 0; i < CONNS; i++) {
        close(cl[i]);
        close(g->fds[i]);
    }
    g->n = 0;
    cl[0] = dial(port);
    pump_until(base, g, 1);
    ck_assert_int_eq(g->n, 1);
    close(cl[0]);
    close(g->fds[0]);
    mcpgw_bal_listener_free(l);
    event_base_free(base);
    free(g);
}
END_TEST

START_TEST(test_listener_free_closes_the_socket)
{
    struct event_base *base = event_base_new();
    struct got g = {0};
    int port, lfd = listen_any(&port), fd;
    struct mcpgw_bal_listener *l = mcpgw_bal_listener_new(base, lfd, on_accept, &g);
    ck_assert_ptr_nonnull(l);
    mcpgw_bal_listener_free(l);
    ck_assert_int_eq(fcntl(lfd, F_GETFD), -1); /* closed */
    fd = dial(port);
    ck_assert_int_eq(fd, -1); /* refused: nothing listens */
    event_base_free(base);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_listener_accepts_every_connection_past_its_budget,
        test_listener_free_closes_the_socket,
    };
    return mcpgw_check_run("listener", "accept", tests, sizeof(tests) / sizeof(tests[0]));
}
