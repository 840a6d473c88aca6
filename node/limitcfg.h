/* limitcfg.h - the `limit` lines of the node's configuration, and the GCRA arithmetic the
 * rate limits share between Redis and the local fallback (docs/security.md, "Limits"). */
#ifndef MCPGW_NODE_LIMITCFG_H
#define MCPGW_NODE_LIMITCFG_H

#include <stddef.h>
#include <stdint.h>

enum mcpgw_limit_kind {
    MCPGW_LIMIT_RATE,        /* JSON-RPC requests per principal */
    MCPGW_LIMIT_TOOL_RATE,   /* tools/call of one tool per principal */
    MCPGW_LIMIT_CONCURRENCY, /* calls in flight per principal, on this node */
    MCPGW_LIMIT_SESSIONS,    /* sessions per principal, cluster-wide with Redis */
    MCPGW_LIMIT_COUNT
};
/* "rate", "tool_rate", "concurrency", "sessions": the metric's and the audit line's label. */
const char *mcpgw_limit_kind_str(int kind);

struct mcpgw_limit_rule {
    enum mcpgw_limit_kind kind;
    char *principal;      /* owned; NULL: every principal (principal=* or none given) */
    char *tool;           /* owned; TOOL_RATE only; NULL: each tool (tool=*) */
    int unlimited;        /* `unlimited` as the value: an override that lifts the limit */
    uint64_t interval_us; /* rates: the time one request costs at the steady rate */
    uint64_t burst;       /* rates: requests that may come at once */
    uint64_t cap;         /* CONCURRENCY, SESSIONS */
    char text[80];        /* the value as written, for messages ("100/s burst=200", "16") */
};

/* Every `limit` line in file order (later lines win among equally specific rules). */
struct mcpgw_limitcfg {
    struct mcpgw_limit_rule *v;
    int n;
};

/* Parse one `limit` line (its words after the key) onto *set, allocating it on first use;
 * first (the line is the first of its source) starts the set afresh. Syntax:
 *   rate N/s|N/m|N/h [burst=B] [principal=P|*] [tool=NAME|*]
 *   concurrency N [principal=P|*]
 *   sessions N [principal=P|*]
 * and `unlimited` instead of the number for an override. Returns 0, or -1 with a sentence in
 * err (the caller adds file:line). */
int mcpgw_limitcfg_parse(struct mcpgw_limitcfg **set, int nwords, char **words, int first,
                         char *err, size_t errlen);
void mcpgw_limitcfg_free(struct mcpgw_limitcfg *set);
/* 1 when the two sets hold the same rules in the same order (NULL is the empty set). */
int mcpgw_limitcfg_equal(const struct mcpgw_limitcfg *a, const struct mcpgw_limitcfg *b);

/* The rule of `kind` that applies to principal (and, for TOOL_RATE, tool), or NULL when none
 * does or the one that does is `unlimited`. The most specific wins: a rule naming the
 * principal beats principal=*, then a rule naming the tool beats tool=*; among equals the
 * last line. Borrowed from set. */
const struct mcpgw_limit_rule *mcpgw_limitcfg_match(const struct mcpgw_limitcfg *set,
                                                    enum mcpgw_limit_kind kind,
                                                    const char *principal, const char *tool);
/* Whether set has any rule of kind (so a request need not be looked at for it). */
int mcpgw_limitcfg_has(const struct mcpgw_limitcfg *set, enum mcpgw_limit_kind kind);

/* GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): *tat is the
 * bucket's theoretical arrival time (0 for a new bucket). A request at now_us conforms when
 * max(tat, now) + interval <= now + interval * burst; then *tat moves on by interval.
 * Returns 0 when it conforms (and commit is set: *tat updated), else the microseconds after
 * which it would (Retry-After), leaving *tat alone. */
uint64_t mcpgw_limitcfg_gcra(uint64_t *tat, uint64_t now_us, uint64_t interval_us, uint64_t burst,
                             int commit);

#endif
