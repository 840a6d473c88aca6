/* lathist.c - log-linear latency histogram (see lathist.h for the bucket layout). */
#include "loadgen/lathist.h"

#include "common/util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#define LINEAR    256u /* values 0..255 have exact buckets */
#define HALF      128u /* buckets per power of two above that */
#define MAX_EXP   40u  /* values up to 2^40 - 1 */
#define NBUCKETS  (LINEAR + (MAX_EXP - 8u) * HALF)
#define MAX_VALUE ((UINT64_C(1) << MAX_EXP) - 1)

struct mcpgw_lathist {
    uint64_t count, sum, min, max;
    uint64_t counts[NBUCKETS];
};

static unsigned index_of(uint64_t v)
{
    unsigned e, shift;
    if (v < LINEAR)
        return (unsigned)v;
    if (v > MAX_VALUE)
        v = MAX_VALUE;
    e = 63u - (unsigned)__builtin_clzll(v); /* 8 .. 39 */
    shift = e - 7u;
    return LINEAR + (e - 8u) * HALF + (unsigned)((v >> shift) - HALF);
}

static void range_of(unsigned i, uint64_t *lo, uint64_t *hi)
{
    unsigned e, shift;
    uint64_t sub;
    if (i < LINEAR) {
        *lo = *hi = i;
        return;
    }
    e = (i - LINEAR) / HALF + 8u;
    sub = (i - LINEAR) % HALF + HALF;
    shift = e - 7u;
    *lo = sub << shift;
    *hi = ((sub + 1) << shift) - 1;
}

struct mcpgw_lathist *mcpgw_lathist_new(void)
{
    return xcalloc(1, sizeof(struct mcpgw_lathist));
}

void mcpgw_lathist_free(struct mcpgw_lathist *h)
{
    free(h);
}

void mcpgw_lathist_reset(struct mcpgw_lathist *h)
{
    memset(h, 0, sizeof(*h));
}

void mcpgw_lathist_record(struct mcpgw_lathist *h, uint64_t us)
{
    h->counts[index_of(us)]++;
    if (h->count == 0 || us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
    h->count++;
    h->sum += us;
}

void mcpgw_lathist_merge(struct mcpgw_lathist *dst, const struct mcpgw_lathist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < NBUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
}

uint64_t mcpgw_lathist_count(const struct mcpgw_lathist *h)
{
    return h->count;
}

uint64_t mcpgw_lathist_min(const struct mcpgw_lathist *h)
{
    return h->min;
}

uint64_t mcpgw_lathist_max(const struct mcpgw_lathist *h)
{
    return h->max;
}

double mcpgw_lathist_mean(const struct mcpgw_lathist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

uint64_t mcpgw_lathist_percentile(const struct mcpgw_lathist *h, double pct)
{
    uint64_t rank, seen = 0, lo, hi;
    if (h->count == 0)
        return 0;
    if (pct >= 100.0)
        return h->max;
    if (pct < 0.0)
        pct = 0.0;
    /* The smallest rank r with r/count >= pct/100; at least the first sample. */
    rank = (uint64_t)((pct / 100.0) * (double)h->count + 0.9999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            range_of(i, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            return hi < h->min ? h->min : hi;
        }
    }
    return h->max;
}

void mcpgw_lathist_foreach(const struct mcpgw_lathist *h, mcpgw_lathist_bucket_fn fn, void *arg)
{
    uint64_t lo, hi;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        if (!h->counts[i])
            continue;
        range_of(i, &lo, &hi);
        fn(arg, lo, hi, h->counts[i]);
    }
}

void mcpgw_lathist_encode(const struct mcpgw_lathist *h, struct evbuffer *out)
{
    uint64_t head[4] = {h->count, h->sum, h->min, h->max};
    uint32_t nnz = 0;
    for (unsigned i = 0; i < NBUCKETS; i++)
        nnz += h->counts[i] != 0;
    evbuffer_add(out, head, sizeof(head));
    evbuffer_add(out, &nnz, sizeof(nnz));
    for (unsigned i = 0; i < NBUCKETS; i++) {
        unsigned char pair[10];
        uint16_t idx = (uint16_t)i;
        if (!h->counts[i])
            continue;
        memcpy(pair, &idx, 2);
        memcpy(pair + 2, &h->counts[i], 8);
        evbuffer_add(out, pair, sizeof(pair));
    }
}

long mcpgw_lathist_decode_add(struct mcpgw_lathist *h, const unsigned char *p, size_t len)
{
    uint64_t head[4];
    uint32_t nnz;
    size_t need;
    if (len < sizeof(head) + sizeof(nnz))
        return -1;
    memcpy(head, p, sizeof(head));
    memcpy(&nnz, p + sizeof(head), sizeof(nnz));
    if (nnz > NBUCKETS)
        return -1;
    need = sizeof(head) + sizeof(nnz) + (size_t)nnz * 10;
    if (len < need)
        return -1;
    for (uint32_t k = 0; k < nnz; k++) {
        uint16_t idx;
        memcpy(&idx, p + sizeof(head) + sizeof(nnz) + (size_t)k * 10, 2);
        if (idx >= NBUCKETS)
            return -1;
    }
    if (head[0] == 0)
        return (long)need;
    for (uint32_t k = 0; k < nnz; k++) {
        const unsigned char *q = p + sizeof(head) + sizeof(nnz) + (size_t)k * 10;
        uint16_t idx;
        uint64_t c;
        memcpy(&idx, q, 2);
        memcpy(&c, q + 2, 8);
        h->counts[idx] += c;
    }
    if (h->count == 0 || head[2] < h->min)
        h->min = head[2];
    if (head[3] > h->max)
        h->max = head[3];
    h->count += head[0];
    h->sum += head[1];
    return (long)need;
}
