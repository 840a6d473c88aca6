/* worker.c - one worker process: ramps its sessions, drives its share of the echo load, writes
 * notes (worker 0), counts, and reports to the parent every second (see worker.h). */
#include "loadgen/worker.h"

#include "common/log.h"
#include "common/util.h"
#include "loadgen/lathist.h"
#include "loadgen/pool.h"
#include "loadgen/session.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* ---- requests ---- */

struct lg_req *mcpgw_worker_req_new(struct lg_worker *w, struct lg_session *s, int kind,
                                    uint64_t intended_us)
{
    struct lg_req *r = xcalloc(1, sizeof(*r));
    r->s = s;
    r->kind = (uint8_t)kind;
    r->intended_us = intended_us;
    r->id = ++w->next_id;
    return r;
}

void mcpgw_worker_req_free(struct lg_worker *w, struct lg_req *r)
{
    if (r->kind == LG_REQ_ECHO)
        w->echo_out--;
    free(r);
}

/* tool: the tool a 2026-07-28 tools/call names (its Mcp-Name header), or NULL. */
static void post_head(struct lg_worker *w, const struct lg_session *s, size_t body_len,
                      struct evbuffer *out, const char *tool)
{
    const struct mcpgw_lg_config *cfg = w->cfg;
    evbuffer_add_printf(out,
                        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                        "Accept: application/json, text/event-stream\r\n",
                        cfg->path, cfg->authority);
    if (cfg->era26 && tool)
        evbuffer_add_printf(out,
                            "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
                            "Mcp-Name: %s\r\n",
                            tool);
    if (s->sid)
        evbuffer_add_printf(out, "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: %s\r\n", s->sid,
                            cfg->protocol_version);
    evbuffer_add_printf(out, "%sContent-Length: %zu\r\n\r\n", cfg->headers, body_len);
}

