/* rand.h - a fast generator for spreading choices (probe order, jitter, load picks): xorshift64*.
 *
 * Not for anything an attacker may guess: session ids and keys come from OpenSSL (common/ids.h).
 * The state is the caller's, one per user, so nothing here is shared between workers. */
#ifndef MCPGW_COMMON_RAND_H
#define MCPGW_COMMON_RAND_H

#include <stdint.h>

/* The next number of the sequence kept in *state. A zero state (never reached from a non-zero
 * one) is replaced by a fixed non-zero seed first, so a zeroed struct is a usable state. */
uint64_t mcpgw_rand_next(uint64_t *state);

/* A number in [0, n) (0 when n is 0). */
uint64_t mcpgw_rand_below(uint64_t *state, uint64_t n);

/* A non-zero seed that differs between processes and calls (clock, pid, a counter). */
uint64_t mcpgw_rand_seed(void);

#endif
