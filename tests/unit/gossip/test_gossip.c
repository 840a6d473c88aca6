/* test_gossip.c - Check suite for gossip/: the wire codec and the SWIM state machine, the
 * latter driven over real UDP sockets on 127.0.0.1 with several members in one event loop. */
#include "gossip/swim.h"
#include "gossip/wire.h"

#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- wire helpers ---- */

static void fill_update(struct mcpgw_gossip_update *u, const char *id, int state, int v6)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->id, sizeof(u->id), "%s", id);
    u->state = (uint8_t)state;
    u->flags = MCPGW_GOSSIP_F_SERVING;
    u->generation = 1700000000123ULL;
    u->incarnation = 7;
    u->sessions = 4242;
    u->addr.family = v6 ? 6 : 4;
    if (v6)
        u->addr.ip[15] = 1;
    else
        memcpy(u->addr.ip, "\x7f\x00\x00\x01", 4);
    u->addr.port = 17001;
    snprintf(u->http_addr, sizeof(u->http_addr), "127.0.0.1:18001");
}

static void fill_msg(struct mcpgw_gossip_msg *m, int type)
{
    memset(m, 0, sizeof(*m));
    m->hdr.type = (uint8_t)type;
    m->hdr.seq = 0xdeadbeef;
    m->hdr.sender_generation = 1700000000000ULL;
    m->hdr.sender_incarnation = 3;
    snprintf(m->hdr.sender, sizeof(m->hdr.sender), "n1");
    if (type == MCPGW_GOSSIP_PING || type == MCPGW_GOSSIP_PING_REQ)
        snprintf(m->hdr.target, sizeof(m->hdr.target), "n2");
    if (type == MCPGW_GOSSIP_PING_REQ) {
        m->hdr.target_addr.family = 4;
        memcpy(m->hdr.target_addr.ip, "\x7f\x00\x00\x02", 4);
        m->hdr.target_addr.port = 17002;
    }
    m->nupdates = 3;
    fill_update(&m->updates[0], "n2", MCPGW_MEMBER_SUSPECT, 0);
    fill_update(&m->updates[1], "node-with-a-longer-id.example", MCPGW_MEMBER_DRAINING, 1);
    fill_update(&m->updates[2], "n3", MCPGW_MEMBER_DEAD, 0);
    m->updates[2].http_addr[0] = '\0';
    m->updates[1].flags = MCPGW_GOSSIP_F_DRAINING;
}

static int encode(const struct mcpgw_gossip_msg *m, uint8_t *buf)
{
    int n = mcpgw_gossip_wire_encode(m, buf, MCPGW_GOSSIP_MAX_PACKET);
    ck_assert_int_gt(n, 0);
    return n;
}

/* ---- wire tests ---- */

START_TEST(test_wire_round_trips_every_message_type)
{
    for (int type = MCPGW_GOSSIP_PING; type < MCPGW_GOSSIP_MSG_TYPE_COUNT; type++) {
        static struct mcpgw_gossip_msg in, out;
        uint8_t buf[MCPGW_GOSSIP_MAX_PACKET], again[MCPGW_GOSSIP_MAX_PACKET];
        int n, n2;

        fill_msg(&in, type);
        n = encode(&in, buf);
        ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n, &out), 0);
        ck_assert_int_eq(out.hdr.version, MCPGW_GOSSIP_WIRE_VERSION);
        ck_assert_int_eq(out.hdr.type, type);
        ck_assert_uint_eq(out.hdr.seq, 0xdeadbeef);
        ck_assert_uint_eq(out.hdr.sender_generation, 1700000000000ULL);
        ck_assert_uint_eq(out.hdr.sender_incarnation, 3);
        ck_assert_str_eq(out.hdr.sender, "n1");
        ck_assert_str_eq(out.hdr.target, in.hdr.target);
        ck_assert_int_eq(out.nupdates, 3);
        for (int i = 0; i < 3; i++) {
            const struct mcpgw_gossip_update *a = &in.updates[i], *b = &out.updates[i];
            ck_assert_str_eq(a->id, b->id);
            ck_assert_str_eq(a->http_addr, b->http_addr);
            ck_assert_int_eq(a->state, b->state);
            ck_assert_int_eq(a->flags, b->flags);
            ck_assert_uint_eq(a->generation, b->generation);
            ck_assert_uint_eq(a->incarnation, b->incarnation);
            ck_assert_uint_eq(a->sessions, b->sessions);
            ck_assert(mcpgw_gossip_addr_equal(&a->addr, &b->addr));
        }
        if (type == MCPGW_GOSSIP_PING_REQ)
            ck_assert(mcpgw_gossip_addr_equal(&in.hdr.target_addr, &out.hdr.target_addr));
        n2 = encode(&out, again);
        ck_assert_int_eq(n, n2);
        ck_assert_mem_eq(buf, again, (size_t)n);
    }
}
END_TEST

START_TEST(test_wire_rejects_every_truncation)
{
    static struct mcpgw_gossip_msg in, out;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    int n;

    fill_msg(&in, MCPGW_GOSSIP_PING_REQ);
    n = encode(&in, buf);
    for (int len = 0; len < n; len++)
        ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)len, &out),
                         MCPGW_GOSSIP_WIRE_TRUNCATED);
}
END_TEST

