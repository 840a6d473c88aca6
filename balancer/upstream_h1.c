/* upstream_h1.c - upstreams that are HTTP/1.1 connections of their own, pooled per node
 * (see upstream.h). Read through our own event with one readv; written through the
 * bufferevent, which also reports the connect. */
#include "balancer/io.h"
#include "balancer/nodes.h"
#include "balancer/upstream_impl.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct up_h1 {
    struct mcpgw_bal_upstream base;
    struct event rev;
    struct bufferevent *bev;
    struct up_h1 *pprev, *pnext; /* pool, most recently used first */
    struct up_h1 *wprev, *wnext; /* waiting for a response head, oldest first */
    uint32_t released;           /* set ms when pooled */
    uint32_t deadline;           /* set ms: the response head is due (while waiting) */
    size_t low;                  /* watch_output's mark (0: not watching) */
    uint8_t connected : 1, pooled : 1, paused : 1, waiting : 1;
};

static const struct mcpgw_bal_upstream_ops h1_ops;

static struct upool *pool_of(struct up_h1 *h)
{
    return &h->base.set->slots[h->base.slot];
}

/* The read event stays in epoll for the connection's life (pooled too, to see the node close
 * it) and carries no timeout: only backpressure takes it out. The response timeout is a FIFO
 * list swept with the worker's other timeouts (one constant timeout keeps it in deadline
 * order), so a request costs no epoll_ctl and no timer of its own; before, re-arming the read
 * event's timeout took four epoll_ctl per request, half the balancer's system calls. */
static void read_on(struct up_h1 *h)
{
    if (!event_pending(&h->rev, EV_READ, NULL))
        event_add(&h->rev, NULL);
}

static void wait_remove(struct up_h1 *h)
{
    struct mcpgw_bal_upstream_set *set = h->base.set;
    if (!h->waiting)
        return;
    if (h->wprev)
        h->wprev->wnext = h->wnext;
    else
        set->wait_first = h->wnext;
    if (h->wnext)
        h->wnext->wprev = h->wprev;
    else
        set->wait_last = h->wprev;
    h->wprev = h->wnext = NULL;
    h->waiting = 0;
}

/* A request went out on h: its response head is due within response-timeout. */
static void wait_add(struct up_h1 *h)
{
    struct mcpgw_bal_upstream_set *set = h->base.set;
    wait_remove(h);
    h->deadline = mcpgw_bal_upstream_now(set) + set->cfg->response_timeout_ms;
    h->waiting = 1;
    h->wprev = set->wait_last;
    if (set->wait_last)
        set->wait_last->wnext = h;
    else
        set->wait_first = h;
    set->wait_last = h;
}

static void pool_remove(struct up_h1 *h)
{
    struct upool *p = pool_of(h);
    if (!h->pooled)
        return;
    if (h->pprev)
        h->pprev->pnext = h->pnext;
    else
        p->pool_first = h->pnext;
    if (h->pnext)
        h->pnext->pprev = h->pprev;
    else
        p->pool_last = h->pprev;
    h->pprev = h->pnext = NULL;
    h->pooled = 0;
    p->npool--;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(h->base.set, h->base.slot)->idle, (int64_t)p->npool);
}

/* Close for good, pooled or not. */
static void discard(struct up_h1 *h)
{
    pool_remove(h);
    wait_remove(h);
    mcpgw_bal_upstream_uncount(&h->base);
    event_del(&h->rev);
    bufferevent_free(h->bev);
    free(h);
}

static void pool_put(struct up_h1 *h)
{
    struct mcpgw_bal_upstream_set *set = h->base.set;
    struct upool *p = pool_of(h);
    mcpgw_bal_upstream_uncount(&h->base);
    h->base.owner = NULL;
    h->base.cb = NULL;
    wait_remove(h);
    bufferevent_set_timeouts(h->bev, NULL, NULL);
    bufferevent_setwatermark(h->bev, EV_WRITE, 0, 0);
    h->low = 0;
    read_on(h); /* to see the node close it */
    h->paused = 0;
    h->released = mcpgw_bal_upstream_now(set);
    h->pooled = 1;
    h->pprev = NULL;
    h->pnext = p->pool_first;
    if (p->pool_first)
        p->pool_first->pprev = h;
    else
        p->pool_last = h;
    p->pool_first = h;
    p->npool++;
    MCPGW_STORE(&mcpgw_bal_upstream_stats(set, h->base.slot)->idle, (int64_t)p->npool);
}

