/* run.c - the parent of a load-generator run (see run.h). */
#include "loadgen/run.h"

#include "common/log.h"
#include "common/net.h"
#include "common/util.h"
#include "loadgen/lathist.h"
#include "loadgen/procinfo.h"
#include "loadgen/report.h"
#include "loadgen/result-t.h"
#include "loadgen/wire.h"
#include "loadgen/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPEND 8

/* How long the grace may stretch while notifications are still arriving (or --grace, if
 * longer). */
#define GRACE_MAX_MS        30000
#define GRACE_LIMIT_MS(cfg) ((cfg)->grace_ms > GRACE_MAX_MS ? (cfg)->grace_ms : GRACE_MAX_MS)

enum phase { PH_RAMP, PH_DRIVE, PH_GRACE, PH_FINISH, PH_DONE, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {"ramp", "load", "grace", "finish", "done"};

struct wk {
    pid_t pid;
    struct bufferevent *bev;
    uint8_t ready, done, dead, has_tick, final;
    uint32_t last_sec;
    uint64_t g[LG_G_COUNT];
};

/* A second some workers have reported and others not yet. */
struct pend {
    int used;
    uint32_t sec, nrep;
    uint64_t c[LG_C_COUNT], g[LG_G_COUNT];
    struct mcpgw_lathist *h;
};

struct drill_timer {
    struct parent *p;
    uint32_t i;
    struct event *act, *resume;
};

struct parent {
    uint64_t grace_notifs; /* notifications counted at the last grace check */
    const struct mcpgw_lg_config *cfg;
    struct mcpgw_lg_result *r;
    struct event_base *base;
    struct wk *wk;
    uint32_t nw;
    enum phase phase;
    struct pend pend[NPEND];
    struct mcpgw_lathist *tmp_lat, *tmp_setup;
    struct event *sample_ev, *phase_ev, *deadline_ev, *done_ev, *sig_ev[2];
    struct drill_timer drills[MCPGW_WIRE_MAX_DRILLS];
    struct mcpgw_drill_env env;
    uint64_t ramp_deadline_us;
    uint32_t next_sample;
    int signals, tty, faulted, rescan;
    struct mcpgw_proc_sample procs[MCPGW_LG_MAX_PROCS];
    int nprocs;
    size_t progress_len;
};

static double rel_s(const struct parent *p, uint64_t us)
{
    return us > p->r->t0_us ? (double)(us - p->r->t0_us) / 1e6 : 0.0;
}

static void moment(struct parent *p, uint64_t us, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void moment(struct parent *p, uint64_t us, const char *fmt, ...)
{
    struct mcpgw_lg_result *r = p->r;
    va_list ap;
    if (r->nmoments == MCPGW_ARRAY_LEN(r->moments))
        return;
    r->moments[r->nmoments].t_s = rel_s(p, us);
    va_start(ap, fmt);
    vsnprintf(r->moments[r->nmoments].label, sizeof(r->moments[0].label), fmt, ap);
    va_end(ap);
    r->nmoments++;
}

static void timer_at(struct event *ev, uint64_t at_us)
{
    uint64_t now = mcpgw_now_us(), d = at_us > now ? at_us - now : 0;
    struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
    evtimer_add(ev, &tv);
}

/* ---- limits ---- */

static int check_limits(const struct mcpgw_lg_config *cfg, char *err, size_t errlen)
{
    struct rlimit rl;
    uint32_t k = cfg->workers, per_w_sessions = (cfg->sessions + k - 1) / k;
    uint64_t per_w_socks =
        (uint64_t)per_w_sessions * (cfg->get_streams ? 1 : 0) + (cfg->concurrency + k - 1) / k + 2;
    uint64_t ports = 28232;
    FILE *f;
    unsigned lo, hi;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* use the hard limit */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        per_w_socks + 64 > rl.rlim_cur) {
        uint64_t need = ((uint64_t)cfg->sessions * (cfg->get_streams ? 1 : 0) + cfg->concurrency) /
                            (rl.rlim_cur > 200 ? rl.rlim_cur - 200 : 1) +
                        1;
        snprintf(err, errlen,
                 "each worker would hold about %llu sockets but a process may open %llu files "
                 "(ulimit -n); use --workers %llu or more",
                 (unsigned long long)per_w_socks, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)need);
        return -1;
    }
    f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &lo, &hi) == 2 && hi >= lo)
            ports = hi - lo + 1;
        fclose(f);
    }
    {
        /* Sockets per source address: worker i uses the addresses i, i+K, ... (or i % n). */
        uint32_t nsrc = cfg->nsrc ? cfg->nsrc : 1;
        double *load = xcalloc(nsrc, sizeof(double)), worst = 0;
        uint32_t worst_i = 0;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t mine = 0;
            for (uint32_t a = i; a < cfg->nsrc; a += k)
                mine++;
            if (mine == 0) {
                load[cfg->nsrc ? i % cfg->nsrc : 0] += (double)per_w_socks;
            } else {
                for (uint32_t a = i; a < cfg->nsrc; a += k)
                    load[a] += (double)per_w_socks / mine;
            }
        }
        for (uint32_t a = 0; a < nsrc; a++)
            if (load[a] > worst) {
                worst = load[a];
                worst_i = a;
            }
        free(load);
        if (worst > (double)ports * 0.95) {
            char addr[64] = "127.0.0.1";
            if (cfg->nsrc)
                inet_ntop(AF_INET, &cfg->src[worst_i].sin_addr, addr, sizeof(addr));
            snprintf(err, errlen,
                     "about %.0f connections would come from %s to one destination, but the "
                     "local port range (net.ipv4.ip_local_port_range) has %llu ports; spread "
                     "them with --source-addrs 127.0.0.2-127.0.0.9",
                     worst, cfg->nsrc ? addr : "one address", (unsigned long long)ports);
            return -1;
        }
    }
    if (mcpgw_check_sources(cfg->src, cfg->nsrc, err, errlen) < 0)
        return -1;
    return 0;
}

