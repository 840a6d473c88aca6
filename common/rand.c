/* rand.c - xorshift64* (Vigna 2014): three shifts and a multiply, period 2^64 - 1. */
#include "common/rand.h"

#include "common/util.h"

#include <unistd.h>

uint64_t mcpgw_rand_next(uint64_t *state)
{
    uint64_t x = *state ? *state : UINT64_C(0x9e3779b97f4a7c15);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

uint64_t mcpgw_rand_below(uint64_t *state, uint64_t n)
{
    return n ? mcpgw_rand_next(state) % n : 0;
}

uint64_t mcpgw_rand_seed(void)
{
    static uint64_t calls;
    uint64_t s =
        mcpgw_now_us() ^ ((uint64_t)getpid() << 32) ^ (++calls * UINT64_C(0x9e3779b97f4a7c15));
    return s ? s : 1;
}
