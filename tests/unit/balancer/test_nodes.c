/* test_nodes.c - one worker's node view (balancer/nodes.c) over a real shared table and real
 * loopback listeners: the choice of a node (by session, by load, leaving tried ones out),
 * passive marks and what lifts them, a refused node reported down from the loop (never from
 * inside the call that found it), table changes seen on refresh, and the 503 causes. */
#include "balancer/nodes.h"

#include "balancer/config.h"
#include "balancer/membership.h"
#include "balancer/shared.h"
#include "common/util.h"

#include "tests/unit/check-run.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx {
    struct event_base *base;
    struct mcpgw_bal_config cfg;
    struct mcpgw_bal_shared *sh;
    struct mcpgw_bal_nodes *nodes;
    int lfd[3];
    int port[3];
    /* what the view told the worker */
    int changed[8], marked[8], down[8], refused_flag[8];
};

static void on_changed(void *arg, int slot)
{
    ((struct fx *)arg)->changed[slot]++;
}

static void on_marked(void *arg, int slot)
{
    ((struct fx *)arg)->marked[slot]++;
}

static void on_down(void *arg, int slot, int refused)
{
    struct fx *f = arg;
    f->down[slot]++;
    f->refused_flag[slot] = refused;
}

static const struct mcpgw_bal_nodes_cb cb = {on_changed, on_marked, on_down};

static int listen_any(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void publish(struct fx *f, const char *const *ids, const int *ports, int n)
{
    struct mcpgw_bal_node_spec spec[3];
    char err[256];
    memset(spec, 0, sizeof(spec));
    for (int i = 0; i < n; i++) {
        snprintf(spec[i].id, sizeof(spec[i].id), "%s", ids[i]);
        snprintf(spec[i].addr, sizeof(spec[i].addr), "127.0.0.1:%d", ports[i]);
    }
    ck_assert_msg(mcpgw_bal_membership_publish(f->sh, spec, n, err, sizeof(err)) == 0, "%s", err);
}

/* n1 and n2 listening; a third port nothing listens at (for n3, a dead node). */
static void setup(struct fx *f)
{
    static const char *const ids[] = {"n1", "n2"};
    char err[256];
    memset(f, 0, sizeof(*f));
    mcpgw_bal_config_defaults(&f->cfg);
    f->cfg.workers = 1;
    f->base = event_base_new();
    f->sh = mcpgw_bal_shared_new(err, sizeof(err));
    ck_assert_ptr_nonnull(f->sh);
    for (int i = 0; i < 3; i++)
        f->lfd[i] = listen_any(&f->port[i]);
    close(f->lfd[2]);
    f->lfd[2] = -1;
    publish(f, ids, f->port, 2);
    f->nodes = mcpgw_bal_nodes_new(f->base, &f->cfg, f->sh, 0, &cb, f);
    ck_assert_ptr_nonnull(f->nodes);
}

static void teardown(struct fx *f)
{
    mcpgw_bal_nodes_free(f->nodes);
    for (int i = 0; i < 3; i++)
        if (f->lfd[i] >= 0)
            close(f->lfd[i]);
    event_base_free(f->base);
    mcpgw_bal_shared_free(f->sh);
}

static void run_for(struct fx *f, unsigned ms)
{
    uint64_t end = mcpgw_now_ms() + ms;
    while (mcpgw_now_ms() < end) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        usleep(500);
    }
}

static int slot_of(struct fx *f, const char *id)
{
    for (int i = 0; i < mcpgw_bal_nodes_count(f->nodes); i++)
        if (strcmp(mcpgw_bal_nodes_id(f->nodes, i), id) == 0)
            return i;
    return -1;
}

START_TEST(test_nodes_a_session_goes_to_the_node_its_id_names)
{
    struct fx f;
    setup(&f);
    ck_assert_int_eq(mcpgw_bal_nodes_pick(f.nodes, "n2.abc", 6, 0), slot_of(&f, "n2"));
    ck_assert_int_eq(mcpgw_bal_nodes_pick(f.nodes, "n1.xyz", 6, 0), slot_of(&f, "n1"));
    /* a session pick is not a new session: nothing counted as assigned */
    ck_assert_uint_eq(mcpgw_bal_nodes_stats(f.nodes, 0)->assigned, 0);
    ck_assert_uint_eq(mcpgw_bal_nodes_stats(f.nodes, 1)->assigned, 0);
    teardown(&f);
}
END_TEST

