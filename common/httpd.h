/* httpd.h - HTTP/1.1 and h2c server connections on libevent: framing, limits, responses, streaming.
 *
 * One mcpgw_httpd owns a listening socket and its connections. Each complete request is handed
 * to the handler; the handler answers at once (mcpgw_http_respond) or later, or starts a
 * streamed response (SSE) that it writes to until it ends it. A connection serves one request
 * at a time; keep-alive and pipelined requests are handled in order. Limits are enforced here
 * so applications never see oversized or slow requests:
 *   head over max_head_bytes -> 431, body over max_body_bytes -> 413, head not complete within
 *   head_timeout_ms -> 408, malformed/smuggling shapes -> 400 (connection closed), connections
 *   over max_conns -> 503 with Retry-After.
 *
 * The same port serves HTTP/2 over cleartext with prior knowledge (h2c, RFC 9113 3.3): a
 * connection whose first bytes are the client preface is an h2 connection, and each of its
 * streams is handed to the handler as a struct mcpgw_http_conn of its own, on which every
 * function below works as on an HTTP/1.1 connection serving one request:
 *   - the head has method (:method), target (:path), a "host" header from :authority when
 *     none was sent, the other fields with lowercase names, keep_alive 1, minor_version 1;
 *   - the limits above apply per stream (431, 413; a stream over max_conns gets 503), and
 *     each live stream counts in mcpgw_httpd_conn_count like a connection;
 *   - mcpgw_http_conn_close and an output overflow reset the stream (RST_STREAM), which the
 *     peer sees as an abnormal end, like a dropped HTTP/1.1 connection;
 *   - a stream stays valid after its request until the response is complete (respond or
 *     stream_end), mcpgw_http_conn_close, or its close callback; an h2 connection with no stream
 *     for idle_timeout_ms gets GOAWAY and is closed. */
#ifndef MCPGW_COMMON_HTTPD_H
#define MCPGW_COMMON_HTTPD_H

#include "common/http.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mcpgw_httpd;
struct mcpgw_http_conn;

struct mcpgw_httpd_config {
    size_t max_head_bytes;    /* default 32 KiB */
    size_t max_body_bytes;    /* default 16 MiB */
    uint32_t head_timeout_ms; /* default 10 s: from the first byte of a head to its end */
    uint32_t idle_timeout_ms; /* default 300 s: idle keep-alive connection, no request pending */
    uint32_t max_conns;       /* default 18000 */
    size_t max_output_bytes;  /* default 4 MiB of unsent output before a stream is dropped */
    int reuseport;            /* SO_REUSEPORT on the listener */
    uint32_t h2_max_streams;  /* default 20000: SETTINGS_MAX_CONCURRENT_STREAMS per h2 connection */
    uint32_t tcp_keepalive_s; /* default 60: idle seconds before TCP keep-alive probes on each
                                 accepted socket (mcpgw_tcp_keepalive); 0 = off */
    uint32_t tcp_user_timeout_ms; /* default 0 (the kernel's): TCP_USER_TIMEOUT on each accepted
                                     socket (mcpgw_tcp_user_timeout) */
    uint64_t *conns_timed_out;    /* incremented for each connection the kernel failed with
                                     ETIMEDOUT (keep-alive probes or data unacknowledged: the peer
                                     is gone); NULL: not counted. Borrowed. */
    uint64_t *streams_dropped;    /* incremented for each stream dropped for not reading (over
                                     max_output_bytes); NULL: not counted. Borrowed. */
};

/* A complete request. Everything it points to is borrowed until the handler returns. */
struct mcpgw_http_req {
    struct mcpgw_http_head head;
    const char *path; /* target up to '?' */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    const char *body;
    size_t body_len;
    /* 0 from the server. A handler that holds a request back (a copy, to run it again later)
     * may set it on its copy to say the request already passed its admission step; any later
     * copy of the request keeps it, so being held again elsewhere does not lose it. */
    int admitted;
};

typedef void (*mcpgw_http_handler_fn)(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req,
                                      void *arg);
/* Called once when a connection with a registered close callback goes away before the
 * callback is cleared (peer closed, error, overflow, server shutdown). */
typedef void (*mcpgw_http_close_fn)(struct mcpgw_http_conn *c, void *arg);

void mcpgw_httpd_config_defaults(struct mcpgw_httpd_config *cfg);

/* Create a server; cfg is copied. Returns NULL only on libevent failure. */
struct mcpgw_httpd *mcpgw_httpd_new(struct event_base *base, const struct mcpgw_httpd_config *cfg,
                                    mcpgw_http_handler_fn handler, void *arg);
/* Bind and listen on "host:port". Returns 0, or -1 with an operator-readable sentence in err. */
int mcpgw_httpd_listen(struct mcpgw_httpd *s, const char *addr, char *err, size_t errlen);
/* Change the request limits of a running server (a configuration reload). Requests whose head
 * arrives afterwards are held to them; a lower max_conns closes no connection, it refuses new
 * ones until the count is below it. A connection's read bound only grows, so a request already
 * under way within the old limits is never stalled by lower ones. */
void mcpgw_httpd_set_limits(struct mcpgw_httpd *s, size_t max_head_bytes, size_t max_body_bytes,
                            uint32_t max_conns);
/* Stop accepting new connections (drain); existing connections go on. */
void mcpgw_httpd_stop_accepting(struct mcpgw_httpd *s);
/* Close every connection (close callbacks fire) and free the server. Not from inside a handler. */
void mcpgw_httpd_free(struct mcpgw_httpd *s);
uint32_t mcpgw_httpd_conn_count(const struct mcpgw_httpd *s);

/* Complete response. extra_headers is NULL or preformatted "Name: value\r\n" lines. body may be
 * NULL when len is 0. After it the connection reads the next request or closes. */
void mcpgw_http_respond(struct mcpgw_http_conn *c, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t len);
/* Start a streamed (chunked) response; then write and finally end it. */
void mcpgw_http_stream_begin(struct mcpgw_http_conn *c, int status, const char *content_type,
                             const char *extra_headers);
/* Queue bytes on a stream. Returns 0, or -1 when the connection is gone or its unsent output is
 * over max_output_bytes (the connection is then closed and its close callback fires). */
int mcpgw_http_stream_write(struct mcpgw_http_conn *c, const void *data, size_t len);
void mcpgw_http_stream_end(struct mcpgw_http_conn *c);

/* Close now (or, inside the handler of this connection, right after it returns). */
void mcpgw_http_conn_close(struct mcpgw_http_conn *c);
void mcpgw_http_conn_set_close_cb(struct mcpgw_http_conn *c, mcpgw_http_close_fn cb, void *arg);
/* Bytes queued and not yet written to the socket (h2: this stream's bytes not yet framed). */
size_t mcpgw_http_conn_pending_output(const struct mcpgw_http_conn *c);
/* The socket (h2: the socket of the stream's connection). */
int mcpgw_http_conn_fd(const struct mcpgw_http_conn *c);

#endif
