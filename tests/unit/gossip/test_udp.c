/* test_udp.c - Check suite for gossip/udp.c, the gossip socket with a key ring: what it lets
 * through to the protocol and what it refuses and counts, over real UDP sockets on 127.0.0.1;
 * and whole members (swim.c) rotating keys without a restart. */
#include "gossip/keyring.h"
#include "gossip/swim.h"
#include "gossip/udp.h"
#include "gossip/wire.h"

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

#define KEY_OLD "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_NEW "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define KEY_ODD "5555555555555555555555555555555555555555555555555555555555555555"

static struct event_base *base;

static struct mcpgw_gossip_keyring *ring_of(const char *text)
{
    char err[256];
    struct mcpgw_gossip_keyring *r =
        mcpgw_gossip_keyring_parse(text, strlen(text), "test", err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

/* Run the loop until *counter reaches want or timeout_ms pass; returns whether it did. */
static int run_until_count(const uint64_t *counter, uint64_t want, int timeout_ms)
{
    uint64_t deadline = mcpgw_now_ms() + (uint64_t)timeout_ms;
    struct timeval tick = {0, 2000};
    while (*counter < want && mcpgw_now_ms() < deadline) {
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
    return *counter >= want;
}

static void run_for(int ms)
{
    uint64_t never = 0;
    run_until_count(&never, 1, ms);
}

/* ---- the socket alone, fed by a meddler ---- */

struct sink {
    uint64_t msgs;
    char last_sender[MCPGW_GOSSIP_MAX_ID + 1];
};

static void on_msg(void *arg, const struct mcpgw_gossip_msg *msg,
                   const struct sockaddr_storage *src, socklen_t srclen)
{
    struct sink *s = arg;
    s->msgs++;
    snprintf(s->last_sender, sizeof(s->last_sender), "%s", msg->hdr.sender);
}

static void on_unreachable(void *arg, const struct mcpgw_gossip_addr *a)
{
}

static struct mcpgw_gossip_udp *udp_new(struct sink *s, const char *ring_text)
{
    struct mcpgw_gossip_udp_config c = {.bind_addr = "127.0.0.1:0",
                                        .max_senders = 16,
                                        .max_clock_skew_ms = 30000,
                                        .on_msg = on_msg,
                                        .on_unreachable = on_unreachable,
                                        .arg = s};
    struct mcpgw_gossip_addr self;
    char err[256];
    struct mcpgw_gossip_udp *u = mcpgw_gossip_udp_new(base, &c, &self, err, sizeof(err));
    ck_assert_msg(u != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_gossip_udp_start(u), 0);
    if (ring_text)
        mcpgw_gossip_udp_set_keyring(u, ring_of(ring_text));
    return u;
}

/* A version-1 GOSSIP datagram from sender (generation gen) saying member "victim" is dead. */
static int death_notice(uint8_t *buf, const char *sender, uint64_t gen)
{
    static struct mcpgw_gossip_msg m;
    int n;
    memset(&m, 0, sizeof(m));
    m.hdr.type = MCPGW_GOSSIP_GOSSIP;
    m.hdr.sender_generation = gen;
    snprintf(m.hdr.sender, sizeof(m.hdr.sender), "%s", sender);
    m.nupdates = 1;
    snprintf(m.updates[0].id, sizeof(m.updates[0].id), "victim");
    m.updates[0].state = MCPGW_MEMBER_DEAD;
    m.updates[0].generation = 1;
    m.updates[0].addr.family = 4;
    memcpy(m.updates[0].addr.ip, "\x7f\x00\x00\x01", 4);
    m.updates[0].addr.port = 9;
    n = mcpgw_gossip_wire_encode(&m, buf, MCPGW_GOSSIP_MAX_PACKET);
    ck_assert_int_gt(n, 0);
    return n;
}

/* The same, sealed with the first key of ring_text at this counter and send time. */
static int sealed_notice(uint8_t *out, const char *ring_text, const char *sender, uint64_t gen,
                         uint64_t counter, uint64_t sent_ms)
{
    uint8_t plain[MCPGW_GOSSIP_MAX_PACKET];
    struct mcpgw_gossip_keyring *r = ring_of(ring_text);
    struct mcpgw_gossip_envelope env = {.salt = 7, .counter = counter, .sent_ms = sent_ms};
    int n = death_notice(plain, sender, gen);
    n = mcpgw_gossip_keyring_seal(r, &env, plain, (size_t)n, out, MCPGW_GOSSIP_MAX_PACKET);
    ck_assert_int_gt(n, 0);
    mcpgw_gossip_keyring_free(r);
    return n;
}

static int meddler(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_to(int fd, int port, const uint8_t *buf, size_t n)
{
    struct sockaddr_in to = {.sin_family = AF_INET};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)port);
    ck_assert_int_eq(sendto(fd, buf, n, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)n);
}

/* Send one datagram and wait until the socket has either passed it on or refused it. */
static void deliver(struct mcpgw_gossip_udp *u, struct sink *s, int fd, const uint8_t *buf,
                    size_t n)
{
    const struct mcpgw_gossip_stats *st = mcpgw_gossip_udp_stats(u);
    uint64_t seen = s->msgs, settled = st->received + s->msgs;
    for (int r = 0; r < MCPGW_GOSSIP_REFUSED_COUNT; r++)
        settled += st->refused[r];
    send_to(fd, mcpgw_gossip_udp_port(u), buf, n);
    for (int i = 0; i < 500; i++) {
        uint64_t now = st->received + s->msgs;
        for (int r = 0; r < MCPGW_GOSSIP_REFUSED_COUNT; r++)
            now += st->refused[r];
        if (now > settled)
            break;
        run_for(2);
    }
    (void)seen;
}

START_TEST(test_keyed_socket_passes_a_fresh_sealed_datagram_and_refuses_the_rest_counting_each)
{
    struct sink s = {0};
    struct mcpgw_gossip_udp *u = udp_new(&s, KEY_OLD "\n" KEY_NEW);
    const struct mcpgw_gossip_stats *st = mcpgw_gossip_udp_stats(u);
    uint8_t good[MCPGW_GOSSIP_MAX_PACKET], bad[MCPGW_GOSSIP_MAX_PACKET];
    uint64_t now = mcpgw_wall_ms();
    int fd = meddler(), n;

    /* good: sealed with a key of the ring (the second one: receiving uses them all) */
    n = sealed_notice(good, KEY_NEW, "n9", 100, 5000, now);
    deliver(u, &s, fd, good, (size_t)n);
    ck_assert_uint_eq(s.msgs, 1);
    ck_assert_str_eq(s.last_sender, "n9");
    ck_assert_uint_eq(st->received, 1);

    /* the same datagram again: replayed */
    deliver(u, &s, fd, good, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_REPLAYED], 1);

    /* one byte of the ciphertext altered: forged */
    memcpy(bad, good, (size_t)n);
    bad[MCPGW_GOSSIP_ENVELOPE_HDR + 3] ^= 0x20;
    deliver(u, &s, fd, bad, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_FORGED], 1);

