/* upprin.c - per-principal holders of upstream sessions for 2026-07-28 calls (see upprin.h). */
#include "node/upprin.h"

#include "common/hash.h"
#include "common/util.h"
#include "node/node-t.h"
#include "node/proto.h"
#include "node/session.h"
#include "node/upsess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct holder {
    struct holder *next;
    struct mcpgw_session *s;
};

/* A list: one entry per principal that called a per-client upstream through this node. */
struct mcpgw_upprin {
    struct holder *list;
};

struct mcpgw_session *mcpgw_upprin_session(struct mcpgw_node *n, const char *principal)
{
    struct mcpgw_upprin *p = n->upprin;
    struct holder *h;
    struct mcpgw_session *s;
    if (!p)
        p = n->upprin = xcalloc(1, sizeof(*p));
    for (h = p->list; h; h = h->next)
        if (strcmp(h->s->principal, principal) == 0)
            return h->s;
    s = xcalloc(1, sizeof(*s));
    s->stateless = 1; /* node-local: never registered nor stored */
    s->state = MCPGW_SESSION_READY;
    s->proto = MCPGW_PROTO_2025_11_25;
    s->log_level = 8; /* nothing outside calls is passed on */
    s->principal = xstrdup(principal);
    /* What the upstream may ask during calls: each call checks its own client's capabilities. */
    s->client = xstrdup("{\"capabilities\":{\"sampling\":{},\"elicitation\":{},\"roots\":{}}}");
    /* Logs name it without the principal. */
    snprintf(s->id, sizeof(s->id), "principal-%016llx",
             (unsigned long long)mcpgw_hash64(principal, strlen(principal)));
    h = xcalloc(1, sizeof(*h));
    h->s = s;
    h->next = p->list;
    p->list = h;
    return s;
}

void mcpgw_upprin_free_all(struct mcpgw_node *n)
{
    struct mcpgw_upprin *p = n->upprin;
    if (!p)
        return;
    while (p->list) {
        struct holder *h = p->list;
        p->list = h->next;
        /* Forgotten, not closed: the loop has stopped, so a DELETE could not complete; the
         * upstream expires them as it expires any idle session. */
        mcpgw_upsess_release(n, h->s, 0);
        mcpgw_session_free(h->s);
        free(h);
    }
    free(p);
    n->upprin = NULL;
}
