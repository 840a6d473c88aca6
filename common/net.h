/* net.h - TCP sockets: source-address lists and a non-blocking connect for outgoing
 * connections, keep-alive probes for accepted ones; one socket read into a bufferevent's input. */
#ifndef MCPGW_COMMON_NET_H
#define MCPGW_COMMON_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct evbuffer;

/* Parse "127.0.1.1-127.0.1.8" or "a,b,c" (each item may be a range) into out[0..*n), appending
 * to the *n entries already there. At most max entries. Returns 0, or -1 with a sentence in err
 * (a malformed address, a range that runs backwards, too many addresses). */
int mcpgw_parse_ipv4_list(const char *s, struct sockaddr_in *out, uint32_t max, uint32_t *n,
                          char *err, size_t errlen);

/* Open a non-blocking, close-on-exec TCP socket with TCP_NODELAY and connect it to dst. With a
 * src of dst's family, the socket is bound to that address first, leaving the port to connect()
 * (IP_BIND_ADDRESS_NO_PORT): the kernel then picks a port free for this destination, so one
 * source address carries ~28K connections to every destination rather than ~28K in all. A src
 * of another family is ignored. Returns the socket with *pending set when the connect is still
 * in progress, or -1 with errno set (nothing left open). */
int mcpgw_tcp_connect(const struct sockaddr *dst, socklen_t dstlen, const struct sockaddr *src,
                      socklen_t srclen, int *pending);

/* TCP keep-alive defaults: probes start after MCPGW_TCP_KEEPIDLE_S seconds without traffic and
 * come every MCPGW_TCP_KEEPINTVL_S; MCPGW_TCP_KEEPCNT unanswered probes reset the connection.
 * With these, a dead peer is noticed within 60 + 6 * 10 s = 2 minutes. */
#define MCPGW_TCP_KEEPIDLE_S  60
#define MCPGW_TCP_KEEPINTVL_S 10
#define MCPGW_TCP_KEEPCNT     6
/* The largest idle time Linux takes (MAX_TCP_KEEPIDLE). */
#define MCPGW_TCP_KEEPIDLE_MAX_S 32767

/* Turn on TCP keep-alive probes on socket fd, the first after idle_s seconds without traffic
 * (capped at MCPGW_TCP_KEEPIDLE_MAX_S), then every MCPGW_TCP_KEEPINTVL_S seconds, resetting the
 * connection after MCPGW_TCP_KEEPCNT unanswered ones. A connection that only waits for its peer
 * (an SSE stream with nothing to send, an idle keep-alive) otherwise outlives a peer that
 * vanished without a FIN or RST (a NAT that dropped its mapping, a machine powered off)
 * forever. idle_s 0 turns probes off. Returns 0, or -1 with errno set. */
int mcpgw_tcp_keepalive(int fd, uint32_t idle_s);

/* Set TCP_USER_TIMEOUT on socket fd: data written and left unacknowledged for timeout_ms (and,
 * with keep-alive on, probes unanswered that long) makes the kernel fail the connection with
 * ETIMEDOUT. Keep-alive probes are not sent while written data waits for its ACK, so without
 * this a peer gone while data is in flight (an SSE keep-alive comment to a vanished client) is
 * noticed only after the kernel's retransmissions give up (tcp_retries2: some 15 minutes).
 * timeout_ms 0 restores the kernel's default. Returns 0, or -1 with errno set. */
int mcpgw_tcp_user_timeout(int fd, uint32_t timeout_ms);

/* Check that every address in src[0..n) can be bound here (is a local address). Returns 0, or
 * -1 with a sentence naming the first that cannot in err. */
int mcpgw_check_sources(const struct sockaddr_in *src, uint32_t n, char *err, size_t errlen);

/* Read up to max bytes from fd into in, the input of a bufferevent (whose end stays frozen
 * outside its own reads), with one readv. libevent's own socket reads stop at 4096 bytes and
 * ask FIONREAD first, so a 4 KB message would take two reads and two ioctls. Returns what
 * readv returned, errno included, or -1 with ENOMEM when in has no room. */
ssize_t mcpgw_evbuffer_readv(struct evbuffer *in, int fd, size_t max);

#endif
