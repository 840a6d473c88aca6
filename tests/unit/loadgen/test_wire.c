/* test_wire.c - parent <-> worker frames: round trips, partial frames, refused headers. */
#include "loadgen/lathist.h"
#include "loadgen/wire.h"
#include "tests/unit/check-run.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_wire_tick_round_trips_with_histograms)
{
    struct evbuffer *b = evbuffer_new();
    struct mcpgw_wire_tick t, u;
    struct mcpgw_lathist *lat = mcpgw_lathist_new(), *setup = mcpgw_lathist_new();
    struct mcpgw_lathist *lat2 = mcpgw_lathist_new(), *setup2 = mcpgw_lathist_new();
    unsigned char *p;
    uint32_t worker, len;
    int type;
    memset(&t, 0, sizeof(t));
    t.sec = 42;
    t.c[LG_C_REQ_OK] = 1234;
    t.g[LG_G_STREAMS_OPEN] = 99;
    t.writer_first = 5;
    t.writer_last = 17;
    mcpgw_lathist_record(lat, 250);
    mcpgw_lathist_record(lat, 90000);
    mcpgw_lathist_record(setup, 3000);
    mcpgw_wire_put_tick(b, 3, &t, lat, setup);
    ck_assert_int_eq(mcpgw_wire_take(b, &type, &worker, &p, &len), 1);
    ck_assert_int_eq(type, MCPGW_WIRE_TICK);
    ck_assert_uint_eq(worker, 3);
    ck_assert_int_eq(mcpgw_wire_get_tick(p, len, &u, lat2, setup2), 0);
    ck_assert_uint_eq(u.sec, 42);
    ck_assert_uint_eq(u.c[LG_C_REQ_OK], 1234);
    ck_assert_uint_eq(u.g[LG_G_STREAMS_OPEN], 99);
    ck_assert_uint_eq(u.writer_last, 17);
    ck_assert_uint_eq(mcpgw_lathist_count(lat2), 2);
    ck_assert_uint_eq(mcpgw_lathist_max(lat2), 90000);
    ck_assert_uint_eq(mcpgw_lathist_count(setup2), 1);
    ck_assert_int_eq(mcpgw_wire_get_tick(p, len - 1, &u, lat2, setup2), -1);
    free(p);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);
    evbuffer_free(b);
    mcpgw_lathist_free(lat);
    mcpgw_lathist_free(setup);
    mcpgw_lathist_free(lat2);
    mcpgw_lathist_free(setup2);
}
END_TEST

START_TEST(test_wire_final_round_trips_nodes_and_drills)
{
    struct evbuffer *b = evbuffer_new();
    struct mcpgw_wire_final f, g;
    struct mcpgw_lathist *rec[MCPGW_WIRE_MAX_DRILLS], *rec2[MCPGW_WIRE_MAX_DRILLS];
    unsigned char *p;
    uint32_t worker, len;
    int type;
    for (int i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++) {
        rec[i] = mcpgw_lathist_new();
        rec2[i] = mcpgw_lathist_new();
    }
    memset(&f, 0, sizeof(f));
    f.subscribers = 10;
    f.expected = 100;
    f.received = 98;
    f.lost = 2;
    f.nnodes = 2;
    strcpy(f.nodes[0].name, "n1");
    f.nodes[0].established = 7;
    strcpy(f.nodes[1].name, "n2");
    f.nodes[1].alive = 3;
    f.ndrills = 1;
    f.drills[0].affected = 4;
    f.drills[0].first_err_us = 111;
    mcpgw_lathist_record(rec[0], 2500000);
    mcpgw_wire_put_final(b, 1, &f, rec);
    ck_assert_int_eq(mcpgw_wire_take(b, &type, &worker, &p, &len), 1);
    ck_assert_int_eq(type, MCPGW_WIRE_FINAL);
    ck_assert_int_eq(mcpgw_wire_get_final(p, len, &g, rec2, MCPGW_WIRE_MAX_DRILLS), 0);
    ck_assert_uint_eq(g.received, 98);
    ck_assert_uint_eq(g.nnodes, 2);
    ck_assert_str_eq(g.nodes[1].name, "n2");
    ck_assert_uint_eq(g.nodes[1].alive, 3);
    ck_assert_uint_eq(g.drills[0].affected, 4);
    ck_assert_uint_eq(g.drills[0].first_err_us, 111);
    ck_assert_uint_eq(mcpgw_lathist_max(rec2[0]), 2500000);
    ck_assert_int_eq(mcpgw_wire_get_final(p, len, &g, rec2, 0), -1); /* no room for drills */
    free(p);
    evbuffer_free(b);
    for (int i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++) {
        mcpgw_lathist_free(rec[i]);
        mcpgw_lathist_free(rec2[i]);
    }
}
END_TEST

START_TEST(test_wire_take_waits_for_a_complete_frame)
{
    struct evbuffer *b = evbuffer_new(), *all = evbuffer_new();
    struct mcpgw_wire_cmd c = {7, 9}, d;
    unsigned char *p, tmp[64];
    uint32_t worker, len;
    int type;
    size_t n;
    mcpgw_wire_put_cmd(all, MCPGW_WIRE_FAULT, 2, &c);
    n = evbuffer_remove(all, tmp, sizeof(tmp));
    evbuffer_add(b, tmp, n - 1);
    ck_assert_int_eq(mcpgw_wire_take(b, &type, &worker, &p, &len), 0);
    evbuffer_add(b, tmp + n - 1, 1);
    ck_assert_int_eq(mcpgw_wire_take(b, &type, &worker, &p, &len), 1);
    ck_assert_int_eq(type, MCPGW_WIRE_FAULT);
    ck_assert_int_eq(mcpgw_wire_get_cmd(p, len, &d), 0);
    ck_assert_uint_eq(d.a, 7);
    ck_assert_uint_eq(d.b, 9);
    free(p);
    evbuffer_free(b);
    evbuffer_free(all);
}
END_TEST

START_TEST(test_wire_take_refuses_bad_magic_version_type_and_length)
{
    unsigned char h[MCPGW_WIRE_HDR];
    unsigned char *p;
    uint32_t worker, len, v;
    int type;
    for (int which = 0; which < 4; which++) {
        struct evbuffer *b = evbuffer_new();
        mcpgw_wire_header(b, MCPGW_WIRE_STOP, 0, 0);
        evbuffer_remove(b, h, sizeof(h));
        if (which == 0)
            h[0] ^= 1;
        if (which == 1)
            h[4] = 9;
        if (which == 2)
            h[6] = MCPGW_WIRE_TYPE_COUNT;
        if (which == 3) {
            v = MCPGW_WIRE_MAX + 1;
            memcpy(h + 12, &v, 4);
        }
        evbuffer_add(b, h, sizeof(h));
        ck_assert_int_eq(mcpgw_wire_take(b, &type, &worker, &p, &len), -1);
        evbuffer_free(b);
    }
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_wire_tick_round_trips_with_histograms,
                            test_wire_final_round_trips_nodes_and_drills,
                            test_wire_take_waits_for_a_complete_frame,
                            test_wire_take_refuses_bad_magic_version_type_and_length};
    return mcpgw_check_run("wire", "wire", tests, sizeof(tests) / sizeof(tests[0]));
}
