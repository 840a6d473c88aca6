/* clockskew.c - a preload library for tests: shifts the wall clock (CLOCK_REALTIME, as
 * clock_gettime, gettimeofday and time report it) of the process that loads it by
 * MCPGW_CLOCK_SKEW_MS milliseconds (negative: behind), so that a test can run a node whose clock
 * disagrees with its peers' without touching the machine's clock. Monotonic clocks are left
 * alone. Usage: LD_PRELOAD=.../libmcpgw-clockskew.so MCPGW_CLOCK_SKEW_MS=3600000 mcpgw-node ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static long long skew_ms(void)
{
    const char *e = getenv("MCPGW_CLOCK_SKEW_MS");
    return e ? strtoll(e, NULL, 10) : 0;
}

static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
    static clock_gettime_fn real;
    if (!real) {
        void *p = dlsym(RTLD_NEXT, "clock_gettime");
        *(void **)&real = p;
    }
    return real(id, ts);
}

static void shift(struct timespec *ts)
{
    long long ns = (long long)ts->tv_nsec + (skew_ms() % 1000) * 1000000LL;
    ts->tv_sec += (time_t)(skew_ms() / 1000);
    if (ns < 0) {
        ns += 1000000000LL;
        ts->tv_sec--;
    } else if (ns >= 1000000000LL) {
        ns -= 1000000000LL;
        ts->tv_sec++;
    }
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = real_clock_gettime(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
