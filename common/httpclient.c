/* httpclient.c - libcurl's multi-socket interface driven by a libevent base: curl tells us which
 * sockets to watch and when its timer is due, the loop tells curl what became ready. */
#include "common/httpclient.h"

#include "common/h1client.h"
#include "common/util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Idle connections kept open for reuse, across all origins. */
#define MCPGW_HC_MAX_IDLE_CONNS 512L
/* Finished easy handles kept for the next requests (see req_free): ~15 KiB each with 7.88. */
#define MCPGW_HC_MAX_SPARE_EASY 64

enum req_state { REQ_PENDING, REQ_ACTIVE, REQ_DEAD };

struct mcpgw_hc_req {
    struct mcpgw_hc *hc;
    CURL *easy;
    struct curl_slist *hdrs;
    struct mcpgw_hc_cbs cbs;
    void *arg;
    enum req_state state;
    int in_done; /* on_done is running: the caller frees r afterwards */
    int added;   /* in the multi handle */
    int stream;  /* no whole-request timeout: an event stream, open for long */
    long status; /* of the final head, once head_done */
    int head_done;
    int http_version;
    char **rh; /* response header lines of the current head, "Name: value" */
    size_t nrh, caprh;
    char errbuf[CURL_ERROR_SIZE];
    struct mcpgw_hc_req *prev, *next; /* every live request, for mcpgw_hc_free */
    struct mcpgw_hc_req *qnext;       /* pending or dead queue */
    struct mcpgw_h1_req *h1;          /* the request in the built-in client, or NULL (curl) */
};

/* A multi handle with its own connection cache, sockets and timer. */
struct hc_lane {
    struct mcpgw_hc *hc;
    CURLM *multi;
    struct event *timer;
    int driving; /* inside curl_multi_socket_action */
};

/* Requests and event streams run in separate multi handles. libcurl 7.88 looks for a reusable
 * connection by walking every connection it holds to the origin, busy ones too, and an event
 * stream keeps its HTTP/1.1 connection busy for as long as it is open: with thousands of
 * per-client upstream sessions (each with its GET stream) in one handle, every request walked
 * thousands of connections, and a node spent most of its CPU there (docs/results.md). In a
 * handle of their own, the streams' connections are never looked at by requests. */
enum { LANE_REQ, LANE_STREAM, LANE_COUNT };

struct mcpgw_hc {
    struct event_base *base;
    struct hc_lane lane[LANE_COUNT];
    struct event *kick; /* adds pending requests, frees cancelled ones */
    struct mcpgw_hc_req *all;
    struct mcpgw_hc_req *pending, *dead;
    long streams;                         /* event streams in the multi handle */
    CURL *spare[MCPGW_HC_MAX_SPARE_EASY]; /* reset easy handles, ready for mcpgw_hc_start */
    int nspare;
    struct mcpgw_h1 *h1; /* plain http:// requests; made at the first */
    int proxy_env;       /* a proxy variable is set: libcurl for everything */
};

/* libcurl (7.88) counts every connection against CURLMOPT_MAXCONNECTS, busy ones too: with more
 * open event streams than the limit (thousands of per-client upstream sessions, each holding
 * its GET stream on a connection of its own over HTTP/1.1), every finished request scanned the
 * whole cache for one to close and closed its own connection, so the next request connected
 * again; most of a node's CPU went there (docs/results.md). The limit is the idle connections
 * we want to keep, above the streams. */
static void size_cache(struct mcpgw_hc *hc)
{
    curl_multi_setopt(hc->lane[LANE_STREAM].multi, CURLMOPT_MAXCONNECTS,
                      MCPGW_HC_MAX_IDLE_CONNS + hc->streams);
}

/* One watched socket: curl owns the socket, we own the event. */
struct hc_sock {
    struct hc_lane *ln;
    struct event *ev;
};

