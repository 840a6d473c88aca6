/* report.c - terminal summary, JSON report and self-contained HTML report of a run. */
#include "loadgen/report.h"

#include "common/util.h"
#include "loadgen/lathist.h"
#include "loadgen/svg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static double span_s(uint64_t a, uint64_t b)
{
    return b > a ? (double)(b - a) / 1e6 : 0.0;
}

static double load_s(const struct mcpgw_lg_result *r)
{
    return span_s(r->go_us, r->stop_us);
}

static double rel_s(const struct mcpgw_lg_result *r, uint64_t us)
{
    return us ? span_s(r->t0_us, us) : 0.0;
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

int mcpgw_report_problems(const struct mcpgw_lg_result *r)
{
    return r->c[LG_C_SESS_FAILED] || r->c[LG_C_SESS_LOST] || r->c[LG_C_REQ_FAILED] ||
           r->c[LG_C_STREAM_FAILED] || r->lost || r->duplicated || r->c[LG_C_WRITE_FAILED] ||
           r->c[LG_C_SESS_ESTABLISHED] < r->cfg->sessions;
}

/* Memory per session at the peak: the RSS of every mcpgw process but the load generator's,
 * plus the kernel's share. Pages of mapped files (the binaries and shared libraries, ~9 MiB
 * for a node) are in every process's RSS but in memory once: they count once, as the largest
 * process's RssFile (the processes map the same libraries), so N processes on one machine do
 * not count them N times (raw_b keeps the plain sum). The kernel part is estimated: slab growth
 * since the start divided by the TCP sockets added gives bytes per socket; the server's sockets are
 * those added minus the load generator's own (loopback counts both ends). Valid when the cluster
 * runs on this machine and little else changes meanwhile. */
struct mem_estimate {
    int have_user, have_kernel;
    double user_b, raw_b, kernel_b, slab_delta_b, per_socket_b;
    long sockets_added, server_sockets;
};

static void memory_estimate(const struct mcpgw_lg_result *r, struct mem_estimate *m)
{
    uint64_t rss_kb = 0, file_kb = 0, file_max_kb = 0, n = r->peak.sessions_open;
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < r->peak.nprocs; i++) {
        const struct mcpgw_proc_sample *p = &r->peak.procs[i];
        if (strncmp(p->comm, "mcpgw-lg", 8) == 0 || strncmp(p->comm, "mcpgw-loadgen", 13) == 0)
            continue;
        rss_kb += p->rss_kb;
        file_kb += p->file_kb < p->rss_kb ? p->file_kb : p->rss_kb;
        if (p->file_kb > file_max_kb && p->file_kb <= p->rss_kb)
            file_max_kb = p->file_kb;
    }
    if (!n || !rss_kb)
        return; /* no local cluster to measure */
    m->have_user = 1;
    m->raw_b = (double)rss_kb * 1024.0 / (double)n;
    m->user_b = (double)(rss_kb - file_kb + file_max_kb) * 1024.0 / (double)n;
    if (r->slab_kb_start < 0 || r->peak.slab_kb < 0 || r->tcp_inuse_start < 0)
        return;
    m->sockets_added = r->peak.ss.tcp_inuse - r->tcp_inuse_start;
    if (m->sockets_added <= 0 || r->peak.slab_kb <= r->slab_kb_start)
        return;
    m->have_kernel = 1;
    m->slab_delta_b = (double)(r->peak.slab_kb - r->slab_kb_start) * 1024.0;
    m->per_socket_b = m->slab_delta_b / (double)m->sockets_added;
    m->server_sockets = m->sockets_added - (long)r->peak.client_sockets;
    if (m->server_sockets < 0)
        m->server_sockets = 0;
    m->kernel_b = m->per_socket_b * (double)m->server_sockets / (double)n;
}

