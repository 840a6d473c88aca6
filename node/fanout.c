/* fanout.c - resource updates delivered to this node's subscribers a batch at a time.
 *
 * One update can have tens of thousands of local subscribers, and each delivery is a write to a
 * socket: done in one callback it holds the event loop for hundreds of milliseconds, more on a
 * loaded machine, long enough for gossip to declare the node dead and the balancer to cut every
 * stream it holds. So an update is a job, delivered FANOUT_BATCH subscribers (whole registry
 * shards) per callback at the loop's lowest priority: requests, streams, gossip probes and
 * timers run between batches. Jobs run one at a time in arrival order, so every subscriber
 * sees updates in id order, which the per-session dedup by id (stream.c) relies on.
 *
 * A fan-out's events wait in the streams' buffers until the balancer takes them (its HTTP/2
 * window is small on purpose, docs/balancer.md): some 4 MiB for 5,000 subscribers, freed a
 * second or two later but kept by malloc as the heap's high-water mark. So the node hands free
 * heap pages back to the kernel (malloc_trim) a while after the last job ends, as HAProxy does
 * after releasing its pools: a node's RSS then says what it holds between fan-outs.
 *
 * The queue is bounded (--fanout-queue-max): a node whose subscribers cannot keep up with the
 * update rate would otherwise grow without limit. An update that finds the queue full is not
 * queued; instead every local subscriber of its URI has its GET stream ended, and its client
 * resumes with Last-Event-ID, replaying from the store what it missed (the update included):
 * nothing is lost, the overload costs replays, and it is counted. A subscriber whose resume is
 * under way gets the update held for after its replay (mcpgw_stream_deliver queues it then). */
#include "node/fanout.h"

#include "common/log.h"
#include "common/util.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/stream.h"

#include <event2/event.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#define FANOUT_BATCH 256
#define TRIM_DELAY_S 3 /* after the last job: the balancer has taken the events by then */

struct job {
    struct job *next;
    char *uri;             /* NULL: every session with a GET stream (a list change), or a call */
    void (*fn)(void *arg); /* a call in the queue's order (mcpgw_fanout_push_call), or NULL */
    void *arg;
    uint64_t g, seq;
    size_t shard; /* the next registry shard to deliver to */
    size_t len;
    char json[];
};

struct mcpgw_fanout {
    struct mcpgw_node *n;
    struct event *ev;
    struct event *trim_ev;
    struct job *head, *tail;
    size_t queued;
};

struct visit {
    struct mcpgw_node *n;
    const struct job *j;
    size_t count;
};

struct overflow {
    struct mcpgw_node *n;
    const char *uri, *json;
    uint64_t g, seq;
    size_t len, ended;
};

static void deliver(void *arg, struct mcpgw_session *s)
{
    struct visit *v = arg;
    mcpgw_stream_deliver(v->n, s, v->j->g, v->j->seq, v->j->json, v->j->len);
}

/* A list change: to every initialized session with a GET stream (or one being resumed, which
 * holds it), in the same queue as the updates, so that the per-session dedup by id sees them in
 * id order. */
static void deliver_all(void *arg, struct mcpgw_session *s)
{
    struct visit *v = arg;
    v->count++;
    if (s->state != MCPGW_SESSION_READY || (!s->get_stream && !s->resuming))
        return;
    mcpgw_stream_deliver(v->n, s, v->j->g, v->j->seq, v->j->json, v->j->len);
}

/* Deliver j to whole shards of sessions from j->shard until budget sessions were visited. */
static size_t all_from(struct mcpgw_fanout *f, struct job *j, size_t budget)
{
    struct visit v = {f->n, j, 0};
    size_t shards = mcpgw_registry_shard_count(f->n->reg);
    while (j->shard < shards && v.count < budget)
        mcpgw_registry_foreach_in_shard(f->n->reg, j->shard++, deliver_all, &v);
    return v.count;
}

static void job_free(struct job *j)
{
    free(j->uri);
    free(j);
}

/* A zero timeout, not event_active(): libevent runs an event activated from its own callback
 * again in the same pass, before polling, so nothing else would run between batches. A timer
 * fires after the next poll, and the I/O that poll found (higher priority) goes first. */
static void next_batch(struct mcpgw_fanout *f)
{
    static const struct timeval now = {0, 0};
    event_add(f->ev, &now);
}

