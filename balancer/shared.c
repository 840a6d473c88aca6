/* shared.c - the master/worker shared region and its seqlock. */
#include "balancer/shared.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static const char *const reject_names[MCPGW_BAL_REJECT_COUNT] = {"400", "405", "408", "413", "431",
                                                                 "501", "502", "503", "504", "505"};
static const int reject_status[MCPGW_BAL_REJECT_COUNT] = {400, 405, 408, 413, 431,
                                                          501, 502, 503, 504, 505};

const char *mcpgw_bal_reject_str(enum mcpgw_bal_reject r)
{
    return (unsigned)r < MCPGW_BAL_REJECT_COUNT ? reject_names[r] : "?";
}

int mcpgw_bal_reject_status(enum mcpgw_bal_reject r)
{
    return (unsigned)r < MCPGW_BAL_REJECT_COUNT ? reject_status[r] : 500;
}

struct mcpgw_bal_shared *mcpgw_bal_shared_new(char *err, size_t errlen)
{
    void *p = mmap(NULL, sizeof(struct mcpgw_bal_shared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %zu bytes of shared memory: %s",
                 sizeof(struct mcpgw_bal_shared), strerror(errno));
        return NULL;
    }
    return p; /* anonymous mappings start zeroed */
}

void mcpgw_bal_shared_free(struct mcpgw_bal_shared *sh)
{
    if (sh)
        munmap(sh, sizeof(*sh));
}

void mcpgw_bal_shared_write_begin(struct mcpgw_bal_shared *sh)
{
    __atomic_store_n(&sh->seq, sh->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void mcpgw_bal_shared_write_end(struct mcpgw_bal_shared *sh)
{
    __atomic_store_n(&sh->seq, sh->seq + 1, __ATOMIC_RELEASE);
}

uint32_t mcpgw_bal_shared_gen(const struct mcpgw_bal_shared *sh)
{
    return __atomic_load_n(&sh->seq, __ATOMIC_ACQUIRE);
}

uint32_t mcpgw_bal_shared_read(const struct mcpgw_bal_shared *sh, struct mcpgw_bal_slot *out,
                               uint32_t *nslots)
{
    for (;;) {
        uint32_t s1 = __atomic_load_n(&sh->seq, __ATOMIC_ACQUIRE), s2, n;
        if (s1 & 1)
            continue;
        n = __atomic_load_n(&sh->nslots, __ATOMIC_RELAXED);
        if (n > MCPGW_BAL_MAX_NODES)
            n = MCPGW_BAL_MAX_NODES;
        /* The copy may race with the writer; the sequence check below discards it then. */
        memcpy(out, (const void *)sh->slots, n * sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&sh->seq, __ATOMIC_RELAXED);
        if (s1 == s2) {
            *nslots = n;
            return s1;
        }
    }
}