static void drill_window(const struct mcpgw_lg_drill_result *d, double *dur_ms, double *rec_ms)
{
    *dur_ms = d->last_err_us > d->first_err_us ? ms(d->last_err_us - d->first_err_us) : 0;
    *rec_ms = ms(mcpgw_lathist_max(d->recovery));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Seconds from the fault until the per-second p99 is back within twice its median over the
 * load seconds before the fault (a pause shows as latency, not as errors). -1 when there is no
 * baseline or it never came back. */
static double latency_recovery_s(const struct mcpgw_lg_result *r,
                                 const struct mcpgw_lg_drill_result *d)
{
    uint32_t first = (uint32_t)ceil(span_s(r->t0_us, r->go_us)), fault = (uint32_t)d->at_s, n = 0;
    uint64_t base[64], limit;
    for (uint32_t s = first; s < fault && s < r->nsecs; s++)
        if (r->secs[s].c[LG_C_REQ_OK] && n < MCPGW_ARRAY_LEN(base))
            base[n++] = r->secs[s].p99;
    if (!n || !d->performed)
        return -1;
    qsort(base, n, sizeof(base[0]), cmp_u64);
    limit = 2 * base[n / 2];
    for (uint32_t s = fault + 1; s < r->nsecs; s++) {
        const struct mcpgw_lg_sec *x = &r->secs[s];
        if (x->c[LG_C_REQ_OK] && !x->c[LG_C_REQ_FAILED] && x->p99 <= limit)
            return (double)s - d->at_s; /* the second [s, s+1) was healthy again */
    }
    return -1;
}

/* ---- terminal ---- */

void mcpgw_report_summary(FILE *f, const struct mcpgw_lg_result *r)
{
    const struct mcpgw_lg_config *cfg = r->cfg;
    double secs = load_s(r);
    char rate[32];
    if (cfg->closed_loop)
        snprintf(rate, sizeof(rate), "max (%u in flight)", cfg->concurrency);
    else
        snprintf(rate, sizeof(rate), "%g/s", cfg->rate_per_s);
    fprintf(f,
            "mcpgw-loadgen %s: %u sessions (ramp %g/s), rate %s, payload %zu B, load %.1f s, "
            "%u worker%s%s\n",
            cfg->url, cfg->sessions, cfg->ramp_per_s, rate, cfg->payload, secs, cfg->workers,
            cfg->workers == 1 ? "" : "s",
            r->aborted       ? " [ABORTED]"
            : r->interrupted ? " [interrupted]"
                             : "");
    fprintf(f,
            "  sessions   established %llu/%u  failed %llu  lost %llu   setup p50 %.2f ms  "
            "p99 %.2f ms  max %.2f ms\n",
            (unsigned long long)r->c[LG_C_SESS_ESTABLISHED], cfg->sessions,
            (unsigned long long)r->c[LG_C_SESS_FAILED], (unsigned long long)r->c[LG_C_SESS_LOST],
            ms(mcpgw_lathist_percentile(r->setup, 50)), ms(mcpgw_lathist_percentile(r->setup, 99)),
            ms(mcpgw_lathist_max(r->setup)));
    fprintf(f, "  requests   ok %llu  failed %llu  retried %llu  unsent %llu   %.1f req/s\n",
            (unsigned long long)r->c[LG_C_REQ_OK], (unsigned long long)r->c[LG_C_REQ_FAILED],
            (unsigned long long)r->c[LG_C_REQ_RETRIED], (unsigned long long)r->c[LG_C_REQ_UNSENT],
            secs > 0 ? (double)r->c[LG_C_REQ_OK] / secs : 0.0);
    fprintf(f,
            "  latency    p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  "
            "(mean %.3f ms, %llu samples)\n",
            ms(mcpgw_lathist_percentile(r->lat, 50)), ms(mcpgw_lathist_percentile(r->lat, 90)),
            ms(mcpgw_lathist_percentile(r->lat, 99)), ms(mcpgw_lathist_percentile(r->lat, 99.9)),
            ms(mcpgw_lathist_max(r->lat)), mcpgw_lathist_mean(r->lat) / 1000.0,
            (unsigned long long)mcpgw_lathist_count(r->lat));
    if (cfg->get_streams)
        fprintf(f, "  streams    opened %llu  dropped %llu  resumed %llu  given up %llu\n",
                (unsigned long long)r->c[LG_C_STREAM_OPENED],
                (unsigned long long)r->c[LG_C_STREAM_DROPPED],
                (unsigned long long)r->c[LG_C_STREAM_RESUMED],
                (unsigned long long)r->c[LG_C_STREAM_FAILED]);
    if (cfg->subscribe[0])
        fprintf(f,
                "  notify     writes %llu (failed %llu, versions %llu-%llu)  subscribers %llu  "
                "expected %llu  received %llu  duplicated %llu  lost %llu\n",
                (unsigned long long)r->c[LG_C_WRITE_OK],
                (unsigned long long)r->c[LG_C_WRITE_FAILED], (unsigned long long)r->writer_first,
                (unsigned long long)r->writer_last, (unsigned long long)r->subscribers,
                (unsigned long long)r->expected, (unsigned long long)r->received,
                (unsigned long long)r->duplicated, (unsigned long long)r->lost);
    if (r->nnodes) {
        fprintf(f, "  per node  ");
        for (uint32_t i = 0; i < r->nnodes; i++)
            fprintf(f, " %s %llu (alive %llu)", r->nodes[i].name,
                    (unsigned long long)r->nodes[i].established,
                    (unsigned long long)r->nodes[i].alive);
        fprintf(f, "\n");
    }
    fprintf(f,
            "  peak       at %.0f s: %llu sessions, %llu streams; kernel TCP mem %ld pages "
            "(%.1f MiB), %ld sockets in use\n",
            r->peak.t_s, (unsigned long long)r->peak.sessions_open,
            (unsigned long long)r->peak.streams_open, r->peak.ss.tcp_mem_pages,
            (double)r->peak.ss.tcp_mem_pages * (double)r->page_size / 1048576.0,
            r->peak.ss.tcp_inuse);
    for (int i = 0; i < r->peak.nprocs; i++) {
        const struct mcpgw_proc_sample *p = &r->peak.procs[i];
        fprintf(f, "    %-15s %-10s pid %-7d rss %8.1f MiB  (own peak %.1f MiB)\n", p->comm, p->tag,
                (int)p->pid, (double)p->rss_kb / 1024.0, (double)p->hwm_kb / 1024.0);
    }
    {
        struct mem_estimate m;
        memory_estimate(r, &m);
        if (m.have_kernel)
            fprintf(f,
                    "  memory     %.1f KB per session = mcpgw userspace %.1f KB + kernel %.1f KB "
                    "(slab +%.0f MiB for %ld new sockets, %.0f B each; %ld of them server-side; "
                    "plain RSS sum %.1f KB)\n",
                    (m.user_b + m.kernel_b) / 1024.0, m.user_b / 1024.0, m.kernel_b / 1024.0,
                    m.slab_delta_b / 1048576.0, m.sockets_added, m.per_socket_b, m.server_sockets,
                    m.raw_b / 1024.0);
        else if (m.have_user)
            fprintf(f, "  memory     mcpgw userspace %.1f KB per session (kernel share unknown)\n",
                    m.user_b / 1024.0);
    }
    for (uint32_t i = 0; i < r->ndrills; i++) {
        const struct mcpgw_lg_drill_result *d = &r->drills[i];
        double dur, rec;
        drill_window(d, &dur, &rec);
        if (!d->performed) {
            fprintf(f, "  drill %-22s NOT PERFORMED: %s\n", d->d.spec,
                    d->error[0] ? d->error : "the load ended first");
            continue;
        }
        fprintf(f,
                "  drill %-22s at %.2f s (pid %d): affected %llu sessions, recovered %llu, "
                "lost %llu; ",
                d->d.spec, d->at_s, (int)d->pid, (unsigned long long)d->affected,
                (unsigned long long)d->recovered, (unsigned long long)d->lost);
        if (d->first_err_us)
            fprintf(f, "errors %.2f-%.2f s (window %.0f ms)", rel_s(r, d->first_err_us),
                    rel_s(r, d->last_err_us), dur);
        else
            fprintf(f, "no errors"); /* streams carried on by the balancer see none */
        if (d->recovered)
            fprintf(f, "; recovery p50 %.0f ms, p99 %.0f ms, max %.0f ms",
                    ms(mcpgw_lathist_percentile(d->recovery, 50)),
                    ms(mcpgw_lathist_percentile(d->recovery, 99)), rec);
        {
            double lr = latency_recovery_s(r, d);
            if (lr >= 0)
                fprintf(f, "; p99 back to normal %.1f s after the fault", lr);
            else
                fprintf(f, "; p99 not back to normal by the end");
        }
        fprintf(f, "\n");
    }
    if (r->aborted)
        fprintf(f, "  ABORTED: %s (figures are partial)\n", r->abort_reason);
    if (r->workers_lost)
        fprintf(f, "  %u worker(s) ended without their final report (figures are partial)\n",
                r->workers_lost);
}

/* ---- JSON ---- */

static json_object *jd(double v)
{
    return json_object_new_double(round(v * 1000.0) / 1000.0);
}

static json_object *ju(uint64_t v)
{
    return json_object_new_int64((int64_t)v);
}

static json_object *lat_obj(const struct mcpgw_lathist *h)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "count", ju(mcpgw_lathist_count(h)));
    json_object_object_add(o, "min", jd(ms(mcpgw_lathist_min(h))));
    json_object_object_add(o, "mean", jd(mcpgw_lathist_mean(h) / 1000.0));
    json_object_object_add(o, "p50", jd(ms(mcpgw_lathist_percentile(h, 50))));
    json_object_object_add(o, "p90", jd(ms(mcpgw_lathist_percentile(h, 90))));
    json_object_object_add(o, "p99", jd(ms(mcpgw_lathist_percentile(h, 99))));
    json_object_object_add(o, "p999", jd(ms(mcpgw_lathist_percentile(h, 99.9))));
    json_object_object_add(o, "max", jd(ms(mcpgw_lathist_max(h))));
    return o;
}

