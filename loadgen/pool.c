/* pool.c - keep-alive request connections of one worker (see pool.h). */
#include "loadgen/pool.h"

#include "common/log.h"
#include "common/util.h"
#include "loadgen/worker.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>

/* Every connection of the pool, for closing them all at the end. */
struct lg_conn_node {
    struct lg_conn k;
    struct lg_conn_node *prev, *next;
};

static void on_done(struct mcpgw_client *c, int err, const struct mcpgw_client_resp *r, void *arg);
static void on_idle_closed(struct mcpgw_client *c, void *arg);

static const struct mcpgw_client_ops conn_ops = {
    .done = on_done,
    .idle_closed = on_idle_closed,
};

const struct sockaddr *mcpgw_pool_next_src(struct lg_worker *w, socklen_t *len)
{
    if (!w->nsrc)
        return NULL;
    *len = sizeof(struct sockaddr_in);
    return (const struct sockaddr *)&w->cfg->src[w->srcs[w->src_rr++ % w->nsrc]];
}

static struct lg_conn *conn_new(struct lg_worker *w)
{
    struct lg_conn_node *n = xcalloc(1, sizeof(*n));
    socklen_t slen = 0;
    const struct sockaddr *src = mcpgw_pool_next_src(w, &slen);
    char err[160];
    n->k.w = w;
    n->k.c = mcpgw_client_new(w->base, (const struct sockaddr *)&w->cfg->dst, w->cfg->dstlen, src,
                              slen, &conn_ops, &n->k, err, sizeof(err));
    if (!n->k.c) {
        if (mcpgw_now_ms() - w->pool_err_log_ms > 1000) {
            w->pool_err_log_ms = mcpgw_now_ms();
            log_warn("worker %u: new request connection: %s", w->idx, err);
        }
        free(n);
        return NULL;
    }
    n->next = w->all_conns;
    if (w->all_conns)
        w->all_conns->prev = n;
    w->all_conns = n;
    w->nconns++;
    return &n->k;
}

static void conn_free(struct lg_conn *k, int abort)
{
    struct lg_conn_node *n = (struct lg_conn_node *)k;
    struct lg_worker *w = k->w;
    if (n->prev)
        n->prev->next = n->next;
    else
        w->all_conns = n->next;
    if (n->next)
        n->next->prev = n->prev;
    mcpgw_client_free(k->c, abort);
    w->nconns--;
    free(n);
}

static void conn_send(struct lg_conn *k, struct lg_req *r)
{
    struct lg_worker *w = k->w;
    if (!w->pool_scratch)
        w->pool_scratch = evbuffer_new();
    mcpgw_worker_build(w, r, w->pool_scratch);
    w->c[LG_C_BYTES_OUT] += evbuffer_get_length(w->pool_scratch);
    k->req = r;
    k->sent_us = mcpgw_now_us();
    r->tries++;
    w->inflight++;
    mcpgw_client_request(k->c, w->pool_scratch, 0, (uint32_t)w->cfg->timeout_ms);
    evbuffer_drain(w->pool_scratch, evbuffer_get_length(w->pool_scratch));
}

static struct lg_req *next_work(struct lg_worker *w)
{
    struct lg_req *r = w->qhead;
    if (r) {
        w->qhead = r->next;
        if (!w->qhead)
            w->qtail = NULL;
        r->next = NULL;
        w->nqueued--;
        return r;
    }
    return mcpgw_worker_pull(w);
}

static void enqueue(struct lg_worker *w, struct lg_req *r, int front)
{
    r->next = NULL;
    if (front) {
        r->next = w->qhead;
        w->qhead = r;
        if (!w->qtail)
            w->qtail = r;
    } else {
        if (w->qtail)
            w->qtail->next = r;
        else
            w->qhead = r;
        w->qtail = r;
    }
    w->nqueued++;
}

struct retry {
    struct lg_worker *w;
    struct lg_req *r;
};

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct retry *rt = arg;
    struct lg_worker *w = rt->w;
    struct lg_req *r = rt->r;
    free(rt);
    if (w->phase == LG_PH_FINISHING && r->kind != LG_REQ_DELETE) {
        mcpgw_worker_on_response(w, r, MCPGW_CLIENT_CONNECT, NULL);
        return;
    }
    enqueue(w, r, 1);
    mcpgw_pool_kick(w);
}

