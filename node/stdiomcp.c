/* stdiomcp.c - an MCP client session over a supervised stdio child (see stdiomcp.h). */
#include "node/stdiomcp.h"

#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/util.h"
#include "node/msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mcpgw_stdiomcp {
    struct mcpgw_upstdio *io;
    struct mcpgw_stdiomcp_cbs cbs;
    void *arg;
    char *name;
    json_object *server; /* the running child's initialize result */
    struct mcpgw_upstdio_call *init;
    int ready;
    int closing;
};

static void on_init_reply(void *arg, enum mcpgw_upstdio_err err, const char *why,
                          const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_stdiomcp *s = arg;
    char msg[300];
    size_t len;
    char *note;
    s->init = NULL;
    if (err || m->kind == MCPGW_JSONRPC_ERROR ||
        !json_object_is_type(m->result, json_type_object)) {
        if (!err)
            snprintf(msg, sizeof(msg), "upstream %s refused initialize: %.200s", s->name,
                     m->error ? json_object_to_json_string(m->error) : "no result object");
        else
            snprintf(msg, sizeof(msg), "%s", why);
        log_warn("%s", msg);
        if (s->cbs.on_ready)
            s->cbs.on_ready(s->arg, 0, msg);
        return;
    }
    json_object_put(s->server);
    s->server = json_object_get(m->result);
    note = mcpgw_jsonrpc_notification("notifications/initialized", NULL, &len);
    mcpgw_upstdio_send(s->io, note, len);
    free(note);
    s->ready = 1;
    if (s->cbs.on_ready)
        s->cbs.on_ready(s->arg, 1, NULL);
}

static void on_start(void *arg, pid_t pid)
{
    struct mcpgw_stdiomcp *s = arg;
    log_info("upstream %s: child %d started; initializing it", s->name, (int)pid);
    s->ready = 0;
    s->init = mcpgw_upstdio_request(s->io, "initialize", mcpgw_msg_upstream_initialize(),
                                    on_init_reply, s);
    if (!s->init)
        log_warn("upstream %s: could not send initialize to its new child", s->name);
}

static void on_exit_cb(void *arg, int status, long restart_in_ms)
{
    struct mcpgw_stdiomcp *s = arg;
    s->ready = 0;
    s->init = NULL; /* failed with the other calls */
    json_object_put(s->server);
    s->server = NULL;
    if (s->cbs.on_down && !s->closing)
        s->cbs.on_down(s->arg, status, restart_in_ms);
}

static void on_message(void *arg, const struct mcpgw_jsonrpc_msg *m)
{
    struct mcpgw_stdiomcp *s = arg;
    if (s->cbs.on_message && !s->closing)
        s->cbs.on_message(s->arg, m);
}

struct mcpgw_stdiomcp *mcpgw_stdiomcp_new(struct event_base *base,
                                          const struct mcpgw_upstdio_cfg *cfg,
                                          const struct mcpgw_stdiomcp_cbs *cbs, void *arg)
{
    static const struct mcpgw_upstdio_cbs io_cbs = {
        .on_start = on_start, .on_exit = on_exit_cb, .on_message = on_message};
    struct mcpgw_stdiomcp *s = xcalloc(1, sizeof(*s));
    if (cbs)
        s->cbs = *cbs;
    s->arg = arg;
    s->name = xstrdup(cfg->name ? cfg->name : "?");
    s->io = mcpgw_upstdio_new(base, cfg, &io_cbs, s);
    return s;
}

int mcpgw_stdiomcp_start(struct mcpgw_stdiomcp *s, char *err, size_t errlen)
{
    return mcpgw_upstdio_start(s->io, err, errlen);
}

static void destroy(struct mcpgw_stdiomcp *s)
{
    json_object_put(s->server);
    free(s->name);
    free(s);
}

static void on_stopped(void *arg)
{
    struct mcpgw_stdiomcp *s = arg;
    mcpgw_upstdio_free(s->io); /* deferred by upstdio while inside its callback */
    destroy(s);
}

void mcpgw_stdiomcp_close(struct mcpgw_stdiomcp *s)
{
    if (!s)
        return;
    s->closing = 1;
    s->cbs = (struct mcpgw_stdiomcp_cbs){0};
    if (s->init)
        mcpgw_upstdio_call_cancel(s->init);
    s->init = NULL;
    mcpgw_upstdio_stop(s->io, on_stopped, s);
}

void mcpgw_stdiomcp_free(struct mcpgw_stdiomcp *s)
{
    if (!s)
        return;
    mcpgw_upstdio_free(s->io);
    destroy(s);
}

void mcpgw_stdiomcp_restart(struct mcpgw_stdiomcp *s)
{
    mcpgw_upstdio_restart(s->io);
}

int mcpgw_stdiomcp_ready(const struct mcpgw_stdiomcp *s)
{
    return s->ready && mcpgw_upstdio_running(s->io);
}

json_object *mcpgw_stdiomcp_server_result(const struct mcpgw_stdiomcp *s)
{
    return s->ready ? s->server : NULL;
}

struct mcpgw_upstdio_call *mcpgw_stdiomcp_request(struct mcpgw_stdiomcp *s, const char *method,
                                                  json_object *params, mcpgw_upstdio_reply_fn reply,
                                                  void *arg)
{
    if (!mcpgw_stdiomcp_ready(s)) {
        json_object_put(params);
        return NULL;
    }
    return mcpgw_upstdio_request(s->io, method, params, reply, arg);
}

void mcpgw_stdiomcp_cancel(struct mcpgw_stdiomcp *s, struct mcpgw_upstdio_call *c, int notify,
                           const char *reason)
{
    long long id = mcpgw_upstdio_call_id(c);
    mcpgw_upstdio_call_cancel(c);
    if (notify && mcpgw_stdiomcp_ready(s)) {
        size_t len;
        char *msg = mcpgw_msg_cancelled(json_object_new_int64(id), reason, &len);
        mcpgw_upstdio_send(s->io, msg, len);
        free(msg);
    }
}

int mcpgw_stdiomcp_send(struct mcpgw_stdiomcp *s, const char *msg, size_t len)
{
    if (!mcpgw_stdiomcp_ready(s))
        return -1;
    return mcpgw_upstdio_send(s->io, msg, len);
}
