/* httpclient.h - an asynchronous HTTP client on a libevent loop (libcurl's multi-socket
 * interface): streaming responses, cancel at any time, TLS, HTTP/2, connection reuse. */
#ifndef MCPGW_COMMON_HTTPCLIENT_H
#define MCPGW_COMMON_HTTPCLIENT_H

#include <stddef.h>

struct event_base;
struct mcpgw_hc;
struct mcpgw_hc_req;

enum mcpgw_hc_err {
    MCPGW_HC_OK,         /* a complete response was received (any status) */
    MCPGW_HC_E_CONNECT,  /* name resolution or connection failed (refused, unreachable) */
    MCPGW_HC_E_TIMEOUT,  /* the request's timeout_ms or connect_timeout_ms passed */
    MCPGW_HC_E_TLS,      /* TLS handshake or certificate verification failed */
    MCPGW_HC_E_TRANSFER, /* the connection broke or the response was malformed */
    MCPGW_HC_E_COUNT
};
const char *mcpgw_hc_err_str(enum mcpgw_hc_err e);

/* Callbacks of one request, all on the loop thread. Each may call mcpgw_hc_req_cancel on this or
 * any other request and start new requests. */
struct mcpgw_hc_cbs {
    /* The final response head arrived (1xx heads are skipped): status and headers are readable
     * with mcpgw_hc_req_status / mcpgw_hc_req_header from now until on_done returns. Optional. */
    void (*on_head)(void *arg, struct mcpgw_hc_req *r);
    /* A piece of the body, as it arrives (an event stream may last hours): buf is borrowed until
     * the callback returns. Optional (the body is then discarded). */
    void (*on_body)(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len);
    /* The request ended: err says how, why is a sentence for logs (borrowed). r stays readable
     * until the callback returns and is freed afterwards. Not called after a cancel. Required. */
    void (*on_done)(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why);
};

enum {
    MCPGW_HC_H2C = 1,  /* HTTP/2 over cleartext with prior knowledge (for http:// URLs known to
                        * speak h2c); https:// URLs negotiate HTTP/2 through ALPN without it.
                        * With libcurl < 8.0 each such request uses a fresh connection (see .c) */
    MCPGW_HC_CURL = 2, /* use libcurl even where the built-in HTTP/1.1 client would serve (plain
                        * http:// without H2C and without a proxy variable set): for tests, and
                        * as a way back should a server need libcurl's leniency */
};

struct mcpgw_hc_opts {
    const char *method;         /* "GET", "POST", "DELETE", ...; NULL = GET, or POST with body */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const char *body;           /* copied; may be NULL */
    size_t body_len;
    long timeout_ms;         /* whole request, 0 = none (event streams) */
    long connect_timeout_ms; /* 0 = 10 s */
    int flags;               /* MCPGW_HC_* */
};

/* One client per event base; requests to the same origin share (and reuse) connections, HTTP/2
 * requests are multiplexed on one. Plain http:// requests (no H2C, no MCPGW_HC_CURL, and none of
 * http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY set when the client is made) go through a small
 * built-in HTTP/1.1 client (common/h1client.h) with the same contracts; everything else through
 * libcurl. Returns NULL when libcurl cannot be set up. */
struct mcpgw_hc *mcpgw_hc_new(struct event_base *base);
/* The event base the client runs on (for its users' own timers). */
struct event_base *mcpgw_hc_base(const struct mcpgw_hc *hc);
/* Cancels every request (no callbacks) and frees the client. Not from inside one of its
 * callbacks. */
void mcpgw_hc_free(struct mcpgw_hc *hc);

/* Starts a request; everything in o is copied. Returns the request (owned by the client: it is
 * freed after on_done returns, or by mcpgw_hc_req_cancel), or NULL with err filled when the
 * options are unusable. The request goes out on the next loop turn, so no callback fires before
 * mcpgw_hc_start returns. */
struct mcpgw_hc_req *mcpgw_hc_start(struct mcpgw_hc *hc, const struct mcpgw_hc_opts *o,
                                    const struct mcpgw_hc_cbs *cbs, void *arg, char *err,
                                    size_t errlen);
/* Stops a request at any time, also from inside its own callbacks: no callback of it fires once
 * this returns, and r must not be used again. */
void mcpgw_hc_req_cancel(struct mcpgw_hc_req *r);

/* The response status, 0 before the head. */
long mcpgw_hc_req_status(const struct mcpgw_hc_req *r);
/* The value of the first response header with this name (case-insensitive), or NULL. Borrowed
 * until on_done returns. */
const char *mcpgw_hc_req_header(const struct mcpgw_hc_req *r, const char *name);
/* 1 for HTTP/1.x, 2 for HTTP/2, 0 before the head. */
int mcpgw_hc_req_http_version(const struct mcpgw_hc_req *r);
/* Number of new connections this request opened (0 = it reused one); valid in on_done. */
long mcpgw_hc_req_new_conns(const struct mcpgw_hc_req *r);

#endif
