/* bridge26.c - input_required rounds for a 2026-07-28 client whose upstream asks it something
 * during a call, continued on any node (see bridge26.h and docs/protocol-2026.md, "Bridging").
 *
 * Two sides. The origin holds the upstream call (struct mcpgw_call, with no client between
 * rounds) and one `round` per such call: a random id that the sealed requestState names, the
 * round number and what is asked now. A retry that lands elsewhere becomes a `waiter` on that
 * node: it holds the client's connection, hands the answers to the origin over the store's
 * node-to-node messages and writes whatever comes back. The messages are JSON objects, version
 * 1, specified in docs/protocol-2026.md. */
#include "node/bridge26.h"

#include "common/hash.h"
#include "common/httpd.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/util.h"
#include "node/call.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/session.h"
#include "node/store.h"

#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_VERSION 1
#define BUCKETS     256
#define PID_LEN     32 /* hex digits of 16 random bytes */
#define CHECK_MS    1000
/* The method label requestState is bound to: never confused with a fixture round's (mrtr.c). */
#define BIND_METHOD "tools/call bridged"
#define META_LEVEL  "io.modelcontextprotocol/logLevel"

/* One request of the upstream waiting for the client's answer. */
struct ask {
    struct ask *next;
    unsigned key;  /* its inputRequests key: upstream_<key> (counts the call's requests) */
    uint8_t shown; /* in the round issued last */
    char *method;
    json_object *params; /* owned */
    mcpgw_bridge26_answer_fn done;
    void *arg;
};

struct round {
    struct round *next; /* in its bucket */
    struct mcpgw_call *c;
    char pid[PID_LEN + 1];
    unsigned no;           /* rounds issued so far; the current one's number */
    unsigned keys;         /* requests asked so far (the last key) */
    struct ask *asks;      /* waiting for an answer, in arrival order */
    uint8_t away;          /* round `no` was issued and no retry has taken it yet */
    struct event *timer;   /* the client-request timeout of round `no` */
    struct event *gather;  /* issue at the end of this loop turn (requests read together) */
    char reply_node[32];   /* the node holding the retry now ("" for this node) */
    uint64_t reply_ticket; /* its waiter there */
};

struct waiter {
    struct waiter *next;
    struct mcpgw_node *n;
    uint64_t ticket;
    struct mcpgw_http_conn *conn;
    json_object *id; /* the retry's id (owned) */
    char origin[32], pid[PID_LEN + 1];
    struct event *timer;
    uint64_t deadline_ms;
    json_object *progress_token; /* the retry's _meta progressToken (owned), or NULL */
    int log_level;               /* the retry's _meta logLevel, or -1: no log messages */
    uint8_t sse;                 /* its response became an event stream (a notification came) */
};

struct mcpgw_bridge26 {
    struct mcpgw_node *n;
    struct round *rounds[BUCKETS];
    struct waiter *waiters;
    uint64_t next_ticket;
};

/* ---- the module's state, made on first use: nothing at all for nodes that never bridge (but
 * their handler, so that a retry handed to a node that never ran the call is answered) ---- */

static void on_node_msg(void *arg, const char *msg, size_t len);

static struct mcpgw_bridge26 *state(struct mcpgw_node *n)
{
    if (!n->bridge26) {
        n->bridge26 = xcalloc(1, sizeof(*n->bridge26));
        n->bridge26->n = n;
    }
    return n->bridge26;
}

static unsigned bucket(const char *pid)
{
    return (unsigned)(mcpgw_hash64(pid, strlen(pid)) % BUCKETS);
}

static struct round *round_find(struct mcpgw_bridge26 *b, const char *pid)
{
    for (struct round *r = b->rounds[bucket(pid)]; r; r = r->next)
        if (strcmp(r->pid, pid) == 0)
            return r;
    return NULL;
}

static void ask_free(struct ask *a)
{
    free(a->method);
    json_object_put(a->params);
    free(a);
}

