/* exchange_response.c - the response side of a worker's exchanges: response heads and bodies,
 * streams carried on at another node, and the callbacks every upstream reports through (see
 * exchange.h). */
#include "balancer/exchange_impl.h"
#include "balancer/io.h"
#include "balancer/resume.h"
#include "balancer/rewrite.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESP_HEAD_MAX (64 * 1024)

static void on_up_input(void *owner);
static void on_up_drained(void *owner);
static void on_up_end(void *owner, enum mcpgw_bal_upstream_end how, int err, const char *why);
const struct mcpgw_bal_upstream_cb mcpgw_bal_exchange_upstream_cb = {on_up_input, on_up_drained,
                                                                     on_up_end};

/* ---- streams carried on ---- */

/* rq's node failed under a session's event stream: open it again at the node the session now
 * routes to, asking for the events after the last one its client has whole (Last-Event-ID), and
 * splice the new body onto the client's (resumed_head). The client sees no break: that saves
 * every client of a dead node a reconnection, and the balancer an accept and a request each.
 * Returns 0 when rq took another upstream (the client may be closed, if the new node could not
 * be asked), -1 when the stream cannot be carried on (the caller ends it). */
static int resume_stream(struct request *rq, const char *cause)
{
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    struct mcpgw_bal_upstream *old = rq->up, *nu;
    struct evbuffer *head;
    char why[256];
    int from = old->slot;

    if (!rq->resume || !xs->cfg->stream_resume || rq->up_paused || c->state != C_FORWARD ||
        rq->resumes >= MCPGW_BAL_RESUME_TRIES || !mcpgw_bal_resume_ready(rq->resume) ||
        !mcpgw_chunked_between(&rq->resp_dec))
        return -1;
    rq->tried |= 1ull << from;
    nu = mcpgw_bal_exchange_route(xs, rq, cause, why, sizeof(why));
    if (!nu) {
        log_debug("a stream of node %s cannot move: %s", node_id(xs, from), why);
        return -1;
    }
    rq->up = nu;
    old->ops->release(old, 0);
    c->resumed = 1;
    rq->resuming = 1;
    rq->resumes++;
    rq->start_us = mcpgw_now_us();
    rq->rstate = R_HEAD;
    rq->rmode = R_NONE;
    rq->scanned = 0;
    rq->resp_left = 0;
    memset(&rq->resp_dec, 0, sizeof(rq->resp_dec));
    head = evbuffer_new();
    if (!head) {
        mcpgw_bal_exchange_close_when_flushed(c);
        return 0;
    }
    mcpgw_bal_resume_head(rq->resume, head);
    log_debug("stream of session %.*s moves from node %s to %s after event %s: %s", (int)rq->sidlen,
              rq->sid ? rq->sid : "", node_id(xs, from), node_id(xs, nu->slot),
              mcpgw_bal_resume_last_id(rq->resume), cause);
    if (nu->ops->send_head(nu, head, why, sizeof(why)) < 0)
        mcpgw_bal_exchange_close_when_flushed(c);
    else
        nu->ops->flush(nu);
    evbuffer_free(head);
    return 0;
}

static void feed_resume(void *arg, const char *data, size_t len)
{
    mcpgw_bal_resume_feed(arg, data, len);
}

/* ---- responses ---- */

/* The response in flight is complete: release the upstream (pooled when it may serve another
 * request), then serve the client's next request or close it. */
static void response_done(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    int keep_client = c->keep_alive && rq->req_done && !c->xs->draining;

    rq->up = NULL;
    u->ops->release(u, rq->resp_keep && rq->req_done);
    mcpgw_bal_exchange_request_free(rq);
    c->resumed = 0;
    if (c->send_timeout) {
        c->send_timeout = 0;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    }
    if (!keep_client) {
        mcpgw_bal_exchange_close_when_flushed(c);
        return;
    }
    c->state = C_HEAD;
    c->paused = 0;
    mcpgw_bal_exchange_read_on(c);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        mcpgw_bal_exchange_process(c);
    else
        mcpgw_bal_exchange_list_append(c, L_IDLE);
}

