/* util.h - allocation wrappers (OOM is fatal), time, small string helpers. */
#ifndef MCPGW_COMMON_UTIL_H
#define MCPGW_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Allocation that never returns NULL: out-of-memory aborts the process with a message. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Monotonic clock in milliseconds / microseconds; wall clock in milliseconds since the epoch. */
uint64_t mcpgw_now_ms(void);
uint64_t mcpgw_now_us(void);
uint64_t mcpgw_wall_ms(void);

/* Case-insensitive comparison of a (ptr,len) token with a NUL-terminated string. */
int mcpgw_strieq(const char *a, size_t alen, const char *b);

/* Split "host:port" ("[v6]:port" too). Fills host (NUL-terminated) and port.
 * Returns 0, or -1 with a sentence in err. */
int mcpgw_parse_hostport(const char *s, char *host, size_t hostlen, int *port, char *err,
                         size_t errlen);

/* Resolve a "host:port" to listen on (numeric port, passive, TCP). Returns the addrinfo list
 * (free with freeaddrinfo), or NULL with a sentence in err. */
struct addrinfo *mcpgw_resolve_listen(const char *addr, char *err, size_t errlen);

/* Parse a size with optional k/m/g suffix (binary units) or a duration with ms/s/m/h suffix
 * (plain number = unit given). Return 0 or -1 on malformed input. */
int mcpgw_parse_size(const char *s, uint64_t *out);
int mcpgw_parse_duration_ms(const char *s, uint64_t *out_ms);

#define MCPGW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A URL fit for logs (a store URL, say): the password of scheme://user:password@host is replaced by
 * "***". */
void mcpgw_url_redact(const char *url, char *out, size_t outlen);

#endif