static void add_bucket(void *arg, uint64_t lo, uint64_t hi, uint64_t count)
{
    json_object *b = json_object_new_array();
    json_object_array_add(b, ju(lo));
    json_object_array_add(b, ju(hi));
    json_object_array_add(b, ju(count));
    json_object_array_add(arg, b);
}

static json_object *config_obj(const struct mcpgw_lg_config *cfg)
{
    json_object *o = json_object_new_object(), *src = json_object_new_array(),
                *dr = json_object_new_array();
    char addr[64];
    json_object_object_add(o, "url", json_object_new_string(cfg->url));
    json_object_object_add(o, "sessions", ju(cfg->sessions));
    json_object_object_add(o, "ramp_per_s", jd(cfg->ramp_per_s));
    json_object_object_add(o, "duration_s", jd((double)cfg->duration_ms / 1000.0));
    json_object_object_add(o, "rate_per_s", cfg->closed_loop ? NULL : jd(cfg->rate_per_s));
    json_object_object_add(o, "closed_loop", json_object_new_boolean(cfg->closed_loop));
    json_object_object_add(o, "concurrency", ju(cfg->concurrency));
    json_object_object_add(o, "payload_bytes", ju(cfg->payload));
    json_object_object_add(o, "get_streams", json_object_new_boolean(cfg->get_streams));
    json_object_object_add(o, "subscribe",
                           cfg->subscribe[0] ? json_object_new_string(cfg->subscribe) : NULL);
    json_object_object_add(o, "notes_writer_per_s", jd(cfg->notes_rate));
    json_object_object_add(o, "workers", ju(cfg->workers));
    for (uint32_t i = 0; i < cfg->nsrc; i++) {
        inet_ntop(AF_INET, &cfg->src[i].sin_addr, addr, sizeof(addr));
        json_object_array_add(src, json_object_new_string(addr));
    }
    json_object_object_add(o, "source_addrs", src);
    json_object_object_add(o, "timeout_s", jd((double)cfg->timeout_ms / 1000.0));
    json_object_object_add(o, "retries", ju(cfg->retries));
    json_object_object_add(o, "protocol_version", json_object_new_string(cfg->protocol_version));
    for (uint32_t i = 0; i < cfg->ndrills; i++)
        json_object_array_add(dr, json_object_new_string(cfg->drills[i].spec));
    json_object_object_add(o, "drills", dr);
    return o;
}

/* The "phases" object: how long the ramp, the load and the whole run took, and when. */
static json_object *phases_obj(const struct mcpgw_lg_result *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ramp_s", jd(span_s(r->t0_us, r->ready_us ? r->ready_us : r->go_us)));
    json_object_object_add(o, "load_s", jd(load_s(r)));
    json_object_object_add(o, "total_s", jd(span_s(r->t0_us, r->end_us)));
    json_object_object_add(o, "load_start_s", jd(rel_s(r, r->go_us)));
    json_object_object_add(o, "load_end_s", jd(rel_s(r, r->stop_us)));
    return o;
}