/* ---- events: each reports to the owner as its last act (the owner may release h) ---- */

/* A failure before the connect completed, a close, an error or a timeout. */
static void report(struct up_h1 *h, short what, int err)
{
    const struct mcpgw_bal_upstream_set *set = h->base.set;
    char why[96];
    if (!h->base.owner) { /* pooled: the node closed it, or sent what nothing asked for */
        discard(h);
        return;
    }
    if (!h->connected) {
        /* Nothing reached the node. */
        if (what & BEV_EVENT_TIMEOUT) {
            err = ETIMEDOUT;
            snprintf(why, sizeof(why), "connect timed out after %u ms",
                     set->cfg->connect_timeout_ms);
        } else {
            snprintf(why, sizeof(why), "%s", strerror(err ? err : ECONNREFUSED));
        }
        h->base.cb->end(h->base.owner, MCPGW_BAL_UPSTREAM_FAILED, err, why);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        h->base.cb->end(h->base.owner, MCPGW_BAL_UPSTREAM_TIMEOUT, 0, "timed out");
    else if (what & BEV_EVENT_EOF)
        h->base.cb->end(h->base.owner, MCPGW_BAL_UPSTREAM_EOF, 0, "end of stream");
    else
        h->base.cb->end(h->base.owner, MCPGW_BAL_UPSTREAM_ERROR, err, strerror(err));
}

/* Readable (or its response timeout expired): one readv. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct up_h1 *h = arg;
    ssize_t r;
    if (what & EV_TIMEOUT) {
        report(h, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, 0);
        return;
    }
    r = mcpgw_bal_io_read(bufferevent_get_input(h->bev), (int)fd, MCPGW_BAL_IO_READ_CHUNK);
    if (r == 0) {
        report(h, BEV_EVENT_EOF | BEV_EVENT_READING, 0);
        return;
    }
    if (r < 0) {
        if (!mcpgw_bal_io_would_block(errno))
            report(h, BEV_EVENT_ERROR | BEV_EVENT_READING, errno);
        return;
    }
    if (!h->base.owner) { /* bytes on an idle pooled connection: nothing may come there */
        discard(h);
        return;
    }
    h->base.cb->input(h->base.owner);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct up_h1 *h = arg;
    mcpgw_bal_io_write_idle(bev);
    if (!h->base.owner || !h->low || evbuffer_get_length(bufferevent_get_output(bev)) > h->low)
        return;
    h->low = 0;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    h->base.cb->drained(h->base.owner);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct up_h1 *h = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (what & BEV_EVENT_CONNECTED) {
        struct timeval rt = mcpgw_bal_io_tv(h->base.set->cfg->response_timeout_ms);
        h->connected = 1;
        bufferevent_set_timeouts(bev, NULL, &rt);
        return;
    }
    report(h, what, err);
}

/* ---- operations ---- */

static int h1_send_head(struct mcpgw_bal_upstream *u, struct evbuffer *head, char *why, size_t len)
{
    struct up_h1 *h = (struct up_h1 *)u;
    (void)why, (void)len;
    /* Sent by the caller's flush(), with the first bytes of the body when there is one. */
    evbuffer_add_buffer(bufferevent_get_output(h->bev), head);
    return 0;
}

static struct evbuffer *h1_input(struct mcpgw_bal_upstream *u)
{
    return bufferevent_get_input(((struct up_h1 *)u)->bev);
}

static struct evbuffer *h1_output(struct mcpgw_bal_upstream *u)
{
    return bufferevent_get_output(((struct up_h1 *)u)->bev);
}

static void h1_flush(struct mcpgw_bal_upstream *u)
{
    mcpgw_bal_io_push(((struct up_h1 *)u)->bev);
}

static void h1_watch_output(struct mcpgw_bal_upstream *u, size_t low)
{
    struct up_h1 *h = (struct up_h1 *)u;
    h->low = low;
    bufferevent_setwatermark(h->bev, EV_WRITE, low, 0);
}

static void h1_pause(struct mcpgw_bal_upstream *u)
{
    struct up_h1 *h = (struct up_h1 *)u;
    h->paused = 1;
    event_del(&h->rev);
}

static void h1_resume(struct mcpgw_bal_upstream *u)
{
    struct up_h1 *h = (struct up_h1 *)u;
    h->paused = 0;
    read_on(h);
}