START_TEST(test_wire_rejects_oversized_and_trailing_bytes)
{
    static struct mcpgw_gossip_msg in, out;
    static uint8_t buf[MCPGW_GOSSIP_MAX_PACKET + 64];
    int n;

    fill_msg(&in, MCPGW_GOSSIP_ACK);
    n = encode(&in, buf);
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n + 1, &out),
                     MCPGW_GOSSIP_WIRE_TRAILING);
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, MCPGW_GOSSIP_MAX_PACKET + 1, &out),
                     MCPGW_GOSSIP_WIRE_OVERSIZE);
}
END_TEST

START_TEST(test_wire_rejects_bad_version_and_unknown_type)
{
    static struct mcpgw_gossip_msg in, out;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    int n;

    fill_msg(&in, MCPGW_GOSSIP_GOSSIP);
    n = encode(&in, buf);
    buf[0] = 2;
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n, &out), MCPGW_GOSSIP_WIRE_VERSION_ERR);
    buf[0] = 0;
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n, &out), MCPGW_GOSSIP_WIRE_VERSION_ERR);
    buf[0] = MCPGW_GOSSIP_WIRE_VERSION;
    buf[1] = 0;
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n, &out), MCPGW_GOSSIP_WIRE_TYPE_ERR);
    buf[1] = MCPGW_GOSSIP_MSG_TYPE_COUNT;
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n, &out), MCPGW_GOSSIP_WIRE_TYPE_ERR);
}
END_TEST

/* Offsets in an ACK from sender "n1" with one IPv4 record about "n2" (docs/gossip.md). */
enum {
    OFF_SENDER_LEN = 18,
    OFF_COUNT = 21,
    OFF_U_ID_LEN = 22,
    OFF_U_STATE = 25,
    OFF_U_FLAGS = 26,
    OFF_U_FAMILY = 43,
    OFF_U_PORT = 48,
    OFF_U_HTTP_LEN = 50,
};

static int one_record_ack(uint8_t *buf)
{
    static struct mcpgw_gossip_msg m;
    fill_msg(&m, MCPGW_GOSSIP_ACK);
    m.nupdates = 1;
    m.updates[0].state = MCPGW_MEMBER_ALIVE;
    return encode(&m, buf);
}

START_TEST(test_wire_rejects_out_of_range_fields)
{
    static struct mcpgw_gossip_msg out;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET], bad[MCPGW_GOSSIP_MAX_PACKET];
    const struct {
        int off;
        uint8_t val;
    } cases[] = {
        {OFF_SENDER_LEN, 0},                         /* empty sender id */
        {OFF_COUNT, MCPGW_GOSSIP_MAX_UPDATES + 1},   /* too many records */
        {OFF_U_ID_LEN, 0},                           /* empty member id */
        {OFF_U_ID_LEN, MCPGW_GOSSIP_MAX_ID + 1},     /* member id too long */
        {OFF_U_ID_LEN + 1, ' '},                     /* space in an id */
        {OFF_U_ID_LEN + 1, 0x80},                    /* non-ASCII in an id */
        {OFF_U_STATE, MCPGW_MEMBER_STATE_COUNT},     /* unknown state */
        {OFF_U_FLAGS, 0x80},                         /* unknown flag */
        {OFF_U_FAMILY, 5},                           /* unknown address family */
        {OFF_U_HTTP_LEN, MCPGW_GOSSIP_MAX_HTTP + 1}, /* http address too long */
    };
    int n = one_record_ack(buf);

    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, (size_t)n, &out), 0);
    ck_assert_str_eq(out.updates[0].id, "n2");
    ck_assert_int_eq(buf[OFF_U_FAMILY], 4);
    ck_assert_int_eq(buf[OFF_U_PORT] << 8 | buf[OFF_U_PORT + 1], 17001);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        memcpy(bad, buf, (size_t)n);
        bad[cases[i].off] = cases[i].val;
        rc = mcpgw_gossip_wire_decode(bad, (size_t)n, &out);
        ck_assert_msg(rc != 0, "case %zu decoded", i);
    }
    memcpy(bad, buf, (size_t)n);
    bad[OFF_U_PORT] = bad[OFF_U_PORT + 1] = 0; /* port 0 */
    ck_assert_int_eq(mcpgw_gossip_wire_decode(bad, (size_t)n, &out), MCPGW_GOSSIP_WIRE_FIELD_ERR);
}
END_TEST

