/* call.c - in-flight calls, response streams and the session GET stream. */
#include "node/call.h"

#include "common/httpd.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/sse.h"
#include "common/util.h"
#include "node/msg.h"
#include "node/proto.h"
#include "node/protocol.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_call_conn_close(struct mcpgw_http_conn *conn, void *arg);

static void session_headers(struct mcpgw_session *s, char *buf, size_t len)
{
    snprintf(buf, len, "Mcp-Session-Id: %s\r\nCache-Control: no-cache\r\n", s->id);
}

/* Write one SSE event with the given id on conn. Returns 0 or -1 when the connection is gone. */
static int write_event_id(struct mcpgw_node *n, struct mcpgw_http_conn *conn, const char *id,
                          const char *data, size_t len)
{
    struct evbuffer *tmp = evbuffer_new();
    int rc;
    mcpgw_sse_format(tmp, id, "message", 0, data, len);
    rc = mcpgw_http_stream_write(conn, evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
    evbuffer_free(tmp);
    if (rc == 0)
        (*n->st.events_sent)++;
    return rc;
}

static int write_event(struct mcpgw_node *n, struct mcpgw_http_conn *conn, uint32_t stream,
                       uint64_t seq, const char *data, size_t len)
{
    char id[48];
    mcpgw_event_id_format(id, sizeof(id), stream, seq);
    return write_event_id(n, conn, id, data, len);
}

static void sse_headers(struct mcpgw_session *s, struct mcpgw_http_conn *conn)
{
    char hdr[160];
    session_headers(s, hdr, sizeof(hdr));
    mcpgw_http_stream_begin(conn, 200, "text/event-stream", hdr);
}

/* Priming event (2025-11-25): an id and empty data, so a client whose stream breaks before the
 * first real event can still resume. Older revisions' clients may not skip empty data. */
static void sse_prime(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                      uint32_t stream)
{
    if (s->proto == MCPGW_PROTO_2025_11_25) {
        struct evbuffer *tmp = evbuffer_new();
        char id[48];
        /* With a shared store the GET stream's ids are Redis stream ids: prime with the last one
         * delivered, so a resume from it replays exactly what followed. */
        if (stream == 0 && mcpgw_store_shared(n->store))
            snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)s->last_ev_ms,
                     (unsigned long long)s->last_ev_seq);
        else
            mcpgw_event_id_format(id, sizeof(id), stream, mcpgw_session_next_seq(s));
        mcpgw_sse_format(tmp, id, NULL, n->cfg.sse_retry_ms, "", 0);
        mcpgw_http_stream_write(conn, evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
        evbuffer_free(tmp);
    }
}

void mcpgw_sse_begin(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                     uint32_t stream)
{
    sse_headers(s, conn);
    sse_prime(n, s, conn, stream);
}

int mcpgw_sse_resume(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                     uint32_t stream, uint64_t after)
{
    /* Replay before priming: the priming id is newer than every logged event, so a client cut
     * off right after a priming event sent first would resume past the replay and lose it. */
    sse_headers(s, conn);
    if (mcpgw_session_replay_to(n, s, conn, stream, after) < 0)
        return -1;
    sse_prime(n, s, conn, stream);
    return 0;
}

struct mcpgw_call *mcpgw_call_new(struct mcpgw_node *n, struct mcpgw_session *s, json_object *id,
                                  struct mcpgw_http_conn *conn, json_object *params)
{
    struct mcpgw_call *c = xcalloc(1, sizeof(*c));
    json_object *meta = mcpgw_json_obj(params, "_meta"), *tok;
    c->node = n;
    c->s = s;
    c->id = json_object_get(id);
    c->conn = conn;
    c->out_id = -1;
    c->started_us = mcpgw_now_us();
    if (meta && json_object_object_get_ex(meta, "progressToken", &tok) &&
        (json_object_is_type(tok, json_type_string) || json_object_is_type(tok, json_type_int)))
        c->progress_token = json_object_get(tok);
    c->next = s->calls;
    if (s->calls)
        s->calls->prev = c;
    s->calls = c;
    mcpgw_http_conn_set_close_cb(conn, on_call_conn_close, c);
    (*n->st.calls_inflight)++;
    return c;
}

/* Take the call off its session (it may outlive the session while a store operation runs). */
static void call_unlink(struct mcpgw_call *c)
{
    struct mcpgw_session *s = c->s;
    if (!s)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->s = NULL;
    if (c->conn)
        mcpgw_http_conn_set_close_cb(c->conn, NULL, NULL);
}

