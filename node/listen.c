/* listen.c - subscriptions/listen streams: the filter, the acknowledgement, delivery of the
 * cluster's resource events in the background, and the replay of a stream re-opened after an
 * event id (docs/listen.md).
 *
 * A stream is small (one allocation: its filter's index positions and its subscription id) and
 * the index is by key: a resource URI, or one of three reserved keys for the list-changed
 * kinds. Each key holds a vector of its streams; a closed stream leaves a hole (a fan-out may
 * be walking the vector), filled again when no fan-out walks it. A resource event becomes a job
 * that renders the notification once (a template ending where the subscription id goes) and
 * walks the key's vector LISTEN_BATCH streams per callback at the loop's lowest priority, as
 * node/fanout.c does for sessions. Jobs run in arrival order, and each stream keeps the highest
 * event counter it wrote, so a replay and live events never write one event twice. */
#include "node/listen.h"

#include "common/httpd.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/frame.h"
#include "node/guard.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/session.h"
#include "node/store.h"

#include "common/sse.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LISTEN_BATCH     256
#define LISTEN_URIS_MAX  64 /* resourceSubscriptions per stream */
#define LISTEN_TASKS_MAX 64 /* taskIds per stream */
#define TASK_ID_MAX      127
/* The tasks extension (node/tasks.c feeds these streams through mcpgw_listen_task). */
#define LISTEN_TASKS_EXT "io.modelcontextprotocol/tasks"
#define LISTEN_ID_MAX    200 /* bytes of a subscription id's JSON text */
#define HASH_BITS_MIN    6
#define LISTEN_GAP_MAX   100000 /* live events held while a feed gap is read */

/* Every stream is in this key's vector first: how the set reaches all of its streams. */
static const char key_all[] = "\x01all";
/* Reserved index keys of the list-changed kinds: a URI from a client holds no control byte.
 * They are also the names of the store's list-change events (MCPGW_STORE_LIST_PREFIX). */
static const char *const list_keys[MCPGW_LISTEN_LIST_COUNT] = {
    MCPGW_STORE_LIST_PREFIX "tools", MCPGW_STORE_LIST_RESOURCES, MCPGW_STORE_LIST_PREFIX "prompts"};
static const char *const list_fields[MCPGW_LISTEN_LIST_COUNT] = {
    "toolsListChanged", "resourcesListChanged", "promptsListChanged"};
static const char *const list_methods[MCPGW_LISTEN_LIST_COUNT] = {
    "notifications/tools/list_changed", "notifications/resources/list_changed",
    "notifications/prompts/list_changed"};

const char *mcpgw_listen_list_str(enum mcpgw_listen_list l)
{
    return l < MCPGW_LISTEN_LIST_COUNT ? list_fields[l] : "?";
}

struct listen;

/* One key and the streams that name it (holes are NULL). */
struct entry {
    struct entry *hnext;
    struct listen **v;
    uint32_t n, cap, live;
    uint32_t busy; /* jobs walking v: no compaction, no free */
    uint32_t hash;
    char key[];
};

struct lref {
    struct entry *e;
    uint32_t pos;
};

/* An event that arrived while the stream's replay ran: written after it, if still new. */
struct held {
    struct held *next;
    uint64_t g, seq;
    size_t len;
    char text[];
};

struct replay_op;

struct listen {
    struct mcpgw_listen_set *ls;
    struct mcpgw_http_conn *conn;
    uint64_t last_g; /* highest event counter written (0: none, or no counter) */
    struct held *held, *held_tail;
    struct replay_op *rop; /* the replay in flight, or NULL */
    uint8_t nrefs;
    uint8_t idlen;
    uint8_t replaying;
    char *id; /* points into the allocation, after refs */
    struct lref refs[];
};

struct job {
    struct job *next;
    struct entry *e;
    uint64_t g, seq;
    uint32_t pos;
    size_t len;
    char text[];
};

/* A live event held while the feed's gap is read. */
struct gap_ev {
    struct gap_ev *next;
    uint64_t g, seq, version;
    char uri[];
};

struct gap_op;

struct mcpgw_listen_set {
    struct mcpgw_node *n;
    struct entry **tab;
    uint32_t tab_bits, entries;
    size_t streams;
    struct job *head, *tail;
    struct event *ev;
    int64_t *g_streams;
    uint64_t *c_events, *c_opened, *c_dropped;
    /* The store's feed gap (mcpgw_listen_gap_hold): 0 none, 1 holding, 2 reading it. Events
     * after gap_after may be missing; live ones wait in gap_head meanwhile. */
    int gap;
    uint64_t gap_after;
    /* The highest event counter a probe read from the store (mcpgw_listen_open): a mark for new
     * streams while this node has received no event yet, so that only the first opens ask. */
    uint64_t base;
    int base_known;
    size_t gap_n;
    struct gap_ev *gap_head, *gap_tail;
    struct gap_op *gap_op; /* the read in flight */
};

struct gap_op {
    struct mcpgw_listen_set *ls; /* NULL once stale (another hold, or the set freed) */
};