void mcpgw_worker_build(struct lg_worker *w, const struct lg_req *r, struct evbuffer *out)
{
    const struct mcpgw_lg_config *cfg = w->cfg;
    char body[512], id[24];
    int n = 0, idn;
    switch (r->kind) {
    case LG_REQ_ECHO:
        idn = snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
        post_head(w, r->s, w->echo_prefix_len + (size_t)idn + w->echo_suffix_len, out, "echo");
        evbuffer_add(out, w->echo_prefix, w->echo_prefix_len);
        evbuffer_add(out, id, (size_t)idn);
        /* The payload is the same for every call and lives as long as the worker. */
        evbuffer_add_reference(out, w->echo_suffix, w->echo_suffix_len, NULL, NULL);
        return;
    case LG_REQ_DELETE:
        evbuffer_add_printf(out,
                            "DELETE %s HTTP/1.1\r\nHost: %s\r\nMcp-Session-Id: %s\r\n"
                            "MCP-Protocol-Version: %s\r\n%sContent-Length: 0\r\n\r\n",
                            cfg->path, cfg->authority, r->s->sid, cfg->protocol_version,
                            cfg->headers);
        return;
    case LG_REQ_INIT:
        n = snprintf(body, sizeof(body),
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"initialize\",\"params\":{"
                     "\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":{\"name\":"
                     "\"mcpgw-loadgen\",\"version\":\"0.1\"}}}",
                     (unsigned long long)r->id, cfg->protocol_version);
        break;
    case LG_REQ_INITIALIZED:
        n = snprintf(body, sizeof(body),
                     "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
        break;
    case LG_REQ_SUBSCRIBE:
        n = snprintf(body, sizeof(body),
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"resources/subscribe\","
                     "\"params\":{\"uri\":\"mcpgw://notes/%s\"}}",
                     (unsigned long long)r->id, cfg->subscribe);
        break;
    case LG_REQ_WRITE:
        n = snprintf(body, sizeof(body),
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"tools/call\",\"params\":{%s"
                     "\"name\":\"notes_write\",\"arguments\":{\"name\":\"%s\",\"text\":"
                     "\"write %llu from mcpgw-loadgen\"}}}",
                     (unsigned long long)r->id, cfg->era26 ? LG_META26 "," : "", cfg->subscribe,
                     (unsigned long long)w->writer_sent);
        post_head(w, r->s, (size_t)n, out, "notes_write");
        evbuffer_add(out, body, (size_t)n);
        return;
    }
    post_head(w, r->s, (size_t)n, out, NULL);
    evbuffer_add(out, body, (size_t)n);
}

/* ---- the load ---- */

static uint64_t due_calls(struct lg_worker *w, uint64_t now)
{
    if (w->rate <= 0 || now < w->go_us)
        return 0;
    return (uint64_t)((double)(now - w->go_us) * w->rate / 1e6) + 1;
}

struct lg_req *mcpgw_worker_pull(struct lg_worker *w)
{
    const struct mcpgw_lg_config *cfg = w->cfg;
    struct lg_session *s;
    struct lg_req *r;
    uint64_t intended;
    if (w->phase != LG_PH_DRIVE || w->nalive == 0)
        return NULL;
    if (cfg->closed_loop) {
        if (w->echo_out >= w->closed_n)
            return NULL;
        intended = mcpgw_now_us();
    } else {
        if (w->issued >= due_calls(w, mcpgw_now_us()))
            return NULL;
        /* Latency counts from when the call was due, so time spent waiting for a free
         * connection is measured (no coordinated omission). */
        intended = w->go_us + (uint64_t)((double)w->issued * 1e6 / w->rate);
        w->issued++;
    }
    s = w->alive[w->rr++ % w->nalive];
    r = mcpgw_worker_req_new(w, s, LG_REQ_ECHO, intended);
    w->echo_out++;
    return r;
}

static int rpc_ok(struct lg_worker *w, const struct mcpgw_client_resp *resp)
{
    const char *p;
    size_t n;
    if (mcpgw_lgsession_rpc_body(w, resp, &p, &n) < 0)
        return 0;
    return memmem(p, n, "\"result\"", 8) && !memmem(p, n, "\"isError\":true", 14);
}

static void on_echo(struct lg_worker *w, struct lg_req *r, int err,
                    const struct mcpgw_client_resp *resp)
{
    struct lg_session *s = r->s;
    uint64_t now = mcpgw_now_us();
    if (err == MCPGW_CLIENT_OK && resp->status == 200 && rpc_ok(w, resp)) {
        w->c[LG_C_REQ_OK]++;
        mcpgw_lathist_record(w->lat, now > r->intended_us ? now - r->intended_us : 0);
        mcpgw_worker_session_ok(w, s);
        return;
    }
    w->c[LG_C_REQ_FAILED]++;
    if (err == MCPGW_CLIENT_TIMEOUT)
        w->c[LG_C_REQ_TIMEOUT]++;
    if (err == MCPGW_CLIENT_OK) {
        if (resp->status != 200)
            w->c[LG_C_REQ_HTTP_ERROR]++;
        else
            w->c[LG_C_REQ_RPC_ERROR]++;
        if (resp->status == 404) {
            mcpgw_worker_session_lost(w, s);
            return;
        }
    }
    mcpgw_worker_session_failed(w, s);
}

static void on_write(struct lg_worker *w, struct lg_req *r, int err,
                     const struct mcpgw_client_resp *resp)
{
    const char *p, *v;
    size_t n;
    uint64_t version;
    if (err != MCPGW_CLIENT_OK || resp->status != 200 ||
        mcpgw_lgsession_rpc_body(w, resp, &p, &n) < 0 || !(v = memmem(p, n, "at version ", 11))) {
        w->c[LG_C_WRITE_FAILED]++;
        return;
    }
    version = strtoull(v + 11, NULL, 10);
    w->c[LG_C_WRITE_OK]++;
    if (!w->writer_first || version < w->writer_first)
        w->writer_first = version;
    if (version > w->writer_last)
        w->writer_last = version;
}

static void finish_exit(struct lg_worker *w);

void mcpgw_worker_on_response(struct lg_worker *w, struct lg_req *r, int err,
                              const struct mcpgw_client_resp *resp)
{
    switch (r->kind) {
    case LG_REQ_INIT:
    case LG_REQ_INITIALIZED:
    case LG_REQ_SUBSCRIBE:
        mcpgw_lgsession_setup_response(w, r, err, resp);
        return;
    case LG_REQ_ECHO:
        on_echo(w, r, err, resp);
        break;
    case LG_REQ_WRITE:
        on_write(w, r, err, resp);
        break;
    case LG_REQ_DELETE:
        if (w->deletes_pending && --w->deletes_pending == 0)
            event_active(w->exit_ev, EV_TIMEOUT, 0);
        break;
    }
    mcpgw_worker_req_free(w, r);
}

/* ---- sessions ---- */

uint16_t mcpgw_worker_node_index(struct lg_worker *w, const char *node, size_t n)
{
    char name[32];
    if (n == 0 || n >= sizeof(name))
        snprintf(name, sizeof(name), "?");
    else
        snprintf(name, sizeof(name), "%.*s", (int)n, node);
    for (uint32_t i = 0; i < w->nnodes; i++)
        if (strcmp(w->nodes[i].name, name) == 0)
            return (uint16_t)i;
    if (w->nnodes == MCPGW_WIRE_MAX_NODES)
        return MCPGW_WIRE_MAX_NODES - 1; /* more node names than we track: the last bucket */
    snprintf(w->nodes[w->nnodes].name, sizeof(w->nodes[0].name), "%s", name);
    return (uint16_t)w->nnodes++;
}

void mcpgw_worker_session_established(struct lg_worker *w, struct lg_session *s)
{
    if (s->writer) {
        log_info("notes writer session %s ready", s->sid ? s->sid : "(stateless)");
        return;
    }
    s->alive_pos = w->nalive;
    w->alive[w->nalive++] = s;
    if (s->sid) { /* else (2026-07-28) the listen stream's acknowledgement named it */
        const char *dot = strchr(s->sid, '.');
        s->node = mcpgw_worker_node_index(w, s->sid, dot ? (size_t)(dot - s->sid) : 0);
    }
    w->nodes[s->node].established++;
    w->c[LG_C_SESS_ESTABLISHED]++;
    mcpgw_lathist_record(w->setup, mcpgw_now_us() - s->setup_start_us);
}

void mcpgw_worker_session_lost(struct lg_worker *w, struct lg_session *s)
{
    struct lg_session *last;
    if (s->state != LG_SS_ESTABLISHED || s->writer)
        return;
    mcpgw_worker_session_failed(w, s);
    s->state = LG_SS_LOST;
    last = w->alive[--w->nalive];
    w->alive[s->alive_pos] = last;
    last->alive_pos = s->alive_pos;
    w->c[LG_C_SESS_LOST]++;
    mcpgw_lgsession_close(w, s);
}

static void send_ready(struct lg_worker *w);

void mcpgw_worker_session_settled(struct lg_worker *w, struct lg_session *s)
{
    w->settled++;
    if (s->writer && s->state != LG_SS_ESTABLISHED)
        log_warn("the notes writer could not open its session: no notes will be written");
    if (w->settled == w->nall)
        send_ready(w);
}

void mcpgw_worker_session_failed(struct lg_worker *w, struct lg_session *s)
{
    unsigned i;
    uint64_t now;
    if (s->writer)
        return;
    now = mcpgw_now_us();
    if (!w->drill) {
        s->early_fail_us = now;
        s->early_ok_us = 0;
        return;
    }
    i = w->drill - 1u;
    if (now < w->fault_us[i])
        return;
    if (!w->err_first_us[i])
        w->err_first_us[i] = now;
    w->err_last_us[i] = now;
    s->drill = w->drill;
    s->drill_ok_us = 0;
}

/* The notice of fault i arrived: sessions that failed since the fault, before the notice (a
 * stream cut soon after a kill can be seen first), are the fault's too. */
static void attribute_early(struct lg_worker *w, unsigned i)
{
    for (uint32_t k = 0; k < w->nsessions; k++) {
        struct lg_session *s = &w->sessions[k];
        if (s->early_fail_us >= w->fault_us[i] && s->early_fail_us) {
            if (!w->err_first_us[i] || s->early_fail_us < w->err_first_us[i])
                w->err_first_us[i] = s->early_fail_us;
            if (s->early_fail_us > w->err_last_us[i])
                w->err_last_us[i] = s->early_fail_us;
            s->drill = w->drill;
            s->drill_ok_us = s->early_ok_us;
        }
        s->early_fail_us = s->early_ok_us = 0;
    }
}

void mcpgw_worker_session_ok(struct lg_worker *w, struct lg_session *s)
{
    /* A session that holds a GET stream is served again only once that stream is back: a call
     * answered while the stream is still down (notifications not delivered) does not count,
     * nor one answered while a stream on a killed node may not have moved yet. */
    if (w->cfg->get_streams && !s->writer && (!s->stream_up || s->move_wait))
        return;
    if (s->drill && !s->drill_ok_us)
        s->drill_ok_us = mcpgw_now_us();
    else if (!s->drill && s->early_fail_us && !s->early_ok_us)
        s->early_ok_us = mcpgw_now_us();
}

void mcpgw_worker_session_moved(struct lg_worker *w, struct lg_session *s)
{
    uint64_t now = mcpgw_now_us();
    unsigned i;
    s->move_wait = 0;
    if (s->writer)
        return;
    w->c[LG_C_STREAM_RESUMED]++;
    if (!w->drill) { /* before the fault's notice: attributed on it (attribute_early) */
        if (!s->early_fail_us)
            s->early_fail_us = s->early_ok_us = now;
        return;
    }
    i = w->drill - 1u;
    if (now < w->fault_us[i])
        return;
    if (s->drill != w->drill) {
        s->drill = w->drill;
        s->drill_ok_us = 0;
    }
    mcpgw_worker_session_ok(w, s);
}

/* A kill or stop of node target: every session created there whose stream is up is hit, whether
 * or not it ever sees an error (the balancer may carry its stream on elsewhere). Sessions the
 * notice found already attributed keep what they have. */
static void mark_target(struct lg_worker *w, unsigned i)
{
    const struct mcpgw_drill *d = &w->cfg->drills[i];
    if (!w->cfg->get_streams || !d->target[0] ||
        (d->kind != MCPGW_DRILL_KILL && d->kind != MCPGW_DRILL_STOP))
        return;
    for (uint32_t k = 0; k < w->nalive; k++) {
        struct lg_session *s = w->alive[k];
        if (!s->stream_up || s->drill == i + 1 || strcmp(w->nodes[s->node].name, d->target) != 0)
            continue;
        s->drill = (uint8_t)(i + 1);
        s->drill_ok_us = 0;
        s->move_wait = 1;
    }
}

/* ---- the parent ---- */

static void ctrl_send(struct lg_worker *w, struct evbuffer *b)
{
    while (evbuffer_get_length(b)) {
        int n = evbuffer_write(b, w->ctrl_fd);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            evbuffer_drain(b, evbuffer_get_length(b));
            break;
        }
    }
}

static void send_simple(struct lg_worker *w, enum mcpgw_wire_type t)
{
    struct evbuffer *b = evbuffer_new();
    mcpgw_wire_header(b, t, w->idx, 0);
    ctrl_send(w, b);
    evbuffer_free(b);
}

static void send_ready(struct lg_worker *w)
{
    if (w->ready_sent)
        return;
    w->ready_sent = 1;
    send_simple(w, MCPGW_WIRE_READY);
}

static void send_tick(struct lg_worker *w)
{
    struct mcpgw_wire_tick t;
    struct evbuffer *b = evbuffer_new();
    uint64_t due;
    memset(&t, 0, sizeof(t));
    t.sec = w->sec;
    memcpy(t.c, w->c, sizeof(t.c));
    t.g[LG_G_SESSIONS_OPEN] = w->nalive;
    t.g[LG_G_STREAMS_OPEN] = w->streams_open;
    t.g[LG_G_CONNS] = w->nconns;
    t.g[LG_G_INFLIGHT] = w->inflight;
    due = w->phase == LG_PH_DRIVE ? due_calls(w, mcpgw_now_us()) : 0;
    t.g[LG_G_BACKLOG] = due > w->issued ? due - w->issued : 0;
    t.writer_first = w->writer_first;
    t.writer_last = w->writer_last;
    mcpgw_wire_put_tick(b, w->idx, &t, w->lat, w->setup);
    ctrl_send(w, b);
    evbuffer_free(b);
    memset(w->c, 0, sizeof(w->c));
    mcpgw_lathist_reset(w->lat);
    mcpgw_lathist_reset(w->setup);
}

static void schedule_tick(struct lg_worker *w)
{
    uint64_t at = w->t0_us + (uint64_t)(w->sec + 1) * 1000000, now = mcpgw_now_us();
    uint64_t d = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
    evtimer_add(w->tick_ev, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    send_tick(w);
    w->sec++;
    schedule_tick(w);
}

static void on_ramp(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    uint64_t now = mcpgw_now_us();
    uint64_t due = (uint64_t)((double)(now - w->ramp_t0) * w->ramp_rate / 1e6) + 1;
    if (due > w->nsessions)
        due = w->nsessions;
    while (w->started < due) {
        uint64_t at = w->ramp_t0 + (uint64_t)((double)w->started * 1e6 / w->ramp_rate);
        mcpgw_lgsession_start(w, &w->sessions[w->started], at);
        w->started++;
    }
    if (w->started < w->nsessions) {
        uint64_t next = w->ramp_t0 + (uint64_t)((double)w->started * 1e6 / w->ramp_rate);
        uint64_t d = next > now ? next - now : 0;
        struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
        evtimer_add(w->ramp_ev, &tv);
    }
}

/* Open loop: send what is due, then sleep until the next call is due. While calls wait for a
 * connection (backlog), completions send them and the timer only checks every millisecond. */
static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    uint64_t now, next, d;
    struct timeval tv;
    mcpgw_pool_kick(w);
    if (w->phase != LG_PH_DRIVE)
        return;
    now = mcpgw_now_us();
    next = w->go_us + (uint64_t)((double)w->issued * 1e6 / w->rate);
    d = next > now ? next - now : 1000;
    tv.tv_sec = (time_t)(d / 1000000);
    tv.tv_usec = (suseconds_t)(d % 1000000);
    evtimer_add(w->pace_ev, &tv);
}

static void on_writer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    if (w->phase != LG_PH_DRIVE || !w->writer || w->writer->state != LG_SS_ESTABLISHED)
        return;
    w->writer_sent++;
    mcpgw_pool_submit(w, mcpgw_worker_req_new(w, w->writer, LG_REQ_WRITE, mcpgw_now_us()));
}