/* Requests whose repetition is harmless. */
static int idempotent(const struct lg_req *r)
{
    return r->kind == LG_REQ_ECHO || r->kind == LG_REQ_INITIALIZED || r->kind == LG_REQ_SUBSCRIBE ||
           r->kind == LG_REQ_DELETE;
}

/* Whether a failure with err may be sent again: the request never reached a server, or it did
 * but doing it twice is harmless. */
static int retriable(const struct lg_req *r, int err)
{
    if (err == MCPGW_CLIENT_CONNECT || err == MCPGW_CLIENT_STALE)
        return 1;
    return err == MCPGW_CLIENT_RESET && idempotent(r);
}

/* Send r again after 50 ms times its attempts so far (counted as retried). */
static void retry_later(struct lg_worker *w, struct lg_req *r)
{
    struct retry *rt = xmalloc(sizeof(*rt));
    uint64_t us = 50000 * (uint64_t)r->tries;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    w->c[LG_C_REQ_RETRIED]++;
    rt->w = w;
    rt->r = r;
    event_base_once(w->base, -1, EV_TIMEOUT, on_retry, rt, &tv);
}

static int may_retry(const struct lg_worker *w, const struct lg_req *r)
{
    return r->tries <= w->cfg->retries && w->phase != LG_PH_FINISHING;
}

static void failed(struct lg_worker *w, struct lg_req *r, int err)
{
    if (retriable(r, err) && may_retry(w, r)) {
        if (err == MCPGW_CLIENT_STALE) {
            w->c[LG_C_REQ_RETRIED]++;
            enqueue(w, r, 1); /* the server just closed an idle connection: go again now */
        } else {
            retry_later(w, r);
        }
        return;
    }
    mcpgw_worker_on_response(w, r, err, NULL);
}

void mcpgw_pool_kick(struct lg_worker *w)
{
    for (;;) {
        struct lg_conn *k = w->idle;
        struct lg_req *r;
        if (!k && w->nconns >= w->max_conns)
            break;
        r = next_work(w);
        if (!r)
            break;
        if (k) {
            w->idle = k->next;
            k->next = NULL;
        } else if (!(k = conn_new(w))) {
            r->tries++;
            failed(w, r, MCPGW_CLIENT_CONNECT);
            break; /* out of sockets: let time pass */
        }
        conn_send(k, r);
    }
}

void mcpgw_pool_submit(struct lg_worker *w, struct lg_req *r)
{
    enqueue(w, r, 0);
    mcpgw_pool_kick(w);
}

static void on_done(struct mcpgw_client *c, int err, const struct mcpgw_client_resp *resp,
                    void *arg)
{
    struct lg_conn *k = arg;
    struct lg_worker *w = k->w;
    struct lg_req *r = k->req;
    k->req = NULL;
    w->inflight--;
    if (err == MCPGW_CLIENT_OK) {
        int reusable = mcpgw_client_reusable(c);
        if (reusable) {
            k->next = w->idle;
            w->idle = k;
        } else {
            conn_free(k, 0);
        }
        /* A gateway's 502/503/504 says the upstream failed or is unavailable (a node died or
         * drains): a client retries what it may repeat. */
        if ((resp->status == 502 || resp->status == 503 || resp->status == 504) && idempotent(r) &&
            may_retry(w, r))
            retry_later(w, r);
        else
            mcpgw_worker_on_response(w, r, err, resp);
    } else {
        conn_free(k, 0);
        failed(w, r, err);
    }
    mcpgw_pool_kick(w);
}

static void on_idle_closed(struct mcpgw_client *c, void *arg)
{
    struct lg_conn *k = arg, **pp;
    struct lg_worker *w = k->w;
    for (pp = &w->idle; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    conn_free(k, 0);
}

void mcpgw_pool_close_all(struct lg_worker *w)
{
    while (w->all_conns) {
        struct lg_req *r = w->all_conns->k.req;
        if (r) {
            w->inflight--;
            mcpgw_worker_req_free(w, r);
        }
        conn_free(&w->all_conns->k, 1);
    }
    w->idle = NULL;
}