/* The call is gone (answered, cancelled, timed out): its rounds can no longer be continued, and
 * the upstream's requests are dropped unanswered (its call ends with this one). */
static void round_free(void *p)
{
    struct round *r = p, **pp;
    struct mcpgw_bridge26 *b = r->c->node->bridge26;
    for (pp = &b->rounds[bucket(r->pid)]; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    while (r->asks) {
        struct ask *a = r->asks;
        r->asks = a->next;
        ask_free(a);
    }
    if (r->timer)
        event_free(r->timer);
    if (r->gather)
        event_free(r->gather);
    free(r);
}

/* ---- node-to-node messages ---- */

struct sent {
    struct mcpgw_node *n;
    uint64_t ticket; /* the waiter the send is for, or 0 */
};

static void waiter_fail(struct waiter *w, int code, const char *message);

static struct waiter *waiter_find(struct mcpgw_bridge26 *b, uint64_t ticket)
{
    for (struct waiter *w = b ? b->waiters : NULL; w; w = w->next)
        if (w->ticket == ticket)
            return w;
    return NULL;
}

/* How a send for a waiter went: an origin that nobody listens for any more is dead (or was
 * never a node of this cluster), and the call it ran is lost with it. */
static void on_sent(void *arg, int err, long receivers)
{
    struct sent *s = arg;
    struct waiter *w = waiter_find(s->n->bridge26, s->ticket);
    char msg[300];
    free(s);
    if (!w)
        return;
    if (err) {
        snprintf(msg, sizeof(msg),
                 "cannot reach node %s, which runs the upstream call this requestState "
                 "continues: the session store is unavailable; try again, or call the tool again "
                 "without requestState",
                 w->origin);
        waiter_fail(w, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
    } else if (receivers == 0) {
        snprintf(msg, sizeof(msg),
                 "node %s, which ran the upstream call this requestState continues, is gone: the "
                 "call is lost with it (the upstream may or may not have finished it); call the "
                 "tool again without requestState",
                 w->origin);
        waiter_fail(w, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
    }
}

static void send_doc(struct mcpgw_node *n, const char *node_id, json_object *doc /* takes */,
                     uint64_t ticket)
{
    size_t len;
    char *text;
    struct sent *s = NULL;
    json_object_object_add(doc, "v", json_object_new_int(MSG_VERSION));
    text = mcpgw_json_dump(doc, &len);
    json_object_put(doc);
    if (ticket) {
        s = xcalloc(1, sizeof(*s));
        s->n = n;
        s->ticket = ticket;
    }
    mcpgw_store_node_send(n->store, node_id, text, len, s ? on_sent : NULL, s);
    free(text);
}

/* ---- where a round's answer goes: the retry on this node, or a waiter on another ---- */

struct sink {
    struct mcpgw_http_conn *conn; /* this node's retry */
    json_object *id;              /* the retry's id (borrowed) */
    const char *node;             /* or the node holding it, and its waiter */
    uint64_t ticket;
};

static void sink_write(struct mcpgw_node *n, const struct sink *k, const char *json, size_t len)
{
    if (k->conn) {
        mcpgw_http_respond(k->conn, 200, "application/json", NULL, json, len);
    } else {
        json_object *doc = json_object_new_object();
        json_object_object_add(doc, "t", json_object_new_string("o"));
        json_object_object_add(doc, "w", json_object_new_int64((int64_t)k->ticket));
        json_object_object_add(doc, "m", json_object_new_string_len(json, (int)len));
        send_doc(n, k->node, doc, 0);
    }
}

static void sink_error(struct mcpgw_node *n, const struct sink *k, int code, const char *message)
{
    size_t len;
    char *json = mcpgw_msg_error(k->id, code, message, &len);
    (*n->st.errors)++;
    sink_write(n, k, json, len);
    free(json);
}

/* The call's next response, for a retry another node holds. */
static void relay(struct mcpgw_call *c, const char *json, size_t len)
{
    struct round *r = c->round;
    struct sink k = {NULL, NULL, r->reply_node, r->reply_ticket};
    sink_write(c->node, &k, json, len);
}

/* A notification of the call while a retry held by another node waits for it: progress and log
 * messages go to that node (which maps them to its retry's own progressToken and logLevel);
 * the rest concerns no retry and is dropped, as it was before rounds were relayed. */
static void relay_note(struct mcpgw_call *c, const char *json, size_t len)
{
    struct round *r = c->round;
    json_object *note = json_tokener_parse(json), *doc;
    const char *method = mcpgw_json_str(note, "method");
    int wanted = method && (strcmp(method, "notifications/progress") == 0 ||
                            strcmp(method, "notifications/message") == 0);
    json_object_put(note);
    if (!wanted)
        return;
    doc = json_object_new_object();
    json_object_object_add(doc, "t", json_object_new_string("n"));
    json_object_object_add(doc, "w", json_object_new_int64((int64_t)r->reply_ticket));
    json_object_object_add(doc, "m", json_object_new_string_len(json, (int)len));
    send_doc(c->node, r->reply_node, doc, 0);
}

/* ---- the origin: asking ---- */

/* What a round's requestState is bound to: the tool and arguments of the first request, and its
 * principal, so the state cannot be carried to another call or user. */
static void bind_state(struct mcpgw_seal_binding *bd, json_object *params, const char *principal)
{
    json_object *args = mcpgw_json_obj(params, "arguments");
    size_t len = 0;
    char *text = args ? mcpgw_json_dump(args, &len) : NULL;
    const char *name = mcpgw_json_str(params, "name");
    mcpgw_seal_bind(bd, BIND_METHOD, name ? name : "", text ? text : "", len, principal);
    free(text);
}

static const char *principal_of(const struct mcpgw_call *c)
{
    return c->s && c->s->principal ? c->s->principal : "";
}

/* Answer the upstream's requests in `list` (taken) with the client's results in responses
 * (borrowed; a request without one: result and error NULL, "not answered in time"). Each answer
 * goes to the upstream at once, and may end the call (and free r): checked before each. */
static void settle_list(struct mcpgw_bridge26 *b, const char *pid, struct ask *list,
                        json_object *responses)
{
    while (list) {
        struct ask *a = list;
        json_object *answer = NULL;
        char key[32];
        list = a->next;
        snprintf(key, sizeof(key), "upstream_%u", a->key);
        if (responses)
            json_object_object_get_ex(responses, key, &answer);
        if (round_find(b, pid))
            a->done(a->arg, answer, NULL);
        ask_free(a);
    }
}

/* Nobody retried round r in time: its client is not coming back with answers (the state it
 * holds has expired), so every request still waiting gets "not answered in time". */
static void on_round_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct round *r = arg;
    struct ask *list = r->asks;
    char pid[PID_LEN + 1];
    (void)fd, (void)what;
    r->asks = NULL;
    r->away = 0;
    memcpy(pid, r->pid, sizeof(pid));
    settle_list(r->c->node->bridge26, pid, list, NULL);
}

/* Answer the call's current request with an input_required result asking every request of the
 * upstream that is waiting now (a new round, numbered on). */
static void issue(struct round *r)
{
    struct mcpgw_call *c = r->c;
    struct mcpgw_node *n = c->node;
    struct mcpgw_seal_binding bd;
    uint64_t ms = n->cfg.client_request_timeout_ms;
    struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
    json_object *doc = json_object_new_object(), *asks = json_object_new_object();
    char key[32], *text, *sealed;
    size_t len;
    r->no++;
    r->away = 1;
    for (struct ask *a = r->asks; a; a = a->next) {
        snprintf(key, sizeof(key), "upstream_%u", a->key);
        a->shown = 1;
        json_object_object_add(asks, key,
                               mcpgw_msg_input_request(a->method, json_object_get(a->params)));
    }
    json_object_object_add(doc, "p", json_object_new_string(r->pid));
    json_object_object_add(doc, "o", json_object_new_string(n->cfg.node_id));
    json_object_object_add(doc, "r", json_object_new_int((int)r->no));
    text = mcpgw_json_dump(doc, &len);
    json_object_put(doc);
    bind_state(&bd, c->request, principal_of(c));
    /* The round cannot outlive the wait for its answer: the state says so to a late retry. */
    sealed = mcpgw_seal_seal(n->state_ring, &bd, mcpgw_wall_ms() + ms, text, len);
    free(text);
    evtimer_add(r->timer, &tv);
    mcpgw_call_handoff(c, mcpgw_msg_input_required(asks, sealed));
    free(sealed);
}

/* The end of the loop turn in which the first request of a round arrived: the round asks it
 * and every other request read with it (an upstream that sends several at once). */
static void on_gather(evutil_socket_t fd, short what, void *arg)
{
    struct round *r = arg;
    (void)fd, (void)what;
    if (!r->away && r->asks)
        issue(r);
}

static void refuse(const char *method, mcpgw_bridge26_answer_fn done, void *arg, int code,
                   const char *fmt)
{
    json_object *err = json_object_new_object();
    char msg[200];
    snprintf(msg, sizeof(msg), fmt, method);
    json_object_object_add(err, "code", json_object_new_int(code));
    json_object_object_add(err, "message", json_object_new_string(msg));
    done(arg, NULL, err);
    json_object_put(err);
}

static struct round *round_new(struct mcpgw_call *c)
{
    struct mcpgw_bridge26 *b = state(c->node);
    uint8_t raw[PID_LEN / 2];
    struct round *r;
    /* Without randomness a round id could be guessed: no round. */
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return NULL;
    r = xcalloc(1, sizeof(*r));
    r->c = c;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(r->pid + 2 * i, 3, "%02x", raw[i]);
    r->timer = evtimer_new(c->node->base, on_round_timeout, r);
    r->gather = event_new(c->node->base, -1, 0, on_gather, r);
    r->next = b->rounds[bucket(r->pid)];
    b->rounds[bucket(r->pid)] = r;
    c->round = r;
    c->round_free = round_free;
    return r;
}

void mcpgw_bridge26_ask(struct mcpgw_call *c, const char *method, json_object *params,
                        mcpgw_bridge26_answer_fn done, void *arg)
{
    struct round *r = c->round;
    struct ask *a, **pp;
    if (strcmp(method, "ping") == 0) {
        json_object *empty = json_object_new_object();
        json_object_put(params);
        done(arg, empty, NULL);
        json_object_put(empty);
        return;
    }
    if (strcmp(method, MCPGW_MSG_SAMPLING_CREATE) && strcmp(method, MCPGW_MSG_ELICITATION_CREATE) &&
        strcmp(method, "roots/list")) {
        json_object_put(params);
        refuse(method, done, arg, MCPGW_JSONRPC_METHOD_NOT_FOUND,
               "%.100s cannot be asked of a 2026-07-28 client");
        return;
    }
    if (!r && !(r = round_new(c))) {
        json_object_put(params);
        refuse(method, done, arg, MCPGW_JSONRPC_INTERNAL_ERROR,
               "the gateway could not make a round id for %.100s");
        return;
    }
    a = xcalloc(1, sizeof(*a));
    a->key = ++r->keys;
    a->method = xstrdup(method);
    a->params = params ? params : json_object_new_object();
    a->done = done;
    a->arg = arg;
    for (pp = &r->asks; *pp; pp = &(*pp)->next)
        ;
    *pp = a;
    /* A client waits for this call: the round goes out at the end of this loop turn, with what
     * arrived by then. Otherwise the request waits for the next retry, which gets it. */
    if (!r->away)
        event_active(r->gather, EV_TIMEOUT, 1);
}

/* ---- the origin: a retry's answers ---- */

/* Continue round r (number no) with responses, answering through k. */
static void round_continue(struct round *r, unsigned no, json_object *responses,
                           const struct sink *k)
{
    struct mcpgw_call *c = r->c;
    struct mcpgw_node *n = c->node;
    struct ask *answered = NULL, **tail = &answered, **pp;
    char key[32], msg[200], pid[PID_LEN + 1];
    if (!r->away || no != r->no) {
        sink_error(n, k, MCPGW_JSONRPC_INVALID_PARAMS,
                   "Invalid params: this round was already answered; retry with the latest "
                   "requestState");
        return;
    }
    for (struct ask *a = r->asks; a; a = a->next) {
        json_object *answer = NULL;
        snprintf(key, sizeof(key), "upstream_%u", a->key);
        if (a->shown && responses && json_object_object_get_ex(responses, key, &answer) &&
            !json_object_is_type(answer, json_type_object)) {
            snprintf(msg, sizeof(msg), "Invalid params: inputResponses.%s must be a result object",
                     key);
            sink_error(n, k, MCPGW_JSONRPC_INVALID_PARAMS, msg);
            return;
        }
    }
    /* From here the call answers this retry. */
    event_del(r->timer);
    r->away = 0;
    mcpgw_call_rebind(c, k->conn, k->id);
    if (k->conn) {
        r->reply_node[0] = 0;
    } else {
        snprintf(r->reply_node, sizeof(r->reply_node), "%s", k->node);
        r->reply_ticket = k->ticket;
        c->relay = relay;
        c->relay_note = relay_note;
    }
    for (pp = &r->asks; *pp;) {
        struct ask *a = *pp;
        snprintf(key, sizeof(key), "upstream_%u", a->key);
        if (a->shown && responses && json_object_object_get_ex(responses, key, NULL)) {
            *pp = a->next;
            a->next = NULL;
            *tail = a;
            tail = &a->next;
        } else {
            pp = &a->next;
        }
    }
    /* Requests not answered are asked again, with those that arrived since the round went out
     * (the revision's rule for missing inputs); the answers still go to the upstream. */
    if (r->asks)
        issue(r);
    memcpy(pid, r->pid, sizeof(pid));
    settle_list(n->bridge26, pid, answered, responses);
}

/* ---- the retry's node ---- */

static void waiter_free(struct waiter *w)
{
    struct mcpgw_bridge26 *b = w->n->bridge26;
    for (struct waiter **pp = &b->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (w->conn)
        mcpgw_http_conn_set_close_cb(w->conn, NULL, NULL);
    event_free(w->timer);
    json_object_put(w->id);
    json_object_put(w->progress_token);
    free(w);
}

static void waiter_write(struct waiter *w, const char *json, size_t len)
{
    struct mcpgw_http_conn *conn = w->conn;
    w->conn = NULL;
    if (conn) {
        mcpgw_http_conn_set_close_cb(conn, NULL, NULL);
        if (!w->sse) {
            mcpgw_http_respond(conn, 200, "application/json", NULL, json, len);
        } else if (mcpgw_frame_event_id(w->n, conn, NULL, json, len) == 0) {
            mcpgw_http_stream_end(conn);
        }
    }
    waiter_free(w);
}

static void waiter_fail(struct waiter *w, int code, const char *message)
{
    size_t len;
    char *json = mcpgw_msg_error(w->id, code, message, &len);
    (*w->n->st.errors)++;
    waiter_write(w, json, len);
    free(json);
}

/* The client gave up on its retry: so does the call (a closed response stream cancels it). */
static void on_waiter_close(struct mcpgw_http_conn *conn, void *arg)
{
    struct waiter *w = arg;
    json_object *doc = json_object_new_object();
    (void)conn;
    w->conn = NULL;
    json_object_object_add(doc, "t", json_object_new_string("c"));
    json_object_object_add(doc, "p", json_object_new_string(w->pid));
    json_object_object_add(doc, "w", json_object_new_int64((int64_t)w->ticket));
    send_doc(w->n, w->origin, doc, 0);
    waiter_free(w);
}

/* Every second: is the origin still listening? A node killed meanwhile is noticed by Redis when
 * its connection drops, and the retry gets a clear error instead of waiting for the deadline. */
static void on_waiter_timer(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;
    struct timeval tv = {CHECK_MS / 1000, (CHECK_MS % 1000) * 1000};
    json_object *doc;
    (void)fd, (void)what;
    if (mcpgw_now_ms() >= w->deadline_ms) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "node %s, which runs the upstream call this requestState continues, did not "
                 "answer in time",
                 w->origin);
        waiter_fail(w, MCPGW_JSONRPC_INTERNAL_ERROR, msg);
        return;
    }
    doc = json_object_new_object();
    json_object_object_add(doc, "t", json_object_new_string("l"));
    send_doc(w->n, w->origin, doc, w->ticket);
    evtimer_add(w->timer, &tv);
}

static void hand_over(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                      const struct mcpgw_jsonrpc_msg *m, const char *origin, const char *pid,
                      unsigned no, json_object *responses)
{
    struct mcpgw_bridge26 *b = state(n);
    struct waiter *w = xcalloc(1, sizeof(*w));
    struct timeval tv = {CHECK_MS / 1000, (CHECK_MS % 1000) * 1000};
    json_object *doc = json_object_new_object(), *meta, *tok;
    const char *level;
    w->n = n;
    w->ticket = ++b->next_ticket;
    w->conn = conn;
    w->id = json_object_get(m->id);
    meta = mcpgw_json_obj(m->params, "_meta");
    if (meta && json_object_object_get_ex(meta, "progressToken", &tok) &&
        (json_object_is_type(tok, json_type_string) || json_object_is_type(tok, json_type_int)))
        w->progress_token = json_object_get(tok);
    level = mcpgw_json_str(meta, META_LEVEL);
    w->log_level = level ? mcpgw_msg_log_level(level) : -1;
    snprintf(w->origin, sizeof(w->origin), "%s", origin);
    snprintf(w->pid, sizeof(w->pid), "%s", pid);
    /* The call itself ends by its own deadline at the origin; this only bounds the wait. */
    w->deadline_ms = mcpgw_now_ms() + n->cfg.tool_timeout_ms + n->cfg.client_request_timeout_ms;
    w->timer = evtimer_new(n->base, on_waiter_timer, w);
    w->next = b->waiters;
    b->waiters = w;
    mcpgw_http_conn_set_close_cb(conn, on_waiter_close, w);
    evtimer_add(w->timer, &tv);
    json_object_object_add(doc, "t", json_object_new_string("a"));
    json_object_object_add(doc, "p", json_object_new_string(pid));
    json_object_object_add(doc, "r", json_object_new_int((int)no));
    json_object_object_add(doc, "n", json_object_new_string(n->cfg.node_id));
    json_object_object_add(doc, "w", json_object_new_int64((int64_t)w->ticket));
    json_object_object_add(doc, "id", json_object_get(m->id));
    if (responses)
        json_object_object_add(doc, "ir", json_object_get(responses));
    send_doc(n, origin, doc, w->ticket);
}

/* ---- messages from other nodes ---- */

static void on_answer(struct mcpgw_node *n, json_object *doc)
{
    const char *pid = mcpgw_json_str(doc, "p"), *from = mcpgw_json_str(doc, "n");
    json_object *v, *id = NULL;
    struct round *r;
    struct sink k = {0};
    if (!pid || !from || !json_object_object_get_ex(doc, "w", &v))
        return;
    k.node = from;
    k.ticket = (uint64_t)json_object_get_int64(v);
    json_object_object_get_ex(doc, "id", &id);
    k.id = id;
    if (!(r = round_find(state(n), pid))) {
        sink_error(n, &k, MCPGW_JSONRPC_INVALID_PARAMS,
                   "Invalid params: the upstream call this requestState continues is no longer "
                   "pending (it ended, timed out or was cancelled); call the tool again without "
                   "requestState");
        return;
    }
    json_object_object_get_ex(doc, "r", &v);
    round_continue(r, (unsigned)json_object_get_int(v), mcpgw_json_obj(doc, "ir"), &k);
}

static void on_cancel(struct mcpgw_node *n, json_object *doc)
{
    const char *pid = mcpgw_json_str(doc, "p");
    struct round *r = pid ? round_find(state(n), pid) : NULL;
    json_object *v;
    if (!r || !r->c->relay || !json_object_object_get_ex(doc, "w", &v) ||
        (uint64_t)json_object_get_int64(v) != r->reply_ticket)
        return; /* not (or no longer) the retry this call answers */
    mcpgw_call_abort(r->c);
}

static void on_outcome(struct mcpgw_node *n, json_object *doc)
{
    json_object *v, *m;
    struct waiter *w;
    if (!json_object_object_get_ex(doc, "w", &v) || !json_object_object_get_ex(doc, "m", &m) ||
        !json_object_is_type(m, json_type_string))
        return;
    if ((w = waiter_find(n->bridge26, (uint64_t)json_object_get_int64(v))))
        waiter_write(w, json_object_get_string(m), (size_t)json_object_get_string_len(m));
}

/* A notification of the call the waiter's retry continues: under the retry's progressToken (none:
 * dropped), log messages at or above the retry's logLevel (none: dropped), on its response,
 * which becomes an event stream. */
static void on_note(struct mcpgw_node *n, json_object *doc)
{
    json_object *v, *m, *note, *params;
    const char *method;
    struct waiter *w;
    char *json;
    size_t len;
    int keep = 0;
    if (!json_object_object_get_ex(doc, "w", &v) || !json_object_object_get_ex(doc, "m", &m) ||
        !json_object_is_type(m, json_type_string) ||
        !(w = waiter_find(n->bridge26, (uint64_t)json_object_get_int64(v))) || !w->conn)
        return;
    note = json_tokener_parse(json_object_get_string(m));
    method = mcpgw_json_str(note, "method");
    params = mcpgw_json_obj(note, "params");
    if (!method || !params) {
        keep = 0;
    } else if (strcmp(method, "notifications/progress") == 0) {
        if ((keep = w->progress_token != NULL))
            json_object_object_add(params, "progressToken", json_object_get(w->progress_token));
    } else if (strcmp(method, "notifications/message") == 0) {
        int li = mcpgw_msg_log_level(mcpgw_json_str(params, "level"));
        keep = w->log_level >= 0 && li >= w->log_level;
    }
    if (!keep) {
        json_object_put(note);
        return;
    }
    json = mcpgw_json_dump(note, &len);
    json_object_put(note);
    if (!w->sse) {
        w->sse = 1;
        mcpgw_http_stream_begin(w->conn, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
    }
    /* A failed write closes the connection: its close callback (which frees w) tells the
     * origin; w is not touched after it. */
    (void)mcpgw_frame_event_id(n, w->conn, NULL, json, len);
    free(json);
}

static void on_node_msg(void *arg, const char *msg, size_t len)
{
    mcpgw_bridge26_message(arg, msg, len);
}

void mcpgw_bridge26_message(struct mcpgw_node *n, const char *msg, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *doc = NULL, *v;
    const char *t;
    if (len <= MCPGW_BRIDGE26_MSG_MAX)
        doc = json_tokener_parse_ex(tok, msg, (int)len);
    json_tokener_free(tok);
    t = mcpgw_json_str(doc, "t");
    if (!t || !json_object_object_get_ex(doc, "v", &v) || json_object_get_int(v) != MSG_VERSION) {
        log_warn("a node-to-node message that is not version %d JSON was dropped", MSG_VERSION);
    } else if (strcmp(t, "a") == 0) {
        on_answer(n, doc);
    } else if (strcmp(t, "o") == 0) {
        on_outcome(n, doc);
    } else if (strcmp(t, "c") == 0) {
        on_cancel(n, doc);
    } else if (strcmp(t, "n") == 0) {
        on_note(n, doc);
    } /* "l": a liveness check, nothing to do */
    json_object_put(doc);
}

/* ---- a retry arrives ---- */

int mcpgw_bridge26_claims(const struct mcpgw_jsonrpc_msg *m)
{
    return json_object_object_get_ex(m->params, "requestState", NULL);
}

static void fail(struct mcpgw_node *n, struct mcpgw_http_conn *conn, json_object *id,
                 const char *message)
{
    struct sink k = {conn, id, NULL, 0};
    sink_error(n, &k, MCPGW_JSONRPC_INVALID_PARAMS, message);
}

void mcpgw_bridge26_resume(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                           const struct mcpgw_jsonrpc_msg *m, const char *principal)
{
    json_object *st = NULL, *responses = NULL, *doc = NULL, *v;
    struct mcpgw_seal_binding bd;
    const char *pid, *origin;
    void *out = NULL;
    size_t outlen;
    char msg[300];
    int rc;
    json_object_object_get_ex(m->params, "requestState", &st);
    if (!st || !json_object_is_type(st, json_type_string)) {
        fail(n, conn, m->id, "Invalid params: requestState must be the string this server issued");
        return;
    }
    if (json_object_object_get_ex(m->params, "inputResponses", &responses) && responses &&
        !json_object_is_type(responses, json_type_object)) {
        fail(n, conn, m->id,
             "Invalid params: inputResponses must be an object of results keyed as asked");
        return;
    }
    bind_state(&bd, m->params, principal);
    rc = mcpgw_seal_open(n->state_ring, &bd, mcpgw_wall_ms(), json_object_get_string(st),
                         (size_t)json_object_get_string_len(st), &out, &outlen);
    if (rc != MCPGW_SEAL_OK) {
        snprintf(msg, sizeof(msg),
                 rc == MCPGW_SEAL_EXPIRED
                     ? "Invalid params: requestState has expired (%s): the round was not answered "
                       "within the client-request timeout and the upstream was told so; call the "
                       "tool again without it"
                     : "Invalid params: requestState failed its integrity check (%s): it was "
                       "altered, or issued for another request",
                 mcpgw_seal_err_str(rc));
        fail(n, conn, m->id, msg);
        return;
    }
    doc = json_tokener_parse(out);
    free(out);
    pid = mcpgw_json_str(doc, "p");
    origin = mcpgw_json_str(doc, "o");
    if (!pid || strlen(pid) != PID_LEN || !origin || !*origin || strlen(origin) >= 32 ||
        !json_object_object_get_ex(doc, "r", &v)) {
        fail(n, conn, m->id, "Invalid params: requestState does not hold a round of this request");
    } else if (strcmp(origin, n->cfg.node_id) == 0) {
        struct round *r = round_find(state(n), pid);
        struct sink k = {conn, m->id, NULL, 0};
        if (r)
            round_continue(r, (unsigned)json_object_get_int(v), responses, &k);
        else
            fail(n, conn, m->id,
                 "Invalid params: the upstream call this requestState continues is no longer "
                 "pending (it ended, timed out or was cancelled, or this node restarted); call the "
                 "tool again without requestState");
    } else {
        hand_over(n, conn, m, origin, pid, (unsigned)json_object_get_int(v), responses);
    }
    json_object_put(doc);
}

void mcpgw_bridge26_start(struct mcpgw_node *n)
{
    mcpgw_store_set_node_handler(n->store, on_node_msg, n);
}

void mcpgw_bridge26_stop(struct mcpgw_node *n)
{
    struct mcpgw_bridge26 *b = n->bridge26;
    if (n->store)
        mcpgw_store_set_node_handler(n->store, NULL, NULL);
    if (!b)
        return;
    while (b->waiters)
        waiter_fail(b->waiters, MCPGW_JSONRPC_INTERNAL_ERROR, "this node is shutting down");
    for (int i = 0; i < BUCKETS; i++)
        while (b->rounds[i])
            mcpgw_call_abort(b->rounds[i]->c); /* frees the round (round_free) */
    free(b);
    n->bridge26 = NULL;
}
