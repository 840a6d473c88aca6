/* metrics.c - Prometheus text-format metrics registry. */
#include "common/metrics.h"

#include "common/util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[MCPGW_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10};

enum kind { K_COUNTER, K_GAUGE, K_HIST };

struct series {
    const char *name, *help;
    char *labels;
    enum kind kind;
    union {
        uint64_t counter;
        int64_t gauge;
        struct mcpgw_hist *hist;
    } v;
};

struct mcpgw_metrics {
    struct series **s;
    int n, cap;
};

void mcpgw_hist_observe(struct mcpgw_hist *h, double seconds)
{
    int i = 0;
    while (i < MCPGW_HIST_BUCKETS && seconds > bucket_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

struct mcpgw_metrics *mcpgw_metrics_new(void)
{
    return xcalloc(1, sizeof(struct mcpgw_metrics));
}

void mcpgw_metrics_free(struct mcpgw_metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        if (m->s[i]->kind == K_HIST)
            free(m->s[i]->v.hist);
        free(m->s[i]->labels);
        free(m->s[i]);
    }
    free(m->s);
    free(m);
}

static struct series *get(struct mcpgw_metrics *m, const char *name, const char *help,
                          const char *labels, enum kind kind)
{
    struct series *s;
    for (int i = 0; i < m->n; i++) {
        s = m->s[i];
        if (strcmp(s->name, name) == 0 &&
            strcmp(s->labels ? s->labels : "", labels ? labels : "") == 0)
            return s;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->s = xrealloc(m->s, (size_t)m->cap * sizeof(*m->s));
    }
    s = xcalloc(1, sizeof(*s));
    s->name = name;
    s->help = help;
    s->labels = labels && *labels ? xstrdup(labels) : NULL;
    s->kind = kind;
    if (kind == K_HIST)
        s->v.hist = xcalloc(1, sizeof(struct mcpgw_hist));
    /* Keep series of one name together so HELP/TYPE are printed once. */
    {
        int at = m->n;
        for (int i = m->n - 1; i >= 0; i--)
            if (strcmp(m->s[i]->name, name) == 0) {
                at = i + 1;
                break;
            }
        memmove(&m->s[at + 1], &m->s[at], (size_t)(m->n - at) * sizeof(*m->s));
        m->s[at] = s;
        m->n++;
    }
    return s;
}

uint64_t *mcpgw_metrics_counter(struct mcpgw_metrics *m, const char *name, const char *help,
                                const char *labels)
{
    return &get(m, name, help, labels, K_COUNTER)->v.counter;
}

int64_t *mcpgw_metrics_gauge(struct mcpgw_metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return &get(m, name, help, labels, K_GAUGE)->v.gauge;
}

struct mcpgw_hist *mcpgw_metrics_hist(struct mcpgw_metrics *m, const char *name, const char *help,
                                      const char *labels)
{
    return get(m, name, help, labels, K_HIST)->v.hist;
}

void mcpgw_metrics_render(struct mcpgw_metrics *m, struct evbuffer *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (int i = 0; i < m->n; i++) {
        struct series *s = m->s[i];
        const char *l = s->labels;
        if (i == 0 || strcmp(m->s[i - 1]->name, s->name) != 0)
            evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name,
                                type_names[s->kind]);
        switch (s->kind) {
        case K_COUNTER:
            evbuffer_add_printf(out, "%s%s%s%s %llu\n", s->name, l ? "{" : "", l ? l : "",
                                l ? "}" : "", (unsigned long long)s->v.counter);
            break;
        case K_GAUGE:
            evbuffer_add_printf(out, "%s%s%s%s %lld\n", s->name, l ? "{" : "", l ? l : "",
                                l ? "}" : "", (long long)s->v.gauge);
            break;
        case K_HIST: {
            uint64_t cum = 0;
            for (int b = 0; b <= MCPGW_HIST_BUCKETS; b++) {
                cum += s->v.hist->counts[b];
                if (b < MCPGW_HIST_BUCKETS)
                    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, l ? l : "",
                                        l ? "," : "", bucket_bounds[b], (unsigned long long)cum);
                else
                    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name,
                                        l ? l : "", l ? "," : "", (unsigned long long)cum);
            }
            evbuffer_add_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", s->name,
                                l ? "{" : "", l ? l : "", l ? "}" : "", s->v.hist->sum, s->name,
                                l ? "{" : "", l ? l : "", l ? "}" : "",
                                (unsigned long long)s->v.hist->count);
            break;
        }
        }
    }
}