START_TEST(test_wire_encoder_stops_at_the_datagram_limit)
{
    static struct mcpgw_gossip_msg hdr, out;
    struct mcpgw_gossip_writer w;
    struct mcpgw_gossip_update u;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET * 2];
    int added = 0, rc = 0;

    fill_msg(&hdr, MCPGW_GOSSIP_SYNC);
    ck_assert_int_eq(mcpgw_gossip_wire_begin(&w, buf, sizeof(buf), &hdr.hdr), 0);
    fill_update(&u, "", MCPGW_MEMBER_ALIVE, 1);
    memset(u.id, 'i', MCPGW_GOSSIP_MAX_ID);
    memset(u.http_addr, 'h', MCPGW_GOSSIP_MAX_HTTP);
    while ((rc = mcpgw_gossip_wire_add(&w, &u)) == 0)
        added++;
    ck_assert_int_eq(rc, MCPGW_GOSSIP_WIRE_NOSPACE);
    ck_assert_int_ge(added, 5);
    ck_assert_uint_le(w.len, MCPGW_GOSSIP_MAX_PACKET);
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, w.len, &out), 0);
    ck_assert_int_eq(out.nupdates, added);

    /* the smallest records stop at the count limit */
    ck_assert_int_eq(mcpgw_gossip_wire_begin(&w, buf, sizeof(buf), &hdr.hdr), 0);
    fill_update(&u, "x", MCPGW_MEMBER_ALIVE, 0);
    u.http_addr[0] = '\0';
    for (added = 0; mcpgw_gossip_wire_add(&w, &u) == 0;)
        added++;
    ck_assert_int_eq(added, MCPGW_GOSSIP_MAX_UPDATES);
    ck_assert_int_eq(mcpgw_gossip_wire_decode(buf, w.len, &out), 0);

    /* never writes what the decoder would refuse */
    ck_assert_int_eq(mcpgw_gossip_wire_begin(&w, buf, sizeof(buf), &hdr.hdr), 0);
    u.state = MCPGW_MEMBER_STATE_COUNT;
    ck_assert_int_eq(mcpgw_gossip_wire_add(&w, &u), MCPGW_GOSSIP_WIRE_FIELD_ERR);
    fill_update(&u, "bad id", MCPGW_MEMBER_ALIVE, 0);
    ck_assert_int_eq(mcpgw_gossip_wire_add(&w, &u), MCPGW_GOSSIP_WIRE_FIELD_ERR);
    hdr.hdr.sender[0] = '\0';
    ck_assert_int_eq(mcpgw_gossip_wire_begin(&w, buf, sizeof(buf), &hdr.hdr),
                     MCPGW_GOSSIP_WIRE_FIELD_ERR);
}
END_TEST

/* ---- state machine harness: real sockets, one loop ---- */

#define MAXLOG 512

struct change {
    char id[MCPGW_GOSSIP_MAX_ID + 1];
    int state, old;
    uint64_t at_ms, generation;
    uint32_t incarnation, sessions;
    int serving;
};

struct inst {
    struct mcpgw_gossip *g;
    char id[16];
    int n;
    struct change log[MAXLOG];
};

static struct event_base *base;

static void on_change(void *arg, const struct mcpgw_member *m, enum mcpgw_member_state old)
{
    struct inst *in = arg;
    struct change *c;
    if (in->n >= MAXLOG)
        return;
    c = &in->log[in->n++];
    snprintf(c->id, sizeof(c->id), "%s", m->id);
    c->state = m->state;
    c->old = old;
    c->at_ms = mcpgw_now_ms();
    c->generation = m->generation;
    c->incarnation = m->incarnation;
    c->sessions = m->sessions;
    c->serving = m->serving;
}

static void fast_config(struct mcpgw_gossip_config *c)
{
    mcpgw_gossip_config_defaults(c);
    c->period_ms = 50;
    c->probe_timeout_ms = 20;
    c->suspicion_ms = 300;
    c->join_retry_ms = 200;
}

/* The loopback address members bind and seed on: "127.0.0.1", or "[::1]" for the IPv6 tests. */
static const char *loopback = "127.0.0.1";

static void spawn_cfg(struct inst *in, const char *id, int seed_port, struct mcpgw_gossip_config *c)
{
    char seed[32], bind[32], err[256];
    const char *seeds[1] = {seed};

    snprintf(in->id, sizeof(in->id), "%s", id);
    in->n = 0;
    snprintf(seed, sizeof(seed), "%s:%d", loopback, seed_port);
    snprintf(bind, sizeof(bind), "%s:0", loopback);
    c->node_id = in->id;
    c->bind_addr = bind;
    c->seeds = seeds;
    c->nseeds = seed_port ? 1 : 0;
    c->on_change = on_change;
    c->arg = in;
    in->g = mcpgw_gossip_new(base, c, err, sizeof(err));
    ck_assert_msg(in->g != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_gossip_start(in->g), 0);
}

static void spawn(struct inst *in, const char *id, int seed_port, int fast)
{
    struct mcpgw_gossip_config c;
    if (fast)
        fast_config(&c);
    else
        mcpgw_gossip_config_defaults(&c);
    spawn_cfg(in, id, seed_port, &c);
}

static void kill_inst(struct inst *in)
{
    mcpgw_gossip_free(in->g);
    in->g = NULL;
}

/* Run the loop until pred holds or timeout_ms pass; returns whether it holds. */
typedef int (*pred_fn)(void *arg);