static const char *const err_names[MCPGW_HC_E_COUNT] = {"ok", "connect", "timeout", "tls",
                                                        "transfer"};

const char *mcpgw_hc_err_str(enum mcpgw_hc_err e)
{
    return (unsigned)e < MCPGW_HC_E_COUNT ? err_names[e] : "?";
}

static void check_done(struct hc_lane *ln);

static void drive(struct hc_lane *ln, curl_socket_t fd, int action)
{
    int running;
    ln->driving = 1;
    curl_multi_socket_action(ln->multi, fd, action, &running);
    ln->driving = 0;
    check_done(ln);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct hc_lane *ln = ((struct hc_sock *)arg)->ln; /* arg may be freed inside drive() */
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    drive(ln, fd, action);
}

static void on_timer_event(evutil_socket_t fd, short what, void *arg)
{
    drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: curl says what to watch on s (or to stop watching it). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct hc_lane *ln = userp;
    struct hc_sock *hs = sockp;
    short kind = EV_PERSIST;
    if (what == CURL_POLL_REMOVE) {
        if (hs) {
            event_free(hs->ev);
            free(hs);
            curl_multi_assign(ln->multi, s, NULL);
        }
        return 0;
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (!hs) {
        hs = xcalloc(1, sizeof(*hs));
        hs->ln = ln;
        curl_multi_assign(ln->multi, s, hs);
    } else {
        event_free(hs->ev);
    }
    hs->ev = event_new(ln->hc->base, s, kind, on_sock_event, hs);
    event_add(hs->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back after timeout_ms (-1: never). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct hc_lane *ln = userp;
    if (timeout_ms < 0) {
        evtimer_del(ln->timer);
    } else if (timeout_ms == 0 && !ln->driving) {
        /* "Now" (every added request asks for it: that is when curl sends it): run in this
         * loop turn, after the current callback, rather than as a 0 ms timer, which costs a
         * further turn of the loop and an epoll_wait per request (docs/federation.md). Not
         * when curl asks from inside its own run: a 0 ms timer then lets the loop poll
         * sockets in between, so a transfer that keeps asking cannot starve the loop. */
        evtimer_del(ln->timer);
        event_active(ln->timer, EV_TIMEOUT, 0);
    } else {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(ln->timer, &tv);
    }
    return 0;
}

static void req_unlink(struct mcpgw_hc_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->hc->all = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r);
}

static void req_free(struct mcpgw_hc_req *r)
{
    struct mcpgw_hc *hc = r->hc;
    if (r->h1) { /* the built-in client's: it frees its own part */
        if (!r->in_done)
            mcpgw_h1_req_cancel(r->h1);
        req_unlink(r);
        return;
    }
    if (r->added)
        curl_multi_remove_handle(hc->lane[r->stream ? LANE_STREAM : LANE_REQ].multi, r->easy);
    if (r->added && r->stream) {
        hc->streams--;
        size_cache(hc);
    }
    /* An easy handle costs ~15 KiB of allocations (its state, its buffers; measured, 7.88) that
     * curl_easy_init and curl_easy_cleanup made and freed for every request; a reset one keeps
     * them and takes every option back to its default, so nothing of this request leaks into
     * the next. */
    if (hc->nspare < MCPGW_HC_MAX_SPARE_EASY) {
        curl_easy_reset(r->easy);
        hc->spare[hc->nspare++] = r->easy;
    } else {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    for (size_t i = 0; i < r->nrh; i++)
        free(r->rh[i]);
    free(r->rh);
    req_unlink(r);
}

/* Adds what mcpgw_hc_start queued and frees what was cancelled: curl forbids both from inside its
 * own callbacks, so both wait for this loop turn. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_hc *hc = arg;
    struct mcpgw_hc_req *q;
    while ((q = hc->dead)) {
        hc->dead = q->qnext;
        req_free(q);
    }
    while ((q = hc->pending)) {
        hc->pending = q->qnext;
        q->state = REQ_ACTIVE;
        q->added = 1;
        if (q->stream) {
            hc->streams++;
            size_cache(hc);
        }
        curl_multi_add_handle(hc->lane[q->stream ? LANE_STREAM : LANE_REQ].multi, q->easy);
    }
}

static enum mcpgw_hc_err map_err(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return MCPGW_HC_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return MCPGW_HC_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return MCPGW_HC_E_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return MCPGW_HC_E_TLS;
    default:
        return MCPGW_HC_E_TRANSFER;
    }
}

static void check_done(struct hc_lane *ln)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(ln->multi, &left))) {
        struct mcpgw_hc_req *r;
        CURLcode res = m->data.result;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r->state == REQ_DEAD)
            continue; /* cancelled: on_kick frees it */
        r->in_done = 1;
        r->cbs.on_done(r->arg, r, map_err(res),
                       res == CURLE_OK ? "ok"
                                       : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(res)));
        req_free(r);
    }
}

