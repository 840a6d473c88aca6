/* limitcfg.c - parsing and matching `limit` lines, and GCRA arithmetic (pure: unit-tested). */
#include "node/limitcfg.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_MAX  1000000u /* per period; also keeps interval_us >= 1 for /s */
#define BURST_MAX 1000000u
#define CAP_MAX   1000000u

static const char *const kind_names[MCPGW_LIMIT_COUNT] = {"rate", "tool_rate", "concurrency",
                                                          "sessions"};

const char *mcpgw_limit_kind_str(int kind)
{
    return kind >= 0 && kind < MCPGW_LIMIT_COUNT ? kind_names[kind] : "?";
}

/* A decimal in 1..max, the whole word. */
static int number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "N/s", "N/m", "N/h" -> interval_us, and burst defaulting to N. */
static int rate_value(const char *w, struct mcpgw_limit_rule *r, char *err, size_t errlen)
{
    const char *slash = strchr(w, '/');
    uint64_t n, period;
    if (!slash || number(w, (size_t)(slash - w), RATE_MAX, &n) < 0 || slash[1] == '\0' ||
        slash[2] != '\0' || !strchr("smh", slash[1])) {
        snprintf(err, errlen,
                 "limit rate '%.40s' is not a rate: write N/s, N/m or N/h with N in 1..%u, or "
                 "unlimited",
                 w, RATE_MAX);
        return -1;
    }
    period = slash[1] == 's' ? 1000000ull : slash[1] == 'm' ? 60000000ull : 3600000000ull;
    r->interval_us = period / n;
    r->burst = n;
    return 0;
}

static int key_is(const char *w, const char *key, const char **val)
{
    size_t kl = strlen(key);
    if (strncmp(w, key, kl) != 0 || w[kl] != '=')
        return 0;
    *val = w + kl + 1;
    return 1;
}

/* principal=, tool=, burst= words after the value. */
static int options(struct mcpgw_limit_rule *r, int nwords, char **words, char *err, size_t errlen)
{
    const char *v;
    int burst_given = 0;
    for (int i = 2; i < nwords; i++) {
        if (key_is(words[i], "principal", &v)) {
            if (!v[0]) {
                snprintf(err, errlen, "limit: principal= needs a principal (or *)");
                return -1;
            }
            free(r->principal);
            r->principal = strcmp(v, "*") == 0 ? NULL : xstrdup(v);
        } else if (key_is(words[i], "tool", &v) && strcmp(words[0], "rate") == 0) {
            if (r->kind == MCPGW_LIMIT_TOOL_RATE) {
                snprintf(err, errlen, "limit rate: tool= given twice");
                return -1;
            }
            if (!v[0]) {
                snprintf(err, errlen, "limit rate: tool= needs a tool name (or *)");
                return -1;
            }
            r->tool = strcmp(v, "*") == 0 ? NULL : xstrdup(v);
            r->kind = MCPGW_LIMIT_TOOL_RATE;
        } else if (key_is(words[i], "burst", &v) &&
                   (r->kind == MCPGW_LIMIT_RATE || r->kind == MCPGW_LIMIT_TOOL_RATE)) {
            if (number(v, strlen(v), BURST_MAX, &r->burst) < 0) {
                snprintf(err, errlen, "limit rate: burst '%.40s' is not a number in 1..%u", v,
                         BURST_MAX);
                return -1;
            }
            burst_given = 1;
        } else {
            snprintf(err, errlen, "limit %s: unknown option '%.60s' (expected %s)", words[0],
                     words[i],
                     strcmp(words[0], "rate") == 0 ? "burst=N, principal=P or tool=NAME"
                                                   : "principal=P");
            return -1;
        }
    }
    if (burst_given && r->unlimited) {
        snprintf(err, errlen, "limit rate: an unlimited rate takes no burst=");
        return -1;
    }
    return 0;
}

static void rule_free(struct mcpgw_limit_rule *r)
{
    free(r->principal);
    free(r->tool);
}

