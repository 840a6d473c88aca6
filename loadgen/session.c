/* session.c - setup, GET stream and notification accounting of one session (see session.h). */
#include "loadgen/session.h"

#include "common/log.h"
#include "common/rand.h"
#include "common/sse.h"
#include "common/util.h"
#include "loadgen/lathist.h"
#include "loadgen/pool.h"
#include "loadgen/worker.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One worker per process: the stream callbacks, whose argument is the session, reach it through
 * here. The only file-level state left of the worker's: a back pointer in each of 100,000
 * sessions would cost 800 KB to say the same. */
static struct lg_worker *the_worker;

#define SSE_MAX_LINE (1u << 20)

static void stream_open(struct lg_worker *w, struct lg_session *s);
static void after_initialized(struct lg_worker *w, struct lg_session *s);
static void after_stream(struct lg_worker *w, struct lg_session *s);

/* ---- response bodies ---- */

static void on_resp_event(void *arg, const char *id, const char *event, const char *data,
                          size_t len)
{
    /* The response is the event that carries a result or an error (not a notification). */
    if (len && (memmem(data, len, "\"result\"", 8) || memmem(data, len, "\"error\"", 7)) &&
        memmem(data, len, "\"id\"", 4)) {
        struct lg_worker *w = arg;
        free(w->rpc_found);
        w->rpc_found = xstrndup(data, len);
        w->rpc_found_len = len;
    }
}

int mcpgw_lgsession_rpc_body(struct lg_worker *w, const struct mcpgw_client_resp *resp,
                             const char **p, size_t *n)
{
    const struct mcpgw_http_header *ct =
        resp->head ? mcpgw_http_find(resp->head, "content-type") : NULL;
    if (ct && ct->value_len >= 17 && mcpgw_strieq(ct->value, 17, "text/event-stream")) {
        struct mcpgw_sse_parser *sp = mcpgw_sse_parser_new(SSE_MAX_LINE, on_resp_event, w);
        free(w->rpc_found);
        w->rpc_found = NULL;
        mcpgw_sse_parser_feed(sp, resp->body, resp->body_len);
        mcpgw_sse_parser_feed(sp, "\n\n", 2);
        mcpgw_sse_parser_free(sp);
        if (!w->rpc_found)
            return -1;
        *p = w->rpc_found;
        *n = w->rpc_found_len;
        return 0;
    }
    *p = resp->body;
    *n = resp->body_len;
    return 0;
}

static int has_result(struct lg_worker *w, const struct mcpgw_client_resp *resp)
{
    const char *p;
    size_t n;
    if (mcpgw_lgsession_rpc_body(w, resp, &p, &n) < 0)
        return 0;
    return memmem(p, n, "\"result\"", 8) != NULL;
}

/* ---- setup ---- */

static struct lg_req *req(struct lg_worker *w, struct lg_session *s, int kind)
{
    return mcpgw_worker_req_new(w, s, kind, mcpgw_now_us());
}

void mcpgw_lgsession_start(struct lg_worker *w, struct lg_session *s, uint64_t due_us)
{
    the_worker = w;
    s->state = LG_SS_INIT;
    s->setup_start_us = due_us;
    if (!s->writer)
        w->c[LG_C_SESS_ATTEMPTED]++;
    if (w->cfg->era26) { /* no initialize: the listen stream, if any, is the whole setup */
        s->state = LG_SS_INITIALIZED;
        s->node = mcpgw_worker_node_index(w, "", 0);
        after_initialized(w, s);
        return;
    }
    mcpgw_pool_submit(w, mcpgw_worker_req_new(w, s, LG_REQ_INIT, due_us));
}

static void setup_failed(struct lg_worker *w, struct lg_session *s, const char *why)
{
    if (mcpgw_now_ms() - w->setup_err_log_ms > 1000) {
        w->setup_err_log_ms = mcpgw_now_ms();
        log_warn("worker %u: session setup failed: %s", w->idx, why);
    }
    s->state = LG_SS_FAILED;
    if (!s->writer)
        w->c[LG_C_SESS_FAILED]++;
    mcpgw_lgsession_close(w, s);
    mcpgw_worker_session_settled(w, s);
}

static void established(struct lg_worker *w, struct lg_session *s)
{
    s->state = LG_SS_ESTABLISHED;
    mcpgw_worker_session_established(w, s);
    mcpgw_worker_session_settled(w, s);
}

