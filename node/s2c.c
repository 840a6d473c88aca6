/* s2c.c - an upstream's server-to-client requests forwarded on a client call's stream (see
 * s2c.h). The call's own machinery (mcpgw_call_request) sends it, numbers it and times it out,
 * exactly as for the node's built-in sampling and elicitation tools. */
#include "node/s2c.h"

#include "common/util.h"
#include "node/bridge26.h"
#include "node/call.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/session.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Forwarded requests of one call waiting for the client's answer, beyond which the next is
 * refused (a bound, not a queue: the upstream gets an error at once). */
#define MAX_PENDING 16

struct fwds;

/* One forwarded request. The first of a call takes the call's own slot (mcpgw_call_request:
 * its timer, its replay); the others, while it waits, are sent on the same stream under ids
 * of their own and timed here. A 2026-07-28 call's are all asked and timed by its rounds
 * (bridge26.c), listed with the others. */
struct fwd {
    struct fwd *next;
    struct fwds *set;
    json_object *up_id; /* the upstream's id for its request */
    char *upstream;
    mcpgw_s2c_answer_fn answer;
    void *arg;
    int64_t out_id;      /* the others: the id the client sees */
    struct event *timer; /* the others: the client-request timeout */
};

/* A call's forwarded requests (c->fwd). */
struct fwds {
    struct mcpgw_call *c;
    struct fwd *slot;  /* in the call's slot, or NULL */
    struct fwd *extra; /* the others */
    unsigned n;
};

static void fwd_free(struct fwd *f)
{
    if (f->timer)
        event_free(f->timer);
    json_object_put(f->up_id);
    free(f->upstream);
    free(f);
}

/* The call ends: requests still waiting are dropped (the upstream call ends with it). */
static void fwds_free(void *p)
{
    struct fwds *set = p;
    if (!set)
        return;
    if (set->slot)
        fwd_free(set->slot);
    while (set->extra) {
        struct fwd *f = set->extra;
        set->extra = f->next;
        fwd_free(f);
    }
    free(set);
}

/* f is answered (result or error from the client, both NULL: no answer in time): tell the
 * upstream and forget f. */
static void settle(struct fwd *f, json_object *result, json_object *error)
{
    struct fwds *set = f->set;
    size_t len;
    char *json = mcpgw_s2c_response(f->up_id, result, error, f->upstream, &len);
    if (set->slot == f) {
        set->slot = NULL;
    } else {
        for (struct fwd **pp = &set->extra; *pp; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
    }
    set->n--;
    f->answer(f->arg, json, len);
    free(json);
    fwd_free(f);
}

int mcpgw_s2c_allowed(const struct mcpgw_session *s, const char *method, char *why, size_t len)
{
    static const struct {
        const char *method, *cap;
        uint8_t bit;
    } need[] = {
        {"sampling/createMessage", "sampling", MCPGW_CAP_SAMPLING},
        {"elicitation/create", "elicitation", MCPGW_CAP_ELICITATION},
        {"roots/list", "roots", MCPGW_CAP_ROOTS},
    };
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(need); i++)
        if (strcmp(method, need[i].method) == 0 && !(s->client_caps & need[i].bit)) {
            snprintf(why, len, "the client did not declare the %s capability: %s not forwarded",
                     need[i].cap, method);
            return -1;
        }
    return 0;
}

char *mcpgw_s2c_response(json_object *up_id, json_object *result, json_object *error,
                         const char *upstream, size_t *len)
{
    char msg[256];
    if (result)
        return mcpgw_jsonrpc_result(up_id, json_object_get(result), len);
    if (error) {
        /* The client's own error, as it gave it. */
        json_object *code = NULL, *m = NULL, *data = NULL;
        json_object_object_get_ex(error, "code", &code);
        json_object_object_get_ex(error, "message", &m);
        json_object_object_get_ex(error, "data", &data);
        return mcpgw_jsonrpc_error(
            up_id, code ? json_object_get_int(code) : MCPGW_JSONRPC_INTERNAL_ERROR,
            m && json_object_is_type(m, json_type_string) ? json_object_get_string(m)
                                                          : "the client answered with an error",
            data ? json_object_get(data) : NULL, len);
    }
    snprintf(msg, sizeof(msg), "the client did not answer the request of upstream %s in time",
             upstream);
    return mcpgw_jsonrpc_error(up_id, MCPGW_JSONRPC_INTERNAL_ERROR, msg, NULL, len);
}

