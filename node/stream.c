/* stream.c - the session's GET stream: live delivery, replay on resume, holding live events
 * across a gap (see stream.h). */
#include "node/stream.h"

#include "common/httpd.h"
#include "common/log.h"
#include "common/util.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_get_close(struct mcpgw_http_conn *conn, void *arg)
{
    struct mcpgw_session *s = arg;
    if (s->get_stream == conn)
        s->get_stream = NULL;
}

void mcpgw_stream_attach_live(struct mcpgw_node *n, struct mcpgw_session *s,
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

void mcpgw_stream_attach(struct mcpgw_node *n, struct mcpgw_session *s,
                         struct mcpgw_http_conn *conn, int do_replay, uint64_t after)
{
    if (s->get_stream) {
        struct mcpgw_http_conn *old = s->get_stream;
        mcpgw_http_conn_set_close_cb(old, NULL, NULL);
        s->get_stream = NULL;
        mcpgw_http_stream_end(old);
    }
    if (!do_replay)
        mcpgw_frame_sse_begin(n, s, conn, 0);
    else if (mcpgw_frame_sse_resume(n, s, conn, 0, after) < 0)
        return;
    mcpgw_stream_attach_live(n, s, conn);
}

void mcpgw_stream_send(struct mcpgw_node *n, struct mcpgw_session *s, const char *json, size_t len)
{
    uint64_t seq = mcpgw_session_log(s, 0, json, len);
    if (s->get_stream)
        mcpgw_frame_event(n, s->get_stream, 0, seq, json, len); /* a broken one clears itself */
}

void mcpgw_stream_end(struct mcpgw_session *s)
{
    struct mcpgw_http_conn *c = s->get_stream;
    if (!c)
        return;
    mcpgw_http_conn_set_close_cb(c, NULL, NULL);
    s->get_stream = NULL;
    mcpgw_http_stream_end(c);
}

/* ---- shared store: live GET-stream delivery and resumption ---- */

char *mcpgw_stream_event_json(const struct mcpgw_store_event *ev, size_t *len)
{
    static const char *const kinds[] = {"tools", "prompts", "resources"};
    if (ev->uri[0] != MCPGW_STORE_LIST_PREFIX[0])
        return mcpgw_msg_resource_updated(ev->uri, ev->version, len);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(ev->uri + 1, kinds[i]) == 0)
            return mcpgw_msg_list_changed(kinds[i], len);
    return NULL; /* a kind of a newer node: not for this one's clients */
}

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
    mcpgw_frame_event_id(n, s->get_stream, id, json, len);
}

void mcpgw_stream_deliver(struct mcpgw_node *n, struct mcpgw_session *s, uint64_t ms, uint64_t seq,
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
    /* Sent with the claim (mcpgw_stream_claim_resume): armed once the claim succeeded and the
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
    if ((json = mcpgw_stream_event_json(ev, &len)) == NULL)
        return;
    if (r->catch_up) {
        deliver_now(r->n, s, ev->g, ev->seq, json, len);
        (*r->n->st.events_replayed)++;
    } else {
        s->last_ev_ms = ev->g;
        s->last_ev_seq = ev->seq;
        snprintf(id, sizeof(id), "0.%llu-%llu", (unsigned long long)ev->g,
                 (unsigned long long)ev->seq);
        if (mcpgw_frame_event_id(r->n, r->conn, id, json, len) == 0)
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

void mcpgw_stream_hold(struct mcpgw_session *s)
{
    if (s->gap_hold || s->resuming == UINT8_MAX)
        return;
    s->gap_hold = 1;
    s->resuming++;
}

void mcpgw_stream_release(struct mcpgw_node *n, struct mcpgw_session *s)
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
        mcpgw_stream_attach_live(r->n, s, conn);
    if (!s->resuming)
        flush_held(r->n, s);
    /* Read before the session was registered here: events published after the replay (past
     * at) and received before the registration reached no stream of it. */
    if (conn && r->early && r->seen > at)
        mcpgw_stream_catch_up(r->n, s);
    free(r);
}

/* Begin the GET stream of a resume whose replay is on its way. */
static void resume_begin(struct mcpgw_node *n, struct mcpgw_session *s,
                         struct mcpgw_http_conn *conn, const char *after, struct mcpgw_resume *r)
{
    r->conn = conn;
    /* Events from before the client's last one are not wanted: start the dedup mark there. */
    mcpgw_session_cluster_id_parse(after, strlen(after), &s->last_ev_ms, &s->last_ev_seq);
    mcpgw_frame_sse_begin(n, s, conn, 0);
    mcpgw_http_conn_set_close_cb(conn, on_resume_conn_close, r);
    s->resuming++;
}

void mcpgw_stream_claim_resume(struct mcpgw_node *n, const char *sid, size_t len, const char *after,
                               mcpgw_store_claim_fn claimed, void *claim_arg,
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

void mcpgw_stream_resume_claimed(struct mcpgw_node *n, struct mcpgw_session *s,
                                 struct mcpgw_http_conn *conn, const char *after,
                                 struct mcpgw_resume *r)
{
    r->armed = 1;
    r->seen = n->ev_seen;
    resume_begin(n, s, conn, after, r);
}

void mcpgw_stream_resume(struct mcpgw_node *n, struct mcpgw_session *s,
                         struct mcpgw_http_conn *conn, const char *after)
{
    struct mcpgw_resume *r;
    if (!after) {
        mcpgw_frame_sse_begin(n, s, conn, 0);
        mcpgw_stream_attach_live(n, s, conn);
        return;
    }
    r = xcalloc(1, sizeof(*r));
    r->n = n;
    snprintf(r->sid, sizeof(r->sid), "%s", s->id);
    resume_begin(n, s, conn, after, r);
    mcpgw_store_replay(n->store, s, after, resume_visit, resume_done, r);
}

void mcpgw_stream_catch_up(struct mcpgw_node *n, struct mcpgw_session *s)
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