/* After initialized: the stream, then the subscription, then done. */
static void after_initialized(struct lg_worker *w, struct lg_session *s)
{
    if (w->cfg->get_streams && !s->writer) {
        s->state = LG_SS_STREAM;
        stream_open(w, s);
    } else {
        established(w, s);
    }
}

static void after_stream(struct lg_worker *w, struct lg_session *s)
{
    if (w->cfg->subscribe[0] && !w->cfg->era26) { /* a listen stream's filter names the note */
        s->state = LG_SS_SUBSCRIBE;
        mcpgw_pool_submit(w, req(w, s, LG_REQ_SUBSCRIBE));
    } else {
        established(w, s);
    }
}

void mcpgw_lgsession_setup_response(struct lg_worker *w, struct lg_req *r, int err,
                                    const struct mcpgw_client_resp *resp)
{
    struct lg_session *s = r->s;
    int kind = r->kind;
    char why[96];
    mcpgw_worker_req_free(w, r);
    if (s->state == LG_SS_FAILED || s->state == LG_SS_LOST || w->phase == LG_PH_FINISHING)
        return;
    if (err != MCPGW_CLIENT_OK) {
        snprintf(why, sizeof(why), "%s: %s",
                 kind == LG_REQ_INIT          ? "initialize"
                 : kind == LG_REQ_INITIALIZED ? "initialized"
                                              : "subscribe",
                 mcpgw_client_err_str(err));
        setup_failed(w, s, why);
        return;
    }
    switch (kind) {
    case LG_REQ_INIT: {
        const struct mcpgw_http_header *h = mcpgw_http_find(resp->head, "mcp-session-id");
        if (resp->status != 200 || !h || h->value_len == 0 || h->value_len > 255 ||
            !has_result(w, resp)) {
            snprintf(why, sizeof(why), "initialize answered %d%s", resp->status,
                     h ? "" : " without Mcp-Session-Id");
            setup_failed(w, s, why);
            return;
        }
        s->sid = xstrndup(h->value, h->value_len);
        s->state = LG_SS_INITIALIZED;
        mcpgw_pool_submit(w, req(w, s, LG_REQ_INITIALIZED));
        return;
    }
    case LG_REQ_INITIALIZED:
        if (resp->status < 200 || resp->status > 299) {
            snprintf(why, sizeof(why), "notifications/initialized answered %d", resp->status);
            setup_failed(w, s, why);
            return;
        }
        after_initialized(w, s);
        return;
    case LG_REQ_SUBSCRIBE:
        if (resp->status != 200 || !has_result(w, resp)) {
            snprintf(why, sizeof(why), "resources/subscribe answered %d", resp->status);
            setup_failed(w, s, why);
            return;
        }
        established(w, s);
        return;
    }
}

/* ---- notifications ---- */

static void track_version(struct lg_session *s, uint64_t v)
{
    if (s->nv_uniq == 0) {
        s->nv_first = s->nv_last = v;
        s->nv_window = 0;
        s->nv_uniq = 1;
        return;
    }
    if (v < s->nv_first)
        s->nv_first = v;
    if (v > s->nv_last) {
        uint64_t shift = v - s->nv_last;
        s->nv_window = shift >= 64 ? 0 : s->nv_window << shift;
        if (shift - 1 < 64)
            s->nv_window |= UINT64_C(1) << (shift - 1);
        s->nv_last = v;
        s->nv_uniq++;
    } else if (v == s->nv_last) {
        s->nv_dups++;
    } else {
        uint64_t d = s->nv_last - 1 - v;
        if (d < 64 && !(s->nv_window & (UINT64_C(1) << d))) {
            s->nv_window |= UINT64_C(1) << d; /* late, but the first time */
            s->nv_uniq++;
        } else {
            s->nv_dups++; /* seen before (or too old to tell: counted as a duplicate) */
        }
    }
}

void mcpgw_lgsession_account(const struct lg_session *s, uint64_t first, uint64_t last,
                             uint64_t *expected, uint64_t *received, uint64_t *duplicated)
{
    uint64_t exp = last >= first && first ? last - first + 1 : 0, got = s->nv_uniq, out = 0;
    if (got && exp) {
        /* Versions seen outside [first, last] (writes whose answer never came back) are not
         * part of the expectation. Above: exact within the 64-version window. */
        if (s->nv_last > last) {
            out++;
            for (uint64_t v = last + 1; v < s->nv_last; v++) {
                uint64_t d = s->nv_last - 1 - v;
                if (d >= 64 || (s->nv_window & (UINT64_C(1) << d)))
                    out++;
            }
        }
        if (s->nv_first < first)
            out += first - s->nv_first; /* below: assumed all seen */
        got = got > out ? got - out : 0;
    }
    if (!exp)
        got = 0;
    *expected = exp;
    *received = got > exp ? exp : got;
    *duplicated = s->nv_dups;
}

