/* rdecode.c - decoding what the Redis store reads back; see rdecode.h. */
#include "node/rdecode.h"

#include "common/util.h"
#include "node/proto.h"

#include <stdlib.h>
#include <string.h>

#if HIREDIS_MAJOR >= 1
void mcpgw_rdecode_cap_reader(redisReader *r)
{
    r->maxelements = MCPGW_RDECODE_MAX_ELEMENTS;
}
#else
/* Every reader of this process shares hiredis's default reply functions; the capped copy wraps
 * their array constructor (set up once: the node is one thread). */
static redisReplyObjectFunctions capped;
static void *(*create_array)(const redisReadTask *task, int elements);

static void *capped_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > MCPGW_RDECODE_MAX_ELEMENTS)
        return NULL; /* the reader reports it as out of memory: the connection fails */
    return create_array(task, elements);
}

void mcpgw_rdecode_cap_reader(redisReader *r)
{
    if (!create_array && r->fn) {
        capped = *r->fn;
        create_array = r->fn->createArray;
        capped.createArray = capped_array;
    }
    if (r->fn && r->fn->createArray == create_array)
        r->fn = &capped;
}
#endif

static const char *hget(const redisReply *hash, const char *field)
{
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (hash->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(hash->element[i]->str, field) == 0 &&
            hash->element[i + 1]->type == REDIS_REPLY_STRING)
            return hash->element[i + 1]->str;
    return NULL;
}

static const char *hget_or(const redisReply *hash, const char *field, const char *dflt)
{
    const char *v = hget(hash, field);
    return v ? v : dflt;
}

int mcpgw_rdecode_claim(const redisReply *reply, const char *sid, struct mcpgw_session **out,
                        const char **why)
{
    struct mcpgw_session *s;
    const redisReply *h, *subs;
    const char *v;
    *out = NULL;
    *why = NULL;
    if (reply->type == REDIS_REPLY_NIL)
        return MCPGW_STORE_GONE;
    if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "FOREIGN") == 0)
        return MCPGW_STORE_FOREIGN;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY) {
        *why = "unexpected claim reply";
        return MCPGW_STORE_UNAVAILABLE;
    }
    h = reply->element[0];
    subs = reply->element[1];
    if ((v = hget(h, "v")) == NULL || strcmp(v, MCPGW_RDECODE_RECORD_V) != 0) {
        *why = "record has an unknown format version";
        return MCPGW_STORE_GONE;
    }
    s = xcalloc(1, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", sid);
    s->proto = (uint8_t)atoi(hget_or(h, "proto", "0"));
    if (s->proto >= MCPGW_PROTO_COUNT)
        s->proto = MCPGW_PROTO_2025_11_25;
    s->client_caps = (uint8_t)atoi(hget_or(h, "caps", "0"));
    s->state = (uint8_t)atoi(hget_or(h, "state", "0"));
    if (s->state >= MCPGW_SESSION_STATE_COUNT)
        s->state = MCPGW_SESSION_READY;
    s->log_level = (int8_t)atoi(hget_or(h, "level", "-1"));
    s->epoch = strtoull(hget_or(h, "epoch", "0"), NULL, 10);
    s->client = xstrdup(hget_or(h, "client", "{}"));
    s->principal = hget(h, "pr") ? xstrdup(hget(h, "pr")) : NULL;
    for (size_t i = 0; subs->type == REDIS_REPLY_ARRAY && i < subs->elements; i++)
        if (subs->element[i]->type == REDIS_REPLY_STRING &&
            strlen(subs->element[i]->str) == subs->element[i]->len)
            mcpgw_session_sub_add(s, subs->element[i]->str);
    for (size_t i = 0; i + 1 < h->elements; i += 2) /* per-client upstream sessions */
        if (h->element[i]->type == REDIS_REPLY_STRING &&
            strncmp(h->element[i]->str, "up:", 3) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING && h->element[i + 1]->len > 0) {
            if (!s->up_state)
                s->up_state = json_object_new_object();
            json_object_object_add(s->up_state, h->element[i]->str + 3,
                                   json_object_new_string(h->element[i + 1]->str));
        }
    *out = s;
    return MCPGW_STORE_OK;
}