static void dechunk_out(void *arg, const char *data, size_t len)
{
    evbuffer_add(arg, data, len);
}

static int is_event_stream(const struct mcpgw_http_head *h)
{
    const struct mcpgw_http_header *ct = mcpgw_http_find(h, "content-type");
    return ct && ct->value_len >= 17 && strncasecmp(ct->value, "text/event-stream", 17) == 0;
}

/* The head answering a stream re-opened at another node (resume_stream), end bytes of the
 * upstream's input. The client has its head already: a 200 event stream goes on as the same
 * body, after a comment that marks the seam; anything else ends the client's stream early (no
 * final chunk) and the client resumes it itself. Returns as response_head. */
static int resumed_head(struct request *rq, const struct mcpgw_http_head *h, size_t end)
{
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int ok = h->status == 200 && h->chunked && is_event_stream(h);

    evbuffer_drain(u->ops->input(u), end);
    if (!ok) {
        log_info("node %s answered a resumed stream with %d: its client resumes it itself",
                 node_id(xs, u->slot), h->status);
        mcpgw_bal_exchange_close_when_flushed(c);
        return -1;
    }
    rq->resuming = 0;
    /* Answered: the limit is on moves in a row without an answer, and a node that refused an
     * earlier move is a candidate again for the next one. */
    rq->resumes = 0;
    rq->tried = 0;
    rq->rstate = R_BODY;
    rq->rmode = R_CHUNKED;
    memset(&rq->resp_dec, 0, sizeof(rq->resp_dec));
    mcpgw_bal_resume_seam(rq->resume);
    if (rq->listen) {
        /* The new node acknowledges the re-opened listen request first: the client had its
         * acknowledgement, so that event is dropped, and the rest of the body is chunked anew
         * (docs/listen.md). */
        rq->rechunk = rq->skip_ack = 1;
        rq->skip_nl = 0;
    }
    evbuffer_add_printf(out, "%zx\r\n%s\r\n", sizeof(MCPGW_BAL_RESUME_MARK) - 1,
                        MCPGW_BAL_RESUME_MARK);
    MCPGW_BUMP(&nstats(xs, u->slot)->resumed, 1);
    u->ops->answered(u);
    return 1;
}

/* A 101 answered an upgrade: from now on the pair is a byte tunnel. */
static void start_tunnel(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    rq->rmode = R_TUNNEL;
    rq->rstate = R_BODY;
    c->state = C_TUNNEL;
    mcpgw_bal_exchange_list_remove(c);
    evbuffer_add_buffer(u->ops->output(u), bufferevent_get_input(c->bev));
    u->ops->answered(u);
    u->ops->flush(u);
    mcpgw_bal_upstream_uncount(u); /* a tunnel is not load the node can shed */
}

/* Where rq's response body ends, from its head h; and the flags for rewriting that head.
 * Decides whether the client connection stays open after it. */
static unsigned response_mode(struct request *rq, const struct mcpgw_http_head *h)
{
    struct client *c = rq->c;
    unsigned flags = 0;
    if (rq->head_req || h->status == 204 || h->status == 304)
        rq->rmode = R_NONE;
    else if (h->chunked)
        rq->rmode = R_CHUNKED;
    else if (h->content_length >= 0)
        rq->rmode = R_LENGTH;
    else
        rq->rmode = R_EOF;
    rq->resp_left = h->content_length;
    rq->resp_keep = h->keep_alive && rq->rmode != R_EOF;
    rq->dechunk = c->http10 && rq->rmode == R_CHUNKED;
    if (!c->keep_alive || c->xs->draining || rq->rmode == R_EOF || rq->dechunk || !rq->req_done) {
        flags |= MCPGW_BAL_RESP_CLOSE;
        c->keep_alive = 0;
    } else if (c->http10) {
        flags |= MCPGW_BAL_RESP_KEEPALIVE10;
    }
    if (rq->dechunk)
        flags |= MCPGW_BAL_RESP_DECHUNK;
    return flags;
}

/* Answer rq with a 502 for a response the node got wrong. */
static void bad_response(struct request *rq, const char *why)
{
    MCPGW_BUMP(&nstats(rq->c->xs, rq->up->slot)->errors, 1);
    mcpgw_bal_exchange_fail_json(rq->c, 502, why);
}

