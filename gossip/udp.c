/* udp.c - the gossip socket: sealed or plain datagrams out, checked datagrams in, ICMP reports. */
#include "gossip/udp.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gossip/keyring.h"
#include "gossip/replay.h"

#include <errno.h>
#include <event2/event.h>
#include <linux/errqueue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RX_BURST      64    /* datagrams read per wakeup before yielding to the loop */
#define WARN_EVERY_MS 10000 /* one warning per refusal reason this often */

struct mcpgw_gossip_udp {
    struct event_base *base;
    int fd, port;
    struct event *read_ev;
    struct sockaddr_storage local;
    mcpgw_gossip_udp_msg_cb on_msg;
    mcpgw_gossip_udp_unreach_cb on_unreachable;
    void *arg;

    struct mcpgw_gossip_keyring *ring; /* NULL or empty: version 1, unauthenticated */
    struct mcpgw_gossip_replay *replay;
    uint32_t salt;    /* random per process: keeps our nonces apart from every other sender's */
    uint64_t counter; /* last envelope counter used */
    struct mcpgw_gossip_stats stats;
    uint64_t warned_ms[MCPGW_GOSSIP_REFUSED_COUNT];

    struct mcpgw_gossip_msg rx;                 /* decode scratch */
    uint8_t rxbuf[MCPGW_GOSSIP_MAX_PACKET + 1]; /* +1: spot oversize datagrams */
    uint8_t plain[MCPGW_GOSSIP_MAX_PACKET];     /* an opened envelope */
    uint8_t txbuf[MCPGW_GOSSIP_MAX_PACKET];     /* the version-1 datagram being built */
    uint8_t sealed[MCPGW_GOSSIP_MAX_PACKET];
};

const char *mcpgw_gossip_refusal_str(int r)
{
    static const char *const s[MCPGW_GOSSIP_REFUSED_COUNT] = {
        "forged", "replayed", "stale", "wrong_version", "no_key", "malformed"};
    return r >= 0 && r < MCPGW_GOSSIP_REFUSED_COUNT ? s[r] : "?";
}

static int keyed(const struct mcpgw_gossip_udp *u)
{
    return mcpgw_gossip_keyring_count(u->ring) > 0;
}

/* ---- sending ---- */

uint8_t *mcpgw_gossip_udp_buf(struct mcpgw_gossip_udp *u, size_t *cap)
{
    *cap = sizeof(u->txbuf) - (keyed(u) ? MCPGW_GOSSIP_ENVELOPE_OVERHEAD : 0);
    return u->txbuf;
}

void mcpgw_gossip_udp_send(struct mcpgw_gossip_udp *u, size_t len,
                           const struct sockaddr_storage *to, socklen_t tolen)
{
    const uint8_t *out = u->txbuf;

    if (keyed(u)) {
        struct mcpgw_gossip_envelope env = {
            .salt = u->salt, .counter = ++u->counter, .sent_ms = mcpgw_wall_ms()};
        int n =
            mcpgw_gossip_keyring_seal(u->ring, &env, u->txbuf, len, u->sealed, sizeof(u->sealed));
        if (n < 0) {
            log_warn("gossip: cannot seal a datagram: %s", mcpgw_gossip_keyring_err_str(n));
            return;
        }
        out = u->sealed;
        len = (size_t)n;
    }
    if (sendto(u->fd, out, len, 0, (const struct sockaddr *)to, tolen) < 0)
        log_debug("gossip: sendto failed: %s", strerror(errno));
    else
        u->stats.sent++;
}

/* ---- receiving ---- */

static void refuse(struct mcpgw_gossip_udp *u, int why, const struct sockaddr_storage *src,
                   const char *detail)
{
    uint64_t now = mcpgw_now_ms();
    struct mcpgw_gossip_addr a;
    char from[64] = "?";

    u->stats.refused[why]++;
    if (now - u->warned_ms[why] < WARN_EVERY_MS && u->warned_ms[why])
        return;
    u->warned_ms[why] = now;
    if (mcpgw_gossip_addr_from_sockaddr(&a, (const struct sockaddr *)src) == 0)
        mcpgw_gossip_addr_format(&a, from, sizeof(from));
    /* forged, no_key and wrong_version are what a misconfigured member or an intruder causes:
     * an operator must see them; stale names the usual cause */
    log_warn("gossip: refused a datagram from %s (%s: %s; %llu so far, warned once per %d s)", from,
             mcpgw_gossip_refusal_str(why), detail, (unsigned long long)u->stats.refused[why],
             WARN_EVERY_MS / 1000);
}

