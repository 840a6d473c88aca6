/* result-t.h - what a run measured, as the parent assembled it; read by the reports. */
#ifndef MCPGW_LOADGEN_RESULT_T_H
#define MCPGW_LOADGEN_RESULT_T_H

#include "loadgen/drill.h"
#include "loadgen/opts.h"
#include "loadgen/procinfo.h"
#include "loadgen/stats.h"
#include "loadgen/wire.h"

#include <stdint.h>

struct mcpgw_lathist;

/* One second of the run (index = whole seconds since the start). */
struct mcpgw_lg_sec {
    uint64_t c[LG_C_COUNT];            /* summed over workers */
    uint64_t g[LG_G_COUNT];            /* summed over workers, at the second's end */
    uint64_t p50, p90, p99, p999, max; /* echo latency (us) of calls completed in it */
    long tcp_mem_pages;                /* /proc/net/sockstat TCP mem, sampled */
    uint64_t rss_kb;                   /* VmRSS of mcpgw processes but the load generator */
    uint32_t reports;                  /* worker ticks received for it */
};

/* A moment to mark on the plots. */
struct mcpgw_lg_moment {
    double t_s; /* since the start of the run */
    char label[96];
};

struct mcpgw_lg_drill_result {
    struct mcpgw_drill d;
    int performed;
    char error[200];
    pid_t pid;
    double at_s, resumed_at_s; /* since the start of the run; resumed_at_s 0 if none */
    uint64_t fault_us;         /* monotonic */
    uint64_t affected, recovered, lost;
    uint64_t first_err_us, last_err_us; /* monotonic, 0 if no error was seen */
    struct mcpgw_lathist *recovery;     /* per affected session: fault -> first success after
                                        its last failure */
};

#define MCPGW_LG_MAX_PROCS 128

struct mcpgw_lg_peak {
    double t_s;
    uint64_t sessions_open, streams_open;
    uint64_t client_sockets; /* the load generator's own: streams and request connections */
    long slab_kb;            /* /proc/meminfo Slab, -1 if unreadable */
    struct mcpgw_sockstat ss;
    struct mcpgw_proc_sample procs[MCPGW_LG_MAX_PROCS];
    int nprocs;
};

struct mcpgw_lg_result {
    const struct mcpgw_lg_config *cfg;
    char started_at[40]; /* wall clock, ISO 8601 UTC */
    uint64_t t0_us, ready_us, go_us, stop_us, end_us;
    long page_size;
    long slab_kb_start;   /* /proc/meminfo Slab before the first session, -1 if unreadable */
    long tcp_inuse_start; /* TCP sockets in use then (sockstat), -1 if unreadable */
    uint64_t c[LG_C_COUNT];
    struct mcpgw_lathist *lat, *setup;
    struct mcpgw_lg_sec *secs;
    uint32_t nsecs;
    uint64_t subscribers, expected, received, duplicated, lost;
    uint64_t writer_first, writer_last;
    struct mcpgw_wire_node nodes[MCPGW_WIRE_MAX_NODES];
    uint32_t nnodes;
    struct mcpgw_lg_peak peak;
    struct mcpgw_lg_drill_result drills[MCPGW_WIRE_MAX_DRILLS];
    uint32_t ndrills;
    struct mcpgw_lg_moment moments[64];
    uint32_t nmoments;
    int interrupted; /* stopped early by a signal */
    int aborted;     /* workers killed: the figures are partial */
    char abort_reason[160];
    uint32_t workers_lost; /* workers that ended without their final report */
};

#endif