static void start_drive(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    struct timeval tv;
    if (w->phase != LG_PH_RAMP)
        return;
    w->phase = LG_PH_DRIVE;
    if (!w->cfg->closed_loop && w->rate > 0) {
        w->pace_ev = evtimer_new(w->base, on_pace, w);
        on_pace(-1, 0, w);
    }
    if (w->writer && w->writer_rate > 0) {
        uint64_t us = (uint64_t)(1e6 / w->writer_rate);
        tv.tv_sec = (time_t)(us / 1000000);
        tv.tv_usec = (suseconds_t)(us % 1000000);
        w->writer_ev = event_new(w->base, -1, EV_PERSIST, on_writer, w);
        event_add(w->writer_ev, &tv);
        on_writer(-1, 0, w);
    }
    mcpgw_pool_kick(w);
}

static void stop_drive(struct lg_worker *w)
{
    if (w->phase == LG_PH_DRIVE && !w->cfg->closed_loop && w->rate > 0) {
        uint64_t due = due_calls(w, mcpgw_now_us());
        if (due > w->issued)
            w->c[LG_C_REQ_UNSENT] += due - w->issued;
    }
    if (w->phase == LG_PH_RAMP || w->phase == LG_PH_DRIVE)
        w->phase = LG_PH_STOPPED;
    if (w->pace_ev)
        event_del(w->pace_ev);
    if (w->writer_ev)
        event_del(w->writer_ev);
}

