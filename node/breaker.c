/* breaker.c - per-upstream circuit breaker, bulkhead, metrics and health line. */
#include "node/breaker.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BUCKETS 60
#define MAX_CLASSES 12

struct bucket {
    uint64_t slot; /* which window slice (now / slice length) these counts belong to */
    uint32_t calls, fails;
};

struct cls_counter {
    const char *cls; /* borrowed static string from the caller */
    uint64_t *n;
};

struct mcpgw_breaker {
    struct mcpgw_breaker_cfg cfg;
    char *name, *kind;
    mcpgw_breaker_clock_fn clock;
    void *clock_arg;
    mcpgw_breaker_state_fn on_state;
    void *on_state_arg;

    enum mcpgw_breaker_state state;
    uint32_t gen;         /* bumped on every state change: outcomes of older calls are ignored */
    uint64_t open_until;  /* us, while open */
    uint64_t open_len_ms; /* the current open period (doubles on failed probes) */
    unsigned probes_out;  /* probes in flight while half-open */
    unsigned probes_ok;   /* successful probes in a row while half-open */
    uint32_t trip_calls, trip_fails; /* the window when it tripped, for messages */
    unsigned inflight;
    struct bucket b[MAX_BUCKETS];

    struct mcpgw_metrics *metrics;
    char labels[160];
    uint64_t *m_calls, *m_refused_open, *m_refused_full, *m_opened, *m_restarts;
    int64_t *m_state, *m_inflight, *m_procs;
    struct mcpgw_hist *m_latency;
    struct cls_counter cls[MAX_CLASSES];
};

const char *mcpgw_breaker_state_str(enum mcpgw_breaker_state s)
{
    switch (s) {
    case MCPGW_BREAKER_CLOSED:
        return "closed";
    case MCPGW_BREAKER_OPEN:
        return "open";
    case MCPGW_BREAKER_HALF_OPEN:
        return "half-open";
    default:
        return "?";
    }
}

