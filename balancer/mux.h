/* mux.h - HTTP/2 connections from a balancer worker to a node (h2c, prior knowledge), each
 * carrying many long-lived streams.
 *
 * A session's GET stream is idle most of its life; over HTTP/1.1 each one holds a connection to
 * its node, i.e. two more sockets (~5 KB of kernel memory each) and a read and a write per event.
 * A mux carries all of a worker's streams to one node over one connection instead.
 *
 * The proxy speaks HTTP/1.1 to a mux: it opens a stream with an HTTP/1.1 request head (no body)
 * and reads the response as HTTP/1.1 bytes (status line, headers, chunked body, final chunk)
 * from the stream's input, so its response path (rewrite, HTTP/1.0 de-chunking, flow control)
 * is the same for both transports. Flow control is per stream: a paused stream stops returning
 * window to the node, so one slow client never holds up the others. */
#ifndef MCPGW_BALANCER_MUX_H
#define MCPGW_BALANCER_MUX_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct mcpgw_mux;
struct mcpgw_mux_stream;

enum mcpgw_mux_end {
    MCPGW_MUX_DONE,    /* the response ended: its last bytes (final chunk) are in the input */
    MCPGW_MUX_UNSENT,  /* the node never saw the request (connect failed, refused stream) */
    MCPGW_MUX_RESET,   /* the node reset the stream */
    MCPGW_MUX_LOST,    /* the connection failed or closed with the stream open */
    MCPGW_MUX_TIMEOUT, /* no response head within the timeout (mcpgw_mux_expire) */
};

struct mcpgw_mux_stream_cb {
    /* New bytes are in mcpgw_mux_stream_input(). */
    void (*input)(void *owner);
    /* The stream is over; the handle is invalid once this returns. For MCPGW_MUX_DONE the
     * input callback has seen every byte first. */
    void (*end)(void *owner, enum mcpgw_mux_end how, const char *why);
};

struct mcpgw_mux_cb {
    /* The connection failed (connected: after its connect completed). Called before its
     * streams end; the mux is unusable from then on and the owner should free it. err is an
     * errno value or 0 for a protocol error or an orderly close. */
    void (*failed)(void *arg, struct mcpgw_mux *m, int connected, int err, const char *why);
};

/* A mux over fd (a TCP socket to the node, its connect still pending when pending is set).
 * Takes the socket. NULL when libevent or nghttp2 cannot allocate (fd closed). */
struct mcpgw_mux *mcpgw_mux_new(struct event_base *base, int fd, int pending,
                                uint32_t connect_timeout_ms, uint32_t conn_window,
                                const struct mcpgw_mux_cb *cb, void *arg);
/* End every stream (their end callbacks fire with MCPGW_MUX_LOST, or UNSENT when nothing was
 * sent) and close the connection. Safe from inside any callback of this mux. */
void mcpgw_mux_free(struct mcpgw_mux *m);

/* Whether new streams may go on m: not failed, no GOAWAY, under the node's stream limit. */
int mcpgw_mux_usable(const struct mcpgw_mux *m);
unsigned mcpgw_mux_streams(const struct mcpgw_mux *m);
/* Whether the node answered the preface with bytes that are not HTTP/2 (a node that speaks
 * HTTP/1.1 only), as opposed to not answering at all (a dying node closes or resets). */
int mcpgw_mux_not_h2(const struct mcpgw_mux *m);

/* Open a stream for the HTTP/1.1 request in head (a complete head, then its whole body if it
 * has one: a listen request's few hundred bytes; left in place, not drained). Returns NULL with a
 * reason in why when the head cannot be carried. */
struct mcpgw_mux_stream *mcpgw_mux_open(struct mcpgw_mux *m, struct evbuffer *head,
                                        const struct mcpgw_mux_stream_cb *cb, void *owner,
                                        char *why, size_t whylen);
struct evbuffer *mcpgw_mux_stream_input(struct mcpgw_mux_stream *s);
/* Whether the node may have seen the request (its HEADERS frame was sent). */
int mcpgw_mux_stream_sent(const struct mcpgw_mux_stream *s);
/* Stop / start returning flow-control window for what the owner has not yet passed on. */
void mcpgw_mux_stream_pause(struct mcpgw_mux_stream *s);
void mcpgw_mux_stream_resume(struct mcpgw_mux_stream *s);
/* The owner is done with s: reset it if it is still open. No callback fires for it after. */
void mcpgw_mux_stream_close(struct mcpgw_mux_stream *s);

/* End, with MCPGW_MUX_TIMEOUT, streams whose response head has not come within timeout_ms. */
void mcpgw_mux_expire(struct mcpgw_mux *m, uint32_t timeout_ms);

#endif