/* ---- seconds ---- */

static struct mcpgw_lg_sec *sec_at(struct parent *p, uint32_t s)
{
    struct mcpgw_lg_result *r = p->r;
    if (s > 7 * 24 * 3600)
        s = 7 * 24 * 3600; /* a week: far beyond any bounded run */
    if (s >= r->nsecs) {
        uint32_t n = s + 16;
        r->secs = xrealloc(r->secs, n * sizeof(*r->secs));
        memset(r->secs + r->nsecs, 0, (n - r->nsecs) * sizeof(*r->secs));
        r->nsecs = n;
    }
    return &r->secs[s];
}

static void finalize(struct parent *p, struct pend *pd)
{
    struct mcpgw_lg_sec *x = sec_at(p, pd->sec);
    for (int i = 0; i < LG_C_COUNT; i++)
        x->c[i] += pd->c[i];
    memcpy(x->g, pd->g, sizeof(x->g));
    x->p50 = mcpgw_lathist_percentile(pd->h, 50);
    x->p90 = mcpgw_lathist_percentile(pd->h, 90);
    x->p99 = mcpgw_lathist_percentile(pd->h, 99);
    x->p999 = mcpgw_lathist_percentile(pd->h, 99.9);
    x->max = mcpgw_lathist_max(pd->h);
    x->reports = pd->nrep;
    pd->used = 0;
}

/* Close every second all live workers have reported. */
static void try_finalize(struct parent *p, int all)
{
    uint32_t upto = UINT32_MAX;
    for (uint32_t i = 0; i < p->nw && !all; i++) {
        struct wk *w = &p->wk[i];
        if (w->done || w->dead)
            continue;
        if (!w->has_tick)
            return;
        if (w->last_sec < upto)
            upto = w->last_sec;
    }
    for (int i = 0; i < NPEND; i++)
        if (p->pend[i].used && (all || p->pend[i].sec <= upto))
            finalize(p, &p->pend[i]);
}

static struct pend *pend_for(struct parent *p, uint32_t sec)
{
    struct pend *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < NPEND; i++) {
        struct pend *pd = &p->pend[i];
        if (pd->used && pd->sec == sec)
            return pd;
        if (!pd->used && !free_slot)
            free_slot = pd;
        if (pd->used && (!oldest || pd->sec < oldest->sec))
            oldest = pd;
    }
    if (!free_slot) {
        finalize(p, oldest); /* a worker lags by NPEND seconds: close its second anyway */
        free_slot = oldest;
    }
    memset(free_slot->c, 0, sizeof(free_slot->c));
    memset(free_slot->g, 0, sizeof(free_slot->g));
    mcpgw_lathist_reset(free_slot->h);
    free_slot->used = 1;
    free_slot->sec = sec;
    free_slot->nrep = 0;
    return free_slot;
}

/* ---- phases ---- */

