/* wire.c - encoder and bounds-checked decoder of gossip datagrams (docs/gossip.md). */
#include "gossip/wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

_Static_assert(MCPGW_GOSSIP_MAX_ID <= 255 && MCPGW_GOSSIP_MAX_HTTP <= 255,
               "string lengths are one byte on the wire");
_Static_assert(MCPGW_GOSSIP_MAX_UPDATES <= 255, "the update count is one byte on the wire");

static const char *const state_names[MCPGW_MEMBER_STATE_COUNT] = {"alive", "suspect", "dead",
                                                                  "draining", "left"};

const char *mcpgw_member_state_str(enum mcpgw_member_state s)
{
    return (unsigned)s < MCPGW_MEMBER_STATE_COUNT ? state_names[s] : "?";
}

const char *mcpgw_gossip_msg_type_str(int type)
{
    static const char *const names[MCPGW_GOSSIP_MSG_TYPE_COUNT] = {
        "?", "ping", "ack", "ping-req", "join", "sync", "gossip"};
    return type > 0 && type < MCPGW_GOSSIP_MSG_TYPE_COUNT ? names[type] : "?";
}

const char *mcpgw_gossip_wire_err_str(int err)
{
    static const char *const names[] = {
        "ok",       "truncated",          "oversize",       "bad version",
        "bad type", "field out of range", "trailing bytes", "does not fit"};
    return err <= 0 && err > MCPGW_GOSSIP_WIRE_ERR_COUNT ? names[-err] : "?";
}

/* ---- decoding: a cursor that never reads past end ---- */

struct rd {
    const uint8_t *p, *end;
};

static int need(struct rd *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n ? 0 : MCPGW_GOSSIP_WIRE_TRUNCATED;
}

static uint64_t get_be(struct rd *r, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | *r->p++;
    return v;
}