/* Completes the head: curl hands every head (1xx, then the final one) line by line. */
static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct mcpgw_hc_req *r = arg;
    size_t len = size * n, l = len;
    if (r->state == REQ_DEAD)
        return 0;
    while (l > 0 && (buf[l - 1] == '\r' || buf[l - 1] == '\n'))
        l--;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new head starts: forget a 1xx one */
        for (size_t i = 0; i < r->nrh; i++)
            free(r->rh[i]);
        r->nrh = 0;
        return len;
    }
    if (l == 0) {
        long status = 0, ver = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || r->head_done)
            return len; /* an interim head, or trailers */
        curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
        r->status = status;
        r->http_version = ver == CURL_HTTP_VERSION_2_0 ? 2 : ver == CURL_HTTP_VERSION_3 ? 3 : 1;
        r->head_done = 1;
        if (r->cbs.on_head)
            r->cbs.on_head(r->arg, r);
        return len;
    }
    if (r->head_done)
        return len;
    if (r->nrh == r->caprh) {
        r->caprh = r->caprh ? r->caprh * 2 : 16;
        r->rh = xrealloc(r->rh, r->caprh * sizeof(*r->rh));
    }
    r->rh[r->nrh++] = xstrndup(buf, l);
    return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *arg)
{
    struct mcpgw_hc_req *r = arg;
    if (r->state == REQ_DEAD)
        return 0; /* aborts the transfer; on_kick removes it */
    if (r->cbs.on_body && n > 0)
        r->cbs.on_body(r->arg, r, buf, size * n);
    return size * n;
}