static void h1_answered(struct mcpgw_bal_upstream *u)
{
    struct up_h1 *h = (struct up_h1 *)u;
    /* Streams may be quiet for long: no timeout once the head is here. */
    wait_remove(h);
    bufferevent_set_timeouts(h->bev, NULL, NULL);
}

static int h1_sent(const struct mcpgw_bal_upstream *u)
{
    return ((const struct up_h1 *)u)->connected;
}

static struct evbuffer *h1_unsent(struct mcpgw_bal_upstream *u)
{
    return bufferevent_get_output(((struct up_h1 *)u)->bev);
}

static struct evbuffer *h1_kept_head(struct mcpgw_bal_upstream *u)
{
    (void)u;
    return NULL;
}

static void h1_release(struct mcpgw_bal_upstream *u, int reuse)
{
    struct up_h1 *h = (struct up_h1 *)u;
    struct mcpgw_bal_upstream_set *set = u->set;
    if (reuse && h->connected && !set->draining && mcpgw_bal_nodes_in_use(set->nodes, u->slot) &&
        !mcpgw_bal_nodes_passive(set->nodes, u->slot) && pool_of(h)->npool < set->cfg->pool_size &&
        evbuffer_get_length(bufferevent_get_input(h->bev)) == 0)
        pool_put(h);
    else
        discard(h);
}

static const struct mcpgw_bal_upstream_ops h1_ops = {
    .name = "http/1.1",
    .send_head = h1_send_head,
    .input = h1_input,
    .output = h1_output,
    .flush = h1_flush,
    .watch_output = h1_watch_output,
    .pause = h1_pause,
    .resume = h1_resume,
    .answered = h1_answered,
    .sent = h1_sent,
    .unsent = h1_unsent,
    .kept_head = h1_kept_head,
    .release = h1_release,
};

/* ---- the pool ---- */

struct mcpgw_bal_upstream *mcpgw_bal_upstream_h1_get(struct mcpgw_bal_upstream_set *set, int slot,
                                                     int *err)
{
    struct upool *p = &set->slots[slot];
    struct up_h1 *h = p->pool_first;
    const struct mcpgw_bal_config *cfg = set->cfg;
    struct timeval ct = mcpgw_bal_io_tv(cfg->connect_timeout_ms);
    struct timeval rt = mcpgw_bal_io_tv(cfg->response_timeout_ms);
    int fd, pending;

    if (h) {
        pool_remove(h);
        bufferevent_set_timeouts(h->bev, NULL, &rt);
        mcpgw_bal_upstream_init(&h->base, &h1_ops, set, slot);
        wait_add(h);
        return &h->base;
    }
    fd = mcpgw_bal_nodes_connect(set->nodes, slot, &pending);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    h = xcalloc(1, sizeof(*h));
    h->bev = bufferevent_socket_new(set->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!h->bev) {
        close(fd);
        free(h);
        *err = ENOMEM;
        return NULL;
    }
    bufferevent_setcb(h->bev, NULL, on_write, on_event, h);
    bufferevent_set_timeouts(h->bev, NULL, pending ? &ct : &rt);
    /* Reads go through rev; the bufferevent writes (and reports the connect). */
    bufferevent_disable(h->bev, EV_READ);
    bufferevent_enable(h->bev, EV_WRITE);
    if (pending)
        bufferevent_socket_connect(h->bev, NULL, 0);
    else
        h->connected = 1;
    event_assign(&h->rev, set->base, fd, EV_READ | EV_PERSIST, on_readable, h);
    read_on(h);
    mcpgw_bal_upstream_init(&h->base, &h1_ops, set, slot);
    wait_add(h);
    return &h->base;
}

void mcpgw_bal_upstream_h1_close_idle(struct mcpgw_bal_upstream_set *set, int slot)
{
    while (set->slots[slot].pool_first)
        discard(set->slots[slot].pool_first);
}

void mcpgw_bal_upstream_h1_sweep(struct mcpgw_bal_upstream_set *set)
{
    uint32_t now = mcpgw_bal_upstream_now(set);
    struct up_h1 *h;
    /* Oldest first: the walk stops at the first response still within its time. */
    while ((h = set->wait_first) && (int32_t)(now - h->deadline) >= 0) {
        wait_remove(h);
        report(h, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, 0);
    }
    for (int i = 0; i < mcpgw_bal_nodes_count(set->nodes); i++) {
        struct upool *p = &set->slots[i];
        while (p->pool_last &&
               (int32_t)(now - p->pool_last->released) >= (int32_t)set->cfg->pool_idle_timeout_ms)
            discard(p->pool_last);
    }
}
