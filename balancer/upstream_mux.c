/* upstream_mux.c - upstreams that are streams of a node's HTTP/2 connection (mux.h), for
 * sessions' GET streams (--stream-mux; see upstream.h). */
#include "balancer/mux.h"
#include "balancer/nodes.h"
#include "balancer/upstream_impl.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>

#define NO_MUX_RETRY_MS 60000 /* a node without HTTP/2 is asked again after this */

struct up_mux {
    struct mcpgw_bal_upstream base;
    struct mcpgw_mux_stream *ms; /* NULL once it ended */
    struct evbuffer *reqhead;    /* the request head, kept until the response comes */
    uint8_t paused;
};

static void on_input(void *owner);
static void on_end(void *owner, enum mcpgw_mux_end how, const char *why);
static void on_failed(void *arg, struct mcpgw_mux *m, int connected, int err, const char *why);
static const struct mcpgw_mux_stream_cb stream_cb = {on_input, on_end};
static const struct mcpgw_mux_cb mux_cb = {on_failed};

/* Free m, one of slot's muxes (already detached from the slot): its streams end. */
static void mux_release(struct mcpgw_bal_upstream_set *set, int slot, struct mcpgw_mux *m)
{
    struct upool *p = &set->slots[slot];
    if (!m)
        return;
    p->nmux--;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(set, slot)->mux_conns, (int64_t)p->nmux);
    mcpgw_mux_free(m);
}

void mcpgw_bal_upstream_mux_close(struct mcpgw_bal_upstream_set *set, int slot)
{
    struct upool *p = &set->slots[slot];
    struct mcpgw_mux *m = p->mux, *o = p->old_mux;
    p->mux = p->old_mux = NULL;
    mux_release(set, slot, m); /* its streams end: their exchanges are told */
    mux_release(set, slot, o);
}

/* ---- stream callbacks ---- */

static void on_input(void *owner)
{
    struct up_mux *x = owner;
    if (x->paused)
        return; /* the client's output drains first; resume() passes the rest on */
    x->base.cb->input(x->base.owner);
}

static void on_end(void *owner, enum mcpgw_mux_end how, const char *why)
{
    struct up_mux *x = owner;
    struct upool *p = &x->base.set->slots[x->base.slot];
    enum mcpgw_bal_upstream_end e;
    x->ms = NULL;
    switch (how) {
    case MCPGW_MUX_UNSENT:
        /* The node never saw it: the same node over a connection of its own, when the node
         * turned out not to speak HTTP/2; else the next candidate. */
        e = p->no_mux_ms ? MCPGW_BAL_UPSTREAM_UNSENT_AGAIN : MCPGW_BAL_UPSTREAM_UNSENT;
        break;
    case MCPGW_MUX_RESET:
        e = MCPGW_BAL_UPSTREAM_ERROR;
        break;
    case MCPGW_MUX_TIMEOUT:
        e = MCPGW_BAL_UPSTREAM_TIMEOUT;
        break;
    case MCPGW_MUX_DONE:
        e = MCPGW_BAL_UPSTREAM_EOF;
        break;
    case MCPGW_MUX_LOST:
    default:
        e = MCPGW_BAL_UPSTREAM_LOST;
        break;
    }
    x->base.cb->end(x->base.owner, e, 0, why);
}

/* A mux's connection failed: like a failed connect or a reset of a connection of its own,
 * except that every stream on it is affected at once. Streams the node never saw move to the
 * next candidate; the others' exchanges hear LOST. */