/* Parse the response head in the upstream's input. Returns 1 when the body phase starts, 0
 * when more bytes are needed, -1 when the exchange ended (the client may be gone). */
static int response_head(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *in = u->ops->input(u), *out = bufferevent_get_output(c->bev);

    for (;;) {
        size_t avail = evbuffer_get_length(in), n, end, from;
        const char *data, *why = NULL;
        struct mcpgw_http_head h;
        struct evbuffer *kept;
        unsigned flags;
        char msg[160];

        if (!avail)
            return 0;
        n = avail < RESP_HEAD_MAX ? avail : RESP_HEAD_MAX;
        data = (const char *)evbuffer_pullup(in, (ssize_t)n);
        from = rq->scanned > 3 ? rq->scanned - 3 : 0;
        end = mcpgw_http_head_end(data + from, n - from);
        if (!end) {
            if (avail < RESP_HEAD_MAX) {
                rq->scanned = (uint32_t)n;
                return 0;
            }
            bad_response(rq, "the node's response head is over the limit");
            return -1;
        }
        end += from;
        rq->scanned = 0;
        if (mcpgw_http_parse_head(data, end, 1, &h, &why) != MCPGW_HTTP_OK) {
            snprintf(msg, sizeof(msg), "malformed response from node %s: %s", node_id(xs, u->slot),
                     why ? why : "?");
            bad_response(rq, msg);
            return -1;
        }
        if (h.nheaders > MCPGW_HTTP_MAX_HEADERS - MCPGW_BAL_RESP_ADDED) {
            bad_response(rq, "the node's response has too many header fields");
            return -1;
        }
        if (h.status < 200 && h.status != 101) {
            /* Interim response (100 Continue, 103): pass it on to HTTP/1.1 clients (not inside
             * the body of a resumed stream). */
            if (!c->http10 && !rq->resuming)
                mcpgw_bal_rewrite_response(&h, data, 0, out);
            evbuffer_drain(in, end);
            mcpgw_bal_exchange_push(c);
            if (c->closed)
                return -1;
            continue;
        }
        mcpgw_hist_observe(&nstats(xs, u->slot)->latency,
                           (double)(mcpgw_now_us() - rq->start_us) / 1e6);
        MCPGW_BUMP(&nstats(xs, u->slot)->responses[h.status / 100 - 1], 1);
        if (rq->resuming)
            return resumed_head(rq, &h, end);
        if (h.status == 101) {
            if (!rq->upgrade_req || !u->ops->output(u)) {
                bad_response(rq, "the node switched protocols without an Upgrade");
                return -1;
            }
            mcpgw_bal_rewrite_response(&h, data, 0, out);
            evbuffer_drain(in, end);
            start_tunnel(rq);
            return 1;
        }
        flags = response_mode(rq, &h);
        /* A session's event stream whose request head is kept (over the mux): keep what it
         * takes to carry it on elsewhere (resume_stream) before the head goes. */
        kept = u->ops->kept_head(u);
        if (kept && xs->cfg->stream_resume && rq->mux && h.status == 200 &&
            rq->rmode == R_CHUNKED && !rq->dechunk && is_event_stream(&h))
            rq->resume = mcpgw_bal_resume_new((const char *)evbuffer_pullup(kept, -1),
                                              evbuffer_get_length(kept));
        mcpgw_bal_rewrite_response(&h, data, flags, out);
        evbuffer_drain(in, end);
        rq->rstate = R_BODY;
        u->ops->answered(u);
        return 1;
    }
}

/* Stop taking response bytes while the client's output is over the high-water mark; the
 * client's write callback resumes once half of it is sent. */
static void pause_upstream(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    if (rq->up_paused || evbuffer_get_length(bufferevent_get_output(c->bev)) < xs->cfg->buffer_size)
        return;
    rq->up_paused = 1;
    rq->up->ops->pause(rq->up);
    bufferevent_setwatermark(c->bev, EV_WRITE, xs->cfg->buffer_size / 2, 0);
    if (!c->send_timeout) {
        struct timeval st = mcpgw_bal_io_tv(xs->cfg->send_timeout_ms);
        c->send_timeout = 1;
        bufferevent_set_timeouts(c->bev, NULL, &st);
    }
}

