/* breaker.h - failure handling for one upstream: a circuit breaker over a rolling error-rate
 * window, a bulkhead (max calls in flight), and the upstream's metrics and health. */
#ifndef MCPGW_NODE_BREAKER_H
#define MCPGW_NODE_BREAKER_H

#include <stddef.h>
#include <stdint.h>

struct mcpgw_metrics;
struct mcpgw_breaker;

enum mcpgw_breaker_state {
    MCPGW_BREAKER_CLOSED,    /* calls pass; outcomes fill the window */
    MCPGW_BREAKER_OPEN,      /* calls are refused at once until the open period ends */
    MCPGW_BREAKER_HALF_OPEN, /* a few probe calls pass; their outcome closes or re-opens it */
    MCPGW_BREAKER_COUNT
};
const char *mcpgw_breaker_state_str(enum mcpgw_breaker_state s);

/* How a call ended, as far as the upstream's health is concerned. */
enum mcpgw_breaker_outcome {
    MCPGW_BREAKER_OK,      /* an answer (a JSON-RPC error result is an answer too) */
    MCPGW_BREAKER_FAIL,    /* the upstream failed: unreachable, cut, slow, malformed, exited */
    MCPGW_BREAKER_NEUTRAL, /* says nothing about the upstream (the client cancelled, shutdown) */
};

/* Defaults are used for every field left 0. */
struct mcpgw_breaker_cfg {
    const char *name;      /* the upstream's name, for messages and metric labels (copied) */
    const char *kind;      /* "http" or "stdio", a metric label (copied; NULL = "http") */
    unsigned window_ms;    /* rolling window length (10 s) */
    unsigned buckets;      /* the window is counted in this many slices (10) */
    unsigned min_calls;    /* no trip before this many calls ended in the window (10) */
    unsigned error_pct;    /* trip at this failure rate, in percent (50) */
    unsigned open_ms;      /* first open period (5 s); doubles after a failed probe */
    unsigned max_open_ms;  /* cap of the open period (60 s) */
    unsigned probes;       /* probe calls let through at once while half-open (1); that many
                            * successes in a row close the breaker */
    unsigned max_inflight; /* bulkhead: calls in flight at once (0 = no limit) */
};

/* A monotonic clock in microseconds; tests inject one. */
typedef uint64_t (*mcpgw_breaker_clock_fn)(void *arg);

/* Called when the state changes (optional): e.g. a stdio upstream restarts its child when the
 * breaker opens. Runs inside admit/done/state; must not free the breaker. */
typedef void (*mcpgw_breaker_state_fn)(void *arg, enum mcpgw_breaker_state from,
                                       enum mcpgw_breaker_state to);

/* What admit gives a call that may go; pass it back to done exactly once. */
struct mcpgw_breaker_ticket {
    uint64_t start_us;
    uint32_t gen;  /* the breaker's state generation when admitted */
    uint8_t probe; /* admitted as a half-open probe */
    uint8_t live;  /* set by admit, cleared by done (a second done is ignored) */
};

/* metrics (borrowed, may be NULL) receives this upstream's series, labelled upstream="name";
 * clock NULL = CLOCK_MONOTONIC. Free with mcpgw_breaker_free. */
struct mcpgw_breaker *mcpgw_breaker_new(const struct mcpgw_breaker_cfg *cfg,
                                        struct mcpgw_metrics *metrics, mcpgw_breaker_clock_fn clock,
                                        void *clock_arg);
void mcpgw_breaker_free(struct mcpgw_breaker *b);
void mcpgw_breaker_on_state(struct mcpgw_breaker *b, mcpgw_breaker_state_fn fn, void *arg);
/* The limits can change on reload; counts and state are kept. */
void mcpgw_breaker_set_limits(struct mcpgw_breaker *b, unsigned max_inflight);

enum mcpgw_breaker_verdict {
    MCPGW_BREAKER_ADMIT = 0,
    MCPGW_BREAKER_REFUSE_OPEN = -1, /* the circuit is open (or half-open with its probes out) */
    MCPGW_BREAKER_REFUSE_FULL = -2, /* max-inflight calls already in flight */
};

/* May a call go to the upstream now? On ADMIT t is filled and the call counts as in flight
 * until mcpgw_breaker_done. On a refusal, why gets a sentence naming the upstream, for the
 * JSON-RPC error the client receives, and nothing is queued. */
enum mcpgw_breaker_verdict mcpgw_breaker_admit(struct mcpgw_breaker *b,
                                               struct mcpgw_breaker_ticket *t, char *why,
                                               size_t whylen);
/* Admits a call the node makes for itself (a list fetch after a restart) whatever the state
 * and the limit: counted in flight and in metrics, its outcome counted as usual. */
void mcpgw_breaker_admit_always(struct mcpgw_breaker *b, struct mcpgw_breaker_ticket *t);
/* The end of an admitted call. cls names the error class for metrics when outcome is not OK
 * ("transport", "timeout", "http", "too_big", "bad_json", "bad_id", "gone", "protocol",
 * "exited", ...; borrowed; NULL = "error"). A second done on one ticket is ignored. */
void mcpgw_breaker_done(struct mcpgw_breaker *b, struct mcpgw_breaker_ticket *t,
                        enum mcpgw_breaker_outcome outcome, const char *cls);

/* The state now (an open breaker whose period ended reads as half-open). */
enum mcpgw_breaker_state mcpgw_breaker_state(struct mcpgw_breaker *b);
unsigned mcpgw_breaker_inflight(const struct mcpgw_breaker *b);
/* Microseconds until an open breaker lets a probe through (0 when not open). */
uint64_t mcpgw_breaker_retry_in_us(struct mcpgw_breaker *b);

/* stdio upstreams: processes running and restarts, for metrics and readyz. */
void mcpgw_breaker_note_procs(struct mcpgw_breaker *b, long running);
void mcpgw_breaker_note_restart(struct mcpgw_breaker *b);

/* One line of /readyz for this upstream: "upstream NAME: closed, 3 in flight\n" or
 * "upstream NAME: open (7 of 12 calls failed; probe in 4.2 s)\n". Appends to buf (at most len
 * bytes, NUL-terminated); returns the length written. */
size_t mcpgw_breaker_health(struct mcpgw_breaker *b, char *buf, size_t len);

/* Reads one breaker key of an upstream config line: breaker-window=10s, breaker-min=10,
 * breaker-errors=50%, breaker-open=5s, breaker-probes=1. Returns 1 when the key was one of
 * these and was read, 0 when the key is not a breaker key, -1 with err filled on a bad value. */
int mcpgw_breaker_cfg_key(struct mcpgw_breaker_cfg *cfg, const char *key, const char *value,
                          char *err, size_t errlen);

#endif