static int run_until(pred_fn pred, void *arg, int timeout_ms)
{
    uint64_t deadline = mcpgw_now_ms() + (uint64_t)timeout_ms;
    struct timeval tick = {0, 5000};
    while (mcpgw_now_ms() < deadline) {
        if (pred && pred(arg))
            return 1;
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
    return pred ? pred(arg) : 1;
}

static void run_for(int ms)
{
    run_until(NULL, NULL, ms);
}

struct view_check {
    struct inst *insts;
    int n;
    const char *id; /* member to look at; NULL: every instance sees all n alive */
    int state;
};

static int state_in(struct inst *in, const char *id)
{
    const struct mcpgw_member *m = mcpgw_gossip_member_find(in->g, id);
    return m ? (int)m->state : -1;
}

static int everyone_sees(void *arg)
{
    struct view_check *v = arg;
    for (int i = 0; i < v->n; i++) {
        struct inst *in = &v->insts[i];
        if (!in->g)
            continue;
        if (v->id) {
            if (strcmp(in->id, v->id) != 0 && state_in(in, v->id) != v->state)
                return 0;
            continue;
        }
        for (int j = 0; j < v->n; j++)
            if (v->insts[j].g && state_in(in, v->insts[j].id) != MCPGW_MEMBER_ALIVE)
                return 0;
    }
    return 1;
}

static int converge(struct inst *insts, int n, int timeout_ms)
{
    struct view_check v = {insts, n, NULL, 0};
    return run_until(everyone_sees, &v, timeout_ms);
}

static int wait_state(struct inst *insts, int n, const char *id, int state, int timeout_ms)
{
    struct view_check v = {insts, n, id, state};
    return run_until(everyone_sees, &v, timeout_ms);
}

/* The first logged change of member id to state at or after from_ms, or NULL. */
static const struct change *logged(const struct inst *in, const char *id, int state,
                                   uint64_t from_ms)
{
    for (int i = 0; i < in->n; i++)
        if (strcmp(in->log[i].id, id) == 0 && in->log[i].state == state &&
            in->log[i].at_ms >= from_ms)
            return &in->log[i];
    return NULL;
}

static void setup(void)
{
    base = event_base_new();
}

static void teardown(void)
{
    event_base_free(base);
}

/* A bare UDP socket on 127.0.0.1 that plays a fake member or a meddler. */
static int test_socket(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void inject(int fd, int to_port, int type, const char *sender,
                   const struct mcpgw_gossip_update *u, int nu)
{
    static struct mcpgw_gossip_msg m;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    struct sockaddr_in to = {.sin_family = AF_INET};
    int n;

    memset(&m, 0, sizeof(m));
    m.hdr.type = (uint8_t)type;
    m.hdr.seq = 1;
    m.hdr.sender_generation = 1000;
    snprintf(m.hdr.sender, sizeof(m.hdr.sender), "%s", sender);
    m.nupdates = nu;
    memcpy(m.updates, u, (size_t)nu * sizeof(*u));
    n = mcpgw_gossip_wire_encode(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)to_port);
    ck_assert_int_eq(sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to)), n);
}

/* A record describing member m as it is seen in the view, with another state. */
static void record_of(const struct mcpgw_member *m, int state, struct mcpgw_gossip_update *u)
{
    char host[64];
    int port;
    char err[128];

    memset(u, 0, sizeof(*u));
    snprintf(u->id, sizeof(u->id), "%s", m->id);
    u->state = (uint8_t)state;
    u->flags = m->serving ? MCPGW_GOSSIP_F_SERVING : 0;
    u->generation = m->generation;
    u->incarnation = m->incarnation;
    u->sessions = m->sessions;
    ck_assert_int_eq(
        mcpgw_parse_hostport(m->gossip_addr, host, sizeof(host), &port, err, sizeof(err)), 0);
    u->addr.family = 4;
    inet_pton(AF_INET, host, u->addr.ip);
    u->addr.port = (uint16_t)port;
    snprintf(u->http_addr, sizeof(u->http_addr), "%s", m->http_addr);
}

/* ---- state machine tests ---- */

START_TEST(test_five_members_converge_through_one_seed)
{
    struct inst in[5];
    char id[8];

    spawn(&in[0], "n0", 0, 0);
    for (int i = 1; i < 5; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        spawn(&in[i], id, mcpgw_gossip_port(in[0].g), 0);
    }
    ck_assert(converge(in, 5, 3000));
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(mcpgw_gossip_member_count(in[i].g), 5);
        ck_assert(mcpgw_gossip_member_get(in[i].g, 0)->is_self);
        ck_assert_str_eq(mcpgw_gossip_self(in[i].g)->id, in[i].id);
    }
    for (int i = 0; i < 5; i++)
        kill_inst(&in[i]);
}
END_TEST

START_TEST(test_killed_member_is_dead_everywhere_within_two_seconds_with_defaults)
{
    struct inst in[5];
    char id[8];
    uint64_t killed;

    spawn(&in[0], "n0", 0, 0);
    for (int i = 1; i < 5; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        spawn(&in[i], id, mcpgw_gossip_port(in[0].g), 0);
    }
    ck_assert(converge(in, 5, 3000));
    run_for(1000);
    killed = mcpgw_now_ms();
    kill_inst(&in[3]);
    ck_assert(wait_state(in, 5, "n3", MCPGW_MEMBER_DEAD, 4000));
    for (int i = 0; i < 5; i++) {
        const struct change *c;
        if (i == 3)
            continue;
        c = logged(&in[i], "n3", MCPGW_MEMBER_DEAD, killed);
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(c->at_ms - killed < 2000, "n%d saw n3 dead after %llu ms", i,
                      (unsigned long long)(c->at_ms - killed));
        /* nobody else was suspected on the way */
        for (int j = 0; j < in[i].n; j++)
            ck_assert_msg(
                strcmp(in[i].log[j].id, "n3") == 0 || in[i].log[j].state == MCPGW_MEMBER_ALIVE,
                "n%d saw %s %s", i, in[i].log[j].id, mcpgw_member_state_str(in[i].log[j].state));
    }
    for (int i = 0; i < 5; i++)
        if (in[i].g)
            kill_inst(&in[i]);
}
END_TEST