/* Free the call, or, while a store operation still holds it, only detach it: that operation's
 * callback sees `aborted` and calls here again. */
static void call_free(struct mcpgw_call *c)
{
    call_unlink(c);
    c->conn = NULL;
    if (c->busy) {
        c->aborted = 1;
        if (c->step_timer)
            event_del(c->step_timer);
        if (c->deadline)
            event_del(c->deadline);
        return;
    }
    if (c->step_timer)
        event_free(c->step_timer);
    if (c->deadline)
        event_free(c->deadline);
    json_object_put(c->id);
    json_object_put(c->progress_token);
    free(c->state);
    free(c->rid);
    (*c->node->st.calls_inflight)--;
    free(c);
}

/* The client went away: the call goes on, its events are logged for a resume. */
static void on_call_conn_close(struct mcpgw_http_conn *conn, void *arg)
{
    struct mcpgw_call *c = arg;
    if (c->conn == conn)
        c->conn = NULL;
}

static void ensure_sse(struct mcpgw_call *c)
{
    if (c->sse)
        return;
    c->sse = 1;
    c->stream = ++c->s->next_stream;
    if (c->conn)
        mcpgw_sse_begin(c->node, c->s, c->conn, c->stream);
}

void mcpgw_call_detach(struct mcpgw_call *c)
{
    struct mcpgw_http_conn *conn;
    ensure_sse(c);
    if (!(conn = c->conn))
        return;
    c->conn = NULL;
    mcpgw_http_conn_set_close_cb(conn, NULL, NULL);
    mcpgw_http_stream_end(conn);
}

/* Log and send one message on the call's stream. */
static void call_emit(struct mcpgw_call *c, const char *json, size_t len)
{
    uint64_t seq;
    ensure_sse(c);
    seq = mcpgw_session_log(c->s, c->stream, json, len);
    if (c->conn && write_event(c->node, c->conn, c->stream, seq, json, len) < 0)
        c->conn = NULL;
}

void mcpgw_call_log(struct mcpgw_call *c, const char *level, const char *text)
{
    int li = mcpgw_msg_log_level(level);
    size_t len;
    char *json;
    if (li < 0 || (c->s->log_level >= 0 && li < c->s->log_level))
        return;
    json = mcpgw_msg_log(level, text, &len);
    call_emit(c, json, len);
    free(json);
}

void mcpgw_call_progress(struct mcpgw_call *c, double progress, double total, const char *message)
{
    size_t len;
    char *json;
    if (!c->progress_token)
        return;
    json = mcpgw_msg_progress(c->progress_token, progress, total, message, &len);
    call_emit(c, json, len);
    free(json);
}

/* One timer per call: it times out a pending client request, or runs the tool's next step. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_call *c = arg;
    mcpgw_call_step_fn fn = c->step;
    if (c->out_id >= 0) {
        mcpgw_call_reply(c, NULL, NULL);
        return;
    }
    c->step = NULL;
    if (fn)
        fn(c);
}

static void arm(struct mcpgw_call *c, uint64_t ms)
{
    struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
    if (!c->step_timer)
        c->step_timer = evtimer_new(c->node->base, on_timer, c);
    evtimer_add(c->step_timer, &tv);
}

int mcpgw_call_request(struct mcpgw_call *c, const char *method, json_object *params,
                       mcpgw_call_reply_fn on_reply)
{
    char *json;
    size_t len;
    if (c->out_id >= 0) {
        json_object_put(params);
        return -1;
    }
    /* Server-to-client ids share the event sequence, so they are unique within the session. */
    c->out_id = (int64_t)mcpgw_session_next_seq(c->s);
    c->on_reply = on_reply;
    json = mcpgw_msg_request(c->out_id, method, params, &len);
    call_emit(c, json, len);
    free(json);
    arm(c, c->node->cfg.client_request_timeout_ms);
    return 0;
}

void mcpgw_call_reply(struct mcpgw_call *c, json_object *result, json_object *error)
{
    mcpgw_call_reply_fn fn = c->on_reply;
    if (c->step_timer)
        event_del(c->step_timer);
    c->out_id = -1;
    c->on_reply = NULL;
    if (fn)
        fn(c, result, error);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_call *c = arg;
    mcpgw_call_tool_error(c, "the tool did not finish within %llu ms",
                          (unsigned long long)c->node->cfg.tool_timeout_ms);
}

