/* wire.c - framing and codecs of the parent <-> worker messages (see wire.h). */
#include "loadgen/wire.h"

#include "common/util.h"
#include "loadgen/lathist.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[MCPGW_WIRE_TYPE_COUNT] = {"tick", "ready", "final", "done",
                                                              "go",   "stop",  "fault", "finish"};

const char *mcpgw_wire_type_str(enum mcpgw_wire_type t)
{
    return (unsigned)t < MCPGW_WIRE_TYPE_COUNT ? type_names[t] : "?";
}

void mcpgw_wire_header(struct evbuffer *out, enum mcpgw_wire_type t, uint32_t worker, uint32_t len)
{
    unsigned char h[MCPGW_WIRE_HDR];
    uint32_t magic = MCPGW_WIRE_MAGIC;
    uint16_t version = MCPGW_WIRE_VERSION, type = (uint16_t)t;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &version, 2);
    memcpy(h + 6, &type, 2);
    memcpy(h + 8, &worker, 4);
    memcpy(h + 12, &len, 4);
    evbuffer_add(out, h, sizeof(h));
}

int mcpgw_wire_take(struct evbuffer *in, int *type, uint32_t *worker, unsigned char **payload,
                    uint32_t *len)
{
    unsigned char h[MCPGW_WIRE_HDR];
    uint32_t magic;
    uint16_t version, t;
    if (evbuffer_copyout(in, h, sizeof(h)) < (ev_ssize_t)sizeof(h))
        return 0;
    memcpy(&magic, h, 4);
    memcpy(&version, h + 4, 2);
    memcpy(&t, h + 6, 2);
    memcpy(worker, h + 8, 4);
    memcpy(len, h + 12, 4);
    if (magic != MCPGW_WIRE_MAGIC || version != MCPGW_WIRE_VERSION || t >= MCPGW_WIRE_TYPE_COUNT ||
        *len > MCPGW_WIRE_MAX)
        return -1;
    if (evbuffer_get_length(in) < sizeof(h) + *len)
        return 0;
    evbuffer_drain(in, sizeof(h));
    *payload = xmalloc(*len ? *len : 1);
    evbuffer_remove(in, *payload, *len);
    *type = t;
    return 1;
}

/* ---- payload helpers ---- */

static void put_u32(struct evbuffer *b, uint32_t v)
{
    evbuffer_add(b, &v, 4);
}

static void put_u64(struct evbuffer *b, uint64_t v)
{
    evbuffer_add(b, &v, 8);
}

struct rd {
    const unsigned char *p;
    size_t n;
    int bad;
};

static uint32_t get_u32(struct rd *r)
{
    uint32_t v = 0;
    if (r->n < 4) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 4);
    r->p += 4;
    r->n -= 4;
    return v;
}

static uint64_t get_u64(struct rd *r)
{
    uint64_t v = 0;
    if (r->n < 8) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 8);
    r->p += 8;
    r->n -= 8;
    return v;
}

static void get_hist(struct rd *r, struct mcpgw_lathist *h)
{
    long used;
    if (r->bad)
        return;
    used = mcpgw_lathist_decode_add(h, r->p, r->n);
    if (used < 0) {
        r->bad = 1;
        return;
    }
    r->p += used;
    r->n -= (size_t)used;
}

static void frame(struct evbuffer *out, enum mcpgw_wire_type t, uint32_t worker,
                  struct evbuffer *body)
{
    mcpgw_wire_header(out, t, worker, (uint32_t)evbuffer_get_length(body));
    evbuffer_add_buffer(out, body);
    evbuffer_free(body);
}

/* ---- messages ---- */

void mcpgw_wire_put_tick(struct evbuffer *out, uint32_t worker, const struct mcpgw_wire_tick *t,
                         const struct mcpgw_lathist *lat, const struct mcpgw_lathist *setup)
{
    struct evbuffer *b = evbuffer_new();
    put_u32(b, t->sec);
    put_u32(b, LG_C_COUNT);
    for (int i = 0; i < LG_C_COUNT; i++)
        put_u64(b, t->c[i]);
    put_u32(b, LG_G_COUNT);
    for (int i = 0; i < LG_G_COUNT; i++)
        put_u64(b, t->g[i]);
    put_u64(b, t->writer_first);
    put_u64(b, t->writer_last);
    mcpgw_lathist_encode(lat, b);
    mcpgw_lathist_encode(setup, b);
    frame(out, MCPGW_WIRE_TICK, worker, b);
}

