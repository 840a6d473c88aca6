/* client.h - HTTP/1.1 client connection on libevent for the load generator: one request at a
 * time on a keep-alive connection, a complete response or a streamed body (SSE).
 *
 * The response head is parsed with common/http.h and chunked bodies are decoded with its
 * incremental decoder; this module only frames. A connection binds to an optional source
 * address before connecting (IP_BIND_ADDRESS_NO_PORT, so the port is chosen per destination). */
#ifndef MCPGW_LOADGEN_CLIENT_H
#define MCPGW_LOADGEN_CLIENT_H

#include "common/http.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct evbuffer;
struct mcpgw_client;

enum mcpgw_client_err {
    MCPGW_CLIENT_OK,
    MCPGW_CLIENT_CONNECT,  /* could not connect: the request never reached a server */
    MCPGW_CLIENT_STALE,    /* a reused connection closed before any response byte */
    MCPGW_CLIENT_RESET,    /* closed or reset after the response began, or on a fresh connection */
    MCPGW_CLIENT_TIMEOUT,  /* no progress within the request's timeout */
    MCPGW_CLIENT_PROTOCOL, /* malformed response */
    MCPGW_CLIENT_ERR_COUNT
};
const char *mcpgw_client_err_str(enum mcpgw_client_err e);

/* A complete response, or a streamed one's head (body NULL). Borrowed until the callback
 * returns. */
struct mcpgw_client_resp {
    int status;
    const struct mcpgw_http_head *head;
    const char *body;
    size_t body_len;
};

/* Callbacks of one connection, given at creation. A callback may free the connection
 * (mcpgw_client_free); it is then released once the callback returns, and no other callback of
 * it fires. */
struct mcpgw_client_ops {
    /* The response is complete (err OK, r set), or the request failed (r NULL). After a failure
     * the connection is unusable: free it. For a streamed request, OK means the server ended the
     * body. Check mcpgw_client_reusable before sending another request. */
    void (*done)(struct mcpgw_client *c, int err, const struct mcpgw_client_resp *r, void *arg);
    /* Streamed requests only: the head arrived (body NULL) ... */
    void (*head)(struct mcpgw_client *c, const struct mcpgw_client_resp *r, void *arg);
    /* ... and then decoded body bytes as they arrive. */
    void (*data)(struct mcpgw_client *c, const char *p, size_t n, void *arg);
    /* The server closed the connection while no request was in flight: free it. */
    void (*idle_closed)(struct mcpgw_client *c, void *arg);
};

/* Open a connection to dst, bound to src when non-NULL (port 0). ops is static; arg is passed to
 * every callback. Returns NULL (err filled) when no socket could be made or bound (out of file
 * descriptors, out of ports, address not local); connect errors arrive later through done. */
struct mcpgw_client *mcpgw_client_new(struct event_base *base, const struct sockaddr *dst,
                                      socklen_t dstlen, const struct sockaddr *src,
                                      socklen_t srclen, const struct mcpgw_client_ops *ops,
                                      void *arg, char *err, size_t errlen);

/* Close and free now, or right after the running callback of this connection returns. abort
 * sends a reset instead of a FIN, so no TIME_WAIT holds the local port afterwards. */
void mcpgw_client_free(struct mcpgw_client *c, int abort);

/* Send one request: req holds the complete request bytes (moved out of it). stream selects the
 * head/data callbacks for the body. timeout_ms bounds the connect and each wait for response
 * bytes until the head (for streams) or the whole response arrived; 0 for none. Returns 0, or -1
 * when a request is in flight or the connection is unusable. */
int mcpgw_client_request(struct mcpgw_client *c, struct evbuffer *req, int stream,
                         uint32_t timeout_ms);

/* Whether another request may be sent (keep-alive, idle, healthy). */
int mcpgw_client_reusable(const struct mcpgw_client *c);
/* Whether the connection has completed a response before. */
int mcpgw_client_reused(const struct mcpgw_client *c);

#endif