void mcpgw_call_set_deadline(struct mcpgw_call *c, uint64_t ms)
{
    struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
    if (!c->deadline)
        c->deadline = evtimer_new(c->node->base, on_deadline, c);
    evtimer_add(c->deadline, &tv);
}

void mcpgw_call_after(struct mcpgw_call *c, uint32_t delay_ms, mcpgw_call_step_fn step)
{
    c->step = step;
    arm(c, delay_ms);
}

static void finish_with(struct mcpgw_call *c, char *json, size_t len)
{
    mcpgw_hist_observe(c->node->st.latency, (double)(mcpgw_now_us() - c->started_us) / 1e6);
    if (!c->s) {
        /* The session went away meanwhile: nobody to answer. */
    } else if (c->sse) {
        call_emit(c, json, len);
        if (c->conn)
            mcpgw_http_stream_end(c->conn);
    } else if (c->conn) {
        char hdr[160];
        session_headers(c->s, hdr, sizeof(hdr));
        mcpgw_http_respond(c->conn, 200, "application/json", hdr, json, len);
    }
    free(json);
    call_free(c);
}

struct recording {
    struct mcpgw_call *c;
    char *json;
    size_t len;
};

static void on_recorded(void *arg, int err)
{
    struct recording *rec = arg;
    struct mcpgw_call *c = rec->c;
    c->busy--;
    if (err)
        log_warn("could not record the result of a request for retries: %s",
                 mcpgw_store_err_str(err));
    if (c->aborted)
        call_free(c);
    else
        finish_with(c, rec->json, rec->len); /* takes json */
    free(rec);
}

void mcpgw_call_result(struct mcpgw_call *c, json_object *result)
{
    size_t len;
    char *json;
    if (c->finishing) {
        json_object_put(result); /* a late answer (the deadline raced the tool) */
        return;
    }
    c->finishing = 1;
    if (c->rid && c->s) {
        /* A side-effecting request: record its result before answering (docs/replication.md). */
        struct recording *rec = xcalloc(1, sizeof(*rec));
        char *rj = mcpgw_json_dump(result, NULL);
        rec->c = c;
        rec->json = mcpgw_msg_result(c->id, result, &rec->len);
        c->busy++;
        mcpgw_store_result_put(c->node->store, c->s, c->rid, rj, on_recorded, rec);
        free(rj);
        return;
    }
    json = mcpgw_msg_result(c->id, result, &len);
    finish_with(c, json, len);
}

void mcpgw_call_answer_raw(struct mcpgw_call *c, const char *result_json)
{
    json_object *r = json_tokener_parse(result_json);
    size_t len;
    char *json;
    c->finishing = 1;
    json = mcpgw_msg_result(c->id, r ? r : json_object_new_object(), &len);
    finish_with(c, json, len);
}

void mcpgw_call_error(struct mcpgw_call *c, int code, const char *message)
{
    size_t len;
    char *json;
    if (c->finishing)
        return;
    c->finishing = 1;
    json = mcpgw_msg_error(c->id, code, message, &len);
    (*c->node->st.errors)++;
    finish_with(c, json, len);
}

void mcpgw_call_tool_error(struct mcpgw_call *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mcpgw_call_result(c, mcpgw_msg_tool_text(msg, 1));
}

void mcpgw_call_abort(struct mcpgw_call *c)
{
    struct mcpgw_http_conn *conn = c->conn;
    c->conn = NULL;
    call_unlink(c);
    if (conn) {
        if (c->sse)
            mcpgw_http_stream_end(conn);
        else
            mcpgw_http_respond(conn, 202, NULL, NULL, NULL, 0);
    }
    call_free(c);
}

struct mcpgw_call *mcpgw_call_find(struct mcpgw_session *s, json_object *id)
{
    for (struct mcpgw_call *c = s->calls; c; c = c->next) {
        if (json_object_get_type(c->id) != json_object_get_type(id))
            continue;
        if (json_object_is_type(id, json_type_int)
                ? json_object_get_int64(c->id) == json_object_get_int64(id)
                : strcmp(json_object_get_string(c->id), json_object_get_string(id)) == 0)
            return c;
    }
    return NULL;
}

struct mcpgw_call *mcpgw_call_find_out(struct mcpgw_session *s, int64_t out_id)
{
    for (struct mcpgw_call *c = s->calls; c; c = c->next)
        if (c->out_id == out_id)
            return c;
    return NULL;
}