struct rechunk {
    struct request *rq;
    struct evbuffer *out;
};

/* Decoded body bytes of a re-opened listen stream: the first event (its acknowledgement, up to
 * the blank line) is dropped; the rest goes to the client as a chunk, through the resume
 * scanner. */
static void rechunk_out(void *arg, const char *data, size_t len)
{
    struct rechunk *x = arg;
    struct request *rq = x->rq;
    while (rq->skip_ack && len) {
        int nl = *data == '\n';
        if (nl && rq->skip_nl)
            rq->skip_ack = 0;
        rq->skip_nl = (uint8_t)nl;
        data++, len--;
    }
    if (!len)
        return;
    evbuffer_add_printf(x->out, "%zx\r\n", len);
    evbuffer_add(x->out, data, len);
    evbuffer_add(x->out, "\r\n", 2);
    if (rq->resume)
        mcpgw_bal_resume_feed(rq->resume, data, len);
}

/* Move a chunked response body on: de-chunked for an HTTP/1.0 client, decoded and chunked again
 * for a re-opened listen stream, else as it came (an event stream's bytes are read by its
 * resume scanner on the way). Returns 0, or -1 when the node's chunked encoding is invalid. */
static int relay_chunked_response(struct request *rq, struct evbuffer *in, struct evbuffer *out)
{
    if (rq->rechunk) {
        struct rechunk x = {rq, out};
        while (!rq->resp_dec.done && evbuffer_get_length(in)) {
            size_t len = evbuffer_get_contiguous_space(in);
            const char *p = (const char *)evbuffer_pullup(in, (ssize_t)len);
            ssize_t k = mcpgw_chunked_feed(&rq->resp_dec, p, len, rechunk_out, &x);
            if (k < 0)
                return -1;
            evbuffer_drain(in, (size_t)k);
        }
        if (rq->resp_dec.done)
            evbuffer_add(out, "0\r\n\r\n", 5);
        return 0;
    }
    if (!rq->dechunk)
        return mcpgw_bal_exchange_relay_chunked(&rq->resp_dec, in, out,
                                                rq->resume ? feed_resume : NULL, rq->resume);
    while (!rq->resp_dec.done && evbuffer_get_length(in)) {
        size_t len = evbuffer_get_contiguous_space(in);
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)len);
        ssize_t k = mcpgw_chunked_feed(&rq->resp_dec, p, len, dechunk_out, out);
        if (k < 0)
            return -1;
        evbuffer_drain(in, (size_t)k);
    }
    return 0;
}

/* Relay response bytes (state R_BODY) from the upstream's input to the client. */
void mcpgw_bal_exchange_relay_response(struct request *rq)
{
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    struct evbuffer *in = u->ops->input(u), *out = bufferevent_get_output(c->bev);
    size_t avail = evbuffer_get_length(in);
    int done = 0;

    switch (rq->rmode) {
    case R_NONE:
        done = 1;
        break;
    case R_LENGTH: {
        size_t n = avail < (uint64_t)rq->resp_left ? avail : (size_t)rq->resp_left;
        if (n)
            evbuffer_remove_buffer(in, out, n);
        rq->resp_left -= (int64_t)n;
        done = rq->resp_left == 0;
        break;
    }
    case R_CHUNKED:
        if (relay_chunked_response(rq, in, out) < 0) {
            MCPGW_BUMP(&nstats(c->xs, u->slot)->errors, 1);
            log_warn("node %s sent an invalid chunked body", node_id(c->xs, u->slot));
            mcpgw_bal_exchange_close_when_flushed(c);
            return;
        }
        done = rq->resp_dec.done;
        break;
    case R_EOF:
    case R_TUNNEL:
        evbuffer_add_buffer(out, in);
        break;
    }
    mcpgw_bal_exchange_push(c);
    if (c->closed) /* the client is gone: rq went with it */
        return;
    if (done) {
        response_done(rq);
        return;
    }
    pause_upstream(rq);
}