/* A killed process leaves a closed port: the ICMP port unreachable that answers the next probe
 * is conclusive, so the member is dead at once, without waiting out a (here 10 s) suspicion. A
 * silent member that still holds its port goes through suspicion
 * (test_unrefuted_suspect_becomes_dead_after_the_suspicion_timeout). */
START_TEST(test_closed_port_is_dead_at_once_without_waiting_out_the_suspicion)
{
    struct inst in[4];
    struct mcpgw_gossip_config c;
    char id[8];
    uint64_t killed;

    loopback = _i ? "[::1]" : "127.0.0.1"; /* the same over IPv4 and IPv6 (ICMPv6) */

    for (int i = 0; i < 4; i++) {
        fast_config(&c);
        c.suspicion_ms = 10000;
        snprintf(id, sizeof(id), "n%d", i);
        spawn_cfg(&in[i], id, i ? mcpgw_gossip_port(in[0].g) : 0, &c);
    }
    ck_assert(converge(in, 4, 3000));
    killed = mcpgw_now_ms();
    kill_inst(&in[2]);
    ck_assert(wait_state(in, 4, "n2", MCPGW_MEMBER_DEAD, 3000));
    for (int i = 0; i < 4; i++) {
        const struct change *d;
        if (i == 2)
            continue;
        d = logged(&in[i], "n2", MCPGW_MEMBER_DEAD, killed);
        ck_assert_ptr_nonnull(d);
        ck_assert_msg(d->at_ms - killed < 1000, "n%d saw n2 dead after %llu ms", i,
                      (unsigned long long)(d->at_ms - killed));
    }
    for (int i = 0; i < 4; i++)
        if (in[i].g)
            kill_inst(&in[i]);
    loopback = "127.0.0.1";
}
END_TEST

START_TEST(test_an_icmp_report_taken_by_a_send_does_not_spin_the_loop)
{
    /* Two seeds with nothing listening: the join goes to both in one go. The first datagram's
     * "port unreachable" comes back at once (loopback) and leaves the socket with a pending
     * error and a queued report; the second send fails on that error and clears it, but the
     * report stays queued, so the socket polls as in error while a read finds no datagram.
     * Unless the reports are read then too, the event loop turns without pause. */
    struct inst in;
    struct mcpgw_gossip_config c;
    char s1[32], s2[32], err[256];
    const char *seeds[2] = {s1, s2};
    int p1, p2, f1 = test_socket(&p1), f2 = test_socket(&p2);
    uint64_t until;
    long turns = 0;

    close(f1);
    close(f2);
    snprintf(s1, sizeof(s1), "127.0.0.1:%d", p1);
    snprintf(s2, sizeof(s2), "127.0.0.1:%d", p2);
    fast_config(&c);
    snprintf(in.id, sizeof(in.id), "%s", "lone");
    in.n = 0;
    c.node_id = in.id;
    c.bind_addr = "127.0.0.1:0";
    c.seeds = seeds;
    c.nseeds = 2;
    c.on_change = on_change;
    c.arg = &in;
    in.g = mcpgw_gossip_new(base, &c, err, sizeof(err));
    ck_assert_msg(in.g != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_gossip_start(in.g), 0);
    /* Three join rounds (every 200 ms); a quiet loop turns a few dozen times meanwhile. */
    until = mcpgw_now_ms() + 600;
    while (mcpgw_now_ms() < until) {
        event_base_loop(base, EVLOOP_ONCE);
        turns++;
    }
    ck_assert_msg(turns < 1000, "the event loop turned %ld times in 600 ms", turns);
    kill_inst(&in);
}
END_TEST

START_TEST(test_heard_time_follows_a_live_member_and_stops_at_its_death)
{
    struct inst in[3];
    const struct mcpgw_member *m;
    uint64_t t0, last;

    spawn(&in[0], "n0", 0, 1);
    spawn(&in[1], "n1", mcpgw_gossip_port(in[0].g), 1);
    spawn(&in[2], "n2", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 3, 3000));
    t0 = mcpgw_now_ms();
    run_for(1500);
    m = mcpgw_gossip_member_find(in[0].g, "n2");
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(m->heard_ms > t0, "n2 last heard %llu ms before the window",
                  (unsigned long long)(t0 - m->heard_ms));
    ck_assert(mcpgw_gossip_self(in[0].g)->heard_ms == 0);
    kill_inst(&in[2]);
    last = mcpgw_now_ms();
    ck_assert(wait_state(in, 2, "n2", MCPGW_MEMBER_DEAD, 4000));
    m = mcpgw_gossip_member_find(in[0].g, "n2");
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(m->heard_ms <= last, "n2 heard %llu ms after it was killed",
                  (unsigned long long)(m->heard_ms - last));
    kill_inst(&in[0]);
    kill_inst(&in[1]);
}
END_TEST

