/* rewrite.h - the heads a proxy sends on: hop-by-hop headers out, forwarding headers in.
 *
 * Host, Origin and every other end-to-end header pass unchanged (nodes validate Host and
 * Origin themselves). Hop-by-hop headers (RFC 9110 7.6.1) and those a Connection header names
 * are dropped; framing the proxy relays as-is (Transfer-Encoding: chunked, Upgrade) is put
 * back explicitly. */
#ifndef MCPGW_BALANCER_REWRITE_H
#define MCPGW_BALANCER_REWRITE_H

#include "common/http.h"

struct evbuffer;

/* Header fields the rewrites may add beyond what they drop: a request head may have at most
 * MCPGW_HTTP_MAX_HEADERS - MCPGW_BAL_REQ_ADDED fields (X-Forwarded-For, Forwarded,
 * X-Forwarded-Proto), a response head MCPGW_HTTP_MAX_HEADERS - MCPGW_BAL_RESP_ADDED
 * (Connection), or the next hop could not parse what we send. */
#define MCPGW_BAL_REQ_ADDED  3
#define MCPGW_BAL_RESP_ADDED 1

/* Facts about the client connection for X-Forwarded-For / Forwarded / X-Forwarded-Proto. */
struct mcpgw_bal_peer {
    const char *ip; /* textual address, borrowed */
    int ipv6;
    int tls;
    const char *secret; /* --balancer-secret, sent as MCPGW_BAL_SECRET_HEADER; NULL: none */
};

/* The header that tells a node a request came through a balancer of its cluster (a client's own
 * copy is dropped). */
#define MCPGW_BAL_SECRET_HEADER "X-Mcpgw-Balancer"

/* Append the request head for the node: "METHOD target HTTP/1.1", the end-to-end headers,
 * "Transfer-Encoding: chunked" when the body is chunked (relayed as received), the Upgrade
 * pair for upgrade requests, then one merged X-Forwarded-For and Forwarded (earlier values
 * kept, the client's address appended) and X-Forwarded-Proto. h is borrowed. */
void mcpgw_bal_rewrite_request(const struct mcpgw_http_head *h, const struct mcpgw_bal_peer *peer,
                               struct evbuffer *out);

enum {
    MCPGW_BAL_RESP_CLOSE = 1,       /* add "Connection: close" */
    MCPGW_BAL_RESP_DECHUNK = 2,     /* body is de-chunked for an HTTP/1.0 client: no TE */
    MCPGW_BAL_RESP_KEEPALIVE10 = 4, /* HTTP/1.0 client kept alive: "Connection: keep-alive" */
};

/* Append the response head for the client. head points at the node's head bytes (the status
 * line is copied from it, reason phrase included); h is its parse. flags: MCPGW_BAL_RESP_*. */
void mcpgw_bal_rewrite_response(const struct mcpgw_http_head *h, const char *head, unsigned flags,
                                struct evbuffer *out);

#endif