int mcpgw_wire_get_tick(const unsigned char *p, uint32_t len, struct mcpgw_wire_tick *t,
                        struct mcpgw_lathist *lat, struct mcpgw_lathist *setup)
{
    struct rd r = {p, len, 0};
    memset(t, 0, sizeof(*t));
    t->sec = get_u32(&r);
    if (get_u32(&r) != LG_C_COUNT)
        return -1;
    for (int i = 0; i < LG_C_COUNT; i++)
        t->c[i] = get_u64(&r);
    if (get_u32(&r) != LG_G_COUNT)
        return -1;
    for (int i = 0; i < LG_G_COUNT; i++)
        t->g[i] = get_u64(&r);
    t->writer_first = get_u64(&r);
    t->writer_last = get_u64(&r);
    get_hist(&r, lat);
    get_hist(&r, setup);
    return r.bad || r.n ? -1 : 0;
}

void mcpgw_wire_put_final(struct evbuffer *out, uint32_t worker, const struct mcpgw_wire_final *f,
                          struct mcpgw_lathist *const *recovery)
{
    struct evbuffer *b = evbuffer_new();
    put_u64(b, f->subscribers);
    put_u64(b, f->expected);
    put_u64(b, f->received);
    put_u64(b, f->duplicated);
    put_u64(b, f->lost);
    put_u32(b, f->nnodes);
    for (uint32_t i = 0; i < f->nnodes && i < MCPGW_WIRE_MAX_NODES; i++) {
        evbuffer_add(b, f->nodes[i].name, sizeof(f->nodes[i].name));
        put_u64(b, f->nodes[i].established);
        put_u64(b, f->nodes[i].alive);
    }
    put_u32(b, f->ndrills);
    for (uint32_t i = 0; i < f->ndrills && i < MCPGW_WIRE_MAX_DRILLS; i++) {
        put_u64(b, f->drills[i].affected);
        put_u64(b, f->drills[i].recovered);
        put_u64(b, f->drills[i].lost);
        put_u64(b, f->drills[i].first_err_us);
        put_u64(b, f->drills[i].last_err_us);
        mcpgw_lathist_encode(recovery[i], b);
    }
    frame(out, MCPGW_WIRE_FINAL, worker, b);
}

int mcpgw_wire_get_final(const unsigned char *p, uint32_t len, struct mcpgw_wire_final *f,
                         struct mcpgw_lathist *const *recovery, uint32_t nrecovery)
{
    struct rd r = {p, len, 0};
    memset(f, 0, sizeof(*f));
    f->subscribers = get_u64(&r);
    f->expected = get_u64(&r);
    f->received = get_u64(&r);
    f->duplicated = get_u64(&r);
    f->lost = get_u64(&r);
    f->nnodes = get_u32(&r);
    if (f->nnodes > MCPGW_WIRE_MAX_NODES)
        return -1;
    for (uint32_t i = 0; i < f->nnodes && !r.bad; i++) {
        if (r.n < sizeof(f->nodes[i].name))
            return -1;
        memcpy(f->nodes[i].name, r.p, sizeof(f->nodes[i].name));
        f->nodes[i].name[sizeof(f->nodes[i].name) - 1] = '\0';
        r.p += sizeof(f->nodes[i].name);
        r.n -= sizeof(f->nodes[i].name);
        f->nodes[i].established = get_u64(&r);
        f->nodes[i].alive = get_u64(&r);
    }
    f->ndrills = get_u32(&r);
    if (f->ndrills > MCPGW_WIRE_MAX_DRILLS || f->ndrills > nrecovery)
        return -1;
    for (uint32_t i = 0; i < f->ndrills && !r.bad; i++) {
        f->drills[i].affected = get_u64(&r);
        f->drills[i].recovered = get_u64(&r);
        f->drills[i].lost = get_u64(&r);
        f->drills[i].first_err_us = get_u64(&r);
        f->drills[i].last_err_us = get_u64(&r);
        get_hist(&r, recovery[i]);
    }
    return r.bad || r.n ? -1 : 0;
}

void mcpgw_wire_put_cmd(struct evbuffer *out, enum mcpgw_wire_type t, uint32_t worker,
                        const struct mcpgw_wire_cmd *c)
{
    mcpgw_wire_header(out, t, worker, 16);
    put_u64(out, c->a);
    put_u64(out, c->b);
}

int mcpgw_wire_get_cmd(const unsigned char *p, uint32_t len, struct mcpgw_wire_cmd *c)
{
    struct rd r = {p, len, 0};
    c->a = get_u64(&r);
    c->b = get_u64(&r);
    return r.bad || r.n ? -1 : 0;
}