static void on_failed(void *arg, struct mcpgw_mux *m, int connected, int err, const char *why)
{
    struct mcpgw_bal_upstream_set *set = arg;
    struct mcpgw_bal_nodes *nodes = set->nodes;
    int slot = -1;
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++)
        if (set->slots[i].mux == m || set->slots[i].old_mux == m)
            slot = i;
    if (slot < 0) {
        mcpgw_mux_free(m);
        return;
    }
    if (set->slots[slot].old_mux == m) {
        /* The retired one: its own streams end, the current one is not affected. */
        set->slots[slot].old_mux = NULL;
        mux_release(set, slot, m);
        return;
    }
    if (mcpgw_mux_not_h2(m)) {
        /* An older node, or something else that only speaks HTTP/1.1: not a failure. */
        log_warn("node %s (%s) does not speak HTTP/2 (%s): its streams take a connection each",
                 mcpgw_bal_nodes_id(nodes, slot), mcpgw_bal_nodes_addr(nodes, slot), why);
        set->slots[slot].no_mux_ms = mcpgw_now_ms();
        set->slots[slot].mux = NULL;
        mux_release(set, slot, m);
        return;
    }
    /* A node ends its streams before it closes the connection (drain, idle): a close with
     * streams open means it is going away, like a reset. */
    if (!connected || err == ECONNRESET || err == EPIPE || mcpgw_mux_streams(m))
        mcpgw_bal_nodes_mark_down(nodes, slot, why);
    else
        log_info("node %s (%s) closed the stream connection: %s (%u streams)",
                 mcpgw_bal_nodes_id(nodes, slot), mcpgw_bal_nodes_addr(nodes, slot), why,
                 mcpgw_mux_streams(m));
    set->slots[slot].mux = NULL;
    mux_release(set, slot, m);
    if (!connected && err == ECONNREFUSED)
        mcpgw_bal_nodes_refused(nodes, slot);
}

/* ---- operations ---- */

static int mux_send_head(struct mcpgw_bal_upstream *u, struct evbuffer *head, char *why, size_t len)
{
    struct up_mux *x = (struct up_mux *)u;
    struct mcpgw_mux *m = u->set->slots[u->slot].mux;
    if (!x->reqhead)
        x->reqhead = evbuffer_new();
    if (!x->reqhead) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    if (x->reqhead != head)
        evbuffer_add_buffer(x->reqhead, head);
    if (!m) {
        snprintf(why, len, "the connection to the node is closing");
        return -1;
    }
    x->ms = mcpgw_mux_open(m, x->reqhead, &stream_cb, x, why, len);
    return x->ms ? 0 : -1;
}

static struct evbuffer *mux_input(struct mcpgw_bal_upstream *u)
{
    return mcpgw_mux_stream_input(((struct up_mux *)u)->ms);
}

static struct evbuffer *mux_output(struct mcpgw_bal_upstream *u)
{
    (void)u;
    return NULL; /* a stream carries a request head only */
}

static void mux_flush(struct mcpgw_bal_upstream *u)
{
    (void)u;
}

static void mux_watch_output(struct mcpgw_bal_upstream *u, size_t low)
{
    (void)u, (void)low;
}

static void mux_pause(struct mcpgw_bal_upstream *u)
{
    struct up_mux *x = (struct up_mux *)u;
    x->paused = 1;
    if (x->ms)
        mcpgw_mux_stream_pause(x->ms);
}

static void mux_resume(struct mcpgw_bal_upstream *u)
{
    struct up_mux *x = (struct up_mux *)u;
    x->paused = 0;
    if (x->ms)
        mcpgw_mux_stream_resume(x->ms);
}

static void mux_answered(struct mcpgw_bal_upstream *u)
{
    struct up_mux *x = (struct up_mux *)u;
    if (x->reqhead) { /* answered: nothing left to retry */
        evbuffer_free(x->reqhead);
        x->reqhead = NULL;
    }
}

static int mux_sent(const struct mcpgw_bal_upstream *u)
{
    const struct up_mux *x = (const struct up_mux *)u;
    return x->ms && mcpgw_mux_stream_sent(x->ms);
}

static struct evbuffer *mux_unsent(struct mcpgw_bal_upstream *u)
{
    return ((struct up_mux *)u)->reqhead;
}