/* The "sessions" object: target, outcomes and setup latency. */
static json_object *sessions_obj(const struct mcpgw_lg_result *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "target", ju(r->cfg->sessions));
    json_object_object_add(o, "attempted", ju(r->c[LG_C_SESS_ATTEMPTED]));
    json_object_object_add(o, "established", ju(r->c[LG_C_SESS_ESTABLISHED]));
    json_object_object_add(o, "failed", ju(r->c[LG_C_SESS_FAILED]));
    json_object_object_add(o, "lost", ju(r->c[LG_C_SESS_LOST]));
    json_object_object_add(o, "setup_ms", lat_obj(r->setup));
    return o;
}

/* The "requests" object: echo call outcomes, rate, latency and the whole histogram. */
static json_object *requests_obj(const struct mcpgw_lg_result *r)
{
    json_object *o = json_object_new_object(), *a;
    double secs = load_s(r);
    json_object_object_add(o, "ok", ju(r->c[LG_C_REQ_OK]));
    json_object_object_add(o, "failed", ju(r->c[LG_C_REQ_FAILED]));
    json_object_object_add(o, "retried", ju(r->c[LG_C_REQ_RETRIED]));
    json_object_object_add(o, "timeouts", ju(r->c[LG_C_REQ_TIMEOUT]));
    json_object_object_add(o, "http_errors", ju(r->c[LG_C_REQ_HTTP_ERROR]));
    json_object_object_add(o, "rpc_errors", ju(r->c[LG_C_REQ_RPC_ERROR]));
    json_object_object_add(o, "unsent", ju(r->c[LG_C_REQ_UNSENT]));
    json_object_object_add(o, "rps", jd(secs > 0 ? (double)r->c[LG_C_REQ_OK] / secs : 0));
    json_object_object_add(o, "bytes_out", ju(r->c[LG_C_BYTES_OUT]));
    json_object_object_add(o, "latency_ms", lat_obj(r->lat));
    a = json_object_new_array();
    mcpgw_lathist_foreach(r->lat, add_bucket, a);
    json_object_object_add(o, "histogram_us", a);
    return o;
}

/* The "streams" object: GET stream counters. */
static json_object *streams_obj(const struct mcpgw_lg_result *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "opened", ju(r->c[LG_C_STREAM_OPENED]));
    json_object_object_add(o, "dropped", ju(r->c[LG_C_STREAM_DROPPED]));
    json_object_object_add(o, "resumed", ju(r->c[LG_C_STREAM_RESUMED]));
    json_object_object_add(o, "failed", ju(r->c[LG_C_STREAM_FAILED]));
    return o;
}

/* The "notifications" object: the note writer and what the subscribers received. */
static json_object *notifications_obj(const struct mcpgw_lg_result *r)
{
    const struct mcpgw_lg_config *cfg = r->cfg;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "note",
                           cfg->subscribe[0] ? json_object_new_string(cfg->subscribe) : NULL);
    json_object_object_add(o, "writes_ok", ju(r->c[LG_C_WRITE_OK]));
    json_object_object_add(o, "writes_failed", ju(r->c[LG_C_WRITE_FAILED]));
    json_object_object_add(o, "first_version", ju(r->writer_first));
    json_object_object_add(o, "last_version", ju(r->writer_last));
    json_object_object_add(o, "subscribers", ju(r->subscribers));
    json_object_object_add(o, "expected", ju(r->expected));
    json_object_object_add(o, "received", ju(r->received));
    json_object_object_add(o, "duplicated", ju(r->duplicated));
    json_object_object_add(o, "lost", ju(r->lost));
    json_object_object_add(o, "events_received", ju(r->c[LG_C_NOTIF_RECEIVED]));
    return o;
}

/* The "sessions_per_node" array: sessions established and alive, by node. */
static json_object *nodes_arr(const struct mcpgw_lg_result *r)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < r->nnodes; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "node", json_object_new_string(r->nodes[i].name));
        json_object_object_add(o, "established", ju(r->nodes[i].established));
        json_object_object_add(o, "alive", ju(r->nodes[i].alive));
        json_object_array_add(a, o);
    }
    return a;
}

/* The peak's "tcp" object: the kernel's TCP socket counters at the peak. */
static json_object *peak_tcp_obj(const struct mcpgw_lg_result *r)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "inuse", json_object_new_int64(r->peak.ss.tcp_inuse));
    json_object_object_add(t, "orphan", json_object_new_int64(r->peak.ss.tcp_orphan));
    json_object_object_add(t, "tw", json_object_new_int64(r->peak.ss.tcp_tw));
    json_object_object_add(t, "alloc", json_object_new_int64(r->peak.ss.tcp_alloc));
    json_object_object_add(t, "mem_pages", json_object_new_int64(r->peak.ss.tcp_mem_pages));
    json_object_object_add(t, "mem_bytes",
                           json_object_new_int64(r->peak.ss.tcp_mem_pages * r->page_size));
    return t;
}

/* The peak's "processes" array: each mcpgw process's memory at the peak. */
static json_object *peak_procs_arr(const struct mcpgw_lg_result *r)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < r->peak.nprocs; i++) {
        const struct mcpgw_proc_sample *p = &r->peak.procs[i];
        json_object *q = json_object_new_object();
        json_object_object_add(q, "pid", json_object_new_int(p->pid));
        json_object_object_add(q, "comm", json_object_new_string(p->comm));
        json_object_object_add(q, "tag", json_object_new_string(p->tag));
        json_object_object_add(q, "rss_kb", ju(p->rss_kb));
        json_object_object_add(q, "hwm_kb", ju(p->hwm_kb));
        json_object_array_add(a, q);
    }
    return a;
}