START_TEST(test_nodes_new_sessions_spread_by_load_and_skip_tried_nodes)
{
    struct fx f;
    int got[2] = {0, 0}, s1;
    setup(&f);
    for (int i = 0; i < 10; i++) {
        int slot = mcpgw_bal_nodes_pick(f.nodes, NULL, 0, 0);
        ck_assert(slot == 0 || slot == 1);
        got[slot]++;
    }
    ck_assert_int_eq(got[0], 5);
    ck_assert_int_eq(got[1], 5);
    ck_assert_uint_eq(mcpgw_bal_nodes_stats(f.nodes, 0)->assigned, 5);
    s1 = slot_of(&f, "n1");
    for (int i = 0; i < 4; i++)
        ck_assert_int_ne(mcpgw_bal_nodes_pick(f.nodes, NULL, 0, 1ull << s1), s1);
    ck_assert_int_eq(mcpgw_bal_nodes_pick(f.nodes, NULL, 0, 3), -1);
    teardown(&f);
}
END_TEST

START_TEST(test_nodes_a_passive_mark_holds_until_newer_evidence)
{
    struct fx f;
    int s1;
    setup(&f);
    s1 = slot_of(&f, "n1");
    ck_assert(mcpgw_bal_nodes_usable(f.nodes, s1));
    mcpgw_bal_nodes_mark_down(f.nodes, s1, "test");
    mcpgw_bal_nodes_mark_down(f.nodes, s1, "test again");
    ck_assert_int_eq(f.marked[s1], 1); /* told once */
    ck_assert_uint_eq(mcpgw_bal_nodes_stats(f.nodes, s1)->errors, 2);
    ck_assert(!mcpgw_bal_nodes_usable(f.nodes, s1));
    ck_assert(mcpgw_bal_nodes_failed(f.nodes, s1));
    ck_assert_int_eq(mcpgw_bal_nodes_pick(f.nodes, "n1.abc", 6, 0) == s1, 0);
    /* its listener accepts: the probe finds it alive, nothing is reported down */
    run_for(&f, 200);
    ck_assert_int_eq(f.down[s1], 0);
    /* a passing check older than the mark does not lift it; a newer one does */
    MCPGW_STORE(&f.sh->slots[s1].pass_ms, mcpgw_now_ms() - 60000);
    ck_assert(!mcpgw_bal_nodes_usable(f.nodes, s1));
    MCPGW_STORE(&f.sh->slots[s1].pass_ms, mcpgw_now_ms() + 1);
    ck_assert(mcpgw_bal_nodes_usable(f.nodes, s1));
    ck_assert(!mcpgw_bal_nodes_passive(f.nodes, s1));
    teardown(&f);
}
END_TEST

START_TEST(test_nodes_a_refused_node_is_reported_down_from_the_loop)
{
    static const char *const ids[] = {"n1", "n3"};
    struct fx f;
    int ports[2], s3;
    setup(&f);
    ports[0] = f.port[0];
    ports[1] = f.port[2]; /* nothing listens there */
    publish(&f, ids, ports, 2);
    mcpgw_bal_nodes_refresh(f.nodes);
    s3 = slot_of(&f, "n3");
    ck_assert_int_ge(s3, 0);
    mcpgw_bal_nodes_mark_down(f.nodes, s3, "reset");
    ck_assert_int_eq(f.down[s3], 0); /* not from inside the caller */
    run_for(&f, 200);
    ck_assert_int_eq(f.down[s3], 1);
    ck_assert_int_eq(f.refused_flag[s3], 1);
    /* the same for a refusal the caller saw itself */
    mcpgw_bal_nodes_refused(f.nodes, s3);
    ck_assert_int_eq(f.down[s3], 1);
    run_for(&f, 50);
    ck_assert_int_eq(f.down[s3], 2);
    teardown(&f);
}
END_TEST