static void send_final(struct lg_worker *w, uint64_t first, uint64_t last)
{
    struct mcpgw_wire_final f;
    struct mcpgw_lathist *rec[MCPGW_WIRE_MAX_DRILLS];
    struct evbuffer *b = evbuffer_new();
    int named = 0;
    memset(&f, 0, sizeof(f));
    for (uint32_t i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++)
        rec[i] = mcpgw_lathist_new();
    for (uint32_t i = 0; i < w->nsessions; i++) {
        struct lg_session *s = &w->sessions[i];
        if (s->state == LG_SS_ESTABLISHED && w->cfg->subscribe[0]) {
            uint64_t e, r, d;
            mcpgw_lgsession_account(s, first, last, &e, &r, &d);
            f.subscribers++;
            f.expected += e;
            f.received += r;
            f.duplicated += d;
            f.lost += e - r;
            /* Name a few, so that a loss can be traced in the nodes' logs. */
            if (e != r && f.subscribers && named < 5) {
                char miss[128];
                int k = mcpgw_lgsession_missing(s, first, last, miss, sizeof(miss));
                named++;
                log_warn("worker %u: session %s missed %d notification version(s): %s (last "
                         "event id %s)",
                         w->idx, s->sid ? s->sid : "?", k, miss,
                         s->last_eid ? s->last_eid : "none");
            }
        }
        if (s->drill) {
            unsigned k = s->drill - 1u;
            f.drills[k].affected++;
            if (s->state == LG_SS_LOST)
                f.drills[k].lost++;
            else if (s->drill_ok_us) {
                f.drills[k].recovered++;
                mcpgw_lathist_record(
                    rec[k], s->drill_ok_us > w->fault_us[k] ? s->drill_ok_us - w->fault_us[k] : 0);
            }
        }
    }
    f.nnodes = w->nnodes;
    for (uint32_t i = 0; i < w->nnodes; i++) {
        memcpy(f.nodes[i].name, w->nodes[i].name, sizeof(f.nodes[i].name));
        f.nodes[i].established = w->nodes[i].established;
    }
    for (uint32_t i = 0; i < w->nalive; i++)
        f.nodes[w->alive[i]->node].alive++;
    f.ndrills = w->cfg->ndrills;
    for (uint32_t i = 0; i < f.ndrills; i++) {
        f.drills[i].first_err_us = w->err_first_us[i];
        f.drills[i].last_err_us = w->err_last_us[i];
    }
    mcpgw_wire_put_final(b, w->idx, &f, rec);
    ctrl_send(w, b);
    evbuffer_free(b);
    for (uint32_t i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++)
        mcpgw_lathist_free(rec[i]);
}

