/* admin.c - /metrics and /healthz for the balancer, summed over the workers' stats blocks. */
#include "balancer/admin.h"

#include "common/httpd.h"
#include "common/metrics.h"
#include "common/util.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mcpgw_bal_admin {
    struct mcpgw_httpd *srv;
    struct mcpgw_bal_shared *sh;
    int draining;
};

static const char *const class_names[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

void mcpgw_bal_admin_render(const struct mcpgw_bal_shared *sh, struct evbuffer *out)
{
    struct mcpgw_metrics *m = mcpgw_metrics_new();
    int64_t clients = 0, workers = 0;
    uint64_t accepted = 0, rejected[MCPGW_BAL_REJECT_COUNT] = {0};
    uint32_t n = MCPGW_LOAD(&sh->nslots);
    char labels[160];

    for (int w = 0; w < MCPGW_BAL_MAX_WORKERS; w++) {
        const struct mcpgw_bal_worker_stats *ws = &sh->workers[w];
        if (MCPGW_LOAD(&ws->pid))
            workers++;
        clients += MCPGW_LOAD(&ws->clients);
        accepted += MCPGW_LOAD(&ws->accepted);
        for (int r = 0; r < MCPGW_BAL_REJECT_COUNT; r++)
            rejected[r] += MCPGW_LOAD(&ws->rejected[r]);
    }
    *mcpgw_metrics_gauge(m, "mcpgw_balancer_workers", "Worker processes running.", NULL) = workers;
    *mcpgw_metrics_gauge(m, "mcpgw_balancer_client_connections",
                         "Client connections open, all workers.", NULL) = clients;
    *mcpgw_metrics_counter(m, "mcpgw_balancer_client_connections_accepted_total",
                           "Client connections accepted.", NULL) = accepted;
    for (int r = 0; r < MCPGW_BAL_REJECT_COUNT; r++) {
        snprintf(labels, sizeof(labels), "status=\"%s\"",
                 mcpgw_bal_reject_str((enum mcpgw_bal_reject)r));
        *mcpgw_metrics_counter(m, "mcpgw_balancer_client_errors_total",
                               "Error responses the balancer generated itself, by status.",
                               labels) = rejected[r];
    }
    for (uint32_t i = 0; i < n && i < MCPGW_BAL_MAX_NODES; i++) {
        const struct mcpgw_bal_slot *s = &sh->slots[i];
        struct mcpgw_bal_node_stats sum;
        struct mcpgw_hist *h;
        uint64_t passive = 0;
        if (!s->in_use)
            continue;
        memset(&sum, 0, sizeof(sum));
        for (int w = 0; w < MCPGW_BAL_MAX_WORKERS; w++) {
            const struct mcpgw_bal_node_stats *ns = &sh->workers[w].nodes[i];
            sum.requests += MCPGW_LOAD(&ns->requests);
            sum.errors += MCPGW_LOAD(&ns->errors);
            sum.retries += MCPGW_LOAD(&ns->retries);
            sum.assigned += MCPGW_LOAD(&ns->assigned);
            for (int k = 0; k < 5; k++)
                sum.responses[k] += MCPGW_LOAD(&ns->responses[k]);
            sum.active += MCPGW_LOAD(&ns->active);
            sum.idle += MCPGW_LOAD(&ns->idle);
            sum.mux_conns += MCPGW_LOAD(&ns->mux_conns);
            sum.mux_streams += MCPGW_LOAD(&ns->mux_streams);
            sum.resumed += MCPGW_LOAD(&ns->resumed);
            passive += MCPGW_LOAD(&ns->passive_down);
            for (int b = 0; b <= MCPGW_HIST_BUCKETS; b++)
                sum.latency.counts[b] += ns->latency.counts[b];
            sum.latency.count += ns->latency.count;
            sum.latency.sum += ns->latency.sum;
        }
        snprintf(labels, sizeof(labels), "node=\"%s\"", s->id);
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_node_up",
                             "1 while the node passes its active health checks.", labels) =
            MCPGW_LOAD(&s->up) ? 1 : 0;
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_node_draining",
                             "1 while the node takes no new sessions.", labels) = s->draining;
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_node_passive_down_workers",
                             "Workers that hold a passive down mark for the node.", labels) =
            (int64_t)passive;
        *mcpgw_metrics_counter(m, "mcpgw_balancer_requests_total", "Requests sent to the node.",
                               labels) = sum.requests;
        *mcpgw_metrics_counter(m, "mcpgw_balancer_assigned_total",
                               "Requests without a session sent to the node by load.", labels) =
            sum.assigned;
        *mcpgw_metrics_counter(m, "mcpgw_balancer_upstream_errors_total",
                               "Connect failures, resets, timeouts and bad responses.", labels) =
            sum.errors;
        *mcpgw_metrics_counter(m, "mcpgw_balancer_retries_total",
                               "Requests moved to another node before any byte reached this one.",
                               labels) = sum.retries;
        *mcpgw_metrics_counter(m, "mcpgw_balancer_streams_resumed_total",
                               "SSE streams of a failed node carried on at this node.", labels) =
            sum.resumed;
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_upstream_active_connections",
                             "Requests and streams in flight to the node (HTTP/2 streams "
                             "included).",
                             labels) = sum.active;
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_upstream_mux_connections",
                             "HTTP/2 connections carrying session GET streams.", labels) =
            sum.mux_conns;
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_upstream_mux_streams",
                             "Session GET streams carried over HTTP/2 connections.", labels) =
            sum.mux_streams;
        *mcpgw_metrics_gauge(m, "mcpgw_balancer_upstream_idle_connections",
                             "Pooled idle upstream connections.", labels) = sum.idle;
        {
            char l2[192];
            snprintf(l2, sizeof(l2), "node=\"%s\",result=\"fail\"", s->id);
            *mcpgw_metrics_counter(m, "mcpgw_balancer_health_checks_total",
                                   "Active health checks by result.", l2) =
                MCPGW_LOAD(&sh->checks[i][0]);
            snprintf(l2, sizeof(l2), "node=\"%s\",result=\"pass\"", s->id);
            *mcpgw_metrics_counter(m, "mcpgw_balancer_health_checks_total",
                                   "Active health checks by result.", l2) =
                MCPGW_LOAD(&sh->checks[i][1]);
            for (int k = 0; k < 5; k++) {
                snprintf(l2, sizeof(l2), "node=\"%s\",class=\"%s\"", s->id, class_names[k]);
                *mcpgw_metrics_counter(m, "mcpgw_balancer_responses_total",
                                       "Responses relayed from the node, by status class.", l2) =
                    sum.responses[k];
            }
        }
        h = mcpgw_metrics_hist(m, "mcpgw_balancer_request_duration_seconds",
                               "From request head received to response head relayed.", labels);
        *h = sum.latency;
    }
    if (sh->gossip_on)
        mcpgw_gossip_udp_export_stats(&sh->gossip, m, NULL);
    mcpgw_metrics_render(m, out);
    mcpgw_metrics_free(m);
}