START_TEST(test_suspected_member_refutes_with_a_higher_incarnation)
{
    struct inst in[2];
    struct mcpgw_gossip_update u;
    const struct mcpgw_member *b;
    uint32_t inc;
    int fd, port;

    spawn(&in[0], "a", 0, 1);
    spawn(&in[1], "b", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 2, 2000));
    b = mcpgw_gossip_member_find(in[0].g, "b");
    inc = b->incarnation;
    record_of(b, MCPGW_MEMBER_SUSPECT, &u);
    fd = test_socket(&port);
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_GOSSIP, "meddler", &u, 1);
    run_for(600); /* twice the suspicion timeout */
    ck_assert_ptr_nonnull(logged(&in[0], "b", MCPGW_MEMBER_SUSPECT, 0));
    b = mcpgw_gossip_member_find(in[0].g, "b");
    ck_assert_int_eq(b->state, MCPGW_MEMBER_ALIVE);
    ck_assert_uint_gt(b->incarnation, inc);
    ck_assert_uint_eq(mcpgw_gossip_self(in[1].g)->incarnation, b->incarnation);
    ck_assert_ptr_null(logged(&in[0], "b", MCPGW_MEMBER_DEAD, 0));
    close(fd);
    kill_inst(&in[0]);
    kill_inst(&in[1]);
}
END_TEST

START_TEST(test_member_declared_dead_while_alive_refutes_and_comes_back)
{
    struct inst in[3];
    struct mcpgw_gossip_update u;
    int fd, port;

    spawn(&in[0], "a", 0, 1);
    spawn(&in[1], "b", mcpgw_gossip_port(in[0].g), 1);
    spawn(&in[2], "c", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 3, 2000));
    record_of(mcpgw_gossip_member_find(in[0].g, "b"), MCPGW_MEMBER_DEAD, &u);
    fd = test_socket(&port);
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_GOSSIP, "meddler", &u, 1);
    run_for(50);
    ck_assert(converge(in, 3, 1000));
    ck_assert_ptr_nonnull(logged(&in[0], "b", MCPGW_MEMBER_DEAD, 0));
    ck_assert_uint_gt(mcpgw_gossip_self(in[1].g)->incarnation, 0);
    close(fd);
    for (int i = 0; i < 3; i++)
        kill_inst(&in[i]);
}
END_TEST

START_TEST(test_table_pushed_at_join_only_suspects_the_members_it_calls_dead)
{
    struct inst in[2];
    struct mcpgw_gossip_update u;
    int fd, port;

    spawn(&in[0], "a", 0, 1);
    spawn(&in[1], "b", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 2, 2000));
    /* a stale view from across a partition: "b is dead" */
    record_of(mcpgw_gossip_member_find(in[0].g, "b"), MCPGW_MEMBER_DEAD, &u);
    fd = test_socket(&port);
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_JOIN, "stale", &u, 1);
    run_for(600);
    ck_assert_ptr_nonnull(logged(&in[0], "b", MCPGW_MEMBER_SUSPECT, 0));
    ck_assert_ptr_null(logged(&in[0], "b", MCPGW_MEMBER_DEAD, 0));
    ck_assert_int_eq(state_in(&in[0], "b"), MCPGW_MEMBER_ALIVE);
    close(fd);
    kill_inst(&in[0]);
    kill_inst(&in[1]);
}
END_TEST

START_TEST(test_unrefuted_suspect_becomes_dead_after_the_suspicion_timeout)
{
    struct inst in[1];
    struct mcpgw_gossip_update u;
    const struct change *s, *d;
    int fd, port;

    spawn(&in[0], "a", 0, 1);
    fd = test_socket(&port); /* a member that never answers */
    fill_update(&u, "f", MCPGW_MEMBER_ALIVE, 0);
    u.addr.port = (uint16_t)port;
    u.generation = 1000;
    u.incarnation = 0;
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_GOSSIP, "f", &u, 1);
    ck_assert(wait_state(in, 1, "f", MCPGW_MEMBER_DEAD, 2000));
    ck_assert_int_eq(in[0].log[0].old, MCPGW_MEMBER_STATE_COUNT); /* first seen */
    ck_assert_int_eq(in[0].log[0].state, MCPGW_MEMBER_ALIVE);
    s = logged(&in[0], "f", MCPGW_MEMBER_SUSPECT, 0);
    d = logged(&in[0], "f", MCPGW_MEMBER_DEAD, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->old, MCPGW_MEMBER_SUSPECT);
    ck_assert_uint_ge(d->at_ms - s->at_ms, 290);
    ck_assert_uint_le(d->at_ms - s->at_ms, 450);
    close(fd);
    kill_inst(&in[0]);
}
END_TEST

START_TEST(test_dead_member_comes_back_only_with_a_newer_generation_or_incarnation)
{
    struct inst in[1];
    struct mcpgw_gossip_update u;
    int fd, port, before;

    spawn(&in[0], "a", 0, 1);
    fd = test_socket(&port);
    fill_update(&u, "f", MCPGW_MEMBER_ALIVE, 0);
    u.addr.port = (uint16_t)port;
    u.generation = 1000;
    u.incarnation = 0;
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_GOSSIP, "f", &u, 1);
    ck_assert(wait_state(in, 1, "f", MCPGW_MEMBER_DEAD, 2000));

    /* the same life replayed: stale, ignored */
    before = in[0].n;
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_GOSSIP, "f", &u, 1);
    run_for(100);
    ck_assert_int_eq(state_in(&in[0], "f"), MCPGW_MEMBER_DEAD);
    ck_assert_int_eq(in[0].n, before);

    /* a restarted process: incarnation 0 again, but a later generation */
    u.generation = 2000;
    inject(fd, mcpgw_gossip_port(in[0].g), MCPGW_GOSSIP_GOSSIP, "f", &u, 1);
    run_for(30);
    ck_assert_int_eq(state_in(&in[0], "f"), MCPGW_MEMBER_ALIVE);
    ck_assert_int_eq(in[0].log[before].old, MCPGW_MEMBER_DEAD);
    ck_assert_uint_eq(in[0].log[before].generation, 2000);
    ck_assert_uint_eq(mcpgw_gossip_member_find(in[0].g, "f")->generation, 2000);
    close(fd);
    kill_inst(&in[0]);
}
END_TEST

