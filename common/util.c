/* util.c - allocation wrappers, clocks and small parsing helpers. */
#include "common/util.h"

#include <ctype.h>
#include <netdb.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

uint64_t mcpgw_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mcpgw_now_ms(void)
{
    return mcpgw_now_us() / 1000u;
}

uint64_t mcpgw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int mcpgw_strieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

int mcpgw_parse_hostport(const char *s, char *host, size_t hostlen, int *port, char *err,
                         size_t errlen)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    char *end;
    long p;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') {
            snprintf(err, errlen, "address '%s' is not of the form [ipv6]:port", s);
            return -1;
        }
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "address '%s' has no port (expected host:port)", s);
            return -1;
        }
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen) {
        snprintf(err, errlen, "address '%s' has an empty or too long host", s);
        return -1;
    }
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 0 || p > 65535) {
        snprintf(err, errlen, "address '%s' has an invalid port (0-65535)", s);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

struct addrinfo *mcpgw_resolve_listen(const char *addr, char *err, size_t errlen)
{
    char host[256], port[16];
    struct addrinfo hints, *res = NULL;
    int p, rc;
    if (mcpgw_parse_hostport(addr, host, sizeof(host), &p, err, errlen) < 0)
        return NULL;
    snprintf(port, sizeof(port), "%d", p);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", addr, gai_strerror(rc));
        return NULL;
    }
    return res;
}

int mcpgw_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    int shift;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        shift = 0;
        break;
    case 'k':
        shift = 10, end++;
        break;
    case 'm':
        shift = 20, end++;
        break;
    case 'g':
        shift = 30, end++;
        break;
    default:
        return -1;
    }
    if (v > (ULLONG_MAX >> shift))
        return -1; /* would wrap */
    v <<= shift;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int mcpgw_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    char *end;
    double v;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        ;
    else if (strcmp(end, "s") == 0)
        v *= 1000;
    else if (strcmp(end, "m") == 0)
        v *= 60000;
    else if (strcmp(end, "h") == 0)
        v *= 3600000;
    else
        return -1;
    if (!(v < 18446744073709551616.0)) /* 2^64: the conversion below would be undefined */
        return -1;
    *out_ms = (uint64_t)v;
    return 0;
}

void mcpgw_url_redact(const char *url, char *out, size_t outlen)
{
    const char *at = strrchr(url, '@'), *scheme = strstr(url, "://"), *colon = NULL;
    if (at && scheme && scheme < at)
        colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
    if (!colon)
        snprintf(out, outlen, "%s", url);
    else
        snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
}