START_TEST(test_nodes_refresh_reports_changed_and_down_slots)
{
    static const char *const ids[] = {"n1", "n9"};
    struct fx f;
    int s1, s2;
    setup(&f);
    s1 = slot_of(&f, "n1");
    s2 = slot_of(&f, "n2");
    mcpgw_bal_nodes_refresh(f.nodes); /* nothing changed yet */
    ck_assert_int_eq(f.changed[s1] + f.changed[s2], 0);
    publish(&f, ids, f.port, 2);        /* n2 leaves, n9 comes (takes a slot) */
    ck_assert_int_eq(f.changed[s2], 0); /* only on refresh */
    mcpgw_bal_nodes_refresh(f.nodes);
    ck_assert_int_eq(f.changed[s1], 0);
    ck_assert_int_eq(slot_of(&f, "n2"), -1);
    ck_assert_int_ge(slot_of(&f, "n9"), 0);
    ck_assert_int_ge(f.changed[s2] + f.changed[slot_of(&f, "n9")], 1);
    /* the table says n1 is down after it said up: down(slot, 0) on the next refresh */
    MCPGW_STORE(&f.sh->slots[s1].up, 0);
    mcpgw_bal_nodes_refresh(f.nodes);
    ck_assert_int_eq(f.down[s1], 1);
    ck_assert_int_eq(f.refused_flag[s1], 0);
    mcpgw_bal_nodes_refresh(f.nodes); /* told once */
    ck_assert_int_eq(f.down[s1], 1);
    teardown(&f);
}
END_TEST

START_TEST(test_nodes_cause_says_why_no_node_took_a_request)
{
    struct fx f;
    char buf[256];
    setup(&f);
    mcpgw_bal_nodes_cause(f.nodes, "Connection refused", buf, sizeof(buf));
    ck_assert_str_eq(buf,
                     "no MCP node could be reached (2 of 2 up; last error: Connection refused)");
    MCPGW_STORE(&f.sh->slots[0].up, 0);
    MCPGW_STORE(&f.sh->slots[1].up, 0);
    mcpgw_bal_nodes_cause(f.nodes, NULL, buf, sizeof(buf));
    ck_assert_str_eq(buf, "no MCP node is up (0 of 2)");
    publish(&f, NULL, NULL, 0);
    mcpgw_bal_nodes_refresh(f.nodes);
    mcpgw_bal_nodes_cause(f.nodes, NULL, buf, sizeof(buf));
    ck_assert_str_eq(buf, "no MCP node is configured");
    ck_assert_int_eq(mcpgw_bal_nodes_pick(f.nodes, NULL, 0, 0), -1);
    teardown(&f);
}
END_TEST

START_TEST(test_nodes_connect_reaches_the_node_listener)
{
    struct fx f;
    int pending, fd, afd = -1;
    uint64_t end;
    setup(&f);
    fd = mcpgw_bal_nodes_connect(f.nodes, slot_of(&f, "n2"), &pending);
    ck_assert_int_ge(fd, 0);
    end = mcpgw_now_ms() + 5000;
    while (afd < 0 && mcpgw_now_ms() < end) {
        afd = accept(f.lfd[1], NULL, NULL);
        if (afd < 0)
            usleep(1000);
    }
    ck_assert_int_ge(afd, 0); /* n2's own listener took it */
    close(afd);
    close(fd);
    teardown(&f);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_nodes_a_session_goes_to_the_node_its_id_names,
        test_nodes_new_sessions_spread_by_load_and_skip_tried_nodes,
        test_nodes_a_passive_mark_holds_until_newer_evidence,
        test_nodes_a_refused_node_is_reported_down_from_the_loop,
        test_nodes_refresh_reports_changed_and_down_slots,
        test_nodes_cause_says_why_no_node_took_a_request,
        test_nodes_connect_reaches_the_node_listener,
    };
    return mcpgw_check_run("nodes", "worker view", tests, sizeof(tests) / sizeof(tests[0]));
}