struct mcpgw_hc *mcpgw_hc_new(struct event_base *base)
{
    static int global_done;
    struct mcpgw_hc *hc;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    hc = xcalloc(1, sizeof(*hc));
    hc->base = base;
    for (int i = 0; i < LANE_COUNT; i++) {
        struct hc_lane *ln = &hc->lane[i];
        ln->hc = hc;
        ln->multi = curl_multi_init();
        if (!ln->multi) {
            mcpgw_hc_free(hc);
            return NULL;
        }
        ln->timer = evtimer_new(base, on_timer_event, ln);
        curl_multi_setopt(ln->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(ln->multi, CURLMOPT_SOCKETDATA, ln);
        curl_multi_setopt(ln->multi, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(ln->multi, CURLMOPT_TIMERDATA, ln);
        /* Many upstream sessions to one server share its connection(s): HTTP/2 multiplexes
         * them. */
        curl_multi_setopt(ln->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        curl_multi_setopt(ln->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
        /* Keep idle HTTP/1.1 connections for reuse. libcurl sizes its cache by the easy handles
         * added at the moment, and ours live for one request: after a burst it closed all but a
         * few and the next burst connected again (thousands of TIME-WAITs a second under load,
         * and a connect in the latency of most calls). */
        curl_multi_setopt(ln->multi, CURLMOPT_MAXCONNECTS, MCPGW_HC_MAX_IDLE_CONNS);
    }
    hc->kick = event_new(base, -1, 0, on_kick, hc);
    size_cache(hc);
    /* libcurl honours these for http:// URLs (NO_PROXY may exempt some): rather than copy its
     * rules, any of them set keeps every request on libcurl. */
    for (const char *const *v =
             (const char *const[]){"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", NULL};
         *v; v++) {
        const char *e = getenv(*v);
        hc->proxy_env |= e && *e;
    }
    return hc;
}

struct event_base *mcpgw_hc_base(const struct mcpgw_hc *hc)
{
    return hc->base;
}

void mcpgw_hc_free(struct mcpgw_hc *hc)
{
    if (!hc)
        return;
    while (hc->all)
        req_free(hc->all);
    for (int i = 0; i < LANE_COUNT; i++) {
        if (hc->lane[i].multi)
            curl_multi_cleanup(hc->lane[i].multi);
        if (hc->lane[i].timer)
            event_free(hc->lane[i].timer);
    }
    if (hc->kick)
        event_free(hc->kick);
    while (hc->nspare > 0)
        curl_easy_cleanup(hc->spare[--hc->nspare]);
    mcpgw_h1_free(hc->h1);
    free(hc);
}

/* The built-in client calls these with our request as arg. */
static void h1_on_head(void *arg)
{
    struct mcpgw_hc_req *r = arg;
    r->head_done = 1;
    if (r->cbs.on_head)
        r->cbs.on_head(r->arg, r);
}

static void h1_on_body(void *arg, const char *buf, size_t len)
{
    struct mcpgw_hc_req *r = arg;
    if (r->cbs.on_body)
        r->cbs.on_body(r->arg, r, buf, len);
}

static void h1_on_done(void *arg, enum mcpgw_hc_err err, const char *why)
{
    struct mcpgw_hc_req *r = arg;
    r->in_done = 1;
    r->cbs.on_done(r->arg, r, err, why);
    req_unlink(r); /* the built-in client frees its part when this returns */
}

static struct mcpgw_hc_req *start_h1(struct mcpgw_hc *hc, const struct mcpgw_hc_opts *o,
                                     const struct mcpgw_hc_cbs *cbs, void *arg, char *err,
                                     size_t errlen)
{
    static const struct mcpgw_h1_cbs h1cbs = {h1_on_head, h1_on_body, h1_on_done};
    struct mcpgw_hc_req *r = xcalloc(1, sizeof(*r));
    if (!hc->h1)
        hc->h1 = mcpgw_h1_new(hc->base);
    r->hc = hc;
    r->cbs = *cbs;
    r->arg = arg;
    r->state = REQ_ACTIVE;
    r->h1 = mcpgw_h1_start(hc->h1, o, &h1cbs, r, err, errlen);
    if (!r->h1) {
        free(r);
        return NULL;
    }
    r->next = hc->all;
    if (hc->all)
        hc->all->prev = r;
    hc->all = r;
    return r;
}

struct mcpgw_hc_req *mcpgw_hc_start(struct mcpgw_hc *hc, const struct mcpgw_hc_opts *o,
                                    const struct mcpgw_hc_cbs *cbs, void *arg, char *err,
                                    size_t errlen)
{
    struct mcpgw_hc_req *r;
    CURL *e;
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        snprintf(err, errlen, "URL '%s' is not http:// or https://", o->url ? o->url : "");
        return NULL;
    }
    if (!cbs->on_done) {
        snprintf(err, errlen, "no on_done callback");
        return NULL;
    }
    if (!(o->flags & (MCPGW_HC_H2C | MCPGW_HC_CURL)) && !hc->proxy_env && mcpgw_h1_can(o))
        return start_h1(hc, o, cbs, arg, err, errlen);
    e = hc->nspare > 0 ? hc->spare[--hc->nspare] : curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "libcurl could not create a request");
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->hc = hc;
    r->easy = e;
    r->cbs = *cbs;
    r->arg = arg;
    r->stream = o->timeout_ms <= 0;
    for (const char *const *h = o->headers; h && *h; h++)
        r->hdrs = curl_slist_append(r->hdrs, *h);
    /* curl would otherwise add "Expect: 100-continue" to large bodies (over 1 MiB in 7.88, over
     * 1 KiB in older releases) and hold the body back until a 100 or a second passes: MCP
     * servers (ours included) send no 100, so each such call would wait that second. */
    r->hdrs = curl_slist_append(r->hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     (o->flags & MCPGW_HC_H2C) ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                                               : (long)CURL_HTTP_VERSION_2TLS);
    /* libcurl before 8.0 breaks a reused h2c prior-knowledge connection (every later request on
     * it fails in "the HTTP2 framing layer", curl issue 10634): there, each such request gets a
     * connection of its own. Correct, not fast; TLS with ALPN is not affected. */
    if ((o->flags & MCPGW_HC_H2C) && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    /* An event stream over plain HTTP/1.1 holds its connection for as long as it is open, so no
     * connection of the cache can ever serve it: libcurl would still walk every connection to
     * the origin before opening one (O(streams) per stream, O(streams^2) when thousands of
     * upstream sessions open their streams at once after a failover), and after it ends its
     * connection is not worth keeping. Over TLS, ALPN may give HTTP/2, which multiplexes. */
    else if (r->stream && !(o->flags & MCPGW_HC_H2C) && strncmp(o->url, "http://", 7) == 0) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    /* Wait for an HTTP/2 connection being set up rather than opening a second one. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (o->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body);
    }
    if (o->method && strcmp(o->method, "GET") == 0 && !o->body)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (o->method && strcmp(o->method, o->body ? "POST" : "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
    r->state = REQ_PENDING;
    r->next = hc->all;
    if (hc->all)
        hc->all->prev = r;
    hc->all = r;
    r->qnext = hc->pending;
    hc->pending = r;
    event_active(hc->kick, EV_TIMEOUT, 0);
    return r;
}

void mcpgw_hc_req_cancel(struct mcpgw_hc_req *r)
{
    struct mcpgw_hc *hc = r->hc;
    if (r->in_done || r->state == REQ_DEAD)
        return; /* on_done's caller frees it / already queued */
    if (r->h1) {
        req_free(r);
        return;
    }
    if (r->state == REQ_PENDING) { /* still queued: take it out of the pending queue */
        struct mcpgw_hc_req **pp = &hc->pending;
        while (*pp != r)
            pp = &(*pp)->qnext;
        *pp = r->qnext;
    }
    r->state = REQ_DEAD;
    r->qnext = hc->dead;
    hc->dead = r;
    event_active(hc->kick, EV_TIMEOUT, 0);
}

long mcpgw_hc_req_status(const struct mcpgw_hc_req *r)
{
    if (r->h1)
        return mcpgw_h1_req_status(r->h1);
    return r->head_done ? r->status : 0;
}

const char *mcpgw_hc_req_header(const struct mcpgw_hc_req *r, const char *name)
{
    size_t nl = strlen(name);
    if (r->h1)
        return mcpgw_h1_req_header(r->h1, name);
    for (size_t i = 0; i < r->nrh; i++) {
        const char *h = r->rh[i];
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ' || *h == '\t')
                h++;
            return h;
        }
    }
    return NULL;
}

int mcpgw_hc_req_http_version(const struct mcpgw_hc_req *r)
{
    if (r->h1)
        return r->head_done;
    return r->http_version;
}

long mcpgw_hc_req_new_conns(const struct mcpgw_hc_req *r)
{
    long n = 0;
    if (r->h1)
        return mcpgw_h1_req_new_conns(r->h1);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &n);
    return n;
}