static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
    finish_exit(arg);
}

/* Last words to the parent, then leave the loop. */
static void finish_exit(struct lg_worker *w)
{
    if (w->sec == UINT32_MAX)
        return;
    event_del(w->tick_ev);
    send_tick(w);
    w->sec = UINT32_MAX;
    send_simple(w, MCPGW_WIRE_DONE);
    mcpgw_pool_close_all(w);
    event_base_loopbreak(w->base);
}

static void finish(struct lg_worker *w, uint64_t first, uint64_t last)
{
    struct timeval tv = {10, 0};
    stop_drive(w);
    send_final(w, first, last);
    w->phase = LG_PH_FINISHING;
    if (w->ramp_ev)
        event_del(w->ramp_ev);
    for (uint32_t i = 0; i < w->nall; i++)
        mcpgw_lgsession_close(w, &w->sessions[i]);
    w->exit_ev = evtimer_new(w->base, on_exit_timer, w);
    if (!w->cfg->keep_sessions) {
        for (uint32_t i = 0; i < w->nall; i++) {
            struct lg_session *s = &w->sessions[i];
            if (!s->sid || s->state == LG_SS_LOST)
                continue;
            w->deletes_pending++;
            mcpgw_pool_submit(w, mcpgw_worker_req_new(w, s, LG_REQ_DELETE, mcpgw_now_us()));
        }
    }
    if (w->deletes_pending == 0)
        event_active(w->exit_ev, EV_TIMEOUT, 0);
    else
        evtimer_add(w->exit_ev, &tv);
}

