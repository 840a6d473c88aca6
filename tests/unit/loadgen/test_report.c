/* test_report.c - the JSON and HTML reports rendered from fixed figures, compared byte for byte
 * with golden files, so a change to the report code that alters its output is seen. When the
 * output is meant to change, regenerate the golden files with MCPGW_UPDATE_GOLDEN=1 and review
 * the diff. */
#include "loadgen/lathist.h"
#include "loadgen/report.h"
#include "tests/unit/check-run.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSECS 12

static struct mcpgw_lg_config cfg;
static struct mcpgw_lg_result res;
static struct mcpgw_lg_sec secs[NSECS];

static void add_moment(double t, const char *label)
{
    res.moments[res.nmoments].t_s = t;
    snprintf(res.moments[res.nmoments].label, sizeof(res.moments[0].label), "%s", label);
    res.nmoments++;
}

/* A run with every section present: open loop, streams, notifications, nodes, processes, a
 * performed and a failed drill, marks on the plots, and an abort. */
static void fill_full(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(&res, 0, sizeof(res));
    memset(secs, 0, sizeof(secs));
    snprintf(cfg.url, sizeof(cfg.url), "http://127.0.0.1:8080/mcp?a=<b>&c");
    cfg.sessions = 40;
    cfg.ramp_per_s = 20;
    cfg.duration_ms = 8000;
    cfg.rate_per_s = 250;
    cfg.concurrency = 8;
    cfg.payload = 64;
    cfg.get_streams = 1;
    snprintf(cfg.subscribe, sizeof(cfg.subscribe), "note-1");
    cfg.notes_rate = 2.5;
    cfg.workers = 2;
    cfg.nsrc = 2;
    inet_pton(AF_INET, "127.0.0.2", &cfg.src[0].sin_addr);
    inet_pton(AF_INET, "127.0.0.3", &cfg.src[1].sin_addr);
    cfg.timeout_ms = 5000;
    cfg.retries = 2;
    snprintf(cfg.protocol_version, sizeof(cfg.protocol_version), "2025-06-18");
    cfg.ndrills = 2;
    snprintf(cfg.drills[0].spec, sizeof(cfg.drills[0].spec), "kill:n2@3s");
    snprintf(cfg.drills[1].spec, sizeof(cfg.drills[1].spec), "stop:n3@20s+1s");

    res.cfg = &cfg;
    snprintf(res.started_at, sizeof(res.started_at), "2026-01-02T03:04:05Z");
    res.t0_us = 1000000;
    res.ready_us = 3000000;
    res.go_us = 3000000;
    res.stop_us = 11000000;
    res.end_us = 11500000;
    res.page_size = 4096;
    res.slab_kb_start = 100000;
    res.tcp_inuse_start = 10;
    for (int i = 0; i < LG_C_COUNT; i++)
        res.c[i] = 100 + (uint64_t)i * 7;
    res.c[LG_C_SESS_ESTABLISHED] = 39;
    res.c[LG_C_REQ_OK] = 1987;
    res.lat = mcpgw_lathist_new();
    res.setup = mcpgw_lathist_new();
    for (uint64_t i = 1; i <= 2000; i++)
        mcpgw_lathist_record(res.lat, 200 + (i * 37) % 9000);
    for (uint64_t i = 1; i <= 40; i++)
        mcpgw_lathist_record(res.setup, 1500 + i * 113);
    for (uint32_t s = 0; s < NSECS; s++) {
        struct mcpgw_lg_sec *x = &secs[s];
        for (int i = 0; i < LG_C_COUNT; i++)
            x->c[i] = s * 3 + (uint64_t)i;
        for (int i = 0; i < LG_G_COUNT; i++)
            x->g[i] = s + (uint64_t)i * 2;
        x->c[LG_C_REQ_OK] = s < 2 || s == 6 ? 0 : 240 + s;
        x->c[LG_C_REQ_FAILED] = s == 6 ? 5 : 0;
        x->p50 = 900 + s * 10;
        x->p90 = 1500 + s * 20;
        x->p99 = s == 6 || s == 7 ? 90000 : 2500 + s * 30;
        x->p999 = 4000 + s * 40;
        x->max = 7000 + s * 333;
        x->tcp_mem_pages = s == 3 ? 0 : 50 + s;
        x->rss_kb = s == 3 ? 0 : 20000 + s * 100;
        x->reports = s == 0 ? 0 : 2;
    }
    res.secs = secs;
    res.nsecs = NSECS;
    res.subscribers = 40;
    res.expected = 640;
    res.received = 637;
    res.duplicated = 1;
    res.lost = 3;
    res.writer_first = 1;
    res.writer_last = 16;
    res.nnodes = 3;
    for (uint32_t i = 0; i < 3; i++) {
        snprintf(res.nodes[i].name, sizeof(res.nodes[i].name), "n%u", i + 1);
        res.nodes[i].established = 13 + i;
        res.nodes[i].alive = 12 + i;
    }
    res.peak.t_s = 7.4;
    res.peak.sessions_open = 39;
    res.peak.streams_open = 38;
    res.peak.client_sockets = 50;
    res.peak.slab_kb = 104000;
    res.peak.ss = (struct mcpgw_sockstat){130, 1, 4, 140, 77};
    res.peak.nprocs = 3;
    /* Shared library pages (RssFile) count once: the node's 8000 kB, not 8000 + 6000. */
    res.peak.procs[0] = (struct mcpgw_proc_sample){4001, 1, "mcpgw-node", "n1", 30000, 31000, 8000};
    res.peak.procs[1] =
        (struct mcpgw_proc_sample){4002, 1, "mcpgw-balancer", "<lb&1>", 9000, 9500, 6000};
    res.peak.procs[2] = (struct mcpgw_proc_sample){4003, 1, "mcpgw-loadgen", "", 60000, 61000};
    res.ndrills = 2;
    res.drills[0].d = cfg.drills[0];
    res.drills[0].d.kind = MCPGW_DRILL_KILL;
    snprintf(res.drills[0].d.target, sizeof(res.drills[0].d.target), "n2");
    res.drills[0].performed = 1;
    res.drills[0].pid = 4005;
    res.drills[0].at_s = 5.0;
    res.drills[0].fault_us = 6000000;
    res.drills[0].affected = 13;
    res.drills[0].recovered = 12;
    res.drills[0].lost = 1;
    res.drills[0].first_err_us = 6010000;
    res.drills[0].last_err_us = 6420000;
    res.drills[0].recovery = mcpgw_lathist_new();
    for (uint64_t i = 1; i <= 12; i++)
        mcpgw_lathist_record(res.drills[0].recovery, 100000 + i * 17000);
    res.drills[1].d = cfg.drills[1];
    res.drills[1].d.kind = MCPGW_DRILL_STOP;
    snprintf(res.drills[1].d.target, sizeof(res.drills[1].d.target), "n3");
    snprintf(res.drills[1].error, sizeof(res.drills[1].error), "no node <n3> & none like it");
    res.drills[1].recovery = mcpgw_lathist_new();
    add_moment(0, "ramp starts");
    add_moment(2.0, "sessions ready");
    add_moment(2.0, "load starts");
    add_moment(5.0, "kill:n2 \"now\"");
    add_moment(10.0, "load ends");
    res.aborted = 1;
    snprintf(res.abort_reason, sizeof(res.abort_reason), "a worker stopped answering");
}