    /* the counter in the authenticated header raised to dodge the window: forged */
    memcpy(bad, good, (size_t)n);
    bad[17] ^= 0x01;
    deliver(u, &s, fd, bad, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_FORGED], 2);

    /* truncated: forged */
    deliver(u, &s, fd, good, (size_t)n - 1);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_FORGED], 3);

    /* a key we do not hold: no_key */
    n = sealed_notice(bad, KEY_ODD, "n9", 100, 5001, now);
    deliver(u, &s, fd, bad, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_NO_KEY], 1);

    /* authentic but sent 31 s ago (or 31 s ahead of our clock): stale */
    n = sealed_notice(bad, KEY_OLD, "n9", 100, 5002, now - 31000);
    deliver(u, &s, fd, bad, (size_t)n);
    n = sealed_notice(bad, KEY_OLD, "n9", 100, 5003, now + 31000);
    deliver(u, &s, fd, bad, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_STALE], 2);

    /* unauthenticated version 1 to a member with keys: wrong_version */
    n = death_notice(bad, "n9", 100);
    deliver(u, &s, fd, bad, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_VERSION], 1);

    /* only the good datagram got through */
    ck_assert_uint_eq(s.msgs, 1);
    ck_assert_uint_eq(st->received, 1);

    /* the sender restarted: a new generation, its counter from a new random start */
    n = sealed_notice(good, KEY_OLD, "n9", 101, 12, now);
    deliver(u, &s, fd, good, (size_t)n);
    ck_assert_uint_eq(s.msgs, 2);
    /* and a datagram of its past life, never seen before, is refused */
    n = sealed_notice(bad, KEY_OLD, "n9", 100, 6000, now);
    deliver(u, &s, fd, bad, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_REPLAYED], 2);
    ck_assert_uint_eq(s.msgs, 2);
    close(fd);
    mcpgw_gossip_udp_free(u);
}
END_TEST