/* The peak's "memory_per_session" object: the estimate, null where it cannot be made. */
static json_object *memory_obj(const struct mcpgw_lg_result *r)
{
    struct mem_estimate m;
    json_object *mo = json_object_new_object();
    memory_estimate(r, &m);
    json_object_object_add(mo, "userspace_b", m.have_user ? jd(m.user_b) : NULL);
    json_object_object_add(mo, "userspace_rss_sum_b", m.have_user ? jd(m.raw_b) : NULL);
    json_object_object_add(mo, "kernel_b", m.have_kernel ? jd(m.kernel_b) : NULL);
    json_object_object_add(mo, "total_b", m.have_kernel ? jd(m.user_b + m.kernel_b) : NULL);
    json_object_object_add(mo, "slab_delta_b", m.have_kernel ? jd(m.slab_delta_b) : NULL);
    json_object_object_add(mo, "sockets_added",
                           m.have_kernel ? json_object_new_int64(m.sockets_added) : NULL);
    json_object_object_add(mo, "server_sockets",
                           m.have_kernel ? json_object_new_int64(m.server_sockets) : NULL);
    json_object_object_add(mo, "kernel_per_socket_b", m.have_kernel ? jd(m.per_socket_b) : NULL);
    return mo;
}

/* The "peak" object: the busiest moment's sessions, sockets, processes and memory. */
static json_object *peak_obj(const struct mcpgw_lg_result *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "t_s", jd(r->peak.t_s));
    json_object_object_add(o, "sessions_open", ju(r->peak.sessions_open));
    json_object_object_add(o, "streams_open", ju(r->peak.streams_open));
    json_object_object_add(o, "tcp", peak_tcp_obj(r));
    json_object_object_add(o, "processes", peak_procs_arr(r));
    json_object_object_add(o, "memory_per_session", memory_obj(r));
    return o;
}

/* One element of the "drills" array: what the drill did and how the sessions came through. */
static json_object *drill_obj(const struct mcpgw_lg_result *r,
                              const struct mcpgw_lg_drill_result *d)
{
    json_object *o = json_object_new_object(), *w = json_object_new_object(),
                *rec = json_object_new_object();
    double dur, recmax, lr;
    drill_window(d, &dur, &recmax);
    json_object_object_add(o, "spec", json_object_new_string(d->d.spec));
    json_object_object_add(o, "kind", json_object_new_string(mcpgw_drill_kind_str(d->d.kind)));
    json_object_object_add(o, "target", json_object_new_string(d->d.target));
    json_object_object_add(o, "performed", json_object_new_boolean(d->performed));
    json_object_object_add(o, "error", d->error[0] ? json_object_new_string(d->error) : NULL);
    json_object_object_add(o, "pid", json_object_new_int(d->pid));
    json_object_object_add(o, "at_s", jd(d->at_s));
    json_object_object_add(o, "resumed_at_s", d->resumed_at_s > 0 ? jd(d->resumed_at_s) : NULL);
    json_object_object_add(o, "affected_sessions", ju(d->affected));
    json_object_object_add(o, "recovered_sessions", ju(d->recovered));
    json_object_object_add(o, "lost_sessions", ju(d->lost));
    json_object_object_add(w, "start_s", d->first_err_us ? jd(rel_s(r, d->first_err_us)) : NULL);
    json_object_object_add(w, "end_s", d->last_err_us ? jd(rel_s(r, d->last_err_us)) : NULL);
    json_object_object_add(w, "duration_ms", jd(dur));
    json_object_object_add(o, "error_window", w);
    json_object_object_add(rec, "count", ju(mcpgw_lathist_count(d->recovery)));
    json_object_object_add(rec, "p50", jd(ms(mcpgw_lathist_percentile(d->recovery, 50))));
    json_object_object_add(rec, "p99", jd(ms(mcpgw_lathist_percentile(d->recovery, 99))));
    json_object_object_add(rec, "max", jd(recmax));
    json_object_object_add(o, "recovery_ms", rec);
    lr = latency_recovery_s(r, d);
    json_object_object_add(o, "latency_recovery_s", lr >= 0 ? jd(lr) : NULL);
    return o;
}

/* The "moments" array: the marks on the plots. */
static json_object *moments_arr(const struct mcpgw_lg_result *r)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < r->nmoments; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "t_s", jd(r->moments[i].t_s));
        json_object_object_add(o, "label", json_object_new_string(r->moments[i].label));
        json_object_array_add(a, o);
    }
    return a;
}

/* One element of the "timeline" array: second s's counters, latency and gauges. */
static json_object *sec_obj(const struct mcpgw_lg_sec *x, uint32_t s)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "t", json_object_new_int((int)s));
    json_object_object_add(o, "ok", ju(x->c[LG_C_REQ_OK]));
    json_object_object_add(o, "failed", ju(x->c[LG_C_REQ_FAILED]));
    json_object_object_add(o, "retried", ju(x->c[LG_C_REQ_RETRIED]));
    json_object_object_add(o, "p50_ms", jd(ms(x->p50)));
    json_object_object_add(o, "p90_ms", jd(ms(x->p90)));
    json_object_object_add(o, "p99_ms", jd(ms(x->p99)));
    json_object_object_add(o, "p999_ms", jd(ms(x->p999)));
    json_object_object_add(o, "max_ms", jd(ms(x->max)));
    json_object_object_add(o, "established", ju(x->c[LG_C_SESS_ESTABLISHED]));
    json_object_object_add(o, "sessions_lost", ju(x->c[LG_C_SESS_LOST]));
    json_object_object_add(o, "notifications", ju(x->c[LG_C_NOTIF_RECEIVED]));
    json_object_object_add(o, "streams_dropped", ju(x->c[LG_C_STREAM_DROPPED]));
    json_object_object_add(o, "sessions_open", ju(x->g[LG_G_SESSIONS_OPEN]));
    json_object_object_add(o, "streams_open", ju(x->g[LG_G_STREAMS_OPEN]));
    json_object_object_add(o, "connections", ju(x->g[LG_G_CONNS]));
    json_object_object_add(o, "inflight", ju(x->g[LG_G_INFLIGHT]));
    json_object_object_add(o, "backlog", ju(x->g[LG_G_BACKLOG]));
    json_object_object_add(o, "tcp_mem_pages", json_object_new_int64(x->tcp_mem_pages));
    json_object_object_add(o, "mcpgw_rss_kb", ju(x->rss_kb));
    return o;
}