static void send_cmd(struct parent *p, enum mcpgw_wire_type t, uint64_t a, uint64_t b)
{
    struct mcpgw_wire_cmd c = {a, b};
    for (uint32_t i = 0; i < p->nw; i++)
        if (!p->wk[i].dead && !p->wk[i].done && p->wk[i].bev)
            mcpgw_wire_put_cmd(bufferevent_get_output(p->wk[i].bev), t, i, &c);
}

static void on_drill(evutil_socket_t fd, short what, void *arg);
static void on_resume(evutil_socket_t fd, short what, void *arg);
static void on_phase(evutil_socket_t fd, short what, void *arg);

static void go(struct parent *p)
{
    struct mcpgw_lg_result *r = p->r;
    if (p->phase != PH_RAMP)
        return;
    r->ready_us = mcpgw_now_us();
    r->go_us = r->ready_us + 100000; /* every worker starts at the same instant */
    p->phase = PH_DRIVE;
    send_cmd(p, MCPGW_WIRE_GO, r->go_us, 0);
    moment(p, r->go_us, "load starts");
    timer_at(p->phase_ev, r->go_us + p->cfg->duration_ms * 1000);
    for (uint32_t i = 0; i < p->cfg->ndrills; i++) {
        struct drill_timer *dt = &p->drills[i];
        dt->p = p;
        dt->i = i;
        dt->act = evtimer_new(p->base, on_drill, dt);
        timer_at(dt->act, r->go_us + p->cfg->drills[i].at_ms * 1000);
    }
}

static void stop(struct parent *p)
{
    if (p->phase > PH_DRIVE)
        return;
    p->r->stop_us = mcpgw_now_us();
    if (p->phase == PH_RAMP && !p->r->go_us)
        p->r->go_us = p->r->stop_us;
    p->phase = PH_GRACE;
    send_cmd(p, MCPGW_WIRE_STOP, 0, 0);
    moment(p, p->r->stop_us, "load ends");
    for (uint32_t i = 0; i < p->cfg->ndrills; i++)
        if (p->drills[i].act)
            evtimer_del(p->drills[i].act);
    p->grace_notifs = p->r->c[LG_C_NOTIF_RECEIVED];
    timer_at(p->phase_ev, p->r->stop_us + p->cfg->grace_ms * 1000);
}

static void finish(struct parent *p)
{
    if (p->phase >= PH_FINISH)
        return;
    p->phase = PH_FINISH;
    send_cmd(p, MCPGW_WIRE_FINISH, p->r->writer_first, p->r->writer_last);
    /* Workers close their sessions (DELETE, 10 s at most) and report. */
    timer_at(p->done_ev, mcpgw_now_us() + 20 * 1000000);
}

static void on_phase(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    if (p->phase == PH_RAMP) {
        log_warn("setups still running %.0f s after the ramp's planned end; starting the load",
                 (double)p->cfg->setup_window_ms / 1000);
        go(p);
    } else if (p->phase == PH_DRIVE) {
        stop(p);
    } else if (p->phase == PH_GRACE) {
        /* Notifications still arriving (a large fan-out takes seconds): they are not lost yet.
         * Wait while the count grows, a second at a time, up to GRACE_LIMIT_MS. */
        uint64_t got = p->r->c[LG_C_NOTIF_RECEIVED], now = mcpgw_now_us();
        if (got != p->grace_notifs &&
            now < p->r->stop_us + (uint64_t)GRACE_LIMIT_MS(p->cfg) * 1000) {
            p->grace_notifs = got;
            timer_at(p->phase_ev, now + 1000000);
            return;
        }
        finish(p);
    }
}

static void kill_workers(struct parent *p)
{
    for (uint32_t i = 0; i < p->nw; i++)
        if (!p->wk[i].done && !p->wk[i].dead && p->wk[i].pid > 0)
            kill(p->wk[i].pid, SIGKILL);
}

/* Stop the run now: the figures gathered so far are reported as partial. */
static void abort_run(struct parent *p, const char *why)
{
    log_error("%s; stopping the workers", why);
    p->r->aborted = 1;
    snprintf(p->r->abort_reason, sizeof(p->r->abort_reason), "%s", why);
    kill_workers(p);
    event_base_loopexit(p->base, NULL);
}