START_TEST(test_socket_without_keys_passes_version_1_and_refuses_sealed_as_no_key)
{
    struct sink s = {0};
    struct mcpgw_gossip_udp *u = udp_new(&s, NULL);
    const struct mcpgw_gossip_stats *st = mcpgw_gossip_udp_stats(u);
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    int fd = meddler(), n;
    size_t cap;

    mcpgw_gossip_udp_buf(u, &cap);
    ck_assert_uint_eq(cap, MCPGW_GOSSIP_MAX_PACKET);
    n = death_notice(buf, "n9", 100);
    deliver(u, &s, fd, buf, (size_t)n);
    ck_assert_uint_eq(s.msgs, 1);
    n = sealed_notice(buf, KEY_OLD, "n9", 100, 1, mcpgw_wall_ms());
    deliver(u, &s, fd, buf, (size_t)n);
    ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_NO_KEY], 1);
    ck_assert_uint_eq(s.msgs, 1);
    /* with keys, what the protocol encodes must leave room for the envelope */
    mcpgw_gossip_udp_set_keyring(u, ring_of(KEY_OLD));
    mcpgw_gossip_udp_buf(u, &cap);
    ck_assert_uint_eq(cap, MCPGW_GOSSIP_MAX_PACKET - MCPGW_GOSSIP_ENVELOPE_OVERHEAD);
    ck_assert_int_eq(st->keys, 1);
    close(fd);
    mcpgw_gossip_udp_free(u);
}
END_TEST

/* ---- whole members with key rings ---- */

#define N 3

struct inst {
    struct mcpgw_gossip *g;
    char id[16], ring[256];
    int bad_news; /* changes to suspect or dead seen */
};

static void on_change(void *arg, const struct mcpgw_member *m, enum mcpgw_member_state old)
{
    struct inst *in = arg;
    if (m->state == MCPGW_MEMBER_SUSPECT || m->state == MCPGW_MEMBER_DEAD)
        in->bad_news++;
}

static char dir[64];

static void write_ring(struct inst *in, const char *text)
{
    FILE *f = fopen(in->ring, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void spawn(struct inst *insts, int i, const char *ring_text)
{
    struct mcpgw_gossip_config c;
    struct inst *in = &insts[i];
    char seed[32], err[256];
    const char *seeds[1] = {seed};

    snprintf(in->id, sizeof(in->id), "m%d", i);
    snprintf(in->ring, sizeof(in->ring), "%s/%s.keys", dir, in->id);
    write_ring(in, ring_text);
    mcpgw_gossip_config_defaults(&c);
    c.period_ms = 50;
    c.probe_timeout_ms = 20;
    c.suspicion_ms = 400;
    c.join_retry_ms = 200;
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", i ? mcpgw_gossip_port(insts[0].g) : 1);
    c.node_id = in->id;
    c.bind_addr = "127.0.0.1:0";
    c.seeds = seeds;
    c.nseeds = i ? 1 : 0;
    c.keyring_path = in->ring;
    c.on_change = on_change;
    c.arg = in;
    in->g = mcpgw_gossip_new(base, &c, err, sizeof(err));
    ck_assert_msg(in->g != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_gossip_start(in->g), 0);
}

static int all_alive(struct inst *in)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            const struct mcpgw_member *m = mcpgw_gossip_member_find(in[i].g, in[j].id);
            if (!m || m->state != MCPGW_MEMBER_ALIVE)
                return 0;
        }
    return 1;
}

