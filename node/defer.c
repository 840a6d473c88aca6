/* defer.c - replies that wait for the store (see defer.h). */
#include "node/defer.h"

#include "common/httpd.h"
#include "common/jscan.h"
#include "common/util.h"
#include "common/jsonrpc.h"
#include "node/authz.h"
#include "node/frame.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void mcpgw_defer_result(struct mcpgw_defer *d, json_object *result)
{
    struct mcpgw_session *s = mcpgw_defer_session(d);
    struct mcpgw_http_conn *conn = mcpgw_defer_conn(d);
    if (conn && d->era26) {
        mcpgw_msg_complete26(result, d->era26_ttl_ms);
        if (d->era26_ttl_ms >= 0 && mcpgw_authz_active(d->n->cfg.authz))
            /* authorization rules decide who may read it: never shared across principals */
            json_object_object_add(result, "cacheScope", json_object_new_string("private"));
    }
    if (conn)
        mcpgw_frame_result(d->n, conn, s, d->id, result);
    else
        json_object_put(result);
    mcpgw_defer_free(d);
}

void mcpgw_defer_result_raw(struct mcpgw_defer *d, const char *result, size_t len)
{
    struct mcpgw_session *s;
    struct mcpgw_http_conn *conn;
    if (d->era26 || !d->id) {
        struct json_tokener *tok = json_tokener_new_ex(MCPGW_JSCAN_MAX_DEPTH + 1);
        json_object *r = json_tokener_parse_ex(tok, result, (int)len);
        json_tokener_free(tok);
        mcpgw_defer_result(d, r ? r : json_object_new_object());
        return;
    }
    s = mcpgw_defer_session(d);
    if ((conn = mcpgw_defer_conn(d)))
        mcpgw_frame_result_raw(d->n, conn, s, d->id, result, len);
    mcpgw_defer_free(d);
}

void mcpgw_defer_error(struct mcpgw_defer *d, int code, const char *message)
{
    struct mcpgw_session *s = mcpgw_defer_session(d);
    struct mcpgw_http_conn *conn = mcpgw_defer_conn(d);
    if (d->era26 && code == MCPGW_JSONRPC_RESOURCE_NOT_FOUND)
        code = MCPGW_JSONRPC_INVALID_PARAMS; /* the 2026-07-28 code for an unknown resource */
    if (conn)
        mcpgw_frame_error(d->n, conn, s, 200, d->id, code, message);
    mcpgw_defer_free(d);
}