/* Printable ASCII without spaces: ids and addresses end up in logs and HTTP headers. */
static int valid_str(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* A length-prefixed string of minlen..maxlen bytes into out (maxlen+1 bytes). */
static int get_str(struct rd *r, char *out, size_t minlen, size_t maxlen)
{
    size_t n;
    if (need(r, 1))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    n = *r->p++;
    if (n < minlen || n > maxlen)
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    if (need(r, n))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    if (!valid_str((const char *)r->p, n))
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
    return 0;
}

static int get_addr(struct rd *r, struct mcpgw_gossip_addr *a)
{
    size_t n;
    memset(a, 0, sizeof(*a));
    if (need(r, 1))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    a->family = *r->p++;
    if (a->family != 4 && a->family != 6)
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    n = a->family == 4 ? 4 : 16;
    if (need(r, n + 2))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    memcpy(a->ip, r->p, n);
    r->p += n;
    a->port = (uint16_t)get_be(r, 2);
    return a->port ? 0 : MCPGW_GOSSIP_WIRE_FIELD_ERR;
}

static int get_update(struct rd *r, struct mcpgw_gossip_update *u)
{
    int rc;
    if ((rc = get_str(r, u->id, 1, MCPGW_GOSSIP_MAX_ID)))
        return rc;
    if (need(r, 1 + 1 + 8 + 4 + 4))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    u->state = *r->p++;
    u->flags = *r->p++;
    if (u->state >= MCPGW_MEMBER_STATE_COUNT || (u->flags & ~MCPGW_GOSSIP_F_ALL))
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    u->generation = get_be(r, 8);
    u->incarnation = (uint32_t)get_be(r, 4);
    u->sessions = (uint32_t)get_be(r, 4);
    if ((rc = get_addr(r, &u->addr)))
        return rc;
    return get_str(r, u->http_addr, 0, MCPGW_GOSSIP_MAX_HTTP);
}

int mcpgw_gossip_wire_decode(const uint8_t *buf, size_t len, struct mcpgw_gossip_msg *out)
{
    struct rd r = {buf, buf + len};
    struct mcpgw_gossip_hdr *h = &out->hdr;
    int rc;

    out->nupdates = 0;
    h->target[0] = '\0';
    memset(&h->target_addr, 0, sizeof(h->target_addr));
    if (len > MCPGW_GOSSIP_MAX_PACKET)
        return MCPGW_GOSSIP_WIRE_OVERSIZE;
    if (need(&r, 2))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    h->version = *r.p++;
    h->type = *r.p++;
    if (h->version != MCPGW_GOSSIP_WIRE_VERSION)
        return MCPGW_GOSSIP_WIRE_VERSION_ERR;
    if (h->type < MCPGW_GOSSIP_PING || h->type >= MCPGW_GOSSIP_MSG_TYPE_COUNT)
        return MCPGW_GOSSIP_WIRE_TYPE_ERR;
    if (need(&r, 4 + 8 + 4))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    h->seq = (uint32_t)get_be(&r, 4);
    h->sender_generation = get_be(&r, 8);
    h->sender_incarnation = (uint32_t)get_be(&r, 4);
    if ((rc = get_str(&r, h->sender, 1, MCPGW_GOSSIP_MAX_ID)))
        return rc;
    if (h->type == MCPGW_GOSSIP_PING || h->type == MCPGW_GOSSIP_PING_REQ)
        if ((rc = get_str(&r, h->target, 1, MCPGW_GOSSIP_MAX_ID)))
            return rc;
    if (h->type == MCPGW_GOSSIP_PING_REQ)
        if ((rc = get_addr(&r, &h->target_addr)))
            return rc;
    if (need(&r, 1))
        return MCPGW_GOSSIP_WIRE_TRUNCATED;
    int n = *r.p++;
    if (n > MCPGW_GOSSIP_MAX_UPDATES)
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    for (int i = 0; i < n; i++) {
        if ((rc = get_update(&r, &out->updates[i])))
            return rc;
        out->nupdates = i + 1;
    }
    return r.p == r.end ? 0 : MCPGW_GOSSIP_WIRE_TRAILING;
}

/* ---- encoding ---- */

static int room(struct mcpgw_gossip_writer *w, size_t n)
{
    return w->cap - w->len >= n ? 0 : MCPGW_GOSSIP_WIRE_NOSPACE;
}

static void put_be(struct mcpgw_gossip_writer *w, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        w->buf[w->len++] = (uint8_t)(v >> (8 * i));
}

static size_t str_size(const char *s, size_t minlen, size_t maxlen)
{
    size_t n = strnlen(s, maxlen + 1);
    return n >= minlen && n <= maxlen && valid_str(s, n) ? 1 + n : 0;
}

static void put_str(struct mcpgw_gossip_writer *w, const char *s)
{
    size_t n = strlen(s);
    w->buf[w->len++] = (uint8_t)n;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static size_t addr_size(const struct mcpgw_gossip_addr *a)
{
    if ((a->family != 4 && a->family != 6) || a->port == 0)
        return 0;
    return 1 + (a->family == 4 ? 4 : 16) + 2;
}

static void put_addr(struct mcpgw_gossip_writer *w, const struct mcpgw_gossip_addr *a)
{
    size_t n = a->family == 4 ? 4 : 16;
    w->buf[w->len++] = a->family;
    memcpy(w->buf + w->len, a->ip, n);
    w->len += n;
    put_be(w, a->port, 2);
}

int mcpgw_gossip_wire_begin(struct mcpgw_gossip_writer *w, uint8_t *buf, size_t cap,
                            const struct mcpgw_gossip_hdr *hdr)
{
    size_t sender = str_size(hdr->sender, 1, MCPGW_GOSSIP_MAX_ID), target = 0, taddr = 0;

    w->buf = buf;
    w->cap = cap < MCPGW_GOSSIP_MAX_PACKET ? cap : MCPGW_GOSSIP_MAX_PACKET;
    w->len = 0;
    w->count = 0;
    if (hdr->type < MCPGW_GOSSIP_PING || hdr->type >= MCPGW_GOSSIP_MSG_TYPE_COUNT || !sender)
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    if (hdr->type == MCPGW_GOSSIP_PING || hdr->type == MCPGW_GOSSIP_PING_REQ)
        if (!(target = str_size(hdr->target, 1, MCPGW_GOSSIP_MAX_ID)))
            return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    if (hdr->type == MCPGW_GOSSIP_PING_REQ)
        if (!(taddr = addr_size(&hdr->target_addr)))
            return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    if (room(w, 2 + 4 + 8 + 4 + sender + target + taddr + 1))
        return MCPGW_GOSSIP_WIRE_NOSPACE;
    w->buf[w->len++] = MCPGW_GOSSIP_WIRE_VERSION;
    w->buf[w->len++] = hdr->type;
    put_be(w, hdr->seq, 4);
    put_be(w, hdr->sender_generation, 8);
    put_be(w, hdr->sender_incarnation, 4);
    put_str(w, hdr->sender);
    if (target)
        put_str(w, hdr->target);
    if (taddr)
        put_addr(w, &hdr->target_addr);
    w->count_off = w->len;
    w->buf[w->len++] = 0;
    return 0;
}

int mcpgw_gossip_wire_add(struct mcpgw_gossip_writer *w, const struct mcpgw_gossip_update *u)
{
    size_t id = str_size(u->id, 1, MCPGW_GOSSIP_MAX_ID);
    size_t http = str_size(u->http_addr, 0, MCPGW_GOSSIP_MAX_HTTP);
    size_t addr = addr_size(&u->addr);

    if (!id || !http || !addr || u->state >= MCPGW_MEMBER_STATE_COUNT ||
        (u->flags & ~MCPGW_GOSSIP_F_ALL))
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    if (w->count >= MCPGW_GOSSIP_MAX_UPDATES || room(w, id + 2 + 8 + 4 + 4 + addr + http))
        return MCPGW_GOSSIP_WIRE_NOSPACE;
    put_str(w, u->id);
    w->buf[w->len++] = u->state;
    w->buf[w->len++] = u->flags;
    put_be(w, u->generation, 8);
    put_be(w, u->incarnation, 4);
    put_be(w, u->sessions, 4);
    put_addr(w, &u->addr);
    put_str(w, u->http_addr);
    w->buf[w->count_off] = (uint8_t)++w->count;
    return 0;
}

int mcpgw_gossip_wire_encode(const struct mcpgw_gossip_msg *m, uint8_t *buf, size_t cap)
{
    struct mcpgw_gossip_writer w;
    int rc;

    if (m->nupdates < 0 || m->nupdates > MCPGW_GOSSIP_MAX_UPDATES)
        return MCPGW_GOSSIP_WIRE_FIELD_ERR;
    if ((rc = mcpgw_gossip_wire_begin(&w, buf, cap, &m->hdr)))
        return rc;
    for (int i = 0; i < m->nupdates; i++)
        if ((rc = mcpgw_gossip_wire_add(&w, &m->updates[i])))
            return rc;
    return (int)w.len;
}

/* ---- addresses ---- */

int mcpgw_gossip_addr_from_sockaddr(struct mcpgw_gossip_addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        a->family = 4;
        memcpy(a->ip, &in->sin_addr, 4);
        a->port = ntohs(in->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        a->family = 6;
        memcpy(a->ip, &in6->sin6_addr, 16);
        a->port = ntohs(in6->sin6_port);
        return 0;
    }
    return -1;
}

unsigned mcpgw_gossip_addr_to_sockaddr(const struct mcpgw_gossip_addr *a,
                                       struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, a->ip, 4);
        in->sin_port = htons(a->port);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, a->ip, 16);
    in6->sin6_port = htons(a->port);
    return sizeof(*in6);
}

void mcpgw_gossip_addr_format(const struct mcpgw_gossip_addr *a, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->family == 4) {
        inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%u", ip, (unsigned)a->port);
    } else {
        inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)a->port);
    }
}

int mcpgw_gossip_addr_equal(const struct mcpgw_gossip_addr *a, const struct mcpgw_gossip_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}
