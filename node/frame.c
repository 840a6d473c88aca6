/* frame.c - a session's messages on one connection: JSON answers, SSE heads, priming events,
 * events with ids and log replays (see frame.h). */
#include "node/frame.h"

#include "common/httpd.h"
#include "common/log.h"
#include "common/sse.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/proto.h"
#include "node/session.h"
#include "node/store.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>

static void session_headers(const struct mcpgw_session *s, char *buf, size_t len)
{
    if (s->stateless) { /* no session to name; tell buffering proxies to pass events on */
        snprintf(buf, len, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
        return;
    }
    snprintf(buf, len, "Mcp-Session-Id: %s\r\nCache-Control: no-cache\r\n", s->id);
}

int mcpgw_frame_event_id(struct mcpgw_node *n, struct mcpgw_http_conn *conn, const char *id,
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

int mcpgw_frame_event(struct mcpgw_node *n, struct mcpgw_http_conn *conn, uint32_t stream,
                      uint64_t seq, const char *data, size_t len)
{
    char id[48];
    mcpgw_session_event_id_format(id, sizeof(id), stream, seq);
    return mcpgw_frame_event_id(n, conn, id, data, len);
}

int mcpgw_frame_keepalive(struct mcpgw_http_conn *conn)
{
    static const char comment[] = ": keepalive\n\n";
    if (mcpgw_http_conn_pending_output(conn))
        return 0;
    return mcpgw_http_stream_write(conn, comment, sizeof(comment) - 1);
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
    if (s->proto == MCPGW_PROTO_2025_11_25 && !s->stateless) {
        struct evbuffer *tmp = evbuffer_new();
        char id[48];
        /* With a shared store the GET stream's ids are Redis stream ids: prime with the last one
         * delivered, so a resume from it replays exactly what followed. */
        if (stream == 0 && mcpgw_store_shared(n->store))
            snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)s->last_ev_ms,
                     (unsigned long long)s->last_ev_seq);
        else
            mcpgw_session_event_id_format(id, sizeof(id), stream, mcpgw_session_next_seq(s));
        mcpgw_sse_format(tmp, id, NULL, n->cfg.sse_retry_ms, "", 0);
        mcpgw_http_stream_write(conn, evbuffer_pullup(tmp, -1), evbuffer_get_length(tmp));
        evbuffer_free(tmp);
    }
}

void mcpgw_frame_sse_begin(struct mcpgw_node *n, struct mcpgw_session *s,
                           struct mcpgw_http_conn *conn, uint32_t stream)
{
    sse_headers(s, conn);
    sse_prime(n, s, conn, stream);
}

int mcpgw_frame_sse_resume(struct mcpgw_node *n, struct mcpgw_session *s,
                           struct mcpgw_http_conn *conn, uint32_t stream, uint64_t after)
{
    /* Replay before priming: the priming id is newer than every logged event, so a client cut
     * off right after a priming event sent first would resume past the replay and lose it. */
    sse_headers(s, conn);
    if (mcpgw_frame_replay(n, s, conn, stream, after) < 0)
        return -1;
    sse_prime(n, s, conn, stream);
    return 0;
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
    if (mcpgw_frame_event(r->n, r->conn, ev->stream, ev->seq, ev->data, ev->len) < 0)
        r->failed = 1;
    else
        (*r->n->st.events_replayed)++;
}

int mcpgw_frame_replay(struct mcpgw_node *n, struct mcpgw_session *s, struct mcpgw_http_conn *conn,
                       uint32_t stream, uint64_t after)
{
    struct replay_ctx r = {n, conn, 0};
    if (mcpgw_session_replay(s, stream, after, replay_one, &r) < 0) {
        (*n->st.replay_gaps)++;
        log_warn("session %s: events after %u.%llu were evicted before the client resumed", s->id,
                 stream, (unsigned long long)after);
    }
    return r.failed ? -1 : 0;
}

void mcpgw_frame_json(struct mcpgw_http_conn *conn, const struct mcpgw_session *s, int status,
                      const char *json, size_t len)
{
    char hdr[160];
    session_headers(s, hdr, sizeof(hdr));
    mcpgw_http_respond(conn, status, "application/json", hdr, json, len);
}

/* Plain answers name the session but, unlike a call's, say nothing about caching. */
static void respond_json(struct mcpgw_http_conn *conn, const struct mcpgw_session *s, int status,
                         char *json, size_t len)
{
    char hdr[128];
    if (s)
        snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", s->id);
    mcpgw_http_respond(conn, status, "application/json", s ? hdr : NULL, json, len);
    free(json);
}

void mcpgw_frame_result(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                        const struct mcpgw_session *s, json_object *id, json_object *result)
{
    size_t len;
    char *json = mcpgw_msg_result(id, result, &len);
    respond_json(conn, s, 200, json, len);
}

void mcpgw_frame_result_raw(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                            const struct mcpgw_session *s, json_object *id, const char *result,
                            size_t result_len)
{
    size_t len;
    char *json = mcpgw_msg_result_raw(id, result, result_len, &len);
    respond_json(conn, s, 200, json, len);
}

void mcpgw_frame_error(struct mcpgw_node *n, struct mcpgw_http_conn *conn,
                       const struct mcpgw_session *s, int http_status, json_object *id, int code,
                       const char *message)
{
    size_t len;
    char *json = mcpgw_msg_error(id, code, message, &len);
    (*n->st.errors)++;
    respond_json(conn, s, http_status, json, len);
}
