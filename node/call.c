/* call.c - in-flight requests and their response streams (see call.h). */
#include "node/call.h"

#include "common/httpd.h"
#include "common/jscan.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/frame.h"
#include "node/limits.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/session.h"
#include "node/store.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_call_conn_close(struct mcpgw_http_conn *conn, void *arg);

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
    if (conn)
        mcpgw_http_conn_set_close_cb(conn, on_call_conn_close, c);
    (*n->st.calls_inflight)++;
    if (n->limits)
        c->limit_slot = mcpgw_limits_call_begin(n->limits);
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
    struct mcpgw_session *s = c->s;
    if (c->on_free) {
        void (*fn)(struct mcpgw_call *) = c->on_free;
        c->on_free = NULL;
        fn(c);
    }
    if (c->limit_slot) {
        mcpgw_limits_call_end(c->node->limits, c->limit_slot);
        c->limit_slot = NULL;
    }
    if (c->round_free) {
        void (*fn)(void *) = c->round_free;
        c->round_free = NULL;
        fn(c->round);
        c->round = NULL;
    }
    c->relay = NULL;
    call_unlink(c);
    if (s && s->stateless && !s->calls)
        mcpgw_session_free(s); /* the one-call session of a 2026-07-28 request */
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
    if (c->fwd_free)
        c->fwd_free(c->fwd);
    if (c->leg_free)
        c->leg_free(c->leg);
    json_object_put(c->id);
    json_object_put(c->request);
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
    if (c->s && c->s->stateless && !c->finishing)
        mcpgw_call_abort(c); /* 2026-07-28: a closed response stream cancels the request */
}

static void ensure_sse(struct mcpgw_call *c)
{
    if (c->sse)
        return;
    c->sse = 1;
    c->stream = ++c->s->next_stream;
    if (c->conn)
        mcpgw_frame_sse_begin(c->node, c->s, c->conn, c->stream);
}

void mcpgw_call_detach(struct mcpgw_call *c)
{
    struct mcpgw_http_conn *conn;
    if (c->s->stateless)
        return; /* 2026-07-28 streams are not resumable: the call stays on its stream */
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
    if (c->relay && c->relay_note && !c->conn) { /* a retry held by another node (bridge26.c) */
        c->relay_note(c, json, len);
        return;
    }
    ensure_sse(c);
    /* A 2026-07-28 stream is never resumed: nothing to keep. */
    seq = c->s->stateless ? mcpgw_session_next_seq(c->s)
                          : mcpgw_session_log(c->s, c->stream, json, len);
    if (c->conn && mcpgw_frame_event(c->node, c->conn, c->stream, seq, json, len) < 0)
        c->conn = NULL;
}

void mcpgw_call_emit(struct mcpgw_call *c, const char *json, size_t len)
{
    if (c->s)
        call_emit(c, json, len);
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
    if (c->s->stateless) {
        /* The 2026-07-28 era has no server-to-client requests: a built-in tool's request gets
         * no answer, from the loop, not from inside the tool. (An upstream's requests become
         * input_required rounds without coming here: node/bridge26.c.) */
        c->out_id = 0;
        c->on_reply = on_reply;
        json_object_put(params);
        arm(c, 0);
        return 0;
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
    if (c->relay) {
        void (*fn)(struct mcpgw_call *, const char *, size_t) = c->relay;
        c->relay = NULL;
        fn(c, json, len);
    } else if (!c->s) {
        /* The session went away meanwhile: nobody to answer. */
    } else if (c->sse) {
        call_emit(c, json, len);
        if (c->conn)
            mcpgw_http_stream_end(c->conn);
    } else if (c->conn) {
        mcpgw_frame_json(c->conn, c->s, 200, json, len);
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
    if (c->s && c->s->stateless)
        mcpgw_msg_complete26(result, -1);
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

void mcpgw_call_result_raw(struct mcpgw_call *c, const char *result, size_t len)
{
    size_t n;
    char *json;
    if (c->finishing)
        return; /* a late answer (the deadline raced the upstream) */
    if (!c->s || c->s->stateless || c->rid || c->relay) {
        /* 2026-07-28 completes the result, a recorded one is stored as a tree's text, a relay
         * may read it: today's path (the text is strictly valid JSON, so this parse is too) */
        struct json_tokener *tok = json_tokener_new_ex(MCPGW_JSCAN_MAX_DEPTH + 1);
        json_object *r = json_tokener_parse_ex(tok, result, (int)len);
        json_tokener_free(tok);
        mcpgw_call_result(c, r ? r : json_object_new_object());
        return;
    }
    c->finishing = 1;
    json = mcpgw_msg_result_raw(c->id, result, len, &n);
    finish_with(c, json, n);
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
    struct mcpgw_session *s = c->s;
    c->conn = NULL;
    call_unlink(c);
    if (conn) {
        if (c->sse)
            mcpgw_http_stream_end(conn);
        else
            mcpgw_http_respond(conn, 202, NULL, NULL, NULL, 0);
    }
    call_free(c);
    if (s && s->stateless && !s->calls)
        mcpgw_session_free(s); /* unlinked above, so call_free could not see it */
}

void mcpgw_call_handoff(struct mcpgw_call *c, json_object *result)
{
    struct mcpgw_http_conn *conn = c->conn;
    size_t len;
    char *json;
    mcpgw_msg_complete26(result, -1);
    json = mcpgw_msg_result(c->id, result, &len);
    c->conn = NULL;
    if (conn)
        mcpgw_http_conn_set_close_cb(conn, NULL, NULL); /* its end no longer cancels the call */
    if (c->relay) {
        void (*fn)(struct mcpgw_call *, const char *, size_t) = c->relay;
        c->relay = NULL;
        fn(c, json, len);
    } else if (c->sse && conn) {
        if (mcpgw_frame_event(c->node, conn, c->stream, mcpgw_session_next_seq(c->s), json, len) ==
            0)
            mcpgw_http_stream_end(conn);
    } else if (conn) {
        mcpgw_frame_json(conn, c->s, 200, json, len);
    }
    free(json);
    c->sse = 0; /* the retry's response starts afresh */
}

void mcpgw_call_rebind(struct mcpgw_call *c, struct mcpgw_http_conn *conn, json_object *id)
{
    json_object_put(c->id);
    c->id = json_object_get(id);
    c->conn = conn;
    c->sse = 0;
    if (conn)
        mcpgw_http_conn_set_close_cb(conn, on_call_conn_close, c);
}

struct mcpgw_call *mcpgw_call_find(struct mcpgw_session *s, json_object *id)
{
    /* Exactly: as int64 every id from 2^63 up read as 2^63-1, and strcmp stopped at a \u0000. */
    for (struct mcpgw_call *c = s->calls; c; c = c->next)
        if (mcpgw_jsonrpc_id_equal(c->id, id))
            return c;
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

void mcpgw_call_attach(struct mcpgw_call *c, struct mcpgw_http_conn *conn, uint64_t after)
{
    if (c->conn && c->conn != conn) {
        struct mcpgw_http_conn *old = c->conn;
        mcpgw_http_conn_set_close_cb(old, NULL, NULL);
        c->conn = NULL;
        mcpgw_http_stream_end(old);
    }
    if (mcpgw_frame_sse_resume(c->node, c->s, conn, c->stream, after) < 0)
        return;
    c->conn = conn;
    mcpgw_http_conn_set_close_cb(conn, on_call_conn_close, c);
}
