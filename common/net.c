/* net.c - TCP sockets: source-address lists and a non-blocking connect for outgoing
 * connections, keep-alive probes for accepted ones; one socket read into a bufferevent's input. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int mcpgw_parse_ipv4_list(const char *s, struct sockaddr_in *out, uint32_t max, uint32_t *n,
                          char *err, size_t errlen)
{
    const char *p = s;
    if (!*s) {
        snprintf(err, errlen, "empty address list");
        return -1;
    }
    for (;;) {
        const char *end = strchr(p, ','), *dash;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char lo[INET_ADDRSTRLEN], hi[INET_ADDRSTRLEN];
        struct in_addr a, b;
        dash = memchr(p, '-', len);
        size_t lolen = dash ? (size_t)(dash - p) : len, hilen = dash ? len - lolen - 1 : len;
        const char *hip = dash ? dash + 1 : p;
        int ok = lolen > 0 && lolen < sizeof(lo) && hilen > 0 && hilen < sizeof(hi);
        if (ok) {
            memcpy(lo, p, lolen);
            lo[lolen] = '\0';
            memcpy(hi, hip, hilen);
            hi[hilen] = '\0';
            ok = inet_pton(AF_INET, lo, &a) == 1 && inet_pton(AF_INET, hi, &b) == 1;
        }
        if (!ok) {
            snprintf(err, errlen, "'%.*s' is not an IPv4 address or range (127.0.1.1-127.0.1.8)",
                     (int)len, p);
            return -1;
        }
        if (ntohl(b.s_addr) < ntohl(a.s_addr)) {
            snprintf(err, errlen, "range %s-%s runs backwards", lo, hi);
            return -1;
        }
        for (uint32_t h = ntohl(a.s_addr);; h++) {
            if (*n == max) {
                snprintf(err, errlen, "at most %u addresses", max);
                return -1;
            }
            memset(&out[*n], 0, sizeof(out[*n]));
            out[*n].sin_family = AF_INET;
            out[*n].sin_addr.s_addr = htonl(h);
            (*n)++;
            if (h == ntohl(b.s_addr))
                break;
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}

int mcpgw_tcp_keepalive(int fd, uint32_t idle_s)
{
    int on = idle_s > 0,
        idle = (int)(idle_s < MCPGW_TCP_KEEPIDLE_MAX_S ? idle_s : MCPGW_TCP_KEEPIDLE_MAX_S),
        intvl = MCPGW_TCP_KEEPINTVL_S, cnt = MCPGW_TCP_KEEPCNT;
    /* Off explicitly: a socket accepted from a libevent listener inherits its SO_KEEPALIVE. */
    if (!on)
        return setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0)
        return -1;
    return 0;
}

int mcpgw_tcp_user_timeout(int fd, uint32_t timeout_ms)
{
    unsigned int t = timeout_ms;
    return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &t, sizeof(t));
}

int mcpgw_tcp_connect(const struct sockaddr *dst, socklen_t dstlen, const struct sockaddr *src,
                      socklen_t srclen, int *pending)
{
    int one = 1, e;
    int fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    *pending = 0;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src && src->sa_family == dst->sa_family) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
        if (bind(fd, src, srclen) < 0)
            goto fail;
    }
    if (connect(fd, dst, dstlen) == 0)
        return fd;
    if (errno == EINPROGRESS) {
        *pending = 1;
        return fd;
    }
fail:
    e = errno;
    close(fd);
    errno = e;
    return -1;
}

int mcpgw_check_sources(const struct sockaddr_in *src, uint32_t n, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n; i++) {
        int one = 1, rc, e, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char addr[INET_ADDRSTRLEN];
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -1;
        }
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
        rc = bind(fd, (const struct sockaddr *)&src[i], sizeof(src[i]));
        e = errno;
        close(fd);
        if (rc < 0) {
            inet_ntop(AF_INET, &src[i].sin_addr, addr, sizeof(addr));
            snprintf(err, errlen, "cannot use source address %s: %s", addr, strerror(e));
            return -1;
        }
    }
    return 0;
}

ssize_t mcpgw_evbuffer_readv(struct evbuffer *in, int fd, size_t max)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    ssize_t r;
    size_t left;
    int n, used = 0, e;
    evbuffer_unfreeze(in, 0); /* bufferevents freeze the end of their input */
    n = evbuffer_reserve_space(in, (ev_ssize_t)max, v, 2);
    if (n <= 0) {
        evbuffer_freeze(in, 0);
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
        if (iov[i].iov_len > max) /* reserve may offer more than asked */
            iov[i].iov_len = max;
    }
    if (n == 2 && iov[0].iov_len >= max)
        n = 1;
    else if (n == 2 && iov[0].iov_len + iov[1].iov_len > max)
        iov[1].iov_len = max - iov[0].iov_len;
    r = readv(fd, iov, n);
    e = errno;
    left = r > 0 ? (size_t)r : 0;
    for (int i = 0; i < n && left; i++) {
        v[i].iov_len = left < iov[i].iov_len ? left : iov[i].iov_len;
        left -= v[i].iov_len;
        used++;
    }
    evbuffer_commit_space(in, v, used);
    evbuffer_freeze(in, 0);
    errno = e; /* for the caller's error report */
    return r;
}