static void mux_release_stream(struct mcpgw_bal_upstream *u, int reuse)
{
    struct up_mux *x = (struct up_mux *)u;
    struct upool *p = &u->set->slots[u->slot];
    (void)reuse;
    mcpgw_bal_upstream_uncount(u);
    p->nstreams--;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(u->set, u->slot)->mux_streams, (int64_t)p->nstreams);
    if (x->ms)
        mcpgw_mux_stream_close(x->ms);
    if (x->reqhead)
        evbuffer_free(x->reqhead);
    free(x);
}

static const struct mcpgw_bal_upstream_ops mux_ops = {
    .name = "h2 stream",
    .send_head = mux_send_head,
    .input = mux_input,
    .output = mux_output,
    .flush = mux_flush,
    .watch_output = mux_watch_output,
    .pause = mux_pause,
    .resume = mux_resume,
    .answered = mux_answered,
    .sent = mux_sent,
    .unsent = mux_unsent,
    .kept_head = mux_unsent,
    .release = mux_release_stream,
};

/* ---- the node's connections ---- */

struct mcpgw_bal_upstream *mcpgw_bal_upstream_mux_get(struct mcpgw_bal_upstream_set *set, int slot,
                                                      int *err)
{
    struct upool *p = &set->slots[slot];
    struct up_mux *x;
    *err = 0;
    if (p->no_mux_ms && mcpgw_now_ms() - p->no_mux_ms < NO_MUX_RETRY_MS)
        return NULL;
    if (p->mux && !mcpgw_mux_usable(p->mux)) {
        /* Closing (GOAWAY) or full: its streams go on, new ones take a new connection. */
        if (!mcpgw_mux_streams(p->mux)) {
            mux_release(set, slot, p->mux);
        } else if (!p->old_mux || !mcpgw_mux_streams(p->old_mux)) {
            mux_release(set, slot, p->old_mux);
            p->old_mux = p->mux;
        } else {
            return NULL; /* two in use already: this stream gets a connection of its own */
        }
        p->mux = NULL;
    }
    if (!p->mux) {
        int pending, fd = mcpgw_bal_nodes_connect(set->nodes, slot, &pending);
        if (fd < 0) {
            *err = errno;
            return NULL;
        }
        p->mux = mcpgw_mux_new(set->base, fd, pending, set->cfg->connect_timeout_ms,
                               (uint32_t)set->cfg->mux_window, &mux_cb, set);
        if (!p->mux) {
            *err = ENOMEM;
            return NULL;
        }
        p->nmux++;
        MCPGW_STORE(&mcpgw_bal_upstream_stats(set, slot)->mux_conns, (int64_t)p->nmux);
    }
    x = xcalloc(1, sizeof(*x));
    mcpgw_bal_upstream_init(&x->base, &mux_ops, set, slot);
    p->nstreams++;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(set, slot)->mux_streams, (int64_t)p->nstreams);
    return &x->base;
}

/* Close muxes that take no more streams and carry none; end streams whose node does not answer. */
void mcpgw_bal_upstream_mux_sweep(struct mcpgw_bal_upstream_set *set)
{
    for (int i = 0; i < mcpgw_bal_nodes_count(set->nodes); i++) {
        struct upool *p = &set->slots[i];
        if (p->old_mux && !mcpgw_mux_streams(p->old_mux)) {
            struct mcpgw_mux *o = p->old_mux;
            p->old_mux = NULL;
            mux_release(set, i, o);
        }
        if (p->mux && !mcpgw_mux_usable(p->mux) && !mcpgw_mux_streams(p->mux)) {
            struct mcpgw_mux *m = p->mux;
            p->mux = NULL;
            mux_release(set, i, m);
        }
        if (p->old_mux)
            mcpgw_mux_expire(p->old_mux, set->cfg->response_timeout_ms);
        if (p->mux)
            mcpgw_mux_expire(p->mux, set->cfg->response_timeout_ms);
    }
}

void mcpgw_bal_upstream_mux_drain(struct mcpgw_bal_upstream_set *set)
{
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        struct upool *p = &set->slots[i];
        if (p->mux && !mcpgw_mux_streams(p->mux)) {
            struct mcpgw_mux *m = p->mux;
            p->mux = NULL;
            mux_release(set, i, m);
        }
    }
}
