/* metrics.h - a small Prometheus metrics registry: counters, gauges, latency histograms. */
#ifndef MCPGW_COMMON_METRICS_H
#define MCPGW_COMMON_METRICS_H

#include <stdint.h>

struct evbuffer;
struct mcpgw_metrics;

#define MCPGW_HIST_BUCKETS 14

/* A latency histogram in seconds with fixed buckets from 100 us to 10 s. */
struct mcpgw_hist {
    uint64_t counts[MCPGW_HIST_BUCKETS + 1]; /* last one is +Inf */
    uint64_t count;
    double sum;
};
void mcpgw_hist_observe(struct mcpgw_hist *h, double seconds);

struct mcpgw_metrics *mcpgw_metrics_new(void);
void mcpgw_metrics_free(struct mcpgw_metrics *m);

/* Register a series and get the place to update it. name and help are borrowed static
 * strings; labels ("node=\"n1\"" or NULL) is copied. The pointer stays valid until the registry
 * is freed. Registering the same name+labels twice returns the same place. */
uint64_t *mcpgw_metrics_counter(struct mcpgw_metrics *m, const char *name, const char *help,
                                const char *labels);
int64_t *mcpgw_metrics_gauge(struct mcpgw_metrics *m, const char *name, const char *help,
                             const char *labels);
struct mcpgw_hist *mcpgw_metrics_hist(struct mcpgw_metrics *m, const char *name, const char *help,
                                      const char *labels);

/* Append the Prometheus text exposition of every series. */
void mcpgw_metrics_render(struct mcpgw_metrics *m, struct evbuffer *out);

#endif
