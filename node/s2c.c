/* s2c.c - an upstream's server-to-client requests forwarded on a client call's stream (see
 * s2c.h). The call's own machinery (mcpgw_call_request) sends it, numbers it and times it out,
 * exactly as for the node's built-in sampling and elicitation tools. */
#include "node/s2c.h"

#include "common/util.h"
#include "node/bridge26.h"
#include "node/call.h"
#include "node/node-t.h"
#include "node/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fwd {
    json_object *up_id; /* the upstream's id for its request */
    char *upstream;
    mcpgw_s2c_answer_fn answer;
    void *arg;
};

static void fwd_free(void *p)
{
    struct fwd *f = p;
    if (!f)
        return;
    json_object_put(f->up_id);
    free(f->upstream);
    free(f);
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
    struct fwd *f = c->fwd;
    size_t len;
    char *json;
    c->fwd = NULL;
    c->fwd_free = NULL;
    if (!f)
        return;
    json = mcpgw_s2c_response(f->up_id, result, error, f->upstream, &len);
    f->answer(f->arg, json, len);
    free(json);
    fwd_free(f);
}

void mcpgw_s2c_forward(struct mcpgw_call *c, const char *upstream,
                       const struct mcpgw_jsonrpc_msg *m, mcpgw_s2c_answer_fn answer, void *arg)
{
    struct fwd *f = xcalloc(1, sizeof(*f));
    char why[256];
    f->up_id = json_object_get(m->id);
    f->upstream = xstrdup(upstream);
    f->answer = answer;
    f->arg = arg;
    if (!c->s || mcpgw_s2c_allowed(c->s, m->method, why, sizeof(why)) < 0) {
        send_error(f, MCPGW_JSONRPC_METHOD_NOT_FOUND, c->s ? why : "the client session is gone");
        fwd_free(f);
        return;
    }
    if (c->out_id >= 0 || c->fwd) {
        /* One client request per call at a time (the call's machinery has one slot). */
        snprintf(why, sizeof(why),
                 "%s not forwarded: another request to the client is pending on this call",
                 m->method);
        send_error(f, MCPGW_JSONRPC_INTERNAL_ERROR, why);
        fwd_free(f);
        return;
    }
    c->fwd = f;
    c->fwd_free = fwd_free;
    if (c->s->stateless)
        c->ask = mcpgw_bridge26_ask; /* a 2026-07-28 client: an input_required round */
    mcpgw_call_request(c, m->method, m->params ? json_object_get(m->params) : NULL,
                       on_client_reply);
}
