/* gossip_meddler.c - an intruder for the gossip integration tests (43-gossip-auth.sh), from
 * another process than the members:
 *   gossip-meddler forge PORT SENDER VICTIM
 *       sends 127.0.0.1:PORT a version-1 GOSSIP datagram from SENDER saying VICTIM is dead at a
 *       generation beyond any real one: in a cluster without keys, that is a death.
 *   gossip-meddler replay PORT COUNT TIMEOUT_MS
 *       captures (packet socket on lo: needs CAP_NET_RAW) the first sealed (version 2) datagram
 *       another process sends to 127.0.0.1:PORT, and sends the same bytes there COUNT times.
 * Prints what it did on one line; exits non-zero if it could not. */
#include "gossip/keyring.h"
#include "gossip/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int send_to(int port, const uint8_t *buf, size_t n)
{
    struct sockaddr_in to = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)port);
    rc = fd >= 0 && sendto(fd, buf, n, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return rc ? 0 : -1;
}

static int forge(int port, const char *sender, const char *victim)
{
    static struct mcpgw_gossip_msg m;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    int n;

    m.hdr.type = MCPGW_GOSSIP_GOSSIP;
    m.hdr.sender_generation = 1;
    snprintf(m.hdr.sender, sizeof(m.hdr.sender), "%s", sender);
    m.nupdates = 1;
    snprintf(m.updates[0].id, sizeof(m.updates[0].id), "%s", victim);
    m.updates[0].state = MCPGW_MEMBER_DEAD;
    m.updates[0].flags = MCPGW_GOSSIP_F_SERVING;
    m.updates[0].generation = UINT64_MAX / 2; /* newer than any process start */
    m.updates[0].addr.family = 4;
    memcpy(m.updates[0].addr.ip, "\x7f\x00\x00\x01", 4);
    m.updates[0].addr.port = 9;
    n = mcpgw_gossip_wire_encode(&m, buf, sizeof(buf));
    if (n < 0 || send_to(port, buf, (size_t)n) < 0) {
        fprintf(stderr, "gossip-meddler: cannot send: %s\n", strerror(errno));
        return 1;
    }
    printf("forged: %d bytes to port %d, '%s' says '%s' is dead\n", n, port, sender, victim);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int replay(int port, int count, int timeout_ms)
{
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP)};
    uint8_t pkt[65536];
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));

    ll.sll_ifindex = (int)if_nametoindex("lo");
    if (fd < 0 || !ll.sll_ifindex || bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0) {
        fprintf(stderr, "gossip-meddler: cannot capture on lo (needs CAP_NET_RAW): %s\n",
                strerror(errno));
        return 2;
    }
    while (now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        const struct iphdr *ip = (const struct iphdr *)pkt;
        const struct udphdr *udp;
        const uint8_t *payload;
        size_t hl, plen;
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, pkt, sizeof(pkt), 0);
        if (n < (ssize_t)sizeof(struct iphdr) || ip->version != 4 || ip->protocol != IPPROTO_UDP)
            continue;
        hl = (size_t)ip->ihl * 4;
        if ((size_t)n < hl + sizeof(struct udphdr))
            continue;
        udp = (const struct udphdr *)(pkt + hl);
        payload = pkt + hl + sizeof(struct udphdr);
        plen = (size_t)n - hl - sizeof(struct udphdr);
        if (ntohs(udp->dest) != port || plen == 0 || payload[0] != MCPGW_GOSSIP_ENVELOPE_VERSION)
            continue;
        for (int i = 0; i < count; i++)
            if (send_to(port, payload, plen) < 0) {
                fprintf(stderr, "gossip-meddler: cannot resend: %s\n", strerror(errno));
                return 1;
            }
        printf("replayed: a sealed datagram of %zu bytes from port %d, sent %d times to port %d\n",
               plen, ntohs(udp->source), count, port);
        close(fd);
        return 0;
    }
    fprintf(stderr, "gossip-meddler: no sealed datagram to port %d within %d ms\n", port,
            timeout_ms);
    close(fd);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "forge") == 0)
        return forge(atoi(argv[2]), argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "replay") == 0)
        return replay(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: gossip-meddler forge PORT SENDER VICTIM\n"
                    "       gossip-meddler replay PORT COUNT TIMEOUT_MS\n");
    return 2;
}