static uint64_t mono_us(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void defaults(struct mcpgw_breaker_cfg *c)
{
    if (!c->window_ms)
        c->window_ms = 10000;
    if (!c->buckets)
        c->buckets = 10;
    if (c->buckets > MAX_BUCKETS)
        c->buckets = MAX_BUCKETS;
    if (c->window_ms < c->buckets)
        c->window_ms = c->buckets;
    if (!c->min_calls)
        c->min_calls = 10;
    if (!c->error_pct || c->error_pct > 100)
        c->error_pct = 50;
    if (!c->open_ms)
        c->open_ms = 5000;
    if (!c->max_open_ms)
        c->max_open_ms = 60000;
    if (c->max_open_ms < c->open_ms)
        c->max_open_ms = c->open_ms;
    if (!c->probes)
        c->probes = 1;
}

/* Label values come from the config file; keep the exposition format valid whatever they hold. */
static void label_value(char *out, size_t len, const char *s)
{
    size_t o = 0;
    for (; *s && o + 1 < len; s++)
        out[o++] = (*s == '"' || *s == '\\' || *s == '\n') ? '_' : *s;
    out[o] = '\0';
}

static void register_metrics(struct mcpgw_breaker *b)
{
    char name[64], kind[16];
    struct mcpgw_metrics *m = b->metrics;
    label_value(name, sizeof(name), b->name);
    label_value(kind, sizeof(kind), b->kind);
    snprintf(b->labels, sizeof(b->labels), "upstream=\"%s\",kind=\"%s\"", name, kind);
    b->m_calls =
        mcpgw_metrics_counter(m, "mcpgw_upstream_calls_total",
                              "Calls sent to the upstream (admitted by its breaker).", b->labels);
    b->m_latency =
        mcpgw_metrics_hist(m, "mcpgw_upstream_call_seconds",
                           "Upstream call latency, admitted to answered or failed.", b->labels);
    b->m_state =
        mcpgw_metrics_gauge(m, "mcpgw_upstream_breaker_state",
                            "Circuit breaker state: 0 closed, 1 open, 2 half-open.", b->labels);
    b->m_opened = mcpgw_metrics_counter(m, "mcpgw_upstream_breaker_opened_total",
                                        "Times the upstream's circuit breaker opened.", b->labels);
    b->m_inflight =
        mcpgw_metrics_gauge(m, "mcpgw_upstream_inflight",
                            "Upstream calls in flight (the bulkhead's count).", b->labels);
    {
        char l[200];
        snprintf(l, sizeof(l), "%s,reason=\"breaker_open\"", b->labels);
        b->m_refused_open = mcpgw_metrics_counter(m, "mcpgw_upstream_refused_total",
                                                  "Calls refused before reaching the upstream.", l);
        snprintf(l, sizeof(l), "%s,reason=\"max_inflight\"", b->labels);
        b->m_refused_full = mcpgw_metrics_counter(m, "mcpgw_upstream_refused_total",
                                                  "Calls refused before reaching the upstream.", l);
    }
    if (strcmp(b->kind, "stdio") == 0) {
        b->m_procs =
            mcpgw_metrics_gauge(m, "mcpgw_upstream_processes",
                                "Child processes running for a stdio upstream.", b->labels);
        b->m_restarts = mcpgw_metrics_counter(
            m, "mcpgw_upstream_restarts_total",
            "Times a stdio upstream's child exited and was restarted.", b->labels);
    }
}

struct mcpgw_breaker *mcpgw_breaker_new(const struct mcpgw_breaker_cfg *cfg,
                                        struct mcpgw_metrics *metrics, mcpgw_breaker_clock_fn clock,
                                        void *clock_arg)
{
    struct mcpgw_breaker *b = xcalloc(1, sizeof(*b));
    b->cfg = *cfg;
    defaults(&b->cfg);
    b->name = xstrdup(cfg->name ? cfg->name : "?");
    b->kind = xstrdup(cfg->kind ? cfg->kind : "http");
    b->cfg.name = b->name;
    b->cfg.kind = b->kind;
    b->clock = clock ? clock : mono_us;
    b->clock_arg = clock_arg;
    b->open_len_ms = b->cfg.open_ms;
    b->metrics = metrics;
    if (metrics)
        register_metrics(b);
    return b;
}

void mcpgw_breaker_free(struct mcpgw_breaker *b)
{
    if (!b)
        return;
    /* The registry keeps its series; leave them at a state that says nothing is running. */
    if (b->m_inflight)
        *b->m_inflight = 0;
    if (b->m_procs)
        *b->m_procs = 0;
    free(b->name);
    free(b->kind);
    free(b);
}

void mcpgw_breaker_on_state(struct mcpgw_breaker *b, mcpgw_breaker_state_fn fn, void *arg)
{
    b->on_state = fn;
    b->on_state_arg = arg;
}

void mcpgw_breaker_set_limits(struct mcpgw_breaker *b, unsigned max_inflight)
{
    b->cfg.max_inflight = max_inflight;
}

static void window_reset(struct mcpgw_breaker *b)
{
    memset(b->b, 0, sizeof(b->b));
}

static uint64_t slice_us(const struct mcpgw_breaker *b)
{
    return (uint64_t)b->cfg.window_ms * 1000u / b->cfg.buckets;
}

/* The bucket for now, emptied if it last held an older slice. */
static struct bucket *bucket_now(struct mcpgw_breaker *b, uint64_t now)
{
    uint64_t slot = now / slice_us(b) + 1; /* +1: slot 0 marks an unused bucket */
    struct bucket *k = &b->b[slot % b->cfg.buckets];
    if (k->slot != slot) {
        k->slot = slot;
        k->calls = k->fails = 0;
    }
    return k;
}

static void window_sum(struct mcpgw_breaker *b, uint64_t now, uint32_t *calls, uint32_t *fails)
{
    uint64_t slot = now / slice_us(b) + 1;
    *calls = *fails = 0;
    for (unsigned i = 0; i < b->cfg.buckets; i++)
        if (b->b[i].slot + b->cfg.buckets > slot) {
            *calls += b->b[i].calls;
            *fails += b->b[i].fails;
        }
}

static void set_state(struct mcpgw_breaker *b, enum mcpgw_breaker_state to, uint64_t now)
{
    enum mcpgw_breaker_state from = b->state;
    if (from == to)
        return;
    b->state = to;
    b->gen++;
    b->probes_out = b->probes_ok = 0;
    if (to == MCPGW_BREAKER_OPEN) {
        b->open_until = now + b->open_len_ms * 1000u;
        if (b->m_opened)
            (*b->m_opened)++;
    } else if (to == MCPGW_BREAKER_CLOSED) {
        b->open_len_ms = b->cfg.open_ms;
        window_reset(b);
    }
    if (b->m_state)
        *b->m_state = (int64_t)to;
    mcpgw_log(to == MCPGW_BREAKER_CLOSED ? MCPGW_LOG_INFO : MCPGW_LOG_WARN,
              "upstream %s: circuit %s -> %s", b->name, mcpgw_breaker_state_str(from),
              mcpgw_breaker_state_str(to));
    if (b->on_state)
        b->on_state(b->on_state_arg, from, to);
}

/* An open breaker whose period has ended becomes half-open when next looked at. */
static void tick(struct mcpgw_breaker *b, uint64_t now)
{
    if (b->state == MCPGW_BREAKER_OPEN && now >= b->open_until)
        set_state(b, MCPGW_BREAKER_HALF_OPEN, now);
}

enum mcpgw_breaker_state mcpgw_breaker_state(struct mcpgw_breaker *b)
{
    tick(b, b->clock(b->clock_arg));
    return b->state;
}

unsigned mcpgw_breaker_inflight(const struct mcpgw_breaker *b)
{
    return b->inflight;
}

uint64_t mcpgw_breaker_retry_in_us(struct mcpgw_breaker *b)
{
    uint64_t now = b->clock(b->clock_arg);
    tick(b, now);
    return b->state == MCPGW_BREAKER_OPEN ? b->open_until - now : 0;
}

enum mcpgw_breaker_verdict mcpgw_breaker_admit(struct mcpgw_breaker *b,
                                               struct mcpgw_breaker_ticket *t, char *why,
                                               size_t whylen)
{
    uint64_t now = b->clock(b->clock_arg);
    tick(b, now);
    if (b->state == MCPGW_BREAKER_OPEN ||
        (b->state == MCPGW_BREAKER_HALF_OPEN && b->probes_out >= b->cfg.probes)) {
        if (b->m_refused_open)
            (*b->m_refused_open)++;
        if (b->state == MCPGW_BREAKER_OPEN)
            snprintf(why, whylen,
                     "upstream '%s' is unavailable: its circuit breaker is open after %u of %u "
                     "calls failed; next try in %.1f s",
                     b->name, b->trip_fails, b->trip_calls, (double)(b->open_until - now) / 1e6);
        else
            snprintf(why, whylen,
                     "upstream '%s' is unavailable: its circuit breaker is half-open and a probe "
                     "call is under way",
                     b->name);
        return MCPGW_BREAKER_REFUSE_OPEN;
    }
    if (b->cfg.max_inflight && b->inflight >= b->cfg.max_inflight) {
        if (b->m_refused_full)
            (*b->m_refused_full)++;
        snprintf(why, whylen,
                 "upstream '%s' is busy: %u calls are in flight, its max-inflight limit; try "
                 "again later",
                 b->name, b->inflight);
        return MCPGW_BREAKER_REFUSE_FULL;
    }
    t->start_us = now;
    t->gen = b->gen;
    t->probe = b->state == MCPGW_BREAKER_HALF_OPEN;
    t->live = 1;
    if (t->probe)
        b->probes_out++;
    b->inflight++;
    if (b->m_inflight)
        *b->m_inflight = b->inflight;
    if (b->m_calls)
        (*b->m_calls)++;
    return MCPGW_BREAKER_ADMIT;
}

void mcpgw_breaker_admit_always(struct mcpgw_breaker *b, struct mcpgw_breaker_ticket *t)
{
    uint64_t now = b->clock(b->clock_arg);
    tick(b, now);
    t->start_us = now;
    t->gen = b->gen;
    t->probe = 0;
    t->live = 1;
    b->inflight++;
    if (b->m_inflight)
        *b->m_inflight = b->inflight;
    if (b->m_calls)
        (*b->m_calls)++;
}

static void count_error(struct mcpgw_breaker *b, const char *cls)
{
    size_t i;
    if (!b->metrics)
        return;
    if (!cls)
        cls = "error";
    for (i = 0; i < MAX_CLASSES && b->cls[i].cls; i++)
        if (b->cls[i].cls == cls || strcmp(b->cls[i].cls, cls) == 0) {
            (*b->cls[i].n)++;
            return;
        }
    {
        char l[220], c[24];
        uint64_t *n;
        label_value(c, sizeof(c), cls);
        snprintf(l, sizeof(l), "%s,class=\"%s\"", b->labels, c);
        n = mcpgw_metrics_counter(b->metrics, "mcpgw_upstream_errors_total",
                                  "Upstream calls that failed, by error class.", l);
        (*n)++;
        if (i < MAX_CLASSES) { /* remember it; past the cap each error looks its series up */
            b->cls[i].cls = cls;
            b->cls[i].n = n;
        }
    }
}

static void probe_done(struct mcpgw_breaker *b, enum mcpgw_breaker_outcome outcome, uint64_t now)
{
    if (b->probes_out)
        b->probes_out--;
    if (outcome == MCPGW_BREAKER_FAIL) {
        b->open_len_ms *= 2;
        if (b->open_len_ms > b->cfg.max_open_ms)
            b->open_len_ms = b->cfg.max_open_ms;
        b->trip_calls = b->trip_fails = 1;
        set_state(b, MCPGW_BREAKER_OPEN, now);
    } else if (outcome == MCPGW_BREAKER_OK && ++b->probes_ok >= b->cfg.probes) {
        set_state(b, MCPGW_BREAKER_CLOSED, now);
    }
}

void mcpgw_breaker_done(struct mcpgw_breaker *b, struct mcpgw_breaker_ticket *t,
                        enum mcpgw_breaker_outcome outcome, const char *cls)
{
    uint64_t now;
    if (!t->live)
        return;
    t->live = 0;
    now = b->clock(b->clock_arg);
    if (b->inflight)
        b->inflight--;
    if (b->m_inflight)
        *b->m_inflight = b->inflight;
    if (b->m_latency && outcome != MCPGW_BREAKER_NEUTRAL)
        mcpgw_hist_observe(b->m_latency, (double)(now - t->start_us) / 1e6);
    if (outcome != MCPGW_BREAKER_OK)
        count_error(b, outcome == MCPGW_BREAKER_NEUTRAL && !cls ? "cancelled" : cls);
    tick(b, now);
    if (t->gen != b->gen) /* admitted under an earlier state: says nothing about this one */
        return;
    if (t->probe) {
        probe_done(b, outcome, now);
        return;
    }
    if (b->state != MCPGW_BREAKER_CLOSED || outcome == MCPGW_BREAKER_NEUTRAL)
        return;
    {
        struct bucket *k = bucket_now(b, now);
        uint32_t calls, fails;
        k->calls++;
        if (outcome == MCPGW_BREAKER_FAIL)
            k->fails++;
        else
            return; /* a success never trips it */
        window_sum(b, now, &calls, &fails);
        if (calls >= b->cfg.min_calls &&
            (uint64_t)fails * 100u >= (uint64_t)b->cfg.error_pct * calls) {
            b->trip_calls = calls;
            b->trip_fails = fails;
            set_state(b, MCPGW_BREAKER_OPEN, now);
        }
    }
}

void mcpgw_breaker_note_procs(struct mcpgw_breaker *b, long running)
{
    if (b->m_procs)
        *b->m_procs = running;
}

void mcpgw_breaker_note_restart(struct mcpgw_breaker *b)
{
    if (b->m_restarts)
        (*b->m_restarts)++;
}

size_t mcpgw_breaker_health(struct mcpgw_breaker *b, char *buf, size_t len)
{
    uint64_t now = b->clock(b->clock_arg);
    uint32_t calls, fails;
    int n;
    if (!len)
        return 0;
    tick(b, now);
    window_sum(b, now, &calls, &fails);
    if (b->state == MCPGW_BREAKER_OPEN)
        n = snprintf(buf, len, "upstream %s: open (%u of %u calls failed; probe in %.1f s)\n",
                     b->name, b->trip_fails, b->trip_calls, (double)(b->open_until - now) / 1e6);
    else
        n = snprintf(buf, len, "upstream %s: %s, %u in flight, %u of %u calls failed recently\n",
                     b->name, mcpgw_breaker_state_str(b->state), b->inflight, fails, calls);
    if (n < 0)
        n = 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

static int read_ms(const char *key, const char *value, unsigned *out, char *err, size_t errlen)
{
    uint64_t ms;
    if (mcpgw_parse_duration_ms(value, &ms) < 0 || ms == 0 || ms > 3600000u) {
        snprintf(err, errlen, "%s=%s: expected a duration from 1ms to 1h, such as 500ms or 10s",
                 key, value);
        return -1;
    }
    *out = (unsigned)ms;
    return 1;
}

static int read_uint(const char *key, const char *value, unsigned lo, unsigned hi, unsigned *out,
                     char *err, size_t errlen)
{
    char *end;
    unsigned long v = strtoul(value, &end, 10);
    if (end == value || (*end && strcmp(end, "%") != 0) || v < lo || v > hi) {
        snprintf(err, errlen, "%s=%s: expected a whole number from %u to %u", key, value, lo, hi);
        return -1;
    }
    *out = (unsigned)v;
    return 1;
}

int mcpgw_breaker_cfg_key(struct mcpgw_breaker_cfg *cfg, const char *key, const char *value,
                          char *err, size_t errlen)
{
    if (strcmp(key, "breaker-window") == 0)
        return read_ms(key, value, &cfg->window_ms, err, errlen);
    if (strcmp(key, "breaker-open") == 0)
        return read_ms(key, value, &cfg->open_ms, err, errlen);
    if (strcmp(key, "breaker-min") == 0)
        return read_uint(key, value, 1, 1000000, &cfg->min_calls, err, errlen);
    if (strcmp(key, "breaker-errors") == 0)
        return read_uint(key, value, 1, 100, &cfg->error_pct, err, errlen);
    if (strcmp(key, "breaker-probes") == 0)
        return read_uint(key, value, 1, 1000, &cfg->probes, err, errlen);
    return 0;
}
