/* replay.c - per-sender sliding windows of accepted envelope counters (see replay.h). */
#include "gossip/replay.h"

#include "common/hash.h"
#include "common/util.h"
#include "gossip/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORDS (MCPGW_GOSSIP_REPLAY_WINDOW / 64)

/* bits[0] bit 0 is counter `top`, bit i (word i/64, bit i%64) is counter top - i. */
struct sender {
    uint64_t id_hash;
    uint64_t generation;
    uint64_t top;
    uint64_t last_ms; /* when we last accepted from it: the eviction order */
    uint64_t bits[WORDS];
    char id[MCPGW_GOSSIP_MAX_ID + 1];
};

struct mcpgw_gossip_replay {
    struct sender *s;
    int n, cap, max;
    uint32_t max_skew_ms;
};

const char *mcpgw_gossip_replay_verdict_str(int v)
{
    static const char *const s[MCPGW_GOSSIP_REPLAY_VERDICT_COUNT] = {"fresh", "duplicate", "behind",
                                                                     "stale"};
    return v >= 0 && v < MCPGW_GOSSIP_REPLAY_VERDICT_COUNT ? s[v] : "?";
}

struct mcpgw_gossip_replay *mcpgw_gossip_replay_new(int max_senders, uint32_t max_skew_ms)
{
    struct mcpgw_gossip_replay *r = xcalloc(1, sizeof(*r));
    r->max = max_senders > 0 ? max_senders : 1;
    r->max_skew_ms = max_skew_ms;
    return r;
}

void mcpgw_gossip_replay_free(struct mcpgw_gossip_replay *r)
{
    if (!r)
        return;
    free(r->s);
    free(r);
}

int mcpgw_gossip_replay_count(const struct mcpgw_gossip_replay *r)
{
    return r->n;
}

/* Move the window up by shift counters (shift > 0). */
static void advance(struct sender *s, uint64_t shift)
{
    if (shift >= MCPGW_GOSSIP_REPLAY_WINDOW) {
        memset(s->bits, 0, sizeof(s->bits));
        return;
    }
    int words = (int)(shift / 64), b = (int)(shift % 64);
    for (int i = WORDS - 1; i >= 0; i--) {
        uint64_t v = i - words >= 0 ? s->bits[i - words] << b : 0;
        if (b && i - words - 1 >= 0)
            v |= s->bits[i - words - 1] >> (64 - b);
        s->bits[i] = v;
    }
}

static void start(struct sender *s, uint64_t generation, uint64_t counter)
{
    s->generation = generation;
    s->top = counter;
    memset(s->bits, 0, sizeof(s->bits));
    s->bits[0] = 1;
}

static struct sender *lookup(struct mcpgw_gossip_replay *r, const char *id, uint64_t h)
{
    for (int i = 0; i < r->n; i++)
        if (r->s[i].id_hash == h && strcmp(r->s[i].id, id) == 0)
            return &r->s[i];
    return NULL;
}

/* A slot for a new sender: append while below the bound, else forget the quietest one. */
static struct sender *slot(struct mcpgw_gossip_replay *r)
{
    int oldest = 0;
    if (r->n < r->max) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 8;
            if (r->cap > r->max)
                r->cap = r->max;
            r->s = xrealloc(r->s, (size_t)r->cap * sizeof(*r->s));
        }
        return &r->s[r->n++];
    }
    for (int i = 1; i < r->n; i++)
        if (r->s[i].last_ms < r->s[oldest].last_ms)
            oldest = i;
    return &r->s[oldest];
}

int mcpgw_gossip_replay_check(struct mcpgw_gossip_replay *r, const char *sender,
                              uint64_t generation, uint64_t counter, uint64_t sent_ms,
                              uint64_t now_ms)
{
    uint64_t h = mcpgw_hash64(sender, strlen(sender)), back;
    struct sender *s;

    if (r->max_skew_ms && (sent_ms + r->max_skew_ms < now_ms || sent_ms > now_ms + r->max_skew_ms))
        return MCPGW_GOSSIP_REPLAY_STALE;
    s = lookup(r, sender, h);
    if (!s) {
        s = slot(r);
        memset(s, 0, sizeof(*s));
        s->id_hash = h;
        snprintf(s->id, sizeof(s->id), "%s", sender);
        start(s, generation, counter);
        s->last_ms = now_ms;
        return MCPGW_GOSSIP_REPLAY_FRESH;
    }
    if (generation < s->generation)
        return MCPGW_GOSSIP_REPLAY_BEHIND;
    if (generation > s->generation) {
        start(s, generation, counter);
    } else if (counter > s->top) {
        advance(s, counter - s->top);
        s->top = counter;
        s->bits[0] |= 1;
    } else {
        back = s->top - counter;
        if (back >= MCPGW_GOSSIP_REPLAY_WINDOW)
            return MCPGW_GOSSIP_REPLAY_BEHIND;
        if (s->bits[back / 64] & (1ULL << (back % 64)))
            return MCPGW_GOSSIP_REPLAY_DUPLICATE;
        s->bits[back / 64] |= 1ULL << (back % 64);
    }
    s->last_ms = now_ms;
    return MCPGW_GOSSIP_REPLAY_FRESH;
}
