/* fuzz_sse_resume.c - libFuzzer driver for the balancer's SSE scanner (balancer/resume.h). */
#include "balancer/resume.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD "GET /mcp HTTP/1.1\r\nHost: a\r\nLast-Event-ID: old\r\nMcp-Session-Id: s\r\n\r\n"

/* Any event-stream bytes: the scanner must not crash or read out of bounds, and its verdict
 * must not depend on how the bytes were cut (first byte: where to cut, the rest: the stream).
 * A ready stream's id holds no line break, and the head that resumes it is one head with one
 * Last-Event-ID. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcpgw_bal_resume *a, *b;
    const char *p = (const char *)data + 1;
    size_t n, cut;
    if (size < 1)
        return 0;
    n = size - 1;
    cut = n ? data[0] % (n + 1) : 0;
    a = mcpgw_bal_resume_new(HEAD, strlen(HEAD));
    b = mcpgw_bal_resume_new(HEAD, strlen(HEAD));
    mcpgw_bal_resume_feed(a, p, cut);
    mcpgw_bal_resume_feed(a, p + cut, n - cut);
    for (size_t i = 0; i < n; i++)
        mcpgw_bal_resume_feed(b, p + i, 1);
    if (mcpgw_bal_resume_ready(a) != mcpgw_bal_resume_ready(b))
        abort();
    if (mcpgw_bal_resume_ready(a)) {
        const char *id = mcpgw_bal_resume_last_id(a);
        struct evbuffer *out = evbuffer_new();
        size_t len;
        char *h, *first;
        if (strcmp(id, mcpgw_bal_resume_last_id(b)) != 0 || !*id || strpbrk(id, "\r\n"))
            abort();
        mcpgw_bal_resume_head(a, out);
        len = evbuffer_get_length(out);
        h = strndup((const char *)evbuffer_pullup(out, -1), len);
        first = strcasestr(h, "\r\nlast-event-id:");
        if (len < 4 || strcmp(h + len - 4, "\r\n\r\n") != 0 ||
            strstr(h, "\r\n\r\n") != h + len - 4 || !first ||
            strcasestr(first + 2, "\r\nlast-event-id:"))
            abort();
        free(h);
        evbuffer_free(out);
    }
    mcpgw_bal_resume_free(a);
    mcpgw_bal_resume_free(b);
    return 0;
}