int mcpgw_lgsession_missing(const struct lg_session *s, uint64_t first, uint64_t last, char *out,
                            size_t outlen)
{
    size_t used = 0;
    int n = 0;
    out[0] = '\0';
    for (uint64_t v = first; first && v <= last; v++) {
        int seen = s->nv_uniq && v >= s->nv_first &&
                   (v == s->nv_last ||
                    (v < s->nv_last && (s->nv_last - 1 - v >= 64 ||
                                        (s->nv_window & (UINT64_C(1) << (s->nv_last - 1 - v))))));
        if (seen)
            continue;
        n++;
        if (used + 24 < outlen)
            used += (size_t)snprintf(out + used, outlen - used, "%s%llu", n > 1 ? "," : "",
                                     (unsigned long long)v);
    }
    return n;
}

static void on_event(void *arg, const char *id, const char *event, const char *data, size_t len)
{
    struct lg_session *s = arg;
    struct lg_worker *w = the_worker;
    const char *p;
    if (id) {
        size_t n = strlen(id);
        free(s->last_eid);
        s->last_eid = n ? xstrndup(id, n) : NULL;
    }
    if (w->cfg->era26 && s->state == LG_SS_STREAM && len &&
        memmem(data, len, "notifications/subscriptions/acknowledged", 40)) {
        /* The listen stream is set up; its acknowledgement names the node that serves it. */
        const char *nd = memmem(data, len, "\"io.mcpgw/node\":\"", 17), *q;
        if (nd && (q = memchr(nd + 17, '"', (size_t)(data + len - nd - 17))) != NULL)
            s->node = mcpgw_worker_node_index(w, nd + 17, (size_t)(q - nd - 17));
        after_stream(w, s);
        return;
    }
    if (len == 0 || (!memmem(data, len, "notifications/resources/updated", 31) &&
                     !memmem(data, len, "notifications\\/resources\\/updated", 33)))
        return;
    w->c[LG_C_NOTIF_RECEIVED]++;
    /* JSON writers may escape '/' ("mcpgw:\/\/notes\/x"): accept both spellings. */
    if (!w->note_uri[0] || (!memmem(data, len, w->note_uri, strlen(w->note_uri)) &&
                            !memmem(data, len, w->note_uri_esc, strlen(w->note_uri_esc))))
        return;
    p = memmem(data, len, "\"io.mcpgw/version\"", 18);
    if (p)
        p += 18;
    else if ((p = memmem(data, len, "\"io.mcpgw\\/version\"", 19)) != NULL)
        p += 19;
    while (p && p < data + len && (*p == ' ' || *p == ':'))
        p++;
    if (p && p < data + len && *p >= '0' && *p <= '9')
        track_version(s, strtoull(p, NULL, 10));
}

/* The balancer marks the seam where it carried the stream on at another node. */
static void on_comment(void *arg, const char *text, size_t len)
{
    if (len == 7 && memcmp(text, "resumed", 7) == 0)
        mcpgw_worker_session_moved(the_worker, arg);
}

/* ---- GET stream ---- */

static void stream_head(struct mcpgw_client *c, const struct mcpgw_client_resp *r, void *arg);
static void stream_data(struct mcpgw_client *c, const char *p, size_t n, void *arg);
static void stream_done(struct mcpgw_client *c, int err, const struct mcpgw_client_resp *r,
                        void *arg);
static void stream_idle(struct mcpgw_client *c, void *arg);

static const struct mcpgw_client_ops stream_ops = {
    .done = stream_done,
    .head = stream_head,
    .data = stream_data,
    .idle_closed = stream_idle,
};

/* The stream is no longer up (its connection may stay, see stream_done). */
static void stream_down(struct lg_worker *w, struct lg_session *s)
{
    if (s->stream_up) {
        s->stream_up = 0;
        w->streams_open--;
    }
}