/* Open, decode and judge one datagram; 0 when it may go to the protocol (in u->rx). */
static int admit(struct mcpgw_gossip_udp *u, size_t n, const struct sockaddr_storage *src)
{
    struct mcpgw_gossip_envelope env;
    const uint8_t *payload = u->rxbuf;
    int rc, version = n > 0 ? u->rxbuf[0] : -1;

    if (version == MCPGW_GOSSIP_ENVELOPE_VERSION) {
        rc = mcpgw_gossip_keyring_open(u->ring, u->rxbuf, n, u->plain, sizeof(u->plain), &env);
        if (rc < 0) {
            int why = rc == MCPGW_GOSSIP_KEYRING_NO_KEY    ? MCPGW_GOSSIP_REFUSED_NO_KEY
                      : rc == MCPGW_GOSSIP_KEYRING_VERSION ? MCPGW_GOSSIP_REFUSED_VERSION
                                                           : MCPGW_GOSSIP_REFUSED_FORGED;
            refuse(u, why, src,
                   keyed(u) ? mcpgw_gossip_keyring_err_str(rc)
                            : "a sealed datagram, and this member has no key ring");
            return -1;
        }
        payload = u->plain;
        n = (size_t)rc;
    } else if (keyed(u)) {
        refuse(u, MCPGW_GOSSIP_REFUSED_VERSION, src,
               version == MCPGW_GOSSIP_WIRE_VERSION
                   ? "unauthenticated (version 1), and this member requires a key"
                   : "unknown version");
        return -1;
    }
    rc = mcpgw_gossip_wire_decode(payload, n, &u->rx);
    if (rc) {
        if (rc == MCPGW_GOSSIP_WIRE_VERSION_ERR)
            refuse(u, MCPGW_GOSSIP_REFUSED_VERSION, src, "unknown version");
        else
            refuse(u, MCPGW_GOSSIP_REFUSED_MALFORMED, src, mcpgw_gossip_wire_err_str(rc));
        return -1;
    }
    if (payload == u->rxbuf)
        return 0;
    rc = mcpgw_gossip_replay_check(u->replay, u->rx.hdr.sender, u->rx.hdr.sender_generation,
                                   env.counter, env.sent_ms, mcpgw_wall_ms());
    if (rc == MCPGW_GOSSIP_REPLAY_STALE) {
        char detail[224];
        snprintf(detail, sizeof(detail),
                 "sent by %s %lld ms from our clock; are the members' clocks synchronized?",
                 u->rx.hdr.sender, (long long)(mcpgw_wall_ms() - env.sent_ms));
        refuse(u, MCPGW_GOSSIP_REFUSED_STALE, src, detail);
        return -1;
    }
    if (rc != MCPGW_GOSSIP_REPLAY_FRESH) {
        refuse(u, MCPGW_GOSSIP_REFUSED_REPLAYED, src, mcpgw_gossip_replay_verdict_str(rc));
        return -1;
    }
    return 0;
}

static void report_unreachable(struct mcpgw_gossip_udp *u, const struct sockaddr *dst)
{
    struct mcpgw_gossip_addr a;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (mcpgw_gossip_addr_from_sockaddr(&a, dst) < 0)
        return;
    if (a.family == 6 && memcmp(a.ip, v4mapped, 12) == 0) {
        a.family = 4;
        memmove(a.ip, a.ip + 12, 4);
        memset(a.ip + 4, 0, 12);
    }
    u->on_unreachable(u->arg, &a);
}