static int converge(struct inst *in, int timeout_ms)
{
    uint64_t deadline = mcpgw_now_ms() + (uint64_t)timeout_ms;
    while (!all_alive(in) && mcpgw_now_ms() < deadline)
        run_for(10);
    return all_alive(in);
}

static void reload(struct inst *in, const char *text)
{
    char err[256];
    write_ring(in, text);
    ck_assert_msg(mcpgw_gossip_reload_keyring(in->g, NULL, err, sizeof(err)) == 0, "%s", err);
}

static void setup_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mcpgw-udp-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void cleanup(struct inst *in)
{
    char path[128];
    for (int i = 0; i < N; i++) {
        mcpgw_gossip_free(in[i].g);
        unlink(in[i].ring);
    }
    snprintf(path, sizeof(path), "%s", dir);
    rmdir(path);
}

/* The operator's procedure, docs/gossip.md "Rotating keys": install the new key everywhere,
 * then make it primary everywhere, then remove the old one; one member at a time, with time
 * for gossip to run between members. Nobody may be suspected at any point. */
START_TEST(test_keys_rotate_without_a_restart_and_nobody_is_suspected)
{
    static const char *const steps[] = {KEY_OLD "\n" KEY_NEW "\n", KEY_NEW "\n" KEY_OLD "\n",
                                        KEY_NEW "\n"};
    struct inst in[N];

    memset(in, 0, sizeof(in));
    base = event_base_new();
    setup_dir();
    for (int i = 0; i < N; i++)
        spawn(in, i, KEY_OLD "\n");
    ck_assert(converge(in, 3000));
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < N; i++) {
            reload(&in[i], steps[s]);
            run_for(300); /* several periods: every pair probes each other */
            ck_assert_msg(all_alive(in), "step %d, member %d", s + 1, i);
        }
    for (int i = 0; i < N; i++) {
        const struct mcpgw_gossip_stats *st = mcpgw_gossip_stats(in[i].g);
        ck_assert_int_eq(in[i].bad_news, 0);
        ck_assert_int_eq(st->keys, 1);
        ck_assert_uint_eq(st->key_reloads, 3);
        ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_NO_KEY], 0);
        ck_assert_uint_eq(st->refused[MCPGW_GOSSIP_REFUSED_FORGED], 0);
    }
    cleanup(in);
    event_base_free(base);
}
END_TEST

/* The same cluster with step 1 skipped on one member: it sends with a key the others do not
 * hold yet, they refuse it (counted), and it is suspected: why the procedure has three steps. */
START_TEST(test_a_member_that_skips_installing_the_key_first_is_not_heard)
{
    struct inst in[N];
    uint64_t deadline;

    memset(in, 0, sizeof(in));
    base = event_base_new();
    setup_dir();
    for (int i = 0; i < N; i++)
        spawn(in, i, KEY_OLD "\n");
    ck_assert(converge(in, 3000));
    reload(&in[0], KEY_NEW "\n" KEY_OLD "\n");
    deadline = mcpgw_now_ms() + 3000;
    while (in[1].bad_news == 0 && mcpgw_now_ms() < deadline)
        run_for(10);
    ck_assert_int_gt(in[1].bad_news, 0);
    ck_assert_uint_gt(mcpgw_gossip_stats(in[1].g)->refused[MCPGW_GOSSIP_REFUSED_NO_KEY], 0);
    cleanup(in);
    event_base_free(base);
}
END_TEST