/* Why slot i cannot take new sessions from every running worker, or NULL when it can: the
 * worker-side rule (proxy.c, pick) is the table's up and draining plus that worker's own passive
 * mark, which each worker publishes in its stats block. */
static const char *unroutable_why(const struct mcpgw_bal_shared *sh, uint32_t i)
{
    const struct mcpgw_bal_slot *s = &sh->slots[i];
    if (!MCPGW_LOAD(&s->up))
        return "down";
    if (s->draining)
        return "draining";
    for (int w = 0; w < MCPGW_BAL_MAX_WORKERS; w++)
        if (MCPGW_LOAD(&sh->workers[w].pid) && MCPGW_LOAD(&sh->workers[w].nodes[i].passive_down))
            return "marked down by a worker";
    return NULL;
}

int mcpgw_bal_admin_render_health(const struct mcpgw_bal_shared *sh, int draining,
                                  struct evbuffer *out)
{
    int up = 0, total = 0, routable = 0, workers = 0, sep = 0;
    uint32_t n = MCPGW_LOAD(&sh->nslots);
    struct evbuffer *why = evbuffer_new();

    for (int w = 0; w < MCPGW_BAL_MAX_WORKERS; w++)
        workers += MCPGW_LOAD(&sh->workers[w].pid) != 0;
    for (uint32_t i = 0; i < n && i < MCPGW_BAL_MAX_NODES; i++) {
        const char *no;
        if (!sh->slots[i].in_use)
            continue;
        total++;
        up += MCPGW_LOAD(&sh->slots[i].up) ? 1 : 0;
        no = unroutable_why(sh, i);
        if (!no) {
            routable++;
            continue;
        }
        evbuffer_add_printf(why, "%s\"", sep++ ? "," : "");
        /* gossip ids are any printable ASCII: a quote or backslash must not end the string */
        for (const char *p = sh->slots[i].id; *p; p++)
            evbuffer_add_printf(why, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        evbuffer_add_printf(why, ": %s\"", no);
    }
    evbuffer_add_printf(out,
                        "{\"status\":\"%s\",\"nodes\":%d,\"nodes_up\":%d,\"workers\":%d,"
                        "\"fallback\":%s,\"routable\":%d,\"not_routable\":[",
                        draining ? "draining" : (up ? "ok" : "no_node_up"), total, up, workers,
                        MCPGW_LOAD(&sh->fallback) ? "true" : "false", routable);
    evbuffer_add_buffer(out, why);
    evbuffer_add(out, "]}\n", 3);
    evbuffer_free(why);
    return up;
}

static void handle(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct mcpgw_bal_admin *a = arg;
    if (req->head.method != MCPGW_HTTP_GET && req->head.method != MCPGW_HTTP_HEAD) {
        mcpgw_http_respond(c, 405, "text/plain", "Allow: GET\r\n", "GET only\n", 9);
        return;
    }
    if (req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0) {
        struct evbuffer *b = evbuffer_new();
        size_t len;
        mcpgw_bal_admin_render(a->sh, b);
        len = evbuffer_get_length(b);
        mcpgw_http_respond(c, 200, "text/plain; version=0.0.4", NULL, evbuffer_pullup(b, -1), len);
        evbuffer_free(b);
        return;
    }
    if (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0) {
        struct evbuffer *b = evbuffer_new();
        int up = mcpgw_bal_admin_render_health(a->sh, a->draining, b);
        size_t len = evbuffer_get_length(b);
        mcpgw_http_respond(c, a->draining || !up ? 503 : 200, "application/json", NULL,
                           evbuffer_pullup(b, -1), len);
        evbuffer_free(b);
        return;
    }
    mcpgw_http_respond(c, 404, "text/plain", NULL, "not found\n", 10);
}

struct mcpgw_bal_admin *mcpgw_bal_admin_new(struct event_base *base, const char *addr,
                                            struct mcpgw_bal_shared *sh, char *err, size_t errlen)
{
    struct mcpgw_bal_admin *a = xcalloc(1, sizeof(*a));
    struct mcpgw_httpd_config cfg;
    mcpgw_httpd_config_defaults(&cfg);
    cfg.max_conns = 256;
    cfg.idle_timeout_ms = 60000;
    a->sh = sh;
    a->srv = mcpgw_httpd_new(base, &cfg, handle, a);
    if (!a->srv) {
        snprintf(err, errlen, "cannot start the admin listener (libevent)");
        free(a);
        return NULL;
    }
    if (mcpgw_httpd_listen(a->srv, addr, err, errlen) < 0) {
        mcpgw_httpd_free(a->srv);
        free(a);
        return NULL;
    }
    return a;
}

void mcpgw_bal_admin_set_draining(struct mcpgw_bal_admin *a, int draining)
{
    if (a)
        a->draining = draining;
}

void mcpgw_bal_admin_free(struct mcpgw_bal_admin *a)
{
    if (!a)
        return;
    mcpgw_httpd_free(a->srv);
    free(a);
}
