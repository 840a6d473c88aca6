/* session.c - session event log and subscription list. */
#include "node/session.h"

#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[MCPGW_SESSION_STATE_COUNT] = {"initializing", "ready"};

const char *mcpgw_session_state_str(enum mcpgw_session_state s)
{
    return (unsigned)s < MCPGW_SESSION_STATE_COUNT ? state_names[s] : "?";
}

uint64_t mcpgw_session_next_seq(struct mcpgw_session *s)
{
    return ++s->next_seq;
}

void mcpgw_session_owned(struct mcpgw_session *s)
{
    /* Past 2^24 epochs the ranges would wrap: keep counting in the last one (never reached:
     * an epoch is one claim). */
    uint64_t e = s->epoch ? s->epoch - 1 : 0;
    if (e >= (UINT64_C(1) << (64 - MCPGW_SEQ_EPOCH_SHIFT)))
        e = (UINT64_C(1) << (64 - MCPGW_SEQ_EPOCH_SHIFT)) - 1;
    s->seq_base = e << MCPGW_SEQ_EPOCH_SHIFT;
    if (s->next_seq < s->seq_base)
        s->next_seq = s->seq_base;
}

static void evict_oldest(struct mcpgw_evlog *l)
{
    struct mcpgw_event *e = &l->ev[l->head];
    l->bytes -= e->len;
    l->evicted_max = e->seq;
    free(e->data);
    e->data = NULL;
    l->head = (l->head + 1) % l->cap;
    l->count--;
}

uint64_t mcpgw_session_log(struct mcpgw_session *s, uint32_t stream, const char *data, size_t len)
{
    struct mcpgw_evlog *l = s->log;
    struct mcpgw_event *e;
    uint64_t seq = mcpgw_session_next_seq(s);

    if (!l) {
        l = s->log = xcalloc(1, sizeof(*l));
        l->cap = 8;
        l->ev = xcalloc(l->cap, sizeof(*l->ev));
    }
    while (l->count &&
           (l->count == MCPGW_EVLOG_MAX_EVENTS || l->bytes + len > MCPGW_EVLOG_MAX_BYTES))
        evict_oldest(l);
    if (l->count == l->cap) {
        /* Grow the ring, unrolling it so head is 0 again. */
        uint32_t ncap = l->cap * 2;
        struct mcpgw_event *nev = xcalloc(ncap, sizeof(*nev));
        for (uint32_t i = 0; i < l->count; i++)
            nev[i] = l->ev[(l->head + i) % l->cap];
        free(l->ev);
        l->ev = nev;
        l->cap = ncap;
        l->head = 0;
    }
    e = &l->ev[(l->head + l->count) % l->cap];
    e->seq = seq;
    e->stream = stream;
    e->len = (uint32_t)len;
    e->data = xstrndup(data, len);
    l->count++;
    l->bytes += len;
    return seq;
}

int mcpgw_session_replay(struct mcpgw_session *s, uint32_t stream, uint64_t after,
                         void (*visit)(void *arg, const struct mcpgw_event *ev), void *arg)
{
    struct mcpgw_evlog *l = s->log;
    int n = 0;
    if (!l)
        return 0;
    for (uint32_t i = 0; i < l->count; i++) {
        const struct mcpgw_event *e = &l->ev[(l->head + i) % l->cap];
        if (e->seq > after && e->stream == stream) {
            visit(arg, e);
            n++;
        }
    }
    /* An evicted event newer than `after` may have belonged to this stream: a possible gap. */
    return l->evicted_max > after ? -1 : n;
}

void mcpgw_session_event_id_format(char *out, size_t outlen, uint32_t stream, uint64_t seq)
{
    snprintf(out, outlen, "%" PRIu32 ".%" PRIu64, stream, seq);
}

int mcpgw_session_event_id_parse(const char *s, size_t len, uint32_t *stream, uint64_t *seq)
{
    uint64_t a = 0, b = 0;
    size_t i = 0;
    int da = 0, db = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9' && da < 10; i++, da++)
        a = a * 10 + (uint64_t)(s[i] - '0');
    if (!da || i >= len || s[i] != '.' || a > UINT32_MAX)
        return -1;
    /* Every uint64_t that mcpgw_session_event_id_format writes parses back (20 digits for the top).
     */
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, db++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (b > (UINT64_MAX - d) / 10)
            return -1;
        b = b * 10 + d;
    }
    if (!db || i != len)
        return -1;
    *stream = (uint32_t)a;
    *seq = b;
    return 0;
}

int mcpgw_session_subscribed(const struct mcpgw_session *s, const char *uri)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (strcmp(s->subs[i], uri) == 0)
            return 1;
    return 0;
}

int mcpgw_session_sub_add(struct mcpgw_session *s, const char *uri)
{
    if (mcpgw_session_subscribed(s, uri))
        return 0;
    if (s->nsubs == s->subs_cap) {
        s->subs_cap = s->subs_cap ? s->subs_cap * 2 : 2;
        s->subs = xrealloc(s->subs, s->subs_cap * sizeof(*s->subs));
    }
    s->subs[s->nsubs++] = xstrdup(uri);
    return 1;
}

int mcpgw_session_sub_del(struct mcpgw_session *s, const char *uri)
{
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (strcmp(s->subs[i], uri) == 0) {
            free(s->subs[i]);
            s->subs[i] = s->subs[--s->nsubs];
            if (!s->nsubs) {
                free(s->subs);
                s->subs = NULL;
                s->subs_cap = 0;
            }
            return 1;
        }
    return 0;
}

int mcpgw_session_cluster_id_parse(const char *s, size_t len, uint64_t *ms, uint64_t *seq)
{
    const char *dash = memchr(s, '-', len);
    uint64_t a = 0, b = 0;
    if (!dash || dash == s || dash == s + len - 1 || dash - s > 19 || s + len - dash - 1 > 19)
        return -1;
    for (const char *p = s; p < dash; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        a = a * 10 + (uint64_t)(*p - '0');
    }
    for (const char *p = dash + 1; p < s + len; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        b = b * 10 + (uint64_t)(*p - '0');
    }
    *ms = a;
    *seq = b;
    return 0;
}

void mcpgw_session_free(struct mcpgw_session *s)
{
    if (!s)
        return;
    while (s->held) {
        struct mcpgw_held_event *h = s->held;
        s->held = h->next;
        free(h);
    }
    for (uint32_t i = 0; i < s->nsubs; i++)
        free(s->subs[i]);
    free(s->subs);
    if (s->log) {
        while (s->log->count)
            evict_oldest(s->log);
        free(s->log->ev);
        free(s->log);
    }
    free(s->client);
    free(s);
}