/* ---- upstream callbacks (upstream.h): the same for both kinds ---- */

static void on_up_input(void *owner)
{
    struct request *rq = owner;
    if (rq->rstate == R_HEAD && response_head(rq) <= 0)
        return;
    mcpgw_bal_exchange_relay_response(rq);
}

static void on_up_drained(void *owner)
{
    struct request *rq = owner;
    struct client *c = rq->c;
    struct mcpgw_bal_upstream *u = rq->up;
    if (!c->paused)
        return;
    c->paused = 0;
    mcpgw_bal_exchange_read_on(c);
    if (c->state == C_TUNNEL) {
        evbuffer_add_buffer(u->ops->output(u), bufferevent_get_input(c->bev));
        u->ops->flush(u);
    } else {
        mcpgw_bal_exchange_relay_body(rq);
    }
}

/* The exchange with the node ended before its response did (or, for a body that runs to the
 * connection's end, with it). */
static void on_up_end(void *owner, enum mcpgw_bal_upstream_end how, int err, const char *why)
{
    struct request *rq = owner;
    struct client *c = rq->c;
    struct mcpgw_bal_exchange_set *xs = c->xs;
    int slot = rq->up->slot;
    char msg[256];

    switch (how) {
    case MCPGW_BAL_UPSTREAM_FAILED: /* nothing reached the node: the next candidate */
        mcpgw_bal_nodes_mark_down(xs->nodes, slot, why);
        if (err == ECONNREFUSED)
            mcpgw_bal_nodes_refused(xs->nodes, slot);
        MCPGW_BUMP(&nstats(xs, slot)->retries, 1);
        mcpgw_bal_exchange_move(rq, why);
        return;
    case MCPGW_BAL_UPSTREAM_UNSENT_AGAIN:
        rq->tried &= ~(1ull << slot);
        mcpgw_bal_exchange_move(rq, why);
        return;
    case MCPGW_BAL_UPSTREAM_UNSENT:
        mcpgw_bal_exchange_move(rq, why);
        return;
    case MCPGW_BAL_UPSTREAM_CUT:
        /* The node is gone: its streams go on elsewhere, or their clients are told at once. */
        if (resume_stream(rq, why) < 0)
            mcpgw_bal_exchange_close(c);
        return;
    default:
        break;
    }
    if (rq->rmode == R_TUNNEL) {
        mcpgw_bal_exchange_close_when_flushed(c);
        return;
    }
    if (how == MCPGW_BAL_UPSTREAM_EOF && rq->rstate == R_BODY && rq->rmode == R_EOF) {
        mcpgw_bal_exchange_relay_response(rq);
        if (c->rq == rq) {
            c->keep_alive = 0;
            response_done(rq);
        }
        return;
    }
    MCPGW_BUMP(&nstats(xs, slot)->errors, 1);
    /* Only a failed node's streams move: a live node that resets one stream (a newer stream of
     * the session replaced it, say) keeps the session, and the client decides. */
    if ((rq->rstate != R_HEAD || rq->resuming) && mcpgw_bal_nodes_failed(xs->nodes, slot) &&
        resume_stream(rq, why) == 0)
        return;
    if (rq->rstate != R_HEAD || rq->resuming) {
        /* Mid-response: the client sees the stream end early (no final chunk). */
        log_debug("node %s dropped a response in flight: %s", node_id(xs, slot), why);
        mcpgw_bal_exchange_close_when_flushed(c);
        return;
    }
    if (how == MCPGW_BAL_UPSTREAM_TIMEOUT) {
        snprintf(msg, sizeof(msg), "node %s did not answer within %u ms", node_id(xs, slot),
                 xs->cfg->response_timeout_ms);
        mcpgw_bal_exchange_fail_json(c, 504, msg);
        return;
    }
    if (how == MCPGW_BAL_UPSTREAM_ERROR && (err == ECONNRESET || err == EPIPE))
        mcpgw_bal_nodes_mark_down(xs->nodes, slot, strerror(err));
    snprintf(msg, sizeof(msg), "node %s closed the connection before answering (%s)",
             node_id(xs, slot), why);
    mcpgw_bal_exchange_fail_json(c, 502, msg);
}
