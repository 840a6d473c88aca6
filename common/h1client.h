/* h1client.h - a small asynchronous HTTP/1.1 client for cleartext (http://) origins on a
 * libevent loop: keep-alive pool per origin, no per-request setup; httpclient.c runs plain-http
 * requests through it and keeps libcurl for TLS, HTTP/2 and proxies. */
#ifndef MCPGW_COMMON_H1CLIENT_H
#define MCPGW_COMMON_H1CLIENT_H

#include "common/httpclient.h"

#include <stddef.h>

struct event_base;
struct mcpgw_h1;
struct mcpgw_h1_req;

/* Callbacks of one request, on the loop thread, with the contracts of struct mcpgw_hc_cbs (each
 * may cancel any request and start new ones; on_done is not called after a cancel). */
struct mcpgw_h1_cbs {
    void (*on_head)(void *arg);
    void (*on_body)(void *arg, const char *buf, size_t len);
    void (*on_done)(void *arg, enum mcpgw_hc_err err, const char *why);
};

/* One client per event base. Idle connections stay watched, so a server closing one is seen
 * and the connection dropped without a system call in the request path. */
struct mcpgw_h1 *mcpgw_h1_new(struct event_base *base);
/* Cancels every request (no callbacks), closes every connection and frees the client. */
void mcpgw_h1_free(struct mcpgw_h1 *c);

/* 1 when this engine can carry o: an http:// URL without user info that parses. */
int mcpgw_h1_can(const struct mcpgw_hc_opts *o);

/* Starts a request (o as for mcpgw_hc_start, everything copied; flags ignored). The request is
 * written at once when an idle connection to the origin is at hand, otherwise a connection is
 * opened; no callback fires before this returns. Returns NULL with err filled when the URL does
 * not parse. A request on a reused connection that fails before any byte of the answer arrived
 * (the server closed the idle connection as it was sent) is sent once more on a new
 * connection; once a byte of the answer arrived it is never sent again. */
struct mcpgw_h1_req *mcpgw_h1_start(struct mcpgw_h1 *c, const struct mcpgw_hc_opts *o,
                                    const struct mcpgw_h1_cbs *cbs, void *arg, char *err,
                                    size_t errlen);
/* Stops a request at any time, also from inside its own callbacks (then a no-op in on_done):
 * nothing of it fires afterwards; its connection is closed (its answer may still come). */
void mcpgw_h1_req_cancel(struct mcpgw_h1_req *r);

long mcpgw_h1_req_status(const struct mcpgw_h1_req *r);
const char *mcpgw_h1_req_header(const struct mcpgw_h1_req *r, const char *name);
/* 1 when the request opened a connection (also through the retry), 0 when it reused one. */
long mcpgw_h1_req_new_conns(const struct mcpgw_h1_req *r);

#endif