struct replay_op {
    struct listen *l; /* NULL once the stream closed */
    struct mcpgw_node *n;
    char *ack; /* the acknowledgement, when it waits for the counter (see mcpgw_listen_open) */
    size_t acklen;
};

/* ---- the index ---- */

static uint32_t hash_key(const char *k)
{
    uint32_t h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (uint8_t)*k) * 16777619u;
    return h;
}

static struct entry *entry_find(struct mcpgw_listen_set *ls, const char *key, uint32_t h)
{
    struct entry *e;
    if (!ls->tab)
        return NULL;
    for (e = ls->tab[h & ((1u << ls->tab_bits) - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void tab_grow(struct mcpgw_listen_set *ls)
{
    uint32_t bits = ls->tab ? ls->tab_bits + 1 : HASH_BITS_MIN,
             old = ls->tab ? 1u << ls->tab_bits : 0;
    struct entry **t = xcalloc((size_t)1 << bits, sizeof(*t));
    for (uint32_t i = 0; i < old; i++)
        for (struct entry *e = ls->tab[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = t[e->hash & ((1u << bits) - 1)];
            t[e->hash & ((1u << bits) - 1)] = e;
        }
    free(ls->tab);
    ls->tab = t;
    ls->tab_bits = bits;
}

static struct entry *entry_get(struct mcpgw_listen_set *ls, const char *key)
{
    uint32_t h = hash_key(key);
    struct entry *e = entry_find(ls, key, h);
    size_t kl;
    if (e)
        return e;
    if (!ls->tab || ls->entries >= (1u << ls->tab_bits))
        tab_grow(ls);
    kl = strlen(key);
    e = xcalloc(1, sizeof(*e) + kl + 1);
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->hnext = ls->tab[h & ((1u << ls->tab_bits) - 1)];
    ls->tab[h & ((1u << ls->tab_bits) - 1)] = e;
    ls->entries++;
    return e;
}

static void entry_maybe_free(struct mcpgw_listen_set *ls, struct entry *e)
{
    struct entry **pp;
    if (e->live || e->busy)
        return;
    for (pp = &ls->tab[e->hash & ((1u << ls->tab_bits) - 1)]; *pp != e; pp = &(*pp)->hnext)
        ;
    *pp = e->hnext;
    ls->entries--;
    free(e->v);
    free(e);
}

static struct lref *ref_of(struct listen *l, const struct entry *e)
{
    for (unsigned i = 0; i < l->nrefs; i++)
        if (l->refs[i].e == e)
            return &l->refs[i];
    return NULL;
}

/* Close the holes (only when no job walks v: a job's position must keep meaning). */
static void entry_compact(struct entry *e)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < e->n; i++) {
        struct listen *l = e->v[i];
        if (!l)
            continue;
        ref_of(l, e)->pos = w;
        e->v[w++] = l;
    }
    e->n = w;
}

static void entry_add(struct entry *e, struct listen *l, struct lref *ref)
{
    if (e->n == e->cap) {
        if (!e->busy && e->n - e->live >= e->n / 4 && e->n > e->live)
            entry_compact(e);
        if (e->n == e->cap) {
            e->cap = e->cap ? e->cap * 2 : 4;
            e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
        }
    }
    ref->e = e;
    ref->pos = e->n;
    e->v[e->n++] = l;
    e->live++;
}

/* ---- writing ---- */

/* One SSE event: the id (shared store only) and the template + subscription id + tail as its
 * one data line. Returns -1 when the stream is gone (l may then be freed: do not touch it). */
static int write_event(struct listen *l, uint64_t g, uint64_t seq, const char *text, size_t len)
{
    struct mcpgw_listen_set *ls = l->ls;
    char stackbuf[2048], *buf = stackbuf;
    size_t need = len + l->idlen + 96, off = 0;
    int rc;
    if (need > sizeof(stackbuf))
        buf = xmalloc(need);
    if (g)
        off += (size_t)snprintf(buf, need, "id: %llu-%llu\n", (unsigned long long)g,
                                (unsigned long long)seq);
    memcpy(buf + off, "data: ", 6), off += 6;
    memcpy(buf + off, text, len), off += len;
    memcpy(buf + off, l->id, l->idlen), off += l->idlen;
    memcpy(buf + off, MCPGW_MSG_LISTEN_TAIL "\n\n", 5), off += 5;
    if (g)
        l->last_g = g;
    (*ls->c_events)++;
    rc = mcpgw_http_stream_write(l->conn, buf, off);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

/* An event for l: written now, held while its replay runs, or skipped when already written. */
static void offer(struct listen *l, uint64_t g, uint64_t seq, const char *text, size_t len)
{
    if (g && g <= l->last_g)
        return;
    if (l->replaying) {
        struct held *h = xmalloc(sizeof(*h) + len);
        h->next = NULL;
        h->g = g, h->seq = seq, h->len = len;
        memcpy(h->text, text, len);
        if (l->held_tail)
            l->held_tail->next = h;
        else
            l->held = h;
        l->held_tail = h;
        return;
    }
    write_event(l, g, seq, text, len);
}

/* ---- streams ---- */

static void listen_free(struct listen *l)
{
    struct mcpgw_listen_set *ls = l->ls;
    for (unsigned i = 0; i < l->nrefs; i++) {
        struct entry *e = l->refs[i].e;
        e->v[l->refs[i].pos] = NULL;
        e->live--;
        entry_maybe_free(ls, e);
    }
    while (l->held) {
        struct held *h = l->held;
        l->held = h->next;
        free(h);
    }
    if (l->rop)
        l->rop->l = NULL;
    ls->streams--;
    *ls->g_streams = (int64_t)ls->streams;
    free(l);
}

static void on_conn_close(struct mcpgw_http_conn *c, void *arg)
{
    struct listen *l = arg;
    (void)c;
    listen_free(l);
}

/* ---- jobs ---- */

static void next_batch(struct mcpgw_listen_set *ls)
{
    static const struct timeval now = {0, 0};
    event_add(ls->ev, &now);
}

static void on_batch(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_listen_set *ls = arg;
    size_t budget = LISTEN_BATCH;
    (void)fd, (void)what;
    while (ls->head && budget) {
        struct job *j = ls->head;
        struct entry *e = j->e;
        /* e->n is read each time: streams opened meanwhile are reached too (their counter mark
         * skips what their acknowledgement already covers). */
        while (j->pos < e->n && budget) {
            struct listen *l = e->v[j->pos++];
            if (l) {
                offer(l, j->g, j->seq, j->text, j->len);
                budget--;
            }
        }
        if (j->pos >= e->n) {
            ls->head = j->next;
            if (!ls->head)
                ls->tail = NULL;
            e->busy--;
            entry_maybe_free(ls, e);
            free(j);
        }
    }
    if (ls->head)
        next_batch(ls);
}

/* Queue text (a template, copied) for the streams of key. Nothing when none is here. */
static void push(struct mcpgw_listen_set *ls, const char *key, uint64_t g, uint64_t seq,
                 const char *text, size_t len)
{
    struct entry *e = entry_find(ls, key, hash_key(key));
    struct job *j;
    if (!e || !e->live)
        return;
    j = xmalloc(sizeof(*j) + len);
    j->next = NULL;
    j->e = e;
    j->g = g, j->seq = seq, j->pos = 0, j->len = len;
    memcpy(j->text, text, len);
    e->busy++;
    if (ls->tail)
        ls->tail->next = j;
    else
        ls->head = j;
    ls->tail = j;
    if (ls->head == j)
        next_batch(ls);
}

/* The list kind of a list-change event (MCPGW_STORE_LIST_PREFIX), or -1 for a resource. */
static int list_kind(const char *uri)
{
    if (uri[0] != MCPGW_STORE_LIST_PREFIX[0])
        return -1;
    for (int k = 0; k < MCPGW_LISTEN_LIST_COUNT; k++)
        if (strcmp(uri, list_keys[k]) == 0)
            return k;
    return MCPGW_LISTEN_LIST_COUNT;
}

/* The notification template of an event (see write_event), or NULL for an unknown list. */
static char *event_text(const struct mcpgw_store_event *ev, size_t *len)
{
    int k = list_kind(ev->uri);
    if (k < 0)
        return mcpgw_msg_listen_resource_updated(ev->uri, ev->version, len);
    return k < MCPGW_LISTEN_LIST_COUNT ? mcpgw_msg_listen_template(list_methods[k], NULL, len)
                                       : NULL;
}

/* Queue ev for the streams that want it (live, or read from the store after a feed gap). */
static void deliver(struct mcpgw_listen_set *ls, const struct mcpgw_store_event *ev)
{
    struct entry *e;
    char *text;
    size_t len;
    if (list_kind(ev->uri) >= 0) {
        /* A list change with its own event id (shared store): replayable like an update. */
        if ((e = entry_find(ls, ev->uri, hash_key(ev->uri))) && e->live &&
            (text = event_text(ev, &len)) != NULL) {
            push(ls, ev->uri, ev->g, ev->seq, text, len);
            free(text);
        }
        return;
    }
    e = entry_find(ls, ev->uri, hash_key(ev->uri));
    if (e && e->live) {
        text = mcpgw_msg_listen_resource_updated(ev->uri, ev->version, &len);
        push(ls, ev->uri, ev->g, ev->seq, text, len);
        free(text);
    }
    /* With the memory store a note's first version is the resource list's change (a shared
     * store reports that change as an event of its own, above). */
    if (ev->version == 1 && !mcpgw_store_shared(ls->n->store) &&
        (e = entry_find(ls, list_keys[MCPGW_LISTEN_RESOURCES],
                        hash_key(list_keys[MCPGW_LISTEN_RESOURCES]))) &&
        e->live) {
        text = mcpgw_msg_listen_template(list_methods[MCPGW_LISTEN_RESOURCES], NULL, &len);
        push(ls, list_keys[MCPGW_LISTEN_RESOURCES], 0, 0, text, len);
        free(text);
    }
}

/* ---- a gap in the store's feed ---- */

static void gap_free_held(struct mcpgw_listen_set *ls)
{
    while (ls->gap_head) {
        struct gap_ev *h = ls->gap_head;
        ls->gap_head = h->next;
        free(h);
    }
    ls->gap_tail = NULL;
    ls->gap_n = 0;
}

/* Events may be missing and cannot be read: end every stream rather than pretend (the client,
 * or the balancer, opens it again elsewhere, with its replay), and stop holding. */
static void gap_give_up(struct mcpgw_listen_set *ls, const char *why)
{
    struct entry *all = entry_find(ls, key_all, hash_key(key_all));
    log_warn("listen: the event feed had a gap that cannot be read (%s); ending %zu listen "
             "streams",
             why, ls->streams);
    if (ls->gap_op)
        ls->gap_op->ls = NULL;
    ls->gap_op = NULL;
    ls->gap = 0;
    gap_free_held(ls);
    if (!all)
        return;
    all->busy++;
    for (uint32_t k = 0; k < all->n; k++)
        if (all->v[k]) {
            (*ls->c_dropped)++;
            mcpgw_http_conn_close(all->v[k]->conn);
        }
    all->busy--;
    entry_maybe_free(ls, all);
}

void mcpgw_listen_gap_hold(struct mcpgw_node *n)
{
    struct mcpgw_listen_set *ls = n->listen;
    if (!ls || !mcpgw_store_shared(n->store))
        return;
    if (ls->gap == 2) {
        /* A new gap while the last was read: read again, from the same point. */
        ls->gap_op->ls = NULL;
        ls->gap_op = NULL;
    } else if (ls->gap == 0) {
        ls->gap_after = n->ev_seen;
    }
    ls->gap = 1;
}

static void on_gap_event(void *arg, const struct mcpgw_store_event *ev)
{
    struct gap_op *op = arg;
    if (op->ls)
        deliver(op->ls, ev);
}

/* The gap is queued, in order: the events held meanwhile follow it. A stream skips what it has
 * written already (its counter mark). */
static void gap_flush(struct mcpgw_listen_set *ls)
{
    ls->gap = 0;
    while (ls->gap_head) {
        struct gap_ev *h = ls->gap_head;
        struct mcpgw_store_event ev = {h->g, h->seq, h->uri, h->version};
        ls->gap_head = h->next;
        deliver(ls, &ev);
        free(h);
    }
    gap_free_held(ls);
}

static void on_gap_read(void *arg, int err, uint64_t at)
{
    struct gap_op *op = arg;
    struct mcpgw_listen_set *ls = op->ls;
    (void)at;
    free(op);
    if (!ls)
        return;
    ls->gap_op = NULL;
    if (err)
        gap_give_up(ls, mcpgw_store_err_str(err));
    else
        gap_flush(ls);
}

/* The lowest counter mark of the streams that have one: where a catch-up starts on a node that
 * had received no event before the gap (its streams' marks came from probes, or re-opens). */
static uint64_t lowest_mark(struct mcpgw_listen_set *ls)
{
    struct entry *all = entry_find(ls, key_all, hash_key(key_all));
    uint64_t low = 0;
    for (uint32_t k = 0; all && k < all->n; k++)
        if (all->v[k] && all->v[k]->last_g && (!low || all->v[k]->last_g < low))
            low = all->v[k]->last_g;
    return low;
}

void mcpgw_listen_gap_ready(struct mcpgw_node *n)
{
    struct mcpgw_listen_set *ls = n->listen;
    struct gap_op *op;
    char *list;
    size_t total = 0, off = 0;
    if (!ls || ls->gap != 1)
        return;
    /* Nothing to read: no stream, or a node that never saw an event (its streams' marks come
     * from the store itself, mcpgw_listen_open). */
    if (!ls->gap_after)
        ls->gap_after = lowest_mark(ls);
    if (!ls->streams || !ls->gap_after) {
        gap_flush(ls);
        return;
    }
    for (uint32_t i = 0; i < (1u << ls->tab_bits); i++)
        for (struct entry *e = ls->tab[i]; e; e = e->hnext)
            if (e->live && strcmp(e->key, key_all) != 0)
                total += strlen(e->key) + 1;
    list = xmalloc(total + 1);
    for (uint32_t i = 0; i < (1u << ls->tab_bits); i++)
        for (struct entry *e = ls->tab[i]; e; e = e->hnext)
            if (e->live && strcmp(e->key, key_all) != 0) {
                size_t kl = strlen(e->key);
                memcpy(list + off, e->key, kl);
                off += kl;
                list[off++] = '\n';
            }
    list[off ? off - 1 : 0] = '\0';
    op = xmalloc(sizeof(*op));
    op->ls = ls;
    ls->gap_op = op;
    ls->gap = 2;
    log_info("listen: catching %zu listen streams up after a gap in the event feed (after "
             "event %llu)",
             ls->streams, (unsigned long long)ls->gap_after);
    mcpgw_store_replay_uris(n->store, list, ls->gap_after, on_gap_event, on_gap_read, op);
    free(list);
}

void mcpgw_listen_resource(struct mcpgw_node *n, const struct mcpgw_store_event *ev)
{
    struct mcpgw_listen_set *ls = n->listen;
    if (!ls || !ls->streams)
        return;
    if (ls->gap) {
        /* Earlier events may still be read from the store: this one waits for them. */
        size_t ul = strlen(ev->uri);
        struct gap_ev *h;
        if (ls->gap_n >= LISTEN_GAP_MAX) {
            gap_give_up(ls, "too many events held");
            return;
        }
        h = xmalloc(sizeof(*h) + ul + 1);
        h->next = NULL;
        h->g = ev->g, h->seq = ev->seq, h->version = ev->version;
        memcpy(h->uri, ev->uri, ul + 1);
        if (ls->gap_tail)
            ls->gap_tail->next = h;
        else
            ls->gap_head = h;
        ls->gap_tail = h;
        ls->gap_n++;
        return;
    }
    deliver(ls, ev);
}

void mcpgw_listen_list_changed(struct mcpgw_node *n, enum mcpgw_listen_list k)
{
    struct mcpgw_listen_set *ls = n->listen;
    char *text;
    size_t len;
    if (!ls || !ls->streams || k >= MCPGW_LISTEN_LIST_COUNT)
        return;
    text = mcpgw_msg_listen_template(list_methods[k], NULL, &len);
    push(ls, list_keys[k], 0, 0, text, len);
    free(text);
}

/* The index key of a task's status notifications for a principal: "\x02<task id>\x1f<principal>"
 * (no URI holds a control character, no task id a \x1f). Free it. */
static char *task_key(const char *id, const char *principal)
{
    size_t il = strlen(id), pl = strlen(principal);
    char *k = xmalloc(il + pl + 3);
    k[0] = '\x02';
    memcpy(k + 1, id, il);
    k[1 + il] = '\x1f';
    memcpy(k + 2 + il, principal, pl + 1);
    return k;
}

void mcpgw_listen_task(struct mcpgw_node *n, const char *id, const char *principal,
                       json_object *task)
{
    struct mcpgw_listen_set *ls = n->listen;
    json_object *copy = NULL;
    char *key, *text;
    size_t len;
    if (!ls || !ls->streams)
        return;
    key = task_key(id, principal);
    if (entry_find(ls, key, hash_key(key)) && json_object_deep_copy(task, &copy, NULL) == 0) {
        text = mcpgw_msg_listen_task_status(copy, &len); /* takes copy */
        push(ls, key, 0, 0, text, len);
        free(text);
    }
    free(key);
}

/* ---- opening ---- */

static void bad(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                const struct mcpgw_jsonrpc_msg *m, const char *msg)
{
    mcpgw_frame_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_PARAMS, msg);
}

static int uri_ok(const char *u, size_t len)
{
    if (len == 0 || len > MCPGW_URI_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
            return 0;
    return 1;
}

static int task_id_ok(const char *id, size_t len)
{
    if (len == 0 || len > TASK_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return 0;
    return 1;
}

/* The strings of arr, each accepted by ok, deduplicated, into out (borrowed from m). Returns
 * how many, or -1 after answering with not_array, bad_value, or too_many (more than max
 * distinct ones). */
static int read_string_set(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                           const struct mcpgw_jsonrpc_msg *m, json_object *arr,
                           int (*ok)(const char *, size_t), int max, const char *out[],
                           const char *not_array, const char *bad_value, const char *too_many)
{
    int k = 0;
    if (!json_object_is_type(arr, json_type_array)) {
        bad(n, conn, m, not_array);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        const char *s;
        int dup = 0;
        if (!json_object_is_type(v, json_type_string) ||
            !ok(json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
            bad(n, conn, m, bad_value);
            return -1;
        }
        s = json_object_get_string(v);
        for (int j = 0; j < k && !dup; j++)
            dup = strcmp(out[j], s) == 0;
        if (dup)
            continue;
        if (k == max) {
            bad(n, conn, m, too_many);
            return -1;
        }
        out[k++] = s;
    }
    return k;
}

/* Read params.notifications.taskIds (the tasks extension, which the request must declare) into
 * tasks (deduplicated, borrowed from m). Returns how many, or -1 after answering the error. */
static int read_task_ids(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                         const struct mcpgw_jsonrpc_msg *m, json_object *f,
                         const char *tasks[LISTEN_TASKS_MAX])
{
    json_object *arr, *caps;
    if (!json_object_object_get_ex(f, "taskIds", &arr) || !arr)
        return 0;
    /* The request must declare the extension (SEP-2663), in its _meta clientCapabilities. */
    caps = mcpgw_json_obj(mcpgw_json_obj(m->params, "_meta"),
                          "io.modelcontextprotocol/clientCapabilities");
    if (!mcpgw_json_obj(mcpgw_json_obj(caps, "extensions"), LISTEN_TASKS_EXT)) {
        size_t len;
        char *json =
            mcpgw_msg_missing_extension(m->id, LISTEN_TASKS_EXT, "notifications.taskIds", &len);
        (*n->st.errors)++;
        mcpgw_http_respond(conn, 400, "application/json", NULL, json, len);
        free(json);
        return -1;
    }
    return read_string_set(n, conn, m, arr, task_id_ok, LISTEN_TASKS_MAX, tasks,
                           "Invalid params: params.notifications.taskIds must be an array of "
                           "task ids",
                           "Invalid params: params.notifications.taskIds holds a value that is "
                           "not a task id (a string of 1-127 bytes without control characters)",
                           "Invalid params: a listen stream may follow 64 tasks; open another "
                           "stream for more");
}

/* Read params.notifications into wants[] and uris (deduplicated, borrowed from m), and its
 * taskIds into tasks (*ntasks). Returns the number of URIs, or -1 after answering the error. */
static int read_filter(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                       const struct mcpgw_jsonrpc_msg *m, int wants[MCPGW_LISTEN_LIST_COUNT],
                       const char *uris[LISTEN_URIS_MAX], const char *tasks[LISTEN_TASKS_MAX],
                       int *ntasks)
{
    json_object *f, *v, *arr;
    if (!m->params || !json_object_is_type(m->params, json_type_object) ||
        !json_object_object_get_ex(m->params, "notifications", &f) ||
        !json_object_is_type(f, json_type_object)) {
        bad(n, conn, m, "Invalid params: params.notifications is required (an object)");
        return -1;
    }
    for (int k = 0; k < MCPGW_LISTEN_LIST_COUNT; k++) {
        wants[k] = 0;
        if (!json_object_object_get_ex(f, list_fields[k], &v))
            continue;
        if (!json_object_is_type(v, json_type_boolean)) {
            char msg[120];
            snprintf(msg, sizeof(msg), "Invalid params: params.notifications.%s must be a boolean",
                     list_fields[k]);
            bad(n, conn, m, msg);
            return -1;
        }
        /* Every list kind is served (node/catnotify.c announces their changes) and claimed by
         * server/discover (node/msg.c); a false flag is left out of the acknowledgement. */
        wants[k] = json_object_get_boolean(v);
    }
    if ((*ntasks = read_task_ids(n, conn, m, f, tasks)) < 0)
        return -1;
    if (!json_object_object_get_ex(f, "resourceSubscriptions", &arr) || !arr)
        return 0;
    return read_string_set(n, conn, m, arr, uri_ok, LISTEN_URIS_MAX, uris,
                           "Invalid params: params.notifications.resourceSubscriptions must be "
                           "an array of URIs",
                           "Invalid params: params.notifications.resourceSubscriptions holds a "
                           "value that is not a URI (a string of 1-1024 bytes without control "
                           "characters)",
                           "Invalid params: a listen stream may name 64 resources; open another "
                           "stream for more");
}

static void on_replayed_event(void *arg, const struct mcpgw_store_event *ev)
{
    struct replay_op *op = arg;
    struct listen *l = op->l;
    char *text;
    size_t len;
    if (!l || ev->g <= l->last_g || !(text = event_text(ev, &len)))
        return;
    if (write_event(l, ev->g, ev->seq, text, len) < 0)
        op->l = NULL; /* the stream went (and may be freed) */
    free(text);
}

/* The acknowledgement, with its resume mark as the SSE id (shared store). Returns -1 when the
 * stream is gone (l freed). */
static int send_ack(struct listen *l, const char *ack, size_t len, int with_id)
{
    struct evbuffer *tmp = evbuffer_new();
    char id[32];
    int rc;
    snprintf(id, sizeof(id), "%llu-0", (unsigned long long)l->last_g);
    mcpgw_sse_format(tmp, with_id ? id : NULL, NULL, 0, ack, len);
    rc = mcpgw_http_stream_write(l->conn, evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
    evbuffer_free(tmp);
    return rc;
}

static void on_replayed(void *arg, int err, uint64_t at)
{
    struct replay_op *op = arg;
    struct listen *l = op->l;
    char *ack = op->ack;
    size_t acklen = op->acklen;
    free(op);
    if (!l) {
        free(ack);
        return;
    }
    l->rop = NULL;
    if (ack && !err) {
        /* The cluster's counter now: the mark of a stream opened on a node that had seen no
         * event yet. Held events above it follow the acknowledgement. */
        l->last_g = at;
        if (at > l->ls->base)
            l->ls->base = at;
        l->ls->base_known = 1;
        err = send_ack(l, ack, acklen, 1) < 0;
        free(ack);
        if (err)
            return; /* l is gone */
    } else {
        free(ack);
    }
    if (err) {
        /* Events may be missing: end the stream rather than pretend (the client, or the
         * balancer, opens it again and the replay is retried there). */
        log_warn("listen: replay failed (%s); ending the stream", mcpgw_store_err_str(err));
        (*l->ls->c_dropped)++;
        mcpgw_http_conn_close(l->conn);
        return;
    }
    l->replaying = 0;
    while (l->held) {
        struct held *h = l->held;
        l->held = h->next;
        if (!l->held)
            l->held_tail = NULL;
        if (!(h->g && h->g <= l->last_g) && write_event(l, h->g, h->seq, h->text, h->len) < 0) {
            free(h);
            return; /* l may be freed */
        }
        free(h);
    }
}

/* Last-Event-ID of a re-opened stream: the event counter to replay after, or -1 if it is not
 * one of ours. 0 when absent. */
static int resume_point(const struct mcpgw_http_head *h, uint64_t *after)
{
    const struct mcpgw_http_header *lei = h ? mcpgw_http_find(h, "last-event-id") : NULL;
    uint64_t seq;
    *after = 0;
    if (!lei)
        return 0;
    if (mcpgw_session_cluster_id_parse(lei->value, lei->value_len, after, &seq) < 0)
        return -1;
    return 1;
}

void mcpgw_listen_open(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                       const struct mcpgw_http_head *h, const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_listen_set *ls = n->listen;
    int wants[MCPGW_LISTEN_LIST_COUNT], nu, nrefs = 0, resuming, probe, nlists = 0;
    const char *uris[LISTEN_URIS_MAX + MCPGW_LISTEN_LIST_COUNT];
    const char *tasks[LISTEN_TASKS_MAX];
    int ntasks = 0;
    json_object *agreed, *arr = NULL;
    char *idtext, *ack;
    size_t idlen, acklen;
    uint64_t after;
    struct listen *l;
    int shared = mcpgw_store_shared(n->store);

    if ((nu = read_filter(n, conn, m, wants, uris, tasks, &ntasks)) < 0)
        return;
    if (n->cfg.authz) /* a resource the principal may not read is not followed (guard.h) */
        nu = mcpgw_guard_keep(n, MCPGW_AUTHZ_RESOURCE, uris, nu);
    resuming = resume_point(h, &after);
    if (resuming < 0) {
        mcpgw_frame_error(n, conn, NULL, 400, m->id, -32000,
                          "Bad Request: Last-Event-ID is not an event id of this server");
        return;
    }
    idtext = mcpgw_json_dump(m->id, &idlen);
    if (idlen > LISTEN_ID_MAX) {
        free(idtext);
        mcpgw_frame_error(n, conn, NULL, 200, m->id, MCPGW_JSONRPC_INVALID_REQUEST,
                          "Invalid Request: a subscriptions/listen id is limited to 200 bytes "
                          "of JSON");
        return;
    }
    nrefs = 1 + nu + ntasks;
    for (int k = 0; k < MCPGW_LISTEN_LIST_COUNT; k++)
        nrefs += wants[k];
    l = xcalloc(1, sizeof(*l) + (size_t)nrefs * sizeof(struct lref) + idlen + 1);
    l->ls = ls;
    l->conn = conn;
    l->nrefs = (uint8_t)nrefs;
    l->id = (char *)&l->refs[nrefs];
    memcpy(l->id, idtext, idlen + 1);
    l->idlen = (uint8_t)idlen;
    free(idtext);

    agreed = json_object_new_object();
    nrefs = 0;
    entry_add(entry_get(ls, key_all), l, &l->refs[nrefs++]);
    for (int k = 0; k < MCPGW_LISTEN_LIST_COUNT; k++)
        if (wants[k]) {
            entry_add(entry_get(ls, list_keys[k]), l, &l->refs[nrefs++]);
            json_object_object_add(agreed, list_fields[k], json_object_new_boolean(1));
        }
    if (nu)
        arr = json_object_new_array_ext(nu);
    for (int i = 0; i < nu; i++) {
        entry_add(entry_get(ls, uris[i]), l, &l->refs[nrefs++]);
        json_object_array_add(arr, json_object_new_string(uris[i]));
    }
    if (arr)
        json_object_object_add(agreed, "resourceSubscriptions", arr);
    if (ntasks) {
        /* Every id is agreed to; a notification reaches the stream only when the task is its
         * principal's (the key holds both), so another's task id is followed in vain, and an
         * unknown id is indistinguishable from it, as tasks/get answers them alike. */
        const char *who = n->req_principal ? n->req_principal : "";
        arr = json_object_new_array_ext(ntasks);
        for (int i = 0; i < ntasks; i++) {
            char *k = task_key(tasks[i], who);
            entry_add(entry_get(ls, k), l, &l->refs[nrefs++]);
            free(k);
            json_object_array_add(arr, json_object_new_string(tasks[i]));
        }
        json_object_object_add(agreed, "taskIds", arr);
    }
    ls->streams++;
    *ls->g_streams = (int64_t)ls->streams;
    (*ls->c_opened)++;

    /* Every event up to the mark is accounted for: seen by this node already (and so reaching
     * no stream opened now), or, for a re-opened stream, written before on its earlier node.
     * Every later one is delivered live or replayed, once. */
    l->last_g = shared ? (resuming > 0 ? after : n->ev_seen > ls->base ? n->ev_seen : ls->base) : 0;
    mcpgw_http_conn_set_close_cb(conn, on_conn_close, l);
    mcpgw_http_stream_begin(conn, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
    ack = mcpgw_msg_listen_ack(m->id, agreed, n->cfg.node_id, &acklen);
    /* What a replay reads: the URIs, and the list kinds agreed to (their changes have ids). */
    for (int k = 0; k < MCPGW_LISTEN_LIST_COUNT; k++)
        if (wants[k])
            uris[nu + nlists++] = list_keys[k];
    /* A node that has seen no event since it started does not know the counter: its mark would
     * be 0, and a stream moved from it would replay its URIs' whole stored history. It asks
     * Redis first (an empty replay answers the counter) and acknowledges then. The answer is a
     * valid mark for later streams too (base): no event above it has reached this node, so
     * each will reach them; only the first opens ask. */
    probe = shared && !resuming && nu + nlists && !l->last_g && !ls->base_known;
    if (!probe) {
        int gone = send_ack(l, ack, acklen, shared) < 0;
        free(ack);
        ack = NULL;
        if (gone)
            return; /* the close callback freed l */
    }
    if (shared && (resuming > 0 || probe) && nu + nlists) {
        struct replay_op *op = xcalloc(1, sizeof(*op));
        char *list;
        size_t total = 0, off = 0;
        for (int i = 0; i < nu + nlists; i++)
            total += strlen(uris[i]) + 1;
        list = xmalloc(total + 1);
        for (int i = 0; i < nu + nlists; i++) {
            size_t ul = strlen(uris[i]);
            memcpy(list + off, uris[i], ul);
            off += ul;
            list[off++] = '\n';
        }
        list[off ? off - 1 : 0] = '\0';
        op->l = l;
        op->n = n;
        op->ack = ack;
        op->acklen = acklen;
        l->rop = op;
        l->replaying = 1;
        mcpgw_store_replay_uris(n->store, list, probe ? UINT64_MAX : after, on_replayed_event,
                                on_replayed, op);
        free(list);
    }
}

/* ---- the set ---- */

struct mcpgw_listen_set *mcpgw_listen_set_new(struct mcpgw_node *n, int priority)
{
    struct mcpgw_listen_set *ls = xcalloc(1, sizeof(*ls));
    ls->n = n;
    ls->ev = event_new(n->base, -1, 0, on_batch, ls);
    event_priority_set(ls->ev, priority);
    ls->g_streams = mcpgw_metrics_gauge(n->metrics, "mcpgw_node_listen_streams",
                                        "Open subscriptions/listen streams", NULL);
    ls->c_opened = mcpgw_metrics_counter(n->metrics, "mcpgw_node_listen_opened_total",
                                         "subscriptions/listen streams opened", NULL);
    ls->c_events = mcpgw_metrics_counter(n->metrics, "mcpgw_node_listen_events_total",
                                         "Notifications written to listen streams", NULL);
    ls->c_dropped = mcpgw_metrics_counter(
        n->metrics, "mcpgw_node_listen_dropped_total",
        "Listen streams ended because their replay failed (the store was unavailable)", NULL);
    return ls;
}

/* Forget l without ending its stream: its references, what it holds back, its replay. */
static void forget(struct listen *l)
{
    mcpgw_http_conn_set_close_cb(l->conn, NULL, NULL);
    listen_free(l);
}

void mcpgw_listen_set_free(struct mcpgw_listen_set *ls)
{
    struct entry *all;
    if (!ls)
        return;
    while (ls->head) {
        struct job *j = ls->head;
        struct entry *e = j->e;
        ls->head = j->next;
        free(j);
        /* A job keeps its entry after the last stream of the key went (it walks e->v): the
         * entry goes with the last job, as on_batch would have let it go. */
        e->busy--;
        entry_maybe_free(ls, e);
    }
    ls->tail = NULL;
    if (ls->gap_op)
        ls->gap_op->ls = NULL;
    gap_free_held(ls);
    if ((all = entry_find(ls, key_all, hash_key(key_all))) != NULL) {
        all->busy++; /* it stays while its streams go */
        for (uint32_t k = 0; k < all->n; k++)
            if (all->v[k])
                forget(all->v[k]);
        all->busy--;
        entry_maybe_free(ls, all);
    }
    free(ls->tab);
    event_free(ls->ev);
    free(ls);
}

void mcpgw_listen_end_all(struct mcpgw_node *n)
{
    struct mcpgw_listen_set *ls = n->listen;
    struct entry *all;
    if (!ls || !ls->streams || !(all = entry_find(ls, key_all, hash_key(key_all))))
        return;
    all->busy++;
    for (uint32_t k = 0; k < all->n; k++) {
        struct listen *l = all->v[k];
        struct mcpgw_http_conn *c;
        json_object *id;
        struct evbuffer *tmp;
        size_t len;
        char *json;
        if (!l)
            continue;
        c = l->conn;
        id = json_tokener_parse(l->id);
        json = mcpgw_msg_listen_complete(id, &len);
        json_object_put(id);
        tmp = evbuffer_new();
        mcpgw_sse_format(tmp, NULL, NULL, 0, json, len);
        free(json);
        /* Forget it first: a kept-alive connection serves other requests after the end. */
        forget(l);
        if (mcpgw_http_stream_write(c, evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp)) == 0)
            mcpgw_http_stream_end(c);
        evbuffer_free(tmp);
    }
    all->busy--;
    entry_maybe_free(ls, all);
}

size_t mcpgw_listen_count(const struct mcpgw_listen_set *ls)
{
    return ls ? ls->streams : 0;
}