/* Read the socket's error queue (IP_RECVERR): the ICMP errors our datagrams met. */
static void read_errors(struct mcpgw_gossip_udp *u)
{
    for (int i = 0; i < RX_BURST; i++) {
        struct sockaddr_storage dst;
        union {
            char buf[256];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {u->rxbuf, sizeof(u->rxbuf)};
        struct msghdr mh = {.msg_name = &dst,
                            .msg_namelen = sizeof(dst),
                            .msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.buf,
                            .msg_controllen = sizeof(ctl.buf)};

        memset(&dst, 0, sizeof(dst));
        if (recvmsg(u->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            struct sock_extended_err ee;
            if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) ||
                c->cmsg_len < CMSG_LEN(sizeof(ee)))
                continue;
            memcpy(&ee, CMSG_DATA(c), sizeof(ee));
            /* ICMP type 3 code 3; ICMPv6 type 1 code 4 */
            if ((ee.ee_origin == SO_EE_ORIGIN_ICMP && ee.ee_type == 3 && ee.ee_code == 3) ||
                (ee.ee_origin == SO_EE_ORIGIN_ICMP6 && ee.ee_type == 1 && ee.ee_code == 4))
                report_unreachable(u, (const struct sockaddr *)&dst);
        }
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_gossip_udp *u = arg;

    for (int i = 0; i < RX_BURST; i++) {
        struct sockaddr_storage src;
        socklen_t srclen = sizeof(src);
        ssize_t n = recvfrom(fd, u->rxbuf, sizeof(u->rxbuf), 0, (struct sockaddr *)&src, &srclen);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                /* Woken with no datagram: the socket polls as in error because reports are
                 * queued whose pending error a send already took (a send after an ICMP report
                 * fails with it and clears it, the report stays). Unread, they would wake the
                 * loop again at once, forever. */
                if (i == 0)
                    read_errors(u);
                return;
            }
            /* The pending error of a queued ICMP report (ECONNREFUSED...): read the reports,
             * then the datagrams behind them. */
            read_errors(u);
            continue;
        }
        if (admit(u, (size_t)n, &src) < 0)
            continue;
        u->stats.received++;
        u->on_msg(u->arg, &u->rx, &src, srclen);
    }
}

/* ---- the socket ---- */