struct mcpgw_call *mcpgw_call_find_stream(struct mcpgw_session *s, uint32_t stream)
{
    for (struct mcpgw_call *c = s->calls; c; c = c->next)
        if (c->sse && c->stream == stream)
            return c;
    return NULL;
}

struct replay_ctx {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn;
    int failed;
};

static void replay_one(void *arg, const struct mcpgw_event *ev)
{
    struct replay_ctx *r = arg;
    if (r->failed)
        return;
    if (write_event(r->n, r->conn, ev->stream, ev->seq, ev->data, ev->len) < 0)
        r->failed = 1;
    else
        (*r->n->st.events_replayed)++;
}

int mcpgw_session_replay_to(struct mcpgw_node *n, struct mcpgw_session *s,
                            struct mcpgw_http_conn *conn, uint32_t stream, uint64_t after)
{
    struct replay_ctx r = {n, conn, 0};
    if (mcpgw_session_replay(s, stream, after, replay_one, &r) < 0) {
        (*n->st.replay_gaps)++;
        log_warn("session %s: events after %u.%llu were evicted before the client resumed", s->id,
                 stream, (unsigned long long)after);
    }
    return r.failed ? -1 : 0;
}

static void on_get_close(struct mcpgw_http_conn *conn, void *arg)
{
    struct mcpgw_session *s = arg;
    if (s->get_stream == conn)
        s->get_stream = NULL;
}

void mcpgw_session_attach_live(struct mcpgw_node *n, struct mcpgw_session *s,
                               struct mcpgw_http_conn *conn)
{
    if (s->get_stream && s->get_stream != conn) {
        struct mcpgw_http_conn *old = s->get_stream;
        mcpgw_http_conn_set_close_cb(old, NULL, NULL);
        s->get_stream = NULL;
        mcpgw_http_stream_end(old);
    }
    s->get_stream = conn;
    mcpgw_http_conn_set_close_cb(conn, on_get_close, s);
}

void mcpgw_session_attach_get(struct mcpgw_node *n, struct mcpgw_session *s,
                              struct mcpgw_http_conn *conn, int do_replay, uint64_t after)
{
    if (s->get_stream) {
        struct mcpgw_http_conn *old = s->get_stream;
        mcpgw_http_conn_set_close_cb(old, NULL, NULL);
        s->get_stream = NULL;
        mcpgw_http_stream_end(old);
    }
    if (!do_replay)
        mcpgw_sse_begin(n, s, conn, 0);
    else if (mcpgw_sse_resume(n, s, conn, 0, after) < 0)
        return;
    mcpgw_session_attach_live(n, s, conn);
}

void mcpgw_call_attach(struct mcpgw_call *c, struct mcpgw_http_conn *conn, uint64_t after)
{
    if (c->conn && c->conn != conn) {
        struct mcpgw_http_conn *old = c->conn;
        mcpgw_http_conn_set_close_cb(old, NULL, NULL);
        c->conn = NULL;
        mcpgw_http_stream_end(old);
    }
    if (mcpgw_sse_resume(c->node, c->s, conn, c->stream, after) < 0)
        return;
    c->conn = conn;
    mcpgw_http_conn_set_close_cb(conn, on_call_conn_close, c);
}

void mcpgw_session_send(struct mcpgw_node *n, struct mcpgw_session *s, const char *json, size_t len)
{
    uint64_t seq;
    if (mcpgw_store_shared(n->store)) {
        /* Only while Redis is away: deliver live, without an id (nothing to resume from). */
        if (s->get_stream) {
            struct evbuffer *tmp = evbuffer_new();
            mcpgw_sse_format(tmp, NULL, "message", 0, json, len);
            mcpgw_http_stream_write(s->get_stream, evbuffer_pullup(tmp, -1),
                                    evbuffer_get_length(tmp));
            evbuffer_free(tmp);
        }
        return;
    }
    seq = mcpgw_session_log(s, 0, json, len);
    if (s->get_stream && write_event(n, s->get_stream, 0, seq, json, len) < 0) {
        /* write_event closed it; the close callback cleared get_stream. */
    }
}

/* ---- shared store: live GET-stream delivery and resumption ---- */

static int newer(const struct mcpgw_session *s, uint64_t ms, uint64_t seq)
{
    return ms > s->last_ev_ms || (ms == s->last_ev_ms && seq > s->last_ev_seq);
}

