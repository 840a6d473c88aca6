/* httpd_int.h - what httpd.c (HTTP/1.1, connections) and httpd_h2.c (h2c streams) share.
 *
 * Not for other modules: they see struct mcpgw_http_conn only as the opaque handle of httpd.h.
 * That handle is either an HTTP/1.1 connection or one HTTP/2 stream; both objects start with a
 * struct httpd_handle saying which, and the public functions of httpd.h dispatch on it. */
#ifndef MCPGW_COMMON_HTTPD_INT_H
#define MCPGW_COMMON_HTTPD_INT_H

#include "common/httpd.h"

#include <stdint.h>
#include <sys/queue.h>

struct bufferevent;
struct event;
struct chunked_req;
struct h2_conn;
struct h2_stream;

enum httpd_kind { HTTPD_KIND_H1, HTTPD_KIND_H2_STREAM, HTTPD_KIND_COUNT };

/* First member of every object handed to the application as a struct mcpgw_http_conn. */
struct httpd_handle {
    uint8_t kind; /* enum httpd_kind */
};

enum conn_state {
    ST_HEAD,      /* waiting for (the rest of) a request head */
    ST_BODY,      /* head parsed, waiting for a Content-Length body */
    ST_CHUNKED,   /* head parsed, decoding a chunked body */
    ST_HANDLING,  /* handler has the request, no response started */
    ST_STREAMING, /* streamed response under way */
    ST_CLOSING,   /* flushing the last response (or an h2 GOAWAY), then close */
};

/* Every live connection is on one list: idle or head (timed), or busy (no timeout). */
enum { LIST_NONE, LIST_IDLE, LIST_HEAD, LIST_BUSY };

/* One accepted TCP connection. Speaks HTTP/1.1, or h2 once its first bytes were the client
 * preface: then h2 holds the session and the connection is never handed to the application. */
struct mcpgw_http_conn {
    struct httpd_handle hdr; /* HTTPD_KIND_H1 */
    uint8_t state;
    uint8_t list;
    uint8_t keep_alive : 1;
    uint8_t in_handler : 1;
    uint8_t dead : 1;
    uint8_t stream_chunked : 1;
    uint8_t is_head_req : 1;
    uint8_t linger : 1; /* refused: discard input until the client closes (see fail) */
    uint8_t fresh : 1;  /* nothing read yet: may still turn out to be h2 */
    uint8_t is_h2 : 1;  /* switched to h2 (h2 is NULL again once the session is gone) */
    uint32_t scanned;   /* bytes of the input already searched for the end of the head */
    struct bufferevent *bev;
    struct mcpgw_httpd *srv;
    TAILQ_ENTRY(mcpgw_http_conn) link; /* timeout list (idle, head or busy) */
    uint64_t deadline_ms;
    mcpgw_http_close_fn on_close;
    void *close_arg;
    union {
        struct chunked_req *cr; /* HTTP/1.1: a chunked request body being decoded */
        struct h2_conn *h2;     /* h2: the session and its streams */
    } u;
    uint32_t head_len;
    int64_t body_len;
};

TAILQ_HEAD(conn_list, mcpgw_http_conn);

struct mcpgw_httpd {
    struct event_base *base;
    struct evconnlistener *lev;
    struct mcpgw_httpd_config cfg;
    mcpgw_http_handler_fn handler;
    void *arg;
    struct conn_list idle, head, busy;
    struct event *sweep;
    uint32_t nconns;   /* HTTP/1.1 and h2 connections, plus live h2 streams */
    size_t read_bound; /* the largest max_head_bytes + max_body_bytes ever set */
    uint64_t last_accept_warn;
};

static inline int httpd_is_h2_stream(const struct mcpgw_http_conn *c)
{
    return ((const struct httpd_handle *)c)->kind == HTTPD_KIND_H2_STREAM;
}

/* ---- httpd.c, for httpd_h2.c ---- */

/* Put c on a timeout list (LIST_IDLE, LIST_HEAD or LIST_BUSY); timeout 0 means LIST_BUSY. */
void mcpgw_httpd_list_append(struct mcpgw_http_conn *c, int which, uint32_t timeout_ms);
/* Close the connection now: for h2, every stream's close callback fires first. */
void mcpgw_httpd_conn_free(struct mcpgw_http_conn *c);

/* ---- httpd_h2.c ---- */

/* The 24-byte client connection preface (RFC 9113 3.4). */
#define MCPGW_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MCPGW_H2_PREFACE_LEN 24

/* Switch a fresh connection whose input starts with the preface to h2 and serve what arrived.
 * May free c. */
void mcpgw_h2_start(struct mcpgw_http_conn *c);
/* Bufferevent read and write callbacks of an h2 connection. May free c. */
void mcpgw_h2_on_read(struct mcpgw_http_conn *c);
void mcpgw_h2_on_write(struct mcpgw_http_conn *c);
/* The idle timeout passed with no stream open: send GOAWAY, close once flushed. Takes c off
 * the idle list. May free c. */
void mcpgw_h2_idle(struct mcpgw_http_conn *c);
/* End the session: every stream still held by the application gets its close callback, then
 * the streams and the session are freed (c itself is not). Safe to call twice. */
void mcpgw_h2_shutdown(struct mcpgw_http_conn *c);

/* The httpd.h API on an h2 stream handle. */
void mcpgw_h2_respond(struct h2_stream *st, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t len);
void mcpgw_h2_stream_begin(struct h2_stream *st, int status, const char *content_type,
                           const char *extra_headers);
int mcpgw_h2_stream_write(struct h2_stream *st, const void *data, size_t len);
void mcpgw_h2_stream_end(struct h2_stream *st);
void mcpgw_h2_close(struct h2_stream *st);
void mcpgw_h2_set_close_cb(struct h2_stream *st, mcpgw_http_close_fn cb, void *arg);
size_t mcpgw_h2_pending_output(const struct h2_stream *st);
int mcpgw_h2_fd(const struct h2_stream *st);

#endif