START_TEST(test_restarted_process_with_the_same_id_is_alive_again_everywhere)
{
    struct inst in[3];
    uint64_t gen;

    spawn(&in[0], "a", 0, 1);
    spawn(&in[1], "b", mcpgw_gossip_port(in[0].g), 1);
    spawn(&in[2], "c", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 3, 2000));
    gen = mcpgw_gossip_self(in[2].g)->generation;
    kill_inst(&in[2]);
    ck_assert(wait_state(in, 3, "c", MCPGW_MEMBER_DEAD, 2000));
    spawn(&in[2], "c", mcpgw_gossip_port(in[1].g), 1); /* new port, incarnation 0 */
    ck_assert_uint_gt(mcpgw_gossip_self(in[2].g)->generation, gen);
    ck_assert_uint_eq(mcpgw_gossip_self(in[2].g)->incarnation, 0);
    ck_assert(converge(in, 3, 2000));
    ck_assert_uint_gt(mcpgw_gossip_member_find(in[0].g, "c")->generation, gen);
    for (int i = 0; i < 3; i++)
        kill_inst(&in[i]);
}
END_TEST

START_TEST(test_draining_and_leave_reach_every_member_and_are_not_deaths)
{
    struct inst in[4];
    uint64_t t0;

    spawn(&in[0], "a", 0, 1);
    for (int i = 1; i < 4; i++)
        spawn(&in[i], i == 1 ? "b" : i == 2 ? "c" : "d", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 4, 2000));
    t0 = mcpgw_now_ms();
    mcpgw_gossip_set_draining(in[3].g);
    ck_assert(wait_state(in, 4, "d", MCPGW_MEMBER_DRAINING, 500));
    ck_assert_uint_lt(mcpgw_now_ms() - t0, 100); /* announced at once, not piggybacked */
    ck_assert(mcpgw_gossip_member_find(in[0].g, "d")->draining);
    run_for(300); /* draining members are still probed and stay draining */
    ck_assert(wait_state(in, 4, "d", MCPGW_MEMBER_DRAINING, 10));

    mcpgw_gossip_leave(in[3].g);
    kill_inst(&in[3]); /* at once, as a node does: the leave went out directly */
    ck_assert(wait_state(in, 4, "d", MCPGW_MEMBER_LEFT, 500));
    run_for(1000); /* longer than detection would take */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(state_in(&in[i], "d"), MCPGW_MEMBER_LEFT);
        ck_assert_ptr_null(logged(&in[i], "d", MCPGW_MEMBER_SUSPECT, 0));
        ck_assert_ptr_null(logged(&in[i], "d", MCPGW_MEMBER_DEAD, 0));
    }
    for (int i = 0; i < 3; i++)
        kill_inst(&in[i]);
}
END_TEST

static int sees_sessions(void *arg)
{
    struct inst *in = arg;
    const struct mcpgw_member *m = mcpgw_gossip_member_find(in[0].g, "b");
    return m && m->sessions == 42;
}

START_TEST(test_session_count_and_non_serving_flag_are_disseminated)
{
    struct inst in[2];
    struct mcpgw_gossip_config c;
    const struct mcpgw_member *m;

    spawn(&in[0], "a", 0, 1);
    fast_config(&c);
    c.serving = 0;
    c.http_addr = "127.0.0.1:18500";
    spawn_cfg(&in[1], "b", mcpgw_gossip_port(in[0].g), &c);
    ck_assert(converge(in, 2, 2000));
    m = mcpgw_gossip_member_find(in[0].g, "b");
    ck_assert_int_eq(m->serving, 0);
    ck_assert_str_eq(m->http_addr, "127.0.0.1:18500");
    ck_assert_int_eq(mcpgw_gossip_member_find(in[1].g, "a")->serving, 1);
    for (uint32_t i = 0; i <= 42; i++) /* changes coalesce */
        mcpgw_gossip_set_sessions(in[1].g, i);
    ck_assert(run_until(sees_sessions, in, 2000));
    ck_assert(logged(&in[0], "b", MCPGW_MEMBER_ALIVE, 0)->sessions <= 42);
    ck_assert_int_lt(in[0].n, 10);
    kill_inst(&in[0]);
    kill_inst(&in[1]);
}
END_TEST