/* The barest run: closed loop, nothing optional, no seconds measured. */
static void fill_bare(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(&res, 0, sizeof(res));
    snprintf(cfg.url, sizeof(cfg.url), "http://localhost:9/mcp");
    cfg.sessions = 1;
    cfg.ramp_per_s = 1;
    cfg.duration_ms = 1000;
    cfg.closed_loop = 1;
    cfg.concurrency = 1;
    cfg.workers = 1;
    snprintf(cfg.protocol_version, sizeof(cfg.protocol_version), "2025-03-26");
    res.cfg = &cfg;
    snprintf(res.started_at, sizeof(res.started_at), "2026-01-02T03:04:05Z");
    res.page_size = 4096;
    res.slab_kb_start = -1;
    res.tcp_inuse_start = -1;
    res.peak.slab_kb = -1;
    res.lat = mcpgw_lathist_new();
    res.setup = mcpgw_lathist_new();
}

static void release(void)
{
    mcpgw_lathist_free(res.lat);
    mcpgw_lathist_free(res.setup);
    for (uint32_t i = 0; i < res.ndrills; i++)
        mcpgw_lathist_free(res.drills[i].recovery);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Render one report to a temporary file and compare it with golden/NAME (or, with
 * MCPGW_UPDATE_GOLDEN set, write it there). */
static void check_golden(int (*render)(const char *, const struct mcpgw_lg_result *, char *,
                                       size_t),
                         const char *name)
{
    char tmp[] = "/tmp/mcpgw-report-XXXXXX", golden[1024], err[256] = "";
    int fd = mkstemp(tmp);
    size_t glen, olen;
    char *g, *o;
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(render(tmp, &res, err, sizeof(err)) == 0, "%s: %s", name, err);
    snprintf(golden, sizeof(golden), "%s/%s", MCPGW_REPORT_GOLDEN_DIR, name);
    o = slurp(tmp, &olen);
    unlink(tmp);
    if (getenv("MCPGW_UPDATE_GOLDEN")) {
        FILE *f = fopen(golden, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(o, 1, olen, f), olen);
        fclose(f);
    }
    g = slurp(golden, &glen);
    ck_assert_msg(olen == glen && memcmp(o, g, olen) == 0, "%s differs from %s (%zu vs %zu bytes)",
                  name, golden, olen, glen);
    free(o);
    free(g);
}

START_TEST(test_report_full_run_matches_golden)
{
    fill_full();
    check_golden(mcpgw_report_json, "full.json");
    check_golden(mcpgw_report_html, "full.html");
    release();
}
END_TEST

START_TEST(test_report_bare_run_matches_golden)
{
    fill_bare();
    check_golden(mcpgw_report_json, "bare.json");
    check_golden(mcpgw_report_html, "bare.html");
    release();
}
END_TEST

START_TEST(test_report_unwritable_path_is_a_clear_error)
{
    char err[256] = "";
    fill_bare();
    ck_assert_int_eq(mcpgw_report_json("/nonexistent-dir/r.json", &res, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/r.json"));
    err[0] = '\0';
    ck_assert_int_eq(mcpgw_report_html("/nonexistent-dir/r.html", &res, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/r.html"));
    release();
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_report_full_run_matches_golden,
                            test_report_bare_run_matches_golden,
                            test_report_unwritable_path_is_a_clear_error};
    return mcpgw_check_run("report", "report", tests, sizeof(tests) / sizeof(tests[0]));
}