static void on_batch(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_fanout *f = arg;
    size_t budget = FANOUT_BATCH;
    while (f->head && budget) {
        struct job *j = f->head;
        struct visit v = {f->n, j, 0};
        size_t done;
        if (j->fn) {
            /* Off the queue first: the call may queue more. */
            f->head = j->next;
            if (!f->head)
                f->tail = NULL;
            f->queued--;
            if (f->n->st.fanout_queued)
                *f->n->st.fanout_queued = (int64_t)f->queued;
            j->fn(j->arg);
            job_free(j);
            budget--;
            continue;
        }
        done = j->uri ? mcpgw_registry_foreach_subscriber_from(f->n->reg, j->uri, &j->shard, budget,
                                                               deliver, &v)
                      : all_from(f, j, budget);
        budget = done >= budget ? 0 : budget - done;
        if (!mcpgw_registry_subscriber_shards_left(f->n->reg, j->shard)) {
            f->head = j->next;
            if (!f->head)
                f->tail = NULL;
            job_free(j);
            f->queued--;
            if (f->n->st.fanout_queued)
                *f->n->st.fanout_queued = (int64_t)f->queued;
        }
    }
    if (f->head) {
        next_batch(f);
    } else {
        static const struct timeval later = {TRIM_DELAY_S, 0};
        event_add(f->trim_ev, &later); /* again after each burst: one trim after the last */
    }
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

struct mcpgw_fanout *mcpgw_fanout_new(struct mcpgw_node *n, int priority)
{
    struct mcpgw_fanout *f = xcalloc(1, sizeof(*f));
    f->n = n;
    f->ev = event_new(n->base, -1, 0, on_batch, f);
    event_priority_set(f->ev, priority);
    f->trim_ev = evtimer_new(n->base, on_trim, f);
    event_priority_set(f->trim_ev, priority);
    return f;
}

void mcpgw_fanout_free(struct mcpgw_fanout *f)
{
    if (!f)
        return;
    while (f->head) {
        struct job *j = f->head;
        f->head = j->next;
        job_free(j);
    }
    event_free(f->ev);
    event_free(f->trim_ev);
    free(f);
}

static void end_behind(void *arg, struct mcpgw_session *s)
{
    struct overflow *o = arg;
    if (s->resuming) {
        mcpgw_stream_deliver(o->n, s, o->g, o->seq, o->json, o->len); /* held, not written */
    } else if (s->get_stream) {
        mcpgw_stream_end(s);
        o->ended++;
    }
}

/* The queue is full: the update's subscribers catch up from the store instead. */
static void overflow(struct mcpgw_fanout *f, const char *uri, uint64_t g, uint64_t seq,
                     const char *json, size_t len)
{
    struct overflow o = {f->n, uri, json, g, seq, len, 0};
    mcpgw_registry_foreach_subscriber(f->n->reg, uri, end_behind, &o);
    if (f->n->st.fanout_dropped)
        (*f->n->st.fanout_dropped)++;
    if (f->n->st.fanout_streams_ended)
        *f->n->st.fanout_streams_ended += o.ended;
    log_warn("fan-out queue full (%zu updates): %s %llu-%llu not queued, %zu GET streams ended "
             "to resume from the store",
             f->queued, uri, (unsigned long long)g, (unsigned long long)seq, o.ended);
}

static void enqueue(struct mcpgw_fanout *f, const char *uri, uint64_t g, uint64_t seq,
                    const char *json, size_t len)
{
    struct job *j = xmalloc(sizeof(*j) + len + 1);
    j->next = NULL;
    j->fn = NULL;
    j->arg = NULL;
    j->uri = uri ? xstrdup(uri) : NULL;
    j->g = g;
    j->seq = seq;
    j->shard = 0;
    j->len = len;
    memcpy(j->json, json, len);
    j->json[len] = '\0';
    if (f->tail)
        f->tail->next = j;
    else
        f->head = j;
    f->tail = j;
    f->queued++;
    if (f->n->st.fanout_queued)
        *f->n->st.fanout_queued = (int64_t)f->queued;
    if (f->head == j)
        next_batch(f);
}

void mcpgw_fanout_push(struct mcpgw_fanout *f, const char *uri, uint64_t g, uint64_t seq,
                       const char *json, size_t len)
{
    if (f->queued >= f->n->cfg.fanout_queue_max) {
        overflow(f, uri, g, seq, json, len);
        return;
    }
    enqueue(f, uri, g, seq, json, len);
}

void mcpgw_fanout_push_all(struct mcpgw_fanout *f, uint64_t g, uint64_t seq, const char *json,
                           size_t len)
{
    /* Not capped: list changes are a few per catalogue change, and a session that misses one
     * has no URI to be caught up by. */
    enqueue(f, NULL, g, seq, json, len);
}

void mcpgw_fanout_push_call(struct mcpgw_fanout *f, void (*fn)(void *arg), void *arg)
{
    enqueue(f, NULL, 0, 0, "", 0);
    f->tail->fn = fn;
    f->tail->arg = arg;
}

size_t mcpgw_fanout_queued(const struct mcpgw_fanout *f)
{
    return f->queued;
}