static void on_go(evutil_socket_t fd, short what, void *arg)
{
    start_drive(fd, what, arg);
}

static void on_ctrl(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    int n = evbuffer_read(w->ctrl_in, fd, 4096), type;
    uint32_t worker, len;
    unsigned char *p;
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        /* The parent is gone: nobody will read our figures. */
        w->exit_code = 2;
        mcpgw_pool_close_all(w);
        for (uint32_t i = 0; i < w->nall; i++)
            mcpgw_lgsession_close(w, &w->sessions[i]);
        event_base_loopbreak(w->base);
        return;
    }
    while ((n = mcpgw_wire_take(w->ctrl_in, &type, &worker, &p, &len)) == 1) {
        struct mcpgw_wire_cmd cmd = {0, 0};
        if (len && mcpgw_wire_get_cmd(p, len, &cmd) < 0)
            log_warn("bad %s command from the parent", mcpgw_wire_type_str(type));
        free(p);
        switch (type) {
        case MCPGW_WIRE_GO: {
            uint64_t now = mcpgw_now_us(), d;
            struct timeval tv;
            w->go_us = cmd.a;
            d = w->go_us > now ? w->go_us - now : 0;
            tv.tv_sec = (time_t)(d / 1000000);
            tv.tv_usec = (suseconds_t)(d % 1000000);
            event_base_once(w->base, -1, EV_TIMEOUT, on_go, w, &tv);
            break;
        }
        case MCPGW_WIRE_STOP:
            stop_drive(w);
            break;
        case MCPGW_WIRE_FAULT:
            if (cmd.a < MCPGW_WIRE_MAX_DRILLS) {
                w->fault_us[cmd.a] = cmd.b;
                w->drill = (uint8_t)(cmd.a + 1);
                attribute_early(w, cmd.a);
                mark_target(w, cmd.a);
            }
            break;
        case MCPGW_WIRE_FINISH:
            finish(w, cmd.a, cmd.b);
            break;
        default:
            log_warn("unexpected %s message from the parent", mcpgw_wire_type_str(type));
        }
    }
    if (n < 0) {
        log_error("malformed message from the parent; stopping");
        w->exit_code = 2;
        event_base_loopbreak(w->base);
    }
}

