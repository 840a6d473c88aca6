/* hist.h - log-linear latency histogram (HDR style): microsecond unit, every sample counted.
 *
 * Values below 256 us have their own bucket; above, each power-of-two range is cut into 128
 * equal buckets, so a reported value is at most 1/128 (0.8 %) above the true one. Values up to
 * 2^40 us (12.7 days) are tracked; larger ones are counted in the last bucket. Count, sum, min
 * and max are exact. Histograms merge exactly, so workers' histograms add up to the run's. */
#ifndef MCPGW_LOADGEN_HIST_H
#define MCPGW_LOADGEN_HIST_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct mcpgw_hist;

struct mcpgw_hist *mcpgw_hist_new(void);
void mcpgw_hist_free(struct mcpgw_hist *h);
void mcpgw_hist_reset(struct mcpgw_hist *h);

void mcpgw_hist_record(struct mcpgw_hist *h, uint64_t us);
/* Add every sample of src to dst. */
void mcpgw_hist_merge(struct mcpgw_hist *dst, const struct mcpgw_hist *src);

uint64_t mcpgw_hist_count(const struct mcpgw_hist *h);
uint64_t mcpgw_hist_min(const struct mcpgw_hist *h); /* 0 when empty */
uint64_t mcpgw_hist_max(const struct mcpgw_hist *h);
double mcpgw_hist_mean(const struct mcpgw_hist *h);
/* The value at or below which pct percent (0..100) of the samples fall: the highest value of the
 * bucket holding that rank, never above the exact max. 0 when empty. */
uint64_t mcpgw_hist_percentile(const struct mcpgw_hist *h, double pct);

/* Calls fn for each non-empty bucket in increasing order with its value range [lo, hi]. */
typedef void (*mcpgw_hist_bucket_fn)(void *arg, uint64_t lo, uint64_t hi, uint64_t count);
void mcpgw_hist_foreach(const struct mcpgw_hist *h, mcpgw_hist_bucket_fn fn, void *arg);

/* Sparse binary form for the worker pipe (host byte order; docs/loadgen.md): count, sum, min,
 * max, the number of non-empty buckets, then (u16 index, u64 count) pairs. */
void mcpgw_hist_encode(const struct mcpgw_hist *h, struct evbuffer *out);
/* Decode one encoded histogram from p[0..len) and add it to h. Returns the bytes used, or -1 when
 * the input is truncated or names a bucket out of range (h is then unchanged). */
long mcpgw_hist_decode_add(struct mcpgw_hist *h, const unsigned char *p, size_t len);

#endif