/* The whole report, in the order of docs/loadgen.md. */
static json_object *build_json(const struct mcpgw_lg_result *r)
{
    json_object *root = json_object_new_object(), *a;

    json_object_object_add(root, "tool", json_object_new_string("mcpgw-loadgen"));
    json_object_object_add(root, "report_version", json_object_new_int(1));
    json_object_object_add(root, "started_at", json_object_new_string(r->started_at));
    json_object_object_add(root, "config", config_obj(r->cfg));
    json_object_object_add(root, "phases", phases_obj(r));
    json_object_object_add(root, "interrupted", json_object_new_boolean(r->interrupted));
    json_object_object_add(root, "aborted", json_object_new_boolean(r->aborted));
    json_object_object_add(root, "abort_reason",
                           r->aborted ? json_object_new_string(r->abort_reason) : NULL);
    json_object_object_add(root, "workers_lost", ju(r->workers_lost));
    json_object_object_add(root, "sessions", sessions_obj(r));
    json_object_object_add(root, "requests", requests_obj(r));
    json_object_object_add(root, "streams", streams_obj(r));
    json_object_object_add(root, "notifications", notifications_obj(r));
    json_object_object_add(root, "sessions_per_node", nodes_arr(r));
    json_object_object_add(root, "peak", peak_obj(r));
    a = json_object_new_array();
    for (uint32_t i = 0; i < r->ndrills; i++)
        json_object_array_add(a, drill_obj(r, &r->drills[i]));
    json_object_object_add(root, "drills", a);
    json_object_object_add(root, "moments", moments_arr(r));
    a = json_object_new_array();
    for (uint32_t s = 0; s < r->nsecs; s++)
        json_object_array_add(a, sec_obj(&r->secs[s], s));
    json_object_object_add(root, "timeline", a);
    return root;
}