static void deliver_now(struct mcpgw_node *n, struct mcpgw_session *s, uint64_t ms, uint64_t seq,
                        const char *json, size_t len)
{
    char id[64];
    if (!s->get_stream || !newer(s, ms, seq))
        return;
    snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)ms, (unsigned long long)seq);
    s->last_ev_ms = ms;
    s->last_ev_seq = seq;
    write_event_id(n, s->get_stream, id, json, len);
}

void mcpgw_session_deliver(struct mcpgw_node *n, struct mcpgw_session *s, uint64_t ms, uint64_t seq,
                           const char *json, size_t len)
{
    if (s->resuming) {
        struct mcpgw_held_event *h = xmalloc(sizeof(*h) + len), **tail = &s->held;
        h->next = NULL;
        h->ms = ms;
        h->seq = seq;
        h->len = len;
        memcpy(h->data, json, len);
        while (*tail)
            tail = &(*tail)->next;
        *tail = h;
        return;
    }
    deliver_now(n, s, ms, seq, json, len);
}

struct mcpgw_resume {
    struct mcpgw_node *n;
    struct mcpgw_http_conn *conn; /* NULL once the client left (or a catch-up) */
    char sid[MCPGW_SESSION_ID_MAX];
    int catch_up; /* into the attached GET stream, after a pub/sub gap */
    /* Sent with the claim (mcpgw_session_claim_resume): armed once the claim succeeded and the
     * stream began; seen is this node's ev_seen then. An unarmed one only waits for its reply. */
    int early, armed;
    uint64_t seen;
};

static void on_resume_conn_close(struct mcpgw_http_conn *conn, void *arg)
{
    struct mcpgw_resume *r = arg;
    r->conn = NULL;
}

static void resume_visit(void *arg, const struct mcpgw_store_event *ev)
{
    struct mcpgw_resume *r = arg;
    struct mcpgw_session *s = mcpgw_registry_lookup(r->n->reg, r->sid, strlen(r->sid));
    char id[64], *json;
    size_t len;
    if (!s || !newer(s, ev->g, ev->seq) || (r->catch_up ? !s->get_stream : !r->conn))
        return;
    json = mcpgw_msg_resource_updated(ev->uri, ev->version, &len);
    if (r->catch_up) {
        deliver_now(r->n, s, ev->g, ev->seq, json, len);
        (*r->n->st.events_replayed)++;
    } else {
        s->last_ev_ms = ev->g;
        s->last_ev_seq = ev->seq;
        snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)ev->g,
                 (unsigned long long)ev->seq);
        if (write_event_id(r->n, r->conn, id, json, len) == 0)
            (*r->n->st.events_replayed)++;
    }
    free(json);
}

static void flush_held(struct mcpgw_node *n, struct mcpgw_session *s)
{
    while (s->held) {
        struct mcpgw_held_event *h = s->held;
        s->held = h->next;
        deliver_now(n, s, h->ms, h->seq, h->data, h->len);
        free(h);
    }
}

void mcpgw_session_hold(struct mcpgw_session *s)
{
    if (s->gap_hold || s->resuming == UINT8_MAX)
        return;
    s->gap_hold = 1;
    s->resuming++;
}

void mcpgw_session_release(struct mcpgw_node *n, struct mcpgw_session *s)
{
    if (!s->gap_hold)
        return;
    s->gap_hold = 0;
    s->resuming--;
    if (!s->resuming)
        flush_held(n, s);
}

static void resume_done(void *arg, int err, uint64_t at)
{
    struct mcpgw_resume *r = arg;
    struct mcpgw_session *s;
    struct mcpgw_http_conn *conn = r->conn;
    if (r->early && !r->armed) {
        free(r); /* the claim failed or the client left: nothing was begun */
        return;
    }
    s = mcpgw_registry_lookup(r->n->reg, r->sid, strlen(r->sid));
    if (conn)
        mcpgw_http_conn_set_close_cb(conn, NULL, NULL);
    if (s && s->resuming)
        s->resuming--;
    if (r->catch_up) {
        if (s && !s->resuming)
            flush_held(r->n, s);
        free(r);
        return;
    }
    if (!s || err) {
        /* Moved away or Redis failed mid-replay: end the stream; the client resumes again. */
        if (err)
            log_warn("resume of %s failed: %s", r->sid, mcpgw_store_err_str(err));
        if (conn)
            mcpgw_http_stream_end(conn);
        free(r);
        return;
    }
    if (conn)
        mcpgw_session_attach_live(r->n, s, conn);
    if (!s->resuming)
        flush_held(r->n, s);
    /* Read before the session was registered here: events published after the replay (past
     * at) and received before the registration reached no stream of it. */
    if (conn && r->early && r->seen > at)
        mcpgw_session_catch_up(r->n, s);
    free(r);
}