static void send_error(struct fwd *f, int code, const char *why)
{
    size_t len;
    char *json = mcpgw_jsonrpc_error(f->up_id, code, why, NULL, &len);
    f->answer(f->arg, json, len);
    free(json);
}

static void on_client_reply(struct mcpgw_call *c, json_object *result, json_object *error)
{
    struct fwds *set = c->fwd;
    if (set && set->slot)
        settle(set->slot, result, error);
}

/* A 2026-07-28 client's answer to f, through a round (bridge26.c). */
static void on_bridged(void *arg, json_object *result, json_object *error)
{
    settle(arg, result, error);
}

static void on_extra_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    settle(arg, NULL, NULL);
}

/* Send f on c's stream beside the request in the call's slot. */
static void send_extra(struct mcpgw_call *c, struct fwd *f, const struct mcpgw_jsonrpc_msg *m)
{
    struct fwds *set = c->fwd;
    uint64_t ms = c->node->cfg.client_request_timeout_ms;
    struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
    size_t len;
    char *json;
    f->next = set->extra;
    set->extra = f;
    /* Ids share the session's event sequence, as the slot's do: unique in the session. */
    f->out_id = (int64_t)mcpgw_session_next_seq(c->s);
    json = mcpgw_msg_request(f->out_id, m->method, m->params ? json_object_get(m->params) : NULL,
                             &len);
    mcpgw_call_emit(c, json, len);
    free(json);
    f->timer = evtimer_new(c->node->base, on_extra_timeout, f);
    evtimer_add(f->timer, &tv);
}

void mcpgw_s2c_forward(struct mcpgw_call *c, const char *upstream,
                       const struct mcpgw_jsonrpc_msg *m, mcpgw_s2c_answer_fn answer, void *arg)
{
    struct fwd *f = xcalloc(1, sizeof(*f));
    struct fwds *set;
    char why[256];
    f->up_id = json_object_get(m->id);
    f->upstream = xstrdup(upstream);
    f->answer = answer;
    f->arg = arg;
    f->out_id = -1;
    if (!c->s || mcpgw_s2c_allowed(c->s, m->method, why, sizeof(why)) < 0) {
        send_error(f, MCPGW_JSONRPC_METHOD_NOT_FOUND, c->s ? why : "the client session is gone");
        fwd_free(f);
        return;
    }
    if (!c->fwd && c->out_id >= 0) { /* the slot is a tool's own (not an upstream call) */
        snprintf(why, sizeof(why),
                 "%s not forwarded: another request to the client is pending on this call",
                 m->method);
        send_error(f, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        fwd_free(f);
        return;
    }
    if (!c->fwd) {
        set = xcalloc(1, sizeof(*set));
        set->c = c;
        c->fwd = set;
        c->fwd_free = fwds_free;
    }
    set = c->fwd;
    if (set->n >= MAX_PENDING) {
        snprintf(why, sizeof(why),
                 "%s not forwarded: %d requests to the client are already pending on this call",
                 m->method, MAX_PENDING);
        send_error(f, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        fwd_free(f);
        return;
    }
    f->set = set;
    set->n++;
    if (c->s->stateless) {
        /* A 2026-07-28 client: input_required rounds, each asking every request waiting. */
        f->next = set->extra;
        set->extra = f;
        mcpgw_bridge26_ask(c, m->method, m->params ? json_object_get(m->params) : NULL, on_bridged,
                           f);
        return;
    }
    if (!set->slot && c->out_id < 0) {
        set->slot = f;
        mcpgw_call_request(c, m->method, m->params ? json_object_get(m->params) : NULL,
                           on_client_reply);
        return;
    }
    send_extra(c, f, m);
}

int mcpgw_s2c_answer(struct mcpgw_session *s, const struct mcpgw_jsonrpc_msg *m)
{
    int64_t id;
    if (!json_object_is_type(m->id, json_type_int))
        return 0;
    id = json_object_get_int64(m->id);
    for (struct mcpgw_call *c = s->calls; c; c = c->next) {
        struct fwds *set = c->fwd_free == fwds_free ? c->fwd : NULL;
        for (struct fwd *f = set ? set->extra : NULL; f; f = f->next)
            if (f->out_id == id) {
                settle(f, m->result, m->kind == MCPGW_JSONRPC_ERROR ? m->error : NULL);
                return 1;
            }
    }
    return 0;
}