static int resolve_one(const char *hostport, int passive, struct sockaddr_storage *ss,
                       socklen_t *sslen, char *err, size_t errlen)
{
    char host[256], port[8];
    struct addrinfo hints, *res = NULL;
    int p, rc;

    if (mcpgw_parse_hostport(hostport, host, sizeof(host), &p, err, errlen) < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", p);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "cannot resolve gossip address '%s': %s", hostport, gai_strerror(rc));
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int is_wildcard(const struct mcpgw_gossip_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

static int open_socket(struct mcpgw_gossip_udp *u, const struct mcpgw_gossip_udp_config *cfg,
                       struct mcpgw_gossip_addr *self_addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rcvbuf = 1 << 20, one = 1;

    if (resolve_one(cfg->bind_addr, 1, &ss, &sslen, err, errlen) < 0)
        return -1;
    u->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(err, errlen, "cannot bind the gossip UDP socket to %s: %s", cfg->bind_addr,
                 strerror(errno));
        return -1;
    }
    /* a burst of JOIN/SYNC tables must not overflow the default buffer */
    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    /* Keep the ICMP errors our datagrams meet, with the address they were sent to: a closed
     * port is a dead member (on_unreachable). Best effort: without it, suspicion alone. */
    if (ss.ss_family == AF_INET6)
        setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
    setsockopt(u->fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
    sslen = sizeof(ss);
    if (getsockname(u->fd, (struct sockaddr *)&ss, &sslen) < 0 ||
        mcpgw_gossip_addr_from_sockaddr(self_addr, (struct sockaddr *)&ss) < 0) {
        snprintf(err, errlen, "cannot read the gossip socket's address: %s", strerror(errno));
        return -1;
    }
    u->local = ss;
    u->port = self_addr->port;
    if (cfg->advertise_addr) {
        struct mcpgw_gossip_addr adv;
        if (resolve_one(cfg->advertise_addr, 0, &ss, &sslen, err, errlen) < 0)
            return -1;
        if (mcpgw_gossip_addr_from_sockaddr(&adv, (struct sockaddr *)&ss) < 0 ||
            is_wildcard(&adv)) {
            snprintf(err, errlen, "gossip advertise address %s is not a reachable IP address",
                     cfg->advertise_addr);
            return -1;
        }
        if (adv.port == 0)
            adv.port = self_addr->port;
        *self_addr = adv;
    } else if (is_wildcard(self_addr)) {
        snprintf(err, errlen,
                 "gossip bind address %s is a wildcard: set an advertise address the other "
                 "members can reach",
                 cfg->bind_addr);
        return -1;
    }
    return 0;
}

struct mcpgw_gossip_udp *mcpgw_gossip_udp_new(struct event_base *base,
                                              const struct mcpgw_gossip_udp_config *cfg,
                                              struct mcpgw_gossip_addr *self_addr, char *err,
                                              size_t errlen)
{
    struct mcpgw_gossip_udp *u = xcalloc(1, sizeof(*u));

    u->base = base;
    u->fd = -1;
    u->on_msg = cfg->on_msg;
    u->on_unreachable = cfg->on_unreachable;
    u->arg = cfg->arg;
    if (open_socket(u, cfg, self_addr, err, errlen) < 0)
        goto fail;
    /* The nonce is salt + counter: random salt and a random start, so no two processes that
     * ever share a key are likely to reuse a nonce (GCM's one fatal mistake). Half the counter
     * space is left to count in. */
    if (RAND_bytes((unsigned char *)&u->salt, sizeof(u->salt)) != 1 ||
        RAND_bytes((unsigned char *)&u->counter, sizeof(u->counter)) != 1) {
        snprintf(err, errlen, "cannot draw random bytes for the gossip envelope");
        goto fail;
    }
    u->counter >>= 1;
    u->replay = mcpgw_gossip_replay_new(cfg->max_senders, cfg->max_clock_skew_ms);
    u->read_ev = event_new(base, u->fd, EV_READ | EV_PERSIST, on_read, u);
    if (!u->read_ev) {
        snprintf(err, errlen, "cannot create the gossip read event");
        goto fail;
    }
    return u;
fail:
    mcpgw_gossip_udp_free(u);
    return NULL;
}

int mcpgw_gossip_udp_start(struct mcpgw_gossip_udp *u)
{
    return event_add(u->read_ev, NULL) < 0 ? -1 : 0;
}

void mcpgw_gossip_udp_free(struct mcpgw_gossip_udp *u)
{
    if (!u)
        return;
    if (u->read_ev)
        event_free(u->read_ev);
    if (u->fd >= 0)
        close(u->fd);
    mcpgw_gossip_keyring_free(u->ring);
    mcpgw_gossip_replay_free(u->replay);
    free(u);
}

void mcpgw_gossip_udp_set_keyring(struct mcpgw_gossip_udp *u, struct mcpgw_gossip_keyring *ring)
{
    mcpgw_gossip_keyring_free(u->ring);
    u->ring = ring;
    u->stats.keys = mcpgw_gossip_keyring_count(ring);
}

int mcpgw_gossip_udp_port(const struct mcpgw_gossip_udp *u)
{
    return u->port;
}

const struct sockaddr_storage *mcpgw_gossip_udp_local(const struct mcpgw_gossip_udp *u)
{
    return &u->local;
}

struct mcpgw_gossip_stats *mcpgw_gossip_udp_stats(struct mcpgw_gossip_udp *u)
{
    return &u->stats;
}

void mcpgw_gossip_udp_export_stats(const struct mcpgw_gossip_stats *s, struct mcpgw_metrics *m,
                                   const char *labels)
{
    char l[256];
    const char *sep = labels && labels[0] ? "," : "";

    *mcpgw_metrics_counter(m, "mcpgw_gossip_datagrams_received_total",
                           "Gossip datagrams that passed every check", labels) = s->received;
    *mcpgw_metrics_counter(m, "mcpgw_gossip_datagrams_sent_total", "Gossip datagrams sent",
                           labels) = s->sent;
    for (int r = 0; r < MCPGW_GOSSIP_REFUSED_COUNT; r++) {
        snprintf(l, sizeof(l), "%s%sreason=\"%s\"", labels ? labels : "", sep,
                 mcpgw_gossip_refusal_str(r));
        *mcpgw_metrics_counter(m, "mcpgw_gossip_datagrams_refused_total",
                               "Gossip datagrams dropped before the protocol saw them, by reason "
                               "(forged, replayed, stale, wrong_version, no_key, malformed)",
                               l) = s->refused[r];
    }
    *mcpgw_metrics_gauge(m, "mcpgw_gossip_keys",
                         "Keys in the gossip key ring (0: gossip is unauthenticated)", labels) =
        s->keys;
    *mcpgw_metrics_counter(m, "mcpgw_gossip_keyring_reloads_total",
                           "Key ring files re-read and applied", labels) = s->key_reloads;
    *mcpgw_metrics_counter(m, "mcpgw_gossip_keyring_reload_failures_total",
                           "Key ring files that could not be applied (the old ring stays)",
                           labels) = s->key_reload_failures;
}