static int write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        snprintf(err, errlen, "writing %s failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int mcpgw_report_json(const char *path, const struct mcpgw_lg_result *r, char *err, size_t errlen)
{
    json_object *root = build_json(r);
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = write_file(path, s, strlen(s), err, errlen);
    json_object_put(root);
    return rc;
}

/* ---- HTML ---- */

static void row(struct evbuffer *b, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void row(struct evbuffer *b, const char *k, const char *fmt, ...)
{
    va_list ap;
    evbuffer_add_printf(b, "<tr><th>%s</th><td>", k);
    va_start(ap, fmt);
    evbuffer_add_vprintf(b, fmt, ap);
    va_end(ap);
    evbuffer_add_printf(b, "</td></tr>\n");
}

/* The per-second series the HTML charts plot, and the moments marked on them. */
struct html_series {
    size_t n;
    double *x, *ok, *fail, *p50, *p99, *mx, *sess, *strm, *tcp, *rss, *notif;
    struct mcpgw_svg_marker *mk;
    size_t nmk;
};

/* Fill s from r's seconds (NaN where a second has no figure) and moments. */
static void html_series_fill(struct html_series *s, const struct mcpgw_lg_result *r)
{
    size_t n = r->nsecs;
    s->n = n;
    s->x = xcalloc(n + 1, sizeof(double));
    s->ok = xcalloc(n + 1, sizeof(double));
    s->fail = xcalloc(n + 1, sizeof(double));
    s->p50 = xcalloc(n + 1, sizeof(double));
    s->p99 = xcalloc(n + 1, sizeof(double));
    s->mx = xcalloc(n + 1, sizeof(double));
    s->sess = xcalloc(n + 1, sizeof(double));
    s->strm = xcalloc(n + 1, sizeof(double));
    s->tcp = xcalloc(n + 1, sizeof(double));
    s->rss = xcalloc(n + 1, sizeof(double));
    s->notif = xcalloc(n + 1, sizeof(double));
    s->mk = xcalloc(r->nmoments + 1, sizeof(*s->mk));
    s->nmk = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mcpgw_lg_sec *c = &r->secs[i];
        s->x[i] = (double)i + 1; /* a second's figures are at its end */
        s->ok[i] = (double)c->c[LG_C_REQ_OK];
        s->fail[i] = (double)c->c[LG_C_REQ_FAILED];
        s->p50[i] = c->c[LG_C_REQ_OK] ? ms(c->p50) : NAN;
        s->p99[i] = c->c[LG_C_REQ_OK] ? ms(c->p99) : NAN;
        s->mx[i] = c->c[LG_C_REQ_OK] ? ms(c->max) : NAN;
        s->sess[i] = c->reports ? (double)c->g[LG_G_SESSIONS_OPEN] : NAN;
        s->strm[i] = c->reports ? (double)c->g[LG_G_STREAMS_OPEN] : NAN;
        s->tcp[i] = c->rss_kb ? (double)c->tcp_mem_pages * (double)r->page_size / 1048576.0 : NAN;
        s->rss[i] = c->rss_kb ? (double)c->rss_kb / 1024.0 : NAN; /* 0: not sampled */
        s->notif[i] = (double)c->c[LG_C_NOTIF_RECEIVED];
    }
    for (uint32_t i = 0; i < r->nmoments; i++) {
        if (strcmp(r->moments[i].label, "ramp starts") == 0 ||
            strcmp(r->moments[i].label, "sessions ready") == 0)
            continue; /* "load starts" follows at once */
        s->mk[s->nmk].x = r->moments[i].t_s;
        s->mk[s->nmk].label = r->moments[i].label;
        s->nmk++;
    }
}

/* Free what html_series_fill allocated. */
static void html_series_free(struct html_series *s)
{
    free(s->x);
    free(s->ok);
    free(s->fail);
    free(s->p50);
    free(s->p99);
    free(s->mx);
    free(s->sess);
    free(s->strm);
    free(s->tcp);
    free(s->rss);
    free(s->notif);
    free(s->mk);
}

/* The page head and style, the title line and the summary table. */
static void html_summary(struct evbuffer *b, const struct mcpgw_lg_result *r)
{
    const struct mcpgw_lg_config *cfg = r->cfg;
    double secs = load_s(r);
    evbuffer_add_printf(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                           "<title>mcpgw-loadgen report</title>\n<style>"
                           "body{font-family:sans-serif;margin:20px;color:#222}"
                           "table{border-collapse:collapse;margin:8px 0 18px}"
                           "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;"
                           "font-size:13px}th{background:#f3f3f3}h2{margin-top:28px}"
                           ".bad{color:#b00;font-weight:bold}</style></head><body>\n");
    evbuffer_add_printf(b, "<h1>mcpgw-loadgen report</h1>\n<p>");
    mcpgw_svg_escape(b, cfg->url);
    evbuffer_add_printf(b, " &mdash; started %s%s</p>\n<table>\n", r->started_at,
                        r->aborted ? " <span class=\"bad\">ABORTED</span>" : "");
    row(b, "sessions", "%u target, %llu established, %llu failed, <span%s>%llu lost</span>",
        cfg->sessions, (unsigned long long)r->c[LG_C_SESS_ESTABLISHED],
        (unsigned long long)r->c[LG_C_SESS_FAILED], r->c[LG_C_SESS_LOST] ? " class=\"bad\"" : "",
        (unsigned long long)r->c[LG_C_SESS_LOST]);
    row(b, "session setup", "p50 %.2f ms, p99 %.2f ms, max %.2f ms (ramp %g/s)",
        ms(mcpgw_lathist_percentile(r->setup, 50)), ms(mcpgw_lathist_percentile(r->setup, 99)),
        ms(mcpgw_lathist_max(r->setup)), cfg->ramp_per_s);
    if (cfg->closed_loop)
        row(b, "load", "closed loop, %u in flight, %zu B payload, %.1f s, %u worker(s)",
            cfg->concurrency, cfg->payload, secs, cfg->workers);
    else
        row(b, "load", "open loop at %g/s, %u connections, %zu B payload, %.1f s, %u worker(s)",
            cfg->rate_per_s, cfg->concurrency, cfg->payload, secs, cfg->workers);
    row(b, "requests", "%llu ok, %llu failed, %llu retried, %llu unsent &mdash; %.1f req/s",
        (unsigned long long)r->c[LG_C_REQ_OK], (unsigned long long)r->c[LG_C_REQ_FAILED],
        (unsigned long long)r->c[LG_C_REQ_RETRIED], (unsigned long long)r->c[LG_C_REQ_UNSENT],
        secs > 0 ? (double)r->c[LG_C_REQ_OK] / secs : 0.0);
    row(b, "latency", "p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms",
        ms(mcpgw_lathist_percentile(r->lat, 50)), ms(mcpgw_lathist_percentile(r->lat, 90)),
        ms(mcpgw_lathist_percentile(r->lat, 99)), ms(mcpgw_lathist_percentile(r->lat, 99.9)),
        ms(mcpgw_lathist_max(r->lat)));
    if (cfg->get_streams)
        row(b, "GET streams", "%llu opened, %llu dropped, %llu resumed, %llu given up",
            (unsigned long long)r->c[LG_C_STREAM_OPENED],
            (unsigned long long)r->c[LG_C_STREAM_DROPPED],
            (unsigned long long)r->c[LG_C_STREAM_RESUMED],
            (unsigned long long)r->c[LG_C_STREAM_FAILED]);
    if (cfg->subscribe[0])
        row(b, "notifications",
            "%llu writes (versions %llu-%llu), %llu subscribers: %llu expected, %llu received, "
            "%llu duplicated, <span%s>%llu lost</span>",
            (unsigned long long)r->c[LG_C_WRITE_OK], (unsigned long long)r->writer_first,
            (unsigned long long)r->writer_last, (unsigned long long)r->subscribers,
            (unsigned long long)r->expected, (unsigned long long)r->received,
            (unsigned long long)r->duplicated, r->lost ? " class=\"bad\"" : "",
            (unsigned long long)r->lost);
    row(b, "peak",
        "at %.0f s: %llu sessions, kernel TCP memory %.1f MiB (%ld pages), %ld TCP "
        "sockets",
        r->peak.t_s, (unsigned long long)r->peak.sessions_open,
        (double)r->peak.ss.tcp_mem_pages * (double)r->page_size / 1048576.0,
        r->peak.ss.tcp_mem_pages, r->peak.ss.tcp_inuse);
    evbuffer_add_printf(b, "</table>\n");
}

/* One line chart over the run's seconds, with the moments marked, under heading h2 (NULL for
 * none). */
static void html_chart(struct evbuffer *b, const struct html_series *p, const char *h2,
                       const char *title, const char *ylabel, const struct mcpgw_svg_series *s,
                       size_t ns, int log_y)
{
    struct mcpgw_svg_chart c = {
        title, "seconds since start", ylabel, p->x, p->n, s, ns, p->mk, p->nmk, log_y};
    if (h2)
        evbuffer_add_printf(b, "<h2>%s</h2>\n", h2);
    mcpgw_svg_line_chart(b, &c);
}

/* The charts: throughput, latency, sessions, notifications (when subscribed), memory, and the
 * sessions per node. */
static void html_charts(struct evbuffer *b, const struct mcpgw_lg_result *r,
                        const struct html_series *p)
{
    {
        struct mcpgw_svg_series s[2] = {{"ok/s", "#2a7", p->ok}, {"failed/s", "#c22", p->fail}};
        html_chart(b, p, "Throughput", "Throughput (echo calls completed per second)", "calls/s", s,
                   2, 0);
    }
    {
        struct mcpgw_svg_series s[3] = {
            {"p50", "#27c", p->p50}, {"p99", "#e80", p->p99}, {"max", "#c22", p->mx}};
        html_chart(b, p, "Latency", "Latency of echo calls completed in each second (log scale)",
                   "ms", s, 3, 1);
    }
    {
        struct mcpgw_svg_series s[2] = {{"sessions", "#27c", p->sess},
                                        {"GET streams", "#888", p->strm}};
        html_chart(b, p, "Sessions", "Open sessions and GET streams", "count", s, 2, 0);
    }
    if (r->cfg->subscribe[0]) {
        struct mcpgw_svg_series s[1] = {{"notifications/s", "#7a3", p->notif}};
        html_chart(b, p, NULL, "Resource-updated notifications received per second", "events/s", s,
                   1, 0);
    }
    {
        struct mcpgw_svg_series s[2] = {{"mcpgw RSS", "#a3c", p->rss},
                                        {"kernel TCP", "#888", p->tcp}};
        html_chart(b, p, "Memory",
                   "Memory: RSS of mcpgw processes (without the load generator) "
                   "and kernel TCP memory",
                   "MiB", s, 2, 0);
    }
    if (r->nnodes) {
        const char **labels = xcalloc(r->nnodes, sizeof(*labels));
        double *v = xcalloc(r->nnodes, sizeof(double));
        for (uint32_t i = 0; i < r->nnodes; i++) {
            labels[i] = r->nodes[i].name;
            v[i] = (double)r->nodes[i].established;
        }
        evbuffer_add_printf(b, "<h2>Sessions per node</h2>\n");
        mcpgw_svg_bar_chart(b, "Sessions established, by the node named in the session id", labels,
                            v, r->nnodes);
        free(labels);
        free(v);
    }
}

/* The table of processes at the peak. */
static void html_processes(struct evbuffer *b, const struct mcpgw_lg_result *r)
{
    evbuffer_add_printf(b,
                        "<h2>Processes at the peak (%.0f s)</h2>\n<table><tr><th>process</th>"
                        "<th>tag</th><th>pid</th><th>RSS MiB</th><th>own peak MiB</th></tr>\n",
                        r->peak.t_s);
    for (int i = 0; i < r->peak.nprocs; i++) {
        const struct mcpgw_proc_sample *p = &r->peak.procs[i];
        evbuffer_add_printf(b, "<tr><td>%s</td><td>", p->comm);
        mcpgw_svg_escape(b, p->tag);
        evbuffer_add_printf(b, "</td><td>%d</td><td>%.1f</td><td>%.1f</td></tr>\n", (int)p->pid,
                            (double)p->rss_kb / 1024.0, (double)p->hwm_kb / 1024.0);
    }
    evbuffer_add_printf(b, "</table>\n");
}

/* The table of drills and how the sessions came through them (nothing when none ran). */
static void html_drills(struct evbuffer *b, const struct mcpgw_lg_result *r)
{
    if (!r->ndrills)
        return;
    evbuffer_add_printf(b, "<h2>Drills</h2>\n<table><tr><th>drill</th><th>at</th>"
                           "<th>affected</th><th>recovered</th><th>lost</th>"
                           "<th>error window</th><th>recovery p50 / max</th></tr>\n");
    for (uint32_t i = 0; i < r->ndrills; i++) {
        const struct mcpgw_lg_drill_result *d = &r->drills[i];
        double dur, rec;
        drill_window(d, &dur, &rec);
        evbuffer_add_printf(b, "<tr><td>");
        mcpgw_svg_escape(b, d->d.spec);
        if (!d->performed) {
            evbuffer_add_printf(b, "</td><td colspan=\"6\" class=\"bad\">not performed: ");
            mcpgw_svg_escape(b, d->error[0] ? d->error : "the load ended first");
            evbuffer_add_printf(b, "</td></tr>\n");
            continue;
        }
        evbuffer_add_printf(b,
                            "</td><td>%.2f s</td><td>%llu</td><td>%llu</td><td>%llu</td>"
                            "<td>%.2f&ndash;%.2f s (%.0f ms)</td><td>%.0f / %.0f ms</td>"
                            "</tr>\n",
                            d->at_s, (unsigned long long)d->affected,
                            (unsigned long long)d->recovered, (unsigned long long)d->lost,
                            rel_s(r, d->first_err_us), rel_s(r, d->last_err_us), dur,
                            ms(mcpgw_lathist_percentile(d->recovery, 50)), rec);
    }
    evbuffer_add_printf(b, "</table>\n");
}

int mcpgw_report_html(const char *path, const struct mcpgw_lg_result *r, char *err, size_t errlen)
{
    struct evbuffer *b = evbuffer_new();
    struct html_series p;
    size_t len;
    int rc;

    html_series_fill(&p, r);
    html_summary(b, r);
    html_charts(b, r, &p);
    html_processes(b, r);
    html_drills(b, r);
    evbuffer_add_printf(b, "<p style=\"font-size:12px;color:#666\">Latency is measured from each "
                           "call's intended send time (open loop) or its send time (closed "
                           "loop) to the complete response; every sample is kept in a "
                           "log-linear histogram (&lt;0.8%% bucket error). See "
                           "docs/loadgen.md.</p>\n</body></html>\n");
    len = evbuffer_get_length(b);
    rc = write_file(path, (const char *)evbuffer_pullup(b, -1), len, err, errlen);
    evbuffer_free(b);
    html_series_free(&p);
    return rc;
}