/* The echo request body around its id; the text is payload bytes of a-z. */
static void build_echo(struct lg_worker *w)
{
    static const char pre[] = "{\"jsonrpc\":\"2.0\",\"id\":";
    static const char mid[] =
        ",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"";
    static const char mid26[] = ",\"method\":\"tools/call\",\"params\":{" LG_META26
                                ",\"name\":\"echo\",\"arguments\":{\"text\":\"";
    static const char end[] = "\"}}}";
    const char *m = w->cfg->era26 ? mid26 : mid;
    size_t pl = w->cfg->payload, n = 0, ml = strlen(m);
    w->echo_prefix = xstrdup(pre);
    w->echo_prefix_len = sizeof(pre) - 1;
    w->echo_suffix = xmalloc(ml + pl + sizeof(end));
    memcpy(w->echo_suffix, m, ml);
    n = ml;
    for (size_t i = 0; i < pl; i++)
        w->echo_suffix[n++] = (char)('a' + i % 26);
    memcpy(w->echo_suffix + n, end, sizeof(end));
    w->echo_suffix_len = n + sizeof(end) - 1;
}

static uint32_t share(uint32_t total, uint32_t k, uint32_t i)
{
    return total / k + (i < total % k ? 1 : 0);
}

int mcpgw_worker_run(const struct mcpgw_lg_config *cfg, uint32_t idx, int ctrl_fd, uint64_t t0_us)
{
    struct lg_worker w;
    char name[16], comp[32];
    uint32_t k = cfg->workers;

    memset(&w, 0, sizeof(w));
    signal(SIGPIPE, SIG_IGN);
    /* The parent coordinates the end: Ctrl-C in the terminal reaches the whole group. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    snprintf(name, sizeof(name), "mcpgw-lg-w%u", idx);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    snprintf(comp, sizeof(comp), "loadgen w%u", idx);
    mcpgw_log_set_component(comp);

    w.cfg = cfg;
    w.idx = idx;
    w.t0_us = t0_us;
    w.ramp_t0 = mcpgw_now_us(); /* after fork and start-up: not part of any setup's latency */
    w.ctrl_fd = ctrl_fd;
    {
        /* Microsecond timers (timerfd): open-loop calls leave when they are due, not at the next
         * millisecond tick. */
        struct event_config *ec = event_config_new();
        event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
        /* Coalesce the per-request EV_WRITE add/remove into one epoll_ctl per loop turn. */
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w.base = event_base_new_with_config(ec);
        event_config_free(ec);
        /* Three priorities: held streams' ends first (0), everything else at the default (1),
         * held streams' notifications last (2): client.c. */
        if (w.base)
            event_base_priority_init(w.base, 3);
    }
    w.ctrl_in = evbuffer_new();
    w.nsessions = share(cfg->sessions, k, idx);
    w.nall = w.nsessions + (idx == 0 && cfg->notes_rate > 0 ? 1 : 0);
    w.sessions = xcalloc(w.nall, sizeof(*w.sessions));
    w.alive = xcalloc(w.nsessions ? w.nsessions : 1, sizeof(*w.alive));
    w.ramp_rate = cfg->ramp_per_s / k;
    w.rate = cfg->rate_per_s / k;
    w.max_conns = share(cfg->concurrency, k, idx);
    if (w.max_conns == 0)
        w.max_conns = 1;
    w.closed_n = w.max_conns;
    if (cfg->nsrc) {
        /* Addresses i with i % K == idx; with fewer addresses than workers, share one. */
        w.srcs = xcalloc(cfg->nsrc, sizeof(*w.srcs));
        for (uint32_t i = idx; i < cfg->nsrc; i += k)
            w.srcs[w.nsrc++] = i;
        if (!w.nsrc)
            w.srcs[w.nsrc++] = idx % cfg->nsrc;
    }
    w.lat = mcpgw_lathist_new();
    w.setup = mcpgw_lathist_new();
    build_echo(&w);
    if (cfg->subscribe[0]) {
        snprintf(w.note_uri, sizeof(w.note_uri), "\"mcpgw://notes/%s\"", cfg->subscribe);
        snprintf(w.note_uri_esc, sizeof(w.note_uri_esc), "\"mcpgw:\\/\\/notes\\/%s\"",
                 cfg->subscribe);
    }
    if (w.nall > w.nsessions) {
        w.writer = &w.sessions[w.nsessions];
        w.writer->writer = 1;
        w.writer_rate = cfg->notes_rate;
    }

    w.ctrl_ev = event_new(w.base, ctrl_fd, EV_READ | EV_PERSIST, on_ctrl, &w);
    /* With held streams' ends (client.c): a fault's notice is read before what it caused. */
    event_priority_set(w.ctrl_ev, 0);
    event_add(w.ctrl_ev, NULL);
    w.tick_ev = evtimer_new(w.base, on_tick, &w);
    schedule_tick(&w);
    w.ramp_ev = evtimer_new(w.base, on_ramp, &w);
    if (w.writer)
        mcpgw_lgsession_start(&w, w.writer, mcpgw_now_us());
    if (w.nall == 0)
        send_ready(&w);
    on_ramp(-1, 0, &w);

    event_base_dispatch(w.base);
    return w.exit_code;
}