static void stream_drop(struct lg_worker *w, struct lg_session *s, int abort)
{
    if (s->stream) {
        mcpgw_client_free(s->stream, abort);
        s->stream = NULL;
    }
    stream_down(w, s);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct lg_session *s = arg;
    struct lg_worker *w = the_worker;
    if (s->closing || s->state != LG_SS_ESTABLISHED || w->phase == LG_PH_FINISHING)
        return;
    stream_open(w, s);
}

uint32_t mcpgw_lgsession_backoff_ms(unsigned attempt, uint64_t *rng)
{
    uint32_t ceil_ms = attempt == 0 ? 20 : LG_BACKOFF_BASE_MS << (attempt < 5 ? attempt - 1 : 4);
    uint64_t x = mcpgw_rand_next(rng); /* enough to spread clients, not a secret */
    if (ceil_ms > LG_BACKOFF_CAP_MS)
        ceil_ms = LG_BACKOFF_CAP_MS;
    /* Between half the ceiling and the ceiling: spread, yet never a zero wait in a loop. */
    return ceil_ms / 2 + (uint32_t)(x % (ceil_ms / 2 + 1));
}

/* The stream of an established (or subscribing) session broke: reconnect with Last-Event-ID
 * until the reconnect window closes. The waits are jittered (sessions that broke together do
 * not retry together, in waves) and capped low: once the cluster serves again, a session that
 * failed several times is back within LG_BACKOFF_CAP_MS, so the drill measures the gateway and
 * not the load generator's sleep. */
static void stream_broken(struct lg_worker *w, struct lg_session *s)
{
    uint64_t now = mcpgw_now_us();
    struct timeval tv;
    uint32_t delay_ms;
    if (s->closing || w->phase == LG_PH_FINISHING)
        return;
    if (s->state == LG_SS_SUBSCRIBE || s->state == LG_SS_STREAM) {
        setup_failed(w, s, "GET stream broke during setup");
        return;
    }
    if (s->state != LG_SS_ESTABLISHED)
        return;
    if (!s->stream_down_us)
        s->stream_down_us = now;
    if (now - s->stream_down_us > w->cfg->reconnect_ms * 1000) {
        w->c[LG_C_STREAM_FAILED]++;
        return;
    }
    if (!w->backoff_rng)
        w->backoff_rng = mcpgw_rand_seed();
    delay_ms = mcpgw_lgsession_backoff_ms(s->stream_attempts, &w->backoff_rng);
    if (s->stream_attempts < 255)
        s->stream_attempts++;
    if (!s->retry_ev)
        s->retry_ev = evtimer_new(w->base, on_retry, s);
    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)((delay_ms % 1000) * 1000);
    evtimer_add(s->retry_ev, &tv);
}

static void stream_open(struct lg_worker *w, struct lg_session *s)
{
    const struct mcpgw_lg_config *cfg = w->cfg;
    struct evbuffer *b;
    socklen_t slen = 0;
    const struct sockaddr *src;
    char err[160];
    if (s->stream && !mcpgw_client_reusable(s->stream))
        stream_drop(w, s, 0);
    /* The connection of a stream that ended cleanly is kept for the next one, as an HTTP client's
     * pool keeps it (the official SDK's fetch does): no new handshake. */
    if (!s->stream) {
        src = mcpgw_pool_next_src(w, &slen);
        s->stream = mcpgw_client_new(w->base, (const struct sockaddr *)&cfg->dst, cfg->dstlen, src,
                                     slen, &stream_ops, s, err, sizeof(err));
    }
    if (!s->stream) {
        if (mcpgw_now_ms() - w->setup_err_log_ms > 1000) {
            w->setup_err_log_ms = mcpgw_now_ms();
            log_warn("worker %u: GET stream: %s", w->idx, err);
        }
        stream_broken(w, s);
        return;
    }
    mcpgw_sse_parser_free(s->sse);
    s->sse = mcpgw_sse_parser_new(SSE_MAX_LINE, on_event, s);
    mcpgw_sse_parser_on_comment(s->sse, on_comment);
    b = evbuffer_new();
    if (cfg->era26) {
        /* A subscriptions/listen stream: the note's updates, or (without --subscribe) the tool
         * list's changes. Re-opened with Last-Event-ID, the node replays what it missed. */
        char body[512];
        int n = snprintf(body, sizeof(body),
                         "{\"jsonrpc\":\"2.0\",\"id\":\"listen\",\"method\":\"subscriptions/"
                         "listen\",\"params\":{" LG_META26 ",\"notifications\":{%s%s%s}}}",
                         cfg->subscribe[0] ? "\"resourceSubscriptions\":[\"mcpgw://notes/" : "",
                         cfg->subscribe[0] ? cfg->subscribe : "\"resourcesListChanged\":true",
                         cfg->subscribe[0] ? "\"]" : "");
        evbuffer_add_printf(b,
                            "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                            "Accept: application/json, text/event-stream\r\n"
                            "MCP-Protocol-Version: 2026-07-28\r\n"
                            "Mcp-Method: subscriptions/listen\r\n%sContent-Length: %d\r\n",
                            cfg->path, cfg->authority, cfg->headers, n);
        if (s->last_eid)
            evbuffer_add_printf(b, "Last-Event-ID: %s\r\n", s->last_eid);
        evbuffer_add(b, "\r\n", 2);
        evbuffer_add(b, body, (size_t)n);
    } else {
        evbuffer_add_printf(b,
                            "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                            "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: %s\r\n%s",
                            cfg->path, cfg->authority, s->sid, cfg->protocol_version, cfg->headers);
        if (s->last_eid)
            evbuffer_add_printf(b, "Last-Event-ID: %s\r\n", s->last_eid);
        evbuffer_add(b, "\r\n", 2);
    }
    w->c[LG_C_BYTES_OUT] += evbuffer_get_length(b);
    mcpgw_client_request(s->stream, b, 1, (uint32_t)cfg->timeout_ms);
    evbuffer_free(b);
}