static void on_done_deadline(evutil_socket_t fd, short what, void *arg)
{
    abort_run(arg, "workers did not finish in time");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    abort_run(arg, "run exceeded its time bound");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct parent *p = arg;
    if (++p->signals == 1 && p->phase <= PH_DRIVE) {
        fprintf(stderr, "\nmcpgw-loadgen: interrupted: ending the load (again to abort)\n");
        p->r->interrupted = 1;
        stop(p);
        return;
    }
    fprintf(stderr, "\nmcpgw-loadgen: aborting\n");
    p->r->aborted = 1;
    snprintf(p->r->abort_reason, sizeof(p->r->abort_reason), "aborted by signal %d", (int)sig);
    kill_workers(p);
    event_base_loopexit(p->base, NULL);
}

/* ---- drills ---- */

static void on_drill(evutil_socket_t fd, short what, void *arg)
{
    struct drill_timer *dt = arg;
    struct parent *p = dt->p;
    struct mcpgw_lg_drill_result *dr = &p->r->drills[dt->i];
    uint64_t now = mcpgw_now_us();
    dr->at_s = rel_s(p, now);
    dr->fault_us = now;
    if (mcpgw_drill_act(&dr->d, &p->env, &dr->pid, dr->error, sizeof(dr->error)) < 0) {
        log_error("drill %s: %s", dr->d.spec, dr->error);
        moment(p, now, "%s failed", dr->d.spec);
        return;
    }
    dr->performed = 1;
    p->faulted = 1;
    p->rescan = 1;
    log_info("drill %s: %s pid %d", dr->d.spec, mcpgw_drill_kind_str(dr->d.kind), (int)dr->pid);
    moment(p, now, "%s %s (pid %d)", mcpgw_drill_kind_str(dr->d.kind),
           dr->d.target[0] ? dr->d.target : "redis", (int)dr->pid);
    send_cmd(p, MCPGW_WIRE_FAULT, dt->i, now);
    if (mcpgw_drill_has_resume(&dr->d)) {
        dt->resume = evtimer_new(p->base, on_resume, dt);
        timer_at(dt->resume, now + dr->d.for_ms * 1000);
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct drill_timer *dt = arg;
    struct parent *p = dt->p;
    struct mcpgw_lg_drill_result *dr = &p->r->drills[dt->i];
    uint64_t now = mcpgw_now_us();
    char err[200];
    dr->resumed_at_s = rel_s(p, now);
    if (mcpgw_drill_resume(&dr->d, &p->env, dr->pid, err, sizeof(err)) < 0) {
        log_error("drill %s: %s", dr->d.spec, err);
        snprintf(dr->error, sizeof(dr->error), "%s", err);
    }
    moment(p, now, "%s %s", dr->d.kind == MCPGW_DRILL_STOP ? "SIGCONT" : "redis start",
           dr->d.target[0] ? dr->d.target : "");
}

/* ---- progress and sampling ---- */

static uint64_t gauge(const struct parent *p, int g)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < p->nw; i++)
        v += p->wk[i].g[g];
    return v;
}