START_TEST(test_a_forged_version_1_death_does_not_reach_a_keyed_cluster)
{
    struct inst in[N];
    static struct mcpgw_gossip_msg m;
    uint8_t buf[MCPGW_GOSSIP_MAX_PACKET];
    const struct mcpgw_member *victim;
    int fd, n;

    memset(in, 0, sizeof(in));
    base = event_base_new();
    setup_dir();
    for (int i = 0; i < N; i++)
        spawn(in, i, KEY_OLD "\n");
    ck_assert(converge(in, 3000));
    /* exactly what would kill m1 in an unauthenticated cluster: its own record, dead, at its
     * current incarnation, told by m2 */
    victim = mcpgw_gossip_member_find(in[0].g, "m1");
    memset(&m, 0, sizeof(m));
    m.hdr.type = MCPGW_GOSSIP_GOSSIP;
    m.hdr.sender_generation = mcpgw_gossip_member_find(in[0].g, "m2")->generation;
    snprintf(m.hdr.sender, sizeof(m.hdr.sender), "m2");
    m.nupdates = 1;
    snprintf(m.updates[0].id, sizeof(m.updates[0].id), "m1");
    m.updates[0].state = MCPGW_MEMBER_DEAD;
    m.updates[0].generation = victim->generation;
    m.updates[0].incarnation = victim->incarnation + 1000;
    m.updates[0].addr.family = 4;
    memcpy(m.updates[0].addr.ip, "\x7f\x00\x00\x01", 4);
    m.updates[0].addr.port = 9;
    n = mcpgw_gossip_wire_encode(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    fd = meddler();
    for (int i = 0; i < N; i++)
        send_to(fd, mcpgw_gossip_port(in[i].g), buf, (size_t)n);
    run_for(500);
    ck_assert(all_alive(in));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(in[i].bad_news, 0);
        ck_assert_uint_eq(mcpgw_gossip_stats(in[i].g)->refused[MCPGW_GOSSIP_REFUSED_VERSION], 1);
    }
    close(fd);
    cleanup(in);
    event_base_free(base);
}
END_TEST

START_TEST(test_a_reload_that_fails_or_would_turn_authentication_off_keeps_the_ring)
{
    struct inst in[N];
    char err[256];
    const struct mcpgw_gossip_stats *st;

    memset(in, 0, sizeof(in));
    base = event_base_new();
    setup_dir();
    for (int i = 0; i < N; i++)
        spawn(in, i, KEY_OLD "\n");
    st = mcpgw_gossip_stats(in[0].g);
    write_ring(&in[0], "# emptied by mistake\n");
    ck_assert_int_eq(mcpgw_gossip_reload_keyring(in[0].g, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "refusing to turn authentication off"));
    write_ring(&in[0], "not a key\n");
    ck_assert_int_eq(mcpgw_gossip_reload_keyring(in[0].g, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "line 1"));
    ck_assert_int_eq(mcpgw_gossip_reload_keyring(in[0].g, "/nonexistent/ring", err, sizeof(err)),
                     -1);
    ck_assert_uint_eq(st->key_reload_failures, 3);
    ck_assert_int_eq(st->keys, 1);
    /* the old ring still works */
    ck_assert(converge(in, 3000));
    cleanup(in);
    event_base_free(base);
}
END_TEST

START_TEST(test_a_member_whose_key_ring_cannot_be_read_does_not_start)
{
    struct mcpgw_gossip_config c;
    char err[256];
    mcpgw_gossip_config_defaults(&c);
    c.node_id = "x";
    c.bind_addr = "127.0.0.1:0";
    c.keyring_path = "/nonexistent/ring";
    base = event_base_new();
    ck_assert_ptr_null(mcpgw_gossip_new(base, &c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "cannot open the gossip key ring /nonexistent/ring"));
    event_base_free(base);
}
END_TEST

static void setup_base(void)
{
    base = event_base_new();
}

int main(void)
{
    Suite *s = suite_create("udp");
    TCase *sock = tcase_create("socket"), *cluster = tcase_create("cluster");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(sock, setup_base, NULL);
    tcase_add_test(
        sock, test_keyed_socket_passes_a_fresh_sealed_datagram_and_refuses_the_rest_counting_each);
    tcase_add_test(sock, test_socket_without_keys_passes_version_1_and_refuses_sealed_as_no_key);
    tcase_set_timeout(cluster, 30);
    tcase_add_test(cluster, test_keys_rotate_without_a_restart_and_nobody_is_suspected);
    tcase_add_test(cluster, test_a_member_that_skips_installing_the_key_first_is_not_heard);
    tcase_add_test(cluster, test_a_forged_version_1_death_does_not_reach_a_keyed_cluster);
    tcase_add_test(cluster,
                   test_a_reload_that_fails_or_would_turn_authentication_off_keeps_the_ring);
    tcase_add_test(cluster, test_a_member_whose_key_ring_cannot_be_read_does_not_start);
    suite_add_tcase(s, sock);
    suite_add_tcase(s, cluster);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