/* Begin the GET stream of a resume whose replay is on its way. */
static void resume_begin(struct mcpgw_node *n, struct mcpgw_session *s,
                         struct mcpgw_http_conn *conn, const char *after, struct mcpgw_resume *r)
{
    r->conn = conn;
    /* Events from before the client's last one are not wanted: start the dedup mark there. */
    mcpgw_stream_id_parse(after, strlen(after), &s->last_ev_ms, &s->last_ev_seq);
    mcpgw_sse_begin(n, s, conn, 0);
    mcpgw_http_conn_set_close_cb(conn, on_resume_conn_close, r);
    s->resuming++;
}

void mcpgw_session_claim_resume(struct mcpgw_node *n, const char *sid, size_t len,
                                const char *after, mcpgw_store_claim_fn claimed, void *claim_arg,
                                struct mcpgw_resume **slot)
{
    struct mcpgw_resume *r = xcalloc(1, sizeof(*r));
    r->n = n;
    r->early = 1;
    snprintf(r->sid, sizeof(r->sid), "%.*s", (int)len, sid);
    *slot = r; /* before the claim: it may call back at once */
    mcpgw_store_claim_replay(n->store, sid, len, after, claimed, claim_arg, resume_visit,
                             resume_done, r);
}

void mcpgw_session_resume_claimed(struct mcpgw_node *n, struct mcpgw_session *s,
                                  struct mcpgw_http_conn *conn, const char *after,
                                  struct mcpgw_resume *r)
{
    r->armed = 1;
    r->seen = n->ev_seen;
    resume_begin(n, s, conn, after, r);
}

void mcpgw_session_resume_shared(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const char *after)
{
    struct mcpgw_resume *r;
    if (!after) {
        mcpgw_sse_begin(n, s, conn, 0);
        mcpgw_session_attach_live(n, s, conn);
        return;
    }
    r = xcalloc(1, sizeof(*r));
    r->n = n;
    snprintf(r->sid, sizeof(r->sid), "%s", s->id);
    resume_begin(n, s, conn, after, r);
    mcpgw_store_replay(n->store, s, after, resume_visit, resume_done, r);
}

void mcpgw_session_catch_up(struct mcpgw_node *n, struct mcpgw_session *s)
{
    struct mcpgw_resume *r;
    char after[48];
    if (!s->get_stream)
        return;
    r = xcalloc(1, sizeof(*r));
    r->n = n;
    r->catch_up = 1;
    snprintf(r->sid, sizeof(r->sid), "%s", s->id);
    snprintf(after, sizeof(after), "%llu-%llu", (unsigned long long)s->last_ev_ms,
             (unsigned long long)s->last_ev_seq);
    s->resuming++;
    mcpgw_store_replay(n->store, s, after, resume_visit, resume_done, r);
}

/* ---- deferred replies ---- */

static void on_defer_conn_close(struct mcpgw_http_conn *conn, void *arg)
{
    struct mcpgw_defer *d = arg;
    d->conn = NULL;
}

struct mcpgw_defer *mcpgw_defer_new(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                                    struct mcpgw_session *s, json_object *id)
{
    struct mcpgw_defer *d = xcalloc(1, sizeof(*d));
    d->n = n;
    d->conn = conn;
    d->id = id ? json_object_get(id) : NULL;
    if (s)
        snprintf(d->sid, sizeof(d->sid), "%s", s->id);
    mcpgw_http_conn_set_close_cb(conn, on_defer_conn_close, d);
    return d;
}

struct mcpgw_session *mcpgw_defer_session(struct mcpgw_defer *d)
{
    return d->sid[0] ? mcpgw_registry_lookup(d->n->reg, d->sid, strlen(d->sid)) : NULL;
}

struct mcpgw_http_conn *mcpgw_defer_conn(struct mcpgw_defer *d)
{
    struct mcpgw_http_conn *c = d->conn;
    if (c)
        mcpgw_http_conn_set_close_cb(c, NULL, NULL);
    d->conn = NULL;
    return c;
}

void mcpgw_defer_free(struct mcpgw_defer *d)
{
    if (d->conn)
        mcpgw_http_conn_set_close_cb(d->conn, NULL, NULL);
    json_object_put(d->id);
    free(d);
}