static void stream_head(struct mcpgw_client *c, const struct mcpgw_client_resp *r, void *arg)
{
    struct lg_session *s = arg;
    struct lg_worker *w = the_worker;
    if (r->status == 200) {
        s->stream_up = 1;
        w->streams_open++;
        s->stream_attempts = 0;
        s->stream_down_us = 0;
        if (!s->stream_ever) {
            s->stream_ever = 1;
            w->c[LG_C_STREAM_OPENED]++;
        } else {
            w->c[LG_C_STREAM_RESUMED]++;
            s->move_wait = 0;
            mcpgw_worker_session_ok(w, s);
        }
        if (s->state == LG_SS_STREAM && !w->cfg->era26) /* a listen stream: at its ack */
            after_stream(w, s);
        return;
    }
    stream_drop(w, s, 0);
    if (s->state == LG_SS_STREAM) {
        char why[64];
        snprintf(why, sizeof(why), "GET stream answered %d", r->status);
        setup_failed(w, s, why);
    } else if (r->status == 404) {
        mcpgw_worker_session_lost(w, s);
    } else {
        mcpgw_worker_session_failed(w, s);
        stream_broken(w, s);
    }
}

static void stream_data(struct mcpgw_client *c, const char *p, size_t n, void *arg)
{
    struct lg_session *s = arg;
    if (mcpgw_sse_parser_feed(s->sse, p, n) < 0) {
        struct lg_worker *w = the_worker;
        /* An event line over 1 MiB: not a stream we can follow. */
        stream_drop(w, s, 0);
        w->c[LG_C_STREAM_DROPPED]++;
        mcpgw_worker_session_failed(w, s);
        stream_broken(w, s);
    }
}

static void stream_done(struct mcpgw_client *c, int err, const struct mcpgw_client_resp *r,
                        void *arg)
{
    struct lg_session *s = arg;
    struct lg_worker *w = the_worker;
    int was_up = s->stream_up;
    /* Ended cleanly: the stream is down, its connection stays for the reconnection. */
    if (err == MCPGW_CLIENT_OK && mcpgw_client_reusable(c) && !s->closing &&
        w->phase != LG_PH_FINISHING)
        stream_down(w, s);
    else
        stream_drop(w, s, 0);
    if (s->closing || w->phase == LG_PH_FINISHING)
        return;
    if (was_up)
        w->c[LG_C_STREAM_DROPPED]++;
    mcpgw_worker_session_failed(w, s);
    stream_broken(w, s);
}

/* Only a kept connection is ever idle (a stream's ended cleanly): it closed before the
 * reconnection, which then opens a new one. */
static void stream_idle(struct mcpgw_client *c, void *arg)
{
    (void)c;
    stream_drop(the_worker, arg, 0);
}

void mcpgw_lgsession_close(struct lg_worker *w, struct lg_session *s)
{
    s->closing = 1;
    stream_drop(w, s, 1);
    if (s->retry_ev) {
        event_free(s->retry_ev);
        s->retry_ev = NULL;
    }
    mcpgw_sse_parser_free(s->sse);
    s->sse = NULL;
}