int mcpgw_rdecode_replay(const redisReply *reply, uint64_t *at, mcpgw_store_event_fn visit,
                         void *arg)
{
    *at = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return MCPGW_STORE_UNAVAILABLE;
    *at = strtoull(reply->element[0]->str, NULL, 10);
    for (size_t i = 1; i + 2 < reply->elements; i += 3) {
        const redisReply *id = reply->element[i], *uri = reply->element[i + 1],
                         *v = reply->element[i + 2];
        struct mcpgw_store_event ev;
        if (id->type != REDIS_REPLY_STRING || uri->type != REDIS_REPLY_STRING ||
            v->type != REDIS_REPLY_STRING || strlen(uri->str) != uri->len ||
            mcpgw_session_cluster_id_parse(id->str, id->len, &ev.g, &ev.seq) < 0)
            continue;
        ev.uri = uri->str;
        ev.version = strtoull(v->str, NULL, 10);
        visit(arg, &ev);
    }
    return MCPGW_STORE_OK;
}

int mcpgw_rdecode_task(const redisReply *reply, struct mcpgw_store_task *t)
{
    redisReply **e;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5)
        return MCPGW_STORE_UNAVAILABLE;
    e = reply->element;
    if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING)
        return MCPGW_STORE_GONE;
    memset(t, 0, sizeof(*t));
    t->status = e[0]->str;
    t->owner = e[1]->str;
    t->lease_ms = e[2]->type == REDIS_REPLY_STRING ? strtoull(e[2]->str, NULL, 10) : 0;
    t->rec = e[3]->type == REDIS_REPLY_STRING ? e[3]->str : "";
    t->version = e[4]->type == REDIS_REPLY_STRING ? strtoull(e[4]->str, NULL, 10) : 0;
    return MCPGW_STORE_OK;
}

int mcpgw_rdecode_uri_event(const char *p, size_t len, struct mcpgw_store_event *ev,
                            char uri[MCPGW_URI_MAX + 1])
{
    const char *sp1 = memchr(p, ' ', len), *sp2;
    char *end;
    size_t ulen;
    memset(ev, 0, sizeof(*ev));
    if (!sp1 || !(sp2 = memchr(sp1 + 1, ' ', (size_t)(p + len - sp1 - 1))) ||
        (ulen = (size_t)(p + len - sp2 - 1)) == 0 || ulen > MCPGW_URI_MAX ||
        memchr(sp2 + 1, '\0', ulen) ||
        mcpgw_session_cluster_id_parse(p, (size_t)(sp1 - p), &ev->g, &ev->seq) < 0)
        return -1; /* a URI with a NUL in it would be cut short: another resource's updates */
    ev->version = strtoull(sp1 + 1, &end, 10);
    if (end != sp2)
        return -1;
    memcpy(uri, sp2 + 1, ulen);
    uri[ulen] = '\0';
    ev->uri = uri;
    return 0;
}

int mcpgw_rdecode_list_event(const char *p, size_t len, struct mcpgw_store_event *ev,
                             char name[MCPGW_RDECODE_LIST_NAME_MAX])
{
    const char *sp = memchr(p, ' ', len);
    size_t klen;
    memset(ev, 0, sizeof(*ev));
    if (!sp || (klen = (size_t)(p + len - sp - 1)) == 0 || klen + 2 > MCPGW_RDECODE_LIST_NAME_MAX ||
        memchr(sp + 1, '\0', klen) ||
        mcpgw_session_cluster_id_parse(p, (size_t)(sp - p), &ev->g, &ev->seq) < 0)
        return -1;
    name[0] = MCPGW_STORE_LIST_PREFIX[0];
    memcpy(name + 1, sp + 1, klen);
    name[klen + 1] = '\0';
    ev->uri = name;
    return 0;
}