int mcpgw_limitcfg_parse(struct mcpgw_limitcfg **set, int nwords, char **words, int first,
                         char *err, size_t errlen)
{
    struct mcpgw_limit_rule r;
    int rc = -1;
    memset(&r, 0, sizeof(r));
    if (first && *set) {
        mcpgw_limitcfg_free(*set);
        *set = NULL;
    }
    if (nwords < 2) {
        snprintf(err, errlen,
                 "limit needs a kind and a value: rate N/s, concurrency N or sessions N");
        goto out;
    }
    r.unlimited = strcmp(words[1], "unlimited") == 0;
    if (strcmp(words[0], "rate") == 0) {
        r.kind = MCPGW_LIMIT_RATE;
        if (!r.unlimited && rate_value(words[1], &r, err, errlen) < 0)
            goto out;
    } else if (strcmp(words[0], "concurrency") == 0 || strcmp(words[0], "sessions") == 0) {
        r.kind = words[0][0] == 'c' ? MCPGW_LIMIT_CONCURRENCY : MCPGW_LIMIT_SESSIONS;
        if (!r.unlimited && number(words[1], strlen(words[1]), CAP_MAX, &r.cap) < 0) {
            snprintf(err, errlen, "limit %s '%.40s' is not a number in 1..%u (or unlimited)",
                     words[0], words[1], CAP_MAX);
            goto out;
        }
    } else {
        snprintf(err, errlen,
                 "limit '%.40s' is not a kind of limit (rate, concurrency or sessions)", words[0]);
        goto out;
    }
    if (options(&r, nwords, words, err, errlen) < 0)
        goto out;
    if (r.kind == MCPGW_LIMIT_RATE || r.kind == MCPGW_LIMIT_TOOL_RATE)
        snprintf(r.text, sizeof(r.text), r.unlimited ? "%s" : "%s burst=%llu", words[1],
                 (unsigned long long)r.burst);
    else
        snprintf(r.text, sizeof(r.text), "%s", words[1]);
    if (!*set)
        *set = xcalloc(1, sizeof(**set));
    (*set)->v = xrealloc((*set)->v, (size_t)((*set)->n + 1) * sizeof(r));
    (*set)->v[(*set)->n++] = r;
    memset(&r, 0, sizeof(r));
    rc = 0;
out:
    rule_free(&r);
    return rc;
}

void mcpgw_limitcfg_free(struct mcpgw_limitcfg *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++)
        rule_free(&set->v[i]);
    free(set->v);
    free(set);
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int mcpgw_limitcfg_equal(const struct mcpgw_limitcfg *a, const struct mcpgw_limitcfg *b)
{
    int na = a ? a->n : 0, nb = b ? b->n : 0;
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++) {
        const struct mcpgw_limit_rule *x = &a->v[i], *y = &b->v[i];
        if (x->kind != y->kind || x->unlimited != y->unlimited ||
            x->interval_us != y->interval_us || x->burst != y->burst || x->cap != y->cap ||
            !str_eq(x->principal, y->principal) || !str_eq(x->tool, y->tool))
            return 0;
    }
    return 1;
}

const struct mcpgw_limit_rule *mcpgw_limitcfg_match(const struct mcpgw_limitcfg *set,
                                                    enum mcpgw_limit_kind kind,
                                                    const char *principal, const char *tool)
{
    const struct mcpgw_limit_rule *best = NULL;
    int best_score = -1;
    if (!set)
        return NULL;
    for (int i = 0; i < set->n; i++) {
        const struct mcpgw_limit_rule *r = &set->v[i];
        int score = 0;
        if (r->kind != kind)
            continue;
        if (r->principal) {
            if (!principal || strcmp(r->principal, principal) != 0)
                continue;
            score += 2;
        }
        if (r->tool) {
            if (!tool || strcmp(r->tool, tool) != 0)
                continue;
            score += 1;
        }
        if (score >= best_score) {
            best = r;
            best_score = score;
        }
    }
    return best && !best->unlimited ? best : NULL;
}

int mcpgw_limitcfg_has(const struct mcpgw_limitcfg *set, enum mcpgw_limit_kind kind)
{
    for (int i = 0; set && i < set->n; i++)
        if (set->v[i].kind == kind)
            return 1;
    return 0;
}

uint64_t mcpgw_limitcfg_gcra(uint64_t *tat, uint64_t now_us, uint64_t interval_us, uint64_t burst,
                             int commit)
{
    uint64_t t = *tat > now_us ? *tat : now_us, next = t + interval_us,
             tolerance = interval_us * burst;
    if (next > now_us + tolerance)
        return next - tolerance - now_us;
    if (commit)
        *tat = next;
    return 0;
}