START_TEST(test_member_started_before_its_seed_joins_when_the_seed_appears)
{
    struct inst in[2];
    struct mcpgw_gossip_config c;
    char err[256];

    /* bind the seed's socket first to learn its port, start it later */
    fast_config(&c);
    snprintf(in[1].id, sizeof(in[1].id), "seed");
    in[1].n = 0;
    c.node_id = "seed";
    c.bind_addr = "127.0.0.1:0";
    c.on_change = on_change;
    c.arg = &in[1];
    in[1].g = mcpgw_gossip_new(base, &c, err, sizeof(err));
    ck_assert_ptr_nonnull(in[1].g);
    spawn(&in[0], "late", mcpgw_gossip_port(in[1].g), 1);
    run_for(500);
    ck_assert_int_eq(mcpgw_gossip_member_count(in[0].g), 1);
    ck_assert_int_eq(mcpgw_gossip_start(in[1].g), 0);
    ck_assert(converge(in, 2, 1000));
    kill_inst(&in[0]);
    kill_inst(&in[1]);
}
END_TEST

START_TEST(test_garbage_datagrams_do_not_disturb_membership)
{
    struct inst in[2];
    uint8_t junk[1500];
    struct sockaddr_in to = {.sin_family = AF_INET};
    int fd, port;

    spawn(&in[0], "a", 0, 1);
    spawn(&in[1], "b", mcpgw_gossip_port(in[0].g), 1);
    ck_assert(converge(in, 2, 2000));
    fd = test_socket(&port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)mcpgw_gossip_port(in[0].g));
    srand(1);
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rand() % (int)sizeof(junk));
        for (size_t j = 0; j < n; j++)
            junk[j] = (uint8_t)rand();
        if (i % 2)
            junk[0] = MCPGW_GOSSIP_WIRE_VERSION;
        sendto(fd, junk, n, 0, (struct sockaddr *)&to, sizeof(to));
        if (i % 100 == 0)
            run_for(5);
    }
    run_for(300);
    ck_assert(converge(in, 2, 10));
    ck_assert_int_eq(mcpgw_gossip_member_count(in[0].g), 2);
    close(fd);
    kill_inst(&in[0]);
    kill_inst(&in[1]);
}
END_TEST

START_TEST(test_bad_configuration_is_refused_with_a_sentence)
{
    struct mcpgw_gossip_config c;
    char err[256];

    mcpgw_gossip_config_defaults(&c);
    c.node_id = "n1";
    c.bind_addr = "0.0.0.0:0";
    ck_assert_ptr_null(mcpgw_gossip_new(base, &c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "advertise"));
    c.bind_addr = "127.0.0.1:0";
    c.probe_timeout_ms = c.period_ms;
    ck_assert_ptr_null(mcpgw_gossip_new(base, &c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "probe timeout"));
    mcpgw_gossip_config_defaults(&c);
    c.node_id = "has space";
    c.bind_addr = "127.0.0.1:0";
    ck_assert_ptr_null(mcpgw_gossip_new(base, &c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "node id"));
    c.node_id = "n1";
    c.bind_addr = "127.0.0.1";
    ck_assert_ptr_null(mcpgw_gossip_new(base, &c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "port"));
}
END_TEST

static Suite *gossip_suite(void)
{
    Suite *s = suite_create("gossip");
    TCase *wire = tcase_create("wire");
    TCase *swim = tcase_create("swim");

    tcase_add_test(wire, test_wire_round_trips_every_message_type);
    tcase_add_test(wire, test_wire_rejects_every_truncation);
    tcase_add_test(wire, test_wire_rejects_oversized_and_trailing_bytes);
    tcase_add_test(wire, test_wire_rejects_bad_version_and_unknown_type);
    tcase_add_test(wire, test_wire_rejects_out_of_range_fields);
    tcase_add_test(wire, test_wire_encoder_stops_at_the_datagram_limit);
    suite_add_tcase(s, wire);

    tcase_add_checked_fixture(swim, setup, teardown);
    tcase_set_timeout(swim, 20);
    tcase_add_test(swim, test_five_members_converge_through_one_seed);
    tcase_add_test(swim, test_killed_member_is_dead_everywhere_within_two_seconds_with_defaults);
    tcase_add_loop_test(swim, test_closed_port_is_dead_at_once_without_waiting_out_the_suspicion, 0,
                        2);
    tcase_add_test(swim, test_an_icmp_report_taken_by_a_send_does_not_spin_the_loop);
    tcase_add_test(swim, test_heard_time_follows_a_live_member_and_stops_at_its_death);
    tcase_add_test(swim, test_suspected_member_refutes_with_a_higher_incarnation);
    tcase_add_test(swim, test_member_declared_dead_while_alive_refutes_and_comes_back);
    tcase_add_test(swim, test_table_pushed_at_join_only_suspects_the_members_it_calls_dead);
    tcase_add_test(swim, test_unrefuted_suspect_becomes_dead_after_the_suspicion_timeout);
    tcase_add_test(swim, test_dead_member_comes_back_only_with_a_newer_generation_or_incarnation);
    tcase_add_test(swim, test_restarted_process_with_the_same_id_is_alive_again_everywhere);
    tcase_add_test(swim, test_draining_and_leave_reach_every_member_and_are_not_deaths);
    tcase_add_test(swim, test_session_count_and_non_serving_flag_are_disseminated);
    tcase_add_test(swim, test_member_started_before_its_seed_joins_when_the_seed_appears);
    tcase_add_test(swim, test_garbage_datagrams_do_not_disturb_membership);
    tcase_add_test(swim, test_bad_configuration_is_refused_with_a_sentence);
    suite_add_tcase(s, swim);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gossip_suite());
    int failed;

    mcpgw_log_set_level(MCPGW_LOG_WARN);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
