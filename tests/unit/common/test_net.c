/* test_net.c - source-address lists and the non-blocking connect from a chosen source. */
#include "common/net.h"
#include "tests/unit/check-run.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

static const char *ip(const struct sockaddr_in *a, char *buf)
{
    return inet_ntop(AF_INET, &a->sin_addr, buf, INET_ADDRSTRLEN);
}

START_TEST(test_list_expands_ranges_and_single_addresses)
{
    struct sockaddr_in a[16];
    uint32_t n = 0;
    char err[128], b[INET_ADDRSTRLEN];
    ck_assert_int_eq(
        mcpgw_parse_ipv4_list("127.0.1.1-127.0.1.3,10.0.0.7", a, 16, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(ip(&a[0], b), "127.0.1.1");
    ck_assert_str_eq(ip(&a[2], b), "127.0.1.3");
    ck_assert_str_eq(ip(&a[3], b), "10.0.0.7");
    ck_assert_int_eq(a[3].sin_family, AF_INET);
    ck_assert_uint_eq(a[3].sin_port, 0);
}
END_TEST

START_TEST(test_list_crosses_an_octet_and_ends_at_the_top)
{
    struct sockaddr_in a[8];
    uint32_t n = 0;
    char err[128], b[INET_ADDRSTRLEN];
    ck_assert_int_eq(mcpgw_parse_ipv4_list("10.0.0.254-10.0.1.1", a, 8, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(ip(&a[2], b), "10.0.1.0");
    n = 0;
    ck_assert_int_eq(
        mcpgw_parse_ipv4_list("255.255.255.254-255.255.255.255", a, 8, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(test_list_refuses_bad_input_with_a_reason)
{
    static const struct {
        const char *in, *says;
    } cases[] = {
        {"", "empty"},
        {"127.0.1.1-", "not an IPv4"},
        {"-127.0.1.1", "not an IPv4"},
        {"127.0.1.1,,127.0.1.2", "not an IPv4"},
        {"127.0.1.300", "not an IPv4"},
        {"::1", "not an IPv4"},
        {"localhost", "not an IPv4"},
        {"127.0.1.9-127.0.1.2", "runs backwards"},
        {"10.0.0.0-10.0.1.0", "at most 16"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_in a[16];
        uint32_t n = 0;
        char err[128] = "";
        ck_assert_msg(mcpgw_parse_ipv4_list(cases[i].in, a, 16, &n, err, sizeof(err)) == -1,
                      "accepted '%s'", cases[i].in);
        ck_assert_msg(strstr(err, cases[i].says), "'%s': error '%s'", cases[i].in, err);
    }
}
END_TEST

static int listener(struct sockaddr_in *at)
{
    socklen_t len = sizeof(*at);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(at, 0, sizeof(*at));
    at->sin_family = AF_INET;
    at->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)at, sizeof(*at)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)at, &len), 0);
    return fd;
}

START_TEST(test_connect_comes_from_the_source_address)
{
    struct sockaddr_in dst, src = {0}, local, peer;
    socklen_t len = sizeof(local);
    int pending, lfd = listener(&dst), fd, afd;
    char b[INET_ADDRSTRLEN];
    struct pollfd p;
    src.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.1.7", &src.sin_addr);
    fd = mcpgw_tcp_connect((struct sockaddr *)&dst, sizeof(dst), (struct sockaddr *)&src,
                           sizeof(src), &pending);
    ck_assert_int_ge(fd, 0);
    p.fd = fd;
    p.events = POLLOUT;
    ck_assert_int_eq(poll(&p, 1, 2000), 1);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&local, &len), 0);
    ck_assert_str_eq(ip(&local, b), "127.0.1.7");
    ck_assert_uint_ne(local.sin_port, 0);
    len = sizeof(peer);
    afd = accept(lfd, (struct sockaddr *)&peer, &len);
    ck_assert_int_ge(afd, 0);
    ck_assert_str_eq(ip(&peer, b), "127.0.1.7");
    close(afd);
    close(fd);
    close(lfd);
}
END_TEST

START_TEST(test_connect_reports_errors_and_leaves_nothing_open)
{
    struct sockaddr_in dst, bad = {0};
    int pending, lfd = listener(&dst), fd, before, after;
    close(lfd); /* nothing listens there now */
    before = dup(0);
    close(before);
    fd = mcpgw_tcp_connect((struct sockaddr *)&dst, sizeof(dst), NULL, 0, &pending);
    if (fd >= 0) { /* the refusal may come asynchronously */
        struct pollfd p = {fd, POLLOUT, 0};
        int e = 0;
        socklen_t l = sizeof(e);
        ck_assert_int_eq(pending, 1);
        ck_assert_int_eq(poll(&p, 1, 2000), 1);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
        ck_assert_int_eq(e, ECONNREFUSED);
        close(fd);
    } else {
        ck_assert_int_eq(errno, ECONNREFUSED);
    }
    /* a source address that is not ours: bind fails, errno says why */
    bad.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.1", &bad.sin_addr);
    ck_assert_int_eq(mcpgw_tcp_connect((struct sockaddr *)&dst, sizeof(dst),
                                       (struct sockaddr *)&bad, sizeof(bad), &pending),
                     -1);
    ck_assert_int_eq(errno, EADDRNOTAVAIL);
    after = dup(0);
    ck_assert_int_eq(after, before); /* no descriptor leaked */
    close(after);
}
END_TEST

START_TEST(test_check_sources_names_the_first_foreign_address)
{
    struct sockaddr_in a[3];
    uint32_t n = 0;
    char err[160];
    ck_assert_int_eq(mcpgw_parse_ipv4_list("127.0.1.1-127.0.1.2", a, 3, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(mcpgw_check_sources(a, n, err, sizeof(err)), 0);
    ck_assert_int_eq(mcpgw_parse_ipv4_list("192.0.2.1", a, 3, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(mcpgw_check_sources(a, n, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "192.0.2.1"), "error: %s", err);
}
END_TEST

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof(v);
    ck_assert_int_eq(getsockopt(fd, level, name, &v, &l), 0);
    return v;
}

START_TEST(test_keepalive_sets_probes_and_zero_turns_them_off)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), plain = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(mcpgw_tcp_keepalive(fd, 45), 0);
    ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    ck_assert_int_eq(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 45);
    ck_assert_int_eq(sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL), MCPGW_TCP_KEEPINTVL_S);
    ck_assert_int_eq(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT), MCPGW_TCP_KEEPCNT);
    /* Over what the kernel takes: capped, not refused. */
    ck_assert_int_eq(mcpgw_tcp_keepalive(fd, 1000000), 0);
    ck_assert_int_eq(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), MCPGW_TCP_KEEPIDLE_MAX_S);
    ck_assert_int_eq(mcpgw_tcp_keepalive(fd, 0), 0);
    ck_assert_int_eq(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    ck_assert_int_eq(mcpgw_tcp_keepalive(plain, 0), 0);
    ck_assert_int_eq(sockopt(plain, SOL_SOCKET, SO_KEEPALIVE), 0);
    ck_assert_int_eq(mcpgw_tcp_keepalive(-1, 5), -1);
    close(fd);
    close(plain);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_list_expands_ranges_and_single_addresses,
                            test_list_crosses_an_octet_and_ends_at_the_top,
                            test_list_refuses_bad_input_with_a_reason,
                            test_connect_comes_from_the_source_address,
                            test_connect_reports_errors_and_leaves_nothing_open,
                            test_check_sources_names_the_first_foreign_address,
                            test_keepalive_sets_probes_and_zero_turns_them_off};
    return mcpgw_check_run("net", "net", tests, sizeof(tests) / sizeof(tests[0]));
}
