/* lathist.h - log-linear latency histogram (HDR style): microsecond unit, every sample counted.
 *
 * Values below 256 us have their own bucket; above, each power-of-two range is cut into 128
 * equal buckets, so a reported value is at most 1/128 (0.8 %) above the true one. Values up to
 * 2^40 us (12.7 days) are tracked; larger ones are counted in the last bucket. Count, sum, min
 * and max are exact. Histograms merge exactly, so workers' histograms add up to the run's. */
#ifndef MCPGW_LOADGEN_LATHIST_H
#define MCPGW_LOADGEN_LATHIST_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct mcpgw_lathist;

struct mcpgw_lathist *mcpgw_lathist_new(void);
void mcpgw_lathist_free(struct mcpgw_lathist *h);
void mcpgw_lathist_reset(struct mcpgw_lathist *h);

void mcpgw_lathist_record(struct mcpgw_lathist *h, uint64_t us);
/* Add every sample of src to dst. */
void mcpgw_lathist_merge(struct mcpgw_lathist *dst, const struct mcpgw_lathist *src);

uint64_t mcpgw_lathist_count(const struct mcpgw_lathist *h);
uint64_t mcpgw_lathist_min(const struct mcpgw_lathist *h); /* 0 when empty */
uint64_t mcpgw_lathist_max(const struct mcpgw_lathist *h);
double mcpgw_lathist_mean(const struct mcpgw_lathist *h);
/* The value at or below which pct percent (0..100) of the samples fall: the highest value of the
 * bucket holding that rank, never above the exact max. 0 when empty. */
uint64_t mcpgw_lathist_percentile(const struct mcpgw_lathist *h, double pct);

/* Calls fn for each non-empty bucket in increasing order with its value range [lo, hi]. */
typedef void (*mcpgw_lathist_bucket_fn)(void *arg, uint64_t lo, uint64_t hi, uint64_t count);
void mcpgw_lathist_foreach(const struct mcpgw_lathist *h, mcpgw_lathist_bucket_fn fn, void *arg);

/* Sparse binary form for the worker pipe (host byte order; docs/loadgen.md): count, sum, min,
 * max, the number of non-empty buckets, then (u16 index, u64 count) pairs. */
void mcpgw_lathist_encode(const struct mcpgw_lathist *h, struct evbuffer *out);
/* Decode one encoded histogram from p[0..len) and add it to h. Returns the bytes used, or -1 when
 * the input is truncated or names a bucket out of range (h is then unchanged). */
long mcpgw_lathist_decode_add(struct mcpgw_lathist *h, const unsigned char *p, size_t len);

#endif