static void progress(struct parent *p, uint32_t sec)
{
    const struct mcpgw_lg_result *r = p->r;
    const struct mcpgw_lg_sec *last = NULL;
    char line[320];
    int n;
    /* The newest second every worker has reported. */
    for (uint32_t s = sec + 1; s-- > 0 && s < r->nsecs;)
        if (r->secs[s].reports) {
            last = &r->secs[s];
            break;
        }
    n = snprintf(line, sizeof(line),
                 "%4us %-6s sessions %llu/%u (failed %llu, lost %llu) streams %llu | "
                 "ok/s %llu p99 %.2f ms | failed %llu retried %llu",
                 sec, phase_names[p->phase], (unsigned long long)gauge(p, LG_G_SESSIONS_OPEN),
                 p->cfg->sessions, (unsigned long long)r->c[LG_C_SESS_FAILED],
                 (unsigned long long)r->c[LG_C_SESS_LOST],
                 (unsigned long long)gauge(p, LG_G_STREAMS_OPEN),
                 (unsigned long long)(last ? last->c[LG_C_REQ_OK] : 0),
                 last ? (double)last->p99 / 1000.0 : 0.0, (unsigned long long)r->c[LG_C_REQ_FAILED],
                 (unsigned long long)r->c[LG_C_REQ_RETRIED]);
    if (p->cfg->subscribe[0] && n > 0 && (size_t)n < sizeof(line))
        snprintf(line + n, sizeof(line) - (size_t)n, " | notif %llu",
                 (unsigned long long)r->c[LG_C_NOTIF_RECEIVED]);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        p->progress_len = strlen(line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static void on_sample(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    struct mcpgw_lg_result *r = p->r;
    uint32_t sec = p->next_sample++;
    struct mcpgw_lg_sec *x = sec_at(p, sec);
    struct mcpgw_proc_sample *procs = p->procs;
    struct mcpgw_sockstat ss;
    uint64_t rss = 0, open = gauge(p, LG_G_SESSIONS_OPEN);
    int n;
    /* A full /proc scan costs ~1 ms here: every 5 s (and after a drill), else only re-read the
     * known processes, so the sampling barely disturbs a worker sharing the core. */
    if (sec % 5 == 0 || p->rescan) {
        p->nprocs = mcpgw_procinfo_scan("mcpgw", p->procs, MCPGW_LG_MAX_PROCS);
        /* Another cluster or load generator on this machine is not part of this run. */
        if (p->cfg->pidfile_dir[0])
            p->nprocs = mcpgw_procinfo_filter_pidfiles(p->procs, p->nprocs, p->cfg->pidfile_dir);
        p->rescan = 0;
    } else {
        p->nprocs = mcpgw_procinfo_refresh(p->procs, p->nprocs);
    }
    n = p->nprocs;
    if (mcpgw_procinfo_sockstat(&ss) == 0)
        x->tcp_mem_pages = ss.tcp_mem_pages;
    for (int i = 0; i < n; i++)
        if (strncmp(procs[i].comm, "mcpgw-lg", 8) != 0 &&
            strncmp(procs[i].comm, "mcpgw-loadgen", 13) != 0)
            rss += procs[i].rss_kb;
    x->rss_kb = rss;
    /* The peak: the most sessions open; at a plateau, the latest sample before any fault. */
    if ((open > r->peak.sessions_open || (open == r->peak.sessions_open && !p->faulted)) &&
        p->phase <= PH_GRACE) {
        r->peak.t_s = rel_s(p, mcpgw_now_us());
        r->peak.sessions_open = open;
        r->peak.streams_open = gauge(p, LG_G_STREAMS_OPEN);
        r->peak.client_sockets = r->peak.streams_open + gauge(p, LG_G_CONNS);
        r->peak.slab_kb = mcpgw_procinfo_slab_kb();
        r->peak.ss = ss;
        memcpy(r->peak.procs, procs, (size_t)n * sizeof(procs[0]));
        r->peak.nprocs = n;
    }
    if (!p->cfg->quiet)
        progress(p, sec);
    timer_at(p->sample_ev, r->t0_us + (uint64_t)p->next_sample * 1000000 + 500000);
}

/* ---- worker messages ---- */

static void all_done_check(struct parent *p)
{
    for (uint32_t i = 0; i < p->nw; i++)
        if (!p->wk[i].done && !p->wk[i].dead)
            return;
    p->phase = PH_DONE;
    event_base_loopexit(p->base, NULL);
}

static void on_tick_msg(struct parent *p, struct wk *w, uint32_t idx, const unsigned char *m,
                        uint32_t len)
{
    struct mcpgw_lg_result *r = p->r;
    struct mcpgw_wire_tick t;
    struct pend *pd;
    mcpgw_lathist_reset(p->tmp_lat);
    mcpgw_lathist_reset(p->tmp_setup);
    if (mcpgw_wire_get_tick(m, len, &t, p->tmp_lat, p->tmp_setup) < 0) {
        log_warn("worker %u sent a malformed tick", idx);
        return;
    }
    mcpgw_lathist_merge(r->lat, p->tmp_lat);
    mcpgw_lathist_merge(r->setup, p->tmp_setup);
    for (int i = 0; i < LG_C_COUNT; i++)
        r->c[i] += t.c[i];
    memcpy(w->g, t.g, sizeof(w->g));
    if (t.writer_last) {
        r->writer_first = t.writer_first;
        r->writer_last = t.writer_last;
    }
    pd = pend_for(p, t.sec);
    for (int i = 0; i < LG_C_COUNT; i++)
        pd->c[i] += t.c[i];
    for (int i = 0; i < LG_G_COUNT; i++)
        pd->g[i] += t.g[i];
    mcpgw_lathist_merge(pd->h, p->tmp_lat);
    pd->nrep++;
    w->has_tick = 1;
    w->last_sec = t.sec;
    try_finalize(p, 0);
}

static void merge_node(struct mcpgw_lg_result *r, const struct mcpgw_wire_node *n)
{
    uint32_t i;
    for (i = 0; i < r->nnodes; i++)
        if (strcmp(r->nodes[i].name, n->name) == 0)
            break;
    if (i == r->nnodes) {
        if (r->nnodes == MCPGW_WIRE_MAX_NODES)
            i = MCPGW_WIRE_MAX_NODES - 1;
        else
            memcpy(r->nodes[r->nnodes++].name, n->name, sizeof(n->name));
    }
    r->nodes[i].established += n->established;
    r->nodes[i].alive += n->alive;
}

static void on_final_msg(struct parent *p, struct wk *w, uint32_t idx, const unsigned char *m,
                         uint32_t len)
{
    struct mcpgw_lg_result *r = p->r;
    struct mcpgw_wire_final f;
    struct mcpgw_lathist *rec[MCPGW_WIRE_MAX_DRILLS];
    for (uint32_t i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++)
        rec[i] = r->drills[i].recovery;
    if (mcpgw_wire_get_final(m, len, &f, rec, MCPGW_WIRE_MAX_DRILLS) < 0) {
        log_warn("worker %u sent a malformed final report", idx);
        return;
    }
    w->final = 1;
    r->subscribers += f.subscribers;
    r->expected += f.expected;
    r->received += f.received;
    r->duplicated += f.duplicated;
    r->lost += f.lost;
    for (uint32_t i = 0; i < f.nnodes; i++)
        merge_node(r, &f.nodes[i]);
    for (uint32_t i = 0; i < f.ndrills && i < r->ndrills; i++) {
        struct mcpgw_lg_drill_result *d = &r->drills[i];
        d->affected += f.drills[i].affected;
        d->recovered += f.drills[i].recovered;
        d->lost += f.drills[i].lost;
        if (f.drills[i].first_err_us &&
            (!d->first_err_us || f.drills[i].first_err_us < d->first_err_us))
            d->first_err_us = f.drills[i].first_err_us;
        if (f.drills[i].last_err_us > d->last_err_us)
            d->last_err_us = f.drills[i].last_err_us;
    }
}

struct wk_ctx {
    struct parent *p;
    uint32_t idx;
};

static void worker_read(struct bufferevent *bev, void *arg)
{
    struct wk_ctx *cx = arg;
    struct parent *p = cx->p;
    struct wk *w = &p->wk[cx->idx];
    int type, rc;
    uint32_t wid, len;
    unsigned char *m;
    while ((rc = mcpgw_wire_take(bufferevent_get_input(bev), &type, &wid, &m, &len)) == 1) {
        switch (type) {
        case MCPGW_WIRE_TICK:
            on_tick_msg(p, w, cx->idx, m, len);
            break;
        case MCPGW_WIRE_READY:
            w->ready = 1;
            {
                uint32_t ready = 0;
                for (uint32_t i = 0; i < p->nw; i++)
                    ready += p->wk[i].ready || p->wk[i].dead;
                if (ready == p->nw && p->phase == PH_RAMP) {
                    go(p);
                    moment(p, p->r->ready_us, "sessions ready");
                }
            }
            break;
        case MCPGW_WIRE_FINAL:
            on_final_msg(p, w, cx->idx, m, len);
            break;
        case MCPGW_WIRE_DONE:
            w->done = 1;
            try_finalize(p, 0);
            all_done_check(p);
            break;
        default:
            log_warn("worker %u sent an unexpected %s message", cx->idx, mcpgw_wire_type_str(type));
        }
        free(m);
    }
    if (rc < 0) {
        log_error("worker %u: malformed message stream; stopping it", cx->idx);
        kill(w->pid, SIGKILL);
        w->dead = 1;
        p->r->workers_lost++;
        all_done_check(p);
    }
}

static void worker_event(struct bufferevent *bev, short what, void *arg)
{
    struct wk_ctx *cx = arg;
    struct parent *p = cx->p;
    struct wk *w = &p->wk[cx->idx];
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    worker_read(bev, arg);
    if (!w->done && !w->dead) {
        log_error("worker %u ended before its final report", cx->idx);
        w->dead = 1;
        p->r->workers_lost++;
    }
    bufferevent_free(bev);
    w->bev = NULL;
    try_finalize(p, 0);
    if (p->phase == PH_RAMP) {
        uint32_t ready = 0;
        for (uint32_t i = 0; i < p->nw; i++)
            ready += p->wk[i].ready || p->wk[i].dead;
        if (ready == p->nw)
            go(p);
    }
    all_done_check(p);
}

/* ---- the run ---- */

static void start_time(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Set up the parent's state and the result for cfg, and take the baselines (start time, slab
 * and TCP sockets) the reports compare against. */
static void run_init(struct parent *p, struct mcpgw_lg_result *r, const struct mcpgw_lg_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->r = r;
    p->nw = cfg->workers;
    p->wk = xcalloc(p->nw, sizeof(*p->wk));
    p->tty = isatty(2);
    p->env.pidfile_dir = cfg->pidfile_dir[0] ? cfg->pidfile_dir : NULL;
    p->env.redis_port = cfg->redis_port;
    p->env.redis_cmd = cfg->redis_cmd[0] ? cfg->redis_cmd : NULL;
    r->cfg = cfg;
    r->page_size = sysconf(_SC_PAGESIZE);
    r->lat = mcpgw_lathist_new();
    r->setup = mcpgw_lathist_new();
    r->ndrills = cfg->ndrills;
    for (uint32_t i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++) {
        r->drills[i].recovery = mcpgw_lathist_new();
        if (i < cfg->ndrills)
            r->drills[i].d = cfg->drills[i];
    }
    start_time(r->started_at, sizeof(r->started_at));
    r->t0_us = mcpgw_now_us();
    {
        struct mcpgw_sockstat ss0;
        r->slab_kb_start = mcpgw_procinfo_slab_kb();
        r->tcp_inuse_start = mcpgw_procinfo_sockstat(&ss0) == 0 ? ss0.tcp_inuse : -1;
    }
}

/* Fork the workers, each with a socketpair to the parent; fds gets the parent's ends. Returns
 * 0, or -1 (with the workers already forked killed) after saying why on stderr. */
static int spawn_workers(struct parent *p, int *fds)
{
    fflush(stdout);
    fflush(stderr);
    for (uint32_t i = 0; i < p->nw; i++) {
        int sv[2];
        pid_t pid;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            fprintf(stderr, "mcpgw-loadgen: socketpair: %s\n", strerror(errno));
            kill_workers(p);
            return -1;
        }
        pid = fork();
        if (pid < 0) {
            fprintf(stderr, "mcpgw-loadgen: fork: %s\n", strerror(errno));
            kill_workers(p);
            return -1;
        }
        if (pid == 0) {
            for (uint32_t j = 0; j < i; j++)
                close(fds[j]);
            close(sv[0]);
            _exit(mcpgw_worker_run(p->cfg, i, sv[1], p->r->t0_us));
        }
        close(sv[1]);
        fds[i] = sv[0];
        p->wk[i].pid = pid;
    }
    return 0;
}

/* Build the parent's event loop: a bufferevent per worker (taking over fds), the phase, sample,
 * deadline and signal events. Returns the per-worker callback contexts, freed by run_free. */
static struct wk_ctx *arm_parent(struct parent *p, int *fds)
{
    const struct mcpgw_lg_config *cfg = p->cfg;
    struct mcpgw_lg_result *r = p->r;
    struct wk_ctx *cx;
    uint64_t ramp_us, bound_us;

    p->base = event_base_new();
    cx = xcalloc(p->nw, sizeof(*cx));
    for (uint32_t i = 0; i < p->nw; i++) {
        evutil_make_socket_nonblocking(fds[i]);
        cx[i].p = p;
        cx[i].idx = i;
        p->wk[i].bev = bufferevent_socket_new(p->base, fds[i], BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(p->wk[i].bev, worker_read, NULL, worker_event, &cx[i]);
        bufferevent_enable(p->wk[i].bev, EV_READ | EV_WRITE);
    }
    for (int i = 0; i < NPEND; i++)
        p->pend[i].h = mcpgw_lathist_new();
    p->tmp_lat = mcpgw_lathist_new();
    p->tmp_setup = mcpgw_lathist_new();
    p->phase_ev = evtimer_new(p->base, on_phase, p);
    p->done_ev = evtimer_new(p->base, on_done_deadline, p);
    p->sample_ev = evtimer_new(p->base, on_sample, p);
    timer_at(p->sample_ev, r->t0_us + 500000);
    ramp_us = (uint64_t)((double)cfg->sessions / cfg->ramp_per_s * 1e6);
    timer_at(p->phase_ev, r->t0_us + ramp_us + cfg->setup_window_ms * 1000);
    bound_us = ramp_us + cfg->setup_window_ms * 1000 + cfg->duration_ms * 1000 +
               (uint64_t)GRACE_LIMIT_MS(cfg) * 1000 + 60 * 1000000ull;
    p->deadline_ev = evtimer_new(p->base, on_deadline, p);
    timer_at(p->deadline_ev, r->t0_us + bound_us);
    p->sig_ev[0] = evsignal_new(p->base, SIGINT, on_signal, p);
    p->sig_ev[1] = evsignal_new(p->base, SIGTERM, on_signal, p);
    event_add(p->sig_ev[0], NULL);
    event_add(p->sig_ev[1], NULL);
    return cx;
}

/* After the loop: close the phases, merge what the workers last sent, reap them, and trim the
 * seconds to the last one seen. */
static void run_finish(struct parent *p)
{
    struct mcpgw_lg_result *r = p->r;
    r->end_us = mcpgw_now_us();
    if (!r->stop_us)
        r->stop_us = r->end_us;
    if (!r->go_us)
        r->go_us = r->stop_us;
    try_finalize(p, 1);
    for (uint32_t i = 0; i < p->nw; i++) {
        int st;
        if (p->wk[i].pid > 0 && waitpid(p->wk[i].pid, &st, 0) > 0 &&
            !(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !p->wk[i].done)
            log_warn("worker %u exited abnormally", i);
    }
    if (p->tty && !p->cfg->quiet)
        fprintf(stderr, "\n");
    while (r->nsecs && !r->secs[r->nsecs - 1].reports && !r->secs[r->nsecs - 1].rss_kb)
        r->nsecs--;
}

/* Print the summary and write the reports asked for. Returns the exit status (docs/loadgen.md):
 * 1 a report could not be written, 2 the run was aborted or lost workers, 3 --check found
 * problems, else 0. */
static int report_all(const struct parent *p)
{
    const struct mcpgw_lg_config *cfg = p->cfg;
    const struct mcpgw_lg_result *r = p->r;
    char err[300];
    int status = 0;
    mcpgw_report_summary(stdout, r);
    if (cfg->report_json[0] && mcpgw_report_json(cfg->report_json, r, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-loadgen: %s\n", err);
        status = 1;
    }
    if (cfg->report_html[0] && mcpgw_report_html(cfg->report_html, r, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-loadgen: %s\n", err);
        status = 1;
    }
    if (r->aborted || r->workers_lost)
        status = 2;
    else if (cfg->check && mcpgw_report_problems(r))
        status = 3;
    return status;
}

/* Free the parent's events and buffers, the result, and cx. */
static void run_free(struct parent *p, struct wk_ctx *cx)
{
    struct mcpgw_lg_result *r = p->r;
    for (uint32_t i = 0; i < p->nw; i++)
        if (p->wk[i].bev)
            bufferevent_free(p->wk[i].bev);
    for (int i = 0; i < NPEND; i++)
        mcpgw_lathist_free(p->pend[i].h);
    for (uint32_t i = 0; i < p->cfg->ndrills; i++) {
        if (p->drills[i].act)
            event_free(p->drills[i].act);
        if (p->drills[i].resume)
            event_free(p->drills[i].resume);
    }
    for (uint32_t i = 0; i < MCPGW_WIRE_MAX_DRILLS; i++)
        mcpgw_lathist_free(r->drills[i].recovery);
    event_free(p->phase_ev);
    event_free(p->done_ev);
    event_free(p->sample_ev);
    event_free(p->deadline_ev);
    event_free(p->sig_ev[0]);
    event_free(p->sig_ev[1]);
    event_base_free(p->base);
    mcpgw_lathist_free(p->tmp_lat);
    mcpgw_lathist_free(p->tmp_setup);
    mcpgw_lathist_free(r->lat);
    mcpgw_lathist_free(r->setup);
    free(r->secs);
    free(r);
    free(cx);
    free(p->wk);
}

int mcpgw_lg_run(const struct mcpgw_lg_config *cfg)
{
    struct parent p;
    struct mcpgw_lg_result *r = xcalloc(1, sizeof(*r));
    struct wk_ctx *cx;
    int *fds, status;
    char err[300];

    if (check_limits(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-loadgen: %s\n", err);
        free(r);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    run_init(&p, r, cfg);

    /* Fork first: the workers build their own event loops. */
    fds = xcalloc(p.nw, sizeof(int));
    if (spawn_workers(&p, fds) < 0)
        return 1;
    cx = arm_parent(&p, fds);
    free(fds);
    moment(&p, r->t0_us, "ramp starts");

    event_base_dispatch(p.base);

    run_finish(&p);
    status = report_all(&p);
    run_free(&p, cx);
    return status;
}
